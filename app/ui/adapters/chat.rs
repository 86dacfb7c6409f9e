//! `ChatAdapter`: the open conversation — timeline paging, sending (and why a message was
//! not sent), corrections, retries, chat states, links, and the conversation's end-to-end
//! encryption: the composer's lock, encrypted and undecryptable messages, and notices about
//! devices a message could not be encrypted for.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use slint::{ComponentHandle as _, ModelRc};
use starling_core::ChatStateKind;
use starling_core::store::{Encryption, MessageRecord};

use super::{MessageRows, color, presence, s, toast};
use crate::ui::controllers::encryption::{self, Lock, LockClick};
use crate::ui::controllers::format;
use crate::ui::controllers::rooms::{self, ConvKind};
use crate::ui::controllers::timeline::{
    self, Change, LocalNotice, MessageRow, PAGE, Retraction, Timeline,
};
use crate::ui::{
    AppWindow, ChatAdapter, ConversationKind, Delivery, MessageActions, MessageItem, Pane,
    Retraction as RetractionItem, Shell, Ui, background, blocking,
};

/// The chat adapter's own state.
#[derive(Default)]
pub struct Chat {
    /// The conversation the view shows (account, peer): set as soon as it is opened, before
    /// its timeline has loaded, so what the user types goes where they look.
    open: Option<(String, String)>,
    pub(super) rows: Rc<MessageRows>,
    /// We told the peer we are composing.
    composing: bool,
    paused_timer: Option<slint::Timer>,
    /// The open chat's encryption, as the lock shows it.
    lock: Lock,
    /// This session's notices per conversation (account, peer), shown again when the
    /// conversation is reopened.
    notices: HashMap<(String, String), Vec<LocalNotice>>,
    /// Pictures and progress of file messages.
    pub files: super::files::Files,
}

/// Notices kept per conversation (the newest).
const NOTICES_KEPT: usize = 20;

pub(super) fn install(ui: &Rc<Ui>, w: &AppWindow) {
    let g = w.global::<ChatAdapter>();
    g.set_messages(ModelRc::from(ui.state.borrow().chat.rows.clone()));

    let (u, weak) = (ui.clone(), w.as_weak());
    g.on_send(move |text| {
        if let Some(w) = weak.upgrade() {
            send(&u, &w, text.to_string());
        }
    });
    let (u, weak) = (ui.clone(), w.as_weak());
    g.on_draft_edited(move |text| {
        if let Some(w) = weak.upgrade() {
            draft_edited(&u, &w, text.is_empty());
        }
    });
    let (u, weak) = (ui.clone(), w.as_weak());
    g.on_edit_last(move || {
        if let Some(w) = weak.upgrade() {
            let st = u.state.borrow();
            if let Some(text) = st.timeline.as_ref().and_then(Timeline::last_outgoing_text) {
                let g = w.global::<ChatAdapter>();
                g.set_draft(s(text));
                g.set_correcting(true);
            }
        }
    });
    let weak = w.as_weak();
    g.on_cancel_correction(move || {
        if let Some(w) = weak.upgrade() {
            let g = w.global::<ChatAdapter>();
            g.set_correcting(false);
            g.set_draft(Default::default());
        }
    });
    let u = ui.clone();
    g.on_retry(move |id| {
        let Some((account, _)) = current(&u) else {
            return;
        };
        background(
            &u,
            {
                let client = u.client.clone();
                async move { client.retry_message(&account, i64::from(id)).await }
            },
            |ui, w, r| {
                if let Err(e) = r {
                    toast(ui, w, format!("Cannot retry: {e}"));
                }
            },
        );
    });
    let u = ui.clone();
    g.on_actions_for(move |id| {
        let st = u.state.borrow();
        let moderator = st
            .open_conversation()
            .and_then(|(a, p)| st.rooms.get(a, p))
            .is_some_and(|v| v.can_moderate());
        let a = st
            .timeline
            .as_ref()
            .map(|t| t.actions(i64::from(id), moderator))
            .unwrap_or_default();
        MessageActions {
            copy: a.copy,
            retract: a.retract,
            remove: a.remove,
        }
    });
    let u = ui.clone();
    g.on_retract(move |id| {
        let Some((account, _)) = current(&u) else {
            return;
        };
        let client = u.client.clone();
        background(
            &u,
            async move { client.retract_message(&account, i64::from(id)).await },
            |ui, w, r| {
                if let Err(e) = r {
                    toast(ui, w, format!("Cannot retract: {}", rooms::explain(&e)));
                }
            },
        );
    });
    let u = ui.clone();
    g.on_remove_message(move |id, reason| {
        let Some((account, _)) = current(&u) else {
            return;
        };
        let client = u.client.clone();
        let reason = rooms::reason(&reason);
        background(
            &u,
            async move {
                client
                    .moderate_message(&account, i64::from(id), reason.as_deref())
                    .await
            },
            |ui, w, r| {
                if let Err(e) = r {
                    toast(
                        ui,
                        w,
                        format!("Cannot remove the message: {}", rooms::explain(&e)),
                    );
                }
            },
        );
    });
    let u = ui.clone();
    g.on_load_older(move || load_older(&u));
    let u = ui.clone();
    g.on_load_newer(move || load_newer(&u));
    let (u, weak) = (ui.clone(), w.as_weak());
    g.on_jump_to_newest(move || {
        if let Some(w) = weak.upgrade()
            && let Some((a, p)) = current(&u)
        {
            open(&u, &w, &a, &p);
        }
    });
    g.on_open_link(|url| open_link(&url));
    let (u, weak) = (ui.clone(), w.as_weak());
    g.on_toggle_encryption(move || {
        let (Some(w), Some((account, peer))) = (weak.upgrade(), current(&u)) else {
            return;
        };
        let lock = u.state.borrow().chat.lock;
        match encryption::on_lock_clicked(kind_of(&u, &account, &peer), lock) {
            LockClick::Nothing => {}
            LockClick::TurnOn => set_encryption(&u, account, peer, true),
            LockClick::ConfirmOff => w.global::<ChatAdapter>().set_confirm_unencrypted(true),
        }
    });
    let (u, weak) = (ui.clone(), w.as_weak());
    g.on_turn_encryption_off(move || {
        let Some(w) = weak.upgrade() else { return };
        w.global::<ChatAdapter>().set_confirm_unencrypted(false);
        // Only ever from the confirmation, which only a lock that is on opens.
        let lock = u.state.borrow().chat.lock;
        if let (true, Some((account, peer))) = (lock.is_on(), current(&u)) {
            if lock == Lock::On(Encryption::Otr) {
                end_otr(&u, account, peer);
            } else {
                set_encryption(&u, account, peer, false);
            }
        }
    });
}

impl Chat {
    /// The conversation the view shows.
    pub fn open_conversation(&self) -> Option<(&str, &str)> {
        self.open.as_ref().map(|(a, p)| (a.as_str(), p.as_str()))
    }

    /// No conversation is shown any more.
    pub fn close(&mut self) {
        self.open = None;
    }

    /// The open conversation's encryption ("OMEMO"), if it is on.
    pub fn encryption_name(&self) -> Option<String> {
        match self.lock {
            Lock::On(e) => Some(encryption::encryption_name(e).to_owned()),
            _ => None,
        }
    }
}

fn is_current(ui: &Ui, account: &str, peer: &str) -> bool {
    ui.state.borrow().open_conversation() == Some((account, peer))
}

fn current(ui: &Ui) -> Option<(String, String)> {
    ui.state
        .borrow()
        .open_conversation()
        .map(|(a, p)| (a.to_owned(), p.to_owned()))
}

/// Opens a conversation at its newest messages.
pub(crate) fn open(ui: &Rc<Ui>, w: &AppWindow, account: &str, peer: &str) {
    let (account, peer) = (account.to_owned(), peer.to_owned());
    prepare_header(ui, w, &account, &peer);
    let (a, p) = (account.clone(), peer.clone());
    blocking(
        ui,
        move |client| client.history(&a, &p, PAGE),
        move |ui, w, page| match page {
            // Another conversation was opened meanwhile: this page is not wanted any more.
            _ if !is_current(ui, &account, &peer) => {}
            Ok(page) => {
                let today = chrono::Local::now().date_naive();
                show(ui, w, Timeline::at_end(&account, &peer, page, today), None);
                mark_read(ui, &account, &peer);
            }
            Err(e) => toast(ui, w, format!("Cannot open the conversation: {e}")),
        },
    );
}

/// Opens a conversation around a message (a search hit), highlighted.
pub(crate) fn open_at(ui: &Rc<Ui>, w: &AppWindow, account: &str, hit: MessageRecord) {
    let (account, peer) = (account.to_owned(), hit.peer.clone());
    prepare_header(ui, w, &account, &peer);
    let (a, p, id) = (account.clone(), peer.clone(), hit.id);
    blocking(
        ui,
        move |client| {
            let older = client.history_page(&a, &p, Some(id), PAGE)?;
            let newer = client.history_after(&a, &p, id, PAGE)?;
            Ok::<_, starling_core::Error>((older, newer))
        },
        move |ui, w, r| match r {
            _ if !is_current(ui, &account, &peer) => {}
            Ok((older, newer)) => {
                let today = chrono::Local::now().date_naive();
                let t = Timeline::around(&account, &peer, older, hit, newer, today);
                let row = t.highlight.and_then(|id| t.index_of(id));
                show(ui, w, t, row);
            }
            Err(e) => toast(ui, w, format!("Cannot open the conversation: {e}")),
        },
    );
}

/// Reloads the open conversation (after missed events).
pub(super) fn reopen(ui: &Rc<Ui>, w: &AppWindow) {
    if let Some((a, p)) = current(ui) {
        open(ui, w, &a, &p);
    }
}

/// What kind of conversation `peer` is: a room we know, a private chat with an occupant
/// (`room@service/nick`), or a chat.
pub(super) fn kind_of(ui: &Ui, account: &str, peer: &str) -> ConvKind {
    let st = ui.state.borrow();
    if st.rooms.contains(account, peer) {
        return ConvKind::Room;
    }
    st.convs
        .iter()
        .find(|(a, c)| a == account && c.peer == peer)
        .map_or_else(
            || ConvKind::of("", peer),
            |(_, c)| ConvKind::of(&c.kind, peer),
        )
}

fn kind_item(kind: ConvKind) -> ConversationKind {
    match kind {
        ConvKind::Chat => ConversationKind::Chat,
        ConvKind::Room => ConversationKind::Room,
        ConvKind::Private => ConversationKind::Private,
    }
}

fn prepare_header(ui: &Rc<Ui>, w: &AppWindow, account: &str, peer: &str) {
    w.global::<Shell>().set_pane(Pane::Chats);
    let kind = kind_of(ui, account, peer);
    let g = w.global::<ChatAdapter>();
    g.set_kind(kind_item(kind));
    match kind {
        ConvKind::Room => super::room::show(ui, w, account, peer),
        ConvKind::Chat | ConvKind::Private => super::room::hide(ui),
    }
    if current(ui).as_ref().map(|(a, p)| (a.as_str(), p.as_str())) != Some((account, peer)) {
        g.set_draft(Default::default());
        g.set_correcting(false);
        g.set_typing(Default::default());
        g.set_send_error(Default::default());
        g.set_confirm_unencrypted(false);
        ui.state.borrow_mut().chat.composing = false;
        show_lock(ui, w, Lock::Unknown);
    }
    ui.state.borrow_mut().chat.open = Some((account.to_owned(), peer.to_owned()));
    g.set_account(s(account));
    g.set_peer(s(peer));
    g.set_is_open(true);
    g.set_loading(true);
    refresh_header_for(ui, w, account, peer);
    if encryption::has_lock(kind) {
        load_encryption(ui, account, peer);
    }
}

fn show(ui: &Rc<Ui>, w: &AppWindow, mut t: Timeline, scroll_to: Option<usize>) {
    t.nick = ui
        .state
        .borrow()
        .rooms
        .own_nick(&t.account, &t.peer)
        .map(str::to_owned);
    // This session's notices about the conversation, where they belong.
    let notices = ui
        .state
        .borrow()
        .chat
        .notices
        .get(&(t.account.clone(), t.peer.clone()))
        .cloned()
        .unwrap_or_default();
    for n in &notices {
        t.add_notice(n);
    }
    let g = w.global::<ChatAdapter>();
    let rows: Vec<MessageItem> = {
        let st = ui.state.borrow();
        t.rows()
            .into_iter()
            .map(|r| item(r, &st.chat.files, &t.account))
            .collect()
    };
    g.set_has_older(t.has_older);
    g.set_at_live_end(t.at_live_end);
    g.set_loading(false);
    let (account, peer) = (t.account.clone(), t.peer.clone());
    let rows_model = {
        let mut st = ui.state.borrow_mut();
        st.timeline = Some(t);
        st.chat.rows.clone()
    };
    rows_model.reset(rows);
    super::files::want_thumbnails(ui);
    match scroll_to {
        Some(row) => {
            g.set_scroll_to_row(i32::try_from(row).unwrap_or(0));
            g.set_scroll_to_row_serial(g.get_scroll_to_row_serial().wrapping_add(1));
        }
        None => g.set_scroll_to_end_serial(g.get_scroll_to_end_serial().wrapping_add(1)),
    }
    refresh_header_for(ui, w, &account, &peer);
    super::conversations::refresh(ui, w);
}

pub(super) fn refresh_header(ui: &Rc<Ui>, w: &AppWindow) {
    if let Some((a, p)) = current(ui) {
        refresh_header_for(ui, w, &a, &p);
    }
}

fn refresh_header_for(ui: &Rc<Ui>, w: &AppWindow, account: &str, peer: &str) {
    let kind = kind_of(ui, account, peer);
    if kind_item(kind) != w.global::<ChatAdapter>().get_kind() {
        // Opened before the rooms were loaded (at start-up): it turns out to be a room.
        // Open it again as what it is.
        open(ui, w, account, peer);
        return;
    }
    match kind {
        ConvKind::Chat => {}
        ConvKind::Room => {
            let h = ui.state.borrow().rooms.header(account, peer);
            let g = w.global::<ChatAdapter>();
            g.set_initials(s(format::initials(&h.title)));
            g.set_tint(color(format::tint(peer)));
            g.set_picture(Default::default());
            g.set_presence(crate::ui::Presence::Offline);
            g.set_title(s(&h.title));
            g.set_subtitle(s(&h.subtitle));
            return;
        }
        ConvKind::Private => {
            let (room, nick) = rooms::split_occupant(peer).unwrap_or((peer, ""));
            let room_name = ui.state.borrow().rooms.name_of(account, room);
            let g = w.global::<ChatAdapter>();
            g.set_initials(s(format::initials(nick)));
            g.set_tint(color(format::tint(peer)));
            g.set_picture(Default::default());
            g.set_presence(crate::ui::Presence::Offline);
            g.set_title(s(nick));
            g.set_subtitle(s(format!("Private conversation in {room_name} ({room})")));
            return;
        }
    }
    let st = ui.state.borrow();
    let name = st.people.name_of(account, peer);
    let (p, status) = st.people.presence_of(account, peer);
    let g = w.global::<ChatAdapter>();
    g.set_initials(s(format::initials(&name)));
    g.set_tint(color(format::tint(peer)));
    g.set_picture(super::avatars::picture(&st, account, peer));
    g.set_presence(presence(p));
    let subtitle = match (name == peer, status.is_empty()) {
        (true, true) => String::new(),
        (true, false) => status,
        (false, true) => peer.to_owned(),
        (false, false) => format!("{peer} · {status}"),
    };
    g.set_title(s(&name));
    g.set_subtitle(s(subtitle));
    drop(st);
    super::avatars::want(ui, vec![(account.to_owned(), peer.to_owned())]);
}

fn item(r: MessageRow, files: &super::files::Files, account: &str) -> MessageItem {
    let mut item = plain_item(r);
    files.decorate(account, &mut item);
    item
}

fn plain_item(r: MessageRow) -> MessageItem {
    let file = r.file.clone().unwrap_or_else(|| timeline::FileRow {
        name: String::new(),
        size: String::new(),
        image: false,
        local: false,
        uploading: false,
        error: String::new(),
        aspect: 0.0,
    });
    let body = slint::StyledText::from_markdown(&r.markdown)
        .unwrap_or_else(|_| slint::StyledText::from_plain_text(&r.text));
    MessageItem {
        id: i32::try_from(r.id).unwrap_or(i32::MAX),
        outgoing: r.outgoing,
        body,
        text: s(&r.text),
        time: s(&r.time),
        day: s(&r.day),
        delivery: match r.delivery {
            timeline::Delivery::None => Delivery::None,
            timeline::Delivery::Pending => Delivery::Pending,
            timeline::Delivery::Sent => Delivery::Sent,
            timeline::Delivery::Delivered => Delivery::Delivered,
            timeline::Delivery::Displayed => Delivery::Displayed,
            timeline::Delivery::Failed => Delivery::Failed,
        },
        edited: r.edited,
        error: s(&r.error),
        highlighted: r.highlighted,
        notice: r.notice,
        author: s(&r.author),
        author_hue: r.author_hue,
        show_author: r.show_author,
        mention: r.mention,
        retraction: match r.retraction {
            Retraction::None => RetractionItem::None,
            Retraction::ByAuthor => RetractionItem::ByAuthor,
            Retraction::ByModerator => RetractionItem::ByModerator,
        },
        encryption: s(&r.encryption),
        undecryptable: s(&r.undecryptable),
        trust_warning: s(&r.trust_warning),
        warning: r.warning,
        file: r.file.is_some(),
        file_name: s(&file.name),
        file_size: s(&file.size),
        file_image: file.image,
        file_local: file.local,
        file_uploading: file.uploading,
        file_progress: -1.0,
        file_error: s(&file.error),
        file_aspect: file.aspect,
        thumbnail: Default::default(),
    }
}

/// Mirrors timeline changes into the Slint model.
fn apply(ui: &Rc<Ui>, changes: Vec<Change>) {
    if changes.is_empty() {
        return;
    }
    {
        let st = ui.state.borrow();
        let (Some(t), rows) = (st.timeline.as_ref(), &st.chat.rows) else {
            return;
        };
        let item = |r| item(r, &st.chat.files, &t.account);
        for ch in changes {
            match ch {
                Change::Reset => rows.reset(t.rows().into_iter().map(item).collect()),
                Change::Prepended(n) => {
                    rows.prepend((0..n).filter_map(|i| t.row(i)).map(item).collect());
                }
                Change::Appended(n) => {
                    let start = t.len().saturating_sub(n);
                    rows.append(
                        (start..t.len())
                            .filter_map(|i| t.row(i))
                            .map(item)
                            .collect(),
                    );
                }
                Change::Updated(i) => {
                    if let Some(r) = t.row(i) {
                        rows.set(i, item(r));
                    }
                }
            }
        }
    }
    super::files::want_thumbnails(ui);
}

#[derive(Clone, Copy)]
enum Towards {
    Older,
    Newer,
}

fn load_older(ui: &Rc<Ui>) {
    load_page(ui, Towards::Older);
}

fn load_newer(ui: &Rc<Ui>) {
    load_page(ui, Towards::Newer);
}

/// Loads the next page above (older) or below (newer, after a jump) the loaded window.
fn load_page(ui: &Rc<Ui>, towards: Towards) {
    let req = {
        let mut st = ui.state.borrow_mut();
        match st.timeline.as_mut() {
            Some(t) if !t.loading => {
                let cursor = match towards {
                    Towards::Older if t.has_older => t.oldest_id(),
                    Towards::Newer if !t.at_live_end => t.newest_id(),
                    _ => None,
                };
                cursor.map(|id| {
                    t.loading = true;
                    (t.account.clone(), t.peer.clone(), id)
                })
            }
            _ => None,
        }
    };
    let Some((a, p, cursor)) = req else {
        return;
    };
    if let Some(w) = ui.window.upgrade() {
        w.global::<ChatAdapter>().set_loading(true);
    }
    let (a2, p2) = (a.clone(), p.clone());
    blocking(
        ui,
        move |client| match towards {
            Towards::Older => client.history_page(&a2, &p2, Some(cursor), PAGE),
            Towards::Newer => client.history_after(&a2, &p2, cursor, PAGE),
        },
        move |ui, w, page| {
            let g = w.global::<ChatAdapter>();
            g.set_loading(false);
            let changes = {
                let mut st = ui.state.borrow_mut();
                match (st.timeline.as_mut(), page) {
                    (Some(t), Ok(page)) if t.is(&a, &p) => match towards {
                        Towards::Older => {
                            let ch = t.prepend_older(page);
                            g.set_has_older(t.has_older);
                            ch
                        }
                        Towards::Newer => {
                            let ch = t.append_newer(page);
                            g.set_at_live_end(t.at_live_end);
                            ch
                        }
                    },
                    (Some(t), Err(e)) if t.is(&a, &p) => {
                        t.loading = false;
                        drop(st);
                        toast(ui, w, format!("Cannot load more messages: {e}"));
                        return;
                    }
                    _ => return,
                }
            };
            apply(ui, changes);
        },
    );
}

/// A new message. Only live ones mark the open conversation read: a catch-up must not
/// send a displayed marker per archived message (the conversation is read once at the end).
pub(super) fn on_message(
    ui: &Rc<Ui>,
    w: &AppWindow,
    account: &str,
    message: MessageRecord,
    live: bool,
) {
    let incoming = !message.outgoing;
    let peer = message.peer.clone();
    // An encrypted message turns the conversation's encryption on (in the core): the lock
    // follows.
    if message.encryption.is_some()
        && is_current(ui, account, &peer)
        && !ui.state.borrow().chat.lock.is_on()
    {
        load_encryption(ui, account, &peer);
    }
    let changes = {
        let mut st = ui.state.borrow_mut();
        match st.timeline.as_mut() {
            Some(t) if t.is(account, &message.peer) => t.on_new(message),
            _ => return,
        }
    };
    apply(ui, changes);
    if incoming {
        w.global::<ChatAdapter>().set_typing(Default::default());
        if live && super::shell::window_active(w) {
            mark_read(ui, account, &peer);
        }
    }
}

pub(super) fn on_update(ui: &Rc<Ui>, _w: &AppWindow, account: &str, message: MessageRecord) {
    if message.attachment.is_some() {
        super::files::on_update(ui, account, &message);
    }
    let changes = {
        let mut st = ui.state.borrow_mut();
        match st.timeline.as_mut() {
            Some(t) if t.is(account, &message.peer) => t.on_update(message),
            _ => return,
        }
    };
    apply(ui, changes);
}

pub(super) fn on_chat_state(ui: &Rc<Ui>, w: &AppWindow, account: &str, from: &str, state: &str) {
    let bare = from.split('/').next().unwrap_or(from);
    if current(ui).as_ref().map(|(a, p)| (a.as_str(), p.as_str())) != Some((account, bare))
        || kind_of(ui, account, bare) != ConvKind::Chat
    {
        return;
    }
    let text = match state {
        "composing" => "typing…",
        "paused" => "stopped typing",
        _ => "",
    };
    w.global::<ChatAdapter>().set_typing(s(text));
}

/// Marks the open conversation read if it has unread messages.
pub(super) fn read_open_conversation(ui: &Rc<Ui>) {
    let target = {
        let st = ui.state.borrow();
        st.open_conversation().and_then(|(a, p)| {
            st.convs
                .iter()
                .any(|(ca, c)| ca == a && c.peer == p && c.unread > 0)
                .then(|| (a.to_owned(), p.to_owned()))
        })
    };
    if let Some((a, p)) = target {
        mark_read(ui, &a, &p);
    }
}

fn mark_read(ui: &Rc<Ui>, account: &str, peer: &str) {
    let (client, account, peer) = (ui.client.clone(), account.to_owned(), peer.to_owned());
    ui.rt.spawn(async move {
        if let Err(e) = client.mark_read(&account, &peer).await {
            tracing::debug!(error = %e, "could not mark the conversation read");
        }
    });
}

fn send(ui: &Rc<Ui>, w: &AppWindow, text: String) {
    let text = text.trim_end_matches('\n').to_owned();
    if text.trim().is_empty() {
        return;
    }
    let Some((account, peer)) = current(ui) else {
        return;
    };
    let g = w.global::<ChatAdapter>();
    let correcting = g.get_correcting();
    g.set_draft(Default::default());
    g.set_correcting(false);
    {
        let mut st = ui.state.borrow_mut();
        st.chat.composing = false;
        st.chat.paused_timer = None;
    }
    let client = ui.client.clone();
    let draft = text.clone();
    let kind = kind_of(ui, &account, &peer);
    let (sent_account, sent_peer) = (account.clone(), peer.clone());
    background(
        ui,
        async move {
            if correcting {
                return client.correct_last_message(&account, &peer, &text).await;
            }
            match kind {
                ConvKind::Chat => client.send_message(&account, &peer, &text).await,
                ConvKind::Room => client.send_room_message(&account, &peer, &text).await,
                ConvKind::Private => {
                    let (room, nick) = rooms::split_occupant(&peer)
                        .ok_or_else(|| starling_core::Error::InvalidJid(peer.clone()))?;
                    client
                        .send_private_message(&account, room, nick, &text)
                        .await
                }
            }
        },
        move |ui, w, r| match r {
            Ok(_) => {
                if is_current(ui, &sent_account, &sent_peer) {
                    w.global::<ChatAdapter>().set_send_error(Default::default());
                }
            }
            Err(e) => {
                // Nothing was stored: give the text back so nothing the user typed is
                // lost.
                let g = w.global::<ChatAdapter>();
                if is_current(ui, &sent_account, &sent_peer) && g.get_draft().is_empty() {
                    g.set_draft(s(&draft));
                }
                show_send_error(ui, w, &sent_account, &sent_peer, &e);
            }
        },
    );
}

/// Why something was not sent: in the chat when it is open (an encrypted chat never falls
/// back to plaintext), else as a toast.
pub(super) fn show_send_error(
    ui: &Rc<Ui>,
    w: &AppWindow,
    account: &str,
    peer: &str,
    e: &starling_core::Error,
) {
    if is_current(ui, account, peer) {
        w.global::<ChatAdapter>()
            .set_send_error(s(encryption::send_error(e)));
    } else {
        toast(ui, w, format!("Not sent to {peer}: {}", rooms::explain(e)));
    }
}

/// Reads the conversation's encryption (the core's sticky choice) into the lock.
fn load_encryption(ui: &Rc<Ui>, account: &str, peer: &str) {
    let (account, peer) = (account.to_owned(), peer.to_owned());
    let (a, p) = (account.clone(), peer.clone());
    blocking(
        ui,
        move |client| client.conversation_encryption(&a, &p),
        move |ui, w, r| match r {
            _ if !is_current(ui, &account, &peer) => {}
            Ok(e) => show_lock(ui, w, Lock::from_core(e)),
            Err(e) => {
                tracing::warn!(account, peer, error = %e, "cannot read the conversation's encryption");
            }
        },
    );
}

/// Turns the conversation's encryption on (OMEMO) or off, then shows what the core has.
fn set_encryption(ui: &Rc<Ui>, account: String, peer: String, on: bool) {
    let (a, p) = (account.clone(), peer.clone());
    blocking(
        ui,
        move |client| {
            client.set_conversation_encryption(&a, &p, on)?;
            client.conversation_encryption(&a, &p)
        },
        move |ui, w, r| match r {
            Ok(e) if is_current(ui, &account, &peer) => show_lock(ui, w, Lock::from_core(e)),
            Ok(_) => {}
            Err(e) => toast(ui, w, format!("Cannot change the encryption: {e}")),
        },
    );
}

/// Ends the private (OTR) conversation: the lock's "off" in an OTR conversation.
fn end_otr(ui: &Rc<Ui>, account: String, peer: String) {
    let client = ui.client.clone();
    let (a, p) = (account.clone(), peer.clone());
    background(
        ui,
        async move { client.otr_end(&a, &p).await },
        move |ui, w, r| match r {
            Ok(()) => load_encryption(ui, &account, &peer),
            Err(e) => toast(ui, w, format!("Cannot end OTR: {e}")),
        },
    );
}

/// The conversation's encryption may have changed in the core (OTR came up or ended): the
/// lock follows if it is open.
pub(super) fn on_encryption_changed(ui: &Rc<Ui>, account: &str, peer: &str) {
    if is_current(ui, account, peer) {
        load_encryption(ui, account, peer);
    }
}

fn show_lock(ui: &Rc<Ui>, w: &AppWindow, lock: Lock) {
    ui.state.borrow_mut().chat.lock = lock;
    let g = w.global::<ChatAdapter>();
    g.set_encrypted(lock.is_on());
    g.set_encryption(s(lock.name()));
    g.set_encryption_description(s(lock.description()));
}

/// A message was sent without some devices (they could not be encrypted for): a notice in
/// that conversation names them and says why.
pub(super) fn on_encryption_skipped(ui: &Rc<Ui>, account: &str, peer: &str, devices: &[String]) {
    let now = chrono::Utc::now().timestamp_millis();
    let changes = {
        let mut st = ui.state.borrow_mut();
        let timestamp = match st.timeline.as_ref() {
            Some(t) if t.is(account, peer) => t.notice_time(now),
            _ => now,
        };
        let notice = LocalNotice {
            timestamp,
            text: encryption::skipped_notice(devices),
        };
        let kept = st
            .chat
            .notices
            .entry((account.to_owned(), peer.to_owned()))
            .or_default();
        kept.push(notice.clone());
        if kept.len() > NOTICES_KEPT {
            kept.remove(0);
        }
        match st.timeline.as_mut() {
            Some(t) if t.is(account, peer) => t.add_notice(&notice),
            _ => Vec::new(),
        }
    };
    apply(ui, changes);
}

/// XEP-0085: "composing" on the first keystroke, "paused" after 5 s without typing, and
/// "active" when the draft is emptied. Chat states are best effort (never queued).
fn draft_edited(ui: &Rc<Ui>, w: &AppWindow, empty: bool) {
    let Some((account, peer)) = current(ui) else {
        return;
    };
    // Chat states in rooms would go to everyone in them; Starling sends them in chats only.
    if kind_of(ui, &account, &peer) != ConvKind::Chat {
        return;
    }
    let state = {
        let mut st = ui.state.borrow_mut();
        let was = st.chat.composing;
        st.chat.composing = !empty;
        match (was, empty) {
            (false, false) => Some(ChatStateKind::Composing),
            (true, true) => Some(ChatStateKind::Active),
            _ => None,
        }
    };
    if !empty {
        let timer = slint::Timer::default();
        let (u, weak) = (ui.clone(), w.as_weak());
        timer.start(
            slint::TimerMode::SingleShot,
            Duration::from_secs(5),
            move || {
                if weak.upgrade().is_none() {
                    return;
                }
                let paused = std::mem::replace(&mut u.state.borrow_mut().chat.composing, false);
                if paused && let Some((a, p)) = current(&u) {
                    chat_state(&u, a, p, ChatStateKind::Paused);
                }
            },
        );
        ui.state.borrow_mut().chat.paused_timer = Some(timer);
    }
    if let Some(state) = state {
        chat_state(ui, account, peer, state);
    }
}

fn chat_state(ui: &Ui, account: String, peer: String, state: ChatStateKind) {
    let client = ui.client.clone();
    ui.rt.spawn(async move {
        if let Err(e) = client.send_chat_state(&account, &peer, state).await {
            tracing::debug!(error = %e, "chat state not sent");
        }
    });
}

/// Opens a link with the desktop's opener, only for schemes we consider safe.
pub(super) fn open_link(url: &str) {
    if !format::is_openable(url) {
        tracing::warn!(url, "not opening a link with an unexpected scheme");
        return;
    }
    match std::process::Command::new("xdg-open").arg(url).spawn() {
        Ok(mut child) => {
            // Reap it so it does not linger as a zombie.
            std::thread::spawn(move || {
                if let Err(e) = child.wait() {
                    tracing::debug!(error = %e, "xdg-open");
                }
            });
        }
        Err(e) => tracing::warn!(error = %e, "cannot run xdg-open"),
    }
}
