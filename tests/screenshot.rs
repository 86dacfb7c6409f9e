//! The demo rendered by the real binary in a real X server (Xvfb): `starling demo
//! --screenshot` opens the window, waits until the demo conversations show, and writes a PNG.
//! The PNG lands in `target/screenshots/demo.png` (the README's screenshot comes from it).

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail, ensure};

/// An Xvfb server on a free display; killed on drop.
struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    fn start() -> Result<Xvfb> {
        // -displayfd: Xvfb picks a free display and writes its number once it accepts
        // connections, so its first line on stdout is the readiness signal.
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1280x800x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting Xvfb (apt-get install xvfb; scripts/test installs it)")?;
        let stdout = child.stdout.take().context("Xvfb stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let n = line.trim();
        if n.is_empty() || !n.chars().all(|c| c.is_ascii_digit()) {
            if let Err(e) = child.kill() {
                eprintln!("cannot kill Xvfb: {e}");
            }
            bail!("Xvfb did not report a display: {line:?}");
        }
        Ok(Xvfb {
            display: format!(":{n}"),
            child,
        })
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        if let Err(e) = self.child.kill() {
            eprintln!("cannot kill Xvfb: {e}");
        }
        if let Err(e) = self.child.wait() {
            eprintln!("cannot reap Xvfb: {e}");
        }
    }
}

#[test]
fn demo_window_renders_under_xvfb() -> Result<()> {
    let x = Xvfb::start()?;
    let dir = tempfile::Builder::new()
        .prefix("starling-shot-")
        .tempdir()?;
    let out_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&out_dir)?;
    let png_path = out_dir.join("demo.png");
    if png_path.exists() {
        std::fs::remove_file(&png_path)?;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_starling"))
        .args(["demo", "--dir"])
        .arg(dir.path())
        .arg("--screenshot")
        .arg(&png_path)
        .env("DISPLAY", &x.display)
        .env("STARLING_NO_KEYRING", "1")
        .env_remove("WAYLAND_DISPLAY")
        .stdin(Stdio::null())
        .output()
        .context("running starling demo")?;
    ensure!(
        out.status.success(),
        "starling demo --screenshot failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A real picture: the window's size, and not one flat colour.
    let decoder = png::Decoder::new(BufReader::new(std::fs::File::open(&png_path)?));
    let mut reader = decoder.read_info()?;
    let mut buf = vec![0; reader.output_buffer_size().context("PNG size")?];
    let info = reader.next_frame(&mut buf)?;
    ensure!(
        info.width >= 640 && info.height >= 420,
        "window size {}x{}",
        info.width,
        info.height
    );
    let pixels = &buf[..info.buffer_size()];
    let first = &pixels[..4];
    let differing = pixels.chunks(4).filter(|p| *p != first).count();
    ensure!(
        differing > pixels.len() / 4 / 20,
        "the screenshot is almost one colour ({differing} differing pixels)"
    );
    Ok(())
}
