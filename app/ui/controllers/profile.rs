//! Profiles in the views: what a person's page says about them, and the own-profile form
//! in Settings (which fields changed, the picture's file, error wording).

use std::path::{Path, PathBuf};

use starling_core::store::ProfileRecord;
use starling_core::{Error, ProfileUpdate};

use super::format;

/// What a person's page shows under their name. Empty strings are left out by the view.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageDetails {
    /// Their nickname, when the page's title is not already it.
    pub nick: String,
    /// Their full name (vCard), when the title is not already it.
    pub full_name: String,
    pub bio: String,
    /// Their web site, only when it is a link we would open.
    pub url: String,
}

fn field(v: Option<&str>) -> String {
    v.map(str::trim).unwrap_or_default().to_owned()
}

/// The details of `p` for a page titled `title`.
pub fn page_details(title: &str, p: &ProfileRecord) -> PageDetails {
    let nick = field(p.nick.as_deref());
    let full_name = field(p.full_name.as_deref());
    let url = field(p.url.as_deref());
    PageDetails {
        nick: if nick == title { String::new() } else { nick },
        full_name: if full_name == title {
            String::new()
        } else {
            full_name
        },
        bio: field(p.bio.as_deref()),
        url: if format::is_openable(&url) {
            url
        } else {
            String::new()
        },
    }
}

/// The own-profile form: the text fields and the picture's file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileForm {
    pub nick: String,
    pub full_name: String,
    pub bio: String,
    pub url: String,
    /// The file of a new picture as typed or chosen ("" keeps the current one).
    pub picture: String,
}

impl ProfileForm {
    /// The form filled from what we know of our profile.
    pub fn from_profile(p: Option<&ProfileRecord>) -> ProfileForm {
        ProfileForm {
            nick: field(p.and_then(|p| p.nick.as_deref())),
            full_name: field(p.and_then(|p| p.full_name.as_deref())),
            bio: p
                .and_then(|p| p.bio.as_deref())
                .unwrap_or_default()
                .trim()
                .to_owned(),
            url: field(p.and_then(|p| p.url.as_deref())),
            picture: String::new(),
        }
    }

    /// What to publish so that the profile becomes this form, against `saved` (what the
    /// server has). Only the fields that changed are sent; `None` when nothing did.
    pub fn update(&self, saved: &ProfileForm, home: Option<&Path>) -> Option<ProfileUpdate> {
        let changed =
            |new: &str, old: &str| (new.trim() != old.trim()).then(|| new.trim().to_owned());
        let u = ProfileUpdate {
            nick: changed(&self.nick, &saved.nick),
            full_name: changed(&self.full_name, &saved.full_name),
            bio: changed(&self.bio, &saved.bio),
            url: changed(&self.url, &saved.url),
            avatar: picture_path(&self.picture, home),
        };
        (u != ProfileUpdate::default()).then_some(u)
    }

    /// The form after the profile was reloaded as `fresh` while the user may have been
    /// typing: a field they changed since it was last `filled` keeps their text.
    pub fn merged(&self, filled: &ProfileForm, fresh: &ProfileForm) -> ProfileForm {
        let keep = |cur: &str, was: &str, new: &str| if cur == was { new } else { cur }.to_owned();
        ProfileForm {
            nick: keep(&self.nick, &filled.nick, &fresh.nick),
            full_name: keep(&self.full_name, &filled.full_name, &fresh.full_name),
            bio: keep(&self.bio, &filled.bio, &fresh.bio),
            url: keep(&self.url, &filled.url, &fresh.url),
            picture: self.picture.clone(),
        }
    }
}

/// The file a picture field names: trimmed, without the quotes or `file://` a file manager
/// adds when pasting, `~/` meaning the home directory. `None` when empty.
pub fn picture_path(input: &str, home: Option<&Path>) -> Option<PathBuf> {
    let s = input.trim();
    let s = s
        .strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .or_else(|| s.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
        .unwrap_or(s);
    let s = s.strip_prefix("file://").unwrap_or(s);
    if s.is_empty() {
        return None;
    }
    let decoded = percent_decode(s);
    match (decoded.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => Some(home.join(rest)),
        _ => Some(PathBuf::from(decoded)),
    }
}

/// `%20` and friends in a pasted `file://` URL.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push(((hex(h).unwrap_or(0) << 4) | hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_owned())
}

/// Why saving our profile failed, for the line under the form.
pub fn explain(account: &str, e: &Error) -> String {
    match e {
        Error::NotConnected(_) => {
            format!("{account} is offline; your profile can be saved when it is online.")
        }
        Error::Avatar(why) => {
            let mut s = format!("Cannot use this picture: {why}");
            if !s.ends_with('.') {
                s.push('.');
            }
            s
        }
        other => {
            let mut s = format!("Your profile was not saved: {other}");
            if !s.ends_with('.') {
                s.push('.');
            }
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(nick: Option<&str>, full: Option<&str>, url: Option<&str>) -> ProfileRecord {
        ProfileRecord {
            jid: "bob@x".into(),
            nick: nick.map(Into::into),
            full_name: full.map(Into::into),
            bio: Some(" Climbs things.\n".into()),
            url: url.map(Into::into),
            avatar: None,
        }
    }

    #[test]
    fn page_details_leave_out_what_the_title_says() {
        let p = record(
            Some("Bobby"),
            Some("Robert Marsh"),
            Some("https://bob.example/"),
        );
        let d = page_details("Bob", &p);
        assert_eq!(d.nick, "Bobby");
        assert_eq!(d.full_name, "Robert Marsh");
        assert_eq!(d.bio, "Climbs things.");
        assert_eq!(d.url, "https://bob.example/");
        let d = page_details("Bobby", &p);
        assert_eq!(d.nick, "", "the title is the nickname");
        let p = record(None, None, Some("javascript:alert(1)"));
        assert_eq!(
            page_details("bob@x", &p).url,
            "",
            "never a link we would not open"
        );
    }

    #[test]
    fn only_changed_fields_are_published() {
        let saved = ProfileForm::from_profile(Some(&record(Some("Bobby"), None, None)));
        assert_eq!(saved.bio, "Climbs things.");
        assert_eq!(saved.update(&saved, None), None, "nothing changed");
        let mut form = saved.clone();
        form.nick = " Bob M ".into();
        form.url = "https://bob.example".into();
        form.bio = "Climbs things. ".into();
        let u = form.update(&saved, None).expect("an update");
        assert_eq!(u.nick.as_deref(), Some("Bob M"));
        assert_eq!(u.url.as_deref(), Some("https://bob.example"));
        assert_eq!(u.bio, None, "spaces around are not a change");
        assert_eq!(u.full_name, None);
        assert_eq!(u.avatar, None);
        // Clearing a field publishes it empty.
        let mut form = saved.clone();
        form.nick.clear();
        assert_eq!(
            form.update(&saved, None)
                .expect("an update")
                .nick
                .as_deref(),
            Some("")
        );
        // A picture alone.
        let mut form = saved.clone();
        form.picture = "~/me.png".into();
        let u = form
            .update(&saved, Some(Path::new("/home/bob")))
            .expect("an update");
        assert_eq!(u.avatar.as_deref(), Some(Path::new("/home/bob/me.png")));
    }

    #[test]
    fn reloading_keeps_what_the_user_typed() {
        let filled = ProfileForm {
            nick: "Bob".into(),
            full_name: "".into(),
            ..ProfileForm::default()
        };
        let mut current = filled.clone();
        current.full_name = "Robert".into();
        current.picture = "/tmp/a.png".into();
        let fresh = ProfileForm {
            nick: "Bobby".into(),
            full_name: "R. Marsh".into(),
            url: "https://b.example".into(),
            ..ProfileForm::default()
        };
        let m = current.merged(&filled, &fresh);
        assert_eq!(m.nick, "Bobby", "untouched: updated");
        assert_eq!(m.full_name, "Robert", "typed: kept");
        assert_eq!(m.url, "https://b.example");
        assert_eq!(m.picture, "/tmp/a.png");
    }

    #[test]
    fn picture_paths_as_pasted() {
        let home = Some(Path::new("/home/me"));
        assert_eq!(picture_path("  ", home), None);
        assert_eq!(
            picture_path(" /tmp/a b.png ", home),
            Some(PathBuf::from("/tmp/a b.png"))
        );
        assert_eq!(
            picture_path("'/tmp/a b.png'", home),
            Some(PathBuf::from("/tmp/a b.png"))
        );
        assert_eq!(
            picture_path("file:///tmp/a%20b.png", home),
            Some(PathBuf::from("/tmp/a b.png"))
        );
        assert_eq!(
            picture_path("~/Pictures/me.jpg", home),
            Some(PathBuf::from("/home/me/Pictures/me.jpg"))
        );
        assert_eq!(
            picture_path("~/me.jpg", None),
            Some(PathBuf::from("~/me.jpg"))
        );
        assert_eq!(
            picture_path("100%.png", home),
            Some(PathBuf::from("100%.png"))
        );
    }

    #[test]
    fn errors_read_as_sentences() {
        let e = explain("me@x", &Error::NotConnected("me@x".into()));
        assert!(e.starts_with("me@x is offline"), "{e}");
        let e = explain(
            "me@x",
            &Error::Avatar("not an image: choose a PNG, JPEG or WebP image".into()),
        );
        assert_eq!(
            e,
            "Cannot use this picture: not an image: choose a PNG, JPEG or WebP image."
        );
        let e = explain("me@x", &Error::Timeout("publish"));
        assert!(
            e.starts_with("Your profile was not saved: the server did not answer"),
            "{e}"
        );
    }
}
