//! Counts the app's warnings and errors (tracing events of `starling*` targets) in a child
//! process, so the figures can say e.g. "the UI fell behind the core 3 times" without
//! printing thousands of lines.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;

/// Messages of WARN and ERROR events, with how often each was logged.
#[derive(Clone, Default)]
pub struct Warnings(Arc<Mutex<BTreeMap<String, usize>>>);

impl Warnings {
    /// Installs the counter as the process's tracing subscriber.
    pub fn install() -> Warnings {
        let w = Warnings::default();
        if let Err(e) = tracing_subscriber::registry().with(w.clone()).try_init() {
            eprintln!("desktop: cannot install the warning counter: {e}");
        }
        w
    }

    /// "message (×n)" for each distinct message, most frequent first.
    pub fn summary(&self) -> Vec<String> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<(&String, &usize)> = map.iter().collect();
        all.sort_by(|a, b| b.1.cmp(a.1));
        all.into_iter()
            .map(|(m, n)| format!("{m} (x{n})"))
            .collect()
    }
}

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // The message first, then the names (not the values) of the other fields, so
        // repeats of one warning with different values count as one entry.
        if field.name() == "message" {
            self.0.insert_str(0, &format!("{value:?}"));
        } else {
            let _ = write!(self.0, " [{}]", field.name());
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Warnings {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        // The app's and the core's own warnings; not the window system's (Xvfb makes winit
        // complain about its fake screen).
        let meta = event.metadata();
        if *meta.level() > tracing::Level::WARN || !meta.target().starts_with("starling") {
            return;
        }
        let mut m = Message(String::new());
        event.record(&mut m);
        let key: String = format!(
            "{} {}: {}",
            event.metadata().level(),
            event.metadata().target(),
            m.0.chars().take(160).collect::<String>()
        );
        *self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key)
            .or_default() += 1;
    }
}
