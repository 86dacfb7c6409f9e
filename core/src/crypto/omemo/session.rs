//! Sessions with one remote device: X3DH to start them (actively from a bundle, passively
//! from a key exchange message), then the Double Ratchet. The initiator keeps wrapping its
//! messages in key exchanges until the first answer arrives, as libsignal and python-omemo do,
//! so a peer that missed the first message can still start the session from a later one.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::keys::{Bundle, IdentityKey, IdentityKeyPair, KeyPair};
use super::ratchet::Ratchet;
use super::wire::KeyExchange;
use super::{Error, Namespace, Result, hkdf};

/// What the initiator repeats in every message until the responder answers.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct PendingKeyExchange {
    pk_id: u32,
    spk_id: u32,
    ek: [u8; 32],
}

/// An encrypted `<key>`: the bytes and whether they are a key exchange (`prekey='true'` /
/// `kex='true'` on the element).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encrypted {
    /// True for a key exchange message.
    pub kex: bool,
    /// The element's content, before base64.
    pub data: Vec<u8>,
}

/// A Double Ratchet session with one device of one namespace.
#[derive(Clone, Serialize, Deserialize)]
pub struct Session {
    ns: Namespace,
    /// Did we start it?
    initiator: bool,
    our_identity: Vec<u8>,
    their_identity: IdentityKey,
    /// The ephemeral key of the key exchange that started it (for recognising repeats).
    base_key: [u8; 32],
    pending: Option<PendingKeyExchange>,
    ratchet: Ratchet,
}

/// The X3DH shared secret: HKDF over `0xFF * 32 ‖ DH1 ‖ DH2 ‖ DH3 ‖ DH4`.
fn x3dh_secret(ns: Namespace, dhs: [&[u8; 32]; 4]) -> Zeroizing<[u8; 32]> {
    let mut input = Zeroizing::new(Vec::with_capacity(32 * 5));
    input.extend_from_slice(&[0xFF; 32]);
    for dh in dhs {
        input.extend_from_slice(dh);
    }
    hkdf::<32>(None, &input, ns.x3dh_info())
}

impl Session {
    /// Starts a session from a peer's bundle (active X3DH with a random one-time pre-key).
    /// The bundle was verified when it was decoded.
    pub fn initiate(ours: &IdentityKeyPair, bundle: &Bundle) -> Result<Self> {
        let ns = bundle.ns;
        let i = rand::random_range(0..bundle.prekeys.len().max(1));
        let &(pk_id, pk) = bundle.prekeys.get(i).ok_or(Error::NoPreKeys)?;
        let ek = KeyPair::generate();
        let their_ik = bundle.identity.x25519()?;
        let shared = x3dh_secret(
            ns,
            [
                &*ours.dh(&bundle.spk)?,
                &*ek.dh(&their_ik)?,
                &*ek.dh(&bundle.spk)?,
                &*ek.dh(&pk)?,
            ],
        );
        Ok(Session {
            ns,
            initiator: true,
            our_identity: ours.public(ns).encode(),
            their_identity: bundle.identity,
            base_key: *ek.public(),
            pending: Some(PendingKeyExchange {
                pk_id,
                spk_id: bundle.spk_id,
                ek: *ek.public(),
            }),
            ratchet: Ratchet::initiator(ns, &shared, &bundle.spk)?,
        })
    }

    /// Answers a key exchange (passive X3DH) and decrypts the message inside. `spk` and `pk`
    /// are our key pairs the exchange names ([`Incoming::spk_id`], [`Incoming::pk_id`]); the
    /// caller deletes the one-time pre-key once the new session is stored.
    pub fn respond(
        ours: &IdentityKeyPair,
        incoming: &Incoming,
        spk: &KeyPair,
        pk: &KeyPair,
    ) -> Result<(Self, Vec<u8>)> {
        let ns = incoming.ns;
        let kex = &incoming.kex;
        let their_identity = IdentityKey::decode(ns, &kex.ik)?;
        let shared = x3dh_secret(
            ns,
            [
                &*spk.dh(&their_identity.x25519()?)?,
                &*ours.dh(&kex.ek)?,
                &*spk.dh(&kex.ek)?,
                &*pk.dh(&kex.ek)?,
            ],
        );
        let mut session = Session {
            ns,
            initiator: false,
            our_identity: ours.public(ns).encode(),
            their_identity,
            base_key: kex.ek,
            pending: None,
            ratchet: Ratchet::responder(ns, &shared, spk),
        };
        let plaintext = session.decrypt(&kex.message)?;
        Ok((session, plaintext))
    }

    /// The namespace.
    pub fn namespace(&self) -> Namespace {
        self.ns
    }

    /// The peer's identity key.
    pub fn their_identity(&self) -> &IdentityKey {
        &self.their_identity
    }

    /// Whether the peer has answered (our messages no longer carry the key exchange).
    pub fn confirmed(&self) -> bool {
        self.pending.is_none()
    }

    /// Was this session started by `incoming`? (The initiator repeats its key exchange until
    /// we answer; those repeats belong to the session we already have.)
    pub fn started_by(&self, incoming: &Incoming) -> bool {
        !self.initiator
            && incoming.kex.ek == self.base_key
            && incoming.kex.ik == self.their_identity.encode()
    }

    /// Encrypts key material (or any short plaintext) for the peer.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<Encrypted> {
        let message = self
            .ratchet
            .encrypt(&self.associated_data(true), plaintext)?;
        Ok(match &self.pending {
            None => Encrypted {
                kex: false,
                data: message,
            },
            Some(p) => Encrypted {
                kex: true,
                data: KeyExchange {
                    pk_id: p.pk_id,
                    spk_id: p.spk_id,
                    ik: self.our_identity.clone(),
                    ek: p.ek,
                    message,
                }
                .encode(self.ns)?,
            },
        })
    }

    /// Decrypts a normal (non key exchange) message. A failure leaves the session unchanged.
    pub fn decrypt(&mut self, data: &[u8]) -> Result<Vec<u8>> {
        let plaintext = self.ratchet.decrypt(&self.associated_data(false), data)?;
        self.pending = None;
        Ok(plaintext)
    }

    /// Decrypts the message inside a key exchange that [`Session::started_by`] matched.
    pub fn decrypt_repeat(&mut self, incoming: &Incoming) -> Result<Vec<u8>> {
        self.decrypt(&incoming.kex.message)
    }

    /// The associated data before each MAC input. OMEMO 2 (like the Double Ratchet
    /// specification) uses `initiator ‖ responder`; libsignal, and so legacy OMEMO, uses
    /// `sender ‖ receiver`.
    fn associated_data(&self, sending: bool) -> Vec<u8> {
        let their = self.their_identity.encode();
        let ours = &self.our_identity;
        let ours_first = match self.ns {
            Namespace::Omemo2 => self.initiator,
            Namespace::Legacy => sending,
        };
        if ours_first {
            [ours.as_slice(), &their].concat()
        } else {
            [their.as_slice(), ours].concat()
        }
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("ns", &self.ns)
            .field("initiator", &self.initiator)
            .field("their_identity", &self.their_identity)
            .field("confirmed", &self.confirmed())
            .finish_non_exhaustive()
    }
}

/// A key exchange message received, parsed but not yet answered: the caller looks up the
/// pre-keys it names, or finds the session it repeats.
#[derive(Clone, Debug)]
pub struct Incoming {
    ns: Namespace,
    kex: KeyExchange,
}

impl Incoming {
    /// Parses a `<key prekey='true'>` / `<key kex='true'>` element's bytes.
    pub fn parse(ns: Namespace, data: &[u8]) -> Result<Self> {
        let kex = KeyExchange::parse(ns, data)?;
        IdentityKey::decode(ns, &kex.ik)?;
        Ok(Incoming { ns, kex })
    }

    /// The signed pre-key it was made with.
    pub fn spk_id(&self) -> u32 {
        self.kex.spk_id
    }

    /// The one-time pre-key it used.
    pub fn pk_id(&self) -> u32 {
        self.kex.pk_id
    }

    /// The sender's identity key.
    pub fn identity(&self) -> Result<IdentityKey> {
        IdentityKey::decode(self.ns, &self.kex.ik)
    }
}

#[cfg(test)]
mod tests {
    use super::super::keys::{SignedPreKey, encode_public};
    use super::*;

    /// A device with one signed pre-key and a few one-time pre-keys, as a test peer.
    struct Device {
        identity: IdentityKeyPair,
        spk: SignedPreKey,
        prekeys: Vec<(u32, KeyPair)>,
    }

    impl Device {
        fn new() -> Self {
            let identity = IdentityKeyPair::generate();
            let spk = SignedPreKey::generate(&identity, 1, 0);
            let prekeys = (1..=3).map(|id| (id, KeyPair::generate())).collect();
            Device {
                identity,
                spk,
                prekeys,
            }
        }

        fn bundle(&self, ns: Namespace) -> Bundle {
            let pks: Vec<_> = self
                .prekeys
                .iter()
                .map(|(id, k)| (*id, encode_public(ns, k.public())))
                .collect();
            Bundle::decode(
                ns,
                &self.identity.public(ns).encode(),
                self.spk.id,
                &encode_public(ns, self.spk.pair.public()),
                self.spk.signature(ns).expect("signed"),
                pks.iter().map(|(id, k)| (*id, k.as_slice())),
            )
            .expect("valid bundle")
        }

        fn respond(&mut self, ns: Namespace, data: &[u8]) -> Result<(Session, Vec<u8>)> {
            let incoming = Incoming::parse(ns, data)?;
            let i = self
                .prekeys
                .iter()
                .position(|(id, _)| *id == incoming.pk_id())
                .ok_or(Error::UnknownPreKey(incoming.pk_id()))?;
            let result = Session::respond(
                &self.identity,
                &incoming,
                &self.spk.pair,
                &self.prekeys[i].1,
            )?;
            self.prekeys.remove(i);
            Ok(result)
        }
    }

    fn pair(ns: Namespace) -> (Session, Session) {
        let alice = Device::new();
        let mut bob = Device::new();
        let mut a = Session::initiate(&alice.identity, &bob.bundle(ns)).expect("initiate");
        let first = a.encrypt(b"first").expect("encrypt");
        assert!(first.kex);
        let (b, plain) = bob.respond(ns, &first.data).expect("respond");
        assert_eq!(plain, b"first");
        (a, b)
    }

    #[test]
    fn conversation_in_both_directions() {
        for ns in Namespace::ALL {
            let (mut a, mut b) = pair(ns);
            // Until Bob answers, Alice repeats the key exchange, and Bob recognises it.
            let again = a.encrypt(b"second").expect("encrypt");
            assert!(again.kex);
            let incoming = Incoming::parse(ns, &again.data).expect("parses");
            assert!(b.started_by(&incoming));
            assert_eq!(b.decrypt_repeat(&incoming).expect("decrypts"), b"second");
            let reply = b.encrypt(b"reply").expect("encrypt");
            assert!(!reply.kex);
            assert_eq!(a.decrypt(&reply.data).expect("decrypts"), b"reply");
            assert!(a.confirmed());
            for i in 0..5u8 {
                let m = a.encrypt(&[i]).expect("encrypt");
                assert!(!m.kex);
                assert_eq!(b.decrypt(&m.data).expect("decrypts"), [i]);
                let m = b.encrypt(&[i, i]).expect("encrypt");
                assert_eq!(a.decrypt(&m.data).expect("decrypts"), [i, i]);
            }
        }
    }

    #[test]
    fn out_of_order_across_ratchet_steps() {
        for ns in Namespace::ALL {
            let (mut a, mut b) = pair(ns);
            let r = b.encrypt(b"r").expect("encrypt");
            a.decrypt(&r.data).expect("decrypts");
            let m1 = a.encrypt(b"1").expect("encrypt");
            let m2 = a.encrypt(b"2").expect("encrypt");
            assert_eq!(b.decrypt(&m2.data).expect("decrypts"), b"2");
            let r2 = b.encrypt(b"r2").expect("encrypt");
            a.decrypt(&r2.data).expect("decrypts");
            let m3 = a.encrypt(b"3").expect("encrypt");
            assert_eq!(b.decrypt(&m3.data).expect("decrypts"), b"3");
            // m1 is from Alice's previous chain: its key was kept.
            assert_eq!(b.decrypt(&m1.data).expect("decrypts"), b"1");
            assert!(b.decrypt(&m1.data).is_err(), "replay of a skipped message");
        }
    }

    #[test]
    fn hostile_messages_fail_and_change_nothing() {
        for ns in Namespace::ALL {
            let (mut a, mut b) = pair(ns);
            let r = b.encrypt(b"r").expect("encrypt");
            a.decrypt(&r.data).expect("decrypts");
            let m = a.encrypt(b"x").expect("encrypt");
            // Every single-bit flip is refused (MAC or framing), and the session still works.
            for i in 0..m.data.len() {
                let mut t = m.data.clone();
                t[i] ^= 0x01;
                assert!(b.decrypt(&t).is_err(), "{ns:?}: flip at byte {i} accepted");
            }
            assert_eq!(b.decrypt(&m.data).expect("decrypts"), b"x");
            // Replay.
            assert!(b.decrypt(&m.data).is_err());
            // Messages lost in between are skipped over.
            let mut far = a.clone();
            for _ in 0..3 {
                far.encrypt(b"-").expect("encrypt");
            }
            let ok = far.encrypt(b"ok").expect("encrypt");
            assert_eq!(b.clone().decrypt(&ok.data).expect("decrypts"), b"ok");
        }
    }

    #[test]
    fn skip_limit() {
        let ns = Namespace::Omemo2;
        let (mut a, mut b) = pair(ns);
        for _ in 0..=super::super::ratchet::MAX_SKIP {
            a.encrypt(b"lost").expect("encrypt");
        }
        let m = a.encrypt(b"late").expect("encrypt");
        assert!(matches!(
            b.decrypt_any(ns, &m),
            Err(Error::TooManySkipped(..))
        ));
    }

    #[test]
    fn key_exchange_to_an_unknown_device_fails_cleanly() {
        for ns in Namespace::ALL {
            let alice = Device::new();
            let bob = Device::new();
            let mut carol = Device::new();
            let mut a = Session::initiate(&alice.identity, &bob.bundle(ns)).expect("initiate");
            let m = a.encrypt(b"for bob").expect("encrypt");
            // Carol has pre-keys with the same ids but other keys: the MAC fails.
            assert_eq!(carol.respond(ns, &m.data).err(), Some(Error::BadMac));
            assert_eq!(
                carol.prekeys.len(),
                3,
                "pre-key kept after a failed exchange"
            );
        }
    }

    impl Session {
        fn decrypt_any(&mut self, ns: Namespace, e: &Encrypted) -> Result<Vec<u8>> {
            if e.kex {
                let incoming = Incoming::parse(ns, &e.data)?;
                self.decrypt_repeat(&incoming)
            } else {
                self.decrypt(&e.data)
            }
        }
    }
}
