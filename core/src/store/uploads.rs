//! File uploads in flight (migration 009): the pending file message and what it takes to
//! finish it after a restart.

use rusqlite::{OptionalExtension as _, params};

use super::attachments::put;
use super::messages::{conversation_id, load, mark_read_in};
use super::{AccountId, Attachment, MessageKind, MessageRecord, Result, Store, now_ms};

/// An upload to (re)start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingUpload {
    pub message_id: i64,
    /// The conversation (a contact's bare JID).
    pub peer: String,
    /// The message's id on the wire (kept when the stanza is finally built).
    pub stanza_id: String,
    pub path: String,
    pub encrypt: bool,
    /// A chat, or a room (`peer` is then the room).
    pub kind: MessageKind,
}

/// A file message to store before its upload.
#[derive(Debug, Clone, Copy)]
pub struct NewUpload<'a> {
    /// The conversation (a contact's bare JID).
    pub peer: &'a str,
    /// Our full JID.
    pub sender: &'a str,
    /// The message's id on the wire.
    pub id: &'a str,
    /// The file's name, shown until the link replaces it.
    pub name: &'a str,
    pub path: &'a str,
    pub encrypt: bool,
    /// A chat, or a room (`peer` is then the room).
    pub kind: MessageKind,
    /// What is known of the file before it is uploaded (shown on the pending message).
    pub media_type: Option<&'a str>,
    pub size: u64,
}

impl Store {
    /// Stores a file message as pending (body: the file's name) with its upload row and its
    /// attachment (no link yet, the local file); no outbox row yet.
    pub fn queue_upload(&self, account: AccountId, up: &NewUpload<'_>) -> Result<MessageRecord> {
        let NewUpload {
            peer,
            sender,
            id,
            name,
            path,
            encrypt,
            kind,
            media_type,
            size,
        } = *up;
        let now = now_ms();
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let conv = conversation_id(&tx, account, peer, kind, now)?;
        tx.execute(
            "INSERT INTO message (account_id, conversation_id, outgoing, sender, stanza_id, \
             origin_id, body, timestamp, received_at, state, kind) \
             VALUES (?1, ?2, 1, ?3, ?4, ?4, ?5, ?6, ?6, 'pending', ?7)",
            params![account, conv, sender, id, name, now, kind.as_str()],
        )?;
        let message_id = tx.last_insert_rowid();
        put(
            &tx,
            message_id,
            &Attachment {
                name: name.to_owned(),
                media_type: media_type.map(str::to_owned),
                size: Some(size),
                local_path: Some(path.to_owned()),
                ..Default::default()
            },
            None,
        )?;
        mark_read_in(&tx, conv)?;
        tx.execute(
            "INSERT INTO upload (message_id, account_id, path, encrypt, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![message_id, account, path, encrypt, now],
        )?;
        let rec = load(&tx, message_id)?;
        tx.commit()?;
        Ok(rec)
    }

    /// The file is on the server: the message gets its link (`file.url`) and what is known
    /// of the file, and its stanza goes into the outbox, once. `None` if the upload was
    /// already finished or abandoned.
    pub fn upload_done(
        &self,
        message_id: i64,
        file: &Attachment,
        preview: Option<&[u8]>,
        encryption: Option<super::Encryption>,
        stanza: &str,
    ) -> Result<Option<MessageRecord>> {
        let body = file.url.as_str();
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let Some(account): Option<i64> = tx
            .query_row(
                "SELECT account_id FROM upload WHERE message_id = ?1",
                [message_id],
                |r| r.get(0),
            )
            .optional()?
        else {
            return Ok(None);
        };
        tx.execute("DELETE FROM upload WHERE message_id = ?1", [message_id])?;
        tx.execute(
            "UPDATE message SET body = ?2, encryption = ?3 WHERE id = ?1",
            params![message_id, body, encryption.map(super::Encryption::as_str)],
        )?;
        put(&tx, message_id, file, preview)?;
        tx.execute(
            "INSERT INTO outbox (account_id, message_id, stanza, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![account, message_id, stanza, now_ms()],
        )?;
        let rec = load(&tx, message_id)?;
        tx.commit()?;
        Ok(Some(rec))
    }

    /// The upload cannot finish: the message is failed with the reason, nothing is sent.
    pub fn upload_failed(&self, message_id: i64, error: &str) -> Result<Option<MessageRecord>> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        if tx.execute("DELETE FROM upload WHERE message_id = ?1", [message_id])? == 0 {
            return Ok(None);
        }
        tx.execute(
            "UPDATE message SET state = 'failed', error = ?2 WHERE id = ?1",
            params![message_id, error],
        )?;
        let rec = load(&tx, message_id)?;
        tx.commit()?;
        Ok(Some(rec))
    }

    /// The account's uploads still in flight (after a restart: to start again), oldest first.
    pub fn pending_uploads(&self, account: AccountId) -> Result<Vec<PendingUpload>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT u.message_id, c.peer, m.stanza_id, u.path, u.encrypt, m.kind FROM upload u \
             JOIN message m ON m.id = u.message_id \
             JOIN conversation c ON c.id = m.conversation_id \
             WHERE u.account_id = ?1 ORDER BY u.message_id",
        )?;
        let rows = stmt.query_map([account], |r| {
            Ok((
                PendingUpload {
                    message_id: r.get(0)?,
                    peer: r.get(1)?,
                    stanza_id: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                    path: r.get(3)?,
                    encrypt: r.get(4)?,
                    kind: MessageKind::Chat,
                },
                r.get::<_, String>(5)?,
            ))
        })?;
        rows.map(|row| {
            let (up, kind) = row?;
            Ok(PendingUpload {
                kind: MessageKind::parse(&kind)?,
                ..up
            })
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MessageState;

    #[test]
    fn an_upload_ends_once_sent_or_failed() -> anyhow::Result<()> {
        let store = Store::open_in_memory()?;
        let account = store
            .add_account(&crate::store::accounts::tests::alice())?
            .id;
        let up = NewUpload {
            peer: "bob@x",
            sender: "alice@x/r",
            id: "id1",
            name: "cat.jpg",
            path: "/tmp/cat.jpg",
            encrypt: false,
            kind: MessageKind::Chat,
            media_type: Some("image/jpeg"),
            size: 10,
        };
        let rec = store.queue_upload(account, &up)?;
        assert_eq!(
            (rec.state, rec.body.as_str()),
            (MessageState::Pending, "cat.jpg")
        );
        let pending_file = rec.attachment.clone().expect("the file shows at once");
        assert_eq!(
            (
                pending_file.url.as_str(),
                pending_file.local_path.as_deref(),
                pending_file.size
            ),
            ("", Some("/tmp/cat.jpg"), Some(10))
        );
        assert!(
            store.outbox(account)?.is_empty(),
            "no link before the file is up"
        );
        let pending = store.pending_uploads(account)?;
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].stanza_id, "id1");
        let sent = Attachment {
            url: "https://u/cat.jpg".into(),
            ..pending_file
        };
        let done = store
            .upload_done(rec.id, &sent, Some(&[7]), None, "<message/>")?
            .expect("finished");
        assert_eq!(done.body, "https://u/cat.jpg");
        assert_eq!(done.attachment.map(|a| a.url), Some(sent.url.clone()));
        assert_eq!(store.attachment_preview(account, rec.id)?, Some(vec![7]));
        assert_eq!(store.outbox(account)?.len(), 1);
        // Never twice.
        assert!(
            store
                .upload_done(rec.id, &sent, None, None, "<message/>")?
                .is_none()
        );
        assert!(store.upload_failed(rec.id, "x")?.is_none());
        assert_eq!(store.outbox(account)?.len(), 1);
        assert!(store.pending_uploads(account)?.is_empty());

        let rec = store.queue_upload(
            account,
            &NewUpload {
                id: "id2",
                name: "gone.jpg",
                path: "/nope",
                encrypt: true,
                ..up
            },
        )?;
        let failed = store
            .upload_failed(rec.id, "the file is gone")?
            .expect("failed");
        assert_eq!(failed.state, MessageState::Failed);
        assert_eq!(failed.error.as_deref(), Some("the file is gone"));
        assert_eq!(store.outbox(account)?.len(), 1);
        Ok(())
    }
}
