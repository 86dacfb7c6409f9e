//! OMEMO benchmark on the crypto core alone (no XML, no store), in both namespaces:
//! session establishment (decode and verify a published bundle -> X3DH initiate -> first
//! message -> respond) per second; encrypting one message to 20 devices (payload seal + 20 key
//! encryptions over established, confirmed sessions) and decrypting one (key decrypt + payload
//! open), in µs. Figures are printed, never asserted. `cargo bench -p starling-core --bench
//! omemo` runs the full size; under `cargo test --all-targets` it runs a small smoke size.

use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use starling_core::crypto::omemo::device::PublishedBundle;
use starling_core::crypto::omemo::keys::{IdentityKeyPair, KeyPair, SignedPreKey, encode_public};
use starling_core::crypto::omemo::payload::{self, Sealed};
use starling_core::crypto::omemo::session::{Encrypted, Incoming, Session};
use starling_core::crypto::omemo::{Namespace, device};

/// Recipient devices of one message (a contact's and our own other devices, or a small room).
const DEVICES: usize = 20;
/// About the size of an OMEMO 2 envelope holding a one-line message.
const PLAINTEXT: [u8; 256] = [b'x'; 256];

/// A device as the crypto core sees it: identity, signed pre-key, one-time pre-keys.
struct Peer {
    identity: IdentityKeyPair,
    spk: SignedPreKey,
    prekeys: Vec<(u32, KeyPair)>,
}

impl Peer {
    fn new() -> Self {
        let identity = IdentityKeyPair::generate();
        let spk = SignedPreKey::generate(&identity, 1, 0);
        let prekeys = (1..=device::PRE_KEYS as u32)
            .map(|id| (id, KeyPair::generate()))
            .collect();
        Peer {
            identity,
            spk,
            prekeys,
        }
    }

    /// The bundle as it would arrive from PEP (bytes after base64).
    fn published(&self, ns: Namespace) -> anyhow::Result<PublishedBundle> {
        Ok(PublishedBundle {
            ik: self.identity.public(ns).encode(),
            spk_id: self.spk.id,
            spk: encode_public(ns, self.spk.pair.public()),
            spk_sig: self
                .spk
                .signature(ns)
                .context("signed pre-key without a signature")?
                .to_vec(),
            prekeys: self
                .prekeys
                .iter()
                .map(|(id, k)| (*id, encode_public(ns, k.public())))
                .collect(),
        })
    }

    /// Answers a key exchange (the pre-key stays: this is a benchmark, not a device).
    fn respond(&self, ns: Namespace, first: &Encrypted) -> anyhow::Result<(Session, Vec<u8>)> {
        let incoming = Incoming::parse(ns, &first.data)?;
        let (_, pk) = self
            .prekeys
            .iter()
            .find(|(id, _)| *id == incoming.pk_id())
            .context("unknown pre-key")?;
        Ok(Session::respond(
            &self.identity,
            &incoming,
            &self.spk.pair,
            pk,
        )?)
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// (median, 99th percentile) in µs.
fn spread(mut times: Vec<Duration>) -> (f64, f64) {
    times.sort();
    let at = |q: f64| micros(times[((times.len() - 1) as f64 * q) as usize]);
    (at(0.5), at(0.99))
}

fn establishment(ns: Namespace, n: usize) -> anyhow::Result<()> {
    let alice = Peer::new();
    let bob = Peer::new();
    let published = bob.published(ns)?;
    let key_material = vec![7u8; ns.key_material_len()];
    let mut times = Vec::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        let bundle = published.decode(ns)?;
        let mut a = Session::initiate(&alice.identity, &bundle)?;
        let first = a.encrypt(&key_material)?;
        let (_b, plain) = bob.respond(ns, &first)?;
        times.push(t.elapsed());
        ensure!(first.kex && plain == key_material, "session did not start");
    }
    let secs = start.elapsed().as_secs_f64();
    let (median, p99) = spread(times);
    println!(
        "{ns}: session establishment (bundle -> initiate -> first message -> respond): \
         {n} in {secs:.3} s = {:.0} sessions/s (median {median:.0} µs, p99 {p99:.0} µs)",
        n as f64 / secs
    );
    Ok(())
}

/// Alice with confirmed sessions to `DEVICES` devices (each answered once), and the first
/// recipient's side of its session.
fn established(ns: Namespace) -> anyhow::Result<(Vec<Session>, Session)> {
    let alice = Peer::new();
    let mut ours = Vec::with_capacity(DEVICES);
    let mut first_theirs = None;
    for _ in 0..DEVICES {
        let peer = Peer::new();
        let mut a = Session::initiate(&alice.identity, &peer.published(ns)?.decode(ns)?)?;
        let (mut b, _) = peer.respond(ns, &a.encrypt(b"hello")?)?;
        a.decrypt(&b.encrypt(b"hi")?.data)?;
        ensure!(a.confirmed(), "session not confirmed");
        first_theirs.get_or_insert(b);
        ours.push(a);
    }
    Ok((ours, first_theirs.context("no devices")?))
}

fn messages(ns: Namespace, n: usize) -> anyhow::Result<()> {
    let (mut sessions, mut recipient) = established(ns)?;
    let mut sent: Vec<(Sealed, Encrypted)> = Vec::with_capacity(n);
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let sealed = payload::seal(ns, &PLAINTEXT);
        let mut keys = Vec::with_capacity(DEVICES);
        for s in &mut sessions {
            keys.push(s.encrypt(&sealed.key_material)?);
        }
        times.push(t.elapsed());
        ensure!(
            keys.iter().all(|k| !k.kex),
            "established sessions send no key exchange"
        );
        let first = keys.swap_remove(0);
        sent.push((sealed, first));
    }
    let (median, p99) = spread(times);
    println!(
        "{ns}: encrypt one {}-byte message to {DEVICES} devices: median {median:.1} µs, \
         p99 {p99:.1} µs ({n} messages)",
        PLAINTEXT.len()
    );

    let mut times = Vec::with_capacity(n);
    for (sealed, key) in &sent {
        let t = Instant::now();
        let key_material = recipient.decrypt(&key.data)?;
        let body = payload::open(
            ns,
            &key_material,
            &sealed.payload,
            sealed.iv.as_ref().map(|iv| &iv[..]),
        )?;
        times.push(t.elapsed());
        ensure!(body == PLAINTEXT, "decrypted to something else");
    }
    let (median, p99) = spread(times);
    println!("{ns}: decrypt one message (key + payload): median {median:.1} µs, p99 {p99:.1} µs");
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let full = std::env::args().any(|a| a == "--bench");
    let (sessions, msgs) = if full { (2_000, 5_000) } else { (20, 50) };
    for ns in [Namespace::Legacy, Namespace::Omemo2] {
        establishment(ns, sessions)?;
        messages(ns, msgs)?;
    }
    Ok(())
}
