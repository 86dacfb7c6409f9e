//! XEP-0030 / XEP-0115: what Starling tells others it supports (disco#info + entity caps).

use xmpp_parsers::caps::{self, Caps};
use xmpp_parsers::disco::{DiscoInfoResult, Identity};
use xmpp_parsers::hashes::Algo;
use xmpp_parsers::ns;

/// XEP-0163: we want our bookmarks (XEP-0402) pushed when they change.
const BOOKMARKS_NOTIFY: &str = "urn:xmpp:bookmarks:1+notify";

/// Our XEP-0115 node.
pub const CAPS_NODE: &str = "https://starling.example/caps";

/// The features we implement, advertised in disco#info.
pub fn features() -> Vec<&'static str> {
    vec![
        ns::DISCO_INFO,
        ns::CAPS,
        ns::PING,
        ns::RECEIPTS,
        ns::CHATSTATES,
        super::ns::CHAT_MARKERS,
        ns::MESSAGE_CORRECT,
        ns::CARBONS,
        ns::SID,
        ns::MUC,
        super::ns::CONFERENCE,
        super::ns::MUC_SELF_PING,
        super::ns::RETRACT_1,
        super::ns::RETRACT_0,
        super::ns::OCCUPANT_ID,
        BOOKMARKS_NOTIFY,
        super::microblog::NOTIFY,
        super::profile::AVATAR_METADATA_NOTIFY,
        super::profile::NICK_NOTIFY,
        super::profile::VCARD4_NOTIFY,
        // OMEMO device lists of contacts (both namespaces), so sessions follow new devices.
        "eu.siacs.conversations.axolotl.devicelist+notify",
        "urn:xmpp:omemo:2:devices+notify",
    ]
}

/// Our disco#info answer (optionally for a caps `node#ver`).
pub fn disco_info(node: Option<String>) -> DiscoInfoResult {
    DiscoInfoResult {
        node,
        identities: vec![Identity::new("client", "pc", "en", "Starling")],
        features: features().into_iter().map(str::to_owned).collect(),
        extensions: Vec::new(),
    }
}

/// The `<c/>` element for our presence.
pub fn caps() -> Option<Caps> {
    let data = caps::compute_disco(&disco_info(None));
    match caps::hash_caps(&data, Algo::Sha_1) {
        Ok(hash) => Some(Caps::new(CAPS_NODE, hash)),
        Err(e) => {
            tracing::error!(error = %e, "cannot compute entity caps");
            None
        }
    }
}

/// Whether a disco#info `node` names us (no node, or our caps node#ver).
pub fn is_our_node(node: Option<&str>) -> bool {
    match node {
        None => true,
        Some(n) => caps()
            .map(|c| caps::query_caps(c).node.as_deref() == Some(n))
            .unwrap_or(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn omemo_device_lists_are_subscribed() {
        for ns in crate::proto::omemo::Namespace::ALL {
            let want = crate::proto::omemo::notify_feature(ns);
            assert!(features().contains(&want.as_str()), "{want}");
        }
    }

    #[test]
    fn caps_node_roundtrip() {
        let c = caps();
        assert!(c.is_some());
        let node = c.and_then(|c| caps::query_caps(c).node);
        assert!(is_our_node(node.as_deref()));
        assert!(is_our_node(None));
        assert!(!is_our_node(Some("https://other#abc")));
        assert!(disco_info(None).features.contains(ns::RECEIPTS));
    }
}
