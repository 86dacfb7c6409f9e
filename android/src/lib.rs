//! Starling for Android.
//!
//! Placeholder: the Android issue adds `android_main` (Slint's android-activity backend) and the
//! UnifiedPush wakeup that calls [`starling_core::Client`]. Until then this crate only proves that
//! the core links into a `cdylib`.

/// The core version this build links against; used by the APK's about screen later.
pub fn core_version() -> &'static str {
    starling_core::VERSION
}
