//! OMEMO interop, byte for byte, without a server: Starling's crypto core against python-omemo
//! (`oldmemo`/`twomemo`, tests/peers/omemo/oracle.py) and against Dino's libomemo-c
//! (tests/peers/omemo/c), in both namespaces, each side starting the session in turn. Both
//! directions must decrypt to exactly the key material the other side encrypted — that is,
//! both derive the same X3DH secret, ratchet chains and message keys. The python oracle also
//! checks the payload ciphers. The oracles speak the line protocol in
//! tests/peers/omemo/PROTOCOL.md.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::OnceLock;

use anyhow::{Context as _, Result, anyhow, bail, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use starling_core::crypto::omemo::device::{Device, PublishedBundle};
use starling_core::crypto::omemo::store::{Address, MemoryStore};
use starling_core::crypto::omemo::{Namespace, payload};

use crate::support::peer_python;

/// One OMEMO device under test, whoever implements it.
trait OmemoDevice {
    fn name(&self) -> String;
    /// Our bundle.
    fn bundle(&self) -> PublishedBundle;
    /// Encrypts for `peer`, building a new session from (`bundle`, pre-key `pk`) if given.
    fn encrypt(
        &mut self,
        peer: u32,
        km: &[u8],
        bundle: Option<(&PublishedBundle, usize)>,
    ) -> Result<(bool, Vec<u8>)>;
    fn decrypt(&mut self, peer: u32, kex: bool, data: &[u8]) -> Result<Vec<u8>>;
}

/// Starling's core.
struct Starling {
    ns: Namespace,
    device: Device<MemoryStore>,
}

impl Starling {
    fn new(ns: Namespace, id: u32) -> Result<Self> {
        Ok(Starling {
            ns,
            device: Device::open(MemoryStore::default(), || id, 1_700_000_000)?,
        })
    }

    fn addr(&self, peer: u32) -> Address {
        Address::new(self.ns, format!("device{peer}@starling.test"), peer)
    }
}

impl OmemoDevice for Starling {
    fn name(&self) -> String {
        format!("starling {}", self.device.id())
    }

    fn bundle(&self) -> PublishedBundle {
        self.device
            .bundle(self.ns)
            .expect("a new device has a bundle")
    }

    fn encrypt(
        &mut self,
        peer: u32,
        km: &[u8],
        bundle: Option<(&PublishedBundle, usize)>,
    ) -> Result<(bool, Vec<u8>)> {
        let parsed = match bundle {
            Some((b, pk)) => {
                let one = PublishedBundle {
                    prekeys: vec![b.prekeys[pk].clone()],
                    ..b.clone()
                };
                Some(one.decode(self.ns).context("peer's bundle")?)
            }
            None => None,
        };
        let e = self.device.encrypt(&self.addr(peer), parsed.as_ref(), km)?;
        Ok((e.kex, e.data))
    }

    fn decrypt(&mut self, peer: u32, kex: bool, data: &[u8]) -> Result<Vec<u8>> {
        Ok(self.device.decrypt(&self.addr(peer), kex, data)?.plaintext)
    }
}

/// A reference implementation in a child process.
struct Oracle {
    name: String,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    bundle: PublishedBundle,
}

impl Oracle {
    fn python(ns: Namespace, id: u32) -> Result<Self> {
        let mut cmd = Command::new(peer_python());
        cmd.arg(repo().join("tests/peers/omemo/oracle.py"));
        Self::start(format!("python-omemo {id}"), cmd, ns, id)
    }

    fn libomemo_c(ns: Namespace, id: u32) -> Result<Self> {
        Self::start(
            format!("libomemo-c {id}"),
            Command::new(c_oracle()?),
            ns,
            id,
        )
    }

    fn start(name: String, mut cmd: Command, ns: Namespace, id: u32) -> Result<Self> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .env("PYTHONUNBUFFERED", "1")
            .spawn()
            .with_context(|| format!("starting {name} (run scripts/test to install it)"))?;
        let stdin = child.stdin.take().context("stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("stdout")?);
        let mut o = Oracle {
            name,
            child,
            stdin,
            stdout,
            bundle: PublishedBundle {
                ik: vec![],
                spk_id: 0,
                spk: vec![],
                spk_sig: vec![],
                prekeys: vec![],
            },
        };
        let ns_name = match ns {
            Namespace::Legacy => "oldmemo",
            Namespace::Omemo2 => "twomemo",
        };
        let r = o.request(&format!("setup {ns_name} {id} 10"))?;
        o.bundle = PublishedBundle {
            ik: field_b64(&r, "ik")?,
            spk_id: field(&r, "spk_id")?.parse()?,
            spk: field_b64(&r, "spk")?,
            spk_sig: field_b64(&r, "spk_sig")?,
            prekeys: field(&r, "prekeys")?
                .split(',')
                .map(|p| {
                    let (id, k) = p
                        .split_once(':')
                        .ok_or_else(|| anyhow!("bad pre-key {p}"))?;
                    Ok((id.parse()?, B64.decode(k)?))
                })
                .collect::<Result<_>>()?,
        };
        Ok(o)
    }

    /// Sends one request line, returns the `ok` fields.
    fn request(&mut self, line: &str) -> Result<Vec<(String, String)>> {
        writeln!(self.stdin, "{line}")?;
        self.stdin.flush()?;
        let mut answer = String::new();
        self.stdout.read_line(&mut answer)?;
        let answer = answer.trim_end();
        let op = line.split(' ').next().unwrap_or_default();
        match answer.split_once(' ').map_or((answer, ""), |(a, b)| (a, b)) {
            ("ok", rest) => Ok(rest
                .split(' ')
                .filter(|f| !f.is_empty())
                .filter_map(|f| f.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()),
            ("", _) => bail!("{} exited during `{op}`", self.name),
            _ => bail!("{} refused `{op}`: {answer}", self.name),
        }
    }
}

impl Drop for Oracle {
    fn drop(&mut self) {
        if (writeln!(self.stdin, "quit").is_err() || self.child.wait().is_err())
            && let Err(e) = self.child.kill()
        {
            eprintln!("{} could not be stopped: {e}", self.name);
        }
    }
}

impl OmemoDevice for Oracle {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn bundle(&self) -> PublishedBundle {
        self.bundle.clone()
    }

    fn encrypt(
        &mut self,
        peer: u32,
        km: &[u8],
        bundle: Option<(&PublishedBundle, usize)>,
    ) -> Result<(bool, Vec<u8>)> {
        let mut line = format!("encrypt {peer} {}", B64.encode(km));
        if let Some((b, pk)) = bundle {
            let (pk_id, pk) = &b.prekeys[pk];
            line += &format!(
                " {} {} {} {} {pk_id} {}",
                B64.encode(&b.ik),
                b.spk_id,
                B64.encode(&b.spk),
                B64.encode(&b.spk_sig),
                B64.encode(pk)
            );
        }
        let r = self.request(&line)?;
        Ok((field(&r, "kex")? == "1", field_b64(&r, "data")?))
    }

    fn decrypt(&mut self, peer: u32, kex: bool, data: &[u8]) -> Result<Vec<u8>> {
        let r = self.request(&format!(
            "decrypt {peer} {} {}",
            u8::from(kex),
            B64.encode(data)
        ))?;
        field_b64(&r, "key_material")
    }
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Result<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| anyhow!("answer without {name}"))
}

fn field_b64(fields: &[(String, String)], name: &str) -> Result<Vec<u8>> {
    Ok(B64.decode(field(fields, name)?)?)
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Builds the libomemo-c oracle once per test run.
fn c_oracle() -> Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("omemo-c-oracle");
            let status = Command::new("bash")
                .arg(repo().join("tests/peers/omemo/c/build.sh"))
                .arg(&out)
                .status()
                .map_err(|e| format!("running build.sh: {e}"))?;
            if !status.success() {
                return Err(format!(
                    "building the libomemo-c oracle failed ({status}); run scripts/test, which installs libomemo-c-dev"
                ));
            }
            Ok(out)
        })
        .clone()
        .map_err(|e| anyhow!(e))
}

/// Fresh key material of the namespace's size.
fn key_material(ns: Namespace) -> Vec<u8> {
    let mut v = Vec::new();
    while v.len() < ns.key_material_len() {
        v.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    v.truncate(ns.key_material_len());
    v
}

/// `from` encrypts fresh key material for `to`, which must decrypt exactly it.
fn send(
    ns: Namespace,
    from: &mut dyn OmemoDevice,
    to: &mut dyn OmemoDevice,
    to_id: u32,
    bundle: Option<(&PublishedBundle, usize)>,
) -> Result<(bool, Vec<u8>, Vec<u8>)> {
    let km = key_material(ns);
    let (kex, data) = from
        .encrypt(to_id, &km, bundle)
        .with_context(|| format!("{} encrypting for {}", from.name(), to.name()))?;
    Ok((kex, data, km))
}

fn receive(to: &mut dyn OmemoDevice, from_id: u32, sent: &(bool, Vec<u8>, Vec<u8>)) -> Result<()> {
    let got = to
        .decrypt(from_id, sent.0, &sent.1)
        .with_context(|| format!("{} decrypting from device {from_id}", to.name()))?;
    ensure!(
        got == sent.2,
        "{} decrypted other key material than was sent",
        to.name()
    );
    Ok(())
}

/// The conversation every pair goes through: `a` starts a session from `b`'s bundle; the key
/// exchange repeats until `b` answers; out-of-order delivery across ratchet steps; then `b`
/// starts a fresh session the other way (as after a bundle refresh or a session repair).
fn conversation(ns: Namespace, a: &mut dyn OmemoDevice, b: &mut dyn OmemoDevice) -> Result<()> {
    const A: u32 = 1001;
    const B: u32 = 2002;
    let b_bundle = b.bundle();
    let first = send(ns, a, b, B, Some((&b_bundle, 0)))?;
    ensure!(first.0, "the first message must be a key exchange");
    receive(b, A, &first)?;
    let second = send(ns, a, b, B, None)?;
    ensure!(second.0, "until answered, messages repeat the key exchange");
    receive(b, A, &second)?;
    let reply = send(ns, b, a, A, None)?;
    ensure!(!reply.0, "the responder never sends key exchanges");
    receive(a, B, &reply)?;
    let m4 = send(ns, a, b, B, None)?;
    ensure!(!m4.0, "after the answer, normal messages");
    let m5 = send(ns, a, b, B, None)?;
    receive(b, A, &m5)?;
    for _ in 0..3 {
        let r = send(ns, b, a, A, None)?;
        receive(a, B, &r)?;
        let m = send(ns, a, b, B, None)?;
        receive(b, A, &m)?;
    }
    // m4 arrives late, from two ratchet steps ago: its key was kept.
    receive(b, A, &m4)?;
    // The last message of a chain arrives after the next ratchet step (libsignal-based
    // senders count `pn` one lower than the specification; both must work).
    let x1 = send(ns, a, b, B, None)?;
    let x2 = send(ns, a, b, B, None)?;
    receive(b, A, &x1)?;
    let r = send(ns, b, a, A, None)?;
    receive(a, B, &r)?;
    let y = send(ns, a, b, B, None)?;
    receive(b, A, &y)?;
    receive(b, A, &x2)?;

    let a_bundle = a.bundle();
    let again = send(ns, b, a, A, Some((&a_bundle, 1)))?;
    ensure!(again.0);
    receive(a, B, &again)?;
    let answer = send(ns, a, b, B, None)?;
    receive(b, A, &answer)?;
    let last = send(ns, b, a, A, None)?;
    receive(a, B, &last)
}

/// Both orders: Starling starts, then the reference starts.
fn interop(ns: Namespace, reference: impl Fn(Namespace, u32) -> Result<Oracle>) -> Result<()> {
    let mut s = Starling::new(ns, 1001)?;
    let mut r = reference(ns, 2002)?;
    conversation(ns, &mut s, &mut r)
        .with_context(|| format!("{ns}: Starling first, {}", r.name()))?;
    let mut r = reference(ns, 1001)?;
    let mut s = Starling::new(ns, 2002)?;
    conversation(ns, &mut r, &mut s).with_context(|| format!("{ns}: {} first, Starling", r.name()))
}

#[test]
fn omemo_legacy_with_python_omemo() -> Result<()> {
    interop(Namespace::Legacy, Oracle::python)
}

#[test]
fn omemo2_with_python_omemo() -> Result<()> {
    interop(Namespace::Omemo2, Oracle::python)
}

#[test]
fn omemo_legacy_with_libomemo_c() -> Result<()> {
    interop(Namespace::Legacy, Oracle::libomemo_c)
}

#[test]
fn omemo2_with_libomemo_c() -> Result<()> {
    interop(Namespace::Omemo2, Oracle::libomemo_c)
}

/// The payload ciphers: what one side seals the other opens, both ways, both namespaces.
#[test]
fn omemo_payloads_with_python_omemo() -> Result<()> {
    for ns in Namespace::ALL {
        let mut o = Oracle::python(ns, 3003)?;
        let text = "Grüße — an OMEMO payload ✓".as_bytes();
        let sealed = payload::seal(ns, text);
        let mut line = format!(
            "open {} {}",
            B64.encode(&sealed.key_material),
            B64.encode(&sealed.payload)
        );
        if let Some(iv) = sealed.iv {
            line += &format!(" {}", B64.encode(iv));
        }
        let r = o.request(&line)?;
        ensure!(
            field_b64(&r, "plaintext")? == text,
            "{ns}: python opened something else"
        );

        let r = o.request(&format!("seal {}", B64.encode(text)))?;
        let iv = field(&r, "iv").ok().map(|v| B64.decode(v)).transpose()?;
        let opened = payload::open(
            ns,
            &field_b64(&r, "key_material")?,
            &field_b64(&r, "payload")?,
            iv.as_deref(),
        )?;
        ensure!(opened == text, "{ns}: Starling opened something else");
    }
    Ok(())
}
