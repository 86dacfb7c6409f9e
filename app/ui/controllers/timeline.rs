//! The open conversation's timeline: a window of loaded messages that grows page by page as
//! the user scrolls (older at the top, newer at the bottom after a jump into history), plus
//! the view rows derived from it (day separators, delivery state, markdown bodies).
//!
//! No Slint types and no I/O: the chat adapter loads pages from the core and applies them
//! here, then mirrors the returned [`Change`]s into the Slint model.

use std::collections::{HashSet, VecDeque};

use chrono::NaiveDate;
use starling_core::MessageState;
use starling_core::store::MessageRecord;

use super::format;

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

/// One row of the timeline as the view shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageRow {
    pub id: i64,
    pub outgoing: bool,
    pub markdown: String,
    pub text: String,
    pub time: String,
    /// Day separator above this row ("" for none).
    pub day: String,
    pub delivery: Delivery,
    pub edited: bool,
    pub error: String,
    pub highlighted: bool,
}

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

    /// Row index of a message.
    pub fn index_of(&self, id: i64) -> Option<usize> {
        self.messages.iter().position(|m| m.id == id)
    }

    /// Id of the oldest loaded message (cursor for the next older page).
    pub fn oldest_id(&self) -> Option<i64> {
        self.messages.front().map(|m| m.id)
    }

    /// Id of the newest loaded message (cursor for the next newer page).
    pub fn newest_id(&self) -> Option<i64> {
        self.messages.back().map(|m| m.id)
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
    pub fn on_update(&mut self, msg: MessageRecord) -> Vec<Change> {
        match self.index_of(msg.id) {
            Some(i) => {
                self.messages[i] = msg;
                vec![Change::Updated(i)]
            }
            None => Vec::new(),
        }
    }

    /// The body of our last outgoing message (for "Up corrects the last message").
    pub fn last_outgoing_text(&self) -> Option<&str> {
        self.messages
            .iter()
            .rev()
            .find(|m| m.outgoing)
            .map(|m| m.body.as_str())
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
        Some(MessageRow {
            id: m.id,
            outgoing: m.outgoing,
            markdown: format::body_markdown(&m.body),
            text: m.body.clone(),
            time: format::clock(&t),
            day: day_label,
            delivery: delivery(m),
            edited: m.edited,
            error: m.error.clone().unwrap_or_default(),
            highlighted: self.highlight == Some(m.id),
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
            kind: starling_core::store::MessageKind::Chat,
            occupant_id: None,
            mention: false,
            retracted: false,
            retracted_by: None,
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
}
