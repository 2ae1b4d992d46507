//! What every region of the map is answered now, per service, for the status document:
//! the order the query path gives a client there ([`crate::geo::GeoState::region_order`])
//! through the [`Service::answer`] that answers its queries, so `/v1/status` shows what
//! is served and cannot drift from it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::document::{Family, Region, Share};
use crate::config::geo::{DcIndex, Policy, RegionRef, Weights};
use crate::geo::Order;
use crate::services::{Answer, Pick, Service};
use crate::snapshot::Snapshot;
use crate::wire::query::rtype;

fn rdata_text(t: u16, rd: &[u8]) -> String {
    match (t, rd.len()) {
        (rtype::A, 4) => Ipv4Addr::new(rd[0], rd[1], rd[2], rd[3]).to_string(),
        (rtype::AAAA, 16) => {
            let mut b = [0u8; 16];
            b.copy_from_slice(rd);
            Ipv6Addr::from(b).to_string()
        }
        _ => {
            let mut s = String::new();
            let _ = crate::wire::name::write_text(rd, &mut s);
            s
        }
    }
}

/// The names of the data centres in a bit mask, in config order.
pub fn dc_names(snap: &Snapshot, mask: u64) -> Vec<String> {
    snap.geo.config.datacenters.iter().enumerate().filter(|(i, _)| mask & (1u64 << i) != 0).map(|(_, d)| d.name.clone()).collect()
}

fn dc_names_list(snap: &Snapshot, order: &[DcIndex]) -> Vec<String> {
    order.iter().map(|&i| snap.geo.config.datacenters[i as usize].name.clone()).collect()
}

fn records(t: u16, a: &Answer<'_>) -> Vec<String> {
    match a.pick {
        Pick::Records(set) => set.rdatas.iter().map(|d| rdata_text(t, d)).collect(),
        Pick::Cname(set) => set.rdatas.iter().map(|d| format!("CNAME {}", rdata_text(rtype::CNAME, d))).collect(),
        Pick::NoData => vec![],
    }
}

/// The weight of the data centre or address that `a` picked (weighted policy).
fn weight_of(svc: &Service, t: u16, a: &Answer<'_>) -> u64 {
    match &svc.config.weights {
        Some(Weights::Datacenter(w)) if a.datacenters != 0 => w.get(a.datacenters.trailing_zeros() as usize).map_or(0, |&x| u64::from(x)),
        Some(Weights::Address(w)) => match a.pick {
            Pick::Records(set) if set.rdatas.len() == 1 => {
                let ip: Option<IpAddr> = match (t, set.rdatas[0].len()) {
                    (rtype::A, 4) => <[u8; 4]>::try_from(&set.rdatas[0][..]).ok().map(IpAddr::from),
                    (rtype::AAAA, 16) => <[u8; 16]>::try_from(&set.rdatas[0][..]).ok().map(IpAddr::from),
                    _ => None,
                };
                ip.and_then(|ip| w.get(&ip)).map_or(0, |&x| u64::from(x))
            }
            _ => 0,
        },
        _ => 0,
    }
}

/// Each data centre's share of a weighted service's answers for one region, exactly:
/// the service picks `client_hash % total` over its healthy candidates in order, so
/// asking with the hash at each candidate's offset (0, w1, w1+w2, …) visits every
/// candidate once, until the hashes wrap around to the first pick.
fn weighted_shares(snap: &Snapshot, svc: &Service, order: &Order, t: u16) -> Vec<Share> {
    let limit: u64 = match &svc.config.weights {
        Some(Weights::Datacenter(w)) => w.iter().map(|&x| u64::from(x)).sum(),
        Some(Weights::Address(w)) => w.values().map(|&x| u64::from(x)).sum(),
        None => 0,
    };
    let first = svc.answer(order, t, 0);
    let key = |a: &Answer<'_>| (a.datacenters, records(t, a));
    let first_key = key(&first);
    // (data-centre mask, records, weight)
    let mut picks: Vec<(u64, Vec<String>, u64)> = Vec::new();
    let mut hash = 0u64;
    loop {
        let a = svc.answer(order, t, hash);
        if hash > 0 && key(&a) == first_key {
            break;
        }
        let w = if a.all_down { 0 } else { weight_of(svc, t, &a) };
        picks.push((a.datacenters, records(t, &a), w.max(1)));
        // Weight 0: the all-down answer, or every candidate weighs 0 (the first is answered).
        if w == 0 || picks.len() >= 64 {
            break;
        }
        hash += w;
        if hash >= limit {
            break;
        }
    }
    let total: u64 = picks.iter().map(|p| p.2).sum();
    // Grouped by data centre, in the order first picked.
    let mut by_dc: Vec<(u64, Vec<String>, u64)> = Vec::new();
    for (mask, recs, w) in picks {
        match by_dc.iter_mut().find(|x| x.0 == mask) {
            Some(x) => {
                x.1.extend(recs);
                x.2 += w;
            }
            None => by_dc.push((mask, recs, w)),
        }
    }
    by_dc
        .into_iter()
        .map(|(mask, answer, w)| {
            let share = if total == 0 { 0.0 } else { w as f64 / total as f64 };
            Share { datacenter: dc_names(snap, mask).first().cloned(), answer, share: (share * 10_000.0).round() / 10_000.0 }
        })
        .collect()
}

/// What every region of the map (default first, then by name) gets for `svc` now.
pub fn regions(snap: &Snapshot, svc: &Service) -> Vec<Region> {
    let map = &snap.geo.config.map;
    let mut regions: Vec<RegionRef> = vec![RegionRef::Default];
    let mut entries: Vec<RegionRef> = map.entries.keys().cloned().collect();
    entries.sort_by_key(|r| r.to_string());
    regions.extend(entries);
    let weighted = svc.config.policy == Policy::Weighted && svc.config.weights.is_some();
    let family = |order: &Order, t: u16| {
        let ans = svc.answer(order, t, 0);
        Family {
            answer: records(t, &ans),
            ttl: ans.ttl,
            datacenters: dc_names(snap, ans.datacenters),
            failed_over: ans.failed_over,
            all_down: ans.all_down,
            shares: weighted.then(|| weighted_shares(snap, svc, order, t)),
        }
    };
    regions
        .into_iter()
        .map(|r| {
            let order = snap.geo.region_order(&r);
            Region { region: r.to_string(), order: dc_names_list(snap, order.as_slice()), fenced: order.fenced, a: family(&order, rtype::A), aaaa: family(&order, rtype::AAAA) }
        })
        .collect()
}
