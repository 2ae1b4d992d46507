//! Zone transfer and everything signed with TSIG: AXFR (RFC 5936) and IXFR (RFC 1995)
//! to secondaries, NOTIFY (RFC 1996) in and out, TSIG (RFC 8945) on all of it, and
//! Waypost as a secondary of another primary.
//!
//! ```text
//!  query path: answer_packet ─► Outcome::handoff (TSIG record, AXFR/IXFR, NOTIFY)
//!        └─► transfer::respond: TSIG check ─► ACL ─► AXFR/IXFR stream | NOTIFY | the
//!            answer of answer_packet, signed ─► framed messages (TCP) / one message (UDP)
//!  control: a published serial change ─► notify::send (retried); journal::update
//!           (the IXFR differences) before publishing
//!  secondary::run per zone: SOA refresh ─► IXFR/AXFR in ─► zone file on disk ─► reload
//! ```
//!
//! Nothing here runs for an ordinary query: the query path hands over only packets that
//! carry a TSIG record, ask for a transfer or are NOTIFY.

pub mod client;
pub mod content;
pub mod journal;
pub mod notify;
pub mod tsig;

use std::net::IpAddr;
use std::sync::Mutex;

use rustc_hash::FxHashSet;

use crate::answer::{answer_packet, Transport};
use crate::config::defaults::TRANSFER_MESSAGE_SIZE;
use crate::config::transfer::TsigKey;
use crate::metrics::{Metrics, TransferLabels};
use crate::snapshot::Snapshot;
use crate::wire::query::{class, opcode, parse_query, rcode, rtype, skip_record, Query, HEADER_LEN};
use crate::wire::response::{Compression, ResponseWriter, Section};
use crate::wire::Name;
use crate::zones::journal::Record;
use crate::zones::{RRset, Zone};
use tsig::{Checked, Part, Rejected};

/// NOTIFY messages accepted from primaries, waiting for their zone's refresh loop.
#[derive(Debug, Default)]
pub struct Inbox {
    zones: Mutex<FxHashSet<Name>>,
    wake: tokio::sync::Notify,
}

impl Inbox {
    fn push(&self, apex: Name) {
        self.zones.lock().unwrap_or_else(|p| p.into_inner()).insert(apex);
        self.wake.notify_waiters();
    }

    /// Takes the NOTIFY pending for `apex`, if any.
    pub fn take(&self, apex: &Name) -> bool {
        self.zones.lock().unwrap_or_else(|p| p.into_inner()).remove(apex)
    }

    /// Waits for the next accepted NOTIFY (of any zone).
    pub async fn wait(&self) {
        self.wake.notified().await;
    }
}

pub fn now_secs() -> u64 {
    crate::health::now_secs()
}

/// Answers a packet the query path handed over (`Outcome::handoff`). TCP: appends
/// framed messages (several for a transfer) to `out`; UDP: `out` is the one message.
/// Returns the RCODE sent, or None to drop the packet.
pub fn respond(snap: &Snapshot, packet: &[u8], transport: Transport, peer: IpAddr, inbox: &Inbox, metrics: &Metrics, out: &mut Vec<u8>) -> Option<u16> {
    let now = now_secs();
    let keys = &snap.config.transfer.keys;
    let checked = match tsig::check_request(packet, keys, now) {
        Ok(c) => c,
        Err(rejected) => {
            let why = match &rejected {
                Rejected::Malformed => "malformed",
                Rejected::Unsigned { error: tsig::error::BADKEY } => "badkey",
                Rejected::Unsigned { error: tsig::error::BADTRUNC } => "badtrunc",
                Rejected::Unsigned { .. } => "badsig",
                Rejected::BadTime { .. } => "badtime",
            };
            metrics.transfers.get_or_create(&TransferLabels { kind: "tsig", result: why }).inc();
            tracing::info!(client = %peer, error = why, "TSIG check failed");
            return Some(tsig_error(packet, &rejected, keys, now, transport, out));
        }
    };
    // The message as it was before it was signed: what the rest of the server reads.
    let unsigned;
    let message = match tsig::find(packet) {
        Ok(Some(r)) => {
            let mut m = packet[..r.start].to_vec();
            m[..2].copy_from_slice(&r.original_id.to_be_bytes());
            let ar = u16::from_be_bytes([m[10], m[11]]) - 1;
            m[10..12].copy_from_slice(&ar.to_be_bytes());
            unsigned = m;
            &unsigned[..]
        }
        _ => packet,
    };
    let q = parse_query(message).ok()?;
    let key = checked.as_ref().map(|c| &keys[c.key]);
    let mut reply = Reply { out, transport, signer: checked.clone().map(|c| (&keys[c.key], c.mac)), now, first: true };
    if q.opcode == opcode::NOTIFY {
        let rc = notify_in(snap, &q, peer, checked.as_ref(), inbox, metrics);
        let mut m = Vec::new();
        simple(snap, message, &q, rc, &mut m);
        reply.push(m);
        return Some(rc);
    }
    if q.opcode == opcode::QUERY && matches!(q.qtype, rtype::AXFR | rtype::IXFR) && q.qclass == class::IN {
        let kind = if q.qtype == rtype::AXFR { "axfr" } else { "ixfr" };
        let count = |result| metrics.transfers.get_or_create(&TransferLabels { kind, result }).inc();
        let Some(zone) = snap.catalog.find(q.qname()).filter(|z| z.apex.as_wire() == q.qname()) else {
            count("notauth");
            let mut m = Vec::new();
            simple(snap, message, &q, rcode::NOTAUTH, &mut m);
            reply.push(m);
            return Some(rcode::NOTAUTH);
        };
        if zone.expired {
            count("expired");
            let mut m = Vec::new();
            simple(snap, message, &q, rcode::SERVFAIL, &mut m);
            reply.push(m);
            return Some(rcode::SERVFAIL);
        }
        if !allowed(snap, peer, checked.as_ref()) {
            count("refused");
            tracing::info!(client = %peer, zone = %zone.apex, kind, key = key.map(|k| k.name.to_string()), "transfer refused");
            let mut m = Vec::new();
            simple(snap, message, &q, rcode::REFUSED, &mut m);
            reply.push(m);
            return Some(rcode::REFUSED);
        }
        let served = match (transport, q.qtype) {
            // RFC 5936 §4.2: AXFR is TCP only.
            (Transport::Udp, rtype::AXFR) => {
                count("refused");
                let mut m = Vec::new();
                simple(snap, message, &q, rcode::REFUSED, &mut m);
                reply.push(m);
                return Some(rcode::REFUSED);
            }
            // RFC 1995 §2: over UDP, the current SOA tells the client to come back over TCP
            // (or that it is up to date).
            (Transport::Udp, _) => write_stream(snap, zone, message, &q, Items::SoaOnly, &mut reply),
            (Transport::Tcp, rtype::AXFR) => write_stream(snap, zone, message, &q, Items::Full, &mut reply),
            (Transport::Tcp, _) => {
                let items = match client_serial(message) {
                    None => {
                        count("formerr");
                        let mut m = Vec::new();
                        simple(snap, message, &q, rcode::FORMERR, &mut m);
                        reply.push(m);
                        return Some(rcode::FORMERR);
                    }
                    Some(s) if !serial_lt(s, zone.serial) => Items::SoaOnly,
                    Some(s) => match snap.journals.get(&zone.apex).and_then(|j| j.since(s).map(|c| c.collect::<Vec<_>>())) {
                        Some(changes) if !changes.is_empty() => Items::Changes(changes),
                        _ => Items::Full,
                    },
                };
                write_stream(snap, zone, message, &q, items, &mut reply)
            }
        };
        count(if served { "ok" } else { "failed" });
        return Some(if served { rcode::NOERROR } else { rcode::SERVFAIL });
    }
    // Any other signed query: answered as usual, then signed (a secondary's SOA check).
    let mut m = Vec::new();
    let outcome = answer_packet(snap, message, transport, peer, &mut m)?;
    reply.push(m);
    Some(outcome.rcode)
}

/// Where the messages of one reply go, each signed when the request was.
struct Reply<'o, 'k> {
    out: &'o mut Vec<u8>,
    transport: Transport,
    signer: Option<(&'k TsigKey, Vec<u8>)>,
    now: u64,
    first: bool,
}

impl Reply<'_, '_> {
    fn push(&mut self, mut m: Vec<u8>) {
        if let Some((key, prior)) = &mut self.signer {
            let part = if self.first { Part::First } else { Part::Subsequent };
            *prior = tsig::sign(&mut m, key, Some(prior), part, 0, &[], self.now);
        }
        self.first = false;
        match self.transport {
            Transport::Tcp => {
                self.out.extend_from_slice(&(m.len() as u16).to_be_bytes());
                self.out.extend_from_slice(&m);
            }
            Transport::Udp => *self.out = m,
        }
    }
}

/// The header and question with `rc` (AA for NOTIFY answers and transfer errors, as Knot).
fn simple(snap: &Snapshot, message: &[u8], q: &Query, rc: u16, out: &mut Vec<u8>) {
    let mut names = Compression::new();
    // The OPT record goes back to a query that had one (RFC 6891 §7), as for every answer.
    let opt = q.edns.map(|e| crate::wire::response::OptOut {
        udp_payload: snap.settings.udp_max_payload,
        ext_rcode: 0,
        dnssec_ok: e.dnssec_ok,
        client_subnet: None,
        extended_error: None,
        nsid: None,
        expire: None,
    });
    let reserve = opt.as_ref().map_or(0, crate::wire::response::OptOut::wire_len);
    let mut w = ResponseWriter::start(out, &mut names, message, q.question_end, q.qname(), usize::MAX, reserve);
    if rc != rcode::REFUSED {
        w.set_aa();
    }
    w.set_rcode(rc);
    w.finish(opt.as_ref());
}

/// The error answer to a request whose TSIG did not check (RFC 8945 §5.2): NOTAUTH with
/// a TSIG record carrying the error, signed only for BADTIME; FORMERR for a malformed one.
fn tsig_error(packet: &[u8], rejected: &Rejected, keys: &[TsigKey], now: u64, transport: Transport, out: &mut Vec<u8>) -> u16 {
    let question_end = question_end(packet).unwrap_or(HEADER_LEN);
    let mut m = Vec::new();
    let mut names = Compression::new();
    let mut w = ResponseWriter::start(&mut m, &mut names, packet, question_end, &[], usize::MAX, 0);
    let rc = if *rejected == Rejected::Malformed { rcode::FORMERR } else { rcode::NOTAUTH };
    w.set_rcode(rc);
    w.finish(None);
    match rejected {
        Rejected::Malformed => {}
        Rejected::Unsigned { error } => {
            tsig::append_unsigned(&mut m, packet, *error, now);
        }
        // RFC 8945 §5.2.3: "It MUST include the client's current time in the Time Signed
        // field, the server's current time (a 48-bit unsigned integer) in the Other Data
        // field, and 6 in the Other Len field."
        Rejected::BadTime { key, mac, time_signed } => {
            tsig::sign(&mut m, &keys[*key], Some(mac), Part::First, tsig::error::BADTIME, &tsig::time_other(now), *time_signed);
        }
    }
    match transport {
        Transport::Tcp => {
            out.extend_from_slice(&(m.len() as u16).to_be_bytes());
            out.extend_from_slice(&m);
        }
        Transport::Udp => *out = m,
    }
    rc
}

/// End of the (single) question, if the packet has one that parses.
fn question_end(p: &[u8]) -> Option<usize> {
    if p.len() < HEADER_LEN || u16::from_be_bytes([p[4], p[5]]) != 1 {
        return None;
    }
    let mut i = HEADER_LEN;
    loop {
        let len = *p.get(i)? as usize;
        if len > 63 {
            return None;
        }
        i += 1 + len;
        if len == 0 {
            break;
        }
    }
    (i + 4 <= p.len()).then_some(i + 4)
}

/// May `peer`, signed with `checked`'s key (or not signed), transfer? An entry without
/// a key admits its network signed or not; one with a key only that key.
fn allowed(snap: &Snapshot, peer: IpAddr, checked: Option<&Checked>) -> bool {
    snap.config.transfer.allow.iter().any(|a| a.network.contains(&peer) && a.key.is_none_or(|k| checked.is_some_and(|c| c.key == k)))
}

pub use crate::zones::catalog::serial_lt;

/// The client's SOA serial from an IXFR request's authority section (RFC 1995 §3).
fn client_serial(p: &[u8]) -> Option<u32> {
    let ns = u16::from_be_bytes([*p.get(8)?, *p.get(9)?]);
    let an = u16::from_be_bytes([*p.get(6)?, *p.get(7)?]);
    if ns != 1 || an != 0 {
        return None;
    }
    let i = question_end(p)?;
    let (end, rt, type_at) = skip_record(p, i)?;
    if rt != rtype::SOA {
        return None;
    }
    // RDATA: MNAME, RNAME (possibly compressed), then SERIAL.
    let mut j = type_at + 10;
    for _ in 0..2 {
        j = tsig::skip_name(p, j)?;
    }
    let s = p.get(j..j + 4).filter(|_| j + 20 <= end)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// What a transfer answer holds between its opening and closing SOA.
enum Items<'s> {
    /// Only the current SOA (up to date, or IXFR over UDP).
    SoaOnly,
    /// The whole zone (AXFR, or IXFR from a serial no longer kept).
    Full,
    /// The differences from the client's serial (RFC 1995 §4).
    Changes(Vec<&'s crate::zones::journal::Change>),
}

enum Item<'s> {
    Set(&'s [u8], &'s RRset),
    Rec(&'s Record),
}

/// Compression targets per transfer message: the apex and its suffixes, and the first
/// names after it. Measured on a 100,000-record AXFR: with all 64, a third of the CPU
/// went to comparing names with the table.
const TRANSFER_COMPRESSION: usize = 8;

/// Writes a transfer answer into `reply`: a whole zone over TCP from the snapshot's
/// prebuilt image (see [`prepare`]), anything else written now. False if some RRset fits
/// no message (then the stream is cut and the client fails the transfer, as it must).
fn write_stream<'s>(snap: &'s Snapshot, zone: &'s Zone, message: &[u8], q: &Query, items: Items<'s>, reply: &mut Reply<'_, '_>) -> bool {
    if let (Items::Full, Transport::Tcp, Some(image)) = (&items, reply.transport, snap.transfer_images.get(&zone.apex)) {
        // The image was written for a question of the apex's length at offset 12: give
        // each message this query's ID, RD bit and question (the client's spelling, its
        // QTYPE: AXFR, or IXFR answered AXFR-style).
        for m in image.iter() {
            let mut m = m.to_vec();
            m[..2].copy_from_slice(&message[..2]);
            m[2] = 0x84 | (message[2] & 0x01);
            m[HEADER_LEN..q.question_end].copy_from_slice(&message[HEADER_LEN..q.question_end]);
            reply.push(m);
        }
        return true;
    }
    let limit = match reply.transport {
        Transport::Tcp => TRANSFER_MESSAGE_SIZE,
        Transport::Udp => crate::answer::CLASSIC_UDP_SIZE.max(q.edns.map_or(0, |e| e.udp_payload as usize)).min(snap.settings.udp_max_payload as usize).saturating_sub(200),
    };
    render(snap, zone, message, q, &items, limit, &mut |m| reply.push(m))
}

/// Writes the messages of a transfer answer (at most `limit` bytes each) to `emit`.
fn render<'s>(snap: &'s Snapshot, zone: &'s Zone, message: &[u8], q: &Query, items: &Items<'s>, limit: usize, emit: &mut dyn FnMut(Vec<u8>)) -> bool {
    let apex = zone.apex.as_wire();
    let soa = zone.soa();
    let mut list: Vec<Item<'s>> = vec![Item::Set(apex, soa)];
    match items {
        Items::SoaOnly => {}
        Items::Full => {
            content::for_each_rrset(snap, zone, |owner, set| list.push(Item::Set(owner, set)));
            list.push(Item::Set(apex, soa));
        }
        Items::Changes(changes) => {
            for c in changes {
                list.push(Item::Rec(&c.from_soa));
                list.extend(c.removed.iter().map(Item::Rec));
                list.push(Item::Rec(&c.to_soa));
                list.extend(c.added.iter().map(Item::Rec));
            }
            list.push(Item::Set(apex, soa));
        }
    }
    let mut m = Vec::with_capacity(limit.min(16 << 10));
    let mut names = Compression::new();
    let mut w = ResponseWriter::start(&mut m, &mut names, message, q.question_end, q.qname(), limit, 0);
    w.limit_compression(TRANSFER_COMPRESSION);
    w.set_aa();
    for item in &list {
        if put(&mut w, item).is_ok() {
            continue;
        }
        if w.count(Section::Answer) == 0 {
            return false;
        }
        w.finish(None);
        emit(std::mem::replace(&mut m, Vec::with_capacity(limit)));
        w = ResponseWriter::start(&mut m, &mut names, message, q.question_end, q.qname(), limit, 0);
        w.limit_compression(TRANSFER_COMPRESSION);
        w.set_aa();
        if put(&mut w, item).is_err() {
            return false;
        }
    }
    w.finish(None);
    emit(m);
    true
}

/// Control side, before a snapshot is published: its IXFR journals (from `previous`'s)
/// and, per zone, the AXFR answer written once (an image of its messages, replayed for
/// every AXFR with the request's ID and question: measured on 100,000 records, writing
/// them per request cost 1.7x knotd's CPU). Nothing when nobody may transfer.
pub fn prepare(previous: Option<&Snapshot>, next: &mut Snapshot) {
    if let Some(prev) = previous {
        next.journals = std::sync::Arc::new(journal::update(prev, next));
    }
    let mut images = rustc_hash::FxHashMap::default();
    if !next.config.transfer.allow.is_empty() {
        for zone in next.catalog.iter() {
            // A query for the zone as the image's messages start: header and question.
            let mut query = vec![0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
            query.extend_from_slice(zone.apex.as_wire());
            query.extend_from_slice(&rtype::AXFR.to_be_bytes());
            query.extend_from_slice(&class::IN.to_be_bytes());
            let Ok(q) = parse_query(&query) else { continue };
            let mut messages: Vec<Box<[u8]>> = Vec::new();
            let t0 = std::time::Instant::now();
            if render(next, zone, &query, &q, &Items::Full, TRANSFER_MESSAGE_SIZE, &mut |m| messages.push(m.into_boxed_slice())) {
                let bytes: usize = messages.iter().map(|m| m.len()).sum();
                tracing::debug!(zone = %zone.apex, messages = messages.len(), bytes, ms = t0.elapsed().as_millis() as u64, "AXFR image written");
                images.insert(zone.apex.clone(), std::sync::Arc::new(messages));
            } else {
                tracing::warn!(zone = %zone.apex, "an RRset of the zone fits no transfer message: AXFR of it will fail");
            }
        }
    }
    next.transfer_images = std::sync::Arc::new(images);
}

fn put<'n>(w: &mut ResponseWriter<'_, 'n>, item: &Item<'n>) -> Result<(), crate::wire::response::NoSpace> {
    match *item {
        Item::Set(owner, set) if set.rtype == rtype::RRSIG => w.put_rrsigs(Section::Answer, owner, set),
        Item::Set(owner, set) => w.put_rrset(Section::Answer, owner, set),
        Item::Rec(r) => w.put_record(Section::Answer, &r.owner, r.rtype, class::IN, r.ttl, &r.rdata),
    }
}

/// A NOTIFY (RFC 1996 §3.7): accepted for a zone this instance is a secondary of, from
/// its primary's address, signed with its key when it has one; REFUSED otherwise.
fn notify_in(snap: &Snapshot, q: &Query, peer: IpAddr, checked: Option<&Checked>, inbox: &Inbox, metrics: &Metrics) -> u16 {
    let count = |result| metrics.transfers.get_or_create(&TransferLabels { kind: "notify-in", result }).inc();
    let Some(apex) = Name::from_wire(q.qname()) else { return rcode::FORMERR };
    // Not a zone received from a primary: nobody may notify it (as before transfers).
    let Some(sec) = snap.config.transfer.secondary(apex.as_wire()) else {
        count("refused");
        return rcode::REFUSED;
    };
    let key_ok = sec.key.is_none_or(|k| checked.is_some_and(|c| c.key == k));
    if sec.primary.ip() != peer || !key_ok {
        count("refused");
        tracing::info!(client = %peer, zone = %apex, "NOTIFY refused: not from the zone's primary (or its key)");
        return rcode::REFUSED;
    }
    count("ok");
    tracing::info!(zone = %apex, primary = %peer, "NOTIFY from the primary");
    inbox.push(apex);
    rcode::NOERROR
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_arithmetic() {
        assert!(serial_lt(1, 2));
        assert!(!serial_lt(2, 2));
        assert!(serial_lt(0xffff_ffff, 0));
        assert!(!serial_lt(0, 0xffff_ffff));
        assert!(!serial_lt(2, 1));
    }
}
