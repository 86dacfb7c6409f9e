//! OTR in chats, over a real Prosody: Starling (alice) and libotr 4.1, the reference
//! implementation (tests/peers/otr/peer.c), as bob. Bob's XMPP client is the slixmpp peer:
//! it carries libotr's wire messages to alice and hands what alice sends to libotr. Checked:
//! the key exchange started by either side, messages both ways (also the pattern otrr
//! 0.7.4 got wrong), libotr's fragments, identity verification (SMP) started by each side
//! with the right and with a wrong secret, ending, the sticky OTR state, that the archive keeps no
//! copy of what Starling sends, and that OTR messages in the archive stay unreadable
//! explained entries on another device.

use anyhow::{Context as _, Result, bail, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::json;
use starling_core::crypto::otr::OtrStatus;
use starling_core::store::Encryption;
use starling_core::{Error, Event};

use crate::node::Node;
use crate::otr::{LibOtr, Out};
use crate::support::{self, EVENT_TIMEOUT, Peer};

/// Bob: a slixmpp client carrying libotr's messages.
struct Bob {
    peer: Peer,
    libotr: LibOtr,
    alice: String,
    /// libotr's output other than wire messages, oldest first.
    log: Vec<Out>,
}

impl Bob {
    /// Runs a libotr command and sends its wire messages to alice; returns how many.
    async fn otr(&mut self, command: &str) -> Result<usize> {
        let out = tokio::task::block_in_place(|| self.libotr.cmd(command))?;
        let mut sent = 0;
        for line in out {
            match line {
                Out::Wire(body) => {
                    self.peer
                        .command(json!({"cmd": "send", "to": self.alice, "body": body}))
                        .await?;
                    sent += 1;
                }
                Out::Event(e) if e.starts_with("LOG_HEARTBEAT") => {}
                other => self.log.push(other),
            }
        }
        Ok(sent)
    }

    async fn say(&mut self, text: &str) -> Result<usize> {
        self.otr(&format!("send {}", B64.encode(text))).await
    }

    /// Hands the next message alice sent to libotr; returns its body as it travelled.
    async fn take(&mut self) -> Result<String> {
        let ev = self.peer.next_event("message", EVENT_TIMEOUT).await?;
        let body = ev["body"]
            .as_str()
            .context("message without body")?
            .to_owned();
        self.otr(&format!("recv {}", B64.encode(&body))).await?;
        Ok(body)
    }

    /// Carries alice's messages to libotr until libotr reports what `want` matches.
    async fn until(&mut self, what: &str, want: impl Fn(&Out) -> bool) -> Result<Out> {
        for _ in 0..20 {
            if let Some(at) = self.log.iter().position(&want) {
                return Ok(self.log.remove(at));
            }
            self.take()
                .await
                .with_context(|| format!("waiting for libotr: {what}; it said {:?}", self.log))?;
        }
        bail!("libotr never reported {what}; it said {:?}", self.log)
    }

    async fn fingerprint(&mut self, command: &str) -> Result<String> {
        match tokio::task::block_in_place(|| self.libotr.cmd(command))?.as_slice() {
            [Out::Fingerprint(f)] => Ok(f.clone()),
            other => bail!("libotr answered {command} with {other:?}"),
        }
    }
}

fn plain(text: &str) -> impl Fn(&Out) -> bool + '_ {
    move |o| matches!(o, Out::Plain { enc: true, text: t } if t == text)
}

async fn wait_otr_status(a: &mut Node, want: OtrStatus) -> Result<(Option<String>, bool)> {
    a.wait_for(&format!("OTR {want:?}"), |e| match e {
        Event::OtrStatus {
            status,
            fingerprint,
            verified,
            ..
        } if *status == want => Some((fingerprint.clone(), *verified)),
        _ => None,
    })
    .await
}

async fn wait_smp_result(a: &mut Node) -> Result<bool> {
    a.wait_for("SMP result", |e| match e {
        Event::OtrSmpResult { verified, .. } => Some(*verified),
        _ => None,
    })
    .await
}

/// Bob, online, with a libotr fragmenting at 140 characters, talking to `alice`.
async fn bob(server: &support::TestServer, alice: &str) -> Result<Bob> {
    let bob = server.account("bob")?;
    let peer = server.peer(&bob).await?;
    let libotr = tokio::task::block_in_place(|| LibOtr::spawn_as(&bob.jid, alice, 140))?;
    Ok(Bob {
        peer,
        libotr,
        alice: alice.to_owned(),
        log: Vec::new(),
    })
}

/// Alice (Starling) and bob, online.
async fn setup(server: &support::TestServer) -> Result<(Node, Bob, support::Account)> {
    let alice = server.account("alice")?;
    let mut a = Node::new(server, &alice).await?;
    a.online().await?;
    let b = bob(server, &alice.jid).await?;
    Ok((a, b, alice))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otr_with_libotr_through_the_server() -> Result<()> {
    let server = support::fresh_server()?;
    let (mut a, mut b, account) = setup(&server).await?;
    let (alice, bob) = (a.jid.clone(), b.peer.jid.clone());

    // Alice starts: her query goes out, libotr answers with the key exchange.
    a.client.otr_start(&alice, &bob).await?;
    b.until("encrypted", |o| *o == Out::Status("encrypted".into()))
        .await?;
    let (fpr, verified) = wait_otr_status(&mut a, OtrStatus::Encrypted).await?;
    ensure!(
        fpr.as_deref() == Some(b.fingerprint("fingerprint").await?.as_str()),
        "alice sees bob's key as {fpr:?}"
    );
    ensure!(!verified);
    ensure!(
        b.fingerprint("peer_fingerprint").await? == a.client.otr_fingerprint(&alice).await?,
        "libotr sees another key for alice"
    );
    ensure!(a.client.conversation_encryption(&alice, &bob)? == Some(Encryption::Otr));

    // Both ways, and libotr sending twice before and after alice's reply (the receive
    // counter pattern).
    let sent = a.send(&bob, "hello libotr").await?;
    ensure!(sent.encryption == Some(Encryption::Otr), "{sent:?}");
    b.until("hello", plain("hello libotr")).await?;
    for text in ["one", "two"] {
        b.say(text).await?;
        let got = a.wait_message(text).await?;
        ensure!(got.encryption == Some(Encryption::Otr) && got.undecryptable.is_none());
    }
    a.send(&bob, "three").await?;
    b.until("three", plain("three")).await?;
    b.say("four").await?;
    ensure!(a.wait_message("four").await?.encryption == Some(Encryption::Otr));

    // libotr fragments a long message; alice reassembles it.
    let long: String = (0..60).map(|i| format!("word{i} ")).collect();
    let fragments = b.say(&long).await?;
    ensure!(fragments > 1, "libotr sent {fragments} message(s)");
    ensure!(a.wait_message(&long).await?.encryption == Some(Encryption::Otr));

    // Identity verification started by libotr, right secret: both sides verified.
    b.otr(&format!(
        "smp {} {}",
        B64.encode("our first pet?"),
        B64.encode("rex")
    ))
    .await?;
    let question = a
        .wait_for("SMP question", |e| match e {
            Event::OtrSmpQuestion { question, .. } => Some(question.clone()),
            _ => None,
        })
        .await?;
    ensure!(question.as_deref() == Some("our first pet?"));
    a.client.otr_smp_answer(&alice, &bob, "rex").await?;
    b.until("SMP success", |o| *o == Out::SmpResult("success".into()))
        .await?;
    ensure!(wait_smp_result(&mut a).await?, "alice: SMP failed");
    let info = a.client.otr_status(&alice, &bob).await?;
    ensure!(
        info.verified && info.status == OtrStatus::Encrypted,
        "{info:?}"
    );

    // Started by alice with a wrong secret: both sides see the failure.
    a.client
        .otr_smp_start(&alice, &bob, Some("town?"), "paris")
        .await?;
    b.until("SMP question", |o| {
        *o == Out::SmpQuestion(Some("town?".into()))
    })
    .await?;
    b.otr(&format!("smp_answer {}", B64.encode("rome"))).await?;
    b.until("SMP failure", |o| *o == Out::SmpResult("failure".into()))
        .await?;
    ensure!(
        !wait_smp_result(&mut a).await?,
        "alice: a wrong secret verified"
    );

    // And the other two: alice asks with the right secret, libotr with a wrong one.
    a.client
        .otr_smp_start(&alice, &bob, None, "blue door")
        .await?;
    b.until("SMP question", |o| *o == Out::SmpQuestion(None))
        .await?;
    b.otr(&format!("smp_answer {}", B64.encode("blue door")))
        .await?;
    b.until("SMP success", |o| *o == Out::SmpResult("success".into()))
        .await?;
    ensure!(
        wait_smp_result(&mut a).await?,
        "alice: the right secret failed"
    );
    b.otr(&format!("smp - {}", B64.encode("green"))).await?;
    a.wait_for("SMP question", |e| {
        matches!(e, Event::OtrSmpQuestion { question: None, .. }).then_some(())
    })
    .await?;
    a.client.otr_smp_answer(&alice, &bob, "red").await?;
    b.until("SMP failure", |o| *o == Out::SmpResult("failure".into()))
        .await?;
    ensure!(
        !wait_smp_result(&mut a).await?,
        "alice: a wrong answer verified"
    );

    // Bob's archive has no copy of what alice sent (no-store hints), not even encrypted.
    b.peer.command(json!({"cmd": "mam", "with": alice})).await?;
    let archived: Vec<_> = b
        .peer
        .take_backlog()
        .into_iter()
        .filter(|e| {
            support::event_name(e) == "mam_message"
                && e["from"].as_str().is_some_and(|f| f.starts_with(&alice))
        })
        .collect();
    ensure!(archived.is_empty(), "archived: {archived:?}");

    // Alice's second device catches up from her archive: bob's OTR messages (libotr adds
    // no hints) are there, shown as explained entries; key exchange traffic is not.
    let mut a2 = Node::new(&server, &account).await?;
    a2.online().await?;
    let history = a2.history(&bob)?;
    let from_bob: Vec<_> = history.iter().filter(|m| !m.outgoing).collect();
    ensure!(from_bob.len() >= 5, "{history:#?}");
    for m in &from_bob {
        ensure!(
            m.encryption == Some(Encryption::Otr)
                && m.body.is_empty()
                && m.undecryptable
                    .as_deref()
                    .is_some_and(|r| r.contains("can only be read live")),
            "{m:?}"
        );
    }
    a2.shutdown().await;

    // Bob ends: alice may not write unencrypted until she ends it too.
    b.otr("end").await?;
    wait_otr_status(&mut a, OtrStatus::Finished).await?;
    match a.client.send_message(&alice, &bob, "oops").await {
        Err(Error::NotEncryptable { reason, .. }) => {
            ensure!(reason.contains("ended"), "{reason}")
        }
        other => bail!("sent after bob ended OTR: {other:?}"),
    }
    a.client.otr_end(&alice, &bob).await?;
    wait_otr_status(&mut a, OtrStatus::Plaintext).await?;
    ensure!(a.client.conversation_encryption(&alice, &bob)?.is_none());
    a.send(&bob, "in the clear now").await?;
    b.until(
        "plaintext",
        |o| matches!(o, Out::Plain { enc: false, text } if text == "in the clear now"),
    )
    .await?;
    a.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otr_started_by_libotr_and_bad_messages() -> Result<()> {
    let server = support::fresh_server()?;
    let (mut a, mut b, _) = setup(&server).await?;
    let (alice, bob) = (a.jid.clone(), b.peer.jid.clone());

    // Before any OTR, the conversation is plaintext and sending works.
    ensure!(a.client.otr_status(&alice, &bob).await?.status == OtrStatus::Plaintext);

    // Bob starts: alice's Starling answers the query by itself (making its key first).
    b.otr("start").await?;
    b.until("encrypted", |o| *o == Out::Status("encrypted".into()))
        .await?;
    wait_otr_status(&mut a, OtrStatus::Encrypted).await?;
    ensure!(a.client.conversation_encryption(&alice, &bob)? == Some(Encryption::Otr));
    b.say("hi alice").await?;
    ensure!(a.wait_message("hi alice").await?.encryption == Some(Encryption::Otr));
    a.send(&bob, "hi bob").await?;
    b.until("hi bob", plain("hi bob")).await?;

    // A corrupt data message is a visible, explained entry, and the session survives.
    b.peer
        .command(json!({"cmd": "send", "to": alice, "body": "?OTR:AAMDgarbage."}))
        .await?;
    let entry = a
        .wait_for("OTR problem entry", |e| match e {
            Event::Message { message, .. }
                if !message.outgoing && message.undecryptable.is_some() =>
            {
                Some(message.clone())
            }
            _ => None,
        })
        .await?;
    ensure!(entry.encryption == Some(Encryption::Otr), "{entry:?}");
    b.say("still here").await?;
    ensure!(a.wait_message("still here").await?.encryption == Some(Encryption::Otr));

    // A correction would carry new text in the clear: refused in an OTR conversation.
    match a.client.correct_last_message(&alice, &bob, "hi bob!").await {
        Err(Error::NotEncryptable { .. }) => {}
        other => bail!("correction in an OTR conversation: {other:?}"),
    }
    a.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_otr_chat_with_libotr() -> Result<()> {
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
    let server = support::fresh_server()?;
    let alice = server.account("alice")?;
    let cli = crate::cli::Cli::new(&server)?;
    cli.add_account(&alice).await?;
    let mut b = bob(&server, &alice.jid).await?;
    let bob = b.peer.jid.clone();

    let mut child = cli
        .command(&["--json", "otr", "chat", &bob])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().context("stdin")?;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().context("stdout")?).lines();
    let mut next_event =
        async |pred: &dyn Fn(&serde_json::Value) -> bool| -> Result<serde_json::Value> {
            loop {
                let line = tokio::time::timeout(EVENT_TIMEOUT, lines.next_line())
                    .await
                    .context("otr chat printed nothing in time")??
                    .context("otr chat exited")?;
                let v: serde_json::Value =
                    serde_json::from_str(&line).with_context(|| format!("not JSON: {line}"))?;
                if pred(&v) {
                    return Ok(v);
                }
            }
        };

    b.until("encrypted", |o| *o == Out::Status("encrypted".into()))
        .await?;
    next_event(&|v| v["event"] == "otr_status" && v["status"] == "encrypted").await?;
    stdin.write_all(b"hello from the terminal\n").await?;
    b.until("hello", plain("hello from the terminal")).await?;
    b.say("hi terminal").await?;
    let m =
        next_event(&|v| v["event"] == "message" && v["message"]["body"] == "hi terminal").await?;
    ensure!(m["message"]["encryption"] == "otr", "{m}");

    // Verifying bob: the question and the secret are read from the next lines.
    stdin.write_all(b"/smp\nfavourite colour?\nteal\n").await?;
    b.until("SMP question", |o| {
        *o == Out::SmpQuestion(Some("favourite colour?".into()))
    })
    .await?;
    b.otr(&format!("smp_answer {}", B64.encode("teal"))).await?;
    b.until("SMP success", |o| *o == Out::SmpResult("success".into()))
        .await?;
    let r = next_event(&|v| v["event"] == "otr_smp_result").await?;
    ensure!(r["verified"] == true, "{r}");

    stdin.write_all(b"/end\n").await?;
    let exit = tokio::time::timeout(EVENT_TIMEOUT, child.wait()).await??;
    ensure!(exit.success(), "otr chat ended with {exit}");
    b.until("finished", |o| *o == Out::Status("finished".into()))
        .await?;

    let keys = cli.json(&["otr", "fingerprints", &bob]).await?;
    let bob_fpr = b.fingerprint("fingerprint").await?.replace(' ', "");
    ensure!(
        keys.as_array().is_some_and(|k| k
            .iter()
            .any(|k| k["fingerprint"] == bob_fpr.as_str() && k["verified"] == true)),
        "{keys}"
    );
    Ok(())
}
