//! XEP-0364: Current Off-the-Record Messaging Usage (v0.3.2): how OTR messages travel in
//! XMPP. OTR rides in the `<body/>` of chat messages; this module tells OTR bodies apart and
//! builds the stanzas that carry ours, marked so that no archive, offline store or other
//! device of ours keeps a copy (XEP-0334 hints, XEP-0280 `<private/>`), with XEP-0380's
//! explicit encryption marker for clients that do not speak OTR.

use jid::Jid;
use minidom::Element;
use xmpp_parsers::carbons::Private;
use xmpp_parsers::eme::ExplicitMessageEncryption;
use xmpp_parsers::message::{Id, Lang, Message};

use super::ns;

/// The XEP-0380 namespace naming OTR.
pub const EME_OTR: &str = "urn:xmpp:otr:0";

/// The OTR whitespace tag's base: an unencrypted message ending with it says "I speak OTR".
const WHITESPACE_TAG: &str = " \t  \t\t\t\t \t \t \t  ";

/// What an OTR-related message body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Not OTR at all: ordinary text.
    Plain,
    /// Ordinary text carrying the whitespace tag (the sender speaks OTR).
    Tagged,
    /// An encrypted data message (`?OTR:AAMD…`, version 3, or `AAID` for version 2): the
    /// user's text is inside.
    Data,
    /// One fragment of a longer OTR message; `first` for the one that starts it (then
    /// `data` tells whether the whole is a data message).
    Fragment { first: bool, data: bool },
    /// Key exchange, query, or an OTR error: protocol traffic, nothing for the timeline.
    Protocol,
}

/// Classifies a message body.
pub fn classify(body: &str) -> Kind {
    if let Some(rest) = body.strip_prefix("?OTR") {
        if let Some(encoded) = rest.strip_prefix(':') {
            return if is_data(encoded) {
                Kind::Data
            } else {
                Kind::Protocol
            };
        }
        if rest.starts_with('|') || rest.starts_with(',') {
            return fragment(rest);
        }
        return Kind::Protocol;
    }
    if body.contains(WHITESPACE_TAG) {
        return Kind::Tagged;
    }
    Kind::Plain
}

/// Whether the base64 after `?OTR:` encodes a data message: protocol version 2 or 3
/// (`0x0002`/`0x0003`) then message type `0x03`, i.e. `AAID`/`AAMD`.
fn is_data(encoded: &str) -> bool {
    encoded.starts_with("AAMD") || encoded.starts_with("AAID")
}

/// `?OTR|sender|receiver,k,n,piece,` (v3) or `?OTR,k,n,piece,` (v2).
fn fragment(rest: &str) -> Kind {
    let fields = match rest.strip_prefix('|') {
        Some(tagged) => tagged.split_once(',').map(|(_, f)| f),
        None => rest.strip_prefix(','),
    };
    let mut parts = fields.unwrap_or_default().splitn(3, ',');
    let k = parts.next().and_then(|k| k.parse::<u32>().ok());
    let _n = parts.next();
    let piece = parts.next().unwrap_or_default();
    let first = k == Some(1);
    Kind::Fragment {
        first,
        data: first && piece.strip_prefix("?OTR:").is_some_and(is_data),
    }
}

/// Whether a body is for the OTR engine (everything OTR, and tagged text that may start a
/// private conversation).
pub fn is_otr(body: &str) -> bool {
    classify(body) != Kind::Plain
}

/// The stanza carrying one OTR message body of ours to `to` (the contact's full JID when
/// the private conversation is with one of their clients): type chat, kept out of archives
/// and offline storage and off our other devices, which could not read it.
pub fn stanza(to: Jid, id: &str, body: &str) -> Message {
    let mut m = Message::chat(Some(to))
        .with_body(Lang::new(), body.to_owned())
        .with_payload(Private)
        .with_payload(ExplicitMessageEncryption {
            namespace: EME_OTR.to_owned(),
            name: None,
        });
    m.id = Some(Id(id.to_owned()));
    for hint in ["no-copy", "no-permanent-store", "no-store"] {
        m.payloads.push(Element::builder(hint, ns::HINTS).build());
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_classified() {
        assert_eq!(classify("hello"), Kind::Plain);
        assert_eq!(classify("?OTRv23?"), Kind::Protocol);
        assert_eq!(classify("?OTR?v2?"), Kind::Protocol);
        assert_eq!(classify("?OTR Error: bad"), Kind::Protocol);
        // DH-Commit (type 0x02) of version 3.
        assert_eq!(classify("?OTR:AAMCAAAAAQ=="), Kind::Protocol);
        assert_eq!(classify("?OTR:AAMDAAAAAQAAAAEA."), Kind::Data);
        assert_eq!(classify("?OTR:AAIDAQAAAAEA."), Kind::Data);
        assert_eq!(
            classify(&format!("hi there{WHITESPACE_TAG}  \t\t  \t\t")),
            Kind::Tagged
        );
        assert_eq!(
            classify("?OTR|5a73a599|27e31597,00001,00003,?OTR:AAMDJ+MVmSfjFZcAAA,"),
            Kind::Fragment {
                first: true,
                data: true
            }
        );
        assert_eq!(
            classify("?OTR|5a73a599|27e31597,00002,00003,AAAABBBB,"),
            Kind::Fragment {
                first: false,
                data: false
            }
        );
        assert_eq!(
            classify("?OTR,1,2,?OTR:AAMCxyz,"),
            Kind::Fragment {
                first: true,
                data: false
            }
        );
        assert!(!is_otr("no OTR here"));
        assert!(is_otr("?OTRv3?"));
    }

    #[test]
    fn our_stanzas_stay_out_of_archives_and_carbons() -> anyhow::Result<()> {
        let to: Jid = "bob@example.org/pidgin".parse()?;
        let el = Element::from(stanza(to, "m1", "?OTR:AAMD"));
        assert_eq!(el.attr("type"), Some("chat"));
        assert_eq!(el.attr("to"), Some("bob@example.org/pidgin"));
        assert_eq!(el.attr("id"), Some("m1"));
        assert_eq!(
            el.get_child("body", xmpp_parsers::ns::DEFAULT_NS)
                .map(Element::text)
                .as_deref(),
            Some("?OTR:AAMD")
        );
        assert!(el.has_child("private", xmpp_parsers::ns::CARBONS));
        assert!(el.has_child("no-copy", ns::HINTS));
        assert!(el.has_child("no-permanent-store", ns::HINTS));
        assert!(el.has_child("no-store", ns::HINTS));
        let eme = el
            .get_child("encryption", xmpp_parsers::ns::EME)
            .ok_or_else(|| anyhow::anyhow!("no EME"))?;
        assert_eq!(eme.attr("namespace"), Some(EME_OTR));
        Ok(())
    }
}
