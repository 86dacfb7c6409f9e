//! `SettingsAdapter`: accounts (add, remove, reconnect, first-sync depth), our profile as
//! others see it (picture, nickname, vCard4 name, about, web site), notifications and theme.
//!
//! The picture is chosen with the desktop's file chooser when there is one (`zenity` or
//! `kdialog`; Slint has no file dialog, and its winit backend does not deliver files dropped
//! from other applications), or typed as a path; it is previewed before saving.

use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use slint::{ComponentHandle as _, Image};
use starling_core::ConnectionState;
use starling_core::store::ProfileRecord;

use super::{color, model, s, toast};
use crate::ui::controllers::format;
use crate::ui::controllers::prefs::Prefs;
use crate::ui::controllers::profile::{self, ProfileForm};
use crate::ui::{AccountRow, AppWindow, SettingsAdapter, Shell, Ui, background, blocking};

/// The own-profile form's state.
#[derive(Default)]
pub struct OwnProfile {
    /// The account whose profile the form edits.
    account: Option<String>,
    /// What the fields were last filled with (to keep what the user typed since).
    filled: ProfileForm,
    /// Our profile as published: what "changed" is measured against.
    saved: ProfileForm,
    /// The chosen picture, decoded (shown instead of the current one until saved).
    preview: Option<Image>,
    /// Waits for typing in the picture field to pause before previewing.
    preview_timer: slint::Timer,
}

pub(super) fn install(ui: &Rc<Ui>, w: &AppWindow) {
    let g = w.global::<SettingsAdapter>();
    g.set_profile_dir(s(ui.client.profile_dir().display().to_string()));
    let u = ui.clone();
    g.on_notifications_toggled(move |on| {
        let prefs = {
            let mut st = u.state.borrow_mut();
            st.prefs.notifications = on;
            st.prefs.clone()
        };
        save_prefs(&u, prefs);
    });
    let u = ui.clone();
    g.on_theme_chosen(move |theme| {
        let Some(w) = u.window.upgrade() else { return };
        super::shell::apply_theme(&w, theme);
        let prefs = {
            let mut st = u.state.borrow_mut();
            st.prefs.theme = theme;
            st.prefs.clone()
        };
        save_prefs(&u, prefs);
    });
    let u = ui.clone();
    g.on_auto_download_chosen(move |choice| {
        let prefs = {
            let mut st = u.state.borrow_mut();
            st.prefs.auto_download = choice;
            st.prefs.clone()
        };
        u.client.set_auto_download(prefs.auto_download_limit());
        save_prefs(&u, prefs);
    });
    let weak = w.as_weak();
    g.on_add_account(move || {
        if let Some(w) = weak.upgrade() {
            super::wizard::show(&w, true);
        }
    });
    let u = ui.clone();
    g.on_remove_account(move |jid| {
        let client = u.client.clone();
        let jid = jid.to_string();
        let j = jid.clone();
        background(
            &u,
            async move { client.remove_account(&j).await },
            move |ui, w, r| match r {
                Ok(()) => {
                    {
                        let mut st = ui.state.borrow_mut();
                        st.people.forget_account(&jid);
                        st.avatars.forget_account(&jid);
                        st.rooms.forget_account(&jid);
                        st.status.remove(&jid);
                        if st.open_conversation().is_some_and(|(a, _)| a == jid) {
                            st.timeline = None;
                            st.chat.close();
                        }
                    }
                    if ui.state.borrow().timeline.is_none() {
                        w.global::<crate::ui::ChatAdapter>().set_is_open(false);
                    }
                    load_accounts(ui, false);
                }
                Err(e) => toast(ui, w, format!("Cannot remove {jid}: {e}")),
            },
        );
    });
    let u = ui.clone();
    g.on_reconnect(move |jid| {
        let client = u.client.clone();
        background(
            &u,
            async move {
                client.disconnect(&jid).await;
                client.connect(&jid).await
            },
            |ui, w, r| {
                if let Err(e) = r {
                    toast(ui, w, format!("Cannot connect: {e}"));
                }
            },
        );
    });
    let u = ui.clone();
    g.on_profile_account_chosen(move |idx| {
        let Some(w) = u.window.upgrade() else { return };
        let accounts = super::account_jids(&u);
        if let Some(a) = usize::try_from(idx).ok().and_then(|i| accounts.get(i)) {
            open_profile(&u, &w, a.clone());
        }
    });
    let u = ui.clone();
    g.on_choose_picture(move || choose_picture(&u));
    let u = ui.clone();
    g.on_picture_path_edited(move |_| {
        let u2 = u.clone();
        u.state.borrow().own_profile.preview_timer.start(
            slint::TimerMode::SingleShot,
            Duration::from_millis(400),
            move || preview(&u2),
        );
    });
    let u = ui.clone();
    g.on_save_profile(move || save_profile(&u));
    let u = ui.clone();
    g.on_first_sync_chosen(move |jid, days| {
        let days = u32::try_from(days).unwrap_or(30);
        let jid = jid.to_string();
        blocking(
            &u,
            move |client| client.set_first_sync_days(&jid, days),
            |ui, w, r| match r {
                Ok(()) => load_accounts(ui, false),
                Err(e) => toast(ui, w, format!("Cannot save: {e}")),
            },
        );
    });
}

fn save_prefs(ui: &Rc<Ui>, prefs: Prefs) {
    let dir = ui.client.profile_dir().to_path_buf();
    blocking(
        ui,
        move |_| prefs.save(&dir),
        |ui, w, r| {
            if let Err(e) = r {
                toast(ui, w, format!("Cannot save settings: {e}"));
            }
        },
    );
}

/// Loads accounts and preferences; at startup also connects every account (or shows the
/// wizard when there is none).
pub(crate) fn load_accounts(ui: &Rc<Ui>, startup: bool) {
    let dir = ui.client.profile_dir().to_path_buf();
    blocking(
        ui,
        move |client| (client.accounts(), Prefs::load(&dir)),
        move |ui, w, (accounts, prefs)| {
            let accounts = match accounts {
                Ok(a) => a,
                Err(e) => {
                    toast(ui, w, format!("Cannot read the profile: {e}"));
                    return;
                }
            };
            let none = accounts.is_empty();
            let now = std::time::Instant::now();
            let mut online = Vec::new();
            {
                let mut st = ui.state.borrow_mut();
                for a in &accounts {
                    let state = ui.client.connection_state(&a.jid);
                    if matches!(state, ConnectionState::Online { .. }) {
                        online.push(a.jid.clone());
                    }
                    st.status.set_state(&a.jid, state, now);
                }
                st.accounts = accounts;
                if startup {
                    st.prefs = prefs.clone();
                }
            }
            if startup {
                let g = w.global::<SettingsAdapter>();
                g.set_notifications(prefs.notifications);
                g.set_theme(prefs.theme);
                g.set_auto_download(prefs.auto_download);
                ui.client.set_auto_download(prefs.auto_download_limit());
                super::shell::apply_theme(w, prefs.theme);
            }
            if none {
                super::wizard::show(w, false);
            } else if startup {
                w.global::<Shell>().set_screen(crate::ui::Screen::Main);
                let client = ui.client.clone();
                background(
                    ui,
                    async move { client.connect_all().await },
                    |_ui, w, r| {
                        if let Err(e) = r {
                            let shell = w.global::<Shell>();
                            shell.set_connection_text(s(e.to_string()));
                            shell.set_connection_problem(true);
                            tracing::warn!(error = %e, "cannot go online");
                        }
                    },
                );
            }
            refresh(ui, w);
            refresh_profile_accounts(ui, w);
            super::shell::refresh_status(ui, w);
            super::feed::on_accounts(ui, w);
            super::contacts::reload(ui);
            super::room::reload(ui);
            super::conversations::reload_invitations(ui);
            for jid in &online {
                super::contacts::on_online(ui, jid);
            }
            super::conversations::schedule_reload(ui);
        },
    );
}

pub(super) fn refresh(ui: &Rc<Ui>, w: &AppWindow) {
    let now = std::time::Instant::now();
    let st = ui.state.borrow();
    let rows: Vec<AccountRow> = st
        .accounts
        .iter()
        .map(|a| {
            let (state, problem) = st.status.account_text(&a.jid, now);
            let nick = st.people.nick(&a.jid, &a.jid).unwrap_or_default();
            AccountRow {
                jid: s(&a.jid),
                nick: s(nick),
                initials: s(format::initials(if nick.is_empty() {
                    &a.jid
                } else {
                    nick
                })),
                tint: color(format::tint(&a.jid)),
                picture: super::avatars::picture(&st, &a.jid, &a.jid),
                state: s(state),
                problem,
                security: s(st.status.security_text(&a.jid)),
                first_sync_days: i32::try_from(a.first_sync_days).unwrap_or(30),
            }
        })
        .collect();
    let own: Vec<(String, String)> = st
        .accounts
        .iter()
        .map(|a| (a.jid.clone(), a.jid.clone()))
        .collect();
    w.global::<SettingsAdapter>().set_accounts(model(rows));
    drop(st);
    super::avatars::want(ui, own);
}

// ---- our profile ----

/// The accounts changed: the form offers them, and edits the first one unless it edits
/// one that is still there.
fn refresh_profile_accounts(ui: &Rc<Ui>, w: &AppWindow) {
    let accounts = super::account_jids(ui);
    let g = w.global::<SettingsAdapter>();
    g.set_profile_accounts(model(accounts.iter().map(s).collect()));
    let current = ui.state.borrow().own_profile.account.clone();
    match current.and_then(|c| accounts.iter().position(|a| *a == c)) {
        Some(i) => g.set_profile_index(i32::try_from(i).unwrap_or(0)),
        None => match accounts.first() {
            Some(a) => open_profile(ui, w, a.clone()),
            None => ui.state.borrow_mut().own_profile = OwnProfile::default(),
        },
    }
}

fn editing(ui: &Ui) -> Option<String> {
    ui.state.borrow().own_profile.account.clone()
}

fn form_of(w: &AppWindow) -> ProfileForm {
    let g = w.global::<SettingsAdapter>();
    ProfileForm {
        nick: g.get_profile_nick().into(),
        full_name: g.get_profile_full_name().into(),
        bio: g.get_profile_bio().into(),
        url: g.get_profile_url().into(),
        picture: g.get_profile_picture_path().into(),
    }
}

fn set_form(w: &AppWindow, f: &ProfileForm) {
    let g = w.global::<SettingsAdapter>();
    g.set_profile_nick(s(&f.nick));
    g.set_profile_full_name(s(&f.full_name));
    g.set_profile_bio(s(&f.bio));
    g.set_profile_url(s(&f.url));
}

/// Shows `account`'s profile in the form: the stored one at once, then the published one.
fn open_profile(ui: &Rc<Ui>, w: &AppWindow, account: String) {
    {
        let mut st = ui.state.borrow_mut();
        let op = &mut st.own_profile;
        op.account = Some(account.clone());
        op.filled = ProfileForm::default();
        op.saved = ProfileForm::default();
        op.preview = None;
        op.preview_timer.stop();
    }
    let accounts = super::account_jids(ui);
    let g = w.global::<SettingsAdapter>();
    if let Some(i) = accounts.iter().position(|a| *a == account) {
        g.set_profile_index(i32::try_from(i).unwrap_or(0));
    }
    set_form(w, &ProfileForm::default());
    g.set_profile_picture_path(Default::default());
    g.set_profile_error(Default::default());
    g.set_profile_status(Default::default());
    refresh_profile_picture(ui, w);
    let a = account.clone();
    blocking(
        ui,
        move |client| client.profile(&a, &a),
        move |ui, w, r| match r {
            Ok(p) => fill(ui, w, &account, p.as_ref()),
            Err(e) => tracing::debug!(account, error = %e, "no stored profile of ours"),
        },
    );
    fetch_own(ui, w);
}

/// Asks the server for our published profile (when online); it comes back as an event.
fn fetch_own(ui: &Rc<Ui>, w: &AppWindow) {
    let Some(account) = editing(ui) else { return };
    if !matches!(
        ui.client.connection_state(&account),
        ConnectionState::Online { .. }
    ) {
        return;
    }
    let g = w.global::<SettingsAdapter>();
    if g.get_profile_status().is_empty() {
        g.set_profile_status(s("Reading your profile from the server…"));
    }
    let client = ui.client.clone();
    background(
        ui,
        async move {
            client
                .fetch_profile(&account, &account)
                .await
                .map(|p| (account, p))
        },
        |ui, w, r| {
            let g = w.global::<SettingsAdapter>();
            if g.get_profile_status() == "Reading your profile from the server…" {
                g.set_profile_status(Default::default());
            }
            match r {
                Ok((account, p)) => fill(ui, w, &account, Some(&p)),
                Err(e) => tracing::debug!(error = %e, "our profile not fetched"),
            }
        },
    );
}

/// Fills the form with `p` (our profile on `account`), keeping what the user typed since.
fn fill(ui: &Rc<Ui>, w: &AppWindow, account: &str, p: Option<&ProfileRecord>) {
    if editing(ui).as_deref() != Some(account) {
        return;
    }
    let fresh = ProfileForm::from_profile(p);
    let merged = {
        let mut st = ui.state.borrow_mut();
        let merged = form_of(w).merged(&st.own_profile.filled, &fresh);
        st.own_profile.filled = fresh.clone();
        st.own_profile.saved = fresh;
        merged
    };
    set_form(w, &merged);
    refresh_profile_picture(ui, w);
}

/// The form's avatar: the chosen picture's preview, else our current picture.
pub(super) fn refresh_profile_picture(ui: &Rc<Ui>, w: &AppWindow) {
    let g = w.global::<SettingsAdapter>();
    let st = ui.state.borrow();
    let Some(account) = st.own_profile.account.as_deref() else {
        return;
    };
    let nick = st.people.nick(account, account).unwrap_or_default();
    g.set_profile_initials(s(format::initials(if nick.is_empty() {
        account
    } else {
        nick
    })));
    g.set_profile_tint(color(format::tint(account)));
    g.set_profile_picture(
        st.own_profile
            .preview
            .clone()
            .unwrap_or_else(|| super::avatars::picture(&st, account, account)),
    );
}

/// Our profile changed (saved here, from another device, or fetched).
pub(super) fn on_profile(ui: &Rc<Ui>, w: &AppWindow, account: &str, p: &ProfileRecord) {
    if p.jid == account && editing(ui).as_deref() == Some(account) {
        fill(ui, w, account, Some(p));
    }
}

/// A fresh session: the form's account reads its published profile.
pub(super) fn on_online(ui: &Rc<Ui>, w: &AppWindow, account: &str) {
    if editing(ui).as_deref() == Some(account) {
        fetch_own(ui, w);
    }
    // How the new session is secured, for the account's card.
    let client = ui.client.clone();
    let jid = account.to_owned();
    background(
        ui,
        async move {
            let info = client.connection_info(&jid).await;
            (jid, info)
        },
        |ui, w, (jid, info)| match info {
            Ok(Some(info)) => {
                ui.state.borrow_mut().status.set_security(&jid, info);
                refresh(ui, w);
            }
            Ok(None) => {}
            Err(e) => tracing::debug!(account = %jid, error = %e, "no connection info"),
        },
    );
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// Decodes the picture the field names (off the UI thread) and shows it in the form.
fn preview(ui: &Rc<Ui>) {
    let Some(w) = ui.window.upgrade() else { return };
    let text = w.global::<SettingsAdapter>().get_profile_picture_path();
    let Some(path) = profile::picture_path(&text, home().as_deref()) else {
        ui.state.borrow_mut().own_profile.preview = None;
        w.global::<SettingsAdapter>()
            .set_profile_error(Default::default());
        refresh_profile_picture(ui, &w);
        return;
    };
    blocking(
        ui,
        move |_| super::avatars::read_picture(&path),
        move |ui, w, r| {
            let g = w.global::<SettingsAdapter>();
            if g.get_profile_picture_path() != text {
                return; // typed on since
            }
            match r {
                Ok(px) => {
                    ui.state.borrow_mut().own_profile.preview = Some(Image::from_rgba8(px));
                    g.set_profile_error(Default::default());
                }
                Err(e) => {
                    ui.state.borrow_mut().own_profile.preview = None;
                    g.set_profile_error(s(format!("Cannot use this picture: {e}.")));
                }
            }
            refresh_profile_picture(ui, w);
        },
    );
}

/// Asks the desktop's file chooser for a picture.
fn choose_picture(ui: &Rc<Ui>) {
    background(
        ui,
        super::files::choose_file(
            "Choose your picture",
            Some((
                "Images | *.png *.jpg *.jpeg *.webp *.PNG *.JPG *.JPEG *.WEBP",
                "image/png image/jpeg image/webp",
            )),
        ),
        |ui, w, r| {
            let g = w.global::<SettingsAdapter>();
            match r {
                Ok(Some(path)) => {
                    g.set_profile_picture_path(s(path));
                    preview(ui);
                }
                // Cancelled.
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "no file chooser");
                    g.set_profile_error(s(
                        "No file chooser (zenity or kdialog) was found: type the path of the picture in the field.",
                    ));
                }
            }
        },
    );
}

fn save_profile(ui: &Rc<Ui>) {
    let (Some(w), Some(account)) = (ui.window.upgrade(), editing(ui)) else {
        return;
    };
    let g = w.global::<SettingsAdapter>();
    if g.get_profile_busy() {
        return;
    }
    let form = form_of(&w);
    let update = form.update(&ui.state.borrow().own_profile.saved, home().as_deref());
    let Some(update) = update else {
        g.set_profile_error(Default::default());
        g.set_profile_status(s("Nothing changed."));
        return;
    };
    g.set_profile_busy(true);
    g.set_profile_error(Default::default());
    g.set_profile_status(Default::default());
    let client = ui.client.clone();
    let a = account.clone();
    background(
        ui,
        async move { client.set_profile(&a, update).await },
        move |ui, w, r| {
            let g = w.global::<SettingsAdapter>();
            g.set_profile_busy(false);
            match r {
                Ok(p) => {
                    g.set_profile_picture_path(Default::default());
                    ui.state.borrow_mut().own_profile.preview = None;
                    g.set_profile_status(s("Saved."));
                    // What we typed is what was published.
                    if editing(ui).as_deref() == Some(account.as_str()) {
                        ui.state.borrow_mut().own_profile.filled = form_of(w);
                    }
                    fill(ui, w, &account, Some(&p));
                }
                Err(e) => {
                    g.set_profile_error(s(profile::explain(&account, &e)));
                    // Some parts may have been published before the error.
                    let a = account.clone();
                    blocking(
                        ui,
                        move |client| client.profile(&a, &a),
                        move |ui, _w, r| {
                            if let Ok(p) = r
                                && editing(ui).as_deref() == Some(account.as_str())
                            {
                                ui.state.borrow_mut().own_profile.saved =
                                    ProfileForm::from_profile(p.as_ref());
                            }
                        },
                    );
                }
            }
        },
    );
}
