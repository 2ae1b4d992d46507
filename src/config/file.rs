//! The on-disk form of `waypost.toml` (serde). Validation happens in `Config::from_spec`.

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Spec {
    /// Format version; must be 1.
    pub version: u32,
    #[serde(default)]
    pub server: ServerSpec,
}

impl Default for Spec {
    fn default() -> Self {
        Spec { version: 1, server: ServerSpec::default() }
    }
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
    toml::from_str::<Spec>(text).map_err(|e| {
        let line = e.span().map_or(0, |s| 1 + text[..s.start.min(text.len())].matches('\n').count());
        (line, e.message().to_string())
    })
}
