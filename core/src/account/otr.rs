//! OTR in the account actor (XEP-0364): incoming OTR bodies go to the engine, whatever it
//! asks to send goes out at once (kept out of archives and carbons), and what it has for the
//! user is stored like any message. OTR messages seen in the archive or as carbons were for
//! another client and cannot be read here; they are never fed to the engine, and one that
//! carried text stays visible with that explanation.

use jid::{BareJid, Jid};

use super::Actor;
use crate::api::{Error, Event, Result};
use crate::crypto::otr::{OtrEvent, OtrStatus};
use crate::proto::otr::{self as wire, Kind};
use crate::services::otr as service;
use crate::store::{Encryption, IncomingMessage, MessageKind};

/// What an OTR message turned into for the timeline.
pub(super) struct Shown {
    pub body: String,
    pub encryption: Option<Encryption>,
    pub undecryptable: Option<String>,
}

/// Shown for OTR-encrypted text that reached us from the archive or as a carbon.
const NOT_HERE: &str = "could not decrypt — an OTR-encrypted message: OTR messages can only \
                        be read live, by the one client in the private conversation (not from \
                        the server's archive or on another of your devices)";

impl Actor {
    /// The OTR stage of the inbound pipeline for a chat message whose body is OTR (see
    /// [`wire::is_otr`]). `live`: it came straight from the contact (not archived, not a
    /// carbon, not ours). `None`: protocol traffic only, nothing for the timeline.
    pub(super) async fn otr_inbound(
        &mut self,
        from: &Jid,
        body: &str,
        live: bool,
    ) -> Option<Shown> {
        let kind = wire::classify(body);
        if !live {
            return match kind {
                Kind::Data | Kind::Fragment { data: true, .. } => Some(Shown {
                    body: String::new(),
                    encryption: Some(Encryption::Otr),
                    undecryptable: Some(NOT_HERE.into()),
                }),
                Kind::Tagged | Kind::Plain => Some(Shown {
                    body: strip_tag(body),
                    encryption: None,
                    undecryptable: None,
                }),
                Kind::Protocol | Kind::Fragment { .. } => None,
            };
        }
        let peer = from.to_bare();
        let events = match self.otr.receive(from, body.to_owned()).await {
            Ok(ev) => ev,
            Err(e) => {
                tracing::warn!(error = %e, "OTR engine unavailable");
                return matches!(kind, Kind::Data | Kind::Fragment { data: true, .. }).then(|| {
                    Shown {
                        body: String::new(),
                        encryption: Some(Encryption::Otr),
                        undecryptable: Some(format!("could not decrypt — {e}")),
                    }
                });
            }
        };
        let mut texts = Vec::new();
        let mut problems = Vec::new();
        let mut encrypted = false;
        for item in self.apply_otr(&peer, events).await {
            match item {
                Item::Text { text, encrypted: e } => {
                    encrypted |= e;
                    texts.push(text);
                }
                Item::Problem(p) => problems.push(p),
            }
        }
        if texts.is_empty() && problems.is_empty() {
            return None;
        }
        Some(Shown {
            body: texts.join("\n"),
            encryption: (encrypted || !problems.is_empty()).then_some(Encryption::Otr),
            undecryptable: (!problems.is_empty()).then(|| problems.join("\n")),
        })
    }

    /// Applies what the engine asked for after one of the `Client`'s calls; anything it had
    /// for the timeline is stored.
    pub(super) async fn otr_command(
        &mut self,
        peer: &BareJid,
        events: Vec<OtrEvent>,
    ) -> Result<()> {
        let wants_wire = events.iter().any(|e| matches!(e, OtrEvent::Inject { .. }));
        if wants_wire && !self.online {
            return Err(Error::NotConnected(self.rec.jid.clone()));
        }
        for item in self.apply_otr(peer, events).await {
            let (body, encryption, undecryptable) = match item {
                Item::Text { text, encrypted } => {
                    (text, encrypted.then_some(Encryption::Otr), None)
                }
                Item::Problem(p) => (String::new(), Some(Encryption::Otr), Some(p)),
            };
            let id = crate::proto::new_id();
            let msg = IncomingMessage {
                peer: peer.to_string(),
                kind: MessageKind::Chat,
                sender: self.otr.address(peer).to_string(),
                stanza_id: Some(id),
                body,
                timestamp: crate::store::now_ms(),
                encryption,
                undecryptable,
                ..IncomingMessage::default()
            };
            match self.store.ingest(self.rec.id, &msg) {
                Ok(r) => self.emit_ingest(r, true),
                Err(e) => tracing::error!(error = %e, "cannot store an OTR message"),
            }
        }
        Ok(())
    }

    /// Sends what the engine injects (in order), records and reports state changes and
    /// verification results; returns what is for the timeline.
    async fn apply_otr(&mut self, peer: &BareJid, events: Vec<OtrEvent>) -> Vec<Item> {
        let account = self.rec.jid.clone();
        let mut items = Vec::new();
        for ev in events {
            match ev {
                OtrEvent::Inject { body, .. } => {
                    let to = self.otr.address(peer);
                    self.send_now(wire::stanza(to, &crate::proto::new_id(), &body))
                        .await;
                }
                OtrEvent::Plaintext {
                    text, encrypted, ..
                } => items.push(Item::Text { text, encrypted }),
                OtrEvent::Status { status, .. } => {
                    let (fingerprint, verified) = self.otr_peer_key(peer, status).await;
                    if status == OtrStatus::Encrypted
                        && let Err(e) = self.store.set_conversation_encryption(
                            self.rec.id,
                            peer.as_str(),
                            Some("otr"),
                        )
                    {
                        tracing::warn!(error = %e, "cannot mark the conversation OTR-encrypted");
                    }
                    self.emit(Event::OtrStatus {
                        account: account.clone(),
                        peer: peer.to_string(),
                        status,
                        fingerprint,
                        verified,
                    });
                }
                OtrEvent::SmpQuestion { question, .. } => self.emit(Event::OtrSmpQuestion {
                    account: account.clone(),
                    peer: peer.to_string(),
                    question,
                }),
                OtrEvent::SmpResult {
                    verified,
                    fingerprint,
                    ..
                } => {
                    if let (true, Some(f)) = (verified, fingerprint)
                        && let Err(e) = self.store.set_otr_verified(
                            self.rec.id,
                            peer.as_str(),
                            &service::compact(&f),
                            true,
                        )
                    {
                        tracing::warn!(error = %e, "cannot record a verified OTR key");
                    }
                    self.emit(Event::OtrSmpResult {
                        account: account.clone(),
                        peer: peer.to_string(),
                        verified,
                    });
                }
                OtrEvent::Error { reason, .. } => {
                    tracing::info!(%peer, %reason, "OTR problem");
                    items.push(Item::Problem(service::problem_text(&reason)));
                }
            }
        }
        items
    }

    /// The contact's key in an encrypted conversation (libotr's format) and whether the
    /// user verified it; it is recorded as seen.
    async fn otr_peer_key(&self, peer: &BareJid, status: OtrStatus) -> (Option<String>, bool) {
        if status != OtrStatus::Encrypted {
            return (None, false);
        }
        let key = peer.to_string();
        let fpr = match self.otr.call(move |e| e.peer_fingerprint(&key)).await {
            Ok(Some(f)) => f,
            Ok(None) => return (None, false),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the contact's OTR key");
                return (None, false);
            }
        };
        let verified = self
            .store
            .otr_fingerprint_seen(self.rec.id, peer.as_str(), &service::compact(&fpr))
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot record the contact's OTR key");
                false
            });
        (Some(fpr.to_string()), verified)
    }
}

/// One thing for the timeline from the engine.
enum Item {
    Text { text: String, encrypted: bool },
    Problem(String),
}

/// Ordinary text without the OTR whitespace tag (which would show as odd blanks).
fn strip_tag(body: &str) -> String {
    match body.find(" \t  \t\t\t\t \t \t \t  ") {
        Some(at) => {
            let rest = &body[at..];
            let tag_len = rest
                .find(|c: char| c != ' ' && c != '\t')
                .unwrap_or(rest.len());
            format!("{}{}", &body[..at], &rest[tag_len..])
        }
        None => body.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whitespace_tag_is_stripped() {
        let tagged = "hello \t  \t\t\t\t \t \t \t    \t\t  \t\t";
        assert_eq!(strip_tag(tagged), "hello");
        assert_eq!(strip_tag("a \t  \t\t\t\t \t \t \t    \t\t  \t\tb"), "ab");
        assert_eq!(strip_tag("plain"), "plain");
    }
}
