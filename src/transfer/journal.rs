//! Keeping each zone's IXFR journal as versions replace each other (control side).

use std::sync::Arc;

use crate::snapshot::Snapshot;
use crate::wire::query::rtype;
use crate::zones::journal::{Change, Journals, Record};
use crate::zones::Zone;

use super::content;

fn soa_record(zone: &Zone) -> Record {
    let soa = zone.soa();
    Record { owner: zone.apex.as_wire().into(), rtype: rtype::SOA, rdata: soa.rdatas[0].clone(), ttl: soa.ttl }
}

/// The journals for `new`, from those of `old`: a zone whose serial went forward gets
/// one more change (the records removed and added), at most `history` kept; a zone
/// with an unchanged serial keeps its journal; a new zone, or one whose serial went
/// back, starts with none. No journals at all when nobody may transfer.
pub fn update(old: &Snapshot, new: &Snapshot) -> Journals {
    let history = new.config.transfer.history;
    let mut out = Journals::default();
    if history == 0 || new.config.transfer.allow.is_empty() {
        return out;
    }
    for zone in new.catalog.iter() {
        let Some(prev) = old.catalog.find(zone.apex.as_wire()).filter(|z| z.apex == zone.apex) else { continue };
        let kept = old.journals.get(&zone.apex).cloned();
        if prev.serial == zone.serial {
            if let Some(j) = kept {
                out.insert(zone.apex.clone(), j);
            }
            continue;
        }
        if !super::serial_lt(prev.serial, zone.serial) {
            continue;
        }
        let before = content::records(old, prev);
        let after = content::records(new, zone);
        let change = Change {
            from_serial: prev.serial,
            from_soa: soa_record(prev),
            to_soa: soa_record(zone),
            removed: before.difference(&after).cloned().collect(),
            added: after.difference(&before).cloned().collect(),
        };
        let mut j = kept.map(|j| (*j).clone()).unwrap_or_default();
        // A chain with a gap (an earlier version was never published here) is no use.
        if j.changes.back().is_some_and(|c| soa_serial(&c.to_soa) != prev.serial) {
            j.changes.clear();
        }
        j.changes.push_back(change);
        while j.changes.len() > history {
            j.changes.pop_front();
        }
        out.insert(zone.apex.clone(), Arc::new(j));
    }
    out
}

fn soa_serial(r: &Record) -> u32 {
    let rd = &r.rdata;
    let n = rd.len();
    u32::from_be_bytes([rd[n - 20], rd[n - 19], rd[n - 18], rd[n - 17]])
}

