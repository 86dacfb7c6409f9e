//! Microblogging (XEP-0277) against a real Prosody with slixmpp followers: posts both ways
//! as PEP events, edits and deletions, comments, audiences enforced by the server, and
//! hostile entries.

use anyhow::{Result, ensure};
use serde_json::{Value, json};
use starling_core::store::PostRecord;
use starling_core::{Audience, Error, Event, PostDraft};

use crate::node::Node;
use crate::support::{self, EVENT_TIMEOUT, Peer, event_name};

const NODE: &str = "urn:xmpp:microblog:0";
const CONTACTS_NODE: &str = "urn:xmpp:microblog:0:contacts";

/// Waits for a post event at the peer on `node` whose entry XML contains `needle`.
async fn peer_gets_post(peer: &mut Peer, node: &str, needle: &str) -> Result<Value> {
    peer.next_event_matching(
        |e| {
            event_name(e) == "pep_event"
                && e["node"] == node
                && e["items"].as_array().is_some_and(|i| {
                    i.iter()
                        .any(|i| i["xml"].as_str().is_some_and(|x| x.contains(needle)))
                })
        },
        EVENT_TIMEOUT,
    )
    .await
}

/// Waits for a post from `author` whose text contains `needle`.
async fn node_gets_post(node: &mut Node, author: &str, needle: &str) -> Result<PostRecord> {
    node.wait_for(&format!("post '{needle}'"), |e| match e {
        Event::Post { post, .. } if post.author == author && post.text.contains(needle) => {
            Some(post.clone())
        }
        _ => None,
    })
    .await
}

fn refused_with(r: Result<Value>, condition: &str) -> bool {
    matches!(r, Err(e) if e.to_string().contains(&format!("\"condition\":\"{condition}\"")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_edits_deletions_and_comments_both_ways() -> Result<()> {
    let server = support::fresh_server()?;
    let (alice, bob) = (server.account("alice")?, server.account("bob")?);
    server.befriend(&alice.jid, &bob.jid)?;
    let mut bob_peer = server.peer(&bob).await?;
    let mut a = Node::new(&server, &alice).await?;
    a.online().await?;

    // Starling -> slixmpp: a public post arrives as a PEP event with our Atom entry.
    let mut draft = PostDraft::new("Hello from Starling <3 & friends", Audience::Public);
    draft.title = Some("First".into());
    draft.tags = vec!["intro".into()];
    let post = a.client.publish_post(&alice.jid, draft).await?;
    let ev = peer_gets_post(&mut bob_peer, NODE, "Hello from Starling").await?;
    let xml = ev["items"][0]["xml"].as_str().unwrap_or_default();
    ensure!(ev["items"][0]["id"] == json!(post.item_id), "{ev}");
    ensure!(
        xml.contains("&lt;3 &amp; friends") && xml.contains("term=\"intro\"")
            || xml.contains("term='intro'"),
        "{xml}"
    );
    ensure!(
        xml.contains("rel=\"replies\"") || xml.contains("rel='replies'"),
        "{xml}"
    );

    // slixmpp -> Starling: Movim-like (title + HTML) and Libervia-like (XHTML) posts.
    bob_peer
        .command(
            json!({"cmd": "blog_post", "id": "movim1", "title": "Weekend",
            "content": "<p>We went <b>hiking</b><script>alert(1)</script></p>",
            "content_type": "html", "tags": ["outdoor"], "comments": true}),
        )
        .await?;
    let p = node_gets_post(&mut a, &bob.jid, "We went hiking").await?;
    ensure!(
        p.title.as_deref() == Some("Weekend") && p.tags == ["outdoor"],
        "{p:?}"
    );
    ensure!(
        p.markdown.contains("**hiking**") && !p.text.contains("alert"),
        "{p:?}"
    );
    bob_peer
        .command(json!({"cmd": "blog_post", "id": "lib1",
            "content": "<p>XHTML <em>post</em> <a href='https://example.org/' onclick='x()'>link</a></p>",
            "content_type": "xhtml"}))
        .await?;
    let p = node_gets_post(&mut a, &bob.jid, "XHTML post link").await?;
    ensure!(
        !p.html.clone().unwrap_or_default().contains("onclick"),
        "{p:?}"
    );
    // A title-only post (the oldest XEP-0277 shape).
    bob_peer
        .command(json!({"cmd": "pep_publish", "node": NODE, "id": "old1",
            "xml": "<entry xmlns='http://www.w3.org/2005/Atom'><title>just a title</title></entry>"}))
        .await?;
    let p = node_gets_post(&mut a, &bob.jid, "just a title").await?;
    ensure!(p.title.is_none(), "{p:?}");

    // Edit and delete propagate to the follower.
    let edited = a
        .client
        .edit_post(&alice.jid, &post.item_id, "Hello, edited", None)
        .await?;
    ensure!(
        edited.id == post.id && edited.updated > post.updated,
        "{edited:?}"
    );
    let ev = peer_gets_post(&mut bob_peer, NODE, "Hello, edited").await?;
    ensure!(
        ev["items"][0]["id"] == json!(post.item_id),
        "same item: {ev}"
    );

    // Comments: bob comments on alice's post; alice hears of it (she follows the node).
    bob_peer
        .command(
            json!({"cmd": "blog_comment", "jid": alice.jid, "post": post.item_id,
            "content": "Nice post!"}),
        )
        .await?;
    let c = a
        .wait_for("bob's comment", |e| match e {
            Event::Comment { comment, .. } if comment.text == "Nice post!" => Some(comment.clone()),
            _ => None,
        })
        .await?;
    ensure!(
        c.author.as_deref() == Some(bob.jid.as_str()) && c.verified && c.post_id == post.id,
        "{c:?}"
    );
    ensure!(
        a.client.post(&alice.jid, post.id)?.map(|p| p.comment_count) == Some(1),
        "comment count"
    );
    // Alice comments on bob's post (its comments node allows anyone to publish).
    bob_peer
        .command(
            json!({"cmd": "pep_create", "node": "urn:xmpp:microblog:0:comments/movim1",
            "options": {"pubsub#access_model": "open", "pubsub#publish_model": "open",
                        "pubsub#max_items": "max"}}),
        )
        .await?;
    let mine = a
        .client
        .comment(&alice.jid, &bob.jid, "movim1", "Looks fun")
        .await?;
    ensure!(mine.verified, "{mine:?}");
    let seen = bob_peer
        .command(json!({"cmd": "pep_items", "jid": bob.jid, "node": "urn:xmpp:microblog:0:comments/movim1"}))
        .await?;
    ensure!(seen.to_string().contains("Looks fun"), "{seen}");
    let theirs = a
        .client
        .find_post(&alice.jid, &bob.jid, "movim1")?
        .ok_or_else(|| anyhow::anyhow!("post gone"))?;
    let listed = a.client.fetch_comments(&alice.jid, theirs.id).await?;
    ensure!(
        listed.len() == 1 && listed[0].text == "Looks fun",
        "{listed:?}"
    );

    // Delete: retracted at the follower, gone from the store.
    a.client.delete_post(&alice.jid, &post.item_id).await?;
    bob_peer
        .next_event_matching(
            |e| {
                event_name(e) == "pep_event"
                    && e["node"] == NODE
                    && e["retracted"]
                        .as_array()
                        .is_some_and(|r| r.contains(&json!(post.item_id)))
            },
            EVENT_TIMEOUT,
        )
        .await?;
    ensure!(a.client.post(&alice.jid, post.id)?.is_none());
    // A retraction by the author removes the post at Starling too.
    bob_peer
        .command(json!({"cmd": "pep_retract", "node": NODE, "id": "old1"}))
        .await?;
    a.wait_for("bob's retraction", |e| match e {
        Event::PostRemoved { post, .. } if post.item_id == "old1" => Some(()),
        _ => None,
    })
    .await?;
    // The feed (fetched fresh) has bob's remaining posts, searchable.
    let fetched = a.client.fetch_posts(&alice.jid, &bob.jid, 20).await?;
    ensure!(fetched.len() == 2, "{fetched:?}");
    ensure!(a.client.search_posts(&alice.jid, "hiking", 10)?.len() == 1);
    a.shutdown().await;
    bob_peer.quit().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audiences_are_enforced_by_the_server() -> Result<()> {
    let server = support::fresh_server()?;
    let alice = server.account("alice")?;
    let (bob, carol, dave) = (
        server.account("bob")?,
        server.account("carol")?,
        server.account("dave")?,
    );
    // Bob is in alice's Family group, carol is a contact outside it, dave a stranger.
    server.add_roster_item(&alice.jid, &bob.jid, &["Family"])?;
    server.add_roster_item(&bob.jid, &alice.jid, &[])?;
    server.befriend(&alice.jid, &carol.jid)?;
    let mut bob_peer = server.peer(&bob).await?;
    let mut carol_peer = server.peer(&carol).await?;
    let mut dave_peer = server.peer(&dave).await?;
    let mut a = Node::new(&server, &alice).await?;
    a.online().await?;

    // Contacts only: carol and bob read it, dave may not.
    let p = a
        .client
        .publish_post(
            &alice.jid,
            PostDraft::new("for my contacts", Audience::Contacts),
        )
        .await?;
    ensure!(
        p.node == CONTACTS_NODE && p.audience == Audience::Contacts,
        "{p:?}"
    );
    peer_gets_post(&mut carol_peer, CONTACTS_NODE, "for my contacts").await?;
    let read = carol_peer
        .command(json!({"cmd": "pep_items", "jid": alice.jid, "node": CONTACTS_NODE}))
        .await?;
    ensure!(read.to_string().contains("for my contacts"), "{read}");
    let stranger = dave_peer
        .command(json!({"cmd": "pep_items", "jid": alice.jid, "node": CONTACTS_NODE}))
        .await;
    ensure!(
        refused_with(stranger, "forbidden"),
        "a non-contact cannot read it"
    );

    // A circle: bob (inside) gets it live and can read it; carol (outside) cannot.
    let f = a
        .client
        .publish_post(
            &alice.jid,
            PostDraft::new("family news", Audience::Circle("Family".into())),
        )
        .await?;
    ensure!(f.node.starts_with("urn:xmpp:microblog:0:circle/") && !f.node.contains("Family"));
    peer_gets_post(&mut bob_peer, &f.node, "family news").await?;
    let inside = bob_peer
        .command(json!({"cmd": "pep_items", "jid": alice.jid, "node": f.node}))
        .await?;
    ensure!(inside.to_string().contains("family news"), "{inside}");
    for outsider in [&mut carol_peer, &mut dave_peer] {
        let r = outsider
            .command(json!({"cmd": "pep_items", "jid": alice.jid, "node": f.node}))
            .await;
        ensure!(
            refused_with(r, "forbidden"),
            "an outsider read the circle post"
        );
    }
    // Comments on a circle post are closed to outsiders too.
    let r = carol_peer
        .command(json!({"cmd": "pep_items", "jid": alice.jid,
            "node": format!("urn:xmpp:microblog:0:comments/{}", f.item_id)}))
        .await;
    ensure!(
        refused_with(r, "forbidden"),
        "outsider read circle comments"
    );

    // Moving people between groups changes who may read the circle (also its old posts).
    server.add_roster_item(&alice.jid, &carol.jid, &["Family"])?;
    server.add_roster_item(&alice.jid, &bob.jid, &[])?;
    for who in [&carol.jid, &bob.jid] {
        a.wait_for("roster push", |e| match e {
            Event::RosterItem { contact, .. } if contact.jid == *who => Some(()),
            _ => None,
        })
        .await?;
    }
    a.client.sync_audiences(&alice.jid).await?;
    let now_inside = carol_peer
        .command(json!({"cmd": "pep_items", "jid": alice.jid, "node": f.node}))
        .await?;
    ensure!(
        now_inside.to_string().contains("family news"),
        "{now_inside}"
    );
    let r = bob_peer
        .command(json!({"cmd": "pep_items", "jid": alice.jid, "node": f.node}))
        .await;
    ensure!(
        refused_with(r, "forbidden"),
        "bob left the circle but still reads it"
    );

    // A circle nobody is in is refused before anything is published.
    let empty = a
        .client
        .publish_post(
            &alice.jid,
            PostDraft::new("x", Audience::Circle("Nobody".into())),
        )
        .await;
    ensure!(matches!(empty, Err(Error::EmptyCircle(_))), "{empty:?}");

    // Never more visible than chosen: when the public node exists with another access
    // model (set by another client), a public post fails instead of going elsewhere.
    let mut alice_peer = server.peer(&alice).await?;
    alice_peer
        .command(json!({"cmd": "pep_create", "node": NODE,
            "options": {"pubsub#access_model": "whitelist", "pubsub#max_items": "max"}}))
        .await?;
    let refused = a
        .client
        .publish_post(
            &alice.jid,
            PostDraft::new("should not leak", Audience::Public),
        )
        .await;
    ensure!(
        matches!(refused, Err(Error::PublishRefused { .. })),
        "{refused:?}"
    );
    let items = alice_peer
        .command(json!({"cmd": "pep_items", "jid": alice.jid, "node": NODE}))
        .await?;
    ensure!(!items.to_string().contains("should not leak"), "{items}");
    ensure!(
        a.client
            .feed_page(&alice.jid, Some(&alice.jid), None, 10)?
            .iter()
            .all(|p| p.text != "should not leak"),
        "a refused post is not stored"
    );
    a.shutdown().await;
    for p in [bob_peer, carol_peer, dave_peer, alice_peer] {
        p.quit().await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_entries_are_cleaned_or_rejected() -> Result<()> {
    let server = support::fresh_server()?;
    let (alice, mallory, stranger) = (
        server.account("alice")?,
        server.account("mallory")?,
        server.account("stranger")?,
    );
    server.befriend(&alice.jid, &mallory.jid)?;
    let mut m = server.peer(&mallory).await?;
    let mut s = server.peer(&stranger).await?;
    let mut a = Node::new(&server, &alice).await?;
    a.online().await?;

    let bad = [
        // Scripts, handlers, styles, frames and javascript: links.
        "<entry xmlns='http://www.w3.org/2005/Atom'><content type='html'>&lt;p onmouseover='x()'&gt;evil&lt;script&gt;steal()&lt;/script&gt;&lt;iframe src='https://x.example/'&gt;&lt;/iframe&gt;&lt;a href='javascript:x()'&gt;click&lt;/a&gt;&lt;/p&gt;</content></entry>",
        // Not an Atom entry, and an entry with nothing in it.
        "<entry xmlns='urn:not-atom'><content>x</content></entry>",
        "<entry xmlns='http://www.w3.org/2005/Atom'/>",
        // Broken HTML inside the content, a date far in the future.
        "<entry xmlns='http://www.w3.org/2005/Atom'><content type='html'>&lt;b&gt;&lt;i&gt;unclosed &lt;div&gt;&lt;div&gt;</content><published>2999-01-01T00:00:00Z</published></entry>",
    ];
    m.command(json!({"cmd": "pep_create", "node": NODE,
        "options": {"pubsub#access_model": "open", "pubsub#max_items": "max"}}))
        .await?;
    for (i, xml) in bad.iter().enumerate() {
        m.command(json!({"cmd": "pep_publish", "node": NODE, "id": format!("bad{i}"), "xml": xml}))
            .await?;
    }
    // Giant content (over our 64 KiB text limit, under the server's stanza limit): cut, not
    // a crash.
    let giant = format!(
        "<entry xmlns='http://www.w3.org/2005/Atom'><content>{}</content></entry>",
        "lorem ipsum ".repeat(12_000)
    );
    m.command(json!({"cmd": "pep_publish", "node": NODE, "id": "giant", "xml": giant}))
        .await?;
    m.command(json!({"cmd": "blog_post", "id": "good", "content": "a normal post afterwards"}))
        .await?;
    node_gets_post(&mut a, &mallory.jid, "a normal post afterwards").await?;
    let posts = a
        .client
        .feed_page(&alice.jid, Some(&mallory.jid), None, 20)?;
    let ids: Vec<&str> = posts.iter().map(|p| p.item_id.as_str()).collect();
    ensure!(
        !ids.contains(&"bad1") && !ids.contains(&"bad2"),
        "invalid entries rejected: {ids:?}"
    );
    let evil = posts
        .iter()
        .find(|p| p.item_id == "bad0")
        .ok_or_else(|| anyhow::anyhow!("the cleaned post is missing: {ids:?}"))?;
    let html = evil.html.clone().unwrap_or_default();
    for banned in ["script", "onmouseover", "iframe", "javascript", "steal"] {
        ensure!(
            !html.contains(banned) && !evil.markdown.contains(banned),
            "{banned} in {evil:?}"
        );
    }
    let future = posts
        .iter()
        .find(|p| p.item_id == "bad3")
        .ok_or_else(|| anyhow::anyhow!("broken HTML post missing"))?;
    ensure!(
        future.published <= starling_core::store::now_ms() + 10 * 60 * 1000,
        "future dates are clamped: {future:?}"
    );
    let giant = posts
        .iter()
        .find(|p| p.item_id == "giant")
        .ok_or_else(|| anyhow::anyhow!("giant post missing"))?;
    ensure!(
        giant.truncated && giant.text.len() <= 70 * 1024,
        "giant post bounded"
    );

    // Someone not in the roster cannot push posts into the feed.
    s.command(json!({"cmd": "pep_subscribe", "jid": alice.jid, "node": NODE}))
        .await
        .ok();
    s.command(json!({"cmd": "blog_post", "id": "spam", "content": "buy now"}))
        .await?;
    let spam_to_alice = format!(
        "<message xmlns='jabber:client' to='{}' type='headline'><event xmlns='http://jabber.org/protocol/pubsub#event'>\
         <items node='urn:xmpp:microblog:0'><item id='spam2'><entry xmlns='http://www.w3.org/2005/Atom'>\
         <content>spam</content></entry></item></items></event></message>",
        alice.jid
    );
    s.command(json!({"cmd": "raw", "xml": spam_to_alice}))
        .await?;
    s.command(json!({"cmd": "ping"})).await?;
    m.command(json!({"cmd": "blog_post", "id": "good2", "content": "second normal post"}))
        .await?;
    node_gets_post(&mut a, &mallory.jid, "second normal post").await?;
    ensure!(
        a.client
            .feed_page(&alice.jid, Some(&stranger.jid), None, 10)?
            .is_empty(),
        "a stranger's posts are not in the feed"
    );
    a.shutdown().await;
    m.quit().await?;
    s.quit().await?;
    Ok(())
}

/// A PNG of `w`×`h` with a gradient (distinct per size).
fn png_file(dir: &std::path::Path, name: &str, w: u32, h: u32) -> Result<std::path::PathBuf> {
    let path = dir.join(name);
    let file = std::io::BufWriter::new(std::fs::File::create(&path)?);
    let mut enc = png::Encoder::new(file, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header()?;
    let data: Vec<u8> = (0..w * h)
        .flat_map(|i| [(i % 251) as u8, (i / w % 251) as u8, 128])
        .collect();
    writer.write_image_data(&data)?;
    writer.finish()?;
    Ok(path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avatars_nicknames_and_vcards_both_ways() -> Result<()> {
    use starling_core::ProfileUpdate;
    use starling_core::proto::profile::sha1_hex;

    let server = support::fresh_server()?;
    let (alice, bob, carol) = (
        server.account("alice")?,
        server.account("bob")?,
        server.account("carol")?,
    );
    server.befriend(&alice.jid, &bob.jid)?;
    server.befriend(&alice.jid, &carol.jid)?;
    let files = tempfile::tempdir()?;
    let mut bob_peer = server.peer(&bob).await?;
    let mut a = Node::new(&server, &alice).await?;
    a.online().await?;

    // slixmpp's avatar and nickname reach Starling live; the image is cached, verified.
    let bob_png = png_file(files.path(), "bob.png", 64, 48)?;
    let done = bob_peer
        .command(json!({"cmd": "avatar_publish", "file": bob_png}))
        .await?;
    let id = done["id"].as_str().unwrap_or_default().to_owned();
    bob_peer
        .command(json!({"cmd": "nick_publish", "nick": "Bobby"}))
        .await?;
    a.wait_for("bob's avatar", |e| match e {
        Event::Profile { profile, .. }
            if profile.jid == bob.jid && profile.avatar.as_deref() == Some(&id) =>
        {
            Some(())
        }
        _ => None,
    })
    .await?;
    let cached = a
        .client
        .avatar_path(&alice.jid, &bob.jid)?
        .ok_or_else(|| anyhow::anyhow!("no cached avatar"))?;
    ensure!(
        sha1_hex(&std::fs::read(&cached)?) == id,
        "cached bytes match the id"
    );
    let p = a.client.fetch_profile(&alice.jid, &bob.jid).await?;
    ensure!(
        p.nick.as_deref() == Some("Bobby") && p.avatar.as_deref() == Some(id.as_str()),
        "{p:?}"
    );

    // Ours, readable by slixmpp: a big photo is scaled, the vCard keeps name and bio.
    let ours = png_file(files.path(), "alice.png", 800, 600)?;
    let mine = a
        .client
        .set_profile(
            &alice.jid,
            ProfileUpdate {
                nick: Some("Alice A".into()),
                full_name: Some("Alice Liddell".into()),
                bio: Some("Down the rabbit hole".into()),
                url: Some("https://alice.example/".into()),
                avatar: Some(ours),
            },
        )
        .await?;
    let fetched = bob_peer
        .command(json!({"cmd": "avatar_fetch", "jid": alice.jid}))
        .await?;
    ensure!(
        fetched["sha1_ok"] == true
            && fetched["type"] == "image/png"
            && fetched["id"] == json!(mine.avatar),
        "{fetched}"
    );
    let vcard = bob_peer
        .command(json!({"cmd": "pep_items", "jid": alice.jid, "node": "urn:xmpp:vcard4"}))
        .await?;
    ensure!(
        vcard.to_string().contains("Down the rabbit hole")
            && vcard.to_string().contains("Alice Liddell"),
        "{vcard}"
    );
    let nick = bob_peer
        .command(json!({"cmd": "pep_items", "jid": alice.jid, "node": "http://jabber.org/protocol/nick"}))
        .await?;
    ensure!(nick.to_string().contains("Alice A"), "{nick}");
    // A file that is not an image changes nothing.
    let junk = files.path().join("junk.png");
    std::fs::write(&junk, b"not an image")?;
    let bad = a
        .client
        .set_profile(
            &alice.jid,
            ProfileUpdate {
                avatar: Some(junk),
                ..ProfileUpdate::default()
            },
        )
        .await;
    ensure!(matches!(bad, Err(Error::Avatar(_))), "{bad:?}");
    ensure!(
        a.client
            .profile(&alice.jid, &alice.jid)?
            .and_then(|p| p.avatar)
            == mine.avatar
    );

    // A legacy client's vCard-temp photo (XEP-0153) is found too.
    let mut carol_peer = server.peer(&carol).await?;
    let carol_png = std::fs::read(png_file(files.path(), "carol.png", 32, 32)?)?;
    let b64 = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(&carol_png)
    };
    carol_peer
        .command(json!({"cmd": "raw", "xml": format!(
            "<iq xmlns='jabber:client' type='set' id='vc1'><vCard xmlns='vcard-temp'><FN>Carol</FN>\
             <PHOTO><TYPE>image/png</TYPE><BINVAL>{b64}</BINVAL></PHOTO></vCard></iq>")}))
        .await?;
    // Her presence announces the photo (XEP-0153); Starling picks it up live.
    let hash = sha1_hex(&carol_png);
    carol_peer
        .command(json!({"cmd": "raw", "xml": format!(
            "<presence xmlns='jabber:client'><x xmlns='vcard-temp:x:update'><photo>{hash}</photo></x></presence>")}))
        .await?;
    a.wait_for("carol's photo", |e| match e {
        Event::Profile { profile, .. }
            if profile.jid == carol.jid && profile.avatar.as_deref() == Some(hash.as_str()) =>
        {
            Some(())
        }
        _ => None,
    })
    .await?;
    let p = a.client.fetch_profile(&alice.jid, &carol.jid).await?;
    ensure!(
        p.avatar.as_deref() == Some(sha1_hex(&carol_png).as_str()),
        "{p:?}"
    );
    a.shutdown().await;
    bob_peer.quit().await?;
    carol_peer.quit().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blog_and_profile_from_the_command_line() -> Result<()> {
    use crate::cli::Cli;
    let server = support::fresh_server()?;
    let (alice, bob) = (server.account("alice")?, server.account("bob")?);
    server.add_roster_item(&alice.jid, &bob.jid, &["Family"])?;
    server.add_roster_item(&bob.jid, &alice.jid, &[])?;
    let mut bob_peer = server.peer(&bob).await?;
    let cli = Cli::new(&server)?;
    cli.add_account(&alice).await?;

    let posted = cli
        .json(&[
            "blog",
            "post",
            "Hello from the CLI",
            "--title",
            "CLI",
            "--tag",
            "cli",
            "--audience",
            "circle:Family",
        ])
        .await?;
    let id = posted["item_id"].as_str().unwrap_or_default().to_owned();
    ensure!(
        posted["audience"] == "circle:Family" && !id.is_empty(),
        "{posted}"
    );
    let node = posted["node"].as_str().unwrap_or_default().to_owned();
    peer_gets_post(&mut bob_peer, &node, "Hello from the CLI").await?;
    let bad = cli
        .fail(&["blog", "post", "x", "--audience", "friends"], None)
        .await?;
    ensure!(bad.contains("public, contacts or circle:GROUP"), "{bad}");

    // Bob comments; the CLI lists the comment under alice's post.
    bob_peer
        .command(
            json!({"cmd": "blog_comment", "jid": alice.jid, "post": id, "content": "from bob"}),
        )
        .await?;
    let comments = cli.json(&["blog", "comments", &alice.jid, &id]).await?;
    ensure!(comments.to_string().contains("from bob"), "{comments}");
    cli.run(&["blog", "edit", &id, "Edited from the CLI"])
        .await?;
    peer_gets_post(&mut bob_peer, &node, "Edited from the CLI").await?;
    let list = cli.json(&["blog", "list", &alice.jid]).await?;
    ensure!(
        list[0]["text"] == "Edited from the CLI" && list[0]["comment_count"] == 1,
        "{list}"
    );
    cli.run(&["blog", "delete", &id]).await?;
    let list = cli.json(&["blog", "list", "--offline"]).await?;
    ensure!(list.as_array().is_some_and(|l| l.is_empty()), "{list}");

    // Profile: set a nickname and bio; show it (and bob's) as JSON.
    cli.run(&["profile", "set", "--nick", "Ally", "--bio", "CLI user"])
        .await?;
    let me = cli.json(&["profile", "show"]).await?;
    ensure!(me["nick"] == "Ally" && me["bio"] == "CLI user", "{me}");
    bob_peer
        .command(json!({"cmd": "nick_publish", "nick": "Bobby"}))
        .await?;
    let them = cli.json(&["profile", "show", &bob.jid]).await?;
    ensure!(them["nick"] == "Bobby", "{them}");
    bob_peer.quit().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starling_followers_find_circle_posts_without_setup() -> Result<()> {
    let server = support::fresh_server()?;
    let (alice, bob) = (server.account("alice")?, server.account("bob")?);
    server.add_roster_item(&alice.jid, &bob.jid, &["Family"])?;
    server.add_roster_item(&bob.jid, &alice.jid, &[])?;
    let mut a = Node::new(&server, &alice).await?;
    a.online().await?;
    let mut b = Node::new(&server, &bob).await?;
    b.online().await?;

    // Live: the post reaches bob's Starling as it is published.
    let post = a
        .client
        .publish_post(
            &alice.jid,
            PostDraft::new("circle hello", Audience::Circle("Family".into())),
        )
        .await?;
    let got = node_gets_post(&mut b, &alice.jid, "circle hello").await?;
    ensure!(
        got.item_id == post.item_id && got.node == post.node,
        "{got:?}"
    );
    ensure!(matches!(got.audience, Audience::Circle(_)), "{got:?}");
    b.shutdown().await;

    // Later, on a new device: a feed refresh finds the circle node by itself.
    let mut fresh = Node::new(&server, &bob).await?;
    fresh.online().await?;
    fresh.client.refresh_feed(&bob.jid).await?;
    let feed = fresh
        .client
        .feed_page(&bob.jid, Some(&alice.jid), None, 10)?;
    ensure!(feed.iter().any(|p| p.item_id == post.item_id), "{feed:?}");
    a.shutdown().await;
    fresh.shutdown().await;
    Ok(())
}
