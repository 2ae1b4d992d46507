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


#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::transfer::Allow;
    use crate::config::LoadLimits;
    use crate::wire::Name;
    use crate::zones::journal::Journal;
    use crate::zones::load_catalog;

    /// example.org. at `serial` with one record named after it, transfers allowed,
    /// `history` changes kept.
    fn version(serial: u32, history: usize) -> Snapshot {
        let dir = crate::test_dir::TestDir::new("journal");
        let text = format!("$TTL 300\n@ SOA ns1 host {serial} 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.1\nn{serial} A 192.0.2.{serial}\n");
        std::fs::write(dir.join("example.org.zone"), text).unwrap();
        let mut snap = Snapshot::from_catalog(load_catalog(&dir, &LoadLimits::default(), None).unwrap().catalog);
        let mut config = (*snap.config).clone();
        config.transfer.allow = vec![Allow { network: "127.0.0.1/32".parse().unwrap(), key: None }];
        config.transfer.history = history;
        snap.config = Arc::new(config);
        snap
    }

    /// Publishes `serials` one after another; the journal of the last.
    fn journal_after(serials: &[u32], history: usize) -> Option<Arc<Journal>> {
        let mut prev = version(serials[0], history);
        for &s in &serials[1..] {
            let mut next = version(s, history);
            next.journals = Arc::new(update(&prev, &next));
            prev = next;
        }
        prev.journals.get(&Name::from_text("example.org.").unwrap()).cloned()
    }

    fn from_serials(j: &Journal) -> Vec<u32> {
        j.changes.iter().map(|c| c.from_serial).collect()
    }

    #[test]
    fn the_journal_keeps_the_last_history_changes() {
        let j = journal_after(&[1, 2, 3, 4, 5], 2).expect("a journal");
        // 1→2 and 2→3 were dropped, oldest first.
        assert_eq!(from_serials(&j), vec![3, 4]);
        assert!(j.since(2).is_none(), "serial 2 is no longer kept: AXFR-style");
        assert_eq!(j.since(3).map(|c| c.count()), Some(2));
        let last = j.changes.back().unwrap();
        let owners = |rs: &[Record]| rs.iter().map(|r| Name::from_wire(&r.owner).unwrap().to_string()).collect::<Vec<_>>();
        assert_eq!((owners(&last.removed), owners(&last.added)), (vec!["n4.example.org.".to_string()], vec!["n5.example.org.".to_string()]));
        assert_eq!((soa_serial(&last.from_soa), soa_serial(&last.to_soa)), (4, 5));
        assert_eq!(from_serials(&journal_after(&[1, 2, 3, 4, 5], 16).unwrap()), vec![1, 2, 3, 4]);
    }

    #[test]
    fn a_serial_that_goes_back_or_no_history_leaves_no_journal() {
        assert!(journal_after(&[1, 2, 3, 2], 16).is_none(), "serial went back");
        assert!(journal_after(&[1, 2, 3], 0).is_none(), "history = 0");
        // An unchanged serial keeps the journal as it was.
        assert_eq!(from_serials(&journal_after(&[1, 2, 3, 3], 16).unwrap()), vec![1, 2]);
    }
}
