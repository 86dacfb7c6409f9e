//! 1:1 chat against a real Prosody and an independent client (slixmpp).

use anyhow::{Result, ensure};
use serde_json::json;
use starling::testbed::ProsodyOptions;
use starling_core::{Event, MessageState};

use crate::node::Node;
use crate::support::{self, EVENT_TIMEOUT, event_name};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_both_ways_with_receipts_and_markers() -> Result<()> {
    let server = support::fresh_server()?;
    let (alice, bob) = (server.account("alice")?, server.account("bob")?);
    let mut a = Node::new(&server, &alice).await?;
    a.online().await?;
    let mut peer = server.peer(&bob).await?;

    // Starling -> slixmpp: receipt requested, origin-id = id, receipt comes back.
    let sent = a.send(&bob.jid, "hello from Starling").await?;
    ensure!(
        sent.state == MessageState::Pending,
        "local echo is pending: {sent:?}"
    );
    let got = peer
        .next_event_matching(
            |e| event_name(e) == "message" && e["body"] == "hello from Starling",
            EVENT_TIMEOUT,
        )
        .await?;
    ensure!(got["receipt_request"] == true, "receipt requested: {got}");
    ensure!(got["id"] == json!(sent.stanza_id), "id kept: {got}");
    ensure!(
        got["origin_id"] == json!(sent.stanza_id),
        "origin-id = id: {got}"
    );
    a.wait_state(sent.id, MessageState::Delivered).await?;

    // The peer marks it displayed (XEP-0333).
    peer.command(json!({"cmd": "displayed", "to": alice.jid, "id": sent.stanza_id}))
        .await?;
    a.wait_state(sent.id, MessageState::Displayed).await?;

    // slixmpp -> Starling: stored, and a receipt goes back for the peer's id.
    let id = peer.send_message(&alice.jid, "hello from slixmpp").await?;
    let m = a.wait_message("hello from slixmpp").await?;
    ensure!(!m.outgoing && m.peer == bob.jid, "{m:?}");
    let receipt = peer.next_event("receipt", EVENT_TIMEOUT).await?;
    ensure!(receipt["id"] == json!(id), "receipt for {id}: {receipt}");

    // Unread until the user reads it; reading sends a displayed marker for the peer's id.
    let convs = a.client.conversations(&alice.jid)?;
    ensure!(convs[0].unread == 1, "{convs:?}");
    a.client.mark_read(&alice.jid, &bob.jid).await?;
    ensure!(a.client.conversations(&alice.jid)?[0].unread == 0);
    let marker = peer.next_event("displayed", EVENT_TIMEOUT).await?;
    ensure!(
        marker["id"] == json!(id),
        "displayed marker for {id}: {marker}"
    );

    // Chat states are shown, not stored.
    peer.command(json!({"cmd": "chatstate", "to": alice.jid, "state": "composing"}))
        .await?;
    let state = a
        .wait_for("composing", |e| match e {
            Event::ChatState { state, .. } => Some(state.clone()),
            _ => None,
        })
        .await?;
    ensure!(state == "composing", "{state}");

    let history = a.history(&bob.jid)?;
    ensure!(history.len() == 2, "two messages stored: {history:?}");
    // Service discovery of the server and of our account happened at session start.
    let features = a.client.server_features(&alice.jid).await?;
    ensure!(
        features.server.iter().any(|f| f == "urn:xmpp:carbons:2"),
        "{features:?}"
    );
    ensure!(
        features.account.iter().any(|f| f == "urn:xmpp:mam:2"),
        "{features:?}"
    );
    a.shutdown().await;
    peer.quit().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrections_are_shown_as_edits_both_ways() -> Result<()> {
    let server = support::fresh_server()?;
    let (alice, bob) = (server.account("alice")?, server.account("bob")?);
    let mut a = Node::new(&server, &alice).await?;
    a.online().await?;
    let mut peer = server.peer(&bob).await?;

    let id = peer.send_message(&alice.jid, "helo").await?;
    let original = a.wait_message("helo").await?;
    peer.command(json!({"cmd": "correct", "to": alice.jid, "body": "hello", "replace": id}))
        .await?;
    let edited = a
        .wait_for("correction", |e| match e {
            Event::MessageUpdated { message, .. } if message.id == original.id => {
                Some(message.clone())
            }
            _ => None,
        })
        .await?;
    ensure!(edited.body == "hello" && edited.edited, "{edited:?}");
    ensure!(
        a.history(&bob.jid)?.len() == 1,
        "the correction replaced, not added"
    );

    let mine = a.send(&bob.jid, "wrold").await?;
    peer.next_event_matching(|e| e["body"] == "wrold", EVENT_TIMEOUT)
        .await?;
    a.client
        .correct_last_message(&alice.jid, &bob.jid, "world")
        .await?;
    let fix = peer
        .next_event_matching(
            |e| event_name(e) == "message" && e["body"] == "world",
            EVENT_TIMEOUT,
        )
        .await?;
    ensure!(
        fix["replace"] == json!(mine.stanza_id),
        "replace points at the original: {fix}"
    );
    a.shutdown().await;
    peer.quit().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_messages_are_caught_up_from_the_archive_once() -> Result<()> {
    // MAM only: offline storage off, so the archive is the only way to get them.
    let server = support::fresh_server_with(ProsodyOptions {
        offline_delivery: false,
        ..ProsodyOptions::default()
    })?;
    let (alice, bob) = (server.account("alice")?, server.account("bob")?);
    let mut a = Node::new(&server, &alice).await?; // added, never connected yet
    let mut peer = server.peer(&bob).await?;
    for i in 0..5 {
        peer.send_message(&alice.jid, &format!("while you were away {i}"))
            .await?;
    }
    peer.sync().await?;

    a.client.connect(&alice.jid).await?;
    let fetched = a
        .wait_for("sync done", |e| match e {
            Event::SyncDone { fetched, .. } => Some(*fetched),
            _ => None,
        })
        .await?;
    ensure!(fetched >= 5, "fetched {fetched}");
    let h = a.history(&bob.jid)?;
    let bodies: Vec<&str> = h.iter().map(|m| m.body.as_str()).collect();
    ensure!(
        bodies
            == (0..5)
                .map(|i| format!("while you were away {i}"))
                .collect::<Vec<_>>(),
        "in order, once: {bodies:?}"
    );

    // Reconnect (a fresh session): catch-up runs again from our position, stores nothing twice.
    a.client.disconnect(&alice.jid).await;
    peer.send_message(&alice.jid, "one more").await?;
    peer.sync().await?;
    a.client.connect(&alice.jid).await?;
    a.wait_for("second sync", |e| {
        matches!(e, Event::SyncDone { .. }).then_some(())
    })
    .await?;
    let h = a.history(&bob.jid)?;
    ensure!(h.len() == 6, "six messages, no duplicates: {h:?}");
    ensure!(
        h.last().map(|m| m.body.as_str()) == Some("one more"),
        "{h:?}"
    );
    a.shutdown().await;
    peer.quit().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carbons_between_two_starling_resources() -> Result<()> {
    let server = support::fresh_server()?;
    let (alice, bob) = (server.account("alice")?, server.account("bob")?);
    let mut laptop = Node::new(&server, &alice).await?;
    let mut phone = Node::new(&server, &alice).await?;
    laptop.online().await?;
    phone.online().await?;
    let mut peer = server.peer(&bob).await?;

    // Incoming to the bare JID reaches both resources (one directly, one as a carbon).
    peer.send_message(&alice.jid, "to both of you").await?;
    laptop.wait_message("to both of you").await?;
    phone.wait_message("to both of you").await?;

    // Sent from the laptop: the phone sees it as our own outgoing message.
    laptop.send(&bob.jid, "sent from the laptop").await?;
    let seen = phone.wait_message("sent from the laptop").await?;
    ensure!(
        seen.outgoing && seen.peer == bob.jid,
        "carbon of our own message: {seen:?}"
    );
    peer.next_event_matching(|e| e["body"] == "sent from the laptop", EVENT_TIMEOUT)
        .await?;
    ensure!(
        phone.history(&bob.jid)?.len() == 2,
        "phone has both messages once"
    );
    laptop.shutdown().await;
    phone.shutdown().await;
    peer.quit().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roster_and_subscriptions() -> Result<()> {
    let server = support::fresh_server()?;
    let (alice, bob) = (server.account("alice")?, server.account("bob")?);
    let mut a = Node::new(&server, &alice).await?;
    a.online().await?;
    let mut peer = server.peer(&bob).await?;

    // Alice adds Bob; Bob sees the request and approves.
    a.client
        .add_contact(
            &alice.jid,
            &bob.jid,
            Some("Bob".into()),
            vec!["Friends".into()],
        )
        .await?;
    peer.next_event_matching(
        |e| event_name(e) == "subscribe" && e["from"] == json!(alice.jid),
        EVENT_TIMEOUT,
    )
    .await?;
    peer.command(json!({"cmd": "approve", "jid": alice.jid}))
        .await?;
    a.wait_for("subscription to bob", |e| match e {
        Event::RosterItem { contact, .. }
            if contact.jid == bob.jid
                && contact.subscription == starling_core::store::Subscription::To =>
        {
            Some(())
        }
        _ => None,
    })
    .await?;

    // Bob asks back; Alice sees the request and approves it.
    peer.command(json!({"cmd": "roster_add", "jid": alice.jid}))
        .await?;
    a.wait_for("subscription request", |e| match e {
        Event::SubscriptionRequest { from, .. } if *from == bob.jid => Some(()),
        _ => None,
    })
    .await?;
    ensure!(a.client.subscription_requests(&alice.jid)? == vec![bob.jid.clone()]);
    a.client.approve_subscription(&alice.jid, &bob.jid).await?;
    a.wait_for("mutual subscription", |e| match e {
        Event::RosterItem { contact, .. }
            if contact.jid == bob.jid
                && contact.subscription == starling_core::store::Subscription::Both =>
        {
            Some(())
        }
        _ => None,
    })
    .await?;
    ensure!(a.client.subscription_requests(&alice.jid)?.is_empty());
    let contacts = a.client.contacts(&alice.jid)?;
    ensure!(
        contacts.len() == 1 && contacts[0].name.as_deref() == Some("Bob"),
        "{contacts:?}"
    );
    ensure!(
        contacts[0].groups == vec!["Friends".to_owned()],
        "{contacts:?}"
    );

    // Presence of the now-subscribed contact is tracked per resource.
    peer.command(json!({"cmd": "presence", "show": "away", "status": "lunch"}))
        .await?;
    a.wait_for("bob's presence", |e| match e {
        Event::Presence {
            from,
            available: true,
            ..
        } if from.starts_with(&bob.jid) => Some(()),
        _ => None,
    })
    .await?;
    let online = a.client.presences(&alice.jid).await?;
    ensure!(
        online.iter().any(|p| p.jid.starts_with(&bob.jid)),
        "{online:?}"
    );

    // Our own presence reaches the subscribed contact.
    a.client
        .set_presence(
            &alice.jid,
            starling_core::OwnPresence {
                show: starling_core::Availability::Away,
                status: Some("in a meeting".into()),
            },
        )
        .await?;
    let p = peer
        .next_event_matching(
            |e| event_name(e) == "presence" && e["status"] == "in a meeting",
            EVENT_TIMEOUT,
        )
        .await?;
    ensure!(p["show"] == "away", "{p}");

    // Rename, then remove.
    a.client
        .rename_contact(&alice.jid, &bob.jid, "Robert".into())
        .await?;
    a.wait_for("rename", |e| match e {
        Event::RosterItem { contact, .. } if contact.name.as_deref() == Some("Robert") => Some(()),
        _ => None,
    })
    .await?;
    a.client.remove_contact(&alice.jid, &bob.jid).await?;
    a.wait_for("removal", |e| match e {
        Event::RosterItem {
            removed: true,
            contact,
            ..
        } if contact.jid == bob.jid => Some(()),
        _ => None,
    })
    .await?;
    ensure!(a.client.contacts(&alice.jid)?.is_empty());
    a.shutdown().await;
    peer.quit().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeline_and_roster_are_snapshot_plus_diffs() -> Result<()> {
    use futures::StreamExt;
    use starling_core::{MessageState, RosterDiff, TimelineDiff};
    let server = support::fresh_server()?;
    let (alice, bob) = (server.account("alice")?, server.account("bob")?);
    let mut a = Node::new(&server, &alice).await?;
    a.online().await?;
    let mut peer = server.peer(&bob).await?;
    peer.send_message(&alice.jid, "already here").await?;
    a.wait_message("already here").await?;

    let (snapshot, diffs) = a.client.timeline(&alice.jid, &bob.jid, 50)?;
    ensure!(
        snapshot.len() == 1 && snapshot[0].body == "already here",
        "{snapshot:?}"
    );
    let mut diffs = Box::pin(diffs);
    let sent = a.send(&bob.jid, "new one").await?;
    let next = |d: Option<TimelineDiff>| d.ok_or_else(|| anyhow::anyhow!("diff stream ended"));
    let first = next(tokio::time::timeout(EVENT_TIMEOUT, diffs.next()).await?)?;
    ensure!(
        matches!(&first, TimelineDiff::Push { message } if message.id == sent.id),
        "local echo is pushed: {first:?}"
    );
    // Then the same item is updated in place as it is acknowledged and delivered.
    loop {
        match next(tokio::time::timeout(EVENT_TIMEOUT, diffs.next()).await?)? {
            TimelineDiff::Set { message } if message.id == sent.id => {
                if message.state >= MessageState::Delivered {
                    break;
                }
            }
            other => anyhow::bail!("unexpected diff {other:?}"),
        }
    }

    let (contacts, roster_diffs) = a.client.roster(&alice.jid)?;
    ensure!(contacts.is_empty());
    let mut roster_diffs = Box::pin(roster_diffs);
    a.client
        .add_contact(&alice.jid, &bob.jid, None, vec![])
        .await?;
    let d = tokio::time::timeout(EVENT_TIMEOUT, roster_diffs.next())
        .await?
        .ok_or_else(|| anyhow::anyhow!("roster diff stream ended"))?;
    ensure!(
        matches!(&d, RosterDiff::Upsert { contact } if contact.jid == bob.jid),
        "{d:?}"
    );
    a.shutdown().await;
    peer.quit().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounced_message_is_failed_then_retried() -> Result<()> {
    use starling_core::MessageState;
    let server = support::fresh_server()?;
    let alice = server.account("alice")?;
    let mut a = Node::new(&server, &alice).await?;
    a.online().await?;
    // Nobody has this address yet: the server bounces the message.
    let later = support::unique_name("later");
    let later_jid = server.jid(&later);
    let sent = a.send(&later_jid, "are you there?").await?;
    let failed = a.wait_state(sent.id, MessageState::Failed).await?;
    ensure!(failed.error.is_some(), "the reason is kept: {failed:?}");

    // The account appears; retrying sends the same message (same id) again.
    let password = format!("pw-{later}");
    server.register(&later, &password)?;
    let account = support::Account {
        user: later.clone(),
        jid: later_jid.clone(),
        password,
    };
    let mut peer = server.peer(&account).await?;
    let again = a.client.retry_message(&alice.jid, sent.id).await?;
    ensure!(again.state == MessageState::Pending, "{again:?}");
    let got = peer
        .next_event_matching(|e| event_name(e) == "message", EVENT_TIMEOUT)
        .await?;
    ensure!(
        got["body"] == "are you there?" && got["id"] == json!(sent.stanza_id),
        "{got}"
    );
    a.wait_state(sent.id, MessageState::Sent).await?;
    ensure!(
        a.client.retry_message(&alice.jid, sent.id).await.is_err(),
        "only failed messages can be retried"
    );
    a.shutdown().await;
    peer.quit().await?;
    Ok(())
}
