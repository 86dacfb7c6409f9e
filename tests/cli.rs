//! Driving the `starling` binary as a user or a script would.

use std::path::PathBuf;
use std::process::Output;

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;
use starling::testbed::Prosody;

use crate::support::{self, Account};

/// A profile directory and the `starling` binary pointed at it.
pub struct Cli {
    dir: tempfile::TempDir,
    port: u16,
    ca: PathBuf,
}

impl Cli {
    pub fn new(server: &Prosody) -> Result<Cli> {
        Ok(Cli {
            dir: tempfile::Builder::new().prefix("starling-cli-").tempdir()?,
            port: server.c2s_port(),
            ca: server.ca_file().to_path_buf(),
        })
    }

    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_starling"));
        c.arg("--profile")
            .arg(self.dir.path())
            .args(args)
            .env("STARLING_NO_KEYRING", "1")
            .env_remove("STARLING_PASSWORD")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        c
    }

    async fn output(&self, args: &[&str], password: Option<&str>) -> Result<Output> {
        let mut c = self.command(args);
        if let Some(pw) = password {
            c.env("STARLING_PASSWORD", pw);
        }
        let out = tokio::time::timeout(std::time::Duration::from_secs(120), c.output())
            .await
            .with_context(|| format!("starling {args:?} hung"))??;
        Ok(out)
    }

    /// Runs and returns stdout; fails with stderr on a non-zero exit.
    pub async fn run(&self, args: &[&str]) -> Result<String> {
        let out = self.output(args, None).await?;
        if !out.status.success() {
            bail!(
                "starling {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    pub async fn json(&self, args: &[&str]) -> Result<Value> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.run(&all).await?;
        serde_json::from_str(out.trim()).with_context(|| format!("not JSON: {out}"))
    }

    /// Runs a command that must fail; returns its stderr.
    pub async fn fail(&self, args: &[&str], password: Option<&str>) -> Result<String> {
        let out = self.output(args, password).await?;
        ensure!(
            !out.status.success(),
            "starling {args:?} unexpectedly succeeded"
        );
        Ok(String::from_utf8(out.stderr)?)
    }

    pub fn server_args(&self) -> Vec<String> {
        vec![
            "--server".into(),
            "127.0.0.1".into(),
            "--port".into(),
            self.port.to_string(),
            "--tls".into(),
            "starttls".into(),
            "--ca-file".into(),
            self.ca.display().to_string(),
        ]
    }

    pub async fn add_account(&self, account: &Account) -> Result<()> {
        let mut args = vec!["account", "add", account.jid.as_str()];
        let server = self.server_args();
        args.extend(server.iter().map(String::as_str));
        let out = self.output(&args, Some(&account.password)).await?;
        if !out.status.success() {
            bail!(
                "account add failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_account_send_history_search_roster() -> Result<()> {
    let server = support::fresh_server()?;
    let (alice, bob) = (server.account("alice")?, server.account("bob")?);
    let mut peer = server.peer(&bob).await?;
    let cli = Cli::new(&server)?;
    cli.add_account(&alice).await?;

    let accounts = cli.json(&["account", "list"]).await?;
    ensure!(
        accounts[0]["jid"] == alice.jid.as_str(),
        "account list after add: {accounts}"
    );
    ensure!(
        !std::fs::read_to_string(cli.dir.path().join("starling.sqlite3"))
            .unwrap_or_default()
            .contains(&alice.password),
        "password must not be in the database"
    );
    let info = cli.json(&["account", "info"]).await?;
    ensure!(
        info["host"] == "127.0.0.1"
            && info["tls_version"] == "TLS 1.3"
            && info["dane"] == false
            && info["mechanism"] == "SCRAM-SHA-1-PLUS"
            && info["channel_binding"] == "tls-exporter"
            && info["sasl2"] == true
            && info["bound_inline"] == true,
        "account info: {info}"
    );
    // The first login fetched a FAST token: this one uses it instead of the password.
    let human = cli.run(&["account", "info"]).await?;
    ensure!(
        human.contains("certificate authorities (PKIX)")
            && human.contains("HT-SHA-256-EXPR (a FAST token, not the password) via SASL2")
            && human.contains("bound to this TLS connection (tls-exporter)"),
        "account info: {human}"
    );

    cli.run(&["send", &bob.jid, "from the command line"])
        .await?;
    peer.next_event_matching(
        |e| e["body"] == "from the command line",
        support::EVENT_TIMEOUT,
    )
    .await?;
    peer.send_message(&alice.jid, "a reply about harbours")
        .await?;
    peer.sync().await?;
    cli.run(&["sync"]).await?;

    let history = cli.json(&["history", &bob.jid, "--limit", "10"]).await?;
    let bodies: Vec<&str> = history
        .as_array()
        .context("array")?
        .iter()
        .filter_map(|m| m["body"].as_str())
        .collect();
    ensure!(
        bodies == ["from the command line", "a reply about harbours"],
        "history: {bodies:?}"
    );
    let found = cli.json(&["search", "harbour"]).await?;
    ensure!(found.as_array().map(Vec::len) == Some(1), "search: {found}");
    let human = cli.run(&["history", &bob.jid]).await?;
    ensure!(human.contains("a reply about harbours"), "{human}");

    // Roster through the CLI: add (subscribe), and the peer approves.
    cli.run(&["roster", "add", &bob.jid, "--name", "Bob"])
        .await?;
    let roster = cli.json(&["roster", "list"]).await?;
    ensure!(
        roster[0]["jid"] == bob.jid.as_str() && roster[0]["name"] == "Bob",
        "roster: {roster}"
    );

    cli.run(&["account", "remove", &alice.jid]).await?;
    let accounts = cli.json(&["account", "list"]).await?;
    ensure!(
        accounts.as_array().map(Vec::len) == Some(0),
        "account list after remove: {accounts}"
    );
    peer.quit().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_errors_are_one_clear_line() -> Result<()> {
    let server = support::fresh_server()?;
    let cli = Cli::new(&server)?;
    let err = cli.fail(&["send", "bob@localhost", "hi"], None).await?;
    ensure!(
        err.trim().lines().count() == 1 && err.contains("no account yet"),
        "{err}"
    );
    let err = cli.fail(&["history", "not a jid@@"], None).await?;
    ensure!(err.contains("error"), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_listen_prints_json_events_and_stops_on_sigterm() -> Result<()> {
    use tokio::io::AsyncBufReadExt;
    let server = support::fresh_server()?;
    let (alice, bob) = (server.account("alice")?, server.account("bob")?);
    let cli = Cli::new(&server)?;
    cli.add_account(&alice).await?;
    let mut child = cli
        .command(&["--json", "listen"])
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().context("stdout")?).lines();
    let mut next_event = async |pred: &dyn Fn(&Value) -> bool| -> Result<Value> {
        loop {
            let line = tokio::time::timeout(support::EVENT_TIMEOUT, lines.next_line())
                .await
                .context("listen printed nothing in time")??
                .context("listen exited")?;
            let v: Value =
                serde_json::from_str(&line).with_context(|| format!("not JSON: {line}"))?;
            if pred(&v) {
                return Ok(v);
            }
        }
    };
    next_event(&|v| v["event"] == "connection" && v["state"]["state"] == "online").await?;
    let mut peer = server.peer(&bob).await?;
    peer.send_message(&alice.jid, "heard by listen").await?;
    let m = next_event(&|v| v["event"] == "message").await?;
    ensure!(m["message"]["body"] == "heard by listen", "{m}");

    // While `listen` is online, `send` from another process hands the message to it (one
    // process per profile online: no resource fight, no double send) ...
    let out = cli
        .command(&["send", &bob.jid, "via the running listener"])
        .output()
        .await?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(String::from_utf8_lossy(&out.stderr).contains("another Starling process"));
    peer.command(serde_json::json!({"cmd": "ping"})).await?;
    cli.run(&["send", &bob.jid, "sentinel"]).await?;
    let got = crate::reliability::bodies_until(&mut peer, "sentinel").await?;
    ensure!(
        got == vec!["via the running listener".to_owned()],
        "exactly once: {got:?}"
    );
    // ... and commands that need their own connection say why they cannot have it.
    let err = cli.fail(&["sync"], None).await?;
    ensure!(err.contains("another Starling process is online"), "{err}");
    let pid = child.id().context("pid")?;
    let status = tokio::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await?;
    ensure!(status.success());
    let exit = tokio::time::timeout(support::EVENT_TIMEOUT, child.wait()).await??;
    ensure!(exit.success(), "listen exits cleanly on SIGTERM: {exit}");
    peer.quit().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_starts_a_server_and_the_bot_answers() -> Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("starling-demo-")
        .tempdir()?;
    let run = || async {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_starling"))
            .args(["demo", "--check", "--dir"])
            .arg(dir.path())
            .env("STARLING_NO_KEYRING", "1")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output()
            .await?;
        ensure!(
            out.status.success(),
            "demo failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok::<_, anyhow::Error>(String::from_utf8(out.stdout)?)
    };
    let first = run().await?;
    ensure!(first.contains("bot answered: pong"), "{first}");
    // The room path: create, invite the bot, chat, leave, rejoin without gaps.
    ensure!(
        first.contains("bot answered in check-") && first.contains("without gaps"),
        "{first}"
    );
    // The social path: the bot's posts, posting to contacts and a circle, a comment
    // answered, an avatar.
    ensure!(
        first.contains("feed: 2 posts from the bot; posted to contacts and circle:Demo")
            && first.contains("the bot answered your comment")
            && first.contains("avatar set"),
        "{first}"
    );
    // The bot speaks OMEMO: an encrypted ping gets an encrypted answer.
    ensure!(first.contains("bot answered encrypted"), "{first}");
    // And OTR: the bot's client answers the key exchange and answers privately.
    ensure!(first.contains("bot answered over OTR"), "{first}");
    ensure!(
        first.contains("the bot got the photo and sent back a 128×128 thumbnail, both encrypted"),
        "{first}"
    );
    // A second run reuses the server directory and accounts (and the OMEMO devices and
    // sessions, reopened from the sealed store: the conversation stays encrypted).
    let second = run().await?;
    ensure!(second.contains("bot answered: pong"), "{second}");
    ensure!(second.contains("bot answered encrypted"), "{second}");
    ensure!(second.contains("bot answered over OTR"), "{second}");
    ensure!(second.contains("the bot got the photo"), "{second}");
    ensure!(second.contains("the bot answered your comment"), "{second}");
    Ok(())
}
