//! File sharing on the `Client` (issue 8): the account's upload service (XEP-0363), uploads
//! with progress — encrypted (XEP-0454) in OMEMO conversations — file messages, and
//! downloads (aesgcm:// links decrypted, sizes capped).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use jid::Jid;
use serde::Serialize;
use xmpp_parsers::disco::{DiscoInfoQuery, DiscoInfoResult, DiscoItemsQuery, DiscoItemsResult};

use super::{Client, Error, Event, Result, parse_bare, parse_contact};
use crate::crypto::aesgcm::{self, FileKey};
pub use crate::proto::upload::safe_file_name;
use crate::proto::upload::{self as xml, UploadService};
use crate::services::upload::{self as service, Source, UploadError};
use crate::store::{AccountRecord, MessageKind, MessageRecord, NewUpload, PendingUpload};

/// The most a download may be unless the caller says otherwise (bytes).
pub const DEFAULT_DOWNLOAD_LIMIT: u64 = 100 * 1024 * 1024;

impl From<UploadError> for Error {
    fn from(e: UploadError) -> Self {
        match e {
            UploadError::TooLarge { limit } => Error::FileTooLarge { limit },
            e => Error::Upload(e.to_string()),
        }
    }
}

impl From<aesgcm::Error> for Error {
    fn from(e: aesgcm::Error) -> Self {
        Error::Upload(e.to_string())
    }
}

/// A file on the account's upload service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UploadedFile {
    /// The link to send: https, or aesgcm:// with the key for an encrypted file.
    pub url: String,
    /// The file's own name (an encrypted file is stored under a random one).
    pub name: String,
    pub size: u64,
    pub media_type: String,
    pub encrypted: bool,
    /// An image's size in pixels.
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// A tiny PNG of an image, to send along in plaintext messages.
    #[serde(skip)]
    pub preview: Option<Vec<u8>>,
}

impl UploadedFile {
    /// The file as a post's attachment (an Atom `<link rel='enclosure'/>`).
    pub fn enclosure(&self) -> crate::proto::microblog::Enclosure {
        crate::proto::microblog::Enclosure {
            href: self.url.clone(),
            media_type: Some(self.media_type.clone()),
            length: Some(self.size),
            title: Some(self.name.clone()),
        }
    }

    /// What the file's message announces and stores about it.
    fn attachment(&self, local: &Path) -> crate::store::Attachment {
        crate::store::Attachment {
            url: self.url.clone(),
            name: self.name.clone(),
            media_type: Some(self.media_type.clone()),
            size: Some(self.size),
            width: self.width,
            height: self.height,
            has_preview: self.preview.is_some(),
            local_path: Some(local.to_string_lossy().into_owned()),
            error: None,
        }
    }

    fn meta(&self) -> xml::FileMeta {
        xml::FileMeta {
            name: Some(self.name.clone()),
            media_type: Some(self.media_type.clone()),
            size: Some(self.size),
            width: self.width,
            height: self.height,
            thumbnail: self.preview.clone(),
        }
    }
}

impl Client {
    /// The account's upload service and its size limit (XEP-0363 discovery: the server's
    /// items, then each one's disco#info).
    pub async fn upload_service(&self, account: &str) -> Result<UploadService> {
        let acc = self.inner.store.account(parse_bare(account)?.as_str())?;
        self.discover_service(&acc.jid, xml::service)
            .await?
            .ok_or_else(|| {
                let domain = acc.jid.rsplit('@').next().unwrap_or_default();
                Error::Upload(format!(
                    "{domain} offers no file upload (XEP-0363); ask its admin to enable it"
                ))
            })
    }

    /// XEP-0030 service discovery on the account's server: the server itself, then each of
    /// its items, asked for their disco#info; the first that `pick` (given the item's JID and
    /// its info) accepts. Items that do not answer are skipped.
    pub(super) async fn discover_service<T>(
        &self,
        account: &str,
        pick: impl Fn(&str, &DiscoInfoResult) -> Option<T>,
    ) -> Result<Option<T>> {
        let domain = parse_bare(account)?.domain().to_string();
        let mut candidates = vec![domain.clone()];
        if let Some(el) = self
            .iq(
                account,
                domain_jid(&domain)?,
                false,
                DiscoItemsQuery {
                    node: None,
                    rsm: None,
                }
                .into(),
            )
            .await?
            && let Ok(items) = DiscoItemsResult::try_from(el)
        {
            candidates.extend(items.items.into_iter().map(|i| i.jid.to_string()));
        }
        for jid in candidates {
            let info = self
                .iq(
                    account,
                    domain_jid(&jid)?,
                    false,
                    DiscoInfoQuery { node: None }.into(),
                )
                .await;
            if let Ok(Some(el)) = info
                && let Ok(info) = DiscoInfoResult::try_from(el)
                && let Some(found) = pick(&jid, &info)
            {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// Uploads a file to the account's server, encrypted (XEP-0454) when `encrypt`, and
    /// returns its link. Progress goes out as [`Event::UploadProgress`]; a file over the
    /// service's limit is refused before anything is sent.
    pub async fn upload_file(
        &self,
        account: &str,
        path: &Path,
        encrypt: bool,
    ) -> Result<UploadedFile> {
        let acc = self.inner.store.account(parse_bare(account)?.as_str())?;
        let service = self.upload_service(&acc.jid).await?;
        self.upload_with(&acc, &service, path, encrypt, None, &Arc::default())
            .await
    }

    async fn upload_with(
        &self,
        acc: &AccountRecord,
        service: &UploadService,
        path: &Path,
        encrypt: bool,
        message: Option<i64>,
        cancel: &Arc<AtomicBool>,
    ) -> Result<UploadedFile> {
        let size = check_size(service, path, encrypt).await?;
        let name = display_name(path);
        let head = read_head(path).await.map_err(|e| read_error(path, e))?;
        let media_type = sniff(&head, &name);
        // Images go without their metadata (the camera's location above all), turned the
        // way their EXIF said; other files as they are.
        let mut image = None;
        if matches!(
            media_type.as_str(),
            "image/jpeg" | "image/png" | "image/webp"
        ) {
            let bytes = tokio::fs::read(path)
                .await
                .map_err(|e| read_error(path, e))?;
            image = tokio::task::spawn_blocking(move || crate::services::media::prepare(&bytes))
                .await
                .ok()
                .flatten();
        }
        let (width, height, preview) = match &image {
            Some(p) => (Some(p.width), Some(p.height), p.preview.clone()),
            None => (None, None, None),
        };
        let prepared = image.filter(|p| p.stripped).map(|p| {
            tracing::debug!(file = %name, "image metadata removed before upload");
            p.bytes
        });
        let size = prepared.as_ref().map_or(size, |b| b.len() as u64);
        let stored_size = check_limit(service, &name, size, encrypt)?;
        // An encrypted file goes up under a random name (the name is in the encrypted
        // message, not on the server).
        let (slot_name, slot_type) = if encrypt {
            let ext = Path::new(&name)
                .extension()
                .and_then(|e| e.to_str())
                .filter(|e| e.len() <= 8 && e.chars().all(|c| c.is_ascii_alphanumeric()))
                .map(|e| format!(".{e}"))
                .unwrap_or_default();
            (
                format!("{}{ext}", crate::proto::new_id()),
                "application/octet-stream".to_owned(),
            )
        } else {
            (name.clone(), media_type.clone())
        };
        let slot_el = self
            .iq(
                &acc.jid,
                domain_jid(&service.jid)?,
                false,
                xml::request(&slot_name, stored_size, &slot_type),
            )
            .await?
            .ok_or_else(|| Error::Upload("the upload service sent an empty answer".into()))?;
        let slot = xml::parse_slot(&slot_el).map_err(|e| Error::Upload(e.to_string()))?;
        let http = service::client(acc.ca_file.as_deref().map(Path::new))?;
        let progress = self.upload_progress(acc, (message, &name), stored_size, cancel.clone());
        let key = encrypt.then(FileKey::generate);
        let source = match (&key, prepared) {
            (Some(key), Some(bytes)) => Source::Bytes(Arc::new(key.encrypt(&bytes))),
            (Some(key), None) => Source::EncryptedFile(path, key.clone()),
            (None, Some(bytes)) => Source::Bytes(Arc::new(bytes)),
            (None, None) => Source::File(path),
        };
        service::put(&http, &slot, source, stored_size, &slot_type, progress).await?;
        Ok(UploadedFile {
            url: match &key {
                Some(k) => aesgcm::link(&slot.get, k),
                None => slot.get,
            },
            name,
            size,
            media_type,
            encrypted: key.is_some(),
            width,
            height,
            preview,
        })
    }

    /// A bare upload slot, for benchmarks that compare Starling's PUT with curl's.
    #[doc(hidden)]
    pub async fn request_upload_slot(
        &self,
        account: &str,
        name: &str,
        size: u64,
        content_type: &str,
    ) -> Result<xml::Slot> {
        let acc = self.inner.store.account(parse_bare(account)?.as_str())?;
        let service = self.upload_service(&acc.jid).await?;
        let el = self
            .iq(
                &acc.jid,
                domain_jid(&service.jid)?,
                false,
                xml::request(name, size, content_type),
            )
            .await?
            .ok_or_else(|| Error::Upload("the upload service sent an empty answer".into()))?;
        xml::parse_slot(&el).map_err(|e| Error::Upload(e.to_string()))
    }

    fn upload_progress(
        &self,
        acc: &AccountRecord,
        (message, name): (Option<i64>, &str),
        total: u64,
        cancel: Arc<AtomicBool>,
    ) -> service::Progress {
        let (client, account, name) = (self.clone(), acc.jid.clone(), name.to_owned());
        // About 100 reports per file at most, and the last one always.
        let step = (total / 100).max(64 * 1024);
        let reported = std::sync::atomic::AtomicU64::new(0);
        Arc::new(move |sent| {
            let last = reported.load(Ordering::Relaxed);
            if sent == 0 || sent == total || sent >= last + step {
                reported.store(sent, Ordering::Relaxed);
                client.emit(Event::UploadProgress {
                    account: account.clone(),
                    message,
                    name: name.clone(),
                    sent,
                    total,
                });
            }
            !cancel.load(Ordering::Relaxed)
        })
    }

    /// Sends a file to a contact. The file message is stored at once (pending, showing the
    /// file's name) and durably tied to its upload; its link goes out only once the file is
    /// on the server — encrypted in an OMEMO conversation — so a failed upload sends
    /// nothing, and one interrupted by a restart starts again at the next connection (or
    /// fails visibly if the file is gone). Refused before anything is stored when offline,
    /// for a file over the server's limit, and in OTR conversations.
    pub async fn send_file(&self, account: &str, to: &str, path: &Path) -> Result<MessageRecord> {
        let acc = self.inner.store.account(parse_bare(account)?.as_str())?;
        let peer = parse_contact(to)?;
        let encrypt = match self
            .inner
            .store
            .conversation_encryption(acc.id, peer.as_str())?
            .as_deref()
        {
            Some("omemo") => true,
            Some("otr") => {
                return Err(Error::NotEncryptable {
                    jid: peer.to_string(),
                    reason: "files cannot be sent in an OTR conversation (OTR carries text \
                             only); end OTR or switch to OMEMO to share files encrypted"
                        .into(),
                });
            }
            _ => false,
        };
        let sender = format!("{}/{}", acc.jid, acc.resource);
        self.queue_file(&acc, (&peer, MessageKind::Chat), &sender, encrypt, path)
            .await
    }

    /// Sends a file to a room we are in, like [`Client::send_file`]. Encrypted rooms are
    /// refused (their files would have to be encrypted for every member: not done yet).
    pub async fn send_room_file(
        &self,
        account: &str,
        room: &str,
        path: &Path,
    ) -> Result<MessageRecord> {
        let acc = self.account_record(account)?;
        let room = super::rooms::parse_room(room)?;
        let r = self.known_room(&acc, &room)?;
        if self
            .inner
            .store
            .conversation_encryption(acc.id, room.as_str())?
            .is_some()
        {
            return Err(Error::NotEncryptable {
                jid: room.to_string(),
                reason: "files cannot be shared in an encrypted room yet; share it in an \
                         encrypted chat with each member instead"
                    .into(),
            });
        }
        let sender = format!("{room}/{}", r.nick);
        self.queue_file(&acc, (&room, MessageKind::GroupChat), &sender, false, path)
            .await
    }

    /// Stores the pending file message and its upload, then uploads and sends.
    async fn queue_file(
        &self,
        acc: &AccountRecord,
        (peer, kind): (&jid::BareJid, MessageKind),
        sender: &str,
        encrypt: bool,
        path: &Path,
    ) -> Result<MessageRecord> {
        let service = self.upload_service(&acc.jid).await?;
        let size = check_size(&service, path, encrypt).await?;
        let head = read_head(path).await.map_err(|e| read_error(path, e))?;
        // Absolute: a restart may run from another directory.
        let path = std::path::absolute(path).map_err(|e| read_error(path, e))?;
        let name = display_name(&path);
        let media_type = sniff(&head, &name);
        let id = crate::proto::new_id();
        let rec = self.inner.store.queue_upload(
            acc.id,
            &NewUpload {
                peer: peer.as_str(),
                sender,
                id: &id,
                name: &name,
                path: &path.to_string_lossy(),
                encrypt,
                kind,
                media_type: Some(&media_type),
                size,
            },
        )?;
        self.emit(Event::Message {
            account: acc.jid.clone(),
            message: rec.clone(),
            live: true,
        });
        let pending = PendingUpload {
            message_id: rec.id,
            peer: peer.to_string(),
            stanza_id: id,
            path: path.to_string_lossy().into_owned(),
            encrypt,
            kind,
        };
        self.finish_upload(acc, Some(service), pending).await
    }

    /// Uploads the file of a pending file message and queues the message with its link, or
    /// fails the message with why. While offline the upload stays pending (for the next
    /// connection). One run per message at a time.
    async fn finish_upload(
        &self,
        acc: &AccountRecord,
        service: Option<UploadService>,
        up: PendingUpload,
    ) -> Result<MessageRecord> {
        let running = RunningUpload::claim(self, up.message_id)
            .ok_or_else(|| Error::Upload("this file is being uploaded already".into()))?;
        let sent = async {
            let service = match service {
                Some(s) => s,
                None => self.upload_service(&acc.jid).await?,
            };
            let file = self
                .upload_with(
                    acc,
                    &service,
                    Path::new(&up.path),
                    up.encrypt,
                    Some(up.message_id),
                    &running.cancel,
                )
                .await?;
            let peer = parse_bare(&up.peer)?;
            let (stanza, encryption) = if up.encrypt {
                let (s, e) = self
                    .encrypted_stanza(acc, &peer, &up.stanza_id, &file.url)
                    .await?;
                (s, Some(e))
            } else {
                let s = crate::services::chat::file_message_stanza(
                    &peer,
                    up.kind == MessageKind::GroupChat,
                    &up.stanza_id,
                    &file.url,
                    Some(&file.meta()),
                );
                (s, None)
            };
            Ok::<_, Error>((file, stanza, encryption))
        }
        .await;
        let cancelled = running.cancel.load(Ordering::Relaxed);
        drop(running);
        let updated = match sent {
            Ok((file, stanza, encryption)) => {
                // What travels encrypted keeps its preview to itself (it is not sent).
                let preview = file.preview.as_deref().filter(|_| encryption.is_none());
                let mut stored = file.attachment(Path::new(&up.path));
                stored.has_preview = preview.is_some();
                self.inner.store.upload_done(
                    up.message_id,
                    &stored,
                    preview,
                    encryption,
                    &stanza,
                )?
            }
            Err(Error::NotConnected(a)) => return Err(Error::NotConnected(a)),
            Err(e) => {
                let why = match &e {
                    _ if cancelled => CANCELLED.to_owned(),
                    e => e.to_string(),
                };
                if let Some(rec) = self.inner.store.upload_failed(up.message_id, &why)? {
                    self.emit(Event::MessageUpdated {
                        account: acc.jid.clone(),
                        message: rec,
                    });
                }
                return Err(e);
            }
        };
        let rec =
            updated.ok_or_else(|| Error::Upload("this upload was already finished".into()))?;
        self.emit(Event::MessageUpdated {
            account: acc.jid.clone(),
            message: rec.clone(),
        });
        self.flush(&acc.jid).await;
        Ok(rec)
    }

    pub(super) async fn resume_uploads(&self, account: &str) {
        let Ok(acc) = self.inner.store.account(account) else {
            return;
        };
        let pending = match self.inner.store.pending_uploads(acc.id) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(account, error = %e, "cannot read the pending uploads");
                return;
            }
        };
        for up in pending {
            if self.upload_running(up.message_id) {
                continue;
            }
            let id = up.message_id;
            match self.finish_upload(&acc, None, up).await {
                Ok(_) => tracing::info!(account, message = id, "interrupted upload finished"),
                Err(e) => tracing::warn!(account, message = id, error = %e, "interrupted upload"),
            }
        }
    }

    fn upload_running(&self, message_id: i64) -> bool {
        self.inner
            .uploads_running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&message_id)
    }

    /// Cancels the upload of a pending file message: a running upload stops, one waiting
    /// for a connection is dropped; either way the message fails as cancelled and nothing
    /// is sent. False if the message has no upload (already sent or failed).
    pub fn cancel_upload(&self, account: &str, message_id: i64) -> Result<bool> {
        let acc = self.inner.store.account(parse_bare(account)?.as_str())?;
        let running = self
            .inner
            .uploads_running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&message_id)
            .cloned();
        if let Some(flag) = running {
            flag.store(true, Ordering::Relaxed);
            return Ok(true);
        }
        match self.inner.store.upload_failed(message_id, CANCELLED)? {
            Some(rec) => {
                self.emit(Event::MessageUpdated {
                    account: acc.jid,
                    message: rec,
                });
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Downloads a shared file into `dir` under a safe name that is not taken yet ("name
    /// (1).ext"…), streaming (memory stays flat); an aesgcm:// link is decrypted on the way
    /// and the file appears only once its tag verified. Progress goes out as
    /// [`Event::DownloadProgress`]. Returns where it was saved.
    pub async fn download_to(
        &self,
        account: &str,
        url: &str,
        dir: &Path,
        limit: u64,
    ) -> Result<std::path::PathBuf> {
        let acc = self.inner.store.account(parse_bare(account)?.as_str())?;
        let target = Target {
            dir,
            name: safe_file_name(url),
            message: None,
            total: None,
        };
        self.download_file(&acc, url, target, limit).await
    }

    /// Downloads `url` into `target`'s folder (see [`Client::download_to`]).
    pub(super) async fn download_file(
        &self,
        acc: &AccountRecord,
        url: &str,
        target: Target<'_>,
        limit: u64,
    ) -> Result<std::path::PathBuf> {
        let Target {
            dir,
            name,
            message,
            total,
        } = target;
        let name = xml::safe_name(&name);
        let http = service::client(acc.ca_file.as_deref().map(Path::new))?;
        let (https, key) = if xml::is_aesgcm(url) {
            let (https, key) = aesgcm::parse_link(url)?;
            (https, Some(key))
        } else {
            (url.to_owned(), None)
        };
        let part = dir.join(format!(".{}.part", crate::proto::new_id()));
        let save_error =
            |e: std::io::Error| Error::Upload(format!("cannot save into {}: {e}", dir.display()));
        let mut file = tokio::fs::File::create(&part).await.map_err(save_error)?;
        let progress = {
            let (client, account, name) = (self.clone(), acc.jid.clone(), name.clone());
            Arc::new(move |received| {
                client.emit(Event::DownloadProgress {
                    account: account.clone(),
                    message,
                    name: name.clone(),
                    received,
                    total,
                });
                true
            }) as service::Progress
        };
        let sealed_limit = limit + key.as_ref().map_or(0, |_| aesgcm::TAG_LEN as u64);
        let got = service::download_into(
            &http,
            &https,
            key.as_ref(),
            sealed_limit,
            &mut file,
            progress,
        )
        .await;
        drop(file);
        if let Err(e) = got {
            if let Err(rm) = tokio::fs::remove_file(&part).await {
                tracing::warn!(file = %part.display(), error = %rm, "cannot remove a partial download");
            }
            return Err(e.into());
        }
        // Never overwrite: a hard link fails when the name is taken.
        let (stem, ext) = match name.rsplit_once('.') {
            Some((s, e)) if !s.is_empty() => (s.to_owned(), format!(".{e}")),
            _ => (name.clone(), String::new()),
        };
        let mut target = dir.join(&name);
        let mut n = 1;
        let saved = loop {
            match std::fs::hard_link(&part, &target) {
                Ok(()) => break Ok(target),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => {
                    target = dir.join(format!("{stem} ({n}){ext}"));
                    n += 1;
                }
                Err(e) => break Err(save_error(e)),
            }
        };
        if let Err(e) = std::fs::remove_file(&part) {
            tracing::warn!(file = %part.display(), error = %e, "cannot remove a download's temporary file");
        }
        saved
    }

    /// Downloads a shared file (https, or aesgcm:// which is decrypted and checked), at
    /// most `limit` bytes, with the account's TLS trust.
    pub async fn download(&self, account: &str, url: &str, limit: u64) -> Result<Vec<u8>> {
        let acc = self.inner.store.account(parse_bare(account)?.as_str())?;
        let http = service::client(acc.ca_file.as_deref().map(Path::new))?;
        if xml::is_aesgcm(url) {
            let (https, key) = aesgcm::parse_link(url)?;
            let sealed = service::download(&http, &https, limit + aesgcm::TAG_LEN as u64).await?;
            return Ok(key.decrypt(&sealed)?);
        }
        Ok(service::download(&http, url, limit).await?)
    }
}

/// Where a download goes: a folder, the name it wants there (made safe; " (1)" and so on
/// when taken), and the file message it is for.
pub(super) struct Target<'a> {
    pub dir: &'a Path,
    pub name: String,
    pub message: Option<i64>,
    /// The size announced, for progress.
    pub total: Option<u64>,
}

/// Marks a message's upload as running for as long as it lives, with its cancel flag.
struct RunningUpload<'a> {
    client: &'a Client,
    message_id: i64,
    cancel: Arc<AtomicBool>,
}

impl<'a> RunningUpload<'a> {
    fn claim(client: &'a Client, message_id: i64) -> Option<Self> {
        let mut running = client
            .inner
            .uploads_running
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if running.contains_key(&message_id) {
            return None;
        }
        let cancel = Arc::new(AtomicBool::new(false));
        running.insert(message_id, cancel.clone());
        Some(RunningUpload {
            client,
            message_id,
            cancel,
        })
    }
}

impl Drop for RunningUpload<'_> {
    fn drop(&mut self) {
        self.client
            .inner
            .uploads_running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.message_id);
    }
}

/// The error of a file message whose upload the user cancelled.
const CANCELLED: &str = "you cancelled sending this file";

fn read_error(path: &Path, e: std::io::Error) -> Error {
    Error::Upload(format!("cannot read {}: {e}", path.display()))
}

/// The file's size, if it is a file the service takes (its limit counts the encryption
/// tag); a clear refusal otherwise, before anything is sent.
async fn check_size(service: &UploadService, path: &Path, encrypt: bool) -> Result<u64> {
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|e| read_error(path, e))?;
    if !meta.is_file() {
        return Err(Error::Upload(format!("{} is not a file", path.display())));
    }
    let size = meta.len();
    check_limit(service, &display_name(path), size, encrypt)?;
    Ok(size)
}

/// The bytes `size` bytes of `name` take on the server (an encrypted file carries its
/// tag), refused when over the service's limit.
fn check_limit(service: &UploadService, name: &str, size: u64, encrypt: bool) -> Result<u64> {
    let stored = if encrypt {
        size + aesgcm::TAG_LEN as u64
    } else {
        size
    };
    if let Some(limit) = service.max_size.filter(|l| stored > *l) {
        return Err(Error::Upload(format!(
            "{name} is {} but your server takes files up to {}",
            human_size(size),
            human_size(limit)
        )));
    }
    Ok(stored)
}

fn domain_jid(s: &str) -> Result<Jid> {
    Jid::new(s).map_err(|_| Error::InvalidJid(s.to_owned()))
}

/// The name a file is shown and announced under: its own, without any directory.
fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "file".into())
}

/// The first bytes of a file, for sniffing its type.
async fn read_head(path: &Path) -> std::io::Result<Vec<u8>> {
    use tokio::io::AsyncReadExt as _;
    let mut f = tokio::fs::File::open(path).await?;
    let mut head = vec![0u8; 512];
    let n = f.read(&mut head).await?;
    head.truncate(n);
    Ok(head)
}

/// The media type from the content (images by their magic bytes), else from the name.
pub fn sniff(head: &[u8], name: &str) -> String {
    if let Ok(format) = image::guess_format(head) {
        return format.to_mime_type().to_owned();
    }
    if head.starts_with(b"%PDF-") {
        return "application/pdf".into();
    }
    let ext = Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "txt" | "md" | "log" if std::str::from_utf8(head).is_ok() => "text/plain",
        "mp4" | "m4v" => "video/mp4",
        "webm" => "video/webm",
        "mp3" => "audio/mpeg",
        "ogg" | "oga" | "opus" => "audio/ogg",
        "m4a" => "audio/mp4",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
    .into()
}

/// "1.4 MB" and the like.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["bytes", "kB", "MB", "GB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_sniffed_not_trusted() {
        let png = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13];
        assert_eq!(sniff(&png, "holiday.txt"), "image/png");
        assert_eq!(sniff(b"%PDF-1.7 ...", "x.bin"), "application/pdf");
        assert_eq!(sniff(b"hello", "notes.TXT"), "text/plain");
        assert_eq!(
            sniff(&[0xff, 0xfe, 0x00], "notes.txt"),
            "application/octet-stream"
        );
        assert_eq!(sniff(b"whatever", "film.mp4"), "video/mp4");
        assert_eq!(sniff(b"whatever", "noext"), "application/octet-stream");
    }

    #[test]
    fn hostile_names_stay_in_the_folder() {
        assert_eq!(safe_file_name("https://h/f/photo%201.jpg"), "photo 1.jpg");
        assert_eq!(
            safe_file_name("https://h/f/..%2F..%2Fetc%2Fpasswd"),
            "_.._etc_passwd"
        );
        assert_eq!(safe_file_name("https://h/f/%2e%2e"), "download");
        assert_eq!(safe_file_name("https://h/f/.bashrc"), "bashrc");
        assert_eq!(safe_file_name("https://h/f/a%00b%0Ac"), "a_b_c");
        assert_eq!(safe_file_name("https://h/f/C%3A%5Cwin.ini"), "C__win.ini");
        assert_eq!(safe_file_name("aesgcm://h/f/x.png#0011"), "x.png");
        assert_eq!(safe_file_name("https://h/"), "download");
        assert_eq!(
            safe_file_name(&format!("https://h/{}", "a".repeat(300))).len(),
            120
        );
    }

    #[test]
    fn names_and_sizes() {
        assert_eq!(
            display_name(Path::new("/home/a/photo 1.jpg")),
            "photo 1.jpg"
        );
        assert_eq!(display_name(Path::new("/")), "file");
        assert_eq!(human_size(999), "999 bytes");
        assert_eq!(human_size(1_400_000), "1.4 MB");
        assert_eq!(human_size(10_485_760), "10.5 MB");
    }
}
