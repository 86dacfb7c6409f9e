//! `SettingsAdapter`: accounts (add, remove, reconnect, first-sync depth), notifications
//! and theme.

use std::rc::Rc;

use slint::ComponentHandle as _;

use super::{model, s, toast};
use crate::ui::controllers::prefs::Prefs;
use crate::ui::{AccountRow, AppWindow, SettingsAdapter, Shell, Ui, background, blocking};

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
                    if matches!(state, starling_core::ConnectionState::Online { .. }) {
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
            AccountRow {
                jid: s(&a.jid),
                state: s(state),
                problem,
                first_sync_days: i32::try_from(a.first_sync_days).unwrap_or(30),
            }
        })
        .collect();
    w.global::<SettingsAdapter>().set_accounts(model(rows));
}
