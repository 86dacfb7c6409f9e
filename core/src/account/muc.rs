//! Group chat in the account actor: joining and leaving rooms, occupant presences, the room
//! archive catch-up (XEP-0313 on the room), bookmarks (XEP-0402) and self-pings (XEP-0410).
//!
//! Rooms the user wants to be in are `autojoin` rows in the store; they are joined after
//! every fresh session (not after a resumption, where a self-ping checks them instead).

use std::time::Instant;

use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use tokio::sync::oneshot;
use xmpp_parsers::disco::DiscoInfoResult;
use xmpp_parsers::presence::{Presence, Type as PresenceType};
use xmpp_parsers::stanza_error::{DefinedCondition, StanzaError};

use super::iq::Pending;
use super::{Actor, IqKind};
use crate::api::{Error, Event, Result, RoomJoined, RoomState};
use crate::proto::bookmarks::{self, Bookmark};
use crate::proto::inbound::RetractionIn;
use crate::proto::inbound::RoomCx;
use crate::proto::muc::{self, JoinHistory, PingOutcome, RoomConfig};
use crate::services::mam;
use crate::services::muc::{Change, Departure, Phase, RoomSession, config_notice};
use crate::store::{Author, InvitationRecord, RoomRecord};

/// A room without an archive sends this many messages on a first visit.
const HISTORY_WITHOUT_ARCHIVE: u32 = 50;

/// Someone waiting for a join to finish (`create`: they asked for a new room).
pub(super) struct JoinWaiter {
    pub reply: oneshot::Sender<Result<RoomJoined>>,
    pub create: Option<RoomConfig>,
}

impl Actor {
    fn occupant_jid(&self, room: &BareJid, nick: &str) -> Option<FullJid> {
        room.with_resource_str(nick).ok()
    }

    /// The nick used when a bookmark names none: our localpart.
    pub(super) fn default_nick(&self) -> String {
        self.own
            .node()
            .map(|n| n.to_string())
            .unwrap_or_else(|| "starling".into())
    }

    fn set_room_cx(&mut self, room: &BareJid) {
        let cx = match self.session.rooms.get(room) {
            Some(rs) => RoomCx {
                nick: rs.nick.clone(),
                present: rs.present(),
                own_occupant_id: rs.own.as_ref().and_then(|o| o.occupant_id.clone()),
                occupant_ids: rs.info.as_ref().is_some_and(|i| i.occupant_ids),
            },
            None => RoomCx {
                nick: self.default_nick(),
                ..RoomCx::default()
            },
        };
        self.room_cx.insert(room.clone(), cx);
    }

    /// Known rooms from the store, none present (a fresh session).
    pub(super) fn load_room_cx(&mut self) {
        self.room_cx.clear();
        match self.store.rooms(self.rec.id) {
            Ok(rooms) => {
                for r in rooms {
                    if let Ok(jid) = BareJid::new(&r.jid) {
                        self.room_cx.insert(
                            jid,
                            RoomCx {
                                nick: r.nick,
                                ..RoomCx::default()
                            },
                        );
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read rooms"),
        }
    }

    fn emit_room(&self, room: &BareJid, state: RoomState) {
        self.emit(Event::Room {
            account: self.rec.jid.clone(),
            room: room.to_string(),
            state,
        });
    }

    /// Starts joining a room: first its disco#info (does it keep an archive?), then the join.
    pub(super) async fn start_join(
        &mut self,
        room: BareJid,
        nick: String,
        password: Option<String>,
    ) {
        let password = password
            .or_else(|| self.session.room_passwords.get(&room).cloned())
            .or_else(|| self.saved_room_passwords.get(&room).cloned());
        self.session
            .rooms
            .insert(room.clone(), RoomSession::new(room.clone(), nick, password));
        self.set_room_cx(&room);
        self.emit_room(&room, RoomState::Joining);
        self.send_iq(
            Some(Jid::from(room.clone())),
            IqKind::Get,
            xmpp_parsers::disco::DiscoInfoQuery { node: None },
            Pending::RoomInfo { room },
        )
        .await;
    }

    pub(super) async fn on_room_info(&mut self, room: BareJid, info: Option<DiscoInfoResult>) {
        let info = info.as_ref().and_then(muc::room_info);
        if let Some(i) = &info {
            match serde_json::to_string(i) {
                Ok(json) => {
                    if let Err(e) = self.store.set_room_info(
                        self.rec.id,
                        room.as_str(),
                        &json,
                        i.name.as_deref(),
                    ) {
                        tracing::error!(error = %e, "cannot store room info");
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot encode room info"),
            }
        }
        let Some(rs) = self.session.rooms.get_mut(&room) else {
            return;
        };
        rs.info = info;
        if rs.phase == Phase::Discovering {
            self.send_join(&room).await;
        }
        self.set_room_cx(&room);
    }

    /// Sends the join presence. History: none when the room has an archive (the catch-up
    /// fetches it, so nothing arrives twice), else what we missed since our newest message.
    async fn send_join(&mut self, room: &BareJid) {
        let last = self
            .store
            .last_timestamp(self.rec.id, room.as_str())
            .ok()
            .flatten();
        let base = self.own_presence();
        let Some(rs) = self.session.rooms.get_mut(room) else {
            return;
        };
        let history = if rs.info.as_ref().is_some_and(|i| i.archive) {
            JoinHistory::None
        } else {
            match last.and_then(chrono::DateTime::from_timestamp_millis) {
                Some(t) => JoinHistory::Since(t),
                None => JoinHistory::Last(HISTORY_WITHOUT_ARCHIVE),
            }
        };
        rs.reset_for_join();
        let Ok(occupant) = room.with_resource_str(&rs.nick) else {
            let nick = rs.nick.clone();
            rs.phase = Phase::Out;
            self.fail_join(room, format!("{nick} is not a valid nickname"));
            return;
        };
        let presence = muc::join(base, occupant, rs.password.as_deref(), &history);
        self.set_room_cx(room);
        self.send_now(presence).await;
    }

    fn fail_join(&mut self, room: &BareJid, reason: String) {
        self.set_room_cx(room);
        self.emit_room(
            room,
            RoomState::Failed {
                error: reason.clone(),
            },
        );
        self.fail_waiters(room, &reason);
    }

    /// Answers everyone waiting for a join of `room` with a failure.
    fn fail_waiters(&mut self, room: &BareJid, reason: &str) {
        for w in self.room_waiters.remove(room).unwrap_or_default() {
            if w.reply
                .send(Err(Error::JoinFailed {
                    room: room.to_string(),
                    reason: reason.to_owned(),
                }))
                .is_err()
            {
                tracing::debug!("join requester went away");
            }
        }
    }

    /// A presence from a room (or one of its occupants).
    pub(super) async fn on_room_presence(&mut self, p: Presence) {
        let Some(from) = p.from.clone() else { return };
        let room = from.to_bare();
        if p.type_ == PresenceType::Error {
            let joining = self
                .session
                .rooms
                .get(&room)
                .is_some_and(|rs| rs.phase != Phase::Joined);
            if joining {
                let text = p
                    .payloads
                    .iter()
                    .find(|e| e.name() == "error")
                    .and_then(|e| StanzaError::try_from(e.clone()).ok())
                    .map(|e| muc::join_error_text(&e))
                    .unwrap_or_else(|| "the room refused".into());
                if let Some(rs) = self.session.rooms.get_mut(&room) {
                    rs.phase = Phase::Out;
                }
                self.fail_join(&room, text);
            } else {
                tracing::warn!(%from, "error presence from a room we are in");
            }
            return;
        }
        let Some(op) = muc::occupant_presence(&p) else {
            return;
        };
        let Some(rs) = self.session.rooms.get_mut(&room) else {
            return;
        };
        let changes = rs.on_presence(&op);
        for change in changes {
            self.apply_room_change(&room, change).await;
        }
    }

    async fn apply_room_change(&mut self, room: &BareJid, change: Change) {
        let account = self.rec.jid.clone();
        match change {
            Change::Joined { created, nick } => {
                if let Err(e) = self.store.set_room_nick(self.rec.id, room.as_str(), &nick) {
                    tracing::error!(error = %e, "cannot store nick");
                }
                self.set_room_cx(room);
                let joined = self.room_joined(room, created);
                self.emit_room(
                    room,
                    RoomState::Joined {
                        nick: nick.clone(),
                        role: joined.role,
                        affiliation: joined.affiliation,
                    },
                );
                let waiters = self.room_waiters.remove(room).unwrap_or_default();
                let create = waiters.iter().find_map(|w| w.create.clone());
                if created {
                    // A new room stays locked until its owner configures it (XEP-0045 §10.1).
                    let config = create.unwrap_or_default();
                    let payload = if config == RoomConfig::default() {
                        None
                    } else {
                        Some(config)
                    };
                    match payload {
                        Some(config) => {
                            self.send_iq(
                                Some(Jid::from(room.clone())),
                                IqKind::Get,
                                muc::config_request(),
                                Pending::RoomConfigForm {
                                    room: room.clone(),
                                    config,
                                },
                            )
                            .await;
                        }
                        None => {
                            self.send_iq(
                                Some(Jid::from(room.clone())),
                                IqKind::Set,
                                muc::instant_room(),
                                Pending::RoomConfigured { room: room.clone() },
                            )
                            .await;
                        }
                    }
                    // Answered when the configuration is done.
                    self.room_waiters.insert(room.clone(), waiters);
                } else {
                    for w in waiters {
                        let r = if w.create.is_some() {
                            Err(Error::RoomExists(room.to_string()))
                        } else {
                            Ok(joined.clone())
                        };
                        if w.reply.send(r).is_err() {
                            tracing::debug!("join requester went away");
                        }
                    }
                }
                self.start_room_catchup(room).await;
                self.flush_outbox().await;
            }
            Change::Occupant(occupant) => self.emit(Event::Occupant {
                account,
                room: room.to_string(),
                occupant,
                present: true,
            }),
            Change::Departed { nick, removal } => {
                if removal.kind != Departure::Left {
                    self.add_notice(room, &removal.describe(&nick));
                }
                self.emit(Event::Occupant {
                    account,
                    room: room.to_string(),
                    occupant: departed(nick),
                    present: false,
                });
            }
            Change::NickChanged { old, new, own } => {
                // The old nick leaves the list; the new one arrives with the next presence.
                self.emit(Event::Occupant {
                    account: account.clone(),
                    room: room.to_string(),
                    occupant: departed(old.clone()),
                    present: false,
                });
                if own {
                    if let Err(e) = self.store.set_room_nick(self.rec.id, room.as_str(), &new) {
                        tracing::error!(error = %e, "cannot store nick");
                    }
                    self.set_room_cx(room);
                    let joined = self.room_joined(room, false);
                    self.emit_room(
                        room,
                        RoomState::Joined {
                            nick: new.clone(),
                            role: joined.role,
                            affiliation: joined.affiliation,
                        },
                    );
                }
                self.add_notice(room, &format!("{old} is now known as {new}"));
            }
            Change::Removed(removal) => {
                let text = removal.describe("You");
                self.set_room_cx(room);
                let permanent = !matches!(
                    removal.kind,
                    Departure::Left | Departure::Shutdown | Departure::Error
                );
                if permanent
                    && let Err(e) = self
                        .store
                        .set_room_removed(self.rec.id, room.as_str(), &text)
                {
                    tracing::error!(error = %e, "cannot store removal");
                }
                self.add_notice(room, &text);
                self.emit_room(
                    room,
                    RoomState::Removed {
                        reason: text.clone(),
                    },
                );
                if permanent {
                    self.fail_queued(room, &text);
                }
                // Only a pending join hears of it: the Removed event already said why.
                self.fail_waiters(room, &text);
            }
            Change::OwnRoleChanged { role, affiliation } => {
                let nick = self
                    .session
                    .rooms
                    .get(room)
                    .map(|r| r.nick.clone())
                    .unwrap_or_default();
                self.add_notice(
                    room,
                    &format!("You are now {} ({})", role.as_str(), affiliation.as_str()),
                );
                self.emit_room(
                    room,
                    RoomState::Joined {
                        nick,
                        role,
                        affiliation,
                    },
                );
            }
        }
    }

    fn room_joined(&self, room: &BareJid, created: bool) -> RoomJoined {
        let rs = self.session.rooms.get(room);
        RoomJoined {
            room: room.to_string(),
            nick: rs.map(|r| r.nick.clone()).unwrap_or_default(),
            role: rs
                .and_then(|r| r.own.as_ref())
                .map(|o| o.role)
                .unwrap_or_default(),
            affiliation: rs
                .and_then(|r| r.own.as_ref())
                .map(|o| o.affiliation)
                .unwrap_or_default(),
            created,
            occupants: rs.map(|r| r.occupants.len()).unwrap_or(0),
        }
    }

    /// The configuration of a room we created was applied (or failed).
    pub(super) fn on_room_configured(&mut self, room: &BareJid, r: Result<()>) {
        let joined = self.room_joined(room, true);
        for w in self.room_waiters.remove(room).unwrap_or_default() {
            let out = r.clone().map(|()| joined.clone());
            if w.reply.send(out).is_err() {
                tracing::debug!("create requester went away");
            }
        }
    }

    pub(super) async fn on_room_config_form(
        &mut self,
        room: BareJid,
        config: RoomConfig,
        payload: Option<Element>,
    ) {
        let form = payload.as_ref().and_then(muc::config_form);
        let submit = match form {
            Some(f) => muc::config_submit(&f, &config).map_err(|e| Error::Refused(e.to_string())),
            None => Err(Error::Refused("the room sent no configuration form".into())),
        };
        match submit {
            Ok(el) => {
                self.send_iq(
                    Some(Jid::from(room.clone())),
                    IqKind::Set,
                    el,
                    Pending::RoomConfigured { room },
                )
                .await;
            }
            Err(e) => self.on_room_configured(&room, Err(e)),
        }
    }

    fn add_notice(&self, room: &BareJid, text: &str) {
        match self.store.add_notice(self.rec.id, room.as_str(), text) {
            Ok(message) => self.emit(Event::Message {
                account: self.rec.jid.clone(),
                message,
                live: true,
            }),
            Err(e) => tracing::error!(error = %e, "cannot store a room notice"),
        }
    }

    fn fail_queued(&mut self, room: &BareJid, why: &str) {
        let keep: Vec<i64> = self.in_flight.iter().copied().collect();
        match self
            .store
            .fail_queued(self.rec.id, room.as_str(), why, &keep)
        {
            Ok(failed) => {
                for message in failed {
                    self.emit(Event::MessageUpdated {
                        account: self.rec.jid.clone(),
                        message,
                    });
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot fail queued room messages"),
        }
    }

    /// Leaves a room the user no longer wants to be in. `republish`: tell our other devices
    /// (bookmark autojoin off); false when the change came from them.
    pub(super) async fn leave(&mut self, room: &BareJid, republish: bool) {
        if let Err(e) = self.store.leave_room(self.rec.id, room.as_str()) {
            tracing::error!(error = %e, "cannot record leaving");
        }
        let occupant = self
            .session
            .rooms
            .get_mut(room)
            .filter(|rs| rs.present())
            .map(|rs| {
                rs.leaving = true;
                rs.phase = Phase::Out;
                rs.nick.clone()
            })
            .and_then(|nick| self.occupant_jid(room, &nick));
        if let Some(occ) = occupant {
            self.send_now(muc::leave(occ)).await;
        }
        self.set_room_cx(room);
        self.fail_queued(room, "you left the room before it was sent");
        self.emit_room(room, RoomState::Left);
        if republish {
            self.publish_bookmark(room).await;
        }
    }

    /// Starts the room's archive catch-up: after the newest room-archive id we hold, or the
    /// newest page for a room we have no position in.
    async fn start_room_catchup(&mut self, room: &BareJid) {
        let archive = self
            .session
            .rooms
            .get(room)
            .and_then(|r| r.info.as_ref())
            .is_some_and(|i| i.archive);
        if !archive {
            if let Some(rs) = self.session.rooms.get_mut(room) {
                rs.caught_up = true;
            }
            return;
        }
        let stored = self.store.room(self.rec.id, room.as_str()).ok().flatten();
        let from = match stored.map(|r| (r.mam_last_id, r.mam_synced_at)) {
            Some((Some(id), _)) => mam::From::After(id),
            // Caught up before while the archive was empty: everything since then (a
            // little earlier, for clock skew; duplicates are dropped by the store).
            Some((None, Some(at))) => match chrono::DateTime::from_timestamp_millis(at) {
                Some(t) => mam::From::Since(t - chrono::Duration::minutes(5)),
                None => mam::From::Latest,
            },
            // A first visit: the newest page, not the room's whole past.
            _ => mam::From::Latest,
        };
        self.request_room_page(room, from).await;
    }

    async fn request_room_page(&mut self, room: &BareJid, from: mam::From) {
        let queryid = crate::proto::new_id();
        self.session
            .open_queries
            .insert(queryid.clone(), room.clone());
        let latest = from == mam::From::Latest;
        self.send_iq(
            Some(Jid::from(room.clone())),
            IqKind::Set,
            mam::query(&queryid, &from),
            Pending::RoomMam {
                room: room.clone(),
                queryid,
                latest,
            },
        )
        .await;
    }

    /// Stores a room archive page collected so far. False if it could not be stored.
    fn store_room_page(&mut self, room: &BareJid) -> bool {
        let Some(rs) = self.session.rooms.get_mut(room) else {
            return true;
        };
        let page = std::mem::take(&mut rs.page);
        match self.store.ingest_all(self.rec.id, &page) {
            Ok(results) => {
                for r in results {
                    self.emit_ingest(r, false);
                }
                true
            }
            Err(e) => {
                tracing::error!(error = %e, %room, "cannot store a room archive page");
                false
            }
        }
    }

    pub(super) async fn on_room_page(
        &mut self,
        room: BareJid,
        queryid: String,
        latest: bool,
        result: std::result::Result<Option<Element>, StanzaError>,
    ) {
        self.session.open_queries.remove(&queryid);
        if !self.store_room_page(&room) {
            return;
        }
        let fetched = self
            .session
            .rooms
            .get(&room)
            .map(|r| r.fetched)
            .unwrap_or(0);
        let fin = match result {
            Ok(payload) => payload.and_then(|el| xmpp_parsers::mam::Fin::try_from(el).ok()),
            Err(e) if e.defined_condition == DefinedCondition::ItemNotFound && !latest => {
                tracing::warn!(%room, "room archive position unknown; fetching the newest page");
                self.request_room_page(&room, mam::From::Latest).await;
                return;
            }
            Err(e) => {
                tracing::warn!(%room, error = ?e.defined_condition, "room archive query failed");
                return;
            }
        };
        let Some(fin) = fin else {
            tracing::warn!(%room, "room archive answered without <fin/>");
            return;
        };
        let next = if latest {
            mam::Next::Done(fin.set.last.clone())
        } else {
            mam::after_fin(&fin)
        };
        match next {
            mam::Next::Page(last) => {
                self.set_room_position(&room, &last, false);
                self.emit(Event::RoomSync {
                    account: self.rec.jid.clone(),
                    room: room.to_string(),
                    fetched,
                    done: false,
                });
                self.request_room_page(&room, mam::From::After(last)).await;
            }
            mam::Next::Done(last) => {
                match &last {
                    Some(last) => self.set_room_position(&room, last, true),
                    None => {
                        if let Err(e) = self.store.mark_room_synced(self.rec.id, room.as_str()) {
                            tracing::error!(error = %e, "cannot record the room catch-up");
                        }
                    }
                }
                if let Some(rs) = self.session.rooms.get_mut(&room) {
                    rs.caught_up = true;
                }
                self.emit(Event::RoomSync {
                    account: self.rec.jid.clone(),
                    room: room.to_string(),
                    fetched,
                    done: true,
                });
            }
        }
    }

    pub(super) fn set_room_position(&self, room: &BareJid, id: &str, complete: bool) {
        if let Err(e) =
            self.store
                .set_room_archive_position(self.rec.id, room.as_str(), id, complete)
        {
            tracing::error!(error = %e, "cannot record room archive position");
        }
    }

    /// XEP-0410: pings our own occupant JID in joined rooms that have been quiet for the
    /// ping interval (or all of them, `force`), to notice rooms that silently dropped us.
    pub(super) async fn ping_rooms(&mut self, force: bool) {
        let interval = self.room_ping_interval();
        let due: Vec<(BareJid, String)> = self
            .session
            .rooms
            .values()
            .filter(|rs| rs.phase == Phase::Joined && !rs.pinging)
            .filter(|rs| force || rs.last_heard.elapsed() >= interval)
            .map(|rs| (rs.jid.clone(), rs.nick.clone()))
            .collect();
        for (room, nick) in due {
            let Some(occ) = self.occupant_jid(&room, &nick) else {
                continue;
            };
            if let Some(rs) = self.session.rooms.get_mut(&room) {
                rs.pinging = true;
            }
            self.send_iq(
                Some(Jid::from(occ)),
                IqKind::Get,
                xmpp_parsers::ping::Ping,
                Pending::SelfPing { room },
            )
            .await;
        }
    }

    pub(super) async fn on_self_ping(&mut self, room: BareJid, outcome: PingOutcome) {
        let Some(rs) = self.session.rooms.get_mut(&room) else {
            return;
        };
        rs.pinging = false;
        rs.last_heard = Instant::now();
        if outcome == PingOutcome::NotJoined && rs.phase == Phase::Joined {
            tracing::info!(%room, "the room dropped us (self-ping); rejoining");
            self.emit_room(&room, RoomState::Joining);
            self.send_join(&room).await;
        }
    }

    /// After a fresh session: our bookmarks first (other devices may have joined or left
    /// rooms), then every room we want to be in.
    pub(super) async fn sync_bookmarks(&mut self) {
        self.send_iq(None, IqKind::Get, bookmarks::request(), Pending::Bookmarks)
            .await;
    }

    pub(super) async fn on_bookmarks(&mut self, list: Option<Vec<Bookmark>>) {
        if let Some(list) = list {
            self.apply_bookmarks(&list, true).await;
        }
        self.join_wanted_rooms().await;
        self.emit(Event::Bookmarks {
            account: self.rec.jid.clone(),
        });
    }

    /// Applies bookmarks from the server. `complete`: this is the whole list, so bookmarked
    /// rooms missing from it were removed by another device.
    async fn apply_bookmarks(&mut self, list: &[Bookmark], complete: bool) {
        let nick = self.default_nick();
        for b in list {
            let n = b.nick.clone().unwrap_or_else(|| nick.clone());
            if let Err(e) = self.store.apply_bookmark(
                self.rec.id,
                b.room.as_str(),
                &n,
                b.name.as_deref(),
                b.autojoin,
            ) {
                tracing::error!(error = %e, "cannot store a bookmark");
            }
            if let Some(p) = &b.password {
                self.session
                    .room_passwords
                    .insert(b.room.clone(), p.clone());
            }
        }
        if !complete {
            return;
        }
        let rooms = self.store.rooms(self.rec.id).unwrap_or_default();
        for r in rooms {
            let listed = list.iter().any(|b| b.room.as_str() == r.jid);
            let Ok(jid) = BareJid::new(&r.jid) else {
                continue;
            };
            if r.bookmarked && !listed {
                // Removed on another device.
                if let Err(e) = self.store.set_room_bookmarked(self.rec.id, &r.jid, false) {
                    tracing::error!(error = %e, "cannot update bookmark state");
                }
                if r.autojoin {
                    self.leave(&jid, false).await;
                }
            } else if r.autojoin && !r.bookmarked {
                // Joined here while the server could not be told: tell it now.
                self.publish_bookmark(&jid).await;
            }
        }
    }

    /// A bookmark change pushed by the server (another device joined or left a room).
    pub(super) async fn on_bookmark_event(&mut self, change: bookmarks::Change) {
        let present =
            |a: &Actor, room: &BareJid| a.session.rooms.get(room).is_some_and(|rs| rs.present());
        self.apply_bookmarks(&change.published, false).await;
        for b in &change.published {
            if b.autojoin && !present(self, &b.room) {
                let nick = b.nick.clone().unwrap_or_else(|| self.default_nick());
                self.start_join(b.room.clone(), nick, None).await;
            } else if !b.autojoin && present(self, &b.room) {
                self.leave(&b.room, false).await;
            }
        }
        for room in &change.retracted {
            if let Err(e) = self
                .store
                .set_room_bookmarked(self.rec.id, room.as_str(), false)
            {
                tracing::error!(error = %e, "cannot update bookmark state");
            }
            if present(self, room) {
                self.leave(room, false).await;
            }
        }
        self.emit(Event::Bookmarks {
            account: self.rec.jid.clone(),
        });
    }

    /// Joins every room the store says we want to be in and are not in.
    async fn join_wanted_rooms(&mut self) {
        let rooms: Vec<RoomRecord> = self
            .store
            .rooms(self.rec.id)
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.autojoin)
            .collect();
        for r in rooms {
            let Ok(jid) = BareJid::new(&r.jid) else {
                continue;
            };
            if self.session.rooms.get(&jid).is_some_and(|rs| rs.present()) {
                continue;
            }
            self.start_join(jid, r.nick, None).await;
        }
    }

    /// Publishes a room's bookmark as the store has it (autojoin on or off).
    pub(super) async fn publish_bookmark(&mut self, room: &BareJid) {
        let Some(r) = self.store.room(self.rec.id, room.as_str()).ok().flatten() else {
            return;
        };
        let b = Bookmark {
            room: room.clone(),
            name: r.name,
            nick: Some(r.nick),
            autojoin: r.autojoin,
            password: None,
            extensions: None,
        };
        self.send_iq(
            None,
            IqKind::Set,
            bookmarks::publish(&b),
            Pending::BookmarkSet {
                room: room.clone(),
                published: true,
            },
        )
        .await;
    }

    /// Removes a room's bookmark (the user forgot the room).
    pub(super) async fn retract_bookmark(&mut self, room: &BareJid) {
        self.send_iq(
            None,
            IqKind::Set,
            bookmarks::retract(room),
            Pending::BookmarkSet {
                room: room.clone(),
                published: false,
            },
        )
        .await;
    }

    /// Handles a join request from the user.
    pub(super) async fn join_command(
        &mut self,
        room: BareJid,
        nick: String,
        password: Option<String>,
        create: Option<RoomConfig>,
        reply: oneshot::Sender<Result<RoomJoined>>,
    ) {
        if !self.online {
            if reply
                .send(Err(Error::NotConnected(self.rec.jid.clone())))
                .is_err()
            {
                tracing::debug!("join requester went away");
            }
            return;
        }
        let state = self
            .session
            .rooms
            .get(&room)
            .map(|rs| (rs.phase, rs.nick.clone()));
        if let Some((Phase::Joined, current)) = &state
            && create.is_none()
        {
            if *current != nick
                && let Some(occ) = self.occupant_jid(&room, &nick)
            {
                // Already in: a different nick means a nick change.
                let p = self.own_presence().with_to(Jid::from(occ));
                self.send_now(p).await;
            }
            let joined = self.room_joined(&room, false);
            if reply.send(Ok(joined)).is_err() {
                tracing::debug!("join requester went away");
            }
            return;
        }
        self.room_waiters
            .entry(room.clone())
            .or_default()
            .push(JoinWaiter { reply, create });
        if let Some(p) = &password {
            // A password the user typed wins over one from an invitation or bookmark.
            self.session.room_passwords.remove(&room);
            self.saved_room_passwords.insert(room.clone(), p.clone());
        }
        if !matches!(state, Some((Phase::Joining | Phase::Discovering, _))) {
            self.start_join(room.clone(), nick, password).await;
        }
        self.publish_bookmark(&room).await;
    }

    /// Occupants of a room we are in.
    pub(super) fn occupants(&self, room: &BareJid) -> Result<Vec<crate::services::muc::Occupant>> {
        match self.session.rooms.get(room) {
            Some(rs) if rs.phase == Phase::Joined => Ok(rs.occupants.values().cloned().collect()),
            _ => Err(Error::NotInRoom(room.to_string())),
        }
    }

    /// Whether an outbox stanza may go out now: group chat and private messages need us to
    /// be in the room (the room refuses them otherwise).
    pub(super) fn may_send(&self, msg: &xmpp_parsers::message::Message) -> bool {
        let Some(to) = &msg.to else { return true };
        let room = to.to_bare();
        let to_room = msg.type_ == xmpp_parsers::message::MessageType::Groupchat
            || (to.resource().is_some() && self.room_cx.contains_key(&room));
        if !to_room {
            return true;
        }
        self.session
            .rooms
            .get(&room)
            .is_some_and(|rs| rs.phase == Phase::Joined)
    }

    /// A nick change in a room we are in.
    pub(super) async fn change_nick(&mut self, room: &BareJid, nick: &str) -> Result<()> {
        let joined = self
            .session
            .rooms
            .get(room)
            .is_some_and(|rs| rs.phase == Phase::Joined);
        if !joined {
            return Err(Error::NotInRoom(room.to_string()));
        }
        let occ = self
            .occupant_jid(room, nick)
            .ok_or_else(|| Error::Refused(format!("{nick} is not a valid nickname")))?;
        let p = self.own_presence().with_to(Jid::from(occ));
        self.send_now(p).await;
        Ok(())
    }

    /// Our presence to every room we are in (after a show/status change).
    pub(super) async fn broadcast_room_presence(&mut self) {
        let targets: Vec<FullJid> = self
            .session
            .rooms
            .values()
            .filter(|rs| rs.phase == Phase::Joined)
            .filter_map(|rs| rs.jid.with_resource_str(&rs.nick).ok())
            .collect();
        for occ in targets {
            let p = self.own_presence().with_to(Jid::from(occ));
            self.send_now(p).await;
        }
    }

    /// Legacy XEP-0048 bookmarks (a server without XEP-0402): adopted and published as
    /// XEP-0402 bookmarks, then the rooms are joined.
    pub(super) async fn on_legacy_bookmarks(&mut self, list: Vec<Bookmark>) {
        if !list.is_empty() {
            tracing::info!(count = list.len(), "migrating legacy bookmarks");
        }
        self.apply_bookmarks(&list, false).await;
        for b in &list {
            self.publish_bookmark(&b.room).await;
        }
        self.on_bookmarks(None).await;
    }

    /// Room-related parts of an inbound message besides its body.
    pub(super) async fn apply_room_signals(
        &mut self,
        subject: Option<(BareJid, String, Option<String>)>,
        codes: Option<(BareJid, Vec<u16>)>,
        retraction: Option<RetractionIn>,
        invitation: Option<muc::Invitation>,
        declined: Option<(BareJid, Option<BareJid>, Option<String>)>,
        pep: Option<Element>,
    ) {
        let account = self.rec.jid.clone();
        if let Some((room, subject, by)) = subject {
            if let Err(e) = self
                .store
                .set_room_subject(self.rec.id, room.as_str(), &subject)
            {
                tracing::error!(error = %e, "cannot store a room subject");
            }
            self.emit(Event::RoomSubject {
                account: account.clone(),
                room: room.to_string(),
                subject,
                by,
            });
        }
        if let Some((room, codes)) = codes {
            if let Some(text) = config_notice(&codes) {
                self.add_notice(&room, &text);
            }
            // The room changed: learn what it is now (archive, anonymity…).
            self.send_iq(
                Some(Jid::from(room.clone())),
                IqKind::Get,
                xmpp_parsers::disco::DiscoInfoQuery { node: None },
                Pending::RoomInfo { room },
            )
            .await;
        }
        if let Some(r) = retraction {
            let sender = r.sender.to_string();
            let author = (!r.from_room).then_some(Author {
                outgoing: r.outgoing,
                sender: &sender,
                occupant_id: r.occupant_id.as_deref(),
            });
            match self.store.retract(
                self.rec.id,
                &r.peer.to_string(),
                &r.retraction.target,
                author,
                r.retraction.moderated_by.as_deref(),
            ) {
                Ok(Some(message)) => {
                    if let Some(reason) = &r.retraction.reason {
                        tracing::info!(%reason, "message removed by a moderator");
                    }
                    self.emit(Event::MessageUpdated {
                        account: account.clone(),
                        message,
                    });
                }
                Ok(None) => tracing::debug!("retraction of an unknown message"),
                Err(e) => tracing::error!(error = %e, "cannot apply a retraction"),
            }
        }
        if let Some(inv) = invitation {
            let rec = InvitationRecord {
                room: inv.room.to_string(),
                inviter: inv.from.as_ref().map(|j| j.to_string()),
                reason: inv.reason.clone(),
                kind: match inv.kind {
                    muc::InviteKind::Mediated => "mediated",
                    muc::InviteKind::Direct => "direct",
                }
                .into(),
                received_at: crate::store::now_ms(),
            };
            if let Some(p) = inv.password {
                self.session.room_passwords.insert(inv.room.clone(), p);
            }
            match self.store.add_invitation(self.rec.id, &rec) {
                Ok(()) => self.emit(Event::Invitation {
                    account: account.clone(),
                    invitation: rec,
                }),
                Err(e) => tracing::error!(error = %e, "cannot store an invitation"),
            }
        }
        if let Some((room, who, reason)) = declined {
            let who = who
                .map(|j| j.to_string())
                .unwrap_or_else(|| "Someone".into());
            let text = match reason {
                Some(r) => format!("{who} declined your invitation: {r}"),
                None => format!("{who} declined your invitation"),
            };
            self.add_notice(&room, &text);
        }
        if let Some(ev) = pep
            && let Some(change) = bookmarks::parse_event(&ev)
        {
            self.on_bookmark_event(change).await;
        }
    }
}

/// An occupant who left: only the nick matters.
fn departed(nick: String) -> crate::services::muc::Occupant {
    crate::services::muc::Occupant {
        nick,
        jid: None,
        role: muc::Role::None,
        affiliation: muc::Affiliation::None,
        occupant_id: None,
        show: None,
        status: None,
    }
}
