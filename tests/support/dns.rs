//! An authoritative DNS server on 127.0.0.1 for tests: Knot DNS (`knotd`, Debian `knot`)
//! serving one zone, optionally DNSSEC-signed with `ldns-keygen`/`ldns-signzone` (Debian
//! `ldnsutils`), as a foreground child process in a temporary directory. Dropping the
//! [`DnsServer`] stops it.
//!
//! The zone is the root zone `.` itself, with the test names as plain records in it: the
//! client's resolver is pointed at this server and given the zone's key as its trust
//! anchor, so validation takes the same path as from the IANA root keys. Optionally one
//! unsigned child zone is delegated from it without a DS record (an insecure delegation),
//! served by the same knotd.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use hickory_proto::op::{Message, MessageType, Query};
use hickory_proto::rr::{Name, RecordType};

const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// How the zone is published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signing {
    /// Not signed at all.
    Unsigned,
    /// Signed with a fresh key, which is the trust anchor.
    Signed,
    /// Signed, then one byte of the signature over each `(owner, rtype)` RRset (e.g. an
    /// SRV RRset) flipped.
    Tampered(Vec<(String, &'static str)>),
}

/// A running `knotd` serving the zone.
pub struct DnsServer {
    child: Child,
    addr: SocketAddr,
    anchor: Option<PathBuf>,
    dir: tempfile::TempDir,
}

impl DnsServer {
    /// Serves `records` (zone-file lines with absolute owner names, e.g.
    /// `_xmpps-client._tcp.dane.test. SRV 0 0 5223 xmpp.dane.test.`) in the root zone.
    pub fn start(records: &[String], signing: &Signing) -> Result<DnsServer> {
        Self::start_with_child(records, signing, None)
    }

    /// Like [`DnsServer::start`], plus an unsigned child zone `(name, records)` delegated
    /// from the root zone without a DS record: an insecure delegation, as most domains
    /// under a signed TLD are. The same server answers for both zones.
    pub fn start_with_child(
        records: &[String],
        signing: &Signing,
        child: Option<(&str, &[String])>,
    ) -> Result<DnsServer> {
        let dir = tempfile::Builder::new()
            .prefix("starling-knot-")
            .tempdir()
            .context("temporary directory for knotd")?;
        let mut zone = String::from(
            "$TTL 300\n\
             . IN SOA ns.test. admin.test. 1 3600 600 86400 300\n\
             . IN NS ns.test.\n\
             ns.test. IN A 127.0.0.1\n",
        );
        for r in records {
            zone.push_str(r);
            zone.push('\n');
        }
        let mut zones = Vec::new();
        if let Some((name, child_records)) = child {
            let name = name.trim_end_matches('.');
            // The delegation and its glue, in the parent.
            zone.push_str(&format!(
                "{name}. IN NS ns.{name}.\nns.{name}. IN A 127.0.0.1\n"
            ));
            let mut text = format!(
                "$TTL 300\n\
                 {name}. IN SOA ns.{name}. admin.{name}. 1 3600 600 86400 300\n\
                 {name}. IN NS ns.{name}.\n\
                 ns.{name}. IN A 127.0.0.1\n"
            );
            for r in child_records {
                text.push_str(r);
                text.push('\n');
            }
            let file = dir.path().join(format!("{name}.zone"));
            std::fs::write(&file, text).context("writing the child zone")?;
            zones.push((format!("{name}."), file));
        }
        let plain = dir.path().join("root.zone");
        std::fs::write(&plain, zone).context("writing the zone")?;
        let (zone_file, anchor) = match signing {
            Signing::Unsigned => (plain, None),
            Signing::Signed | Signing::Tampered(_) => {
                let (signed, anchor) = sign(dir.path(), &plain)?;
                if let Signing::Tampered(rrsets) = signing {
                    for (owner, rtype) in rrsets {
                        tamper(&signed, owner, rtype)?;
                    }
                }
                (signed, Some(anchor))
            }
        };
        zones.push((".".to_owned(), zone_file));
        let mut last = String::new();
        for _attempt in 0..3 {
            let port = free_port()?;
            let mut child = spawn_knot(dir.path(), &zones, port)?;
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            match wait_ready(&mut child, addr) {
                Ok(()) => {
                    return Ok(DnsServer {
                        child,
                        addr,
                        anchor,
                        dir,
                    });
                }
                Err(e) => {
                    stop(&mut child);
                    last = format!(
                        "{e:#}; knotd log:\n{}",
                        std::fs::read_to_string(dir.path().join("knot.log")).unwrap_or_default()
                    );
                }
            }
        }
        bail!("knotd did not start: {last}")
    }

    /// `127.0.0.1:PORT`, for `STARLING_DNS_SERVER`.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// The zone's key (DNSKEY, zone-file format), for `STARLING_DNSSEC_TRUST_ANCHOR`.
    pub fn anchor(&self) -> Result<&Path> {
        self.anchor
            .as_deref()
            .context("an unsigned zone has no trust anchor")
    }

    /// The temporary directory (zone files, keys, knotd's log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

fn stop(child: &mut Child) {
    if let Err(e) = child.kill() {
        eprintln!("stopping knotd: {e}");
    }
    if let Err(e) = child.wait() {
        eprintln!("waiting for knotd: {e}");
    }
}

/// Generates a key for `.` (ECDSA P-256, used for everything) and signs the zone with NSEC.
/// Returns the signed zone and the key's DNSKEY file.
fn sign(dir: &Path, zone: &Path) -> Result<(PathBuf, PathBuf)> {
    let out = Command::new("ldns-keygen")
        .args(["-a", "ECDSAP256SHA256", "-k", "."])
        .current_dir(dir)
        .output()
        .context("running ldns-keygen (is ldnsutils installed?)")?;
    ensure!(
        out.status.success(),
        "ldns-keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let base = String::from_utf8(out.stdout)?.trim().to_owned();
    ensure!(base.starts_with("K."), "ldns-keygen printed {base:?}");
    let signed = dir.join("root.zone.signed");
    let out = Command::new("ldns-signzone")
        .arg("-f")
        .arg(&signed)
        .arg(zone)
        .arg(&base)
        .current_dir(dir)
        .output()
        .context("running ldns-signzone")?;
    ensure!(
        out.status.success(),
        "ldns-signzone: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((signed, dir.join(format!("{base}.key"))))
}

/// Flips one character in the middle of the signature of the `owner` `rtype` RRSIG.
fn tamper(signed: &Path, owner: &str, rtype: &str) -> Result<()> {
    let text = std::fs::read_to_string(signed)?;
    let mut found = false;
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // owner TTL IN RRSIG type alg labels ttl expire incept tag signer signature
            if fields.len() == 13
                && fields[0].eq_ignore_ascii_case(owner)
                && fields[3] == "RRSIG"
                && fields[4] == rtype
            {
                found = true;
                let mut sig: Vec<u8> = fields[12].bytes().collect();
                let i = sig.len() / 2;
                sig[i] = if sig[i] == b'A' { b'B' } else { b'A' };
                let mut out = fields[..12].join("\t");
                out.push('\t');
                out.push_str(&String::from_utf8_lossy(&sig));
                out
            } else {
                line.to_owned()
            }
        })
        .collect();
    ensure!(found, "no RRSIG {rtype} for {owner} in the signed zone");
    std::fs::write(signed, lines.join("\n") + "\n")?;
    Ok(())
}

/// A port free for UDP and TCP on 127.0.0.1 just now (knotd binds both).
fn free_port() -> Result<u16> {
    for _ in 0..20 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = udp.local_addr()?.port();
        if std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no port free for both UDP and TCP")
}

/// Starts knotd serving `zones` (name, file) on 127.0.0.1:`port`, UDP and TCP.
fn spawn_knot(dir: &Path, zones: &[(String, PathBuf)], port: u16) -> Result<Child> {
    let run = dir.join("run");
    std::fs::create_dir_all(&run)?;
    let mut config = format!(
        "server:\n    rundir: \"{run}\"\n    pidfile: \"{run}/knot.pid\"\n    \
         listen: 127.0.0.1@{port}\n\
         database:\n    storage: \"{run}\"\n\
         log:\n  - target: stderr\n    any: info\n\
         zone:\n",
        run = run.display(),
    );
    for (name, file) in zones {
        config.push_str(&format!(
            "  - domain: {name}\n    file: \"{}\"\n    journal-content: none\n    \
             zonefile-sync: -1\n",
            file.display()
        ));
    }
    let config_path = dir.join("knot.conf");
    std::fs::write(&config_path, config)?;
    let log = std::fs::File::create(dir.join("knot.log"))?;
    Command::new("knotd")
        .arg("-c")
        .arg(&config_path)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("running knotd (is the knot package installed?)")
}

/// Until the server answers an SOA query for `.` authoritatively (or exits, or time runs out).
fn wait_ready(child: &mut Child, addr: SocketAddr) -> Result<()> {
    let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    sock.set_read_timeout(Some(Duration::from_millis(100)))?;
    let mut query = Message::query();
    query.metadata.id = 4711;
    query.add_query(Query::query(Name::root(), RecordType::SOA));
    let bytes = query.to_vec()?;
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            bail!("knotd exited with {status}");
        }
        sock.send_to(&bytes, addr)?;
        // Read until this attempt's timeout; an answer means knotd is serving the zone.
        if let Ok((n, _)) = sock.recv_from(&mut buf)
            && let Ok(reply) = Message::from_vec(&buf[..n])
            && reply.metadata.message_type == MessageType::Response
            && reply.metadata.authoritative
        {
            return Ok(());
        }
    }
    bail!("no answer from knotd on {addr} within {READY_TIMEOUT:?}")
}
