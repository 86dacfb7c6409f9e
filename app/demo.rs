//! `starling demo`: a local Prosody with demo accounts and a bot that answers, so a new user
//! sees Starling work with one command. By default it opens the desktop window logged in as
//! alice; `--cli` gives a small chat prompt in the terminal, `--check` a one-shot self-test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use starling_core::connection::TlsMode;
use starling_core::secrets::Password;
use starling_core::{
    AccountOptions, Audience, Client, ConnectionState, Event, MessageState, PostDraft,
    ProfileUpdate,
};
use tokio::io::AsyncBufReadExt;

use crate::testbed::{Prosody, ProsodyOptions};

const USER: &str = "alice";
const BOT: &str = "bob";
const ONLINE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Where the demo keeps its server and profiles (default: the data dir's `demo/`).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Send one message to the bot, print its answer and exit (a self-check).
    #[arg(long)]
    pub check: bool,
    /// Chat in the terminal instead of opening the desktop window.
    #[arg(long)]
    pub cli: bool,
    /// Render the window to this PNG once the demo conversations are shown, then exit.
    #[arg(long, value_name = "PNG")]
    pub screenshot: Option<PathBuf>,
}

impl DemoArgs {
    /// Whether this run opens the desktop window.
    pub fn wants_window(&self) -> bool {
        !self.check && !self.cli
    }
}

/// A running demo: the server, alice's client (the user) and the bot.
pub struct DemoSession {
    pub base: PathBuf,
    pub server: Prosody,
    pub user: Client,
    pub user_jid: String,
    pub bot_jid: String,
    bot: Client,
    bot_task: tokio::task::JoinHandle<Result<()>>,
}

impl DemoSession {
    /// Goes offline and stops the server.
    pub async fn stop(self) -> Result<()> {
        self.user.disconnect_all().await;
        self.bot.disconnect_all().await;
        self.bot_task.abort();
        let server = self.server;
        tokio::task::spawn_blocking(move || server.stop())
            .await
            .context("server stop task")??;
        Ok(())
    }
}

/// Friends who greet alice the first time the demo runs, so the window has a few
/// conversations to show.
const FRIENDS: &[(&str, &str, &[&str])] = &[
    (
        "carol",
        "Carol",
        &[
            "Hi Alice! Are we still on for the climbing trip on Saturday?",
            "I found the guide book: https://example.org/climbing-guide",
        ],
    ),
    (
        "dave",
        "Dave",
        &["The photos from the concert are up. Tell me which ones you like!"],
    ),
];

/// Starts the demo server and clients (for the desktop window).
pub async fn start(args: &DemoArgs, profile: Option<PathBuf>) -> Result<DemoSession> {
    let base = demo_dir(args, profile)?;
    let server = start_server(&base).await?;
    match start_clients(&base, server).await {
        Ok(s) => Ok(s),
        Err((e, server)) => {
            if let Err(stop) = tokio::task::spawn_blocking(move || server.stop()).await {
                tracing::warn!(error = %stop, "demo server stop task");
            }
            Err(e)
        }
    }
}

async fn start_clients(
    base: &Path,
    server: Prosody,
) -> Result<DemoSession, (anyhow::Error, Prosody)> {
    let r = async {
        let passwords = demo_passwords(base, &server)?;
        let user_jid = format!("{USER}@{}", server.domain());
        let bot_jid = format!("{BOT}@{}", server.domain());
        let user = demo_client(&base.join(USER), &server, &user_jid, &passwords).await?;
        let bot = demo_client(&base.join("bot"), &server, &bot_jid, &passwords).await?;
        let friends: Vec<String> = std::iter::once(bot_jid.clone())
            .chain(
                FRIENDS
                    .iter()
                    .map(|f| format!("{}@{}", f.0, server.domain())),
            )
            .collect();
        let bot_task = tokio::spawn(run_bot(bot.clone(), bot_jid.clone()));
        let approver = tokio::spawn(approve_friends(user.clone(), user_jid.clone(), friends));
        let bot_task = tokio::spawn(async move {
            let r = bot_task.await;
            approver.abort();
            r?
        });
        crate::cli::connect_online(&user, &user_jid, ONLINE_TIMEOUT).await?;
        user.omemo_publish(&user_jid).await?;
        ensure_contact(&user, &user_jid, &bot_jid, "Bob the bot").await?;
        greet(base, &server, &user, &user_jid, &passwords).await?;
        if user.history(&user_jid, &bot_jid, 1)?.is_empty() {
            crate::cli::connect_online(&bot, &bot_jid, ONLINE_TIMEOUT).await?;
            bot.send_message(&bot_jid, &user_jid, &answer("welcome"))
                .await?;
            user.send_message(&user_jid, &bot_jid, "hello").await?;
        }
        Ok::<_, anyhow::Error>((user, user_jid, bot_jid, bot, bot_task))
    }
    .await;
    match r {
        Ok((user, user_jid, bot_jid, bot, bot_task)) => Ok(DemoSession {
            base: base.to_path_buf(),
            server,
            user,
            user_jid,
            bot_jid,
            bot,
            bot_task,
        }),
        Err(e) => Err((e, server)),
    }
}

async fn ensure_contact(user: &Client, user_jid: &str, jid: &str, name: &str) -> Result<()> {
    if user.contacts(user_jid)?.iter().all(|c| c.jid != jid) {
        user.add_contact(user_jid, jid, Some(name.into()), vec!["Demo".into()])
            .await?;
    }
    Ok(())
}

/// The first time: each friend sends alice a message or two.
async fn greet(
    base: &Path,
    server: &Prosody,
    user: &Client,
    user_jid: &str,
    passwords: &BTreeMap<String, String>,
) -> Result<()> {
    for (local, name, lines) in FRIENDS {
        let jid = format!("{local}@{}", server.domain());
        ensure_contact(user, user_jid, &jid, name).await?;
        if !user.history(user_jid, &jid, 1)?.is_empty() {
            continue;
        }
        let friend = demo_client(&base.join(local), server, &jid, passwords).await?;
        crate::cli::connect_online(&friend, &jid, ONLINE_TIMEOUT).await?;
        // Share presence both ways, as friends do.
        friend.approve_subscription(&jid, user_jid).await?;
        let mut events = friend.events();
        for line in *lines {
            friend.send_message(&jid, user_jid, line).await?;
        }
        // Go offline only once the server acknowledged them (the outbox is empty).
        let account_id = friend.store().account(&jid)?.id;
        let acked = async {
            while !friend.store().outbox(account_id)?.is_empty() {
                if let Err(tokio::sync::broadcast::error::RecvError::Closed) = events.recv().await {
                    break;
                }
            }
            Ok::<_, anyhow::Error>(())
        };
        tokio::time::timeout(ONLINE_TIMEOUT, acked)
            .await
            .map_err(|_| anyhow!("the demo server did not acknowledge {local}'s messages"))??;
        friend.disconnect_all().await;
    }
    Ok(())
}

fn demo_dir(args: &DemoArgs, profile: Option<PathBuf>) -> Result<PathBuf> {
    let base = match (&args.dir, profile) {
        (Some(d), _) => d.clone(),
        (None, Some(p)) => p.join("demo"),
        (None, None) => starling_core::default_profile_dir()
            .ok_or_else(|| anyhow!("cannot find a home directory; pass --dir"))?
            .join("demo"),
    };
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    Ok(std::fs::canonicalize(&base)?)
}

async fn start_server(base: &Path) -> Result<Prosody> {
    eprintln!(
        "Starting a local XMPP server (Prosody) in {} …",
        base.display()
    );
    let server_dir = base.join("server");
    tokio::task::spawn_blocking(move || Prosody::start(&server_dir, ProsodyOptions::default()))
        .await
        .context("server start task")?
}

/// The terminal demo (`--cli`) and the self-check (`--check`).
pub async fn run(args: &DemoArgs, profile: Option<PathBuf>) -> Result<()> {
    let session = start(args, profile).await?;
    let base = session.base.clone();
    let (user, user_jid, bot_jid) = (&session.user, &session.user_jid, &session.bot_jid);
    let r = if args.check {
        async {
            check(user, user_jid, bot_jid).await?;
            check_room(user, user_jid, &session.bot, bot_jid).await?;
            check_feed(user, user_jid, bot_jid).await?;
            check_omemo(user, user_jid, bot_jid).await?;
            check_photo(user, user_jid, bot_jid, &base).await?;
            check_otr(user, user_jid, bot_jid).await
        }
        .await
    } else {
        chat_prompt(user, user_jid, bot_jid, &base).await
    };
    session.stop().await?;
    r
}

/// Reads (or creates and registers) the demo accounts' passwords, kept in a 0600 file.
/// Accounts missing from the file (a demo dir from an older version) are registered too.
fn demo_passwords(base: &Path, server: &Prosody) -> Result<BTreeMap<String, String>> {
    let path = base.join("server").join("demo-accounts.json");
    let mut map = match std::fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice::<BTreeMap<String, String>>(&bytes).with_context(|| {
                format!(
                    "{} is damaged; delete the demo dir to start over",
                    path.display()
                )
            })?
        }
        Err(_) => BTreeMap::new(),
    };
    let mut changed = false;
    for user in [USER, BOT].into_iter().chain(FRIENDS.iter().map(|f| f.0)) {
        if map.contains_key(user) {
            continue;
        }
        let pw = uuid::Uuid::new_v4().simple().to_string();
        server
            .register(user, &pw)
            .with_context(|| format!("registering demo account {user}"))?;
        map.insert(user.to_owned(), pw);
        changed = true;
    }
    if changed {
        let json = serde_json::to_vec_pretty(&map)?;
        write_private(&path, &json)?;
    }
    Ok(map)
}

fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(data)?;
    Ok(())
}

/// Opens a demo profile and makes sure it has its account pointing at this server run.
async fn demo_client(
    dir: &Path,
    server: &Prosody,
    jid: &str,
    passwords: &BTreeMap<String, String>,
) -> Result<Client> {
    let client = Client::open_private(dir)?;
    let local = jid.split('@').next().unwrap_or_default();
    let pw = passwords.get(local).ok_or_else(|| {
        anyhow!("no demo password for {local}; delete the demo dir to start over")
    })?;
    let opts = AccountOptions {
        server: Some(("127.0.0.1".into(), server.c2s_port())),
        tls: TlsMode::StartTls,
        ca_file: Some(server.ca_file().to_path_buf()),
        first_sync_days: Some(30),
    };
    if client.accounts()?.iter().any(|a| a.jid == jid) {
        // Ports change between runs: point the account at this run's server.
        client.update_server(jid, &opts)?;
    } else {
        client
            .add_account(jid, Password::new(pw.clone()), opts)
            .await?;
    }
    Ok(client)
}

/// Alice approves the demo friends' subscription requests (so the demo shows presence
/// both ways), both those waiting from earlier runs and new ones.
async fn approve_friends(user: Client, jid: String, friends: Vec<String>) -> Result<()> {
    let mut events = user.events();
    crate::cli::connect_online(&user, &jid, ONLINE_TIMEOUT).await?;
    for from in user.subscription_requests(&jid)? {
        if friends.contains(&from) {
            user.approve_subscription(&jid, &from).await?;
        }
    }
    loop {
        match events.recv().await {
            Ok(Event::SubscriptionRequest { account, from })
                if account == jid && friends.contains(&from) =>
            {
                user.approve_subscription(&jid, &from).await?;
            }
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(_) => return Ok(()),
        }
    }
}

/// The bot: approves subscription requests, accepts room invitations, and answers every
/// message (in rooms too, live ones only, so a catch-up does not make it talk to itself).
async fn run_bot(bot: Client, jid: String) -> Result<()> {
    let mut events = bot.events();
    crate::cli::connect_online(&bot, &jid, ONLINE_TIMEOUT).await?;
    // The bot speaks OMEMO: once someone writes to it encrypted, it answers encrypted.
    if let Err(e) = bot.omemo_publish(&jid).await {
        tracing::warn!(error = %e, "the bot could not publish its OMEMO keys");
    }
    if let Err(e) = bot_blog(&bot, &jid).await {
        tracing::warn!(error = %e, "the bot could not set up its blog");
    }
    loop {
        match events.recv().await {
            Ok(Event::SubscriptionRequest { from, .. }) => {
                bot.approve_subscription(&jid, &from).await?;
                // Friends share presence both ways; that is also what makes the server
                // push the bot's posts to them (XEP-0163).
                if bot.contacts(&jid)?.iter().all(|c| c.jid != from) {
                    bot.add_contact(&jid, &from, None, Vec::new()).await?;
                }
            }
            Ok(Event::Comment { comment, .. })
                if comment.author.as_deref() != Some(jid.as_str()) =>
            {
                bot_answer_comment(&bot, &jid, &comment).await;
            }
            Ok(Event::Invitation { invitation, .. }) => {
                if let Err(e) = bot
                    .join_room(&jid, &invitation.room, Some("Bob"), None)
                    .await
                {
                    tracing::warn!(room = %invitation.room, error = %e, "the bot cannot join");
                }
            }
            Ok(Event::Message { message, live, .. })
                if !message.outgoing && message.state == MessageState::Received =>
            {
                // One conversation's trouble (say, a refused encrypted send) must not
                // silence the bot for everyone.
                if let Err(e) = bot_reply(&bot, &jid, &message, live).await {
                    tracing::warn!(peer = %message.peer, error = %e, "the bot could not answer");
                }
            }
            // The bot speaks OTR too (the core answers a contact's OTR request by itself);
            // when the contact ends it, the bot goes back to plain answers.
            Ok(Event::OtrStatus {
                peer,
                status: starling_core::crypto::otr::OtrStatus::Finished,
                ..
            }) => {
                if let Err(e) = bot.otr_end(&jid, &peer).await {
                    tracing::warn!(%peer, error = %e, "the bot could not end OTR");
                }
            }
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(_) => return Ok(()),
        }
    }
}

async fn bot_reply(
    bot: &Client,
    jid: &str,
    message: &starling_core::store::MessageRecord,
    live: bool,
) -> Result<()> {
    use starling_core::store::MessageKind;
    if message.kind == MessageKind::Chat && message.attachment.is_some() {
        bot.mark_read(jid, &message.peer).await?;
        return bot_file(bot, jid, message).await;
    }
    let reply = answer(&message.body);
    match message.kind {
        MessageKind::Chat => {
            bot.mark_read(jid, &message.peer).await?;
            match bot.send_message(jid, &message.peer, &reply).await {
                // An OTR conversation whose session is gone (one side restarted): a bot has
                // nothing private to protect, so it ends OTR and answers plainly.
                Err(starling_core::Error::NotEncryptable { .. })
                    if bot.conversation_encryption(jid, &message.peer)?
                        == Some(starling_core::store::Encryption::Otr) =>
                {
                    bot.otr_end(jid, &message.peer).await?;
                    bot.send_message(jid, &message.peer, &reply).await?;
                }
                r => {
                    r?;
                }
            }
        }
        MessageKind::GroupChat if live => {
            let nick = message.sender.split_once('/').map(|(_, n)| n).unwrap_or("");
            bot.send_room_message(jid, &message.peer, &format!("{nick}: {reply}"))
                .await?;
        }
        MessageKind::Private if live => {
            if let Some((room, nick)) = message.peer.split_once('/') {
                bot.send_private_message(jid, room, nick, &reply).await?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Someone sent the bot a file: it fetches it (decrypting it in an encrypted chat), says
/// what it got, and sends a picture back as a thumbnail (encrypted when the chat is).
async fn bot_file(
    bot: &Client,
    jid: &str,
    message: &starling_core::store::MessageRecord,
) -> Result<()> {
    let fetched = bot
        .fetch_attachment(jid, message.id, BOT_FILE_LIMIT)
        .await?;
    let file = fetched
        .attachment
        .ok_or_else(|| anyhow!("the message has no file"))?;
    let local = file
        .local_path
        .as_deref()
        .ok_or_else(|| anyhow!("the file was not saved"))?;
    let size = std::fs::metadata(local)?.len();
    let name = &file.name;
    let thumbnail = match image::image_dimensions(local) {
        Ok(dims) => bot
            .attachment_thumbnail(jid, message.id)
            .await?
            .map(|png| (dims, png)),
        Err(_) => None,
    };
    let Some(((w, h), png)) = thumbnail else {
        let text = format!(
            "Thanks for {name} ({}); it arrived intact.",
            starling_core::human_size(size)
        );
        bot.send_message(jid, &message.peer, &text).await?;
        return Ok(());
    };
    let text = format!(
        "Nice picture! {w}×{h} pixels, {}. Here it is back, small:",
        starling_core::human_size(size)
    );
    bot.send_message(jid, &message.peer, &text).await?;
    let stem = Path::new(name)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "picture".into());
    let dir = bot.files_dir().join("sent");
    std::fs::create_dir_all(&dir)?;
    let small = dir.join(format!("{}-small {stem}.png", message.id));
    std::fs::write(&small, png)?;
    bot.send_file(jid, &message.peer, &small).await?;
    Ok(())
}

/// The largest file the bot fetches.
const BOT_FILE_LIMIT: u64 = 20_000_000;

/// The bot's posts (and avatar) the feed shows a new user, published once.
async fn bot_blog(bot: &Client, jid: &str) -> Result<()> {
    if bot.profile(jid, jid)?.and_then(|p| p.avatar).is_none() {
        let file = std::env::temp_dir().join(format!("starling-bot-{}.png", std::process::id()));
        std::fs::write(&file, BOT_AVATAR)?;
        let r = bot
            .set_profile(
                jid,
                ProfileUpdate {
                    nick: Some("Bob the bot".into()),
                    full_name: Some("Bob".into()),
                    bio: Some("The Starling demo bot. I answer messages and comments.".into()),
                    avatar: Some(file.clone()),
                    ..ProfileUpdate::default()
                },
            )
            .await;
        std::fs::remove_file(&file)?;
        r?;
    }
    if !bot.fetch_posts(jid, jid, 20).await?.is_empty() {
        return Ok(());
    }
    for (title, text, tags, audience) in BOT_POSTS {
        let mut draft = PostDraft::new(*text, audience.parse().map_err(|e: String| anyhow!(e))?);
        draft.title = title.map(str::to_owned);
        draft.tags = tags.iter().map(|t| t.to_string()).collect();
        bot.publish_post(jid, draft).await?;
    }
    Ok(())
}

/// The bot thanks whoever comments on its posts.
async fn bot_answer_comment(
    bot: &Client,
    jid: &str,
    comment: &starling_core::store::CommentRecord,
) {
    let Ok(Some(post)) = bot.post(jid, comment.post_id) else {
        return;
    };
    if post.author != jid {
        return;
    }
    // Comments seen again in a fetch were answered before.
    let answered = bot.comments(jid, post.id).is_ok_and(|cs| {
        cs.iter()
            .any(|c| c.author.as_deref() == Some(jid) && c.published >= comment.published)
    });
    if answered {
        return;
    }
    let who = comment.author.as_deref().unwrap_or("friend");
    let text = format!(
        "Thanks for your comment, {who}! ({})",
        answer(&comment.text)
    );
    if let Err(e) = bot.comment(jid, jid, &post.item_id, &text).await {
        tracing::warn!(error = %e, "the bot cannot answer a comment");
    }
}

/// The bot's avatar: Starling's icon.
const BOT_AVATAR: &[u8] = include_bytes!("../assets/icons/hicolor/128x128/apps/starling.png");

/// The bot's first posts: (title, text, tags, audience).
const BOT_POSTS: &[(Option<&str>, &str, &[&str], &str)] = &[
    (
        Some("Welcome to Starling"),
        "This is my blog. Posts live on my own XMPP account and reach my contacts as they \
         are published. Comment below and I will answer!",
        &["welcome", "starling"],
        "public",
    ),
    (
        None,
        "Only my contacts can read this one: Starling posts to everyone, to contacts, or to a \
         circle (a roster group), and the server enforces it.",
        &["privacy"],
        "contacts",
    ),
];

fn answer(text: &str) -> String {
    match text.trim().to_lowercase().as_str() {
        "help" | "?" => {
            "I'm Bob, the Starling demo bot. Try: hello, time, send me a picture, or anything \
             else."
                .into()
        }
        "hello" | "hi" | "hey" => {
            "Hello! Starling is working: this came through a real XMPP server.".into()
        }
        "time" => format!("It's {} here.", chrono::Utc::now().format("%H:%M:%S UTC")),
        "ping" => "pong".into(),
        "welcome" => "Hi Alice, I'm Bob, the demo bot. Write me anything and I answer; \
                      watch the ticks: ✓ sent, ✓✓ delivered, blue when I read it."
            .into(),
        _ => format!("You said: {}", text.trim()),
    }
}

async fn check(user: &Client, user_jid: &str, bot_jid: &str) -> Result<()> {
    let mut events = user.events();
    let expected = answer("ping");
    user.send_message(user_jid, bot_jid, "ping").await?;
    let wait = async {
        loop {
            match events.recv().await {
                // The bot's answer to our ping (not its welcome, which may arrive late).
                Ok(Event::Message { message, .. })
                    if !message.outgoing && message.peer == bot_jid && message.body == expected =>
                {
                    return Ok(message.body);
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => return Err(anyhow!("event stream ended: {e}")),
            }
        }
    };
    let body = tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .map_err(|_| anyhow!("the demo bot did not answer within 30 s"))??;
    println!("bot answered: {body}");
    Ok(())
}

/// Sends "ping" to the bot in a conversation whose encryption is on (`how` names it for
/// errors) and returns the bot's answer, decrypted and encrypted itself.
async fn encrypted_ping(
    user: &Client,
    user_jid: &str,
    bot_jid: &str,
    how: &str,
) -> Result<starling_core::store::MessageRecord> {
    let mut events = user.events();
    let sent = user.send_message(user_jid, bot_jid, "ping").await?;
    anyhow::ensure!(
        sent.encryption.is_some(),
        "the ping was not sent with {how}"
    );
    let expected = answer("ping");
    let reply = bot_message_after(&mut events, bot_jid, sent.id, |m| {
        m.body == expected || m.undecryptable.is_some()
    })
    .await
    .map_err(|e| anyhow!("the demo bot did not answer the {how} ping: {e}"))?;
    if let Some(why) = &reply.undecryptable {
        bail!("the bot's {how} answer could not be read: {why}");
    }
    Ok(reply)
}

/// Encryption with the bot: the user turns OMEMO on, the bot decrypts and answers
/// encrypted, and the user sees the bot's device (trusted, not yet verified).
async fn check_omemo(user: &Client, user_jid: &str, bot_jid: &str) -> Result<()> {
    user.set_conversation_encryption(user_jid, bot_jid, true)?;
    let reply = encrypted_ping(user, user_jid, bot_jid, "OMEMO").await?;
    anyhow::ensure!(
        matches!(
            reply.encryption,
            Some(
                starling_core::store::Encryption::Omemo | starling_core::store::Encryption::Omemo2
            )
        ),
        "the bot answered without OMEMO"
    );
    let devices = user.omemo_devices(user_jid, bot_jid).await?;
    let bot_device = devices
        .iter()
        .find(|d| d.active && d.fingerprint.is_some())
        .ok_or_else(|| anyhow!("the bot has no OMEMO device with a known key"))?;
    println!(
        "bot answered encrypted ({}); its key {} is {:?}",
        bot_device.ns,
        bot_device.fingerprint.as_deref().unwrap_or_default(),
        bot_device.trust
    );
    Ok(())
}

/// The bot's first message after our message `after` that `wanted` accepts (30 s at most).
async fn bot_message_after(
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    bot_jid: &str,
    after: i64,
    wanted: impl Fn(&starling_core::store::MessageRecord) -> bool,
) -> Result<starling_core::store::MessageRecord> {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(Event::Message { message, .. })
                    if !message.outgoing
                        && message.peer == bot_jid
                        && message.id > after
                        && wanted(&message) =>
                {
                    return Ok(message);
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => return Err(anyhow!("event stream ended: {e}")),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .map_err(|_| anyhow!("nothing within 30 s"))?
}

/// A photo to the bot in the encrypted chat: it goes up encrypted (XEP-0454), the bot
/// fetches and decrypts it, and sends back a thumbnail, encrypted too, which the user's
/// client fetches and shows.
async fn check_photo(user: &Client, user_jid: &str, bot_jid: &str, base: &Path) -> Result<()> {
    let photo = base.join("demo photo.png");
    std::fs::write(&photo, BOT_AVATAR)?;
    let mut events = user.events();
    let sent = user.send_file(user_jid, bot_jid, &photo).await?;
    anyhow::ensure!(
        sent.encryption.is_some() && sent.body.starts_with("aesgcm://"),
        "the photo did not go encrypted"
    );
    let reply = bot_message_after(&mut events, bot_jid, sent.id, |m| m.attachment.is_some())
        .await
        .map_err(|e| anyhow!("the demo bot did not send the photo back: {e}"))?;
    anyhow::ensure!(
        reply.encryption.is_some(),
        "the bot sent the photo back unencrypted"
    );
    let got = user
        .fetch_attachment(user_jid, reply.id, BOT_FILE_LIMIT)
        .await?;
    let local = got
        .attachment
        .and_then(|a| a.local_path)
        .ok_or_else(|| anyhow!("the bot's picture was not saved"))?;
    let (w, h) = image::image_dimensions(&local)?;
    println!("the bot got the photo and sent back a {w}×{h} thumbnail, both encrypted");
    Ok(())
}

/// OTR with the bot: the user starts it, the bot's client answers the key exchange by
/// itself and answers privately; then the user ends it.
async fn check_otr(user: &Client, user_jid: &str, bot_jid: &str) -> Result<()> {
    use starling_core::crypto::otr::OtrStatus;
    use starling_core::store::Encryption;
    let mut events = user.events();
    user.otr_start(user_jid, bot_jid).await?;
    let up = async {
        loop {
            match events.recv().await {
                Ok(Event::OtrStatus {
                    peer,
                    status: OtrStatus::Encrypted,
                    fingerprint,
                    ..
                }) if peer == bot_jid => return Ok(fingerprint.unwrap_or_default()),
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => return Err(anyhow!("event stream ended: {e}")),
            }
        }
    };
    let fingerprint = tokio::time::timeout(Duration::from_secs(30), up)
        .await
        .map_err(|_| anyhow!("the demo bot did not start OTR within 30 s"))??;
    let reply = encrypted_ping(user, user_jid, bot_jid, "OTR").await?;
    anyhow::ensure!(
        reply.encryption == Some(Encryption::Otr),
        "the bot answered outside OTR"
    );
    user.otr_end(user_jid, bot_jid).await?;
    println!("bot answered over OTR; its OTR key {fingerprint} (not verified)");
    Ok(())
}

/// The social path a new user takes: the bot's posts are in the feed; post to contacts and
/// to a circle; comment on the bot's post and get its answer; set an avatar.
async fn check_feed(user: &Client, user_jid: &str, bot_jid: &str) -> Result<()> {
    let mut events = user.events();
    user.refresh_feed(user_jid).await?;
    let bot_posts = user.feed_page(user_jid, Some(bot_jid), None, 20)?;
    let Some(welcome) = bot_posts.iter().find(|p| p.audience == Audience::Public) else {
        bail!("the bot's posts are not in the feed");
    };
    let contacts = user
        .publish_post(
            user_jid,
            PostDraft::new("Hello, contacts!", Audience::Contacts),
        )
        .await?;
    let circle = user
        .publish_post(
            user_jid,
            PostDraft::new("Hello, Demo circle!", Audience::Circle("Demo".into())),
        )
        .await?;
    user.comment(user_jid, bot_jid, &welcome.item_id, "ping")
        .await?;
    let expected = answer("ping");
    let wait = async {
        loop {
            match events.recv().await {
                Ok(Event::Comment { comment, .. })
                    if comment.author.as_deref() == Some(bot_jid)
                        && comment.post_id == welcome.id
                        && comment.text.contains(&expected) =>
                {
                    return Ok(comment.text);
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => return Err(anyhow!("event stream ended: {e}")),
            }
        }
    };
    let reply = tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .map_err(|_| anyhow!("the bot did not answer the comment within 30 s"))??;
    let file = std::env::temp_dir().join(format!("starling-check-{}.png", std::process::id()));
    std::fs::write(&file, BOT_AVATAR)?;
    let profile = user
        .set_profile(
            user_jid,
            ProfileUpdate {
                avatar: Some(file.clone()),
                ..ProfileUpdate::default()
            },
        )
        .await;
    std::fs::remove_file(&file)?;
    let profile = profile?;
    println!(
        "feed: {} posts from the bot; posted to {} and {}; the bot answered your comment: \
         {reply}; avatar set ({})",
        bot_posts.len(),
        contacts.audience,
        circle.audience,
        profile.avatar.unwrap_or_default()
    );
    Ok(())
}

/// The group chat path a new user takes: create a room, invite the bot, chat, leave and
/// come back without a gap (what was said meanwhile is caught up from the room archive).
async fn check_room(user: &Client, user_jid: &str, bot: &Client, bot_jid: &str) -> Result<()> {
    use starling_core::store::MessageKind;
    let domain = user_jid
        .split_once('@')
        .map(|(_, d)| d)
        .unwrap_or("localhost");
    let room = format!(
        "check-{}@conference.{domain}",
        &starling_core::proto::new_id()[..8]
    );
    let mut events = user.events();
    let config = starling_core::RoomConfig {
        name: Some("Demo check".into()),
        persistent: Some(true),
        ..starling_core::RoomConfig::default()
    };
    user.create_room(user_jid, &room, Some("alice"), config)
        .await?;
    user.invite(user_jid, &room, bot_jid, Some("self-check"), false)
        .await?;
    wait_event(
        &mut events,
        "the bot in the room",
        |e| matches!(e, Event::Occupant { occupant, present: true, .. } if occupant.nick == "Bob"),
    )
    .await?;
    user.send_room_message(user_jid, &room, "ping").await?;
    let reply = format!("alice: {}", answer("ping"));
    wait_event(&mut events, "the bot's answer in the room", |e| {
        matches!(e, Event::Message { message, .. }
            if message.kind == MessageKind::GroupChat && !message.outgoing && message.body == reply)
    })
    .await?;
    println!("bot answered in {room}");

    // Away: the bot says something (its own client, so nothing answers it), then we return.
    user.leave_room(user_jid, &room).await?;
    let mut bot_events = bot.events();
    let away = bot
        .send_room_message(bot_jid, &room, "said while you were away")
        .await?;
    wait_event(&mut bot_events, "the bot's message in the room", |e| {
        matches!(e, Event::MessageUpdated { message, .. }
            if message.id == away.id && message.state == MessageState::Delivered)
    })
    .await?;
    let mut events = user.events();
    user.join_room(user_jid, &room, Some("alice"), None).await?;
    wait_event(
        &mut events,
        "the catch-up after rejoining",
        |e| matches!(e, Event::RoomSync { room: r, done: true, .. } if *r == room),
    )
    .await?;
    let history = user.history(user_jid, &room, 1000)?;
    let count = |body: &str| history.iter().filter(|m| m.body == body).count();
    if count("ping") != 1 || count(&reply) != 1 || count("said while you were away") != 1 {
        bail!("demo room check: the room history has gaps or doubles after rejoining: {history:?}");
    }
    println!("rejoined {room} without gaps");
    user.forget_room(user_jid, &room).await?;
    Ok(())
}

/// Waits (30 s at most) for an event.
async fn wait_event(
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    what: &str,
    f: impl Fn(&Event) -> bool,
) -> Result<()> {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(ev) if f(&ev) => return Ok(()),
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => return Err(anyhow!("event stream ended: {e}")),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .map_err(|_| anyhow!("demo check: no {what} within 30 s"))?
}

async fn chat_prompt(user: &Client, user_jid: &str, bot_jid: &str, base: &Path) -> Result<()> {
    println!();
    println!("Starling demo — you are {user_jid}, chatting with {bot_jid} (a bot).");
    println!(
        "Type a message and press Enter. Commands: /file PATH (send a file), /history, /quit \
         (or Ctrl-D)."
    );
    println!(
        "In another terminal, the same account works with the CLI:\n  starling --profile {} history {bot_jid}",
        base.join(USER).display()
    );
    println!();
    let mut events = user.events();
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Some(line) = line? else { break };
                let line = line.trim();
                match line {
                    "" => {}
                    "/quit" | "/exit" => break,
                    "/history" => {
                        for m in user.history(user_jid, bot_jid, 20)? {
                            println!("{}", crate::cli::human_message(&m));
                        }
                    }
                    _ if line.starts_with("/file ") => {
                        let path = Path::new(line.trim_start_matches("/file ").trim());
                        match user.send_file(user_jid, bot_jid, path).await {
                            Ok(m) => println!("  (sent {})", m.attachment.map(|a| a.name).unwrap_or_default()),
                            Err(e) => println!("  (not sent: {e})"),
                        }
                    }
                    text => {
                        user.send_message(user_jid, bot_jid, text).await?;
                    }
                }
            }
            ev = events.recv() => match ev {
                Ok(Event::Message { message, .. }) if !message.outgoing => {
                    println!("{}: {}", message.peer, message.body);
                }
                Ok(Event::MessageUpdated { message, .. }) if message.outgoing => {
                    if message.state == MessageState::Displayed {
                        println!("  (read)");
                    }
                }
                Ok(Event::Connection { state, .. }) => match state {
                    ConnectionState::Reconnecting { .. } => println!("  (connection lost, reconnecting…)"),
                    ConnectionState::Online { resumed: true } => println!("  (back online)"),
                    _ => {}
                },
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => break,
            },
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    Ok(())
}
