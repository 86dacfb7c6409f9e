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

/// Probes until `probe` gives `Ok(None)` (bounded by the event timeout); fails with the
/// last `Some(why)`. For state observed from outside (the server's shell, the gateway's
/// database, the proxy), which sends no event to wait for.
async fn eventually(mut probe: impl FnMut() -> Result<Option<String>>) -> Result<()> {
    let deadline = std::time::Instant::now() + support::EVENT_TIMEOUT;
    loop {
        let Some(why) = probe()? else {
            return Ok(());
        };
        ensure!(std::time::Instant::now() < deadline, "{why}");
        // A probe is a prosodyctl run or a file read; what it waits for arrives meanwhile.
        tokio::task::yield_now().await;
    }
}

/// Waits (bounded) until Prosody reports `want` for the account.
async fn server_sees(server: &support::TestServer, user: &str, want: &str) -> Result<()> {
    eventually(|| {
        let out = server_client_state(server, user)?;
        Ok((!out.contains(&format!("csi={want}")))
            .then(|| format!("the server never saw {want}: {out}")))
    })
    .await
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

/// Whether Prosody holds back stanzas for the account right now (mod_csi_simple): the
/// session is inactive — not flushing — and has counted something since it last flushed.
/// (The counter also counts while flushing, and is reset only when the session goes back
/// to inactive, so both together mean "held, never sent".)
fn server_holds(server: &support::TestServer, user: &str) -> Result<bool> {
    let held = session_sum(
        server,
        user,
        "((s.state == \"inactive\" and (s.csi_counter or 0) > 0) and 1 or 0)",
    )?;
    Ok(held > 0)
}

/// The sum of a Lua expression over the account's sessions on the server (`s` is one).
fn session_sum(server: &support::TestServer, user: &str, expr: &str) -> Result<u64> {
    let out = server.shell(&format!(
        "local n = 0; for _, s in pairs(prosody.full_sessions) do \
         if s.username == \"{user}\" then n = n + {expr} end end; return \"sum=\" .. n"
    ))?;
    out.split("sum=")
        .nth(1)
        .and_then(|n| n.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("no sum in {out:?}"))
}

/// What client state indication is for: in the background the server holds back what is
/// not urgent (a typing notification here) — it does not reach the app — and sends it along
/// with the next thing that is (a message).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_background_the_server_holds_back_chatter_not_messages() -> Result<()> {
    let server = support::fresh_server()?;
    let (alice, bob) = (server.account("alice")?, server.account("bob")?);
    let mut bob_peer = server.peer(&bob).await?;
    let mut a = Node::new(&server, &alice).await?;
    a.online().await?;
    a.client.set_client_active(false).await;

    // Bob types. Any bytes from the client (an ack, a ping) make Prosody flush and stay
    // awake for 5 s, so a notification that arrives then is sent at once: such an attempt
    // is repeated once the session is inactive again.
    let mut attempts = 0;
    loop {
        attempts += 1;
        server_sees(&server, &alice.user, "inactive").await?;
        bob_peer
            .command(serde_json::json!({"cmd": "chatstate", "to": alice.jid, "state": "composing"}))
            .await?;
        let mut arrived = Vec::new();
        let mut held = false;
        eventually(|| {
            // What arrived first, then the server: held now means never sent before.
            arrived.extend(a.arrived());
            if arrived
                .iter()
                .any(|e| matches!(e, starling_core::Event::ChatState { .. }))
            {
                return Ok(None);
            }
            held = server_holds(&server, &alice.user)?;
            Ok((!held).then(|| "the server neither held nor sent it".to_owned()))
        })
        .await?;
        if held {
            break;
        }
        ensure!(
            attempts < 3,
            "the typing notification came through every time: {arrived:?}"
        );
    }
    // A message is urgent: it comes at once, and what was held comes with it.
    bob_peer.send_message(&alice.jid, "still there?").await?;
    let mut typing = false;
    a.wait_for("the message", |e| match e {
        starling_core::Event::ChatState { from, state, .. } if from.contains(&bob.user) => {
            typing |= state == "composing";
            None
        }
        starling_core::Event::Message { message, .. } if message.body == "still there?" => Some(()),
        _ => None,
    })
    .await?;
    ensure!(typing, "the held typing notification came with the message");
    a.shutdown().await;
    bob_peer.quit().await?;
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

/// A running `starling push-gateway` child process, killed on drop.
struct Gateway {
    _child: tokio::process::Child,
}

impl Gateway {
    /// Starts the gateway against the test server's component port and waits for its
    /// "ready" line.
    async fn start(server: &support::TestServer, db: &std::path::Path) -> Result<Gateway> {
        use tokio::io::AsyncBufReadExt as _;
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_starling"))
            .arg("push-gateway")
            .args(["--jid", starling::testbed::PUSH_DOMAIN])
            .arg("--server")
            .arg(format!("127.0.0.1:{}", server.ports().component))
            .arg("--database")
            .arg(db)
            .arg("--ca-file")
            .arg(server.ca_file())
            .args(["--min-interval-ms", "0"])
            .env(
                "STARLING_COMPONENT_SECRET",
                starling::testbed::PUSH_COMPONENT_SECRET,
            )
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().context("gateway stdout")?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(support::EVENT_TIMEOUT, lines.next_line()).await;
        match ready {
            Ok(Ok(Some(line))) if line.contains("ready") => Ok(Gateway { _child: child }),
            // Its error is on stderr, which the test shows.
            other => anyhow::bail!("the push gateway did not start: {other:?}"),
        }
    }
}

/// The conversation with `peer` holds exactly one message with this body.
fn stored_once(node: &Node, peer: &str, body: &str) -> Result<()> {
    let got = node.history(peer)?;
    ensure!(
        got.iter().filter(|m| m.body == body).count() == 1,
        "not stored exactly once: {body:?} in {got:?}"
    );
    Ok(())
}

/// The account's sessions on the server.
fn sessions(server: &support::TestServer, user: &str) -> Result<u64> {
    session_sum(server, user, "1")
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
    stored_once(&a, &bob.jid, "are you awake?")?;
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
    stored_once(&a, &bob.jid, "second")?;
    // Awake already: a wake returns at once, connecting nothing.
    let again = a.client.wake(&alice.jid, support::EVENT_TIMEOUT).await?;
    ensure!(!again.connected && again.stored == 0, "{again:?}");
    a.shutdown().await;
    bob_peer.quit().await?;
    Ok(())
}

/// Host end to end: Prosody (mod_cloud_notify) → `starling push-gateway` → a stand-in
/// UnifiedPush distributor → the core's wake API → the message Bob sent while Alice's app
/// slept is stored. The wakeup carries nothing of the message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_wakes_a_sleeping_client() -> Result<()> {
    use crate::support::https::{Act, scripted_server};
    let server = support::fresh_server()?;
    let (alice, bob) = (server.account("alice")?, server.account("bob")?);
    let dir = tempfile::tempdir()?;
    let gateway_db = dir.path().join("gateway.sqlite");
    let _gateway = Gateway::start(&server, &gateway_db).await?;
    let (port, mut wakeups) =
        scripted_server(&server, vec![Act::Status(201), Act::Status(410)]).await?;
    let endpoint = format!("https://localhost:{port}/up/alice-phone");
    let mut bob_peer = server.peer(&bob).await?;

    let mut a = Node::new(&server, &alice).await?;
    a.online().await?;
    let rec = a
        .client
        .enable_push(&alice.jid, starling::testbed::PUSH_DOMAIN, &endpoint)
        .await?;
    ensure!(
        rec.service == starling::testbed::PUSH_DOMAIN && rec.node.len() == 32,
        "{rec:?}"
    );

    // The app sleeps; Bob writes.
    a.client.disconnect(&alice.jid).await;
    let sent_at = std::time::Instant::now();
    bob_peer.send_message(&alice.jid, "are you awake?").await?;
    let (head, body) = tokio::time::timeout(support::EVENT_TIMEOUT, wakeups.recv())
        .await?
        .context("no wakeup reached the distributor")?;
    ensure!(head.starts_with("POST /up/alice-phone "), "{head}");
    ensure!(
        body == starling::push_gateway::WAKEUP_BODY,
        "the wakeup carries only the fixed bytes: {}",
        String::from_utf8_lossy(&body)
    );
    let everything = format!("{head}{}", String::from_utf8_lossy(&body));
    ensure!(
        !everything.contains("awake") && !everything.contains(&bob.user),
        "no message content or sender leaves the gateway: {everything}"
    );

    // Someone else who learned the node (not its secret) cannot make the gateway wake the
    // phone: the gateway refuses, and nothing reaches the distributor.
    let forged = format!(
        "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='{}'/>\
         <publish-options><x xmlns='jabber:x:data' type='submit'>\
         <field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>\
         <field var='secret'><value>guessed</value></field></x></publish-options></pubsub>",
        rec.node
    );
    let answer = bob_peer
        .command(serde_json::json!({
            "cmd": "iq", "to": starling::testbed::PUSH_DOMAIN, "xml": forged
        }))
        .await?;
    ensure!(
        answer["result"] == "error" && answer["condition"] == "not-authorized",
        "{answer}"
    );
    ensure!(
        wakeups.try_recv().is_err(),
        "a forged publish woke the phone"
    );

    // The push receiver calls wake: one call connects, catches up, and reports.
    let report = a.client.wake(&alice.jid, support::EVENT_TIMEOUT).await?;
    let latency = sent_at.elapsed();
    ensure!(report.connected, "{report:?}");
    stored_once(&a, &bob.jid, "are you awake?")?;
    println!(
        "push: message sent to stored in {} ms (wake itself {} ms)",
        latency.as_millis(),
        report.took_ms
    );

    // The distributor says the device is gone (410): the gateway forgets it, and tells the
    // server, which stops pushing for it.
    a.client.disconnect(&alice.jid).await;
    bob_peer.send_message(&alice.jid, "anyone there?").await?;
    tokio::time::timeout(support::EVENT_TIMEOUT, wakeups.recv())
        .await?
        .context("no second wakeup")?;
    gateway_keeps(&gateway_db, 0).await?;
    a.shutdown().await;
    bob_peer.quit().await?;
    Ok(())
}

/// Hibernation is the offline signal: the app's connection dies without a goodbye (the
/// phone slept), the server keeps the session and pushes; wake resumes that same session
/// and the message the server held is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hibernated_session_is_pushed_and_resumed() -> Result<()> {
    use crate::proxy::CuttingProxy;
    use crate::support::https::{Act, scripted_server};
    let server = support::fresh_server()?;
    let (alice, bob) = (server.account("alice")?, server.account("bob")?);
    let dir = tempfile::tempdir()?;
    let _gateway = Gateway::start(&server, &dir.path().join("gateway.sqlite")).await?;
    let (port, mut wakeups) = scripted_server(&server, vec![Act::Status(201)]).await?;
    let mut bob_peer = server.peer(&bob).await?;
    let proxy = CuttingProxy::start(server.c2s_port(), 0).await?;
    let opts = crate::node::options_via(
        &server,
        proxy.port,
        starling_core::connection::TlsMode::StartTls,
    );
    let mut a = Node::with_options(&alice, opts).await?;
    a.online().await?;
    a.client
        .enable_push(
            &alice.jid,
            starling::testbed::PUSH_DOMAIN,
            &format!("https://localhost:{port}/up/alice"),
        )
        .await?;

    // The phone sleeps: the connection dies at the next byte and cannot come back.
    proxy.cut_after(1);
    a.client.set_client_active(false).await;
    eventually(|| Ok((proxy.cuts() == 0).then(|| "the connection was never cut".to_owned())))
        .await?;
    bob_peer.send_message(&alice.jid, "while you slept").await?;
    let (_, body) = tokio::time::timeout(support::EVENT_TIMEOUT, wakeups.recv())
        .await?
        .context("the hibernated session was not pushed")?;
    ensure!(body == starling::push_gateway::WAKEUP_BODY);
    ensure!(
        a.history(&bob.jid)?
            .iter()
            .all(|m| m.body != "while you slept"),
        "not stored yet: the app was asleep"
    );

    // Woken: the network is back; the same session resumes and the held message is stored.
    proxy.stop_cutting();
    let report = a.client.wake(&alice.jid, support::EVENT_TIMEOUT).await?;
    ensure!(
        !report.connected,
        "the running connection resumed: {report:?}"
    );
    stored_once(&a, &bob.jid, "while you slept")?;
    ensure!(sessions(&server, &alice.user)? == 1, "one session, resumed");
    a.shutdown().await;
    bob_peer.quit().await?;
    Ok(())
}

/// The number of registrations the gateway keeps, once it settles on `want` (bounded).
async fn gateway_keeps(db: &std::path::Path, want: i64) -> Result<()> {
    eventually(|| {
        let n = starling::push_gateway::Registrations::open(db)?.count()?;
        Ok((n != want).then(|| format!("the gateway keeps {n} registrations, not {want}")))
    })
    .await
}

/// The UnifiedPush connector's logic, as the Android push receiver drives it: a new
/// endpoint finds the server's gateway by service discovery and enables push; the same
/// endpoint again registers nothing new; a changed endpoint replaces the registration
/// (the old node stops waking anything); a push message wakes the sleeping account and
/// stores what Bob sent; an unregistration turns push off everywhere. Nonsense from a
/// distributor is refused and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unified_push_connector_drives_push() -> Result<()> {
    use crate::support::https::{Act, scripted_server};
    use starling_core::{UnifiedPushEvent as Up, UnifiedPushOutcome as Outcome};
    let server = support::fresh_server()?;
    let (alice, bob) = (server.account("alice")?, server.account("bob")?);
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("gateway.sqlite");
    let _gateway = Gateway::start(&server, &db).await?;
    let (port, mut wakeups) = scripted_server(&server, vec![Act::Status(201)]).await?;
    let mut bob_peer = server.peer(&bob).await?;
    let a = Node::new(&server, &alice).await?;
    let t = support::EVENT_TIMEOUT;

    // The distributor's first callback may come while the app is not even connected.
    let first = format!("https://localhost:{port}/up/first");
    let enabled = a
        .client
        .on_unified_push(&alice.jid, Up::NewEndpoint(first.clone()), t)
        .await?;
    let Outcome::Enabled { gateway, node } = enabled else {
        anyhow::bail!("not enabled: {enabled:?}");
    };
    ensure!(gateway == starling::testbed::PUSH_DOMAIN, "found {gateway}");
    ensure!(
        server_push_services(&server, &alice.user)?.contains(&format!("<{node}")),
        "enabled on the server"
    );
    gateway_keeps(&db, 1).await?;

    // Every app start repeats the endpoint: same node, nothing new at the gateway.
    let again = a
        .client
        .on_unified_push(&alice.jid, Up::NewEndpoint(first), t)
        .await?;
    ensure!(
        again
            == Outcome::Enabled {
                gateway: gateway.clone(),
                node: node.clone()
            },
        "{again:?}"
    );
    gateway_keeps(&db, 1).await?;

    // Refused, and nothing changes.
    let bad = a
        .client
        .on_unified_push(&alice.jid, Up::NewEndpoint("content://nope".into()), t)
        .await;
    ensure!(bad.is_err(), "{bad:?}");
    let failed = a
        .client
        .on_unified_push(&alice.jid, Up::RegistrationFailed("NETWORK".into()), t)
        .await;
    ensure!(
        failed
            .as_ref()
            .is_err_and(|e| e.to_string().contains("NETWORK")),
        "{failed:?}"
    );
    ensure!(
        a.client
            .push_registration(&alice.jid)?
            .is_some_and(|r| r.node == node)
    );

    // A new endpoint (the user switched distributors): a new node replaces the old one.
    let second = format!("https://localhost:{port}/up/second");
    let moved = a
        .client
        .on_unified_push(&alice.jid, Up::NewEndpoint(second), t)
        .await?;
    let Outcome::Enabled { node: node2, .. } = moved else {
        anyhow::bail!("not enabled: {moved:?}");
    };
    ensure!(node2 != node, "a new registration");
    let services = server_push_services(&server, &alice.user)?;
    ensure!(
        services.contains(&format!("<{node2}")) && !services.contains(&format!("<{node}")),
        "only the new node is enabled: {services}"
    );
    gateway_keeps(&db, 1).await?;

    // The app sleeps, Bob writes, the push reaches the new endpoint, and the receiver
    // hands it to the connector.
    a.client.disconnect(&alice.jid).await;
    bob_peer
        .send_message(&alice.jid, "pushed through the connector")
        .await?;
    let (head, _) = tokio::time::timeout(t, wakeups.recv())
        .await?
        .context("no wakeup reached the distributor")?;
    ensure!(head.starts_with("POST /up/second "), "{head}");
    let woke = a.client.on_unified_push(&alice.jid, Up::Message, t).await?;
    ensure!(matches!(&woke, Outcome::Woke(r) if r.connected), "{woke:?}");
    stored_once(&a, &bob.jid, "pushed through the connector")?;

    // The distributor drops Starling: push is off on the server, at the gateway and here.
    let off = a
        .client
        .on_unified_push(&alice.jid, Up::Unregistered, t)
        .await?;
    ensure!(off == Outcome::Disabled, "{off:?}");
    ensure!(!server_push_services(&server, &alice.user)?.contains("push="));
    gateway_keeps(&db, 0).await?;
    ensure!(a.client.push_registration(&alice.jid)?.is_none());
    a.shutdown().await;
    bob_peer.quit().await?;
    Ok(())
}

/// Android seals the secrets file with a key its Keystore keeps: the password (and every
/// other secret) is unreadable in the profile, a plain file from before is absorbed, and
/// after a restart with the same key the account logs in; with another key it fails with
/// a clear error, and nothing is overwritten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_sealed_by_a_platform_key_survive_a_restart() -> Result<()> {
    use starling_core::Client;
    use starling_core::secrets::{FileKey, Password};
    let server = support::fresh_server()?;
    let alice = server.account("alice")?;
    let dir = tempfile::tempdir()?;
    let key = FileKey::from_slice(&[42u8; 32]).context("a 32-byte key")?;
    {
        let client = Client::open_sealed(dir.path(), key.clone())?;
        client
            .add_account(
                &alice.jid,
                Password::new(alice.password.clone()),
                crate::node::options(&server),
            )
            .await?;
        // Push registers a secret too.
        client.connect(&alice.jid).await?;
        client.wake(&alice.jid, support::EVENT_TIMEOUT).await?;
        client
            .enable_push_node(&alice.jid, "push.localhost", "node-1", "push-s3cret")
            .await?;
        client.disconnect_all().await;
    }
    let sealed = std::fs::read(dir.path().join("secrets.sealed"))?;
    for secret in [
        alice.password.as_bytes(),
        b"push-s3cret",
        alice.jid.as_bytes(),
    ] {
        ensure!(
            !sealed.windows(secret.len()).any(|w| w == secret),
            "a secret is readable in the sealed file"
        );
    }
    ensure!(!dir.path().join("secrets.json").exists(), "no plain file");

    // The next start, same key: the stored password logs in. (The files are copied: this
    // process still holds the first client's profile lock, as a killed app would not.)
    let restart = copy_profile(dir.path())?;
    let client = Client::open_sealed(restart.path(), key)?;
    let report = client.wake(&alice.jid, support::EVENT_TIMEOUT).await?;
    ensure!(report.connected, "{report:?}");
    client.disconnect_all().await;

    // The Keystore lost its key: a clear error naming the way out; the file stays as it was.
    let other = FileKey::from_slice(&[7u8; 32]).context("a 32-byte key")?;
    let reset = copy_profile(dir.path())?;
    let client = Client::open_sealed(reset.path(), other)?;
    let err = client
        .wake(&alice.jid, support::EVENT_TIMEOUT)
        .await
        .err()
        .context("logged in without its password")?;
    ensure!(err.to_string().contains("add the accounts again"), "{err}");
    ensure!(std::fs::read(reset.path().join("secrets.sealed"))? == sealed);
    Ok(())
}

/// A copy of a profile's files (not its lock), as the next start of the app finds them.
fn copy_profile(dir: &std::path::Path) -> Result<tempfile::TempDir> {
    let copy = tempfile::tempdir()?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() && entry.file_name() != "online.lock" {
            std::fs::copy(entry.path(), copy.path().join(entry.file_name()))?;
        }
    }
    Ok(copy)
}
