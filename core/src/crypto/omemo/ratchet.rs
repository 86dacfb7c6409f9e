//! The Double Ratchet (Signal's specification, revision 1), with both namespaces' KDF labels,
//! MAC sizes and framing. Decryption works on a copy and keeps it only when the message
//! authenticated, so a bad message never changes the session.

use std::collections::VecDeque;

use aes::cipher::{
    BlockDecryptMut as _, BlockEncryptMut as _, KeyIvInit as _, block_padding::Pkcs7,
};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::keys::KeyPair;
use super::wire::{self, Header};
use super::{Error, Namespace, Result, hkdf, hmac_sha256, mac_matches};

/// Most message keys one message may make us skip (and compute).
pub(super) const MAX_SKIP: u32 = 1000;
/// Most skipped message keys kept per session; the oldest go first.
pub(super) const MAX_SKIPPED_KEYS: usize = 1000;

/// A message key kept for a message that has not arrived yet.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct Skipped {
    #[zeroize(skip)]
    dh: [u8; 32],
    #[zeroize(skip)]
    n: u32,
    key: [u8; 32],
}

/// One session's ratchet state.
#[derive(Clone, Serialize, Deserialize)]
pub(super) struct Ratchet {
    ns: Namespace,
    root: [u8; 32],
    /// Our current ratchet key pair.
    ours: KeyPair,
    /// Their current ratchet public key, once known.
    theirs: Option<[u8; 32]>,
    send_chain: Option<[u8; 32]>,
    send_n: u32,
    /// Length of our previous sending chain.
    prev_send_n: u32,
    recv_chain: Option<[u8; 32]>,
    recv_n: u32,
    skipped: VecDeque<Skipped>,
}

impl Drop for Ratchet {
    fn drop(&mut self) {
        self.root.zeroize();
        self.send_chain.zeroize();
        self.recv_chain.zeroize();
    }
}

/// KDF_RK: a DH output mixed into the root key gives a new root key and a chain key.
fn kdf_root(ns: Namespace, root: &[u8; 32], dh: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
    let out = hkdf::<64>(Some(root), dh, ns.root_info());
    let mut r = [0u8; 32];
    let mut c = [0u8; 32];
    r.copy_from_slice(&out[..32]);
    c.copy_from_slice(&out[32..]);
    (r, c)
}

/// KDF_CK: the message key and the next chain key (HMAC with the constants 1 and 2).
fn kdf_chain(chain: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
    (hmac_sha256(chain, &[&[1]]), hmac_sha256(chain, &[&[2]]))
}

/// Cipher key, MAC key and IV of one message key.
struct MessageKeys {
    cipher: [u8; 32],
    mac: [u8; 32],
    iv: [u8; 16],
}

impl Drop for MessageKeys {
    fn drop(&mut self) {
        self.cipher.zeroize();
        self.mac.zeroize();
    }
}

impl MessageKeys {
    fn derive(ns: Namespace, key: &[u8; 32]) -> Self {
        let out = hkdf::<80>(None, key, ns.message_info());
        let mut k = MessageKeys {
            cipher: [0; 32],
            mac: [0; 32],
            iv: [0; 16],
        };
        k.cipher.copy_from_slice(&out[..32]);
        k.mac.copy_from_slice(&out[32..64]);
        k.iv.copy_from_slice(&out[64..]);
        k
    }

    fn tag(&self, ns: Namespace, ad: &[u8], authenticated: &[u8]) -> Vec<u8> {
        hmac_sha256(&self.mac, &[ad, authenticated])[..ns.mac_len()].to_vec()
    }
}

type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;
type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;

impl Ratchet {
    /// The initiator's ratchet: a first DH ratchet step against the responder's signed pre-key.
    pub fn initiator(ns: Namespace, shared: &[u8; 32], their_spk: &[u8; 32]) -> Result<Self> {
        let ours = KeyPair::generate();
        let (root, chain) = kdf_root(ns, shared, &*ours.dh(their_spk)?);
        Ok(Ratchet {
            ns,
            root,
            ours,
            theirs: Some(*their_spk),
            send_chain: Some(chain),
            send_n: 0,
            prev_send_n: 0,
            recv_chain: None,
            recv_n: 0,
            skipped: VecDeque::new(),
        })
    }

    /// The responder's ratchet: its signed pre-key is the first ratchet key.
    pub fn responder(ns: Namespace, shared: &[u8; 32], spk: &KeyPair) -> Self {
        Ratchet {
            ns,
            root: *shared,
            ours: spk.clone(),
            theirs: None,
            send_chain: None,
            send_n: 0,
            prev_send_n: 0,
            recv_chain: None,
            recv_n: 0,
            skipped: VecDeque::new(),
        }
    }

    /// Encrypts `plaintext` into a framed, authenticated message. `ad` is the associated
    /// data the namespace puts before the MAC input.
    pub fn encrypt(&mut self, ad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let chain = self.send_chain.as_ref().ok_or(Error::NoSession)?;
        let (key, next) = kdf_chain(chain);
        let keys = MessageKeys::derive(self.ns, &key);
        let header = Header {
            dh: *self.ours.public(),
            n: self.send_n,
            pn: self.prev_send_n,
        };
        let ciphertext = Aes256CbcEnc::new(&keys.cipher.into(), &keys.iv.into())
            .encrypt_padded_vec_mut::<Pkcs7>(plaintext);
        let ns = self.ns;
        let wire = wire::build_message(ns, &header, ciphertext, |auth| keys.tag(ns, ad, auth));
        self.send_chain = Some(next);
        self.send_n += 1;
        Ok(wire)
    }

    /// Decrypts a framed message. The state changes only if it authenticates.
    pub fn decrypt(&mut self, ad: &[u8], data: &[u8]) -> Result<Vec<u8>> {
        let parsed = wire::parse_message(self.ns, data)?;
        let mut next = self.clone();
        let key = next.message_key(&parsed.header)?;
        let keys = MessageKeys::derive(self.ns, &key);
        if !mac_matches(&keys.tag(self.ns, ad, &parsed.authenticated), &parsed.mac) {
            return Err(Error::BadMac);
        }
        let plaintext = Aes256CbcDec::new(&keys.cipher.into(), &keys.iv.into())
            .decrypt_padded_vec_mut::<Pkcs7>(&parsed.ciphertext)
            .map_err(|_| Error::Malformed("OMEMO message padding"))?;
        *self = next;
        Ok(plaintext)
    }

    /// The message key for `header`: a kept skipped key, or the receiving chain advanced
    /// (after a DH ratchet step when the sender's ratchet key is new).
    fn message_key(&mut self, header: &Header) -> Result<[u8; 32]> {
        if let Some(i) = self
            .skipped
            .iter()
            .position(|s| s.dh == header.dh && s.n == header.n)
        {
            let s = self.skipped.remove(i).ok_or(Error::NoSession)?;
            return Ok(s.key);
        }
        if self.theirs != Some(header.dh) || self.recv_chain.is_none() {
            // Keep the keys of the previous chain's messages that have not arrived. The
            // specification's `pn` is that chain's length; libsignal (and so libomemo-c,
            // Conversations, Dino) sends the index of its last message instead, one less.
            // Skipping through index `pn` serves both (at worst one spare key is kept).
            self.skip_to(header.pn.saturating_add(1))?;
            self.dh_ratchet(&header.dh)?;
        }
        if header.n < self.recv_n {
            return Err(Error::Duplicate(header.n));
        }
        self.skip_to(header.n)?;
        let chain = self.recv_chain.as_ref().ok_or(Error::NoSession)?;
        let (key, next) = kdf_chain(chain);
        self.recv_chain = Some(next);
        self.recv_n += 1;
        Ok(key)
    }

    /// Keeps the keys of receiving-chain messages before `until` that have not arrived.
    fn skip_to(&mut self, until: u32) -> Result<()> {
        let (Some(mut chain), Some(dh)) = (self.recv_chain, self.theirs) else {
            return Ok(());
        };
        if until <= self.recv_n {
            return Ok(());
        }
        if until - self.recv_n > MAX_SKIP {
            return Err(Error::TooManySkipped(until - self.recv_n, MAX_SKIP));
        }
        while self.recv_n < until {
            let (key, next) = kdf_chain(&chain);
            self.skipped.push_back(Skipped {
                dh,
                n: self.recv_n,
                key,
            });
            chain = next;
            self.recv_n += 1;
        }
        while self.skipped.len() > MAX_SKIPPED_KEYS {
            self.skipped.pop_front();
        }
        self.recv_chain = Some(chain);
        Ok(())
    }

    /// A DH ratchet step: their new key gives a receiving chain, our new key a sending chain.
    fn dh_ratchet(&mut self, theirs: &[u8; 32]) -> Result<()> {
        self.prev_send_n = self.send_n;
        self.send_n = 0;
        self.recv_n = 0;
        self.theirs = Some(*theirs);
        let (root, recv) = kdf_root(self.ns, &self.root, &*self.ours.dh(theirs)?);
        let ours = KeyPair::generate();
        let (root, send) = kdf_root(self.ns, &root, &*ours.dh(theirs)?);
        self.root = root;
        self.recv_chain = Some(recv);
        self.send_chain = Some(send);
        self.ours = ours;
        Ok(())
    }
}
