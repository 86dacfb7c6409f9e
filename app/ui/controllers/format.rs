//! Text and colour formatting shared by the views: initials, avatar tints, time labels, and
//! message bodies as Slint styled text (markdown) with clickable links.

use chrono::{DateTime, Datelike, Local, NaiveDate, TimeZone};

/// Up to two letters for an avatar: the first letters of the first two words of a name, or
/// the first letter of a JID's local part.
pub fn initials(name: &str) -> String {
    let base = name.split('@').next().unwrap_or(name);
    let mut out = String::new();
    for word in base
        .split(|c: char| c.is_whitespace() || c == '.' || c == '_' || c == '-')
        .filter(|w| !w.is_empty())
        .take(2)
    {
        if let Some(c) = word.chars().next() {
            out.extend(c.to_uppercase());
        }
    }
    if out.is_empty() {
        out.push('?');
    }
    out
}

/// A stable avatar colour for a JID: the hue comes from a hash of the JID, so the same
/// contact has the same colour everywhere (in the spirit of XEP-0392), with fixed saturation
/// and lightness readable under white initials in both themes.
pub fn tint(jid: &str) -> (u8, u8, u8) {
    // FNV-1a: stable across runs and platforms.
    let mut h: u32 = 0x811c_9dc5;
    for b in jid.as_bytes() {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    hsl_to_rgb((h % 360) as f32, 0.55, 0.42)
}

fn hsl_to_rgb(h: f32, s: f32, l: f32) -> (u8, u8, u8) {
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let hp = h / 60.0;
    let x = c * (1.0 - (hp % 2.0 - 1.0).abs());
    let (r, g, b) = match hp as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = l - c / 2.0;
    let to = |v: f32| ((v + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    (to(r), to(g), to(b))
}

/// XEP-0392 (Consistent Color Generation, v0.8) hue angle in degrees for a nick or an
/// occupant id: the first two bytes of its SHA-1, little endian, mapped onto the circle.
/// Dino, Conversations and Gajim derive their nick colours the same way, so a person has
/// the same hue in every client. The view turns it into a colour readable in its theme.
pub fn nick_hue(key: &str) -> f32 {
    let h = sha1(key.as_bytes());
    let v = u16::from(h[0]) | (u16::from(h[1]) << 8);
    f32::from(v) / 65536.0 * 360.0
}

/// SHA-1 (FIPS 180-4), only for XEP-0392 colours: never for anything secret.
fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let bit_len = (data.len() as u64).wrapping_mul(8);
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, v) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(v);
        }
    }
    let mut out = [0u8; 20];
    for (chunk, v) in out.chunks_exact_mut(4).zip(h) {
        chunk.copy_from_slice(&v.to_be_bytes());
    }
    out
}

/// Local date and time of a timestamp in milliseconds since the epoch.
pub fn local(ts_ms: i64) -> DateTime<Local> {
    Local
        .timestamp_millis_opt(ts_ms)
        .single()
        .unwrap_or_else(Local::now)
}

/// "14:05".
pub fn clock<Tz: TimeZone>(t: &DateTime<Tz>) -> String
where
    Tz::Offset: std::fmt::Display,
{
    t.format("%H:%M").to_string()
}

/// Label for a conversation list row: the time today, "Yesterday", the weekday within a
/// week, else the date.
pub fn list_time<Tz: TimeZone>(t: &DateTime<Tz>, today: NaiveDate) -> String
where
    Tz::Offset: std::fmt::Display,
{
    let day = t.date_naive();
    let age = (today - day).num_days();
    match age {
        0 => clock(t),
        1 => "Yesterday".to_owned(),
        2..=6 => t.format("%a").to_string(),
        _ if day.year() == today.year() => t.format("%-d %b").to_string(),
        _ => t.format("%-d %b %Y").to_string(),
    }
}

/// Label for a day separator in a timeline.
pub fn day_label(day: NaiveDate, today: NaiveDate) -> String {
    match (today - day).num_days() {
        0 => "Today".to_owned(),
        1 => "Yesterday".to_owned(),
        2..=6 => day.format("%A").to_string(),
        _ if day.year() == today.year() => day.format("%A %-d %B").to_string(),
        _ => day.format("%-d %B %Y").to_string(),
    }
}

/// Schemes a link in a message may use to be clickable (and opened by the desktop).
pub const LINK_SCHEMES: &[&str] = &["https://", "http://", "xmpp:", "mailto:", "geo:"];

/// Whether `url` may be handed to the desktop's opener.
pub fn is_openable(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    LINK_SCHEMES.iter().any(|s| lower.starts_with(s)) && !url.chars().any(char::is_control)
}

/// A message body as markdown for Slint's `StyledText`: every character the user typed is
/// shown literally (markdown and HTML are escaped), and URLs become links.
pub fn body_markdown(text: &str) -> String {
    body_markdown_mentioning(text, None)
}

/// Like [`body_markdown`], with every mention of `nick` (our nick in a room: as a word,
/// ASCII case ignored, outside links) in bold.
pub fn body_markdown_mentioning(text: &str, nick: Option<&str>) -> String {
    // Bold needs a closing `**` after a letter or digit to be sure CommonMark closes it.
    let nick = nick.filter(|n| {
        !n.is_empty()
            && n.chars().next_back().is_some_and(char::is_alphanumeric)
            && n.chars().next().is_some_and(char::is_alphanumeric)
    });
    let plain = |part: &str, out: &mut String| match nick {
        Some(n) => {
            let mut rest = part;
            while let Some(at) = find_word(rest, n) {
                escape_into(&rest[..at], out);
                out.push_str("**");
                escape_into(&rest[at..at + n.len()], out);
                out.push_str("**");
                rest = &rest[at + n.len()..];
            }
            escape_into(rest, out);
        }
        None => escape_into(part, out),
    };
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some((start, end)) = find_link(rest) {
        plain(&rest[..start], &mut out);
        let url = &rest[start..end];
        out.push('[');
        escape_into(url, &mut out);
        out.push_str("](");
        // Inside the destination only parentheses, spaces and '<>' matter; URLs we found
        // have no whitespace, and we percent-encode the rest.
        for c in url.chars() {
            match c {
                '(' => out.push_str("%28"),
                ')' => out.push_str("%29"),
                '<' => out.push_str("%3C"),
                '>' => out.push_str("%3E"),
                '\\' => out.push_str("%5C"),
                c => out.push(c),
            }
        }
        out.push(')');
        rest = &rest[end..];
    }
    plain(rest, &mut out);
    out
}

/// Byte offset of the first occurrence of `word` in `s` that stands as a word (no letter
/// or digit right before or after it), ASCII case ignored.
pub fn find_word(s: &str, word: &str) -> Option<usize> {
    if word.is_empty() {
        return None;
    }
    s.char_indices().find_map(|(i, _)| {
        let cand = s.get(i..i + word.len())?;
        if !cand.eq_ignore_ascii_case(word) {
            return None;
        }
        let before = s[..i].chars().next_back();
        let after = s[i + word.len()..].chars().next();
        let free = |c: Option<char>| !c.is_some_and(char::is_alphanumeric);
        (free(before) && free(after)).then_some(i)
    })
}

/// Finds the first link in `s`: a known scheme up to the next whitespace, minus trailing
/// punctuation that usually ends a sentence.
fn find_link(s: &str) -> Option<(usize, usize)> {
    let lower = s.to_ascii_lowercase();
    let start = LINK_SCHEMES
        .iter()
        .filter_map(|scheme| {
            lower.match_indices(scheme).find_map(|(i, _)| {
                // Only at a word start.
                let ok = i == 0
                    || !s[..i]
                        .chars()
                        .next_back()
                        .is_some_and(char::is_alphanumeric);
                ok.then_some(i)
            })
        })
        .min()?;
    let tail = &s[start..];
    let mut end = start + tail.find(char::is_whitespace).unwrap_or(tail.len());
    while end > start {
        let last = s[..end].chars().next_back()?;
        if matches!(last, '.' | ',' | ';' | ':' | '!' | '?' | '\'' | '"')
            || (last == ')' && !s[start..end].contains('('))
        {
            end -= last.len_utf8();
        } else {
            break;
        }
    }
    let scheme_len = LINK_SCHEMES
        .iter()
        .find(|sc| lower[start..].starts_with(**sc))
        .map_or(0, |sc| sc.len());
    (end > start + scheme_len).then_some((start, end))
}

/// Escapes markdown and HTML so text shows literally; newlines become hard line breaks.
fn escape_into(text: &str, out: &mut String) {
    let mut at_line_start = true;
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '(' | ')' | '#' | '+' | '-' | '.'
            | '!' | '|' | '~' | '>' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '&' => out.push_str("&amp;"),
            '\n' => {
                // Two trailing spaces: a hard break in CommonMark.
                out.push_str("  \n");
                at_line_start = true;
                continue;
            }
            ' ' if at_line_start => out.push_str("&#32;"),
            c => out.push(c),
        }
        at_line_start = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{FixedOffset, NaiveDate};

    #[test]
    fn initials_from_names_and_jids() {
        assert_eq!(initials("Bob the Bot"), "BT");
        assert_eq!(initials("alice@example.org"), "A");
        assert_eq!(initials("jean-luc.picard@x"), "JL");
        assert_eq!(initials("élodie"), "É");
        assert_eq!(initials(""), "?");
    }

    #[test]
    fn tints_are_stable_and_differ() {
        assert_eq!(tint("bob@example.org"), tint("bob@example.org"));
        assert_ne!(tint("bob@example.org"), tint("alice@example.org"));
    }

    #[test]
    fn nick_hues_follow_xep_0392() {
        // The XEP's own test vectors (§13.1).
        let close = |a: f32, b: f32| (a - b).abs() < 0.001;
        assert!(close(nick_hue("Romeo"), 327.255_25));
        assert!(close(nick_hue("juliet@capulet.lit"), 209.410_4));
        assert!(close(nick_hue("😺"), 331.199_34));
        assert!(close(nick_hue("council"), 359.994_5));
        assert!(close(nick_hue("Board"), 171.430_66));
        // SHA-1 itself, including a two-block message.
        let hex = |b: [u8; 20]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(
            hex(sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex(sha1(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
    }

    #[test]
    fn mentions_of_our_nick_are_bold() {
        assert_eq!(
            body_markdown_mentioning("hi Alice, and alice.", Some("alice")),
            "hi **Alice**, and **alice**\\."
        );
        // Only whole words, never inside a link.
        assert_eq!(
            body_markdown_mentioning("malice https://x.org/alice", Some("alice")),
            "malice [https://x\\.org/alice](https://x.org/alice)"
        );
        assert_eq!(body_markdown_mentioning("a*b", None), "a\\*b");
        assert_eq!(find_word("Bob, bobby", "bob"), Some(0));
        assert_eq!(find_word("bobby", "bob"), None);
        assert_eq!(find_word("élan bob", "bob"), Some(6));
    }

    #[test]
    fn time_labels() {
        let tz = FixedOffset::east_opt(3600).expect("offset");
        let today = NaiveDate::from_ymd_opt(2026, 11, 26).expect("date");
        let at = |d: u32, h: u32| {
            tz.with_ymd_and_hms(2026, 11, d, h, 5, 0)
                .single()
                .expect("time")
        };
        assert_eq!(list_time(&at(26, 14), today), "14:05");
        assert_eq!(list_time(&at(25, 9), today), "Yesterday");
        assert_eq!(list_time(&at(23, 9), today), "Mon");
        assert_eq!(list_time(&at(2, 9), today), "2 Nov");
        assert_eq!(day_label(today, today), "Today");
        assert_eq!(
            day_label(NaiveDate::from_ymd_opt(2025, 3, 3).expect("date"), today),
            "3 March 2025"
        );
    }

    #[test]
    fn markdown_escapes_and_links() {
        assert_eq!(body_markdown("a *b* <i>"), "a \\*b\\* &lt;i\\>");
        assert_eq!(
            body_markdown("see https://example.org/a_(b). ok"),
            "see [https://example\\.org/a\\_\\(b\\)](https://example.org/a_%28b%29)\\. ok"
        );
        assert_eq!(body_markdown("line1\nline2"), "line1  \nline2");
        assert_eq!(body_markdown("# not a heading"), "\\# not a heading");
        // A bare scheme is not a link; a scheme inside a word is not a link start.
        assert_eq!(body_markdown("https:// x"), "https:// x");
        assert!(!body_markdown("foohttp://x.org").contains("]("));
        assert!(body_markdown("xmpp:bob@example.org?message").starts_with("[xmpp:bob@example"));
    }

    #[test]
    fn only_safe_schemes_open() {
        assert!(is_openable("https://example.org"));
        assert!(is_openable("xmpp:bob@example.org"));
        assert!(!is_openable("file:///etc/passwd"));
        assert!(!is_openable("javascript:alert(1)"));
        assert!(!is_openable("https://x\n--evil"));
    }
}
