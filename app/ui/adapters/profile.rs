//! `ProfileAdapter`: a person's page in the Feed pane — their picture, name, address and
//! profile (nickname, full name, about, web site: the stored one at once, then theirs from
//! the network), and their posts (the stored ones at once, then their newest from their
//! server).

use std::rc::Rc;

use slint::ComponentHandle as _;
use starling_core::Error;
use starling_core::store::ProfileRecord;

use super::feed::{self as feed_adapter, Which};
use super::{color, s};
use crate::ui::controllers::feed::{self, PROFILE_FETCH};
use crate::ui::controllers::{format, profile};
use crate::ui::{AppWindow, Pane, ProfileAdapter, Shell, Ui, background, blocking};

pub(super) fn install(ui: &Rc<Ui>, w: &AppWindow) {
    let g = w.global::<ProfileAdapter>();
    let u = ui.clone();
    g.on_show(move |account, jid| show(&u, account.into(), jid.into()));
    let u = ui.clone();
    g.on_close(move || close(&u));
    let u = ui.clone();
    g.on_load_older(move || feed_adapter::load_older(&u, Which::Profile));
    let u = ui.clone();
    g.on_refresh(move || {
        if let Some((account, jid)) = showing(&u) {
            fetch(&u, account, jid);
        }
    });
    let u = ui.clone();
    g.on_message(move || {
        if let (Some(w), Some((account, jid))) = (u.window.upgrade(), showing(&u)) {
            super::chat::open(&u, &w, &account, &jid);
        }
    });
}

/// The profile shown: (account, JID).
fn showing(ui: &Ui) -> Option<(String, String)> {
    let st = ui.state.borrow();
    match st.feed.profile.showing() {
        Some((a, Some(j))) => Some((a.to_owned(), j.to_owned())),
        _ => None,
    }
}

/// Opens `jid`'s page (from the contact list or an author's name) in the Feed pane.
pub(super) fn show(ui: &Rc<Ui>, account: String, jid: String) {
    let Some(w) = ui.window.upgrade() else { return };
    let jid = match starling_core::parse_contact(jid.trim()) {
        Ok(j) => j.to_string(),
        Err(e) => {
            super::toast(ui, &w, e.to_string());
            return;
        }
    };
    let g = w.global::<ProfileAdapter>();
    let same = showing(ui) == Some((account.clone(), jid.clone()));
    g.set_account(s(&account));
    g.set_jid(s(&jid));
    g.set_is_self(jid == account);
    if !same {
        ui.state.borrow_mut().person = None;
    }
    set_name(ui, &w, &account, &jid);
    g.set_tint(color(format::tint(&jid)));
    g.set_open(true);
    w.global::<Shell>().set_pane(Pane::Feed);
    if same {
        return;
    }
    g.set_status(Default::default());
    super::avatars::want(ui, vec![(account.clone(), jid.clone())]);
    feed_adapter::load(ui, Which::Profile, account.clone(), Some(jid.clone()));
    load_profile(ui, account.clone(), jid.clone());
    fetch(ui, account, jid);
}

/// Their stored profile, then theirs from the network.
fn load_profile(ui: &Rc<Ui>, account: String, jid: String) {
    let (a, j) = (account.clone(), jid.clone());
    blocking(ui, move |client| client.profile(&a, &j), {
        let (account, jid) = (account.clone(), jid.clone());
        move |ui, w, r| match r {
            Ok(Some(p)) => on_profile(ui, w, &account, &p),
            Ok(None) => {}
            Err(e) => tracing::debug!(account, jid, error = %e, "no stored profile"),
        }
    });
    super::avatars::fetched_now(ui, &account, &jid);
    let client = ui.client.clone();
    background(
        ui,
        async move {
            client
                .fetch_profile(&account, &jid)
                .await
                .map(|p| (account, p))
        },
        |ui, w, r| match r {
            // Changes also come as events (which update the lists); this is for the page.
            Ok((account, p)) => on_profile(ui, w, &account, &p),
            Err(e) => tracing::debug!(error = %e, "profile not fetched"),
        },
    );
}

/// The page's title: the roster name, else their nickname, else the name their profile or
/// their posts give, else the address; and what their profile says besides.
fn set_name(ui: &Ui, w: &AppWindow, account: &str, jid: &str) {
    let (name, details, picture) = {
        let st = ui.state.borrow();
        let person = st.person.as_ref().filter(|p| p.jid == jid);
        let names = |j: &str| st.people.known_name(account, j);
        let from_posts = st
            .feed
            .profile
            .feed
            .as_ref()
            .and_then(|f| f.posts().iter().find_map(|p| p.author_name.clone()));
        let given = person
            .and_then(|p| p.full_name.clone())
            .filter(|n| !n.trim().is_empty())
            .or(from_posts);
        let name = if jid == account {
            // Our own page: what we call ourselves (the feed calls us "You").
            person
                .and_then(|p| p.nick.clone())
                .filter(|n| !n.trim().is_empty())
                .or(given)
                .unwrap_or_else(|| jid.to_owned())
        } else {
            feed::display_name(jid, given.as_deref(), account, &names)
        };
        let details = person
            .map(|p| profile::page_details(&name, p))
            .unwrap_or_default();
        (name, details, super::avatars::picture(&st, account, jid))
    };
    let g = w.global::<ProfileAdapter>();
    g.set_initials(s(format::initials(&name)));
    g.set_name(s(name));
    g.set_picture(picture);
    g.set_nick(s(details.nick));
    g.set_full_name(s(details.full_name));
    g.set_bio(s(details.bio));
    g.set_url(s(details.url));
}

/// Asks their server for their newest posts; they arrive through the list's diffs.
fn fetch(ui: &Rc<Ui>, account: String, jid: String) {
    let Some(w) = ui.window.upgrade() else { return };
    let g = w.global::<ProfileAdapter>();
    if g.get_updating() {
        return;
    }
    g.set_updating(true);
    let client = ui.client.clone();
    let (a, j) = (account.clone(), jid.clone());
    background(
        ui,
        async move { client.fetch_posts(&a, &j, PROFILE_FETCH).await },
        move |ui, w, r| {
            let g = w.global::<ProfileAdapter>();
            g.set_updating(false);
            if showing(ui) != Some((account, jid)) {
                return;
            }
            match r {
                Ok(_) => g.set_status(Default::default()),
                Err(Error::NotConnected(_)) => {
                    g.set_status(s("Offline: showing the posts stored on this device."));
                }
                Err(e) => g.set_status(s(format!("Cannot fetch their posts: {e}"))),
            }
        },
    );
}

/// The page's posts were loaded from the store.
pub(super) fn on_loaded(ui: &Rc<Ui>, w: &AppWindow) {
    refresh_person(ui, w);
}

/// Names or pictures changed: the page's header follows.
pub(super) fn refresh_person(ui: &Rc<Ui>, w: &AppWindow) {
    if let Some((account, jid)) = showing(ui) {
        set_name(ui, w, &account, &jid);
    }
}

/// Someone's profile changed (or was read): their page shows it.
pub(super) fn on_profile(ui: &Rc<Ui>, w: &AppWindow, account: &str, profile: &ProfileRecord) {
    if showing(ui).is_some_and(|(a, j)| a == account && j == profile.jid) {
        ui.state.borrow_mut().person = Some(profile.clone());
        set_name(ui, w, account, &profile.jid);
    }
}

fn close(ui: &Rc<Ui>) {
    feed_adapter::clear(ui, Which::Profile);
    ui.state.borrow_mut().person = None;
    if let Some(w) = ui.window.upgrade() {
        let g = w.global::<ProfileAdapter>();
        g.set_open(false);
        g.set_updating(false);
    }
}
