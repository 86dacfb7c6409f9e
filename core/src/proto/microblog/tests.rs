//! XEP-0277's examples, and entries shaped like those Movim and Libervia publish.

use super::*;

fn parse(id: &str, xml: &str) -> anyhow::Result<Entry> {
    let el: Element = xml.parse()?;
    Ok(Entry::parse(Some(id), &el)?)
}

/// XEP-0277 Example 2: a post with only a title (the text), and Example 4's author.
#[test]
fn spec_title_only_post() -> anyhow::Result<()> {
    let e = parse(
        "1cb57d9c-1c46-11dd-838c-001143d5d5db",
        "<entry xmlns='http://www.w3.org/2005/Atom'>\
         <author><name>Romeo Montague</name><uri>xmpp:romeo@montague.lit</uri></author>\
         <title type='text'>hanging out at the Caf&amp;#233; Napolitano</title>\
         <link rel='alternate' type='text/html' href='http://montague.lit/romeo/posts/1'/>\
         <link rel='replies' title='comments' \
         href='xmpp:pubsub.montague.lit?;node=urn%3Axmpp%3Amicroblog%3A0%3Acomments%2F1cb57d9c'/>\
         <id>tag:montague.lit,2008-05-08:posts-1cb57d9c-1c46-11dd-838c-001143d5d5db</id>\
         <published>2008-05-08T18:30:02Z</published>\
         <updated>2008-05-08T18:30:02Z</updated></entry>",
    )?;
    assert_eq!(e.title, None, "a lone title is the text");
    assert_eq!(e.body.text, "hanging out at the Caf&#233; Napolitano");
    assert_eq!(
        e.author_jid.as_ref().map(|j| j.as_str()),
        Some("romeo@montague.lit")
    );
    assert_eq!(e.author_name.as_deref(), Some("Romeo Montague"));
    assert_eq!(e.published, Some(1_210_271_402_000));
    let c = e
        .comments
        .ok_or_else(|| anyhow::anyhow!("no comments link"))?;
    assert_eq!(c.service.as_str(), "pubsub.montague.lit");
    assert_eq!(c.node, "urn:xmpp:microblog:0:comments/1cb57d9c");
    Ok(())
}

/// Movim: a title, HTML content (escaped), tags, an image enclosure.
#[test]
fn movim_shaped_post() -> anyhow::Result<()> {
    let e = parse(
        "movim-1",
        "<entry xmlns='http://www.w3.org/2005/Atom'>\
         <title>Weekend</title>\
         <content type='html'>&lt;p&gt;We went &lt;b&gt;hiking&lt;/b&gt;&lt;script&gt;x()&lt;/script&gt;&lt;/p&gt;</content>\
         <category term='outdoor'/><category term='  '/>\
         <link rel='enclosure' type='image/jpeg' href='https://movim.example/p.jpg' length='1234'/>\
         <published>2024-03-01T10:00:00+01:00</published></entry>",
    )?;
    assert_eq!(e.title.as_deref(), Some("Weekend"));
    assert_eq!(e.body.text, "We went hiking");
    assert_eq!(e.body.markdown, "We went **hiking**");
    assert_eq!(e.tags, vec!["outdoor".to_owned()]);
    assert_eq!(e.enclosures[0].length, Some(1234));
    assert_eq!(e.published, Some(1_709_283_600_000));
    Ok(())
}

/// Libervia: XHTML content in a div, a title given as XHTML too.
#[test]
fn libervia_shaped_post() -> anyhow::Result<()> {
    let e = parse(
        "lib-1",
        "<entry xmlns='http://www.w3.org/2005/Atom'>\
         <title type='xhtml'><div xmlns='http://www.w3.org/1999/xhtml'>A <em>title</em></div></title>\
         <content type='xhtml'><div xmlns='http://www.w3.org/1999/xhtml'>\
         <p>Hello <a href='https://libervia.example/' onclick='evil()'>world</a> &amp; all</p>\
         <img src='https://libervia.example/i.png' alt='pic'/></div></content>\
         <author><uri>xmpp:goffi@libervia.example</uri></author></entry>",
    )?;
    assert_eq!(e.title.as_deref(), Some("A title"));
    assert!(
        e.body.text.starts_with("Hello world & all"),
        "{}",
        e.body.text
    );
    let html = e.body.html.clone().unwrap_or_default();
    assert!(!html.contains("onclick"), "{html}");
    assert_eq!(
        e.body.images,
        vec!["https://libervia.example/i.png".to_owned()]
    );
    assert_eq!(e.published, None);
    Ok(())
}

#[test]
fn invalid_entries_are_rejected() -> anyhow::Result<()> {
    let not_atom: Element = "<entry xmlns='urn:other'><title>x</title></entry>".parse()?;
    assert_eq!(
        Entry::parse(Some("1"), &not_atom),
        Err(EntryError::NotAnEntry)
    );
    let empty: Element =
        "<entry xmlns='http://www.w3.org/2005/Atom'><title>  </title></entry>".parse()?;
    assert_eq!(Entry::parse(Some("1"), &empty), Err(EntryError::Empty));
    let ok: Element =
        "<entry xmlns='http://www.w3.org/2005/Atom'><title>x</title></entry>".parse()?;
    assert_eq!(Entry::parse(None, &ok), Err(EntryError::NoId));
    // A bad date or author is dropped, not fatal.
    let odd = parse(
        "2",
        "<entry xmlns='http://www.w3.org/2005/Atom'><content>x</content>\
         <published>yesterday</published><author><uri>mailto:a@b</uri></author></entry>",
    )?;
    assert_eq!((odd.published, odd.author_jid), (None, None));
    Ok(())
}

#[test]
fn our_entries_round_trip() -> anyhow::Result<()> {
    let me = BareJid::new("alice@example.org")?;
    let comments = NodeRef {
        service: me.clone(),
        node: format!("{COMMENTS_PREFIX}p1"),
    };
    let draft = Draft {
        title: Some("Hi".into()),
        text: "Text with <b>no</b> markup & *stars*".into(),
        tags: vec!["news".into()],
        enclosures: vec![Enclosure {
            href: "https://up.example/f.png".into(),
            media_type: Some("image/png".into()),
            length: Some(10),
            title: None,
        }],
        in_reply_to: None,
    };
    let el = entry(
        &draft,
        &Publishing {
            author: &me,
            author_name: Some("Alice"),
            node: NODE,
            id: "p1",
            published: 1_700_000_000_000,
            updated: 1_700_000_100_000,
            comments: Some(&comments),
        },
    );
    let xml = String::from(&el);
    assert!(
        xml.contains("xmpp:alice@example.org?;node=urn%3Axmpp%3Amicroblog%3A0%3Acomments%2Fp1"),
        "{xml}"
    );
    assert!(xml.contains("tag:example.org,2023-11-14:posts-p1"), "{xml}");
    let back = Entry::parse(Some("p1"), &el)?;
    assert_eq!(back.body.text, draft.text);
    assert_eq!(back.title.as_deref(), Some("Hi"));
    assert_eq!(back.comments, Some(comments));
    assert_eq!(back.tags, draft.tags);
    assert_eq!(back.enclosures, draft.enclosures);
    assert_eq!(back.updated, Some(1_700_000_100_000));
    assert_eq!(back.author_jid, Some(me));
    Ok(())
}

#[test]
fn nodes() {
    assert!(is_posts_node(NODE) && is_posts_node(CONTACTS_NODE));
    assert!(is_posts_node(&format!("{CIRCLE_PREFIX}x")));
    assert!(!is_posts_node("urn:xmpp:microblog:0:comments/x"));
    assert_eq!(
        comments_of("urn:xmpp:microblog:0:comments/abc"),
        Some("abc")
    );
    assert_eq!(comments_of(COMMENTS_PREFIX), None);
    assert!(parse_node_uri("https://x?;node=y").is_none());
    assert!(parse_node_uri("xmpp:a@b?;item=1").is_none());
}
