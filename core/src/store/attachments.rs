//! Shared files of messages (migration 010): what the message shares, its preview, and
//! where the file is on this machine.

use rusqlite::{OptionalExtension as _, params};
use serde::{Deserialize, Serialize};

use super::messages::load;
use super::{AccountId, Error, MessageRecord, Result, Store};

/// The file a message shares.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The link: https, or aesgcm:// (encrypted, with its key); empty while our own file
    /// is still being uploaded.
    pub url: String,
    /// Its name as announced (or taken from the link). Shown, never used as a path as is.
    pub name: String,
    pub media_type: Option<String>,
    /// Bytes, as announced.
    pub size: Option<u64>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// The sender included a small preview image ([`Store::attachment_preview`]).
    #[serde(default)]
    pub has_preview: bool,
    /// The file on this machine: fetched, or the one we sent.
    pub local_path: Option<String>,
    /// Why the last fetch failed.
    pub error: Option<String>,
}

impl Attachment {
    /// A picture we can show inline (by its announced type, else its name).
    pub fn is_image(&self) -> bool {
        match self.media_type.as_deref() {
            Some(t) => matches!(t, "image/jpeg" | "image/png" | "image/webp" | "image/gif"),
            None => {
                let name = self.name.to_ascii_lowercase();
                [".jpg", ".jpeg", ".png", ".webp", ".gif"]
                    .iter()
                    .any(|e| name.ends_with(e))
            }
        }
    }

    /// Encrypted on the server (XEP-0454).
    pub fn encrypted(&self) -> bool {
        crate::proto::upload::is_aesgcm(&self.url)
    }
}

/// Reads a message's attachment column (JSON, or NULL: see `MESSAGE_COLUMNS`).
pub(super) fn parse(json: Option<String>) -> Result<Option<Attachment>> {
    json.map(|j| {
        serde_json::from_str(&j).map_err(|_| Error::Corrupt {
            column: "attachment",
            value: j,
        })
    })
    .transpose()
}

/// Stores (or replaces) what message `message_id` shares.
pub(super) fn put(
    conn: &rusqlite::Connection,
    message_id: i64,
    a: &Attachment,
    preview: Option<&[u8]>,
) -> Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO attachment (message_id, url, name, media_type, size, width, \
         height, preview, local_path, error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            message_id,
            a.url,
            a.name,
            a.media_type,
            a.size.map(|s| s.min(i64::MAX as u64) as i64),
            a.width,
            a.height,
            preview,
            a.local_path,
            a.error,
        ],
    )?;
    Ok(())
}

impl Store {
    /// The shared file of a message of this account, with the message.
    fn owned_attachment(&self, account: AccountId, message_id: i64) -> Result<bool> {
        let conn = self.lock();
        Ok(conn
            .query_row(
                "SELECT 1 FROM attachment a JOIN message m ON m.id = a.message_id \
                 WHERE a.message_id = ?1 AND m.account_id = ?2",
                params![message_id, account],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// The file of the message is now at `path` on this machine (the error is cleared).
    pub fn attachment_fetched(
        &self,
        account: AccountId,
        message_id: i64,
        path: &str,
    ) -> Result<Option<MessageRecord>> {
        self.update_attachment(account, message_id, Some(path), None)
    }

    /// Fetching the message's file failed: why (shown with it).
    pub fn attachment_failed(
        &self,
        account: AccountId,
        message_id: i64,
        error: &str,
    ) -> Result<Option<MessageRecord>> {
        self.update_attachment(account, message_id, None, Some(error))
    }

    fn update_attachment(
        &self,
        account: AccountId,
        message_id: i64,
        path: Option<&str>,
        error: Option<&str>,
    ) -> Result<Option<MessageRecord>> {
        if !self.owned_attachment(account, message_id)? {
            return Ok(None);
        }
        let conn = self.lock();
        conn.execute(
            "UPDATE attachment SET local_path = coalesce(?2, local_path), error = ?3 \
             WHERE message_id = ?1",
            params![message_id, path, error],
        )?;
        load(&conn, message_id).map(Some)
    }

    /// The sender's small preview image of a message's file, if it sent one.
    pub fn attachment_preview(
        &self,
        account: AccountId,
        message_id: i64,
    ) -> Result<Option<Vec<u8>>> {
        let conn = self.lock();
        Ok(conn
            .query_row(
                "SELECT a.preview FROM attachment a JOIN message m ON m.id = a.message_id \
                 WHERE a.message_id = ?1 AND m.account_id = ?2",
                params![message_id, account],
                |r| r.get::<_, Option<Vec<u8>>>(0),
            )
            .optional()?
            .flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{IncomingMessage, Ingest, MessageKind};

    #[test]
    fn a_file_message_keeps_its_file() -> anyhow::Result<()> {
        let store = Store::open_in_memory()?;
        let account = store
            .add_account(&crate::store::accounts::tests::alice())?
            .id;
        let file = Attachment {
            url: "https://d.example/cat.jpg".into(),
            name: "cat.jpg".into(),
            media_type: Some("image/jpeg".into()),
            size: Some(1234),
            width: Some(64),
            height: Some(48),
            ..Default::default()
        };
        let msg = IncomingMessage {
            peer: "bob@x".into(),
            kind: MessageKind::Chat,
            sender: "bob@x/phone".into(),
            stanza_id: Some("m1".into()),
            body: file.url.clone(),
            timestamp: 1,
            attachment: Some(file.clone()),
            preview: Some(vec![1, 2, 3]),
            ..Default::default()
        };
        let Ingest::Inserted(rec) = store.ingest(account, &msg)? else {
            anyhow::bail!("not inserted")
        };
        let stored = rec.attachment.clone().expect("an attachment");
        assert_eq!(
            stored,
            Attachment {
                has_preview: true,
                ..file.clone()
            }
        );
        assert!(stored.is_image() && !stored.encrypted());
        assert_eq!(
            store.attachment_preview(account, rec.id)?,
            Some(vec![1, 2, 3])
        );

        let failed = store
            .attachment_failed(account, rec.id, "gone")?
            .and_then(|r| r.attachment)
            .expect("still there");
        assert_eq!(failed.error.as_deref(), Some("gone"));
        assert!(
            store
                .message(account, rec.id)?
                .is_some_and(|m| m.revision > rec.revision),
            "a changed file makes a newer record"
        );
        let fetched = store
            .attachment_fetched(account, rec.id, "/files/cat.jpg")?
            .and_then(|r| r.attachment)
            .expect("still there");
        assert_eq!(
            (fetched.local_path.as_deref(), fetched.error),
            (Some("/files/cat.jpg"), None)
        );
        // Another account's message is not ours to touch.
        assert!(
            store
                .attachment_fetched(account + 1, rec.id, "/x")?
                .is_none()
        );
        // A plain message has none.
        let Ingest::Inserted(plain) = store.ingest(
            account,
            &IncomingMessage {
                stanza_id: Some("m2".into()),
                body: "hi".into(),
                attachment: None,
                preview: None,
                ..msg
            },
        )?
        else {
            anyhow::bail!("not inserted")
        };
        assert_eq!(plain.attachment, None);
        Ok(())
    }
}
