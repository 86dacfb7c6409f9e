//! Login security against Prosody: SASL2 (XEP-0388) with Bind2 (XEP-0386) and
//! SCRAM-SHA-1-PLUS bound to the TLS connection (`tls-exporter`, RFC 9266); FAST tokens
//! (XEP-0484, prosody-modules' mod_sasl2_fast) for reconnecting without the password; the
//! classic RFC 6120 login when the server has no SASL2; and pinning: once an account has
//! logged in with channel binding, a server that stops offering it is refused.
//!
//! Prosody 0.12 with Debian's prosody-modules needs the test bed's compatibility shim for
//! SASL2 and `tls-exporter` (assets/prosody/mod_starling_compat.lua); the SCRAM and
//! channel-binding checks are Prosody's own. A man in the middle caught by channel
//! binding is in `hostile_server.rs`.

use anyhow::{Context, Result, ensure};
use serde_json::Value;
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

/// The FAST token the profile keeps (secrets file: tests use no keyring), if any.
fn stored_token(node: &Node) -> Result<Option<Value>> {
    let path = node.dir().join("secrets.json");
    let secrets: Value = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    match secrets[format!("fast-token:{}", node.jid)].as_str() {
        Some(json) => Ok(Some(serde_json::from_str(json)?)),
        None => Ok(None),
    }
}

fn set_stored_token(node: &Node, token: &Value) -> Result<()> {
    let path = node.dir().join("secrets.json");
    let mut secrets: Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    secrets[format!("fast-token:{}", node.jid)] = Value::String(token.to_string());
    std::fs::write(&path, serde_json::to_vec(&secrets)?)?;
    Ok(())
}

async fn reconnect(node: &mut Node) -> Result<ConnectionInfo> {
    node.client.disconnect_all().await;
    node.online().await?;
    info(node).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_tokens_log_in_without_the_password_and_a_refused_one_is_replaced() -> Result<()> {
    let server = support::fresh_server()?;
    let alice = server.account("alice")?;
    let mut a = Node::new(&server, &alice).await?;
    a.online().await?;

    // The password login asks for a token bound to the TLS connection, and keeps it as a
    // secret: in the secrets file, not in the database.
    let got = info(&a).await?;
    ensure!(
        !got.fast && got.mechanism == "SCRAM-SHA-1-PLUS",
        "first login: {got:?}"
    );
    let token = stored_token(&a)?.context("no FAST token stored after the first login")?;
    ensure!(
        token["mechanism"] == "HT-SHA-256-EXPR",
        "token: {}",
        token["mechanism"]
    );
    let secret = token["secret"].as_str().context("token secret")?.to_owned();
    let db = std::fs::read(a.dir().join("starling.sqlite3"))?;
    ensure!(
        !db.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the FAST token must not be in the database"
    );

    // Reconnecting uses the token, bound to the new TLS connection.
    let got = reconnect(&mut a).await?;
    ensure!(
        got.fast
            && got.sasl2
            && got.mechanism == "HT-SHA-256-EXPR"
            && got.channel_binding.as_deref() == Some("tls-exporter"),
        "FAST login: {got:?}"
    );

    // A token the server does not know (revoked, or another server's) is refused: the
    // same attempt goes on with the password, and a new token replaces the old one.
    let mut forged = token.clone();
    forged["secret"] = Value::String("secret-token:fast-forged".to_owned());
    set_stored_token(&a, &forged)?;
    let got = reconnect(&mut a).await?;
    ensure!(
        !got.fast && got.mechanism == "SCRAM-SHA-1-PLUS",
        "after a refused token: {got:?}"
    );
    let replaced = stored_token(&a)?.context("no new token after the password login")?;
    ensure!(
        replaced["secret"] != forged["secret"] && replaced["secret"].is_string(),
        "the refused token was replaced"
    );
    let got = reconnect(&mut a).await?;
    ensure!(got.fast, "the new token works: {got:?}");

    // Removing the account forgets the token, and has the server invalidate it: a copy
    // (a backup of the secrets, say) no longer logs in.
    let last: starling_core::connection::FastToken =
        serde_json::from_value(stored_token(&a)?.context("no token before removal")?)?;
    let resource = a
        .client
        .accounts()?
        .into_iter()
        .find(|r| r.jid == alice.jid)
        .context("no account record")?
        .resource;
    a.client.remove_account(&alice.jid).await?;
    ensure!(
        stored_token(&a)?.is_none(),
        "the token outlives the account"
    );
    let opts = crate::node::options(&server);
    let settings = starling_core::connection::ConnectionSettings {
        jid: alice.jid.parse()?,
        server: opts.server,
        tls: opts.tls,
        ca_file: opts.ca_file,
        dns_server: None,
        pins: Default::default(),
        dnssec_trust_anchor: None,
    };
    let connector = starling_core::connection::Connector::new(&settings)?;
    let full: jid::Jid = format!("{}/{resource}", alice.jid).parse()?;
    ensure!(
        !starling_core::connection::invalidate_fast_token(&connector, &full, last).await?,
        "the server still takes the removed account's token"
    );
    Ok(())
}

/// A server that can bind only with its certificate's hash (RFC 5929, as behind a TLS
/// terminator) says so with XEP-0440; the login binds that way instead of going without.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_listing_only_tls_server_end_point_gets_it() -> Result<()> {
    let server = support::fresh_server_with(ProsodyOptions {
        end_point_binding: true,
        ..ProsodyOptions::default()
    })?;
    let alice = server.account("alice")?;
    let mut a = Node::new(&server, &alice).await?;
    a.online().await?;
    let got = info(&a).await?;
    ensure!(
        got.sasl2
            && got.mechanism == "SCRAM-SHA-1-PLUS"
            && got.channel_binding.as_deref() == Some("tls-server-end-point"),
        "end-point binding: {got:?}"
    );
    a.shutdown().await;
    Ok(())
}
