//! Configuration: the on-disk TOML form (`file::Spec`) and the validated form (`Config`).
//!
//! `Config::from_spec` is the only place that validates; everything after it trusts
//! `Config`. Unknown keys are rejected with their name; every error carries file and line.

pub mod defaults;
pub mod file;
pub mod fleet;
pub mod geo;
pub mod health;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::answer::AnswerSettings;
use crate::zones::{LoadLimits, Problem};

/// TCP transport limits.
#[derive(Debug, Clone, Copy)]
pub struct TcpLimits {
    pub max_connections: usize,
    pub max_per_client: usize,
    pub idle_timeout: Duration,
    pub read_timeout: Duration,
    pub write_timeout: Duration,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from (None when built from defaults and flags).
    pub source: Option<PathBuf>,
    pub dns_listen: Vec<SocketAddr>,
    pub http_listen: SocketAddr,
    pub zones_dir: PathBuf,
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
    pub rrl: crate::dns::rrl::RrlConfig,
    /// Class CH answers: identity and version.
    pub chaos: crate::answer::chaos::Chaos,
    /// EDNS name server identifier (RFC 5001); None = not sent.
    pub nsid: Option<Box<[u8]>>,
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
        let h = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
        format!("{h:016x}")
    }

    /// Defaults only, serving `zones_dir`.
    pub fn default_for_zones(zones_dir: PathBuf) -> Config {
        // never panics: the default spec is valid.
        let mut c = Config::from_spec(file::Spec::default(), Path::new(".")).expect("default config is valid");
        c.zones_dir = zones_dir;
        c
    }

    /// Reads and validates a config file, then applies command-line overrides.
    pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Config, Vec<Problem>> {
        let (spec, base) = match path {
            Some(p) => {
                let mut text = std::fs::read_to_string(p)
                    .map_err(|e| vec![Problem { file: p.to_path_buf(), line: 0, msg: format!("cannot read config: {e}") }])?;
                if let Some(extra) = &overrides.extra_toml {
                    text.push('\n');
                    text.push_str(extra);
                }
                let spec = file::parse(&text).map_err(|(line, msg)| vec![Problem { file: p.to_path_buf(), line, msg }])?;
                (spec, p.parent().map(Path::to_path_buf).unwrap_or_default())
            }
            None => (file::Spec::default(), PathBuf::from(".")),
        };
        let mut cfg = Config::from_spec(spec, &base).map_err(|msg| {
            vec![Problem { file: path.map(Path::to_path_buf).unwrap_or_default(), line: 0, msg }]
        })?;
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
    pub fn from_spec(spec: file::Spec, base: &Path) -> Result<Config, String> {
        if spec.version != 1 {
            return Err(format!("version = {} is not supported (expected 1)", spec.version));
        }
        let geo = geo::GeoConfig::from_spec(&spec.geo, &spec.datacenters, &spec.services, base)?;
        let health = health::HealthConfig::from_spec(&spec.health, &spec.datacenters, &spec.services, &geo, base)?;
        let max_interval = health.checks.iter().map(|c| c.interval).max().unwrap_or(health::DEFAULT_INTERVAL);
        let fleet = fleet::FleetConfig::from_spec(&spec.fleet, max_interval)?;
        let identity = match (&spec.server.identity, &spec.fleet.vantage) {
            (Some(i), _) => i.clone(),
            (None, Some(v)) => v.clone(),
            (None, None) => crate::answer::chaos::host_name(),
        };
        let version = spec.server.version.clone().unwrap_or_else(|| defaults::VERSION.to_string());
        let chaos = crate::answer::chaos::Chaos::new(&identity, &version)?;
        let nsid = match spec.server.nsid.as_deref() {
            None | Some("") => None,
            Some(n) if n.len() > defaults::MAX_NSID => return Err(format!("server.nsid: {} bytes, at most {}", n.len(), defaults::MAX_NSID)),
            Some(n) => Some(n.as_bytes().into()),
        };
        let mut rrl = crate::dns::rrl::RrlConfig::default();
        if let Some(r) = spec.rrl.rate {
            rrl.rate = r;
        }
        if let Some(s) = spec.rrl.slip {
            rrl.slip = s;
        }
        if let Some(p) = spec.rrl.ipv4_prefix {
            if p > 32 {
                return Err(format!("rrl.ipv4-prefix {p}: at most 32"));
            }
            rrl.ipv4_prefix = p;
        }
        if let Some(p) = spec.rrl.ipv6_prefix {
            if p > 128 {
                return Err(format!("rrl.ipv6-prefix {p}: at most 128"));
            }
            rrl.ipv6_prefix = p;
        }
        if let Some(ex) = &spec.rrl.exempt {
            rrl.exempt = ex.iter().map(|n| n.parse().map_err(|_| format!("rrl.exempt: {n:?} is not a network"))).collect::<Result<_, _>>()?;
        }
        let s = spec.server;
        let dns_listen = s
            .dns_listen
            .unwrap_or_else(|| vec![defaults::DNS_LISTEN.to_string()])
            .iter()
            .map(|a| a.parse::<SocketAddr>().map_err(|e| format!("server.dns-listen {a:?}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        if dns_listen.is_empty() {
            return Err("server.dns-listen is empty".into());
        }
        let http = s.http_listen.unwrap_or_else(|| defaults::HTTP_LISTEN.to_string());
        let http_listen = http.parse().map_err(|e| format!("server.http-listen {http:?}: {e}"))?;
        let zones_dir = base.join(s.zones_dir.unwrap_or_else(|| defaults::ZONES_DIR.into()));
        let udp_max_payload = s.udp_max_payload.unwrap_or(defaults::UDP_MAX_PAYLOAD);
        if !(512..=4096).contains(&udp_max_payload) {
            return Err(format!("server.udp-max-payload = {udp_max_payload}: must be 512..=4096"));
        }
        let dur = |v: Option<String>, key: &str, d: Duration| -> Result<Duration, String> {
            match v {
                None => Ok(d),
                Some(t) => humantime::parse_duration(&t).map_err(|e| format!("{key} {t:?}: {e}")),
            }
        };
        let tcp = TcpLimits {
            max_connections: s.tcp_max_connections.unwrap_or(defaults::TCP_MAX_CONNECTIONS).max(1),
            max_per_client: s.tcp_max_connections_per_client.unwrap_or(defaults::TCP_MAX_CONNECTIONS_PER_CLIENT).max(1),
            idle_timeout: dur(s.tcp_idle_timeout, "server.tcp-idle-timeout", defaults::TCP_IDLE_TIMEOUT)?,
            read_timeout: dur(s.tcp_read_timeout, "server.tcp-read-timeout", defaults::TCP_READ_TIMEOUT)?,
            write_timeout: dur(s.tcp_write_timeout, "server.tcp-write-timeout", defaults::TCP_WRITE_TIMEOUT)?,
        };
        Ok(Config {
            source: None,
            dns_listen,
            http_listen,
            zones_dir,
            udp_workers: s.udp_workers.unwrap_or(defaults::UDP_WORKERS),
            answer: AnswerSettings {
                udp_max_payload,
                udp_max_amplification: s.udp_max_amplification.unwrap_or(crate::answer::DEFAULT_UDP_MAX_AMPLIFICATION),
            },
            tcp,
            load_limits: LoadLimits {
                max_records: s.max_zone_records.unwrap_or(defaults::MAX_ZONE_RECORDS),
                max_rrset_size: s.max_rrset_records.unwrap_or(defaults::MAX_RRSET_RECORDS),
            },
            geo,
            health,
            fleet,
            rrl,
            chaos,
            nsid,
        })
    }
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
        let err = Config::from_spec(spec, Path::new(".")).unwrap_err();
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

    #[test]
    fn bad_values_say_which_key() {
        let spec = file::parse("version = 1\n[server]\nudp-max-payload = 100\n").unwrap();
        assert!(Config::from_spec(spec, Path::new(".")).unwrap_err().contains("udp-max-payload"));
    }
}
