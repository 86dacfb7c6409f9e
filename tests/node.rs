//! The Starling side of integration tests: a `Client` with its own throwaway profile,
//! logged in to a test server, plus helpers to wait for events (never sleeps).

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use starling::testbed::Prosody;
use starling_core::connection::TlsMode;
use starling_core::secrets::Password;
use starling_core::store::MessageRecord;
use starling_core::{AccountOptions, Client, ConnectionState, Event, MessageState};
use tokio::sync::broadcast;

use crate::support::Account;

pub const WAIT: Duration = Duration::from_secs(30);

/// A Starling client for one account, in its own profile directory.
pub struct Node {
    pub client: Client,
    pub jid: String,
    events: broadcast::Receiver<Event>,
    _dir: tempfile::TempDir,
}

/// Logs to the test output when STARLING_TEST_LOG is set (an env filter, e.g. `debug`).
pub fn init_logging() {
    if let Ok(filter) = std::env::var("STARLING_TEST_LOG") {
        let _ignored_if_already_set = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
}

/// Account options pointing at the test server (STARTTLS, trusting the test CA).
pub fn options(server: &Prosody) -> AccountOptions {
    options_via(server, server.c2s_port(), TlsMode::StartTls)
}

/// Account options for reaching the test server through 127.0.0.1:`port` (a proxy, a
/// man-in-the-middle, or the server itself), trusting the test CA.
pub fn options_via(server: &Prosody, port: u16, tls: TlsMode) -> AccountOptions {
    AccountOptions {
        server: Some(("127.0.0.1".into(), port)),
        tls,
        ca_file: Some(server.ca_file().to_path_buf()),
        first_sync_days: None,
    }
}

impl Node {
    /// A new profile with `account` added (the login is checked by `add_account`).
    pub async fn new(server: &Prosody, account: &Account) -> Result<Node> {
        Self::with_options(account, options(server)).await
    }

    pub async fn with_options(account: &Account, opts: AccountOptions) -> Result<Node> {
        init_logging();
        let dir = tempfile::Builder::new()
            .prefix("starling-profile-")
            .tempdir()?;
        let client = Client::open_private(dir.path())?;
        let events = client.events();
        client
            .add_account(&account.jid, Password::new(account.password.clone()), opts)
            .await
            .with_context(|| format!("adding {}", account.jid))?;
        Ok(Node {
            client,
            jid: account.jid.clone(),
            events,
            _dir: dir,
        })
    }

    /// Connects and waits until online and the archive catch-up is done.
    pub async fn online(&mut self) -> Result<()> {
        self.client.connect(&self.jid).await?;
        self.wait_online().await?;
        self.wait_for("sync done", |e| {
            matches!(e, Event::SyncDone { .. }).then_some(())
        })
        .await
    }

    pub async fn wait_online(&mut self) -> Result<()> {
        self.wait_for("online", |e| match e {
            Event::Connection {
                state: ConnectionState::Online { .. },
                ..
            } => Some(Ok(())),
            Event::Connection {
                state: ConnectionState::Failed { error, .. },
                ..
            } => Some(Err(anyhow!("connection failed: {error}"))),
            _ => None,
        })
        .await?
    }

    /// Waits for the first event (from now on, in order) for which `f` returns Some.
    pub async fn wait_for<T>(
        &mut self,
        what: &str,
        mut f: impl FnMut(&Event) -> Option<T>,
    ) -> Result<T> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Err(_) => bail!("{}: no '{what}' within {WAIT:?}", self.jid),
                Ok(Ok(ev)) => {
                    if let Some(t) = f(&ev) {
                        return Ok(t);
                    }
                }
                Ok(Err(broadcast::error::RecvError::Lagged(n))) => {
                    bail!("{}: test lagged {n} events behind", self.jid)
                }
                Ok(Err(e)) => bail!("{}: event stream ended: {e}", self.jid),
            }
        }
    }

    /// The events that have arrived and not been waited for yet (without waiting).
    pub fn arrived(&mut self) -> Vec<Event> {
        let mut got = Vec::new();
        while let Ok(e) = self.events.try_recv() {
            got.push(e);
        }
        got
    }

    /// Forgets the events received so far: the next waits see only what happens from now.
    pub fn skip_pending(&mut self) {
        self.events = self.events.resubscribe();
    }

    /// Waits for a new incoming message whose body is `body`.
    pub async fn wait_message(&mut self, body: &str) -> Result<MessageRecord> {
        self.wait_for(&format!("message {body:?}"), |e| match e {
            Event::Message { message, .. } if message.body == body => Some(message.clone()),
            _ => None,
        })
        .await
    }

    /// Waits until our message `id` reaches at least `state`.
    pub async fn wait_state(&mut self, id: i64, state: MessageState) -> Result<MessageRecord> {
        self.wait_for(&format!("message {id} {state:?}"), |e| match e {
            Event::MessageUpdated { message, .. } if message.id == id && message.state >= state => {
                Some(message.clone())
            }
            _ => None,
        })
        .await
    }

    pub fn history(&self, peer: &str) -> Result<Vec<MessageRecord>> {
        Ok(self.client.history(&self.jid, peer, 10_000)?)
    }

    pub async fn send(&self, to: &str, body: &str) -> Result<MessageRecord> {
        Ok(self.client.send_message(&self.jid, to, body).await?)
    }

    /// The profile directory.
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    pub async fn shutdown(self) {
        self.client.disconnect_all().await;
    }
}
