//! OMEMO in the client, over a real Prosody: device lists and bundles on PEP, encrypted chat
//! between two Starling accounts (OMEMO 2, both speak it), sticky encryption, trust, and
//! an undecryptable message that stays visible with its reason.

use anyhow::{Result, ensure};
use serde_json::{Value, json};
use starling_core::Event;
use starling_core::store::omemo::Trust;
use starling_core::store::{Encryption, MessageRecord};

use starling::testbed::CONFERENCE_DOMAIN;

use crate::node::Node;
use crate::support::{self, EVENT_TIMEOUT, Peer, event_name};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starling_to_starling_encrypted_chat() -> Result<()> {
    let server = support::fresh_server()?;
    let (alice, bob) = (server.account("alice")?, server.account("bob")?);
    server.befriend(&alice.jid, &bob.jid)?;
    let mut a = Node::new(&server, &alice).await?;
    let mut b = Node::new(&server, &bob).await?;
    a.online().await?;
    b.online().await?;
    a.client.omemo_publish(&alice.jid).await?;
    b.client.omemo_publish(&bob.jid).await?;

    // Alice sees Bob's device with his fingerprint, blindly trusted until verified.
    let (bob_id, bob_fpr) = b.client.omemo_own(&bob.jid).await?;
    let devices = a.client.omemo_devices(&alice.jid, &bob.jid).await?;
    ensure!(
        devices
            .iter()
            .any(|d| d.device == bob_id && d.fingerprint.as_deref() == Some(bob_fpr.as_str())),
        "{devices:?}"
    );
    // Bob's OMEMO 2 device carries his signed label (it verifies under his key).
    ensure!(
        devices.iter().any(|d| d.device == bob_id
            && d.ns == starling_core::crypto::omemo::Namespace::Omemo2
            && d.label.as_deref() == Some(&format!("Starling on {}", std::env::consts::OS))),
        "{devices:?}"
    );

    let sent = a
        .client
        .send_encrypted(&alice.jid, &bob.jid, "the secret is 42")
        .await?;
    ensure!(sent.encryption == Some(Encryption::Omemo2), "{sent:?}");
    let got = b.wait_message("the secret is 42").await?;
    ensure!(got.encryption == Some(Encryption::Omemo2), "{got:?}");
    ensure!(got.undecryptable.is_none());

    // Bob's conversation is now encrypted too: a plain send_message is encrypted.
    let reply = b
        .client
        .send_message(&bob.jid, &alice.jid, "got it")
        .await?;
    ensure!(reply.encryption.is_some(), "sticky encryption: {reply:?}");
    let got = a.wait_message("got it").await?;
    ensure!(got.encryption.is_some(), "{got:?}");

    // Alice's second Starling device: it gets Bob's messages, and copies (carbons) of what
    // the first device sends, all decrypted.
    let mut a2 = Node::new(&server, &alice).await?;
    a2.online().await?;
    a2.client.omemo_publish(&alice.jid).await?;
    b.client.omemo_devices(&bob.jid, &alice.jid).await?;
    b.client
        .send_message(&bob.jid, &alice.jid, "to all your devices")
        .await?;
    a.wait_message("to all your devices").await?;
    let got = a2.wait_message("to all your devices").await?;
    ensure!(got.encryption.is_some(), "{got:?}");
    a.client.omemo_devices(&alice.jid, &alice.jid).await?;
    a.client
        .send_message(&alice.jid, &bob.jid, "from my first device")
        .await?;
    b.wait_message("from my first device").await?;
    let copy = a2.wait_message("from my first device").await?;
    ensure!(copy.outgoing && copy.encryption.is_some(), "{copy:?}");
    a2.shutdown().await;

    // Verifying a key is recorded; an untrusted key gets nothing.
    a.client
        .omemo_set_trust(&alice.jid, &bob.jid, &bob_fpr, Trust::Untrusted)
        .await?;
    let refused = a
        .client
        .send_message(&alice.jid, &bob.jid, "not for you")
        .await;
    ensure!(
        matches!(&refused, Err(starling_core::Error::NotEncryptable { reason, .. }) if reason.contains("untrusted")),
        "{refused:?}"
    );
    a.client
        .omemo_set_trust(&alice.jid, &bob.jid, &bob_fpr, Trust::Verified)
        .await?;
    a.client
        .send_message(&alice.jid, &bob.jid, "verified now")
        .await?;
    let got = b.wait_message("verified now").await?;
    ensure!(got.trust_warning.is_none(), "{got:?}");

    // What a key Bob distrusts says is shown with a warning (still shown: never silent).
    let (_, alice_fpr) = a.client.omemo_own(&alice.jid).await?;
    b.client
        .omemo_set_trust(&bob.jid, &alice.jid, &alice_fpr, Trust::Untrusted)
        .await?;
    a.client
        .send_message(&alice.jid, &bob.jid, "do you believe me?")
        .await?;
    let got = b.wait_message("do you believe me?").await?;
    ensure!(
        got.trust_warning
            .as_deref()
            .is_some_and(|w| w.contains("which you marked untrusted")),
        "{got:?}"
    );
    b.client
        .omemo_set_trust(&bob.jid, &alice.jid, &alice_fpr, Trust::Blind)
        .await?;

    // Bob turns encryption off: Alice's next encrypted message does not turn it back on.
    b.client
        .set_conversation_encryption(&bob.jid, &alice.jid, false)?;
    a.client
        .send_message(&alice.jid, &bob.jid, "still encrypted from me")
        .await?;
    b.wait_message("still encrypted from me").await?;
    ensure!(
        b.client
            .conversation_encryption(&bob.jid, &alice.jid)?
            .is_none(),
        "the user's choice to send plaintext stays"
    );

    // An OMEMO message not encrypted for Bob's device is shown with the reason, not dropped.
    let carol = server.account("carol")?;
    let mut carol_peer = server.peer(&carol).await?;
    let bogus = format!(
        "<message xmlns='jabber:client' to='{}' type='chat' id='bogus1'>\
         <encrypted xmlns='urn:xmpp:omemo:2'><header sid='777'>\
         <keys jid='{}'><key rid='12345'>AAAA</key></keys></header>\
         <payload>AAAAAAAAAAAAAAAAAAAAAA==</payload></encrypted>\
         <body>fallback</body></message>",
        bob.jid, bob.jid
    );
    carol_peer
        .command(serde_json::json!({"cmd": "raw", "xml": bogus}))
        .await?;
    let entry = undecryptable(&mut b, "undecryptable entry").await?;
    ensure!(
        entry
            .undecryptable
            .as_deref()
            .is_some_and(|r| r.contains("did not encrypt this message for this device")),
        "{entry:?}"
    );
    ensure!(
        entry.body.is_empty(),
        "the fallback body is not shown as the message"
    );
    carol_peer.quit().await?;
    a.shutdown().await;
    b.shutdown().await;
    Ok(())
}

/// Waits for the next message that arrived encrypted and could not be decrypted.
async fn undecryptable(node: &mut Node, what: &str) -> Result<MessageRecord> {
    node.wait_for(what, |e| match e {
        Event::Message { message, .. } if message.undecryptable.is_some() => Some(message.clone()),
        _ => None,
    })
    .await
}

/// Waits for the peer to report a decrypted OMEMO message with `body`.
async fn peer_decrypts(peer: &mut Peer, body: &str) -> Result<Value> {
    peer.next_event_matching(
        |e| {
            (event_name(e) == "omemo_message" && e["body"] == body)
                || event_name(e) == "omemo_error"
        },
        EVENT_TIMEOUT,
    )
    .await
    .and_then(|e| {
        ensure!(
            event_name(&e) == "omemo_message",
            "peer could not decrypt: {e}"
        );
        Ok(e)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starling_and_slixmpp_omemo_in_both_namespaces() -> Result<()> {
    let server = support::fresh_server()?;
    let (alice, bob) = (server.account("alice")?, server.account("bob")?);
    server.befriend(&alice.jid, &bob.jid)?;
    let mut bob1 = server.peer(&bob).await?;
    bob1.command(json!({"cmd": "omemo_enable"})).await?;
    let mut a = Node::new(&server, &alice).await?;
    a.online().await?;
    a.client.omemo_publish(&alice.jid).await?;

    // Starling starts the session (a key exchange) and picks OMEMO 2: bob's device speaks both.
    let sent = a
        .client
        .send_encrypted(&alice.jid, &bob.jid, "hello from Starling")
        .await?;
    ensure!(sent.encryption == Some(Encryption::Omemo2), "{sent:?}");
    let ev = peer_decrypts(&mut bob1, "hello from Starling").await?;
    ensure!(ev["namespace"] == "twomemo", "{ev}");

    // The peer answers in each namespace; Starling decrypts both.
    for ns in ["twomemo", "oldmemo"] {
        let body = format!("reply over {ns}");
        bob1.command(json!({"cmd": "omemo_send", "to": alice.jid, "body": body, "namespace": ns}))
            .await?;
        let got = a.wait_message(&body).await?;
        let want = if ns == "twomemo" {
            Encryption::Omemo2
        } else {
            Encryption::Omemo
        };
        ensure!(got.encryption == Some(want), "{got:?}");
    }

    // After the peer refreshes its bundle (new signed pre-key, pre-keys), the session goes on.
    bob1.command(json!({"cmd": "omemo_refresh"})).await?;
    a.client
        .send_message(&alice.jid, &bob.jid, "after your bundle refresh")
        .await?;
    peer_decrypts(&mut bob1, "after your bundle refresh").await?;

    // A second device on bob's account: Starling encrypts to both once it sees the new list.
    let mut bob2 = Peer::connect(
        &server,
        &bob,
        support::PeerOptions {
            resource: Some("second".into()),
            ..support::PeerOptions::default()
        },
    )
    .await?;
    bob2.command(json!({"cmd": "omemo_enable"})).await?;
    // omemo_devices fetches the current lists (no waiting for the PEP notification).
    let devices = a.client.omemo_devices(&alice.jid, &bob.jid).await?;
    ensure!(
        devices.iter().filter(|d| d.active).count() >= 4,
        "{devices:?}"
    );
    a.client
        .send_message(&alice.jid, &bob.jid, "to both of your devices")
        .await?;
    peer_decrypts(&mut bob1, "to both of your devices").await?;
    peer_decrypts(&mut bob2, "to both of your devices").await?;

    // Offline: what bob sends meanwhile is decrypted from the archive on reconnect.
    a.client.disconnect_all().await;
    bob1.command(json!({"cmd": "omemo_send", "to": alice.jid, "body": "while you were away"}))
        .await?;
    a.online().await?;
    let history = a.history(&bob.jid)?;
    let got = history
        .iter()
        .find(|m| m.body == "while you were away")
        .ok_or_else(|| anyhow::anyhow!("not caught up from the archive: {history:?}"))?;
    ensure!(
        got.encryption.is_some() && got.undecryptable.is_none(),
        "{got:?}"
    );
    ensure!(
        history.iter().all(|m| m.undecryptable.is_none()),
        "archive copies of messages decrypted live must not turn into failure entries: {history:?}"
    );
    a.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_only_client_gets_legacy_omemo() -> Result<()> {
    let server = support::fresh_server()?;
    let (alice, dave) = (server.account("alice")?, server.account("dave")?);
    server.befriend(&alice.jid, &dave.jid)?;
    let mut dave_peer = server.peer(&dave).await?;
    dave_peer
        .command(json!({"cmd": "omemo_enable", "namespaces": ["oldmemo"]}))
        .await?;
    let mut a = Node::new(&server, &alice).await?;
    a.online().await?;
    a.client.omemo_publish(&alice.jid).await?;
    let sent = a
        .client
        .send_encrypted(&alice.jid, &dave.jid, "old but gold")
        .await?;
    ensure!(sent.encryption == Some(Encryption::Omemo), "{sent:?}");
    let ev = peer_decrypts(&mut dave_peer, "old but gold").await?;
    ensure!(ev["namespace"] == "oldmemo", "{ev}");
    dave_peer
        .command(json!({"cmd": "omemo_send", "to": alice.jid, "body": "legacy back"}))
        .await?;
    let got = a.wait_message("legacy back").await?;
    ensure!(got.encryption == Some(Encryption::Omemo), "{got:?}");
    a.shutdown().await;
    Ok(())
}

/// Waits for the peer's decrypted room message with `body`.
async fn peer_decrypts_in_room(peer: &mut Peer, body: &str) -> Result<Value> {
    let ev = peer_decrypts(peer, body).await?;
    ensure!(ev["type"] == "groupchat", "{ev}");
    Ok(ev)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_group_chat_with_two_slixmpp_members() -> Result<()> {
    let server = support::fresh_server()?;
    let (alice, bob, carol) = (
        server.account("alice")?,
        server.account("bob")?,
        server.account("carol")?,
    );
    let mut a = server.peer(&alice).await?;
    let mut b = server.peer(&bob).await?;
    a.command(json!({"cmd": "omemo_enable"})).await?;
    b.command(json!({"cmd": "omemo_enable"})).await?;
    let mut c = Node::new(&server, &carol).await?;
    c.online().await?;
    c.client.omemo_publish(&carol.jid).await?;

    // A members-only, non-anonymous room (XEP-0384's requirement), alice owner, bob and
    // carol (Starling) members.
    let room = format!("{}@{CONFERENCE_DOMAIN}", support::unique_name("omemo"));
    a.command(json!({"cmd": "muc_join", "room": room, "nick": "Alice"}))
        .await?;
    a.command(json!({"cmd": "muc_configure", "room": room, "fields": {
        "muc#roomconfig_membersonly": true,
        "muc#roomconfig_whois": "anyone",
    }}))
    .await?;
    for member in [&bob.jid, &carol.jid] {
        a.command(
            json!({"cmd": "muc_affiliation", "room": room, "jid": member,
                         "affiliation": "member"}),
        )
        .await?;
    }
    b.command(json!({"cmd": "muc_join", "room": room, "nick": "Bob"}))
        .await?;
    c.client
        .join_room(&carol.jid, &room, Some("Carol"), None)
        .await?;

    // Starling -> both members (and the namespace they all speak: OMEMO 2).
    let sent = c
        .client
        .send_room_encrypted(&carol.jid, &room, "hello, encrypted room")
        .await?;
    ensure!(sent.encryption == Some(Encryption::Omemo2), "{sent:?}");
    for peer in [&mut a, &mut b] {
        let ev = peer_decrypts_in_room(peer, "hello, encrypted room").await?;
        ensure!(
            ev["nick"] == "Carol" && ev["namespace"] == "twomemo",
            "{ev}"
        );
    }
    // The room's reflection marks it delivered (it is ours; there is nothing to decrypt).
    c.wait_state(sent.id, starling_core::MessageState::Delivered)
        .await?;

    // Members -> Starling, in both namespaces; the room stays encrypted for Starling's
    // next plain send_room_message.
    for ns in ["twomemo", "oldmemo"] {
        let body = format!("bob to the room over {ns}");
        b.command(json!({"cmd": "omemo_muc_send", "room": room, "body": body, "namespace": ns}))
            .await?;
        let got = c.wait_message(&body).await?;
        ensure!(
            got.encryption.is_some() && got.undecryptable.is_none(),
            "{got:?}"
        );
    }
    let again = c
        .client
        .send_room_message(&carol.jid, &room, "still encrypted")
        .await?;
    ensure!(
        again.encryption.is_some(),
        "sticky room encryption: {again:?}"
    );
    peer_decrypts_in_room(&mut a, "still encrypted").await?;

    // An open room cannot be encrypted, and Starling says why.
    let open = format!("{}@{CONFERENCE_DOMAIN}", support::unique_name("open"));
    c.client
        .join_room(&carol.jid, &open, Some("Carol"), None)
        .await?;
    let refused = c.client.send_room_encrypted(&carol.jid, &open, "x").await;
    ensure!(
        matches!(&refused, Err(starling_core::Error::NotEncryptable { reason, .. })
            if reason.contains("cannot be encrypted")),
        "{refused:?}"
    );
    a.quit().await?;
    b.quit().await?;
    c.shutdown().await;
    Ok(())
}

/// A lost session is repaired: the undecryptable message is shown with its reason, Starling
/// sends the sender a fresh key exchange, and the sender's next message decrypts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_session_is_repaired() -> Result<()> {
    let server = support::fresh_server()?;
    let (alice, bob) = (server.account("alice")?, server.account("bob")?);
    server.befriend(&alice.jid, &bob.jid)?;
    let mut bob_peer = server.peer(&bob).await?;
    bob_peer.command(json!({"cmd": "omemo_enable"})).await?;
    let mut a = Node::new(&server, &alice).await?;
    a.online().await?;
    a.client.omemo_publish(&alice.jid).await?;
    a.client
        .send_encrypted(&alice.jid, &bob.jid, "start")
        .await?;
    peer_decrypts(&mut bob_peer, "start").await?;
    bob_peer
        .command(json!({"cmd": "omemo_send", "to": alice.jid, "body": "confirmed"}))
        .await?;
    a.wait_message("confirmed").await?;

    // Starling loses its sessions (as after restoring an old backup).
    a.client.omemo_forget_sessions(&alice.jid, &bob.jid).await?;
    bob_peer
        .command(json!({"cmd": "omemo_send", "to": alice.jid, "body": "lost in the void"}))
        .await?;
    let failed = undecryptable(&mut a, "undecryptable entry").await?;
    ensure!(
        failed
            .undecryptable
            .as_deref()
            .is_some_and(|r| r.contains("no session")),
        "{failed:?}"
    );
    // The repair: an empty message with a key exchange reaches the peer...
    bob_peer
        .next_event_matching(|e| event_name(e) == "omemo_empty", EVENT_TIMEOUT)
        .await?;
    // ...and the next message decrypts again.
    bob_peer
        .command(json!({"cmd": "omemo_send", "to": alice.jid, "body": "back in business"}))
        .await?;
    let got = a.wait_message("back in business").await?;
    ensure!(got.undecryptable.is_none(), "{got:?}");
    a.shutdown().await;
    Ok(())
}

/// Protobuf field with a length-delimited value.
fn pb_bytes(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut v = vec![(tag << 3) | 2];
    v.extend(pb_varint(value.len() as u64));
    v.extend_from_slice(value);
    v
}

fn pb_varint(mut n: u64) -> Vec<u8> {
    let mut v = Vec::new();
    loop {
        let b = (n & 0x7F) as u8;
        n >>= 7;
        if n == 0 {
            v.push(b);
            return v;
        }
        v.push(b | 0x80);
    }
}

fn pb_uint(tag: u8, n: u64) -> Vec<u8> {
    let mut v = vec![tag << 3];
    v.extend(pb_varint(n));
    v
}

/// Hostile OMEMO input from a contact with a working session: each is a visible, explained
/// failure entry, nothing crashes, and the session still works afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_omemo_input_is_explained_and_harmless() -> Result<()> {
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let server = support::fresh_server()?;
    let (alice, bob) = (server.account("alice")?, server.account("bob")?);
    server.befriend(&alice.jid, &bob.jid)?;
    let mut bob_peer = server.peer(&bob).await?;
    let bob_dev = bob_peer.command(json!({"cmd": "omemo_enable"})).await?;
    let bob_sid = bob_dev["device_id"].as_u64().unwrap_or_default();
    let mut a = Node::new(&server, &alice).await?;
    a.online().await?;
    a.client.omemo_publish(&alice.jid).await?;
    a.client.send_encrypted(&alice.jid, &bob.jid, "hi").await?;
    peer_decrypts(&mut bob_peer, "hi").await?;
    bob_peer
        .command(json!({"cmd": "omemo_send", "to": alice.jid, "body": "hi back"}))
        .await?;
    a.wait_message("hi back").await?;
    let (alice_rid, _) = a.client.omemo_own(&alice.jid).await?;

    // An OMEMOMessage claiming a previous chain of 100000 messages (a skip-count attack).
    let message = [
        pb_uint(1, 1),
        pb_uint(2, 100_000),
        pb_bytes(3, &[9; 32]),
        pb_bytes(4, &[7; 16]),
    ]
    .concat();
    let oversized = [pb_bytes(1, &[0; 16]), pb_bytes(2, &message)].concat();
    // A well-formed message under a new ratchet key with a made-up MAC.
    let plausible = [
        pb_uint(1, 0),
        pb_uint(2, 0),
        pb_bytes(3, &[9; 32]),
        pb_bytes(4, &[7; 16]),
    ]
    .concat();
    let forged = [pb_bytes(1, &[1; 16]), pb_bytes(2, &plausible)].concat();
    let cases: [(&str, String, &str); 4] = [
        ("bad base64", "!!!not base64!!!".into(), "malformed"),
        ("garbage protobuf", b64(&[0xFF; 40]), "malformed"),
        ("huge skip count", b64(&oversized), "skipped messages"),
        ("forged MAC", b64(&forged), "authentication"),
    ];
    for (i, (what, key, expect)) in cases.iter().enumerate() {
        let xml = format!(
            "<message xmlns='jabber:client' to='{to}' type='chat' id='hostile{i}'>\
             <encrypted xmlns='urn:xmpp:omemo:2'><header sid='{bob_sid}'>\
             <keys jid='{to}'><key rid='{alice_rid}'>{key}</key></keys></header>\
             <payload>AAAAAAAAAAAAAAAAAAAAAA==</payload></encrypted></message>",
            to = alice.jid
        );
        bob_peer.command(json!({"cmd": "raw", "xml": xml})).await?;
        let entry = undecryptable(&mut a, what).await?;
        let reason = entry.undecryptable.clone().unwrap_or_default();
        ensure!(reason.contains(expect), "{what}: {reason}");
    }
    // A message for a device that is not ours.
    let xml = format!(
        "<message xmlns='jabber:client' to='{to}' type='chat' id='notours'>\
         <encrypted xmlns='urn:xmpp:omemo:2'><header sid='{bob_sid}'>\
         <keys jid='{to}'><key rid='{other}'>AAAA</key></keys></header>\
         <payload>AAAAAAAAAAAAAAAAAAAAAA==</payload></encrypted></message>",
        to = alice.jid,
        other = alice_rid ^ 1
    );
    bob_peer.command(json!({"cmd": "raw", "xml": xml})).await?;
    a.wait_for("not for this device", |e| match e {
        Event::Message { message, .. }
            if message
                .undecryptable
                .as_deref()
                .is_some_and(|r| r.contains("not encrypt this message for this device")) =>
        {
            Some(())
        }
        _ => None,
    })
    .await?;

    // The session is intact: the peer's next real message decrypts.
    bob_peer
        .command(json!({"cmd": "omemo_send", "to": alice.jid, "body": "still fine"}))
        .await?;
    let got = a.wait_message("still fine").await?;
    ensure!(got.undecryptable.is_none(), "{got:?}");
    a.shutdown().await;
    Ok(())
}
