//! Figure 3, in its own process (`desktop __rss DIR CONVERSATIONS PER_CONVERSATION`): the
//! app on Slint's headless backend (software renderer) on a seeded profile (see `seed`).
//! Once the conversation list shows, every conversation is opened in turn as a click on its
//! row would, until its newest messages are in the timeline and a frame was rendered; VmRSS
//! is read before, during and after, and after a second round over all of them (growth in
//! the second round would be a leak). The account's server refuses connections, so nothing
//! here touches a network.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};
use slint::{ComponentHandle as _, Model as _};
use starling::ui::{App, AppWindow, ChatAdapter, ConversationsAdapter};
use starling_core::Client;

use crate::headless;
use crate::logs::Warnings;
use crate::seed;
use crate::stats::Summary;

const UI_TIMEOUT: Duration = Duration::from_secs(120);

/// What `__rss` reports.
#[derive(Debug, Serialize, Deserialize)]
pub struct RssResult {
    pub conversations: usize,
    /// The window shows the conversation list, nothing opened yet.
    pub before_kib: u64,
    /// After opening every conversation once.
    pub after_kib: u64,
    /// After opening every conversation a second time.
    pub second_pass_kib: u64,
    pub peak_kib: u64,
    /// RSS after the 1st, 10th, 25th, 50th... conversation of the first pass.
    pub steps: Vec<(usize, u64)>,
    /// From `open` to the conversation's newest messages in the model, plus one frame.
    pub open_ms: Summary,
    /// Rendering that frame alone (a full frame with an open conversation, nothing else
    /// going on).
    pub frame_ms: Summary,
    pub warnings: Vec<String>,
}

fn args3(args: &[String], usage: &str) -> Result<(PathBuf, usize, usize)> {
    let [dir, a, b] = args else {
        return Err(anyhow!("usage: desktop {usage}"));
    };
    Ok((
        PathBuf::from(dir),
        a.parse().with_context(|| format!("bad number {a:?}"))?,
        b.parse().with_context(|| format!("bad number {b:?}"))?,
    ))
}

fn ms_since(t0: Instant) -> f64 {
    t0.elapsed().as_secs_f64() * 1e3
}

pub fn rss_child(args: &[String]) -> Result<RssResult> {
    let (dir, conversations, per) = args3(args, "__rss DIR CONVERSATIONS PER_CONVERSATION")?;
    let warnings = Warnings::install();
    let rt = runtime()?;
    let client = Client::open_private(&dir).context("opening the profile")?;
    headless::init()?;
    let script = {
        let (client, handle) = (client.clone(), rt.handle().clone());
        async move {
            let app = App::new(client, handle).map_err(|e| anyhow!("App::new: {e}"))?;
            let w = app.window();
            headless::show(w)?;
            headless::until("the conversation list", UI_TIMEOUT, || {
                let convs = w
                    .global::<ConversationsAdapter<'_>>()
                    .get_items()
                    .row_count();
                (convs == conversations).then_some(())
            })
            .await?;
            headless::render_checked(w)?;
            let (before, _) = headless::memory_kib()?;
            let mut steps = Vec::new();
            let mut open_ms = Vec::new();
            let mut frame_ms = Vec::new();
            let mut after = 0;
            for pass in 0..2 {
                for c in 0..conversations {
                    let (total, frame) = open(w, c, per).await?;
                    open_ms.push(total);
                    frame_ms.push(frame);
                    if pass == 0 && [1, 10, 25, 50, 75].contains(&(c + 1)) {
                        steps.push((c + 1, headless::memory_kib()?.0));
                    }
                }
                if pass == 0 {
                    after = headless::memory_kib()?.0;
                }
            }
            headless::render_checked(w)?;
            let (second, peak) = headless::memory_kib()?;
            drop(app);
            Ok(RssResult {
                conversations,
                before_kib: before,
                after_kib: after,
                second_pass_kib: second,
                peak_kib: peak,
                steps,
                open_ms: Summary::of(&open_ms),
                frame_ms: Summary::of(&frame_ms),
                warnings: Vec::new(),
            })
        }
    };
    let mut result = headless::run_script(script)?;
    rt.block_on(client.disconnect_all());
    result.warnings = warnings.summary();
    Ok(result)
}

/// Opens conversation `c` as a click on its row would, waits until the timeline holds its
/// newest messages, and renders a frame. Returns the milliseconds all that took, and those
/// the frame took.
async fn open(w: &AppWindow, c: usize, per: usize) -> Result<(f64, f64)> {
    let started = Instant::now();
    let peer = seed::peer(c);
    w.global::<ConversationsAdapter<'_>>()
        .invoke_open(seed::ACCOUNT.into(), peer.as_str().into());
    let newest = seed::body_prefix(c, per - 1);
    headless::until(&format!("conversation {peer} to show"), UI_TIMEOUT, || {
        let g = w.global::<ChatAdapter<'_>>();
        let rows = g.get_messages();
        let last = rows
            .row_count()
            .checked_sub(1)
            .and_then(|i| rows.row_data(i));
        (g.get_peer() == peer.as_str()
            && !g.get_loading()
            && last.is_some_and(|r| r.text.starts_with(&newest)))
        .then_some(())
    })
    .await?;
    let frame = headless::render(w)?;
    Ok((ms_since(started), frame.as_secs_f64() * 1e3))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}
