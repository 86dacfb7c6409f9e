//! One actor per account: owns the stream, the session state and the outstanding IQs.
//!
//! The actor is a single tokio task. It reacts to four sources: commands from [`Client`]
//! (`crate::api::Client`), events of the stanza stream (tokio-xmpp's `StanzaStream`, which
//! does stream management and resumption), connection status from our reconnector, and
//! acknowledgements of outbox stanzas. Durable state is in the store; session state (presence,
//! open archive queries, IQs) is reset on a fresh session and kept on resumption.

mod ext;
mod inbound;
mod iq;
mod muc;
mod otr;
pub(crate) mod social;

pub use ext::check_login;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use futures::StreamExt;
use jid::{BareJid, FullJid, Jid};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_xmpp::Stanza;
use tokio_xmpp::stanzastream::{
    Event as StreamEv, StanzaStage, StanzaState, StanzaStream, StreamEvent,
};
use tokio_xmpp::xmlstream::Timeouts;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::presence::Presence;

use self::iq::{IqTracker, Pending};
use crate::api::{ChatStateKind, ConnectionState, Error, Event, Result};
use crate::connection::{self, ConnectStatus, ConnectionSettings, Connector, TlsMode};
use crate::proto::new_id;
use crate::secrets::Password;
use crate::services::{chat, mam, roster};
use crate::store::{AccountRecord, Store};

/// Most outbox stanzas handed to the stream at once; the rest wait for acks. Small on
/// purpose: after a resumption the stream retransmits everything unacked in one burst, and a
/// burst larger than what a flaky link carries before it drops again never gets through.
const MAX_IN_FLIGHT: usize = 16;
/// Capacity of the stanza stream's queues.
const QUEUE_DEPTH: usize = 1024;

/// Requests from [`crate::api::Client`] to an account actor.
#[derive(Debug)]
pub enum Command {
    /// The outbox has new rows: [`Actor::flush_outbox`].
    Flush,
    /// The front end went to the background or came back (XEP-0352): tell the server.
    ClientState,
    /// Online, and this session's archive catch-up is complete.
    CaughtUp { reply: oneshot::Sender<bool> },
    /// [`Actor::send_ephemeral`] a chat state.
    ChatState {
        to: BareJid,
        state: ChatStateKind,
        reply: oneshot::Sender<Result<()>>,
    },
    /// [`Actor::send_ephemeral`] a displayed marker.
    Displayed {
        to: BareJid,
        id: String,
        reply: oneshot::Sender<Result<()>>,
    },
    /// [`Actor::roster_set`]: add/update an item (and optionally subscribe).
    RosterSet {
        jid: BareJid,
        name: Option<String>,
        groups: Vec<String>,
        subscribe: bool,
        reply: oneshot::Sender<Result<()>>,
    },
    /// [`Actor::roster_set`] with subscription=remove.
    RosterRemove {
        jid: BareJid,
        reply: oneshot::Sender<Result<()>>,
    },
    /// [`Actor::answer_subscription`].
    Subscription {
        jid: BareJid,
        approve: bool,
        reply: oneshot::Sender<Result<()>>,
    },
    /// How the current (or last) connection is secured.
    ConnectionInfo {
        reply: oneshot::Sender<Option<connection::ConnectionInfo>>,
    },
    /// What the server and the account support (disco#info), once known this session.
    Features {
        reply: oneshot::Sender<crate::api::ServerFeatures>,
    },
    /// Changes our own presence (sent now if online, and on every fresh session).
    SetPresence {
        presence: crate::api::OwnPresence,
        reply: oneshot::Sender<Result<()>>,
    },
    /// The available resources of contacts in this session.
    Presences {
        reply: oneshot::Sender<Vec<crate::api::PresenceView>>,
    },
    /// [`Actor::join_command`]: join (or, with `create`, create) a room.
    JoinRoom {
        room: BareJid,
        nick: String,
        password: Option<String>,
        create: Option<crate::proto::muc::RoomConfig>,
        reply: oneshot::Sender<Result<crate::api::RoomJoined>>,
    },
    /// [`Actor::leave`] a room (and tell our other devices).
    LeaveRoom {
        room: BareJid,
        reply: oneshot::Sender<Result<()>>,
    },
    /// Forget a room: leave it and remove its bookmark.
    ForgetRoom {
        room: BareJid,
        reply: oneshot::Sender<Result<()>>,
    },
    /// [`Actor::change_nick`].
    ChangeNick {
        room: BareJid,
        nick: String,
        reply: oneshot::Sender<Result<()>>,
    },
    /// Who is in a room we are in.
    Occupants {
        room: BareJid,
        reply: oneshot::Sender<Result<Vec<crate::services::muc::Occupant>>>,
    },
    /// Sends a message stanza now (invitations, subjects): not queued.
    Send {
        stanza: xmpp_parsers::message::Message,
        reply: oneshot::Sender<Result<()>>,
    },
    /// Sends an IQ and hands back the answer's payload (or the refusal).
    Iq {
        to: Option<Jid>,
        set: bool,
        payload: minidom::Element,
        reply: oneshot::Sender<Result<Option<minidom::Element>>>,
    },
    /// [`Actor::ping_rooms`] now (XEP-0410).
    CheckRooms { reply: oneshot::Sender<Result<()>> },
    /// Whether the actor is online now (the `Client`'s connection state follows events,
    /// so it can lag behind the actor's).
    IsOnline { reply: oneshot::Sender<bool> },
    /// [`Actor::apply_otr`]: what the OTR engine asked for after a `Client` call (key
    /// exchange and verification messages to send now, state changes to report).
    Otr {
        peer: BareJid,
        events: Vec<crate::crypto::otr::OtrEvent>,
        reply: oneshot::Sender<Result<()>>,
    },
    /// Go offline cleanly and end the actor.
    Shutdown { reply: oneshot::Sender<()> },
}

/// Builds connection settings from a stored account.
pub fn settings(rec: &AccountRecord) -> Result<ConnectionSettings> {
    let jid = crate::api::parse_bare(&rec.jid)?;
    let server = match (&rec.server_host, rec.server_port) {
        (Some(h), Some(p)) => Some((h.clone(), p)),
        (Some(h), None) => Some((h.clone(), 5222)),
        _ => None,
    };
    Ok(ConnectionSettings {
        jid,
        server,
        tls: TlsMode::parse(&rec.tls_mode).unwrap_or_default(),
        ca_file: rec.ca_file.as_ref().map(Into::into),
        dns_server: None,
        pins: connection::LoginPins {
            scram: rec.pin_scram,
            channel_binding: rec.pin_channel_binding,
        },
        dnssec_trust_anchor: None,
    })
}

/// What an account's actor shares with the `Client` and the profile's other accounts.
pub struct Shared {
    /// XEP-0410 self-ping interval for quiet rooms, seconds.
    pub room_ping_secs: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Where contacts' avatars are cached.
    pub avatars: crate::services::avatars::AvatarCache,
    /// The account's OMEMO device (the `Client` encrypts with it, the actor decrypts).
    pub omemo: crate::services::omemo::OmemoHandle,
    /// The account's OTR state (the `Client` starts, ends and sends; the actor receives).
    pub otr: crate::services::otr::OtrHandle,
    /// XEP-0352: the front end is in use (false: in the background), for every account.
    pub client_active: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// Starts an account actor; returns its command channel.
/// What the account logs in with: its password, and its FAST token (XEP-0484) if it has
/// one, with where new tokens go.
pub struct Credentials {
    pub password: Password,
    pub fast_token: Option<connection::FastToken>,
    pub on_new_token: connection::FastSink,
}

pub fn spawn(
    rec: AccountRecord,
    credentials: Credentials,
    store: Store,
    events: broadcast::Sender<Event>,
    saved_room_passwords: HashMap<BareJid, String>,
    shared: Shared,
) -> Result<mpsc::Sender<Command>> {
    let Shared {
        room_ping_secs,
        avatars,
        omemo,
        otr,
        client_active,
    } = shared;
    let Credentials {
        password,
        fast_token,
        on_new_token,
    } = credentials;
    let settings = settings(&rec)?;
    let connector = Connector::new(&settings).map_err(Error::Connect)?;
    connector.use_fast(fast_token, on_new_token);
    let own = settings.jid.clone();
    let full: FullJid = own
        .with_resource_str(&rec.resource)
        .map_err(|_| Error::InvalidJid(format!("{}/{}", rec.jid, rec.resource)))?;
    let (status_tx, status_rx) = mpsc::unbounded_channel();
    let stream = StanzaStream::new(
        connection::reconnector(
            connector,
            Jid::from(full),
            password.expose().to_owned(),
            Timeouts::tight(),
            status_tx,
        ),
        QUEUE_DEPTH,
    );
    let (tx, rx) = mpsc::channel(64);
    let (ack_tx, ack_rx) = mpsc::unbounded_channel();
    let actor = Actor {
        rec,
        own,
        store,
        events,
        stream: Some(stream),
        online: false,
        sm: false,
        session: Session::default(),
        iqs: IqTracker::default(),
        in_flight: HashSet::new(),
        ack_tx,
        catchup: None,
        last_state: None,
        awaiting_push: Vec::new(),
        availability: crate::api::OwnPresence::default(),
        room_cx: HashMap::new(),
        room_waiters: HashMap::new(),
        room_ping_secs,
        saved_room_passwords,
        avatars,
        omemo,
        otr,
        client_active,
        csi: false,
        csi_sent: None,
        security: None,
        session_jid: None,
    };
    tokio::spawn(actor.run(rx, status_rx, ack_rx));
    Ok(tx)
}

/// State that dies with the stream.
#[derive(Debug, Default)]
struct Session {
    /// Available resources of contacts: bare -> resource -> presence.
    presences: HashMap<BareJid, HashMap<String, ResourcePresence>>,
    /// Archive queries we sent and accept results for, and whose archive each asks (our
    /// own bare JID, or a room).
    open_queries: HashMap<String, BareJid>,
    /// Rooms we are in, joining, or were in during this session.
    rooms: HashMap<BareJid, crate::services::muc::RoomSession>,
    /// Room passwords learned from invitations and bookmarks.
    room_passwords: HashMap<BareJid, String>,
    /// The archive catch-up of this session finished.
    caught_up: bool,
    /// What our server and our account support (XEP-0030), learned at session start.
    server_features: Vec<String>,
    account_features: Vec<String>,
}

#[derive(Debug, Clone)]
struct ResourcePresence {
    show: Option<String>,
    status: Option<String>,
}

#[derive(Debug)]
struct Catchup {
    fetched: u64,
    /// Archive results of the current page, stored together when the page completes.
    page: Vec<crate::store::IncomingMessage>,
}

pub(crate) struct Actor {
    rec: AccountRecord,
    own: BareJid,
    store: Store,
    events: broadcast::Sender<Event>,
    stream: Option<StanzaStream>,
    online: bool,
    /// Stream management is active: outbox rows are confirmed by acks.
    sm: bool,
    session: Session,
    iqs: IqTracker,
    /// Outbox ids handed to the stream whose fate we are waiting for.
    in_flight: HashSet<i64>,
    ack_tx: mpsc::UnboundedSender<(i64, bool)>,
    catchup: Option<Catchup>,
    last_state: Option<ConnectionState>,
    /// Roster changes the server accepted whose push has not arrived yet (Prosody answers the
    /// IQ before pushing); the requester hears back when the store has the change.
    awaiting_push: Vec<(BareJid, Instant, oneshot::Sender<Result<()>>)>,
    /// Our own presence, kept across sessions.
    availability: crate::api::OwnPresence,
    /// What the inbound classifier knows about our rooms.
    room_cx: HashMap<BareJid, crate::proto::inbound::RoomCx>,
    /// Join requests waiting for the room's answer (kept across a fresh session: the
    /// rejoin answers them).
    room_waiters: HashMap<BareJid, Vec<muc::JoinWaiter>>,
    /// XEP-0410 self-ping interval for quiet rooms, seconds (shared with the `Client`).
    room_ping_secs: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Room passwords the user gave (kept in the keyring by the `Client`).
    saved_room_passwords: HashMap<BareJid, String>,
    /// Where contacts' avatars are cached (shared by the profile's accounts).
    avatars: crate::services::avatars::AvatarCache,
    /// Our OMEMO device (shared with the `Client`, which encrypts).
    omemo: crate::services::omemo::OmemoHandle,
    /// Our OTR engine and sessions (shared with the `Client`).
    otr: crate::services::otr::OtrHandle,
    /// XEP-0352: whether the front end is in use (shared with the `Client`).
    client_active: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The server offers XEP-0352 on this stream.
    csi: bool,
    /// How the last login was secured (kept while reconnecting).
    security: Option<connection::ConnectionInfo>,
    /// The full JID of the current session, from its `Reset` (a resumed session keeps it).
    /// Kept apart from `security`: the stream may report the session before the
    /// connector reports the login.
    session_jid: Option<String>,
    /// The client state this stream was last told (none yet: the server assumes active).
    csi_sent: Option<bool>,
}

impl Actor {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut status: mpsc::UnboundedReceiver<ConnectStatus>,
        mut acks: mpsc::UnboundedReceiver<(i64, bool)>,
    ) {
        self.set_state(ConnectionState::Connecting);
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        let mut shutdown_reply = None;
        while let Some(stream) = self.stream.as_mut() {
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    Some(Command::Shutdown { reply }) => {
                        shutdown_reply = Some(reply);
                        break;
                    }
                    Some(cmd) => self.on_command(cmd).await,
                    None => break,
                },
                ev = stream.next() => match ev {
                    Some(StreamEv::Stream(se)) => {
                        // The connector reports the login before it hands the connection
                        // over: take that report first, so that a session never shows as
                        // online without its login info (`connection_info`).
                        let mut fatal = false;
                        while let Ok(st) = status.try_recv() {
                            fatal |= self.on_status(st);
                        }
                        if fatal {
                            self.stream = None;
                            break;
                        }
                        self.on_stream_event(se).await;
                    }
                    Some(StreamEv::Stanza(st)) => self.on_stanza(st).await,
                    None => {
                        // The stream ended: the reconnector gave up (fatal error, reported
                        // through `status`) or the worker died.
                        self.stream = None;
                        break;
                    }
                },
                Some(st) = status.recv() => {
                    if self.on_status(st) {
                        // Fatal: the user must act. The stream has no connection, so it is
                        // dropped rather than closed (tokio-xmpp's close() would wait for a
                        // connection that never comes).
                        self.stream = None;
                        break;
                    }
                },
                Some((outbox_id, acked)) = acks.recv() => self.on_ack(outbox_id, acked).await,
                _ = tick.tick() => self.on_tick().await,
            }
        }
        if self.online {
            self.send_now(Presence::unavailable()).await;
            if let Some(stream) = self.stream.take() {
                stream.close().await;
            }
        }
        // Offline: dropping the stream ends it; our reconnector stops with the status channel.
        self.stream = None;
        // Drain any status that explains why we stopped.
        while let Ok(st) = status.try_recv() {
            self.on_status(st);
        }
        if shutdown_reply.is_some()
            || !matches!(self.last_state, Some(ConnectionState::Failed { .. }))
        {
            self.set_state(ConnectionState::Offline);
        }
        for p in self.iqs.drain() {
            fail_pending(p, Error::NotConnected(self.rec.jid.clone()));
        }
        if let Some(reply) = shutdown_reply
            && reply.send(()).is_err()
        {
            tracing::debug!("shutdown requester went away");
        }
    }
}

impl Actor {
    fn emit(&self, ev: Event) {
        if self.events.send(ev).is_err() {
            tracing::trace!("no event subscribers");
        }
    }

    fn set_state(&mut self, state: ConnectionState) {
        if self.last_state.as_ref() == Some(&state) {
            return;
        }
        tracing::info!(account = %self.rec.jid, ?state, "connection state");
        self.last_state = Some(state.clone());
        self.emit(Event::Connection {
            account: self.rec.jid.clone(),
            state,
        });
    }

    /// Returns true when the error is fatal and the actor must stop.
    fn on_status(&mut self, st: ConnectStatus) -> bool {
        match st {
            ConnectStatus::Connecting { attempt } => {
                tracing::debug!(account = %self.rec.jid, attempt, "connecting");
                if !self.online && attempt <= 1 {
                    self.set_state(ConnectionState::Connecting);
                }
                false
            }
            ConnectStatus::Authenticated(info) => {
                tracing::info!(account = %self.rec.jid, ?info, "logged in");
                let pins = connection::LoginPins::default().after(&info);
                if let Err(e) =
                    self.store
                        .raise_login_pins(self.rec.id, pins.scram, pins.channel_binding)
                {
                    tracing::warn!(account = %self.rec.jid, error = %e, "cannot record the login pins");
                }
                self.security = Some(info);
                false
            }
            ConnectStatus::Failed { error, retry_in } => match retry_in {
                Some(delay) => {
                    self.set_state(ConnectionState::Reconnecting {
                        retry_in_secs: Some(delay.as_secs()),
                        reason: Some(error.to_string()),
                    });
                    false
                }
                None => {
                    self.online = false;
                    self.set_state(ConnectionState::Failed {
                        error: error.to_string(),
                        kind: error.kind(),
                    });
                    true
                }
            },
        }
    }

    async fn on_stream_event(&mut self, ev: StreamEvent) {
        match ev {
            StreamEvent::Reset {
                bound_jid,
                features,
            } => {
                tracing::info!(account = %self.rec.jid, %bound_jid, "fresh session");
                self.session_jid = Some(bound_jid.to_string());
                for p in self.iqs.drain() {
                    fail_pending(p, Error::NotConnected(self.rec.jid.clone()));
                }
                self.session = Session::default();
                self.load_room_cx();
                self.catchup = None;
                self.online = true;
                self.sm = features.stream_management.is_some();
                self.csi = features
                    .others
                    .iter()
                    .any(|f| f.is("csi", xmpp_parsers::ns::CSI));
                self.csi_sent = None;
                self.setup_session().await;
                self.send_client_state().await;
                self.set_state(ConnectionState::Online { resumed: false });
                self.flush_outbox().await;
            }
            StreamEvent::Resumed => {
                self.online = true;
                // The resumed session kept its state; tell it only what changed meanwhile.
                self.send_client_state().await;
                self.set_state(ConnectionState::Online { resumed: true });
                self.flush_outbox().await;
                // Rooms are not rejoined after a resumption; a self-ping checks each.
                self.ping_rooms(true).await;
            }
            StreamEvent::Suspended => {
                self.online = false;
                self.set_state(ConnectionState::Reconnecting {
                    retry_in_secs: None,
                    reason: None,
                });
            }
        }
    }

    /// A fresh session: roster, carbons, presence, then the archive catch-up.
    async fn setup_session(&mut self) {
        let ver = self
            .store
            .account(&self.rec.jid)
            .ok()
            .and_then(|a| a.roster_ver);
        self.send_iq(None, IqKind::Get, roster::get(ver), Pending::RosterGet)
            .await;
        self.send_iq(
            None,
            IqKind::Set,
            xmpp_parsers::carbons::Enable,
            Pending::Carbons,
        )
        .await;
        self.send_now(self.own_presence()).await;
        self.send_iq(
            Some(Jid::from(self.own.clone())),
            IqKind::Get,
            xmpp_parsers::disco::DiscoInfoQuery { node: None },
            Pending::DiscoAccount,
        )
        .await;
        let server = BareJid::from_parts(None, self.own.domain());
        self.send_iq(
            Some(Jid::from(server)),
            IqKind::Get,
            xmpp_parsers::disco::DiscoInfoQuery { node: None },
            Pending::DiscoServer,
        )
        .await;
    }

    /// Our presence: availability, status message, and entity caps.
    fn own_presence(&self) -> Presence {
        use xmpp_parsers::presence::Show;
        let mut presence = Presence::available();
        presence.show = match self.availability.show {
            crate::api::Availability::Online => None,
            crate::api::Availability::Chat => Some(Show::Chat),
            crate::api::Availability::Away => Some(Show::Away),
            crate::api::Availability::ExtendedAway => Some(Show::Xa),
            crate::api::Availability::DoNotDisturb => Some(Show::Dnd),
        };
        if let Some(status) = &self.availability.status {
            presence.set_status(String::new(), status.clone());
        }
        if let Some(c) = crate::proto::caps::caps() {
            presence.payloads.push(c.into());
        }
        presence
    }

    /// Starts (or continues) the archive catch-up with one page query.
    async fn request_archive_page(&mut self, from: mam::From, fetched: u64) {
        let queryid = new_id();
        self.session
            .open_queries
            .insert(queryid.clone(), self.own.clone());
        self.catchup = Some(Catchup {
            fetched,
            page: Vec::new(),
        });
        self.send_iq(
            None,
            IqKind::Set,
            mam::query(&queryid, &from),
            Pending::Mam { queryid },
        )
        .await;
    }

    /// Where a catch-up starts: after the newest archive id we hold, or the first-sync window.
    fn catchup_start(&self) -> mam::From {
        match self
            .store
            .account(&self.rec.jid)
            .ok()
            .and_then(|a| a.mam_last_id)
        {
            Some(id) => mam::From::After(id),
            None => mam::From::Since(
                chrono::Utc::now() - chrono::Duration::days(i64::from(self.rec.first_sync_days)),
            ),
        }
    }

    /// Hands every outbox row that is not already in flight to the stream, in order.
    async fn flush_outbox(&mut self) {
        if !self.online {
            return;
        }
        let rows = match self.store.outbox(self.rec.id) {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the outbox");
                return;
            }
        };
        for row in rows {
            if self.in_flight.len() >= MAX_IN_FLIGHT {
                break;
            }
            if self.in_flight.contains(&row.id) {
                continue;
            }
            let Some(msg) = chat::parse_outbox(&row.stanza) else {
                tracing::error!(outbox = row.id, "unparseable outbox stanza dropped");
                if let Err(e) = self.store.outbox_acked(row.id) {
                    tracing::error!(error = %e, "cannot drop outbox row");
                }
                continue;
            };
            if !self.may_send(&msg) {
                // For a room we are not in (yet): sent once the join completes.
                continue;
            }
            let Some(stream) = self.stream.as_ref() else {
                return;
            };
            let mut token = stream.send(Box::new(Stanza::Message(msg))).await;
            self.in_flight.insert(row.id);
            let ack_tx = self.ack_tx.clone();
            let sm = self.sm;
            let outbox_id = row.id;
            tokio::spawn(async move {
                // With stream management, only the server's ack counts. Without it, having
                // written the stanza is the best we can know.
                let want = if sm {
                    StanzaStage::Acked
                } else {
                    StanzaStage::Sent
                };
                let done = match token.wait_for(want).await {
                    Some(StanzaState::Acked { .. }) => true,
                    Some(StanzaState::Sent { .. }) => !sm,
                    _ => false,
                };
                if ack_tx.send((outbox_id, done)).is_err() {
                    tracing::debug!(outbox_id, "actor ended before the ack arrived");
                }
            });
        }
    }

    async fn on_ack(&mut self, outbox_id: i64, acked: bool) {
        self.in_flight.remove(&outbox_id);
        if acked {
            match self.store.outbox_acked(outbox_id) {
                Ok(Some(message)) => self.emit(Event::MessageUpdated {
                    account: self.rec.jid.clone(),
                    message,
                }),
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "cannot record an ack"),
            }
        } else {
            // The stream dropped it (stream management state lost). Send it again now if we
            // are online, else on the next session.
            tracing::info!(outbox_id, "stanza lost with the session; resending");
        }
        self.flush_outbox().await;
    }

    /// Answers roster requests whose push arrived (`Some(jid)`) or is overdue (`None`).
    fn settle_roster_requests(&mut self, pushed: Option<&BareJid>) {
        let now = Instant::now();
        let (done, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.awaiting_push)
            .into_iter()
            .partition(|(jid, deadline, _)| Some(jid) == pushed || *deadline <= now);
        self.awaiting_push = keep;
        for (jid, _, reply) in done {
            if pushed != Some(&jid) {
                tracing::warn!(%jid, "no roster push after a roster change; assuming it applied");
            }
            reply_to(reply, Ok(()));
        }
    }

    /// The self-ping interval for quiet rooms.
    fn room_ping_interval(&self) -> Duration {
        Duration::from_secs(
            self.room_ping_secs
                .load(std::sync::atomic::Ordering::Relaxed)
                .max(1),
        )
    }

    async fn on_tick(&mut self) {
        self.settle_roster_requests(None);
        if self.online {
            self.ping_rooms(false).await;
        }
        // Other processes (the CLI while the app runs) may have queued messages in this
        // profile's outbox; this process holds the profile's online lock, so it sends them.
        self.flush_outbox().await;
        for p in self.iqs.expired(Instant::now()) {
            match &p {
                Pending::Mam { queryid } => {
                    self.session.open_queries.remove(queryid);
                    self.store_archive_page();
                    self.catchup = None;
                    tracing::warn!("archive query timed out; catch-up continues next session");
                }
                Pending::RoomMam { queryid, room, .. } => {
                    self.session.open_queries.remove(queryid);
                    tracing::warn!(%room, "room archive query timed out");
                }
                Pending::SelfPing { room } => {
                    if let Some(rs) = self.session.rooms.get_mut(room) {
                        rs.pinging = false;
                    }
                }
                Pending::RoomInfo { room } => {
                    // Join without knowing; a room without an answer gets join history.
                    let room = room.clone();
                    self.on_room_info(room, None).await;
                }
                _ => {}
            }
            fail_pending(p, Error::Timeout("IQ"));
        }
    }

    async fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Flush => self.flush_outbox().await,
            Command::ChatState { to, state, reply } => {
                let r = self.send_ephemeral(chat::chat_state(to, state)).await;
                reply_to(reply, r);
            }
            Command::Displayed { to, id, reply } => {
                let r = self.send_ephemeral(chat::displayed(to, &id)).await;
                reply_to(reply, r);
            }
            Command::RosterSet {
                jid,
                name,
                groups,
                subscribe,
                reply,
            } => {
                self.roster_set(
                    jid.clone(),
                    roster::set(jid, name, groups),
                    reply,
                    subscribe,
                )
                .await;
            }
            Command::RosterRemove { jid, reply } => {
                self.roster_set(jid.clone(), roster::remove(jid), reply, false)
                    .await;
            }
            Command::Subscription {
                jid,
                approve,
                reply,
            } => {
                let r = self.answer_subscription(jid, approve).await;
                reply_to(reply, r);
            }
            Command::Presences { reply } => {
                let mut out = Vec::new();
                for (bare, resources) in &self.session.presences {
                    for (resource, p) in resources {
                        out.push(crate::api::PresenceView {
                            jid: format!("{bare}/{resource}"),
                            show: p.show.clone(),
                            status: p.status.clone(),
                        });
                    }
                }
                out.sort_by(|a, b| a.jid.cmp(&b.jid));
                if reply.send(out).is_err() {
                    tracing::debug!("presence requester went away");
                }
            }
            Command::SetPresence { presence, reply } => {
                self.availability = presence;
                if self.online {
                    self.send_now(self.own_presence()).await;
                    self.broadcast_room_presence().await;
                }
                reply_to(reply, Ok(()));
            }
            Command::JoinRoom {
                room,
                nick,
                password,
                create,
                reply,
            } => self.join_command(room, nick, password, create, reply).await,
            Command::LeaveRoom { room, reply } => {
                self.leave(&room, true).await;
                reply_to(reply, Ok(()));
            }
            Command::ForgetRoom { room, reply } => {
                self.leave(&room, false).await;
                if self.online {
                    self.retract_bookmark(&room).await;
                }
                reply_to(reply, Ok(()));
            }
            Command::ChangeNick { room, nick, reply } => {
                let r = self.change_nick(&room, &nick).await;
                reply_to(reply, r);
            }
            Command::Occupants { room, reply } => {
                if reply.send(self.occupants(&room)).is_err() {
                    tracing::debug!("occupant requester went away");
                }
            }
            Command::Send { stanza, reply } => self.send_confirmed(stanza, reply).await,
            Command::ClientState => self.send_client_state().await,
            Command::CaughtUp { reply } => {
                if reply.send(self.online && self.session.caught_up).is_err() {
                    tracing::debug!("command requester went away");
                }
            }
            Command::IsOnline { reply } => {
                if reply.send(self.online).is_err() {
                    tracing::debug!("command requester went away");
                }
            }
            Command::Otr {
                peer,
                events,
                reply,
            } => {
                let r = self.otr_command(&peer, events).await;
                reply_to(reply, r);
            }
            Command::Iq {
                to,
                set,
                payload,
                reply,
            } => {
                if !self.online {
                    return reply_raw(reply, Err(Error::NotConnected(self.rec.jid.clone())));
                }
                let kind = if set { IqKind::Set } else { IqKind::Get };
                self.send_iq(to, kind, payload, Pending::Raw { reply })
                    .await;
            }
            Command::CheckRooms { reply } => {
                if self.online {
                    self.ping_rooms(true).await;
                    reply_to(reply, Ok(()));
                } else {
                    reply_to(reply, Err(Error::NotConnected(self.rec.jid.clone())));
                }
            }
            Command::ConnectionInfo { reply } => {
                let info = self
                    .security
                    .clone()
                    .map(|info| connection::ConnectionInfo {
                        jid: self.session_jid.clone(),
                        ..info
                    });
                if reply.send(info).is_err() {
                    tracing::debug!("connection info requester went away");
                }
            }
            Command::Features { reply } => {
                let f = crate::api::ServerFeatures {
                    server: self.session.server_features.clone(),
                    account: self.session.account_features.clone(),
                };
                if reply.send(f).is_err() {
                    tracing::debug!("feature requester went away");
                }
            }
            Command::Shutdown { .. } => {}
        }
    }

    async fn roster_set(
        &mut self,
        jid: BareJid,
        payload: xmpp_parsers::roster::Roster,
        reply: oneshot::Sender<Result<()>>,
        then_subscribe: bool,
    ) {
        if !self.online {
            reply_to(reply, Err(Error::NotConnected(self.rec.jid.clone())));
            return;
        }
        self.send_iq(
            None,
            IqKind::Set,
            payload,
            Pending::RosterSet {
                jid,
                reply: Some(reply),
                then_subscribe,
            },
        )
        .await;
    }

    async fn answer_subscription(&mut self, jid: BareJid, approve: bool) -> Result<()> {
        if !self.online {
            return Err(Error::NotConnected(self.rec.jid.clone()));
        }
        let to = Jid::from(jid.clone());
        if approve {
            self.send_now(Presence::subscribed().with_to(to.clone()))
                .await;
            // Ask for theirs too unless we already have it.
            let has = self
                .store
                .contacts(self.rec.id)
                .map(|cs| {
                    cs.iter().any(|c| {
                        c.jid == jid.as_str()
                            && matches!(
                                c.subscription,
                                crate::store::Subscription::To | crate::store::Subscription::Both
                            )
                    })
                })
                .unwrap_or(false);
            if !has {
                self.send_now(Presence::subscribe().with_to(to)).await;
            }
        } else {
            self.send_now(Presence::new(xmpp_parsers::presence::Type::Unsubscribed).with_to(to))
                .await;
        }
        self.store
            .remove_subscription_request(self.rec.id, jid.as_str())?;
        Ok(())
    }

    /// Sends something that is only meaningful now (chat state, marker): not queued.
    async fn send_ephemeral(&mut self, msg: xmpp_parsers::message::Message) -> Result<()> {
        if !self.online {
            return Err(Error::NotConnected(self.rec.jid.clone()));
        }
        self.send_now(msg).await;
        Ok(())
    }

    /// Sends now and answers once the server has it (acknowledged with stream management,
    /// written without), so a front end that disconnects right after loses nothing.
    async fn send_confirmed(
        &mut self,
        msg: xmpp_parsers::message::Message,
        reply: oneshot::Sender<Result<()>>,
    ) {
        let (true, Some(stream)) = (self.online, self.stream.as_ref()) else {
            return reply_to(reply, Err(Error::NotConnected(self.rec.jid.clone())));
        };
        let mut token = stream.send(Box::new(Stanza::Message(msg))).await;
        let want = if self.sm {
            StanzaStage::Acked
        } else {
            StanzaStage::Sent
        };
        let account = self.rec.jid.clone();
        tokio::spawn(async move {
            let r = match token.wait_for(want).await {
                Some(StanzaState::Acked { .. } | StanzaState::Sent { .. }) => Ok(()),
                _ => Err(Error::NotConnected(account)),
            };
            reply_to(reply, r);
        });
    }

    /// XEP-0352: tells the server whether the front end is in use, when that changed since
    /// this stream last heard (a fresh stream starts active). Only if the server offers it.
    async fn send_client_state(&mut self) {
        use std::sync::atomic::Ordering;
        use tokio_xmpp::xmlstream::ClientState;
        let active = self.client_active.load(Ordering::SeqCst);
        let unchanged = self.csi_sent.unwrap_or(true) == active;
        if !self.online || !self.csi || unchanged {
            return;
        }
        let Some(stream) = self.stream.as_ref() else {
            return;
        };
        let state = if active {
            ClientState::Active(xmpp_parsers::csi::Active)
        } else {
            ClientState::Inactive(xmpp_parsers::csi::Inactive)
        };
        let _token = stream.send_client_state(state).await;
        self.csi_sent = Some(active);
        tracing::debug!(account = %self.rec.jid, active, "client state sent");
    }

    async fn send_now(&mut self, stanza: impl Into<Stanza>) {
        if let Some(stream) = self.stream.as_ref() {
            // Not tracked: the token is dropped, the stream still sends it.
            let _token = stream.send(Box::new(stanza.into())).await;
        }
    }

    async fn send_iq<P>(&mut self, to: Option<Jid>, kind: IqKind, payload: P, pending: Pending)
    where
        P: Into<minidom::Element>,
    {
        let id = new_id();
        let mut iq = match kind {
            IqKind::Get => Iq::Get {
                from: None,
                to: None,
                id: id.clone(),
                payload: payload.into(),
            },
            IqKind::Set => Iq::Set {
                from: None,
                to: None,
                id: id.clone(),
                payload: payload.into(),
            },
        };
        if let Some(to) = &to {
            iq = iq.with_to(to.clone());
        }
        self.iqs.insert(id, to, pending);
        self.send_now(iq).await;
    }
}

#[derive(Debug, Clone, Copy)]
enum IqKind {
    Get,
    Set,
}

fn reply_to(reply: oneshot::Sender<Result<()>>, r: Result<()>) {
    if reply.send(r).is_err() {
        tracing::debug!("command requester went away");
    }
}

/// Answers a pending request that will never get a response.
fn fail_pending(p: Pending, err: Error) {
    match p {
        Pending::RosterSet {
            reply: Some(reply), ..
        } => reply_to(reply, Err(err)),
        Pending::Raw { reply } => reply_raw(reply, Err(err)),
        _ => {}
    }
}

fn reply_raw(
    reply: oneshot::Sender<Result<Option<minidom::Element>>>,
    r: Result<Option<minidom::Element>>,
) {
    if reply.send(r).is_err() {
        tracing::debug!("IQ requester went away");
    }
}
