//! Who is who: contact names, presence per account, and the rows of the conversation list
//! and the contact list built from them.

use std::collections::HashMap;

use chrono::NaiveDate;
use starling_core::store::{ContactRecord, ConversationRecord, Subscription};

use super::format;
use super::rooms::{self, ConvKind};

/// Presence as the views show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PresenceKind {
    #[default]
    Offline,
    Online,
    Away,
    Busy,
}

impl PresenceKind {
    /// From an available presence's `<show/>` (None = plain available).
    pub fn from_show(show: Option<&str>) -> Self {
        match show {
            None | Some("chat") => PresenceKind::Online,
            Some("dnd") => PresenceKind::Busy,
            Some(_) => PresenceKind::Away,
        }
    }

    fn rank(self) -> u8 {
        match self {
            PresenceKind::Online => 3,
            PresenceKind::Busy => 2,
            PresenceKind::Away => 1,
            PresenceKind::Offline => 0,
        }
    }
}

/// One available resource.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Resource {
    kind: PresenceKind,
    status: Option<String>,
}

/// Names, rosters and presence of all accounts.
#[derive(Debug, Default)]
pub struct People {
    contacts: HashMap<String, Vec<ContactRecord>>,
    /// account -> bare JID -> the nickname they chose (XEP-0172).
    nicks: HashMap<String, HashMap<String, String>>,
    /// account -> bare JID -> full JID -> resource presence.
    presence: HashMap<String, HashMap<String, HashMap<String, Resource>>>,
}

/// A row of the conversation list.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationRow {
    pub account: String,
    pub peer: String,
    pub name: String,
    pub initials: String,
    pub tint: (u8, u8, u8),
    pub preview: String,
    pub time: String,
    pub unread: u32,
    /// Unread messages that mention us (rooms).
    pub mentions: u32,
    pub presence: PresenceKind,
    pub selected: bool,
    pub kind: ConvKind,
}

/// The count for the window title and the navigation badge: unread messages of chats and
/// private chats, and of rooms only those that mention us (a busy room must not keep the
/// badge lit).
pub fn total_unread(convs: &[(String, ConversationRecord)]) -> u32 {
    convs
        .iter()
        .map(|(_, c)| match ConvKind::of(&c.kind, &c.peer) {
            ConvKind::Room => c.mentions,
            ConvKind::Chat | ConvKind::Private => c.unread,
        })
        .sum()
}

/// A row of the contact list.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactRow {
    pub account: String,
    pub jid: String,
    pub name: String,
    pub initials: String,
    pub tint: (u8, u8, u8),
    pub presence: PresenceKind,
    pub status: String,
    pub section: String,
    pub detail: String,
}

/// Longest nickname shown (a nickname is one short line; the rest is cut).
const MAX_NICK_CHARS: usize = 64;

/// A name someone gave: its first line, trimmed and cut to a sensible length; `None` when
/// that leaves nothing.
fn clean_name(name: Option<&str>) -> Option<String> {
    let line = name?.lines().map(str::trim).find(|l| !l.is_empty())?;
    Some(line.chars().take(MAX_NICK_CHARS).collect())
}

/// The name a person goes by: the name the user gave them in the roster, else the
/// nickname they chose (XEP-0172), else their address.
pub fn display_name(roster: Option<&str>, nick: Option<&str>, jid: &str) -> String {
    roster
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .or_else(|| clean_name(nick))
        .unwrap_or_else(|| jid.to_owned())
}

fn bare(jid: &str) -> &str {
    jid.split('/').next().unwrap_or(jid)
}

impl People {
    pub fn set_contacts(&mut self, account: &str, contacts: Vec<ContactRecord>) {
        self.contacts.insert(account.to_owned(), contacts);
    }

    pub fn upsert_contact(&mut self, account: &str, contact: ContactRecord) {
        let list = self.contacts.entry(account.to_owned()).or_default();
        match list.iter_mut().find(|c| c.jid == contact.jid) {
            Some(c) => *c = contact,
            None => list.push(contact),
        }
    }

    pub fn remove_contact(&mut self, account: &str, jid: &str) {
        if let Some(list) = self.contacts.get_mut(account) {
            list.retain(|c| c.jid != jid);
        }
    }

    pub fn forget_account(&mut self, account: &str) {
        self.contacts.remove(account);
        self.presence.remove(account);
        self.nicks.remove(account);
    }

    /// The nickname `jid` chose (from their profile); returns whether it changed.
    pub fn set_nick(&mut self, account: &str, jid: &str, nick: Option<&str>) -> bool {
        let per_account = self.nicks.entry(account.to_owned()).or_default();
        match clean_name(nick) {
            Some(n) => per_account.insert(jid.to_owned(), n.clone()) != Some(n),
            None => per_account.remove(jid).is_some(),
        }
    }

    /// The nickname `jid` chose, if we know one.
    pub fn nick(&self, account: &str, jid: &str) -> Option<&str> {
        self.nicks
            .get(account)
            .and_then(|m| m.get(jid))
            .map(String::as_str)
    }

    /// A name for `jid` other than their address: the roster name, else their nickname.
    pub fn known_name(&self, account: &str, jid: &str) -> Option<String> {
        self.roster_name(account, jid)
            .or_else(|| self.nick(account, jid).map(str::to_owned))
    }

    /// A presence from a contact's resource (`from` is a full or bare JID).
    pub fn on_presence(
        &mut self,
        account: &str,
        from: &str,
        available: bool,
        show: Option<&str>,
        status: Option<&str>,
    ) {
        let per_contact = self
            .presence
            .entry(account.to_owned())
            .or_default()
            .entry(bare(from).to_owned())
            .or_default();
        if available {
            per_contact.insert(
                from.to_owned(),
                Resource {
                    kind: PresenceKind::from_show(show),
                    status: status.map(str::to_owned),
                },
            );
        } else if from.contains('/') {
            per_contact.remove(from);
        } else {
            per_contact.clear();
        }
    }

    /// The account went offline: we know nothing about anyone's presence any more.
    pub fn clear_presence(&mut self, account: &str) {
        self.presence.remove(account);
    }

    /// The most available resource's presence and status.
    pub fn presence_of(&self, account: &str, jid: &str) -> (PresenceKind, String) {
        self.presence
            .get(account)
            .and_then(|m| m.get(jid))
            .and_then(|res| res.values().max_by_key(|r| r.kind.rank()))
            .map(|r| (r.kind, r.status.clone().unwrap_or_default()))
            .unwrap_or_default()
    }

    /// Display name: the roster name, else their nickname, else the JID (see
    /// [`display_name`]).
    pub fn name_of(&self, account: &str, jid: &str) -> String {
        display_name(
            self.roster_name(account, jid).as_deref(),
            self.nick(account, jid),
            jid,
        )
    }

    /// The name the user gave a contact in the roster, if any.
    pub fn roster_name(&self, account: &str, jid: &str) -> Option<String> {
        self.contacts
            .get(account)
            .and_then(|l| l.iter().find(|c| c.jid == jid))
            .and_then(|c| c.name.as_deref())
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
    }

    /// The account's roster groups (unsorted, with repeats): the circles a post can go to.
    pub fn groups(&self, account: &str) -> Vec<&str> {
        self.contacts
            .get(account)
            .into_iter()
            .flatten()
            .flat_map(|c| c.groups.iter().map(String::as_str))
            .collect()
    }

    /// Conversation rows: most recent first, filtered by name or address.
    pub fn conversation_rows(
        &self,
        convs: &[(String, ConversationRecord)],
        filter: &str,
        selected: Option<(&str, &str)>,
        today: NaiveDate,
    ) -> Vec<ConversationRow> {
        let needle = filter.trim().to_lowercase();
        // Room names, for the rows of private chats with their occupants.
        let room_names: HashMap<(&str, &str), &str> = convs
            .iter()
            .filter_map(|(a, c)| Some(((a.as_str(), c.peer.as_str()), c.name.as_deref()?)))
            .collect();
        let mut rows: Vec<(i64, ConversationRow)> = convs
            .iter()
            .filter_map(|(account, c)| {
                let kind = ConvKind::of(&c.kind, &c.peer);
                let name = match kind {
                    ConvKind::Chat => self.name_of(account, &c.peer),
                    ConvKind::Room => rooms::display_name(c.name.as_deref(), &c.peer),
                    ConvKind::Private => match rooms::split_occupant(&c.peer) {
                        Some((room, nick)) => {
                            let room_name = room_names.get(&(account.as_str(), room)).copied();
                            format!("{nick} ({})", rooms::display_name(room_name, room))
                        }
                        None => c.peer.clone(),
                    },
                };
                if !needle.is_empty()
                    && !name.to_lowercase().contains(&needle)
                    && !c.peer.to_lowercase().contains(&needle)
                {
                    return None;
                }
                let (presence, _) = match kind {
                    ConvKind::Chat => self.presence_of(account, &c.peer),
                    ConvKind::Room | ConvKind::Private => Default::default(),
                };
                let initials = match kind {
                    ConvKind::Private => {
                        format::initials(rooms::split_occupant(&c.peer).map_or("", |x| x.1))
                    }
                    _ => format::initials(&name),
                };
                let preview = c
                    .last_message
                    .as_deref()
                    .unwrap_or("")
                    .lines()
                    .next()
                    .unwrap_or("")
                    .chars()
                    .take(120)
                    .collect();
                Some((
                    c.last_activity,
                    ConversationRow {
                        account: account.clone(),
                        peer: c.peer.clone(),
                        initials,
                        tint: format::tint(&c.peer),
                        name,
                        preview,
                        time: format::list_time(&format::local(c.last_activity), today),
                        unread: c.unread,
                        mentions: c.mentions,
                        presence,
                        selected: selected == Some((account.as_str(), c.peer.as_str())),
                        kind,
                    },
                ))
            })
            .collect();
        rows.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.name.cmp(&b.1.name)));
        rows.into_iter().map(|(_, r)| r).collect()
    }

    /// Contact rows grouped by roster group (a contact in two groups shows in both),
    /// groups sorted by name with ungrouped contacts last, online contacts first in a group.
    pub fn contact_rows(&self) -> Vec<ContactRow> {
        const UNGROUPED: &str = "Contacts";
        let mut entries: Vec<(String, ContactRow)> = Vec::new();
        let mut accounts: Vec<_> = self.contacts.keys().collect();
        accounts.sort();
        for account in accounts {
            for c in &self.contacts[account] {
                let name = self.name_of(account, &c.jid);
                let (presence, status) = self.presence_of(account, &c.jid);
                let row = ContactRow {
                    account: account.clone(),
                    jid: c.jid.clone(),
                    initials: format::initials(&name),
                    tint: format::tint(&c.jid),
                    name,
                    presence,
                    status: if status.is_empty() {
                        c.jid.clone()
                    } else {
                        status
                    },
                    section: String::new(),
                    detail: subscription_detail(c),
                };
                if c.groups.is_empty() {
                    entries.push((String::new(), row));
                } else {
                    for g in &c.groups {
                        entries.push((g.clone(), row.clone()));
                    }
                }
            }
        }
        entries.sort_by(|(ga, a), (gb, b)| {
            (ga.is_empty(), ga.to_lowercase())
                .cmp(&(gb.is_empty(), gb.to_lowercase()))
                .then(b.presence.rank().cmp(&a.presence.rank()))
                .then_with(|| a.name.to_lowercase().cmp(&b.name.to_lowercase()))
        });
        let mut last: Option<String> = None;
        entries
            .into_iter()
            .map(|(g, mut row)| {
                if last.as_ref() != Some(&g) {
                    row.section = if g.is_empty() {
                        UNGROUPED.to_owned()
                    } else {
                        g.clone()
                    };
                    last = Some(g);
                }
                row
            })
            .collect()
    }
}

fn subscription_detail(c: &ContactRecord) -> String {
    match (c.subscription, c.ask) {
        (Subscription::Both, _) => String::new(),
        (_, true) => "request sent".to_owned(),
        (Subscription::From, false) => "you don't see their presence".to_owned(),
        (Subscription::To, false) => "they don't see your presence".to_owned(),
        (Subscription::None, false) => "no presence sharing".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(jid: &str, name: Option<&str>, groups: &[&str]) -> ContactRecord {
        ContactRecord {
            jid: jid.into(),
            name: name.map(Into::into),
            subscription: Subscription::Both,
            ask: false,
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        }
    }

    fn conv(peer: &str, at: i64, unread: u32) -> ConversationRecord {
        ConversationRecord {
            peer: peer.into(),
            last_activity: at,
            last_message: Some(format!("hello from {peer}\nsecond line")),
            unread,
            kind: "chat".into(),
            name: None,
            mentions: 0,
        }
    }

    #[test]
    fn conversations_sorted_named_and_filtered() {
        let mut p = People::default();
        p.set_contacts("a@x", vec![contact("bob@x", Some("Bob Builder"), &[])]);
        p.on_presence("a@x", "bob@x/phone", true, Some("away"), None);
        p.on_presence("a@x", "bob@x/pc", true, None, Some("at work"));
        let convs = vec![
            ("a@x".to_owned(), conv("carol@x", 1_000, 0)),
            ("a@x".to_owned(), conv("bob@x", 2_000, 3)),
        ];
        let today = format::local(2_000).date_naive();
        let rows = p.conversation_rows(&convs, "", Some(("a@x", "carol@x")), today);
        assert_eq!(rows[0].name, "Bob Builder");
        assert_eq!(rows[0].initials, "BB");
        assert_eq!(rows[0].unread, 3);
        assert_eq!(rows[0].presence, PresenceKind::Online, "best resource wins");
        assert_eq!(rows[0].preview, "hello from bob@x");
        assert!(rows[1].selected);
        let rows = p.conversation_rows(&convs, "BUILD", None, today);
        assert_eq!(rows.len(), 1);
        let rows = p.conversation_rows(&convs, "carol", None, today);
        assert_eq!(rows[0].peer, "carol@x");
        // The pc goes offline: the phone's "away" remains; then all go.
        p.on_presence("a@x", "bob@x/pc", false, None, None);
        assert_eq!(p.presence_of("a@x", "bob@x").0, PresenceKind::Away);
        p.clear_presence("a@x");
        assert_eq!(p.presence_of("a@x", "bob@x").0, PresenceKind::Offline);
    }

    #[test]
    fn rooms_and_private_chats_in_the_list() {
        let p = People::default();
        let mut room = conv("tea@conference.x", 3_000, 7);
        room.kind = "groupchat".into();
        room.name = Some("Tea Room".into());
        room.mentions = 2;
        let mut bare = conv("quiet@conference.x", 500, 0);
        bare.kind = "groupchat".into();
        let mut pm = conv("tea@conference.x/Bob Smith", 2_000, 1);
        pm.kind = "private".into();
        let convs = vec![
            ("a@x".to_owned(), bare),
            ("a@x".to_owned(), pm),
            ("a@x".to_owned(), room),
            ("a@x".to_owned(), conv("carol@x", 1_000, 4)),
        ];
        let today = format::local(3_000).date_naive();
        let rows = p.conversation_rows(&convs, "", None, today);
        let view: Vec<_> = rows
            .iter()
            .map(|r| (r.name.as_str(), r.kind, r.unread, r.mentions))
            .collect();
        assert_eq!(
            view,
            [
                ("Tea Room", ConvKind::Room, 7, 2),
                ("Bob Smith (Tea Room)", ConvKind::Private, 1, 0),
                ("carol@x", ConvKind::Chat, 4, 0),
                ("quiet", ConvKind::Room, 0, 0),
            ],
            "sorted by activity, rooms named, private chats with their room"
        );
        assert_eq!(rows[0].initials, "TR");
        assert_eq!(rows[1].initials, "BS");
        // The filter finds rooms by name.
        assert_eq!(p.conversation_rows(&convs, "tea r", None, today).len(), 2);
        // Rooms count only mentions towards the total.
        assert_eq!(total_unread(&convs), 2 + 1 + 4);
    }

    #[test]
    fn names_roster_then_nickname_then_address() {
        assert_eq!(display_name(Some("Bob"), Some("Bobby"), "bob@x"), "Bob");
        assert_eq!(display_name(Some("  "), Some(" Bobby "), "bob@x"), "Bobby");
        assert_eq!(
            display_name(None, Some("\n  \nBobby\nline two"), "bob@x"),
            "Bobby"
        );
        assert_eq!(display_name(None, Some(" "), "bob@x"), "bob@x");
        assert_eq!(display_name(None, None, "bob@x"), "bob@x");
        let long = "x".repeat(500);
        assert_eq!(display_name(None, Some(&long), "bob@x").chars().count(), 64);

        let mut p = People::default();
        p.set_contacts(
            "a@x",
            vec![
                contact("bob@x", Some("Bob"), &[]),
                contact("zed@x", None, &[]),
            ],
        );
        assert!(p.set_nick("a@x", "bob@x", Some("Bobby")));
        assert!(p.set_nick("a@x", "zed@x", Some("Zeddy")));
        assert!(!p.set_nick("a@x", "zed@x", Some("Zeddy ")), "unchanged");
        assert_eq!(p.name_of("a@x", "bob@x"), "Bob", "the roster name wins");
        assert_eq!(p.name_of("a@x", "zed@x"), "Zeddy");
        assert_eq!(p.name_of("b@x", "zed@x"), "zed@x", "per account");
        assert_eq!(p.known_name("a@x", "zed@x").as_deref(), Some("Zeddy"));
        assert_eq!(p.known_name("a@x", "amy@x"), None);
        let rows = p.contact_rows();
        assert_eq!(rows[1].name, "Zeddy");
        assert_eq!(rows[1].initials, "Z");
        let today = format::local(1_000).date_naive();
        let convs = vec![("a@x".to_owned(), conv("zed@x", 1_000, 0))];
        assert_eq!(
            p.conversation_rows(&convs, "zedd", None, today)[0].name,
            "Zeddy"
        );
        assert!(p.set_nick("a@x", "zed@x", None));
        assert_eq!(p.name_of("a@x", "zed@x"), "zed@x");
        p.set_nick("a@x", "zed@x", Some("Z"));
        p.forget_account("a@x");
        assert_eq!(p.nick("a@x", "zed@x"), None);
    }

    #[test]
    fn contacts_grouped_with_headers() {
        let mut p = People::default();
        p.set_contacts(
            "a@x",
            vec![
                contact("zed@x", None, &[]),
                contact("bob@x", Some("Bob"), &["Work", "Friends"]),
                contact("amy@x", Some("Amy"), &["Work"]),
            ],
        );
        p.on_presence("a@x", "bob@x/r", true, None, Some("coding"));
        let rows = p.contact_rows();
        let view: Vec<_> = rows
            .iter()
            .map(|r| (r.section.as_str(), r.name.as_str()))
            .collect();
        assert_eq!(
            view,
            [
                ("Friends", "Bob"),
                ("Work", "Bob"),
                ("", "Amy"),
                ("Contacts", "zed@x")
            ]
        );
        assert_eq!(rows[0].status, "coding");
        assert_eq!(rows[2].status, "amy@x");
        p.remove_contact("a@x", "zed@x");
        assert_eq!(p.contact_rows().len(), 3);
        let mut groups = p.groups("a@x");
        groups.sort_unstable();
        assert_eq!(groups, ["Friends", "Work", "Work"]);
        assert_eq!(p.roster_name("a@x", "bob@x").as_deref(), Some("Bob"));
        assert_eq!(p.roster_name("a@x", "zed@x"), None);
    }
}
