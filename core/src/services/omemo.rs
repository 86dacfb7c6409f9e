//! OMEMO for an account: decrypting what arrives (the pipeline's decrypt stage) and
//! encrypting what we send, over the account's [`Device`] and its [`OmemoStore`]. No I/O
//! here: fetching device lists and bundles is the `Client`'s job (`api::omemo`), which hands
//! the results in.

use std::sync::{Arc, Mutex, MutexGuard};

use jid::BareJid;
use minidom::Element;

use crate::crypto::omemo::device::{Device, DeviceError};
use crate::crypto::omemo::keys::{Bundle, IdentityKey};
use crate::crypto::omemo::store::Address;
use crate::crypto::omemo::{Error as OmemoError, Namespace, payload};
use crate::proto::omemo as xml;
use crate::store::Encryption;
use crate::store::omemo::{OmemoStore, Trust};

/// The account's OMEMO device, shared by the actor (decrypting) and the client (encrypting):
/// one lock, so a session's ratchet is never advanced by two writers at once.
#[derive(Clone)]
pub struct OmemoHandle(Arc<Mutex<Device<OmemoStore>>>);

impl std::fmt::Debug for OmemoHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OmemoHandle")
    }
}

impl OmemoHandle {
    /// Wraps an opened device.
    pub fn new(device: Device<OmemoStore>) -> Self {
        OmemoHandle(Arc::new(Mutex::new(device)))
    }

    /// The device, locked. Operations are short and synchronous; never hold this across an
    /// `.await`.
    pub fn lock(&self) -> MutexGuard<'_, Device<OmemoStore>> {
        // A panic mid-operation leaves the store consistent (each write is one statement
        // or transaction), so a poisoned lock is still usable.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The namespace's message encryption tag.
pub fn encryption_of(ns: Namespace) -> Encryption {
    match ns {
        Namespace::Legacy => Encryption::Omemo,
        Namespace::Omemo2 => Encryption::Omemo2,
    }
}

/// What an incoming `<encrypted>` element turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Decrypted {
    /// A message: its body (plain text).
    Body {
        ns: Namespace,
        body: String,
        /// The sending device.
        device: u32,
        /// The sending device's key is not trusted (marked untrusted, or a new key of a
        /// contact with verified keys, not decided about yet): what to tell the user.
        warning: Option<String>,
    },
    /// Session maintenance without a body (key transport, heartbeat): nothing to show.
    Control,
    /// Our own message from this very device, coming back (room reflection, carbon or
    /// archive copy). OMEMO never encrypts for the sending device, so there is nothing to
    /// decrypt: the stored original is found by its id.
    OwnDevice { ns: Namespace },
    /// It could not be decrypted: the explanation for the timeline, and the sending device
    /// when a fresh session with it would fix it (we lost the session, or it lost ours).
    Failed {
        ns: Namespace,
        reason: String,
        repair: Option<u32>,
    },
}

/// The decrypt stage. `sender` is the message's author (bare), `own` our account, `peer` the
/// conversation (the recipient of our own messages). Returns what it was, and whether our
/// bundle must be republished (a one-time pre-key was used).
pub fn decrypt(
    handle: &OmemoHandle,
    element: &Element,
    sender: &BareJid,
    own: &BareJid,
    peer: &BareJid,
    outgoing: bool,
    groupchat: bool,
) -> (Decrypted, bool) {
    let enc = match xml::Encrypted::try_from(element) {
        Ok(e) => e,
        Err(e) => {
            let ns = if element.ns() == Namespace::Omemo2.xmlns() {
                Namespace::Omemo2
            } else {
                Namespace::Legacy
            };
            return (
                Decrypted::Failed {
                    ns,
                    reason: format!("could not decrypt: the OMEMO message is malformed ({e})"),
                    repair: None,
                },
                false,
            );
        }
    };
    let ns = enc.ns;
    let device = handle.lock();
    let our_id = device.id();
    if outgoing && enc.sid == our_id {
        return (Decrypted::OwnDevice { ns }, false);
    }
    let Some(key) = enc.key_for(own, our_id) else {
        let reason = if enc.payload.is_none() {
            return (Decrypted::Control, false);
        } else {
            format!(
                "could not decrypt: the sender's device {} did not encrypt this message for this \
                 device ({our_id}); it may not know this device yet",
                enc.sid
            )
        };
        return (
            Decrypted::Failed {
                ns,
                reason,
                repair: None,
            },
            false,
        );
    };
    let addr = Address::new(ns, sender.as_str(), enc.sid);
    let result = match device.decrypt(&addr, key.kex, &key.data) {
        Ok(r) => r,
        // A key transport or heartbeat seen before (live, now again from the archive):
        // nothing was shown then, nothing to show now.
        Err(DeviceError::Omemo(OmemoError::Duplicate(_))) if enc.payload.is_none() => {
            return (Decrypted::Control, false);
        }
        Err(e) => {
            return (
                Decrypted::Failed {
                    ns,
                    reason: explain(&e, enc.sid),
                    repair: repairable(&e).then_some(enc.sid),
                },
                false,
            );
        }
    };
    let republish = result.new_session;
    let warning = note_identity(device.store(), ns, sender, enc.sid, &result.identity);
    let Some(payload_bytes) = &enc.payload else {
        return (Decrypted::Control, republish);
    };
    let plain = match payload::open(ns, &result.plaintext, payload_bytes, enc.iv.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            return (
                Decrypted::Failed {
                    ns,
                    reason: format!("could not decrypt the message body: {e}"),
                    repair: None,
                },
                republish,
            );
        }
    };
    let body = match ns {
        Namespace::Legacy => String::from_utf8_lossy(&plain).into_owned(),
        Namespace::Omemo2 => match open_envelope(&plain, sender, own, peer, groupchat) {
            Ok(body) => body,
            Err(e) => {
                return (
                    Decrypted::Failed {
                        ns,
                        reason: format!("could not read the decrypted message: {e}"),
                        repair: None,
                    },
                    republish,
                );
            }
        },
    };
    (
        Decrypted::Body {
            ns,
            body,
            device: enc.sid,
            warning,
        },
        republish,
    )
}

/// The body of an OMEMO 2 envelope, after checking its affixes against the stanza (a
/// server must not be able to re-address an encrypted message).
fn open_envelope(
    plain: &[u8],
    sender: &BareJid,
    own: &BareJid,
    peer: &BareJid,
    groupchat: bool,
) -> Result<String, xml::Error> {
    let envelope = xml::Envelope::from_bytes(plain)?;
    // In a room the envelope is addressed to the room; in a chat to the other side.
    let to = if groupchat || sender == own {
        peer
    } else {
        own
    };
    envelope.check(&xml::StanzaInfo {
        from: sender,
        to,
        groupchat,
        sent: None,
    })?;
    Ok(envelope.body().unwrap_or_default())
}

/// Would a new session with the sender fix this failure? (Not for tampering, replays or
/// garbage: those must not make us discard a working session.)
fn repairable(e: &DeviceError) -> bool {
    matches!(
        e,
        DeviceError::Omemo(
            OmemoError::NoSession
                | OmemoError::UnknownPreKey(_)
                | OmemoError::UnknownSignedPreKey(_)
        )
    )
}

/// An empty OMEMO message (no payload) that carries a fresh key exchange to one device:
/// the sender's next message then uses the new session (session repair, as Conversations
/// does after a message it could not decrypt).
pub fn key_transport_stanza(
    handle: &OmemoHandle,
    ns: Namespace,
    to: &BareJid,
    to_device: u32,
    bundle: &Bundle,
) -> Option<String> {
    use xmpp_parsers::message::{Id, Message};
    let device = handle.lock();
    let addr = Address::new(ns, to.as_str(), to_device);
    let km: [u8; 48] = rand::random();
    let e = match device.encrypt(&addr, Some(bundle), &km[..ns.key_material_len()]) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "cannot build a key transport message");
            return None;
        }
    };
    let el = xml::Encrypted {
        ns,
        sid: device.id(),
        keys: vec![xml::KeyFor {
            jid: Some(to.clone()),
            rid: addr.device,
            kex: e.kex,
            data: e.data,
        }],
        iv: None,
        payload: None,
    }
    .to_element()
    .ok()?;
    let mut m = Message::chat(Some(jid::Jid::from(to.clone())));
    m.id = Some(Id(crate::proto::new_id()));
    m.payloads.push(el);
    let mut el = Element::from(m);
    for d in xml::empty_message_decorations() {
        el.append_child(d);
    }
    Some(String::from(&el))
}

/// A person-readable reason for a decryption failure.
fn explain(e: &DeviceError, sid: u32) -> String {
    match e {
        DeviceError::Omemo(OmemoError::NoSession) => format!(
            "could not decrypt — sent to a device we have no session with (from device {sid}); \
             the sender's next message will start one"
        ),
        DeviceError::Omemo(OmemoError::UnknownPreKey(_) | OmemoError::UnknownSignedPreKey(_)) => {
            format!("could not decrypt — {e} (from device {sid})")
        }
        DeviceError::Omemo(OmemoError::Duplicate(_)) => {
            format!(
                "could not decrypt — this message was received and decrypted before (from device {sid})"
            )
        }
        other => format!("could not decrypt — {other} (from device {sid})"),
    }
}

/// Records the identity a device used, and decides the trust of a key seen for the first
/// time ([`OmemoStore::trust_or_default`]).
/// Records the sending device's key (and a trust decision for a new one); returns what to
/// tell the user when the key is not trusted.
fn note_identity(
    store: &OmemoStore,
    ns: Namespace,
    jid: &BareJid,
    device: u32,
    identity: &IdentityKey,
) -> Option<String> {
    let fpr = identity.canonical();
    if let Err(e) = store.set_device_state(ns, jid.as_str(), device, Some(&identity.encode()), None)
    {
        tracing::warn!(error = %e, "cannot record an OMEMO device's identity");
    }
    match store.trust_or_default(jid.as_str(), &fpr) {
        Ok(trust) => trust_warning(trust, jid, device),
        Err(e) => {
            tracing::warn!(error = %e, "cannot record trust in an OMEMO key");
            Some(format!(
                "the trust in {jid}'s device {device} could not be checked ({e})"
            ))
        }
    }
}

/// What a message from a device with this trust must say; `None` for trusted keys.
pub fn trust_warning(trust: Trust, jid: &BareJid, device: u32) -> Option<String> {
    match trust {
        Trust::Blind | Trust::Verified => None,
        Trust::Untrusted => Some(format!(
            "sent from {jid}'s device {device}, which you marked untrusted: it may not be them"
        )),
        Trust::Undecided => Some(format!(
            "sent from a new device of {jid} ({device}) that you have not verified: check its \
             key in the encryption keys before you trust what it says"
        )),
    }
}

/// Which namespace to encrypt to `peer` with: OMEMO 2 when each of their legacy devices also
/// speaks OMEMO 2 (the same id in both lists), legacy otherwise.
pub fn choose_namespace(legacy: &[u32], omemo2: &[u32]) -> Option<Namespace> {
    match (legacy.is_empty(), omemo2.is_empty()) {
        (true, true) => None,
        (_, false) if legacy.iter().all(|d| omemo2.contains(d)) => Some(Namespace::Omemo2),
        (false, _) => Some(Namespace::Legacy),
        (true, false) => Some(Namespace::Omemo2),
    }
}

/// A device to encrypt for: its address, and its bundle when we have no session yet.
pub struct Recipient {
    pub addr: Address,
    pub bundle: Option<Bundle>,
}

/// One device we could not encrypt for, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub jid: String,
    pub device: u32,
    pub reason: String,
}

/// Encrypts `body` for `recipients` in `ns`: the `<encrypted>` element and the devices that
/// could not be included. For OMEMO 2 the body travels in an XEP-0420 envelope from `own`
/// to `to`.
pub fn encrypt(
    handle: &OmemoHandle,
    ns: Namespace,
    own: &BareJid,
    to: &BareJid,
    body: &str,
    recipients: &[Recipient],
) -> (Option<Element>, Vec<Skipped>) {
    let plaintext = match ns {
        Namespace::Legacy => body.as_bytes().to_vec(),
        Namespace::Omemo2 => {
            xml::Envelope::with_body(body, own.clone(), to.clone(), chrono::Utc::now()).to_bytes()
        }
    };
    let sealed = payload::seal(ns, &plaintext);
    let device = handle.lock();
    let mut keys = Vec::new();
    let mut skipped = Vec::new();
    for r in recipients {
        match device.encrypt(&r.addr, r.bundle.as_ref(), &sealed.key_material) {
            Ok(e) => keys.push(xml::KeyFor {
                jid: BareJid::new(&r.addr.jid).ok(),
                rid: r.addr.device,
                kex: e.kex,
                data: e.data,
            }),
            Err(e) => skipped.push(Skipped {
                jid: r.addr.jid.clone(),
                device: r.addr.device,
                reason: e.to_string(),
            }),
        }
    }
    if keys.is_empty() {
        return (None, skipped);
    }
    let el = xml::Encrypted {
        ns,
        sid: device.id(),
        keys,
        iv: sealed.iv.map(|iv| iv.to_vec()),
        payload: Some(sealed.payload),
    };
    match el.to_element() {
        Ok(el) => (Some(el), skipped),
        Err(e) => {
            tracing::error!(error = %e, "cannot build the OMEMO element");
            (None, skipped)
        }
    }
}

/// The stanza of an encrypted chat message, for the outbox: the `<encrypted>` element, the
/// ids receipts and corrections need, and the plaintext decorations (EME, fallback body,
/// store hint) for clients without OMEMO.
pub fn message_stanza(
    ns: Namespace,
    to: &BareJid,
    id: &str,
    encrypted: Element,
    groupchat: bool,
) -> String {
    use xmpp_parsers::message::{Id, Message};
    let to = Some(jid::Jid::from(to.clone()));
    let mut m = if groupchat {
        Message::groupchat(to)
    } else {
        Message::chat(to)
            .with_payload(xmpp_parsers::receipts::Request)
            .with_payload(xmpp_parsers::displayed_markers::Markable)
    }
    .with_payload(xmpp_parsers::stanza_id::OriginId { id: id.to_owned() });
    m.id = Some(Id(id.to_owned()));
    m.payloads.push(encrypted);
    let mut el = Element::from(m);
    for d in xml::decorations(ns) {
        el.append_child(d);
    }
    String::from(&el)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untrusted_and_undecided_senders_are_flagged() -> anyhow::Result<()> {
        let bob: BareJid = "bob@example.org".parse()?;
        assert_eq!(trust_warning(Trust::Blind, &bob, 7), None);
        assert_eq!(trust_warning(Trust::Verified, &bob, 7), None);
        let w = trust_warning(Trust::Untrusted, &bob, 7).unwrap_or_default();
        assert!(
            w.contains("bob@example.org's device 7") && w.contains("untrusted"),
            "{w}"
        );
        let w = trust_warning(Trust::Undecided, &bob, 7).unwrap_or_default();
        assert!(
            w.contains("new device") && w.contains("not verified"),
            "{w}"
        );
        Ok(())
    }

    #[test]
    fn namespace_choice() {
        assert_eq!(choose_namespace(&[], &[]), None);
        assert_eq!(choose_namespace(&[1, 2], &[]), Some(Namespace::Legacy));
        assert_eq!(choose_namespace(&[], &[3]), Some(Namespace::Omemo2));
        assert_eq!(
            choose_namespace(&[1, 2], &[1, 2, 3]),
            Some(Namespace::Omemo2)
        );
        assert_eq!(choose_namespace(&[1, 2], &[1]), Some(Namespace::Legacy));
    }
}
