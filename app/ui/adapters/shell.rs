//! `Shell`: which screen and pane show, the status bar, the theme and window activity.

use std::rc::Rc;
use std::time::{Duration, Instant};

use slint::ComponentHandle as _;

use super::s;
use crate::ui::{AppWindow, Palette, Shell, Ui};

pub(super) fn install(ui: &Rc<Ui>, w: &AppWindow) {
    let weak = w.as_weak();
    w.global::<Shell>().on_dismiss_toast(move || {
        if let Some(w) = weak.upgrade() {
            w.global::<Shell>().set_toast(Default::default());
        }
    });
    // Coming back to the window reads the open conversation (window systems tell winit
    // about focus; polling twice a second is cheap and needs no hooks into the backend).
    // A window left alone for a while tells the servers (XEP-0352) that presence updates
    // and other unimportant traffic can wait; messages still arrive at once.
    let weak = w.as_weak();
    let u = ui.clone();
    let mut away_since: Option<Instant> = None;
    ui.state.borrow().activity_timer.start(
        slint::TimerMode::Repeated,
        Duration::from_millis(500),
        move || {
            let Some(w) = weak.upgrade() else { return };
            let active = window_active(&w);
            let became_active =
                active && !std::mem::replace(&mut u.state.borrow_mut().was_active, active);
            if became_active {
                super::chat::read_open_conversation(&u);
            }
            let in_use = match (active, away_since) {
                (true, _) => {
                    away_since = None;
                    true
                }
                (false, None) => {
                    away_since = Some(Instant::now());
                    true
                }
                (false, Some(t)) => t.elapsed() < BACKGROUND_AFTER,
            };
            // On Android the activity's lifecycle says it instead (starling-android).
            if cfg!(feature = "desktop") && in_use != u.client.client_active() {
                let client = u.client.clone();
                u.rt.spawn(async move { client.set_client_active(in_use).await });
            }
        },
    );
}

/// How long the window must be out of focus before the servers hear it is in the
/// background.
const BACKGROUND_AFTER: Duration = Duration::from_secs(120);

/// Status bar text; while an account waits to reconnect, counts down every second.
pub(super) fn refresh_status(ui: &Rc<Ui>, w: &AppWindow) {
    let now = Instant::now();
    let st = ui.state.borrow();
    let (text, problem) = st.status.summary(now);
    let shell = w.global::<Shell>();
    shell.set_connection_text(s(text));
    shell.set_connection_problem(problem);
    shell.set_sync_text(s(st.status.sync_text()));
    if st.status.counting_down() {
        if !st.status_timer.running() {
            let weak = w.as_weak();
            let ui2 = ui.clone();
            st.status_timer.start(
                slint::TimerMode::Repeated,
                Duration::from_secs(1),
                move || {
                    if let Some(w) = weak.upgrade() {
                        refresh_status(&ui2, &w);
                    }
                },
            );
        }
    } else {
        st.status_timer.stop();
    }
}

/// Applies the theme choice (0 system, 1 light, 2 dark) to the style's palette.
pub(crate) fn apply_theme(w: &AppWindow, theme: i32) {
    let scheme = match theme {
        1 => slint::language::ColorScheme::Light,
        2 => slint::language::ColorScheme::Dark,
        _ => slint::language::ColorScheme::Unknown,
    };
    w.global::<Palette>().set_color_scheme(scheme);
    w.global::<Shell>().set_theme(theme);
}

/// Whether the user is looking at the window right now. Outside a desktop window system
/// (headless tests) the window counts as active.
#[cfg(feature = "desktop")]
pub(crate) fn window_active(w: &AppWindow) -> bool {
    use slint::winit_030::WinitWindowAccessor as _;
    w.window()
        .with_winit_window(|ww| ww.has_focus())
        .unwrap_or(true)
}

/// Whether the user is looking at the app right now: what the platform last said through
/// [`crate::ui::set_foreground`] (Android: the activity's resume and pause).
#[cfg(not(feature = "desktop"))]
pub(crate) fn window_active(_w: &AppWindow) -> bool {
    crate::ui::foreground()
}
