//! The first stages of the inbound message pipeline, sans I/O: validate who sent a stanza,
//! unwrap carbons (XEP-0280) and archive results (XEP-0313), and extract what we understand
//! (RFC 6121 bodies, XEP-0359 ids, XEP-0308 corrections, XEP-0184 receipts, XEP-0333
//! markers, XEP-0085 chat states, XEP-0203 delays, XEP-0045 group chat, private messages and
//! invitations, XEP-0249 invitations, XEP-0421 occupant ids, XEP-0424/0425 retractions).
//!
//! Security rules live here, in one place: a carbon is accepted only from our own bare JID;
//! an archive result only for a query we sent and only from the archive we asked (our own,
//! or the room's); a stanza-id only when the archive that stamped it (`by`) is ours, or the
//! room's for group chat; a group chat message only from a room we are in; an occupant id
//! only from a room that announces them; a PEP event only from our own account.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use jid::{BareJid, Jid};
use minidom::Element;
use xmpp_parsers::carbons;
use xmpp_parsers::chatstates::ChatState;
use xmpp_parsers::delay::Delay;
use xmpp_parsers::displayed_markers;
use xmpp_parsers::mam;
use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::message_correct::Replace;
use xmpp_parsers::receipts;
use xmpp_parsers::stanza_id::{OriginId, StanzaId};

use super::muc::{self, Invitation};
use super::ns;
use super::retract::{self, Retraction};

/// Which kind of conversation a message belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Chat,
    /// In a room; the peer is the room.
    GroupChat,
    /// With a room occupant; the peer is `room@service/nick`.
    Private,
    /// From the room itself, not from an occupant.
    Notice,
}

/// A message with a body, ready for dedup and storage.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatMessage {
    /// The conversation: the other party's bare JID, a room, or `room/nick` (private).
    pub peer: Jid,
    pub kind: Kind,
    /// Sent by us (seen through a carbon, the archive, or a room's reflection).
    pub outgoing: bool,
    pub sender: Jid,
    pub id: Option<String>,
    pub origin_id: Option<String>,
    /// The id the archive (ours, or the room's) gave it.
    pub archive_id: Option<String>,
    pub body: String,
    /// When it was sent, if the stanza says so (delay); otherwise "now".
    pub stamp: Option<DateTime<Utc>>,
    pub replace: Option<String>,
    /// XEP-0421, only from rooms that announce occupant ids.
    pub occupant_id: Option<String>,
    /// An archive tombstone: the message was removed (by this moderator, if known).
    pub tombstone: Option<Option<String>>,
    /// An OMEMO `<encrypted>` element (either namespace): the body is in there, and the
    /// stanza's own body is only the fallback text for clients without OMEMO.
    pub encrypted: Option<Element>,
    /// The file it shares (a plaintext file message; an encrypted one is known only once
    /// decrypted).
    pub shared: Option<super::upload::SharedFile>,
}

/// A retraction (XEP-0424) by an author, or a moderator's removal announced by the room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetractionIn {
    /// The conversation it applies to.
    pub peer: Jid,
    /// Who sent it (the author, or the room for a moderation).
    pub sender: Jid,
    pub outgoing: bool,
    pub occupant_id: Option<String>,
    /// It came from the room itself (a moderation); authors cannot send these.
    pub from_room: bool,
    pub retraction: Retraction,
}

/// Everything we understood in one message stanza.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Inbound {
    pub chat: Option<ChatMessage>,
    /// The sender asks for a delivery receipt (and the message has an id to confirm).
    pub receipt_request: Option<String>,
    /// The peer confirms delivery of our message with this id.
    pub receipt: Option<(Jid, String)>,
    /// The peer has displayed our messages up to this id.
    pub displayed: Option<(Jid, String)>,
    pub chat_state: Option<(Jid, ChatState)>,
    /// An error bounce for one of our messages: (peer, id, text).
    pub error: Option<(Jid, Option<String>, String)>,
    /// Set when the stanza came via a carbon.
    pub carbon: bool,
    /// Set when the stanza is an archive result: the query id.
    pub archive_query: Option<String>,
    /// A room's new subject: (room, subject, who set it).
    pub subject: Option<(BareJid, String, Option<String>)>,
    /// Status codes a room sent in a message (configuration changes, XEP-0045 §10.2.1).
    pub room_codes: Option<(BareJid, Vec<u16>)>,
    pub retraction: Option<RetractionIn>,
    pub invitation: Option<Invitation>,
    /// A declined invitation: (room, who, reason).
    pub declined: Option<(BareJid, Option<BareJid>, Option<String>)>,
    /// A PEP notification from our own account (`<event/>` of pubsub#event).
    pub own_pep_event: Option<Element>,
    /// A pubsub notification from someone else's PEP service or a pubsub service: the
    /// sender (a bare JID: services send from their bare address) and the `<event/>`. What
    /// the sender may tell us is decided per node by the service that handles it.
    pub pep_event: Option<(BareJid, Element)>,
}

/// Why a stanza was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("carbon from {0}, not from our own account")]
    SpoofedCarbon(String),
    #[error("archive result from {0}, not from the archive we asked")]
    SpoofedArchive(String),
    #[error("archive result for a query we did not send ({0})")]
    UnknownQuery(String),
    #[error("message without a sender")]
    NoSender,
    #[error("group chat message in our own archive (rooms have their own)")]
    GroupChat,
    #[error("group chat message from {0}, which is not a room we are in")]
    ForgedGroupChat(String),
    #[error("malformed {0}")]
    Malformed(&'static str),
}

/// What the classifier knows about a room of ours.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomCx {
    /// Our nick in it.
    pub nick: String,
    /// We are in it (or joining it) now: group chat from it is accepted.
    pub present: bool,
    /// Our own occupant id, once the room told us.
    pub own_occupant_id: Option<String>,
    /// The room announces XEP-0421 occupant ids (so they are the room's, not forged).
    pub occupant_ids: bool,
}

/// What the classifier needs to know about the session.
#[derive(Debug)]
pub struct Context<'a> {
    pub own: &'a BareJid,
    /// Archive queries (XEP-0313 queryid) currently open, and whose archive each asks.
    pub open_queries: &'a HashMap<String, BareJid>,
    /// Rooms we know (joined or not).
    pub rooms: &'a HashMap<BareJid, RoomCx>,
}

fn is_own_account(from: Option<&Jid>, own: &BareJid) -> bool {
    match from {
        None => true, // RFC 6120 §8.1.2.1: no 'from' = from our own account
        Some(j) => j.resource().is_none() && j.to_bare() == *own,
    }
}

/// Classifies a message stanza.
pub fn classify(msg: Message, cx: &Context<'_>) -> Result<Inbound, Rejected> {
    // XEP-0313 result: <message><result queryid id><forwarded>…
    if let Some(el) = msg
        .payloads
        .iter()
        .find(|p| p.is("result", xmpp_parsers::ns::MAM))
    {
        let result = mam::Result_::try_from(el.clone())
            .map_err(|_| Rejected::Malformed("archive result"))?;
        let qid = result
            .queryid
            .as_ref()
            .map(|q| q.0.clone())
            .unwrap_or_default();
        let Some(archive) = cx.open_queries.get(&qid) else {
            return Err(Rejected::UnknownQuery(qid));
        };
        let from_archive = if archive == cx.own {
            is_own_account(msg.from.as_ref(), cx.own)
        } else {
            matches!(&msg.from, Some(f) if f.resource().is_none() && f.to_bare() == *archive)
        };
        if !from_archive {
            return Err(Rejected::SpoofedArchive(jid_str(msg.from.as_ref())));
        }
        let room_archive = (archive != cx.own).then_some(archive);
        let stamp = result.forwarded.delay.as_ref().map(delay_time);
        let inner = result.forwarded.message;
        if room_archive.is_none() && inner.type_ == MessageType::Groupchat {
            return Err(Rejected::GroupChat);
        }
        let mut inner = extract(inner, cx, stamp, room_archive)?;
        if let Some(chat) = inner.chat.as_mut() {
            chat.archive_id = Some(result.id);
        }
        // Receipts, requests and states inside the archive are history, not live signals;
        // invitations there were answered (or not) long ago.
        inner.receipt_request = None;
        inner.chat_state = None;
        inner.invitation = None;
        inner.own_pep_event = None;
        inner.pep_event = None;
        inner.archive_query = Some(qid);
        return Ok(inner);
    }

    // XEP-0280 carbons.
    let received = msg
        .payloads
        .iter()
        .find(|p| p.is("received", xmpp_parsers::ns::CARBONS));
    let sent = msg
        .payloads
        .iter()
        .find(|p| p.is("sent", xmpp_parsers::ns::CARBONS));
    if received.is_some() || sent.is_some() {
        if !matches!(&msg.from, Some(j) if j.resource().is_none() && j.to_bare() == *cx.own) {
            return Err(Rejected::SpoofedCarbon(jid_str(msg.from.as_ref())));
        }
        let forwarded = if let Some(el) = received {
            carbons::Received::try_from(el.clone())
                .map_err(|_| Rejected::Malformed("carbon"))?
                .forwarded
        } else if let Some(el) = sent {
            carbons::Sent::try_from(el.clone())
                .map_err(|_| Rejected::Malformed("carbon"))?
                .forwarded
        } else {
            return Err(Rejected::Malformed("carbon"));
        };
        if forwarded.message.type_ == MessageType::Groupchat {
            return Err(Rejected::Malformed("carbon of a group chat message"));
        }
        let stamp = forwarded.delay.as_ref().map(delay_time);
        let mut inner = extract(forwarded.message, cx, stamp, None)?;
        inner.carbon = true;
        inner.own_pep_event = None;
        inner.pep_event = None;
        if inner.chat.as_ref().is_some_and(|c| c.outgoing) {
            // Our own other device sent it: nothing to confirm, no state to show.
            inner.receipt_request = None;
            inner.chat_state = None;
        }
        return Ok(inner);
    }

    let stamp = msg
        .payloads
        .iter()
        .find(|p| p.is("delay", xmpp_parsers::ns::DELAY))
        .and_then(|el| Delay::try_from(el.clone()).ok())
        .map(|d| delay_time(&d));
    extract(msg, cx, stamp, None)
}

fn delay_time(d: &Delay) -> DateTime<Utc> {
    d.stamp.0.with_timezone(&Utc)
}

fn jid_str(j: Option<&Jid>) -> String {
    j.map(|j| j.to_string()).unwrap_or_else(|| "(none)".into())
}

fn occupant_id(msg: &Message) -> Option<String> {
    msg.payloads
        .iter()
        .find(|p| p.is("occupant-id", ns::OCCUPANT_ID))
        .and_then(|p| p.attr("id"))
        .map(str::to_owned)
}

/// The conversation a 1:1-type message with `other` belongs to: a private chat with an
/// occupant when `other` is `room/nick` of a room we know, else the bare JID.
fn conversation_of(other: &Jid, cx: &Context<'_>, marked_private: bool) -> (Jid, Kind) {
    let bare = other.to_bare();
    if other.resource().is_some() && (marked_private || cx.rooms.contains_key(&bare)) {
        (other.clone(), Kind::Private)
    } else {
        (Jid::from(bare), Kind::Chat)
    }
}

/// Extracts a group chat message (live, or from the room's archive `archive`).
fn extract_groupchat(
    msg: Message,
    cx: &Context<'_>,
    stamp: Option<DateTime<Utc>>,
    archive: Option<&BareJid>,
) -> Result<Inbound, Rejected> {
    let from = msg.from.clone().ok_or(Rejected::NoSender)?;
    let room = from.to_bare();
    let room_cx = cx.rooms.get(&room);
    let accepted = match archive {
        Some(a) => *a == room,
        None => room_cx.is_some_and(|r| r.present),
    };
    if !accepted {
        return Err(Rejected::ForgedGroupChat(from.to_string()));
    }
    let room_cx = room_cx.cloned().unwrap_or_default();
    let mut out = Inbound::default();
    let x = muc::user_x(&msg.payloads);
    if let Some(x) = &x
        && !x.codes.is_empty()
        && from.resource().is_none()
    {
        out.room_codes = Some((room.clone(), x.codes.clone()));
    }
    let occupant_id = if room_cx.occupant_ids {
        occupant_id(&msg)
    } else {
        None
    };
    let nick = from.resource().map(|r| r.to_string());
    let outgoing = match (&nick, &occupant_id, &room_cx.own_occupant_id) {
        (_, Some(theirs), Some(ours)) => theirs == ours,
        (Some(n), _, _) => *n == room_cx.nick,
        (None, _, _) => false,
    };
    if let Some(r) = retract::parse(&msg.payloads) {
        let from_room = from.resource().is_none();
        // Only the room announces moderation; an occupant can only retract their own.
        if from_room == r.moderated_by.is_some() {
            out.retraction = Some(RetractionIn {
                peer: Jid::from(room.clone()),
                sender: from.clone(),
                outgoing,
                occupant_id: occupant_id.clone(),
                from_room,
                retraction: r,
            });
        }
        return Ok(out);
    }
    let encrypted = omemo_element(&msg);
    let body = match &encrypted {
        Some(_) => Some(String::new()),
        None => msg.get_best_body_cloned(vec![]).map(|(_, b)| b),
    };
    if let Some((_, subject)) = msg.get_best_subject(vec![])
        && body.is_none()
    {
        out.subject = Some((room.clone(), subject.clone(), nick.clone()));
        return Ok(out);
    }
    let tombstone = if archive.is_some() {
        retract::tombstone(&msg)
    } else {
        None
    };
    if body.is_none() && tombstone.is_none() {
        return Ok(out);
    }
    let mut origin_id = None;
    let mut archive_id = None;
    let mut replace = None;
    for p in &msg.payloads {
        if p.is("origin-id", xmpp_parsers::ns::SID) {
            origin_id = OriginId::try_from(p.clone()).ok().map(|o| o.id);
        } else if p.is("stanza-id", xmpp_parsers::ns::SID) {
            // Only the room's own stamp counts for its messages.
            if let Ok(s) = StanzaId::try_from(p.clone())
                && s.by == room
            {
                archive_id = Some(s.id);
            }
        } else if p.is("replace", xmpp_parsers::ns::MESSAGE_CORRECT) {
            replace = Replace::try_from(p.clone()).ok().map(|r| r.id.0);
        }
    }
    out.chat = Some(ChatMessage {
        peer: Jid::from(room),
        kind: if nick.is_some() {
            Kind::GroupChat
        } else {
            Kind::Notice
        },
        outgoing,
        sender: from,
        id: msg.id.as_ref().map(|i| i.0.clone()),
        origin_id,
        archive_id,
        shared: match &encrypted {
            None => body
                .as_deref()
                .and_then(|b| super::upload::shared_file(b, &msg.payloads)),
            Some(_) => None,
        },
        body: body.unwrap_or_default(),
        stamp,
        replace,
        occupant_id,
        tombstone,
        encrypted,
    });
    Ok(out)
}

/// The OMEMO element of a message, in either namespace.
fn omemo_element(msg: &Message) -> Option<Element> {
    msg.payloads
        .iter()
        .find(|p| {
            p.name() == "encrypted"
                && crate::proto::omemo::Namespace::ALL
                    .iter()
                    .any(|ns| p.ns() == ns.xmlns())
        })
        .cloned()
}

/// Extracts the content of a plain (already unwrapped) message. `room_archive` is set for
/// results of a room's archive.
fn extract(
    msg: Message,
    cx: &Context<'_>,
    stamp: Option<DateTime<Utc>>,
    room_archive: Option<&BareJid>,
) -> Result<Inbound, Rejected> {
    if msg.type_ == MessageType::Groupchat {
        return extract_groupchat(msg, cx, stamp, room_archive);
    }
    if room_archive.is_some() {
        return Err(Rejected::Malformed(
            "non-group-chat message in a room archive",
        ));
    }
    let from = match &msg.from {
        Some(f) => f.clone(),
        // Only the unwrapped message of a carbon/archive result may lack 'from' if it was sent
        // by us; treat it as ours.
        None => Jid::from(cx.own.clone()),
    };
    if let Some(ev) = msg
        .payloads
        .iter()
        .find(|p| p.is("event", xmpp_parsers::ns::PUBSUB_EVENT))
    {
        let mut out = Inbound::default();
        if is_own_account(msg.from.as_ref(), cx.own) {
            out.own_pep_event = Some(ev.clone());
        } else if let Some(f) = msg.from.as_ref().filter(|f| f.resource().is_none()) {
            out.pep_event = Some((f.to_bare(), ev.clone()));
        }
        return Ok(out);
    }
    let outgoing = from.to_bare() == *cx.own;
    let marked_private = muc::user_x(&msg.payloads).is_some();
    let (peer, kind) = if outgoing {
        match &msg.to {
            Some(t) => conversation_of(t, cx, marked_private),
            None => return Err(Rejected::NoSender),
        }
    } else {
        conversation_of(&from, cx, marked_private)
    };
    let id = msg.id.as_ref().map(|i| i.0.clone());
    let mut out = Inbound::default();

    if msg.type_ == MessageType::Error {
        let text = msg
            .payloads
            .iter()
            .find(|p| p.name() == "error")
            .map(|e| {
                e.children()
                    .map(|c| c.name().to_owned())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_else(|| "error".into());
        out.error = Some((peer, id, text));
        return Ok(out);
    }

    if !outgoing {
        if let Some(inv) = muc::invitation(&msg) {
            out.invitation = Some(inv);
            return Ok(out);
        }
        if let Some(d) = muc::declined(&msg) {
            out.declined = Some(d);
            return Ok(out);
        }
    }
    if let Some(r) = retract::parse(&msg.payloads) {
        if r.moderated_by.is_none() {
            out.retraction = Some(RetractionIn {
                peer,
                sender: from,
                outgoing,
                occupant_id: None,
                from_room: false,
                retraction: r,
            });
        }
        return Ok(out);
    }

    let mut origin_id = None;
    let mut archive_id = None;
    let mut replace = None;
    let mut wants_receipt = false;
    for p in &msg.payloads {
        if p.is("origin-id", xmpp_parsers::ns::SID) {
            origin_id = OriginId::try_from(p.clone()).ok().map(|o| o.id);
        } else if p.is("stanza-id", xmpp_parsers::ns::SID) {
            // Only our own server's stamp counts (XEP-0359 §4: check 'by').
            if let Ok(s) = StanzaId::try_from(p.clone())
                && s.by == cx.own.clone()
            {
                archive_id = Some(s.id);
            }
        } else if p.is("replace", xmpp_parsers::ns::MESSAGE_CORRECT) {
            replace = Replace::try_from(p.clone()).ok().map(|r| r.id.0);
        } else if p.is("request", xmpp_parsers::ns::RECEIPTS) {
            wants_receipt = true;
        } else if p.is("received", xmpp_parsers::ns::RECEIPTS) {
            if let Ok(r) = receipts::Received::try_from(p.clone())
                && !outgoing
                && !r.id.is_empty()
            {
                out.receipt = Some((peer.clone(), r.id));
            }
        } else if p.is("displayed", ns::CHAT_MARKERS) {
            if let Ok(d) = displayed_markers::Displayed::try_from(p.clone())
                && !outgoing
            {
                out.displayed = Some((peer.clone(), d.id.0));
            }
        } else if p.ns() == xmpp_parsers::ns::CHATSTATES
            && let Ok(s) = ChatState::try_from(p.clone())
        {
            out.chat_state = Some((from.clone(), s));
        }
    }

    let encrypted = omemo_element(&msg);
    let body = match &encrypted {
        // The real body is inside; a key transport or heartbeat has none at all.
        Some(_) => Some(String::new()),
        None => msg.get_best_body_cloned(vec![]).map(|(_, b)| b),
    };
    if let Some(body) = body {
        if wants_receipt && !outgoing {
            out.receipt_request = id.clone();
        }
        out.chat = Some(ChatMessage {
            shared: match &encrypted {
                None => super::upload::shared_file(&body, &msg.payloads),
                Some(_) => None,
            },
            peer,
            kind,
            outgoing,
            sender: from,
            id,
            origin_id,
            archive_id,
            body,
            stamp,
            replace,
            occupant_id: None,
            tombstone: None,
            encrypted,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use minidom::Element;

    fn own() -> BareJid {
        BareJid::new("alice@example.org").expect("valid")
    }

    fn parse(xml: &str) -> anyhow::Result<Message> {
        let el: Element = xml.parse()?;
        Ok(Message::try_from(el)?)
    }

    fn run(xml: &str, queries: &[&str]) -> anyhow::Result<Result<Inbound, Rejected>> {
        let own = own();
        let open: HashMap<String, BareJid> = queries
            .iter()
            .map(|s| (s.to_string(), own.clone()))
            .collect();
        run_in(xml, &open, &HashMap::new())
    }

    fn run_in(
        xml: &str,
        open: &HashMap<String, BareJid>,
        rooms: &HashMap<BareJid, RoomCx>,
    ) -> anyhow::Result<Result<Inbound, Rejected>> {
        let own = own();
        let cx = Context {
            own: &own,
            open_queries: open,
            rooms,
        };
        Ok(classify(parse(xml)?, &cx))
    }

    fn room() -> BareJid {
        BareJid::new("room@conf.example.org").expect("valid")
    }

    fn rooms(present: bool, occupant_ids: bool) -> HashMap<BareJid, RoomCx> {
        HashMap::from([(
            room(),
            RoomCx {
                nick: "alice".into(),
                present,
                own_occupant_id: None,
                occupant_ids,
            },
        )])
    }

    const GROUPCHAT: &str = "<message xmlns='jabber:client' from='room@conf.example.org/bob' \
         to='alice@example.org/pc' type='groupchat' id='g1'><body>hi all, alice</body>\
         <origin-id xmlns='urn:xmpp:sid:0' id='g1'/>\
         <stanza-id xmlns='urn:xmpp:sid:0' by='room@conf.example.org' id='R1'/>\
         <stanza-id xmlns='urn:xmpp:sid:0' by='alice@example.org' id='fake'/>\
         <occupant-id xmlns='urn:xmpp:occupant-id:0' id='occ-bob'/></message>";

    #[test]
    fn group_chat_only_from_rooms_we_are_in() -> anyhow::Result<()> {
        let none = HashMap::new();
        let r = run_in(GROUPCHAT, &none, &rooms(true, true))??;
        let chat = r.chat.ok_or_else(|| anyhow::anyhow!("no chat"))?;
        assert_eq!(chat.kind, Kind::GroupChat);
        assert_eq!(chat.peer.to_string(), "room@conf.example.org");
        assert_eq!(
            chat.archive_id.as_deref(),
            Some("R1"),
            "only the room's stanza-id"
        );
        assert_eq!(chat.occupant_id.as_deref(), Some("occ-bob"));
        assert!(!chat.outgoing);
        // Occupant ids from a room that does not announce them may be forged by the sender.
        let r = run_in(GROUPCHAT, &none, &rooms(true, false))??;
        assert_eq!(r.chat.and_then(|c| c.occupant_id), None);
        // Left the room, or never in it: forged.
        for rs in [rooms(false, true), HashMap::new()] {
            assert!(matches!(
                run_in(GROUPCHAT, &none, &rs)?,
                Err(Rejected::ForgedGroupChat(_))
            ));
        }
        // Our own nick: a reflection of our message.
        let ours = GROUPCHAT.replace("conf.example.org/bob", "conf.example.org/alice");
        let r = run_in(&ours, &none, &rooms(true, true))??;
        assert!(r.chat.is_some_and(|c| c.outgoing));
        Ok(())
    }

    #[test]
    fn room_archive_results_only_from_the_room() -> anyhow::Result<()> {
        let xml = |from: &str| {
            format!(
                "<message xmlns='jabber:client' from='{from}' to='alice@example.org/pc'>\
                 <result xmlns='urn:xmpp:mam:2' queryid='rq' id='R7'>\
                 <forwarded xmlns='urn:xmpp:forward:0'>\
                 <delay xmlns='urn:xmpp:delay' stamp='2026-01-02T03:04:05Z'/>\
                 <message xmlns='jabber:client' from='room@conf.example.org/bob' type='groupchat' \
                 id='x'><body>old</body></message></forwarded></result></message>"
            )
        };
        let open = HashMap::from([("rq".to_owned(), room())]);
        // Not present (catch-up may run before the join completes): still accepted.
        let r = run_in(&xml("room@conf.example.org"), &open, &rooms(false, false))??;
        let chat = r.chat.ok_or_else(|| anyhow::anyhow!("no chat"))?;
        assert_eq!(chat.archive_id.as_deref(), Some("R7"));
        assert_eq!(r.archive_query.as_deref(), Some("rq"));
        for from in [
            "alice@example.org",
            "room@conf.example.org/bob",
            "other@conf.example.org",
        ] {
            assert!(
                matches!(
                    run_in(&xml(from), &open, &rooms(true, false))?,
                    Err(Rejected::SpoofedArchive(_))
                ),
                "{from}"
            );
        }
        Ok(())
    }

    #[test]
    fn private_messages_stay_with_the_room() -> anyhow::Result<()> {
        let none = HashMap::new();
        let xml = "<message xmlns='jabber:client' from='room@conf.example.org/bob' type='chat' \
             id='p1'><body>psst</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>";
        let r = run_in(xml, &none, &rooms(true, false))??;
        let chat = r.chat.ok_or_else(|| anyhow::anyhow!("no chat"))?;
        assert_eq!(chat.kind, Kind::Private);
        assert_eq!(chat.peer.to_string(), "room@conf.example.org/bob");
        // Our carbon of a private message we sent from another device.
        let sent = "<message xmlns='jabber:client' from='alice@example.org' to='alice@example.org/pc'>\
             <sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>\
             <message xmlns='jabber:client' from='alice@example.org/phone' \
             to='room@conf.example.org/bob' type='chat' id='p2'><body>back</body>\
             <x xmlns='http://jabber.org/protocol/muc#user'/></message></forwarded></sent></message>";
        let r = run_in(sent, &none, &HashMap::new())??;
        let chat = r.chat.ok_or_else(|| anyhow::anyhow!("no chat"))?;
        assert!(chat.outgoing && chat.kind == Kind::Private);
        assert_eq!(chat.peer.to_string(), "room@conf.example.org/bob");
        Ok(())
    }

    #[test]
    fn retractions_moderation_and_pep_events() -> anyhow::Result<()> {
        let none = HashMap::new();
        let moderation = "<message xmlns='jabber:client' from='room@conf.example.org' \
             type='groupchat'><apply-to xmlns='urn:xmpp:fasten:0' id='R1'>\
             <moderated xmlns='urn:xmpp:message-moderate:0' by='room@conf.example.org/mod'>\
             <retract xmlns='urn:xmpp:message-retract:0'/></moderated></apply-to></message>";
        let r = run_in(moderation, &none, &rooms(true, false))??;
        let rin = r
            .retraction
            .ok_or_else(|| anyhow::anyhow!("no retraction"))?;
        assert!(rin.from_room && rin.retraction.target == "R1");
        // An occupant cannot announce a moderation.
        let fake = moderation.replace(
            "from='room@conf.example.org'",
            "from='room@conf.example.org/eve'",
        );
        assert!(
            run_in(&fake, &none, &rooms(true, false))??
                .retraction
                .is_none()
        );

        let pep = |from: &str| {
            format!(
                "<message xmlns='jabber:client' from='{from}'><event \
                 xmlns='http://jabber.org/protocol/pubsub#event'><items \
                 node='urn:xmpp:bookmarks:1'/></event></message>"
            )
        };
        assert!(
            run(&pep("alice@example.org"), &[])??
                .own_pep_event
                .is_some()
        );
        let other = run(&pep("mallory@example.org"), &[])??;
        assert!(other.own_pep_event.is_none());
        assert_eq!(
            other.pep_event.map(|(f, _)| f.to_string()).as_deref(),
            Some("mallory@example.org")
        );
        assert!(
            run(&pep("mallory@example.org/res"), &[])??
                .pep_event
                .is_none(),
            "services send from bare JIDs"
        );
        Ok(())
    }

    #[test]
    fn plain_chat_with_receipt_request_and_ids() -> anyhow::Result<()> {
        let r = run(
            "<message xmlns='jabber:client' from='bob@example.org/phone' to='alice@example.org/pc' \
             type='chat' id='m1'><body>hi</body><request xmlns='urn:xmpp:receipts'/>\
             <origin-id xmlns='urn:xmpp:sid:0' id='o1'/>\
             <stanza-id xmlns='urn:xmpp:sid:0' by='alice@example.org' id='s1'/>\
             <stanza-id xmlns='urn:xmpp:sid:0' by='evil@example.org' id='fake'/>\
             <active xmlns='http://jabber.org/protocol/chatstates'/></message>",
            &[],
        )??;
        let chat = r.chat.ok_or_else(|| anyhow::anyhow!("no chat"))?;
        assert_eq!(chat.body, "hi");
        assert!(!chat.outgoing);
        assert_eq!(chat.archive_id.as_deref(), Some("s1"));
        assert_eq!(chat.origin_id.as_deref(), Some("o1"));
        assert_eq!(r.receipt_request.as_deref(), Some("m1"));
        assert!(matches!(r.chat_state, Some((_, ChatState::Active))));
        Ok(())
    }

    #[test]
    fn carbon_from_own_bare_jid_is_accepted() -> anyhow::Result<()> {
        let r = run(
            "<message xmlns='jabber:client' from='alice@example.org' to='alice@example.org/pc'>\
             <sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>\
             <message xmlns='jabber:client' from='alice@example.org/phone' to='bob@example.org' \
             type='chat' id='x'><body>from my phone</body></message></forwarded></sent></message>",
            &[],
        )??;
        let chat = r.chat.ok_or_else(|| anyhow::anyhow!("no chat"))?;
        assert!(chat.outgoing && r.carbon);
        assert_eq!(chat.peer.as_str(), "bob@example.org");
        Ok(())
    }

    #[test]
    fn spoofed_carbons_are_rejected() -> anyhow::Result<()> {
        for from in [
            "mallory@example.org",
            "alice@example.org/phone",
            "example.org",
        ] {
            let r = run(
                &format!(
                    "<message xmlns='jabber:client' from='{from}' to='alice@example.org/pc'>\
                     <received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>\
                     <message xmlns='jabber:client' from='bob@example.org/x' to='alice@example.org' \
                     type='chat'><body>fake</body></message></forwarded></received></message>"
                ),
                &[],
            )?;
            assert!(
                matches!(r, Err(Rejected::SpoofedCarbon(_))),
                "{from}: {r:?}"
            );
        }
        Ok(())
    }

    #[test]
    fn archive_results_only_for_our_queries_from_our_archive() -> anyhow::Result<()> {
        let xml = |from: &str| {
            format!(
                "<message xmlns='jabber:client' {from} to='alice@example.org/pc'>\
                 <result xmlns='urn:xmpp:mam:2' queryid='q1' id='A1'>\
                 <forwarded xmlns='urn:xmpp:forward:0'>\
                 <delay xmlns='urn:xmpp:delay' stamp='2026-01-02T03:04:05Z'/>\
                 <message xmlns='jabber:client' from='bob@example.org/x' to='alice@example.org' \
                 type='chat' id='b1'><body>old</body><request xmlns='urn:xmpp:receipts'/></message>\
                 </forwarded></result></message>"
            )
        };
        let ok = run(&xml(""), &["q1"])??;
        let chat = ok.chat.ok_or_else(|| anyhow::anyhow!("no chat"))?;
        assert_eq!(chat.archive_id.as_deref(), Some("A1"));
        assert!(chat.stamp.is_some());
        assert_eq!(ok.receipt_request, None);
        assert!(run(&xml("from='alice@example.org'"), &["q1"])?.is_ok());
        assert!(matches!(
            run(&xml("from='mallory@example.org'"), &["q1"])?,
            Err(Rejected::SpoofedArchive(_))
        ));
        assert!(matches!(
            run(&xml(""), &["other"])?,
            Err(Rejected::UnknownQuery(_))
        ));
        Ok(())
    }

    #[test]
    fn correction_receipt_marker_and_error() -> anyhow::Result<()> {
        let r = run(
            "<message xmlns='jabber:client' from='bob@example.org/x' type='chat' id='c2'>\
             <body>fixed</body><replace xmlns='urn:xmpp:message-correct:0' id='c1'/></message>",
            &[],
        )??;
        assert_eq!(r.chat.and_then(|c| c.replace).as_deref(), Some("c1"));
        let r = run(
            "<message xmlns='jabber:client' from='bob@example.org/x'>\
             <received xmlns='urn:xmpp:receipts' id='m9'/></message>",
            &[],
        )??;
        assert_eq!(r.receipt.map(|(_, id)| id).as_deref(), Some("m9"));
        let r = run(
            "<message xmlns='jabber:client' from='bob@example.org/x'>\
             <displayed xmlns='urn:xmpp:chat-markers:0' id='m9'/></message>",
            &[],
        )??;
        assert_eq!(r.displayed.map(|(_, id)| id).as_deref(), Some("m9"));
        let r = run(
            "<message xmlns='jabber:client' from='bob@example.org' type='error' id='m9'>\
             <error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
             </error></message>",
            &[],
        )??;
        assert!(r.error.is_some());
        Ok(())
    }
}
