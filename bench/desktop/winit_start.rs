//! Figure 1, in-process (`desktop __winit DIR CONVERSATIONS CONTACTS`, under Xvfb): the app
//! started the way `starling --profile DIR` starts it (`Client::open`, `App::new`, show),
//! on Slint's real winit backend with the software renderer, in a fresh process.
//!
//! A frame counts when it was drawn and presented: the winit window-event filter sees
//! `RedrawRequested` just before Slint draws, and posts a closure to the event loop that
//! runs right after the draw. Reported: the first frame, and the first frame drawn after the
//! conversation list and the roster were filled (what the user waits for).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use slint::winit_030::{EventResult, WinitWindowAccessor as _, winit};
use slint::{ComponentHandle as _, Model as _};
use starling::ui::{App, ContactsAdapter, ConversationsAdapter};
use starling_core::Client;

use crate::logs::Warnings;

const TIMEOUT: Duration = Duration::from_secs(120);

/// What `__winit` reports; times in ms from the start of `main`.
#[derive(Debug, Serialize, Deserialize)]
pub struct StartResult {
    /// The profile is open (store migrated, runtime running).
    pub client_ms: f64,
    /// `App::new` returned (window built, adapters installed).
    pub app_ms: f64,
    /// The first frame is drawn (usually before the store answered).
    pub first_frame_ms: f64,
    /// The conversation list and the roster are filled.
    pub content_ms: f64,
    /// The first frame drawn after that.
    pub content_frame_ms: f64,
    pub frames: usize,
    pub warnings: Vec<String>,
}

#[derive(Debug, Default)]
struct Marks {
    first_frame: Option<f64>,
    content: Option<f64>,
    content_frame: Option<f64>,
    frames: usize,
}

fn lock(m: &Mutex<Marks>) -> std::sync::MutexGuard<'_, Marks> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn child(args: &[String], t0: Instant) -> Result<StartResult> {
    let [dir, conversations, contacts] = args else {
        bail!("usage: desktop __winit DIR CONVERSATIONS CONTACTS");
    };
    let dir = PathBuf::from(dir);
    let conversations: usize = conversations.parse().context("CONVERSATIONS")?;
    let contacts: usize = contacts.parse().context("CONTACTS")?;
    let ms = move || t0.elapsed().as_secs_f64() * 1e3;
    let warnings = Warnings::install();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let client = Client::open(&dir).context("opening the profile")?;
    let client_ms = ms();
    let app = App::new(client.clone(), rt.handle().clone())
        .map_err(|e| anyhow!("cannot open a window (is DISPLAY set?): {e}"))?;
    let app_ms = ms();

    let marks = Arc::new(Mutex::new(Marks::default()));
    {
        let marks = marks.clone();
        app.window()
            .window()
            .on_winit_window_event(move |_, event| {
                if matches!(event, winit::event::WindowEvent::RedrawRequested) {
                    let marks = marks.clone();
                    // Runs after Slint handled this event, i.e. drew the frame.
                    let posted = slint::invoke_from_event_loop(move || {
                        let now = ms();
                        let mut m = lock(&marks);
                        m.frames += 1;
                        m.first_frame.get_or_insert(now);
                        if m.content.is_some() && m.content_frame.is_none() {
                            m.content_frame = Some(now);
                        }
                    });
                    if let Err(e) = posted {
                        eprintln!("desktop: cannot post to the event loop: {e}");
                    }
                }
                EventResult::Propagate
            });
    }
    // Polls (every 5 ms) for the content, then asks for a frame and quits once it is drawn.
    let failure = Arc::new(Mutex::new(None));
    let poll = slint::Timer::default();
    {
        let (weak, marks, failure) = (app.window().as_weak(), marks.clone(), failure.clone());
        poll.start(
            slint::TimerMode::Repeated,
            Duration::from_millis(5),
            move || {
                let Some(w) = weak.upgrade() else { return };
                let mut m = lock(&marks);
                if m.content.is_none() {
                    let convs = w
                        .global::<ConversationsAdapter<'_>>()
                        .get_items()
                        .row_count();
                    let roster = w.global::<ContactsAdapter<'_>>().get_contacts().row_count();
                    if convs == conversations && roster == contacts {
                        m.content = Some(ms());
                        w.window().request_redraw();
                    }
                }
                let done = m.first_frame.is_some() && m.content_frame.is_some();
                if !done && t0.elapsed() < TIMEOUT {
                    return;
                }
                if !done {
                    *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!(
                        "the window did not show {conversations} conversations and \
                         {contacts} contacts within {TIMEOUT:?} ({m:?})"
                    ));
                }
                if let Err(e) = slint::quit_event_loop() {
                    eprintln!("desktop: cannot quit: {e}");
                }
            },
        );
    }
    app.window()
        .show()
        .map_err(|e| anyhow!("cannot show the window: {e}"))?;
    slint::run_event_loop_until_quit().map_err(|e| anyhow!("the event loop failed: {e}"))?;
    poll.stop();
    app.window()
        .hide()
        .map_err(|e| anyhow!("cannot hide the window: {e}"))?;
    drop(app);
    rt.block_on(client.disconnect_all());
    if let Some(e) = failure.lock().unwrap_or_else(|p| p.into_inner()).take() {
        bail!(e);
    }
    let m = lock(&marks);
    Ok(StartResult {
        client_ms,
        app_ms,
        first_frame_ms: m.first_frame.unwrap_or_default(),
        content_ms: m.content.unwrap_or_default(),
        content_frame_ms: m.content_frame.unwrap_or_default(),
        frames: m.frames,
        warnings: warnings.summary(),
    })
}
