//! Sans-I/O protocol helpers: one module per RFC/XEP where xmpp-parsers lacks something.
//!
//! Namespaces come from `xmpp_parsers::ns`; the few that it lacks live in [`ns`].

pub mod bookmarks;
pub mod caps;
pub mod inbound;
pub mod microblog;
pub mod muc;
pub mod omemo;
pub mod otr;
pub mod profile;
pub mod pubsub;
pub mod push;
pub mod retract;
pub mod upload;

/// Namespaces xmpp-parsers does not define.
pub mod ns {
    /// XEP-0333: Chat Markers.
    pub const CHAT_MARKERS: &str = "urn:xmpp:chat-markers:0";
    /// XEP-0045: owner and admin queries, room configuration and room info forms.
    pub const MUC_ADMIN: &str = "http://jabber.org/protocol/muc#admin";
    pub const MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";
    pub const MUC_ROOMCONFIG: &str = "http://jabber.org/protocol/muc#roomconfig";
    pub const MUC_ROOMINFO: &str = "http://jabber.org/protocol/muc#roominfo";
    /// XEP-0249: Direct MUC Invitations.
    pub const CONFERENCE: &str = "jabber:x:conference";
    /// XEP-0421: Anonymous unique occupant identifiers.
    pub const OCCUPANT_ID: &str = "urn:xmpp:occupant-id:0";
    /// XEP-0424: Message Retraction, current (v0.4+) and the fastening-based v0.3.
    pub const RETRACT_1: &str = "urn:xmpp:message-retract:1";
    pub const RETRACT_0: &str = "urn:xmpp:message-retract:0";
    /// XEP-0425: Message Moderation, current and the fastening-based version Prosody's
    /// mod_muc_moderation speaks.
    pub const MODERATE_1: &str = "urn:xmpp:message-moderate:1";
    pub const MODERATE_0: &str = "urn:xmpp:message-moderate:0";
    /// XEP-0422: Message Fastening (used by the older retraction/moderation versions).
    pub const FASTEN: &str = "urn:xmpp:fasten:0";
    /// XEP-0428: Fallback Indication.
    pub const FALLBACK: &str = "urn:xmpp:fallback:0";
    /// XEP-0334: Message Processing Hints.
    pub const HINTS: &str = "urn:xmpp:hints";
    /// XEP-0410: MUC Self-Ping.
    pub const MUC_SELF_PING: &str = "http://jabber.org/protocol/muc#self-ping-optimization";
}

/// An XML attribute name, checked at compile time (for minidom's element builder).
macro_rules! n {
    ($s:literal) => {
        minidom::rxml::xml_ncname!($s).to_owned()
    };
}
pub(crate) use n;

/// A fresh random stanza id (also used as XEP-0359 origin-id).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
