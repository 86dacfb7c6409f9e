//! DANE (RFC 6698, RFC 7671, RFC 7673): the certificate check that replaces the public CAs
//! when a domain's DNSSEC-signed TLSA records say which certificate or anchor to expect.
//! Records are computed with openssl, the way admins publish them, and checked in real TLS
//! handshakes: against Prosody, and against test servers with other names or chains.
//!
//! End to end: the `starling` CLI finds the server through SRV and TLSA records served by
//! Knot DNS on 127.0.0.1 from a zone signed with ldns-signzone (support/dns.rs), with the
//! zone's key as the DNSSEC trust anchor: secure records mean DANE, bogus ones mean no
//! connection at all, unsigned ones mean PKIX as before.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail, ensure};
use serde_json::{Value, json};
use starling::testbed::{DANE_CERT, DANE_DOMAIN, SRV_DOMAIN};
use starling_core::connection::dane::{DANE_EE, DANE_TA, DaneVerifier, Tlsa};
use tokio_rustls::rustls::{self, pki_types::ServerName};

use crate::cli::Cli;
use crate::security::{Cert, tls_server_with};
use crate::support::dns::{DnsServer, Signing};
use crate::support::{self, TestServer};

/// A TLSA record's data as `openssl` makes it: SHA-256 of the certificate's public key
/// (selector 1) or of the whole certificate (selector 0).
pub(crate) fn openssl_sha256(cert_pem: &Path, selector: u8) -> Result<Vec<u8>> {
    let cert = cert_pem.display();
    let pipeline = match selector {
        1 => format!(
            "openssl x509 -in '{cert}' -pubkey -noout | openssl pkey -pubin -outform DER \
             | openssl dgst -sha256 -binary"
        ),
        _ => format!("openssl x509 -in '{cert}' -outform DER | openssl dgst -sha256 -binary"),
    };
    let out = Command::new("sh").args(["-c", &pipeline]).output()?;
    ensure!(
        out.status.success() && out.stdout.len() == 32,
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(out.stdout)
}

pub(crate) fn record(usage: u8, selector: u8, data: Vec<u8>) -> Tlsa {
    Tlsa {
        usage,
        selector,
        matching: 1,
        data,
    }
}

fn name(s: &str) -> Result<ServerName<'static>> {
    Ok(ServerName::try_from(s.to_owned())?)
}

/// A direct-TLS handshake on `port`, asking for `sni`, with DANE as the only trust.
pub(crate) async fn handshake(
    port: u16,
    sni: &str,
    records: &[Tlsa],
    names: &[&str],
) -> Result<(), String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let names = names
        .iter()
        .map(|n| name(n))
        .collect::<Result<Vec<_>>>()
        .map_err(|e| e.to_string())?;
    let config = DaneVerifier::new(records, names, provider)
        .ok_or("no usable TLSA record")?
        .client_config()
        .map_err(|e| e.to_string())?;
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let sni = name(sni).map_err(|e| e.to_string())?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(sni, tcp)
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dane_ee_records_pin_prosodys_certificate() -> Result<()> {
    let server = support::fresh_server()?;
    let certs = server.ca_file().parent().context("certs dir")?;
    let leaf = certs.join("localhost.crt");
    let port = server.direct_tls_port();
    let spki = openssl_sha256(&leaf, 1)?;
    let full = openssl_sha256(&leaf, 0)?;

    handshake(
        port,
        "localhost",
        &[record(DANE_EE, 1, spki.clone())],
        &["localhost"],
    )
    .await
    .map_err(anyhow::Error::msg)
    .context("3 1 1")?;
    handshake(
        port,
        "localhost",
        &[record(DANE_EE, 0, full)],
        &["localhost"],
    )
    .await
    .map_err(anyhow::Error::msg)
    .context("3 0 1")?;

    let mut wrong = spki.clone();
    wrong[0] ^= 1;
    let refused = handshake(
        port,
        "localhost",
        &[record(DANE_EE, 1, wrong)],
        &["localhost"],
    )
    .await;
    ensure!(
        refused.as_ref().is_err_and(|e| e.contains("DaneMismatch")),
        "a wrong record must refuse: {refused:?}"
    );
    // The CA as a DANE-TA anchor: Prosody does not send it, so nothing can chain to it.
    let ca = openssl_sha256(&certs.join("ca.crt"), 0)?;
    let refused = handshake(port, "localhost", &[record(DANE_TA, 0, ca)], &["localhost"]).await;
    ensure!(
        refused.is_err(),
        "an anchor the server never sent: {refused:?}"
    );
    // PKIX usages are not DANE for XMPP: nothing usable, so no DANE verifier at all.
    let pkix = [record(0, 1, spki.clone()), record(1, 1, spki)];
    ensure!(
        DaneVerifier::new(
            &pkix,
            vec![name("localhost")?],
            Arc::new(rustls::crypto::ring::default_provider())
        )
        .is_none()
    );
    Ok(())
}

/// DANE-EE vouches for the key, whatever names the certificate carries (RFC 7671 §5.1);
/// DANE-TA still checks names, and with DANE the SRV target counts as one (RFC 7673).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dane_ee_ignores_names_and_dane_ta_accepts_the_srv_target() -> Result<()> {
    let server = support::fresh_server()?;
    let certs = server.ca_file().parent().context("certs dir")?;

    let work = tempfile::tempdir()?;
    let port = tls_server_with(Cert::For("other.example"), certs, work.path()).await?;
    let spki = openssl_sha256(&work.path().join("served.crt"), 1)?;
    handshake(port, "srv.test", &[record(DANE_EE, 1, spki)], &["srv.test"])
        .await
        .map_err(anyhow::Error::msg)
        .context("DANE-EE for a certificate naming another host")?;

    let work = tempfile::tempdir()?;
    let port = tls_server_with(Cert::WithCa("xmpp.srv.test"), certs, work.path()).await?;
    let anchor = [record(
        DANE_TA,
        0,
        openssl_sha256(&certs.join("ca.crt"), 0)?,
    )];
    handshake(port, "srv.test", &anchor, &["srv.test", "xmpp.srv.test"])
        .await
        .map_err(anyhow::Error::msg)
        .context("DANE-TA with the SRV target as reference identity")?;
    let refused = handshake(port, "srv.test", &anchor, &["srv.test"]).await;
    ensure!(
        refused.is_err(),
        "DANE-TA still checks the name: {refused:?}"
    );
    Ok(())
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// SRV records for both services of `domain` (direct TLS first) pointing at
/// `xmpp.DOMAIN` on Prosody's ports, its address, and for each port a TLSA record
/// `usage selector 1 data` if given.
fn zone(server: &TestServer, domain: &str, tlsa: Option<(u8, u8, &[u8])>) -> Vec<String> {
    let (direct, starttls) = (server.direct_tls_port(), server.c2s_port());
    let target = format!("xmpp.{domain}.");
    let mut records = vec![
        format!("_xmpps-client._tcp.{domain}. IN SRV 0 0 {direct} {target}"),
        format!("_xmpp-client._tcp.{domain}. IN SRV 10 0 {starttls} {target}"),
        format!("{target} IN A 127.0.0.1"),
    ];
    if let Some((usage, selector, data)) = tlsa {
        for port in [direct, starttls] {
            records.push(format!(
                "_{port}._tcp.{target} IN TLSA {usage} {selector} 1 {}",
                hex(data)
            ));
        }
    }
    records
}

/// The SHA-256 of the public key of the certificate Prosody serves for `domain`, as a
/// `3 1 1` record carries it.
fn served_spki(server: &TestServer, domain: &str) -> Result<Vec<u8>> {
    let certs = server.ca_file().parent().context("certs dir")?;
    let file = if domain == DANE_DOMAIN {
        DANE_CERT // the first certificate of the chain is the server's own
    } else {
        "localhost.crt"
    };
    openssl_sha256(&certs.join(file), 1)
}

/// Runs `starling ARGS` with the DNS server (and its trust anchor, if signed) in the
/// environment; returns (success, stdout, stderr).
async fn starling(
    cli: &Cli,
    dns: &DnsServer,
    password: &str,
    args: &[&str],
) -> Result<(bool, String, String)> {
    let mut command = cli.command(args);
    command
        .env("STARLING_PASSWORD", password)
        .env("STARLING_DNS_SERVER", dns.addr())
        .env_remove("STARLING_DNSSEC_TRUST_ANCHOR");
    if let Ok(anchor) = dns.anchor() {
        command.env("STARLING_DNSSEC_TRUST_ANCHOR", anchor);
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), command.output())
        .await
        .with_context(|| format!("starling {args:?} hung"))??;
    Ok((
        out.status.success(),
        String::from_utf8(out.stdout)?,
        String::from_utf8(out.stderr)?,
    ))
}

/// A new account on `domain`: `account add` (with `extra` arguments) through `dns`, then
/// `account info --json`.
async fn add_and_info(
    server: &TestServer,
    cli: &Cli,
    dns: &DnsServer,
    domain: &str,
    extra: &[&str],
) -> Result<Value> {
    let user = support::unique_name("dane");
    let password = format!("pw-{user}");
    server.register_at(domain, &user, &password)?;
    let jid = format!("{user}@{domain}");
    let mut args = vec!["account", "add", jid.as_str()];
    args.extend_from_slice(extra);
    let (ok, _, err) = starling(cli, dns, &password, &args).await?;
    if !ok {
        bail!("account add {jid}: {err}");
    }
    let (ok, out, err) =
        starling(cli, dns, &password, &["--json", "account", "info", &jid]).await?;
    ensure!(ok, "account info {jid}: {err}");
    serde_json::from_str(out.trim()).with_context(|| format!("not JSON: {out}"))
}

/// `account add` through `dns` that must fail; returns stderr, after checking nothing
/// was stored.
async fn refused(
    server: &TestServer,
    cli: &Cli,
    dns: &DnsServer,
    domain: &str,
    extra: &[&str],
) -> Result<String> {
    let user = support::unique_name("dane");
    let password = format!("pw-{user}");
    server.register_at(domain, &user, &password)?;
    let jid = format!("{user}@{domain}");
    let mut args = vec!["account", "add", jid.as_str()];
    args.extend_from_slice(extra);
    let (ok, _, err) = starling(cli, dns, &password, &args).await?;
    ensure!(!ok, "account add {jid} was accepted: {err}");
    let accounts = cli.json(&["account", "list"]).await?;
    ensure!(accounts == json!([]), "nothing stored: {accounts}");
    Ok(err)
}

/// Secure SRV and a matching `3 1 1` record: DANE, on both transports. The certificate
/// does not name dane.test and no CA file is given, so PKIX could not have accepted it:
/// the connection is DANE's doing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_tlsa_record_is_the_trust_for_the_connection() -> Result<()> {
    let server = support::fresh_server()?;
    let spki = served_spki(&server, DANE_DOMAIN)?;
    let dns = DnsServer::start(
        &zone(&server, DANE_DOMAIN, Some((3, 1, &spki))),
        &Signing::Signed,
    )?;
    let cli = Cli::new(&server)?;

    let info = add_and_info(&server, &cli, &dns, DANE_DOMAIN, &[]).await?;
    ensure!(
        info["dane"] == true
            && info["direct_tls"] == true
            && info["host"] == "xmpp.dane.test"
            && info["port"] == server.direct_tls_port(),
        "direct TLS (SRV priority 0) with DANE: {info}"
    );
    let info = add_and_info(&server, &cli, &dns, DANE_DOMAIN, &["--tls", "starttls"]).await?;
    ensure!(
        info["dane"] == true && info["direct_tls"] == false && info["port"] == server.c2s_port(),
        "STARTTLS with DANE: {info}"
    );
    Ok(())
}

/// A secure TLSA record that does not match refuses the server, although PKIX with the
/// CA file would accept its certificate: nothing falls back to PKIX.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mismatching_secure_tlsa_record_refuses_the_server() -> Result<()> {
    let server = support::fresh_server()?;
    let mut wrong = served_spki(&server, SRV_DOMAIN)?;
    wrong[0] ^= 1;
    let dns = DnsServer::start(
        &zone(&server, SRV_DOMAIN, Some((3, 1, &wrong))),
        &Signing::Signed,
    )?;
    let cli = Cli::new(&server)?;
    let ca = server.ca_file().display().to_string();
    let err = refused(&server, &cli, &dns, SRV_DOMAIN, &["--ca-file", &ca]).await?;
    ensure!(
        err.contains(
            "server certificate not trusted for srv.test: it matches none of the domain's \
             DNSSEC-signed TLSA records (DANE); the domain's DNSSEC-signed TLSA records name \
             another certificate"
        ),
        "{err}"
    );
    Ok(())
}

/// A broken signature on the SRV records stops the connection before any TLS: the
/// answers may be forged. (With the CA file PKIX alone would pass.) A broken signature on
/// one target's TLSA records rules out that target only (RFC 7673 §3): the next SRV target
/// is used, with DANE; when every target's TLSA records are bogus, nothing connects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bogus_dnssec_answers_stop_the_connection() -> Result<()> {
    let server = support::fresh_server()?;
    let spki = served_spki(&server, SRV_DOMAIN)?;
    let records = zone(&server, SRV_DOMAIN, Some((3, 1, &spki)));
    let cli = Cli::new(&server)?;
    let ca = server.ca_file().display().to_string();

    let dns = DnsServer::start(
        &records,
        &Signing::Tampered(vec![("_xmpps-client._tcp.srv.test.".to_owned(), "SRV")]),
    )?;
    let err = refused(&server, &cli, &dns, SRV_DOMAIN, &["--ca-file", &ca]).await?;
    ensure!(
        err.contains(
            "the DNS answers for srv.test failed DNSSEC validation \
             (SRV _xmpps-client._tcp.srv.test)"
        ),
        "forged SRV: {err}"
    );
    drop(dns);

    // dane.test's certificate does not name it and no CA file is given: only DANE on the
    // STARTTLS target can let this through.
    let tlsa_owner = |domain: &str, port: u16| (format!("_{port}._tcp.xmpp.{domain}."), "TLSA");
    let dane_spki = served_spki(&server, DANE_DOMAIN)?;
    let dns = DnsServer::start(
        &zone(&server, DANE_DOMAIN, Some((3, 1, &dane_spki))),
        &Signing::Tampered(vec![tlsa_owner(DANE_DOMAIN, server.direct_tls_port())]),
    )?;
    let info = add_and_info(&server, &cli, &dns, DANE_DOMAIN, &[]).await?;
    ensure!(
        info["dane"] == true && info["direct_tls"] == false && info["port"] == server.c2s_port(),
        "the direct TLS target's TLSA records are bogus: the STARTTLS target, with DANE: {info}"
    );
    drop(dns);

    let dns = DnsServer::start(
        &records,
        &Signing::Tampered(vec![
            tlsa_owner(SRV_DOMAIN, server.direct_tls_port()),
            tlsa_owner(SRV_DOMAIN, server.c2s_port()),
        ]),
    )?;
    // A new profile: the one above now holds the dane.test account.
    let cli = Cli::new(&server)?;
    let err = refused(&server, &cli, &dns, SRV_DOMAIN, &["--ca-file", &ca]).await?;
    ensure!(
        err.contains("the DNS answers for srv.test failed DNSSEC validation (TLSA _"),
        "forged TLSA on every target: {err}"
    );
    Ok(())
}

/// Without secure TLSA records it is PKIX, as without DANE: an unsigned zone (whose
/// records, here even a wrong TLSA record, carry no weight; the resolver cannot validate
/// the IANA root here, which counts as insecure), and a signed zone without TLSA records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_secure_tlsa_records_it_is_pkix() -> Result<()> {
    let server = support::fresh_server()?;
    let mut wrong = served_spki(&server, SRV_DOMAIN)?;
    wrong[0] ^= 1;
    let cli = Cli::new(&server)?;
    let ca = server.ca_file().display().to_string();

    let dns = DnsServer::start(
        &zone(&server, SRV_DOMAIN, Some((3, 1, &wrong))),
        &Signing::Unsigned,
    )?;
    let info = add_and_info(&server, &cli, &dns, SRV_DOMAIN, &["--ca-file", &ca]).await?;
    ensure!(
        info["dane"] == false && info["host"] == "xmpp.srv.test",
        "unsigned zone: {info}"
    );
    drop(dns);

    let dns = DnsServer::start(&zone(&server, SRV_DOMAIN, None), &Signing::Signed)?;
    let info = add_and_info(&server, &cli, &dns, SRV_DOMAIN, &["--ca-file", &ca]).await?;
    ensure!(
        info["dane"] == false && info["host"] == "xmpp.srv.test",
        "signed zone without TLSA: {info}"
    );
    // And PKIX still checks names: dane.test is not in its certificate, and without DANE
    // the SRV target's name does not count.
    let dns = DnsServer::start(&zone(&server, DANE_DOMAIN, None), &Signing::Signed)?;
    let cli = Cli::new(&server)?;
    let err = refused(&server, &cli, &dns, DANE_DOMAIN, &["--ca-file", &ca]).await?;
    ensure!(
        err.contains("not valid for dane.test (it is for xmpp.dane.test)"),
        "{err}"
    );
    Ok(())
}

/// The common case on the Internet: a validating resolver, a signed root, and an unsigned
/// domain under it (a delegation without DS). Its answers are provably insecure, not
/// bogus, so the client connects with PKIX and ignores its TLSA records (here a wrong one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_domain_under_a_signed_root_is_pkix() -> Result<()> {
    let server = support::fresh_server()?;
    let mut wrong = served_spki(&server, SRV_DOMAIN)?;
    wrong[0] ^= 1;
    let child = zone(&server, SRV_DOMAIN, Some((3, 1, &wrong)));
    let dns = DnsServer::start_with_child(&[], &Signing::Signed, Some((SRV_DOMAIN, &child)))?;
    let cli = Cli::new(&server)?;
    let ca = server.ca_file().display().to_string();
    let info = add_and_info(&server, &cli, &dns, SRV_DOMAIN, &["--ca-file", &ca]).await?;
    ensure!(
        info["dane"] == false && info["host"] == "xmpp.srv.test",
        "insecure delegation: {info}"
    );
    Ok(())
}

/// DANE-TA (`2 0 1`): the CA certificate the server sends in its chain is the anchor, and
/// the server's certificate names the SRV target, a reference identity with DANE (RFC 7673
/// §3). No CA file. A record for another anchor refuses the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dane_ta_record_anchors_the_servers_chain() -> Result<()> {
    let server = support::fresh_server()?;
    let mut ca = openssl_sha256(server.ca_file(), 0)?;
    let cli = Cli::new(&server)?;
    let dns = DnsServer::start(
        &zone(&server, DANE_DOMAIN, Some((2, 0, &ca))),
        &Signing::Signed,
    )?;
    let info = add_and_info(&server, &cli, &dns, DANE_DOMAIN, &[]).await?;
    ensure!(info["dane"] == true, "DANE-TA: {info}");
    drop(dns);

    ca[0] ^= 1;
    let dns = DnsServer::start(
        &zone(&server, DANE_DOMAIN, Some((2, 0, &ca))),
        &Signing::Signed,
    )?;
    let cli = Cli::new(&server)?;
    let err = refused(&server, &cli, &dns, DANE_DOMAIN, &[]).await?;
    ensure!(
        err.contains("matches none of the domain's DNSSEC-signed TLSA records (DANE)"),
        "{err}"
    );
    Ok(())
}
