//! The first stages of the inbound message pipeline, sans I/O: validate who sent a stanza,
//! unwrap carbons (XEP-0280) and archive results (XEP-0313), and extract what we understand
//! (RFC 6121 bodies, XEP-0359 ids, XEP-0308 corrections, XEP-0184 receipts, XEP-0333
//! markers, XEP-0085 chat states, XEP-0203 delays).
//!
//! Security rules live here, in one place: a carbon is accepted only from our own bare JID;
//! an archive result only for a query we sent and only from our own archive; a stanza-id only
//! when our own server (`by` = our bare JID) stamped it.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use jid::{BareJid, Jid};
use xmpp_parsers::carbons;
use xmpp_parsers::chatstates::ChatState;
use xmpp_parsers::delay::Delay;
use xmpp_parsers::displayed_markers;
use xmpp_parsers::mam;
use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::message_correct::Replace;
use xmpp_parsers::receipts;
use xmpp_parsers::stanza_id::{OriginId, StanzaId};

use super::ns;

/// A chat message with a body, ready for dedup and storage.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatMessage {
    /// The other party (bare JID).
    pub peer: BareJid,
    /// Sent by us (seen through a carbon or the archive).
    pub outgoing: bool,
    pub sender: Jid,
    pub id: Option<String>,
    pub origin_id: Option<String>,
    /// The id our server's archive gave it.
    pub archive_id: Option<String>,
    pub body: String,
    /// When it was sent, if the stanza says so (delay); otherwise "now".
    pub stamp: Option<DateTime<Utc>>,
    pub replace: Option<String>,
}

/// Everything we understood in one message stanza.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Inbound {
    pub chat: Option<ChatMessage>,
    /// The sender asks for a delivery receipt (and the message has an id to confirm).
    pub receipt_request: Option<String>,
    /// The peer confirms delivery of our message with this id.
    pub receipt: Option<(BareJid, String)>,
    /// The peer has displayed our messages up to this id.
    pub displayed: Option<(BareJid, String)>,
    pub chat_state: Option<(Jid, ChatState)>,
    /// An error bounce for one of our messages: (peer, id, text).
    pub error: Option<(BareJid, Option<String>, String)>,
    /// Set when the stanza came via a carbon.
    pub carbon: bool,
    /// Set when the stanza is an archive result: the query id.
    pub archive_query: Option<String>,
}

/// Why a stanza was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("carbon from {0}, not from our own account")]
    SpoofedCarbon(String),
    #[error("archive result from {0}, not from our own archive")]
    SpoofedArchive(String),
    #[error("archive result for a query we did not send ({0})")]
    UnknownQuery(String),
    #[error("message without a sender")]
    NoSender,
    #[error("group chat message (not handled yet)")]
    GroupChat,
    #[error("malformed {0}")]
    Malformed(&'static str),
}

/// What the classifier needs to know about the session.
#[derive(Debug)]
pub struct Context<'a> {
    pub own: &'a BareJid,
    /// Archive queries (XEP-0313 queryid) currently open.
    pub open_queries: &'a HashSet<String>,
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
        if !is_own_account(msg.from.as_ref(), cx.own) {
            return Err(Rejected::SpoofedArchive(jid_str(msg.from.as_ref())));
        }
        let qid = result
            .queryid
            .as_ref()
            .map(|q| q.0.clone())
            .unwrap_or_default();
        if !cx.open_queries.contains(&qid) {
            return Err(Rejected::UnknownQuery(qid));
        }
        let stamp = result.forwarded.delay.as_ref().map(delay_time);
        let mut inner = extract(result.forwarded.message, cx, stamp)?;
        if let Some(chat) = inner.chat.as_mut() {
            chat.archive_id = Some(result.id);
        }
        // Receipts and requests inside the archive are history, not live signals.
        inner.receipt_request = None;
        inner.chat_state = None;
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
        let stamp = forwarded.delay.as_ref().map(delay_time);
        let mut inner = extract(forwarded.message, cx, stamp)?;
        inner.carbon = true;
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
    extract(msg, cx, stamp)
}

fn delay_time(d: &Delay) -> DateTime<Utc> {
    d.stamp.0.with_timezone(&Utc)
}

fn jid_str(j: Option<&Jid>) -> String {
    j.map(|j| j.to_string()).unwrap_or_else(|| "(none)".into())
}

/// Extracts the content of a plain (already unwrapped) message.
fn extract(
    msg: Message,
    cx: &Context<'_>,
    stamp: Option<DateTime<Utc>>,
) -> Result<Inbound, Rejected> {
    if msg.type_ == MessageType::Groupchat {
        return Err(Rejected::GroupChat);
    }
    let from = match &msg.from {
        Some(f) => f.clone(),
        // Only the unwrapped message of a carbon/archive result may lack 'from' if it was sent
        // by us; treat it as ours.
        None => Jid::from(cx.own.clone()),
    };
    let outgoing = from.to_bare() == *cx.own;
    let peer = if outgoing {
        match &msg.to {
            Some(t) => t.to_bare(),
            None => return Err(Rejected::NoSender),
        }
    } else {
        from.to_bare()
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

    if let Some((_, body)) = msg.get_best_body_cloned(vec![]) {
        if wants_receipt && !outgoing {
            out.receipt_request = id.clone();
        }
        out.chat = Some(ChatMessage {
            peer,
            outgoing,
            sender: from,
            id,
            origin_id,
            archive_id,
            body,
            stamp,
            replace,
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
        let open: HashSet<String> = queries.iter().map(|s| s.to_string()).collect();
        let cx = Context {
            own: &own,
            open_queries: &open,
        };
        Ok(classify(parse(xml)?, &cx))
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
