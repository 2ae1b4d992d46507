//! What a zone transfer carries: every RRset of the zone as served (glue and occluded
//! data included), its RRSIGs, the NSEC3 chain, and for each geo service name the fixed
//! answer its config names (`ServiceConfig::transfer`), never one that follows health.
//!
//! In a zone Waypost signs, a service name's NSEC/NSEC3 lists A and AAAA; where the
//! fixed answer has only one family, the transfer carries the signed variant without
//! the other (the one a service NODATA answer uses), so the secondary's copy validates.

use std::collections::BTreeSet;

use rustc_hash::FxHashMap;

use crate::snapshot::Snapshot;
use crate::wire::query::rtype;
use crate::zones::dnssec::Denial;
use crate::zones::journal::Record;
use crate::zones::{RRset, Zone};

/// Calls `f(owner, rrset)` for every RRset a transfer of `zone` carries, RRSIGs as
/// RRsets of their own after what they cover; the apex SOA is left to the caller (it
/// opens and closes a transfer), its RRSIGs are not. The apex's RRsets come first.
pub fn for_each_rrset<'s>(snap: &'s Snapshot, zone: &'s Zone, mut f: impl FnMut(&'s [u8], &'s RRset)) {
    let dnssec = zone.dnssec.as_deref();
    // The apex first, then the other names in the map's order: RFC 5936 §2.2 asks for
    // no order, and sorting 100,000 names canonically took 85% of an AXFR's CPU.
    let apex = zone.apex_node();
    let nodes = std::iter::once(apex).chain(zone.nodes.values().filter(|n| !std::ptr::eq(*n, apex)));
    // NSEC3 owner → the service at the name it matches (for the family variants).
    let mut nsec3_service: FxHashMap<&[u8], u32> = FxHashMap::default();
    for node in nodes {
        let owner = node.name.as_wire();
        let service = node.service.map(|i| snap.services.get(i));
        // Which family the fixed answer lacks: the index of the signed denial variant.
        let variant = service.and_then(|s| {
            let (a, aaaa) = s.transfer_rrsets().fold((false, false), |(a, aaaa), r| (a || r.rtype == rtype::A, aaaa || r.rtype == rtype::AAAA));
            match (a, aaaa) {
                (false, true) => Some(0),
                (true, false) => Some(1),
                _ => None,
            }
        });
        // A node's RRSIG RRset (kept whole for type-RRSIG queries) goes out as the
        // signatures attached to each RRset they cover, so a substituted NSEC brings its own.
        for set in node.rrsets.iter().filter(|s| s.rtype != rtype::RRSIG) {
            let set = match (set.rtype, variant, dnssec) {
                (rtype::NSEC, Some(v), Some(d)) => d.service_nodata.get(&node.name).and_then(|vs| vs[v].as_ref()).unwrap_or(set),
                _ => set,
            };
            if !(set.rtype == rtype::SOA && owner == zone.apex.as_wire()) {
                f(owner, set);
            }
            if let Some(sigs) = &set.sigs {
                f(owner, sigs);
            }
        }
        if let Some(s) = service {
            for set in s.transfer_rrsets() {
                f(owner, set);
                if let Some(sigs) = &set.sigs {
                    f(owner, sigs);
                }
            }
            if let (Some(v), Some(Denial::Nsec3(chain))) = (variant, dnssec.map(|d| &d.denial)) {
                if let Some(r) = chain.nodes.get(&node.name).and_then(|n| chain.record(n.matching)) {
                    nsec3_service.insert(r.owner.as_wire(), v as u32);
                }
            }
        }
    }
    if let Some(Denial::Nsec3(chain)) = dnssec.map(|d| &d.denial) {
        for r in &chain.records {
            let variant = nsec3_service.get(r.owner.as_wire()).copied();
            let set = variant
                .and_then(|v| dnssec.and_then(|d| d.service_nodata.get(&r.owner)).and_then(|vs| vs[v as usize].as_ref()))
                .unwrap_or(&r.rrset);
            f(r.owner.as_wire(), set);
            if let Some(sigs) = &set.sigs {
                f(r.owner.as_wire(), sigs);
            }
        }
    }
}

/// Every record of a transfer of `zone` but the apex SOA.
pub fn records(snap: &Snapshot, zone: &Zone) -> BTreeSet<Record> {
    let mut out = BTreeSet::new();
    for_each_rrset(snap, zone, |owner, set| {
        for rd in &set.rdatas {
            // RRSIGs keep the TTL of what they cover (their Original TTL field).
            let ttl = if set.rtype == rtype::RRSIG { rd.get(4..8).map_or(set.ttl, |t| u32::from_be_bytes([t[0], t[1], t[2], t[3]])) } else { set.ttl };
            out.insert(Record { owner: owner.into(), rtype: set.rtype, rdata: rd.clone(), ttl });
        }
    });
    out
}
