//! The UnifiedPush receiver's entry points. The Java `PushReceiver` (a UnifiedPush
//! connector `MessagingReceiver`) forwards each distributor callback here from a thread of
//! its own, inside the time `goAsync()` gives it; the decisions are the core's
//! ([`Client::on_unified_push`](starling_core::Client::on_unified_push)).

use std::path::Path;
use std::time::Duration;

use starling_core::{UnifiedPushEvent, UnifiedPushOutcome};

use crate::process::{self, Core};

/// How long one callback may take. Android gives a receiver that called `goAsync()` about
/// ten seconds before it considers the app unresponsive.
pub const WAKE_TIMEOUT: Duration = Duration::from_secs(9);

/// The callbacks as `PushReceiver.java` numbers them.
pub const NEW_ENDPOINT: i32 = 0;
pub const MESSAGE: i32 = 1;
pub const UNREGISTERED: i32 = 2;
pub const REGISTRATION_FAILED: i32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Process(#[from] process::Error),
    #[error(transparent)]
    Core(#[from] starling_core::Error),
    #[error("unknown UnifiedPush callback {0} (the Java receiver and the library disagree)")]
    UnknownCallback(i32),
    #[error("the distributor's new endpoint came without a URL")]
    NoEndpoint,
}

/// The event for callback `kind` with its string argument (the endpoint, or the reason a
/// registration failed).
pub fn event(kind: i32, value: Option<String>) -> Result<UnifiedPushEvent, Error> {
    Ok(match kind {
        NEW_ENDPOINT => UnifiedPushEvent::NewEndpoint(value.ok_or(Error::NoEndpoint)?),
        MESSAGE => UnifiedPushEvent::Message,
        UNREGISTERED => UnifiedPushEvent::Unregistered,
        REGISTRATION_FAILED => {
            UnifiedPushEvent::RegistrationFailed(value.unwrap_or_else(|| "no reason given".into()))
        }
        other => return Err(Error::UnknownCallback(other)),
    })
}

/// Handles one callback for the account `instance` with the process's core, blocking until
/// it is done; a one-line summary for the log. Must not run on a runtime thread.
pub fn handle(files_dir: &Path, instance: &str, event: UnifiedPushEvent) -> Result<String, Error> {
    handle_in(process::core(files_dir)?, instance, event)
}

/// [`handle`] with a given core.
pub fn handle_in(core: &Core, instance: &str, event: UnifiedPushEvent) -> Result<String, Error> {
    let outcome =
        core.runtime()
            .block_on(core.client().on_unified_push(instance, event, WAKE_TIMEOUT))?;
    Ok(match outcome {
        UnifiedPushOutcome::Enabled { gateway, node } => {
            format!("push on for {instance} through {gateway} (node {node})")
        }
        UnifiedPushOutcome::Woke(r) => format!(
            "woke {instance}: {} stored in {} ms{}",
            r.stored,
            r.took_ms,
            if r.connected { " (connected)" } else { "" }
        ),
        UnifiedPushOutcome::Disabled => format!("push off for {instance}"),
    })
}

/// The UnifiedPush instances the app registers: one per account, named by its JID.
pub fn instances(files_dir: &Path) -> Result<Vec<String>, Error> {
    instances_in(process::core(files_dir)?)
}

/// [`instances`] with a given core.
pub fn instances_in(core: &Core) -> Result<Vec<String>, Error> {
    Ok(core
        .client()
        .accounts()?
        .into_iter()
        .map(|a| a.jid)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callbacks_map_to_events() -> Result<(), Error> {
        assert_eq!(
            event(NEW_ENDPOINT, Some("https://up.example/x".into()))?,
            UnifiedPushEvent::NewEndpoint("https://up.example/x".into())
        );
        assert!(matches!(event(NEW_ENDPOINT, None), Err(Error::NoEndpoint)));
        assert_eq!(
            event(MESSAGE, Some("ignored".into()))?,
            UnifiedPushEvent::Message
        );
        assert_eq!(event(UNREGISTERED, None)?, UnifiedPushEvent::Unregistered);
        assert_eq!(
            event(REGISTRATION_FAILED, None)?,
            UnifiedPushEvent::RegistrationFailed("no reason given".into())
        );
        assert!(matches!(event(7, None), Err(Error::UnknownCallback(7))));
        Ok(())
    }

    /// A push for an account the profile does not have (removed since it registered) is a
    /// clear error, and a new profile has no instances to register.
    #[test]
    fn a_push_for_an_unknown_account_is_refused() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let key = starling_core::secrets::FileKey::from_slice(&[3; 32]).ok_or("key")?;
        let core = Core::open(dir.path(), Some(key))?;
        assert!(instances_in(&core)?.is_empty());
        let err = handle_in(&core, "gone@example.org", UnifiedPushEvent::Message)
            .err()
            .ok_or("a push for nobody succeeded")?;
        assert!(err.to_string().contains("gone@example.org"), "{err}");
        Ok(())
    }
}
