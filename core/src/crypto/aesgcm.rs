//! XEP-0454: OMEMO Media Sharing. A file is encrypted with AES-256-GCM under a fresh random
//! key and IV before upload; the link sent inside the encrypted message is the download URL
//! with the `aesgcm` scheme and `#` + hex(IV ‖ key) as fragment, so the server only ever
//! holds ciphertext and the key travels end-to-end encrypted. The file is the ciphertext
//! followed by the 16-byte tag.
//!
//! The XEP's IV is 12 bytes; Conversations long sent 16-byte IVs, which every client still
//! reads, so both are accepted (only 12 are made).

use aes_gcm::aead::consts::U16;
use aes_gcm::aead::{Aead as _, KeyInit as _};
use aes_gcm::aes::Aes256;
use aes_gcm::{Aes256Gcm, AesGcm, Nonce};
use zeroize::Zeroizing;

/// AES-256-GCM with a 16-byte nonce (older senders).
type Aes256Gcm16 = AesGcm<Aes256, U16>;

/// Bytes of the authentication tag after the ciphertext.
pub const TAG_LEN: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("not an aesgcm:// link")]
    NotAesgcm,
    #[error("the link's key is malformed (want 88 or 96 hex digits after #)")]
    BadKey,
    #[error("the file does not decrypt with the link's key: it was changed or cut short")]
    Tampered,
}

/// The key and IV of one file, as the link's fragment carries them.
#[derive(Clone, PartialEq, Eq)]
pub struct FileKey {
    iv: Vec<u8>,
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for FileKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileKey({}-byte IV)", self.iv.len())
    }
}

impl FileKey {
    /// A fresh random key with a 12-byte IV.
    pub fn generate() -> FileKey {
        FileKey {
            iv: rand::random::<[u8; 12]>().to_vec(),
            key: Zeroizing::new(rand::random()),
        }
    }

    /// From the fragment's bytes: IV (12 or 16 bytes) then the 32-byte key.
    pub fn from_bytes(bytes: &[u8]) -> Result<FileKey, Error> {
        let iv_len = match bytes.len() {
            44 => 12,
            48 => 16,
            _ => return Err(Error::BadKey),
        };
        let (iv, key) = bytes.split_at(iv_len);
        let key: [u8; 32] = key.try_into().map_err(|_| Error::BadKey)?;
        Ok(FileKey {
            iv: iv.to_vec(),
            key: Zeroizing::new(key),
        })
    }

    /// The fragment: hex of IV then key.
    pub fn fragment(&self) -> String {
        let mut hex = String::with_capacity(2 * (self.iv.len() + 32));
        for b in self.iv.iter().chain(self.key.iter()) {
            hex.push_str(&format!("{b:02x}"));
        }
        hex
    }

    /// Encrypts a whole file: ciphertext then tag.
    pub fn encrypt(&self, plain: &[u8]) -> Vec<u8> {
        let key = aes_gcm::Key::<Aes256Gcm>::from_slice(self.key.as_slice());
        let sealed = match self.iv.len() {
            12 => Aes256Gcm::new(key).encrypt(Nonce::from_slice(&self.iv), plain),
            _ => Aes256Gcm16::new(key).encrypt(Nonce::from_slice(&self.iv), plain),
        };
        // Encryption only fails for inputs beyond GCM's 64 GiB limit.
        sealed.unwrap_or_default()
    }

    /// Decrypts a whole file (ciphertext then tag), checking the tag.
    pub fn decrypt(&self, sealed: &[u8]) -> Result<Vec<u8>, Error> {
        let key = aes_gcm::Key::<Aes256Gcm>::from_slice(self.key.as_slice());
        match self.iv.len() {
            12 => Aes256Gcm::new(key).decrypt(Nonce::from_slice(&self.iv), sealed),
            _ => Aes256Gcm16::new(key).decrypt(Nonce::from_slice(&self.iv), sealed),
        }
        .map_err(|_| Error::Tampered)
    }
}

/// The link to send for an encrypted file downloadable at `https_url`.
pub fn link(https_url: &str, key: &FileKey) -> String {
    let rest = https_url
        .split_once("://")
        .map_or(https_url, |(_, rest)| rest);
    let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
    format!("aesgcm://{rest}#{}", key.fragment())
}

/// Splits an `aesgcm://` link into the https URL to download and the key.
pub fn parse_link(link: &str) -> Result<(String, FileKey), Error> {
    let rest = link
        .get(..9)
        .filter(|s| s.eq_ignore_ascii_case("aesgcm://"))
        .map(|_| &link[9..])
        .ok_or(Error::NotAesgcm)?;
    let (location, fragment) = rest.rsplit_once('#').ok_or(Error::BadKey)?;
    if location.is_empty() {
        return Err(Error::NotAesgcm);
    }
    let bytes = hex_decode(fragment).ok_or(Error::BadKey)?;
    let key = FileKey::from_bytes(&bytes)?;
    Ok((format!("https://{location}"), key))
}

fn hex_decode(s: &str) -> Option<Zeroizing<Vec<u8>>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    let mut out = Zeroizing::new(Vec::with_capacity(s.len() / 2));
    for pair in s.as_bytes().chunks(2) {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out.push(u8::try_from(hi * 16 + lo).ok()?);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_link() -> Result<(), Error> {
        let key = FileKey::generate();
        let plain = b"a photo, honestly".to_vec();
        let sealed = key.encrypt(&plain);
        assert_eq!(sealed.len(), plain.len() + TAG_LEN);
        assert_eq!(key.decrypt(&sealed)?, plain);
        let url = link("https://upload.example.org/abc/photo%201.jpg", &key);
        assert!(url.starts_with("aesgcm://upload.example.org/abc/photo%201.jpg#"));
        assert_eq!(url.split('#').nth(1).map(str::len), Some(88));
        let (https, back) = parse_link(&url)?;
        assert_eq!(https, "https://upload.example.org/abc/photo%201.jpg");
        assert_eq!(back, key);
        Ok(())
    }

    #[test]
    fn tampering_and_bad_links_are_refused() {
        let key = FileKey::generate();
        let mut sealed = key.encrypt(b"hello");
        sealed[0] ^= 1;
        assert_eq!(key.decrypt(&sealed), Err(Error::Tampered));
        let sealed = key.encrypt(b"hello");
        assert_eq!(
            key.decrypt(&sealed[..sealed.len() - 1]),
            Err(Error::Tampered)
        );
        assert_eq!(
            parse_link("https://x/y#00").map(|_| ()),
            Err(Error::NotAesgcm)
        );
        assert_eq!(parse_link("aesgcm://x/y").map(|_| ()), Err(Error::BadKey));
        assert_eq!(
            parse_link("aesgcm://x/y#zz").map(|_| ()),
            Err(Error::BadKey)
        );
        assert_eq!(
            parse_link(&format!("aesgcm://x/y#{}", "ab".repeat(40))).map(|_| ()),
            Err(Error::BadKey)
        );
        assert_eq!(
            parse_link(&format!("aesgcm://x/y#{}", "é".repeat(44))).map(|_| ()),
            Err(Error::BadKey)
        );
    }

    #[test]
    fn sixteen_byte_ivs_are_read() -> Result<(), Error> {
        let mut bytes = vec![7u8; 16];
        bytes.extend([9u8; 32]);
        let key = FileKey::from_bytes(&bytes)?;
        let sealed = key.encrypt(b"from an older Conversations");
        let url = link("https://h/f", &key);
        assert_eq!(url.split('#').nth(1).map(str::len), Some(96));
        let (_, back) = parse_link(&url)?;
        assert_eq!(back.decrypt(&sealed)?, b"from an older Conversations");
        Ok(())
    }
}
