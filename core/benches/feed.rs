//! Feed benchmark (XEP-0277): ingest of incoming post notifications through the inbound
//! pipeline (parse -> proto::inbound -> pubsub event -> trust check -> clean -> store), and
//! reading the feed's first page from a store of 5,000 posts by 200 contacts. Figures are
//! printed, never asserted. `cargo bench -p starling-core --bench feed` runs the full size;
//! under `cargo test --all-targets` it runs a small smoke size.

use std::collections::HashMap;
use std::time::Instant;

use jid::BareJid;
use minidom::Element;
use starling_core::proto::inbound::{Context, classify};
use starling_core::proto::pubsub::parse_event;
use starling_core::services::microblog::apply_notification;
use starling_core::store::{ContactRecord, NewAccount, Store, Subscription};
use xmpp_parsers::message::Message;

const CONTACTS: usize = 200;

fn event(i: usize) -> String {
    format!(
        "<message xmlns='jabber:client' from='friend{c}@example.org' to='alice@example.org/pc' \
         type='headline' id='e{i}'><event xmlns='http://jabber.org/protocol/pubsub#event'>\
         <items node='urn:xmpp:microblog:0'><item id='post{i}' publisher='friend{c}@example.org'>\
         <entry xmlns='http://www.w3.org/2005/Atom'><title>Post {i}</title>\
         <content type='html'>&lt;p&gt;Post number {i} with &lt;b&gt;some&lt;/b&gt; text, a \
         &lt;a href='https://example.org/{i}'&gt;link&lt;/a&gt; and words to index.&lt;/p&gt;</content>\
         <author><name>Friend {c}</name><uri>xmpp:friend{c}@example.org</uri></author>\
         <published>2026-01-01T00:00:00Z</published><category term='bench'/>\
         <link rel='replies' href='xmpp:friend{c}@example.org?;node=urn%3Axmpp%3Amicroblog%3A0%3Acomments%2Fpost{i}'/>\
         </entry></item></items></event></message>",
        c = i % CONTACTS
    )
}

fn main() -> anyhow::Result<()> {
    let full = std::env::args().any(|a| a == "--bench");
    let (posts, events) = if full { (5_000, 1_000) } else { (500, 100) };
    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().join("bench.sqlite3"))?;
    let acc = store.add_account(&NewAccount {
        jid: "alice@example.org".into(),
        resource: "bench".into(),
        server_host: None,
        server_port: None,
        tls_mode: "auto".into(),
        ca_file: None,
        first_sync_days: 30,
    })?;
    let contacts: Vec<ContactRecord> = (0..CONTACTS)
        .map(|c| ContactRecord {
            jid: format!("friend{c}@example.org"),
            name: None,
            subscription: Subscription::Both,
            ask: false,
            groups: Vec::new(),
        })
        .collect();
    store.replace_roster(acc.id, &contacts, None)?;
    let own = BareJid::new("alice@example.org")?;
    let (open, rooms) = (HashMap::new(), HashMap::new());
    let cx = Context {
        own: &own,
        open_queries: &open,
        rooms: &rooms,
    };

    let ingest = |range: std::ops::Range<usize>, label: &str| -> anyhow::Result<()> {
        let stanzas: Vec<String> = range.clone().map(event).collect();
        let start = Instant::now();
        let mut stored = 0;
        for xml in &stanzas {
            let msg = Message::try_from(xml.parse::<Element>()?)?;
            let inb = classify(msg, &cx)?;
            let Some((from, ev)) = inb.pep_event else {
                anyhow::bail!("not a PEP event");
            };
            let Some(n) = parse_event(&ev) else {
                anyhow::bail!("not a notification");
            };
            stored += apply_notification(&store, acc.id, &own, &from, &n)?.len();
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "feed ingest {label}: {} post events in {secs:.3} s = {:.0} events/s ({stored} stored)",
            stanzas.len(),
            stanzas.len() as f64 / secs
        );
        Ok(())
    };
    ingest(0..posts, "fill")?;
    ingest(posts..posts + events, "incoming")?;

    let mut times = Vec::new();
    for _ in 0..21 {
        let start = Instant::now();
        let page = store.feed(acc.id, None, None, 50)?;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(page.len() == 50, "first page has {} posts", page.len());
    }
    times.sort_by(f64::total_cmp);
    let mut older = Vec::new();
    let oldest = store.feed(acc.id, None, None, 50)?;
    let last = oldest.last().map(|p| (p.published, p.id));
    for _ in 0..21 {
        let start = Instant::now();
        store.feed(acc.id, None, last, 50)?;
        older.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    older.sort_by(f64::total_cmp);
    println!(
        "feed first page (50 of {} posts, {CONTACTS} authors): median {:.2} ms, max {:.2} ms; \
         next page median {:.2} ms",
        posts + events,
        times[10],
        times[20],
        older[10]
    );
    Ok(())
}
