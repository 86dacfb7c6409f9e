//! The reconnect closure for `StanzaStream::new`, with typed status reports.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_xmpp::stanzastream::{Connection, ReconnectHint};
use tokio_xmpp::xmlstream::Timeouts;
use tracing::{debug, info, warn};

use super::auth::{LoginOptions, authenticate};
use super::backoff::Backoff;
use super::error::ConnectError;
use super::{ConnectionInfo, Connector};

/// How long to wait for a polite close of a stream nobody wants any more.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Progress of (re)connecting, for the UI.
#[derive(Debug, Clone)]
pub enum ConnectStatus {
    /// Attempt number `attempt` (from 1) of this reconnect round has started.
    Connecting {
        /// 1 for the first attempt after the stream was lost (or at start).
        attempt: u32,
    },
    /// Logged in; the `StanzaStream` now binds a resource or resumes the session.
    Authenticated(ConnectionInfo),
    /// The attempt failed. `retry_in: None` means the error is fatal and no further attempt
    /// is made: the `StanzaStream` ends and the user has to act.
    Failed {
        /// What went wrong.
        error: ConnectError,
        /// When the next attempt starts, if any.
        retry_in: Option<Duration>,
    },
}

/// The connector closure type `StanzaStream::new` expects.
pub type ReconnectFn = tokio_xmpp::stanzastream::Reconnector;

/// Build the reconnect closure for `tokio_xmpp::stanzastream::StanzaStream::new`.
///
/// Each invocation spawns a task that tries [`authenticate`] until it succeeds (the
/// connection goes to the `StanzaStream`), a fatal error occurs (the slot is dropped, which
/// ends the `StanzaStream`), or the `StanzaStream` goes away. Retryable errors wait 1 s,
/// doubling up to 30 s; every invocation starts again at 1 s.
///
/// **Stopping while reconnecting:** tokio-xmpp 6's worker does not notice
/// `StanzaStream::close()` while it waits for a connection, so `close()` would hang until a
/// login succeeds, and it panics if the slot is dropped. So after a fatal
/// [`ConnectStatus::Failed`] (or to stop while offline) the owner drops the `StanzaStream`
/// and the `status` receiver; the task then parks the slot (see [`park`]) and ends.
pub fn reconnector(
    connector: Connector,
    jid: jid::Jid,
    password: String,
    timeouts: Timeouts,
    status: mpsc::UnboundedSender<ConnectStatus>,
) -> ReconnectFn {
    let password: Arc<str> = password.into();
    Box::new(move |hint: ReconnectHint, slot| {
        let options = LoginOptions {
            resume: hint.resume,
            ..LoginOptions::default()
        };
        tokio::spawn(connect_loop(
            connector.clone(),
            jid.clone(),
            Arc::clone(&password),
            (timeouts, options),
            status.clone(),
            slot,
        ));
    })
}

/// Gives up on a connection slot without resolving it.
///
/// tokio-xmpp 6's worker panics ("Backend was unable to handle reconnect request.") when the
/// slot is dropped, and ignores `close()` while it waits. Forgetting the sender leaves the
/// (already abandoned) worker waiting quietly instead: a few bytes, once per stopped account.
fn park(slot: oneshot::Sender<Connection>) {
    std::mem::forget(slot);
}

fn report(status: &mpsc::UnboundedSender<ConnectStatus>, event: ConnectStatus) {
    if let Err(e) = status.send(event) {
        debug!(event = ?e.0, "connection status receiver is gone; status not delivered");
    }
}

async fn connect_loop(
    connector: Connector,
    jid: jid::Jid,
    password: Arc<str>,
    (timeouts, options): (Timeouts, LoginOptions),
    status: mpsc::UnboundedSender<ConnectStatus>,
    mut slot: oneshot::Sender<Connection>,
) {
    let mut backoff = Backoff::new();
    let mut attempt: u32 = 0;
    loop {
        if slot.is_closed() || status.is_closed() {
            debug!(%jid, "stanza stream or status receiver gone; not connecting");
            return;
        }
        attempt = attempt.saturating_add(1);
        report(&status, ConnectStatus::Connecting { attempt });
        let result = tokio::select! {
            result = authenticate(&connector, &jid, &password, timeouts, &options) => result,
            () = slot.closed() => {
                debug!(%jid, "stanza stream went away while connecting");
                return;
            }
            () = status.closed() => {
                debug!(%jid, "status receiver dropped while connecting; stopping");
                park(slot);
                return;
            }
        };
        match result {
            Ok((connection, info)) => {
                report(&status, ConnectStatus::Authenticated(info));
                if let Err(mut connection) = slot.send(connection) {
                    debug!(%jid, "stanza stream went away; closing the fresh stream");
                    match tokio::time::timeout(SHUTDOWN_TIMEOUT, connection.stream.shutdown()).await
                    {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => debug!(error = %e, "closing the unused stream failed"),
                        Err(_) => debug!("closing the unused stream timed out"),
                    }
                }
                return;
            }
            Err(error) if error.is_fatal() => {
                warn!(%jid, %error, "giving up connecting; user action needed");
                report(
                    &status,
                    ConnectStatus::Failed {
                        error,
                        retry_in: None,
                    },
                );
                // Keep the worker waiting (it would panic on a dropped slot) until the actor
                // lets go of the status channel, then leave the slot unresolved.
                status.closed().await;
                park(slot);
                return;
            }
            Err(error) => {
                let delay = backoff.next_delay();
                info!(%jid, %error, ?delay, "connecting failed; will retry");
                report(
                    &status,
                    ConnectStatus::Failed {
                        error,
                        retry_in: Some(delay),
                    },
                );
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = slot.closed() => {
                        debug!(%jid, "stanza stream went away while waiting to retry");
                        return;
                    }
                    () = status.closed() => {
                        debug!(%jid, "status receiver dropped while waiting to retry; stopping");
                        park(slot);
                        return;
                    }
                }
            }
        }
    }
}
