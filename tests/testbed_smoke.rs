//! Smoke tests of the test bed itself: a fresh Prosody and two independent slixmpp peers.

use anyhow::{Context, Result};
use serde_json::json;
use starling::testbed::ProsodyOptions;

use crate::support::{EVENT_TIMEOUT, Peer, PeerOptions, event_name, fresh_server_with};

#[tokio::test]
async fn peers_exchange_messages_receipts_markers_and_mam() -> Result<()> {
    let server = crate::support::fresh_server()?;
    let alice = server.account("alice")?;
    let bob = server.account("bob")?;

    let mut a = server.peer(&alice).await?;
    let mut b = Peer::connect(
        &server,
        &bob,
        PeerOptions {
            direct_tls: true,
            resource: Some("smoke".into()),
            ..PeerOptions::default()
        },
    )
    .await?;
    assert_eq!(b.full_jid, format!("{}/smoke", bob.jid));

    let id = a.send_message(&bob.jid, "hello bob").await?;
    let msg = b
        .next_event_matching(
            |e| event_name(e) == "message" && e["id"] == id,
            EVENT_TIMEOUT,
        )
        .await?;
    assert_eq!(msg["body"], "hello bob");
    assert_eq!(msg["origin_id"], id.as_str());
    assert_eq!(msg["receipt_request"], true);
    assert!(
        msg["stanza_id"].is_string(),
        "server must add a stanza-id: {msg}"
    );
    assert_eq!(msg["from"], a.full_jid.as_str());

    let receipt = a.next_event("receipt", EVENT_TIMEOUT).await?;
    assert_eq!(receipt["id"], id.as_str());

    b.command(json!({"cmd": "displayed", "to": a.full_jid, "id": id}))
        .await?;
    let displayed = a.next_event("displayed", EVENT_TIMEOUT).await?;
    assert_eq!(displayed["id"], id.as_str());

    b.command(json!({"cmd": "chatstate", "to": alice.jid, "state": "composing"}))
        .await?;
    let state = a.next_event("chatstate", EVENT_TIMEOUT).await?;
    assert_eq!(state["state"], "composing");

    let fix = a
        .command(json!({"cmd": "correct", "to": bob.jid, "body": "hello, bob", "replace": id}))
        .await?;
    let corrected = b
        .next_event_matching(
            |e| event_name(e) == "message" && e["id"] == fix["id"],
            EVENT_TIMEOUT,
        )
        .await?;
    assert_eq!(corrected["replace"], id.as_str());

    let done = a.command(json!({"cmd": "mam", "with": bob.jid})).await?;
    let mut bodies = Vec::new();
    for _ in 0..done["count"].as_u64().context("mam count")? {
        let m = a.next_event("mam_message", EVENT_TIMEOUT).await?;
        if let Some(body) = m["body"].as_str() {
            bodies.push(body.to_owned());
        }
    }
    assert!(bodies.contains(&"hello bob".to_owned()), "{bodies:?}");
    assert!(bodies.contains(&"hello, bob".to_owned()), "{bodies:?}");

    a.quit().await?;
    b.quit().await?;
    server.stop()
}

#[tokio::test]
async fn offline_message_is_delivered_with_delay() -> Result<()> {
    let server = crate::support::fresh_server()?;
    let alice = server.account("alice")?;
    let bob = server.account("bob")?;

    let mut a = server.peer(&alice).await?;
    let id = a.send_message(&bob.jid, "while you were away").await?;
    a.sync().await?;

    let mut b = server.peer(&bob).await?;
    let msg = b
        .next_event_matching(
            |e| event_name(e) == "message" && e["id"] == id,
            EVENT_TIMEOUT,
        )
        .await?;
    assert_eq!(msg["delay"], true, "{msg}");
    assert_eq!(msg["body"], "while you were away");

    a.quit().await?;
    b.quit().await?;
    Ok(())
}

#[tokio::test]
async fn without_offline_delivery_messages_wait_in_mam() -> Result<()> {
    let server = fresh_server_with(ProsodyOptions {
        offline_delivery: false,
        ..ProsodyOptions::default()
    })?;
    let alice = server.account("alice")?;
    let bob = server.account("bob")?;

    let mut a = server.peer(&alice).await?;
    a.send_message(&bob.jid, "archived only").await?;
    a.sync().await?;

    let mut b = server.peer(&bob).await?;
    let done = b.command(json!({"cmd": "mam", "with": alice.jid})).await?;
    assert_eq!(done["count"], 1, "{done}");
    let m = b.next_event("mam_message", EVENT_TIMEOUT).await?;
    assert_eq!(m["body"], "archived only");
    // A ping round trip after login: an offline message would have arrived before it.
    b.sync().await?;
    assert!(
        b.take_backlog().iter().all(|e| event_name(e) != "message"),
        "mod_offline must be disabled"
    );

    a.quit().await?;
    b.quit().await?;
    Ok(())
}

#[tokio::test]
async fn carbons_reach_the_other_resource() -> Result<()> {
    let server = crate::support::fresh_server()?;
    let alice = server.account("alice")?;
    let bob = server.account("bob")?;
    let with_resource = |r: &str| PeerOptions {
        resource: Some(r.into()),
        ..PeerOptions::default()
    };
    let mut a1 = Peer::connect(&server, &alice, with_resource("one")).await?;
    let mut a2 = Peer::connect(&server, &alice, with_resource("two")).await?;
    let mut b = server.peer(&bob).await?;

    let sent = a1.send_message(&bob.jid, "from one").await?;
    let carbon = a2
        .next_event_matching(
            |e| event_name(e) == "carbon_sent" && e["id"] == sent,
            EVENT_TIMEOUT,
        )
        .await?;
    assert_eq!(carbon["body"], "from one");
    assert_eq!(carbon["from"], a1.full_jid.as_str());

    let reply = b.send_message(&a1.full_jid, "to one").await?;
    let carbon = a2
        .next_event_matching(
            |e| event_name(e) == "carbon_received" && e["id"] == reply,
            EVENT_TIMEOUT,
        )
        .await?;
    assert_eq!(carbon["to"], a1.full_jid.as_str());

    for p in [a1, a2, b] {
        p.quit().await?;
    }
    Ok(())
}
