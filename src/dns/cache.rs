//! Per-worker cache of whole answers, keyed by the exact bytes of the query: one per UDP
//! worker, and one per tokio thread for TCP answers (`tcp`), which never share a cache
//! because the transport changes the answer (TCP answers are never truncated).
//!
//! An answer is a pure function of the snapshot, the query's bytes after its ID and,
//! when a geo service was answered without EDNS Client Subnet, the source address
//! (`Outcome::uses_source`). So a worker that already answered the same bytes under the
//! same snapshot copies that answer and writes the new ID into it: byte for byte what
//! answering again would give, for a fraction of the work (no parsing, no lookup, no
//! compression). Like PowerDNS's packet cache, but never stale: every published
//! snapshot (reload, health change, database replacement) has a new `Snapshot::id`,
//! which misses every older entry. Names differing only in case (0x20) are different
//! keys, so the answer keeps the client's case.
//!
//! Direct-mapped: one entry per slot, a colliding query replaces it. Entries reuse
//! their buffers, so after warm-up nothing allocates.

use std::net::IpAddr;

use crate::answer::{fx_hash, Outcome};
use crate::wire::query::HEADER_LEN;

/// Slots per worker (a power of two).
const SLOTS: usize = 4096;
/// Queries and answers larger than these are not cached (they are rare, and big
/// entries would make the cache large).
const MAX_QUERY: usize = 512;
const MAX_ANSWER: usize = 1232;

#[derive(Default)]
struct Entry {
    /// `Snapshot::id` the answer was made under; 0 for an empty slot.
    snapshot: u64,
    /// Set when the answer depends on the source address.
    source: Option<IpAddr>,
    /// The query without its ID.
    key: Vec<u8>,
    answer: Vec<u8>,
    outcome: Outcome,
}

pub struct AnswerCache {
    slots: Box<[Entry]>,
}

impl Default for AnswerCache {
    fn default() -> Self {
        AnswerCache { slots: (0..SLOTS).map(|_| Entry::default()).collect() }
    }
}

fn slot_of(key: &[u8]) -> usize {
    // FxHasher::finish rotates the product's well-mixed top bits down to the bottom.
    fx_hash(key) as usize & (SLOTS - 1)
}

/// A query [`AnswerCache::get`] found no answer for: where its answer goes (None when
/// the query is not cacheable), so [`AnswerCache::put`] need not hash it again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Miss(Option<usize>);

impl AnswerCache {
    /// Writes the cached answer to `query` into `out` and returns its outcome; on a miss
    /// (no answer for this snapshot and source) leaves `out` alone.
    #[inline]
    pub fn get(&self, snapshot: u64, query: &[u8], source: IpAddr, out: &mut Vec<u8>) -> Result<Outcome, Miss> {
        let (answer, outcome) = self.lookup(snapshot, query, source)?;
        out.clear();
        out.extend_from_slice(answer);
        out[..2].copy_from_slice(&query[..2]);
        Ok(outcome)
    }

    /// The cached answer to `query` as stored, with the ID of the query it was made for
    /// (the caller writes `query`'s ID into its copy), and its outcome.
    #[inline]
    pub fn lookup(&self, snapshot: u64, query: &[u8], source: IpAddr) -> Result<(&[u8], Outcome), Miss> {
        if !(HEADER_LEN..=MAX_QUERY).contains(&query.len()) {
            return Err(Miss(None));
        }
        let key = &query[2..];
        let slot = slot_of(key);
        let e = &self.slots[slot];
        if e.snapshot != snapshot || e.key != key || e.source.is_some_and(|s| s != source) {
            return Err(Miss(Some(slot)));
        }
        Ok((&e.answer, e.outcome))
    }

    /// Remembers `answer`, made under `snapshot` from `query` (the one `get` missed)
    /// sent by `source`.
    pub fn put(&mut self, miss: Miss, snapshot: u64, query: &[u8], source: IpAddr, outcome: &Outcome, answer: &[u8]) {
        let Miss(Some(slot)) = miss else { return };
        // A transfer, NOTIFY or signed answer is never cached (it is signed per request), nor
        // one the compact-denial budget decided.
        if outcome.handoff || outcome.volatile || !(HEADER_LEN..=MAX_ANSWER).contains(&answer.len()) {
            return;
        }
        let e = &mut self.slots[slot];
        e.snapshot = snapshot;
        e.source = outcome.uses_source.then_some(source);
        e.key.clear();
        e.key.extend_from_slice(&query[2..]);
        e.answer.clear();
        e.answer.extend_from_slice(answer);
        e.outcome = *outcome;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(uses_source: bool) -> Outcome {
        Outcome { rcode: 0, truncated: false, service: None, rrl_class: 7, question_end: 17, uses_source, handoff: false, volatile: false }
    }

    fn query(id: u16, name: &[u8]) -> Vec<u8> {
        let mut q = id.to_be_bytes().to_vec();
        q.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        q.extend_from_slice(name);
        q.extend_from_slice(&[0, 1, 0, 1]);
        q
    }

    fn answer(id: u16) -> Vec<u8> {
        let mut a = id.to_be_bytes().to_vec();
        a.extend_from_slice(&[0x85, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0xab, 0xcd]);
        a
    }

    #[test]
    fn a_hit_is_the_stored_answer_with_the_new_id() {
        let mut c = AnswerCache::default();
        let src: IpAddr = "192.0.2.1".parse().unwrap();
        let mut out = Vec::new();
        let miss = c.get(5, &query(1, b"\x01a\x00"), src, &mut out).unwrap_err();
        c.put(miss, 5, &query(1, b"\x01a\x00"), src, &outcome(false), &answer(1));
        let other: IpAddr = "198.51.100.9".parse().unwrap();
        assert_eq!(c.get(5, &query(0xbeef, b"\x01a\x00"), other, &mut out), Ok(outcome(false)));
        assert_eq!(out, answer(0xbeef));
    }

    #[test]
    fn other_snapshots_bytes_case_or_sources_miss() {
        let mut c = AnswerCache::default();
        let src: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let miss = c.get(5, &query(1, b"\x01a\x00"), src, &mut Vec::new()).unwrap_err();
        c.put(miss, 5, &query(1, b"\x01a\x00"), src, &outcome(true), &answer(1));
        let mut out = vec![9];
        assert_eq!(c.get(6, &query(1, b"\x01a\x00"), src, &mut out).ok(), None, "another snapshot");
        assert_eq!(c.get(5, &query(1, b"\x01A\x00"), src, &mut out).ok(), None, "another case");
        assert_eq!(c.get(5, &query(1, b"\x01b\x00"), src, &mut out).ok(), None, "another name");
        assert_eq!(c.get(5, &query(1, b"\x01a\x00"), other, &mut out).ok(), None, "source-dependent answer, another source");
        assert_eq!(out, vec![9], "a miss leaves the buffer alone");
        assert_eq!(c.get(5, &query(2, b"\x01a\x00"), src, &mut out), Ok(outcome(true)));
        assert_eq!(c.get(5, &[0; 5], src, &mut out), Err(Miss(None)), "shorter than a header");
    }

    /// A DO query's answer carries RRSIGs, a plain one's does not: the DO bit (in the OPT
    /// record's TTL field) is part of the key, like every other byte after the ID.
    #[test]
    fn the_do_bit_is_part_of_the_key() {
        let mut c = AnswerCache::default();
        let src: IpAddr = "192.0.2.1".parse().unwrap();
        let with_opt = |dnssec_ok: bool| {
            let mut q = query(1, b"\x01a\x00");
            q[11] = 1; // ARCOUNT
            q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, if dnssec_ok { 0x80 } else { 0 }, 0, 0, 0]);
            q
        };
        let miss = c.get(5, &with_opt(false), src, &mut Vec::new()).unwrap_err();
        c.put(miss, 5, &with_opt(false), src, &outcome(false), &answer(1));
        assert_eq!(c.get(5, &with_opt(true), src, &mut Vec::new()).ok(), None, "DO=1 misses the DO=0 answer");
        assert!(c.get(5, &with_opt(false), src, &mut Vec::new()).is_ok());
    }

    /// The queries of benches/load-geo.sh: one name, ten ECS subnets. An earlier slot
    /// function (FxHash bits 32..) put two of them in one slot, and they evicted each
    /// other: 10% misses for a working set of ten.
    #[test]
    fn the_geo_benchmark_queries_get_a_slot_each() {
        let subnets: [(u16, u8, &[u8]); 10] = [
            (1, 27, &[81, 2, 69, 160]),
            (1, 25, &[89, 160, 20, 128]),
            (1, 29, &[216, 160, 83, 56]),
            (1, 24, &[175, 16, 199]),
            (1, 24, &[214, 0, 1]),
            (2, 48, &[0x20, 0x01, 0x02, 0x18, 0, 0]),
            (2, 48, &[0x2a, 0x02, 0xd1, 0x80, 0, 0]),
            (2, 48, &[0x2a, 0x02, 0xe7, 0x00, 0, 0]),
            (1, 24, &[10, 20, 30]),
            (1, 24, &[8, 8, 8]),
        ];
        let slots: std::collections::HashSet<usize> = subnets
            .iter()
            .map(|(family, prefix, addr)| {
                let mut q = vec![0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1];
                q.extend_from_slice(b"\x03web\x04load\x04test\x00\x00\x01\x00\x01");
                let ecs_len = 4 + addr.len() as u16;
                q.extend_from_slice(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0]);
                q.extend_from_slice(&(ecs_len + 4).to_be_bytes());
                q.extend_from_slice(&8u16.to_be_bytes());
                q.extend_from_slice(&ecs_len.to_be_bytes());
                q.extend_from_slice(&family.to_be_bytes());
                q.extend_from_slice(&[*prefix, 0]);
                q.extend_from_slice(addr);
                slot_of(&q[2..])
            })
            .collect();
        assert_eq!(slots.len(), subnets.len());
    }

    #[test]
    fn oversized_queries_and_answers_are_not_kept() {
        let mut c = AnswerCache::default();
        let src: IpAddr = "192.0.2.1".parse().unwrap();
        let mut big = answer(1);
        big.resize(MAX_ANSWER + 1, 0);
        let mut out = Vec::new();
        let miss = c.get(5, &query(1, b"\x01a\x00"), src, &mut out).unwrap_err();
        c.put(miss, 5, &query(1, b"\x01a\x00"), src, &outcome(false), &big);
        assert!(c.get(5, &query(1, b"\x01a\x00"), src, &mut out).is_err(), "answer too big");
        let mut long = query(1, b"\x01a\x00");
        long.resize(MAX_QUERY + 1, 0);
        assert_eq!(c.get(5, &long, src, &mut out), Err(Miss(None)), "query too big");
    }
}
