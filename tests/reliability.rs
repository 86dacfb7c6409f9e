//! Nothing is lost, nothing is doubled: flaky connections and killed processes.

use std::process::Stdio;

use anyhow::{Context, Result, ensure};
use serde_json::Value;
use starling_core::connection::TlsMode;
use starling_core::{Event, MessageState};
use tokio::io::AsyncBufReadExt;

use crate::cli::Cli;
use crate::node::{Node, options_via};
use crate::proxy::CuttingProxy;
use crate::support::{self, EVENT_TIMEOUT, Peer};

/// Collects the peer's incoming message bodies up to (excluding) `sentinel`.
pub async fn bodies_until(peer: &mut Peer, sentinel: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    loop {
        let e = peer.next_event("message", EVENT_TIMEOUT).await?;
        let body = e["body"].as_str().unwrap_or_default().to_owned();
        if body == sentinel {
            return Ok(out);
        }
        out.push(body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_messages_through_a_cutting_proxy_arrive_once_in_order() -> Result<()> {
    let server = support::fresh_server()?;
    let (alice, bob) = (server.account("alice")?, server.account("bob")?);
    let mut peer = server.peer(&bob).await?;
    // Each connection may carry ~12 KB from the client: a login (~3-4 KB) plus some messages.
    let proxy = CuttingProxy::start(server.c2s_port(), 12_000).await?;
    let opts = options_via(&server, proxy.port, TlsMode::StartTls);
    let mut a = Node::with_options(&alice, opts).await?;
    a.online().await?;

    let mut ids = Vec::new();
    for i in 0..100 {
        ids.push(a.send(&bob.jid, &format!("msg {i:03}")).await?.id);
    }
    // Every message must end up acknowledged by the server.
    let mut pending: std::collections::HashSet<i64> = ids.iter().copied().collect();
    while !pending.is_empty() {
        let id = a
            .wait_for("acks", |e| match e {
                Event::MessageUpdated { message, .. } if message.state >= MessageState::Sent => {
                    Some(message.id)
                }
                _ => None,
            })
            .await
            .with_context(|| format!("{} messages never acknowledged", pending.len()))?;
        pending.remove(&id);
    }
    proxy.stop_cutting();
    ensure!(
        proxy.cuts() >= 3,
        "the proxy cut the connection only {} times",
        proxy.cuts()
    );

    let sentinel = a.send(&bob.jid, "sentinel").await?;
    let got = bodies_until(&mut peer, "sentinel").await?;
    a.wait_state(sentinel.id, MessageState::Sent).await?;
    let want: Vec<String> = (0..100).map(|i| format!("msg {i:03}")).collect();
    ensure!(got == want, "peer got {} messages: {got:?}", got.len());
    for m in a.history(&bob.jid)? {
        ensure!(m.state >= MessageState::Sent, "not marked sent: {m:?}");
    }
    ensure!(
        a.client
            .store()
            .outbox(a.client.store().account(&alice.jid)?.id)?
            .is_empty()
    );
    a.shutdown().await;
    peer.quit().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_survives_sigkill_right_after_send_and_is_delivered_once() -> Result<()> {
    let server = support::fresh_server()?;
    let (alice, bob) = (server.account("alice")?, server.account("bob")?);
    let mut peer = server.peer(&bob).await?;
    let cli = Cli::new(&server)?;
    cli.add_account(&alice).await?;

    // `send` prints the queued line once the message is committed; kill it right then.
    let mut child = cli
        .command(&["--json", "send", &bob.jid, "survives a kill"])
        .env("STARLING_PASSWORD", &alice.password)
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let first = tokio::io::BufReader::new(stdout)
        .lines()
        .next_line()
        .await?
        .context("send printed nothing")?;
    child.kill().await?; // SIGKILL
    let queued: Value = serde_json::from_str(&first)?;
    ensure!(queued["queued"].is_number(), "{first}");

    let status = cli.json(&["status"]).await?;
    ensure!(
        status[0]["queued"] == 1,
        "still queued after the kill: {status}"
    );

    // Next start delivers it.
    cli.run(&["sync"]).await?;
    let status = cli.json(&["status"]).await?;
    ensure!(
        status[0]["queued"] == 0,
        "outbox empty after sync: {status}"
    );
    cli.run(&["send", &bob.jid, "sentinel"]).await?;
    let got = bodies_until(&mut peer, "sentinel").await?;
    ensure!(
        got == vec!["survives a kill".to_owned()],
        "exactly once: {got:?}"
    );
    let history = cli.json(&["history", &bob.jid]).await?;
    ensure!(history.as_array().map(Vec::len) == Some(2), "{history}");
    ensure!(history[0]["state"] != "pending", "{history}");
    peer.quit().await?;
    Ok(())
}
