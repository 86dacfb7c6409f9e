//! Posts and comments (XEP-0277), circles, and contacts' profiles.

use rusqlite::{OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use super::messages::fts_query;
use super::{AccountId, Error, Result, Store, now_ms};
use crate::proto::microblog::Enclosure;

/// Who may read a post.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Audience {
    /// Anyone (the XEP-0277 node, access model `open`).
    Public,
    /// People with a presence subscription to us (access model `presence`).
    Contacts,
    /// The members of one of our circles (roster groups).
    Circle(String),
}

impl std::fmt::Display for Audience {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Audience::Public => f.write_str("public"),
            Audience::Contacts => f.write_str("contacts"),
            Audience::Circle(c) => write!(f, "circle:{c}"),
        }
    }
}

impl std::str::FromStr for Audience {
    type Err = String;
    fn from_str(s: &str) -> Result<Audience, String> {
        match s.trim() {
            "public" => Ok(Audience::Public),
            "contacts" => Ok(Audience::Contacts),
            other => match other.strip_prefix("circle:").map(str::trim) {
                Some(c) if !c.is_empty() => Ok(Audience::Circle(c.to_owned())),
                _ => Err(format!(
                    "unknown audience {s:?}: use public, contacts or circle:GROUP"
                )),
            },
        }
    }
}

impl Serialize for Audience {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Audience, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A post as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PostRecord {
    pub id: i64,
    pub service: String,
    pub node: String,
    pub item_id: String,
    pub author: String,
    pub author_name: Option<String>,
    pub title: Option<String>,
    pub text: String,
    pub markdown: String,
    pub html: Option<String>,
    pub images: Vec<String>,
    pub tags: Vec<String>,
    pub enclosures: Vec<Enclosure>,
    pub comments_service: Option<String>,
    pub comments_node: Option<String>,
    pub audience: Audience,
    pub published: i64,
    pub updated: i64,
    pub comment_count: i64,
    pub truncated: bool,
}

/// A post to store (from the network or our own publish).
#[derive(Debug, Clone, PartialEq)]
pub struct PostInput {
    pub service: String,
    pub node: String,
    pub item_id: String,
    pub author: String,
    pub author_name: Option<String>,
    pub title: Option<String>,
    pub body: crate::proto::microblog::Rich,
    pub tags: Vec<String>,
    pub enclosures: Vec<Enclosure>,
    pub comments_service: Option<String>,
    pub comments_node: Option<String>,
    pub audience: Audience,
    pub published: i64,
    pub updated: i64,
}

/// What storing a post did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostChange {
    New,
    Updated,
    /// Already stored, and not newer.
    Unchanged,
}

/// A comment as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommentRecord {
    pub id: i64,
    pub post_id: i64,
    pub item_id: String,
    pub author: Option<String>,
    pub author_name: Option<String>,
    /// The service confirmed the author (the item's publisher matches the entry's author).
    pub verified: bool,
    pub text: String,
    pub markdown: String,
    pub published: i64,
    pub updated: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentInput {
    pub item_id: String,
    pub author: Option<String>,
    pub author_name: Option<String>,
    pub verified: bool,
    pub text: String,
    pub markdown: String,
    pub published: i64,
    pub updated: i64,
}

/// One of our circles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CircleRecord {
    pub name: String,
    pub node: String,
    pub groups: Vec<String>,
}

/// What we know of someone's profile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProfileRecord {
    pub jid: String,
    pub nick: Option<String>,
    pub full_name: Option<String>,
    pub bio: Option<String>,
    pub url: Option<String>,
    /// SHA-1 (hex) of the avatar image in the avatar cache.
    pub avatar: Option<String>,
}

const POST_COLUMNS: &str = "id, service, node, item_id, author, author_name, title, body, \
     markdown, html, images, tags, enclosures, comments_service, comments_node, audience, \
     published, updated, comment_count, truncated";

fn json<T: serde::de::DeserializeOwned + Default>(s: &str) -> T {
    serde_json::from_str(s).unwrap_or_default()
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".to_owned())
}

fn post_row(r: &Row<'_>) -> rusqlite::Result<PostRecord> {
    let audience: String = r.get(15)?;
    Ok(PostRecord {
        id: r.get(0)?,
        service: r.get(1)?,
        node: r.get(2)?,
        item_id: r.get(3)?,
        author: r.get(4)?,
        author_name: r.get(5)?,
        title: r.get(6)?,
        text: r.get(7)?,
        markdown: r.get(8)?,
        html: r.get(9)?,
        images: json(&r.get::<_, String>(10)?),
        tags: json(&r.get::<_, String>(11)?),
        enclosures: json(&r.get::<_, String>(12)?),
        comments_service: r.get(13)?,
        comments_node: r.get(14)?,
        audience: audience.parse().unwrap_or(Audience::Contacts),
        published: r.get(16)?,
        updated: r.get(17)?,
        comment_count: r.get(18)?,
        truncated: r.get(19)?,
    })
}

fn circle_row(r: &Row<'_>) -> rusqlite::Result<CircleRecord> {
    Ok(CircleRecord {
        name: r.get(0)?,
        node: r.get(1)?,
        groups: json(&r.get::<_, String>(2)?),
    })
}

const COMMENT_COLUMNS: &str =
    "id, post_id, item_id, author, author_name, verified, body, markdown, published, updated";

fn comment_row(r: &Row<'_>) -> rusqlite::Result<CommentRecord> {
    Ok(CommentRecord {
        id: r.get(0)?,
        post_id: r.get(1)?,
        item_id: r.get(2)?,
        author: r.get(3)?,
        author_name: r.get(4)?,
        verified: r.get(5)?,
        text: r.get(6)?,
        markdown: r.get(7)?,
        published: r.get(8)?,
        updated: r.get(9)?,
    })
}

impl Store {
    /// Stores a post, or updates it when `updated` is not older than what we hold (an edit).
    pub fn upsert_post(
        &self,
        account: AccountId,
        p: &PostInput,
    ) -> Result<(PostRecord, PostChange)> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let existing: Option<i64> = tx
            .query_row(
                "SELECT id FROM post WHERE account_id = ?1 AND service = ?2 AND node = ?3 \
                 AND item_id = ?4",
                params![account, p.service, p.node, p.item_id],
                |r| r.get(0),
            )
            .optional()?;
        // One statement inserts a new post or applies an edit (never an older version, and
        // only when something a reader sees changed).
        let n = tx.execute(
            "INSERT INTO post (account_id, service, node, item_id, author, author_name, \
             title, body, markdown, html, images, tags, enclosures, comments_service, \
             comments_node, audience, published, updated, received_at, truncated) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, \
             ?16, ?17, ?18, ?19, ?20) \
             ON CONFLICT (account_id, service, node, item_id) DO UPDATE SET \
             author_name = excluded.author_name, title = excluded.title, body = excluded.body, \
             markdown = excluded.markdown, html = excluded.html, images = excluded.images, \
             tags = excluded.tags, enclosures = excluded.enclosures, \
             comments_service = coalesce(excluded.comments_service, post.comments_service), \
             comments_node = coalesce(excluded.comments_node, post.comments_node), \
             updated = excluded.updated, truncated = excluded.truncated \
             WHERE excluded.updated >= post.updated AND (excluded.body != post.body \
             OR coalesce(excluded.title, '') != coalesce(post.title, '') \
             OR excluded.tags != post.tags OR excluded.enclosures != post.enclosures)",
            params![
                account,
                p.service,
                p.node,
                p.item_id,
                p.author,
                p.author_name,
                p.title,
                p.body.text,
                p.body.markdown,
                p.body.html,
                to_json(&p.body.images),
                to_json(&p.tags),
                to_json(&p.enclosures),
                p.comments_service,
                p.comments_node,
                p.audience.to_string(),
                p.published,
                p.updated,
                now_ms(),
                p.body.truncated,
            ],
        )?;
        let (id, change) = match existing {
            None => (tx.last_insert_rowid(), PostChange::New),
            Some(id) if n > 0 => (id, PostChange::Updated),
            Some(id) => (id, PostChange::Unchanged),
        };
        let rec = tx.query_row(
            &format!("SELECT {POST_COLUMNS} FROM post WHERE id = ?1"),
            [id],
            post_row,
        )?;
        tx.commit()?;
        Ok((rec, change))
    }

    /// The one post matching `filter` (an SQL condition on `post` with `?1` the account).
    fn post_where(&self, filter: &str, args: impl rusqlite::Params) -> Result<Option<PostRecord>> {
        let conn = self.lock();
        Ok(conn
            .query_row(
                &format!(
                    "SELECT {POST_COLUMNS} FROM post WHERE account_id = ?1 AND {filter} \
                     ORDER BY updated DESC LIMIT 1"
                ),
                args,
                post_row,
            )
            .optional()?)
    }

    /// Removes a post (retracted by its author); returns it if it was stored.
    pub fn remove_post(
        &self,
        account: AccountId,
        service: &str,
        node: &str,
        item_id: &str,
    ) -> Result<Option<PostRecord>> {
        let rec = self.post_where(
            "service = ?2 AND node = ?3 AND item_id = ?4",
            params![account, service, node, item_id],
        )?;
        if let Some(r) = &rec {
            self.lock()
                .execute("DELETE FROM post WHERE id = ?1", [r.id])?;
        }
        Ok(rec)
    }

    /// Removes every post of a node that is not in `keep` (a node purged or deleted, or a
    /// full fetch that no longer lists them); returns the removed posts.
    pub fn prune_node(
        &self,
        account: AccountId,
        service: &str,
        node: &str,
        keep: &[String],
    ) -> Result<Vec<PostRecord>> {
        let gone: Vec<PostRecord> = self
            .node_posts(account, service, node)?
            .into_iter()
            .filter(|p| !keep.contains(&p.item_id))
            .collect();
        let conn = self.lock();
        for p in &gone {
            conn.execute("DELETE FROM post WHERE id = ?1", [p.id])?;
        }
        Ok(gone)
    }

    fn node_posts(&self, account: AccountId, service: &str, node: &str) -> Result<Vec<PostRecord>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!(
            "SELECT {POST_COLUMNS} FROM post WHERE account_id = ?1 AND service = ?2 AND node = ?3"
        ))?;
        let rows = stmt.query_map(params![account, service, node], post_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn post(&self, account: AccountId, id: i64) -> Result<Option<PostRecord>> {
        self.post_where("id = ?2", params![account, id])
    }

    /// A post by its author and item id (on any of the author's post nodes).
    pub fn post_by_item(
        &self,
        account: AccountId,
        author: &str,
        item_id: &str,
    ) -> Result<Option<PostRecord>> {
        self.post_where(
            "service = ?2 AND item_id = ?3",
            params![account, author, item_id],
        )
    }

    /// The post whose comments live at `service`/`node`.
    pub fn post_for_comments(
        &self,
        account: AccountId,
        service: &str,
        node: &str,
    ) -> Result<Option<PostRecord>> {
        self.post_where(
            "comments_service = ?2 AND comments_node = ?3",
            params![account, service, node],
        )
    }

    /// The feed, newest first: posts published before `before` (`(published, id)` of the
    /// oldest post already shown), from everyone or from one author.
    pub fn feed(
        &self,
        account: AccountId,
        author: Option<&str>,
        before: Option<(i64, i64)>,
        limit: u32,
    ) -> Result<Vec<PostRecord>> {
        let (bp, bi) = before.unwrap_or((i64::MAX, i64::MAX));
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!(
            "SELECT {POST_COLUMNS} FROM post WHERE account_id = ?1 \
             AND (?2 IS NULL OR author = ?2) AND (published < ?3 OR (published = ?3 AND id < ?4)) \
             ORDER BY published DESC, id DESC LIMIT ?5"
        ))?;
        let rows = stmt.query_map(params![account, author, bp, bi, limit], post_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Full-text search over posts' titles and text, newest first.
    pub fn search_posts(
        &self,
        account: AccountId,
        text: &str,
        limit: u32,
    ) -> Result<Vec<PostRecord>> {
        let query = fts_query(text);
        if query.is_empty() {
            return Ok(Vec::new());
        }
        let conn = self.lock();
        let cols = POST_COLUMNS
            .split(", ")
            .map(|c| format!("p.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut stmt = conn.prepare(&format!(
            "SELECT {cols} FROM post_fts f JOIN post p ON p.id = f.rowid \
             WHERE post_fts MATCH ?1 AND p.account_id = ?2 ORDER BY p.published DESC LIMIT ?3"
        ))?;
        let rows = stmt.query_map(params![query, account, limit], post_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn recount(conn: &rusqlite::Connection, post: i64) -> Result<()> {
        conn.execute(
            "UPDATE post SET comment_count = (SELECT count(*) FROM comment WHERE post_id = ?1) \
             WHERE id = ?1",
            [post],
        )?;
        Ok(())
    }

    /// Stores a comment (or its edit); `true` when it is new or changed.
    pub fn upsert_comment(&self, post: i64, c: &CommentInput) -> Result<(CommentRecord, bool)> {
        let conn = self.lock();
        let changed = conn.execute(
            "INSERT INTO comment (post_id, item_id, author, author_name, verified, body, \
             markdown, published, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
             ON CONFLICT (post_id, item_id) DO UPDATE SET author = excluded.author, \
             author_name = excluded.author_name, verified = excluded.verified, \
             body = excluded.body, markdown = excluded.markdown, updated = excluded.updated \
             WHERE excluded.updated >= comment.updated AND (excluded.body != comment.body \
             OR excluded.verified != comment.verified)",
            params![
                post,
                c.item_id,
                c.author,
                c.author_name,
                c.verified,
                c.text,
                c.markdown,
                c.published,
                c.updated
            ],
        )?;
        Self::recount(&conn, post)?;
        let rec = conn.query_row(
            &format!("SELECT {COMMENT_COLUMNS} FROM comment WHERE post_id = ?1 AND item_id = ?2"),
            params![post, c.item_id],
            comment_row,
        )?;
        Ok((rec, changed > 0))
    }

    /// Removes a comment; `true` if it was stored.
    pub fn remove_comment(&self, post: i64, item_id: &str) -> Result<bool> {
        let conn = self.lock();
        let n = conn.execute(
            "DELETE FROM comment WHERE post_id = ?1 AND item_id = ?2",
            params![post, item_id],
        )?;
        Self::recount(&conn, post)?;
        Ok(n > 0)
    }

    /// A post's comments, oldest first.
    pub fn comments(&self, post: i64) -> Result<Vec<CommentRecord>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COMMENT_COLUMNS} FROM comment WHERE post_id = ?1 ORDER BY published, id"
        ))?;
        let rows = stmt.query_map([post], comment_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn circles(&self, account: AccountId) -> Result<Vec<CircleRecord>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT name, node, groups FROM circle WHERE account_id = ?1 ORDER BY name")?;
        let rows = stmt.query_map([account], circle_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Creates or redefines a circle; its node never changes once created.
    pub fn set_circle(
        &self,
        account: AccountId,
        name: &str,
        node: &str,
        groups: &[String],
    ) -> Result<CircleRecord> {
        let conn = self.lock();
        conn.execute(
            "INSERT INTO circle (account_id, name, node, groups) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (account_id, name) DO UPDATE SET groups = excluded.groups",
            params![account, name, node, to_json(&groups)],
        )?;
        conn.query_row(
            "SELECT name, node, groups FROM circle WHERE account_id = ?1 AND name = ?2",
            params![account, name],
            circle_row,
        )
        .map_err(Error::from)
    }

    pub fn profile(&self, account: AccountId, jid: &str) -> Result<Option<ProfileRecord>> {
        let conn = self.lock();
        Ok(conn
            .query_row(
                "SELECT jid, nick, full_name, bio, url, avatar FROM profile \
                 WHERE account_id = ?1 AND jid = ?2",
                params![account, jid],
                |r| {
                    Ok(ProfileRecord {
                        jid: r.get(0)?,
                        nick: r.get(1)?,
                        full_name: r.get(2)?,
                        bio: r.get(3)?,
                        url: r.get(4)?,
                        avatar: r.get(5)?,
                    })
                },
            )
            .optional()?)
    }

    /// Updates what we know of a profile with `f`; `true` when something changed.
    pub fn update_profile(
        &self,
        account: AccountId,
        jid: &str,
        f: impl FnOnce(&mut ProfileRecord),
    ) -> Result<(ProfileRecord, bool)> {
        let old = self
            .profile(account, jid)?
            .unwrap_or_else(|| ProfileRecord {
                jid: jid.to_owned(),
                ..ProfileRecord::default()
            });
        let mut new = old.clone();
        f(&mut new);
        if new == old && self.profile(account, jid)?.is_some() {
            return Ok((new, false));
        }
        let conn = self.lock();
        conn.execute(
            "INSERT INTO profile (account_id, jid, nick, full_name, bio, url, avatar, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (account_id, jid) DO UPDATE SET \
             nick = excluded.nick, full_name = excluded.full_name, bio = excluded.bio, \
             url = excluded.url, avatar = excluded.avatar, updated_at = excluded.updated_at",
            params![
                account,
                jid,
                new.nick,
                new.full_name,
                new.bio,
                new.url,
                new.avatar,
                now_ms()
            ],
        )?;
        Ok((new.clone(), new != old))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::microblog::html;
    use crate::store::accounts::tests::alice;

    fn input(item: &str, text: &str, published: i64, updated: i64) -> PostInput {
        PostInput {
            service: "bob@example.org".into(),
            node: crate::proto::microblog::NODE.into(),
            item_id: item.into(),
            author: "bob@example.org".into(),
            author_name: Some("Bob".into()),
            title: None,
            body: html::from_text(text),
            tags: vec!["t".into()],
            enclosures: Vec::new(),
            comments_service: Some("bob@example.org".into()),
            comments_node: Some(format!("urn:xmpp:microblog:0:comments/{item}")),
            audience: Audience::Public,
            published,
            updated,
        }
    }

    #[test]
    fn posts_edits_feed_search_and_comments() -> anyhow::Result<()> {
        let store = Store::open_in_memory()?;
        let a = store.add_account(&alice())?.id;
        let (p1, c) = store.upsert_post(a, &input("p1", "hello world", 10, 10))?;
        assert_eq!(c, PostChange::New);
        assert_eq!(
            store.upsert_post(a, &input("p1", "hello world", 10, 10))?.1,
            PostChange::Unchanged
        );
        assert_eq!(
            store.upsert_post(a, &input("p1", "old edit", 10, 5))?.1,
            PostChange::Unchanged,
            "an older version never overwrites a newer one"
        );
        let (edited, c) = store.upsert_post(a, &input("p1", "hello again", 10, 20))?;
        assert_eq!(
            (c, edited.id, edited.text.as_str()),
            (PostChange::Updated, p1.id, "hello again")
        );
        store.upsert_post(a, &input("p2", "second post", 30, 30))?;
        store.upsert_post(a, &input("p3", "third", 20, 20))?;

        let feed = store.feed(a, None, None, 2)?;
        assert_eq!(
            feed.iter().map(|p| p.item_id.as_str()).collect::<Vec<_>>(),
            ["p2", "p3"]
        );
        let older = store.feed(a, Some("bob@example.org"), Some((20, feed[1].id)), 10)?;
        assert_eq!(older.len(), 1);
        assert_eq!(store.search_posts(a, "again", 10)?.len(), 1);
        assert!(store.search_posts(a, "hello world", 10)?.is_empty());

        let comment = CommentInput {
            item_id: "c1".into(),
            author: Some("carol@example.org".into()),
            author_name: None,
            verified: true,
            text: "nice".into(),
            markdown: "nice".into(),
            published: 40,
            updated: 40,
        };
        assert!(store.upsert_comment(p1.id, &comment)?.1);
        assert!(!store.upsert_comment(p1.id, &comment)?.1);
        let found =
            store.post_for_comments(a, "bob@example.org", "urn:xmpp:microblog:0:comments/p1")?;
        assert_eq!(found.map(|p| p.comment_count), Some(1));
        assert!(store.remove_comment(p1.id, "c1")?);
        assert_eq!(store.post(a, p1.id)?.map(|p| p.comment_count), Some(0));

        let gone = store.prune_node(
            a,
            "bob@example.org",
            crate::proto::microblog::NODE,
            &["p2".into()],
        )?;
        assert_eq!(gone.len(), 2);
        assert!(
            store
                .remove_post(a, "bob@example.org", crate::proto::microblog::NODE, "p2")?
                .is_some()
        );
        assert!(store.feed(a, None, None, 10)?.is_empty());
        Ok(())
    }

    #[test]
    fn audiences_and_profiles() -> anyhow::Result<()> {
        for a in ["public", "contacts", "circle:Family"] {
            assert_eq!(
                a.parse::<Audience>().map(|x| x.to_string()),
                Ok(a.to_owned())
            );
        }
        assert!("circle:".parse::<Audience>().is_err());
        assert!("friends".parse::<Audience>().is_err());
        let store = Store::open_in_memory()?;
        let a = store.add_account(&alice())?.id;
        let (p, changed) =
            store.update_profile(a, "bob@example.org", |p| p.nick = Some("B".into()))?;
        assert!(changed && p.nick.as_deref() == Some("B"));
        assert!(
            !store
                .update_profile(a, "bob@example.org", |p| p.nick = Some("B".into()))?
                .1
        );
        let c = store.set_circle(
            a,
            "Family",
            "urn:xmpp:microblog:0:circle/x",
            &["Family".into()],
        )?;
        let again = store.set_circle(a, "Family", "other", &["Family".into(), "Kids".into()])?;
        assert_eq!((again.node, again.groups.len()), (c.node, 2));
        Ok(())
    }
}
