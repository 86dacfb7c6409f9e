//! Connection and sync status of all accounts, as one line for the status bar and one per
//! account for Settings.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use starling_core::{ConnectionInfo, ConnectionState};

#[derive(Debug, Clone)]
struct AccountStatus {
    state: ConnectionState,
    /// How the current session is secured (fetched once it is online).
    security: Option<ConnectionInfo>,
    /// When a reconnect was announced with a delay: when it will happen.
    retry_at: Option<Instant>,
    sync_fetched: Option<u64>,
}

/// Status of every account.
#[derive(Debug, Default)]
pub struct Status {
    accounts: BTreeMap<String, AccountStatus>,
}

impl Status {
    pub fn set_state(&mut self, account: &str, state: ConnectionState, now: Instant) {
        let retry_at = match &state {
            ConnectionState::Reconnecting {
                retry_in_secs: Some(s),
                ..
            } => Some(now + Duration::from_secs(*s)),
            _ => None,
        };
        let entry = self
            .accounts
            .entry(account.to_owned())
            .or_insert(AccountStatus {
                state: ConnectionState::Offline,
                security: None,
                retry_at: None,
                sync_fetched: None,
            });
        if !matches!(state, ConnectionState::Online { .. }) {
            entry.sync_fetched = None;
        }
        entry.state = state;
        entry.retry_at = retry_at;
    }

    /// How the account's session is secured (from `Client::connection_info`).
    pub fn set_security(&mut self, account: &str, info: ConnectionInfo) {
        if let Some(a) = self.accounts.get_mut(account) {
            a.security = Some(info);
        }
    }

    /// One line on how the account's session is secured, while it is online ("" else).
    pub fn security_text(&self, account: &str) -> String {
        match self.accounts.get(account) {
            Some(AccountStatus {
                state: ConnectionState::Online { .. },
                security: Some(info),
                ..
            }) => security(info),
            _ => String::new(),
        }
    }

    pub fn remove(&mut self, account: &str) {
        self.accounts.remove(account);
    }

    pub fn sync_progress(&mut self, account: &str, fetched: Option<u64>) {
        if let Some(a) = self.accounts.get_mut(account) {
            a.sync_fetched = fetched;
        }
    }

    /// Whether any account waits for a timed reconnect (the status line counts down).
    pub fn counting_down(&self) -> bool {
        self.accounts.values().any(|a| a.retry_at.is_some())
    }

    /// Text for one account ("Online", "Reconnecting in 4 s: connection reset", …) and
    /// whether it is a problem the user should look at.
    pub fn account_text(&self, account: &str, now: Instant) -> (String, bool) {
        match self.accounts.get(account) {
            Some(a) => describe(a, now),
            None => ("Offline".to_owned(), false),
        }
    }

    /// One line for the status bar: all accounts when there are several.
    pub fn summary(&self, now: Instant) -> (String, bool) {
        match self.accounts.len() {
            0 => ("No account".to_owned(), false),
            1 => self
                .accounts
                .values()
                .next()
                .map(|a| describe(a, now))
                .unwrap_or_default(),
            _ => {
                let mut problem = false;
                let parts: Vec<String> = self
                    .accounts
                    .iter()
                    .map(|(jid, a)| {
                        let (text, p) = describe(a, now);
                        problem |= p;
                        format!("{jid}: {text}")
                    })
                    .collect();
                (parts.join(" · "), problem)
            }
        }
    }

    /// "Fetching history: 1,200 messages" while any account catches up, else "".
    pub fn sync_text(&self) -> String {
        let total: u64 = self.accounts.values().filter_map(|a| a.sync_fetched).sum();
        if self.accounts.values().all(|a| a.sync_fetched.is_none()) {
            return String::new();
        }
        format!("Fetching history: {} messages", thousands(total))
    }
}

/// "TLS 1.3 · certificate from a trusted authority · login SCRAM-SHA-1-PLUS, bound to this
/// connection · FAST token".
fn security(info: &ConnectionInfo) -> String {
    let trust = if info.dane {
        "certificate matches the domain's DANE records"
    } else {
        "certificate from a trusted authority"
    };
    let binding = match &info.channel_binding {
        Some(_) => ", bound to this connection",
        None => ", not bound to this connection",
    };
    let mut parts = vec![
        info.tls_version.clone(),
        trust.to_owned(),
        format!("login {}{binding}", info.mechanism),
    ];
    if info.fast {
        parts.push("with a login token, not the password".to_owned());
    }
    parts.join(" · ")
}

fn describe(a: &AccountStatus, now: Instant) -> (String, bool) {
    match &a.state {
        ConnectionState::Connecting => ("Connecting…".to_owned(), false),
        ConnectionState::Online { .. } => ("Online".to_owned(), false),
        ConnectionState::Offline => ("Offline".to_owned(), false),
        ConnectionState::Reconnecting { reason, .. } => {
            let when = match a.retry_at {
                Some(at) if at > now => {
                    format!(
                        "Reconnecting in {} s",
                        (at - now).as_secs_f32().ceil() as u64
                    )
                }
                _ => "Reconnecting…".to_owned(),
            };
            let text = match reason {
                Some(r) => format!("{when} ({r})"),
                None => when,
            };
            (text, true)
        }
        ConnectionState::Failed { error, kind } => {
            let hint = match *kind {
                "wrong_password" => " — remove and add the account again with the right password",
                "certificate_not_trusted" => {
                    " — check the server's certificate or add its CA in the account settings"
                }
                _ => "",
            };
            (format!("Not connected: {error}{hint}"), true)
        }
    }
}

/// 1234567 -> "1,234,567".
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_counts_down_and_sync_shows() {
        let mut s = Status::default();
        let t0 = Instant::now();
        s.set_state(
            "a@x",
            ConnectionState::Reconnecting {
                retry_in_secs: Some(4),
                reason: Some("connection reset".into()),
            },
            t0,
        );
        assert!(s.counting_down());
        assert_eq!(
            s.summary(t0),
            ("Reconnecting in 4 s (connection reset)".to_owned(), true)
        );
        assert_eq!(
            s.summary(t0 + Duration::from_millis(2500)).0,
            "Reconnecting in 2 s (connection reset)"
        );
        s.set_state("a@x", ConnectionState::Online { resumed: false }, t0);
        assert!(!s.counting_down());
        assert_eq!(s.sync_text(), "");
        s.sync_progress("a@x", Some(1200));
        assert_eq!(s.sync_text(), "Fetching history: 1,200 messages");
        s.set_state("b@y", ConnectionState::Connecting, t0);
        assert_eq!(s.summary(t0).0, "a@x: Online · b@y: Connecting…");
        s.set_state(
            "b@y",
            ConnectionState::Failed {
                error: "wrong password for b@y".into(),
                kind: "wrong_password",
            },
            t0,
        );
        assert!(s.account_text("b@y", t0).1);
        assert!(s.account_text("b@y", t0).0.contains("right password"));
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn security_line_says_how_the_session_is_secured_while_online() {
        let mut s = Status::default();
        let t0 = Instant::now();
        let info = ConnectionInfo {
            tls_version: "TLS 1.3".to_owned(),
            dane: true,
            mechanism: "HT-SHA-256-EXPR".to_owned(),
            sasl2: true,
            fast: true,
            channel_binding: Some("tls-exporter".to_owned()),
            ..ConnectionInfo::default()
        };
        s.set_state("a@x", ConnectionState::Online { resumed: false }, t0);
        s.set_security("a@x", info);
        assert_eq!(
            s.security_text("a@x"),
            "TLS 1.3 · certificate matches the domain's DANE records · login HT-SHA-256-EXPR, \
             bound to this connection · with a login token, not the password"
        );
        s.set_state(
            "a@x",
            ConnectionState::Reconnecting {
                retry_in_secs: None,
                reason: None,
            },
            t0,
        );
        assert_eq!(s.security_text("a@x"), "");
        assert_eq!(s.security_text("nobody@x"), "");
    }
}
