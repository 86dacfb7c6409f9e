//! A throwaway Prosody 0.12 server for the demo command and the integration tests.
//!
//! [`Prosody::start`] writes a config, a test CA and a server certificate into a directory,
//! runs `prosody -F` as a child process listening on 127.0.0.1 only, and waits until it
//! accepts connections. Everything lives in that directory: `prosody.cfg.lua`, `certs/`,
//! `data/`, `prosody.log`, `prosody.console.log` (the child's stdout/stderr) and
//! `prosody.pid`. Starting again on the same directory reuses the certificates and the data.
//!
//! Requirements (Debian 12): `apt-get install prosody prosody-modules lua-unbound openssl
//! ssl-cert` (see `scripts/test`). The system service is never used.
//!
//! Ports are picked by binding `127.0.0.1:0`, reading the port and closing the listener
//! before Prosody starts; another process could grab a port in between. That race is small
//! and handled: if Prosody reports a port it could not bind, it is stopped and started once
//! more with fresh ports.

use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

/// The XMPP domain served by every test server.
pub const DOMAIN: &str = "localhost";
/// A second virtual host, reachable only through DNS (SRV) lookups against a test resolver:
/// `localhost` never goes to DNS. The server certificate covers it too.
pub const SRV_DOMAIN: &str = "srv.test";
/// A third virtual host, for DANE tests: reachable only through DNS like [`SRV_DOMAIN`]. Its
/// certificate ([`DANE_CERT`]) deliberately names only `xmpp.dane.test`, not the domain, so
/// PKIX refuses it for dane.test; DANE-EE (which ignores names) and DANE-TA (which accepts
/// the SRV target as a name) can make a client trust it.
pub const DANE_DOMAIN: &str = "dane.test";
/// The MUC component.
pub const CONFERENCE_DOMAIN: &str = "conference.localhost";
/// The XEP-0363 (http_file_share) component.
pub const UPLOAD_DOMAIN: &str = "upload.localhost";
/// The pubsub component; `admin@localhost` is its admin (node owner).
pub const PUBSUB_DOMAIN: &str = "pubsub.localhost";
/// The push gateway's component address (XEP-0114, on [`Ports::component`]).
pub const PUSH_DOMAIN: &str = "push.localhost";
/// The push component's shared secret. A test server's: it only listens on 127.0.0.1.
pub const PUSH_COMPONENT_SECRET: &str = "starling-test-push-component";
/// The account that is a server admin (create it with [`Prosody::register`] when needed).
pub const ADMIN_JID: &str = "admin@localhost";

/// Environment variable: `1` turns on Prosody's debug log, like [`ProsodyOptions::debug_log`].
pub const DEBUG_ENV: &str = "STARLING_PROSODY_DEBUG";

const READY_TIMEOUT: Duration = Duration::from_secs(20);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
const POLL_INTERVAL: Duration = Duration::from_millis(25);
const BIND_FAILURE_MARKERS: [&str; 2] = ["Failed to open server port", "Address already in use"];
/// Log lines after which this Prosody will never become ready (0.12 may even keep running
/// half-started after them, e.g. when mod_posix finds another instance).
const FATAL_MARKERS: [&str; 4] = [
    "Another Prosody instance seems to be running",
    "Shutting down:",
    "Danger, Will Robinson",
    "Error initializing module",
];

/// Knobs for [`Prosody::start`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProsodyOptions {
    /// Store messages for offline accounts (mod_offline). `false` puts `"offline"` in
    /// `modules_disabled` (Prosody 0.12 auto-loads it), for MAM-only delivery tests.
    pub offline_delivery: bool,
    /// `storage_archive_item_limit` (Prosody's default is 10,000 per archive).
    pub archive_item_limit: Option<u64>,
    /// `max_archive_query_results`: the largest MAM page the server returns.
    pub max_archive_query_results: Option<u32>,
    /// Log at debug level instead of info (also when `STARLING_PROSODY_DEBUG=1`).
    pub debug_log: bool,
    /// `http_file_share_size_limit` of the upload component, bytes (Prosody's default is
    /// 10 MiB).
    pub upload_size_limit: Option<u64>,
    /// Offer SASL2 (XEP-0388) with Bind2 (XEP-0386) and FAST (XEP-0484) besides RFC 6120
    /// SASL: prosody-modules' `mod_sasl2`, `mod_sasl2_bind2` and `mod_sasl2_fast`, made to
    /// work on Prosody 0.12 by `assets/prosody/mod_starling_compat.lua`. (`mod_sasl2_sm` is
    /// not loaded: it calls functions mod_smacks 0.12 lacks.)
    pub sasl2: bool,
    /// With `sasl2`: bind logins with RFC 5929's `tls-server-end-point` (the certificate's
    /// hash, as a server behind a TLS terminator must) instead of `tls-exporter`.
    pub end_point_binding: bool,
}

impl Default for ProsodyOptions {
    fn default() -> Self {
        ProsodyOptions {
            offline_delivery: true,
            archive_item_limit: None,
            max_archive_query_results: None,
            debug_log: false,
            upload_size_limit: None,
            sasl2: true,
            end_point_binding: false,
        }
    }
}

/// The 127.0.0.1 ports of one running server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// c2s with STARTTLS (encryption required).
    pub c2s: u16,
    /// c2s with direct TLS (XEP-0368 style).
    pub direct_tls: u16,
    /// Plain HTTP (mod_http).
    pub http: u16,
    /// HTTPS (mod_http); upload slot URLs use this one.
    pub https: u16,
    /// XEP-0114 components (the push gateway, [`PUSH_DOMAIN`]).
    pub component: u16,
}

impl Ports {
    fn all(&self) -> [u16; 5] {
        [
            self.c2s,
            self.direct_tls,
            self.http,
            self.https,
            self.component,
        ]
    }

    /// Prosody's service names for the ports.
    fn services(&self) -> [(&'static str, u16); 5] {
        [
            ("c2s", self.c2s),
            ("c2s_direct_tls", self.direct_tls),
            ("http", self.http),
            ("https", self.https),
            ("component", self.component),
        ]
    }

    /// Picks distinct free ports: all listeners are held open together so the kernel
    /// hands out different ports, then closed. See the module docs for the race this leaves.
    fn pick() -> Result<Ports> {
        let listeners = (0..5)
            .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
            .collect::<std::io::Result<Vec<_>>>()
            .context("binding 127.0.0.1:0 to pick a free port")?;
        let mut ports = [0u16; 5];
        for (slot, listener) in ports.iter_mut().zip(&listeners) {
            *slot = listener
                .local_addr()
                .context("reading the picked port")?
                .port();
        }
        drop(listeners);
        Ok(Ports {
            c2s: ports[0],
            direct_tls: ports[1],
            http: ports[2],
            https: ports[3],
            component: ports[4],
        })
    }
}

/// A running Prosody child process. Stopped by [`Prosody::stop`] or on drop.
#[derive(Debug)]
pub struct Prosody {
    child: Option<Child>,
    dir: PathBuf,
    config_path: PathBuf,
    ca_file: PathBuf,
    ports: Ports,
}

enum Startup {
    Ready,
    /// Prosody could not bind one of its ports; worth retrying with new ones.
    BindFailure(String),
}

impl Prosody {
    /// Starts `prosody -F` as a child in `dir` (created if missing; its config, certs, data
    /// and log live there; certs and data are reused when they exist). Picks free 127.0.0.1
    /// ports and returns once all four listeners accept TCP connections (at most ~20 s).
    /// Fails early, with the tail of the log, if the child exits.
    pub fn start(dir: &Path, opts: ProsodyOptions) -> Result<Prosody> {
        Self::start_with(dir, opts, Ports::pick)
    }

    fn start_with(
        dir: &Path,
        opts: ProsodyOptions,
        mut pick_ports: impl FnMut() -> Result<Ports>,
    ) -> Result<Prosody> {
        check_lua_safe(dir)?; // before creating anything
        fs::create_dir_all(dir)
            .with_context(|| format!("creating the Prosody directory {}", dir.display()))?;
        let dir = dir
            .canonicalize()
            .with_context(|| format!("resolving {}", dir.display()))?;
        check_lua_safe(&dir)?;
        let certs = dir.join("certs");
        ensure_certs(&certs)?;
        let data = dir.join("data");
        fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;

        if let Some(pid) = running_pid(&dir.join("prosody.pid")) {
            bail!(
                "a Prosody (pid {pid}) is already running in {}; stop it first",
                dir.display()
            );
        }

        let debug = opts.debug_log || std::env::var(DEBUG_ENV).is_ok_and(|v| v == "1");
        let config_path = dir.join("prosody.cfg.lua");
        let plugins = dir.join("plugins");
        fs::create_dir_all(&plugins)
            .and_then(|()| fs::write(plugins.join("mod_starling_compat.lua"), COMPAT_MODULE))
            .with_context(|| {
                format!(
                    "writing the test server's plugin into {}",
                    plugins.display()
                )
            })?;
        let mut last_bind_failure = String::new();
        for _attempt in 0..2 {
            let ports = pick_ports()?;
            let config = render_config(&dir, &ports, &opts, debug, running_as_root());
            fs::write(&config_path, config)
                .with_context(|| format!("writing {}", config_path.display()))?;
            let mut prosody = Prosody {
                child: None,
                ca_file: certs.join("ca.crt"),
                config_path: config_path.clone(),
                dir: dir.clone(),
                ports,
            };
            let log_offset = file_len(&prosody.log_path());
            prosody.spawn()?;
            match prosody.wait_ready(log_offset)? {
                Startup::Ready => return Ok(prosody),
                Startup::BindFailure(log) => {
                    // Another process took a port between pick() and Prosody's bind().
                    prosody
                        .stop_child()
                        .context("stopping Prosody after a port clash")?;
                    last_bind_failure = log;
                }
            }
        }
        Err(anyhow!(
            "Prosody could not bind its ports twice in a row; log tail:\n{last_bind_failure}"
        ))
    }

    /// The XMPP domain: `"localhost"`.
    pub fn domain(&self) -> &str {
        DOMAIN
    }

    /// `user@localhost`.
    pub fn jid(&self, user: &str) -> String {
        format!("{user}@{DOMAIN}")
    }

    /// c2s port with STARTTLS (`c2s_require_encryption = true`).
    pub fn c2s_port(&self) -> u16 {
        self.ports.c2s
    }

    /// c2s direct TLS port (`c2s_direct_tls_ports`).
    pub fn direct_tls_port(&self) -> u16 {
        self.ports.direct_tls
    }

    /// Plain HTTP port.
    pub fn http_port(&self) -> u16 {
        self.ports.http
    }

    /// HTTPS port (upload slots use `https://localhost:<this>/file_share/...`).
    pub fn https_port(&self) -> u16 {
        self.ports.https
    }

    /// All the ports.
    pub fn ports(&self) -> Ports {
        self.ports
    }

    /// The generated test CA (PEM) that signed the server certificate.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// The server directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The generated `prosody.cfg.lua`.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// Prosody's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("prosody.log")
    }

    /// The child's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Creates the account `user@localhost`. The password goes to `prosodyctl adduser` on
    /// its stdin (it asks twice), never on a command line. Fails if the account exists.
    pub fn register(&self, user: &str, password: &str) -> Result<()> {
        self.register_at(DOMAIN, user, password)
    }

    /// Like [`Prosody::register`], on another virtual host (e.g. [`SRV_DOMAIN`]).
    pub fn register_at(&self, domain: &str, user: &str, password: &str) -> Result<()> {
        if user.is_empty()
            || user
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "@/\"&'<>:".contains(c))
        {
            bail!("invalid account name {user:?}");
        }
        if password.is_empty() || password.contains(['\n', '\r']) {
            bail!("the password for {user} must be non-empty and a single line");
        }
        let jid = format!("{user}@{domain}");
        let mut child = Command::new("prosodyctl")
            .arg("--config")
            .arg(&self.config_path)
            .arg("adduser")
            .arg(&jid)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running prosodyctl (is the prosody package installed?)")?;
        {
            let mut stdin = child
                .stdin
                .take()
                .context("prosodyctl stdin was not captured")?;
            // A write error here also shows up as a failed exit status below.
            if let Err(e) = write!(stdin, "{password}\n{password}\n") {
                tracing::debug!(error = %e, "writing the password to prosodyctl");
            }
        }
        let output = child
            .wait_with_output()
            .context("waiting for prosodyctl adduser")?;
        if !output.status.success() {
            bail!(
                "prosodyctl adduser {jid} failed ({}): {}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout).trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }

    /// Stops the server: SIGTERM, up to 5 s for a clean exit, then SIGKILL.
    pub fn stop(mut self) -> Result<()> {
        self.stop_child()
    }

    /// Stops and starts the server again on the same ports, with the same data (what a
    /// server upgrade or crash looks like to clients: every session is gone).
    pub fn restart(&mut self) -> Result<()> {
        self.stop_child()
            .context("stopping Prosody for a restart")?;
        self.start_again()
    }

    /// Like [`Prosody::restart`], with other options (what a server reconfigured by its
    /// admin looks like: e.g. SASL2 turned off).
    pub fn restart_with(&mut self, opts: &ProsodyOptions) -> Result<()> {
        self.stop_child()
            .context("stopping Prosody for a restart")?;
        let debug = opts.debug_log || std::env::var(DEBUG_ENV).is_ok_and(|v| v == "1");
        let config = render_config(&self.dir, &self.ports, opts, debug, running_as_root());
        fs::write(&self.config_path, config)
            .with_context(|| format!("writing {}", self.config_path.display()))?;
        self.start_again()
    }

    fn start_again(&mut self) -> Result<()> {
        let log_offset = file_len(&self.log_path());
        self.spawn()?;
        match self.wait_ready(log_offset)? {
            Startup::Ready => Ok(()),
            Startup::BindFailure(log) => {
                bail!("Prosody could not bind its old ports again after a restart:\n{log}")
            }
        }
    }

    /// Runs one line of Lua in the running server's admin shell (mod_admin_shell) and
    /// returns what it printed. For tests that must change server state behind the
    /// clients' backs (e.g. drop an occupant from a room silently).
    pub fn shell(&self, lua: &str) -> Result<String> {
        let output = Command::new("prosodyctl")
            .arg("--config")
            .arg(&self.config_path)
            .arg("shell")
            .arg(format!("> {lua}"))
            .stdin(Stdio::null())
            .output()
            .context("running prosodyctl shell")?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        if !output.status.success() {
            bail!(
                "prosodyctl shell failed ({}): {}",
                output.status,
                text.trim()
            );
        }
        Ok(text)
    }

    /// Puts `contact` in `owner`'s roster with a mutual (`both`) subscription and these
    /// groups, straight in the server's roster storage (both are local users, given by
    /// bare JID). Tests and the demo use it instead of a subscription handshake.
    pub fn add_roster_item(&self, owner: &str, contact: &str, groups: &[&str]) -> Result<()> {
        let (user, host) = owner
            .split_once('@')
            .ok_or_else(|| anyhow::anyhow!("{owner} is not a bare JID"))?;
        let safe = |s: &str| {
            s.chars()
                .all(|c| c.is_alphanumeric() || "@.-_ ".contains(c))
        };
        if !(safe(owner) && safe(contact) && groups.iter().all(|g| safe(g))) {
            bail!("unexpected characters in a roster item for the admin shell");
        }
        let groups: String = groups.iter().map(|g| format!("[\"{g}\"]=true;")).collect();
        self.shell(&format!(
            "local rm = require \"core.rostermanager\"; \
             local r = rm.load_roster(\"{user}\", \"{host}\"); \
             r[\"{contact}\"] = {{ subscription = \"both\", groups = {{ {groups} }} }}; \
             rm.save_roster(\"{user}\", \"{host}\", r, \"{contact}\"); \
             rm.roster_push(\"{user}\", \"{host}\", \"{contact}\")"
        ))?;
        Ok(())
    }

    /// Makes two local users mutual contacts (see [`Prosody::add_roster_item`]).
    pub fn befriend(&self, a: &str, b: &str) -> Result<()> {
        self.add_roster_item(a, b, &[])?;
        self.add_roster_item(b, a, &[])
    }

    fn spawn(&mut self) -> Result<()> {
        let console_path = self.dir.join("prosody.console.log");
        let console = fs::File::create(&console_path)
            .with_context(|| format!("creating {}", console_path.display()))?;
        let console_err = console
            .try_clone()
            .context("duplicating the console log handle")?;
        let child = Command::new("prosody")
            .arg("--config")
            .arg(&self.config_path)
            .arg("-F")
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(console)
            .stderr(console_err)
            .spawn()
            .context("starting prosody (is the prosody package installed?)")?;
        self.child = Some(child);
        Ok(())
    }

    fn wait_ready(&mut self, log_offset: u64) -> Result<Startup> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let log = read_from(&self.log_path(), log_offset);
            if let Some(marker) = BIND_FAILURE_MARKERS.iter().find(|m| log.contains(**m)) {
                tracing::warn!("prosody: {marker}; retrying with other ports");
                return Ok(Startup::BindFailure(tail(&log, 30)));
            }
            if let Some(marker) = FATAL_MARKERS.iter().find(|m| log.contains(**m)) {
                let diag = self.diagnostics(log_offset);
                if let Err(e) = self.stop_child() {
                    tracing::warn!(error = %e, "stopping prosody after a failed start");
                }
                bail!("prosody failed to start ({marker:?}); {diag}");
            }
            let child = self.child.as_mut().context("prosody child missing")?;
            if let Some(status) = child.try_wait().context("polling the prosody child")? {
                self.child = None;
                bail!(
                    "prosody exited during startup ({status}); {}",
                    self.diagnostics(log_offset)
                );
            }
            // Ready: Prosody logged that it activated all four listeners (a bind failure is
            // logged before that line, so it was caught above), mod_posix wrote our pid (a
            // stale file from an earlier run holds another one), and every port accepts
            // connections.
            let all_activated = self.ports.services().iter().all(|(name, port)| {
                log.contains(&format!("Activated service '{name}' on [127.0.0.1]:{port}"))
            });
            let pid_written = fs::read_to_string(self.dir.join("prosody.pid"))
                .is_ok_and(|s| s.trim() == child.id().to_string());
            if all_activated && pid_written && self.ports.all().iter().all(|p| port_accepts(*p)) {
                return Ok(Startup::Ready);
            }
            if Instant::now() >= deadline {
                let diag = self.diagnostics(log_offset);
                if let Err(e) = self.stop_child() {
                    tracing::warn!(error = %e, "stopping prosody after a failed start");
                }
                bail!(
                    "prosody did not accept connections on {:?} within {:?}; {diag}",
                    self.ports,
                    READY_TIMEOUT
                );
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    fn diagnostics(&self, log_offset: u64) -> String {
        let mut out = format!(
            "log tail ({}):\n{}",
            self.log_path().display(),
            tail(&read_from(&self.log_path(), log_offset), 30)
        );
        let console = read_from(&self.dir.join("prosody.console.log"), 0);
        if !console.trim().is_empty() {
            let _ = write!(out, "\nconsole output:\n{}", tail(&console, 30));
        }
        out
    }

    fn stop_child(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if child.try_wait().context("polling prosody")?.is_some() {
            return Ok(());
        }
        let term = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if matches!(term, Ok(s) if s.success()) {
            if let Some(status) = wait_timeout(&mut child, STOP_TIMEOUT)? {
                return check_stop_status(status);
            }
            tracing::warn!(
                "prosody (pid {}) ignored SIGTERM for {STOP_TIMEOUT:?}; killing it",
                child.id()
            );
        }
        child.kill().context("sending SIGKILL to prosody")?;
        child.wait().context("reaping prosody")?;
        Ok(())
    }
}

impl Drop for Prosody {
    fn drop(&mut self) {
        if let Err(e) = self.stop_child() {
            tracing::warn!("stopping prosody on drop: {e:#}");
        }
    }
}

fn check_stop_status(status: ExitStatus) -> Result<()> {
    // Prosody exits 0 on SIGTERM; a death by the signal itself is fine too.
    if status.success() || status.code().is_none() {
        Ok(())
    } else {
        bail!("prosody exited with {status} when stopped")
    }
}

fn wait_timeout(child: &mut Child, timeout: Duration) -> Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().context("waiting for prosody to exit")? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// The pid in `pidfile` if that process is alive and is a prosody.
fn running_pid(pidfile: &Path) -> Option<u32> {
    let pid: u32 = fs::read_to_string(pidfile).ok()?.trim().parse().ok()?;
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let zombie = status
        .lines()
        .any(|l| l.starts_with("State:") && l.contains('Z'));
    (!zombie && String::from_utf8_lossy(&cmdline).contains("prosody")).then_some(pid)
}

fn port_accepts(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(250)).is_ok()
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The text of `path` from byte `offset` on (empty if unreadable).
fn read_from(path: &Path, offset: u64) -> String {
    let Ok(mut file) = fs::File::open(path) else {
        return String::new();
    };
    let mut bytes = Vec::new();
    if std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(offset)).is_err()
        || file.read_to_end(&mut bytes).is_err()
    {
        return String::new();
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Paths are put into Lua strings as they are.
fn check_lua_safe(dir: &Path) -> Result<()> {
    let s = dir
        .to_str()
        .with_context(|| format!("the Prosody directory {} is not UTF-8", dir.display()))?;
    if s.contains(['"', '\\', '\n', '\r']) {
        bail!("the Prosody directory {s:?} must not contain '\"', '\\' or line breaks");
    }
    Ok(())
}

/// Whether this process runs as uid 0 (then Prosody needs `run_as_root = true`).
fn running_as_root() -> bool {
    if let Ok(status) = fs::read_to_string("/proc/self/status")
        && let Some(line) = status.lines().find(|l| l.starts_with("Uid:"))
    {
        return line.split_whitespace().nth(1) == Some("0");
    }
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Makes prosody-modules' SASL2 modules work on Prosody 0.12 (see the file).
const COMPAT_MODULE: &str = include_str!("../assets/prosody/mod_starling_compat.lua");

fn render_config(
    dir: &Path,
    ports: &Ports,
    opts: &ProsodyOptions,
    debug: bool,
    as_root: bool,
) -> String {
    let d = dir.display();
    let level = if debug { "debug" } else { "info" };
    let mut disabled = vec!["\"s2s\""];
    if !opts.offline_delivery {
        disabled.push("\"offline\"");
    }
    let mut c = String::new();
    c.push_str("-- Generated by starling::testbed; rewritten on every start.\n");
    if as_root {
        c.push_str("run_as_root = true\n");
    }
    let _ = write!(
        c,
        r#"pidfile = "{d}/prosody.pid"
data_path = "{d}/data"
log = {{ {level} = "{d}/prosody.log" }}
interfaces = {{ "127.0.0.1" }}
local_interfaces = {{ "127.0.0.1" }}
c2s_interfaces = {{ "127.0.0.1" }}
c2s_direct_tls_interfaces = {{ "127.0.0.1" }}
http_interfaces = {{ "127.0.0.1" }}
https_interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {c2s} }}
c2s_direct_tls_ports = {{ {dtls} }}
http_ports = {{ {http} }}
https_ports = {{ {https} }}
component_interfaces = {{ "127.0.0.1" }}
component_ports = {{ {component} }}
s2s_ports = {{}}
legacy_ssl_ports = {{}}
c2s_require_encryption = true
modules_enabled = {{
    "roster"; "saslauth"; "tls"; "disco"; "carbons"; "mam"; "smacks"; "pep"; "ping";
    "register"; "time"; "version"; "vcard4"; "vcard_legacy"; "blocklist"; "bookmarks";
    "csi_simple"; "posix"; "admin_shell"; "cloud_notify"; {sasl2}
}}
modules_disabled = {{ {disabled} }}
allow_registration = true
authentication = "internal_hashed"
storage = "internal"
admins = {{ "{ADMIN_JID}" }}
smacks_hibernation_time = 600
archive_expires_after = "never"
default_archive_policy = true
certificates = "{d}/certs"
plugin_paths = {{ "{d}/plugins" }}
ssl = {{ certificate = "{d}/certs/localhost.crt"; key = "{d}/certs/localhost.key" }}
"#,
        c2s = ports.c2s,
        dtls = ports.direct_tls,
        http = ports.http,
        https = ports.https,
        component = ports.component,
        disabled = disabled.join(", "),
        sasl2 = if opts.sasl2 {
            "\"starling_compat\"; \"sasl2\"; \"sasl2_bind2\"; \"sasl2_fast\";"
        } else {
            ""
        },
    );
    if opts.end_point_binding {
        c.push_str("starling_channel_binding = \"tls-server-end-point\"\n");
    }
    if let Some(n) = opts.archive_item_limit {
        let _ = writeln!(c, "storage_archive_item_limit = {n}");
    }
    if let Some(n) = opts.max_archive_query_results {
        let _ = writeln!(c, "max_archive_query_results = {n}");
    }
    let _ = write!(
        c,
        r#"
VirtualHost "{DOMAIN}"

VirtualHost "{SRV_DOMAIN}"

VirtualHost "{DANE_DOMAIN}"
    ssl = {{ certificate = "{d}/certs/{DANE_CERT}"; key = "{d}/certs/{DANE_KEY}" }}

Component "{CONFERENCE_DOMAIN}" "muc"
    modules_enabled = {{ "muc_mam"; "muc_moderation" }}
    muc_room_locking = false

Component "{UPLOAD_DOMAIN}" "http_file_share"
    http_host = "{DOMAIN}"
{upload_limit}
Component "{PUBSUB_DOMAIN}" "pubsub"
    admins = {{ "{ADMIN_JID}" }}

Component "{PUSH_DOMAIN}"
    component_secret = "{PUSH_COMPONENT_SECRET}"
"#,
        upload_limit = opts
            .upload_size_limit
            .map(|n| format!("    http_file_share_size_limit = {n}\n"))
            .unwrap_or_default(),
    );
    c
}

/// Creates `certs/` (CA + server certificate) unless a complete set exists already.
/// Generated in a sibling temporary directory and renamed into place, so an interrupted
/// run never leaves a half-made set behind.
fn ensure_certs(certs: &Path) -> Result<()> {
    const FILES: [&str; 6] = [
        "ca.crt",
        "ca.key",
        "localhost.crt",
        "localhost.key",
        DANE_CERT,
        DANE_KEY,
    ];
    if FILES.iter().all(|f| certs.join(f).is_file()) {
        return Ok(());
    }
    let parent = certs.parent().context("certs directory has no parent")?;
    let tmp = parent.join(format!("certs.tmp-{}", std::process::id()));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).with_context(|| format!("removing {}", tmp.display()))?;
    }
    fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    generate_certs(&tmp).inspect_err(|_| {
        if let Err(e) = fs::remove_dir_all(&tmp) {
            tracing::warn!(error = %e, dir = %tmp.display(), "cannot remove half-made certs");
        }
    })?;
    if certs.exists() {
        fs::remove_dir_all(certs)
            .with_context(|| format!("removing the incomplete {}", certs.display()))?;
    }
    fs::rename(&tmp, certs)
        .with_context(|| format!("moving {} to {}", tmp.display(), certs.display()))?;
    Ok(())
}

/// The [`DANE_DOMAIN`] host's certificate chain in `certs/`: a certificate for
/// `xmpp.dane.test` only (its SRV target in the DANE tests, not the domain), signed by the
/// test CA, followed by the CA certificate itself, so that DANE-TA records for the CA can be
/// checked against the chain the server sends.
pub const DANE_CERT: &str = "dane.test.crt";
/// The key of [`DANE_CERT`].
pub const DANE_KEY: &str = "dane.test.key";

fn generate_certs(dir: &Path) -> Result<()> {
    let ext = dir.join("localhost.ext");
    fs::write(
        &ext,
        "basicConstraints = critical, CA:FALSE\n\
         keyUsage = critical, digitalSignature, keyEncipherment\n\
         extendedKeyUsage = serverAuth\n\
         subjectAltName = DNS:localhost, DNS:conference.localhost, DNS:upload.localhost, \
         DNS:pubsub.localhost, DNS:srv.test, IP:127.0.0.1\n",
    )
    .with_context(|| format!("writing {}", ext.display()))?;
    openssl(
        dir,
        "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
         -keyout ca.key -out ca.crt -days 3650 -subj /CN=Starling-Test-CA \
         -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign",
    )?;
    openssl(
        dir,
        "req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
         -keyout localhost.key -out localhost.csr -subj /CN=localhost",
    )?;
    openssl(
        dir,
        "x509 -req -in localhost.csr -CA ca.crt -CAkey ca.key -CAcreateserial -CAserial ca.srl \
         -days 825 -extfile localhost.ext -out localhost.crt",
    )?;
    let ext = dir.join("dane.ext");
    fs::write(
        &ext,
        "basicConstraints = critical, CA:FALSE\n\
         keyUsage = critical, digitalSignature, keyEncipherment\n\
         extendedKeyUsage = serverAuth\n\
         subjectAltName = DNS:xmpp.dane.test\n",
    )
    .with_context(|| format!("writing {}", ext.display()))?;
    openssl(
        dir,
        "req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
         -keyout dane.test.key -out dane.csr -subj /CN=xmpp.dane.test",
    )?;
    openssl(
        dir,
        "x509 -req -in dane.csr -CA ca.crt -CAkey ca.key -CAserial ca.srl \
         -days 825 -extfile dane.ext -out dane.leaf.crt",
    )?;
    let mut chain = fs::read(dir.join("dane.leaf.crt")).context("reading dane.leaf.crt")?;
    chain.extend(fs::read(dir.join("ca.crt")).context("reading ca.crt")?);
    fs::write(dir.join(DANE_CERT), chain).context("writing the dane.test chain")?;
    Ok(())
}

/// Runs `openssl` in `dir` with whitespace-separated `args` (none contains a space).
fn openssl(dir: &Path, args: &str) -> Result<()> {
    let output = Command::new("openssl")
        .args(args.split_whitespace())
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .context("running openssl (is the openssl package installed?)")?;
    if !output.status.success() {
        bail!(
            "openssl {} failed ({}): {}",
            args.split_whitespace().collect::<Vec<_>>().join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_until(stream: &mut TcpStream, needle: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        stream.set_read_timeout(Some(Duration::from_millis(200)))?;
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&seen).into_owned();
            if text.contains(needle) {
                return Ok(text);
            }
            if Instant::now() >= deadline {
                bail!("no {needle:?} within {timeout:?}; got {text:?}");
            }
            match stream.read(&mut buf) {
                Ok(0) => bail!("connection closed before {needle:?}; got {text:?}"),
                Ok(n) => seen.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e).context("reading the stream header"),
            }
        }
    }

    #[test]
    fn starts_registers_greets_and_stops() -> Result<()> {
        let tmp = tempfile::TempDir::new()?;
        let server = Prosody::start(tmp.path(), ProsodyOptions::default())?;
        assert_eq!(server.domain(), "localhost");
        let ports = server.ports().all();
        for (i, p) in ports.iter().enumerate() {
            assert!(!ports[i + 1..].contains(p), "ports must differ: {ports:?}");
        }
        assert!(server.ca_file().is_file());
        assert!(server.dir().join("prosody.pid").is_file());

        server.register("alice", "correct horse battery")?;
        let again = server.register("alice", "other");
        assert!(again.is_err(), "duplicate account must fail");
        let account = server.dir().join("data/localhost/accounts/alice.dat");
        assert!(account.is_file(), "{} missing", account.display());
        let stored = fs::read_to_string(&account)?;
        assert!(
            !stored.contains("correct horse battery"),
            "internal_hashed must not store the password"
        );

        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, server.c2s_port()))?;
        stream.write_all(
            b"<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client' \
              xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>",
        )?;
        let greeting = read_until(&mut stream, "starttls", Duration::from_secs(10))?;
        assert!(greeting.contains("<stream:stream"), "{greeting}");
        assert!(
            greeting.contains("<required"),
            "STARTTLS must be required: {greeting}"
        );
        drop(stream);

        let pid = server.pid().context("no pid")?;
        server.stop()?;
        let still_there = Path::new(&format!("/proc/{pid}")).exists()
            && fs::read_to_string(format!("/proc/{pid}/status"))
                .map(|s| !s.contains("State:\tZ"))
                .unwrap_or(false);
        assert!(!still_there, "prosody {pid} still running after stop");
        Ok(())
    }

    #[test]
    fn second_start_reuses_ca_and_accounts() -> Result<()> {
        let tmp = tempfile::TempDir::new()?;
        let opts = ProsodyOptions {
            offline_delivery: false,
            archive_item_limit: Some(1_000_000),
            max_archive_query_results: Some(100),
            debug_log: true,
            upload_size_limit: Some(64 << 20),
            sasl2: false,
            end_point_binding: false,
        };
        let first = Prosody::start(tmp.path(), opts.clone())?;
        first.register("bob", "pw-bob")?;
        let ca = fs::read(first.ca_file())?;
        let config = fs::read_to_string(first.config_path())?;
        assert!(config.contains("\"offline\""), "{config}");
        assert!(config.contains("storage_archive_item_limit = 1000000"));
        assert!(config.contains("max_archive_query_results = 100"));
        assert!(config.contains("http_file_share_size_limit = 67108864"));
        assert!(!config.contains("sasl2"), "{config}");
        first.stop()?;

        let second = Prosody::start(tmp.path(), opts)?;
        assert_eq!(fs::read(second.ca_file())?, ca, "CA must be reused");
        assert!(
            second.register("bob", "pw-bob").is_err(),
            "accounts must persist across restarts"
        );
        // Dropping stops it too.
        drop(second);
        Ok(())
    }

    #[test]
    fn retries_with_new_ports_when_one_is_taken() -> Result<()> {
        let tmp = tempfile::TempDir::new()?;
        let squatter = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let taken = squatter.local_addr()?.port();
        let mut calls = 0;
        let server = Prosody::start_with(tmp.path(), ProsodyOptions::default(), || {
            calls += 1;
            let mut ports = Ports::pick()?;
            if calls == 1 {
                ports.https = taken;
            }
            Ok(ports)
        })?;
        assert_eq!(calls, 2, "a clash must trigger exactly one retry");
        assert_ne!(server.https_port(), taken);
        assert!(port_accepts(server.https_port()));
        server.stop()?;
        Ok(())
    }

    #[test]
    fn refuses_a_second_server_in_the_same_dir() -> Result<()> {
        let tmp = tempfile::TempDir::new()?;
        let first = Prosody::start(tmp.path(), ProsodyOptions::default())?;
        let started = Instant::now();
        let err = Prosody::start(tmp.path(), ProsodyOptions::default())
            .err()
            .context("a second server in the same directory must be refused")?;
        assert!(format!("{err:#}").contains("already running"), "{err:#}");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(
            port_accepts(first.c2s_port()),
            "the first server must be untouched"
        );
        first.stop()
    }

    #[test]
    fn rejects_paths_unsafe_for_lua() -> Result<()> {
        let tmp = tempfile::TempDir::new()?;
        let bad = tmp.path().join("a\"b");
        let err = Prosody::start(&bad, ProsodyOptions::default())
            .err()
            .context("a path with a quote must be rejected")?;
        assert!(format!("{err:#}").contains("must not contain"), "{err:#}");
        assert!(!bad.exists(), "nothing may be created for a rejected path");
        Ok(())
    }
}
