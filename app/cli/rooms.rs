//! `starling muc …` and `starling bookmarks …`: group chat from the command line.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand, ValueEnum};
use starling_core::{Affiliation, Client, ConnectionState, Event, MessageState, Role, RoomConfig};

use super::{Output, connect_online};

/// Where the room password comes from: never the command line.
pub const ROOM_PASSWORD_ENV: &str = "STARLING_ROOM_PASSWORD";

#[derive(Debug, Subcommand)]
pub enum MucCmd {
    /// Join a room (it is joined again on every connect and on your other devices).
    Join {
        room: String,
        #[arg(long)]
        nick: Option<String>,
        /// The room needs a password: read it from STARLING_ROOM_PASSWORD or a prompt.
        #[arg(long)]
        password: bool,
    },
    /// Leave a room (on all your devices; the bookmark stays with autojoin off).
    Leave { room: String },
    /// Leave a room and remove its bookmark.
    Forget { room: String },
    /// Create a room and join it.
    Create {
        room: String,
        #[arg(long)]
        nick: Option<String>,
        #[command(flatten)]
        settings: RoomSettings,
    },
    /// Change a room's settings (owners).
    Configure {
        room: String,
        #[command(flatten)]
        settings: RoomSettings,
    },
    /// Destroy a room (owners).
    Destroy {
        room: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Send a message to a room; waits until the room has sent it to everyone.
    Send {
        room: String,
        /// The message (not with --file).
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        text: Option<String>,
        /// Share a file instead: uploaded to your server first, then its link (with its
        /// name, size and type); progress on stderr.
        #[arg(long, value_name = "PATH")]
        file: Option<std::path::PathBuf>,
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Send a private message to an occupant.
    Pm {
        room: String,
        nick: String,
        text: String,
    },
    /// Who is in a room.
    Occupants { room: String },
    /// Set the room's subject.
    Subject { room: String, text: String },
    /// Change your nick in a room.
    Nick { room: String, nick: String },
    /// Invite someone (through the room; --direct sends a XEP-0249 invitation instead).
    Invite {
        room: String,
        jid: String,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        direct: bool,
    },
    /// Invitations waiting for an answer.
    Invitations,
    /// Decline an invitation.
    Decline {
        room: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Kick an occupant (moderators).
    Kick {
        room: String,
        nick: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Ban a user (admins).
    Ban {
        room: String,
        jid: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Change an occupant's role: moderator, participant (voice), visitor (no voice), none (kick).
    Role {
        room: String,
        nick: String,
        role: RoleArg,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Change a user's affiliation: owner, admin, member, outcast (ban), none.
    Affiliation {
        room: String,
        jid: String,
        affiliation: AffiliationArg,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Retract one of your messages (by its number in `history --json`).
    Retract { message: i64 },
    /// Remove someone's message from a room (moderators).
    Moderate {
        message: i64,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Group chat services of your server.
    Services,
    /// Public rooms of a service.
    Rooms { service: String },
    /// Rooms you know, with their state.
    List,
}

#[derive(Debug, Subcommand)]
pub enum BookmarksCmd {
    /// Your bookmarked rooms (synced with the server first).
    List,
}

#[derive(Debug, Args, Default)]
pub struct RoomSettings {
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    description: Option<String>,
    #[arg(long)]
    members_only: Option<Option<bool>>,
    #[arg(long)]
    moderated: Option<Option<bool>>,
    /// Everyone sees real addresses.
    #[arg(long)]
    non_anonymous: Option<Option<bool>>,
    /// The room survives when the last person leaves.
    #[arg(long)]
    persistent: Option<Option<bool>>,
    /// Listed in the service's directory.
    #[arg(long)]
    public: Option<Option<bool>>,
    /// Protect the room with a password from STARLING_ROOM_PASSWORD or a prompt.
    #[arg(long)]
    password: bool,
}

/// `--flag` alone means true; `--flag=false` turns it off.
fn flag(v: Option<Option<bool>>) -> Option<bool> {
    v.map(|b| b.unwrap_or(true))
}

impl RoomSettings {
    fn config(&self) -> Result<RoomConfig> {
        Ok(RoomConfig {
            name: self.name.clone(),
            description: self.description.clone(),
            members_only: flag(self.members_only),
            moderated: flag(self.moderated),
            non_anonymous: flag(self.non_anonymous),
            persistent: flag(self.persistent),
            public: flag(self.public),
            password: if self.password {
                Some(room_password()?)
            } else {
                None
            },
        })
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Moderator,
    Participant,
    Visitor,
    None,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AffiliationArg {
    Owner,
    Admin,
    Member,
    Outcast,
    None,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Moderator => Role::Moderator,
            RoleArg::Participant => Role::Participant,
            RoleArg::Visitor => Role::Visitor,
            RoleArg::None => Role::None,
        }
    }
}

impl From<AffiliationArg> for Affiliation {
    fn from(a: AffiliationArg) -> Affiliation {
        match a {
            AffiliationArg::Owner => Affiliation::Owner,
            AffiliationArg::Admin => Affiliation::Admin,
            AffiliationArg::Member => Affiliation::Member,
            AffiliationArg::Outcast => Affiliation::Outcast,
            AffiliationArg::None => Affiliation::None,
        }
    }
}

/// The room password: STARLING_ROOM_PASSWORD, else a prompt, else one line of stdin.
fn room_password() -> Result<String> {
    if let Ok(pw) = std::env::var(ROOM_PASSWORD_ENV)
        && !pw.is_empty()
    {
        return Ok(pw);
    }
    let pw = super::read_secret("Room password: ")?;
    if pw.is_empty() {
        bail!("no room password given (set {ROOM_PASSWORD_ENV} or type it at the prompt)");
    }
    Ok(pw)
}

/// Makes sure we are in `room` (one the user joined before): waits for the automatic join.
async fn in_room(client: &Client, account: &str, room: &str) -> Result<()> {
    let room = starling_core::parse_room(room)?;
    let known = client
        .rooms(account)?
        .into_iter()
        .any(|r| r.jid == room.as_str() && r.autojoin);
    if !known {
        bail!("you are not in {room}; join it first with `starling muc join {room}`");
    }
    client.join_room(account, room.as_str(), None, None).await?;
    Ok(())
}

pub async fn run(client: &Client, out: &Output, account: &str, cmd: MucCmd) -> Result<()> {
    // Commands that need no connection.
    match &cmd {
        MucCmd::List => {
            let rooms = client.rooms(account)?;
            if out.json {
                return out.line(&rooms);
            }
            for r in rooms {
                let state = match (&r.removed, r.autojoin) {
                    (Some(why), _) => format!("removed: {why}"),
                    (None, true) => "joined".into(),
                    (None, false) => "left".into(),
                };
                let name = r.name.map(|n| format!(" ({n})")).unwrap_or_default();
                println!("{}{name} as {} [{state}]", r.jid, r.nick);
            }
            return Ok(());
        }
        MucCmd::Invitations => {
            let inv = client.invitations(account)?;
            if out.json {
                return out.line(&inv);
            }
            for i in inv {
                let from = i.inviter.unwrap_or_else(|| "someone".into());
                let reason = i.reason.map(|r| format!(": {r}")).unwrap_or_default();
                println!("{} from {from}{reason}", i.room);
            }
            return Ok(());
        }
        _ => {}
    }
    let password = match &cmd {
        MucCmd::Join { password: true, .. } => Some(room_password()?),
        _ => None,
    };
    let config = match &cmd {
        MucCmd::Create { settings, .. } | MucCmd::Configure { settings, .. } => {
            Some(settings.config()?)
        }
        _ => None,
    };
    connect_online(client, account, Duration::from_secs(60)).await?;
    let r = online(client, out, account, cmd, password, config).await;
    client.disconnect_all().await;
    r
}

async fn online(
    client: &Client,
    out: &Output,
    account: &str,
    cmd: MucCmd,
    password: Option<String>,
    config: Option<RoomConfig>,
) -> Result<()> {
    match cmd {
        MucCmd::Join { room, nick, .. } => {
            let j = client
                .join_room(account, &room, nick.as_deref(), password.as_deref())
                .await?;
            if out.json {
                return out.line(&j);
            }
            println!(
                "Joined {} as {} ({}, {}), {} people here.",
                j.room,
                j.nick,
                j.role.as_str(),
                j.affiliation.as_str(),
                j.occupants
            );
        }
        MucCmd::Create { room, nick, .. } => {
            let config = config.unwrap_or_default();
            let j = client
                .create_room(account, &room, nick.as_deref(), config)
                .await?;
            if out.json {
                return out.line(&j);
            }
            println!("Created {} and joined as {}.", j.room, j.nick);
        }
        MucCmd::Configure { room, .. } => {
            in_room(client, account, &room).await?;
            client
                .configure_room(account, &room, &config.unwrap_or_default())
                .await?;
            eprintln!("Configured {room}.");
        }
        MucCmd::Leave { room } => {
            client.leave_room(account, &room).await?;
            eprintln!("Left {room}.");
        }
        MucCmd::Forget { room } => {
            client.forget_room(account, &room).await?;
            eprintln!("Forgot {room}.");
        }
        MucCmd::Destroy { room, reason } => {
            in_room(client, account, &room).await?;
            client
                .destroy_room(account, &room, reason.as_deref())
                .await?;
            eprintln!("Destroyed {room}.");
        }
        MucCmd::Send {
            room,
            text,
            file,
            timeout,
        } => {
            let what = match (text, file) {
                (_, Some(path)) => super::What::File(path),
                (Some(text), None) => super::What::Text(text),
                (None, None) => anyhow::bail!("nothing to send: give a text or --file PATH"),
            };
            send(client, out, account, &room, what, timeout).await?
        }
        MucCmd::Pm { room, nick, text } => {
            in_room(client, account, &room).await?;
            let rec = client
                .send_private_message(account, &room, &nick, &text)
                .await?;
            wait_sent(client, account, rec.id, Duration::from_secs(60), false).await?;
        }
        MucCmd::Occupants { room } => {
            in_room(client, account, &room).await?;
            let occ = client.occupants(account, &room).await?;
            if out.json {
                return out.line(&occ);
            }
            for o in occ {
                let jid = o.jid.map(|j| format!(" <{j}>")).unwrap_or_default();
                println!(
                    "{}{jid} {} {}",
                    o.nick,
                    o.role.as_str(),
                    o.affiliation.as_str()
                );
            }
        }
        MucCmd::Subject { room, text } => {
            in_room(client, account, &room).await?;
            client.set_subject(account, &room, &text).await?;
        }
        MucCmd::Nick { room, nick } => {
            in_room(client, account, &room).await?;
            client.change_nick(account, &room, &nick).await?;
        }
        MucCmd::Invite {
            room,
            jid,
            reason,
            direct,
        } => {
            if !direct {
                in_room(client, account, &room).await?;
            }
            client
                .invite(account, &room, &jid, reason.as_deref(), direct)
                .await?;
            eprintln!("Invited {jid} to {room}.");
        }
        MucCmd::Decline { room, reason } => {
            client
                .decline_invitation(account, &room, reason.as_deref())
                .await?;
        }
        MucCmd::Kick { room, nick, reason } => {
            in_room(client, account, &room).await?;
            client
                .set_role(account, &room, &nick, Role::None, reason.as_deref())
                .await?;
        }
        MucCmd::Ban { room, jid, reason } => {
            in_room(client, account, &room).await?;
            client
                .set_affiliation(
                    account,
                    &room,
                    &jid,
                    Affiliation::Outcast,
                    reason.as_deref(),
                )
                .await?;
        }
        MucCmd::Role {
            room,
            nick,
            role,
            reason,
        } => {
            in_room(client, account, &room).await?;
            client
                .set_role(account, &room, &nick, role.into(), reason.as_deref())
                .await?;
        }
        MucCmd::Affiliation {
            room,
            jid,
            affiliation,
            reason,
        } => {
            in_room(client, account, &room).await?;
            client
                .set_affiliation(account, &room, &jid, affiliation.into(), reason.as_deref())
                .await?;
        }
        MucCmd::Retract { message } => {
            let m = client.retract_message(account, message).await?;
            wait_outbox(client, account, Duration::from_secs(60)).await?;
            eprintln!("Retracted message {} to {}.", m.id, m.peer);
        }
        MucCmd::Moderate { message, reason } => {
            client
                .moderate_message(account, message, reason.as_deref())
                .await?;
        }
        MucCmd::Services => {
            let s = client.muc_services(account).await?;
            if out.json {
                return out.line(&s);
            }
            for s in s {
                println!(
                    "{}{}",
                    s.jid,
                    s.name.map(|n| format!(" ({n})")).unwrap_or_default()
                );
            }
        }
        MucCmd::Rooms { service } => {
            let rooms = client.list_rooms(account, &service).await?;
            if out.json {
                return out.line(&rooms);
            }
            for r in rooms {
                println!(
                    "{}{}",
                    r.jid,
                    r.name.map(|n| format!(" ({n})")).unwrap_or_default()
                );
            }
        }
        MucCmd::List | MucCmd::Invitations => {}
    }
    Ok(())
}

async fn send(
    client: &Client,
    out: &Output,
    account: &str,
    room: &str,
    what: super::What,
    timeout: u64,
) -> Result<()> {
    in_room(client, account, room).await?;
    let room = starling_core::parse_room(room)?;
    let rec = match what {
        super::What::Text(text) => {
            client
                .send_room_message(account, room.as_str(), &text)
                .await?
        }
        super::What::File(path) => {
            let progress = tokio::spawn(super::show_upload_progress(client.events(), out.json));
            let r = client.send_room_file(account, room.as_str(), &path).await;
            progress.abort();
            if !out.json {
                eprintln!();
            }
            r?
        }
    };
    if out.json {
        out.line(&serde_json::json!({"queued": rec.id, "id": rec.stanza_id}))?;
    } else {
        eprintln!("queued message {}", rec.id);
    }
    wait_sent(client, account, rec.id, Duration::from_secs(timeout), true).await?;
    if !out.json {
        eprintln!("delivered to the room");
    }
    Ok(())
}

/// Waits until message `id` is sent (and, with `reflected`, came back from the room).
async fn wait_sent(
    client: &Client,
    account: &str,
    id: i64,
    deadline: Duration,
    reflected: bool,
) -> Result<()> {
    let mut events = client.events();
    let goal = if reflected {
        MessageState::Delivered
    } else {
        MessageState::Sent
    };
    let done = |m: &starling_core::store::MessageRecord| -> Result<bool> {
        match m.state {
            MessageState::Failed => Err(anyhow!(
                "the room refused the message: {}",
                m.error.clone().unwrap_or_default()
            )),
            s => Ok(s >= goal && s != MessageState::Received),
        }
    };
    let acc = client.store().account(account)?.id;
    let wait = async {
        loop {
            if let Some(m) = client.store().message(acc, id)?
                && done(&m)?
            {
                return Ok::<_, anyhow::Error>(());
            }
            match events.recv().await {
                Ok(Event::Connection {
                    state: ConnectionState::Failed { error, .. },
                    ..
                }) => bail!(error),
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => bail!("event stream ended: {e}"),
            }
        }
    };
    tokio::time::timeout(deadline, wait).await.map_err(|_| {
        anyhow!(
            "not confirmed in time; the message stays queued and is sent on the next connection"
        )
    })?
}

/// Waits until the outbox is empty (a retraction went out).
async fn wait_outbox(client: &Client, account: &str, deadline: Duration) -> Result<()> {
    let mut events = client.events();
    let acc = client.store().account(account)?.id;
    let wait = async {
        while !client.store().outbox(acc)?.is_empty() {
            match events.recv().await {
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => bail!("event stream ended: {e}"),
            }
        }
        Ok::<_, anyhow::Error>(())
    };
    tokio::time::timeout(deadline, wait)
        .await
        .map_err(|_| anyhow!("not sent in time; it is sent on the next connection"))?
}

pub async fn bookmarks(
    client: &Client,
    out: &Output,
    account: &str,
    cmd: BookmarksCmd,
) -> Result<()> {
    match cmd {
        BookmarksCmd::List => {
            let mut events = client.events();
            connect_online(client, account, Duration::from_secs(60)).await?;
            // Wait for this session's bookmark sync so the list is the server's.
            let wait = async {
                loop {
                    match events.recv().await {
                        Ok(Event::Bookmarks { account: a }) if a == account => return Ok(()),
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(e) => return Err(anyhow!("event stream ended: {e}")),
                    }
                }
            };
            let r = tokio::time::timeout(Duration::from_secs(60), wait)
                .await
                .context("the server did not send the bookmarks in time");
            client.disconnect_all().await;
            r??;
            let rooms: Vec<_> = client
                .rooms(account)?
                .into_iter()
                .filter(|r| r.bookmarked)
                .collect();
            if out.json {
                return out.line(&rooms);
            }
            for r in rooms {
                let auto = if r.autojoin { " [autojoin]" } else { "" };
                let name = r.name.map(|n| format!(" ({n})")).unwrap_or_default();
                println!("{}{name} as {}{auto}", r.jid, r.nick);
            }
            Ok(())
        }
    }
}
