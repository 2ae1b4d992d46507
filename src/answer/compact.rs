//! Compact denial of existence (RFC 9824) on the query path, for zones Waypost signs with
//! `[dnssec] denial = "compact"`:
//!
//! ```text
//!   name that exists, NODATA    its NSEC name → \000.name, made with the zone (no signing here)
//!   empty non-terminal          the same, bitmap RRSIG NSEC (`Compact::ents`)
//!   name that does not exist    NOERROR, SOA, NSEC qname → \000.qname RRSIG NSEC NXNAME:
//!                               signed here
//!   wildcard answer             the RRset signed here as owned by the name asked (Labels =
//!                               its labels), so no proof of the next closer name is needed
//!   wildcard NODATA / NSEC      NSEC qname → \000.qname with the wildcard's types: signed here
//! ```
//!
//! Each thread keeps what it signed ([`CACHE_ENTRIES`], keyed by `Compact::id`, kind and
//! owner), and may sign at most `compact-signing-rate` per second (a token bucket per
//! thread and transport: TCP threads 4 times as many). Past it a UDP query is answered
//! empty with TC=1, so a flood of random names from spoofed sources buys no signatures and
//! costs what a truncated answer costs; a real resolver retries over TCP, which cannot be
//! spoofed; past the TCP budget the answer is SERVFAIL. Either answer is never cached.
//!
//! The one clock read on the query path is here, and only when a signature is to be made.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Instant;

use arrayvec::ArrayVec;
use rustc_hash::FxHashMap;

use super::Transport;
use crate::wire::name::MAX_NAME_LEN;
use crate::wire::query::rtype;
use crate::zones::dnssec::{compact_next, Compact};
use crate::zones::RRset;

/// Signatures (and NSECs) a thread keeps; when full it starts again empty.
pub const CACHE_ENTRIES: usize = 8192;

/// TCP threads may sign this many times the UDP rate.
const TCP_FACTOR: u32 = 4;

/// The type bitmap of a name that does not exist: RRSIG, NSEC, NXNAME (RFC 9824 §3.1).
/// Window 0 (RRSIG 46, NSEC 47, NXNAME 128), 17 octets.
const NXNAME_BITMAP: [u8; 19] = [0, 17, 0, 0, 0, 0, 0, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80];

/// A signature was needed and this thread's budget is spent.
#[derive(Debug)]
pub struct OverBudget;

/// What is made: the NSEC of a name (with its RRSIGs in `sigs`), or the RRSIGs of an
/// expanded wildcard RRset of a type.
#[derive(Clone, Copy)]
enum Kind {
    Nsec,
    Rrsig(u16),
}

impl Kind {
    fn code(self) -> u32 {
        match self {
            Kind::Nsec => 1 << 16,
            Kind::Rrsig(t) => t as u32,
        }
    }
}

struct Bucket {
    tokens: f64,
    at: Option<Instant>,
}

impl Bucket {
    /// One token at `now`, refilled at `rate` per second up to `rate` (one second of burst).
    fn take(&mut self, rate: u32, now: Instant) -> bool {
        let cap = rate as f64;
        self.tokens = match self.at {
            None => cap,
            Some(t) => (self.tokens + now.duration_since(t).as_secs_f64() * cap).min(cap),
        };
        self.at = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

struct State {
    made: FxHashMap<Box<[u8]>, Arc<RRset>>,
    udp: Bucket,
    tcp: Bucket,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State {
        made: FxHashMap::default(),
        udp: Bucket { tokens: 0.0, at: None },
        tcp: Bucket { tokens: 0.0, at: None },
    });
}

/// From this thread's cache, else made by `make` within the budget.
fn made(c: &Compact, kind: Kind, owner: &[u8], transport: Transport, rate: u32, make: impl FnOnce() -> Option<RRset>) -> Result<Option<Arc<RRset>>, OverBudget> {
    let mut key: ArrayVec<u8, { 12 + MAX_NAME_LEN }> = ArrayVec::new();
    key.extend(c.id.to_be_bytes());
    key.extend(kind.code().to_be_bytes());
    if key.try_extend_from_slice(owner).is_err() {
        return Ok(None);
    }
    let counters = crate::metrics::online_signing();
    STATE.with_borrow_mut(|s| {
        if let Some(set) = s.made.get(&key[..]) {
            counters.cache_hits.inc();
            return Ok(Some(set.clone()));
        }
        let now = Instant::now();
        let allowed = match transport {
            Transport::Udp => s.udp.take(rate, now),
            Transport::Tcp => s.tcp.take(rate.saturating_mul(TCP_FACTOR), now),
        };
        if !allowed {
            match transport {
                Transport::Udp => counters.truncated.inc(),
                Transport::Tcp => counters.servfail.inc(),
            };
            return Err(OverBudget);
        }
        let Some(set) = make() else { return Ok(None) };
        counters.signatures.inc();
        if s.made.len() >= CACHE_ENTRIES {
            s.made.clear();
        }
        let set = Arc::new(set);
        s.made.insert(Box::from(&key[..]), set.clone());
        Ok(Some(set))
    })
}

/// The signed NSEC `owner → \000.owner` with `bitmap` (a name that does not exist:
/// `None`, NXNAME's bitmap).
pub fn nsec(c: &Compact, owner: &[u8], bitmap: Option<&[u8]>, transport: Transport, rate: u32) -> Result<Option<Arc<RRset>>, OverBudget> {
    made(c, Kind::Nsec, owner, transport, rate, || {
        let next = compact_next(owner)?;
        let bitmap = bitmap.unwrap_or(&NXNAME_BITMAP);
        let mut rd = Vec::with_capacity(next.len() + bitmap.len());
        rd.extend_from_slice(&next);
        rd.extend_from_slice(bitmap);
        let mut set = RRset::new(rtype::NSEC, c.ttl, vec![rd.into_boxed_slice()]);
        set.sigs = Some(Arc::new(c.signer.sign(owner, rtype::NSEC, c.ttl, &set.rdatas)?));
        Some(set)
    })
}

/// The RRSIGs of `set` (a wildcard's RRset) as owned by `owner`, the name asked.
pub fn rrsig(c: &Compact, owner: &[u8], set: &RRset, transport: Transport, rate: u32) -> Result<Option<Arc<RRset>>, OverBudget> {
    made(c, Kind::Rrsig(set.rtype), owner, transport, rate, || c.signer.sign(owner, set.rtype, set.ttl, &set.rdatas))
}

/// The type bitmap of an NSEC's RDATA (after its next name).
pub fn bitmap_of(nsec_rdata: &[u8]) -> Option<&[u8]> {
    let mut i = 0;
    loop {
        let l = *nsec_rdata.get(i)? as usize;
        i += l + 1;
        if l == 0 {
            return nsec_rdata.get(i..);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nxname_bitmap_lists_rrsig_nsec_and_nxname() {
        assert_eq!(&NXNAME_BITMAP[..], &crate::signer::sign::type_bitmap(&[rtype::RRSIG, rtype::NSEC, crate::zones::dnssec::NXNAME])[..]);
    }

    #[test]
    fn a_bucket_allows_its_rate_then_refuses() {
        let mut b = Bucket { tokens: 0.0, at: None };
        let t0 = Instant::now();
        assert_eq!((0..100).filter(|_| b.take(10, t0)).count(), 10, "a second's worth of burst, then nothing until time passes");
        let t1 = t0 + std::time::Duration::from_millis(500);
        assert_eq!((0..100).filter(|_| b.take(10, t1)).count(), 5, "half a second refills half the rate");
        let t2 = t1 + std::time::Duration::from_secs(60);
        assert_eq!((0..100).filter(|_| b.take(10, t2)).count(), 10, "never more than a second's worth");
    }

    #[test]
    fn a_bitmap_follows_the_next_name() {
        assert_eq!(bitmap_of(b"\x01\x00\x01a\x00\x00\x01\x40"), Some(&b"\x00\x01\x40"[..]));
        assert_eq!(bitmap_of(b"\x05ab"), None);
    }
}
