//! `starling demo`: a local Prosody with two demo accounts and a bot that answers, so a new
//! user sees Starling work with one command. The desktop UI takes this over later; for now it
//! is a small chat prompt in the terminal.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use starling_core::connection::TlsMode;
use starling_core::secrets::Password;
use starling_core::{AccountOptions, Client, ConnectionState, Event, MessageState};
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
}

pub async fn run(args: &DemoArgs, profile: Option<PathBuf>) -> Result<()> {
    let base = match (&args.dir, profile) {
        (Some(d), _) => d.clone(),
        (None, Some(p)) => p.join("demo"),
        (None, None) => starling_core::default_profile_dir()
            .ok_or_else(|| anyhow!("cannot find a home directory; pass --dir"))?
            .join("demo"),
    };
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let base = std::fs::canonicalize(&base)?;

    eprintln!(
        "Starting a local XMPP server (Prosody) in {} …",
        base.display()
    );
    let server_dir = base.join("server");
    let server =
        tokio::task::spawn_blocking(move || Prosody::start(&server_dir, ProsodyOptions::default()))
            .await
            .context("server start task")??;
    let passwords = demo_passwords(&base, &server)?;

    let result = run_with_server(args, &base, &server, &passwords).await;
    tokio::task::spawn_blocking(move || server.stop())
        .await
        .context("server stop task")??;
    result
}

async fn run_with_server(
    args: &DemoArgs,
    base: &Path,
    server: &Prosody,
    passwords: &BTreeMap<String, String>,
) -> Result<()> {
    let user_jid = format!("{USER}@{}", server.domain());
    let bot_jid = format!("{BOT}@{}", server.domain());
    let user = demo_client(&base.join(USER), server, &user_jid, passwords).await?;
    let bot = demo_client(&base.join("bot"), server, &bot_jid, passwords).await?;

    let bot_task = tokio::spawn(run_bot(bot.clone(), bot_jid.clone()));
    crate::cli::connect_online(&user, &user_jid, ONLINE_TIMEOUT).await?;
    if user.contacts(&user_jid)?.iter().all(|c| c.jid != bot_jid) {
        user.add_contact(
            &user_jid,
            &bot_jid,
            Some("Bob the bot".into()),
            vec!["Demo".into()],
        )
        .await?;
    }

    let r = if args.check {
        check(&user, &user_jid, &bot_jid).await
    } else {
        chat_prompt(&user, &user_jid, &bot_jid, base).await
    };
    user.disconnect_all().await;
    bot.disconnect_all().await;
    bot_task.abort();
    r
}

/// Reads (or creates and registers) the demo accounts' passwords, kept in a 0600 file.
fn demo_passwords(base: &Path, server: &Prosody) -> Result<BTreeMap<String, String>> {
    let path = base.join("server").join("demo-accounts.json");
    if let Ok(bytes) = std::fs::read(&path)
        && let Ok(map) = serde_json::from_slice::<BTreeMap<String, String>>(&bytes)
    {
        return Ok(map);
    }
    let mut map = BTreeMap::new();
    for user in [USER, BOT] {
        let pw = uuid::Uuid::new_v4().simple().to_string();
        server
            .register(user, &pw)
            .with_context(|| format!("registering demo account {user}"))?;
        map.insert(user.to_owned(), pw);
    }
    let json = serde_json::to_vec_pretty(&map)?;
    write_private(&path, &json)?;
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

/// The bot: approves subscription requests and answers every message.
async fn run_bot(bot: Client, jid: String) -> Result<()> {
    let mut events = bot.events();
    crate::cli::connect_online(&bot, &jid, ONLINE_TIMEOUT).await?;
    loop {
        match events.recv().await {
            Ok(Event::SubscriptionRequest { from, .. }) => {
                bot.approve_subscription(&jid, &from).await?;
            }
            Ok(Event::Message { message, .. })
                if !message.outgoing && message.state == MessageState::Received =>
            {
                let reply = answer(&message.body);
                bot.mark_read(&jid, &message.peer).await?;
                bot.send_message(&jid, &message.peer, &reply).await?;
            }
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(_) => return Ok(()),
        }
    }
}

fn answer(text: &str) -> String {
    match text.trim().to_lowercase().as_str() {
        "help" | "?" => {
            "I'm Bob, the Starling demo bot. Try: hello, time, or anything else.".into()
        }
        "hello" | "hi" | "hey" => {
            "Hello! Starling is working: this came through a real XMPP server.".into()
        }
        "time" => format!("It's {} here.", chrono::Utc::now().format("%H:%M:%S UTC")),
        "ping" => "pong".into(),
        _ => format!("You said: {}", text.trim()),
    }
}

async fn check(user: &Client, user_jid: &str, bot_jid: &str) -> Result<()> {
    let mut events = user.events();
    user.send_message(user_jid, bot_jid, "ping").await?;
    let wait = async {
        loop {
            match events.recv().await {
                Ok(Event::Message { message, .. })
                    if !message.outgoing && message.peer == bot_jid =>
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

async fn chat_prompt(user: &Client, user_jid: &str, bot_jid: &str, base: &Path) -> Result<()> {
    println!();
    println!("Starling demo — you are {user_jid}, chatting with {bot_jid} (a bot).");
    println!("Type a message and press Enter. Commands: /history, /quit (or Ctrl-D).");
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
