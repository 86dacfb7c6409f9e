//! The activity's lifecycle, as the core hears it: on screen or not (XEP-0352 client state:
//! in the background the servers hold back presence and other chatter, so the radio can
//! sleep; messages still come, or push wakes the app), and "you may be killed now" (the
//! store goes to disk for good).

use starling_core::Client;

/// What the activity went through (android-activity's main events, minus the window and
/// input ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// On screen and in use (`onResume`).
    Resume,
    /// Left the screen or lost focus to another app (`onPause`).
    Pause,
    /// Android saves the state before it may kill the process (`onSaveInstanceState`).
    SaveState,
    /// The system is short of memory.
    LowMemory,
    /// The activity is gone (`onDestroy`); the process, the connection and push go on.
    Destroy,
}

/// What the core does about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Tell the servers the app is in use (`true`) or in the background.
    ClientActive(bool),
    /// Put everything stored on disk for good.
    Flush,
}

/// The actions for an event, in order.
pub fn actions(event: Lifecycle) -> &'static [Action] {
    match event {
        Lifecycle::Resume => &[Action::ClientActive(true)],
        Lifecycle::Pause => &[Action::ClientActive(false)],
        Lifecycle::SaveState | Lifecycle::LowMemory => &[Action::Flush],
        Lifecycle::Destroy => &[Action::ClientActive(false), Action::Flush],
    }
}

/// Does what `event` asks of the core.
pub async fn apply(client: &Client, event: Lifecycle) {
    for action in actions(event) {
        match action {
            Action::ClientActive(active) => client.set_client_active(*active).await,
            Action::Flush => {
                if let Err(e) = client.save_for_shutdown().await {
                    tracing::warn!(error = %e, "cannot flush the profile database");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_and_resume_set_the_client_state() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let core = crate::process::Core::open(dir.path(), None)?;
        let client = core.client();
        assert!(client.client_active(), "a new client is in use");
        core.runtime().block_on(async {
            apply(client, Lifecycle::Pause).await;
            assert!(!client.client_active());
            apply(client, Lifecycle::Resume).await;
            assert!(client.client_active());
            apply(client, Lifecycle::Destroy).await;
            assert!(!client.client_active());
            apply(client, Lifecycle::SaveState).await;
        });
        // The flush left an empty write-ahead log.
        let wal = core.profile().join("starling.sqlite3-wal");
        assert!(
            !wal.exists() || std::fs::metadata(&wal)?.len() == 0,
            "{wal:?}"
        );
        Ok(())
    }

    #[test]
    fn saving_state_flushes_and_changes_nothing_else() {
        assert_eq!(actions(Lifecycle::SaveState), &[Action::Flush]);
        assert_eq!(actions(Lifecycle::LowMemory), &[Action::Flush]);
        assert!(actions(Lifecycle::Destroy).contains(&Action::ClientActive(false)));
    }
}
