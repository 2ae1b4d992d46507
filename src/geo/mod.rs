//! Client location → ordered data centres.
//!
//! The client address is the EDNS Client Subnet address when the query has one
//! (RFC 7871), else the packet's source. Network overrides win over the database;
//! the database's record decides through the location map (city, subdivision,
//! country, continent, default), or by distance in `nearest` mode. The ECS scope of
//! the answer is the prefix of the network that decided it (RFC 7871 §7.2.1).
//!
//! Decisions are memoised per thread by client (address, prefix, mode), and below that
//! by database record offset, so a repeated client costs one probe of a direct-mapped
//! table and a new client in a known location one tree walk and one hash probe; neither
//! cache needs a lock.

pub mod continents;
pub mod db;
pub mod lpm;

use std::cell::RefCell;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ipnet::IpNet;
use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::config::defaults::MAX_DATACENTERS;
use crate::config::geo::{DcIndex, GeoConfig, OrderMode, OverrideTarget, RegionRef};
pub use db::{GeoDb, Location};
use lpm::PrefixTable;

/// A client as routing sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    pub addr: IpAddr,
    /// ECS SOURCE PREFIX-LENGTH when the query carried ECS; None for the packet source.
    pub source_prefix: Option<u8>,
}

impl Client {
    /// Bits of the address that are meaningful.
    pub fn bits(&self) -> u8 {
        let full = if self.addr.to_canonical().is_ipv4() { 32 } else { 128 };
        self.source_prefix.unwrap_or(full).min(full)
    }
}

/// An ordered list of data centres, on the stack.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Order {
    dcs: [DcIndex; MAX_DATACENTERS],
    len: u8,
    /// The region is fenced: its clients are never sent outside this list.
    pub fenced: bool,
}

impl Order {
    pub fn from_slice(s: &[DcIndex]) -> Order {
        let mut o = Order { dcs: [0; MAX_DATACENTERS], len: 0, fenced: false };
        for &d in s.iter().take(MAX_DATACENTERS) {
            o.dcs[o.len as usize] = d;
            o.len += 1;
        }
        o
    }

    pub fn as_slice(&self) -> &[DcIndex] {
        &self.dcs[..self.len as usize]
    }
}

impl std::fmt::Debug for Order {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// What decided a client's order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "key")]
pub enum Rule {
    /// ECS with SOURCE PREFIX-LENGTH 0: "use no client information".
    NoClientInformation,
    Override(String),
    City(String),
    Subdivision(String),
    Country(String),
    Continent(String),
    Nearest,
    Default,
}

/// The order for a client and the ECS scope to answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub order: Order,
    pub scope: u8,
}

/// Built with each snapshot; read-only on the query path.
#[derive(Debug)]
pub struct GeoState {
    pub config: Arc<GeoConfig>,
    pub db: Option<Arc<GeoDb>>,
    pub overrides: PrefixTable<OverrideTarget>,
    /// Unique per build, for the per-thread decision cache.
    pub id: u64,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Per-thread cache bound: cleared when it grows past this many decisions.
const CACHE_LIMIT: usize = 65_536;

thread_local! {
    static CACHE: RefCell<FxHashMap<(u64, OrderMode, usize), Order>> = RefCell::new(FxHashMap::default());
}

/// Slots of the per-thread client cache (direct-mapped; about 100 bytes each).
const CLIENT_CACHE_SLOTS: usize = 4096;

thread_local! {
    static CLIENT_CACHE: RefCell<ClientCache> = RefCell::new(ClientCache::new());
}

/// What a decision depends on: the geo state, the client address (IPv4-mapped addresses
/// as IPv4) with its meaningful prefix, and the order mode. `decide_uncached` is a pure
/// function of these, so a hit is exact.
#[derive(Clone, Copy, PartialEq, Eq)]
struct ClientKey {
    state: u64,
    addr: u128,
    v6: bool,
    bits: u8,
    mode: OrderMode,
}

impl ClientKey {
    fn new(state: u64, client: Client, mode: OrderMode) -> ClientKey {
        let (addr, v6) = match client.addr.to_canonical() {
            IpAddr::V4(a) => (u32::from(a) as u128, false),
            IpAddr::V6(a) => (u128::from(a), true),
        };
        ClientKey { state, addr, v6, bits: client.bits(), mode }
    }

    fn slot(&self) -> usize {
        let mode = match self.mode {
            OrderMode::Map => 0,
            OrderMode::Nearest { limit } => limit as u64 + 1,
        };
        let h = (self.addr as u64 ^ (self.addr >> 64) as u64 ^ ((self.bits as u64) << 56) ^ ((self.v6 as u64) << 55) ^ mode.rotate_left(40))
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (h >> 32) as usize & (CLIENT_CACHE_SLOTS - 1)
    }
}

/// Per-thread memo of whole decisions by client. Resolvers ask from the same subnets
/// again and again; a hit skips the override table, the database tree walk and the map.
/// No lock (one per thread); entries of an older geo state never match (its id differs).
struct ClientCache {
    slots: Vec<Option<(ClientKey, Decision)>>,
}

impl ClientCache {
    fn new() -> ClientCache {
        ClientCache { slots: Vec::new() }
    }

    fn get(&self, key: &ClientKey) -> Option<Decision> {
        match self.slots.get(key.slot()) {
            Some(Some((k, d))) if k == key => Some(*d),
            _ => None,
        }
    }

    fn put(&mut self, key: ClientKey, d: Decision) {
        if self.slots.is_empty() {
            // Allocated on a thread's first service answer, not by threads that never give one.
            self.slots = vec![None; CLIENT_CACHE_SLOTS];
        }
        self.slots[key.slot()] = Some((key, d));
    }
}

/// Great-circle distance in km (haversine).
pub fn distance_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, lo1, la2, lo2) = (a.0.to_radians(), a.1.to_radians(), b.0.to_radians(), b.1.to_radians());
    let h = ((la2 - la1) / 2.0).sin().powi(2) + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().min(1.0).asin()
}

impl GeoState {
    pub fn new(config: Arc<GeoConfig>, db: Option<Arc<GeoDb>>, overrides: &[(IpNet, OverrideTarget)]) -> GeoState {
        let mut table = PrefixTable::default();
        for (net, t) in config.networks.iter().chain(overrides) {
            table.insert(*net, t.clone());
        }
        GeoState { config, db, overrides: table, id: NEXT_ID.fetch_add(1, Ordering::Relaxed) }
    }

    /// The same configuration and overrides over another database, with a new `id` so
    /// that the per-thread decision caches miss.
    pub fn with_db(&self, db: Option<Arc<GeoDb>>) -> GeoState {
        GeoState { config: self.config.clone(), db, overrides: self.overrides.clone(), id: NEXT_ID.fetch_add(1, Ordering::Relaxed) }
    }

    /// The order of a region of the map (the default order for one not in it), fenced
    /// when the region is: what a client located there gets.
    pub fn region_order(&self, r: &RegionRef) -> Order {
        let mut o = Order::from_slice(self.config.map.get(r).unwrap_or(&self.config.map.default));
        o.fenced = self.config.fenced.contains(r);
        o
    }

    /// The map's most specific entry for a location.
    fn map_order(&self, loc: &Location) -> (Order, Rule) {
        type Try<'l> = (Option<&'l String>, fn(String) -> RegionRef, fn(String) -> Rule);
        let tries: [Try; 4] = [
            (loc.city.as_ref(), RegionRef::City, Rule::City),
            (loc.subdivision.as_ref(), RegionRef::Subdivision, Rule::Subdivision),
            (loc.country.as_ref(), RegionRef::Country, Rule::Country),
            (loc.continent.as_ref(), RegionRef::Continent, Rule::Continent),
        ];
        for (key, region, rule) in tries {
            if let Some(k) = key {
                let r = region(k.clone());
                if self.config.map.get(&r).is_some() {
                    return (self.region_order(&r), rule(k.clone()));
                }
            }
        }
        (self.region_order(&RegionRef::Default), Rule::Default)
    }

    /// Order for a located client under `mode`.
    fn order_for(&self, loc: &Location, mode: OrderMode) -> (Order, Rule) {
        match (mode, loc.coords) {
            (OrderMode::Nearest { limit }, Some(c)) => {
                let dcs = &self.config.datacenters;
                let mut idx: Vec<(f64, DcIndex)> =
                    dcs.iter().enumerate().map(|(i, d)| (distance_km(c, (d.lat, d.lon)), i as DcIndex)).collect();
                idx.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                let list: Vec<DcIndex> = idx.into_iter().take(limit).map(|(_, i)| i).collect();
                (Order::from_slice(&list), Rule::Nearest)
            }
            _ => self.map_order(loc),
        }
    }

    /// The query-path decision: override, else database (cached per record), else default.
    /// Whole decisions are memoised per thread by client (see [`ClientCache`]).
    #[inline]
    pub fn decide(&self, client: Client, mode: OrderMode) -> Decision {
        let key = ClientKey::new(self.id, client, mode);
        CLIENT_CACHE.with(|c| {
            let mut c = c.borrow_mut();
            if let Some(d) = c.get(&key) {
                return d;
            }
            let d = self.decide_uncached(client, mode);
            c.put(key, d);
            d
        })
    }

    fn decide_uncached(&self, client: Client, mode: OrderMode) -> Decision {
        self.decide_with(client, mode, None)
    }

    /// The same decision with every detail, for `waypost lookup` and `/v1/lookup`.
    pub fn explain(&self, client: Client, mode: OrderMode) -> Explanation {
        let database = self.db.as_ref().map(|d| format!("{} ({})", d.path.display(), d.database_type));
        let mut ex = Explanation { database, network: None, location: None, rule: Rule::Default, order: vec![], scope: 0 };
        let d = self.decide_with(client, mode, Some(&mut ex));
        ex.scope = d.scope;
        ex.order = d.order.as_slice().iter().map(|&i| self.config.datacenters[i as usize].name.clone()).collect();
        ex
    }

    /// The one decision: ECS source prefix 0, else a network override, else the
    /// database's record (its order memoised per thread by record offset), else the
    /// default. With `ex` (explaining), the record is located every time and the network,
    /// location and rule that decided are written into it.
    fn decide_with(&self, client: Client, mode: OrderMode, mut ex: Option<&mut Explanation>) -> Decision {
        let bits = client.bits();
        let default = |scope| Decision { order: self.region_order(&RegionRef::Default), scope };
        if client.source_prefix == Some(0) {
            if let Some(e) = ex {
                e.rule = Rule::NoClientInformation;
            }
            return default(0);
        }
        let addr = client.addr.to_canonical();
        if let Some((net, target)) = self.overrides.lookup(addr) {
            let order = match target {
                OverrideTarget::Datacenters(l) => Order::from_slice(l),
                OverrideTarget::Region(r) => self.region_order(r),
            };
            if let Some(e) = ex {
                e.network = Some(net.to_string());
                e.rule = Rule::Override(net.to_string());
            }
            return Decision { order, scope: net.prefix_len().min(bits) };
        }
        // Without a database the answer does not depend on the client.
        let Some(db) = &self.db else { return default(0) };
        let Some(hit) = db.lookup(addr) else { return default(0) };
        let scope = hit.prefix.min(bits);
        if let Some(e) = ex.as_deref_mut() {
            e.network = IpNet::new(addr, hit.prefix).ok().map(|n| n.trunc().to_string());
        }
        let Some(offset) = hit.offset else { return default(scope) };
        let order = match ex {
            Some(e) => match db.locate(addr) {
                Some(loc) => {
                    let (o, rule) = self.order_for(&loc, mode);
                    e.location = Some(loc);
                    e.rule = rule;
                    o
                }
                None => self.region_order(&RegionRef::Default),
            },
            None => {
                let key = (self.id, mode, offset);
                match CACHE.with(|c| c.borrow().get(&key).copied()) {
                    Some(o) => o,
                    None => {
                        let loc = db.locate(addr).unwrap_or_default();
                        let (o, _) = self.order_for(&loc, mode);
                        CACHE.with(|c| {
                            let mut c = c.borrow_mut();
                            if c.len() >= CACHE_LIMIT {
                                c.clear();
                            }
                            c.insert(key, o);
                        });
                        o
                    }
                }
            }
        };
        Decision { order, scope }
    }
}

/// Why a client gets its order.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub database: Option<String>,
    /// The network that decided (override or database network).
    pub network: Option<String>,
    #[serde(serialize_with = "ser_location")]
    pub location: Option<Location>,
    pub rule: Rule,
    pub order: Vec<String>,
    pub scope: u8,
}

fn ser_location<S: serde::Serializer>(l: &Option<Location>, s: S) -> Result<S::Ok, S::Error> {
    match l {
        None => s.serialize_none(),
        Some(l) => serde_json::json!({
            "continent": l.continent, "country": l.country, "subdivision": l.subdivision, "city": l.city,
            "coordinates": l.coords.map(|(a, b)| [a, b]),
        })
        .serialize(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_are_great_circle() {
        let london = (51.5, -0.12);
        let paris = (48.86, 2.35);
        let d = distance_km(london, paris);
        assert!((330.0..360.0).contains(&d), "{d}");
        assert!(distance_km((0.0, 179.0), (0.0, -179.0)) < 250.0);
    }

    fn example_geo() -> Arc<GeoState> {
        let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("waypost.toml");
        let (_, snap, _) = crate::control::load_all(Some(&config), &Default::default(), None, None).expect("example config loads");
        snap.geo.clone()
    }

    #[test]
    fn cached_decisions_equal_fresh_ones_and_explanations_and_do_not_cross_states() {
        let geo = example_geo();
        let clients: Vec<Client> = [
            ("81.2.69.160", Some(27)),
            ("81.2.69.160", None),
            ("89.160.20.128", Some(25)),
            ("216.160.83.56", Some(29)),
            ("175.16.199.0", Some(24)),
            ("::ffff:175.16.199.1", None),
            ("2001:218::", Some(48)),
            ("2001:218::", Some(32)),
            ("2a02:d180::", Some(48)),
            ("10.20.30.0", Some(24)),
            ("8.8.8.0", Some(24)),
            ("8.8.8.0", Some(0)),
            ("127.0.0.1", None),
            ("::1", None),
        ]
        .iter()
        .map(|(a, p)| Client { addr: a.parse().unwrap(), source_prefix: *p })
        .collect();
        let modes = [OrderMode::Map, OrderMode::Nearest { limit: 2 }, OrderMode::Nearest { limit: 3 }];
        for _ in 0..2 {
            // The second round is answered from the cache.
            for c in &clients {
                for m in modes {
                    let d = geo.decide(*c, m);
                    assert_eq!(d, geo.decide_uncached(*c, m), "{c:?} {m:?}");
                    // An explanation is of the decision the query path makes.
                    let ex = geo.explain(*c, m);
                    let names: Vec<String> = d.order.as_slice().iter().map(|&i| geo.config.datacenters[i as usize].name.clone()).collect();
                    assert_eq!((ex.order, ex.scope), (names, d.scope), "{c:?} {m:?}");
                }
            }
        }
        // A new state (as a reload builds) with an override for 10/8: its decision is its own.
        let ten = Client { addr: "10.20.30.0".parse().unwrap(), source_prefix: Some(24) };
        let before = geo.decide(ten, OrderMode::Map);
        let net: IpNet = "10.0.0.0/8".parse().unwrap();
        let other = GeoState::new(geo.config.clone(), geo.db.clone(), &[(net, OverrideTarget::Datacenters(vec![2]))]);
        let after = other.decide(ten, OrderMode::Map);
        assert_eq!(after.order.as_slice(), &[2]);
        assert_ne!(before.order, after.order);
    }

    #[test]
    fn client_bits_follow_the_source_prefix() {
        let c = Client { addr: "192.0.2.0".parse().unwrap(), source_prefix: Some(24) };
        assert_eq!(c.bits(), 24);
        let c = Client { addr: "::ffff:192.0.2.1".parse().unwrap(), source_prefix: None };
        assert_eq!(c.bits(), 32);
    }
}
