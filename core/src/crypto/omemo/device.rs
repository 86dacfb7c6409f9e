//! One local OMEMO device over a [`CryptoStore`]: creates its keys, answers for its bundle,
//! keeps 100 one-time pre-keys, rotates the signed pre-key, and encrypts and decrypts key
//! material for remote devices in either namespace.

use super::keys::{Bundle, IdentityKey, IdentityKeyPair, KeyPair, SignedPreKey, encode_public};
use super::session::{Encrypted, Incoming, Session};
use super::store::{Address, CryptoStore, StoreError};
use super::{Error, Namespace};

/// One-time pre-keys kept published.
pub const PRE_KEYS: usize = 100;
/// Refill when fewer than this many are left.
pub const PRE_KEY_LOW: usize = 80;
/// Age after which the signed pre-key is replaced (seconds): a week, as Conversations does.
pub const SIGNED_PRE_KEY_ROTATION: i64 = 7 * 24 * 3600;
/// How long a replaced signed pre-key still answers key exchanges made with it.
pub const SIGNED_PRE_KEY_GRACE: i64 = 30 * 24 * 3600;

/// Why a device operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The protocol refused (bad message, unknown pre-key, ...): see [`Error`].
    #[error(transparent)]
    Omemo(#[from] Error),
    /// The key store failed.
    #[error("the encryption key store failed: {0}")]
    Store(#[source] StoreError),
}

/// Results of this module.
pub type Result<T, E = DeviceError> = std::result::Result<T, E>;

fn stored<T>(r: std::result::Result<T, StoreError>) -> Result<T> {
    r.map_err(DeviceError::Store)
}

pub use crate::proto::omemo::PublishedBundle;

/// What decrypting a `<key>` gave.
#[derive(Debug)]
pub struct Decrypted {
    /// The key material (or whatever the sender encrypted).
    pub plaintext: Vec<u8>,
    /// The sender device's identity key, for the trust decision.
    pub identity: IdentityKey,
    /// A new session was built from a key exchange: its one-time pre-key is gone, so the
    /// bundle must be republished ([`Device::refill_pre_keys`]).
    pub new_session: bool,
}

/// A local OMEMO device.
pub struct Device<S> {
    store: S,
    id: u32,
    identity: IdentityKeyPair,
}

impl<S: CryptoStore> Device<S> {
    /// Opens the device kept in `store`, or creates one with id `new_id` (a random id in
    /// 1..2^31 that is not in our device list yet, chosen by the caller), with a signed
    /// pre-key and [`PRE_KEYS`] one-time pre-keys. `now` is seconds since the epoch.
    pub fn open(store: S, new_id: impl FnOnce() -> u32, now: i64) -> Result<Self> {
        if let Some((id, identity)) = stored(store.identity())? {
            return Ok(Device {
                store,
                id,
                identity,
            });
        }
        let id = new_id();
        let identity = IdentityKeyPair::generate();
        stored(store.save_identity(id, &identity))?;
        let device = Device {
            store,
            id,
            identity,
        };
        device.new_signed_pre_key(1, now)?;
        device.refill_pre_keys()?;
        Ok(device)
    }

    /// A random device id (1..2^31, as XEP-0384 asks).
    pub fn random_id() -> u32 {
        rand::random_range(1..0x8000_0000)
    }

    /// The device id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Our identity key as the namespace publishes it.
    pub fn identity(&self, ns: Namespace) -> IdentityKey {
        self.identity.public(ns)
    }

    /// The signature of our OMEMO 2 device label (XEP-0384 v0.9), made with our identity.
    pub fn sign_label(&self, label: &str) -> Vec<u8> {
        super::keys::sign_label(&self.identity, label)
    }

    /// The store (for the caller's trust and device-list records).
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Our bundle for one namespace.
    pub fn bundle(&self, ns: Namespace) -> Result<PublishedBundle> {
        let spk = self.current_signed_pre_key()?;
        let spk_sig = spk.signature(ns).map(<[u8]>::to_vec).unwrap_or_else(|| {
            self.identity
                .sign(&encode_public(ns, spk.pair.public()))
                .to_vec()
        });
        Ok(PublishedBundle {
            ik: self.identity.public(ns).encode(),
            spk_id: spk.id,
            spk: encode_public(ns, spk.pair.public()),
            spk_sig,
            prekeys: stored(self.store.pre_keys())?
                .iter()
                .map(|(id, k)| (*id, encode_public(ns, k.public())))
                .collect(),
        })
    }

    fn current_signed_pre_key(&self) -> Result<SignedPreKey> {
        stored(self.store.signed_pre_keys())?
            .pop()
            .ok_or(DeviceError::Store(
                "no signed pre-key in the key store".into(),
            ))
    }

    fn new_signed_pre_key(&self, id: u32, now: i64) -> Result<()> {
        stored(
            self.store
                .save_signed_pre_key(&SignedPreKey::generate(&self.identity, id, now)),
        )
    }

    /// Tops the one-time pre-keys up to [`PRE_KEYS`] when fewer than [`PRE_KEY_LOW`] are
    /// left. Returns whether the bundle changed (and must be republished).
    pub fn refill_pre_keys(&self) -> Result<bool> {
        let have = stored(self.store.pre_keys())?.len();
        if have >= PRE_KEY_LOW {
            return Ok(false);
        }
        let first = stored(self.store.max_pre_key_id())? + 1;
        let new: Vec<_> = (first..)
            .take(PRE_KEYS - have)
            .map(|id| (id, KeyPair::generate()))
            .collect();
        stored(self.store.save_pre_keys(&new))?;
        Ok(true)
    }

    /// Replaces the signed pre-key when it is older than [`SIGNED_PRE_KEY_ROTATION`], and
    /// deletes replaced ones after [`SIGNED_PRE_KEY_GRACE`]. Returns whether the bundle
    /// changed.
    pub fn rotate_signed_pre_key(&self, now: i64) -> Result<bool> {
        let keys = stored(self.store.signed_pre_keys())?;
        let Some(current) = keys.last() else {
            self.new_signed_pre_key(1, now)?;
            return Ok(true);
        };
        for old in &keys[..keys.len() - 1] {
            if now - old.created > SIGNED_PRE_KEY_GRACE {
                stored(self.store.remove_signed_pre_key(old.id))?;
            }
        }
        if now - current.created < SIGNED_PRE_KEY_ROTATION {
            return Ok(false);
        }
        let next = keys
            .iter()
            .map(|k| k.id)
            .max()
            .unwrap_or(0)
            .wrapping_add(1)
            .max(1);
        self.new_signed_pre_key(next, now)?;
        Ok(true)
    }

    /// Is there a session with this device?
    pub fn has_session(&self, addr: &Address) -> Result<bool> {
        Ok(stored(self.store.session(addr))?.is_some())
    }

    /// The identity key of the device we have a session with.
    pub fn session_identity(&self, addr: &Address) -> Result<Option<IdentityKey>> {
        Ok(stored(self.store.session(addr))?.map(|s| *s.their_identity()))
    }

    /// Encrypts for a remote device: over the existing session, or — given its bundle — over
    /// a new one (replacing any old session, e.g. to repair a broken one).
    pub fn encrypt(
        &self,
        addr: &Address,
        bundle: Option<&Bundle>,
        plaintext: &[u8],
    ) -> Result<Encrypted> {
        let mut session = match bundle {
            Some(b) => {
                if b.ns != addr.ns {
                    return Err(Error::Malformed("bundle of the other namespace").into());
                }
                Session::initiate(&self.identity, b)?
            }
            None => stored(self.store.session(addr))?.ok_or(Error::NoSession)?,
        };
        let encrypted = session.encrypt(plaintext)?;
        stored(self.store.save_session(addr, &session))?;
        Ok(encrypted)
    }

    /// Decrypts a `<key>` addressed to this device. A key exchange builds a new session
    /// (unless it repeats the one we have) and consumes its one-time pre-key. Nothing is
    /// stored unless decryption succeeded.
    pub fn decrypt(&self, addr: &Address, kex: bool, data: &[u8]) -> Result<Decrypted> {
        let existing = stored(self.store.session(addr))?;
        if !kex {
            let mut session = existing.ok_or(Error::NoSession)?;
            let plaintext = session.decrypt(data)?;
            stored(self.store.save_session(addr, &session))?;
            return Ok(Decrypted {
                plaintext,
                identity: *session.their_identity(),
                new_session: false,
            });
        }
        let incoming = Incoming::parse(addr.ns, data)?;
        if let Some(mut session) = existing.filter(|s| s.started_by(&incoming)) {
            let plaintext = session.decrypt_repeat(&incoming)?;
            stored(self.store.save_session(addr, &session))?;
            return Ok(Decrypted {
                plaintext,
                identity: *session.their_identity(),
                new_session: false,
            });
        }
        let spk = stored(self.store.signed_pre_keys())?
            .into_iter()
            .find(|k| k.id == incoming.spk_id())
            .ok_or(Error::UnknownSignedPreKey(incoming.spk_id()))?;
        let pk = stored(self.store.pre_key(incoming.pk_id()))?
            .ok_or(Error::UnknownPreKey(incoming.pk_id()))?;
        let (session, plaintext) = Session::respond(&self.identity, &incoming, &spk.pair, &pk)?;
        stored(self.store.save_session(addr, &session))?;
        stored(self.store.remove_pre_key(incoming.pk_id()))?;
        Ok(Decrypted {
            plaintext,
            identity: *session.their_identity(),
            new_session: true,
        })
    }

    /// Forgets the session with a device (to start over with a new key exchange).
    pub fn forget_session(&self, addr: &Address) -> Result<()> {
        stored(self.store.remove_session(addr))
    }
}

impl PublishedBundle {
    /// Parses (and verifies) a bundle in this published form.
    pub fn decode(&self, ns: Namespace) -> Result<Bundle, Error> {
        Bundle::decode(
            ns,
            &self.ik,
            self.spk_id,
            &self.spk,
            &self.spk_sig,
            self.prekeys.iter().map(|(id, k)| (*id, k.as_slice())),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::store::MemoryStore;
    use super::*;

    fn device(id: u32) -> Device<MemoryStore> {
        Device::open(MemoryStore::default(), || id, 1_000).expect("device")
    }

    #[test]
    fn devices_talk_and_pre_keys_are_consumed_and_refilled() {
        for ns in Namespace::ALL {
            let alice = device(1);
            let bob = device(2);
            let bundle = bob.bundle(ns).expect("bundle");
            assert_eq!(bundle.prekeys.len(), PRE_KEYS);
            let to_bob = Address::new(ns, "bob@example.org", 2);
            let to_alice = Address::new(ns, "alice@example.org", 1);
            let m = alice
                .encrypt(&to_bob, Some(&bundle.decode(ns).expect("valid")), b"key")
                .expect("encrypt");
            let d = bob.decrypt(&to_alice, m.kex, &m.data).expect("decrypt");
            assert!(d.new_session);
            assert_eq!(d.plaintext, b"key");
            assert_eq!(d.identity, alice.identity(ns));
            assert_eq!(bob.bundle(ns).expect("bundle").prekeys.len(), PRE_KEYS - 1);
            // The same key exchange again is recognised as a repeat of this session (and this
            // message as a duplicate), not taken as a second session.
            assert!(matches!(
                bob.decrypt(&to_alice, m.kex, &m.data),
                Err(DeviceError::Omemo(Error::Duplicate(0)))
            ));
            let r = bob.encrypt(&to_alice, None, b"reply").expect("encrypt");
            assert_eq!(
                alice
                    .decrypt(&to_bob, r.kex, &r.data)
                    .expect("decrypt")
                    .plaintext,
                b"reply"
            );
            assert!(!bob.refill_pre_keys().expect("refill"));
        }
    }

    #[test]
    fn refill_and_rotation() {
        let d = device(5);
        let ids: Vec<u32> = d
            .store
            .pre_keys()
            .expect("keys")
            .iter()
            .map(|k| k.0)
            .collect();
        for id in &ids[..30] {
            d.store.remove_pre_key(*id).expect("remove");
        }
        assert!(d.refill_pre_keys().expect("refill"));
        let after: Vec<u32> = d
            .store
            .pre_keys()
            .expect("keys")
            .iter()
            .map(|k| k.0)
            .collect();
        assert_eq!(after.len(), PRE_KEYS);
        assert!(
            after.iter().all(|id| !ids[..30].contains(id)),
            "pre-key ids are never reused"
        );

        assert!(!d.rotate_signed_pre_key(1_000 + 3600).expect("rotate"));
        assert!(
            d.rotate_signed_pre_key(1_000 + SIGNED_PRE_KEY_ROTATION)
                .expect("rotate")
        );
        assert_eq!(d.bundle(Namespace::Legacy).expect("bundle").spk_id, 2);
        assert_eq!(
            d.store.signed_pre_keys().expect("spks").len(),
            2,
            "old one kept for late messages"
        );
        d.rotate_signed_pre_key(1_000 + SIGNED_PRE_KEY_ROTATION + SIGNED_PRE_KEY_GRACE + 1)
            .expect("rotate");
        let ids: Vec<u32> = d
            .store
            .signed_pre_keys()
            .expect("spks")
            .iter()
            .map(|k| k.id)
            .collect();
        assert_eq!(
            ids,
            [2, 3],
            "key 1 expired; key 2 is old enough to be replaced too"
        );
    }

    #[test]
    fn unknown_pre_key_is_explained() {
        let ns = Namespace::Legacy;
        let alice = device(1);
        let bob = device(2);
        let bundle = bob.bundle(ns).expect("bundle").decode(ns).expect("valid");
        let m = alice
            .encrypt(&Address::new(ns, "bob@x", 2), Some(&bundle), b"k")
            .expect("encrypt");
        let fresh_bob = device(2);
        let err = fresh_bob
            .decrypt(&Address::new(ns, "alice@x", 1), true, &m.data)
            .expect_err("other keys");
        assert!(
            matches!(
                err,
                DeviceError::Omemo(Error::BadMac | Error::UnknownPreKey(_))
            ),
            "{err}"
        );
        assert!(matches!(
            bob.decrypt(&Address::new(ns, "alice@x", 1), false, &m.data),
            Err(DeviceError::Omemo(Error::NoSession | Error::Malformed(_)))
        ));
    }
}
