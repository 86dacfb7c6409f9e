//! Sans-I/O protocol helpers: one module per RFC/XEP where xmpp-parsers lacks something.
//!
//! Namespaces come from `xmpp_parsers::ns`; the few that it lacks live in [`ns`].

pub mod caps;
pub mod inbound;

/// Namespaces xmpp-parsers does not define.
pub mod ns {
    /// XEP-0333: Chat Markers.
    pub const CHAT_MARKERS: &str = "urn:xmpp:chat-markers:0";
}

/// A fresh random stanza id (also used as XEP-0359 origin-id).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
