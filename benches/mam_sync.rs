//! MAM catch-up benchmark: Starling's `sync` of an archive of N messages against a slixmpp
//! script that fetches the same archive and stores it in SQLite, in the same run, against
//! the same throwaway Prosody. Prints figures; never asserts timings.
//!
//! `cargo bench --bench mam_sync` uses N = 10,000; any other run (e.g. `cargo test
//! --all-targets`, which runs this binary without `--bench`) uses a smoke size of 1,000.
//!
//! Steps: start Prosody (no offline storage, so the archive is the only source; no archive
//! trimming; MAM pages of up to 250, Starling's page size), register alice and bob, let
//! `benches/peers/populate.py` send N messages bob -> alice, then time
//! (a) `starling sync` on a fresh profile (the `account add` before it is not timed), checked
//!     afterwards with `starling --json history`, and
//! (b) `benches/peers/mam_fetch.py`: slixmpp paging through alice's archive (250 per page)
//!     and storing every message in a fresh SQLite file, one transaction per page.
//! Wall time is measured here; CPU time (user + sys of the child and its children) comes
//! from `/usr/bin/time` when it exists. Either check failing exits non-zero without a figure.
//!
//! Needs Prosody (see `app/testbed.rs`) and a Python with slixmpp 1.17:
//! `$STARLING_TEST_PYTHON`, else `.venv/bin/python` in the repository (`scripts/test`).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use support::{peer_python, script};

mod support;
use starling::testbed::{Prosody, ProsodyOptions};

const FULL_SIZE: usize = 10_000;
const SMOKE_SIZE: usize = 1_000;
/// Starling's MAM page size (core/src/services/mam.rs `PAGE_SIZE`); the server cap and the
/// slixmpp script use the same.
const PAGE_SIZE: u32 = 250;
const ALICE_PASSWORD: &str = "alice-bench-pw";
const BOB_PASSWORD: &str = "bob-bench-pw";
const TIME_BIN: &str = "/usr/bin/time";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mam_sync: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let full = std::env::args().any(|a| a == "--bench");
    let n = if full { FULL_SIZE } else { SMOKE_SIZE };
    let python = peer_python();
    if !python.exists() {
        bail!(
            "python {} not found: run scripts/test (it creates .venv) or set \
             STARLING_TEST_PYTHON to a python with slixmpp 1.17",
            python.display()
        );
    }
    let starling = PathBuf::from(env!("CARGO_BIN_EXE_starling"));
    let cpu_timer = Path::new(TIME_BIN).is_file();

    // Declared before the server so it is removed after the server stopped.
    let tmp = tempfile::tempdir().context("creating a temporary directory")?;
    // Prosody stops itself on drop, so an early return below stops it too.
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
    let port = server.c2s_port().to_string();

    // Fill alice's archive.
    let started = Instant::now();
    let out = Command::new(&python)
        .arg(script("populate.py"))
        .args(["--jid", &bob, "--to", &alice, "--count", &n.to_string()])
        .args(["--port", &port, "--ca-file"])
        .arg(server.ca_file())
        .env("PEER_PASSWORD", BOB_PASSWORD)
        .stdin(Stdio::null())
        .output()
        .context("running populate.py")?;
    let populated = script_result(&out, "populate.py")?;
    let sent = json_usize(&populated, "sent")?;
    if sent != n {
        bail!("populate.py sent {sent} messages, expected {n}");
    }
    eprintln!(
        "mam_sync: archived {n} messages in {:.2} s (stream management acks: {})",
        started.elapsed().as_secs_f64(),
        populated["acked"]
    );

    // (a) Starling: add the account (not timed), then time `sync`.
    let profile = tmp.path().join("starling-profile");
    let starling_cmd = |args: &[&str]| {
        let mut cmd = Command::new(&starling);
        cmd.arg("--profile")
            .arg(&profile)
            .args(args)
            .env("STARLING_PASSWORD", ALICE_PASSWORD)
            .env("STARLING_NO_KEYRING", "1")
            .env_remove("STARLING_PROFILE")
            .stdin(Stdio::null());
        cmd
    };
    let mut add = starling_cmd(&["account", "add", &alice, "--server", "127.0.0.1"]);
    add.args(["--port", &port, "--tls", "starttls", "--ca-file"])
        .arg(server.ca_file())
        .args(["--first-sync-days", "3650"]);
    let out = add.output().context("running starling account add")?;
    check_status(&out, "starling account add")?;

    let (out, starling_time) =
        timed(starling_cmd(&["sync"]), cpu_timer, tmp.path()).context("running starling sync")?;
    check_status(&out, "starling sync")?;
    let out = starling_cmd(&["--json", "history", &bob, "--limit", "100000"])
        .output()
        .context("running starling history")?;
    check_status(&out, "starling history")?;
    let history: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("parsing `starling --json history`")?;
    let stored = history
        .as_array()
        .context("`starling --json history` did not print a JSON array")?
        .iter()
        .filter(|m| {
            m["body"]
                .as_str()
                .is_some_and(|b| b.starts_with("archived message "))
        })
        .count();
    if stored != n {
        bail!("starling sync stored {stored} of the {n} archived messages");
    }

    // (b) slixmpp: fetch the same archive and store it in SQLite.
    let mut fetch = Command::new(&python);
    fetch
        .arg(script("mam_fetch.py"))
        .args(["--jid", &alice, "--port", &port, "--ca-file"])
        .arg(server.ca_file())
        .arg("--db")
        .arg(tmp.path().join("slixmpp-archive.sqlite"))
        .args(["--page-size", &PAGE_SIZE.to_string()])
        .env("PEER_PASSWORD", ALICE_PASSWORD)
        .stdin(Stdio::null());
    let (out, slix_time) = timed(fetch, cpu_timer, tmp.path()).context("running mam_fetch.py")?;
    let fetched = script_result(&out, "mam_fetch.py")?;
    let count = json_usize(&fetched, "count")?;
    if count != n {
        bail!("mam_fetch.py stored {count} messages, expected {n} (the archive is incomplete?)");
    }

    server.stop().context("stopping Prosody")?;

    let cpu = |t: &Timing| match t.cpu {
        Some(c) => format!(" (cpu {c:.2} s)"),
        None => String::new(),
    };
    println!(
        "mam_sync: {n} messages; starling sync {:.2} s{}; slixmpp fetch+store {:.2} s{}; \
         ratio starling/slixmpp = {:.2}",
        starling_time.wall,
        cpu(&starling_time),
        slix_time.wall,
        cpu(&slix_time),
        starling_time.wall / slix_time.wall
    );
    if let (Some(a), Some(b)) = (starling_time.cpu, slix_time.cpu) {
        println!("mam_sync: client cpu ratio starling/slixmpp = {:.2}", a / b);
    } else {
        println!("mam_sync: {TIME_BIN} not found; wall time only, no CPU figures");
    }
    if !full {
        println!("mam_sync: smoke size; `cargo bench --bench mam_sync` runs {FULL_SIZE}");
    }
    Ok(())
}

/// Wall time, and user + sys CPU time of the child (and what it waited for) when measured.
struct Timing {
    wall: f64,
    cpu: Option<f64>,
}

/// Runs `cmd` to completion, under `/usr/bin/time` when `cpu_timer` is set (its report goes
/// to a file in `scratch`, so the child's own stdout and stderr stay untouched).
fn timed(cmd: Command, cpu_timer: bool, scratch: &Path) -> Result<(Output, Timing)> {
    let report = scratch.join("time-report.txt");
    let mut run = if cpu_timer {
        let mut t = Command::new(TIME_BIN);
        t.args(["-f", "%U %S", "-o"])
            .arg(&report)
            .arg(cmd.get_program());
        t.args(cmd.get_args());
        for (key, value) in cmd.get_envs() {
            match value {
                Some(v) => t.env(key, v),
                None => t.env_remove(key),
            };
        }
        t.stdin(Stdio::null());
        t
    } else {
        cmd
    };
    let started = Instant::now();
    let out = run.output().context("spawning the timed command")?;
    let wall = started.elapsed().as_secs_f64();
    let cpu = if cpu_timer {
        let text = std::fs::read_to_string(&report)
            .with_context(|| format!("reading {}", report.display()))?;
        // With a failing child, `time` writes "Command exited with non-zero status" first.
        let last = text.lines().last().unwrap_or_default();
        let secs = last
            .split_whitespace()
            .map(str::parse::<f64>)
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("parsing the {TIME_BIN} report {text:?}"))?;
        if secs.len() != 2 {
            bail!("unexpected {TIME_BIN} report {text:?}");
        }
        Some(secs[0] + secs[1])
    } else {
        None
    };
    Ok((out, Timing { wall, cpu }))
}

fn check_status(out: &Output, what: &str) -> Result<()> {
    if !out.status.success() {
        bail!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The JSON line a helper script printed last on stdout, after checking its exit status
/// and that it did not report an error.
fn script_result(out: &Output, what: &str) -> Result<serde_json::Value> {
    check_status(out, what)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .with_context(|| format!("{what} printed nothing"))?;
    let value: serde_json::Value = serde_json::from_str(line)
        .with_context(|| format!("parsing the output of {what}: {line:?}"))?;
    if let Some(err) = value.get("error") {
        bail!("{what}: {err}");
    }
    Ok(value)
}

fn json_usize(value: &serde_json::Value, key: &str) -> Result<usize> {
    value[key]
        .as_u64()
        .and_then(|v| usize::try_from(v).ok())
        .with_context(|| format!("no number {key:?} in {value}"))
}
