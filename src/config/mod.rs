//! Configuration: the on-disk TOML form (`file::Spec`) and the validated form (`Config`).
//!
//! `Config::from_spec` is the only place that validates; everything after it trusts
//! `Config`. Unknown keys are rejected with their name; every error names its key and
//! carries the file and the key's line (none for errors about the file as a whole).
//!
//! A leaf: it imports nothing of Waypost but `wire` (names), and owns the types it
//! validates into (`geo`, `health`, `fleet`, `chaos`, `access` (tokens by role, TLS
//! files), the answer, zone-load and RRL settings here), the [`Problem`] every load reports, every limit and default with its
//! reason (`defaults`) and the one duration parser (`duration`).

pub mod access;
pub mod chaos;
pub mod defaults;
pub mod duration;
pub mod error;
pub mod file;
pub mod fleet;
pub mod geo;
pub mod health;
pub mod transfer;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;

pub use chaos::Chaos;
pub use error::{ConfigError, Key, Problem};

/// Settings that shape responses.
#[derive(Clone, Copy, Debug)]
pub struct AnswerSettings {
    /// Largest UDP response we send, whatever the client offers ([`defaults::UDP_MAX_PAYLOAD`]).
    pub udp_max_payload: u16,
    /// Largest UDP response as a multiple of the query's size (never below 512 bytes); 0 = off.
    /// Bounds amplification for UDP without cookies; longer answers get TC and go to TCP.
    pub udp_max_amplification: u16,
    /// Signatures per second each thread may make on the query path for compact denial
    /// (`[dnssec] compact-signing-rate`; TCP threads may make 4 times as many).
    pub compact_signing_rate: u32,
}

impl Default for AnswerSettings {
    fn default() -> Self {
        AnswerSettings {
            udp_max_payload: defaults::UDP_MAX_PAYLOAD.default,
            udp_max_amplification: defaults::UDP_MAX_AMPLIFICATION,
            compact_signing_rate: defaults::COMPACT_SIGNING_RATE.default,
        }
    }
}

/// Limits applied while loading zones.
#[derive(Debug, Clone, Copy)]
pub struct LoadLimits {
    pub max_records: usize,
    pub max_rrset_size: usize,
    /// A signed zone whose RRSIGs expire within this many seconds loads with a warning.
    pub rrsig_expiry_margin: u64,
}

impl Default for LoadLimits {
    fn default() -> Self {
        LoadLimits { max_records: defaults::MAX_ZONE_RECORDS, max_rrset_size: defaults::MAX_RRSET_RECORDS, rrsig_expiry_margin: defaults::RRSIG_EXPIRY_MARGIN }
    }
}

/// How Waypost picks a zone's next serial (`[server] serial-policy`, Knot's choices) when
/// what the zone serves changed and its file's serial is not higher than the last served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SerialPolicy {
    /// The last served serial + 1.
    #[default]
    Increment,
    /// Seconds since the Unix epoch (+ 1 when that is not higher).
    Unixtime,
    /// `YYYYMMDDnn`: the day's first, or the last served + 1.
    Dateserial,
}

/// How zones Waypost signs prove non-existence (`[dnssec] denial`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenialMode {
    Nsec,
    /// 0 iterations, no salt (RFC 9276 §3.1).
    Nsec3,
    /// RFC 9824: every name "exists"; the NSEC of a name that does not is signed per query.
    Compact,
}

/// Signature windows and denial of zones Waypost signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigningPolicy {
    pub denial: DenialMode,
    /// Seconds from a window's start to its signatures' expiration.
    pub validity: u64,
    /// Seconds between window starts: signatures are made again this often.
    pub refresh: u64,
}

/// `[dnssec]` with a key-dir: Waypost signs the zones that have keys there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningConfig {
    pub key_dir: PathBuf,
    pub policy: SigningPolicy,
}

/// Response rate limiting (`[rrl]`).
#[derive(Debug, Clone, PartialEq)]
pub struct RrlConfig {
    /// Responses per second per (client prefix, response class); 0 disables RRL.
    pub rate: u32,
    /// Every `slip`-th limited response is sent truncated; 0: none, 1: all.
    pub slip: u32,
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
    pub exempt: Vec<IpNet>,
}

impl Default for RrlConfig {
    fn default() -> Self {
        RrlConfig {
            rate: defaults::RRL_RATE,
            slip: defaults::RRL_SLIP,
            ipv4_prefix: defaults::RRL_IPV4_PREFIX.default,
            ipv6_prefix: defaults::RRL_IPV6_PREFIX.default,
            // never panics: the defaults are valid networks (tested in defaults).
            exempt: defaults::RRL_EXEMPT.iter().map(|n| n.parse().expect("valid default")).collect(),
        }
    }
}

impl RrlConfig {
    fn from_spec(spec: &file::RrlSpec) -> Result<RrlConfig, ConfigError> {
        let mut rrl = RrlConfig::default();
        if let Some(r) = spec.rate {
            rrl.rate = r;
        }
        if let Some(s) = spec.slip {
            rrl.slip = s;
        }
        for (p, limit, key, out) in [
            (spec.ipv4_prefix, defaults::RRL_IPV4_PREFIX, "rrl.ipv4-prefix", &mut rrl.ipv4_prefix),
            (spec.ipv6_prefix, defaults::RRL_IPV6_PREFIX, "rrl.ipv6-prefix", &mut rrl.ipv6_prefix),
        ] {
            if let Some(p) = p {
                if !limit.contains(p) {
                    return Err(Key::new(key).err(format!("{p} is more than {}", limit.max)));
                }
                *out = p;
            }
        }
        if let Some(ex) = &spec.exempt {
            let key = Key::new("rrl.exempt");
            rrl.exempt = ex.iter().enumerate().map(|(i, n)| n.parse().map_err(|_| key.item(i).err(format!("{n:?} is not a network")))).collect::<Result<_, _>>()?;
        }
        Ok(rrl)
    }
}

/// TCP transport limits.
#[derive(Debug, Clone, Copy)]
pub struct TcpLimits {
    pub max_connections: usize,
    pub max_per_client: usize,
    pub idle_timeout: Duration,
    pub read_timeout: Duration,
    pub write_timeout: Duration,
    /// TCP threads (`server.tcp-threads`); 0 = one per CPU, at most 4.
    pub threads: usize,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from (None when built from defaults and flags).
    pub source: Option<PathBuf>,
    pub dns_listen: Vec<SocketAddr>,
    pub http_listen: SocketAddr,
    /// HTTPS for the API (`server.http-tls-cert`/`-key`, `fleet.client-ca`); None: plain HTTP.
    pub http_tls: Option<access::HttpTls>,
    pub zones_dir: PathBuf,
    /// `[server] state-dir`: where the last served serials are kept; None: not kept.
    pub state_dir: Option<PathBuf>,
    pub serial_policy: SerialPolicy,
    pub udp_workers: usize,
    pub answer: AnswerSettings,
    pub tcp: TcpLimits,
    pub load_limits: LoadLimits,
    /// Data centres, location map, overrides and services.
    pub geo: geo::GeoConfig,
    /// Health checks, the state file and the admin token.
    pub health: health::HealthConfig,
    /// This instance's vantage point and its peers.
    pub fleet: fleet::FleetConfig,
    /// Response rate limiting.
    pub rrl: RrlConfig,
    /// Class CH answers: identity and version.
    pub chaos: Chaos,
    /// EDNS name server identifier (RFC 5001); None = not sent.
    pub nsid: Option<Box<[u8]>>,
    /// Zones Waypost signs (`[dnssec] key-dir`); None: it signs none.
    pub signing: Option<SigningConfig>,
    /// TSIG keys, outgoing transfers and NOTIFY, zones received from a primary.
    pub transfer: transfer::TransferConfig,
}

/// Command-line values that override the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// TOML appended to the config file's text before parsing (used by `waypost demo`).
    pub extra_toml: Option<String>,
    pub zones_dir: Option<PathBuf>,
    pub dns_listen: Vec<SocketAddr>,
    pub http_listen: Option<SocketAddr>,
}

impl Config {
    /// A digest of what answers depend on (data centres, map, services, checks), equal
    /// on every instance of a fleet that runs the same config; not the instance's own
    /// identity, peers or secrets.
    pub fn routing_digest(&self) -> String {
        let mut entries: Vec<String> = self.geo.map.entries.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
        entries.sort();
        let text = format!(
            "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
            self.geo.datacenters, self.geo.map.default, entries, self.geo.services, self.geo.networks, self.geo.fenced, self.health.checks
        );
        format!("{:016x}", fnv1a(text.as_bytes()))
    }

    /// The line of `key` in the config file (0 when there is no file or no such key), for
    /// problems found after validation, e.g. `Key::new("services").at(name)`.
    pub fn line_of(&self, key: &Key) -> usize {
        self.source.as_deref().and_then(|p| std::fs::read_to_string(p).ok()).map_or(0, |text| error::line_of(&text, key))
    }

    /// Defaults only, serving `zones_dir`.
    pub fn default_for_zones(zones_dir: PathBuf) -> Config {
        // never panics: the default spec is valid.
        let mut c = Config::from_spec(file::Spec::default(), Path::new(".")).expect("default config is valid");
        c.zones_dir = zones_dir;
        c
    }

    /// Reads and validates a config file, then applies command-line overrides. Problems
    /// carry the line of the offending key (0: none applies, e.g. the file is missing).
    pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Config, Vec<Problem>> {
        let mut cfg = match path {
            Some(p) => {
                let problem = |line, msg| vec![Problem { file: p.to_path_buf(), line, msg }];
                let mut text = std::fs::read_to_string(p).map_err(|e| problem(0, format!("cannot read config: {e}")))?;
                if let Some(extra) = &overrides.extra_toml {
                    text.push('\n');
                    text.push_str(extra);
                }
                let spec = file::parse(&text).map_err(|(line, msg)| problem(line, msg))?;
                let base = p.parent().map(Path::to_path_buf).unwrap_or_default();
                Config::from_spec(spec, &base).map_err(|e| problem(e.line_in(&text), e.to_string()))?
            }
            None => Config::from_spec(file::Spec::default(), Path::new("."))
                .map_err(|e| vec![Problem { file: PathBuf::from("(defaults)"), line: 0, msg: e.to_string() }])?,
        };
        cfg.source = path.map(Path::to_path_buf);
        if let Some(z) = &overrides.zones_dir {
            cfg.zones_dir = z.clone();
        }
        if !overrides.dns_listen.is_empty() {
            cfg.dns_listen = overrides.dns_listen.clone();
        }
        if let Some(h) = overrides.http_listen {
            cfg.http_listen = h;
        }
        Ok(cfg)
    }

    /// Validates a parsed spec; `base` resolves relative paths (the config file's folder).
    /// Errors name the offending key ([`ConfigError::line_in`] finds its line).
    pub fn from_spec(spec: file::Spec, base: &Path) -> Result<Config, ConfigError> {
        if spec.version != 1 {
            return Err(Key::new("version").err(format!("{} is not supported (expected 1)", spec.version)));
        }
        let geo = geo::GeoConfig::from_spec(&spec.geo, &spec.datacenters, &spec.services, base)?;
        let health = health::HealthConfig::from_spec(&spec.health, &spec.datacenters, &spec.services, &geo, base)?;
        let max_interval = health.checks.iter().map(|c| c.interval).max().unwrap_or(defaults::CHECK_INTERVAL.default);
        let fleet = fleet::FleetConfig::from_spec(&spec.fleet, max_interval, base)?;
        access::check_distinct(&[
            ("health.admin-token", health.admin_token.as_ref()),
            ("fleet.token", fleet.token.as_ref()),
            ("health.read-token", health.read_token.as_ref()),
        ])?;
        let (identity, identity_key) = match (&spec.server.identity, &spec.fleet.vantage) {
            (Some(i), _) => (i.clone(), "server.identity"),
            (None, Some(v)) => (v.clone(), "fleet.vantage"),
            (None, None) => (chaos::host_name(), "server.identity"),
        };
        let version = spec.server.version.clone().unwrap_or_else(|| defaults::VERSION.to_string());
        let chaos = Chaos::new(&identity, &version).map_err(|msg| {
            // Chaos names the key it rejects: server.identity or server.version.
            let (key, detail) = msg.split_once(": ").unwrap_or(("", &msg));
            let key = if key.starts_with("server.identity") { identity_key } else { "server.version" };
            Key::new(key).err(detail)
        })?;
        let nsid = match spec.server.nsid.as_deref() {
            None | Some("") => None,
            Some(n) if n.len() > defaults::MAX_NSID => return Err(Key::new("server.nsid").err(format!("{} bytes, at most {}", n.len(), defaults::MAX_NSID))),
            Some(n) => Some(n.as_bytes().into()),
        };
        let rrl = RrlConfig::from_spec(&spec.rrl)?;
        let expiry_margin = spec.dnssec.signature_expiry_warning.map_or(defaults::RRSIG_EXPIRY_MARGIN, |d| d.0.as_secs());
        let signing = match &spec.dnssec.key_dir {
            None => None,
            Some(dir) => {
                let denial = match spec.dnssec.denial.as_deref() {
                    None | Some("nsec") => DenialMode::Nsec,
                    Some("nsec3") => DenialMode::Nsec3,
                    Some("compact") => DenialMode::Compact,
                    Some(other) => return Err(Key::new("dnssec.denial").err(format!("{other:?}: expected \"nsec\", \"nsec3\" or \"compact\""))),
                };
                let secs = |d: Option<file::DurationSpec>, def: u64| d.map_or(def, |d| d.0.as_secs());
                let validity = secs(spec.dnssec.signature_validity, defaults::SIGNATURE_VALIDITY);
                let refresh = secs(spec.dnssec.signature_refresh, defaults::SIGNATURE_REFRESH);
                if refresh < 3600 || refresh % 3600 != 0 {
                    return Err(Key::new("dnssec.signature-refresh").err("must be whole hours, at least 1h"));
                }
                // Signatures must outlive the next window's start by the margin a cache needs.
                if validity < refresh + 86_400 {
                    return Err(Key::new("dnssec.signature-validity").err(format!("must be at least signature-refresh + 1 day ({}s)", refresh + 86_400)));
                }
                Some(SigningConfig { key_dir: base.join(dir), policy: SigningPolicy { denial, validity, refresh } })
            }
        };
        let transfer = transfer::TransferConfig::from_spec(&spec.tsig, &spec.transfer, &spec.secondary, base)?;
        // A secondary holds no key: it could not sign the denials of a compact zone.
        if signing.as_ref().is_some_and(|s| s.policy.denial == DenialMode::Compact) && !transfer.allow.is_empty() {
            return Err(Key::new("dnssec.denial").err(
                "\"compact\" signs each denial when it is asked for, which a secondary cannot do without the zone's key; zones that secondaries transfer ([transfer] allow) need \"nsec\" or \"nsec3\"",
            ));
        }
        let rate = defaults::COMPACT_SIGNING_RATE;
        let compact_signing_rate = match spec.dnssec.compact_signing_rate {
            None => rate.default,
            Some(r) if rate.contains(r) => r,
            Some(r) => return Err(Key::new("dnssec.compact-signing-rate").err(format!("{r}: from {} to {} signatures per second per thread", rate.min, rate.max))),
        };
        let s = spec.server;
        let key = Key::new("server.dns-listen");
        let dns_listen = s
            .dns_listen
            .unwrap_or_else(|| vec![defaults::DNS_LISTEN.to_string()])
            .iter()
            .enumerate()
            .map(|(i, a)| a.parse::<SocketAddr>().map_err(|e| key.item(i).err(format!("{a:?}: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        if dns_listen.is_empty() {
            return Err(key.err("is empty"));
        }
        let http = s.http_listen.unwrap_or_else(|| defaults::HTTP_LISTEN.to_string());
        let http_listen = http.parse().map_err(|e| Key::new("server.http-listen").err(format!("{http:?}: {e}")))?;
        let client_ca = spec.fleet.client_ca.as_deref().map(|p| access::pem(p, "fleet.client-ca", base)).transpose()?;
        let http_tls = match (&s.http_tls_cert, &s.http_tls_key) {
            (Some(c), Some(k)) => Some(access::HttpTls { cert: access::pem(c, "server.http-tls-cert", base)?, key: access::pem(k, "server.http-tls-key", base)?, client_ca }),
            (None, None) if client_ca.is_some() => return Err(Key::new("fleet.client-ca").err("needs server.http-tls-cert and server.http-tls-key (client certificates are asked for over TLS)")),
            (None, None) => None,
            (Some(_), None) => return Err(Key::new("server.http-tls-cert").err("needs server.http-tls-key too")),
            (None, Some(_)) => return Err(Key::new("server.http-tls-key").err("needs server.http-tls-cert too")),
        };
        let zones_dir = base.join(s.zones_dir.unwrap_or_else(|| defaults::ZONES_DIR.into()));
        let state_dir = s.state_dir.as_deref().map(|d| base.join(d));
        let serial_policy = match s.serial_policy.as_deref() {
            None | Some("increment") => SerialPolicy::Increment,
            Some("unixtime") => SerialPolicy::Unixtime,
            Some("dateserial") => SerialPolicy::Dateserial,
            Some(other) => return Err(Key::new("server.serial-policy").err(format!("{other:?} is not \"increment\", \"unixtime\" or \"dateserial\""))),
        };
        let payload = defaults::UDP_MAX_PAYLOAD;
        let udp_max_payload = s.udp_max_payload.unwrap_or(payload.default);
        if !payload.contains(udp_max_payload) {
            return Err(Key::new("server.udp-max-payload").err(format!("{udp_max_payload} is not in {}..={}", payload.min, payload.max)));
        }
        let (conns, per_client) = (defaults::TCP_MAX_CONNECTIONS, defaults::TCP_MAX_CONNECTIONS_PER_CLIENT);
        let tcp = TcpLimits {
            max_connections: conns.at_least_min(s.tcp_max_connections.unwrap_or(conns.default)),
            max_per_client: per_client.at_least_min(s.tcp_max_connections_per_client.unwrap_or(per_client.default)),
            idle_timeout: s.tcp_idle_timeout.map_or(defaults::TCP_IDLE_TIMEOUT, |d| d.0),
            read_timeout: s.tcp_read_timeout.map_or(defaults::TCP_READ_TIMEOUT, |d| d.0),
            write_timeout: s.tcp_write_timeout.map_or(defaults::TCP_WRITE_TIMEOUT, |d| d.0),
            threads: match s.tcp_threads.unwrap_or(0) {
                n if n <= defaults::MAX_TCP_THREADS => n,
                n => return Err(Key::new("server.tcp-threads").err(format!("{n} is more than {} (0 = one per CPU, at most 4)", defaults::MAX_TCP_THREADS))),
            },
        };
        Ok(Config {
            source: None,
            dns_listen,
            http_listen,
            http_tls,
            zones_dir,
            state_dir,
            serial_policy,
            udp_workers: s.udp_workers.unwrap_or(defaults::UDP_WORKERS),
            answer: AnswerSettings {
                udp_max_payload,
                udp_max_amplification: s.udp_max_amplification.unwrap_or(defaults::UDP_MAX_AMPLIFICATION),
                compact_signing_rate,
            },
            tcp,
            load_limits: LoadLimits {
                max_records: s.max_zone_records.unwrap_or(defaults::MAX_ZONE_RECORDS),
                max_rrset_size: s.max_rrset_records.unwrap_or(defaults::MAX_RRSET_RECORDS),
                rrsig_expiry_margin: expiry_margin,
            },
            geo,
            health,
            fleet,
            rrl,
            chaos,
            nsid,
            signing,
            transfer,
        })
    }
}

/// FNV-1a (64-bit) of `bytes`: a stable hash for digests and ETags that must agree
/// across processes, builds and versions (unlike `std`'s randomised hashers), and for
/// spreading check start times. Not for anything an attacker may choose to collide.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_rejected_with_their_name_and_line() {
        let err = file::parse("version = 1\n[server]\nzones-dir = \"z\"\nbogus-key = 3\n").unwrap_err();
        assert_eq!(err.0, 4, "{err:?}");
        assert!(err.1.contains("bogus-key"), "{err:?}");
    }

    #[test]
    fn defaults_apply_and_paths_are_relative_to_the_file() {
        let spec = file::parse("version = 1\n[server]\nzones-dir = \"z\"\ntcp-idle-timeout = \"3s\"\n").unwrap();
        let cfg = Config::from_spec(spec, Path::new("/etc/waypost")).unwrap();
        assert_eq!(cfg.zones_dir, PathBuf::from("/etc/waypost/z"));
        assert_eq!(cfg.tcp.idle_timeout, Duration::from_secs(3));
        assert_eq!(cfg.answer.udp_max_payload, 1232);
        assert_eq!(cfg.dns_listen, vec!["127.0.0.1:1053".parse::<SocketAddr>().unwrap()]);
    }

    #[test]
    fn checks_cannot_probe_metadata_or_link_local_addresses() {
        let base = "version = 1\n[datacenters.a]\nlocation = [0.0, 0.0]\nservices = { \"w.example.com.\" = [\"192.0.2.1\"] }\n\
                    [services.\"w.example.com.\"]\n[datacenters.a.check]\ntype = \"http\"\nport = 80\n";
        let spec = file::parse(&format!("{base}address = \"169.254.169.254\"\n")).unwrap();
        let err = Config::from_spec(spec, Path::new(".")).unwrap_err().to_string();
        assert!(err.contains("denied network 169.254.0.0/16"), "{err}");
        let spec = file::parse(&format!("{base}address = \"192.0.2.1\"\n")).unwrap();
        assert!(Config::from_spec(spec, Path::new(".")).is_ok());
        let spec = file::parse(&format!("{base}address = \"169.254.169.254\"\n[health]\ndeny-networks = []\n")).unwrap();
        assert!(Config::from_spec(spec, Path::new(".")).is_ok(), "the operator can allow it");
    }

    /// Stable fallback for fuzzing the config: random edits of the example never panic
    /// parsing or validation.
    #[test]
    fn mutated_config_text_never_panics() {
        use rand::{Rng, SeedableRng};
        let base = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/waypost.toml")).unwrap().into_bytes();
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let alphabet = b"[]=\"{},.#\n 0123456789abcdefghijklmnopqrstuvwxyz-/:";
        let mut parsed = 0;
        for _ in 0..2000 {
            let mut t = base.clone();
            for _ in 0..rng.random_range(1..8) {
                let at = rng.random_range(0..t.len());
                match rng.random_range(0..3) {
                    0 => {
                        t.remove(at);
                    }
                    1 => t.insert(at, alphabet[rng.random_range(0..alphabet.len())]),
                    _ => t[at] = alphabet[rng.random_range(0..alphabet.len())],
                }
            }
            let Ok(text) = String::from_utf8(t) else { continue };
            if let Ok(spec) = file::parse(&text) {
                parsed += 1;
                let _ = Config::from_spec(spec, Path::new(env!("CARGO_MANIFEST_DIR")));
            }
        }
        assert!(parsed > 50, "some mutations still parse ({parsed})");
    }

    /// The (line, message) `Config::load` would give for `text`.
    fn problem(text: &str) -> (usize, String) {
        match file::parse(text) {
            Err(e) => e,
            Ok(spec) => {
                let e = Config::from_spec(spec, Path::new(".")).expect_err("config is invalid");
                (e.line_in(text), e.to_string())
            }
        }
    }

    const DC: &str = "version = 1\n[datacenters.ams]\nlocation = [52.37, 4.90]\nservices = { \"w.example.com.\" = [\"192.0.2.1\"] }\n";

    #[test]
    fn validation_errors_carry_the_line_of_their_key() {
        for (text, line, msg) in [
            (format!("{DC}[geo.map.continent]\nNA = [\"ams\"]\nEU = [\"fra\"]\n[services.\"w.example.com.\"]\n"), 7, "geo.map.continent.EU: unknown data centre \"fra\""),
            (format!("{DC}[geo.map]\ndefault = [\n  \"ams\",\n  \"ams\",\n]\n[services.\"w.example.com.\"]\n"), 8, "geo.map.default: data centre \"ams\" listed twice"),
            (format!("{DC}[services.\"w.example.com.\"]\nttl = 30\nfailover-ttl = \"1m\"\n"), 7, "services.\"w.example.com.\".failover-ttl: 60 is longer than ttl 30"),
            (format!("{DC}[services.\"w.example.com.\"]\npolicy = \"random\"\n"), 6, "services.\"w.example.com.\".policy: \"random\": expected failover"),
            (format!("{DC}[services.\"w.example.com.\"]\n[services.\"w.example.com.\".check]\ntype = \"http\"\naddress = \"nope\"\n"), 8, "services.\"w.example.com.\".check.address: \"nope\" is not an IP address"),
            // A check with no address of its own is blamed on the check's table.
            (format!("{DC}[services.\"w.example.com.\"]\n[services.\"w.example.com.\".check]\ntype = \"tcp\"\n"), 6, "services.\"w.example.com.\".check: a tcp check needs `port`"),
            (format!("{DC}[services.\"w.example.com.\"]\n[datacenters.ams.check]\ntype = \"http\"\naddress = \"169.254.169.254\"\n"), 8, "datacenters.ams.check.address: health check http://169.254.169.254:80/ probes 169.254.169.254, which is in a denied network"),
            ("version = 1\n[datacenters.ams]\nlocation = [99.0, 4.90]\n".to_string(), 3, "datacenters.ams.location: [99, 4.9] is not [latitude, longitude]"),
            ("version = 1\n[server]\ndns-listen = [\"127.0.0.1:53\", \"localhost\"]\n".to_string(), 3, "server.dns-listen: \"localhost\": invalid socket address"),
            ("version = 1\n\n[rrl]\nexempt = [\n\"127.0.0.0/8\",\n\"::1/300\"]\n".to_string(), 6, "rrl.exempt: \"::1/300\" is not a network"),
            ("version = 1\n[geo.networks]\n\"10.0.0.1/8\" = \"default\"\n".to_string(), 3, "geo.networks.\"10.0.0.1/8\": \"10.0.0.1/8\" has host bits set"),
            ("version = 1\n[fleet]\nvantage = \"a\"\n[[fleet.peers]]\nname = \"b\"\nurl = \"http://b\"\n".to_string(), 2, "fleet.token: required when fleet.peers are configured"),
            // Tokens of two roles must differ; TLS keys come in pairs and client-ca needs TLS.
            ("version = 1\n[health]\nadmin-token = \"x\"\n[fleet]\ntoken = \"x\"\n".to_string(), 5, "fleet.token: must differ from health.admin-token"),
            ("version = 1\n[server]\nhttp-tls-cert = \"c.pem\"\n".to_string(), 3, "server.http-tls-cert: needs server.http-tls-key too"),
            ("version = 1\n[fleet]\nclient-key = \"k.pem\"\n".to_string(), 3, "fleet.client-key: needs fleet.client-cert too"),
            ("version = 1\n[fleet]\nclient-ca = \"Cargo.toml\"\n".to_string(), 3, "fleet.client-ca: needs server.http-tls-cert and server.http-tls-key"),
            ("version = 1\n[fleet]\nca = \"no-such-ca.pem\"\n".to_string(), 3, "fleet.ca: cannot read ./no-such-ca.pem: No such file"),
            // Values `toml` rejects name their key too.
            (format!("{DC}[services.\"w.example.com.\"]\nttl = \"soon\"\n"), 6, "services.\"w.example.com.\".ttl: \"soon\" is not a duration"),
            ("version = 1\n[server]\ntcp-idle-timeout = true\n".to_string(), 3, "server.tcp-idle-timeout: invalid type: boolean `true`, expected a duration"),
        ] {
            let (got_line, got) = problem(&text);
            assert!(got.starts_with(msg), "want {msg:?}, got {got:?}");
            assert_eq!(got_line, line, "{got}");
        }
    }

    #[test]
    fn ttls_and_durations_take_seconds_or_units() {
        let text = format!(
            "{DC}[server]\ntcp-idle-timeout = 30\ntcp-read-timeout = \"1m30s\"\n[health]\ninterval = \"500ms\"\ntimeout = 1\n\
             [fleet]\ninterval = 2\nstale-after = \"1h\"\n[services.\"w.example.com.\"]\nttl = \"5m\"\nfailover-ttl = 20\n\
             [services.\"w.example.com.\".check]\ntype = \"tcp\"\nport = 80\ninterval = \"1m\"\ntimeout = 3\n"
        );
        let cfg = Config::from_spec(file::parse(&text).unwrap(), Path::new(".")).unwrap();
        assert_eq!(cfg.tcp.idle_timeout, Duration::from_secs(30));
        assert_eq!(cfg.tcp.read_timeout, Duration::from_secs(90));
        assert_eq!((cfg.geo.services[0].ttl, cfg.geo.services[0].failover_ttl), (300, 20));
        assert_eq!(cfg.fleet.interval, Duration::from_secs(2));
        assert_eq!(cfg.fleet.stale_after, Duration::from_secs(3600));
        let check = &cfg.health.checks[0];
        assert_eq!((check.interval, check.timeout), (Duration::from_secs(60), Duration::from_secs(3)));
        let text = text.replace("ttl = \"5m\"", "ttl = 300").replace("failover-ttl = 20", "failover-ttl = \"20s\"");
        let cfg = Config::from_spec(file::parse(&text).unwrap(), Path::new(".")).unwrap();
        assert_eq!((cfg.geo.services[0].ttl, cfg.geo.services[0].failover_ttl), (300, 20));
    }

    #[test]
    fn compact_denial_has_a_signing_rate_and_no_secondaries() {
        let dnssec = "version = 1\n[dnssec]\nkey-dir = \"k\"\ndenial = \"compact\"\n";
        let cfg = Config::from_spec(file::parse(dnssec).unwrap(), Path::new(".")).unwrap();
        assert_eq!(cfg.signing.unwrap().policy.denial, DenialMode::Compact);
        assert_eq!(cfg.answer.compact_signing_rate, defaults::COMPACT_SIGNING_RATE.default);
        let cfg = Config::from_spec(file::parse(&format!("{dnssec}compact-signing-rate = 50\n")).unwrap(), Path::new(".")).unwrap();
        assert_eq!(cfg.answer.compact_signing_rate, 50);
        let err = Config::from_spec(file::parse(&format!("{dnssec}compact-signing-rate = 0\n")).unwrap(), Path::new(".")).unwrap_err().to_string();
        assert!(err.contains("dnssec.compact-signing-rate: 0: from 1 to"), "{err}");
        let with_secondaries = format!("{dnssec}[transfer]\nallow = [{{ network = \"192.0.2.0/24\" }}]\n");
        let err = Config::from_spec(file::parse(&with_secondaries).unwrap(), Path::new(".")).unwrap_err().to_string();
        assert!(err.contains("dnssec.denial") && err.contains("a secondary cannot"), "{err}");
        let err = Config::from_spec(file::parse(&dnssec.replace("compact", "nsec5")).unwrap(), Path::new(".")).unwrap_err().to_string();
        assert!(err.contains("\"nsec5\": expected \"nsec\", \"nsec3\" or \"compact\""), "{err}");
    }

    #[test]
    fn bad_values_say_which_key() {
        let spec = file::parse("version = 1\n[server]\nudp-max-payload = 100\n").unwrap();
        assert!(Config::from_spec(spec, Path::new(".")).unwrap_err().to_string().contains("udp-max-payload"));
        let spec = file::parse("version = 1\n[server]\ntcp-threads = 65\n").unwrap();
        let err = Config::from_spec(spec, Path::new(".")).unwrap_err().to_string();
        assert!(err.contains("server.tcp-threads") && err.contains("65 is more than 64"), "{err}");
        let spec = file::parse("version = 1\n[server]\ntcp-threads = 2\n").unwrap();
        assert_eq!(Config::from_spec(spec, Path::new(".")).unwrap().tcp.threads, 2);
    }
}
