//! In-process UI measurement: Slint's headless testing backend with its real software
//! renderer, scripts run inside the Slint event loop, a 60 Hz frame recorder, and memory
//! figures from `/proc/self/status`.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use i_slint_backend_testing::{TestingBackend, TestingBackendOptions};
use slint::ComponentHandle as _;
use starling::ui::AppWindow;

/// The window size used for every rendered frame.
pub const WIDTH: u32 = 1100;
pub const HEIGHT: u32 = 720;
/// How often the recorder renders (60 Hz).
const FRAME_INTERVAL: Duration = Duration::from_millis(16);

/// Installs the testing backend with an event loop, system time and the software renderer.
/// Once per process.
pub fn init() -> Result<()> {
    slint::platform::set_platform(Box::new(TestingBackend::new(TestingBackendOptions {
        mock_time: false,
        threading: true,
        renderer_name: Some("software".into()),
    })))
    .map_err(|e| anyhow!("cannot install Slint's testing backend: {e}"))
}

/// Runs `script` inside the Slint event loop (as a local task) and returns its result.
pub fn run_script<T: 'static>(script: impl Future<Output = Result<T>> + 'static) -> Result<T> {
    let result = Rc::new(RefCell::new(None));
    let slot = result.clone();
    slint::spawn_local(async move {
        let r = script.await;
        *slot.borrow_mut() = Some(r);
        if let Err(e) = slint::quit_event_loop() {
            eprintln!("desktop: cannot quit the event loop: {e}");
        }
    })
    .map_err(|e| anyhow!("cannot start the script: {e}"))?;
    slint::run_event_loop_until_quit().map_err(|e| anyhow!("the event loop failed: {e}"))?;
    let r = result.borrow_mut().take();
    r.ok_or_else(|| anyhow!("the script did not finish"))?
}

/// Lets the event loop run for about `ms` milliseconds (timers, posted updates).
pub async fn tick(ms: u64) {
    let (tx, rx) = futures::channel::oneshot::channel::<()>();
    slint::Timer::single_shot(Duration::from_millis(ms), move || {
        // The receiver only goes away with the script.
        let _ = tx.send(());
    });
    // A dropped sender (event loop ending) just ends the wait.
    let _ = rx.await;
}

/// Waits until `probe` returns Some, checking every 5 ms of event-loop time, for at most
/// `timeout`.
pub async fn until<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tick(5).await;
    }
}

/// Sets the window size and shows it.
pub fn show(w: &AppWindow) -> Result<()> {
    w.window().set_size(slint::PhysicalSize::new(WIDTH, HEIGHT));
    w.show().map_err(|e| anyhow!("cannot show the window: {e}"))
}

/// Renders one full frame; returns how long it took.
pub fn render(w: &AppWindow) -> Result<Duration> {
    render_frame(w).map(|(took, _)| took)
}

/// Renders one full frame and checks that something was drawn; returns how long rendering
/// took (the check is not included).
pub fn render_checked(w: &AppWindow) -> Result<Duration> {
    let (took, frame) = render_frame(w)?;
    let pixels = frame.as_slice();
    if pixels.iter().all(|p| *p == pixels[0]) {
        bail!("the rendered frame is blank");
    }
    Ok(took)
}

fn render_frame(w: &AppWindow) -> Result<(Duration, slint::SharedPixelBuffer<slint::Rgba8Pixel>)> {
    let started = Instant::now();
    let frame = w
        .window()
        .take_snapshot()
        .map_err(|e| anyhow!("cannot render a frame: {e}"))?;
    let took = started.elapsed();
    if frame.width() != WIDTH || frame.height() != HEIGHT {
        bail!(
            "rendered a {}x{} frame, expected {WIDTH}x{HEIGHT}",
            frame.width(),
            frame.height()
        );
    }
    Ok((took, frame))
}

/// One frame the recorder rendered.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    /// When rendering started.
    pub start: Instant,
    /// How long rendering took.
    pub render: Duration,
}

/// Renders frames on the UI thread the way a 60 Hz display asks for them, and records each.
/// A frame is due 16 ms after the previous one started, but never sooner than 2 ms after it
/// ended: the testing backend runs one queued event per loop turn and would otherwise
/// render between every two events once frames take longer than 16 ms, which no real
/// event loop does. Stops when dropped or [`Recorder::stop`]ped.
pub struct Recorder {
    timer: slint::Timer,
    frames: Rc<RefCell<Vec<Frame>>>,
    error: Rc<RefCell<Option<anyhow::Error>>>,
}

/// The least time between the end of a frame and the start of the next.
const MIN_GAP: Duration = Duration::from_millis(2);
/// How often the recorder checks whether a frame is due.
const POLL: Duration = Duration::from_millis(1);

impl Recorder {
    pub fn start(w: &AppWindow) -> Recorder {
        let frames = Rc::new(RefCell::new(Vec::new()));
        let error = Rc::new(RefCell::new(None));
        let timer = slint::Timer::default();
        let (weak, f, e) = (w.as_weak(), frames.clone(), error.clone());
        let mut due = Instant::now();
        timer.start(slint::TimerMode::Repeated, POLL, move || {
            let start = Instant::now();
            if start < due {
                return;
            }
            let Some(w) = weak.upgrade() else { return };
            match render(&w) {
                Ok(render) => f.borrow_mut().push(Frame { start, render }),
                Err(err) => {
                    e.borrow_mut().get_or_insert(err);
                }
            }
            due = (start + FRAME_INTERVAL).max(Instant::now() + MIN_GAP);
        });
        Recorder {
            timer,
            frames,
            error,
        }
    }

    /// Stops rendering; returns the frames, or the first rendering error.
    pub fn stop(self) -> Result<Vec<Frame>> {
        self.timer.stop();
        if let Some(e) = self.error.borrow_mut().take() {
            return Err(e);
        }
        Ok(self.frames.take())
    }
}

/// `VmRSS` and `VmHWM` (peak) of this process, in KiB.
pub fn memory_kib() -> Result<(u64, u64)> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let field = |name: &str| -> Result<u64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("no {name} in /proc/self/status"))?;
        line.trim_start_matches(name)
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .with_context(|| format!("parsing {line:?}"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}
