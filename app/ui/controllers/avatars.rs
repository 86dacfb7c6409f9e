//! People's pictures: which avatar (XEP-0084 / XEP-0153 id, a SHA-1) each person has, the
//! decoded images by id (one small cache shared by every view, so a list does not decode
//! the same picture twice), and the bounded queue of profile fetches from the network.
//!
//! The controller only decides; the adapter (`adapters/avatars.rs`) does the work it asks
//! for on the runtime (store reads, decoding with [`decode`], `Client::fetch_profile`) and
//! reports back. `I` is the decoded image type (a `slint::Image` in the app).

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Cursor;

use image::imageops::FilterType;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder as _, ImageFormat, ImageReader, Limits};

/// Side of the decoded square pictures, in pixels: sharp at the largest place an avatar
/// shows (the profile page's 64 px, 96 px on a 1.5× screen), 36 KiB each.
pub const PICTURE_SIZE: u32 = 96;
/// Decoded pictures kept (about 14 MiB): more than a roster of a few hundred people shows.
const MAX_PICTURES: usize = 400;
/// Profile fetches from the network running at once.
pub const MAX_FETCHES: usize = 2;
/// Largest image file we read.
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;
/// Largest image we decode (each side) and the most memory decoding may take.
const MAX_DIMENSION: u32 = 4096;
const MAX_DECODED_BYTES: u64 = 64 * 1024 * 1024;

/// (account, bare JID).
pub type Key = (String, String);

fn key(account: &str, jid: &str) -> Key {
    (account.to_owned(), jid.to_owned())
}

/// What we know about one person's avatar.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Known {
    /// Their profile is being read from the store.
    Loading,
    /// Their avatar's id (`None`: no picture).
    Id(Option<String>),
}

#[derive(Debug, Clone, PartialEq)]
enum Slot<I> {
    Decoding,
    Ready(I),
    /// The file is missing or not an image we can read: initials.
    Failed,
}

/// Work the adapter should do off the UI thread.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Work {
    /// Profiles to read from the store (then [`Avatars::loaded`]).
    pub load: Vec<Key>,
    /// Pictures to decode: (id, someone who has it), then [`Avatars::decoded`].
    pub decode: Vec<(String, Key)>,
}

impl Work {
    pub fn is_empty(&self) -> bool {
        self.load.is_empty() && self.decode.is_empty()
    }
}

/// Everyone's pictures (UI thread only).
#[derive(Debug)]
pub struct Avatars<I> {
    known: HashMap<Key, Known>,
    pictures: HashMap<String, Slot<I>>,
    work: Work,
    /// People whose profile was fetched, is being fetched or waits in `queue` (this
    /// session).
    fetched: HashSet<Key>,
    queue: VecDeque<Key>,
    fetching: usize,
    /// Seen while their account was offline: queued when it comes online.
    waiting: Vec<Key>,
}

impl<I> Default for Avatars<I> {
    fn default() -> Self {
        Avatars {
            known: HashMap::new(),
            pictures: HashMap::new(),
            work: Work::default(),
            fetched: HashSet::new(),
            queue: VecDeque::new(),
            fetching: 0,
            waiting: Vec::new(),
        }
    }
}

impl<I: Clone> Avatars<I> {
    /// The decoded picture of `jid`, if there is one.
    pub fn picture(&self, account: &str, jid: &str) -> Option<&I> {
        match self.known.get(&key(account, jid))? {
            Known::Id(Some(id)) => match self.pictures.get(id)? {
                Slot::Ready(img) => Some(img),
                Slot::Decoding | Slot::Failed => None,
            },
            Known::Id(None) | Known::Loading => None,
        }
    }

    /// The avatar id we know for `jid` (`None` when unknown or without picture).
    pub fn id_of(&self, account: &str, jid: &str) -> Option<&str> {
        match self.known.get(&key(account, jid))? {
            Known::Id(id) => id.as_deref(),
            Known::Loading => None,
        }
    }

    /// A view shows `jid`: read their profile from the store if we have not yet. Returns
    /// `true` when that added work.
    pub fn want(&mut self, account: &str, jid: &str) -> bool {
        if jid.is_empty() || self.known.contains_key(&key(account, jid)) {
            return false;
        }
        self.known.insert(key(account, jid), Known::Loading);
        self.work.load.push(key(account, jid));
        true
    }

    /// The stored profile of someone we asked for: their avatar id. Ignored when an event
    /// told us something newer meanwhile. Returns `true` when that added work.
    pub fn loaded(&mut self, account: &str, jid: &str, avatar: Option<&str>) -> bool {
        if self.known.get(&key(account, jid)) != Some(&Known::Loading) {
            return false;
        }
        self.set_id(account, jid, avatar)
    }

    /// Their profile changed (an event, a fetch, our own save). Returns `true` when that
    /// added work.
    pub fn on_profile(&mut self, account: &str, jid: &str, avatar: Option<&str>) -> bool {
        self.set_id(account, jid, avatar)
    }

    fn set_id(&mut self, account: &str, jid: &str, avatar: Option<&str>) -> bool {
        let id = avatar
            .filter(|id| !id.is_empty())
            .map(str::to_ascii_lowercase);
        self.known.insert(key(account, jid), Known::Id(id.clone()));
        let Some(id) = id else { return false };
        if self.pictures.contains_key(&id) {
            return false;
        }
        self.pictures.insert(id.clone(), Slot::Decoding);
        self.work.decode.push((id, key(account, jid)));
        true
    }

    /// The work asked for since the last call.
    pub fn take_work(&mut self) -> Work {
        std::mem::take(&mut self.work)
    }

    /// A picture was decoded (`None`: it could not be). Returns whether anyone shows it.
    pub fn decoded(&mut self, id: &str, picture: Option<I>) -> bool {
        let slot = match picture {
            Some(p) => Slot::Ready(p),
            None => Slot::Failed,
        };
        self.pictures.insert(id.to_owned(), slot);
        self.evict();
        self.known
            .values()
            .any(|k| matches!(k, Known::Id(Some(i)) if i == id))
    }

    /// The picture's file turned out to hold another id (it changed while we read it):
    /// forget this one, so the next request for it decodes again.
    pub fn stale(&mut self, id: &str) {
        if matches!(self.pictures.get(id), Some(Slot::Decoding)) {
            self.pictures.remove(id);
        }
    }

    /// Drops pictures nobody has any more (replaced avatars) once the cache is full.
    fn evict(&mut self) {
        if self.pictures.len() <= MAX_PICTURES {
            return;
        }
        let used: HashSet<&str> = self
            .known
            .values()
            .filter_map(|k| match k {
                Known::Id(Some(id)) => Some(id.as_str()),
                _ => None,
            })
            .collect();
        self.pictures
            .retain(|id, slot| used.contains(id.as_str()) || matches!(slot, Slot::Decoding));
    }

    /// `jid` is on screen: fetch their profile from the network once this session (in the
    /// queue, [`MAX_FETCHES`] at a time; when their account is `online`, else once it is).
    /// Returns `true` when it was queued.
    pub fn seen(&mut self, account: &str, jid: &str, online: bool) -> bool {
        let k = key(account, jid);
        if jid.is_empty() || self.fetched.contains(&k) {
            return false;
        }
        if !online {
            if !self.waiting.contains(&k) {
                self.waiting.push(k);
            }
            return false;
        }
        self.fetched.insert(k.clone());
        self.queue.push_back(k);
        true
    }

    /// Fetches to start now (keeps at most [`MAX_FETCHES`] running).
    pub fn next_fetches(&mut self) -> Vec<Key> {
        let mut out = Vec::new();
        while self.fetching < MAX_FETCHES {
            let Some(k) = self.queue.pop_front() else {
                break;
            };
            self.fetching += 1;
            out.push(k);
        }
        out
    }

    /// A fetch ended; `offline` when it could not run, so it runs once the account is
    /// online again.
    pub fn fetch_done(&mut self, account: &str, jid: &str, offline: bool) {
        self.fetching = self.fetching.saturating_sub(1);
        if offline {
            let k = key(account, jid);
            self.fetched.remove(&k);
            if !self.waiting.contains(&k) {
                self.waiting.push(k);
            }
        }
    }

    /// A fetch started outside the queue (a profile page opened): it counts as this
    /// session's fetch for them.
    pub fn fetched_now(&mut self, account: &str, jid: &str) {
        let k = key(account, jid);
        self.queue.retain(|q| q != &k);
        self.waiting.retain(|q| q != &k);
        self.fetched.insert(k);
    }

    /// The account is online: the people seen meanwhile are queued. Returns whether any
    /// were.
    pub fn went_online(&mut self, account: &str) -> bool {
        let (now, later): (Vec<Key>, Vec<Key>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|k| k.0 == account);
        self.waiting = later;
        let mut any = false;
        for (a, j) in now {
            any |= self.seen(&a, &j, true);
        }
        any
    }

    /// The account went offline: its queued fetches wait until it is back.
    pub fn went_offline(&mut self, account: &str) {
        let (now, later): (VecDeque<Key>, VecDeque<Key>) = std::mem::take(&mut self.queue)
            .into_iter()
            .partition(|k| k.0 == account);
        self.queue = later;
        for k in now {
            self.fetched.remove(&k);
            self.waiting.push(k);
        }
    }

    pub fn forget_account(&mut self, account: &str) {
        self.known.retain(|k, _| k.0 != account);
        self.fetched.retain(|k| k.0 != account);
        self.queue.retain(|k| k.0 != account);
        self.waiting.retain(|k| k.0 != account);
    }
}

/// Decodes an avatar file's bytes (PNG, JPEG or WebP, recognised by content) into a square
/// `size`×`size` RGBA picture: EXIF orientation applied, the middle of a non-square picture
/// cropped, scaled, and cut to a circle with a smooth edge (the software renderer cannot
/// clip to a rounded shape, so the picture brings its own).
pub fn decode(bytes: &[u8], size: u32) -> Result<Vec<u8>, String> {
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err("the picture is too large".to_owned());
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    match reader.format() {
        Some(ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP) => {}
        _ => return Err("not a PNG, JPEG or WebP image".to_owned()),
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DIMENSION);
    limits.max_image_height = Some(MAX_DIMENSION);
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|e| e.to_string())?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| e.to_string())?;
    img.apply_orientation(orientation);
    if img.width() == 0 || img.height() == 0 {
        return Err("the picture is empty".to_owned());
    }
    let mut rgba = img
        .resize_to_fill(size, size, FilterType::Triangle)
        .to_rgba8()
        .into_raw();
    circle_mask(&mut rgba, size);
    Ok(rgba)
}

/// Makes the pixels of a `size`×`size` RGBA picture outside the inscribed circle
/// transparent, with one pixel of anti-aliasing on the edge.
pub fn circle_mask(rgba: &mut [u8], size: u32) {
    let r = size as f32 / 2.0;
    for (i, px) in rgba.chunks_exact_mut(4).enumerate() {
        let (x, y) = ((i as u32 % size) as f32, (i as u32 / size) as f32);
        let (dx, dy) = (x + 0.5 - r, y + 0.5 - r);
        let coverage = (r - (dx * dx + dy * dy).sqrt() + 0.5).clamp(0.0, 1.0);
        px[3] = (f32::from(px[3]) * coverage).round() as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32, rgb: [u8; 3]) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(w, h, image::Rgb(rgb));
        let mut out = Vec::new();
        DynamicImage::ImageRgb8(img)
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .expect("png");
        out
    }

    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(w, h, image::Rgb([10, 200, 30]));
        let mut out = Vec::new();
        DynamicImage::ImageRgb8(img)
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Jpeg)
            .expect("jpeg");
        out
    }

    const A: &str = "a@x";
    const ID1: &str = "0123456789abcdef0123456789abcdef01234567";
    const ID2: &str = "89abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn loads_each_person_once_and_decodes_each_picture_once() {
        let mut av: Avatars<&str> = Avatars::default();
        assert!(av.want(A, "bob@x"));
        assert!(!av.want(A, "bob@x"), "asked once");
        assert!(av.want(A, "carol@x"));
        assert!(!av.want(A, ""), "nobody");
        let w = av.take_work();
        assert_eq!(w.load, [key(A, "bob@x"), key(A, "carol@x")]);
        assert!(av.take_work().is_empty());
        // Both have the same picture: decoded once.
        assert!(av.loaded(A, "bob@x", Some(ID1)));
        assert!(!av.loaded(A, "carol@x", Some(&ID1.to_uppercase())));
        assert_eq!(av.take_work().decode, [(ID1.to_owned(), key(A, "bob@x"))]);
        assert_eq!(av.picture(A, "bob@x"), None, "still decoding");
        assert!(av.decoded(ID1, Some("pixels")));
        assert_eq!(av.picture(A, "bob@x"), Some(&"pixels"));
        assert_eq!(av.picture(A, "carol@x"), Some(&"pixels"));
        assert_eq!(av.id_of(A, "carol@x"), Some(ID1));
        // Someone without a picture, and someone we never asked about.
        assert!(av.want(A, "dave@x"));
        assert!(!av.loaded(A, "dave@x", None));
        assert_eq!(av.picture(A, "dave@x"), None);
        assert_eq!(av.picture(A, "erin@x"), None);
    }

    #[test]
    fn events_win_over_older_store_reads_and_bad_files_fall_back() {
        let mut av: Avatars<&str> = Avatars::default();
        av.want(A, "bob@x");
        av.take_work();
        // A live update arrives before the store read comes back: the read is stale.
        assert!(av.on_profile(A, "bob@x", Some(ID2)));
        assert!(!av.loaded(A, "bob@x", Some(ID1)));
        assert_eq!(av.id_of(A, "bob@x"), Some(ID2));
        assert_eq!(av.take_work().decode.len(), 1);
        // Not an image: initials, and it is not decoded again.
        assert!(av.decoded(ID2, None));
        assert_eq!(av.picture(A, "bob@x"), None);
        assert!(!av.on_profile(A, "carol@x", Some(ID2)));
        // A file that changed under us is tried again next time.
        assert!(av.on_profile(A, "carol@x", Some(ID1)));
        av.take_work();
        av.stale(ID1);
        assert!(av.on_profile(A, "dave@x", Some(ID1)), "decoded again");
        // Removing the picture.
        av.decoded(ID1, Some("p"));
        assert!(!av.on_profile(A, "dave@x", None));
        assert_eq!(av.picture(A, "dave@x"), None);
        assert!(!av.decoded("ffff", Some("nobody's")), "nobody shows it");
    }

    #[test]
    fn replaced_pictures_leave_a_full_cache() {
        let mut av: Avatars<u32> = Avatars::default();
        let id = |i: usize| format!("{i:040x}");
        av.on_profile(A, "carol@x", Some(&id(7)));
        for i in 0..=MAX_PICTURES {
            av.on_profile(A, "bob@x", Some(&id(i)));
            av.decoded(&id(i), Some(i as u32));
        }
        assert_eq!(av.pictures.len(), 2, "only the ones people have stay");
        assert_eq!(av.picture(A, "carol@x"), Some(&7));
        assert_eq!(av.picture(A, "bob@x"), Some(&(MAX_PICTURES as u32)));
    }

    #[test]
    fn fetches_once_per_person_a_few_at_a_time() {
        let mut av: Avatars<()> = Avatars::default();
        for j in ["b@x", "c@x", "d@x", "e@x"] {
            assert!(av.seen(A, j, true));
        }
        assert!(!av.seen(A, "b@x", true), "once a session");
        let first = av.next_fetches();
        assert_eq!(first, [key(A, "b@x"), key(A, "c@x")]);
        assert_eq!(first.len(), MAX_FETCHES);
        assert!(av.next_fetches().is_empty(), "bounded");
        av.fetch_done(A, "b@x", false);
        assert_eq!(av.next_fetches(), [key(A, "d@x")]);
        // The connection dropped: the failed fetch and the queue wait for it.
        av.fetch_done(A, "c@x", true);
        av.went_offline(A);
        av.fetch_done(A, "d@x", false);
        assert!(av.next_fetches().is_empty());
        assert!(!av.seen(A, "f@x", false), "offline: later");
        assert!(!av.seen(A, "f@x", false));
        assert!(av.went_online(A));
        let mut again = av.next_fetches();
        again.extend(av.next_fetches());
        assert_eq!(again, [key(A, "c@x"), key(A, "e@x")]);
        av.fetch_done(A, "e@x", false);
        av.fetch_done(A, "c@x", false);
        assert_eq!(av.next_fetches(), [key(A, "f@x")]);
        assert!(!av.went_online(A), "nothing left waiting");
        // Opening a page fetches at once and counts.
        av.fetched_now(A, "g@x");
        assert!(!av.seen(A, "g@x", true));
        av.forget_account(A);
        assert!(av.seen(A, "g@x", true));
    }

    #[test]
    fn decodes_png_and_jpeg_to_a_round_square() {
        let px = decode(&png(40, 20, [200, 10, 10]), 32).expect("decoded");
        assert_eq!(px.len(), 32 * 32 * 4);
        let at = |x: usize, y: usize| &px[(y * 32 + x) * 4..(y * 32 + x) * 4 + 4];
        assert_eq!(at(16, 16), [200, 10, 10, 255], "the middle is opaque");
        assert_eq!(at(0, 0)[3], 0, "the corners are transparent");
        assert_eq!(at(31, 31)[3], 0);
        let edge = at(0, 16)[3];
        assert!(edge > 0 && edge < 255, "a soft edge: {edge}");
        let px = decode(&jpeg(300, 500), PICTURE_SIZE).expect("decoded");
        assert_eq!(px.len() as u32, PICTURE_SIZE * PICTURE_SIZE * 4);
    }

    #[test]
    fn refuses_what_is_not_a_picture() {
        assert!(decode(b"GIF89a not really", 32).is_err());
        assert!(decode(b"hello", 32).is_err());
        let mut truncated = png(10, 10, [1, 2, 3]);
        truncated.truncate(40);
        assert!(decode(&truncated, 32).is_err());
    }
}
