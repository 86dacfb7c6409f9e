//! The desktop's end-to-end encryption scenario: the composer's lock, sticky encryption,
//! the encryption keys view with trust decisions, refused sends and undecryptable entries.

use super::*;

/// A client for `account` (a profile of its own), online.
pub(super) async fn online_client(
    rt: &Runtime,
    server: &TestServer,
    account: &support::Account,
) -> Result<(tempfile::TempDir, Client)> {
    let (profile, client) = profile_with(rt, server, account).await?;
    let mut events = client.events();
    let (c, jid) = (client.clone(), account.jid.clone());
    on_rt(rt, async move { Ok(c.connect(&jid).await?) }).await?;
    core_event(rt, &mut events, "online", |e| match e {
        starling_core::Event::Connection {
            state: starling_core::ConnectionState::Online { .. },
            ..
        } => Some(()),
        _ => None,
    })?;
    Ok((profile, client))
}

/// Waits for a core event (blocking the UI thread briefly, like the peer steps).
pub(super) fn core_event<T>(
    rt: &Runtime,
    events: &mut tokio::sync::broadcast::Receiver<starling_core::Event>,
    what: &str,
    mut f: impl FnMut(&starling_core::Event) -> Option<T>,
) -> Result<T> {
    use tokio::sync::broadcast::error::RecvError;
    rt.block_on(async {
        let deadline = tokio::time::Instant::now() + EVENT_TIMEOUT;
        loop {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Err(_) => bail!("timed out waiting for {what}"),
                Ok(Ok(ev)) => {
                    if let Some(v) = f(&ev) {
                        return Ok(v);
                    }
                }
                Ok(Err(RecvError::Lagged(_))) => {}
                Ok(Err(RecvError::Closed)) => bail!("events ended waiting for {what}"),
            }
        }
    })
}

/// Waits for an incoming message with `body` among a client's events.
pub(super) fn core_message(
    rt: &Runtime,
    events: &mut tokio::sync::broadcast::Receiver<starling_core::Event>,
    body: &str,
) -> Result<starling_core::store::MessageRecord> {
    core_event(rt, events, &format!("the message {body:?}"), |e| match e {
        starling_core::Event::Message { message, .. } if message.body == body => {
            Some(message.clone())
        }
        _ => None,
    })
}

pub(super) async fn encryption(rt: Rc<Runtime>, server: Rc<TestServer>) -> Result<()> {
    use slint::Model as _;
    use starling::ui::{ChatAdapter, ConversationsAdapter, KeysAdapter};
    use starling_core::store::Encryption;

    let (rt, server) = (&*rt, &*server);
    let (alice, bob, carol) = (
        server.account("alice")?,
        server.account("bob")?,
        server.account("carol")?,
    );
    server.befriend(&alice.jid, &bob.jid)?;
    // Bob is a second Starling (the core without a window), his keys published.
    let (_bob_profile, bob1) = online_client(rt, server, &bob).await?;
    let mut bob_events = bob1.events();
    {
        let (c, jid) = (bob1.clone(), bob.jid.clone());
        on_rt(rt, async move { Ok(c.omemo_publish(&jid).await?) }).await?;
    }
    let (bob1_id, _) = {
        let (c, jid) = (bob1.clone(), bob.jid.clone());
        on_rt(rt, async move { Ok(c.omemo_own(&jid).await?) }).await?
    };

    // Alice in the window: going online publishes her keys; Bob's client sees them.
    let (_profile, client) = profile_with(rt, server, &alice).await?;
    let app = App::new(client.clone(), rt.handle().clone())?;
    show_online(&app).await?;
    let (alice_id, alice_fpr) = {
        let (c, jid) = (client.clone(), alice.jid.clone());
        on_rt(rt, async move { Ok(c.omemo_own(&jid).await?) }).await?
    };
    // Bob's client reads Alice's devices again each time her server announces her list,
    // until it shows the device her window published.
    loop {
        let (c, b, a) = (bob1.clone(), bob.jid.clone(), alice.jid.clone());
        let devices = on_rt(rt, async move { Ok(c.omemo_devices(&b, &a).await?) }).await?;
        if devices
            .iter()
            .any(|d| d.device == alice_id && d.active && d.fingerprint.is_some())
        {
            break;
        }
        core_event(rt, &mut bob_events, "Alice's device list", |e| match e {
            starling_core::Event::OmemoDevices { jid, .. } if *jid == alice.jid => Some(()),
            _ => None,
        })
        .with_context(|| {
            format!("the window publishes our keys when online; Bob sees {devices:?}")
        })?;
    }

    // The chat with Bob: the lock is off; turning it on is immediate.
    let list = app.window().global::<ConversationsAdapter<'_>>();
    list.invoke_open(alice.jid.clone().into(), bob.jid.clone().into());
    let lock = until("the lock, read", || {
        with_role(&app, AccessibleRole::Button, "Encryption")
            .ok()
            .filter(|l| l.accessible_description().is_some_and(|d| !d.is_empty()))
    })
    .await?;
    anyhow::ensure!(lock.accessible_checked() == Some(false), "off at first");
    lock.invoke_accessible_default_action();
    until("the lock on", || {
        (lock.accessible_checked() == Some(true)).then_some(())
    })
    .await?;
    anyhow::ensure!(
        client.conversation_encryption(&alice.jid, &bob.jid)? == Some(Encryption::Omemo),
        "the core's sticky choice"
    );

    // An encrypted message shows its lock here, and reaches Bob encrypted.
    let input = until("the composer", || field(&app, "Message").ok()).await?;
    input.set_accessible_value("the secret is 42");
    tap(&app, AccessibleRole::Button, "Send").await?;
    shows(&app, "our encrypted bubble", AccessibleRole::Text, |l| {
        l.starts_with("You, ") && l.ends_with(": the secret is 42 (encrypted)")
    })
    .await
    .with_context(|| {
        format!(
            "send error {:?}",
            app.window().global::<ChatAdapter<'_>>().get_send_error()
        )
    })?;
    with_role(&app, AccessibleRole::Image, "Encrypted with OMEMO 2")?;
    let got = core_message(rt, &mut bob_events, "the secret is 42")?;
    anyhow::ensure!(got.encryption == Some(Encryption::Omemo2), "{got:?}");

    // Bob's answer is encrypted too (receiving turned his conversation's encryption on).
    let reply = rt.block_on(bob1.send_message(&bob.jid, &alice.jid, "got it"))?;
    anyhow::ensure!(reply.encryption.is_some(), "{reply:?}");
    shows(&app, "Bob's encrypted bubble", AccessibleRole::Text, |l| {
        l.starts_with("Them, ") && l.ends_with(": got it (encrypted)")
    })
    .await?;

    // Bob adds a second device (another Starling profile).
    let (bob2_id, _bob2_profile) = {
        let (profile, bob2) = online_client(rt, server, &bob).await?;
        let (c, jid) = (bob2.clone(), bob.jid.clone());
        let id = on_rt(rt, async move {
            c.omemo_publish(&jid).await?;
            let (id, _) = c.omemo_own(&jid).await?;
            c.disconnect_all().await;
            Ok(id)
        })
        .await?;
        (id, profile)
    };

    // The keys view: our fingerprint and its QR code; Bob's two devices in both namespaces,
    // used blindly until verified.
    tap(&app, AccessibleRole::Button, "Encryption keys").await?;
    let keys = app.window().global::<KeysAdapter<'_>>();
    let row = |ns: &str, id: u32, trust: &str| format!("{ns} device {id}, {trust}");
    let key_shows = |label: String| {
        let app = &app;
        async move {
            shows(app, &label, AccessibleRole::ListItem, |l| l == label)
                .await
                .with_context(|| {
                    format!(
                        "rows {:?}; status {:?}",
                        find_labels(app, AccessibleRole::ListItem, |l| l.contains(" device ")),
                        app.window().global::<KeysAdapter<'_>>().get_status()
                    )
                })
        }
    };
    key_shows(row("OMEMO 2", bob1_id, "trusted, not verified")).await?;
    key_shows(row("OMEMO 2", bob2_id, "trusted, not verified")).await?;
    until("all four rows", || {
        (!keys.get_loading() && keys.get_devices().row_count() == 4).then_some(())
    })
    .await?;
    let grouped = keys.get_own_fingerprint().to_string();
    anyhow::ensure!(
        grouped.split(' ').count() == 8
            && grouped.split(' ').all(|g| g.len() == 8)
            && grouped.replace(' ', "") == alice_fpr.to_lowercase(),
        "{grouped:?} for {alice_fpr}"
    );
    anyhow::ensure!(
        keys.get_own_uri()
            == format!(
                "xmpp:{}?omemo-sid-{alice_id}={}",
                alice.jid,
                alice_fpr.to_lowercase()
            )
            .as_str(),
        "{}",
        keys.get_own_uri()
    );
    anyhow::ensure!(keys.get_own_qr().size().width > 20, "the QR code");
    with_role(&app, AccessibleRole::Image, "QR code of your key")?;

    // Verifying Bob's first device covers it in both namespaces; his second one is now a
    // new key to decide about; distrusting it sticks.
    tap(
        &app,
        AccessibleRole::Button,
        &format!("Verify OMEMO 2 device {bob1_id}"),
    )
    .await?;
    key_shows(row("OMEMO 2", bob1_id, "verified")).await?;
    key_shows(row("OMEMO", bob1_id, "verified")).await?;
    key_shows(row("OMEMO 2", bob2_id, "new key — decide")).await?;
    tap(
        &app,
        AccessibleRole::Button,
        &format!("Distrust OMEMO 2 device {bob2_id}"),
    )
    .await?;
    key_shows(row("OMEMO 2", bob2_id, "untrusted")).await?;
    tap(&app, AccessibleRole::Button, "Close the keys").await?;
    until("the keys closed", || (!keys.get_open()).then_some(())).await?;

    // A message now goes to the verified device only; the chat says which device was left
    // out, and why.
    input.set_accessible_value("for the verified device");
    tap(&app, AccessibleRole::Button, "Send").await?;
    let notice = shows(
        &app,
        "the skipped-device notice",
        AccessibleRole::Text,
        |l| l.starts_with("Not encrypted for one device"),
    )
    .await?;
    anyhow::ensure!(
        notice.contains(&format!(
            "{} device {bob2_id}: you marked this device untrusted",
            bob.jid
        )),
        "{notice}"
    );
    shows(&app, "its bubble", AccessibleRole::Text, |l| {
        l.ends_with(": for the verified device (encrypted)")
    })
    .await?;
    core_message(rt, &mut bob_events, "for the verified device")?;

    // With no device of Bob's left to encrypt for, nothing is sent: the chat says why and
    // the text is back in the composer.
    tap(&app, AccessibleRole::Button, "Encryption keys").await?;
    tap(
        &app,
        AccessibleRole::Button,
        &format!("Distrust OMEMO 2 device {bob1_id}"),
    )
    .await?;
    key_shows(row("OMEMO 2", bob1_id, "untrusted")).await?;
    tap(&app, AccessibleRole::Button, "Close the keys").await?;
    input.set_accessible_value("nobody can read this");
    tap(&app, AccessibleRole::Button, "Send").await?;
    let refusal = shows(&app, "the refusal in the chat", AccessibleRole::Text, |l| {
        l.starts_with(&format!("Not sent: it cannot be encrypted for {}", bob.jid))
    })
    .await?;
    anyhow::ensure!(
        refusal.contains("you marked this device untrusted"),
        "{refusal}"
    );
    until("the text back in the composer", || {
        (input.accessible_value().as_deref() == Some("nobody can read this")).then_some(())
    })
    .await?;
    anyhow::ensure!(
        !client
            .history(&alice.jid, &bob.jid, 50)?
            .iter()
            .any(|m| m.body == "nobody can read this"),
        "nothing was stored or sent"
    );

    // Turning encryption off asks first; keeping it changes nothing.
    lock.invoke_accessible_default_action();
    shows(&app, "the question", AccessibleRole::Text, |l| {
        l == "Send unencrypted from now on?"
    })
    .await?;
    tap(&app, AccessibleRole::Button, "Keep encrypting").await?;
    until("the question gone", || {
        find_labels(&app, AccessibleRole::Text, |l| {
            l == "Send unencrypted from now on?"
        })
        .is_empty()
        .then_some(())
    })
    .await?;
    anyhow::ensure!(lock.accessible_checked() == Some(true), "still on");
    lock.invoke_accessible_default_action();
    tap(&app, AccessibleRole::Button, "Send unencrypted").await?;
    until("the lock off", || {
        (lock.accessible_checked() == Some(false)).then_some(())
    })
    .await?;
    anyhow::ensure!(
        client
            .conversation_encryption(&alice.jid, &bob.jid)?
            .is_none()
    );
    // Now it goes, unencrypted, and the refusal is gone.
    tap(&app, AccessibleRole::Button, "Send").await?;
    shows(&app, "the plaintext bubble", AccessibleRole::Text, |l| {
        l.starts_with("You, ") && l.ends_with(": nobody can read this")
    })
    .await?;
    until("the refusal gone", || {
        app.window()
            .global::<ChatAdapter<'_>>()
            .get_send_error()
            .is_empty()
            .then_some(())
    })
    .await?;
    let plain = core_message(rt, &mut bob_events, "nobody can read this")?;
    anyhow::ensure!(plain.encryption.is_none(), "{plain:?}");

    // A message that cannot be decrypted stays visible, with the reason.
    let mut carol_peer = rt.block_on(server.peer(&carol))?;
    let bogus = format!(
        "<message xmlns='jabber:client' to='{}' type='chat' id='bogus1'>\
         <encrypted xmlns='urn:xmpp:omemo:2'><header sid='777'>\
         <keys jid='{}'><key rid='12345'>AAAA</key></keys></header>\
         <payload>AAAAAAAAAAAAAAAAAAAAAA==</payload></encrypted>\
         <body>fallback</body></message>",
        alice.jid, alice.jid
    );
    rt.block_on(carol_peer.command(json!({"cmd": "raw", "xml": bogus})))?;
    until("Carol's conversation", || {
        (0..list.get_items().row_count())
            .filter_map(|i| list.get_items().row_data(i))
            .find(|c| c.peer == carol.jid.as_str())
    })
    .await?;
    list.invoke_open(alice.jid.clone().into(), carol.jid.clone().into());
    let unreadable = shows(&app, "the undecryptable entry", AccessibleRole::Text, |l| {
        l.starts_with("Them, ") && l.contains(": Could not decrypt")
    })
    .await?;
    anyhow::ensure!(
        unreadable.contains("did not encrypt this message for this device")
            && !unreadable.contains("fallback"),
        "{unreadable}"
    );

    // Bob's side, in a window: Alice's messages carry their lock, and his lock is on.
    app.window().hide()?;
    drop(app);
    let app = App::new(bob1.clone(), rt.handle().clone())?;
    app.window().show()?;
    let list = app.window().global::<ConversationsAdapter<'_>>();
    until("Alice's conversation", || {
        (list.get_items().row_count() > 0).then_some(())
    })
    .await?;
    list.invoke_open(bob.jid.clone().into(), alice.jid.clone().into());
    shows(
        &app,
        "Alice's encrypted bubble",
        AccessibleRole::Text,
        |l| l.starts_with("Them, ") && l.ends_with(": the secret is 42 (encrypted)"),
    )
    .await?;
    shows(
        &app,
        "Alice's plaintext bubble",
        AccessibleRole::Text,
        |l| l.starts_with("Them, ") && l.ends_with(": nobody can read this"),
    )
    .await?;
    until("Bob's lock on", || {
        with_role(&app, AccessibleRole::Button, "Encryption")
            .ok()
            .filter(|l| l.accessible_checked() == Some(true))
    })
    .await?;

    app.window().hide()?;
    drop(app);
    rt.block_on(carol_peer.quit())?;
    on_rt(rt, async move {
        client.disconnect_all().await;
        bob1.disconnect_all().await;
        Ok(())
    })
    .await
}
