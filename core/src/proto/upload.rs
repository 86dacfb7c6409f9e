//! XEP-0363: HTTP File Upload (v1.1, `urn:xmpp:http:upload:0`): finding the upload service
//! and its size limit, asking for a slot, and reading the slot the server gives — strictly:
//! the PUT and GET URLs must be https, and only the headers the XEP allows are kept (a server
//! must not make the client send anything else). Also XEP-0066 Out-of-Band Data, the `<x/>`
//! that tells receivers a message body is a file link, and XEP-0447 Stateless File Sharing
//! with XEP-0446 metadata (name, size, media type, dimensions, a tiny XEP-0264 thumbnail) —
//! what Dino reads and writes; both ride beside the link in plaintext messages only (in an
//! encrypted one they would give away what the encrypted link hides).

use minidom::Element;
use xmpp_parsers::data_forms::DataForm;
use xmpp_parsers::disco::DiscoInfoResult;
use xmpp_parsers::http_upload::SlotRequest;

/// The XEP-0363 namespace.
pub const NS: &str = "urn:xmpp:http:upload:0";
/// XEP-0066: Out of Band Data, in messages.
pub const NS_OOB: &str = "jabber:x:oob";

/// Why a slot answer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlotError {
    #[error("the upload service's answer is not a slot: {0}")]
    Malformed(&'static str),
    #[error("the upload service gave a {which} URL that is not https: {url}")]
    NotHttps { which: &'static str, url: String },
}

/// An upload service as its disco#info describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadService {
    /// Its address (usually a component such as `upload.example.org`).
    pub jid: String,
    /// The largest file it takes, in bytes, if it says.
    pub max_size: Option<u64>,
}

/// The upload service in `info` (the disco#info of `jid`), if it is one.
pub fn service(jid: &str, info: &DiscoInfoResult) -> Option<UploadService> {
    if !info.features.iter().any(|f| f == NS) {
        return None;
    }
    let max_size = info
        .extensions
        .iter()
        .filter(|form| form.form_type() == Some(NS))
        .flat_map(|form: &DataForm| form.fields.iter())
        .find(|field| field.var.as_deref() == Some("max-file-size"))
        .and_then(|field| field.values.first())
        .and_then(|v| v.trim().parse().ok());
    Some(UploadService {
        jid: jid.to_owned(),
        max_size,
    })
}

/// The slot request for a file (the IQ get payload).
pub fn request(filename: &str, size: u64, content_type: &str) -> Element {
    SlotRequest {
        filename: filename.to_owned(),
        size,
        content_type: Some(content_type.to_owned()),
    }
    .into()
}

/// A slot: where to PUT the file (with which headers) and where it can be fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub put: String,
    pub get: String,
    /// Headers to send with the PUT: only Authorization, Cookie and Expires (XEP-0363 §5).
    pub headers: Vec<(String, String)>,
}

/// Reads a slot answer.
pub fn parse_slot(el: &Element) -> Result<Slot, SlotError> {
    if !el.is("slot", NS) {
        return Err(SlotError::Malformed("no <slot/>"));
    }
    let put = el
        .get_child("put", NS)
        .ok_or(SlotError::Malformed("no <put/>"))?;
    let get = el
        .get_child("get", NS)
        .ok_or(SlotError::Malformed("no <get/>"))?;
    let url = |e: &Element, which: &'static str| -> Result<String, SlotError> {
        let url = e
            .attr("url")
            .ok_or(SlotError::Malformed("a URL is missing"))?
            .trim()
            .to_owned();
        let scheme = url
            .get(..8)
            .is_some_and(|s| s.eq_ignore_ascii_case("https://"));
        if scheme && url.len() > 8 {
            Ok(url)
        } else {
            Err(SlotError::NotHttps { which, url })
        }
    };
    let headers = put
        .children()
        .filter(|h| h.is("header", NS))
        .filter_map(|h| {
            let name = h.attr("name")?;
            let allowed = ["Authorization", "Cookie", "Expires"]
                .into_iter()
                .find(|a| a.eq_ignore_ascii_case(name))?;
            // Header values must not smuggle in more headers.
            let value = h.text().replace(['\r', '\n'], "");
            Some((allowed.to_owned(), value))
        })
        .collect();
    Ok(Slot {
        put: url(put, "upload")?,
        get: url(get, "download")?,
        headers,
    })
}

/// XEP-0066 `<x xmlns='jabber:x:oob'><url/></x>`: the body is this file's link.
pub fn oob(url: &str) -> Element {
    Element::builder("x", NS_OOB)
        .append(Element::builder("url", NS_OOB).append(url))
        .build()
}

/// The link of a message's XEP-0066 `<x/>`, if it has one.
pub fn oob_url(message_payloads: &[Element]) -> Option<String> {
    message_payloads
        .iter()
        .find(|e| e.is("x", NS_OOB))
        .and_then(|x| x.get_child("url", NS_OOB))
        .map(|u| u.text().trim().to_owned())
        .filter(|u| !u.is_empty())
}

/// XEP-0447: Stateless File Sharing.
pub const NS_SFS: &str = "urn:xmpp:sfs:0";
/// XEP-0446: File metadata element.
pub const NS_FILE: &str = "urn:xmpp:file:metadata:0";
/// XEP-0103: URL address information (an SFS source).
pub const NS_URL_DATA: &str = "http://jabber.org/protocol/url-data";
/// XEP-0264: Jingle Content Thumbnails (used by XEP-0446).
pub const NS_THUMBS: &str = "urn:xmpp:thumbs:1";
/// The largest thumbnail read from a message (decoded bytes); bigger ones are ignored.
pub const MAX_THUMBNAIL: usize = 16 * 1024;

/// What a message says about the file it shares (every part optional: senders differ).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileMeta {
    pub name: Option<String>,
    pub media_type: Option<String>,
    pub size: Option<u64>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// A small preview image (PNG, JPEG or WebP bytes) to show until the file is fetched.
    pub thumbnail: Option<Vec<u8>>,
}

/// A file a message shares: its link (https, or aesgcm:// with the key) and what is known
/// about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedFile {
    pub url: String,
    pub meta: FileMeta,
}

/// XEP-0447 `<file-sharing/>` for a file at `url` (plaintext messages only).
pub fn file_sharing(url: &str, meta: &FileMeta) -> Element {
    use base64::Engine as _;
    let text = |name: &str, value: String| Element::builder(name, NS_FILE).append(value).build();
    let mut file = Element::builder("file", NS_FILE).build();
    if let Some(t) = &meta.media_type {
        file.append_child(text("media-type", t.clone()));
    }
    if let Some(n) = &meta.name {
        file.append_child(text("name", n.clone()));
    }
    if let Some(n) = meta.size {
        file.append_child(text("size", n.to_string()));
    }
    if let Some(n) = meta.width {
        file.append_child(text("width", n.to_string()));
    }
    if let Some(n) = meta.height {
        file.append_child(text("height", n.to_string()));
    }
    if let Some(png) = meta.thumbnail.as_ref().filter(|t| t.len() <= MAX_THUMBNAIL) {
        let uri = format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(png)
        );
        file.append_child(
            Element::builder("thumbnail", NS_THUMBS)
                .attr(super::n!("uri"), uri)
                .attr(super::n!("media-type"), "image/png")
                .build(),
        );
    }
    Element::builder("file-sharing", NS_SFS)
        .attr(super::n!("disposition"), "inline")
        .append(file)
        .append(
            Element::builder("sources", NS_SFS).append(
                Element::builder("url-data", NS_URL_DATA)
                    .attr(super::n!("target"), url)
                    .build(),
            ),
        )
        .build()
}

/// A message's XEP-0447 `<file-sharing/>`: the metadata and its https sources.
pub fn parse_file_sharing(payloads: &[Element]) -> Option<(FileMeta, Vec<String>)> {
    let sfs = payloads.iter().find(|e| e.is("file-sharing", NS_SFS))?;
    let file = sfs.get_child("file", NS_FILE)?;
    let text = |name: &str| {
        file.get_child(name, NS_FILE)
            .map(|c| c.text().trim().to_owned())
            .filter(|t| !t.is_empty() && t.len() <= 1024)
    };
    let number = |name: &str| text(name).and_then(|t| t.parse().ok());
    let meta = FileMeta {
        name: text("name"),
        media_type: text("media-type").filter(|t| {
            t.contains('/')
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/.+-_".contains(c))
        }),
        size: number("size"),
        width: number("width").map(|n: u64| n.min(u64::from(u32::MAX)) as u32),
        height: number("height").map(|n: u64| n.min(u64::from(u32::MAX)) as u32),
        thumbnail: file
            .children()
            .filter(|c| c.is("thumbnail", NS_THUMBS))
            .find_map(|t| data_uri(t.attr("uri")?)),
    };
    let sources = sfs
        .get_child("sources", NS_SFS)
        .map(|s| {
            s.children()
                .filter(|u| u.is("url-data", NS_URL_DATA))
                .filter_map(|u| u.attr("target"))
                .map(|t| t.trim().to_owned())
                .filter(|t| is_https(t))
                .collect()
        })
        .unwrap_or_default();
    Some((meta, sources))
}

/// The image bytes of a small `data:image/...;base64,` URI.
fn data_uri(uri: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let rest = uri.strip_prefix("data:image/")?;
    let (kind, data) = rest.split_once(";base64,")?;
    if !matches!(kind, "png" | "jpeg" | "webp") || data.len() > MAX_THUMBNAIL * 4 / 3 + 4 {
        return None;
    }
    base64::engine::general_purpose::STANDARD.decode(data).ok()
}

fn is_https(url: &str) -> bool {
    url.len() > 8
        && url
            .get(..8)
            .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
}

/// A file name to save a download under, from its link: the last path segment, decoded,
/// made safe by [`safe_name`].
pub fn safe_file_name(url: &str) -> String {
    let path = url.split(['#', '?']).next().unwrap_or_default();
    let last = path.rsplit('/').next().unwrap_or_default();
    safe_name(&percent_encoding::percent_decode_str(last).decode_utf8_lossy())
}

/// A name someone else chose, made safe to show and to save under: anything that could
/// escape the download folder or hide the file removed (path separators, `..`, leading
/// dots, control characters), at most 120 characters; "download" if nothing is left.
pub fn safe_name(raw: &str) -> String {
    let cleaned: String = raw
        .chars()
        .map(|c| match c {
            '/' | '\\' | ':' | '\0' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    let trimmed = cleaned.trim().trim_start_matches('.').trim();
    let name: String = trimmed.chars().take(120).collect();
    if name.is_empty() || name.chars().all(|c| c == '.' || c == '_') {
        "download".into()
    } else {
        name
    }
}

impl SharedFile {
    /// The name to show and save it under: the announced one, else the link's, made safe.
    pub fn name(&self) -> String {
        match &self.meta.name {
            Some(n) => safe_name(n),
            None => safe_file_name(&self.url),
        }
    }
}

/// True for an XEP-0454 `aesgcm://` link.
pub fn is_aesgcm(url: &str) -> bool {
    url.len() > 9
        && url
            .get(..9)
            .is_some_and(|s| s.eq_ignore_ascii_case("aesgcm://"))
}

/// The file a message shares, if it is a file message: its body is one link, and either
/// the link is an `aesgcm://` one (XEP-0454), or the message announces it as a file
/// (XEP-0066 `<x/>` or XEP-0447 with the same link). A link someone merely typed is text.
/// `payloads` are the plaintext stanza's (none for what came out of an encrypted one, where
/// only the aesgcm:// form means a file).
pub fn shared_file(body: &str, payloads: &[Element]) -> Option<SharedFile> {
    let url = body.trim();
    if url.is_empty() || url.contains(char::is_whitespace) || url.len() > 4096 {
        return None;
    }
    if is_aesgcm(url) {
        return Some(SharedFile {
            url: url.to_owned(),
            meta: FileMeta::default(),
        });
    }
    if !is_https(url) {
        return None;
    }
    if let Some((meta, sources)) = parse_file_sharing(payloads)
        && sources.iter().any(|s| s == url)
    {
        return Some(SharedFile {
            url: url.to_owned(),
            meta,
        });
    }
    (oob_url(payloads).as_deref() == Some(url)).then(|| SharedFile {
        url: url.to_owned(),
        meta: FileMeta::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xml(s: &str) -> anyhow::Result<Element> {
        Ok(s.parse()?)
    }

    /// XEP-0363 Example 2 (service discovery with the size limit).
    #[test]
    fn the_service_and_its_limit() -> anyhow::Result<()> {
        let el = xml("<query xmlns='http://jabber.org/protocol/disco#info'>
            <identity category='store' type='file' name='HTTP File Upload' />
            <feature var='urn:xmpp:http:upload:0' />
            <x type='result' xmlns='jabber:x:data'>
              <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:http:upload:0</value></field>
              <field var='max-file-size'><value>5242880</value></field>
            </x>
          </query>")?;
        let info = DiscoInfoResult::try_from(el)?;
        assert_eq!(
            service("upload.montague.tld", &info),
            Some(UploadService {
                jid: "upload.montague.tld".into(),
                max_size: Some(5_242_880)
            })
        );
        let el = xml("<query xmlns='http://jabber.org/protocol/disco#info'>
            <identity category='conference' type='text' name='Rooms' />
            <feature var='http://jabber.org/protocol/muc' />
          </query>")?;
        assert_eq!(service("rooms.x", &DiscoInfoResult::try_from(el)?), None);
        Ok(())
    }

    /// XEP-0363 Examples 3 and 4.
    #[test]
    fn a_slot_is_requested_and_read() -> anyhow::Result<()> {
        let req = String::from(&request("très cool.jpg", 23456, "image/jpeg"));
        assert!(
            req.contains("filename='très cool.jpg'") || req.contains("filename=\"très cool.jpg\""),
            "{req}"
        );
        assert!(
            req.contains("size=\"23456\"") || req.contains("size='23456'"),
            "{req}"
        );
        let el = xml("<slot xmlns='urn:xmpp:http:upload:0'>
            <put url='https://upload.montague.tld/4a771ac1-f0b2-4a4a-9700-f2a26fa2bb67/tr%C3%A8s%20cool.jpg'>
              <header name='Authorization'>Basic Base64String==</header>
              <header name='Cookie'>foo=bar; user=romeo</header>
            </put>
            <get url='https://download.montague.tld/4a771ac1-f0b2-4a4a-9700-f2a26fa2bb67/tr%C3%A8s%20cool.jpg' />
          </slot>")?;
        let slot = parse_slot(&el)?;
        assert!(slot.put.starts_with("https://upload.montague.tld/"));
        assert!(slot.get.starts_with("https://download.montague.tld/"));
        assert_eq!(
            slot.headers,
            [
                (
                    "Authorization".to_owned(),
                    "Basic Base64String==".to_owned()
                ),
                ("Cookie".to_owned(), "foo=bar; user=romeo".to_owned())
            ]
        );
        Ok(())
    }

    #[test]
    fn hostile_slots_are_refused_or_cleaned() -> anyhow::Result<()> {
        let plain = xml("<slot xmlns='urn:xmpp:http:upload:0'>
            <put url='http://upload.example/f'/><get url='https://d.example/f'/></slot>")?;
        assert!(matches!(
            parse_slot(&plain),
            Err(SlotError::NotHttps {
                which: "upload",
                ..
            })
        ));
        let file = xml("<slot xmlns='urn:xmpp:http:upload:0'>
            <put url='https://u.example/f'/><get url='file:///etc/passwd'/></slot>")?;
        assert!(matches!(
            parse_slot(&file),
            Err(SlotError::NotHttps {
                which: "download",
                ..
            })
        ));
        let headers = xml("<slot xmlns='urn:xmpp:http:upload:0'>
            <put url='https://u.example/f'>
              <header name='Host'>evil.example</header>
              <header name='authorization'>Bearer x&#13;&#10;X-Evil: 1</header>
            </put><get url='https://u.example/f'/></slot>")?;
        assert_eq!(
            parse_slot(&headers)?.headers,
            [("Authorization".to_owned(), "Bearer xX-Evil: 1".to_owned())]
        );
        // Not a char boundary at byte 8: refused, no panic.
        let odd = xml("<slot xmlns='urn:xmpp:http:upload:0'>
            <put url='httpséééé'/><get url='https://u.example/f'/></slot>")?;
        assert!(parse_slot(&odd).is_err());
        assert!(parse_slot(&xml("<slot xmlns='urn:xmpp:http:upload:0'/>")?).is_err());
        assert!(parse_slot(&xml("<other xmlns='urn:xmpp:http:upload:0'/>")?).is_err());
        Ok(())
    }

    #[test]
    fn out_of_band_links() -> anyhow::Result<()> {
        let x = oob("https://d.example/a.png");
        assert_eq!(
            oob_url(&[xml("<body xmlns='jabber:client'>x</body>")?, x]),
            Some("https://d.example/a.png".to_owned())
        );
        assert_eq!(oob_url(&[]), None);
        Ok(())
    }

    #[test]
    fn file_metadata_goes_out_and_comes_back() -> anyhow::Result<()> {
        let url = "https://d.example/x/photo.jpg";
        let meta = FileMeta {
            name: Some("photo.jpg".into()),
            media_type: Some("image/jpeg".into()),
            size: Some(123_456),
            width: Some(640),
            height: Some(480),
            thumbnail: Some(vec![0x89, b'P', b'N', b'G', 1, 2, 3]),
        };
        let el = file_sharing(url, &meta);
        // Through text, as it travels.
        let back: Element = String::from(&el).parse()?;
        assert_eq!(
            parse_file_sharing(std::slice::from_ref(&back)),
            Some((meta.clone(), vec![url.to_owned()]))
        );
        assert_eq!(
            shared_file(url, &[back]),
            Some(SharedFile {
                url: url.into(),
                meta
            })
        );
        Ok(())
    }

    /// Dino's form (XEP-0447 example with a thumbnail), and hostile variants.
    #[test]
    fn file_sharing_from_others() -> anyhow::Result<()> {
        let el = xml("<file-sharing xmlns='urn:xmpp:sfs:0' disposition='inline'>
            <file xmlns='urn:xmpp:file:metadata:0'>
              <media-type>image/jpeg</media-type><name>summit.jpg</name><size>3032449</size>
              <width>4096</width><height>2160</height>
              <thumbnail xmlns='urn:xmpp:thumbs:1' uri='data:image/png;base64,iVBORw0K'
                 media-type='image/png' width='16' height='9'/>
            </file>
            <sources><url-data xmlns='http://jabber.org/protocol/url-data'
               target='https://download.montague.lit/4a771ac1/summit.jpg'/></sources>
          </file-sharing>")?;
        let (meta, sources) = parse_file_sharing(&[el]).ok_or_else(|| anyhow::anyhow!("none"))?;
        assert_eq!(meta.name.as_deref(), Some("summit.jpg"));
        assert_eq!(
            (meta.width, meta.height, meta.size),
            (Some(4096), Some(2160), Some(3_032_449))
        );
        assert_eq!(
            meta.thumbnail.as_deref(),
            Some(&[0x89, b'P', b'N', b'G', 13, 10][..])
        );
        assert_eq!(
            sources,
            ["https://download.montague.lit/4a771ac1/summit.jpg"]
        );
        let hostile = xml("<file-sharing xmlns='urn:xmpp:sfs:0'>
            <file xmlns='urn:xmpp:file:metadata:0'>
              <media-type>text/html\"&gt;&lt;script</media-type><size>-1</size>
              <width>99999999999</width>
              <thumbnail xmlns='urn:xmpp:thumbs:1' uri='file:///etc/passwd'/>
            </file>
            <sources><url-data xmlns='http://jabber.org/protocol/url-data' target='file:///etc/passwd'/>
              <url-data xmlns='http://jabber.org/protocol/url-data' target='http://plain.example/f'/></sources>
          </file-sharing>")?;
        let (meta, sources) =
            parse_file_sharing(&[hostile]).ok_or_else(|| anyhow::anyhow!("none"))?;
        assert_eq!(meta.media_type, None);
        assert_eq!(meta.size, None);
        assert_eq!(meta.width, Some(u32::MAX));
        assert_eq!(meta.thumbnail, None);
        assert!(sources.is_empty());
        Ok(())
    }

    #[test]
    fn which_messages_share_a_file() -> anyhow::Result<()> {
        let url = "https://d.example/a.png";
        // Announced by OOB: a file. A typed link: text.
        assert!(shared_file(url, &[oob(url)]).is_some());
        assert!(shared_file(&format!(" {url}\n"), &[oob(url)]).is_some());
        assert_eq!(shared_file(url, &[]), None);
        assert_eq!(
            shared_file(url, &[oob("https://d.example/other.png")]),
            None
        );
        assert_eq!(shared_file(&format!("look {url}"), &[oob(url)]), None);
        // Not https: never a file to fetch.
        assert_eq!(
            shared_file("http://d.example/a.png", &[oob("http://d.example/a.png")]),
            None
        );
        assert_eq!(
            shared_file("file:///etc/passwd", &[oob("file:///etc/passwd")]),
            None
        );
        // aesgcm:// is a file by itself (it comes out of an encrypted message).
        let link = "aesgcm://d.example/a.png#00112233";
        assert_eq!(
            shared_file(link, &[]),
            Some(SharedFile {
                url: link.into(),
                meta: FileMeta::default()
            })
        );
        Ok(())
    }
}
