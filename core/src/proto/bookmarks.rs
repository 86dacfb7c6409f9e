//! XEP-0402: PEP Native Bookmarks (v1.2, `urn:xmpp:bookmarks:1`), and reading the legacy
//! XEP-0048 bookmarks in XEP-0049 private XML storage for migration.
//!
//! Each room is one item of the node, its id the room's JID. Extensions other clients put in
//! an item are kept and published back unchanged (XEP-0402 §3.3).

use jid::BareJid;
use minidom::Element;
use xmpp_parsers::bookmarks2::Conference;
use xmpp_parsers::data_forms::{DataForm, DataFormType, Field, FieldType};
use xmpp_parsers::pubsub::event::{Event, Payload};
use xmpp_parsers::pubsub::pubsub::{Item, Items, Publish, PublishOptions, Retract};
use xmpp_parsers::pubsub::{ItemId, NodeName, PubSub};

/// The PEP node.
pub const NODE: &str = xmpp_parsers::ns::BOOKMARKS2;
/// FORM_TYPE of publish options (XEP-0060 §7.1.5).
const PUBLISH_OPTIONS: &str = "http://jabber.org/protocol/pubsub#publish-options";

/// One bookmarked room.
#[derive(Debug, Clone, PartialEq)]
pub struct Bookmark {
    pub room: BareJid,
    pub name: Option<String>,
    pub nick: Option<String>,
    pub autojoin: bool,
    /// A password stored by another client. Starling reads it but never publishes one:
    /// passwords belong in the keyring, not on the server.
    pub password: Option<String>,
    /// Other clients' `<extensions/>`, published back untouched.
    pub extensions: Option<Element>,
}

impl Bookmark {
    pub fn new(room: BareJid) -> Bookmark {
        Bookmark {
            room,
            name: None,
            nick: None,
            autojoin: true,
            password: None,
            extensions: None,
        }
    }

    fn from_conference(room: BareJid, c: Conference) -> Bookmark {
        Bookmark {
            room,
            name: c.name.filter(|n| !n.is_empty()),
            nick: c.nick.map(|n| n.to_string()),
            autojoin: c.autojoin,
            password: c.password.filter(|p| !p.is_empty()),
            extensions: c.extensions.map(Element::from),
        }
    }

    fn to_conference(&self) -> Conference {
        let mut c = Conference::new();
        c.autojoin = self.autojoin;
        c.name = self.name.clone();
        c.nick = self
            .nick
            .as_deref()
            .and_then(|n| jid::ResourcePart::new(n).ok())
            .map(|n| n.into_owned());
        c.extensions = self
            .extensions
            .clone()
            .and_then(|e| xmpp_parsers::bookmarks2::Extensions::try_from(e).ok());
        c
    }
}

fn option(var: &str, value: &str) -> Field {
    Field::new(var, FieldType::TextSingle).with_value(value)
}

/// Publishes (adds or updates) one bookmark, with the node settings XEP-0402 §3.2 requires:
/// private (whitelist), every item kept, nothing pushed to new subscribers.
pub fn publish(b: &Bookmark) -> PubSub {
    let options = DataForm::new(
        DataFormType::Submit,
        PUBLISH_OPTIONS,
        vec![
            option("pubsub#persist_items", "true"),
            option("pubsub#max_items", "max"),
            option("pubsub#send_last_published_item", "never"),
            option("pubsub#access_model", "whitelist"),
        ],
    );
    PubSub::Publish {
        publish: Publish {
            node: NodeName(NODE.to_owned()),
            items: vec![Item {
                id: Some(ItemId(b.room.to_string())),
                publisher: None,
                payload: Some(b.to_conference().into()),
            }],
        },
        publish_options: Some(PublishOptions {
            form: Some(options),
        }),
    }
}

/// Removes a bookmark.
pub fn retract(room: &BareJid) -> PubSub {
    PubSub::Retract(Retract {
        node: NodeName(NODE.to_owned()),
        notify: true,
        items: vec![Item {
            id: Some(ItemId(room.to_string())),
            publisher: None,
            payload: None,
        }],
    })
}

/// Asks for every bookmark.
pub fn request() -> PubSub {
    PubSub::Items(Items::new(NODE))
}

fn parse_item(id: Option<&ItemId>, payload: Option<&Element>) -> Option<Bookmark> {
    let room = match id.map(|i| BareJid::new(&i.0)) {
        Some(Ok(room)) if room.node().is_some() => room,
        _ => {
            tracing::warn!(id = ?id.map(|i| &i.0), "bookmark with an invalid room JID ignored");
            return None;
        }
    };
    let conf = payload.and_then(|p| Conference::try_from(p.clone()).ok());
    match conf {
        Some(c) => Some(Bookmark::from_conference(room, c)),
        None => {
            tracing::warn!(%room, "bookmark without a valid <conference/> ignored");
            None
        }
    }
}

/// Reads the result of [`request`].
pub fn parse_items(result: &Element) -> Vec<Bookmark> {
    match PubSub::try_from(result.clone()) {
        Ok(PubSub::Items(items)) if items.node.0 == NODE => items
            .items
            .iter()
            .filter_map(|i| parse_item(i.id.as_ref(), i.payload.as_ref()))
            .collect(),
        _ => Vec::new(),
    }
}

/// A change pushed by the server (`+notify`): bookmarks added or updated, rooms removed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Change {
    pub published: Vec<Bookmark>,
    pub retracted: Vec<BareJid>,
}

/// Reads a PEP event for the bookmarks node. `None` for other nodes.
pub fn parse_event(el: &Element) -> Option<Change> {
    let ev = Event::try_from(el.clone()).ok()?;
    match ev.payload {
        Payload::Items {
            node,
            published,
            retracted,
        } if node.0 == NODE => Some(Change {
            published: published
                .iter()
                .filter_map(|i| parse_item(i.id.as_ref(), i.payload.as_ref()))
                .collect(),
            retracted: retracted
                .iter()
                .filter_map(|id| BareJid::new(&id.0).ok())
                .collect(),
        }),
        // The whole node went away: every bookmark is gone.
        Payload::Purge { node } | Payload::Delete { node, .. } if node.0 == NODE => {
            Some(Change::default())
        }
        _ => None,
    }
}

/// The XEP-0049 query for legacy XEP-0048 bookmarks.
pub fn legacy_request() -> Element {
    Element::builder("query", xmpp_parsers::ns::PRIVATE)
        .append(Element::builder("storage", xmpp_parsers::ns::BOOKMARKS).build())
        .build()
}

/// Reads legacy bookmarks from a private-storage result.
pub fn parse_legacy(query: &Element) -> Vec<Bookmark> {
    let Some(storage) = query.get_child("storage", xmpp_parsers::ns::BOOKMARKS) else {
        return Vec::new();
    };
    let Ok(storage) = xmpp_parsers::bookmarks::Storage::try_from(storage.clone()) else {
        tracing::warn!("malformed legacy bookmarks ignored");
        return Vec::new();
    };
    storage
        .conferences
        .into_iter()
        .filter(|c| c.jid.node().is_some())
        .map(|c| Bookmark {
            room: c.jid,
            name: c.name.filter(|n| !n.is_empty()),
            nick: c.nick.map(|n| n.to_string()),
            autojoin: c.autojoin,
            password: c.password.filter(|p| !p.is_empty()),
            extensions: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// XEP-0402 Example 3 (the items result) and Example 7 (a notification).
    #[test]
    fn spec_examples() -> anyhow::Result<()> {
        let el: Element = "<pubsub xmlns='http://jabber.org/protocol/pubsub'>\
             <items node='urn:xmpp:bookmarks:1'>\
             <item id='theplay@conference.shakespeare.lit'>\
             <conference xmlns='urn:xmpp:bookmarks:1' name='The Play&apos;s the Thing' \
             autojoin='true'><nick>JC</nick></conference></item>\
             <item id='orchard@conference.shakespeare.lit'>\
             <conference xmlns='urn:xmpp:bookmarks:1' name='The Orchard' autojoin='1'>\
             <nick>JC</nick><extensions><state xmlns='http://myclient.example/bookmark/state' \
             minimized='true'/></extensions></conference></item>\
             <item id='not a jid@@'><conference xmlns='urn:xmpp:bookmarks:1'/></item>\
             </items></pubsub>"
            .parse()?;
        let items = parse_items(&el);
        assert_eq!(items.len(), 2, "the invalid item is skipped");
        assert_eq!(items[0].name.as_deref(), Some("The Play's the Thing"));
        assert!(items[0].autojoin && items[1].autojoin);
        assert_eq!(items[1].nick.as_deref(), Some("JC"));
        let ext = items[1].extensions.clone();
        assert!(ext.is_some());
        // Republishing keeps the extension.
        let xml = String::from(&Element::from(publish(&items[1])));
        assert!(xml.contains("minimized"), "{xml}");
        assert!(
            xml.contains("pubsub#access_model") && xml.contains("whitelist"),
            "{xml}"
        );

        let ev: Element = "<event xmlns='http://jabber.org/protocol/pubsub#event'>\
             <items node='urn:xmpp:bookmarks:1'><retract id='theplay@conference.shakespeare.lit'/>\
             </items></event>"
            .parse()?;
        let c = parse_event(&ev).ok_or_else(|| anyhow::anyhow!("no change"))?;
        assert_eq!(c.retracted.len(), 1);
        let other: Element = "<event xmlns='http://jabber.org/protocol/pubsub#event'>\
             <items node='urn:xmpp:microblog:0'/></event>"
            .parse()?;
        assert!(parse_event(&other).is_none());
        Ok(())
    }

    /// XEP-0048 Example 3, as stored with XEP-0049.
    #[test]
    fn legacy_bookmarks() -> anyhow::Result<()> {
        let el: Element = "<query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'>\
             <conference name='Council of Oberon' autojoin='true' \
             jid='council@conference.underhill.org'><nick>Puck</nick>\
             <password>titania</password></conference></storage></query>"
            .parse()?;
        let b = parse_legacy(&el);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].room.as_str(), "council@conference.underhill.org");
        assert_eq!(b[0].password.as_deref(), Some("titania"));
        let out = String::from(&Element::from(publish(&b[0])));
        assert!(
            !out.contains("titania"),
            "passwords are never published: {out}"
        );
        Ok(())
    }
}
