//! Explaining an answer: where a client is, which rule matched, the data-centre order,
//! and the exact response (records, TTLs, ECS scope). Used by `waypost lookup` and
//! `GET /v1/lookup`; it runs the real query path on a real packet, so the answer shown
//! is the answer served.

use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{Name as HName, RecordType};
use serde::Serialize;

use crate::answer::{answer_packet, Transport};
use crate::geo::{Client, Explanation};
use crate::snapshot::Snapshot;
use crate::wire::Name;

#[derive(Debug, Serialize)]
pub struct LookupReport {
    pub client: String,
    pub name: String,
    pub qtype: String,
    /// Set when the name is a geo service.
    pub service: Option<String>,
    pub policy: Option<String>,
    pub geo: Option<Explanation>,
    pub rcode: String,
    pub authoritative: bool,
    pub answer: Vec<String>,
    pub authority: Vec<String>,
    pub additional: Vec<String>,
    /// ECS SCOPE PREFIX-LENGTH of the response.
    pub ecs_scope: Option<u8>,
    pub generation: u64,
}

/// Parses `IP` or `IP/PREFIX`.
pub fn parse_client(s: &str) -> Result<Client, String> {
    let (ip, prefix) = match s.split_once('/') {
        Some((ip, p)) => (ip, Some(p.parse::<u8>().map_err(|_| format!("bad prefix in {s:?}"))?)),
        None => (s, None),
    };
    let addr: IpAddr = ip.parse().map_err(|_| format!("{ip:?} is not an IP address"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = prefix.unwrap_or(max);
    if prefix > max {
        return Err(format!("prefix /{prefix} is too long for {addr}"));
    }
    Ok(Client { addr, source_prefix: Some(prefix) })
}

/// Runs one query for `name`/`qtype` as `client` would send it through a resolver (with
/// ECS carrying the client's network) and explains the result.
pub fn lookup(snap: &Snapshot, client: &str, name: &str, qtype: &str) -> Result<LookupReport, String> {
    let client = parse_client(client)?;
    let rtype: RecordType = qtype.to_ascii_uppercase().parse().map_err(|_| format!("unknown type {qtype:?}"))?;
    let hname = HName::from_ascii(name).map_err(|e| format!("bad name {name:?}: {e}"))?;
    let wname = Name::from_text(name).ok_or_else(|| format!("bad name {name:?}"))?;

    let mut m = Message::new(0x5750, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(hname.clone(), rtype));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    let prefix = client.source_prefix.unwrap_or(0);
    let addr = client.addr.to_canonical();
    edns.options_mut().insert(EdnsOption::Subnet(ClientSubnet::new(addr, prefix, 0)));
    m.set_edns(edns);
    let packet = m.to_vec().map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    answer_packet(snap, &packet, Transport::Tcp, addr, &mut out).ok_or("the query was dropped")?;
    let resp = Message::from_vec(&out).map_err(|e| format!("cannot parse our own response: {e}"))?;

    let service = snap.services.by_name.get(&wname).map(|&i| snap.services.get(i));
    let geo = service.map(|s| snap.geo.explain(Client { addr, source_prefix: Some(prefix) }, s.mode(&snap.geo.config)));
    let ecs_scope = resp.edns.as_ref().and_then(|e| {
        e.options().as_ref().iter().find_map(|(_, o)| match o {
            EdnsOption::Subnet(cs) => Some(cs.scope_prefix()),
            _ => None,
        })
    });
    let fmt = |rs: &[hickory_proto::rr::Record]| rs.iter().map(|r| r.to_string()).collect::<Vec<_>>();
    Ok(LookupReport {
        client: format!("{addr}/{prefix}"),
        name: hname.to_string(),
        qtype: rtype.to_string(),
        service: service.map(|s| s.config.name.to_string()),
        policy: service.map(|s| s.config.policy.to_string()),
        geo,
        rcode: resp.metadata.response_code.to_string(),
        authoritative: resp.metadata.authoritative,
        answer: fmt(&resp.answers),
        authority: fmt(&resp.authorities),
        additional: fmt(&resp.additionals),
        ecs_scope,
        generation: snap.generation,
    })
}

impl std::fmt::Display for LookupReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "query:    {} {} from {}", self.name, self.qtype, self.client)?;
        match (&self.service, &self.geo) {
            (Some(s), Some(g)) => {
                writeln!(f, "service:  {s} (policy {})", self.policy.as_deref().unwrap_or("?"))?;
                writeln!(f, "database: {}", g.database.as_deref().unwrap_or("(none)"))?;
                writeln!(f, "network:  {}", g.network.as_deref().unwrap_or("(none)"))?;
                match &g.location {
                    Some(l) => writeln!(
                        f,
                        "location: country {} continent {} subdivision {} city {} coordinates {}",
                        l.country.as_deref().unwrap_or("-"),
                        l.continent.as_deref().unwrap_or("-"),
                        l.subdivision.as_deref().unwrap_or("-"),
                        l.city.as_deref().unwrap_or("-"),
                        l.coords.map_or("-".to_string(), |(a, b)| format!("{a}, {b}")),
                    )?,
                    None => writeln!(f, "location: unknown")?,
                }
                writeln!(f, "rule:     {}", serde_json::to_string(&g.rule).unwrap_or_default())?;
                writeln!(f, "order:    {}", g.order.join(" > "))?;
            }
            _ => writeln!(f, "service:  none (static zone data)")?,
        }
        writeln!(f, "rcode:    {}{}", self.rcode, if self.authoritative { " (authoritative)" } else { "" })?;
        writeln!(f, "ecs scope: {}", self.ecs_scope.map_or("-".into(), |s| format!("/{s}")))?;
        for (label, rs) in [("answer", &self.answer), ("authority", &self.authority), ("additional", &self.additional)] {
            for r in rs {
                writeln!(f, "{label:<10} {r}")?;
            }
        }
        Ok(())
    }
}
