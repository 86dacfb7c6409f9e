//! The message body ciphers. The body is encrypted once with a fresh key; that key (with
//! its authentication tag) is the key material each device's ratchet session encrypts.
//!
//! - Legacy: AES-128-GCM with a 12-byte IV sent in `<iv>`; key material = key ‖ GCM tag.
//!   For reading old messages we also accept a 16-byte IV and the old layout that put the
//!   tag after the ciphertext and only the 16-byte key in the key material.
//! - OMEMO 2: HKDF-SHA-256(key, 32 zero bytes, "OMEMO Payload") → cipher key ‖ MAC key ‖ IV;
//!   AES-256-CBC/PKCS#7; key material = key ‖ HMAC-SHA-256(ciphertext) truncated to 16.

use aes::cipher::{
    BlockDecryptMut as _, BlockEncryptMut as _, KeyIvInit as _, block_padding::Pkcs7,
};
use aes_gcm::aead::consts::U16;
use aes_gcm::aead::{Aead as _, KeyInit as _};
use aes_gcm::{Aes128Gcm, AesGcm};
use zeroize::Zeroizing;

use super::keys::random;
use super::{Error, Namespace, Result, hkdf, hmac_sha256, mac_matches};

/// An encrypted body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sealed {
    /// What every device's session encrypts.
    pub key_material: Zeroizing<Vec<u8>>,
    /// The `<payload>` bytes.
    pub payload: Vec<u8>,
    /// The `<iv>` bytes (legacy only).
    pub iv: Option<[u8; 12]>,
}

const GCM_TAG: usize = 16;

/// Encrypts a body. For OMEMO 2, `plaintext` is the serialized XEP-0420 envelope.
pub fn seal(ns: Namespace, plaintext: &[u8]) -> Sealed {
    match ns {
        Namespace::Legacy => {
            let key = Zeroizing::new(random::<16>());
            let iv = random::<12>();
            let cipher = Aes128Gcm::new(key.as_ref().into());
            let mut out = cipher
                .encrypt(&iv.into(), plaintext)
                .expect("AES-GCM encrypts anything below 64 GiB");
            let tag = out.split_off(out.len() - GCM_TAG);
            let mut key_material = Zeroizing::new(key.to_vec());
            key_material.extend_from_slice(&tag);
            Sealed {
                key_material,
                payload: out,
                iv: Some(iv),
            }
        }
        Namespace::Omemo2 => {
            let key = Zeroizing::new(random::<32>());
            let keys = omemo2_keys(key.as_ref());
            let payload =
                cbc::Encryptor::<aes::Aes256>::new(keys.0.as_ref().into(), &keys.2.into())
                    .encrypt_padded_vec_mut::<Pkcs7>(plaintext);
            let tag = hmac_sha256(&keys.1[..], &[&payload]);
            let mut key_material = Zeroizing::new(key.to_vec());
            key_material.extend_from_slice(&tag[..16]);
            Sealed {
                key_material,
                payload,
                iv: None,
            }
        }
    }
}

/// Decrypts a body with the key material a session decrypted, checking its tag.
pub fn open(
    ns: Namespace,
    key_material: &[u8],
    payload: &[u8],
    iv: Option<&[u8]>,
) -> Result<Vec<u8>> {
    match ns {
        Namespace::Legacy => {
            let iv = iv.ok_or(Error::Malformed("OMEMO message without an IV"))?;
            // The current layout carries the tag in the key material; the old one appended it
            // to the payload.
            let (key, ciphertext) = match key_material.len() {
                32 => {
                    let mut ct = payload.to_vec();
                    ct.extend_from_slice(&key_material[16..]);
                    (&key_material[..16], ct)
                }
                16 => (key_material, payload.to_vec()),
                _ => return Err(Error::Malformed("OMEMO key material")),
            };
            let result = match iv.len() {
                12 => Aes128Gcm::new(key.into()).decrypt(iv.into(), ciphertext.as_slice()),
                16 => AesGcm::<aes::Aes128, U16>::new(key.into())
                    .decrypt(iv.into(), ciphertext.as_slice()),
                _ => return Err(Error::Malformed("OMEMO IV")),
            };
            result.map_err(|_| Error::Payload)
        }
        Namespace::Omemo2 => {
            if key_material.len() != 48 {
                return Err(Error::Malformed("OMEMO key material"));
            }
            let keys = omemo2_keys(&key_material[..32]);
            let tag = hmac_sha256(&keys.1[..], &[payload]);
            if !mac_matches(&tag[..16], &key_material[32..]) {
                return Err(Error::Payload);
            }
            cbc::Decryptor::<aes::Aes256>::new(keys.0.as_ref().into(), &keys.2.into())
                .decrypt_padded_vec_mut::<Pkcs7>(payload)
                .map_err(|_| Error::Payload)
        }
    }
}

/// OMEMO 2's payload keys: (cipher key, MAC key, IV).
fn omemo2_keys(key: &[u8]) -> (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>, [u8; 16]) {
    let out = hkdf::<80>(Some(&[0u8; 32]), key, b"OMEMO Payload");
    let mut c = Zeroizing::new([0u8; 32]);
    let mut m = Zeroizing::new([0u8; 32]);
    let mut iv = [0u8; 16];
    c.copy_from_slice(&out[..32]);
    m.copy_from_slice(&out[32..64]);
    iv.copy_from_slice(&out[64..]);
    (c, m, iv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_round_trip_and_tampering_is_caught() {
        for ns in Namespace::ALL {
            let s = seal(ns, b"hello, world");
            assert_eq!(s.key_material.len(), ns.key_material_len());
            let iv = s.iv.as_ref().map(|iv| &iv[..]);
            assert_eq!(
                open(ns, &s.key_material, &s.payload, iv).expect("opens"),
                b"hello, world"
            );
            let mut bad = s.payload.clone();
            bad[0] ^= 1;
            assert_eq!(open(ns, &s.key_material, &bad, iv), Err(Error::Payload));
            let mut bad_key = s.key_material.to_vec();
            let last = bad_key.len() - 1;
            bad_key[last] ^= 1;
            assert_eq!(open(ns, &bad_key, &s.payload, iv), Err(Error::Payload));
        }
    }

    #[test]
    fn old_legacy_layout_still_opens() {
        // Tag after the ciphertext, 16-byte key material, 16-byte IV (Conversations < 2.x).
        let key = [3u8; 16];
        let iv = [4u8; 16];
        let ct = AesGcm::<aes::Aes128, U16>::new(&key.into())
            .encrypt(&iv.into(), &b"old"[..])
            .expect("encrypts");
        assert_eq!(
            open(Namespace::Legacy, &key, &ct, Some(&iv)).expect("opens"),
            b"old"
        );
    }
}
