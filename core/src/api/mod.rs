//! The public face of the core: [`Client`], its [`Event`]s, view types and errors.
//!
//! `Client` is cheap to clone. Each connected account is one actor task (see
//! `account::Actor`) that owns its stream; `Client` talks to it over a command channel and
//! reads/writes the store directly for things that need no network (history, search, queueing
//! an outgoing message into the durable outbox).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::Stream;
use jid::BareJid;
use serde::Serialize;
use tokio::sync::{Mutex, broadcast, mpsc, oneshot};

use crate::account::{self, Command};
use crate::connection::{ConnectError, ConnectionSettings, TlsMode};
use crate::secrets::{self, Password, Secrets};
use crate::store::{
    self, AccountRecord, CommentRecord, ContactRecord, ConversationRecord, InvitationRecord,
    MessageKind, MessageRecord, NewAccount, OutgoingMessage, PostRecord, ProfileRecord, Store,
};

pub use crate::connection::ConnectionInfo;
pub use crate::proto::muc::{Affiliation, Role, RoomConfig, RoomInfo};
pub use crate::services::muc::Occupant;
pub use crate::store::MessageState;

mod files;
mod omemo;
mod otr;
mod profiles;
mod push;
mod rooms;
mod social;
mod upload;
pub use crate::store::{Audience, CircleRecord};
pub use files::DEFAULT_AUTO_DOWNLOAD;
pub use omemo::OmemoDeviceInfo;
pub use otr::OtrInfo;
pub use profiles::ProfileUpdate;
pub use push::{UnifiedPushEvent, UnifiedPushOutcome, WakeReport};
pub use rooms::{AffiliationEntry, MucService, RoomListing, parse_room};
pub use social::{FeedDiff, PostDraft};
pub use upload::{DEFAULT_DOWNLOAD_LIMIT, UploadedFile, human_size, safe_file_name};

/// Errors a front end can explain to a person. Each `Display` is one sentence that says what
/// happened and, where possible, what to do next.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("{0} is not a valid address (expected user@example.org)")]
    InvalidJid(String),
    #[error("no account {0}; add it with `starling account add {0}`")]
    NoSuchAccount(String),
    #[error("account {0} already exists")]
    AccountExists(String),
    #[error("{0} is not connected")]
    NotConnected(String),
    #[error(
        "another Starling process is online with the profile {0}; stop it (or use another --profile) and try again"
    )]
    ProfileBusy(String),
    #[error("the server did not answer in time ({0})")]
    Timeout(&'static str),
    #[error("the server refused: {0}")]
    Refused(String),
    #[error("message {0} has not failed, so there is nothing to retry")]
    NotRetryable(i64),
    #[error("nothing to correct: no message sent to {0} yet")]
    NothingToCorrect(String),
    #[error("you are not in the room {0}; join it first (`starling muc join {0}`)")]
    NotInRoom(String),
    #[error("the room {0} already exists; join it instead")]
    RoomExists(String),
    #[error("cannot join {room}: {reason}")]
    JoinFailed { room: String, reason: String },
    #[error("message {0} cannot be retracted: {1}")]
    CannotRetract(i64, &'static str),
    #[error("password: {0}")]
    Secret(String),
    #[error("local database: {0}")]
    Store(String),
    #[error("a post needs some text")]
    EmptyPost,
    #[error("the post is too long (at most {0} bytes)")]
    PostTooLong(usize),
    #[error(
        "the server would not publish to {audience}: {reason}; nothing was published (it was not \
         made visible to anyone else instead)"
    )]
    PublishRefused { audience: String, reason: String },
    #[error(
        "nobody is in the circle {0}: put contacts in the roster group {0} first (`starling roster add JID --group {0}`)"
    )]
    EmptyCircle(String),
    #[error("no post {0}; `starling blog list` shows the posts we know")]
    NoSuchPost(String),
    #[error("this post does not accept comments (it has no comments node)")]
    NoComments,
    #[error("cannot use this avatar: {0}")]
    Avatar(String),
    #[error("cannot encrypt for {jid}: {reason}")]
    NotEncryptable { jid: String, reason: String },
    #[error("end-to-end encryption: {0}")]
    Omemo(String),
    #[error("{0} is not an OMEMO fingerprint (64 hex digits)")]
    BadFingerprint(String),
    #[error("OTR: {0}")]
    Otr(String),
    #[error("file sharing: {0}")]
    Upload(String),
    #[error("push: {0}")]
    Push(String),
    /// A download is bigger than allowed (or than its message announced).
    #[error("the file is larger than the {} allowed", upload::human_size(*limit))]
    FileTooLarge { limit: u64 },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<store::Error> for Error {
    fn from(e: store::Error) -> Self {
        match e {
            store::Error::NoSuchAccount(j) => Error::NoSuchAccount(j),
            store::Error::AccountExists(j) => Error::AccountExists(j),
            other => Error::Store(other.to_string()),
        }
    }
}

impl From<secrets::Error> for Error {
    fn from(e: secrets::Error) -> Self {
        Error::Secret(e.to_string())
    }
}

/// Connection state of one account, as shown to the user.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ConnectionState {
    Connecting,
    /// Online; `resumed` when an interrupted session was resumed without loss (XEP-0198).
    Online {
        resumed: bool,
    },
    /// Lost the connection; retrying (after `retry_in_secs` if known).
    Reconnecting {
        retry_in_secs: Option<u64>,
        reason: Option<String>,
    },
    /// Stopped because the user must act (wrong password, untrusted certificate…).
    Failed {
        error: String,
        kind: &'static str,
    },
    Offline,
}

/// Everything observable that happens in the core. Serialises as a JSON object with an
/// `event` tag (this is what `starling listen --json` prints).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Connection {
        account: String,
        state: ConnectionState,
    },
    /// A new message in a conversation (incoming, or our own local echo / carbon).
    Message {
        account: String,
        message: MessageRecord,
        /// True when it arrived live (or is our own local echo); false when it came from an
        /// archive catch-up (XEP-0313). Front ends notify only for live messages.
        live: bool,
    },
    /// A stored message changed: delivery state, or its body was corrected.
    MessageUpdated {
        account: String,
        message: MessageRecord,
    },
    ChatState {
        account: String,
        from: String,
        state: String,
    },
    /// The user read a conversation (its unread count is now zero).
    ConversationRead {
        account: String,
        peer: String,
    },
    Presence {
        account: String,
        from: String,
        available: bool,
        show: Option<String>,
        status: Option<String>,
    },
    RosterItem {
        account: String,
        contact: ContactRecord,
        removed: bool,
    },
    SubscriptionRequest {
        account: String,
        from: String,
    },
    /// Archive catch-up progress: messages fetched so far in this catch-up.
    SyncProgress {
        account: String,
        fetched: u64,
    },
    SyncDone {
        account: String,
        fetched: u64,
    },
    /// A stanza was dropped for a security or validity reason (logged, shown in debug views).
    Ignored {
        account: String,
        reason: String,
    },
    /// Our state in a room changed (joining, joined, left, removed, failed).
    Room {
        account: String,
        room: String,
        state: RoomState,
    },
    /// Someone arrived in a room or changed (`present`), or left it.
    Occupant {
        account: String,
        room: String,
        occupant: Occupant,
        present: bool,
    },
    RoomSubject {
        account: String,
        room: String,
        subject: String,
        /// The nick that set it, if any.
        by: Option<String>,
    },
    /// A room's archive catch-up made progress (`done`: finished for this visit).
    RoomSync {
        account: String,
        room: String,
        fetched: u64,
        done: bool,
    },
    /// An invitation to a room arrived.
    Invitation {
        account: String,
        invitation: InvitationRecord,
    },
    /// The bookmark list was synced or changed (another device joined or left a room).
    Bookmarks {
        account: String,
    },
    /// A post arrived, or was edited (`edited`), in the feed.
    Post {
        account: String,
        post: PostRecord,
        edited: bool,
    },
    /// A post was deleted by its author.
    PostRemoved {
        account: String,
        post: PostRecord,
    },
    /// A comment arrived or was edited.
    Comment {
        account: String,
        comment: CommentRecord,
    },
    CommentRemoved {
        account: String,
        post_id: i64,
        item_id: String,
    },
    /// Someone's profile (nickname, name, bio, avatar) changed.
    Profile {
        account: String,
        profile: ProfileRecord,
    },
    /// A contact's (or our own) OMEMO device list changed, as its server announced it: a
    /// list of devices and fingerprints on screen should be read again
    /// ([`Client::omemo_devices`]).
    OmemoDevices {
        account: String,
        jid: String,
        namespace: String,
    },
    /// A message from this OMEMO device could not be decrypted for want of a session (ours
    /// or theirs was lost): a new one is being started with it (an empty key transport
    /// message), so its next messages decrypt.
    OmemoSessionBroken {
        account: String,
        jid: String,
        device: u32,
        namespace: String,
    },
    /// An encrypted message went out, but not to these devices (each with why): the user
    /// should know who cannot read it.
    EncryptionSkipped {
        account: String,
        peer: String,
        devices: Vec<String>,
    },
    /// The private (OTR) conversation with a contact changed state. `fingerprint` is the
    /// contact's OTR key while encrypted (libotr's format), `verified` whether the user
    /// verified it (identity verification or comparing fingerprints).
    OtrStatus {
        account: String,
        peer: String,
        status: crate::crypto::otr::OtrStatus,
        fingerprint: Option<String>,
        verified: bool,
    },
    /// The contact asks us to prove our identity in the private conversation: answer with
    /// [`Client::otr_smp_answer`] (the secret you both know) or decline with
    /// [`Client::otr_smp_abort`].
    OtrSmpQuestion {
        account: String,
        peer: String,
        question: Option<String>,
    },
    /// An upload made progress: `sent` of `total` bytes of the file `name` (of the file
    /// message `message`, when it is one).
    UploadProgress {
        account: String,
        message: Option<i64>,
        name: String,
        sent: u64,
        total: u64,
    },
    /// A download made progress: `received` bytes of the file `name` so far (`total` when
    /// announced), for the file message `message` when it is one.
    DownloadProgress {
        account: String,
        message: Option<i64>,
        name: String,
        received: u64,
        total: Option<u64>,
    },
    /// An identity verification (OTR SMP) ended: `verified` if both gave the same secret
    /// (the contact's key is then marked verified).
    OtrSmpResult {
        account: String,
        peer: String,
        verified: bool,
    },
}

/// Our state in a room, as shown to the user.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RoomState {
    Joining,
    Joined {
        nick: String,
        role: Role,
        affiliation: Affiliation,
    },
    /// We left (on this device or another).
    Left,
    /// The room removed us; `reason` is a sentence for the user.
    Removed {
        reason: String,
    },
    /// Joining failed; `error` says why.
    Failed {
        error: String,
    },
}

/// The result of joining a room.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RoomJoined {
    pub room: String,
    pub nick: String,
    pub role: Role,
    pub affiliation: Affiliation,
    /// We created the room with this join.
    pub created: bool,
    pub occupants: usize,
}

/// How available we are (RFC 6121 `<show/>`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    #[default]
    Online,
    Chat,
    Away,
    ExtendedAway,
    DoNotDisturb,
}

/// Our own presence: availability and an optional status message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OwnPresence {
    pub show: Availability,
    pub status: Option<String>,
}

/// Features (XEP-0030 disco#info) of our server and of our account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServerFeatures {
    pub server: Vec<String>,
    pub account: Vec<String>,
}

/// One available resource of a contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PresenceView {
    /// Full JID.
    pub jid: String,
    pub show: Option<String>,
    pub status: Option<String>,
}

/// A change to a timeline (snapshot + diff; apply in order to the snapshot).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum TimelineDiff {
    /// Append at the end.
    Push { message: MessageRecord },
    /// Replace the item with the same `id`.
    Set { message: MessageRecord },
}

/// A change to a roster (snapshot + diff).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum RosterDiff {
    /// Insert or replace the item with this JID.
    Upsert {
        contact: ContactRecord,
    },
    Remove {
        jid: String,
    },
}

/// How to reach an account's server.
#[derive(Debug, Clone, Default)]
pub struct AccountOptions {
    pub server: Option<(String, u16)>,
    pub tls: TlsMode,
    pub ca_file: Option<PathBuf>,
    /// How far back the first archive sync reaches (days).
    pub first_sync_days: Option<u32>,
}

struct Inner {
    profile_dir: PathBuf,
    store: Store,
    secrets: Secrets,
    events: broadcast::Sender<Event>,
    actors: Mutex<HashMap<String, mpsc::Sender<Command>>>,
    /// Held while this process may go online with the profile's accounts (see
    /// [`Client::connect`]); released when the process ends, however it ends.
    online_lock: std::sync::Mutex<Option<std::fs::File>>,
    /// The last connection state of each account (for views opened later).
    states: std::sync::Mutex<HashMap<String, ConnectionState>>,
    /// Whether the task that records `states` runs.
    watching_states: std::sync::atomic::AtomicBool,
    /// Whether the task that keeps post audiences in line with the roster runs.
    watching_rosters: std::sync::atomic::AtomicBool,
    /// XEP-0410 self-ping interval for quiet rooms, in seconds (shared with every actor).
    room_ping_secs: Arc<std::sync::atomic::AtomicU64>,
    /// Whether the task that repairs broken OMEMO sessions runs.
    watching_omemo: std::sync::atomic::AtomicBool,
    /// Each account's OMEMO device, opened on first use.
    omemo: std::sync::Mutex<HashMap<String, crate::services::omemo::OmemoHandle>>,
    /// Each account's OTR state (its engine starts on first use).
    otr: std::sync::Mutex<HashMap<String, crate::services::otr::OtrHandle>>,
    /// Whether the task that resumes interrupted uploads runs.
    watching_uploads: std::sync::atomic::AtomicBool,
    /// File messages whose upload runs now (never two runs for one message).
    /// With each one's cancel flag.
    uploads_running: std::sync::Mutex<HashMap<i64, Arc<std::sync::atomic::AtomicBool>>>,
    /// Shared files being fetched now (message ids: never two fetches of one file).
    fetches_running: std::sync::Mutex<std::collections::HashSet<i64>>,
    /// Pictures from contacts up to this many bytes are fetched as they arrive (0: none).
    auto_download: std::sync::atomic::AtomicU64,
    /// XEP-0352: the front end is in use (shared with every actor).
    client_active: Arc<std::sync::atomic::AtomicBool>,
}

/// Roster changes are applied to post audiences once they stop coming for this long.
const ROSTER_SETTLE: std::time::Duration = std::time::Duration::from_secs(2);

/// How long a quiet room goes without a self-ping (XEP-0410 suggests minutes, not hours).
const ROOM_PING_SECS: u64 = 300;

/// The handle every front end holds. Clone it freely.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("profile_dir", &self.inner.profile_dir)
            .finish_non_exhaustive()
    }
}

/// The default profile directory (XDG data dir, e.g. `~/.local/share/starling`).
pub fn default_profile_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("im", "Starling", "starling").map(|d| d.data_dir().to_path_buf())
}

/// Parses a bare JID, with an error a person understands.
pub fn parse_bare(s: &str) -> Result<BareJid> {
    let j = BareJid::new(s.trim()).map_err(|_| Error::InvalidJid(s.to_owned()))?;
    if j.node().is_none() {
        return Err(Error::InvalidJid(s.to_owned()));
    }
    Ok(j)
}

/// Parses the JID of a contact (a node is not required: servers and gateways are contacts too).
pub fn parse_contact(s: &str) -> Result<BareJid> {
    BareJid::new(s.trim()).map_err(|_| Error::InvalidJid(s.to_owned()))
}

/// Parses the peer of a conversation: a contact or room (bare JID), or a room occupant
/// (`room@service/nick`) for a private chat.
pub fn parse_peer(s: &str) -> Result<String> {
    let j = jid::Jid::new(s.trim()).map_err(|_| Error::InvalidJid(s.to_owned()))?;
    if j.resource().is_some() && j.node().is_none() {
        return Err(Error::InvalidJid(s.to_owned()));
    }
    Ok(j.to_string())
}

impl Client {
    /// Opens (creating if needed) the profile in `dir`: its database and password store.
    pub fn open(dir: &Path) -> Result<Client> {
        Self::open_with(dir, Secrets::new(dir))
    }

    /// Like [`Client::open`], but passwords stay in the profile's 0600 file and never reach
    /// the OS keyring (demo accounts, throwaway profiles).
    pub fn open_private(dir: &Path) -> Result<Client> {
        Self::open_with(dir, Secrets::file_only(dir))
    }

    /// Like [`Client::open`], with every secret in the profile's file sealed by `key`, which
    /// the platform keeps (Android: the Keystore).
    pub fn open_sealed(dir: &Path, key: secrets::FileKey) -> Result<Client> {
        Self::open_with(dir, Secrets::sealed(dir, key))
    }

    fn open_with(dir: &Path, secrets: Secrets) -> Result<Client> {
        let store = Store::open(&dir.join("starling.sqlite3"))?;
        let (events, _) = broadcast::channel(4096);
        Ok(Client {
            inner: Arc::new(Inner {
                profile_dir: dir.to_path_buf(),
                store,
                secrets,
                events,
                actors: Mutex::new(HashMap::new()),
                online_lock: std::sync::Mutex::new(None),
                states: std::sync::Mutex::new(HashMap::new()),
                watching_states: std::sync::atomic::AtomicBool::new(false),
                watching_rosters: std::sync::atomic::AtomicBool::new(false),
                room_ping_secs: Arc::new(std::sync::atomic::AtomicU64::new(ROOM_PING_SECS)),
                watching_omemo: std::sync::atomic::AtomicBool::new(false),
                omemo: std::sync::Mutex::new(HashMap::new()),
                otr: std::sync::Mutex::new(HashMap::new()),
                watching_uploads: std::sync::atomic::AtomicBool::new(false),
                uploads_running: std::sync::Mutex::new(HashMap::new()),
                fetches_running: std::sync::Mutex::new(Default::default()),
                auto_download: std::sync::atomic::AtomicU64::new(0),
                client_active: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            }),
        })
    }

    pub fn profile_dir(&self) -> &Path {
        &self.inner.profile_dir
    }

    /// The store, for front ends' read-only views and for benchmarks.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Every event from now on.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// Checks the credentials against the server (one login, then disconnect), and only then
    /// stores the account and its password. Nothing is stored when the login fails.
    pub async fn add_account(
        &self,
        jid: &str,
        password: Password,
        opts: AccountOptions,
    ) -> Result<AccountRecord> {
        let bare = parse_bare(jid)?;
        if self.inner.store.account(bare.as_str()).is_ok() {
            return Err(Error::AccountExists(bare.to_string()));
        }
        let settings = ConnectionSettings {
            jid: bare.clone(),
            server: opts.server.clone(),
            tls: opts.tls,
            ca_file: opts.ca_file.clone(),
            dns_server: None,
            pins: crate::connection::LoginPins::default(),
            dnssec_trust_anchor: None,
        };
        let resource = format!("starling.{}", &crate::proto::new_id()[..8]);
        account::check_login(&settings, &resource, &password).await?;
        let rec = self.inner.store.add_account(&NewAccount {
            jid: bare.to_string(),
            resource,
            server_host: opts.server.as_ref().map(|s| s.0.clone()),
            server_port: opts.server.as_ref().map(|s| s.1),
            tls_mode: opts.tls.as_str().to_owned(),
            ca_file: opts.ca_file.as_ref().map(|p| p.display().to_string()),
            first_sync_days: opts.first_sync_days.unwrap_or(30),
        })?;
        // A new account starts without a FAST token, whatever an earlier account of the
        // same JID may have left in the secret store.
        if let Err(e) = self.inner.secrets.delete(&fast_token_key(&rec.jid)).await {
            tracing::warn!(account = %rec.jid, error = %e, "cannot clear an old FAST token");
        }
        if let Err(e) = self.inner.secrets.save(&rec.jid, &password).await {
            // Keep "nothing stored on failure": roll the account back.
            if let Err(e2) = self.inner.store.remove_account(&rec.jid) {
                tracing::error!(error = %e2, "cannot roll back account after password failure");
            }
            return Err(e.into());
        }
        Ok(rec)
    }

    /// Changes how an account reaches its server (takes effect on the next connect).
    pub fn update_server(&self, jid: &str, opts: &AccountOptions) -> Result<()> {
        let rec = self.inner.store.account(parse_bare(jid)?.as_str())?;
        self.inner.store.update_server(
            rec.id,
            opts.server.as_ref().map(|s| (s.0.as_str(), s.1)),
            opts.tls.as_str(),
            opts.ca_file
                .as_ref()
                .map(|p| p.display().to_string())
                .as_deref(),
        )?;
        Ok(())
    }

    pub fn accounts(&self) -> Result<Vec<AccountRecord>> {
        Ok(self.inner.store.accounts()?)
    }

    /// Disconnects and deletes an account with everything stored for it, and its password.
    pub async fn remove_account(&self, jid: &str) -> Result<()> {
        let bare = parse_bare(jid)?;
        // Push off first, while the account can still tell its server and the gateway.
        if let Err(e) = self.disable_push(bare.as_str()).await {
            tracing::warn!(account = %bare, error = %e, "push not disabled");
        }
        self.disconnect(bare.as_str()).await;
        if let Ok(acc) = self.inner.store.account(bare.as_str()) {
            self.invalidate_fast_token(&acc).await;
            for r in self.inner.store.rooms(acc.id)? {
                self.inner
                    .secrets
                    .delete(&rooms::room_secret_key(&acc.jid, &r.jid))
                    .await?;
            }
        }
        self.inner.store.remove_account(bare.as_str())?;
        self.inner
            .secrets
            .delete(&fast_token_key(bare.as_str()))
            .await?;
        self.inner.secrets.delete(bare.as_str()).await?;
        Ok(())
    }

    /// Has the server invalidate the account's FAST token, if it has one (best effort and
    /// bounded in time: the account goes anyway, and its copy of the token with it).
    async fn invalidate_fast_token(&self, rec: &AccountRecord) {
        let Some(token) = self.load_fast_token(&rec.jid).await else {
            return;
        };
        let invalidate = async {
            let settings = account::settings(rec)?;
            let connector = crate::connection::Connector::new(&settings)?;
            let jid = settings
                .jid
                .with_resource_str(&rec.resource)
                .map(jid::Jid::from)
                .unwrap_or_else(|_| jid::Jid::from(settings.jid.clone()));
            Ok::<_, Error>(crate::connection::invalidate_fast_token(&connector, &jid, token).await?)
        };
        match tokio::time::timeout(FAST_INVALIDATE_TIMEOUT, invalidate).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                tracing::debug!(account = %rec.jid, "the server no longer knew the FAST token");
            }
            Ok(Err(e)) => {
                tracing::warn!(account = %rec.jid, error = %e, "FAST token not invalidated on the server");
            }
            Err(_) => {
                tracing::warn!(account = %rec.jid, "FAST token not invalidated: the server took too long");
            }
        }
    }

    /// The account's FAST token (XEP-0484) from the secret store, if it has a readable one.
    async fn load_fast_token(&self, jid: &str) -> Option<crate::connection::FastToken> {
        match self.inner.secrets.load_stored(&fast_token_key(jid)).await {
            Ok(Some(stored)) => match serde_json::from_str(stored.expose()) {
                Ok(token) => Some(token),
                Err(e) => {
                    tracing::warn!(account = %jid, error = %e, "unreadable FAST token; logging in with the password");
                    None
                }
            },
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(account = %jid, error = %e, "cannot read the FAST token; logging in with the password");
                None
            }
        }
    }

    /// The account's FAST token (XEP-0484) from the secret store, and where new ones go.
    async fn fast_token(
        &self,
        jid: &str,
    ) -> (
        Option<crate::connection::FastToken>,
        crate::connection::FastSink,
    ) {
        let token = self.load_fast_token(jid).await;
        let key = fast_token_key(jid);
        let secrets = self.inner.secrets.clone();
        let jid = jid.to_owned();
        let sink: crate::connection::FastSink = Arc::new(move |token| {
            let (secrets, key, jid) = (secrets.clone(), key.clone(), jid.clone());
            Box::pin(async move {
                let result = match token.map(|t| serde_json::to_string(&t)) {
                    Some(Ok(json)) => secrets.save(&key, &Password::new(json)).await.map(|_| ()),
                    Some(Err(e)) => {
                        tracing::warn!(account = %jid, error = %e, "cannot encode the FAST token");
                        Ok(())
                    }
                    None => secrets.delete(&key).await,
                };
                if let Err(e) = result {
                    tracing::warn!(account = %jid, error = %e, "cannot keep the FAST token; the next login uses the password");
                }
            })
        });
        (token, sink)
    }

    /// Starts the account's actor (if not running). Returns at once; watch [`Event::Connection`].
    ///
    /// Only one process at a time may be online with a profile: two would bind the same
    /// resource (and kick each other off the server) and send the same outbox rows twice.
    /// A second process gets [`Error::ProfileBusy`].
    pub async fn connect(&self, jid: &str) -> Result<()> {
        self.start_actor(jid).await.map(|_| ())
    }

    /// [`Client::connect`]; true if this call started the account's actor (false: it ran).
    pub(super) async fn start_actor(&self, jid: &str) -> Result<bool> {
        let rec = self.inner.store.account(parse_bare(jid)?.as_str())?;
        self.lock_profile()?;
        let mut actors = self.inner.actors.lock().await;
        if let Some(tx) = actors.get(&rec.jid)
            && !tx.is_closed()
        {
            return Ok(false);
        }
        let password = self.inner.secrets.load(&rec.jid).await?;
        let (fast_token, on_new_token) = self.fast_token(&rec.jid).await;
        let room_passwords = self.room_passwords(&rec).await?;
        let omemo = self.omemo(&rec).await?;
        let otr = self.otr_handle(&rec);
        self.watch_states();
        let tx = account::spawn(
            rec.clone(),
            account::Credentials {
                password,
                fast_token,
                on_new_token,
            },
            self.inner.store.clone(),
            self.inner.events.clone(),
            room_passwords,
            account::Shared {
                room_ping_secs: self.inner.room_ping_secs.clone(),
                avatars: self.avatar_cache(),
                omemo,
                otr,
                client_active: self.inner.client_active.clone(),
            },
        )?;
        actors.insert(rec.jid, tx);
        self.watch_rosters();
        self.watch_omemo_repairs();
        self.watch_files();
        Ok(true)
    }

    /// Repairs OMEMO sessions the actors report broken ([`Event::OmemoSessionBroken`]).
    fn watch_omemo_repairs(&self) {
        use std::sync::atomic::Ordering;
        if self.inner.watching_omemo.swap(true, Ordering::SeqCst) {
            return;
        }
        let mut rx = self.events();
        let inner = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            // One repair per device per run of the client: a device that keeps failing is
            // not flooded with key exchanges.
            let mut repaired = std::collections::HashSet::new();
            loop {
                let (account, jid, device, namespace) = match rx.recv().await {
                    Ok(Event::OmemoSessionBroken {
                        account,
                        jid,
                        device,
                        namespace,
                    }) => (account, jid, device, namespace),
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                if !repaired.insert((account.clone(), jid.clone(), device, namespace.clone())) {
                    continue;
                }
                let Some(inner) = inner.upgrade() else { return };
                let client = Client { inner };
                if let Err(e) = client
                    .omemo_repair(&account, &jid, device, &namespace)
                    .await
                {
                    tracing::warn!(%account, %jid, device, error = %e, "cannot repair an OMEMO session");
                }
            }
        });
    }

    /// Keeps who may read our contacts-only and circle posts in line with the roster: after
    /// roster changes (a burst is handled once), [`Client::sync_audiences`] runs.
    fn watch_rosters(&self) {
        use std::sync::atomic::Ordering;
        if self.inner.watching_rosters.swap(true, Ordering::SeqCst) {
            return;
        }
        let mut rx = self.events();
        let inner = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                let first = match rx.recv().await {
                    Ok(Event::RosterItem { account, .. }) => account,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                let mut accounts = std::collections::BTreeSet::from([first]);
                let quiet = tokio::time::sleep(ROSTER_SETTLE);
                tokio::pin!(quiet);
                loop {
                    tokio::select! {
                        () = &mut quiet => break,
                        ev = rx.recv() => match ev {
                            Ok(Event::RosterItem { account, .. }) => {
                                accounts.insert(account);
                            }
                            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                            Err(broadcast::error::RecvError::Closed) => return,
                        },
                    }
                }
                let Some(inner) = inner.upgrade() else { return };
                let client = Client { inner };
                for account in accounts {
                    if let Err(e) = client.sync_audiences(&account).await {
                        tracing::warn!(%account, error = %e, "cannot update who may read your posts");
                    }
                }
            }
        });
    }

    /// The account's connection state as last reported ([`ConnectionState::Offline`] when
    /// it was never connected in this process).
    pub fn connection_state(&self, account: &str) -> ConnectionState {
        self.inner
            .states
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(account)
            .cloned()
            .unwrap_or(ConnectionState::Offline)
    }

    /// Starts (once) the task that remembers each account's last connection state. It
    /// subscribes before any actor exists, so no state change is missed, and ends with the
    /// last `Client`.
    fn watch_states(&self) {
        use std::sync::atomic::Ordering;
        if self.inner.watching_states.swap(true, Ordering::SeqCst) {
            return;
        }
        let mut rx = self.events();
        let inner = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(Event::Connection { account, state }) => {
                        let Some(inner) = inner.upgrade() else { return };
                        inner
                            .states
                            .lock()
                            .unwrap_or_else(|poisoned| poisoned.into_inner())
                            .insert(account, state);
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }

    /// Takes the profile's online lock (an OS file lock, so a killed process releases it).
    fn lock_profile(&self) -> Result<()> {
        let mut held = self
            .inner
            .online_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if held.is_some() {
            return Ok(());
        }
        let path = self.inner.profile_dir.join("online.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::Store(format!("cannot open {}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => {
                *held = Some(file);
                Ok(())
            }
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::ProfileBusy(
                self.inner.profile_dir.display().to_string(),
            )),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(Error::Store(format!("cannot lock {}: {e}", path.display())))
            }
        }
    }

    /// Connects every enabled account.
    pub async fn connect_all(&self) -> Result<()> {
        for a in self.accounts()? {
            if a.enabled {
                self.connect(&a.jid).await?;
            }
        }
        Ok(())
    }

    /// Goes offline cleanly (unavailable presence, stream close). Unsent messages stay in the
    /// outbox for next time.
    pub async fn disconnect(&self, jid: &str) {
        let tx = self.inner.actors.lock().await.remove(jid);
        if let Some(tx) = tx {
            let (reply, done) = oneshot::channel();
            if tx.send(Command::Shutdown { reply }).await.is_ok() && done.await.is_err() {
                tracing::debug!(account = jid, "actor ended before confirming shutdown");
            }
        }
    }

    pub async fn disconnect_all(&self) {
        let jids: Vec<String> = self.inner.actors.lock().await.keys().cloned().collect();
        for j in jids {
            self.disconnect(&j).await;
        }
    }

    async fn actor(&self, account: &str) -> Option<mpsc::Sender<Command>> {
        self.inner
            .actors
            .lock()
            .await
            .get(account)
            .filter(|tx| !tx.is_closed())
            .cloned()
    }

    /// Nudges the actor to send what is in the outbox (no-op when the account is offline:
    /// it is sent on the next connection).
    pub(crate) async fn flush(&self, account: &str) {
        if let Some(tx) = self.actor(account).await
            && tx.send(Command::Flush).await.is_err()
        {
            tracing::debug!(account, "actor gone; outbox is sent on next connect");
        }
    }

    /// Queues a chat message. When this returns the message is committed to the database
    /// (state `pending`); it becomes `sent` when the server acknowledges it.
    ///
    /// In a conversation whose encryption is on, the message is encrypted
    /// ([`Client::send_encrypted`]) or not sent at all: never plaintext by accident.
    pub async fn send_message(&self, account: &str, to: &str, body: &str) -> Result<MessageRecord> {
        let acc = self.inner.store.account(parse_bare(account)?.as_str())?;
        let peer = parse_contact(to)?;
        match self
            .inner
            .store
            .conversation_encryption(acc.id, peer.as_str())?
            .as_deref()
        {
            Some("omemo") => return self.send_encrypted(account, to, body).await,
            Some("otr") => return self.send_otr(&acc, &peer, body).await,
            Some(other) => {
                return Err(Error::NotEncryptable {
                    jid: peer.to_string(),
                    reason: format!("the conversation is set to {other}, which cannot send here"),
                });
            }
            None => {}
        }
        let id = crate::proto::new_id();
        let stanza = crate::services::chat::message_stanza(&peer, &id, body, None);
        self.queue(
            &acc,
            OutgoingMessage {
                encryption: None,
                peer: peer.to_string(),
                kind: MessageKind::Chat,
                sender: format!("{}/{}", acc.jid, acc.resource),
                id,
                body: body.to_owned(),
                stanza,
            },
        )
        .await
    }

    /// Corrects our last message to `to` (XEP-0308).
    pub async fn correct_last_message(
        &self,
        account: &str,
        to: &str,
        body: &str,
    ) -> Result<MessageRecord> {
        let acc = self.inner.store.account(parse_bare(account)?.as_str())?;
        let peer = parse_peer(to)?;
        let last = self
            .inner
            .store
            .last_outgoing(acc.id, &peer)?
            .filter(|m| !m.retracted)
            .ok_or_else(|| Error::NothingToCorrect(peer.clone()))?;
        let original = last
            .stanza_id
            .clone()
            .or(last.origin_id.clone())
            .ok_or_else(|| Error::NothingToCorrect(peer.clone()))?;
        if last.encryption.is_some()
            || self
                .inner
                .store
                .conversation_encryption(acc.id, &peer)?
                .is_some()
        {
            // A correction carries the new text: it would go out unencrypted.
            return Err(Error::NotEncryptable {
                jid: peer,
                reason: "corrections are not encrypted yet, so they are not sent in an \
                         encrypted conversation: send the corrected text as a new message"
                    .into(),
            });
        }
        let id = crate::proto::new_id();
        let stanza = rooms::stanza_for(last.kind, &peer, &id, body, Some(&original))?;
        let (rec, _) = self
            .inner
            .store
            .queue_correction(acc.id, &peer, &original, &id, body, &stanza)?;
        self.emit(Event::MessageUpdated {
            account: acc.jid.clone(),
            message: rec.clone(),
        });
        self.flush(&acc.jid).await;
        Ok(rec)
    }

    /// Sends a chat state (XEP-0085) if online; chat states are never queued.
    pub async fn send_chat_state(
        &self,
        account: &str,
        to: &str,
        state: ChatStateKind,
    ) -> Result<()> {
        let peer = parse_contact(to)?;
        self.command(account, |reply| Command::ChatState {
            to: peer,
            state,
            reply,
        })
        .await
    }

    /// The user has seen the conversation: its unread count drops to zero, and the peer is
    /// told (XEP-0333 displayed marker) when we are online.
    pub async fn mark_read(&self, account: &str, peer: &str) -> Result<()> {
        let acc = self.inner.store.account(parse_bare(account)?.as_str())?;
        let peer = parse_peer(peer)?;
        self.inner.store.mark_read(acc.id, &peer)?;
        self.emit(Event::ConversationRead {
            account: acc.jid.clone(),
            peer: peer.clone(),
        });
        // Markers only in 1:1 chats: in rooms they would tell everyone what we read.
        let Some(id) = self
            .inner
            .store
            .last_incoming(acc.id, &peer)?
            .filter(|m| m.kind == MessageKind::Chat)
            .and_then(|m| m.stanza_id)
        else {
            return Ok(());
        };
        let peer = parse_contact(&peer)?;
        match self
            .command(&acc.jid, |reply| Command::Displayed {
                to: peer,
                id,
                reply,
            })
            .await
        {
            Err(Error::NotConnected(_)) => {
                tracing::debug!("offline: read locally, no displayed marker sent");
                Ok(())
            }
            other => other,
        }
    }

    /// Adds (or renames/regroups) a contact and asks for their presence.
    pub async fn add_contact(
        &self,
        account: &str,
        jid: &str,
        name: Option<String>,
        groups: Vec<String>,
    ) -> Result<()> {
        let peer = parse_contact(jid)?;
        self.command(account, |reply| Command::RosterSet {
            jid: peer,
            name,
            groups,
            subscribe: true,
            reply,
        })
        .await
    }

    /// Renames a contact (keeps subscriptions).
    pub async fn rename_contact(&self, account: &str, jid: &str, name: String) -> Result<()> {
        let acc = self.inner.store.account(parse_bare(account)?.as_str())?;
        let peer = parse_contact(jid)?;
        let groups = self
            .inner
            .store
            .contacts(acc.id)?
            .into_iter()
            .find(|c| c.jid == peer.as_str())
            .map(|c| c.groups)
            .unwrap_or_default();
        self.command(&acc.jid, |reply| Command::RosterSet {
            jid: peer,
            name: Some(name),
            groups,
            subscribe: false,
            reply,
        })
        .await
    }

    pub async fn remove_contact(&self, account: &str, jid: &str) -> Result<()> {
        let peer = parse_contact(jid)?;
        self.command(account, |reply| Command::RosterRemove { jid: peer, reply })
            .await
    }

    /// Approves a subscription request (and asks for theirs in return).
    pub async fn approve_subscription(&self, account: &str, jid: &str) -> Result<()> {
        let peer = parse_contact(jid)?;
        self.command(account, |reply| Command::Subscription {
            jid: peer,
            approve: true,
            reply,
        })
        .await
    }

    pub async fn deny_subscription(&self, account: &str, jid: &str) -> Result<()> {
        let peer = parse_contact(jid)?;
        self.command(account, |reply| Command::Subscription {
            jid: peer,
            approve: false,
            reply,
        })
        .await
    }

    pub(crate) async fn command(
        &self,
        account: &str,
        make: impl FnOnce(oneshot::Sender<Result<()>>) -> Command,
    ) -> Result<()> {
        self.query(account, make).await?
    }

    /// How the account's connection is secured (TLS, DANE, login), once it has logged in.
    pub async fn connection_info(&self, account: &str) -> Result<Option<ConnectionInfo>> {
        self.query(account, |reply| Command::ConnectionInfo { reply })
            .await
    }

    /// What our server and account support, as discovered this session.
    pub async fn server_features(&self, account: &str) -> Result<ServerFeatures> {
        self.query(account, |reply| Command::Features { reply })
            .await
    }

    /// Sets our presence on an account; it is sent now and after every reconnect.
    pub async fn set_presence(&self, account: &str, presence: OwnPresence) -> Result<()> {
        self.command(account, |reply| Command::SetPresence { presence, reply })
            .await
    }

    /// Who of our contacts is online right now.
    pub async fn presences(&self, account: &str) -> Result<Vec<PresenceView>> {
        self.query(account, |reply| Command::Presences { reply })
            .await
    }

    /// Asks the account's actor for session state.
    pub(crate) async fn query<T>(
        &self,
        account: &str,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T> {
        let account = parse_bare(account)?.to_string();
        let tx = self
            .actor(&account)
            .await
            .ok_or_else(|| Error::NotConnected(account.clone()))?;
        let (reply, rx) = oneshot::channel();
        tx.send(make(reply))
            .await
            .map_err(|_| Error::NotConnected(account.clone()))?;
        rx.await.map_err(|_| Error::NotConnected(account))
    }

    pub fn contacts(&self, account: &str) -> Result<Vec<ContactRecord>> {
        let acc = self.inner.store.account(parse_bare(account)?.as_str())?;
        Ok(self.inner.store.contacts(acc.id)?)
    }

    pub fn subscription_requests(&self, account: &str) -> Result<Vec<String>> {
        let acc = self.inner.store.account(parse_bare(account)?.as_str())?;
        Ok(self.inner.store.subscription_requests(acc.id)?)
    }

    pub fn conversations(&self, account: &str) -> Result<Vec<ConversationRecord>> {
        let acc = self.inner.store.account(parse_bare(account)?.as_str())?;
        Ok(self.inner.store.conversations(acc.id)?)
    }

    /// The newest `limit` messages with `peer`, oldest first.
    pub fn history(&self, account: &str, peer: &str, limit: u32) -> Result<Vec<MessageRecord>> {
        self.history_page(account, peer, None, limit)
    }

    /// One page of a timeline, oldest first: the `limit` messages before message `before`
    /// (or the newest ones). For views that load older pages as the user scrolls.
    pub fn history_page(
        &self,
        account: &str,
        peer: &str,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<MessageRecord>> {
        let acc = self.inner.store.account(parse_bare(account)?.as_str())?;
        let peer = parse_peer(peer)?;
        Ok(self.inner.store.history(acc.id, &peer, limit, before)?)
    }

    /// One page below message `after` (oldest first), for a view that was opened in the
    /// middle of a timeline (a search hit) and is scrolled towards the present.
    pub fn history_after(
        &self,
        account: &str,
        peer: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<MessageRecord>> {
        let acc = self.inner.store.account(parse_bare(account)?.as_str())?;
        let peer = parse_peer(peer)?;
        Ok(self
            .inner
            .store
            .history_after(acc.id, &peer, after, limit)?)
    }

    /// How far back (days) an account's first archive sync reaches; used by the next
    /// catch-up that starts without a stored archive position.
    pub fn set_first_sync_days(&self, account: &str, days: u32) -> Result<()> {
        let acc = self.inner.store.account(parse_bare(account)?.as_str())?;
        Ok(self.inner.store.set_first_sync_days(acc.id, days)?)
    }

    /// Sends a failed message again (same id, so a peer that got it anyway can tell).
    pub async fn retry_message(&self, account: &str, message_id: i64) -> Result<MessageRecord> {
        let acc = self.inner.store.account(parse_bare(account)?.as_str())?;
        let mut encrypted = None;
        let rec = self
            .inner
            .store
            .requeue_failed(acc.id, message_id, |m| {
                if m.encryption.is_some() {
                    // Its stanza would be rebuilt from the stored plaintext.
                    encrypted = Some(m.peer.clone());
                    return None;
                }
                let id = m.stanza_id.clone()?;
                rooms::stanza_for(m.kind, &m.peer, &id, &m.body, None).ok()
            })?
            .ok_or(Error::NotRetryable(message_id))
            .map_err(|e| match encrypted {
                Some(jid) => Error::NotEncryptable {
                    jid,
                    reason: "a failed encrypted message is not resent as it was (its \
                             encryption is used up): send the text again"
                        .into(),
                },
                None => e,
            })?;
        self.emit(Event::MessageUpdated {
            account: acc.jid.clone(),
            message: rec.clone(),
        });
        self.flush(&acc.jid).await;
        Ok(rec)
    }

    pub fn search(&self, account: &str, text: &str, limit: u32) -> Result<Vec<MessageRecord>> {
        let acc = self.inner.store.account(parse_bare(account)?.as_str())?;
        Ok(self.inner.store.search(acc.id, text, limit)?)
    }

    /// A conversation's timeline as a snapshot plus a stream of diffs.
    pub fn timeline(
        &self,
        account: &str,
        peer: &str,
        limit: u32,
    ) -> Result<(
        Vec<MessageRecord>,
        impl Stream<Item = TimelineDiff> + Send + 'static,
    )> {
        let account = parse_bare(account)?.to_string();
        let peer = parse_peer(peer)?;
        // Subscribe before reading the snapshot so nothing falls between the two.
        let rx = self.events();
        let snapshot = self.history(&account, &peer, limit)?;
        let diffs = event_stream(rx).filter_map(move |ev| {
            let out = match ev {
                Event::Message {
                    account: a,
                    message,
                    ..
                } if a == account && message.peer == peer => Some(TimelineDiff::Push { message }),
                Event::MessageUpdated {
                    account: a,
                    message,
                } if a == account && message.peer == peer => Some(TimelineDiff::Set { message }),
                _ => None,
            };
            futures::future::ready(out)
        });
        Ok((snapshot, diffs))
    }

    /// The roster as a snapshot plus a stream of diffs.
    pub fn roster(
        &self,
        account: &str,
    ) -> Result<(
        Vec<ContactRecord>,
        impl Stream<Item = RosterDiff> + Send + 'static,
    )> {
        let account = parse_bare(account)?.to_string();
        let rx = self.events();
        let snapshot = self.contacts(&account)?;
        let diffs = event_stream(rx).filter_map(move |ev| {
            let out = match ev {
                Event::RosterItem {
                    account: a,
                    contact,
                    removed,
                } if a == account => Some(if removed {
                    RosterDiff::Remove { jid: contact.jid }
                } else {
                    RosterDiff::Upsert { contact }
                }),
                _ => None,
            };
            futures::future::ready(out)
        });
        Ok((snapshot, diffs))
    }

    pub(crate) fn emit(&self, ev: Event) {
        if self.inner.events.send(ev).is_err() {
            tracing::trace!("no event subscribers");
        }
    }
}

use futures::StreamExt as _;

/// Turns a broadcast receiver into a stream; a lagging subscriber skips what it missed
/// (logged) rather than failing.
fn event_stream(rx: broadcast::Receiver<Event>) -> impl Stream<Item = Event> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(ev) => return Some((ev, rx)),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "event subscriber lagged; reload the view");
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

/// XEP-0085 chat states a front end may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatStateKind {
    Active,
    Composing,
    Paused,
    Inactive,
    Gone,
}

/// How long removing an account waits for its server to invalidate the FAST token.
const FAST_INVALIDATE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The secret-store key of an account's FAST token.
fn fast_token_key(jid: &str) -> String {
    format!("fast-token:{jid}")
}
