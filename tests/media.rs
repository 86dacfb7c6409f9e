//! File sharing (issue 8): XEP-0454 encrypted files checked against an independent
//! implementation (Python `cryptography`, tests/peers/media/aesgcm.py), and HTTP upload
//! (XEP-0363) against Prosody's http_file_share.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, ensure};
use starling_core::crypto::aesgcm::{self, FileKey};

use crate::support;
use crate::support::https::{Act, scripted_server};

fn reference() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/media/aesgcm.py")
}

/// Runs the reference; returns its stdout, or None when it exited 1 (tag mismatch).
fn run_reference(args: &[&str]) -> Result<Option<String>> {
    let out = Command::new(support::peer_python())
        .arg(reference())
        .args(args)
        .output()
        .context("running tests/peers/media/aesgcm.py (scripts/test sets up the venv)")?;
    match out.status.code() {
        Some(0) => Ok(Some(String::from_utf8(out.stdout)?.trim().to_owned())),
        Some(1) => Ok(None),
        _ => anyhow::bail!(
            "aesgcm.py {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

fn path(p: &Path) -> Result<&str> {
    p.to_str().context("non-UTF-8 temp path")
}

#[test]
fn xep0454_files_match_python_cryptography() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let plain: Vec<u8> = (0..200_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    let (plain_file, sealed_file, out_file) = (
        dir.path().join("plain"),
        dir.path().join("sealed"),
        dir.path().join("out"),
    );
    std::fs::write(&plain_file, &plain)?;

    // Starling encrypts, the reference decrypts with the link's fragment.
    let key = FileKey::generate();
    std::fs::write(&sealed_file, key.encrypt(&plain))?;
    let link = aesgcm::link("https://upload.example/f/photo.jpg", &key);
    let fragment = link.rsplit_once('#').context("fragment")?.1.to_owned();
    let opened = run_reference(&["open", &fragment, path(&sealed_file)?, path(&out_file)?])?;
    ensure!(opened.is_some(), "the reference refused Starling's file");
    ensure!(
        std::fs::read(&out_file)? == plain,
        "the reference read other bytes"
    );

    // The reference encrypts, Starling decrypts from the link.
    let fragment =
        run_reference(&["seal", path(&plain_file)?, path(&sealed_file)?])?.context("seal")?;
    let (https, key) = aesgcm::parse_link(&format!("aesgcm://upload.example/f/x.bin#{fragment}"))?;
    ensure!(https == "https://upload.example/f/x.bin");
    ensure!(key.decrypt(&std::fs::read(&sealed_file)?)? == plain);

    // A flipped bit: both refuse.
    let mut sealed = std::fs::read(&sealed_file)?;
    sealed[1000] ^= 0x40;
    ensure!(
        key.decrypt(&sealed).is_err(),
        "Starling took a tampered file"
    );
    std::fs::write(&sealed_file, &sealed)?;
    ensure!(
        run_reference(&["open", &fragment, path(&sealed_file)?, path(&out_file)?])?.is_none(),
        "the reference took a tampered file"
    );
    Ok(())
}

/// The messages a peer received so far and not yet taken (after a server round trip, so
/// everything sent before has arrived).
async fn messages_received(peer: &mut support::Peer) -> Result<Vec<serde_json::Value>> {
    peer.sync().await?;
    Ok(peer
        .take_backlog()
        .into_iter()
        .filter(|e| support::event_name(e) == "message")
        .collect())
}

/// Collects the upload progress events seen so far for `name`: (sent, total).
fn progress_of(
    events: &mut tokio::sync::broadcast::Receiver<starling_core::Event>,
    name: &str,
) -> Vec<(u64, u64)> {
    let mut seen = Vec::new();
    while let Ok(ev) = events.try_recv() {
        if let starling_core::Event::UploadProgress {
            name: n,
            sent,
            total,
            ..
        } = ev
            && n == name
        {
            seen.push((sent, total));
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_and_download_through_prosody() -> Result<()> {
    use crate::node::Node;
    use starling_core::Error;
    let server = support::fresh_server()?;
    let (alice, bob) = (server.account("alice")?, server.account("bob")?);
    let mut a = Node::new(&server, &alice).await?;
    a.online().await?;
    let mut bob_peer = server.peer(&bob).await?;

    let service = a.client.upload_service(&alice.jid).await?;
    ensure!(
        service.jid == starling::testbed::UPLOAD_DOMAIN,
        "{service:?}"
    );
    let limit = service
        .max_size
        .context("Prosody announces its size limit")?;

    let dir = tempfile::tempdir()?;
    let file = dir.path().join("field notes.bin");
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&file, &content)?;

    // Plain: the link is https on the server; what comes back is byte for byte the file.
    let mut events = a.client.events();
    let up = a.client.upload_file(&alice.jid, &file, false).await?;
    ensure!(
        up.url.starts_with("https://localhost:") && !up.encrypted,
        "{up:?}"
    );
    ensure!(up.name == "field notes.bin" && up.size == 300_000, "{up:?}");
    let seen = progress_of(&mut events, "field notes.bin");
    ensure!(
        seen.first() == Some(&(0, 300_000)) && seen.last() == Some(&(300_000, 300_000)),
        "progress {seen:?}"
    );
    let back = a.client.download(&alice.jid, &up.url, 1_000_000).await?;
    ensure!(back == content, "the download differs");

    // Encrypted: the server holds only ciphertext; the aesgcm link opens it.
    let enc = a.client.upload_file(&alice.jid, &file, true).await?;
    ensure!(
        enc.url.starts_with("aesgcm://localhost:") && enc.encrypted,
        "{enc:?}"
    );
    let (https, _) = aesgcm::parse_link(&enc.url)?;
    ensure!(
        !https.contains("field"),
        "the file name must not reach the server: {https}"
    );
    let stored = a.client.download(&alice.jid, &https, 1_000_000).await?;
    ensure!(stored.len() == content.len() + aesgcm::TAG_LEN && stored[..64] != content[..64]);
    ensure!(a.client.download(&alice.jid, &enc.url, 1_000_000).await? == content);

    // Streamed into a folder: decrypted on the way, saved only once the tag verified.
    let saves = dir.path().join("saves");
    std::fs::create_dir(&saves)?;
    let saved = a
        .client
        .download_to(&alice.jid, &enc.url, &saves, 1_000_000)
        .await?;
    ensure!(std::fs::read(&saved)? == content, "{}", saved.display());
    let wrong_key = aesgcm::link(&https, &FileKey::generate());
    match a
        .client
        .download_to(&alice.jid, &wrong_key, &saves, 1_000_000)
        .await
    {
        Err(Error::Upload(why)) => ensure!(why.contains("does not decrypt"), "{why}"),
        other => anyhow::bail!("a file that does not decrypt was saved: {other:?}"),
    }
    ensure!(
        std::fs::read_dir(&saves)?.count() == 1,
        "nothing left behind"
    );

    // A download larger than allowed is refused.
    match a.client.download(&alice.jid, &up.url, 1000).await {
        Err(e @ Error::FileTooLarge { .. }) => ensure!(e.to_string().contains("larger than")),
        other => anyhow::bail!("a capped download went through: {other:?}"),
    }

    // A file message reaches a slixmpp client as the link (plus XEP-0066).
    let sent = a.client.send_file(&alice.jid, &bob.jid, &file).await?;
    let got = bob_peer
        .next_event("message", support::EVENT_TIMEOUT)
        .await?;
    ensure!(
        got["body"] == sent.body.as_str() && sent.body.starts_with("https://"),
        "{got}"
    );
    // ... a link it can use: it downloads the file, verifying TLS with the test CA.
    let fetched = bob_peer
        .command(serde_json::json!({"cmd": "http_get", "url": sent.body}))
        .await?;
    let digest: String = {
        use sha2::Digest as _;
        sha2::Sha256::digest(&content)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    ensure!(
        fetched["size"] == content.len() && fetched["sha256"] == digest.as_str(),
        "{fetched}"
    );

    // Over the limit: refused before anything is sent, with both sizes.
    let big = dir.path().join("big.iso");
    std::fs::File::create(&big)?.set_len(limit + 1)?;
    let before = a.history(&bob.jid)?.len();
    match a.client.send_file(&alice.jid, &bob.jid, &big).await {
        Err(Error::Upload(why)) => ensure!(why.contains("takes files up to"), "{why}"),
        other => anyhow::bail!("an oversized file was accepted: {other:?}"),
    }
    ensure!(a.history(&bob.jid)?.len() == before, "nothing stored");
    a.shutdown().await;
    bob_peer.quit().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_retry_transient_failures_and_give_up_visibly() -> Result<()> {
    use starling_core::proto::upload::Slot;
    use starling_core::services::upload::{self, Source, UploadError};
    use std::sync::Arc;
    let server = support::fresh_server()?;
    let http = upload::client(Some(server.ca_file()))?;
    let body: Arc<Vec<u8>> = Arc::new((0..200_000u32).map(|i| (i % 7) as u8).collect());
    let size = body.len() as u64;
    let no_progress: upload::Progress = Arc::new(|_| true);
    let slot = |port: u16| Slot {
        put: format!("https://localhost:{port}/slot/f.bin"),
        get: format!("https://localhost:{port}/slot/f.bin"),
        headers: vec![("Authorization".into(), "Bearer s3cret".into())],
    };

    // A 503 and a connection cut mid-body, then success: three requests, the file whole.
    let (port, mut seen) =
        scripted_server(&server, vec![Act::Status(503), Act::Drop, Act::Status(201)]).await?;
    upload::put(
        &http,
        &slot(port),
        Source::Bytes(body.clone()),
        size,
        "application/octet-stream",
        no_progress.clone(),
    )
    .await?;
    let mut requests = Vec::new();
    while let Ok(r) = seen.try_recv() {
        requests.push(r);
    }
    ensure!(requests.len() == 3, "{} requests", requests.len());
    for (head, _) in &requests {
        ensure!(head.starts_with("PUT /slot/f.bin "), "{head}");
        ensure!(
            head.to_ascii_lowercase()
                .contains("authorization: bearer s3cret"),
            "{head}"
        );
        ensure!(
            head.to_ascii_lowercase().contains("content-length: 200000"),
            "{head}"
        );
    }
    ensure!(
        requests[2].1 == *body,
        "the last attempt carried the whole file"
    );

    // Always 503: three attempts, then a clear failure.
    let (port, _seen) = scripted_server(&server, vec![Act::Status(503); 3]).await?;
    match upload::put(
        &http,
        &slot(port),
        Source::Bytes(body.clone()),
        size,
        "application/octet-stream",
        no_progress.clone(),
    )
    .await
    {
        Err(UploadError::GaveUp(why)) => ensure!(why.contains("503"), "{why}"),
        other => anyhow::bail!("expected a failure after retries, got {other:?}"),
    }

    // A refusal (403) is final: one request.
    let (port, mut seen) =
        scripted_server(&server, vec![Act::Status(403), Act::Status(201)]).await?;
    match upload::put(
        &http,
        &slot(port),
        Source::Bytes(body.clone()),
        size,
        "application/octet-stream",
        no_progress,
    )
    .await
    {
        Err(UploadError::Refused(403)) => {}
        other => anyhow::bail!("expected the refusal, got {other:?}"),
    }
    let mut n = 0;
    while seen.try_recv().is_ok() {
        n += 1;
    }
    ensure!(n == 1, "{n} requests after a 403");

    // Cancelling stops the upload.
    let (port, _seen) = scripted_server(&server, vec![Act::Status(201)]).await?;
    let cancel: upload::Progress = Arc::new(|sent| sent < 100_000);
    match upload::put(
        &http,
        &slot(port),
        Source::Bytes(body),
        size,
        "application/octet-stream",
        cancel,
    )
    .await
    {
        Err(UploadError::Cancelled | UploadError::GaveUp(_)) => {}
        other => anyhow::bail!("a cancelled upload went on: {other:?}"),
    }
    server.stop()?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_sends_and_downloads_files() -> Result<()> {
    let server = support::fresh_server()?;
    let (alice, bob) = (server.account("alice")?, server.account("bob")?);
    let cli = crate::cli::Cli::new(&server)?;
    cli.add_account(&alice).await?;
    let mut bob_peer = server.peer(&bob).await?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("report 2026.pdf");
    let content: Vec<u8> = b"%PDF-1.7\n"
        .iter()
        .copied()
        .chain((0..150_000u32).map(|i| (i % 101) as u8))
        .collect();
    std::fs::write(&file, &content)?;

    let out = cli
        .command(&["send", "--file", path(&file)?, &bob.jid])
        .output()
        .await?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.success(), "send --file failed: {stderr}");
    ensure!(
        stderr.contains("uploading report 2026.pdf: 100%"),
        "{stderr}"
    );
    let got = bob_peer
        .next_event("message", support::EVENT_TIMEOUT)
        .await?;
    let url = got["body"].as_str().context("body")?.to_owned();
    ensure!(url.starts_with("https://localhost:"), "{got}");

    let into = dir.path().join("downloads");
    std::fs::create_dir(&into)?;
    let first = cli.run(&["download", &url, "--to", path(&into)?]).await?;
    ensure!(
        first.starts_with("saved ") && first.contains("report 2026.pdf"),
        "{first}"
    );
    ensure!(std::fs::read(into.join("report 2026.pdf"))? == content);
    // A second copy never overwrites the first.
    let second = cli.run(&["download", &url, "--to", path(&into)?]).await?;
    ensure!(second.contains("report 2026 (1).pdf"), "{second}");
    // Over --max-mb: refused, nothing saved.
    let err = cli
        .fail(
            &["download", &url, "--to", path(&into)?, "--max-mb", "0"],
            None,
        )
        .await?;
    ensure!(err.contains("larger than"), "{err}");
    ensure!(std::fs::read_dir(&into)?.count() == 2);

    // In a room: `muc send --file`, with its progress; the room gets the link and metadata.
    let room = format!(
        "{}@{}",
        support::unique_name("files"),
        starling::testbed::CONFERENCE_DOMAIN
    );
    bob_peer
        .command(serde_json::json!({"cmd": "muc_join", "room": room, "nick": "Bob"}))
        .await?;
    cli.run(&["muc", "join", &room, "--nick", "Alice"]).await?;
    let out = cli
        .command(&["muc", "send", &room, "--file", path(&file)?])
        .output()
        .await?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.success(), "muc send --file failed: {stderr}");
    ensure!(
        stderr.contains("uploading report 2026.pdf: 100%"),
        "{stderr}"
    );
    let got = bob_peer
        .next_event_matching(
            |e| support::event_name(e) == "groupchat" && !e["oob"].is_null(),
            support::EVENT_TIMEOUT,
        )
        .await?;
    ensure!(
        got["body"] == got["oob"] && got["file"]["name"] == "report 2026.pdf",
        "{got}"
    );

    // A post with an attachment: uploaded first, then linked as an Atom enclosure that
    // anyone can download.
    let posted = cli
        .json(&["blog", "post", "My report", "--attach", path(&file)?])
        .await?;
    let href = posted["enclosures"][0]["href"]
        .as_str()
        .context("an enclosure")?
        .to_owned();
    ensure!(
        posted["enclosures"][0]["media_type"] == "application/pdf"
            && posted["enclosures"][0]["length"] == content.len(),
        "{posted}"
    );
    let listed = cli.run(&["blog", "list", "--offline"]).await?;
    ensure!(listed.contains(&format!("📎 {href}")), "{listed}");
    let third = cli.run(&["download", &href, "--to", path(&into)?]).await?;
    ensure!(third.contains("report 2026 (2).pdf"), "{third}");
    ensure!(std::fs::read(into.join("report 2026 (2).pdf"))? == content);
    bob_peer.quit().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_uploads_resume_or_fail_visibly() -> Result<()> {
    use crate::node::Node;
    use starling_core::store::NewUpload;
    use starling_core::{Event, MessageState};
    let server = support::fresh_server()?;
    let (alice, bob) = (server.account("alice")?, server.account("bob")?);
    let mut bob_peer = server.peer(&bob).await?;
    let mut a = Node::new(&server, &alice).await?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("left behind.txt");
    std::fs::write(&file, b"sent after the restart")?;

    // As a crash mid-upload leaves them: two pending file messages, one whose file is gone.
    let acc = a.client.store().account(&alice.jid)?;
    let sender = format!("{}/{}", acc.jid, acc.resource);
    let store = a.client.store().clone();
    let base = NewUpload {
        peer: &bob.jid,
        sender: &sender,
        id: "up-1",
        name: "left behind.txt",
        path: path(&file)?,
        encrypt: false,
        kind: starling_core::store::MessageKind::Chat,
        media_type: Some("text/plain"),
        size: 22,
    };
    let kept = store.queue_upload(acc.id, &base)?;
    let missing = dir.path().join("gone.txt");
    let gone = store.queue_upload(
        acc.id,
        &NewUpload {
            id: "up-2",
            name: "gone.txt",
            path: path(&missing)?,
            ..base
        },
    )?;

    // Online: the first is uploaded and sent, the second fails with why.
    a.online().await?;
    let (mut done, mut failed) = (None, None);
    while done.is_none() || failed.is_none() {
        let m = a
            .wait_for("the uploads' outcome", |e| match e {
                Event::MessageUpdated { message, .. } => Some(message.clone()),
                _ => None,
            })
            .await?;
        if m.id == kept.id && m.body.starts_with("https://") {
            done = Some(m);
        } else if m.id == gone.id && m.state == MessageState::Failed {
            failed = Some(m);
        }
    }
    let url = done.context("sent")?.body;
    let got = bob_peer
        .next_event("message", support::EVENT_TIMEOUT)
        .await?;
    ensure!(got["body"] == url.as_str(), "{got}");
    let failed = failed.context("failed")?;
    ensure!(
        failed
            .error
            .as_deref()
            .is_some_and(|e| e.contains("cannot read")),
        "{failed:?}"
    );
    ensure!(store.pending_uploads(acc.id)?.is_empty());
    // Exactly one message reached Bob.
    let extra = messages_received(&mut bob_peer).await?;
    ensure!(extra.is_empty(), "sent twice: {extra:?}");
    a.shutdown().await;
    bob_peer.quit().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_files_between_two_starlings() -> Result<()> {
    use crate::node::Node;
    use starling_core::store::Encryption;
    let server = support::fresh_server()?;
    let (alice, bob) = (server.account("alice")?, server.account("bob")?);
    server.befriend(&alice.jid, &bob.jid)?;
    let mut a = Node::new(&server, &alice).await?;
    let mut b = Node::new(&server, &bob).await?;
    a.online().await?;
    b.online().await?;
    a.client.omemo_publish(&alice.jid).await?;
    b.client.omemo_publish(&bob.jid).await?;
    a.client
        .set_conversation_encryption(&alice.jid, &bob.jid, true)?;

    let dir = tempfile::tempdir()?;
    let file = dir.path().join("secret plan.png");
    let content: Vec<u8> = (0..120_000u32).map(|i| (i % 199) as u8).collect();
    std::fs::write(&file, &content)?;
    let sent = a.client.send_file(&alice.jid, &bob.jid, &file).await?;
    ensure!(sent.body.starts_with("aesgcm://"), "{sent:?}");
    ensure!(
        matches!(
            sent.encryption,
            Some(Encryption::Omemo | Encryption::Omemo2)
        ),
        "{sent:?}"
    );
    let got = b.wait_message(&sent.body).await?;
    ensure!(got.encryption.is_some(), "{got:?}");
    ensure!(b.client.download(&bob.jid, &got.body, 1_000_000).await? == content);
    // Bob's client knows it as an encrypted file (no metadata travelled outside the
    // encryption) and fetches it decrypted.
    let file = got.attachment.clone().context("a file message")?;
    ensure!(
        file.encrypted() && file.name.ends_with(".png") && file.size.is_none(),
        "{file:?}"
    );
    let done = b
        .client
        .fetch_attachment(&bob.jid, got.id, 1_000_000)
        .await?;
    let local = done
        .attachment
        .and_then(|f| f.local_path)
        .context("fetched")?;
    ensure!(std::fs::read(local)? == content);
    a.shutdown().await;
    b.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photos_lose_their_location_but_not_their_orientation() -> Result<()> {
    use crate::node::Node;
    use starling_core::services::media;
    let server = support::fresh_server()?;
    let alice = server.account("alice")?;
    let mut a = Node::new(&server, &alice).await?;
    a.online().await?;
    let dir = tempfile::tempdir()?;
    let photo = dir.path().join("IMG_0001.jpg");
    let original = media::sample::jpeg_with_location(64, 32);
    ensure!(media::jpeg_has_exif(&original));
    std::fs::write(&photo, &original)?;
    for encrypt in [false, true] {
        let up = a.client.upload_file(&alice.jid, &photo, encrypt).await?;
        ensure!(up.media_type == "image/jpeg", "{up:?}");
        let got = a.client.download(&alice.jid, &up.url, 1_000_000).await?;
        ensure!(!media::jpeg_has_exif(&got), "the EXIF (GPS) went up");
        let img = image::load_from_memory(&got)?;
        ensure!(
            (img.width(), img.height()) == (32, 64),
            "turned as the EXIF said"
        );
        ensure!(up.size == got.len() as u64);
    }
    ensure!(
        std::fs::read(&photo)? == original,
        "the user's file is untouched"
    );
    a.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_upload_sends_nothing() -> Result<()> {
    use crate::node::Node;
    use starling_core::{Event, MessageState};
    let server = support::fresh_server()?;
    let (alice, bob) = (server.account("alice")?, server.account("bob")?);
    let mut bob_peer = server.peer(&bob).await?;
    let mut a = Node::new(&server, &alice).await?;
    a.online().await?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("holiday.mov");
    std::fs::write(&file, vec![7u8; 8_000_000])?;

    let client = a.client.clone();
    let (account, to, path) = (alice.jid.clone(), bob.jid.clone(), file.clone());
    let sending = tokio::spawn(async move { client.send_file(&account, &to, &path).await });
    // The pending message shows first; once bytes flow, the user cancels.
    let pending = a
        .wait_for("the pending file message", |e| match e {
            Event::Message { message, .. } if message.state == MessageState::Pending => {
                Some(message.clone())
            }
            _ => None,
        })
        .await?;
    ensure!(pending.body == "holiday.mov", "{pending:?}");
    a.wait_for("bytes on the way", |e| match e {
        Event::UploadProgress { sent, .. } if *sent > 0 => Some(()),
        _ => None,
    })
    .await?;
    ensure!(
        a.client.cancel_upload(&alice.jid, pending.id)?,
        "it was running"
    );
    let result = sending.await?;
    ensure!(result.is_err(), "{result:?}");
    let stored = a
        .history(&bob.jid)?
        .into_iter()
        .find(|m| m.id == pending.id)
        .context("the message stays")?;
    ensure!(
        stored.state == MessageState::Failed
            && stored
                .error
                .as_deref()
                .is_some_and(|e| e.contains("cancelled")),
        "{stored:?}"
    );
    ensure!(
        !a.client.cancel_upload(&alice.jid, pending.id)?,
        "nothing left to cancel"
    );
    let got = messages_received(&mut bob_peer).await?;
    ensure!(got.is_empty(), "sent after cancel: {got:?}");
    a.shutdown().await;
    bob_peer.quit().await?;
    Ok(())
}

/// A `w`×`h` PNG picture.
fn png(w: u32, h: u32) -> Result<Vec<u8>> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)?;
    Ok(out.into_inner())
}

/// Waits until message `id` changes and its file is on this machine.
async fn fetched(
    node: &mut crate::node::Node,
    id: i64,
) -> Result<starling_core::store::MessageRecord> {
    node.wait_for("the file fetched", |e| match e {
        starling_core::Event::MessageUpdated { message, .. }
            if message.id == id
                && message
                    .attachment
                    .as_ref()
                    .is_some_and(|a| a.local_path.is_some()) =>
        {
            Some(message.clone())
        }
        _ => None,
    })
    .await
}

/// Files shared the way Conversations (link + XEP-0066) and Dino (XEP-0447 metadata) share
/// them arrive as files: pictures from contacts are fetched by themselves and get a
/// thumbnail; other files wait for a click; names from others are made safe; a link someone
/// typed stays text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_files_arrive_as_files() -> Result<()> {
    use crate::node::Node;
    use base64::Engine as _;
    let server = support::fresh_server()?;
    let (alice, bob) = (server.account("alice")?, server.account("bob")?);
    server.befriend(&alice.jid, &bob.jid)?;
    let mut a = Node::new(&server, &alice).await?;
    a.client
        .set_auto_download(starling_core::DEFAULT_AUTO_DOWNLOAD);
    a.online().await?;
    let mut bob_peer = server.peer(&bob).await?;

    // Files on the server (put there by Alice's client: any client's upload would do).
    let dir = tempfile::tempdir()?;
    let picture = dir.path().join("sunset.png");
    let picture_bytes = png(640, 320)?;
    std::fs::write(&picture, &picture_bytes)?;
    let report = dir.path().join("report.pdf");
    let report_bytes: Vec<u8> = b"%PDF-1.7\n".iter().copied().chain(0..=255u8).collect();
    std::fs::write(&report, &report_bytes)?;
    let picture_url = a.client.upload_file(&alice.jid, &picture, false).await?.url;
    let report_url = a.client.upload_file(&alice.jid, &report, false).await?.url;
    let send_raw = |xml: String| serde_json::json!({"cmd": "raw", "xml": xml});

    // Conversations: the link as body and in <x xmlns='jabber:x:oob'/>.
    bob_peer
        .command(send_raw(format!(
            "<message to='{}' type='chat' id='c1'><body>{picture_url}</body>\
             <x xmlns='jabber:x:oob'><url>{picture_url}</url></x></message>",
            alice.jid
        )))
        .await?;
    let got = a.wait_message(&picture_url).await?;
    let file = got.attachment.clone().context("a file message")?;
    ensure!(file.name == "sunset.png" && file.is_image(), "{file:?}");
    // A picture from a contact: fetched by itself, byte for byte, into the profile.
    let done = fetched(&mut a, got.id).await?;
    let local = PathBuf::from(
        done.attachment
            .and_then(|f| f.local_path)
            .context("local")?,
    );
    ensure!(
        local.starts_with(a.client.files_dir()),
        "{}",
        local.display()
    );
    ensure!(std::fs::read(&local)? == picture_bytes);
    let thumb = a
        .client
        .attachment_thumbnail(&alice.jid, got.id)
        .await?
        .context("a thumbnail")?;
    let thumb = image::load_from_memory(&thumb)?;
    ensure!(
        (thumb.width(), thumb.height()) == (320, 160),
        "{}x{}",
        thumb.width(),
        thumb.height()
    );

    // Dino: XEP-0447 with the metadata (and a hostile name); not a picture: not fetched
    // until asked.
    let tiny = base64::engine::general_purpose::STANDARD.encode(png(4, 4)?);
    bob_peer
        .command(send_raw(format!(
            "<message to='{}' type='chat' id='d1'><body>{report_url}</body>\
             <file-sharing xmlns='urn:xmpp:sfs:0' disposition='attachment'>\
             <file xmlns='urn:xmpp:file:metadata:0'><media-type>application/pdf</media-type>\
             <name>../../.bashrc/report.pdf</name><size>{}</size>\
             <thumbnail xmlns='urn:xmpp:thumbs:1' uri='data:image/png;base64,{tiny}'/></file>\
             <sources><url-data xmlns='http://jabber.org/protocol/url-data' target='{report_url}'/>\
             </sources></file-sharing></message>",
            alice.jid,
            report_bytes.len()
        )))
        .await?;
    let got = a.wait_message(&report_url).await?;
    let file = got.attachment.clone().context("a file message")?;
    ensure!(
        !file.name.contains('/') && file.name.ends_with("report.pdf"),
        "{file:?}"
    );
    ensure!(
        file.media_type.as_deref() == Some("application/pdf")
            && file.size == Some(report_bytes.len() as u64)
            && file.has_preview
            && !file.is_image(),
        "{file:?}"
    );
    // The sender's preview stands in until the file is here.
    let preview = a.client.attachment_thumbnail(&alice.jid, got.id).await?;
    ensure!(preview.is_some_and(|p| image::load_from_memory(&p).is_ok()));
    // A typed link is text (and the end of what Bob sent: the PDF was not fetched).
    bob_peer
        .command(send_raw(format!(
            "<message to='{}' type='chat' id='t1'><body>{report_url}?typed</body></message>",
            alice.jid
        )))
        .await?;
    let typed = a.wait_message(&format!("{report_url}?typed")).await?;
    ensure!(typed.attachment.is_none(), "{typed:?}");
    let still = a
        .history(&bob.jid)?
        .into_iter()
        .find(|m| m.id == got.id)
        .context("kept")?;
    ensure!(
        still
            .attachment
            .as_ref()
            .is_some_and(|f| f.local_path.is_none()),
        "a file that is not a picture was fetched by itself: {still:?}"
    );
    let done = a
        .client
        .fetch_attachment(&alice.jid, got.id, starling_core::DEFAULT_DOWNLOAD_LIMIT)
        .await?;
    let local = PathBuf::from(
        done.attachment
            .and_then(|f| f.local_path)
            .context("local")?,
    );
    ensure!(
        local.parent() == Some(a.client.files_dir().as_path()),
        "{}",
        local.display()
    );
    ensure!(std::fs::read(&local)? == report_bytes);

    // A file bigger than its message announced is refused, said so on the message, and
    // nothing is saved.
    bob_peer
        .command(send_raw(format!(
            "<message to='{}' type='chat' id='l1'><body>{report_url}</body>\
             <file-sharing xmlns='urn:xmpp:sfs:0'><file xmlns='urn:xmpp:file:metadata:0'>\
             <name>small.pdf</name><size>10</size></file><sources>\
             <url-data xmlns='http://jabber.org/protocol/url-data' target='{report_url}'/>\
             </sources></file-sharing></message>",
            alice.jid
        )))
        .await?;
    let liar = a
        .wait_for("the understated file", |e| match e {
            starling_core::Event::Message { message, .. }
                if message
                    .attachment
                    .as_ref()
                    .is_some_and(|f| f.name == "small.pdf") =>
            {
                Some(message.clone())
            }
            _ => None,
        })
        .await?;
    let files_before = std::fs::read_dir(a.client.files_dir())?.count();
    match a
        .client
        .fetch_attachment(&alice.jid, liar.id, starling_core::DEFAULT_DOWNLOAD_LIMIT)
        .await
    {
        Err(e @ starling_core::Error::FileTooLarge { .. }) => {
            ensure!(
                e.to_string().contains("larger than the 10 bytes allowed"),
                "{e}"
            )
        }
        other => anyhow::bail!("an understated file was fetched: {other:?}"),
    }
    let kept = a
        .history(&bob.jid)?
        .into_iter()
        .find(|m| m.id == liar.id)
        .context("kept")?;
    ensure!(
        kept.attachment.is_some_and(
            |f| f.local_path.is_none() && f.error.is_some_and(|e| e.contains("larger than"))
        ),
        "the failure is on the message"
    );
    ensure!(
        std::fs::read_dir(a.client.files_dir())?.count() == files_before,
        "nothing saved"
    );
    a.shutdown().await;
    bob_peer.quit().await?;
    Ok(())
}

/// What Starling sends with a file: the link, XEP-0066, and XEP-0447 metadata (name, size,
/// type, dimensions, a tiny preview) that Dino shows; the file shows on our side at once,
/// from the local copy. In a room too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sent_files_carry_their_metadata() -> Result<()> {
    use crate::node::Node;
    use starling_core::RoomConfig;
    let server = support::fresh_server()?;
    let (alice, bob) = (server.account("alice")?, server.account("bob")?);
    let mut a = Node::new(&server, &alice).await?;
    a.online().await?;
    let mut bob_peer = server.peer(&bob).await?;
    let dir = tempfile::tempdir()?;
    let picture = dir.path().join("kitten.png");
    std::fs::write(&picture, png(300, 200)?)?;

    let mut events = a.client.events();
    let sent = a.client.send_file(&alice.jid, &bob.jid, &picture).await?;
    // The pending message already had the file (for the bubble and its progress).
    let pending = loop {
        match events.recv().await? {
            starling_core::Event::Message { message, .. } if message.id == sent.id => {
                break message;
            }
            _ => {}
        }
    };
    let pending_file = pending
        .attachment
        .context("the pending message shows the file")?;
    ensure!(
        pending_file.url.is_empty()
            && pending_file.local_path.as_deref() == Some(path(&picture)?)
            && pending_file.media_type.as_deref() == Some("image/png"),
        "{pending_file:?}"
    );
    let file = sent.attachment.clone().context("sent with its file")?;
    ensure!(
        file.url == sent.body && (file.width, file.height) == (Some(300), Some(200)),
        "{file:?}"
    );

    let got = bob_peer
        .next_event("message", support::EVENT_TIMEOUT)
        .await?;
    ensure!(
        got["body"] == sent.body.as_str() && got["oob"] == sent.body.as_str(),
        "{got}"
    );
    let meta = &got["file"];
    ensure!(
        meta["name"] == "kitten.png"
            && meta["media_type"] == "image/png"
            && meta["width"] == 300
            && meta["height"] == 200
            && meta["sources"][0] == sent.body.as_str()
            && meta["thumbnail"]
                .as_str()
                .is_some_and(|t| t.starts_with("data:image/png;base64,")),
        "{got}"
    );

    // In a room: the same, as a group chat message.
    let room = format!(
        "{}@{}",
        support::unique_name("files"),
        starling::testbed::CONFERENCE_DOMAIN
    );
    a.client
        .create_room(&alice.jid, &room, Some("Alice"), RoomConfig::default())
        .await?;
    bob_peer
        .command(serde_json::json!({"cmd": "muc_join", "room": room, "nick": "Bob"}))
        .await?;
    let in_room = a.client.send_room_file(&alice.jid, &room, &picture).await?;
    let got = bob_peer
        .next_event_matching(
            |e| support::event_name(e) == "groupchat" && e["body"] == in_room.body.as_str(),
            support::EVENT_TIMEOUT,
        )
        .await?;
    ensure!(
        got["oob"] == in_room.body.as_str() && got["file"]["name"] == "kitten.png",
        "{got}"
    );
    a.wait_state(in_room.id, starling_core::MessageState::Delivered)
        .await?;
    a.shutdown().await;
    bob_peer.quit().await?;
    Ok(())
}
