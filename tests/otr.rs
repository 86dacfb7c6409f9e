//! OTR interop without a server: Starling's OTR engine (core/src/crypto/otr.rs, over the
//! vendored otrr) against libotr 4.1, the reference implementation (tests/peers/otr/peer.c,
//! line protocol in tests/peers/otr/PROTOCOL.md). The test carries the wire messages between
//! the two over pipes: key exchange started by either side, messages both ways, the receive
//! counter pattern that otrr 0.7.4 got wrong, fragmentation at 140 characters, SMP started by
//! either side with the right and a wrong secret, and ending the session.

use std::collections::VecDeque;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{OnceLock, mpsc};
use std::thread;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use starling_core::crypto::otr::{
    Error as OtrError, OtrConfig, OtrEngine, OtrEvent, OtrStatus, PrivateKey,
};

const STARLING: &str = "starling@otr.test/desk";
const LIBOTR: &str = "libotr@otr.test/pidgin";

/// A fixed key for Starling (generating one takes seconds in debug builds).
const STARLING_KEY: &str = concat!(
    "AQAAAIDHppT7o75hsHRmLRL3DJkm7+XLFQIljSq7wv1571WdyY5W2xSBh3Rwg3Bx5OA486YvFme1mMszvAzl2gxT",
    "ZIpzbj2pHfK9f8+lqSLCi85LS3pllQDH7MmxiFT9rEhtTADBexMWwD93rYeyRTNC/KB2qx1dcZiuucFACAmxhKPs",
    "KQAAABTIeExKyz8HLmY2s+vxVS5C48dh8QAAAIAc4hZ/LI70d5yE94QBNhvxLOqGyzRJB2XdusB3F5ISptJlNx6Y",
    "iUYiuTN1Eo9O9XSMFnlVLH7ox0VjYxSEeGYHpfmTkARNo3rewUhc17si80loWfhDrTbvExhT54yAxIW5E7PRhXMe",
    "X43SgyD4urm2tW1F6qptC90QzgHxKHoJWQAAAIAYa/wwYtbbZ1fECXfTNpv54Coqn9ghsP/AiGBzOMgksxpQGVYH",
    "WAzvByTm+kK3KZGqxko2OicN3550w8zsrd/lGJLYL323E1LFg5gImvPTrGesyZDb3C7dIXLRKO322YZBiUEuYkdB",
    "pK8bv1FBMTvo8yKmZvp1RZaI0Q60b1OjCAAAABRMOCwmJGgzS6CedjaYQu8LMXnuBQ==",
);

/// Bound for one peer command.
const PEER_TIMEOUT: Duration = Duration::from_secs(30);

/// A line the libotr peer printed (other than `ok`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Out {
    Wire(String),
    Plain { enc: bool, text: String },
    Status(String),
    SmpQuestion(Option<String>),
    SmpResult(String),
    Event(String),
    Fingerprint(String),
}

fn b64_text(s: &str) -> Result<String> {
    Ok(String::from_utf8(B64.decode(s)?)?)
}

impl Out {
    fn parse(line: &str) -> Result<Out> {
        let (tag, rest) = line.split_once(' ').unwrap_or((line, ""));
        Ok(match tag {
            "wire" => Out::Wire(b64_text(rest)?),
            "plain" => {
                let (mode, text) = rest
                    .split_once(' ')
                    .ok_or_else(|| anyhow!("bad line {line:?}"))?;
                Out::Plain {
                    enc: mode == "enc",
                    text: b64_text(text)?,
                }
            }
            "status" => Out::Status(rest.to_owned()),
            "smp_question" if rest.is_empty() => Out::SmpQuestion(None),
            "smp_question" => Out::SmpQuestion(Some(b64_text(rest)?)),
            "smp_result" => Out::SmpResult(rest.to_owned()),
            "event" => Out::Event(rest.to_owned()),
            "fingerprint" => Out::Fingerprint(rest.to_owned()),
            _ => bail!("unexpected line from the libotr peer: {line:?}"),
        })
    }
}

/// The libotr peer (tests/peers/otr/peer.c) in a child process.
pub(crate) struct LibOtr {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl LibOtr {
    fn spawn(message_size: usize) -> Result<Self> {
        Self::spawn_as(LIBOTR, STARLING, message_size)
    }

    /// The peer as account `ours` talking to `theirs`, fragmenting at `message_size`.
    pub(crate) fn spawn_as(ours: &str, theirs: &str, message_size: usize) -> Result<Self> {
        let mut child = Command::new(libotr_peer()?)
            .args([ours, theirs, &message_size.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the libotr peer")?;
        let stdin = child.stdin.take().context("peer stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("peer stdout")?);
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut peer = LibOtr {
            child,
            stdin,
            lines,
        };
        let first = peer.line()?;
        ensure!(first == "ready", "libotr peer started with {first:?}");
        Ok(peer)
    }

    fn line(&mut self) -> Result<String> {
        self.lines
            .recv_timeout(PEER_TIMEOUT)
            .map_err(|e| anyhow!("no answer from the libotr peer: {e}"))
    }

    /// Runs one command, returns its output lines.
    pub(crate) fn cmd(&mut self, command: &str) -> Result<Vec<Out>> {
        writeln!(self.stdin, "{command}")?;
        self.stdin.flush()?;
        let mut out = Vec::new();
        loop {
            let line = self.line()?;
            if line == "ok" {
                return Ok(out);
            }
            if let Some(reason) = line.strip_prefix("err ") {
                let name = command.split(' ').next().unwrap_or_default();
                bail!("libotr peer refused `{name}`: {reason}");
            }
            out.push(Out::parse(&line)?);
        }
    }
}

impl Drop for LibOtr {
    fn drop(&mut self) {
        // `quit` is answered with `ok` right before the peer exits, so after the answer the
        // wait is short; a peer that does not answer is killed.
        let quit = writeln!(self.stdin, "quit").is_ok()
            && self.stdin.flush().is_ok()
            && self.line().is_ok_and(|l| l == "ok");
        if !quit && let Err(e) = self.child.kill() {
            eprintln!("libotr peer could not be stopped: {e}");
        }
        if let Err(e) = self.child.wait() {
            eprintln!("libotr peer could not be reaped: {e}");
        }
    }
}

/// Builds the libotr peer once per test process (tests/peers/otr/build.sh).
fn libotr_peer() -> Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
            let out = dir.join("otr-peer");
            // Built under a private name, then renamed: other test processes may run the old one.
            let tmp = dir.join(format!("otr-peer.{}", std::process::id()));
            let status = Command::new("sh")
                .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/otr/build.sh"))
                .arg(&tmp)
                .status()
                .map_err(|e| format!("running build.sh: {e}"))?;
            if !status.success() {
                return Err(format!(
                    "building the libotr peer failed ({status}); run scripts/test, which installs libotr5-dev"
                ));
            }
            std::fs::rename(&tmp, &out).map_err(|e| format!("installing the libotr peer: {e}"))?;
            Ok(out)
        })
        .clone()
        .map_err(|e| anyhow!(e))
}

fn starling_key() -> Result<PrivateKey> {
    Ok(PrivateKey::from_bytes(&B64.decode(STARLING_KEY)?)?)
}

/// Starling's engine and the libotr peer with a wire between them.
struct Pair {
    starling: OtrEngine,
    libotr: LibOtr,
    /// Starling's events other than `Inject`, in order.
    starling_log: Vec<OtrEvent>,
    /// libotr's output other than `wire` and heartbeat events, in order.
    libotr_log: Vec<Out>,
    /// Every wire message carried, both ways.
    wire_lengths: Vec<usize>,
}

enum Wire {
    ToLibotr(String),
    ToStarling(String),
}

impl Pair {
    fn new(config: OtrConfig) -> Result<Pair> {
        let libotr = LibOtr::spawn(config.message_size.min(100_000))?;
        Ok(Pair {
            starling: OtrEngine::new(STARLING, &starling_key()?, config)?,
            libotr,
            starling_log: Vec::new(),
            libotr_log: Vec::new(),
            wire_lengths: Vec::new(),
        })
    }

    fn absorb_starling(&mut self, events: Vec<OtrEvent>, wire: &mut VecDeque<Wire>) -> Result<()> {
        for event in events {
            match event {
                OtrEvent::Inject { peer, body } => {
                    ensure!(peer == LIBOTR, "Starling sent to {peer}");
                    wire.push_back(Wire::ToLibotr(body));
                }
                other => self.starling_log.push(other),
            }
        }
        Ok(())
    }

    fn absorb_libotr(&mut self, out: Vec<Out>, wire: &mut VecDeque<Wire>) {
        for line in out {
            match line {
                Out::Wire(body) => wire.push_back(Wire::ToStarling(body)),
                Out::Event(e) if e.starts_with("LOG_HEARTBEAT") => {}
                other => self.libotr_log.push(other),
            }
        }
    }

    /// Carries wire messages both ways until none is left.
    fn run(&mut self, from_starling: Vec<OtrEvent>, from_libotr: Vec<Out>) -> Result<()> {
        let mut wire = VecDeque::new();
        self.absorb_starling(from_starling, &mut wire)?;
        self.absorb_libotr(from_libotr, &mut wire);
        let mut carried = 0;
        while let Some(message) = wire.pop_front() {
            carried += 1;
            ensure!(carried < 500, "the two sides keep talking: a loop?");
            match message {
                Wire::ToLibotr(body) => {
                    self.wire_lengths.push(body.len());
                    let out = self.libotr.cmd(&format!("recv {}", B64.encode(&body)))?;
                    self.absorb_libotr(out, &mut wire);
                }
                Wire::ToStarling(body) => {
                    self.wire_lengths.push(body.len());
                    let events = self.starling.receive(LIBOTR, &body)?;
                    self.absorb_starling(events, &mut wire)?;
                }
            }
        }
        Ok(())
    }

    fn starling_events(&mut self) -> Vec<OtrEvent> {
        std::mem::take(&mut self.starling_log)
    }

    fn libotr_out(&mut self) -> Vec<Out> {
        std::mem::take(&mut self.libotr_log)
    }

    /// Starling sends `text`; returns what libotr printed.
    fn starling_says(&mut self, text: &str) -> Result<Vec<Out>> {
        let events = self.starling.send(LIBOTR, text)?;
        self.run(events, Vec::new())?;
        Ok(self.libotr_out())
    }

    /// libotr sends `text`; returns Starling's events.
    fn libotr_says(&mut self, text: &str) -> Result<Vec<OtrEvent>> {
        let out = self.libotr.cmd(&format!("send {}", B64.encode(text)))?;
        self.run(Vec::new(), out)?;
        Ok(self.starling_events())
    }

    fn libotr_fingerprint(&mut self, command: &str) -> Result<String> {
        match &self.libotr.cmd(command)?[..] {
            [Out::Fingerprint(f)] => Ok(f.clone()),
            other => bail!("`{command}` printed {other:?}"),
        }
    }

    /// Both sides report the session up; fingerprints agree.
    fn expect_encrypted(&mut self) -> Result<()> {
        assert_eq!(
            self.starling_events(),
            vec![status(OtrStatus::Encrypted)],
            "Starling's events"
        );
        assert_eq!(
            self.libotr_out(),
            vec![Out::Status("encrypted".into())],
            "libotr's output"
        );
        assert_eq!(self.starling.status(LIBOTR)?, OtrStatus::Encrypted);
        let ours = self.starling.fingerprint().to_string();
        assert_eq!(self.libotr_fingerprint("peer_fingerprint")?, ours);
        let theirs = self.libotr_fingerprint("fingerprint")?;
        let seen = self
            .starling
            .peer_fingerprint(LIBOTR)?
            .map(|f| f.to_string());
        assert_eq!(seen.as_deref(), Some(theirs.as_str()));
        Ok(())
    }

    fn start_by_starling(&mut self) -> Result<()> {
        let events = self.starling.start(LIBOTR)?;
        self.run(events, Vec::new())?;
        self.expect_encrypted()
    }

    fn start_by_libotr(&mut self) -> Result<()> {
        let out = self.libotr.cmd("start")?;
        self.run(Vec::new(), out)?;
        self.expect_encrypted()
    }

    /// A message each way, both decrypted.
    fn chat(&mut self, n: usize) -> Result<()> {
        let text = format!("from Starling, {n} ✓");
        assert_eq!(self.starling_says(&text)?, vec![enc(&text)]);
        let text = format!("from libotr, {n} ✓");
        assert_eq!(self.libotr_says(&text)?, vec![plain(&text, true)]);
        Ok(())
    }
}

fn status(status: OtrStatus) -> OtrEvent {
    OtrEvent::Status {
        peer: LIBOTR.into(),
        status,
    }
}

fn plain(text: &str, encrypted: bool) -> OtrEvent {
    OtrEvent::Plaintext {
        peer: LIBOTR.into(),
        text: text.into(),
        encrypted,
    }
}

fn enc(text: &str) -> Out {
    Out::Plain {
        enc: true,
        text: text.into(),
    }
}

#[test]
fn otr_ake_started_by_starling() -> Result<()> {
    let mut pair = Pair::new(OtrConfig::default())?;
    // Before: plain text passes through both ways.
    assert_eq!(
        pair.starling_says("hello in the clear")?,
        vec![Out::Plain {
            enc: false,
            text: "hello in the clear".into()
        }]
    );
    assert_eq!(pair.libotr_says("hi")?, vec![plain("hi", false)]);

    pair.start_by_starling()?;
    // The text is not on the wire.
    let events = pair.starling.send(LIBOTR, "secret words")?;
    match &events[..] {
        [OtrEvent::Inject { body, .. }] => {
            assert!(body.starts_with("?OTR:AAMD"), "{body}");
            assert!(!body.contains("secret"));
        }
        other => bail!("expected one data message, got {other:?}"),
    }
    pair.run(events, Vec::new())?;
    assert_eq!(pair.libotr_out(), vec![enc("secret words")]);
    for n in 0..3 {
        pair.chat(n)?;
    }
    Ok(())
}

#[test]
fn otr_ake_started_by_libotr() -> Result<()> {
    let mut pair = Pair::new(OtrConfig::default())?;
    pair.start_by_libotr()?;
    for n in 0..3 {
        pair.chat(n)?;
    }
    Ok(())
}

/// libotr starts the key exchange on the whitespace tag Starling puts on its first message.
#[test]
fn otr_ake_on_whitespace_tag() -> Result<()> {
    let mut pair = Pair::new(OtrConfig {
        advertise: true,
        ..OtrConfig::default()
    })?;
    let events = pair.starling.send(LIBOTR, "do you speak OTR?")?;
    pair.run(events, Vec::new())?;
    assert_eq!(
        pair.libotr_out(),
        vec![
            Out::Plain {
                enc: false,
                text: "do you speak OTR?".into()
            },
            Out::Status("encrypted".into())
        ]
    );
    assert_eq!(pair.starling_events(), vec![status(OtrStatus::Encrypted)]);
    pair.chat(0)
}

/// The pattern otrr 0.7.4 lost messages on (vendor/otrr/STARLING-PATCH.md): libotr sends two
/// messages, Starling replies, libotr sends again — libotr has switched to a new key pair and
/// restarted its counter at 1, which a single receive counter rejects as a replay.
#[test]
fn otr_receive_counter_per_key_pair() -> Result<()> {
    let mut pair = Pair::new(OtrConfig::default())?;
    pair.start_by_libotr()?;
    let mut n = 0;
    for (from_libotr, from_starling) in [(2, 1), (1, 1), (3, 2), (2, 1), (1, 3), (2, 2)] {
        for _ in 0..from_libotr {
            n += 1;
            let text = format!("libotr {n}");
            assert_eq!(pair.libotr_says(&text)?, vec![plain(&text, true)], "{text}");
        }
        for _ in 0..from_starling {
            n += 1;
            let text = format!("Starling {n}");
            assert_eq!(pair.starling_says(&text)?, vec![enc(&text)], "{text}");
        }
    }
    Ok(())
}

#[test]
fn otr_fragmentation_at_140() -> Result<()> {
    let mut pair = Pair::new(OtrConfig {
        message_size: 140,
        ..OtrConfig::default()
    })?;
    // The key exchange messages are longer than 140: they travel as fragments too.
    pair.start_by_starling()?;
    let long: String = (0..80).map(|i| format!("word{i} ")).collect();

    let events = pair.starling.send(LIBOTR, &long)?;
    ensure!(events.len() > 3, "{} fragments", events.len());
    for event in &events {
        match event {
            OtrEvent::Inject { body, .. } => ensure!(
                body.starts_with("?OTR|") && body.len() <= 140,
                "not a fragment of at most 140: {body}"
            ),
            other => bail!("unexpected {other:?}"),
        }
    }
    pair.run(events, Vec::new())?;
    assert_eq!(pair.libotr_out(), vec![enc(&long)]);

    let out = pair.libotr.cmd(&format!("send {}", B64.encode(&long)))?;
    ensure!(out.len() > 3, "{} fragments from libotr", out.len());
    pair.run(Vec::new(), out)?;
    assert_eq!(pair.starling_events(), vec![plain(&long, true)]);

    let longest = pair.wire_lengths.iter().max().copied().unwrap_or_default();
    ensure!(longest <= 140, "a wire message of {longest} characters");
    pair.chat(0)
}

fn smp_result(verified: bool, pair: &Pair) -> Result<OtrEvent> {
    Ok(OtrEvent::SmpResult {
        peer: LIBOTR.into(),
        verified,
        fingerprint: pair.starling.peer_fingerprint(LIBOTR)?,
    })
}

#[test]
fn otr_smp_started_by_starling() -> Result<()> {
    let mut pair = Pair::new(OtrConfig::default())?;
    pair.start_by_starling()?;

    // Right secret, with a question.
    let events = pair
        .starling
        .start_smp(LIBOTR, Some("Where did we meet?"), "at the café")?;
    pair.run(events, Vec::new())?;
    assert_eq!(
        pair.libotr_out(),
        vec![Out::SmpQuestion(Some("Where did we meet?".into()))]
    );
    let out = pair
        .libotr
        .cmd(&format!("smp_answer {}", B64.encode("at the café")))?;
    pair.run(Vec::new(), out)?;
    assert_eq!(pair.libotr_out(), vec![Out::SmpResult("success".into())]);
    assert_eq!(pair.starling_events(), vec![smp_result(true, &pair)?]);
    pair.chat(0)?;

    // Wrong secret, no question.
    let events = pair.starling.start_smp(LIBOTR, None, "blue")?;
    pair.run(events, Vec::new())?;
    assert_eq!(pair.libotr_out(), vec![Out::SmpQuestion(None)]);
    let out = pair
        .libotr
        .cmd(&format!("smp_answer {}", B64.encode("green")))?;
    pair.run(Vec::new(), out)?;
    assert_eq!(pair.libotr_out(), vec![Out::SmpResult("failure".into())]);
    assert_eq!(pair.starling_events(), vec![smp_result(false, &pair)?]);
    pair.chat(1)
}

#[test]
fn otr_smp_started_by_libotr() -> Result<()> {
    let mut pair = Pair::new(OtrConfig::default())?;
    pair.start_by_libotr()?;

    // Right secret, with a question.
    let out = pair.libotr.cmd(&format!(
        "smp {} {}",
        B64.encode("Our cat's name?"),
        B64.encode("Mimi")
    ))?;
    pair.run(Vec::new(), out)?;
    assert_eq!(
        pair.starling_events(),
        vec![OtrEvent::SmpQuestion {
            peer: LIBOTR.into(),
            question: Some("Our cat's name?".into())
        }]
    );
    let events = pair.starling.answer_smp(LIBOTR, "Mimi")?;
    pair.run(events, Vec::new())?;
    assert_eq!(pair.starling_events(), vec![smp_result(true, &pair)?]);
    assert_eq!(pair.libotr_out(), vec![Out::SmpResult("success".into())]);
    pair.chat(0)?;

    // Wrong secret, no question.
    let out = pair.libotr.cmd(&format!("smp - {}", B64.encode("Mimi")))?;
    pair.run(Vec::new(), out)?;
    assert_eq!(
        pair.starling_events(),
        vec![OtrEvent::SmpQuestion {
            peer: LIBOTR.into(),
            question: None
        }]
    );
    let events = pair.starling.answer_smp(LIBOTR, "Felix")?;
    pair.run(events, Vec::new())?;
    assert_eq!(pair.starling_events(), vec![smp_result(false, &pair)?]);
    assert_eq!(pair.libotr_out(), vec![Out::SmpResult("failure".into())]);
    pair.chat(1)
}

#[test]
fn otr_end_session() -> Result<()> {
    let mut pair = Pair::new(OtrConfig::default())?;

    // Starling ends: libotr is told and refuses to send until it ends too.
    pair.start_by_starling()?;
    pair.chat(0)?;
    let events = pair.starling.end(LIBOTR)?;
    pair.run(events, Vec::new())?;
    assert_eq!(pair.starling_events(), vec![status(OtrStatus::Plaintext)]);
    assert_eq!(pair.libotr_out(), vec![Out::Status("finished".into())]);
    assert_eq!(
        pair.libotr
            .cmd(&format!("send {}", B64.encode("still there?")))?,
        vec![Out::Event("CONNECTION_ENDED".into())]
    );
    let out = pair.libotr.cmd("end")?;
    pair.run(Vec::new(), out)?;
    assert_eq!(pair.libotr_out(), vec![Out::Status("plaintext".into())]);
    assert_eq!(
        pair.libotr_says("plain again")?,
        vec![plain("plain again", false)]
    );

    // libotr ends: Starling is told and refuses to send until it ends too.
    pair.start_by_libotr()?;
    pair.chat(1)?;
    let out = pair.libotr.cmd("end")?;
    pair.run(Vec::new(), out)?;
    assert_eq!(pair.libotr_out(), vec![Out::Status("plaintext".into())]);
    assert_eq!(pair.starling_events(), vec![status(OtrStatus::Finished)]);
    assert_eq!(pair.starling.status(LIBOTR)?, OtrStatus::Finished);
    assert!(matches!(
        pair.starling.send(LIBOTR, "still there?"),
        Err(OtrError::Finished)
    ));
    assert_eq!(
        pair.starling.end(LIBOTR)?,
        vec![status(OtrStatus::Plaintext)]
    );
    assert_eq!(
        pair.starling_says("plain again")?,
        vec![Out::Plain {
            enc: false,
            text: "plain again".into()
        }]
    );

    // And a new session after all that.
    pair.start_by_starling()?;
    pair.chat(2)
}
