//! Profiles on [`Client`]: our avatar (XEP-0084), nickname (XEP-0172), name, bio and URL
//! (XEP-0292 vCard4), and reading other people's, with vCard-temp (XEP-0153) as the avatar
//! fallback for accounts that never published a PEP avatar.

use std::path::PathBuf;

use jid::BareJid;
use minidom::Element;

use super::{Client, Error, Event, Result, parse_bare, parse_contact};
use crate::proto::profile::{self, Vcard4};
use crate::services::avatars::AvatarCache;
use crate::store::ProfileRecord;

/// Changes to our own profile: `None` leaves a field as it is, `Some("")` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileUpdate {
    pub nick: Option<String>,
    pub full_name: Option<String>,
    pub bio: Option<String>,
    pub url: Option<String>,
    /// An image file (PNG, JPEG or WebP; scaled down to 192 px).
    pub avatar: Option<PathBuf>,
}

fn non_empty(s: String) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

impl Client {
    pub(crate) fn avatar_cache(&self) -> AvatarCache {
        AvatarCache::new(self.inner.profile_dir.join("avatars"))
    }

    /// What we know of someone's profile (no network).
    pub fn profile(&self, account: &str, jid: &str) -> Result<Option<ProfileRecord>> {
        let acc = self.inner.store.account(parse_bare(account)?.as_str())?;
        Ok(self
            .inner
            .store
            .profile(acc.id, parse_contact(jid)?.as_str())?)
    }

    /// The cached avatar image of someone, if we have one.
    pub fn avatar_path(&self, account: &str, jid: &str) -> Result<Option<PathBuf>> {
        Ok(self
            .profile(account, jid)?
            .and_then(|p| p.avatar)
            .and_then(|id| self.avatar_cache().path(&id)))
    }

    fn record_profile(
        &self,
        account: &str,
        jid: &BareJid,
        f: impl FnOnce(&mut ProfileRecord),
    ) -> Result<ProfileRecord> {
        let acc = self.inner.store.account(account)?;
        let (profile, changed) = self.inner.store.update_profile(acc.id, jid.as_str(), f)?;
        if changed {
            self.emit(Event::Profile {
                account: acc.jid,
                profile: profile.clone(),
            });
        }
        Ok(profile)
    }

    /// Publishes changes to our profile (readable by anyone, as avatars and vCards are in
    /// other clients) and returns it.
    pub async fn set_profile(&self, account: &str, update: ProfileUpdate) -> Result<ProfileRecord> {
        let own = parse_bare(account)?;
        let account = own.as_str();
        if let Some(file) = &update.avatar {
            let input = tokio::fs::read(file)
                .await
                .map_err(|e| Error::Avatar(format!("cannot read {}: {e}", file.display())))?;
            let img = tokio::task::spawn_blocking(move || profile::prepare_avatar(&input))
                .await
                .map_err(|e| Error::Avatar(e.to_string()))?
                .map_err(|e| Error::Avatar(e.to_string()))?;
            // Data first: a contact who sees the new metadata can fetch it at once.
            self.pubsub(account, None, true, profile::publish_data(&img).into())
                .await?;
            self.pubsub(account, None, true, profile::publish_metadata(&img).into())
                .await?;
            self.avatar_cache()
                .store(&img.id, &img.bytes)
                .map_err(|e| Error::Avatar(e.to_string()))?;
            self.record_profile(account, &own, |p| p.avatar = Some(img.id))?;
        }
        if let Some(nick) = update.nick.clone() {
            self.pubsub(
                account,
                None,
                true,
                profile::publish_nick(nick.trim()).into(),
            )
            .await?;
            self.record_profile(account, &own, |p| p.nick = non_empty(nick))?;
        }
        if update.full_name.is_some() || update.bio.is_some() || update.url.is_some() {
            // Keep what other clients put in our vCard (emails, addresses…).
            let current = self
                .pubsub(account, None, false, profile::request_vcard4().into())
                .await
                .ok()
                .flatten()
                .and_then(|el| profile::parse_vcard4_items(&el));
            let (mut v, extra) = match current {
                Some((v, el)) => (v, Some(el)),
                None => (Vcard4::default(), None),
            };
            if let Some(n) = update.full_name {
                v.full_name = non_empty(n);
            }
            if let Some(b) = update.bio {
                v.note = non_empty(b);
            }
            if let Some(u) = update.url {
                v.url = non_empty(u);
            }
            let v = v.sanitized();
            self.pubsub(
                account,
                None,
                true,
                profile::publish_vcard4(&v, extra.as_ref()).into(),
            )
            .await?;
            self.record_profile(account, &own, |p| {
                p.full_name = v.full_name;
                p.bio = v.note;
                p.url = v.url;
            })?;
        }
        Ok(self
            .inner
            .store
            .profile(self.inner.store.account(account)?.id, own.as_str())?
            .unwrap_or_else(|| ProfileRecord {
                jid: own.to_string(),
                ..ProfileRecord::default()
            }))
    }

    /// Fetches someone's profile (nickname, vCard4, avatar — from PEP, or from vCard-temp
    /// when they have no PEP avatar), caches the avatar, and returns what we know.
    pub async fn fetch_profile(&self, account: &str, jid: &str) -> Result<ProfileRecord> {
        let own = parse_bare(account)?;
        let account = own.as_str();
        let jid = parse_contact(jid)?;
        let service = (jid != own).then_some(&jid);
        let get = |payload: Element| self.pubsub(account, service, false, payload);
        let nick = get(profile::request_nick().into())
            .await
            .ok()
            .flatten()
            .and_then(|el| profile::parse_nick_items(&el));
        let vcard = get(profile::request_vcard4().into())
            .await
            .ok()
            .flatten()
            .and_then(|el| profile::parse_vcard4_items(&el))
            .map(|(v, _)| v);
        let cache = self.avatar_cache();
        let avatar_ref = get(profile::request_metadata().into())
            .await
            .ok()
            .flatten()
            .and_then(|el| profile::parse_metadata_items(&el));
        let avatar = match avatar_ref {
            Some(r) if cache.path(&r.id).is_some() => Some(r.id),
            Some(r) if r.url.is_none() => match get(profile::request_data(&r.id).into()).await {
                Ok(Some(el)) => match profile::parse_data(&el, &r.id) {
                    Ok(bytes) => cache
                        .store(&r.id, &bytes)
                        .map(|_| r.id)
                        .map_err(|e| tracing::warn!(%jid, error = %e, "avatar not cached"))
                        .ok(),
                    Err(e) => {
                        tracing::warn!(%jid, error = %e, "avatar refused");
                        None
                    }
                },
                _ => None,
            },
            Some(_) => None,
            None => {
                // XEP-0153: the vCard-temp photo.
                let vcard_temp = self
                    .pubsub(account, Some(&jid), false, profile::vcard_temp_request())
                    .await
                    .ok()
                    .flatten()
                    .and_then(|el| profile::parse_vcard_temp_photo(&el));
                vcard_temp.and_then(|(bytes, _)| {
                    let id = profile::sha1_hex(&bytes);
                    cache.store(&id, &bytes).ok().map(|_| id)
                })
            }
        };
        self.record_profile(account, &jid, |p| {
            if nick.is_some() {
                p.nick = nick;
            }
            if let Some(v) = vcard {
                p.full_name = v.full_name;
                p.bio = v.note;
                p.url = v.url;
            }
            if avatar.is_some() {
                p.avatar = avatar;
            }
        })
    }
}
