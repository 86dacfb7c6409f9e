//! What the benchmark binaries share: where the slixmpp scripts and their Python are.

use std::path::PathBuf;

/// A script in `benches/peers/`.
pub fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("benches/peers")
        .join(name)
}

/// `$STARLING_TEST_PYTHON`, else `.venv/bin/python` in the repository.
pub fn peer_python() -> PathBuf {
    match std::env::var_os("STARLING_TEST_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"),
    }
}
