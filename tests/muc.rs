//! Group chat (XEP-0045 and friends) against a real Prosody (`conference.localhost` with
//! muc_mam and muc_moderation) and slixmpp occupants.

use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use serde_json::{Value, json};
use starling::testbed::CONFERENCE_DOMAIN;
use starling_core::store::{MessageKind, MessageRecord};
use starling_core::{Event, MessageState, Role, RoomConfig, RoomState};

use crate::node::Node;
use crate::support::{self, EVENT_TIMEOUT, Peer, event_name, unique_name};

fn room_jid() -> String {
    format!("{}@{CONFERENCE_DOMAIN}", unique_name("room"))
}

/// Waits until the node starts joining `room` again (a rejoin).
async fn rejoining(node: &mut Node, room: &str) -> Result<()> {
    node.wait_for(&format!("rejoining {room}"), |e| match e {
        Event::Room {
            room: r,
            state: RoomState::Joining,
            ..
        } if r == room => Some(()),
        _ => None,
    })
    .await
}

/// Sends to a room and waits until the room sent it back (delivered, not failed).
async fn delivered(node: &mut Node, room: &str, body: &str) -> Result<MessageRecord> {
    let m = node.client.send_room_message(&node.jid, room, body).await?;
    let m = node.wait_state(m.id, MessageState::Delivered).await?;
    ensure!(m.state == MessageState::Delivered, "{m:?}");
    Ok(m)
}

/// Waits until every room in `rooms` finished its archive catch-up.
async fn synced(node: &mut Node, rooms: &[&str]) -> Result<()> {
    let mut left: Vec<String> = rooms.iter().map(|r| r.to_string()).collect();
    while !left.is_empty() {
        let done = node
            .wait_for("room catch-up", |e| match e {
                Event::RoomSync {
                    room, done: true, ..
                } => Some(room.clone()),
                _ => None,
            })
            .await?;
        left.retain(|r| *r != done);
    }
    Ok(())
}

/// Waits until the node is in `room` (our own presence arrived).
async fn joined(node: &mut Node, room: &str) -> Result<()> {
    node.wait_for(&format!("joined {room}"), |e| match e {
        Event::Room {
            room: r,
            state: RoomState::Joined { .. },
            ..
        } if r == room => Some(()),
        _ => None,
    })
    .await
}

async fn peer_join(peer: &mut Peer, room: &str, nick: &str) -> Result<Value> {
    peer.command(json!({"cmd": "muc_join", "room": room, "nick": nick}))
        .await
}

/// Waits for a groupchat event at the peer with this body.
async fn peer_sees(peer: &mut Peer, body: &str) -> Result<Value> {
    peer.next_event_matching(
        |e| event_name(e) == "groupchat" && e["body"] == body,
        EVENT_TIMEOUT,
    )
    .await
}

fn room_messages(node: &Node, room: &str) -> Result<Vec<MessageRecord>> {
    Ok(node
        .history(room)?
        .into_iter()
        .filter(|m| m.kind == MessageKind::GroupChat)
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_configure_and_chat_both_ways() -> Result<()> {
    let server = support::fresh_server()?;
    let (alice, bob) = (server.account("alice")?, server.account("bob")?);
    let mut a = Node::new(&server, &alice).await?;
    a.online().await?;
    let room = room_jid();

    // Discovery finds the service.
    let services = a.client.muc_services(&alice.jid).await?;
    ensure!(
        services.iter().any(|s| s.jid == CONFERENCE_DOMAIN),
        "{services:?}"
    );

    let config = RoomConfig {
        name: Some("Tea Room".into()),
        description: Some("for testing".into()),
        persistent: Some(true),
        non_anonymous: Some(true),
        moderated: Some(false),
        ..RoomConfig::default()
    };
    let created = a
        .client
        .create_room(&alice.jid, &room, Some("Alice"), config)
        .await?;
    ensure!(created.created && created.nick == "Alice", "{created:?}");
    let info = a.client.room_info(&alice.jid, &room).await?;
    ensure!(
        info.persistent && info.non_anonymous && info.archive,
        "{info:?}"
    );
    ensure!(info.name.as_deref() == Some("Tea Room"), "{info:?}");
    // Creating it again fails clearly and leaves us where we were.
    let again = a
        .client
        .create_room(&alice.jid, &room, Some("Alice2"), RoomConfig::default())
        .await;
    ensure!(
        matches!(again, Err(starling_core::Error::RoomExists(_))),
        "{again:?}"
    );
    a.client
        .join_room(&alice.jid, &room, Some("Alice"), None)
        .await?;

    let mut bob_peer = server.peer(&bob).await?;
    let joined_bob = peer_join(&mut bob_peer, &room, "Bob").await?;
    ensure!(
        joined_bob["codes"]
            .as_array()
            .is_some_and(|c| c.contains(&json!(100))),
        "non-anonymous room announced: {joined_bob}"
    );
    let occ = a
        .wait_for("bob arrives", |e| match e {
            Event::Occupant {
                occupant, present, ..
            } if occupant.nick == "Bob" && *present => Some(occupant.clone()),
            _ => None,
        })
        .await?;
    ensure!(
        occ.jid.as_deref() == Some(bob.jid.as_str()),
        "real JID shown: {occ:?}"
    );

    // Starling -> room: the reflection marks it delivered and gives it the room's id.
    let sent = a
        .client
        .send_room_message(&alice.jid, &room, "hello room")
        .await?;
    let seen = peer_sees(&mut bob_peer, "hello room").await?;
    ensure!(seen["nick"] == "Alice", "{seen}");
    ensure!(seen["origin_id"] == json!(sent.stanza_id), "{seen}");
    let back = a.wait_state(sent.id, MessageState::Delivered).await?;
    ensure!(
        back.state == MessageState::Delivered
            && back.archive_id.is_some()
            && back.archive_id == seen["stanza_id"].as_str().map(String::from),
        "room's stanza-id recorded: {back:?} vs {seen}"
    );

    // Room -> Starling, with a mention, a correction and a subject.
    bob_peer
        .command(json!({"cmd": "muc_send", "room": room, "body": "hi Alice, welcome", "id": "b1"}))
        .await?;
    let got = a.wait_message("hi Alice, welcome").await?;
    ensure!(
        got.kind == MessageKind::GroupChat && !got.outgoing && got.mention,
        "{got:?}"
    );
    ensure!(
        got.sender == format!("{room}/Bob") && got.occupant_id.is_some(),
        "{got:?}"
    );
    let conv = a
        .client
        .conversations(&alice.jid)?
        .into_iter()
        .find(|c| c.peer == room)
        .ok_or_else(|| anyhow::anyhow!("no room conversation"))?;
    ensure!(
        conv.kind == "groupchat" && conv.unread == 1 && conv.mentions == 1,
        "{conv:?}"
    );
    bob_peer
        .command(json!({"cmd": "muc_correct", "room": room, "body": "hi Alice, welcome!", "replace": "b1"}))
        .await?;
    let edited = a
        .wait_for("correction", |e| match e {
            Event::MessageUpdated { message, .. } if message.id == got.id => Some(message.clone()),
            _ => None,
        })
        .await?;
    ensure!(
        edited.edited && edited.body == "hi Alice, welcome!",
        "{edited:?}"
    );
    // Only moderators may change the subject here: Alice (owner) can, Bob sees it.
    a.client.set_subject(&alice.jid, &room, "Earl Grey").await?;
    let seen = bob_peer
        .next_event_matching(
            |e| event_name(e) == "subject" && e["subject"] == "Earl Grey",
            EVENT_TIMEOUT,
        )
        .await?;
    ensure!(seen["nick"] == "Alice", "{seen}");
    let subject = a
        .wait_for("subject", |e| match e {
            Event::RoomSubject { subject, .. } => Some(subject.clone()),
            _ => None,
        })
        .await?;
    ensure!(subject == "Earl Grey", "{subject}");

    // A private message stays with the room, apart from Bob's own 1:1 chat.
    bob_peer
        .command(json!({"cmd": "muc_pm", "room": room, "nick": "Alice", "body": "psst"}))
        .await?;
    let pm = a.wait_message("psst").await?;
    ensure!(
        pm.kind == MessageKind::Private && pm.peer == format!("{room}/Bob"),
        "{pm:?}"
    );
    ensure!(a.history(&bob.jid)?.is_empty(), "not in Bob's 1:1 chat");
    let reply = a
        .client
        .send_private_message(&alice.jid, &room, "Bob", "psst back")
        .await?;
    let back = bob_peer
        .next_event_matching(
            |e| event_name(e) == "muc_pm" && e["body"] == "psst back",
            EVENT_TIMEOUT,
        )
        .await?;
    ensure!(back["nick"] == "Alice", "{back}");
    a.wait_state(reply.id, MessageState::Sent).await?;
    let private = a.history(&format!("{room}/Bob"))?;
    ensure!(private.len() == 2, "the private chat has both: {private:?}");

    // Correcting our last room message (XEP-0308 in a room).
    a.client
        .correct_last_message(&alice.jid, &room, "hello room!")
        .await?;
    let fix = bob_peer
        .next_event_matching(
            |e| event_name(e) == "groupchat" && e["body"] == "hello room!",
            EVENT_TIMEOUT,
        )
        .await?;
    ensure!(fix["replace"] == json!(sent.stanza_id), "{fix}");

    let occupants = a.client.occupants(&alice.jid, &room).await?;
    let me = occupants.iter().find(|o| o.nick == "Alice");
    ensure!(
        me.is_some_and(|o| o.role == Role::Moderator) && occupants.iter().any(|o| o.nick == "Bob"),
        "{occupants:?}"
    );
    a.shutdown().await;
    bob_peer.quit().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_catch_up_from_the_room_archive_is_complete_and_unique() -> Result<()> {
    let server = support::fresh_server()?;
    let (alice, bob) = (server.account("alice")?, server.account("bob")?);
    let mut a = Node::new(&server, &alice).await?;
    a.online().await?;
    let room = room_jid();
    let mut bob_peer = server.peer(&bob).await?;
    peer_join(&mut bob_peer, &room, "Bob").await?;
    bob_peer
        .command(json!({"cmd": "muc_send", "room": room, "body": "before alice"}))
        .await?;
    a.client
        .join_room(&alice.jid, &room, Some("Alice"), None)
        .await?;
    // A first visit fetches the newest page of the archive.
    a.wait_for("first catch-up", |e| {
        matches!(e, Event::RoomSync { done: true, .. }).then_some(())
    })
    .await?;
    ensure!(
        room_messages(&a, &room)?.len() == 1,
        "{:?}",
        a.history(&room)?
    );
    // A room whose archive is empty on our first visit (nothing to hold a position by).
    let quiet = room_jid();
    peer_join(&mut bob_peer, &quiet, "Bob").await?;
    a.client
        .join_room(&alice.jid, &quiet, Some("Alice"), None)
        .await?;
    synced(&mut a, &[&quiet]).await?;

    // Offline while 200 messages are posted in one room and 60 (more than a page) in
    // the other.
    a.client.disconnect_all().await;
    for i in 0..200 {
        bob_peer
            .command(json!({"cmd": "muc_send", "room": room, "body": format!("offline {i}")}))
            .await?;
    }
    for i in 0..60 {
        bob_peer
            .command(json!({"cmd": "muc_send", "room": quiet, "body": format!("quiet {i}")}))
            .await?;
    }
    a.client.connect(&alice.jid).await?;
    synced(&mut a, &[&room, &quiet]).await?;
    let q = room_messages(&a, &quiet)?;
    ensure!(
        q.len() == 60,
        "the empty-at-first room caught up fully: {}",
        q.len()
    );
    let msgs = room_messages(&a, &room)?;
    ensure!(msgs.len() == 201, "all caught up once: {}", msgs.len());
    for (i, m) in msgs.iter().skip(1).enumerate() {
        ensure!(m.body == format!("offline {i}"), "in order: {i} {m:?}");
    }
    // Live messages after the catch-up, then another reconnect: nothing twice.
    bob_peer
        .command(json!({"cmd": "muc_send", "room": room, "body": "live"}))
        .await?;
    a.wait_message("live").await?;
    a.client.disconnect_all().await;
    a.client.connect(&alice.jid).await?;
    synced(&mut a, &[&room, &quiet]).await?;
    ensure!(room_messages(&a, &room)?.len() == 202, "no duplicates");
    ensure!(room_messages(&a, &quiet)?.len() == 60, "no duplicates");
    a.shutdown().await;
    bob_peer.quit().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_from_a_room_the_client_notices_and_rejoins() -> Result<()> {
    let mut server = support::fresh_server()?;
    let alice = server.account("alice")?;
    let mut a = Node::new(&server, &alice).await?;
    a.online().await?;
    let room = room_jid();
    // Persistent, so the room outlives its last occupant (us) being dropped.
    let config = RoomConfig {
        persistent: Some(true),
        ..RoomConfig::default()
    };
    a.client
        .create_room(&alice.jid, &room, Some("Alice"), config)
        .await?;
    a.skip_pending();

    // The room forgets us without telling us (a MUC restart, a lost presence…).
    let out = server.shell(&format!(
        "local r = prosody.hosts[\"{CONFERENCE_DOMAIN}\"].modules.muc.get_room_from_jid(\"{room}\"); \
         local o = r and r:get_occupant_by_nick(\"{room}/Alice\"); \
         if not o then return \"no such occupant\" end; o.role = nil; r:save_occupant(o); \
         return \"dropped \" .. o.nick"
    ))?;
    ensure!(out.contains("dropped"), "{out}");
    a.client.set_room_ping_interval(Duration::from_secs(1));
    rejoining(&mut a, &room).await?;
    joined(&mut a, &room).await?;
    // Really back in: the room accepts our messages again.
    delivered(&mut a, &room, "back again").await?;

    // A server restart ends the session; the fresh session rejoins.
    server.restart()?;
    a.wait_online().await?;
    rejoining(&mut a, &room).await?;
    joined(&mut a, &room).await?;
    delivered(&mut a, &room, "after restart").await?;
    a.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kicks_bans_roles_and_moderation_seen_by_both_sides() -> Result<()> {
    let server = support::fresh_server()?;
    let (alice, bob) = (server.account("alice")?, server.account("bob")?);
    let mut a = Node::new(&server, &alice).await?;
    a.online().await?;
    let room = room_jid();
    a.client
        .create_room(&alice.jid, &room, Some("Alice"), RoomConfig::default())
        .await?;
    let mut bob_peer = server.peer(&bob).await?;
    peer_join(&mut bob_peer, &room, "Bob").await?;

    // Voice and moderator rights, seen by Bob.
    a.client
        .set_role(
            &alice.jid,
            &room,
            "Bob",
            Role::Visitor,
            Some("quiet please"),
        )
        .await?;
    let p = bob_peer
        .next_event_matching(
            |e| event_name(e) == "muc_presence" && e["nick"] == "Bob" && e["role"] == "visitor",
            EVENT_TIMEOUT,
        )
        .await?;
    ensure!(p["type"] == "available", "{p}");
    a.client
        .set_role(&alice.jid, &room, "Bob", Role::Participant, None)
        .await?;
    bob_peer
        .next_event_matching(
            |e| event_name(e) == "muc_presence" && e["nick"] == "Bob" && e["role"] == "participant",
            EVENT_TIMEOUT,
        )
        .await?;

    // Moderation of Bob's message, and retraction of our own, seen by Bob.
    bob_peer
        .command(json!({"cmd": "muc_send", "room": room, "body": "spam spam"}))
        .await?;
    let spam = a.wait_message("spam spam").await?;
    a.client
        .moderate_message(&alice.jid, spam.id, Some("no spam"))
        .await?;
    let gone = a
        .wait_for("moderated", |e| match e {
            Event::MessageUpdated { message, .. } if message.id == spam.id && message.retracted => {
                Some(message.clone())
            }
            _ => None,
        })
        .await?;
    ensure!(
        gone.body.is_empty() && gone.retracted_by.is_some(),
        "{gone:?}"
    );
    bob_peer
        .next_event_matching(|e| e["moderated"].is_object(), EVENT_TIMEOUT)
        .await?;
    let mine = delivered(&mut a, &room, "oops").await?;
    a.client.retract_message(&alice.jid, mine.id).await?;
    let r = bob_peer
        .next_event_matching(
            |e| event_name(e) == "groupchat" && !e["retract"].is_null(),
            EVENT_TIMEOUT,
        )
        .await?;
    ensure!(
        r["retract"] == json!(mine.archive_id),
        "retracts by the room's id: {r}"
    );

    // Kick: both sides see it, with the reason.
    a.client
        .set_role(&alice.jid, &room, "Bob", Role::None, Some("bye for now"))
        .await?;
    let kick = bob_peer
        .next_event_matching(
            |e| event_name(e) == "muc_presence" && e["nick"] == "Bob" && e["type"] == "unavailable",
            EVENT_TIMEOUT,
        )
        .await?;
    ensure!(
        kick["codes"]
            .as_array()
            .is_some_and(|c| c.contains(&json!(307)))
            && kick["reason"] == "bye for now",
        "{kick}"
    );
    let note = a
        .wait_for("kick notice", |e| match e {
            Event::Message { message, .. } if message.kind == MessageKind::Notice => {
                Some(message.body.clone())
            }
            _ => None,
        })
        .await?;
    ensure!(
        note.contains("Bob was kicked") && note.contains("bye for now"),
        "{note}"
    );

    // Bob comes back as owner and bans Alice: Starling shows why and stops rejoining.
    peer_join(&mut bob_peer, &room, "Bob").await?;
    a.client
        .set_affiliation(
            &alice.jid,
            &room,
            &bob.jid,
            starling_core::Affiliation::Owner,
            None,
        )
        .await?;
    bob_peer
        .command(json!({"cmd": "muc_affiliation", "room": room, "jid": alice.jid, "affiliation": "outcast", "reason": "enough"}))
        .await?;
    let removed = a
        .wait_for("removed", |e| match e {
            Event::Room {
                state: RoomState::Removed { reason },
                ..
            } => Some(reason.clone()),
            _ => None,
        })
        .await?;
    ensure!(
        removed == "You were banned by Bob: enough" || removed.starts_with("You were banned"),
        "{removed}"
    );
    let rooms = a.client.rooms(&alice.jid)?;
    ensure!(
        rooms
            .iter()
            .any(|r| r.jid == room && !r.autojoin && r.removed.is_some()),
        "{rooms:?}"
    );
    let back = a.client.join_room(&alice.jid, &room, None, None).await;
    ensure!(
        matches!(&back, Err(starling_core::Error::JoinFailed { reason, .. }) if reason.contains("banned")),
        "{back:?}"
    );
    a.shutdown().await;
    bob_peer.quit().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bookmarks_carry_joins_and_leaves_to_other_devices() -> Result<()> {
    let server = support::fresh_server()?;
    let alice = server.account("alice")?;
    let mut one = Node::new(&server, &alice).await?;
    let mut two = Node::new(&server, &alice).await?;
    one.online().await?;
    two.online().await?;
    // The server has processed device two's caps (it asks once per new caps hash).
    two.client.check_rooms(&alice.jid).await?;
    let room = room_jid();
    one.client
        .join_room(&alice.jid, &room, Some("Alice"), None)
        .await?;
    joined(&mut two, &room).await?;
    let rooms = two.client.rooms(&alice.jid)?;
    ensure!(
        rooms
            .iter()
            .any(|r| r.jid == room && r.autojoin && r.bookmarked),
        "{rooms:?}"
    );
    one.client.leave_room(&alice.jid, &room).await?;
    two.wait_for("left on the other device", |e| match e {
        Event::Room {
            room: r,
            state: RoomState::Left,
            ..
        } if *r == room => Some(()),
        _ => None,
    })
    .await?;
    one.shutdown().await;
    two.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitations_and_forged_group_chat() -> Result<()> {
    let server = support::fresh_server()?;
    let (alice, bob) = (server.account("alice")?, server.account("bob")?);
    let mut a = Node::new(&server, &alice).await?;
    a.online().await?;
    let mut bob_peer = server.peer(&bob).await?;
    let room = room_jid();
    peer_join(&mut bob_peer, &room, "Bob").await?;

    bob_peer
        .command(
            json!({"cmd": "muc_direct_invite", "room": room, "to": alice.jid, "reason": "tea?"}),
        )
        .await?;
    let inv = a
        .wait_for("invitation", |e| match e {
            Event::Invitation { invitation, .. } => Some(invitation.clone()),
            _ => None,
        })
        .await?;
    ensure!(
        inv.room == room && inv.kind == "direct" && inv.reason.as_deref() == Some("tea?"),
        "{inv:?}"
    );
    ensure!(a.client.invitations(&alice.jid)?.len() == 1);
    // Accepting = joining; the invitation is answered.
    a.client.join_room(&alice.jid, &room, None, None).await?;
    ensure!(a.client.invitations(&alice.jid)?.is_empty());
    bob_peer
        .next_event_matching(
            |e| event_name(e) == "muc_presence" && e["nick"] == json!(alice.user),
            EVENT_TIMEOUT,
        )
        .await?;

    // A group chat message from someone who is not a room: dropped, not stored.
    let full = a
        .client
        .connection_info(&alice.jid)
        .await?
        .and_then(|info| info.jid)
        .context("not bound yet")?;
    let before = a.client.conversations(&alice.jid)?.len();
    bob_peer
        .command(json!({"cmd": "raw", "xml": format!(
            "<message xmlns='jabber:client' type='groupchat' to='{full}' id='forged'>\
             <body>forged room message</body></message>")}))
        .await?;
    let why = a
        .wait_for("ignored", |e| match e {
            Event::Ignored { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .await?;
    ensure!(why.contains("not a room we are in"), "{why}");
    ensure!(a.client.conversations(&alice.jid)?.len() == before);
    ensure!(
        a.client.search(&alice.jid, "forged", 10)?.is_empty(),
        "nothing stored"
    );
    a.shutdown().await;
    bob_peer.quit().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_traffic_through_a_cutting_proxy_arrives_once() -> Result<()> {
    use crate::proxy::CuttingProxy;
    use starling_core::connection::TlsMode;

    let server = support::fresh_server()?;
    let (alice, bob) = (server.account("alice")?, server.account("bob")?);
    let room = room_jid();
    let mut bob_peer = server.peer(&bob).await?;
    peer_join(&mut bob_peer, &room, "Bob").await?;
    // Each connection may carry ~8 KB from the client: a login plus a few messages.
    let proxy = CuttingProxy::start(server.c2s_port(), 8_000).await?;
    let opts = crate::node::options_via(&server, proxy.port, TlsMode::StartTls);
    let mut a = Node::with_options(&alice, opts).await?;
    a.online().await?;
    a.client
        .join_room(&alice.jid, &room, Some("Alice"), None)
        .await?;

    // Both sides talk at once while the connection keeps being cut.
    let mut mine = Vec::new();
    for i in 0..100 {
        mine.push(
            a.client
                .send_room_message(&alice.jid, &room, &format!("alice {i:03}"))
                .await?
                .id,
        );
        bob_peer
            .command(json!({"cmd": "muc_send", "room": room, "body": format!("bob {i:03}")}))
            .await?;
    }
    let mut pending: std::collections::HashSet<i64> = mine.iter().copied().collect();
    while !pending.is_empty() {
        let id = a
            .wait_for("reflections", |e| match e {
                Event::MessageUpdated { message, .. }
                    if message.state == MessageState::Delivered =>
                {
                    Some(message.id)
                }
                _ => None,
            })
            .await?;
        pending.remove(&id);
    }
    proxy.stop_cutting();
    ensure!(proxy.cuts() >= 3, "only {} cuts", proxy.cuts());
    bob_peer
        .command(json!({"cmd": "muc_send", "room": room, "body": "sentinel"}))
        .await?;
    a.wait_message("sentinel").await?;

    let msgs = room_messages(&a, &room)?;
    let theirs: Vec<&str> = msgs
        .iter()
        .filter(|m| !m.outgoing)
        .map(|m| m.body.as_str())
        .collect();
    let want: Vec<String> = (0..100)
        .map(|i| format!("bob {i:03}"))
        .chain(["sentinel".to_owned()])
        .collect();
    ensure!(
        theirs == want,
        "Starling got {} of Bob's: {theirs:?}",
        theirs.len()
    );
    ensure!(
        msgs.iter().filter(|m| m.outgoing).count() == 100,
        "our 100, once each"
    );
    // Bob saw each of Alice's messages exactly once.
    let mut seen = Vec::new();
    for e in bob_peer.take_backlog() {
        if event_name(&e) == "groupchat" && e["nick"] == "Alice" {
            seen.push(e["body"].as_str().unwrap_or_default().to_owned());
        }
    }
    while seen.len() < 100 {
        let e = bob_peer
            .next_event_matching(
                |e| event_name(e) == "groupchat" && e["nick"] == "Alice",
                EVENT_TIMEOUT,
            )
            .await?;
        seen.push(e["body"].as_str().unwrap_or_default().to_owned());
    }
    let want: Vec<String> = (0..100).map(|i| format!("alice {i:03}")).collect();
    ensure!(seen == want, "Bob got: {seen:?}");
    // And nothing more (no late duplicate): the ping is a barrier at the server.
    bob_peer.command(json!({"cmd": "ping"})).await?;
    let extra = bob_peer
        .take_backlog()
        .into_iter()
        .filter(|e| event_name(e) == "groupchat" && e["nick"] == "Alice")
        .count();
    ensure!(extra == 0, "{extra} duplicates at Bob");
    a.shutdown().await;
    bob_peer.quit().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_does_group_chat() -> Result<()> {
    use crate::cli::Cli;

    let server = support::fresh_server()?;
    let (alice, bob) = (server.account("alice")?, server.account("bob")?);
    let mut bob_peer = server.peer(&bob).await?;
    let room = room_jid();
    peer_join(&mut bob_peer, &room, "Bob").await?;
    // A password-protected room.
    bob_peer
        .command(json!({"cmd": "muc_configure", "room": room,
                        "fields": {"muc#roomconfig_roomsecret": "s3cret"}}))
        .await?;
    let cli = Cli::new(&server)?;
    cli.add_account(&alice).await?;

    let err = cli
        .fail(&["muc", "join", &room, "--nick", "Alice"], None)
        .await?;
    ensure!(err.contains("needs a password"), "{err}");
    let out = cli
        .command(&[
            "--json",
            "muc",
            "join",
            &room,
            "--nick",
            "Alice",
            "--password",
        ])
        .env("STARLING_ROOM_PASSWORD", "s3cret")
        .output()
        .await?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let joined: Value = serde_json::from_slice(&out.stdout)?;
    ensure!(
        joined["nick"] == "Alice" && joined["occupants"] == 2,
        "{joined}"
    );
    ensure!(
        !String::from_utf8_lossy(&out.stdout).contains("s3cret"),
        "no secret in the output"
    );

    cli.run(&["muc", "send", &room, "hello from the shell"])
        .await?;
    peer_sees(&mut bob_peer, "hello from the shell").await?;
    let occ = cli.json(&["muc", "occupants", &room]).await?;
    let nicks: Vec<&str> = occ
        .as_array()
        .map(|a| a.iter().filter_map(|o| o["nick"].as_str()).collect())
        .unwrap_or_default();
    ensure!(nicks.contains(&"Alice") && nicks.contains(&"Bob"), "{occ}");
    let history = cli.json(&["history", &room]).await?;
    ensure!(
        history.as_array().is_some_and(|h| h
            .iter()
            .any(|m| m["body"] == "hello from the shell" && m["state"] == "delivered")),
        "{history}"
    );
    let bookmarks = cli.json(&["bookmarks", "list"]).await?;
    ensure!(
        bookmarks.as_array().is_some_and(|b| b
            .iter()
            .any(|r| r["jid"] == json!(room) && r["autojoin"] == true)),
        "{bookmarks}"
    );
    cli.run(&["muc", "invite", &room, &bob.jid, "--reason", "come back"])
        .await?;
    let inv = bob_peer
        .next_event_matching(|e| event_name(e) == "muc_invite", EVENT_TIMEOUT)
        .await?;
    ensure!(
        inv["room"] == json!(room) && inv["reason"] == "come back",
        "{inv}"
    );

    // Alice is no moderator here: the kick is refused, with the server's reason.
    let err = cli
        .fail(&["muc", "kick", &room, "Bob", "--reason", "test"], None)
        .await?;
    ensure!(err.contains("refused"), "{err}");

    cli.run(&["muc", "leave", &room]).await?;
    let left = bob_peer
        .next_event_matching(
            |e| {
                event_name(e) == "muc_presence"
                    && e["nick"] == "Alice"
                    && e["type"] == "unavailable"
            },
            EVENT_TIMEOUT,
        )
        .await?;
    ensure!(left["room"] == json!(room), "{left}");
    let rooms = cli.json(&["muc", "list"]).await?;
    ensure!(
        rooms.as_array().is_some_and(|r| r
            .iter()
            .any(|r| r["jid"] == json!(room) && r["autojoin"] == false)),
        "{rooms}"
    );
    bob_peer.quit().await?;
    Ok(())
}
