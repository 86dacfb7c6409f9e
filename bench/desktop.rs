//! Desktop UI benchmark: the three figures of the desktop performance issue. Prints figures;
//! never asserts timings. Exits non-zero only when a functional check fails (data not shown,
//! a message not stored, a blank frame, a process that fails or does not finish).
//!
//! `cargo bench --bench desktop` runs the full sizes below; any other run (e.g. `cargo test
//! --all-targets`, which runs this binary without `--bench`) uses smoke sizes and takes about
//! 20 s. See bench/README.md for what the figures mean and a set of results.
//!
//! 1. Cold start to first frame (full: 100,000 messages in 200 conversations, 2,000 roster
//!    contacts; smoke: 5,000 / 50 / 100). A profile is filled through the core store API (not
//!    timed). The account's server is 127.0.0.1 on a closed port, so the app's connection
//!    attempt fails at once. Then, 5 times (smoke: once), under a private Xvfb, (a) the real
//!    `starling --profile DIR` with `STARLING_EXIT_AFTER_FIRST_FRAME=1`, which makes it print
//!    `first_frame_ms=N` after its first frame and exit (the process wall time is measured
//!    here), and (b) the same start in a fresh child process of this binary (`__winit`, see
//!    `desktop/winit_start.rs`) on the real winit backend and software renderer, which also
//!    sees the first frame drawn after the conversation list and the roster were filled (the
//!    first frame comes before the store answered).
//! 2. Frame times while a MAM catch-up runs (full: 50,000 archived messages; smoke: 1,000),
//!    in a child process (`__frames`, see `desktop/frames.rs`): a real Prosody, the app on
//!    Slint's headless backend with the software renderer rendering full frames at up to
//!    60 Hz, bob's conversation opened while the catch-up is running.
//! 3. Memory after opening 100 conversations (full: 100 conversations of 1,000 messages;
//!    smoke: 10 of 100), in a child process (`__rss`, see `desktop/rss.rs`): VmRSS before
//!    opening any, after opening each once, and after a second round.
//!
//! 4. The occupant panel of a 1,000-occupant room (full and smoke: 1,000 occupants), in a
//!    child process (`__occupants`, see `desktop/occupants.rs`): 1,000 occupant events through
//!    the event pump's entry point to the frame showing them, one presence change at a time
//!    with 1,000 present, and reopening the room.
//!
//! `--figure N` (repeatable) runs only the figures named, e.g. `cargo bench --bench desktop
//! -- --figure 1 --figure 3`.
//!
//! Children are this binary run again with a `__mode` argument (Slint's platform can be set
//! once per process); they print one `RESULT {json}` line on stdout.
//!
//! Needs Xvfb (`apt-get install xvfb`), Prosody (see `app/testbed.rs`) and a Python with
//! slixmpp 1.17: `$STARLING_TEST_PYTHON`, else `.venv/bin/python` (`scripts/test`).

#[path = "desktop/child.rs"]
mod child;
#[path = "desktop/frames.rs"]
mod frames;
#[path = "desktop/headless.rs"]
mod headless;
#[path = "desktop/logs.rs"]
mod logs;
#[path = "desktop/occupants.rs"]
mod occupants;
#[path = "desktop/rss.rs"]
mod rss;
#[path = "desktop/seed.rs"]
mod seed;
#[path = "desktop/stats.rs"]
mod stats;
#[path = "desktop/winit_start.rs"]
mod winit_start;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;

use child::{Capture, Xvfb};
use frames::FramesResult;
use occupants::OccupantsResult;
use rss::RssResult;
use stats::Summary;
use winit_start::StartResult;

/// Sizes of one run.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    cold: seed::Shape,
    cold_runs: usize,
    catch_up: usize,
    rss: seed::Shape,
    /// Occupants of the crowded room, single presence changes, reopenings (figure 4).
    occupants: (usize, usize, usize),
}

const FULL: Sizes = Sizes {
    cold: seed::Shape {
        conversations: 200,
        messages_per_conversation: 500,
        contacts: 2_000,
    },
    cold_runs: 5,
    catch_up: 50_000,
    rss: seed::Shape {
        conversations: 100,
        messages_per_conversation: 1_000,
        contacts: 100,
    },
    occupants: (1_000, 200, 20),
};

const SMOKE: Sizes = Sizes {
    cold: seed::Shape {
        conversations: 50,
        messages_per_conversation: 100,
        contacts: 100,
    },
    cold_runs: 1,
    catch_up: 1_000,
    rss: seed::Shape {
        conversations: 10,
        messages_per_conversation: 100,
        contacts: 10,
    },
    occupants: (1_000, 5, 2),
};

const COLD_TIMEOUT: Duration = Duration::from_secs(60);
const START_TIMEOUT: Duration = Duration::from_secs(180);
const RSS_TIMEOUT: Duration = Duration::from_secs(900);
const RESULT_PREFIX: &str = "RESULT ";

fn main() -> ExitCode {
    let started = Instant::now();
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or_default();
    let rest = args.get(2..).unwrap_or_default();
    let result = match mode {
        "__frames" => frames::child(rest).and_then(|r| report(&r)),
        "__winit" => winit_start::child(rest, started).and_then(|r| report(&r)),
        "__rss" => rss::rss_child(rest).and_then(|r| report(&r)),
        "__occupants" => occupants::child(rest).and_then(|r| report(&r)),
        _ => figures(&args).and_then(|want| run(args.iter().any(|a| a == "--bench"), want)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("desktop: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A child's result line.
fn report<T: Serialize>(result: &T) -> Result<()> {
    let json = serde_json::to_string(result).context("serialising the result")?;
    println!("{RESULT_PREFIX}{json}");
    Ok(())
}

/// Which figures to run: all, or those named with `--figure N` (repeatable), e.g.
/// `cargo bench --bench desktop -- --figure 1`.
fn figures(args: &[String]) -> Result<[bool; 4]> {
    let mut named = [false; 4];
    let mut any = false;
    for pair in args.windows(2).filter(|p| p[0] == "--figure") {
        let n: usize = pair[1]
            .parse()
            .ok()
            .filter(|n| (1..=4).contains(n))
            .with_context(|| format!("--figure takes 1, 2, 3 or 4, not {:?}", pair[1]))?;
        named[n - 1] = true;
        any = true;
    }
    Ok(if any { named } else { [true; 4] })
}

fn run(full: bool, want: [bool; 4]) -> Result<()> {
    let sizes = if full { FULL } else { SMOKE };
    let tmp = tempfile::tempdir().context("creating a temporary directory")?;
    let mut failure = None;
    let cold = if want[0] {
        let (cold, f) = figure_cold(&sizes, tmp.path())?;
        failure = f;
        Some(cold)
    } else {
        None
    };
    let catch_up = if want[1] {
        let timeout = Duration::from_secs(300) + Duration::from_millis(70 * sizes.catch_up as u64);
        let (r, _): (FramesResult, _) = run_child(
            "__frames",
            &[sizes.catch_up.to_string().into()],
            None,
            timeout,
        )?;
        Some(r)
    } else {
        None
    };
    let rss = if want[2] {
        let dir = tmp.path().join("rss-profile");
        seed::profile(&dir, sizes.rss)?;
        let (r, _): (RssResult, _) = run_child(
            "__rss",
            &[
                dir.as_os_str().to_owned(),
                sizes.rss.conversations.to_string().into(),
                sizes.rss.messages_per_conversation.to_string().into(),
            ],
            None,
            RSS_TIMEOUT,
        )?;
        Some(r)
    } else {
        None
    };

    let crowd = if want[3] {
        let (n, singles, reopens) = sizes.occupants;
        let (r, _): (OccupantsResult, _) = run_child(
            "__occupants",
            &[
                n.to_string().into(),
                singles.to_string().into(),
                reopens.to_string().into(),
            ],
            None,
            RSS_TIMEOUT,
        )?;
        Some(r)
    } else {
        None
    };

    println!();
    let mut warnings: Vec<&String> = Vec::new();
    if let Some(c) = &cold {
        print_cold(&sizes, c);
        warnings.extend(c.starts.iter().flat_map(|(s, _)| &s.warnings));
    }
    if let Some(f) = &catch_up {
        print_frames(f);
        warnings.extend(&f.warnings);
    }
    if let Some(r) = &rss {
        print_rss(&sizes, r);
        warnings.extend(&r.warnings);
    }
    if let Some(r) = &crowd {
        print_occupants(r);
        warnings.extend(&r.warnings);
    }
    warnings.sort();
    warnings.dedup();
    for w in warnings {
        println!("  app log: {w}");
    }
    if !full {
        println!("desktop: smoke sizes; `cargo bench --bench desktop` runs the full ones");
    }
    match failure {
        Some(e) => Err(e.context("the real binary did not report its first frame")),
        None => Ok(()),
    }
}

/// Figure 1's runs: the real binary's (first frame ms, process ms), and the in-process
/// starts with their process wall time in ms.
struct Cold {
    binary: Vec<(f64, f64)>,
    starts: Vec<(StartResult, f64)>,
}

/// Seeds the big profile and starts the app on it, `sizes.cold_runs` times each way. A
/// failing real-binary run does not hide the other figures: it is returned, and the
/// benchmark fails at the end.
fn figure_cold(sizes: &Sizes, tmp: &Path) -> Result<(Cold, Option<anyhow::Error>)> {
    let dir = tmp.join("cold-profile");
    let started = Instant::now();
    seed::profile(&dir, sizes.cold)?;
    eprintln!(
        "desktop: seeded {} messages in {} conversations, {} contacts in {:.1} s",
        sizes.cold.conversations * sizes.cold.messages_per_conversation,
        sizes.cold.conversations,
        sizes.cold.contacts,
        started.elapsed().as_secs_f64()
    );
    let xvfb = Xvfb::start()?;
    let mut cold = Cold {
        binary: Vec::new(),
        starts: Vec::new(),
    };
    let mut failure = None;
    for i in 0..sizes.cold_runs {
        if failure.is_none() {
            match cold_start(&dir, xvfb.display()) {
                Ok((first, wall)) => {
                    eprintln!(
                        "desktop: starling {}: first frame {first:.0} ms, process {wall:.0} ms",
                        i + 1
                    );
                    cold.binary.push((first, wall));
                }
                Err(e) => {
                    let e = e.context(format!("cold start run {}", i + 1));
                    eprintln!("desktop: {e:#}");
                    failure = Some(e);
                }
            }
        }
        let (start, wall): (StartResult, _) = run_child(
            "__winit",
            &[
                dir.as_os_str().to_owned(),
                sizes.cold.conversations.to_string().into(),
                sizes.cold.contacts.to_string().into(),
            ],
            Some(xvfb.display()),
            START_TIMEOUT,
        )?;
        eprintln!(
            "desktop: in-process start {}: first frame {:.0} ms, content shown {:.0} ms, \
             process {:.0} ms",
            i + 1,
            start.first_frame_ms,
            start.content_frame_ms,
            ms(wall)
        );
        cold.starts.push((start, ms(wall)));
    }
    Ok((cold, failure))
}

/// Runs the real app on `profile` until its first frame; returns (first_frame_ms as the app
/// reports it, process wall time in ms).
fn cold_start(profile: &Path, display: &str) -> Result<(f64, f64)> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_starling"));
    cmd.arg("--profile")
        .arg(profile)
        .env("DISPLAY", display)
        .env("STARLING_EXIT_AFTER_FIRST_FRAME", "1")
        .env("STARLING_NO_KEYRING", "1")
        .env("STARLING_PASSWORD", "not-used")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("STARLING_PROFILE")
        .env_remove("STARLING_LOG");
    let out = child::run(cmd, Capture::Stderr, COLD_TIMEOUT)?;
    if !out.status.success() {
        // Its own error line, without the log lines before it.
        let err = out
            .output
            .lines()
            .filter(|l| l.starts_with("starling: error"))
            .collect::<Vec<_>>()
            .join("; ");
        let err = if err.is_empty() {
            out.output.trim()
        } else {
            err.as_str()
        };
        bail!("starling failed ({}): {err}", out.status);
    }
    let ms = out
        .output
        .lines()
        .find_map(|l| l.trim().strip_prefix("first_frame_ms="))
        .with_context(|| format!("starling printed no first_frame_ms: {}", out.output.trim()))?;
    let ms: f64 = ms
        .parse()
        .with_context(|| format!("parsing first_frame_ms={ms}"))?;
    Ok((ms, self::ms(out.wall)))
}

/// Runs this binary in `mode` (on X `display` if given) and parses its result line; also
/// returns the child's wall time.
fn run_child<T: DeserializeOwned>(
    mode: &str,
    args: &[std::ffi::OsString],
    display: Option<&str>,
    timeout: Duration,
) -> Result<(T, Duration)> {
    let exe = std::env::current_exe().context("finding this benchmark's executable")?;
    let mut cmd = Command::new(exe);
    cmd.arg(mode)
        .args(args)
        .env("STARLING_NO_KEYRING", "1")
        .env("STARLING_PASSWORD", "not-used")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("STARLING_PROFILE");
    match display {
        Some(d) => cmd.env("DISPLAY", d),
        None => cmd.env_remove("DISPLAY"),
    };
    let out = child::run(cmd, Capture::Stdout, timeout).with_context(|| mode.to_owned())?;
    if !out.status.success() {
        bail!("{mode} failed ({}); its errors are above", out.status);
    }
    let line = out
        .output
        .lines()
        .find_map(|l| l.strip_prefix(RESULT_PREFIX))
        .with_context(|| format!("{mode} printed no result: {}", out.output.trim()))?;
    let result = serde_json::from_str(line)
        .with_context(|| format!("parsing the result of {mode}: {line}"))?;
    Ok((result, out.wall))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `$STARLING_TEST_PYTHON`, else `.venv/bin/python` in the repository.
fn peer_python() -> PathBuf {
    match std::env::var_os("STARLING_TEST_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"),
    }
}

/// "1,234,567": the app's own formatting (status bar), for counts given as usize.
fn thousands(n: usize) -> String {
    starling::ui::controllers::status::thousands(u64::try_from(n).unwrap_or(u64::MAX))
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn print_cold(sizes: &Sizes, cold: &Cold) {
    let mmm = |v: &[f64]| {
        if v.is_empty() {
            return "n/a (failed, see the error below)".to_owned();
        }
        let s = Summary::of(v);
        format!(
            "median {:.0} ms (min {:.0}, max {:.0})",
            s.p50, s.min, s.max
        )
    };
    let cold_field =
        |pick: fn(&(f64, f64)) -> f64| mmm(&cold.binary.iter().map(pick).collect::<Vec<_>>());
    let start_field = |pick: fn(&(StartResult, f64)) -> f64| {
        mmm(&cold.starts.iter().map(pick).collect::<Vec<_>>())
    };
    let c = sizes.cold;
    println!(
        "desktop: 1. cold start, {} messages in {} conversations, {} contacts, {} run(s), Xvfb",
        thousands(c.conversations * c.messages_per_conversation),
        c.conversations,
        thousands(c.contacts),
        cold.starts.len()
    );
    println!(
        "  starling binary: first frame (its hook)     {}",
        cold_field(|r| r.0)
    );
    println!(
        "  starling binary: process start to exit      {}",
        cold_field(|r| r.1)
    );
    println!(
        "  same start in-process: App::new returned    {}",
        start_field(|r| r.0.app_ms)
    );
    println!(
        "  same start in-process: first frame          {}",
        start_field(|r| r.0.first_frame_ms)
    );
    println!(
        "  same start in-process: list+roster filled   {}",
        start_field(|r| r.0.content_ms)
    );
    println!(
        "  same start in-process: frame showing them   {}",
        start_field(|r| r.0.content_frame_ms)
    );
    println!(
        "  same start in-process: process wall         {}",
        start_field(|r| r.1)
    );
}

fn print_frames(f: &FramesResult) {
    println!(
        "desktop: 2. frames during a MAM catch-up of {} messages (1100x720, software)",
        thousands(f.messages)
    );
    println!(
        "  render time   p50 {:.1}  p95 {:.1}  p99 {:.1}  max {:.1} ms  ({} frames, {} > {:.0} ms)",
        f.render_ms.p50,
        f.render_ms.p95,
        f.render_ms.p99,
        f.render_ms.max,
        f.render_ms.count,
        f.frames_over_jank,
        frames::JANK_MS
    );
    println!(
        "  frame gap     p50 {:.1}  p95 {:.1}  p99 {:.1}  max {:.1} ms  ({} gaps > {:.0} ms)",
        f.interval_ms.p50,
        f.interval_ms.p95,
        f.interval_ms.p99,
        f.interval_ms.max,
        f.intervals_over_jank,
        frames::JANK_MS
    );
    println!(
        "  connect {:.2} s; catch-up {:.2} s ({:.0} msg/s); last message shown {:.2} s after it",
        f.connect_s,
        f.catch_up_s,
        f.messages as f64 / f.catch_up_s.max(1e-9),
        f.drain_s,
    );
    println!(
        "  conversation opened {} the catch-up; {} timeline rows at the end; {} read events \
         (mark_read calls; {} of the messages carry a stanza id)",
        if f.opened_during_catch_up {
            "during"
        } else {
            "after"
        },
        thousands(f.timeline_rows),
        thousands(usize::try_from(f.read_events).unwrap_or(usize::MAX)),
        thousands(f.with_stanza_id),
    );
    println!(
        "  RSS at the end {}, peak {}",
        mib(f.rss_end_kib),
        mib(f.peak_rss_kib)
    );
}

fn print_rss(sizes: &Sizes, rss: &RssResult) {
    println!(
        "desktop: 3. memory after opening {} conversations of {} messages (headless)",
        rss.conversations,
        thousands(sizes.rss.messages_per_conversation)
    );
    let per = (rss.after_kib as f64 - rss.before_kib as f64) / rss.conversations.max(1) as f64;
    println!(
        "  RSS before {}, after {} ({:+.0} KiB per conversation), after a 2nd round {}, peak {}",
        mib(rss.before_kib),
        mib(rss.after_kib),
        per,
        mib(rss.second_pass_kib),
        mib(rss.peak_kib)
    );
    if !rss.steps.is_empty() {
        let steps: Vec<String> = rss
            .steps
            .iter()
            .map(|(n, kib)| format!("{n}: {}", mib(*kib)))
            .collect();
        println!("  RSS after opening  {}", steps.join(", "));
    }
    println!(
        "  open a conversation  p50 {:.1}  p95 {:.1}  max {:.1} ms (to its messages in a frame); \
         that frame alone p50 {:.1}  p95 {:.1}  max {:.1} ms",
        rss.open_ms.p50,
        rss.open_ms.p95,
        rss.open_ms.max,
        rss.frame_ms.p50,
        rss.frame_ms.p95,
        rss.frame_ms.max
    );
}

fn print_occupants(r: &OccupantsResult) {
    println!(
        "desktop: 4. occupant panel of a {}-occupant room (1100x720, software, headless)",
        thousands(r.occupants)
    );
    println!(
        "  {} occupant events to the frame showing them  {:.1} ms  (applying {:.1} ms in \
         batches of 500, frame {:.1} ms; {} rows)",
        thousands(r.occupants),
        r.total_ms,
        r.apply_ms,
        r.frame_ms,
        thousands(r.rows)
    );
    println!(
        "  one presence change, to the frame after   p50 {:.1}  p95 {:.1}  max {:.1} ms  \
         (applying it p50 {:.2} ms; {} changes)",
        r.single_ms.p50, r.single_ms.p95, r.single_ms.max, r.single_apply_ms.p50, r.single_ms.count
    );
    println!(
        "  reopening the room, to its panel in a frame p50 {:.1}  p95 {:.1}  max {:.1} ms; \
         an idle frame p50 {:.1} ms",
        r.reopen_ms.p50, r.reopen_ms.p95, r.reopen_ms.max, r.idle_frame_ms.p50
    );
}
