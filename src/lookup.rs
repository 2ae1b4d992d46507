//! Explaining an answer: where a client is, which rule matched, the data-centre order,
//! and the exact response (rcode, records, TTLs, ECS scope). Used by `waypost lookup` and
//! `GET /v1/lookup`; it runs the real query path on a real packet, so the answer shown
//! is the answer served. A name that is a CNAME (chain) to a service is followed, and the
//! service at its end is explained.

use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{Name as HName, RData, RecordType};
use serde::Serialize;

use crate::answer::{answer_packet, Transport};
use crate::config::Key;
use crate::geo::{Client, Explanation, Rule};
use crate::snapshot::Snapshot;
use crate::wire::Name;

#[derive(Debug, Serialize)]
pub struct LookupReport {
    pub client: String,
    pub name: String,
    pub qtype: String,
    /// The names a CNAME chain in the answer led through to `service`, from the query
    /// name on (empty when the name is the service itself, or no service was reached).
    pub cname_chain: Vec<String>,
    /// Set when the name is a geo service, or a CNAME chain leads to one.
    pub service: Option<String>,
    pub policy: Option<String>,
    pub geo: Option<Explanation>,
    /// `geo.rule` as text: `city GB/London (geo.map.city."GB/London")`.
    pub rule_text: Option<String>,
    /// As dig prints it: NOERROR, NXDOMAIN, REFUSED, …
    pub rcode: String,
    /// The numeric RCODE (RFC 6895 §2.3).
    pub rcode_value: u16,
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

    // The service answering: the name itself, or the first one a CNAME chain in the
    // answer leads to (`www CNAME web`, web a service).
    let mut chain = vec![wname];
    let mut found = None;
    loop {
        // never panics: the chain starts with the query name.
        let at = chain.last().expect("non-empty chain");
        if let Some(&i) = snap.services.by_name.get(at) {
            found = Some(snap.services.get(i));
            break;
        }
        let next = resp.answers.iter().find_map(|r| match &r.data {
            RData::CNAME(c) if Name::from_text(&r.name.to_string()).as_ref() == Some(at) => Name::from_text(&c.0.to_string()),
            _ => None,
        });
        // The end of the chain, or a loop.
        match next {
            Some(n) if !chain.contains(&n) => chain.push(n),
            _ => break,
        }
    }
    let service = found;
    let cname_chain = if service.is_some() && chain.len() > 1 { chain.iter().map(ToString::to_string).collect() } else { Vec::new() };
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
        cname_chain,
        service: service.map(|s| s.config.name.to_string()),
        policy: service.map(|s| s.config.policy.to_string()),
        rule_text: geo.as_ref().map(|g| rule_text(&g.rule)),
        geo,
        rcode: rcode_name(u16::from(resp.metadata.response_code)),
        rcode_value: u16::from(resp.metadata.response_code),
        authoritative: resp.metadata.authoritative,
        answer: fmt(&resp.answers),
        authority: fmt(&resp.authorities),
        additional: fmt(&resp.additionals),
        ecs_scope,
        generation: snap.generation,
    })
}

/// An RCODE's mnemonic as dig prints it (RFC 6895 §2.3 registry names, upper case).
pub fn rcode_name(rcode: u16) -> String {
    let name = match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        16 => "BADVERS",
        n => return format!("RCODE{n}"),
    };
    name.to_string()
}

/// A rule as text, with the config key that holds it where there is one.
pub fn rule_text(rule: &Rule) -> String {
    let map = |kind: &str, key: &str| format!("{kind} {key} ({})", Key::new("geo.map").at(kind).at(key));
    match rule {
        Rule::NoClientInformation => "no client information (ECS source prefix 0): the default order (geo.map.default)".into(),
        Rule::Override(net) => format!("network override {net}"),
        Rule::City(k) => map("city", k),
        Rule::Subdivision(k) => map("subdivision", k),
        Rule::Country(k) => map("country", k),
        Rule::Continent(k) => map("continent", k),
        Rule::Nearest => "nearest: by distance from the client's location".into(),
        Rule::Default => "default (geo.map.default)".into(),
    }
}

impl std::fmt::Display for LookupReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "query:    {} {} from {}", self.name, self.qtype, self.client)?;
        if !self.cname_chain.is_empty() {
            writeln!(f, "cname:    {}", self.cname_chain.join(" -> "))?;
        }
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
                writeln!(f, "rule:     {}", self.rule_text.as_deref().unwrap_or("-"))?;
                writeln!(f, "order:    {}", g.order.join(" > "))?;
            }
            _ => writeln!(f, "service:  none (not a geo service)")?,
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
