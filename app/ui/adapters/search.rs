//! `SearchAdapter`: full-text search over all conversations of all accounts.

use std::rc::Rc;

use slint::ComponentHandle as _;

use super::{model, s};
use crate::ui::controllers::{format, rooms, status::thousands};
use crate::ui::{AppWindow, SearchAdapter, SearchHit, Ui, blocking};

const LIMIT: u32 = 200;

pub(super) fn install(ui: &Rc<Ui>, w: &AppWindow) {
    let g = w.global::<SearchAdapter>();
    let u = ui.clone();
    g.on_search(move |text| {
        let text = text.trim().to_owned();
        let Some(w) = u.window.upgrade() else { return };
        if text.is_empty() {
            w.global::<SearchAdapter>().set_hits(model(Vec::new()));
            w.global::<SearchAdapter>().set_summary(Default::default());
            return;
        }
        w.global::<SearchAdapter>().set_summary(s("Searching…"));
        let accounts = super::account_jids(&u);
        let query = text.clone();
        blocking(
            &u,
            move |client| {
                let mut hits = Vec::new();
                for a in accounts {
                    match client.search(&a, &query, LIMIT) {
                        Ok(found) => hits.extend(found.into_iter().map(|m| (a.clone(), m))),
                        Err(e) => tracing::warn!(error = %e, "search failed"),
                    }
                }
                hits.sort_by_key(|h| std::cmp::Reverse(h.1.timestamp));
                hits.truncate(LIMIT as usize);
                hits
            },
            move |ui, w, hits| show(ui, w, &text, hits),
        );
    });
    let u = ui.clone();
    g.on_open_hit(move |i| {
        let Some(w) = u.window.upgrade() else { return };
        let hit = usize::try_from(i)
            .ok()
            .and_then(|i| u.state.borrow().hits.get(i).cloned());
        if let Some((account, message)) = hit {
            super::chat::open_at(&u, &w, &account, message);
        }
    });
}

/// Who a hit is from: the contact, "room · nick" in a room, "nick (room)" in private.
fn hit_name(st: &super::State, account: &str, m: &starling_core::store::MessageRecord) -> String {
    use starling_core::store::MessageKind;
    match m.kind {
        MessageKind::GroupChat | MessageKind::Notice => {
            let room = st.rooms.name_of(account, &m.peer);
            match rooms::nick_of(&m.sender) {
                "" => room,
                nick if m.outgoing => format!("{room} · {nick} (you)"),
                nick => format!("{room} · {nick}"),
            }
        }
        MessageKind::Private => match rooms::split_occupant(&m.peer) {
            Some((room, nick)) => format!("{nick} ({})", st.rooms.name_of(account, room)),
            None => m.peer.clone(),
        },
        MessageKind::Chat => st.people.name_of(account, &m.peer),
    }
}

fn show(
    ui: &Rc<Ui>,
    w: &AppWindow,
    query: &str,
    hits: Vec<(String, starling_core::store::MessageRecord)>,
) {
    let today = chrono::Local::now().date_naive();
    let st = ui.state.borrow();
    let items: Vec<SearchHit> = hits
        .iter()
        .map(|(a, m)| SearchHit {
            account: s(a),
            peer: s(&m.peer),
            name: s(hit_name(&st, a, m)),
            text: s(m.body.chars().take(300).collect::<String>()),
            time: s(format::list_time(&format::local(m.timestamp), today)),
            message_id: i32::try_from(m.id).unwrap_or(i32::MAX),
        })
        .collect();
    let summary = match hits.len() {
        0 => format!("No message contains “{query}”."),
        1 => "1 message".to_owned(),
        n if n >= LIMIT as usize => format!("The newest {} messages", thousands(n as u64)),
        n => format!("{} messages", thousands(n as u64)),
    };
    drop(st);
    ui.state.borrow_mut().hits = hits;
    let g = w.global::<SearchAdapter>();
    g.set_hits(model(items));
    g.set_summary(s(summary));
}
