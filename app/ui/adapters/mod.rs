//! One adapter per exported global: each maps controller rows to Slint structs, fills its
//! global, and forwards the global's callbacks. [`install`] wires them up and starts the
//! event pump that brings core events to the UI thread.

mod avatars;
mod chat;
mod contacts;
mod conversations;
mod feed;
pub mod files;
mod join;
mod keys;
mod profile;
mod room;
mod search;
mod settings;
mod shell;
mod wizard;

use std::rc::Rc;
use std::time::Duration;

use slint::{Color, ComponentHandle as _, ModelRc, SharedString};
use starling_core::store::{
    AccountRecord, ConversationRecord, InvitationRecord, MessageRecord, ProfileRecord,
};
use starling_core::{ConnectionState, Event};
use tokio::sync::broadcast::error::TryRecvError;

use super::controllers::people::{People, PresenceKind};
use super::controllers::prefs::Prefs;
use super::controllers::rooms::Rooms;
use super::controllers::status::Status;
use super::controllers::timeline::Timeline;
use super::{AppWindow, Presence, Rows, Ui, on_ui};

pub use chat::Chat;
pub use feed::FeedUi;
pub use join::Join;
pub use room::RoomUi;

/// Everything the adapters remember (UI thread only).
pub struct State {
    pub accounts: Vec<AccountRecord>,
    pub people: People,
    pub status: Status,
    pub prefs: Prefs,
    pub convs: Vec<(String, ConversationRecord)>,
    pub conv_reload_scheduled: bool,
    pub timeline: Option<Timeline>,
    pub chat: Chat,
    /// Whose encryption keys show.
    pub keys: keys::Keys,
    /// Our state in every room, with their occupants.
    pub rooms: Rooms,
    pub room: RoomUi,
    pub join: Join,
    pub invitations: Vec<(String, InvitationRecord)>,
    pub hits: Vec<(String, MessageRecord)>,
    /// The feed, a profile page's posts, the open post.
    pub feed: FeedUi,
    /// Everyone's pictures (decoded, by avatar id) and the profile fetches.
    pub avatars: avatars::Pictures,
    /// The own-profile form in Settings.
    pub own_profile: settings::OwnProfile,
    /// The profile of the person whose page shows.
    pub person: Option<ProfileRecord>,
    pub status_timer: slint::Timer,
    pub toast_timer: slint::Timer,
    /// Watches whether the window is active (to mark the open conversation read).
    pub activity_timer: slint::Timer,
    pub was_active: bool,
}

impl State {
    pub fn new() -> Self {
        State {
            accounts: Vec::new(),
            people: People::default(),
            status: Status::default(),
            prefs: Prefs::default(),
            convs: Vec::new(),
            conv_reload_scheduled: false,
            timeline: None,
            chat: Chat::default(),
            keys: keys::Keys::default(),
            rooms: Rooms::default(),
            room: RoomUi::default(),
            join: Join::default(),
            invitations: Vec::new(),
            hits: Vec::new(),
            feed: FeedUi::default(),
            avatars: avatars::Pictures::default(),
            own_profile: settings::OwnProfile::default(),
            person: None,
            status_timer: slint::Timer::default(),
            toast_timer: slint::Timer::default(),
            activity_timer: slint::Timer::default(),
            was_active: true,
        }
    }

    /// The open conversation, if any (as soon as it is opened, before its timeline loaded).
    pub fn open_conversation(&self) -> Option<(&str, &str)> {
        self.chat.open_conversation().or_else(|| {
            self.timeline
                .as_ref()
                .map(|t| (t.account.as_str(), t.peer.as_str()))
        })
    }
}

impl Default for State {
    fn default() -> Self {
        Self::new()
    }
}

pub(super) fn install(ui: &Rc<Ui>, w: &AppWindow) {
    shell::install(ui, w);
    conversations::install(ui, w);
    chat::install(ui, w);
    files::install(ui, w);
    keys::install(ui, w);
    room::install(ui, w);
    join::install(ui, w);
    contacts::install(ui, w);
    feed::install(ui, w);
    profile::install(ui, w);
    search::install(ui, w);
    wizard::install(ui, w);
    settings::install(ui, w);
    start_event_pump(ui);
    settings::load_accounts(ui, true);
}

/// Forwards core events to the UI thread in batches (a catch-up of thousands of messages
/// becomes a few hundred UI updates, not thousands).
fn start_event_pump(ui: &Ui) {
    let mut rx = ui.client.events();
    ui.rt.spawn(async move {
        loop {
            let first = match rx.recv().await {
                Ok(ev) => ev,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "UI fell behind the core; reloading views");
                    on_ui(reload_all);
                    continue;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            let mut batch = vec![first];
            while batch.len() < 500 {
                match rx.try_recv() {
                    Ok(ev) => batch.push(ev),
                    Err(TryRecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "UI fell behind the core; reloading views");
                        on_ui(reload_all);
                    }
                    Err(TryRecvError::Empty | TryRecvError::Closed) => break,
                }
            }
            on_ui(move |ui, w| apply_events(ui, w, batch));
        }
    });
}

/// Applies a batch of core events on the UI thread, then rebuilds what they made stale
/// once. This is what the event pump does with every batch (public for the benchmarks).
pub fn apply_events(ui: &Rc<Ui>, w: &AppWindow, batch: Vec<Event>) {
    let mut dirty = Dirty::default();
    for ev in batch {
        dispatch(ui, w, ev, &mut dirty);
    }
    dirty.apply(ui, w);
}

/// Reloads everything from the store (after the UI missed events).
pub fn reload_all(ui: &Rc<Ui>, w: &AppWindow) {
    conversations::schedule_reload(ui);
    conversations::reload_invitations(ui);
    contacts::reload(ui);
    room::reload(ui);
    chat::reopen(ui, w);
    feed::reload(ui);
}

/// Views to rebuild after a batch of events (once per batch, not once per event: a login
/// with 2,000 contacts brings 2,000 presences).
#[derive(Default)]
struct Dirty {
    lists: bool,
    /// Roster names or groups changed (the feed's names and audiences).
    roster: bool,
    status: bool,
    conversations_from_store: bool,
    requests: bool,
    /// The open room's header (occupant count, state).
    room_header: bool,
    /// Stored rooms (names, subjects, removals) changed.
    rooms_from_store: bool,
    invitations: bool,
    /// Someone's picture or nickname changed.
    people: bool,
}

impl Dirty {
    fn apply(self, ui: &Rc<Ui>, w: &AppWindow) {
        if self.status {
            shell::refresh_status(ui, w);
            settings::refresh(ui, w);
        }
        if self.lists {
            conversations::refresh(ui, w);
            contacts::refresh(ui, w);
            chat::refresh_header(ui, w);
        }
        if self.roster {
            feed::refresh_audiences(ui, w);
            feed::refresh_names(ui, w);
        }
        if self.conversations_from_store {
            conversations::schedule_reload(ui);
        }
        if self.requests {
            contacts::reload(ui);
        }
        if self.room_header {
            room::refresh(ui, w);
            chat::refresh_header(ui, w);
        }
        if self.rooms_from_store {
            room::reload(ui);
        }
        if self.invitations {
            conversations::reload_invitations(ui);
        }
        if self.people {
            avatars::refresh_views(ui, w);
        }
    }
}

fn dispatch(ui: &Rc<Ui>, w: &AppWindow, ev: Event, dirty: &mut Dirty) {
    match ev {
        Event::Connection { account, state } => {
            let fresh = matches!(state, ConnectionState::Online { resumed: false });
            if !matches!(state, ConnectionState::Online { .. }) {
                ui.state.borrow_mut().people.clear_presence(&account);
                avatars::on_offline(ui, &account);
            }
            // Out of the rooms for good; while reconnecting, a resumed session (XEP-0198)
            // keeps them, and a fresh one rejoins (each room says "joining" then).
            if matches!(
                state,
                ConnectionState::Offline | ConnectionState::Failed { .. }
            ) {
                room::on_offline(ui, w, &account);
                dirty.room_header = true;
            }
            ui.state
                .borrow_mut()
                .status
                .set_state(&account, state, std::time::Instant::now());
            if fresh {
                contacts::on_online(ui, &account);
                feed::on_connected(ui, w, &account);
                avatars::on_online(ui, &account);
                settings::on_online(ui, w, &account);
                keys::publish_own(ui, &account);
            }
            dirty.status = true;
            dirty.lists = true;
        }
        Event::Message {
            account,
            message,
            live,
        } => {
            conversations::on_message(ui, w, &account, &message, live);
            chat::on_message(ui, w, &account, message, live);
            dirty.conversations_from_store = true;
        }
        Event::MessageUpdated { account, message } => {
            chat::on_update(ui, w, &account, message);
            dirty.conversations_from_store = true;
        }
        Event::ChatState {
            account,
            from,
            state,
        } => chat::on_chat_state(ui, w, &account, &from, &state),
        Event::ConversationRead { .. } => dirty.conversations_from_store = true,
        Event::Presence {
            account,
            from,
            available,
            show,
            status,
        } => {
            ui.state.borrow_mut().people.on_presence(
                &account,
                &from,
                available,
                show.as_deref(),
                status.as_deref(),
            );
            dirty.lists = true;
        }
        Event::RosterItem {
            account,
            contact,
            removed,
        } => {
            {
                let mut st = ui.state.borrow_mut();
                if removed {
                    st.people.remove_contact(&account, &contact.jid);
                } else {
                    st.people.upsert_contact(&account, contact);
                }
            }
            dirty.lists = true;
            dirty.roster = true;
        }
        Event::SubscriptionRequest { .. } => dirty.requests = true,
        // Rooms appear in the conversation list through their conversations; their state,
        // occupants and subject live in the rooms controller.
        Event::Room {
            account,
            room,
            state,
        } => {
            room::on_state(ui, w, &account, &room, &state);
            dirty.conversations_from_store = true;
            dirty.rooms_from_store = true;
            dirty.invitations = true;
        }
        Event::Occupant {
            account,
            room,
            occupant,
            present,
        } => {
            if room::on_occupant(ui, &account, &room, &occupant, present) {
                dirty.room_header = true;
            }
        }
        Event::RoomSubject {
            account,
            room,
            subject,
            ..
        } => {
            ui.state
                .borrow_mut()
                .rooms
                .on_subject(&account, &room, &subject);
            dirty.room_header = true;
        }
        Event::RoomSync {
            account,
            room,
            fetched,
            done,
        } => {
            ui.state
                .borrow_mut()
                .rooms
                .on_sync(&account, &room, fetched, done);
            dirty.room_header = true;
            if done {
                dirty.conversations_from_store = true;
            }
        }
        Event::Invitation { .. } => dirty.invitations = true,
        // The feed's lists follow the core's feed diffs (see `feed::load`); the open post,
        // its comments and a profile page follow these events.
        Event::Post { post, .. } => feed::on_post(ui, w, &post),
        Event::PostRemoved { account, post } => feed::on_post_removed(ui, &account, &post),
        Event::Comment { account, comment } => feed::on_comment(ui, &account, comment),
        Event::CommentRemoved {
            account,
            post_id,
            item_id,
        } => feed::on_comment_removed(ui, &account, post_id, &item_id),
        // Names and pictures everywhere; the open profile page; our own profile's form.
        Event::Profile { account, profile } => {
            if avatars::on_profile(ui, &account, &profile) {
                dirty.people = true;
            }
            profile::on_profile(ui, w, &account, &profile);
            settings::on_profile(ui, w, &account, &profile);
        }
        Event::Bookmarks { .. } => {
            dirty.conversations_from_store = true;
            dirty.rooms_from_store = true;
        }
        Event::SyncProgress { account, fetched } => {
            ui.state
                .borrow_mut()
                .status
                .sync_progress(&account, Some(fetched));
            dirty.status = true;
        }
        Event::SyncDone { account, .. } => {
            ui.state.borrow_mut().status.sync_progress(&account, None);
            dirty.status = true;
            dirty.conversations_from_store = true;
            if shell::window_active(w) {
                chat::read_open_conversation(ui);
            }
        }
        Event::Ignored { account, reason } => {
            tracing::debug!(account, reason, "core ignored a stanza");
        }
        Event::OmemoDevices { account, jid, .. } => keys::on_omemo_devices(ui, &account, &jid),
        Event::OmemoSessionBroken {
            account,
            jid,
            device,
            ..
        } => {
            tracing::info!(account, jid, device, "repairing an OMEMO session");
        }
        Event::EncryptionSkipped {
            account,
            peer,
            devices,
        } => {
            tracing::info!(
                account,
                peer,
                ?devices,
                "encrypted message not sent to some devices"
            );
            chat::on_encryption_skipped(ui, &account, &peer, &devices);
        }
        Event::OtrStatus {
            account,
            peer,
            status,
            ..
        } => {
            tracing::info!(account, peer, ?status, "OTR state changed");
            keys::on_otr_status(ui, &account, &peer);
            chat::on_encryption_changed(ui, &account, &peer);
        }
        Event::OtrSmpQuestion {
            account,
            peer,
            question,
        } => keys::on_smp_question(ui, &account, &peer, question.as_deref()),
        Event::OtrSmpResult {
            account,
            peer,
            verified,
        } => keys::on_smp_result(ui, &account, &peer, verified),
        Event::UploadProgress {
            account,
            message,
            sent,
            total,
            ..
        } => {
            if let Some(id) = message {
                files::on_progress(ui, w, &account, id, sent, Some(total));
            }
        }
        Event::DownloadProgress {
            account,
            message,
            received,
            total,
            ..
        } => {
            if let Some(id) = message {
                files::on_progress(ui, w, &account, id, received, total);
            }
        }
    }
}

// ---- small mapping helpers shared by the adapters ----

pub(crate) fn color((r, g, b): (u8, u8, u8)) -> Color {
    Color::from_rgb_u8(r, g, b)
}

pub(crate) fn presence(p: PresenceKind) -> Presence {
    match p {
        PresenceKind::Offline => Presence::Offline,
        PresenceKind::Online => Presence::Online,
        PresenceKind::Away => Presence::Away,
        PresenceKind::Busy => Presence::Busy,
    }
}

pub(crate) fn model<T: Clone + 'static>(rows: Vec<T>) -> ModelRc<T> {
    ModelRc::new(slint::VecModel::from(rows))
}

pub(crate) fn s(v: impl AsRef<str>) -> SharedString {
    SharedString::from(v.as_ref())
}

/// The JIDs of all accounts, in profile order.
pub(crate) fn account_jids(ui: &Ui) -> Vec<String> {
    ui.state
        .borrow()
        .accounts
        .iter()
        .map(|a| a.jid.clone())
        .collect()
}

/// Shows a short message in the status bar for a few seconds.
pub(crate) fn toast(ui: &Rc<Ui>, w: &AppWindow, text: impl AsRef<str>) {
    use super::Shell;
    w.global::<Shell>().set_toast(s(text));
    let weak = w.as_weak();
    ui.state.borrow().toast_timer.start(
        slint::TimerMode::SingleShot,
        Duration::from_secs(8),
        move || {
            if let Some(w) = weak.upgrade() {
                w.global::<Shell>().set_toast(SharedString::new());
            }
        },
    );
}

/// The timeline model type used by the chat adapter.
pub(crate) type MessageRows = Rows<super::MessageItem>;

/// Opens a conversation (used at start-up by the demo).
pub fn open_conversation(ui: &Rc<Ui>, w: &AppWindow, account: &str, peer: &str) {
    chat::open(ui, w, account, peer);
}
