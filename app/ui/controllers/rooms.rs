//! Group chat as the views show it: our state in each room (from the core's events and the
//! stored room list), the room header, the occupant lists, and the forms of the join,
//! create, settings and invite dialogs with their validation and wording.

use std::collections::HashMap;

use starling_core::store::{InvitationRecord, RoomRecord};
use starling_core::{Affiliation, Occupant, Role, RoomConfig, RoomInfo, RoomState};

use super::occupants::{Actions, ListChange, OccupantList};

/// What kind of conversation a peer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConvKind {
    #[default]
    Chat,
    Room,
    /// With one occupant of a room (`room@service/nick`).
    Private,
}

impl ConvKind {
    /// From a conversation record's kind (`chat`, `groupchat`, `private`) and its peer.
    pub fn of(kind: &str, peer: &str) -> ConvKind {
        match kind {
            "groupchat" => ConvKind::Room,
            "private" => ConvKind::Private,
            _ if peer.contains('/') => ConvKind::Private,
            _ => ConvKind::Chat,
        }
    }
}

/// The room and the nick of a private conversation's peer (`room@service/nick`).
pub fn split_occupant(peer: &str) -> Option<(&str, &str)> {
    peer.split_once('/')
        .filter(|(r, n)| !r.is_empty() && !n.is_empty())
}

/// The nick in a room message's sender (`room@service/nick`); "" for the room itself.
pub fn nick_of(sender: &str) -> &str {
    sender.split_once('/').map_or("", |(_, n)| n)
}

/// A room's name for lists and headers: its name, else its address's local part.
pub fn display_name(name: Option<&str>, jid: &str) -> String {
    match name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => n.to_owned(),
        None => jid.split('@').next().unwrap_or(jid).to_owned(),
    }
}

/// Our state in a room.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RoomStatus {
    /// The account is not connected (it rejoins when it is).
    #[default]
    Offline,
    Joining,
    Joined,
    /// We left (here or on another device).
    Left,
    /// The room removed us; a sentence saying why.
    Removed(String),
    /// Joining failed; why.
    Failed(String),
}

/// One room as the views know it.
#[derive(Debug, Default)]
pub struct RoomView {
    pub status: RoomStatus,
    pub nick: String,
    pub role: Role,
    pub affiliation: Affiliation,
    pub name: Option<String>,
    pub subject: String,
    pub occupants: OccupantList,
    /// Archive messages fetched by a running catch-up.
    pub syncing: Option<u64>,
}

impl RoomView {
    pub fn is_self(&self, nick: &str) -> bool {
        self.status == RoomStatus::Joined && nick == self.nick
    }

    pub fn can_moderate(&self) -> bool {
        self.status == RoomStatus::Joined && self.role == Role::Moderator
    }

    pub fn can_configure(&self) -> bool {
        self.status == RoomStatus::Joined && self.affiliation == Affiliation::Owner
    }
}

/// How the header shows our state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Banner {
    /// Nothing to say: we are in the room.
    None,
    /// Informational (joining, offline).
    Info,
    /// We are out and may try again (left, removed, failed).
    Problem,
}

/// The header of an open room.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomHeader {
    pub title: String,
    /// The subject, else the room's address.
    pub subtitle: String,
    pub occupants: usize,
    pub banner: Banner,
    pub status_text: String,
    /// The button next to a problem: "Rejoin", "Try again", "Join" ("" for none).
    pub action: String,
    pub nick: String,
    pub role: Role,
    pub affiliation: Affiliation,
    pub can_moderate: bool,
    pub can_configure: bool,
    pub joined: bool,
    /// Leaving makes sense (in the room or on the way in).
    pub can_leave: bool,
}

/// All rooms of all accounts.
#[derive(Debug, Default)]
pub struct Rooms {
    rooms: HashMap<(String, String), RoomView>,
}

fn key(account: &str, room: &str) -> (String, String) {
    (account.to_owned(), room.to_owned())
}

impl Rooms {
    pub fn get(&self, account: &str, room: &str) -> Option<&RoomView> {
        self.rooms.get(&key(account, room))
    }

    pub fn contains(&self, account: &str, room: &str) -> bool {
        self.get(account, room).is_some()
    }

    fn entry(&mut self, account: &str, room: &str) -> &mut RoomView {
        self.rooms.entry(key(account, room)).or_default()
    }

    /// The stored rooms of an account (at start and after bookmark changes). Events are
    /// newer than the store: a state already known from events is kept.
    pub fn load(&mut self, account: &str, records: &[RoomRecord]) {
        for r in records {
            let v = self.entry(account, &r.jid);
            v.name = r.name.clone();
            if let Some(s) = &r.subject {
                v.subject = s.clone();
            }
            if v.nick.is_empty() || v.status != RoomStatus::Joined {
                v.nick = r.nick.clone();
            }
            match (&r.removed, r.autojoin, &v.status) {
                (Some(why), _, RoomStatus::Offline | RoomStatus::Left) => {
                    v.status = RoomStatus::Removed(why.clone());
                }
                (None, false, RoomStatus::Offline) => v.status = RoomStatus::Left,
                _ => {}
            }
        }
    }

    /// Our state in a room changed. Returns the occupant list's changes (emptied when we
    /// are not in the room, or start over).
    pub fn on_state(&mut self, account: &str, room: &str, state: &RoomState) -> Vec<ListChange> {
        let v = self.entry(account, room);
        // The core follows a removal with a failed join carrying the same sentence; the
        // removal says more (and offers Rejoin), so it stays.
        if matches!(state, RoomState::Failed { .. }) && matches!(v.status, RoomStatus::Removed(_)) {
            return Vec::new();
        }
        let (status, clear) = match state {
            RoomState::Joining => (RoomStatus::Joining, true),
            RoomState::Joined {
                nick,
                role,
                affiliation,
            } => {
                v.nick = nick.clone();
                v.role = *role;
                v.affiliation = *affiliation;
                (RoomStatus::Joined, false)
            }
            RoomState::Left => (RoomStatus::Left, true),
            RoomState::Removed { reason } => (RoomStatus::Removed(reason.clone()), true),
            RoomState::Failed { error } => (RoomStatus::Failed(error.clone()), true),
        };
        v.status = status;
        if clear {
            v.syncing = None;
            v.role = Role::None;
            v.affiliation = Affiliation::None;
            v.occupants.clear()
        } else {
            Vec::new()
        }
    }

    pub fn on_occupant(
        &mut self,
        account: &str,
        room: &str,
        occupant: &Occupant,
        present: bool,
    ) -> Vec<ListChange> {
        let v = self.entry(account, room);
        if present {
            if v.is_self(&occupant.nick) {
                v.role = occupant.role;
                v.affiliation = occupant.affiliation;
            }
            v.occupants.upsert(occupant)
        } else {
            v.occupants.remove(&occupant.nick)
        }
    }

    /// A fresh occupant snapshot from the core. The core answers only for rooms we are in,
    /// so a room whose state we missed (the window opened after the join) counts as joined;
    /// our role comes from our own entry.
    pub fn set_occupants(
        &mut self,
        account: &str,
        room: &str,
        occupants: &[Occupant],
    ) -> Vec<ListChange> {
        let v = self.entry(account, room);
        if matches!(v.status, RoomStatus::Offline | RoomStatus::Joining)
            && let Some(me) = occupants.iter().find(|o| o.nick == v.nick)
        {
            v.status = RoomStatus::Joined;
            v.role = me.role;
            v.affiliation = me.affiliation;
        }
        v.occupants.replace(occupants)
    }

    pub fn on_subject(&mut self, account: &str, room: &str, subject: &str) {
        self.entry(account, room).subject = subject.to_owned();
    }

    pub fn on_sync(&mut self, account: &str, room: &str, fetched: u64, done: bool) {
        self.entry(account, room).syncing = (!done).then_some(fetched);
    }

    /// The account went offline: its rooms wait to be rejoined; nobody is known present.
    /// Returns the rooms whose occupant lists were emptied.
    pub fn offline(&mut self, account: &str) -> Vec<String> {
        let mut cleared = Vec::new();
        for ((a, room), v) in &mut self.rooms {
            if a != account {
                continue;
            }
            if matches!(v.status, RoomStatus::Joined | RoomStatus::Joining) {
                v.status = RoomStatus::Offline;
                v.syncing = None;
            }
            if !v.occupants.clear().is_empty() {
                cleared.push(room.clone());
            }
        }
        cleared
    }

    pub fn forget_account(&mut self, account: &str) {
        self.rooms.retain(|(a, _), _| a != account);
    }

    /// A room's name for the views.
    pub fn name_of(&self, account: &str, room: &str) -> String {
        display_name(
            self.get(account, room).and_then(|v| v.name.as_deref()),
            room,
        )
    }

    /// Our nick in a room, when we know it.
    pub fn own_nick(&self, account: &str, room: &str) -> Option<&str> {
        self.get(account, room)
            .map(|v| v.nick.as_str())
            .filter(|n| !n.is_empty())
    }

    /// What we may do to an occupant.
    pub fn actions_for(&self, account: &str, room: &str, nick: &str) -> Actions {
        let Some(v) = self.get(account, room) else {
            return Actions::default();
        };
        match v.occupants.get(nick) {
            Some(target) if v.status == RoomStatus::Joined => {
                Actions::for_target(v.role, v.affiliation, target, v.is_self(nick))
            }
            _ => Actions::default(),
        }
    }

    pub fn header(&self, account: &str, room: &str) -> RoomHeader {
        let empty = RoomView::default();
        let v = self.get(account, room).unwrap_or(&empty);
        let (banner, status_text, action) = match &v.status {
            RoomStatus::Joined => match v.syncing {
                Some(n) if n > 0 => (
                    Banner::Info,
                    format!("Catching up with the room: {n} messages"),
                    "",
                ),
                _ => (Banner::None, String::new(), ""),
            },
            RoomStatus::Joining => (Banner::Info, "Joining…".to_owned(), ""),
            RoomStatus::Offline => (
                Banner::Info,
                "Offline: you will rejoin when the account connects.".to_owned(),
                "",
            ),
            RoomStatus::Left => (Banner::Problem, "You left this room.".to_owned(), "Join"),
            RoomStatus::Removed(why) => (Banner::Problem, removed_text(why), "Rejoin"),
            RoomStatus::Failed(e) => (Banner::Problem, format!("Could not join: {e}"), "Try again"),
        };
        let subject = v.subject.trim();
        RoomHeader {
            title: display_name(v.name.as_deref(), room),
            subtitle: if subject.is_empty() {
                room.to_owned()
            } else {
                subject.lines().next().unwrap_or(subject).to_owned()
            },
            occupants: v.occupants.len(),
            banner,
            status_text,
            action: action.to_owned(),
            nick: v.nick.clone(),
            role: v.role,
            affiliation: v.affiliation,
            can_moderate: v.can_moderate(),
            can_configure: v.can_configure(),
            joined: v.status == RoomStatus::Joined,
            can_leave: matches!(v.status, RoomStatus::Joined | RoomStatus::Joining),
        }
    }
}

/// "You were removed: …", unless the core's sentence already says who and how ("You were
/// kicked by bob: spam", "The room was destroyed").
fn removed_text(why: &str) -> String {
    let why = why.trim();
    if why.starts_with("You ") || why.starts_with("The room") {
        why.to_owned()
    } else if why.is_empty() {
        "You were removed from this room.".to_owned()
    } else {
        format!("You were removed: {why}")
    }
}

/// "12 participants".
pub fn occupant_count(n: usize) -> String {
    match n {
        0 => String::new(),
        1 => "1 participant".to_owned(),
        n => format!("{} participants", super::status::thousands(n as u64)),
    }
}

/// A pending invitation as the banner shows it: a title and a detail line.
pub fn invitation_text(inv: &InvitationRecord, room_name: Option<&str>) -> (String, String) {
    let who = inv
        .inviter
        .as_deref()
        .filter(|i| !i.is_empty())
        .unwrap_or("Someone");
    let room = match room_name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => format!("{n} ({})", inv.room),
        None => inv.room.clone(),
    };
    let detail = inv
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| format!("“{r}”"))
        .unwrap_or_default();
    (format!("{who} invited you to {room}"), detail)
}

/// An error in a form, with the field it is about (for highlighting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormError {
    pub field: &'static str,
    pub text: String,
}

impl FormError {
    fn new(field: &'static str, text: impl Into<String>) -> FormError {
        FormError {
            field,
            text: text.into(),
        }
    }
}

/// The room address typed in the join or create dialog: `room@service`, or just a name
/// when we know a group chat service to put it on.
pub fn room_address(input: &str, service: Option<&str>) -> Result<String, FormError> {
    let input = input.trim().trim_start_matches("xmpp:");
    let input = input.split(['?', '#']).next().unwrap_or(input);
    if input.is_empty() {
        return Err(FormError::new(
            "room",
            "Enter the room's address, like tea@conference.example.org.",
        ));
    }
    let full = match (input.contains('@'), service) {
        (true, _) => input.to_owned(),
        (false, Some(s)) => format!("{}@{s}", input.to_lowercase()),
        (false, None) => {
            return Err(FormError::new(
                "room",
                "A room address has the form name@service, like tea@conference.example.org.",
            ));
        }
    };
    starling_core::parse_room(&full)
        .map(|j| j.to_string())
        .map_err(|_| FormError::new("room", format!("“{full}” is not a valid room address.")))
}

/// The nick to join with: what was typed, else `None` (the core picks the room's last nick
/// or our account's local part).
pub fn nick_choice(input: &str) -> Result<Option<String>, FormError> {
    let nick = input.trim();
    if nick.chars().any(char::is_control) {
        return Err(FormError::new(
            "nick",
            "A nickname cannot contain line breaks.",
        ));
    }
    Ok(Some(nick.to_owned()).filter(|n| !n.is_empty()))
}

/// The nick a join would use when the field stays empty (shown as its placeholder).
pub fn default_nick(account: &str, room: Option<&RoomRecord>) -> String {
    match room {
        Some(r) if !r.nick.is_empty() => r.nick.clone(),
        _ => account.split('@').next().unwrap_or(account).to_owned(),
    }
}

/// The room settings as the create and settings dialogs edit them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoomSettings {
    pub name: String,
    pub description: String,
    pub members_only: bool,
    pub moderated: bool,
    pub non_anonymous: bool,
    pub persistent: bool,
    pub public: bool,
    pub password_protected: bool,
    /// A new password ("" keeps the current one).
    pub password: String,
    pub subject: String,
}

impl RoomSettings {
    /// The defaults of the create dialog: a persistent public room.
    pub fn for_new_room() -> RoomSettings {
        RoomSettings {
            persistent: true,
            public: true,
            ..RoomSettings::default()
        }
    }

    /// What the room says about itself now.
    pub fn from_info(info: &RoomInfo, subject: &str) -> RoomSettings {
        RoomSettings {
            name: info.name.clone().unwrap_or_default(),
            description: info.description.clone().unwrap_or_default(),
            members_only: info.members_only,
            moderated: info.moderated,
            non_anonymous: info.non_anonymous,
            persistent: info.persistent,
            public: info.public,
            password_protected: info.password_protected,
            password: String::new(),
            subject: subject.to_owned(),
        }
    }

    /// The configuration of a room to create: every setting, so the room is exactly as the
    /// dialog showed.
    pub fn create_config(&self) -> Result<RoomConfig, FormError> {
        let password = match (self.password_protected, self.password.is_empty()) {
            (true, true) => {
                return Err(FormError::new(
                    "password",
                    "Enter a password, or untick “Password protected”.",
                ));
            }
            (true, false) => Some(self.password.clone()),
            (false, _) => None,
        };
        let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        Ok(RoomConfig {
            name: text(&self.name),
            description: text(&self.description),
            members_only: Some(self.members_only),
            moderated: Some(self.moderated),
            non_anonymous: Some(self.non_anonymous),
            persistent: Some(self.persistent),
            public: Some(self.public),
            password,
        })
    }

    /// What changed from `before` (only those settings are sent, so a room that lacks an
    /// untouched setting still accepts the change), and the new subject if it changed.
    pub fn changes_from(
        &self,
        before: &RoomSettings,
    ) -> Result<(RoomConfig, Option<String>), FormError> {
        let flag = |now: bool, was: bool| (now != was).then_some(now);
        let text = |now: &str, was: &str| (now.trim() != was.trim()).then(|| now.trim().to_owned());
        let password = match (
            self.password_protected,
            before.password_protected,
            self.password.is_empty(),
        ) {
            (true, _, false) => Some(self.password.clone()),
            (true, true, true) => None,
            (true, false, true) => {
                return Err(FormError::new(
                    "password",
                    "Enter a password, or untick “Password protected”.",
                ));
            }
            (false, true, _) => Some(String::new()),
            (false, false, _) => None,
        };
        let config = RoomConfig {
            name: text(&self.name, &before.name),
            description: text(&self.description, &before.description),
            members_only: flag(self.members_only, before.members_only),
            moderated: flag(self.moderated, before.moderated),
            non_anonymous: flag(self.non_anonymous, before.non_anonymous),
            persistent: flag(self.persistent, before.persistent),
            public: flag(self.public, before.public),
            password,
        };
        let subject = text(&self.subject, &before.subject);
        Ok((config, subject))
    }
}

/// The invite dialog's address, checked.
pub fn invitee(input: &str) -> Result<String, FormError> {
    let input = input.trim().trim_start_matches("xmpp:");
    if input.is_empty() {
        return Err(FormError::new(
            "jid",
            "Enter the address of the person to invite.",
        ));
    }
    starling_core::parse_bare(input)
        .map(|j| j.to_string())
        .map_err(|_| FormError::new("jid", format!("“{input}” is not a valid address.")))
}

/// A core error in words for the room views (the core's own wording, minus its advice for
/// the command line).
pub fn explain(e: &starling_core::Error) -> String {
    use starling_core::Error;
    match e {
        Error::NotConnected(a) => format!("{a} is offline; try again when it is connected."),
        Error::NotInRoom(r) => format!("You are not in {r}; join it first."),
        Error::JoinFailed { reason, .. } => capitalise(reason),
        Error::Timeout(_) => "The server did not answer in time; try again.".to_owned(),
        other => capitalise(&other.to_string()),
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Why joining (or creating) failed, pointed at the field to fix.
pub fn join_error(e: &starling_core::Error) -> FormError {
    use starling_core::Error;
    let field = match e {
        Error::InvalidJid(_) | Error::RoomExists(_) => "room",
        Error::JoinFailed { reason, .. } if reason.contains("password") => "password",
        Error::JoinFailed { reason, .. } if reason.contains("nickname") => "nick",
        Error::Refused(r) if r.contains("nickname") => "nick",
        _ => "",
    };
    FormError::new(field, explain(e))
}

/// An optional reason: trimmed, `None` when empty.
pub fn reason(input: &str) -> Option<String> {
    Some(input.trim().to_owned()).filter(|r| !r.is_empty())
}

/// A public room found by browsing, as the list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub jid: String,
    pub name: String,
    pub service: String,
}

/// Rooms found by browsing, filtered by name or address and sorted by name.
pub fn filter_listings(all: &[Listing], filter: &str) -> Vec<Listing> {
    let needle = filter.trim().to_lowercase();
    let mut out: Vec<Listing> = all
        .iter()
        .filter(|l| {
            needle.is_empty()
                || l.name.to_lowercase().contains(&needle)
                || l.jid.to_lowercase().contains(&needle)
        })
        .cloned()
        .collect();
    out.sort_by(|a, b| {
        a.name
            .to_lowercase()
            .cmp(&b.name.to_lowercase())
            .then_with(|| a.jid.cmp(&b.jid))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(jid: &str, nick: &str, autojoin: bool, removed: Option<&str>) -> RoomRecord {
        RoomRecord {
            jid: jid.into(),
            nick: nick.into(),
            name: Some("Tea".into()),
            autojoin,
            bookmarked: true,
            subject: Some("Earl Grey\nand more".into()),
            info: None,
            mam_last_id: None,
            mam_synced_at: None,
            removed: removed.map(Into::into),
        }
    }

    fn occ(nick: &str, role: Role, aff: Affiliation) -> Occupant {
        Occupant {
            nick: nick.into(),
            jid: Some(format!("{nick}@x")),
            role,
            affiliation: aff,
            occupant_id: None,
            show: None,
            status: None,
        }
    }

    const A: &str = "me@x";
    const R: &str = "tea@conference.x";

    #[test]
    fn kinds_and_names() {
        assert_eq!(ConvKind::of("groupchat", R), ConvKind::Room);
        assert_eq!(ConvKind::of("private", "tea@c/bob"), ConvKind::Private);
        assert_eq!(ConvKind::of("chat", "bob@x"), ConvKind::Chat);
        assert_eq!(split_occupant("tea@c/bob/x"), Some(("tea@c", "bob/x")));
        assert_eq!(split_occupant("tea@c"), None);
        assert_eq!(nick_of("tea@c/Bob"), "Bob");
        assert_eq!(nick_of("tea@c"), "");
        assert_eq!(display_name(Some("  "), R), "tea");
        assert_eq!(display_name(Some("Tea Room"), R), "Tea Room");
    }

    #[test]
    fn states_from_the_store_then_events() {
        let mut rooms = Rooms::default();
        rooms.load(
            A,
            &[
                record(R, "me", true, None),
                record("old@c", "me", false, None),
                record("ban@c", "me", false, Some("You were banned by bob: enough")),
            ],
        );
        let h = rooms.header(A, R);
        assert_eq!(
            (h.title.as_str(), h.subtitle.as_str()),
            ("Tea", "Earl Grey")
        );
        assert_eq!(h.banner, Banner::Info, "offline until the account connects");
        assert!(!h.can_leave, "leaving needs a connection");
        assert_eq!(rooms.header(A, "old@c").action, "Join");
        let ban = rooms.header(A, "ban@c");
        assert_eq!(ban.banner, Banner::Problem);
        assert_eq!(ban.status_text, "You were banned by bob: enough");
        assert_eq!(ban.action, "Rejoin");

        rooms.on_state(A, R, &RoomState::Joining);
        assert_eq!(rooms.header(A, R).status_text, "Joining…");
        rooms.on_state(
            A,
            R,
            &RoomState::Joined {
                nick: "me".into(),
                role: Role::Participant,
                affiliation: Affiliation::None,
            },
        );
        rooms.on_occupant(A, R, &occ("me", Role::Participant, Affiliation::None), true);
        rooms.on_occupant(A, R, &occ("bob", Role::Moderator, Affiliation::Owner), true);
        let h = rooms.header(A, R);
        assert_eq!(h.banner, Banner::None);
        assert_eq!(h.occupants, 2);
        assert!(!h.can_moderate && h.joined);
        // Our own presence with a new role updates what we may do.
        rooms.on_occupant(A, R, &occ("me", Role::Moderator, Affiliation::Admin), true);
        assert!(rooms.header(A, R).can_moderate);
        assert!(rooms.actions_for(A, R, "bob").private_message);
        assert!(
            !rooms.actions_for(A, R, "bob").kick,
            "an owner outranks an admin"
        );
        assert_eq!(rooms.actions_for(A, R, "me"), Actions::default());
        // A catch-up shows in the header.
        rooms.on_sync(A, R, 120, false);
        assert!(rooms.header(A, R).status_text.contains("120"));
        rooms.on_sync(A, R, 300, true);
        assert_eq!(rooms.header(A, R).banner, Banner::None);

        // Kicked: the occupant list empties and the reason shows with a Rejoin button.
        let ch = rooms.on_state(
            A,
            R,
            &RoomState::Removed {
                reason: "You were kicked by bob: bye".into(),
            },
        );
        assert_eq!(ch, vec![ListChange::Reset]);
        rooms.on_state(
            A,
            R,
            &RoomState::Failed {
                error: "You were kicked by bob: bye".into(),
            },
        );
        let h = rooms.header(A, R);
        assert_eq!(h.status_text, "You were kicked by bob: bye");
        assert_eq!(h.occupants, 0);
        assert!(!h.can_moderate);
        // A reload from the store does not undo what the events said.
        rooms.load(A, &[record(R, "me", true, None)]);
        assert_eq!(rooms.header(A, R).action, "Rejoin");
        assert_eq!(
            removed_text("spam"),
            "You were removed: spam",
            "a bare reason gets a sentence around it"
        );
    }

    #[test]
    fn offline_clears_presence() {
        let mut rooms = Rooms::default();
        rooms.on_state(
            A,
            R,
            &RoomState::Joined {
                nick: "me".into(),
                role: Role::Participant,
                affiliation: Affiliation::None,
            },
        );
        rooms.on_occupant(
            A,
            R,
            &occ("bob", Role::Participant, Affiliation::None),
            true,
        );
        assert_eq!(rooms.offline(A), vec![R.to_owned()]);
        // A snapshot with our own entry says we are in (the join happened before we looked).
        rooms.set_occupants(A, R, &[occ("me", Role::Moderator, Affiliation::Owner)]);
        assert!(rooms.header(A, R).can_configure);
        rooms.offline(A);
        assert_eq!(
            rooms.get(A, R).map(|v| v.status.clone()),
            Some(RoomStatus::Offline)
        );
        assert!(rooms.offline("other@x").is_empty());
        rooms.forget_account(A);
        assert!(!rooms.contains(A, R));
    }

    #[test]
    fn join_form_validation() {
        assert_eq!(
            room_address(" tea@conference.x ", None),
            Ok("tea@conference.x".to_owned())
        );
        assert_eq!(
            room_address("xmpp:tea@conference.x?join", None),
            Ok("tea@conference.x".to_owned())
        );
        assert_eq!(
            room_address("Tea", Some("conference.x")),
            Ok("tea@conference.x".to_owned())
        );
        assert_eq!(room_address("", None).map_err(|e| e.field), Err("room"));
        assert!(room_address("tea", None).is_err());
        assert!(room_address("@conference.x", None).is_err());
        assert_eq!(nick_choice("  "), Ok(None));
        assert_eq!(nick_choice(" Al "), Ok(Some("Al".into())));
        assert!(nick_choice("a\nb").is_err());
        assert_eq!(default_nick("alice@x", None), "alice");
        assert_eq!(
            default_nick("alice@x", Some(&record(R, "Ally", false, None))),
            "Ally"
        );
        assert_eq!(invitee("bob@x"), Ok("bob@x".into()));
        assert!(invitee("").is_err() && invitee("x").is_err());
        assert_eq!(reason("  "), None);
    }

    #[test]
    fn settings_send_only_what_changed() -> Result<(), FormError> {
        let info = RoomInfo {
            name: Some("Tea".into()),
            persistent: true,
            public: true,
            password_protected: true,
            ..RoomInfo::default()
        };
        let before = RoomSettings::from_info(&info, "Earl Grey");
        let (cfg, subject) = before.changes_from(&before)?;
        assert_eq!(cfg, RoomConfig::default());
        assert_eq!(subject, None);

        let mut after = before.clone();
        after.moderated = true;
        after.name = "Tea Room ".into();
        after.subject = "Green".into();
        let (cfg, subject) = after.changes_from(&before)?;
        assert_eq!(
            cfg,
            RoomConfig {
                name: Some("Tea Room".into()),
                moderated: Some(true),
                ..RoomConfig::default()
            }
        );
        assert_eq!(subject.as_deref(), Some("Green"));

        // Unticking the password removes it; a new one replaces it.
        after.password_protected = false;
        assert_eq!(after.changes_from(&before)?.0.password, Some(String::new()));
        after.password_protected = true;
        after.password = "s3cret".into();
        assert_eq!(
            after.changes_from(&before)?.0.password.as_deref(),
            Some("s3cret")
        );
        // Protecting an open room needs a password.
        let mut open = RoomSettings::from_info(&RoomInfo::default(), "");
        let was = open.clone();
        open.password_protected = true;
        assert_eq!(
            open.changes_from(&was).map_err(|e| e.field),
            Err("password")
        );

        let new = RoomSettings::for_new_room();
        let cfg = new.create_config()?;
        assert_eq!(cfg.persistent, Some(true));
        assert_eq!(cfg.public, Some(true));
        assert_eq!(cfg.members_only, Some(false));
        assert_eq!(cfg.name, None);
        Ok(())
    }

    #[test]
    fn errors_in_words_point_at_fields() {
        use starling_core::Error;
        let e = Error::JoinFailed {
            room: R.into(),
            reason: "the room needs a password, or the one given is wrong".into(),
        };
        assert_eq!(
            join_error(&e),
            FormError {
                field: "password",
                text: "The room needs a password, or the one given is wrong".into()
            }
        );
        let e = Error::JoinFailed {
            room: R.into(),
            reason: "that nickname is already in use in the room".into(),
        };
        assert_eq!(join_error(&e).field, "nick");
        assert_eq!(join_error(&Error::RoomExists(R.into())).field, "room");
        assert_eq!(
            explain(&Error::NotInRoom(R.into())),
            format!("You are not in {R}; join it first.")
        );
    }

    #[test]
    fn invitations_and_listings() {
        let inv = InvitationRecord {
            room: R.into(),
            inviter: Some("bob@x".into()),
            reason: Some(" tea? ".into()),
            kind: "direct".into(),
            received_at: 0,
        };
        assert_eq!(
            invitation_text(&inv, None),
            (format!("bob@x invited you to {R}"), "“tea?”".to_owned())
        );
        assert_eq!(
            invitation_text(&inv, Some("Tea")).0,
            format!("bob@x invited you to Tea ({R})")
        );
        assert_eq!(occupant_count(1), "1 participant");
        assert_eq!(occupant_count(1200), "1,200 participants");
        let all = vec![
            Listing {
                jid: "b@c".into(),
                name: "Zebra".into(),
                service: "c".into(),
            },
            Listing {
                jid: "a@c".into(),
                name: "apple".into(),
                service: "c".into(),
            },
        ];
        let names: Vec<_> = filter_listings(&all, "")
            .into_iter()
            .map(|l| l.name)
            .collect();
        assert_eq!(names, ["apple", "Zebra"]);
        assert_eq!(filter_listings(&all, "B@").len(), 1);
    }
}
