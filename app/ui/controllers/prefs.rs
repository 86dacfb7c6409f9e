//! The desktop app's own preferences (not account data): notifications and theme, kept as
//! a small JSON file in the profile directory.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// 0 = follow the system, 1 = light, 2 = dark.
pub type ThemeChoice = i32;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Prefs {
    pub notifications: bool,
    pub theme: ThemeChoice,
    /// Pictures from contacts fetched as they arrive: [`AUTO_DOWNLOAD_CHOICES`] index.
    pub auto_download: i32,
}

impl Default for Prefs {
    fn default() -> Self {
        Prefs {
            notifications: true,
            theme: 0,
            auto_download: 2,
        }
    }
}

/// The auto-download choices in Settings, in bytes (0: never).
pub const AUTO_DOWNLOAD_CHOICES: [u64; 4] = [0, 1_000_000, 5 * 1024 * 1024, 20_000_000];

impl Prefs {
    /// The auto-download limit in bytes.
    pub fn auto_download_limit(&self) -> u64 {
        usize::try_from(self.auto_download)
            .ok()
            .and_then(|i| AUTO_DOWNLOAD_CHOICES.get(i))
            .copied()
            .unwrap_or(starling_core::DEFAULT_AUTO_DOWNLOAD)
    }
}

pub fn path(profile: &Path) -> PathBuf {
    profile.join("desktop.json")
}

impl Prefs {
    /// Reads the preferences; a missing or unreadable file gives the defaults (logged), so a
    /// broken file never stops the app from starting.
    pub fn load(profile: &Path) -> Prefs {
        let p = path(profile);
        match std::fs::read(&p) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(path = %p.display(), error = %e, "ignoring unreadable preferences");
                Prefs::default()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Prefs::default(),
            Err(e) => {
                tracing::warn!(path = %p.display(), error = %e, "cannot read preferences");
                Prefs::default()
            }
        }
    }

    /// Writes atomically (temp file + rename).
    pub fn save(&self, profile: &Path) -> std::io::Result<()> {
        let p = path(profile);
        let tmp = p.with_extension("json.tmp");
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, &p)
    }
}

/// Whether a new message deserves a desktop notification.
pub fn should_notify(
    prefs: &Prefs,
    live: bool,
    outgoing: bool,
    window_active: bool,
    open_here: bool,
) -> bool {
    prefs.notifications && live && !outgoing && !(window_active && open_here)
}

/// Whether a message of this kind deserves a notification at all: everything in chats and
/// private chats, in rooms only what mentions us, never a room's notices.
pub fn notifies(kind: starling_core::store::MessageKind, mention: bool) -> bool {
    use starling_core::store::MessageKind;
    match kind {
        MessageKind::Chat | MessageKind::Private => true,
        MessageKind::GroupChat => mention,
        MessageKind::Notice => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_broken_file() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        assert_eq!(Prefs::load(dir.path()), Prefs::default());
        let p = Prefs {
            notifications: false,
            theme: 2,
            auto_download: 0,
        };
        assert_eq!(p.auto_download_limit(), 0);
        assert_eq!(
            Prefs::default().auto_download_limit(),
            starling_core::DEFAULT_AUTO_DOWNLOAD
        );
        p.save(dir.path())?;
        assert_eq!(Prefs::load(dir.path()), p);
        std::fs::write(path(dir.path()), b"{not json")?;
        assert_eq!(Prefs::load(dir.path()), Prefs::default());
        Ok(())
    }

    #[test]
    fn notification_rules() {
        let on = Prefs::default();
        let off = Prefs {
            notifications: false,
            ..Prefs::default()
        };
        assert!(should_notify(&on, true, false, false, true));
        assert!(
            should_notify(&on, true, false, true, false),
            "another chat is open"
        );
        assert!(
            !should_notify(&on, true, false, true, true),
            "reading it right now"
        );
        assert!(
            !should_notify(&on, false, false, false, false),
            "archive catch-up"
        );
        assert!(
            !should_notify(&on, true, true, false, false),
            "our own message"
        );
        assert!(!should_notify(&off, true, false, false, false));
    }

    #[test]
    fn rooms_notify_only_mentions() {
        use starling_core::store::MessageKind;
        assert!(notifies(MessageKind::Chat, false));
        assert!(notifies(MessageKind::Private, false));
        assert!(!notifies(MessageKind::GroupChat, false));
        assert!(notifies(MessageKind::GroupChat, true));
        assert!(!notifies(MessageKind::Notice, true));
    }
}
