//! The control side's gauges and counters: probes, health, fleet, data-centre states,
//! signed zones, reloads. Called from the health monitor's observer, the health
//! publisher and the `/metrics` handler; never on the query path.

use std::collections::HashSet;
use std::sync::{MutexGuard, PoisonError};

use prometheus_client::metrics::counter::Counter;

use super::*;
use crate::health::probe::ProbeResult;
use crate::health::MonitorReport;
use crate::services::ServiceTable;

impl Metrics {
    /// The label values last set. Replaced whole on every update, so after a panic
    /// elsewhere while it was held it is still consistent: take it over.
    fn seen(&self) -> MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
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
    pub fn observe_fleet(&self, monitor: &MonitorReport, digest: &str, zones: &std::collections::BTreeMap<String, u32>) {
        let mut disagree = 0;
        for p in &monitor.peers {
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
    pub fn observe_health(&self, monitor: &MonitorReport) {
        self.state_file_errors.set(monitor.state_errors as i64);
        let targets = &monitor.targets;
        let mut seen = self.seen();
        let ids: HashSet<String> = targets.iter().map(|t| t.check.id()).collect();
        for old in seen.targets.iter().filter(|k| !ids.contains(*k)) {
            self.target_up.remove(&TargetLabels { target: old.clone() });
        }
        for t in targets {
            self.target_up.get_or_create(&TargetLabels { target: t.check.id() }).set(i64::from(t.hyst.phase.is_up()));
        }
        seen.targets = ids;
    }

    /// Sets the data-centre gauges: (name, state, override action) per configured data
    /// centre. Series of data centres no longer configured are removed.
    pub fn observe_datacenters(&self, dcs: &[(String, &'static str, Option<&'static str>)]) {
        let mut seen = self.seen();
        for old in seen.datacenters.iter().filter(|n| !dcs.iter().any(|(d, _, _)| d == *n)) {
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
        seen.datacenters = dcs.iter().map(|(d, _, _)| d.clone()).collect();
    }

    /// Sets the RRSIG expiry gauge for every signed zone served now (zone, earliest
    /// expiry as Unix seconds); series of zones no longer signed or served are removed.
    pub fn observe_signed_zones(&self, zones: &[(String, u64)], now: u64) {
        let mut seen = self.seen();
        for old in seen.signed_zones.iter().filter(|n| !zones.iter().any(|(z, _)| z == *n)) {
            self.zone_rrsig_expiry.remove(&ZoneLabels { zone: old.clone() });
        }
        for (zone, expiry) in zones {
            self.zone_rrsig_expiry.get_or_create(&ZoneLabels { zone: zone.clone() }).set(*expiry as i64 - now as i64);
        }
        seen.signed_zones = zones.iter().map(|(z, _)| z.clone()).collect();
    }

    pub fn count_reload(&self, ok: bool) {
        let result = if ok { "success" } else { "failure" };
        self.reloads.get_or_create(&ResultLabels { result: result.into() }).inc();
    }

    pub fn reload_count(&self, ok: bool) -> u64 {
        let result = if ok { "success" } else { "failure" };
        self.reloads.get_or_create(&ResultLabels { result: result.into() }).get()
    }
}
