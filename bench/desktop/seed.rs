//! Fills a profile directory through the core store API (no server, no login): one account,
//! a roster, and conversations full of messages. Nothing here is timed.

use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;

use anyhow::{Context, Result};
use starling_core::store::{ContactRecord, IncomingMessage, NewAccount, Store, Subscription};

/// The benchmark account of a seeded profile.
pub const ACCOUNT: &str = "me@bench.invalid";
/// Messages per `ingest_all` transaction.
const BATCH: usize = 1_000;
/// Time between two messages of one conversation (so day separators show up).
const SPACING_MS: i64 = 37 * 60 * 1_000;

/// What to put into a profile.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub conversations: usize,
    pub messages_per_conversation: usize,
    /// Roster size; the first `conversations` contacts are the conversation peers.
    pub contacts: usize,
}

/// The peer of conversation `c` (also contact `c`).
pub fn peer(c: usize) -> String {
    format!("contact{c:04}@bench.invalid")
}

/// How the body of message `j` in conversation `c` starts (the rest varies in length).
pub fn body_prefix(c: usize, j: usize) -> String {
    format!("c{c:03} m{j:04}:")
}

/// A port on 127.0.0.1 that nothing listens on (bound, read, released): connecting to it
/// is refused at once.
pub fn closed_port() -> Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding a probe port")?;
    Ok(l.local_addr().context("reading the probe port")?.port())
}

/// Creates the profile in `dir` (which must not hold one yet) with `shape`. The account's
/// server is 127.0.0.1 on a closed port, so the app's connection attempt fails quickly.
pub fn profile(dir: &Path, shape: Shape) -> Result<()> {
    let store = Store::open(&dir.join("starling.sqlite3"))
        .with_context(|| format!("creating the store in {}", dir.display()))?;
    let account = store
        .add_account(&NewAccount {
            jid: ACCOUNT.into(),
            resource: "desktop-bench".into(),
            server_host: Some("127.0.0.1".into()),
            server_port: Some(closed_port()?),
            tls_mode: "starttls".into(),
            ca_file: None,
            first_sync_days: 30,
        })
        .context("adding the account")?;

    let contacts: Vec<ContactRecord> = (0..shape.contacts.max(shape.conversations))
        .map(|i| ContactRecord {
            jid: peer(i),
            name: Some(format!("Contact {i:04}")),
            subscription: Subscription::Both,
            ask: false,
            groups: vec![format!("Group {:02}", i % 20)],
        })
        .collect();
    store
        .replace_roster(account.id, &contacts, Some("bench-1"))
        .context("storing the roster")?;

    let now = starling_core::store::now_ms();
    let per = shape.messages_per_conversation;
    let mut batch = Vec::with_capacity(BATCH);
    for c in 0..shape.conversations {
        let peer = peer(c);
        // Conversations end at different times, newest first for low c.
        let end = now - (c as i64) * 60_000;
        for j in 0..per {
            let outgoing = j % 3 == 0;
            batch.push(IncomingMessage {
                peer: peer.clone(),
                outgoing,
                sender: if outgoing {
                    ACCOUNT.into()
                } else {
                    peer.clone()
                },
                stanza_id: None,
                origin_id: Some(format!("o-{c}-{j}")),
                archive_id: Some(format!("a-{c}-{j}")),
                body: body(c, j),
                timestamp: end - ((per - 1 - j) as i64) * SPACING_MS,
                ..IncomingMessage::default()
            });
            if batch.len() == BATCH {
                store
                    .ingest_all(account.id, &batch)
                    .context("storing messages")?;
                batch.clear();
            }
        }
    }
    if !batch.is_empty() {
        store
            .ingest_all(account.id, &batch)
            .context("storing messages")?;
    }
    // Half the conversations read, half with unread messages.
    for c in (0..shape.conversations).step_by(2) {
        store
            .mark_read(account.id, &peer(c))
            .context("marking a conversation read")?;
    }
    Ok(())
}

/// Bodies of varied length, some with markdown and a link, like a real chat.
fn body(c: usize, j: usize) -> String {
    let prefix = body_prefix(c, j);
    match j % 6 {
        0 => format!("{prefix} ok"),
        1 => format!("{prefix} see you at *eight* then, bring the notes"),
        2 => format!("{prefix} the build is green again: https://ci.example.org/job/{j}"),
        3 => format!(
            "{prefix} a longer message that wraps over a few lines in the timeline, because \
             people do write paragraphs now and then, with `code`, _emphasis_ and plain words \
             that go on for a while before the sentence finally ends."
        ),
        4 => format!("{prefix} 👍"),
        _ => format!("{prefix} what do you think about the plan for tomorrow?"),
    }
}
