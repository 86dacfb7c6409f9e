//! Shared files on the receiving side (issue 8): fetching a message's file into the
//! profile's `files` folder (decrypting aesgcm:// on the way), thumbnails cached in the
//! profile's `thumbnails` folder, and pictures from contacts fetched as they arrive, up to
//! a size the user chooses. Also the task that resumes interrupted uploads.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::upload::Target;
use super::{Client, ConnectionState, Error, Event, Result, parse_bare};
use crate::store::{AccountRecord, Attachment, MessageKind, MessageRecord, Subscription};

/// Pictures up to this size are fetched as they arrive unless the front end says otherwise
/// ([`Client::set_auto_download`]).
pub const DEFAULT_AUTO_DOWNLOAD: u64 = 5 * 1024 * 1024;

impl Client {
    /// Where fetched files are saved: the profile's `files` folder.
    pub fn files_dir(&self) -> PathBuf {
        self.inner.profile_dir.join("files")
    }

    fn thumbnails_dir(&self) -> PathBuf {
        self.inner.profile_dir.join("thumbnails")
    }

    /// Pictures from contacts (and our own from other devices) up to `limit` bytes are
    /// fetched as they arrive; 0 turns this off. Everything else waits for
    /// [`Client::fetch_attachment`] (the user's click). Off until a front end sets it.
    pub fn set_auto_download(&self, limit: u64) {
        self.inner.auto_download.store(limit, Ordering::Relaxed);
    }

    /// Fetches the file a message shares into [`Client::files_dir`] (an aesgcm:// file is
    /// decrypted and its tag checked before it appears), with [`Event::DownloadProgress`];
    /// the message then points at it ([`Event::MessageUpdated`]). A failure is recorded on
    /// the message too, and returned. At most `limit` bytes.
    pub async fn fetch_attachment(
        &self,
        account: &str,
        message_id: i64,
        limit: u64,
    ) -> Result<MessageRecord> {
        self.fetch(account, message_id, limit, true).await
    }

    /// [`Client::fetch_attachment`]; a file over `limit` is recorded as a failure only when
    /// the user asked (an automatic fetch leaves it for a click).
    async fn fetch(
        &self,
        account: &str,
        message_id: i64,
        limit: u64,
        asked: bool,
    ) -> Result<MessageRecord> {
        let acc = self.inner.store.account(parse_bare(account)?.as_str())?;
        let rec = self
            .inner
            .store
            .message(acc.id, message_id)?
            .ok_or_else(|| Error::Upload(format!("no message {message_id}")))?;
        let file = rec
            .attachment
            .clone()
            .filter(|a| !a.url.is_empty())
            .ok_or_else(|| Error::Upload("this message shares no file".into()))?;
        if let Some(path) = file
            .local_path
            .as_deref()
            .filter(|p| Path::new(p).is_file())
        {
            tracing::debug!(file = path, "already fetched");
            return Ok(rec);
        }
        let Some(_running) = RunningFetch::claim(self, message_id) else {
            return Err(Error::Upload("this file is being fetched already".into()));
        };
        let dir = self.files_dir();
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::Upload(format!("cannot create {}: {e}", dir.display())))?;
        let target = Target {
            dir: &dir,
            name: file.name.clone(),
            message: Some(message_id),
            total: file.size,
        };
        // Never more than announced (a plaintext file's size is in its metadata; an
        // encrypted one's carries its 16-byte tag on top).
        let limit = file.size.map_or(limit, |s| s.min(limit));
        let fetched = self.download_file(&acc, &file.url, target, limit).await;
        let (updated, result) = match fetched {
            Ok(path) => (
                self.inner
                    .store
                    .attachment_fetched(acc.id, message_id, &path.to_string_lossy())?,
                Ok(()),
            ),
            Err(e @ Error::FileTooLarge { .. }) if !asked => return Err(e),
            Err(e) => {
                let why = match &e {
                    Error::Upload(why) => why.clone(),
                    e => e.to_string(),
                };
                (
                    self.inner
                        .store
                        .attachment_failed(acc.id, message_id, &why)?,
                    Err(e),
                )
            }
        };
        if let Some(rec) = &updated {
            self.emit(Event::MessageUpdated {
                account: acc.jid.clone(),
                message: rec.clone(),
            });
        }
        result?;
        updated.ok_or_else(|| Error::Upload("the message is gone".into()))
    }

    /// A picture to show for a message's file: a thumbnail of the file when it is on this
    /// machine (made once, then kept in the profile's `thumbnails` folder), else the small
    /// preview its sender included, else `None`. PNG (or the sender's format) bytes.
    pub async fn attachment_thumbnail(
        &self,
        account: &str,
        message_id: i64,
    ) -> Result<Option<Vec<u8>>> {
        let acc = self.inner.store.account(parse_bare(account)?.as_str())?;
        let Some(file) = self
            .inner
            .store
            .message(acc.id, message_id)?
            .and_then(|m| m.attachment)
        else {
            return Ok(None);
        };
        let cached = self
            .thumbnails_dir()
            .join(format!("{}-{message_id}.png", acc.id));
        if let (true, Some(local)) = (file.is_image(), file.local_path.clone()) {
            let dir = self.thumbnails_dir();
            let made = tokio::task::spawn_blocking(move || thumbnail_of(&local, &cached, &dir))
                .await
                .map_err(|e| Error::Upload(e.to_string()))?;
            match made {
                Ok(Some(png)) => return Ok(Some(png)),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "cannot make a thumbnail"),
            }
        }
        Ok(self.inner.store.attachment_preview(acc.id, message_id)?)
    }

    /// Resumes interrupted uploads and enables push again when an account comes online
    /// (push: after a fresh session only), and fetches pictures as they arrive
    /// ([`Client::set_auto_download`]).
    pub(super) fn watch_files(&self) {
        if self.inner.watching_uploads.swap(true, Ordering::SeqCst) {
            return;
        }
        let mut rx = self.events();
        let inner = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                let event = match rx.recv().await {
                    Ok(e) => e,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                };
                let Some(inner) = inner.upgrade() else { return };
                let client = Client { inner };
                match event {
                    Event::Connection {
                        account,
                        state: ConnectionState::Online { resumed },
                    } => {
                        tokio::spawn(async move {
                            // A fresh session: push may have been forgotten by the server.
                            if !resumed {
                                client.reenable_push(&account).await;
                            }
                            client.resume_uploads(&account).await;
                        });
                    }
                    Event::Message {
                        account, message, ..
                    } => {
                        let limit = client.inner.auto_download.load(Ordering::Relaxed);
                        let Ok(acc) = client.inner.store.account(&account) else {
                            continue;
                        };
                        if wants_auto_download(&client, &acc, &message, limit) {
                            tokio::spawn(async move {
                                // Failures are on the message (shown with it).
                                if let Err(e) =
                                    client.fetch(&account, message.id, limit, false).await
                                {
                                    tracing::info!(error = %e, "picture not fetched");
                                }
                            });
                        }
                    }
                    _ => {}
                }
            }
        });
    }
}

/// Whether a new message's file is fetched without asking: a picture, not too big as
/// announced, from a contact we share presence with (or our own, from another device).
fn wants_auto_download(
    client: &Client,
    acc: &AccountRecord,
    message: &MessageRecord,
    limit: u64,
) -> bool {
    let Some(file) = &message.attachment else {
        return false;
    };
    let picture = |a: &Attachment| {
        a.is_image() && !a.url.is_empty() && a.local_path.is_none() && a.error.is_none()
    };
    if limit == 0 || !picture(file) || file.size.is_some_and(|s| s > limit) {
        return false;
    }
    if message.outgoing {
        return true;
    }
    message.kind == MessageKind::Chat
        && client
            .inner
            .store
            .contact(acc.id, &message.peer)
            .ok()
            .flatten()
            .is_some_and(|c| matches!(c.subscription, Subscription::Both | Subscription::To))
}

/// The cached thumbnail of `local`, made first if needed. `None` if it is not a picture
/// we can read.
fn thumbnail_of(local: &str, cached: &Path, dir: &Path) -> std::io::Result<Option<Vec<u8>>> {
    if let Ok(png) = std::fs::read(cached) {
        return Ok(Some(png));
    }
    let bytes = match std::fs::read(local) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some((png, _, _)) = crate::services::media::thumbnail(&bytes) else {
        return Ok(None);
    };
    std::fs::create_dir_all(dir)?;
    // Written aside and renamed: a half-written thumbnail is never read.
    let part = dir.join(format!(".{}.part", crate::proto::new_id()));
    std::fs::write(&part, &png)?;
    std::fs::rename(&part, cached)?;
    Ok(Some(png))
}

/// Marks a message's file as being fetched for as long as it lives.
struct RunningFetch<'a> {
    client: &'a Client,
    message_id: i64,
}

impl<'a> RunningFetch<'a> {
    fn claim(client: &'a Client, message_id: i64) -> Option<Self> {
        let mut running = client
            .inner
            .fetches_running
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        running
            .insert(message_id)
            .then_some(RunningFetch { client, message_id })
    }
}

impl Drop for RunningFetch<'_> {
    fn drop(&mut self) {
        self.client
            .inner
            .fetches_running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.message_id);
    }
}
