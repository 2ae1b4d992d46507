//! The monitor with scripted probes, on tokio's paused clock: the probe schedule, the
//! hysteresis it drives, and the view answers get; the fleet verdict from peer documents.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::config::fleet::Peer;
use crate::config::health::CheckKind;
use crate::health::fleet::{Observations, Observed};
use crate::health::{Action, Probe};

/// A probe that answers from a script (then OK), after `delay` of virtual time.
struct Scripted {
    results: Mutex<VecDeque<bool>>,
    delay: Duration,
}

impl Probe for Scripted {
    fn probe(&self) -> Pin<Box<dyn Future<Output = ProbeResult> + Send + '_>> {
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            let ok = self.results.lock().unwrap().pop_front().unwrap_or(true);
            ProbeResult { ok, latency: self.delay, error: (!ok).then(|| "scripted failure".to_string()) }
        })
    }
}

/// Probes by target port: port → (script, delay).
fn probes(scripts: Vec<(u16, Vec<bool>, Duration)>) -> ProbeFactory {
    let by_port: HashMap<u16, Arc<Scripted>> =
        scripts.into_iter().map(|(port, s, delay)| (port, Arc::new(Scripted { results: Mutex::new(s.into()), delay }))).collect();
    Arc::new(move |c: &Check| by_port.get(&c.target.port()).cloned().map(|p| p as Arc<dyn Probe>).ok_or_else(|| "no script".to_string()))
}

fn check(port: u16, interval: Duration) -> Check {
    Check { kind: CheckKind::Tcp, target: ([192, 0, 2, 1], port).into(), interval, timeout: Duration::from_secs(1), fall: 3, rise: 2, vantage_points: None }
}

fn health(checks: Vec<Check>) -> HealthConfig {
    let mut cfg = HealthConfig::default();
    cfg.checks = checks;
    cfg.max_concurrent = 64;
    cfg
}

fn no_fleet() -> FleetConfig {
    FleetConfig::from_spec(&Default::default(), CHECK_INTERVAL.default, std::path::Path::new(".")).unwrap()
}

fn probes_of(m: &Monitor, port: u16) -> u64 {
    m.report().targets.iter().find(|t| t.check.target.port() == port).map_or(0, |t| t.probes)
}

/// Lets virtual time run in 1 ms steps until `m` has made `n` probes of `port`.
async fn until_probes(m: &Monitor, port: u16, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while probes_of(m, port) < n {
        assert!(Instant::now() < deadline, "{n} probes of port {port} never happened");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_target_goes_down_after_fall_failures_and_up_after_rise_successes_once_per_interval() {
    let interval = Duration::from_secs(2);
    let m = Monitor::with_probes(None, probes(vec![(80, vec![false, false, false, true, true], Duration::ZERO)])).unwrap();
    let cfg = health(vec![check(80, interval)]);
    m.reconcile(&cfg, &no_fleet());
    let start = Instant::now();
    let view = |m: &Monitor| m.view(&cfg).checks[0];
    until_probes(&m, 80, 1).await;
    let first = Instant::now();
    assert!(first - start < interval, "the first probe is within one interval (jitter)");
    // Observed within a polling step (1 ms) of when it happened.
    let near = |a: Duration, b: Duration| a.abs_diff(b) <= Duration::from_millis(1);
    assert!(near(first - start, tasks::jitter(&cfg.checks[0].id(), interval)), "at the check's own offset");
    m.take_dirty();
    until_probes(&m, 80, 2).await;
    assert_eq!((view(&m).up, view(&m).wavering), (true, true), "two failures: failing, still answered");
    until_probes(&m, 80, 3).await;
    assert!(near(Instant::now() - first, 2 * interval), "one probe per interval");
    assert!(!view(&m).up, "the third failure takes it down");
    assert!(m.take_dirty(), "and asks for a publish");
    until_probes(&m, 80, 4).await;
    assert_eq!((view(&m).up, view(&m).wavering), (false, true), "recovering");
    until_probes(&m, 80, 5).await;
    assert_eq!((view(&m).up, view(&m).wavering), (true, false), "the second success brings it back");
    let r = m.report();
    assert_eq!((r.targets[0].flips, r.recent.len()), (2, 4), "two flips, four phase changes");
    m.stop();
}

#[tokio::test(start_paused = true)]
async fn a_hung_probe_delays_only_its_own_check() {
    let interval = Duration::from_millis(500);
    let hung = Duration::from_secs(3600);
    let m = Monitor::with_probes(None, probes(vec![(81, vec![], hung), (82, vec![], Duration::from_millis(5))])).unwrap();
    m.reconcile(&health(vec![check(81, interval), check(82, interval)]), &no_fleet());
    until_probes(&m, 82, 20).await;
    assert_eq!(probes_of(&m, 81), 0, "the hung probe has not returned");
    m.stop();
}

#[tokio::test(start_paused = true)]
async fn overrides_change_the_view_at_once_and_expire() {
    let m = Monitor::with_probes(None, probes(vec![])).unwrap();
    let cfg = health(vec![]);
    m.reconcile(&cfg, &no_fleet());
    m.take_dirty();
    let now = now_secs();
    m.set_override(Override { target: OverrideTarget::Datacenter("ams".into()), action: Action::Drain, set_at: now, expires_at: Some(now + 60) }, crate::health::history::Actor::Api { client: None, role: Some(crate::config::access::Role::Admin) });
    assert!(m.take_dirty());
    assert_eq!(m.view(&cfg).datacenters.get("ams"), Some(&Action::Drain));
    assert!(!m.expire_overrides(now + 59));
    assert!(m.expire_overrides(now + 60));
    assert!(m.view(&cfg).datacenters.is_empty());
    let r = m.report();
    assert_eq!(r.admin.len(), 2, "set and expired, for recent changes");
}

/// A monitor whose target `port` this instance saw `own`, with peers' documents.
fn fleet_monitor(own: Phase, peers: &[(&str, Phase, u64)]) -> (Arc<Monitor>, HealthConfig) {
    let m = Monitor::with_probes(None, probes(vec![])).unwrap();
    let c = check(90, Duration::from_secs(1));
    let now = now_secs();
    {
        let mut st = m.state();
        st.fleet.vantage = "a".into();
        st.fleet.stale_after = Duration::from_secs(10);
        st.fleet.peers = peers.iter().map(|(n, _, _)| Peer { name: n.to_string(), url: format!("http://{n}") }).collect();
        let mut hyst = Hysteresis::new(own);
        hyst.phase = own;
        let last = Some(Observation { ok: own.is_up(), at: now, latency_ms: 1.0, error: None });
        let record = TargetRecord { check: c.clone(), hyst, since: now, last, flips: 0, probes: 1, failures: 0, has_result: true, probed_here: true, history: Default::default() };
        st.targets.insert(c.id(), record);
        for &(name, phase, age) in peers {
            let doc = Observations { vantage: name.into(), generation: 1, config_digest: String::new(), zones: Default::default(), targets: vec![Observed { id: c.id(), phase, fresh: true }] };
            st.peers.insert(name.into(), PeerState { name: name.into(), reachable: true, last_ok: Some(now - age), doc: Some(doc), ..Default::default() });
        }
    }
    (m, health(vec![c]))
}

#[test]
fn a_quorum_of_fresh_peers_decides_and_stale_peers_do_not_vote() {
    // This instance sees it up; two fresh peers see it down: 2 of 3, a majority.
    let (m, cfg) = fleet_monitor(Phase::Up, &[("b", Phase::Down, 1), ("c", Phase::Down, 1)]);
    assert!(!m.view(&cfg).checks[0].up);
    // One of them is stale: 1 of 2 fresh voters is not a strict majority.
    let (m, cfg) = fleet_monitor(Phase::Up, &[("b", Phase::Down, 1), ("c", Phase::Down, 3600)]);
    assert!(m.view(&cfg).checks[0].up);
    let v = m.verdict_for(&cfg.checks[0], now_secs());
    assert_eq!(v.votes.iter().filter(|v| v.fresh).count(), 2, "{v:?}");
    // Both stale: this instance's own view decides, and says so.
    let (m, cfg) = fleet_monitor(Phase::Down, &[("b", Phase::Up, 3600), ("c", Phase::Up, 3600)]);
    assert!(!m.view(&cfg).checks[0].up);
    assert!(m.verdict_for(&cfg.checks[0], now_secs()).reason.contains("own view"));
}

#[test]
fn the_observations_document_has_own_fresh_results_only() {
    let (m, _) = fleet_monitor(Phase::Down, &[("b", Phase::Up, 1)]);
    let doc = m.observations(7, "digest".into(), Default::default());
    assert_eq!((doc.vantage.as_str(), doc.generation), ("a", 7));
    assert_eq!(doc.targets, vec![Observed { id: check(90, Duration::from_secs(1)).id(), phase: Phase::Down, fresh: true }]);
}
