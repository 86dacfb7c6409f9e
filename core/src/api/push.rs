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
use crate::store::PushRecord;

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
        self.enable_push_node(&acc.jid, service.as_str(), &reg.node, &reg.secret)
            .await
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
        // The secret first: a registration in the store always has its secret.
        self.inner
            .secrets
            .save(&secret_key(&acc.jid), &Password::new(secret))
            .await?;
        let rec = PushRecord {
            service: service.to_string(),
            node: node.to_owned(),
        };
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
        let service = parse_service(&rec.service)?;
        // Best effort on the network (the server may be unreachable): forgetting it here
        // is what must happen.
        if let Err(e) = self
            .iq(
                &acc.jid,
                own(&acc.jid)?,
                true,
                xml::disable(&service, &rec.node),
            )
            .await
        {
            tracing::info!(account = %acc.jid, error = %e, "push not disabled on the server");
        }
        if let Err(e) = self
            .iq(
                &acc.jid,
                Jid::from(service),
                true,
                xml::unregister(&rec.node),
            )
            .await
        {
            tracing::info!(account = %acc.jid, error = %e, "push gateway not told");
        }
        self.inner.store.delete_push_registration(acc.id)?;
        self.inner.secrets.delete(&secret_key(&acc.jid)).await?;
        Ok(true)
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
