//! Account passwords: never in SQLite or logs.
//!
//! Lookup order: the OS keyring (Secret Service) when a session bus is available, then a
//! 0600 file in the profile directory (used, with a warning, where no keyring exists, e.g.
//! on servers and CI; on Android, in the app's private storage), then `STARLING_PASSWORD`
//! from the environment.
//!
//! Where the platform keeps a key for us (Android: a data key that the Android Keystore
//! wraps), the file is sealed with it ([`Secrets::sealed`], AES-256-GCM): a copy of the
//! app's files alone reveals nothing.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aes_gcm::aead::{Aead as _, KeyInit as _, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::Zeroizing;

/// The keyring service name our entries are filed under.
const KEYRING_SERVICE: &str = "im.starling.Starling";
/// Environment variable that supplies a password when none is stored.
pub const PASSWORD_ENV: &str = "STARLING_PASSWORD";
const FILE_NAME: &str = "secrets.json";
/// The sealed file ([`Secrets::sealed`]): a 12-byte nonce, then the AES-256-GCM sealed JSON.
const SEALED_FILE_NAME: &str = "secrets.sealed";
/// Binds a sealed file to its purpose and format.
const SEALED_AAD: &[u8] = b"starling secrets v1";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read or write the password file {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("the password file {0} is corrupt; delete it and add the account again")]
    Corrupt(String),
    #[error("no password stored for {0}; set {PASSWORD_ENV} or add the account again")]
    Missing(String),
    #[error(
        "the sealed password file {0} cannot be opened with this device's key (the key was \
         reset, or the file is damaged); delete it and add the accounts again"
    )]
    Sealed(String),
}

/// A key the platform keeps for us that seals the secrets file (Android: unwrapped by the
/// Keystore when the app starts). Never printed.
#[derive(Clone)]
pub struct FileKey(Arc<Zeroizing<[u8; 32]>>);

impl FileKey {
    /// A key from its 32 bytes; `None` for any other length.
    pub fn from_slice(bytes: &[u8]) -> Option<FileKey> {
        let key: [u8; 32] = bytes.try_into().ok()?;
        Some(FileKey(Arc::new(Zeroizing::new(key))))
    }

    fn cipher(&self) -> Aes256Gcm {
        let key: &[u8; 32] = &self.0;
        Aes256Gcm::new(key.into())
    }
}

impl std::fmt::Debug for FileKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileKey(***)")
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A password that never shows up in Debug output or logs.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn new(s: impl Into<String>) -> Password {
        Password(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// Where a password ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Keyring,
    File,
}

/// Password storage for one profile.
#[derive(Debug, Clone)]
pub struct Secrets {
    file: PathBuf,
    use_keyring: bool,
    /// Whether the file is a fallback (warn) or the chosen place (private profiles).
    file_is_fallback: bool,
    /// Seals the file ([`Secrets::sealed`]).
    seal: Option<FileKey>,
}

impl Secrets {
    pub fn new(profile_dir: &Path) -> Secrets {
        Secrets {
            file: profile_dir.join(FILE_NAME),
            use_keyring: keyring_available(),
            // On Android the app's private storage is where secrets belong: no warning.
            file_is_fallback: !cfg!(target_os = "android"),
            seal: None,
        }
    }

    /// A store that keeps everything in a file sealed with `key`, which the platform holds
    /// (Android's Keystore). A plain file left from before is read, and replaced by the
    /// sealed one at the first change.
    pub fn sealed(profile_dir: &Path, key: FileKey) -> Secrets {
        Secrets {
            file: profile_dir.join(SEALED_FILE_NAME),
            use_keyring: false,
            file_is_fallback: false,
            seal: Some(key),
        }
    }

    /// A store that never touches the OS keyring (tests, or `--no-keyring` setups).
    pub fn file_only(profile_dir: &Path) -> Secrets {
        Secrets {
            file: profile_dir.join(FILE_NAME),
            use_keyring: false,
            file_is_fallback: false,
            seal: None,
        }
    }

    pub async fn save(&self, jid: &str, password: &Password) -> Result<Location> {
        if self.use_keyring {
            let (jid_owned, pw) = (jid.to_owned(), password.clone());
            let res = tokio::task::spawn_blocking(move || {
                keyring::Entry::new(KEYRING_SERVICE, &jid_owned)
                    .and_then(|e| e.set_password(pw.expose()))
            })
            .await;
            match res {
                Ok(Ok(())) => {
                    // Do not leave an older copy in the file.
                    self.remove_from_file(jid)?;
                    return Ok(Location::Keyring);
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "OS keyring refused the password"),
                Err(e) => tracing::warn!(error = %e, "keyring task failed"),
            }
        }
        if self.file_is_fallback {
            tracing::warn!(
                file = %self.file.display(),
                "no OS keyring available: storing the password in a file readable only by you"
            );
        }
        let mut map = self.read_file()?;
        map.insert(jid.to_owned(), password.expose().to_owned());
        self.write_file(&map)?;
        Ok(Location::File)
    }

    pub async fn load(&self, jid: &str) -> Result<Password> {
        if self.use_keyring {
            let jid_owned = jid.to_owned();
            let res = tokio::task::spawn_blocking(move || {
                keyring::Entry::new(KEYRING_SERVICE, &jid_owned).and_then(|e| e.get_password())
            })
            .await;
            match res {
                Ok(Ok(pw)) => return Ok(Password(pw)),
                Ok(Err(keyring::Error::NoEntry)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "OS keyring lookup failed"),
                Err(e) => tracing::warn!(error = %e, "keyring task failed"),
            }
        }
        if let Some(pw) = self.read_file()?.remove(jid) {
            return Ok(Password(pw));
        }
        match std::env::var(PASSWORD_ENV) {
            Ok(pw) if !pw.is_empty() => Ok(Password(pw)),
            _ => Err(Error::Missing(jid.to_owned())),
        }
    }

    /// A stored secret under `key`, if there is one (no environment fallback: for secrets
    /// other than the account password, such as room passwords).
    pub async fn load_stored(&self, key: &str) -> Result<Option<Password>> {
        if self.use_keyring {
            let key_owned = key.to_owned();
            let res = tokio::task::spawn_blocking(move || {
                keyring::Entry::new(KEYRING_SERVICE, &key_owned).and_then(|e| e.get_password())
            })
            .await;
            match res {
                Ok(Ok(pw)) => return Ok(Some(Password(pw))),
                Ok(Err(keyring::Error::NoEntry)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "OS keyring lookup failed"),
                Err(e) => tracing::warn!(error = %e, "keyring task failed"),
            }
        }
        Ok(self.read_file()?.remove(key).map(Password))
    }

    pub async fn delete(&self, jid: &str) -> Result<()> {
        if self.use_keyring {
            let jid_owned = jid.to_owned();
            let res = tokio::task::spawn_blocking(move || {
                keyring::Entry::new(KEYRING_SERVICE, &jid_owned).and_then(|e| e.delete_credential())
            })
            .await;
            match res {
                Ok(Ok(())) | Ok(Err(keyring::Error::NoEntry)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "OS keyring delete failed"),
                Err(e) => tracing::warn!(error = %e, "keyring task failed"),
            }
        }
        self.remove_from_file(jid)
    }

    fn remove_from_file(&self, jid: &str) -> Result<()> {
        let mut map = self.read_file()?;
        if map.remove(jid).is_some() {
            self.write_file(&map)?;
        }
        Ok(())
    }

    fn read_file(&self) -> Result<BTreeMap<String, String>> {
        let Some(key) = &self.seal else {
            return self.read_plain(&self.file);
        };
        let mut map = match std::fs::read(&self.file) {
            Ok(bytes) => self.open_sealed(key, &bytes)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => return Err(self.file_err(source)),
        };
        // A plain file from before sealing: its entries count until the next write seals
        // them (and removes it).
        for (k, v) in self.read_plain(&self.plain_file())? {
            map.entry(k).or_insert(v);
        }
        Ok(map)
    }

    fn read_plain(&self, path: &Path) -> Result<BTreeMap<String, String>> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|_| Error::Corrupt(path.display().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(source) => Err(Error::File {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// Where the plain file is (or was, before sealing).
    fn plain_file(&self) -> PathBuf {
        self.file.with_file_name(FILE_NAME)
    }

    fn open_sealed(&self, key: &FileKey, bytes: &[u8]) -> Result<BTreeMap<String, String>> {
        let sealed_err = || Error::Sealed(self.file.display().to_string());
        if bytes.len() < 12 {
            return Err(sealed_err());
        }
        let (nonce, ct) = bytes.split_at(12);
        let plain = Zeroizing::new(
            key.cipher()
                .decrypt(
                    Nonce::from_slice(nonce),
                    Payload {
                        msg: ct,
                        aad: SEALED_AAD,
                    },
                )
                .map_err(|_| sealed_err())?,
        );
        serde_json::from_slice(&plain).map_err(|_| sealed_err())
    }

    fn write_file(&self, map: &BTreeMap<String, String>) -> Result<()> {
        let dir = self.file.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| self.file_err(e))?;
        let tmp = self.file.with_extension("tmp");
        let json = Zeroizing::new(
            serde_json::to_vec(map).map_err(|_| Error::Corrupt(self.file.display().to_string()))?,
        );
        let bytes = match &self.seal {
            None => json,
            Some(key) => {
                let nonce: [u8; 12] = rand::random();
                let sealed = key
                    .cipher()
                    .encrypt(
                        Nonce::from_slice(&nonce),
                        Payload {
                            msg: &json,
                            aad: SEALED_AAD,
                        },
                    )
                    .map_err(|_| Error::Sealed(self.file.display().to_string()))?;
                Zeroizing::new([&nonce[..], &sealed].concat())
            }
        };
        {
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts.open(&tmp).map_err(|e| self.file_err(e))?;
            f.write_all(&bytes).map_err(|e| self.file_err(e))?;
            f.sync_all().map_err(|e| self.file_err(e))?;
        }
        std::fs::rename(&tmp, &self.file).map_err(|e| self.file_err(e))?;
        if self.seal.is_some() {
            // Everything in the plain file is in the sealed one now.
            match std::fs::remove_file(self.plain_file()) {
                Ok(()) => tracing::info!("the secrets file is sealed now; the plain one is gone"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.file_err(e)),
            }
        }
        Ok(())
    }

    fn file_err(&self, source: std::io::Error) -> Error {
        Error::File {
            path: self.file.display().to_string(),
            source,
        }
    }
}

/// A Secret Service can only be reached over a D-Bus session bus.
fn keyring_available() -> bool {
    // keyring-rs has no Android store (it would keep secrets in memory only): there, the
    // file in the app's private storage is the place.
    if cfg!(target_os = "android") || std::env::var_os("STARLING_NO_KEYRING").is_some() {
        return false;
    }
    std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_roundtrip_with_private_permissions() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let s = Secrets::file_only(dir.path());
        assert_eq!(s.save("a@b", &Password::new("pw1")).await?, Location::File);
        assert_eq!(s.load("a@b").await?.expose(), "pw1");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(FILE_NAME))?
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        s.delete("a@b").await?;
        // Falls through to the environment (unset in tests) and reports what to do.
        if std::env::var_os(PASSWORD_ENV).is_none() {
            assert!(matches!(s.load("a@b").await, Err(Error::Missing(_))));
        }
        Ok(())
    }

    #[test]
    fn password_debug_is_redacted() {
        assert_eq!(format!("{:?}", Password::new("hunter2")), "Password(***)");
    }

    #[tokio::test]
    async fn a_sealed_file_keeps_secrets_only_for_its_key() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let key = FileKey::from_slice(&[7u8; 32]).ok_or_else(|| anyhow::anyhow!("key"))?;
        assert!(FileKey::from_slice(&[7u8; 31]).is_none());
        assert_eq!(format!("{key:?}"), "FileKey(***)");
        let s = Secrets::sealed(dir.path(), key.clone());
        assert_eq!(
            s.save("a@b", &Password::new("hunter2")).await?,
            Location::File
        );
        assert_eq!(s.load("a@b").await?.expose(), "hunter2");
        let bytes = std::fs::read(dir.path().join(SEALED_FILE_NAME))?;
        assert!(
            !bytes.windows(7).any(|w| w == b"hunter2") && !bytes.windows(3).any(|w| w == b"a@b"),
            "nothing readable in the file"
        );
        // Reopened with the same key (the next start): still there.
        let again = Secrets::sealed(dir.path(), key);
        assert_eq!(
            again.load_stored("a@b").await?.map(|p| p.0),
            Some("hunter2".into())
        );
        // Another key (the Keystore was reset): a clear error, and the file is untouched.
        let other = FileKey::from_slice(&[8u8; 32]).ok_or_else(|| anyhow::anyhow!("key"))?;
        let wrong = Secrets::sealed(dir.path(), other);
        let err = wrong.load_stored("a@b").await.err();
        assert!(matches!(err, Some(Error::Sealed(_))), "{err:?}");
        assert!(wrong.save("c@d", &Password::new("x")).await.is_err());
        assert_eq!(std::fs::read(dir.path().join(SEALED_FILE_NAME))?, bytes);
        Ok(())
    }

    #[tokio::test]
    async fn a_plain_file_from_before_is_sealed_at_the_first_change() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let plain = Secrets::file_only(dir.path());
        plain.save("old@b", &Password::new("pw-old")).await?;
        let key = FileKey::from_slice(&[1u8; 32]).ok_or_else(|| anyhow::anyhow!("key"))?;
        let s = Secrets::sealed(dir.path(), key);
        // Readable before anything changes.
        assert_eq!(s.load("old@b").await?.expose(), "pw-old");
        s.save("new@b", &Password::new("pw-new")).await?;
        assert!(
            !dir.path().join(FILE_NAME).exists(),
            "the plain file is gone"
        );
        assert_eq!(s.load("old@b").await?.expose(), "pw-old");
        assert_eq!(s.load("new@b").await?.expose(), "pw-new");
        s.delete("old@b").await?;
        assert!(s.load_stored("old@b").await?.is_none());
        Ok(())
    }
}
