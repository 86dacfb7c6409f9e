//! Connecting to the server: DNS (RFC 6120 §3.2, XEP-0368), TLS (always, verified against the
//! JID domain), SASL (SCRAM-SHA-256 > SCRAM-SHA-1 > PLAIN), and the reconnect closure that feeds
//! tokio-xmpp's [`StanzaStream`](tokio_xmpp::stanzastream::StanzaStream).
//!
//! Everything up to (not including) resource binding happens here; binding and stream
//! management are done by the `StanzaStream`.
//!
//! This module only refers to itself (no `crate::` paths) so it can be compiled on its own.

mod auth;
mod backoff;
pub mod dane;
mod dns;
mod dnssec;
mod error;
pub mod identity;
pub mod ocsp;
mod reconnect;
mod tls;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use hickory_resolver::TokioResolver;
use sasl::common::ChannelBinding;
use tokio::io::BufStream;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::{self, ClientConfig};
use tokio_xmpp::connect::ServerConnector;
use tokio_xmpp::xmlstream::{PendingFeaturesRecv, StreamHeader, Timeouts, initiate_stream};
use tracing::{debug, info, warn};

pub(crate) use self::auth::close as close_login_stream;
pub use self::auth::{
    FastSink, FastToken, LoginOptions, LoginPins, authenticate, invalidate_fast_token,
};
pub use self::backoff::Backoff;
pub use self::dnssec::TRUST_ANCHOR_ENV;
pub use self::error::ConnectError;
pub use self::reconnect::{ConnectStatus, ReconnectFn, reconnector};

/// The TLS configuration for an account's HTTPS traffic (file upload and download): the
/// same trust as its XMPP connection — system roots plus the account's CA file, ring
/// provider, certificate names always checked — speaking HTTP/1.1.
pub fn https_client_config(
    ca_file: Option<&std::path::Path>,
) -> Result<ClientConfig, ConnectError> {
    let config = tls::client_config(tls::root_store(ca_file)?, tls::Use::Https)?;
    let mut config = Arc::unwrap_or_clone(config);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

use self::dane::DaneVerifier;
use self::dns::{Candidate, Plan, Services, SrvAnswer, Transport};

/// Environment variable naming a nameserver (`IP:PORT`) to use instead of the system's.
pub const DNS_SERVER_ENV: &str = "STARLING_DNS_SERVER";

/// How TLS is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsMode {
    /// Use whatever the SRV records offer (direct TLS and STARTTLS, by priority). With a
    /// server override this means STARTTLS.
    #[default]
    Auto,
    /// STARTTLS only (`_xmpp-client._tcp`, fallback port 5222).
    StartTls,
    /// Direct TLS only (`_xmpps-client._tcp`, fallback port 5223), ALPN `xmpp-client`.
    DirectTls,
}

/// How an account's current connection is secured: what the account's connection info
/// shows. Contains no secrets.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ConnectionInfo {
    /// The server host connected to (an SRV target, the `--server` host, or the domain).
    pub host: String,
    pub port: u16,
    /// Direct TLS (XEP-0368) rather than STARTTLS.
    pub direct_tls: bool,
    /// The TLS protocol version, e.g. `TLS 1.3`.
    pub tls_version: String,
    /// The certificate was checked against the domain's DNSSEC-signed TLSA records (DANE,
    /// RFC 7673) instead of the public certificate authorities.
    pub dane: bool,
    /// The SASL mechanism used, e.g. `SCRAM-SHA-256-PLUS`.
    pub mechanism: String,
    /// The login used SASL2 (XEP-0388) rather than RFC 6120 SASL.
    pub sasl2: bool,
    /// The login used a FAST token (XEP-0484) instead of the password.
    pub fast: bool,
    /// The channel-binding type that tied the login to this TLS connection, if any.
    pub channel_binding: Option<String>,
    /// The session was bound during login (XEP-0386 Bind2).
    pub bound_inline: bool,
    /// The previous session was resumed during login (XEP-0198 inside SASL2).
    pub resumed_inline: bool,
    /// The full JID of the session, once bound (the server may choose the resource).
    pub jid: Option<String>,
}

/// Where and how to connect. Contains no secrets.
#[derive(Debug, Clone)]
pub struct ConnectionSettings {
    /// The account.
    pub jid: jid::BareJid,
    /// `--server HOST --port N`: connect there directly, without SRV lookups.
    pub server: Option<(String, u16)>,
    /// How TLS is started.
    pub tls: TlsMode,
    /// An extra trusted CA certificate (PEM), added to the system roots.
    pub ca_file: Option<PathBuf>,
    /// A nameserver to use instead of the system configuration; if `None`, the
    /// `STARLING_DNS_SERVER` environment variable is consulted.
    pub dns_server: Option<SocketAddr>,
    /// What earlier logins proved (SCRAM, channel binding): never accept less.
    pub pins: LoginPins,
    /// A DNSSEC trust anchor file (DNSKEY records in zone-file format) instead of the IANA
    /// root keys; if `None`, the `STARLING_DNSSEC_TRUST_ANCHOR` environment variable is
    /// consulted. For test zones.
    pub dnssec_trust_anchor: Option<PathBuf>,
}

/// Opens TLS-secured XML streams to the account's server. Cheap to clone.
///
/// Implements tokio-xmpp's [`ServerConnector`] (with `ChannelBinding::None`), but
/// [`authenticate`] is the preferred entry point because it keeps errors typed.
#[derive(Clone)]
pub struct Connector {
    inner: Arc<Inner>,
}

struct Inner {
    domain: String,
    server: Option<(String, u16)>,
    tls: TlsMode,
    starttls_config: Arc<ClientConfig>,
    direct_tls_config: Arc<ClientConfig>,
    /// The resolver, or why it could not be set up (only fatal when DNS is actually needed).
    resolver: Result<TokioResolver, String>,
    /// The DNSSEC-validating resolver for DANE; without it, no DANE.
    validator: Option<dnssec::Validator>,
    dns_server: Option<SocketAddr>,
    /// Raised by every successful login.
    pins: std::sync::Mutex<LoginPins>,
    /// The account's FAST token and where a new one goes.
    fast: std::sync::Mutex<(Option<FastToken>, Option<FastSink>)>,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("domain", &self.inner.domain)
            .field("server", &self.inner.server)
            .field("tls", &self.inner.tls)
            .field("dns_server", &self.inner.dns_server)
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// Load the trusted roots (system + `ca_file`) and set up DNS.
    pub fn new(settings: &ConnectionSettings) -> Result<Connector, ConnectError> {
        let (starttls_config, direct_tls_config) =
            tls::client_configs(settings.ca_file.as_deref())?;
        let dns_server = match settings.dns_server {
            Some(addr) => Some(addr),
            None => match std::env::var(DNS_SERVER_ENV) {
                Ok(value) => Some(value.trim().parse::<SocketAddr>().map_err(|e| {
                    ConnectError::invalid_settings(format!(
                        "{DNS_SERVER_ENV}={value} is not an IP:PORT address: {e}"
                    ))
                })?),
                Err(_) => None,
            },
        };
        let resolver = dns::build_resolver(dns_server);
        if let Err(e) = &resolver {
            tracing::warn!(error = %e, "DNS unavailable; only IP addresses will work");
        }
        let anchor_file = settings.dnssec_trust_anchor.clone().or_else(|| {
            std::env::var_os(TRUST_ANCHOR_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        let anchor = anchor_file
            .as_deref()
            .map(dnssec::Anchor::from_file)
            .transpose()?;
        let validator = match dnssec::Validator::new(dns_server, anchor) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(error = %e, "no DNSSEC validation, so no DANE");
                None
            }
        };
        Ok(Connector {
            inner: Arc::new(Inner {
                domain: settings.jid.domain().as_str().to_owned(),
                server: settings.server.clone(),
                tls: settings.tls,
                starttls_config,
                direct_tls_config,
                resolver,
                validator,
                dns_server,
                pins: std::sync::Mutex::new(settings.pins),
                fast: std::sync::Mutex::new((None, None)),
            }),
        })
    }

    /// Log in with `token` (XEP-0484) when the server takes it; `sink` is told about every
    /// new token, and about a refused one (`None`), so that the account can keep it.
    pub fn use_fast(&self, token: Option<FastToken>, sink: FastSink) {
        *unpoisoned(&self.inner.fast) = (token, Some(sink));
    }

    /// Whether new FAST tokens have somewhere to go ([`Connector::use_fast`] was called).
    pub(crate) fn keeps_fast_tokens(&self) -> bool {
        unpoisoned(&self.inner.fast).1.is_some()
    }

    pub(crate) fn fast_token(&self) -> Option<FastToken> {
        unpoisoned(&self.inner.fast).0.clone()
    }

    pub(crate) async fn set_fast_token(&self, token: Option<FastToken>) {
        let sink = {
            let mut guard = unpoisoned(&self.inner.fast);
            guard.0.clone_from(&token);
            guard.1.clone()
        };
        if let Some(sink) = sink {
            sink(token).await;
        }
    }

    /// The login pins as of the last successful login.
    pub fn pins(&self) -> LoginPins {
        *unpoisoned(&self.inner.pins)
    }

    pub(crate) fn set_pins(&self, pins: LoginPins) {
        *unpoisoned(&self.inner.pins) = pins;
    }

    /// Find the server, connect, secure the connection and open the XML stream; the stream
    /// features are not read yet. The info has everything but the login.
    pub(crate) async fn open(
        &self,
        jid: &jid::Jid,
        ns: &'static str,
        timeouts: Timeouts,
    ) -> Result<
        (
            PendingFeaturesRecv<BufStream<TlsStream<TcpStream>>>,
            ConnectionInfo,
        ),
        ConnectError,
    > {
        let domain = jid.domain().as_str();
        if domain != self.inner.domain {
            return Err(ConnectError::invalid_settings(format!(
                "this connection was set up for {}, not for {domain}",
                self.inner.domain
            )));
        }
        let candidates = self.candidates(domain).await?;
        let (mut last, mut bogus) = (None, None);
        for candidate in &candidates {
            match self.open_candidate(candidate, jid, ns, timeouts).await {
                Ok(stream) => return Ok(stream),
                // Bogus TLSA records rule out this target, not the others (RFC 7673 §3);
                // if nothing else connects, this is what the user must hear.
                Err(e @ ConnectError::DnssecFailed { .. }) => {
                    warn!(host = %candidate.host, port = candidate.port, error = %e, "target skipped: its TLSA records fail DNSSEC validation");
                    bogus.get_or_insert(e);
                }
                Err(e) if e.is_fatal() => return Err(e),
                Err(e) => {
                    info!(host = %candidate.host, port = candidate.port, error = %e, "candidate failed");
                    last = Some(e);
                }
            }
        }
        Err(bogus
            .or(last)
            .unwrap_or_else(|| ConnectError::unreachable(domain, "no server address found")))
    }

    async fn candidates(&self, domain: &str) -> Result<Vec<Candidate>, ConnectError> {
        if let Some((host, port)) = &self.inner.server {
            let transport = match self.inner.tls {
                TlsMode::DirectTls => Transport::DirectTls,
                TlsMode::Auto | TlsMode::StartTls => Transport::StartTls,
            };
            return Ok(vec![Candidate {
                host: host.clone(),
                port: *port,
                transport,
                secure: false,
            }]);
        }
        let resolver = self
            .inner
            .resolver
            .as_ref()
            .map_err(|e| ConnectError::unreachable(domain, e.clone()))?;
        let services = match self.inner.tls {
            TlsMode::Auto => Services::Both,
            TlsMode::StartTls => Services::StartTlsOnly,
            TlsMode::DirectTls => Services::DirectTlsOnly,
        };
        let ascii = tls::server_name(domain)?.to_str().into_owned();
        let (direct, starttls) = tokio::join!(
            async {
                if services == Services::StartTlsOnly {
                    Ok(SrvAnswer::Absent)
                } else {
                    self.lookup_srv(resolver, dns::XMPPS_SERVICE, &ascii, Transport::DirectTls)
                        .await
                }
            },
            async {
                if services == Services::DirectTlsOnly {
                    Ok(SrvAnswer::Absent)
                } else {
                    self.lookup_srv(resolver, dns::XMPP_SERVICE, &ascii, Transport::StartTls)
                        .await
                }
            }
        );
        let (direct, starttls) = (
            direct.map_err(|b| dnssec_failed(domain, b))?,
            starttls.map_err(|b| dnssec_failed(domain, b))?,
        );
        match dns::plan(&ascii, services, &direct, &starttls, &mut dns::random_pick) {
            Plan::Candidates(c) => {
                debug!(candidates = ?c, "server candidates");
                Ok(c)
            }
            Plan::NotOffered => Err(ConnectError::unreachable(
                domain,
                "the domain says it offers no XMPP service (SRV target \".\")",
            )),
        }
    }

    /// One SRV lookup: DNSSEC-validated when possible (secure records allow DANE), else
    /// plain. A bogus answer is an error.
    async fn lookup_srv(
        &self,
        resolver: &TokioResolver,
        service: &str,
        domain: &str,
        transport: Transport,
    ) -> Result<SrvAnswer, dnssec::Bogus> {
        if let Some(validator) = &self.inner.validator
            && let Some(answer) = validator.srv(service, domain, transport).await?
        {
            return Ok(answer);
        }
        Ok(dns::lookup_srv(resolver, service, domain, transport).await)
    }

    /// The TLS configuration for `candidate`: DANE when its SRV record was secure and its
    /// secure TLSA records include a usable one (RFC 7673 §3), else PKIX. `true` for DANE.
    async fn tls_config(
        &self,
        candidate: &Candidate,
        domain: &str,
    ) -> Result<(Arc<ClientConfig>, bool), ConnectError> {
        let direct = candidate.transport == Transport::DirectTls;
        let pkix = if direct {
            &self.inner.direct_tls_config
        } else {
            &self.inner.starttls_config
        };
        let Some(validator) = self.inner.validator.as_ref().filter(|_| candidate.secure) else {
            return Ok((pkix.clone(), false));
        };
        let records = validator
            .tlsa(&candidate.host, candidate.port)
            .await
            .map_err(|b| dnssec_failed(domain, b))?;
        // Reference identities for DANE-TA: the service domain and the SRV target.
        let names = vec![
            tls::server_name(domain)?,
            tls::server_name(&candidate.host)?,
        ];
        match DaneVerifier::new(&records, names, tls::provider()) {
            Some(verifier) => {
                info!(host = %candidate.host, port = candidate.port, "DANE: the certificate must match the secure TLSA records");
                Ok((tls::dane_config(verifier, direct)?, true))
            }
            None => {
                debug!(host = %candidate.host, port = candidate.port, records = records.len(), "no usable secure TLSA record; PKIX");
                Ok((pkix.clone(), false))
            }
        }
    }

    async fn open_candidate(
        &self,
        candidate: &Candidate,
        jid: &jid::Jid,
        ns: &'static str,
        timeouts: Timeouts,
    ) -> Result<
        (
            PendingFeaturesRecv<BufStream<TlsStream<TcpStream>>>,
            ConnectionInfo,
        ),
        ConnectError,
    > {
        let domain = jid.domain().as_str();
        let resolver = self.inner.resolver.as_ref().map_err(String::as_str);
        let (config, dane) = self.tls_config(candidate, domain).await?;
        let tcp = dns::connect_tcp(resolver, &candidate.host, candidate.port, domain).await?;
        let tls = match candidate.transport {
            Transport::StartTls => {
                let tcp = tls::negotiate_starttls(tcp, domain, ns, timeouts).await?;
                tls::handshake(config, tcp, domain).await?
            }
            Transport::DirectTls => tls::handshake(config, tcp, domain).await?,
        };
        let info = ConnectionInfo {
            host: candidate.host.clone(),
            port: candidate.port,
            direct_tls: candidate.transport == Transport::DirectTls,
            tls_version: match tls.get_ref().1.protocol_version() {
                Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3".to_owned(),
                Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2".to_owned(),
                other => format!("{other:?}"),
            },
            dane,
            mechanism: String::new(),
            sasl2: false,
            fast: false,
            channel_binding: None,
            bound_inline: false,
            resumed_inline: false,
            jid: None,
        };
        let bare = jid.to_bare();
        let header = StreamHeader {
            to: Some(domain.into()),
            from: Some(bare.as_str().into()),
            id: None,
        };
        let stream = initiate_stream(BufStream::new(tls), ns, header, timeouts)
            .await
            .map_err(|e| ConnectError::from_io(domain, &e))?;
        Ok((stream, info))
    }
}

fn dnssec_failed(domain: &str, bogus: dnssec::Bogus) -> ConnectError {
    ConnectError::DnssecFailed {
        domain: domain.to_owned(),
        what: bogus.what,
    }
}

/// The value behind a lock, also after a thread panicked while holding it: the values kept
/// here (pins, the FAST token) are always whole.
fn unpoisoned<T>(lock: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    lock.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl ServerConnector for Connector {
    type Stream = BufStream<TlsStream<TcpStream>>;

    async fn connect(
        &self,
        jid: &jid::Jid,
        ns: &'static str,
        timeouts: Timeouts,
    ) -> Result<(PendingFeaturesRecv<Self::Stream>, ChannelBinding), tokio_xmpp::Error> {
        // Channel binding (SCRAM-*-PLUS) is not implemented yet.
        let (stream, _) = self.open(jid, ns, timeouts).await?;
        Ok((stream, ChannelBinding::None))
    }
}
