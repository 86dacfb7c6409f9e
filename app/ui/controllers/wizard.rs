//! The account wizard's logic: validating the form and explaining login failures to a
//! person, pointing at the field to fix.

use std::path::PathBuf;

use starling_core::connection::ConnectError;
use starling_core::{AccountOptions, Error};

/// What the user typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form {
    pub jid: String,
    pub password: String,
    pub advanced: bool,
    pub server: String,
    pub port: String,
    pub ca_file: String,
}

/// A problem to show, and the field it is about ("" = the form as a whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: &'static str,
    pub message: String,
}

impl Problem {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        Problem {
            field,
            message: message.into(),
        }
    }
}

/// Checks the form before any network traffic; returns the JID and the account options.
pub fn validate(form: &Form) -> Result<(String, AccountOptions), Problem> {
    let jid = form.jid.trim();
    let bare = starling_core::parse_bare(jid).map_err(|_| {
        Problem::new(
            "jid",
            "That is not an XMPP address. It looks like name@example.org.",
        )
    })?;
    if form.password.is_empty() {
        return Err(Problem::new("password", "Enter your password."));
    }
    let mut opts = AccountOptions::default();
    if form.advanced {
        let server = form.server.trim();
        let port = form.port.trim();
        if !server.is_empty() || !port.is_empty() {
            let port = if port.is_empty() {
                5222
            } else {
                port.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                    Problem::new("port", "The port is a number between 1 and 65535.")
                })?
            };
            let host = if server.is_empty() {
                bare.domain().to_string()
            } else {
                server.to_owned()
            };
            if host.contains(char::is_whitespace) || host.contains('/') {
                return Err(Problem::new(
                    "server",
                    "The server is a host name like xmpp.example.org.",
                ));
            }
            opts.server = Some((host, port));
        }
        let ca = form.ca_file.trim();
        if !ca.is_empty() {
            let path = PathBuf::from(ca);
            if !path.is_file() {
                return Err(Problem::new(
                    "ca-file",
                    format!("There is no file at {ca}."),
                ));
            }
            opts.ca_file = Some(path);
        }
    }
    Ok((bare.to_string(), opts))
}

/// A login failure in words, with the field to look at.
pub fn explain(err: &Error) -> Problem {
    match err {
        Error::Connect(c) => match c {
            ConnectError::WrongPassword { .. } => Problem::new(
                "password",
                "Wrong password, or no such account on this server. Check both and try again.",
            ),
            ConnectError::CertificateNotTrusted { domain, .. } if c.is_dane_mismatch() => {
                Problem::new(
                    "",
                    format!(
                        "The server's certificate does not match the TLSA records {domain} \
                         publishes with DNSSEC (DANE). Its admin must update them, or this is \
                         not the real server."
                    ),
                )
            }
            ConnectError::DnssecFailed { domain, .. } => Problem::new(
                "",
                format!(
                    "The DNS answers for {domain} failed DNSSEC validation, so they may be \
                     forged. Tell the domain's admin, or try another network."
                ),
            ),
            ConnectError::CertificateNotTrusted { domain, reason } => Problem::new(
                "ca-file",
                format!(
                    "The server's certificate is not trusted for {domain}: {reason}. If this is \
                     your own server, add its CA certificate under Advanced."
                ),
            ),
            ConnectError::ServerUnreachable { domain, detail } => Problem::new(
                "server",
                format!(
                    "Cannot reach the server for {domain} ({detail}). Check the address and \
                     your network, or set the server under Advanced."
                ),
            ),
            ConnectError::LoginRefused { reason, .. } => {
                Problem::new("", format!("The server refused the login: {reason}."))
            }
            other => Problem::new("", format!("Cannot sign in: {other}.")),
        },
        Error::AccountExists(j) => Problem::new("jid", format!("{j} is already set up.")),
        Error::InvalidJid(_) => Problem::new(
            "jid",
            "That is not an XMPP address. It looks like name@example.org.",
        ),
        other => Problem::new("", format!("Cannot add the account: {other}.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(jid: &str, pw: &str) -> Form {
        Form {
            jid: jid.into(),
            password: pw.into(),
            ..Form::default()
        }
    }

    #[test]
    fn validation_points_at_fields() {
        assert_eq!(
            validate(&form("nope", "x")).err().map(|p| p.field),
            Some("jid")
        );
        assert_eq!(
            validate(&form("a@x.org", "")).err().map(|p| p.field),
            Some("password")
        );
        let (jid, opts) = validate(&form(" a@x.org ", "pw")).expect("valid");
        assert_eq!(jid, "a@x.org");
        assert!(opts.server.is_none());
        let mut f = form("a@x.org", "pw");
        f.advanced = true;
        f.port = "70000".into();
        assert_eq!(validate(&f).err().map(|p| p.field), Some("port"));
        f.port = "5223".into();
        let (_, opts) = validate(&f).expect("valid");
        assert_eq!(opts.server, Some(("x.org".to_owned(), 5223)));
        f.ca_file = "/nonexistent/ca.pem".into();
        assert_eq!(validate(&f).err().map(|p| p.field), Some("ca-file"));
        // Advanced settings are ignored when the box is unticked.
        f.advanced = false;
        assert!(validate(&f).is_ok());
    }

    #[test]
    fn errors_in_words() {
        let p = explain(&Error::Connect(ConnectError::WrongPassword {
            jid: "a@x".into(),
        }));
        assert_eq!(p.field, "password");
        assert!(p.message.starts_with("Wrong password"));
        let p = explain(&Error::Connect(ConnectError::CertificateNotTrusted {
            domain: "x.org".into(),
            reason: "self-signed or unknown issuer".into(),
        }));
        assert!(p.message.contains("self-signed or unknown issuer"));
        assert_eq!(p.field, "ca-file");
        // A DANE mismatch or a DNSSEC failure: a CA file would not help.
        let p = explain(&Error::Connect(ConnectError::CertificateNotTrusted {
            domain: "x.org".into(),
            reason: starling_core::connection::dane::DaneMismatch.to_string(),
        }));
        assert_eq!(p.field, "");
        assert!(
            p.message.contains("TLSA records x.org publishes"),
            "{}",
            p.message
        );
        let p = explain(&Error::Connect(ConnectError::DnssecFailed {
            domain: "x.org".into(),
            what: "SRV _xmpp-client._tcp.x.org".into(),
        }));
        assert_eq!(p.field, "");
        assert!(
            p.message.contains("failed DNSSEC validation"),
            "{}",
            p.message
        );
        let p = explain(&Error::Connect(ConnectError::ServerUnreachable {
            domain: "x.org".into(),
            detail: "connection refused".into(),
        }));
        assert_eq!(p.field, "server");
        assert!(p.message.contains("connection refused"));
    }
}
