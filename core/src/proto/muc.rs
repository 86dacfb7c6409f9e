//! XEP-0045: Multi-User Chat (v1.35), with XEP-0249 direct invitations, XEP-0410 self-ping
//! outcomes and XEP-0421 occupant ids. Sans-I/O: builds request elements and reads room
//! presences, invitations and disco#info.
//!
//! The `muc#user` payload is read leniently here instead of through
//! `xmpp_parsers::muc::MucUser`, which rejects the whole element for a status code it does
//! not know (174, for example) or for an item whose `jid` is a bare JID.

use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use serde::Serialize;
use xmpp_parsers::data_forms::{DataForm, DataFormType, Field, FieldType};
use xmpp_parsers::disco::DiscoInfoResult;
use xmpp_parsers::message::{Lang, Message, MessageType};
use xmpp_parsers::muc::Muc;
use xmpp_parsers::muc::muc::History;
use xmpp_parsers::presence::{Presence, Type as PresenceType};
use xmpp_parsers::stanza_error::{DefinedCondition, StanzaError};

use super::ns;

/// A room member's standing (XEP-0045 §5.2), kept across visits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Affiliation {
    Owner,
    Admin,
    Member,
    Outcast,
    #[default]
    None,
}

/// What an occupant may do in this visit (XEP-0045 §5.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Moderator,
    Participant,
    Visitor,
    #[default]
    None,
}

impl Affiliation {
    pub fn as_str(self) -> &'static str {
        match self {
            Affiliation::Owner => "owner",
            Affiliation::Admin => "admin",
            Affiliation::Member => "member",
            Affiliation::Outcast => "outcast",
            Affiliation::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<Affiliation> {
        Some(match s {
            "owner" => Affiliation::Owner,
            "admin" => Affiliation::Admin,
            "member" => Affiliation::Member,
            "outcast" => Affiliation::Outcast,
            "none" => Affiliation::None,
            _ => return None,
        })
    }
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Moderator => "moderator",
            Role::Participant => "participant",
            Role::Visitor => "visitor",
            Role::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "moderator" => Role::Moderator,
            "participant" => Role::Participant,
            "visitor" => Role::Visitor,
            "none" => Role::None,
            _ => return None,
        })
    }
}

/// Status codes (XEP-0045 §15.6) we act on.
pub mod status {
    pub const NON_ANONYMOUS: u16 = 100;
    pub const CONFIG_CHANGED: u16 = 104;
    pub const SELF: u16 = 110;
    pub const LOGGING_ON: u16 = 170;
    pub const LOGGING_OFF: u16 = 171;
    pub const NOW_NON_ANONYMOUS: u16 = 172;
    pub const NOW_SEMI_ANONYMOUS: u16 = 173;
    pub const NOW_FULLY_ANONYMOUS: u16 = 174;
    pub const CREATED: u16 = 201;
    pub const NICK_ASSIGNED: u16 = 210;
    pub const BANNED: u16 = 301;
    pub const NICK_CHANGED: u16 = 303;
    pub const KICKED: u16 = 307;
    pub const AFFILIATION_REMOVED: u16 = 321;
    pub const MEMBERS_ONLY_REMOVED: u16 = 322;
    pub const SHUTDOWN: u16 = 332;
    pub const ERROR_REMOVED: u16 = 333;
}

/// An `<item/>` of a `muc#user` or `muc#admin` payload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Item {
    pub affiliation: Affiliation,
    pub role: Role,
    /// The occupant's real JID, when the room shows it to us.
    pub jid: Option<Jid>,
    /// A nick: the new one in a nick change (303), the occupant's in admin lists.
    pub nick: Option<String>,
    /// Who made the change (nick or JID), if the room says.
    pub actor: Option<String>,
    pub reason: Option<String>,
}

/// A room's `<destroy/>` notice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Destroyed {
    pub alternate: Option<String>,
    pub reason: Option<String>,
}

/// The `http://jabber.org/protocol/muc#user` payload, read leniently.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserX {
    pub codes: Vec<u16>,
    pub items: Vec<Item>,
    /// A mediated invitation: (from, reason).
    pub invite: Option<(Option<Jid>, Option<String>)>,
    /// A declined invitation: (from, reason).
    pub decline: Option<(Option<Jid>, Option<String>)>,
    pub password: Option<String>,
    pub destroy: Option<Destroyed>,
}

fn child_text(el: &Element, name: &str, ns: &str) -> Option<String> {
    el.get_child(name, ns)
        .map(|c| c.text())
        .filter(|t| !t.is_empty())
}

fn parse_item(el: &Element, ns: &str) -> Item {
    Item {
        affiliation: el
            .attr("affiliation")
            .and_then(Affiliation::parse)
            .unwrap_or_default(),
        role: el.attr("role").and_then(Role::parse).unwrap_or_default(),
        jid: el.attr("jid").and_then(|j| Jid::new(j).ok()),
        nick: el.attr("nick").map(str::to_owned),
        actor: el
            .get_child("actor", ns)
            .and_then(|a| a.attr("nick").or(a.attr("jid")))
            .map(str::to_owned),
        reason: child_text(el, "reason", ns),
    }
}

/// Reads a `muc#user` `<x/>`.
pub fn parse_user_x(x: &Element) -> UserX {
    let ns = xmpp_parsers::ns::MUC_USER;
    let mut out = UserX::default();
    for c in x.children() {
        if c.ns() != ns {
            continue;
        }
        match c.name() {
            "status" => {
                if let Some(code) = c.attr("code").and_then(|s| s.parse().ok()) {
                    out.codes.push(code);
                }
            }
            "item" => out.items.push(parse_item(c, ns)),
            "invite" => {
                out.invite = Some((
                    c.attr("from").and_then(|j| Jid::new(j).ok()),
                    child_text(c, "reason", ns),
                ))
            }
            "decline" => {
                out.decline = Some((
                    c.attr("from").and_then(|j| Jid::new(j).ok()),
                    child_text(c, "reason", ns),
                ))
            }
            "password" => out.password = Some(c.text()),
            "destroy" => {
                out.destroy = Some(Destroyed {
                    alternate: c.attr("jid").map(str::to_owned),
                    reason: child_text(c, "reason", ns),
                })
            }
            _ => {}
        }
    }
    out
}

/// The `muc#user` payload of a stanza, if it has one.
pub fn user_x(payloads: &[Element]) -> Option<UserX> {
    payloads
        .iter()
        .find(|p| p.is("x", xmpp_parsers::ns::MUC_USER))
        .map(parse_user_x)
}

/// A presence from a room occupant (`room@service/nick`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OccupantPresence {
    pub room: BareJid,
    pub nick: String,
    pub available: bool,
    pub item: Item,
    pub codes: Vec<u16>,
    pub occupant_id: Option<String>,
    pub show: Option<String>,
    pub status: Option<String>,
    pub destroyed: Option<Destroyed>,
}

impl OccupantPresence {
    pub fn has(&self, code: u16) -> bool {
        self.codes.contains(&code)
    }
}

/// Reads an available/unavailable presence carrying `muc#user` from `room/nick`. `None` when
/// the presence is not an occupant presence.
pub fn occupant_presence(p: &Presence) -> Option<OccupantPresence> {
    let from = p.from.as_ref()?;
    let nick = from.resource()?.to_string();
    let available = match p.type_ {
        PresenceType::None => true,
        PresenceType::Unavailable => false,
        _ => return None,
    };
    let x = user_x(&p.payloads)?;
    let occupant_id = p
        .payloads
        .iter()
        .find(|e| e.is("occupant-id", ns::OCCUPANT_ID))
        .and_then(|e| e.attr("id"))
        .map(str::to_owned);
    Some(OccupantPresence {
        room: from.to_bare(),
        nick,
        available,
        item: x.items.into_iter().next().unwrap_or_default(),
        codes: x.codes,
        occupant_id,
        show: p.show.as_ref().map(|s| format!("{s:?}").to_lowercase()),
        status: p.statuses.values().next().cloned(),
        destroyed: x.destroy,
    })
}

/// How much history to ask for when joining.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinHistory {
    /// None: the room's archive (XEP-0313) is used instead, so nothing arrives twice.
    None,
    /// The last `n` messages (a room without an archive, first visit).
    Last(u32),
    /// Everything since this time (a room without an archive, seen before).
    Since(chrono::DateTime<chrono::Utc>),
}

/// The presence that joins `room` as `nick` (XEP-0045 §7.2). `base` carries our show/status
/// and caps.
pub fn join(
    mut base: Presence,
    occupant: FullJid,
    password: Option<&str>,
    history: &JoinHistory,
) -> Presence {
    let history = match history {
        JoinHistory::None => History::new().with_maxstanzas(0),
        JoinHistory::Last(n) => History::new().with_maxstanzas(*n),
        JoinHistory::Since(t) => {
            History::new().with_since(xmpp_parsers::date::DateTime(t.fixed_offset()))
        }
    };
    let mut muc = Muc::new().with_history(history);
    if let Some(p) = password {
        muc = muc.with_password(p.to_owned());
    }
    base.to = Some(Jid::from(occupant));
    base.payloads.push(muc.into());
    base
}

/// The presence that leaves a room.
pub fn leave(occupant: FullJid) -> Presence {
    Presence::unavailable().with_to(Jid::from(occupant))
}

/// Why a join was refused (XEP-0045 §7.2.3–7.2.10), in words for the user.
pub fn join_error_text(err: &StanzaError) -> String {
    let text = err
        .texts
        .values()
        .next()
        .map(|t| format!(" ({t})"))
        .unwrap_or_default();
    let what = match err.defined_condition {
        DefinedCondition::NotAuthorized => "the room needs a password, or the one given is wrong",
        DefinedCondition::RegistrationRequired => {
            "the room is members-only and you are not a member"
        }
        DefinedCondition::Forbidden => "you are banned from the room",
        DefinedCondition::Conflict => "that nickname is already in use in the room",
        DefinedCondition::ServiceUnavailable => "the room is full",
        DefinedCondition::ItemNotFound => "the room does not exist or is locked",
        DefinedCondition::NotAllowed => "you may not create rooms on this service",
        DefinedCondition::NotAcceptable => "the room requires its registered nickname",
        DefinedCondition::JidMalformed => "the nickname is not valid",
        _ => "the room refused",
    };
    format!("{what}{text}")
}

/// The `muc#admin` query that changes an occupant's role (kick = `Role::None`, voice, moderator).
pub fn set_role(nick: &str, role: Role, reason: Option<&str>) -> Element {
    admin_item(
        Element::builder("item", ns::MUC_ADMIN)
            .attr(crate::proto::n!("nick"), nick)
            .attr(crate::proto::n!("role"), role.as_str()),
        reason,
    )
}

/// The `muc#admin` query that changes a user's affiliation (ban = `Affiliation::Outcast`).
pub fn set_affiliation(jid: &BareJid, affiliation: Affiliation, reason: Option<&str>) -> Element {
    admin_item(
        Element::builder("item", ns::MUC_ADMIN)
            .attr(crate::proto::n!("jid"), jid.as_str())
            .attr(crate::proto::n!("affiliation"), affiliation.as_str()),
        reason,
    )
}

fn admin_item(item: minidom::ElementBuilder, reason: Option<&str>) -> Element {
    let mut item = item.build();
    if let Some(r) = reason {
        item.append_child(
            Element::builder("reason", ns::MUC_ADMIN)
                .append(r.to_owned())
                .build(),
        );
    }
    Element::builder("query", ns::MUC_ADMIN)
        .append(item)
        .build()
}

/// The `muc#admin` query for everyone with an affiliation (members, admins, outcasts…).
pub fn affiliation_list(affiliation: Affiliation) -> Element {
    Element::builder("query", ns::MUC_ADMIN)
        .append(
            Element::builder("item", ns::MUC_ADMIN)
                .attr(crate::proto::n!("affiliation"), affiliation.as_str())
                .build(),
        )
        .build()
}

/// Reads the items of a `muc#admin` list result.
pub fn parse_admin_list(query: &Element) -> Vec<Item> {
    query
        .children()
        .filter(|c| c.is("item", ns::MUC_ADMIN))
        .map(|c| parse_item(c, ns::MUC_ADMIN))
        .collect()
}

/// Asks for the room configuration form (`muc#owner`).
pub fn config_request() -> Element {
    Element::builder("query", ns::MUC_OWNER).build()
}

/// Accepts the default configuration: an instant room (XEP-0045 §10.1.2).
pub fn instant_room() -> Element {
    Element::builder("query", ns::MUC_OWNER)
        .append(Element::from(DataForm::new(
            DataFormType::Submit,
            ns::MUC_ROOMCONFIG,
            Vec::new(),
        )))
        .build()
}

/// Destroys a room (XEP-0045 §10.9).
pub fn destroy(reason: Option<&str>) -> Element {
    let mut d = Element::builder("destroy", ns::MUC_OWNER).build();
    if let Some(r) = reason {
        d.append_child(
            Element::builder("reason", ns::MUC_OWNER)
                .append(r.to_owned())
                .build(),
        );
    }
    Element::builder("query", ns::MUC_OWNER).append(d).build()
}

/// The settings a user can choose for a room. `None` leaves a setting as the room has it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RoomConfig {
    pub name: Option<String>,
    pub description: Option<String>,
    pub members_only: Option<bool>,
    pub moderated: Option<bool>,
    /// Everyone sees real JIDs (`whois` = anyone).
    pub non_anonymous: Option<bool>,
    pub persistent: Option<bool>,
    /// Listed in the service's room directory.
    pub public: Option<bool>,
    /// `Some("")` removes the password.
    pub password: Option<String>,
}

/// A configuration field the room's form lacks, so the setting cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the room does not offer the setting {0}")]
pub struct MissingField(pub &'static str);

/// Fills the room's own configuration form with the user's choices and returns the
/// `muc#owner` submission. A setting the form lacks is an error, never silently dropped
/// (a room that cannot be made members-only must not pretend it is).
pub fn config_submit(form: &DataForm, cfg: &RoomConfig) -> Result<Element, MissingField> {
    let mut fields: Vec<Field> = Vec::new();
    let has = |var: &str| form.fields.iter().any(|f| f.var.as_deref() == Some(var));
    let mut set = |var: &'static str, label: &'static str, value: String| {
        if has(var) {
            let kind = form
                .fields
                .iter()
                .find(|f| f.var.as_deref() == Some(var))
                .map(|f| f.type_.clone())
                .unwrap_or(FieldType::TextSingle);
            fields.push(Field::new(var, kind).with_value(&value));
            Ok(())
        } else {
            Err(MissingField(label))
        }
    };
    let flag = |b: bool| if b { "1" } else { "0" }.to_owned();
    if let Some(v) = &cfg.name {
        set("muc#roomconfig_roomname", "name", v.clone())?;
    }
    if let Some(v) = &cfg.description {
        set("muc#roomconfig_roomdesc", "description", v.clone())?;
    }
    if let Some(v) = cfg.members_only {
        set("muc#roomconfig_membersonly", "members-only", flag(v))?;
    }
    if let Some(v) = cfg.moderated {
        set("muc#roomconfig_moderatedroom", "moderated", flag(v))?;
    }
    if let Some(v) = cfg.non_anonymous {
        let who = if v { "anyone" } else { "moderators" };
        set("muc#roomconfig_whois", "non-anonymous", who.to_owned())?;
    }
    if let Some(v) = cfg.persistent {
        set("muc#roomconfig_persistentroom", "persistent", flag(v))?;
    }
    if let Some(v) = cfg.public {
        set("muc#roomconfig_publicroom", "public", flag(v))?;
    }
    if let Some(pw) = &cfg.password {
        if has("muc#roomconfig_passwordprotectedroom") {
            set(
                "muc#roomconfig_passwordprotectedroom",
                "password",
                flag(!pw.is_empty()),
            )?;
        }
        set("muc#roomconfig_roomsecret", "password", pw.clone())?;
    }
    Ok(Element::builder("query", ns::MUC_OWNER)
        .append(Element::from(DataForm::new(
            DataFormType::Submit,
            ns::MUC_ROOMCONFIG,
            fields,
        )))
        .build())
}

/// Reads the configuration form out of a `muc#owner` result.
pub fn config_form(query: &Element) -> Option<DataForm> {
    query
        .get_child("x", xmpp_parsers::ns::DATA_FORMS)
        .and_then(|x| DataForm::try_from(x.clone()).ok())
}

/// A mediated invitation (XEP-0045 §7.8.2): sent to the room, which forwards it.
pub fn mediated_invite(room: &BareJid, to: &BareJid, reason: Option<&str>) -> Message {
    let mut invite = Element::builder("invite", xmpp_parsers::ns::MUC_USER)
        .attr(crate::proto::n!("to"), to.as_str())
        .build();
    if let Some(r) = reason {
        invite.append_child(
            Element::builder("reason", xmpp_parsers::ns::MUC_USER)
                .append(r.to_owned())
                .build(),
        );
    }
    let mut m = Message::new(Some(Jid::from(room.clone())));
    m.type_ = MessageType::Normal;
    m.id = Some(xmpp_parsers::message::Id(super::new_id()));
    m.payloads.push(
        Element::builder("x", xmpp_parsers::ns::MUC_USER)
            .append(invite)
            .build(),
    );
    m
}

/// Declines a mediated invitation (XEP-0045 §7.8.2), through the room.
pub fn decline(room: &BareJid, inviter: &Jid, reason: Option<&str>) -> Message {
    let mut d = Element::builder("decline", xmpp_parsers::ns::MUC_USER)
        .attr(crate::proto::n!("to"), inviter.to_string())
        .build();
    if let Some(r) = reason {
        d.append_child(
            Element::builder("reason", xmpp_parsers::ns::MUC_USER)
                .append(r.to_owned())
                .build(),
        );
    }
    let mut m = Message::new(Some(Jid::from(room.clone())));
    m.type_ = MessageType::Normal;
    m.payloads.push(
        Element::builder("x", xmpp_parsers::ns::MUC_USER)
            .append(d)
            .build(),
    );
    m
}

/// A direct invitation (XEP-0249), sent to the invitee.
pub fn direct_invite(
    room: &BareJid,
    to: &BareJid,
    reason: Option<&str>,
    password: Option<&str>,
) -> Message {
    let x = Element::builder("x", ns::CONFERENCE)
        .attr(crate::proto::n!("jid"), room.as_str())
        .attr(crate::proto::n!("reason"), reason)
        .attr(crate::proto::n!("password"), password)
        .build();
    let mut m = Message::new(Some(Jid::from(to.clone())));
    m.type_ = MessageType::Normal;
    m.id = Some(xmpp_parsers::message::Id(super::new_id()));
    m.payloads.push(x);
    m
}

/// How an invitation reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InviteKind {
    /// Through the room (XEP-0045).
    Mediated,
    /// From the inviter directly (XEP-0249).
    Direct,
}

/// An invitation to a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    pub room: BareJid,
    /// Who invites us (their real JID as the room or message says).
    pub from: Option<BareJid>,
    pub reason: Option<String>,
    pub password: Option<String>,
    pub kind: InviteKind,
}

/// Reads an invitation out of a (non-groupchat) message. A mediated invitation must come
/// from the room itself (a bare JID); a direct one names the room in its payload.
pub fn invitation(msg: &Message) -> Option<Invitation> {
    if msg.type_ == MessageType::Groupchat || msg.type_ == MessageType::Error {
        return None;
    }
    let from = msg.from.as_ref()?;
    if let Some(x) = user_x(&msg.payloads)
        && let Some((inviter, reason)) = x.invite
        && from.resource().is_none()
    {
        return Some(Invitation {
            room: from.to_bare(),
            from: inviter.map(|j| j.to_bare()),
            reason,
            password: x.password,
            kind: InviteKind::Mediated,
        });
    }
    let x = msg.payloads.iter().find(|p| p.is("x", ns::CONFERENCE))?;
    let room = BareJid::new(x.attr("jid")?).ok()?;
    room.node()?;
    Some(Invitation {
        room,
        from: Some(from.to_bare()),
        reason: x
            .attr("reason")
            .map(str::to_owned)
            .filter(|r| !r.is_empty()),
        password: x
            .attr("password")
            .map(str::to_owned)
            .filter(|p| !p.is_empty()),
        kind: InviteKind::Direct,
    })
}

/// A declined mediated invitation, forwarded by the room: (room, who, reason).
pub fn declined(msg: &Message) -> Option<(BareJid, Option<BareJid>, Option<String>)> {
    let from = msg.from.as_ref()?;
    if from.resource().is_some() {
        return None;
    }
    let (who, reason) = user_x(&msg.payloads)?.decline?;
    Some((from.to_bare(), who.map(|j| j.to_bare()), reason))
}

/// What a room says about itself (disco#info, XEP-0045 §6.4).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RoomInfo {
    pub name: Option<String>,
    pub description: Option<String>,
    /// The room keeps an archive we can query (XEP-0313).
    pub archive: bool,
    pub members_only: bool,
    pub moderated: bool,
    pub non_anonymous: bool,
    pub password_protected: bool,
    pub persistent: bool,
    pub public: bool,
    /// XEP-0421 occupant ids.
    pub occupant_ids: bool,
    /// XEP-0425 moderation, newest version the room offers.
    pub moderation: Option<String>,
    pub occupants: Option<u32>,
}

/// Reads a room's disco#info. `None` if the entity is not a MUC room.
pub fn room_info(d: &DiscoInfoResult) -> Option<RoomInfo> {
    let is_room = d
        .identities
        .iter()
        .any(|i| i.category == "conference" && i.type_ == "text")
        && d.features.iter().any(|f| f == xmpp_parsers::ns::MUC);
    if !is_room {
        return None;
    }
    let has = |f: &str| d.features.iter().any(|x| x == f);
    let form_value = |var: &str| {
        d.extensions
            .iter()
            .filter(|f| f.form_type() == Some(ns::MUC_ROOMINFO))
            .flat_map(|f| f.fields.iter())
            .find(|f| f.var.as_deref() == Some(var))
            .and_then(|f| f.values.first().cloned())
            .filter(|v| !v.is_empty())
    };
    let name = d
        .identities
        .iter()
        .find(|i| i.category == "conference")
        .and_then(|i| i.name.clone())
        .filter(|n| !n.is_empty());
    let moderation = [ns::MODERATE_1, ns::MODERATE_0]
        .into_iter()
        .find(|v| has(v))
        .map(str::to_owned);
    Some(RoomInfo {
        name,
        description: form_value("muc#roominfo_description"),
        archive: has(xmpp_parsers::ns::MAM),
        members_only: has("muc_membersonly"),
        moderated: has("muc_moderated"),
        non_anonymous: has("muc_nonanonymous"),
        password_protected: has("muc_passwordprotected"),
        persistent: has("muc_persistent"),
        public: has("muc_public"),
        occupant_ids: has(ns::OCCUPANT_ID),
        moderation,
        occupants: form_value("muc#roominfo_occupants").and_then(|v| v.parse().ok()),
    })
}

/// Whether a disco#info describes a MUC service (XEP-0045 §6.1).
pub fn is_muc_service(d: &DiscoInfoResult) -> bool {
    d.identities
        .iter()
        .any(|i| i.category == "conference" && i.type_ == "text")
        && d.features.iter().any(|f| f == xmpp_parsers::ns::MUC)
}

/// What a XEP-0410 self-ping answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PingOutcome {
    /// We are still an occupant.
    Joined,
    /// The room no longer knows us: rejoin.
    NotJoined,
    /// Cannot tell (the room's server is unreachable, or it timed out): try again later.
    Unknown,
}

/// Interprets a self-ping result (XEP-0410 §3.2).
pub fn self_ping_outcome(result: Result<(), &StanzaError>) -> PingOutcome {
    match result {
        Ok(()) => PingOutcome::Joined,
        Err(e) => match e.defined_condition {
            // Our client answered through the room (it forwarded the ping) or the room
            // handles pings but not for this: we are joined.
            DefinedCondition::ServiceUnavailable | DefinedCondition::FeatureNotImplemented => {
                PingOutcome::Joined
            }
            DefinedCondition::ItemNotFound => PingOutcome::Joined,
            DefinedCondition::RemoteServerNotFound | DefinedCondition::RemoteServerTimeout => {
                PingOutcome::Unknown
            }
            _ => PingOutcome::NotJoined,
        },
    }
}

/// Whether `body` mentions `nick` as a word (case-insensitive).
pub fn mentions(body: &str, nick: &str) -> bool {
    let nick = nick.trim();
    if nick.is_empty() {
        return false;
    }
    let hay = body.to_lowercase();
    let needle = nick.to_lowercase();
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let mut start = 0;
    while let Some(pos) = hay[start..].find(&needle) {
        let at = start + pos;
        let end = at + needle.len();
        if !word(hay[..at].chars().next_back()) && !word(hay[end..].chars().next()) {
            return true;
        }
        start = at + needle.chars().next().map(char::len_utf8).unwrap_or(1);
    }
    false
}

/// A groupchat message stanza to a room (origin-id = id, so the reflection is recognised).
pub fn groupchat(room: &BareJid, id: &str, body: &str, replace: Option<&str>) -> Message {
    let mut m = Message::groupchat(Some(Jid::from(room.clone())))
        .with_body(Lang::new(), body.to_owned())
        .with_payload(xmpp_parsers::stanza_id::OriginId { id: id.to_owned() });
    m.id = Some(xmpp_parsers::message::Id(id.to_owned()));
    if let Some(r) = replace {
        m = m.with_payload(xmpp_parsers::message_correct::Replace {
            id: xmpp_parsers::message::Id(r.to_owned()),
        });
    }
    m
}

/// A private message to an occupant (XEP-0045 §7.5), marked so servers and clients keep it
/// apart from 1:1 chats.
pub fn private_message(occupant: &FullJid, id: &str, body: &str, replace: Option<&str>) -> Message {
    let mut m = Message::chat(Some(Jid::from(occupant.clone())))
        .with_body(Lang::new(), body.to_owned())
        .with_payload(xmpp_parsers::stanza_id::OriginId { id: id.to_owned() });
    if let Some(r) = replace {
        m = m.with_payload(xmpp_parsers::message_correct::Replace {
            id: xmpp_parsers::message::Id(r.to_owned()),
        });
    }
    m.payloads
        .push(Element::builder("x", xmpp_parsers::ns::MUC_USER).build());
    m.id = Some(xmpp_parsers::message::Id(id.to_owned()));
    m
}

/// Changes the room subject (XEP-0045 §8.1).
pub fn subject(room: &BareJid, subject: &str) -> Message {
    let mut m = Message::groupchat(Some(Jid::from(room.clone())));
    m.subjects.insert(Lang::new(), subject.to_owned());
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use xmpp_parsers::stanza_error::ErrorType;

    fn presence(xml: &str) -> anyhow::Result<Presence> {
        let el: Element = xml.parse()?;
        Ok(Presence::try_from(el)?)
    }

    /// XEP-0045 Example 24 (self-presence with 110 and 100) plus an occupant-id.
    #[test]
    fn self_presence_example() -> anyhow::Result<()> {
        let p = presence(
            "<presence xmlns='jabber:client' from='coven@chat.shakespeare.lit/thirdwitch' \
             to='hag66@shakespeare.lit/pda' id='n13mt3l'>\
             <x xmlns='http://jabber.org/protocol/muc#user'>\
             <item affiliation='member' role='participant' jid='hag66@shakespeare.lit/pda'/>\
             <status code='100'/><status code='110'/><status code='174'/></x>\
             <occupant-id xmlns='urn:xmpp:occupant-id:0' id='abc='/></presence>",
        )?;
        let o = occupant_presence(&p).ok_or_else(|| anyhow::anyhow!("not an occupant"))?;
        assert_eq!(o.room.as_str(), "coven@chat.shakespeare.lit");
        assert_eq!(o.nick, "thirdwitch");
        assert!(o.available && o.has(status::SELF) && o.has(status::NON_ANONYMOUS));
        assert!(
            o.has(status::NOW_FULLY_ANONYMOUS),
            "unknown-to-parsers code kept"
        );
        assert_eq!(o.item.affiliation, Affiliation::Member);
        assert_eq!(o.item.role, Role::Participant);
        assert_eq!(o.occupant_id.as_deref(), Some("abc="));
        Ok(())
    }

    /// XEP-0045 Example 91 (kick) and Example 50 (nick change).
    #[test]
    fn kick_and_nick_change_examples() -> anyhow::Result<()> {
        let p = presence(
            "<presence xmlns='jabber:client' from='harfleur@chat.shakespeare.lit/pistol' \
             to='pistol@shakespeare.lit/harfleur' type='unavailable'>\
             <x xmlns='http://jabber.org/protocol/muc#user'>\
             <item affiliation='none' role='none'><actor nick='Fluellen'/>\
             <reason>Avaunt, you cullion!</reason></item>\
             <status code='110'/><status code='307'/></x></presence>",
        )?;
        let o = occupant_presence(&p).ok_or_else(|| anyhow::anyhow!("not an occupant"))?;
        assert!(!o.available && o.has(status::KICKED));
        assert_eq!(o.item.actor.as_deref(), Some("Fluellen"));
        assert_eq!(o.item.reason.as_deref(), Some("Avaunt, you cullion!"));

        let p = presence(
            "<presence xmlns='jabber:client' from='coven@chat.shakespeare.lit/thirdwitch' \
             type='unavailable'><x xmlns='http://jabber.org/protocol/muc#user'>\
             <item affiliation='member' jid='hag66@shakespeare.lit/pda' nick='oldhag' \
             role='participant'/><status code='303'/></x></presence>",
        )?;
        let o = occupant_presence(&p).ok_or_else(|| anyhow::anyhow!("not an occupant"))?;
        assert!(o.has(status::NICK_CHANGED));
        assert_eq!(o.item.nick.as_deref(), Some("oldhag"));
        // Not an occupant presence: no muc#user, or a bare JID.
        assert!(
            occupant_presence(&presence(
                "<presence xmlns='jabber:client' from='bob@example.org/x'/>"
            )?)
            .is_none()
        );
        Ok(())
    }

    #[test]
    fn join_presence_asks_for_no_history() -> anyhow::Result<()> {
        let occ = FullJid::new("room@conf.example.org/alice")?;
        let p = join(
            Presence::available(),
            occ,
            Some("s3cret"),
            &JoinHistory::None,
        );
        let xml = String::from(&Element::from(p));
        assert!(
            xml.contains("maxstanzas='0'") || xml.contains("maxstanzas=\"0\""),
            "{xml}"
        );
        assert!(xml.contains("<password>s3cret</password>"), "{xml}");
        assert!(
            xml.contains("to='room@conf.example.org/alice'")
                || xml.contains("to=\"room@conf.example.org/alice\""),
            "{xml}"
        );
        Ok(())
    }

    /// XEP-0045 Example 45 (mediated invitation as received) and XEP-0249 Example 1.
    #[test]
    fn invitations() -> anyhow::Result<()> {
        // What we send are normal messages: a room ignores type=chat invitations.
        let room = BareJid::new("room@conf.example.org")?;
        let bob = BareJid::new("bob@example.org")?;
        for m in [
            mediated_invite(&room, &bob, Some("hi")),
            direct_invite(&room, &bob, None, None),
            decline(&room, &Jid::from(bob.clone()), None),
        ] {
            assert_eq!(m.type_, MessageType::Normal);
        }
        let el: Element = "<message xmlns='jabber:client' from='coven@chat.shakespeare.lit' \
             id='nzd143v8' to='hecate@shakespeare.lit'>\
             <x xmlns='http://jabber.org/protocol/muc#user'>\
             <invite from='crone1@shakespeare.lit/desktop'><reason>Hey Hecate, this is the \
             place for all good witches!</reason></invite><password>cauldronburn</password>\
             </x></message>"
            .parse()?;
        let i = invitation(&Message::try_from(el)?).ok_or_else(|| anyhow::anyhow!("none"))?;
        assert_eq!(i.kind, InviteKind::Mediated);
        assert_eq!(i.room.as_str(), "coven@chat.shakespeare.lit");
        assert_eq!(
            i.from.map(|j| j.to_string()).as_deref(),
            Some("crone1@shakespeare.lit")
        );
        assert_eq!(i.password.as_deref(), Some("cauldronburn"));

        let el: Element = "<message xmlns='jabber:client' from='crone1@shakespeare.lit/desktop' \
             to='hecate@shakespeare.lit'><x xmlns='jabber:x:conference' \
             jid='darkcave@macbeth.shakespeare.lit' password='cauldronburn' \
             reason='Hey Hecate, this is the place for all good witches!'/></message>"
            .parse()?;
        let i = invitation(&Message::try_from(el)?).ok_or_else(|| anyhow::anyhow!("none"))?;
        assert_eq!(i.kind, InviteKind::Direct);
        assert_eq!(i.room.as_str(), "darkcave@macbeth.shakespeare.lit");

        // A "mediated" invitation from a full JID is not from a room.
        let el: Element = "<message xmlns='jabber:client' from='mallory@evil.example/x'>\
             <x xmlns='http://jabber.org/protocol/muc#user'><invite from='a@b'/></x></message>"
            .parse()?;
        assert!(invitation(&Message::try_from(el)?).is_none());
        Ok(())
    }

    #[test]
    fn config_form_is_filled_and_missing_settings_refused() -> anyhow::Result<()> {
        let el: Element = "<x xmlns='jabber:x:data' type='form'>\
             <field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/muc#roomconfig</value></field>\
             <field var='muc#roomconfig_roomname' type='text-single'/>\
             <field var='muc#roomconfig_membersonly' type='boolean'><value>0</value></field>\
             <field var='muc#roomconfig_whois' type='list-single'><value>moderators</value>\
             <option><value>moderators</value></option><option><value>anyone</value></option></field>\
             <field var='muc#roomconfig_roomsecret' type='text-private'/></x>"
            .parse()?;
        let form = DataForm::try_from(el)?;
        let cfg = RoomConfig {
            name: Some("Witches".into()),
            members_only: Some(true),
            non_anonymous: Some(true),
            password: Some("pw".into()),
            ..RoomConfig::default()
        };
        let xml = String::from(&config_submit(&form, &cfg)?);
        assert!(
            xml.contains("type=\"submit\"") || xml.contains("type='submit'"),
            "{xml}"
        );
        assert!(
            xml.contains("Witches") && xml.contains("anyone") && xml.contains(">pw<"),
            "{xml}"
        );
        let err = config_submit(
            &form,
            &RoomConfig {
                persistent: Some(true),
                ..RoomConfig::default()
            },
        );
        assert_eq!(err, Err(MissingField("persistent")));
        Ok(())
    }

    #[test]
    fn self_ping_outcomes() {
        let e = |c| StanzaError::new(ErrorType::Cancel, c, "en", "");
        assert_eq!(self_ping_outcome(Ok(())), PingOutcome::Joined);
        assert_eq!(
            self_ping_outcome(Err(&e(DefinedCondition::NotAcceptable))),
            PingOutcome::NotJoined
        );
        assert_eq!(
            self_ping_outcome(Err(&e(DefinedCondition::ServiceUnavailable))),
            PingOutcome::Joined
        );
        assert_eq!(
            self_ping_outcome(Err(&e(DefinedCondition::RemoteServerTimeout))),
            PingOutcome::Unknown
        );
    }

    #[test]
    fn mention_detection() {
        assert!(mentions("hey Alice, look", "alice"));
        assert!(mentions("@alice!", "Alice"));
        assert!(!mentions("malice aforethought", "alice"));
        assert!(!mentions("alices", "alice"));
        assert!(mentions("Zoë: ça va?", "zoë"));
        assert!(!mentions("anything", " "));
    }

    #[test]
    fn room_disco_info() -> anyhow::Result<()> {
        let el: Element = "<query xmlns='http://jabber.org/protocol/disco#info'>\
             <identity category='conference' type='text' name='The Coven'/>\
             <feature var='http://jabber.org/protocol/muc'/><feature var='urn:xmpp:mam:2'/>\
             <feature var='muc_membersonly'/><feature var='muc_nonanonymous'/>\
             <feature var='urn:xmpp:message-moderate:0'/><feature var='urn:xmpp:occupant-id:0'/>\
             </query>"
            .parse()?;
        let info = room_info(&DiscoInfoResult::try_from(el)?)
            .ok_or_else(|| anyhow::anyhow!("not a room"))?;
        assert_eq!(info.name.as_deref(), Some("The Coven"));
        assert!(info.archive && info.members_only && info.non_anonymous && info.occupant_ids);
        assert_eq!(info.moderation.as_deref(), Some(ns::MODERATE_0));
        assert!(!info.persistent);
        Ok(())
    }
}
