//! The serial changes of a zone kept for IXFR (RFC 1995): each change is the records it
//! removed and added, made on the control side when a new version replaced the old.

use std::collections::VecDeque;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::wire::Name;

/// One record as a transfer carries it, owned.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Record {
    /// Lowercased wire form.
    pub owner: Box<[u8]>,
    pub rtype: u16,
    pub rdata: Box<[u8]>,
    pub ttl: u32,
}

/// From one version to the next: both SOA records, what went, what came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub from_serial: u32,
    pub from_soa: Record,
    pub to_soa: Record,
    pub removed: Vec<Record>,
    pub added: Vec<Record>,
}

/// A zone's consecutive changes, oldest first; the last one ends at the served serial.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Journal {
    pub changes: VecDeque<Change>,
}

impl Journal {
    /// The changes from `serial` to the served version, if every one of them is kept.
    pub fn since(&self, serial: u32) -> Option<impl Iterator<Item = &Change>> {
        let at = self.changes.iter().position(|c| c.from_serial == serial)?;
        Some(self.changes.iter().skip(at))
    }
}

/// Journals by zone apex.
pub type Journals = FxHashMap<Name, Arc<Journal>>;
