//! The profile database: one SQLite file per profile (WAL, numbered migrations, FTS5).
//!
//! All methods are short synchronous transactions; callers on async tasks call them directly
//! (they never hold the connection across an `.await`). Secrets are never stored here.

pub(crate) mod accounts;
mod attachments;
mod messages;
pub mod omemo;
mod otr;
mod posts;
mod push;
mod rooms;
mod roster;
mod uploads;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::Connection;
use rusqlite_migration::{M, Migrations};

pub use accounts::{AccountRecord, NewAccount};
pub use attachments::Attachment;
pub use messages::{
    ConversationRecord, Encryption, IncomingMessage, Ingest, MessageKind, MessageRecord,
    MessageState, OutboxItem, OutgoingMessage,
};
pub use otr::OtrFingerprintRecord;
pub use posts::{
    Audience, CircleRecord, CommentInput, CommentRecord, PostChange, PostInput, PostRecord,
    ProfileRecord,
};
pub use push::PushRecord;
pub use rooms::{Author, InvitationRecord, RoomRecord};
pub use roster::{ContactRecord, Subscription};
pub use uploads::{NewUpload, PendingUpload};

/// Row id of an account in the store.
pub type AccountId = i64;

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("cannot create the profile directory {path}: {source}")]
    Directory {
        path: String,
        source: std::io::Error,
    },
    #[error("no account {0} in this profile")]
    NoSuchAccount(String),
    #[error("account {0} already exists in this profile")]
    AccountExists(String),
    #[error("no message {0} to correct")]
    NoSuchMessage(String),
    #[error("the encrypted key store entry {0} cannot be opened (wrong keyring key, or corrupt)")]
    Sealed(String),
    #[error("corrupt value in column {column}: {value}")]
    Corrupt { column: &'static str, value: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The numbered, forward-only migrations, in order. Each runs in one transaction.
const MIGRATION_SQL: &[&str] = &[
    include_str!("../../migrations/001_initial.sql"),
    include_str!("../../migrations/002_read_marker.sql"),
    include_str!("../../migrations/003_group_chat.sql"),
    include_str!("../../migrations/004_microblog.sql"),
    include_str!("../../migrations/005_e2ee.sql"),
    include_str!("../../migrations/006_plaintext_choice.sql"),
    include_str!("../../migrations/007_otr.sql"),
    include_str!("../../migrations/008_trust_warning.sql"),
    include_str!("../../migrations/009_uploads.sql"),
    include_str!("../../migrations/010_attachments.sql"),
    include_str!("../../migrations/011_revision.sql"),
    include_str!("../../migrations/012_push.sql"),
    include_str!("../../migrations/013_push_endpoint.sql"),
    include_str!("../../migrations/014_login_pins.sql"),
];

fn migrations() -> Migrations<'static> {
    Migrations::new(MIGRATION_SQL.iter().map(|sql| M::up(sql)).collect())
}

/// Handle to the profile database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating and migrating as needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| Error::Directory {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let conn = Connection::open(path)?;
        Self::init(conn, true)
    }

    /// An in-memory database, for tests and benchmarks.
    pub fn open_in_memory() -> Result<Store> {
        Self::init(Connection::open_in_memory()?, false)
    }

    fn init(mut conn: Connection, wal: bool) -> Result<Store> {
        if wal {
            // journal_mode returns a row, so it cannot go through execute().
            let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                tracing::warn!(mode, "SQLite refused WAL mode");
            }
        }
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")?;
        migrations().to_latest(&mut conn)?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Moves everything committed from the write-ahead log into the database file and
    /// syncs it: what is stored survives a power cut too, not only the app being killed
    /// (`synchronous = NORMAL` makes commits durable against the latter only). False when
    /// another connection's reader was in the way and part of the log is still waiting.
    pub fn checkpoint(&self) -> Result<bool> {
        let conn = self.lock();
        // (busy, log pages, pages checkpointed); after TRUNCATE both counts read 0.
        let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        Ok(busy == 0)
    }

    /// The schema version (number of applied migrations).
    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .lock()
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (transactions roll
        // back on drop), so a poisoned lock is still usable.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        assert!(migrations().validate().is_ok());
    }

    #[test]
    fn upgrades_from_every_old_version() -> anyhow::Result<()> {
        // Start from an empty database (version 0) and from each intermediate version.
        for start in 0..MIGRATION_SQL.len() {
            let mut conn = Connection::open_in_memory()?;
            migrations().to_version(&mut conn, start)?;
            let store = Store::init(conn, false)?;
            assert_eq!(store.schema_version()?, MIGRATION_SQL.len() as i64);
        }
        Ok(())
    }

    #[test]
    fn file_database_uses_wal() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(&dir.path().join("sub/profile.sqlite3"))?;
        let mode: String = store
            .lock()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        assert_eq!(mode, "wal");
        Ok(())
    }

    #[test]
    fn a_checkpoint_empties_the_log_into_the_file() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("profile.sqlite3");
        let store = Store::open(&path)?;
        store.add_account(&accounts::tests::alice())?;
        let wal = dir.path().join("profile.sqlite3-wal");
        assert!(
            std::fs::metadata(&wal)?.len() > 0,
            "the write is in the log"
        );
        assert!(store.checkpoint()?, "nothing was in the way");
        assert_eq!(std::fs::metadata(&wal)?.len(), 0, "truncated");
        // What was in the log is in the database file now.
        let copy = dir.path().join("copy.sqlite3");
        std::fs::copy(&path, &copy)?;
        assert_eq!(Store::open(&copy)?.accounts()?.len(), 1);
        Ok(())
    }
}
