//! The on-disk form of `waypost.toml` (serde). Validation happens in `Config::from_spec`.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Spec {
    /// Format version; must be 1.
    pub version: u32,
    #[serde(default)]
    pub server: ServerSpec,
    /// Client location: database, network overrides, and the location → data-centre map.
    #[serde(default)]
    pub geo: GeoSpec,
    /// Data centres by name.
    #[serde(default)]
    pub datacenters: BTreeMap<String, DatacenterSpec>,
    /// Geo-routed names by fully qualified name.
    #[serde(default)]
    pub services: BTreeMap<String, ServiceSpec>,
}

impl Default for Spec {
    fn default() -> Self {
        Spec { version: 1, server: ServerSpec::default(), geo: GeoSpec::default(), datacenters: BTreeMap::new(), services: BTreeMap::new() }
    }
}

/// `[geo]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct GeoSpec {
    /// MaxMind DB file (GeoIP2/GeoLite2 City or Country, DB-IP country lite), relative to this file.
    pub database: Option<String>,
    /// A TOML file of more network overrides (`[networks]` table), reloaded with the rest.
    pub overrides_file: Option<String>,
    /// "map" (default): the location map decides; "nearest": order by distance from the client.
    pub order: Option<String>,
    /// With `order = "nearest"`: how many data centres the order keeps (default: all).
    pub nearest_limit: Option<usize>,
    /// Location → ordered data centres.
    #[serde(default)]
    pub map: MapSpec,
    /// CIDR → region (`"continent:EU"`, `"country:DE"`, `"subdivision:US-CA"`,
    /// `"city:GB/London"`, `"default"`) or a list of data centres.
    #[serde(default)]
    pub networks: BTreeMap<String, OverrideTarget>,
}

/// `[geo.map]`: most specific wins: city, subdivision, country, continent, default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MapSpec {
    pub default: Option<Vec<String>>,
    #[serde(default)]
    pub continent: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub country: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub subdivision: BTreeMap<String, Vec<String>>,
    /// Keyed `"CC/City name"` (English name), e.g. `"GB/London"`.
    #[serde(default)]
    pub city: BTreeMap<String, Vec<String>>,
}

/// A network override's target.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum OverrideTarget {
    Region(String),
    Datacenters(Vec<String>),
}

/// The overrides file: `[networks]` only.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct OverridesFile {
    #[serde(default)]
    pub networks: BTreeMap<String, OverrideTarget>,
}

/// `[datacenters.NAME]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DatacenterSpec {
    /// `[latitude, longitude]` in degrees.
    pub location: [f64; 2],
    /// Service name → what this data centre answers for it.
    #[serde(default)]
    pub services: BTreeMap<String, DcServiceSpec>,
}

/// What one data centre serves for one service: addresses, or a CNAME target.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum DcServiceSpec {
    Addresses(Vec<String>),
    Detailed(DcServiceDetail),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DcServiceDetail {
    #[serde(default)]
    pub addresses: Vec<String>,
    pub cname: Option<String>,
}

/// `[services."NAME"]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServiceSpec {
    /// TTL of answers, seconds (default 300).
    pub ttl: Option<u32>,
    /// "failover" (default), "nearest-n" or "weighted".
    pub policy: Option<String>,
    /// With `nearest-n`: how many data centres' addresses to answer (default 2).
    pub n: Option<usize>,
    /// With `weighted`: weight per data centre name, or per address (all keys of one kind).
    #[serde(default)]
    pub weights: BTreeMap<String, u32>,
    /// "map" or "nearest": overrides `[geo] order` for this service.
    pub order: Option<String>,
}

/// `[server]`: listeners, zones and transport limits. Defaults are in `config::defaults`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServerSpec {
    /// DNS listen addresses (UDP and TCP), default `["127.0.0.1:1053"]`.
    pub dns_listen: Option<Vec<String>>,
    /// HTTP API listen address, default `127.0.0.1:8053`.
    pub http_listen: Option<String>,
    /// Zones directory, relative to this file; default `zones`.
    pub zones_dir: Option<String>,
    /// UDP worker threads per listen address; 0 = one per core.
    pub udp_workers: Option<usize>,
    /// Largest UDP response in bytes, 512..=4096, default 1232.
    pub udp_max_payload: Option<u16>,
    /// Concurrent TCP connections, default 1024.
    pub tcp_max_connections: Option<usize>,
    /// e.g. "10s".
    pub tcp_idle_timeout: Option<String>,
    pub tcp_read_timeout: Option<String>,
    pub tcp_write_timeout: Option<String>,
    /// Load-time limits.
    pub max_zone_records: Option<usize>,
    pub max_rrset_records: Option<usize>,
}

/// Parses TOML text; errors are (line, message).
pub fn parse(text: &str) -> Result<Spec, (usize, String)> {
    parse_as::<Spec>(text)
}

/// Parses any of the TOML file types; errors are (line, message).
pub fn parse_as<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, (usize, String)> {
    toml::from_str::<T>(text).map_err(|e| {
        let line = e.span().map_or(0, |s| 1 + text[..s.start.min(text.len())].matches('\n').count());
        (line, e.message().to_string())
    })
}
