//! XEP-0363: HTTP File Upload (v1.1, `urn:xmpp:http:upload:0`): finding the upload service
//! and its size limit, asking for a slot, and reading the slot the server gives — strictly:
//! the PUT and GET URLs must be https, and only the headers the XEP allows are kept (a server
//! must not make the client send anything else). Also XEP-0066 Out-of-Band Data, the `<x/>`
//! that tells receivers a message body is a file link.

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
}
