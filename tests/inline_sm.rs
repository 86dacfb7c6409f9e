//! XEP-0198 inside SASL2: stream management enabled in the Bind2 request and a session
//! resumed in the `<authenticate/>` itself, with a fresh session bound in the same exchange
//! when it cannot be resumed.
//!
//! Debian's Prosody 0.12 cannot do this (prosody-modules' `mod_sasl2_sm` needs a newer
//! `mod_smacks`), so this is a scripted server ([`crate::support::scripted`]): SASL2
//! PLAIN, Bind2, and the XEP-0198 counters kept as a server keeps them. Each login is numbered; what the server does
//! depends on the number (see [`Scripted::login`]).

use std::sync::Arc;
use std::sync::Mutex;

use anyhow::{Context, Result, bail, ensure};
use minidom::Element;
use starling_core::connection::TlsMode;
use starling_core::{ConnectionState, Event, MessageState};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::node::{Node, options_via};
use crate::support;
use crate::support::scripted::{STREAMS, accept, elem, next, send, tls_acceptor};

const SASL2: &str = "urn:xmpp:sasl:2";
const BIND2: &str = "urn:xmpp:bind:0";
const SM: &str = "urn:xmpp:sm:3";
/// The full JID the server binds.
const BOUND: &str = "alice@localhost/Starling~inline";
/// A message body the server receives and then cuts the connection without acking it.
const CUT: &str = "across the cut";
/// The same, the second time.
const CUT_AGAIN: &str = "across the second cut";

/// What the scripted server saw.
#[derive(Debug)]
enum Saw {
    /// Login number `n`, with its `<authenticate/>`.
    Login(usize, Element),
    /// A message body on the connection of login `n`; `sent` is how many stanzas the server
    /// had sent on the session by then (the client's inbound counter).
    Message { n: usize, body: String, sent: u32 },
}

/// The XEP-0198 counters of the server's current session.
#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    /// Stanzas received from the client.
    received: u32,
    /// Stanzas sent to the client.
    sent: u32,
}

struct Scripted {
    logins: Mutex<usize>,
    /// The session as it was when the connection was cut (what a resumption continues).
    held: Mutex<Counters>,
    saw: mpsc::UnboundedSender<Saw>,
}

impl Scripted {
    /// What login `n` gets in its `<success/>`, and the counters its session starts with:
    /// - 0 (`account add`'s check) and 1: a fresh session, SM enabled inline if asked;
    /// - 2: the held session resumed (the server had all but the cut message);
    /// - 3: resumption refused, a fresh session bound instead.
    fn login(&self, n: usize, auth: &Element) -> Result<(Vec<Element>, Counters)> {
        let wants_sm = auth
            .get_child("bind", BIND2)
            .is_some_and(|b| b.get_child("enable", SM).is_some());
        let fresh = |id: &str| -> Result<Element> {
            let enabled = if wants_sm {
                format!("<enabled xmlns='{SM}' id='{id}' resume='true'/>")
            } else {
                String::new()
            };
            elem(&format!("<bound xmlns='{BIND2}'>{enabled}</bound>"))
        };
        let held = *self.held.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        Ok(match n {
            2 => (
                vec![elem(&format!(
                    "<resumed xmlns='{SM}' previd='sm-1' h='{}'/>",
                    held.received
                ))?],
                held,
            ),
            3 => (
                vec![elem(&format!("<failed xmlns='{SM}'/>"))?, fresh("sm-2")?],
                Counters::default(),
            ),
            _ => (vec![fresh("sm-1")?], Counters::default()),
        })
    }

    /// One client connection: TLS, SASL2, then the session until the client leaves or the
    /// script cuts it.
    async fn serve(
        self: Arc<Self>,
        tcp: tokio::net::TcpStream,
        acceptor: tokio_rustls::TlsAcceptor,
    ) -> Result<()> {
        let features = elem(&format!(
            "<features xmlns='{STREAMS}'>\
               <authentication xmlns='{SASL2}'><mechanism>PLAIN</mechanism><inline>\
                 <bind xmlns='{BIND2}'><inline><feature var='{SM}'/></inline></bind>\
                 <sm xmlns='{SM}'/>\
               </inline></authentication>\
             </features>"
        ))?;
        let mut stream = accept(tcp, &acceptor, features).await?;
        let Some(auth) = next(&mut stream).await? else {
            return Ok(());
        };
        ensure!(auth.is("authenticate", SASL2), "not a login: {auth:?}");
        let n = {
            let mut logins = self
                .logins
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?;
            *logins += 1;
            *logins - 1
        };
        let (payloads, mut counters) = self.login(n, &auth)?;
        let _ = self.saw.send(Saw::Login(n, auth));
        let mut success = elem(&format!(
            "<success xmlns='{SASL2}'><authorization-identifier>{BOUND}</authorization-identifier></success>"
        ))?;
        for p in payloads {
            success.append_child(p);
        }
        send(&mut stream, &success).await?;
        send(
            &mut stream,
            &elem(&format!(
                "<features xmlns='{STREAMS}'><sm xmlns='{SM}'/></features>"
            ))?,
        )
        .await?;
        while let Some(element) = next(&mut stream).await? {
            if element.is("r", SM) {
                let a = format!("<a xmlns='{SM}' h='{}'/>", counters.received);
                send(&mut stream, &elem(&a)?).await?;
                continue;
            }
            if element.ns() != "jabber:client" {
                continue;
            }
            let body = element
                .get_child("body", "jabber:client")
                .map(Element::text);
            if let Some(body) = &body {
                let _ = self.saw.send(Saw::Message {
                    n,
                    body: body.clone(),
                    sent: counters.sent,
                });
                if (n == 1 && body == CUT) || (n == 2 && body == CUT_AGAIN) {
                    // Gone before counting it: the client must send it again.
                    *self.held.lock().map_err(|_| anyhow::anyhow!("poisoned"))? = counters;
                    return Ok(());
                }
            }
            counters.received += 1;
            if body.is_some() {
                // Ack messages right away, so the client can mark them sent.
                let a = format!("<a xmlns='{SM}' h='{}'/>", counters.received);
                send(&mut stream, &elem(&a)?).await?;
            }
            let kind = element.attr("type").unwrap_or_default();
            if element.name() == "iq" && (kind == "get" || kind == "set") {
                let id = element.attr("id").unwrap_or_default();
                let error = elem(&format!(
                    "<iq xmlns='jabber:client' type='error' id='{id}' to='{BOUND}'>\
                       <error type='cancel'>\
                         <service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
                       </error>\
                     </iq>"
                ))?;
                send(&mut stream, &error).await?;
                counters.sent += 1;
            }
        }
        Ok(())
    }
}

/// Starts the scripted server on 127.0.0.1 with the test server's certificate; returns
/// its port and what it sees.
async fn scripted_server(
    server: &starling::testbed::Prosody,
) -> Result<(u16, mpsc::UnboundedReceiver<Saw>)> {
    let acceptor = tls_acceptor(server)?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let (saw, seen) = mpsc::unbounded_channel();
    let script = Arc::new(Scripted {
        logins: Mutex::new(0),
        held: Mutex::new(Counters::default()),
        saw,
    });
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let script = script.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Err(e) = script.serve(tcp, acceptor).await {
                    eprintln!("scripted server: {e:#}");
                }
            });
        }
    });
    Ok((port, seen))
}

/// The next thing the server saw that `f` picks, within the event timeout.
async fn saw<T>(
    seen: &mut mpsc::UnboundedReceiver<Saw>,
    what: &str,
    mut f: impl FnMut(Saw) -> Option<T>,
) -> Result<T> {
    let deadline = tokio::time::Instant::now() + support::EVENT_TIMEOUT;
    loop {
        match tokio::time::timeout_at(deadline, seen.recv()).await {
            Ok(Some(s)) => {
                if let Some(t) = f(s) {
                    return Ok(t);
                }
            }
            Ok(None) => bail!("the scripted server stopped before {what}"),
            Err(_) => bail!("the scripted server never saw {what}"),
        }
    }
}

/// Waits until the account is online, fresh or resumed as `resumed` says.
async fn online(node: &mut Node, resumed: bool) -> Result<()> {
    node.wait_for(&format!("online (resumed: {resumed})"), |e| match e {
        Event::Connection {
            state: ConnectionState::Online { resumed: r },
            ..
        } if *r == resumed => Some(()),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_resumed_inside_the_login_and_rebound_when_it_cannot_be() -> Result<()> {
    let server = support::fresh_server()?;
    let alice = server.account("alice")?;
    let (port, mut seen) = scripted_server(&server).await?;
    let opts = options_via(&server, port, TlsMode::DirectTls);
    let mut a = Node::with_options(&alice, opts).await?;
    let login = |n: usize| move |s: Saw| matches!(&s, Saw::Login(m, _) if *m == n).then_some(s);
    saw(&mut seen, "the account check's login", login(0)).await?;

    // Login 1: bound inline, with stream management enabled in the Bind2 request.
    a.client.connect(&a.jid).await?;
    online(&mut a, false).await?;
    let Saw::Login(_, auth) = saw(&mut seen, "login 1", login(1)).await? else {
        unreachable!()
    };
    ensure!(
        auth.get_child("bind", BIND2)
            .is_some_and(|b| b.get_child("enable", SM).is_some()),
        "no inline <enable/>: {auth:?}"
    );
    ensure!(
        auth.get_child("resume", SM).is_none(),
        "nothing to resume yet"
    );
    let info = a.client.connection_info(&a.jid).await?.context("no info")?;
    ensure!(info.bound_inline && !info.resumed_inline, "{info:?}");
    ensure!(info.jid.as_deref() == Some(BOUND), "{info:?}");

    // The server gets a message and vanishes before acking it.
    let first = a.send("bob@localhost", CUT).await?;
    let sent_before_cut = saw(&mut seen, "the first cut message", |s| match s {
        Saw::Message { n: 1, body, sent } if body == CUT => Some(sent),
        _ => None,
    })
    .await?;

    // Login 2 resumes inside <authenticate/>, naming how many stanzas it got; the server
    // resumes and the unacked message comes again, once.
    online(&mut a, true).await?;
    let Saw::Login(_, auth) = saw(&mut seen, "login 2", login(2)).await? else {
        unreachable!()
    };
    let resume = auth
        .get_child("resume", SM)
        .context("no inline <resume/>")?;
    ensure!(resume.attr("previd") == Some("sm-1"), "{resume:?}");
    ensure!(
        resume.attr("h") == Some(sent_before_cut.to_string().as_str()),
        "h {:?}, the server had sent {sent_before_cut}",
        resume.attr("h")
    );
    ensure!(
        auth.get_child("bind", BIND2).is_some(),
        "no fallback Bind2 request: {auth:?}"
    );
    a.wait_state(first.id, MessageState::Sent).await?;
    a.send("bob@localhost", "sentinel").await?;
    let mut bodies = Vec::new();
    while bodies.last().map(String::as_str) != Some("sentinel") {
        bodies.push(
            saw(&mut seen, "the sentinel", |s| match s {
                Saw::Message { n: 2, body, .. } => Some(body),
                _ => None,
            })
            .await?,
        );
    }
    ensure!(bodies == [CUT, "sentinel"], "exactly once: {bodies:?}");
    let info = a.client.connection_info(&a.jid).await?.context("no info")?;
    ensure!(info.resumed_inline && !info.bound_inline, "{info:?}");
    ensure!(
        info.jid.as_deref() == Some(BOUND),
        "resumed, same JID: {info:?}"
    );

    // Cut again; this time the server cannot resume and binds a fresh session in the same
    // exchange. The unacked message goes out again on it.
    let second = a.send("bob@localhost", CUT_AGAIN).await?;
    saw(&mut seen, "the second cut message", |s| match s {
        Saw::Message { n: 2, body, .. } if body == CUT_AGAIN => Some(()),
        _ => None,
    })
    .await?;
    online(&mut a, false).await?;
    saw(&mut seen, "login 3", login(3)).await?;
    let info = a.client.connection_info(&a.jid).await?.context("no info")?;
    ensure!(info.bound_inline && !info.resumed_inline, "{info:?}");
    a.wait_state(second.id, MessageState::Sent).await?;
    saw(&mut seen, "the resent message", |s| match s {
        Saw::Message { n: 3, body, .. } if body == CUT_AGAIN => Some(()),
        _ => None,
    })
    .await?;
    a.shutdown().await;
    Ok(())
}
