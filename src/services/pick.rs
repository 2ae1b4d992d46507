//! The query side of services: from the client's data-centre order to one prebuilt
//! answer. Also what `/v1/status` shows per region, through the same [`Service::answer`].
//!
//! **Invariant:** nothing here allocates, locks or reads a clock: every list is on the
//! stack and every answer is a reference into the [`Service`] built with the snapshot.

use std::net::IpAddr;

use super::{Answer, Pick, Service};
use crate::config::defaults::MAX_DATACENTERS;
use crate::config::geo::{AllDown, DcIndex, GeoConfig, OrderMode, Policy, Weights};
use crate::geo::{Client, Order};
use crate::wire::query::rtype;
use crate::zones::dnssec::shape;
use crate::zones::RRset;

/// Every data-centre index, for the last-resort order.
const ALL_DCS: [DcIndex; MAX_DATACENTERS] = {
    let mut a = [0; MAX_DATACENTERS];
    let mut i = 0;
    while i < a.len() {
        a[i] = i as DcIndex;
        i += 1;
    }
    a
};

/// A stable hash of the client's subnet (/24 for IPv4, /56 for IPv6, or the ECS source
/// prefix if shorter), so a weighted choice does not change between a resolver's queries.
pub fn client_key(client: Client, salt: u32) -> u64 {
    let bits = client.bits();
    let v = match client.addr.to_canonical() {
        IpAddr::V4(a) => {
            let keep = bits.min(24) as u32;
            let m = if keep == 0 { 0 } else { u32::MAX << (32 - keep) };
            (u32::from(a) & m) as u64
        }
        IpAddr::V6(a) => {
            let keep = bits.min(56) as u32;
            let m = if keep == 0 { 0 } else { u128::MAX << (128 - keep) };
            ((u128::from(a) & m) >> 64) as u64 ^ 0x9e37_79b9
        }
    };
    splitmix64(v ^ ((salt as u64) << 40))
}

pub(super) fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Service {
    /// The order mode this service uses.
    pub fn mode(&self, geo: &GeoConfig) -> OrderMode {
        self.config.order.or(geo.order).unwrap_or(OrderMode::Map)
    }

    /// Whether data centre `d` serves this service and is up now for `qtype`'s family.
    pub fn is_up(&self, d: DcIndex, qtype: u16) -> bool {
        self.dc.get(d as usize).is_some_and(|s| s.serves && if qtype == rtype::AAAA { s.up_aaaa } else { s.up_a })
    }

    fn serves(&self, d: DcIndex) -> bool {
        self.dc.get(d as usize).is_some_and(|s| s.serves)
    }

    /// The data centres that pass `usable`, distinct and in preference order: from the
    /// client's own order; if none, and the client's region is not fenced, from the map's
    /// default order; if none, from every data centre. Stops at the first list with any.
    fn candidates(&self, order: &Order, usable: impl Fn(DcIndex) -> bool) -> ([DcIndex; MAX_DATACENTERS], usize) {
        let mut out = [0 as DcIndex; MAX_DATACENTERS];
        let mut n = 0;
        let mut seen = 0u64;
        let lists: [&[DcIndex]; 3] =
            if order.fenced { [order.as_slice(), &[], &[]] } else { [order.as_slice(), &self.default_order, &ALL_DCS[..self.datacenters]] };
        for list in lists {
            for &d in list {
                if seen & (1u64 << d) == 0 && n < out.len() && usable(d) {
                    out[n] = d;
                    n += 1;
                }
                seen |= 1u64 << d;
            }
            if n > 0 {
                break;
            }
        }
        (out, n)
    }

    /// Picks the answer for `qtype` (A or AAAA) for a client with data-centre `order`
    /// (`client`: its [`client_key`], for weighted choices): the first data centres of the
    /// order that are up (see `candidates` for where an unfenced client goes next); if
    /// none is, the all-down policy.
    pub fn answer(&self, order: &Order, qtype: u16, client: u64) -> Answer<'_> {
        let first_choice = order.as_slice().iter().copied().find(|&d| self.serves(d));
        let (up, n) = self.candidates(order, |d| self.is_up(d, qtype));
        let up = &up[..n];
        if up.is_empty() {
            return self.all_down(order, qtype);
        }
        let failed_over = first_choice != Some(up[0]);
        let (pick, dcs) = self.policy_pick(up, qtype, client, false);
        let (mut chosen_wavering, mut next_change) = (false, u32::MAX);
        let mut rest = dcs;
        while rest != 0 {
            let dc = &self.dc[rest.trailing_zeros() as usize];
            rest &= rest - 1;
            chosen_wavering |= dc.wavering;
            next_change = next_change.min(dc.next_change);
        }
        let ttl = if failed_over || chosen_wavering {
            // Short while failed over (come back quickly) or wavering (re-ask before a
            // flip), and never past the moment the state could next change (gdnsd-style).
            self.config.failover_ttl.min(next_change.max(1))
        } else {
            self.config.ttl
        };
        Answer { pick, ttl, datacenters: dcs, failed_over, all_down: false }
    }

    /// The [`shape`] of what this client is answered at the name: CNAME when its A
    /// answer is a CNAME, else the families its A and AAAA answers have (each family is
    /// picked on its own, so they may come from different data centres).
    pub fn shape(&self, order: &Order, client: u64) -> u8 {
        let bits = |p: Pick<'_>| match p {
            Pick::Records(set) if set.rtype == rtype::AAAA => shape::AAAA,
            Pick::Records(_) => shape::A,
            Pick::Cname(_) => shape::CNAME,
            Pick::NoData => 0,
        };
        match bits(self.answer(order, rtype::A, client).pick) {
            shape::CNAME => shape::CNAME,
            a => a | (bits(self.answer(order, rtype::AAAA, client).pick) & shape::AAAA),
        }
    }

    fn all_down(&self, order: &Order, qtype: u16) -> Answer<'_> {
        let ttl = self.config.failover_ttl;
        match &self.config.all_down {
            AllDown::NoData => Answer { pick: Pick::NoData, ttl, datacenters: 0, failed_over: true, all_down: true },
            AllDown::Fallback(_) => {
                let pick = match (&self.fallback_cname, qtype) {
                    (Some(c), _) => Pick::Cname(c),
                    (None, rtype::AAAA) => self.fallback_aaaa.as_ref().map_or(Pick::NoData, Pick::Records),
                    (None, _) => self.fallback_a.as_ref().map_or(Pick::NoData, Pick::Records),
                };
                Answer { pick, ttl, datacenters: 0, failed_over: true, all_down: true }
            }
            AllDown::ServeAll => {
                // Fail open: answer as if everything were up (health ignored), within the fence.
                let (all, n) = self.candidates(order, |d| self.serves(d));
                let (pick, dcs) = self.policy_pick(&all[..n], qtype, 0, true);
                Answer { pick, ttl, datacenters: dcs, failed_over: true, all_down: true }
            }
        }
    }

    /// Applies the policy to a list of data centres that serve the service.
    fn policy_pick(&self, order: &[DcIndex], qtype: u16, client: u64, ignore_health: bool) -> (Pick<'_>, u64) {
        let Some(&first) = order.first() else { return (Pick::NoData, 0) };
        match self.config.policy {
            Policy::Failover => (self.dc_pick(first, qtype, ignore_health), 1u64 << first),
            Policy::NearestN(k) => {
                if self.dc[first as usize].cname.is_some() {
                    return (self.dc_pick(first, qtype, ignore_health), 1u64 << first);
                }
                let members = order.iter().filter(|&&d| self.dc[d as usize].cname.is_none()).take(k);
                let mask = members.clone().fold(0u64, |m, &d| m | (1u64 << d));
                if ignore_health {
                    // Serve-all is rare: use the first data centre's full set.
                    return (self.dc_pick(first, qtype, true), 1u64 << first);
                }
                let table = if qtype == rtype::AAAA { &self.subsets_aaaa } else { &self.subsets_a };
                (table.get(&mask).map_or(Pick::NoData, Pick::Records), mask)
            }
            Policy::Weighted => match &self.config.weights {
                Some(Weights::Address(w)) if !ignore_health => {
                    let fam = |a: &IpAddr| a.is_ipv6() == (qtype == rtype::AAAA);
                    let mut total = 0u64;
                    let mut cands: [(Option<&RRset>, u64, u64); 64] = [(None, 0, 0); 64];
                    let mut n = 0;
                    for &d in order {
                        let cfg = &self.config.per_dc[d as usize];
                        let addrs = cfg.v4.iter().map(|&v| IpAddr::from(v)).chain(cfg.v6.iter().map(|&v| IpAddr::from(v)));
                        for a in addrs.filter(fam) {
                            let wt = *w.get(&a).unwrap_or(&0) as u64;
                            if let (true, Some(set)) = (wt > 0 && n < cands.len(), self.single.get(&a)) {
                                total += wt;
                                cands[n] = (Some(set), wt, 1u64 << d);
                                n += 1;
                            }
                        }
                    }
                    if total == 0 {
                        return (Pick::NoData, 0);
                    }
                    let mut r = client % total;
                    for &(set, wt, dc) in &cands[..n] {
                        if r < wt {
                            return (set.map_or(Pick::NoData, Pick::Records), dc);
                        }
                        r -= wt;
                    }
                    (Pick::NoData, 0)
                }
                Some(Weights::Datacenter(w)) => {
                    let total: u64 = order.iter().map(|&d| w[d as usize] as u64).sum();
                    if total == 0 {
                        return (self.dc_pick(first, qtype, ignore_health), 1u64 << first);
                    }
                    let mut r = client % total;
                    for &d in order {
                        let wt = w[d as usize] as u64;
                        if r < wt {
                            return (self.dc_pick(d, qtype, ignore_health), 1u64 << d);
                        }
                        r -= wt;
                    }
                    (Pick::NoData, 0)
                }
                _ => (self.dc_pick(first, qtype, ignore_health), 1u64 << first),
            },
        }
    }

    fn dc_pick(&self, d: DcIndex, qtype: u16, ignore_health: bool) -> Pick<'_> {
        let s = &self.dc[d as usize];
        if let Some(c) = &s.cname {
            return Pick::Cname(c);
        }
        let set = match (qtype == rtype::AAAA, ignore_health) {
            (true, false) => &s.aaaa,
            (true, true) => &s.aaaa_all,
            (false, false) => &s.a,
            (false, true) => &s.a_all,
        };
        set.as_ref().map_or(Pick::NoData, Pick::Records)
    }
}
