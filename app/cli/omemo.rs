//! `starling omemo …`: OMEMO fingerprints and trust, and turning a conversation's
//! encryption on or off.

use std::time::Duration;

use anyhow::Result;
use clap::Subcommand;
use starling_core::Client;
use starling_core::store::omemo::Trust;

use super::{Output, connect_online};

#[derive(Debug, Subcommand)]
pub enum OmemoCmd {
    /// Show the OMEMO devices of JID (or your own) with fingerprints and trust.
    Fingerprints {
        jid: Option<String>,
        /// Show what is stored without connecting.
        #[arg(long)]
        offline: bool,
    },
    /// Mark a key of JID as verified (after comparing the fingerprint in person or by QR code).
    Trust { jid: String, fingerprint: String },
    /// Never encrypt to (nor believe) a key of JID.
    Distrust { jid: String, fingerprint: String },
    /// Encrypt the conversation with JID from now on (sticky).
    On { jid: String },
    /// Send plaintext to JID again (only ever at your explicit request).
    Off { jid: String },
}

pub async fn run(client: &Client, out: &Output, account: &str, cmd: OmemoCmd) -> Result<()> {
    match cmd {
        OmemoCmd::Fingerprints { jid, offline } => {
            if !offline {
                connect_online(client, account, Duration::from_secs(60)).await?;
            }
            let (own_id, own_fpr) = client.omemo_own(account).await?;
            let jid = jid.unwrap_or_else(|| account.to_owned());
            let devices = client.omemo_devices(account, &jid).await?;
            client.disconnect_all().await;
            if out.json {
                let list: Vec<_> = devices
                    .iter()
                    .map(|d| {
                        serde_json::json!({
                            "namespace": d.ns.xmlns(),
                            "device": d.device,
                            "label": d.label,
                            "active": d.active,
                            "fingerprint": d.fingerprint,
                            "trust": d.trust.map(trust_name),
                            "failure": d.failure,
                        })
                    })
                    .collect();
                return out.line(&serde_json::json!({
                    "own": {"device": own_id, "fingerprint": own_fpr},
                    "jid": jid,
                    "devices": list,
                }));
            }
            println!("this device: {own_id}  {}", pretty(&own_fpr));
            println!("  verify link: xmpp:{account}?omemo-sid-{own_id}={own_fpr}");
            if devices.is_empty() {
                println!("{jid} has no OMEMO devices");
            }
            for d in devices
                .iter()
                .filter(|d| d.device != own_id || jid != account)
            {
                let fpr = d
                    .fingerprint
                    .as_deref()
                    .map(pretty)
                    .unwrap_or_else(|| "(no key seen yet)".into());
                let trust = d.trust.map(trust_name).unwrap_or("unknown");
                let active = if d.active { "" } else { " (removed)" };
                println!("{} {}  {fpr}  {trust}{active}", d.ns, d.device);
                if let Some(f) = &d.failure {
                    println!("    cannot encrypt to it: {f}");
                }
            }
            Ok(())
        }
        OmemoCmd::Trust { jid, fingerprint } => {
            client
                .omemo_set_trust(account, &jid, &fingerprint, Trust::Verified)
                .await?;
            eprintln!("verified");
            Ok(())
        }
        OmemoCmd::Distrust { jid, fingerprint } => {
            client
                .omemo_set_trust(account, &jid, &fingerprint, Trust::Untrusted)
                .await?;
            eprintln!("untrusted: nothing is encrypted to this key any more");
            Ok(())
        }
        OmemoCmd::On { jid } => {
            client.set_conversation_encryption(account, &jid, true)?;
            eprintln!("messages to {jid} are encrypted from now on");
            Ok(())
        }
        OmemoCmd::Off { jid } => {
            client.set_conversation_encryption(account, &jid, false)?;
            eprintln!("messages to {jid} are sent WITHOUT end-to-end encryption from now on");
            Ok(())
        }
    }
}

fn trust_name(t: Trust) -> &'static str {
    match t {
        Trust::Blind => "trusted (not verified)",
        Trust::Verified => "verified",
        Trust::Untrusted => "untrusted",
        Trust::Undecided => "new key: not trusted until you decide",
    }
}

/// A fingerprint in groups of 8 hex digits, as Conversations (and, for OTR keys, Pidgin)
/// show it.
pub(super) fn pretty(fpr: &str) -> String {
    fpr.as_bytes()
        .chunks(8)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
