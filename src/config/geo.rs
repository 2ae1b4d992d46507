//! Validated geo-routing config: data centres, the location map, network overrides
//! and services. Built from the serde spec by [`GeoConfig::from_spec`]; everything
//! after that trusts it (names resolved to indices, addresses parsed).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use ipnet::IpNet;

use super::defaults::{FAILOVER_TTL, MAX_DATACENTERS, MAX_SUBSETS_PER_SERVICE, NEAREST_N, SERVICE_TTL};
use super::error::{ConfigError, Key, Problem};
use super::file::{DcServiceSpec, GeoSpec, OverrideTarget as OverrideSpec, ServiceSpec};
use crate::wire::Name;

/// Index of a data centre in [`GeoConfig::datacenters`].
pub type DcIndex = u8;

#[derive(Debug, Clone, PartialEq)]
pub struct Datacenter {
    pub name: String,
    pub lat: f64,
    pub lon: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderMode {
    /// The location map decides.
    Map,
    /// Nearest first by great-circle distance, keeping at most `limit`.
    Nearest { limit: usize },
}

/// A named place in the location map.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RegionRef {
    Default,
    Continent(String),
    Country(String),
    Subdivision(String),
    City(String),
}

impl std::fmt::Display for RegionRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegionRef::Default => f.write_str("default"),
            RegionRef::Continent(c) => write!(f, "continent:{c}"),
            RegionRef::Country(c) => write!(f, "country:{c}"),
            RegionRef::Subdivision(c) => write!(f, "subdivision:{c}"),
            RegionRef::City(c) => write!(f, "city:{c}"),
        }
    }
}

impl RegionRef {
    pub fn parse(s: &str) -> Result<RegionRef, String> {
        if s == "default" {
            return Ok(RegionRef::Default);
        }
        let (kind, key) = s.split_once(':').ok_or_else(|| format!("region {s:?}: expected default or KIND:KEY"))?;
        Ok(match kind {
            "continent" => RegionRef::Continent(key.to_ascii_uppercase()),
            "country" => RegionRef::Country(key.to_ascii_uppercase()),
            "subdivision" => RegionRef::Subdivision(key.to_ascii_uppercase()),
            "city" => RegionRef::City(key.to_string()),
            _ => return Err(format!("region {s:?}: kind must be continent, country, subdivision or city")),
        })
    }
}

/// Location → ordered data centres; most specific wins.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LocationMap {
    pub default: Vec<DcIndex>,
    pub entries: HashMap<RegionRef, Vec<DcIndex>>,
}

impl LocationMap {
    pub fn get(&self, r: &RegionRef) -> Option<&[DcIndex]> {
        match r {
            RegionRef::Default => Some(&self.default),
            _ => self.entries.get(r).map(Vec::as_slice),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum OverrideTarget {
    Region(RegionRef),
    Datacenters(Vec<DcIndex>),
}

/// What one data centre answers for one service.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DcAnswer {
    pub v4: Vec<Ipv4Addr>,
    pub v6: Vec<Ipv6Addr>,
    pub cname: Option<Name>,
}

impl DcAnswer {
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty() && self.cname.is_none()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// The first data centre in the client's order.
    Failover,
    /// The first `n` data centres' addresses together.
    NearestN(usize),
    /// One of the client's data centres (or addresses), by weight, stable per client subnet.
    Weighted,
}

impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Policy::Failover => f.write_str("failover"),
            Policy::NearestN(n) => write!(f, "nearest-n (n = {n})"),
            Policy::Weighted => f.write_str("weighted"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Weights {
    /// Weight per data centre (indexed like `datacenters`); 0 = never chosen.
    Datacenter(Vec<u32>),
    /// Weight per address; addresses not listed get 0.
    Address(HashMap<IpAddr, u32>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceConfig {
    pub name: Name,
    pub ttl: u32,
    pub policy: Policy,
    pub order: Option<OrderMode>,
    /// Indexed like `datacenters`; empty where the data centre does not serve it.
    pub per_dc: Vec<DcAnswer>,
    pub weights: Option<Weights>,
    /// TTL while failed over or while a chosen site is wavering.
    pub failover_ttl: u32,
    pub all_down: AllDown,
    /// The data centre whose configured answer a zone transfer carries for this name
    /// (fixed, so secondaries get a sensible answer and the serial does not follow
    /// health); None: the name is left out of transfers.
    pub transfer: Option<DcIndex>,
}

/// What a service does when every data centre it could use is down.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum AllDown {
    /// Answer as if everything were up, with the short TTL (fail open, like Route 53 and gdnsd).
    #[default]
    ServeAll,
    /// Fixed addresses or a CNAME.
    Fallback(DcAnswer),
    /// NOERROR with no records.
    NoData,
}

impl AllDown {
    /// As the config writes it.
    pub fn as_str(&self) -> &'static str {
        match self {
            AllDown::ServeAll => "serve-all",
            AllDown::Fallback(_) => "fallback",
            AllDown::NoData => "nodata",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct GeoConfig {
    pub database: Option<PathBuf>,
    pub overrides_file: Option<PathBuf>,
    pub order: Option<OrderMode>,
    pub map: LocationMap,
    pub networks: Vec<(IpNet, OverrideTarget)>,
    pub datacenters: Vec<Datacenter>,
    pub services: Vec<ServiceConfig>,
    /// Regions whose clients are never answered from outside their own list.
    pub fenced: Vec<RegionRef>,
}

impl GeoConfig {
    pub fn order_mode(&self) -> OrderMode {
        self.order.unwrap_or(OrderMode::Map)
    }

    pub fn dc_index(&self, name: &str) -> Option<DcIndex> {
        self.datacenters.iter().position(|d| d.name == name).map(|i| i as DcIndex)
    }

    pub fn from_spec(
        geo: &GeoSpec,
        dcs: &BTreeMap<String, super::file::DatacenterSpec>,
        services: &BTreeMap<String, ServiceSpec>,
        base: &Path,
    ) -> Result<GeoConfig, ConfigError> {
        if dcs.len() > MAX_DATACENTERS {
            return Err(Key::new("datacenters").err(format!("{} data centres, at most {MAX_DATACENTERS}", dcs.len())));
        }
        let datacenters: Vec<Datacenter> = dcs
            .iter()
            .map(|(name, d)| {
                let [lat, lon] = d.location;
                if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
                    return Err(Key::new("datacenters").at(name).at("location").err(format!("[{lat}, {lon}] is not [latitude, longitude]")));
                }
                Ok(Datacenter { name: name.clone(), lat, lon })
            })
            .collect::<Result<_, _>>()?;
        let mut cfg = GeoConfig {
            database: geo.database.as_ref().map(|p| base.join(p)),
            overrides_file: geo.overrides_file.as_ref().map(|p| base.join(p)),
            datacenters,
            ..GeoConfig::default()
        };
        cfg.order = geo.order.as_deref().map(|o| parse_order(o, geo.nearest_limit, &Key::new("geo.order"))).transpose()?;

        let dcs_now = cfg.datacenters.clone();
        let dc_list = |key: &Key, names: &[String]| -> Result<Vec<DcIndex>, ConfigError> {
            let mut out = Vec::new();
            for (at, n) in names.iter().enumerate() {
                let i = dcs_now.iter().position(|d| &d.name == n).ok_or_else(|| key.item(at).err(format!("unknown data centre {n:?}")))? as DcIndex;
                if out.contains(&i) {
                    return Err(key.item(at).err(format!("data centre {n:?} listed twice")));
                }
                out.push(i);
            }
            Ok(out)
        };
        let all: Vec<DcIndex> = (0..cfg.datacenters.len() as DcIndex).collect();
        cfg.map.default = match &geo.map.default {
            Some(d) => dc_list(&Key::new("geo.map.default"), d)?,
            None => all,
        };
        type Table<'t> = (&'t str, &'t BTreeMap<String, Vec<String>>, fn(String) -> RegionRef);
        let tables: [Table; 4] = [
            ("continent", &geo.map.continent, |k| RegionRef::Continent(k.to_ascii_uppercase())),
            ("country", &geo.map.country, |k| RegionRef::Country(k.to_ascii_uppercase())),
            ("subdivision", &geo.map.subdivision, |k| RegionRef::Subdivision(k.to_ascii_uppercase())),
            ("city", &geo.map.city, RegionRef::City),
        ];
        for (kind, table, mk) in tables {
            for (k, v) in table {
                let list = dc_list(&Key::new("geo.map").at(kind).at(k), v)?;
                cfg.map.entries.insert(mk(k.clone()), list);
            }
        }
        cfg.networks = parse_networks(&geo.networks, &cfg, &Key::new("geo.networks"))?;
        for (i, f) in geo.fenced.iter().enumerate() {
            let key = Key::new("geo.fenced").item(i);
            let r = RegionRef::parse(f).map_err(|e| key.err(e))?;
            if cfg.map.get(&r).is_none() {
                return Err(key.err(format!("region {r} is not in [geo.map]")));
            }
            cfg.fenced.push(r);
        }

        // Per data centre: service name → its entry (one parse per entry, not per lookup).
        let mut dc_entries: Vec<HashMap<Name, &DcServiceSpec>> = Vec::with_capacity(dcs.len());
        let service_names: std::collections::HashSet<Name> = services.keys().filter_map(|k| Name::from_text(k)).collect();
        for (dc, d) in dcs {
            let mut m = HashMap::new();
            for (svc, spec) in &d.services {
                let key = Key::new("datacenters").at(dc).at("services").at(svc);
                let n = Name::from_text(svc).ok_or_else(|| key.err("not a domain name"))?;
                // Every data centre's service entries must name a configured service.
                if !service_names.contains(&n) {
                    return Err(key.err(format!("{svc:?} is not in [services]")));
                }
                m.insert(n, spec);
            }
            dc_entries.push(m);
        }
        for (name, s) in services {
            cfg.services.push(parse_service(name, s, dcs, &dc_entries, &cfg)?);
        }
        Ok(cfg)
    }
}

fn parse_order(o: &str, limit: Option<usize>, key: &Key) -> Result<OrderMode, ConfigError> {
    match o {
        "map" => Ok(OrderMode::Map),
        "nearest" => Ok(OrderMode::Nearest { limit: limit.unwrap_or(MAX_DATACENTERS).max(1) }),
        _ => Err(key.err(format!("{o:?}: expected \"map\" or \"nearest\""))),
    }
}

/// Parses CIDR → target overrides (`key`: `geo.networks`, or `networks` in the overrides file).
pub fn parse_networks(nets: &BTreeMap<String, OverrideSpec>, cfg: &GeoConfig, key: &Key) -> Result<Vec<(IpNet, OverrideTarget)>, ConfigError> {
    let mut out = Vec::new();
    for (cidr, target) in nets {
        let key = key.at(cidr);
        let net: IpNet = cidr
            .parse()
            .or_else(|_| cidr.parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| key.err(format!("{cidr:?} is not a network (CIDR)")))?;
        if net != net.trunc() {
            return Err(key.err(format!("{cidr:?} has host bits set (did you mean {}?)", net.trunc())));
        }
        let t = match target {
            OverrideSpec::Region(r) => {
                let r = RegionRef::parse(r).map_err(|e| key.err(e))?;
                if cfg.map.get(&r).is_none() {
                    return Err(key.err(format!("region {r} is not in [geo.map]")));
                }
                OverrideTarget::Region(r)
            }
            OverrideSpec::Datacenters(list) => {
                let mut v = Vec::new();
                for (i, n) in list.iter().enumerate() {
                    v.push(cfg.dc_index(n).ok_or_else(|| key.item(i).err(format!("unknown data centre {n:?}")))?);
                }
                OverrideTarget::Datacenters(v)
            }
        };
        out.push((net, t));
    }
    Ok(out)
}

/// Reads the network overrides file (`geo.overrides-file`: a `[networks]` table). Problems
/// carry the file and the offending key's line (0 when the file cannot be read).
pub fn load_overrides(path: &Path, cfg: &GeoConfig) -> Result<Vec<(IpNet, OverrideTarget)>, Vec<Problem>> {
    let problem = |line, msg| vec![Problem { file: path.to_path_buf(), line, msg }];
    let text = std::fs::read_to_string(path).map_err(|e| problem(0, format!("cannot read overrides: {e}")))?;
    let spec: super::file::OverridesFile = super::file::parse_as(&text).map_err(|(line, msg)| problem(line, msg))?;
    parse_networks(&spec.networks, cfg, &Key::new("networks")).map_err(|e| problem(e.line_in(&text), e.to_string()))
}

fn parse_service(
    name: &str,
    s: &ServiceSpec,
    dcs: &BTreeMap<String, super::file::DatacenterSpec>,
    dc_entries: &[HashMap<Name, &DcServiceSpec>],
    cfg: &GeoConfig,
) -> Result<ServiceConfig, ConfigError> {
    let key = Key::new("services").at(name);
    let n = Name::from_text(name).ok_or_else(|| key.err("not a domain name"))?;
    let policy = match s.policy.as_deref().unwrap_or("failover") {
        "failover" => Policy::Failover,
        "nearest-n" => Policy::NearestN(NEAREST_N.at_least_min(s.n.unwrap_or(NEAREST_N.default))),
        "weighted" => Policy::Weighted,
        p => return Err(key.at("policy").err(format!("{p:?}: expected failover, nearest-n or weighted"))),
    };
    let mut per_dc = vec![DcAnswer::default(); cfg.datacenters.len()];
    for (i, dc) in dcs.keys().enumerate() {
        let Some(spec) = dc_entries[i].get(&n) else { continue };
        // The entry is keyed by the text written there (which may differ in case or a trailing dot).
        let written = dcs[dc].services.keys().find(|k| Name::from_text(k).as_ref() == Some(&n)).map_or(name, String::as_str);
        let dkey = Key::new("datacenters").at(dc).at("services").at(written);
        let ans = parse_dc_answer(spec, &dkey, true)?;
        if ans.is_empty() {
            return Err(dkey.err("no addresses and no cname"));
        }
        per_dc[i] = ans;
    }
    if per_dc.iter().all(DcAnswer::is_empty) {
        return Err(key.err("no data centre serves it (add it under [datacenters.NAME.services])"));
    }
    let weights = if s.weights.is_empty() {
        if policy == Policy::Weighted {
            return Err(key.at("policy").err(format!("weighted needs [services.{name:?}.weights]")));
        }
        None
    } else {
        let all_ips = s.weights.keys().all(|k| k.parse::<IpAddr>().is_ok());
        if all_ips {
            Some(Weights::Address(s.weights.iter().map(|(k, v)| (k.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), *v)).collect()))
        } else {
            let mut w = vec![0u32; cfg.datacenters.len()];
            for (k, v) in &s.weights {
                let i = cfg.dc_index(k).ok_or_else(|| key.at("weights").at(k).err(format!("{k:?} is neither a data centre nor (with all other keys) an address")))?;
                w[i as usize] = *v;
            }
            Some(Weights::Datacenter(w))
        }
    };
    if let (Policy::NearestN(k), true) = (policy, cfg.datacenters.len() > 12) {
        let subsets = binomial(cfg.datacenters.len(), k);
        if subsets > MAX_SUBSETS_PER_SERVICE {
            return Err(key.at("n").err(format!("nearest-n with n = {k} over {} data centres has too many combinations", cfg.datacenters.len())));
        }
    }
    let order = s.order.as_deref().map(|o| parse_order(o, None, &key.at("order"))).transpose()?;
    let order = match (order, cfg.order) {
        (Some(OrderMode::Nearest { .. }), Some(OrderMode::Nearest { limit })) => Some(OrderMode::Nearest { limit }),
        (o, _) => o,
    };
    let ttl = s.ttl.map_or(SERVICE_TTL, |t| t.0);
    let failover_ttl = s.failover_ttl.map_or(ttl.min(FAILOVER_TTL), |t| t.0);
    if failover_ttl > ttl {
        return Err(key.at("failover-ttl").err(format!("{failover_ttl} is longer than ttl {ttl}")));
    }
    let all_down = parse_all_down(&key, s.all_down.as_deref(), s.fallback.as_ref())?;
    let serves = |d: &DcIndex| !per_dc[*d as usize].is_empty();
    let transfer = match s.transfer.as_deref() {
        // The default region's first data centre that serves it, else the first that does.
        None => cfg.map.default.iter().copied().find(serves).or_else(|| (0..per_dc.len() as DcIndex).find(serves)),
        Some("omit") => None,
        Some(dc) => match cfg.dc_index(dc) {
            Some(d) if serves(&d) => Some(d),
            Some(_) => return Err(key.at("transfer").err(format!("data centre {dc:?} does not serve this name"))),
            None => return Err(key.at("transfer").err(format!("{dc:?} is neither \"omit\" nor a data centre"))),
        },
    };
    Ok(ServiceConfig { name: n, ttl, policy, order, per_dc, weights, failover_ttl, all_down, transfer })
}

/// What one data centre, or the all-down fallback, answers (`key`: where it is written):
/// addresses, or a CNAME target. With `exclusive`, not both.
fn parse_dc_answer(spec: &DcServiceSpec, key: &Key, exclusive: bool) -> Result<DcAnswer, ConfigError> {
    let (addrs, cname, akey) = match spec {
        DcServiceSpec::Addresses(a) => (a, None, key.clone()),
        DcServiceSpec::Detailed(d) => (&d.addresses, d.cname.as_ref(), key.at("addresses")),
    };
    let mut ans = DcAnswer::default();
    for (at, a) in addrs.iter().enumerate() {
        match a.parse::<IpAddr>() {
            Ok(IpAddr::V4(v)) => ans.v4.push(v),
            Ok(IpAddr::V6(v)) => ans.v6.push(v),
            Err(_) => return Err(akey.item(at).err(format!("{a:?} is not an IP address"))),
        }
    }
    if let Some(c) = cname {
        if exclusive && (!ans.v4.is_empty() || !ans.v6.is_empty()) {
            return Err(key.err("addresses and cname are exclusive"));
        }
        ans.cname = Some(Name::from_text(c).ok_or_else(|| key.at("cname").err(format!("bad cname {c:?}")))?);
    }
    Ok(ans)
}

/// Parses `all-down` and `fallback` of a service (`key`: `services."NAME"`).
fn parse_all_down(key: &Key, all_down: Option<&str>, fallback: Option<&DcServiceSpec>) -> Result<AllDown, ConfigError> {
    match all_down.unwrap_or("serve-all") {
        "serve-all" => Ok(AllDown::ServeAll),
        "nodata" => Ok(AllDown::NoData),
        "fallback" => {
            let f = fallback.ok_or_else(|| key.at("all-down").err("\"fallback\" needs `fallback`"))?;
            let fkey = key.at("fallback");
            let ans = parse_dc_answer(f, &fkey, false)?;
            if ans.is_empty() {
                return Err(fkey.err("is empty"));
            }
            Ok(AllDown::Fallback(ans))
        }
        other => Err(key.at("all-down").err(format!("{other:?}: expected serve-all, fallback or nodata"))),
    }
}

fn binomial(n: usize, k: usize) -> usize {
    let k = k.min(n);
    (0..k).fold(1usize, |acc, i| acc.saturating_mul(n - i) / (i + 1))
}
