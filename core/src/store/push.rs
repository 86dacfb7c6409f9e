//! The account's push registration (migrations 012, 013); its secret is kept with the
//! secrets.

use rusqlite::{OptionalExtension as _, params};

use super::{AccountId, Result, Store, now_ms};

/// Where the account's server sends its XEP-0357 notifications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushRecord {
    /// The push gateway's JID.
    pub service: String,
    pub node: String,
    /// SHA-256 (hex) of the UnifiedPush endpoint registered with the gateway, when known.
    pub endpoint_sha256: Option<String>,
}

impl Store {
    pub fn push_registration(&self, account: AccountId) -> Result<Option<PushRecord>> {
        let conn = self.lock();
        Ok(conn
            .query_row(
                "SELECT service, node, endpoint_sha256 FROM push_registration \
                 WHERE account_id = ?1",
                [account],
                |r| {
                    Ok(PushRecord {
                        service: r.get(0)?,
                        node: r.get(1)?,
                        endpoint_sha256: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    pub fn set_push_registration(&self, account: AccountId, p: &PushRecord) -> Result<()> {
        self.lock().execute(
            "INSERT OR REPLACE INTO push_registration \
             (account_id, service, node, endpoint_sha256, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![account, p.service, p.node, p.endpoint_sha256, now_ms()],
        )?;
        Ok(())
    }

    pub fn delete_push_registration(&self, account: AccountId) -> Result<bool> {
        Ok(self.lock().execute(
            "DELETE FROM push_registration WHERE account_id = ?1",
            [account],
        )? > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_registration_per_account() -> anyhow::Result<()> {
        let store = Store::open_in_memory()?;
        let account = store
            .add_account(&crate::store::accounts::tests::alice())?
            .id;
        assert_eq!(store.push_registration(account)?, None);
        let p = PushRecord {
            service: "push.example.org".into(),
            node: "n1".into(),
            endpoint_sha256: None,
        };
        store.set_push_registration(account, &p)?;
        let q = PushRecord {
            node: "n2".into(),
            endpoint_sha256: Some("ab".repeat(32)),
            ..p
        };
        store.set_push_registration(account, &q)?;
        assert_eq!(store.push_registration(account)?, Some(q));
        assert!(store.delete_push_registration(account)?);
        assert!(!store.delete_push_registration(account)?);
        Ok(())
    }
}
