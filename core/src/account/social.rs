//! Microblog (XEP-0277) notifications in the account actor: posts and comments pushed by
//! contacts' PEP services (and our own, from our other devices and commenters).

use jid::BareJid;
use minidom::Element;

use super::Actor;
use crate::api::Event;
use crate::proto::microblog as mb;
use crate::proto::pubsub::{self, Notification};
use crate::services::microblog::{self as blog, FeedChange};
use crate::store::{self, PostChange, Store};

/// The event for a feed change.
pub(crate) fn feed_event(account: &str, change: FeedChange) -> Event {
    let account = account.to_owned();
    match change {
        FeedChange::Post { post, change } => Event::Post {
            account,
            post,
            edited: change == PostChange::Updated,
        },
        FeedChange::PostRemoved { post } => Event::PostRemoved { account, post },
        FeedChange::Comment { comment } => Event::Comment { account, comment },
        FeedChange::CommentRemoved { post_id, item_id } => Event::CommentRemoved {
            account,
            post_id,
            item_id,
        },
    }
}

/// Applies a notification from `from`'s service to the feed. Posts are accepted from
/// ourselves and from roster contacts only (anyone could push notifications at us);
/// comments only for posts we hold whose comments node is the notifying one.
pub(crate) fn apply_notification(
    store: &Store,
    account: store::AccountId,
    own: &BareJid,
    from: &BareJid,
    n: &Notification,
) -> store::Result<Vec<FeedChange>> {
    if mb::is_posts_node(&n.node) {
        if from != own && store.contact(account, from.as_str())?.is_none() {
            tracing::info!(%from, node = n.node, "posts from someone not in the roster ignored");
            return Ok(Vec::new());
        }
        let mut out = blog::ingest_posts(store, account, own, from, &n.node, &n.published)?;
        out.extend(blog::retract_posts(
            store,
            account,
            from,
            &n.node,
            &n.retracted,
        )?);
        if n.cleared {
            out.extend(blog::prune_posts(store, account, from, &n.node, &[])?);
        }
        return Ok(out);
    }
    if mb::comments_of(&n.node).is_some() {
        let Some(post) = store.post_for_comments(account, from.as_str(), &n.node)? else {
            tracing::debug!(%from, node = n.node, "comments on a post we do not hold");
            return Ok(Vec::new());
        };
        let mut out = blog::ingest_comments(store, &post, &n.published)?;
        out.extend(blog::retract_comments(store, &post, &n.retracted)?);
        return Ok(out);
    }
    Ok(Vec::new())
}

impl Actor {
    /// A pubsub notification from `from` (our own account or anyone's service).
    pub(super) fn on_pubsub_event(&mut self, from: &BareJid, ev: &Element) {
        let Some(n) = pubsub::parse_event(ev) else {
            return;
        };
        match apply_notification(&self.store, self.rec.id, &self.own, from, &n) {
            Ok(changes) => {
                for c in changes {
                    self.emit(feed_event(&self.rec.jid, c));
                }
            }
            Err(e) => tracing::error!(error = %e, %from, "cannot store a feed notification"),
        }
    }
}
