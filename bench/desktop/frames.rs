//! Figure 2, run in its own process (`desktop __frames N`): frame times while the app
//! catches up on an archive of N messages.
//!
//! Steps: start Prosody (no offline storage, no archive trimming, MAM pages of 250), register
//! alice and bob, let `benches/peers/populate.py` send N messages bob -> alice (not timed),
//! add alice to a fresh profile, then open the app on the headless backend: `App::new`
//! connects the account, which starts the catch-up. A timer renders full 1100x720 frames at
//! up to 60 Hz with the software renderer and records how long each took
//! (`headless::Recorder`). As soon as bob's conversation is listed it is opened, so the
//! timeline grows while frames are rendered (`--no-open`: only after the catch-up).
//! The run ends when the core reported `SyncDone`, the status bar no longer says "Fetching
//! history" and the timeline's last row is the last archived message.
//! Checks: all N messages are stored, and the open timeline shows the newest messages
//! without gaps.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use slint::{ComponentHandle as _, Model as _};
use starling::testbed::{Prosody, ProsodyOptions};
use starling::ui::{App, AppWindow, ChatAdapter, ConversationsAdapter, Shell};
use starling_core::connection::TlsMode;
use starling_core::secrets::Password;
use starling_core::{AccountOptions, Client, Event};

use crate::headless::{self, Recorder};
use crate::logs::Warnings;
use crate::stats::Summary;

const PAGE_SIZE: u32 = 250;
const ALICE_PASSWORD: &str = "alice-desktop-pw";
const BOB_PASSWORD: &str = "bob-desktop-pw";
/// A frame (or a gap between two frame starts) longer than this is a visible stutter.
pub const JANK_MS: f64 = 50.0;

/// What the child reports.
#[derive(Debug, Serialize, Deserialize)]
pub struct FramesResult {
    pub messages: usize,
    /// Seconds to fill the archive (not part of any figure).
    pub populate_s: f64,
    /// App start to the account online.
    pub connect_s: f64,
    /// Online to `SyncDone`.
    pub catch_up_s: f64,
    /// `SyncDone` to the last message shown in the open timeline.
    pub drain_s: f64,
    /// Whether bob's conversation was opened before `SyncDone`.
    pub opened_during_catch_up: bool,
    /// Frames rendered between online and `SyncDone`.
    pub render_ms: Summary,
    /// Time between consecutive frame starts in the same window (16 ms when the UI thread
    /// keeps up).
    pub interval_ms: Summary,
    pub frames_over_jank: usize,
    pub intervals_over_jank: usize,
    /// Rows in the open timeline at the end.
    pub timeline_rows: usize,
    /// "Read" events while the conversation was open (one per `mark_read`).
    pub read_events: u64,
    /// Stored messages with a stanza id (`mark_read` sends a displayed marker for those).
    pub with_stanza_id: usize,
    pub message_events: u64,
    pub rss_end_kib: u64,
    pub peak_rss_kib: u64,
    pub warnings: Vec<String>,
}

/// What the core reported during the run (written on the runtime, read on the UI thread).
#[derive(Debug, Default)]
struct Watch {
    online: Option<Instant>,
    done: Option<(Instant, u64)>,
    messages: u64,
    reads: u64,
}

pub fn child(args: &[String]) -> Result<FramesResult> {
    let n: usize = args
        .first()
        .context("usage: desktop __frames N [--no-open]")?
        .parse()
        .context("N must be a number")?;
    // For comparison: leave the conversation closed during the catch-up.
    let open = !args.iter().any(|a| a == "--no-open");
    let warnings = Warnings::install();
    let python = crate::peer_python();
    if !python.exists() {
        bail!(
            "python {} not found: run scripts/test (it creates .venv) or set \
             STARLING_TEST_PYTHON to a python with slixmpp 1.17",
            python.display()
        );
    }
    let tmp = tempfile::tempdir().context("creating a temporary directory")?;
    let server = Prosody::start(
        &tmp.path().join("prosody"),
        ProsodyOptions {
            offline_delivery: false,
            archive_item_limit: Some(1_000_000),
            max_archive_query_results: Some(PAGE_SIZE),
            ..ProsodyOptions::default()
        },
    )
    .context("starting Prosody")?;
    server.register("alice", ALICE_PASSWORD)?;
    server.register("bob", BOB_PASSWORD)?;
    let alice = server.jid("alice");
    let bob = server.jid("bob");

    let started = Instant::now();
    populate(&python, &server, &bob, &alice, n)?;
    let populate_s = started.elapsed().as_secs_f64();
    eprintln!("desktop: archived {n} messages in {populate_s:.1} s");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let profile = tmp.path().join("profile");
    let client = Client::open_private(&profile).context("opening the profile")?;
    {
        let opts = AccountOptions {
            server: Some(("127.0.0.1".into(), server.c2s_port())),
            tls: TlsMode::StartTls,
            ca_file: Some(server.ca_file().to_path_buf()),
            first_sync_days: Some(3650),
        };
        rt.block_on(client.add_account(&alice, Password::new(ALICE_PASSWORD), opts))
            .context("adding alice")?;
    }
    let watch = Arc::new(Mutex::new(Watch::default()));
    watch_events(&rt, &client, &alice, watch.clone());

    headless::init()?;
    // Generous: Prosody's internal storage reads the whole archive for every MAM page, so a
    // catch-up slows down as the archive grows (see bench/README.md).
    let timeout = Duration::from_secs(120) + Duration::from_millis(60 * n as u64);
    let script = {
        let (client, rt_handle) = (client.clone(), rt.handle().clone());
        let (alice, bob, watch) = (alice.clone(), bob.clone(), watch.clone());
        async move {
            let app = App::new(client, rt_handle).map_err(|e| anyhow!("App::new: {e}"))?;
            let app_started = Instant::now();
            let w = app.window();
            headless::show(w)?;
            let recorder = Recorder::start(w);

            let opened_during_catch_up = if open {
                until_listed(w, &alice, &bob, timeout).await?;
                let during = lock(&watch).done.is_none();
                w.global::<ConversationsAdapter<'_>>()
                    .invoke_open(alice.as_str().into(), bob.as_str().into());
                during
            } else {
                // Wait for the end of the catch-up, then open it.
                headless::until("the end of the catch-up", timeout, || {
                    lock(&watch).done.map(|_| ())
                })
                .await?;
                until_listed(w, &alice, &bob, timeout).await?;
                w.global::<ConversationsAdapter<'_>>()
                    .invoke_open(alice.as_str().into(), bob.as_str().into());
                false
            };

            let last = format!("archived message {}", n - 1);
            let shown = headless::until("the catch-up to finish and show", timeout, || {
                let synced = lock(&watch).done.is_some();
                let idle = w.global::<Shell<'_>>().get_sync_text().is_empty();
                (synced && idle && last_row_text(w).as_deref() == Some(last.as_str()))
                    .then(Instant::now)
            })
            .await?;
            let frames = recorder.stop()?;
            // One more frame with the final content, checked for not being blank.
            headless::render_checked(w)?;
            let rows = timeline_texts(w);
            drop(app);
            Ok((app_started, opened_during_catch_up, shown, frames, rows))
        }
    };
    let (app_started, opened_during_catch_up, shown, frames, rows) = headless::run_script(script)?;
    rt.block_on(client.disconnect_all());

    // Functional checks.
    let history = client
        .history(&alice, &bob, u32::try_from(n + 100).unwrap_or(u32::MAX))
        .context("reading the stored history")?;
    let stored = history
        .iter()
        .filter(|m| m.body.starts_with("archived message "))
        .count();
    let with_stanza_id = history.iter().filter(|m| m.stanza_id.is_some()).count();
    if stored != n {
        bail!("the catch-up stored {stored} of the {n} archived messages");
    }
    check_contiguous(&rows, n)?;

    let w = lock(&watch);
    let online = w.online.context("the account never came online")?;
    let (done, fetched) = w.done.context("no SyncDone")?;
    if fetched != n as u64 {
        eprintln!("desktop: note: SyncDone reported {fetched} fetched, archived {n}");
    }
    let in_window: Vec<_> = frames
        .iter()
        .filter(|f| f.start >= online && f.start <= done)
        .collect();
    let render: Vec<f64> = in_window
        .iter()
        .map(|f| f.render.as_secs_f64() * 1e3)
        .collect();
    let interval: Vec<f64> = in_window
        .windows(2)
        .map(|p| (p[1].start - p[0].start).as_secs_f64() * 1e3)
        .collect();
    let (rss, peak) = headless::memory_kib()?;
    server.stop().context("stopping Prosody")?;
    Ok(FramesResult {
        messages: n,
        populate_s,
        connect_s: online.saturating_duration_since(app_started).as_secs_f64(),
        catch_up_s: done.saturating_duration_since(online).as_secs_f64(),
        drain_s: shown.saturating_duration_since(done).as_secs_f64(),
        opened_during_catch_up,
        frames_over_jank: render.iter().filter(|ms| **ms > JANK_MS).count(),
        intervals_over_jank: interval.iter().filter(|ms| **ms > JANK_MS).count(),
        render_ms: Summary::of(&render),
        interval_ms: Summary::of(&interval),
        timeline_rows: rows.len(),
        read_events: w.reads,
        with_stanza_id,
        message_events: w.messages,
        rss_end_kib: rss,
        peak_rss_kib: peak,
        warnings: warnings.summary(),
    })
}

fn lock(watch: &Mutex<Watch>) -> std::sync::MutexGuard<'_, Watch> {
    watch.lock().unwrap_or_else(|p| p.into_inner())
}

/// Records, on the runtime, when the account came online and when the catch-up ended.
fn watch_events(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    account: &str,
    watch: Arc<Mutex<Watch>>,
) {
    let mut rx = client.events();
    let account = account.to_owned();
    rt.spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            let ev = match rx.recv().await {
                Ok(ev) => ev,
                Err(RecvError::Lagged(missed)) => {
                    eprintln!("desktop: the event watcher missed {missed} events");
                    continue;
                }
                Err(RecvError::Closed) => return,
            };
            let mut w = lock(&watch);
            match ev {
                Event::Connection {
                    account: a,
                    state: starling_core::ConnectionState::Online { .. },
                } if a == account && w.online.is_none() => {
                    w.online = Some(Instant::now());
                }
                Event::SyncDone {
                    account: a,
                    fetched,
                } if a == account && w.done.is_none() => {
                    w.done = Some((Instant::now(), fetched));
                }
                Event::Message { .. } => w.messages += 1,
                Event::ConversationRead { .. } => w.reads += 1,
                _ => {}
            }
        }
    });
}

async fn until_listed(w: &AppWindow, account: &str, peer: &str, timeout: Duration) -> Result<()> {
    headless::until("the conversation in the list", timeout, || {
        let items = w.global::<ConversationsAdapter<'_>>().get_items();
        (0..items.row_count())
            .filter_map(|i| items.row_data(i))
            .any(|r| r.account == account && r.peer == peer)
            .then_some(())
    })
    .await
}

fn last_row_text(w: &AppWindow) -> Option<String> {
    let rows = w.global::<ChatAdapter<'_>>().get_messages();
    let n = rows.row_count();
    n.checked_sub(1)
        .and_then(|i| rows.row_data(i))
        .map(|r| r.text.to_string())
}

fn timeline_texts(w: &AppWindow) -> Vec<String> {
    let rows = w.global::<ChatAdapter<'_>>().get_messages();
    (0..rows.row_count())
        .filter_map(|i| rows.row_data(i))
        .map(|r| r.text.to_string())
        .collect()
}

/// The timeline must end with the last message and hold consecutive messages only.
fn check_contiguous(rows: &[String], n: usize) -> Result<()> {
    let numbers: Vec<usize> = rows
        .iter()
        .map(|t| {
            t.strip_prefix("archived message ")
                .and_then(|i| i.parse().ok())
                .with_context(|| format!("unexpected row {t:?} in the timeline"))
        })
        .collect::<Result<_>>()?;
    if numbers.last() != Some(&(n - 1)) {
        bail!("the timeline does not end with message {}", n - 1);
    }
    if let Some(p) = numbers.windows(2).find(|p| p[1] != p[0] + 1) {
        bail!(
            "the timeline skips from message {} to {} ({} rows shown)",
            p[0],
            p[1],
            numbers.len()
        );
    }
    Ok(())
}

fn populate(python: &Path, server: &Prosody, from: &str, to: &str, n: usize) -> Result<()> {
    let out = Command::new(python)
        .arg(script("populate.py"))
        .args(["--jid", from, "--to", to, "--count", &n.to_string()])
        .args(["--port", &server.c2s_port().to_string(), "--ca-file"])
        .arg(server.ca_file())
        .env("PEER_PASSWORD", BOB_PASSWORD)
        .stdin(Stdio::null())
        .output()
        .context("running populate.py")?;
    if !out.status.success() {
        bail!(
            "populate.py failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .context("populate.py printed nothing")?;
    let v: serde_json::Value =
        serde_json::from_str(line).with_context(|| format!("parsing {line:?}"))?;
    if v["sent"].as_u64() != Some(n as u64) {
        bail!("populate.py did not send {n} messages: {line}");
    }
    Ok(())
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("benches/peers")
        .join(name)
}
