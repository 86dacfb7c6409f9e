//! The one core per app process. Android starts the process for the activity or for the
//! push receiver alone (the app closed, a push arriving), in either order; both reach the
//! same runtime and [`Client`], so a push while the app is open wakes the connection the
//! UI shows, and the profile database has one owner.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use starling_core::Client;
use starling_core::secrets::FileKey;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot open the profile in {path}: {source}")]
    Open {
        path: String,
        source: starling_core::Error,
    },
    #[error("this process runs the profile in {running}; it cannot open {wanted} as well")]
    OtherProfile { running: String, wanted: String },
    #[error("the key that seals the secrets must be 32 bytes, not {0}")]
    KeyLength(usize),
}

/// The runtime and client of the process.
pub struct Core {
    runtime: tokio::runtime::Runtime,
    client: Client,
    profile: PathBuf,
    /// Whether the secrets file is sealed with the Keystore's key.
    sealed: bool,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("profile", &self.profile)
            .field("sealed", &self.sealed)
            .finish_non_exhaustive()
    }
}

impl Core {
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.runtime
    }

    /// The profile directory.
    pub fn profile(&self) -> &Path {
        &self.profile
    }
}

/// The profile inside the app's private files directory (`Context.getFilesDir()`, which
/// android-activity calls `internal_data_path`).
pub fn profile_dir(files_dir: &Path) -> PathBuf {
    files_dir.join("profile")
}

static CORE: OnceLock<Core> = OnceLock::new();
static OPENING: Mutex<()> = Mutex::new(());
static FILE_KEY: OnceLock<FileKey> = OnceLock::new();

/// The key the Android Keystore unwrapped for sealing the secrets file (`SecretKeeper`
/// calls this before anything opens the core). Only the first key counts: the process
/// keeps one. Without one (no Keystore), secrets stay in the app's private storage
/// unsealed.
pub fn set_file_key(bytes: &[u8]) -> Result<(), Error> {
    let key = FileKey::from_slice(bytes).ok_or(Error::KeyLength(bytes.len()))?;
    if FILE_KEY.set(key).is_err() {
        tracing::debug!("the secrets key was set already");
    }
    if CORE.get().is_some_and(|c| !c.sealed) {
        tracing::warn!("the core opened before the secrets key came: secrets stay unsealed");
    }
    Ok(())
}

/// The process's core, opened on first use for the profile in `files_dir`. Every later call
/// gets the same one; asking for another profile is an error (one database, one owner).
pub fn core(files_dir: &Path) -> Result<&'static Core, Error> {
    let wanted = profile_dir(files_dir);
    let check = |c: &'static Core| {
        if c.profile == wanted {
            Ok(c)
        } else {
            Err(Error::OtherProfile {
                running: c.profile.display().to_string(),
                wanted: wanted.display().to_string(),
            })
        }
    };
    if let Some(c) = CORE.get() {
        return check(c);
    }
    // One opener at a time; a poisoned lock only means another opener panicked.
    let _opening = OPENING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(c) = CORE.get() {
        return check(c);
    }
    let core = Core::open(files_dir, FILE_KEY.get().cloned())?;
    // Nobody else can have set it: we hold the opening lock and it was empty.
    Ok(CORE.get_or_init(|| core))
}

impl Core {
    /// A core of its own for the profile in `files_dir`, its secrets sealed with `key` if
    /// given (the process's is [`core`]).
    pub(crate) fn open(files_dir: &Path, key: Option<FileKey>) -> Result<Core, Error> {
        let profile = profile_dir(files_dir);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("starling-core")
            .build()
            .map_err(Error::Runtime)?;
        let client = {
            let _in_runtime = runtime.enter();
            match key.clone() {
                Some(key) => Client::open_sealed(&profile, key),
                None => Client::open(&profile),
            }
            .map_err(|source| Error::Open {
                path: profile.display().to_string(),
                source,
            })?
        };
        Ok(Core {
            runtime,
            client,
            profile,
            sealed: key.is_some(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secrets_key_must_be_32_bytes() {
        assert!(matches!(set_file_key(&[1; 16]), Err(Error::KeyLength(16))));
        assert!(FILE_KEY.get().is_none(), "nothing was kept");
    }

    /// The process keeps one core whoever asks first (the activity or the push receiver),
    /// and refuses a second profile. (One test: the core is per process.)
    #[test]
    fn one_core_per_process() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let first = core(dir.path())?;
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let d = dir.path().to_path_buf();
                std::thread::spawn(move || core(&d).map(|c| c as *const Core as usize))
            })
            .collect();
        for t in threads {
            let got = t.join().map_err(|_| "a thread panicked")??;
            assert_eq!(got, first as *const Core as usize, "the same core");
        }
        assert_eq!(first.profile(), dir.path().join("profile"));
        assert!(first.client().accounts()?.is_empty(), "a new profile");
        let other = tempfile::tempdir()?;
        let err = core(other.path())
            .map(|_| ())
            .err()
            .ok_or("a second profile opened")?;
        assert!(matches!(err, Error::OtherProfile { .. }), "{err}");
        Ok(())
    }
}
