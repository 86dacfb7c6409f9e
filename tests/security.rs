//! Bad input changes nothing: wrong passwords, unknown hosts, bad certificates, spoofed
//! stanzas and hostile garbage.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use anyhow::{Context, Result, ensure};
use serde_json::json;
use starling_core::{ConnectionState, Event};
use tokio::net::{TcpListener, UdpSocket};

use crate::cli::Cli;
use crate::node::Node;
use crate::support::{self, EVENT_TIMEOUT, PeerOptions, event_name};

/// `account add` must fail with `expect` in its one-line error and leave the profile empty.
async fn refused(cli: &Cli, args: &[&str], password: &str, expect: &str) -> Result<()> {
    let err = cli.fail(args, Some(password)).await?;
    ensure!(err.contains(expect), "expected {expect:?} in: {err}");
    ensure!(
        err.lines().filter(|l| l.contains("error")).count() == 1,
        "one error line: {err}"
    );
    let accounts = cli.json(&["account", "list"]).await?;
    ensure!(accounts == json!([]), "nothing stored: {accounts}");
    Ok(())
}

fn add_args<'a>(jid: &'a str, extra: &'a [String]) -> Vec<&'a str> {
    let mut v = vec!["account", "add", jid];
    v.extend(extra.iter().map(String::as_str));
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_refused_and_nothing_stored() -> Result<()> {
    let server = support::fresh_server()?;
    let alice = server.account("alice")?;
    let cli = Cli::new(&server)?;
    let server_args = cli.server_args();
    refused(
        &cli,
        &add_args(&alice.jid, &server_args),
        "not-the-password",
        "wrong password",
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_signed_certificate_without_ca_file_is_refused() -> Result<()> {
    let server = support::fresh_server()?;
    let alice = server.account("alice")?;
    let cli = Cli::new(&server)?;
    for (port, tls) in [
        (server.c2s_port(), "starttls"),
        (server.direct_tls_port(), "direct"),
    ] {
        let port = port.to_string();
        let args = [
            "--server",
            "127.0.0.1",
            "--port",
            port.as_str(),
            "--tls",
            tls,
        ]
        .map(String::from);
        refused(
            &cli,
            &add_args(&alice.jid, &args),
            &alice.password,
            "certificate not trusted for localhost",
        )
        .await?;
    }
    Ok(())
}

/// What the certificate of [`tls_server_with`] is like (always signed by the test CA).
pub(crate) enum Cert {
    /// For this name (the one the client wants, or any other).
    For(&'static str),
    /// For this name, sent with the test CA's certificate after it (a DANE-TA chain).
    WithCa(&'static str),
    /// For the right name, expired on 2020-01-02.
    Expired,
    /// For `other.example` (DNS-ID) and this subjectAltName in openssl's syntax (e.g. an
    /// `otherName` SRV-ID or XmppAddr).
    AlsoNaming(&'static str),
    /// For the right name, demanding a stapled OCSP status (RFC 7633 must-staple).
    MustStaple,
}

/// Run `openssl` with these arguments; its error output is the error.
pub(crate) fn openssl(args: &[&str]) -> Result<()> {
    let out = Command::new("openssl").args(args).output()?;
    ensure!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// The test CA in `certs` signs the request `csr` with the extensions in `ext`, for two
/// days, into `crt`.
pub(crate) fn sign_with_test_ca(certs: &Path, csr: &Path, ext: &Path, crt: &Path) -> Result<()> {
    let p = |x: &Path| x.display().to_string();
    openssl(&[
        "x509",
        "-req",
        "-in",
        &p(csr),
        "-CA",
        &p(&certs.join("ca.crt")),
        "-CAkey",
        &p(&certs.join("ca.key")),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &p(ext),
        "-out",
        &p(crt),
    ])
}

/// A new self-signed CA in `dir` named `name`: its certificate and key files.
pub(crate) fn self_signed_ca(dir: &Path, name: &str) -> Result<(PathBuf, PathBuf)> {
    let stem = name.to_lowercase().replace(' ', "-");
    let (crt, key) = (
        dir.join(format!("{stem}.crt")),
        dir.join(format!("{stem}.key")),
    );
    let p = |x: &Path| x.display().to_string();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        &format!("/CN={name}"),
        "-days",
        "2",
        "-keyout",
        &p(&key),
        "-out",
        &p(&crt),
    ])?;
    Ok((crt, key))
}

/// A TLS handshake to `port` for `localhost`, as an XMPP account trusting the CA
/// `ca_file` does it (the XMPP certificate verifier): `Err` holds why the certificate was
/// refused (our verifiers' own reasons as the app words them, else rustls' error).
pub(crate) async fn xmpp_handshake(port: u16, ca_file: &Path) -> Result<Result<(), String>> {
    use starling_core::connection::identity::XmppServerVerifier;
    use tokio_rustls::rustls::{self, RootCertStore, pki_types::ServerName};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for ca in rustls_pemfile::certs(&mut std::io::BufReader::new(std::fs::File::open(ca_file)?)) {
        roots.add(ca?)?;
    }
    let verifier = XmppServerVerifier::new(Arc::new(roots), provider.clone())?;
    // "dangerous" is rustls' word for any verifier of one's own; this is the real one.
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost")?, tcp)
        .await
        .map(|_| ())
        .map_err(
            |e| match e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
                Some(rustls::Error::InvalidCertificate(rustls::CertificateError::Other(why))) => {
                    why.0.to_string()
                }
                _ => e.to_string(),
            },
        ))
}

/// A TLS server presenting a certificate signed by the test CA, but wrong in one way.
pub(crate) async fn tls_server_with(cert: Cert, certs: &Path, dir: &Path) -> Result<u16> {
    tls_server_stapling(cert, certs, dir, |_, _| Ok(Vec::new())).await
}

/// [`tls_server_with`], stapling the OCSP response `staple` makes, given the test CA's
/// directory and the certificate's PEM file (an empty response staples nothing).
pub(crate) async fn tls_server_stapling(
    cert: Cert,
    certs: &Path,
    dir: &Path,
    staple: impl FnOnce(&Path, &Path) -> Result<Vec<u8>>,
) -> Result<u16> {
    let name = match cert {
        Cert::For(name) | Cert::WithCa(name) => name,
        Cert::Expired | Cert::MustStaple => "localhost",
        Cert::AlsoNaming(_) => "other.example",
    };
    let also = match cert {
        Cert::AlsoNaming(san) => format!(",{san}"),
        Cert::MustStaple => "\ntlsfeature=status_request".to_owned(),
        _ => String::new(),
    };
    let key = dir.join("other.key");
    let csr = dir.join("other.csr");
    let crt = dir.join("other.crt");
    let ext = dir.join("other.ext");
    std::fs::write(
        &ext,
        format!("subjectAltName=DNS:{name}{also}\nextendedKeyUsage=serverAuth\n"),
    )?;
    let run = openssl;
    let p = |x: &Path| x.display().to_string();
    run(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        &p(&key),
    ])?;
    let subject = format!("/CN={name}");
    run(&[
        "req",
        "-new",
        "-key",
        &p(&key),
        "-subj",
        &subject,
        "-out",
        &p(&csr),
    ])?;
    let (ca_crt, ca_key) = (p(&certs.join("ca.crt")), p(&certs.join("ca.key")));
    match cert {
        Cert::For(_) | Cert::WithCa(_) | Cert::AlsoNaming(_) | Cert::MustStaple => {
            sign_with_test_ca(certs, &csr, &ext, &crt)?
        }
        // `openssl x509` cannot date a certificate in the past; `openssl ca` can.
        Cert::Expired => {
            let cfg = dir.join("ca.cnf");
            std::fs::write(dir.join("index.txt"), "")?;
            std::fs::write(dir.join("serial"), "01\n")?;
            std::fs::write(
                &cfg,
                format!(
                    "[ca]\ndefault_ca = test\n[test]\ndatabase = {d}/index.txt\n\
                     new_certs_dir = {d}\nserial = {d}/serial\ndefault_md = sha256\n\
                     policy = any\n[any]\ncommonName = supplied\n",
                    d = dir.display()
                ),
            )?;
            run(&[
                "ca",
                "-batch",
                "-notext",
                "-config",
                &p(&cfg),
                "-cert",
                &ca_crt,
                "-keyfile",
                &ca_key,
                "-in",
                &p(&csr),
                "-startdate",
                "20200101000000Z",
                "-enddate",
                "20200102000000Z",
                "-extfile",
                &p(&ext),
                "-out",
                &p(&crt),
            ])?;
        }
    }
    let mut chain: Vec<_> =
        rustls_pemfile::certs(&mut std::io::BufReader::new(std::fs::File::open(&crt)?))
            .collect::<Result<_, _>>()?;
    if matches!(cert, Cert::WithCa(_)) {
        for ca in rustls_pemfile::certs(&mut std::io::BufReader::new(std::fs::File::open(
            certs.join("ca.crt"),
        )?)) {
            chain.push(ca?);
        }
    }
    std::fs::copy(&crt, dir.join("served.crt"))?;
    let key =
        rustls_pemfile::private_key(&mut std::io::BufReader::new(std::fs::File::open(&key)?))?
            .context("no key")?;
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert_with_ocsp(chain, key, staple(certs, &crt)?)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            // Whether the client accepts is the test's business; nothing else to do.
            if let Ok(_stream) = acceptor.accept(tcp).await {
                eprintln!("the client accepted the certificate");
            }
        }
    });
    Ok(port)
}

/// `account add` against a direct-TLS server whose certificate (from the test CA) is wrong
/// as `cert` says must fail with `expect` and store nothing.
async fn refused_for(cert: Cert, expect: &str) -> Result<()> {
    refused_stapling(cert, |_, _| Ok(Vec::new()), expect).await
}

/// [`refused_for`] a server stapling the OCSP response `staple` makes (as for
/// [`tls_server_stapling`]).
pub(crate) async fn refused_stapling(
    cert: Cert,
    staple: impl FnOnce(&Path, &Path) -> Result<Vec<u8>>,
    expect: &str,
) -> Result<()> {
    let server = support::fresh_server()?;
    let alice = server.account("alice")?;
    let work = tempfile::tempdir()?;
    let certs = server.ca_file().parent().context("certs dir")?;
    let port = tls_server_stapling(cert, certs, work.path(), staple)
        .await?
        .to_string();
    let cli = Cli::new(&server)?;
    let ca = server.ca_file().display().to_string();
    let args = [
        "--server",
        "127.0.0.1",
        "--port",
        port.as_str(),
        "--tls",
        "direct",
        "--ca-file",
        ca.as_str(),
    ]
    .map(String::from);
    refused(&cli, &add_args(&alice.jid, &args), &alice.password, expect).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_for_another_name_is_refused() -> Result<()> {
    refused_for(
        Cert::For("other.example"),
        "not valid for localhost (it is for other.example)",
    )
    .await
}

/// An expired certificate is refused, saying since when and who must act.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_certificate_is_refused_with_its_date() -> Result<()> {
    refused_for(
        Cert::Expired,
        "certificate not trusted for localhost: expired on 2020-01-02; its admin must renew it",
    )
    .await
}

/// RFC 6120 §13.7.1.2 / RFC 7590: an XMPP server may be named in its certificate by an
/// SRV-ID (`_xmpp-client.` or `_xmpps-client.` + domain) or an XmppAddr instead of a
/// DNS-ID. Each certificate here has a DNS-ID for another name only, so rustls alone
/// refuses them all; the XMPP verifier takes the right SRV-IDs and XmppAddrs, from the
/// test CA, and nothing else: not a server-to-server SRV-ID, not another domain's
/// XmppAddr, and not any of it from a CA it does not trust.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srv_id_and_xmpp_addr_name_the_server_too() -> Result<()> {
    let server = support::fresh_server()?;
    let certs = server.ca_file().parent().context("certs dir")?;
    // Another CA, which signed none of these certificates.
    let elsewhere = tempfile::tempdir()?;
    let (other_ca, _) = self_signed_ca(elsewhere.path(), "Another CA")?;
    let (test_ca, other_ca) = (server.ca_file(), other_ca.as_path());
    let handshake = async |san: &'static str, ca: &Path| -> Result<Result<(), String>> {
        let work = tempfile::tempdir()?;
        let port = tls_server_with(Cert::AlsoNaming(san), certs, work.path()).await?;
        xmpp_handshake(port, ca).await
    };
    for san in [
        "otherName:1.3.6.1.5.5.7.8.5;UTF8:localhost",
        "otherName:1.3.6.1.5.5.7.8.7;IA5:_xmpp-client.localhost",
        "otherName:1.3.6.1.5.5.7.8.7;IA5:_xmpps-client.localhost",
    ] {
        let got = handshake(san, test_ca).await?;
        ensure!(got.is_ok(), "{san} names localhost: {got:?}");
        let untrusted = handshake(san, other_ca).await?;
        ensure!(
            untrusted
                .as_ref()
                .is_err_and(|e| e.contains("UnknownIssuer")),
            "{san} from an unknown CA: {untrusted:?}"
        );
    }
    for san in [
        "otherName:1.3.6.1.5.5.7.8.5;UTF8:other.example",
        "otherName:1.3.6.1.5.5.7.8.7;IA5:_xmpp-server.localhost",
        "otherName:1.3.6.1.5.5.7.8.7;IA5:_xmpp-client.other.example",
    ] {
        let got = handshake(san, test_ca).await?;
        ensure!(
            got.as_ref()
                .is_err_and(|e| e.contains("not valid for name") || e.contains("NotValidForName")),
            "{san} does not name localhost: {got:?}"
        );
    }
    Ok(())
}

/// A DNS server on 127.0.0.1 that answers NXDOMAIN to every query.
async fn nxdomain_dns() -> Result<u16> {
    let sock = UdpSocket::bind("127.0.0.1:0").await?;
    let port = sock.local_addr()?.port();
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            if n < 12 {
                continue;
            }
            let mut reply = buf[..n].to_vec();
            reply[2] |= 0x80; // QR: response
            reply[3] = (reply[3] & 0xF0) | 0x03; // RCODE: NXDOMAIN
            if sock.send_to(&reply, from).await.is_err() {
                break;
            }
        }
    });
    Ok(port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_host_is_refused_clearly() -> Result<()> {
    let server = support::fresh_server()?;
    let cli = Cli::new(&server)?;
    let dns = nxdomain_dns().await?;
    let err = cli
        .command(&["account", "add", "alice@nowhere.test"])
        .env("STARLING_PASSWORD", "whatever")
        .env("STARLING_DNS_SERVER", format!("127.0.0.1:{dns}"))
        .output()
        .await?;
    ensure!(!err.status.success());
    let stderr = String::from_utf8(err.stderr)?;
    ensure!(stderr.contains("cannot reach nowhere.test"), "{stderr}");
    ensure!(cli.json(&["account", "list"]).await? == json!([]));
    Ok(())
}

async fn own_full_jid(node: &Node) -> Result<String> {
    let acc = node.client.accounts()?;
    let a = acc.first().context("no account")?;
    node.client
        .connection_info(&a.jid)
        .await?
        .and_then(|info| info.jid)
        .context("not bound yet")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoofed_carbons_and_roster_pushes_are_ignored() -> Result<()> {
    let server = support::fresh_server()?;
    let (alice, mallory) = (server.account("alice")?, server.account("mallory")?);
    let mut a = Node::new(&server, &alice).await?;
    a.online().await?;
    let me = own_full_jid(&a).await?;
    let mut peer = server.peer(&mallory).await?;

    // A carbon claiming that "carol" wrote to alice, sent by mallory.
    let carbon = format!(
        "<message xmlns='jabber:client' to='{me}'><received xmlns='urn:xmpp:carbons:2'>\
         <forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' \
         from='carol@localhost/x' to='{}' type='chat' id='spoof1'><body>fake carbon</body>\
         </message></forwarded></received></message>",
        alice.jid
    );
    peer.command(json!({"cmd": "raw", "xml": carbon})).await?;
    let reason = a
        .wait_for("ignored carbon", |e| match e {
            Event::Ignored { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .await?;
    ensure!(reason.contains("carbon"), "{reason}");

    // A roster push from mallory adding mallory as a mutual contact.
    let push = format!(
        "<iq xmlns='jabber:client' type='set' id='push1' to='{me}'><query xmlns='jabber:iq:roster'>\
         <item jid='{}' subscription='both'/></query></iq>",
        mallory.jid
    );
    peer.command(json!({"cmd": "raw", "xml": push})).await?;
    let reason = a
        .wait_for("ignored roster push", |e| match e {
            Event::Ignored { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .await?;
    ensure!(reason.contains("roster push"), "{reason}");

    ensure!(
        a.history("carol@localhost")?.is_empty(),
        "no fake message stored"
    );
    ensure!(
        a.client.contacts(&alice.jid)?.is_empty(),
        "roster unchanged"
    );
    a.shutdown().await;
    peer.quit().await?;
    Ok(())
}

/// Well-formed but hostile stanzas (the server forwards them; bad XML would end the sender's
/// own stream at the server, which is checked last).
fn hostile_stanzas(me: &str, own_bare: &str) -> Vec<String> {
    let big = "A".repeat(60_000);
    let mut v = vec![
        format!("<message xmlns='jabber:client' to='{me}' id='{big}' type='chat'/>"),
        format!(
            "<message xmlns='jabber:client' to='{me}' type='bogus'><body>bad type</body></message>"
        ),
        format!(
            "<message xmlns='jabber:client' to='{me}'><x xmlns='urn:example:unknown'><y/></x></message>"
        ),
        format!("<presence xmlns='jabber:client' to='{me}' type='bogus'/>"),
        format!(
            "<presence xmlns='jabber:client' to='{me}'><show>sleeping</show><priority>999999</priority></presence>"
        ),
        format!(
            "<iq xmlns='jabber:client' to='{me}' type='get' id='q1'><unknown xmlns='urn:example:q'/></iq>"
        ),
        format!(
            "<iq xmlns='jabber:client' to='{me}' type='set' id='q2'><unknown xmlns='urn:example:q'/></iq>"
        ),
        format!("<iq xmlns='jabber:client' to='{me}' type='result' id='not-ours'/>"),
        format!(
            "<iq xmlns='jabber:client' to='{me}' type='error' id='not-ours-2'><error type='cancel'/></iq>"
        ),
        format!(
            "<iq xmlns='jabber:client' to='{me}' type='get'><ping xmlns='urn:xmpp:ping'/></iq>"
        ),
        format!(
            "<message xmlns='jabber:client' to='{me}'><result xmlns='urn:xmpp:mam:2' queryid='nope' id='A1'>\
                 <forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' from='x@localhost' \
                 to='{own_bare}'><body>fake archive</body></message></forwarded></result></message>"
        ),
        format!(
            "<message xmlns='jabber:client' to='{me}'><sent xmlns='urn:xmpp:carbons:2'>\
                 <forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' from='{own_bare}/x' \
                 to='victim@localhost'><body>fake sent carbon</body></message></forwarded></sent></message>"
        ),
        format!(
            "<message xmlns='jabber:client' to='{me}'><received xmlns='urn:xmpp:carbons:2'/></message>"
        ),
        format!(
            "<message xmlns='jabber:client' to='{me}'><received xmlns='urn:xmpp:receipts' id='unknown'/></message>"
        ),
        format!(
            "<message xmlns='jabber:client' to='{me}'><displayed xmlns='urn:xmpp:chat-markers:0' id='unknown'/></message>"
        ),
        format!(
            "<message xmlns='jabber:client' to='{me}'><composing xmlns='http://jabber.org/protocol/chatstates'><x/></composing></message>"
        ),
        format!(
            "<message xmlns='jabber:client' to='{me}' type='error' id='zzz'><error type='cancel'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"
        ),
        format!(
            "<iq xmlns='jabber:client' to='{me}' type='set' id='r2'><query xmlns='jabber:iq:roster'><item/></query></iq>"
        ),
        format!(
            "<iq xmlns='jabber:client' to='{me}' type='get' id='d1'><query xmlns='http://jabber.org/protocol/disco#info' node='no-such-node'/></iq>"
        ),
    ];
    let deep = format!("{}{}", "<a>".repeat(200), "</a>".repeat(200));
    v.push(format!(
        "<message xmlns='jabber:client' to='{me}'><x xmlns='urn:example:deep'>{deep}</x></message>"
    ));
    let attrs: String = (0..500).map(|i| format!(" a{i}='{i}'")).collect();
    v.push(format!(
        "<message xmlns='jabber:client' to='{me}'><x xmlns='urn:example:attrs'{attrs}/></message>"
    ));
    // Pad to 100 with variations of the above.
    let mut i = 0;
    while v.len() < 100 {
        v.push(format!(
            "<message xmlns='jabber:client' to='{me}' type='{}'><x xmlns='urn:example:{i}'/>\
             <received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>\
             <message xmlns='jabber:client'><body>nested {i}</body></message></forwarded></received></message>",
            ["chat", "normal", "headline", "weird"][i % 4]
        ));
        i += 1;
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_hostile_stanzas_change_nothing() -> Result<()> {
    let server = support::fresh_server()?;
    let (alice, mallory) = (server.account("alice")?, server.account("mallory")?);
    let mut a = Node::new(&server, &alice).await?;
    a.online().await?;
    let me = own_full_jid(&a).await?;
    let mut peer = server.peer(&mallory).await?;
    let stanzas = hostile_stanzas(&me, &alice.jid);
    ensure!(stanzas.len() == 100);
    for s in &stanzas {
        peer.command(json!({"cmd": "raw", "xml": s})).await?;
    }
    // An entity-expansion attempt: the server must refuse it (restricted XML) and end the
    // sender's stream; it never reaches us.
    let mut evil = support::Peer::connect(
        &server,
        &mallory,
        PeerOptions {
            resource: Some("evil".into()),
            ..PeerOptions::default()
        },
    )
    .await?;
    let laughs = "<!DOCTYPE lolz [<!ENTITY lol 'lol'><!ENTITY lol2 '&lol;&lol;&lol;&lol;'>]>\
                  <message xmlns='jabber:client'><body>&lol2;</body></message>";
    evil.send_cmd(&json!({"cmd": "raw", "xml": laughs})).await?;
    evil.next_event_matching(
        |e| matches!(event_name(e), "disconnected" | "error"),
        EVENT_TIMEOUT,
    )
    .await
    .context("the server should drop a stream with a DOCTYPE")?;

    // Everything before the sentinel has been processed when it arrives (in-order stream).
    peer.send_message(&alice.jid, "sentinel").await?;
    let mut unexpected = Vec::new();
    a.wait_for("sentinel", |e| match e {
        Event::Message { message, .. } if message.body == "sentinel" => Some(()),
        Event::Message { message, .. } => {
            unexpected.push(message.body.clone());
            None
        }
        Event::Connection { state, .. } if !matches!(state, ConnectionState::Online { .. }) => {
            unexpected.push(format!("connection: {state:?}"));
            None
        }
        _ => None,
    })
    .await?;
    // A message of type 'weird' is not a valid stanza and is dropped by the parser; the
    // 'normal'/'headline'/'chat' ones only carry spoofed carbons, which are rejected.
    ensure!(unexpected.is_empty(), "state changed: {unexpected:?}");
    let convs = a.client.conversations(&alice.jid)?;
    ensure!(
        convs.len() == 1 && convs[0].peer == mallory.jid,
        "{convs:?}"
    );
    ensure!(a.history(&mallory.jid)?.len() == 1, "only the sentinel");
    ensure!(a.client.contacts(&alice.jid)?.is_empty());
    // Still alive and answering.
    a.send(&mallory.jid, "still here").await?;
    peer.next_event_matching(|e| e["body"] == "still here", EVENT_TIMEOUT)
        .await?;
    a.shutdown().await;
    peer.quit().await?;
    drop(evil);
    Ok(())
}
