//! OTR on the `Client` (XEP-0364): starting and ending private conversations, sending in
//! them, our and the contacts' fingerprints, and identity verification (SMP).
//!
//! OTR sessions live in memory, with one client of the contact at a time; they end when
//! Starling quits. A conversation that went private stays marked `otr`: Starling then sends
//! nothing unencrypted in it until the user ends OTR ([`Client::otr_end`]) or turns to OMEMO.

use jid::BareJid;
use serde::Serialize;

use super::{Client, Error, Result, parse_bare, parse_contact};
use crate::crypto::otr::{OtrEvent, OtrStatus};
use crate::services::otr::{self as service, OtrError, OtrHandle};
use crate::store::{AccountRecord, Encryption, MessageKind, MessageRecord, OtrFingerprintRecord};

impl From<OtrError> for Error {
    fn from(e: OtrError) -> Self {
        Error::Otr(e.to_string())
    }
}

impl From<crate::crypto::otr::Error> for Error {
    fn from(e: crate::crypto::otr::Error) -> Self {
        Error::Otr(e.to_string())
    }
}

/// The private conversation with a contact, as a view shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OtrInfo {
    pub status: OtrStatus,
    /// The contact's key while encrypted (libotr's format: five groups of eight hex digits).
    pub fingerprint: Option<String>,
    /// The user verified that key.
    pub verified: bool,
}

impl Client {
    /// The account's OTR state (the engine itself starts on first use).
    pub(crate) fn otr_handle(&self, acc: &AccountRecord) -> OtrHandle {
        self.inner
            .otr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(acc.jid.clone())
            .or_insert_with(|| OtrHandle::new(&acc.jid, self.inner.secrets.clone()))
            .clone()
    }

    fn otr_target(&self, account: &str, peer: &str) -> Result<(AccountRecord, BareJid, OtrHandle)> {
        let acc = self.inner.store.account(parse_bare(account)?.as_str())?;
        let peer = parse_contact(peer)?;
        let handle = self.otr_handle(&acc);
        Ok((acc, peer, handle))
    }

    /// Runs an engine command for `peer` and has the account's actor carry out what it asks
    /// (messages to send now, state to report).
    async fn otr_run<F>(
        &self,
        acc: &AccountRecord,
        peer: &BareJid,
        handle: &OtrHandle,
        f: F,
    ) -> Result<()>
    where
        F: FnOnce(
                &crate::crypto::otr::OtrEngine,
                &str,
            ) -> crate::crypto::otr::Result<Vec<OtrEvent>>
            + Send
            + 'static,
    {
        // Checked before the engine moves (an SMP step it took could not be sent).
        let online = self
            .query(&acc.jid, |reply| crate::account::Command::IsOnline {
                reply,
            })
            .await?;
        if !online {
            return Err(Error::NotConnected(acc.jid.clone()));
        }
        let key = peer.to_string();
        let events = handle.call(move |e| f(e, &key)).await?;
        self.command(&acc.jid, |reply| crate::account::Command::Otr {
            peer: peer.clone(),
            events,
            reply,
        })
        .await
    }

    /// Asks `peer` to start a private conversation (an OTR query; their software answers
    /// with the key exchange, reported as [`super::Event::OtrStatus`]). From now on the
    /// conversation is OTR: nothing is sent unencrypted in it until [`Client::otr_end`].
    /// The first use makes our OTR key (seconds in debug builds) and keeps it in the keyring.
    pub async fn otr_start(&self, account: &str, peer: &str) -> Result<()> {
        let (acc, peer, handle) = self.otr_target(account, peer)?;
        self.otr_run(&acc, &peer, &handle, |e, p| e.start(p))
            .await?;
        self.inner
            .store
            .set_conversation_encryption(acc.id, peer.as_str(), Some("otr"))?;
        Ok(())
    }

    /// Ends the private conversation with `peer` (telling their software); the conversation
    /// is no longer OTR, so what the user sends next goes unencrypted unless they turn OMEMO
    /// on (or the contact writes with OMEMO, which turns it on as usual).
    pub async fn otr_end(&self, account: &str, peer: &str) -> Result<()> {
        let (acc, peer, handle) = self.otr_target(account, peer)?;
        if handle.running().is_some() {
            let key = peer.to_string();
            let events = handle.call(move |e| e.end(&key)).await?;
            let told = self
                .command(&acc.jid, |reply| crate::account::Command::Otr {
                    peer: peer.clone(),
                    events,
                    reply,
                })
                .await;
            if let Err(e) = told {
                // Ended here all the same; their software notices at the next message.
                tracing::info!(%peer, error = %e, "OTR ended without telling the contact");
            }
        }
        self.inner
            .store
            .end_conversation_encryption(acc.id, peer.as_str(), "otr")?;
        Ok(())
    }

    /// The state of the private conversation with `peer`.
    pub async fn otr_status(&self, account: &str, peer: &str) -> Result<OtrInfo> {
        let (acc, peer, handle) = self.otr_target(account, peer)?;
        let status = handle.status(&peer).await?;
        let fingerprint = if status == OtrStatus::Encrypted {
            let key = peer.to_string();
            handle.call(move |e| e.peer_fingerprint(&key)).await?
        } else {
            None
        };
        let verified = match &fingerprint {
            Some(f) => self
                .inner
                .store
                .otr_fingerprints(acc.id, peer.as_str())?
                .iter()
                .any(|r| r.verified && r.fingerprint == service::compact(f)),
            None => false,
        };
        Ok(OtrInfo {
            status,
            fingerprint: fingerprint.map(|f| f.to_string()),
            verified,
        })
    }

    /// Our OTR fingerprint (libotr's format), as contacts' software shows it. Makes our key
    /// on first use.
    pub async fn otr_fingerprint(&self, account: &str) -> Result<String> {
        let acc = self.inner.store.account(parse_bare(account)?.as_str())?;
        Ok(self
            .otr_handle(&acc)
            .engine()
            .await?
            .fingerprint()
            .to_string())
    }

    /// The OTR keys `peer` has used with us, and which are verified.
    pub fn otr_fingerprints(&self, account: &str, peer: &str) -> Result<Vec<OtrFingerprintRecord>> {
        let acc = self.inner.store.account(parse_bare(account)?.as_str())?;
        Ok(self
            .inner
            .store
            .otr_fingerprints(acc.id, parse_contact(peer)?.as_str())?)
    }

    /// Marks `peer`'s OTR key `fingerprint` verified (compared over another channel) or not.
    pub fn otr_set_verified(
        &self,
        account: &str,
        peer: &str,
        fingerprint: &str,
        verified: bool,
    ) -> Result<()> {
        let acc = self.inner.store.account(parse_bare(account)?.as_str())?;
        let fpr = service::parse_fingerprint(fingerprint).ok_or_else(|| {
            Error::Otr(format!(
                "{fingerprint} is not an OTR fingerprint (40 hex digits)"
            ))
        })?;
        self.inner
            .store
            .set_otr_verified(acc.id, parse_contact(peer)?.as_str(), &fpr, verified)?;
        Ok(())
    }

    /// Verifies `peer`'s identity with the Socialist Millionaires' Protocol: they must
    /// answer `question` with the same `secret`. The result comes as
    /// [`super::Event::OtrSmpResult`]; success marks their key verified.
    pub async fn otr_smp_start(
        &self,
        account: &str,
        peer: &str,
        question: Option<&str>,
        secret: &str,
    ) -> Result<()> {
        let (acc, peer, handle) = self.otr_target(account, peer)?;
        let question = question.map(str::to_owned);
        let secret = zeroize::Zeroizing::new(secret.to_owned());
        self.otr_run(&acc, &peer, &handle, move |e, p| {
            e.start_smp(p, question.as_deref(), &secret)
        })
        .await
    }

    /// Answers the contact's [`super::Event::OtrSmpQuestion`] with our secret.
    pub async fn otr_smp_answer(&self, account: &str, peer: &str, secret: &str) -> Result<()> {
        let (acc, peer, handle) = self.otr_target(account, peer)?;
        let secret = zeroize::Zeroizing::new(secret.to_owned());
        self.otr_run(&acc, &peer, &handle, move |e, p| e.answer_smp(p, &secret))
            .await
    }

    /// Declines or aborts an identity verification with `peer`.
    pub async fn otr_smp_abort(&self, account: &str, peer: &str) -> Result<()> {
        let (acc, peer, handle) = self.otr_target(account, peer)?;
        self.otr_run(&acc, &peer, &handle, |e, p| e.abort_smp(p))
            .await
    }

    /// Sends `body` in the private conversation with `peer`: encrypted by the engine now,
    /// then stored and queued like any message (the archive and our other devices are told
    /// not to keep it). Refused, with what to do, when no private conversation is up.
    pub(super) async fn send_otr(
        &self,
        acc: &AccountRecord,
        peer: &BareJid,
        body: &str,
    ) -> Result<MessageRecord> {
        let handle = self.otr_handle(acc);
        let refuse = |reason: String| Error::NotEncryptable {
            jid: peer.to_string(),
            reason,
        };
        match handle.status(peer).await? {
            OtrStatus::Encrypted => {}
            OtrStatus::Finished => {
                return Err(refuse(
                    "they ended the private (OTR) conversation: end it here too to write \
                     unencrypted, or start OTR again"
                        .into(),
                ));
            }
            OtrStatus::Plaintext => {
                return Err(refuse(
                    "this conversation is private (OTR) but no OTR session is up (OTR \
                     sessions end when either side quits): start OTR again, or end OTR to \
                     write unencrypted"
                        .into(),
                ));
            }
        }
        let key = peer.to_string();
        let text = body.to_owned();
        let events = handle.call(move |e| e.send(&key, &text)).await?;
        let wire: Vec<String> = events
            .into_iter()
            .filter_map(|e| match e {
                OtrEvent::Inject { body, .. } => Some(body),
                _ => None,
            })
            .collect();
        let Some((last, earlier)) = wire.split_last() else {
            return Err(refuse("the OTR engine produced nothing to send".into()));
        };
        if wire.iter().any(|w| !w.starts_with("?OTR")) {
            // The session went down between the check and the encryption: the engine
            // passed the text through. Never put it on the wire.
            return Err(refuse("the private (OTR) conversation just ended".into()));
        }
        let to = handle.address(peer);
        for fragment in earlier {
            let stanza = crate::proto::otr::stanza(to.clone(), &crate::proto::new_id(), fragment);
            self.inner
                .store
                .queue_stanza(acc.id, &String::from(&minidom::Element::from(stanza)))?;
        }
        let id = crate::proto::new_id();
        let stanza = crate::proto::otr::stanza(to, &id, last);
        self.queue(
            acc,
            crate::store::OutgoingMessage {
                peer: peer.to_string(),
                kind: MessageKind::Chat,
                sender: format!("{}/{}", acc.jid, acc.resource),
                id,
                body: body.to_owned(),
                stanza: String::from(&minidom::Element::from(stanza)),
                encryption: Some(Encryption::Otr),
            },
        )
        .await
    }
}
