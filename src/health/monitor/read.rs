//! Reading what the monitor knows: the [`HealthView`] answers are built from (per check
//! the fleet's verdict, plus the overrides), a target's verdict, this instance's
//! observations for its peers, and a whole report for status and metrics. Each takes the
//! lock once.

use std::collections::BTreeMap;

use super::{Monitor, MonitorReport, State};
use crate::config::health::{Check, HealthConfig};
use crate::health::fleet::{self, Observations, Observed, Verdict, Vote};
use crate::health::state::Phase;
use crate::health::{now_secs, CheckView, HealthView, OverrideTarget};

impl Monitor {
    /// The view answers are built from, for the checks of `cfg`: per check the fleet
    /// verdict (own view when there is no fleet), plus unexpired overrides.
    pub fn view(&self, cfg: &HealthConfig) -> HealthView {
        let now = now_secs();
        let st = self.state();
        let checks = cfg
            .checks
            .iter()
            .map(|c| {
                let v = st.verdict(c, now);
                let interval = c.interval.as_secs().max(1);
                let next = match st.targets.get(&c.id()) {
                    Some(r) if v.wavering => r.hyst.checks_until_flip(c.fall, c.rise) as u64 * interval,
                    _ => c.fall as u64 * interval,
                };
                CheckView { up: v.up, wavering: v.wavering, next_change: next.min(u32::MAX as u64) as u32 }
            })
            .collect();
        let mut view = HealthView { checks, ..HealthView::default() };
        for o in st.overrides.iter().filter(|o| o.expires_at.is_none_or(|e| e > now)) {
            match &o.target {
                OverrideTarget::Datacenter(d) => {
                    view.datacenters.insert(d.clone(), o.action);
                }
                OverrideTarget::Address(a) => {
                    view.addresses.insert(*a, o.action);
                }
            }
        }
        view
    }

    /// The combined verdict for one check target (own vote + fresh peer votes).
    pub fn verdict_for(&self, check: &Check, now: u64) -> Verdict {
        self.state().verdict(check, now)
    }

    /// This instance's own observations, for its peers.
    pub fn observations(&self, generation: u64, config_digest: String, zones: BTreeMap<String, u32>) -> Observations {
        let st = self.state();
        let stale = st.fleet.stale_after.as_secs().max(1);
        let now = now_secs();
        let targets = st
            .targets
            .iter()
            .filter(|(_, r)| r.has_result && r.probed_here)
            .map(|(id, r)| Observed { id: id.clone(), phase: r.hyst.phase, fresh: r.last.as_ref().is_some_and(|l| now.saturating_sub(l.at) <= stale) })
            .collect();
        Observations { vantage: st.fleet.vantage.clone(), generation, config_digest, zones, targets }
    }

    /// A copy of everything, taken under the lock at once.
    pub fn report(&self) -> MonitorReport {
        let st = self.state();
        MonitorReport {
            targets: st.targets.values().cloned().collect(),
            overrides: st.overrides.clone(),
            recent: st.recent.iter().cloned().collect(),
            admin: st.admin.events(),
            state_error: st.state_error.clone(),
            state_errors: st.state_errors,
            fleet: st.fleet.clone(),
            peers: st.peers.values().cloned().collect(),
        }
    }
}

impl State {
    /// Own vote (when this instance probes the target and has a result) and every peer
    /// document's vote, combined by [`fleet::verdict`].
    fn verdict(&self, check: &Check, now: u64) -> Verdict {
        let id = check.id();
        let stale = self.fleet.stale_after.as_secs().max(1);
        let rec = self.targets.get(&id);
        let own = rec.filter(|r| r.has_result && r.probed_here).map(|r| {
            let age = now.saturating_sub(r.last.as_ref().map_or(0, |l| l.at));
            Vote { vantage: self.fleet.vantage.clone(), phase: r.hyst.phase, up: r.hyst.phase.is_up(), age_s: age, fresh: age <= stale }
        });
        let fallback = rec.map(|r| r.hyst.phase).or_else(|| self.saved.get(&id).copied()).unwrap_or(Phase::Up);
        let votes: Vec<Vote> = self
            .peers
            .values()
            .filter_map(|p| {
                let doc = p.doc.as_ref()?;
                let o = doc.targets.iter().find(|t| t.id == id)?;
                let pulled_age = p.last_ok.map_or(u64::MAX, |t| now.saturating_sub(t));
                Some(Vote { vantage: doc.vantage.clone(), phase: o.phase, up: o.phase.is_up(), age_s: pulled_age, fresh: o.fresh && pulled_age <= stale })
            })
            .collect();
        fleet::verdict(own, votes, self.fleet.quorum, fallback)
    }
}
