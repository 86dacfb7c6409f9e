//! 1:1 chat (RFC 6121 messages with XEP-0359 ids, XEP-0184 receipts, XEP-0333 markers,
//! XEP-0085 chat states and XEP-0308 corrections).

use jid::{BareJid, Jid};
use minidom::Element;
use xmpp_parsers::chatstates::ChatState;
use xmpp_parsers::displayed_markers::{Displayed, Markable};
use xmpp_parsers::message::{Id, Lang, Message};
use xmpp_parsers::message_correct::Replace;
use xmpp_parsers::receipts;
use xmpp_parsers::stanza_id::OriginId;

use crate::api::ChatStateKind;

/// The stanza for an outgoing chat message (or a correction of `replace`), serialised for the
/// outbox. @id and origin-id are the same, so receipts, markers, corrections and archive
/// copies all find the message again.
pub fn message_stanza(to: &BareJid, id: &str, body: &str, replace: Option<&str>) -> String {
    let mut m = Message::chat(Some(Jid::from(to.clone())))
        .with_body(Lang::new(), body.to_owned())
        .with_payload(OriginId { id: id.to_owned() })
        .with_payload(receipts::Request)
        .with_payload(Markable)
        .with_payload(ChatState::Active);
    m.id = Some(Id(id.to_owned()));
    if let Some(r) = replace {
        m = m.with_payload(Replace {
            id: Id(r.to_owned()),
        });
    }
    String::from(&Element::from(m))
}

/// The stanza for a plaintext file message, to a contact or a room (`groupchat`): the link
/// as body and in XEP-0066 `<x/>` (which tells receivers to show the file rather than the
/// link), and XEP-0447 metadata when known.
pub fn file_message_stanza(
    to: &BareJid,
    groupchat: bool,
    id: &str,
    url: &str,
    meta: Option<&crate::proto::upload::FileMeta>,
) -> String {
    let mut m = if groupchat {
        crate::proto::muc::groupchat(to, id, url, None)
    } else {
        let mut m = Message::chat(Some(Jid::from(to.clone())))
            .with_body(Lang::new(), url.to_owned())
            .with_payload(OriginId { id: id.to_owned() })
            .with_payload(receipts::Request)
            .with_payload(Markable);
        m.id = Some(Id(id.to_owned()));
        m
    };
    m.payloads.push(crate::proto::upload::oob(url));
    if let Some(meta) = meta {
        m.payloads
            .push(crate::proto::upload::file_sharing(url, meta));
    }
    String::from(&Element::from(m))
}

/// Parses an outbox stanza back into a message for sending.
pub fn parse_outbox(xml: &str) -> Option<Message> {
    let el: Element = xml.parse().ok()?;
    Message::try_from(el).ok()
}

/// A delivery receipt for message `id` from `to`.
pub fn receipt(to: Jid, id: &str) -> Message {
    let mut m = Message::chat(Some(to)).with_payload(receipts::Received { id: id.to_owned() });
    m.id = Some(Id(crate::proto::new_id()));
    m
}

/// A displayed marker for message `id`.
pub fn displayed(to: BareJid, id: &str) -> Message {
    let mut m = Message::chat(Some(Jid::from(to))).with_payload(Displayed {
        id: Id(id.to_owned()),
    });
    m.id = Some(Id(crate::proto::new_id()));
    m
}

/// A standalone chat state notification.
pub fn chat_state(to: BareJid, state: ChatStateKind) -> Message {
    let s = match state {
        ChatStateKind::Active => ChatState::Active,
        ChatStateKind::Composing => ChatState::Composing,
        ChatStateKind::Paused => ChatState::Paused,
        ChatStateKind::Inactive => ChatState::Inactive,
        ChatStateKind::Gone => ChatState::Gone,
    };
    Message::chat(Some(Jid::from(to))).with_payload(s)
}

/// Name of a chat state for events.
pub fn chat_state_name(s: &ChatState) -> &'static str {
    match s {
        ChatState::Active => "active",
        ChatState::Composing => "composing",
        ChatState::Gone => "gone",
        ChatState::Inactive => "inactive",
        ChatState::Paused => "paused",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_stanza_roundtrip() -> anyhow::Result<()> {
        let to = BareJid::new("bob@example.org")?;
        let xml = message_stanza(&to, "abc", "hi <there> & you", Some("old"));
        let m = parse_outbox(&xml).ok_or_else(|| anyhow::anyhow!("does not parse: {xml}"))?;
        assert_eq!(m.id.as_ref().map(|i| i.0.as_str()), Some("abc"));
        assert_eq!(
            m.get_best_body_cloned(vec![]).map(|b| b.1).as_deref(),
            Some("hi <there> & you")
        );
        assert!(
            m.payloads
                .iter()
                .any(|p| p.is("replace", xmpp_parsers::ns::MESSAGE_CORRECT))
        );
        assert!(
            m.payloads
                .iter()
                .any(|p| p.is("origin-id", xmpp_parsers::ns::SID))
        );
        assert!(
            m.payloads
                .iter()
                .any(|p| p.is("request", xmpp_parsers::ns::RECEIPTS))
        );
        Ok(())
    }
}
