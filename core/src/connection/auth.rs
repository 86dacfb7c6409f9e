//! SASL login: everything between the secured stream and resource binding.
//!
//! Mirrors tokio-xmpp's private `client_auth` (client/login.rs) but keeps errors typed and
//! restricts the mechanisms to SCRAM-SHA-256 > SCRAM-SHA-1 > PLAIN (never ANONYMOUS).

use std::collections::BTreeSet;

use sasl::common::{ChannelBinding, Credentials};
use tokio_xmpp::error::{AuthError, Error as XmppError};
use tokio_xmpp::parsers::ns;
use tokio_xmpp::stanzastream::Connection;
use tokio_xmpp::xmlstream::{StreamHeader, Timeouts};
use tracing::{debug, info};

use super::error::ConnectError;
use super::tls::features_error;
use super::{ConnectionInfo, Connector};

/// The mechanisms Starling uses, most preferred first. This is also the order in which
/// `tokio_xmpp::client_login` tries them. PLAIN is acceptable because TLS is always on.
pub(super) const MECHANISMS: [&str; 3] = ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"];

/// The offered mechanisms Starling is willing to use (drops ANONYMOUS, -PLUS, unknown ones).
pub(super) fn usable_mechanisms(offered: &BTreeSet<String>) -> BTreeSet<String> {
    offered
        .iter()
        .filter(|m| MECHANISMS.contains(&m.as_str()))
        .cloned()
        .collect()
}

/// Connect, secure, and log in — everything before resource binding — and return what
/// `StanzaStream`'s connector must deliver, with how the connection is secured.
pub async fn authenticate(
    connector: &Connector,
    jid: &jid::Jid,
    password: &str,
    timeouts: Timeouts,
) -> Result<(Connection, ConnectionInfo), ConnectError> {
    let domain = jid.domain().as_str();
    let bare = jid.to_bare();
    let Some(username) = jid.node() else {
        return Err(ConnectError::invalid_settings(format!(
            "{jid} has no user name; anonymous login is not supported"
        )));
    };

    let (pending, mut info) = connector.open(jid, ns::JABBER_CLIENT, timeouts).await?;
    let (features, stream) = pending
        .recv_features()
        .await
        .map_err(|e| features_error(domain, e))?;

    let mechanisms = usable_mechanisms(&features.sasl_mechanisms);
    let Some(chosen) = MECHANISMS.iter().find(|m| mechanisms.contains(**m)) else {
        let offered = features
            .sasl_mechanisms
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        return Err(ConnectError::NoSupportedMechanism {
            domain: domain.to_owned(),
            offered: if offered.is_empty() {
                "none".to_owned()
            } else {
                offered
            },
        });
    };
    debug!(offered = ?features.sasl_mechanisms, %chosen, "SASL mechanism chosen");

    let credentials = Credentials::default()
        .with_username(username.as_str())
        .with_password(password)
        .with_channel_binding(ChannelBinding::None);
    let stream = tokio_xmpp::client_login(stream, mechanisms, credentials)
        .await
        .map_err(|e| login_error(bare.as_str(), domain, e))?;

    let header = StreamHeader {
        to: Some(domain.into()),
        from: Some(bare.as_str().into()),
        id: None,
    };
    let stream = stream
        .send_header(header)
        .await
        .map_err(|e| ConnectError::from_io(domain, &e))?;
    let (features, stream) = stream
        .recv_features()
        .await
        .map_err(|e| features_error(domain, e))?;
    info!(jid = %bare, mechanism = %chosen, "authenticated");
    info.mechanism = (*chosen).to_owned();
    Ok((
        Connection {
            stream: stream.box_stream(),
            features,
            identity: jid.clone(),
        },
        info,
    ))
}

/// Classify an error from `tokio_xmpp::client_login`.
fn login_error(jid: &str, domain: &str, error: XmppError) -> ConnectError {
    match error {
        XmppError::Auth(AuthError::Fail(condition)) => {
            ConnectError::from_sasl_failure(jid, &condition)
        }
        XmppError::Auth(AuthError::NoMechanism) => ConnectError::NoSupportedMechanism {
            domain: domain.to_owned(),
            offered: "none usable".to_owned(),
        },
        XmppError::Auth(AuthError::Sasl(e)) => {
            ConnectError::protocol(domain, format!("the login exchange failed: {e}"))
        }
        XmppError::Io(e) => ConnectError::from_io(domain, &e),
        XmppError::Disconnected => {
            ConnectError::unreachable(domain, "the server closed the connection")
        }
        XmppError::StreamError(e) => ConnectError::from_stream_error(domain, &e.0),
        other => ConnectError::protocol(domain, other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn anonymous_plus_and_unknown_are_dropped() {
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
            set(&["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"])
        );
        assert!(usable_mechanisms(&set(&["ANONYMOUS", "EXTERNAL"])).is_empty());
    }

    #[test]
    fn sasl_failures_are_typed() {
        use xmpp_parsers::sasl::DefinedCondition;
        let e = login_error(
            "alice@example.org",
            "example.org",
            XmppError::Auth(AuthError::Fail(DefinedCondition::NotAuthorized)),
        );
        assert_eq!(e.to_string(), "wrong password for alice@example.org");
        assert!(e.is_fatal());
        let e = login_error("a@b", "b", XmppError::Disconnected);
        assert!(matches!(e, ConnectError::ServerUnreachable { .. }));
        assert!(!e.is_fatal());
    }
}
