//! Rooms (XEP-0045) with their bookmark state and archive positions, invitations, room
//! notices, and retractions/moderation of stored messages.

use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;

use super::messages::{
    MessageKind, MessageRecord, conversation_id, existing_conversation, find_by_id, load,
    retract_row,
};
use super::{AccountId, Result, Store, now_ms};

/// A room we know: joined now, bookmarked, or joined before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoomRecord {
    pub jid: String,
    pub nick: String,
    pub name: Option<String>,
    /// The user wants to be in the room: it is joined on every connect.
    pub autojoin: bool,
    /// The server's bookmark list (XEP-0402) has it.
    pub bookmarked: bool,
    pub subject: Option<String>,
    /// What the room said about itself, as JSON (`proto::muc::RoomInfo`).
    #[serde(skip)]
    pub info: Option<String>,
    #[serde(skip)]
    pub mam_last_id: Option<String>,
    pub mam_synced_at: Option<i64>,
    /// Why the room removed us (kicked, banned, destroyed…), until we join again.
    pub removed: Option<String>,
}

const ROOM_COLUMNS: &str = "jid, nick, name, autojoin, bookmarked, subject, info, mam_last_id, \
                            mam_synced_at, removed";

fn room_row(r: &Row<'_>) -> rusqlite::Result<RoomRecord> {
    Ok(RoomRecord {
        jid: r.get(0)?,
        nick: r.get(1)?,
        name: r.get(2)?,
        autojoin: r.get(3)?,
        bookmarked: r.get(4)?,
        subject: r.get(5)?,
        info: r.get(6)?,
        mam_last_id: r.get(7)?,
        mam_synced_at: r.get(8)?,
        removed: r.get(9)?,
    })
}

/// An invitation waiting for an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvitationRecord {
    pub room: String,
    pub inviter: Option<String>,
    pub reason: Option<String>,
    /// `mediated` (through the room) or `direct` (XEP-0249).
    pub kind: String,
    pub received_at: i64,
}

/// Who asks to retract a message (XEP-0424): only the author may.
#[derive(Debug, Clone, Copy)]
pub struct Author<'a> {
    pub outgoing: bool,
    /// `room/nick` in a room, the sender's JID otherwise.
    pub sender: &'a str,
    pub occupant_id: Option<&'a str>,
}

impl Store {
    pub fn rooms(&self, account: AccountId) -> Result<Vec<RoomRecord>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!(
            "SELECT {ROOM_COLUMNS} FROM room WHERE account_id = ?1 ORDER BY jid"
        ))?;
        let rows = stmt.query_map([account], room_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn room(&self, account: AccountId, jid: &str) -> Result<Option<RoomRecord>> {
        let conn = self.lock();
        Ok(conn
            .query_row(
                &format!("SELECT {ROOM_COLUMNS} FROM room WHERE account_id = ?1 AND jid = ?2"),
                params![account, jid],
                room_row,
            )
            .optional()?)
    }

    /// Records that the user wants to be in a room (join): creates it or sets `autojoin`, the
    /// nick, and clears an old removal. The room's conversation exists from now on.
    pub fn want_room(
        &self,
        account: AccountId,
        jid: &str,
        nick: &str,
        name: Option<&str>,
    ) -> Result<RoomRecord> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO room (account_id, jid, nick, name, autojoin) VALUES (?1, ?2, ?3, ?4, 1) \
             ON CONFLICT (account_id, jid) DO UPDATE SET autojoin = 1, nick = excluded.nick, \
             name = coalesce(excluded.name, name), removed = NULL",
            params![account, jid, nick, name],
        )?;
        conversation_id(&tx, account, jid, MessageKind::GroupChat, now_ms())?;
        let rec = tx.query_row(
            &format!("SELECT {ROOM_COLUMNS} FROM room WHERE account_id = ?1 AND jid = ?2"),
            params![account, jid],
            room_row,
        )?;
        tx.commit()?;
        Ok(rec)
    }

    /// Applies a bookmark from the server: name, autojoin, and the nick unless we have one.
    pub fn apply_bookmark(
        &self,
        account: AccountId,
        jid: &str,
        nick: &str,
        name: Option<&str>,
        autojoin: bool,
    ) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO room (account_id, jid, nick, name, autojoin, bookmarked) \
             VALUES (?1, ?2, ?3, ?4, ?5, 1) \
             ON CONFLICT (account_id, jid) DO UPDATE SET autojoin = excluded.autojoin, \
             name = coalesce(excluded.name, name), bookmarked = 1",
            params![account, jid, nick, name, autojoin],
        )?;
        if autojoin {
            conversation_id(&tx, account, jid, MessageKind::GroupChat, now_ms())?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The user left the room, or another device did (`autojoin` off).
    pub fn leave_room(&self, account: AccountId, jid: &str) -> Result<()> {
        self.lock().execute(
            "UPDATE room SET autojoin = 0 WHERE account_id = ?1 AND jid = ?2",
            params![account, jid],
        )?;
        Ok(())
    }

    pub fn set_room_bookmarked(&self, account: AccountId, jid: &str, on: bool) -> Result<()> {
        self.lock().execute(
            "UPDATE room SET bookmarked = ?3 WHERE account_id = ?1 AND jid = ?2",
            params![account, jid, on],
        )?;
        Ok(())
    }

    pub fn set_room_nick(&self, account: AccountId, jid: &str, nick: &str) -> Result<()> {
        self.lock().execute(
            "UPDATE room SET nick = ?3 WHERE account_id = ?1 AND jid = ?2",
            params![account, jid, nick],
        )?;
        Ok(())
    }

    pub fn set_room_subject(&self, account: AccountId, jid: &str, subject: &str) -> Result<()> {
        self.lock().execute(
            "UPDATE room SET subject = ?3 WHERE account_id = ?1 AND jid = ?2",
            params![account, jid, subject],
        )?;
        Ok(())
    }

    /// Stores what the room says about itself (and its name unless a bookmark named it).
    pub fn set_room_info(
        &self,
        account: AccountId,
        jid: &str,
        info_json: &str,
        name: Option<&str>,
    ) -> Result<()> {
        self.lock().execute(
            "UPDATE room SET info = ?3, name = coalesce(name, ?4) WHERE account_id = ?1 AND jid = ?2",
            params![account, jid, info_json, name],
        )?;
        Ok(())
    }

    /// The room removed us: remember why (shown until we join again) and stop autojoining.
    pub fn set_room_removed(&self, account: AccountId, jid: &str, why: &str) -> Result<()> {
        self.lock().execute(
            "UPDATE room SET removed = ?3, autojoin = 0 WHERE account_id = ?1 AND jid = ?2",
            params![account, jid, why],
        )?;
        Ok(())
    }

    /// Records the newest room-archive id we hold; `complete` when the catch-up finished.
    pub fn set_room_archive_position(
        &self,
        account: AccountId,
        jid: &str,
        last_id: &str,
        complete: bool,
    ) -> Result<()> {
        self.lock().execute(
            "UPDATE room SET mam_last_id = ?3, \
             mam_synced_at = CASE WHEN ?4 THEN ?5 ELSE mam_synced_at END \
             WHERE account_id = ?1 AND jid = ?2",
            params![account, jid, last_id, complete, now_ms()],
        )?;
        Ok(())
    }

    /// A room catch-up finished without any archive id (the archive was empty): the next
    /// one starts from this time.
    pub fn mark_room_synced(&self, account: AccountId, jid: &str) -> Result<()> {
        self.lock().execute(
            "UPDATE room SET mam_synced_at = ?3 WHERE account_id = ?1 AND jid = ?2",
            params![account, jid, now_ms()],
        )?;
        Ok(())
    }

    /// Forgets a room entirely (its messages stay in the conversation).
    pub fn remove_room(&self, account: AccountId, jid: &str) -> Result<()> {
        self.lock().execute(
            "DELETE FROM room WHERE account_id = ?1 AND jid = ?2",
            params![account, jid],
        )?;
        Ok(())
    }

    /// The newest message time in a conversation (where join history of a room without an
    /// archive starts).
    pub fn last_timestamp(&self, account: AccountId, peer: &str) -> Result<Option<i64>> {
        let conn = self.lock();
        let Some(conv) = existing_conversation(&conn, account, peer)? else {
            return Ok(None);
        };
        Ok(conn.query_row(
            "SELECT max(timestamp) FROM message WHERE conversation_id = ?1 AND kind != 'notice'",
            [conv],
            |r| r.get(0),
        )?)
    }

    /// Adds what a room told us (removal, configuration change) to its timeline.
    pub fn add_notice(&self, account: AccountId, room: &str, text: &str) -> Result<MessageRecord> {
        let now = now_ms();
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let conv = conversation_id(&tx, account, room, MessageKind::Notice, now)?;
        tx.execute(
            "INSERT INTO message (account_id, conversation_id, outgoing, sender, body, timestamp, \
             received_at, state, kind) VALUES (?1, ?2, 0, ?3, ?4, ?5, ?5, 'received', 'notice')",
            params![account, conv, room, text, now],
        )?;
        let rec = load(&tx, tx.last_insert_rowid())?;
        tx.commit()?;
        Ok(rec)
    }

    /// Applies a retraction by the author (`Some(author)`, XEP-0424) or a moderator's removal
    /// (`None`, XEP-0425; the caller checked it came from the room). `target` is the room's
    /// archive id in a room, the message's own id otherwise. `None` when there is no such
    /// message, it is not the author's, or it was already retracted.
    pub fn retract(
        &self,
        account: AccountId,
        peer: &str,
        target: &str,
        author: Option<Author<'_>>,
        moderated_by: Option<&str>,
    ) -> Result<Option<MessageRecord>> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let Some(conv) = existing_conversation(&tx, account, peer)? else {
            return Ok(None);
        };
        let by_archive: Option<i64> = tx
            .query_row(
                "SELECT id FROM message WHERE conversation_id = ?1 AND archive_id = ?2",
                params![conv, target],
                |r| r.get(0),
            )
            .optional()?;
        let found = match (by_archive, author) {
            (Some(id), _) => Some(id),
            (None, Some(a)) => find_by_id(&tx, conv, a.outgoing, target)?,
            (None, None) => None,
        };
        let Some(id) = found else { return Ok(None) };
        if let Some(a) = author {
            let (outgoing, sender, occupant, kind): (bool, String, Option<String>, String) = tx
                .query_row(
                    "SELECT outgoing, sender, occupant_id, kind FROM message WHERE id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )?;
            let bare = |s: &str| s.split('/').next().unwrap_or(s).to_owned();
            let same = match (occupant.as_deref(), a.occupant_id) {
                (Some(x), Some(y)) => x == y,
                _ if outgoing || a.outgoing => outgoing == a.outgoing,
                // In a room the nick is the identity; elsewhere the bare JID.
                _ if kind == "groupchat" => sender == a.sender,
                _ => bare(&sender) == bare(a.sender),
            };
            if !same {
                tracing::warn!(target, "retraction by someone else than the author ignored");
                return Ok(None);
            }
        }
        let rec = retract_row(&tx, id, moderated_by)?;
        tx.commit()?;
        Ok(rec)
    }

    /// Marks every queued, not yet sent message to `peer` failed (we left the room) and
    /// drops their outbox rows. `keep` are outbox ids already handed to the stream.
    pub fn fail_queued(
        &self,
        account: AccountId,
        peer: &str,
        error: &str,
        keep: &[i64],
    ) -> Result<Vec<MessageRecord>> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let Some(conv) = existing_conversation(&tx, account, peer)? else {
            return Ok(Vec::new());
        };
        let rows: Vec<(i64, i64)> = {
            let mut stmt = tx.prepare(
                "SELECT o.id, o.message_id FROM outbox o JOIN message m ON m.id = o.message_id \
                 WHERE o.account_id = ?1 AND m.conversation_id = ?2",
            )?;
            let it = stmt.query_map(params![account, conv], |r| Ok((r.get(0)?, r.get(1)?)))?;
            it.collect::<rusqlite::Result<_>>()?
        };
        let mut out = Vec::new();
        for (outbox, message) in rows.into_iter().filter(|(o, _)| !keep.contains(o)) {
            tx.execute("DELETE FROM outbox WHERE id = ?1", [outbox])?;
            tx.execute(
                "UPDATE message SET state = 'failed', error = ?2 WHERE id = ?1 AND state = 'pending'",
                params![message, error],
            )?;
            out.push(load(&tx, message)?);
        }
        tx.commit()?;
        Ok(out)
    }

    /// One message of this account.
    pub fn message(&self, account: AccountId, id: i64) -> Result<Option<MessageRecord>> {
        let conn = self.lock();
        let owned: Option<i64> = conn
            .query_row(
                "SELECT id FROM message WHERE id = ?1 AND account_id = ?2",
                params![id, account],
                |r| r.get(0),
            )
            .optional()?;
        owned.map(|id| load(&conn, id)).transpose()
    }

    /// Queues a stanza that belongs to no new message (a retraction) in the outbox.
    pub fn queue_stanza(&self, account: AccountId, stanza: &str) -> Result<i64> {
        let conn = self.lock();
        conn.execute(
            "INSERT INTO outbox (account_id, message_id, stanza, created_at) VALUES (?1, NULL, ?2, ?3)",
            params![account, stanza, now_ms()],
        )?;
        Ok(conn.last_insert_rowid())
    }

    pub fn add_invitation(&self, account: AccountId, inv: &InvitationRecord) -> Result<()> {
        self.lock().execute(
            "INSERT INTO invitation (account_id, room, inviter, reason, kind, received_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (account_id, room) DO UPDATE SET \
             inviter = excluded.inviter, reason = excluded.reason, kind = excluded.kind, \
             received_at = excluded.received_at",
            params![
                account,
                inv.room,
                inv.inviter,
                inv.reason,
                inv.kind,
                inv.received_at
            ],
        )?;
        Ok(())
    }

    pub fn invitations(&self, account: AccountId) -> Result<Vec<InvitationRecord>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT room, inviter, reason, kind, received_at FROM invitation \
             WHERE account_id = ?1 ORDER BY received_at DESC",
        )?;
        let rows = stmt.query_map([account], |r| {
            Ok(InvitationRecord {
                room: r.get(0)?,
                inviter: r.get(1)?,
                reason: r.get(2)?,
                kind: r.get(3)?,
                received_at: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Removes an invitation (answered). Returns it if there was one.
    pub fn take_invitation(
        &self,
        account: AccountId,
        room: &str,
    ) -> Result<Option<InvitationRecord>> {
        let found = self
            .invitations(account)?
            .into_iter()
            .find(|i| i.room == room);
        self.lock().execute(
            "DELETE FROM invitation WHERE account_id = ?1 AND room = ?2",
            params![account, room],
        )?;
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::accounts::tests::alice;
    use crate::store::{IncomingMessage, Ingest, MessageState, OutgoingMessage};

    const ROOM: &str = "room@conf.example.org";

    fn setup() -> anyhow::Result<(Store, AccountId)> {
        let store = Store::open_in_memory()?;
        let a = store.add_account(&alice())?;
        Ok((store, a.id))
    }

    fn gc(nick: &str, id: &str, archive: &str, body: &str) -> IncomingMessage {
        IncomingMessage {
            peer: ROOM.into(),
            kind: MessageKind::GroupChat,
            sender: format!("{ROOM}/{nick}"),
            stanza_id: Some(id.into()),
            origin_id: Some(id.into()),
            archive_id: Some(archive.into()),
            body: body.into(),
            timestamp: 1_000,
            occupant_id: Some(format!("occ-{nick}")),
            ..IncomingMessage::default()
        }
    }

    #[test]
    fn room_lifecycle_and_conversation_list() -> anyhow::Result<()> {
        let (store, acc) = setup()?;
        store.want_room(acc, ROOM, "alice", Some("The Room"))?;
        let rooms = store.rooms(acc)?;
        assert_eq!(rooms.len(), 1);
        assert!(rooms[0].autojoin && !rooms[0].bookmarked);
        store.ingest(acc, &gc("bob", "m1", "A1", "hi alice"))?;
        store.ingest(
            acc,
            &IncomingMessage {
                mention: true,
                ..gc("bob", "m2", "A2", "alice: look")
            },
        )?;
        store.add_notice(acc, ROOM, "The room is now logged")?;
        let convs = store.conversations(acc)?;
        assert_eq!(convs.len(), 1);
        assert_eq!(convs[0].kind, "groupchat");
        assert_eq!(convs[0].name.as_deref(), Some("The Room"));
        assert_eq!(convs[0].unread, 2, "notices are not unread messages");
        assert_eq!(convs[0].mentions, 1);
        assert_eq!(convs[0].last_message.as_deref(), Some("alice: look"));

        store.set_room_removed(acc, ROOM, "kicked")?;
        let r = store
            .room(acc, ROOM)?
            .ok_or_else(|| anyhow::anyhow!("gone"))?;
        assert!(!r.autojoin && r.removed.as_deref() == Some("kicked"));
        store.want_room(acc, ROOM, "alice2", None)?;
        let r = store
            .room(acc, ROOM)?
            .ok_or_else(|| anyhow::anyhow!("gone"))?;
        assert!(r.autojoin && r.removed.is_none() && r.nick == "alice2");
        assert_eq!(r.name.as_deref(), Some("The Room"));
        Ok(())
    }

    /// Our message comes back from the room (reflection), then again from its archive after
    /// a nick change: one row, delivered, with the room's id.
    #[test]
    fn reflection_and_archive_copy_are_one_message() -> anyhow::Result<()> {
        let (store, acc) = setup()?;
        let (rec, ob) = store.queue_message(
            acc,
            &OutgoingMessage {
                encryption: None,
                peer: ROOM.into(),
                kind: MessageKind::GroupChat,
                sender: format!("{ROOM}/alice"),
                id: "o1".into(),
                body: "hello room".into(),
                stanza: "<message/>".into(),
            },
        )?;
        store.outbox_acked(ob)?;
        let back = IncomingMessage {
            outgoing: true,
            ..gc("alice", "o1", "R1", "hello room")
        };
        match store.ingest(acc, &back)? {
            Ingest::Reflected(m) => {
                assert_eq!(m.id, rec.id);
                assert_eq!(m.state, MessageState::Delivered);
                assert_eq!(m.archive_id.as_deref(), Some("R1"));
            }
            other => anyhow::bail!("not a reflection: {other:?}"),
        }
        // From the archive, under another nick, not recognised as ours by the classifier.
        let archived = gc("alice-renamed", "o1", "R1", "hello room");
        assert!(matches!(
            store.ingest(acc, &archived)?,
            Ingest::Duplicate { .. }
        ));
        assert_eq!(store.history(acc, ROOM, 10, None)?.len(), 1);
        Ok(())
    }

    #[test]
    fn only_authors_retract_and_moderators_remove() -> anyhow::Result<()> {
        let (store, acc) = setup()?;
        store.ingest(acc, &gc("bob", "b1", "A1", "oops"))?;
        store.ingest(acc, &gc("carol", "c1", "A2", "spam"))?;
        let mallory = Author {
            outgoing: false,
            sender: "room@conf.example.org/mallory",
            occupant_id: Some("occ-mallory"),
        };
        assert!(
            store
                .retract(acc, ROOM, "A1", Some(mallory), None)?
                .is_none()
        );
        let bob = Author {
            outgoing: false,
            sender: "room@conf.example.org/bob-renamed",
            occupant_id: Some("occ-bob"),
        };
        let r = store
            .retract(acc, ROOM, "A1", Some(bob), None)?
            .ok_or_else(|| anyhow::anyhow!("not retracted"))?;
        assert!(r.retracted && r.body.is_empty());
        let m = store
            .retract(acc, ROOM, "A2", None, Some("room@conf.example.org/mod"))?
            .ok_or_else(|| anyhow::anyhow!("not moderated"))?;
        assert_eq!(m.retracted_by.as_deref(), Some("room@conf.example.org/mod"));
        assert!(
            store.search(acc, "spam", 10)?.is_empty(),
            "gone from search"
        );
        // A tombstone from the archive for a message we never had is stored as removed.
        let t = IncomingMessage {
            tombstone: Some(None),
            ..gc("dave", "d1", "A3", "")
        };
        match store.ingest(acc, &t)? {
            Ingest::Inserted(m) => assert!(m.retracted),
            other => anyhow::bail!("{other:?}"),
        }
        Ok(())
    }

    #[test]
    fn leaving_fails_queued_messages() -> anyhow::Result<()> {
        let (store, acc) = setup()?;
        let out = |id: &str| OutgoingMessage {
            encryption: None,
            peer: ROOM.into(),
            kind: MessageKind::GroupChat,
            sender: format!("{ROOM}/alice"),
            id: id.into(),
            body: id.into(),
            stanza: "<message/>".into(),
        };
        let (_, in_flight) = store.queue_message(acc, &out("a"))?;
        store.queue_message(acc, &out("b"))?;
        let failed = store.fail_queued(acc, ROOM, "you left the room", &[in_flight])?;
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].state, MessageState::Failed);
        assert_eq!(store.outbox(acc)?.len(), 1, "the in-flight row stays");
        Ok(())
    }

    #[test]
    fn invitations_are_kept_until_answered() -> anyhow::Result<()> {
        let (store, acc) = setup()?;
        let inv = InvitationRecord {
            room: ROOM.into(),
            inviter: Some("bob@example.org".into()),
            reason: None,
            kind: "direct".into(),
            received_at: 5,
        };
        store.add_invitation(acc, &inv)?;
        store.add_invitation(acc, &inv)?;
        assert_eq!(store.invitations(acc)?.len(), 1);
        assert_eq!(store.take_invitation(acc, ROOM)?, Some(inv));
        assert!(store.invitations(acc)?.is_empty());
        Ok(())
    }
}
