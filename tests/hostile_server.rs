//! A hostile (or broken) server: a TLS man-in-the-middle, trusted through the test CA,
//! injects malformed XML into the server-to-client stream. The client must survive,
//! reconnect, store nothing from the garbage, and lose nothing of its own.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, ensure};
use starling_core::connection::TlsMode;
use starling_core::{ConnectionState, Event, MessageState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, mpsc};
use tokio_rustls::rustls;

use crate::node::{Node, options_via};
use crate::reliability::bodies_until;
use crate::support;

/// Relays client <-> Prosody (direct TLS on both sides) and lets the test inject bytes into
/// the current connection's server-to-client direction.
struct Mitm {
    port: u16,
    inject: Arc<Mutex<Option<mpsc::Sender<Vec<u8>>>>>,
    controls: Arc<Controls>,
}

/// Knobs for the client-to-server direction.
#[derive(Default)]
struct Controls {
    /// Swallow everything the client sends (the server never sees it).
    blackhole: AtomicBool,
    /// Corrupt XEP-0198 `<resume previd=…>` so the server refuses the resumption.
    break_resume: AtomicBool,
    /// Notified to cut the current connection.
    cut: tokio::sync::Notify,
    /// Notified when the blackhole swallowed client data.
    swallowed: tokio::sync::Notify,
    /// Notified when a new client connection is accepted.
    connected: tokio::sync::Notify,
}

fn pem_chain(path: &std::path::Path) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>> {
    let mut r = std::io::BufReader::new(std::fs::File::open(path)?);
    Ok(rustls_pemfile::certs(&mut r).collect::<Result<_, _>>()?)
}

impl Mitm {
    async fn start(server: &starling::testbed::Prosody) -> Result<Mitm> {
        let certs = server.ca_file().parent().context("certs dir")?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(std::fs::File::open(
            certs.join("localhost.key"),
        )?))?
        .context("no server key")?;
        let server_cfg = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(pem_chain(&certs.join("localhost.crt"))?, key)?;
        let mut roots = rustls::RootCertStore::empty();
        for c in pem_chain(server.ca_file())? {
            roots.add(c)?;
        }
        let client_cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_cfg));
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client_cfg));
        let upstream = server.direct_tls_port();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let inject: Arc<Mutex<Option<mpsc::Sender<Vec<u8>>>>> = Arc::new(Mutex::new(None));
        let slot = inject.clone();
        let controls = Arc::new(Controls::default());
        let ctl = controls.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (tx, rx) = mpsc::channel(8);
                *slot.lock().await = Some(tx);
                ctl.connected.notify_one();
                let (acceptor, connector, ctl) = (acceptor.clone(), connector.clone(), ctl.clone());
                tokio::spawn(async move {
                    if let Err(e) = relay(tcp, acceptor, connector, upstream, rx, ctl).await {
                        eprintln!("mitm connection ended: {e}");
                    }
                });
            }
        });
        Ok(Mitm {
            port,
            inject,
            controls,
        })
    }

    /// Injects into the current connection; if that one just died (an earlier injection
    /// broke it), into the next one.
    async fn inject(&self, bytes: &[u8]) -> Result<()> {
        let deadline = tokio::time::Instant::now() + support::EVENT_TIMEOUT;
        loop {
            let tx = self.inject.lock().await.clone();
            if let Some(tx) = tx
                && tx.send(bytes.to_vec()).await.is_ok()
            {
                return Ok(());
            }
            tokio::time::timeout_at(deadline, self.controls.connected.notified())
                .await
                .context("no live connection to inject into")?;
        }
    }
}

async fn relay(
    tcp: TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    connector: tokio_rustls::TlsConnector,
    upstream: u16,
    mut inject: mpsc::Receiver<Vec<u8>>,
    controls: Arc<Controls>,
) -> Result<()> {
    let client = acceptor.accept(tcp).await?;
    let server_tcp = TcpStream::connect(("127.0.0.1", upstream)).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost")?;
    let server = connector.connect(name, server_tcp).await?;
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut sr, mut sw) = tokio::io::split(server);
    let ctl = controls.clone();
    let up = tokio::spawn(async move {
        let mut buf = vec![0u8; 16384];
        loop {
            let n = cr.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            if ctl.blackhole.load(Ordering::SeqCst) {
                ctl.swallowed.notify_one();
                continue;
            }
            let mut data = buf[..n].to_vec();
            if ctl.break_resume.load(Ordering::SeqCst) {
                let text = String::from_utf8_lossy(&data);
                if text.contains("<resume") {
                    data = text
                        .replace("previd='", "previd='x")
                        .replace("previd=\"", "previd=\"x")
                        .into_bytes();
                }
            }
            sw.write_all(&data).await?;
        }
    });
    let mut buf = vec![0u8; 16384];
    loop {
        tokio::select! {
            n = sr.read(&mut buf) => {
                let n = n?;
                if n == 0 { break; }
                cw.write_all(&buf[..n]).await?;
            }
            Some(bytes) = inject.recv() => cw.write_all(&bytes).await?,
            () = controls.cut.notified() => break,
        }
    }
    up.abort();
    Ok(())
}

/// A server that lets these tests' man in the middle through: no SASL2, so no channel
/// binding. With it, the login through the man in the middle is refused, which
/// [`channel_binding_catches_a_man_in_the_middle_with_a_trusted_certificate`] checks.
fn mitm_friendly_server() -> Result<support::TestServer> {
    support::fresh_server_with(starling::testbed::ProsodyOptions {
        sasl2: false,
        ..Default::default()
    })
}

/// Alice's Starling online through the man in the middle; Bob as a slixmpp peer.
struct Scene {
    alice: support::Account,
    bob: support::Account,
    peer: support::Peer,
    mitm: Mitm,
    a: Node,
}

impl Scene {
    async fn start(server: &support::TestServer) -> Result<Scene> {
        let (alice, bob) = (server.account("alice")?, server.account("bob")?);
        let peer = server.peer(&bob).await?;
        let mitm = Mitm::start(server).await?;
        let opts = options_via(server, mitm.port, TlsMode::DirectTls);
        let mut a = Node::with_options(&alice, opts).await?;
        a.online().await?;
        Ok(Scene {
            alice,
            bob,
            peer,
            mitm,
            a,
        })
    }
}

/// The man in the middle holds a certificate the client trusts (the test CA), so TLS alone
/// cannot tell. SCRAM-SHA-1-PLUS binds the login to the client's own TLS connection; the
/// server sees a different one and refuses, and the client says why and stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_binding_catches_a_man_in_the_middle_with_a_trusted_certificate() -> Result<()> {
    let server = support::fresh_server()?;
    let alice = server.account("alice")?;
    let mitm = Mitm::start(&server).await?;
    let opts = options_via(&server, mitm.port, TlsMode::DirectTls);
    let error = match Node::with_options(&alice, opts).await {
        Ok(_) => anyhow::bail!("the login through the man in the middle succeeded"),
        Err(e) => format!("{e:#}"),
    };
    ensure!(
        error.contains("channel binding failed")
            && error.contains("someone may be intercepting the connection"),
        "{error}"
    );
    // Directly, the same account logs in with channel binding.
    let mut a = Node::new(&server, &alice).await?;
    a.online().await?;
    a.shutdown().await;
    Ok(())
}

/// Well-formedness violations a broken or hostile server could send.
const GARBAGE: &[&[u8]] = &[
    b"<message xmlns='jabber:client'><body>unclosed</message>",
    b"<message xmlns='jabber:client'><body>&undefined;</body></message>",
    b"<!DOCTYPE lolz [<!ENTITY lol 'lol'>]><message/>",
    b"<message xmlns='jabber:client' a='1' a='2'/>",
    b"<message xmlns='jabber:client'><body>\x01\x02</body></message>",
    b"<message xmlns='jabber:client'><body>\xff\xfe\xfd</body></message>",
    b"<undeclared:prefix xmlns='jabber:client'/>",
    b"<?pi not allowed?>",
    b"<message xmlns='jabber:client'><![CDATA[x]]></message>",
    b"</not-open>",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_xml_from_the_server_changes_nothing_and_loses_nothing() -> Result<()> {
    let server = mitm_friendly_server()?;
    let Scene {
        alice,
        bob,
        mut peer,
        mitm,
        mut a,
    } = Scene::start(&server).await?;

    let mut broke = 0;
    for (i, garbage) in GARBAGE.iter().enumerate() {
        mitm.inject(garbage).await?;
        // A message accepted while the stream breaks must still arrive, exactly once.
        let m = a.send(&bob.jid, &format!("during trouble {i}")).await?;
        a.wait_for(&format!("ack after garbage {i}"), |e| match e {
            Event::Connection {
                state: ConnectionState::Reconnecting { .. },
                ..
            } => {
                broke += 1;
                None
            }
            Event::Connection {
                state: ConnectionState::Failed { error, .. },
                ..
            } => Some(Err(anyhow::anyhow!("gave up after garbage {i}: {error}"))),
            Event::MessageUpdated { message, .. }
                if message.id == m.id && message.state >= MessageState::Sent =>
            {
                Some(Ok(()))
            }
            _ => None,
        })
        .await??;
    }
    eprintln!(
        "the stream broke {broke} times for {} pieces of garbage",
        GARBAGE.len()
    );
    ensure!(broke > 0, "malformed XML should end the stream");
    a.send(&bob.jid, "sentinel").await?;
    let got = bodies_until(&mut peer, "sentinel").await?;
    let want: Vec<String> = (0..GARBAGE.len())
        .map(|i| format!("during trouble {i}"))
        .collect();
    ensure!(got == want, "each exactly once, in order: {got:?}");
    let convs = a.client.conversations(&alice.jid)?;
    ensure!(
        convs.len() == 1,
        "nothing stored from the garbage: {convs:?}"
    );
    peer.send_message(&alice.jid, "still works").await?;
    a.wait_message("still works").await?;
    a.shutdown().await;
    peer.quit().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_resumption_starts_a_fresh_session_and_resends_what_was_never_acked() -> Result<()>
{
    let server = mitm_friendly_server()?;
    let (alice, bob) = (server.account("alice")?, server.account("bob")?);
    let mut peer = server.peer(&bob).await?;
    let mitm = Mitm::start(&server).await?;
    mitm.controls.break_resume.store(true, Ordering::SeqCst);
    let opts = options_via(&server, mitm.port, TlsMode::DirectTls);
    let mut a = Node::with_options(&alice, opts).await?;
    a.online().await?;

    // The server never sees this message: it is written, then the link dies.
    mitm.controls.blackhole.store(true, Ordering::SeqCst);
    let lost = a.send(&bob.jid, "never acked").await?;
    tokio::time::timeout(support::EVENT_TIMEOUT, mitm.controls.swallowed.notified())
        .await
        .context("the client never wrote the message")?;
    mitm.controls.blackhole.store(false, Ordering::SeqCst);
    mitm.controls.cut.notify_one();

    // Resumption is refused, so a fresh session starts and the message is resent.
    a.wait_for("fresh session", |e| match e {
        Event::Connection {
            state: ConnectionState::Online { resumed: false },
            ..
        } => Some(()),
        _ => None,
    })
    .await?;
    a.wait_state(lost.id, MessageState::Sent).await?;
    a.send(&bob.jid, "sentinel").await?;
    let got = bodies_until(&mut peer, "sentinel").await?;
    ensure!(
        got == vec!["never acked".to_owned()],
        "exactly once: {got:?}"
    );
    a.shutdown().await;
    peer.quit().await?;
    Ok(())
}

/// The deepest nesting of an element tree (the element itself is 1), without recursion.
fn depth(root: &minidom::Element) -> usize {
    let mut deepest = 0;
    let mut todo = vec![(root, 1)];
    while let Some((el, d)) = todo.pop() {
        deepest = deepest.max(d);
        todo.extend(el.children().map(|c| (c, d + 1)));
    }
    deepest
}

/// How many elements a tree holds, without recursion.
fn elements(root: &minidom::Element) -> usize {
    let mut n = 0;
    let mut todo = vec![root];
    while let Some(el) = todo.pop() {
        n += 1;
        todo.extend(el.children());
    }
    n
}

/// The client's bare XML stream (no TLS, no login) to a scripted peer at the other end of
/// an in-memory pipe, past the stream header and (empty) features; the peer's end is
/// returned for the test to write to.
async fn bare_stream(
    timeouts: tokio_xmpp::xmlstream::Timeouts,
) -> Result<(
    tokio_xmpp::xmlstream::XmlStream<
        tokio::io::BufStream<tokio::io::DuplexStream>,
        minidom::Element,
    >,
    tokio::io::DuplexStream,
)> {
    use tokio_xmpp::xmlstream::{StreamHeader, initiate_stream};
    let (ours, mut theirs) = tokio::io::duplex(1 << 16);
    let peer = async move {
        // Our stream header goes first; read it so that writing never blocks on it.
        let mut header = vec![0u8; 4096];
        let _ = theirs.read(&mut header).await?;
        theirs
            .write_all(
                b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
                  xmlns:stream='http://etherx.jabber.org/streams' version='1.0' id='s1' \
                  from='localhost'><stream:features/>",
            )
            .await?;
        Ok::<_, anyhow::Error>(theirs)
    };
    let client = async {
        let header = StreamHeader {
            to: Some("localhost".into()),
            ..StreamHeader::default()
        };
        let pending = initiate_stream(
            tokio::io::BufStream::new(ours),
            "jabber:client",
            header,
            timeouts,
        )
        .await?;
        Ok::<_, anyhow::Error>(pending.recv_features::<minidom::Element>().await?.1)
    };
    let (theirs, stream) = tokio::try_join!(peer, client)?;
    Ok((stream, theirs))
}

/// A slowloris server: it starts a stanza and then trickles it an empty element at a time,
/// just fast enough that the read timeouts never fire (each element is progress), holding
/// everything behind it. (Trickled text alone trips the read timeout: it yields no parser
/// events.) The stream gives
/// an element twice the silent-stream allowance to arrive (`Timeouts::xso_deadline`), then
/// ends with a timeout, which the client treats like any broken stream (it reconnects and
/// resumes). Shown with short timeouts on the bare XML stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stanza_trickled_bit_by_bit_ends_the_stream_in_bounded_time() -> Result<()> {
    use futures::StreamExt as _;
    use tokio_xmpp::xmlstream::{ReadError, Timeouts};
    let timeouts = Timeouts {
        read_timeout: std::time::Duration::from_secs(1),
        response_timeout: std::time::Duration::from_secs(1),
    };
    let trickle_for = std::time::Duration::from_secs(60);
    let (mut stream, mut theirs) = bare_stream(timeouts).await?;
    let server = tokio::spawn(async move {
        theirs.write_all(b"<message xmlns='jabber:client'>").await?;
        // Far below the read timeout between bytes, for far longer than the deadline.
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
        let until = tokio::time::Instant::now() + trickle_for;
        while tokio::time::Instant::now() < until {
            tick.tick().await;
            if theirs.write_all(b"<x/>").await.is_err() {
                break; // the client hung up: what we want
            }
        }
        Ok::<_, std::io::Error>(())
    });
    let started = std::time::Instant::now();
    let outcome = tokio::time::timeout(trickle_for, stream.next())
        .await
        .context("the trickled stanza held the stream for the whole trickle")?;
    match outcome {
        Some(Err(ReadError::HardError(e))) if e.kind() == std::io::ErrorKind::TimedOut => {
            println!("trickled stanza cut off after {:?}: {e}", started.elapsed());
            ensure!(e.to_string().contains("too slowly"), "{e}");
        }
        other => anyhow::bail!("expected a timeout, got {other:?}"),
    }
    drop(stream);
    server.await??;
    Ok(())
}

/// A server (or a contact, through it) sends a stanza nested 200,000 deep — a few hundred
/// KiB that would overflow the stack while the tree is built or dropped, and took minutes
/// to parse — and one far over the size budget (4 MiB: half a million small elements). The client's XML stream keeps each stanza, pruned to
/// bounded depth and size, and goes on with the next: no crash, bounded memory, and no
/// broken stream that a server would answer by sending the same stanza again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stanzas_nested_too_deep_or_too_big_are_pruned_and_the_stream_goes_on() -> Result<()> {
    use futures::StreamExt as _;
    use tokio_xmpp::xmlstream::{MAX_XSO_BYTES, MAX_XSO_DEPTH, Timeouts};
    let (mut stream, mut theirs) = bare_stream(Timeouts::tight()).await?;
    let server = tokio::spawn(async move {
        let levels = 200_000;
        let mut deep = String::from("<message xmlns='jabber:client' id='deep'><body>deep</body>");
        deep.push_str(&"<a>".repeat(levels));
        deep.push_str(&"</a>".repeat(levels));
        deep.push_str("</message>");
        theirs.write_all(deep.as_bytes()).await?;
        theirs
            .write_all(b"<message xmlns='jabber:client' id='big'><body>big</body>")
            .await?;
        let chunk = "<b>x</b>".repeat(8192);
        for _ in 0..(4 << 20) / chunk.len() {
            theirs.write_all(chunk.as_bytes()).await?;
        }
        theirs.write_all(b"</message>").await?;
        theirs
            .write_all(b"<message xmlns='jabber:client' id='after'><body>after</body></message>")
            .await?;
        Ok::<_, std::io::Error>(theirs)
    });
    let mut next = async || -> Result<minidom::Element> {
        Ok(tokio::time::timeout(support::EVENT_TIMEOUT, stream.next())
            .await?
            .context("the stream ended")??)
    };
    let body = |el: &minidom::Element| {
        el.get_child("body", "jabber:client")
            .map(minidom::Element::text)
    };

    let started = std::time::Instant::now();
    let deep = next().await?;
    println!("200,000 levels read in {:?}", started.elapsed());
    ensure!(deep.attr("id") == Some("deep") && body(&deep).as_deref() == Some("deep"));
    ensure!(
        depth(&deep) <= MAX_XSO_DEPTH,
        "pruned to {MAX_XSO_DEPTH} levels: {}",
        depth(&deep)
    );
    let big = next().await?;
    ensure!(big.attr("id") == Some("big") && body(&big).as_deref() == Some("big"));
    let kept = elements(&big);
    ensure!(
        kept * 128 <= MAX_XSO_BYTES,
        "pruned to the budget: {kept} elements kept"
    );
    let after = next().await?;
    ensure!(
        after.attr("id") == Some("after"),
        "the stream goes on: {after:?}"
    );
    drop(stream);
    server.await??;
    Ok(())
}

/// The same through the whole client: a message nested 200,000 deep reaches Starling (as
/// from a contact, injected by the man in the middle). Its text is stored, the client
/// survives it, and everything after it still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_nested_200000_deep_is_stored_pruned_and_nothing_breaks() -> Result<()> {
    let server = mitm_friendly_server()?;
    let Scene {
        alice,
        bob,
        mut peer,
        mitm,
        mut a,
    } = Scene::start(&server).await?;
    let levels = 200_000;
    let mut deep = format!(
        "<message xmlns='jabber:client' from='{}/phone' to='{}' type='chat' id='deep-1'>\
         <body>from the deep</body>",
        bob.jid, alice.jid
    );
    deep.push_str(&"<a>".repeat(levels));
    deep.push_str(&"</a>".repeat(levels));
    deep.push_str("</message>");
    mitm.inject(deep.as_bytes()).await?;
    a.wait_message("from the deep").await?;

    a.send(&bob.jid, "still here").await?;
    let got = bodies_until(&mut peer, "still here").await?;
    ensure!(got.is_empty(), "nothing else went out: {got:?}");
    peer.send_message(&alice.jid, "and you hear me").await?;
    a.wait_message("and you hear me").await?;
    a.shutdown().await;
    peer.quit().await?;
    Ok(())
}
