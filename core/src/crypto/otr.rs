//! OTR (Off-the-Record Messaging) protocol version 3 for one account: a sans-I/O engine over
//! the `otrr` crate (vendored with fixes and additions, see vendor/otrr/STARLING-PATCH.md),
//! interoperable with libotr 4.1 (Pidgin, the reference implementation).
//!
//! The engine does no I/O. The caller passes every message body from a contact to
//! [`OtrEngine::receive`] and puts every [`OtrEvent::Inject`] body on the wire to that
//! contact, in order. Outgoing text goes through [`OtrEngine::send`], which encrypts it when
//! a private conversation is up (and passes it through unencrypted otherwise: check
//! [`OtrEngine::status`] first when that matters).
//!
//! OTRv4 stays off: otrr's query message and whitespace tag offer only the highest allowed
//! version, so with v4 allowed, libotr (v2/v3 only) would never start a session with us.
//!
//! Threading: otrr is single-threaded (`Rc` inside), so the engine keeps its
//! `otrr::session::Account` on a dedicated thread, and [`OtrEngine`] is a `Send + Sync`
//! handle that sends commands and waits for the reply. A call blocks for the cryptography of
//! that step (AKE and SMP steps do 1536-bit modular exponentiations: milliseconds in release
//! builds, up to seconds in debug builds); async callers should use `spawn_blocking`.
//!
//! Keys: the long-term DSA key pair is [`PrivateKey`]; its bytes ([`PrivateKey::to_bytes`])
//! belong in the OS keyring. The Ed448 keys otrr insists on (for v4) are made fresh per
//! engine and never used. Our instance tag is fresh per engine too, as otrr makes it.

use std::collections::HashMap;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;

use otrr::crypto::{dsa, ed448, otr as otr_crypto};
use otrr::instancetag::{INSTANCE_ZERO, InstanceTag};
use otrr::session::Account;
use otrr::{AKEError, OTRError, Policy, ProtocolStatus, UserMessage};
use zeroize::Zeroizing;

/// Errors of the engine's commands. Trouble with incoming messages is reported as
/// [`OtrEvent::Error`] instead.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the OTR private key is malformed or inconsistent")]
    InvalidKey,
    #[error("there is no encrypted OTR session with this contact")]
    NotEncrypted,
    #[error("the contact has ended the private conversation: end it here too, or start a new one")]
    Finished,
    #[error("an identity verification (SMP) is already in progress")]
    SmpInProgress,
    #[error("no identity verification question is waiting for an answer")]
    NoSmpQuestion,
    #[error("OTR refused the request: {0}")]
    Rejected(&'static str),
    #[error("internal error in the OTR library")]
    Internal,
    #[error("the OTR engine has stopped")]
    Stopped,
    #[error("cannot start the OTR engine thread")]
    Spawn(#[source] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why an incoming message produced no text (see [`OtrEvent::Error`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OtrProblem {
    /// The contact's OTR software sent an OTR error message; its text as sent.
    #[error("the contact's OTR software reports: {0}")]
    PeerReported(String),
    /// An encrypted message could not be read (no session here, lost keys, replay). The
    /// contact's software was told with an OTR error message.
    #[error("an encrypted message from the contact could not be read")]
    Unreadable,
    /// The key exchange failed (bad signature, bad key).
    #[error("setting up the private conversation failed")]
    AuthenticationFailed,
    /// The message was malformed or broke the protocol, and was dropped.
    #[error("malformed OTR message: {0}")]
    Malformed(&'static str),
    /// An OTR protocol version we do not speak.
    #[error("unsupported OTR protocol version {0}")]
    UnsupportedVersion(u16),
    /// The OTR library failed on this message; the engine carries on.
    #[error("internal error in the OTR library")]
    Internal,
}

/// The state of the private conversation with a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OtrStatus {
    /// No private conversation: messages go unencrypted.
    Plaintext,
    /// Private conversation up: messages are encrypted.
    Encrypted,
    /// The contact ended the private conversation. Sending is refused until the user ends it
    /// here too ([`OtrEngine::end`]) or starts a new one ([`OtrEngine::start`]).
    Finished,
}

/// What the caller must do or show after a command or an incoming message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OtrEvent {
    /// Put `body` on the wire to `peer`, in the order of the events.
    Inject { peer: String, body: String },
    /// Text for the user. `encrypted: false` means it came unencrypted, whatever the status.
    Plaintext {
        peer: String,
        text: String,
        encrypted: bool,
    },
    /// The private conversation with `peer` changed state.
    Status { peer: String, status: OtrStatus },
    /// The contact asks us to prove our identity (SMP): answer with
    /// [`OtrEngine::answer_smp`] or decline with [`OtrEngine::abort_smp`].
    SmpQuestion {
        peer: String,
        question: Option<String>,
    },
    /// The identity verification ended: `verified` if both sides had the same secret.
    /// `fingerprint` is the contact's key that was (or was not) verified.
    SmpResult {
        peer: String,
        verified: bool,
        fingerprint: Option<Fingerprint>,
    },
    /// An incoming message produced no text.
    Error { peer: String, reason: OtrProblem },
}

/// The fingerprint of an OTR long-term (DSA) public key: SHA-1 of the key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 20]);

impl Fingerprint {
    pub fn from_bytes(bytes: [u8; 20]) -> Self {
        Fingerprint(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }
}

/// As libotr and Pidgin show it: five groups of eight upper-case hex digits.
impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, group) in self.0.chunks(4).enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            for byte in group {
                write!(f, "{byte:02X}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// Version byte in front of the DSA key pair in [`PrivateKey::to_bytes`].
const KEY_FORMAT_V1: u8 = 1;

/// Our long-term OTR key: a DSA key pair (1024-bit p, 160-bit q, as libotr makes them).
pub struct PrivateKey {
    /// `KEY_FORMAT_V1` then otrr's encoding: the MPIs p, q, g, y, x.
    bytes: Zeroizing<Vec<u8>>,
    fingerprint: Fingerprint,
}

impl PrivateKey {
    /// A new key pair. Takes a moment (seconds in debug builds).
    pub fn generate() -> Self {
        let keypair = dsa::Keypair::generate();
        let mut bytes = Zeroizing::new(Vec::new());
        bytes.push(KEY_FORMAT_V1);
        bytes.extend_from_slice(&Zeroizing::new(keypair.encode()));
        PrivateKey {
            bytes,
            fingerprint: Fingerprint(otr_crypto::fingerprint(&keypair.public_key())),
        }
    }

    /// Restores a key exported with [`PrivateKey::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let keypair = decode_keypair(bytes)?;
        Ok(PrivateKey {
            bytes: Zeroizing::new(bytes.to_vec()),
            fingerprint: Fingerprint(otr_crypto::fingerprint(&keypair.public_key())),
        })
    }

    /// The key for safe keeping (the OS keyring): it includes the private key.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        self.bytes.clone()
    }

    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({})", self.fingerprint)
    }
}

fn decode_keypair(bytes: &[u8]) -> Result<dsa::Keypair> {
    match bytes.split_first() {
        Some((&KEY_FORMAT_V1, rest)) => dsa::Keypair::decode(rest).map_err(|_| Error::InvalidKey),
        _ => Err(Error::InvalidKey),
    }
}

/// The smallest `message_size` honoured: an OTRv3 fragment has 36 bytes of overhead.
const MIN_MESSAGE_SIZE: usize = 64;

/// How the engine talks to the transport.
#[derive(Debug, Clone)]
pub struct OtrConfig {
    /// The largest message body the transport carries; longer OTR messages are split into
    /// OTRv3 fragments of at most this many bytes (at least 64). `usize::MAX`: never split.
    pub message_size: usize,
    /// Tell contacts we speak OTR with a whitespace tag on the first unencrypted message
    /// (OTR's `SEND_WHITESPACE_TAG`). Their software may then start a session by itself.
    pub advertise: bool,
}

impl Default for OtrConfig {
    fn default() -> Self {
        OtrConfig {
            message_size: usize::MAX,
            advertise: false,
        }
    }
}

type Reply<T> = mpsc::Sender<Result<T>>;

/// Commands to the engine thread, answered on `reply`.
enum Command {
    /// [`Worker::receive`]
    Receive {
        peer: String,
        body: String,
        reply: Reply<Vec<OtrEvent>>,
    },
    /// [`Worker::send`]
    Send {
        peer: String,
        text: String,
        reply: Reply<Vec<OtrEvent>>,
    },
    /// [`Worker::start`]
    Start {
        peer: String,
        reply: Reply<Vec<OtrEvent>>,
    },
    /// [`Worker::end`]
    End {
        peer: String,
        reply: Reply<Vec<OtrEvent>>,
    },
    /// [`Worker::start_smp`]
    StartSmp {
        peer: String,
        question: Option<String>,
        secret: Zeroizing<String>,
        reply: Reply<Vec<OtrEvent>>,
    },
    /// [`Worker::answer_smp`]
    AnswerSmp {
        peer: String,
        secret: Zeroizing<String>,
        reply: Reply<Vec<OtrEvent>>,
    },
    /// [`Worker::abort_smp`]
    AbortSmp {
        peer: String,
        reply: Reply<Vec<OtrEvent>>,
    },
    /// [`Worker::status`]
    Status {
        peer: String,
        reply: Reply<OtrStatus>,
    },
    /// [`Worker::peer_fingerprint`]
    PeerFingerprint {
        peer: String,
        reply: Reply<Option<Fingerprint>>,
    },
}

/// The OTR engine of one account: a `Send + Sync` handle to the thread that runs otrr.
/// Dropping it stops the thread and forgets every session.
pub struct OtrEngine {
    commands: mpsc::Sender<Command>,
    ours: Fingerprint,
}

impl fmt::Debug for OtrEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtrEngine")
            .field("ours", &self.ours)
            .finish()
    }
}

impl OtrEngine {
    /// Starts the engine for our account `our_jid` with our long-term `key`.
    pub fn new(our_jid: &str, key: &PrivateKey, config: OtrConfig) -> Result<Self> {
        let (commands, inbox) = mpsc::channel();
        let (started, startup) = mpsc::channel();
        let jid = our_jid.to_owned();
        let ours = key.fingerprint();
        let key = key.to_bytes();
        thread::Builder::new()
            .name("starling-otr".into())
            .spawn(move || match Worker::new(jid, &key, config) {
                Ok(worker) => {
                    if started.send(Ok(())).is_ok() {
                        worker.run(inbox);
                    }
                }
                Err(e) => {
                    if started.send(Err(e)).is_err() {
                        tracing::debug!("OTR engine creation abandoned by its caller");
                    }
                }
            })
            .map_err(Error::Spawn)?;
        startup.recv().map_err(|_| Error::Internal)??;
        Ok(OtrEngine { commands, ours })
    }

    /// Our fingerprint, as the contact's software shows it.
    pub fn fingerprint(&self) -> Fingerprint {
        self.ours
    }

    /// Handles a message body from `peer`: OTR protocol messages, encrypted text, plain text.
    /// Pass every body from the contact; what is not for the user shows up as events.
    pub fn receive(&self, peer: &str, body: &str) -> Result<Vec<OtrEvent>> {
        self.call(|reply| Command::Receive {
            peer: peer.to_owned(),
            body: body.to_owned(),
            reply,
        })
    }

    /// Prepares `text` for `peer`: encrypted if the private conversation is up, unencrypted
    /// if there is none. Refused with [`Error::Finished`] after the contact ended it.
    pub fn send(&self, peer: &str, text: &str) -> Result<Vec<OtrEvent>> {
        self.call(|reply| Command::Send {
            peer: peer.to_owned(),
            text: text.to_owned(),
            reply,
        })
    }

    /// Asks `peer` to start a private conversation (an OTR query message); the contact's
    /// software answers with the key exchange, whose result comes as [`OtrEvent::Status`].
    pub fn start(&self, peer: &str) -> Result<Vec<OtrEvent>> {
        self.call(|reply| Command::Start {
            peer: peer.to_owned(),
            reply,
        })
    }

    /// Ends the private conversation with `peer` (telling the contact's software if it was
    /// up) and goes back to plaintext.
    pub fn end(&self, peer: &str) -> Result<Vec<OtrEvent>> {
        self.call(|reply| Command::End {
            peer: peer.to_owned(),
            reply,
        })
    }

    /// Starts verifying `peer`'s identity with the Socialist Millionaires' Protocol: the
    /// contact must answer `question` with the same `secret`.
    pub fn start_smp(
        &self,
        peer: &str,
        question: Option<&str>,
        secret: &str,
    ) -> Result<Vec<OtrEvent>> {
        self.call(|reply| Command::StartSmp {
            peer: peer.to_owned(),
            question: question.map(str::to_owned),
            secret: Zeroizing::new(secret.to_owned()),
            reply,
        })
    }

    /// Answers the contact's [`OtrEvent::SmpQuestion`] with our `secret`.
    pub fn answer_smp(&self, peer: &str, secret: &str) -> Result<Vec<OtrEvent>> {
        self.call(|reply| Command::AnswerSmp {
            peer: peer.to_owned(),
            secret: Zeroizing::new(secret.to_owned()),
            reply,
        })
    }

    /// Aborts (or declines) an identity verification with `peer`.
    pub fn abort_smp(&self, peer: &str) -> Result<Vec<OtrEvent>> {
        self.call(|reply| Command::AbortSmp {
            peer: peer.to_owned(),
            reply,
        })
    }

    pub fn status(&self, peer: &str) -> Result<OtrStatus> {
        self.call(|reply| Command::Status {
            peer: peer.to_owned(),
            reply,
        })
    }

    /// The fingerprint of `peer`'s key, while a private conversation is up.
    pub fn peer_fingerprint(&self, peer: &str) -> Result<Option<Fingerprint>> {
        self.call(|reply| Command::PeerFingerprint {
            peer: peer.to_owned(),
            reply,
        })
    }

    fn call<T>(&self, command: impl FnOnce(Reply<T>) -> Command) -> Result<T> {
        let (reply, answer) = mpsc::channel();
        self.commands
            .send(command(reply))
            .map_err(|_| Error::Stopped)?;
        answer.recv().map_err(|_| Error::Stopped)?
    }
}

/// otrr's view of Starling: keys, message size, and the messages otrr wants sent.
struct Host {
    keypair: dsa::Keypair,
    identity: ed448::EdDSAKeyPair,
    forging: ed448::EdDSAKeyPair,
    message_size: usize,
    profile: std::cell::RefCell<Vec<u8>>,
    /// (peer, body) in the order otrr injected them.
    injected: std::cell::RefCell<Vec<(Vec<u8>, Vec<u8>)>>,
}

impl otrr::Host for Host {
    fn message_size(&self) -> usize {
        self.message_size
    }

    fn inject(&self, address: &[u8], message: &[u8]) {
        self.injected
            .borrow_mut()
            .push((address.to_vec(), message.to_vec()));
    }

    fn keypair(&self) -> Option<&dsa::Keypair> {
        Some(&self.keypair)
    }

    fn keypair_identity(&self) -> &ed448::EdDSAKeyPair {
        &self.identity
    }

    fn keypair_forging(&self) -> &ed448::EdDSAKeyPair {
        &self.forging
    }

    fn query_smp_secret(&self, _question: &[u8]) -> Option<Vec<u8>> {
        // Not called: `defer_smp_secret` (vendored otrr) makes SMP wait for `answer_smp`.
        tracing::warn!("otrr asked for an SMP secret synchronously; declining");
        None
    }

    fn defer_smp_secret(&self) -> bool {
        true
    }

    fn client_profile(&self) -> Vec<u8> {
        self.profile.borrow().clone()
    }

    fn update_client_profile(&self, encoded_payload: Vec<u8>) {
        *self.profile.borrow_mut() = encoded_payload;
    }
}

/// The engine thread's state.
struct Worker {
    host: Rc<Host>,
    account: Account,
    /// Per peer, the instance (the contact's client) we talk to: the one whose session came
    /// up or spoke last. Absent: instance 0, i.e. no session yet.
    active: HashMap<String, InstanceTag>,
}

impl Worker {
    fn new(jid: String, key: &[u8], config: OtrConfig) -> Result<Self> {
        let keypair = decode_keypair(key)?;
        let host = Rc::new(Host {
            keypair,
            identity: ed448::EdDSAKeyPair::generate(),
            forging: ed448::EdDSAKeyPair::generate(),
            message_size: config.message_size.max(MIN_MESSAGE_SIZE),
            profile: std::cell::RefCell::new(Vec::new()),
            injected: std::cell::RefCell::new(Vec::new()),
        });
        let mut policy = Policy::ALLOW_V3 | Policy::WHITESPACE_START_AKE | Policy::ERROR_START_AKE;
        if config.advertise {
            policy |= Policy::SEND_WHITESPACE_TAG;
        }
        let dyn_host: Rc<dyn otrr::Host> = host.clone();
        let account = Account::new(jid.into_bytes(), policy, dyn_host).map_err(|e| {
            tracing::warn!("otrr: cannot create the account: {e:?}");
            Error::Internal
        })?;
        Ok(Worker {
            host,
            account,
            active: HashMap::new(),
        })
    }

    fn run(mut self, inbox: mpsc::Receiver<Command>) {
        while let Ok(command) = inbox.recv() {
            self.dispatch(command);
        }
    }

    fn dispatch(&mut self, command: Command) {
        match command {
            Command::Receive { peer, body, reply } => {
                // `receive` itself never fails: what the input did wrong is an event.
                let result = self
                    .guarded(|w, ev| w.receive(&peer, &body, ev))
                    .or_else(|_| {
                        Ok(vec![OtrEvent::Error {
                            peer,
                            reason: OtrProblem::Internal,
                        }])
                    });
                answer(reply, result);
            }
            Command::Send { peer, text, reply } => {
                let result = self.guarded(|w, ev| w.send(&peer, &text, ev));
                answer(reply, result);
            }
            Command::Start { peer, reply } => {
                let result = self.guarded(|w, ev| w.start(&peer, ev));
                answer(reply, result);
            }
            Command::End { peer, reply } => {
                let result = self.guarded(|w, ev| w.end(&peer, ev));
                answer(reply, result);
            }
            Command::StartSmp {
                peer,
                question,
                secret,
                reply,
            } => {
                let result =
                    self.guarded(|w, ev| w.start_smp(&peer, question.as_deref(), &secret, ev));
                answer(reply, result);
            }
            Command::AnswerSmp {
                peer,
                secret,
                reply,
            } => {
                let result = self.guarded(|w, ev| w.answer_smp(&peer, &secret, ev));
                answer(reply, result);
            }
            Command::AbortSmp { peer, reply } => {
                let result = self.guarded(|w, ev| w.abort_smp(&peer, ev));
                answer(reply, result);
            }
            Command::Status { peer, reply } => {
                let status = self.status(&peer);
                answer(reply, Ok(status));
            }
            Command::PeerFingerprint { peer, reply } => {
                let fingerprint = self.peer_fingerprint(&peer);
                answer(reply, Ok(fingerprint));
            }
        }
    }

    /// Runs `op`, collecting its events, with otrr's panics (it asserts on some malformed
    /// input) turned into an error event or [`Error::Internal`]: the engine carries on.
    fn guarded(
        &mut self,
        op: impl FnOnce(&mut Self, &mut Vec<OtrEvent>) -> Result<()>,
    ) -> Result<Vec<OtrEvent>> {
        let mut events = Vec::new();
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| op(self, &mut events)));
        match outcome {
            Ok(Ok(())) => {
                self.flush(&mut events);
                Ok(events)
            }
            Ok(Err(e)) => {
                self.discard_injected();
                Err(e)
            }
            Err(_) => {
                tracing::warn!("otrr panicked; message dropped");
                self.discard_injected();
                Err(Error::Internal)
            }
        }
    }

    /// Moves what otrr injected so far into `events`, keeping the order.
    fn flush(&self, events: &mut Vec<OtrEvent>) {
        for (peer, body) in self.host.injected.borrow_mut().drain(..) {
            events.push(OtrEvent::Inject {
                peer: String::from_utf8_lossy(&peer).into_owned(),
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
    }

    fn discard_injected(&self) {
        let dropped = self.host.injected.borrow_mut().drain(..).count();
        if dropped > 0 {
            tracing::warn!("dropped {dropped} OTR messages of a failed operation");
        }
    }

    fn instance(&self, peer: &str) -> InstanceTag {
        self.active.get(peer).copied().unwrap_or(INSTANCE_ZERO)
    }

    fn status(&mut self, peer: &str) -> OtrStatus {
        let instance = self.instance(peer);
        match self.account.session(peer.as_bytes()).status(instance) {
            Some(ProtocolStatus::Encrypted) => OtrStatus::Encrypted,
            Some(ProtocolStatus::Finished) => OtrStatus::Finished,
            Some(ProtocolStatus::Plaintext) | None => OtrStatus::Plaintext,
        }
    }

    fn peer_fingerprint(&mut self, peer: &str) -> Option<Fingerprint> {
        let instance = self.instance(peer);
        self.account
            .session(peer.as_bytes())
            .their_fingerprint(instance)
            .ok()
            .map(Fingerprint)
    }

    /// [`OtrEngine::receive`]
    fn receive(&mut self, peer: &str, body: &str, events: &mut Vec<OtrEvent>) -> Result<()> {
        let result = self
            .account
            .session(peer.as_bytes())
            .receive(body.as_bytes());
        self.flush(events);
        match result {
            Ok(message) => self.user_message(peer, message, events),
            Err(e) => {
                if let Some(reason) = incoming_problem(e) {
                    events.push(OtrEvent::Error {
                        peer: peer.to_owned(),
                        reason,
                    });
                }
            }
        }
        Ok(())
    }

    fn user_message(&mut self, peer: &str, message: UserMessage, events: &mut Vec<OtrEvent>) {
        let peer_s = peer.to_owned();
        match message {
            UserMessage::None => {}
            UserMessage::Plaintext(text) | UserMessage::WarningUnencrypted(text) => {
                events.push(OtrEvent::Plaintext {
                    peer: peer_s,
                    text: String::from_utf8_lossy(&text).into_owned(),
                    encrypted: false,
                });
            }
            UserMessage::Error(text) => events.push(OtrEvent::Error {
                peer: peer_s,
                reason: OtrProblem::PeerReported(String::from_utf8_lossy(&text).into_owned()),
            }),
            UserMessage::Reset(instance) => {
                if instance == self.instance(peer) {
                    events.push(OtrEvent::Status {
                        peer: peer_s,
                        status: OtrStatus::Plaintext,
                    });
                }
            }
            UserMessage::ConfidentialSessionStarted(instance) => {
                self.active.insert(peer_s.clone(), instance);
                events.push(OtrEvent::Status {
                    peer: peer_s,
                    status: OtrStatus::Encrypted,
                });
            }
            UserMessage::Confidential(instance, text, _tlvs) => {
                self.active.insert(peer_s.clone(), instance);
                if !text.is_empty() {
                    events.push(OtrEvent::Plaintext {
                        peer: peer_s,
                        text: String::from_utf8_lossy(&text).into_owned(),
                        encrypted: true,
                    });
                }
            }
            UserMessage::ConfidentialSessionFinished(instance, text) => {
                if !text.is_empty() {
                    events.push(OtrEvent::Plaintext {
                        peer: peer_s.clone(),
                        text: String::from_utf8_lossy(&text).into_owned(),
                        encrypted: true,
                    });
                }
                if instance == self.instance(peer) {
                    events.push(OtrEvent::Status {
                        peer: peer_s,
                        status: OtrStatus::Finished,
                    });
                }
            }
            UserMessage::SMPQuestion(instance, question) => {
                self.active.insert(peer_s.clone(), instance);
                events.push(OtrEvent::SmpQuestion {
                    peer: peer_s,
                    question: (!question.is_empty())
                        .then(|| String::from_utf8_lossy(&question).into_owned()),
                });
            }
            UserMessage::SMPSucceeded(instance) | UserMessage::SMPFailed(instance) => {
                let verified = matches!(message, UserMessage::SMPSucceeded(_));
                self.active.insert(peer_s.clone(), instance);
                let fingerprint = self.peer_fingerprint(peer);
                events.push(OtrEvent::SmpResult {
                    peer: peer_s,
                    verified,
                    fingerprint,
                });
            }
        }
    }

    /// [`OtrEngine::send`]
    fn send(&mut self, peer: &str, text: &str, events: &mut Vec<OtrEvent>) -> Result<()> {
        if self.status(peer) == OtrStatus::Finished {
            return Err(Error::Finished);
        }
        let instance = self.instance(peer);
        let payloads = self
            .account
            .session(peer.as_bytes())
            .send(instance, text.as_bytes())
            .map_err(rejected)?;
        self.flush(events);
        for body in payloads {
            events.push(OtrEvent::Inject {
                peer: peer.to_owned(),
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        Ok(())
    }

    /// [`OtrEngine::start`]
    fn start(&mut self, peer: &str, _events: &mut Vec<OtrEvent>) -> Result<()> {
        self.account
            .session(peer.as_bytes())
            .query()
            .map_err(rejected)
    }

    /// [`OtrEngine::end`]
    fn end(&mut self, peer: &str, events: &mut Vec<OtrEvent>) -> Result<()> {
        let instance = self.instance(peer);
        let message = self
            .account
            .session(peer.as_bytes())
            .end(instance)
            .map_err(rejected)?;
        self.flush(events);
        self.user_message(peer, message, events);
        Ok(())
    }

    /// [`OtrEngine::start_smp`]
    fn start_smp(
        &mut self,
        peer: &str,
        question: Option<&str>,
        secret: &str,
        _events: &mut Vec<OtrEvent>,
    ) -> Result<()> {
        self.require_encrypted(peer)?;
        let instance = self.instance(peer);
        self.account
            .session(peer.as_bytes())
            .start_smp(
                instance,
                secret.as_bytes(),
                question.unwrap_or_default().as_bytes(),
            )
            .map_err(|e| match e {
                OTRError::SMPInProgress => Error::SmpInProgress,
                e => rejected(e),
            })
    }

    /// [`OtrEngine::answer_smp`]
    fn answer_smp(&mut self, peer: &str, secret: &str, _events: &mut Vec<OtrEvent>) -> Result<()> {
        self.require_encrypted(peer)?;
        let instance = self.instance(peer);
        self.account
            .session(peer.as_bytes())
            .answer_smp(instance, secret.as_bytes())
            .map_err(|e| match e {
                OTRError::IncorrectState(_) => Error::NoSmpQuestion,
                e => rejected(e),
            })
    }

    /// [`OtrEngine::abort_smp`]
    fn abort_smp(&mut self, peer: &str, _events: &mut Vec<OtrEvent>) -> Result<()> {
        self.require_encrypted(peer)?;
        let instance = self.instance(peer);
        self.account
            .session(peer.as_bytes())
            .abort_smp(instance)
            .map_err(rejected)
    }

    fn require_encrypted(&mut self, peer: &str) -> Result<()> {
        match self.status(peer) {
            OtrStatus::Encrypted => Ok(()),
            OtrStatus::Plaintext | OtrStatus::Finished => Err(Error::NotEncrypted),
        }
    }
}

fn answer<T>(reply: Reply<T>, result: Result<T>) {
    if reply.send(result).is_err() {
        tracing::debug!("OTR engine reply dropped: the caller is gone");
    }
}

/// otrr's error for one of our commands.
fn rejected(e: OTRError) -> Error {
    match e {
        OTRError::IncorrectState(_) => Error::NotEncrypted,
        OTRError::SMPInProgress => Error::SmpInProgress,
        OTRError::ProtocolViolation(s)
        | OTRError::UserError(s)
        | OTRError::PolicyRestriction(s) => Error::Rejected(s),
        e => {
            tracing::debug!("otrr rejected a command: {e:?}");
            Error::Internal
        }
    }
}

/// What to tell the user about an incoming message otrr failed on; `None` for what is
/// normal in OTR (messages for our other clients, AKE messages that lost a race).
fn incoming_problem(e: OTRError) -> Option<OtrProblem> {
    match e {
        OTRError::MessageForOtherInstance => None,
        OTRError::AuthenticationError(AKEError::MessageIgnored) => None,
        OTRError::AuthenticationError(_) => Some(OtrProblem::AuthenticationFailed),
        OTRError::UnreadableMessage(_) => Some(OtrProblem::Unreadable),
        OTRError::ProtocolViolation(s) => Some(OtrProblem::Malformed(s)),
        OTRError::IncompleteMessage => Some(OtrProblem::Malformed("incomplete message")),
        OTRError::CryptographicViolation(_) => {
            Some(OtrProblem::Malformed("failed a cryptographic check"))
        }
        OTRError::UnsupportedVersion(v) => Some(OtrProblem::UnsupportedVersion(v)),
        e => {
            tracing::debug!("otrr failed on an incoming message: {e:?}");
            Some(OtrProblem::Internal)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as B64;

    use super::*;

    /// Fixed key pairs: generating DSA keys takes seconds in debug builds.
    const KEY_A: &str = concat!(
        "AQAAAICB4SMTRcjlARx8VxcxyrNmjxW418NpyzMLa1D76ZiCQLz2v50fgNczAWMwEXKXccGbyG4jxd2RUlhzP+Os",
        "RYjiRduYa9MHgr6hb28Pil5RCcKnF9VQJIKVBRHPp1B+3h3BlOUOjsRiCx4p6psnYbPl4n7WRwGOwySFUasAC3Sq",
        "xwAAABTsTM19dkqqg8yHzbIt8iGd21k2ywAAAIBEZhnZve7v63psSBjEhH2B5Bp9ZPEK+2h1CtckdVDjBrKhDzgk",
        "UuM5ruYbmeB+A2qyDlIvLOYRfJJ5M6590bRQxRUchAp5J8dYmHoDn2yojfQ43iHswjZXH5oaTaGNO54aCctqVKB3",
        "5jPQNF8hCejCLSA6ovKtthXKQA7YNTnUhQAAAIAwKAwYbshEA5U3R5lT5Wp0TKDFp3Gg/A2dubGrrws4Y8dN7VJd",
        "nU7zYhWu8Mb5wPB93W68XdI1o54fDm+jiI7ewiQeX1zGiNvNcRU0yQu9RSUcOzs9msMy4xWaTt46diIoRkLv+sLn",
        "5EXWfxfk4vfUy02PlenZbeuvvFtyLkV2aAAAABTdzcCN4YrQIbLlfb4y073A4CHhyQ==",
    );
    const FINGERPRINT_A: &str = "BC8FD911 A1E06E77 99140B19 686DA568 A381E86E";
    const KEY_B: &str = concat!(
        "AQAAAICo8pu09FJCOKTRAEA8A42dF9BbJSOIyN1BSNo3lLWCoITXDgy0vcySniD4GYpE2OowZV/9UlORANbZiH2c",
        "Rz2+W13R2Z1sxIrV6rl18/d0fHlRa1HprWyRC2UZecdVKoSAGMuynerJtnMow9HWAZKkShSIErX2ZXzr6Dx6E+30",
        "MQAAABTP3azTN1era4ZOaGFVLa2/R6X2nwAAAIAtBHOfvjSPsWmvFJGeNrBxSlEJ+J5WPdUx7YecS1WNGM4OQYsC",
        "AqAOYLBloEvn2y4kiZTS6Y9CRmo//TRvleU4iKA5lSm1SShikwiBGt9rppP71161JNkpJ8CrSEwhJQwDTExZdKgY",
        "TcsBtIrBMSDl/chtNIxGBMeZNE1h6uycsgAAAIBSKdFVzXE0jQEvoPXMdL84FVrzzorKK6lTWVM74VrHFUBCwTMd",
        "r8HtFCWOZbvWwbfvR9tlU9Y0nQfXxlgRo0lgefFTcq0V5JmSK2VlGPN8figAP+KkA0h2IQ0H+DoV4txmFsQ1xGyg",
        "yL1MBAkFrHBQR1fTZY7hDObR1KLDa8mz2AAAABQ/i1FIjg1cWDTtcEJii8y5xVjlCQ==",
    );
    const FINGERPRINT_B: &str = "42846726 848A6BBF A3833893 A555BCDA 7D3B1696";

    const ALICE: &str = "alice@example.org/phone";
    const BOB: &str = "bob@example.org/desk";

    fn key(b64: &str) -> PrivateKey {
        let bytes = B64.decode(b64).expect("test key is base64");
        PrivateKey::from_bytes(&bytes).expect("test key is valid")
    }

    struct Side {
        jid: &'static str,
        engine: OtrEngine,
        /// Everything but `Inject`, in order.
        log: Vec<OtrEvent>,
    }

    /// Alice and Bob with a perfect wire between them.
    struct Net {
        alice: Side,
        bob: Side,
    }

    impl Net {
        fn new(config: OtrConfig) -> Net {
            let engine = |jid, k| OtrEngine::new(jid, &key(k), config.clone()).expect("engine");
            Net {
                alice: Side {
                    jid: ALICE,
                    engine: engine(ALICE, KEY_A),
                    log: Vec::new(),
                },
                bob: Side {
                    jid: BOB,
                    engine: engine(BOB, KEY_B),
                    log: Vec::new(),
                },
            }
        }

        fn side(&mut self, alice: bool) -> &mut Side {
            if alice {
                &mut self.alice
            } else {
                &mut self.bob
            }
        }

        /// Puts `events` of one side on the wire and delivers until nothing is left.
        fn run(&mut self, from_alice: bool, events: Vec<OtrEvent>) {
            let mut wire = VecDeque::new();
            self.absorb(from_alice, events, &mut wire);
            while let Some((to_alice, body)) = wire.pop_front() {
                let from = self.side(!to_alice).jid;
                let events = self
                    .side(to_alice)
                    .engine
                    .receive(from, &body)
                    .expect("receive");
                self.absorb(to_alice, events, &mut wire);
            }
        }

        fn absorb(
            &mut self,
            alice: bool,
            events: Vec<OtrEvent>,
            wire: &mut VecDeque<(bool, String)>,
        ) {
            let side = self.side(alice);
            for event in events {
                match event {
                    OtrEvent::Inject { peer, body } => {
                        let to = if alice { BOB } else { ALICE };
                        assert_eq!(peer, to);
                        wire.push_back((!alice, body));
                    }
                    other => side.log.push(other),
                }
            }
        }

        fn take(&mut self, alice: bool) -> Vec<OtrEvent> {
            std::mem::take(&mut self.side(alice).log)
        }

        fn start(&mut self) {
            let events = self.alice.engine.start(BOB).expect("start");
            self.run(true, events);
            assert_eq!(self.take(true), vec![status(BOB, OtrStatus::Encrypted)]);
            assert_eq!(self.take(false), vec![status(ALICE, OtrStatus::Encrypted)]);
        }

        /// Sends `text` from one side; returns what the other side got.
        fn say(&mut self, from_alice: bool, text: &str) -> Vec<OtrEvent> {
            let to = if from_alice { BOB } else { ALICE };
            let events = self.side(from_alice).engine.send(to, text).expect("send");
            self.run(from_alice, events);
            self.take(!from_alice)
        }
    }

    fn status(peer: &str, status: OtrStatus) -> OtrEvent {
        OtrEvent::Status {
            peer: peer.to_owned(),
            status,
        }
    }

    fn text(peer: &str, text: &str, encrypted: bool) -> OtrEvent {
        OtrEvent::Plaintext {
            peer: peer.to_owned(),
            text: text.to_owned(),
            encrypted,
        }
    }

    #[test]
    fn engine_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<OtrEngine>();
        check::<PrivateKey>();
    }

    #[test]
    fn fingerprints_as_libotr_shows_them() {
        assert_eq!(key(KEY_A).fingerprint().to_string(), FINGERPRINT_A);
        assert_eq!(key(KEY_B).fingerprint().to_string(), FINGERPRINT_B);
        assert_eq!(
            format!("{:?}", key(KEY_A)),
            format!("PrivateKey({FINGERPRINT_A})")
        );
    }

    #[test]
    fn private_key_export_and_restore() {
        let generated = PrivateKey::generate();
        let restored = PrivateKey::from_bytes(&generated.to_bytes()).expect("restore");
        assert_eq!(generated.fingerprint(), restored.fingerprint());
        assert_eq!(*generated.to_bytes(), *restored.to_bytes());

        let good = key(KEY_A).to_bytes();
        for bad in [
            &[][..],
            &good[1..],
            &good[..good.len() - 1],
            &[2u8, 0, 0, 0, 0][..],
        ] {
            assert!(matches!(
                PrivateKey::from_bytes(bad),
                Err(Error::InvalidKey)
            ));
        }
        // a private key that does not belong to the public key
        let mut wrong = good.to_vec();
        let last = wrong.len() - 1;
        wrong[last] ^= 1;
        assert!(matches!(
            PrivateKey::from_bytes(&wrong),
            Err(Error::InvalidKey)
        ));
    }

    #[test]
    fn ake_messages_and_end() {
        let mut net = Net::new(OtrConfig::default());
        assert_eq!(net.alice.engine.fingerprint().to_string(), FINGERPRINT_A);
        assert_eq!(
            net.alice.engine.status(BOB).expect("status"),
            OtrStatus::Plaintext
        );
        assert_eq!(net.alice.engine.peer_fingerprint(BOB).expect("fp"), None);

        net.start();
        assert_eq!(
            net.alice.engine.status(BOB).expect("status"),
            OtrStatus::Encrypted
        );
        assert_eq!(
            net.bob.engine.status(ALICE).expect("status"),
            OtrStatus::Encrypted
        );
        let seen_by_alice = net.alice.engine.peer_fingerprint(BOB).expect("fp");
        assert_eq!(
            seen_by_alice.map(|f| f.to_string()).as_deref(),
            Some(FINGERPRINT_B)
        );
        let seen_by_bob = net.bob.engine.peer_fingerprint(ALICE).expect("fp");
        assert_eq!(seen_by_bob, Some(net.alice.engine.fingerprint()));

        // Encrypted on the wire.
        let events = net.alice.engine.send(BOB, "hello bob").expect("send");
        match &events[..] {
            [OtrEvent::Inject { body, .. }] => {
                assert!(body.starts_with("?OTR:AAMD"), "{body}");
                assert!(!body.contains("hello"));
            }
            other => panic!("expected one data message, got {other:?}"),
        }
        net.run(true, events);
        assert_eq!(net.take(false), vec![text(ALICE, "hello bob", true)]);
        assert_eq!(
            net.say(false, "hi alice ✓"),
            vec![text(BOB, "hi alice ✓", true)]
        );

        // The pattern that lost messages with a single receive counter (vendor/otrr
        // STARLING-PATCH.md): two in a row, a reply, then another.
        assert_eq!(net.say(true, "one"), vec![text(ALICE, "one", true)]);
        assert_eq!(net.say(true, "two"), vec![text(ALICE, "two", true)]);
        assert_eq!(net.say(false, "three"), vec![text(BOB, "three", true)]);
        assert_eq!(net.say(true, "four"), vec![text(ALICE, "four", true)]);
        assert_eq!(net.say(true, "five"), vec![text(ALICE, "five", true)]);
        assert_eq!(net.say(false, "six"), vec![text(BOB, "six", true)]);
        assert_eq!(net.say(false, "seven"), vec![text(BOB, "seven", true)]);
        assert_eq!(net.say(true, "eight"), vec![text(ALICE, "eight", true)]);

        // Alice ends: Bob is told and may not send until he ends too.
        let events = net.alice.engine.end(BOB).expect("end");
        net.run(true, events);
        assert_eq!(net.take(true), vec![status(BOB, OtrStatus::Plaintext)]);
        assert_eq!(net.take(false), vec![status(ALICE, OtrStatus::Finished)]);
        assert!(matches!(
            net.bob.engine.send(ALICE, "secret?"),
            Err(Error::Finished)
        ));
        assert_eq!(
            net.bob.engine.end(ALICE).expect("end"),
            vec![status(ALICE, OtrStatus::Plaintext)]
        );
        assert_eq!(
            net.say(false, "in the clear"),
            vec![text(BOB, "in the clear", false)]
        );

        // And again.
        net.start();
        assert_eq!(net.say(false, "back"), vec![text(BOB, "back", true)]);
    }

    #[test]
    fn plaintext_and_whitespace_tag() {
        let mut net = Net::new(OtrConfig {
            advertise: true,
            ..OtrConfig::default()
        });
        let events = net.alice.engine.send(BOB, "plain").expect("send");
        match &events[..] {
            [OtrEvent::Inject { body, .. }] => {
                assert!(body.starts_with(" \t  \t\t\t\t \t \t \t  "), "{body:?}");
                assert!(body.ends_with("plain"));
            }
            other => panic!("expected one tagged message, got {other:?}"),
        }
        // Bob's engine starts the AKE on the tag.
        net.run(true, events);
        assert_eq!(
            net.take(false),
            vec![
                text(ALICE, "plain", false),
                status(ALICE, OtrStatus::Encrypted)
            ]
        );
        assert_eq!(net.take(true), vec![status(BOB, OtrStatus::Encrypted)]);
        assert_eq!(
            net.say(true, "now private"),
            vec![text(ALICE, "now private", true)]
        );
    }

    #[test]
    fn fragments_at_message_size() {
        let mut net = Net::new(OtrConfig {
            message_size: 140,
            ..OtrConfig::default()
        });
        net.start();
        let long: String = (0..60).map(|i| format!("word{i} ")).collect();
        let events = net.alice.engine.send(BOB, &long).expect("send");
        assert!(events.len() > 3, "{} fragments", events.len());
        for event in &events {
            match event {
                OtrEvent::Inject { body, .. } => {
                    assert!(body.len() <= 140, "{} bytes: {body}", body.len());
                    assert!(body.starts_with("?OTR|"), "{body}");
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        net.run(true, events);
        assert_eq!(net.take(false), vec![text(ALICE, &long, true)]);
    }

    #[test]
    fn smp_right_and_wrong_secret() {
        let mut net = Net::new(OtrConfig::default());
        assert!(matches!(
            net.alice.engine.start_smp(BOB, None, "x"),
            Err(Error::NotEncrypted)
        ));
        net.start();
        assert!(matches!(
            net.bob.engine.answer_smp(ALICE, "x"),
            Err(Error::NoSmpQuestion)
        ));

        // Alice asks, Bob answers right.
        let events = net
            .alice
            .engine
            .start_smp(BOB, Some("Where did we meet?"), "the café")
            .expect("start smp");
        net.run(true, events);
        assert_eq!(
            net.take(false),
            vec![OtrEvent::SmpQuestion {
                peer: ALICE.into(),
                question: Some("Where did we meet?".into())
            }]
        );
        assert!(matches!(
            net.alice.engine.start_smp(BOB, None, "again"),
            Err(Error::SmpInProgress)
        ));
        let events = net
            .bob
            .engine
            .answer_smp(ALICE, "the café")
            .expect("answer");
        net.run(false, events);
        let fp_a = Some(key(KEY_A).fingerprint());
        let fp_b = Some(key(KEY_B).fingerprint());
        let result = |peer: &str, verified, fingerprint| OtrEvent::SmpResult {
            peer: peer.into(),
            verified,
            fingerprint,
        };
        assert_eq!(net.take(false), vec![result(ALICE, true, fp_a)]);
        assert_eq!(net.take(true), vec![result(BOB, true, fp_b)]);

        // Bob asks without a question, Alice answers wrong.
        let events = net
            .bob
            .engine
            .start_smp(ALICE, None, "blue")
            .expect("start smp");
        net.run(false, events);
        assert_eq!(
            net.take(true),
            vec![OtrEvent::SmpQuestion {
                peer: BOB.into(),
                question: None
            }]
        );
        let events = net.alice.engine.answer_smp(BOB, "green").expect("answer");
        net.run(true, events);
        assert_eq!(net.take(true), vec![result(BOB, false, fp_b)]);
        assert_eq!(net.take(false), vec![result(ALICE, false, fp_a)]);

        // Alice declines Bob's next question.
        let events = net
            .bob
            .engine
            .start_smp(ALICE, Some("?"), "blue")
            .expect("start smp");
        net.run(false, events);
        assert_eq!(net.take(true).len(), 1);
        let events = net.alice.engine.abort_smp(BOB).expect("abort");
        net.run(true, events);
        assert_eq!(net.take(false), vec![result(ALICE, false, fp_a)]);

        // Messages still flow.
        assert_eq!(
            net.say(true, "still here"),
            vec![text(ALICE, "still here", true)]
        );
    }

    #[test]
    fn hostile_input_is_an_error_event() {
        let mut net = Net::new(OtrConfig::default());
        net.start();
        for body in [
            // k and n beyond u16 (otrr 0.7.4 panicked on these: vendor/otrr/STARLING-PATCH.md)
            "?OTR|00000100|00000100,99999,99999,AAAA,",
            "?OTR:AAMDnonsense.",
            "?OTR:AAMD.",
            "?OTR Error: something broke",
        ] {
            let events = net.bob.engine.receive(ALICE, body).expect("receive");
            assert!(
                events
                    .iter()
                    .all(|e| matches!(e, OtrEvent::Error { .. } | OtrEvent::Inject { .. })),
                "{body}: {events:?}"
            );
        }
        assert_eq!(
            net.say(true, "unharmed"),
            vec![text(ALICE, "unharmed", true)]
        );
    }
}
