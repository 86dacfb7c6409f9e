//! The occupant list of a room: occupants grouped by role (moderators, participants,
//! visitors), each group sorted by affiliation (owners first) then nick, shown as flat rows
//! with a header above each non-empty group.
//!
//! It changes one presence at a time and says which rows changed ([`ListChange`]), so the
//! view's model is patched in place: a presence in a 1,000-occupant room updates one or two
//! rows, it does not rebuild the list. Lookups by nick are O(1), placement O(log n).

use std::collections::HashMap;

use starling_core::{Affiliation, Occupant, Role};

use super::format;
use super::people::PresenceKind;

/// A role group, in display order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    Moderators,
    Participants,
    Visitors,
}

impl Group {
    const ALL: [Group; 3] = [Group::Moderators, Group::Participants, Group::Visitors];

    fn of(role: Role) -> Group {
        match role {
            Role::Moderator => Group::Moderators,
            Role::Participant => Group::Participants,
            // A present occupant always has a role; treat a missing one as the least.
            Role::Visitor | Role::None => Group::Visitors,
        }
    }

    fn index(self) -> usize {
        match self {
            Group::Moderators => 0,
            Group::Participants => 1,
            Group::Visitors => 2,
        }
    }
}

/// One occupant as the list shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct OccupantRow {
    pub nick: String,
    /// Real bare JID, when the room shows it to us.
    pub jid: Option<String>,
    pub role: Role,
    pub affiliation: Affiliation,
    pub occupant_id: Option<String>,
    pub presence: PresenceKind,
    pub status: String,
    /// XEP-0392 hue of the occupant (occupant id, else nick).
    pub hue: f32,
    pub initials: String,
}

impl OccupantRow {
    pub fn from_occupant(o: &Occupant) -> OccupantRow {
        OccupantRow {
            nick: o.nick.clone(),
            jid: o.jid.clone(),
            role: o.role,
            affiliation: o.affiliation,
            occupant_id: o.occupant_id.clone(),
            presence: PresenceKind::from_show(o.show.as_deref()),
            status: o.status.clone().unwrap_or_default(),
            hue: format::nick_hue(author_key(o.occupant_id.as_deref(), &o.nick)),
            initials: format::initials(&o.nick),
        }
    }
}

/// What identifies an author for colours: the room's stable occupant id (XEP-0421), else
/// the nick.
pub fn author_key<'a>(occupant_id: Option<&'a str>, nick: &'a str) -> &'a str {
    occupant_id.filter(|i| !i.is_empty()).unwrap_or(nick)
}

/// A flat row: a group header or an occupant.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    Header { group: Group, count: usize },
    Occupant(OccupantRow),
}

/// How the flat rows changed, with the new rows: applied in order to a copy of the rows,
/// they keep it exactly equal (each index is after the previous changes).
#[derive(Debug, Clone, PartialEq)]
pub enum ListChange {
    Inserted {
        at: usize,
        rows: Vec<Entry>,
    },
    Removed {
        at: usize,
        count: usize,
    },
    Updated {
        at: usize,
        row: Entry,
    },
    /// Everything changed.
    Reset,
}

/// Owners first, then admins, members, others.
fn affiliation_rank(a: Affiliation) -> u8 {
    match a {
        Affiliation::Owner => 0,
        Affiliation::Admin => 1,
        Affiliation::Member => 2,
        Affiliation::None => 3,
        Affiliation::Outcast => 4,
    }
}

type Key = (u8, String, String);

fn key_of(row: &OccupantRow) -> Key {
    (
        affiliation_rank(row.affiliation),
        row.nick.to_lowercase(),
        row.nick.clone(),
    )
}

#[derive(Debug, Clone)]
struct Slot {
    key: Key,
    row: OccupantRow,
}

/// The occupants of one room.
#[derive(Debug, Default)]
pub struct OccupantList {
    groups: [Vec<Slot>; 3],
    /// nick -> (group, sort key), to find a row without scanning.
    by_nick: HashMap<String, (Group, Key)>,
    /// occupant id -> nick (an occupant that changed its nick keeps its id).
    by_id: HashMap<String, String>,
}

impl OccupantList {
    /// Number of occupants.
    pub fn len(&self) -> usize {
        self.by_nick.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_nick.is_empty()
    }

    /// Number of flat rows (occupants and headers).
    pub fn rows_len(&self) -> usize {
        self.groups
            .iter()
            .filter(|g| !g.is_empty())
            .map(|g| g.len() + 1)
            .sum()
    }

    pub fn get(&self, nick: &str) -> Option<&OccupantRow> {
        let (group, key) = self.by_nick.get(nick)?;
        let g = &self.groups[group.index()];
        g.binary_search_by(|s| s.key.cmp(key))
            .ok()
            .map(|i| &g[i].row)
    }

    /// Flat index of the header of `group` (where it is or would be).
    fn offset(&self, group: Group) -> usize {
        self.groups[..group.index()]
            .iter()
            .filter(|g| !g.is_empty())
            .map(|g| g.len() + 1)
            .sum()
    }

    /// The flat row at `i`.
    pub fn row(&self, mut i: usize) -> Option<Entry> {
        for group in Group::ALL {
            let g = &self.groups[group.index()];
            if g.is_empty() {
                continue;
            }
            if i == 0 {
                return Some(Entry::Header {
                    group,
                    count: g.len(),
                });
            }
            if i <= g.len() {
                return Some(Entry::Occupant(g[i - 1].row.clone()));
            }
            i -= g.len() + 1;
        }
        None
    }

    /// All flat rows (for a reset).
    pub fn rows(&self) -> Vec<Entry> {
        let mut out = Vec::with_capacity(self.rows_len());
        for group in Group::ALL {
            let g = &self.groups[group.index()];
            if g.is_empty() {
                continue;
            }
            out.push(Entry::Header {
                group,
                count: g.len(),
            });
            out.extend(g.iter().map(|s| Entry::Occupant(s.row.clone())));
        }
        out
    }

    /// Someone arrived or changed (role, affiliation, status).
    pub fn upsert(&mut self, occupant: &Occupant) -> Vec<ListChange> {
        let row = OccupantRow::from_occupant(occupant);
        let mut changes = Vec::new();
        // The same occupant id under another nick: a nick change whose departure we did not
        // see as such. Drop the old row.
        if let Some(id) = row.occupant_id.as_deref()
            && let Some(old) = self.by_id.get(id).cloned()
            && old != row.nick
        {
            changes.extend(self.remove(&old));
        }
        let group = Group::of(row.role);
        let key = key_of(&row);
        if let Some((old_group, old_key)) = self.by_nick.get(&row.nick).cloned() {
            if old_group == group && old_key == key {
                // Same place: update in place.
                let g = &mut self.groups[group.index()];
                if let Ok(i) = g.binary_search_by(|s| s.key.cmp(&key)) {
                    if g[i].row == row {
                        return changes;
                    }
                    g[i].row = row.clone();
                    changes.push(ListChange::Updated {
                        at: self.offset(group) + 1 + i,
                        row: Entry::Occupant(row),
                    });
                    return changes;
                }
            }
            changes.extend(self.remove(&row.nick));
        }
        changes.extend(self.insert(group, key, row));
        changes
    }

    fn insert(&mut self, group: Group, key: Key, row: OccupantRow) -> Vec<ListChange> {
        if let Some(id) = row.occupant_id.clone() {
            self.by_id.insert(id, row.nick.clone());
        }
        self.by_nick.insert(row.nick.clone(), (group, key.clone()));
        let offset = self.offset(group);
        let g = &mut self.groups[group.index()];
        let at = g.partition_point(|s| s.key < key);
        g.insert(
            at,
            Slot {
                key,
                row: row.clone(),
            },
        );
        let header = Entry::Header {
            group,
            count: g.len(),
        };
        if g.len() == 1 {
            vec![ListChange::Inserted {
                at: offset,
                rows: vec![header, Entry::Occupant(row)],
            }]
        } else {
            vec![
                ListChange::Inserted {
                    at: offset + 1 + at,
                    rows: vec![Entry::Occupant(row)],
                },
                ListChange::Updated {
                    at: offset,
                    row: header,
                },
            ]
        }
    }

    /// Someone left.
    pub fn remove(&mut self, nick: &str) -> Vec<ListChange> {
        let Some((group, key)) = self.by_nick.remove(nick) else {
            return Vec::new();
        };
        let offset = self.offset(group);
        let g = &mut self.groups[group.index()];
        let Ok(i) = g.binary_search_by(|s| s.key.cmp(&key)) else {
            return Vec::new();
        };
        let slot = g.remove(i);
        if let Some(id) = slot.row.occupant_id
            && self.by_id.get(&id).is_some_and(|n| n == nick)
        {
            self.by_id.remove(&id);
        }
        if g.is_empty() {
            vec![ListChange::Removed {
                at: offset,
                count: 2,
            }]
        } else {
            vec![
                ListChange::Removed {
                    at: offset + 1 + i,
                    count: 1,
                },
                ListChange::Updated {
                    at: offset,
                    row: Entry::Header {
                        group,
                        count: g.len(),
                    },
                },
            ]
        }
    }

    /// Everyone is gone (we left, or a rejoin starts over).
    pub fn clear(&mut self) -> Vec<ListChange> {
        if self.is_empty() {
            return Vec::new();
        }
        *self = OccupantList::default();
        vec![ListChange::Reset]
    }

    /// Replaces the list (a fresh snapshot from the core).
    pub fn replace(&mut self, occupants: &[Occupant]) -> Vec<ListChange> {
        *self = OccupantList::default();
        for o in occupants {
            let row = OccupantRow::from_occupant(o);
            let group = Group::of(row.role);
            let key = key_of(&row);
            if let Some(id) = row.occupant_id.clone() {
                self.by_id.insert(id, row.nick.clone());
            }
            self.by_nick.insert(row.nick.clone(), (group, key.clone()));
            self.groups[group.index()].push(Slot { key, row });
        }
        for g in &mut self.groups {
            g.sort_by(|a, b| a.key.cmp(&b.key));
            g.dedup_by(|a, b| a.key == b.key);
        }
        vec![ListChange::Reset]
    }
}

/// What we may do to an occupant (XEP-0045 §8 and §9), given our own role and affiliation.
/// The room has the last word; this only decides which actions the menu offers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Actions {
    pub private_message: bool,
    pub kick: bool,
    pub grant_voice: bool,
    pub revoke_voice: bool,
    pub make_moderator: bool,
    pub revoke_moderator: bool,
    /// Needs the real JID, which only rooms that show it to us give.
    pub ban: bool,
}

/// Whether `a` is a higher affiliation than `b` (owner > admin > member > none).
fn outranks(a: Affiliation, b: Affiliation) -> bool {
    affiliation_rank(a) < affiliation_rank(b)
}

fn is_admin(a: Affiliation) -> bool {
    matches!(a, Affiliation::Owner | Affiliation::Admin)
}

impl Actions {
    pub fn for_target(
        my_role: Role,
        my_affiliation: Affiliation,
        target: &OccupantRow,
        is_self: bool,
    ) -> Actions {
        if is_self {
            return Actions::default();
        }
        let moderator = my_role == Role::Moderator;
        // A moderator may not act against someone of a higher affiliation, nor against
        // admins and owners unless outranking them.
        let may_touch =
            !is_admin(target.affiliation) || outranks(my_affiliation, target.affiliation);
        Actions {
            private_message: true,
            kick: moderator && may_touch,
            grant_voice: moderator && target.role == Role::Visitor,
            revoke_voice: moderator && target.role == Role::Participant && may_touch,
            make_moderator: is_admin(my_affiliation) && target.role != Role::Moderator,
            revoke_moderator: is_admin(my_affiliation)
                && target.role == Role::Moderator
                && !is_admin(target.affiliation),
            ban: is_admin(my_affiliation)
                && target.jid.is_some()
                && (!is_admin(target.affiliation) || outranks(my_affiliation, target.affiliation)),
        }
    }

    pub fn any_moderation(&self) -> bool {
        self.kick
            || self.grant_voice
            || self.revoke_voice
            || self.make_moderator
            || self.revoke_moderator
            || self.ban
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn occ(nick: &str, role: Role, aff: Affiliation) -> Occupant {
        Occupant {
            nick: nick.into(),
            jid: None,
            role,
            affiliation: aff,
            occupant_id: None,
            show: None,
            status: None,
        }
    }

    /// The flat rows as short strings: "#Moderators 1" for headers, nicks for occupants.
    fn view(l: &OccupantList) -> Vec<String> {
        l.rows()
            .into_iter()
            .map(|e| match e {
                Entry::Header { group, count } => format!("#{group:?} {count}"),
                Entry::Occupant(r) => r.nick,
            })
            .collect()
    }

    /// Applies changes to a mirror the way the adapter patches its model, and checks that
    /// the changes alone keep the copy exactly equal to the list.
    fn apply(mirror: &mut Vec<Entry>, l: &OccupantList, changes: &[ListChange]) {
        for ch in changes {
            match ch {
                ListChange::Reset => *mirror = l.rows(),
                ListChange::Inserted { at, rows } => {
                    for (i, r) in rows.iter().enumerate() {
                        mirror.insert(at + i, r.clone());
                    }
                }
                ListChange::Removed { at, count } => {
                    mirror.drain(*at..at + count);
                }
                ListChange::Updated { at, row } => mirror[*at] = row.clone(),
            }
        }
        assert_eq!(*mirror, l.rows(), "after {changes:?}");
    }

    #[test]
    fn grouped_by_role_sorted_by_affiliation_then_nick() {
        let mut l = OccupantList::default();
        for o in [
            occ("zed", Role::Participant, Affiliation::None),
            occ("Amy", Role::Participant, Affiliation::None),
            occ("bob", Role::Moderator, Affiliation::Owner),
            occ("eve", Role::Visitor, Affiliation::None),
            occ("carl", Role::Participant, Affiliation::Member),
            occ("ann", Role::Moderator, Affiliation::Admin),
        ] {
            l.upsert(&o);
        }
        assert_eq!(
            view(&l),
            [
                "#Moderators 2",
                "bob",
                "ann",
                "#Participants 3",
                "carl",
                "Amy",
                "zed",
                "#Visitors 1",
                "eve"
            ]
        );
        assert_eq!(l.len(), 6);
        assert_eq!(l.rows_len(), 9);
        assert!(l.get("Amy").is_some_and(|r| r.initials == "A"));
    }

    #[test]
    fn changes_patch_a_mirror_exactly() {
        let mut l = OccupantList::default();
        let mut mirror = Vec::new();
        let mut step = |l: &mut OccupantList, ch: Vec<ListChange>| apply(&mut mirror, l, &ch);
        let ch = l.upsert(&occ("bob", Role::Participant, Affiliation::None));
        assert!(matches!(&ch[..], [ListChange::Inserted { at: 0, rows }] if rows.len() == 2));
        step(&mut l, ch);
        let ch = l.upsert(&occ("amy", Role::Participant, Affiliation::None));
        assert!(matches!(
            &ch[..],
            [
                ListChange::Inserted { at: 1, rows },
                ListChange::Updated { at: 0, row: Entry::Header { count: 2, .. } }
            ] if rows.len() == 1
        ));
        step(&mut l, ch);
        let ch = l.upsert(&occ("mod", Role::Moderator, Affiliation::Owner));
        step(&mut l, ch);
        // Bob gets voice revoked: moves from participants to visitors.
        let ch = l.upsert(&occ("bob", Role::Visitor, Affiliation::None));
        step(&mut l, ch);
        // A status change stays in place: one row updated.
        let mut away = occ("amy", Role::Participant, Affiliation::None);
        away.show = Some("away".into());
        let ch = l.upsert(&away);
        assert!(matches!(&ch[..], [ListChange::Updated { at: 3, .. }]));
        step(&mut l, ch);
        // The same presence again changes nothing.
        assert!(l.upsert(&away).is_empty());
        let ch = l.remove("mod");
        assert_eq!(ch, vec![ListChange::Removed { at: 0, count: 2 }]);
        step(&mut l, ch);
        let ch = l.remove("nobody");
        assert!(ch.is_empty());
        assert_eq!(view(&l), ["#Participants 1", "amy", "#Visitors 1", "bob"]);
        assert_eq!(l.clear(), vec![ListChange::Reset]);
        assert!(l.is_empty() && l.rows_len() == 0);
        assert!(l.clear().is_empty());
    }

    #[test]
    fn a_thousand_occupants_in_random_order() {
        let mut l = OccupantList::default();
        let mut mirror = Vec::new();
        // A deterministic shuffle of 1,000 nicks and roles.
        let mut n: u32 = 7;
        let mut nicks = Vec::new();
        for i in 0..1000 {
            n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let role = match n % 10 {
                0 => Role::Moderator,
                1 | 2 => Role::Visitor,
                _ => Role::Participant,
            };
            let nick = format!("user{:04}", (i * 7919) % 1000);
            let ch = l.upsert(&occ(&nick, role, Affiliation::None));
            apply(&mut mirror, &l, &ch);
            nicks.push(nick);
        }
        assert_eq!(l.len(), 1000);
        for nick in nicks.iter().step_by(3) {
            let ch = l.remove(nick);
            apply(&mut mirror, &l, &ch);
        }
        assert_eq!(l.len(), 666);
        // Each group is sorted.
        let rows = l.rows();
        for w in rows.windows(2) {
            if let (Entry::Occupant(a), Entry::Occupant(b)) = (&w[0], &w[1])
                && a.role == b.role
            {
                assert!(a.nick < b.nick, "{} before {}", a.nick, b.nick);
            }
        }
    }

    #[test]
    fn a_nick_change_keeps_one_row_per_occupant_id() {
        let mut l = OccupantList::default();
        let mut a = occ("bob", Role::Participant, Affiliation::None);
        a.occupant_id = Some("id-bob".into());
        l.upsert(&a);
        a.nick = "robert".into();
        l.upsert(&a);
        assert_eq!(view(&l), ["#Participants 1", "robert"]);
        // Colours follow the occupant id, not the nick.
        assert_eq!(
            l.get("robert").map(|r| r.hue),
            Some(format::nick_hue("id-bob"))
        );
        let snapshot = vec![
            occ("x", Role::Visitor, Affiliation::None),
            occ("y", Role::Moderator, Affiliation::None),
        ];
        assert_eq!(l.replace(&snapshot), vec![ListChange::Reset]);
        assert_eq!(view(&l), ["#Moderators 1", "y", "#Visitors 1", "x"]);
    }

    #[test]
    fn moderation_actions_follow_the_rules() {
        let row = |role, aff, jid: Option<&str>| {
            let mut o = occ("t", role, aff);
            o.jid = jid.map(Into::into);
            OccupantRow::from_occupant(&o)
        };
        let visitor = row(Role::Visitor, Affiliation::None, Some("t@x"));
        let participant = row(Role::Participant, Affiliation::Member, None);
        let admin = row(Role::Moderator, Affiliation::Admin, Some("a@x"));

        // A plain participant: only private messages.
        let a = Actions::for_target(Role::Participant, Affiliation::None, &visitor, false);
        assert!(a.private_message && !a.any_moderation());
        // Nothing on oneself.
        assert_eq!(
            Actions::for_target(Role::Moderator, Affiliation::Owner, &visitor, true),
            Actions::default()
        );
        // A moderator without affiliation: kick, voice; no ban, no moderator rights.
        let m = Actions::for_target(Role::Moderator, Affiliation::None, &visitor, false);
        assert!(m.kick && m.grant_voice && !m.revoke_voice && !m.ban && !m.make_moderator);
        let m = Actions::for_target(Role::Moderator, Affiliation::None, &participant, false);
        assert!(m.revoke_voice && !m.grant_voice);
        // ... but not against an admin.
        let m = Actions::for_target(Role::Moderator, Affiliation::None, &admin, false);
        assert!(!m.kick && !m.ban);
        // An owner: everything; ban needs the JID.
        let o = Actions::for_target(Role::Moderator, Affiliation::Owner, &visitor, false);
        assert!(o.kick && o.ban && o.make_moderator);
        let o = Actions::for_target(Role::Moderator, Affiliation::Owner, &participant, false);
        assert!(!o.ban, "no real JID, no ban");
        let o = Actions::for_target(Role::Moderator, Affiliation::Owner, &admin, false);
        assert!(o.kick && o.ban && !o.revoke_moderator);
        // An admin cannot act against another admin.
        let a = Actions::for_target(Role::Moderator, Affiliation::Admin, &admin, false);
        assert!(!a.kick && !a.ban);
    }
}
