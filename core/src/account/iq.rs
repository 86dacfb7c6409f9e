//! IQs we sent and wait for: generated ids, the expected responder, and a deadline.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jid::{BareJid, Jid};
use tokio::sync::oneshot;

use crate::api::Result;

/// How long we wait for any IQ response before giving up on it.
pub const IQ_TIMEOUT: Duration = Duration::from_secs(60);

/// What an outstanding IQ was for; its response is routed by this.
#[derive(Debug)]
pub enum Pending {
    RosterGet,
    /// A roster change the user asked for on `jid`; `then_subscribe` sends a subscription
    /// request after the server accepted the item. The reply waits for the roster push.
    RosterSet {
        jid: BareJid,
        reply: Option<oneshot::Sender<Result<()>>>,
        then_subscribe: bool,
    },
    Carbons,
    /// Our OMEMO bundle, republished after a pre-key was used.
    OmemoBundle,
    DiscoAccount,
    DiscoServer,
    Mam {
        queryid: String,
    },
    /// A request made through [`crate::account::Command::Iq`]: the answer goes back as is.
    Raw {
        reply: oneshot::Sender<Result<Option<minidom::Element>>>,
    },
    /// disco#info of a room before joining it.
    RoomInfo {
        room: BareJid,
    },
    /// A page of a room's archive.
    RoomMam {
        room: BareJid,
        queryid: String,
        latest: bool,
    },
    /// The configuration form of a room we just created, to fill with `config`.
    RoomConfigForm {
        room: BareJid,
        config: crate::proto::muc::RoomConfig,
    },
    /// The submitted configuration (or instant-room acceptance) of a room we created.
    RoomConfigured {
        room: BareJid,
    },
    /// XEP-0410 self-ping.
    SelfPing {
        room: BareJid,
    },
    /// Our XEP-0402 bookmarks at session start.
    Bookmarks,
    /// Legacy XEP-0048 bookmarks (servers without XEP-0402 compatibility).
    LegacyBookmarks,
    /// XEP-0084 avatar data announced by `jid`'s metadata.
    AvatarData {
        jid: BareJid,
        id: String,
    },
    /// The vCard-temp of `jid`, whose presence announced the photo `id` (XEP-0153).
    VcardPhoto {
        jid: BareJid,
        id: String,
    },
    /// Publishing (`Some`) or retracting (`None`) the bookmark of a room.
    BookmarkSet {
        room: BareJid,
        published: bool,
    },
}

#[derive(Debug)]
struct Entry {
    pending: Pending,
    to: Option<Jid>,
    deadline: Instant,
}

/// Outstanding IQs of one session.
#[derive(Debug, Default)]
pub struct IqTracker {
    entries: HashMap<String, Entry>,
}

impl IqTracker {
    pub fn insert(&mut self, id: String, to: Option<Jid>, pending: Pending) {
        self.entries.insert(
            id,
            Entry {
                pending,
                to,
                deadline: Instant::now() + IQ_TIMEOUT,
            },
        );
    }

    /// Takes the entry for a response, but only if it comes from whom we asked. A response to
    /// a request without 'to' (addressed to our own account) may come without 'from', from
    /// our bare JID, or from our full JID (RFC 6120 §8.1.2.1).
    pub fn take(&mut self, id: &str, from: Option<&Jid>, own: &BareJid) -> Option<Pending> {
        let entry = self.entries.get(id)?;
        let ok = match (&entry.to, from) {
            (None, None) => true,
            (None, Some(f)) => f.to_bare() == *own,
            (Some(to), Some(f)) => to == f,
            (Some(to), None) => to.to_bare() == *own,
        };
        if !ok {
            tracing::warn!(id, from = ?from.map(|f| f.to_string()), "IQ response from an unexpected sender ignored");
            return None;
        }
        self.entries.remove(id).map(|e| e.pending)
    }

    /// Removes and returns everything past its deadline.
    pub fn expired(&mut self, now: Instant) -> Vec<Pending> {
        let ids: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| e.deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        ids.into_iter()
            .filter_map(|id| self.entries.remove(&id).map(|e| e.pending))
            .collect()
    }

    /// Everything outstanding (a fresh session: none of these will be answered).
    pub fn drain(&mut self) -> Vec<Pending> {
        self.entries.drain().map(|(_, e)| e.pending).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_only_from_the_addressee() -> anyhow::Result<()> {
        let own = BareJid::new("alice@example.org")?;
        let mut t = IqTracker::default();
        t.insert("1".into(), None, Pending::RosterGet);
        let mallory = Jid::new("mallory@example.org")?;
        assert!(t.take("1", Some(&mallory), &own).is_none());
        let me = Jid::new("alice@example.org")?;
        assert!(matches!(
            t.take("1", Some(&me), &own),
            Some(Pending::RosterGet)
        ));
        assert!(t.take("1", None, &own).is_none(), "taken only once");

        let server = Jid::new("example.org")?;
        t.insert("2".into(), Some(server.clone()), Pending::DiscoAccount);
        assert!(t.take("2", Some(&mallory), &own).is_none());
        assert!(t.take("2", Some(&server), &own).is_some());
        Ok(())
    }

    #[test]
    fn expiry() {
        let mut t = IqTracker::default();
        t.insert("1".into(), None, Pending::Carbons);
        assert!(t.expired(Instant::now()).is_empty());
        assert_eq!(t.expired(Instant::now() + IQ_TIMEOUT).len(), 1);
        assert!(t.drain().is_empty());
    }
}
