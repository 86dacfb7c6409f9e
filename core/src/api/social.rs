//! Microblogging (XEP-0277) on [`Client`]: publishing to an audience (public, contacts, a
//! circle), editing, deleting, comments, fetching contacts' posts, and the feed as a
//! snapshot plus diffs. See `services::microblog` for how audiences map to nodes.

use std::collections::HashSet;

use futures::{Stream, StreamExt as _};
use jid::{BareJid, Jid};
use minidom::Element;
use serde::Serialize;
use xmpp_parsers::disco::{DiscoItemsQuery, DiscoItemsResult};

use super::{Client, Error, Event, Result, event_stream, parse_bare, parse_contact};
use crate::account::Command;
use crate::account::social::feed_event;
use crate::proto::microblog::{self as mb, Draft, Enclosure, Entry, NodeRef, Publishing};
use crate::proto::pubsub::{self, RawItem};
use crate::services::microblog::{self as blog, Access, FeedChange};
use crate::store::{
    AccountRecord, Audience, CircleRecord, CommentRecord, PostRecord, Subscription,
};

/// How many of a person's newest posts a fetch asks for by default.
pub const FETCH_POSTS: u32 = 20;
/// When refreshing the whole feed, comments are fetched for each person's newest few posts
/// (the rest when a post or a person's page is opened).
const REFRESH_COMMENTS: usize = 3;
/// Fetches running at once when refreshing the whole feed.
const PARALLEL_FETCHES: usize = 8;

/// A post to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct PostDraft {
    pub title: Option<String>,
    pub text: String,
    pub tags: Vec<String>,
    pub audience: Audience,
    pub enclosures: Vec<Enclosure>,
}

impl PostDraft {
    /// A text post to an audience.
    pub fn new(text: impl Into<String>, audience: Audience) -> PostDraft {
        PostDraft {
            title: None,
            text: text.into(),
            tags: Vec::new(),
            audience,
            enclosures: Vec::new(),
        }
    }
}

/// A change to a feed (snapshot + diff).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum FeedDiff {
    /// Insert or replace the post with this `id` (new, edited, or its comment count moved).
    Upsert {
        post: Box<PostRecord>,
    },
    Remove {
        id: i64,
    },
}

fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..16].to_owned()
}

fn refused(e: Error) -> String {
    match e {
        Error::Refused(r) => r,
        other => other.to_string(),
    }
}

impl Client {
    fn social_account(&self, account: &str) -> Result<(AccountRecord, BareJid)> {
        let acc = self.inner.store.account(parse_bare(account)?.as_str())?;
        let own = parse_bare(&acc.jid)?;
        Ok((acc, own))
    }

    /// One IQ to `service` (`None`: our own account), for pubsub and PEP.
    pub(super) async fn pubsub(
        &self,
        account: &str,
        service: Option<&BareJid>,
        set: bool,
        payload: Element,
    ) -> Result<Option<Element>> {
        let what = tracing::enabled!(tracing::Level::DEBUG).then(|| String::from(&payload));
        let r = self
            .query(account, |reply| Command::Iq {
                to: service.map(|s| Jid::from(s.clone())),
                set,
                payload,
                reply,
            })
            .await?;
        if let (Err(e), Some(what)) = (&r, what) {
            tracing::debug!(error = %e, request = what, "pubsub request refused");
        }
        r
    }

    fn emit_changes(&self, account: &str, changes: Vec<FeedChange>) {
        for c in changes {
            self.emit(feed_event(account, c));
        }
    }

    /// The roster groups of a circle (its stored definition, or the group of that name).
    fn circle_groups(
        &self,
        acc: &AccountRecord,
        name: &str,
    ) -> Result<(Vec<String>, Option<CircleRecord>)> {
        let existing = self
            .inner
            .store
            .circles(acc.id)?
            .into_iter()
            .find(|c| c.name == name);
        let groups = existing
            .as_ref()
            .map(|c| c.groups.clone())
            .unwrap_or_else(|| vec![name.to_owned()]);
        Ok((groups, existing))
    }

    /// Who may read an audience's posts now, from the roster.
    fn audience_members(&self, acc: &AccountRecord, audience: &Audience) -> Result<Vec<BareJid>> {
        let contacts = self.inner.store.contacts(acc.id)?;
        let members = match audience {
            Audience::Public => Vec::new(),
            // Those the server lets read a `presence` node: they see our presence.
            Audience::Contacts => contacts
                .iter()
                .filter(|c| matches!(c.subscription, Subscription::From | Subscription::Both))
                .filter_map(|c| BareJid::new(&c.jid).ok())
                .collect(),
            Audience::Circle(name) => {
                let (groups, _) = self.circle_groups(acc, name)?;
                contacts
                    .iter()
                    .filter(|c| c.groups.iter().any(|g| groups.contains(g)))
                    .filter_map(|c| BareJid::new(&c.jid).ok())
                    .collect()
            }
        };
        Ok(members)
    }

    /// Whether our server offers the `roster` access model.
    async fn roster_model(&self, account: &str) -> bool {
        self.server_features(account)
            .await
            .map(|f| f.account.iter().any(|x| x == pubsub::FEATURE_ACCESS_ROSTER))
            .unwrap_or(false)
    }

    /// Who may read posts of an audience, and how the server enforces it.
    async fn access_for(
        &self,
        acc: &AccountRecord,
        audience: &Audience,
    ) -> Result<(Access, Option<CircleRecord>, Vec<BareJid>)> {
        let members = self.audience_members(acc, audience)?;
        match audience {
            Audience::Public => Ok((Access::Open, None, members)),
            Audience::Contacts => Ok((Access::Presence, None, members)),
            Audience::Circle(name) => {
                if members.is_empty() {
                    return Err(Error::EmptyCircle(name.clone()));
                }
                let (groups, existing) = self.circle_groups(acc, name)?;
                let node = blog::node_for(audience, existing.as_ref().map(|c| c.node.as_str()));
                let circle = self.inner.store.set_circle(acc.id, name, &node, &groups)?;
                let access = if self.roster_model(&acc.jid).await {
                    Access::Roster(groups)
                } else {
                    Access::Whitelist
                };
                Ok((access, Some(circle), members))
            }
        }
    }

    /// Brings the readers of our contacts-only and circle posts in line with the roster:
    /// circle members (whitelist) and the subscribers who get new posts pushed. Runs after
    /// roster changes (see `Client::connect`) and before every post to such an audience.
    pub async fn sync_audiences(&self, account: &str) -> Result<()> {
        let (acc, own) = self.social_account(account)?;
        let mine = self
            .inner
            .store
            .feed(acc.id, Some(own.as_str()), None, u32::MAX)?;
        if mine.iter().any(|p| p.audience == Audience::Contacts) {
            let members = self.audience_members(&acc, &Audience::Contacts)?;
            self.sync_members(
                &acc.jid,
                &own,
                mb::CONTACTS_NODE,
                &Access::Presence,
                &members,
            )
            .await?;
        }
        let roster_model = self.roster_model(&acc.jid).await;
        for circle in self.inner.store.circles(acc.id)? {
            let audience = Audience::Circle(circle.name.clone());
            let members = self.audience_members(&acc, &audience)?;
            let access = if roster_model {
                Access::Roster(circle.groups.clone())
            } else {
                Access::Whitelist
            };
            let mut nodes = vec![circle.node.clone()];
            nodes.extend(
                mine.iter()
                    .filter(|p| p.node == circle.node)
                    .filter_map(|p| p.comments_node.clone()),
            );
            for node in nodes {
                match self
                    .sync_members(&acc.jid, &own, &node, &access, &members)
                    .await
                {
                    Ok(()) => {}
                    Err(Error::Refused(r)) if r.starts_with("item-not-found") => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// Creates a node on our account (an existing one is fine: publish-options check it).
    async fn ensure_node(&self, account: &str, node: &str, config: &[pubsub::Opt]) -> Result<()> {
        match self
            .pubsub(account, None, true, pubsub::create(node, config))
            .await
        {
            Ok(_) => Ok(()),
            Err(Error::Refused(r)) if r.starts_with("conflict") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Makes a node's members (whitelist) and subscribers exactly `members` (plus us): the
    /// server then lets them read it and sends them its notifications. Leavers are
    /// unsubscribed before they lose membership (Prosody refuses the other order).
    async fn sync_members(
        &self,
        account: &str,
        own: &BareJid,
        node: &str,
        access: &Access,
        members: &[BareJid],
    ) -> Result<()> {
        let want: HashSet<&BareJid> = members.iter().collect();
        let owner_list = |payload: Element| async move {
            Ok::<_, Error>(
                self.pubsub(account, None, false, payload)
                    .await?
                    .map(|el| pubsub::parse_owner_list(&el))
                    .unwrap_or_default(),
            )
        };
        let subs = owner_list(pubsub::get_subscriptions(node)).await?;
        let subscribed: HashSet<&BareJid> = subs
            .iter()
            .filter(|(j, s)| j != own && s == "subscribed")
            .map(|(j, _)| j)
            .collect();
        let set_subs = |entries: Vec<(BareJid, &'static str)>| async move {
            if !entries.is_empty() {
                self.pubsub(
                    account,
                    None,
                    true,
                    pubsub::set_subscriptions(node, &entries),
                )
                .await?;
            }
            Ok::<_, Error>(())
        };
        set_subs(
            subscribed
                .difference(&want)
                .map(|j| ((*j).clone(), "none"))
                .collect(),
        )
        .await?;
        if access.needs_members() {
            let affs = owner_list(pubsub::get_affiliations(node)).await?;
            let have: HashSet<&BareJid> = affs
                .iter()
                .filter(|(j, a)| j != own && a != "none" && a != "outcast")
                .map(|(j, _)| j)
                .collect();
            let mut changes: Vec<(BareJid, &str)> = want
                .difference(&have)
                .map(|j| ((*j).clone(), "member"))
                .collect();
            changes.extend(have.difference(&want).map(|j| ((*j).clone(), "none")));
            if !changes.is_empty() {
                self.pubsub(
                    account,
                    None,
                    true,
                    pubsub::set_affiliations(node, &changes),
                )
                .await?;
            }
        }
        set_subs(
            want.difference(&subscribed)
                .map(|j| ((*j).clone(), "subscribed"))
                .collect(),
        )
        .await
    }

    /// Publishes a post to its audience and stores it. The post is never published more
    /// widely than asked: if the server cannot apply the audience's access model, nothing
    /// is published and the error says why.
    pub async fn publish_post(&self, account: &str, draft: PostDraft) -> Result<PostRecord> {
        let (acc, own) = self.social_account(account)?;
        if draft.text.trim().is_empty() {
            return Err(Error::EmptyPost);
        }
        if draft.text.len() > mb::html::MAX_TEXT {
            return Err(Error::PostTooLong(mb::html::MAX_TEXT));
        }
        let (access, circle, members) = self.access_for(&acc, &draft.audience).await?;
        let node = match &circle {
            Some(c) => c.node.clone(),
            None => blog::node_for(&draft.audience, None),
        };
        let audience = draft.audience.to_string();
        let fail = |e: Error| match e {
            // Not a refusal: nothing was published, and the UI says "offline".
            Error::NotConnected(_) | Error::Timeout(_) => e,
            e => Error::PublishRefused {
                audience: audience.clone(),
                reason: refused(e),
            },
        };
        if access != Access::Open {
            self.ensure_node(&acc.jid, &node, &blog::post_options(&access))
                .await
                .map_err(fail)?;
            self.sync_members(&acc.jid, &own, &node, &access, &members)
                .await
                .map_err(fail)?;
        }
        let id = short_id();
        let comments = NodeRef {
            service: own.clone(),
            node: format!("{}{id}", mb::COMMENTS_PREFIX),
        };
        self.ensure_node(&acc.jid, &comments.node, &blog::comments_config(&access))
            .await
            .map_err(fail)?;
        if access.needs_members() {
            self.sync_members(&acc.jid, &own, &comments.node, &access, &members)
                .await
                .map_err(fail)?;
        }
        // We hear about new comments on our post through a subscription to its node.
        self.pubsub(
            &acc.jid,
            None,
            true,
            pubsub::subscribe(&comments.node, &own).into(),
        )
        .await
        .map_err(fail)?;
        let now = crate::store::now_ms();
        let own_name = self.own_name(&acc, &own);
        let publishing = Publishing {
            author: &own,
            author_name: own_name.as_deref(),
            node: &node,
            id: &id,
            published: now,
            updated: now,
            comments: Some(&comments),
        };
        let d = Draft {
            title: draft.title.clone(),
            text: draft.text.clone(),
            tags: draft.tags.clone(),
            enclosures: draft.enclosures.clone(),
            in_reply_to: None,
        };
        let entry = mb::entry(&d, &publishing);
        let publish = pubsub::publish(
            &node,
            Some(&id),
            entry.clone(),
            &blog::post_options(&access),
        );
        if let Err(e) = self.pubsub(&acc.jid, None, true, publish.into()).await {
            if let Err(cleanup) = self
                .pubsub(&acc.jid, None, true, pubsub::delete(&comments.node))
                .await
            {
                tracing::warn!(error = %cleanup, "cannot delete the comments node of a failed post");
            }
            return Err(fail(e));
        }
        self.store_own_entry(&acc, &own, &node, &id, &entry, &draft.audience)
    }

    fn store_own_entry(
        &self,
        acc: &AccountRecord,
        own: &BareJid,
        node: &str,
        id: &str,
        entry: &Element,
        audience: &Audience,
    ) -> Result<PostRecord> {
        let parsed = Entry::parse(Some(id), entry).map_err(|e| Error::Refused(e.to_string()))?;
        let mut input = blog::post_input(&self.inner.store, acc.id, own, own, node, parsed);
        input.audience = audience.clone();
        let (post, change) = self.inner.store.upsert_post(acc.id, &input)?;
        self.emit(feed_event(
            &acc.jid,
            FeedChange::Post {
                post: post.clone(),
                change,
            },
        ));
        Ok(post)
    }

    /// The name we sign entries with: our nickname, else our full name.
    fn own_name(&self, acc: &AccountRecord, own: &BareJid) -> Option<String> {
        let p = self
            .inner
            .store
            .profile(acc.id, own.as_str())
            .ok()
            .flatten()?;
        p.nick.or(p.full_name)
    }

    fn own_post(&self, acc: &AccountRecord, item_id: &str) -> Result<PostRecord> {
        self.inner
            .store
            .post_by_item(acc.id, &acc.jid, item_id)?
            .ok_or_else(|| Error::NoSuchPost(item_id.to_owned()))
    }

    /// Replaces the text of one of our posts (same item id, same audience, new `updated`).
    pub async fn edit_post(
        &self,
        account: &str,
        item_id: &str,
        text: &str,
        title: Option<String>,
    ) -> Result<PostRecord> {
        let (acc, own) = self.social_account(account)?;
        if text.trim().is_empty() {
            return Err(Error::EmptyPost);
        }
        let post = self.own_post(&acc, item_id)?;
        let (access, _, _) = match &post.audience {
            Audience::Circle(_) => self.access_for(&acc, &post.audience).await?,
            Audience::Public => (Access::Open, None, Vec::new()),
            Audience::Contacts => (Access::Presence, None, Vec::new()),
        };
        let comments = blog::comments_ref(&post);
        let publishing = Publishing {
            author: &own,
            author_name: post.author_name.as_deref(),
            node: &post.node,
            id: &post.item_id,
            published: post.published,
            updated: crate::store::now_ms().max(post.updated + 1),
            comments: comments.as_ref(),
        };
        let d = Draft {
            title: title.or(post.title.clone()),
            text: text.to_owned(),
            tags: post.tags.clone(),
            enclosures: post.enclosures.clone(),
            in_reply_to: None,
        };
        let entry = mb::entry(&d, &publishing);
        let publish = pubsub::publish(
            &post.node,
            Some(&post.item_id),
            entry.clone(),
            &blog::post_options(&access),
        );
        self.pubsub(&acc.jid, None, true, publish.into())
            .await
            .map_err(|e| match e {
                Error::NotConnected(_) | Error::Timeout(_) => e,
                e => Error::PublishRefused {
                    audience: post.audience.to_string(),
                    reason: refused(e),
                },
            })?;
        self.store_own_entry(
            &acc,
            &own,
            &post.node,
            &post.item_id,
            &entry,
            &post.audience,
        )
    }

    /// Deletes one of our posts (and its comments).
    pub async fn delete_post(&self, account: &str, item_id: &str) -> Result<()> {
        let (acc, _) = self.social_account(account)?;
        let post = self.own_post(&acc, item_id)?;
        self.pubsub(
            &acc.jid,
            None,
            true,
            pubsub::retract(&post.node, &post.item_id).into(),
        )
        .await?;
        if let Some(c) = blog::comments_ref(&post)
            && let Err(e) = self
                .pubsub(&acc.jid, None, true, pubsub::delete(&c.node))
                .await
        {
            tracing::warn!(error = %e, "cannot delete a deleted post's comments node");
        }
        if let Some(post) =
            self.inner
                .store
                .remove_post(acc.id, &post.service, &post.node, &post.item_id)?
        {
            self.emit_changes(&acc.jid, vec![FeedChange::PostRemoved { post }]);
        }
        Ok(())
    }

    /// Fetches someone's newest posts (every posts node of theirs we may read), stores them
    /// and their comments, and returns what we hold of them, newest first.
    pub async fn fetch_posts(
        &self,
        account: &str,
        author: &str,
        max: u32,
    ) -> Result<Vec<PostRecord>> {
        self.fetch_posts_with_comments(account, author, max, max as usize)
            .await
    }

    /// [`Client::fetch_posts`], fetching the comments of only the `comments_of` newest.
    async fn fetch_posts_with_comments(
        &self,
        account: &str,
        author: &str,
        max: u32,
        comments_of: usize,
    ) -> Result<Vec<PostRecord>> {
        let (acc, own) = self.social_account(account)?;
        let author = parse_contact(author)?;
        let service = (author != own).then_some(&author);
        let nodes = match self
            .pubsub(
                &acc.jid,
                service,
                false,
                DiscoItemsQuery {
                    node: None,
                    rsm: None,
                }
                .into(),
            )
            .await
            .ok()
            .flatten()
            .and_then(|el| DiscoItemsResult::try_from(el).ok())
        {
            Some(items) => {
                let mut nodes: Vec<String> = items
                    .items
                    .into_iter()
                    .filter_map(|i| i.node)
                    .filter(|n| mb::is_posts_node(n))
                    .collect();
                if !nodes.iter().any(|n| n == mb::NODE) {
                    nodes.push(mb::NODE.to_owned());
                }
                nodes
            }
            None => vec![mb::NODE.to_owned()],
        };
        for node in nodes {
            let result = self
                .pubsub(
                    &acc.jid,
                    service,
                    false,
                    pubsub::items(&node, Some(max), None),
                )
                .await;
            let items: Vec<RawItem> = match result {
                Ok(Some(el)) => pubsub::parse_items(&el).map(|(_, i)| i).unwrap_or_default(),
                Ok(None) => Vec::new(),
                Err(Error::Refused(r)) if r.starts_with("item-not-found") => Vec::new(),
                Err(Error::Refused(r)) => {
                    tracing::debug!(%author, node, reason = r, "posts node not readable");
                    continue;
                }
                Err(e) => return Err(e),
            };
            let store = &self.inner.store;
            let mut changes = blog::ingest_posts(store, acc.id, &own, &author, &node, &items)?;
            if (items.len() as u32) < max {
                // A complete listing: what it lacks was deleted.
                let keep: Vec<String> = items.iter().filter_map(|i| i.id.clone()).collect();
                changes.extend(blog::prune_posts(store, acc.id, &author, &node, &keep)?);
            }
            self.emit_changes(&acc.jid, changes);
        }
        let posts = self
            .inner
            .store
            .feed(acc.id, Some(author.as_str()), None, max)?;
        let fetches = posts
            .iter()
            .filter(|p| p.comments_node.is_some())
            .take(comments_of)
            .map(|p| self.fetch_comments(&acc.jid, p.id));
        for r in futures::future::join_all(fetches).await {
            if let Err(e) = r {
                tracing::debug!(error = %e, "comments not readable");
            }
        }
        Ok(self
            .inner
            .store
            .feed(acc.id, Some(author.as_str()), None, max)?)
    }

    /// Fetches the newest posts of ourselves and of every contact whose presence we see;
    /// returns how many posts the feed holds from them afterwards.
    pub async fn refresh_feed(&self, account: &str) -> Result<usize> {
        let (acc, own) = self.social_account(account)?;
        let mut people = vec![own.to_string()];
        people.extend(
            self.inner
                .store
                .contacts(acc.id)?
                .into_iter()
                .filter(|c| matches!(c.subscription, Subscription::To | Subscription::Both))
                .map(|c| c.jid),
        );
        let results: Vec<Result<Vec<PostRecord>>> = futures::stream::iter(people)
            .map(|p| {
                let acc = acc.jid.clone();
                async move {
                    self.fetch_posts_with_comments(&acc, &p, FETCH_POSTS, REFRESH_COMMENTS)
                        .await
                }
            })
            .buffer_unordered(PARALLEL_FETCHES)
            .collect()
            .await;
        let mut n = 0;
        for r in results {
            match r {
                Ok(p) => n += p.len(),
                Err(e @ Error::NotConnected(_)) => return Err(e),
                Err(e) => tracing::debug!(error = %e, "a feed fetch failed"),
            }
        }
        Ok(n)
    }

    /// Fetches a post's comments and returns them, oldest first.
    pub async fn fetch_comments(&self, account: &str, post_id: i64) -> Result<Vec<CommentRecord>> {
        let (acc, own) = self.social_account(account)?;
        let post = self
            .inner
            .store
            .post(acc.id, post_id)?
            .ok_or_else(|| Error::NoSuchPost(post_id.to_string()))?;
        let Some(c) = blog::comments_ref(&post) else {
            return Ok(self.inner.store.comments(post.id)?);
        };
        let service = (c.service != own).then_some(&c.service);
        let items = match self
            .pubsub(&acc.jid, service, false, pubsub::items(&c.node, None, None))
            .await
        {
            Ok(el) => el
                .and_then(|el| pubsub::parse_items(&el))
                .map(|(_, i)| i)
                .unwrap_or_default(),
            Err(Error::Refused(r)) if r.starts_with("item-not-found") => Vec::new(),
            Err(e) => return Err(e),
        };
        let store = &self.inner.store;
        let mut changes = blog::ingest_comments(store, &post, &items)?;
        let keep: HashSet<&str> = items.iter().filter_map(|i| i.id.as_deref()).collect();
        let gone: Vec<String> = store
            .comments(post.id)?
            .into_iter()
            .filter(|c| !keep.contains(c.item_id.as_str()))
            .map(|c| c.item_id)
            .collect();
        changes.extend(blog::retract_comments(store, &post, &gone)?);
        self.emit_changes(&acc.jid, changes);
        Ok(store.comments(post.id)?)
    }

    /// Comments on `author`'s post `item_id` (fetching the post first if we do not hold it).
    pub async fn comment(
        &self,
        account: &str,
        author: &str,
        item_id: &str,
        text: &str,
    ) -> Result<CommentRecord> {
        let (acc, own) = self.social_account(account)?;
        if text.trim().is_empty() {
            return Err(Error::EmptyPost);
        }
        let author = parse_contact(author)?;
        let post = match self
            .inner
            .store
            .post_by_item(acc.id, author.as_str(), item_id)?
        {
            Some(p) => p,
            None => {
                self.fetch_posts(&acc.jid, author.as_str(), 100).await?;
                self.inner
                    .store
                    .post_by_item(acc.id, author.as_str(), item_id)?
                    .ok_or_else(|| Error::NoSuchPost(format!("{author} {item_id}")))?
            }
        };
        let target = blog::comments_ref(&post).ok_or(Error::NoComments)?;
        let id = short_id();
        let now = crate::store::now_ms();
        let own_name = self.own_name(&acc, &own);
        let entry = mb::entry(
            &Draft {
                text: text.to_owned(),
                ..Draft::default()
            },
            &Publishing {
                author: &own,
                author_name: own_name.as_deref(),
                node: &target.node,
                id: &id,
                published: now,
                updated: now,
                comments: None,
            },
        );
        let service = (target.service != own).then_some(&target.service);
        self.pubsub(
            &acc.jid,
            service,
            true,
            pubsub::publish(&target.node, Some(&id), entry.clone(), &[]).into(),
        )
        .await?;
        if service.is_some()
            && let Err(e) = self
                .pubsub(
                    &acc.jid,
                    service,
                    true,
                    pubsub::subscribe(&target.node, &own).into(),
                )
                .await
        {
            tracing::debug!(error = %e, "cannot follow the comments we joined");
        }
        let item = RawItem {
            id: Some(id.clone()),
            publisher: Some(own.clone()),
            payload: Some(entry),
        };
        let changes = blog::ingest_comments(&self.inner.store, &post, &[item])?;
        self.emit_changes(&acc.jid, changes);
        self.inner
            .store
            .comments(post.id)?
            .into_iter()
            .find(|c| c.item_id == id)
            .ok_or(Error::NoSuchPost(id))
    }

    /// Posts in the store, newest first: everyone's (`author` None) or one person's, older
    /// than `before` (`(published, id)` of the last post shown).
    pub fn feed_page(
        &self,
        account: &str,
        author: Option<&str>,
        before: Option<(i64, i64)>,
        limit: u32,
    ) -> Result<Vec<PostRecord>> {
        let (acc, _) = self.social_account(account)?;
        let author = author.map(parse_contact).transpose()?;
        Ok(self
            .inner
            .store
            .feed(acc.id, author.as_ref().map(|a| a.as_str()), before, limit)?)
    }

    /// A post from the store.
    pub fn post(&self, account: &str, post_id: i64) -> Result<Option<PostRecord>> {
        let (acc, _) = self.social_account(account)?;
        Ok(self.inner.store.post(acc.id, post_id)?)
    }

    /// A post's comments from the store, oldest first.
    pub fn comments(&self, account: &str, post_id: i64) -> Result<Vec<CommentRecord>> {
        let (acc, _) = self.social_account(account)?;
        match self.inner.store.post(acc.id, post_id)? {
            Some(p) => Ok(self.inner.store.comments(p.id)?),
            None => Err(Error::NoSuchPost(post_id.to_string())),
        }
    }

    /// Finds a stored post by its author and item id.
    pub fn find_post(
        &self,
        account: &str,
        author: &str,
        item_id: &str,
    ) -> Result<Option<PostRecord>> {
        let (acc, _) = self.social_account(account)?;
        let author = parse_contact(author)?;
        Ok(self
            .inner
            .store
            .post_by_item(acc.id, author.as_str(), item_id)?)
    }

    /// Our circles.
    pub fn circles(&self, account: &str) -> Result<Vec<CircleRecord>> {
        let (acc, _) = self.social_account(account)?;
        Ok(self.inner.store.circles(acc.id)?)
    }

    /// Full-text search over posts.
    pub fn search_posts(&self, account: &str, text: &str, limit: u32) -> Result<Vec<PostRecord>> {
        let (acc, _) = self.social_account(account)?;
        Ok(self.inner.store.search_posts(acc.id, text, limit)?)
    }

    /// The feed (everyone's posts, or one author's) as a snapshot plus a stream of diffs.
    pub fn feed(
        &self,
        account: &str,
        author: Option<&str>,
        limit: u32,
    ) -> Result<(
        Vec<PostRecord>,
        impl Stream<Item = FeedDiff> + Send + 'static,
    )> {
        let (acc, _) = self.social_account(account)?;
        let author = author
            .map(parse_contact)
            .transpose()?
            .map(|a| a.to_string());
        let rx = self.events();
        let snapshot = self.feed_page(&acc.jid, author.as_deref(), None, limit)?;
        let store = self.inner.store.clone();
        let account = acc.jid.clone();
        let wanted = move |p: &PostRecord| author.as_deref().is_none_or(|a| a == p.author);
        let diffs = event_stream(rx).filter_map(move |ev| {
            let out = match ev {
                Event::Post {
                    account: a, post, ..
                } if a == account && wanted(&post) => Some(FeedDiff::Upsert {
                    post: Box::new(post),
                }),
                Event::PostRemoved { account: a, post } if a == account && wanted(&post) => {
                    Some(FeedDiff::Remove { id: post.id })
                }
                Event::Comment {
                    account: a,
                    comment,
                } if a == account => store
                    .post(acc.id, comment.post_id)
                    .ok()
                    .flatten()
                    .filter(|p| wanted(p))
                    .map(|post| FeedDiff::Upsert {
                        post: Box::new(post),
                    }),
                Event::CommentRemoved {
                    account: a,
                    post_id,
                    ..
                } if a == account => store
                    .post(acc.id, post_id)
                    .ok()
                    .flatten()
                    .filter(|p| wanted(p))
                    .map(|post| FeedDiff::Upsert {
                        post: Box::new(post),
                    }),
                _ => None,
            };
            futures::future::ready(out)
        });
        Ok((snapshot, diffs))
    }
}
