//! The status document (`GET /v1/status`, and what the status page renders): a protocol,
//! so its types are its own and only describe the JSON (README, "Status JSON"). `report`
//! fills it from the snapshot and the monitor. Every time is RFC 3339 UTC with seconds.
//! Fields that are JSON `null` when unknown are `Option`s and always present; the few
//! that are absent unless they apply say so.

use std::collections::BTreeMap;

use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Status {
    pub version: &'static str,
    pub summary: Summary,
    pub problems: Vec<Finding>,
    pub notices: Vec<Finding>,
    pub fleet: Fleet,
    pub now: String,
    pub generation: u64,
    pub loaded_at: String,
    pub last_reload: Option<Reload>,
    pub zones: Vec<Zone>,
    /// Zones received from a primary: primary, last transfer, serial, next refresh, last error.
    pub secondaries: Vec<crate::control::secondary::SecondaryStatus>,
    pub targets: Vec<Target>,
    pub datacenters: Vec<Datacenter>,
    pub services: Vec<Service>,
    pub overrides: Vec<Override>,
    pub recent_changes: Vec<ChangeEntry>,
    /// The audit trail: the last 100 admin changes, newest first.
    pub audit: Vec<AuditEntry>,
    pub api: Api,
    pub state_file: StateFile,
    pub admin_enabled: bool,
}

/// One admin change: when, who (client address and token role), what.
#[derive(Debug, Serialize)]
pub struct AuditEntry {
    pub at: String,
    /// `api`, `signal` (SIGHUP) or `expiry`.
    pub by: &'static str,
    /// The caller's address and port (`api` only).
    pub client: Option<String>,
    /// The role of the token the caller sent (`admin`); null when the endpoint was open.
    pub role: Option<&'static str>,
    /// `override-set`, `override-removed`, `override-expired` or `reload`.
    pub action: &'static str,
    /// Overrides: what, as in `overrides[]`, and the actions before and after.
    pub target: Option<OverrideTarget>,
    pub subject: Option<String>,
    pub from: Option<&'static str>,
    pub to: Option<&'static str>,
    pub expires_at: Option<String>,
    /// Reloads: published or not, the generation serving after it, its problems.
    pub ok: Option<bool>,
    pub generation: Option<u64>,
    pub errors: Vec<String>,
    /// The whole entry as the log line says it.
    pub text: String,
}

/// How the HTTP API is protected (which roles have a token, never a token).
#[derive(Debug, Serialize)]
pub struct Api {
    pub https: bool,
    pub certificate_file: Option<String>,
    /// `[fleet] client-ca`: every client must present a certificate issued by it.
    pub client_certificate_required: bool,
    pub admin_token: bool,
    pub peer_token: bool,
    /// Without one, status, the page, lookup and metrics are open.
    pub read_token: bool,
}

/// Counts over the whole document; every data centre is in exactly one state.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub ok: bool,
    pub problems: usize,
    pub notices: usize,
    pub datacenters: usize,
    /// Up, wavering or forced up.
    pub up: usize,
    /// Down or forced down.
    pub down: usize,
    pub partial: usize,
    pub wavering: usize,
    pub drained: usize,
    pub forced_down: usize,
    pub forced_up: usize,
    pub idle: usize,
    pub failed_over_regions: usize,
    pub all_down_regions: usize,
}

/// A problem (the page's banner) or a notice (a deliberate or expected departure).
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub kind: &'static str,
    pub text: String,
    pub details: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Reload {
    pub ok: bool,
    pub at: String,
    pub errors: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Zone {
    pub zone: String,
    pub serial: u32,
    pub records: usize,
    pub file: String,
    pub signed: bool,
    /// `nsec` or `nsec3` for a signed zone.
    pub denial: Option<&'static str>,
    pub rrsig_earliest_expiry: Option<String>,
    /// `waypost` (signed with the keys in key-dir) or `file` (signed before loading).
    pub signed_by: Option<&'static str>,
    /// The keys Waypost signs the zone with, and their state now.
    pub keys: Vec<ZoneKey>,
    /// Signatures in the zone as served (not counting service answers).
    pub signatures: Option<usize>,
    /// How long the last signing of the zone took.
    pub signing_ms: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct ZoneKey {
    pub tag: u16,
    pub algorithm: &'static str,
    /// `ksk` (flags 257; signs everything when it is alone: a CSK) or `zsk`.
    pub role: &'static str,
    /// `active` (signing), `published` (in the DNSKEY RRset only) or `retired` (neither).
    pub state: &'static str,
    pub file: String,
}

/// One check target.
#[derive(Debug, Serialize)]
pub struct Target {
    pub id: String,
    /// `http`, `https` or `tcp`.
    pub kind: &'static str,
    pub address: String,
    /// `up`, `failing`, `down` or `recovering`.
    pub state: &'static str,
    pub up: bool,
    pub since: String,
    pub has_result: bool,
    /// `ok` or `fail`.
    pub last_result: Option<&'static str>,
    pub last_checked: Option<String>,
    pub latency_ms: Option<f64>,
    pub last_error: Option<String>,
    pub consecutive_ok: u32,
    pub consecutive_fail: u32,
    pub probes: u64,
    pub failures: u64,
    pub flips: u64,
    pub interval_s: f64,
    pub timeout_s: f64,
    pub fall: u32,
    pub rise: u32,
    /// What it decides: `datacenter ams`, `web.example.com. @ iad`.
    pub used_by: Vec<String>,
    pub probed_here: bool,
    pub vantage_points: Option<Vec<String>>,
    pub verdict: Verdict,
    pub votes: Vec<Vote>,
    pub timeline: Timeline,
}

#[derive(Debug, Serialize)]
pub struct Verdict {
    pub up: bool,
    pub wavering: bool,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct Vote {
    pub vantage: String,
    pub phase: &'static str,
    pub up: bool,
    pub age_s: u64,
    pub fresh: bool,
}

/// The last hour of a check.
#[derive(Debug, Serialize)]
pub struct Timeline {
    pub bucket_s: u64,
    pub buckets: Vec<Bucket>,
}

#[derive(Debug, Serialize)]
pub struct Bucket {
    pub start: String,
    pub probes: u32,
    pub failures: u32,
    /// Probes after which the target was down.
    pub down: u32,
    /// Average.
    pub latency_ms: f64,
    pub latency_max_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct Datacenter {
    pub name: String,
    /// `[latitude, longitude]`.
    pub location: [f64; 2],
    /// One of `metrics::DATACENTER_STATES`.
    pub state: &'static str,
    pub check: Option<String>,
    #[serde(rename = "override")]
    pub override_: Option<DatacenterOverride>,
    pub services: Vec<DatacenterService>,
}

#[derive(Debug, Serialize)]
pub struct DatacenterOverride {
    pub action: &'static str,
    pub set_at: String,
    pub expires_at: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct DatacenterService {
    pub service: String,
    pub up: bool,
    pub wavering: bool,
}

#[derive(Debug, Serialize)]
pub struct Service {
    pub name: String,
    pub policy: String,
    pub ttl: u32,
    pub failover_ttl: u32,
    /// `serve-all`, `fallback` or `nodata`.
    pub all_down: &'static str,
    pub regions: Vec<Region>,
}

/// What a client in one region of the map gets now.
#[derive(Debug, Serialize)]
pub struct Region {
    /// `default`, `continent:EU`, …
    pub region: String,
    pub order: Vec<String>,
    pub fenced: bool,
    pub a: Family,
    pub aaaa: Family,
}

/// The answer for one address family.
#[derive(Debug, Clone, Serialize)]
pub struct Family {
    /// Records as text (`192.0.2.10`, `CNAME cdn.example.net.`).
    pub answer: Vec<String>,
    pub ttl: u32,
    pub datacenters: Vec<String>,
    pub failed_over: bool,
    pub all_down: bool,
    /// Weighted services only: each data centre's share and its answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shares: Option<Vec<Share>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Share {
    pub datacenter: Option<String>,
    pub answer: Vec<String>,
    /// 0 to 1, rounded to four places.
    pub share: f64,
}

#[derive(Debug, Serialize)]
pub struct Override {
    pub target: OverrideTarget,
    /// `datacenter ams`, `address 198.51.100.10 (web.example.com. @ iad)`.
    pub subject: String,
    pub action: &'static str,
    pub set_at: String,
    pub expires_at: Option<String>,
}

/// `{"kind": "datacenter", "name": "ams"}` or `{"kind": "address", "name": "192.0.2.10"}`.
#[derive(Debug, Serialize)]
pub struct OverrideTarget {
    pub kind: &'static str,
    pub name: String,
}

/// A health flip or an admin action.
#[derive(Debug, Serialize)]
pub struct ChangeEntry {
    pub at: String,
    /// `health` or `admin`.
    pub kind: &'static str,
    pub target: String,
    pub subject: String,
    pub from: &'static str,
    pub to: &'static str,
    /// Admin actions only.
    #[serde(flatten)]
    pub admin: Option<AdminChange>,
}

#[derive(Debug, Serialize)]
pub struct AdminChange {
    /// `admin` or `expiry`.
    pub by: &'static str,
    pub note: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct StateFile {
    pub path: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Fleet {
    pub vantage: String,
    pub quorum: String,
    pub interval_s: f64,
    pub stale_after_s: f64,
    pub config_digest: String,
    pub peers: Vec<Peer>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Peer {
    pub name: String,
    pub url: String,
    pub reachable: bool,
    pub fresh: bool,
    pub last_ok: Option<String>,
    pub age_s: Option<u64>,
    pub last_error: Option<String>,
    pub latency_ms: Option<f64>,
    pub bytes_received: u64,
    pub unchanged_pulls: u64,
    pub vantage: Option<String>,
    pub generation: Option<u64>,
    pub config_digest: Option<String>,
    pub zones: Option<BTreeMap<String, u32>>,
    pub targets: Option<usize>,
}
