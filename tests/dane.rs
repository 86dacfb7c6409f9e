//! DANE (RFC 6698, RFC 7671, RFC 7673): the certificate check that replaces the public CAs
//! when a domain's DNSSEC-signed TLSA records say which certificate or anchor to expect.
//! Records are computed with openssl, the way admins publish them, and checked in real TLS
//! handshakes: against Prosody, and against test servers with other names or chains.
//! (The DNSSEC lookup that feeds these records is not built yet.)

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use anyhow::{Context as _, Result, ensure};
use starling_core::connection::dane::{DANE_EE, DANE_TA, DaneVerifier, Tlsa};
use tokio_rustls::rustls::{self, pki_types::ServerName};

use crate::security::{Cert, tls_server_with};
use crate::support;

/// A TLSA record's data as `openssl` makes it: SHA-256 of the certificate's public key
/// (selector 1) or of the whole certificate (selector 0).
fn openssl_sha256(cert_pem: &Path, selector: u8) -> Result<Vec<u8>> {
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

fn record(usage: u8, selector: u8, data: Vec<u8>) -> Tlsa {
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
async fn handshake(port: u16, sni: &str, records: &[Tlsa], names: &[&str]) -> Result<(), String> {
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
