//! Health checking: probes (`probe`), hysteresis (`state`), the state file (`store`),
//! the last hour per check and the admin actions (`history`),
//! and the [`Monitor`] that runs one task per unique check, applies results and admin
//! overrides, and asks the control side to publish a new snapshot when anything that
//! answers depend on changed. Knows HTTP and TCP, nothing about DNS messages.

pub mod fleet;
pub mod history;
pub mod probe;
pub mod state;
pub mod store;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, Semaphore};

use crate::config::fleet::FleetConfig;
use crate::config::health::{Check, HealthConfig};
use fleet::{Observations, Observed, PeerState, Verdict, Vote};
use probe::{ProbeResult, Prober};
use state::{Hysteresis, Phase};

/// An admin action on a data centre or an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Out of answers, whatever checks say.
    Down,
    /// In answers, whatever checks say.
    Up,
    /// Out of answers while checks keep running (planned maintenance).
    Drain,
}

impl Action {
    pub fn serves(self) -> bool {
        self == Action::Up
    }
}

/// What an override applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub enum OverrideTarget {
    Datacenter(String),
    Address(IpAddr),
}

impl std::fmt::Display for OverrideTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OverrideTarget::Datacenter(d) => write!(f, "datacenter {d}"),
            OverrideTarget::Address(a) => write!(f, "address {a}"),
        }
    }
}

/// An admin override, saved in the state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Override {
    pub target: OverrideTarget,
    pub action: Action,
    /// Seconds since the epoch when it was set, and when it ends (None: until removed).
    pub set_at: u64,
    pub expires_at: Option<u64>,
}

/// One probe's outcome as shown in status.
#[derive(Debug, Clone, Serialize)]
pub struct Observation {
    pub ok: bool,
    pub at: u64,
    pub latency_ms: f64,
    pub error: Option<String>,
}

/// Everything known about one check target.
#[derive(Debug, Clone)]
pub struct TargetRecord {
    pub check: Check,
    pub hyst: Hysteresis,
    /// When the current phase began (seconds since the epoch).
    pub since: u64,
    pub last: Option<Observation>,
    pub flips: u64,
    pub probes: u64,
    pub failures: u64,
    /// Set once this process has a result of its own; before that the phase is the
    /// saved one (or up).
    pub has_result: bool,
    /// This instance probes it (not restricted to other vantage points).
    pub probed_here: bool,
    /// The last hour, for the status page's timeline.
    pub history: history::History,
}

/// A change of phase, for the status page and logs.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub at: u64,
    pub target: String,
    pub from: Phase,
    pub to: Phase,
}

/// Recent changes kept for status.
const RECENT_CHANGES: usize = 100;
/// Changes arriving within this window are published together.
pub const PUBLISH_COALESCE: Duration = Duration::from_millis(50);

/// The status of one configured check, as answers need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckView {
    pub up: bool,
    pub wavering: bool,
    /// Seconds until the phase could next change (checks left × interval).
    pub next_change: u32,
}

/// Health as the answer side sees it: frozen per snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealthView {
    /// Indexed like `HealthConfig::checks`.
    pub checks: Vec<CheckView>,
    pub datacenters: HashMap<String, Action>,
    pub addresses: HashMap<IpAddr, Action>,
}

pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

struct Inner {
    targets: BTreeMap<String, TargetRecord>,
    overrides: Vec<Override>,
    saved: BTreeMap<String, Phase>,
    recent: VecDeque<Change>,
    tasks: HashMap<String, tokio::task::JoinHandle<()>>,
    /// Something answers depend on changed since the last publish.
    dirty: bool,
    /// Phases or overrides changed since the state file was written.
    unsaved: bool,
    state_error: Option<String>,
    /// State-file reads and writes that failed.
    state_errors: u64,
    /// Override changes, for "recent changes".
    admin: history::AdminLog,
}

/// Runs the checks and holds their state. Control side only: the query path reads
/// the [`HealthView`] in its snapshot.
/// Called for every probe result: (target id, result, flipped).
pub type ProbeObserver = Box<dyn Fn(&str, &ProbeResult, bool) + Send + Sync>;

pub struct Monitor {
    inner: Mutex<Inner>,
    observer: Mutex<Option<Arc<ProbeObserver>>>,
    fleet: Mutex<FleetConfig>,
    peers: Mutex<BTreeMap<String, PeerState>>,
    peer_tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    pub changed: Notify,
    pub state_file: Mutex<Option<PathBuf>>,
    limit: Mutex<Arc<Semaphore>>,
}

impl Monitor {
    /// Creates the monitor, reading the saved phases and overrides from the state file.
    /// A corrupt state file is set aside (renamed `*.corrupt`), logged and counted; the
    /// server starts without saved state rather than not at all.
    pub fn new(state_file: Option<PathBuf>) -> Result<Arc<Monitor>, String> {
        let mut state_error = None;
        let saved = match &state_file {
            Some(p) => match store::read(p) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot use the state file; starting without saved state");
                    let _ = std::fs::rename(p, p.with_extension("corrupt"));
                    state_error = Some(e);
                    store::StateFile::default()
                }
            },
            None => store::StateFile::default(),
        };
        Ok(Arc::new(Monitor {
            inner: Mutex::new(Inner {
                targets: BTreeMap::new(),
                overrides: saved.overrides,
                saved: saved.targets,
                recent: VecDeque::new(),
                tasks: HashMap::new(),
                dirty: true,
                unsaved: false,
                state_errors: u64::from(state_error.is_some()),
                state_error,
                admin: history::AdminLog::default(),
            }),
            observer: Mutex::new(None),
            fleet: Mutex::new(FleetConfig::from_spec(&Default::default(), crate::config::defaults::CHECK_INTERVAL.default).expect("default fleet config")),
            peers: Mutex::new(BTreeMap::new()),
            peer_tasks: Mutex::new(Vec::new()),
            changed: Notify::new(),
            state_file: Mutex::new(state_file),
            limit: Mutex::new(Arc::new(Semaphore::new(crate::config::defaults::CHECK_MAX_CONCURRENT.default))),
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts tasks for new checks and stops tasks for checks no longer configured;
    /// unchanged checks keep their state. Must run inside a tokio runtime.
    pub fn reconcile(self: &Arc<Self>, cfg: &HealthConfig, fleet: &FleetConfig) {
        *self.limit.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(Semaphore::new(cfg.max_concurrent));
        self.reconcile_fleet(fleet);
        let vantage = fleet.vantage.clone();
        let mut inner = self.lock();
        let wanted: HashMap<String, &Check> = cfg.checks.iter().map(|c| (c.id(), c)).collect();
        let gone: Vec<String> = inner.targets.keys().filter(|k| !wanted.contains_key(*k)).cloned().collect();
        for k in gone {
            inner.targets.remove(&k);
            if let Some(t) = inner.tasks.remove(&k) {
                t.abort();
            }
        }
        for (id, check) in wanted {
            let same = inner.targets.get(&id).is_some_and(|r| &r.check == check);
            if same {
                continue;
            }
            let phase = inner.saved.get(&id).copied().unwrap_or(Phase::Up);
            inner.targets.insert(
                id.clone(),
                TargetRecord {
                    check: check.clone(),
                    hyst: Hysteresis::new(phase),
                    since: now_secs(),
                    last: None,
                    flips: 0,
                    probes: 0,
                    failures: 0,
                    has_result: false,
                    probed_here: check.probed_from(&vantage),
                    history: history::History::default(),
                },
            );
            if let Some(t) = inner.tasks.remove(&id) {
                t.abort();
            }
            // Targets restricted to other vantage points are not probed here; their
            // verdict comes from the peers that do.
            if check.probed_from(&vantage) {
                let task = tokio::spawn(probe_loop(Arc::clone(self), id.clone(), check.clone()));
                inner.tasks.insert(id, task);
            }
        }
        inner.dirty = true;
        drop(inner);
        self.changed.notify_one();
    }

    /// Starts one puller per peer (restarting them when the fleet config changed).
    fn reconcile_fleet(self: &Arc<Self>, fleet: &FleetConfig) {
        let mut cur = self.fleet.lock().unwrap_or_else(|p| p.into_inner());
        let mut tasks = self.peer_tasks.lock().unwrap_or_else(|p| p.into_inner());
        if *cur == *fleet && !tasks.is_empty() {
            return;
        }
        *cur = fleet.clone();
        for t in tasks.drain(..) {
            t.abort();
        }
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        peers.retain(|name, _| fleet.peers.iter().any(|p| &p.name == name));
        for p in &fleet.peers {
            let st = peers.entry(p.name.clone()).or_default();
            st.name = p.name.clone();
            st.url = p.url.clone();
            tasks.push(tokio::spawn(peer_loop(Arc::clone(self), p.clone(), fleet.clone())));
        }
    }

    /// Stops every probe and peer task.
    pub fn stop(&self) {
        for (_, t) in self.lock().tasks.drain() {
            t.abort();
        }
        for t in self.peer_tasks.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
            t.abort();
        }
    }

    /// This instance's own observations, for its peers.
    pub fn observations(&self, generation: u64, config_digest: String, zones: BTreeMap<String, u32>) -> Observations {
        let (vantage, stale) = {
            let f = self.fleet.lock().unwrap_or_else(|p| p.into_inner());
            (f.vantage.clone(), f.stale_after.as_secs().max(1))
        };
        let now = now_secs();
        let inner = self.lock();
        let targets = inner
            .targets
            .iter()
            .filter(|(_, r)| r.has_result && r.probed_here)
            .map(|(id, r)| Observed {
                id: id.clone(),
                phase: r.hyst.phase,
                fresh: r.last.as_ref().is_some_and(|l| now.saturating_sub(l.at) <= stale),
            })
            .collect();
        Observations { vantage, generation, config_digest, zones, targets }
    }

    /// The fleet config in force and what we know of each peer.
    pub fn fleet_report(&self) -> (FleetConfig, Vec<PeerState>) {
        let f = self.fleet.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let peers = self.peers.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
        (f, peers)
    }

    /// The combined verdict for one check target (own vote + fresh peer votes).
    pub fn verdict_for(&self, check: &Check, now: u64) -> Verdict {
        let fleet = self.fleet.lock().unwrap_or_else(|p| p.into_inner()).clone();
        self.verdict_with(&fleet, check, now)
    }

    fn verdict_with(&self, fleet: &FleetConfig, check: &Check, now: u64) -> Verdict {
        let id = check.id();
        let stale = fleet.stale_after.as_secs().max(1);
        let (own, fallback) = {
            let inner = self.lock();
            let rec = inner.targets.get(&id);
            let own = rec.filter(|r| r.has_result && r.probed_here).map(|r| {
                let at = r.last.as_ref().map_or(0, |l| l.at);
                let age = now.saturating_sub(at);
                Vote { vantage: fleet.vantage.clone(), phase: r.hyst.phase, up: r.hyst.phase.is_up(), age_s: age, fresh: age <= stale }
            });
            let fallback = rec.map(|r| r.hyst.phase).or_else(|| inner.saved.get(&id).copied()).unwrap_or(Phase::Up);
            (own, fallback)
        };
        let peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        let votes: Vec<Vote> = peers
            .values()
            .filter_map(|p| {
                let doc = p.doc.as_ref()?;
                let o = doc.targets.iter().find(|t| t.id == id)?;
                let pulled_age = p.last_ok.map_or(u64::MAX, |t| now.saturating_sub(t));
                Some(Vote { vantage: doc.vantage.clone(), phase: o.phase, up: o.phase.is_up(), age_s: pulled_age, fresh: o.fresh && pulled_age <= stale })
            })
            .collect();
        fleet::verdict(own, votes, fleet.quorum, fallback)
    }

    fn record_pull(&self, name: &str, result: Result<fleet::Pulled, String>, latency: Duration) {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        let Some(st) = peers.get_mut(name) else { return };
        st.latency_ms = Some(latency.as_secs_f64() * 1000.0);
        match result {
            Ok(pulled) => {
                if !st.reachable {
                    tracing::info!(peer = %name, "peer reachable");
                }
                st.reachable = true;
                st.last_ok = Some(now_secs());
                st.last_error = None;
                match pulled {
                    fleet::Pulled::Changed(doc, etag, bytes) => {
                        st.bytes += bytes;
                        st.doc = Some(doc);
                        st.etag = etag;
                    }
                    fleet::Pulled::Unchanged => st.unchanged += 1,
                }
            }
            Err(e) => {
                if st.reachable || st.last_error.is_none() {
                    tracing::warn!(peer = %name, error = %e, "peer unreachable");
                }
                st.reachable = false;
                st.last_error = Some(e);
            }
        }
        drop(peers);
        self.lock().dirty = true;
        self.changed.notify_one();
    }

    /// Sets the function told about every probe (metrics).
    pub fn set_observer(&self, f: ProbeObserver) {
        *self.observer.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(f));
    }

    /// Records a probe result (called by the probe tasks; also by tests).
    pub fn observe(&self, id: &str, r: &ProbeResult) {
        let observer = self.observer.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let flipped = self.apply(id, r);
        if let Some(f) = observer {
            f(id, r, flipped);
        }
    }

    fn apply(&self, id: &str, r: &ProbeResult) -> bool {
        let mut inner = self.lock();
        let Some(rec) = inner.targets.get_mut(id) else { return false };
        let before = rec.hyst.phase;
        let flipped = rec.hyst.observe(r.ok, rec.check.fall, rec.check.rise);
        rec.probes += 1;
        rec.failures += u64::from(!r.ok);
        rec.has_result = true;
        rec.last = Some(Observation { ok: r.ok, at: now_secs(), latency_ms: r.latency.as_secs_f64() * 1000.0, error: r.error.clone() });
        let after = rec.hyst.phase;
        rec.history.record(now_secs(), r.ok, after.is_up(), r.latency.as_secs_f64() * 1000.0);
        if flipped {
            rec.flips += 1;
        }
        if before != after {
            rec.since = now_secs();
            let change = Change { at: rec.since, target: id.to_string(), from: before, to: after };
            if flipped {
                tracing::info!(target_id = %id, from = before.as_str(), to = after.as_str(), error = ?r.error, "health flip");
            } else {
                tracing::debug!(target_id = %id, from = before.as_str(), to = after.as_str(), "health phase");
            }
            inner.recent.push_front(change);
            inner.recent.truncate(RECENT_CHANGES);
            inner.dirty = true;
            inner.unsaved |= flipped;
            drop(inner);
            self.changed.notify_one();
        }
        flipped
    }

    /// Sets an admin override (replacing one on the same target).
    pub fn set_override(&self, o: Override) {
        let mut inner = self.lock();
        let from = inner.overrides.iter().find(|x| x.target == o.target).map(|x| x.action);
        let event = history::AdminEvent { at: o.set_at, target: o.target.clone(), from, to: Some(o.action), change: history::AdminChange::Set { expires_at: o.expires_at } };
        inner.admin.push(event);
        inner.overrides.retain(|x| x.target != o.target);
        tracing::info!(target = %o.target, action = ?o.action, expires_at = ?o.expires_at, "override set");
        inner.overrides.push(o);
        inner.dirty = true;
        inner.unsaved = true;
        drop(inner);
        self.changed.notify_one();
    }

    /// Removes an override; returns whether one existed.
    pub fn clear_override(&self, target: &OverrideTarget) -> bool {
        let mut inner = self.lock();
        let before = inner.overrides.len();
        let from = inner.overrides.iter().find(|x| &x.target == target).map(|x| x.action);
        inner.overrides.retain(|x| &x.target != target);
        let removed = inner.overrides.len() != before;
        if removed {
            inner.admin.push(history::AdminEvent { at: now_secs(), target: target.clone(), from, to: None, change: history::AdminChange::Removed });
            tracing::info!(%target, "override removed");
            inner.dirty = true;
            inner.unsaved = true;
            drop(inner);
            self.changed.notify_one();
        }
        removed
    }

    /// Drops expired overrides; returns true if any were.
    pub fn expire_overrides(&self, now: u64) -> bool {
        let mut inner = self.lock();
        let before = inner.overrides.len();
        let gone: Vec<Override> = inner.overrides.iter().filter(|o| o.expires_at.is_some_and(|e| e <= now)).cloned().collect();
        for o in gone {
            inner.admin.push(history::AdminEvent { at: now, target: o.target, from: Some(o.action), to: None, change: history::AdminChange::Expired });
        }
        inner.overrides.retain(|o| o.expires_at.is_none_or(|e| e > now));
        let expired = inner.overrides.len() != before;
        if expired {
            inner.dirty = true;
            inner.unsaved = true;
        }
        expired
    }

    /// Takes the dirty flag (true when a publish is due).
    pub fn take_dirty(&self) -> bool {
        std::mem::take(&mut self.lock().dirty)
    }

    /// Writes the state file if phases or overrides changed since the last write.
    pub fn save_if_changed(&self) {
        let path = self.state_file.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut inner = self.lock();
        if !inner.unsaved {
            return;
        }
        let Some(path) = path else {
            inner.unsaved = false;
            return;
        };
        let mut targets = inner.saved.clone();
        for (id, r) in &inner.targets {
            targets.insert(id.clone(), if r.hyst.phase.is_up() { Phase::Up } else { Phase::Down });
        }
        let file = store::StateFile { version: 1, targets, overrides: inner.overrides.clone() };
        match store::write(&path, &file) {
            Ok(()) => {
                inner.unsaved = false;
                inner.state_error = None;
            }
            Err(e) => {
                // Keep serving; try again on the next change. The previous file stays intact.
                if inner.state_error.as_deref() != Some(e.as_str()) {
                    tracing::error!(error = %e, "cannot write the state file");
                }
                inner.state_error = Some(e);
                inner.state_errors += 1;
            }
        }
    }

    /// The view answers are built from, for the checks of `cfg`: per check the
    /// fleet verdict (own view when there is no fleet), plus unexpired overrides.
    pub fn view(&self, cfg: &HealthConfig) -> HealthView {
        let now = now_secs();
        let fleet = self.fleet.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let checks = cfg
            .checks
            .iter()
            .map(|c| {
                let v = self.verdict_with(&fleet, c, now);
                let hyst = {
                    let inner = self.lock();
                    inner.targets.get(&c.id()).map(|r| r.hyst)
                };
                let next = match hyst {
                    Some(h) if v.wavering => h.checks_until_flip(c.fall, c.rise) as u64 * c.interval.as_secs().max(1),
                    _ => c.fall as u64 * c.interval.as_secs().max(1),
                };
                CheckView { up: v.up, wavering: v.wavering, next_change: next.min(u32::MAX as u64) as u32 }
            })
            .collect();
        let inner = self.lock();
        let mut v = HealthView { checks, ..HealthView::default() };
        for o in inner.overrides.iter().filter(|o| o.expires_at.is_none_or(|e| e > now)) {
            match &o.target {
                OverrideTarget::Datacenter(d) => {
                    v.datacenters.insert(d.clone(), o.action);
                }
                OverrideTarget::Address(a) => {
                    v.addresses.insert(*a, o.action);
                }
            }
        }
        v
    }

    /// A copy of every target record, overrides, recent changes and the state-file error.
    pub fn report(&self) -> (Vec<TargetRecord>, Vec<Override>, Vec<Change>, Option<String>) {
        let inner = self.lock();
        (inner.targets.values().cloned().collect(), inner.overrides.clone(), inner.recent.iter().cloned().collect(), inner.state_error.clone())
    }

    /// Override changes (set, removed, expired), newest first.
    pub fn admin_events(&self) -> Vec<history::AdminEvent> {
        self.lock().admin.events()
    }

    /// State-file reads and writes that failed so far.
    pub fn state_errors(&self) -> u64 {
        self.lock().state_errors
    }

    fn semaphore(&self) -> Arc<Semaphore> {
        self.limit.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// A stable start offset within the interval, so checks do not all fire together.
fn jitter(id: &str, interval: Duration) -> Duration {
    let h = crate::config::fnv1a(id.as_bytes());
    let ms = interval.as_millis().max(1) as u64;
    Duration::from_millis(h % ms)
}

/// One task per check: probe every interval (bounded concurrency; a hung target only
/// holds its own slot until its timeout), report to the monitor.
async fn probe_loop(monitor: Arc<Monitor>, id: String, check: Check) {
    let prober = match Prober::new(&check) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(target_id = %id, error = %e, "cannot build the probe");
            return;
        }
    };
    tokio::time::sleep(jitter(&id, check.interval)).await;
    let mut tick = tokio::time::interval(check.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let sem = monitor.semaphore();
        let Ok(_permit) = sem.acquire().await else { return };
        let r = prober.probe().await;
        drop(_permit);
        monitor.observe(&id, &r);
    }
}

/// One task per peer: pull its observations every interval (bounded by a timeout; a slow
/// or dead peer delays nothing else).
async fn peer_loop(monitor: Arc<Monitor>, peer: crate::config::fleet::Peer, fleet: FleetConfig) {
    probe::ensure_crypto_provider();
    let client = match reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).no_proxy().build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(peer = %peer.name, error = %e, "cannot build the peer client");
            return;
        }
    };
    let timeout = fleet.interval.max(Duration::from_millis(200)).min(Duration::from_secs(5));
    let mut tick = tokio::time::interval(fleet.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let started = tokio::time::Instant::now();
        let etag = monitor.peers.lock().unwrap_or_else(|p| p.into_inner()).get(&peer.name).and_then(|s| s.etag.clone());
        let r = fleet::pull(&client, &peer, fleet.token.as_deref(), etag.as_deref(), timeout).await;
        monitor.record_pull(&peer.name, r, started.elapsed());
    }
}
