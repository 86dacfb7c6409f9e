//! Small additions to the connection layer's types used by the account layer.

use jid::Jid;

use crate::connection::{self, ConnectError, ConnectionSettings, Connector, TlsMode};
use crate::secrets::Password;

impl TlsMode {
    /// The stored name of this mode.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Auto => "auto",
            TlsMode::StartTls => "starttls",
            TlsMode::DirectTls => "direct",
        }
    }

    pub fn parse(s: &str) -> Option<TlsMode> {
        match s {
            "auto" => Some(TlsMode::Auto),
            "starttls" => Some(TlsMode::StartTls),
            "direct" => Some(TlsMode::DirectTls),
            _ => None,
        }
    }
}

/// Logs in once (TLS + SASL) and disconnects: proves the settings and password work.
pub async fn check_login(
    settings: &ConnectionSettings,
    resource: &str,
    password: &Password,
) -> Result<(), ConnectError> {
    let connector = Connector::new(settings)?;
    let jid = settings
        .jid
        .with_resource_str(resource)
        .map(Jid::from)
        .unwrap_or_else(|_| Jid::from(settings.jid.clone()));
    let (conn, _) = connection::authenticate(
        &connector,
        &jid,
        password.expose(),
        tokio_xmpp::xmlstream::Timeouts::tight(),
        &connection::LoginOptions::default(),
    )
    .await?;
    connection::close_login_stream(conn.stream).await;
    Ok(())
}

impl ConnectError {
    /// A stable machine-readable name for the kind of failure (for `--json` and UIs).
    pub fn kind(&self) -> &'static str {
        match self {
            ConnectError::WrongPassword { .. } => "wrong_password",
            ConnectError::LoginRefused { .. } => "login_refused",
            ConnectError::CertificateNotTrusted { .. } => "certificate_not_trusted",
            ConnectError::DnssecFailed { .. } => "dnssec_failed",
            ConnectError::ServerUnreachable { .. } => "server_unreachable",
            ConnectError::NoTls { .. } => "no_tls",
            ConnectError::NoSupportedMechanism { .. } => "no_supported_mechanism",
            ConnectError::Tampered { .. } => "login_tampered",
            ConnectError::StreamError { .. } => "stream_error",
            ConnectError::Protocol { .. } => "protocol",
            ConnectError::InvalidSettings { .. } => "invalid_settings",
        }
    }
}
