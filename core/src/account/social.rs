//! Microblog (XEP-0277) notifications in the account actor: posts and comments pushed by
//! contacts' PEP services (and our own, from our other devices and commenters).

use jid::{BareJid, Jid};
use minidom::Element;

use super::iq::Pending;
use super::{Actor, IqKind};
use crate::api::Event;
use crate::proto::{profile, pubsub};
use crate::services::microblog::{FeedChange, apply_notification};
use crate::store::{PostChange, ProfileRecord};

/// The event for a feed change.
pub(crate) fn feed_event(account: &str, change: FeedChange) -> Event {
    let account = account.to_owned();
    match change {
        FeedChange::Post { post, change } => Event::Post {
            account,
            post,
            edited: change == PostChange::Updated,
        },
        FeedChange::PostRemoved { post } => Event::PostRemoved { account, post },
        FeedChange::Comment { comment } => Event::Comment { account, comment },
        FeedChange::CommentRemoved { post_id, item_id } => Event::CommentRemoved {
            account,
            post_id,
            item_id,
        },
    }
}

impl Actor {
    /// A pubsub notification from `from` (our own account or anyone's service).
    pub(super) async fn on_pubsub_event(&mut self, from: &BareJid, ev: &Element) {
        let Some(n) = pubsub::parse_event(ev) else {
            return;
        };
        if let Some(ns) = crate::crypto::omemo::Namespace::ALL
            .into_iter()
            .find(|ns| n.node == crate::proto::omemo::device_list_node(*ns))
        {
            self.on_device_list(from, ns, &n).await;
            return;
        }
        if matches!(
            n.node.as_str(),
            profile::AVATAR_METADATA | profile::NICK | profile::VCARD4_NODE
        ) {
            self.on_profile_event(from, &n.node, ev).await;
            return;
        }
        match apply_notification(&self.store, self.rec.id, &self.own, from, &n) {
            Ok(changes) => {
                for c in changes {
                    self.emit(feed_event(&self.rec.jid, c));
                }
            }
            Err(e) => tracing::error!(error = %e, %from, "cannot store a feed notification"),
        }
    }

    /// A contact's (or our own) OMEMO device list changed: recorded, so the next message is
    /// encrypted for the new devices too. When our own list comes without this device
    /// (another client replaced it), we put ourselves back, as XEP-0384 asks.
    async fn on_device_list(
        &mut self,
        from: &BareJid,
        ns: crate::crypto::omemo::Namespace,
        n: &pubsub::Notification,
    ) {
        let mut list = match crate::proto::omemo::device_list_from_items(ns, &n.published) {
            Ok(l) => l,
            Err(e) => {
                tracing::info!(%from, error = %e, "malformed OMEMO device list ignored");
                return;
            }
        };
        let devices: Vec<(u32, Option<String>)> =
            list.devices.iter().map(|d| (d.id, None)).collect();
        let (our_id, stored) = {
            let device = self.omemo.lock();
            (
                device.id(),
                device.store().set_devices(ns, from.as_str(), &devices),
            )
        };
        match stored {
            Ok(()) => self.emit(Event::OmemoDevices {
                account: self.rec.jid.clone(),
                jid: from.to_string(),
                namespace: ns.xmlns().to_owned(),
            }),
            Err(e) => tracing::error!(error = %e, "cannot record an OMEMO device list"),
        }
        // Only a missing entry is added: ours with a label (OMEMO 2) is left as published.
        if *from == self.own && !list.devices.iter().any(|d| d.id == our_id) {
            list.devices
                .push(crate::proto::omemo::DeviceEntry::new(our_id));
            tracing::info!(
                ?ns,
                "our OMEMO device was missing from our device list; re-adding it"
            );
            self.send_iq(
                None,
                IqKind::Set,
                crate::proto::omemo::publish_device_list(&list),
                Pending::OmemoBundle,
            )
            .await;
        }
    }

    /// Profile changes (XEP-0084, XEP-0172, XEP-0292) of ourselves and roster contacts.
    async fn on_profile_event(&mut self, from: &BareJid, node: &str, ev: &Element) {
        let known = *from == self.own
            || matches!(self.store.contact(self.rec.id, from.as_str()), Ok(Some(_)));
        if !known {
            tracing::debug!(%from, node, "profile of someone not in the roster ignored");
            return;
        }
        match node {
            profile::AVATAR_METADATA => match profile::parse_metadata_event(ev) {
                Some(None) => self.set_profile(from, |p| p.avatar = None),
                Some(Some(r)) if self.avatars.path(&r.id).is_some() => {
                    self.set_profile(from, |p| p.avatar = Some(r.id));
                }
                Some(Some(r)) if r.url.is_none() => {
                    let to = (*from != self.own).then(|| Jid::from(from.clone()));
                    self.send_iq(
                        to,
                        IqKind::Get,
                        profile::request_data(&r.id),
                        Pending::AvatarData {
                            jid: from.clone(),
                            id: r.id,
                        },
                    )
                    .await;
                }
                // Avatars only on the web are not fetched (that would tell a server
                // chosen by the sender that we are online).
                _ => {}
            },
            profile::NICK => {
                if let Some(nick) = profile::parse_nick_event(ev) {
                    self.set_profile(from, |p| p.nick = nick);
                }
            }
            _ => {
                if let Some(v) = profile::parse_vcard4_event(ev) {
                    self.set_profile(from, |p| {
                        p.full_name = v.full_name;
                        p.bio = v.note;
                        p.url = v.url;
                    });
                }
            }
        }
    }

    /// The avatar image we asked `jid` for: verified against its id, cached, recorded.
    pub(super) fn on_avatar_data(&mut self, jid: &BareJid, id: &str, payload: Option<Element>) {
        let bytes = match payload.map(|el| profile::parse_data(&el, id)) {
            Some(Ok(b)) => b,
            Some(Err(e)) => {
                tracing::warn!(%jid, error = %e, "avatar refused");
                return;
            }
            None => return,
        };
        self.on_avatar_data_bytes(jid, id, &bytes);
    }

    /// Caches verified avatar bytes and records them as `jid`'s avatar.
    fn on_avatar_data_bytes(&mut self, jid: &BareJid, id: &str, bytes: &[u8]) {
        if let Err(e) = self.avatars.store(id, bytes) {
            tracing::warn!(%jid, error = %e, "cannot cache an avatar");
            return;
        }
        let id = id.to_ascii_lowercase();
        self.set_profile(jid, |p| p.avatar = Some(id));
    }

    /// A XEP-0153 photo hash in a contact's presence: clients without PEP avatars announce
    /// their vCard-temp photo this way. Fetched only when it is new to us.
    pub(super) async fn on_photo_hash(&mut self, jid: &BareJid, x: &Element) {
        let Some(Some(id)) = profile::parse_vcard_update(x) else {
            return;
        };
        let current = self
            .store
            .profile(self.rec.id, jid.as_str())
            .ok()
            .flatten()
            .and_then(|p| p.avatar);
        if current.as_deref() == Some(id.as_str()) {
            return;
        }
        if self.avatars.path(&id).is_some() {
            self.set_profile(jid, |p| p.avatar = Some(id));
            return;
        }
        let known = matches!(self.store.contact(self.rec.id, jid.as_str()), Ok(Some(_)));
        if known {
            self.send_iq(
                Some(Jid::from(jid.clone())),
                IqKind::Get,
                profile::vcard_temp_request(),
                Pending::VcardPhoto {
                    jid: jid.clone(),
                    id,
                },
            )
            .await;
        }
    }

    /// The vCard-temp we asked for because of a photo hash: cached if it matches the hash.
    pub(super) fn on_vcard_photo(&mut self, jid: &BareJid, id: &str, payload: Option<Element>) {
        let Some((bytes, _)) = payload.and_then(|el| profile::parse_vcard_temp_photo(&el)) else {
            return;
        };
        if profile::sha1_hex(&bytes) != id.to_ascii_lowercase() {
            tracing::warn!(%jid, "vCard photo does not match the announced hash");
            return;
        }
        self.on_avatar_data_bytes(jid, id, &bytes);
    }

    fn set_profile(&mut self, jid: &BareJid, f: impl FnOnce(&mut ProfileRecord)) {
        match self.store.update_profile(self.rec.id, jid.as_str(), f) {
            Ok((profile, true)) => self.emit(Event::Profile {
                account: self.rec.jid.clone(),
                profile,
            }),
            Ok((_, false)) => {}
            Err(e) => tracing::error!(error = %e, %jid, "cannot store a profile change"),
        }
    }
}
