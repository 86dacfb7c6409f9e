//! The open conversation's timeline: a window of loaded messages that grows page by page as
//! the user scrolls (older at the top, newer at the bottom after a jump into history), plus
//! the view rows derived from it (day separators, delivery state, markdown bodies).
//!
//! No Slint types and no I/O: the chat adapter loads pages from the core and applies them
//! here, then mirrors the returned [`Change`]s into the Slint model.
//!
//! Besides stored messages the timeline holds *local notices*: what this session has to
//! say in the conversation without it being a message (a message that could not be
//! encrypted for some devices). They have negative ids, are never paging cursors, and are
//! not stored: they live as long as the app runs (see [`Timeline::add_notice`]).

use std::collections::{HashSet, VecDeque};

use chrono::NaiveDate;
use starling_core::MessageState;
use starling_core::store::{MessageKind, MessageRecord};

use super::encryption;
use super::format;
use super::occupants::author_key;
use super::rooms::nick_of;

/// Messages fetched per page when scrolling.
pub const PAGE: u32 = 100;

/// Delivery state as the view shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    None,
    Pending,
    Sent,
    Delivered,
    Displayed,
    Failed,
}

/// What a retracted message shows instead of its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retraction {
    None,
    /// Its author retracted it (XEP-0424).
    ByAuthor,
    /// A moderator removed it (XEP-0425).
    ByModerator,
}

/// One row of the timeline as the view shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageRow {
    pub id: i64,
    pub outgoing: bool,
    /// What a room said (kicks, configuration changes): centred, not a bubble.
    pub notice: bool,
    pub markdown: String,
    pub text: String,
    pub time: String,
    /// Day separator above this row ("" for none).
    pub day: String,
    pub delivery: Delivery,
    pub edited: bool,
    pub error: String,
    pub highlighted: bool,
    /// The author's nick for an incoming room message ("" otherwise).
    pub author: String,
    /// XEP-0392 hue of the author (occupant id, else nick).
    pub author_hue: f32,
    /// Show the author above this bubble: the first of a run of messages by the same author.
    pub show_author: bool,
    /// It mentions our nick.
    pub mention: bool,
    pub retraction: Retraction,
    /// It travelled end-to-end encrypted: the encryption's name ("OMEMO 2"), "" when not.
    pub encryption: String,
    /// It arrived encrypted and could not be decrypted: why ("" otherwise).
    pub undecryptable: String,
    /// It was decrypted, but its sender's key is not trusted: what to know ("" otherwise).
    pub trust_warning: String,
    /// A warning rather than information (an encryption notice, an undecryptable message).
    pub warning: bool,
    /// The file it shares.
    pub file: Option<FileRow>,
}

/// A shared file as its bubble shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct FileRow {
    pub name: String,
    /// "1.4 MB" ("" when not announced).
    pub size: String,
    /// A picture (shown inline).
    pub image: bool,
    /// On this machine (fetched, or the one we sent): it can be opened and saved.
    pub local: bool,
    /// Ours, still being uploaded.
    pub uploading: bool,
    /// Why fetching it failed ("" otherwise).
    pub error: String,
    /// Width / height as announced (0 when unknown), to give the picture its shape early.
    pub aspect: f32,
}

impl FileRow {
    fn of(m: &MessageRecord) -> Option<FileRow> {
        let a = m.attachment.as_ref().filter(|_| !m.retracted)?;
        Some(FileRow {
            name: a.name.clone(),
            size: a.size.map(starling_core::human_size).unwrap_or_default(),
            image: a.is_image(),
            local: a.local_path.is_some(),
            uploading: a.url.is_empty() && m.state == MessageState::Pending,
            error: a.error.clone().unwrap_or_default(),
            aspect: match (a.width, a.height) {
                (Some(w), Some(h)) if w > 0 && h > 0 => w as f32 / h as f32,
                _ => 0.0,
            },
        })
    }
}

/// A notice of this session in a conversation (not stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalNotice {
    /// Milliseconds since the Unix epoch: where it goes in the timeline.
    pub timestamp: i64,
    pub text: String,
}

/// What the user may do with a message (its context menu).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessageActions {
    pub copy: bool,
    /// Our own message: retract it everywhere (XEP-0424).
    pub retract: bool,
    /// Someone else's message in a room we moderate (XEP-0425).
    pub remove: bool,
}

/// Messages by the same author closer than this are one run (the nick shows once).
const RUN_GAP_MS: i64 = 10 * 60 * 1000;

/// What changed in the row list, to mirror into a UI model.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Replace everything.
    Reset,
    /// `n` rows were inserted at the top.
    Prepended(usize),
    /// `n` rows were appended at the bottom.
    Appended(usize),
    /// Row `i` changed.
    Updated(usize),
}

/// The loaded window of one conversation.
#[derive(Debug)]
pub struct Timeline {
    pub account: String,
    pub peer: String,
    /// A deque: pages are prepended as the user scrolls up, in O(page).
    messages: VecDeque<MessageRecord>,
    /// More messages exist before the first loaded one.
    pub has_older: bool,
    /// The last loaded message is the newest one (new messages are appended live).
    pub at_live_end: bool,
    /// A page request is in flight.
    pub loading: bool,
    /// Message to highlight (a search hit).
    pub highlight: Option<i64>,
    /// Our nick in this room (its mentions are shown in bold).
    pub nick: Option<String>,
    /// Ids of the local notices among `messages` (negative).
    local: HashSet<i64>,
    today: NaiveDate,
}

impl Timeline {
    /// A timeline showing the newest page.
    pub fn at_end(account: &str, peer: &str, page: Vec<MessageRecord>, today: NaiveDate) -> Self {
        let has_older = page.len() >= PAGE as usize;
        Timeline {
            account: account.to_owned(),
            peer: peer.to_owned(),
            messages: page.into(),
            has_older,
            at_live_end: true,
            loading: false,
            highlight: None,
            nick: None,
            local: HashSet::new(),
            today,
        }
    }

    /// A timeline around `hit` (a search result): `older` before it, `newer` after it.
    pub fn around(
        account: &str,
        peer: &str,
        older: Vec<MessageRecord>,
        hit: MessageRecord,
        newer: Vec<MessageRecord>,
        today: NaiveDate,
    ) -> Self {
        let has_older = older.len() >= PAGE as usize;
        let at_live_end = newer.len() < PAGE as usize;
        let highlight = Some(hit.id);
        let mut messages = older;
        messages.push(hit);
        messages.extend(newer);
        Timeline {
            account: account.to_owned(),
            peer: peer.to_owned(),
            messages: messages.into(),
            has_older,
            at_live_end,
            loading: false,
            highlight,
            nick: None,
            local: HashSet::new(),
            today,
        }
    }

    pub fn is(&self, account: &str, peer: &str) -> bool {
        self.account == account && self.peer == peer
    }

    pub fn len(&self) -> usize {
        self.messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// The loaded messages that share a file.
    pub fn file_message_ids(&self) -> Vec<i64> {
        self.messages
            .iter()
            .filter(|m| m.attachment.is_some() && !m.retracted)
            .map(|m| m.id)
            .collect()
    }

    /// A loaded message.
    pub fn message(&self, id: i64) -> Option<&MessageRecord> {
        self.messages.iter().find(|m| m.id == id)
    }

    /// Row index of a message.
    pub fn index_of(&self, id: i64) -> Option<usize> {
        self.messages.iter().position(|m| m.id == id)
    }

    /// Id of the oldest loaded message (cursor for the next older page).
    pub fn oldest_id(&self) -> Option<i64> {
        self.stored().next().map(|m| m.id)
    }

    /// Id of the newest loaded message (cursor for the next newer page).
    pub fn newest_id(&self) -> Option<i64> {
        self.stored().next_back().map(|m| m.id)
    }

    /// The loaded stored messages (without local notices), oldest first.
    fn stored(&self) -> impl DoubleEndedIterator<Item = &MessageRecord> {
        self.messages.iter().filter(|m| !self.local.contains(&m.id))
    }

    /// Adds a local notice where its time puts it, if that is inside the loaded window
    /// (before it: paging does not bring local notices back). Ids are negative and unique
    /// per timeline. Returns the changes to mirror.
    pub fn add_notice(&mut self, notice: &LocalNotice) -> Vec<Change> {
        let ts = notice.timestamp;
        let before_window =
            self.has_older && self.stored().next().is_some_and(|m| ts < m.timestamp);
        let after_window =
            !self.at_live_end && self.stored().next_back().is_some_and(|m| ts > m.timestamp);
        if before_window || after_window {
            return Vec::new();
        }
        let id = -1 - i64::try_from(self.local.len()).unwrap_or(i64::MAX - 1);
        self.local.insert(id);
        let record = MessageRecord {
            id,
            peer: self.peer.clone(),
            outgoing: false,
            sender: String::new(),
            stanza_id: None,
            origin_id: None,
            archive_id: None,
            body: notice.text.clone(),
            timestamp: ts,
            state: MessageState::Received,
            edited: false,
            error: None,
            kind: MessageKind::Notice,
            occupant_id: None,
            mention: false,
            retracted: false,
            retracted_by: None,
            encryption: None,
            undecryptable: None,
            trust_warning: None,
            attachment: None,
            revision: 0,
        };
        // After everything at the same time: it follows what it is about.
        let at = self.messages.partition_point(|m| m.timestamp <= ts);
        self.messages.insert(at, record);
        if at + 1 == self.messages.len() {
            vec![Change::Appended(1)]
        } else {
            vec![Change::Reset]
        }
    }

    /// When a notice about what just happened goes: with the newest message, so that a
    /// message arriving right after it still lands below it (not an out-of-order insert).
    pub fn notice_time(&self, now: i64) -> i64 {
        self.messages.back().map_or(now, |m| m.timestamp)
    }

    /// Applies an older page (oldest first). Returns the changes: the new rows, and the old
    /// first row whose day separator may have disappeared.
    pub fn prepend_older(&mut self, page: Vec<MessageRecord>) -> Vec<Change> {
        self.loading = false;
        self.has_older = page.len() >= PAGE as usize;
        // A page can only overlap the rows at the top (same timestamps at the boundary).
        let page = unseen(page, self.messages.iter().take(PAGE as usize));
        let n = page.len();
        if n == 0 {
            return Vec::new();
        }
        for m in page.into_iter().rev() {
            self.messages.push_front(m);
        }
        let mut changes = vec![Change::Prepended(n)];
        if self.messages.len() > n {
            changes.push(Change::Updated(n));
        }
        changes
    }

    /// Applies a newer page (after a jump into history).
    pub fn append_newer(&mut self, page: Vec<MessageRecord>) -> Vec<Change> {
        self.loading = false;
        self.at_live_end = page.len() < PAGE as usize;
        self.append(page)
    }

    fn append(&mut self, page: Vec<MessageRecord>) -> Vec<Change> {
        // A page can only overlap the rows at the bottom.
        let page = unseen(page, self.messages.iter().rev().take(PAGE as usize));
        if page.is_empty() {
            return Vec::new();
        }
        let n = page.len();
        self.messages.extend(page);
        vec![Change::Appended(n)]
    }

    /// A new message in this conversation (live, our local echo, or from a catch-up).
    /// Appended when the view shows the end and it belongs after the last loaded message;
    /// an archived message older than what is loaded is left for paging to find.
    pub fn on_new(&mut self, msg: MessageRecord) -> Vec<Change> {
        if !self.at_live_end {
            return Vec::new();
        }
        if let Some(last) = self.messages.back()
            && (msg.timestamp, msg.id) < (last.timestamp, last.id)
        {
            // Out of order (an archived message): insert where it belongs if it falls in the
            // loaded window; before the window, paging will bring it.
            if let Some(first) = self.messages.front()
                && (msg.timestamp, msg.id) > (first.timestamp, first.id)
                && self.index_of(msg.id).is_none()
            {
                let at = self
                    .messages
                    .partition_point(|m| (m.timestamp, m.id) < (msg.timestamp, msg.id));
                self.messages.insert(at, msg);
                return vec![Change::Reset];
            }
            return Vec::new();
        }
        self.append(vec![msg])
    }

    /// A stored message changed (delivery state, correction).
    /// A stored message changed; an older record than the one shown (events from
    /// different threads can cross) is ignored.
    pub fn on_update(&mut self, msg: MessageRecord) -> Vec<Change> {
        match self.index_of(msg.id) {
            Some(i) if self.messages[i].revision <= msg.revision => {
                self.messages[i] = msg;
                vec![Change::Updated(i)]
            }
            _ => Vec::new(),
        }
    }

    /// The body of our last outgoing message (for "Up corrects the last message").
    pub fn last_outgoing_text(&self) -> Option<&str> {
        self.messages
            .iter()
            .rev()
            .find(|m| m.outgoing && m.kind != MessageKind::Notice)
            .filter(|m| !m.retracted)
            .map(|m| m.body.as_str())
    }

    /// What may be done with message `id`; `moderator`: we moderate this room.
    pub fn actions(&self, id: i64, moderator: bool) -> MessageActions {
        let Some(m) = self.messages.iter().find(|m| m.id == id) else {
            return MessageActions::default();
        };
        let live = !m.retracted && m.kind != MessageKind::Notice;
        MessageActions {
            copy: !m.body.is_empty(),
            retract: live && m.outgoing && m.state != MessageState::Failed,
            remove: live
                && moderator
                && !m.outgoing
                && m.kind == MessageKind::GroupChat
                && m.archive_id.is_some(),
        }
    }

    /// The text of message `id` (to copy).
    pub fn text_of(&self, id: i64) -> Option<&str> {
        self.messages
            .iter()
            .find(|m| m.id == id)
            .map(|m| m.body.as_str())
    }

    /// Who wrote a room message, as (nick, colour key); None for others.
    fn author(m: &MessageRecord) -> Option<(&str, &str)> {
        (m.kind == MessageKind::GroupChat && !m.outgoing).then(|| {
            let nick = nick_of(&m.sender);
            (nick, author_key(m.occupant_id.as_deref(), nick))
        })
    }

    /// The view row for index `i`.
    pub fn row(&self, i: usize) -> Option<MessageRow> {
        let m = self.messages.get(i)?;
        let t = format::local(m.timestamp);
        let day = t.date_naive();
        let prev_day = i
            .checked_sub(1)
            .and_then(|p| self.messages.get(p))
            .map(|p| format::local(p.timestamp).date_naive());
        let day_label = if prev_day == Some(day) {
            String::new()
        } else {
            format::day_label(day, self.today)
        };
        let author = Self::author(m);
        let prev = i.checked_sub(1).and_then(|p| self.messages.get(p));
        // The nick shows above the first message of a run by the same author (a day
        // separator or a long pause starts a new run).
        let continues_run = author.is_some_and(|(_, key)| {
            day_label.is_empty()
                && prev.is_some_and(|p| {
                    Self::author(p).map(|a| a.1) == Some(key)
                        && m.timestamp - p.timestamp < RUN_GAP_MS
                })
        });
        let show_author = author.is_some() && !continues_run;
        let mention_nick = self.nick.as_deref().filter(|_| m.mention);
        let undecryptable = m
            .undecryptable
            .as_deref()
            .map(encryption::undecryptable_text)
            .unwrap_or_default();
        Some(MessageRow {
            id: m.id,
            outgoing: m.outgoing,
            notice: m.kind == MessageKind::Notice,
            markdown: format::body_markdown_mentioning(&m.body, mention_nick),
            text: m.body.clone(),
            time: format::clock(&t),
            day: day_label,
            delivery: delivery(m),
            edited: m.edited,
            error: m.error.clone().unwrap_or_default(),
            highlighted: self.highlight == Some(m.id),
            author: author.map(|a| a.0.to_owned()).unwrap_or_default(),
            author_hue: author.map(|a| format::nick_hue(a.1)).unwrap_or_default(),
            show_author,
            mention: m.mention && !m.outgoing,
            retraction: match (m.retracted, &m.retracted_by) {
                (false, _) => Retraction::None,
                (true, None) => Retraction::ByAuthor,
                (true, Some(_)) => Retraction::ByModerator,
            },
            encryption: m
                .encryption
                .map(encryption::encryption_name)
                .unwrap_or_default()
                .to_owned(),
            warning: !undecryptable.is_empty() || self.local.contains(&m.id),
            undecryptable,
            trust_warning: m
                .trust_warning
                .as_deref()
                .map(encryption::trust_warning_text)
                .unwrap_or_default(),
            file: FileRow::of(m),
        })
    }

    /// All view rows (for a reset).
    pub fn rows(&self) -> Vec<MessageRow> {
        (0..self.messages.len())
            .filter_map(|i| self.row(i))
            .collect()
    }
}

/// The messages of `page` whose ids are not among `loaded`.
fn unseen<'a>(
    page: Vec<MessageRecord>,
    loaded: impl Iterator<Item = &'a MessageRecord>,
) -> Vec<MessageRecord> {
    let known: HashSet<i64> = loaded.map(|m| m.id).collect();
    page.into_iter()
        .filter(|m| !known.contains(&m.id))
        .collect()
}

fn delivery(m: &MessageRecord) -> Delivery {
    if !m.outgoing {
        return Delivery::None;
    }
    match m.state {
        MessageState::Pending => Delivery::Pending,
        MessageState::Sent => Delivery::Sent,
        MessageState::Delivered => Delivery::Delivered,
        MessageState::Displayed => Delivery::Displayed,
        MessageState::Failed => Delivery::Failed,
        MessageState::Received => Delivery::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn msg(id: i64, ts: i64, outgoing: bool, body: &str) -> MessageRecord {
        MessageRecord {
            encryption: None,
            undecryptable: None,
            trust_warning: None,
            id,
            peer: "bob@example.org".into(),
            outgoing,
            sender: String::new(),
            stanza_id: None,
            origin_id: None,
            archive_id: None,
            body: body.into(),
            timestamp: ts,
            state: if outgoing {
                MessageState::Pending
            } else {
                MessageState::Received
            },
            edited: false,
            error: None,
            kind: MessageKind::Chat,
            occupant_id: None,
            mention: false,
            retracted: false,
            retracted_by: None,
            attachment: None,
            revision: 0,
        }
    }

    const DAY: i64 = 86_400_000;

    fn today() -> NaiveDate {
        format::local(10 * DAY).date_naive()
    }

    #[test]
    fn day_separators_only_on_day_change() {
        let t = Timeline::at_end(
            "a@x",
            "bob@example.org",
            vec![
                msg(1, 8 * DAY + 1000, false, "a"),
                msg(2, 8 * DAY + 2000, true, "b"),
                msg(3, 10 * DAY + 1000, false, "c"),
            ],
            today(),
        );
        let rows = t.rows();
        assert_ne!(rows[0].day, "");
        assert_eq!(rows[1].day, "");
        assert_eq!(rows[2].day, "Today");
        assert_eq!(rows[1].delivery, Delivery::Pending);
        assert_eq!(rows[0].delivery, Delivery::None);
    }

    #[test]
    fn paging_prepends_and_reports_the_boundary_row() {
        let page: Vec<_> = (200..300).map(|i| msg(i, i * 1000, false, "x")).collect();
        let mut t = Timeline::at_end("a@x", "bob@example.org", page, today());
        assert!(t.has_older);
        assert_eq!(t.oldest_id(), Some(200));
        let older: Vec<_> = (150..200).map(|i| msg(i, i * 1000, false, "x")).collect();
        let ch = t.prepend_older(older);
        assert_eq!(ch, vec![Change::Prepended(50), Change::Updated(50)]);
        assert!(!t.has_older, "a short page means the beginning was reached");
        assert_eq!(t.len(), 150);
        // A page that overlaps (same ids) adds nothing.
        assert!(
            t.prepend_older(vec![msg(150, 150_000, false, "x")])
                .is_empty()
        );
    }

    #[test]
    fn live_messages_append_only_at_the_live_end() {
        let mut t = Timeline::around(
            "a@x",
            "bob@example.org",
            vec![msg(1, 1000, false, "a")],
            msg(2, 2000, false, "hit"),
            (3..3 + PAGE as i64)
                .map(|i| msg(i, i * 1000, false, "n"))
                .collect(),
            today(),
        );
        assert!(!t.at_live_end);
        assert_eq!(t.index_of(2), Some(1));
        assert!(t.row(1).is_some_and(|r| r.highlighted));
        assert!(t.on_new(msg(999, 999_000, false, "late")).is_empty());
        let ch = t.append_newer(vec![msg(500, 500_000, false, "z")]);
        assert_eq!(ch, vec![Change::Appended(1)]);
        assert!(t.at_live_end);
        assert_eq!(
            t.on_new(msg(1000, 1_000_000, true, "new")),
            vec![Change::Appended(1)]
        );
        // Updates replace in place; unknown ids are ignored.
        let mut sent = msg(1000, 1_000_000, true, "new");
        sent.state = MessageState::Delivered;
        assert_eq!(t.on_update(sent), vec![Change::Updated(t.len() - 1)]);
        assert_eq!(
            t.row(t.len() - 1).map(|r| r.delivery),
            Some(Delivery::Delivered)
        );
        assert!(t.on_update(msg(4242, 1, false, "?")).is_empty());
        assert_eq!(t.last_outgoing_text(), Some("new"));
        // A correction (revision 2), then a receipt's older record (revision 1) arriving
        // late: the correction stays.
        let mut corrected = msg(1000, 1_000_000, true, "new, corrected");
        corrected.revision = 2;
        let mut receipt = msg(1000, 1_000_000, true, "new");
        receipt.state = MessageState::Delivered;
        receipt.revision = 1;
        assert_eq!(t.on_update(corrected), vec![Change::Updated(t.len() - 1)]);
        assert!(t.on_update(receipt).is_empty());
        assert_eq!(t.last_outgoing_text(), Some("new, corrected"));
    }

    fn room_msg(id: i64, ts: i64, nick: &str, body: &str) -> MessageRecord {
        let mut m = msg(id, ts, false, body);
        m.peer = "tea@c".into();
        m.kind = MessageKind::GroupChat;
        m.sender = format!("tea@c/{nick}");
        m.archive_id = Some(format!("s{id}"));
        m
    }

    #[test]
    fn room_rows_show_authors_once_per_run() {
        let t0 = 10 * DAY;
        let mut mention = room_msg(3, t0 + 3000, "amy", "hi me!");
        mention.mention = true;
        let mut own = room_msg(4, t0 + 4000, "me", "hello");
        own.outgoing = true;
        let mut notice = msg(5, t0 + 5000, false, "bob was kicked");
        notice.kind = MessageKind::Notice;
        let mut gone = room_msg(6, t0 + 6000, "bob", "");
        gone.retracted = true;
        gone.retracted_by = Some("tea@c/mod".into());
        let late = room_msg(7, t0 + 6000 + RUN_GAP_MS, "bob", "later");
        let mut t = Timeline::at_end(
            "a@x",
            "tea@c",
            vec![
                room_msg(1, t0 + 1000, "bob", "one"),
                room_msg(2, t0 + 2000, "bob", "two"),
                mention,
                own,
                notice,
                gone,
                late,
            ],
            today(),
        );
        t.nick = Some("me".into());
        let rows = t.rows();
        let shown: Vec<_> = rows
            .iter()
            .map(|r| (r.author.as_str(), r.show_author))
            .collect();
        assert_eq!(
            shown,
            [
                ("bob", true),
                ("bob", false),
                ("amy", true),
                ("", false),
                ("", false),
                ("bob", true),
                ("bob", true),
            ]
        );
        assert_eq!(rows[0].author_hue, format::nick_hue("bob"));
        assert!(rows[2].mention && rows[2].markdown.contains("**me**"));
        assert!(rows[4].notice && rows[4].author.is_empty());
        assert_eq!(rows[5].retraction, Retraction::ByModerator);
        assert_eq!(rows[3].retraction, Retraction::None);

        // Our own message may be retracted; others' only removed by moderators.
        assert_eq!(
            t.actions(4, false),
            MessageActions {
                copy: true,
                retract: true,
                remove: false
            }
        );
        assert!(!t.actions(1, false).remove && t.actions(1, true).remove);
        assert_eq!(
            t.actions(5, true),
            MessageActions {
                copy: true,
                ..Default::default()
            }
        );
        assert_eq!(
            t.actions(6, true),
            MessageActions::default(),
            "already gone"
        );
        assert_eq!(t.text_of(2), Some("two"));
        assert_eq!(t.last_outgoing_text(), Some("hello"));
        // A retracted last message cannot be corrected.
        let mut r = room_msg(8, t0 + 9_000_000, "me", "");
        r.outgoing = true;
        r.retracted = true;
        t.on_new(r);
        assert_eq!(t.last_outgoing_text(), None);
    }

    #[test]
    fn archived_message_lands_in_order() {
        let mut t = Timeline::at_end(
            "a@x",
            "bob@example.org",
            vec![msg(1, 1000, false, "a"), msg(2, 3000, false, "c")],
            today(),
        );
        assert_eq!(t.on_new(msg(3, 2000, false, "b")), vec![Change::Reset]);
        let bodies: Vec<_> = t.rows().into_iter().map(|r| r.text).collect();
        assert_eq!(bodies, ["a", "b", "c"]);
        // Older than the window: left to paging.
        assert!(t.on_new(msg(4, 500, false, "old")).is_empty());
    }

    #[test]
    fn encrypted_and_undecryptable_rows() {
        use starling_core::store::Encryption;
        let mut locked = msg(1, 1000, true, "secret");
        locked.encryption = Some(Encryption::Omemo2);
        let mut unreadable = msg(2, 2000, false, "");
        unreadable.encryption = Some(Encryption::Omemo);
        unreadable.undecryptable =
            Some("could not decrypt — sent to a device we have no session with".into());
        let mut doubtful = msg(4, 4000, false, "trust me");
        doubtful.encryption = Some(Encryption::Omemo2);
        doubtful.trust_warning =
            Some("sent from bob's device 7, which you marked untrusted".into());
        let t = Timeline::at_end(
            "a@x",
            "bob@example.org",
            vec![locked, unreadable, msg(3, 3000, false, "plain"), doubtful],
            today(),
        );
        let rows = t.rows();
        assert_eq!(rows[0].encryption, "OMEMO 2");
        assert!(rows[0].undecryptable.is_empty() && !rows[0].warning);
        assert_eq!(rows[1].encryption, "OMEMO");
        assert_eq!(
            rows[1].undecryptable,
            "Could not decrypt — sent to a device we have no session with"
        );
        assert!(rows[1].warning && !rows[1].notice);
        assert!(!t.actions(2, false).copy, "nothing to copy");
        assert_eq!(rows[2].encryption, "");
        assert!(rows[2].trust_warning.is_empty());
        assert_eq!(
            rows[3].trust_warning,
            "⚠ Sent from bob's device 7, which you marked untrusted."
        );
        assert_eq!(rows[3].text, "trust me");
    }

    #[test]
    fn local_notices_follow_what_they_are_about() {
        let mut t = Timeline::at_end(
            "a@x",
            "bob@example.org",
            vec![msg(1, 1000, false, "a"), msg(2, 2000, true, "b")],
            today(),
        );
        // Said before the message it is about arrives: it goes with the newest message, and
        // the message lands below it.
        let notice = LocalNotice {
            timestamp: t.notice_time(9_999),
            text: "Not encrypted for one device".into(),
        };
        assert_eq!(notice.timestamp, 2000);
        assert_eq!(t.add_notice(&notice), vec![Change::Appended(1)]);
        assert_eq!(t.on_new(msg(3, 2500, true, "c")), vec![Change::Appended(1)]);
        let rows = t.rows();
        let shown: Vec<_> = rows
            .iter()
            .map(|r| (r.id < 0, r.notice, r.warning, r.text.as_str()))
            .collect();
        assert_eq!(
            shown,
            [
                (false, false, false, "a"),
                (false, false, false, "b"),
                (true, true, true, "Not encrypted for one device"),
                (false, false, false, "c"),
            ]
        );
        // Never a paging cursor, never "the last message" to correct.
        assert_eq!(t.newest_id(), Some(3));
        assert_eq!(t.oldest_id(), Some(1));
        assert_eq!(t.last_outgoing_text(), Some("c"));
        // An older notice goes in its place (a reset); a second one gets its own id.
        let earlier = LocalNotice {
            timestamp: 1500,
            text: "earlier".into(),
        };
        assert_eq!(t.add_notice(&earlier), vec![Change::Reset]);
        let ids: Vec<_> = t.rows().into_iter().map(|r| r.id).collect();
        assert_eq!(ids, [1, -2, 2, -1, 3]);

        // Outside a window that does not reach the start: left out.
        let page: Vec<_> = (100..100 + PAGE as i64)
            .map(|i| msg(i, i * 1000, false, "x"))
            .collect();
        let mut long = Timeline::at_end("a@x", "bob@example.org", page, today());
        assert!(long.add_notice(&earlier).is_empty());
        assert_eq!(long.len(), PAGE as usize);
    }
}
