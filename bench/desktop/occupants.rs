//! Figure 4, in its own process (`desktop __occupants N SINGLES REOPENS`): the occupant
//! panel of a room with N occupants, on Slint's headless backend with the software renderer
//! (window 1100x720, panel open).
//!
//! A seeded profile gets one room (through the store, as a join would leave it); the app
//! opens it, and the account is taken offline so nothing but the benchmark changes the room.
//! Then, through the same entry point the event pump uses (`adapters::apply_events`):
//!
//! - **arrival**: N `Event::Occupant` (10% moderators, 20% visitors, some away, occupant
//!   ids as a real room sends them) in batches of 500, as the pump delivers a burst, then
//!   one full frame. Timed: applying the events, the frame, and both.
//! - **one change** with N present: an occupant goes away (or comes back), then a frame;
//!   SINGLES times.
//! - **reopening** the room with N occupants known: another conversation is opened, then
//!   the room again, until the panel's model holds all rows and a frame was rendered (the
//!   model is rebuilt from the controller); REOPENS times.
//!
//! Checks: the panel's model holds N occupants plus a header per role group, the header
//! says "N participants", every frame is not blank.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use slint::{ComponentHandle as _, Model as _};
use starling::ui::{
    App, AppWindow, ChatAdapter, ConversationKind, ConversationsAdapter, RoomAdapter,
};
use starling_core::store::{IncomingMessage, MessageKind, Store};
use starling_core::{Affiliation, Client, Event, Occupant, Role, RoomState};

use crate::headless;
use crate::logs::Warnings;
use crate::seed;
use crate::stats::Summary;

const UI_TIMEOUT: Duration = Duration::from_secs(120);
/// The benchmark room.
pub const ROOM: &str = "crowd@conference.bench.invalid";
/// What the event pump delivers at most at once.
const PUMP_BATCH: usize = 500;

/// What `__occupants` reports.
#[derive(Debug, Serialize, Deserialize)]
pub struct OccupantsResult {
    pub occupants: usize,
    /// Rows in the panel's model (occupants and group headers).
    pub rows: usize,
    /// Applying the N occupant events on the UI thread.
    pub apply_ms: f64,
    /// Rendering the frame after them.
    pub frame_ms: f64,
    /// Both: from the first event to the frame showing the list.
    pub total_ms: f64,
    /// One presence change with N present, to the frame after.
    pub single_ms: Summary,
    /// Applying that one change alone (no frame).
    pub single_apply_ms: Summary,
    /// Opening the room with N occupants known, to a rendered frame.
    pub reopen_ms: Summary,
    /// A frame with the room open and nothing changing.
    pub idle_frame_ms: Summary,
    pub warnings: Vec<String>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Adds the room, and a few messages in it, to a seeded profile.
fn seed_room(dir: &Path) -> Result<()> {
    let store = Store::open(&dir.join("starling.sqlite3")).context("opening the store")?;
    let account = store.account(seed::ACCOUNT)?.id;
    store
        .want_room(account, ROOM, "me", Some("A crowded room"))
        .context("adding the room")?;
    let now = starling_core::store::now_ms();
    let msgs: Vec<IncomingMessage> = (0..30)
        .map(|i| IncomingMessage {
            peer: ROOM.into(),
            kind: MessageKind::GroupChat,
            sender: format!("{ROOM}/{}", nick(i * 31)),
            archive_id: Some(format!("room-{i}")),
            body: format!("room message {i}: how is everyone doing today?"),
            timestamp: now - (30 - i as i64) * 60_000,
            occupant_id: Some(format!("occ-{}", i * 31)),
            ..IncomingMessage::default()
        })
        .collect();
    store
        .ingest_all(account, &msgs)
        .context("storing room messages")?;
    Ok(())
}

fn nick(i: usize) -> String {
    format!("guest{i:04}")
}

/// Occupant `i` of the benchmark room: 10% moderators, 20% visitors, every 7th away.
fn occupant(i: usize, away: bool) -> Occupant {
    let role = match i % 10 {
        0 => Role::Moderator,
        1 | 2 => Role::Visitor,
        _ => Role::Participant,
    };
    Occupant {
        nick: nick(i),
        jid: Some(format!("{}@bench.invalid", nick(i))),
        role,
        affiliation: if i.is_multiple_of(10) {
            Affiliation::Admin
        } else if i.is_multiple_of(3) {
            Affiliation::Member
        } else {
            Affiliation::None
        },
        occupant_id: Some(format!("occ-{i}")),
        show: away.then(|| "away".to_owned()),
        status: i.is_multiple_of(13).then(|| "in a meeting".to_owned()),
    }
}

fn occupant_event(i: usize, away: bool) -> Event {
    Event::Occupant {
        account: seed::ACCOUNT.into(),
        room: ROOM.into(),
        occupant: occupant(i, away),
        present: true,
    }
}

pub fn child(args: &[String]) -> Result<OccupantsResult> {
    let [n, singles, reopens] = args else {
        bail!("usage: desktop __occupants N SINGLES REOPENS");
    };
    let n: usize = n.parse().context("N")?;
    let singles: usize = singles.parse().context("SINGLES")?;
    let reopens: usize = reopens.parse().context("REOPENS")?;
    let warnings = Warnings::install();
    let tmp = tempfile::tempdir().context("creating a temporary directory")?;
    seed::profile(
        tmp.path(),
        seed::Shape {
            conversations: 3,
            messages_per_conversation: 20,
            contacts: 10,
        },
    )?;
    seed_room(tmp.path())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let client = Client::open_private(tmp.path()).context("opening the profile")?;
    headless::init()?;
    let script = {
        let (client, handle) = (client.clone(), rt.handle().clone());
        async move {
            let app =
                App::new(client.clone(), handle.clone()).map_err(|e| anyhow!("App::new: {e}"))?;
            let w = app.window();
            headless::show(w)?;
            headless::until("the room in the list", UI_TIMEOUT, || {
                let items = w.global::<ConversationsAdapter<'_>>().get_items();
                (0..items.row_count())
                    .any(|i| items.row_data(i).is_some_and(|r| r.peer == ROOM))
                    .then_some(())
            })
            .await?;
            // Nothing but the benchmark changes the room from now on.
            let c = client.clone();
            handle
                .spawn(async move { c.disconnect(seed::ACCOUNT).await })
                .await
                .context("going offline")?;
            open(w, ROOM).await?;
            let joined = Event::Room {
                account: seed::ACCOUNT.into(),
                room: ROOM.into(),
                state: RoomState::Joined {
                    nick: "me".into(),
                    role: Role::Moderator,
                    affiliation: Affiliation::Owner,
                },
            };
            starling::ui::adapters::apply_events(app.ui(), w, vec![joined]);
            let panel = w.global::<RoomAdapter<'_>>();
            if !panel.get_panel_open() || !panel.get_joined() {
                bail!("the room is not shown as joined with its panel open");
            }
            let mut idle = vec![ms(headless::render_checked(w)?)];

            // Arrival of N occupants, as the pump delivers them.
            let events: Vec<Event> = (0..n)
                .map(|i| occupant_event(i, i.is_multiple_of(7)))
                .collect();
            let t0 = Instant::now();
            for batch in events.chunks(PUMP_BATCH) {
                starling::ui::adapters::apply_events(app.ui(), w, batch.to_vec());
            }
            let applied = t0.elapsed();
            let frame = headless::render_checked(w)?;
            let total = t0.elapsed();
            let rows = panel.get_occupants().row_count();
            let groups = (0..n)
                .map(|i| occupant(i, false).role)
                .collect::<std::collections::HashSet<_>>()
                .len();
            if rows != n + groups {
                bail!(
                    "the panel has {rows} rows, expected {} occupants and {groups} headers",
                    n
                );
            }
            let count = starling::ui::controllers::rooms::occupant_count(n);
            if panel.get_occupant_text() != count.as_str() {
                bail!(
                    "the header says {:?}, expected {count:?}",
                    panel.get_occupant_text()
                );
            }

            // One change at a time with N present.
            let mut single = Vec::new();
            let mut single_apply = Vec::new();
            for k in 0..singles {
                let i = (k * 97) % n.max(1);
                let ev = occupant_event(i, !i.is_multiple_of(7) && k.is_multiple_of(2));
                let t = Instant::now();
                starling::ui::adapters::apply_events(app.ui(), w, vec![ev]);
                single_apply.push(ms(t.elapsed()));
                headless::render_checked(w)?;
                single.push(ms(t.elapsed()));
                idle.push(ms(headless::render(w)?));
            }
            if panel.get_occupants().row_count() != rows {
                bail!("presence changes changed the number of rows");
            }

            // Reopening the room with N occupants known.
            let mut reopen = Vec::new();
            for _ in 0..reopens {
                open(w, &seed::peer(0)).await?;
                headless::render(w)?;
                let t = Instant::now();
                w.global::<ConversationsAdapter<'_>>()
                    .invoke_open(seed::ACCOUNT.into(), ROOM.into());
                headless::until("the room's panel", UI_TIMEOUT, || {
                    let chat = w.global::<ChatAdapter<'_>>();
                    (chat.get_peer() == ROOM
                        && !chat.get_loading()
                        && panel.get_occupants().row_count() == rows)
                        .then_some(())
                })
                .await?;
                headless::render_checked(w)?;
                reopen.push(ms(t.elapsed()));
            }
            drop(app);
            Ok(OccupantsResult {
                occupants: n,
                rows,
                apply_ms: ms(applied),
                frame_ms: ms(frame),
                total_ms: ms(total),
                single_ms: Summary::of(&single),
                single_apply_ms: Summary::of(&single_apply),
                reopen_ms: Summary::of(&reopen),
                idle_frame_ms: Summary::of(&idle),
                warnings: Vec::new(),
            })
        }
    };
    let mut result = headless::run_script(script)?;
    rt.block_on(client.disconnect_all());
    result.warnings = warnings.summary();
    Ok(result)
}

/// Opens a conversation as a click on its row would, until its messages are shown.
async fn open(w: &AppWindow, peer: &str) -> Result<()> {
    w.global::<ConversationsAdapter<'_>>()
        .invoke_open(seed::ACCOUNT.into(), peer.into());
    headless::until(&format!("{peer} to open"), UI_TIMEOUT, || {
        let chat = w.global::<ChatAdapter<'_>>();
        let room_ok = peer != ROOM || chat.get_kind() == ConversationKind::Room;
        (chat.get_peer() == peer
            && !chat.get_loading()
            && chat.get_messages().row_count() > 0
            && room_ok)
            .then_some(())
    })
    .await
}
