//! The command-line face of Starling: scriptable, `--json` where it lists things, one-line
//! errors and a non-zero exit code on failure.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use starling_core::connection::TlsMode;
use starling_core::secrets::{PASSWORD_ENV, Password};
use starling_core::store::{MessageKind, MessageRecord};
use starling_core::{AccountOptions, Client, ConnectionState, Event, MessageState};

mod omemo;
mod otr;
mod rooms;
mod social;

#[derive(Debug, Parser)]
#[command(
    name = "starling",
    version,
    about = "Starling: a native XMPP social client"
)]
pub struct Cli {
    /// Profile directory (default: the XDG data dir, e.g. ~/.local/share/starling).
    #[arg(long, global = true, env = "STARLING_PROFILE")]
    pub profile: Option<PathBuf>,
    /// The account to act as (default: the only one in the profile).
    #[arg(long, short = 'a', global = true)]
    pub account: Option<String>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output on stderr (repeat for more).
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// An `xmpp:` address to open in the desktop window (what the desktop file passes).
    #[arg(value_name = "XMPP_URI")]
    pub uri: Option<String>,
    /// What to do; without a command, the desktop window opens.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Add, list or remove accounts.
    #[command(subcommand)]
    Account(AccountCmd),
    /// Contacts and subscription requests.
    #[command(subcommand)]
    Roster(RosterCmd),
    /// Send a message (it is stored first, then sent; waits for the server's ack).
    Send {
        jid: String,
        /// The message (not with --file).
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        text: Option<String>,
        /// Send a file instead: uploaded to your server first (encrypted in an encrypted
        /// conversation), then its link; progress on stderr.
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
        /// Correct the last message sent to JID instead (XEP-0308).
        #[arg(long)]
        correct: bool,
        /// Seconds to wait for the server's acknowledgement.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        /// End-to-end encrypt (`omemo`); the conversation stays encrypted from then on
        /// (`starling omemo off JID` to stop).
        #[arg(long, value_parser = ["omemo"])]
        encrypt: Option<String>,
    },
    /// Download a shared file (https or aesgcm:// links; encrypted ones are decrypted and
    /// checked) into a folder, under a safe name.
    Download {
        url: String,
        /// The folder to save into.
        #[arg(long, default_value = ".")]
        to: PathBuf,
        /// The most to download, in MB.
        #[arg(long, default_value_t = 100)]
        max_mb: u64,
    },
    /// Stay online and print events (JSON lines with --json) until interrupted.
    Listen,
    /// Show stored messages with JID.
    History {
        jid: String,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Conversations, newest first, with unread counts.
    Conversations,
    /// Full-text search over stored messages.
    Search {
        text: String,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Connect, catch up with the archive, send what is queued, and exit.
    Sync {
        /// Seconds to wait before giving up.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
    /// Accounts, queued messages and last sync, without connecting.
    Status,
    /// Group chat: join, create, send, moderate, invite.
    #[command(subcommand)]
    Muc(rooms::MucCmd),
    /// Bookmarked rooms (XEP-0402).
    #[command(subcommand)]
    Bookmarks(rooms::BookmarksCmd),
    /// Microblog: post to your contacts, a circle or everyone; read and comment.
    #[command(subcommand)]
    Blog(social::BlogCmd),
    /// Your profile (nickname, avatar, name, bio) and other people's.
    #[command(subcommand)]
    Profile(social::ProfileCmd),
    /// End-to-end encryption (OMEMO): fingerprints, trust, and per-conversation on/off.
    #[command(subcommand)]
    Omemo(omemo::OmemoCmd),
    /// Off-the-record (OTR) conversations: fingerprints, verification, and `otr chat`.
    #[command(subcommand)]
    Otr(otr::OtrCmd),
    /// Start a local demo server with demo accounts and a bot that answers.
    Demo(crate::demo::DemoArgs),
    /// Run the push gateway: the XEP-0357 app server that turns your server's push
    /// notifications into content-free UnifiedPush wakeups (a XEP-0114 component; the
    /// component secret comes from STARLING_COMPONENT_SECRET).
    PushGateway(crate::push_gateway::GatewayArgs),
}

#[derive(Debug, Subcommand)]
pub enum AccountCmd {
    /// Add an account; the password comes from STARLING_PASSWORD or a prompt (never argv).
    Add {
        jid: String,
        #[command(flatten)]
        server: ServerArgs,
        /// How many days of history the first sync fetches.
        #[arg(long, default_value_t = 30)]
        first_sync_days: u32,
    },
    List,
    Remove {
        jid: String,
    },
    /// Connect and show how the connection is secured: server, TLS, DANE, login.
    Info {
        /// The account (default: the only one, or --account).
        jid: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Connect to this host instead of looking up SRV records.
    #[arg(long)]
    pub server: Option<String>,
    /// Port for --server (default 5222, or 5223 with --tls direct).
    #[arg(long, requires = "server")]
    pub port: Option<u16>,
    /// TLS mode: auto (SRV order), starttls, or direct.
    #[arg(long, value_enum, default_value_t = TlsArg::Auto)]
    pub tls: TlsArg,
    /// An extra CA certificate (PEM) to trust for this account, besides the system roots.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TlsArg {
    Auto,
    Starttls,
    Direct,
}

#[derive(Debug, Subcommand)]
pub enum RosterCmd {
    List,
    /// Add a contact and ask for their presence.
    Add {
        jid: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long = "group")]
        groups: Vec<String>,
    },
    Remove {
        jid: String,
    },
    Rename {
        jid: String,
        name: String,
    },
    /// Approve a subscription request.
    Approve {
        jid: String,
    },
    /// Deny a subscription request.
    Deny {
        jid: String,
    },
    /// Pending subscription requests.
    Requests,
}

impl ServerArgs {
    pub fn options(&self, first_sync_days: u32) -> Result<AccountOptions> {
        let tls = match self.tls {
            TlsArg::Auto => TlsMode::Auto,
            TlsArg::Starttls => TlsMode::StartTls,
            TlsArg::Direct => TlsMode::DirectTls,
        };
        let server = self.server.as_ref().map(|h| {
            let default = if matches!(tls, TlsMode::DirectTls) {
                5223
            } else {
                5222
            };
            (h.clone(), self.port.unwrap_or(default))
        });
        if let Some(ca) = &self.ca_file
            && !ca.is_file()
        {
            bail!("CA file {} does not exist", ca.display());
        }
        let ca_file = match &self.ca_file {
            Some(p) => {
                Some(std::fs::canonicalize(p).with_context(|| format!("CA file {}", p.display()))?)
            }
            None => None,
        };
        Ok(AccountOptions {
            server,
            tls,
            ca_file,
            first_sync_days: Some(first_sync_days),
        })
    }
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    let Some(command) = cli.command else {
        return Err(anyhow!(
            "no command given (without one, the desktop window opens)"
        ));
    };
    if let Command::Demo(args) = &command {
        return crate::demo::run(args, cli.profile.clone()).await;
    }
    if let Command::PushGateway(args) = &command {
        let secret = crate::push_gateway::secret_from_env()?;
        return crate::push_gateway::run(args, &secret).await;
    }
    let dir = crate::profile_dir(cli.profile.as_deref())?;
    let client =
        Client::open(&dir).with_context(|| format!("opening profile {}", dir.display()))?;
    let out = Output { json: cli.json };
    match command {
        Command::Account(cmd) => account(&client, &out, cmd, cli.account.as_deref()).await,
        Command::Roster(cmd) => {
            let acc = pick_account(&client, cli.account.as_deref())?;
            roster(&client, &out, &acc, cmd).await
        }
        Command::Send {
            jid,
            text,
            file,
            correct,
            timeout,
            encrypt,
        } => {
            let acc = pick_account(&client, cli.account.as_deref())?;
            if encrypt.is_some() {
                client.set_conversation_encryption(&acc, &jid, true)?;
            }
            let what = match (text, file) {
                (_, Some(path)) if correct => {
                    let _ = path;
                    bail!("--correct corrects text; it cannot be used with --file")
                }
                (_, Some(path)) => What::File(path),
                (Some(text), None) => What::Text(text),
                (None, None) => bail!("nothing to send: give a text or --file PATH"),
            };
            send(&client, &out, &acc, &jid, what, correct, timeout).await
        }
        Command::Download { url, to, max_mb } => {
            let acc = pick_account(&client, cli.account.as_deref())?;
            download(&client, &out, &acc, &url, &to, max_mb).await
        }
        Command::Listen => listen(&client, &out).await,
        Command::History { jid, limit } => {
            let acc = pick_account(&client, cli.account.as_deref())?;
            let msgs = client.history(&acc, &jid, limit)?;
            out.messages(&msgs)
        }
        Command::Conversations => {
            let acc = pick_account(&client, cli.account.as_deref())?;
            let convs = client.conversations(&acc)?;
            if out.json {
                return out.line(&convs);
            }
            for c in convs {
                let unread = if c.unread > 0 {
                    format!(" ({} unread)", c.unread)
                } else {
                    String::new()
                };
                println!(
                    "{} {}{}: {}",
                    fmt_time(c.last_activity),
                    c.peer,
                    unread,
                    c.last_message.unwrap_or_default()
                );
            }
            Ok(())
        }
        Command::Search { text, limit } => {
            let acc = pick_account(&client, cli.account.as_deref())?;
            let msgs = client.search(&acc, &text, limit)?;
            out.messages(&msgs)
        }
        Command::Sync { timeout } => {
            let acc = pick_account(&client, cli.account.as_deref())?;
            sync(&client, &acc, timeout).await
        }
        Command::Status => status(&client, &out),
        Command::Muc(cmd) => {
            let acc = pick_account(&client, cli.account.as_deref())?;
            rooms::run(&client, &out, &acc, cmd).await
        }
        Command::Bookmarks(cmd) => {
            let acc = pick_account(&client, cli.account.as_deref())?;
            rooms::bookmarks(&client, &out, &acc, cmd).await
        }
        Command::Blog(cmd) => {
            let acc = pick_account(&client, cli.account.as_deref())?;
            social::run(&client, &out, &acc, cmd).await
        }
        Command::Profile(cmd) => {
            let acc = pick_account(&client, cli.account.as_deref())?;
            social::profile(&client, &out, &acc, cmd).await
        }
        Command::Omemo(cmd) => {
            let acc = pick_account(&client, cli.account.as_deref())?;
            omemo::run(&client, &out, &acc, cmd).await
        }
        Command::Otr(cmd) => {
            let acc = pick_account(&client, cli.account.as_deref())?;
            otr::run(&client, &out, &acc, cmd).await
        }
        Command::Demo(_) | Command::PushGateway(_) => Ok(()),
    }
}

fn pick_account(client: &Client, given: Option<&str>) -> Result<String> {
    if let Some(a) = given {
        return Ok(starling_core::parse_bare(a)?.to_string());
    }
    let accounts = client.accounts()?;
    match accounts.as_slice() {
        [one] => Ok(one.jid.clone()),
        [] => bail!("no account yet; add one with `starling account add you@example.org`"),
        _ => bail!("several accounts in this profile; choose one with --account JID"),
    }
}

/// Reads a secret: a prompt on a terminal, else one line of stdin.
fn read_secret(prompt: &str) -> Result<String> {
    if std::io::stdin().is_terminal() {
        rpassword::prompt_password(prompt).context("reading password")
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading password from stdin")?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }
}

/// Reads the password: STARLING_PASSWORD, else a prompt on a terminal, else one line of stdin.
fn read_password(jid: &str) -> Result<Password> {
    if let Ok(pw) = std::env::var(PASSWORD_ENV)
        && !pw.is_empty()
    {
        return Ok(Password::new(pw));
    }
    let pw = read_secret(&format!("Password for {jid}: "))?;
    if pw.is_empty() {
        bail!("no password given (set {PASSWORD_ENV} or type it at the prompt)");
    }
    Ok(Password::new(pw))
}

async fn account(
    client: &Client,
    out: &Output,
    cmd: AccountCmd,
    chosen: Option<&str>,
) -> Result<()> {
    match cmd {
        AccountCmd::Add {
            jid,
            server,
            first_sync_days,
        } => {
            let jid = starling_core::parse_bare(&jid)?.to_string();
            let opts = server.options(first_sync_days)?;
            let password = read_password(&jid)?;
            eprintln!("Checking the login for {jid}…");
            let rec = client
                .add_account(&jid, password, opts)
                .await
                .map_err(with_hint)?;
            if out.json {
                out.line(&rec)?;
            } else {
                println!("Added {} (resource {}).", rec.jid, rec.resource);
            }
            Ok(())
        }
        AccountCmd::List => {
            let accounts = client.accounts()?;
            if out.json {
                out.line(&accounts)?;
            } else if accounts.is_empty() {
                println!("No accounts. Add one with `starling account add you@example.org`.");
            } else {
                for a in accounts {
                    let via = match (&a.server_host, a.server_port) {
                        (Some(h), Some(p)) => format!(" via {h}:{p}"),
                        _ => String::new(),
                    };
                    println!("{}{} ({})", a.jid, via, a.tls_mode);
                }
            }
            Ok(())
        }
        AccountCmd::Remove { jid } => {
            client.remove_account(&jid).await?;
            if !out.json {
                println!("Removed {jid} and everything stored for it.");
            }
            Ok(())
        }
        AccountCmd::Info { jid } => {
            let account = pick_account(client, jid.as_deref().or(chosen))?;
            account_info(client, out, &account).await
        }
    }
}

async fn account_info(client: &Client, out: &Output, account: &str) -> Result<()> {
    connect_online(client, account, Duration::from_secs(60)).await?;
    let info = client.connection_info(account).await;
    client.disconnect_all().await;
    let Some(info) = info? else {
        bail!("{account} went offline before its connection info was known; try again");
    };
    if out.json {
        return out.line(&info);
    }
    println!("Server:  {}:{}", info.host, info.port);
    let tls = if info.direct_tls {
        "direct TLS"
    } else {
        "STARTTLS"
    };
    println!("TLS:     {} ({tls})", info.tls_version);
    let certificate = if info.dane {
        "DANE: matches the domain's DNSSEC-signed TLSA records"
    } else {
        "certificate authorities (PKIX)"
    };
    println!("Trust:   {certificate}");
    let via = match (info.sasl2, info.resumed_inline, info.bound_inline) {
        (true, true, _) => "SASL2, previous session resumed in the same step",
        (true, false, true) => "SASL2, session bound in the same step",
        (true, false, false) => "SASL2",
        (false, ..) => "SASL",
    };
    let binding = match &info.channel_binding {
        Some(kind) => format!("bound to this TLS connection ({kind})"),
        None => "not bound to the TLS connection".to_owned(),
    };
    let token = if info.fast {
        " (a FAST token, not the password)"
    } else {
        ""
    };
    println!("Login:   {}{token} via {via}; {binding}", info.mechanism);
    if let Some(jid) = &info.jid {
        println!("Session: {jid}");
    }
    Ok(())
}

/// Connects `account` and waits until it is online (or fails with the reason).
pub(crate) async fn connect_online(
    client: &Client,
    account: &str,
    timeout: Duration,
) -> Result<()> {
    let mut events = client.events();
    client.connect(account).await?;
    if matches!(
        client.connection_state(account),
        ConnectionState::Online { .. }
    ) {
        return Ok(());
    }
    let wait = async {
        loop {
            match events.recv().await {
                Ok(Event::Connection { account: a, state }) if a == account => match state {
                    ConnectionState::Online { .. } => return Ok(()),
                    ConnectionState::Failed { error, .. } => return Err(anyhow!(error)),
                    ConnectionState::Reconnecting {
                        reason: Some(reason),
                        ..
                    } => eprintln!("{account}: {reason}; retrying…"),
                    _ => {}
                },
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => return Err(anyhow!("event stream ended: {e}")),
            }
        }
    };
    tokio::time::timeout(timeout, wait)
        .await
        .map_err(|_| anyhow!("could not connect {account} within {}s", timeout.as_secs()))?
}

/// Connects and waits until the session's first sync (roster, archive) is done, for
/// commands that need the roster (audiences) or the newest state.
pub(crate) async fn connect_synced(
    client: &Client,
    account: &str,
    timeout: Duration,
) -> Result<()> {
    let mut events = client.events();
    connect_online(client, account, timeout).await?;
    let wait = async {
        loop {
            match events.recv().await {
                Ok(Event::SyncDone { account: a, .. }) if a == account => return Ok(()),
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => return Err(anyhow!("event stream ended: {e}")),
            }
        }
    };
    tokio::time::timeout(timeout, wait).await.map_err(|_| {
        anyhow!(
            "{account} did not finish syncing within {}s",
            timeout.as_secs()
        )
    })?
}

/// What `starling send` sends.
pub(crate) enum What {
    Text(String),
    File(PathBuf),
}

async fn send(
    client: &Client,
    out: &Output,
    account: &str,
    to: &str,
    what: What,
    correct: bool,
    timeout: u64,
) -> Result<()> {
    let mut events = client.events();
    // An encrypted message is encrypted for the devices the server lists now, and a file is
    // uploaded before its message exists: go online first.
    let encrypted = client.conversation_encryption(account, to)?.is_some();
    if encrypted || matches!(what, What::File(_)) {
        connect_online(client, account, Duration::from_secs(timeout)).await?;
    }
    if encrypted {
        client.omemo_publish(account).await?;
    }
    // Stored first: from here on the message survives anything, including a kill.
    let rec = match &what {
        What::Text(text) if correct => client.correct_last_message(account, to, text).await?,
        What::Text(text) => client.send_message(account, to, text).await?,
        What::File(path) => {
            let progress = tokio::spawn(show_upload_progress(client.events(), out.json));
            let r = client.send_file(account, to, path).await;
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
    std::io::stdout().flush()?;
    let deadline = Duration::from_secs(timeout);
    // Another process online with this profile (the app, or `listen`) sends it for us.
    let handed_over = match connect_online(client, account, deadline).await {
        Ok(()) => false,
        Err(e)
            if matches!(
                e.downcast_ref::<starling_core::Error>(),
                Some(starling_core::Error::ProfileBusy(_))
            ) =>
        {
            eprintln!("another Starling process is online with this profile; it sends the message");
            true
        }
        Err(e) => {
            return Err(e.context("the message is queued and will be sent on the next connection"));
        }
    };
    let account_id = client.store().account(account)?.id;
    let wait = async {
        loop {
            if client.store().outbox(account_id)?.is_empty() {
                return Ok::<_, anyhow::Error>(());
            }
            if handed_over {
                // No events cross processes: watch the shared database instead.
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
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
    let r = tokio::time::timeout(deadline, wait).await;
    client.disconnect_all().await;
    match r {
        Ok(r) => r?,
        Err(_) => bail!(
            "the server did not acknowledge in time; the message stays queued and is sent on the next connection"
        ),
    }
    if !out.json {
        eprintln!("sent");
    }
    Ok(())
}

/// Prints upload progress on stderr (as JSON lines with --json) until aborted.
pub(crate) async fn show_upload_progress(
    mut events: tokio::sync::broadcast::Receiver<Event>,
    json: bool,
) {
    while let Ok(ev) = events.recv().await {
        if let Event::UploadProgress {
            name, sent, total, ..
        } = &ev
        {
            if json {
                eprintln!("{}", serde_json::to_string(&ev).unwrap_or_default());
            } else {
                let pct = (sent * 100).checked_div(*total).unwrap_or(100);
                eprint!(
                    "\ruploading {name}: {pct:>3}% ({} of {})",
                    starling_core::human_size(*sent),
                    starling_core::human_size(*total)
                );
            }
        }
    }
}

/// `starling download`: fetches a shared file into `dir` under a safe, unused name.
async fn download(
    client: &Client,
    out: &Output,
    account: &str,
    url: &str,
    dir: &std::path::Path,
    max_mb: u64,
) -> Result<()> {
    let path = client
        .download_to(account, url, dir, max_mb.saturating_mul(1_000_000))
        .await?;
    let size = std::fs::metadata(&path)
        .map(|m| m.len())
        .unwrap_or_default();
    if out.json {
        out.line(&serde_json::json!({"saved": path, "size": size}))?;
    } else {
        println!(
            "saved {} ({})",
            path.display(),
            starling_core::human_size(size)
        );
    }
    Ok(())
}

async fn sync(client: &Client, account: &str, timeout: u64) -> Result<()> {
    let mut events = client.events();
    let deadline = Duration::from_secs(timeout);
    let started = std::time::Instant::now();
    connect_online(client, account, deadline).await?;
    let account_id = client.store().account(account)?.id;
    let wait = async {
        let mut synced = false;
        loop {
            let outbox_empty = client.store().outbox(account_id)?.is_empty();
            if synced && outbox_empty {
                return Ok::<_, anyhow::Error>(());
            }
            match events.recv().await {
                Ok(Event::SyncProgress { fetched, .. }) => eprintln!("fetched {fetched} messages…"),
                Ok(Event::SyncDone { fetched, .. }) => {
                    eprintln!("archive caught up: {fetched} messages fetched");
                    synced = true;
                }
                Ok(Event::Connection {
                    state: ConnectionState::Failed { error, .. },
                    ..
                }) => bail!(error),
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => bail!("event stream ended: {e}"),
            }
        }
    };
    let r = tokio::time::timeout(deadline.saturating_sub(started.elapsed()), wait).await;
    client.disconnect_all().await;
    match r {
        Ok(r) => r,
        Err(_) => bail!("sync did not finish within {timeout}s; run it again to continue"),
    }
}

async fn listen(client: &Client, out: &Output) -> Result<()> {
    let mut events = client.events();
    client.connect_all().await?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Ok(ev) => out.event(&ev)?,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "too many events; some were not printed");
                }
                Err(_) => break,
            },
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
    }
    client.disconnect_all().await;
    Ok(())
}

fn status(client: &Client, out: &Output) -> Result<()> {
    let mut rows = Vec::new();
    for a in client.accounts()? {
        let queued = client.store().outbox(a.id)?.len();
        let conversations = client.conversations(&a.jid)?.len();
        rows.push(serde_json::json!({
            "account": a.jid,
            "queued": queued,
            "conversations": conversations,
            "last_sync": a.mam_synced_at.map(fmt_time),
        }));
    }
    if out.json {
        return out.line(&rows);
    }
    if rows.is_empty() {
        println!("No accounts. Add one with `starling account add you@example.org`.");
    }
    for r in rows {
        println!(
            "{}: {} conversations, {} queued, last sync {}",
            r["account"].as_str().unwrap_or_default(),
            r["conversations"],
            r["queued"],
            r["last_sync"].as_str().unwrap_or("never")
        );
    }
    Ok(())
}

async fn roster(client: &Client, out: &Output, account: &str, cmd: RosterCmd) -> Result<()> {
    match cmd {
        RosterCmd::List => {
            let contacts = client.contacts(account)?;
            if out.json {
                return out.line(&contacts);
            }
            for c in contacts {
                let name = c.name.map(|n| format!(" ({n})")).unwrap_or_default();
                let ask = if c.ask { ", asked" } else { "" };
                println!(
                    "{}{} [{}{}] {}",
                    c.jid,
                    name,
                    c.subscription.as_str(),
                    ask,
                    c.groups.join(", ")
                );
            }
            Ok(())
        }
        RosterCmd::Requests => {
            let reqs = client.subscription_requests(account)?;
            if out.json {
                return out.line(&reqs);
            }
            for r in reqs {
                println!("{r}");
            }
            Ok(())
        }
        cmd => {
            connect_online(client, account, Duration::from_secs(60)).await?;
            let r = match cmd {
                RosterCmd::Add { jid, name, groups } => {
                    client.add_contact(account, &jid, name, groups).await
                }
                RosterCmd::Remove { jid } => client.remove_contact(account, &jid).await,
                RosterCmd::Rename { jid, name } => client.rename_contact(account, &jid, name).await,
                RosterCmd::Approve { jid } => client.approve_subscription(account, &jid).await,
                RosterCmd::Deny { jid } => client.deny_subscription(account, &jid).await,
                RosterCmd::List | RosterCmd::Requests => Ok(()),
            };
            client.disconnect_all().await;
            Ok(r?)
        }
    }
}

/// Adds what to do next to errors a person can fix.
fn with_hint(e: starling_core::Error) -> anyhow::Error {
    use starling_core::connection::ConnectError as C;
    let hint = match &e {
        starling_core::Error::Connect(C::WrongPassword { .. }) => {
            Some("check the password (STARLING_PASSWORD or the prompt)")
        }
        starling_core::Error::Connect(e) if e.is_dane_mismatch() => Some(
            "the domain's DNSSEC-signed TLSA records name another certificate: its admin must \
             update them (or this is not the real server); a CA file does not change that",
        ),
        starling_core::Error::Connect(C::DnssecFailed { .. }) => Some(
            "the domain's DNSSEC is broken or its DNS answers are being tampered with; tell its \
             admin, or try another network",
        ),
        starling_core::Error::Connect(C::CertificateNotTrusted { .. }) => Some(
            "if you trust this server, pass its CA certificate with --ca-file; check --server if you set it",
        ),
        starling_core::Error::Connect(C::ServerUnreachable { .. }) => {
            Some("check the address and your network, or give --server and --port")
        }
        _ => None,
    };
    match hint {
        Some(h) => anyhow!("{e}; {h}"),
        None => anyhow!(e),
    }
}

/// Formats milliseconds since the epoch as local-agnostic UTC text.
fn fmt_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}

struct Output {
    json: bool,
}

impl Output {
    fn line<T: serde::Serialize>(&self, v: &T) -> Result<()> {
        let mut stdout = std::io::stdout().lock();
        serde_json::to_writer(&mut stdout, v)?;
        writeln!(stdout)?;
        stdout.flush()?;
        Ok(())
    }

    fn messages(&self, msgs: &[MessageRecord]) -> Result<()> {
        if self.json {
            return self.line(&msgs);
        }
        for m in msgs {
            println!("{}", human_message(m));
        }
        Ok(())
    }

    fn event(&self, ev: &Event) -> Result<()> {
        if self.json {
            return self.line(ev);
        }
        match ev {
            Event::Message {
                account, message, ..
            } => {
                println!("[{account}] {}", human_message(message))
            }
            Event::MessageUpdated { account, message } => {
                println!("[{account}] updated: {}", human_message(message))
            }
            Event::Connection { account, state } => println!("[{account}] {state:?}"),
            Event::SubscriptionRequest { account, from } => {
                println!(
                    "[{account}] {from} asks to see your presence: `starling roster approve {from}`"
                )
            }
            Event::ChatState { .. } | Event::Presence { .. } | Event::RosterItem { .. } => {}
            other => println!("{other:?}"),
        }
        Ok(())
    }
}

pub fn human_message(m: &MessageRecord) -> String {
    let dir = if m.outgoing { "→" } else { "←" };
    let state = match m.state {
        MessageState::Received => String::new(),
        s => format!(" [{}]", s.as_str()),
    };
    let edited = if m.edited { " (edited)" } else { "" };
    let body = if m.retracted {
        match &m.retracted_by {
            Some(by) => format!("(removed by {by})"),
            None => "(retracted)".to_owned(),
        }
    } else if let Some(why) = &m.undecryptable {
        format!("({why})")
    } else {
        m.body.clone()
    };
    let enc = match (m.encryption, &m.trust_warning) {
        (Some(e), Some(w)) => format!(" [{}] (warning: {w})", e.as_str()),
        (Some(e), None) => format!(" [{}]", e.as_str()),
        (None, _) => String::new(),
    };
    let who = match m.kind {
        // In a room: who said it.
        MessageKind::GroupChat => format!(
            "{} {}",
            m.peer,
            m.sender.split_once('/').map(|(_, n)| n).unwrap_or("")
        ),
        MessageKind::Notice => format!("{} *", m.peer),
        _ => m.peer.clone(),
    };
    format!(
        "{} {dir} {who}: {body}{edited}{state}{enc}",
        fmt_time(m.timestamp),
    )
}
