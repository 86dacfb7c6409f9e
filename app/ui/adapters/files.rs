//! Shared files in the open conversation (part of `ChatAdapter`): attaching a file (the
//! desktop's file chooser, a file dropped on the window, or a typed path), the file waiting
//! in the composer, sending it; in the timeline, pictures inline (thumbnails made by the
//! core, or the sender's small preview until the file is here), upload and download
//! progress, cancel, download, open, save, and the picture viewer.
//!
//! Slint has no file dialog, so the chooser is `zenity` or `kdialog` when installed; its
//! winit backend does not turn files dropped on the window into Slint events, so the
//! desktop app hands them over from winit ([`dropped`]).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use slint::{ComponentHandle as _, Image, Model as _, Rgba8Pixel, SharedPixelBuffer};
use starling_core::store::MessageRecord;

use super::{s, toast};
use crate::ui::controllers::rooms::ConvKind;
use crate::ui::{
    AppWindow, ChatAdapter, FeedAdapter, MessageItem, Ui, Viewer, background, blocking, on_ui,
};

/// The longest side of a picture in the viewer (bigger ones are scaled down to show).
const VIEWER_SIDE: u32 = 2048;
/// Pictures bigger than this are not opened in the viewer (they open in another app).
const VIEWER_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// The most a click downloads.
const FETCH_LIMIT: u64 = starling_core::DEFAULT_DOWNLOAD_LIMIT;

/// What the file bubbles need besides the messages.
#[derive(Default)]
pub struct Files {
    /// Upload or download progress per (account, message), 0 to 1.
    progress: HashMap<(String, i64), f32>,
    /// Pictures per (account, message), and whether each was made from the file itself
    /// (not the sender's small preview).
    thumbs: HashMap<(String, i64), (Image, bool)>,
    /// Thumbnails asked for and not back yet.
    asked: HashSet<(String, i64)>,
    /// Files whose fetch the user started by clicking a picture: shown once here.
    view_when_fetched: HashSet<(String, i64)>,
    /// Waits for typing in the attachment field to pause before checking the file.
    check_timer: slint::Timer,
    /// The file the viewer shows (what its Open and Save act on).
    viewing: Option<Viewing>,
}

/// A picture in the viewer: a file on this machine, or one fetched into memory (a post's).
#[derive(Clone)]
enum Viewing {
    Local { path: PathBuf, name: String },
    Fetched { name: String, bytes: Arc<Vec<u8>> },
}

impl Files {
    /// Sets a file bubble's picture and progress.
    pub fn decorate(&self, account: &str, item: &mut MessageItem) {
        if !item.file {
            return;
        }
        let key = (account.to_owned(), i64::from(item.id));
        if let Some((img, _)) = self.thumbs.get(&key) {
            item.thumbnail = img.clone();
        }
        item.file_progress = self.progress.get(&key).copied().unwrap_or(-1.0);
    }
}

pub(super) fn install(ui: &Rc<Ui>, w: &AppWindow) {
    let g = w.global::<ChatAdapter>();
    let u = ui.clone();
    g.on_attach(move || choose(&u));
    let u = ui.clone();
    g.on_attachment_path_edited(move |_| {
        let u2 = u.clone();
        u.state.borrow().chat.files.check_timer.start(
            slint::TimerMode::SingleShot,
            Duration::from_millis(300),
            move || check_attachment(&u2),
        );
    });
    let u = ui.clone();
    g.on_send_attachment(move || send_attachment(&u));
    let u = ui.clone();
    g.on_fetch_file(move |id| fetch(&u, i64::from(id), false));
    let u = ui.clone();
    g.on_open_file(move |id| open(&u, i64::from(id)));
    let u = ui.clone();
    g.on_save_file(move |id| save(&u, i64::from(id)));
    let u = ui.clone();
    g.on_cancel_upload(move |id| cancel(&u, i64::from(id)));
    let u = ui.clone();
    g.on_view_image(move |id| view(&u, i64::from(id)));
    let v = w.global::<Viewer>();
    let u = ui.clone();
    v.on_open_file(move || {
        let viewing = u.state.borrow().chat.files.viewing.clone();
        match viewing {
            Some(Viewing::Local { path, .. }) => open_path(&u, path),
            Some(Viewing::Fetched { name, bytes }) => {
                let dir = u.client.files_dir();
                blocking(
                    &u,
                    move |_| {
                        std::fs::create_dir_all(&dir)?;
                        write_unused(&mut bytes.as_slice(), &dir, &name)
                    },
                    |ui, w, r| match r {
                        Ok(path) => open_path(ui, path),
                        Err(e) => toast(ui, w, format!("Cannot open the picture: {e}")),
                    },
                );
            }
            None => {}
        }
    });
    let u = ui.clone();
    v.on_save_file(move || {
        let viewing = u.state.borrow().chat.files.viewing.clone();
        match viewing {
            Some(Viewing::Local { path, name }) => save_path(&u, path, name),
            Some(Viewing::Fetched { name, bytes }) => {
                save_with(&u, move |dir| {
                    write_unused(&mut bytes.as_slice(), dir, &name)
                });
            }
            None => {}
        }
    });
}

/// The open conversation and a loaded message of it.
fn message(ui: &Ui, id: i64) -> Option<(String, MessageRecord)> {
    let st = ui.state.borrow();
    let t = st.timeline.as_ref()?;
    Some((t.account.clone(), t.message(id)?.clone()))
}

fn local_path(m: &MessageRecord) -> Option<PathBuf> {
    m.attachment
        .as_ref()
        .and_then(|a| a.local_path.as_deref())
        .map(PathBuf::from)
}

/// Sets the row of message `id` again (its picture or progress changed).
fn refresh_row(ui: &Rc<Ui>, account: &str, id: i64) {
    let st = ui.state.borrow();
    let Some(t) = st.timeline.as_ref().filter(|t| t.account == account) else {
        return;
    };
    let Some(i) = t.index_of(id) else { return };
    let Some(mut item) = st.chat.rows.row_data(i) else {
        return;
    };
    st.chat.files.decorate(account, &mut item);
    st.chat.rows.set(i, item);
}

/// Progress of a file message's upload or download.
pub(super) fn on_progress(
    ui: &Rc<Ui>,
    _w: &AppWindow,
    account: &str,
    id: i64,
    done: u64,
    total: Option<u64>,
) {
    let fraction = match total {
        Some(t) if t > 0 => (done as f64 / t as f64).clamp(0.0, 1.0) as f32,
        // Unknown size: show that something moves.
        _ => 0.5,
    };
    ui.state
        .borrow_mut()
        .chat
        .files
        .progress
        .insert((account.to_owned(), id), fraction);
    refresh_row(ui, account, id);
}

/// A file message changed (uploaded, fetched, failed): its transfer is over; a fetched
/// picture gets its real thumbnail, and opens if the user asked to see it.
pub(super) fn on_update(ui: &Rc<Ui>, account: &str, m: &MessageRecord) {
    let key = (account.to_owned(), m.id);
    let fetched = local_path(m).is_some();
    let view_now = {
        let mut st = ui.state.borrow_mut();
        let files = &mut st.chat.files;
        files.progress.remove(&key);
        if fetched && files.thumbs.get(&key).is_some_and(|(_, full)| !full) {
            files.thumbs.remove(&key);
        }
        let failed = m.attachment.as_ref().is_some_and(|a| a.error.is_some());
        if failed {
            files.view_when_fetched.remove(&key);
        }
        fetched && files.view_when_fetched.remove(&key)
    };
    if view_now {
        view(ui, m.id);
    }
}

/// Asks the core for the pictures of the loaded file messages that have none yet.
pub(super) fn want_thumbnails(ui: &Rc<Ui>) {
    let wanted: Vec<(String, i64, bool)> = {
        let mut st = ui.state.borrow_mut();
        let st = &mut *st;
        let Some(t) = st.timeline.as_ref() else {
            return;
        };
        let files = &mut st.chat.files;
        let mut wanted = Vec::new();
        for id in t.file_message_ids() {
            let Some(m) = t.message(id) else { continue };
            let Some(a) = &m.attachment else { continue };
            let full = a.is_image() && a.local_path.is_some();
            let key = (t.account.clone(), id);
            if (full || a.has_preview)
                && !files.thumbs.contains_key(&key)
                && files.asked.insert(key.clone())
            {
                wanted.push((key.0, id, full));
            }
        }
        wanted
    };
    for (account, id, full) in wanted {
        let client = ui.client.clone();
        let a = account.clone();
        background(
            ui,
            async move {
                let bytes = client.attachment_thumbnail(&a, id).await;
                let decoded = match bytes {
                    Ok(Some(b)) => tokio::task::spawn_blocking(move || decode(&b, 640))
                        .await
                        .ok()
                        .flatten(),
                    Ok(None) => None,
                    Err(e) => {
                        tracing::debug!(error = %e, "no thumbnail");
                        None
                    }
                };
                (decoded, full)
            },
            move |ui, _w, (decoded, full)| {
                let key = (account.clone(), id);
                {
                    let mut st = ui.state.borrow_mut();
                    let files = &mut st.chat.files;
                    files.asked.remove(&key);
                    match decoded {
                        Some(px) => {
                            files.thumbs.insert(key, (Image::from_rgba8(px), full));
                        }
                        // Nothing to show: do not ask again this session.
                        None => {
                            files.thumbs.insert(key, (Image::default(), true));
                        }
                    }
                }
                refresh_row(ui, &account, id);
            },
        );
    }
}

/// Decodes a picture (EXIF orientation applied), scaled down to `side` at most.
fn decode(bytes: &[u8], side: u32) -> Option<SharedPixelBuffer<Rgba8Pixel>> {
    let mut decoder = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .ok()?
        .into_decoder()
        .ok()?;
    use image::ImageDecoder as _;
    let orientation = decoder.orientation().ok();
    let mut img = image::DynamicImage::from_decoder(decoder).ok()?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    if img.width() > side || img.height() > side {
        img = img.thumbnail(side, side);
    }
    let rgba = img.to_rgba8();
    Some(SharedPixelBuffer::clone_from_slice(
        rgba.as_raw(),
        rgba.width(),
        rgba.height(),
    ))
}

/// Downloads a message's file (the user clicked, or wants to view it).
fn fetch(ui: &Rc<Ui>, id: i64, then_view: bool) {
    let Some((account, _)) = message(ui, id) else {
        return;
    };
    {
        let mut st = ui.state.borrow_mut();
        let key = (account.clone(), id);
        if then_view {
            st.chat.files.view_when_fetched.insert(key.clone());
        }
        st.chat.files.progress.insert(key, 0.0);
    }
    refresh_row(ui, &account, id);
    let client = ui.client.clone();
    let a = account.clone();
    background(
        ui,
        async move { client.fetch_attachment(&a, id, FETCH_LIMIT).await },
        move |ui, w, r| {
            if let Err(e) = r {
                // The reason is on the message too; the toast says it now.
                ui.state
                    .borrow_mut()
                    .chat
                    .files
                    .progress
                    .remove(&(account.clone(), id));
                refresh_row(ui, &account, id);
                toast(ui, w, format!("Cannot download the file: {e}"));
            }
        },
    );
}

/// Opens a picture in the viewer: fetched first when it is not here yet.
fn view(ui: &Rc<Ui>, id: i64) {
    let Some((path, title)) = here_or_fetch(ui, id, true) else {
        return;
    };
    let viewing = Viewing::Local {
        path: path.clone(),
        name: title.clone(),
    };
    blocking(
        ui,
        move |_| {
            let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if len > VIEWER_MAX_BYTES {
                return Err("the picture is too large to show here; open it instead".to_owned());
            }
            let bytes = std::fs::read(&path).map_err(|e| format!("cannot read it: {e}"))?;
            decode(&bytes, VIEWER_SIDE)
                .ok_or_else(|| "it is not a picture Starling can show".to_owned())
        },
        move |ui, w, r| show_viewer(ui, w, r, title, viewing),
    );
}

/// Opens the viewer on a decoded picture (or says why not).
fn show_viewer(
    ui: &Rc<Ui>,
    w: &AppWindow,
    decoded: Result<SharedPixelBuffer<Rgba8Pixel>, String>,
    title: String,
    viewing: Viewing,
) {
    match decoded {
        Ok(px) => {
            ui.state.borrow_mut().chat.files.viewing = Some(viewing);
            let v = w.global::<Viewer>();
            v.set_image(Image::from_rgba8(px));
            v.set_title(s(&title));
            v.set_open(true);
        }
        Err(e) => toast(ui, w, format!("Cannot show {title}: {e}")),
    }
}

/// A post's picture (an image or an attachment that is one) in the viewer: fetched into
/// memory with the account's TLS trust, at most [`VIEWER_MAX_BYTES`].
pub(super) fn view_remote(ui: &Rc<Ui>, account: String, url: String, title: String) {
    let client = ui.client.clone();
    let name = starling_core::safe_file_name(&url);
    background(
        ui,
        async move {
            let bytes = client
                .download(&account, &url, VIEWER_MAX_BYTES)
                .await
                .map_err(|e| e.to_string())?;
            let bytes = Arc::new(bytes);
            let b = bytes.clone();
            let px = tokio::task::spawn_blocking(move || decode(&b, VIEWER_SIDE))
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| "it is not a picture Starling can show".to_owned())?;
            Ok((px, bytes))
        },
        move |ui, w, r: Result<_, String>| {
            let (decoded, viewing) = match r {
                Ok((px, bytes)) => (
                    Ok(px),
                    Viewing::Fetched {
                        name: name.clone(),
                        bytes,
                    },
                ),
                Err(e) => (
                    Err(e),
                    Viewing::Fetched {
                        name: name.clone(),
                        bytes: Arc::default(),
                    },
                ),
            };
            show_viewer(ui, w, decoded, title, viewing);
        },
    );
}

/// Kinds of files never handed to the desktop to "open" (it might run them): their folder
/// opens instead.
const RUNNABLE: &[&str] = &[
    "desktop",
    "sh",
    "bash",
    "run",
    "bin",
    "appimage",
    "exe",
    "bat",
    "cmd",
    "com",
    "msi",
    "jar",
    "py",
    "pl",
    "rb",
    "deb",
    "rpm",
    "flatpakref",
];

/// Opens a fetched file with the desktop's default application.
fn open(ui: &Rc<Ui>, id: i64) {
    if let Some((path, _)) = here_or_fetch(ui, id, false) {
        open_path(ui, path);
    }
}

/// A message's file on this machine with its name; when it is not here yet, its fetch
/// starts instead (and it shows in the viewer once here, with `then_view`).
fn here_or_fetch(ui: &Rc<Ui>, id: i64, then_view: bool) -> Option<(PathBuf, String)> {
    let (_, m) = message(ui, id)?;
    let Some(path) = local_path(&m) else {
        fetch(ui, id, then_view);
        return None;
    };
    let name = m
        .attachment
        .as_ref()
        .map(|a| a.name.clone())
        .unwrap_or_default();
    Some((path, name))
}

/// Hands a file on this machine to the desktop's default application (its folder, for
/// kinds that could run).
fn open_path(ui: &Rc<Ui>, path: PathBuf) {
    let runnable = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| RUNNABLE.contains(&e.to_ascii_lowercase().as_str()));
    let target = if runnable {
        path.parent().map(Path::to_path_buf).unwrap_or(path)
    } else {
        path
    };
    match std::process::Command::new("xdg-open").arg(&target).spawn() {
        Ok(mut child) => {
            std::thread::spawn(move || {
                if let Err(e) = child.wait() {
                    tracing::debug!(error = %e, "xdg-open");
                }
            });
        }
        Err(e) => {
            if let Some(w) = ui.window.upgrade() {
                toast(
                    ui,
                    &w,
                    format!(
                        "Cannot open it (xdg-open: {e}); it is in {}",
                        target.display()
                    ),
                );
            }
        }
    }
}

/// Copies a fetched file into the user's Downloads folder (under a name not taken yet).
fn save(ui: &Rc<Ui>, id: i64) {
    if let Some((path, name)) = here_or_fetch(ui, id, false) {
        save_path(ui, path, name);
    }
}

/// Copies a file into the user's Downloads folder as `name` (made safe).
fn save_path(ui: &Rc<Ui>, path: PathBuf, name: String) {
    save_with(ui, move |dir| {
        let mut src = std::fs::File::open(&path)?;
        write_unused(&mut src, dir, &name)
    });
}

/// Writes into the user's Downloads folder (`write` gets the folder) and says where.
fn save_with(ui: &Rc<Ui>, write: impl FnOnce(&Path) -> std::io::Result<PathBuf> + Send + 'static) {
    blocking(
        ui,
        move |_| {
            let dir = directories::UserDirs::new()
                .and_then(|d| d.download_dir().map(Path::to_path_buf))
                .or_else(|| std::env::var_os("HOME").map(PathBuf::from))
                .ok_or_else(|| std::io::Error::other("no Downloads folder"))?;
            std::fs::create_dir_all(&dir)?;
            write(&dir)
        },
        move |ui, w, r| match r {
            Ok(saved) => toast(ui, w, format!("Saved to {}", saved.display())),
            Err(e) => toast(ui, w, format!("Cannot save the file: {e}")),
        },
    );
}

/// Writes `src` into `dir` as `name` (made safe), or "stem (1).ext" and so on: never
/// overwrites.
fn write_unused(src: &mut impl std::io::Read, dir: &Path, name: &str) -> std::io::Result<PathBuf> {
    let name = starling_core::proto::upload::safe_name(name);
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s.to_owned(), format!(".{e}")),
        _ => (name.clone(), String::new()),
    };
    for n in 0..1000 {
        let candidate = if n == 0 {
            dir.join(&name)
        } else {
            dir.join(format!("{stem} ({n}){ext}"))
        };
        match std::fs::File::options()
            .write(true)
            .create_new(true)
            .open(&candidate)
        {
            Ok(mut out) => {
                if let Err(e) = std::io::copy(src, &mut out) {
                    drop(out);
                    if let Err(rm) = std::fs::remove_file(&candidate) {
                        tracing::warn!(error = %rm, "cannot remove a partial copy");
                    }
                    return Err(e);
                }
                return Ok(candidate);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("too many files of that name"))
}

fn cancel(ui: &Rc<Ui>, id: i64) {
    let Some((account, _)) = message(ui, id) else {
        return;
    };
    blocking(
        ui,
        move |client| client.cancel_upload(&account, id),
        |ui, w, r| {
            if let Err(e) = r {
                toast(ui, w, format!("Cannot cancel: {e}"));
            }
        },
    );
}

/// The attach button: the desktop's file chooser, else the path field.
fn choose(ui: &Rc<Ui>) {
    if let Some(w) = ui.window.upgrade() {
        let g = w.global::<ChatAdapter>();
        g.set_attaching(true);
    }
    background(
        ui,
        choose_file("Choose a file to send", None),
        |ui, w, r| {
            let g = w.global::<ChatAdapter>();
            match r {
                Ok(Some(path)) => {
                    g.set_attachment_path(s(path));
                    check_attachment(ui);
                }
                // Cancelled: the field stays for a typed path only if one is there.
                Ok(None) => {
                    if g.get_attachment_path().is_empty() {
                        g.set_attaching(false);
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "no file chooser");
                    g.set_attachment_info(s(
                        "No file chooser (zenity or kdialog) was found: type the path of the file, or drop it on the window.",
                    ));
                    g.set_attachment_ok(false);
                }
            }
        },
    );
}

/// A file dropped on the window (from winit): in the Feed, it is attached to the post
/// being written; elsewhere it waits in the open conversation's composer.
pub fn dropped(ui: &Rc<Ui>, path: &Path) {
    let Some(w) = ui.window.upgrade() else { return };
    if w.global::<crate::ui::Shell>().get_pane() == crate::ui::Pane::Feed {
        add_post_attachment(ui, path.display().to_string());
        return;
    }
    if ui.state.borrow().open_conversation().is_none() {
        toast(
            ui,
            &w,
            "Open a conversation first, then drop the file on it.",
        );
        return;
    }
    let g = w.global::<ChatAdapter>();
    g.set_attaching(true);
    g.set_attachment_path(s(path.display().to_string()));
    check_attachment(ui);
}

/// What the field names, checked off the UI thread: a readable file, its size, and
/// whether it goes encrypted.
fn check_attachment(ui: &Rc<Ui>) {
    let Some(w) = ui.window.upgrade() else { return };
    let g = w.global::<ChatAdapter>();
    let text = g.get_attachment_path().to_string();
    let path = expand(&text);
    let lock = ui.state.borrow().chat.encryption_name();
    if text.trim().is_empty() {
        g.set_attachment_info(Default::default());
        g.set_attachment_ok(false);
        return;
    }
    blocking(
        ui,
        move |_| describe_file(&path),
        move |_, w, r| {
            let g = w.global::<ChatAdapter>();
            if g.get_attachment_path() != text.as_str() {
                return; // typed on since
            }
            let (ok, info) = match (r, &lock) {
                (Ok(label), Some(e)) => (true, format!("{label} — sent encrypted ({e})")),
                (Ok(label), None) => (true, label),
                (Err(why), _) => (false, format!("Cannot send it: {why}")),
            };
            g.set_attachment_ok(ok);
            g.set_attachment_info(s(info));
        },
    );
}

/// "name · 1.4 MB" for a readable file, else why it cannot be sent (off the UI thread).
fn describe_file(path: &Path) -> Result<String, String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a file", path.display()));
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(format!(
        "{name} · {}",
        starling_core::human_size(meta.len())
    ))
}

/// A typed path, with `~/` for the home folder.
fn expand(text: &str) -> PathBuf {
    let t = text.trim();
    match (t.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(t),
    }
}

/// Sends the file waiting in the composer. It shows at once as a pending bubble with its
/// progress; why it could not be sent shows where a message's would.
fn send_attachment(ui: &Rc<Ui>) {
    let Some(w) = ui.window.upgrade() else { return };
    let Some((account, peer)) = ui
        .state
        .borrow()
        .open_conversation()
        .map(|(a, p)| (a.to_owned(), p.to_owned()))
    else {
        return;
    };
    let g = w.global::<ChatAdapter>();
    let path = expand(&g.get_attachment_path());
    g.set_attaching(false);
    g.set_attachment_path(Default::default());
    g.set_attachment_info(Default::default());
    g.set_attachment_ok(false);
    let kind = super::chat::kind_of(ui, &account, &peer);
    let client = ui.client.clone();
    let (a, p) = (account.clone(), peer.clone());
    background(
        ui,
        async move {
            match kind {
                ConvKind::Chat => client.send_file(&a, &p, &path).await,
                ConvKind::Room => client.send_room_file(&a, &p, &path).await,
                ConvKind::Private => Err(starling_core::Error::Upload(
                    "files cannot be sent in private messages in a room; send it in the room \
                     or in a chat"
                        .into(),
                )),
            }
        },
        move |ui, w, r| {
            if let Err(e) = r {
                super::chat::show_send_error(ui, w, &account, &peer, &e);
            }
        },
    );
}

/// Asks the desktop's file chooser for a file (zenity, else kdialog). `filter` is a zenity
/// filter and a kdialog one ("Images | *.png *.jpg", "image/png image/jpeg"). `Ok(None)`
/// when the user cancelled; an error when there is no chooser.
pub(super) async fn choose_file(
    title: &'static str,
    filter: Option<(&'static str, &'static str)>,
) -> std::io::Result<Option<String>> {
    let mut zenity = tokio::process::Command::new("zenity");
    zenity.args(["--file-selection", "--title", title]);
    if let Some((z, _)) = filter {
        zenity.args(["--file-filter", z]);
    }
    let out = match zenity.kill_on_drop(true).output().await {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let start = std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."));
            let mut kdialog = tokio::process::Command::new("kdialog");
            kdialog
                .arg("--title")
                .arg(title)
                .arg("--getopenfilename")
                .arg(start);
            if let Some((_, k)) = filter {
                kdialog.arg(k);
            }
            kdialog.kill_on_drop(true).output().await
        }
        other => other,
    }?;
    Ok(out
        .status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|p| !p.is_empty()))
}

// ---- files attached to a post ----

pub(super) fn install_post_attachments(ui: &Rc<Ui>, w: &AppWindow) {
    let g = w.global::<FeedAdapter>();
    let u = ui.clone();
    g.on_attach(move || {
        if let Some(w) = u.window.upgrade() {
            w.global::<FeedAdapter>().set_attaching(true);
        }
        background(
            &u,
            choose_file("Choose a file to attach", None),
            |ui, w, r| {
                let g = w.global::<FeedAdapter>();
                match r {
                    Ok(Some(path)) => add_post_attachment(ui, path),
                    Ok(None) => {
                        if g.get_attachment_path().is_empty() {
                            g.set_attaching(false);
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "no file chooser");
                        g.set_publish_error(s(
                            "No file chooser (zenity or kdialog) was found: type the path of the file.",
                        ));
                    }
                }
            },
        );
    });
    let u = ui.clone();
    g.on_add_attachment(move |path| add_post_attachment(&u, path.to_string()));
    let u = ui.clone();
    g.on_remove_attachment(move |i| {
        let Ok(i) = usize::try_from(i) else { return };
        {
            let mut st = u.state.borrow_mut();
            if i < st.feed.attachments.len() {
                st.feed.attachments.remove(i);
            }
        }
        if let Some(w) = u.window.upgrade() {
            show_post_attachments(&u, &w);
        }
    });
}

/// Adds a file to the post being written, if it is a readable file.
fn add_post_attachment(ui: &Rc<Ui>, text: String) {
    let path = expand(&text);
    blocking(
        ui,
        move |_| describe_file(&path).map(|label| (path, label)),
        |ui, w, r| {
            let g = w.global::<FeedAdapter>();
            match r {
                Ok(file) => {
                    ui.state.borrow_mut().feed.attachments.push(file);
                    g.set_attaching(false);
                    g.set_attachment_path(Default::default());
                    g.set_publish_error(Default::default());
                    show_post_attachments(ui, w);
                }
                Err(e) => g.set_publish_error(s(format!("Cannot attach: {e}."))),
            }
        },
    );
}

pub(super) fn show_post_attachments(ui: &Rc<Ui>, w: &AppWindow) {
    let labels: Vec<slint::SharedString> = ui
        .state
        .borrow()
        .feed
        .attachments
        .iter()
        .map(|(_, l)| s(l))
        .collect();
    w.global::<FeedAdapter>()
        .set_attachments(slint::ModelRc::new(slint::VecModel::from(labels)));
}

/// Uploads a post's files (never encrypted: posts are not) and returns them as Atom
/// enclosures; progress shows under the composer.
pub(super) async fn upload_for_post(
    client: &starling_core::Client,
    account: &str,
    files: &[PathBuf],
) -> starling_core::Result<Vec<starling_core::proto::microblog::Enclosure>> {
    let mut events = client.events();
    let progress = tokio::spawn(async move {
        while let Ok(ev) = events.recv().await {
            if let starling_core::Event::UploadProgress {
                message: None,
                name,
                sent,
                total,
                ..
            } = ev
            {
                let pct = (sent * 100).checked_div(total).unwrap_or(100);
                on_ui(move |_, w| {
                    w.global::<FeedAdapter>()
                        .set_publish_status(s(format!("Uploading {name}… {pct}%")));
                });
            }
        }
    });
    let mut enclosures = Vec::new();
    let mut result = Ok(());
    for path in files {
        match client.upload_file(account, path, false).await {
            Ok(up) => enclosures.push(up.enclosure()),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    progress.abort();
    result.map(|()| enclosures)
}
