//! Inbound ingest benchmark: parse XML -> validate/extract (proto::inbound) -> dedup + store
//! (one SQLite transaction per message), in stanzas per second. Figures are printed, never
//! asserted. `cargo bench -p starling-core --bench ingest` runs the full size; under
//! `cargo test --all-targets` it runs a small smoke size.

use std::collections::HashMap;
use std::time::Instant;

use jid::BareJid;
use minidom::Element;
use starling_core::proto::inbound::{Context, classify};
use starling_core::store::{IncomingMessage, NewAccount, Store};
use xmpp_parsers::message::Message;

fn main() -> anyhow::Result<()> {
    let full = std::env::args().any(|a| a == "--bench");
    let n: usize = if full { 20_000 } else { 2_000 };
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
    let own = BareJid::new("alice@example.org")?;
    let open = HashMap::new();
    let rooms = HashMap::new();
    let cx = Context {
        own: &own,
        open_queries: &open,
        rooms: &rooms,
    };

    let stanzas: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "<message xmlns='jabber:client' from='bob{}@example.org/phone' to='alice@example.org/pc' \
                 type='chat' id='m{i}'><body>Message number {i} with some text to index</body>\
                 <origin-id xmlns='urn:xmpp:sid:0' id='o{i}'/>\
                 <stanza-id xmlns='urn:xmpp:sid:0' by='alice@example.org' id='a{i}'/>\
                 <request xmlns='urn:xmpp:receipts'/><active xmlns='http://jabber.org/protocol/chatstates'/>\
                 </message>",
                i % 50
            )
        })
        .collect();

    let run = |label: &str| -> anyhow::Result<()> {
        let start = Instant::now();
        let mut stored = 0usize;
        for xml in &stanzas {
            let el: Element = xml.parse()?;
            let msg = Message::try_from(el)?;
            let inb = classify(msg, &cx)?;
            if let Some(c) = inb.chat {
                let r = store.ingest(
                    acc.id,
                    &IncomingMessage {
                        peer: c.peer.to_string(),
                        outgoing: c.outgoing,
                        sender: c.sender.to_string(),
                        stanza_id: c.id,
                        origin_id: c.origin_id,
                        archive_id: c.archive_id,
                        body: c.body,
                        timestamp: 0,
                        replace: c.replace,
                        ..IncomingMessage::default()
                    },
                )?;
                if matches!(r, starling_core::store::Ingest::Inserted(_)) {
                    stored += 1;
                }
            }
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "ingest {label}: {n} stanzas in {secs:.3} s = {:.0} stanzas/s ({stored} stored)",
            n as f64 / secs
        );
        Ok(())
    };
    run("new")?;
    // The same stanzas again: every one is a duplicate (the archive replay case).
    run("duplicates")?;
    Ok(())
}
