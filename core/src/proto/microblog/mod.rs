//! XEP-0277: Microblogging over XMPP (v0.6.5): posts and comments are Atom entries
//! (RFC 4287) published to PEP nodes.
//!
//! Reading is lenient, as other clients publish different shapes (Movim: HTML content and a
//! title; Libervia: XHTML; older clients: the text in `<title/>` and no content), but
//! everything is cleaned ([`html`]) and bounded. Writing follows the XEP: text content, an
//! `xmpp:` author URI, a `replies` link to the comments node, RFC 3339 dates.

pub mod html;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use jid::BareJid;
use minidom::Element;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

pub use html::Rich;

use super::n;

/// The microblog node (XEP-0277 §2.1): public posts.
pub const NODE: &str = "urn:xmpp:microblog:0";
/// Comments on post ID live in the node `COMMENTS_PREFIX + ID` (XEP-0277 §3).
pub const COMMENTS_PREFIX: &str = "urn:xmpp:microblog:0:comments/";
/// Starling's node for posts only contacts may read (access model `presence`).
pub const CONTACTS_NODE: &str = "urn:xmpp:microblog:0:contacts";
/// Starling's nodes for posts to a circle (access `whitelist` or `roster`).
pub const CIRCLE_PREFIX: &str = "urn:xmpp:microblog:0:circle/";
/// XEP-0163 notification filter.
pub const NOTIFY: &str = "urn:xmpp:microblog:0+notify";
pub const ATOM: &str = "http://www.w3.org/2005/Atom";
const XHTML: &str = "http://www.w3.org/1999/xhtml";
/// RFC 4685: Atom threading (`in-reply-to`).
const THREAD: &str = "http://purl.org/syndication/thread/1.0";

/// Longest title kept, in bytes.
const MAX_TITLE: usize = 1024;
/// Most tags and enclosures kept per entry.
const MAX_LIST: usize = 32;

/// Whether `node` holds posts (the public node, the contacts node or a circle node).
pub fn is_posts_node(node: &str) -> bool {
    node == NODE || node == CONTACTS_NODE || node.starts_with(CIRCLE_PREFIX)
}

/// The post id whose comments `node` holds.
pub fn comments_of(node: &str) -> Option<&str> {
    node.strip_prefix(COMMENTS_PREFIX)
        .filter(|id| !id.is_empty())
}

/// Why an entry was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("not an Atom entry")]
    NotAnEntry,
    #[error("the entry has neither content nor a title")]
    Empty,
    #[error("the item has no id")]
    NoId,
}

/// A pubsub node, as an `xmpp:` URI names it (`xmpp:service?;node=NODE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRef {
    pub service: BareJid,
    pub node: String,
}

/// An attachment (`<link rel='enclosure'/>`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Enclosure {
    pub href: String,
    pub media_type: Option<String>,
    pub length: Option<u64>,
    pub title: Option<String>,
}

/// A post or comment as read from the network, cleaned.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The pubsub item id.
    pub id: String,
    pub atom_id: Option<String>,
    /// Plain-text title, when the entry has content besides it.
    pub title: Option<String>,
    pub body: Rich,
    /// Milliseconds since the epoch.
    pub published: Option<i64>,
    pub updated: Option<i64>,
    pub author_name: Option<String>,
    /// The author's JID as the entry claims it (check it against the publisher).
    pub author_jid: Option<BareJid>,
    pub tags: Vec<String>,
    pub comments: Option<NodeRef>,
    pub enclosures: Vec<Enclosure>,
    /// RFC 4685 `in-reply-to` ref.
    pub in_reply_to: Option<String>,
}

const URI_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `xmpp:service?;node=NODE[;item=ID]` (RFC 5122, XEP-0060 §12.22).
pub fn node_uri(service: &BareJid, node: &str, item: Option<&str>) -> String {
    let mut uri = format!(
        "xmpp:{}?;node={}",
        service,
        utf8_percent_encode(node, URI_SET)
    );
    if let Some(item) = item {
        uri.push_str(";item=");
        uri.push_str(&utf8_percent_encode(item, URI_SET).to_string());
    }
    uri
}

/// Reads an `xmpp:` URI naming a node.
pub fn parse_node_uri(uri: &str) -> Option<NodeRef> {
    let rest = uri.strip_prefix("xmpp:")?;
    let (service, query) = rest.split_once('?')?;
    let service = percent_decode_str(service.trim_start_matches("//"))
        .decode_utf8()
        .ok()?;
    let service = BareJid::new(&service).ok()?;
    let node = query
        .split(';')
        .find_map(|kv| kv.strip_prefix("node="))
        .and_then(|n| percent_decode_str(n).decode_utf8().ok())?
        .into_owned();
    (!node.is_empty()).then_some(NodeRef { service, node })
}

fn parse_time(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.timestamp_millis())
}

fn text_of(el: &Element) -> String {
    let t = el.text();
    html::cut(&t, html::MAX_INPUT).0.to_owned()
}

/// Reads an Atom text construct (`type` text, html or xhtml).
fn read_text(el: &Element) -> Rich {
    match el.attr("type").unwrap_or("text") {
        "html" => html::from_html(&text_of(el)),
        "xhtml" => match el.get_child("div", XHTML) {
            Some(div) => html::from_html(&xhtml_inner(div)),
            None => html::from_text(&text_of(el)),
        },
        _ => html::from_text(&text_of(el)),
    }
}

/// Serialises an XHTML element's children as HTML for the cleaner.
fn xhtml_inner(div: &Element) -> String {
    let mut out = String::new();
    for node in div.nodes() {
        if out.len() > html::MAX_INPUT {
            break;
        }
        match node {
            minidom::Node::Element(e) => out.push_str(&String::from(e)),
            minidom::Node::Text(t) => out.push_str(
                &t.replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;"),
            ),
        }
    }
    out
}

fn one_line(s: &str, max: usize) -> Option<String> {
    let s: String = s
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    let s = html::cut(&s, max).0.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

impl Entry {
    /// Reads an item's payload. `id` is the pubsub item id.
    pub fn parse(id: Option<&str>, el: &Element) -> Result<Entry, EntryError> {
        if !el.is("entry", ATOM) {
            return Err(EntryError::NotAnEntry);
        }
        let id = id
            .filter(|i| !i.is_empty())
            .ok_or(EntryError::NoId)?
            .to_owned();
        let child = |name: &str| el.get_child(name, ATOM);
        let title = child("title").map(read_text);
        let content = child("content").map(read_text);
        let (title, body) = match (title, content) {
            (t, Some(c)) if !c.text.is_empty() => (t.and_then(|t| one_line(&t.text, MAX_TITLE)), c),
            (Some(t), _) if !t.text.is_empty() => (None, t),
            _ => return Err(EntryError::Empty),
        };
        let author = child("author");
        let author_child = |name: &str| {
            author
                .and_then(|a| a.get_child(name, ATOM))
                .map(|e| e.text())
        };
        let author_jid = author_child("uri")
            .and_then(|u| u.trim().strip_prefix("xmpp:").map(str::to_owned))
            .and_then(|j| BareJid::new(j.split('?').next().unwrap_or_default()).ok());
        let mut comments = None;
        let mut enclosures = Vec::new();
        for link in el.children().filter(|c| c.is("link", ATOM)) {
            let Some(href) = link.attr("href").map(str::trim) else {
                continue;
            };
            match link.attr("rel") {
                Some("replies") if comments.is_none() => comments = parse_node_uri(href),
                Some("enclosure") if enclosures.len() < MAX_LIST => enclosures.push(Enclosure {
                    href: href.to_owned(),
                    media_type: link.attr("type").map(str::to_owned),
                    length: link.attr("length").and_then(|l| l.parse().ok()),
                    title: link.attr("title").and_then(|t| one_line(t, MAX_TITLE)),
                }),
                _ => {}
            }
        }
        let tags = el
            .children()
            .filter(|c| c.is("category", ATOM))
            .filter_map(|c| c.attr("term").and_then(|t| one_line(t, 128)))
            .take(MAX_LIST)
            .collect();
        Ok(Entry {
            id,
            atom_id: child("id").and_then(|i| one_line(&i.text(), MAX_TITLE)),
            title,
            body,
            published: child("published").and_then(|p| parse_time(&p.text())),
            updated: child("updated").and_then(|p| parse_time(&p.text())),
            author_name: author_child("name").and_then(|n| one_line(&n, 256)),
            author_jid,
            tags,
            comments,
            enclosures,
            in_reply_to: el
                .get_child("in-reply-to", THREAD)
                .and_then(|r| r.attr("ref"))
                .map(str::to_owned),
        })
    }
}

/// What we publish: a post or a comment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Draft {
    pub title: Option<String>,
    pub text: String,
    pub tags: Vec<String>,
    pub enclosures: Vec<Enclosure>,
    /// The post a comment answers (its atom id), RFC 4685.
    pub in_reply_to: Option<String>,
}

fn rfc3339(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Who publishes, and where.
#[derive(Debug, Clone)]
pub struct Publishing<'a> {
    pub author: &'a BareJid,
    pub author_name: Option<&'a str>,
    /// The node the entry goes to.
    pub node: &'a str,
    pub id: &'a str,
    pub published: i64,
    pub updated: i64,
    /// Where comments go (`None` for comments themselves).
    pub comments: Option<&'a NodeRef>,
}

/// The Atom id of an entry: an RFC 4151 tag URI.
pub fn atom_id(author: &BareJid, published: i64, id: &str) -> String {
    let day = Utc
        .timestamp_millis_opt(published)
        .single()
        .unwrap_or_default()
        .format("%Y-%m-%d");
    format!("tag:{},{day}:posts-{id}", author.domain())
}

fn atom(name: &str) -> minidom::ElementBuilder {
    Element::builder(name, ATOM)
}

/// Builds the Atom entry for a draft.
pub fn entry(draft: &Draft, p: &Publishing<'_>) -> Element {
    let mut e = atom("entry").build();
    if let Some(t) = draft.title.as_deref().filter(|t| !t.trim().is_empty()) {
        e.append_child(atom("title").attr(n!("type"), "text").append(t).build());
    }
    e.append_child(
        atom("content")
            .attr(n!("type"), "text")
            .append(draft.text.as_str())
            .build(),
    );
    let mut author = atom("author").build();
    if let Some(name) = p.author_name.filter(|n| !n.is_empty()) {
        author.append_child(atom("name").append(name).build());
    }
    author.append_child(atom("uri").append(format!("xmpp:{}", p.author)).build());
    e.append_child(author);
    e.append_child(
        atom("id")
            .append(atom_id(p.author, p.published, p.id))
            .build(),
    );
    e.append_child(atom("published").append(rfc3339(p.published)).build());
    e.append_child(atom("updated").append(rfc3339(p.updated)).build());
    e.append_child(
        atom("link")
            .attr(n!("rel"), "alternate")
            .attr(n!("href"), node_uri(p.author, p.node, Some(p.id)))
            .build(),
    );
    if let Some(c) = p.comments {
        e.append_child(
            atom("link")
                .attr(n!("rel"), "replies")
                .attr(n!("title"), "comments")
                .attr(n!("href"), node_uri(&c.service, &c.node, None))
                .build(),
        );
    }
    for tag in &draft.tags {
        e.append_child(atom("category").attr(n!("term"), tag.as_str()).build());
    }
    for enc in &draft.enclosures {
        e.append_child(
            atom("link")
                .attr(n!("rel"), "enclosure")
                .attr(n!("href"), enc.href.as_str())
                .attr(n!("type"), enc.media_type.as_deref())
                .attr(n!("length"), enc.length.map(|l| l.to_string()))
                .attr(n!("title"), enc.title.as_deref())
                .build(),
        );
    }
    if let Some(r) = &draft.in_reply_to {
        e.append_child(
            Element::builder("in-reply-to", THREAD)
                .attr(n!("ref"), r.as_str())
                .build(),
        );
    }
    e
}

#[cfg(test)]
mod tests;
