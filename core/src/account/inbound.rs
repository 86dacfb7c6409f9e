//! The inbound pipeline of an account actor: validate -> (decrypt: later issues) -> dedup ->
//! apply corrections/receipts/markers -> store -> notify. Validation and extraction are the
//! sans-I/O [`crate::proto::inbound`]; dedup happens in the store's transaction.

use jid::Jid;
use minidom::Element;
use tokio_xmpp::Stanza;
use xmpp_parsers::disco::DiscoInfoQuery;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::mam::Fin;
use xmpp_parsers::message::Message;
use xmpp_parsers::presence::{Presence, Type as PresenceType};
use xmpp_parsers::roster::Roster;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

use super::iq::Pending;
use super::{Actor, fail_pending};
use crate::api::{Error, Event};
use crate::proto::inbound::{self, Context, Inbound};
use crate::services::{chat, mam, omemo, roster};
use crate::store::{Encryption, IncomingMessage, Ingest, MessageKind};

impl Actor {
    pub(super) async fn on_stanza(&mut self, stanza: Stanza) {
        match stanza {
            Stanza::Message(m) => self.on_message(m).await,
            Stanza::Presence(p) => self.on_presence(p).await,
            Stanza::Iq(iq) => self.on_iq(iq).await,
        }
    }

    /// Publishes our bundles again (both namespaces share the pre-keys): one was used by a
    /// new session, so it is replaced and no longer offered.
    async fn republish_omemo(&mut self) {
        let bundles = {
            let device = self.omemo.lock();
            if let Err(e) = device.refill_pre_keys() {
                tracing::warn!(error = %e, "cannot refill OMEMO pre-keys");
            }
            crate::crypto::omemo::Namespace::ALL
                .iter()
                .filter_map(|ns| match device.bundle(*ns) {
                    Ok(b) => Some((*ns, device.id(), b)),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot build our OMEMO bundle");
                        None
                    }
                })
                .collect::<Vec<_>>()
        };
        for (ns, id, bundle) in bundles {
            let publish = crate::proto::omemo::publish_bundle(ns, id, &bundle);
            self.send_iq(None, super::IqKind::Set, publish, Pending::OmemoBundle)
                .await;
        }
    }

    /// Turns a conversation's encryption on unless the user chose otherwise before.
    fn encrypt_conversation(&self, peer: &jid::BareJid) -> crate::store::Result<()> {
        self.store
            .encrypt_unless_declined(self.rec.id, peer.as_str(), "omemo")?;
        Ok(())
    }

    fn ignored(&self, reason: String) {
        tracing::warn!(account = %self.rec.jid, %reason, "stanza ignored");
        self.emit(Event::Ignored {
            account: self.rec.jid.clone(),
            reason,
        });
    }

    async fn on_message(&mut self, msg: Message) {
        if let Some(from) = &msg.from
            && let Some(rs) = self.session.rooms.get_mut(&from.to_bare())
        {
            rs.last_heard = std::time::Instant::now();
        }
        let cx = Context {
            own: &self.own,
            open_queries: &self.session.open_queries,
            rooms: &self.room_cx,
        };
        let inb = match inbound::classify(msg, &cx) {
            Ok(i) => i,
            Err(inbound::Rejected::GroupChat) => return,
            Err(e) => return self.ignored(e.to_string()),
        };
        self.apply_inbound(inb).await;
    }

    async fn apply_inbound(&mut self, inb: Inbound) {
        let account = self.rec.jid.clone();
        let archive = inb
            .archive_query
            .as_ref()
            .and_then(|q| self.session.open_queries.get(q))
            .cloned();
        let from_archive = inb.archive_query.is_some();
        if let Some(chat) = inb.chat {
            let room = chat.peer.to_bare();
            let kind = match chat.kind {
                inbound::Kind::Chat => MessageKind::Chat,
                inbound::Kind::GroupChat => MessageKind::GroupChat,
                inbound::Kind::Private => MessageKind::Private,
                inbound::Kind::Notice => MessageKind::Notice,
            };
            // Decrypt stage: the body of an OMEMO message is inside; one that cannot be
            // decrypted keeps its place in the timeline with the reason.
            let mut chat = chat;
            let mut encryption = None;
            let mut undecryptable = None;
            let mut trust_warning = None;
            // OTR stage: OTR rides in the body of chat messages.
            if kind == MessageKind::Chat
                && chat.encrypted.is_none()
                && crate::proto::otr::is_otr(&chat.body)
            {
                let live = !from_archive && !inb.carbon && !chat.outgoing;
                let sender = chat.sender.clone();
                match self.otr_inbound(&sender, &chat.body, live).await {
                    Some(shown) => {
                        chat.body = shown.body;
                        encryption = shown.encryption;
                        undecryptable = shown.undecryptable;
                    }
                    None => return,
                }
            }
            if let Some(el) = chat.encrypted.take() {
                let peer = chat.peer.to_bare();
                let groupchat = kind == MessageKind::GroupChat;
                // In a room, the author's real JID (the room must show it: non-anonymous).
                let sender = if !groupchat {
                    Some(chat.sender.to_bare())
                } else if chat.outgoing {
                    Some(self.own.clone())
                } else {
                    chat.sender.resource().and_then(|nick| {
                        self.session
                            .rooms
                            .get(&peer)
                            .and_then(|rs| rs.occupants.get(nick.as_str()))
                            .and_then(|o| o.jid.as_deref())
                            .and_then(|j| jid::BareJid::new(j).ok())
                    })
                };
                let (result, republish) = match &sender {
                    Some(sender) => omemo::decrypt(
                        &self.omemo,
                        &el,
                        sender,
                        &self.own,
                        &peer,
                        chat.outgoing,
                        groupchat,
                    ),
                    None => (
                        omemo::Decrypted::Failed {
                            ns: crate::crypto::omemo::Namespace::Omemo2,
                            repair: None,
                            reason: "could not decrypt — the room does not tell us who sent it \
                                     (only non-anonymous rooms can be encrypted)"
                                .into(),
                        },
                        false,
                    ),
                };
                if republish {
                    self.republish_omemo().await;
                }
                match result {
                    omemo::Decrypted::Body {
                        ns, body, warning, ..
                    } => {
                        chat.body = body;
                        trust_warning = warning;
                        encryption = Some(omemo::encryption_of(ns));
                        // They write encrypted: so do we from now on (sticky; only the
                        // user turns it off).
                        if kind == MessageKind::Chat
                            && let Err(e) = self.encrypt_conversation(&peer)
                        {
                            tracing::warn!(error = %e, "cannot mark the conversation encrypted");
                        }
                    }
                    omemo::Decrypted::Control => return,
                    omemo::Decrypted::OwnDevice { ns } => {
                        // Found by its id (reflection or duplicate); stored only if this
                        // database never had it.
                        encryption = Some(omemo::encryption_of(ns));
                        undecryptable = Some(
                            "sent from this device before this history was kept; OMEMO does \
                             not encrypt messages for the device that sends them"
                                .into(),
                        );
                    }
                    omemo::Decrypted::Failed { ns, reason, repair } => {
                        tracing::info!(from = %chat.sender, %reason, "undecryptable OMEMO message");
                        if let (Some(device), Some(sender), MessageKind::Chat, false) =
                            (repair, &sender, kind, chat.outgoing)
                        {
                            self.emit(Event::OmemoSessionBroken {
                                account: account.clone(),
                                jid: sender.to_string(),
                                device,
                                namespace: ns.xmlns().to_owned(),
                            });
                        }
                        encryption = Some(omemo::encryption_of(ns));
                        undecryptable = Some(reason);
                    }
                }
            }
            // A shared file: announced beside a plaintext link, or an aesgcm:// link that
            // came out of an encrypted message.
            let shared = match (chat.shared.take(), &encryption, &undecryptable) {
                (Some(s), None, _) => Some(s),
                (_, Some(Encryption::Omemo | Encryption::Omemo2), None) => {
                    crate::proto::upload::shared_file(&chat.body, &[])
                }
                _ => None,
            };
            let (attachment, preview) = match shared {
                Some(s) => (Some(attachment_of(&s)), s.meta.thumbnail),
                None => (None, None),
            };
            let groupchat = kind == MessageKind::GroupChat;
            let mention = groupchat
                && !chat.outgoing
                && self
                    .room_cx
                    .get(&room)
                    .is_some_and(|r| crate::proto::muc::mentions(&chat.body, &r.nick));
            let msg = IncomingMessage {
                encryption,
                undecryptable,
                trust_warning,
                peer: chat.peer.to_string(),
                kind,
                outgoing: chat.outgoing,
                sender: chat.sender.to_string(),
                stanza_id: chat.id.clone(),
                origin_id: chat.origin_id.clone(),
                archive_id: chat.archive_id.clone(),
                body: chat.body,
                timestamp: stamp_ms(chat.stamp),
                replace: chat.replace,
                occupant_id: chat.occupant_id,
                mention,
                tombstone: chat.tombstone,
                attachment,
                preview,
            };
            if let Some(owner) = archive.as_ref().filter(|o| **o != self.own) {
                // A room's archive page: stored when its <fin/> arrives.
                if let Some(rs) = self.session.rooms.get_mut(owner) {
                    rs.page.push(msg);
                    rs.fetched += 1;
                }
                return;
            }
            if from_archive {
                // Stored per page, in one transaction, when the page's <fin/> arrives.
                if let Some(c) = self.catchup.as_mut() {
                    c.page.push(msg);
                    c.fetched += 1;
                    if c.fetched % 100 == 0 {
                        let fetched = c.fetched;
                        self.emit(Event::SyncProgress {
                            account: account.clone(),
                            fetched,
                        });
                    }
                }
                return;
            }
            match self.store.ingest(self.rec.id, &msg) {
                Ok(r) => self.emit_ingest(r, true),
                Err(e) => {
                    // Not acknowledged to the sender as delivered: a receipt would lie.
                    tracing::error!(error = %e, "cannot store an incoming message");
                    return;
                }
            }
            if matches!(kind, MessageKind::GroupChat | MessageKind::Notice) {
                // Live room messages move the room's archive position once its catch-up
                // of this visit is complete (no gap can open behind it).
                let caught_up = self.session.rooms.get(&room).is_some_and(|r| r.caught_up);
                if let (true, Some(aid)) = (caught_up, &msg.archive_id) {
                    self.set_room_position(&room, aid, false);
                }
            } else if self.session.caught_up {
                // Live messages stamped by our archive move the catch-up position, but only
                // once this session's catch-up is complete (no gap can open behind it).
                if let Some(aid) = &msg.archive_id
                    && let Err(e) = self.store.set_archive_position(self.rec.id, aid, false)
                {
                    tracing::error!(error = %e, "cannot record archive position");
                }
            }
            if let (Some(id), false) = (inb.receipt_request.as_ref(), inb.carbon) {
                self.send_now(chat::receipt(chat.sender, id)).await;
            }
        }
        if let Some((peer, id)) = inb.receipt {
            self.update_state(
                self.store
                    .mark_delivered(self.rec.id, &peer.to_string(), &id),
            );
        }
        if let Some((peer, id)) = inb.displayed {
            self.update_state(
                self.store
                    .mark_displayed(self.rec.id, &peer.to_string(), &id),
            );
        }
        if let Some((peer, Some(id), text)) = inb.error {
            self.update_state(
                self.store
                    .mark_failed(self.rec.id, &peer.to_string(), &id, &text),
            );
        }
        if let Some(ev) = &inb.own_pep_event {
            let own = self.own.clone();
            self.on_pubsub_event(&own, ev).await;
        }
        if let Some((from, ev)) = &inb.pep_event {
            self.on_pubsub_event(from, ev).await;
        }
        self.apply_room_signals(
            inb.subject,
            inb.room_codes,
            inb.retraction,
            inb.invitation,
            inb.declined,
            inb.own_pep_event,
        )
        .await;
        if let Some((from, state)) = inb.chat_state {
            self.emit(Event::ChatState {
                account,
                from: from.to_string(),
                state: chat::chat_state_name(&state).into(),
            });
        }
    }

    pub(super) fn emit_ingest(&self, r: Ingest, live: bool) {
        let account = self.rec.jid.clone();
        match r {
            Ingest::Inserted(message) => self.emit(Event::Message {
                account,
                message,
                live,
            }),
            Ingest::Corrected(message) => self.emit(Event::MessageUpdated { account, message }),
            Ingest::Reflected(message) => self.emit(Event::MessageUpdated { account, message }),
            Ingest::Duplicate { id } => tracing::debug!(id, "duplicate message"),
        }
    }

    /// Stores the archive page collected so far. False if it could not be stored (then the
    /// archive position must not move).
    pub(super) fn store_archive_page(&mut self) -> bool {
        let Some(c) = self.catchup.as_mut() else {
            return true;
        };
        let page = std::mem::take(&mut c.page);
        match self.store.ingest_all(self.rec.id, &page) {
            Ok(results) => {
                for r in results {
                    self.emit_ingest(r, false);
                }
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot store an archive page; catch-up stops here");
                false
            }
        }
    }

    fn update_state(&self, r: crate::store::Result<Option<crate::store::MessageRecord>>) {
        match r {
            Ok(Some(message)) => self.emit(Event::MessageUpdated {
                account: self.rec.jid.clone(),
                message,
            }),
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "cannot update message state"),
        }
    }

    async fn on_presence(&mut self, p: Presence) {
        let Some(from) = p.from.clone() else { return };
        let bare = from.to_bare();
        if let Some(rs) = self.session.rooms.get_mut(&bare) {
            rs.last_heard = std::time::Instant::now();
            let muc = p.type_ == PresenceType::Error
                || p.payloads
                    .iter()
                    .any(|e| e.is("x", xmpp_parsers::ns::MUC_USER));
            if muc {
                return self.on_room_presence(p).await;
            }
        }
        match p.type_ {
            PresenceType::Subscribe => {
                match self
                    .store
                    .add_subscription_request(self.rec.id, bare.as_str())
                {
                    Ok(_) => self.emit(Event::SubscriptionRequest {
                        account: self.rec.jid.clone(),
                        from: bare.to_string(),
                    }),
                    Err(e) => tracing::error!(error = %e, "cannot store subscription request"),
                }
            }
            PresenceType::None | PresenceType::Unavailable => {
                let available = p.type_ == PresenceType::None;
                let resource = from.resource().map(|r| r.to_string()).unwrap_or_default();
                let show = p.show.as_ref().map(|s| format!("{s:?}").to_lowercase());
                let status = p.statuses.values().next().cloned();
                let entry = self.session.presences.entry(bare.clone()).or_default();
                if available {
                    entry.insert(
                        resource,
                        super::ResourcePresence {
                            show: show.clone(),
                            status: status.clone(),
                        },
                    );
                } else {
                    entry.remove(&resource);
                }
                self.emit(Event::Presence {
                    account: self.rec.jid.clone(),
                    from: from.to_string(),
                    available,
                    show,
                    status,
                });
                if available
                    && let Some(x) = p
                        .payloads
                        .iter()
                        .find(|e| e.is("x", crate::proto::profile::VCARD_TEMP_UPDATE))
                {
                    self.on_photo_hash(&bare, x).await;
                }
            }
            _ => tracing::debug!(from = %from, kind = ?p.type_, "presence"),
        }
    }

    async fn on_iq(&mut self, iq: Iq) {
        match iq {
            Iq::Get {
                from, id, payload, ..
            } => self.on_iq_get(from, id, payload).await,
            Iq::Set {
                from, id, payload, ..
            } => self.on_iq_set(from, id, payload).await,
            Iq::Result {
                from, id, payload, ..
            } => {
                if let Some(p) = self.iqs.take(&id, from.as_ref(), &self.own) {
                    self.on_iq_result(p, payload).await;
                }
            }
            Iq::Error {
                from, id, error, ..
            } => {
                if let Some(p) = self.iqs.take(&id, from.as_ref(), &self.own) {
                    self.on_iq_error(p, error).await;
                }
            }
        }
    }

    async fn on_iq_get(&mut self, from: Option<Jid>, id: String, payload: Element) {
        let Some(to) = from else { return };
        let reply: Iq = if payload.is("ping", xmpp_parsers::ns::PING) {
            Iq::empty_result(to, id)
        } else if payload.is("query", xmpp_parsers::ns::DISCO_INFO) {
            let node = DiscoInfoQuery::try_from(payload).ok().and_then(|q| q.node);
            if crate::proto::caps::is_our_node(node.as_deref()) {
                Iq::from_result(id, Some(crate::proto::caps::disco_info(node))).with_to(to)
            } else {
                error_iq(to, id, DefinedCondition::ItemNotFound)
            }
        } else {
            error_iq(to, id, DefinedCondition::ServiceUnavailable)
        };
        self.send_now(reply).await;
    }

    async fn on_iq_set(&mut self, from: Option<Jid>, id: String, payload: Element) {
        if payload.is("query", xmpp_parsers::ns::ROSTER) {
            // RFC 6121 §2.1.6: a roster push is only valid from our own account.
            let own = from
                .as_ref()
                .is_none_or(|f| f.to_bare() == self.own && f.resource().is_none());
            if !own {
                return self.ignored(format!(
                    "roster push from {}, not from our account",
                    from.map(|f| f.to_string()).unwrap_or_default()
                ));
            }
            match Roster::try_from(payload) {
                Ok(r) if r.items.len() == 1 => {
                    let ver = r.ver.clone();
                    for item in &r.items {
                        let (rec, removed) = roster::to_record(item);
                        match self.store.apply_roster_push(
                            self.rec.id,
                            &rec,
                            removed,
                            ver.as_deref(),
                        ) {
                            Ok(()) => {
                                self.emit(Event::RosterItem {
                                    account: self.rec.jid.clone(),
                                    contact: rec,
                                    removed,
                                });
                                self.settle_roster_requests(Some(&item.jid));
                            }
                            Err(e) => tracing::error!(error = %e, "cannot apply roster push"),
                        }
                    }
                    let to = from.unwrap_or_else(|| Jid::from(self.own.clone()));
                    self.send_now(Iq::empty_result(to, id)).await;
                }
                _ => {
                    let to = from.unwrap_or_else(|| Jid::from(self.own.clone()));
                    self.send_now(error_iq(to, id, DefinedCondition::BadRequest))
                        .await;
                }
            }
            return;
        }
        if let Some(to) = from {
            self.send_now(error_iq(to, id, DefinedCondition::ServiceUnavailable))
                .await;
        }
    }

    async fn on_iq_result(&mut self, p: Pending, payload: Option<Element>) {
        match p {
            Pending::RosterGet => {
                // An empty result means "your cached version is current" (XEP-0237).
                let Some(el) = payload else { return };
                match Roster::try_from(el) {
                    Ok(r) => {
                        let items: Vec<_> = r
                            .items
                            .iter()
                            .map(roster::to_record)
                            .filter(|(_, removed)| !removed)
                            .map(|(rec, _)| rec)
                            .collect();
                        match self
                            .store
                            .replace_roster(self.rec.id, &items, r.ver.as_deref())
                        {
                            Ok(()) => {
                                for contact in items {
                                    self.emit(Event::RosterItem {
                                        account: self.rec.jid.clone(),
                                        contact,
                                        removed: false,
                                    });
                                }
                            }
                            Err(e) => tracing::error!(error = %e, "cannot store roster"),
                        }
                    }
                    Err(e) => self.ignored(format!("malformed roster result: {e}")),
                }
            }
            Pending::RosterSet {
                jid,
                reply,
                then_subscribe,
            } => {
                if then_subscribe {
                    self.send_now(Presence::subscribe().with_to(Jid::from(jid.clone())))
                        .await;
                }
                if let Some(reply) = reply {
                    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
                    self.awaiting_push.push((jid, deadline, reply));
                }
            }
            Pending::Carbons => tracing::debug!("carbons enabled"),
            Pending::OmemoBundle => tracing::debug!("OMEMO bundle republished"),
            Pending::DiscoServer => {
                if let Some(d) =
                    payload.and_then(|el| xmpp_parsers::disco::DiscoInfoResult::try_from(el).ok())
                {
                    self.session.server_features = d.features.into_iter().collect();
                }
            }
            Pending::DiscoAccount => {
                let features: Vec<String> = payload
                    .and_then(|el| xmpp_parsers::disco::DiscoInfoResult::try_from(el).ok())
                    .map(|d| d.features.into_iter().collect())
                    .unwrap_or_default();
                let has_mam = features.iter().any(|f| f == xmpp_parsers::ns::MAM);
                let has_pep = features
                    .iter()
                    .any(|f| f == "http://jabber.org/protocol/pubsub#publish");
                self.session.account_features = features;
                if has_pep {
                    self.sync_bookmarks().await;
                } else {
                    self.on_bookmarks(None).await;
                }
                if has_mam {
                    let from = self.catchup_start();
                    self.request_archive_page(from, 0).await;
                } else {
                    tracing::info!("server has no message archive; no catch-up");
                    self.finish_catchup(0);
                }
            }
            Pending::Raw { reply } => super::reply_raw(reply, Ok(payload)),
            Pending::RoomInfo { room } => {
                let info =
                    payload.and_then(|el| xmpp_parsers::disco::DiscoInfoResult::try_from(el).ok());
                self.on_room_info(room, info).await;
            }
            Pending::RoomMam {
                room,
                queryid,
                latest,
            } => self.on_room_page(room, queryid, latest, Ok(payload)).await,
            Pending::RoomConfigForm { room, config } => {
                self.on_room_config_form(room, config, payload).await;
            }
            Pending::RoomConfigured { room } => self.on_room_configured(&room, Ok(())),
            Pending::SelfPing { room } => {
                self.on_self_ping(room, crate::proto::muc::PingOutcome::Joined)
                    .await;
            }
            Pending::Bookmarks => {
                let list = payload
                    .as_ref()
                    .map(crate::proto::bookmarks::parse_items)
                    .unwrap_or_default();
                let compat = self
                    .session
                    .account_features
                    .iter()
                    .any(|f| f == xmpp_parsers::ns::BOOKMARKS2_COMPAT);
                if list.is_empty() && !compat {
                    // Nothing here, and the server does not mirror legacy bookmarks: read
                    // them from private storage (XEP-0049) to migrate them.
                    self.send_iq(
                        None,
                        super::IqKind::Get,
                        crate::proto::bookmarks::legacy_request(),
                        Pending::LegacyBookmarks,
                    )
                    .await;
                } else {
                    self.on_bookmarks(Some(list)).await;
                }
            }
            Pending::AvatarData { jid, id } => self.on_avatar_data(&jid, &id, payload),
            Pending::VcardPhoto { jid, id } => self.on_vcard_photo(&jid, &id, payload),
            Pending::LegacyBookmarks => {
                let list = payload
                    .as_ref()
                    .map(crate::proto::bookmarks::parse_legacy)
                    .unwrap_or_default();
                self.on_legacy_bookmarks(list).await;
            }
            Pending::BookmarkSet { room, published } => {
                if let Err(e) =
                    self.store
                        .set_room_bookmarked(self.rec.id, room.as_str(), published)
                {
                    tracing::error!(error = %e, "cannot record bookmark state");
                }
            }
            Pending::Mam { queryid } => {
                self.session.open_queries.remove(&queryid);
                let fetched = self.catchup.as_ref().map(|c| c.fetched).unwrap_or(0);
                if !self.store_archive_page() {
                    self.finish_catchup(fetched);
                    return;
                }
                let fin = payload.and_then(|el| Fin::try_from(el).ok());
                let Some(fin) = fin else {
                    self.ignored("archive query answered without <fin/>".into());
                    self.finish_catchup(fetched);
                    return;
                };
                match mam::after_fin(&fin) {
                    mam::Next::Page(last) => {
                        if let Err(e) = self.store.set_archive_position(self.rec.id, &last, false) {
                            tracing::error!(error = %e, "cannot record archive position");
                        }
                        self.emit(Event::SyncProgress {
                            account: self.rec.jid.clone(),
                            fetched,
                        });
                        self.request_archive_page(mam::From::After(last), fetched)
                            .await;
                    }
                    mam::Next::Done(last) => {
                        let r = match &last {
                            Some(last) => self.store.set_archive_position(self.rec.id, last, true),
                            None => self.store.mark_archive_synced(self.rec.id),
                        };
                        if let Err(e) = r {
                            tracing::error!(error = %e, "cannot record archive position");
                        }
                        self.finish_catchup(fetched);
                    }
                }
            }
        }
    }

    fn finish_catchup(&mut self, fetched: u64) {
        self.catchup = None;
        self.session.caught_up = true;
        self.emit(Event::SyncDone {
            account: self.rec.jid.clone(),
            fetched,
        });
    }

    async fn on_iq_error(&mut self, p: Pending, error: StanzaError) {
        let text = format!("{:?}", error.defined_condition);
        match p {
            Pending::Mam { queryid } => {
                self.session.open_queries.remove(&queryid);
                self.store_archive_page();
                if error.defined_condition == DefinedCondition::ItemNotFound {
                    // The archive no longer has our position (expired): start from the
                    // first-sync window; duplicates are dropped by the store.
                    tracing::warn!("archive position unknown to the server; resyncing window");
                    let since = chrono::Utc::now()
                        - chrono::Duration::days(i64::from(self.rec.first_sync_days));
                    self.request_archive_page(mam::From::Since(since), 0).await;
                } else {
                    tracing::warn!(%text, "archive query failed");
                    let fetched = self.catchup.as_ref().map(|c| c.fetched).unwrap_or(0);
                    self.finish_catchup(fetched);
                }
            }
            Pending::DiscoAccount => {
                tracing::warn!(%text, "disco of own account failed; no catch-up");
                self.finish_catchup(0);
                self.on_bookmarks(None).await;
            }
            Pending::Raw { reply } => {
                super::reply_raw(reply, Err(Error::Refused(refusal_text(&error))));
            }
            Pending::RoomInfo { room } => self.on_room_info(room, None).await,
            Pending::RoomMam {
                room,
                queryid,
                latest,
            } => {
                self.on_room_page(room, queryid, latest, Err(error)).await;
            }
            Pending::RoomConfigForm { room, .. } | Pending::RoomConfigured { room } => {
                self.on_room_configured(&room, Err(Error::Refused(refusal_text(&error))));
            }
            Pending::SelfPing { room } => {
                let outcome = crate::proto::muc::self_ping_outcome(Err(&error));
                self.on_self_ping(room, outcome).await;
            }
            Pending::Bookmarks => {
                if error.defined_condition == DefinedCondition::ItemNotFound {
                    // No bookmarks node yet: an empty list.
                    self.on_bookmarks(Some(Vec::new())).await;
                } else {
                    tracing::warn!(%text, "cannot read bookmarks; trying legacy storage");
                    self.send_iq(
                        None,
                        super::IqKind::Get,
                        crate::proto::bookmarks::legacy_request(),
                        Pending::LegacyBookmarks,
                    )
                    .await;
                }
            }
            Pending::LegacyBookmarks => {
                tracing::warn!(%text, "no legacy bookmarks either");
                self.on_bookmarks(None).await;
            }
            Pending::BookmarkSet { room, .. } => {
                tracing::warn!(%room, %text, "the server refused a bookmark change");
                self.ignored(format!(
                    "bookmark for {room} not saved on the server: {text}"
                ));
            }
            other => {
                tracing::warn!(%text, "request refused");
                fail_pending(other, Error::Refused(text));
            }
        }
    }
}

/// When a message was sent, in ms. Delay stamps (XEP-0203) often have whole-second
/// precision (Prosody's do), which would sort a reply before the message it answers when both
/// fall in the same second; such stamps count as the end of their second, but never later
/// than now.
fn stamp_ms(stamp: Option<chrono::DateTime<chrono::Utc>>) -> i64 {
    let now = crate::store::now_ms();
    match stamp {
        Some(t) if t.timestamp_subsec_millis() == 0 => (t.timestamp_millis() + 999).min(now),
        Some(t) => t.timestamp_millis().min(now),
        None => now,
    }
}

/// A refusal in words: the condition, and the server's text if it gave one.
/// `condition (text)`, the condition as its XML name (`item-not-found`), which callers may
/// match on.
pub(crate) fn refusal_text(e: &StanzaError) -> String {
    let el = Element::from(e.clone());
    let cond = el
        .children()
        .find(|c| c.ns() == xmpp_parsers::ns::XMPP_STANZAS && c.name() != "text")
        .map(|c| c.name().to_owned())
        .unwrap_or_else(|| format!("{:?}", e.defined_condition));
    match e.texts.values().next() {
        Some(t) if !t.is_empty() => format!("{cond} ({t})"),
        _ => cond,
    }
}

fn error_iq(to: Jid, id: String, condition: DefinedCondition) -> Iq {
    let kind = match condition {
        DefinedCondition::BadRequest => ErrorType::Modify,
        _ => ErrorType::Cancel,
    };
    Iq::from_error(id, StanzaError::new(kind, condition, "en", "")).with_to(to)
}

/// What a shared file is stored as.
fn attachment_of(s: &crate::proto::upload::SharedFile) -> crate::store::Attachment {
    crate::store::Attachment {
        url: s.url.clone(),
        name: s.name(),
        media_type: s.meta.media_type.clone(),
        size: s.meta.size,
        width: s.meta.width,
        height: s.meta.height,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::stamp_ms;
    use chrono::{TimeZone, Utc};

    #[test]
    fn whole_second_stamps_count_as_the_end_of_their_second() {
        let t = Utc.timestamp_millis_opt(1_000_000_000_000).single();
        assert_eq!(stamp_ms(t), 1_000_000_000_999);
        let precise = Utc.timestamp_millis_opt(1_000_000_000_123).single();
        assert_eq!(stamp_ms(precise), 1_000_000_000_123);
        // Never in the future.
        let future = Utc::now() + chrono::Duration::days(1);
        assert!(stamp_ms(Some(future)) <= crate::store::now_ms());
        assert!(stamp_ms(None) <= crate::store::now_ms());
    }
}
