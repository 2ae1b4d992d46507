//! Services: names whose A/AAAA answer depends on the client's data-centre order.
//!
//! Every answer a service can give is built when the snapshot is built (per data
//! centre, per `nearest-n` subset, per weighted address), so the query path only
//! picks a reference: no allocation, no encoding of addresses per query.

use std::net::IpAddr;

use rustc_hash::FxHashMap;

use crate::config::defaults::MAX_DATACENTERS;
use crate::config::geo::{AllDown, DcIndex, GeoConfig, OrderMode, Policy, ServiceConfig, Weights};
use crate::config::health::{HealthConfig, ServiceDcCheck};
use crate::health::{Action, CheckView, HealthView};
use crate::geo::Client;
use crate::wire::query::rtype;
use crate::wire::Name;
use crate::config::Problem;
use crate::zones::{Catalog, Node, RRset};

/// One data centre as one service sees it now.
#[derive(Debug, Default)]
struct DcState {
    /// Configured to serve this service.
    serves: bool,
    /// Not down by checks or overrides, and has an address (or a CNAME) left.
    up: bool,
    /// Per family: up, and not every configured address of that family down (a family
    /// the data centre has no addresses of stays "up", to answer NODATA as configured).
    up_a: bool,
    up_aaaa: bool,
    /// A check deciding it is between up and down.
    wavering: bool,
    /// Seconds until a wavering check could flip.
    next_change: u32,
    /// Healthy addresses, and every address (for serve-all).
    a: Option<RRset>,
    aaaa: Option<RRset>,
    a_all: Option<RRset>,
    aaaa_all: Option<RRset>,
    cname: Option<RRset>,
}

/// One service with its prebuilt answers.
#[derive(Debug)]
pub struct Service {
    pub config: ServiceConfig,
    pub index: u32,
    dc: Vec<DcState>,
    /// `nearest-n`: union of the healthy addresses of each subset of data centres, by bit mask.
    subsets_a: FxHashMap<u64, RRset>,
    subsets_aaaa: FxHashMap<u64, RRset>,
    /// Weighted by address: one single-address RRset per healthy address.
    single: FxHashMap<IpAddr, RRset>,
    fallback_a: Option<RRset>,
    fallback_aaaa: Option<RRset>,
    fallback_cname: Option<RRset>,
}

/// What a service answers for one query.
#[derive(Debug, Clone, Copy)]
pub enum Pick<'s> {
    /// The RRset to answer (A or AAAA).
    Records(&'s RRset),
    /// The chosen data centre answers with a CNAME.
    Cname(&'s RRset),
    /// No address of the asked family: NODATA.
    NoData,
}

/// A pick with the TTL to answer with and the data centres it came from (bit mask).
#[derive(Debug, Clone, Copy)]
pub struct Answer<'s> {
    pub pick: Pick<'s>,
    pub ttl: u32,
    pub datacenters: u64,
    /// The client's first choice is not serving.
    pub failed_over: bool,
    /// Nothing the client may use is up: the all-down policy answered.
    pub all_down: bool,
}

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

    /// The order mode this service uses.
    pub fn mode(&self, geo: &GeoConfig) -> OrderMode {
        self.config.order.or(geo.order).unwrap_or(OrderMode::Map)
    }

    /// (configured to serve, up now, wavering) for data centre `d`.
    pub fn dc_status(&self, d: DcIndex) -> (bool, bool, bool) {
        self.dc.get(d as usize).map_or((false, false, false), |s| (s.serves, s.up, s.wavering))
    }

    /// Whether data centre `d` serves this service and is up now for `qtype`'s family.
    pub fn is_up(&self, d: DcIndex, qtype: u16) -> bool {
        self.dc.get(d as usize).is_some_and(|s| s.serves && if qtype == rtype::AAAA { s.up_aaaa } else { s.up_a })
    }

    /// Picks the answer for `qtype` (A or AAAA): the client's `order` (and, unless the
    /// client's region is fenced, the `fallback` orders after it) without the data
    /// centres that are down; if none is left, the all-down policy.
    pub fn answer(&self, order: &[DcIndex], fenced: bool, fallback: [&[DcIndex]; 2], qtype: u16, client: u64) -> Answer<'_> {
        let serves = |d: &DcIndex| self.dc.get(*d as usize).is_some_and(|s| s.serves);
        let first_choice = order.iter().copied().find(serves);
        let mut up = [0 as DcIndex; MAX_DATACENTERS];
        let mut n = 0;
        let mut seen = 0u64;
        let lists: [&[DcIndex]; 3] = if fenced { [order, &[], &[]] } else { [order, fallback[0], fallback[1]] };
        for list in lists {
            for &d in list {
                if seen & (1u64 << d) == 0 && self.is_up(d, qtype) && n < up.len() {
                    up[n] = d;
                    n += 1;
                }
                seen |= 1u64 << d;
            }
            if n > 0 {
                break;
            }
        }
        let up = &up[..n];
        if up.is_empty() {
            return self.all_down(order, fenced, fallback, qtype);
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

    fn all_down(&self, order: &[DcIndex], fenced: bool, fallback: [&[DcIndex]; 2], qtype: u16) -> Answer<'_> {
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
                let serves = |d: &&DcIndex| self.dc.get(**d as usize).is_some_and(|s| s.serves);
                let lists: [&[DcIndex]; 3] = if fenced { [order, &[], &[]] } else { [order, fallback[0], fallback[1]] };
                let mut all = [0 as DcIndex; MAX_DATACENTERS];
                let mut n = 0;
                for list in lists {
                    for &d in list.iter().filter(serves) {
                        if n < all.len() && !all[..n].contains(&d) {
                            all[n] = d;
                            n += 1;
                        }
                    }
                    if n > 0 {
                        break;
                    }
                }
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

    pub fn get(&self, index: u32) -> &Service {
        &self.services[index as usize]
    }
}

/// Attaches services to the zones that contain them: each service name becomes a node
/// (with empty non-terminals above it if needed) marked with its service. Zones without
/// services are shared, not copied. A service name that also has A/AAAA/CNAME data in
/// its zone file, or lies outside every zone or below a delegation, is an error.
pub fn attach(catalog: &Catalog, table: &ServiceTable, config_file: &std::path::Path) -> Result<Catalog, Vec<Problem>> {
    let mut out = catalog.clone();
    let mut problems = Vec::new();
    // For the line of a service's key in the config file (read only when needed).
    let config_text = std::cell::OnceCell::new();
    let service_line = |name: &Name| {
        let text = config_text.get_or_init(|| std::fs::read_to_string(config_file).unwrap_or_default());
        crate::config::error::line_of(text, &crate::config::error::Key::new("services").at(&name.to_string()))
    };
    for svc in &table.services {
        let name = &svc.config.name;
        let Some(zone) = catalog.find(name.as_wire()) else {
            problems.push(Problem { file: config_file.to_path_buf(), line: service_line(name), msg: format!("service {name} is not inside any served zone") });
            continue;
        };
        // A pre-signed zone's keys are not Waypost's: a service answer in it could not be
        // signed, and an unsigned answer inside a signed zone is bogus to every validator.
        if zone.dnssec.is_some() {
            problems.push(Problem {
                file: config_file.to_path_buf(),
                line: service_line(name),
                msg: format!("service {name} is inside the signed zone {}: Waypost cannot sign its answers with that zone's keys, and unsigned answers in a signed zone fail validation (serve it from an unsigned zone, or delegate its name to one)", zone.apex),
            });
            continue;
        }
        // A service at or below a zone cut would never be answered: the referral wins.
        let mut up = Some(name.clone());
        while let Some(n) = up.filter(|n| n != &zone.apex && n.is_subdomain_of(&zone.apex)) {
            if let Some(ns) = zone.node(n.as_wire()).filter(|node| node.is_cut).and_then(|node| node.rrset(rtype::NS)) {
                problems.push(Problem { file: zone.source.clone(), line: ns.line as usize, msg: format!("service {name} is at or below the delegation {n}") });
            }
            up = n.parent();
        }
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
        }
        // RFC 6672: a name below a DNAME is always substituted, so the service would never answer.
        let mut up = name.parent();
        while let Some(n) = up.filter(|n| n.is_subdomain_of(&zone.apex)) {
            if let Some(d) = zone.node(n.as_wire()).and_then(|node| node.rrset(rtype::DNAME)) {
                problems.push(Problem { file: zone.source.clone(), line: d.line as usize, msg: format!("service {name} is below the DNAME at {n}") });
            }
            up = n.parent();
        }
        let apex = zone.apex.clone();
        // never panics: the zone was found in this catalog.
        let served = out.get_mut(apex.as_wire()).expect("zone present");
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::geo::{Datacenter, DcAnswer};
    use crate::health::CheckView;
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

    const NONE: [&[DcIndex]; 2] = [&[], &[]];

    #[test]
    fn failover_takes_the_first_serving_data_centre() {
        let s = svc(Policy::Failover, None);
        let a = s.answer(&[2, 1, 0], false, NONE, rtype::A, 0);
        assert_eq!(addrs(a), vec![vec![198, 51, 100, 1]]);
        assert_eq!((a.ttl, a.failed_over), (60, false), "c does not serve it: b is the first choice");
        assert_eq!(addrs(s.answer(&[1, 0], false, NONE, rtype::AAAA, 0)), Vec::<Vec<u8>>::new(), "NODATA: no IPv6 there");
        assert_eq!(addrs(s.answer(&[3, 0], false, NONE, rtype::A, 0)), vec![b"CNAME".to_vec()]);
    }

    #[test]
    fn a_down_data_centre_moves_the_client_on_with_the_short_ttl() {
        let c = config(Policy::Failover, None, AllDown::ServeAll);
        let mut view = HealthView::default();
        view.datacenters.insert("a".into(), Action::Drain);
        let s = build(&c, &view);
        let a = s.answer(&[0, 1], false, NONE, rtype::A, 0);
        assert_eq!(addrs(a), vec![vec![198, 51, 100, 1]]);
        assert_eq!((a.ttl, a.failed_over), (10, true));
    }

    #[test]
    fn a_down_address_is_left_out_while_its_siblings_serve() {
        let c = config(Policy::Failover, None, AllDown::ServeAll);
        let mut view = HealthView::default();
        view.addresses.insert("192.0.2.1".parse().unwrap(), Action::Down);
        let s = build(&c, &view);
        let a = s.answer(&[0, 1], false, NONE, rtype::A, 0);
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
        let a = serve_all.answer(&[0, 1], false, NONE, rtype::A, 0);
        assert_eq!(addrs(a), vec![vec![192, 0, 2, 1], vec![192, 0, 2, 2]]);
        assert_eq!((a.ttl, a.all_down), (10, true));
        let fallback = AllDown::Fallback(DcAnswer { v4: vec!["203.0.113.9".parse().unwrap()], ..DcAnswer::default() });
        let fb = build(&config(Policy::Failover, None, fallback), &view);
        assert_eq!(addrs(fb.answer(&[0], false, NONE, rtype::A, 0)), vec![vec![203, 0, 113, 9]]);
        let nd = build(&config(Policy::Failover, None, AllDown::NoData), &view);
        assert!(matches!(nd.answer(&[0], false, NONE, rtype::A, 0).pick, Pick::NoData));
        // Only a is down: unfenced clients of [a] go on to the fallback order; fenced ones do not.
        let mut view = HealthView::default();
        view.datacenters.insert("a".into(), Action::Down);
        let s = build(&config(Policy::Failover, None, AllDown::NoData), &view);
        assert_eq!(addrs(s.answer(&[0], false, [&[0, 1], &[]], rtype::A, 0)), vec![vec![198, 51, 100, 1]]);
        assert!(s.answer(&[0], true, [&[0, 1], &[]], rtype::A, 0).all_down);
    }

    #[test]
    fn wavering_sites_get_the_short_ttl_capped_by_the_next_possible_change() {
        let mut hc = HealthConfig::default();
        hc.dc_checks = vec![Some(0), None, None, None];
        let view = HealthView { checks: vec![CheckView { up: true, wavering: true, next_change: 4 }], ..HealthView::default() };
        let g = geo();
        let s = Service::build(&config(Policy::Failover, None, AllDown::ServeAll), 0, &Health { geo: &g, cfg: &hc, view: &view });
        let a = s.answer(&[0, 1], false, NONE, rtype::A, 0);
        assert_eq!((a.ttl, a.failed_over), (4, false));
    }

    #[test]
    fn nearest_n_unions_the_first_n() {
        let s = svc(Policy::NearestN(2), None);
        let got = addrs(s.answer(&[1, 2, 0], false, NONE, rtype::A, 0));
        assert_eq!(got, vec![vec![192, 0, 2, 1], vec![192, 0, 2, 2], vec![198, 51, 100, 1]]);
        assert_eq!(addrs(s.answer(&[0], false, NONE, rtype::A, 0)).len(), 2, "fewer data centres than n");
    }

    #[test]
    fn address_weights_pick_single_addresses_in_proportion() {
        let w: HashMap<IpAddr, u32> = [("192.0.2.1", 1), ("192.0.2.2", 0), ("198.51.100.1", 3)].iter().map(|(a, w)| (a.parse().unwrap(), *w)).collect();
        let s = svc(Policy::Weighted, Some(Weights::Address(w)));
        let mut counts: HashMap<Vec<u8>, u32> = HashMap::new();
        for k in 0..4000u64 {
            let got = addrs(s.answer(&[0, 1], false, NONE, rtype::A, splitmix64(k)));
            assert_eq!(got.len(), 1);
            *counts.entry(got[0].clone()).or_default() += 1;
        }
        assert!(!counts.contains_key(&vec![192, 0, 2, 2]), "weight 0 is never chosen");
        let share = counts[&vec![198, 51, 100, 1]] as f64 / 4000.0;
        assert!((share - 0.75).abs() < 0.03, "{share}");
        assert_eq!(addrs(s.answer(&[0, 1], false, NONE, rtype::AAAA, 7)), Vec::<Vec<u8>>::new(), "no weighted IPv6 address: NODATA");
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
