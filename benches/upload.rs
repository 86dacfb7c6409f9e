//! File transfer benchmark (issue 8): a file of N MB uploaded (XEP-0363) and downloaded by
//! Starling's core and by curl on the same server and URLs, over loopback, against a
//! throwaway Prosody (http_file_share over HTTPS). Prints throughput and how much the
//! process's peak memory grew while Starling moved the file (streaming keeps it flat);
//! never asserts timings.
//!
//! `cargo bench --bench upload` moves 50 MB; any other run (`cargo test --all-targets`
//! runs this binary without `--bench`) a smoke size of 2 MB. Needs Prosody and curl.

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use starling::testbed::{Prosody, ProsodyOptions};
use starling_core::secrets::Password;
use starling_core::{AccountOptions, Client};

const FULL_MB: u64 = 50;
const SMOKE_MB: u64 = 2;
const PASSWORD: &str = "alice-bench-pw";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("upload: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The process's peak resident memory so far (VmHWM), in kB.
fn peak_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn mb_per_s(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / 1e6 / secs.max(1e-9)
}

fn curl(args: &[&str], ca: &Path) -> Result<f64> {
    let started = Instant::now();
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--fail", "--cacert"])
        .arg(ca)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running curl (apt-get install curl)")?;
    if !out.status.success() {
        bail!("curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(started.elapsed().as_secs_f64())
}

fn run() -> Result<()> {
    let mb = if std::env::args().any(|a| a == "--bench") {
        FULL_MB
    } else {
        SMOKE_MB
    };
    let size = mb * 1_000_000;
    let tmp = tempfile::tempdir()?;
    let server = Prosody::start(
        &tmp.path().join("prosody"),
        ProsodyOptions {
            upload_size_limit: Some(size * 2),
            ..ProsodyOptions::default()
        },
    )?;
    server.register("alice", PASSWORD)?;
    let alice = server.jid("alice");
    let file = tmp.path().join("big.bin");
    {
        use std::io::Write as _;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&file)?);
        let block: Vec<u8> = (0..1_000_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        for _ in 0..mb {
            f.write_all(&block)?;
        }
        f.flush()?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let profile = tmp.path().join("profile");
    let client = Client::open_private(&profile)?;
    let ca = server.ca_file().to_path_buf();
    rt.block_on(async {
        client
            .add_account(
                &alice,
                Password::new(PASSWORD),
                AccountOptions {
                    server: Some(("127.0.0.1".into(), server.c2s_port())),
                    tls: starling_core::connection::TlsMode::StartTls,
                    ca_file: Some(ca.clone()),
                    ..AccountOptions::default()
                },
            )
            .await?;
        let mut events = client.events();
        client.connect(&alice).await?;
        while !matches!(
            client.connection_state(&alice),
            starling_core::ConnectionState::Online { .. }
        ) {
            events.recv().await?;
        }
        anyhow::Ok(())
    })?;

    for encrypt in [false, true] {
        let label = if encrypt {
            "encrypted (XEP-0454)"
        } else {
            "plain"
        };
        let before = peak_kb();
        let started = Instant::now();
        let up = rt.block_on(client.upload_file(&alice, &file, encrypt))?;
        let up_secs = started.elapsed().as_secs_f64();
        let into = tmp.path().join(format!("down-{encrypt}"));
        std::fs::create_dir(&into)?;
        let started = Instant::now();
        let saved = rt.block_on(client.download_to(&alice, &up.url, &into, size * 2))?;
        let down_secs = started.elapsed().as_secs_f64();
        let grew = peak_kb().saturating_sub(before);
        if std::fs::metadata(&saved)?.len() != size {
            bail!("the download has the wrong size");
        }
        println!(
            "upload: {mb} MB {label}: Starling up {:.1} MB/s, down {:.1} MB/s; peak memory grew {:.1} MB",
            mb_per_s(size, up_secs),
            mb_per_s(size, down_secs),
            grew as f64 / 1000.0
        );
    }

    // curl on the same server: a fresh slot for its PUT, and the plain file's URL to GET.
    let slot = rt.block_on(client.request_upload_slot(
        &alice,
        "curl.bin",
        size,
        "application/octet-stream",
    ))?;
    let mut put: Vec<String> = vec!["-T".into(), file.display().to_string(), slot.put.clone()];
    for (name, value) in &slot.headers {
        put.push("-H".into());
        put.push(format!("{name}: {value}"));
    }
    put.extend(["-H".into(), "Content-Type: application/octet-stream".into()]);
    let put_refs: Vec<&str> = put.iter().map(String::as_str).collect();
    let up_secs = curl(&put_refs, &ca)?;
    let down_secs = curl(&["-o", "/dev/null", &slot.get], &ca)?;
    println!(
        "upload: {mb} MB plain: curl up {:.1} MB/s, down {:.1} MB/s",
        mb_per_s(size, up_secs),
        mb_per_s(size, down_secs)
    );
    rt.block_on(client.disconnect_all());
    server.stop()?;
    Ok(())
}
