//! Prometheus metrics (prometheus-client): every metric the server exports, registered
//! here; the query path counts in `count` (counters resolved to plain atomic handles at
//! start-up, and per-batch [`Tally`]s, so counting costs an atomic add), the control
//! side sets gauges in `observe`. Nothing here decides anything an answer depends on.
//!
//! Label values are lower-case (`proto="udp"`, `rcode="noerror"`, `result="ok"`),
//! except names taken from the config (services, check targets, peers, data centres).

mod count;
mod observe;

pub use count::Tally;

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use arc_swap::ArcSwap;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

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

/// Counters of compact denial's signing on the query path, which holds no [`Metrics`]:
/// one set per process, registered by every [`Metrics`].
#[derive(Debug, Default)]
pub struct OnlineSigning {
    pub signatures: Counter,
    pub cache_hits: Counter,
    pub truncated: Counter,
    pub servfail: Counter,
}

pub fn online_signing() -> &'static OnlineSigning {
    static ONLINE: OnceLock<OnlineSigning> = OnceLock::new();
    ONLINE.get_or_init(OnlineSigning::default)
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
    /// TCP answers copied from a TCP thread's answer cache.
    pub tcp_cache_hits: Counter,
    /// HTTP connections closed because the connection cap was reached.
    pub http_refused: Counter,
    /// HTTP API requests refused 401 (a missing or wrong token).
    pub http_auth_failures: Counter,
    /// HTTP API requests refused 429: their client failed authentication too often.
    pub http_auth_limited: Counter,
    /// HTTP connections closed before a request: a failed TLS handshake, or plain HTTP sent to the HTTPS listener.
    pub http_tls_failures: Counter,
    pub state_file_errors: Gauge,
    /// Zone transfers and NOTIFY, by kind (axfr, ixfr, notify-in, notify-out, refresh) and result.
    pub transfers: Family<TransferLabels, Counter>,
    /// 1 for each data centre's current state (one series per state), 0 for the others.
    datacenter_state: Family<DatacenterStateLabels, Gauge>,
    /// 1 for the admin action in force on a data centre (one series per action).
    datacenter_override: Family<DatacenterOverrideLabels, Gauge>,
    /// Seconds until the earliest RRSIG of each signed zone expires (negative: expired).
    zone_rrsig_expiry: Family<ZoneLabels, Gauge>,
    /// What the gauges above have series for, so that series of what went away are removed.
    seen: Mutex<Seen>,
}

/// The label values of the control-side gauges, as last set.
#[derive(Debug, Default)]
struct Seen {
    /// Check ids (`health_target_up`).
    targets: HashSet<String>,
    /// Data centres (`datacenter_state`, `datacenter_override`).
    datacenters: Vec<String>,
    /// Signed zones (`zone_rrsig_expiry_seconds`).
    signed_zones: Vec<String>,
}

/// The states a data centre can be in (`datacenters[].state` in the status JSON).
pub const DATACENTER_STATES: [&str; 8] = ["up", "down", "partial", "wavering", "drained", "forced-down", "forced-up", "idle"];
/// Admin actions, as the API spells them.
pub const OVERRIDE_ACTIONS: [&str; 3] = ["down", "up", "drain"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransferLabels {
    pub kind: &'static str,
    pub result: &'static str,
}

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
        let tcp_cache_hits = Counter::default();
        registry.register("tcp_answer_cache_hits", "TCP answers copied from the TCP thread's answer cache (same query bytes, same snapshot)", tcp_cache_hits.clone());
        let online = online_signing();
        registry.register("compact_denial_signatures", "Signatures made on the query path for compact denial (names that do not exist, wildcard answers)", online.signatures.clone());
        registry.register("compact_denial_cache_hits", "Compact-denial signatures a thread had made before and answered again", online.cache_hits.clone());
        registry.register("compact_denial_truncated", "UDP queries answered with TC=1 because the thread's compact-denial signing budget was spent", online.truncated.clone());
        registry.register("compact_denial_servfail", "TCP queries answered SERVFAIL because the thread's compact-denial signing budget was spent", online.servfail.clone());
        let http_refused = Counter::default();
        registry.register("http_refused_connections", "HTTP API connections closed at the connection cap", http_refused.clone());
        let http_auth_failures = Counter::default();
        registry.register("http_auth_failures", "HTTP API requests refused with 401: missing or wrong bearer token", http_auth_failures.clone());
        let http_auth_limited = Counter::default();
        registry.register("http_auth_limited", "HTTP API requests refused with 429: the client failed authentication too often", http_auth_limited.clone());
        let http_tls_failures = Counter::default();
        registry.register("http_tls_failures", "HTTP API connections closed in the TLS handshake (including plain HTTP sent to the HTTPS listener)", http_tls_failures.clone());
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
        let transfers = Family::<TransferLabels, Counter>::default();
        registry.register(
            "transfers",
            "Zone transfers served (axfr, ixfr), NOTIFY received and sent, refreshes from primaries (refresh), by result",
            transfers.clone(),
        );
        Metrics {
            transfers,
            zone_rrsig_expiry,
            seen: Mutex::new(Seen::default()),
            responses,
            datacenter_state,
            datacenter_override,
            state_file_errors,
            http_refused,
            http_auth_failures,
            http_auth_limited,
            http_tls_failures,
            rrl_dropped,
            rrl_slipped,
            udp_too_big,
            udp_cache_hits,
            tcp_cache_hits,
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

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // never panics: writing to a String cannot fail.
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("encode metrics");
        out
    }
}
