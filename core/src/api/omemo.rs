//! OMEMO on the `Client`: our device and its published keys, others' device lists and
//! bundles (PEP), encrypted sending, fingerprints and trust.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use jid::BareJid;
use zeroize::Zeroizing;

use super::{Client, Error, Event, Result, parse_bare, parse_contact};
use crate::crypto::omemo::Namespace;
use crate::crypto::omemo::device::Device;
use crate::crypto::omemo::store::Address;
use crate::proto::{omemo as xml, pubsub};
use crate::secrets::Password;
use crate::services::omemo::{self as service, OmemoHandle, Recipient, Skipped};
use crate::store::omemo::{OmemoStore, Trust};
use crate::store::{AccountRecord, Encryption, MessageKind, MessageRecord, OutgoingMessage};

/// One OMEMO device of a contact (or of ours), for fingerprint and trust views.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OmemoDeviceInfo {
    pub ns: Namespace,
    pub device: u32,
    pub label: Option<String>,
    /// Still in the owner's device list.
    pub active: bool,
    /// Hex fingerprint, once the identity key is known.
    pub fingerprint: Option<String>,
    pub trust: Option<Trust>,
    /// Why we cannot encrypt to it (bundle missing, bad signature…).
    pub failure: Option<String>,
}

impl From<crate::crypto::omemo::device::DeviceError> for Error {
    fn from(e: crate::crypto::omemo::device::DeviceError) -> Self {
        Error::Omemo(e.to_string())
    }
}

/// The keyring entry holding the key that seals an account's OMEMO store.
fn store_key_name(account: &str) -> String {
    format!("omemo-store-key:{account}")
}

impl Client {
    /// The account's OMEMO device, created on first use (the key sealing its private keys
    /// goes to the OS keyring).
    pub(crate) async fn omemo(&self, acc: &AccountRecord) -> Result<OmemoHandle> {
        if let Some(h) = self
            .inner
            .omemo
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&acc.jid)
        {
            return Ok(h.clone());
        }
        let name = store_key_name(&acc.jid);
        let key = match self.inner.secrets.load_stored(&name).await? {
            Some(k) => {
                let bytes = Zeroizing::new(B64.decode(k.expose()).map_err(|_| {
                    Error::Secret(format!("the OMEMO store key of {} is corrupt", acc.jid))
                })?);
                let arr: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                    Error::Secret(format!("the OMEMO store key of {} is corrupt", acc.jid))
                })?;
                Zeroizing::new(arr)
            }
            None => {
                let k = Zeroizing::new(rand::random::<[u8; 32]>());
                self.inner
                    .secrets
                    .save(&name, &Password::new(B64.encode(k.as_ref())))
                    .await?;
                k
            }
        };
        let store = OmemoStore::new(self.inner.store.clone(), acc.id, key);
        let device = Device::open(
            store,
            Device::<OmemoStore>::random_id,
            chrono::Utc::now().timestamp(),
        )?;
        let handle = OmemoHandle::new(device);
        self.inner
            .omemo
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(acc.jid.clone())
            .or_insert(handle.clone());
        Ok(handle)
    }

    /// Publishes our device in both namespaces' device lists (keeping other devices listed)
    /// and our bundles, refilling pre-keys and rotating the signed pre-key as due. Runs
    /// after each connection; idempotent.
    pub async fn omemo_publish(&self, account: &str) -> Result<()> {
        let acc = self.inner.store.account(parse_bare(account)?.as_str())?;
        let handle = self.omemo(&acc).await?;
        // Our OMEMO 2 device label, signed (shown by Kaidan, Gajim…). No host name: the
        // list is public.
        let label = format!("Starling on {}", std::env::consts::OS);
        let (id, bundles, label_sig) = {
            let d = handle.lock();
            d.refill_pre_keys()?;
            d.rotate_signed_pre_key(chrono::Utc::now().timestamp())?;
            let label_sig = d.sign_label(&label);
            let mut b = Vec::new();
            for ns in Namespace::ALL {
                b.push((ns, d.bundle(ns)?));
            }
            (d.id(), b, (label_sig, d.identity(Namespace::Omemo2)))
        };
        let (label_sig, identity) = label_sig;
        let own = parse_bare(&acc.jid)?;
        for (ns, bundle) in bundles {
            let mut list = self
                .omemo_fetch_devices(&acc, &own, ns)
                .await
                .unwrap_or_else(|_| xml::DeviceList::new(ns, []));
            // A signature is made afresh each time (XEdDSA is randomised): a listed label
            // that still verifies is kept, so an unchanged list is not republished.
            let signed = list.devices.iter().any(|e| {
                e.id == id
                    && e.label.as_deref() == Some(label.as_str())
                    && e.labelsig.as_deref().is_some_and(|sig| {
                        crate::crypto::omemo::keys::label_verifies(&identity, &label, sig)
                    })
            });
            let changed = match ns {
                Namespace::Omemo2 if signed => false,
                Namespace::Omemo2 => {
                    list.ensure(xml::DeviceEntry::with_label(id, &label, label_sig.clone()))
                }
                Namespace::Legacy => list.ensure(xml::DeviceEntry::new(id)),
            };
            // The bundle first: a contact who sees the device listed fetches it at once.
            self.pubsub(
                &acc.jid,
                None,
                true,
                xml::publish_bundle(ns, id, &bundle).into(),
            )
            .await?;
            if changed {
                self.pubsub(&acc.jid, None, true, xml::publish_device_list(&list).into())
                    .await?;
            }
        }
        Ok(())
    }

    /// Fetches a device list and records it.
    async fn omemo_fetch_devices(
        &self,
        acc: &AccountRecord,
        jid: &BareJid,
        ns: Namespace,
    ) -> Result<xml::DeviceList> {
        let r = self
            .pubsub(&acc.jid, Some(jid), false, xml::request_device_list(ns))
            .await;
        let list = match r {
            Ok(Some(el)) => pubsub::parse_items(&el)
                .map(|(_, items)| xml::device_list_from_items(ns, &items))
                .transpose()
                .map_err(|e| Error::Refused(format!("malformed OMEMO device list of {jid}: {e}")))?
                .unwrap_or_else(|| xml::DeviceList::new(ns, [])),
            // No node (or not allowed to see it): no devices in this namespace.
            Ok(None) | Err(Error::Refused(_)) => xml::DeviceList::new(ns, []),
            Err(e) => return Err(e),
        };
        let devices: Vec<(u32, Option<String>)> =
            list.devices.iter().map(|d| (d.id, None)).collect();
        let handle = self.omemo(acc).await?;
        handle
            .lock()
            .store()
            .set_devices(ns, jid.as_str(), &devices)?;
        Ok(list)
    }

    /// Fetches and verifies one device's bundle.
    async fn omemo_fetch_bundle(
        &self,
        acc: &AccountRecord,
        jid: &BareJid,
        ns: Namespace,
        device: u32,
    ) -> std::result::Result<crate::crypto::omemo::keys::Bundle, String> {
        let el = self
            .pubsub(&acc.jid, Some(jid), false, xml::request_bundle(ns, device))
            .await
            .map_err(|e| format!("its bundle could not be fetched: {e}"))?
            .ok_or("it has no published bundle")?;
        let (_, items) = pubsub::parse_items(&el).ok_or("it has no published bundle")?;
        let published = xml::bundle_from_items(ns, device, &items)
            .map_err(|e| format!("its bundle is malformed: {e}"))?;
        published
            .decode(ns)
            .map_err(|e| format!("its bundle was refused: {e}"))
    }

    /// Whom to encrypt for: every usable device of `peer` and our own other devices, with
    /// bundles fetched for those without a session. Devices we cannot use are reported.
    async fn omemo_recipients(
        &self,
        acc: &AccountRecord,
        handle: &OmemoHandle,
        peers: &[BareJid],
        room: Option<&BareJid>,
    ) -> Result<(Namespace, Vec<Recipient>, Vec<Skipped>)> {
        let own = parse_bare(&acc.jid)?;
        let what = room.unwrap_or(&own).to_string();
        // Each person's devices per namespace: (legacy, OMEMO 2).
        let mut lists: Vec<(BareJid, Vec<u32>, Vec<u32>)> = Vec::new();
        for peer in peers.iter().filter(|p| **p != own) {
            let mut per_ns = Vec::new();
            for ns in [Namespace::Legacy, Namespace::Omemo2] {
                let known = handle.lock().store().devices(ns, peer.as_str())?;
                let active: Vec<u32> = if known.is_empty() {
                    self.omemo_fetch_devices(acc, peer, ns)
                        .await?
                        .ids()
                        .collect()
                } else {
                    known
                        .iter()
                        .filter(|d| d.active)
                        .map(|d| d.device)
                        .collect()
                };
                per_ns.push(active);
            }
            let omemo2 = per_ns.pop().unwrap_or_default();
            let legacy = per_ns.pop().unwrap_or_default();
            lists.push((peer.clone(), legacy, omemo2));
        }
        let without: Vec<String> = lists
            .iter()
            .filter(|(_, l, o)| l.is_empty() && o.is_empty())
            .map(|(j, _, _)| j.to_string())
            .collect();
        if !without.is_empty() || lists.is_empty() {
            return Err(Error::NotEncryptable {
                jid: room.map_or_else(|| without.join(", "), ToString::to_string),
                reason: if lists.is_empty() {
                    "there is nobody to encrypt for (no members besides you)".into()
                } else if room.is_some() {
                    format!(
                        "these members have no OMEMO keys (their clients do not support OMEMO, or \
                         have not published them): {}",
                        without.join(", ")
                    )
                } else {
                    "they have no OMEMO devices (their client does not support OMEMO, or it is \
                     not published)"
                        .into()
                },
            });
        }
        // One namespace for everyone: OMEMO 2 when it suits every person, else legacy, which
        // then everyone must speak.
        let ns = if lists
            .iter()
            .all(|(_, l, o)| service::choose_namespace(l, o) == Some(Namespace::Omemo2))
        {
            Namespace::Omemo2
        } else {
            let only2: Vec<String> = lists
                .iter()
                .filter(|(_, l, _)| l.is_empty())
                .map(|(j, _, _)| j.to_string())
                .collect();
            if !only2.is_empty() {
                return Err(Error::NotEncryptable {
                    jid: what,
                    reason: format!(
                        "some members speak only OMEMO 2 ({}) and others only legacy OMEMO",
                        only2.join(", ")
                    ),
                });
            }
            Namespace::Legacy
        };
        let our_id = handle.lock().id();
        let mut targets: Vec<(BareJid, u32)> = lists
            .iter()
            .flat_map(|(j, l, o)| {
                let ids = if ns == Namespace::Omemo2 { o } else { l };
                ids.iter().map(move |d| (j.clone(), *d))
            })
            .collect();
        if let Ok(mine) = self.omemo_fetch_devices(acc, &own, ns).await {
            targets.extend(
                mine.ids()
                    .filter(|d| *d != our_id)
                    .map(|d| (own.clone(), d)),
            );
        }
        let mut recipients = Vec::new();
        let mut skipped = Vec::new();
        for (jid, device) in targets {
            let addr = Address::new(ns, jid.as_str(), device);
            let (has_session, identity) = {
                let d = handle.lock();
                (d.has_session(&addr)?, d.session_identity(&addr)?)
            };
            let bundle = if has_session {
                None
            } else {
                match self.omemo_fetch_bundle(acc, &jid, ns, device).await {
                    Ok(b) => Some(b),
                    Err(reason) => {
                        handle.lock().store().set_device_state(
                            ns,
                            jid.as_str(),
                            device,
                            None,
                            Some(&reason),
                        )?;
                        skipped.push(Skipped {
                            jid: jid.to_string(),
                            device,
                            reason,
                        });
                        continue;
                    }
                }
            };
            let fpr = identity
                .map(|i| i.canonical())
                .or_else(|| bundle.as_ref().map(|b| b.identity.canonical()));
            if let Some(fpr) = &fpr {
                let store = handle.lock().store().clone();
                let trust = store.trust_or_default(jid.as_str(), fpr)?;
                if !trust.usable() {
                    skipped.push(Skipped {
                        jid: jid.to_string(),
                        device,
                        reason: match trust {
                            Trust::Untrusted => "you marked this device untrusted".into(),
                            _ => {
                                "this new device is not trusted yet: verify its fingerprint".into()
                            }
                        },
                    });
                    continue;
                }
            }
            if let Some(b) = &bundle {
                handle.lock().store().set_device_state(
                    ns,
                    jid.as_str(),
                    device,
                    Some(&b.identity.encode()),
                    None,
                )?;
            }
            recipients.push(Recipient { addr, bundle });
        }
        Ok((ns, recipients, skipped))
    }

    /// Sends an OMEMO-encrypted chat message (the conversation becomes encrypted, sticky).
    /// The message is stored and queued like any other; devices that could not be included
    /// are named in an [`Event::EncryptionSkipped`].
    pub async fn send_encrypted(
        &self,
        account: &str,
        to: &str,
        body: &str,
    ) -> Result<MessageRecord> {
        let acc = self.inner.store.account(parse_bare(account)?.as_str())?;
        let peer = parse_contact(to)?;
        let id = crate::proto::new_id();
        let (stanza, encryption) = self.encrypted_stanza(&acc, &peer, &id, body).await?;
        self.queue(
            &acc,
            OutgoingMessage {
                peer: peer.to_string(),
                kind: MessageKind::Chat,
                sender: format!("{}/{}", acc.jid, acc.resource),
                id,
                body: body.to_owned(),
                stanza,
                encryption: Some(encryption),
            },
        )
        .await
    }

    /// The OMEMO-encrypted stanza (message id `id`) carrying `body` to `peer` and our
    /// other devices; the conversation becomes encrypted (sticky), and devices left out
    /// are reported. Refused when none of `peer`'s devices can be used.
    pub(super) async fn encrypted_stanza(
        &self,
        acc: &AccountRecord,
        peer: &BareJid,
        id: &str,
        body: &str,
    ) -> Result<(String, Encryption)> {
        let own = parse_bare(&acc.jid)?;
        let handle = self.omemo(acc).await?;
        let (ns, recipients, skipped) = self
            .omemo_recipients(acc, &handle, std::slice::from_ref(peer), None)
            .await?;
        let to_peer = recipients.iter().any(|r| r.addr.jid == peer.as_str());
        if !to_peer {
            let why = skipped
                .iter()
                .filter(|s| s.jid == peer.as_str())
                .map(|s| format!("device {}: {}", s.device, s.reason))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(Error::NotEncryptable {
                jid: peer.to_string(),
                reason: if why.is_empty() {
                    "none of their devices can be used".into()
                } else {
                    why
                },
            });
        }
        let (element, more_skipped) = service::encrypt(&handle, ns, &own, peer, body, &recipients);
        let element = element.ok_or_else(|| Error::NotEncryptable {
            jid: peer.to_string(),
            reason: "encryption failed for every device".into(),
        })?;
        let stanza = service::message_stanza(ns, peer, id, element, false);
        self.inner
            .store
            .set_conversation_encryption(acc.id, peer.as_str(), Some("omemo"))?;
        self.report_skipped(acc, peer.as_str(), &skipped, &more_skipped);
        Ok((stanza, service::encryption_of(ns)))
    }

    /// Tells the user which devices an encrypted message could not be encrypted for (found
    /// while choosing recipients, or while encrypting).
    fn report_skipped(
        &self,
        acc: &AccountRecord,
        peer: &str,
        before: &[Skipped],
        during: &[Skipped],
    ) {
        let devices: Vec<String> = before
            .iter()
            .chain(during)
            .map(|s| format!("{} device {}: {}", s.jid, s.device, s.reason))
            .collect();
        if !devices.is_empty() {
            self.emit(Event::EncryptionSkipped {
                account: acc.jid.clone(),
                peer: peer.to_owned(),
                devices,
            });
        }
    }

    /// Sends an OMEMO-encrypted message to a room (the room's encryption becomes sticky).
    /// Only members-only, non-anonymous rooms can be encrypted (the member list says whom to
    /// encrypt for, and real JIDs say whose keys to use), as in Conversations and Dino; every
    /// other case is refused with the reason, naming members without keys.
    pub async fn send_room_encrypted(
        &self,
        account: &str,
        room: &str,
        body: &str,
    ) -> Result<MessageRecord> {
        let acc = self.account_record(account)?;
        let room = super::rooms::parse_room(room)?;
        let r = self.known_room(&acc, &room)?;
        let info = self.room_info(&acc.jid, room.as_str()).await?;
        if !info.members_only || !info.non_anonymous {
            let why = match (info.members_only, info.non_anonymous) {
                (false, false) => "it is open to anyone and hides members' addresses",
                (false, true) => {
                    "it is open to anyone (not members-only), so there is no member list to encrypt for"
                }
                _ => {
                    "it is anonymous: members' real addresses are hidden, so their keys cannot be found"
                }
            };
            return Err(Error::NotEncryptable {
                jid: room.to_string(),
                reason: format!("this room cannot be encrypted: {why}"),
            });
        }
        let mut members: Vec<BareJid> = Vec::new();
        for aff in [
            crate::api::Affiliation::Owner,
            crate::api::Affiliation::Admin,
            crate::api::Affiliation::Member,
        ] {
            for e in self.affiliations(&acc.jid, room.as_str(), aff).await? {
                if let Ok(j) = BareJid::new(&e.jid)
                    && !members.contains(&j)
                {
                    members.push(j);
                }
            }
        }
        let own = parse_bare(&acc.jid)?;
        let handle = self.omemo(&acc).await?;
        let (ns, recipients, skipped) = self
            .omemo_recipients(&acc, &handle, &members, Some(&room))
            .await?;
        let (element, more_skipped) = service::encrypt(&handle, ns, &own, &room, body, &recipients);
        let element = element.ok_or_else(|| Error::NotEncryptable {
            jid: room.to_string(),
            reason: "encryption failed for every device".into(),
        })?;
        let id = crate::proto::new_id();
        let stanza = service::message_stanza(ns, &room, &id, element, true);
        self.inner
            .store
            .set_conversation_encryption(acc.id, room.as_str(), Some("omemo"))?;
        self.report_skipped(&acc, room.as_str(), &skipped, &more_skipped);
        self.queue(
            &acc,
            OutgoingMessage {
                peer: room.to_string(),
                kind: MessageKind::GroupChat,
                sender: format!("{room}/{}", r.nick),
                id,
                body: body.to_owned(),
                stanza,
                encryption: Some(service::encryption_of(ns)),
            },
        )
        .await
    }

    /// Starts a new session with a device whose message we could not decrypt: an empty
    /// message with a fresh key exchange, queued like any stanza.
    pub(crate) async fn omemo_repair(
        &self,
        account: &str,
        jid: &str,
        device: u32,
        namespace: &str,
    ) -> Result<()> {
        let acc = self.inner.store.account(parse_bare(account)?.as_str())?;
        let jid = parse_contact(jid)?;
        let ns = Namespace::ALL
            .into_iter()
            .find(|n| n.xmlns() == namespace)
            .ok_or_else(|| Error::Omemo(format!("unknown OMEMO namespace {namespace}")))?;
        let handle = self.omemo(&acc).await?;
        let bundle = self
            .omemo_fetch_bundle(&acc, &jid, ns, device)
            .await
            .map_err(|reason| Error::NotEncryptable {
                jid: jid.to_string(),
                reason,
            })?;
        let Some(stanza) = service::key_transport_stanza(&handle, ns, &jid, device, &bundle) else {
            return Err(Error::Omemo("could not build the key exchange".into()));
        };
        tracing::info!(%jid, device, ?ns, "repairing a broken OMEMO session");
        self.inner.store.queue_stanza(acc.id, &stanza)?;
        self.flush(&acc.jid).await;
        Ok(())
    }

    /// Forgets our sessions with `jid`'s devices: the next message to them starts new ones
    /// (a manual "reset" for a contact whose messages do not decrypt).
    pub async fn omemo_forget_sessions(&self, account: &str, jid: &str) -> Result<()> {
        let acc = self.inner.store.account(parse_bare(account)?.as_str())?;
        let jid = parse_contact(jid)?;
        let handle = self.omemo(&acc).await?;
        let device = handle.lock();
        for ns in Namespace::ALL {
            for d in device.store().devices(ns, jid.as_str())? {
                device.forget_session(&Address::new(ns, jid.as_str(), d.device))?;
            }
        }
        Ok(())
    }

    /// Our own OMEMO fingerprint (the same key in both namespaces) and device id.
    pub async fn omemo_own(&self, account: &str) -> Result<(u32, String)> {
        let acc = self.inner.store.account(parse_bare(account)?.as_str())?;
        let h = self.omemo(&acc).await?;
        let d = h.lock();
        Ok((d.id(), d.identity(Namespace::Legacy).fingerprint()))
    }

    /// The devices of `jid` (fetching their lists and bundles when online), with
    /// fingerprints and trust.
    pub async fn omemo_devices(&self, account: &str, jid: &str) -> Result<Vec<OmemoDeviceInfo>> {
        let acc = self.inner.store.account(parse_bare(account)?.as_str())?;
        let jid = parse_contact(jid)?;
        let handle = self.omemo(&acc).await?;
        let online = self.actor(&acc.jid).await.is_some();
        let mut out = Vec::new();
        for ns in Namespace::ALL {
            let list = match online {
                true => Some(self.omemo_fetch_devices(&acc, &jid, ns).await?),
                false => None,
            };
            let devices = handle.lock().store().devices(ns, jid.as_str())?;
            for d in devices {
                let mut identity = d.identity.clone();
                if identity.is_none() && d.active && online {
                    match self.omemo_fetch_bundle(&acc, &jid, ns, d.device).await {
                        Ok(b) => {
                            identity = Some(b.identity.encode());
                            handle.lock().store().set_device_state(
                                ns,
                                jid.as_str(),
                                d.device,
                                identity.as_deref(),
                                None,
                            )?;
                        }
                        Err(reason) => {
                            handle.lock().store().set_device_state(
                                ns,
                                jid.as_str(),
                                d.device,
                                None,
                                Some(&reason),
                            )?;
                        }
                    }
                }
                let key = identity
                    .as_deref()
                    .and_then(|i| crate::crypto::omemo::keys::IdentityKey::decode(ns, i).ok());
                let fingerprint = key.as_ref().map(|k| k.fingerprint());
                let trust = match &key {
                    Some(k) => handle.lock().store().trust(jid.as_str(), &k.canonical())?,
                    None => None,
                };
                // A label shows only when its signature verifies under the device's key
                // (XEP-0384 v0.9): anyone who can publish a list could write any label.
                let label = list
                    .as_ref()
                    .and_then(|l| l.devices.iter().find(|e| e.id == d.device))
                    .zip(key.as_ref())
                    .and_then(|(e, k)| {
                        let (label, sig) = (e.label.as_deref()?, e.labelsig.as_deref()?);
                        crate::crypto::omemo::keys::label_verifies(k, label, sig)
                            .then(|| label.to_owned())
                    });
                out.push(OmemoDeviceInfo {
                    ns,
                    device: d.device,
                    label,
                    active: d.active,
                    fingerprint,
                    trust,
                    failure: d.failure,
                });
            }
        }
        Ok(out)
    }

    /// Sets our trust in one of `jid`'s keys (by fingerprint, hex; spaces and case ignored).
    pub async fn omemo_set_trust(
        &self,
        account: &str,
        jid: &str,
        fingerprint: &str,
        trust: Trust,
    ) -> Result<()> {
        let acc = self.inner.store.account(parse_bare(account)?.as_str())?;
        let jid = parse_contact(jid)?;
        let fpr: String = fingerprint
            .chars()
            .filter(|c| !c.is_whitespace() && *c != ':')
            .collect::<String>()
            .to_ascii_lowercase();
        if fpr.len() != 64 || !fpr.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::BadFingerprint(fingerprint.to_owned()));
        }
        let handle = self.omemo(&acc).await?;
        // The fingerprint may be shown in either namespace's form (Conversations shows the
        // X25519 key, OMEMO 2 clients the Ed25519 one); trust is kept under the X25519 form.
        let store = handle.lock().store().clone();
        let mut canonical = None;
        for ns in Namespace::ALL {
            for d in store.devices(ns, jid.as_str())? {
                if let Some(k) = d
                    .identity
                    .as_deref()
                    .and_then(|i| crate::crypto::omemo::keys::IdentityKey::decode(ns, i).ok())
                    && (k.fingerprint() == fpr || k.canonical() == fpr)
                {
                    canonical = Some(k.canonical());
                }
            }
        }
        let canonical = canonical.unwrap_or(fpr);
        store.set_trust(jid.as_str(), &canonical, trust)?;
        Ok(())
    }

    /// The conversation's sticky encryption.
    pub fn conversation_encryption(&self, account: &str, peer: &str) -> Result<Option<Encryption>> {
        let acc = self.inner.store.account(parse_bare(account)?.as_str())?;
        Ok(
            match self
                .inner
                .store
                .conversation_encryption(acc.id, &parse_contact(peer)?.to_string())?
                .as_deref()
            {
                Some("omemo") => Some(Encryption::Omemo),
                Some("otr") => Some(Encryption::Otr),
                _ => None,
            },
        )
    }

    /// Turns encryption of a conversation on (OMEMO) or — only ever at the user's explicit
    /// request — off.
    pub fn set_conversation_encryption(
        &self,
        account: &str,
        peer: &str,
        omemo: bool,
    ) -> Result<()> {
        let acc = self.inner.store.account(parse_bare(account)?.as_str())?;
        self.inner.store.set_conversation_encryption(
            acc.id,
            &parse_contact(peer)?.to_string(),
            omemo.then_some("omemo"),
        )?;
        Ok(())
    }
}
