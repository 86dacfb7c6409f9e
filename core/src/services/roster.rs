//! Roster (RFC 6121 §2) with versioning (XEP-0237) and presence subscriptions (§3).

use jid::BareJid;
use xmpp_parsers::roster::{Ask, Group, Item, Roster, Subscription as WireSub};

use crate::store::{ContactRecord, Subscription};

/// The roster request, with our stored version when we have one.
pub fn get(ver: Option<String>) -> Roster {
    Roster {
        // An empty ver asks for versioning without a cached copy (XEP-0237 §3).
        ver: Some(ver.unwrap_or_default()),
        items: Vec::new(),
    }
}

/// A roster set adding or updating one item.
pub fn set(jid: BareJid, name: Option<String>, groups: Vec<String>) -> Roster {
    Roster {
        ver: None,
        items: vec![Item {
            jid,
            name,
            subscription: WireSub::None,
            ask: Ask::None,
            groups: groups.into_iter().map(Group).collect(),
            approved: None,
        }],
    }
}

/// A roster set removing one item (also cancels subscriptions both ways).
pub fn remove(jid: BareJid) -> Roster {
    Roster {
        ver: None,
        items: vec![Item {
            jid,
            name: None,
            subscription: WireSub::Remove,
            ask: Ask::None,
            groups: Vec::new(),
            approved: None,
        }],
    }
}

/// Converts a wire item; the bool is "remove this item".
pub fn to_record(item: &Item) -> (ContactRecord, bool) {
    let (subscription, remove) = match item.subscription {
        WireSub::None => (Subscription::None, false),
        WireSub::To => (Subscription::To, false),
        WireSub::From => (Subscription::From, false),
        WireSub::Both => (Subscription::Both, false),
        WireSub::Remove => (Subscription::None, true),
    };
    (
        ContactRecord {
            jid: item.jid.to_string(),
            name: item.name.clone().filter(|n| !n.is_empty()),
            subscription,
            ask: item.ask == Ask::Subscribe,
            groups: item.groups.iter().map(|g| g.0.clone()).collect(),
        },
        remove,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use minidom::Element;

    #[test]
    fn rfc6121_roster_push_example() -> anyhow::Result<()> {
        // RFC 6121 §2.1.6 example, a roster push.
        let el: Element = "<query xmlns='jabber:iq:roster' ver='ver14'>\
            <item jid='nurse@example.com' name='Nurse' subscription='none' ask='subscribe'>\
            <group>Servants</group></item></query>"
            .parse()?;
        let r = Roster::try_from(el)?;
        let (rec, remove) = to_record(&r.items[0]);
        assert!(!remove && rec.ask);
        assert_eq!(rec.groups, vec!["Servants"]);
        assert_eq!(rec.name.as_deref(), Some("Nurse"));
        let el: Element = "<query xmlns='jabber:iq:roster'><item jid='nurse@example.com' \
            subscription='remove'/></query>"
            .parse()?;
        assert!(to_record(&Roster::try_from(el)?.items[0]).1);
        Ok(())
    }
}
