//! `ConversationsAdapter`: the conversation list (all accounts: chats, rooms, private
//! chats), its filter, unread and mention counts, room invitations, and desktop
//! notifications for new messages.

use std::rc::Rc;
use std::time::Duration;

use slint::ComponentHandle as _;
use starling_core::store::{MessageKind, MessageRecord};

use super::{color, model, presence, s, toast};
use crate::ui::controllers::people::total_unread;
use crate::ui::controllers::prefs;
use crate::ui::controllers::rooms::{self, ConvKind};
use crate::ui::{
    AppWindow, ConversationItem, ConversationKind, ConversationsAdapter, InvitationItem, Shell, Ui,
    background, blocking,
};

pub(super) fn install(ui: &Rc<Ui>, w: &AppWindow) {
    let g = w.global::<ConversationsAdapter>();
    let u = ui.clone();
    let weak = w.as_weak();
    g.on_filter_edited(move |_| {
        if let Some(w) = weak.upgrade() {
            refresh(&u, &w);
        }
    });
    let u = ui.clone();
    let weak = w.as_weak();
    g.on_open(move |account, peer| {
        if let Some(w) = weak.upgrade() {
            super::chat::open(&u, &w, &account, &peer);
        }
    });
    let u = ui.clone();
    let weak = w.as_weak();
    g.on_step(move |delta| {
        if let Some(w) = weak.upgrade() {
            step(&u, &w, delta);
        }
    });
    let u = ui.clone();
    g.on_seen(move |account, peer| super::avatars::seen(&u, &account, &peer));
    let u = ui.clone();
    g.on_accept_invitation(move |account, room| accept(&u, account.into(), room.into()));
    let u = ui.clone();
    g.on_decline_invitation(move |account, room| {
        let client = u.client.clone();
        background(
            &u,
            async move { client.decline_invitation(&account, &room, None).await },
            |ui, w, r| {
                if let Err(e) = r {
                    toast(ui, w, format!("Cannot decline: {}", rooms::explain(&e)));
                }
                reload_invitations(ui);
            },
        );
    });
}

/// Accepting an invitation joins the room. A room that wants a password opens the join
/// dialog with the room filled in and the reason shown.
fn accept(ui: &Rc<Ui>, account: String, room: String) {
    let client = ui.client.clone();
    let (a, r) = (account.clone(), room.clone());
    background(
        ui,
        async move { client.join_room(&a, &r, None, None).await },
        move |ui, w, res| {
            reload_invitations(ui);
            match res {
                Ok(_) => super::chat::open(ui, w, &account, &room),
                Err(e) => {
                    let e = rooms::join_error(&e);
                    if e.field.is_empty() {
                        toast(ui, w, format!("Cannot join {room}: {}", e.text));
                    } else {
                        super::join::show(ui, Some((&account, &room, &e.text)));
                    }
                }
            }
        },
    );
}

/// Reloads the pending invitations of all accounts.
pub(super) fn reload_invitations(ui: &Rc<Ui>) {
    let accounts = super::account_jids(ui);
    blocking(
        ui,
        move |client| {
            let mut all = Vec::new();
            for a in accounts {
                match client.invitations(&a) {
                    Ok(list) => all.extend(list.into_iter().map(|i| (a.clone(), i))),
                    Err(e) => tracing::warn!(account = a, error = %e, "cannot load invitations"),
                }
            }
            all
        },
        |ui, w, all| {
            let items: Vec<InvitationItem> = {
                let st = ui.state.borrow();
                all.iter()
                    .map(|(a, inv)| {
                        let name = st.rooms.get(a, &inv.room).and_then(|v| v.name.clone());
                        let (title, detail) = rooms::invitation_text(inv, name.as_deref());
                        InvitationItem {
                            account: s(a),
                            room: s(&inv.room),
                            title: s(title),
                            detail: s(detail),
                        }
                    })
                    .collect()
            };
            ui.state.borrow_mut().invitations = all;
            w.global::<ConversationsAdapter>()
                .set_invitations(model(items));
        },
    );
}

/// Reloads the conversations from the store soon (coalescing bursts of events).
pub(super) fn schedule_reload(ui: &Rc<Ui>) {
    {
        let mut st = ui.state.borrow_mut();
        if st.conv_reload_scheduled {
            return;
        }
        st.conv_reload_scheduled = true;
    }
    let u = ui.clone();
    slint::Timer::single_shot(Duration::from_millis(150), move || {
        u.state.borrow_mut().conv_reload_scheduled = false;
        let accounts = super::account_jids(&u);
        blocking(
            &u,
            move |client| {
                let mut all = Vec::new();
                for a in accounts {
                    match client.conversations(&a) {
                        Ok(list) => all.extend(list.into_iter().map(|c| (a.clone(), c))),
                        Err(e) => {
                            tracing::warn!(account = a, error = %e, "cannot load conversations")
                        }
                    }
                }
                all
            },
            |ui, w, convs| {
                ui.state.borrow_mut().convs = convs;
                refresh(ui, w);
                super::chat::refresh_header(ui, w);
            },
        );
    });
}

/// Rebuilds the list rows from what is loaded.
pub(super) fn refresh(ui: &Rc<Ui>, w: &AppWindow) {
    let g = w.global::<ConversationsAdapter>();
    let filter = g.get_filter();
    let st = ui.state.borrow();
    let today = chrono::Local::now().date_naive();
    let rows = st
        .people
        .conversation_rows(&st.convs, &filter, st.open_conversation(), today);
    let total = total_unread(&st.convs);
    // Chats show their person's picture (rooms and private chats in rooms: initials).
    let people: Vec<(String, String)> = rows
        .iter()
        .filter(|r| r.kind == ConvKind::Chat)
        .map(|r| (r.account.clone(), r.peer.clone()))
        .collect();
    let items: Vec<ConversationItem> = rows
        .into_iter()
        .map(|r| ConversationItem {
            picture: match r.kind {
                ConvKind::Chat => super::avatars::picture(&st, &r.account, &r.peer),
                ConvKind::Room | ConvKind::Private => Default::default(),
            },
            account: s(&r.account),
            peer: s(&r.peer),
            name: s(&r.name),
            initials: s(&r.initials),
            tint: color(r.tint),
            preview: s(&r.preview),
            time: s(&r.time),
            unread: i32::try_from(r.unread).unwrap_or(i32::MAX),
            mentions: i32::try_from(r.mentions).unwrap_or(i32::MAX),
            presence: presence(r.presence),
            selected: r.selected,
            kind: match r.kind {
                ConvKind::Chat => ConversationKind::Chat,
                ConvKind::Room => ConversationKind::Room,
                ConvKind::Private => ConversationKind::Private,
            },
        })
        .collect();
    g.set_empty_hint(items.is_empty());
    g.set_items(model(items));
    w.global::<Shell>()
        .set_total_unread(i32::try_from(total).unwrap_or(i32::MAX));
    drop(st);
    super::avatars::want(ui, people);
}

/// Alt+Up/Down: open the previous/next conversation in the list.
fn step(ui: &Rc<Ui>, w: &AppWindow, delta: i32) {
    use slint::Model as _;
    let items = w.global::<ConversationsAdapter>().get_items();
    let n = items.row_count();
    if n == 0 {
        return;
    }
    let current = (0..n).find(|i| items.row_data(*i).is_some_and(|r| r.selected));
    let next = match current {
        Some(i) => (i as i64 + i64::from(delta)).clamp(0, n as i64 - 1) as usize,
        None => 0,
    };
    if let Some(r) = items.row_data(next) {
        super::chat::open(ui, w, &r.account, &r.peer);
    }
}

/// A new message: notify when the user is not looking at it.
pub(super) fn on_message(
    ui: &Rc<Ui>,
    w: &AppWindow,
    account: &str,
    message: &MessageRecord,
    live: bool,
) {
    let st = ui.state.borrow();
    let open_here = st.open_conversation() == Some((account, message.peer.as_str()));
    let active = super::shell::window_active(w);
    if !prefs::should_notify(&st.prefs, live, message.outgoing, active, open_here)
        || !prefs::notifies(message.kind, message.mention)
    {
        return;
    }
    let (name, body) = match message.kind {
        MessageKind::GroupChat => (
            st.rooms.name_of(account, &message.peer),
            format!("{}: {}", rooms::nick_of(&message.sender), message.body),
        ),
        MessageKind::Private => {
            let (room, nick) = rooms::split_occupant(&message.peer).unwrap_or(("", ""));
            (
                format!("{nick} ({})", st.rooms.name_of(account, room)),
                message.body.clone(),
            )
        }
        _ => (
            st.people.name_of(account, &message.peer),
            message.body.clone(),
        ),
    };
    let body: String = body.chars().take(200).collect();
    notify(ui, name, body);
}

/// Shows a desktop notification (freedesktop notifications over D-Bus).
#[cfg(feature = "desktop")]
fn notify(ui: &Ui, name: String, body: String) {
    ui.rt.spawn(async move {
        let shown = notify_rust::Notification::new()
            .appname("Starling")
            .summary(&name)
            .body(&body)
            .icon("starling")
            .show_async()
            .await;
        if let Err(e) = shown {
            tracing::debug!(error = %e, "no desktop notification (is a notification daemon running?)");
        }
    });
}

/// Android notifications are not wired yet (they need the app's NotificationManager
/// through JNI); the message is in the conversation list.
#[cfg(not(feature = "desktop"))]
fn notify(_ui: &Ui, name: String, _body: String) {
    tracing::debug!(%name, "a message to notify about; no notifications on this platform yet");
}
