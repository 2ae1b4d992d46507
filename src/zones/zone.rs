//! The immutable, loaded form of one zone: nodes keyed by lowercased wire name.

use std::borrow::Borrow;
use std::path::PathBuf;


use crate::wire::query::rtype;
use crate::wire::response::RecordData;
use crate::wire::Name;

/// All records of one owner, class and type (RFC 2181 §5).
#[derive(Debug, Clone)]
pub struct RRset {
    pub rtype: u16,
    pub ttl: u32,
    /// RDATA in uncompressed wire form, names in it lowercased as written in the file.
    pub rdatas: Vec<Box<[u8]>>,
    /// Line of its first record in the zone file (0 when not from a file); not part of equality.
    pub line: u32,
    /// The RRSIGs that cover this RRset (type RRSIG, RDATA as in the file), in a signed
    /// zone; sent after it to DO queries. Not part of equality.
    pub sigs: Option<std::sync::Arc<RRset>>,
}

impl RRset {
    /// An unsigned RRset that is not from a file.
    pub fn new(rtype: u16, ttl: u32, rdatas: Vec<Box<[u8]>>) -> RRset {
        RRset { rtype, ttl, rdatas, line: 0, sigs: None }
    }
}

impl PartialEq for RRset {
    fn eq(&self, o: &Self) -> bool {
        self.rtype == o.rtype && self.ttl == o.ttl && self.rdatas == o.rdatas
    }
}

impl Eq for RRset {}

impl RecordData for RRset {
    fn rtype(&self) -> u16 {
        self.rtype
    }
    fn ttl(&self) -> u32 {
        self.ttl
    }
    fn rdatas(&self) -> &[Box<[u8]>] {
        &self.rdatas
    }
}

/// One owner name in the zone. Empty non-terminals are nodes with no RRsets.
#[derive(Debug, Clone)]
pub struct Node {
    pub name: Name,
    /// Sorted by type.
    pub rrsets: Vec<RRset>,
    /// A zone cut: NS at a name other than the apex (RFC 1034 §4.2.1).
    pub is_cut: bool,
    /// True when the node lies below a zone cut (glue or occluded data).
    pub below_cut: bool,
    /// Index of the geo service answering A/AAAA at this name (attached per snapshot).
    pub service: Option<u32>,
}

impl Node {
    /// A node without records: an empty non-terminal (RFC 8020), or a service name.
    pub fn empty(name: Name, below_cut: bool) -> Node {
        Node { name, rrsets: Vec::new(), is_cut: false, below_cut, service: None }
    }

    pub fn rrset(&self, rt: u16) -> Option<&RRset> {
        self.rrsets.iter().find(|s| s.rtype == rt)
    }

    pub fn cname(&self) -> Option<&RRset> {
        self.rrset(rtype::CNAME)
    }
}

impl Borrow<[u8]> for Name {
    fn borrow(&self) -> &[u8] {
        self.as_wire()
    }
}

impl Borrow<[u8]> for &Name {
    fn borrow(&self) -> &[u8] {
        self.as_wire()
    }
}

/// The names of a zone: every node once, in a vector, found by its name through a table
/// of indexes. Each name is stored once (in its node), and the table's buckets are four
/// octets: a map from names to nodes kept every name twice and whole nodes in buckets
/// half empty, 1.75x knotd's memory on a million records (benches/zone-scale.py).
///
/// Generic over what is kept by name ([`Named`]): the zone's nodes ([`NodeMap`]) and,
/// while a zone is built, its owners with their records (`zones::check`).
#[derive(Debug, Clone)]
pub struct NameMap<T> {
    nodes: Vec<T>,
    index: hashbrown::HashTable<u32>,
}

/// The names of a zone (see [`NameMap`]).
pub type NodeMap = NameMap<Node>;

/// Something a [`NameMap`] finds by its name (wire form).
pub trait Named {
    fn name(&self) -> &[u8];
}

impl Named for Node {
    fn name(&self) -> &[u8] {
        self.name.as_wire()
    }
}

impl<V> Named for (Name, V) {
    fn name(&self) -> &[u8] {
        self.0.as_wire()
    }
}

impl<T> Default for NameMap<T> {
    fn default() -> Self {
        NameMap { nodes: Vec::new(), index: hashbrown::HashTable::new() }
    }
}

fn name_hash(name: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = rustc_hash::FxHasher::default();
    h.write(name);
    h.finish()
}

impl<T: Named> NameMap<T> {
    pub fn with_capacity(n: usize) -> Self {
        NameMap { nodes: Vec::with_capacity(n), index: hashbrown::HashTable::with_capacity(n) }
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Where the node named `name` is ([`Self::at`]).
    pub fn position(&self, name: &[u8]) -> Option<usize> {
        let nodes = &self.nodes;
        self.index.find(name_hash(name), |&i| nodes[i as usize].name() == name).map(|&i| i as usize)
    }

    pub fn get<K: Borrow<[u8]> + ?Sized>(&self, name: &K) -> Option<&T> {
        self.position(name.borrow()).map(|i| &self.nodes[i])
    }

    pub fn get_mut<K: Borrow<[u8]> + ?Sized>(&mut self, name: &K) -> Option<&mut T> {
        self.position(name.borrow()).map(|i| &mut self.nodes[i])
    }

    pub fn contains_key<K: Borrow<[u8]> + ?Sized>(&self, name: &K) -> bool {
        self.position(name.borrow()).is_some()
    }

    /// Adds `node`, or replaces the node of the same name.
    pub fn insert(&mut self, node: T) {
        match self.position(node.name()) {
            Some(i) => self.nodes[i] = node,
            None => {
                let i = self.nodes.len() as u32;
                let nodes = &self.nodes;
                self.index.insert_unique(name_hash(node.name()), i, |&j| name_hash(nodes[j as usize].name()));
                self.nodes.push(node);
            }
        }
    }

    /// The node named `name`, made by `make` if there is none.
    pub fn get_or_insert_with(&mut self, name: &Name, make: impl FnOnce() -> T) -> &mut T {
        let i = match self.position(name.as_wire()) {
            Some(i) => i,
            None => {
                self.insert(make());
                self.nodes.len() - 1
            }
        };
        &mut self.nodes[i]
    }

    /// Takes the node named `name` out (the last node moves into its place).
    pub fn remove<K: Borrow<[u8]> + ?Sized>(&mut self, name: &K) -> Option<T> {
        let name = name.borrow();
        let i = self.position(name)?;
        let nodes = &self.nodes;
        if let Ok(e) = self.index.find_entry(name_hash(name), |&j| nodes[j as usize].name() == name) {
            e.remove();
        }
        let last = self.nodes.len() - 1;
        if i != last {
            let moved = name_hash(self.nodes[last].name());
            if let Some(slot) = self.index.find_mut(moved, |&j| j as usize == last) {
                *slot = i as u32;
            }
        }
        Some(self.nodes.swap_remove(i))
    }

    /// The node at a [`Self::position`] (positions change only by [`Self::remove`]).
    pub fn at_mut(&mut self, i: usize) -> Option<&mut T> {
        self.nodes.get_mut(i)
    }

    pub fn values(&self) -> std::slice::Iter<'_, T> {
        self.nodes.iter()
    }

    pub fn values_mut(&mut self) -> std::slice::IterMut<'_, T> {
        self.nodes.iter_mut()
    }
}

impl<T: Named> IntoIterator for NameMap<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;

    fn into_iter(self) -> Self::IntoIter {
        self.nodes.into_iter()
    }
}

impl<T: Named, K: Borrow<[u8]> + ?Sized> std::ops::Index<&K> for NameMap<T> {
    type Output = T;

    fn index(&self, name: &K) -> &T {
        // never panics where it is used: for names known to be nodes (the apex).
        self.get(name).expect("node present")
    }
}

/// Makes every ancestor of `name` up to the apex a node, as an empty non-terminal where
/// there is none yet (stopping at the first that exists), so that whether a name exists
/// is one lookup (RFC 8020: below an empty non-terminal there is something, so it is
/// NOERROR, not NXDOMAIN). `below_cut` tells whether a name lies below a zone cut.
pub fn insert_empty_non_terminals(nodes: &mut NodeMap, apex: &Name, name: &Name, below_cut: impl Fn(&Name) -> bool) {
    let mut anc = name.parent();
    while let Some(a) = anc {
        if !a.is_subdomain_of(apex) || nodes.contains_key(&a) {
            break;
        }
        let below = below_cut(&a);
        nodes.insert(Node::empty(a.clone(), below));
        anc = a.parent();
    }
}

/// A loaded zone. Never mutated after it is built (a zone with services attached is a
/// copy made per snapshot by `zones::attach`).
#[derive(Debug, Clone)]
pub struct Zone {
    pub apex: Name,
    pub nodes: NodeMap,
    pub serial: u32,
    /// TTL for negative answers: min(SOA TTL, SOA MINIMUM) (RFC 2308 §3, §5).
    pub negative_ttl: u32,
    pub source: PathBuf,
    /// Number of records, for status and limits.
    pub record_count: usize,
    /// Some node has a DNAME: lookups check the names they pass for one (RFC 6672).
    pub has_dname: bool,
    /// A signed zone's denial chain and signature facts (None: unsigned).
    pub dnssec: Option<Box<super::dnssec::Dnssec>>,
    /// A zone received from a primary that was not refreshed within its SOA expire
    /// time: answered with SERVFAIL (RFC 1035 §4.3.5) until a refresh succeeds.
    pub expired: bool,
    /// What the file gave, but the SOA serial (`zones::serial::record_fingerprint`, set by the loader).
    pub fingerprint: u64,
}

/// Whether `name` (wire) is strictly below a name `is_cut` says is a zone cut, the apex
/// (`apex_len` octets) not counted: a lookup per ancestor, O(labels), where scanning
/// every cut made loading quadratic in names × delegations.
pub fn is_below(name: &[u8], apex_len: usize, is_cut: impl Fn(&[u8]) -> bool) -> bool {
    crate::wire::name::suffix_offsets(name).skip(1).take_while(|&o| name.len() - o > apex_len).any(|o| is_cut(&name[o..]))
}

/// Writes `serial` into the SOA RDATA at `apex` (see [`Zone::set_serial`]).
pub fn set_soa_serial(nodes: &mut NodeMap, apex: &Name, serial: u32) {
    if let Some(soa) = nodes.get_mut(apex).and_then(|n| n.rrsets.iter_mut().find(|s| s.rtype == rtype::SOA)) {
        for rd in &mut soa.rdatas {
            let n = rd.len();
            if n >= 20 {
                rd[n - 20..n - 16].copy_from_slice(&serial.to_be_bytes());
            }
        }
    }
}

impl Zone {
    pub fn node(&self, name: &[u8]) -> Option<&Node> {
        self.nodes.get(name)
    }

    pub fn apex_node(&self) -> &Node {
        // never panics: the loader rejects a zone without an apex node (SOA check).
        &self.nodes[self.apex.as_wire()]
    }

    /// Serves the zone with `serial` in its SOA (RDATA: ... SERIAL REFRESH RETRY EXPIRE
    /// MINIMUM, the last 20 octets). Signatures over the SOA are the caller's business.
    pub fn set_serial(&mut self, serial: u32) {
        self.serial = serial;
        set_soa_serial(&mut self.nodes, &self.apex, serial);
    }

    pub fn soa(&self) -> &RRset {
        // never panics: the loader rejects a zone without an SOA at the apex.
        self.apex_node().rrset(rtype::SOA).expect("zone has SOA")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_map_finds_replaces_and_removes_by_name() {
        let name = |i: usize| Name::from_text(&format!("n{i}.example.")).unwrap();
        let mut m = NodeMap::default();
        for i in 0..100 {
            m.insert(Node::empty(name(i), false));
        }
        m.insert(Node { is_cut: true, ..Node::empty(name(7), false) });
        assert_eq!(m.len(), 100, "a second insert of a name replaces its node");
        assert!(m.get(&name(7)).unwrap().is_cut);
        // Removing moves the last node into the gap; every name is still found.
        for i in (0..100).step_by(3) {
            assert_eq!(m.remove(&name(i)).map(|n| n.name), Some(name(i)));
            assert!(m.remove(&name(i)).is_none());
        }
        for i in 0..100 {
            assert_eq!(m.get(name(i).as_wire()).map(|n| n.name.clone()), (i % 3 != 0).then(|| name(i)), "n{i}");
        }
        assert_eq!(m.values().count(), 66);
        let made = m.get_or_insert_with(&name(0), || Node::empty(name(0), true));
        assert!(made.below_cut);
        assert!(!m.get_or_insert_with(&name(1), || Node::empty(name(1), true)).below_cut, "an existing node is kept");
    }
}
