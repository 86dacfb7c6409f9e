//! The social feed (XEP-0277): a window of the stored feed, newest first, that pages older
//! posts in and answers every core [`FeedDiff`] with the exact row changes; the rows the
//! views show (posts and comments); and the composer's audiences, tags and error wording.
//!
//! The same [`Feed`] serves the Feed pane (everyone's posts) and a person's profile page
//! (one author's).

use chrono::NaiveDate;
use starling_core::store::{CommentRecord, PostRecord};
use starling_core::{Audience, Error, FeedDiff};

use super::format;

/// Posts loaded at once: the first screen, and each page when scrolling to the end.
pub const PAGE: u32 = 50;
/// A person's newest posts fetched when their profile opens.
pub const PROFILE_FETCH: u32 = 20;

/// Sort key of a post: the feed is ordered newest first by (`published`, `id`), like the
/// store's `feed` query.
fn key(p: &PostRecord) -> (i64, i64) {
    (p.published, p.id)
}

/// One change to the list of rows, with the new row where there is one.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Insert(usize, Box<PostRecord>),
    Set(usize, Box<PostRecord>),
    Remove(usize),
}

/// The posts a view shows, newest first: the newest `PAGE` from the store, then older
/// pages as the user scrolls. Diffs for posts older than everything loaded are ignored
/// while there are older posts in the store (the next page brings them in order).
#[derive(Debug, Clone, PartialEq)]
pub struct Feed {
    pub account: String,
    /// `None`: everyone's posts (the Feed pane); `Some`: one person's (their profile).
    pub author: Option<String>,
    posts: Vec<PostRecord>,
    has_older: bool,
}

impl Feed {
    /// A feed from the store's snapshot (at most `limit` posts were asked for).
    pub fn new(
        account: &str,
        author: Option<&str>,
        mut snapshot: Vec<PostRecord>,
        limit: u32,
    ) -> Feed {
        let has_older = snapshot.len() >= limit as usize;
        snapshot.sort_by_key(|p| std::cmp::Reverse(key(p)));
        snapshot.dedup_by_key(|p| p.id);
        Feed {
            account: account.to_owned(),
            author: author.map(str::to_owned),
            posts: snapshot,
            has_older,
        }
    }

    pub fn posts(&self) -> &[PostRecord] {
        &self.posts
    }

    pub fn get(&self, id: i64) -> Option<&PostRecord> {
        self.posts.iter().find(|p| p.id == id)
    }

    /// More posts wait in the store beyond the last one shown.
    pub fn has_older(&self) -> bool {
        self.has_older
    }

    /// Where the next page starts: `(published, id)` of the oldest post shown.
    pub fn before(&self) -> Option<(i64, i64)> {
        self.posts.last().map(key)
    }

    /// Appends a page of older posts (from `feed_page(.., before(), limit)`).
    pub fn append_older(&mut self, page: Vec<PostRecord>, limit: u32) -> Vec<Change> {
        self.has_older = page.len() >= limit as usize;
        let mut changes = Vec::new();
        for p in page {
            if self.posts.iter().any(|q| q.id == p.id) {
                continue;
            }
            changes.extend(self.upsert(p, true));
        }
        changes
    }

    /// Applies a diff from the core's feed stream.
    pub fn apply(&mut self, diff: FeedDiff) -> Vec<Change> {
        match diff {
            FeedDiff::Upsert { post } => {
                if self.author.as_deref().is_some_and(|a| a != post.author) {
                    return Vec::new();
                }
                self.upsert(*post, false)
            }
            FeedDiff::Remove { id } => match self.posts.iter().position(|p| p.id == id) {
                Some(i) => {
                    self.posts.remove(i);
                    vec![Change::Remove(i)]
                }
                None => Vec::new(),
            },
        }
    }

    fn upsert(&mut self, post: PostRecord, paging: bool) -> Vec<Change> {
        let mut changes = Vec::new();
        if let Some(i) = self.posts.iter().position(|p| p.id == post.id) {
            if key(&self.posts[i]) == key(&post) {
                self.posts[i] = post.clone();
                return vec![Change::Set(i, Box::new(post))];
            }
            self.posts.remove(i);
            changes.push(Change::Remove(i));
        }
        let at = self.posts.partition_point(|q| key(q) > key(&post));
        // Older than everything loaded while the store holds older posts: it comes with
        // the next page, in its place.
        if at == self.posts.len() && self.has_older && !paging {
            return changes;
        }
        self.posts.insert(at, post.clone());
        changes.push(Change::Insert(at, Box::new(post)));
        changes
    }
}

/// A link the user may open (images and attachments are never loaded by themselves: a
/// post can come from anyone, and a remote picture tells its server who looks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub label: String,
    pub url: String,
    /// A picture: it opens in the viewer (fetched when clicked).
    pub picture: bool,
}

/// Whether an attachment is a picture (by its announced type, else its link's name).
fn is_picture(media_type: Option<&str>, url: &str) -> bool {
    match media_type {
        Some(t) => t.starts_with("image/"),
        None => {
            let path = url
                .split(['?', '#'])
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            [".jpg", ".jpeg", ".png", ".webp", ".gif"]
                .iter()
                .any(|e| path.ends_with(e))
        }
    }
}

/// A post as the views show it.
#[derive(Debug, Clone, PartialEq)]
pub struct PostRow {
    pub id: i64,
    pub author: String,
    pub name: String,
    pub initials: String,
    pub tint: (u8, u8, u8),
    pub title: String,
    pub text: String,
    pub markdown: String,
    /// Short time for the list ("14:05", "Yesterday", "2 Nov").
    pub time: String,
    /// Full date and time ("Today, 14:05"; "Monday 3 March 2025, 09:00").
    pub when: String,
    pub edited: bool,
    pub tags: Vec<String>,
    pub links: Vec<Link>,
    pub audience: String,
    pub comments: i64,
    /// Ours: it can be edited and deleted.
    pub own: bool,
}

/// How a view names people: the roster name if the user gave one.
pub trait Names {
    fn roster_name(&self, jid: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String>> Names for F {
    fn roster_name(&self, jid: &str) -> Option<String> {
        self(jid)
    }
}

/// The name shown for `jid`: ours is "You"; else the roster name, the name the author gave,
/// the address.
pub fn display_name(jid: &str, given: Option<&str>, own: &str, names: &impl Names) -> String {
    if jid == own {
        return "You".to_owned();
    }
    names
        .roster_name(jid)
        .or_else(|| {
            given
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| jid.to_owned())
}

/// "Today, 14:05", "Yesterday, 09:30", "Monday 3 March, 14:05".
pub fn full_time(ts_ms: i64, today: NaiveDate) -> String {
    let t = format::local(ts_ms);
    format!(
        "{}, {}",
        format::day_label(t.date_naive(), today),
        format::clock(&t)
    )
}

/// What the audience chip says.
pub fn audience_label(a: &Audience) -> String {
    match a {
        Audience::Public => "Public".to_owned(),
        Audience::Contacts => "Contacts".to_owned(),
        Audience::Circle(c) => format!("Circle: {c}"),
    }
}

/// The row of a post. `own` is the account's bare JID.
pub fn post_row(p: &PostRecord, own: &str, names: &impl Names, today: NaiveDate) -> PostRow {
    let name = display_name(&p.author, p.author_name.as_deref(), own, names);
    let mut links: Vec<Link> = p
        .images
        .iter()
        .filter(|u| format::is_openable(u))
        .map(|u| Link {
            label: format!("Image: {}", short_url(u)),
            url: u.clone(),
            picture: is_picture(None, u),
        })
        .collect();
    links.extend(
        p.enclosures
            .iter()
            .filter(|e| format::is_openable(&e.href))
            .map(|e| Link {
                label: format!(
                    "Attachment: {}",
                    e.title
                        .as_deref()
                        .filter(|t| !t.trim().is_empty())
                        .map_or_else(|| short_url(&e.href), str::to_owned)
                ),
                url: e.href.clone(),
                picture: is_picture(e.media_type.as_deref(), &e.href),
            }),
    );
    PostRow {
        id: p.id,
        author: p.author.clone(),
        initials: format::initials(if name == "You" { own } else { &name }),
        tint: format::tint(&p.author),
        name,
        title: p.title.clone().unwrap_or_default(),
        text: p.text.clone(),
        markdown: p.markdown.clone(),
        time: format::list_time(&format::local(p.published), today),
        when: full_time(p.published, today),
        // Editing bumps `updated` (ours by at least a millisecond); a new post has both
        // the same.
        edited: p.updated > p.published,
        tags: p.tags.clone(),
        links,
        audience: audience_label(&p.audience),
        comments: p.comment_count,
        own: p.author == own,
    }
}

/// The file name of a URL, or the URL when it has none.
fn short_url(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let after_host = path.splitn(4, '/').nth(3).unwrap_or("");
    match after_host.rsplit('/').next() {
        Some(name) if !name.is_empty() => name.to_owned(),
        _ => url.to_owned(),
    }
}

/// "1 comment", "3 comments", "No comments yet".
pub fn comment_count(n: i64) -> String {
    match n {
        0 => "No comments yet".to_owned(),
        1 => "1 comment".to_owned(),
        n => format!("{n} comments"),
    }
}

/// A comment as the post's page shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct CommentRow {
    pub id: i64,
    pub author: String,
    pub name: String,
    pub initials: String,
    pub tint: (u8, u8, u8),
    /// The server confirmed who wrote it; otherwise the name is only what the entry claims.
    pub verified: bool,
    pub text: String,
    pub markdown: String,
    pub time: String,
    pub own: bool,
}

pub fn comment_row(
    c: &CommentRecord,
    own: &str,
    names: &impl Names,
    today: NaiveDate,
) -> CommentRow {
    let author = c.author.clone().unwrap_or_default();
    let name = if author.is_empty() {
        c.author_name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| "Someone".to_owned())
    } else if c.verified {
        display_name(&author, c.author_name.as_deref(), own, names)
    } else {
        // Unverified: never put a roster name (or "You") on words someone else may have
        // written; show what the entry claims.
        c.author_name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| author.clone())
    };
    CommentRow {
        id: c.id,
        initials: format::initials(&name),
        tint: format::tint(if author.is_empty() { &name } else { &author }),
        own: c.verified && author == own,
        author,
        name,
        verified: c.verified,
        text: c.text.clone(),
        markdown: c.markdown.clone(),
        time: full_time(c.published, today),
    }
}

/// The comments of the open post, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Comments {
    pub post_id: i64,
    list: Vec<CommentRecord>,
}

impl Comments {
    pub fn new(post_id: i64) -> Comments {
        Comments {
            post_id,
            list: Vec::new(),
        }
    }

    pub fn list(&self) -> &[CommentRecord] {
        &self.list
    }

    /// Adds or replaces a comment of this post; `true` when the list changed.
    pub fn upsert(&mut self, c: CommentRecord) -> bool {
        if c.post_id != self.post_id {
            return false;
        }
        match self.list.iter_mut().find(|x| x.id == c.id) {
            Some(x) if *x == c => return false,
            Some(x) => *x = c,
            None => self.list.push(c),
        }
        self.list.sort_by_key(|c| (c.published, c.id));
        true
    }

    /// Removes a comment by its item id; `true` when it was there.
    pub fn remove(&mut self, post_id: i64, item_id: &str) -> bool {
        if post_id != self.post_id {
            return false;
        }
        let before = self.list.len();
        self.list.retain(|c| c.item_id != item_id);
        self.list.len() != before
    }
}

/// Who a new post may go to: Public, Contacts (the default), and one circle per roster
/// group, sorted by name.
pub fn audiences<'a>(groups: impl IntoIterator<Item = &'a str>) -> Vec<Audience> {
    let mut circles: Vec<&str> = groups
        .into_iter()
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .collect();
    circles.sort_by_key(|g| g.to_lowercase());
    circles.dedup();
    let mut out = vec![Audience::Public, Audience::Contacts];
    out.extend(circles.into_iter().map(|g| Audience::Circle(g.to_owned())));
    out
}

/// The audience chosen by default.
pub const DEFAULT_AUDIENCE: usize = 1;

/// What the audience selector says for each choice.
pub fn audience_choice(a: &Audience) -> String {
    match a {
        Audience::Public => "Public (anyone)".to_owned(),
        Audience::Contacts => "Contacts".to_owned(),
        Audience::Circle(c) => format!("Circle: {c}"),
    }
}

/// The index to select in a new list of audiences: the same audience as before if it is
/// still offered, else the default.
pub fn reselect(old: &[Audience], old_index: usize, new: &[Audience]) -> usize {
    old.get(old_index)
        .and_then(|a| new.iter().position(|b| b == a))
        .unwrap_or(DEFAULT_AUDIENCE.min(new.len().saturating_sub(1)))
}

/// Tags typed in the composer: separated by commas or spaces, a leading '#' dropped,
/// duplicates removed (first spelling kept).
pub fn parse_tags(input: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in input
        .split(|c: char| c == ',' || c.is_whitespace())
        .map(|t| t.trim_start_matches('#'))
        .filter(|t| !t.is_empty())
    {
        if !out.iter().any(|o| o.eq_ignore_ascii_case(t)) {
            out.push(t.to_owned());
        }
    }
    out
}

/// An error of publishing, editing, deleting or commenting, for the place it happened.
/// The core's errors are already sentences; offline gets a hint that nothing is lost.
pub fn explain(e: &Error) -> String {
    let offline = |a: &str| {
        format!(
            "{a} is offline; nothing was sent. Your text is kept: try again when it is connected."
        )
    };
    match e {
        Error::NotConnected(a) => offline(a),
        Error::Timeout(_) => {
            "The server did not answer in time; nothing may have been sent. Try again.".to_owned()
        }
        other => capitalise(&other.to_string()),
    }
}

/// What the feed's header says after refreshing failed (the stored posts still show).
pub fn refresh_problem(e: &Error) -> String {
    match e {
        Error::NotConnected(_) => "Offline: showing the posts stored on this device.".to_owned(),
        other => format!("Cannot update the feed: {other}. Showing stored posts."),
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Whether the Feed pane should fetch everyone's newest posts: once per fresh connection.
#[derive(Debug, Default)]
pub struct Freshness {
    /// Accounts whose feed was refreshed since they last came online.
    fresh: std::collections::HashSet<String>,
}

impl Freshness {
    /// A new session began (not a resumed one): the next showing of the feed refreshes.
    pub fn connected(&mut self, account: &str) {
        self.fresh.remove(account);
    }

    pub fn needs_refresh(&self, account: &str) -> bool {
        !self.fresh.contains(account)
    }

    /// A refresh of `account` succeeded.
    pub fn refreshed(&mut self, account: &str) {
        self.fresh.insert(account.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use starling_core::proto::microblog::Enclosure;

    fn post(id: i64, published: i64, author: &str) -> PostRecord {
        PostRecord {
            id,
            service: author.into(),
            node: "urn:xmpp:microblog:0".into(),
            item_id: format!("item{id}"),
            author: author.into(),
            author_name: None,
            title: None,
            text: format!("post {id}"),
            markdown: format!("post {id}"),
            html: None,
            images: Vec::new(),
            tags: Vec::new(),
            enclosures: Vec::new(),
            comments_service: None,
            comments_node: None,
            audience: Audience::Contacts,
            published,
            updated: published,
            comment_count: 0,
            truncated: false,
        }
    }

    fn ids(f: &Feed) -> Vec<i64> {
        f.posts().iter().map(|p| p.id).collect()
    }

    fn upsert(p: PostRecord) -> FeedDiff {
        FeedDiff::Upsert { post: Box::new(p) }
    }

    fn no_names(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn snapshot_is_newest_first_by_published_then_id() {
        let f = Feed::new(
            "a@x",
            None,
            vec![
                post(1, 100, "b@x"),
                post(3, 300, "b@x"),
                post(2, 300, "c@x"),
            ],
            50,
        );
        assert_eq!(ids(&f), [3, 2, 1]);
        assert!(!f.has_older());
        assert_eq!(f.before(), Some((100, 1)));
    }

    #[test]
    fn diffs_insert_replace_move_and_remove() {
        let mut f = Feed::new(
            "a@x",
            None,
            vec![post(1, 100, "b@x"), post(2, 200, "b@x")],
            50,
        );
        // A new post goes on top.
        let c = f.apply(upsert(post(3, 300, "c@x")));
        assert_eq!(c, [Change::Insert(0, Box::new(post(3, 300, "c@x")))]);
        // A late-arriving older post goes in its place.
        let c = f.apply(upsert(post(4, 150, "c@x")));
        assert!(matches!(c[..], [Change::Insert(2, _)]));
        assert_eq!(ids(&f), [3, 2, 4, 1]);
        // Its comment count moved: replaced in place.
        let mut commented = post(2, 200, "b@x");
        commented.comment_count = 2;
        let c = f.apply(upsert(commented.clone()));
        assert_eq!(c, [Change::Set(1, Box::new(commented))]);
        assert_eq!(f.get(2).map(|p| p.comment_count), Some(2));
        // Republished with a new date: moves.
        let c = f.apply(upsert(post(1, 400, "b@x")));
        assert!(matches!(c[..], [Change::Remove(3), Change::Insert(0, _)]));
        assert_eq!(ids(&f), [1, 3, 2, 4]);
        // Deleted.
        assert_eq!(f.apply(FeedDiff::Remove { id: 3 }), [Change::Remove(1)]);
        assert!(f.apply(FeedDiff::Remove { id: 99 }).is_empty());
        assert_eq!(ids(&f), [1, 2, 4]);
    }

    #[test]
    fn changes_replayed_on_a_list_give_the_feed() {
        // What the adapter does with a model: apply each change in order.
        let mut f = Feed::new("a@x", None, vec![post(1, 100, "b@x")], 50);
        let mut rows: Vec<i64> = ids(&f);
        for d in [
            upsert(post(2, 50, "b@x")),
            upsert(post(3, 500, "b@x")),
            upsert(post(2, 600, "b@x")),
            FeedDiff::Remove { id: 1 },
            upsert(post(4, 550, "b@x")),
        ] {
            for c in f.apply(d) {
                match c {
                    Change::Insert(i, p) => rows.insert(i, p.id),
                    Change::Set(i, p) => rows[i] = p.id,
                    Change::Remove(i) => {
                        rows.remove(i);
                    }
                }
            }
        }
        assert_eq!(rows, ids(&f));
        assert_eq!(rows, [2, 4, 3]);
    }

    #[test]
    fn paging_older_posts_and_ignoring_posts_beyond_the_window() {
        let page1: Vec<_> = (0..3)
            .map(|i| post(10 - i, 1_000 - i * 10, "b@x"))
            .collect();
        let mut f = Feed::new("a@x", None, page1, 3);
        assert!(f.has_older(), "a full page: there may be more");
        assert_eq!(f.before(), Some((980, 8)));
        // An old post arriving now would be out of order at the end: the next page has it.
        assert!(f.apply(upsert(post(2, 10, "b@x"))).is_empty());
        let c = f.append_older(vec![post(7, 970, "b@x"), post(2, 10, "b@x")], 3);
        assert_eq!(c.len(), 2);
        assert!(!f.has_older(), "a short page is the end");
        assert_eq!(ids(&f), [10, 9, 8, 7, 2]);
        // At the end of the store, old posts are inserted.
        assert_eq!(f.apply(upsert(post(1, 5, "b@x"))).len(), 1);
        assert_eq!(ids(&f).last(), Some(&1));
    }

    #[test]
    fn a_profile_feed_keeps_to_its_author() {
        let mut f = Feed::new("a@x", Some("b@x"), vec![post(1, 100, "b@x")], 50);
        assert!(f.apply(upsert(post(2, 200, "c@x"))).is_empty());
        assert_eq!(f.apply(upsert(post(3, 300, "b@x"))).len(), 1);
        assert_eq!(ids(&f), [3, 1]);
    }

    #[test]
    fn rows_name_people_and_show_links_not_images() {
        let today = format::local(1_700_000_000_000).date_naive();
        let mut p = post(1, 1_700_000_000_000, "bob@x");
        p.author_name = Some("Bobby".into());
        p.images = vec![
            "https://img.example/a/cat.jpg?s=1".into(),
            "javascript:alert(1)".into(),
        ];
        p.enclosures = vec![Enclosure {
            href: "https://files.example/report.pdf".into(),
            media_type: Some("application/pdf".into()),
            length: None,
            title: None,
        }];
        p.tags = vec!["cats".into()];
        p.comment_count = 3;
        p.updated = p.published + 60_000;
        let names = |j: &str| (j == "bob@x").then(|| "Bob Builder".to_owned());
        let r = post_row(&p, "me@x", &names, today);
        assert_eq!(r.name, "Bob Builder", "the roster name wins");
        assert_eq!(r.initials, "BB");
        assert_eq!(
            r.links,
            [
                Link {
                    label: "Image: cat.jpg".into(),
                    url: "https://img.example/a/cat.jpg?s=1".into(),
                    picture: true,
                },
                Link {
                    label: "Attachment: report.pdf".into(),
                    url: "https://files.example/report.pdf".into(),
                    picture: false,
                }
            ]
        );
        assert!(r.edited && !r.own);
        assert_eq!(r.comments, 3);
        assert_eq!(r.audience, "Contacts");
        assert_eq!(r.time, format::clock(&format::local(p.published)));
        assert!(r.when.starts_with("Today, "), "{}", r.when);
        let r = post_row(&p, "me@x", &no_names, today);
        assert_eq!(r.name, "Bobby", "else the name in the post");
        let mine = post_row(&post(2, 1, "me@x"), "me@x", &no_names, today);
        assert!(mine.own && mine.name == "You" && mine.initials == "M");
        assert_eq!(comment_count(0), "No comments yet");
        assert_eq!(comment_count(1), "1 comment");
        assert_eq!(comment_count(12), "12 comments");
    }

    #[test]
    fn unverified_comments_show_only_what_they_claim() {
        let today = format::local(0).date_naive();
        let c = CommentRecord {
            id: 1,
            post_id: 7,
            item_id: "c1".into(),
            author: Some("me@x".into()),
            author_name: Some("Mallory".into()),
            verified: false,
            text: "hi".into(),
            markdown: "hi".into(),
            published: 0,
            updated: 0,
        };
        let names = |_: &str| Some("Roster Name".to_owned());
        let r = comment_row(&c, "me@x", &names, today);
        assert_eq!(r.name, "Mallory");
        assert!(!r.verified && !r.own);
        let ok = CommentRecord {
            verified: true,
            ..c.clone()
        };
        let r = comment_row(&ok, "me@x", &names, today);
        assert!(r.own && r.name == "You");

        let mut list = Comments::new(7);
        assert!(list.upsert(ok.clone()));
        assert!(
            !list.upsert(ok.clone()),
            "the same comment again changes nothing"
        );
        assert!(
            !list.upsert(CommentRecord { post_id: 8, ..c }),
            "another post's"
        );
        let mut earlier = ok.clone();
        earlier.id = 2;
        earlier.item_id = "c0".into();
        earlier.published = -5;
        assert!(list.upsert(earlier));
        assert_eq!(list.list().iter().map(|c| c.id).collect::<Vec<_>>(), [2, 1]);
        assert!(list.remove(7, "c1"));
        assert!(!list.remove(7, "c1"));
        assert_eq!(list.list().len(), 1);
    }

    #[test]
    fn audiences_from_roster_groups() {
        let a = audiences(["Work", "family", " ", "Work", "Climbing"]);
        assert_eq!(
            a,
            [
                Audience::Public,
                Audience::Contacts,
                Audience::Circle("Climbing".into()),
                Audience::Circle("family".into()),
                Audience::Circle("Work".into()),
            ]
        );
        assert_eq!(a[DEFAULT_AUDIENCE], Audience::Contacts);
        assert_eq!(audience_choice(&a[3]), "Circle: family");
        assert_eq!(audience_label(&a[0]), "Public");
        // The choice survives a change of the groups, or falls back to Contacts.
        let b = audiences(["Climbing"]);
        assert_eq!(reselect(&a, 2, &b), 2);
        assert_eq!(reselect(&a, 4, &b), DEFAULT_AUDIENCE);
        assert_eq!(reselect(&a, 0, &b), 0);
    }

    #[test]
    fn tags_and_errors() {
        assert_eq!(parse_tags("#rust, xmpp  Rust,,#"), ["rust", "xmpp"]);
        assert!(parse_tags("  ").is_empty());
        let e = explain(&Error::NotConnected("a@x".into()));
        assert!(e.starts_with("a@x is offline") && e.contains("kept"), "{e}");
        assert_eq!(explain(&Error::EmptyPost), "A post needs some text");
        let refused = Error::PublishRefused {
            audience: "contacts".into(),
            reason: "forbidden".into(),
        };
        assert!(explain(&refused).starts_with("The server would not publish to contacts"));
        assert!(refresh_problem(&Error::NotConnected("a@x".into())).starts_with("Offline"));
        let mut fresh = Freshness::default();
        assert!(fresh.needs_refresh("a@x"));
        fresh.refreshed("a@x");
        assert!(!fresh.needs_refresh("a@x"));
        fresh.connected("a@x");
        assert!(fresh.needs_refresh("a@x"));
    }

    #[test]
    fn short_urls() {
        assert_eq!(short_url("https://x.org/a/b.png"), "b.png");
        assert_eq!(short_url("https://x.org/"), "https://x.org/");
        assert_eq!(short_url("https://x.org"), "https://x.org");
    }
}
