//! File sharing (issue 8): XEP-0454 encrypted files checked against an independent
//! implementation (Python `cryptography`, tests/peers/media/aesgcm.py), and HTTP upload
//! (XEP-0363) against Prosody's http_file_share.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, ensure};
use starling_core::crypto::aesgcm::{self, FileKey};

use crate::support;

fn reference() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/media/aesgcm.py")
}

/// Runs the reference; returns its stdout, or None when it exited 1 (tag mismatch).
fn run_reference(args: &[&str]) -> Result<Option<String>> {
    let out = Command::new(support::peer_python())
        .arg(reference())
        .args(args)
        .output()
        .context("running tests/peers/media/aesgcm.py (scripts/test sets up the venv)")?;
    match out.status.code() {
        Some(0) => Ok(Some(String::from_utf8(out.stdout)?.trim().to_owned())),
        Some(1) => Ok(None),
        _ => anyhow::bail!(
            "aesgcm.py {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

fn path(p: &Path) -> Result<&str> {
    p.to_str().context("non-UTF-8 temp path")
}

#[test]
fn xep0454_files_match_python_cryptography() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let plain: Vec<u8> = (0..200_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    let (plain_file, sealed_file, out_file) = (
        dir.path().join("plain"),
        dir.path().join("sealed"),
        dir.path().join("out"),
    );
    std::fs::write(&plain_file, &plain)?;

    // Starling encrypts, the reference decrypts with the link's fragment.
    let key = FileKey::generate();
    std::fs::write(&sealed_file, key.encrypt(&plain))?;
    let link = aesgcm::link("https://upload.example/f/photo.jpg", &key);
    let fragment = link.rsplit_once('#').context("fragment")?.1.to_owned();
    let opened = run_reference(&["open", &fragment, path(&sealed_file)?, path(&out_file)?])?;
    ensure!(opened.is_some(), "the reference refused Starling's file");
    ensure!(
        std::fs::read(&out_file)? == plain,
        "the reference read other bytes"
    );

    // The reference encrypts, Starling decrypts from the link.
    let fragment =
        run_reference(&["seal", path(&plain_file)?, path(&sealed_file)?])?.context("seal")?;
    let (https, key) = aesgcm::parse_link(&format!("aesgcm://upload.example/f/x.bin#{fragment}"))?;
    ensure!(https == "https://upload.example/f/x.bin");
    ensure!(key.decrypt(&std::fs::read(&sealed_file)?)? == plain);

    // A flipped bit: both refuse.
    let mut sealed = std::fs::read(&sealed_file)?;
    sealed[1000] ^= 0x40;
    ensure!(
        key.decrypt(&sealed).is_err(),
        "Starling took a tampered file"
    );
    std::fs::write(&sealed_file, &sealed)?;
    ensure!(
        run_reference(&["open", &fragment, path(&sealed_file)?, path(&out_file)?])?.is_none(),
        "the reference took a tampered file"
    );
    Ok(())
}
