//! `ProfileAdapter`: a person's page in the Feed pane — their name and address, and their
//! posts (the stored ones at once, then their newest from their server).
//!
//! The avatar is the initials circle for now: the core's profiles (`Client::profile`,
//! XEP-0084 avatars) are being added; their picture and vCard fields go in `show` and
//! `on_profile` when they land.

use std::rc::Rc;

use slint::ComponentHandle as _;
use starling_core::Error;
use starling_core::store::ProfileRecord;

use super::feed::{self as feed_adapter, Which};
use super::{color, s};
use crate::ui::controllers::feed::{self, PROFILE_FETCH};
use crate::ui::controllers::format;
use crate::ui::{AppWindow, Pane, ProfileAdapter, Shell, Ui, background};

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
    set_name(ui, &w, &account, &jid, None);
    g.set_tint(color(format::tint(&jid)));
    g.set_open(true);
    w.global::<Shell>().set_pane(Pane::Feed);
    if same {
        return;
    }
    g.set_status(Default::default());
    feed_adapter::load(ui, Which::Profile, account.clone(), Some(jid.clone()));
    fetch(ui, account, jid);
}

/// The page's name: the roster name, else a name they gave (profile or posts), else the
/// address.
fn set_name(ui: &Ui, w: &AppWindow, account: &str, jid: &str, given: Option<&str>) {
    let name = {
        let st = ui.state.borrow();
        let names = |j: &str| st.people.roster_name(account, j);
        let from_posts = st
            .feed
            .profile
            .feed
            .as_ref()
            .and_then(|f| f.posts().iter().find_map(|p| p.author_name.clone()));
        let given = given.map(str::to_owned).or(from_posts);
        if jid == account {
            // Our own page: our address (the feed calls us "You").
            given.unwrap_or_else(|| jid.to_owned())
        } else {
            feed::display_name(jid, given.as_deref(), account, &names)
        }
    };
    let g = w.global::<ProfileAdapter>();
    g.set_initials(s(format::initials(&name)));
    g.set_name(s(name));
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
    if let Some((account, jid)) = showing(ui) {
        set_name(ui, w, &account, &jid, None);
    }
}

/// Someone's profile changed: their page shows the new name.
pub(super) fn on_profile(ui: &Rc<Ui>, w: &AppWindow, account: &str, profile: &ProfileRecord) {
    if showing(ui).is_some_and(|(a, j)| a == account && j == profile.jid) {
        let given = profile
            .full_name
            .as_deref()
            .or(profile.nick.as_deref())
            .filter(|n| !n.trim().is_empty());
        set_name(ui, w, account, &profile.jid, given);
    }
}

fn close(ui: &Rc<Ui>) {
    feed_adapter::clear(ui, Which::Profile);
    if let Some(w) = ui.window.upgrade() {
        let g = w.global::<ProfileAdapter>();
        g.set_open(false);
        g.set_updating(false);
    }
}
