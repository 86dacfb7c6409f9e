//! XEP-0060 (Publish-Subscribe) and XEP-0163 (PEP) requests Starling's features share:
//! publishing with publish-options, retracting, fetching items, creating configured nodes,
//! and the owner's management of a node's members and subscribers.
//!
//! xmpp-parsers has the `<pubsub/>` and `<event/>` types; what it lacks (owner affiliation
//! lists it cannot build, RSM inside `<pubsub/>`) is built here with minidom, read leniently.

use jid::{BareJid, Jid};
use minidom::Element;
use xmpp_parsers::data_forms::{DataForm, DataFormType, Field, FieldType};
use xmpp_parsers::pubsub::event::{Event, Payload};
use xmpp_parsers::pubsub::pubsub::{
    Create, Item, Items, Publish, PublishOptions, Retract, Subscribe,
};
use xmpp_parsers::pubsub::{ItemId, NodeName, PubSub};

use super::n;

const PUBSUB: &str = xmpp_parsers::ns::PUBSUB;
const OWNER: &str = xmpp_parsers::ns::PUBSUB_OWNER;
/// FORM_TYPE of publish options (XEP-0060 §7.1.5) and of node configuration (§16.4.4).
pub const PUBLISH_OPTIONS: &str = "http://jabber.org/protocol/pubsub#publish-options";
pub const NODE_CONFIG: &str = "http://jabber.org/protocol/pubsub#node_config";
/// Disco features: the roster access model (XEP-0060 §4.5) and RSM on item retrieval.
pub const FEATURE_ACCESS_ROSTER: &str = "http://jabber.org/protocol/pubsub#access-roster";
pub const FEATURE_RSM: &str = "http://jabber.org/protocol/pubsub#rsm";
const RSM: &str = "http://jabber.org/protocol/rsm";

/// One node setting: a single value or a list (`pubsub#roster_groups_allowed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opt {
    One(&'static str, String),
    Many(&'static str, Vec<String>),
}

impl Opt {
    pub fn one(var: &'static str, value: impl Into<String>) -> Opt {
        Opt::One(var, value.into())
    }
}

fn form(form_type: &str, options: &[Opt]) -> DataForm {
    let fields = options
        .iter()
        .map(|o| match o {
            Opt::One(var, value) => Field::new(var, FieldType::TextSingle).with_value(value),
            Opt::Many(var, values) => {
                let mut f = Field::new(var, FieldType::ListMulti);
                f.values = values.clone();
                f
            }
        })
        .collect();
    DataForm::new(DataFormType::Submit, form_type, fields)
}

fn item(id: Option<&str>, payload: Option<Element>) -> Item {
    Item {
        id: id.map(|i| ItemId(i.to_owned())),
        publisher: None,
        payload,
    }
}

/// Publishes one item; with `options`, the server must apply them or refuse the publish
/// (`precondition-not-met`) — it never publishes with other settings.
pub fn publish(node: &str, id: Option<&str>, payload: Element, options: &[Opt]) -> PubSub {
    PubSub::Publish {
        publish: Publish {
            node: NodeName(node.to_owned()),
            items: vec![item(id, Some(payload))],
        },
        publish_options: (!options.is_empty()).then(|| PublishOptions {
            form: Some(form(PUBLISH_OPTIONS, options)),
        }),
    }
}

/// Retracts one item, telling subscribers.
pub fn retract(node: &str, id: &str) -> PubSub {
    PubSub::Retract(Retract {
        node: NodeName(node.to_owned()),
        notify: true,
        items: vec![item(Some(id), None)],
    })
}

/// Asks for the newest `max` items of a node (or all it keeps), or for the items after an RSM
/// position on services that announce [`FEATURE_RSM`].
pub fn items(node: &str, max: Option<u32>, after: Option<&str>) -> Element {
    let mut req = Items::new(node);
    req.max_items = max;
    let mut el = Element::from(PubSub::Items(req));
    if let Some(after) = after {
        let mut set = Element::builder("set", RSM).build();
        if let Some(max) = max {
            set.append_child(Element::builder("max", RSM).append(max.to_string()).build());
        }
        set.append_child(Element::builder("after", RSM).append(after).build());
        el.append_child(set);
    }
    el
}

/// Asks for specific items by id.
pub fn items_by_id(node: &str, ids: &[&str]) -> PubSub {
    let mut req = Items::new(node);
    req.items = ids.iter().map(|i| item(Some(i), None)).collect();
    PubSub::Items(req)
}

/// Creates a node with a configuration.
pub fn create(node: &str, config: &[Opt]) -> Element {
    let create = Element::from(PubSub::Create {
        create: Create {
            node: Some(NodeName(node.to_owned())),
        },
        configure: None,
    });
    // xmpp-parsers' <configure/> cannot carry a form; add it by hand.
    let mut el = create;
    el.append_child(
        Element::builder("configure", PUBSUB)
            .append(Element::from(form(NODE_CONFIG, config)))
            .build(),
    );
    el
}

/// Subscribes `jid` (ours) to a node.
pub fn subscribe(node: &str, jid: &BareJid) -> PubSub {
    PubSub::Subscribe {
        subscribe: Some(Subscribe {
            node: Some(NodeName(node.to_owned())),
            jid: Jid::from(jid.clone()),
        }),
        options: None,
    }
}

fn owner(child: Element) -> Element {
    Element::builder("pubsub", OWNER).append(child).build()
}

/// Deletes a node (owner).
pub fn delete(node: &str) -> Element {
    owner(
        Element::builder("delete", OWNER)
            .attr(n!("node"), node)
            .build(),
    )
}

/// Asks for a node's affiliations (owner).
pub fn get_affiliations(node: &str) -> Element {
    owner(
        Element::builder("affiliations", OWNER)
            .attr(n!("node"), node)
            .build(),
    )
}

/// Asks for a node's subscriptions (owner).
pub fn get_subscriptions(node: &str) -> Element {
    owner(
        Element::builder("subscriptions", OWNER)
            .attr(n!("node"), node)
            .build(),
    )
}

/// Sets affiliations (`member`, `none`, …) on a node (owner).
pub fn set_affiliations(node: &str, entries: &[(BareJid, &str)]) -> Element {
    let list = Element::builder("affiliations", OWNER).attr(n!("node"), node);
    owner(
        list.append_all(entries.iter().map(|(jid, value)| {
            Element::builder("affiliation", OWNER)
                .attr(n!("jid"), jid.as_str())
                .attr(n!("affiliation"), *value)
                .build()
        }))
        .build(),
    )
}

/// Sets subscriptions (`subscribed`, `none`) on a node (owner).
pub fn set_subscriptions(node: &str, entries: &[(BareJid, &str)]) -> Element {
    let list = Element::builder("subscriptions", OWNER).attr(n!("node"), node);
    owner(
        list.append_all(entries.iter().map(|(jid, value)| {
            Element::builder("subscription", OWNER)
                .attr(n!("jid"), jid.as_str())
                .attr(n!("subscription"), *value)
                .build()
        }))
        .build(),
    )
}

/// Reads an owner affiliations or subscriptions result: `(jid, value)` pairs.
pub fn parse_owner_list(result: &Element) -> Vec<(BareJid, String)> {
    let Some(list) = result.children().next() else {
        return Vec::new();
    };
    let attr = match list.name() {
        "affiliations" => "affiliation",
        "subscriptions" => "subscription",
        _ => return Vec::new(),
    };
    list.children()
        .filter_map(|e| {
            let jid = BareJid::new(e.attr("jid")?).ok()?;
            Some((jid, e.attr(attr)?.to_owned()))
        })
        .collect()
}

/// One item as received, payload untouched.
#[derive(Debug, Clone, PartialEq)]
pub struct RawItem {
    pub id: Option<String>,
    /// Who published it, when the service says (notifications from Prosody's PEP do).
    pub publisher: Option<BareJid>,
    pub payload: Option<Element>,
}

fn raw(id: Option<&ItemId>, publisher: Option<&Jid>, payload: Option<&Element>) -> RawItem {
    RawItem {
        id: id.map(|i| i.0.clone()),
        publisher: publisher.map(Jid::to_bare),
        payload: payload.cloned(),
    }
}

/// Reads an items result: the node and its items, oldest first as the service sends them.
pub fn parse_items(result: &Element) -> Option<(String, Vec<RawItem>)> {
    match PubSub::try_from(result.clone()) {
        Ok(PubSub::Items(items)) => Some((
            items.node.0,
            items
                .items
                .iter()
                .map(|i| raw(i.id.as_ref(), i.publisher.as_ref(), i.payload.as_ref()))
                .collect(),
        )),
        _ => None,
    }
}

/// A notification (XEP-0060 §7.1.2): items published or retracted, or the node emptied.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Notification {
    pub node: String,
    pub published: Vec<RawItem>,
    pub retracted: Vec<String>,
    /// Purged or deleted: every item is gone.
    pub cleared: bool,
}

/// Reads a pubsub `<event/>`.
pub fn parse_event(el: &Element) -> Option<Notification> {
    let ev = Event::try_from(el.clone()).ok()?;
    Some(match ev.payload {
        Payload::Items {
            node,
            published,
            retracted,
        } => Notification {
            node: node.0,
            published: published
                .iter()
                .map(|i| raw(i.id.as_ref(), i.publisher.as_ref(), i.payload.as_ref()))
                .collect(),
            retracted: retracted.into_iter().map(|i| i.0).collect(),
            cleared: false,
        },
        Payload::Purge { node } | Payload::Delete { node, .. } => Notification {
            node: node.0,
            cleared: true,
            ..Notification::default()
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_serialise_as_in_xep_0060() -> anyhow::Result<()> {
        let payload = Element::builder("entry", "http://www.w3.org/2005/Atom").build();
        let p = Element::from(publish(
            "urn:xmpp:microblog:0",
            Some("a1"),
            payload,
            &[
                Opt::one("pubsub#access_model", "presence"),
                Opt::Many("pubsub#roster_groups_allowed", vec!["Friends".into()]),
            ],
        ));
        let xml = String::from(&p);
        assert!(xml.contains("publish-options") && xml.contains("presence"));
        assert!(xml.contains("<value>Friends</value>"), "{xml}");

        let i = String::from(&items("n", Some(20), Some("last-id")));
        assert!(
            i.contains("max_items='20'") && i.contains(">last-id</after>"),
            "{i}"
        );
        let c = String::from(&create("n", &[Opt::one("pubsub#publish_model", "open")]));
        assert!(c.contains("<create") && c.contains("node_config") && c.contains("open"));

        let bob = BareJid::new("bob@example.org")?;
        let a = set_affiliations("n", &[(bob.clone(), "member")]);
        let xml = String::from(&a);
        assert!(
            xml.contains("<affiliation affiliation='member' jid='bob@example.org'/>"),
            "{xml}"
        );
        assert_eq!(parse_owner_list(&a), vec![(bob, "member".to_owned())]);
        Ok(())
    }

    /// XEP-0060 Example 101 (a notification with payload) and 116 (a retraction).
    #[test]
    fn notifications() -> anyhow::Result<()> {
        let ev: Element = "<event xmlns='http://jabber.org/protocol/pubsub#event'>\
             <items node='princely_musings'><item id='ae890ac52d0df67ed7cfdf51b644e901' \
             publisher='hamlet@denmark.lit'><entry xmlns='http://www.w3.org/2005/Atom'/>\
             </item></items></event>"
            .parse()?;
        let n = parse_event(&ev).ok_or_else(|| anyhow::anyhow!("no notification"))?;
        assert_eq!(n.node, "princely_musings");
        assert_eq!(
            n.published[0].publisher.as_ref().map(|p| p.as_str()),
            Some("hamlet@denmark.lit")
        );
        let ev: Element = "<event xmlns='http://jabber.org/protocol/pubsub#event'>\
             <items node='princely_musings'><retract id='ae890'/></items></event>"
            .parse()?;
        let n = parse_event(&ev).ok_or_else(|| anyhow::anyhow!("no notification"))?;
        assert_eq!(n.retracted, vec!["ae890".to_owned()]);
        let ev: Element = "<event xmlns='http://jabber.org/protocol/pubsub#event'>\
             <purge node='princely_musings'/></event>"
            .parse()?;
        assert!(parse_event(&ev).is_some_and(|n| n.cleared));
        Ok(())
    }
}
