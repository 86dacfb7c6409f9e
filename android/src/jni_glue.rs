//! The native methods of the APK's Java classes (`apk/app/src/main/java/im/starling/android`).
//! Thin by design: strings in, one call into [`crate::receiver`], a string out. Errors are
//! logged to logcat here and never thrown: a push that cannot be handled must not crash the
//! receiver, and the next one tries again.

use std::path::PathBuf;

use jni::errors::LogErrorAndDefault;
use jni::objects::{JByteArray, JClass, JString};
use jni::sys::jint;
use jni::{Env, EnvUnowned};

use crate::receiver;

/// tracing to logcat under the tag "starling" (once per process; later calls do nothing).
pub(crate) fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = tracing_subscriber::EnvFilter::new("info,starling=debug,starling_core=debug");
    let _already = tracing_subscriber::registry()
        .with(filter)
        .with(paranoid_android::layer("starling"))
        .try_init();
}

/// `PushReceiver.nativeEvent(String filesDir, String instance, int kind, String value)`:
/// one UnifiedPush callback; blocks (on the receiver's own thread) until it is handled.
/// Returns a line for the log, or null.
#[unsafe(no_mangle)]
pub extern "system" fn Java_im_starling_android_PushReceiver_nativeEvent<'caller>(
    env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    files_dir: JString<'caller>,
    instance: JString<'caller>,
    kind: jint,
    value: JString<'caller>,
) -> JString<'caller> {
    answer(env, |env| {
        let files = PathBuf::from(files_dir.try_to_string(env)?);
        let instance = instance.try_to_string(env)?;
        let value = if value.is_null() {
            None
        } else {
            Some(value.try_to_string(env)?)
        };
        Ok(
            match receiver::event(kind, value)
                .and_then(|event| receiver::handle(&files, &instance, event))
            {
                Ok(line) => {
                    tracing::info!("{line}");
                    line
                }
                Err(e) => {
                    tracing::warn!(instance, "push: {e}");
                    format!("push for {instance} not handled: {e}")
                }
            },
        )
    })
}

/// `StarlingActivity.nativeInstances(String filesDir)`: the UnifiedPush instances to
/// register (one per account), one per line.
#[unsafe(no_mangle)]
pub extern "system" fn Java_im_starling_android_StarlingActivity_nativeInstances<'caller>(
    env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    files_dir: JString<'caller>,
) -> JString<'caller> {
    answer(env, |env| {
        let files = PathBuf::from(files_dir.try_to_string(env)?);
        Ok(match receiver::instances(&files) {
            Ok(jids) => jids.join("\n"),
            Err(e) => {
                tracing::warn!("cannot list the accounts to register for push: {e}");
                String::new()
            }
        })
    })
}

/// Runs the body of a native method that answers with a string: logging set up, JNI
/// errors and panics logged, never thrown (null comes back instead).
fn answer<'caller>(
    mut env: EnvUnowned<'caller>,
    body: impl FnOnce(&mut Env<'caller>) -> Result<String, jni::errors::Error>,
) -> JString<'caller> {
    init_logging();
    env.with_env(|env| -> Result<JString<'caller>, jni::errors::Error> {
        let text = body(env)?;
        JString::from_str(env, text)
    })
    .resolve::<LogErrorAndDefault>()
}

/// `SecretKeeper.nativeSetKey(byte[] key)`: the key the Android Keystore unwrapped, which
/// seals the secrets file ([`crate::process::set_file_key`]).
#[unsafe(no_mangle)]
pub extern "system" fn Java_im_starling_android_SecretKeeper_nativeSetKey<'caller>(
    mut env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    key: JByteArray<'caller>,
) {
    init_logging();
    env.with_env(|env| -> Result<(), jni::errors::Error> {
        let bytes = zeroize::Zeroizing::new(env.convert_byte_array(&key)?);
        if let Err(e) = crate::process::set_file_key(&bytes) {
            tracing::warn!("the secrets stay unsealed: {e}");
        }
        Ok(())
    })
    .resolve::<LogErrorAndDefault>()
}
