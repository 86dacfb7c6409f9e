//! `android_main`: the shared UI (`starling::ui::App`, the same adapters as the desktop)
//! on Slint's android-activity backend, over the process's core.

use slint::android::AndroidApp;
use slint::android::android_activity::{MainEvent, PollEvent};

use crate::lifecycle::{self, Lifecycle};
use crate::process;

/// Entry point NativeActivity calls (via android-activity) on the app's main thread.
#[unsafe(no_mangle)]
fn android_main(app: AndroidApp) {
    crate::jni_glue::init_logging();
    if let Err(e) = run(app) {
        tracing::error!("Starling cannot start: {e:#}");
    }
}

fn run(app: AndroidApp) -> Result<(), Box<dyn std::error::Error>> {
    let files = app
        .internal_data_path()
        .ok_or("Android gave the app no private files directory")?;
    let core = process::core(&files)?;
    let rt = core.runtime().handle().clone();
    let client = core.client().clone();
    slint::android::init_with_event_listener(app, move |event| {
        let change = match event {
            PollEvent::Main(MainEvent::Resume { .. }) => Lifecycle::Resume,
            PollEvent::Main(MainEvent::Pause) => Lifecycle::Pause,
            PollEvent::Main(MainEvent::SaveState { .. }) => Lifecycle::SaveState,
            PollEvent::Main(MainEvent::LowMemory) => Lifecycle::LowMemory,
            PollEvent::Main(MainEvent::Destroy) => Lifecycle::Destroy,
            _ => return,
        };
        match change {
            Lifecycle::Resume => starling::ui::set_foreground(true),
            Lifecycle::Pause | Lifecycle::Destroy => starling::ui::set_foreground(false),
            Lifecycle::SaveState | Lifecycle::LowMemory => {}
        }
        let client = client.clone();
        // SaveState is synchronised with Android's main thread: the flush must be done
        // before it returns, so it waits here (a WAL checkpoint: milliseconds).
        if change == Lifecycle::SaveState {
            rt.block_on(lifecycle::apply(&client, change));
        } else {
            rt.spawn(async move { lifecycle::apply(&client, change).await });
        }
    })?;
    let ui = starling::ui::App::new(core.client().clone(), core.runtime().handle().clone())?;
    ui.run()?;
    Ok(())
}
