//! User profiles: XEP-0084 User Avatar (v1.1), XEP-0172 User Nickname, XEP-0292 vCard4 over
//! XMPP (the `urn:xmpp:vcard4` PEP node), and the XEP-0153 / XEP-0054 vcard-temp avatar
//! fallback for contacts whose clients only know that.
//!
//! Everything read here comes from other people's clients and servers: ids are checked to be
//! SHA-1 hex before use, avatar data is size-capped and verified against its hash (a hostile
//! server must not be able to swap avatars), texts are capped and stripped of control
//! characters. Junk is ignored with a `tracing::warn!`, never a panic.
//!
//! What Starling publishes is readable by anyone (`pubsub#access_model=open`), as Conversations
//! and Dino do: avatars, nicknames and vCards are public profile data.

use std::io::Cursor;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits};
use minidom::Element;
use sha1::{Digest, Sha1};
use xmpp_parsers::avatar::Data;
use xmpp_parsers::nick::Nick;
use xmpp_parsers::pubsub::PubSub;
use xmpp_parsers::pubsub::pubsub::Items;

use super::n;
use super::pubsub::{self, Opt, RawItem};

/// XEP-0084 data node (and payload namespace).
pub const AVATAR_DATA: &str = xmpp_parsers::ns::AVATAR_DATA;
/// XEP-0084 metadata node (and payload namespace).
pub const AVATAR_METADATA: &str = xmpp_parsers::ns::AVATAR_METADATA;
/// XEP-0172 node (and payload namespace).
pub const NICK: &str = xmpp_parsers::ns::NICK;
/// XEP-0292 PEP node.
pub const VCARD4_NODE: &str = "urn:xmpp:vcard4";
/// RFC 6351 vCard XML namespace.
pub const VCARD4_NS: &str = "urn:ietf:params:xml:ns:vcard-4.0";
/// XEP-0054 vcard-temp.
pub const VCARD_TEMP: &str = xmpp_parsers::ns::VCARD;
/// XEP-0153 presence payload.
pub const VCARD_TEMP_UPDATE: &str = xmpp_parsers::ns::VCARD_UPDATE;
/// XEP-0163 `+notify` features to advertise in caps for the nodes above.
pub const AVATAR_METADATA_NOTIFY: &str = "urn:xmpp:avatar:metadata+notify";
pub const NICK_NOTIFY: &str = "http://jabber.org/protocol/nick+notify";
pub const VCARD4_NOTIFY: &str = "urn:xmpp:vcard4+notify";

/// Largest file [`prepare_avatar`] accepts.
pub const MAX_INPUT_BYTES: usize = 20 * 1024 * 1024;
/// Largest width or height [`prepare_avatar`] decodes.
pub const MAX_INPUT_DIMENSION: u32 = 10_000;
/// Most memory the decoded picture may take (10000×6700 RGBA).
pub const MAX_DECODED_BYTES: u64 = 256 * 1024 * 1024;
/// Avatars are scaled down to fit this square (XEP-0084 suggests 32–96 px; 192 stays sharp on
/// HiDPI screens).
pub const AVATAR_SIZE: u32 = 192;
/// Largest avatar accepted from the network (XEP-0084 data or a vcard-temp BINVAL).
pub const MAX_RECEIVED_BYTES: usize = 2 * 1024 * 1024;
/// Text caps, in characters.
pub const MAX_NAME_CHARS: usize = 256;
pub const MAX_NOTE_CHARS: usize = 4096;
pub const MAX_URL_CHARS: usize = 2048;
const MAX_MEDIA_TYPE: usize = 100;

/// Base64 as other clients write it: padding optional (whitespace is removed beforehand).
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why an avatar could not be prepared or was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error(
        "the file is too large ({size} bytes, at most {max} are accepted); choose a smaller PNG, \
         JPEG or WebP image"
    )]
    TooLarge { size: usize, max: usize },
    #[error(
        "the picture is too large (more than {max}×{max} pixels or too much memory to decode); \
         choose a smaller image"
    )]
    TooManyPixels { max: u32 },
    #[error("this file is not an image Starling can read ({0}); choose a PNG, JPEG or WebP image")]
    NotAnImage(String),
    #[error("the picture could not be converted to PNG ({0}); try another image")]
    Encode(String),
    #[error(
        "a received avatar is too large ({size} bytes, at most {max} are accepted); it was ignored"
    )]
    ReceivedTooLarge { size: usize, max: usize },
    #[error(
        "a received avatar does not match its announced hash (expected {expected}, got \
         {actual}); it was ignored, the server may have altered it"
    )]
    HashMismatch { expected: String, actual: String },
    #[error("malformed {0} received; it was ignored")]
    Malformed(&'static str),
}

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

/// Lowercase hex SHA-1, the id XEP-0084 and XEP-0153 use for avatar data.
pub fn sha1_hex(bytes: &[u8]) -> String {
    Sha1::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A 40-digit hex SHA-1 (any case), lowercased; `None` for anything else.
fn sha1_id(s: &str) -> Option<String> {
    let s = s.trim();
    (s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())).then(|| s.to_ascii_lowercase())
}

/// Trims, drops control characters (keeping line breaks if `multiline`, else turning them into
/// spaces), caps to `max` characters. `None` if nothing is left.
fn clean_text(s: &str, max: usize, multiline: bool) -> Option<String> {
    let mut out = String::new();
    let kept = s.trim().chars().filter_map(|c| match c {
        '\n' if multiline => Some('\n'),
        '\n' | '\t' => Some(' '),
        c if c.is_control() => None,
        c => Some(c),
    });
    out.extend(kept.take(max));
    let out = out.trim();
    (!out.is_empty()).then(|| out.to_owned())
}

/// An http(s) URL without whitespace, capped; `None` otherwise (no `javascript:`, `file:`…).
fn clean_url(s: &str) -> Option<String> {
    let s = s.trim();
    let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    let ok = (lower.starts_with("https://") || lower.starts_with("http://"))
        && s.chars().count() <= MAX_URL_CHARS
        && !s.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then(|| s.to_owned())
}

/// A MIME type such as `image/png`, lowercased; `None` if it does not look like one.
fn clean_media_type(s: &str) -> Option<String> {
    let s = s.trim();
    let ok = !s.is_empty()
        && s.len() <= MAX_MEDIA_TYPE
        && s.contains('/')
        && s.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| s.to_ascii_lowercase())
}

/// Base64 text (whitespace allowed anywhere) to bytes, refusing more than
/// [`MAX_RECEIVED_BYTES`] before decoding.
fn decode_base64(text: &str, what: &'static str) -> Result<Vec<u8>, ProfileError> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let max_len = MAX_RECEIVED_BYTES.div_ceil(3) * 4;
    if compact.len() > max_len {
        return Err(ProfileError::ReceivedTooLarge {
            size: compact.len() / 4 * 3,
            max: MAX_RECEIVED_BYTES,
        });
    }
    let bytes = LENIENT_BASE64
        .decode(compact.as_bytes())
        .map_err(|_| ProfileError::Malformed(what))?;
    if bytes.len() > MAX_RECEIVED_BYTES {
        return Err(ProfileError::ReceivedTooLarge {
            size: bytes.len(),
            max: MAX_RECEIVED_BYTES,
        });
    }
    Ok(bytes)
}

/// Publish-options every profile node gets: readable by anyone.
fn open_access() -> [Opt; 1] {
    [Opt::one("pubsub#access_model", "open")]
}

/// Asks for the most recent item of `node` only (`max_items='1'`).
fn latest(node: &str) -> PubSub {
    let mut req = Items::new(node);
    req.max_items = Some(1);
    PubSub::Items(req)
}

/// The items of an items result for `node`, `None` for another node or no items result.
fn items_of(result: &Element, node: &str) -> Option<Vec<RawItem>> {
    match pubsub::parse_items(result) {
        Some((n, items)) if n == node => Some(items),
        _ => None,
    }
}

/// What a PEP event on `node` says: `None` for another node or no event, `Some(None)` when the
/// node's content went away (retracted, purged, deleted), `Some(Some(payload))` for the newest
/// published payload. A published item without payload (a pure notification) gives `None`.
fn event_payload(ev: &Element, node: &str) -> Option<Option<Element>> {
    let n = pubsub::parse_event(ev)?;
    if n.node != node {
        return None;
    }
    if n.cleared {
        return Some(None);
    }
    if let Some(item) = n.published.into_iter().next_back() {
        return item.payload.map(Some);
    }
    (!n.retracted.is_empty()).then_some(None)
}

// ---------------------------------------------------------------------------------------------
// XEP-0084 User Avatar
// ---------------------------------------------------------------------------------------------

/// An avatar ready to publish: a PNG of at most [`AVATAR_SIZE`]² pixels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvatarImage {
    /// Lowercase hex SHA-1 of `bytes`: the item id on both nodes.
    pub id: String,
    pub bytes: Vec<u8>,
    /// Always `image/png` (XEP-0084 requires a PNG on the data node).
    pub media_type: String,
    pub width: u16,
    pub height: u16,
}

fn image_error(e: ImageError) -> ProfileError {
    match e {
        ImageError::Limits(_) => ProfileError::TooManyPixels {
            max: MAX_INPUT_DIMENSION,
        },
        other => ProfileError::NotAnImage(other.to_string()),
    }
}

/// Turns a picture the user chose (PNG, JPEG or WebP, recognised by content, not name) into an
/// avatar: EXIF orientation applied, scaled down to fit [`AVATAR_SIZE`] (never up), PNG.
/// The same input always gives the same bytes and id.
pub fn prepare_avatar(input: &[u8]) -> Result<AvatarImage, ProfileError> {
    if input.len() > MAX_INPUT_BYTES {
        return Err(ProfileError::TooLarge {
            size: input.len(),
            max: MAX_INPUT_BYTES,
        });
    }
    let mut reader = ImageReader::new(Cursor::new(input))
        .with_guessed_format()
        .map_err(|e| ProfileError::NotAnImage(e.to_string()))?;
    match reader.format() {
        Some(ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP) => {}
        Some(other) => {
            return Err(ProfileError::NotAnImage(format!(
                "{} images are not supported",
                other.extensions_str().first().unwrap_or(&"these")
            )));
        }
        None => return Err(ProfileError::NotAnImage("unknown file type".to_owned())),
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_INPUT_DIMENSION);
    limits.max_image_height = Some(MAX_INPUT_DIMENSION);
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    reader.limits(limits);
    // Only the header has been read so far: refuse huge pictures before decoding them.
    let mut decoder = reader.into_decoder().map_err(image_error)?;
    let (w, h) = decoder.dimensions();
    if w > MAX_INPUT_DIMENSION
        || h > MAX_INPUT_DIMENSION
        || decoder.total_bytes() > MAX_DECODED_BYTES
    {
        return Err(ProfileError::TooManyPixels {
            max: MAX_INPUT_DIMENSION,
        });
    }
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(image_error)?;
    img.apply_orientation(orientation);

    if img.width() > AVATAR_SIZE || img.height() > AVATAR_SIZE {
        // Area averaging: integer arithmetic (deterministic), linear in the input size, no
        // aliasing when shrinking a large photo.
        img = img.thumbnail(AVATAR_SIZE, AVATAR_SIZE);
    }
    let img = if img.color().has_alpha() {
        DynamicImage::ImageRgba8(img.to_rgba8())
    } else {
        DynamicImage::ImageRgb8(img.to_rgb8())
    };
    let (width, height) = (
        u16::try_from(img.width()).map_err(|e| ProfileError::Encode(e.to_string()))?,
        u16::try_from(img.height()).map_err(|e| ProfileError::Encode(e.to_string()))?,
    );
    let mut bytes = Vec::new();
    img.write_with_encoder(PngEncoder::new_with_quality(
        &mut bytes,
        CompressionType::Best,
        PngFilter::Adaptive,
    ))
    .map_err(|e| ProfileError::Encode(e.to_string()))?;
    Ok(AvatarImage {
        id: sha1_hex(&bytes),
        bytes,
        media_type: "image/png".to_owned(),
        width,
        height,
    })
}

/// Publishes the image data (XEP-0084 §4.1), to be sent before [`publish_metadata`].
pub fn publish_data(img: &AvatarImage) -> PubSub {
    let data = Data {
        data: img.bytes.clone(),
    };
    pubsub::publish(AVATAR_DATA, Some(&img.id), data.into(), &open_access())
}

fn info_element(img: &AvatarImage) -> Element {
    Element::builder("info", AVATAR_METADATA)
        .attr(n!("bytes"), img.bytes.len().to_string())
        .attr(n!("id"), img.id.as_str())
        .attr(n!("type"), img.media_type.as_str())
        .attr(n!("width"), img.width.to_string())
        .attr(n!("height"), img.height.to_string())
        .build()
}

/// Announces the avatar (XEP-0084 §4.2), once [`publish_data`] succeeded.
pub fn publish_metadata(img: &AvatarImage) -> PubSub {
    let metadata = Element::builder("metadata", AVATAR_METADATA)
        .append(info_element(img))
        .build();
    pubsub::publish(AVATAR_METADATA, Some(&img.id), metadata, &open_access())
}

/// Removes the avatar: an empty `<metadata/>` (XEP-0084 §4.5).
pub fn disable_metadata() -> PubSub {
    let metadata = Element::builder("metadata", AVATAR_METADATA).build();
    pubsub::publish(AVATAR_METADATA, None, metadata, &open_access())
}

/// Asks for the data of avatar `id` (XEP-0084 §4.4); read the answer with [`parse_data`].
pub fn request_data(id: &str) -> PubSub {
    pubsub::items_by_id(AVATAR_DATA, &[id])
}

/// Reads the result of [`request_data`]: the image bytes, only if their SHA-1 is `expected_id`.
pub fn parse_data(result: &Element, expected_id: &str) -> Result<Vec<u8>, ProfileError> {
    let expected = sha1_id(expected_id).ok_or(ProfileError::Malformed("avatar id"))?;
    let items =
        items_of(result, AVATAR_DATA).ok_or(ProfileError::Malformed("avatar data result"))?;
    let item = items
        .iter()
        .find(|i| {
            i.id.as_deref()
                .is_some_and(|id| id.eq_ignore_ascii_case(&expected))
        })
        .or_else(|| items.first())
        .ok_or(ProfileError::Malformed("avatar data result (no item)"))?;
    let data = item
        .payload
        .as_ref()
        .filter(|p| p.is("data", AVATAR_DATA))
        .ok_or(ProfileError::Malformed("avatar data item"))?;
    let bytes = decode_base64(&data.text(), "avatar data (invalid base64)")?;
    let actual = sha1_hex(&bytes);
    if actual != expected {
        return Err(ProfileError::HashMismatch { expected, actual });
    }
    Ok(bytes)
}

/// One `<info/>` of a contact's avatar metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvatarRef {
    /// Lowercase hex SHA-1 of the image data: the item id on the data node, the cache key.
    pub id: String,
    pub media_type: String,
    pub bytes: u32,
    pub width: Option<u16>,
    pub height: Option<u16>,
    /// Set when the data is hosted over HTTP instead of the data node; Starling does not fetch
    /// those (only chosen when no info without URL exists).
    pub url: Option<String>,
}

fn parse_info(el: &Element) -> Option<AvatarRef> {
    let Some(id) = el.attr("id").and_then(sha1_id) else {
        tracing::warn!(id = ?el.attr("id"), "avatar info with an invalid id ignored");
        return None;
    };
    let media_type = el.attr("type").and_then(clean_media_type);
    let bytes = el.attr("bytes").and_then(|b| b.trim().parse::<u32>().ok());
    let (Some(media_type), Some(bytes)) = (media_type, bytes) else {
        tracing::warn!(%id, "avatar info without a valid type or size ignored");
        return None;
    };
    let dim = |name: &str| el.attr(name).and_then(|v| v.trim().parse::<u16>().ok());
    Some(AvatarRef {
        id,
        media_type,
        bytes,
        width: dim("width"),
        height: dim("height"),
        url: el
            .attr("url")
            .and_then(|u| clean_text(u, MAX_URL_CHARS, false)),
    })
}

/// `None` if `el` is not a `<metadata/>`; `Some(None)` for no (usable) avatar.
fn parse_metadata(el: &Element) -> Option<Option<AvatarRef>> {
    if !el.is("metadata", AVATAR_METADATA) {
        tracing::warn!(
            name = el.name(),
            "avatar metadata item without <metadata/> ignored"
        );
        return None;
    }
    let infos: Vec<AvatarRef> = el
        .children()
        .filter(|c| c.is("info", AVATAR_METADATA))
        .filter_map(parse_info)
        .collect();
    // Prefer what the data node holds (no url), PNG first (XEP-0084 makes it mandatory).
    let rank = |i: &AvatarRef| (i.url.is_some(), i.media_type != "image/png");
    Some(infos.into_iter().min_by_key(rank))
}

/// Asks for the current avatar metadata (XEP-0084 §4.3).
pub fn request_metadata() -> PubSub {
    latest(AVATAR_METADATA)
}

/// Reads the result of [`request_metadata`]: `None` when there is no avatar.
pub fn parse_metadata_items(result: &Element) -> Option<AvatarRef> {
    let items = items_of(result, AVATAR_METADATA)?;
    let payload = items.into_iter().filter_map(|i| i.payload).next_back()?;
    parse_metadata(&payload).flatten()
}

/// Reads a PEP `<event/>`: `None` if it is not about avatar metadata, `Some(None)` if the
/// avatar was removed, `Some(Some(avatar))` for a new avatar.
pub fn parse_metadata_event(ev: &Element) -> Option<Option<AvatarRef>> {
    match event_payload(ev, AVATAR_METADATA)? {
        None => Some(None),
        Some(payload) => parse_metadata(&payload),
    }
}

// ---------------------------------------------------------------------------------------------
// XEP-0153 / XEP-0054 vcard-temp fallback
// ---------------------------------------------------------------------------------------------

/// The vcard-temp request (XEP-0054 §3.2), for an IQ get to a contact's bare JID.
pub fn vcard_temp_request() -> Element {
    Element::builder("vCard", VCARD_TEMP).build()
}

/// Reads the photo of a vcard-temp `<vCard/>`: bytes and media type. `None` without an
/// inline photo (an `EXTVAL` URL is not fetched), or when it is malformed or too large.
pub fn parse_vcard_temp_photo(el: &Element) -> Option<(Vec<u8>, String)> {
    if !el.is("vCard", VCARD_TEMP) {
        return None;
    }
    let photo = el.get_child("PHOTO", VCARD_TEMP)?;
    let binval = photo.get_child("BINVAL", VCARD_TEMP)?;
    let bytes = match decode_base64(&binval.text(), "vcard-temp photo") {
        Ok(b) if !b.is_empty() => b,
        Ok(_) => return None,
        Err(e) => {
            tracing::warn!(error = %e, "vcard-temp photo ignored");
            return None;
        }
    };
    let media_type = photo
        .get_child("TYPE", VCARD_TEMP)
        .and_then(|t| clean_media_type(&t.text()))
        .or_else(|| {
            image::guess_format(&bytes)
                .ok()
                .map(|f| f.to_mime_type().to_owned())
        })
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    Some((bytes, media_type))
}

/// Reads a presence's `<x xmlns='vcard-temp:x:update'/>` (XEP-0153 §3.2): `None` if `x` is
/// not one or says nothing (no `<photo/>`: "not ready to advertise"), `Some(None)` for an
/// empty `<photo/>` (no avatar), `Some(Some(sha1))` for the current avatar's hash.
pub fn parse_vcard_update(x: &Element) -> Option<Option<String>> {
    if !x.is("x", VCARD_TEMP_UPDATE) {
        return None;
    }
    let text = x.get_child("photo", VCARD_TEMP_UPDATE)?.text();
    if text.trim().is_empty() {
        return Some(None);
    }
    match sha1_id(&text) {
        Some(hash) => Some(Some(hash)),
        None => {
            tracing::warn!("vcard-temp:x:update with an invalid photo hash ignored");
            None
        }
    }
}

// ---------------------------------------------------------------------------------------------
// XEP-0172 User Nickname
// ---------------------------------------------------------------------------------------------

/// Publishes our nickname; an empty one (after cleaning) publishes `<nick/>`: no nickname.
pub fn publish_nick(nick: &str) -> PubSub {
    let nick = Nick(clean_text(nick, MAX_NAME_CHARS, false).unwrap_or_default());
    pubsub::publish(NICK, None, nick.into(), &open_access())
}

/// Asks for a contact's (or our) nickname.
pub fn request_nick() -> PubSub {
    latest(NICK)
}

fn parse_nick(el: &Element) -> Option<Option<String>> {
    if !el.is("nick", NICK) {
        tracing::warn!(name = el.name(), "nick item without <nick/> ignored");
        return None;
    }
    Some(clean_text(&el.text(), MAX_NAME_CHARS, false))
}

/// Reads the result of [`request_nick`].
pub fn parse_nick_items(result: &Element) -> Option<String> {
    let items = items_of(result, NICK)?;
    let payload = items.into_iter().filter_map(|i| i.payload).next_back()?;
    parse_nick(&payload).flatten()
}

/// Reads a PEP `<event/>`: `None` if it is not about the nickname, `Some(None)` if it was
/// removed or emptied, `Some(Some(nick))` for a new one.
pub fn parse_nick_event(ev: &Element) -> Option<Option<String>> {
    match event_payload(ev, NICK)? {
        None => Some(None),
        Some(payload) => parse_nick(&payload),
    }
}

// ---------------------------------------------------------------------------------------------
// XEP-0292 vCard4 over XMPP
// ---------------------------------------------------------------------------------------------

/// The parts of a vCard4 Starling shows and edits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vcard4 {
    /// `<fn/>`: the display name.
    pub full_name: Option<String>,
    /// The first `<nickname/>`.
    pub nickname: Option<String>,
    /// The first `<note/>`: the bio (line breaks kept).
    pub note: Option<String>,
    /// The first http(s) `<url/>`.
    pub url: Option<String>,
}

/// The properties [`Vcard4`] owns; every other child of a fetched vCard is kept on publish.
const OWNED: [&str; 4] = ["fn", "nickname", "note", "url"];

impl Vcard4 {
    /// What would be published or read back: trimmed, capped, control characters removed,
    /// a URL that is not http(s) dropped.
    pub fn sanitized(&self) -> Vcard4 {
        let name = |s: &Option<String>| {
            s.as_deref()
                .and_then(|s| clean_text(s, MAX_NAME_CHARS, false))
        };
        Vcard4 {
            full_name: name(&self.full_name),
            nickname: name(&self.nickname),
            note: self
                .note
                .as_deref()
                .and_then(|s| clean_text(s, MAX_NOTE_CHARS, true)),
            url: self.url.as_deref().and_then(clean_url),
        }
    }
}

fn property(name: &str, value_kind: &str, value: &str) -> Element {
    Element::builder(name, VCARD4_NS)
        .append(
            Element::builder(value_kind, VCARD4_NS)
                .append(value)
                .build(),
        )
        .build()
}

/// Publishes our vCard (item `current`). With `extra`, a `<vcard/>` fetched before (see
/// [`parse_vcard4_items`]), its other properties (emails, addresses, photos other clients put
/// there) are kept; `fn`, `nickname`, `note` and `url` are replaced by `v`'s (all of them: a
/// second nickname of the old vCard is not kept).
pub fn publish_vcard4(v: &Vcard4, extra: Option<&Element>) -> PubSub {
    let clean = v.sanitized();
    if v.url.is_some() && clean.url.is_none() {
        tracing::warn!("vCard URL that is not http(s) not published");
    }
    let v = clean;
    let mut card = Element::builder("vcard", VCARD4_NS).build();
    let props = [
        ("fn", "text", &v.full_name),
        ("nickname", "text", &v.nickname),
        ("note", "text", &v.note),
        ("url", "uri", &v.url),
    ];
    for (name, kind, value) in props {
        if let Some(value) = value {
            card.append_child(property(name, kind, value));
        }
    }
    match extra {
        Some(old) if old.is("vcard", VCARD4_NS) => {
            for child in old.children() {
                if !(child.has_ns(VCARD4_NS) && OWNED.contains(&child.name())) {
                    card.append_child(child.clone());
                }
            }
        }
        Some(other) => tracing::warn!(name = other.name(), "not a vCard4; nothing kept from it"),
        None => {}
    }
    pubsub::publish(VCARD4_NODE, Some("current"), card, &open_access())
}

/// Asks for a vCard (XEP-0292 §3.1).
pub fn request_vcard4() -> PubSub {
    latest(VCARD4_NODE)
}

/// The first value of property `name` that survives cleaning.
fn first_value(
    card: &Element,
    name: &str,
    kind: &str,
    clean: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    card.children()
        .filter(|c| c.is(name, VCARD4_NS))
        .filter_map(|p| p.get_child(kind, VCARD4_NS))
        .find_map(|v| clean(&v.text()))
}

fn parse_vcard4(card: &Element) -> Option<Vcard4> {
    if !card.is("vcard", VCARD4_NS) {
        tracing::warn!(name = card.name(), "vCard4 item without <vcard/> ignored");
        return None;
    }
    let name = |s: &str| clean_text(s, MAX_NAME_CHARS, false);
    Some(Vcard4 {
        full_name: first_value(card, "fn", "text", name),
        nickname: first_value(card, "nickname", "text", name),
        note: first_value(card, "note", "text", |s| {
            clean_text(s, MAX_NOTE_CHARS, true)
        }),
        url: first_value(card, "url", "uri", clean_url),
    })
}

/// Reads the result of [`request_vcard4`]: the parsed fields and the whole `<vcard/>` (to pass
/// to [`publish_vcard4`] as `extra` when it is ours). `None` without a vCard.
pub fn parse_vcard4_items(result: &Element) -> Option<(Vcard4, Element)> {
    let items = items_of(result, VCARD4_NODE)?;
    let card = items.into_iter().filter_map(|i| i.payload).next_back()?;
    parse_vcard4(&card).map(|v| (v, card))
}

/// Reads a PEP `<event/>`: `None` if it is not a vCard4 one (or carries no payload: fetch it
/// with [`request_vcard4`]), `Some(Vcard4::default())` when the vCard was removed.
pub fn parse_vcard4_event(ev: &Element) -> Option<Vcard4> {
    match event_payload(ev, VCARD4_NODE)? {
        None => Some(Vcard4::default()),
        Some(card) => parse_vcard4(&card),
    }
}

#[cfg(test)]
mod tests;
