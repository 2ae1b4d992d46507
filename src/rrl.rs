//! Response rate limiting (RRL) for UDP, in the style of Knot and NSD: per client
//! prefix (/24 IPv4, /56 IPv6) and per response class, a budget of `rate` responses a
//! second; over it, responses are dropped, and every `slip`-th one is sent truncated
//! (TC=1, no records) so a real resolver behind a spoofed-looking flood retries over
//! TCP. TCP is never limited. Exempt networks are never limited.
//!
//! The table is a fixed array of atomic buckets shared by all UDP workers (lock-free;
//! one compare-and-swap per response). Collisions only make limiting more conservative
//! for the colliding keys.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::RrlConfig;
use crate::geo::lpm::PrefixTable;

/// Buckets in the table (a power of two).
pub const TABLE_SIZE: usize = 1 << 16;

/// What to do with a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Send,
    /// Over the rate: send a truncated response instead.
    Slip,
    Drop,
}

/// The shared limiter.
pub struct Limiter {
    config: RrlConfig,
    exempt: PrefixTable<()>,
    /// Per bucket: second (upper 32 bits) and responses sent in it (lower 32 bits).
    buckets: Box<[AtomicU64]>,
    /// Limited responses seen, to pick every `slip`-th.
    limited: AtomicU64,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter").field("config", &self.config).finish()
    }
}

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

impl Limiter {
    pub fn new(config: RrlConfig) -> Limiter {
        let mut exempt = PrefixTable::default();
        for n in &config.exempt {
            exempt.insert(*n, ());
        }
        let buckets = (0..TABLE_SIZE).map(|_| AtomicU64::new(0)).collect::<Vec<_>>().into_boxed_slice();
        Limiter { config, exempt, buckets, limited: AtomicU64::new(0) }
    }

    pub fn enabled(&self) -> bool {
        self.config.rate > 0
    }

    fn prefix_key(&self, ip: IpAddr) -> u64 {
        match ip.to_canonical() {
            IpAddr::V4(a) => {
                let bits = self.config.ipv4_prefix.min(32) as u32;
                let m = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
                (u32::from(a) & m) as u64
            }
            IpAddr::V6(a) => {
                let bits = self.config.ipv6_prefix.min(128) as u32;
                let m = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
                let v = u128::from(a) & m;
                ((v >> 64) as u64) ^ (v as u64).rotate_left(17) ^ 0x6a09_e667
            }
        }
    }

    /// Decides for one response to `client` of response class `class` at second `now`.
    #[inline]
    pub fn check(&self, client: IpAddr, class: u64, now: u32) -> Verdict {
        if !self.enabled() {
            return Verdict::Send;
        }
        if !self.exempt.is_empty() && self.exempt.lookup(client.to_canonical()).is_some() {
            return Verdict::Send;
        }
        let slot = (mix(self.prefix_key(client) ^ class.rotate_left(23)) as usize) & (TABLE_SIZE - 1);
        let bucket = &self.buckets[slot];
        let rate = self.config.rate as u64;
        let mut cur = bucket.load(Ordering::Relaxed);
        loop {
            let (sec, count) = ((cur >> 32) as u32, cur & 0xffff_ffff);
            let next = if sec == now { (cur & !0xffff_ffff) | (count + 1).min(0xffff_ffff) } else { ((now as u64) << 32) | 1 };
            let sent_before = if sec == now { count } else { 0 };
            match bucket.compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => {
                    if sent_before < rate {
                        return Verdict::Send;
                    }
                    let n = self.limited.fetch_add(1, Ordering::Relaxed) + 1;
                    let slip = self.config.slip as u64;
                    return if slip > 0 && n % slip == 0 { Verdict::Slip } else { Verdict::Drop };
                }
                Err(actual) => cur = actual,
            }
        }
    }
}

/// Turns a response into its truncated form: header with TC=1 and the question only
/// (the OPT record is dropped: the client retries over TCP anyway).
pub fn truncate_response(resp: &mut Vec<u8>, question_end: usize) {
    if resp.len() < 12 || question_end > resp.len() {
        return;
    }
    resp.truncate(question_end);
    resp[2] |= 0x02;
    resp[6..12].fill(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(rate: u32, slip: u32) -> Limiter {
        Limiter::new(RrlConfig { rate, slip, exempt: vec![], ..RrlConfig::default() })
    }

    #[test]
    fn a_prefix_gets_its_rate_per_second_and_then_slips() {
        let l = limiter(10, 2);
        let c: IpAddr = "192.0.2.7".parse().unwrap();
        let verdicts: Vec<Verdict> = (0..30).map(|_| l.check(c, 1, 100)).collect();
        assert!(verdicts[..10].iter().all(|v| *v == Verdict::Send));
        assert_eq!(verdicts[10..].iter().filter(|v| **v == Verdict::Slip).count(), 10);
        assert_eq!(verdicts[10..].iter().filter(|v| **v == Verdict::Drop).count(), 10);
        // Same /24, other host: same budget. Next second: a new budget.
        assert_ne!(l.check("192.0.2.200".parse().unwrap(), 1, 100), Verdict::Send);
        assert_eq!(l.check(c, 1, 101), Verdict::Send);
        // Another /24 and another response class are not limited.
        assert_eq!(l.check("192.0.3.7".parse().unwrap(), 1, 100), Verdict::Send);
        assert_eq!(l.check(c, 2, 100), Verdict::Send);
    }

    #[test]
    fn exempt_networks_and_rate_zero_are_never_limited() {
        let l = Limiter::new(RrlConfig { rate: 1, exempt: vec!["10.0.0.0/8".parse().unwrap()], ..RrlConfig::default() });
        for _ in 0..10 {
            assert_eq!(l.check("10.1.2.3".parse().unwrap(), 1, 5), Verdict::Send);
        }
        let off = limiter(0, 2);
        for _ in 0..10 {
            assert_eq!(off.check("192.0.2.1".parse().unwrap(), 1, 5), Verdict::Send);
        }
    }
}
