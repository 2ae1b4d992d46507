//! Waypost: a geo-aware, health-checked authoritative DNS server. The modules, bottom
//! layer first: none imports one listed after it (`.ci/module-graph.py` checks that the
//! graph has no cycle).
//!
//! - `wire`      DNS wire format: names, query parsing, response writing
//! - `config`    TOML config: on-disk spec, validated config and the types it owns, every limit
//! - `zones`     zone files → checked, immutable zones; the catalog; service names put into zones
//! - `tls`       the HTTPS listener's and the fleet client's rustls configs, from the config's PEM files
//! - `geo`       client address / ECS → ordered data centres (MaxMind DB, overrides, map)
//! - `health`    probes, hysteresis, admin overrides, fleet votes, the state file (control side)
//! - `rrl`       UDP response rate limiting (a table shared by the UDP workers)
//! - `services`  geo-routed names: answers prebuilt per snapshot (`build`), picked by the client's order (`pick`)
//! - `metrics`   Prometheus metrics: query-path counters and control-side gauges
//! - `snapshot`  the atomically swapped state the query path reads
//! - `answer`    the pure query → response function (RFC 1034 §4.3.2 and friends, DNSSEC proofs)
//! - `control`   building and publishing snapshots: reload, check, health publish, GeoIP swap
//! - `dns`       UDP and TCP transports
//! - `lookup`    explaining an answer (CLI `lookup`, `GET /v1/lookup`)
//! - `status`    HTTP API, the status document and page
//! - `demo`      `waypost demo`: the example with three local sites to fail over between
//! - `app`       wiring and shutdown
//! - `test_dir`  (unit tests only) a temporary directory removed on drop

pub mod answer;
pub mod app;
pub mod config;
pub mod control;
pub mod demo;
pub mod dns;
pub mod geo;
pub mod health;
pub mod lookup;
pub mod metrics;
pub mod rrl;
pub mod snapshot;
pub mod services;
pub mod signer;
pub mod status;
pub mod tls;
pub mod transfer;
pub mod wire;
pub mod zones;

#[cfg(test)]
mod test_dir;
