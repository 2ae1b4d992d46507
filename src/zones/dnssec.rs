//! DNSSEC of a zone that was signed before Waypost loaded it (dnssec-signzone,
//! ldns-signzone, kzonesign, OpenDNSSEC, a signing pipeline).
//!
//! ```text
//!   nodes (from the file) ──► RRSIGs attached to the RRsets they cover
//!                         ──► NSEC3 RRsets moved out of the name tree into the chain
//!                         ──► NSEC owners in canonical order, or NSEC3 hashes sorted,
//!                             with every node's matching NSEC3 and the one covering
//!                             its wildcard child precomputed
//! ```
//!
//! Everything a denial proof needs is found here when the zone loads, so answering only
//! binary-searches. The one hash made per query is the NSEC3 hash of the "next closer"
//! name of an NXDOMAIN or wildcard answer (RFC 5155 §7.2.1): that name is not in the zone,
//! so it cannot be hashed ahead (Knot hashes it per query too).
//!
//! Load checks: a signed zone needs its DNSKEY at the apex; with NSEC every authoritative
//! name has an NSEC, with NSEC3 (NSEC3PARAM at the apex) every authoritative name and
//! empty non-terminal has a matching NSEC3, except delegations without DS under an
//! opt-out NSEC3 (RFC 5155 §6). Signatures that expired or expire within the margin, and
//! NSEC3 iterations above 0 or a salt (RFC 9276 §3.1), are warnings.

use rustc_hash::FxHashMap;

use crate::config::Problem;
use super::zone::{Node, RRset};
use crate::wire::name::canonical_cmp;
use crate::wire::query::rtype;
use crate::wire::Name;

/// `NSEC3PARAM` (RFC 5155 §4).
pub const NSEC3PARAM: u16 = 51;
/// `DNSKEY` (RFC 4034 §2).
pub const DNSKEY: u16 = 48;
/// NSEC3 hash algorithm 1, SHA-1: the only one defined (RFC 5155 §11).
const NSEC3_SHA1: u8 = 1;
/// The NSEC3 opt-out flag (RFC 5155 §3.1.2.1).
const OPT_OUT: u8 = 1;

/// What a signed zone adds to its nodes.
#[derive(Debug, Clone)]
pub struct Dnssec {
    pub denial: Denial,
    /// RRSIG records in the zone.
    pub signatures: usize,
    /// Earliest RRSIG expiration, in seconds since the Unix epoch.
    pub earliest_expiry: Option<u64>,
    /// Zones Waypost signs: for each geo service name (its NSEC owner, or its NSEC3's
    /// hashed owner), the service and its NSEC/NSEC3 RRset for each [`shape`] its answers
    /// can take, signed. A client is shown the one that states exactly the types of its
    /// own answer (RFC 4035 §5.4, RFC 5155 §8.5: a NODATA proof that lists the type asked,
    /// or CNAME, is bogus).
    pub service_nsec: FxHashMap<Name, ServiceNsec>,
}

/// Which records a geo service answers one client with at its name: a set of `A` and
/// `AAAA`, or `CNAME` alone. Its value indexes [`ServiceNsec::variants`].
pub mod shape {
    use crate::wire::query::rtype;

    pub const A: u8 = 1;
    pub const AAAA: u8 = 2;
    pub const CNAME: u8 = 4;
    /// {}, {A}, {AAAA}, {A, AAAA}, {CNAME}.
    pub const COUNT: usize = 5;

    /// The record types of a shape, in type order.
    pub fn types(shape: u8) -> impl Iterator<Item = u16> {
        [(A, rtype::A), (CNAME, rtype::CNAME), (AAAA, rtype::AAAA)].into_iter().filter(move |(b, _)| shape & b != 0).map(|(_, t)| t)
    }

    /// Every shape an answer made of `types` (the service's A, AAAA, CNAME) can take: any
    /// subset of its families (a data centre may have one, both or, all down, none), and
    /// CNAME alone.
    pub fn possible(types: &[u16]) -> impl Iterator<Item = u8> + '_ {
        (0..COUNT as u8).filter(move |&s| match s {
            CNAME => types.contains(&rtype::CNAME),
            s => (s & A == 0 || types.contains(&rtype::A)) && (s & AAAA == 0 || types.contains(&rtype::AAAA)),
        })
    }
}

/// A geo service name's NSEC or NSEC3, one per [`shape`] its answers can take (None for
/// a shape it cannot take).
#[derive(Debug, Clone)]
pub struct ServiceNsec {
    /// The service's index in the snapshot's `ServiceTable`.
    pub service: u32,
    pub variants: [Option<RRset>; shape::COUNT],
}

/// How the zone proves that names and types do not exist.
#[derive(Debug, Clone)]
pub enum Denial {
    Nsec(NsecChain),
    Nsec3(Nsec3Chain),
    /// RFC 9824 (zones Waypost signs with `denial = "compact"`): every name's NSEC is
    /// `name → \000.name`, made and signed with the zone; a name that does not exist gets
    /// one made and signed when it is asked for.
    Compact(Compact),
}

impl Dnssec {
    pub fn denial_name(&self) -> &'static str {
        match self.denial {
            Denial::Nsec(_) => "nsec",
            Denial::Nsec3(_) => "nsec3",
            Denial::Compact(_) => "compact",
        }
    }
}

/// NXNAME (RFC 9824 §2): the meta type in a compact NSEC's bitmap that says the name
/// does not exist.
pub const NXNAME: u16 = 128;

/// Signs RRsets on the query path with the zone's active zone-signing keys and the
/// snapshot's signature window (implemented by `signer`, which owns the keys).
pub trait OnlineSigner: Send + Sync + std::fmt::Debug {
    /// The RRSIG RRset (TTL `ttl`) over `owner` (lowercase wire) / `rtype` with `rdatas`;
    /// None when no key could sign.
    fn sign(&self, owner: &[u8], rtype: u16, ttl: u32, rdatas: &[Box<[u8]>]) -> Option<RRset>;
}

/// What compact denial needs beyond the nodes' own NSEC RRsets.
#[derive(Debug, Clone)]
pub struct Compact {
    /// Unique among every compact signing of this process: the query path's per-thread
    /// caches of signatures made per query key on it, so a re-signed zone never reuses
    /// an old zone's.
    pub id: u64,
    pub signer: std::sync::Arc<dyn OnlineSigner>,
    /// Empty non-terminals exist with no types (RFC 9824 §3.2): their signed NSECs, kept
    /// here because an empty non-terminal has no RRset of its own.
    pub ents: FxHashMap<Name, RRset>,
    /// TTL of the NSEC records (the zone's negative TTL, RFC 9077).
    pub ttl: u32,
}

/// The NSEC "next" name of `owner` (lowercase wire) in compact denial (RFC 9824 §3.1,
/// RFC 4471 §3.1.2): its immediate successor in canonical order, `\000.owner`; when that
/// is too long, the first label with a 0 octet appended, else with its last octet raised
/// (skipping upper case, which sorts as lower case). None only when nothing works.
pub fn compact_next(owner: &[u8]) -> Option<arrayvec::ArrayVec<u8, 255>> {
    let mut out = arrayvec::ArrayVec::new();
    if owner.len() + 2 <= crate::wire::name::MAX_NAME_LEN {
        out.try_extend_from_slice(&[1, 0]).ok()?;
        out.try_extend_from_slice(owner).ok()?;
        return Some(out);
    }
    let first = *owner.first()? as usize;
    if first == 0 || owner.len() < 1 + first {
        return None;
    }
    if first < 63 && owner.len() < crate::wire::name::MAX_NAME_LEN {
        out.push(first as u8 + 1);
        out.try_extend_from_slice(&owner[1..=first]).ok()?;
        out.push(0);
        out.try_extend_from_slice(&owner[1 + first..]).ok()?;
        return Some(out);
    }
    let last = owner[first];
    let raised = match last {
        0xff => return None,
        b'@' => b'[',
        b => b + 1,
    };
    out.try_extend_from_slice(owner).ok()?;
    out[first] = raised;
    Some(out)
}

/// The owners of NSEC records, in canonical order (RFC 4034 §6.1).
#[derive(Debug, Clone, Default)]
pub struct NsecChain {
    owners: Vec<Name>,
}

impl NsecChain {
    /// The owner of the NSEC that matches or covers `name` (lowercased wire): the last
    /// owner not after it, wrapping to the last one (RFC 4034 §4.1.1: the chain is a loop).
    pub fn covering(&self, name: &[u8]) -> Option<&Name> {
        let i = self.owners.partition_point(|o| canonical_cmp(o.as_wire(), name) != std::cmp::Ordering::Greater);
        if i == 0 {
            self.owners.last()
        } else {
            self.owners.get(i - 1)
        }
    }
}

/// NSEC3 parameters of the zone, from NSEC3PARAM (RFC 5155 §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nsec3Params {
    pub iterations: u16,
    pub salt: Box<[u8]>,
}

/// One NSEC3 RRset, out of the name tree.
#[derive(Debug, Clone)]
pub struct Nsec3Record {
    /// The hash its owner's first label spells (base32hex).
    pub hash: Box<[u8]>,
    pub owner: Name,
    /// The NSEC3 RRset with its RRSIGs.
    pub rrset: RRset,
    pub opt_out: bool,
}

/// Index meaning "none" in [`Nsec3Node`].
pub const NONE: u32 = u32::MAX;

/// What a name of the zone needs for NSEC3 proofs, computed at load.
#[derive(Debug, Clone, Copy)]
pub struct Nsec3Node {
    /// The NSEC3 whose hash is this name's ([`NONE`] for an opt-out delegation).
    pub matching: u32,
    /// The NSEC3 that covers (or matches) `*.<this name>`.
    pub wildcard_cover: u32,
}

/// The NSEC3 chain: records sorted by hash, and per name its precomputed proofs.
#[derive(Debug, Clone)]
pub struct Nsec3Chain {
    pub params: Nsec3Params,
    pub records: Vec<Nsec3Record>,
    pub nodes: FxHashMap<Name, Nsec3Node>,
}

impl Nsec3Chain {
    /// RFC 5155 §5: IH(salt, x, 0) = H(x || salt); IH(salt, x, k) = H(IH(salt, x, k-1) || salt).
    pub fn hash(&self, name: &[u8]) -> [u8; 20] {
        nsec3_hash(name, &self.params)
    }

    /// Index of the record whose hash equals `hash`.
    pub fn find(&self, hash: &[u8]) -> Option<usize> {
        self.records.binary_search_by(|r| r.hash.as_ref().cmp(hash)).ok()
    }

    /// Index of the record that covers `hash`: the last one before it, wrapping to the
    /// last (RFC 5155 §7.2.1); the matching one if the hash is in the chain.
    pub fn covering(&self, hash: &[u8]) -> Option<usize> {
        let i = self.records.partition_point(|r| r.hash.as_ref() <= hash);
        match i {
            _ if self.records.is_empty() => None,
            0 => Some(self.records.len() - 1),
            i => Some(i - 1),
        }
    }

    pub fn record(&self, i: u32) -> Option<&Nsec3Record> {
        self.records.get(i as usize)
    }
}

fn index(i: Option<usize>) -> u32 {
    i.map_or(NONE, |i| i as u32)
}

/// The NSEC3 hash of a lowercased wire name.
pub fn nsec3_hash(name: &[u8], p: &Nsec3Params) -> [u8; 20] {
    let sha1 = |parts: &[&[u8]]| {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
        for part in parts {
            ctx.update(part);
        }
        let mut out = [0u8; 20];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    };
    let mut h = sha1(&[name, &p.salt]);
    for _ in 0..p.iterations {
        h = sha1(&[&h, &p.salt]);
    }
    h
}

/// RFC 4034 §3.1.5: an RRSIG time is a 32-bit serial; the absolute time is the one
/// nearest to `now`.
fn absolute_time(t: u32, now: u64) -> u64 {
    (now as i64 + t.wrapping_sub(now as u32) as i32 as i64).max(0) as u64
}

/// A margin for people: "3 days", "12 hours", "90 minutes".
fn span(secs: u64) -> String {
    let (n, unit) = match secs {
        s if s >= 86_400 && s % 86_400 == 0 => (s / 86_400, "day"),
        s if s >= 3_600 && s % 3_600 == 0 => (s / 3_600, "hour"),
        s if s >= 60 && s % 60 == 0 => (s / 60, "minute"),
        s => (s, "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// Type covered and expiration of RRSIG RDATA (RFC 4034 §3.1).
fn rrsig_fields(rd: &[u8]) -> Option<(u16, u32)> {
    let covered = u16::from_be_bytes([*rd.first()?, *rd.get(1)?]);
    let exp = rd.get(8..12)?;
    Some((covered, u32::from_be_bytes([exp[0], exp[1], exp[2], exp[3]])))
}

/// Settings of the DNSSEC load checks.
#[derive(Debug, Clone, Copy)]
pub struct SignatureCheck {
    /// Now, in seconds since the Unix epoch.
    pub now: u64,
    /// Warn about signatures that expire within this many seconds.
    pub expiry_margin: u64,
}

/// Finds a zone's DNSSEC data and prepares its proofs; None when the zone is not signed.
/// Problems go to `errors` (the zone is not served) and `warnings`.
pub fn prepare(apex: &Name, nodes: &mut super::zone::NodeMap, file: &std::path::Path, check: SignatureCheck, errors: &mut Vec<Problem>, warnings: &mut Vec<Problem>) -> Option<Box<Dnssec>> {
    let problem = |line: u32, msg: String| Problem { file: file.to_path_buf(), line: line as usize, msg };
    let first_sig_line = nodes.values().filter_map(|n| n.rrset(rtype::RRSIG)).map(|s| s.line).min();
    let apex_node = nodes.get(apex)?;
    let has_dnskey = apex_node.rrset(DNSKEY).is_some();
    let Some(sig_line) = first_sig_line else {
        // DNSKEYs without signatures: served as data, the zone is not signed.
        return None;
    };
    if !has_dnskey {
        errors.push(problem(sig_line, format!("the zone has RRSIG records but no DNSKEY at the apex {apex}: it cannot validate")));
        return None;
    }

    // RRSIGs to the RRsets they cover; signature expiry.
    let mut signatures = 0;
    let mut earliest: Option<(u64, Name, u16)> = None;
    let mut expiring = 0usize;
    for node in nodes.values_mut() {
        let Some(sigs) = node.rrset(rtype::RRSIG).cloned() else { continue };
        for rd in &sigs.rdatas {
            signatures += 1;
            let Some((covered, exp)) = rrsig_fields(rd) else { continue };
            let at = absolute_time(exp, check.now);
            if at <= check.now + check.expiry_margin {
                expiring += 1;
            }
            if earliest.as_ref().is_none_or(|e| at < e.0) {
                earliest = Some((at, node.name.clone(), covered));
            }
        }
        for set in node.rrsets.iter_mut().filter(|s| s.rtype != rtype::RRSIG) {
            let covering: Vec<Box<[u8]>> = sigs.rdatas.iter().filter(|rd| rrsig_fields(rd).is_some_and(|(c, _)| c == set.rtype)).cloned().collect();
            if let Some(first) = covering.first() {
                // The TTL the covered RRset has in the file: the signature's Original TTL
                // (RFC 4034 §3.1.4), as Knot serves it.
                let ttl = first.get(4..8).map_or(sigs.ttl, |t| u32::from_be_bytes([t[0], t[1], t[2], t[3]]));
                set.sigs = Some(std::sync::Arc::new(RRset { rtype: rtype::RRSIG, ttl, rdatas: covering, line: sigs.line, sigs: None }));
            }
        }
    }
    if expiring > 0 {
        if let Some((at, name, covered)) = &earliest {
            let when = humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(*at));
            let what = if *at <= check.now { "expired" } else { "expires" };
            warnings.push(problem(
                sig_line,
                format!(
                    "{expiring} RRSIG{} expired or expire within {}; the earliest ({name} {}) {what} at {when}: re-sign the zone before validating resolvers see it as bogus",
                    if expiring == 1 { "" } else { "s" },
                    span(check.expiry_margin),
                    super::load::type_name(*covered)
                ),
            ));
        }
    }

    // NSEC3 RRsets (and their RRSIGs) leave the name tree (RFC 5155 §7.1: they are not
    // names of the zone's data).
    let mut records = Vec::new();
    let hashed: Vec<Name> = nodes.values().filter(|n| n.rrset(rtype::NSEC3).is_some()).map(|n| n.name.clone()).collect();
    for owner in hashed {
        // never panics: the names were just taken from the map.
        let node = nodes.get_mut(&owner).expect("node");
        let Some(i) = node.rrsets.iter().position(|s| s.rtype == rtype::NSEC3) else { continue };
        let set = node.rrsets.remove(i);
        if let Some(sig) = node.rrsets.iter_mut().find(|s| s.rtype == rtype::RRSIG) {
            sig.rdatas.retain(|rd| rrsig_fields(rd).is_none_or(|(c, _)| c != rtype::NSEC3));
        }
        node.rrsets.retain(|s| s.rtype != rtype::RRSIG || !s.rdatas.is_empty());
        if node.rrsets.is_empty() && owner.parent().as_ref() == Some(apex) {
            nodes.remove(&owner);
        }
        let label = &owner.as_wire()[1..1 + owner.as_wire()[0] as usize];
        let hash = std::str::from_utf8(label).ok().and_then(|l| domain::utils::base32::decode_hex::<Vec<u8>>(&l.to_ascii_uppercase()).ok());
        let Some(hash) = hash.filter(|h| h.len() == 20) else {
            errors.push(problem(set.line, format!("NSEC3 at {owner}: the first label is not a base32hex SHA-1 hash")));
            continue;
        };
        let opt_out = set.rdatas.iter().any(|rd| rd.get(1).is_some_and(|f| f & OPT_OUT != 0));
        records.push(Nsec3Record { hash: hash.into_boxed_slice(), owner, rrset: set, opt_out });
    }

    let apex_node = &nodes[apex];
    let denial = match apex_node.rrset(NSEC3PARAM) {
        None if !records.is_empty() => {
            errors.push(problem(records[0].rrset.line, format!("the zone has NSEC3 records but no NSEC3PARAM at the apex {apex}")));
            return None;
        }
        None => {
            let mut owners: Vec<Name> = nodes.values().filter(|n| n.rrset(rtype::NSEC).is_some()).map(|n| n.name.clone()).collect();
            owners.sort_by(|a, b| canonical_cmp(a.as_wire(), b.as_wire()));
            let mut missing: Vec<&Node> = nodes.values().filter(|n| !n.below_cut && !n.rrsets.is_empty() && n.rrset(rtype::NSEC).is_none()).collect();
            missing.sort_by(|a, b| canonical_cmp(a.name.as_wire(), b.name.as_wire()));
            for n in missing.iter().take(super::load::MAX_ERRORS_PER_FILE) {
                let line = n.rrsets.iter().map(|s| s.line).min().unwrap_or(0);
                errors.push(problem(line, format!("{} has no NSEC record: the NSEC chain does not cover it", n.name)));
            }
            Denial::Nsec(NsecChain { owners })
        }
        Some(param) => {
            let Some(params) = param.rdatas.first().and_then(|rd| parse_nsec3param(rd)) else {
                errors.push(problem(param.line, "NSEC3PARAM: hash algorithm is not SHA-1 (1), or the record is malformed".into()));
                return None;
            };
            if params.iterations > 0 || !params.salt.is_empty() {
                warnings.push(problem(
                    param.line,
                    format!(
                        "NSEC3 with {} iteration{} and a {}-octet salt: RFC 9276 §3.1 asks for 0 iterations and no salt (validators may treat the zone as insecure)",
                        params.iterations,
                        if params.iterations == 1 { "" } else { "s" },
                        params.salt.len()
                    ),
                ));
            }
            records.sort_by(|a, b| a.hash.cmp(&b.hash));
            let mut chain = Nsec3Chain { params, records, nodes: FxHashMap::default() };
            let mut proofs = FxHashMap::default();
            let mut uncovered: Vec<(u32, String)> = Vec::new();
            for node in nodes.values().filter(|n| !n.below_cut) {
                let h = chain.hash(node.name.as_wire());
                let matching = index(chain.find(&h));
                if matching == NONE {
                    let opt_out = node.is_cut && node.rrset(rtype::DS).is_none() && chain.covering(&h).is_some_and(|i| chain.records[i].opt_out);
                    if !opt_out {
                        let line = node.rrsets.iter().map(|s| s.line).min().unwrap_or(param.line);
                        uncovered.push((line, format!("the NSEC3 chain does not cover {} (no NSEC3 with its hash)", node.name)));
                    }
                }
                let wh = chain.hash(node.name.wildcard_child().as_wire());
                let wildcard_cover = index(chain.covering(&wh));
                proofs.insert(node.name.clone(), Nsec3Node { matching, wildcard_cover });
            }
            uncovered.sort();
            for (line, msg) in uncovered.into_iter().take(super::load::MAX_ERRORS_PER_FILE) {
                errors.push(problem(line, msg));
            }
            chain.nodes = proofs;
            Denial::Nsec3(chain)
        }
    };
    Some(Box::new(Dnssec { denial, signatures, earliest_expiry: earliest.map(|e| e.0), service_nsec: FxHashMap::default() }))
}

/// NSEC3PARAM RDATA: algorithm, flags, iterations, salt length, salt (RFC 5155 §4.2).
fn parse_nsec3param(rd: &[u8]) -> Option<Nsec3Params> {
    if *rd.first()? != NSEC3_SHA1 {
        return None;
    }
    let iterations = u16::from_be_bytes([*rd.get(2)?, *rd.get(3)?]);
    let len = *rd.get(4)? as usize;
    let salt = rd.get(5..5 + len)?;
    Some(Nsec3Params { iterations, salt: salt.into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compact_next_name_is_the_immediate_successor() {
        use std::cmp::Ordering::Less;
        let a = b"\x01a\x07example\x00";
        assert_eq!(&compact_next(a).unwrap()[..], b"\x01\x00\x01a\x07example\x00");
        // Too long for \000.: the first label gets a 0 octet, or its last octet raised.
        let long = |first: usize| {
            let mut n = vec![first as u8];
            n.extend(std::iter::repeat_n(b'x', first));
            while n.len() + 64 <= 254 {
                n.push(63);
                n.extend(std::iter::repeat_n(b'y', 63));
            }
            let rest = 254 - n.len();
            n.push((rest - 1) as u8);
            n.extend(std::iter::repeat_n(b'z', rest - 1));
            n.push(0);
            n
        };
        for first in [10, 63] {
            let owner = long(first);
            let next = compact_next(&owner).unwrap();
            assert!(next.len() <= 255 && canonical_cmp(&owner, &next) == Less, "{first}: {next:?}");
            assert!(Name::from_wire(&next).is_some());
        }
        let mut at = long(63);
        at[63] = b'@';
        assert_eq!(compact_next(&at).unwrap()[63], b'[', "never upper case, which sorts as lower case");
        at[63] = 0xff;
        assert_eq!(compact_next(&at), None);
    }

    #[test]
    fn nsec3_hash_matches_rfc_5155_appendix_a() {
        // RFC 5155 Appendix A: salt aabbccdd, 12 iterations; H(example) = 0p9mhaveqvm6t7vbl5lop2u3t2rp3tom.
        let p = Nsec3Params { iterations: 12, salt: vec![0xaa, 0xbb, 0xcc, 0xdd].into() };
        let h = nsec3_hash(Name::from_text("example.").unwrap().as_wire(), &p);
        assert_eq!(domain::utils::base32::encode_string_hex(&h).to_ascii_lowercase(), "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom");
        let h = nsec3_hash(Name::from_text("a.example.").unwrap().as_wire(), &p);
        assert_eq!(domain::utils::base32::encode_string_hex(&h).to_ascii_lowercase(), "35mthgpgcu1qg68fab165klnsnk3dpvl");
    }

    #[test]
    fn rrsig_times_are_read_as_serials_near_now() {
        let now = 1_800_000_000u64;
        assert_eq!(absolute_time(now as u32 + 100, now), now + 100);
        assert_eq!(absolute_time((now as u32).wrapping_sub(100), now), now - 100);
        // Past 2106 the 32-bit value wraps; the nearest reading is still right.
        let later = (1u64 << 32) + 50;
        assert_eq!(absolute_time(60, later), later + 10);
    }

    #[test]
    fn the_nsec_chain_wraps_around() {
        let names: Vec<Name> = ["example.", "a.example.", "z.example."].iter().map(|n| Name::from_text(n).unwrap()).collect();
        let chain = NsecChain { owners: names.clone() };
        let q = |n: &str| chain.covering(Name::from_text(n).unwrap().as_wire()).unwrap().to_string();
        assert_eq!(q("b.example."), "a.example.");
        assert_eq!(q("a.example."), "a.example.");
        assert_eq!(q("zz.example."), "z.example.");
        assert_eq!(q("x.z.example."), "z.example.");
        assert_eq!(q("0.example."), "example.");
    }

    use crate::test_dir::TestDir;
    use crate::config::LoadLimits;
    use crate::zones::load::load_zone;

    /// A signature of `covered` that expires at `exp` (YYYYMMDDHHMMSS); the signature
    /// bytes are not checked at load, only the fields.
    fn sig(covered: &str, labels: u8, exp: &str) -> String {
        format!("RRSIG {covered} 13 {labels} 300 {exp} 20200101000000 12345 example.org. AAAA")
    }

    const KEY: &str = "@ DNSKEY 257 3 13 mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ==";

    fn load(tag: &str, body: &str) -> Result<crate::zones::load::LoadedZone, Vec<Problem>> {
        let d = TestDir::new(tag);
        let text = format!("$TTL 300\n@ SOA ns1 host 1 3600 600 86400 300\n@ NS ns1\nns1 A 192.0.2.1\n{body}");
        let p = d.join("example.org.zone");
        std::fs::write(&p, text).unwrap();
        load_zone(&p, &LoadLimits::default())
    }

    fn nsec_zone(extra: &str, exp: &str) -> String {
        format!(
            "{KEY}\n@ {}\n@ NSEC ns1 NS SOA RRSIG NSEC DNSKEY\n@ {}\nns1 NSEC www A RRSIG NSEC\nns1 {}\n{extra}",
            sig("SOA", 2, exp),
            sig("NSEC", 2, exp),
            sig("A", 3, exp)
        )
    }

    #[test]
    fn a_signed_nsec_zone_loads_with_its_chain() {
        let z = load("sig-ok", &nsec_zone("www A 192.0.2.80\nwww NSEC example.org. A RRSIG NSEC\n", "20301231000000")).unwrap();
        let d = z.zone.dnssec.as_deref().expect("signed");
        assert_eq!(d.denial_name(), "nsec");
        assert!(z.warnings.is_empty(), "{:?}", z.warnings);
        let soa = z.zone.soa();
        assert_eq!(soa.sigs.as_ref().map(|s| s.rdatas.len()), Some(1), "the SOA's RRSIG is attached to it");
        assert!(z.zone.apex_node().rrset(rtype::NSEC).unwrap().sigs.is_some());
    }

    #[test]
    fn a_name_without_nsec_is_rejected_at_its_line() {
        let errs = load("sig-gap", &nsec_zone("www A 192.0.2.80\n", "20301231000000")).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].line, 11);
        assert!(errs[0].msg.contains("www.example.org. has no NSEC"), "{errs:?}");
    }

    #[test]
    fn signatures_without_a_dnskey_are_rejected() {
        let errs = load("sig-nokey", &format!("@ {}\n", sig("SOA", 2, "20301231000000"))).unwrap_err();
        assert!(errs[0].msg.contains("no DNSKEY at the apex"), "{errs:?}");
        assert_eq!(errs[0].line, 5);
    }

    #[test]
    fn expiring_signatures_load_with_a_warning() {
        let soon = humantime::format_rfc3339_seconds(std::time::SystemTime::now() + std::time::Duration::from_secs(86_400)).to_string();
        let soon: String = soon.chars().filter(char::is_ascii_digit).take(14).collect();
        let z = load("sig-soon", &nsec_zone("www A 192.0.2.80\nwww NSEC example.org. A RRSIG NSEC\n", &soon)).unwrap();
        assert_eq!(z.warnings.len(), 1, "{:?}", z.warnings);
        assert!(z.warnings[0].msg.contains("expire within 3 days"), "{:?}", z.warnings);
        assert!(z.zone.dnssec.as_ref().unwrap().earliest_expiry.is_some());
    }

    fn hashed(name: &str, p: &Nsec3Params) -> String {
        let h = nsec3_hash(Name::from_text(name).unwrap().as_wire(), p);
        domain::utils::base32::encode_string_hex(&h).to_ascii_lowercase()
    }

    #[test]
    fn nsec3_names_leave_the_tree_and_every_name_needs_one() {
        let p = Nsec3Params { iterations: 1, salt: vec![0xab].into() };
        let names = ["example.org.", "ns1.example.org.", "www.example.org."];
        let mut hashes: Vec<String> = names.iter().map(|n| hashed(n, &p)).collect();
        let nsec3 = |i: usize, hs: &[String]| {
            let mut sorted = hs.to_vec();
            sorted.sort();
            let at = sorted.iter().position(|h| *h == hs[i]).unwrap();
            format!("{} NSEC3 1 0 1 ab {} A\n{} {}\n", hs[i], sorted[(at + 1) % sorted.len()], hs[i], sig("NSEC3", 3, "20301231000000"))
        };
        let body = |hs: &[String], n: usize| {
            let mut b = format!("{KEY}\n@ NSEC3PARAM 1 0 1 ab\n@ {}\nwww A 192.0.2.80\n", sig("SOA", 2, "20301231000000"));
            for i in 0..n {
                b.push_str(&nsec3(i, hs));
            }
            b
        };
        let z = load("n3-ok", &body(&hashes, 3)).unwrap();
        let Denial::Nsec3(chain) = &z.zone.dnssec.as_ref().unwrap().denial else { panic!("nsec3") };
        assert_eq!(chain.records.len(), 3);
        let owner = Name::from_text(&format!("{}.example.org.", hashes[0])).unwrap();
        assert!(z.zone.node(owner.as_wire()).is_none(), "hashed owners are not names of the zone");
        assert!(chain.nodes[Name::from_text("www.example.org.").unwrap().as_wire()].matching != NONE);
        assert!(z.warnings.iter().any(|w| w.msg.contains("RFC 9276")), "{:?}", z.warnings);
        // Without www's NSEC3 the chain does not cover www.
        hashes.swap(1, 2);
        let errs = load("n3-gap", &body(&hashes, 2)).unwrap_err();
        assert!(errs.iter().any(|e| e.msg.contains("does not cover ns1.example.org.") && e.line == 4), "{errs:?}");
    }
}
