//! Finding the server: RFC 6120 §3.2 + XEP-0368 SRV lookups, RFC 2782 ordering, TCP connect.
//!
//! The ordering ([`plan`]) is a pure function; the lookups and the TCP connect use one hickory
//! resolver so that a configured nameserver is the only one ever asked.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, Record};
use hickory_resolver::{ResolverBuilder, TokioResolver};
use tokio::net::TcpStream;
use tracing::{debug, warn};

use super::error::ConnectError;

/// How long one TCP connect to one address may take.
const TCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Per-query DNS timeout.
const DNS_TIMEOUT: Duration = Duration::from_secs(5);

/// The XEP-0368 direct TLS service.
pub(super) const XMPPS_SERVICE: &str = "_xmpps-client._tcp";
/// The RFC 6120 STARTTLS service.
pub(super) const XMPP_SERVICE: &str = "_xmpp-client._tcp";

/// How TLS is started on a connection to one candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transport {
    StartTls,
    DirectTls,
}

/// Which services to look up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Services {
    Both,
    StartTlsOnly,
    DirectTlsOnly,
}

/// One host to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Candidate {
    pub host: String,
    pub port: u16,
    pub transport: Transport,
    /// It came from a DNSSEC-secure SRV answer, so DANE applies (RFC 7673).
    pub secure: bool,
}

/// One SRV record, already tagged with the service it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SrvRecord {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    /// Without the trailing dot; "." (or "") for "service not offered".
    pub target: String,
    pub transport: Transport,
    /// The SRV answer was DNSSEC-secure.
    pub secure: bool,
}

/// The outcome of one SRV lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum SrvAnswer {
    /// No records (NXDOMAIN, NODATA, or the lookup failed).
    Absent,
    /// Records were found.
    Records(Vec<SrvRecord>),
}

impl SrvAnswer {
    /// RFC 2782: a single record with target "." means the service is decidedly not offered.
    fn not_offered(&self) -> bool {
        match self {
            Self::Absent => false,
            Self::Records(r) => r.len() == 1 && is_root(&r[0].target),
        }
    }

    fn usable(&self) -> Vec<SrvRecord> {
        match self {
            Self::Absent => Vec::new(),
            Self::Records(r) => r.iter().filter(|r| !is_root(&r.target)).cloned().collect(),
        }
    }
}

fn is_root(target: &str) -> bool {
    target.is_empty() || target == "."
}

/// What to do after the SRV lookups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Plan {
    /// Try these, in order.
    Candidates(Vec<Candidate>),
    /// The domain says it offers no client service.
    NotOffered,
}

/// Merge the two SRV answers into one ordered candidate list.
///
/// Records are ordered by priority; within a priority by RFC 2782 weighted random selection.
/// `pick(total)` must return a uniformly random number in `0..=total`. Without any SRV
/// record for STARTTLS the fallback is `domain:5222` (STARTTLS), or `domain:5223` when only
/// direct TLS is wanted.
pub(super) fn plan(
    domain: &str,
    services: Services,
    direct: &SrvAnswer,
    starttls: &SrvAnswer,
    pick: &mut impl FnMut(u32) -> u32,
) -> Plan {
    let (direct, starttls) = match services {
        Services::Both => (direct, starttls),
        Services::StartTlsOnly => (&SrvAnswer::Absent, starttls),
        Services::DirectTlsOnly => (direct, &SrvAnswer::Absent),
    };
    let mut records = direct.usable();
    records.extend(starttls.usable());
    if !records.is_empty() {
        return Plan::Candidates(order_records(records, pick));
    }
    let fallback = match services {
        Services::Both | Services::StartTlsOnly if *starttls == SrvAnswer::Absent => {
            Some((5222, Transport::StartTls))
        }
        Services::DirectTlsOnly if !direct.not_offered() => Some((5223, Transport::DirectTls)),
        _ => None,
    };
    match fallback {
        Some((port, transport)) => Plan::Candidates(vec![Candidate {
            host: domain.to_owned(),
            port,
            transport,
            secure: false,
        }]),
        None => Plan::NotOffered,
    }
}

/// RFC 2782 ordering: ascending priority; within one priority repeatedly pick a record with
/// probability proportional to its weight (weight-0 records placed first, so they are chosen
/// only when the random number is 0 or every weight is 0).
fn order_records(mut records: Vec<SrvRecord>, pick: &mut impl FnMut(u32) -> u32) -> Vec<Candidate> {
    records.sort_by_key(|r| r.priority);
    let mut out = Vec::with_capacity(records.len());
    let mut rest = records.as_slice();
    while let Some(first) = rest.first() {
        let same = rest
            .iter()
            .take_while(|r| r.priority == first.priority)
            .count();
        let (group, tail) = rest.split_at(same);
        rest = tail;
        let mut group: Vec<&SrvRecord> = group.iter().collect();
        group.sort_by_key(|r| r.weight != 0); // stable: zero weights first
        while !group.is_empty() {
            let total: u32 = group.iter().map(|r| u32::from(r.weight)).sum();
            let chosen = pick(total).min(total);
            let mut running = 0u32;
            let index = group
                .iter()
                .position(|r| {
                    running += u32::from(r.weight);
                    running >= chosen
                })
                .unwrap_or(0);
            let r = group.remove(index);
            out.push(Candidate {
                host: r.target.clone(),
                port: r.port,
                transport: r.transport,
                secure: r.secure,
            });
        }
    }
    out
}

/// Random source for [`plan`].
pub(super) fn random_pick(total: u32) -> u32 {
    use rand::Rng;
    rand::rng().random_range(0..=total)
}

/// A resolver builder for the given nameserver only (no hosts file), or the system
/// configuration, with Starling's timeouts.
pub(super) fn resolver_builder(
    dns_server: Option<SocketAddr>,
) -> Result<ResolverBuilder<TokioRuntimeProvider>, String> {
    let mut builder = match dns_server {
        Some(addr) => {
            let mut udp = ConnectionConfig::udp();
            udp.port = addr.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = addr.port();
            let server = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
            let mut builder = TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![server]),
                TokioRuntimeProvider::default(),
            );
            builder.options_mut().use_hosts_file = ResolveHosts::Never;
            builder
        }
        None => TokioResolver::builder_tokio()
            .map_err(|e| format!("cannot read the system DNS configuration: {e}"))?,
    };
    builder.options_mut().timeout = DNS_TIMEOUT;
    builder.options_mut().attempts = 2;
    Ok(builder)
}

/// Build the (non-validating) resolver for SRV fallbacks and addresses.
pub(super) fn build_resolver(dns_server: Option<SocketAddr>) -> Result<TokioResolver, String> {
    resolver_builder(dns_server)?
        .build()
        .map_err(|e| format!("cannot set up DNS: {e}"))
}

/// Look up `service.domain.` SRV records.
pub(super) async fn lookup_srv(
    resolver: &TokioResolver,
    service: &str,
    domain: &str,
    transport: Transport,
) -> SrvAnswer {
    let name = format!("{service}.{domain}.");
    match resolver.srv_lookup(name.as_str()).await {
        Ok(lookup) => {
            let answer = srv_answer(lookup.answers(), transport, false);
            debug!(%name, ?answer, "SRV lookup");
            answer
        }
        Err(e) if e.is_no_records_found() => {
            debug!(%name, "no SRV records");
            SrvAnswer::Absent
        }
        Err(e) => {
            warn!(%name, error = %e, "SRV lookup failed; treating as absent");
            SrvAnswer::Absent
        }
    }
}

/// The SRV records among `answers`, tagged with their service and whether DANE applies.
pub(super) fn srv_answer(answers: &[Record], transport: Transport, secure: bool) -> SrvAnswer {
    let records: Vec<SrvRecord> = answers
        .iter()
        .filter_map(|record| match &record.data {
            RData::SRV(srv) => Some(SrvRecord {
                priority: srv.priority,
                weight: srv.weight,
                port: srv.port,
                target: srv.target.to_ascii().trim_end_matches('.').to_owned(),
                transport,
                secure,
            }),
            _ => None,
        })
        .collect();
    if records.is_empty() {
        SrvAnswer::Absent
    } else {
        SrvAnswer::Records(records)
    }
}

/// Resolve `host` (unless it is an IP literal) and connect to the first address that answers.
pub(super) async fn connect_tcp(
    resolver: Result<&TokioResolver, &str>,
    host: &str,
    port: u16,
    domain: &str,
) -> Result<TcpStream, ConnectError> {
    let addresses: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => {
            let resolver = resolver.map_err(|e| ConnectError::unreachable(domain, e))?;
            match resolver.lookup_ip(host).await {
                Ok(lookup) => lookup.iter().collect(),
                Err(e) if e.is_no_records_found() => {
                    return Err(ConnectError::unreachable(
                        domain,
                        format!("the name {host} was not found in DNS"),
                    ));
                }
                Err(e) => {
                    return Err(ConnectError::unreachable(
                        domain,
                        format!("DNS lookup for {host} failed: {e}"),
                    ));
                }
            }
        }
    };
    let mut last = ConnectError::unreachable(domain, format!("{host} has no address"));
    for ip in addresses {
        let addr = SocketAddr::new(ip, port);
        debug!(%addr, %host, "connecting");
        match tokio::time::timeout(TCP_CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => {
                debug!(%addr, error = %e, "TCP connect failed");
                last = ConnectError::from_io(domain, &e);
            }
            Err(_) => {
                debug!(%addr, "TCP connect timed out");
                last = ConnectError::unreachable(domain, "the connection timed out");
            }
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(priority: u16, weight: u16, target: &str, transport: Transport) -> SrvRecord {
        SrvRecord {
            priority,
            weight,
            port: if transport == Transport::DirectTls {
                5223
            } else {
                5222
            },
            target: target.to_owned(),
            transport,
            secure: false,
        }
    }

    fn hosts(plan: Plan) -> Vec<(String, Transport)> {
        match plan {
            Plan::Candidates(c) => c.into_iter().map(|c| (c.host, c.transport)).collect(),
            Plan::NotOffered => panic!("expected candidates"),
        }
    }

    #[test]
    fn fallback_when_no_srv_records() {
        let p = plan(
            "example.org",
            Services::Both,
            &SrvAnswer::Absent,
            &SrvAnswer::Absent,
            &mut |_| 0,
        );
        assert_eq!(
            p,
            Plan::Candidates(vec![Candidate {
                host: "example.org".into(),
                port: 5222,
                transport: Transport::StartTls,
                secure: false,
            }])
        );
        let p = plan(
            "example.org",
            Services::DirectTlsOnly,
            &SrvAnswer::Absent,
            &SrvAnswer::Absent,
            &mut |_| 0,
        );
        assert!(
            matches!(p, Plan::Candidates(c) if c[0].port == 5223 && c[0].transport == Transport::DirectTls)
        );
    }

    #[test]
    fn merged_by_priority_across_services() {
        let direct = SrvAnswer::Records(vec![
            rec(10, 0, "tls.example.org", Transport::DirectTls),
            rec(5, 0, "tls0.example.org", Transport::DirectTls),
        ]);
        let starttls = SrvAnswer::Records(vec![
            rec(7, 0, "xmpp.example.org", Transport::StartTls),
            rec(20, 0, "backup.example.org", Transport::StartTls),
        ]);
        let p = plan(
            "example.org",
            Services::Both,
            &direct,
            &starttls,
            &mut |_| 0,
        );
        assert_eq!(
            hosts(p),
            vec![
                ("tls0.example.org".to_owned(), Transport::DirectTls),
                ("xmpp.example.org".to_owned(), Transport::StartTls),
                ("tls.example.org".to_owned(), Transport::DirectTls),
                ("backup.example.org".to_owned(), Transport::StartTls),
            ]
        );
        let only = plan(
            "example.org",
            Services::StartTlsOnly,
            &direct,
            &starttls,
            &mut |_| 0,
        );
        assert_eq!(hosts(only).len(), 2);
    }

    #[test]
    fn weighted_selection_within_a_priority() {
        let records = SrvAnswer::Records(vec![
            rec(1, 10, "a", Transport::StartTls),
            rec(1, 30, "b", Transport::StartTls),
            rec(1, 0, "zero", Transport::StartTls),
        ]);
        // Zero weight first: running sums are zero=0, a=10, b=40.
        // pick 0 -> "zero" (the only way to pick a weight-0 record while others remain).
        let mut picks = vec![0u32, 5].into_iter();
        let p = plan(
            "d",
            Services::Both,
            &SrvAnswer::Absent,
            &records,
            &mut |_| picks.next().unwrap_or(0),
        );
        assert_eq!(
            hosts(p).into_iter().map(|h| h.0).collect::<Vec<_>>(),
            ["zero", "a", "b"]
        );
        // pick 11 of 40 -> "b" (running sum 40 >= 11 after a=10), then "zero"(0) vs "a"(10): 3 -> a.
        let mut picks = vec![11u32, 3].into_iter();
        let p = plan(
            "d",
            Services::Both,
            &SrvAnswer::Absent,
            &records,
            &mut |_| picks.next().unwrap_or(0),
        );
        assert_eq!(
            hosts(p).into_iter().map(|h| h.0).collect::<Vec<_>>(),
            ["b", "a", "zero"]
        );
    }

    /// Every random number RFC 2782's selection can draw (0 to the sum of weights,
    /// inclusive), each once: weights 1 and 9 put the heavy record first for 9 of the 11.
    /// (Exhaustive, not sampled: a sampled count was a flaky test.)
    #[test]
    fn weights_are_proportional_over_every_draw() {
        let records = SrvAnswer::Records(vec![
            rec(1, 1, "light", Transport::StartTls),
            rec(1, 9, "heavy", Transport::StartTls),
        ]);
        let mut heavy_first = 0;
        for draw in 0..=10 {
            let mut first = true;
            let p = plan(
                "d",
                Services::Both,
                &SrvAnswer::Absent,
                &records,
                &mut |total| {
                    if !first {
                        return 0;
                    }
                    assert_eq!(total, 10, "the sum of the weights");
                    first = false;
                    draw
                },
            );
            if hosts(p)[0].0 == "heavy" {
                heavy_first += 1;
            }
        }
        assert_eq!(heavy_first, 9);
    }

    #[test]
    fn all_zero_weights_keep_every_record() {
        let records = SrvAnswer::Records(vec![
            rec(1, 0, "a", Transport::StartTls),
            rec(1, 0, "b", Transport::StartTls),
        ]);
        let p = plan(
            "d",
            Services::Both,
            &SrvAnswer::Absent,
            &records,
            &mut |t| t,
        );
        assert_eq!(hosts(p).len(), 2);
    }

    #[test]
    fn dot_target_means_not_offered() {
        let dot = |t| SrvAnswer::Records(vec![rec(0, 0, ".", t)]);
        // STARTTLS service explicitly not offered, no direct TLS: no fallback.
        let p = plan(
            "example.org",
            Services::Both,
            &SrvAnswer::Absent,
            &dot(Transport::StartTls),
            &mut |_| 0,
        );
        assert_eq!(p, Plan::NotOffered);
        // Direct TLS not offered, STARTTLS has no SRV: RFC 6120 fallback still applies.
        let p = plan(
            "example.org",
            Services::Both,
            &dot(Transport::DirectTls),
            &SrvAnswer::Absent,
            &mut |_| 0,
        );
        assert_eq!(
            hosts(p),
            vec![("example.org".to_owned(), Transport::StartTls)]
        );
        // Direct TLS not offered but STARTTLS records exist: only those.
        let p = plan(
            "example.org",
            Services::Both,
            &dot(Transport::DirectTls),
            &SrvAnswer::Records(vec![rec(0, 0, "xmpp.example.org", Transport::StartTls)]),
            &mut |_| 0,
        );
        assert_eq!(
            hosts(p),
            vec![("xmpp.example.org".to_owned(), Transport::StartTls)]
        );
        let p = plan(
            "example.org",
            Services::DirectTlsOnly,
            &dot(Transport::DirectTls),
            &SrvAnswer::Absent,
            &mut |_| 0,
        );
        assert_eq!(p, Plan::NotOffered);
    }
}
