//! Contacts' OTR fingerprints and whether the user verified them (migration 007).

use rusqlite::{OptionalExtension as _, params};

use super::{AccountId, Result, Store, now_ms};

/// A contact's OTR key as we know it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OtrFingerprintRecord {
    /// 40 upper-case hex digits.
    pub fingerprint: String,
    pub verified: bool,
    /// When we first saw it (ms since the epoch).
    pub first_seen: i64,
}

impl Store {
    /// Records that `jid` used the OTR key `fingerprint` (40 hex digits); returns whether
    /// the user verified it before.
    pub fn otr_fingerprint_seen(
        &self,
        account: AccountId,
        jid: &str,
        fingerprint: &str,
    ) -> Result<bool> {
        let conn = self.lock();
        conn.execute(
            "INSERT INTO otr_fingerprint (account_id, jid, fingerprint, first_seen)
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
            params![account, jid, fingerprint, now_ms()],
        )?;
        Ok(conn
            .query_row(
                "SELECT verified FROM otr_fingerprint
                 WHERE account_id = ?1 AND jid = ?2 AND fingerprint = ?3",
                params![account, jid, fingerprint],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(false))
    }

    /// Marks `jid`'s OTR key verified (or not), recording it if it is new.
    pub fn set_otr_verified(
        &self,
        account: AccountId,
        jid: &str,
        fingerprint: &str,
        verified: bool,
    ) -> Result<()> {
        self.lock().execute(
            "INSERT INTO otr_fingerprint (account_id, jid, fingerprint, verified, first_seen)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (account_id, jid, fingerprint) DO UPDATE SET verified = excluded.verified",
            params![account, jid, fingerprint, verified, now_ms()],
        )?;
        Ok(())
    }

    /// Every OTR key `jid` has used with us, oldest first.
    pub fn otr_fingerprints(
        &self,
        account: AccountId,
        jid: &str,
    ) -> Result<Vec<OtrFingerprintRecord>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT fingerprint, verified, first_seen FROM otr_fingerprint
             WHERE account_id = ?1 AND jid = ?2 ORDER BY first_seen, fingerprint",
        )?;
        let rows = stmt.query_map(params![account, jid], |r| {
            Ok(OtrFingerprintRecord {
                fingerprint: r.get(0)?,
                verified: r.get(1)?,
                first_seen: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_recorded_and_verified() -> anyhow::Result<()> {
        let store = Store::open_in_memory()?;
        let account = store
            .add_account(&crate::store::accounts::tests::alice())?
            .id;
        let fpr = "0123456789ABCDEF0123456789ABCDEF01234567";
        assert!(!store.otr_fingerprint_seen(account, "bob@x", fpr)?);
        assert!(!store.otr_fingerprint_seen(account, "bob@x", fpr)?);
        store.set_otr_verified(account, "bob@x", fpr, true)?;
        assert!(store.otr_fingerprint_seen(account, "bob@x", fpr)?);
        // Per contact: the same key under another JID is not verified.
        assert!(!store.otr_fingerprint_seen(account, "carol@x", fpr)?);
        let list = store.otr_fingerprints(account, "bob@x")?;
        assert_eq!(list.len(), 1);
        assert!(list[0].verified);
        store.set_otr_verified(account, "bob@x", fpr, false)?;
        assert!(!store.otr_fingerprints(account, "bob@x")?[0].verified);
        Ok(())
    }
}
