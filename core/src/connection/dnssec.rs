//! DNSSEC-validated lookups for DANE (RFC 7673 §3): the SRV and TLSA answers a DANE decision
//! rests on, each found secure, insecure or bogus.
//!
//! A second hickory resolver asks the same nameserver as [`super::dns`] with the DO bit set
//! and validates the answers itself, up to a trust anchor: the IANA root keys built into
//! hickory, or the DNSKEY records of a file ([`TRUST_ANCHOR_ENV`], for test zones).
//!
//! A bogus answer is only believed when the DNSKEY set of the anchor zone above the name
//! (the closest one, for a file with several zones) validates. A resolver or network that
//! strips DNSSEC data makes everything look bogus; that means "cannot tell", which is
//! treated as insecure with a warning: no DANE, PKIX as without DNSSEC. (An attacker who
//! can do that could equally strip the answers; PKIX still holds then.) A name under no
//! anchor zone (possible with a file of non-root anchors) cannot be validated either.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::lookup::Lookup;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::dnssec::{Proof, TrustAnchors};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use hickory_resolver::proto::serialize::txt::trust_anchor::{Entry, Parser};
use tracing::{debug, warn};

use super::dane::Tlsa;
use super::dns::{self, SrvAnswer, Transport};
use super::error::ConnectError;

/// How long one validated lookup may take, with the queries for the chain of keys behind
/// it. Middleboxes that drop queries with the DO bit would otherwise delay every login by
/// the resolver's retries; past this there is no verdict (no DANE), as for stripped data.
const VALIDATION_TIMEOUT: Duration = Duration::from_secs(8);

/// Environment variable naming a trust anchor file (DNSKEY records in zone-file format) to
/// use instead of the IANA root keys.
pub const TRUST_ANCHOR_ENV: &str = "STARLING_DNSSEC_TRUST_ANCHOR";

/// The keys DNSSEC validation starts from, and the zones they belong to.
#[derive(Clone)]
pub(super) struct Anchor {
    keys: Arc<TrustAnchors>,
    zones: Vec<Name>,
}

impl Anchor {
    /// Reads DNSKEY records (zone-file format, e.g. what `ldns-keygen` writes) from `path`.
    pub(super) fn from_file(path: &Path) -> Result<Anchor, ConnectError> {
        let shown = path.display();
        let bad = |e: String| {
            ConnectError::invalid_settings(format!(
                "cannot use the DNSSEC trust anchor file {shown}: {e}"
            ))
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let entries = Parser::new(text.as_str())
            .parse()
            .map_err(|e| bad(e.to_string()))?;
        let mut zones: Vec<Name> = Vec::new();
        for entry in &entries {
            let Entry::DNSKEY(record) = entry else {
                continue; // DS anchors: hickory reads none yet
            };
            if !zones.contains(record.name()) {
                zones.push(record.name().clone());
            }
        }
        if zones.is_empty() {
            return Err(bad("it contains no DNSKEY record".to_owned()));
        }
        let keys = text
            .parse::<TrustAnchors>()
            .map_err(|e| bad(e.to_string()))?;
        Ok(Anchor {
            keys: Arc::new(keys),
            zones,
        })
    }
}

/// A DNSSEC-validated answer the caller must not use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Bogus {
    /// What was looked up, e.g. `SRV _xmpp-client._tcp.example.org`.
    pub what: String,
}

/// What validation said about one lookup.
enum Verdict {
    /// Records, all of them validated up to the anchor.
    Secure(Lookup),
    /// Records from a zone proven unsigned, or not all of them secure.
    Insecure(Lookup),
    /// The name or type does not exist (NXDOMAIN or NODATA, proven or not).
    NoRecords,
    /// No DNSSEC verdict: validation is impossible here, or the lookup failed.
    Unknown,
}

/// A validating resolver.
pub(super) struct Validator {
    resolver: TokioResolver,
    /// The zones whose keys are the anchor (the root for the IANA keys).
    anchor_zones: Vec<Name>,
}

impl Validator {
    /// A validating resolver on the same nameserver as the plain one.
    pub(super) fn new(
        dns_server: Option<SocketAddr>,
        anchor: Option<Anchor>,
    ) -> Result<Validator, String> {
        let mut builder = dns::resolver_builder(dns_server)?;
        builder.options_mut().validate = true;
        let anchor_zones = match anchor {
            Some(anchor) => {
                builder = builder.with_trust_anchor(anchor.keys);
                anchor.zones
            }
            None => vec![Name::root()],
        };
        let resolver = builder
            .build()
            .map_err(|e| format!("cannot set up DNSSEC validation: {e}"))?;
        Ok(Validator {
            resolver,
            anchor_zones,
        })
    }

    /// `service.domain.` SRV records, marked secure when they are. `None`: no DNSSEC
    /// verdict, so the caller looks them up without validation (and uses no DANE).
    pub(super) async fn srv(
        &self,
        service: &str,
        domain: &str,
        transport: Transport,
    ) -> Result<Option<SrvAnswer>, Bogus> {
        let name = format!("{service}.{domain}.");
        Ok(match self.lookup(&name, RecordType::SRV).await? {
            Verdict::Secure(lookup) => Some(dns::srv_answer(lookup.answers(), transport, true)),
            Verdict::Insecure(lookup) => Some(dns::srv_answer(lookup.answers(), transport, false)),
            Verdict::NoRecords => Some(SrvAnswer::Absent),
            Verdict::Unknown => None,
        })
    }

    /// The DNSSEC-secure TLSA records for `host:port` over TCP (RFC 6698 §3). Empty when
    /// there are none, or they are not secure: then PKIX applies.
    pub(super) async fn tlsa(&self, host: &str, port: u16) -> Result<Vec<Tlsa>, Bogus> {
        let name = format!("_{port}._tcp.{}.", host.trim_end_matches('.'));
        match self.lookup(&name, RecordType::TLSA).await? {
            Verdict::Secure(lookup) => Ok(tlsa_records(lookup.answers())),
            Verdict::Insecure(_) => {
                debug!(%name, "TLSA records are not DNSSEC-secure; ignored");
                Ok(Vec::new())
            }
            Verdict::NoRecords | Verdict::Unknown => Ok(Vec::new()),
        }
    }

    async fn lookup(&self, name: &str, rtype: RecordType) -> Result<Verdict, Bogus> {
        let Ok(result) =
            tokio::time::timeout(VALIDATION_TIMEOUT, self.resolver.lookup(name, rtype)).await
        else {
            warn!(%name, %rtype, "DNSSEC-validated lookup timed out; no DANE");
            return Ok(Verdict::Unknown);
        };
        let bogus = match result {
            Ok(lookup) => {
                let secure = all_secure(lookup.answers(), rtype);
                debug!(%name, %rtype, secure, "DNSSEC-validated lookup");
                return Ok(if secure {
                    Verdict::Secure(lookup)
                } else {
                    Verdict::Insecure(lookup)
                });
            }
            Err(e) if e.is_no_records_found() => return Ok(Verdict::NoRecords),
            Err(NetError::Dns(DnsError::DnssecBogus)) => true,
            Err(NetError::Dns(DnsError::Nsec {
                proof: Proof::Bogus,
                ..
            })) => true,
            Err(e) => {
                warn!(%name, %rtype, error = %e, "DNSSEC-validated lookup failed; no DANE");
                false
            }
        };
        if bogus && self.can_validate(name).await {
            warn!(%name, %rtype, "DNS answer failed DNSSEC validation");
            return Err(Bogus {
                what: format!("{rtype} {}", name.trim_end_matches('.')),
            });
        }
        Ok(Verdict::Unknown)
    }

    /// Whether `name` can be validated here at all: the DNSKEY set of the closest anchor
    /// zone above it validates (the root, for the IANA keys).
    async fn can_validate(&self, name: &str) -> bool {
        let Some(zone) = Name::from_ascii(name)
            .ok()
            .and_then(|name| closest_anchor(&self.anchor_zones, &name))
        else {
            warn!(%name, "no DNSSEC trust anchor covers this name; DANE is not used");
            return false;
        };
        let lookup = self.resolver.lookup(zone.clone(), RecordType::DNSKEY);
        let ok = match tokio::time::timeout(VALIDATION_TIMEOUT, lookup).await {
            Ok(Ok(lookup)) => all_secure(lookup.answers(), RecordType::DNSKEY),
            Ok(Err(e)) => {
                debug!(%zone, error = %e, "anchor DNSKEY lookup failed");
                false
            }
            Err(_) => {
                debug!(%zone, "anchor DNSKEY lookup timed out");
                false
            }
        };
        if !ok {
            warn!(
                %zone,
                "cannot validate DNSSEC here (the trust anchor's keys cannot be obtained or \
                 validated; does the resolver strip DNSSEC data?); DANE is not used"
            );
        }
        ok
    }
}

/// The longest of `zones` that `name` is in or under.
fn closest_anchor<'a>(zones: &'a [Name], name: &Name) -> Option<&'a Name> {
    zones
        .iter()
        .filter(|zone| zone.zone_of(name))
        .max_by_key(|zone| zone.num_labels())
}

/// At least one record of `rtype`, and every one secure.
fn all_secure(answers: &[Record], rtype: RecordType) -> bool {
    let mut of_type = answers
        .iter()
        .filter(|r| r.record_type() == rtype)
        .peekable();
    of_type.peek().is_some() && of_type.all(|r| r.proof.is_secure())
}

fn tlsa_records(answers: &[Record]) -> Vec<Tlsa> {
    answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TLSA(t) => Some(Tlsa {
                usage: t.cert_usage.into(),
                selector: t.selector.into(),
                matching: t.matching.into(),
                data: t.cert_data.clone(),
            }),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closest_anchor_zone_decides() {
        let name = |s: &str| Name::from_ascii(s).expect("name");
        let zones = [Name::root(), name("example.net."), name("sub.example.net.")];
        let closest = |n: &str| closest_anchor(&zones, &name(n)).map(Name::to_ascii);
        assert_eq!(
            closest("_xmpp-client._tcp.example.org."),
            Some(".".to_owned())
        );
        assert_eq!(
            closest("_5222._tcp.xmpp.example.net."),
            Some("example.net.".to_owned())
        );
        assert_eq!(
            closest("a.sub.example.net."),
            Some("sub.example.net.".to_owned())
        );
        assert_eq!(closest("example.net."), Some("example.net.".to_owned()));
        let only = [name("example.net.")];
        assert_eq!(closest_anchor(&only, &name("example.org.")), None);
    }

    #[test]
    fn anchor_file_names_its_zones() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("anchor.key");
        // A DNSKEY line as ldns-keygen writes it (key from RFC 6605's example).
        std::fs::write(
            &path,
            ".\tIN\tDNSKEY\t257 3 13 GojIhhXUN/u4v54ZQqGSnyhWJwaubCvTmeexv7bR6edbkrSqQpF64cYbcB7wNcP+e+MAnLr+Wi9xMWyQLc8NAA== ;{id = 55648 (ksk), size = 256b}\n\
             example.net.\t3600\tIN\tDNSKEY\t257 3 13 GojIhhXUN/u4v54ZQqGSnyhWJwaubCvTmeexv7bR6edbkrSqQpF64cYbcB7wNcP+e+MAnLr+Wi9xMWyQLc8NAA==\n",
        )
        .expect("write anchor");
        let anchor = Anchor::from_file(&path).expect("anchor parses");
        assert_eq!(
            anchor.zones,
            vec![
                Name::root(),
                Name::from_ascii("example.net.").expect("name")
            ]
        );
        assert_eq!(anchor.keys.len(), 1, "one root key");

        std::fs::write(&path, "; nothing here\n").expect("write");
        let e = Anchor::from_file(&path).err().map(|e| e.to_string());
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("contains no DNSKEY record")),
            "{e:?}"
        );
        let e = Anchor::from_file(&dir.path().join("missing")).err();
        assert!(
            matches!(e, Some(ConnectError::InvalidSettings { .. })),
            "{e:?}"
        );
    }
}
