//! `JoinAdapter`: the join / create room dialog (Ctrl+J), with browsing of the server's
//! group chat services and their public rooms.

use std::rc::Rc;

use slint::ComponentHandle as _;
use starling_core::store::RoomRecord;

use super::{model, s};
use crate::ui::controllers::rooms::{self, Listing, RoomSettings};
use crate::ui::{AppWindow, JoinAdapter, RoomListing, Ui, background, blocking};

/// The join dialog's own state.
#[derive(Default)]
pub struct Join {
    /// The rooms the dialog's account knows (for the nick suggestion).
    known: Vec<RoomRecord>,
    /// The first group chat service found (short room names are put on it).
    service: Option<String>,
    /// Everything browsing found, before the filter.
    listings: Vec<Listing>,
}

pub(super) fn install(ui: &Rc<Ui>, w: &AppWindow) {
    let g = w.global::<JoinAdapter>();
    let u = ui.clone();
    g.on_show(move || show(&u, None));
    let u = ui.clone();
    g.on_room_edited(move |text| {
        if let Some(w) = u.window.upgrade() {
            suggest_nick(&u, &w, &text);
        }
    });
    let u = ui.clone();
    g.on_browse(move || browse(&u));
    let u = ui.clone();
    g.on_browse_filter_edited(move |_| {
        if let Some(w) = u.window.upgrade() {
            show_listings(&u, &w);
        }
    });
    let u = ui.clone();
    g.on_pick(move |room| {
        if let Some(w) = u.window.upgrade() {
            let g = w.global::<JoinAdapter>();
            g.set_room(room.clone());
            g.set_browsing(false);
            g.set_error(Default::default());
            g.set_error_field(Default::default());
            suggest_nick(&u, &w, &room);
        }
    });
    let u = ui.clone();
    g.on_submit(move || submit(&u));
    let weak = w.as_weak();
    g.on_cancel(move || {
        if let Some(w) = weak.upgrade() {
            // A join in flight goes on; the room shows up in the list when it is done.
            w.global::<JoinAdapter>().set_open(false);
        }
    });
}

/// The account the dialog acts for.
fn account(ui: &Ui, w: &AppWindow) -> Option<String> {
    let idx = usize::try_from(w.global::<JoinAdapter>().get_account_index()).unwrap_or(0);
    let st = ui.state.borrow();
    st.accounts
        .get(idx)
        .or(st.accounts.first())
        .map(|a| a.jid.clone())
}

/// Opens the dialog, empty or with a room filled in (an invitation that needs a password).
pub(crate) fn show(ui: &Rc<Ui>, prefill: Option<(&str, &str, &str)>) {
    let Some(w) = ui.window.upgrade() else { return };
    let g = w.global::<JoinAdapter>();
    let accounts = super::account_jids(ui);
    if accounts.is_empty() {
        return;
    }
    let mut index = usize::try_from(g.get_account_index()).unwrap_or(0);
    if let Some((account, _, _)) = prefill
        && let Some(i) = accounts.iter().position(|a| a == account)
    {
        index = i;
    }
    if index >= accounts.len() {
        index = 0;
    }
    g.set_accounts(model(accounts.iter().map(s).collect()));
    g.set_account_index(i32::try_from(index).unwrap_or(0));
    g.set_create(false);
    g.set_browsing(false);
    g.set_busy(false);
    g.set_room(s(prefill.map_or("", |p| p.1)));
    g.set_nick(Default::default());
    g.set_password(Default::default());
    g.set_error(s(prefill.map_or("", |p| p.2)));
    g.set_error_field(s(if prefill.is_some_and(|p| !p.2.is_empty()) {
        "password"
    } else {
        ""
    }));
    g.set_browse_filter(Default::default());
    g.set_listings(model(Vec::new()));
    g.set_browse_status(Default::default());
    let defaults = RoomSettings::for_new_room();
    g.set_name(Default::default());
    g.set_description(Default::default());
    g.set_members_only(defaults.members_only);
    g.set_moderated(defaults.moderated);
    g.set_non_anonymous(defaults.non_anonymous);
    g.set_persistent(defaults.persistent);
    g.set_public(defaults.public);
    g.set_open(true);
    let account = accounts[index].clone();
    g.set_nick_placeholder(s(rooms::default_nick(&account, None)));
    // What we know for the nick suggestion, and a service for short names of new rooms.
    let a = account.clone();
    blocking(
        ui,
        move |client| client.rooms(&a).unwrap_or_default(),
        |ui, w, known| {
            ui.state.borrow_mut().join.known = known;
            let room = w.global::<JoinAdapter>().get_room();
            suggest_nick(ui, w, &room);
        },
    );
    let client = ui.client.clone();
    background(
        ui,
        async move { client.muc_services(&account).await },
        |ui, _w, r| match r {
            Ok(services) => {
                ui.state.borrow_mut().join.service = services.first().map(|s| s.jid.clone());
            }
            Err(e) => tracing::debug!(error = %e, "no group chat service found"),
        },
    );
}

/// The nick placeholder: the room's last nick, else the account's name.
fn suggest_nick(ui: &Ui, w: &AppWindow, room: &str) {
    let Some(account) = account(ui, w) else {
        return;
    };
    let st = ui.state.borrow();
    let room = rooms::room_address(room, st.join.service.as_deref()).ok();
    let known = room
        .as_deref()
        .and_then(|r| st.join.known.iter().find(|k| k.jid == r));
    w.global::<JoinAdapter>()
        .set_nick_placeholder(s(rooms::default_nick(&account, known)));
}

fn browse(ui: &Rc<Ui>) {
    let Some(w) = ui.window.upgrade() else { return };
    let Some(account) = account(ui, &w) else {
        return;
    };
    let g = w.global::<JoinAdapter>();
    g.set_browsing(true);
    g.set_browse_busy(true);
    g.set_browse_status(s("Looking for group chat services…"));
    let client = ui.client.clone();
    background(
        ui,
        async move {
            let services = client.muc_services(&account).await?;
            let mut found = Vec::new();
            let mut failed = Vec::new();
            for service in &services {
                match client.list_rooms(&account, &service.jid).await {
                    Ok(list) => found.extend(list.into_iter().map(|r| Listing {
                        name: r.name.unwrap_or_default(),
                        jid: r.jid,
                        service: service.jid.clone(),
                    })),
                    Err(e) => failed.push(format!("{}: {}", service.jid, rooms::explain(&e))),
                }
            }
            Ok::<_, starling_core::Error>((services, found, failed))
        },
        |ui, w, r| {
            let g = w.global::<JoinAdapter>();
            g.set_browse_busy(false);
            let status = match r {
                Ok((services, found, failed)) => {
                    let status = match (services.is_empty(), found.is_empty()) {
                        (true, _) => "Your server offers no group chat service.".to_owned(),
                        (false, true) if failed.is_empty() => {
                            "No public rooms. Type a room's address, or create one.".to_owned()
                        }
                        _ => failed.join("; "),
                    };
                    let mut st = ui.state.borrow_mut();
                    if st.join.service.is_none() {
                        st.join.service = services.first().map(|s| s.jid.clone());
                    }
                    st.join.listings = found;
                    status
                }
                Err(e) => format!("Cannot browse: {}", rooms::explain(&e)),
            };
            g.set_browse_status(s(status));
            show_listings(ui, w);
        },
    );
}

fn show_listings(ui: &Ui, w: &AppWindow) {
    let g = w.global::<JoinAdapter>();
    let filter = g.get_browse_filter();
    let rows: Vec<RoomListing> = rooms::filter_listings(&ui.state.borrow().join.listings, &filter)
        .into_iter()
        .map(|l| RoomListing {
            jid: s(&l.jid),
            name: s(&l.name),
            service: s(&l.service),
        })
        .collect();
    g.set_listings(model(rows));
}

fn submit(ui: &Rc<Ui>) {
    let Some(w) = ui.window.upgrade() else { return };
    let g = w.global::<JoinAdapter>();
    if g.get_busy() {
        return;
    }
    let Some(account) = account(ui, &w) else {
        return;
    };
    let fail = |e: rooms::FormError| {
        g.set_error(s(e.text));
        g.set_error_field(s(e.field));
    };
    let service = ui.state.borrow().join.service.clone();
    let room = match rooms::room_address(&g.get_room(), service.as_deref()) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let nick = match rooms::nick_choice(&g.get_nick()) {
        Ok(n) => n,
        Err(e) => return fail(e),
    };
    let password: String = g.get_password().into();
    let create = if g.get_create() {
        let form = RoomSettings {
            name: g.get_name().into(),
            description: g.get_description().into(),
            members_only: g.get_members_only(),
            moderated: g.get_moderated(),
            non_anonymous: g.get_non_anonymous(),
            persistent: g.get_persistent(),
            public: g.get_public(),
            password_protected: !password.is_empty(),
            password: password.clone(),
            subject: String::new(),
        };
        match form.create_config() {
            Ok(c) => Some(c),
            Err(e) => return fail(e),
        }
    } else {
        None
    };
    g.set_busy(true);
    g.set_error(Default::default());
    g.set_error_field(Default::default());
    let client = ui.client.clone();
    let (a, r) = (account.clone(), room.clone());
    background(
        ui,
        async move {
            match create {
                Some(config) => client.create_room(&a, &r, nick.as_deref(), config).await,
                None => {
                    let pw = Some(password).filter(|p| !p.is_empty());
                    client
                        .join_room(&a, &r, nick.as_deref(), pw.as_deref())
                        .await
                }
            }
        },
        move |ui, w, res| {
            let g = w.global::<JoinAdapter>();
            g.set_busy(false);
            match res {
                Ok(_) => {
                    g.set_open(false);
                    super::chat::open(ui, w, &account, &room);
                }
                Err(e) => {
                    let e = rooms::join_error(&e);
                    g.set_error(s(e.text));
                    g.set_error_field(s(e.field));
                    // The dialog may have been closed while joining: say it in the window.
                    if !g.get_open() {
                        super::toast(ui, w, g.get_error());
                    }
                }
            }
        },
    );
}
