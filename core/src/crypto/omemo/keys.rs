//! Key pairs and bundles, with the byte formats of each namespace.

use curve25519_dalek::montgomery::MontgomeryPoint;
use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::{Error, Namespace, Result};
use crate::crypto::xeddsa;

/// Fresh random bytes from the operating system's generator.
pub(crate) fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::fill(&mut b[..]);
    b
}

/// An X25519 key pair (ephemeral, ratchet, signed pre-key or one-time pre-key).
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct KeyPair {
    private: [u8; 32],
    #[zeroize(skip)]
    public: [u8; 32],
}

impl KeyPair {
    /// A new random key pair.
    pub fn generate() -> Self {
        Self::from_private(random())
    }

    /// The key pair of an X25519 private key (clamped when used, as X25519 does).
    pub fn from_private(private: [u8; 32]) -> Self {
        let public = MontgomeryPoint::mul_base_clamped(private).to_bytes();
        KeyPair { private, public }
    }

    /// The public key (Montgomery u coordinate).
    pub fn public(&self) -> &[u8; 32] {
        &self.public
    }

    /// The private key bytes, for the store that persists them.
    pub fn private(&self) -> &[u8; 32] {
        &self.private
    }

    /// X25519 with a peer's public key. A low-order peer key gives an all-zero secret, which
    /// would make the session's keys predictable: refused.
    pub(crate) fn dh(&self, their: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>> {
        let shared = Zeroizing::new(MontgomeryPoint(*their).mul_clamped(self.private).to_bytes());
        if shared.iter().all(|b| *b == 0) {
            return Err(Error::InvalidKey);
        }
        Ok(shared)
    }
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyPair({})", hex(&self.public))
    }
}

/// This device's long-term identity: an X25519 private key. Its Montgomery public key is the
/// legacy identity key, its XEdDSA Edwards form the OMEMO 2 (Ed25519) identity key.
#[derive(Clone, Serialize, Deserialize)]
pub struct IdentityKeyPair {
    pair: KeyPair,
}

impl IdentityKeyPair {
    /// A new random identity.
    pub fn generate() -> Self {
        IdentityKeyPair {
            pair: KeyPair::generate(),
        }
    }

    /// The identity of a stored private key.
    pub fn from_private(private: [u8; 32]) -> Self {
        IdentityKeyPair {
            pair: KeyPair::from_private(private),
        }
    }

    /// The private key, for the store.
    pub fn private(&self) -> &[u8; 32] {
        self.pair.private()
    }

    /// The public identity key as this namespace publishes it.
    pub fn public(&self, ns: Namespace) -> IdentityKey {
        match ns {
            Namespace::Legacy => IdentityKey {
                ns,
                key: *self.pair.public(),
            },
            Namespace::Omemo2 => IdentityKey {
                ns,
                key: xeddsa::edwards_public(self.pair.private()),
            },
        }
    }

    /// An XEdDSA signature (a valid Ed25519 signature under the OMEMO 2 identity key).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        xeddsa::sign(self.pair.private(), message, &random())
    }

    pub(crate) fn dh(&self, their: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>> {
        self.pair.dh(their)
    }
}

impl std::fmt::Debug for IdentityKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdentityKeyPair({})", hex(self.pair.public()))
    }
}

/// A public identity key in one namespace's form: X25519 (legacy) or Ed25519 (OMEMO 2).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IdentityKey {
    ns: Namespace,
    key: [u8; 32],
}

impl IdentityKey {
    /// Parses the bytes of a bundle's or key exchange's identity key.
    pub fn decode(ns: Namespace, bytes: &[u8]) -> Result<Self> {
        let key = decode_public(ns, bytes).map_err(|_| Error::Malformed("identity key"))?;
        let id = IdentityKey { ns, key };
        // An Ed25519 key must be a curve point, or nothing can be derived from it.
        id.x25519()?;
        Ok(id)
    }

    /// The namespace this key is written for.
    pub fn namespace(&self) -> Namespace {
        self.ns
    }

    /// The bytes as published: `0x05 ‖ X25519` (legacy) or Ed25519 (OMEMO 2).
    pub fn encode(&self) -> Vec<u8> {
        encode_public(self.ns, &self.key)
    }

    /// The raw 32 key bytes (without the legacy prefix).
    pub fn raw(&self) -> &[u8; 32] {
        &self.key
    }

    /// The X25519 form used in key agreement.
    pub(crate) fn x25519(&self) -> Result<[u8; 32]> {
        match self.ns {
            Namespace::Legacy => Ok(self.key),
            Namespace::Omemo2 => {
                xeddsa::ed25519_to_x25519_public(&self.key).ok_or(Error::Malformed("identity key"))
            }
        }
    }

    /// Does `signature` over `message` verify under this identity?
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        match self.ns {
            Namespace::Legacy => xeddsa::verify(&self.key, message, signature),
            Namespace::Omemo2 => VerifyingKey::from_bytes(&self.key)
                .is_ok_and(|k| k.verify(message, &Signature::from_bytes(signature)).is_ok()),
        }
    }

    /// The fingerprint people compare: the 32 key bytes in lower-case hex, as Conversations,
    /// Dino and Gajim show the legacy key (without the `05` prefix) and OMEMO 2 clients the
    /// Ed25519 key.
    pub fn fingerprint(&self) -> String {
        hex(&self.key)
    }

    /// The identity independent of the namespace it was published in: the hex of its X25519
    /// form, the same for a device's legacy and OMEMO 2 keys (and equal to the legacy
    /// fingerprint). Trust decisions are keyed by this, so verifying a device once covers both.
    pub fn canonical(&self) -> String {
        match self.x25519() {
            Ok(k) => hex(&k),
            Err(_) => hex(&self.key),
        }
    }
}

impl std::fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdentityKey({:?}, {})", self.ns, hex(&self.key))
    }
}

/// A public key as the namespace writes it.
pub fn encode_public(ns: Namespace, key: &[u8; 32]) -> Vec<u8> {
    match ns {
        Namespace::Legacy => {
            let mut v = Vec::with_capacity(33);
            v.push(0x05);
            v.extend_from_slice(key);
            v
        }
        Namespace::Omemo2 => key.to_vec(),
    }
}

/// Parses a public key written by [`encode_public`].
pub fn decode_public(ns: Namespace, bytes: &[u8]) -> Result<[u8; 32]> {
    let raw = match ns {
        Namespace::Legacy => match bytes {
            [0x05, rest @ ..] => rest,
            _ => return Err(Error::Malformed("public key")),
        },
        Namespace::Omemo2 => bytes,
    };
    raw.try_into().map_err(|_| Error::Malformed("public key"))
}

/// What a signed pre-key's signature covers: its public key as the namespace writes it.
pub(crate) fn signed_pre_key_message(ns: Namespace, key: &[u8; 32]) -> Vec<u8> {
    encode_public(ns, key)
}

/// A signed pre-key with its id, signature and creation time (for rotation).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SignedPreKey {
    /// The id published in the bundle.
    pub id: u32,
    /// The key pair.
    pub pair: KeyPair,
    /// Signatures over the public key, one per namespace (their encodings differ).
    pub signatures: Vec<(Namespace, Vec<u8>)>,
    /// Creation time, seconds since the Unix epoch.
    pub created: i64,
}

impl SignedPreKey {
    /// A new signed pre-key, signed for both namespaces.
    pub fn generate(identity: &IdentityKeyPair, id: u32, created: i64) -> Self {
        let pair = KeyPair::generate();
        let signatures = Namespace::ALL
            .iter()
            .map(|ns| {
                let sig = identity.sign(&signed_pre_key_message(*ns, pair.public()));
                (*ns, sig.to_vec())
            })
            .collect();
        SignedPreKey {
            id,
            pair,
            signatures,
            created,
        }
    }

    /// The signature for one namespace.
    pub fn signature(&self, ns: Namespace) -> Option<&[u8]> {
        self.signatures
            .iter()
            .find(|(n, _)| *n == ns)
            .map(|(_, s)| s.as_slice())
    }
}

/// A device's published keys, parsed and checked: what another device needs to start a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bundle {
    /// The namespace the bundle was published in.
    pub ns: Namespace,
    /// The identity key.
    pub identity: IdentityKey,
    /// The signed pre-key's id.
    pub spk_id: u32,
    /// The signed pre-key.
    pub spk: [u8; 32],
    /// Its signature by the identity key.
    pub spk_sig: [u8; 64],
    /// One-time pre-keys: (id, key).
    pub prekeys: Vec<(u32, [u8; 32])>,
}

impl Bundle {
    /// Parses a bundle from the bytes of its XML elements (after base64), verifying the
    /// signed pre-key's signature. Pre-keys that do not parse are skipped (one bad key does
    /// not make the device unreachable); a bundle left without any is refused.
    pub fn decode<'a>(
        ns: Namespace,
        identity: &[u8],
        spk_id: u32,
        spk: &[u8],
        spk_sig: &[u8],
        prekeys: impl IntoIterator<Item = (u32, &'a [u8])>,
    ) -> Result<Self> {
        let identity = IdentityKey::decode(ns, identity)?;
        let spk = decode_public(ns, spk).map_err(|_| Error::Malformed("signed pre-key"))?;
        let spk_sig: [u8; 64] = spk_sig
            .try_into()
            .map_err(|_| Error::Malformed("signed pre-key signature"))?;
        if !identity.verify(&signed_pre_key_message(ns, &spk), &spk_sig) {
            return Err(Error::BadSignature);
        }
        let prekeys: Vec<_> = prekeys
            .into_iter()
            .filter_map(|(id, k)| decode_public(ns, k).ok().map(|k| (id, k)))
            .collect();
        if prekeys.is_empty() {
            return Err(Error::NoPreKeys);
        }
        Ok(Bundle {
            ns,
            identity,
            spk_id,
            spk,
            spk_sig,
            prekeys,
        })
    }
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The signature of an OMEMO 2 device label (XEP-0384 v0.9: labels MUST be signed by the
/// device's identity key), for [`crate::proto::omemo::DeviceEntry::with_label`].
pub fn sign_label(identity: &IdentityKeyPair, label: &str) -> Vec<u8> {
    identity.sign(label.as_bytes()).to_vec()
}

/// Whether a device label's signature verifies under the device's identity key; the XEP
/// says to ignore a label otherwise.
pub fn label_verifies(identity: &IdentityKey, label: &str, signature: &[u8]) -> bool {
    <&[u8; 64]>::try_from(signature).is_ok_and(|sig| identity.verify(label.as_bytes(), sig))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_signatures_verify_in_both_namespaces() {
        let id = IdentityKeyPair::generate();
        for ns in Namespace::ALL {
            let spk = SignedPreKey::generate(&id, 1, 0);
            let sig: [u8; 64] = spk.signature(ns).expect("signed").try_into().expect("64");
            let public = IdentityKey::decode(ns, &id.public(ns).encode()).expect("parses");
            assert!(public.verify(&signed_pre_key_message(ns, spk.pair.public()), &sig));
            assert!(!public.verify(b"something else", &sig));
        }
    }

    #[test]
    fn both_identity_forms_agree_on_key_agreement() {
        let alice = IdentityKeyPair::generate();
        let bob = KeyPair::generate();
        let legacy = alice.public(Namespace::Legacy).x25519().expect("point");
        let omemo2 = alice.public(Namespace::Omemo2).x25519().expect("point");
        assert_eq!(legacy, omemo2);
        assert_eq!(
            *bob.dh(&legacy).expect("dh"),
            *alice.dh(bob.public()).expect("dh")
        );
    }

    #[test]
    fn legacy_keys_need_their_prefix() {
        let k = KeyPair::generate();
        let enc = encode_public(Namespace::Legacy, k.public());
        assert_eq!(enc.len(), 33);
        assert_eq!(decode_public(Namespace::Legacy, &enc), Ok(*k.public()));
        assert!(decode_public(Namespace::Legacy, &enc[1..]).is_err());
        assert!(decode_public(Namespace::Omemo2, &enc).is_err());
    }

    #[test]
    fn low_order_keys_are_refused() {
        assert_eq!(
            KeyPair::generate().dh(&[0u8; 32]).err(),
            Some(Error::InvalidKey)
        );
    }

    #[test]
    fn bundles_with_forged_signatures_are_refused() {
        let id = IdentityKeyPair::generate();
        let spk = SignedPreKey::generate(&id, 7, 0);
        let pk = KeyPair::generate();
        for ns in Namespace::ALL {
            let ik = id.public(ns).encode();
            let spk_bytes = encode_public(ns, spk.pair.public());
            let pk_bytes = encode_public(ns, pk.public());
            let good = spk.signature(ns).expect("signed").to_vec();
            let mut bad = good.clone();
            bad[10] ^= 1;
            assert!(Bundle::decode(ns, &ik, 7, &spk_bytes, &good, [(1, &pk_bytes[..])]).is_ok());
            assert_eq!(
                Bundle::decode(ns, &ik, 7, &spk_bytes, &bad, [(1, &pk_bytes[..])]),
                Err(Error::BadSignature)
            );
            assert_eq!(
                Bundle::decode(ns, &ik, 7, &spk_bytes, &good, []),
                Err(Error::NoPreKeys)
            );
        }
    }
}
