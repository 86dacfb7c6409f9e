//! End-to-end encryption state in the profile database (migration 005): the OMEMO
//! [`CryptoStore`] of each account, remote device lists, trust decisions, and the sticky
//! per-conversation encryption choice.
//!
//! Private keys and session states are sealed with AES-256-GCM under a per-account key that
//! the caller keeps in the OS keyring; each value is bound to its row (table, account, ids)
//! as associated data, so rows cannot be swapped. The database alone reveals no secret.

use aes_gcm::aead::{Aead as _, KeyInit as _, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rusqlite::{OptionalExtension as _, params};
use serde::{Serialize, de::DeserializeOwned};
use zeroize::Zeroizing;

use super::{AccountId, Error, Result, Store, now_ms};
use crate::crypto::omemo::Namespace;
use crate::crypto::omemo::keys::{IdentityKeyPair, KeyPair, SignedPreKey};
use crate::crypto::omemo::session::Session;
use crate::crypto::omemo::store::{Address, CryptoStore, StoreError};

/// Trust in one identity key of a contact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trust {
    /// Not verified, trusted blindly (the default before any verification).
    Blind,
    /// Verified by the user (fingerprint compared or QR code scanned).
    Verified,
    /// Rejected by the user: never encrypted to, messages from it flagged.
    Untrusted,
    /// New key of a contact with verified keys: not used until the user decides.
    Undecided,
}

impl Trust {
    fn as_str(self) -> &'static str {
        match self {
            Trust::Blind => "blind",
            Trust::Verified => "verified",
            Trust::Untrusted => "untrusted",
            Trust::Undecided => "undecided",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "blind" => Trust::Blind,
            "verified" => Trust::Verified,
            "untrusted" => Trust::Untrusted,
            "undecided" => Trust::Undecided,
            other => {
                return Err(Error::Corrupt {
                    column: "omemo_trust.trust",
                    value: other.to_owned(),
                });
            }
        })
    }

    /// May we encrypt to (and believe messages from) a key with this trust?
    pub fn usable(self) -> bool {
        matches!(self, Trust::Blind | Trust::Verified)
    }
}

/// A remote device from a device list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRecord {
    /// Device id.
    pub device: u32,
    /// Its label, if the list has one (OMEMO 2).
    pub label: Option<String>,
    /// Still listed.
    pub active: bool,
    /// Its identity key (as published), once its bundle or a message showed it.
    pub identity: Option<Vec<u8>>,
    /// Why we cannot encrypt to it, if we could not.
    pub failure: Option<String>,
}

fn ns_str(ns: Namespace) -> &'static str {
    match ns {
        Namespace::Legacy => "legacy",
        Namespace::Omemo2 => "omemo2",
    }
}

/// One account's OMEMO key store.
#[derive(Clone)]
pub struct OmemoStore {
    store: Store,
    account: AccountId,
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for OmemoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OmemoStore")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl OmemoStore {
    /// The store of `account`, sealing with `key` (kept in the OS keyring by the caller).
    pub fn new(store: Store, account: AccountId, key: Zeroizing<[u8; 32]>) -> Self {
        OmemoStore {
            store,
            account,
            key,
        }
    }

    fn seal(&self, row: &str, value: &impl Serialize) -> Result<Vec<u8>> {
        let plain = Zeroizing::new(serde_json::to_vec(value).map_err(|e| Error::Corrupt {
            column: "sealed value",
            value: e.to_string(),
        })?);
        let nonce: [u8; 12] = rand::random();
        let aad = format!("{row}:{}", self.account);
        let sealed = Aes256Gcm::new(self.key.as_ref().into())
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| Error::Sealed(row.to_owned()))?;
        Ok([&nonce[..], &sealed].concat())
    }

    fn open<T: DeserializeOwned>(&self, row: &str, sealed: &[u8]) -> Result<T> {
        if sealed.len() < 12 {
            return Err(Error::Sealed(row.to_owned()));
        }
        let (nonce, ct) = sealed.split_at(12);
        let aad = format!("{row}:{}", self.account);
        let plain = Zeroizing::new(
            Aes256Gcm::new(self.key.as_ref().into())
                .decrypt(
                    Nonce::from_slice(nonce),
                    Payload {
                        msg: ct,
                        aad: aad.as_bytes(),
                    },
                )
                .map_err(|_| Error::Sealed(row.to_owned()))?,
        );
        serde_json::from_slice(&plain).map_err(|_| Error::Sealed(row.to_owned()))
    }

    // ---- remote devices and trust ----

    /// Records a device list: listed devices become active (new ones are added), the others
    /// inactive.
    pub fn set_devices(
        &self,
        ns: Namespace,
        jid: &str,
        devices: &[(u32, Option<String>)],
    ) -> Result<()> {
        let mut conn = self.store.lock();
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE omemo_device SET active = 0 WHERE account_id = ?1 AND ns = ?2 AND jid = ?3",
            params![self.account, ns_str(ns), jid],
        )?;
        for (id, label) in devices {
            tx.execute(
                "INSERT INTO omemo_device (account_id, ns, jid, device_id, label, active)
                 VALUES (?1, ?2, ?3, ?4, ?5, 1)
                 ON CONFLICT (account_id, ns, jid, device_id)
                 DO UPDATE SET active = 1, label = excluded.label",
                params![self.account, ns_str(ns), jid, id, label],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The devices known for `jid` in one namespace, active ones first.
    pub fn devices(&self, ns: Namespace, jid: &str) -> Result<Vec<DeviceRecord>> {
        let conn = self.store.lock();
        let mut st = conn.prepare(
            "SELECT device_id, label, active, identity, failure FROM omemo_device
             WHERE account_id = ?1 AND ns = ?2 AND jid = ?3 ORDER BY active DESC, device_id",
        )?;
        let rows = st.query_map(params![self.account, ns_str(ns), jid], |r| {
            Ok(DeviceRecord {
                device: r.get(0)?,
                label: r.get(1)?,
                active: r.get(2)?,
                identity: r.get(3)?,
                failure: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Remembers a device's identity key and clears or sets why we cannot encrypt to it.
    pub fn set_device_state(
        &self,
        ns: Namespace,
        jid: &str,
        device: u32,
        identity: Option<&[u8]>,
        failure: Option<&str>,
    ) -> Result<()> {
        self.store.lock().execute(
            "INSERT INTO omemo_device (account_id, ns, jid, device_id, active, identity, failure)
             VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6)
             ON CONFLICT (account_id, ns, jid, device_id)
             DO UPDATE SET identity = coalesce(excluded.identity, identity), failure = excluded.failure",
            params![self.account, ns_str(ns), jid, device, identity, failure],
        )?;
        Ok(())
    }

    /// Our trust in one of `jid`'s keys, if we have seen it.
    pub fn trust(&self, jid: &str, fingerprint: &str) -> Result<Option<Trust>> {
        let t: Option<String> = self
            .store
            .lock()
            .query_row(
                "SELECT trust FROM omemo_trust WHERE account_id = ?1 AND jid = ?2 AND fingerprint = ?3",
                params![self.account, jid, fingerprint],
                |r| r.get(0),
            )
            .optional()?;
        t.as_deref().map(Trust::parse).transpose()
    }

    /// Our trust in one of `jid`'s keys, deciding it when the key is new: blind trust,
    /// unless the contact has verified keys — then a new key waits for the user
    /// ([`Trust::Undecided`]).
    pub fn trust_or_default(&self, jid: &str, fingerprint: &str) -> Result<Trust> {
        if let Some(t) = self.trust(jid, fingerprint)? {
            return Ok(t);
        }
        let verified = self.trusts(jid)?.iter().any(|(_, t)| *t == Trust::Verified);
        let trust = if verified {
            Trust::Undecided
        } else {
            Trust::Blind
        };
        self.set_trust(jid, fingerprint, trust)?;
        Ok(trust)
    }

    /// Every key of `jid` we have a decision about.
    pub fn trusts(&self, jid: &str) -> Result<Vec<(String, Trust)>> {
        let conn = self.store.lock();
        let mut st = conn.prepare(
            "SELECT fingerprint, trust FROM omemo_trust WHERE account_id = ?1 AND jid = ?2
             ORDER BY first_seen, fingerprint",
        )?;
        let rows = st.query_map(params![self.account, jid], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        rows.map(|r| {
            let (f, t) = r?;
            Ok((f, Trust::parse(&t)?))
        })
        .collect()
    }

    /// Sets the trust in one of `jid`'s keys.
    pub fn set_trust(&self, jid: &str, fingerprint: &str, trust: Trust) -> Result<()> {
        self.store.lock().execute(
            "INSERT INTO omemo_trust (account_id, jid, fingerprint, trust, first_seen)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (account_id, jid, fingerprint) DO UPDATE SET trust = excluded.trust",
            params![self.account, jid, fingerprint, trust.as_str(), now_ms()],
        )?;
        Ok(())
    }

    // ---- CryptoStore helpers ----

    fn identity_row(&self) -> Result<Option<(u32, IdentityKeyPair)>> {
        let row: Option<(u32, Vec<u8>)> = self
            .store
            .lock()
            .query_row(
                "SELECT device_id, identity FROM omemo_identity WHERE account_id = ?1",
                params![self.account],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        row.map(|(id, sealed)| Ok((id, self.open("omemo_identity", &sealed)?)))
            .transpose()
    }
}

fn boxed<T>(r: Result<T>) -> std::result::Result<T, StoreError> {
    r.map_err(|e| Box::new(e) as StoreError)
}

impl CryptoStore for OmemoStore {
    fn identity(&self) -> std::result::Result<Option<(u32, IdentityKeyPair)>, StoreError> {
        boxed(self.identity_row())
    }

    fn save_identity(
        &self,
        device: u32,
        identity: &IdentityKeyPair,
    ) -> std::result::Result<(), StoreError> {
        boxed((|| {
            let sealed = self.seal("omemo_identity", identity)?;
            self.store.lock().execute(
                "INSERT INTO omemo_identity (account_id, device_id, identity) VALUES (?1, ?2, ?3)
                 ON CONFLICT (account_id) DO UPDATE SET device_id = excluded.device_id,
                 identity = excluded.identity",
                params![self.account, device, sealed],
            )?;
            Ok(())
        })())
    }

    fn signed_pre_keys(&self) -> std::result::Result<Vec<SignedPreKey>, StoreError> {
        boxed((|| {
            let conn = self.store.lock();
            let mut st = conn.prepare(
                "SELECT id, key FROM omemo_signed_pre_key WHERE account_id = ?1 ORDER BY created, id",
            )?;
            let rows = st
                .query_map(params![self.account], |r| {
                    Ok((r.get::<_, u32>(0)?, r.get::<_, Vec<u8>>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            drop(st);
            drop(conn);
            rows.iter()
                .map(|(id, sealed)| self.open(&format!("omemo_signed_pre_key:{id}"), sealed))
                .collect()
        })())
    }

    fn save_signed_pre_key(&self, key: &SignedPreKey) -> std::result::Result<(), StoreError> {
        boxed((|| {
            let sealed = self.seal(&format!("omemo_signed_pre_key:{}", key.id), key)?;
            self.store.lock().execute(
                "INSERT OR REPLACE INTO omemo_signed_pre_key (account_id, id, key, created)
                 VALUES (?1, ?2, ?3, ?4)",
                params![self.account, key.id, sealed, key.created],
            )?;
            Ok(())
        })())
    }

    fn remove_signed_pre_key(&self, id: u32) -> std::result::Result<(), StoreError> {
        boxed((|| {
            self.store.lock().execute(
                "DELETE FROM omemo_signed_pre_key WHERE account_id = ?1 AND id = ?2",
                params![self.account, id],
            )?;
            Ok(())
        })())
    }

    fn pre_key(&self, id: u32) -> std::result::Result<Option<KeyPair>, StoreError> {
        boxed((|| {
            let sealed: Option<Vec<u8>> = self
                .store
                .lock()
                .query_row(
                    "SELECT key FROM omemo_pre_key WHERE account_id = ?1 AND id = ?2",
                    params![self.account, id],
                    |r| r.get(0),
                )
                .optional()?;
            sealed
                .map(|s| self.open(&format!("omemo_pre_key:{id}"), &s))
                .transpose()
        })())
    }

    fn pre_keys(&self) -> std::result::Result<Vec<(u32, KeyPair)>, StoreError> {
        boxed((|| {
            let conn = self.store.lock();
            let mut st = conn
                .prepare("SELECT id, key FROM omemo_pre_key WHERE account_id = ?1 ORDER BY id")?;
            let rows = st
                .query_map(params![self.account], |r| {
                    Ok((r.get::<_, u32>(0)?, r.get::<_, Vec<u8>>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            drop(st);
            drop(conn);
            rows.iter()
                .map(|(id, sealed)| Ok((*id, self.open(&format!("omemo_pre_key:{id}"), sealed)?)))
                .collect()
        })())
    }

    fn save_pre_keys(&self, keys: &[(u32, KeyPair)]) -> std::result::Result<(), StoreError> {
        boxed((|| {
            let sealed = keys
                .iter()
                .map(|(id, k)| Ok((*id, self.seal(&format!("omemo_pre_key:{id}"), k)?)))
                .collect::<Result<Vec<_>>>()?;
            let mut conn = self.store.lock();
            let tx = conn.transaction()?;
            for (id, s) in &sealed {
                tx.execute(
                    "INSERT OR REPLACE INTO omemo_pre_key (account_id, id, key) VALUES (?1, ?2, ?3)",
                    params![self.account, id, s],
                )?;
            }
            if let Some(max) = keys.iter().map(|(id, _)| *id).max() {
                tx.execute(
                    "UPDATE omemo_identity SET max_pre_key = max(max_pre_key, ?2) WHERE account_id = ?1",
                    params![self.account, max],
                )?;
            }
            tx.commit()?;
            Ok(())
        })())
    }

    fn remove_pre_key(&self, id: u32) -> std::result::Result<(), StoreError> {
        boxed((|| {
            self.store.lock().execute(
                "DELETE FROM omemo_pre_key WHERE account_id = ?1 AND id = ?2",
                params![self.account, id],
            )?;
            Ok(())
        })())
    }

    fn max_pre_key_id(&self) -> std::result::Result<u32, StoreError> {
        boxed((|| {
            Ok(self
                .store
                .lock()
                .query_row(
                    "SELECT max_pre_key FROM omemo_identity WHERE account_id = ?1",
                    params![self.account],
                    |r| r.get(0),
                )
                .optional()?
                .unwrap_or(0))
        })())
    }

    fn session(&self, addr: &Address) -> std::result::Result<Option<Session>, StoreError> {
        boxed((|| {
            let sealed: Option<Vec<u8>> = self
                .store
                .lock()
                .query_row(
                    "SELECT state FROM omemo_session
                     WHERE account_id = ?1 AND ns = ?2 AND jid = ?3 AND device_id = ?4",
                    params![self.account, ns_str(addr.ns), addr.jid, addr.device],
                    |r| r.get(0),
                )
                .optional()?;
            sealed
                .map(|s| self.open(&session_row(addr), &s))
                .transpose()
        })())
    }

    fn save_session(
        &self,
        addr: &Address,
        session: &Session,
    ) -> std::result::Result<(), StoreError> {
        boxed((|| {
            let sealed = self.seal(&session_row(addr), session)?;
            self.store.lock().execute(
                "INSERT OR REPLACE INTO omemo_session (account_id, ns, jid, device_id, state)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![self.account, ns_str(addr.ns), addr.jid, addr.device, sealed],
            )?;
            Ok(())
        })())
    }

    fn remove_session(&self, addr: &Address) -> std::result::Result<(), StoreError> {
        boxed((|| {
            self.store.lock().execute(
                "DELETE FROM omemo_session WHERE account_id = ?1 AND ns = ?2 AND jid = ?3 AND device_id = ?4",
                params![self.account, ns_str(addr.ns), addr.jid, addr.device],
            )?;
            Ok(())
        })())
    }
}

fn session_row(addr: &Address) -> String {
    format!(
        "omemo_session:{}:{}:{}",
        ns_str(addr.ns),
        addr.jid,
        addr.device
    )
}

impl Store {
    /// The sticky encryption of a conversation (`"omemo"`, `"otr"`), `None` for plaintext.
    pub fn conversation_encryption(
        &self,
        account: AccountId,
        peer: &str,
    ) -> Result<Option<String>> {
        Ok(self
            .lock()
            .query_row(
                "SELECT encryption FROM conversation WHERE account_id = ?1 AND peer = ?2",
                params![account, peer],
                |r| r.get(0),
            )
            .optional()?
            .flatten())
    }

    /// Sets (or with `None` clears, at the user's explicit request) a conversation's
    /// encryption, creating the conversation if needed. Clearing it records the choice, so
    /// that the contact's encrypted messages do not turn it back on
    /// ([`Store::encrypt_unless_declined`]).
    pub fn set_conversation_encryption(
        &self,
        account: AccountId,
        peer: &str,
        encryption: Option<&str>,
    ) -> Result<()> {
        self.lock().execute(
            "INSERT INTO conversation (account_id, peer, encryption, plaintext_chosen)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (account_id, peer) DO UPDATE SET encryption = excluded.encryption,
             plaintext_chosen = excluded.plaintext_chosen",
            params![account, peer, encryption, encryption.is_none()],
        )?;
        Ok(())
    }

    /// Clears a conversation's encryption if it is `encryption` (an OTR session ended),
    /// without recording a choice of plaintext: a contact's next encrypted message may turn
    /// encryption on again ([`Store::encrypt_unless_declined`]).
    pub fn end_conversation_encryption(
        &self,
        account: AccountId,
        peer: &str,
        encryption: &str,
    ) -> Result<()> {
        self.lock().execute(
            "UPDATE conversation SET encryption = NULL
             WHERE account_id = ?1 AND peer = ?2 AND encryption = ?3",
            params![account, peer, encryption],
        )?;
        Ok(())
    }

    /// Turns a conversation's encryption on because the contact wrote encrypted — unless it
    /// is on already or the user turned it off. Returns whether it changed.
    pub fn encrypt_unless_declined(
        &self,
        account: AccountId,
        peer: &str,
        encryption: &str,
    ) -> Result<bool> {
        let conn = self.lock();
        let inserted = conn.execute(
            "INSERT INTO conversation (account_id, peer, encryption) VALUES (?1, ?2, ?3)
             ON CONFLICT (account_id, peer) DO NOTHING",
            params![account, peer, encryption],
        )?;
        let updated = conn.execute(
            "UPDATE conversation SET encryption = ?3
             WHERE account_id = ?1 AND peer = ?2 AND encryption IS NULL AND plaintext_chosen = 0",
            params![account, peer, encryption],
        )?;
        Ok(inserted + updated > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::omemo::device::Device;

    fn setup() -> anyhow::Result<(Store, AccountId)> {
        let store = Store::open_in_memory()?;
        let account = store
            .add_account(&crate::store::accounts::tests::alice())?
            .id;
        Ok((store, account))
    }

    #[test]
    fn a_device_survives_reopening_and_nothing_is_in_the_clear() -> anyhow::Result<()> {
        let (store, account) = setup()?;
        let key = Zeroizing::new([7u8; 32]);
        let ns = Namespace::Omemo2;
        let bundle = {
            let d = Device::open(
                OmemoStore::new(store.clone(), account, key.clone()),
                || 42,
                1_000,
            )?;
            d.bundle(ns)?
        };
        let d = Device::open(
            OmemoStore::new(store.clone(), account, key.clone()),
            || 99,
            2_000,
        )?;
        assert_eq!(d.id(), 42, "reopened, not recreated");
        assert_eq!(d.bundle(ns)?, bundle);

        // A session round trip through the database.
        let bob = Device::open(
            crate::crypto::omemo::store::MemoryStore::default(),
            || 7,
            1_000,
        )?;
        let to_bob = Address::new(ns, "bob@example.org", 7);
        let b = bob.bundle(ns)?.decode(ns)?;
        let m = d.encrypt(&to_bob, Some(&b), b"km")?;
        let got = bob.decrypt(&Address::new(ns, "alice@example.org", 42), m.kex, &m.data)?;
        let r = bob.encrypt(&Address::new(ns, "alice@example.org", 42), None, b"reply")?;
        assert_eq!(got.plaintext, b"km");
        assert_eq!(d.decrypt(&to_bob, r.kex, &r.data)?.plaintext, b"reply");

        // No private key bytes anywhere in the file: the identity private key is not in
        // any column.
        let private = d
            .store()
            .identity()
            .map_err(|e| anyhow::anyhow!(e))?
            .map(|(_, i)| *i.private())
            .expect("identity");
        let conn = store.lock();
        let blobs: Vec<Vec<u8>> = conn
            .prepare("SELECT identity FROM omemo_identity UNION ALL SELECT key FROM omemo_pre_key UNION ALL SELECT state FROM omemo_session")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        assert!(blobs.len() > 100);
        assert!(blobs.iter().all(|b| !b.windows(32).any(|w| w == private)));
        Ok(())
    }

    #[test]
    fn wrong_key_or_swapped_rows_are_refused() -> anyhow::Result<()> {
        let (store, account) = setup()?;
        Device::open(
            OmemoStore::new(store.clone(), account, Zeroizing::new([1u8; 32])),
            || 5,
            0,
        )?;
        let wrong = OmemoStore::new(store.clone(), account, Zeroizing::new([2u8; 32]));
        assert!(wrong.identity().is_err());
        store.lock().execute(
            "UPDATE omemo_pre_key SET key = (SELECT key FROM omemo_pre_key WHERE id = 2) WHERE id = 1",
            [],
        )?;
        let right = OmemoStore::new(store, account, Zeroizing::new([1u8; 32]));
        assert!(
            right.pre_key(1).is_err(),
            "a row copied from another id does not open"
        );
        assert!(right.pre_key(3).map_err(|e| anyhow::anyhow!(e))?.is_some());
        Ok(())
    }

    #[test]
    fn devices_and_trust() -> anyhow::Result<()> {
        let (store, account) = setup()?;
        let s = OmemoStore::new(store.clone(), account, Zeroizing::new([1u8; 32]));
        let ns = Namespace::Legacy;
        s.set_devices(ns, "bob@x", &[(1, None), (2, Some("phone".into()))])?;
        s.set_devices(ns, "bob@x", &[(2, Some("phone".into())), (3, None)])?;
        let d = s.devices(ns, "bob@x")?;
        let active: Vec<u32> = d.iter().filter(|d| d.active).map(|d| d.device).collect();
        assert_eq!(active, [2, 3]);
        assert!(d.iter().any(|d| d.device == 1 && !d.active));
        s.set_device_state(ns, "bob@x", 3, Some(&[5; 33]), Some("no bundle"))?;
        let d3 = s
            .devices(ns, "bob@x")?
            .into_iter()
            .find(|d| d.device == 3)
            .expect("device 3");
        assert_eq!(d3.failure.as_deref(), Some("no bundle"));
        assert_eq!(s.trust("bob@x", "ab")?, None);
        s.set_trust("bob@x", "ab", Trust::Blind)?;
        s.set_trust("bob@x", "ab", Trust::Verified)?;
        s.set_trust("bob@x", "cd", Trust::Untrusted)?;
        assert_eq!(s.trust("bob@x", "ab")?, Some(Trust::Verified));
        assert_eq!(s.trusts("bob@x")?.len(), 2);

        assert_eq!(store.conversation_encryption(account, "bob@x")?, None);
        assert!(store.encrypt_unless_declined(account, "bob@x", "omemo")?);
        assert_eq!(
            store.conversation_encryption(account, "bob@x")?.as_deref(),
            Some("omemo")
        );
        // The user turns it off: the contact's next encrypted message leaves it off.
        store.set_conversation_encryption(account, "bob@x", None)?;
        assert!(!store.encrypt_unless_declined(account, "bob@x", "omemo")?);
        assert_eq!(store.conversation_encryption(account, "bob@x")?, None);
        // Turned on again by the user, it is on.
        store.set_conversation_encryption(account, "bob@x", Some("omemo"))?;
        assert_eq!(
            store.conversation_encryption(account, "bob@x")?.as_deref(),
            Some("omemo")
        );
        // An OTR session that ends clears only OTR, and records no plaintext choice.
        store.end_conversation_encryption(account, "bob@x", "otr")?;
        assert_eq!(
            store.conversation_encryption(account, "bob@x")?.as_deref(),
            Some("omemo")
        );
        store.set_conversation_encryption(account, "carol@x", Some("otr"))?;
        store.end_conversation_encryption(account, "carol@x", "otr")?;
        assert_eq!(store.conversation_encryption(account, "carol@x")?, None);
        assert!(store.encrypt_unless_declined(account, "carol@x", "omemo")?);
        Ok(())
    }
}
