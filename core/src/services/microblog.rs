//! XEP-0277 microblogging for one account: which node and node settings each audience uses,
//! and applying posts and comments (from notifications or fetches) to the store.
//!
//! Audiences map to nodes because PEP access control is per node:
//! public -> `urn:xmpp:microblog:0` (`open`), contacts -> `…:contacts` (`presence`),
//! circle -> `…:circle/ID` (`whitelist` whose members Starling keeps equal to the circle's
//! roster groups, or `roster` with `roster_groups_allowed` where the server has it). Every
//! publish carries these settings as publish-options, so a server that cannot apply them
//! refuses the post instead of publishing it more widely.

use jid::BareJid;

use crate::proto::microblog::{self as mb, Entry, NodeRef};
use crate::proto::pubsub::{Notification, Opt, RawItem};
use crate::store::{
    self, AccountId, Audience, CommentInput, CommentRecord, PostChange, PostInput, PostRecord,
    Store,
};

/// Timestamps more than this far in the future are clamped to now (a hostile or confused
/// clock must not pin a post to the top of the feed).
const MAX_SKEW_MS: i64 = 5 * 60 * 1000;

/// How a node's readers are chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    Open,
    Presence,
    Whitelist,
    /// The roster access model with these groups (servers announcing `pubsub#access-roster`).
    Roster(Vec<String>),
}

impl Access {
    fn options(&self) -> Vec<Opt> {
        match self {
            Access::Open => vec![Opt::one("pubsub#access_model", "open")],
            Access::Presence => vec![Opt::one("pubsub#access_model", "presence")],
            Access::Whitelist => vec![Opt::one("pubsub#access_model", "whitelist")],
            Access::Roster(groups) => vec![
                Opt::one("pubsub#access_model", "roster"),
                Opt::Many("pubsub#roster_groups_allowed", groups.clone()),
            ],
        }
    }

    /// Whether Starling must keep the node's member list itself.
    pub fn needs_members(&self) -> bool {
        matches!(self, Access::Whitelist)
    }
}

/// Settings of a posts node, sent as publish-options with every post.
pub fn post_options(access: &Access) -> Vec<Opt> {
    let mut o = access.options();
    o.push(Opt::one("pubsub#persist_items", "true"));
    o.push(Opt::one("pubsub#max_items", "max"));
    o
}

/// Configuration of a post's comments node: readable by the post's audience, open to
/// comments from any of them.
pub fn comments_config(access: &Access) -> Vec<Opt> {
    let mut o = access.options();
    o.push(Opt::one("pubsub#publish_model", "open"));
    o.push(Opt::one("pubsub#persist_items", "true"));
    o.push(Opt::one("pubsub#max_items", "max"));
    o
}

/// The node of an audience's posts. Circles get a random node id when first used, so node
/// names (which contacts can list) do not reveal circle names.
pub fn node_for(audience: &Audience, circle_node: Option<&str>) -> String {
    match audience {
        Audience::Public => mb::NODE.to_owned(),
        Audience::Contacts => mb::CONTACTS_NODE.to_owned(),
        Audience::Circle(_) => circle_node
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{}{}", mb::CIRCLE_PREFIX, uuid::Uuid::new_v4().simple())),
    }
}

/// A change to the feed, for events.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedChange {
    Post {
        post: PostRecord,
        change: PostChange,
    },
    PostRemoved {
        post: PostRecord,
    },
    Comment {
        comment: CommentRecord,
    },
    CommentRemoved {
        post_id: i64,
        item_id: String,
    },
}

fn clamp(t: i64, now: i64) -> i64 {
    t.min(now + MAX_SKEW_MS)
}

/// The audience of a post on someone's `node`.
fn audience_of(store: &Store, account: AccountId, own: bool, node: &str) -> Audience {
    match node {
        mb::NODE => Audience::Public,
        mb::CONTACTS_NODE => Audience::Contacts,
        _ if own => store
            .circles(account)
            .ok()
            .and_then(|cs| cs.into_iter().find(|c| c.node == node))
            .map(|c| Audience::Circle(c.name))
            .unwrap_or(Audience::Circle("unknown circle".into())),
        _ => Audience::Circle("people they chose".into()),
    }
}

/// Turns an entry published at `service`/`node` into what the store keeps.
pub fn post_input(
    store: &Store,
    account: AccountId,
    own: &BareJid,
    service: &BareJid,
    node: &str,
    e: Entry,
) -> PostInput {
    let now = store::now_ms();
    let published = clamp(e.published.or(e.updated).unwrap_or(now), now);
    let updated = clamp(e.updated.unwrap_or(published), now).max(published);
    // On PEP the author is the service's owner, whatever the entry claims.
    let author_name = if e.author_jid.as_ref().is_none_or(|j| j == service) {
        e.author_name
    } else {
        None
    };
    PostInput {
        service: service.to_string(),
        node: node.to_owned(),
        item_id: e.id,
        author: service.to_string(),
        author_name,
        title: e.title,
        body: e.body,
        tags: e.tags,
        enclosures: e.enclosures,
        comments_service: e.comments.as_ref().map(|c| c.service.to_string()),
        comments_node: e.comments.map(|c| c.node),
        audience: audience_of(store, account, service == own, node),
        published,
        updated,
    }
}

/// Stores posts published at `service`/`node`. Entries that are not valid posts are logged
/// and skipped.
pub fn ingest_posts(
    store: &Store,
    account: AccountId,
    own: &BareJid,
    service: &BareJid,
    node: &str,
    items: &[RawItem],
) -> store::Result<Vec<FeedChange>> {
    let mut out = Vec::new();
    for item in items {
        let Some(payload) = &item.payload else {
            continue;
        };
        let entry = match Entry::parse(item.id.as_deref(), payload) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(%service, node, item = ?item.id, error = %e, "post ignored");
                continue;
            }
        };
        let input = post_input(store, account, own, service, node, entry);
        let (post, change) = store.upsert_post(account, &input)?;
        if change != PostChange::Unchanged {
            out.push(FeedChange::Post { post, change });
        }
    }
    Ok(out)
}

/// Removes retracted posts.
pub fn retract_posts(
    store: &Store,
    account: AccountId,
    service: &BareJid,
    node: &str,
    ids: &[String],
) -> store::Result<Vec<FeedChange>> {
    let mut out = Vec::new();
    for id in ids {
        if let Some(post) = store.remove_post(account, service.as_str(), node, id)? {
            out.push(FeedChange::PostRemoved { post });
        }
    }
    Ok(out)
}

/// Removes stored posts of a node that a complete listing no longer has.
pub fn prune_posts(
    store: &Store,
    account: AccountId,
    service: &BareJid,
    node: &str,
    keep: &[String],
) -> store::Result<Vec<FeedChange>> {
    Ok(store
        .prune_node(account, service.as_str(), node, keep)?
        .into_iter()
        .map(|post| FeedChange::PostRemoved { post })
        .collect())
}

/// Stores comments on `post`. The service's `publisher` is authoritative for the author; a
/// comment without it keeps the author it claims, marked unverified.
pub fn ingest_comments(
    store: &Store,
    post: &PostRecord,
    items: &[RawItem],
) -> store::Result<Vec<FeedChange>> {
    let now = store::now_ms();
    let mut out = Vec::new();
    for item in items {
        let Some(payload) = &item.payload else {
            continue;
        };
        let e = match Entry::parse(item.id.as_deref(), payload) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(post = post.id, item = ?item.id, error = %e, "comment ignored");
                continue;
            }
        };
        let (author, verified) = match (&item.publisher, &e.author_jid) {
            (Some(p), _) => (Some(p.to_string()), true),
            (None, claimed) => (claimed.as_ref().map(|j| j.to_string()), false),
        };
        let author_name = if verified && e.author_jid.as_ref() != item.publisher.as_ref() {
            None
        } else {
            e.author_name
        };
        let published = clamp(e.published.or(e.updated).unwrap_or(now), now);
        let c = CommentInput {
            item_id: e.id,
            author,
            author_name,
            verified,
            text: e.body.text,
            markdown: e.body.markdown,
            published,
            updated: clamp(e.updated.unwrap_or(published), now).max(published),
        };
        let (comment, changed) = store.upsert_comment(post.id, &c)?;
        if changed {
            out.push(FeedChange::Comment { comment });
        }
    }
    Ok(out)
}

/// Removes retracted comments.
pub fn retract_comments(
    store: &Store,
    post: &PostRecord,
    ids: &[String],
) -> store::Result<Vec<FeedChange>> {
    let mut out = Vec::new();
    for id in ids {
        if store.remove_comment(post.id, id)? {
            out.push(FeedChange::CommentRemoved {
                post_id: post.id,
                item_id: id.clone(),
            });
        }
    }
    Ok(out)
}

/// Applies a notification from `from`'s service to the feed. Posts are accepted from
/// ourselves and from roster contacts only (anyone could push notifications at us);
/// comments only for posts we hold whose comments node is the notifying one.
pub fn apply_notification(
    store: &Store,
    account: AccountId,
    own: &BareJid,
    from: &BareJid,
    n: &Notification,
) -> store::Result<Vec<FeedChange>> {
    if mb::is_posts_node(&n.node) {
        if from != own && store.contact(account, from.as_str())?.is_none() {
            tracing::info!(%from, node = n.node, "posts from someone not in the roster ignored");
            return Ok(Vec::new());
        }
        let mut out = ingest_posts(store, account, own, from, &n.node, &n.published)?;
        out.extend(retract_posts(store, account, from, &n.node, &n.retracted)?);
        if n.cleared {
            out.extend(prune_posts(store, account, from, &n.node, &[])?);
        }
        return Ok(out);
    }
    if mb::comments_of(&n.node).is_some() {
        let Some(post) = store.post_for_comments(account, from.as_str(), &n.node)? else {
            tracing::debug!(%from, node = n.node, "comments on a post we do not hold");
            return Ok(Vec::new());
        };
        let mut out = ingest_comments(store, &post, &n.published)?;
        out.extend(retract_comments(store, &post, &n.retracted)?);
        return Ok(out);
    }
    Ok(Vec::new())
}

/// Where a post's comments live.
pub fn comments_ref(post: &PostRecord) -> Option<NodeRef> {
    let service = BareJid::new(post.comments_service.as_deref()?).ok()?;
    Some(NodeRef {
        service,
        node: post.comments_node.clone()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::accounts::tests::alice;
    use minidom::Element;

    fn item(id: &str, publisher: Option<&str>, xml: &str) -> anyhow::Result<RawItem> {
        Ok(RawItem {
            id: Some(id.into()),
            publisher: publisher.map(BareJid::new).transpose()?,
            payload: Some(xml.parse::<Element>()?),
        })
    }

    #[test]
    fn posts_and_comments_from_the_network() -> anyhow::Result<()> {
        let store = Store::open_in_memory()?;
        let acc = store.add_account(&alice())?.id;
        let own = BareJid::new("alice@example.org")?;
        let bob = BareJid::new("bob@example.org")?;
        let future = "2999-01-01T00:00:00Z";
        let items = vec![
            item(
                "p1",
                None,
                &format!(
                    "<entry xmlns='http://www.w3.org/2005/Atom'><title>Hi</title>\
                     <author><name>Mallory</name><uri>xmpp:mallory@evil.example</uri></author>\
                     <published>{future}</published>\
                     <link rel='replies' href='xmpp:bob@example.org?;node=urn%3Axmpp%3Amicroblog%3A0%3Acomments%2Fp1'/>\
                     </entry>"
                ),
            )?,
            item("bad", None, "<entry xmlns='urn:x'/>")?,
        ];
        let changes = ingest_posts(&store, acc, &own, &bob, mb::NODE, &items)?;
        assert_eq!(changes.len(), 1, "the invalid entry is skipped");
        let FeedChange::Post { post, .. } = &changes[0] else {
            anyhow::bail!("not a post");
        };
        assert_eq!(
            post.author, "bob@example.org",
            "the service owner is the author"
        );
        assert_eq!(
            post.author_name, None,
            "a name claimed for someone else is dropped"
        );
        assert!(post.published <= store::now_ms() + MAX_SKEW_MS);
        assert_eq!(post.audience, Audience::Public);
        assert!(ingest_posts(&store, acc, &own, &bob, mb::NODE, &items)?.is_empty());

        let comments = vec![
            item(
                "c1",
                Some("carol@example.org"),
                "<entry xmlns='http://www.w3.org/2005/Atom'><content>great</content>\
                 <author><name>Dave</name><uri>xmpp:dave@example.org</uri></author></entry>",
            )?,
            item(
                "c2",
                None,
                "<entry xmlns='http://www.w3.org/2005/Atom'><content>me too</content>\
                 <author><uri>xmpp:erin@example.org</uri></author></entry>",
            )?,
        ];
        let ch = ingest_comments(&store, post, &comments)?;
        assert_eq!(ch.len(), 2);
        let stored = store.comments(post.id)?;
        assert_eq!(
            (
                stored[0].author.as_deref(),
                stored[0].verified,
                stored[0].author_name.as_deref()
            ),
            (Some("carol@example.org"), true, None)
        );
        assert_eq!(
            (stored[1].author.as_deref(), stored[1].verified),
            (Some("erin@example.org"), false)
        );
        assert_eq!(retract_comments(&store, post, &["c2".into()])?.len(), 1);
        assert_eq!(
            retract_posts(&store, acc, &bob, mb::NODE, &["p1".into()])?.len(),
            1
        );
        Ok(())
    }

    #[test]
    fn audiences_map_to_nodes_and_settings() {
        assert_eq!(node_for(&Audience::Public, None), mb::NODE);
        assert_eq!(node_for(&Audience::Contacts, None), mb::CONTACTS_NODE);
        let c = node_for(&Audience::Circle("Family".into()), None);
        assert!(c.starts_with(mb::CIRCLE_PREFIX) && !c.contains("Family"));
        assert_eq!(node_for(&Audience::Circle("F".into()), Some("n")), "n");
        let o = post_options(&Access::Presence);
        assert!(o.contains(&Opt::one("pubsub#access_model", "presence")));
        let c = comments_config(&Access::Roster(vec!["Family".into()]));
        assert!(c.contains(&Opt::one("pubsub#publish_model", "open")));
        assert!(c.contains(&Opt::Many(
            "pubsub#roster_groups_allowed",
            vec!["Family".into()]
        )));
    }
}
