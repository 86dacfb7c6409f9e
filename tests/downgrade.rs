//! XEP-0474 (SCRAM downgrade protection) end to end. Debian's Prosody 0.12 does not send
//! the `h` attribute, so a scripted server ([`crate::support::scripted`]) plays a server
//! that does: its SCRAM server-first-message hashes the mechanism and channel-binding
//! lists it really offered. A man in the middle who strips `-PLUS` from the offer (so that
//! the login cannot be bound to the TLS connection he terminates) cannot fix that hash,
//! which is inside the SCRAM exchange; the client must notice and refuse.

use anyhow::{Context, Result, bail, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};
use starling_core::connection::TlsMode;
use tokio::net::TcpListener;

use crate::node::{Node, options_via};
use crate::support::scripted::{STREAMS, accept, elem, next, send, tls_acceptor};
use crate::support::{self, Account};

const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";

/// What the scripted server saw the client do after the server-first-message.
#[derive(Debug, PartialEq, Eq)]
enum After {
    /// It went on with its proof (the server then refuses the password).
    WentOn,
    /// It left.
    Left,
}

/// One login against a scripted server that offers `offered` mechanisms and `tls-exporter`
/// (XEP-0440), and whose server-first-message carries XEP-0474's `h` over `signed` (the
/// mechanisms, then the channel-binding types, as XEP-0474 §3.1 joins them). Returns how
/// `account add` ended and what the server saw.
async fn login(offered: &[&str], signed: &str) -> Result<(String, After)> {
    let server = support::fresh_server()?;
    let acceptor = tls_acceptor(&server)?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let mechanisms: String = offered
        .iter()
        .map(|m| format!("<mechanism>{m}</mechanism>"))
        .collect();
    let features = elem(&format!(
        "<features xmlns='{STREAMS}'>\
           <mechanisms xmlns='{SASL}'>{mechanisms}</mechanisms>\
           <sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'>\
             <channel-binding type='tls-exporter'/>\
           </sasl-channel-binding>\
         </features>"
    ))?;
    let h = BASE64.encode(Sha256::digest(signed.as_bytes()));
    let scripted = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let mut stream = accept(tcp, &acceptor, features).await?;
        let auth = next(&mut stream).await?.context("no <auth/>")?;
        ensure!(auth.is("auth", SASL), "not an <auth/>: {auth:?}");
        ensure!(
            auth.attr("mechanism") == Some("SCRAM-SHA-256"),
            "mechanism {:?}",
            auth.attr("mechanism")
        );
        let client_first = String::from_utf8(BASE64.decode(auth.text().trim())?)?;
        let nonce = client_first
            .split(',')
            .find_map(|a| a.strip_prefix("r="))
            .context("no client nonce")?;
        let salt = BASE64.encode(b"scripted salt");
        let server_first = format!("r={nonce}scripted,s={salt},i=4096,h={h}");
        let challenge = format!(
            "<challenge xmlns='{SASL}'>{}</challenge>",
            BASE64.encode(server_first)
        );
        send(&mut stream, &elem(&challenge)?).await?;
        match next(&mut stream).await {
            Ok(Some(e)) if e.is("response", SASL) => {
                let failure = format!("<failure xmlns='{SASL}'><not-authorized/></failure>");
                send(&mut stream, &elem(&failure)?).await?;
                Ok(After::WentOn)
            }
            Ok(Some(e)) => bail!("unexpected {e:?}"),
            Ok(None) | Err(_) => Ok(After::Left),
        }
    });
    let alice = Account {
        user: "alice".into(),
        jid: "alice@localhost".into(),
        password: "secret".into(),
    };
    let added = Node::with_options(&alice, options_via(&server, port, TlsMode::DirectTls)).await;
    let error = match added {
        Ok(_) => bail!("the login against the scripted server succeeded"),
        Err(e) => format!("{e:#}"),
    };
    let after = tokio::time::timeout(support::EVENT_TIMEOUT, scripted)
        .await
        .context("the scripted server never finished")???;
    Ok((error, after))
}

/// The hash over exactly what was offered: the client goes on to its proof.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untouched_offer_passes_the_xep_0474_check() -> Result<()> {
    let (error, after) = login(&["SCRAM-SHA-256"], "SCRAM-SHA-256\u{1f}tls-exporter").await?;
    ensure!(after == After::WentOn, "{after:?}: {error}");
    ensure!(
        error.contains("wrong password for alice@localhost"),
        "{error}"
    );
    Ok(())
}

/// `-PLUS` stripped from the offer: the server's hash covers it, so the client refuses
/// before sending anything derived from the password, and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stripped_plus_mechanism_is_refused_by_xep_0474() -> Result<()> {
    let (error, after) = login(
        &["SCRAM-SHA-256"],
        "SCRAM-SHA-256\u{1e}SCRAM-SHA-256-PLUS\u{1f}tls-exporter",
    )
    .await?;
    ensure!(after == After::Left, "{after:?}: {error}");
    ensure!(
        error.contains("not the one the server sent (XEP-0474)")
            && error.contains("someone may be intercepting"),
        "{error}"
    );
    Ok(())
}
