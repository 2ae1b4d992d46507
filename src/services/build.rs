//! The control side of services: every answer each service can give, built for one
//! health view when a snapshot is built (per data centre, per `nearest-n` subset, per
//! weighted address, the all-down fallback). Allocates freely; never on the query path.

use std::net::IpAddr;

use rustc_hash::FxHashMap;

use super::{DcState, Service, ServiceTable};
use crate::config::geo::{AllDown, GeoConfig, Policy, ServiceConfig, Weights};
use crate::config::health::{HealthConfig, ServiceDcCheck};
use crate::health::{Action, CheckView, HealthView};
use crate::wire::query::rtype;
use crate::zones::RRset;

fn rrset(t: u16, ttl: u32, mut rdatas: Vec<Box<[u8]>>) -> Option<RRset> {
    if rdatas.is_empty() {
        return None;
    }
    rdatas.sort();
    rdatas.dedup();
    Some(RRset::new(t, ttl, rdatas))
}

fn addr_rdata(a: IpAddr) -> Box<[u8]> {
    match a {
        IpAddr::V4(v) => v.octets().to_vec().into_boxed_slice(),
        IpAddr::V6(v) => v.octets().to_vec().into_boxed_slice(),
    }
}

/// Health of one (service, data centre) from the checks and overrides.
struct Health<'a> {
    geo: &'a GeoConfig,
    cfg: &'a HealthConfig,
    view: &'a HealthView,
}

impl Health<'_> {
    fn check(&self, i: usize) -> CheckView {
        self.view.checks.get(i).copied().unwrap_or(CheckView { up: true, wavering: false, next_change: u32::MAX })
    }

    /// (up, wavering, next change) of a data centre as a whole.
    fn datacenter(&self, d: usize) -> (bool, bool, u32) {
        if let Some(a) = self.view.datacenters.get(&self.geo.datacenters[d].name) {
            return (a.serves(), false, u32::MAX);
        }
        match self.cfg.dc_checks.get(d).copied().flatten() {
            Some(c) => {
                let v = self.check(c);
                (v.up, v.wavering, if v.wavering { v.next_change } else { u32::MAX })
            }
            None => (true, false, u32::MAX),
        }
    }

    /// Whether an address may be answered, with (wavering, next change).
    fn address(&self, a: IpAddr, check: Option<usize>) -> (bool, bool, u32) {
        if let Some(act) = self.view.addresses.get(&a) {
            return (act.serves(), false, u32::MAX);
        }
        match check {
            Some(c) => {
                let v = self.check(c);
                (v.up, v.wavering, if v.wavering { v.next_change } else { u32::MAX })
            }
            None => (true, false, u32::MAX),
        }
    }
}

impl Service {
    fn build(config: &ServiceConfig, index: u32, h: &Health<'_>) -> Service {
        let ttl = config.ttl;
        let n = config.per_dc.len();
        let mut dc: Vec<DcState> = Vec::with_capacity(n);
        let mut healthy_v4: Vec<Vec<IpAddr>> = vec![Vec::new(); n];
        let mut healthy_v6: Vec<Vec<IpAddr>> = vec![Vec::new(); n];
        for (d, ans) in config.per_dc.iter().enumerate() {
            if ans.is_empty() {
                dc.push(DcState::default());
                continue;
            }
            let (mut up, mut wavering, mut next) = h.datacenter(d);
            let forced = h.view.datacenters.get(&h.geo.datacenters[d].name).copied();
            let svc_check = h.cfg.service_checks.get(index as usize).and_then(|v| v.get(d)).cloned().unwrap_or_default();
            if let (ServiceDcCheck::Whole(c), None) = (&svc_check, forced) {
                let v = h.check(*c);
                up &= v.up;
                wavering |= v.wavering;
                if v.wavering {
                    next = next.min(v.next_change);
                }
            }
            let per_addr = |a: IpAddr| match &svc_check {
                ServiceDcCheck::PerAddress(v) => v.iter().find(|(x, _)| *x == a).map(|(_, c)| *c),
                _ => None,
            };
            let mut keep = |a: IpAddr, out: &mut Vec<IpAddr>| {
                let (ok, w, nx) = h.address(a, per_addr(a));
                // A data centre forced up serves every address unless an address is forced down.
                let ok = match (forced, h.view.addresses.get(&a)) {
                    (Some(Action::Up), None) => true,
                    _ => ok,
                };
                if ok {
                    out.push(a);
                    if w {
                        wavering = true;
                        next = next.min(nx);
                    }
                }
            };
            for &a in &ans.v4 {
                keep(a.into(), &mut healthy_v4[d]);
            }
            for &a in &ans.v6 {
                keep(a.into(), &mut healthy_v6[d]);
            }
            let has_addrs = !ans.v4.is_empty() || !ans.v6.is_empty();
            if has_addrs && healthy_v4[d].is_empty() && healthy_v6[d].is_empty() {
                up = false;
            }
            let up_a = up && (ans.cname.is_some() || ans.v4.is_empty() || !healthy_v4[d].is_empty());
            let up_aaaa = up && (ans.cname.is_some() || ans.v6.is_empty() || !healthy_v6[d].is_empty());
            dc.push(DcState {
                serves: true,
                up,
                up_a,
                up_aaaa,
                wavering,
                next_change: next,
                a: rrset(rtype::A, ttl, healthy_v4[d].iter().map(|&a| addr_rdata(a)).collect()),
                aaaa: rrset(rtype::AAAA, ttl, healthy_v6[d].iter().map(|&a| addr_rdata(a)).collect()),
                a_all: rrset(rtype::A, ttl, ans.v4.iter().map(|&v| addr_rdata(v.into())).collect()),
                aaaa_all: rrset(rtype::AAAA, ttl, ans.v6.iter().map(|&v| addr_rdata(v.into())).collect()),
                cname: ans.cname.as_ref().and_then(|c| rrset(rtype::CNAME, ttl, vec![c.as_wire().into()])),
            });
        }
        let mut s = Service {
            config: config.clone(),
            index,
            dc,
            subsets_a: FxHashMap::default(),
            subsets_aaaa: FxHashMap::default(),
            single: FxHashMap::default(),
            fallback_a: None,
            fallback_aaaa: None,
            fallback_cname: None,
            default_order: h.geo.map.default.clone().into_boxed_slice(),
            datacenters: h.geo.datacenters.len(),
        };
        if let Policy::NearestN(k) = config.policy {
            let serving: Vec<usize> = (0..n).filter(|&i| s.dc[i].up && s.dc[i].cname.is_none()).collect();
            for mask in subsets(&serving, k) {
                let members = (0..n).filter(|i| mask & (1u64 << i) != 0);
                let mut v4 = Vec::new();
                let mut v6 = Vec::new();
                for i in members {
                    v4.extend(healthy_v4[i].iter().map(|&x| addr_rdata(x)));
                    v6.extend(healthy_v6[i].iter().map(|&x| addr_rdata(x)));
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
            for d in 0..n {
                for &a in healthy_v4[d].iter().chain(&healthy_v6[d]) {
                    let t = if a.is_ipv4() { rtype::A } else { rtype::AAAA };
                    s.single.entry(a).or_insert_with(|| RRset::new(t, ttl, vec![addr_rdata(a)]));
                }
            }
        }
        if let AllDown::Fallback(f) = &config.all_down {
            s.fallback_a = rrset(rtype::A, ttl, f.v4.iter().map(|&v| addr_rdata(v.into())).collect());
            s.fallback_aaaa = rrset(rtype::AAAA, ttl, f.v6.iter().map(|&v| addr_rdata(v.into())).collect());
            s.fallback_cname = f.cname.as_ref().and_then(|c| rrset(rtype::CNAME, ttl, vec![c.as_wire().into()]));
        }
        s
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

impl ServiceTable {
    /// Builds every service's answers for the current health.
    pub fn build(geo: &GeoConfig, health: &HealthConfig, view: &HealthView) -> ServiceTable {
        let h = Health { geo, cfg: health, view };
        let mut t = ServiceTable::default();
        for (i, s) in geo.services.iter().enumerate() {
            t.by_name.insert(s.name.clone(), i as u32);
            t.services.push(Service::build(s, i as u32, &h));
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::geo::{Datacenter, DcAnswer, DcIndex};
    use crate::geo::{Client, Order};
    use crate::services::pick::{client_key, splitmix64};
    use crate::services::{Answer, Pick};
    use crate::wire::Name;
    use std::collections::HashMap;

    fn geo() -> GeoConfig {
        let dc = |n: &str| Datacenter { name: n.into(), lat: 0.0, lon: 0.0 };
        GeoConfig { datacenters: vec![dc("a"), dc("b"), dc("c"), dc("d")], ..GeoConfig::default() }
    }

    fn config(policy: Policy, weights: Option<Weights>, all_down: AllDown) -> ServiceConfig {
        let dc = |v4: &[&str], v6: &[&str], cname: Option<&str>| DcAnswer {
            v4: v4.iter().map(|a| a.parse().unwrap()).collect(),
            v6: v6.iter().map(|a| a.parse().unwrap()).collect(),
            cname: cname.map(|c| Name::from_text(c).unwrap()),
        };
        ServiceConfig {
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
            failover_ttl: 10,
            all_down,
            transfer: Some(0),
        }
    }

    fn build(c: &ServiceConfig, view: &HealthView) -> Service {
        let g = geo();
        let hc = HealthConfig::default();
        Service::build(c, 0, &Health { geo: &g, cfg: &hc, view })
    }

    fn svc(policy: Policy, weights: Option<Weights>) -> Service {
        build(&config(policy, weights, AllDown::ServeAll), &HealthView::default())
    }

    fn addrs(a: Answer<'_>) -> Vec<Vec<u8>> {
        match a.pick {
            Pick::Records(r) => r.rdatas.iter().map(|d| d.to_vec()).collect(),
            Pick::Cname(_) => vec![b"CNAME".to_vec()],
            Pick::NoData => vec![],
        }
    }

    /// A client's order, as `geo` decides it.
    fn order(dcs: &[DcIndex], fenced: bool) -> Order {
        let mut o = Order::from_slice(dcs);
        o.fenced = fenced;
        o
    }

    #[test]
    fn failover_takes_the_first_serving_data_centre() {
        let s = svc(Policy::Failover, None);
        let a = s.answer(&order(&[2, 1, 0], false), rtype::A, 0);
        assert_eq!(addrs(a), vec![vec![198, 51, 100, 1]]);
        assert_eq!((a.ttl, a.failed_over), (60, false), "c does not serve it: b is the first choice");
        assert_eq!(addrs(s.answer(&order(&[1, 0], false), rtype::AAAA, 0)), Vec::<Vec<u8>>::new(), "NODATA: no IPv6 there");
        assert_eq!(addrs(s.answer(&order(&[3, 0], false), rtype::A, 0)), vec![b"CNAME".to_vec()]);
    }

    #[test]
    fn a_down_data_centre_moves_the_client_on_with_the_short_ttl() {
        let c = config(Policy::Failover, None, AllDown::ServeAll);
        let mut view = HealthView::default();
        view.datacenters.insert("a".into(), Action::Drain);
        let s = build(&c, &view);
        let a = s.answer(&order(&[0, 1], false), rtype::A, 0);
        assert_eq!(addrs(a), vec![vec![198, 51, 100, 1]]);
        assert_eq!((a.ttl, a.failed_over), (10, true));
    }

    #[test]
    fn a_down_address_is_left_out_while_its_siblings_serve() {
        let c = config(Policy::Failover, None, AllDown::ServeAll);
        let mut view = HealthView::default();
        view.addresses.insert("192.0.2.1".parse().unwrap(), Action::Down);
        let s = build(&c, &view);
        let a = s.answer(&order(&[0, 1], false), rtype::A, 0);
        assert_eq!(addrs(a), vec![vec![192, 0, 2, 2]]);
        assert!(!a.failed_over);
    }

    #[test]
    fn all_down_follows_the_policy_and_fences_hold() {
        let mut view = HealthView::default();
        for d in ["a", "b", "d"] {
            view.datacenters.insert(d.into(), Action::Down);
        }
        let serve_all = build(&config(Policy::Failover, None, AllDown::ServeAll), &view);
        let a = serve_all.answer(&order(&[0, 1], false), rtype::A, 0);
        assert_eq!(addrs(a), vec![vec![192, 0, 2, 1], vec![192, 0, 2, 2]]);
        assert_eq!((a.ttl, a.all_down), (10, true));
        let fallback = AllDown::Fallback(DcAnswer { v4: vec!["203.0.113.9".parse().unwrap()], ..DcAnswer::default() });
        let fb = build(&config(Policy::Failover, None, fallback), &view);
        assert_eq!(addrs(fb.answer(&order(&[0], false), rtype::A, 0)), vec![vec![203, 0, 113, 9]]);
        let nd = build(&config(Policy::Failover, None, AllDown::NoData), &view);
        assert!(matches!(nd.answer(&order(&[0], false), rtype::A, 0).pick, Pick::NoData));
    }

    #[test]
    fn unfenced_clients_go_on_to_the_default_order_then_everywhere_and_fenced_ones_do_not() {
        let mut view = HealthView::default();
        view.datacenters.insert("a".into(), Action::Down);
        let c = config(Policy::Failover, None, AllDown::NoData);
        let hc = HealthConfig::default();
        // The map's default order is [d]: d's CNAME comes before every other data centre.
        let mut g = geo();
        g.map.default = vec![3];
        let s = Service::build(&c, 0, &Health { geo: &g, cfg: &hc, view: &view });
        assert_eq!(addrs(s.answer(&order(&[0], false), rtype::A, 0)), vec![b"CNAME".to_vec()]);
        // No default order: every data centre, in index order (b is the first up).
        let s = build(&c, &view);
        let a = s.answer(&order(&[0], false), rtype::A, 0);
        assert_eq!(addrs(a), vec![vec![198, 51, 100, 1]]);
        assert!(a.failed_over && !a.all_down);
        assert!(s.answer(&order(&[0], true), rtype::A, 0).all_down, "a fenced region stays within its order");
    }

    #[test]
    fn wavering_sites_get_the_short_ttl_capped_by_the_next_possible_change() {
        let mut hc = HealthConfig::default();
        hc.dc_checks = vec![Some(0), None, None, None];
        let view = HealthView { checks: vec![CheckView { up: true, wavering: true, next_change: 4 }], ..HealthView::default() };
        let g = geo();
        let s = Service::build(&config(Policy::Failover, None, AllDown::ServeAll), 0, &Health { geo: &g, cfg: &hc, view: &view });
        let a = s.answer(&order(&[0, 1], false), rtype::A, 0);
        assert_eq!((a.ttl, a.failed_over), (4, false));
    }

    #[test]
    fn nearest_n_unions_the_first_n() {
        let s = svc(Policy::NearestN(2), None);
        let got = addrs(s.answer(&order(&[1, 2, 0], false), rtype::A, 0));
        assert_eq!(got, vec![vec![192, 0, 2, 1], vec![192, 0, 2, 2], vec![198, 51, 100, 1]]);
        assert_eq!(addrs(s.answer(&order(&[0], false), rtype::A, 0)).len(), 2, "fewer data centres than n");
    }

    #[test]
    fn address_weights_pick_single_addresses_in_proportion() {
        let w: HashMap<IpAddr, u32> = [("192.0.2.1", 1), ("192.0.2.2", 0), ("198.51.100.1", 3)].iter().map(|(a, w)| (a.parse().unwrap(), *w)).collect();
        let s = svc(Policy::Weighted, Some(Weights::Address(w)));
        let mut counts: HashMap<Vec<u8>, u32> = HashMap::new();
        for k in 0..4000u64 {
            let got = addrs(s.answer(&order(&[0, 1], false), rtype::A, splitmix64(k)));
            assert_eq!(got.len(), 1);
            *counts.entry(got[0].clone()).or_default() += 1;
        }
        assert!(!counts.contains_key(&vec![192, 0, 2, 2]), "weight 0 is never chosen");
        let share = counts[&vec![198, 51, 100, 1]] as f64 / 4000.0;
        assert!((share - 0.75).abs() < 0.03, "{share}");
        assert_eq!(addrs(s.answer(&order(&[0, 1], false), rtype::AAAA, 7)), Vec::<Vec<u8>>::new(), "no weighted IPv6 address: NODATA");
    }

    #[test]
    fn subsets_cover_every_size_up_to_k() {
        let s = subsets(&[0, 1, 2], 2);
        assert_eq!(s.len(), 6); // 3 singles + 3 pairs
        assert!(s.contains(&0b011) && s.contains(&0b100));
    }

    #[test]
    fn client_keys_are_stable_within_a_slash_24() {
        let c = |a: &str| Client { addr: a.parse().unwrap(), source_prefix: None };
        assert_eq!(client_key(c("192.0.2.1"), 1), client_key(c("192.0.2.200"), 1));
        assert_ne!(client_key(c("192.0.2.1"), 1), client_key(c("192.0.3.1"), 1));
        assert_eq!(client_key(c("2001:db8:0:1::1"), 1), client_key(c("2001:db8:0:2::1"), 1));
    }
}
