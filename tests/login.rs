//! Login security against Prosody: SASL2 (XEP-0388) with Bind2 (XEP-0386) and
//! SCRAM-SHA-1-PLUS bound to the TLS connection (`tls-exporter`, RFC 9266); the classic
//! RFC 6120 login when the server has no SASL2; and pinning: once an account has logged in
//! with channel binding, a server that stops offering it is refused.
//!
//! Prosody 0.12 with Debian's prosody-modules needs the test bed's compatibility shim for
//! SASL2 and `tls-exporter` (assets/prosody/mod_starling_compat.lua); the SCRAM and
//! channel-binding checks are Prosody's own. A man in the middle caught by channel
//! binding is in `hostile_server.rs`.

use anyhow::{Context, Result, ensure};
use starling::testbed::ProsodyOptions;
use starling_core::{ConnectionInfo, ConnectionState};

use crate::node::Node;
use crate::support;

async fn info(node: &Node) -> Result<ConnectionInfo> {
    node.client
        .connection_info(&node.jid)
        .await?
        .context("no connection info while online")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl2_with_channel_binding_then_classic_login_and_the_pin_holds() -> Result<()> {
    let mut server = support::fresh_server()?;
    let (bob, carol) = (server.account("bob")?, server.account("carol")?);

    // SASL2 + Bind2, bound to this TLS connection.
    let mut b = Node::new(&server, &bob).await?;
    b.online().await?;
    let got = info(&b).await?;
    ensure!(
        got.sasl2
            && got.bound_inline
            && got.mechanism == "SCRAM-SHA-1-PLUS"
            && got.channel_binding.as_deref() == Some("tls-exporter"),
        "SASL2 login: {got:?}"
    );
    let resource = got
        .jid
        .as_deref()
        .and_then(|j| j.split_once('/'))
        .map(|(_, r)| r.to_owned())
        .context("bound JID")?;
    ensure!(
        resource.starts_with("Starling~"),
        "Bind2 lets the server make the resource from our tag: {resource}"
    );
    let rec = b.client.accounts()?;
    ensure!(
        rec.first()
            .is_some_and(|a| a.pin_scram && a.pin_channel_binding),
        "the login pinned SCRAM and channel binding: {rec:?}"
    );

    // The admin turns SASL2 off: the classic login, without channel binding.
    server.restart_with(&ProsodyOptions {
        sasl2: false,
        ..ProsodyOptions::default()
    })?;
    let mut c = Node::new(&server, &carol).await?;
    c.online().await?;
    let got = info(&c).await?;
    ensure!(
        !got.sasl2
            && !got.bound_inline
            && got.mechanism == "SCRAM-SHA-1"
            && got.channel_binding.is_none(),
        "classic login: {got:?}"
    );

    // Bob's client reconnects by itself and meets a server without channel binding.
    // It used it before, so it refuses, says why, and does not retry.
    let failure = b
        .wait_for("refused login", |e| match e {
            starling_core::Event::Connection {
                state: ConnectionState::Failed { error, kind },
                ..
            } => Some((error.clone(), *kind)),
            starling_core::Event::Connection {
                state: ConnectionState::Online { .. },
                ..
            } => Some(("went online".to_owned(), "")),
            _ => None,
        })
        .await?;
    ensure!(
        failure.1 == "login_tampered" && failure.0.contains("channel binding"),
        "pinned channel binding: {failure:?}"
    );
    c.shutdown().await;
    b.shutdown().await;
    Ok(())
}
