//! OTR for one account (XEP-0364 over [`crate::crypto::otr`]): the engine, started on first
//! use (our long-term DSA key is made once and kept in the OS keyring), which client of each
//! contact the private conversation is with, and the engine's blocking calls moved off the
//! async runtime.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use jid::{BareJid, Jid};

use crate::crypto::otr::{self, OtrConfig, OtrEngine, OtrEvent, OtrStatus, PrivateKey};
use crate::secrets::{self, Password, Secrets};

/// Why the OTR engine could not be started or used.
#[derive(Debug, thiserror::Error)]
pub enum OtrError {
    #[error("cannot keep the OTR key: {0}")]
    Secret(#[from] secrets::Error),
    #[error(
        "the stored OTR key of {0} is corrupt: delete the keyring entry `otr-key:{0}` and a new key is made (contacts will see a new fingerprint)"
    )]
    CorruptKey(String),
    #[error(transparent)]
    Otr(#[from] otr::Error),
    #[error("the OTR engine stopped unexpectedly")]
    Task,
}

/// The keyring entry holding an account's OTR private key.
fn key_name(account: &str) -> String {
    format!("otr-key:{account}")
}

/// The account's OTR state, shared by the `Client` (which starts, ends and sends) and the
/// account's actor (which receives). Cheap to clone.
#[derive(Clone)]
pub struct OtrHandle(Arc<Inner>);

struct Inner {
    account: String,
    secrets: Secrets,
    engine: tokio::sync::OnceCell<Arc<OtrEngine>>,
    /// Per contact, the full JID we last heard OTR from: the client the private
    /// conversation is with, where our OTR messages go.
    resources: Mutex<HashMap<BareJid, Jid>>,
}

impl std::fmt::Debug for OtrHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtrHandle")
            .field("account", &self.0.account)
            .field("started", &self.0.engine.initialized())
            .finish()
    }
}

impl OtrHandle {
    pub fn new(account: &str, secrets: Secrets) -> Self {
        OtrHandle(Arc::new(Inner {
            account: account.to_owned(),
            secrets,
            engine: tokio::sync::OnceCell::new(),
            resources: Mutex::new(HashMap::new()),
        }))
    }

    /// The engine, started now if needed: the key is loaded from the keyring, or made (a
    /// few seconds in debug builds, once per account) and stored there.
    pub async fn engine(&self) -> Result<Arc<OtrEngine>, OtrError> {
        self.0
            .engine
            .get_or_try_init(|| self.start())
            .await
            .cloned()
    }

    /// The engine if it is running already.
    pub fn running(&self) -> Option<Arc<OtrEngine>> {
        self.0.engine.get().cloned()
    }

    async fn start(&self) -> Result<Arc<OtrEngine>, OtrError> {
        let name = key_name(&self.0.account);
        let key = match self.0.secrets.load_stored(&name).await? {
            Some(stored) => {
                let corrupt = || OtrError::CorruptKey(self.0.account.clone());
                let bytes =
                    zeroize::Zeroizing::new(B64.decode(stored.expose()).map_err(|_| corrupt())?);
                PrivateKey::from_bytes(&bytes).map_err(|_| corrupt())?
            }
            None => {
                let key = tokio::task::spawn_blocking(PrivateKey::generate)
                    .await
                    .map_err(|_| OtrError::Task)?;
                let encoded = Password::new(B64.encode(key.to_bytes().as_slice()));
                self.0.secrets.save(&name, &encoded).await?;
                key
            }
        };
        let account = self.0.account.clone();
        let engine = tokio::task::spawn_blocking(move || {
            OtrEngine::new(
                &account,
                &key,
                OtrConfig {
                    // XMPP carries messages of any length: no fragments (as Pidgin does on
                    // XMPP). Fragments from contacts are reassembled all the same.
                    message_size: usize::MAX,
                    advertise: false,
                },
            )
        })
        .await
        .map_err(|_| OtrError::Task)??;
        Ok(Arc::new(engine))
    }

    /// Runs `f` on the engine (started if needed) on a blocking thread: OTR's key exchange
    /// and identity verification steps take milliseconds to seconds of arithmetic.
    pub async fn call<T, F>(&self, f: F) -> Result<T, OtrError>
    where
        T: Send + 'static,
        F: FnOnce(&OtrEngine) -> otr::Result<T> + Send + 'static,
    {
        let engine = self.engine().await?;
        Ok(tokio::task::spawn_blocking(move || f(&engine))
            .await
            .map_err(|_| OtrError::Task)??)
    }

    /// The state of the private conversation with `peer` (plaintext if the engine never ran).
    pub async fn status(&self, peer: &BareJid) -> Result<OtrStatus, OtrError> {
        if self.running().is_none() {
            return Ok(OtrStatus::Plaintext);
        }
        let peer = peer.to_string();
        self.call(move |e| e.status(&peer)).await
    }

    /// Hands an OTR message body from `from` to the engine.
    pub async fn receive(&self, from: &Jid, body: String) -> Result<Vec<OtrEvent>, OtrError> {
        let peer = from.to_bare();
        self.heard_from(from);
        let key = peer.to_string();
        self.call(move |e| e.receive(&key, &body)).await
    }

    /// Remembers which client of the contact speaks OTR with us.
    fn heard_from(&self, from: &Jid) {
        if from.resource().is_some() {
            self.0
                .resources
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(from.to_bare(), from.clone());
        }
    }

    /// Where our OTR messages to `peer` go: the client we heard OTR from, else the bare JID.
    pub fn address(&self, peer: &BareJid) -> Jid {
        self.0
            .resources
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(peer)
            .cloned()
            .unwrap_or_else(|| Jid::from(peer.clone()))
    }
}

/// A fingerprint as stored and compared: 40 upper-case hex digits, no spaces.
pub fn compact(fingerprint: &otr::Fingerprint) -> String {
    fingerprint.to_string().replace(' ', "")
}

/// A fingerprint typed by a user (any case, spaces or colons): compact form, if valid.
pub fn parse_fingerprint(s: &str) -> Option<String> {
    let hex: String = s
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (hex.len() == 40 && hex.chars().all(|c| c.is_ascii_hexdigit())).then_some(hex)
}

/// What an OTR [`OtrEvent::Error`] means for the user, shown in the timeline.
pub fn problem_text(problem: &otr::OtrProblem) -> String {
    match problem {
        otr::OtrProblem::Unreadable => "could not decrypt — an OTR message arrived that this \
             private conversation cannot read (it was restarted or lost on one side); the \
             contact's software was told. Start OTR again to continue privately."
            .into(),
        otr::OtrProblem::AuthenticationFailed => {
            "setting up the private (OTR) conversation failed: the contact's key could not be \
             checked. Try starting OTR again."
                .into()
        }
        other => format!("OTR: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_fingerprints_are_normalised() {
        let want = "0123456789ABCDEF0123456789ABCDEF01234567";
        assert_eq!(
            parse_fingerprint("01234567 89abcdef 01234567 89ABCDEF 01234567").as_deref(),
            Some(want)
        );
        assert_eq!(parse_fingerprint(want).as_deref(), Some(want));
        assert_eq!(parse_fingerprint("0123"), None);
        assert_eq!(
            parse_fingerprint("0123456789ABCDEF0123456789ABCDEF0123456G"),
            None
        );
        let f = otr::Fingerprint::from_bytes([0xab; 20]);
        assert_eq!(compact(&f), "AB".repeat(20));
    }

    #[tokio::test]
    async fn an_idle_engine_reports_plaintext_without_starting() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let h = OtrHandle::new("alice@example.org", Secrets::file_only(dir.path()));
        let bob: BareJid = "bob@example.org".parse()?;
        assert_eq!(h.status(&bob).await?, OtrStatus::Plaintext);
        assert!(h.running().is_none());
        assert_eq!(h.address(&bob), Jid::from(bob.clone()));
        h.heard_from(&"bob@example.org/pidgin".parse()?);
        assert_eq!(h.address(&bob).to_string(), "bob@example.org/pidgin");
        Ok(())
    }

    #[tokio::test]
    async fn a_corrupt_stored_key_is_reported() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let secrets = Secrets::file_only(dir.path());
        secrets
            .save("otr-key:alice@example.org", &Password::new("bm90IGEga2V5"))
            .await?;
        let h = OtrHandle::new("alice@example.org", secrets);
        match h.engine().await {
            Err(OtrError::CorruptKey(a)) => assert_eq!(a, "alice@example.org"),
            other => anyhow::bail!("expected a corrupt key error, got {other:?}"),
        }
        Ok(())
    }
}
