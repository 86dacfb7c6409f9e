//! Life on a phone (issue 9): telling the server whether the app is in use (XEP-0352
//! Client State Indication), so that in the background it holds back what is not urgent;
//! and push (XEP-0357) through a Starling push gateway to a UnifiedPush endpoint.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use jid::Jid;
use serde::Serialize;

use super::{Client, ConnectionState, Error, Event, Result, parse_bare};
use crate::account::Command;
use crate::proto::push as xml;
use crate::secrets::Password;
use crate::store::{AccountRecord, PushRecord};

impl Client {
    /// The app is in use (`true`: visible) or in the background (`false`). Every account
    /// tells its server (XEP-0352, when offered), now if online and on every new stream;
    /// in the background the server holds back presence and other unimportant traffic.
    pub async fn set_client_active(&self, active: bool) {
        if self.inner.client_active.swap(active, Ordering::SeqCst) == active {
            return;
        }
        let actors: Vec<_> = self.inner.actors.lock().await.values().cloned().collect();
        for tx in actors {
            if tx.send(Command::ClientState).await.is_err() {
                tracing::debug!("an account actor is gone");
            }
        }
    }

    /// Whether the app is in use, as last set with [`Client::set_client_active`].
    pub fn client_active(&self) -> bool {
        self.inner.client_active.load(Ordering::SeqCst)
    }

    /// The app may be killed any moment now (Android saving its state): everything stored
    /// goes to disk for good. Messages are stored before they are sent or shown, so this
    /// loses nothing if skipped; it makes a power cut lose nothing either.
    pub async fn save_for_shutdown(&self) -> Result<()> {
        let store = self.inner.store.clone();
        let complete = tokio::task::spawn_blocking(move || store.checkpoint())
            .await
            .map_err(|e| Error::Push(format!("the flush task failed: {e}")))??;
        tracing::debug!(complete, "profile database checkpointed");
        Ok(())
    }
}

impl Client {
    /// Push without Google (XEP-0357 + UnifiedPush): registers the device's UnifiedPush
    /// `endpoint` with the push gateway `gateway` (a `starling push-gateway`), then enables
    /// push on the account's server for the node and secret the gateway gave. From then on
    /// the server wakes the device through the gateway — with no sender and no text — while
    /// the app sleeps; push is enabled again after every fresh session. Online only.
    pub async fn enable_push(
        &self,
        account: &str,
        gateway: &str,
        endpoint: &str,
    ) -> Result<PushRecord> {
        let acc = self.account_record(account)?;
        let service = parse_service(gateway)?;
        let endpoint_sha256 = sha256_hex(endpoint);
        // A distributor hands out the same endpoint on every start: nothing to register
        // again, but the server hears it once more (cheap, and heals a lost enable).
        if let Some(old) = self.inner.store.push_registration(acc.id)? {
            if old.service == service.as_str()
                && old.endpoint_sha256.as_deref() == Some(endpoint_sha256.as_str())
                && let Some(secret) = self
                    .inner
                    .secrets
                    .load_stored(&secret_key(&acc.jid))
                    .await?
            {
                self.send_enable(&acc.jid, &old, secret.expose()).await?;
                return Ok(old);
            }
            // A new endpoint or gateway: the old node must not keep waking the device.
            self.retire_push(&acc.jid, &old).await;
        }
        let answer = self
            .iq(
                &acc.jid,
                Jid::from(service.clone()),
                true,
                xml::register(endpoint),
            )
            .await?
            .ok_or_else(|| Error::Push("the push gateway sent an empty answer".into()))?;
        let reg = xml::parse_registered(&answer).map_err(|e| Error::Push(e.to_string()))?;
        let rec = PushRecord {
            service: service.to_string(),
            node: reg.node,
            endpoint_sha256: Some(endpoint_sha256),
        };
        self.enable_record(&acc, rec, &reg.secret).await
    }

    /// The account's push gateway, found by service discovery on its server (XEP-0030): an
    /// item that is a push service (`pubsub/push`) taking Starling registrations. Online
    /// only.
    pub async fn push_gateway(&self, account: &str) -> Result<String> {
        let acc = self.account_record(account)?;
        self.discover_service(&acc.jid, |jid, info| {
            xml::is_gateway(info).then(|| jid.to_owned())
        })
        .await?
        .ok_or_else(|| {
            let domain = acc.jid.rsplit('@').next().unwrap_or_default();
            Error::Push(format!(
                "{domain} offers no push gateway; ask its admin to run `starling push-gateway` \
                 (README: Push without Google)"
            ))
        })
    }

    /// Enables XEP-0357 push on the account's server for a node of any app server (`service`)
    /// with its publish-options `secret`; kept, and enabled again after every fresh session.
    pub async fn enable_push_node(
        &self,
        account: &str,
        service: &str,
        node: &str,
        secret: &str,
    ) -> Result<PushRecord> {
        let acc = self.account_record(account)?;
        let service = parse_service(service)?;
        if let Some(old) = self.inner.store.push_registration(acc.id)?
            && (old.service != service.as_str() || old.node != node)
        {
            self.retire_push(&acc.jid, &old).await;
        }
        let rec = PushRecord {
            service: service.to_string(),
            node: node.to_owned(),
            endpoint_sha256: None,
        };
        self.enable_record(&acc, rec, secret).await
    }

    /// Keeps the secret, enables `rec` on the server, then keeps `rec`.
    async fn enable_record(
        &self,
        acc: &AccountRecord,
        rec: PushRecord,
        secret: &str,
    ) -> Result<PushRecord> {
        // The secret first: a registration in the store always has its secret.
        self.inner
            .secrets
            .save(&secret_key(&acc.jid), &Password::new(secret))
            .await?;
        self.send_enable(&acc.jid, &rec, secret).await?;
        self.inner.store.set_push_registration(acc.id, &rec)?;
        Ok(rec)
    }

    /// Turns push off: disabled on the account's server and forgotten by the gateway (when
    /// online), and forgotten here. False if it was not on.
    pub async fn disable_push(&self, account: &str) -> Result<bool> {
        let acc = self.account_record(account)?;
        let Some(rec) = self.inner.store.push_registration(acc.id)? else {
            return Ok(false);
        };
        self.retire_push(&acc.jid, &rec).await;
        self.inner.store.delete_push_registration(acc.id)?;
        self.inner.secrets.delete(&secret_key(&acc.jid)).await?;
        Ok(true)
    }

    /// Disables `rec` on the account's server and tells its gateway to forget the node.
    /// Best effort on the network (the server may be unreachable, the gateway gone): the
    /// caller forgets or replaces it here either way.
    async fn retire_push(&self, account: &str, rec: &PushRecord) {
        let Ok(service) = parse_service(&rec.service) else {
            return;
        };
        let Ok(server) = own(account) else {
            return;
        };
        if let Err(e) = self
            .iq(account, server, true, xml::disable(&service, &rec.node))
            .await
        {
            tracing::info!(account, error = %e, "push not disabled on the server");
        }
        if let Err(e) = self
            .iq(
                account,
                Jid::from(service),
                true,
                xml::unregister(&rec.node),
            )
            .await
        {
            tracing::info!(account, error = %e, "push gateway not told");
        }
    }

    /// The account's push registration, if push is on.
    pub fn push_registration(&self, account: &str) -> Result<Option<PushRecord>> {
        let acc = self.account_record(account)?;
        Ok(self.inner.store.push_registration(acc.id)?)
    }

    async fn send_enable(&self, account: &str, rec: &PushRecord, secret: &str) -> Result<()> {
        let service = parse_service(&rec.service)?;
        self.iq(
            account,
            own(account)?,
            true,
            xml::enable(&service, &rec.node, secret),
        )
        .await
        .map_err(|e| match e {
            Error::Refused(why) => Error::Push(format!(
                "your server refused to enable push ({why}); it needs XEP-0357 (Prosody: \
                     mod_cloud_notify)"
            )),
            e => e,
        })?;
        Ok(())
    }

    /// After a fresh session (not a resumption) the server may have forgotten push: enable
    /// it again.
    pub(super) async fn reenable_push(&self, account: &str) {
        let Ok(acc) = self.account_record(account) else {
            return;
        };
        let Ok(Some(rec)) = self.inner.store.push_registration(acc.id) else {
            return;
        };
        let secret = match self.inner.secrets.load_stored(&secret_key(&acc.jid)).await {
            Ok(Some(s)) => s,
            Ok(None) => {
                tracing::warn!(
                    account,
                    "push is on but its secret is gone: enable it again"
                );
                return;
            }
            Err(e) => {
                tracing::warn!(account, error = %e, "cannot read the push secret");
                return;
            }
        };
        match self.send_enable(&acc.jid, &rec, secret.expose()).await {
            Ok(()) => tracing::info!(account, node = rec.node, "push enabled again"),
            Err(e) => tracing::warn!(account, error = %e, "push not enabled again"),
        }
    }
}

/// Lowercase hex SHA-256 of `s`.
fn sha256_hex(s: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The keyring entry of an account's push secret.
fn secret_key(account: &str) -> String {
    format!("push-secret:{account}")
}

/// A push service's address (usually a bare domain, such as a component's).
fn parse_service(s: &str) -> Result<jid::BareJid> {
    jid::BareJid::new(s.trim()).map_err(|_| Error::InvalidJid(s.to_owned()))
}

/// The account's own bare JID, where XEP-0357 commands go.
fn own(account: &str) -> Result<Jid> {
    Ok(Jid::from(parse_bare(account)?))
}

/// What a wake did ([`Client::wake`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WakeReport {
    /// The account was not connected: this wake connected it.
    pub connected: bool,
    /// Messages stored while waking (new ones from the archive, and live ones).
    pub stored: u64,
    /// From the call to everything being stored and sent, in milliseconds.
    pub took_ms: u64,
}

impl Client {
    /// The one entry point for "something may be waiting" — a push wakeup, or the network
    /// coming back: connects the account if it is not (or lets a running connection resume),
    /// waits until this session's catch-up is stored and our own queue is sent, and says so.
    /// Safe to call any number of times, also at once: there is only ever one connection,
    /// and a call while everything is done returns at once. Fails with the reason when the
    /// account cannot get online within `timeout`.
    pub async fn wake(&self, account: &str, timeout: Duration) -> Result<WakeReport> {
        let started = Instant::now();
        let acc = self.account_record(account)?;
        // Listen before connecting: nothing that happens next is missed.
        let mut events = self.events();
        let connected = self.start_actor(&acc.jid).await?;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut stored = 0u64;
        loop {
            let caught_up = self
                .query(&acc.jid, |reply| Command::CaughtUp { reply })
                .await
                .unwrap_or(false);
            if caught_up && self.inner.store.outbox(acc.id)?.is_empty() {
                break;
            }
            let event = match tokio::time::timeout_at(deadline, events.recv()).await {
                Ok(Ok(e)) => e,
                Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
                Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => {
                    return Err(Error::NotConnected(acc.jid.clone()));
                }
                Err(_) => return Err(Error::Timeout("waking the account")),
            };
            match event {
                Event::Message { account, .. } if account == acc.jid => stored += 1,
                Event::Connection {
                    account,
                    state: ConnectionState::Failed { error, .. },
                } if account == acc.jid => {
                    return Err(Error::Push(format!("cannot get online: {error}")));
                }
                _ => {}
            }
        }
        // A round trip last: the server answers in order, so whatever it had for us before
        // (the stanzas a resumed session replays) is stored by the time its answer is in.
        // It also proves the link is alive, not just believed to be.
        let server = Jid::from(parse_bare(&acc.jid)?.domain().to_owned());
        let ping = xmpp_parsers::ping::Ping.into();
        match tokio::time::timeout_at(deadline, self.iq(&acc.jid, server, false, ping)).await {
            Ok(Ok(_)) | Ok(Err(Error::Refused(_))) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(Error::Timeout("waking the account")),
        }
        while let Ok(event) = events.try_recv() {
            if matches!(&event, Event::Message { account, .. } if *account == acc.jid) {
                stored += 1;
            }
        }
        Ok(WakeReport {
            connected,
            stored,
            took_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        })
    }
}

/// What a UnifiedPush distributor tells the app about one registration (the connector's
/// callbacks on Android). Starling registers one UnifiedPush instance per account, named by
/// the account's JID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnifiedPushEvent {
    /// The distributor's endpoint for the instance: new, or the same one again (they repeat
    /// it on every registration).
    NewEndpoint(String),
    /// A push message arrived. Its content is not read: a gateway's wakeup carries nothing.
    Message,
    /// The distributor dropped the instance (uninstalled, or the user chose another one).
    Unregistered,
    /// Registering with the distributor failed, for the reason it gave.
    RegistrationFailed(String),
}

/// What [`Client::on_unified_push`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum UnifiedPushOutcome {
    /// Push is on: the server wakes the device through this gateway and node.
    Enabled { gateway: String, node: String },
    /// The account was woken; what the wake did.
    Woke(WakeReport),
    /// Push is off for the account.
    Disabled,
}

impl Client {
    /// The UnifiedPush connector's logic: what to do with each distributor callback for the
    /// account `instance`. A new endpoint gets the account online (within `timeout`), finds
    /// its server's push gateway (or keeps the one it has) and enables push through it — an
    /// endpoint seen before costs no new registration; a message wakes the account
    /// ([`Client::wake`]); an unregistration turns push off. Safe to call again with the same
    /// event. A failed registration is an error naming the distributor's reason.
    pub async fn on_unified_push(
        &self,
        instance: &str,
        event: UnifiedPushEvent,
        timeout: Duration,
    ) -> Result<UnifiedPushOutcome> {
        let acc = self.account_record(instance)?;
        match event {
            UnifiedPushEvent::Message => Ok(UnifiedPushOutcome::Woke(
                self.wake(&acc.jid, timeout).await?,
            )),
            UnifiedPushEvent::NewEndpoint(endpoint) => {
                let endpoint = endpoint.trim();
                if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
                    return Err(Error::Push(format!(
                        "the UnifiedPush distributor gave an endpoint that is not a web address \
                         ({} characters); reinstall or change the distributor",
                        endpoint.chars().count()
                    )));
                }
                self.wake(&acc.jid, timeout).await?;
                let gateway = match self.inner.store.push_registration(acc.id)? {
                    Some(rec) => rec.service,
                    None => self.push_gateway(&acc.jid).await?,
                };
                let rec = self.enable_push(&acc.jid, &gateway, endpoint).await?;
                Ok(UnifiedPushOutcome::Enabled {
                    gateway: rec.service,
                    node: rec.node,
                })
            }
            UnifiedPushEvent::Unregistered => {
                self.disable_push(&acc.jid).await?;
                Ok(UnifiedPushOutcome::Disabled)
            }
            UnifiedPushEvent::RegistrationFailed(reason) => Err(Error::Push(format!(
                "the UnifiedPush distributor did not register Starling ({reason}); the app \
                 still works while it is open — pick another distributor to get messages \
                 while it sleeps"
            ))),
        }
    }
}
