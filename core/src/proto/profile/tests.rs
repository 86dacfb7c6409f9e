//! Tests of [`super`], on the XEPs' examples.

use super::*;
use anyhow::anyhow;
use base64::engine::general_purpose::STANDARD as BASE64;

fn encode(img: DynamicImage, format: ImageFormat) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), format)?;
    Ok(out)
}

fn gradient(w: u32, h: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    }))
}

fn decode(bytes: &[u8]) -> anyhow::Result<DynamicImage> {
    Ok(image::load_from_memory_with_format(
        bytes,
        ImageFormat::Png,
    )?)
}

fn data_result(id: &str, bytes: &[u8]) -> anyhow::Result<Element> {
    // Line-wrapped, as some clients send it.
    let b64 = BASE64.encode(bytes);
    let wrapped: Vec<&str> = b64
        .as_bytes()
        .chunks(76)
        .map(std::str::from_utf8)
        .collect::<Result<_, _>>()?;
    Ok(format!(
        "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:avatar:data'>\
         <item id='{id}'><data xmlns='urn:xmpp:avatar:data'>\n{}\n</data></item></items>\
         </pubsub>",
        wrapped.join("\n")
    )
    .parse()?)
}

#[test]
fn png_is_scaled_to_fit_and_deterministic() -> anyhow::Result<()> {
    let input = encode(gradient(400, 200), ImageFormat::Png)?;
    let a = prepare_avatar(&input)?;
    assert_eq!((a.width, a.height), (192, 96));
    assert_eq!(a.media_type, "image/png");
    assert_eq!(a.id, sha1_hex(&a.bytes));
    assert_eq!(a.id.len(), 40);
    let out = decode(&a.bytes)?;
    assert_eq!((out.width(), out.height()), (192, 96));
    assert_eq!(prepare_avatar(&input)?, a, "same input, same bytes and id");

    // Small pictures are not scaled up.
    let small = prepare_avatar(&encode(gradient(50, 30), ImageFormat::Png)?)?;
    assert_eq!((small.width, small.height), (50, 30));
    Ok(())
}

#[test]
fn jpeg_and_webp_inputs() -> anyhow::Result<()> {
    let a = prepare_avatar(&encode(gradient(300, 600), ImageFormat::Jpeg)?)?;
    assert_eq!((a.width, a.height), (96, 192));
    assert!(a.bytes.starts_with(b"\x89PNG"));
    let w = prepare_avatar(&encode(gradient(200, 200), ImageFormat::WebP)?)?;
    assert_eq!((w.width, w.height), (192, 192));
    assert_eq!(w.media_type, "image/png");
    Ok(())
}

/// A JPEG whose EXIF says "rotate 90° clockwise to display" (orientation 6).
#[test]
fn exif_orientation_is_applied() -> anyhow::Result<()> {
    let img = image::RgbImage::from_fn(40, 20, |x, _| {
        if x < 20 {
            image::Rgb([255, 0, 0])
        } else {
            image::Rgb([0, 0, 255])
        }
    });
    let jpeg = encode(DynamicImage::ImageRgb8(img), ImageFormat::Jpeg)?;
    let tiff: &[u8] = b"MM\x00\x2a\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\
          \x00\x06\x00\x00\x00\x00\x00\x00";
    let mut app1 = vec![0xFF, 0xE1, 0, (2 + 6 + tiff.len()) as u8];
    app1.extend_from_slice(b"Exif\0\0");
    app1.extend_from_slice(tiff);
    let mut input = jpeg[..2].to_vec();
    input.extend(app1);
    input.extend_from_slice(&jpeg[2..]);

    let a = prepare_avatar(&input)?;
    assert_eq!((a.width, a.height), (20, 40), "rotated to portrait");
    let out = decode(&a.bytes)?.to_rgb8();
    let top = out.get_pixel(10, 5);
    let bottom = out.get_pixel(10, 34);
    assert!(
        top[0] > 200 && top[2] < 60,
        "left (red) is now on top: {top:?}"
    );
    assert!(bottom[2] > 200 && bottom[0] < 60, "{bottom:?}");
    Ok(())
}

#[test]
fn junk_and_huge_inputs_are_refused() -> anyhow::Result<()> {
    for junk in [&b""[..], b"hello, world", b"\x89PNG\r\n\x1a\n truncated"] {
        let e = prepare_avatar(junk)
            .err()
            .ok_or_else(|| anyhow!("accepted junk"))?;
        assert!(matches!(e, ProfileError::NotAnImage(_)), "{e:?}");
        assert!(e.to_string().contains("choose a PNG, JPEG or WebP image"));
    }
    let gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;";
    let e = prepare_avatar(gif)
        .err()
        .ok_or_else(|| anyhow!("accepted a GIF"))?;
    assert!(
        e.to_string().contains("gif images are not supported"),
        "{e}"
    );

    let big = vec![0u8; MAX_INPUT_BYTES + 1];
    let e = prepare_avatar(&big)
        .err()
        .ok_or_else(|| anyhow!("accepted 20 MiB"))?;
    assert!(matches!(e, ProfileError::TooLarge { .. }), "{e:?}");

    // Tiny file, too many pixels: refused from the header, before decoding.
    let wide = encode(
        DynamicImage::ImageLuma8(image::GrayImage::new(MAX_INPUT_DIMENSION + 1, 1)),
        ImageFormat::Png,
    )?;
    let e = prepare_avatar(&wide)
        .err()
        .ok_or_else(|| anyhow!("accepted 10001 px"))?;
    assert!(matches!(e, ProfileError::TooManyPixels { .. }), "{e:?}");
    Ok(())
}

#[test]
fn publish_data_and_metadata() -> anyhow::Result<()> {
    let a = prepare_avatar(&encode(gradient(64, 64), ImageFormat::Png)?)?;
    let data = String::from(&Element::from(publish_data(&a)));
    assert!(data.contains("node='urn:xmpp:avatar:data'"), "{data}");
    assert!(data.contains(&format!("<item id='{}'>", a.id)), "{data}");
    assert!(data.contains(&BASE64.encode(&a.bytes)), "{data}");
    assert!(data.contains("pubsub#access_model") && data.contains("<value>open</value>"));

    let meta = Element::from(publish_metadata(&a));
    let xml = String::from(&meta);
    assert!(xml.contains("node='urn:xmpp:avatar:metadata'"), "{xml}");
    assert!(xml.contains("<value>open</value>"), "{xml}");
    let payload = meta
        .get_child("publish", xmpp_parsers::ns::PUBSUB)
        .and_then(|p| p.get_child("item", xmpp_parsers::ns::PUBSUB))
        .and_then(|i| i.get_child("metadata", AVATAR_METADATA))
        .ok_or_else(|| anyhow!("no metadata in {xml}"))?;
    let r = parse_metadata(payload)
        .flatten()
        .ok_or_else(|| anyhow!("own metadata unreadable"))?;
    assert_eq!(r.id, a.id);
    assert_eq!(r.bytes as usize, a.bytes.len());
    assert_eq!((r.width, r.height), (Some(64), Some(64)));

    let off = String::from(&Element::from(disable_metadata()));
    assert!(
        off.contains("<metadata xmlns='urn:xmpp:avatar:metadata'/>"),
        "{off}"
    );
    let req = String::from(&Element::from(request_data(&a.id)));
    assert!(req.contains(&format!("<item id='{}'/>", a.id)), "{req}");
    let req = String::from(&Element::from(request_metadata()));
    assert!(req.contains("max_items='1'"), "{req}");
    Ok(())
}

/// XEP-0084 Example 5 (notification), Example 9 (disabling), Example 11 (several formats)
/// and Example 4 (only an HTTP URL).
#[test]
fn xep_0084_metadata() -> anyhow::Result<()> {
    let ev: Element = "<event xmlns='http://jabber.org/protocol/pubsub#event'>\
         <items node='urn:xmpp:avatar:metadata'>\
         <item id='111f4b3c50d7b0df729d299bc6f8e9ef9066971f'>\
         <metadata xmlns='urn:xmpp:avatar:metadata'>\
         <info bytes='12345' height='64' id='111f4b3c50d7b0df729d299bc6f8e9ef9066971f' \
         type='image/png' width='64'/></metadata></item></items></event>"
        .parse()?;
    let r = parse_metadata_event(&ev)
        .flatten()
        .ok_or_else(|| anyhow!("no avatar"))?;
    assert_eq!(
        r,
        AvatarRef {
            id: "111f4b3c50d7b0df729d299bc6f8e9ef9066971f".to_owned(),
            media_type: "image/png".to_owned(),
            bytes: 12345,
            width: Some(64),
            height: Some(64),
            url: None,
        }
    );

    let off: Element = "<event xmlns='http://jabber.org/protocol/pubsub#event'>\
         <items node='urn:xmpp:avatar:metadata'><item>\
         <metadata xmlns='urn:xmpp:avatar:metadata'/></item></items></event>"
        .parse()?;
    assert_eq!(parse_metadata_event(&off), Some(None));
    let purge: Element = "<event xmlns='http://jabber.org/protocol/pubsub#event'>\
         <purge node='urn:xmpp:avatar:metadata'/></event>"
        .parse()?;
    assert_eq!(parse_metadata_event(&purge), Some(None));
    let other: Element = "<event xmlns='http://jabber.org/protocol/pubsub#event'>\
         <items node='http://jabber.org/protocol/nick'><item>\
         <nick xmlns='http://jabber.org/protocol/nick'>x</nick></item></items></event>"
        .parse()?;
    assert_eq!(parse_metadata_event(&other), None);

    let several: Element = "<pubsub xmlns='http://jabber.org/protocol/pubsub'>\
         <items node='urn:xmpp:avatar:metadata'>\
         <item id='111f4b3c50d7b0df729d299bc6f8e9ef9066971f'>\
         <metadata xmlns='urn:xmpp:avatar:metadata'>\
         <info bytes='23456' height='64' id='357a8123a30844a3aa99861b6349264ba67a5694' \
         type='image/gif' url='http://avatars.example.org/happy.gif' width='64'/>\
         <info bytes='12345' height='64' id='e279f80c38f99c1e7e53e262b440993b2f7eea57' \
         type='image/png' url='http://avatars.example.org/happy.png' width='64'/>\
         <info bytes='12345' height='64' id='111F4B3C50D7B0DF729D299BC6F8E9EF9066971F' \
         type='image/png' width='64'/>\
         <pointer><x xmlns='http://example.com/virtualworlds'><game>Ancapistan</game>\
         </x></pointer></metadata></item></items></pubsub>"
        .parse()?;
    let r = parse_metadata_items(&several).ok_or_else(|| anyhow!("no avatar"))?;
    assert_eq!(
        r.id, "111f4b3c50d7b0df729d299bc6f8e9ef9066971f",
        "PNG on the data node"
    );
    assert_eq!(r.url, None);

    let url_only: Element = "<pubsub xmlns='http://jabber.org/protocol/pubsub'>\
         <items node='urn:xmpp:avatar:metadata'><item id='x'>\
         <metadata xmlns='urn:xmpp:avatar:metadata'>\
         <info bytes='23456' height='64' id='357a8123a30844a3aa99861b6349264ba67a5694' \
         type='image/gif' url='http://avatars.example.org/happy.gif' width='64'/>\
         </metadata></item></items></pubsub>"
        .parse()?;
    let r = parse_metadata_items(&url_only).ok_or_else(|| anyhow!("no avatar"))?;
    assert_eq!(
        r.url.as_deref(),
        Some("http://avatars.example.org/happy.gif")
    );
    Ok(())
}

/// Ids that are not SHA-1 hex (including 40 bytes of non-ASCII, which would make a naive
/// hex decoder slice inside a character) and missing sizes are skipped, not fatal.
#[test]
fn hostile_metadata() -> anyhow::Result<()> {
    let weird = format!("a{}a", "é".repeat(19));
    assert_eq!(weird.len(), 40);
    let xml = format!(
        "<pubsub xmlns='http://jabber.org/protocol/pubsub'>\
         <items node='urn:xmpp:avatar:metadata'><item id='x'>\
         <metadata xmlns='urn:xmpp:avatar:metadata'>\
         <info bytes='1' id='{weird}' type='image/png'/>\
         <info bytes='1' id='../../etc/passwd' type='image/png'/>\
         <info id='357a8123a30844a3aa99861b6349264ba67a5694' type='image/png'/>\
         <info bytes='-5' id='357a8123a30844a3aa99861b6349264ba67a5694' type='image/png'/>\
         <info bytes='9' id='357a8123a30844a3aa99861b6349264ba67a5694' type='image/png' \
         width='99999'/></metadata></item></items></pubsub>"
    );
    let r = parse_metadata_items(&xml.parse()?).ok_or_else(|| anyhow!("no avatar"))?;
    assert_eq!((r.bytes, r.width), (9, None));
    Ok(())
}

#[test]
fn data_is_verified() -> anyhow::Result<()> {
    let a = prepare_avatar(&encode(gradient(10, 10), ImageFormat::Png)?)?;
    let ok = data_result(&a.id, &a.bytes)?;
    assert_eq!(parse_data(&ok, &a.id.to_uppercase())?, a.bytes);

    // The server answers with other bytes under the right id: refused.
    let swapped = data_result(&a.id, b"someone else's picture")?;
    let e = parse_data(&swapped, &a.id)
        .err()
        .ok_or_else(|| anyhow!("swap accepted"))?;
    assert!(matches!(e, ProfileError::HashMismatch { .. }), "{e:?}");
    let e = parse_data(&ok, "111f4b3c50d7b0df729d299bc6f8e9ef9066971f")
        .err()
        .ok_or_else(|| anyhow!("wrong id accepted"))?;
    assert!(matches!(e, ProfileError::HashMismatch { .. }), "{e:?}");

    // XEP-0084 Example 7, whose data is elided ("..."): not base64.
    let example: Element = "<pubsub xmlns='http://jabber.org/protocol/pubsub'>\
         <items node='urn:xmpp:avatar:data'>\
         <item id='111f4b3c50d7b0df729d299bc6f8e9ef9066971f'>\
         <data xmlns='urn:xmpp:avatar:data'>\n  qANQR1DBwU4DX7jmYZnncm...\n</data>\
         </item></items></pubsub>"
        .parse()?;
    let e = parse_data(&example, "111f4b3c50d7b0df729d299bc6f8e9ef9066971f")
        .err()
        .ok_or_else(|| anyhow!("junk accepted"))?;
    assert!(matches!(e, ProfileError::Malformed(_)), "{e:?}");
    assert!(matches!(
        parse_data(&ok, "not-a-hash"),
        Err(ProfileError::Malformed(_))
    ));

    // The cap applies before decoding (a whole 2 MiB stanza is slow to build in debug).
    let huge = "QUFB\n".repeat(MAX_RECEIVED_BYTES / 3 + 1);
    assert!(matches!(
        decode_base64(&huge, "test"),
        Err(ProfileError::ReceivedTooLarge { .. })
    ));
    assert_eq!(
        decode_base64(&huge[5..], "test")?.len(),
        MAX_RECEIVED_BYTES - 2
    );
    Ok(())
}

/// XEP-0153 Example 3 (presence) and a vCard with a line-wrapped BINVAL (Example 1 shape).
#[test]
fn vcard_temp_fallback() -> anyhow::Result<()> {
    let x: Element = "<x xmlns='vcard-temp:x:update'>\
         <photo>01b87fcd030b72895ff8e88db57ec525450f000D</photo></x>"
        .parse()?;
    assert_eq!(
        parse_vcard_update(&x),
        Some(Some("01b87fcd030b72895ff8e88db57ec525450f000d".to_owned()))
    );
    let none: Element = "<x xmlns='vcard-temp:x:update'><photo/></x>".parse()?;
    assert_eq!(parse_vcard_update(&none), Some(None));
    let unknown: Element = "<x xmlns='vcard-temp:x:update'/>".parse()?;
    assert_eq!(parse_vcard_update(&unknown), None);
    let weird = format!(
        "<x xmlns='vcard-temp:x:update'><photo>a{}a</photo></x>",
        "é".repeat(19)
    );
    assert_eq!(parse_vcard_update(&weird.parse()?), None);

    assert_eq!(
        String::from(&vcard_temp_request()),
        "<vCard xmlns='vcard-temp'/>"
    );
    let jpeg = encode(gradient(8, 8), ImageFormat::Jpeg)?;
    let b64 = BASE64.encode(&jpeg);
    let (head, tail) = b64.split_at(20);
    let card: Element = format!(
        "<vCard xmlns='vcard-temp'><FN>Juliet</FN><PHOTO>\
         <TYPE>image/jpeg</TYPE><BINVAL>\n  {head}\n  {tail}\n</BINVAL></PHOTO></vCard>"
    )
    .parse()?;
    assert_eq!(
        parse_vcard_temp_photo(&card),
        Some((jpeg.clone(), "image/jpeg".to_owned()))
    );
    // No TYPE: sniffed.
    let card: Element =
        format!("<vCard xmlns='vcard-temp'><PHOTO><BINVAL>{b64}</BINVAL></PHOTO></vCard>")
            .parse()?;
    assert_eq!(
        parse_vcard_temp_photo(&card).map(|p| p.1).as_deref(),
        Some("image/jpeg")
    );
    let ext: Element = "<vCard xmlns='vcard-temp'><PHOTO>\
         <EXTVAL>http://example.org/me.png</EXTVAL></PHOTO></vCard>"
        .parse()?;
    assert_eq!(parse_vcard_temp_photo(&ext), None);
    let junk: Element = "<vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE>\
         <BINVAL>Base64-encoded-avatar-file-here!</BINVAL></PHOTO></vCard>"
        .parse()?;
    assert_eq!(parse_vcard_temp_photo(&junk), None);
    Ok(())
}

/// XEP-0172 Examples 4 and 5.
#[test]
fn xep_0172_nick() -> anyhow::Result<()> {
    let publish = String::from(&Element::from(publish_nick("CallMeIshmael")));
    assert!(
        publish.contains("<nick xmlns='http://jabber.org/protocol/nick'>CallMeIshmael</nick>"),
        "{publish}"
    );
    assert!(publish.contains("<value>open</value>"), "{publish}");

    let ev: Element = "<event xmlns='http://jabber.org/protocol/pubsub#event'>\
         <items node='http://jabber.org/protocol/nick'><item>\
         <nick xmlns='http://jabber.org/protocol/nick'>CallMeIshmael</nick>\
         </item></items></event>"
        .parse()?;
    assert_eq!(
        parse_nick_event(&ev),
        Some(Some("CallMeIshmael".to_owned()))
    );
    let retract: Element = "<event xmlns='http://jabber.org/protocol/pubsub#event'>\
         <items node='http://jabber.org/protocol/nick'><retract id='current'/></items></event>"
        .parse()?;
    assert_eq!(parse_nick_event(&retract), Some(None));

    let items: Element = "<pubsub xmlns='http://jabber.org/protocol/pubsub'>\
         <items node='http://jabber.org/protocol/nick'><item id='a'>\
         <nick xmlns='http://jabber.org/protocol/nick'>  Ish\u{7f}mael\n the\tsailor </nick>\
         </item></items></pubsub>"
        .parse()?;
    assert_eq!(
        parse_nick_items(&items).as_deref(),
        Some("Ishmael  the sailor")
    );
    let long = "x".repeat(1000);
    let xml = String::from(&Element::from(publish_nick(&long)));
    assert!(xml.contains(&"x".repeat(MAX_NAME_CHARS)) && !xml.contains(&"x".repeat(257)));
    Ok(())
}

/// XEP-0292 Example 2 (trimmed of a few repeated properties), then republished.
#[test]
fn xep_0292_vcard4() -> anyhow::Result<()> {
    let result: Element = "<pubsub xmlns='http://jabber.org/protocol/pubsub'>\
         <items node='urn:xmpp:vcard4'><item id='e0bf7714-a8dd-4749-8a18-e1979525b0d5'>\
         <vcard xmlns='urn:ietf:params:xml:ns:vcard-4.0'>\
         <fn><text>Peter Saint-Andre</text></fn>\
         <n><surname>Saint-Andre</surname><given>Peter</given><additional></additional></n>\
         <nickname><text>stpeter</text></nickname>\
         <nickname><text>psa</text></nickname>\
         <photo><uri>https://stpeter.im/images/stpeter_oscon.jpg</uri></photo>\
         <bday><date>1966-08-06</date></bday>\
         <adr><parameters><type><text>work</text><text>voice</text></type>\
         <pref><integer>1</integer></pref></parameters><ext>Suite 600</ext>\
         <street>1899 Wynkoop Street</street><locality>Denver</locality>\
         <region>CO</region><code>80202</code><country>USA</country></adr>\
         <tel><parameters><type><text>work</text><text>voice</text></type></parameters>\
         <uri>tel:+1-303-308-3282</uri></tel>\
         <url><uri>https://stpeter.im/</uri></url>\
         <note>\n<text>\n  More information about me is located on my\n  \
         personal website: https://stpeter.im/\n  </text>\n</note>\
         <email><parameters><type><text>work</text></type></parameters>\
         <text>psaintan@cisco.com</text></email>\
         <impp><parameters><type><text>home</text></type></parameters>\
         <uri>xmpp:stpeter@jabber.org</uri></impp>\
         </vcard></item></items></pubsub>"
        .parse()?;
    let (v, card) = parse_vcard4_items(&result).ok_or_else(|| anyhow!("no vCard"))?;
    assert_eq!(v.full_name.as_deref(), Some("Peter Saint-Andre"));
    assert_eq!(v.nickname.as_deref(), Some("stpeter"));
    assert_eq!(v.url.as_deref(), Some("https://stpeter.im/"));
    let note = v.note.clone().ok_or_else(|| anyhow!("no note"))?;
    assert!(note.starts_with("More information") && note.ends_with("https://stpeter.im/"));
    assert!(note.contains('\n'), "line breaks kept: {note:?}");

    let edited = Vcard4 {
        full_name: Some("Peter".to_owned()),
        nickname: Some("\u{1b}[31mpsa2".to_owned()),
        note: Some("x".repeat(10_000)),
        url: Some("javascript:alert(1)".to_owned()),
    };
    let xml = String::from(&Element::from(publish_vcard4(&edited, Some(&card))));
    assert!(xml.contains("node='urn:xmpp:vcard4'") && xml.contains("<item id='current'>"));
    assert!(xml.contains("<value>open</value>"), "{xml}");
    assert!(xml.contains("<fn><text>Peter</text></fn>"), "{xml}");
    assert_eq!(xml.matches("<fn>").count(), 1);
    assert!(
        xml.contains("<nickname><text>[31mpsa2</text></nickname>"),
        "{xml}"
    );
    assert_eq!(
        xml.matches("<nickname>").count(),
        1,
        "old nicknames replaced"
    );
    assert!(
        !xml.contains("<url>") && !xml.contains("javascript"),
        "{xml}"
    );
    assert!(!xml.contains(&"x".repeat(MAX_NOTE_CHARS + 1)));
    for kept in [
        "psaintan@cisco.com",
        "Wynkoop",
        "tel:+1-303-308-3282",
        "stpeter_oscon",
    ] {
        assert!(xml.contains(kept), "{kept} kept: {xml}");
    }

    // The notification carrying what we published reads back as sanitised.
    let published = Element::from(publish_vcard4(&edited, None));
    let card = published
        .get_child("publish", xmpp_parsers::ns::PUBSUB)
        .and_then(|p| p.get_child("item", xmpp_parsers::ns::PUBSUB))
        .and_then(|i| i.get_child("vcard", VCARD4_NS))
        .ok_or_else(|| anyhow!("no vcard"))?;
    let ev: Element = format!(
        "<event xmlns='http://jabber.org/protocol/pubsub#event'>\
         <items node='urn:xmpp:vcard4'><item id='current'>{}</item></items></event>",
        String::from(card)
    )
    .parse()?;
    assert_eq!(parse_vcard4_event(&ev), Some(edited.sanitized()));
    let purge: Element = "<event xmlns='http://jabber.org/protocol/pubsub#event'>\
         <purge node='urn:xmpp:vcard4'/></event>"
        .parse()?;
    assert_eq!(parse_vcard4_event(&purge), Some(Vcard4::default()));
    let bare: Element = "<event xmlns='http://jabber.org/protocol/pubsub#event'>\
         <items node='urn:xmpp:vcard4'><item id='current'/></items></event>"
        .parse()?;
    assert_eq!(
        parse_vcard4_event(&bare),
        None,
        "pure notification: fetch it"
    );
    let req = String::from(&Element::from(request_vcard4()));
    assert!(req.contains("node='urn:xmpp:vcard4'") && req.contains("max_items='1'"));
    Ok(())
}
