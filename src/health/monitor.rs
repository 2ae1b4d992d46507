//! The [`Monitor`]: every check target's record, the admin overrides, what is known of
//! each peer, and the tasks that feed them, under one lock (mini-redis's `Db`: one
//! `Mutex<State>` beside a `Notify`). Writers (probe and peer tasks, the admin API)
//! change the state and notify; the publisher (`control::tasks::publish_health`) wakes,
//! takes the dirty flag and asks for the [`HealthView`](super::HealthView).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;

use super::fleet::{self, PeerState};
use super::history::{self, Actor, AdminChange, AdminEvent, OverrideChange};
use super::probe::ProbeResult;
use super::state::{Hysteresis, Phase};
use super::store::{self, Saved};
use super::tasks::{self, ProbeFactory};
use super::{now_secs, Change, Observation, Override, OverrideTarget, TargetRecord};
use crate::config::defaults::{CHECK_INTERVAL, CHECK_MAX_CONCURRENT};
use crate::config::fleet::FleetConfig;
use crate::config::health::{Check, HealthConfig};

mod read;

/// Recent changes kept for status.
const RECENT_CHANGES: usize = 100;

/// Called for every probe result: (target id, result, flipped).
pub type ProbeObserver = Box<dyn Fn(&str, &ProbeResult, bool) + Send + Sync>;

/// Runs the checks and holds their state. Control side only: the query path reads the
/// [`HealthView`](super::HealthView) in its snapshot.
pub struct Monitor {
    state: Mutex<State>,
    /// Notified when something answers depend on changed.
    pub changed: Notify,
    /// Makes the probe of a check (real ones, or a test's).
    probes: ProbeFactory,
}

/// Everything the monitor knows. std's `Mutex`: it is held for bookkeeping only, never
/// across an `.await` or a probe.
struct State {
    /// By check id.
    targets: BTreeMap<String, TargetRecord>,
    overrides: Vec<Override>,
    /// Phases read from the state file (and kept for checks not configured now).
    saved: BTreeMap<String, Phase>,
    recent: VecDeque<Change>,
    /// The audit trail: override changes (also shown in "recent changes") and reloads.
    admin: history::AdminLog,
    /// Something answers depend on changed since the last publish.
    dirty: bool,
    /// Phases or overrides changed since the state file was written.
    unsaved: bool,
    state_file: Option<PathBuf>,
    state_error: Option<String>,
    /// State-file reads and writes that failed.
    state_errors: u64,
    fleet: FleetConfig,
    peers: BTreeMap<String, PeerState>,
    observer: Option<Arc<ProbeObserver>>,
    /// Bounds the probes in flight (`health.max-concurrent`).
    limit: Arc<Semaphore>,
    probe_tasks: HashMap<String, JoinHandle<()>>,
    peer_tasks: Vec<JoinHandle<()>>,
}

/// A copy of what the monitor knows, for status and metrics.
#[derive(Debug, Clone)]
pub struct MonitorReport {
    pub targets: Vec<TargetRecord>,
    pub overrides: Vec<Override>,
    /// Health changes, newest first.
    pub recent: Vec<Change>,
    /// The audit trail (overrides set, removed, expired; reloads), newest first.
    pub admin: Vec<AdminEvent>,
    pub state_error: Option<String>,
    /// State-file reads and writes that failed so far.
    pub state_errors: u64,
    /// The fleet config in force and what is known of each peer.
    pub fleet: FleetConfig,
    pub peers: Vec<PeerState>,
}

impl Monitor {
    /// Creates the monitor, reading the saved phases and overrides from the state file.
    /// A corrupt state file is set aside (renamed `*.corrupt`), logged and counted; the
    /// server starts without saved state rather than not at all.
    pub fn new(state_file: Option<PathBuf>) -> Result<Arc<Monitor>, String> {
        Monitor::with_probes(state_file, tasks::real_probes())
    }

    /// [`Monitor::new`] with another way to probe (tests bring scripted probes).
    pub fn with_probes(state_file: Option<PathBuf>, probes: ProbeFactory) -> Result<Arc<Monitor>, String> {
        let mut state_error = None;
        let saved = match &state_file {
            Some(p) => store::read(p).unwrap_or_else(|e| {
                tracing::error!(error = %e, "cannot use the state file; starting without saved state");
                let _ = std::fs::rename(p, p.with_extension("corrupt"));
                state_error = Some(e);
                Saved::default()
            }),
            None => Saved::default(),
        };
        let fleet = FleetConfig::from_spec(&Default::default(), CHECK_INTERVAL.default, std::path::Path::new(".")).map_err(|e| e.to_string())?;
        let state = State {
            targets: BTreeMap::new(),
            overrides: saved.overrides,
            saved: saved.targets,
            recent: VecDeque::new(),
            admin: history::AdminLog::default(),
            dirty: true,
            unsaved: false,
            state_file,
            state_errors: u64::from(state_error.is_some()),
            state_error,
            fleet,
            peers: BTreeMap::new(),
            observer: None,
            limit: Arc::new(Semaphore::new(CHECK_MAX_CONCURRENT.default)),
            probe_tasks: HashMap::new(),
            peer_tasks: Vec::new(),
        };
        Ok(Arc::new(Monitor { state: Mutex::new(state), changed: Notify::new(), probes }))
    }

    /// The one lock. Every change under it completes before it is released (no code
    /// between two related writes can panic but allocation), so after a panic elsewhere
    /// the state is still consistent: take it over rather than stop health checking.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks a change answers depend on and wakes the publisher.
    fn changed(&self, mut st: MutexGuard<'_, State>) {
        st.dirty = true;
        drop(st);
        self.changed.notify_one();
    }

    /// Applies a (re)loaded config: the state file's path and the probe concurrency;
    /// starts tasks for new checks and stops those of checks no longer configured
    /// (unchanged checks keep their state); restarts the peer pullers when the fleet
    /// config changed. Must run inside a tokio runtime.
    pub fn reconcile(self: &Arc<Self>, cfg: &HealthConfig, fleet: &FleetConfig) {
        let mut st = self.state();
        st.state_file = cfg.state_file.clone();
        st.limit = Arc::new(Semaphore::new(cfg.max_concurrent));
        if st.fleet != *fleet || st.peer_tasks.is_empty() {
            st.fleet = fleet.clone();
            for t in st.peer_tasks.drain(..) {
                t.abort();
            }
            st.peers.retain(|name, _| fleet.peers.iter().any(|p| &p.name == name));
            for p in &fleet.peers {
                if p.is_plain_http() {
                    tracing::warn!(peer = %p.name, url = %p.url, "peer pulled over plain HTTP: its token and observations travel unencrypted (use https:// outside a lab)");
                }
                let peer = st.peers.entry(p.name.clone()).or_default();
                peer.name = p.name.clone();
                peer.url = p.url.clone();
                st.peer_tasks.push(tokio::spawn(tasks::peer_loop(Arc::clone(self), p.clone(), fleet.clone())));
            }
        }
        let wanted: HashMap<String, &Check> = cfg.checks.iter().map(|c| (c.id(), c)).collect();
        let gone: Vec<String> = st.targets.keys().filter(|k| !wanted.contains_key(*k)).cloned().collect();
        for k in gone {
            st.targets.remove(&k);
            if let Some(t) = st.probe_tasks.remove(&k) {
                t.abort();
            }
        }
        for (id, check) in wanted {
            if st.targets.get(&id).is_some_and(|r| &r.check == check) {
                continue;
            }
            let phase = st.saved.get(&id).copied().unwrap_or(Phase::Up);
            let probed_here = check.probed_from(&fleet.vantage);
            let record = TargetRecord {
                check: check.clone(),
                hyst: Hysteresis::new(phase),
                since: now_secs(),
                last: None,
                flips: 0,
                probes: 0,
                failures: 0,
                has_result: false,
                probed_here,
                history: history::History::default(),
            };
            st.targets.insert(id.clone(), record);
            if let Some(t) = st.probe_tasks.remove(&id) {
                t.abort();
            }
            // Targets restricted to other vantage points are not probed here; their
            // verdict comes from the peers that do.
            if probed_here {
                let task = tokio::spawn(tasks::probe_loop(Arc::clone(self), id.clone(), check.clone()));
                st.probe_tasks.insert(id, task);
            }
        }
        self.changed(st);
    }

    /// Stops every probe and peer task.
    pub fn stop(&self) {
        let mut st = self.state();
        for (_, t) in st.probe_tasks.drain() {
            t.abort();
        }
        for t in st.peer_tasks.drain(..) {
            t.abort();
        }
    }

    /// Sets the function told about every probe (metrics).
    pub fn set_observer(&self, f: ProbeObserver) {
        self.state().observer = Some(Arc::new(f));
    }

    pub(super) fn probe_for(&self, check: &Check) -> Result<Arc<dyn super::Probe>, String> {
        (self.probes)(check)
    }

    pub(super) fn semaphore(&self) -> Arc<Semaphore> {
        self.state().limit.clone()
    }

    /// Records a probe result (called by the probe tasks; also by tests): the target's
    /// hysteresis, counters and history; a phase change is logged, kept in the recent
    /// changes and published; the observer is told outside the lock.
    pub fn observe(&self, id: &str, r: &ProbeResult) {
        let mut st = self.state();
        let observer = st.observer.clone();
        let now = now_secs();
        let latency_ms = r.latency.as_secs_f64() * 1000.0;
        let Some(rec) = st.targets.get_mut(id) else {
            // A check removed while its probe ran: counted, nothing else.
            drop(st);
            if let Some(f) = observer {
                f(id, r, false);
            }
            return;
        };
        let before = rec.hyst.phase;
        let flipped = rec.hyst.observe(r.ok, rec.check.fall, rec.check.rise);
        rec.probes += 1;
        rec.failures += u64::from(!r.ok);
        rec.has_result = true;
        rec.last = Some(Observation { ok: r.ok, at: now, latency_ms, error: r.error.clone() });
        let after = rec.hyst.phase;
        rec.history.record(now, r.ok, after.is_up(), latency_ms);
        rec.flips += u64::from(flipped);
        if before != after {
            rec.since = now;
            if flipped {
                tracing::info!(target_id = %id, from = before.as_str(), to = after.as_str(), error = ?r.error, "health flip");
            } else {
                tracing::debug!(target_id = %id, from = before.as_str(), to = after.as_str(), "health phase");
            }
            st.recent.push_front(Change { at: now, target: id.to_string(), from: before, to: after });
            st.recent.truncate(RECENT_CHANGES);
            st.unsaved |= flipped;
            self.changed(st);
        } else {
            drop(st);
        }
        if let Some(f) = observer {
            f(id, r, flipped);
        }
    }

    /// Records a pull from a peer (called by the peer tasks).
    pub(super) fn record_pull(&self, name: &str, result: Result<fleet::Pulled, String>, latency: Duration) {
        let mut st = self.state();
        let Some(peer) = st.peers.get_mut(name) else { return };
        peer.latency_ms = Some(latency.as_secs_f64() * 1000.0);
        match result {
            Ok(pulled) => {
                if !peer.reachable {
                    tracing::info!(peer = %name, "peer reachable");
                }
                peer.reachable = true;
                peer.last_ok = Some(now_secs());
                peer.last_error = None;
                match pulled {
                    fleet::Pulled::Changed(doc, etag, bytes) => {
                        peer.bytes += bytes;
                        peer.doc = Some(doc);
                        peer.etag = etag;
                    }
                    fleet::Pulled::Unchanged => peer.unchanged += 1,
                }
            }
            Err(e) => {
                if peer.reachable || peer.last_error.is_none() {
                    tracing::warn!(peer = %name, error = %e, "peer unreachable");
                }
                peer.reachable = false;
                peer.last_error = Some(e);
            }
        }
        self.changed(st);
    }

    /// The ETag of the document last pulled from `peer`, for a conditional pull.
    pub(super) fn peer_etag(&self, peer: &str) -> Option<String> {
        self.state().peers.get(peer).and_then(|p| p.etag.clone())
    }

    /// Sets an admin override (replacing one on the same target), recorded in the audit
    /// trail as made `by`.
    pub fn set_override(&self, o: Override, by: Actor) {
        let mut st = self.state();
        let from = st.overrides.iter().find(|x| x.target == o.target).map(|x| x.action);
        let change = AdminChange::Override { target: o.target.clone(), from, to: Some(o.action), change: OverrideChange::Set { expires_at: o.expires_at } };
        st.admin.push(AdminEvent { at: o.set_at, by, change });
        st.overrides.retain(|x| x.target != o.target);
        st.overrides.push(o);
        st.unsaved = true;
        self.changed(st);
    }

    /// Removes an override (recorded as made `by`); returns whether one existed.
    pub fn clear_override(&self, target: &OverrideTarget, by: Actor) -> bool {
        let mut st = self.state();
        let Some(from) = st.overrides.iter().find(|x| &x.target == target).map(|x| x.action) else { return false };
        st.overrides.retain(|x| &x.target != target);
        let change = AdminChange::Override { target: target.clone(), from: Some(from), to: None, change: OverrideChange::Removed };
        st.admin.push(AdminEvent { at: now_secs(), by, change });
        st.unsaved = true;
        self.changed(st);
        true
    }

    /// Records a reload in the audit trail (the control side calls it for every attempt).
    pub fn record_reload(&self, by: Actor, ok: bool, generation: u64, errors: Vec<String>) {
        self.state().admin.push(AdminEvent { at: now_secs(), by, change: AdminChange::Reload { ok, generation, errors } });
    }

    /// Drops expired overrides; returns true if any were. (The publisher calls it just
    /// before taking the dirty flag, so it does not notify.)
    pub fn expire_overrides(&self, now: u64) -> bool {
        let mut st = self.state();
        let (gone, kept): (Vec<Override>, Vec<Override>) = std::mem::take(&mut st.overrides).into_iter().partition(|o| o.expires_at.is_some_and(|e| e <= now));
        st.overrides = kept;
        for o in &gone {
            let change = AdminChange::Override { target: o.target.clone(), from: Some(o.action), to: None, change: OverrideChange::Expired };
            st.admin.push(AdminEvent { at: now, by: Actor::Expiry, change });
        }
        let expired = !gone.is_empty();
        if expired {
            st.dirty = true;
            st.unsaved = true;
        }
        expired
    }

    /// Takes the dirty flag (true when a publish is due).
    pub fn take_dirty(&self) -> bool {
        std::mem::take(&mut self.state().dirty)
    }

    /// Writes the state file if phases or overrides changed since the last write.
    pub fn save_if_changed(&self) {
        let mut st = self.state();
        if !st.unsaved {
            return;
        }
        let Some(path) = st.state_file.clone() else {
            st.unsaved = false;
            return;
        };
        let mut targets = st.saved.clone();
        for (id, r) in &st.targets {
            targets.insert(id.clone(), if r.hyst.phase.is_up() { Phase::Up } else { Phase::Down });
        }
        match store::write(&path, &Saved { targets, overrides: st.overrides.clone() }) {
            Ok(()) => {
                st.unsaved = false;
                st.state_error = None;
            }
            Err(e) => {
                // Keep serving; try again on the next change. The previous file stays intact.
                if st.state_error.as_deref() != Some(e.as_str()) {
                    tracing::error!(error = %e, "cannot write the state file");
                }
                st.state_error = Some(e);
                st.state_errors += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests;
