//! `RoomAdapter`: the open room — its header state, the occupant panel (patched one presence
//! at a time), moderation, leaving and rejoining, and the invite and settings dialogs.

use std::rc::Rc;

use slint::{ComponentHandle as _, Model as _, ModelRc, VecModel};
use starling_core::{Affiliation, Occupant, Role, RoomState};

use super::{presence, s, toast};
use crate::ui::controllers::occupants::{Entry, Group, ListChange};
use crate::ui::controllers::rooms::{self, Banner, RoomSettings};
use crate::ui::{
    AppWindow, OccupantActions, OccupantItem, OccupantRole, RoomAction, RoomAdapter,
    RoomAffiliation, RoomBanner, Ui, background, blocking,
};

/// The room adapter's own state.
#[derive(Default)]
pub struct RoomUi {
    /// The occupant panel's model (the open room's rows).
    occupants: Rc<VecModel<OccupantItem>>,
    /// The room the panel shows (account, room).
    open: Option<(String, String)>,
    /// The settings as the room reported them when the dialog opened.
    settings_before: Option<RoomSettings>,
}

impl RoomUi {
    pub fn open_room(&self) -> Option<(&str, &str)> {
        self.open.as_ref().map(|(a, r)| (a.as_str(), r.as_str()))
    }
}

pub(super) fn install(ui: &Rc<Ui>, w: &AppWindow) {
    let g = w.global::<RoomAdapter>();
    g.set_occupants(ModelRc::from(ui.state.borrow().room.occupants.clone()));

    let u = ui.clone();
    g.on_actions_for(move |nick| {
        let st = u.state.borrow();
        let a = match st.room.open_room() {
            Some((account, room)) => st.rooms.actions_for(account, room, &nick),
            None => Default::default(),
        };
        OccupantActions {
            private_message: a.private_message,
            kick: a.kick,
            grant_voice: a.grant_voice,
            revoke_voice: a.revoke_voice,
            make_moderator: a.make_moderator,
            revoke_moderator: a.revoke_moderator,
            ban: a.ban,
        }
    });
    let u = ui.clone();
    g.on_private_message(move |nick| {
        let Some((account, room)) = open_room(&u) else {
            return;
        };
        if let Some(w) = u.window.upgrade() {
            super::chat::open(&u, &w, &account, &format!("{room}/{nick}"));
        }
    });
    let u = ui.clone();
    g.on_set_role(move |nick, role, reason| set_role(&u, nick.into(), role, reason.into()));
    let u = ui.clone();
    g.on_ban(move |nick, reason| ban(&u, nick.into(), reason.into()));
    let u = ui.clone();
    g.on_rejoin(move || {
        if let Some((account, room)) = open_room(&u) {
            rejoin(&u, account, room);
        }
    });
    let u = ui.clone();
    g.on_leave(move || {
        let Some((account, room)) = open_room(&u) else {
            return;
        };
        let client = u.client.clone();
        background(
            &u,
            async move { client.leave_room(&account, &room).await },
            |ui, w, r| {
                if let Err(e) = r {
                    toast(ui, w, format!("Cannot leave: {}", rooms::explain(&e)));
                }
            },
        );
    });
    let weak = w.as_weak();
    g.on_open_invite(move || {
        if let Some(w) = weak.upgrade() {
            let g = w.global::<RoomAdapter>();
            g.set_invite_error(Default::default());
            g.set_invite_busy(false);
            g.set_invite_open(true);
        }
    });
    let u = ui.clone();
    g.on_invite(move || invite(&u));
    let u = ui.clone();
    g.on_open_settings(move || open_settings(&u));
    let u = ui.clone();
    g.on_save_settings(move || save_settings(&u));
    let u = ui.clone();
    g.on_destroy(move |reason| destroy(&u, reason.into()));
}

fn open_room(ui: &Ui) -> Option<(String, String)> {
    ui.state.borrow().room.open.clone()
}

/// Joins a room again (after leaving, a removal or a failed join).
pub(super) fn rejoin(ui: &Rc<Ui>, account: String, room: String) {
    let client = ui.client.clone();
    background(
        ui,
        async move { client.join_room(&account, &room, None, None).await },
        |ui, w, r| {
            if let Err(e) = r {
                toast(ui, w, format!("Cannot join: {}", rooms::explain(&e)));
            }
        },
    );
}

fn role_of(r: OccupantRole) -> Role {
    match r {
        OccupantRole::Moderator => Role::Moderator,
        OccupantRole::Participant => Role::Participant,
        OccupantRole::Visitor => Role::Visitor,
        OccupantRole::None => Role::None,
    }
}

fn occupant_role(r: Role) -> OccupantRole {
    match r {
        Role::Moderator => OccupantRole::Moderator,
        Role::Participant => OccupantRole::Participant,
        Role::Visitor => OccupantRole::Visitor,
        Role::None => OccupantRole::None,
    }
}

fn affiliation(a: Affiliation) -> RoomAffiliation {
    match a {
        Affiliation::Owner => RoomAffiliation::Owner,
        Affiliation::Admin => RoomAffiliation::Admin,
        Affiliation::Member => RoomAffiliation::Member,
        Affiliation::None => RoomAffiliation::None,
        Affiliation::Outcast => RoomAffiliation::Outcast,
    }
}

fn set_role(ui: &Rc<Ui>, nick: String, role: OccupantRole, reason: String) {
    let Some((account, room)) = open_room(ui) else {
        return;
    };
    let what = match role {
        OccupantRole::None => format!("Cannot kick {nick}"),
        OccupantRole::Visitor => format!("Cannot revoke the voice of {nick}"),
        OccupantRole::Participant => format!("Cannot change the role of {nick}"),
        OccupantRole::Moderator => format!("Cannot make {nick} a moderator"),
    };
    let client = ui.client.clone();
    let reason = rooms::reason(&reason);
    background(
        ui,
        async move {
            client
                .set_role(&account, &room, &nick, role_of(role), reason.as_deref())
                .await
        },
        move |ui, w, r| {
            if let Err(e) = r {
                toast(ui, w, format!("{what}: {}", rooms::explain(&e)));
            }
        },
    );
}

fn ban(ui: &Rc<Ui>, nick: String, reason: String) {
    let Some((account, room)) = open_room(ui) else {
        return;
    };
    let jid = ui
        .state
        .borrow()
        .rooms
        .get(&account, &room)
        .and_then(|v| v.occupants.get(&nick))
        .and_then(|o| o.jid.clone());
    let Some(jid) = jid else {
        if let Some(w) = ui.window.upgrade() {
            toast(
                ui,
                &w,
                format!("Cannot ban {nick}: the room does not show their address to you."),
            );
        }
        return;
    };
    let client = ui.client.clone();
    let reason = rooms::reason(&reason);
    background(
        ui,
        async move {
            client
                .set_affiliation(
                    &account,
                    &room,
                    &jid,
                    Affiliation::Outcast,
                    reason.as_deref(),
                )
                .await
        },
        move |ui, w, r| {
            if let Err(e) = r {
                toast(ui, w, format!("Cannot ban {nick}: {}", rooms::explain(&e)));
            }
        },
    );
}

fn invite(ui: &Rc<Ui>) {
    let (Some(w), Some((account, room))) = (ui.window.upgrade(), open_room(ui)) else {
        return;
    };
    let g = w.global::<RoomAdapter>();
    if g.get_invite_busy() {
        return;
    }
    let jid = match rooms::invitee(&g.get_invite_jid()) {
        Ok(j) => j,
        Err(e) => {
            g.set_invite_error(s(e.text));
            return;
        }
    };
    let reason = rooms::reason(&g.get_invite_reason());
    let direct = g.get_invite_direct();
    g.set_invite_busy(true);
    g.set_invite_error(Default::default());
    let client = ui.client.clone();
    let who = jid.clone();
    background(
        ui,
        async move {
            client
                .invite(&account, &room, &jid, reason.as_deref(), direct)
                .await
        },
        move |ui, w, r| {
            let g = w.global::<RoomAdapter>();
            g.set_invite_busy(false);
            match r {
                Ok(()) => {
                    g.set_invite_open(false);
                    g.set_invite_jid(Default::default());
                    g.set_invite_reason(Default::default());
                    toast(ui, w, format!("Invited {who}."));
                }
                Err(e) => g.set_invite_error(s(rooms::explain(&e))),
            }
        },
    );
}

fn set_settings_fields(g: &RoomAdapter<'_>, f: &RoomSettings) {
    g.set_name(s(&f.name));
    g.set_description(s(&f.description));
    g.set_subject(s(&f.subject));
    g.set_members_only(f.members_only);
    g.set_moderated(f.moderated);
    g.set_non_anonymous(f.non_anonymous);
    g.set_persistent(f.persistent);
    g.set_public(f.public);
    g.set_password_protected(f.password_protected);
    g.set_password(s(&f.password));
}

fn settings_fields(g: &RoomAdapter<'_>) -> RoomSettings {
    RoomSettings {
        name: g.get_name().into(),
        description: g.get_description().into(),
        members_only: g.get_members_only(),
        moderated: g.get_moderated(),
        non_anonymous: g.get_non_anonymous(),
        persistent: g.get_persistent(),
        public: g.get_public(),
        password_protected: g.get_password_protected(),
        password: g.get_password().into(),
        subject: g.get_subject().into(),
    }
}

fn open_settings(ui: &Rc<Ui>) {
    let (Some(w), Some((account, room))) = (ui.window.upgrade(), open_room(ui)) else {
        return;
    };
    let subject = ui
        .state
        .borrow()
        .rooms
        .get(&account, &room)
        .map(|v| v.subject.clone())
        .unwrap_or_default();
    let g = w.global::<RoomAdapter>();
    g.set_settings_error(Default::default());
    g.set_settings_busy(false);
    g.set_settings_loading(true);
    g.set_settings_open(true);
    ui.state.borrow_mut().room.settings_before = None;
    let client = ui.client.clone();
    background(
        ui,
        async move { client.room_info(&account, &room).await },
        move |ui, w, r| {
            let g = w.global::<RoomAdapter>();
            g.set_settings_loading(false);
            match r {
                Ok(info) => {
                    let form = RoomSettings::from_info(&info, &subject);
                    set_settings_fields(&g, &form);
                    ui.state.borrow_mut().room.settings_before = Some(form);
                }
                Err(e) => g.set_settings_error(s(format!(
                    "Cannot read the room's settings: {}",
                    rooms::explain(&e)
                ))),
            }
        },
    );
}

fn save_settings(ui: &Rc<Ui>) {
    let (Some(w), Some((account, room))) = (ui.window.upgrade(), open_room(ui)) else {
        return;
    };
    let g = w.global::<RoomAdapter>();
    let Some(before) = ui.state.borrow().room.settings_before.clone() else {
        g.set_settings_error(s("The room's settings are not loaded yet."));
        return;
    };
    let (config, subject) = match settings_fields(&g).changes_from(&before) {
        Ok(c) => c,
        Err(e) => {
            g.set_settings_error(s(e.text));
            return;
        }
    };
    if config == starling_core::RoomConfig::default() && subject.is_none() {
        g.set_settings_open(false);
        return;
    }
    g.set_settings_busy(true);
    g.set_settings_error(Default::default());
    let client = ui.client.clone();
    background(
        ui,
        async move {
            if config != starling_core::RoomConfig::default() {
                client.configure_room(&account, &room, &config).await?;
            }
            if let Some(subject) = subject {
                client.set_subject(&account, &room, &subject).await?;
            }
            Ok::<_, starling_core::Error>(())
        },
        |_ui, w, r| {
            let g = w.global::<RoomAdapter>();
            g.set_settings_busy(false);
            match r {
                Ok(()) => g.set_settings_open(false),
                Err(e) => g.set_settings_error(s(rooms::explain(&e))),
            }
        },
    );
}

fn destroy(ui: &Rc<Ui>, reason: String) {
    let Some((account, room)) = open_room(ui) else {
        return;
    };
    if let Some(w) = ui.window.upgrade() {
        w.global::<RoomAdapter>().set_settings_busy(true);
    }
    let client = ui.client.clone();
    let reason = rooms::reason(&reason);
    background(
        ui,
        async move {
            client
                .destroy_room(&account, &room, reason.as_deref())
                .await
        },
        |ui, w, r| {
            let g = w.global::<RoomAdapter>();
            g.set_settings_busy(false);
            match r {
                Ok(()) => {
                    g.set_settings_open(false);
                    toast(ui, w, "The room was destroyed.");
                }
                Err(e) => g.set_settings_error(s(format!(
                    "Cannot destroy the room: {}",
                    rooms::explain(&e)
                ))),
            }
        },
    );
}

// ---- the open room ----

/// Shows `room` in the header and the panel (called when a room conversation opens), and
/// asks the core who is in it right now.
pub(super) fn show(ui: &Rc<Ui>, w: &AppWindow, account: &str, room: &str) {
    let same = ui.state.borrow().room.open_room() == Some((account, room));
    ui.state.borrow_mut().room.open = Some((account.to_owned(), room.to_owned()));
    if !same {
        reset_model(ui);
    }
    refresh(ui, w);
    // Who is there now (the core answers only while we are in the room).
    let client = ui.client.clone();
    let (a, r) = (account.to_owned(), room.to_owned());
    background(
        ui,
        async move { client.occupants(&a, &r).await.map(|o| (a, r, o)) },
        |ui, w, res| match res {
            Ok((a, r, occupants)) => set_occupants(ui, w, &a, &r, &occupants),
            Err(e) => tracing::debug!(error = %e, "no occupant snapshot"),
        },
    );
}

/// The open conversation is not a room.
pub(super) fn hide(ui: &Rc<Ui>) {
    let was = ui.state.borrow_mut().room.open.take();
    if was.is_some() {
        ui.state.borrow().room.occupants.clear();
    }
}

fn set_occupants(ui: &Rc<Ui>, w: &AppWindow, account: &str, room: &str, occ: &[Occupant]) {
    let changes = ui
        .state
        .borrow_mut()
        .rooms
        .set_occupants(account, room, occ);
    apply(ui, account, room, &changes);
    refresh(ui, w);
    super::chat::refresh_header(ui, w);
}

/// An occupant's picture: theirs when the room shows their address and we have it (never
/// read or fetched for a room's strangers).
fn occupant_picture(st: &super::State, account: &str, jid: Option<&str>) -> slint::Image {
    match jid.map(|j| j.split('/').next().unwrap_or(j)) {
        Some(j) if !j.is_empty() => super::avatars::picture(st, account, j),
        _ => slint::Image::default(),
    }
}

fn item(e: Entry, own_nick: Option<&str>, picture: slint::Image) -> OccupantItem {
    match e {
        Entry::Header { group, count } => OccupantItem {
            header: true,
            group: match group {
                Group::Moderators => OccupantRole::Moderator,
                Group::Participants => OccupantRole::Participant,
                Group::Visitors => OccupantRole::Visitor,
            },
            count: i32::try_from(count).unwrap_or(i32::MAX),
            ..OccupantItem::default()
        },
        Entry::Occupant(o) => OccupantItem {
            header: false,
            group: occupant_role(o.role),
            count: 0,
            is_self: own_nick == Some(o.nick.as_str()),
            nick: s(&o.nick),
            jid: s(o.jid.as_deref().unwrap_or_default()),
            role: occupant_role(o.role),
            affiliation: affiliation(o.affiliation),
            presence: presence(o.presence),
            status: s(&o.status),
            hue: o.hue,
            initials: s(&o.initials),
            picture,
        },
    }
}

/// Our nick in the open room, if we are in it (to mark our own row).
fn own_nick(st: &super::State, account: &str, room: &str) -> Option<String> {
    st.rooms
        .get(account, room)
        .filter(|v| v.status == rooms::RoomStatus::Joined)
        .map(|v| v.nick.clone())
}

/// Rebuilds the panel's model from the controller (opening a room, a snapshot).
fn reset_model(ui: &Rc<Ui>) {
    let st = ui.state.borrow();
    let Some((account, room)) = st.room.open_room() else {
        return;
    };
    let own = own_nick(&st, account, room);
    let rows: Vec<OccupantItem> = st
        .rooms
        .get(account, room)
        .map(|v| v.occupants.rows())
        .unwrap_or_default()
        .into_iter()
        .map(|e| {
            let pic = match &e {
                Entry::Occupant(o) => occupant_picture(&st, account, o.jid.as_deref()),
                Entry::Header { .. } => Default::default(),
            };
            item(e, own.as_deref(), pic)
        })
        .collect();
    st.room.occupants.set_vec(rows);
}

/// Mirrors occupant list changes of a room into the panel, if it shows that room: a
/// presence patches one or two rows, it does not rebuild the list. (The header's count is
/// refreshed by the caller, once per batch of events.)
pub(super) fn apply(ui: &Rc<Ui>, account: &str, room: &str, changes: &[ListChange]) {
    if changes.is_empty() || ui.state.borrow().room.open_room() != Some((account, room)) {
        return;
    }
    if changes.contains(&ListChange::Reset) {
        reset_model(ui);
    } else {
        let st = ui.state.borrow();
        let own = own_nick(&st, account, room);
        let model = &st.room.occupants;
        for ch in changes {
            match ch {
                ListChange::Reset => {}
                ListChange::Inserted { at, rows } => {
                    for (i, e) in rows.iter().enumerate() {
                        let at = (at + i).min(model.row_count());
                        let pic = match e {
                            Entry::Occupant(o) => occupant_picture(&st, account, o.jid.as_deref()),
                            Entry::Header { .. } => Default::default(),
                        };
                        model.insert(at, item(e.clone(), own.as_deref(), pic));
                    }
                }
                ListChange::Removed { at, count } => {
                    for _ in 0..*count {
                        if *at < model.row_count() {
                            model.remove(*at);
                        }
                    }
                }
                ListChange::Updated { at, row } => {
                    if *at < model.row_count() {
                        let pic = match row {
                            Entry::Occupant(o) => occupant_picture(&st, account, o.jid.as_deref()),
                            Entry::Header { .. } => Default::default(),
                        };
                        model.set_row_data(*at, item(row.clone(), own.as_deref(), pic));
                    }
                }
            }
        }
    }
}

/// Pictures changed: the open room's occupants whose address we know take theirs.
pub(super) fn refresh_pictures(ui: &Rc<Ui>) {
    let st = ui.state.borrow();
    let Some((account, _)) = st.room.open_room() else {
        return;
    };
    let model = &st.room.occupants;
    for i in 0..model.row_count() {
        let Some(mut row) = model.row_data(i) else {
            continue;
        };
        if row.header || row.jid.is_empty() {
            continue;
        }
        let pic = occupant_picture(&st, account, Some(row.jid.as_str()));
        if pic != row.picture {
            row.picture = pic;
            model.set_row_data(i, row);
        }
    }
}

/// The header state of the open room.
pub(super) fn refresh(ui: &Rc<Ui>, w: &AppWindow) {
    let st = ui.state.borrow();
    let Some((account, room)) = st.room.open_room() else {
        return;
    };
    let h = st.rooms.header(account, room);
    let g = w.global::<RoomAdapter>();
    g.set_room(s(room));
    g.set_occupant_text(s(rooms::occupant_count(h.occupants)));
    g.set_banner(match h.banner {
        Banner::None => RoomBanner::None,
        Banner::Info => RoomBanner::Info,
        Banner::Problem => RoomBanner::Problem,
    });
    g.set_status_text(s(&h.status_text));
    g.set_action(match h.action.as_str() {
        "Rejoin" => RoomAction::Rejoin,
        "Try again" => RoomAction::Retry,
        "Join" => RoomAction::Join,
        _ => RoomAction::None,
    });
    g.set_nick(s(&h.nick));
    g.set_joined(h.joined);
    g.set_can_leave(h.can_leave);
    g.set_can_moderate(h.can_moderate);
    g.set_can_configure(h.can_configure);
}

// ---- core events ----

pub(super) fn on_state(ui: &Rc<Ui>, w: &AppWindow, account: &str, room: &str, state: &RoomState) {
    let was_joined = ui
        .state
        .borrow()
        .rooms
        .get(account, room)
        .is_some_and(|v| v.status == rooms::RoomStatus::Joined);
    let changes = ui.state.borrow_mut().rooms.on_state(account, room, state);
    apply(ui, account, room, &changes);
    let is_open = ui.state.borrow().room.open_room() == Some((account, room));
    if is_open {
        // Our own row's "(you)" depends on being in the room.
        if matches!(state, RoomState::Joined { .. }) && !was_joined {
            reset_model(ui);
        }
        refresh(ui, w);
        super::chat::refresh_header(ui, w);
    }
}

/// Someone arrived, changed or left. Returns whether the open room changed (its header
/// count is then refreshed once per batch).
pub(super) fn on_occupant(
    ui: &Rc<Ui>,
    account: &str,
    room: &str,
    occupant: &Occupant,
    present: bool,
) -> bool {
    let changes = ui
        .state
        .borrow_mut()
        .rooms
        .on_occupant(account, room, occupant, present);
    apply(ui, account, room, &changes);
    ui.state.borrow().room.open_room() == Some((account, room))
}

/// The account went offline: its rooms' occupants are unknown until it rejoins.
pub(super) fn on_offline(ui: &Rc<Ui>, w: &AppWindow, account: &str) {
    let cleared = ui.state.borrow_mut().rooms.offline(account);
    for room in cleared {
        apply(ui, account, &room, &[ListChange::Reset]);
    }
    refresh(ui, w);
}

/// Reloads the stored rooms of all accounts (names, subjects, removals).
pub(super) fn reload(ui: &Rc<Ui>) {
    let accounts = super::account_jids(ui);
    blocking(
        ui,
        move |client| {
            accounts
                .into_iter()
                .filter_map(|a| match client.rooms(&a) {
                    Ok(r) => Some((a, r)),
                    Err(e) => {
                        tracing::warn!(account = a, error = %e, "cannot load rooms");
                        None
                    }
                })
                .collect::<Vec<_>>()
        },
        |ui, w, all| {
            {
                let mut st = ui.state.borrow_mut();
                for (account, records) in &all {
                    st.rooms.load(account, records);
                }
            }
            refresh(ui, w);
            super::chat::refresh_header(ui, w);
        },
    );
}
