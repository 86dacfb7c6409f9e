//! XEdDSA (Signal's specification, revision 1, 2016-10-20): Ed25519-compatible signatures
//! made with an X25519 (Montgomery) private key, as legacy OMEMO bundles use for their
//! signed pre-key.
//!
//! Verification is sign-bit aware: the XEdDSA public key always has the Edwards sign bit 0,
//! but libsignal-protocol-c/java and python-omemo's `oldmemo` sign with an Ed25519 key whose
//! sign bit may be 1 and carry that bit in the top bit of the signature's last byte. We take
//! it from there, clear it, and verify — so both kinds of signature verify, and ours (whose
//! top bit is always 0) verify everywhere.

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::scalar::{Scalar, clamp_integer};
use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use sha2::{Digest, Sha512};

/// `hash_1` of the specification: SHA-512 over 2^256 - 2 (little-endian) || input.
const HASH1_PREFIX: [u8; 32] = {
    let mut p = [0xFF; 32];
    p[0] = 0xFE;
    p
};

fn scalar_from_hash(parts: &[&[u8]]) -> Scalar {
    let mut h = Sha512::new();
    for p in parts {
        h.update(p);
    }
    Scalar::from_bytes_mod_order_wide(&h.finalize().into())
}

/// The Edwards public key `A` (sign bit 0) and private scalar `a` for an X25519 private key.
fn calculate_key_pair(private: &[u8; 32]) -> ([u8; 32], Scalar) {
    let k = Scalar::from_bytes_mod_order(clamp_integer(*private));
    let e = EdwardsPoint::mul_base(&k).compress().to_bytes();
    let negative = e[31] >> 7 == 1;
    let a = if negative { -k } else { k };
    let mut public = e;
    public[31] &= 0x7F;
    (public, a)
}

/// The Ed25519 public key (sign bit 0) that XEdDSA signatures by this X25519 private key
/// verify under. OMEMO 2 publishes this as the identity key.
pub fn edwards_public(private: &[u8; 32]) -> [u8; 32] {
    calculate_key_pair(private).0
}

/// Signs `message` with an X25519 private key. `random` must be 64 fresh random bytes.
pub fn sign(private: &[u8; 32], message: &[u8], random: &[u8; 64]) -> [u8; 64] {
    let (public, a) = calculate_key_pair(private);
    let r = scalar_from_hash(&[&HASH1_PREFIX, a.as_bytes(), message, random]);
    let big_r = EdwardsPoint::mul_base(&r).compress().to_bytes();
    let h = scalar_from_hash(&[&big_r, &public, message]);
    let s = r + h * a;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&big_r);
    sig[32..].copy_from_slice(s.as_bytes());
    sig
}

/// Verifies a signature by the X25519 public key `public` (Montgomery u).
pub fn verify(public: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    let sign_bit = signature[63] >> 7;
    let Some(edwards) = MontgomeryPoint(*public).to_edwards(sign_bit) else {
        return false;
    };
    let Ok(key) = VerifyingKey::from_bytes(&edwards.compress().to_bytes()) else {
        return false;
    };
    let mut sig = *signature;
    sig[63] &= 0x7F;
    key.verify(message, &Signature::from_bytes(&sig)).is_ok()
}

/// The X25519 (Montgomery) form of an Ed25519 public key, as OMEMO 2 turns its Ed25519
/// identity key into an X3DH key. `None` for bytes that are not a point.
pub fn ed25519_to_x25519_public(ed: &[u8; 32]) -> Option<[u8; 32]> {
    CompressedEdwardsY(*ed)
        .decompress()
        .map(|p| p.to_montgomery().to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer as _, SigningKey};

    fn x25519_public(private: &[u8; 32]) -> [u8; 32] {
        MontgomeryPoint::mul_base_clamped(*private).to_bytes()
    }

    #[test]
    fn our_signatures_verify_for_both_edwards_signs() {
        let mut seen = [false, false];
        for i in 0u8..64 {
            let private = [i.wrapping_mul(37).wrapping_add(1); 32];
            let (public_ed, _) = calculate_key_pair(&private);
            assert_eq!(public_ed[31] >> 7, 0, "the XEdDSA key has sign bit 0");
            let e = EdwardsPoint::mul_base(&Scalar::from_bytes_mod_order(clamp_integer(private)));
            seen[usize::from(e.compress().to_bytes()[31] >> 7)] = true;
            let public = x25519_public(&private);
            let sig = sign(&private, b"bundle", &[i; 64]);
            assert_eq!(sig[63] >> 7, 0, "the top bit of s is always clear");
            assert!(verify(&public, b"bundle", &sig));
            assert!(!verify(&public, b"bundlf", &sig));
            let mut bad = sig;
            bad[10] ^= 1;
            assert!(!verify(&public, b"bundle", &bad));
            // Same key and message, other randomness: another valid signature.
            assert_ne!(sign(&private, b"bundle", &[i ^ 0xFF; 64]), sig);
        }
        assert_eq!(seen, [true, true], "keys of both Edwards signs were tried");
    }

    /// libsignal-protocol-c/java and python-omemo's oldmemo sign with the Ed25519 form of
    /// the identity key and put its sign bit in sig[63]; such signatures verify only when
    /// that bit is honoured.
    #[test]
    fn libsignal_style_signatures_with_the_sign_bit_set_verify() {
        let mut checked = 0;
        for i in 0u8..32 {
            let signing = SigningKey::from_bytes(&[i.wrapping_mul(11).wrapping_add(3); 32]);
            let ed = signing.verifying_key().to_bytes();
            if ed[31] >> 7 == 0 {
                continue;
            }
            let Some(public) = ed25519_to_x25519_public(&ed) else {
                continue;
            };
            let mut sig = signing.sign(b"signed pre-key").to_bytes();
            assert!(
                !verify(&public, b"signed pre-key", &sig),
                "the sign bit is needed"
            );
            sig[63] |= ed[31] & 0x80;
            assert!(verify(&public, b"signed pre-key", &sig));
            assert!(!verify(&public, b"other", &sig));
            checked += 1;
        }
        assert!(checked > 0);
    }

    #[test]
    fn junk_keys_are_rejected() {
        let sig = sign(&[7; 32], b"m", &[1; 64]);
        // u = p - 1 (= -1) has no Edwards form.
        let mut minus_one = [0xFF; 32];
        minus_one[0] = 0xEC;
        minus_one[31] = 0x7F;
        assert!(!verify(&minus_one, b"m", &sig));
        assert!(!verify(&[0; 32], b"m", &sig));
    }
}
