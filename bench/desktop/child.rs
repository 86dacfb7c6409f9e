//! Child processes: running one with a deadline while capturing one of its streams, and a
//! private Xvfb server.

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Which stream of the child to capture (the other one is inherited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capture {
    Stdout,
    Stderr,
}

/// How a child ended.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    /// The captured stream.
    pub output: String,
    /// From spawning to having reaped it.
    pub wall: Duration,
}

/// Runs `cmd` (stdin closed) until it exits; kills it after `timeout`. The captured stream
/// is read on a thread until EOF, which is also how the end is noticed.
pub fn run(mut cmd: Command, capture: Capture, timeout: Duration) -> Result<Finished> {
    cmd.stdin(Stdio::null());
    match capture {
        Capture::Stdout => cmd.stdout(Stdio::piped()),
        Capture::Stderr => cmd.stderr(Stdio::piped()),
    };
    let what = format!("{:?}", cmd.get_program());
    let started = Instant::now();
    let mut child = cmd.spawn().with_context(|| format!("spawning {what}"))?;
    let stream: Box<dyn std::io::Read + Send> = match capture {
        Capture::Stdout => Box::new(child.stdout.take().context("no stdout pipe")?),
        Capture::Stderr => Box::new(child.stderr.take().context("no stderr pipe")?),
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut stream = stream;
        let mut bytes = Vec::new();
        let r = stream.read_to_end(&mut bytes).map(|_| bytes);
        // The receiver is gone only after a timeout; nothing left to report then.
        let _ = tx.send(r);
    });
    let output = match rx.recv_timeout(timeout) {
        Ok(r) => r.with_context(|| format!("reading the output of {what}"))?,
        Err(_) => {
            kill(&mut child);
            bail!("{what} did not finish within {timeout:?}; killed it");
        }
    };
    let status = child
        .wait()
        .with_context(|| format!("waiting for {what}"))?;
    Ok(Finished {
        status,
        output: String::from_utf8_lossy(&output).into_owned(),
        wall: started.elapsed(),
    })
}

fn kill(child: &mut Child) {
    if let Err(e) = child.kill() {
        eprintln!("desktop: cannot kill child {}: {e}", child.id());
    }
    if let Err(e) = child.wait() {
        eprintln!("desktop: cannot reap child {}: {e}", child.id());
    }
}

/// A private X server (Xvfb), stopped on drop.
pub struct Xvfb {
    child: Child,
    /// Kept open: Xvfb must not get SIGPIPE if it writes again.
    _stdout: BufReader<ChildStdout>,
    display: String,
}

impl Xvfb {
    /// Starts `Xvfb -displayfd 1` and waits until it has written its display number (it does
    /// so once it accepts connections).
    pub fn start() -> Result<Xvfb> {
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
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting Xvfb (apt-get install xvfb)")?;
        let Some(stdout) = child.stdout.take() else {
            kill(&mut child);
            bail!("Xvfb has no stdout pipe");
        };
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        let read = stdout.read_line(&mut line);
        let number = line.trim();
        if read.is_err() || number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            kill(&mut child);
            bail!("Xvfb did not report a display number (got {line:?}, {read:?})");
        }
        let display = format!(":{number}");
        Ok(Xvfb {
            child,
            _stdout: stdout,
            display,
        })
    }

    /// The value for `DISPLAY`.
    pub fn display(&self) -> &str {
        &self.display
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}
