//! Validated health-check config: the unique checks, and which data centre, service
//! and address each one decides.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::access::{self, Secret};
use super::error::{ConfigError, Key};
use super::defaults::{CHECK_FALL, CHECK_INTERVAL, CHECK_MAX_CONCURRENT, CHECK_RISE, CHECK_TIMEOUT, DENY_NETWORKS};
use super::file::{CheckSpec, DatacenterSpec, HealthSpec, ServiceSpec, StatusSpec};
use super::geo::GeoConfig;
use crate::wire::Name;

/// Which HTTP status codes count as healthy.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StatusSet {
    Codes(Vec<u16>),
    /// `2xx` → 2.
    Class(u16),
}

impl StatusSet {
    pub fn contains(&self, code: u16) -> bool {
        match self {
            StatusSet::Codes(c) => c.contains(&code),
            StatusSet::Class(k) => code / 100 == *k,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CheckKind {
    Http { tls: bool, method: String, path: String, host: Option<String>, expect: StatusSet, body: Option<String>, insecure: bool },
    Tcp,
}

/// One unique probe. Identical checks configured in several places are one `Check`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Check {
    pub kind: CheckKind,
    pub target: SocketAddr,
    pub interval: Duration,
    pub timeout: Duration,
    pub fall: u32,
    pub rise: u32,
    /// Only these vantage points probe it (None: every instance).
    pub vantage_points: Option<Vec<String>>,
}

impl Check {
    /// Whether the instance at `vantage` probes this target itself.
    pub fn probed_from(&self, vantage: &str) -> bool {
        self.vantage_points.as_ref().is_none_or(|v| v.iter().any(|x| x == vantage))
    }
}

impl Check {
    /// A readable, unique name: `http://127.0.0.1:8081/healthz`, `tcp://[2001:db8::1]:443`.
    pub fn id(&self) -> String {
        match &self.kind {
            CheckKind::Http { tls, path, host, .. } => {
                let scheme = if *tls { "https" } else { "http" };
                match host {
                    Some(h) => format!("{scheme}://{}{path} (Host: {h})", self.target),
                    None => format!("{scheme}://{}{path}", self.target),
                }
            }
            CheckKind::Tcp => format!("tcp://{}", self.target),
        }
    }
}

/// What decides one service in one data centre.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum ServiceDcCheck {
    #[default]
    None,
    /// The whole (service, data centre) follows one check.
    Whole(usize),
    /// Each answered address follows its own check.
    PerAddress(Vec<(IpAddr, usize)>),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct HealthConfig {
    pub state_file: Option<PathBuf>,
    pub admin_token: Option<Secret>,
    /// Opens the read endpoints; None: they are open.
    pub read_token: Option<Secret>,
    pub max_concurrent: usize,
    pub checks: Vec<Check>,
    /// Per data centre: the check the whole data centre follows.
    pub dc_checks: Vec<Option<usize>>,
    /// `[service][data centre]`.
    pub service_checks: Vec<Vec<ServiceDcCheck>>,
    /// Check → index, while building (identical checks run once).
    interned: std::collections::HashMap<Check, usize>,
}

struct Defaults {
    interval: Duration,
    timeout: Duration,
    fall: u32,
    rise: u32,
}

impl HealthConfig {
    pub fn from_spec(
        spec: &HealthSpec,
        dcs: &BTreeMap<String, DatacenterSpec>,
        services: &BTreeMap<String, ServiceSpec>,
        geo: &GeoConfig,
        base: &Path,
    ) -> Result<HealthConfig, ConfigError> {
        let defaults = Defaults {
            interval: spec.interval.map_or(CHECK_INTERVAL.default, |d| d.0),
            timeout: spec.timeout.map_or(CHECK_TIMEOUT, |d| d.0),
            fall: CHECK_FALL.at_least_min(spec.fall.unwrap_or(CHECK_FALL.default)),
            rise: CHECK_RISE.at_least_min(spec.rise.unwrap_or(CHECK_RISE.default)),
        };
        let mut h = HealthConfig {
            state_file: spec.state_file.as_ref().map(|p| base.join(p)),
            admin_token: access::secret(spec.admin_token.as_deref(), spec.admin_token_file.as_deref(), "health.admin-token", base)?,
            read_token: access::secret(spec.read_token.as_deref(), spec.read_token_file.as_deref(), "health.read-token", base)?,
            max_concurrent: CHECK_MAX_CONCURRENT.at_least_min(spec.max_concurrent.unwrap_or(CHECK_MAX_CONCURRENT.default)),
            dc_checks: vec![None; geo.datacenters.len()],
            service_checks: vec![vec![ServiceDcCheck::None; geo.datacenters.len()]; geo.services.len()],
            checks: Vec::new(),
            interned: std::collections::HashMap::new(),
        };
        let by_name: std::collections::HashMap<Name, (&String, &ServiceSpec)> =
            services.iter().filter_map(|(k, v)| Name::from_text(k).map(|n| (n, (k, v)))).collect();
        let deny_key = Key::new("health.deny-networks");
        let deny: Vec<ipnet::IpNet> = match &spec.deny_networks {
            Some(v) => v.iter().enumerate().map(|(i, n)| n.parse().map_err(|_| deny_key.item(i).err(format!("{n:?} is not a network")))).collect::<Result<_, _>>()?,
            // never panics: the defaults are valid networks (tested in defaults).
            None => DENY_NETWORKS.iter().map(|n| n.parse().expect("valid default")).collect(),
        };
        // Per check: the key that chose its address (where it was first configured), for
        // errors found after interning.
        let mut check_keys: Vec<Key> = Vec::new();
        for (i, (name, dc)) in dcs.iter().enumerate() {
            if let Some(c) = &dc.check {
                let key = Key::new("datacenters").at(name).at("check");
                let addr = c.address.as_deref().ok_or_else(|| key.err("a data-centre check needs `address`"))?;
                let addr: IpAddr = addr.parse().map_err(|_| key.at("address").err(format!("{addr:?} is not an IP address")))?;
                let check = build_check(c, addr, &defaults, &key)?;
                h.dc_checks[i] = Some(h.intern(check, &key.at("address"), &mut check_keys));
            }
        }
        for (si, svc) in geo.services.iter().enumerate() {
            let Some(&(sname, spec)) = by_name.get(&svc.name) else { continue };
            let Some(c) = &spec.check else { continue };
            let key = Key::new("services").at(sname).at("check");
            let address_key = if c.address.is_some() { key.at("address") } else { key.clone() };
            for (di, ans) in svc.per_dc.iter().enumerate() {
                if ans.is_empty() {
                    continue;
                }
                let addrs: Vec<IpAddr> = ans.v4.iter().map(|&a| IpAddr::from(a)).chain(ans.v6.iter().map(|&a| IpAddr::from(a))).collect();
                let explicit = c
                    .address
                    .as_deref()
                    .map(|a| a.parse::<IpAddr>().map_err(|_| key.at("address").err(format!("{a:?} is not an IP address"))))
                    .transpose()?;
                h.service_checks[si][di] = if c.per_address.unwrap_or(false) {
                    if addrs.is_empty() {
                        return Err(key.at("per-address").err(format!("per-address checks need addresses, but {} answers with a CNAME", geo.datacenters[di].name)));
                    }
                    let mut v = Vec::new();
                    for a in addrs {
                        let id = h.intern(build_check(c, a, &defaults, &key)?, &key, &mut check_keys);
                        v.push((a, id));
                    }
                    ServiceDcCheck::PerAddress(v)
                } else {
                    let a = explicit
                        .or(addrs.first().copied())
                        .ok_or_else(|| key.err(format!("{} answers with a CNAME; give the check an `address`", geo.datacenters[di].name)))?;
                    ServiceDcCheck::Whole(h.intern(build_check(c, a, &defaults, &key)?, &address_key, &mut check_keys))
                };
            }
        }
        for (c, key) in h.checks.iter().zip(&check_keys) {
            if let Some(n) = deny.iter().find(|n| n.contains(&c.target.ip().to_canonical())) {
                return Err(key.err(format!("health check {} probes {}, which is in a denied network {n} (health.deny-networks)", c.id(), c.target.ip())));
            }
        }
        Ok(h)
    }

    /// Adds a check unless an identical one exists; returns its index. `key` (kept for
    /// the first one) is pushed to `keys`, which is indexed like `checks`.
    fn intern(&mut self, c: Check, key: &Key, keys: &mut Vec<Key>) -> usize {
        if let Some(&i) = self.interned.get(&c) {
            return i;
        }
        self.checks.push(c.clone());
        keys.push(key.clone());
        self.interned.insert(c, self.checks.len() - 1);
        self.checks.len() - 1
    }
}

fn build_check(c: &CheckSpec, addr: IpAddr, d: &Defaults, key: &Key) -> Result<Check, ConfigError> {
    let interval = c.interval.map_or(d.interval, |v| v.0);
    let timeout = c.timeout.map_or(d.timeout, |v| v.0);
    if !CHECK_INTERVAL.contains(interval) {
        // The check's own interval, else the [health] default it took.
        let at = if c.interval.is_some() { key.at("interval") } else { Key::new("health.interval") };
        return Err(at.err(format!("{interval:?}: at least {:?}", CHECK_INTERVAL.min)));
    }
    let kind = match c.kind.as_str() {
        "http" | "https" => {
            let tls = c.kind == "https";
            let expect = match &c.expect_status {
                None => StatusSet::Class(2),
                Some(StatusSpec::Codes(v)) if !v.is_empty() => StatusSet::Codes(v.clone()),
                Some(StatusSpec::Class(s)) if s.len() == 3 && s.ends_with("xx") && s.as_bytes()[0].is_ascii_digit() => {
                    StatusSet::Class((s.as_bytes()[0] - b'0') as u16)
                }
                Some(other) => return Err(key.at("expect-status").err(format!("{other:?}: a list of codes or \"2xx\""))),
            };
            let path = c.path.clone().unwrap_or_else(|| "/".into());
            if !path.starts_with('/') {
                return Err(key.at("path").err(format!("{path:?} must start with /")));
            }
            CheckKind::Http {
                tls,
                method: c.method.clone().unwrap_or_else(|| "GET".into()).to_ascii_uppercase(),
                path,
                host: c.host.clone(),
                expect,
                body: c.expect_body.clone(),
                insecure: c.insecure.unwrap_or(false),
            }
        }
        "tcp" => {
            if c.port.is_none() {
                return Err(key.err("a tcp check needs `port`"));
            }
            CheckKind::Tcp
        }
        other => return Err(key.at("type").err(format!("{other:?}: expected http, https or tcp"))),
    };
    let default_port = match &kind {
        CheckKind::Http { tls: true, .. } => 443,
        _ => 80,
    };
    Ok(Check {
        kind,
        target: SocketAddr::new(addr, c.port.unwrap_or(default_port)),
        interval,
        timeout,
        fall: CHECK_FALL.at_least_min(c.fall.unwrap_or(d.fall)),
        rise: CHECK_RISE.at_least_min(c.rise.unwrap_or(d.rise)),
        vantage_points: c.vantage_points.clone(),
    })
}
