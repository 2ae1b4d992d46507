//! Answering one query packet from a snapshot: the RFC 1034 §4.3.2 algorithm with
//! RFC 2308 negative answers, RFC 4592 wildcards, RFC 6891 EDNS, RFC 8482 ANY and
//! RFC 9471 glue rules.
//!
//! `answer_packet` is pure: bytes in, bytes out, no I/O, no clock, no locks. The
//! transports in `dns/` call it; tests and benches call it directly.

pub mod chaos;
mod compact;
mod proofs;
mod resolve;

use std::net::IpAddr;

use crate::config::AnswerSettings;
use crate::wire::query::{class, opcode, parse_query, rcode, rtype, Edns, Query, Reject, HEADER_LEN};
use crate::wire::response::{Compression, OptOut, ResponseWriter};
use crate::snapshot::Snapshot;

pub use resolve::MAX_CNAME_CHAIN;

/// Transport the query came in on: decides the size limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// RFC 8914 §4.21.
pub const EDE_NOT_AUTHORITATIVE: u16 = 20;

/// RFC 1035 §4.2.1: without EDNS, UDP messages are at most 512 bytes.
pub const CLASSIC_UDP_SIZE: usize = 512;

/// What happened to a query, for metrics and logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub rcode: u16,
    pub truncated: bool,
    /// The geo service that answered, if any.
    pub service: Option<u32>,
    /// Response class for rate limiting: the name and type for positive answers, the zone
    /// for negative answers and referrals, the RCODE for errors.
    pub rrl_class: u64,
    /// End of the question in the response (for a truncated copy).
    pub question_end: usize,
    /// The answer depends on the packet's source address (a geo service answered without
    /// EDNS Client Subnet); otherwise it depends only on the query's bytes and the snapshot.
    pub uses_source: bool,
    /// The packet is for `transfer::respond` (it carries a TSIG record, asks for AXFR or
    /// IXFR, or is a NOTIFY); what is in `out` is a REFUSED placeholder.
    pub handoff: bool,
    /// The answer depended on this thread's compact-denial signing budget: never cached.
    pub volatile: bool,
}

/// A UDP payload that fits any path: the IPv6 minimum MTU (1280) less the IPv6 and UDP
/// headers (RFC 9715 §3.1, DNS flag day 2020). Answers that did not fit the outgoing
/// interface are answered again within it.
pub const MTU_SAFE_UDP_PAYLOAD: usize = 1232;

/// [`answer_packet`] behind a panic guard: a bug must cost one query, not a worker.
/// Returns None (drop) if answering panicked.
#[inline]
pub fn answer_packet_guarded(snap: &Snapshot, packet: &[u8], transport: Transport, client: IpAddr, out: &mut Vec<u8>) -> Option<Outcome> {
    answer_packet_within(snap, packet, transport, client, usize::MAX, out)
}

/// [`answer_packet_guarded`] with UDP answers held to at most `udp_limit` bytes (below
/// what the client and the configuration allow); TCP answers are not limited.
#[inline]
pub fn answer_packet_within(snap: &Snapshot, packet: &[u8], transport: Transport, client: IpAddr, udp_limit: usize, out: &mut Vec<u8>) -> Option<Outcome> {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| answer_limited(snap, packet, transport, client, udp_limit, out)));
    match r {
        Ok(v) => v,
        Err(_) => {
            tracing::error!(len = packet.len(), "answering a packet panicked; dropped");
            None
        }
    }
}

/// Answers one packet. Returns None when the packet must be dropped; otherwise the
/// response is in `out`.
pub fn answer_packet(snap: &Snapshot, packet: &[u8], transport: Transport, source: IpAddr, out: &mut Vec<u8>) -> Option<Outcome> {
    answer_limited(snap, packet, transport, source, usize::MAX, out)
}

#[inline]
fn answer_limited(snap: &Snapshot, packet: &[u8], transport: Transport, source: IpAddr, udp_limit: usize, out: &mut Vec<u8>) -> Option<Outcome> {
    // Matched by reference: moving the parsed query out of the Result would copy it.
    match &parse_query(packet) {
        Ok(query) => Some(answer_query(snap, packet, query, transport, source, udp_limit, out)),
        Err(Reject::Drop) => None,
        Err(Reject::FormErr { question_end, edns }) => Some(write_error(&snap.settings, packet, rcode::FORMERR, *question_end, *edns, out)),
        Err(Reject::NotImp { edns }) => Some(write_error(&snap.settings, packet, rcode::NOTIMP, None, *edns, out)),
    }
}

/// An error decided before the question could be used (FORMERR, NOTIMP): the header (and
/// the question when it parsed), no other records; the OPT record when the query's could
/// be read.
fn write_error(settings: &AnswerSettings, packet: &[u8], rc: u16, question_end: Option<usize>, edns: Option<Edns>, out: &mut Vec<u8>) -> Outcome {
    let end = question_end.unwrap_or(HEADER_LEN);
    let mut names = Compression::new();
    let mut w = ResponseWriter::start(out, &mut names, packet, end, &[], usize::MAX, 0);
    w.set_rcode(rc);
    let opt = edns.map(|e| OptOut {
        udp_payload: settings.udp_max_payload,
        ext_rcode: 0,
        dnssec_ok: e.dnssec_ok,
        client_subnet: None,
        extended_error: None,
        nsid: None,
        expire: None,
    });
    w.finish(opt.as_ref());
    Outcome { rcode: rc, truncated: false, service: None, rrl_class: 0x100 | rc as u64, question_end: end, uses_source: false, handoff: false, volatile: false }
}

fn answer_query(snap: &Snapshot, packet: &[u8], q: &Query, transport: Transport, source: IpAddr, udp_limit: usize, out: &mut Vec<u8>) -> Outcome {
    let settings = &snap.settings;
    let max_size = match (transport, q.edns) {
        (Transport::Tcp, _) => u16::MAX as usize,
        // RFC 6891 §6.2.5: "Values lower than 512 MUST be treated as equal to 512."
        (Transport::Udp, Some(e)) => (e.udp_payload.max(512)).min(settings.udp_max_payload.max(512)) as usize,
        (Transport::Udp, None) => CLASSIC_UDP_SIZE,
    };
    let max_size = match (transport, settings.udp_max_amplification) {
        (Transport::Udp, k) if k > 0 => max_size.min((packet.len() * k as usize).max(CLASSIC_UDP_SIZE)),
        _ => max_size,
    };
    let max_size = match transport {
        Transport::Udp => max_size.min(udp_limit.max(CLASSIC_UDP_SIZE)),
        Transport::Tcp => max_size,
    };
    let mut opt = q.edns.map(|e| OptOut {
        udp_payload: settings.udp_max_payload,
        ext_rcode: 0,
        dnssec_ok: e.dnssec_ok,
        // RFC 7871 §7.2.1: echo the option; static answers do not depend on the client: scope 0.
        client_subnet: e.client_subnet.map(|cs| (cs, 0)),
        extended_error: None,
        // RFC 5001 §2.2: the identifier goes back only to a query that asked for it.
        nsid: if e.nsid { snap.config.nsid.as_deref() } else { None },
        expire: None,
    });
    let reserve = opt.as_ref().map_or(0, OptOut::wire_len);
    let qname = q.qname();
    // Names made by DNAME substitution; declared before the writer, which refers to them.
    let synth = resolve::Synthesized::default();
    let mut names = Compression::new();
    let mut w = ResponseWriter::start(out, &mut names, packet, q.question_end, qname, max_size, reserve);
    let mut service = None;
    let mut client_dependent = false;
    let mut rrl_class = None;
    let mut volatile = false;
    let handoff = q.signed || q.opcode == opcode::NOTIFY || (q.opcode == opcode::QUERY && matches!(q.qtype, rtype::AXFR | rtype::IXFR));

    let rc = if handoff {
        rcode::REFUSED
    } else if q.opcode != opcode::QUERY {
        // RFC 1035 §4.1.1 / RFC 6895: unsupported opcodes are NOTIMP; UPDATE is
        // understood but not accepted from anyone.
        if q.opcode == opcode::UPDATE {
            rcode::REFUSED
        } else {
            rcode::NOTIMP
        }
    } else if q.edns.is_some_and(|e| e.version > 0) {
        // RFC 6891 §6.1.3: "If a responder does not implement the VERSION level of the
        // request, then it MUST respond with RCODE=BADVERS."
        rcode::BADVERS
    } else if q.qclass == class::CH {
        // The server's identity and version; every other CH query is REFUSED (as Knot).
        snap.config.chaos.answer(q, &mut w)
    } else if !matches!(q.qclass, class::IN | class::ANY) {
        // Only IN is served; QCLASS ANY is answered like IN (RFC 1035 §3.2.5), as Knot does.
        rcode::REFUSED
    } else if q.qtype == 0 {
        // TYPE0 is reserved (RFC 6895 §3.1); Knot answers NOTIMP.
        rcode::NOTIMP
    } else {
        match snap.catalog.find(qname) {
            None => {
                // Not authoritative for this name: RFC 8914 §4.21 EDE 20 "Not Authoritative".
                if let Some(o) = opt.as_mut() {
                    o.extended_error = Some(EDE_NOT_AUTHORITATIVE);
                    w.reserve_more(6);
                }
                rcode::REFUSED
            }
            // A secondary zone past its expire time (RFC 1035 §4.3.5: no longer authoritative).
            Some(zone) if zone.expired => rcode::SERVFAIL,
            Some(zone) => {
                // RFC 7314 §3: a primary answers the zone's SOA with its SOA EXPIRE. A
                // copy received from a primary would owe the time left, which needs a
                // clock: none is sent for those (RFC 7314 makes the option optional).
                if let Some(o) = opt.as_mut().filter(|_| q.edns.is_some_and(|e| e.expire) && q.qtype == rtype::SOA && qname == zone.apex.as_wire()) {
                    if !snap.config.transfer.secondaries.iter().any(|s| s.apex == zone.apex) {
                        let soa = &zone.soa().rdatas[0];
                        o.expire = soa.len().checked_sub(8).and_then(|i| soa.get(i..i + 4)).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                        w.reserve_more(8);
                    }
                }
                let resolve::Resolved { rcode: rc, scope, service: svc, volatile: v } = resolve::resolve(snap, zone, q, source, transport, &synth, &mut w);
                client_dependent = scope.is_some();
                service = svc;
                volatile = v;
                rrl_class = Some(if rc == rcode::NOERROR && w.count(crate::wire::response::Section::Answer) > 0 {
                    fx_hash(qname) ^ q.qtype as u64
                } else {
                    fx_hash(zone.apex.as_wire()).rotate_left(8) ^ (rc as u64 + 1)
                });
                // RFC 7871 §7.2.1: the scope is the prefix length the answer depended on.
                if let (Some(scope), Some(o)) = (scope, opt.as_mut()) {
                    if let Some(cs) = o.client_subnet.as_mut() {
                        cs.1 = scope;
                    }
                }
                rc
            }
        }
    };
    if rc > 15 {
        if let Some(o) = opt.as_mut() {
            o.ext_rcode = (rc >> 4) as u8;
        }
    }
    w.set_rcode(rc & 0xf);
    let truncated = w.is_tc();
    w.finish(opt.as_ref());
    // Errors decided before any zone lookup share one class per RCODE.
    let rrl_class = rrl_class.unwrap_or(0x100 | rc as u64);
    // Only a service decision reads the client's address (an answer there, or a proof that
    // shows a service name's NSEC for this client), the source only without ECS (resolve.rs).
    let uses_source = client_dependent && q.edns.and_then(|e| e.client_subnet).is_none();
    Outcome { rcode: rc, truncated, service, rrl_class, question_end: q.question_end, uses_source, handoff, volatile }
}

pub(crate) fn fx_hash(bytes: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = rustc_hash::FxHasher::default();
    h.write(bytes);
    h.finish()
}

#[cfg(test)]
mod tests;
