//! Services: names whose A/AAAA answer depends on the client's data-centre order.
//!
//! Every answer a service can give is built when the snapshot is built (per data
//! centre, per `nearest-n` subset, per weighted address), so the query path only
//! picks a reference: no allocation, no encoding of addresses per query.

use std::net::IpAddr;

use rustc_hash::FxHashMap;

use crate::config::geo::{DcIndex, GeoConfig, OrderMode, Policy, ServiceConfig, Weights};
use crate::geo::Client;
use crate::wire::query::rtype;
use crate::wire::Name;
use crate::zones::{Catalog, Node, Problem, RRset};

/// One service with its prebuilt answers.
#[derive(Debug)]
pub struct Service {
    pub config: ServiceConfig,
    pub index: u32,
    /// Per data centre: A, AAAA, CNAME RRsets (None where it has none).
    a: Vec<Option<RRset>>,
    aaaa: Vec<Option<RRset>>,
    cname: Vec<Option<RRset>>,
    /// `nearest-n`: union of the addresses of each subset of data centres, by bit mask.
    subsets_a: FxHashMap<u64, RRset>,
    subsets_aaaa: FxHashMap<u64, RRset>,
    /// Weighted by address: one single-address RRset per address.
    single: FxHashMap<IpAddr, RRset>,
}

/// What a service answers for one query.
#[derive(Debug, Clone, Copy)]
pub enum Pick<'s> {
    /// The RRset to answer (A or AAAA), and the data centres it came from (bit mask).
    Records(&'s RRset, u64),
    /// The chosen data centre answers with a CNAME.
    Cname(&'s RRset, u64),
    /// The chosen data centre has no address of the asked family: NODATA.
    NoData(u64),
}

fn rrset(t: u16, ttl: u32, mut rdatas: Vec<Box<[u8]>>) -> Option<RRset> {
    if rdatas.is_empty() {
        return None;
    }
    rdatas.sort();
    rdatas.dedup();
    Some(RRset { rtype: t, ttl, rdatas, line: 0 })
}

fn addr_rdata(a: IpAddr) -> Box<[u8]> {
    match a {
        IpAddr::V4(v) => v.octets().to_vec().into_boxed_slice(),
        IpAddr::V6(v) => v.octets().to_vec().into_boxed_slice(),
    }
}

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

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Service {
    fn build(config: &ServiceConfig, index: u32) -> Service {
        let ttl = config.ttl;
        let n = config.per_dc.len();
        let a: Vec<_> = config.per_dc.iter().map(|d| rrset(rtype::A, ttl, d.v4.iter().map(|&v| addr_rdata(v.into())).collect())).collect();
        let aaaa: Vec<_> = config.per_dc.iter().map(|d| rrset(rtype::AAAA, ttl, d.v6.iter().map(|&v| addr_rdata(v.into())).collect())).collect();
        let cname: Vec<_> =
            config.per_dc.iter().map(|d| d.cname.as_ref().and_then(|c| rrset(rtype::CNAME, ttl, vec![c.as_wire().into()]))).collect();
        let mut s = Service { config: config.clone(), index, a, aaaa, cname, subsets_a: FxHashMap::default(), subsets_aaaa: FxHashMap::default(), single: FxHashMap::default() };
        if let Policy::NearestN(k) = config.policy {
            let serving: Vec<usize> = (0..n).filter(|&i| s.a[i].is_some() || s.aaaa[i].is_some()).collect();
            for mask in subsets(&serving, k) {
                let members = (0..n).filter(|i| mask & (1u64 << i) != 0);
                let mut v4 = Vec::new();
                let mut v6 = Vec::new();
                for i in members {
                    v4.extend(config.per_dc[i].v4.iter().map(|&x| addr_rdata(x.into())));
                    v6.extend(config.per_dc[i].v6.iter().map(|&x| addr_rdata(x.into())));
                }
                if let Some(r) = rrset(rtype::A, ttl, v4) {
                    s.subsets_a.insert(mask, r);
                }
                if let Some(r) = rrset(rtype::AAAA, ttl, v6) {
                    s.subsets_aaaa.insert(mask, r);
                }
            }
        }
        if let Some(Weights::Address(_)) = &config.weights {
            for d in &config.per_dc {
                for &v in &d.v4 {
                    s.single.entry(v.into()).or_insert_with(|| RRset { rtype: rtype::A, ttl, rdatas: vec![addr_rdata(v.into())], line: 0 });
                }
                for &v in &d.v6 {
                    s.single.entry(v.into()).or_insert_with(|| RRset { rtype: rtype::AAAA, ttl, rdatas: vec![addr_rdata(v.into())], line: 0 });
                }
            }
        }
        s
    }

    fn serves(&self, dc: DcIndex) -> bool {
        !self.config.per_dc[dc as usize].is_empty()
    }

    fn family(&self, qtype: u16) -> &[Option<RRset>] {
        if qtype == rtype::AAAA {
            &self.aaaa
        } else {
            &self.a
        }
    }

    /// The order mode this service uses.
    pub fn mode(&self, geo: &GeoConfig) -> OrderMode {
        self.config.order.or(geo.order).unwrap_or(OrderMode::Map)
    }

    /// Picks the answer for `qtype` (A or AAAA) given the client's data-centre order
    /// (already without data centres that are down). None if no data centre in the
    /// order serves this service.
    pub fn pick(&self, order: &[DcIndex], qtype: u16, client: u64) -> Option<Pick<'_>> {
        let mut serving = order.iter().copied().filter(|&d| self.serves(d));
        match self.config.policy {
            Policy::Failover => {
                let d = serving.next()?;
                Some(self.dc_pick(d, qtype))
            }
            Policy::NearestN(k) => {
                let first = serving.clone().next()?;
                if self.cname[first as usize].is_some() {
                    return Some(self.dc_pick(first, qtype));
                }
                let mask = serving.filter(|&d| self.cname[d as usize].is_none()).take(k).fold(0u64, |m, d| m | (1u64 << d));
                let table = if qtype == rtype::AAAA { &self.subsets_aaaa } else { &self.subsets_a };
                Some(match table.get(&mask) {
                    Some(r) => Pick::Records(r, mask),
                    None => Pick::NoData(mask),
                })
            }
            Policy::Weighted => match &self.config.weights {
                Some(Weights::Address(w)) => {
                    let fam = |a: &IpAddr| a.is_ipv6() == (qtype == rtype::AAAA);
                    let mut total = 0u64;
                    let mut cands: [(Option<&RRset>, u64, u64); 64] = [(None, 0, 0); 64];
                    let mut n = 0;
                    let mut any_dc = 0u64;
                    for d in serving {
                        any_dc |= 1u64 << d;
                        let dc = &self.config.per_dc[d as usize];
                        let addrs = dc.v4.iter().map(|&v| IpAddr::from(v)).chain(dc.v6.iter().map(|&v| IpAddr::from(v)));
                        for a in addrs.filter(fam) {
                            let wt = *w.get(&a).unwrap_or(&0) as u64;
                            if wt > 0 && n < cands.len() {
                                total += wt;
                                cands[n] = (self.single.get(&a), wt, 1u64 << d);
                                n += 1;
                            }
                        }
                    }
                    if any_dc == 0 {
                        return None;
                    }
                    if total == 0 {
                        return Some(Pick::NoData(any_dc));
                    }
                    let mut r = client % total;
                    for &(set, wt, dc) in &cands[..n] {
                        if r < wt {
                            return Some(match set {
                                Some(s) => Pick::Records(s, dc),
                                None => Pick::NoData(dc),
                            });
                        }
                        r -= wt;
                    }
                    None
                }
                Some(Weights::Datacenter(w)) => {
                    let cands = || serving.clone().filter(|&d| w[d as usize] > 0);
                    let total: u64 = cands().map(|d| w[d as usize] as u64).sum();
                    if total == 0 {
                        // Every serving data centre has weight 0: use the first, as failover does.
                        let d = serving.clone().next()?;
                        return Some(self.dc_pick(d, qtype));
                    }
                    let mut r = client % total;
                    for d in cands() {
                        let wt = w[d as usize] as u64;
                        if r < wt {
                            return Some(self.dc_pick(d, qtype));
                        }
                        r -= wt;
                    }
                    None
                }
                None => serving.next().map(|d| self.dc_pick(d, qtype)),
            },
        }
    }

    fn dc_pick(&self, d: DcIndex, qtype: u16) -> Pick<'_> {
        let bit = 1u64 << d;
        if let Some(c) = &self.cname[d as usize] {
            return Pick::Cname(c, bit);
        }
        match &self.family(qtype)[d as usize] {
            Some(r) => Pick::Records(r, bit),
            None => Pick::NoData(bit),
        }
    }
}

/// Bit masks of every subset of `items` of size min(k, len) — the only sizes `nearest-n`
/// can ask for — and of every smaller size too, since data centres may be down.
fn subsets(items: &[usize], k: usize) -> Vec<u64> {
    let mut out = Vec::new();
    fn rec(items: &[usize], k: usize, start: usize, mask: u64, out: &mut Vec<u64>) {
        if mask != 0 {
            out.push(mask);
        }
        if k == 0 {
            return;
        }
        for i in start..items.len() {
            rec(items, k - 1, i + 1, mask | (1u64 << items[i]), out);
        }
    }
    rec(items, k, 0, 0, &mut out);
    out
}

/// Every service, by name.
#[derive(Debug, Default)]
pub struct ServiceTable {
    pub by_name: FxHashMap<Name, u32>,
    pub services: Vec<Service>,
}

impl ServiceTable {
    pub fn build(geo: &GeoConfig) -> ServiceTable {
        let mut t = ServiceTable::default();
        for (i, s) in geo.services.iter().enumerate() {
            t.by_name.insert(s.name.clone(), i as u32);
            t.services.push(Service::build(s, i as u32));
        }
        t
    }

    pub fn get(&self, index: u32) -> &Service {
        &self.services[index as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsets_cover_every_size_up_to_k() {
        let s = subsets(&[0, 1, 2], 2);
        assert_eq!(s.len(), 6); // 3 singles + 3 pairs
        assert!(s.contains(&0b011) && s.contains(&0b100));
    }

    use crate::config::geo::DcAnswer;
    use std::collections::HashMap;

    fn svc(policy: Policy, weights: Option<Weights>) -> Service {
        let dc = |v4: &[&str], v6: &[&str], cname: Option<&str>| DcAnswer {
            v4: v4.iter().map(|a| a.parse().unwrap()).collect(),
            v6: v6.iter().map(|a| a.parse().unwrap()).collect(),
            cname: cname.map(|c| Name::from_text(c).unwrap()),
        };
        let config = ServiceConfig {
            name: Name::from_text("www.example.com").unwrap(),
            ttl: 60,
            policy,
            order: None,
            per_dc: vec![
                dc(&["192.0.2.1", "192.0.2.2"], &["2001:db8::1"], None),
                dc(&["198.51.100.1"], &[], None),
                DcAnswer::default(), // does not serve it
                dc(&[], &[], Some("cdn.example.net")),
            ],
            weights,
        };
        Service::build(&config, 0)
    }

    fn addrs(p: Option<Pick<'_>>) -> Vec<Vec<u8>> {
        match p {
            Some(Pick::Records(r, _)) => r.rdatas.iter().map(|d| d.to_vec()).collect(),
            Some(Pick::Cname(_, _)) => vec![b"CNAME".to_vec()],
            Some(Pick::NoData(_)) => vec![],
            None => vec![b"NONE".to_vec()],
        }
    }

    #[test]
    fn failover_takes_the_first_serving_data_centre() {
        let s = svc(Policy::Failover, None);
        assert_eq!(addrs(s.pick(&[2, 1, 0], rtype::A, 0)), vec![vec![198, 51, 100, 1]]);
        assert_eq!(addrs(s.pick(&[1, 0], rtype::AAAA, 0)), Vec::<Vec<u8>>::new(), "NODATA: no IPv6 there");
        assert_eq!(addrs(s.pick(&[3, 0], rtype::A, 0)), vec![b"CNAME".to_vec()]);
        assert_eq!(addrs(s.pick(&[2], rtype::A, 0)), vec![b"NONE".to_vec()]);
    }

    #[test]
    fn nearest_n_unions_the_first_n() {
        let s = svc(Policy::NearestN(2), None);
        let got = addrs(s.pick(&[1, 2, 0], rtype::A, 0));
        assert_eq!(got, vec![vec![192, 0, 2, 1], vec![192, 0, 2, 2], vec![198, 51, 100, 1]]);
        assert_eq!(addrs(s.pick(&[0], rtype::A, 0)).len(), 2, "fewer data centres than n");
    }

    #[test]
    fn address_weights_pick_single_addresses_in_proportion() {
        let w: HashMap<IpAddr, u32> = [("192.0.2.1", 1), ("192.0.2.2", 0), ("198.51.100.1", 3)].iter().map(|(a, w)| (a.parse().unwrap(), *w)).collect();
        let s = svc(Policy::Weighted, Some(Weights::Address(w)));
        let mut counts: HashMap<Vec<u8>, u32> = HashMap::new();
        for k in 0..4000u64 {
            let got = addrs(s.pick(&[0, 1], rtype::A, splitmix64(k)));
            assert_eq!(got.len(), 1);
            *counts.entry(got[0].clone()).or_default() += 1;
        }
        assert!(!counts.contains_key(&vec![192, 0, 2, 2]), "weight 0 is never chosen");
        let share = counts[&vec![198, 51, 100, 1]] as f64 / 4000.0;
        assert!((share - 0.75).abs() < 0.03, "{share}");
        assert_eq!(addrs(s.pick(&[0, 1], rtype::AAAA, 7)), Vec::<Vec<u8>>::new(), "no weighted IPv6 address: NODATA");
    }

    #[test]
    fn client_keys_are_stable_within_a_slash_24() {
        let c = |a: &str| Client { addr: a.parse().unwrap(), source_prefix: None };
        assert_eq!(client_key(c("192.0.2.1"), 1), client_key(c("192.0.2.200"), 1));
        assert_ne!(client_key(c("192.0.2.1"), 1), client_key(c("192.0.3.1"), 1));
        assert_eq!(client_key(c("2001:db8:0:1::1"), 1), client_key(c("2001:db8:0:2::1"), 1));
    }
}

/// Attaches services to the zones that contain them: each service name becomes a node
/// (with empty non-terminals above it if needed) marked with its service. Zones without
/// services are shared, not copied. A service name that also has A/AAAA/CNAME data in
/// its zone file, or lies outside every zone or below a delegation, is an error.
pub fn attach(catalog: &Catalog, table: &ServiceTable, config_file: &std::path::Path) -> Result<Catalog, Vec<Problem>> {
    let mut out = catalog.clone();
    let mut problems = Vec::new();
    for svc in &table.services {
        let name = &svc.config.name;
        let Some(zone) = catalog.find(name.as_wire()) else {
            problems.push(Problem { file: config_file.to_path_buf(), line: 0, msg: format!("service {name} is not inside any served zone") });
            continue;
        };
        if let Some(node) = zone.node(name.as_wire()) {
            for t in [rtype::A, rtype::AAAA, rtype::CNAME] {
                if let Some(set) = node.rrset(t) {
                    problems.push(Problem {
                        file: zone.source.clone(),
                        line: set.line as usize,
                        msg: format!("{name} is a service in {}; its {} records here would never be served", config_file.display(), crate::zones::load::type_name(t)),
                    });
                }
            }
            if node.is_cut || node.below_cut {
                problems.push(Problem { file: zone.source.clone(), line: 0, msg: format!("service {name} is at or below a delegation") });
            }
        }
        let apex = zone.apex.clone();
        // never panics: the zone was found in this catalog.
        let served = out.zones.get_mut(&apex).expect("zone present");
        let z = std::sync::Arc::make_mut(&mut served.zone);
        let mut cur = Some(name.clone());
        while let Some(n) = cur {
            if !n.is_subdomain_of(&apex) || (n != *name && z.nodes.contains_key(&n)) {
                break;
            }
            let below = z.nodes.values().any(|c| c.is_cut && n != c.name && n.is_subdomain_of(&c.name));
            let node = z.nodes.entry(n.clone()).or_insert_with(|| Node { name: n.clone(), rrsets: Vec::new(), is_cut: false, below_cut: below, service: None });
            if n == *name {
                node.service = Some(svc.index);
            }
            cur = n.parent();
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}
