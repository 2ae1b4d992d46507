//! Signing one zone: DNSKEY/CDS/CDNSKEY at the apex, the NSEC or NSEC3 chain, and an
//! RRSIG over every authoritative RRset, then the same preparation a pre-signed zone
//! gets (`zones::dnssec::prepare`), so both are served by one code path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ring::rand::SystemRandom;

use super::keys::Key;
use super::sign::{sign_rrset, type_bitmap, Window};
use crate::wire::name::canonical_cmp;
use crate::wire::query::rtype;
use crate::wire::Name;
use crate::zones::dnssec::{nsec3_hash, shape, Compact, Denial, Nsec3Params, OnlineSigner, ServiceNsec, SignatureCheck, DNSKEY, NSEC3PARAM};
use crate::config::Problem;
use crate::zones::{RRset, Zone};

pub const CDS: u16 = 59;
pub const CDNSKEY: u16 = 60;

pub use crate::config::{DenialMode, SigningPolicy as Policy};

/// The window in force at `now`. Windows start at multiples of `refresh` since the epoch
/// (UTC days when `refresh` is whole days), so every instance of a fleet with the same
/// policy signs with the same window; the inception is a day before the start, for
/// resolvers whose clocks are behind.
pub fn window_at(now: u64, p: &Policy) -> (u64, Window) {
    let start = now / p.refresh * p.refresh;
    (start, Window { inception: start.saturating_sub(86_400) as u32, expiration: (start + p.validity) as u32 })
}

/// The SOA serial a zone Waypost signs is first served with (no serial of it kept in
/// `state-dir`, `zones::serial`): the file's serial plus 16 per signature window since
/// the epoch plus the key events (Publish, Activate, Inactive, Delete) that passed in
/// this window (at most 15): what earlier versions served at every signing, so an
/// upgrade never lowers it, and what every instance of a fleet with the same keys and
/// policy starts from (RFC 1982 arithmetic).
pub fn served_serial(file_serial: u32, keys: &[&Key], policy: &Policy, now: u64) -> u32 {
    let (start, _) = window_at(now, policy);
    let events = keys
        .iter()
        .flat_map(|k| [k.timing.publish, k.timing.activate, k.timing.inactive, k.timing.delete])
        .flatten()
        .filter(|&t| start < t && t <= now)
        .count()
        .min(15) as u32;
    file_serial.wrapping_add(((start / policy.refresh) as u32).wrapping_mul(16)).wrapping_add(events)
}

/// The keys of one zone in their state at one moment.
pub struct KeySet<'k> {
    pub published: Vec<&'k Key>,
    /// Signs the DNSKEY, CDS and CDNSKEY RRsets: active SEP keys.
    pub key_signing: Vec<&'k Key>,
    /// Signs everything else: active non-SEP keys, or the SEP keys when there are none (a CSK).
    pub zone_signing: Vec<&'k Key>,
}

impl<'k> KeySet<'k> {
    pub fn at(keys: &[&'k Key], now: u64) -> Result<KeySet<'k>, String> {
        let published: Vec<&Key> = keys.iter().copied().filter(|k| k.timing.published(now)).collect();
        let active: Vec<&Key> = keys.iter().copied().filter(|k| k.timing.active(now)).collect();
        let key_signing: Vec<&Key> = active.iter().copied().filter(|k| k.is_sep()).collect();
        let zsks: Vec<&Key> = active.iter().copied().filter(|k| !k.is_sep()).collect();
        if key_signing.is_empty() {
            return Err("no KSK or CSK (flags 257) of the zone is active now: nothing could sign its DNSKEY RRset".into());
        }
        let zone_signing = if zsks.is_empty() { key_signing.clone() } else { zsks };
        Ok(KeySet { published, key_signing, zone_signing })
    }
}

/// A geo service name in a zone Waypost signs, as its NSEC/NSEC3 records need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceName {
    pub name: Name,
    /// The service's index in the snapshot's `ServiceTable`.
    pub index: u32,
    /// The types its answers can have (A, AAAA, CNAME).
    pub types: Vec<u16>,
    /// The [`shape`] of the answer a zone transfer carries for it (0 when left out).
    pub transfer: u8,
}

/// The zone with Waypost's DNSSEC records. Signatures already in the file are dropped.
/// `services`: the geo service names in the zone; they get chain entries stating the
/// answer a transfer carries, and a variant per shape of their answers (see
/// `zones::dnssec::Dnssec::service_nsec`).
/// `online` signs on the query path what compact denial cannot make ahead (required for
/// `DenialMode::Compact`).
#[allow(clippy::too_many_arguments)]
pub fn sign_zone(
    zone: &Zone,
    keys: &KeySet,
    policy: &Policy,
    services: &[ServiceName],
    serial: u32,
    now: u64,
    check: SignatureCheck,
    online: Option<Arc<dyn OnlineSigner>>,
) -> Result<Zone, Vec<Problem>> {
    let apex = zone.apex.clone();
    let rng = SystemRandom::new();
    let (_, window) = window_at(now, policy);
    let mut nodes = zone.nodes.clone();
    // The served serial (`zones::serial`) in the SOA, signed below with the rest.
    crate::zones::zone::set_soa_serial(&mut nodes, &apex, serial);
    for n in nodes.values_mut() {
        let at_apex = n.name == apex;
        n.rrsets.retain(|s| !matches!(s.rtype, rtype::RRSIG | rtype::NSEC | rtype::NSEC3 | NSEC3PARAM) && !(at_apex && matches!(s.rtype, DNSKEY | CDS | CDNSKEY)));
        for s in &mut n.rrsets {
            s.sigs = None;
        }
    }
    // Service names are names of the zone (attached per snapshot): they need chain
    // entries, with the types they answer.
    let cuts: rustc_hash::FxHashSet<Name> = nodes.values().filter(|n| n.is_cut).map(|n| n.name.clone()).collect();
    let below = |n: &Name| crate::zones::zone::is_below(n.as_wire(), apex.as_wire().len(), |a| cuts.contains(a));
    for ServiceName { name, .. } in services {
        if !nodes.contains_key(name) {
            crate::zones::zone::insert_empty_non_terminals(&mut nodes, &apex, name, below);
            nodes.insert(crate::zones::Node::empty(name.clone(), below(name)));
        }
    }
    let service_of = |n: &Name| services.iter().find(|s| &s.name == n);
    let key_ttl = zone.soa().ttl;
    let neg_ttl = zone.negative_ttl;
    // The apex keys (RFC 4034 §2), and CDS/CDNSKEY for the parent (RFC 7344 §3, RFC 8078).
    let mut dnskeys: Vec<Box<[u8]>> = keys.published.iter().map(|k| k.dnskey.clone()).collect();
    dnskeys.sort();
    dnskeys.dedup();
    let mut cds = Vec::new();
    let mut cdnskey = Vec::new();
    for k in keys.published.iter().filter(|k| k.is_sep()) {
        cds.push(super::keys::ds_rdata(k).into_boxed_slice());
        cdnskey.push(k.dnskey.clone());
    }
    cds.sort();
    cdnskey.sort();
    {
        // never panics: a zone always has its apex node.
        let apex_node = nodes.get_mut(&apex).expect("apex");
        for (t, rdatas) in [(DNSKEY, dnskeys), (CDS, cds), (CDNSKEY, cdnskey)] {
            if !rdatas.is_empty() {
                apex_node.rrsets.push(RRset::new(t, key_ttl, rdatas));
            }
        }
    }

    // The denial chain. A service name's own NSEC/NSEC3 states the answer a transfer
    // carries (`ServiceName::transfer`); beside it one variant per shape its answers can
    // take, each stating exactly that answer's types, for the clients given that answer.
    let mut variants: Vec<(Name, u32, [Option<RRset>; shape::COUNT])> = Vec::new();
    // Compact denial: the NSECs of empty non-terminals, which have no RRset to hold them.
    let mut ents: Vec<(Name, RRset)> = Vec::new();
    match policy.denial {
        DenialMode::Nsec | DenialMode::Compact => {
            let compact = policy.denial == DenialMode::Compact;
            let mut names: Vec<Name> =
                nodes.values().filter(|n| !n.below_cut && (!n.rrsets.is_empty() || service_of(&n.name).is_some())).map(|n| n.name.clone()).collect();
            names.sort_by(|a, b| canonical_cmp(a.as_wire(), b.as_wire()));
            // Compact (RFC 9824 §3.2): every NSEC covers nothing but its owner, so no walk
            // of the chain lists the zone.
            let next_of = |i: usize| -> Option<Name> {
                match compact {
                    true => crate::zones::dnssec::compact_next(names[i].as_wire()).and_then(|n| Name::from_wire(&n)),
                    false => Some(names[(i + 1) % names.len()].clone()),
                }
            };
            let nsec = |next: &Name, types: &[u16]| {
                let mut rd = next.as_wire().to_vec();
                rd.extend_from_slice(&type_bitmap(types));
                RRset::new(rtype::NSEC, neg_ttl, vec![rd.into_boxed_slice()])
            };
            for (i, name) in names.iter().enumerate() {
                let Some(next) = next_of(i) else { continue };
                // never panics: the names were taken from the map.
                let node = nodes.get_mut(name).expect("node");
                let data = signed_types(node);
                let types = |s: u8| data.iter().copied().chain(shape::types(s)).chain([rtype::RRSIG, rtype::NSEC]).collect::<Vec<u16>>();
                let service = service_of(name);
                if let Some(sv) = service {
                    let mut vs: [Option<RRset>; shape::COUNT] = Default::default();
                    for s in shape::possible(&sv.types) {
                        vs[s as usize] = Some(nsec(&next, &types(s)));
                    }
                    variants.push((name.clone(), sv.index, vs));
                }
                node.rrsets.push(nsec(&next, &types(service.map_or(0, |sv| sv.transfer))));
            }
            if compact {
                for n in nodes.values().filter(|n| !n.below_cut && n.rrsets.is_empty() && service_of(&n.name).is_none()) {
                    if let Some(next) = crate::zones::dnssec::compact_next(n.name.as_wire()).and_then(|w| Name::from_wire(&w)) {
                        ents.push((n.name.clone(), nsec(&next, &[rtype::RRSIG, rtype::NSEC])));
                    }
                }
            }
        }
        DenialMode::Nsec3 => {
            let params = Nsec3Params { iterations: 0, salt: Box::new([]) };
            // The bitmap of `n` with the service types of shape `s`: RRSIG where anything
            // at the name is signed (not at a delegation without DS).
            let types = |n: &crate::zones::Node, s: u8| {
                let mut t: Vec<u16> = signed_types(n).into_iter().chain(shape::types(s)).collect();
                if !t.is_empty() && (!n.is_cut || n.rrset(rtype::DS).is_some()) {
                    t.push(rtype::RRSIG);
                }
                if n.name == apex {
                    t.push(NSEC3PARAM);
                }
                t
            };
            // (hash, bitmap, for a service: its index and (shape, bitmap) per possible shape)
            type Entry = ([u8; 20], Vec<u16>, Option<(u32, Vec<(u8, Vec<u16>)>)>);
            let mut chain: Vec<Entry> = nodes
                .values()
                .filter(|n| !n.below_cut)
                .map(|n| {
                    let service = service_of(&n.name);
                    let own = types(n, service.map_or(0, |sv| sv.transfer));
                    let shapes = service.map(|sv| (sv.index, shape::possible(&sv.types).map(|s| (s, types(n, s))).collect()));
                    (nsec3_hash(n.name.as_wire(), &params), own, shapes)
                })
                .collect();
            chain.sort_by(|a, b| a.0.cmp(&b.0));
            for i in 0..chain.len() {
                let (hash, types, service) = &chain[i];
                let next = chain[(i + 1) % chain.len()].0;
                let nsec3 = |types: &[u16]| {
                    let mut rd = vec![1, 0, 0, 0, 0, 20];
                    rd.extend_from_slice(&next);
                    rd.extend_from_slice(&type_bitmap(types));
                    RRset::new(rtype::NSEC3, neg_ttl, vec![rd.into_boxed_slice()])
                };
                let label = domain::utils::base32::encode_string_hex(hash).to_ascii_lowercase();
                let mut owner = vec![label.len() as u8];
                owner.extend_from_slice(label.as_bytes());
                owner.extend_from_slice(apex.as_wire());
                let Some(owner) = Name::from_wire(&owner) else { continue };
                if let Some((index, shapes)) = service {
                    let mut vs: [Option<RRset>; shape::COUNT] = Default::default();
                    for (s, t) in shapes {
                        vs[*s as usize] = Some(nsec3(t));
                    }
                    variants.push((owner.clone(), *index, vs));
                }
                nodes.insert(crate::zones::Node { name: owner, rrsets: vec![nsec3(types)], is_cut: false, below_cut: false, service: None });
            }
            // never panics: a zone always has its apex node.
            nodes.get_mut(&apex).expect("apex").rrsets.push(RRset::new(NSEC3PARAM, 0, vec![Box::new([1, 0, 0, 0, 0])]));
        }
    }

    // RRSIGs over every authoritative RRset (RFC 4035 §2.2): not over glue, nor over a
    // delegation's NS RRset.
    // On every core: a zone of a million records is a million signatures (~20 µs each).
    let mut work: Vec<&mut crate::zones::Node> = nodes.values_mut().filter(|n| !n.below_cut).collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = work.len().div_ceil(threads).max(1);
    let rng_ref = &rng;
    let mut problems: Vec<Problem> = std::thread::scope(|scope| {
        let parts: Vec<_> = work.chunks_mut(chunk).map(|part| scope.spawn(move || sign_nodes(part, keys, window, rng_ref))).collect();
        // never panics: sign_nodes does not panic (a join error would be a bug there).
        parts.into_iter().flat_map(|h| h.join().expect("signing thread")).collect()
    });
    let variant_sets = variants.iter_mut().flat_map(|(o, _, vs)| {
        let o: &Name = o;
        vs.iter_mut().flatten().map(move |s| (o, s))
    });
    for (owner, set) in variant_sets.chain(ents.iter_mut().map(|(o, s)| (&*o, s))) {
        let mut sigs = Vec::new();
        for k in &keys.zone_signing {
            if let Some(s) = sign_rrset(owner.as_wire(), set.rtype, set.ttl, &set.rdatas, k, window, &rng) {
                sigs.push(s);
            }
        }
        set.sigs = Some(std::sync::Arc::new(RRset::new(rtype::RRSIG, set.ttl, sigs)));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut warnings = Vec::new();
    let mut dnssec = crate::zones::dnssec::prepare(&apex, &mut nodes, &zone.source, check, &mut problems, &mut warnings);
    if !problems.is_empty() {
        return Err(problems);
    }
    if let Some(d) = dnssec.as_mut() {
        for (owner, service, variants) in variants {
            d.service_nsec.insert(owner, ServiceNsec { service, variants });
        }
        if let Some(signer) = online.filter(|_| policy.denial == DenialMode::Compact) {
            d.denial = Denial::Compact(Compact { id: next_compact_id(), signer, ents: ents.into_iter().collect(), ttl: neg_ttl });
        }
    }
    let record_count = nodes.values().flat_map(|n| n.rrsets.iter()).map(|s| s.rdatas.len()).sum();
    Ok(Zone { apex, nodes, serial, negative_ttl: neg_ttl, source: zone.source.clone(), record_count, has_dname: zone.has_dname, dnssec, expired: zone.expired, fingerprint: zone.fingerprint })
}

/// The RRSIG RRset of each node's authoritative RRsets (RFC 4035 §2.2): not over glue,
/// nor over a delegation's NS RRset. Returns the signing failures.
fn sign_nodes(nodes: &mut [&mut crate::zones::Node], keys: &KeySet, window: Window, rng: &SystemRandom) -> Vec<Problem> {
    let mut problems = Vec::new();
    for node in nodes.iter_mut() {
        let mut sigs: Vec<Box<[u8]>> = Vec::new();
        let mut sig_ttl = u32::MAX;
        for set in &node.rrsets {
            if node.is_cut && !matches!(set.rtype, rtype::DS | rtype::NSEC) {
                continue;
            }
            let signers = if matches!(set.rtype, DNSKEY | CDS | CDNSKEY) { &keys.key_signing } else { &keys.zone_signing };
            for k in signers {
                match sign_rrset(node.name.as_wire(), set.rtype, set.ttl, &set.rdatas, k, window, rng) {
                    Some(s) => sigs.push(s),
                    None => problems.push(Problem { file: k.file.clone(), line: 0, msg: format!("signing {} failed", node.name) }),
                }
            }
            sig_ttl = sig_ttl.min(set.ttl);
        }
        if !sigs.is_empty() {
            node.rrsets.push(RRset::new(rtype::RRSIG, sig_ttl, sigs));
        }
        node.rrsets.sort_by_key(|s| s.rtype);
    }
    problems
}

/// A new [`Compact::id`].
fn next_compact_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Signs on the query path (compact denial) with a zone's zone-signing keys in one window.
pub struct ZoneSigner {
    pub keys: Vec<Arc<Key>>,
    pub window: Window,
    pub rng: SystemRandom,
}

impl std::fmt::Debug for ZoneSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZoneSigner").field("keys", &self.keys.iter().map(|k| k.tag).collect::<Vec<_>>()).field("window", &self.window).finish()
    }
}

impl OnlineSigner for ZoneSigner {
    fn sign(&self, owner: &[u8], rt: u16, ttl: u32, rdatas: &[Box<[u8]>]) -> Option<RRset> {
        let sigs: Vec<Box<[u8]>> = self.keys.iter().filter_map(|k| sign_rrset(owner, rt, ttl, rdatas, k, self.window, &self.rng)).collect();
        (!sigs.is_empty()).then(|| RRset::new(rtype::RRSIG, ttl, sigs))
    }
}

/// The types a node's NSEC/NSEC3 bitmap lists from its data: everything at an
/// authoritative name, NS and DS at a delegation.
fn signed_types(n: &crate::zones::Node) -> Vec<u16> {
    n.rrsets.iter().map(|s| s.rtype).filter(|&t| !n.is_cut || matches!(t, rtype::NS | rtype::DS)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_served_serial_rises_with_each_window_and_each_file_serial() {
        let p = Policy { denial: DenialMode::Nsec, validity: 21 * 86_400, refresh: 7 * 86_400 };
        let t = 1_796_000_000;
        let a = served_serial(5, &[], &p, t);
        assert_eq!(served_serial(5, &[], &p, t + 3600), a, "same window, same file: same serial");
        assert!(crate::zones::catalog::serial_lt(a, served_serial(5, &[], &p, t + p.refresh)), "a new window raises it");
        assert!(crate::zones::catalog::serial_lt(a, served_serial(6, &[], &p, t)), "a new file serial raises it");
        assert_eq!(served_serial(u32::MAX, &[], &p, t), a.wrapping_sub(6), "wraps as serial arithmetic does");
    }
}
