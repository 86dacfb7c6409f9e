//! The typed connection error a user interface can explain to a person.

use std::io;

use tokio_rustls::rustls;
use xmpp_parsers::sasl::DefinedCondition as SaslCondition;
use xmpp_parsers::stream_error::DefinedCondition as StreamCondition;

/// Why connecting or logging in failed.
///
/// Every `Display` is a sentence a person understands; [`ConnectError::is_fatal`] tells whether
/// retrying can help (fatal errors need the user to act: fix the password, the certificate, …).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectError {
    /// The server rejected the credentials (SASL `not-authorized`).
    #[error("wrong password for {jid}")]
    WrongPassword {
        /// The account's bare JID.
        jid: String,
    },

    /// The server refused the login for another reason (account disabled, credentials expired,
    /// a temporary failure, …).
    #[error("the server refused the login for {jid}: {reason}")]
    LoginRefused {
        /// The account's bare JID.
        jid: String,
        /// A short human-readable reason, e.g. "the account is disabled".
        reason: String,
        /// Whether the server said the failure is temporary.
        temporary: bool,
    },

    /// The server's certificate could not be verified for the account's domain.
    #[error("server certificate not trusted for {domain}: {reason}")]
    CertificateNotTrusted {
        /// The JID domain the certificate was checked against.
        domain: String,
        /// E.g. "self-signed or unknown issuer", "expired", "not valid for example.org".
        reason: String,
    },

    /// A DNS answer the connection depends on (SRV or TLSA) failed DNSSEC validation:
    /// forged or broken. Nothing is tried with those answers, nor without them.
    #[error(
        "the DNS answers for {domain} failed DNSSEC validation ({what}); not connecting, \
         because they may be forged"
    )]
    DnssecFailed {
        /// The JID domain.
        domain: String,
        /// The lookup, e.g. `SRV _xmpp-client._tcp.example.org`.
        what: String,
    },

    /// DNS failure, connection refused, timeout, connection lost during the handshake.
    #[error("cannot reach {domain}: {detail}")]
    ServerUnreachable {
        /// The JID domain.
        domain: String,
        /// E.g. "connection refused".
        detail: String,
    },

    /// The server did not offer STARTTLS; Starling never talks XMPP without TLS.
    #[error("{domain} does not offer an encrypted connection (STARTTLS)")]
    NoTls {
        /// The JID domain.
        domain: String,
    },

    /// None of SCRAM-SHA-256, SCRAM-SHA-1 or PLAIN was offered.
    #[error("{domain} offers no login method Starling supports (offered: {offered})")]
    NoSupportedMechanism {
        /// The JID domain.
        domain: String,
        /// The mechanisms the server offered, comma separated (or "none").
        offered: String,
    },

    /// The login offer or exchange was tampered with (channel binding failed, XEP-0474's
    /// hash did not match), or fell below what this account proved before (pinned SCRAM or
    /// channel binding). Never retried: someone may be intercepting the connection.
    #[error(
        "refusing to log in to {domain}: {detail}; someone may be intercepting the connection, so check your network (or ask the server's admin whether they changed the login setup)"
    )]
    Tampered {
        /// The JID domain.
        domain: String,
        /// What was wrong.
        detail: String,
    },

    /// The server ended the stream with a stream error.
    #[error("{domain} closed the connection: {condition}{}", text_suffix(.text))]
    StreamError {
        /// The JID domain.
        domain: String,
        /// The RFC 6120 stream error condition.
        condition: StreamCondition,
        /// The server's explanation, if any.
        text: Option<String>,
    },

    /// Something unexpected happened on the wire (bad XML, a TLS failure that is not about the
    /// certificate, an unexpected element). Retried.
    #[error("connection to {domain} failed: {detail}")]
    Protocol {
        /// The JID domain.
        domain: String,
        /// What went wrong, for a person.
        detail: String,
    },

    /// The settings cannot work (unreadable CA file, a JID without a user name, …).
    #[error("{reason}")]
    InvalidSettings {
        /// A full sentence.
        reason: String,
    },
}

fn text_suffix(text: &Option<String>) -> String {
    match text {
        Some(t) if !t.is_empty() => format!(" ({t})"),
        _ => String::new(),
    }
}

impl ConnectError {
    /// True when retrying cannot help and the user has to act.
    pub fn is_fatal(&self) -> bool {
        match self {
            Self::WrongPassword { .. }
            | Self::CertificateNotTrusted { .. }
            | Self::DnssecFailed { .. }
            | Self::NoTls { .. }
            | Self::NoSupportedMechanism { .. }
            | Self::Tampered { .. }
            | Self::InvalidSettings { .. } => true,
            Self::LoginRefused { temporary, .. } => !temporary,
            Self::StreamError { condition, .. } => stream_condition_is_fatal(condition),
            Self::ServerUnreachable { .. } | Self::Protocol { .. } => false,
        }
    }

    /// The certificate did not match the domain's DNSSEC-signed TLSA records (DANE): a CA
    /// file cannot help; the domain's admin must fix the records (or this is not the real
    /// server).
    pub fn is_dane_mismatch(&self) -> bool {
        matches!(self, Self::CertificateNotTrusted { reason, .. }
            if *reason == super::dane::DaneMismatch.to_string())
    }

    pub(crate) fn unreachable(domain: &str, detail: impl Into<String>) -> Self {
        Self::ServerUnreachable {
            domain: domain.to_owned(),
            detail: detail.into(),
        }
    }

    pub(crate) fn protocol(domain: &str, detail: impl Into<String>) -> Self {
        Self::Protocol {
            domain: domain.to_owned(),
            detail: detail.into(),
        }
    }

    pub(crate) fn invalid_settings(reason: impl Into<String>) -> Self {
        Self::InvalidSettings {
            reason: reason.into(),
        }
    }

    /// Classify an I/O error seen while talking to `domain` (TCP, TLS or the XML stream).
    pub(crate) fn from_io(domain: &str, error: &io::Error) -> Self {
        if let Some(tls) = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Self::from_tls(domain, tls);
        }
        let detail = match error.kind() {
            io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
            io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
                "the connection was reset".to_owned()
            }
            io::ErrorKind::TimedOut => "the server did not answer in time".to_owned(),
            io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe => {
                "the server closed the connection".to_owned()
            }
            io::ErrorKind::NotConnected => "the connection was lost".to_owned(),
            io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
                "no route to the server".to_owned()
            }
            io::ErrorKind::NetworkDown => "the network is down".to_owned(),
            io::ErrorKind::AddrNotAvailable => "no usable network address".to_owned(),
            io::ErrorKind::InvalidData => {
                return Self::protocol(domain, format!("invalid data from the server: {error}"));
            }
            _ => error.to_string(),
        };
        Self::unreachable(domain, detail)
    }

    /// Classify a rustls error. Certificate problems become [`Self::CertificateNotTrusted`].
    pub(crate) fn from_tls(domain: &str, error: &rustls::Error) -> Self {
        use rustls::CertificateError as C;
        let reason = match error {
            rustls::Error::InvalidCertificate(cert) => match cert {
                C::UnknownIssuer | C::BadSignature => "self-signed or unknown issuer".to_owned(),
                C::Expired => "expired".to_owned(),
                C::ExpiredContext { not_after, .. } => {
                    format!("expired on {}; its admin must renew it", day(*not_after))
                }
                C::NotValidYet => "not valid yet".to_owned(),
                C::NotValidYetContext { not_before, .. } => format!(
                    "not valid before {}; check this device's clock",
                    day(*not_before)
                ),
                C::NotValidForName => format!("not valid for {domain}"),
                C::NotValidForNameContext { presented, .. } if !presented.is_empty() => {
                    // rustls writes them as `DnsName("x")`; the name is what matters.
                    let names: Vec<&str> = presented
                        .iter()
                        .map(|p| {
                            p.split_once('"')
                                .and_then(|(_, rest)| rest.rsplit_once('"'))
                                .map_or(p.as_str(), |(name, _)| name)
                        })
                        .collect();
                    format!("not valid for {domain} (it is for {})", names.join(", "))
                }
                C::NotValidForNameContext { .. } => format!("not valid for {domain}"),
                C::Revoked => "revoked".to_owned(),
                C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
                    "not issued for server use".to_owned()
                }
                C::BadEncoding => "malformed certificate".to_owned(),
                // Our own verifiers' reasons (DANE) say it themselves.
                C::Other(other) => other.to_string(),
                other => format!("invalid certificate ({other})"),
            },
            rustls::Error::NoCertificatesPresented => "the server sent no certificate".to_owned(),
            // The server has no certificate for the name we asked for (SNI), e.g. Prosody
            // when the domain is not hosted there.
            rustls::Error::AlertReceived(rustls::AlertDescription::UnrecognisedName) => {
                format!("the server has no certificate for {domain}")
            }
            other => return Self::protocol(domain, format!("TLS handshake failed: {other}")),
        };
        Self::CertificateNotTrusted {
            domain: domain.to_owned(),
            reason,
        }
    }

    /// Classify a SASL `<failure/>` condition.
    pub(crate) fn from_sasl_failure(jid: &str, condition: &SaslCondition) -> Self {
        let (reason, temporary) = match condition {
            SaslCondition::NotAuthorized => {
                return Self::WrongPassword {
                    jid: jid.to_owned(),
                };
            }
            SaslCondition::AccountDisabled => ("the account is disabled", false),
            SaslCondition::CredentialsExpired => ("the password has expired", false),
            SaslCondition::TemporaryAuthFailure => ("temporary failure, try again later", true),
            SaslCondition::EncryptionRequired => ("encryption required", false),
            SaslCondition::MechanismTooWeak => ("the login method is too weak", false),
            SaslCondition::InvalidAuthzid => ("invalid authorization identity", false),
            SaslCondition::Aborted => ("the login was aborted", true),
            SaslCondition::IncorrectEncoding
            | SaslCondition::InvalidMechanism
            | SaslCondition::MalformedRequest => ("the server did not understand the login", true),
        };
        Self::LoginRefused {
            jid: jid.to_owned(),
            reason: reason.to_owned(),
            temporary,
        }
    }

    /// A received stream error (`<stream:error/>`).
    pub(crate) fn from_stream_error(
        domain: &str,
        error: &xmpp_parsers::stream_error::StreamError,
    ) -> Self {
        Self::StreamError {
            domain: domain.to_owned(),
            condition: error.condition.clone(),
            text: error.texts.values().next().cloned(),
        }
    }
}

/// Stream errors that will not go away by reconnecting to the same server.
fn stream_condition_is_fatal(condition: &StreamCondition) -> bool {
    matches!(
        condition,
        StreamCondition::HostUnknown
            | StreamCondition::HostGone
            | StreamCondition::NotAuthorized
            | StreamCondition::ImproperAddressing
            | StreamCondition::InvalidFrom
            | StreamCondition::InvalidNamespace
            | StreamCondition::UnsupportedEncoding
            | StreamCondition::UnsupportedFeature
            | StreamCondition::UnsupportedVersion
    )
}

impl tokio_xmpp::connect::ServerConnectorError for ConnectError {}

/// A certificate time as a UTC day (`2026-11-27`).
fn day(t: rustls::pki_types::UnixTime) -> String {
    day_of(t.as_secs())
}

/// A date (seconds since the epoch) as YYYY-MM-DD.
pub(crate) fn day_of(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
        .map_or_else(
            || "an unknown date".to_owned(),
            |d| d.format("%Y-%m-%d").to_string(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_sentences() {
        let e = ConnectError::WrongPassword {
            jid: "alice@example.org".into(),
        };
        assert_eq!(e.to_string(), "wrong password for alice@example.org");
        let e = ConnectError::CertificateNotTrusted {
            domain: "example.org".into(),
            reason: "self-signed or unknown issuer".into(),
        };
        assert_eq!(
            e.to_string(),
            "server certificate not trusted for example.org: self-signed or unknown issuer"
        );
        let e = ConnectError::from_io(
            "example.org",
            &io::Error::from(io::ErrorKind::ConnectionRefused),
        );
        assert_eq!(
            e.to_string(),
            "cannot reach example.org: connection refused"
        );
        let e = ConnectError::StreamError {
            domain: "example.org".into(),
            condition: StreamCondition::HostUnknown,
            text: Some("no such host".into()),
        };
        assert_eq!(
            e.to_string(),
            "example.org closed the connection: host-unknown (no such host)"
        );
    }

    #[test]
    fn fatality() {
        let wrong = ConnectError::from_sasl_failure("a@b", &SaslCondition::NotAuthorized);
        assert!(matches!(wrong, ConnectError::WrongPassword { .. }));
        assert!(wrong.is_fatal());
        assert!(ConnectError::from_sasl_failure("a@b", &SaslCondition::AccountDisabled).is_fatal());
        assert!(
            !ConnectError::from_sasl_failure("a@b", &SaslCondition::TemporaryAuthFailure)
                .is_fatal()
        );
        assert!(ConnectError::NoTls { domain: "d".into() }.is_fatal());
        let dnssec = ConnectError::DnssecFailed {
            domain: "example.org".into(),
            what: "SRV _xmpp-client._tcp.example.org".into(),
        };
        assert!(dnssec.is_fatal());
        assert_eq!(
            dnssec.to_string(),
            "the DNS answers for example.org failed DNSSEC validation (SRV \
             _xmpp-client._tcp.example.org); not connecting, because they may be forged"
        );
        assert!(!ConnectError::unreachable("d", "x").is_fatal());
        assert!(!ConnectError::protocol("d", "x").is_fatal());
        let stream = |condition| ConnectError::StreamError {
            domain: "d".into(),
            condition,
            text: None,
        };
        assert!(stream(StreamCondition::HostUnknown).is_fatal());
        assert!(!stream(StreamCondition::SystemShutdown).is_fatal());
        assert!(!stream(StreamCondition::SeeOtherHost("other.example".into())).is_fatal());
    }

    #[test]
    fn tls_errors_are_classified() {
        let io_err = |e: rustls::Error| io::Error::new(io::ErrorKind::InvalidData, e);
        let e = ConnectError::from_io(
            "example.org",
            &io_err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            )),
        );
        assert!(e.is_fatal());
        assert_eq!(
            e.to_string(),
            "server certificate not trusted for example.org: self-signed or unknown issuer"
        );
        let e = ConnectError::from_io(
            "example.org",
            &io_err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName,
            )),
        );
        assert!(e.to_string().ends_with("not valid for example.org"));
        let e = ConnectError::from_io(
            "example.org",
            &io_err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Expired,
            )),
        );
        assert!(e.to_string().ends_with(": expired"));
        let e = ConnectError::from_io(
            "example.org",
            &io_err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ExpiredContext {
                    time: rustls::pki_types::UnixTime::since_unix_epoch(
                        std::time::Duration::from_secs(1_800_000_000),
                    ),
                    not_after: rustls::pki_types::UnixTime::since_unix_epoch(
                        std::time::Duration::from_secs(1_577_923_200),
                    ),
                },
            )),
        );
        assert!(
            e.to_string()
                .ends_with(": expired on 2020-01-02; its admin must renew it"),
            "{e}"
        );
        let e = ConnectError::from_io(
            "example.org",
            &io_err(rustls::Error::AlertReceived(
                rustls::AlertDescription::UnrecognisedName,
            )),
        );
        assert!(e.is_fatal());
        assert!(
            e.to_string()
                .ends_with("the server has no certificate for example.org")
        );
        let e = ConnectError::from_io(
            "example.org",
            &io_err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Other(rustls::OtherError(std::sync::Arc::new(
                    super::super::dane::DaneMismatch,
                ))),
            )),
        );
        assert!(e.is_fatal());
        assert!(e.is_dane_mismatch());
        assert!(
            e.to_string()
                .ends_with("matches none of the domain's DNSSEC-signed TLSA records (DANE)"),
            "{e}"
        );
        let e = ConnectError::from_io("example.org", &io_err(rustls::Error::DecryptError));
        assert!(matches!(e, ConnectError::Protocol { .. }));
        assert!(!e.is_fatal());
    }
}
