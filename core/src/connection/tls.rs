//! TLS: the trusted roots, the rustls client configurations and the STARTTLS exchange.
//!
//! Certificates are always verified against the JID's domain; there is deliberately no way to
//! turn verification off.

use std::borrow::Cow;
use std::fs::File;
use std::io::BufReader;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::io::BufStream;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_xmpp::parsers::starttls;
use tokio_xmpp::xmlstream::{
    FallibleStreamElement, ReadError, RecvFeaturesError, StreamHeader, Timeouts, XmppStream,
    XmppStreamElement, initiate_stream,
};
use tracing::{debug, info, warn};

use super::dane::DaneVerifier;
use super::error::ConnectError;
use super::identity::XmppServerVerifier;

/// How long the TLS handshake may take.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// ALPN protocol id for direct TLS (XEP-0368).
const ALPN_XMPP_CLIENT: &[u8] = b"xmpp-client";

/// The platform's trusted roots plus, optionally, the certificates in a PEM file.
pub(super) fn root_store(ca_file: Option<&Path>) -> Result<RootCertStore, ConnectError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        warn!(%error, "problem loading a system CA certificate; skipped");
    }
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    debug!(added, ignored, "system CA certificates loaded");
    if ignored > 0 {
        warn!(
            ignored,
            "some system CA certificates could not be parsed; skipped"
        );
    }

    if let Some(path) = ca_file {
        let shown = path.display();
        let file = File::open(path).map_err(|e| {
            ConnectError::invalid_settings(format!("cannot read the CA file {shown}: {e}"))
        })?;
        let mut count = 0usize;
        for cert in rustls_pemfile::certs(&mut BufReader::new(file)) {
            let cert = cert.map_err(|e| {
                ConnectError::invalid_settings(format!("cannot read the CA file {shown}: {e}"))
            })?;
            roots.add(cert).map_err(|e| {
                ConnectError::invalid_settings(format!(
                    "the CA file {shown} contains an unusable certificate: {e}"
                ))
            })?;
            count += 1;
        }
        if count == 0 {
            return Err(ConnectError::invalid_settings(format!(
                "the CA file {shown} contains no PEM certificate"
            )));
        }
        info!(path = %shown, count, "extra CA certificates trusted");
    }
    Ok(roots)
}

/// What a configuration is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Use {
    /// HTTPS: the certificate must name the host (DNS-ID).
    Https,
    /// XMPP: a DNS-ID, SRV-ID or XmppAddr for the domain ([`XmppServerVerifier`]); ALPN
    /// `xmpp-client` when `direct` (XEP-0368).
    Xmpp { direct: bool },
}

/// A rustls client configuration (ring provider, safe default versions) trusting `roots`.
pub(super) fn client_config(
    roots: RootCertStore,
    use_: Use,
) -> Result<Arc<ClientConfig>, ConnectError> {
    let failed = |e: &dyn std::fmt::Display| {
        ConnectError::invalid_settings(format!("TLS setup failed: {e}"))
    };
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| failed(&e))?;
    let mut config = match use_ {
        Use::Https => builder.with_root_certificates(roots).with_no_client_auth(),
        // rustls calls any verifier of one's own "dangerous"; this one is rustls's own PKIX
        // verifier, which also takes the two XMPP name forms RFC 6120 allows.
        Use::Xmpp { .. } => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(
                XmppServerVerifier::new(Arc::new(roots), provider).map_err(|e| failed(&e))?,
            ))
            .with_no_client_auth(),
    };
    if use_ == (Use::Xmpp { direct: true }) {
        config.alpn_protocols = vec![ALPN_XMPP_CLIENT.to_vec()];
    }
    Ok(Arc::new(config))
}

/// The configuration for a DANE-verified handshake (RFC 7673): only the domain's secure
/// TLSA records are trusted. `alpn` as for [`client_config`].
pub(super) fn dane_config(
    verifier: DaneVerifier,
    alpn: bool,
) -> Result<Arc<ClientConfig>, ConnectError> {
    let mut config = verifier
        .client_config()
        .map_err(|e| ConnectError::invalid_settings(format!("TLS setup failed: {e}")))?;
    if alpn {
        config.alpn_protocols = vec![ALPN_XMPP_CLIENT.to_vec()];
    }
    Ok(Arc::new(config))
}

/// The ring provider every TLS configuration here uses.
pub(super) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Configurations for both ways of starting TLS, sharing one root store.
pub(super) fn client_configs(
    ca_file: Option<&Path>,
) -> Result<(Arc<ClientConfig>, Arc<ClientConfig>), ConnectError> {
    let roots = root_store(ca_file)?;
    Ok((
        client_config(roots.clone(), Use::Xmpp { direct: false })?,
        client_config(roots, Use::Xmpp { direct: true })?,
    ))
}

/// The name the certificate must match: the JID domain (IDNA-encoded), or an IP literal.
pub(super) fn server_name(domain: &str) -> Result<ServerName<'static>, ConnectError> {
    if let Ok(ip) = domain.parse::<IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    let ascii = hickory_resolver::proto::rr::Name::from_utf8(domain)
        .map(|n| n.to_ascii().trim_end_matches('.').to_owned())
        .map_err(|e| {
            ConnectError::invalid_settings(format!("{domain} is not a valid domain name: {e}"))
        })?;
    ServerName::try_from(ascii).map_err(|e| {
        ConnectError::invalid_settings(format!("{domain} is not a valid domain name: {e}"))
    })
}

/// TLS handshake on `tcp`, verifying the certificate for `domain`.
pub(super) async fn handshake(
    config: Arc<ClientConfig>,
    tcp: TcpStream,
    domain: &str,
) -> Result<TlsStream<TcpStream>, ConnectError> {
    let name = server_name(domain)?;
    let connect = TlsConnector::from(config).connect(name, tcp);
    let stream = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, connect)
        .await
        .map_err(|_| ConnectError::unreachable(domain, "the TLS handshake timed out"))?
        .map_err(|e| ConnectError::from_io(domain, &e))?;
    let (_, session) = stream.get_ref();
    debug!(
        %domain,
        version = ?session.protocol_version(),
        alpn = ?session.alpn_protocol().map(String::from_utf8_lossy),
        "TLS established"
    );
    Ok(stream)
}

/// Map the error of `recv_features`.
pub(super) fn features_error(domain: &str, error: RecvFeaturesError) -> ConnectError {
    match error {
        RecvFeaturesError::Io(e) => ConnectError::from_io(domain, &e),
        RecvFeaturesError::StreamError(e) => ConnectError::from_stream_error(domain, &e.0),
    }
}

/// Open a plaintext stream, require `<starttls/>`, request it, wait for `<proceed/>` and
/// return the bare TCP stream for the TLS handshake.
pub(super) async fn negotiate_starttls(
    tcp: TcpStream,
    domain: &str,
    ns: &'static str,
    timeouts: Timeouts,
) -> Result<TcpStream, ConnectError> {
    let header = StreamHeader {
        to: Some(Cow::Borrowed(domain)),
        from: None,
        id: None,
    };
    let pending = initiate_stream(BufStream::new(tcp), ns, header, timeouts)
        .await
        .map_err(|e| ConnectError::from_io(domain, &e))?;
    let (features, mut stream): (_, XmppStream<BufStream<TcpStream>>) = pending
        .recv_features::<FallibleStreamElement>()
        .await
        .map_err(|e| features_error(domain, e))?;
    if !features.can_starttls() {
        return Err(ConnectError::NoTls {
            domain: domain.to_owned(),
        });
    }
    stream
        .send(&XmppStreamElement::Starttls(starttls::Nonza::Request(
            starttls::Request,
        )))
        .await
        .map_err(|e| ConnectError::from_io(domain, &e))?;
    loop {
        let item = stream
            .next()
            .await
            .map(|r| r.and_then(FallibleStreamElement::into_read_error));
        match item {
            Some(Ok(XmppStreamElement::Starttls(starttls::Nonza::Proceed(_)))) => break,
            Some(Ok(XmppStreamElement::Starttls(starttls::Nonza::Failure(_)))) => {
                return Err(ConnectError::protocol(
                    domain,
                    "the server could not start TLS",
                ));
            }
            Some(Ok(XmppStreamElement::StreamError(e))) => {
                return Err(ConnectError::from_stream_error(domain, &e.0));
            }
            Some(Ok(other)) => {
                debug!(element = ?other, "ignoring element while waiting for <proceed/>");
            }
            Some(Err(ReadError::SoftTimeout)) => {}
            Some(Err(ReadError::HardError(e))) => return Err(ConnectError::from_io(domain, &e)),
            Some(Err(ReadError::ParseError(e))) => {
                return Err(ConnectError::protocol(
                    domain,
                    format!("invalid data from the server: {e}"),
                ));
            }
            Some(Err(ReadError::StreamFooterReceived)) | None => {
                return Err(ConnectError::unreachable(
                    domain,
                    "the server closed the connection",
                ));
            }
        }
    }
    Ok(stream.into_inner().into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_name_is_idna_or_ip() {
        assert!(matches!(
            server_name("127.0.0.1"),
            Ok(ServerName::IpAddress(_))
        ));
        match server_name("bücher.example") {
            Ok(ServerName::DnsName(n)) => assert_eq!(n.as_ref(), "xn--bcher-kva.example"),
            other => panic!("{other:?}"),
        }
        assert!(server_name("example.org").is_ok());
    }

    #[test]
    fn missing_or_empty_ca_file_is_a_clear_error() {
        let e = root_store(Some(Path::new("/nonexistent/ca.pem"))).err();
        assert!(
            matches!(&e, Some(ConnectError::InvalidSettings { reason }) if reason.contains("cannot read the CA file")),
            "{e:?}"
        );
        let dir = std::env::temp_dir().join(format!("starling-empty-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("empty.pem");
        std::fs::write(&path, "not a certificate\n").expect("write temp file");
        let e = root_store(Some(&path)).err();
        assert!(
            matches!(&e, Some(ConnectError::InvalidSettings { reason }) if reason.contains("no PEM certificate")),
            "{e:?}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn configs_build_with_alpn_only_for_direct_tls() {
        let (starttls, direct) = client_configs(None).expect("TLS configs");
        assert!(starttls.alpn_protocols.is_empty());
        assert_eq!(direct.alpn_protocols, vec![b"xmpp-client".to_vec()]);
    }
}
