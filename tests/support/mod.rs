//! Helpers shared by the integration tests: a throwaway Prosody per test
//! ([`fresh_server`]), unique account names ([`unique_name`], [`TestServer::account`]) and
//! an independent slixmpp peer driven over JSON lines ([`Peer`], see `tests/peers/peer.py`).
//!
//! All waiting is bounded and condition-based: nothing here sleeps to synchronise.
#![allow(dead_code)] // each test module uses a different subset

pub mod dns;
pub mod https;
pub mod scripted;

use std::collections::VecDeque;
use std::ops::Deref;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use starling::testbed::{Prosody, ProsodyOptions};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// How long a peer may take to log in.
pub const ONLINE_TIMEOUT: Duration = Duration::from_secs(20);
/// Default bound for one peer command to complete.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);
/// Default bound for an expected event.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(15);

const STDERR_KEEP: usize = 200;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A name unique within this test process: `{prefix}{n}` (lowercase ASCII, valid as a
/// JID localpart when `prefix` is).
pub fn unique_name(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{n}")
}

/// A Prosody running in its own temporary directory. Dereferences to [`Prosody`].
/// Dropping it stops the server, then removes the directory.
pub struct TestServer {
    // Field order matters: the server stops before its directory is removed.
    prosody: Prosody,
    dir: tempfile::TempDir,
}

/// An account created on a [`TestServer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub user: String,
    /// Bare JID, `user@localhost`.
    pub jid: String,
    pub password: String,
}

/// Starts a fresh server with default options (blocks for ~0.5 s).
pub fn fresh_server() -> Result<TestServer> {
    fresh_server_with(ProsodyOptions::default())
}

/// Starts a fresh server with the given options.
pub fn fresh_server_with(opts: ProsodyOptions) -> Result<TestServer> {
    let dir = tempfile::Builder::new()
        .prefix("starling-prosody-")
        .tempdir()
        .context("creating a temporary directory for Prosody")?;
    let prosody = Prosody::start(dir.path(), opts)?;
    Ok(TestServer { prosody, dir })
}

impl TestServer {
    /// Registers a new account with a unique name starting with `prefix`.
    pub fn account(&self, prefix: &str) -> Result<Account> {
        let user = unique_name(prefix);
        let password = format!("pw-{user}-{}", std::process::id());
        self.prosody.register(&user, &password)?;
        Ok(Account {
            jid: self.prosody.jid(&user),
            user,
            password,
        })
    }

    /// The temporary directory (same as `dir()` of the server).
    pub fn temp_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Stops the server and reports a failed stop (dropping does it silently).
    pub fn stop(self) -> Result<()> {
        let TestServer { prosody, dir } = self;
        prosody.stop()?;
        dir.close().context("removing the Prosody directory")
    }

    /// Starts a peer logged in as `account` and waits until it is online.
    pub async fn peer(&self, account: &Account) -> Result<Peer> {
        Peer::connect(self, account, PeerOptions::default()).await
    }
}

impl Deref for TestServer {
    type Target = Prosody;

    fn deref(&self) -> &Prosody {
        &self.prosody
    }
}

impl std::ops::DerefMut for TestServer {
    fn deref_mut(&mut self) -> &mut Prosody {
        &mut self.prosody
    }
}

/// How a [`Peer`] connects.
#[derive(Debug, Clone, Default)]
pub struct PeerOptions {
    /// Direct TLS on the server's direct TLS port instead of STARTTLS on c2s.
    pub direct_tls: bool,
    /// Resource to bind (the server picks one otherwise).
    pub resource: Option<String>,
    /// Accept subscription requests automatically (otherwise use the `approve` command).
    pub auto_approve: bool,
}

/// The Python interpreter for the peers: `$STARLING_TEST_PYTHON`, else `.venv/bin/python`
/// in the repository (created by `scripts/test`).
pub fn peer_python() -> PathBuf {
    match std::env::var_os("STARLING_TEST_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"),
    }
}

/// `tests/peers/peer.py`.
pub fn peer_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/peer.py")
}

/// An independent XMPP client (slixmpp) in a child process. Commands go to its stdin as
/// JSON lines, events come back on its stdout; see `tests/peers/peer.py` for the protocol.
/// The process is killed when the `Peer` is dropped.
pub struct Peer {
    /// The bare JID it logged in as.
    pub jid: String,
    /// The full JID bound by the server (from the `online` event).
    pub full_jid: String,
    child: Child,
    stdin: Option<ChildStdin>,
    events: Lines<BufReader<ChildStdout>>,
    /// Events read while waiting for something else, oldest first.
    backlog: VecDeque<Value>,
    stderr: Arc<Mutex<VecDeque<String>>>,
    next_tag: usize,
}

impl Peer {
    /// Spawns `peer.py` for `account` and waits for its `online` event.
    pub async fn connect(server: &Prosody, account: &Account, opts: PeerOptions) -> Result<Peer> {
        let python = peer_python();
        if !python.exists() {
            bail!(
                "peer python {} not found: run scripts/test (it creates .venv) or set \
                 STARLING_TEST_PYTHON to a python with slixmpp 1.17",
                python.display()
            );
        }
        let port = if opts.direct_tls {
            server.direct_tls_port()
        } else {
            server.c2s_port()
        };
        let mut cmd = Command::new(&python);
        cmd.arg(peer_script())
            .arg("--jid")
            .arg(&account.jid)
            .arg("--host")
            .arg("127.0.0.1")
            .arg("--port")
            .arg(port.to_string())
            .arg("--ca-file")
            .arg(server.ca_file());
        if opts.direct_tls {
            cmd.arg("--direct-tls");
        }
        if let Some(resource) = &opts.resource {
            cmd.arg("--resource").arg(resource);
        }
        if opts.auto_approve {
            cmd.arg("--auto-approve");
        }
        let mut child = cmd
            .env("PEER_PASSWORD", &account.password)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| {
                format!("spawning {} {}", python.display(), peer_script().display())
            })?;

        let stdin = child.stdin.take().context("peer stdin not captured")?;
        let stdout = child.stdout.take().context("peer stdout not captured")?;
        let stderr = child.stderr.take().context("peer stderr not captured")?;
        let stderr_lines = Arc::new(Mutex::new(VecDeque::new()));
        let sink = Arc::clone(&stderr_lines);
        let who = account.jid.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("[peer {who}] {line}");
                if let Ok(mut kept) = sink.lock() {
                    if kept.len() == STDERR_KEEP {
                        kept.pop_front();
                    }
                    kept.push_back(line);
                }
            }
        });

        let mut peer = Peer {
            jid: account.jid.clone(),
            full_jid: String::new(),
            child,
            stdin: Some(stdin),
            events: BufReader::new(stdout).lines(),
            backlog: VecDeque::new(),
            stderr: stderr_lines,
            next_tag: 0,
        };
        let online = peer
            .next_event_matching(
                |e| matches!(event_name(e), "online" | "error" | "disconnected"),
                ONLINE_TIMEOUT,
            )
            .await
            .with_context(|| format!("peer {} coming online", account.jid))?;
        if event_name(&online) != "online" {
            bail!("peer {} failed to come online: {online}", account.jid);
        }
        peer.full_jid = online["jid"]
            .as_str()
            .context("online event without jid")?
            .to_owned();
        Ok(peer)
    }

    /// Writes one command line. Does not wait for it; see [`Peer::command`].
    pub async fn send_cmd(&mut self, cmd: &Value) -> Result<()> {
        let stdin = self.stdin.as_mut().context("peer stdin already closed")?;
        let mut line = serde_json::to_string(cmd).context("encoding a peer command")?;
        line.push('\n');
        stdin
            .write_all(line.as_bytes())
            .await
            .with_context(|| format!("writing to peer {}", self.jid))?;
        stdin.flush().await.context("flushing peer stdin")?;
        Ok(())
    }

    /// Sends `cmd` with a fresh `tag` and waits for its `done` event (returned), failing on
    /// its `error` event or after [`COMMAND_TIMEOUT`].
    pub async fn command(&mut self, mut cmd: Value) -> Result<Value> {
        let tag = format!("t{}", self.next_tag);
        self.next_tag += 1;
        let obj = cmd
            .as_object_mut()
            .context("a peer command must be a JSON object")?;
        obj.insert("tag".into(), Value::String(tag.clone()));
        self.send_cmd(&cmd).await?;
        let reply = self
            .next_event_matching(
                |e| matches!(event_name(e), "done" | "error") && e["tag"].as_str() == Some(&tag),
                COMMAND_TIMEOUT,
            )
            .await
            .with_context(|| format!("waiting for peer {} to complete {cmd}", self.jid))?;
        if event_name(&reply) == "error" {
            bail!("peer {} failed {cmd}: {reply}", self.jid);
        }
        Ok(reply)
    }

    /// Sends a chat message (with origin-id = id) and returns its id.
    pub async fn send_message(&mut self, to: &str, body: &str) -> Result<String> {
        let done = self
            .command(json!({"cmd": "send", "to": to, "body": body, "receipt": true}))
            .await?;
        done["id"]
            .as_str()
            .map(str::to_owned)
            .context("send done without id")
    }

    /// A server round trip (XEP-0199 ping): everything this peer sent before has been
    /// processed by the server when this returns.
    pub async fn sync(&mut self) -> Result<()> {
        self.command(json!({"cmd": "ping"})).await.map(drop)
    }

    /// Returns the first event (oldest first, including ones buffered while waiting for
    /// something else) that satisfies `pred`, waiting at most `timeout` for new ones.
    /// Events that do not match stay buffered for later calls.
    pub async fn next_event_matching<F>(&mut self, mut pred: F, timeout: Duration) -> Result<Value>
    where
        F: FnMut(&Value) -> bool,
    {
        if let Some(pos) = self.backlog.iter().position(&mut pred) {
            return self.backlog.remove(pos).context("backlog index");
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let line = match tokio::time::timeout_at(deadline, self.events.next_line()).await {
                Err(_) => {
                    bail!(
                        "peer {}: no matching event within {timeout:?}; unmatched events: {}; \
                         stderr tail:\n{}",
                        self.jid,
                        self.backlog_summary(),
                        self.stderr_tail()
                    )
                }
                Ok(Err(e)) => return Err(e).context("reading peer stdout"),
                Ok(Ok(None)) => {
                    // stdout closed: the process is exiting; give it a moment for its status.
                    let status = tokio::time::timeout(Duration::from_secs(2), self.child.wait())
                        .await
                        .ok()
                        .and_then(Result::ok);
                    bail!(
                        "peer {} exited ({}) before a matching event; unmatched events: {}; \
                         stderr tail:\n{}",
                        self.jid,
                        status.map_or_else(|| "status unknown".to_owned(), |s| s.to_string()),
                        self.backlog_summary(),
                        self.stderr_tail()
                    )
                }
                Ok(Ok(Some(line))) => line,
            };
            let event: Value = match serde_json::from_str(&line) {
                Ok(v) => v,
                Err(e) => {
                    return Err(anyhow!(e)).with_context(|| {
                        format!("peer {} wrote a non-JSON line {line:?}", self.jid)
                    });
                }
            };
            if pred(&event) {
                return Ok(event);
            }
            self.backlog.push_back(event);
        }
    }

    /// The next event named `name` (e.g. `"message"`, `"receipt"`).
    pub async fn next_event(&mut self, name: &str, timeout: Duration) -> Result<Value> {
        self.next_event_matching(|e| event_name(e) == name, timeout)
            .await
    }

    /// Removes and returns everything buffered so far.
    pub fn take_backlog(&mut self) -> Vec<Value> {
        self.backlog.drain(..).collect()
    }

    /// Sends `quit` and waits (bounded) for the process to exit cleanly.
    pub async fn quit(mut self) -> Result<ExitStatus> {
        self.send_cmd(&json!({"cmd": "quit"})).await?;
        self.stdin = None;
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .with_context(|| format!("peer {} did not exit after quit", self.jid))?
            .context("waiting for the peer")?;
        if !status.success() {
            bail!(
                "peer {} exited with {status}; stderr tail:\n{}",
                self.jid,
                self.stderr_tail()
            );
        }
        Ok(status)
    }

    fn backlog_summary(&self) -> String {
        let all: Vec<String> = self.backlog.iter().map(Value::to_string).collect();
        if all.is_empty() {
            "none".to_owned()
        } else {
            all.join(", ")
        }
    }

    fn stderr_tail(&self) -> String {
        self.stderr
            .lock()
            .map(|l| l.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }
}

/// The `event` field of a peer event ("" if missing).
pub fn event_name(event: &Value) -> &str {
    event["event"].as_str().unwrap_or("")
}
