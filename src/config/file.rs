//! The on-disk form of `waypost.toml` (serde). Validation happens in `Config::from_spec`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use super::defaults::MAX_TTL;
use super::duration::parse_duration;

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
    /// DNSSEC: checks of signed zones.
    #[serde(default)]
    pub dnssec: DnssecSpec,
    /// TSIG keys for transfers and NOTIFY.
    #[serde(default)]
    pub tsig: TsigSpec,
    /// Outgoing zone transfers and NOTIFY.
    #[serde(default)]
    pub transfer: TransferSpec,
    /// Zones received by transfer from a primary, by apex.
    #[serde(default)]
    pub secondary: BTreeMap<String, SecondarySpec>,
}

/// `[tsig]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TsigSpec {
    /// Key name → "algorithm:base64-secret", as `keymgr -t` and `tsig-keygen` print them.
    #[serde(default)]
    pub keys: BTreeMap<String, String>,
}

/// `[transfer]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TransferSpec {
    /// Who may AXFR/IXFR: a network and, optionally, the TSIG key it must sign with.
    #[serde(default)]
    pub allow: Vec<AllowSpec>,
    /// Told of every serial change.
    #[serde(default)]
    pub notify: Vec<NotifySpec>,
    /// Serial changes kept per zone for IXFR (default 16).
    pub history: Option<usize>,
    /// How long a transfer from a primary may take (default 60s).
    pub timeout: Option<DurationSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AllowSpec {
    pub network: String,
    pub key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NotifySpec {
    pub address: String,
    pub key: Option<String>,
}

/// `[secondary."ZONE."]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SecondarySpec {
    /// The primary's address (port 53 when not given).
    pub primary: String,
    /// TSIG key for SOA queries, transfers and the primary's NOTIFY.
    pub key: Option<String>,
    /// Where the received copy is kept, relative to this file (default
    /// `secondary/ZONE.zone`).
    pub file: Option<String>,
}

/// `[dnssec]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DnssecSpec {
    /// A signed zone whose signatures expire within this time loads with a warning
    /// (default 3 days).
    pub signature_expiry_warning: Option<DurationSpec>,
    /// Folder of BIND key files (`K<zone>.+<alg>+<tag>.key/.private`), relative to this
    /// file; a zone with a key here is signed by Waypost.
    pub key_dir: Option<String>,
    /// "nsec" (default), "nsec3" (0 iterations, no salt) or "compact" (RFC 9824) for
    /// zones Waypost signs.
    pub denial: Option<String>,
    /// Compact denial: signatures per second each thread may make on the query path;
    /// past it a UDP query gets TC=1 (default 2000).
    pub compact_signing_rate: Option<u32>,
    /// From a window's start to its signatures' expiration (default 21 days).
    pub signature_validity: Option<DurationSpec>,
    /// How often signatures are made again (default 7 days; windows start at multiples
    /// of it since the epoch, so instances of a fleet agree).
    pub signature_refresh: Option<DurationSpec>,
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
    /// Shared bearer token for peer calls (required when there are peers); it opens
    /// `/v1/peer/observations` only.
    pub token: Option<String>,
    /// The peer token read from this file instead (relative to this file).
    pub token_file: Option<String>,
    /// PEM bundle that `https://` peers' certificates must chain to (default: the system roots).
    pub ca: Option<String>,
    /// PEM certificate (chain) and key this instance presents to its peers.
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
    /// PEM bundle: with it, the HTTPS listener requires a client certificate issued by it.
    pub client_ca: Option<String>,
    /// How often peers are pulled (default 1s).
    pub interval: Option<DurationSpec>,
    /// Observations older than this do not vote (default 3 × interval, at least 3 × the check interval).
    pub stale_after: Option<DurationSpec>,
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
    /// Bearer token for `/v1/admin/*` and `/v1/reload`; without it the admin endpoints are disabled.
    pub admin_token: Option<String>,
    /// The admin token read from this file instead (relative to this file).
    pub admin_token_file: Option<String>,
    /// Bearer token for `/v1/status`, the page, `/v1/lookup` and `/metrics`; without it they are open.
    pub read_token: Option<String>,
    pub read_token_file: Option<String>,
    /// Defaults for every check: "2s", "1s", 3, 2.
    pub interval: Option<DurationSpec>,
    pub timeout: Option<DurationSpec>,
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
    pub interval: Option<DurationSpec>,
    pub timeout: Option<DurationSpec>,
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
            dnssec: DnssecSpec::default(),
            tsig: TsigSpec::default(),
            transfer: TransferSpec::default(),
            secondary: BTreeMap::new(),
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
    /// TTL of answers: seconds or a duration like "5m" (default 300).
    pub ttl: Option<TtlSpec>,
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
    pub failover_ttl: Option<TtlSpec>,
    /// When every data centre is down: "serve-all" (default), "fallback" or "nodata".
    pub all_down: Option<String>,
    /// With `all-down = "fallback"`: addresses, or `{ cname = "…" }`.
    pub fallback: Option<DcServiceSpec>,
    /// Checked in every data centre that serves this service.
    pub check: Option<CheckSpec>,
    /// What zone transfers carry for this name: a data centre's configured answer
    /// (default: the default region's first), or "omit".
    pub transfer: Option<String>,
}

/// `[server]`: listeners, zones and transport limits. Defaults are in `config::defaults`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServerSpec {
    /// DNS listen addresses (UDP and TCP), default `["127.0.0.1:1053"]`.
    pub dns_listen: Option<Vec<String>>,
    /// HTTP API listen address, default `127.0.0.1:8053`.
    pub http_listen: Option<String>,
    /// PEM certificate chain and private key: with both, the HTTP API speaks HTTPS only.
    pub http_tls_cert: Option<String>,
    pub http_tls_key: Option<String>,
    /// Zones directory, relative to this file; default `zones`.
    pub zones_dir: Option<String>,
    /// UDP worker threads per listen address; 0 = one per core.
    pub udp_workers: Option<usize>,
    /// Largest UDP response in bytes, 512..=4096, default 1232.
    pub udp_max_payload: Option<u16>,
    /// Largest UDP response as a multiple of the query size (never below 512); default 40, 0 = off.
    pub udp_max_amplification: Option<u16>,
    /// TCP threads (each with its own single-threaded runtime); 0 = one per CPU, at most 4.
    pub tcp_threads: Option<usize>,
    /// Concurrent TCP connections, default 1024.
    pub tcp_max_connections: Option<usize>,
    /// Concurrent TCP connections from one address, default 32.
    pub tcp_max_connections_per_client: Option<usize>,
    /// Seconds or a duration like "10s".
    pub tcp_idle_timeout: Option<DurationSpec>,
    pub tcp_read_timeout: Option<DurationSpec>,
    pub tcp_write_timeout: Option<DurationSpec>,
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
    /// Where Waypost keeps what must survive a restart (the last served serial of every
    /// zone), relative to this file; default: nothing kept.
    pub state_dir: Option<String>,
    /// How Waypost picks a serial when what a zone serves changed and the file's serial
    /// is not higher: "increment" (default), "unixtime" or "dateserial" (as Knot's).
    pub serial_policy: Option<String>,
}

/// Parses TOML text; errors are (line, message), the line 0 when none applies.
pub fn parse(text: &str) -> Result<Spec, (usize, String)> {
    parse_as::<Spec>(text)
}

/// Parses any of the TOML file types; errors are (line, message), the line 0 when none
/// applies. A bad value's message starts with its key (`toml` gives only its position).
pub fn parse_as<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, (usize, String)> {
    toml::from_str::<T>(text).map_err(|e| {
        let Some(span) = e.span() else { return (0, e.message().to_string()) };
        let msg = match super::error::key_at(text, span.start) {
            Some(k) => format!("{k}: {}", e.message()),
            None => e.message().to_string(),
        };
        (super::error::line_at(text, span.start), msg)
    })
}

/// A duration key: whole seconds (`30`) or a duration string (`"10s"`, `"1h30m"`, `"250ms"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationSpec(pub Duration);

/// A TTL key: whole seconds (`300`) or a duration string (`"5m"`, `"1h30m"`), at most
/// 2^31 - 1 seconds (RFC 2181 §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtlSpec(pub u32);

impl<'de> Deserialize<'de> for DurationSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SecondsOrText("a duration: seconds or a string like \"10s\", \"1h30m\", \"250ms\"", |v| match v {
            Ok(secs) => Ok(Duration::from_secs(secs)),
            Err(text) => parse_duration(text),
        }))
        .map(DurationSpec)
    }
}

impl<'de> Deserialize<'de> for TtlSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SecondsOrText("a TTL: seconds or a string like \"5m\", \"1h30m\"", |v| {
            let secs = match v {
                Ok(secs) => secs,
                Err(text) => {
                    let d = parse_duration(text)?;
                    if d.subsec_nanos() != 0 {
                        return Err(format!("TTL {text:?} is not whole seconds"));
                    }
                    d.as_secs()
                }
            };
            u32::try_from(secs).ok().filter(|&s| s <= MAX_TTL).ok_or_else(|| format!("TTL {secs} is more than {MAX_TTL} seconds (RFC 2181 §8)"))
        }))
        .map(TtlSpec)
    }
}

/// Visits an integer (seconds, `Ok`) or a string (`Err`) and converts it with the function.
struct SecondsOrText<T>(&'static str, fn(Result<u64, &str>) -> Result<T, String>);

impl<T> serde::de::Visitor<'_> for SecondsOrText<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.0)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<T, E> {
        (self.1)(Ok(v)).map_err(E::custom)
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<T, E> {
        let secs = u64::try_from(v).map_err(|_| E::custom(format!("{v} is negative")))?;
        self.visit_u64(secs)
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
        (self.1)(Err(v)).map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct T {
        d: Option<DurationSpec>,
        ttl: Option<TtlSpec>,
    }

    fn t(text: &str) -> Result<T, (usize, String)> {
        parse_as::<T>(text)
    }

    #[test]
    fn durations_are_seconds_or_text() {
        // The text forms are config::duration's; here: both TOML types reach it.
        assert_eq!(t("d = \"1h 30m\"").unwrap().d, Some(DurationSpec(Duration::from_secs(5400))));
        assert_eq!(t("d = \"250ms\"").unwrap().d, Some(DurationSpec(Duration::from_millis(250))));
        assert_eq!(t("d = 30").unwrap().d, Some(DurationSpec(Duration::from_secs(30))));
        assert!(t("d = \"5x\"").unwrap_err().1.starts_with("d: \"5x\": unknown unit"));
    }

    #[test]
    fn ttls_are_whole_seconds_that_fit() {
        assert_eq!(t("ttl = 300").unwrap().ttl, Some(TtlSpec(300)));
        assert_eq!(t("ttl = \"5m\"").unwrap().ttl, Some(TtlSpec(300)));
        assert_eq!(t("ttl = \"1h30m\"").unwrap().ttl, Some(TtlSpec(5400)));
        assert_eq!(t("ttl = 2147483647").unwrap().ttl, Some(TtlSpec(MAX_TTL)));
        for (text, want) in [
            ("ttl = \"1500ms\"", "ttl: TTL \"1500ms\" is not whole seconds"),
            ("ttl = 2147483648", "ttl: TTL 2147483648 is more than 2147483647 seconds (RFC 2181 §8)"),
            ("ttl = \"10000w\"", "ttl: TTL 6048000000 is more than"),
            ("ttl = -1", "ttl: -1 is negative"),
            ("ttl = \"soon\"", "ttl: \"soon\" is not a duration"),
            ("ttl = 1.5", "ttl: invalid type: floating point `1.5`, expected a TTL: seconds or a string"),
        ] {
            let err = t(&format!("d = 1\n{text}\n")).unwrap_err();
            assert_eq!(err.0, 2, "{err:?}");
            assert!(err.1.starts_with(want), "{text}: want {want:?}, got {:?}", err.1);
        }
    }
}
