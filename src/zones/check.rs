//! The semantic checks a zone must pass after its records were read, and building the
//! immutable [`Zone`] from them: apex SOA and NS, CNAME and DNAME rules (RFC 1034 §3.6.2,
//! RFC 2181 §10.1, RFC 6672 §2.4), glue for in-domain name servers (RFC 9471 §2.1), RRset
//! TTLs (RFC 2181 §5.2), size limits, empty non-terminals and zone cuts, then the DNSSEC
//! data of a signed zone (`zones::dnssec`). Every problem has its file and line.

use std::path::Path;
use std::sync::Arc;

use rustc_hash::FxHashSet;

use super::load::{rdata_target, soa_serial_minimum, type_name, ParsedRecord};
use super::zone::{insert_empty_non_terminals, is_below, NameMap, Node, NodeMap, RRset, Zone};
use crate::config::{LoadLimits, Problem};
use crate::wire::query::rtype;
use crate::wire::name::suffix_offsets;
use crate::wire::Name;

/// Checks `records` (the zone `apex` read from `path`) and builds the zone; None when it
/// raised an error (in `errors`).
pub(super) fn build_zone(
    path: &Path,
    apex: Name,
    records: Vec<ParsedRecord>,
    limits: &LoadLimits,
    errors: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) -> Option<Zone> {
    let record_count = records.len();
    let problem = |file: &Path, line: usize, msg: String| Problem { file: file.to_path_buf(), line, msg };
    // owner → type → (rdatas, TTL, first line)
    type SetMap = TypeMap<(Vec<Box<[u8]>>, u32, Arc<Path>, usize)>;
    // A hash map: a B-tree's name comparisons were a tenth of loading a big zone (the
    // caller puts the problems in line order).
    let mut owners: Owners<SetMap> = Owners::with_capacity(records.len() * 2 / 3);
    for r in records {
        if !r.owner.is_subdomain_of(&apex) {
            errors.push(problem(&r.file, r.line, format!("record {} is outside the zone {apex}", r.owner)));
            continue;
        }
        let sets = owners.entry(&r.owner);
        match sets.get_mut(&r.rtype) {
            None => {
                sets.insert(r.rtype, (vec![r.rdata], r.ttl, r.file, r.line));
            }
            Some((rdatas, ttl, _, first_line)) => {
                // RRSIGs of one name cover RRsets with different TTLs, each its own (RFC 4034
                // §3: an RRSIG's TTL is its RRset's): they are served per covered type.
                if r.ttl != *ttl && r.rtype != rtype::RRSIG {
                    // RFC 2181 §5.2: TTLs in an RRset must match. Knot warns and uses the lowest.
                    warnings.push(problem(
                        &r.file,
                        r.line,
                        format!("TTL {} differs from {} in the {} {} RRset; using {}", r.ttl, ttl, r.owner, type_name(r.rtype), r.ttl.min(*ttl)),
                    ));
                    *ttl = r.ttl.min(*ttl);
                }
                // RFC 2181 §5: an RRset is a set; exact duplicates collapse.
                if !rdatas.contains(&r.rdata) {
                    if r.rtype == rtype::SOA && r.owner == apex {
                        // Reported at the second SOA, the one to delete, with the first's line.
                        errors.push(problem(&r.file, r.line, format!("a second SOA record at the apex (the first is at line {first_line})")));
                    }
                    rdatas.push(r.rdata);
                }
                if rdatas.len() > limits.max_rrset_size {
                    errors.push(problem(&r.file, r.line, format!("RRset {} {} has more than {} records", r.owner, type_name(r.rtype), limits.max_rrset_size)));
                }
            }
        }
    }

    // Apex checks.
    let line_of = |sets: &SetMap| sets.values().map(|v| v.3).min().unwrap_or(1);
    match owners.get(&apex) {
        None => errors.push(problem(path, 1, format!("no SOA record at the zone apex {apex}"))),
        Some(sets) => {
            match sets.get(&rtype::SOA) {
                None => errors.push(problem(path, line_of(sets), format!("no SOA record at the zone apex {apex}"))),
                _ => {}
            }
            if !sets.contains_key(&rtype::NS) {
                errors.push(problem(path, line_of(sets), format!("no NS records at the zone apex {apex}")));
            }
        }
    }
    for (owner, sets) in owners.iter() {
        if owner != &apex {
            if let Some((_, _, f, l)) = sets.get(&rtype::SOA) {
                errors.push(problem(f, *l, format!("SOA record at {owner}, which is not the zone apex")));
            }
        }
        if let Some((rdatas, _, f, l)) = sets.get(&rtype::CNAME) {
            // RFC 1034 §3.6.2 / RFC 2181 §10.1: a CNAME stands alone and is single.
            if rdatas.len() > 1 {
                errors.push(problem(f, *l, format!("more than one CNAME record at {owner}")));
            }
            for (&t, (_, _, f2, l2)) in sets.iter() {
                if !matches!(t, rtype::CNAME | rtype::RRSIG | rtype::NSEC) {
                    let (f, l) = if l2 > l { (f2, l2) } else { (f, l) };
                    errors.push(problem(f, *l, format!("CNAME at {owner} beside other data ({})", type_name(t))));
                }
            }
        }
        // RFC 6672 §2.4: "There MUST NOT be more than one DNAME RR per owner".
        if let Some((rdatas, _, f, l)) = sets.get(&rtype::DNAME) {
            if rdatas.len() > 1 {
                errors.push(problem(f, *l, format!("more than one DNAME record at {owner}")));
            }
        }
    }
    // RFC 6672 §2.4: "Resource records MUST NOT exist at any subdomain of the owner of a
    // DNAME RR." Such data could never be reached.
    let dnames: FxHashSet<&[u8]> = owners.iter().filter(|(_, s)| s.contains_key(&rtype::DNAME)).map(|(o, _)| o.as_wire()).collect();
    let apex_len = apex.as_wire().len();
    for (owner, sets) in owners.iter().filter(|_| !dnames.is_empty()) {
        let w = owner.as_wire();
        let dname = suffix_offsets(w).skip(1).take_while(|&o| w.len() - o >= apex_len).map(|o| &w[o..]).find(|a| dnames.contains(a));
        if let Some(d) = dname.and_then(Name::from_wire) {
            let (f, l) = sets.values().map(|v| (&*v.2, v.3)).min_by_key(|v| v.1).unwrap_or((path, 0));
            errors.push(problem(f, l, format!("records at {owner} are below the DNAME at {d} (RFC 6672 §2.4)")));
        }
    }
    let has_dname = !dnames.is_empty();

    // Zone cuts: NS below the apex. Everything below a cut is glue or occluded.
    let cuts: Vec<Name> = owners
        .iter()
        .filter(|(o, sets)| *o != &apex && sets.contains_key(&rtype::NS))
        .map(|(o, _)| o.clone())
        .collect();
    let cut_set: FxHashSet<&[u8]> = cuts.iter().map(Name::as_wire).collect();
    let below_cut = |n: &Name| !cut_set.is_empty() && is_below(n.as_wire(), apex_len, |a| cut_set.contains(a));
    // RFC 9471 §2.1: in-domain (in-bailiwick) name servers of a delegation need glue.
    for cut in &cuts {
        if below_cut(cut) {
            continue;
        }
        let (rdatas, _, f, l) = &owners[cut][&rtype::NS];
        for rd in rdatas {
            let Some(target) = rdata_target(rtype::NS, rd) else { continue };
            let Some(target) = Name::from_wire(target) else { continue };
            if target.is_subdomain_of(cut) {
                let has_glue = owners
                    .get(&target)
                    .is_some_and(|s| s.contains_key(&rtype::A) || s.contains_key(&rtype::AAAA));
                if !has_glue {
                    errors.push(problem(f, *l, format!("delegation {cut}: glue (A/AAAA) missing for name server {target}")));
                }
            }
        }
    }

    if !errors.is_empty() {
        return None;
    }

    let soa = &owners[&apex][&rtype::SOA].0[0];
    let (serial, minimum) = soa_serial_minimum(soa)?;
    let soa_ttl = owners[&apex][&rtype::SOA].1;

    let mut nodes = NodeMap::with_capacity(owners.len() + owners.len() / 8);
    for (owner, sets) in owners {
        let is_cut = cut_set.contains(owner.as_wire());
        let below = below_cut(&owner);
        // Empty non-terminals: every ancestor up to the apex exists as a node.
        insert_empty_non_terminals(&mut nodes, &apex, &owner, below_cut);
        // Canonical RDATA order (RFC 4034 §6.3), as Knot serves it.
        let rrsets = sets
            .into_iter()
            .map(|(t, (mut rdatas, ttl, _, line))| {
                rdatas.sort();
                RRset { rtype: t, ttl, rdatas, line: line as u32, sigs: None }
            })
            .collect();
        nodes.insert(Node { name: owner, rrsets, is_cut, below_cut: below, service: None });
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let check = super::dnssec::SignatureCheck { now, expiry_margin: limits.rrsig_expiry_margin };
    let mut zone = Zone {
        apex,
        nodes,
        dnssec: None,
        serial,
        negative_ttl: soa_ttl.min(minimum),
        source: path.to_path_buf(),
        record_count,
        has_dname,
        expired: false,
        fingerprint: 0,
    };
    zone.dnssec = super::dnssec::prepare(&zone.apex, &mut zone.nodes, path, check, errors, warnings);
    errors.is_empty().then_some(zone)
}


/// The owners of a zone while it is built, in the order first seen (a [`NameMap`]); the
/// owner of the last record is checked first (a file lists a name's records together), so
/// most records cost no lookup and every later pass reads the owners in order (a hash map
/// of owners was a quarter of loading a big zone, mostly cache misses).
struct Owners<V> {
    map: NameMap<(Name, V)>,
    last: usize,
}

impl<V: Default> Owners<V> {
    fn with_capacity(n: usize) -> Self {
        Owners { map: NameMap::with_capacity(n), last: 0 }
    }

    fn get(&self, name: &Name) -> Option<&V> {
        self.map.get(name).map(|(_, v)| v)
    }

    /// The value of `name`, a new one when the name was not seen yet (only then copied).
    fn entry(&mut self, name: &Name) -> &mut V {
        if self.map.at_mut(self.last).is_none_or(|(n, _)| n != name) {
            self.last = self.map.position(name.as_wire()).unwrap_or_else(|| {
                self.map.insert((name.clone(), V::default()));
                self.map.len() - 1
            });
        }
        // never panics: `last` was just found or pushed.
        &mut self.map.at_mut(self.last).expect("owner present").1
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    fn iter(&self) -> impl Iterator<Item = (&Name, &V)> {
        self.map.values().map(|(n, v)| (n, v))
    }
}

impl<V: Default> std::ops::Index<&Name> for Owners<V> {
    type Output = V;

    fn index(&self, name: &Name) -> &V {
        // never panics where it is used: for names just found among the owners.
        self.get(name).expect("owner present")
    }
}

impl<V> IntoIterator for Owners<V> {
    type Item = (Name, V);
    type IntoIter = std::vec::IntoIter<(Name, V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.map.into_iter()
    }
}

/// An owner's RRsets by type while a zone is built: a few types per name, so a vector
/// kept in type order (a B-tree per name cost a twentieth of loading a big zone).
struct TypeMap<V>(Vec<(u16, V)>);

impl<V> Default for TypeMap<V> {
    fn default() -> Self {
        TypeMap(Vec::new())
    }
}

impl<V> TypeMap<V> {
    fn get(&self, t: &u16) -> Option<&V> {
        self.0.iter().find(|(k, _)| k == t).map(|(_, v)| v)
    }

    fn get_mut(&mut self, t: &u16) -> Option<&mut V> {
        self.0.iter_mut().find(|(k, _)| k == t).map(|(_, v)| v)
    }

    fn contains_key(&self, t: &u16) -> bool {
        self.get(t).is_some()
    }

    fn insert(&mut self, t: u16, v: V) {
        let at = self.0.partition_point(|(k, _)| *k < t);
        self.0.insert(at, (t, v));
    }

    fn values(&self) -> impl Iterator<Item = &V> {
        self.0.iter().map(|(_, v)| v)
    }

    fn iter(&self) -> impl Iterator<Item = (&u16, &V)> {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl<V> IntoIterator for TypeMap<V> {
    type Item = (u16, V);
    type IntoIter = std::vec::IntoIter<(u16, V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<V> std::ops::Index<&u16> for TypeMap<V> {
    type Output = V;

    fn index(&self, t: &u16) -> &V {
        // never panics where it is used: only for types just checked to be present.
        self.get(t).expect("type present")
    }
}
