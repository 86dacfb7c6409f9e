//! Accounts and their archive/roster positions.

use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;

use super::{AccountId, Error, Result, Store, now_ms};

/// An account as stored. No secrets: the password lives in the keyring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountRecord {
    pub id: AccountId,
    pub jid: String,
    pub resource: String,
    pub server_host: Option<String>,
    pub server_port: Option<u16>,
    /// `auto`, `starttls` or `direct`.
    pub tls_mode: String,
    pub ca_file: Option<String>,
    pub enabled: bool,
    pub first_sync_days: u32,
    #[serde(skip)]
    pub roster_ver: Option<String>,
    #[serde(skip)]
    pub mam_last_id: Option<String>,
    pub mam_synced_at: Option<i64>,
    /// An earlier login used SCRAM: PLAIN is refused.
    pub pin_scram: bool,
    /// An earlier login used channel binding: a login without it is refused.
    pub pin_channel_binding: bool,
}

/// What `add_account` needs.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub jid: String,
    pub resource: String,
    pub server_host: Option<String>,
    pub server_port: Option<u16>,
    pub tls_mode: String,
    pub ca_file: Option<String>,
    pub first_sync_days: u32,
}

const COLUMNS: &str = "id, jid, resource, server_host, server_port, tls_mode, ca_file, enabled, \
                       first_sync_days, roster_ver, mam_last_id, mam_synced_at, pin_scram, \
                       pin_channel_binding";

fn from_row(r: &Row<'_>) -> rusqlite::Result<AccountRecord> {
    Ok(AccountRecord {
        id: r.get(0)?,
        jid: r.get(1)?,
        resource: r.get(2)?,
        server_host: r.get(3)?,
        server_port: r.get(4)?,
        tls_mode: r.get(5)?,
        ca_file: r.get(6)?,
        enabled: r.get(7)?,
        first_sync_days: r.get(8)?,
        roster_ver: r.get(9)?,
        mam_last_id: r.get(10)?,
        mam_synced_at: r.get(11)?,
        pin_scram: r.get(12)?,
        pin_channel_binding: r.get(13)?,
    })
}

impl Store {
    /// Adds an account; fails with [`Error::AccountExists`] if the JID is already there.
    pub fn add_account(&self, new: &NewAccount) -> Result<AccountRecord> {
        let conn = self.lock();
        let exists: Option<i64> = conn
            .query_row("SELECT id FROM account WHERE jid = ?1", [&new.jid], |r| {
                r.get(0)
            })
            .optional()?;
        if exists.is_some() {
            return Err(Error::AccountExists(new.jid.clone()));
        }
        conn.execute(
            "INSERT INTO account (jid, resource, server_host, server_port, tls_mode, ca_file, \
             first_sync_days, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                new.jid,
                new.resource,
                new.server_host,
                new.server_port,
                new.tls_mode,
                new.ca_file,
                new.first_sync_days,
                now_ms()
            ],
        )?;
        let id = conn.last_insert_rowid();
        Ok(conn.query_row(
            &format!("SELECT {COLUMNS} FROM account WHERE id = ?1"),
            [id],
            from_row,
        )?)
    }

    pub fn accounts(&self) -> Result<Vec<AccountRecord>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM account ORDER BY id"))?;
        let rows = stmt.query_map([], from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn account(&self, jid: &str) -> Result<AccountRecord> {
        self.lock()
            .query_row(
                &format!("SELECT {COLUMNS} FROM account WHERE jid = ?1"),
                [jid],
                from_row,
            )
            .optional()?
            .ok_or_else(|| Error::NoSuchAccount(jid.to_owned()))
    }

    /// Records what a login proved (never lowers a pin).
    pub fn raise_login_pins(
        &self,
        account: AccountId,
        scram: bool,
        channel_binding: bool,
    ) -> Result<()> {
        self.lock().execute(
            "UPDATE account SET pin_scram = MAX(pin_scram, ?2), \
             pin_channel_binding = MAX(pin_channel_binding, ?3) WHERE id = ?1",
            rusqlite::params![account, scram, channel_binding],
        )?;
        Ok(())
    }

    /// Removes an account and everything stored for it.
    pub fn remove_account(&self, jid: &str) -> Result<()> {
        let n = self
            .lock()
            .execute("DELETE FROM account WHERE jid = ?1", [jid])?;
        if n == 0 {
            return Err(Error::NoSuchAccount(jid.to_owned()));
        }
        Ok(())
    }

    /// Changes the server override, TLS mode and extra CA of an account.
    pub fn update_server(
        &self,
        account: AccountId,
        server: Option<(&str, u16)>,
        tls_mode: &str,
        ca_file: Option<&str>,
    ) -> Result<()> {
        self.lock().execute(
            "UPDATE account SET server_host = ?2, server_port = ?3, tls_mode = ?4, ca_file = ?5 \
             WHERE id = ?1",
            params![
                account,
                server.map(|s| s.0),
                server.map(|s| s.1),
                tls_mode,
                ca_file
            ],
        )?;
        Ok(())
    }

    /// How far back (days) the first archive sync of this account reaches.
    pub fn set_first_sync_days(&self, account: AccountId, days: u32) -> Result<()> {
        self.lock().execute(
            "UPDATE account SET first_sync_days = ?2 WHERE id = ?1",
            params![account, days],
        )?;
        Ok(())
    }

    pub fn set_roster_version(&self, account: AccountId, ver: Option<&str>) -> Result<()> {
        self.lock().execute(
            "UPDATE account SET roster_ver = ?2 WHERE id = ?1",
            params![account, ver],
        )?;
        Ok(())
    }

    /// Records the newest archive id we hold. `synced` marks a completed catch-up.
    pub fn set_archive_position(
        &self,
        account: AccountId,
        last_id: &str,
        synced: bool,
    ) -> Result<()> {
        let conn = self.lock();
        if synced {
            conn.execute(
                "UPDATE account SET mam_last_id = ?2, mam_synced_at = ?3 WHERE id = ?1",
                params![account, last_id, now_ms()],
            )?;
        } else {
            conn.execute(
                "UPDATE account SET mam_last_id = ?2 WHERE id = ?1",
                params![account, last_id],
            )?;
        }
        Ok(())
    }

    /// Marks a catch-up as complete without moving the position (empty archive page).
    pub fn mark_archive_synced(&self, account: AccountId) -> Result<()> {
        self.lock().execute(
            "UPDATE account SET mam_synced_at = ?2 WHERE id = ?1",
            params![account, now_ms()],
        )?;
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn alice() -> NewAccount {
        NewAccount {
            jid: "alice@example.org".into(),
            resource: "starling.abc".into(),
            server_host: None,
            server_port: None,
            tls_mode: "auto".into(),
            ca_file: None,
            first_sync_days: 30,
        }
    }

    #[test]
    fn add_list_remove() -> anyhow::Result<()> {
        let store = Store::open_in_memory()?;
        let a = store.add_account(&alice())?;
        assert_eq!(a.jid, "alice@example.org");
        assert!(matches!(
            store.add_account(&alice()),
            Err(Error::AccountExists(_))
        ));
        assert_eq!(store.accounts()?.len(), 1);
        store.set_archive_position(a.id, "arch-1", true)?;
        let a2 = store.account("alice@example.org")?;
        assert_eq!(a2.mam_last_id.as_deref(), Some("arch-1"));
        assert!(a2.mam_synced_at.is_some());
        store.remove_account("alice@example.org")?;
        assert!(store.accounts()?.is_empty());
        assert!(matches!(
            store.remove_account("alice@example.org"),
            Err(Error::NoSuchAccount(_))
        ));
        Ok(())
    }
}
