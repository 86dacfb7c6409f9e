//! `ContactsAdapter`: the roster of all accounts, subscription requests, adding and removing
//! contacts, and our own presence.

use std::rc::Rc;

use slint::ComponentHandle as _;
use starling_core::{Availability, Error, OwnPresence};

use super::{color, model, presence, s, toast};
use crate::ui::{AppWindow, ContactItem, ContactsAdapter, RequestItem, Ui, background, blocking};

pub(super) fn install(ui: &Rc<Ui>, w: &AppWindow) {
    let g = w.global::<ContactsAdapter>();
    let u = ui.clone();
    g.on_add(move |account, jid, name, group| {
        let Some(w) = u.window.upgrade() else { return };
        let g = w.global::<ContactsAdapter>();
        if let Err(e) = starling_core::parse_contact(&jid) {
            g.set_error(s(e.to_string()));
            return;
        }
        g.set_busy(true);
        g.set_error(Default::default());
        let client = u.client.clone();
        let name = Some(name.trim().to_owned()).filter(|n| !n.is_empty());
        let groups: Vec<String> = Some(group.trim().to_owned())
            .filter(|g| !g.is_empty())
            .into_iter()
            .collect();
        background(
            &u,
            async move { client.add_contact(&account, jid.trim(), name, groups).await },
            |_ui, w, r| {
                let g = w.global::<ContactsAdapter>();
                g.set_busy(false);
                match r {
                    Ok(()) => {
                        g.set_add_jid(Default::default());
                        g.set_add_name(Default::default());
                        g.set_add_group(Default::default());
                    }
                    Err(e) => g.set_error(s(explain(&e))),
                }
            },
        );
    });
    let u = ui.clone();
    g.on_remove(move |account, jid| {
        let client = u.client.clone();
        background(
            &u,
            async move { client.remove_contact(&account, &jid).await },
            report("Cannot remove the contact"),
        );
    });
    let u = ui.clone();
    g.on_approve(move |account, jid| answer(&u, account.into(), jid.into(), true));
    let u = ui.clone();
    g.on_deny(move |account, jid| answer(&u, account.into(), jid.into(), false));
    let u = ui.clone();
    g.on_open_chat(move |account, jid| {
        if let Some(w) = u.window.upgrade() {
            super::chat::open(&u, &w, &account, &jid);
        }
    });
    let u = ui.clone();
    g.on_seen(move |account, jid| super::avatars::seen(&u, &account, &jid));
    let u = ui.clone();
    g.on_set_presence(move |idx, status| {
        let show = match idx {
            1 => Availability::Away,
            2 => Availability::ExtendedAway,
            3 => Availability::DoNotDisturb,
            _ => Availability::Online,
        };
        let status = Some(status.trim().to_owned()).filter(|s| !s.is_empty());
        let accounts = super::account_jids(&u);
        for account in accounts {
            let client = u.client.clone();
            let presence = OwnPresence {
                show,
                status: status.clone(),
            };
            background(
                &u,
                async move { client.set_presence(&account, presence).await },
                report("Cannot set your presence"),
            );
        }
    });
}

fn answer(ui: &Rc<Ui>, account: String, jid: String, approve: bool) {
    let client = ui.client.clone();
    background(
        ui,
        async move {
            if approve {
                client.approve_subscription(&account, &jid).await
            } else {
                client.deny_subscription(&account, &jid).await
            }
        },
        |ui, w, r| match r {
            Ok(()) => reload(ui),
            Err(e) => toast(ui, w, explain(&e)),
        },
    );
}

fn report(what: &'static str) -> impl FnOnce(&Rc<Ui>, &AppWindow, Result<(), Error>) + Send {
    move |ui, w, r| {
        if let Err(e) = r {
            toast(ui, w, format!("{what}: {}", explain(&e)));
        }
    }
}

fn explain(e: &Error) -> String {
    match e {
        Error::NotConnected(a) => {
            format!("{a} is offline; this needs a connection. Try again when it is online.")
        }
        other => other.to_string(),
    }
}

/// After a fresh login: presence of everyone, roster and requests from the store.
pub(super) fn on_online(ui: &Rc<Ui>, account: &str) {
    let client = ui.client.clone();
    let a = account.to_owned();
    background(
        ui,
        async move { client.presences(&a).await.map(|p| (a, p)) },
        |ui, w, r| match r {
            Ok((account, list)) => {
                {
                    let mut st = ui.state.borrow_mut();
                    for p in list {
                        st.people.on_presence(
                            &account,
                            &p.jid,
                            true,
                            p.show.as_deref(),
                            p.status.as_deref(),
                        );
                    }
                }
                refresh(ui, w);
                super::conversations::refresh(ui, w);
            }
            Err(e) => tracing::debug!(error = %e, "no presences yet"),
        },
    );
    reload(ui);
}

/// Reloads rosters and requests of all accounts from the store.
pub(super) fn reload(ui: &Rc<Ui>) {
    let accounts = super::account_jids(ui);
    blocking(
        ui,
        move |client| {
            accounts
                .into_iter()
                .map(|a| {
                    let contacts = client.contacts(&a).unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "cannot load contacts");
                        Vec::new()
                    });
                    let requests = client.subscription_requests(&a).unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "cannot load requests");
                        Vec::new()
                    });
                    (a, contacts, requests)
                })
                .collect::<Vec<_>>()
        },
        |ui, w, all| {
            let mut requests = Vec::new();
            {
                let mut st = ui.state.borrow_mut();
                for (a, contacts, reqs) in all {
                    st.people.set_contacts(&a, contacts);
                    requests.extend(reqs.into_iter().map(|j| RequestItem {
                        account: s(&a),
                        jid: s(j),
                    }));
                }
            }
            w.global::<ContactsAdapter>().set_requests(model(requests));
            refresh(ui, w);
            super::feed::refresh_audiences(ui, w);
            super::feed::refresh_names(ui, w);
            super::conversations::refresh(ui, w);
            super::chat::refresh_header(ui, w);
        },
    );
}

pub(super) fn refresh(ui: &Rc<Ui>, w: &AppWindow) {
    let st = ui.state.borrow();
    let rows = st.people.contact_rows();
    let people: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r.account.clone(), r.jid.clone()))
        .collect();
    let items: Vec<ContactItem> = rows
        .into_iter()
        .map(|r| ContactItem {
            picture: super::avatars::picture(&st, &r.account, &r.jid),
            account: s(&r.account),
            jid: s(&r.jid),
            name: s(&r.name),
            initials: s(&r.initials),
            tint: color(r.tint),
            presence: presence(r.presence),
            status: s(&r.status),
            section: s(&r.section),
            detail: s(&r.detail),
        })
        .collect();
    let g = w.global::<ContactsAdapter>();
    g.set_contacts(model(items));
    g.set_accounts(model(st.accounts.iter().map(|a| s(&a.jid)).collect()));
    drop(st);
    super::avatars::want(ui, people);
}
