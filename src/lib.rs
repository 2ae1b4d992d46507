//! Waypost: a geo-aware, health-checked authoritative DNS server.
//!
//! - `wire`      DNS wire format: names, query parsing, response writing
//! - `zones`     zone files → checked, immutable zones; the catalog of served zones
//! - `answer`    the pure query → response function (RFC 1034 §4.3.2 and friends)
//! - `demo`      `waypost demo`: the example with three local sites to fail over between
//! - `dns`       UDP and TCP transports
//! - `geo`       client address / ECS → ordered data centres (MaxMind DB, overrides, map)
//! - `health`    probes, hysteresis, state file, admin overrides (control side)
//! - `lookup`    explaining an answer (CLI `lookup`, `GET /v1/lookup`)
//! - `services`  geo-routed names: answers prebuilt per snapshot (`build`), picked by the client's order (`pick`)
//! - `snapshot`  the atomically swapped state the query path reads
//! - `control`   building and publishing snapshots (reload, check)
//! - `config`    TOML config: on-disk spec and validated config, limits
//! - `status`    HTTP API and Prometheus metrics
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
pub mod wire;
pub mod zones;

#[cfg(test)]
mod test_dir;
