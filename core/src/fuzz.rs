//! Entry points for fuzzing: arbitrary bytes through every parser that reads what the
//! network sends. Each must return — never panic, overflow the stack or hang — whatever
//! the input. Used by the coverage-guided targets in `core/fuzz` (cargo fuzz) and by the
//! bounded pass in the test suite (`core/tests/fuzz.rs`), which share the corpus in
//! `core/fuzz/corpus/`.

use std::collections::HashMap;

use jid::BareJid;
use minidom::Element;
use xmpp_parsers::message::Message;

use crate::crypto::omemo::{Namespace, keys, session};
use crate::proto::inbound::{Context, RoomCx, classify};
use crate::proto::{bookmarks, microblog, muc, omemo, otr, profile, pubsub, push, retract, upload};
use crate::store::{IncomingMessage, NewAccount, Store};

/// The account every input is addressed to.
const OWN: &str = "alice@example.org";

/// A stanza (or any XML): parsed, classified as a message would be and stored if it is
/// one, and handed to every element parser, at the root and at each child.
pub fn stanza(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    otr::classify(text);
    microblog::parse_node_uri(text);
    let _ = crate::crypto::aesgcm::parse_link(text);
    let Ok(root) = text.parse::<Element>() else {
        return;
    };
    elements(&root);
    for child in root.children() {
        elements(child);
        for grandchild in child.children() {
            elements(grandchild);
        }
    }
    if let Ok(msg) = Message::try_from(root) {
        message(msg);
    }
}

/// Bytes as an OMEMO key exchange, identity key and public key in both namespaces.
pub fn omemo_bytes(data: &[u8]) {
    for ns in [Namespace::Legacy, Namespace::Omemo2] {
        let _ = session::Incoming::parse(ns, data);
        let _ = keys::IdentityKey::decode(ns, data);
        let _ = keys::decode_public(ns, data);
    }
    let _ = crate::crypto::aesgcm::FileKey::from_bytes(data);
    let _ = omemo::Envelope::from_bytes(data);
}

/// Every parser that takes an element.
fn elements(el: &Element) {
    let one = std::slice::from_ref(el);
    let _ = bookmarks::parse_items(el);
    let _ = bookmarks::parse_event(el);
    let _ = bookmarks::parse_legacy(el);
    let _ = profile::parse_data(el, "0123456789abcdef0123456789abcdef01234567");
    let _ = profile::parse_metadata_items(el);
    let _ = profile::parse_metadata_event(el);
    let _ = profile::parse_vcard_temp_photo(el);
    let _ = profile::parse_vcard_update(el);
    let _ = profile::parse_nick_items(el);
    let _ = profile::parse_nick_event(el);
    let _ = profile::parse_vcard4_items(el);
    let _ = profile::parse_vcard4_event(el);
    let _ = omemo::DeviceList::parse(el);
    let _ = omemo::parse_bundle(el);
    let _ = omemo::Encrypted::parse(el);
    let _ = omemo::Envelope::parse(el);
    let _ = upload::parse_slot(el);
    let _ = upload::parse_file_sharing(one);
    let _ = push::parse_registered(el);
    let _ = push::parse_request(el);
    let _ = push::parse_publish(el);
    let _ = microblog::Entry::parse(Some("item-1"), el);
    let _ = retract::parse(one);
    let _ = muc::parse_user_x(el);
    let _ = muc::parse_admin_list(el);
    let _ = pubsub::parse_owner_list(el);
    let _ = pubsub::parse_items(el);
    let _ = pubsub::parse_event(el);
}

/// What every message is checked against: our account, one open archive query, one room
/// we are in, and the store. Built once per thread.
struct Fixture {
    own: BareJid,
    open: HashMap<String, BareJid>,
    rooms: HashMap<BareJid, RoomCx>,
    store: Store,
    account: i64,
}

impl Fixture {
    fn new() -> Option<Fixture> {
        let own = BareJid::new(OWN).ok()?;
        let room = BareJid::new("room@conference.example.org").ok()?;
        let store = Store::open_in_memory().ok()?;
        let account = store
            .add_account(&NewAccount {
                jid: OWN.into(),
                resource: "fuzz".into(),
                server_host: None,
                server_port: None,
                tls_mode: "auto".into(),
                ca_file: None,
                first_sync_days: 30,
            })
            .ok()?
            .id;
        let room_cx = RoomCx {
            nick: "alice".into(),
            present: true,
            own_occupant_id: None,
            occupant_ids: true,
        };
        Some(Fixture {
            open: HashMap::from([("q1".to_owned(), own.clone())]),
            rooms: HashMap::from([(room, room_cx)]),
            own,
            store,
            account,
        })
    }
}

thread_local! {
    static FIXTURE: Option<Fixture> = Fixture::new();
}

/// A message through the first stages of the inbound pipeline: validate and classify,
/// then dedup and store what is a chat message.
fn message(msg: Message) {
    FIXTURE.with(|fixture| {
        let Some(f) = fixture else { return };
        let cx = Context {
            own: &f.own,
            open_queries: &f.open,
            rooms: &f.rooms,
        };
        let Ok(inbound) = classify(msg, &cx) else {
            return;
        };
        if let Some(ev) = &inbound.own_pep_event {
            elements(ev);
        }
        let Some(chat) = inbound.chat else {
            return;
        };
        let _ = f.store.ingest(
            f.account,
            &IncomingMessage {
                peer: chat.peer.to_string(),
                outgoing: chat.outgoing,
                sender: chat.sender.to_string(),
                stanza_id: chat.id,
                origin_id: chat.origin_id,
                archive_id: chat.archive_id,
                body: chat.body,
                timestamp: 0,
                replace: chat.replace,
                ..IncomingMessage::default()
            },
        );
    });
}
