//! `FeedAdapter`: the social feed — everyone's posts newest first (the core's snapshot plus
//! its stream of diffs, paged as the list scrolls), the composer with its audiences, and
//! the open post with its comments, editing and deleting.
//!
//! The post lists (this one and a profile's, see `profile.rs`) are [`PostList`]s: a
//! controller [`Feed`] mirrored into a `VecModel` one row change at a time. Each list's
//! diffs come from a task on the runtime that forwards the core's stream in batches; it is
//! aborted when the list shows something else, and a generation number drops anything that
//! was already on its way.

use std::rc::Rc;

use futures::StreamExt as _;
use slint::{ComponentHandle as _, Model as _, ModelRc, VecModel};
use starling_core::store::{CommentRecord, PostRecord};
use starling_core::{Audience, Error, FeedDiff, PostDraft};

use super::{State, color, model, s};
use crate::ui::controllers::feed::{
    self, Change, Comments, Feed, Freshness, PAGE, PostRow, audience_choice,
};
use crate::ui::{
    AppWindow, CommentItem, FeedAdapter, LinkItem, Pane, PostItem, ProfileAdapter, Shell, Ui,
    background, blocking, on_ui,
};

/// Which list of posts: the Feed pane's or the profile page's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Which {
    Main,
    Profile,
}

/// A list of posts shown by a view, with the task that keeps it live.
#[derive(Default)]
pub(super) struct PostList {
    /// What the list shows, (account, author), from the moment it is asked for.
    target: Option<(String, Option<String>)>,
    pub(super) feed: Option<Feed>,
    rows: Rc<VecModel<PostItem>>,
    watch: Option<tokio::task::AbortHandle>,
    generation: u64,
    loading: bool,
}

impl PostList {
    /// Stops following the core and forgets the posts.
    fn clear(&mut self) {
        if let Some(h) = self.watch.take() {
            h.abort();
        }
        self.generation += 1;
        self.target = None;
        self.feed = None;
        self.loading = false;
        self.rows.set_vec(Vec::new());
    }

    /// What the list shows (or is loading): (account, author).
    pub(super) fn showing(&self) -> Option<(&str, Option<&str>)> {
        self.target
            .as_ref()
            .map(|(a, au)| (a.as_str(), au.as_deref()))
    }
}

/// The open post and its comments.
struct OpenPost {
    account: String,
    post: PostRecord,
    comments: Comments,
}

/// The feed adapter's own state (and the profile page's list).
#[derive(Default)]
pub struct FeedUi {
    pub(super) main: PostList,
    pub(super) profile: PostList,
    /// The accounts the selector offers, in its order.
    accounts: Vec<String>,
    /// The audiences the composer offers, in its order.
    audiences: Vec<Audience>,
    fresh: Freshness,
    updating: bool,
    open: Option<OpenPost>,
    comment_rows: Rc<VecModel<CommentItem>>,
    /// Files attached to the post being written: (path, "name · size").
    pub(super) attachments: Vec<(std::path::PathBuf, String)>,
}

pub(super) fn install(ui: &Rc<Ui>, w: &AppWindow) {
    let g = w.global::<FeedAdapter>();
    {
        let st = ui.state.borrow();
        g.set_posts(ModelRc::from(st.feed.main.rows.clone()));
        g.set_comments(ModelRc::from(st.feed.comment_rows.clone()));
        w.global::<ProfileAdapter>()
            .set_posts(ModelRc::from(st.feed.profile.rows.clone()));
    }
    let u = ui.clone();
    g.on_shown(move || shown(&u));
    let u = ui.clone();
    g.on_account_chosen(move |_| shown(&u));
    let u = ui.clone();
    g.on_refresh(move || {
        if let Some(account) = current_account(&u) {
            refresh(&u, account);
        }
    });
    let u = ui.clone();
    g.on_load_older(move || load_older(&u, Which::Main));
    g.on_open_link(|url| super::chat::open_link(&url));
    let u = ui.clone();
    g.on_publish(move || publish(&u));
    let u = ui.clone();
    g.on_view_picture(move |url, label| {
        if let Some(account) = current_account(&u) {
            super::files::view_remote(&u, account, url.to_string(), label.to_string());
        }
    });
    super::files::install_post_attachments(ui, w);
    let u = ui.clone();
    g.on_open_post(move |id| open_post(&u, i64::from(id)));
    let u = ui.clone();
    g.on_close_post(move || close_post(&u));
    let u = ui.clone();
    g.on_send_comment(move || send_comment(&u));
    let u = ui.clone();
    g.on_start_edit(move || {
        let Some(w) = u.window.upgrade() else { return };
        let st = u.state.borrow();
        if let Some(open) = &st.feed.open {
            let g = w.global::<FeedAdapter>();
            g.set_edit_text(s(&open.post.text));
            g.set_edit_error(Default::default());
            g.set_editing(true);
        }
    });
    let u = ui.clone();
    g.on_save_edit(move || save_edit(&u));
    let u = ui.clone();
    g.on_delete_post(move |id| delete_post(&u, i64::from(id)));
}

/// The account whose feed the Feed pane shows.
fn current_account(ui: &Ui) -> Option<String> {
    let w = ui.window.upgrade()?;
    let idx = usize::try_from(w.global::<FeedAdapter>().get_account_index()).unwrap_or(0);
    let st = ui.state.borrow();
    st.feed
        .accounts
        .get(idx)
        .or_else(|| st.feed.accounts.first())
        .cloned()
}

/// The accounts changed (loaded, added, removed): offer them, and follow the feed of the
/// chosen one if the Feed pane shows.
pub(super) fn on_accounts(ui: &Rc<Ui>, w: &AppWindow) {
    let accounts = super::account_jids(ui);
    let g = w.global::<FeedAdapter>();
    g.set_accounts(model(accounts.iter().map(s).collect()));
    if usize::try_from(g.get_account_index()).unwrap_or(0) >= accounts.len() {
        g.set_account_index(0);
    }
    ui.state.borrow_mut().feed.accounts = accounts;
    if w.global::<Shell>().get_pane() == Pane::Feed {
        shown(ui);
    }
}

/// The Feed pane is shown (or its account changed): load the account's feed if it is not
/// the one shown, and fetch everyone's newest posts once per connection.
fn shown(ui: &Rc<Ui>) {
    let (Some(w), Some(account)) = (ui.window.upgrade(), current_account(ui)) else {
        return;
    };
    refresh_audiences(ui, &w);
    let loaded = ui.state.borrow().feed.main.showing() == Some((account.as_str(), None));
    if !loaded {
        close_post(ui);
        load(ui, Which::Main, account.clone(), None);
    }
    let needs = {
        let st = ui.state.borrow();
        st.feed.fresh.needs_refresh(&account) && !st.feed.updating
    };
    if needs {
        refresh(ui, account);
    }
}

/// A fresh session began on `account`: its feed is fetched again when next shown (now, if
/// it shows).
pub(super) fn on_connected(ui: &Rc<Ui>, w: &AppWindow, account: &str) {
    ui.state.borrow_mut().feed.fresh.connected(account);
    if w.global::<Shell>().get_pane() == Pane::Feed
        && current_account(ui).as_deref() == Some(account)
    {
        shown(ui);
    }
}

/// Fetches everyone's newest posts; they arrive through the feed's diffs.
fn refresh(ui: &Rc<Ui>, account: String) {
    let Some(w) = ui.window.upgrade() else { return };
    {
        let mut st = ui.state.borrow_mut();
        if st.feed.updating {
            return;
        }
        st.feed.updating = true;
    }
    let g = w.global::<FeedAdapter>();
    g.set_updating(true);
    let client = ui.client.clone();
    let a = account.clone();
    background(
        ui,
        async move { client.refresh_feed(&a).await },
        move |ui, w, r| {
            ui.state.borrow_mut().feed.updating = false;
            let g = w.global::<FeedAdapter>();
            g.set_updating(false);
            match r {
                Ok(n) => {
                    tracing::debug!(account, posts = n, "feed refreshed");
                    ui.state.borrow_mut().feed.fresh.refreshed(&account);
                    g.set_status(Default::default());
                }
                Err(e) => {
                    tracing::debug!(account, error = %e, "feed not refreshed");
                    g.set_status(s(feed::refresh_problem(&e)));
                }
            }
        },
    );
}

/// The audiences the composer offers: Public, Contacts and the account's roster groups.
/// The choice stays when the groups change.
pub(super) fn refresh_audiences(ui: &Rc<Ui>, w: &AppWindow) {
    let Some(account) = current_account(ui) else {
        return;
    };
    let g = w.global::<FeedAdapter>();
    let new = feed::audiences(ui.state.borrow().people.groups(&account));
    let old = std::mem::replace(&mut ui.state.borrow_mut().feed.audiences, new.clone());
    if old == new {
        return;
    }
    let idx = if old.is_empty() {
        feed::DEFAULT_AUDIENCE
    } else {
        feed::reselect(
            &old,
            usize::try_from(g.get_audience_index()).unwrap_or(0),
            &new,
        )
    };
    g.set_audiences(model(new.iter().map(|a| s(audience_choice(a))).collect()));
    g.set_audience_index(i32::try_from(idx).unwrap_or(0));
}

// ---- the lists of posts ----

fn list_mut(st: &mut State, which: Which) -> &mut PostList {
    match which {
        Which::Main => &mut st.feed.main,
        Which::Profile => &mut st.feed.profile,
    }
}

fn set_paging(w: &AppWindow, which: Which, has_older: bool, loading: bool) {
    match which {
        Which::Main => {
            let g = w.global::<FeedAdapter>();
            g.set_has_older(has_older);
            g.set_loading(loading);
        }
        Which::Profile => {
            let g = w.global::<ProfileAdapter>();
            g.set_has_older(has_older);
            g.set_loading(loading);
        }
    }
}

/// Shows `account`'s feed (everyone's, or `author`'s) in a list: the store's newest page,
/// then the core's diffs as they come.
pub(super) fn load(ui: &Rc<Ui>, which: Which, account: String, author: Option<String>) {
    let generation = {
        let mut st = ui.state.borrow_mut();
        let l = list_mut(&mut st, which);
        l.clear();
        l.target = Some((account.clone(), author.clone()));
        l.generation
    };
    let client = ui.client.clone();
    let task = ui.rt.spawn(async move {
        let (a, au) = (account.clone(), author.clone());
        let subscribed = tokio::task::spawn_blocking(move || {
            client
                .feed(&a, au.as_deref(), PAGE)
                .map(|(snapshot, diffs)| (snapshot, diffs.boxed()))
        })
        .await;
        let (snapshot, diffs) = match subscribed {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::warn!(account, error = %e, "cannot read the feed");
                on_ui(move |ui, w| {
                    {
                        // Not showing it after all: the next showing tries again.
                        let mut st = ui.state.borrow_mut();
                        let l = list_mut(&mut st, which);
                        if l.generation == generation {
                            l.target = None;
                        }
                    }
                    super::toast(ui, w, format!("Cannot read the feed: {e}"));
                });
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "feed task failed");
                return;
            }
        };
        on_ui(move |ui, w| {
            show_snapshot(ui, w, which, generation, &account, author, snapshot);
        });
        // Diffs that are ready together reach the UI together.
        let mut batches = diffs.ready_chunks(256);
        while let Some(batch) = batches.next().await {
            on_ui(move |ui, w| apply_diffs(ui, w, which, generation, batch));
        }
    });
    let mut st = ui.state.borrow_mut();
    let l = list_mut(&mut st, which);
    if l.generation == generation {
        l.watch = Some(task.abort_handle());
    } else {
        task.abort();
    }
}

fn show_snapshot(
    ui: &Rc<Ui>,
    w: &AppWindow,
    which: Which,
    generation: u64,
    account: &str,
    author: Option<String>,
    snapshot: Vec<PostRecord>,
) {
    let (rows, items, has_older) = {
        let mut st = ui.state.borrow_mut();
        let st = &mut *st;
        let l = list_mut(st, which);
        if l.generation != generation {
            return;
        }
        let f = Feed::new(account, author.as_deref(), snapshot, PAGE);
        let has_older = f.has_older();
        l.feed = Some(f);
        let rows = l.rows.clone();
        let l = match which {
            Which::Main => &st.feed.main,
            Which::Profile => &st.feed.profile,
        };
        let today = chrono::Local::now().date_naive();
        let posts = l.feed.as_ref().map(|f| f.posts()).unwrap_or_default();
        let items: Vec<PostItem> = posts
            .iter()
            .map(|p| post_item(st, account, p, today))
            .collect();
        (rows, items, has_older)
    };
    rows.set_vec(items);
    want_authors(ui, account, rows.iter().map(|p| p.author.to_string()));
    set_paging(w, which, has_older, false);
    if which == Which::Profile {
        super::profile::on_loaded(ui, w);
    }
}

fn apply_diffs(ui: &Rc<Ui>, w: &AppWindow, which: Which, generation: u64, batch: Vec<FeedDiff>) {
    let (rows, account, changes, has_older) = {
        let mut st = ui.state.borrow_mut();
        let l = list_mut(&mut st, which);
        if l.generation != generation {
            return;
        }
        let Some(f) = l.feed.as_mut() else { return };
        let changes: Vec<Change> = batch.into_iter().flat_map(|d| f.apply(d)).collect();
        (l.rows.clone(), f.account.clone(), changes, f.has_older())
    };
    apply_changes(ui, &rows, &account, changes);
    set_paging(w, which, has_older, is_loading(ui, which));
}

fn is_loading(ui: &Ui, which: Which) -> bool {
    let mut st = ui.state.borrow_mut();
    list_mut(&mut st, which).loading
}

/// Mirrors controller changes into a model, one row at a time.
fn apply_changes(ui: &Rc<Ui>, rows: &VecModel<PostItem>, account: &str, changes: Vec<Change>) {
    if changes.is_empty() {
        return;
    }
    let today = chrono::Local::now().date_naive();
    let mut authors = Vec::new();
    for c in changes {
        match c {
            Change::Insert(i, p) => {
                let it = post_item(&ui.state.borrow(), account, &p, today);
                authors.push(p.author);
                if i <= rows.row_count() {
                    rows.insert(i, it);
                }
            }
            Change::Set(i, p) => {
                let it = post_item(&ui.state.borrow(), account, &p, today);
                authors.push(p.author);
                if i < rows.row_count() {
                    rows.set_row_data(i, it);
                }
            }
            Change::Remove(i) => {
                if i < rows.row_count() {
                    rows.remove(i);
                }
            }
        }
    }
    want_authors(ui, account, authors.into_iter());
}

/// The pictures of these authors (read from the store once).
fn want_authors(ui: &Rc<Ui>, account: &str, authors: impl Iterator<Item = String>) {
    let mut keys: Vec<(String, String)> = authors
        .filter(|a| !a.is_empty())
        .map(|a| (account.to_owned(), a))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    super::avatars::want(ui, keys);
}

/// Pages older posts in when the list is scrolled to its end.
pub(super) fn load_older(ui: &Rc<Ui>, which: Which) {
    let (account, author, before, generation) = {
        let mut st = ui.state.borrow_mut();
        let l = list_mut(&mut st, which);
        let Some(f) = l.feed.as_ref() else { return };
        if l.loading || !f.has_older() {
            return;
        }
        let q = (
            f.account.clone(),
            f.author.clone(),
            f.before(),
            l.generation,
        );
        l.loading = true;
        q
    };
    if let Some(w) = ui.window.upgrade() {
        set_paging(&w, which, true, true);
    }
    blocking(
        ui,
        move |client| client.feed_page(&account, author.as_deref(), before, PAGE),
        move |ui, w, page| {
            let (rows, account, changes, has_older) = {
                let mut st = ui.state.borrow_mut();
                let l = list_mut(&mut st, which);
                if l.generation != generation {
                    return;
                }
                l.loading = false;
                let Some(f) = l.feed.as_mut() else { return };
                let changes = match page {
                    Ok(page) => f.append_older(page, PAGE),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read older posts");
                        Vec::new()
                    }
                };
                (l.rows.clone(), f.account.clone(), changes, f.has_older())
            };
            apply_changes(ui, &rows, &account, changes);
            set_paging(w, which, has_older, false);
        },
    );
}

/// A post as the views show it, for the account `account`.
fn post_item(st: &State, account: &str, p: &PostRecord, today: chrono::NaiveDate) -> PostItem {
    let names = |jid: &str| st.people.known_name(account, jid);
    let mut it = item(feed::post_row(p, account, &names, today));
    it.picture = super::avatars::picture(st, account, &p.author);
    it
}

fn item(r: PostRow) -> PostItem {
    let tags = r
        .tags
        .iter()
        .map(|t| format!("#{t}"))
        .collect::<Vec<_>>()
        .join(" ");
    PostItem {
        id: i32::try_from(r.id).unwrap_or(i32::MAX),
        body: styled(&r.markdown, &r.text),
        author: s(&r.author),
        name: s(&r.name),
        initials: s(&r.initials),
        tint: color(r.tint),
        title: s(&r.title),
        text: s(&r.text),
        time: s(&r.time),
        when: s(&r.when),
        edited: r.edited,
        tags: s(tags),
        links: model(
            r.links
                .iter()
                .map(|l| LinkItem {
                    label: s(&l.label),
                    url: s(&l.url),
                    picture: l.picture,
                })
                .collect(),
        ),
        audience: s(&r.audience),
        comments: i32::try_from(r.comments).unwrap_or(i32::MAX),
        own: r.own,
        picture: Default::default(),
    }
}

/// Rich text from the core's markdown; its plain text if that cannot be parsed.
fn styled(markdown: &str, text: &str) -> slint::StyledText {
    if markdown.trim().is_empty() {
        return slint::StyledText::from_plain_text(text);
    }
    slint::StyledText::from_markdown(markdown)
        .unwrap_or_else(|_| slint::StyledText::from_plain_text(text))
}

// ---- the composer ----

fn publish(ui: &Rc<Ui>) {
    let (Some(w), Some(account)) = (ui.window.upgrade(), current_account(ui)) else {
        return;
    };
    let g = w.global::<FeedAdapter>();
    if g.get_publishing() {
        return;
    }
    let text = g.get_draft().to_string();
    if text.trim().is_empty() {
        g.set_publish_error(s(feed::explain(&Error::EmptyPost)));
        return;
    }
    let audience = {
        let st = ui.state.borrow();
        let idx = usize::try_from(g.get_audience_index()).unwrap_or(feed::DEFAULT_AUDIENCE);
        st.feed
            .audiences
            .get(idx)
            .cloned()
            .unwrap_or(Audience::Contacts)
    };
    let mut draft = PostDraft::new(text, audience);
    draft.tags = feed::parse_tags(&g.get_tags());
    let files: Vec<std::path::PathBuf> = ui
        .state
        .borrow()
        .feed
        .attachments
        .iter()
        .map(|(p, _)| p.clone())
        .collect();
    g.set_publishing(true);
    g.set_publish_error(Default::default());
    let client = ui.client.clone();
    background(
        ui,
        async move {
            // Attachments go up first (their links are in the post), with progress.
            draft.enclosures = super::files::upload_for_post(&client, &account, &files).await?;
            client.publish_post(&account, draft).await
        },
        |ui, w, r| {
            let g = w.global::<FeedAdapter>();
            g.set_publishing(false);
            g.set_publish_status(Default::default());
            match r {
                // The post reaches the list through the feed's diffs.
                Ok(_) => {
                    g.set_draft(Default::default());
                    g.set_tags(Default::default());
                    ui.state.borrow_mut().feed.attachments.clear();
                    super::files::show_post_attachments(ui, w);
                }
                Err(e) => g.set_publish_error(s(feed::explain(&e))),
            }
        },
    );
}

// ---- the open post ----

/// Opens a post of the feed or of the profile page, with its stored comments, then asks
/// the network for its comments.
fn open_post(ui: &Rc<Ui>, id: i64) {
    let Some(w) = ui.window.upgrade() else { return };
    let found = {
        let st = ui.state.borrow();
        [&st.feed.profile, &st.feed.main]
            .into_iter()
            .filter_map(|l| l.feed.as_ref())
            .find_map(|f| f.get(id).map(|p| (f.account.clone(), p.clone())))
    };
    let Some((account, post)) = found else {
        return;
    };
    let g = w.global::<FeedAdapter>();
    let same = ui
        .state
        .borrow()
        .feed
        .open
        .as_ref()
        .is_some_and(|o| o.post.id == id && o.account == account);
    if !same {
        g.set_comment_draft(Default::default());
        g.set_comment_error(Default::default());
        g.set_editing(false);
        g.set_edit_error(Default::default());
        g.set_comments_status(Default::default());
    }
    {
        let mut st = ui.state.borrow_mut();
        st.feed.open = Some(OpenPost {
            account: account.clone(),
            post,
            comments: Comments::new(id),
        });
    }
    show_open_post(ui, &w);
    show_comments(ui);
    g.set_post_open(true);
    g.set_comments_loading(true);
    let (a, a2) = (account.clone(), account.clone());
    blocking(
        ui,
        move |client| client.comments(&a, id),
        move |ui, _w, r| match r {
            Ok(list) => on_comments(ui, &account, id, list),
            Err(e) => tracing::debug!(error = %e, "no stored comments"),
        },
    );
    let client = ui.client.clone();
    background(
        ui,
        async move { client.fetch_comments(&a2, id).await.map(|l| (a2, l)) },
        move |ui, w, r| {
            if !is_open(ui, id) {
                return;
            }
            let g = w.global::<FeedAdapter>();
            g.set_comments_loading(false);
            match r {
                Ok((account, list)) => {
                    g.set_comments_status(Default::default());
                    on_comments(ui, &account, id, list);
                }
                Err(Error::NotConnected(_)) => g.set_comments_status(s(
                    "Offline: these are the comments stored on this device.",
                )),
                Err(e) => g.set_comments_status(s(format!("Cannot fetch the comments: {e}"))),
            }
        },
    );
}

fn is_open(ui: &Ui, id: i64) -> bool {
    ui.state
        .borrow()
        .feed
        .open
        .as_ref()
        .is_some_and(|o| o.post.id == id)
}

fn on_comments(ui: &Rc<Ui>, account: &str, post_id: i64, list: Vec<CommentRecord>) {
    let changed = {
        let mut st = ui.state.borrow_mut();
        match st.feed.open.as_mut() {
            Some(o) if o.account == account && o.post.id == post_id => {
                let mut changed = false;
                for c in list {
                    changed |= o.comments.upsert(c);
                }
                changed
            }
            _ => false,
        }
    };
    if changed {
        show_comments(ui);
    }
}

fn show_open_post(ui: &Rc<Ui>, w: &AppWindow) {
    let st = ui.state.borrow();
    if let Some(o) = &st.feed.open {
        let today = chrono::Local::now().date_naive();
        w.global::<FeedAdapter>()
            .set_post(post_item(&st, &o.account, &o.post, today));
    }
}

fn show_comments(ui: &Rc<Ui>) {
    let (rows, items, authors) = {
        let st = ui.state.borrow();
        let today = chrono::Local::now().date_naive();
        let mut authors = Vec::new();
        let items: Vec<CommentItem> = match &st.feed.open {
            Some(o) => {
                let names = |jid: &str| st.people.known_name(&o.account, jid);
                o.comments
                    .list()
                    .iter()
                    .map(|c| {
                        let r = feed::comment_row(c, &o.account, &names, today);
                        // Only a confirmed author's face: an unverified name is a claim.
                        let picture = if r.verified && !r.author.is_empty() {
                            authors.push((o.account.clone(), r.author.clone()));
                            super::avatars::picture(&st, &o.account, &r.author)
                        } else {
                            Default::default()
                        };
                        CommentItem {
                            picture,
                            id: i32::try_from(r.id).unwrap_or(i32::MAX),
                            body: styled(&r.markdown, &r.text),
                            name: s(&r.name),
                            author: s(&r.author),
                            initials: s(&r.initials),
                            tint: color(r.tint),
                            verified: r.verified,
                            text: s(&r.text),
                            time: s(&r.time),
                            own: r.own,
                        }
                    })
                    .collect()
            }
            None => Vec::new(),
        };
        (st.feed.comment_rows.clone(), items, authors)
    };
    rows.set_vec(items);
    super::avatars::want(ui, authors);
}

fn close_post(ui: &Rc<Ui>) {
    ui.state.borrow_mut().feed.open = None;
    if let Some(w) = ui.window.upgrade() {
        let g = w.global::<FeedAdapter>();
        g.set_post_open(false);
        g.set_editing(false);
        g.set_comments_loading(false);
    }
    show_comments(ui);
}

fn open_target(ui: &Ui) -> Option<(String, PostRecord)> {
    ui.state
        .borrow()
        .feed
        .open
        .as_ref()
        .map(|o| (o.account.clone(), o.post.clone()))
}

fn send_comment(ui: &Rc<Ui>) {
    let (Some(w), Some((account, post))) = (ui.window.upgrade(), open_target(ui)) else {
        return;
    };
    let g = w.global::<FeedAdapter>();
    let text = g.get_comment_draft().to_string();
    if g.get_commenting() || text.trim().is_empty() {
        return;
    }
    g.set_commenting(true);
    g.set_comment_error(Default::default());
    let client = ui.client.clone();
    let a = account.clone();
    background(
        ui,
        async move { client.comment(&a, &post.author, &post.item_id, &text).await },
        move |ui, w, r| {
            let g = w.global::<FeedAdapter>();
            g.set_commenting(false);
            match r {
                Ok(c) => {
                    g.set_comment_draft(Default::default());
                    let post_id = c.post_id;
                    on_comments(ui, &account, post_id, vec![c]);
                }
                Err(e) => g.set_comment_error(s(feed::explain(&e))),
            }
        },
    );
}

fn save_edit(ui: &Rc<Ui>) {
    let (Some(w), Some((account, post))) = (ui.window.upgrade(), open_target(ui)) else {
        return;
    };
    let g = w.global::<FeedAdapter>();
    let text = g.get_edit_text().to_string();
    if g.get_edit_busy() {
        return;
    }
    g.set_edit_busy(true);
    g.set_edit_error(Default::default());
    let client = ui.client.clone();
    background(
        ui,
        async move { client.edit_post(&account, &post.item_id, &text, None).await },
        |ui, w, r| {
            let g = w.global::<FeedAdapter>();
            g.set_edit_busy(false);
            match r {
                Ok(p) => {
                    g.set_editing(false);
                    on_post(ui, w, &p);
                }
                Err(e) => g.set_edit_error(s(feed::explain(&e))),
            }
        },
    );
}

fn delete_post(ui: &Rc<Ui>, id: i64) {
    let (Some(w), Some((account, post))) = (ui.window.upgrade(), open_target(ui)) else {
        return;
    };
    if post.id != id {
        return;
    }
    w.global::<FeedAdapter>().set_edit_busy(true);
    let client = ui.client.clone();
    background(
        ui,
        async move { client.delete_post(&account, &post.item_id).await },
        move |ui, w, r| {
            let g = w.global::<FeedAdapter>();
            g.set_edit_busy(false);
            match r {
                // The lists drop it through their diffs.
                Ok(()) => {
                    if is_open(ui, id) {
                        close_post(ui);
                    }
                }
                Err(e) => {
                    g.set_edit_error(s(format!("Cannot delete the post: {}", feed::explain(&e))))
                }
            }
        },
    );
}

// ---- core events (from the event pump) ----

/// A post arrived or changed: the open post follows it. (The lists follow their diffs.)
pub(super) fn on_post(ui: &Rc<Ui>, w: &AppWindow, post: &PostRecord) {
    let changed = {
        let mut st = ui.state.borrow_mut();
        match st.feed.open.as_mut() {
            Some(o) if o.post.id == post.id && o.post != *post => {
                o.post = post.clone();
                true
            }
            _ => false,
        }
    };
    if changed {
        show_open_post(ui, w);
    }
}

/// A post was deleted: the open post closes if it was this one.
pub(super) fn on_post_removed(ui: &Rc<Ui>, account: &str, post: &PostRecord) {
    let open = ui
        .state
        .borrow()
        .feed
        .open
        .as_ref()
        .is_some_and(|o| o.account == account && o.post.id == post.id);
    if open {
        close_post(ui);
    }
}

pub(super) fn on_comment(ui: &Rc<Ui>, account: &str, comment: CommentRecord) {
    let post_id = comment.post_id;
    on_comments(ui, account, post_id, vec![comment]);
}

pub(super) fn on_comment_removed(ui: &Rc<Ui>, account: &str, post_id: i64, item_id: &str) {
    let changed = {
        let mut st = ui.state.borrow_mut();
        match st.feed.open.as_mut() {
            Some(o) if o.account == account => o.comments.remove(post_id, item_id),
            _ => false,
        }
    };
    if changed {
        show_comments(ui);
    }
}

/// Names or pictures changed: rebuild the rows of the lists and the open post.
pub(super) fn refresh_names(ui: &Rc<Ui>, w: &AppWindow) {
    let today = chrono::Local::now().date_naive();
    for which in [Which::Main, Which::Profile] {
        let (rows, items) = {
            let st = ui.state.borrow();
            let l = match which {
                Which::Main => &st.feed.main,
                Which::Profile => &st.feed.profile,
            };
            let Some(f) = l.feed.as_ref() else { continue };
            let items: Vec<PostItem> = f
                .posts()
                .iter()
                .map(|p| post_item(&st, &f.account, p, today))
                .collect();
            (l.rows.clone(), items)
        };
        // Only rows whose name or picture changed are touched (they rarely change).
        for (i, it) in items.into_iter().enumerate() {
            if rows
                .row_data(i)
                .is_some_and(|old| old.name != it.name || old.picture != it.picture)
            {
                rows.set_row_data(i, it);
            }
        }
    }
    show_open_post(ui, w);
    show_comments(ui);
}

/// Reloads the lists (after the UI missed events).
pub(super) fn reload(ui: &Rc<Ui>) {
    for which in [Which::Main, Which::Profile] {
        let showing = {
            let st = ui.state.borrow();
            let l = match which {
                Which::Main => &st.feed.main,
                Which::Profile => &st.feed.profile,
            };
            l.showing()
                .map(|(a, au)| (a.to_owned(), au.map(str::to_owned)))
        };
        if let Some((account, author)) = showing {
            load(ui, which, account, author);
        }
    }
}

/// Stops following a list (the profile page closed).
pub(super) fn clear(ui: &Rc<Ui>, which: Which) {
    let mut st = ui.state.borrow_mut();
    list_mut(&mut st, which).clear();
}
