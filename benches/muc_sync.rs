//! Group chat benchmark: join R rooms, then catch up M messages in each from the rooms'
//! archives after being offline, and the process's memory with R rooms joined. Prints
//! figures; never asserts timings.
//!
//! `cargo bench --bench muc_sync` uses R = 100 rooms × M = 100 messages; any other run
//! (e.g. `cargo test --all-targets`, which runs this binary without `--bench`) uses a smoke
//! size of 10 × 20.
//!
//! Steps: start Prosody, register alice and bob; `benches/peers/populate_rooms.py` (bob)
//! creates R persistent rooms; Starling (alice, in this process, through the core's
//! `Client`) joins all R at once — timed until every join answered and every first-visit
//! catch-up finished; alice goes offline; bob posts M messages in every room; alice
//! connects again — timed until every room reported its archive catch-up done, then
//! checked: every room holds exactly M new messages, none twice. Memory is this process's
//! resident set (VmRSS) at the end, with R rooms joined (no UI).
//!
//! Needs Prosody (see `app/testbed.rs`) and a Python with slixmpp 1.17:
//! `$STARLING_TEST_PYTHON`, else `.venv/bin/python` in the repository (`scripts/test`).

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use support::{peer_python, script};

mod support;
use starling::testbed::{CONFERENCE_DOMAIN, Prosody, ProsodyOptions};
use starling_core::connection::TlsMode;
use starling_core::secrets::Password;
use starling_core::store::MessageKind;
use starling_core::{AccountOptions, Client, ConnectionState, Event};

const FULL: (usize, usize) = (100, 100);
const SMOKE: (usize, usize) = (10, 20);
const ALICE_PASSWORD: &str = "alice-bench-pw";
const BOB_PASSWORD: &str = "bob-bench-pw";
const WAIT: Duration = Duration::from_secs(600);

fn main() -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("muc_sync: error: cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("muc_sync: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<()> {
    let full = std::env::args().any(|a| a == "--bench");
    let (rooms_n, per_room) = if full { FULL } else { SMOKE };
    let python = peer_python();
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
            archive_item_limit: Some(1_000_000),
            ..ProsodyOptions::default()
        },
    )
    .context("starting Prosody")?;
    server.register("alice", ALICE_PASSWORD)?;
    server.register("bob", BOB_PASSWORD)?;
    let alice = server.jid("alice");
    let rooms: Vec<String> = (0..rooms_n)
        .map(|i| format!("bench{i}@{CONFERENCE_DOMAIN}"))
        .collect();
    populate(&python, &server, &rooms, 0, true)?;

    let client = Client::open_private(&tmp.path().join("starling-profile"))?;
    client.set_room_ping_interval(Duration::from_secs(3600));
    client
        .add_account(
            &alice,
            Password::new(ALICE_PASSWORD),
            AccountOptions {
                server: Some(("127.0.0.1".into(), server.c2s_port())),
                tls: TlsMode::StartTls,
                ca_file: Some(server.ca_file().to_path_buf()),
                first_sync_days: None,
            },
        )
        .await?;
    let mut events = client.events();
    client.connect(&alice).await?;
    wait_online(&mut events).await?;

    // Join every room at once; each first visit fetches the (empty) newest archive page.
    let started = Instant::now();
    let joins = rooms
        .iter()
        .map(|r| client.join_room(&alice, r, Some("alice"), None));
    for r in futures::future::join_all(joins).await {
        r?;
    }
    wait_synced(&mut events, &rooms).await?;
    let join_secs = started.elapsed().as_secs_f64();

    // Offline while bob posts.
    client.disconnect_all().await;
    populate(&python, &server, &rooms, per_room, false)?;

    let started = Instant::now();
    let mut events = client.events();
    client.connect(&alice).await?;
    wait_synced(&mut events, &rooms).await?;
    let catchup_secs = started.elapsed().as_secs_f64();
    let rss = rss_mib();

    for room in &rooms {
        let msgs: Vec<_> = client
            .history(&alice, room, 100_000)?
            .into_iter()
            .filter(|m| m.kind == MessageKind::GroupChat)
            .collect();
        let unique: HashSet<_> = msgs.iter().map(|m| m.body.clone()).collect();
        if msgs.len() != per_room || unique.len() != per_room {
            bail!(
                "{room}: {} messages ({} distinct), expected {per_room}",
                msgs.len(),
                unique.len()
            );
        }
    }
    client.disconnect_all().await;
    server.stop().context("stopping Prosody")?;

    let total = rooms_n * per_room;
    println!("muc_sync: join {rooms_n} rooms (disco, join, first catch-up) {join_secs:.2} s");
    println!(
        "muc_sync: rejoin and catch up {rooms_n} rooms × {per_room} messages = {total} in \
         {catchup_secs:.2} s ({:.0} messages/s)",
        total as f64 / catchup_secs
    );
    match rss {
        Some(mib) => println!(
            "muc_sync: resident memory with {rooms_n} rooms joined: {mib:.1} MiB (core only, no UI)"
        ),
        None => println!("muc_sync: resident memory unavailable (no /proc/self/status)"),
    }
    if !full {
        println!(
            "muc_sync: smoke size; `cargo bench --bench muc_sync` runs {} rooms × {}",
            FULL.0, FULL.1
        );
    }
    Ok(())
}

async fn wait_online(events: &mut tokio::sync::broadcast::Receiver<Event>) -> Result<()> {
    let wait = async {
        loop {
            match events.recv().await? {
                Event::Connection {
                    state: ConnectionState::Online { .. },
                    ..
                } => return Ok::<_, anyhow::Error>(()),
                Event::Connection {
                    state: ConnectionState::Failed { error, .. },
                    ..
                } => bail!("connection failed: {error}"),
                _ => {}
            }
        }
    };
    tokio::time::timeout(WAIT, wait)
        .await
        .context("not online in time")?
}

/// Waits until every room reported its archive catch-up done.
async fn wait_synced(
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    rooms: &[String],
) -> Result<()> {
    let mut left: HashSet<&str> = rooms.iter().map(String::as_str).collect();
    let wait = async {
        while !left.is_empty() {
            match events.recv().await {
                Ok(Event::RoomSync {
                    room, done: true, ..
                }) => {
                    left.remove(room.as_str());
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    bail!("the benchmark lagged {n} events behind")
                }
                Err(e) => bail!("event stream ended: {e}"),
            }
        }
        Ok(())
    };
    tokio::time::timeout(WAIT, wait)
        .await
        .context("rooms not caught up in time")?
}

/// Runs populate_rooms.py as bob.
fn populate(
    python: &PathBuf,
    server: &Prosody,
    rooms: &[String],
    count: usize,
    create: bool,
) -> Result<()> {
    let mut cmd = Command::new(python);
    cmd.arg(script("populate_rooms.py"))
        .args(["--jid", &server.jid("bob"), "--rooms", &rooms.join(",")])
        .args(["--count", &count.to_string()])
        .args(["--port", &server.c2s_port().to_string(), "--ca-file"])
        .arg(server.ca_file())
        .env("PEER_PASSWORD", BOB_PASSWORD)
        .stdin(Stdio::null());
    if create {
        cmd.arg("--create");
    }
    let out = cmd.output().context("running populate_rooms.py")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(last).with_context(|| {
        format!(
            "populate_rooms.py printed no result: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    if let Some(e) = v.get("error") {
        bail!("populate_rooms.py: {e}");
    }
    if !out.status.success() || v["sent"] != (rooms.len() * count) {
        bail!("populate_rooms.py: unexpected result {v}");
    }
    Ok(())
}

/// This process's resident set size in MiB (Linux).
fn rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}
