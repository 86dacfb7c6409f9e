//! XEP-0424: Message Retraction (v0.4, `urn:xmpp:message-retract:1`; the fastening-based
//! v0.3 is read and also sent for older clients) and XEP-0425: Message Moderation (v0.3
//! `urn:xmpp:message-moderate:1`, and the fastening-based `:0` that Prosody's
//! mod_muc_moderation implements).

use jid::Jid;
use minidom::Element;
use xmpp_parsers::message::{Lang, Message, MessageType};

use super::ns;

/// Text shown by clients that do not understand a retraction.
const FALLBACK_BODY: &str =
    "This person attempted to retract a previous message, but your client does not support it.";

/// A retraction or a moderator's removal of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retraction {
    /// The retracted message: its origin-id (1:1) or the room's stanza-id (group chat).
    pub target: String,
    /// Set when a moderator removed it: who (a nick or JID, as the room says).
    pub moderated_by: Option<String>,
    pub reason: Option<String>,
}

/// A retraction of our own message `target`. In a room `target` is the room's stanza-id;
/// `origin_id` is the message's own id, which the older fastening form refers to.
pub fn retract(to: Jid, groupchat: bool, target: &str, origin_id: &str) -> Message {
    let mut m = if groupchat {
        Message::groupchat(Some(to))
    } else {
        Message::chat(Some(to))
    };
    m.id = Some(xmpp_parsers::message::Id(super::new_id()));
    let mut m = m.with_body(Lang::new(), FALLBACK_BODY.to_owned());
    m.payloads.extend([
        Element::builder("retract", ns::RETRACT_1)
            .attr(crate::proto::n!("id"), target)
            .build(),
        Element::builder("apply-to", ns::FASTEN)
            .attr(crate::proto::n!("id"), origin_id)
            .append(Element::builder("retract", ns::RETRACT_0).build())
            .build(),
        Element::builder("fallback", ns::FALLBACK)
            .attr(crate::proto::n!("for"), ns::RETRACT_1)
            .build(),
        Element::builder("store", ns::HINTS).build(),
    ]);
    m
}

/// The moderation request for message `stanza_id` of a room, in the version the room offers
/// (`ns::MODERATE_1` or `ns::MODERATE_0`).
pub fn moderate(version: &str, stanza_id: &str, reason: Option<&str>) -> Element {
    let reason_el =
        |ns: &str| reason.map(|r| Element::builder("reason", ns).append(r.to_owned()).build());
    if version == ns::MODERATE_1 {
        let mut m = Element::builder("moderate", ns::MODERATE_1)
            .attr(crate::proto::n!("id"), stanza_id)
            .append(Element::builder("retract", ns::RETRACT_1).build())
            .build();
        if let Some(r) = reason_el(ns::MODERATE_1) {
            m.append_child(r);
        }
        m
    } else {
        let mut m = Element::builder("moderate", ns::MODERATE_0)
            .append(Element::builder("retract", ns::RETRACT_0).build())
            .build();
        if let Some(r) = reason_el(ns::MODERATE_0) {
            m.append_child(r);
        }
        Element::builder("apply-to", ns::FASTEN)
            .attr(crate::proto::n!("id"), stanza_id)
            .append(m)
            .build()
    }
}

fn text(el: &Element, name: &str) -> Option<String> {
    el.children()
        .find(|c| c.name() == name)
        .map(|c| c.text())
        .filter(|t| !t.is_empty())
}

/// Reads a retraction or moderation out of a message's payloads (all supported versions).
pub fn parse(payloads: &[Element]) -> Option<Retraction> {
    for p in payloads {
        // v0.4: <retract id=…/>, possibly with <moderated/> inside (XEP-0425 v0.3).
        if p.is("retract", ns::RETRACT_1) {
            let target = p.attr("id")?.to_owned();
            let moderated = p.get_child("moderated", ns::MODERATE_1);
            return Some(Retraction {
                target,
                moderated_by: moderated.and_then(|m| m.attr("by")).map(str::to_owned),
                reason: text(p, "reason"),
            });
        }
        // v0.3 fastening: <apply-to id=…><retract/></apply-to> or <moderated><retract/>.
        if p.is("apply-to", ns::FASTEN) {
            let target = p.attr("id")?.to_owned();
            if p.get_child("retract", ns::RETRACT_0).is_some() {
                return Some(Retraction {
                    target,
                    moderated_by: None,
                    reason: None,
                });
            }
            if let Some(m) = p.get_child("moderated", ns::MODERATE_0)
                && m.get_child("retract", ns::RETRACT_0).is_some()
            {
                return Some(Retraction {
                    target,
                    moderated_by: m.attr("by").map(str::to_owned),
                    reason: text(m, "reason"),
                });
            }
        }
    }
    None
}

/// Whether an archived message is a tombstone: the archive replaced a moderated or retracted
/// message with a marker (Prosody's mod_muc_moderation does this). Returns who removed it.
pub fn tombstone(msg: &Message) -> Option<Option<String>> {
    if msg.type_ == MessageType::Error {
        return None;
    }
    for p in &msg.payloads {
        if p.is("retracted", ns::RETRACT_1) {
            return Some(None);
        }
        for (moderate, retract) in [
            (ns::MODERATE_0, ns::RETRACT_0),
            (ns::MODERATE_1, ns::RETRACT_1),
        ] {
            if p.is("moderated", moderate) && p.get_child("retracted", retract).is_some() {
                return Some(p.attr("by").map(str::to_owned));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(xml: &str) -> anyhow::Result<Message> {
        let el: Element = xml.parse()?;
        Ok(Message::try_from(el)?)
    }

    /// XEP-0424 Example 3 (v0.4).
    #[test]
    fn retraction_example() -> anyhow::Result<()> {
        let m = msg(
            "<message xmlns='jabber:client' type='chat' to='lord@capulet.example' \
             id='retract-message-1'><retract id='origin-id-1' xmlns='urn:xmpp:message-retract:1'/>\
             <fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:message-retract:1'/>\
             <body>/me retracted a previous message, but it's unsupported by your client.</body>\
             <store xmlns='urn:xmpp:hints'/></message>",
        )?;
        let r = parse(&m.payloads).ok_or_else(|| anyhow::anyhow!("not parsed"))?;
        assert_eq!(r.target, "origin-id-1");
        assert_eq!(r.moderated_by, None);
        Ok(())
    }

    /// XEP-0425 v0.3 announcement and the fastening form Prosody's module broadcasts.
    #[test]
    fn moderation_announcements() -> anyhow::Result<()> {
        let m = msg(
            "<message xmlns='jabber:client' type='groupchat' from='room@muc.example'>\
             <retract id='stanza-id-1' xmlns='urn:xmpp:message-retract:1'>\
             <moderated by='room@muc.example/macbeth' xmlns='urn:xmpp:message-moderate:1'/>\
             <reason>Spam</reason></retract></message>",
        )?;
        let r = parse(&m.payloads).ok_or_else(|| anyhow::anyhow!("not parsed"))?;
        assert_eq!(r.target, "stanza-id-1");
        assert_eq!(r.moderated_by.as_deref(), Some("room@muc.example/macbeth"));
        assert_eq!(r.reason.as_deref(), Some("Spam"));

        let m = msg(
            "<message xmlns='jabber:client' type='groupchat' from='room@muc.example' id='x'>\
             <apply-to xmlns='urn:xmpp:fasten:0' id='sid-9'>\
             <moderated xmlns='urn:xmpp:message-moderate:0' by='room@muc.example/mod'>\
             <retract xmlns='urn:xmpp:message-retract:0'/><reason>off topic</reason>\
             </moderated></apply-to></message>",
        )?;
        let r = parse(&m.payloads).ok_or_else(|| anyhow::anyhow!("not parsed"))?;
        assert_eq!(r.target, "sid-9");
        assert_eq!(r.reason.as_deref(), Some("off topic"));
        assert!(r.moderated_by.is_some());
        Ok(())
    }

    #[test]
    fn tombstones_and_requests() -> anyhow::Result<()> {
        let m = msg(
            "<message xmlns='jabber:client' type='groupchat' from='room@muc.example/bob' id='o'>\
             <moderated xmlns='urn:xmpp:message-moderate:0' by='room@muc.example/mod'>\
             <retracted xmlns='urn:xmpp:message-retract:0' stamp='2026-01-01T00:00:00Z'/>\
             </moderated></message>",
        )?;
        assert_eq!(tombstone(&m), Some(Some("room@muc.example/mod".into())));
        assert_eq!(tombstone(&msg("<message xmlns='jabber:client'/>")?), None);

        let v0 = String::from(&moderate(ns::MODERATE_0, "sid", Some("spam")));
        assert!(v0.contains("urn:xmpp:fasten:0") && v0.contains("sid") && v0.contains("spam"));
        let v1 = String::from(&moderate(ns::MODERATE_1, "sid", None));
        assert!(v1.contains("urn:xmpp:message-moderate:1") && !v1.contains("fasten"));

        let out = retract(Jid::new("room@muc.example")?, true, "sid", "oid");
        let r = parse(&out.payloads).ok_or_else(|| anyhow::anyhow!("own retraction"))?;
        assert_eq!(
            r.target, "sid",
            "v1 (room stanza-id) wins over the fastening form"
        );
        assert!(
            out.bodies.values().next().is_some(),
            "fallback body for old clients"
        );
        Ok(())
    }
}
