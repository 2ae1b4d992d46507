//! What a zone transfer carries: every RRset of the zone as served (glue and occluded
//! data included), its RRSIGs, the NSEC3 chain, and for each geo service name the fixed
//! answer its config names (`ServiceConfig::transfer`), never one that follows health.
//!
//! In a zone Waypost signs, a service name's own NSEC/NSEC3 states the types of exactly
//! that fixed answer (`signer::zone::ServiceName::transfer`), so the secondary's copy
//! verifies; clients of Waypost itself get the variant for their own answer.

use std::collections::BTreeSet;

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
    let mut put = |owner: &'s [u8], set: &'s RRset| {
        f(owner, set);
        if let Some(sigs) = &set.sigs {
            f(owner, sigs);
        }
    };
    for node in nodes {
        let owner = node.name.as_wire();
        // A node's RRSIG RRset (kept whole for type-RRSIG queries) goes out as the
        // signatures attached to each RRset they cover.
        for set in node.rrsets.iter().filter(|s| s.rtype != rtype::RRSIG) {
            // The SOA opens and closes the transfer: only its signatures here.
            let set = match set.rtype == rtype::SOA && node.name == zone.apex {
                true => match set.sigs.as_deref() {
                    Some(sigs) => sigs,
                    None => continue,
                },
                false => set,
            };
            put(owner, set);
        }
        for set in node.service.into_iter().flat_map(|i| snap.services.get(i).transfer_rrsets()) {
            put(owner, set);
        }
    }
    if let Some(Denial::Nsec3(chain)) = dnssec.map(|d| &d.denial) {
        for r in &chain.records {
            put(r.owner.as_wire(), &r.rrset);
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
