//! Roster items (RFC 6121) and pending subscription requests.

use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;

use super::{AccountId, Error, Result, Store, now_ms};

/// Presence subscription state of a roster item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Subscription {
    None,
    To,
    From,
    Both,
}

impl Subscription {
    pub fn as_str(self) -> &'static str {
        match self {
            Subscription::None => "none",
            Subscription::To => "to",
            Subscription::From => "from",
            Subscription::Both => "both",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "none" => Subscription::None,
            "to" => Subscription::To,
            "from" => Subscription::From,
            "both" => Subscription::Both,
            other => {
                return Err(Error::Corrupt {
                    column: "contact.subscription",
                    value: other.to_owned(),
                });
            }
        })
    }
}

/// One roster item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContactRecord {
    pub jid: String,
    pub name: Option<String>,
    pub subscription: Subscription,
    /// We asked for a subscription and wait for the answer.
    pub ask: bool,
    pub groups: Vec<String>,
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<(String, Option<String>, String, bool, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

impl Store {
    pub fn contacts(&self, account: AccountId) -> Result<Vec<ContactRecord>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT jid, name, subscription, ask, groups FROM contact WHERE account_id = ?1 \
             ORDER BY jid",
        )?;
        let rows = stmt.query_map([account], from_row)?;
        let mut out = Vec::new();
        for row in rows {
            let (jid, name, sub, ask, groups) = row?;
            let groups: Vec<String> =
                serde_json::from_str(&groups).map_err(|_| Error::Corrupt {
                    column: "contact.groups",
                    value: groups.clone(),
                })?;
            out.push(ContactRecord {
                jid,
                name,
                subscription: Subscription::parse(&sub)?,
                ask,
                groups,
            });
        }
        Ok(out)
    }

    /// One roster item.
    pub fn contact(&self, account: AccountId, jid: &str) -> Result<Option<ContactRecord>> {
        let conn = self.lock();
        let row = conn
            .query_row(
                "SELECT jid, name, subscription, ask, groups FROM contact \
                 WHERE account_id = ?1 AND jid = ?2",
                params![account, jid],
                from_row,
            )
            .optional()?;
        let Some((jid, name, sub, ask, groups)) = row else {
            return Ok(None);
        };
        Ok(Some(ContactRecord {
            jid,
            name,
            subscription: Subscription::parse(&sub)?,
            ask,
            groups: serde_json::from_str(&groups).map_err(|_| Error::Corrupt {
                column: "contact.groups",
                value: groups.clone(),
            })?,
        }))
    }

    /// Replaces the whole roster (a full roster result) and records its version.
    pub fn replace_roster(
        &self,
        account: AccountId,
        items: &[ContactRecord],
        ver: Option<&str>,
    ) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM contact WHERE account_id = ?1", [account])?;
        for item in items {
            upsert(&tx, account, item)?;
        }
        tx.execute(
            "UPDATE account SET roster_ver = ?2 WHERE id = ?1",
            params![account, ver],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Applies one roster push: upsert, or delete when `remove`. Records the version.
    pub fn apply_roster_push(
        &self,
        account: AccountId,
        item: &ContactRecord,
        remove: bool,
        ver: Option<&str>,
    ) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        if remove {
            tx.execute(
                "DELETE FROM contact WHERE account_id = ?1 AND jid = ?2",
                params![account, item.jid],
            )?;
        } else {
            upsert(&tx, account, item)?;
        }
        if ver.is_some() {
            tx.execute(
                "UPDATE account SET roster_ver = ?2 WHERE id = ?1",
                params![account, ver],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn add_subscription_request(&self, account: AccountId, jid: &str) -> Result<bool> {
        let n = self.lock().execute(
            "INSERT OR IGNORE INTO subscription_request (account_id, jid, received_at) \
             VALUES (?1, ?2, ?3)",
            params![account, jid, now_ms()],
        )?;
        Ok(n > 0)
    }

    pub fn remove_subscription_request(&self, account: AccountId, jid: &str) -> Result<bool> {
        let n = self.lock().execute(
            "DELETE FROM subscription_request WHERE account_id = ?1 AND jid = ?2",
            params![account, jid],
        )?;
        Ok(n > 0)
    }

    pub fn subscription_requests(&self, account: AccountId) -> Result<Vec<String>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT jid FROM subscription_request WHERE account_id = ?1 ORDER BY received_at",
        )?;
        let rows = stmt.query_map([account], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

fn upsert(conn: &rusqlite::Connection, account: AccountId, item: &ContactRecord) -> Result<()> {
    let groups = serde_json::to_string(&item.groups).map_err(|_| Error::Corrupt {
        column: "contact.groups",
        value: format!("{:?}", item.groups),
    })?;
    conn.execute(
        "INSERT INTO contact (account_id, jid, name, subscription, ask, groups) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (account_id, jid) DO UPDATE SET name = excluded.name, \
         subscription = excluded.subscription, ask = excluded.ask, groups = excluded.groups",
        params![
            account,
            item.jid,
            item.name,
            item.subscription.as_str(),
            item.ask,
            groups
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::accounts::tests::alice;

    fn bob(sub: Subscription) -> ContactRecord {
        ContactRecord {
            jid: "bob@example.org".into(),
            name: Some("Bob".into()),
            subscription: sub,
            ask: false,
            groups: vec!["Friends".into()],
        }
    }

    #[test]
    fn roster_replace_push_remove() -> anyhow::Result<()> {
        let store = Store::open_in_memory()?;
        let a = store.add_account(&alice())?;
        store.replace_roster(a.id, &[bob(Subscription::To)], Some("v1"))?;
        assert_eq!(store.contacts(a.id)?, vec![bob(Subscription::To)]);
        store.apply_roster_push(a.id, &bob(Subscription::Both), false, Some("v2"))?;
        assert_eq!(store.contacts(a.id)?[0].subscription, Subscription::Both);
        assert_eq!(store.account(&a.jid)?.roster_ver.as_deref(), Some("v2"));
        store.apply_roster_push(a.id, &bob(Subscription::None), true, Some("v3"))?;
        assert!(store.contacts(a.id)?.is_empty());
        Ok(())
    }

    #[test]
    fn subscription_requests_are_unique() -> anyhow::Result<()> {
        let store = Store::open_in_memory()?;
        let a = store.add_account(&alice())?;
        assert!(store.add_subscription_request(a.id, "eve@example.org")?);
        assert!(!store.add_subscription_request(a.id, "eve@example.org")?);
        assert_eq!(store.subscription_requests(a.id)?, vec!["eve@example.org"]);
        assert!(store.remove_subscription_request(a.id, "eve@example.org")?);
        assert!(store.subscription_requests(a.id)?.is_empty());
        Ok(())
    }
}
