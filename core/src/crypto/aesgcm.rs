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

/// AES-256-GCM as a stream (no associated data), for files too big to hold in memory: the
/// same bytes as [`FileKey::encrypt`] / [`FileKey::decrypt`], fed in pieces of any size.
pub struct Stream {
    ctr: ctr::Ctr32BE<Aes256>,
    ghash: ghash::GHash,
    /// AES_K(J0): masks the tag.
    tag_mask: [u8; 16],
    /// Ciphertext bytes not yet hashed (less than a block).
    pending: Vec<u8>,
    /// Ciphertext length so far.
    len: u64,
    /// Decrypting: the last 16 bytes seen, which may be the tag.
    tail: Vec<u8>,
    decrypt: bool,
}

impl Stream {
    fn new(key: &FileKey, decrypt: bool) -> Stream {
        use aes::cipher::{BlockEncrypt as _, KeyInit as _, KeyIvInit as _};
        use ghash::universal_hash::UniversalHash as _;
        let cipher = Aes256::new(aes::cipher::generic_array::GenericArray::from_slice(
            key.key.as_slice(),
        ));
        let mut h = aes::Block::default();
        cipher.encrypt_block(&mut h);
        let ghash = ghash::GHash::new(&h);
        // J0: IV ‖ 0³¹ ‖ 1 for a 12-byte IV; GHASH of the padded IV and its length otherwise.
        let mut j0 = [0u8; 16];
        if key.iv.len() == 12 {
            j0[..12].copy_from_slice(&key.iv);
            j0[15] = 1;
        } else {
            let mut g = ghash.clone();
            g.update_padded(&key.iv);
            let mut lens = [0u8; 16];
            lens[8..].copy_from_slice(&((key.iv.len() as u64) * 8).to_be_bytes());
            g.update(&[lens.into()]);
            j0.copy_from_slice(&g.finalize());
        }
        let mut tag_mask = aes::Block::clone_from_slice(&j0);
        cipher.encrypt_block(&mut tag_mask);
        let mut first = j0;
        let counter = u32::from_be_bytes([j0[12], j0[13], j0[14], j0[15]]).wrapping_add(1);
        first[12..].copy_from_slice(&counter.to_be_bytes());
        Stream {
            ctr: ctr::Ctr32BE::<Aes256>::new(
                aes::cipher::generic_array::GenericArray::from_slice(key.key.as_slice()),
                &first.into(),
            ),
            ghash,
            tag_mask: tag_mask.into(),
            pending: Vec::new(),
            len: 0,
            tail: Vec::new(),
            decrypt,
        }
    }

    /// A stream encrypting under `key`: feed the file, then [`Stream::finish_encrypt`].
    pub fn encrypting(key: &FileKey) -> Stream {
        Stream::new(key, false)
    }

    /// A stream decrypting under `key`: feed the file (tag included), then
    /// [`Stream::finish_decrypt`]. Nothing it returns may be trusted before that succeeds.
    pub fn decrypting(key: &FileKey) -> Stream {
        Stream::new(key, true)
    }

    /// Hashes ciphertext, whole blocks now, the rest later.
    fn hash(&mut self, ciphertext: &[u8]) {
        use ghash::universal_hash::UniversalHash as _;
        self.len += ciphertext.len() as u64;
        self.pending.extend_from_slice(ciphertext);
        let whole = self.pending.len() / 16 * 16;
        if whole > 0 {
            self.ghash.update_padded(&self.pending[..whole]);
            self.pending.drain(..whole);
        }
    }

    /// Encrypts (or, decrypting, decrypts) the next piece.
    pub fn update(&mut self, data: &[u8]) -> Vec<u8> {
        use aes::cipher::StreamCipher as _;
        if !self.decrypt {
            let mut out = data.to_vec();
            self.ctr.apply_keystream(&mut out);
            self.hash(&out);
            return out;
        }
        // Hold back the last 16 bytes: they may be the tag.
        self.tail.extend_from_slice(data);
        let ready = self.tail.len().saturating_sub(TAG_LEN);
        let mut out: Vec<u8> = self.tail.drain(..ready).collect();
        self.hash(&out);
        self.ctr.apply_keystream(&mut out);
        out
    }

    fn tag(mut self) -> [u8; 16] {
        use ghash::universal_hash::UniversalHash as _;
        if !self.pending.is_empty() {
            self.ghash.update_padded(&self.pending);
        }
        let mut lens = [0u8; 16];
        lens[8..].copy_from_slice(&(self.len * 8).to_be_bytes());
        self.ghash.update(&[lens.into()]);
        let mut tag: [u8; 16] = self.ghash.finalize().into();
        for (t, m) in tag.iter_mut().zip(self.tag_mask) {
            *t ^= m;
        }
        tag
    }

    /// The tag to append after the ciphertext.
    pub fn finish_encrypt(self) -> [u8; 16] {
        self.tag()
    }

    /// Checks the tag that ended the input.
    pub fn finish_decrypt(mut self) -> Result<(), Error> {
        use subtle::ConstantTimeEq as _;
        let got = std::mem::take(&mut self.tail);
        if got.len() != TAG_LEN {
            return Err(Error::Tampered);
        }
        let want = self.tag();
        if bool::from(want.ct_eq(&got)) {
            Ok(())
        } else {
            Err(Error::Tampered)
        }
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

    #[test]
    fn streams_match_whole_file_crypto() -> Result<(), Error> {
        for iv_len in [12usize, 16] {
            let mut bytes = vec![0u8; iv_len];
            bytes
                .iter_mut()
                .enumerate()
                .for_each(|(i, b)| *b = i as u8 * 3);
            bytes.extend([0x42u8; 32]);
            let key = FileKey::from_bytes(&bytes)?;
            for size in [0usize, 1, 15, 16, 17, 1000, 70_001] {
                let plain: Vec<u8> = (0..size).map(|i| (i * 31 % 256) as u8).collect();
                let whole = key.encrypt(&plain);
                // Encrypt in odd pieces.
                let mut s = Stream::encrypting(&key);
                let mut streamed = Vec::new();
                for piece in plain.chunks(7777) {
                    streamed.extend(s.update(piece));
                }
                streamed.extend(s.finish_encrypt());
                assert_eq!(streamed, whole, "iv {iv_len}, size {size}");
                // Decrypt in other odd pieces.
                let mut d = Stream::decrypting(&key);
                let mut back = Vec::new();
                for piece in whole.chunks(5) {
                    back.extend(d.update(piece));
                }
                d.finish_decrypt()?;
                assert_eq!(back, plain);
            }
        }
        Ok(())
    }

    #[test]
    fn streamed_tampering_is_caught() {
        let key = FileKey::generate();
        let mut sealed = key.encrypt(&[7u8; 3000]);
        sealed[2000] ^= 1;
        let mut d = Stream::decrypting(&key);
        d.update(&sealed);
        assert_eq!(d.finish_decrypt(), Err(Error::Tampered));
        let mut d = Stream::decrypting(&key);
        d.update(&[1, 2, 3]);
        assert_eq!(
            d.finish_decrypt(),
            Err(Error::Tampered),
            "shorter than a tag"
        );
    }
}
