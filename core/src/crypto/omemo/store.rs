//! Where an OMEMO device keeps its keys and sessions: the [`CryptoStore`] trait, and
//! [`MemoryStore`] for tests and benchmarks. The SQLite implementation lives with the rest
//! of the storage (`store::omemo`); private keys never leave a store except into the OS
//! keyring.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::Namespace;
use super::keys::{IdentityKeyPair, KeyPair, SignedPreKey};
use super::session::Session;

/// A remote device in one namespace: bare JID and device id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Address {
    /// The namespace the session speaks.
    pub ns: Namespace,
    /// The owner's bare JID.
    pub jid: String,
    /// The device id.
    pub device: u32,
}

impl Address {
    /// An address.
    pub fn new(ns: Namespace, jid: impl Into<String>, device: u32) -> Self {
        Address {
            ns,
            jid: jid.into(),
            device,
        }
    }
}

/// A store failure, boxed so the engine does not depend on the store's types.
pub type StoreError = Box<dyn std::error::Error + Send + Sync>;

/// Persistent state of one local OMEMO device. Methods are small and synchronous (the
/// SQLite implementation runs them in one transaction each).
pub trait CryptoStore {
    /// This device's id and identity, once created.
    fn identity(&self) -> Result<Option<(u32, IdentityKeyPair)>, StoreError>;
    /// Saves the device id and identity (once, at creation).
    fn save_identity(&self, device: u32, identity: &IdentityKeyPair) -> Result<(), StoreError>;

    /// All signed pre-keys, current (newest) last.
    fn signed_pre_keys(&self) -> Result<Vec<SignedPreKey>, StoreError>;
    /// Adds a signed pre-key.
    fn save_signed_pre_key(&self, key: &SignedPreKey) -> Result<(), StoreError>;
    /// Deletes a signed pre-key.
    fn remove_signed_pre_key(&self, id: u32) -> Result<(), StoreError>;

    /// A one-time pre-key.
    fn pre_key(&self, id: u32) -> Result<Option<KeyPair>, StoreError>;
    /// All one-time pre-keys, by id.
    fn pre_keys(&self) -> Result<Vec<(u32, KeyPair)>, StoreError>;
    /// Adds one-time pre-keys.
    fn save_pre_keys(&self, keys: &[(u32, KeyPair)]) -> Result<(), StoreError>;
    /// Deletes a used one-time pre-key.
    fn remove_pre_key(&self, id: u32) -> Result<(), StoreError>;
    /// The highest pre-key id ever handed out (ids are never reused).
    fn max_pre_key_id(&self) -> Result<u32, StoreError>;

    /// The session with a remote device.
    fn session(&self, addr: &Address) -> Result<Option<Session>, StoreError>;
    /// Saves (replaces) the session with a remote device.
    fn save_session(&self, addr: &Address, session: &Session) -> Result<(), StoreError>;
    /// Forgets the session with a remote device.
    fn remove_session(&self, addr: &Address) -> Result<(), StoreError>;
}

#[derive(Default)]
struct Memory {
    identity: Option<(u32, IdentityKeyPair)>,
    spks: Vec<SignedPreKey>,
    pks: BTreeMap<u32, KeyPair>,
    max_pk: u32,
    sessions: HashMap<Address, Session>,
}

/// A [`CryptoStore`] in memory.
#[derive(Default)]
pub struct MemoryStore(Mutex<Memory>);

impl MemoryStore {
    fn with<T>(&self, f: impl FnOnce(&mut Memory) -> T) -> Result<T, StoreError> {
        let mut m = self.0.lock().map_err(|_| "memory store poisoned")?;
        Ok(f(&mut m))
    }
}

impl CryptoStore for MemoryStore {
    fn identity(&self) -> Result<Option<(u32, IdentityKeyPair)>, StoreError> {
        self.with(|m| m.identity.clone())
    }
    fn save_identity(&self, device: u32, identity: &IdentityKeyPair) -> Result<(), StoreError> {
        self.with(|m| m.identity = Some((device, identity.clone())))
    }
    fn signed_pre_keys(&self) -> Result<Vec<SignedPreKey>, StoreError> {
        self.with(|m| m.spks.clone())
    }
    fn save_signed_pre_key(&self, key: &SignedPreKey) -> Result<(), StoreError> {
        self.with(|m| m.spks.push(key.clone()))
    }
    fn remove_signed_pre_key(&self, id: u32) -> Result<(), StoreError> {
        self.with(|m| m.spks.retain(|k| k.id != id))
    }
    fn pre_key(&self, id: u32) -> Result<Option<KeyPair>, StoreError> {
        self.with(|m| m.pks.get(&id).cloned())
    }
    fn pre_keys(&self) -> Result<Vec<(u32, KeyPair)>, StoreError> {
        self.with(|m| m.pks.iter().map(|(id, k)| (*id, k.clone())).collect())
    }
    fn save_pre_keys(&self, keys: &[(u32, KeyPair)]) -> Result<(), StoreError> {
        self.with(|m| {
            for (id, k) in keys {
                m.pks.insert(*id, k.clone());
                m.max_pk = m.max_pk.max(*id);
            }
        })
    }
    fn remove_pre_key(&self, id: u32) -> Result<(), StoreError> {
        self.with(|m| {
            m.pks.remove(&id);
        })
    }
    fn max_pre_key_id(&self) -> Result<u32, StoreError> {
        self.with(|m| m.max_pk)
    }
    fn session(&self, addr: &Address) -> Result<Option<Session>, StoreError> {
        self.with(|m| m.sessions.get(addr).cloned())
    }
    fn save_session(&self, addr: &Address, session: &Session) -> Result<(), StoreError> {
        self.with(|m| {
            m.sessions.insert(addr.clone(), session.clone());
        })
    }
    fn remove_session(&self, addr: &Address) -> Result<(), StoreError> {
        self.with(|m| {
            m.sessions.remove(addr);
        })
    }
}
