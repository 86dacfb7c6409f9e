//! Opening the desktop window: for the user's profile (`starling`) or the demo
//! (`starling demo`). Also the hooks the screenshot test and the start-up benchmark use.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use slint::{ComponentHandle as _, Model as _};
use starling_core::Client;
use tokio::runtime::Runtime;

use crate::ui::{App, ChatAdapter, ConversationsAdapter};

/// What to do once the window shows.
#[derive(Debug, Default)]
pub struct WindowOptions {
    /// Open this conversation (account, peer) at start.
    pub open: Option<(String, String)>,
    /// Write a PNG of the window once at least `min_conversations` are listed and the open
    /// conversation shows messages, then exit.
    pub screenshot: Option<PathBuf>,
    pub min_conversations: usize,
    /// ... and the open conversation shows at least this many messages.
    pub min_messages: usize,
}

/// Opens the window for the profile in `dir` and runs until it is closed. `uri` is an
/// `xmpp:` URI (RFC 5122) whose conversation opens with the first account.
pub fn run_profile(rt: &Runtime, dir: &Path, uri: Option<&str>) -> Result<()> {
    let client = Client::open(dir).with_context(|| format!("opening profile {}", dir.display()))?;
    let mut opts = WindowOptions::default();
    if let Some(uri) = uri {
        let jid = parse_xmpp_uri(uri)?;
        // Read before the window exists: the UI thread itself never touches the store.
        if let Some(account) = client.accounts()?.first() {
            opts.open = Some((account.jid.clone(), jid));
        }
    }
    run(rt, client, opts)
}

/// The JID of an `xmpp:` URI (`xmpp:bob@example.org?message`); query and fragment ignored.
pub fn parse_xmpp_uri(uri: &str) -> Result<String> {
    let rest = uri
        .strip_prefix("xmpp:")
        .ok_or_else(|| anyhow!("{uri} is not an xmpp: address"))?;
    // xmpp://auth@host/jid: the part after the authority.
    let rest = match rest.strip_prefix("//") {
        Some(r) => r.split_once('/').map_or("", |x| x.1),
        None => rest,
    };
    let jid = rest.split(['?', '#']).next().unwrap_or_default();
    let bare = starling_core::parse_contact(&percent_decode(jid))?;
    Ok(bare.to_string())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Opens the window on `client` and runs the event loop until the window is closed; then
/// goes offline cleanly.
pub fn run(rt: &Runtime, client: Client, opts: WindowOptions) -> Result<()> {
    let started = Instant::now();
    let app = App::new(client.clone(), rt.handle().clone()).map_err(|e| {
        anyhow!(
            "cannot open a window: {e}. Starling needs a graphical session (X11 or Wayland); \
             without one, use the command line (starling --help)"
        )
    })?;
    if let Some((account, peer)) = &opts.open {
        crate::ui::adapters::open_conversation(app.ui(), app.window(), account, peer);
    }
    // Developer hook (screenshots of other panes): chats, contacts, search or settings.
    if let Ok(pane) = std::env::var("STARLING_START_PANE") {
        use crate::ui::{Pane, Shell};
        let pane = match pane.as_str() {
            "contacts" => Pane::Contacts,
            "feed" => Pane::Feed,
            "search" => Pane::Search,
            "settings" => Pane::Settings,
            _ => Pane::Chats,
        };
        app.window().global::<Shell<'_>>().set_pane(pane);
    }
    if std::env::var_os("STARLING_EXIT_AFTER_FIRST_FRAME").is_some() {
        exit_after_first_frame(&app, started)?;
    } else {
        accept_dropped_files(&app);
    }
    let failure = Rc::new(RefCell::new(None));
    let _keep = opts.screenshot.as_ref().map(|path| {
        screenshot_when_ready(
            &app,
            path.clone(),
            (opts.min_conversations, opts.min_messages),
            failure.clone(),
        )
    });
    // Ctrl+C or SIGTERM close the window like its close button: the accounts go offline
    // cleanly and `starling demo` stops its server (instead of leaving it running).
    let signals = rt.spawn(async {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut t) => {
                    t.recv().await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = term => {}
        }
        let posted = slint::invoke_from_event_loop(|| {
            if let Err(e) = slint::quit_event_loop() {
                tracing::warn!(error = %e, "cannot quit");
            }
        });
        if let Err(e) = posted {
            tracing::warn!(error = %e, "cannot close the window on a signal");
        }
    });
    let shown = app.run();
    signals.abort();
    rt.block_on(client.disconnect_all());
    shown.context("the window's event loop failed")?;
    match failure.borrow_mut().take() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Files dropped on the window wait in the open conversation's composer. Slint does not
/// turn winit's file drops into Slint events; they are taken here before Slint sees them.
fn accept_dropped_files(app: &App) {
    use slint::winit_030::{EventResult, WinitWindowAccessor as _, winit};
    let ui = Rc::downgrade(app.ui());
    app.window()
        .window()
        .on_winit_window_event(move |_, event| match event {
            winit::event::WindowEvent::DroppedFile(path) => {
                if let Some(ui) = ui.upgrade() {
                    crate::ui::adapters::files::dropped(&ui, path);
                }
                EventResult::PreventDefault
            }
            _ => EventResult::Propagate,
        });
}

/// Start-up benchmark hook: prints the time to the first drawn frame and exits. winit
/// reports `RedrawRequested` just before Slint draws; a closure posted from there runs
/// right after the draw. (Slint's rendering notifier is not available with the software
/// renderer.)
fn exit_after_first_frame(app: &App, started: Instant) -> Result<()> {
    use slint::winit_030::{EventResult, WinitWindowAccessor as _, winit};
    let mut done = false;
    app.window()
        .window()
        .on_winit_window_event(move |_, event| {
            if matches!(event, winit::event::WindowEvent::RedrawRequested) && !done {
                done = true;
                let posted = slint::invoke_from_event_loop(move || {
                    eprintln!("first_frame_ms={}", started.elapsed().as_millis());
                    if let Err(e) = slint::quit_event_loop() {
                        tracing::warn!(error = %e, "cannot quit");
                    }
                });
                if let Err(e) = posted {
                    tracing::warn!(error = %e, "cannot report the first frame");
                }
            }
            EventResult::Propagate
        });
    Ok(())
}

/// Polls (on the UI thread, every 200 ms) until the demo content is shown, then writes the
/// PNG and quits. Gives up after 60 s.
fn screenshot_when_ready(
    app: &App,
    path: PathBuf,
    (min_conversations, min_messages): (usize, usize),
    failure: Rc<RefCell<Option<anyhow::Error>>>,
) -> slint::Timer {
    let timer = slint::Timer::default();
    let weak = app.window().as_weak();
    let started = Instant::now();
    timer.start(
        slint::TimerMode::Repeated,
        Duration::from_millis(200),
        move || {
            let Some(w) = weak.upgrade() else { return };
            let convs = w
                .global::<ConversationsAdapter<'_>>()
                .get_items()
                .row_count();
            let msgs = w.global::<ChatAdapter<'_>>().get_messages().row_count();
            let ready = convs >= min_conversations && msgs >= min_messages.max(1);
            if !ready && started.elapsed() < Duration::from_secs(60) {
                return;
            }
            let result = if ready {
                w.window()
                    .take_snapshot()
                    .map_err(|e| anyhow!("cannot render: {e}"))
                    .and_then(|buf| write_png(&path, &buf))
            } else {
                Err(anyhow!("the demo content did not show within 60 s"))
            };
            match result {
                Ok(()) => eprintln!("wrote {}", path.display()),
                Err(e) => *failure.borrow_mut() = Some(e.context("screenshot failed")),
            }
            if let Err(e) = slint::quit_event_loop() {
                tracing::warn!(error = %e, "cannot quit");
            }
        },
    );
    timer
}

/// Writes an RGBA pixel buffer as PNG.
pub fn write_png(path: &Path, buf: &slint::SharedPixelBuffer<slint::Rgba8Pixel>) -> Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), buf.width(), buf.height());
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header().context("writing PNG header")?;
    w.write_image_data(buf.as_bytes())
        .context("writing PNG data")?;
    w.finish().context("finishing PNG")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_xmpp_uri;

    #[test]
    fn xmpp_uris() -> anyhow::Result<()> {
        assert_eq!(parse_xmpp_uri("xmpp:bob@example.org")?, "bob@example.org");
        assert_eq!(
            parse_xmpp_uri("xmpp:bob@example.org?message;body=hi")?,
            "bob@example.org"
        );
        assert_eq!(
            parse_xmpp_uri("xmpp:b%C3%B6b@example.org")?,
            "böb@example.org"
        );
        assert_eq!(
            parse_xmpp_uri("xmpp://me@x.org/bob@example.org?message")?,
            "bob@example.org"
        );
        assert!(parse_xmpp_uri("https://example.org").is_err());
        assert!(parse_xmpp_uri("xmpp:").is_err());
        Ok(())
    }
}
