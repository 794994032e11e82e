//! Turning a question into records, from a [`ZoneData`] alone.

use std::net::IpAddr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, NS, SOA, SRV};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use crate::config::DnsConfig;
use crate::index::ZoneData;

/// The label under which nodes are named (`<node>._nodes.<zone>`); a service name is a DNS
/// label and never starts with '_', so this cannot clash with one.
pub const NODES_LABEL: &str = "_nodes";

/// Most records in one answer section: a service with more replicas answers with the first ones
/// in order (nearest first, or the round-robin window), so an answer always fits a TCP message.
pub const MAX_ANSWERS: usize = 64;

/// SOA timers, seconds: refresh, retry, expire (secondaries are not used; these are sane values).
const SOA_REFRESH: i32 = 60;
const SOA_RETRY: i32 = 10;
const SOA_EXPIRE: i32 = 3600;

/// The sections of a response.
#[derive(Debug, Default)]
pub struct Answer {
    pub code: ResponseCode,
    /// Whether this server is authoritative for the name (false for REFUSED and forwarded).
    pub authoritative: bool,
    /// Set on forwarded answers.
    pub recursion_available: bool,
    pub answers: Vec<Record>,
    /// The SOA, for negative answers.
    pub soa: Vec<Record>,
    pub additionals: Vec<Record>,
}

impl Answer {
    fn code(code: ResponseCode) -> Self {
        Answer {
            code,
            authoritative: code != ResponseCode::Refused,
            ..Answer::default()
        }
    }
}

/// Answers `name`/`qtype` from `zone`. `turn` rotates answers when no proximity is known.
pub fn answer(
    config: &DnsConfig,
    zone: &ZoneData,
    name: &Name,
    qtype: RecordType,
    qclass: DNSClass,
    turn: usize,
) -> Answer {
    let origin = &config.zone;
    if !origin.zone_of(name) {
        return Answer::code(ResponseCode::Refused);
    }
    if qclass != DNSClass::IN && qclass != DNSClass::ANY {
        return Answer::code(ResponseCode::Refused);
    }
    // Labels below the zone, lower case, innermost last: `web.orion.` -> ["web"].
    // Counted with `iter` (which, unlike `num_labels`, counts a leading `*`).
    let depth = name.iter().count().saturating_sub(origin.iter().count());
    let labels: Vec<String> = name
        .iter()
        .take(depth)
        .map(|l| String::from_utf8_lossy(l).to_ascii_lowercase())
        .collect();
    let ttl = config.ttl;
    let rec = |rdata: RData| Record::from_rdata(name.clone(), ttl, rdata);
    let mut out = Answer::code(ResponseCode::NoError);
    match labels.as_slice() {
        [] => match qtype {
            RecordType::SOA | RecordType::ANY => {
                out.answers.push(soa_record(config, zone));
                if qtype == RecordType::ANY {
                    out.answers.extend(ns_records(config, zone, name));
                }
            }
            RecordType::NS => {
                out.answers = ns_records(config, zone, name);
                for ip in zone.node_addrs.iter() {
                    let target = node_name(config, ip.0);
                    out.additionals.push(addr_record(target, ttl, *ip.1));
                }
            }
            _ => {}
        },
        [node, nodes] if nodes == NODES_LABEL => match zone.node_addrs.get(node) {
            Some(ip) if wants(qtype, *ip) => out.answers.push(rec(ip_rdata(*ip))),
            Some(_) => {}
            None => out.code = ResponseCode::NXDomain,
        },
        [service] => match zone.services.get(service) {
            Some(entry) => {
                // One record per address: nodes sharing one (a local cluster) answer it once.
                let nodes = order(zone, entry.nodes.clone(), turn, |n| n.as_str());
                let mut seen = Vec::new();
                for node in nodes {
                    if let Some(ip) = zone.node_addrs.get(&node).filter(|ip| wants(qtype, **ip))
                        && !seen.contains(ip)
                    {
                        seen.push(*ip);
                        out.answers.push(rec(ip_rdata(*ip)));
                    }
                }
            }
            None => out.code = ResponseCode::NXDomain,
        },
        [task, service] if !task.starts_with('_') => {
            let node = zone
                .services
                .get(service)
                .and_then(|s| s.tasks.get(task))
                .and_then(|node| zone.node_addrs.get(node));
            match node {
                Some(ip) if wants(qtype, *ip) => out.answers.push(rec(ip_rdata(*ip))),
                Some(_) => {}
                None => out.code = ResponseCode::NXDomain,
            }
        }
        [port, proto, service] if port.starts_with('_') && proto.starts_with('_') => {
            let key = (port[1..].to_owned(), proto[1..].to_owned());
            match zone.services.get(service).and_then(|s| s.ports.get(&key)) {
                Some(entries) if matches!(qtype, RecordType::SRV | RecordType::ANY) => {
                    let ranked = rank(zone, entries.clone(), turn, |e| e.1.as_str());
                    for (priority, (_, node, port)) in ranked {
                        let target = node_name(config, &node);
                        let srv = SRV::new(priority, 10, port, target.clone());
                        out.answers.push(rec(RData::SRV(srv)));
                        if let Some(ip) = zone.node_addrs.get(&node) {
                            let extra = addr_record(target, ttl, *ip);
                            if !out.additionals.contains(&extra) {
                                out.additionals.push(extra);
                            }
                        }
                    }
                }
                Some(_) => {}
                None => out.code = ResponseCode::NXDomain,
            }
        }
        _ => out.code = ResponseCode::NXDomain,
    }
    out.answers.truncate(MAX_ANSWERS);
    out.additionals.truncate(MAX_ANSWERS);
    if out.answers.is_empty() {
        out.soa.push(soa_record(config, zone));
    }
    out
}

fn wants(qtype: RecordType, ip: IpAddr) -> bool {
    match qtype {
        RecordType::A => ip.is_ipv4(),
        RecordType::AAAA => ip.is_ipv6(),
        RecordType::ANY => true,
        _ => false,
    }
}

fn ip_rdata(ip: IpAddr) -> RData {
    match ip {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    }
}

fn addr_record(name: Name, ttl: u32, ip: IpAddr) -> Record {
    Record::from_rdata(name, ttl, ip_rdata(ip))
}

/// `<node>._nodes.<zone>`.
fn node_name(config: &DnsConfig, node: &str) -> Name {
    Name::from_ascii(format!("{node}.{NODES_LABEL}"))
        .and_then(|n| n.append_domain(&config.zone))
        .unwrap_or_else(|_| config.zone.clone())
}

fn soa_record(config: &DnsConfig, zone: &ZoneData) -> Record {
    let mname = node_name(config, &config.node_id);
    let rname = Name::from_ascii("hostmaster")
        .and_then(|n| n.append_domain(&config.zone))
        .unwrap_or_else(|_| config.zone.clone());
    let serial = (zone.revision & u64::from(u32::MAX)) as u32;
    let soa = SOA::new(
        mname,
        rname,
        serial,
        SOA_REFRESH,
        SOA_RETRY,
        SOA_EXPIRE,
        config.ttl,
    );
    Record::from_rdata(config.zone.clone(), config.ttl, RData::SOA(soa))
}

fn ns_records(config: &DnsConfig, zone: &ZoneData, name: &Name) -> Vec<Record> {
    let mut ids: Vec<&str> = zone.node_addrs.keys().map(String::as_str).collect();
    if ids.is_empty() {
        ids.push(&config.node_id);
    }
    ids.into_iter()
        .map(|id| {
            Record::from_rdata(
                name.clone(),
                config.ttl,
                RData::NS(NS(node_name(config, id))),
            )
        })
        .collect()
}

/// Orders items by their node's RTT from the answering node (unknown last, ties by input
/// order) when proximity is known, else rotates them by `turn`.
fn order<T>(zone: &ZoneData, items: Vec<T>, turn: usize, node: impl Fn(&T) -> &str) -> Vec<T> {
    rank(zone, items, turn, node)
        .into_iter()
        .map(|(_, t)| t)
        .collect()
}

/// As [`order`], with each item's rank: the index of its distinct RTT (0 nearest), or 0 for
/// all when proximity is unknown.
fn rank<T>(
    zone: &ZoneData,
    mut items: Vec<T>,
    turn: usize,
    node: impl Fn(&T) -> &str,
) -> Vec<(u16, T)> {
    if items.is_empty() {
        return Vec::new();
    }
    if !zone.has_proximity() {
        let len = items.len();
        items.rotate_left(turn % len);
        return items.into_iter().map(|t| (0, t)).collect();
    }
    let rtt = |t: &T| zone.rtt_ms.get(node(t)).copied().unwrap_or(f64::INFINITY);
    items.sort_by(|a, b| rtt(a).total_cmp(&rtt(b)));
    let mut out = Vec::with_capacity(items.len());
    let mut rank = 0u16;
    let mut last = None;
    for t in items {
        let r = rtt(&t);
        if let Some(prev) = last
            && r > prev
        {
            rank = rank.saturating_add(1);
        }
        last = Some(r);
        out.push((rank, t));
    }
    out
}
