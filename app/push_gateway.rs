//! `starling push-gateway`: the XEP-0357 app server, as a XEP-0114 component.
//!
//! Clients register their UnifiedPush endpoint ([`starling_core::proto::push`]: a node and
//! a secret come back) and enable push on their own server for that node. When the server
//! publishes a notification for a node, the gateway checks the secret and POSTs a wakeup to
//! the node's endpoint — the same few bytes every time: no sender, no text, nothing from the
//! notification leaves the gateway. Publishes closer together than the minimum interval
//! are answered but not forwarded (the device fetches everything anyway once awake). An
//! endpoint answering 404 or 410 is gone: its registration is deleted and the server told,
//! so it stops pushing. Registrations live in SQLite; secrets only as SHA-256 hashes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use futures::StreamExt as _;
use rusqlite::{OptionalExtension as _, params};
use rusqlite_migration::{M, Migrations};
use sha2::{Digest as _, Sha256};
use starling_core::proto::push::{self as xml, GatewayRequest, Registration};
use tokio_xmpp::jid::Jid;
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};
use tokio_xmpp::xmlstream::Timeouts;

/// What every wakeup carries: the same bytes, whatever the notification said.
pub const WAKEUP_BODY: &[u8] = b"{\"wake\":true}";

/// How the gateway runs (its command line).
#[derive(Debug, Clone, clap::Args)]
pub struct GatewayArgs {
    /// The component's address, as configured on the server (e.g. push.example.org).
    #[arg(long)]
    pub jid: String,
    /// The server's component port (XEP-0114; Prosody: `component_ports`).
    #[arg(long, default_value = "127.0.0.1:5347")]
    pub server: String,
    /// The registrations database (created if missing).
    #[arg(long, default_value = "/var/lib/starling-push/gateway.sqlite")]
    pub database: PathBuf,
    /// Forward at most one wakeup per node this often (milliseconds); more are coalesced.
    #[arg(long, default_value_t = 1000)]
    pub min_interval_ms: u64,
    /// Extra CA certificate (PEM) to trust for endpoints, besides the system's.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
}

/// The component secret: from `STARLING_COMPONENT_SECRET` (never the command line).
pub fn secret_from_env() -> Result<String> {
    std::env::var("STARLING_COMPONENT_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            anyhow!(
                "set STARLING_COMPONENT_SECRET to the component secret the server has for {}",
                "the gateway's address"
            )
        })
}

const MIGRATIONS: &[&str] = &["CREATE TABLE registration (
    node          TEXT PRIMARY KEY,
    owner         TEXT NOT NULL,      -- the bare JID that registered it
    endpoint      TEXT NOT NULL,      -- the UnifiedPush endpoint to wake
    secret_sha256 BLOB NOT NULL,
    created_at    INTEGER NOT NULL,   -- ms since the epoch
    last_push_at  INTEGER             -- last forwarded wakeup
);"];

/// The registrations.
#[derive(Clone)]
pub struct Registrations(Arc<Mutex<rusqlite::Connection>>);

/// A node's registration, as a publish needs it.
struct Target {
    endpoint: String,
    secret_sha256: Vec<u8>,
    last_push_at: Option<i64>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn sha256(s: &str) -> Vec<u8> {
    Sha256::digest(s.as_bytes()).to_vec()
}

fn random_hex(bytes: usize) -> String {
    use rand::RngCore as _;
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Registrations {
    pub fn open(path: &Path) -> Result<Registrations> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let mut conn = rusqlite::Connection::open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        Migrations::new(MIGRATIONS.iter().map(|m| M::up(m)).collect())
            .to_latest(&mut conn)
            .context("preparing the registrations database")?;
        Ok(Registrations(Arc::new(Mutex::new(conn))))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, rusqlite::Connection> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn register(&self, owner: &str, endpoint: &str) -> Result<Registration> {
        let r = Registration {
            node: random_hex(16),
            secret: random_hex(24),
        };
        self.lock().execute(
            "INSERT INTO registration (node, owner, endpoint, secret_sha256, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![r.node, owner, endpoint, sha256(&r.secret), now_ms()],
        )?;
        Ok(r)
    }

    fn unregister(&self, owner: &str, node: &str) -> Result<bool> {
        Ok(self.lock().execute(
            "DELETE FROM registration WHERE node = ?1 AND owner = ?2",
            params![node, owner],
        )? > 0)
    }

    fn target(&self, node: &str) -> Result<Option<Target>> {
        Ok(self
            .lock()
            .query_row(
                "SELECT endpoint, secret_sha256, last_push_at FROM registration WHERE node = ?1",
                [node],
                |r| {
                    Ok(Target {
                        endpoint: r.get(0)?,
                        secret_sha256: r.get(1)?,
                        last_push_at: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// Records a forwarded wakeup unless one went out less than `min_interval` ago
    /// (then false: coalesced).
    fn claim_push(&self, node: &str, min_interval: Duration) -> Result<bool> {
        let now = now_ms();
        let since = now - i64::try_from(min_interval.as_millis()).unwrap_or(i64::MAX);
        Ok(self.lock().execute(
            "UPDATE registration SET last_push_at = ?2 \
             WHERE node = ?1 AND (last_push_at IS NULL OR last_push_at <= ?3)",
            params![node, now, since],
        )? > 0)
    }

    fn expire(&self, node: &str) -> Result<()> {
        self.lock()
            .execute("DELETE FROM registration WHERE node = ?1", [node])?;
        Ok(())
    }

    /// How many registrations there are.
    pub fn count(&self) -> Result<i64> {
        Ok(self
            .lock()
            .query_row("SELECT count(*) FROM registration", [], |r| r.get(0))?)
    }
}

/// What a publish comes to.
enum Outcome {
    Forwarded,
    Coalesced,
    /// The endpoint is gone (404/410): registration deleted.
    Gone,
    /// Unknown node, or the wrong secret.
    Refused,
    Failed(String),
}

/// The component stream: XEP-0114 over tokio-xmpp's XML stream, carrying raw elements.
///
/// tokio-xmpp's `Component` needs xmpp-parsers' `component` feature, which switches the
/// default stanza namespace of the whole build to `jabber:component:accept` — and every
/// Starling client in the same binary stops working. So the handshake is done here, and
/// stanzas cross the stream as elements: incoming ones are moved to `jabber:client` to be
/// parsed; outgoing ones are moved to the stream's namespace before they are sent.
type ComponentStream =
    tokio_xmpp::xmlstream::XmlStream<tokio::io::BufStream<tokio::net::TcpStream>, minidom::Element>;

const NS_COMPONENT: &str = "jabber:component:accept";
const NS_CLIENT: &str = "jabber:client";

/// Connects to the server's component port and authenticates (XEP-0114 handshake).
async fn connect(server: &str, jid: &str, secret: &str) -> Result<ComponentStream> {
    use futures::SinkExt as _;
    use tokio_xmpp::xmlstream::{StreamHeader, initiate_stream};
    let tcp = tokio::net::TcpStream::connect(server).await?;
    let header = StreamHeader {
        from: None,
        to: Some(jid.to_owned().into()),
        id: None,
    };
    let mut pending = initiate_stream(
        tokio::io::BufStream::new(tcp),
        NS_COMPONENT,
        header,
        Timeouts::tight(),
    )
    .await?;
    let id = pending
        .take_header()
        .id
        .ok_or_else(|| anyhow!("the server's stream has no id"))?
        .into_owned();
    let mut stream: ComponentStream = pending.skip_features();
    let handshake =
        tokio_xmpp::parsers::component::Handshake::from_stream_id_and_password(id, secret);
    stream.send(&minidom::Element::from(handshake)).await?;
    match stream.next().await {
        Some(Ok(el)) if el.is("handshake", NS_COMPONENT) => Ok(stream),
        Some(Ok(el)) => Err(anyhow!(
            "the server refused the component: {}",
            String::from(&el)
        )),
        Some(Err(e)) => Err(anyhow!("the server refused the component: {e:?}")),
        None => Err(anyhow!("the server closed the stream (wrong secret?)")),
    }
}

/// The server a component belongs to: its address without the first label
/// (`push.example.org` → `example.org`).
fn server_domain(component: &str) -> String {
    component
        .split_once('.')
        .map_or(component, |(_, d)| d)
        .to_owned()
}

/// An element of the component stream as a client stanza (for xmpp-parsers).
fn as_client(el: minidom::Element) -> minidom::Element {
    renamespace(el, NS_COMPONENT, NS_CLIENT)
}

/// A client stanza (from xmpp-parsers) in the component stream's namespace: Prosody routes
/// a component's stanzas only in its stream's namespace (a `jabber:client` one is taken
/// as addressed to the server itself).
fn as_component(stanza: impl Into<minidom::Element>) -> minidom::Element {
    renamespace(stanza.into(), NS_CLIENT, NS_COMPONENT)
}

/// `el` itself in namespace `to` if it is in `from` (its children keep theirs).
fn renamespace(mut el: minidom::Element, from: &str, to: &str) -> minidom::Element {
    if el.ns() != from {
        return el;
    }
    let mut out = minidom::Element::bare(el.name(), to);
    *out.attrs_mut() = el.attrs().clone();
    for node in el.take_nodes() {
        out.append_node(node);
    }
    out
}

/// Runs the gateway until the component stream ends for good.
pub async fn run(args: &GatewayArgs, secret: &str) -> Result<()> {
    use futures::SinkExt as _;
    let regs = Registrations::open(&args.database)?;
    let http = starling_core::services::upload::client(args.ca_file.as_deref())
        .map_err(|e| anyhow!("cannot set up HTTPS: {e}"))?;
    let mut stream = connect(&args.server, &args.jid, secret)
        .await
        .with_context(|| {
            format!(
                "cannot connect to the server's component port {} as {} (check the address, \
                 the port and STARLING_COMPONENT_SECRET)",
                args.server, args.jid
            )
        })?;
    // Readiness, for service managers and tests.
    println!("push gateway {} ready", args.jid);
    tracing::info!(
        jid = args.jid,
        registrations = regs.count()?,
        "push gateway online"
    );
    let (tx, mut replies) = tokio::sync::mpsc::unbounded_channel::<Iq>();
    let min_interval = Duration::from_millis(args.min_interval_ms);
    loop {
        tokio::select! {
            read = stream.next() => {
                let el = match read {
                    Some(Ok(el)) => el,
                    Some(Err(tokio_xmpp::xmlstream::ReadError::SoftTimeout)) => {
                        // Quiet for a while: a ping to the server keeps the stream alive
                        // (its answer is read like anything else).
                        let ping = Iq::from_get(
                            format!("ping-{}", random_hex(4)),
                            tokio_xmpp::parsers::ping::Ping,
                        )
                        .with_to(Jid::new(&server_domain(&args.jid))?);
                        stream.send(&as_component(ping)).await?;
                        continue;
                    }
                    Some(Err(tokio_xmpp::xmlstream::ReadError::ParseError(e))) => {
                        tracing::warn!(error = %e, "unreadable element from the server");
                        continue;
                    }
                    Some(Err(e)) => return Err(anyhow!("the component stream failed: {e:?}")),
                    None => return Err(anyhow!("the server closed the component stream")),
                };
                let Ok(iq) = Iq::try_from(as_client(el)) else { continue };
                if let Some(reply) = handle(&regs, &http, iq, min_interval, &tx) {
                    stream.send(&as_component(reply)).await?;
                }
            }
            Some(reply) = replies.recv() => stream.send(&as_component(reply)).await?,
        }
    }
}

/// Who asked what: enough to answer.
struct Asker {
    from: Jid,
    to: Option<Jid>,
    id: String,
}

impl Asker {
    fn result(&self, payload: Option<minidom::Element>) -> Iq {
        Iq::Result {
            from: self.to.clone(),
            to: Some(self.from.clone()),
            id: self.id.clone(),
            payload,
        }
    }

    fn error(&self, type_: ErrorType, condition: DefinedCondition, text: &str) -> Iq {
        let mut error = StanzaError::new(type_, condition, "en", text);
        error.by = self.to.clone();
        Iq::Error {
            from: self.to.clone(),
            to: Some(self.from.clone()),
            id: self.id.clone(),
            error,
            payload: None,
        }
    }
}

/// Answers an IQ now (registration, disco), or later through `later` (a publish, once its
/// wakeup went out).
fn handle(
    regs: &Registrations,
    http: &reqwest::Client,
    iq: Iq,
    min_interval: Duration,
    later: &tokio::sync::mpsc::UnboundedSender<Iq>,
) -> Option<Iq> {
    let (get, asker, el) = match iq {
        Iq::Get {
            from: Some(from),
            to,
            id,
            payload,
        } => (true, Asker { from, to, id }, payload),
        Iq::Set {
            from: Some(from),
            to,
            id,
            payload,
        } => (false, Asker { from, to, id }, payload),
        _ => return None,
    };
    if get {
        if el.is("query", DISCO_INFO) {
            return Some(asker.result(Some(disco_info())));
        }
        return Some(asker.error(ErrorType::Cancel, DefinedCondition::ServiceUnavailable, ""));
    }
    if el.ns() == xml::NS_GATEWAY {
        return Some(registration(regs, &asker, &el));
    }
    let Some(publish) = xml::parse_publish(&el) else {
        return Some(asker.error(
            ErrorType::Cancel,
            DefinedCondition::FeatureNotImplemented,
            "",
        ));
    };
    let (regs, http, later) = (regs.clone(), http.clone(), later.clone());
    tokio::spawn(async move {
        let reply = match forward(&regs, &http, &publish, min_interval).await {
            Outcome::Forwarded | Outcome::Coalesced => asker.result(None),
            Outcome::Gone => asker.error(
                ErrorType::Cancel,
                DefinedCondition::ItemNotFound,
                "this device is gone; push was turned off for it",
            ),
            Outcome::Refused => asker.error(
                ErrorType::Auth,
                DefinedCondition::NotAuthorized,
                "unknown node or wrong secret",
            ),
            Outcome::Failed(why) => asker.error(
                ErrorType::Wait,
                DefinedCondition::RecipientUnavailable,
                &why,
            ),
        };
        if later.send(reply).is_err() {
            tracing::debug!("gateway stopped before a publish was answered");
        }
    });
    None
}

/// A client registers or unregisters (users only: a bare JID with a local part).
fn registration(regs: &Registrations, asker: &Asker, el: &minidom::Element) -> Iq {
    let owner = asker.from.to_bare();
    if owner.node().is_none() {
        return asker.error(ErrorType::Auth, DefinedCondition::Forbidden, "users only");
    }
    let stored = match xml::parse_request(el) {
        Ok(GatewayRequest::Register { endpoint }) => {
            regs.register(owner.as_str(), &endpoint).map(|r| {
                tracing::info!(%owner, node = r.node, "registered");
                Some(xml::registered(&r))
            })
        }
        Ok(GatewayRequest::Unregister { node }) => {
            regs.unregister(owner.as_str(), &node).map(|_| None)
        }
        Err(e) => {
            return asker.error(
                ErrorType::Modify,
                DefinedCondition::BadRequest,
                &e.to_string(),
            );
        }
    };
    match stored {
        Ok(payload) => asker.result(payload),
        Err(e) => {
            tracing::error!(error = %e, "cannot change a registration");
            asker.error(ErrorType::Wait, DefinedCondition::InternalServerError, "")
        }
    }
}

const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";

/// What the gateway is (XEP-0030): a push service speaking Starling's registration.
fn disco_info() -> minidom::Element {
    use minidom::rxml::xml_ncname;
    let feature = |var: &str| {
        minidom::Element::builder("feature", DISCO_INFO)
            .attr(xml_ncname!("var").to_owned(), var)
            .build()
    };
    minidom::Element::builder("query", DISCO_INFO)
        .append(
            minidom::Element::builder("identity", DISCO_INFO)
                .attr(xml_ncname!("category").to_owned(), "pubsub")
                .attr(xml_ncname!("type").to_owned(), "push")
                .attr(xml_ncname!("name").to_owned(), "Starling push gateway")
                .build(),
        )
        .append(feature(xml::NS_GATEWAY))
        .append(feature(xml::NS_PUSH))
        .build()
}

/// Checks a publish and wakes its endpoint.
async fn forward(
    regs: &Registrations,
    http: &reqwest::Client,
    publish: &xml::Publish,
    min_interval: Duration,
) -> Outcome {
    let target = match regs.target(&publish.node) {
        Ok(Some(t)) => t,
        Ok(None) => return Outcome::Refused,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let given = publish.secret.as_deref().map(sha256).unwrap_or_default();
    let same =
        given.len() == target.secret_sha256.len() && subtle_eq(&given, &target.secret_sha256);
    if !same {
        tracing::warn!(node = publish.node, "publish with a wrong secret refused");
        return Outcome::Refused;
    }
    match regs.claim_push(&publish.node, min_interval) {
        Ok(true) => {}
        Ok(false) => {
            tracing::debug!(node = publish.node, last = ?target.last_push_at, "wakeup coalesced");
            return Outcome::Coalesced;
        }
        Err(e) => return Outcome::Failed(e.to_string()),
    }
    let sent = http
        .post(&target.endpoint)
        .header("content-type", "application/json")
        .header("urgency", "high")
        .header("ttl", "86400")
        .body(WAKEUP_BODY)
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => {
            tracing::info!(node = publish.node, "wakeup sent");
            Outcome::Forwarded
        }
        Ok(r) if matches!(r.status().as_u16(), 404 | 410) => {
            tracing::info!(
                node = publish.node,
                status = r.status().as_u16(),
                "endpoint gone"
            );
            if let Err(e) = regs.expire(&publish.node) {
                tracing::error!(error = %e, "cannot remove an expired registration");
            }
            Outcome::Gone
        }
        Ok(r) => Outcome::Failed(format!(
            "the endpoint answered HTTP {}",
            r.status().as_u16()
        )),
        Err(e) => Outcome::Failed(format!("the endpoint is unreachable: {e}")),
    }
}

/// Equal bytes, compared in constant time.
fn subtle_eq(a: &[u8], b: &[u8]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrations_are_stored_hashed_and_coalesced() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let regs = Registrations::open(&dir.path().join("gw.sqlite"))?;
        let r = regs.register("alice@x", "https://up.example/a")?;
        assert_eq!(r.node.len(), 32);
        assert_eq!(r.secret.len(), 48);
        let t = regs.target(&r.node)?.context("stored")?;
        assert_eq!(t.secret_sha256, sha256(&r.secret));
        // The secret itself is nowhere in the database file.
        let raw = std::fs::read(dir.path().join("gw.sqlite"))?;
        assert!(
            !raw.windows(r.secret.len())
                .any(|w| w == r.secret.as_bytes())
        );
        assert!(regs.claim_push(&r.node, Duration::from_secs(60))?);
        assert!(
            !regs.claim_push(&r.node, Duration::from_secs(60))?,
            "coalesced"
        );
        assert!(regs.claim_push(&r.node, Duration::ZERO)?);
        // Only its owner can unregister it.
        assert!(!regs.unregister("mallory@x", &r.node)?);
        assert!(regs.unregister("alice@x", &r.node)?);
        assert_eq!(regs.count()?, 0);
        assert!(subtle_eq(b"abc", b"abc") && !subtle_eq(b"abc", b"abd"));
        Ok(())
    }

    /// Publishes for unknown nodes or with a wrong (or no) secret go nowhere.
    #[tokio::test]
    async fn publishes_need_the_nodes_secret() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let regs = Registrations::open(&dir.path().join("gw.sqlite"))?;
        // Port 9 on loopback: nothing listens; a forwarded wakeup would fail to connect.
        let r = regs.register("alice@x", "https://127.0.0.1:9/up")?;
        let http = starling_core::services::upload::client(None).map_err(|e| anyhow!("{e}"))?;
        let publish = |node: &str, secret: Option<&str>| xml::Publish {
            node: node.to_owned(),
            secret: secret.map(str::to_owned),
        };
        let zero = Duration::ZERO;
        for p in [
            publish("nope", Some(&r.secret)),
            publish(&r.node, Some("wrong")),
            publish(&r.node, None),
        ] {
            assert!(matches!(
                forward(&regs, &http, &p, zero).await,
                Outcome::Refused
            ));
        }
        assert_eq!(regs.target(&r.node)?.and_then(|t| t.last_push_at), None);
        // The right secret is forwarded (and here fails: nothing listens).
        assert!(matches!(
            forward(&regs, &http, &publish(&r.node, Some(&r.secret)), zero).await,
            Outcome::Failed(_)
        ));
        Ok(())
    }
}
