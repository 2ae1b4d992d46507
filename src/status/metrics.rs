//! Prometheus metrics (prometheus-client). Counters used on the query path are
//! resolved to plain atomic handles at start-up, so counting costs one atomic add.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum Proto {
    Udp,
    Tcp,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueryLabels {
    pub proto: Proto,
    pub rcode: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    queries: Family<QueryLabels, Counter>,
    /// Pre-resolved per (proto, rcode 0..=16) so the query path never touches the family's lock.
    udp_by_rcode: Vec<Counter>,
    tcp_by_rcode: Vec<Counter>,
    pub truncated: Counter,
    pub dropped: Family<ReasonLabels, Counter>,
    pub dropped_malformed: Counter,
    pub tcp_refused: Counter,
    pub tcp_connections: Gauge,
    pub reloads: Family<ResultLabels, Counter>,
    pub zones: Gauge,
    pub generation: Gauge,
}

pub const RCODE_NAMES: [&str; 17] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH",
    "NOTZONE", "RCODE11", "RCODE12", "RCODE13", "RCODE14", "RCODE15", "BADVERS",
];

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("waypost");
        let queries = Family::<QueryLabels, Counter>::default();
        registry.register("dns_responses", "DNS responses sent, by transport and RCODE", queries.clone());
        let mk = |proto: Proto| {
            RCODE_NAMES
                .iter()
                .map(|r| queries.get_or_create_owned(&QueryLabels { proto: proto.clone(), rcode: (*r).to_string() }))
                .collect::<Vec<_>>()
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
        Metrics {
            registry,
            queries,
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

    #[inline]
    pub fn count_response(&self, proto: Proto, rcode: u16, truncated: bool) {
        let table = match proto {
            Proto::Udp => &self.udp_by_rcode,
            Proto::Tcp => &self.tcp_by_rcode,
        };
        table[(rcode as usize).min(RCODE_NAMES.len() - 1)].inc();
        if truncated {
            self.truncated.inc();
        }
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
        let _ = &self.queries;
        let mut out = String::new();
        // never panics: writing to a String cannot fail.
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("encode metrics");
        out
    }
}
