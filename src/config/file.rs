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
    /// Health checking defaults, the state file and the admin token.
    #[serde(default)]
    pub health: HealthSpec,
    /// Other Waypost instances to share health observations with.
    #[serde(default)]
    pub fleet: FleetSpec,
    /// Response rate limiting for UDP.
    #[serde(default)]
    pub rrl: RrlSpec,
}

/// `[rrl]`: response rate limiting (on by default).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RrlSpec {
    /// Responses per second per client prefix and response class (default 200; 0 = off).
    pub rate: Option<u32>,
    /// Every n-th limited response is sent truncated (default 2; 0 = drop all, 1 = truncate all).
    pub slip: Option<u32>,
    pub ipv4_prefix: Option<u8>,
    pub ipv6_prefix: Option<u8>,
    /// Networks never limited (default: loopback).
    pub exempt: Option<Vec<String>>,
}

/// `[fleet]`: this instance's vantage point and its peers.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FleetSpec {
    /// This instance's vantage point (normally its data centre's name).
    pub vantage: Option<String>,
    /// Shared bearer token for peer calls (required when there are peers).
    pub token: Option<String>,
    /// How often peers are pulled (default 1s).
    pub interval: Option<String>,
    /// Observations older than this do not vote (default 3 × interval, at least 3 × the check interval).
    pub stale_after: Option<String>,
    /// Votes needed to call a target down: "majority" (default, strict), a count, or a fraction like 0.5.
    pub quorum: Option<toml::Value>,
    #[serde(default)]
    pub peers: Vec<PeerSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PeerSpec {
    pub name: String,
    /// The peer's HTTP API base URL, e.g. `http://10.0.2.1:8053`.
    pub url: String,
}

/// `[health]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HealthSpec {
    /// Where the last known health state and admin overrides are kept (relative to this file).
    pub state_file: Option<String>,
    /// Bearer token for `/v1/admin/*`; without it the admin endpoints are disabled.
    pub admin_token: Option<String>,
    /// Defaults for every check: "2s", "1s", 3, 2.
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub fall: Option<u32>,
    pub rise: Option<u32>,
    /// Probes in flight at once (default 64).
    pub max_concurrent: Option<usize>,
    /// Networks checks may never probe (default: link-local and cloud metadata addresses).
    pub deny_networks: Option<Vec<String>>,
}

/// A health check: `[services."NAME".check]` (every data centre serving it) or
/// `[datacenters.NAME.check]` (the whole data centre follows it).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CheckSpec {
    /// "http", "https" or "tcp".
    #[serde(rename = "type")]
    pub kind: String,
    /// Address to probe; default: the address being answered (per-address) or the data
    /// centre's first address for the service.
    pub address: Option<String>,
    pub port: Option<u16>,
    pub path: Option<String>,
    /// Host header (and TLS server name).
    pub host: Option<String>,
    pub method: Option<String>,
    /// `[200, 204]` or `"2xx"` (default "2xx").
    pub expect_status: Option<StatusSpec>,
    /// A substring the body must contain.
    pub expect_body: Option<String>,
    /// Skip TLS certificate verification (https).
    pub insecure: Option<bool>,
    /// Check every answered address on its own (default: one check per data centre).
    pub per_address: Option<bool>,
    /// Only these vantage points probe this target (e.g. internal-only targets); others
    /// take their verdict from the fleet.
    pub vantage_points: Option<Vec<String>>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub fall: Option<u32>,
    pub rise: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum StatusSpec {
    Codes(Vec<u16>),
    Class(String),
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            version: 1,
            server: ServerSpec::default(),
            geo: GeoSpec::default(),
            datacenters: BTreeMap::new(),
            services: BTreeMap::new(),
            health: HealthSpec::default(),
            fleet: FleetSpec::default(),
            rrl: RrlSpec::default(),
        }
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
    /// Regions whose clients are never answered from data centres outside their own list,
    /// even when all of those are down (e.g. `["continent:EU"]`).
    #[serde(default)]
    pub fenced: Vec<String>,
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
    /// One check the whole data centre follows (all its services).
    pub check: Option<CheckSpec>,
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
    /// TTL while failed over or while a chosen site is wavering (default: min(ttl, 10)).
    pub failover_ttl: Option<u32>,
    /// When every data centre is down: "serve-all" (default), "fallback" or "nodata".
    pub all_down: Option<String>,
    /// With `all-down = "fallback"`: addresses, or `{ cname = "…" }`.
    pub fallback: Option<DcServiceSpec>,
    /// Checked in every data centre that serves this service.
    pub check: Option<CheckSpec>,
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
    /// Largest UDP response as a multiple of the query size (never below 512); default 40, 0 = off.
    pub udp_max_amplification: Option<u16>,
    /// Concurrent TCP connections, default 1024.
    pub tcp_max_connections: Option<usize>,
    /// Concurrent TCP connections from one address, default 32.
    pub tcp_max_connections_per_client: Option<usize>,
    /// e.g. "10s".
    pub tcp_idle_timeout: Option<String>,
    pub tcp_read_timeout: Option<String>,
    pub tcp_write_timeout: Option<String>,
    /// TXT answer to CH `id.server` / `hostname.bind`; default: `[fleet] vantage` when set,
    /// else the host name; "" turns it off (REFUSED).
    pub identity: Option<String>,
    /// TXT answer to CH `version.bind` / `version.server`; default "Waypost <version>";
    /// "" turns it off (REFUSED).
    pub version: Option<String>,
    /// Name server identifier (RFC 5001) sent to queries with an NSID option; default off.
    pub nsid: Option<String>,
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
