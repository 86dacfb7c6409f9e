//! Login: everything between the secured stream and the bound session.
//!
//! Two ways in, chosen by what the server offers:
//! - **SASL2** (XEP-0388) when offered: one exchange that also binds the session (Bind2,
//!   XEP-0386) and enables carbons and stream management, so a fresh session costs no
//!   extra round trips. When the stream holds a resumable XEP-0198 session and the server
//!   takes XEP-0198 inline, the same exchange resumes it (with a Bind2 request in case it
//!   cannot be resumed); without inline XEP-0198 nothing is bound and the `StanzaStream`
//!   resumes it right after.
//! - **SASL** (RFC 6120) otherwise, then a stream restart; binding is left to the
//!   `StanzaStream`.
//!
//! Mechanisms, most preferred first: SCRAM-SHA-256-PLUS, SCRAM-SHA-1-PLUS (channel
//! binding `tls-exporter`, RFC 9266, on TLS 1.3, or `tls-server-end-point`, RFC 5929, when
//! the server lists only that), SCRAM-SHA-256, SCRAM-SHA-1, PLAIN (TLS is always on); never
//! ANONYMOUS. The SCRAM arithmetic is the `sasl` crate's; this module
//! drives the exchange so that it can check what the server signs:
//! - XEP-0474: a server-first-message with `h` must hash exactly the mechanism and
//!   channel-binding lists we were shown, or the login is refused as tampered with;
//! - pinning: once an account logged in with SCRAM, PLAIN is refused; once with channel
//!   binding, a login without it is refused unless XEP-0474 vouches for the new lists.
//!
//! FAST (XEP-0484): every SASL2 password login asks for a token (HT-SHA-256-EXPR, bound to
//! the TLS connection, where possible); later logins use it instead of the password — one
//! HMAC instead of SCRAM's key stretching, and the password never leaves the device again.
//! The server proves it knows the token too. A refused token is forgotten and the same
//! attempt goes on with the password.

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures::{SinkExt, StreamExt};
use sasl::client::Mechanism;
use sasl::client::mechanisms::{Plain, Scram};
use sasl::common::scram::{Sha1, Sha256};
use sasl::common::{ChannelBinding, parse_frame};
use sha2::Digest as _;
use tokio::io::BufStream;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_xmpp::parsers::{bind2, ns, sasl as sasl1, sasl2, sm};
use tokio_xmpp::stanzastream::{BoundSession, Connection};
use tokio_xmpp::xmlstream::{
    FallibleStreamElement, ReadError, StreamHeader, Timeouts, XmlStream, XmppStreamElement,
};
use tracing::{debug, info, warn};
use xmpp_parsers::minidom::Element;
use xmpp_parsers::stream_features::StreamFeatures;

use super::error::ConnectError;
use super::tls::features_error;
use super::{ConnectionInfo, Connector};

type Io = BufStream<TlsStream<TcpStream>>;

/// The mechanisms Starling uses, most preferred first.
pub(super) const MECHANISMS: [&str; 5] = [
    "SCRAM-SHA-256-PLUS",
    "SCRAM-SHA-1-PLUS",
    "SCRAM-SHA-256",
    "SCRAM-SHA-1",
    "PLAIN",
];

/// The channel-binding types Starling implements: RFC 9266 (TLS 1.3 only), and RFC 5929's
/// certificate hash where the server lists only that (XEP-0440).
pub(super) const TLS_EXPORTER: &str = "tls-exporter";
pub(super) const TLS_SERVER_END_POINT: &str = "tls-server-end-point";

/// The channel-binding values this TLS connection has.
#[derive(Debug, Clone, Default)]
pub(super) struct Bindings {
    /// `tls-exporter` (TLS 1.3).
    pub exporter: Option<Vec<u8>>,
    /// `tls-server-end-point`, if the certificate's signature names one hash.
    pub end_point: Option<Vec<u8>>,
}

/// How long one login (connect, TLS, SASL, bind) may take before it counts as failed and
/// is retried: a server that stops answering in the middle must not hang the account.
const LOGIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(45);

/// The Bind2 tag: the server makes the resource `Starling~…` from it and the user agent.
const BIND2_TAG: &str = "Starling";

/// What earlier logins of this account proved about its server (not secret).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoginPins {
    /// A SCRAM mechanism was used: PLAIN is refused from now on.
    pub scram: bool,
    /// Channel binding (-PLUS) was used: a login without it is refused unless XEP-0474
    /// shows the server really changed its offer.
    pub channel_binding: bool,
}

impl LoginPins {
    /// The pins after a successful login described by `info`.
    pub fn after(self, info: &ConnectionInfo) -> LoginPins {
        LoginPins {
            scram: self.scram || info.mechanism.starts_with("SCRAM-"),
            channel_binding: self.channel_binding || info.channel_binding.is_some(),
        }
    }
}

/// A XEP-0484 FAST token. A secret like the password: kept in the keyring (or the sealed
/// secrets file), never in SQLite or logs (`Debug` shows only the mechanism).
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FastToken {
    /// `HT-SHA-256-EXPR` or `HT-SHA-256-NONE`.
    pub mechanism: String,
    pub secret: String,
    /// Unix seconds after which the server no longer accepts it.
    pub expires_at: i64,
}

impl std::fmt::Debug for FastToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastToken")
            .field("mechanism", &self.mechanism)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Keeps the account's new FAST token (or forgets it on `None`); the login waits for it,
/// so a token the server issued is stored before the session is used.
pub type FastSink = std::sync::Arc<
    dyn Fn(Option<FastToken>) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync,
>;

/// The FAST mechanisms Starling knows, most preferred first.
const FAST_MECHANISMS: [&str; 2] = ["HT-SHA-256-EXPR", "HT-SHA-256-NONE"];

/// What the caller knows about this login.
#[derive(Debug, Clone, Default)]
pub struct LoginOptions {
    /// The stream holds this resumable XEP-0198 session. Resume it inside SASL2 when the
    /// server offers that (binding a fresh session in the same exchange in case it cannot
    /// be resumed); otherwise bind nothing and let the stream resume it after login.
    pub resume: Option<sm::Resume>,
    /// Log in with the FAST token alone and have the server invalidate it (XEP-0484):
    /// no password, no binding, no new token. See [`invalidate_fast_token`].
    pub invalidate_token: bool,
}

/// The offered mechanisms Starling is willing to use (drops ANONYMOUS, unknown ones).
pub(super) fn usable_mechanisms(offered: &BTreeSet<String>) -> BTreeSet<String> {
    offered
        .iter()
        .filter(|m| MECHANISMS.contains(&m.as_str()))
        .cloned()
        .collect()
}

/// The mechanism, and how SCRAM's GS2 header is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Choice {
    pub mechanism: &'static str,
    /// `p=tls-exporter`, `y` (we bind, the server seems not to) or `n`.
    pub binding: ChannelBinding,
}

/// What the server offered, as signed by XEP-0474.
#[derive(Debug, Clone, Default)]
pub(super) struct Offer {
    pub mechanisms: BTreeSet<String>,
    /// XEP-0440's list, if the server sent one.
    pub channel_bindings: Option<Vec<String>>,
}

impl Offer {
    fn from_features(features: &StreamFeatures, sasl2: bool) -> Offer {
        let mechanisms = match (&features.sasl2, sasl2) {
            (Some(auth), true) => auth.mechanisms.iter().cloned().collect(),
            _ => features.sasl_mechanisms.clone(),
        };
        let channel_bindings = features.sasl_cb.as_ref().map(|cb| {
            cb.types
                .iter()
                .filter_map(|t| xso::AsXmlText::as_xml_text(t).ok())
                .map(|t| t.into_owned())
                .collect()
        });
        Offer {
            mechanisms,
            channel_bindings,
        }
    }

    /// XEP-0474 §3.1: the string the server hashes.
    pub(super) fn ssdp_input(&self) -> Vec<u8> {
        // A BTreeSet of Strings iterates in "i;octet" order already.
        let mechanisms: Vec<&str> = self.mechanisms.iter().map(String::as_str).collect();
        let mut s = mechanisms.join("\u{1e}");
        if let Some(cb) = &self.channel_bindings {
            let mut cb: Vec<&str> = cb.iter().map(String::as_str).collect();
            cb.sort_unstable();
            s.push('\u{1f}');
            s.push_str(&cb.join("\u{1e}"));
        }
        s.into_bytes()
    }

    /// The channel binding to use with -PLUS: `tls-exporter` where we have it and the
    /// server lists it (or lists nothing: then it is the only one tried), else
    /// `tls-server-end-point` only where the server lists it.
    fn binding(&self, ours: &Bindings) -> Option<ChannelBinding> {
        let listed = |t: &str| {
            self.channel_bindings
                .as_ref()
                .is_some_and(|cb| cb.iter().any(|c| c == t))
        };
        match (&ours.exporter, &ours.end_point) {
            (Some(e), _) if self.channel_bindings.is_none() || listed(TLS_EXPORTER) => {
                Some(ChannelBinding::TlsExporter(e.clone()))
            }
            (_, Some(h)) if listed(TLS_SERVER_END_POINT) => {
                Some(ChannelBinding::TlsServerEndPoint(h.clone()))
            }
            _ => None,
        }
    }
}

/// Pick the mechanism: the first of [`MECHANISMS`] offered and usable, with the GS2 flag
/// RFC 5802 asks for.
pub(super) fn choose(
    offer: &Offer,
    ours: &Bindings,
    pins: LoginPins,
    domain: &str,
) -> Result<Choice, ConnectError> {
    let offered = usable_mechanisms(&offer.mechanisms);
    let plus_offered = offer.mechanisms.iter().any(|m| m.ends_with("-PLUS"));
    let can_bind = offer.binding(ours);
    for &mechanism in &MECHANISMS {
        if !offered.contains(mechanism) {
            continue;
        }
        let binding = if mechanism.ends_with("-PLUS") {
            match &can_bind {
                Some(binding) => binding.clone(),
                None => continue,
            }
        } else if plus_offered || (ours.exporter.is_none() && ours.end_point.is_none()) {
            // The server binds but not in a way we can: say "n" (XEP-0474 §6, rule 6).
            ChannelBinding::None
        } else {
            // We could bind, the server offers no -PLUS: "y" lets it detect a stripped list.
            ChannelBinding::Unsupported
        };
        if mechanism == "PLAIN" && pins.scram {
            return Err(ConnectError::Tampered {
                domain: domain.to_owned(),
                detail: "it now offers only PLAIN, but this account has logged in with SCRAM \
                         before"
                    .to_owned(),
            });
        }
        return Ok(Choice { mechanism, binding });
    }
    let offered = offer
        .mechanisms
        .iter()
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    Err(ConnectError::NoSupportedMechanism {
        domain: domain.to_owned(),
        offered: if offered.is_empty() {
            "none".to_owned()
        } else {
            offered
        },
    })
}

/// XEP-0484's HT-SHA-256-* (draft-schmaus-kitten-sasl-ht): the token's HMAC over the
/// channel binding, and the server's answer that proves it has the token too.
struct HashedToken {
    initial: Vec<u8>,
    responder: Vec<u8>,
}

impl HashedToken {
    fn new(username: &str, secret: &str, cb: &[u8]) -> HashedToken {
        let mac = |label: &[u8]| {
            use hmac::Mac as _;
            let mut mac = <hmac::Hmac<Sha256Hash> as hmac::Mac>::new_from_slice(secret.as_bytes())
                .expect("HMAC takes keys of any length");
            mac.update(label);
            mac.update(cb);
            mac.finalize().into_bytes().to_vec()
        };
        let mut initial = username.as_bytes().to_vec();
        initial.push(0);
        initial.extend(mac(b"Initiator"));
        HashedToken {
            initial,
            responder: mac(b"Responder"),
        }
    }
}

enum Mech {
    Sasl(Box<dyn Mechanism + Send>),
    Token(HashedToken),
}

/// One SASL exchange: the mechanism plus the checks on what the server sends.
struct Exchange {
    mechanism: Mech,
    name: String,
    offer: Offer,
    /// The account pinned channel binding and this login has none: only a verified
    /// XEP-0474 hash lets it go on.
    needs_ssdp: bool,
    /// We told the server we bind but it seemed not to ("y"): if it answers that this is
    /// wrong, the -PLUS mechanisms were stripped on the way.
    said_y: bool,
    /// The channel-binding type, if the login is bound to our TLS connection (-PLUS, or a
    /// FAST -EXPR token).
    binding: Option<&'static str>,
    challenges: u32,
    domain: String,
}

impl Exchange {
    fn new(
        choice: &Choice,
        offer: Offer,
        pins: LoginPins,
        username: &str,
        password: &str,
        domain: &str,
    ) -> Result<Exchange, ConnectError> {
        let failed =
            |e: String| ConnectError::protocol(domain, format!("cannot start the login: {e}"));
        let binding = choice.binding.clone();
        let mechanism: Box<dyn Mechanism + Send> = match choice.mechanism {
            "SCRAM-SHA-256" | "SCRAM-SHA-256-PLUS" => Box::new(
                Scram::<Sha256>::new(username, password, binding)
                    .map_err(|e| failed(format!("{e:?}")))?,
            ),
            "SCRAM-SHA-1" | "SCRAM-SHA-1-PLUS" => Box::new(
                Scram::<Sha1>::new(username, password, binding)
                    .map_err(|e| failed(format!("{e:?}")))?,
            ),
            _ => Box::new(Plain::new(username, password)),
        };
        let binding = match choice.binding {
            ChannelBinding::TlsExporter(_) => Some(TLS_EXPORTER),
            ChannelBinding::TlsServerEndPoint(_) => Some(TLS_SERVER_END_POINT),
            _ => None,
        };
        let needs_ssdp = pins.channel_binding && binding.is_none();
        if needs_ssdp && choice.mechanism == "PLAIN" {
            return Err(lost_channel_binding(domain));
        }
        Ok(Exchange {
            mechanism: Mech::Sasl(mechanism),
            name: choice.mechanism.to_owned(),
            offer,
            needs_ssdp,
            said_y: choice.binding == ChannelBinding::Unsupported,
            binding,
            challenges: 0,
            domain: domain.to_owned(),
        })
    }

    /// A SASL failure as a typed error. A server that binds channels refuses a "y"
    /// (RFC 5802 §6) with malformed-request: then the offer we saw had its -PLUS
    /// mechanisms removed on the way.
    fn failure(&self, who: &str, condition: &sasl1::DefinedCondition) -> ConnectError {
        if self.binding.is_some() && *condition == sasl1::DefinedCondition::MalformedRequest {
            return ConnectError::Tampered {
                domain: self.domain.clone(),
                detail: "the server's end of the encrypted connection is not the one we are \
                         talking to (channel binding failed)"
                    .to_owned(),
            };
        }
        if self.said_y && *condition == sasl1::DefinedCondition::MalformedRequest {
            return ConnectError::Tampered {
                domain: self.domain.clone(),
                detail: "the server supports channel binding, but the login methods we were \
                         shown had it removed"
                    .to_owned(),
            };
        }
        ConnectError::from_sasl_failure(who, condition)
    }

    /// A FAST login with `token` (whose mechanism the server offers).
    fn fast(token: &FastToken, username: &str, exporter: Option<&[u8]>, domain: &str) -> Exchange {
        let bound = token.mechanism.ends_with("-EXPR");
        let cb = if bound {
            exporter.unwrap_or_default()
        } else {
            &[]
        };
        Exchange {
            mechanism: Mech::Token(HashedToken::new(username, &token.secret, cb)),
            name: token.mechanism.clone(),
            offer: Offer::default(),
            needs_ssdp: false,
            said_y: false,
            binding: bound.then_some(TLS_EXPORTER),
            challenges: 0,
            domain: domain.to_owned(),
        }
    }

    fn initial(&mut self) -> Vec<u8> {
        match &mut self.mechanism {
            Mech::Sasl(m) => m.initial(),
            Mech::Token(t) => t.initial.clone(),
        }
    }

    /// Answer a challenge; the first one (SCRAM's server-first-message) is checked.
    fn respond(&mut self, challenge: &[u8]) -> Result<Vec<u8>, ConnectError> {
        self.challenges += 1;
        if self.challenges == 1 && self.name.starts_with("SCRAM-") {
            self.check_ssdp(challenge)?;
        }
        let Mech::Sasl(mechanism) = &mut self.mechanism else {
            return Err(ConnectError::protocol(
                &self.domain,
                "the server sent a challenge to a FAST token login",
            ));
        };
        mechanism.response(challenge).map_err(|e| {
            ConnectError::protocol(&self.domain, format!("the login exchange failed: {e}"))
        })
    }

    /// XEP-0474 §3.2.
    fn check_ssdp(&self, server_first: &[u8]) -> Result<(), ConnectError> {
        let attributes = parse_frame(server_first).map_err(|_| {
            ConnectError::protocol(&self.domain, "the server's login challenge is not UTF-8")
        })?;
        let Some(claimed) = attributes.get("h") else {
            if self.needs_ssdp {
                return Err(lost_channel_binding(&self.domain));
            }
            return Ok(());
        };
        let input = self.offer.ssdp_input();
        let ours = if self.name.starts_with("SCRAM-SHA-256") {
            BASE64.encode(Sha256Hash::digest(&input))
        } else {
            BASE64.encode(sha1::Sha1::digest(&input))
        };
        if *claimed != ours {
            return Err(ConnectError::Tampered {
                domain: self.domain.clone(),
                detail: "the list of login methods we were shown is not the one the server sent \
                         (XEP-0474)"
                    .to_owned(),
            });
        }
        debug!("XEP-0474: the offered mechanisms and channel bindings are as the server sent them");
        Ok(())
    }

    /// Check the server's final message (SCRAM's server signature, FAST's responder MAC).
    fn success(&mut self, data: Option<&[u8]>) -> Result<(), ConnectError> {
        let data = data.unwrap_or_default();
        match &mut self.mechanism {
            Mech::Sasl(m) if self.name.starts_with("SCRAM-") => {
                m.success(data).map_err(|e| ConnectError::Tampered {
                    domain: self.domain.clone(),
                    detail: format!("the server could not prove it knows the password ({e})"),
                })
            }
            Mech::Sasl(_) => Ok(()),
            Mech::Token(t) => {
                use subtle::ConstantTimeEq as _;
                if bool::from(t.responder.as_slice().ct_eq(data)) {
                    Ok(())
                } else {
                    Err(ConnectError::Tampered {
                        domain: self.domain.clone(),
                        detail: "the server could not prove it knows the login token".to_owned(),
                    })
                }
            }
        }
    }
}

/// A server that no longer offers channel binding to an account that has used it.
fn lost_channel_binding(domain: &str) -> ConnectError {
    ConnectError::Tampered {
        domain: domain.to_owned(),
        detail: "it no longer offers channel binding, which this account has used before"
            .to_owned(),
    }
}

type Sha256Hash = sha2::Sha256;

/// The channel-binding values of this connection.
fn bindings(stream: &Io) -> Bindings {
    Bindings {
        exporter: tls_exporter(stream),
        end_point: tls_server_end_point(stream),
    }
}

/// RFC 5929 §4.1: the hash of the server's certificate, with the hash its signature uses
/// (SHA-256 for MD5 and SHA-1). Undefined (`None`) for signatures without one hash
/// (Ed25519, RSA-PSS with its hash in parameters).
fn tls_server_end_point(stream: &Io) -> Option<Vec<u8>> {
    use x509_cert::der::Decode as _;
    let (_, session) = stream.get_ref().get_ref();
    let der = session.peer_certificates()?.first()?;
    let cert = x509_cert::Certificate::from_der(der.as_ref()).ok()?;
    let oid = cert.signature_algorithm.oid.to_string();
    Some(match oid.as_str() {
        // md5WithRSA, sha1WithRSA, sha256WithRSA, ecdsa-with-SHA1, ecdsa-with-SHA256
        "1.2.840.113549.1.1.4"
        | "1.2.840.113549.1.1.5"
        | "1.2.840.113549.1.1.11"
        | "1.2.840.10045.4.1"
        | "1.2.840.10045.4.3.2" => Sha256Hash::digest(der).to_vec(),
        // sha384WithRSA, ecdsa-with-SHA384
        "1.2.840.113549.1.1.12" | "1.2.840.10045.4.3.3" => sha2::Sha384::digest(der).to_vec(),
        // sha512WithRSA, ecdsa-with-SHA512
        "1.2.840.113549.1.1.13" | "1.2.840.10045.4.3.4" => sha2::Sha512::digest(der).to_vec(),
        _ => return None,
    })
}

/// The `tls-exporter` channel-binding value (RFC 9266), on TLS 1.3 only.
fn tls_exporter(stream: &Io) -> Option<Vec<u8>> {
    let (_, session) = stream.get_ref().get_ref();
    if session.protocol_version() != Some(tokio_rustls::rustls::ProtocolVersion::TLSv1_3) {
        return None;
    }
    let mut out = vec![0u8; 32];
    match session.export_keying_material(&mut out, b"EXPORTER-Channel-Binding", None) {
        Ok(_) => Some(out),
        Err(e) => {
            warn!(error = %e, "no tls-exporter value; logging in without channel binding");
            None
        }
    }
}

/// Connect, secure and log in, and return what `StanzaStream`'s connector must deliver,
/// with how the connection is secured. Uses the account's FAST token when the server
/// takes it; a refused token is forgotten and the login goes on with the password.
pub async fn authenticate(
    connector: &Connector,
    jid: &jid::Jid,
    password: &str,
    timeouts: Timeouts,
    options: &LoginOptions,
) -> Result<(Connection, ConnectionInfo), ConnectError> {
    let domain = jid.domain().as_str();
    let bounded = |may_use_token| {
        let attempt = login(connector, jid, password, timeouts, options, may_use_token);
        async move {
            tokio::time::timeout(LOGIN_TIMEOUT, attempt)
                .await
                .map_err(|_| {
                    ConnectError::unreachable(domain, "the server did not finish the login in time")
                })?
        }
    };
    match bounded(true).await? {
        Attempt::Done(done) => Ok(*done),
        Attempt::TokenRefused => {
            info!(jid = %jid.to_bare(), "the server refused the FAST token; logging in with the password");
            connector.set_fast_token(None).await;
            match bounded(false).await? {
                Attempt::Done(done) => Ok(*done),
                Attempt::TokenRefused => Err(ConnectError::protocol(
                    domain,
                    "the server refused a login token that was not sent",
                )),
            }
        }
    }
}

enum Attempt {
    Done(Box<(Connection, ConnectionInfo)>),
    TokenRefused,
}

/// Logs in once with `token` alone, asking the server to invalidate it (XEP-0484
/// `invalidate`), and leaves: for an account being removed, so that a copy of the token
/// (a backup of the secrets, another device's disk) cannot log in any more. `Ok(false)`
/// when there was nothing to invalidate: no usable token here, or the server refused it.
pub async fn invalidate_fast_token(
    connector: &Connector,
    jid: &jid::Jid,
    token: FastToken,
) -> Result<bool, ConnectError> {
    let domain = jid.domain().as_str();
    let keep_nothing: FastSink = std::sync::Arc::new(|_| Box::pin(async {}));
    connector.use_fast(Some(token), keep_nothing);
    let options = LoginOptions {
        invalidate_token: true,
        ..LoginOptions::default()
    };
    let attempt = login(connector, jid, "", Timeouts::tight(), &options, true);
    let attempt = tokio::time::timeout(LOGIN_TIMEOUT, attempt)
        .await
        .map_err(|_| {
            ConnectError::unreachable(domain, "the server did not finish the login in time")
        })??;
    match attempt {
        Attempt::Done(done) => {
            close(done.0.stream).await;
            info!(jid = %jid.to_bare(), "FAST token invalidated on the server");
            Ok(true)
        }
        Attempt::TokenRefused => Ok(false),
    }
}

/// Ends a logged-in stream politely (errors only logged: the stream is being dropped).
pub(crate) async fn close(mut stream: tokio_xmpp::stanzastream::XmppStream) {
    if let Err(e) =
        <tokio_xmpp::stanzastream::XmppStream as SinkExt<&tokio_xmpp::Stanza>>::close(&mut stream)
            .await
    {
        debug!(error = %e, "closing a one-off login stream");
    }
}

/// The FAST mechanisms the server offers inside SASL2 (XEP-0484 §3).
fn fast_offer(features: &StreamFeatures) -> Vec<String> {
    features
        .sasl2
        .as_ref()
        .and_then(|a| a.inline.as_ref())
        .into_iter()
        .flat_map(|i| i.payloads.iter())
        .filter(|p| p.is("fast", ns::FAST))
        .flat_map(|p| {
            p.children()
                .filter(|c| c.is("mechanism", ns::FAST))
                .map(Element::text)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Whether `token` can be used now: offered, not expired, and as strong as the pins ask.
fn usable_token(
    token: &FastToken,
    offered: &[String],
    exporter: bool,
    pins: LoginPins,
    now: i64,
) -> bool {
    let bound = token.mechanism.ends_with("-EXPR");
    offered.contains(&token.mechanism)
        && token.expires_at > now
        && (!bound || exporter)
        && (bound || !pins.channel_binding)
}

async fn login(
    connector: &Connector,
    jid: &jid::Jid,
    password: &str,
    timeouts: Timeouts,
    options: &LoginOptions,
    may_use_token: bool,
) -> Result<Attempt, ConnectError> {
    let domain = jid.domain().as_str();
    let bare = jid.to_bare();
    let Some(username) = jid.node() else {
        return Err(ConnectError::invalid_settings(format!(
            "{jid} has no user name; anonymous login is not supported"
        )));
    };

    let (pending, mut info) = connector.open(jid, ns::JABBER_CLIENT, timeouts).await?;
    let (features, stream) = pending
        .recv_features::<FallibleStreamElement>()
        .await
        .map_err(|e| features_error(domain, e))?;
    let bindings = bindings(stream.get_stream());
    let exporter = bindings.exporter.as_deref();
    let pins = connector.pins();
    let sasl2 = features
        .sasl2
        .as_ref()
        .is_some_and(|a| !usable_mechanisms(&a.mechanisms.iter().cloned().collect()).is_empty());
    let offer = Offer::from_features(&features, sasl2);
    let fast = if sasl2 {
        fast_offer(&features)
    } else {
        Vec::new()
    };
    let now = chrono::Utc::now().timestamp();
    let token = connector
        .fast_token()
        .filter(|t| may_use_token && usable_token(t, &fast, exporter.is_some(), pins, now));
    if options.invalidate_token && token.is_none() {
        return Ok(Attempt::TokenRefused);
    }
    let who = bare.as_str();
    let mut exchange = match &token {
        Some(token) => Exchange::fast(token, username.as_str(), exporter, domain),
        None => {
            let choice = choose(&offer, &bindings, pins, domain)?;
            Exchange::new(
                &choice,
                offer.clone(),
                pins,
                username.as_str(),
                password,
                domain,
            )?
        }
    };
    // Ask for a token on password logins (bound to the TLS connection where possible), if
    // the account keeps tokens (a one-off login check does not).
    let request = match &token {
        Some(_) => None,
        None if options.invalidate_token => None,
        None if !connector.keeps_fast_tokens() => None,
        None => FAST_MECHANISMS
            .into_iter()
            .find(|m| fast.iter().any(|f| f == m) && (!m.ends_with("-EXPR") || exporter.is_some())),
    };
    debug!(offered = ?offer.mechanisms, cb = ?offer.channel_bindings, ?fast, mechanism = %exchange.name, sasl2, "login");

    let (stream, features, session, new_token) = if sasl2 {
        let inline = features.sasl2.as_ref().and_then(|a| a.inline.as_ref());
        // XEP-0198 inline: resume the held session in the same exchange.
        let resume = options
            .resume
            .clone()
            .filter(|_| inline.is_some_and(|i| i.sm.is_some()));
        // Bind a fresh session unless the stream will resume after login.
        let bind2 = inline
            .and_then(|i| i.bind2.as_ref())
            .filter(|_| options.resume.is_none() || resume.is_some())
            .filter(|_| !options.invalidate_token);
        let steps = Sasl2Steps {
            user_agent: user_agent_id(jid),
            resume,
            bind: bind2.map(|b| b.inline_features.as_slice()),
            fast: token.is_some().then_some((now, options.invalidate_token)),
            request_token: request,
        };
        match sasl2_login(stream.retype(), &mut exchange, who, domain, steps).await {
            Ok(done) => done,
            Err(ConnectError::WrongPassword { .. } | ConnectError::LoginRefused { .. })
                if token.is_some() =>
            {
                return Ok(Attempt::TokenRefused);
            }
            Err(e) => return Err(e),
        }
    } else {
        let stream = sasl1_login(stream, &mut exchange, who, domain).await?;
        let header = StreamHeader {
            to: Some(domain.into()),
            from: Some(who.into()),
            id: None,
        };
        let stream = stream
            .initiate_reset()
            .send_header(header)
            .await
            .map_err(|e| ConnectError::from_io(domain, &e))?;
        let (features, stream) = stream
            .recv_features()
            .await
            .map_err(|e| features_error(domain, e))?;
        (stream, features, Session::default(), None)
    };
    info.mechanism = exchange.name.clone();
    info.sasl2 = sasl2;
    info.fast = token.is_some();
    info.channel_binding = exchange.binding.map(str::to_owned);
    info.bound_inline = session.bound.is_some();
    info.resumed_inline = session.resumed.is_some();
    connector.set_pins(pins.after(&info));
    if let Some(new) = new_token {
        let mechanism = token.as_ref().map(|t| t.mechanism.as_str()).or(request);
        match mechanism {
            Some(mechanism) => {
                connector
                    .set_fast_token(Some(FastToken {
                        mechanism: mechanism.to_owned(),
                        secret: new.token,
                        expires_at: new.expiry.0.timestamp(),
                    }))
                    .await;
            }
            None => warn!("the server sent a FAST token nobody asked for; ignored"),
        }
    }
    info!(jid = %bare, mechanism = %exchange.name, sasl2, fast = info.fast, bound = info.bound_inline, resumed = info.resumed_inline, "authenticated");
    Ok(Attempt::Done(Box::new((
        Connection {
            stream: stream.box_stream(),
            features,
            identity: jid.clone(),
            bound: session.bound,
            resumed: session.resumed,
        },
        info,
    ))))
}

/// A stable XEP-0388 user-agent id for this account on this device: the server keys the
/// Bind2 resource (and FAST tokens) on it. Derived from the full JID, whose resource is
/// random per account and device, so nothing more needs storing.
fn user_agent_id(jid: &jid::Jid) -> uuid::Uuid {
    let digest = Sha256Hash::digest(format!("starling user agent\0{jid}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// Read the next element, skipping soft timeouts; errors as `ConnectError`.
async fn next_element<T: xso::FromXml + std::fmt::Debug>(
    stream: &mut XmlStream<Io, T>,
    domain: &str,
) -> Result<T, ConnectError> {
    loop {
        match stream.next().await {
            Some(Ok(item)) => return Ok(item),
            Some(Err(ReadError::SoftTimeout)) => {}
            Some(Err(ReadError::HardError(e))) => return Err(ConnectError::from_io(domain, &e)),
            Some(Err(ReadError::ParseError(e))) => {
                return Err(ConnectError::protocol(
                    domain,
                    format!("invalid data from the server during login: {e}"),
                ));
            }
            Some(Err(ReadError::StreamFooterReceived)) | None => {
                return Err(ConnectError::unreachable(
                    domain,
                    "the server closed the connection during login",
                ));
            }
        }
    }
}

async fn send<T: xso::FromXml, U: xso::AsXml>(
    stream: &mut XmlStream<Io, T>,
    item: &U,
    domain: &str,
) -> Result<(), ConnectError> {
    stream
        .send(item)
        .await
        .map_err(|e| ConnectError::from_io(domain, &e))
}

/// RFC 6120 §6 SASL.
async fn sasl1_login(
    mut stream: XmlStream<Io, FallibleStreamElement>,
    exchange: &mut Exchange,
    who: &str,
    domain: &str,
) -> Result<XmlStream<Io, FallibleStreamElement>, ConnectError> {
    let mechanism = exchange.name.parse::<sasl1::Mechanism>().map_err(|e| {
        ConnectError::protocol(
            domain,
            format!("cannot name {} in SASL: {e}", exchange.name),
        )
    })?;
    let auth = sasl1::Auth {
        mechanism,
        data: exchange.initial(),
    };
    send(
        &mut stream,
        &XmppStreamElement::Sasl(sasl1::Nonza::Auth(auth)),
        domain,
    )
    .await?;
    loop {
        let element = next_element(&mut stream, domain)
            .await?
            .into_read_error()
            .map_err(|e| {
                ConnectError::protocol(domain, format!("invalid data from the server: {e:?}"))
            })?;
        match element {
            XmppStreamElement::Sasl(sasl1::Nonza::Challenge(c)) => {
                let data = exchange.respond(&c.data)?;
                let response = sasl1::Nonza::Response(sasl1::Response { data });
                send(&mut stream, &XmppStreamElement::Sasl(response), domain).await?;
            }
            XmppStreamElement::Sasl(sasl1::Nonza::Success(s)) => {
                exchange.success(Some(&s.data))?;
                return Ok(stream);
            }
            XmppStreamElement::Sasl(sasl1::Nonza::Failure(f)) => {
                return Err(exchange.failure(who, &f.defined_condition));
            }
            XmppStreamElement::StreamError(e) => {
                return Err(ConnectError::from_stream_error(domain, &e.0));
            }
            other => debug!(element = ?other, "ignored during login"),
        }
    }
}

/// The optional parts of a SASL2 `<authenticate/>`.
struct Sasl2Steps<'a> {
    user_agent: uuid::Uuid,
    /// Resume this XEP-0198 session inline.
    resume: Option<sm::Resume>,
    /// Bind inline (XEP-0386), given the server's inline features.
    bind: Option<&'a [String]>,
    /// A FAST token login, with the XEP-0484 counter (seconds: it only ever grows) and
    /// whether the server is to invalidate the token.
    fast: Option<(i64, bool)>,
    /// Ask for a FAST token for this mechanism.
    request_token: Option<&'static str>,
}

/// What a SASL2 login settled besides authentication.
#[derive(Debug, Default)]
struct Session {
    /// A fresh session bound inline (XEP-0386).
    bound: Option<BoundSession>,
    /// The previous session, resumed inline (XEP-0198).
    resumed: Option<sm::Resumed>,
}

/// XEP-0388 SASL2. Returns the stream (no restart), the features the server sends after
/// success, the session and a new FAST token.
async fn sasl2_login(
    mut stream: XmlStream<Io, Element>,
    exchange: &mut Exchange,
    who: &str,
    domain: &str,
    steps: Sasl2Steps<'_>,
) -> Result<
    (
        XmlStream<Io, FallibleStreamElement>,
        StreamFeatures,
        Session,
        Option<xmpp_parsers::fast::Token>,
    ),
    ConnectError,
> {
    let mut payloads = Vec::new();
    if let Some(resume) = steps.resume {
        payloads.push(Element::from(resume));
    }
    if let Some(inline) = steps.bind {
        let mut bind_payloads = Vec::new();
        if inline.iter().any(|f| f == ns::CARBONS) {
            bind_payloads.push(Element::from(xmpp_parsers::carbons::Enable));
        }
        if inline.iter().any(|f| f == ns::SM) {
            bind_payloads.push(Element::from(sm::Enable {
                max: None,
                resume: true,
            }));
        }
        payloads.push(Element::from(bind2::BindQuery {
            tag: Some(BIND2_TAG.to_owned()),
            payloads: bind_payloads,
        }));
    }
    if let Some((count, invalidate)) = steps.fast {
        payloads.push(Element::from(xmpp_parsers::fast::FastResponse {
            count: u32::try_from(count).unwrap_or(u32::MAX),
            invalidate,
        }));
    }
    if let Some(mechanism) = steps.request_token {
        payloads.push(Element::from(xmpp_parsers::fast::RequestToken {
            mechanism: mechanism.to_owned(),
        }));
    }
    let authenticate = sasl2::Authenticate {
        mechanism: exchange.name.clone(),
        initial_response: Some(exchange.initial()),
        user_agent: sasl2::UserAgent {
            id: steps.user_agent,
            software: Some("Starling".to_owned()),
            device: None,
        },
        payloads,
    };
    send(&mut stream, &authenticate, domain).await?;
    let success = loop {
        let element = next_element(&mut stream, domain).await?;
        if element.is("challenge", ns::SASL2) {
            let challenge = sasl2::Challenge::try_from(element).map_err(|e| {
                ConnectError::protocol(domain, format!("invalid login challenge: {e}"))
            })?;
            let data = exchange.respond(&challenge.sasl_data)?;
            send(&mut stream, &sasl2::Response { sasl_data: data }, domain).await?;
        } else if element.is("success", ns::SASL2) {
            break sasl2::Success::try_from(element).map_err(|e| {
                ConnectError::protocol(domain, format!("invalid login success: {e}"))
            })?;
        } else if element.is("failure", ns::SASL2) {
            return Err(sasl2_failure(exchange, who, &element));
        } else if element.is("continue", ns::SASL2) {
            return Err(ConnectError::protocol(
                domain,
                "the server asks for a further login step (XEP-0388 task) Starling does not support",
            ));
        } else if element.is("error", ns::STREAM) {
            let e = xmpp_parsers::stream_error::StreamError::try_from(element).map_err(|e| {
                ConnectError::protocol(domain, format!("invalid stream error: {e}"))
            })?;
            return Err(ConnectError::from_stream_error(domain, &e));
        } else {
            debug!(element = %String::from(&element), "ignored during login");
        }
    };
    exchange.success(success.additional_data.as_deref())?;
    let mut session = Session::default();
    let mut token = None;
    for payload in &success.payloads {
        if payload.is("resumed", ns::SM) {
            match sm::Resumed::try_from(payload.clone()) {
                Ok(resumed) => session.resumed = Some(resumed),
                Err(e) => {
                    return Err(ConnectError::protocol(
                        domain,
                        format!("invalid stream resumption in the login success: {e}"),
                    ));
                }
            }
            continue;
        }
        if payload.is("failed", ns::SM) {
            debug!("the server could not resume the previous session during login");
            continue;
        }
        if payload.is("token", ns::FAST) {
            match xmpp_parsers::fast::Token::try_from(payload.clone()) {
                Ok(t) => token = Some(t),
                Err(e) => warn!(error = %e, "unreadable FAST token; ignored"),
            }
            continue;
        }
        if payload.is("bound", ns::BIND2) {
            let jid = match success.authorization_identifier.clone().try_into_full() {
                Ok(full) => full,
                Err(bare) => {
                    return Err(ConnectError::protocol(
                        domain,
                        format!("the server bound a session but named no resource ({bare})"),
                    ));
                }
            };
            let sm = payload
                .get_child("enabled", ns::SM)
                .cloned()
                .and_then(|e| sm::Enabled::try_from(e).ok());
            session.bound = Some(BoundSession { jid, sm });
        } else if payload.is("failed", ns::BIND2) {
            warn!("the server could not bind a session during login; binding afterwards");
        }
    }
    // No stream restart: the server sends the features of the authenticated stream.
    let features = loop {
        let element = next_element(&mut stream, domain).await?;
        if element.is("features", ns::STREAM) {
            break StreamFeatures::try_from(element).map_err(|e| {
                ConnectError::protocol(domain, format!("invalid stream features: {e}"))
            })?;
        }
        debug!(element = %String::from(&element), "ignored while waiting for features");
    };
    if session.resumed.is_some() && session.bound.is_some() {
        // XEP-0386: a successful resumption makes the server ignore the bind request.
        warn!("the server both resumed and bound a session during login; resuming");
        session.bound = None;
    }
    Ok((stream.retype(), features, session, token))
}

/// A XEP-0388 `<failure/>` as a typed error.
fn sasl2_failure(exchange: &Exchange, who: &str, element: &Element) -> ConnectError {
    let condition = element
        .children()
        .filter(|c| c.ns() == ns::SASL)
        .find_map(|c| sasl1::DefinedCondition::try_from(c.clone()).ok());
    match condition {
        Some(condition) => exchange.failure(who, &condition),
        None => ConnectError::protocol(
            &exchange.domain,
            "the server refused the login without a reason",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn offer(items: &[&str]) -> Offer {
        Offer {
            mechanisms: set(items),
            channel_bindings: None,
        }
    }

    #[test]
    fn anonymous_and_unknown_are_dropped() {
        let offered = set(&[
            "ANONYMOUS",
            "PLAIN",
            "SCRAM-SHA-1",
            "SCRAM-SHA-1-PLUS",
            "X-OAUTH2",
            "SCRAM-SHA-256",
        ]);
        assert_eq!(
            usable_mechanisms(&offered),
            set(&["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256"])
        );
        assert!(usable_mechanisms(&set(&["ANONYMOUS", "EXTERNAL"])).is_empty());
    }

    #[test]
    fn plus_needs_a_binding_the_server_takes_and_the_flag_follows_rfc_5802() {
        let pins = LoginPins::default();
        let exporter = Bindings {
            exporter: Some(b"ekm".to_vec()),
            end_point: Some(b"hash".to_vec()),
        };
        let tls12 = Bindings {
            exporter: None,
            end_point: Some(b"hash".to_vec()),
        };
        let both = offer(&["SCRAM-SHA-1", "SCRAM-SHA-1-PLUS", "PLAIN"]);
        let c = choose(&both, &exporter, pins, "d").expect("choice");
        assert_eq!(c.mechanism, "SCRAM-SHA-1-PLUS");
        assert_eq!(c.binding, ChannelBinding::TlsExporter(b"ekm".to_vec()));
        // No exporter (TLS 1.2) and no XEP-0440 list: the server's type is unknown, so
        // plain SCRAM, "n" because the server binds.
        let c = choose(&both, &tls12, pins, "d").expect("choice");
        assert_eq!(
            (c.mechanism, c.binding),
            ("SCRAM-SHA-1", ChannelBinding::None)
        );
        // The server lists only tls-server-end-point: that one.
        let mut endp = both.clone();
        endp.channel_bindings = Some(vec!["tls-server-end-point".to_owned()]);
        let c = choose(&endp, &exporter, pins, "d").expect("choice");
        assert_eq!(
            (c.mechanism, c.binding),
            (
                "SCRAM-SHA-1-PLUS",
                ChannelBinding::TlsServerEndPoint(b"hash".to_vec())
            )
        );
        // It lists only a type we lack: "n" as XEP-0474 asks.
        let mut unique = both.clone();
        unique.channel_bindings = Some(vec!["tls-unique".to_owned()]);
        let c = choose(&unique, &exporter, pins, "d").expect("choice");
        assert_eq!(
            (c.mechanism, c.binding),
            ("SCRAM-SHA-1", ChannelBinding::None)
        );
        // No -PLUS at all while we could bind: "y".
        let c = choose(&offer(&["SCRAM-SHA-256", "PLAIN"]), &exporter, pins, "d").expect("choice");
        assert_eq!(
            (c.mechanism, c.binding),
            ("SCRAM-SHA-256", ChannelBinding::Unsupported)
        );
    }

    #[test]
    fn plain_is_refused_once_scram_was_used() {
        let only_plain = offer(&["PLAIN"]);
        let none = Bindings::default();
        let c = choose(&only_plain, &none, LoginPins::default(), "d").expect("first login");
        assert_eq!(c.mechanism, "PLAIN");
        let pinned = LoginPins {
            scram: true,
            channel_binding: false,
        };
        let e = choose(&only_plain, &none, pinned, "example.org").expect_err("pinned");
        assert!(matches!(e, ConnectError::Tampered { .. }), "{e:?}");
        assert!(e.is_fatal());
        assert!(e.to_string().contains("example.org"), "{e}");
    }

    #[test]
    fn ssdp_input_follows_xep_0474() {
        // The example of XEP-0474 §4.
        let offer = Offer {
            mechanisms: set(&["SCRAM-SHA-1-PLUS", "SCRAM-SHA-1"]),
            channel_bindings: Some(vec![
                "tls-server-end-point".to_owned(),
                "tls-exporter".to_owned(),
            ]),
        };
        assert_eq!(
            offer.ssdp_input(),
            b"SCRAM-SHA-1\x1eSCRAM-SHA-1-PLUS\x1ftls-exporter\x1etls-server-end-point".to_vec()
        );
        assert_eq!(
            BASE64.encode(sha1::Sha1::digest(offer.ssdp_input())),
            "G6k/rBLDqgOhRRaCuuatSDFkJ08="
        );
        let no_cb = Offer {
            channel_bindings: None,
            ..offer
        };
        assert_eq!(
            no_cb.ssdp_input(),
            b"SCRAM-SHA-1\x1eSCRAM-SHA-1-PLUS".to_vec()
        );
    }

    fn exchange(offer: Offer, binding: ChannelBinding, pins: LoginPins) -> Exchange {
        let choice = Choice {
            mechanism: "SCRAM-SHA-1",
            binding,
        };
        Exchange::new(&choice, offer, pins, "alice", "pencil", "example.org").expect("exchange")
    }

    fn failure(condition: &str) -> Element {
        Element::builder("failure", ns::SASL2)
            .append(Element::builder(condition, ns::SASL).build())
            .build()
    }

    #[test]
    fn sasl_failures_are_typed() {
        let x = exchange(
            offer(&["SCRAM-SHA-1"]),
            ChannelBinding::None,
            LoginPins::default(),
        );
        let e = sasl2_failure(&x, "alice@example.org", &failure("not-authorized"));
        assert_eq!(e.to_string(), "wrong password for alice@example.org");
        assert!(e.is_fatal());
        let bare = Element::builder("failure", ns::SASL2).build();
        assert!(matches!(
            sasl2_failure(&x, "a@b", &bare),
            ConnectError::Protocol { .. }
        ));
        // "n" and malformed-request: just a refusal.
        let e = sasl2_failure(&x, "a@b", &failure("malformed-request"));
        assert!(matches!(e, ConnectError::LoginRefused { .. }), "{e:?}");
        // "y" and malformed-request: the server binds, the offer we saw did not say so.
        let y = exchange(
            offer(&["SCRAM-SHA-1"]),
            ChannelBinding::Unsupported,
            LoginPins::default(),
        );
        let e = sasl2_failure(&y, "a@b", &failure("malformed-request"));
        assert!(matches!(e, ConnectError::Tampered { .. }), "{e:?}");
    }

    /// A SCRAM-SHA-1 server-first-message for our exchange, with `h` if given.
    fn server_first(x: &mut Exchange, h: Option<&str>) -> Vec<u8> {
        let client_first = String::from_utf8(x.initial()).expect("utf-8");
        let nonce = client_first
            .split(',')
            .find_map(|a| a.strip_prefix("r="))
            .expect("client nonce");
        let mut message = format!("r={nonce}server,s=QSXCR+Q6sek8bf92,i=4096");
        if let Some(h) = h {
            message.push_str(",h=");
            message.push_str(h);
        }
        message.into_bytes()
    }

    #[test]
    fn xep_0474_hash_is_checked_against_the_offer_we_saw() {
        let seen = Offer {
            mechanisms: set(&["SCRAM-SHA-1", "SCRAM-SHA-1-PLUS"]),
            channel_bindings: Some(vec!["tls-exporter".to_owned()]),
        };
        let right = BASE64.encode(sha1::Sha1::digest(seen.ssdp_input()));
        let mut x = exchange(seen.clone(), ChannelBinding::None, LoginPins::default());
        let challenge = server_first(&mut x, Some(&right));
        x.respond(&challenge).expect("matching hash");

        // The server signed a list with SCRAM-SHA-256 in it: ours was tampered with.
        let sent = Offer {
            mechanisms: set(&["SCRAM-SHA-1", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256"]),
            ..seen.clone()
        };
        let theirs = BASE64.encode(sha1::Sha1::digest(sent.ssdp_input()));
        let mut x = exchange(seen.clone(), ChannelBinding::None, LoginPins::default());
        let challenge = server_first(&mut x, Some(&theirs));
        let e = x.respond(&challenge).expect_err("tampered list");
        assert!(matches!(e, ConnectError::Tampered { .. }), "{e:?}");

        // No hash: fine on a first login, refused once channel binding was pinned…
        let pinned = LoginPins {
            scram: true,
            channel_binding: true,
        };
        let mut x = exchange(seen.clone(), ChannelBinding::None, LoginPins::default());
        let challenge = server_first(&mut x, None);
        x.respond(&challenge).expect("no hash, no pin");
        let mut x = exchange(seen.clone(), ChannelBinding::None, pinned);
        let challenge = server_first(&mut x, None);
        let e = x.respond(&challenge).expect_err("pinned");
        assert!(matches!(e, ConnectError::Tampered { .. }), "{e:?}");
        // …unless the server vouches for its new offer (XEP-0474 §6).
        let mut x = exchange(seen, ChannelBinding::None, pinned);
        let challenge = server_first(&mut x, Some(&right));
        x.respond(&challenge).expect("pinned, but the hash vouches");
    }

    #[test]
    fn the_user_agent_is_stable_per_account_and_device() {
        let a: jid::Jid = "alice@example.org/abc".parse().expect("jid");
        let b: jid::Jid = "alice@example.org/xyz".parse().expect("jid");
        assert_eq!(user_agent_id(&a), user_agent_id(&a));
        assert_ne!(user_agent_id(&a), user_agent_id(&b));
    }
}
