//! End-to-end encryption in the views: the composer's lock (and the rule that turning it
//! off needs a confirmation), how fingerprints and trust read, the rows of the keys view,
//! the QR code of our own key, and the wording of encryption notices and errors.
//!
//! No Slint types and no I/O: the chat and keys adapters read the core and show these.

use starling_core::crypto::omemo::Namespace;
use starling_core::crypto::otr::OtrStatus;
use starling_core::store::Encryption;
use starling_core::store::omemo::Trust;
use starling_core::{Error, OmemoDeviceInfo, OtrInfo};

use super::rooms::{self, ConvKind};

/// A conversation's encryption as the composer's lock shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Lock {
    /// Not read yet: the lock does nothing until it is.
    #[default]
    Unknown,
    /// Plaintext.
    Off,
    /// Encrypted, sticky: every message is encrypted or not sent.
    On(Encryption),
}

impl Lock {
    pub fn from_core(e: Option<Encryption>) -> Lock {
        e.map_or(Lock::Off, Lock::On)
    }

    pub fn is_on(self) -> bool {
        matches!(self, Lock::On(_))
    }

    /// The name of the encryption ("OMEMO"), "" when off or unknown.
    pub fn name(self) -> &'static str {
        match self {
            Lock::On(e) => encryption_name(e),
            Lock::Off | Lock::Unknown => "",
        }
    }

    /// What the lock says it does (its accessible description).
    pub fn description(self) -> &'static str {
        match self {
            Lock::Unknown => "",
            Lock::Off => "Not encrypted. Turn on to encrypt every message with OMEMO.",
            Lock::On(Encryption::Otr) => "Encrypted with OTR. Turn off to send unencrypted.",
            Lock::On(_) => "End-to-end encrypted with OMEMO. Turn off to send unencrypted.",
        }
    }
}

/// What a click on the composer's lock does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockClick {
    Nothing,
    /// Encrypt from now on (OMEMO).
    TurnOn,
    /// Ask "Send unencrypted from now on?" first: encryption is sticky, so turning it off
    /// changes every later message, and one slip would send plaintext.
    ConfirmOff,
}

/// The rule of the lock: chats and rooms have it (a room can only be encrypted when it is
/// members-only and non-anonymous: the core refuses to send otherwise, and says why), not
/// private messages in a room; on is immediate, off always asks first; nothing happens
/// while the state is still being read.
pub fn on_lock_clicked(kind: ConvKind, lock: Lock) -> LockClick {
    if !has_lock(kind) {
        return LockClick::Nothing;
    }
    match lock {
        Lock::Off => LockClick::TurnOn,
        Lock::On(_) => LockClick::ConfirmOff,
        Lock::Unknown => LockClick::Nothing,
    }
}

/// Whether the composer shows the lock for this kind of conversation.
pub fn has_lock(kind: ConvKind) -> bool {
    matches!(kind, ConvKind::Chat | ConvKind::Room)
}

pub fn encryption_name(e: Encryption) -> &'static str {
    match e {
        Encryption::Omemo => "OMEMO",
        Encryption::Omemo2 => "OMEMO 2",
        Encryption::Otr => "OTR",
    }
}

pub fn namespace_name(ns: Namespace) -> &'static str {
    match ns {
        Namespace::Legacy => "OMEMO",
        Namespace::Omemo2 => "OMEMO 2",
    }
}

/// Hex digits only, lowercase (spaces, colons and case of a typed or shown fingerprint
/// dropped).
pub fn normalise_fingerprint(fpr: &str) -> String {
    fpr.chars()
        .filter(char::is_ascii_hexdigit)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// A fingerprint as people compare it: groups of 8 hex digits ("05d1a9c3 8e7f…").
pub fn group_fingerprint(fpr: &str) -> String {
    let hex = normalise_fingerprint(fpr);
    let groups: Vec<&str> = hex
        .as_bytes()
        .chunks(8)
        .filter_map(|c| std::str::from_utf8(c).ok())
        .collect();
    groups.join(" ")
}

/// How the keys view shows a trust state.
pub fn trust_label(t: Trust) -> &'static str {
    match t {
        Trust::Blind => "trusted, not verified",
        Trust::Verified => "verified",
        Trust::Untrusted => "untrusted",
        Trust::Undecided => "new key — decide",
    }
}

/// The trust a key has, or will get when first used: the core trusts a new key blindly
/// until one of the contact's keys was verified, and from then on asks (undecided).
pub fn effective_trust(trust: Option<Trust>, any_verified: bool) -> Trust {
    trust.unwrap_or(if any_verified {
        Trust::Undecided
    } else {
        Trust::Blind
    })
}

/// One device in the keys view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    /// The device id, as text (ids go up to 2^31).
    pub device: String,
    /// "OMEMO" or "OMEMO 2".
    pub namespace: &'static str,
    /// The device's label, when its owner published one.
    pub label: String,
    /// Grouped for reading; "" when its key is not known.
    pub fingerprint: String,
    /// The fingerprint as hex (what the trust actions are given); "" when unknown.
    pub key: String,
    /// None while the key is not known.
    pub trust: Option<Trust>,
    pub trust_text: &'static str,
    /// Still in its owner's device list (removed devices are shown dimmed).
    pub active: bool,
    /// Why it cannot be used, or that it was removed ("" otherwise).
    pub note: String,
    pub can_verify: bool,
    pub can_distrust: bool,
}

/// The rows of the keys view: devices still in use first, then by device (a device's two
/// namespaces together), OMEMO 2 before OMEMO.
pub fn key_rows(devices: &[OmemoDeviceInfo]) -> Vec<KeyRow> {
    let any_verified = devices.iter().any(|d| d.trust == Some(Trust::Verified));
    let mut sorted: Vec<&OmemoDeviceInfo> = devices.iter().collect();
    sorted.sort_by_key(|d| (!d.active, d.device, d.ns != Namespace::Omemo2));
    sorted
        .into_iter()
        .map(|d| {
            let key = d
                .fingerprint
                .as_deref()
                .map(normalise_fingerprint)
                .unwrap_or_default();
            let trust = (!key.is_empty()).then(|| effective_trust(d.trust, any_verified));
            let note = match (&d.failure, d.active, key.is_empty()) {
                (_, false, _) => "Removed from their device list.".to_owned(),
                (Some(f), true, _) => format!("Cannot be used: {f}."),
                (None, true, true) => "Its key is not known yet (offline?).".to_owned(),
                (None, true, false) => String::new(),
            };
            KeyRow {
                device: d.device.to_string(),
                namespace: namespace_name(d.ns),
                label: d.label.clone().unwrap_or_default(),
                fingerprint: group_fingerprint(&key),
                trust,
                trust_text: trust.map(trust_label).unwrap_or(""),
                active: d.active,
                note,
                can_verify: trust.is_some_and(|t| t != Trust::Verified),
                can_distrust: trust.is_some_and(|t| t != Trust::Untrusted),
                key,
            }
        })
        .collect()
}

/// The `xmpp:` URI that Conversations (and others) scan to verify our key:
/// `xmpp:JID?omemo-sid-DEVICE=FINGERPRINT`.
pub fn own_key_uri(jid: &str, device: u32, fingerprint: &str) -> String {
    format!(
        "xmpp:{jid}?omemo-sid-{device}={}",
        normalise_fingerprint(fingerprint)
    )
}

/// A QR code as a square of modules, with its quiet zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qr {
    /// Modules per side, quiet zone included.
    pub size: usize,
    /// Row by row, `true` for dark.
    pub dark: Vec<bool>,
}

/// Modules of light margin around the code (the QR specification's quiet zone).
const QUIET: usize = 4;

/// Encodes `text` (medium error correction); None when it is too long for a QR code.
pub fn qr(text: &str) -> Option<Qr> {
    let code =
        qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M).ok()?;
    let n = code.width();
    let colors = code.to_colors();
    let size = n + 2 * QUIET;
    let mut dark = vec![false; size * size];
    for y in 0..n {
        for x in 0..n {
            if colors[y * n + x] == qrcode::Color::Dark {
                dark[(y + QUIET) * size + x + QUIET] = true;
            }
        }
    }
    Some(Qr { size, dark })
}

/// The timeline's notice after a message that could not be encrypted for some devices.
/// `devices`: the core's "JID device N: reason" for each.
pub fn skipped_notice(devices: &[String]) -> String {
    match devices {
        [one] => format!("Not encrypted for one device, which cannot read it: {one}."),
        many => format!(
            "Not encrypted for {} devices, which cannot read it: {}.",
            many.len(),
            many.join("; ")
        ),
    }
}

/// What the chat says when a message could not be sent.
pub fn send_error(e: &Error) -> String {
    match e {
        Error::NotEncryptable { jid, reason } => format!(
            "Not sent: it cannot be encrypted for {jid}: {reason}. Check their keys (Encryption \
             keys), or turn encryption off to send it unencrypted."
        ),
        other => format!("Not sent: {}", rooms::explain(other)),
    }
}

/// An undecryptable message's explanation as the timeline shows it ("Could not decrypt — …").
pub fn undecryptable_text(reason: &str) -> String {
    let reason = reason.trim();
    let mut chars = reason.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => "Could not decrypt this message.".to_owned(),
    }
}

/// The line under a decrypted message whose sender's key is not trusted.
pub fn trust_warning_text(warning: &str) -> String {
    let mut w = warning.trim().to_owned();
    if let Some(first) = w.get(..1) {
        w = format!("{}{}", first.to_uppercase(), &w[1..]);
    }
    if w.is_empty() {
        "Sent from a key you do not trust.".into()
    } else {
        format!("⚠ {w}.")
    }
}

/// The OTR part of the keys view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtrView {
    pub state: String,
    pub private: bool,
    pub finished: bool,
    /// Their key in groups of 8 while private, else "".
    pub fingerprint: String,
    pub verified: bool,
}

/// How the keys view shows the private conversation with `name`.
pub fn otr_view(info: &OtrInfo, name: &str) -> OtrView {
    let state = match (info.status, info.verified) {
        (OtrStatus::Plaintext, _) => format!(
            "Not private. Start OTR to talk off the record with {name} (their client must \
             speak OTR, as Pidgin and Profanity do); it lasts until one of you goes offline."
        ),
        (OtrStatus::Encrypted, true) => {
            format!("Private (OTR) with {name}, whose key you verified.")
        }
        (OtrStatus::Encrypted, false) => format!(
            "Private (OTR) with {name}, but their key is not verified: verify with a secret \
             only the two of you know, or compare fingerprints."
        ),
        (OtrStatus::Finished, _) => format!(
            "{name} ended the private conversation. Nothing more is sent until you end OTR \
             here too or start it again."
        ),
    };
    OtrView {
        state,
        private: info.status == OtrStatus::Encrypted,
        finished: info.status == OtrStatus::Finished,
        fingerprint: info
            .fingerprint
            .as_deref()
            .map(group_fingerprint)
            .unwrap_or_default(),
        verified: info.verified,
    }
}

/// What the keys view says when a verification (SMP) ended.
pub fn smp_result_note(verified: bool, name: &str) -> String {
    if verified {
        format!("Verified: {name} gave the same secret.")
    } else {
        format!(
            "Not verified: the secrets differ, or {name} declined. Try again with a question \
             only they can answer."
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FPR: &str = "05d1a9c38e7f00112233445566778899aabbccddeeff00112233445566778899";

    #[test]
    fn fingerprints_read_in_groups_of_eight() {
        assert_eq!(
            group_fingerprint(FPR),
            "05d1a9c3 8e7f0011 22334455 66778899 aabbccdd eeff0011 22334455 66778899"
        );
        // Whatever form it was typed or shown in.
        assert_eq!(
            group_fingerprint("05:D1:A9:C3 8E7F"),
            "05d1a9c3 8e7f",
            "short, mixed case, separators"
        );
        assert_eq!(group_fingerprint(""), "");
        assert_eq!(normalise_fingerprint(&group_fingerprint(FPR)), FPR);
    }

    #[test]
    fn trust_labels() {
        assert_eq!(trust_label(Trust::Blind), "trusted, not verified");
        assert_eq!(trust_label(Trust::Verified), "verified");
        assert_eq!(trust_label(Trust::Untrusted), "untrusted");
        assert_eq!(trust_label(Trust::Undecided), "new key — decide");
        // A key never used yet: blind until a key of theirs was verified, then undecided.
        assert_eq!(effective_trust(None, false), Trust::Blind);
        assert_eq!(effective_trust(None, true), Trust::Undecided);
        assert_eq!(
            effective_trust(Some(Trust::Untrusted), false),
            Trust::Untrusted
        );
    }

    #[test]
    fn turning_encryption_off_asks_first() {
        let omemo = Lock::On(Encryption::Omemo2);
        assert_eq!(
            on_lock_clicked(ConvKind::Chat, Lock::Off),
            LockClick::TurnOn
        );
        assert_eq!(
            on_lock_clicked(ConvKind::Chat, omemo),
            LockClick::ConfirmOff
        );
        assert_eq!(
            on_lock_clicked(ConvKind::Chat, Lock::On(Encryption::Otr)),
            LockClick::ConfirmOff
        );
        // Rooms too (the core refuses a room that cannot be encrypted, with the reason).
        assert_eq!(
            on_lock_clicked(ConvKind::Room, Lock::Off),
            LockClick::TurnOn
        );
        assert_eq!(
            on_lock_clicked(ConvKind::Room, omemo),
            LockClick::ConfirmOff
        );
        // Not read yet, or a private message in a room: the lock does nothing.
        assert_eq!(
            on_lock_clicked(ConvKind::Chat, Lock::Unknown),
            LockClick::Nothing
        );
        assert_eq!(
            on_lock_clicked(ConvKind::Private, omemo),
            LockClick::Nothing
        );
        assert_eq!(
            on_lock_clicked(ConvKind::Private, Lock::Off),
            LockClick::Nothing
        );
        assert!(!has_lock(ConvKind::Private));

        assert_eq!(Lock::from_core(None), Lock::Off);
        assert!(Lock::from_core(Some(Encryption::Omemo)).is_on());
        assert_eq!(omemo.name(), "OMEMO 2");
        assert_eq!(Lock::Off.name(), "");
        assert!(Lock::Off.description().contains("Not encrypted"));
    }

    fn device(ns: Namespace, id: u32, trust: Option<Trust>) -> OmemoDeviceInfo {
        OmemoDeviceInfo {
            ns,
            device: id,
            label: None,
            active: true,
            fingerprint: Some(FPR.to_uppercase()),
            trust,
            failure: None,
        }
    }

    #[test]
    fn key_rows_show_trust_and_what_can_be_done() {
        let mut removed = device(Namespace::Legacy, 5, Some(Trust::Blind));
        removed.active = false;
        let mut broken = device(Namespace::Omemo2, 9, None);
        broken.fingerprint = None;
        broken.failure = Some("it has no published bundle".into());
        let mut labelled = device(Namespace::Legacy, 7, None);
        labelled.label = Some("Phone".into());
        let rows = key_rows(&[
            removed,
            device(Namespace::Legacy, 3, Some(Trust::Verified)),
            labelled,
            device(Namespace::Omemo2, 3, Some(Trust::Verified)),
            broken,
            device(Namespace::Omemo2, 8, Some(Trust::Untrusted)),
        ]);
        let order: Vec<_> = rows
            .iter()
            .map(|r| (r.device.as_str(), r.namespace))
            .collect();
        assert_eq!(
            order,
            [
                ("3", "OMEMO 2"),
                ("3", "OMEMO"),
                ("7", "OMEMO"),
                ("8", "OMEMO 2"),
                ("9", "OMEMO 2"),
                ("5", "OMEMO"),
            ],
            "active first, by device, OMEMO 2 first"
        );
        let verified = &rows[0];
        assert_eq!(verified.trust_text, "verified");
        assert_eq!(verified.key, FPR, "lowercase hex for the trust actions");
        assert!(verified.fingerprint.starts_with("05d1a9c3 8e7f0011"));
        assert!(!verified.can_verify && verified.can_distrust);
        assert!(verified.note.is_empty());

        // Never used, and one of theirs is verified: the user decides.
        let new = &rows[2];
        assert_eq!(new.label, "Phone");
        assert_eq!(new.trust, Some(Trust::Undecided));
        assert_eq!(new.trust_text, "new key — decide");
        assert!(new.can_verify && new.can_distrust);

        let untrusted = &rows[3];
        assert_eq!(untrusted.trust_text, "untrusted");
        assert!(untrusted.can_verify && !untrusted.can_distrust);

        // No key: nothing to verify, and why.
        let broken = &rows[4];
        assert_eq!((broken.trust, broken.trust_text), (None, ""));
        assert!(broken.fingerprint.is_empty() && !broken.can_verify && !broken.can_distrust);
        assert_eq!(broken.note, "Cannot be used: it has no published bundle.");

        let removed = &rows[5];
        assert!(!removed.active);
        assert_eq!(removed.note, "Removed from their device list.");
        assert_eq!(removed.trust_text, "trusted, not verified");
    }

    #[test]
    fn unverified_contact_keys_are_blindly_trusted() {
        let rows = key_rows(&[
            device(Namespace::Omemo2, 1, Some(Trust::Blind)),
            device(Namespace::Omemo2, 2, None),
        ]);
        let labels: Vec<_> = rows.iter().map(|r| r.trust_text).collect();
        assert_eq!(labels, ["trusted, not verified", "trusted, not verified"]);
    }

    #[test]
    fn own_key_uri_and_qr_code() {
        let uri = own_key_uri("alice@example.org", 1234, &group_fingerprint(FPR));
        assert_eq!(uri, format!("xmpp:alice@example.org?omemo-sid-1234={FPR}"));
        let code = qr(&uri).expect("fits in a QR code");
        // Version 1 is 21 modules, each version 4 more; plus the quiet zone on both sides.
        let modules = code.size - 2 * QUIET;
        assert!(
            modules >= 21 && (modules - 21).is_multiple_of(4),
            "{modules}"
        );
        assert_eq!(code.dark.len(), code.size * code.size);
        let at = |x: usize, y: usize| code.dark[(y + QUIET) * code.size + x + QUIET];
        // The quiet zone is light; the top-left finder pattern is a dark ring around a
        // light ring around a dark 3×3 centre.
        assert!(!code.dark[..QUIET * code.size].iter().any(|d| *d));
        assert!((0..7).all(|i| at(i, 0) && at(0, i) && at(6, i) && at(i, 6)));
        assert!((1..6).all(|i| !at(i, 1) && !at(1, i)));
        assert!((2..5).all(|i| at(i, 2) && at(i, 3) && at(i, 4)));
        // The top-right and bottom-left finders too.
        assert!(at(modules - 1, 0) && at(modules - 7, 0) && at(0, modules - 1));
        assert!(qr(&"x".repeat(5000)).is_none(), "too long for any version");
    }

    #[test]
    fn notices_and_errors_say_why() {
        assert_eq!(
            skipped_notice(&["bob@x device 7: you marked this device untrusted".into()]),
            "Not encrypted for one device, which cannot read it: bob@x device 7: you marked this \
             device untrusted."
        );
        let two = skipped_notice(&["bob@x device 7: a".into(), "me@x device 9: b".into()]);
        assert_eq!(
            two,
            "Not encrypted for 2 devices, which cannot read it: bob@x device 7: a; me@x device 9: \
             b."
        );
        let e = Error::NotEncryptable {
            jid: "bob@x".into(),
            reason: "device 7: you marked this device untrusted".into(),
        };
        let text = send_error(&e);
        assert!(
            text.starts_with(
                "Not sent: it cannot be encrypted for bob@x: device 7: you marked this device \
                 untrusted."
            ),
            "{text}"
        );
        assert!(send_error(&Error::NotConnected("me@x".into())).starts_with("Not sent: "));
        assert_eq!(
            undecryptable_text("could not decrypt — sent to a device we have no session with"),
            "Could not decrypt — sent to a device we have no session with"
        );
        assert_eq!(undecryptable_text(" "), "Could not decrypt this message.");
    }

    #[test]
    fn otr_states_read_as_sentences() {
        let mut info = OtrInfo {
            status: OtrStatus::Plaintext,
            fingerprint: None,
            verified: false,
        };
        let v = otr_view(&info, "Bob");
        assert!(v.state.starts_with("Not private") && !v.private && !v.finished);
        info.status = OtrStatus::Encrypted;
        info.fingerprint = Some("AABBCCDD 00112233 44556677 8899AABB CCDDEEFF".into());
        let v = otr_view(&info, "Bob");
        assert!(v.private && v.state.contains("not verified"), "{v:?}");
        assert_eq!(
            v.fingerprint,
            "aabbccdd 00112233 44556677 8899aabb ccddeeff"
        );
        info.verified = true;
        assert!(
            otr_view(&info, "Bob")
                .state
                .contains("whose key you verified")
        );
        info.status = OtrStatus::Finished;
        let v = otr_view(&info, "Bob");
        assert!(v.finished && !v.private && v.state.starts_with("Bob ended"));
        assert!(smp_result_note(true, "Bob").starts_with("Verified"));
        assert!(smp_result_note(false, "Bob").starts_with("Not verified"));
    }
}
