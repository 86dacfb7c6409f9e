//! Group chat on [`Client`]: rooms (XEP-0045), bookmarks (XEP-0402), invitations
//! (XEP-0045 and XEP-0249), moderation (XEP-0425), retraction (XEP-0424) and discovery.

use std::time::Duration;

use jid::{BareJid, Jid};
use minidom::Element;
use serde::Serialize;
use xmpp_parsers::disco::{DiscoInfoQuery, DiscoInfoResult, DiscoItemsQuery, DiscoItemsResult};

use super::{Client, Error, Event, Result, RoomJoined, parse_bare, parse_contact};
use crate::account::Command;
use crate::proto::muc::{self, Affiliation, Role, RoomConfig, RoomInfo};
use crate::proto::retract;
use crate::services::muc::Occupant;
use crate::store::{
    AccountRecord, Author, InvitationRecord, MessageKind, MessageRecord, OutgoingMessage,
    RoomRecord,
};

/// How long a join may take before we give up waiting (the actor keeps trying).
const JOIN_TIMEOUT: Duration = Duration::from_secs(60);

/// A group chat service (XEP-0045 §6.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MucService {
    pub jid: String,
    pub name: Option<String>,
}

/// A room listed by a service (XEP-0045 §6.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoomListing {
    pub jid: String,
    pub name: Option<String>,
}

/// An entry of a room's member, admin, owner or ban list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AffiliationEntry {
    pub jid: String,
    pub affiliation: Affiliation,
    pub nick: Option<String>,
    pub reason: Option<String>,
}

/// Parses a room JID (it must have a local part: `room@service`).
pub fn parse_room(s: &str) -> Result<BareJid> {
    let j = BareJid::new(s.trim()).map_err(|_| Error::InvalidJid(s.to_owned()))?;
    if j.node().is_none() {
        return Err(Error::InvalidJid(s.to_owned()));
    }
    Ok(j)
}

/// The outgoing stanza (serialised for the outbox) for a message of this kind to `peer`.
pub(crate) fn stanza_for(
    kind: MessageKind,
    peer: &str,
    id: &str,
    body: &str,
    replace: Option<&str>,
) -> Result<String> {
    let bad = || Error::InvalidJid(peer.to_owned());
    let msg = match kind {
        MessageKind::Chat => {
            let to = parse_contact(peer)?;
            return Ok(crate::services::chat::message_stanza(
                &to, id, body, replace,
            ));
        }
        MessageKind::GroupChat => muc::groupchat(&parse_room(peer)?, id, body, replace),
        MessageKind::Private => {
            let to = jid::FullJid::new(peer).map_err(|_| bad())?;
            muc::private_message(&to, id, body, replace)
        }
        MessageKind::Notice => return Err(Error::Refused("room notices are not sent".into())),
    };
    Ok(String::from(&Element::from(msg)))
}

/// Where a room's password is kept (keyring, or the profile's 0600 file).
pub(crate) fn room_secret_key(account: &str, room: &str) -> String {
    format!("room:{account}:{room}")
}

impl Client {
    /// The saved passwords of the account's rooms, for its actor's joins.
    pub(crate) async fn room_passwords(
        &self,
        acc: &AccountRecord,
    ) -> Result<std::collections::HashMap<BareJid, String>> {
        let mut out = std::collections::HashMap::new();
        for r in self.inner.store.rooms(acc.id)? {
            if let Some(pw) = self
                .inner
                .secrets
                .load_stored(&room_secret_key(&acc.jid, &r.jid))
                .await?
                && let Ok(jid) = BareJid::new(&r.jid)
            {
                out.insert(jid, pw.expose().to_owned());
            }
        }
        Ok(out)
    }

    pub(super) fn account_record(&self, account: &str) -> Result<AccountRecord> {
        Ok(self.inner.store.account(parse_bare(account)?.as_str())?)
    }

    pub(super) fn known_room(&self, acc: &AccountRecord, room: &BareJid) -> Result<RoomRecord> {
        self.inner
            .store
            .room(acc.id, room.as_str())?
            .ok_or_else(|| Error::NotInRoom(room.to_string()))
    }

    /// Joins a room and waits until we are in it (or the room refused). The room is
    /// remembered: it is joined again on every connect, and bookmarked (XEP-0402) so our
    /// other devices join it too. `nick` defaults to the room's last nick or our localpart.
    pub async fn join_room(
        &self,
        account: &str,
        room: &str,
        nick: Option<&str>,
        password: Option<&str>,
    ) -> Result<RoomJoined> {
        self.enter_room(account, room, nick, password, None).await
    }

    /// Creates a room with these settings and joins it. Fails with [`Error::RoomExists`]
    /// (and leaves again) if it already existed.
    pub async fn create_room(
        &self,
        account: &str,
        room: &str,
        nick: Option<&str>,
        config: RoomConfig,
    ) -> Result<RoomJoined> {
        let acc = self.account_record(account)?;
        let jid = parse_room(room)?;
        if let Some(r) = self.inner.store.room(acc.id, jid.as_str())?
            && r.autojoin
        {
            // We are in it already: it exists.
            return Err(Error::RoomExists(jid.to_string()));
        }
        let password = config.password.clone();
        let r = self
            .enter_room(account, room, nick, password.as_deref(), Some(config))
            .await;
        if let Err(Error::RoomExists(_)) = &r {
            self.leave_room(account, room).await?;
        }
        r
    }

    async fn enter_room(
        &self,
        account: &str,
        room: &str,
        nick: Option<&str>,
        password: Option<&str>,
        create: Option<RoomConfig>,
    ) -> Result<RoomJoined> {
        let acc = self.account_record(account)?;
        let room = parse_room(room)?;
        let nick = match nick.map(str::trim).filter(|n| !n.is_empty()) {
            Some(n) => n.to_owned(),
            None => self
                .inner
                .store
                .room(acc.id, room.as_str())?
                .map(|r| r.nick)
                .unwrap_or_else(|| acc.jid.split('@').next().unwrap_or("me").to_owned()),
        };
        room.with_resource_str(&nick)
            .map_err(|_| Error::Refused(format!("{nick} is not a valid nickname")))?;
        self.inner
            .store
            .want_room(acc.id, room.as_str(), &nick, None)?;
        if let Err(e) = self.inner.store.take_invitation(acc.id, room.as_str()) {
            tracing::warn!(error = %e, "cannot clear an invitation");
        }
        let password = password.map(str::to_owned);
        let password_given = password.clone();
        let fut = self.query(&acc.jid, |reply| Command::JoinRoom {
            room: room.clone(),
            nick,
            password,
            create,
            reply,
        });
        let joined = match tokio::time::timeout(JOIN_TIMEOUT, fut).await {
            Ok(r) => r??,
            Err(_) => return Err(Error::Timeout("joining the room")),
        };
        if let Some(pw) = password_given {
            // It worked: remember it for the joins on every connect.
            self.inner
                .secrets
                .save(
                    &room_secret_key(&acc.jid, room.as_str()),
                    &crate::secrets::Password::new(pw),
                )
                .await?;
        }
        Ok(joined)
    }

    /// Leaves a room on all our devices (the bookmark stays, with autojoin off). Messages
    /// still queued for it fail. Needs the account to be online.
    pub async fn leave_room(&self, account: &str, room: &str) -> Result<()> {
        let acc = self.account_record(account)?;
        let room = parse_room(room)?;
        // Needs a connection: the room and our other devices (the bookmark) must learn it,
        // or the next bookmark sync would bring the room back.
        self.command(&acc.jid, |reply| Command::LeaveRoom { room, reply })
            .await
    }

    /// Leaves a room and removes its bookmark and the room from our list (its history
    /// stays in the conversation).
    pub async fn forget_room(&self, account: &str, room: &str) -> Result<()> {
        let acc = self.account_record(account)?;
        let room = parse_room(room)?;
        self.command(&acc.jid, |reply| Command::ForgetRoom {
            room: room.clone(),
            reply,
        })
        .await?;
        self.inner
            .secrets
            .delete(&room_secret_key(&acc.jid, room.as_str()))
            .await?;
        Ok(self.inner.store.remove_room(acc.id, room.as_str())?)
    }

    /// The rooms we know (joined now, bookmarked, or joined before).
    pub fn rooms(&self, account: &str) -> Result<Vec<RoomRecord>> {
        let acc = self.account_record(account)?;
        Ok(self.inner.store.rooms(acc.id)?)
    }

    /// What a room said about itself when we last joined it.
    pub fn stored_room_info(&self, account: &str, room: &str) -> Result<Option<RoomInfo>> {
        let acc = self.account_record(account)?;
        let room = parse_room(room)?;
        Ok(self
            .known_room(&acc, &room)?
            .info
            .and_then(|j| serde_json::from_str(&j).ok()))
    }

    /// Who is in a room we are in now.
    pub async fn occupants(&self, account: &str, room: &str) -> Result<Vec<Occupant>> {
        let room = parse_room(room)?;
        self.query(account, |reply| Command::Occupants { room, reply })
            .await?
    }

    /// Queues a message to a room (durable like every outgoing message; it goes out once
    /// we are in the room and is `delivered` when the room sends it back).
    pub async fn send_room_message(
        &self,
        account: &str,
        room: &str,
        body: &str,
    ) -> Result<MessageRecord> {
        let acc = self.account_record(account)?;
        let room = parse_room(room)?;
        let r = self.known_room(&acc, &room)?;
        // An encrypted room stays encrypted: encrypt, or fail with the reason.
        if self
            .inner
            .store
            .conversation_encryption(acc.id, room.as_str())?
            .is_some()
        {
            return self.send_room_encrypted(account, room.as_str(), body).await;
        }
        let id = crate::proto::new_id();
        let stanza = stanza_for(MessageKind::GroupChat, room.as_str(), &id, body, None)?;
        self.queue(
            &acc,
            OutgoingMessage {
                encryption: None,
                peer: room.to_string(),
                kind: MessageKind::GroupChat,
                sender: format!("{room}/{}", r.nick),
                id,
                body: body.to_owned(),
                stanza,
            },
        )
        .await
    }

    /// Queues a private message to a room occupant (kept with the room, not with the
    /// person's own address).
    pub async fn send_private_message(
        &self,
        account: &str,
        room: &str,
        nick: &str,
        body: &str,
    ) -> Result<MessageRecord> {
        let acc = self.account_record(account)?;
        let room = parse_room(room)?;
        self.known_room(&acc, &room)?;
        let occupant = room
            .with_resource_str(nick)
            .map_err(|_| Error::InvalidJid(format!("{room}/{nick}")))?;
        let id = crate::proto::new_id();
        let stanza = stanza_for(MessageKind::Private, &occupant.to_string(), &id, body, None)?;
        self.queue(
            &acc,
            OutgoingMessage {
                encryption: None,
                peer: occupant.to_string(),
                kind: MessageKind::Private,
                sender: format!("{}/{}", acc.jid, acc.resource),
                id,
                body: body.to_owned(),
                stanza,
            },
        )
        .await
    }

    pub(super) async fn queue(
        &self,
        acc: &AccountRecord,
        msg: OutgoingMessage,
    ) -> Result<MessageRecord> {
        let (rec, _) = self.inner.store.queue_message(acc.id, &msg)?;
        self.emit(Event::Message {
            account: acc.jid.clone(),
            message: rec.clone(),
            live: true,
        });
        self.flush(&acc.jid).await;
        Ok(rec)
    }

    /// Changes a room's subject (moderators, or everyone where the room allows it).
    pub async fn set_subject(&self, account: &str, room: &str, subject: &str) -> Result<()> {
        let room = parse_room(room)?;
        let stanza = muc::subject(&room, subject);
        self.command(account, |reply| Command::Send { stanza, reply })
            .await
    }

    /// Changes our nick in a room we are in (the room confirms with a presence).
    pub async fn change_nick(&self, account: &str, room: &str, nick: &str) -> Result<()> {
        let room = parse_room(room)?;
        let nick = nick.trim().to_owned();
        self.command(account, |reply| Command::ChangeNick { room, nick, reply })
            .await
    }

    pub(super) async fn iq(
        &self,
        account: &str,
        to: Jid,
        set: bool,
        payload: Element,
    ) -> Result<Option<Element>> {
        self.query(account, |reply| Command::Iq {
            to: Some(to),
            set,
            payload,
            reply,
        })
        .await?
    }

    /// Changes an occupant's role: kick (`Role::None`), voice (`Participant`), revoke voice
    /// (`Visitor`), moderator.
    pub async fn set_role(
        &self,
        account: &str,
        room: &str,
        nick: &str,
        role: Role,
        reason: Option<&str>,
    ) -> Result<()> {
        let room = parse_room(room)?;
        self.iq(
            account,
            Jid::from(room),
            true,
            muc::set_role(nick, role, reason),
        )
        .await
        .map(|_| ())
    }

    /// Changes a user's affiliation: ban (`Outcast`), member, admin, owner, none.
    pub async fn set_affiliation(
        &self,
        account: &str,
        room: &str,
        jid: &str,
        affiliation: Affiliation,
        reason: Option<&str>,
    ) -> Result<()> {
        let room = parse_room(room)?;
        let who = parse_contact(jid)?;
        self.iq(
            account,
            Jid::from(room),
            true,
            muc::set_affiliation(&who, affiliation, reason),
        )
        .await
        .map(|_| ())
    }

    /// Everyone with an affiliation (members, admins, owners, banned).
    pub async fn affiliations(
        &self,
        account: &str,
        room: &str,
        affiliation: Affiliation,
    ) -> Result<Vec<AffiliationEntry>> {
        let room = parse_room(room)?;
        let el = self
            .iq(
                account,
                Jid::from(room),
                false,
                muc::affiliation_list(affiliation),
            )
            .await?;
        Ok(el
            .as_ref()
            .map(muc::parse_admin_list)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|i| {
                Some(AffiliationEntry {
                    jid: i.jid?.to_bare().to_string(),
                    affiliation: i.affiliation,
                    nick: i.nick,
                    reason: i.reason,
                })
            })
            .collect())
    }

    /// Changes a room's settings (owners). A setting the room does not offer is an error.
    pub async fn configure_room(
        &self,
        account: &str,
        room: &str,
        config: &RoomConfig,
    ) -> Result<()> {
        let room = parse_room(room)?;
        let form = self
            .iq(
                account,
                Jid::from(room.clone()),
                false,
                muc::config_request(),
            )
            .await?
            .as_ref()
            .and_then(muc::config_form)
            .ok_or_else(|| Error::Refused("the room sent no configuration form".into()))?;
        let submit =
            muc::config_submit(&form, config).map_err(|e| Error::Refused(e.to_string()))?;
        self.iq(account, Jid::from(room), true, submit)
            .await
            .map(|_| ())
    }

    /// Destroys a room (owners). Everyone in it is told why.
    pub async fn destroy_room(
        &self,
        account: &str,
        room: &str,
        reason: Option<&str>,
    ) -> Result<()> {
        let acc = self.account_record(account)?;
        let room = parse_room(room)?;
        self.iq(
            &acc.jid,
            Jid::from(room.clone()),
            true,
            muc::destroy(reason),
        )
        .await?;
        self.inner.store.leave_room(acc.id, room.as_str())?;
        Ok(())
    }

    /// Invites someone to a room: through the room (XEP-0045), or directly (XEP-0249,
    /// which works with rooms that do not forward invitations).
    pub async fn invite(
        &self,
        account: &str,
        room: &str,
        jid: &str,
        reason: Option<&str>,
        direct: bool,
    ) -> Result<()> {
        let room = parse_room(room)?;
        let who = parse_contact(jid)?;
        let stanza = if direct {
            muc::direct_invite(&room, &who, reason, None)
        } else {
            muc::mediated_invite(&room, &who, reason)
        };
        self.command(account, |reply| Command::Send { stanza, reply })
            .await
    }

    /// Invitations waiting for an answer.
    pub fn invitations(&self, account: &str) -> Result<Vec<InvitationRecord>> {
        let acc = self.account_record(account)?;
        Ok(self.inner.store.invitations(acc.id)?)
    }

    /// Declines an invitation (through the room, for invitations that came through it).
    pub async fn decline_invitation(
        &self,
        account: &str,
        room: &str,
        reason: Option<&str>,
    ) -> Result<()> {
        let acc = self.account_record(account)?;
        let room = parse_room(room)?;
        let Some(inv) = self.inner.store.take_invitation(acc.id, room.as_str())? else {
            return Ok(());
        };
        if inv.kind == "mediated"
            && let Some(inviter) = inv.inviter.as_deref().and_then(|j| Jid::new(j).ok())
        {
            let stanza = muc::decline(&room, &inviter, reason);
            return self
                .command(&acc.jid, |reply| Command::Send { stanza, reply })
                .await;
        }
        Ok(())
    }

    fn own_message(&self, acc: &AccountRecord, message_id: i64) -> Result<MessageRecord> {
        self.inner
            .store
            .message(acc.id, message_id)?
            .ok_or(Error::CannotRetract(message_id, "no such message"))
    }

    /// Retracts one of our messages (XEP-0424) in a chat or room: it disappears here at
    /// once and from clients that support retraction.
    pub async fn retract_message(&self, account: &str, message_id: i64) -> Result<MessageRecord> {
        let acc = self.account_record(account)?;
        let m = self.own_message(&acc, message_id)?;
        if !m.outgoing {
            return Err(Error::CannotRetract(message_id, "only your own messages"));
        }
        let origin = m
            .origin_id
            .clone()
            .or(m.stanza_id.clone())
            .ok_or(Error::CannotRetract(message_id, "it has no id"))?;
        let peer = Jid::new(&m.peer).map_err(|_| Error::InvalidJid(m.peer.clone()))?;
        let (stanza, target) = if m.kind == MessageKind::GroupChat {
            // In a room the room's own id names the message.
            let sid = m.archive_id.clone().ok_or(Error::CannotRetract(
                message_id,
                "the room has not confirmed it yet",
            ))?;
            (retract::retract(peer, true, &sid, &origin), sid)
        } else {
            (
                retract::retract(peer, false, &origin, &origin),
                origin.clone(),
            )
        };
        let xml = String::from(&Element::from(stanza));
        self.inner.store.queue_stanza(acc.id, &xml)?;
        let sender = m.sender.clone();
        let rec = self
            .inner
            .store
            .retract(
                acc.id,
                &m.peer,
                &target,
                Some(Author {
                    outgoing: true,
                    sender: &sender,
                    occupant_id: None,
                }),
                None,
            )?
            .unwrap_or(m);
        self.emit(Event::MessageUpdated {
            account: acc.jid.clone(),
            message: rec.clone(),
        });
        self.flush(&acc.jid).await;
        Ok(rec)
    }

    /// Removes someone's message from a room (XEP-0425; moderators). The room tells
    /// everyone, and its archive keeps only a tombstone.
    pub async fn moderate_message(
        &self,
        account: &str,
        message_id: i64,
        reason: Option<&str>,
    ) -> Result<()> {
        let acc = self.account_record(account)?;
        let m = self.own_message(&acc, message_id)?;
        if m.kind != MessageKind::GroupChat {
            return Err(Error::CannotRetract(
                message_id,
                "only room messages can be moderated",
            ));
        }
        let sid = m
            .archive_id
            .clone()
            .ok_or(Error::CannotRetract(message_id, "the room gave it no id"))?;
        let room = parse_room(&m.peer)?;
        let version = self
            .stored_room_info(&acc.jid, room.as_str())?
            .and_then(|i| i.moderation)
            .unwrap_or_else(|| crate::proto::ns::MODERATE_0.to_owned());
        self.iq(
            &acc.jid,
            Jid::from(room),
            true,
            retract::moderate(&version, &sid, reason),
        )
        .await
        .map(|_| ())
    }

    /// Sends a get and parses the answer as `T` (`what` names it in errors).
    async fn get<T>(&self, account: &str, to: Jid, query: Element, what: &str) -> Result<T>
    where
        T: TryFrom<Element>,
        T::Error: std::fmt::Display,
    {
        let el = self
            .iq(account, to, false, query)
            .await?
            .ok_or_else(|| Error::Refused(format!("empty {what} answer")))?;
        T::try_from(el).map_err(|e| Error::Refused(format!("bad {what}: {e}")))
    }

    async fn disco_items(&self, account: &str, to: Jid) -> Result<DiscoItemsResult> {
        let query = DiscoItemsQuery {
            node: None,
            rsm: None,
        };
        self.get(account, to, query.into(), "disco#items").await
    }

    async fn disco_info(&self, account: &str, to: Jid) -> Result<DiscoInfoResult> {
        let query = DiscoInfoQuery { node: None };
        self.get(account, to, query.into(), "disco#info").await
    }

    /// The group chat services of our server (XEP-0045 §6.1).
    pub async fn muc_services(&self, account: &str) -> Result<Vec<MucService>> {
        let acc = parse_bare(account)?;
        let server = Jid::from(BareJid::from_parts(None, acc.domain()));
        let items = self.disco_items(acc.as_str(), server).await?;
        let mut out = Vec::new();
        for item in items.items {
            match self.disco_info(acc.as_str(), item.jid.clone()).await {
                Ok(info) if muc::is_muc_service(&info) => out.push(MucService {
                    jid: item.jid.to_string(),
                    name: item.name.clone().or_else(|| {
                        info.identities
                            .iter()
                            .find(|i| i.category == "conference")
                            .and_then(|i| i.name.clone())
                    }),
                }),
                Ok(_) => {}
                Err(e) => tracing::debug!(jid = %item.jid, error = %e, "disco#info failed"),
            }
        }
        Ok(out)
    }

    /// The public rooms of a service (XEP-0045 §6.3).
    pub async fn list_rooms(&self, account: &str, service: &str) -> Result<Vec<RoomListing>> {
        let service = parse_contact(service)?;
        let items = self.disco_items(account, Jid::from(service)).await?;
        Ok(items
            .items
            .into_iter()
            .map(|i| RoomListing {
                jid: i.jid.to_string(),
                name: i.name,
            })
            .collect())
    }

    /// Asks a room what it is (name, archive, anonymity, …) right now.
    pub async fn room_info(&self, account: &str, room: &str) -> Result<RoomInfo> {
        let room = parse_room(room)?;
        let info = self.disco_info(account, Jid::from(room.clone())).await?;
        muc::room_info(&info).ok_or_else(|| Error::Refused(format!("{room} is not a room")))
    }

    /// Checks every joined room with a self-ping now (XEP-0410) and rejoins those that
    /// dropped us.
    pub async fn check_rooms(&self, account: &str) -> Result<()> {
        self.command(account, |reply| Command::CheckRooms { reply })
            .await
    }

    /// How long a quiet room may go without a self-ping (default 5 minutes).
    pub fn set_room_ping_interval(&self, interval: Duration) {
        self.inner.room_ping_secs.store(
            interval.as_secs().max(1),
            std::sync::atomic::Ordering::Relaxed,
        );
    }
}
