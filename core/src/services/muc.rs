//! Group chat (XEP-0045): the state of one room in this session, as a plain struct that reads
//! occupant presences and says what changed. The account actor owns one per room and does
//! the I/O; everything here is unit-tested without a network.

use std::collections::BTreeMap;
use std::time::Instant;

use jid::BareJid;
use serde::Serialize;

use crate::proto::muc::{Affiliation, OccupantPresence, Role, RoomInfo, status};

/// Where we are with a room in this session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Asking the room what it supports (to choose how much history to ask for).
    Discovering,
    /// Join presence sent; waiting for our own presence.
    Joining,
    Joined,
    /// Not in the room (left, removed, or the join failed).
    Out,
}

/// Someone in a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Occupant {
    pub nick: String,
    /// Their real bare JID, when the room shows it to us.
    pub jid: Option<String>,
    pub role: Role,
    pub affiliation: Affiliation,
    /// XEP-0421: stable across nick changes.
    pub occupant_id: Option<String>,
    pub show: Option<String>,
    pub status: Option<String>,
}

impl Occupant {
    fn from_presence(p: &OccupantPresence) -> Occupant {
        Occupant {
            nick: p.nick.clone(),
            jid: p.item.jid.as_ref().map(|j| j.to_bare().to_string()),
            role: p.item.role,
            affiliation: p.item.affiliation,
            occupant_id: p.occupant_id.clone(),
            show: p.show.clone(),
            status: p.status.clone(),
        }
    }
}

/// Why someone left a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Departure {
    Left,
    Kicked,
    Banned,
    /// Their affiliation changed and the room is members-only (321).
    AffiliationChanged,
    /// The room became members-only (322).
    MembersOnly,
    /// The service is shutting down (332).
    Shutdown,
    /// The room removed them after an error (333).
    Error,
    Destroyed,
}

/// A departure with who did it and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Removal {
    pub kind: Departure,
    pub actor: Option<String>,
    pub reason: Option<String>,
    /// A room to go to instead (destroyed rooms).
    pub alternate: Option<String>,
}

impl Removal {
    fn from_presence(p: &OccupantPresence) -> Removal {
        let kind = if p.destroyed.is_some() {
            Departure::Destroyed
        } else if p.has(status::BANNED) {
            Departure::Banned
        } else if p.has(status::KICKED) {
            Departure::Kicked
        } else if p.has(status::AFFILIATION_REMOVED) {
            Departure::AffiliationChanged
        } else if p.has(status::MEMBERS_ONLY_REMOVED) {
            Departure::MembersOnly
        } else if p.has(status::SHUTDOWN) {
            Departure::Shutdown
        } else if p.has(status::ERROR_REMOVED) {
            Departure::Error
        } else {
            Departure::Left
        };
        let reason = p
            .destroyed
            .as_ref()
            .and_then(|d| d.reason.clone())
            .or_else(|| p.item.reason.clone());
        Removal {
            kind,
            actor: p.item.actor.clone(),
            reason,
            alternate: p.destroyed.as_ref().and_then(|d| d.alternate.clone()),
        }
    }

    /// One sentence for a person; `who` is "You" or a nick.
    pub fn describe(&self, who: &str) -> String {
        let you = who == "You";
        let verb = match self.kind {
            Departure::Left => return format!("{who} left"),
            Departure::Kicked => "kicked",
            Departure::Banned => "banned",
            Departure::AffiliationChanged => "removed because the membership changed",
            Departure::MembersOnly => "removed because the room is now members-only",
            Departure::Shutdown => "disconnected because the service is shutting down",
            Departure::Error => "removed after an error",
            Departure::Destroyed => {
                let mut s = "The room was destroyed".to_owned();
                if let Some(r) = &self.reason {
                    s.push_str(&format!(": {r}"));
                }
                if let Some(a) = &self.alternate {
                    s.push_str(&format!(" (it continues in {a})"));
                }
                return s;
            }
        };
        let mut s = format!("{who} {} {verb}", if you { "were" } else { "was" });
        if let Some(a) = &self.actor {
            s.push_str(&format!(" by {a}"));
        }
        if let Some(r) = &self.reason {
            s.push_str(&format!(": {r}"));
        }
        s
    }
}

/// What an occupant presence changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Our own presence arrived: we are in the room.
    Joined {
        created: bool,
        nick: String,
    },
    /// Someone arrived or their role/affiliation/status changed.
    Occupant(Occupant),
    /// Someone else went away.
    Departed {
        nick: String,
        removal: Removal,
    },
    NickChanged {
        old: String,
        new: String,
        own: bool,
    },
    /// We are no longer in the room (and did not ask to leave, unless `Departure::Left`).
    Removed(Removal),
    /// Our own role or affiliation changed while in the room.
    OwnRoleChanged {
        role: Role,
        affiliation: Affiliation,
    },
}

/// One room in this session.
#[derive(Debug)]
pub struct RoomSession {
    pub jid: BareJid,
    /// Our nick (the one we asked for until the room confirms or assigns one).
    pub nick: String,
    pub phase: Phase,
    pub occupants: BTreeMap<String, Occupant>,
    /// Our own entry.
    pub own: Option<Occupant>,
    pub info: Option<RoomInfo>,
    pub password: Option<String>,
    /// Last time anything came from the room (for XEP-0410 self-pings).
    pub last_heard: Instant,
    /// A self-ping is outstanding.
    pub pinging: bool,
    /// The room archive catch-up of this visit finished (live archive ids may then move
    /// the stored position).
    pub caught_up: bool,
    /// We asked to leave: the next own unavailable presence is expected.
    pub leaving: bool,
    /// Archive results of the current catch-up page, stored together when it completes.
    pub page: Vec<crate::store::IncomingMessage>,
    /// Archive messages fetched in this catch-up.
    pub fetched: u64,
}

impl RoomSession {
    pub fn new(jid: BareJid, nick: String, password: Option<String>) -> RoomSession {
        RoomSession {
            jid,
            nick,
            phase: Phase::Discovering,
            occupants: BTreeMap::new(),
            own: None,
            info: None,
            password,
            last_heard: Instant::now(),
            pinging: false,
            caught_up: false,
            leaving: false,
            page: Vec::new(),
            fetched: 0,
        }
    }

    /// In the room or on the way in: group chat from it is accepted, and a second join
    /// would be a duplicate.
    pub fn present(&self) -> bool {
        self.phase != Phase::Out
    }

    /// Starts over (a rejoin): the occupant list is rebuilt from the join presences.
    pub fn reset_for_join(&mut self) {
        self.occupants.clear();
        self.own = None;
        self.phase = Phase::Joining;
        self.pinging = false;
        self.caught_up = false;
        self.leaving = false;
        self.page.clear();
        self.fetched = 0;
    }

    fn is_own(&self, p: &OccupantPresence) -> bool {
        p.has(status::SELF) || (p.nick == self.nick && self.phase == Phase::Joining)
    }

    /// Applies an occupant presence.
    pub fn on_presence(&mut self, p: &OccupantPresence) -> Vec<Change> {
        self.last_heard = Instant::now();
        let own = self.is_own(p);
        let mut out = Vec::new();
        if p.available {
            let occ = Occupant::from_presence(p);
            if own {
                let was = self.own.replace(occ.clone());
                self.nick = p.nick.clone();
                if self.phase != Phase::Joined {
                    self.phase = Phase::Joined;
                    out.push(Change::Joined {
                        created: p.has(status::CREATED),
                        nick: p.nick.clone(),
                    });
                } else if let Some(was) = was
                    && (was.role != occ.role || was.affiliation != occ.affiliation)
                {
                    out.push(Change::OwnRoleChanged {
                        role: occ.role,
                        affiliation: occ.affiliation,
                    });
                }
            }
            self.occupants.insert(p.nick.clone(), occ.clone());
            out.push(Change::Occupant(occ));
            return out;
        }
        // Unavailable.
        let removed = self.occupants.remove(&p.nick);
        if p.has(status::NICK_CHANGED)
            && let Some(new) = p.item.nick.clone()
        {
            if own {
                self.nick = new.clone();
            }
            out.push(Change::NickChanged {
                old: p.nick.clone(),
                new,
                own,
            });
            return out;
        }
        let removal = Removal::from_presence(p);
        if own && self.phase != Phase::Joined && removal.kind == Departure::Left {
            // The tail of an earlier visit (we left, then joined again at once).
            return out;
        }
        if own {
            self.phase = Phase::Out;
            self.own = None;
            self.occupants.clear();
            let asked = std::mem::take(&mut self.leaving);
            if !(asked && removal.kind == Departure::Left) {
                out.push(Change::Removed(removal));
            }
        } else if removed.is_some() || removal.kind != Departure::Left {
            out.push(Change::Departed {
                nick: p.nick.clone(),
                removal,
            });
        }
        out
    }
}

/// The timeline note for status codes a room sends in a message (XEP-0045 §10.2.1).
pub fn config_notice(codes: &[u16]) -> Option<String> {
    let notes: Vec<&str> = codes
        .iter()
        .filter_map(|c| match *c {
            status::LOGGING_ON => Some("This room is now logged (it keeps an archive)"),
            status::LOGGING_OFF => Some("This room is no longer logged"),
            status::NOW_NON_ANONYMOUS => {
                Some("This room is now non-anonymous: everyone can see your address")
            }
            status::NOW_SEMI_ANONYMOUS => {
                Some("This room is now semi-anonymous: only moderators can see your address")
            }
            status::NOW_FULLY_ANONYMOUS => Some("This room is now fully anonymous"),
            status::CONFIG_CHANGED => Some("The room configuration changed"),
            _ => None,
        })
        .collect();
    (!notes.is_empty()).then(|| notes.join(". "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::muc::{Destroyed, Item};

    fn room() -> RoomSession {
        let jid = BareJid::new("room@conf.example.org").expect("valid");
        let mut r = RoomSession::new(jid.clone(), "alice".into(), None);
        r.reset_for_join();
        r
    }

    fn pres(nick: &str, available: bool, codes: &[u16], role: Role) -> OccupantPresence {
        OccupantPresence {
            room: BareJid::new("room@conf.example.org").expect("valid"),
            nick: nick.into(),
            available,
            item: Item {
                role,
                affiliation: Affiliation::Member,
                ..Item::default()
            },
            codes: codes.to_vec(),
            occupant_id: None,
            show: None,
            status: None,
            destroyed: None,
        }
    }

    #[test]
    fn join_burst_then_self_presence() {
        let mut r = room();
        let ch = r.on_presence(&pres("bob", true, &[], Role::Participant));
        assert_eq!(ch.len(), 1);
        assert_eq!(r.phase, Phase::Joining);
        let ch = r.on_presence(&pres("alice", true, &[110, 201], Role::Moderator));
        assert!(matches!(&ch[0], Change::Joined { created: true, nick } if nick == "alice"));
        assert_eq!(r.phase, Phase::Joined);
        assert_eq!(r.occupants.len(), 2);
        // Voice revoked from us while in the room.
        let ch = r.on_presence(&pres("alice", true, &[110], Role::Visitor));
        assert!(ch.contains(&Change::OwnRoleChanged {
            role: Role::Visitor,
            affiliation: Affiliation::Member
        }));
    }

    #[test]
    fn nick_changes_kicks_and_our_removal() {
        let mut r = room();
        r.on_presence(&pres("alice", true, &[110], Role::Participant));
        r.on_presence(&pres("bob", true, &[], Role::Participant));
        let mut nc = pres("bob", false, &[303], Role::Participant);
        nc.item.nick = Some("robert".into());
        let ch = r.on_presence(&nc);
        assert!(matches!(&ch[0], Change::NickChanged { new, own: false, .. } if new == "robert"));
        r.on_presence(&pres("robert", true, &[], Role::Participant));

        let mut kick = pres("robert", false, &[307], Role::None);
        kick.item.actor = Some("alice".into());
        kick.item.reason = Some("flooding".into());
        let ch = r.on_presence(&kick);
        match &ch[0] {
            Change::Departed { nick, removal } => {
                assert_eq!(nick, "robert");
                assert_eq!(
                    removal.describe(nick),
                    "robert was kicked by alice: flooding"
                );
            }
            other => panic!("{other:?}"),
        }

        let mut ban = pres("alice", false, &[110, 301], Role::None);
        ban.item.reason = Some("bye".into());
        let ch = r.on_presence(&ban);
        match &ch[0] {
            Change::Removed(rm) => {
                assert_eq!(rm.kind, Departure::Banned);
                assert_eq!(rm.describe("You"), "You were banned: bye");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(r.phase, Phase::Out);
        assert!(r.occupants.is_empty());
    }

    #[test]
    fn asked_leave_is_not_a_removal_but_destroy_is() {
        let mut r = room();
        r.on_presence(&pres("alice", true, &[110], Role::Participant));
        r.leaving = true;
        assert!(
            r.on_presence(&pres("alice", false, &[110], Role::None))
                .is_empty()
        );
        r.reset_for_join();
        r.on_presence(&pres("alice", true, &[110], Role::Participant));
        let mut d = pres("alice", false, &[110], Role::None);
        d.destroyed = Some(Destroyed {
            alternate: Some("new@conf.example.org".into()),
            reason: Some("moved".into()),
        });
        match &r.on_presence(&d)[0] {
            Change::Removed(rm) => assert_eq!(
                rm.describe("You"),
                "The room was destroyed: moved (it continues in new@conf.example.org)"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn config_notices() {
        assert!(config_notice(&[172]).is_some_and(|s| s.contains("non-anonymous")));
        assert_eq!(config_notice(&[110]), None);
    }
}
