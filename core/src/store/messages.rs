//! Conversations, messages, corrections, receipts and the durable outbox.

use rusqlite::{OptionalExtension, Row, Transaction, params};
use serde::Serialize;

use super::{AccountId, Error, Result, Store, now_ms};

/// How a message travelled end to end (none: plaintext).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Encryption {
    /// Legacy OMEMO (`eu.siacs.conversations.axolotl`).
    Omemo,
    /// OMEMO 2 (`urn:xmpp:omemo:2`).
    Omemo2,
    /// OTR v3.
    Otr,
}

impl Encryption {
    pub fn as_str(self) -> &'static str {
        match self {
            Encryption::Omemo => "omemo",
            Encryption::Omemo2 => "omemo2",
            Encryption::Otr => "otr",
        }
    }

    pub(super) fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "omemo" => Encryption::Omemo,
            "omemo2" => Encryption::Omemo2,
            "otr" => Encryption::Otr,
            other => {
                return Err(Error::Corrupt {
                    column: "message.encryption",
                    value: other.to_owned(),
                });
            }
        })
    }
}

/// Delivery state of a message. Outgoing: pending -> sent (server ack) -> delivered (receipt)
/// -> displayed (marker), or failed. Incoming messages are `received`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageState {
    Pending,
    Sent,
    Delivered,
    Displayed,
    Failed,
    Received,
}

impl MessageState {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageState::Pending => "pending",
            MessageState::Sent => "sent",
            MessageState::Delivered => "delivered",
            MessageState::Displayed => "displayed",
            MessageState::Failed => "failed",
            MessageState::Received => "received",
        }
    }

    pub(super) fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "pending" => MessageState::Pending,
            "sent" => MessageState::Sent,
            "delivered" => MessageState::Delivered,
            "displayed" => MessageState::Displayed,
            "failed" => MessageState::Failed,
            "received" => MessageState::Received,
            other => {
                return Err(Error::Corrupt {
                    column: "message.state",
                    value: other.to_owned(),
                });
            }
        })
    }
}

/// What kind of conversation entry a message is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageKind {
    /// 1:1 chat.
    #[default]
    Chat,
    /// In a room (XEP-0045).
    GroupChat,
    /// With one occupant of a room; the peer is `room@service/nick`.
    Private,
    /// What a room told us (removed, configuration changed…); not from a person.
    Notice,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Chat => "chat",
            MessageKind::GroupChat => "groupchat",
            MessageKind::Private => "private",
            MessageKind::Notice => "notice",
        }
    }

    pub(super) fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "chat" => MessageKind::Chat,
            "groupchat" => MessageKind::GroupChat,
            "private" => MessageKind::Private,
            "notice" => MessageKind::Notice,
            other => {
                return Err(Error::Corrupt {
                    column: "message.kind",
                    value: other.to_owned(),
                });
            }
        })
    }

    /// The kind of the conversation a message of this kind lives in.
    fn conversation(self) -> &'static str {
        match self {
            MessageKind::Chat => "chat",
            MessageKind::GroupChat | MessageKind::Notice => "groupchat",
            MessageKind::Private => "private",
        }
    }
}

/// A stored message, as front ends see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageRecord {
    pub id: i64,
    /// The other party: a bare JID (a contact or a room), or `room@service/nick` for a
    /// private message with an occupant.
    pub peer: String,
    pub outgoing: bool,
    pub sender: String,
    pub stanza_id: Option<String>,
    pub origin_id: Option<String>,
    pub archive_id: Option<String>,
    pub body: String,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    pub state: MessageState,
    pub edited: bool,
    pub error: Option<String>,
    pub kind: MessageKind,
    /// XEP-0421: the room's stable id for the author (across nick changes).
    pub occupant_id: Option<String>,
    /// The message mentions our nick in the room.
    pub mention: bool,
    /// Retracted by its author or removed by a moderator: the body is gone.
    pub retracted: bool,
    /// The moderator who removed it.
    pub retracted_by: Option<String>,
    /// End-to-end encryption it travelled with.
    pub encryption: Option<Encryption>,
    /// It arrived encrypted and could not be decrypted: why (the body is empty).
    pub undecryptable: Option<String>,
    /// It was decrypted, but the sender's key is not trusted (untrusted, or a new key not
    /// decided about): what to tell the user with it.
    pub trust_warning: Option<String>,
    /// The file it shares.
    pub attachment: Option<super::Attachment>,
    /// Bumped by every change to the message: of two records of one message, the one with
    /// the higher revision is newer (events can arrive out of order).
    pub revision: i64,
}

/// A conversation with its newest message, for conversation lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConversationRecord {
    pub peer: String,
    /// `chat`, `groupchat` (a room) or `private` (with a room occupant).
    pub kind: String,
    /// A room's name, when it has one.
    pub name: Option<String>,
    pub last_activity: i64,
    pub last_message: Option<String>,
    /// Incoming messages after the user's read marker.
    pub unread: u32,
    /// Unread messages that mention us (rooms).
    pub mentions: u32,
}

/// An incoming (or carbon/archived outgoing) message, already validated by the pipeline.
#[derive(Debug, Clone, Default)]
pub struct IncomingMessage {
    /// The other party (see [`MessageRecord::peer`]).
    pub peer: String,
    pub kind: MessageKind,
    /// True for our own messages seen via carbons or the archive.
    pub outgoing: bool,
    pub sender: String,
    pub stanza_id: Option<String>,
    pub origin_id: Option<String>,
    pub archive_id: Option<String>,
    pub body: String,
    pub timestamp: i64,
    /// XEP-0308: the @id of the message this one corrects.
    pub replace: Option<String>,
    pub occupant_id: Option<String>,
    pub mention: bool,
    /// An archive tombstone (XEP-0424/0425): the message was removed, by this moderator.
    pub tombstone: Option<Option<String>>,
    /// End-to-end encryption it travelled with.
    pub encryption: Option<Encryption>,
    /// It arrived encrypted and could not be decrypted: why.
    pub undecryptable: Option<String>,
    /// It was decrypted, but the sender's key is not trusted: what to tell the user.
    pub trust_warning: Option<String>,
    /// The file it shares, and the sender's small preview of it.
    pub attachment: Option<super::Attachment>,
    pub preview: Option<Vec<u8>>,
}

/// What happened to an incoming message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingest {
    /// New message stored.
    Inserted(MessageRecord),
    /// A correction was applied to an earlier message (the record has the new body).
    Corrected(MessageRecord),
    /// We already had it (same archive id, or same id from the same side of the conversation).
    Duplicate { id: i64 },
    /// It was our own message coming back from a room: now delivered, with the room's id.
    Reflected(MessageRecord),
}

/// A message accepted for sending.
#[derive(Debug, Clone)]
pub struct OutgoingMessage {
    pub peer: String,
    pub kind: MessageKind,
    pub sender: String,
    /// Used as both @id and origin-id.
    pub id: String,
    pub body: String,
    /// The serialised stanza, resent verbatim until acknowledged.
    pub stanza: String,
    /// End-to-end encryption of the stanza.
    pub encryption: Option<Encryption>,
}

/// A stanza waiting for the server's acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    pub id: i64,
    pub message_id: Option<i64>,
    pub stanza: String,
}

const MESSAGE_COLUMNS: &str = "m.id, c.peer, m.outgoing, m.sender, m.stanza_id, m.origin_id, \
     m.archive_id, m.body, m.timestamp, m.state, m.edited, m.error, m.kind, m.occupant_id, \
     m.mention, m.retracted, m.retracted_by, m.encryption, m.undecryptable, m.trust_warning, \
     (SELECT json_object('url', a.url, 'name', a.name, 'media_type', a.media_type, \
     'size', a.size, 'width', a.width, 'height', a.height, \
     'has_preview', json(CASE WHEN a.preview IS NULL THEN 'false' ELSE 'true' END), \
     'local_path', a.local_path, 'error', a.error) FROM attachment a WHERE a.message_id = m.id), \
     m.revision";

/// A row before its text columns are checked.
struct RawMessage {
    rec: MessageRecord,
    state: String,
    kind: String,
    encryption: Option<String>,
    attachment: Option<String>,
}

fn raw_row(r: &Row<'_>) -> rusqlite::Result<RawMessage> {
    Ok(RawMessage {
        rec: MessageRecord {
            id: r.get(0)?,
            peer: r.get(1)?,
            outgoing: r.get(2)?,
            sender: r.get(3)?,
            stanza_id: r.get(4)?,
            origin_id: r.get(5)?,
            archive_id: r.get(6)?,
            body: r.get(7)?,
            timestamp: r.get(8)?,
            state: MessageState::Received,
            edited: r.get(10)?,
            error: r.get(11)?,
            kind: MessageKind::Chat,
            occupant_id: r.get(13)?,
            mention: r.get(14)?,
            retracted: r.get(15)?,
            retracted_by: r.get(16)?,
            encryption: None,
            undecryptable: r.get(18)?,
            trust_warning: r.get(19)?,
            attachment: None,
            revision: r.get(21)?,
        },
        state: r.get(9)?,
        kind: r.get(12)?,
        encryption: r.get(17)?,
        attachment: r.get(20)?,
    })
}

fn record(raw: RawMessage) -> Result<MessageRecord> {
    Ok(MessageRecord {
        state: MessageState::parse(&raw.state)?,
        kind: MessageKind::parse(&raw.kind)?,
        encryption: raw
            .encryption
            .as_deref()
            .map(Encryption::parse)
            .transpose()?,
        attachment: super::attachments::parse(raw.attachment)?,
        ..raw.rec
    })
}

pub(super) fn load(conn: &rusqlite::Connection, id: i64) -> Result<MessageRecord> {
    let raw = conn.query_row(
        &format!(
            "SELECT {MESSAGE_COLUMNS} FROM message m JOIN conversation c ON c.id = m.conversation_id \
             WHERE m.id = ?1"
        ),
        [id],
        raw_row,
    )?;
    record(raw)
}

fn query_records(
    conn: &rusqlite::Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<MessageRecord>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map(params, raw_row)?;
    rows.map(|r| record(r?)).collect()
}

pub(super) fn conversation_id(
    tx: &Transaction<'_>,
    account: AccountId,
    peer: &str,
    kind: MessageKind,
    ts: i64,
) -> Result<i64> {
    tx.execute(
        "INSERT INTO conversation (account_id, peer, kind, last_activity) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (account_id, peer) DO UPDATE SET \
         last_activity = max(last_activity, excluded.last_activity)",
        params![account, peer, kind.conversation(), ts],
    )?;
    Ok(tx.query_row(
        "SELECT id FROM conversation WHERE account_id = ?1 AND peer = ?2",
        params![account, peer],
        |r| r.get(0),
    )?)
}

pub(super) fn existing_conversation(
    conn: &rusqlite::Connection,
    account: AccountId,
    peer: &str,
) -> Result<Option<i64>> {
    Ok(conn
        .query_row(
            "SELECT id FROM conversation WHERE account_id = ?1 AND peer = ?2",
            params![account, peer],
            |r| r.get(0),
        )
        .optional()?)
}

/// Two index lookups, not one `OR`: SQLite does not use both indexes for the `OR` and would
/// scan the whole conversation for every incoming message (quadratic catch-up).
const FIND_BY_ID_SQL: &str = "SELECT max(id) FROM ( \
     SELECT id FROM message WHERE conversation_id = ?1 AND stanza_id = ?3 AND outgoing = ?2 \
     UNION ALL \
     SELECT id FROM message WHERE conversation_id = ?1 AND origin_id = ?3 AND outgoing = ?2)";

/// Finds a message of one side of a conversation by its @id or origin-id.
pub(super) fn find_by_id(
    tx: &rusqlite::Connection,
    conversation: i64,
    outgoing: bool,
    id: &str,
) -> Result<Option<i64>> {
    Ok(tx
        .query_row(FIND_BY_ID_SQL, params![conversation, outgoing, id], |r| {
            r.get::<_, Option<i64>>(0)
        })
        .optional()?
        .flatten())
}

impl Store {
    /// Stores an outgoing message and its outbox entry in one transaction (local echo).
    /// Returns the record and the outbox id to acknowledge later.
    pub fn queue_message(
        &self,
        account: AccountId,
        msg: &OutgoingMessage,
    ) -> Result<(MessageRecord, i64)> {
        let now = now_ms();
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let conv = conversation_id(&tx, account, &msg.peer, msg.kind, now)?;
        tx.execute(
            "INSERT INTO message (account_id, conversation_id, outgoing, sender, stanza_id, \
             origin_id, body, timestamp, received_at, state, kind, encryption) \
             VALUES (?1, ?2, 1, ?3, ?4, ?4, ?5, ?6, ?6, 'pending', ?7, ?8)",
            params![
                account,
                conv,
                msg.sender,
                msg.id,
                msg.body,
                now,
                msg.kind.as_str(),
                msg.encryption.map(Encryption::as_str)
            ],
        )?;
        let message_id = tx.last_insert_rowid();
        // Writing in a conversation means having read it.
        mark_read_in(&tx, conv)?;
        tx.execute(
            "INSERT INTO outbox (account_id, message_id, stanza, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![account, message_id, msg.stanza, now],
        )?;
        let outbox_id = tx.last_insert_rowid();
        let rec = load(&tx, message_id)?;
        tx.commit()?;
        Ok((rec, outbox_id))
    }

    /// Stores a correction of our own message `replaces` (XEP-0308) and its outbox entry.
    pub fn queue_correction(
        &self,
        account: AccountId,
        peer: &str,
        replaces: &str,
        correction_id: &str,
        body: &str,
        stanza: &str,
    ) -> Result<(MessageRecord, i64)> {
        let now = now_ms();
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let target = existing_conversation(&tx, account, peer)?
            .map(|conv| find_by_id(&tx, conv, true, replaces))
            .transpose()?
            .flatten()
            .ok_or_else(|| Error::NoSuchMessage(replaces.to_owned()))?;
        apply_edit(&tx, target, correction_id, body, now)?;
        tx.execute(
            "INSERT INTO outbox (account_id, message_id, stanza, created_at) VALUES (?1, NULL, ?2, ?3)",
            params![account, stanza, now],
        )?;
        let outbox_id = tx.last_insert_rowid();
        let rec = load(&tx, target)?;
        tx.commit()?;
        Ok((rec, outbox_id))
    }

    /// The newest outgoing message in a conversation (the one a correction would replace).
    pub fn last_outgoing(&self, account: AccountId, peer: &str) -> Result<Option<MessageRecord>> {
        self.last_message(account, peer, true)
    }

    /// Every stanza still waiting for an acknowledgement, oldest first.
    pub fn outbox(&self, account: AccountId) -> Result<Vec<OutboxItem>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT id, message_id, stanza FROM outbox WHERE account_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([account], |r| {
            Ok(OutboxItem {
                id: r.get(0)?,
                message_id: r.get(1)?,
                stanza: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The server acknowledged an outbox stanza: drop it and mark its message `sent`
    /// (unless a receipt already moved it further). Returns the updated message, if any.
    pub fn outbox_acked(&self, outbox_id: i64) -> Result<Option<MessageRecord>> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let message_id: Option<Option<i64>> = tx
            .query_row(
                "SELECT message_id FROM outbox WHERE id = ?1",
                [outbox_id],
                |r| r.get(0),
            )
            .optional()?;
        tx.execute("DELETE FROM outbox WHERE id = ?1", [outbox_id])?;
        let rec = match message_id.flatten() {
            Some(mid) => {
                tx.execute(
                    "UPDATE message SET state = 'sent' WHERE id = ?1 AND state = 'pending'",
                    [mid],
                )?;
                Some(load(&tx, mid)?)
            }
            None => None,
        };
        tx.commit()?;
        Ok(rec)
    }

    /// Stores an incoming message (or applies its correction), deduplicating by archive id and
    /// by message id within the conversation.
    pub fn ingest(&self, account: AccountId, msg: &IncomingMessage) -> Result<Ingest> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let r = ingest_in(&tx, account, msg)?;
        tx.commit()?;
        Ok(r)
    }

    /// [`Store::ingest`] for a batch (an archive page), in one transaction: all or nothing.
    pub fn ingest_all(&self, account: AccountId, msgs: &[IncomingMessage]) -> Result<Vec<Ingest>> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let r = msgs
            .iter()
            .map(|m| ingest_in(&tx, account, m))
            .collect::<Result<Vec<_>>>()?;
        tx.commit()?;
        Ok(r)
    }

    /// A delivery receipt (XEP-0184) for our message `id` from `peer`.
    pub fn mark_delivered(
        &self,
        account: AccountId,
        peer: &str,
        id: &str,
    ) -> Result<Option<MessageRecord>> {
        self.advance_state(account, peer, id, MessageState::Delivered, false)
    }

    /// A displayed marker (XEP-0333) for `id`: that message and every earlier one of ours.
    pub fn mark_displayed(
        &self,
        account: AccountId,
        peer: &str,
        id: &str,
    ) -> Result<Option<MessageRecord>> {
        self.advance_state(account, peer, id, MessageState::Displayed, true)
    }

    fn advance_state(
        &self,
        account: AccountId,
        peer: &str,
        id: &str,
        to: MessageState,
        earlier_too: bool,
    ) -> Result<Option<MessageRecord>> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let Some(conv) = existing_conversation(&tx, account, peer)? else {
            return Ok(None);
        };
        let Some(target) = find_by_id(&tx, conv, true, id)? else {
            return Ok(None);
        };
        let lower: &[&str] = match to {
            MessageState::Displayed => &["pending", "sent", "delivered"],
            _ => &["pending", "sent"],
        };
        let in_list = lower
            .iter()
            .map(|s| format!("'{s}'"))
            .collect::<Vec<_>>()
            .join(",");
        if earlier_too {
            tx.execute(
                &format!(
                    "UPDATE message SET state = ?3 WHERE conversation_id = ?1 AND outgoing = 1 \
                     AND id <= ?2 AND state IN ({in_list})"
                ),
                params![conv, target, to.as_str()],
            )?;
        } else {
            tx.execute(
                &format!("UPDATE message SET state = ?2 WHERE id = ?1 AND state IN ({in_list})"),
                params![target, to.as_str()],
            )?;
        }
        let rec = load(&tx, target)?;
        tx.commit()?;
        Ok(Some(rec))
    }

    /// Puts a failed outgoing message back into the outbox (state `pending`), with the stanza
    /// `stanza` builds for it. `None` if the message does not exist or has not failed.
    pub fn requeue_failed(
        &self,
        account: AccountId,
        message_id: i64,
        stanza: impl FnOnce(&MessageRecord) -> Option<String>,
    ) -> Result<Option<MessageRecord>> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let rec = match load(&tx, message_id) {
            Ok(r) => r,
            Err(Error::Sqlite(rusqlite::Error::QueryReturnedNoRows)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let owned: bool = tx.query_row(
            "SELECT account_id = ?2 FROM message WHERE id = ?1",
            params![message_id, account],
            |r| r.get(0),
        )?;
        if !owned || !rec.outgoing || rec.state != MessageState::Failed {
            return Ok(None);
        }
        let Some(xml) = stanza(&rec) else {
            return Ok(None);
        };
        tx.execute(
            "UPDATE message SET state = 'pending', error = NULL WHERE id = ?1",
            [message_id],
        )?;
        tx.execute(
            "INSERT INTO outbox (account_id, message_id, stanza, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![account, message_id, xml, now_ms()],
        )?;
        let rec = load(&tx, message_id)?;
        tx.commit()?;
        Ok(Some(rec))
    }

    /// Marks an outgoing message failed (e.g. the server bounced it with an error).
    pub fn mark_failed(
        &self,
        account: AccountId,
        peer: &str,
        id: &str,
        error: &str,
    ) -> Result<Option<MessageRecord>> {
        let conn = self.lock();
        let Some(conv) = existing_conversation(&conn, account, peer)? else {
            return Ok(None);
        };
        let Some(target) = find_by_id(&conn, conv, true, id)? else {
            return Ok(None);
        };
        conn.execute(
            "UPDATE message SET state = 'failed', error = ?2 WHERE id = ?1",
            params![target, error],
        )?;
        load(&conn, target).map(Some)
    }

    /// The newest `limit` messages of a conversation (older than `before` if given), oldest first.
    pub fn history(
        &self,
        account: AccountId,
        peer: &str,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Vec<MessageRecord>> {
        let conn = self.lock();
        let mut out = query_records(
            &conn,
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM message m JOIN conversation c ON c.id = m.conversation_id \
                 WHERE c.account_id = ?1 AND c.peer = ?2 AND (?3 IS NULL OR \
                 (m.timestamp, m.id) < (SELECT timestamp, id FROM message WHERE id = ?3)) \
                 ORDER BY m.timestamp DESC, m.id DESC LIMIT ?4"
            ),
            params![account, peer, before, limit],
        )?;
        out.reverse();
        Ok(out)
    }

    /// The `limit` messages with `peer` that come after message `after` in timeline order
    /// (timestamp, then id), oldest first: the page below a view that is not at the end.
    pub fn history_after(
        &self,
        account: AccountId,
        peer: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<MessageRecord>> {
        let conn = self.lock();
        query_records(
            &conn,
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM message m JOIN conversation c ON c.id = m.conversation_id \
                 WHERE c.account_id = ?1 AND c.peer = ?2 AND \
                 (m.timestamp, m.id) > (SELECT timestamp, id FROM message WHERE id = ?3) \
                 ORDER BY m.timestamp ASC, m.id ASC LIMIT ?4"
            ),
            params![account, peer, after, limit],
        )
    }

    /// Full-text search over message bodies (FTS5), newest first. The query is matched as
    /// plain words: FTS5 operators in user input are neutralised.
    pub fn search(&self, account: AccountId, text: &str, limit: u32) -> Result<Vec<MessageRecord>> {
        let query = fts_query(text);
        if query.is_empty() {
            return Ok(Vec::new());
        }
        let conn = self.lock();
        query_records(
            &conn,
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM message_fts f JOIN message m ON m.id = f.rowid \
                 JOIN conversation c ON c.id = m.conversation_id \
                 WHERE message_fts MATCH ?1 AND m.account_id = ?2 \
                 ORDER BY m.timestamp DESC LIMIT ?3"
            ),
            params![query, account, limit],
        )
    }

    pub fn conversations(&self, account: AccountId) -> Result<Vec<ConversationRecord>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT c.peer, c.last_activity, \
             (SELECT body FROM message WHERE conversation_id = c.id AND kind != 'notice' \
              ORDER BY timestamp DESC, id DESC LIMIT 1), \
             (SELECT count(*) FROM message WHERE conversation_id = c.id AND outgoing = 0 \
              AND kind != 'notice' AND id > c.read_up_to), \
             c.kind, r.name, \
             (SELECT count(*) FROM message WHERE conversation_id = c.id AND outgoing = 0 \
              AND mention = 1 AND id > c.read_up_to) \
             FROM conversation c LEFT JOIN room r ON r.account_id = c.account_id AND r.jid = c.peer \
             WHERE c.account_id = ?1 ORDER BY c.last_activity DESC",
        )?;
        let rows = stmt.query_map([account], |r| {
            Ok(ConversationRecord {
                peer: r.get(0)?,
                last_activity: r.get(1)?,
                last_message: r.get(2)?,
                unread: r.get(3)?,
                kind: r.get(4)?,
                name: r.get(5)?,
                mentions: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The user has seen everything in a conversation: its unread count drops to zero.
    pub fn mark_read(&self, account: AccountId, peer: &str) -> Result<()> {
        let conn = self.lock();
        if let Some(conv) = existing_conversation(&conn, account, peer)? {
            mark_read_in(&conn, conv)?;
        }
        Ok(())
    }

    /// The newest incoming message of a conversation (what a "displayed" marker refers to).
    pub fn last_incoming(&self, account: AccountId, peer: &str) -> Result<Option<MessageRecord>> {
        self.last_message(account, peer, false)
    }

    fn last_message(
        &self,
        account: AccountId,
        peer: &str,
        outgoing: bool,
    ) -> Result<Option<MessageRecord>> {
        let conn = self.lock();
        let Some(conv) = existing_conversation(&conn, account, peer)? else {
            return Ok(None);
        };
        let id: Option<i64> = conn
            .query_row(
                "SELECT id FROM message WHERE conversation_id = ?1 AND outgoing = ?2 \
                 ORDER BY timestamp DESC, id DESC LIMIT 1",
                params![conv, outgoing],
                |r| r.get(0),
            )
            .optional()?;
        id.map(|id| load(&conn, id)).transpose()
    }
}

/// Dedup and store one message inside a transaction (see [`Store::ingest`]).
fn ingest_in(tx: &Transaction<'_>, account: AccountId, msg: &IncomingMessage) -> Result<Ingest> {
    let conv = conversation_id(tx, account, &msg.peer, msg.kind, msg.timestamp)?;
    if let Some(archive_id) = &msg.archive_id {
        let dup: Option<i64> = tx
            .query_row(
                "SELECT id FROM message WHERE conversation_id = ?1 AND archive_id = ?2",
                params![conv, archive_id],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = dup {
            if let Some(by) = &msg.tombstone {
                // The archive has since removed a message we hold.
                if let Some(rec) = retract_row(tx, id, by.as_deref())? {
                    return Ok(Ingest::Corrected(rec));
                }
            }
            return Ok(Ingest::Duplicate { id });
        }
    }
    let own_id = msg.origin_id.as_deref().or(msg.stanza_id.as_deref());
    let groupchat = msg.kind == MessageKind::GroupChat;

    if let Some(replaces) = &msg.replace
        && let Some(target) = find_by_id(tx, conv, msg.outgoing, replaces)?
        && (!groupchat || same_author(tx, target, msg)?)
    {
        let correction_id = own_id.unwrap_or(replaces.as_str());
        let applied = apply_edit(tx, target, correction_id, &msg.body, msg.timestamp)?;
        let rec = load(tx, target)?;
        return Ok(if applied {
            Ingest::Corrected(rec)
        } else {
            Ingest::Duplicate { id: target }
        });
    }
    // The original is unknown (outside what we hold): keep the correction as a
    // message of its own, marked edited, so nothing is lost.

    if groupchat && let Some(id) = msg.origin_id.as_deref() {
        // Our own message coming back from the room (possibly under an older nick): the
        // room has it, and its archive id lets a later catch-up recognise it.
        if let Some(existing) = find_by_id(tx, conv, true, id)? {
            tx.execute(
                "UPDATE message SET archive_id = coalesce(archive_id, ?2), \
                 state = CASE WHEN state IN ('pending', 'sent') THEN 'delivered' ELSE state END \
                 WHERE id = ?1",
                params![existing, msg.archive_id],
            )?;
            return Ok(Ingest::Reflected(load(tx, existing)?));
        }
    }
    if let Some(id) = own_id
        && let Some(existing) = find_by_id(tx, conv, msg.outgoing, id)?
        && (!groupchat || same_author(tx, existing, msg)?)
    {
        if let Some(archive_id) = &msg.archive_id {
            tx.execute(
                "UPDATE message SET archive_id = ?2 WHERE id = ?1 AND archive_id IS NULL",
                params![existing, archive_id],
            )?;
        }
        return Ok(Ingest::Duplicate { id: existing });
    }

    let state = if msg.outgoing {
        MessageState::Sent
    } else {
        MessageState::Received
    };
    let (body, retracted, retracted_by) = match &msg.tombstone {
        Some(by) => ("", true, by.as_deref()),
        None => (msg.body.as_str(), false, None),
    };
    tx.execute(
        "INSERT INTO message (account_id, conversation_id, outgoing, sender, stanza_id, \
         origin_id, archive_id, body, timestamp, received_at, state, edited, kind, occupant_id, \
         mention, retracted, retracted_by, encryption, undecryptable, trust_warning) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, \
         ?20)",
        params![
            account,
            conv,
            msg.outgoing,
            msg.sender,
            msg.stanza_id,
            msg.origin_id,
            msg.archive_id,
            body,
            msg.timestamp,
            now_ms(),
            state.as_str(),
            msg.replace.is_some(),
            msg.kind.as_str(),
            msg.occupant_id,
            msg.mention && !retracted,
            retracted,
            retracted_by,
            msg.encryption.map(Encryption::as_str),
            msg.undecryptable,
            msg.trust_warning,
        ],
    )?;
    let id = tx.last_insert_rowid();
    if let (Some(a), false) = (&msg.attachment, retracted) {
        super::attachments::put(tx, id, a, msg.preview.as_deref())?;
    }
    let rec = load(tx, id)?;
    if msg.outgoing {
        // Our own message from another device (carbon/archive): the conversation was read there.
        mark_read_in(tx, conv)?;
    }
    Ok(Ingest::Inserted(rec))
}

/// In a room, whether stored message `id` has the same author as `msg`: the same occupant id
/// when both have one (stable across nick changes), else the same `room/nick`.
fn same_author(tx: &rusqlite::Connection, id: i64, msg: &IncomingMessage) -> Result<bool> {
    let (sender, occupant): (String, Option<String>) = tx.query_row(
        "SELECT sender, occupant_id FROM message WHERE id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(match (occupant, &msg.occupant_id) {
        (Some(a), Some(b)) => a == *b,
        _ => sender == msg.sender,
    })
}

/// Empties a message's body (and its edit history): retracted, or removed by `by`.
/// `None` if it was already retracted.
pub(super) fn retract_row(
    tx: &rusqlite::Connection,
    id: i64,
    by: Option<&str>,
) -> Result<Option<MessageRecord>> {
    let changed = tx.execute(
        "UPDATE message SET body = '', retracted = 1, retracted_by = ?2, mention = 0 \
         WHERE id = ?1 AND retracted = 0",
        params![id, by],
    )?;
    if changed == 0 {
        return Ok(None);
    }
    tx.execute("DELETE FROM message_edit WHERE message_id = ?1", [id])?;
    // The file goes with the message (what was fetched stays where the user may have it).
    tx.execute("DELETE FROM attachment WHERE message_id = ?1", [id])?;
    load(tx, id).map(Some)
}

pub(super) fn mark_read_in(conn: &rusqlite::Connection, conversation: i64) -> Result<()> {
    conn.execute(
        "UPDATE conversation SET read_up_to = \
         (SELECT coalesce(max(id), 0) FROM message WHERE conversation_id = ?1) WHERE id = ?1",
        [conversation],
    )?;
    Ok(())
}

/// Applies a correction unless this correction id was applied before. Returns whether it was.
fn apply_edit(
    tx: &rusqlite::Connection,
    target: i64,
    correction_id: &str,
    body: &str,
    at: i64,
) -> Result<bool> {
    let inserted = tx.execute(
        "INSERT OR IGNORE INTO message_edit (message_id, body, correction_id, replaced_at) \
         SELECT id, body, ?2, ?3 FROM message WHERE id = ?1",
        params![target, correction_id, at],
    )?;
    if inserted == 0 {
        return Ok(false);
    }
    tx.execute(
        "UPDATE message SET body = ?2, edited = 1 WHERE id = ?1",
        params![target, body],
    )?;
    Ok(true)
}

/// Turns user text into an FTS5 query of quoted terms (prefix match on the last one).
pub(super) fn fts_query(text: &str) -> String {
    let terms: Vec<String> = text
        .split_whitespace()
        .map(|t| t.replace('"', ""))
        .filter(|t| !t.is_empty())
        .map(|t| format!("\"{t}\""))
        .collect();
    match terms.split_last() {
        Some((last, rest)) => {
            let mut q = rest.join(" ");
            if !q.is_empty() {
                q.push(' ');
            }
            q.push_str(last);
            q.push('*');
            q
        }
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::accounts::tests::alice;

    fn setup() -> anyhow::Result<(Store, AccountId)> {
        let store = Store::open_in_memory()?;
        let a = store.add_account(&alice())?;
        Ok((store, a.id))
    }

    fn out(id: &str, body: &str) -> OutgoingMessage {
        OutgoingMessage {
            encryption: None,
            peer: "bob@example.org".into(),
            kind: MessageKind::Chat,
            sender: "alice@example.org/r".into(),
            id: id.into(),
            body: body.into(),
            stanza: format!("<message id='{id}'/>"),
        }
    }

    fn incoming(id: &str, archive: Option<&str>, body: &str) -> IncomingMessage {
        IncomingMessage {
            peer: "bob@example.org".into(),
            outgoing: false,
            sender: "bob@example.org/phone".into(),
            stanza_id: Some(id.into()),
            origin_id: Some(id.into()),
            archive_id: archive.map(Into::into),
            body: body.into(),
            timestamp: 1_000,
            ..IncomingMessage::default()
        }
    }

    /// Pages follow timeline order (timestamp, id), not insertion order: an archived
    /// message stored late but sent early sits where it belongs in both directions.
    #[test]
    fn pages_in_timeline_order_both_ways() -> anyhow::Result<()> {
        let (store, acc) = setup()?;
        for (i, ts) in [(1, 100), (2, 300), (3, 200), (4, 400), (5, 50)] {
            store.ingest(
                acc,
                &IncomingMessage {
                    timestamp: ts,
                    ..incoming(&format!("m{i}"), None, &format!("b{i}"))
                },
            )?;
        }
        let bodies = |v: Vec<MessageRecord>| v.into_iter().map(|m| m.body).collect::<Vec<_>>();
        let all = store.history(acc, "bob@example.org", 10, None)?;
        assert_eq!(bodies(all.clone()), ["b5", "b1", "b3", "b2", "b4"]);
        let b3 = all[2].id;
        let older = store.history(acc, "bob@example.org", 2, Some(b3))?;
        assert_eq!(bodies(older), ["b5", "b1"]);
        let newer = store.history_after(acc, "bob@example.org", b3, 1)?;
        assert_eq!(bodies(newer), ["b2"]);
        let newer = store.history_after(acc, "bob@example.org", all[4].id, 5)?;
        assert!(newer.is_empty());
        Ok(())
    }

    #[test]
    fn outbox_lifecycle() -> anyhow::Result<()> {
        let (store, acc) = setup()?;
        let (rec, ob) = store.queue_message(acc, &out("m1", "hello"))?;
        assert_eq!(rec.state, MessageState::Pending);
        assert_eq!(store.outbox(acc)?.len(), 1);
        let acked = store.outbox_acked(ob)?;
        assert_eq!(acked.map(|m| m.state), Some(MessageState::Sent));
        assert!(store.outbox(acc)?.is_empty());
        let d = store.mark_delivered(acc, "bob@example.org", "m1")?;
        assert_eq!(d.map(|m| m.state), Some(MessageState::Delivered));
        Ok(())
    }

    #[test]
    fn receipt_before_ack_is_not_downgraded() -> anyhow::Result<()> {
        let (store, acc) = setup()?;
        let (_, ob) = store.queue_message(acc, &out("m1", "hello"))?;
        store.mark_delivered(acc, "bob@example.org", "m1")?;
        let acked = store.outbox_acked(ob)?;
        assert_eq!(acked.map(|m| m.state), Some(MessageState::Delivered));
        Ok(())
    }

    #[test]
    fn displayed_marks_earlier_messages() -> anyhow::Result<()> {
        let (store, acc) = setup()?;
        store.queue_message(acc, &out("m1", "one"))?;
        store.queue_message(acc, &out("m2", "two"))?;
        store.mark_displayed(acc, "bob@example.org", "m2")?;
        let h = store.history(acc, "bob@example.org", 10, None)?;
        assert!(h.iter().all(|m| m.state == MessageState::Displayed));
        Ok(())
    }

    #[test]
    fn dedup_by_archive_id_and_by_message_id() -> anyhow::Result<()> {
        let (store, acc) = setup()?;
        // Live copy without archive id, then the archive copy of the same message.
        assert!(matches!(
            store.ingest(acc, &incoming("x1", None, "hi"))?,
            Ingest::Inserted(_)
        ));
        assert!(matches!(
            store.ingest(acc, &incoming("x1", Some("a1"), "hi"))?,
            Ingest::Duplicate { .. }
        ));
        // The archive id was learned, so a second archive replay is a duplicate by archive id.
        assert!(matches!(
            store.ingest(acc, &incoming("other", Some("a1"), "hi"))?,
            Ingest::Duplicate { .. }
        ));
        assert_eq!(store.history(acc, "bob@example.org", 10, None)?.len(), 1);
        Ok(())
    }

    #[test]
    fn own_message_from_archive_is_deduplicated() -> anyhow::Result<()> {
        let (store, acc) = setup()?;
        store.queue_message(acc, &out("m1", "hello"))?;
        let mut archived = incoming("m1", Some("a9"), "hello");
        archived.outgoing = true;
        assert!(matches!(
            store.ingest(acc, &archived)?,
            Ingest::Duplicate { .. }
        ));
        let h = store.history(acc, "bob@example.org", 10, None)?;
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].archive_id.as_deref(), Some("a9"));
        Ok(())
    }

    #[test]
    fn corrections_apply_once_and_only_to_same_side() -> anyhow::Result<()> {
        let (store, acc) = setup()?;
        let Ingest::Inserted(first) = store.ingest(acc, &incoming("x1", None, "helo"))? else {
            anyhow::bail!("not inserted")
        };
        let mut fix = incoming("x2", Some("a2"), "hello");
        fix.replace = Some("x1".into());
        match store.ingest(acc, &fix)? {
            Ingest::Corrected(m) => {
                assert_eq!(m.body, "hello");
                assert!(m.edited);
                assert!(
                    m.revision > first.revision,
                    "a change makes a newer revision"
                );
            }
            other => anyhow::bail!("expected a correction, got {other:?}"),
        }
        // Replayed from the archive: not applied twice.
        fix.archive_id = None;
        assert!(matches!(store.ingest(acc, &fix)?, Ingest::Duplicate { .. }));
        // A correction claiming to replace one of *our* messages from the peer's side is not
        // applied to ours.
        store.queue_message(acc, &out("m1", "mine"))?;
        let mut hostile = incoming("x3", None, "owned");
        hostile.replace = Some("m1".into());
        assert!(matches!(store.ingest(acc, &hostile)?, Ingest::Inserted(_)));
        let mine = store.last_outgoing(acc, "bob@example.org")?;
        assert_eq!(mine.map(|m| m.body), Some("mine".into()));
        Ok(())
    }

    #[test]
    fn own_correction_is_queued() -> anyhow::Result<()> {
        let (store, acc) = setup()?;
        store.queue_message(acc, &out("m1", "helo"))?;
        let (rec, _) =
            store.queue_correction(acc, "bob@example.org", "m1", "m2", "hello", "<message/>")?;
        assert_eq!(rec.body, "hello");
        assert_eq!(store.outbox(acc)?.len(), 2);
        assert!(
            store
                .queue_correction(acc, "bob@example.org", "nope", "m3", "x", "<message/>")
                .is_err()
        );
        Ok(())
    }

    #[test]
    fn an_ack_after_a_bounce_keeps_the_message_failed() -> anyhow::Result<()> {
        let (store, acc) = setup()?;
        let (_, ob) = store.queue_message(acc, &out("m1", "hello"))?;
        store.mark_failed(acc, "bob@example.org", "m1", "service-unavailable")?;
        // The server acks the stanza it bounced: it is out of the outbox, still failed.
        let after = store.outbox_acked(ob)?;
        assert_eq!(after.map(|m| m.state), Some(MessageState::Failed));
        assert!(store.outbox(acc)?.is_empty());
        Ok(())
    }

    #[test]
    fn only_failed_messages_are_requeued() -> anyhow::Result<()> {
        let (store, acc) = setup()?;
        let (rec, ob) = store.queue_message(acc, &out("m1", "hello"))?;
        let xml = |_: &MessageRecord| Some("<message id='m1'/>".to_owned());
        assert!(
            store.requeue_failed(acc, rec.id, xml)?.is_none(),
            "pending: not failed"
        );
        store.outbox_acked(ob)?;
        store.mark_failed(acc, "bob@example.org", "m1", "service-unavailable")?;
        let again = store.requeue_failed(acc, rec.id, xml)?;
        assert_eq!(again.map(|m| m.state), Some(MessageState::Pending));
        assert_eq!(store.outbox(acc)?.len(), 1);
        assert!(
            store.requeue_failed(acc, 9999, xml)?.is_none(),
            "unknown id"
        );
        Ok(())
    }

    #[test]
    fn unread_counts_follow_the_read_marker() -> anyhow::Result<()> {
        let (store, acc) = setup()?;
        store.ingest(acc, &incoming("x1", None, "one"))?;
        store.ingest(acc, &incoming("x2", None, "two"))?;
        assert_eq!(store.conversations(acc)?[0].unread, 2);
        store.mark_read(acc, "bob@example.org")?;
        assert_eq!(store.conversations(acc)?[0].unread, 0);
        store.ingest(acc, &incoming("x3", None, "three"))?;
        assert_eq!(store.conversations(acc)?[0].unread, 1);
        // Replying means having read it.
        store.queue_message(acc, &out("m1", "reply"))?;
        assert_eq!(store.conversations(acc)?[0].unread, 0);
        // So does our own message arriving from another device.
        store.ingest(acc, &incoming("x4", None, "four"))?;
        let mut mine = incoming("c1", None, "from my phone");
        mine.outgoing = true;
        store.ingest(acc, &mine)?;
        assert_eq!(store.conversations(acc)?[0].unread, 0);
        Ok(())
    }

    #[test]
    fn dedup_lookups_use_indexes() -> anyhow::Result<()> {
        let (store, _) = setup()?;
        let conn = store.lock();
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {FIND_BY_ID_SQL}"))?;
        let plan: Vec<String> = stmt
            .query_map(params![1, true, "x"], |r| r.get::<_, String>(3))?
            .collect::<rusqlite::Result<_>>()?;
        // Every lookup must narrow by conversation *and* id, not walk the conversation.
        assert!(
            plan.iter().all(|step| !step.starts_with("SCAN message")
                && (!step.starts_with("SEARCH message") || step.contains(" AND "))),
            "scan in {plan:?}"
        );
        Ok(())
    }

    #[test]
    fn full_text_search() -> anyhow::Result<()> {
        let (store, acc) = setup()?;
        store.ingest(acc, &incoming("x1", None, "Let's meet at the harbour"))?;
        store.ingest(acc, &incoming("x2", None, "bring \"quotes\" AND operators"))?;
        assert_eq!(store.search(acc, "harb", 10)?.len(), 1);
        assert_eq!(store.search(acc, "meet harbour", 10)?.len(), 1);
        assert_eq!(store.search(acc, "\"AND\" OR", 10)?.len(), 0);
        assert_eq!(store.search(acc, "quotes", 10)?.len(), 1);
        assert!(store.search(acc, "   ", 10)?.is_empty());
        // Corrections are reindexed.
        let mut fix = incoming("x3", None, "Let's meet at the station");
        fix.replace = Some("x1".into());
        store.ingest(acc, &fix)?;
        assert!(store.search(acc, "harbour", 10)?.is_empty());
        assert_eq!(store.search(acc, "station", 10)?.len(), 1);
        Ok(())
    }
}
