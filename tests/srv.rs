//! DNS: an account whose domain is found only through SRV records (RFC 6120 §3.2,
//! XEP-0368), served by a DNS server on 127.0.0.1 that the client is pointed at with
//! STARLING_DNS_SERVER. Nothing leaves the loopback interface.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Result, ensure};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::{A, SRV};
use hickory_proto::rr::{Name, RData, Record};
use serde_json::json;
use starling::testbed::SRV_DOMAIN;
use tokio::net::UdpSocket;

use crate::cli::Cli;
use crate::reliability::bodies_until;
use crate::support;

/// Serves `records` (name, type, data); NXDOMAIN for unknown names, empty answers for
/// unknown types of known names.
async fn dns_server(records: Vec<(Name, RData)>) -> Result<u16> {
    let sock = UdpSocket::bind("127.0.0.1:0").await?;
    let port = sock.local_addr()?.port();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            let Ok(query) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let Some(q) = query.queries.first().cloned() else {
                continue;
            };
            let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
            reply.metadata.recursion_desired = query.metadata.recursion_desired;
            reply.metadata.recursion_available = true;
            reply.metadata.authoritative = true;
            reply.add_query(q.clone());
            let same_name = |name: &Name| name.to_lowercase() == q.name().to_lowercase();
            let known = records.iter().any(|(name, _)| same_name(name));
            for (name, data) in &records {
                if same_name(name) && data.record_type() == q.query_type() {
                    reply.add_answer(Record::from_rdata(name.clone(), 60, data.clone()));
                }
            }
            if !known {
                reply.metadata.response_code = ResponseCode::NXDomain;
            }
            let Ok(bytes) = reply.to_vec() else { continue };
            if sock.send_to(&bytes, from).await.is_err() {
                break;
            }
        }
    });
    Ok(port)
}

/// A listener on 127.0.0.1 that counts connections and hangs up on each.
async fn counting_listener() -> Result<(u16, Arc<AtomicUsize>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            drop(conn);
        }
    });
    Ok((port, count))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_found_through_srv_records_in_priority_order() -> Result<()> {
    let server = support::fresh_server()?;
    let user = support::unique_name("alice");
    let password = format!("pw-{user}");
    server.register_at(SRV_DOMAIN, &user, &password)?;
    let jid = format!("{user}@{SRV_DOMAIN}");
    let bob = server.account("bob")?;
    let mut peer = server.peer(&bob).await?;

    // Priority 1: a port that hangs up at once (must be tried, then skipped); priority 5:
    // STARTTLS on Prosody (used); priority 10: a port that must never be tried.
    let (hang_up, hang_ups) = counting_listener().await?;
    let (never, nevers) = counting_listener().await?;
    let host = Name::from_ascii("xmpp.srv.test.")?;
    let records = vec![
        (
            Name::from_ascii("_xmpps-client._tcp.srv.test.")?,
            RData::SRV(SRV::new(1, 0, hang_up, host.clone())),
        ),
        (
            Name::from_ascii("_xmpp-client._tcp.srv.test.")?,
            RData::SRV(SRV::new(5, 0, server.c2s_port(), host.clone())),
        ),
        (
            Name::from_ascii("_xmpps-client._tcp.srv.test.")?,
            RData::SRV(SRV::new(10, 0, never, host.clone())),
        ),
        (host, RData::A(A(Ipv4Addr::LOCALHOST))),
    ];
    let dns = dns_server(records).await?;
    let dns_env = format!("127.0.0.1:{dns}");

    let cli = Cli::new(&server)?;
    let ca = server.ca_file().display().to_string();
    let out = cli
        .command(&["account", "add", &jid, "--ca-file", &ca])
        .env("STARLING_PASSWORD", &password)
        .env("STARLING_DNS_SERVER", &dns_env)
        .output()
        .await?;
    ensure!(
        out.status.success(),
        "account add via SRV: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli
        .command(&["send", &bob.jid, "found you through SRV"])
        .env("STARLING_DNS_SERVER", &dns_env)
        .output()
        .await?;
    ensure!(
        out.status.success(),
        "send via SRV: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    peer.command(json!({"cmd": "ping"})).await?;
    let out = cli
        .command(&["send", &bob.jid, "sentinel"])
        .env("STARLING_DNS_SERVER", &dns_env)
        .output()
        .await?;
    ensure!(out.status.success());
    let got = bodies_until(&mut peer, "sentinel").await?;
    ensure!(got == vec!["found you through SRV".to_owned()], "{got:?}");
    ensure!(
        hang_ups.load(Ordering::SeqCst) >= 1,
        "priority 1 was not tried first"
    );
    ensure!(
        nevers.load(Ordering::SeqCst) == 0,
        "priority 10 was tried although 5 worked"
    );
    peer.quit().await?;
    Ok(())
}

/// RFC 6125 / RFC 7590: the certificate must be for the account's domain, wherever SRV
/// points. The SRV target's name is not an acceptable identity without DNSSEC (RFC 7673,
/// DANE), so a server whose certificate names only the target is refused, saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_the_srv_target_only_is_refused() -> Result<()> {
    use anyhow::Context as _;
    let server = support::fresh_server()?;
    let jid = format!("{}@{SRV_DOMAIN}", support::unique_name("alice"));
    let work = tempfile::tempdir()?;
    let certs = server.ca_file().parent().context("certs dir")?;
    let port = crate::security::tls_server_with(
        crate::security::Cert::For("xmpp.srv.test"),
        certs,
        work.path(),
    )
    .await?;
    let host = Name::from_ascii("xmpp.srv.test.")?;
    let records = vec![
        (
            Name::from_ascii("_xmpps-client._tcp.srv.test.")?,
            RData::SRV(SRV::new(1, 0, port, host.clone())),
        ),
        (host, RData::A(A(Ipv4Addr::LOCALHOST))),
    ];
    let dns = dns_server(records).await?;
    let cli = Cli::new(&server)?;
    let ca = server.ca_file().display().to_string();
    let out = cli
        .command(&["account", "add", &jid, "--ca-file", &ca])
        .env("STARLING_PASSWORD", "irrelevant")
        .env("STARLING_DNS_SERVER", format!("127.0.0.1:{dns}"))
        .output()
        .await?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(!out.status.success(), "accepted: {err}");
    ensure!(
        err.contains("not valid for srv.test (it is for xmpp.srv.test)"),
        "{err}"
    );
    let accounts = cli.json(&["account", "list"]).await?;
    ensure!(accounts == json!([]), "nothing stored: {accounts}");
    Ok(())
}
