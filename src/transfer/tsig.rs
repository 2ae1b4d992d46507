//! TSIG (RFC 8945): checking a signed message and signing one, over the bytes of any
//! message (the query path's `wire::response` writes them, not a message builder).
//!
//! The MAC covers, in order: the request's MAC (responses), the message as it was before
//! the TSIG record was added (ARCOUNT without it, the original ID), and the TSIG
//! variables (§4.3.3; after the first message of a stream only the timers, §5.3.1).
//! The HMAC is ring's.

use ring::hmac;

use crate::config::transfer::{TsigAlgorithm, TsigKey};
use crate::config::defaults::TSIG_FUDGE;
use crate::wire::query::{class, rtype, skip_record, HEADER_LEN};

/// TSIG error codes (RFC 8945 §3; the RCODE goes in the TSIG record, NOTAUTH in the header).
pub mod error {
    pub const BADSIG: u16 = 16;
    pub const BADKEY: u16 = 17;
    pub const BADTIME: u16 = 18;
    pub const BADTRUNC: u16 = 22;
}

fn algorithm_name(a: TsigAlgorithm) -> &'static [u8] {
    match a {
        TsigAlgorithm::Sha1 => b"\x09hmac-sha1\x00",
        TsigAlgorithm::Sha256 => b"\x0bhmac-sha256\x00",
        TsigAlgorithm::Sha384 => b"\x0bhmac-sha384\x00",
        TsigAlgorithm::Sha512 => b"\x0bhmac-sha512\x00",
    }
}

fn ring_algorithm(a: TsigAlgorithm) -> hmac::Algorithm {
    match a {
        TsigAlgorithm::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        TsigAlgorithm::Sha256 => hmac::HMAC_SHA256,
        TsigAlgorithm::Sha384 => hmac::HMAC_SHA384,
        TsigAlgorithm::Sha512 => hmac::HMAC_SHA512,
    }
}

fn mac_len(a: TsigAlgorithm) -> usize {
    match a {
        TsigAlgorithm::Sha1 => 20,
        TsigAlgorithm::Sha256 => 32,
        TsigAlgorithm::Sha384 => 48,
        TsigAlgorithm::Sha512 => 64,
    }
}

/// The TSIG record that ends a message.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    /// Offset of the record: the message it signs is everything before.
    pub start: usize,
    /// Key name, lowercased wire form.
    pub key_name: Vec<u8>,
    pub algorithm: Option<TsigAlgorithm>,
    pub time_signed: u64,
    pub fudge: u16,
    pub mac: &'a [u8],
    pub original_id: u16,
    pub error: u16,
    pub other: &'a [u8],
}

/// The message is not a well-formed signed message (FORMERR).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// An uncompressed name at `i`: (lowercased wire, offset after it).
fn plain_name(p: &[u8], mut i: usize) -> Option<(Vec<u8>, usize)> {
    let start = i;
    loop {
        let len = *p.get(i)? as usize;
        if len > 63 || i - start + len + 1 > 255 {
            return None;
        }
        i += 1 + len;
        if len == 0 {
            break;
        }
    }
    let mut name = p.get(start..i)?.to_vec();
    name.make_ascii_lowercase();
    Some((name, i))
}

fn u16_at(p: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*p.get(i)?, *p.get(i + 1)?]))
}

/// Finds the TSIG record. None: the message is unsigned. A TSIG record that is not the
/// last record, or that does not parse, is `Malformed` (RFC 8945 §5.1: FORMERR).
pub fn find(p: &[u8]) -> Result<Option<Record<'_>>, Malformed> {
    if p.len() < HEADER_LEN {
        return Err(Malformed);
    }
    let count = |i: usize| u16::from_be_bytes([p[i], p[i + 1]]) as usize;
    let (qd, records) = (count(4), count(6) + count(8) + count(10));
    let mut i = HEADER_LEN;
    for _ in 0..qd {
        i = skip_name(p, i).ok_or(Malformed)? + 4;
    }
    let mut last = None;
    for n in 0..records {
        let (next, rt, _) = skip_record(p, i).ok_or(Malformed)?;
        if rt == rtype::TSIG {
            if n + 1 != records || count(10) == 0 {
                return Err(Malformed);
            }
            last = Some(i);
        }
        i = next;
    }
    let Some(start) = last else { return Ok(None) };
    parse_record(p, start).map(Some).ok_or(Malformed)
}

/// The offset after the (possibly compressed) name at `i`; pointers are not followed.
pub(super) fn skip_name(p: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let len = *p.get(i)?;
        match len & 0xc0 {
            0 if len == 0 => return Some(i + 1),
            0 => i += 1 + len as usize,
            0xc0 => return Some(i + 2),
            _ => return None,
        }
    }
}

fn parse_record(p: &[u8], start: usize) -> Option<Record<'_>> {
    let (key_name, i) = plain_name(p, start)?;
    // TYPE, CLASS (ANY), TTL (0), RDLENGTH.
    if u16_at(p, i + 2)? != class::ANY {
        return None;
    }
    let rdlen = u16_at(p, i + 8)? as usize;
    let rd = i + 10;
    if rd + rdlen != p.len() {
        return None;
    }
    let (alg, j) = plain_name(p, rd)?;
    let algorithm = [TsigAlgorithm::Sha256, TsigAlgorithm::Sha384, TsigAlgorithm::Sha512, TsigAlgorithm::Sha1].into_iter().find(|a| algorithm_name(*a) == alg);
    let t = p.get(j..j + 6)?;
    let time_signed = t.iter().fold(0u64, |acc, b| acc << 8 | *b as u64);
    let fudge = u16_at(p, j + 6)?;
    let mac_size = u16_at(p, j + 8)? as usize;
    let mac = p.get(j + 10..j + 10 + mac_size)?;
    let k = j + 10 + mac_size;
    let original_id = u16_at(p, k)?;
    let error = u16_at(p, k + 2)?;
    let other_len = u16_at(p, k + 4)? as usize;
    let other = p.get(k + 6..k + 6 + other_len)?;
    if k + 6 + other_len != p.len() {
        return None;
    }
    Some(Record { start, key_name, algorithm, time_signed, fudge, mac, original_id, error, other })
}

/// Feeds the message before its TSIG record as it was signed: ARCOUNT one less, the
/// original ID.
fn feed_message(ctx: &mut hmac::Context, p: &[u8], r: &Record<'_>) {
    let mut header = [0u8; HEADER_LEN];
    header.copy_from_slice(&p[..HEADER_LEN]);
    header[..2].copy_from_slice(&r.original_id.to_be_bytes());
    let ar = u16::from_be_bytes([header[10], header[11]]).saturating_sub(1);
    header[10..12].copy_from_slice(&ar.to_be_bytes());
    ctx.update(&header);
    ctx.update(&p[HEADER_LEN..r.start]);
}

fn feed_variables(ctx: &mut hmac::Context, key: &TsigKey, time: u64, fudge: u16, error: u16, other: &[u8], timers_only: bool) {
    if !timers_only {
        ctx.update(key.name.as_wire());
        ctx.update(&class::ANY.to_be_bytes());
        ctx.update(&0u32.to_be_bytes());
        ctx.update(algorithm_name(key.algorithm));
    }
    ctx.update(&time.to_be_bytes()[2..]);
    ctx.update(&fudge.to_be_bytes());
    if !timers_only {
        ctx.update(&error.to_be_bytes());
        ctx.update(&(other.len() as u16).to_be_bytes());
        ctx.update(other);
    }
}

fn feed_prior(ctx: &mut hmac::Context, prior: Option<&[u8]>) {
    if let Some(m) = prior {
        ctx.update(&(m.len() as u16).to_be_bytes());
        ctx.update(m);
    }
}

/// Why a signed request is not accepted, with what the error response needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejected {
    /// FORMERR, no TSIG in the answer.
    Malformed,
    /// NOTAUTH with an unsigned TSIG carrying this error (BADKEY, BADSIG, BADTRUNC).
    Unsigned { error: u16 },
    /// NOTAUTH, signed with the key, TSIG error BADTIME (§5.2.3): `time_signed` is the
    /// request's (the client's clock), the server's time goes in Other Data.
    BadTime { key: usize, mac: Vec<u8>, time_signed: u64 },
}

/// A request whose signature checked out: the key and its MAC (a response's MAC covers it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub key: usize,
    pub mac: Vec<u8>,
}

/// Checks a request signed with one of `keys` at `now` (seconds since the epoch).
/// Ok(None): the request is unsigned.
pub fn check_request(p: &[u8], keys: &[TsigKey], now: u64) -> Result<Option<Checked>, Rejected> {
    let r = match find(p) {
        Ok(None) => return Ok(None),
        Ok(Some(r)) => r,
        Err(Malformed) => return Err(Rejected::Malformed),
    };
    // §5.2.1: an unknown key or algorithm is BADKEY.
    let Some(key) = keys.iter().position(|k| Some(k.algorithm) == r.algorithm && k.name.as_wire() == r.key_name.as_slice()) else {
        return Err(Rejected::Unsigned { error: error::BADKEY });
    };
    let k = &keys[key];
    let full = mac_len(k.algorithm);
    // §5.2.2.1: a MAC longer than the hash, or shorter than half of it (and 10 octets), is FORMERR.
    if r.mac.len() > full || r.mac.len() < (full / 2).max(10) {
        return Err(Rejected::Malformed);
    }
    let mut ctx = hmac::Context::with_key(&hmac::Key::new(ring_algorithm(k.algorithm), &k.secret));
    feed_message(&mut ctx, p, &r);
    feed_variables(&mut ctx, k, r.time_signed, r.fudge, r.error, r.other, false);
    let mac = ctx.sign();
    if !constant_time_eq(&mac.as_ref()[..r.mac.len()], r.mac) {
        return Err(Rejected::Unsigned { error: error::BADSIG });
    }
    // §5.2.3: the time is checked after the MAC.
    if now.abs_diff(r.time_signed) > r.fudge as u64 {
        return Err(Rejected::BadTime { key, mac: r.mac.to_vec(), time_signed: r.time_signed });
    }
    if r.mac.len() < full {
        return Err(Rejected::Unsigned { error: error::BADTRUNC });
    }
    Ok(Some(Checked { key, mac: r.mac.to_vec() }))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// How a message is signed: the first of a stream (or a lone one) with all variables,
/// later ones with the timers only (RFC 8945 §5.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    First,
    Subsequent,
}

/// Signs the message in `buf` (appends the TSIG record, ARCOUNT + 1) with `key` at
/// `now`; `prior` is the request's MAC (a response) or the previous message's (a stream).
/// Returns the new MAC.
pub fn sign(buf: &mut Vec<u8>, key: &TsigKey, prior: Option<&[u8]>, part: Part, error: u16, other: &[u8], now: u64) -> Vec<u8> {
    let mut ctx = hmac::Context::with_key(&hmac::Key::new(ring_algorithm(key.algorithm), &key.secret));
    feed_prior(&mut ctx, prior);
    ctx.update(buf);
    feed_variables(&mut ctx, key, now, TSIG_FUDGE, error, other, part == Part::Subsequent);
    let mac = ctx.sign().as_ref().to_vec();
    append(buf, key.name.as_wire(), algorithm_name(key.algorithm), now, &mac, error, other);
    mac
}

/// Appends an unsigned TSIG record (an error to a request that could not be checked):
/// the request's key name and algorithm name, an empty MAC.
pub fn append_unsigned(buf: &mut Vec<u8>, request: &[u8], error: u16, now: u64) -> bool {
    let Ok(Some(r)) = find(request) else { return false };
    let Some((alg, _)) = plain_name(request, r.start + r.key_name.len() + 10) else { return false };
    append(buf, &r.key_name, &alg, now, &[], error, &[]);
    true
}

fn append(buf: &mut Vec<u8>, key_name: &[u8], alg: &[u8], now: u64, mac: &[u8], error: u16, other: &[u8]) {
    let id = [buf[0], buf[1]];
    buf.extend_from_slice(key_name);
    buf.extend_from_slice(&rtype::TSIG.to_be_bytes());
    buf.extend_from_slice(&class::ANY.to_be_bytes());
    buf.extend_from_slice(&0u32.to_be_bytes());
    let rdlen = alg.len() + 16 + mac.len() + other.len();
    buf.extend_from_slice(&(rdlen as u16).to_be_bytes());
    buf.extend_from_slice(alg);
    buf.extend_from_slice(&now.to_be_bytes()[2..]);
    buf.extend_from_slice(&TSIG_FUDGE.to_be_bytes());
    buf.extend_from_slice(&(mac.len() as u16).to_be_bytes());
    buf.extend_from_slice(mac);
    buf.extend_from_slice(&id);
    buf.extend_from_slice(&error.to_be_bytes());
    buf.extend_from_slice(&(other.len() as u16).to_be_bytes());
    buf.extend_from_slice(other);
    let ar = u16::from_be_bytes([buf[10], buf[11]]) + 1;
    buf[10..12].copy_from_slice(&ar.to_be_bytes());
}

/// The server time for a BADTIME answer's Other Data (§5.2.3).
pub fn time_other(now: u64) -> [u8; 6] {
    let mut o = [0u8; 6];
    o.copy_from_slice(&now.to_be_bytes()[2..]);
    o
}

/// Checks the responses to a request this side signed, one message at a time: each
/// signed one against the MAC before it; unsigned ones (RFC 8945 §5.3.1 allows up to 99
/// in a row) are covered by the next signed one.
pub struct ResponseCheck<'k> {
    key: &'k TsigKey,
    prior: Vec<u8>,
    /// Unsigned messages since the last signed one.
    pending: Vec<u8>,
    unsigned_run: usize,
    first: bool,
}

impl<'k> ResponseCheck<'k> {
    pub fn new(key: &'k TsigKey, request_mac: Vec<u8>) -> Self {
        ResponseCheck { key, prior: request_mac, pending: Vec::new(), unsigned_run: 0, first: true }
    }

    /// Checks one message; Err says why it is not accepted.
    pub fn message(&mut self, p: &[u8], now: u64) -> Result<(), String> {
        let r = find(p).map_err(|_| "malformed TSIG record".to_string())?;
        let Some(r) = r else {
            if self.first {
                return Err("the answer is not signed".into());
            }
            self.unsigned_run += 1;
            if self.unsigned_run > 99 {
                return Err("more than 99 unsigned messages in a row".into());
            }
            self.pending.extend_from_slice(p);
            return Ok(());
        };
        if r.key_name.as_slice() != self.key.name.as_wire() || r.algorithm != Some(self.key.algorithm) {
            return Err(format!("signed with another key (TSIG error {})", r.error));
        }
        if r.error != 0 {
            return Err(format!("TSIG error {} from the peer", r.error));
        }
        let mut ctx = hmac::Context::with_key(&hmac::Key::new(ring_algorithm(self.key.algorithm), &self.key.secret));
        feed_prior(&mut ctx, Some(&self.prior));
        ctx.update(&self.pending);
        feed_message(&mut ctx, p, &r);
        let part = if self.first { Part::First } else { Part::Subsequent };
        feed_variables(&mut ctx, self.key, r.time_signed, r.fudge, r.error, r.other, part == Part::Subsequent);
        let mac = ctx.sign();
        if r.mac.len() != mac.as_ref().len() || !constant_time_eq(mac.as_ref(), r.mac) {
            return Err("bad TSIG signature (BADSIG)".into());
        }
        if now.abs_diff(r.time_signed) > r.fudge as u64 {
            return Err("TSIG time outside the fudge (BADTIME)".into());
        }
        self.prior = r.mac.to_vec();
        self.pending.clear();
        self.unsigned_run = 0;
        self.first = false;
        Ok(())
    }

    /// The stream must end on a signed message.
    pub fn finish(&self) -> Result<(), String> {
        if self.pending.is_empty() {
            Ok(())
        } else {
            Err("the last message is not signed".into())
        }
    }
}

#[cfg(test)]
mod tests;
