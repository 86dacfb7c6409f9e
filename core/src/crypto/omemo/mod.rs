//! OMEMO (XEP-0384): X3DH key agreement and the Double Ratchet, sans-I/O, in two wire
//! profiles over one core:
//!
//! - [`Namespace::Legacy`], `eu.siacs.conversations.axolotl` (XEP-0384 v0.3, what
//!   Conversations, Dino, Gajim, Monal and Profanity speak): libsignal's formats — 33-byte
//!   keys with a `0x05` prefix, version byte `0x33`, 8-byte MACs over `sender ‖ receiver`
//!   identities, payloads in AES-128-GCM;
//! - [`Namespace::Omemo2`], `urn:xmpp:omemo:2` (XEP-0384 ≥ 0.8, Kaidan): 32-byte keys, an
//!   Ed25519 identity key, protobuf-framed messages with 16-byte MACs, payloads in
//!   AES-256-CBC + HMAC-SHA-256.
//!
//! One identity key serves both: it is an X25519 private key whose XEdDSA Edwards form is the
//! OMEMO 2 identity key, so signatures made for either namespace verify in both.
//!
//! The layers: [`keys`] (key pairs, bundles), [`session`] (X3DH, key exchange messages, one
//! Double Ratchet session per remote device), [`payload`] (the message body ciphers).
//! Everything is checked against python-omemo and libomemo-c byte for byte in the interop
//! tests (`tests/omemo.rs`).

pub mod device;
pub mod keys;
pub mod payload;
mod ratchet;
pub mod session;
pub mod store;
mod wire;

pub use crate::proto::omemo::Namespace;

/// The cryptographic profile of each namespace (key sizes, KDF labels, MAC sizes).
impl Namespace {
    /// Length of the key material one `<key>` element carries (payload key and its tag).
    pub const fn key_material_len(self) -> usize {
        match self {
            Namespace::Legacy => 32,
            Namespace::Omemo2 => 48,
        }
    }

    /// HKDF info of the X3DH shared secret.
    const fn x3dh_info(self) -> &'static [u8] {
        match self {
            Namespace::Legacy => b"WhisperText",
            Namespace::Omemo2 => b"OMEMO X3DH",
        }
    }

    /// HKDF info of the root chain.
    const fn root_info(self) -> &'static [u8] {
        match self {
            Namespace::Legacy => b"WhisperRatchet",
            Namespace::Omemo2 => b"OMEMO Root Chain",
        }
    }

    /// HKDF info turning a message key into cipher key, MAC key and IV.
    const fn message_info(self) -> &'static [u8] {
        match self {
            Namespace::Legacy => b"WhisperMessageKeys",
            Namespace::Omemo2 => b"OMEMO Message Key Material",
        }
    }

    /// Bytes of the truncated HMAC-SHA-256 on each ratchet message.
    const fn mac_len(self) -> usize {
        match self {
            Namespace::Legacy => 8,
            Namespace::Omemo2 => 16,
        }
    }
}

/// Why an OMEMO operation failed. Every variant leaves the session as it was.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// Bytes that do not parse as what they claim to be.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// A bundle whose signed pre-key is not signed by its identity key.
    #[error("the bundle's signed pre-key is not signed by its identity key")]
    BadSignature,
    /// A bundle without one-time pre-keys: OMEMO requires one.
    #[error("the bundle has no one-time pre-keys left")]
    NoPreKeys,
    /// A key exchange naming a signed pre-key we do not have (any more).
    #[error("the message was encrypted to signed pre-key {0}, which this device does not have")]
    UnknownSignedPreKey(u32),
    /// A key exchange naming a one-time pre-key we do not have: used already, or never ours.
    #[error("the message was encrypted to pre-key {0}, which was used already or is not ours")]
    UnknownPreKey(u32),
    /// The MAC does not verify: tampered, or not for this session.
    #[error("the message failed authentication (tampered, or not encrypted for this session)")]
    BadMac,
    /// A key we derived or received is degenerate (a low-order point).
    #[error("a key in the message is invalid")]
    InvalidKey,
    /// A message whose key was used already (a replay or a duplicate).
    #[error("message {0} was decrypted already (duplicate or replay)")]
    Duplicate(u32),
    /// A message claiming more skipped messages than we keep keys for.
    #[error("the message claims {0} skipped messages, more than the {1} this client accepts")]
    TooManySkipped(u32, u32),
    /// A normal message for a session that has not received anything yet.
    #[error("no session with this device")]
    NoSession,
    /// Payload decryption failed (wrong key, tampered ciphertext).
    #[error("the message body could not be decrypted (wrong key or tampered)")]
    Payload,
}

/// Results of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// HKDF-SHA-256 into `N` bytes.
fn hkdf<const N: usize>(
    salt: Option<&[u8]>,
    ikm: &[u8],
    info: &[u8],
) -> zeroize::Zeroizing<[u8; N]> {
    let mut out = zeroize::Zeroizing::new([0u8; N]);
    hkdf::Hkdf::<sha2::Sha256>::new(salt, ikm)
        .expand(info, out.as_mut())
        .expect("N is far below HKDF-SHA-256's limit of 8160 bytes");
    out
}

/// HMAC-SHA-256.
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    use hmac::Mac as _;
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// Constant-time comparison of a received MAC with the one we computed.
fn mac_matches(expected: &[u8], received: &[u8]) -> bool {
    use subtle::ConstantTimeEq as _;
    expected.len() == received.len() && bool::from(expected.ct_eq(received))
}
