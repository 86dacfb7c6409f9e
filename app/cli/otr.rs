//! `starling otr …`: OTR fingerprints and verification, and private conversations in the
//! terminal. OTR sessions live only as long as the program runs, so a private conversation
//! is one long-running command (`otr chat`), as in Profanity or Pidgin.

use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use clap::Subcommand;
use starling_core::crypto::otr::OtrStatus;
use starling_core::{Client, Event};
use tokio::io::{AsyncBufReadExt as _, BufReader};

use super::{Output, connect_online, human_message};

#[derive(Debug, Subcommand)]
pub enum OtrCmd {
    /// Your OTR fingerprint (your key is made on first use and kept in the OS keyring).
    Fingerprint,
    /// The OTR keys JID has used with you, and which you verified.
    Fingerprints { jid: String },
    /// Mark an OTR key of JID verified (after comparing fingerprints over another channel).
    Verify { jid: String, fingerprint: String },
    /// Withdraw the verification of an OTR key of JID.
    Unverify { jid: String, fingerprint: String },
    /// A private (OTR) conversation with JID in this terminal, until end of input or /end.
    /// Lines you type are sent encrypted. Commands: `/smp` (verify the contact: you are
    /// asked for a question and the secret answer), `/answer` (answer their question: you
    /// are asked for the secret), `/status`, `/end`.
    Chat {
        jid: String,
        /// Seconds to wait for the connection and for the private conversation.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
}

pub async fn run(client: &Client, out: &Output, account: &str, cmd: OtrCmd) -> Result<()> {
    match cmd {
        OtrCmd::Fingerprint => {
            let fpr = client.otr_fingerprint(account).await?;
            if out.json {
                return out.line(&serde_json::json!({"account": account, "fingerprint": fpr}));
            }
            println!("{account}: {fpr}");
            Ok(())
        }
        OtrCmd::Fingerprints { jid } => {
            let keys = client.otr_fingerprints(account, &jid)?;
            if out.json {
                return out.line(&keys);
            }
            if keys.is_empty() {
                println!("{jid} has not used OTR with you yet");
            }
            for k in keys {
                let state = if k.verified {
                    "verified"
                } else {
                    "not verified"
                };
                println!("{}  {state}", super::omemo::pretty(&k.fingerprint));
            }
            Ok(())
        }
        OtrCmd::Verify { jid, fingerprint } => {
            client.otr_set_verified(account, &jid, &fingerprint, true)?;
            if !out.json {
                println!("{jid}'s OTR key {fingerprint} is verified");
            }
            Ok(())
        }
        OtrCmd::Unverify { jid, fingerprint } => {
            client.otr_set_verified(account, &jid, &fingerprint, false)?;
            if !out.json {
                println!("{jid}'s OTR key {fingerprint} is no longer verified");
            }
            Ok(())
        }
        OtrCmd::Chat { jid, timeout } => {
            let jid = starling_core::parse_contact(&jid)?.to_string();
            let r = chat(client, out, account, &jid, Duration::from_secs(timeout)).await;
            client.disconnect_all().await;
            r
        }
    }
}

async fn chat(
    client: &Client,
    out: &Output,
    account: &str,
    jid: &str,
    timeout: Duration,
) -> Result<()> {
    let mut events = client.events();
    connect_online(client, account, timeout).await?;
    eprintln!("Starting a private conversation with {jid}…");
    client.otr_start(account, jid).await?;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let up = tokio::time::sleep(timeout);
    tokio::pin!(up);
    let mut private = false;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Ok(ev) => {
                    if let Event::OtrStatus { peer, status, .. } = &ev
                        && peer == jid
                    {
                        private = *status == OtrStatus::Encrypted;
                    }
                    show(out, account, jid, &ev)?;
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    eprintln!("({n} events were too many to show)");
                }
                Err(_) => break,
            },
            line = lines.next_line() => {
                let Some(line) = line? else { break };
                if !command(client, account, jid, &line, &mut lines).await? {
                    break;
                }
            }
            () = &mut up, if !private => {
                bail!(
                    "{jid} did not start the private conversation within {}s: is their \
                     client online and does it speak OTR?",
                    timeout.as_secs()
                );
            }
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
    }
    client.otr_end(account, jid).await?;
    eprintln!("Private conversation with {jid} ended.");
    Ok(())
}

/// Handles one typed line; false to leave.
async fn command(
    client: &Client,
    account: &str,
    jid: &str,
    line: &str,
    lines: &mut tokio::io::Lines<BufReader<tokio::io::Stdin>>,
) -> Result<bool> {
    let mut ask = async |prompt: &str| -> Result<String> {
        eprint!("{prompt}");
        lines
            .next_line()
            .await?
            .ok_or_else(|| anyhow!("input ended"))
    };
    match line.trim() {
        "/end" => return Ok(false),
        "/status" => {
            let info = client.otr_status(account, jid).await?;
            let key = info.fingerprint.as_deref().unwrap_or("none");
            let verified = if info.verified {
                "verified"
            } else {
                "not verified"
            };
            eprintln!("{:?}; their key {key} ({verified})", info.status);
        }
        "/smp" => {
            let question = ask("question (empty for none): ").await?;
            let secret = ask("secret answer: ").await?;
            let question = Some(question.trim()).filter(|q| !q.is_empty());
            client
                .otr_smp_start(account, jid, question, secret.trim())
                .await?;
            eprintln!("Asked {jid} to prove who they are…");
        }
        "/answer" => {
            let secret = ask("secret answer: ").await?;
            client.otr_smp_answer(account, jid, secret.trim()).await?;
        }
        "" => {}
        text => {
            if let Err(e) = client.send_message(account, jid, text).await {
                eprintln!("not sent: {e}");
            }
        }
    }
    Ok(true)
}

fn show(out: &Output, account: &str, jid: &str, ev: &Event) -> Result<()> {
    if out.json {
        return out.line(ev);
    }
    match ev {
        Event::Message { message, .. } if message.peer == jid && !message.outgoing => {
            println!("{}", human_message(message));
        }
        Event::OtrStatus {
            peer,
            status,
            fingerprint,
            verified,
            ..
        } if peer == jid => match status {
            OtrStatus::Encrypted => {
                let key = fingerprint.as_deref().unwrap_or("unknown");
                let how = if *verified {
                    "verified"
                } else {
                    "NOT verified: compare it with what they see for you, or type /smp"
                };
                eprintln!("Private conversation with {jid} is up. Their key: {key} ({how}).");
            }
            OtrStatus::Finished => eprintln!(
                "{jid} ended the private conversation; nothing more is sent. /end to leave."
            ),
            OtrStatus::Plaintext => eprintln!("The private conversation with {jid} is over."),
        },
        Event::OtrSmpQuestion { peer, question, .. } if peer == jid => match question {
            Some(q) => eprintln!("{jid} asks you to prove who you are: {q:?} — type /answer"),
            None => {
                eprintln!("{jid} asks you to prove who you are with a shared secret — type /answer")
            }
        },
        Event::OtrSmpResult { peer, verified, .. } if peer == jid => {
            if *verified {
                eprintln!("{jid} is verified: you both gave the same secret.");
            } else {
                eprintln!("Verification of {jid} FAILED: the secrets differ (or it was aborted).");
            }
        }
        Event::Connection { account: a, state } if a == account => eprintln!("{state:?}"),
        _ => {}
    }
    Ok(())
}
