//! People's pictures and nicknames in every view (no global of its own: the views' items
//! carry a `picture`). The controller ([`Avatars`]) decides; this module does its work off
//! the UI thread — reading profiles from the store, decoding image files, fetching
//! profiles from the network a few at a time — and refreshes the views when pictures or
//! names change.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use slint::{Image, Rgba8Pixel, SharedPixelBuffer};
use starling_core::store::ProfileRecord;
use starling_core::{Client, ConnectionState, Error};

use super::State;
use crate::ui::controllers::avatars::{self, Avatars, Key, PICTURE_SIZE, Work};
use crate::ui::{AppWindow, Ui, background, blocking};

/// The controller with Slint images.
pub type Pictures = Avatars<Image>;

/// Pictures decoded per job (jobs run in parallel on the blocking pool, and each one's
/// pictures show as soon as it is done).
const DECODE_CHUNK: usize = 24;

thread_local! {
    /// People whose rows came into view since the last flush. Slint calls `seen` while it
    /// lays rows out, possibly while an adapter holds the state: this queue is separate.
    static SEEN: RefCell<Vec<Key>> = const { RefCell::new(Vec::new()) };
    static FLUSH_SCHEDULED: Cell<bool> = const { Cell::new(false) };
    static REFRESH_SCHEDULED: Cell<bool> = const { Cell::new(false) };
}

/// The picture of `jid` (an empty image — the initials show — when there is none).
pub(super) fn picture(st: &State, account: &str, jid: &str) -> Image {
    st.avatars
        .picture(account, jid)
        .cloned()
        .unwrap_or_default()
}

/// A view shows these people: read the profiles we do not know yet.
pub(super) fn want(ui: &Rc<Ui>, keys: Vec<Key>) {
    let added = {
        let mut st = ui.state.borrow_mut();
        keys.iter()
            .fold(false, |any, (a, j)| st.avatars.want(a, j) || any)
    };
    if added {
        schedule(ui);
    }
}

/// A row showing `jid` came into view (from Slint): fetch their profile once.
pub(super) fn seen(ui: &Rc<Ui>, account: &str, jid: &str) {
    let queued = SEEN.with(|s| match s.try_borrow_mut() {
        Ok(mut s) => {
            s.push((account.to_owned(), jid.to_owned()));
            true
        }
        Err(_) => false,
    });
    if queued {
        schedule(ui);
    }
}

/// A profile page opened: fetching it there counts as the session's fetch.
pub(super) fn fetched_now(ui: &Rc<Ui>, account: &str, jid: &str) {
    ui.state.borrow_mut().avatars.fetched_now(account, jid);
}

/// A fresh session: our own profile and the people seen meanwhile are fetched.
pub(super) fn on_online(ui: &Rc<Ui>, account: &str) {
    {
        let mut st = ui.state.borrow_mut();
        st.avatars.went_online(account);
        st.avatars.seen(account, account, true);
    }
    schedule(ui);
}

pub(super) fn on_offline(ui: &Rc<Ui>, account: &str) {
    ui.state.borrow_mut().avatars.went_offline(account);
}

/// Someone's profile changed: their nickname and picture. Returns whether what the views
/// show changed at once (a new picture shows once it is decoded).
pub(super) fn on_profile(ui: &Rc<Ui>, account: &str, profile: &ProfileRecord) -> bool {
    let (shown, work) = {
        let mut st = ui.state.borrow_mut();
        let nick = st
            .people
            .set_nick(account, &profile.jid, profile.nick.as_deref());
        let before = st.avatars.picture(account, &profile.jid).cloned();
        let work = st
            .avatars
            .on_profile(account, &profile.jid, profile.avatar.as_deref());
        let after = st.avatars.picture(account, &profile.jid);
        (nick || before.as_ref() != after, work)
    };
    if work {
        schedule(ui);
    }
    shown
}

fn schedule(ui: &Rc<Ui>) {
    if FLUSH_SCHEDULED.with(|f| f.replace(true)) {
        return;
    }
    let u = ui.clone();
    slint::Timer::single_shot(Duration::from_millis(20), move || {
        FLUSH_SCHEDULED.with(|f| f.set(false));
        flush(&u);
    });
}

/// Starts what the controller asks for: store reads, decoding, fetches.
fn flush(ui: &Rc<Ui>) {
    let seen = SEEN.with(|s| s.try_borrow_mut().map(|mut s| std::mem::take(&mut *s)));
    let seen = seen.unwrap_or_default();
    let (work, fetches) = {
        let mut st = ui.state.borrow_mut();
        for (a, j) in seen {
            let online = matches!(
                ui.client.connection_state(&a),
                ConnectionState::Online { .. }
            );
            st.avatars.seen(&a, &j, online);
        }
        (st.avatars.take_work(), st.avatars.next_fetches())
    };
    run(ui, work);
    for (account, jid) in fetches {
        fetch(ui, account, jid);
    }
}

/// What a decoding job found for one picture.
enum Decoded {
    Ready(SharedPixelBuffer<Rgba8Pixel>),
    /// The file now holds another picture (it changed meanwhile).
    Stale,
    Failed,
}

fn run(ui: &Rc<Ui>, work: Work) {
    if !work.load.is_empty() {
        let load = work.load;
        blocking(
            ui,
            move |client| {
                load.into_iter()
                    .map(|(a, j)| {
                        let p = client.profile(&a, &j).unwrap_or_else(|e| {
                            tracing::debug!(account = a, jid = j, error = %e, "no stored profile");
                            None
                        });
                        ((a, j), p)
                    })
                    .collect::<Vec<_>>()
            },
            |ui, w, loaded| {
                let (names, work) = {
                    let mut st = ui.state.borrow_mut();
                    let st = &mut *st;
                    let mut names = false;
                    for ((a, j), p) in &loaded {
                        let p = p.as_ref();
                        names |= st.people.set_nick(a, j, p.and_then(|p| p.nick.as_deref()));
                        st.avatars.loaded(a, j, p.and_then(|p| p.avatar.as_deref()));
                    }
                    (names, st.avatars.take_work())
                };
                run(ui, work);
                if names {
                    refresh_views(ui, w);
                }
            },
        );
    }
    for chunk in work.decode.chunks(DECODE_CHUNK) {
        let chunk = chunk.to_vec();
        blocking(
            ui,
            move |client| {
                chunk
                    .into_iter()
                    .map(|(id, (a, j))| {
                        let r = decode_file(&client, &a, &j, &id);
                        (id, r)
                    })
                    .collect::<Vec<_>>()
            },
            |ui, _w, decoded| {
                let mut shown = false;
                {
                    let mut st = ui.state.borrow_mut();
                    for (id, r) in decoded {
                        match r {
                            Decoded::Ready(px) => {
                                shown |= st.avatars.decoded(&id, Some(Image::from_rgba8(px)));
                            }
                            Decoded::Failed => {
                                st.avatars.decoded(&id, None);
                            }
                            Decoded::Stale => st.avatars.stale(&id),
                        }
                    }
                }
                if shown {
                    schedule_refresh(ui);
                }
            },
        );
    }
}

/// Reads and decodes `jid`'s cached picture, expected to be `id` (on the blocking pool).
fn decode_file(client: &Client, account: &str, jid: &str, id: &str) -> Decoded {
    let path = match client.avatar_path(account, jid) {
        Ok(Some(p)) => p,
        Ok(None) => return Decoded::Failed,
        Err(e) => {
            tracing::debug!(account, jid, error = %e, "no avatar file");
            return Decoded::Failed;
        }
    };
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    if !stem.eq_ignore_ascii_case(id) {
        return Decoded::Stale;
    }
    match read_picture(&path) {
        Ok(px) => Decoded::Ready(px),
        Err(e) => {
            tracing::debug!(account, jid, error = %e, "avatar not shown");
            Decoded::Failed
        }
    }
}

/// An image file as a round picture for the views (blocking: call it off the UI thread).
pub(super) fn read_picture(
    path: &std::path::Path,
) -> Result<SharedPixelBuffer<Rgba8Pixel>, String> {
    let len = std::fs::metadata(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .len();
    if len > avatars::MAX_FILE_BYTES {
        return Err("the picture is too large (at most 8 MB)".to_owned());
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let rgba = avatars::decode(&bytes, PICTURE_SIZE)?;
    Ok(SharedPixelBuffer::clone_from_slice(
        &rgba,
        PICTURE_SIZE,
        PICTURE_SIZE,
    ))
}

/// Fetches `jid`'s profile; what changed arrives as `Event::Profile`.
fn fetch(ui: &Rc<Ui>, account: String, jid: String) {
    let client = ui.client.clone();
    let (a, j) = (account.clone(), jid.clone());
    background(
        ui,
        async move { client.fetch_profile(&a, &j).await },
        move |ui, _w, r| {
            let offline = matches!(r, Err(Error::NotConnected(_)));
            if let Err(e) = &r {
                tracing::debug!(account, jid, error = %e, "profile not fetched");
            }
            ui.state
                .borrow_mut()
                .avatars
                .fetch_done(&account, &jid, offline);
            schedule(ui);
        },
    );
}

/// Refreshes every view that shows people, soon (once for a burst of pictures).
pub(super) fn schedule_refresh(ui: &Rc<Ui>) {
    if REFRESH_SCHEDULED.with(|f| f.replace(true)) {
        return;
    }
    let u = ui.clone();
    slint::Timer::single_shot(Duration::from_millis(50), move || {
        REFRESH_SCHEDULED.with(|f| f.set(false));
        if let Some(w) = u.window.upgrade() {
            refresh_views(&u, &w);
        }
    });
}

/// Pictures or names changed: every view that shows people takes them.
pub(super) fn refresh_views(ui: &Rc<Ui>, w: &AppWindow) {
    super::conversations::refresh(ui, w);
    super::contacts::refresh(ui, w);
    super::chat::refresh_header(ui, w);
    super::feed::refresh_names(ui, w);
    super::profile::refresh_person(ui, w);
    super::settings::refresh(ui, w);
    super::settings::refresh_profile_picture(ui, w);
    super::room::refresh_pictures(ui);
}
