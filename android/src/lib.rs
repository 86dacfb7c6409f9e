//! Starling for Android: the same UI and core as the desktop app, in an APK that
//! UnifiedPush wakes (issue 9).
//!
//! - [`process`]: the one core per app process (tokio runtime + [`starling_core::Client`]),
//!   shared by the activity and the push receiver, which Android may start without it.
//! - [`receiver`]: the UnifiedPush receiver's entry points. The Java receiver
//!   (`apk/.../PushReceiver.java`) only forwards the distributor's callbacks here; the logic
//!   is [`starling_core::Client::on_unified_push`], tested on the host against Prosody.
//! - [`lifecycle`]: the activity's resume/pause/save-state, as XEP-0352 client state and a
//!   flush of the store.
//! - `activity` (Android, `ui` feature): `android_main`, which opens the shared
//!   `starling::ui::App` on Slint's android-activity backend.
//! - `jni_glue` (Android): the native methods, thin by design.
//!
//! Everything but the last two builds and is tested on the host.

pub mod lifecycle;
pub mod process;
pub mod receiver;

#[cfg(all(target_os = "android", feature = "ui"))]
mod activity;
#[cfg(test)]
mod jni_contract;
#[cfg(target_os = "android")]
mod jni_glue;

/// The core version this build links against (the about screen).
pub fn core_version() -> &'static str {
    starling_core::VERSION
}
