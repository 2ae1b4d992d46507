//! Prometheus metrics (prometheus-client). Counters used on the query path are
//! resolved to plain atomic handles at start-up, so counting costs one atomic add.
//!
//! Label values are lower-case (`proto="udp"`, `rcode="noerror"`, `result="ok"`),
//! except names taken from the config (services, check targets, peers, data centres).

use std::sync::OnceLock;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use std::collections::HashMap;
use std::sync::Mutex;

use arc_swap::ArcSwap;

use crate::health::probe::ProbeResult;
use crate::health::Monitor;
use crate::services::ServiceTable;

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub enum Proto {
    Udp,
    Tcp,
}

impl Proto {
    pub fn as_str(&self) -> &'static str {
        match self {
            Proto::Udp => "udp",
            Proto::Tcp => "tcp",
        }
    }
}

impl EncodeLabelValue for Proto {
    fn encode(&self, e: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(e, self.as_str())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueryLabels {
    pub proto: Proto,
    pub rcode: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DatacenterLabels {
    pub datacenter: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DatacenterStateLabels {
    pub datacenter: String,
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ZoneLabels {
    pub zone: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DatacenterOverrideLabels {
    pub datacenter: String,
    pub action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabels {
    pub service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabels {
    pub target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckLabels {
    pub target: String,
    pub result: String,
}

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    responses: Family<QueryLabels, Counter>,
    /// Per (proto, rcode 0..=16), resolved once so the query path never touches the
    /// family's lock. Set at start-up for the RCODEs Waypost sends ([`SENT_RCODES`]);
    /// any other gets its series when first counted, so none is always zero.
    udp_by_rcode: [OnceLock<Counter>; RCODE_NAMES.len()],
    tcp_by_rcode: [OnceLock<Counter>; RCODE_NAMES.len()],
    pub truncated: Counter,
    pub dropped: Family<ReasonLabels, Counter>,
    pub dropped_malformed: Counter,
    pub tcp_refused: Counter,
    pub tcp_connections: Gauge,
    pub reloads: Family<ResultLabels, Counter>,
    pub zones: Gauge,
    pub generation: Gauge,
    /// Answers to service names, by service (resolved per snapshot; wait-free to read).
    service_family: Family<ServiceLabels, Counter>,
    per_service: ArcSwap<Vec<Counter>>,
    /// Time to answer one query, in the worker (without socket time).
    pub answer_seconds: Histogram,
    pub checks: Family<CheckLabels, Counter>,
    pub check_seconds: Family<TargetLabels, Histogram>,
    pub flips: Family<TargetLabels, Counter>,
    pub target_up: Family<TargetLabels, Gauge>,
    pub health_publishes: Counter,
    seen_targets: Mutex<HashMap<String, ()>>,
    pub peer_reachable: Family<PeerLabels, Gauge>,
    pub peer_bytes: Family<PeerLabels, Gauge>,
    /// Peers whose config digest or zone serials differ from ours.
    pub fleet_disagreement: Gauge,
    pub rrl_dropped: Counter,
    pub rrl_slipped: Counter,
    /// UDP answers too big for the outgoing interface, answered again smaller.
    pub udp_too_big: Counter,
    /// UDP answers copied from a worker's answer cache.
    pub udp_cache_hits: Counter,
    /// HTTP connections closed because the connection cap was reached.
    pub http_refused: Counter,
    pub state_file_errors: Gauge,
    /// 1 for each data centre's current state (one series per state), 0 for the others.
    datacenter_state: Family<DatacenterStateLabels, Gauge>,
    /// 1 for the admin action in force on a data centre (one series per action).
    datacenter_override: Family<DatacenterOverrideLabels, Gauge>,
    /// The data centres the two families above have series for.
    seen_datacenters: Mutex<Vec<String>>,
    /// Seconds until the earliest RRSIG of each signed zone expires (negative: expired).
    zone_rrsig_expiry: Family<ZoneLabels, Gauge>,
    /// The zones that family has series for.
    seen_signed_zones: Mutex<Vec<String>>,
}

/// The states a data centre can be in (`datacenters[].state` in the status JSON).
pub const DATACENTER_STATES: [&str; 8] = ["up", "down", "partial", "wavering", "drained", "forced-down", "forced-up", "idle"];
/// Admin actions, as the API spells them.
pub const OVERRIDE_ACTIONS: [&str; 3] = ["down", "up", "drain"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabels {
    pub peer: String,
}

/// Label value of each RCODE 0..=16 (higher ones are counted as 16).
pub const RCODE_NAMES: [&str; 17] = [
    "noerror", "formerr", "servfail", "nxdomain", "notimp", "refused", "yxdomain", "yxrrset", "nxrrset", "notauth",
    "notzone", "rcode11", "rcode12", "rcode13", "rcode14", "rcode15", "badvers",
];

/// The RCODEs `answer` sends: NOERROR, FORMERR (unparsable question), SERVFAIL (a CH
/// answer that cannot be written), NXDOMAIN, NOTIMP (opcodes), REFUSED (not our zone,
/// class, ANY over UDP…), YXDOMAIN (DNAME overflow, RFC 6672 §2.2), BADVERS (EDNS > 0).
pub const SENT_RCODES: [u16; 8] = [0, 1, 2, 3, 4, 5, 6, 16];

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("waypost");
        let responses = Family::<QueryLabels, Counter>::default();
        registry.register("dns_responses", "DNS responses sent, by transport and RCODE", responses.clone());
        let mk = |proto: Proto| {
            let table: [OnceLock<Counter>; RCODE_NAMES.len()] = Default::default();
            for &r in &SENT_RCODES {
                let _ = table[r as usize].set(responses.get_or_create_owned(&QueryLabels { proto: proto.clone(), rcode: RCODE_NAMES[r as usize] }));
            }
            table
        };
        let udp_by_rcode = mk(Proto::Udp);
        let tcp_by_rcode = mk(Proto::Tcp);
        let truncated = Counter::default();
        registry.register("dns_truncated", "UDP responses sent with TC=1", truncated.clone());
        let dropped = Family::<ReasonLabels, Counter>::default();
        registry.register("dns_dropped", "Packets dropped without an answer, by reason", dropped.clone());
        let dropped_malformed = dropped.get_or_create_owned(&ReasonLabels { reason: "malformed".into() });
        let tcp_refused = dropped.get_or_create_owned(&ReasonLabels { reason: "tcp_connection_limit".into() });
        let tcp_connections = Gauge::default();
        registry.register("dns_tcp_connections", "Open TCP connections", tcp_connections.clone());
        let reloads = Family::<ResultLabels, Counter>::default();
        registry.register("reloads", "Reloads of config and zones, by result", reloads.clone());
        let _ = reloads.get_or_create(&ResultLabels { result: "success".into() });
        let _ = reloads.get_or_create(&ResultLabels { result: "failure".into() });
        let zones = Gauge::default();
        registry.register("zones", "Zones being served", zones.clone());
        let generation = Gauge::default();
        registry.register("config_generation", "Generation of the serving snapshot", generation.clone());
        let service_family = Family::<ServiceLabels, Counter>::default();
        registry.register("service_answers", "Answers to geo service names, by service", service_family.clone());
        let answer_seconds = Histogram::new(exponential_buckets(0.000_000_5, 2.0, 16));
        registry.register("answer_seconds", "Time to answer one query in the worker, without socket time (UDP: 1 in 16 queries sampled; TCP: none)", answer_seconds.clone());
        let checks = Family::<CheckLabels, Counter>::default();
        registry.register("health_checks", "Health probes, by target and result", checks.clone());
        let check_seconds = Family::<TargetLabels, Histogram>::new_with_constructor(|| Histogram::new(exponential_buckets(0.0005, 2.0, 14)));
        registry.register("health_check_seconds", "Health probe duration", check_seconds.clone());
        let flips = Family::<TargetLabels, Counter>::default();
        registry.register("health_flips", "Health state flips (up to down or back)", flips.clone());
        let target_up = Family::<TargetLabels, Gauge>::default();
        registry.register("health_target_up", "1 when the target is up (or failing), 0 when down", target_up.clone());
        let health_publishes = Counter::default();
        registry.register("health_publishes", "Snapshots published because health or overrides changed", health_publishes.clone());
        let peer_reachable = Family::<PeerLabels, Gauge>::default();
        registry.register("fleet_peer_reachable", "1 when the last pull from the peer succeeded", peer_reachable.clone());
        let peer_bytes = Family::<PeerLabels, Gauge>::default();
        registry.register("fleet_peer_received_bytes", "Bytes of observations received from the peer", peer_bytes.clone());
        let fleet_disagreement = Gauge::default();
        registry.register("fleet_disagreement", "Peers whose config or zone serials differ from ours", fleet_disagreement.clone());
        let rrl_dropped = Counter::default();
        registry.register("rrl_dropped", "UDP responses dropped by response rate limiting", rrl_dropped.clone());
        let rrl_slipped = Counter::default();
        registry.register("rrl_slipped", "UDP responses sent truncated (slip) by response rate limiting", rrl_slipped.clone());
        let udp_too_big = Counter::default();
        registry.register(
            "udp_too_big",
            "UDP answers larger than the outgoing interface MTU, answered again within 1232 (then 512) bytes",
            udp_too_big.clone(),
        );
        let udp_cache_hits = Counter::default();
        registry.register("udp_answer_cache_hits", "UDP answers copied from the worker's answer cache (same query bytes, same snapshot)", udp_cache_hits.clone());
        let http_refused = Counter::default();
        registry.register("http_refused_connections", "HTTP API connections closed at the connection cap", http_refused.clone());
        let state_file_errors = Gauge::default();
        registry.register("state_file_errors", "State-file reads and writes that failed since start", state_file_errors.clone());
        let datacenter_state = Family::<DatacenterStateLabels, Gauge>::default();
        registry.register("datacenter_state", "1 for the data centre's current state (as in /v1/status), 0 for the other states", datacenter_state.clone());
        let datacenter_override = Family::<DatacenterOverrideLabels, Gauge>::default();
        registry.register("datacenter_override", "1 for the admin override action in force on the data centre, 0 for the other actions", datacenter_override.clone());
        let zone_rrsig_expiry = Family::<ZoneLabels, Gauge>::default();
        registry.register(
            "zone_rrsig_expiry_seconds",
            "Seconds until the earliest RRSIG of a signed zone expires (negative once expired); alert well before 0",
            zone_rrsig_expiry.clone(),
        );
        Metrics {
            zone_rrsig_expiry,
            seen_signed_zones: Mutex::new(Vec::new()),
            responses,
            datacenter_state,
            datacenter_override,
            seen_datacenters: Mutex::new(Vec::new()),
            state_file_errors,
            http_refused,
            rrl_dropped,
            rrl_slipped,
            udp_too_big,
            udp_cache_hits,
            peer_reachable,
            peer_bytes,
            fleet_disagreement,
            service_family,
            per_service: ArcSwap::from_pointee(Vec::new()),
            answer_seconds,
            checks,
            check_seconds,
            flips,
            target_up,
            health_publishes,
            seen_targets: Mutex::new(HashMap::new()),
            registry,
            udp_by_rcode,
            tcp_by_rcode,
            truncated,
            dropped,
            dropped_malformed,
            tcp_refused,
            tcp_connections,
            reloads,
            zones,
            generation,
        }
    }

    /// The counter of (proto, rcode): one atomic load once it exists (always, for the
    /// RCODEs Waypost sends).
    #[inline]
    fn response_counter(&self, proto: &Proto, rcode: usize) -> &Counter {
        let table = match proto {
            Proto::Udp => &self.udp_by_rcode,
            Proto::Tcp => &self.tcp_by_rcode,
        };
        let slot = rcode.min(RCODE_NAMES.len() - 1);
        table[slot].get_or_init(|| self.responses.get_or_create_owned(&QueryLabels { proto: proto.clone(), rcode: RCODE_NAMES[slot] }))
    }

    #[inline]
    pub fn count_response(&self, proto: Proto, rcode: u16, truncated: bool) {
        self.response_counter(&proto, rcode as usize).inc();
        if truncated {
            self.truncated.inc();
        }
    }

    /// Adds a worker's tally of one batch to the shared counters and clears it.
    pub fn flush(&self, proto: Proto, t: &mut Tally) {
        for (rcode, n) in t.by_rcode.iter_mut().enumerate() {
            if *n > 0 {
                self.response_counter(&proto, rcode).inc_by(std::mem::take(n) as u64);
            }
        }
        if t.truncated > 0 {
            self.truncated.inc_by(std::mem::take(&mut t.truncated) as u64);
        }
        if t.cache_hits > 0 {
            self.udp_cache_hits.inc_by(std::mem::take(&mut t.cache_hits) as u64);
        }
        if !t.services.is_empty() {
            let counters = self.per_service.load();
            for (index, n) in t.services.drain(..) {
                if let Some(c) = counters.get(index as usize) {
                    c.inc_by(n as u64);
                }
            }
        }
    }

    /// Counts an answer to service `index` (query path: one wait-free load, one atomic add).
    #[inline]
    pub fn count_service(&self, index: u32) {
        if let Some(c) = self.per_service.load().get(index as usize) {
            c.inc();
        }
    }

    /// Resolves the per-service counters for a new snapshot's services.
    pub fn set_services(&self, services: &ServiceTable) {
        let v: Vec<Counter> = services
            .services
            .iter()
            .map(|s| self.service_family.get_or_create_owned(&ServiceLabels { service: s.config.name.to_string() }))
            .collect();
        self.per_service.store(std::sync::Arc::new(v));
    }

    /// Records one probe (called by the monitor's probe tasks).
    pub fn observe_probe(&self, target: &str, r: &ProbeResult, flipped: bool) {
        let result = if r.ok { "ok" } else { "fail" };
        self.checks.get_or_create(&CheckLabels { target: target.into(), result: result.into() }).inc();
        self.check_seconds.get_or_create(&TargetLabels { target: target.into() }).observe(r.latency.as_secs_f64());
        if flipped {
            self.flips.get_or_create(&TargetLabels { target: target.into() }).inc();
        }
    }

    /// Updates the fleet gauges from the monitor and the current config digest / zones.
    pub fn observe_fleet(&self, monitor: &Monitor, digest: &str, zones: &std::collections::BTreeMap<String, u32>) {
        let (_, peers) = monitor.fleet_report();
        let mut disagree = 0;
        for p in &peers {
            let l = PeerLabels { peer: p.name.clone() };
            self.peer_reachable.get_or_create(&l).set(i64::from(p.reachable));
            self.peer_bytes.get_or_create(&l).set(p.bytes as i64);
            if p.doc.as_ref().is_some_and(|d| d.config_digest != digest || &d.zones != zones) {
                disagree += 1;
            }
        }
        self.fleet_disagreement.set(disagree);
    }

    /// Updates the per-target state gauges from the monitor.
    pub fn observe_health(&self, monitor: &Monitor) {
        self.state_file_errors.set(monitor.state_errors() as i64);
        let (targets, _, _, _) = monitor.report();
        let mut seen = self.seen_targets.lock().unwrap_or_else(|p| p.into_inner());
        let ids: HashMap<String, ()> = targets.iter().map(|t| (t.check.id(), ())).collect();
        for old in seen.keys().filter(|k| !ids.contains_key(*k)) {
            self.target_up.remove(&TargetLabels { target: old.clone() });
        }
        for t in &targets {
            self.target_up.get_or_create(&TargetLabels { target: t.check.id() }).set(i64::from(t.hyst.phase.is_up()));
        }
        *seen = ids;
    }

    /// Sets the data-centre gauges: (name, state, override action) per configured data
    /// centre. Series of data centres no longer configured are removed.
    pub fn observe_datacenters(&self, dcs: &[(String, &'static str, Option<&'static str>)]) {
        let mut seen = self.seen_datacenters.lock().unwrap_or_else(|p| p.into_inner());
        for old in seen.iter().filter(|n| !dcs.iter().any(|(d, _, _)| d == *n)) {
            for state in DATACENTER_STATES {
                self.datacenter_state.remove(&DatacenterStateLabels { datacenter: old.clone(), state });
            }
            for action in OVERRIDE_ACTIONS {
                self.datacenter_override.remove(&DatacenterOverrideLabels { datacenter: old.clone(), action });
            }
        }
        for (name, current, action) in dcs {
            for state in DATACENTER_STATES {
                self.datacenter_state.get_or_create(&DatacenterStateLabels { datacenter: name.clone(), state }).set(i64::from(state == *current));
            }
            for a in OVERRIDE_ACTIONS {
                self.datacenter_override.get_or_create(&DatacenterOverrideLabels { datacenter: name.clone(), action: a }).set(i64::from(Some(a) == *action));
            }
        }
        *seen = dcs.iter().map(|(d, _, _)| d.clone()).collect();
    }

    /// Sets the RRSIG expiry gauge for every signed zone served now (zone, earliest
    /// expiry as Unix seconds); series of zones no longer signed or served are removed.
    pub fn observe_signed_zones(&self, zones: &[(String, u64)], now: u64) {
        let mut seen = self.seen_signed_zones.lock().unwrap_or_else(|p| p.into_inner());
        for old in seen.iter().filter(|n| !zones.iter().any(|(z, _)| z == *n)) {
            self.zone_rrsig_expiry.remove(&ZoneLabels { zone: old.clone() });
        }
        for (zone, expiry) in zones {
            self.zone_rrsig_expiry.get_or_create(&ZoneLabels { zone: zone.clone() }).set(*expiry as i64 - now as i64);
        }
        *seen = zones.iter().map(|(z, _)| z.clone()).collect();
    }

    pub fn count_reload(&self, ok: bool) {
        let result = if ok { "success" } else { "failure" };
        self.reloads.get_or_create(&ResultLabels { result: result.into() }).inc();
    }

    pub fn reload_count(&self, ok: bool) -> u64 {
        let result = if ok { "success" } else { "failure" };
        self.reloads.get_or_create(&ResultLabels { result: result.into() }).get()
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // never panics: writing to a String cannot fail.
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("encode metrics");
        out
    }
}

/// Responses counted by one worker over one batch, added to the shared counters with
/// [`Metrics::flush`]: a few atomic additions per batch instead of two per query.
#[derive(Debug, Default)]
pub struct Tally {
    by_rcode: [u32; RCODE_NAMES.len()],
    truncated: u32,
    /// Answers copied from the UDP answer cache.
    pub cache_hits: u32,
    /// (service index, answers); a batch answers few distinct services.
    services: Vec<(u32, u32)>,
}

impl Tally {
    /// A tally for batches of up to `batch` responses (allocates once, here).
    pub fn with_capacity(batch: usize) -> Tally {
        Tally { services: Vec::with_capacity(batch), ..Tally::default() }
    }

    #[inline]
    pub fn response(&mut self, rcode: u16, truncated: bool, service: Option<u32>) {
        self.by_rcode[(rcode as usize).min(RCODE_NAMES.len() - 1)] += 1;
        self.truncated += truncated as u32;
        if let Some(index) = service {
            match self.services.iter_mut().find(|(i, _)| *i == index) {
                Some((_, n)) => *n += 1,
                None => self.services.push((index, 1)),
            }
        }
    }
}
