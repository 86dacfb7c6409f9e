//! Life on a phone (issue 9), against Prosody: XEP-0352 client state indication.

use anyhow::{Context as _, Result, ensure};

use crate::node::Node;
use crate::support;

/// The CSI state Prosody holds for the account's sessions ("active", "inactive", …).
fn server_client_state(server: &support::TestServer, user: &str) -> Result<String> {
    let out = server.shell(&format!(
        "local t = {{}}; for _, s in pairs(prosody.full_sessions) do \
         if s.username == \"{user}\" then t[#t + 1] = \"csi=\" .. tostring(s.state) end end; \
         return table.concat(t, \" \")"
    ))?;
    Ok(out)
}

/// Waits (bounded) until Prosody reports `want` for the account.
async fn server_sees(server: &support::TestServer, user: &str, want: &str) -> Result<()> {
    let deadline = std::time::Instant::now() + support::EVENT_TIMEOUT;
    loop {
        let out = server_client_state(server, user)?;
        if out.contains(&format!("csi={want}")) {
            return Ok(());
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "the server never saw {want}: {out}"
        );
        // Each probe is a prosodyctl run (tens of ms); the state arrives over the stream.
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_hears_when_the_app_goes_to_the_background() -> Result<()> {
    let server = support::fresh_server()?;
    let alice = server.account("alice")?;
    let mut a = Node::new(&server, &alice).await?;
    a.online().await?;
    ensure!(a.client.client_active());
    // A fresh stream starts active: nothing needs saying (Prosody has no state yet).
    server_sees(&server, &alice.user, "nil").await?;

    a.client.set_client_active(false).await;
    server_sees(&server, &alice.user, "inactive").await?;
    a.client.set_client_active(true).await;
    server_sees(&server, &alice.user, "active").await?;

    // In the background when a new stream starts: the server hears it on that stream.
    a.client.set_client_active(false).await;
    server_sees(&server, &alice.user, "inactive").await?;
    a.client.disconnect(&alice.jid).await;
    a.client.connect(&alice.jid).await?;
    a.wait_online().await?;
    server_sees(&server, &alice.user, "inactive").await?;
    a.shutdown().await;
    Ok(())
}

/// The account's XEP-0357 registrations as Prosody's mod_cloud_notify stores them
/// ("service<node" keys).
fn server_push_services(server: &support::TestServer, user: &str) -> Result<String> {
    server.shell(&format!(
        "local t = {{}}; local s = require\"core.storagemanager\".open(\"localhost\", \
         \"cloud_notify\"):get(\"{user}\") or {{}}; for k in pairs(s) do t[#t + 1] = \
         \"push=\" .. k end; return table.concat(t, \" \")"
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_is_enabled_kept_and_disabled() -> Result<()> {
    let server = support::fresh_server()?;
    let alice = server.account("alice")?;
    let mut a = Node::new(&server, &alice).await?;
    a.online().await?;
    let rec = a
        .client
        .enable_push_node(&alice.jid, "push.localhost", "node-1", "s3cret")
        .await?;
    ensure!(rec.node == "node-1", "{rec:?}");
    let out = server_push_services(&server, &alice.user)?;
    ensure!(out.contains("push=push.localhost<node-1"), "{out}");
    ensure!(
        a.client.push_registration(&alice.jid)? == Some(rec),
        "kept in the profile"
    );
    ensure!(a.client.disable_push(&alice.jid).await?, "it was on");
    let out = server_push_services(&server, &alice.user)?;
    ensure!(!out.contains("push="), "{out}");
    ensure!(a.client.push_registration(&alice.jid)?.is_none());
    ensure!(!a.client.disable_push(&alice.jid).await?, "already off");
    a.shutdown().await;
    Ok(())
}

/// The account's sessions on the server.
fn sessions(server: &support::TestServer, user: &str) -> Result<usize> {
    let out = server.shell(&format!(
        "local n = 0; for _, s in pairs(prosody.full_sessions) do \
         if s.username == \"{user}\" then n = n + 1 end end; return \"sessions=\" .. n"
    ))?;
    out.split("sessions=")
        .nth(1)
        .and_then(|n| n.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("no session count in {out:?}"))
}

/// The wake API the push receiver calls: the message Bob sent while Alice's app slept is
/// stored by one call; a burst of calls makes one connection and stores nothing twice; an
/// awake account returns at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wake_catches_up_once_whatever_the_burst() -> Result<()> {
    let server = support::fresh_server()?;
    let (alice, bob) = (server.account("alice")?, server.account("bob")?);
    let mut bob_peer = server.peer(&bob).await?;
    let mut a = Node::new(&server, &alice).await?;
    a.online().await?;

    // The app sleeps; Bob writes; the push receiver calls wake.
    a.client.disconnect(&alice.jid).await;
    let sent_at = std::time::Instant::now();
    bob_peer.send_message(&alice.jid, "are you awake?").await?;
    let report = a.client.wake(&alice.jid, support::EVENT_TIMEOUT).await?;
    let latency = sent_at.elapsed();
    ensure!(report.connected && report.stored >= 1, "{report:?}");
    let got = a.history(&bob.jid)?;
    ensure!(
        got.iter().filter(|m| m.body == "are you awake?").count() == 1,
        "{got:?}"
    );
    println!(
        "wake: message sent to stored in {} ms (wake itself {} ms)",
        latency.as_millis(),
        report.took_ms
    );

    // A burst of wakes (a push storm, network changes): one connection, nothing twice.
    a.client.disconnect(&alice.jid).await;
    bob_peer.send_message(&alice.jid, "second").await?;
    let burst = (0..100).map(|_| {
        let (c, j) = (a.client.clone(), alice.jid.clone());
        tokio::spawn(async move { c.wake(&j, support::EVENT_TIMEOUT).await })
    });
    let mut connected = 0;
    for w in futures::future::join_all(burst).await {
        if w??.connected {
            connected += 1;
        }
    }
    ensure!(connected == 1, "exactly one of them connected: {connected}");
    ensure!(sessions(&server, &alice.user)? == 1, "one connection");
    let got = a.history(&bob.jid)?;
    ensure!(
        got.iter().filter(|m| m.body == "second").count() == 1,
        "{got:?}"
    );
    // Awake already: a wake returns at once, connecting nothing.
    let again = a.client.wake(&alice.jid, support::EVENT_TIMEOUT).await?;
    ensure!(!again.connected && again.stored == 0, "{again:?}");
    a.shutdown().await;
    bob_peer.quit().await?;
    Ok(())
}
