//! The control side: everything that changes answers goes through here and leaves as a
//! new published snapshot.
//!
//! ```text
//!  SIGHUP / POST /v1/reload ──► Control::reload ─┐
//!  GeoIP file replaced (tasks::watch_geo_database) ──► Control::reload_geo_database ─┤
//!  health flip / override / peer (tasks::publish_health) ──► Control::publish_health ─┤
//!                                                     SnapshotHandle::publish ◄────┘
//! ```
//!
//! `build` makes snapshots from the config and its files (the same code for reload and
//! `waypost check`); `tasks` runs the two loops. A failed reload leaves the serving
//! snapshot untouched. One publish at a time, so a health publish never overwrites a
//! newer reload.

pub mod build;
pub mod secondary;
pub mod tasks;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use crate::config::{Overrides, Problem};
use crate::geo::GeoDb;
use crate::health::history::Actor;
use crate::health::Monitor;
use crate::metrics::Metrics;
use crate::snapshot::{Snapshot, SnapshotHandle};
use crate::transfer::{notify, Inbox};
pub use build::{build_snapshot, load_all, ReloadReport, ZoneSummary};

/// Outcome of the last reload attempt, shown by the API.
#[derive(Debug, Clone)]
pub struct LastReload {
    pub ok: bool,
    pub at: String,
    pub errors: Vec<String>,
}

/// Owns reloading and publishing: the config's origin, the snapshot handle, the
/// monitor whose view health publishes use, and the outcome of the last reload.
pub struct Control {
    pub config_path: Option<PathBuf>,
    pub overrides: Overrides,
    pub snapshot: Arc<SnapshotHandle>,
    pub metrics: Arc<Metrics>,
    pub monitor: Arc<Monitor>,
    /// NOTIFY messages the query path accepted from primaries, for `secondary` refreshes.
    pub inbox: Arc<Inbox>,
    /// Secondary zones as their refresh loop last saw them (status), and those expired.
    secondaries: Mutex<Vec<secondary::SecondaryStatus>>,
    expired: Mutex<rustc_hash::FxHashSet<crate::wire::Name>>,
    /// One reload (or database swap) at a time; held across the blocking load.
    reload_lock: tokio::sync::Mutex<()>,
    /// Held while publishing, so a health publish never overwrites a newer reload, and
    /// over the outcome of the last reload. std's `Mutex`: held for a pointer swap and a
    /// view's computation, never across an `.await`.
    published: Mutex<Option<LastReload>>,
}

impl Control {
    pub fn new(config_path: Option<PathBuf>, overrides: Overrides, snapshot: Arc<SnapshotHandle>, metrics: Arc<Metrics>, monitor: Arc<Monitor>) -> Self {
        Control { config_path, overrides, snapshot, metrics, monitor, inbox: Arc::default(), secondaries: Mutex::default(), expired: Mutex::default(), reload_lock: tokio::sync::Mutex::new(()), published: Mutex::new(None) }
    }

    /// The publish lock. What it guards is replaced whole (a snapshot pointer, the last
    /// outcome), so after a panic elsewhere while it was held it is still consistent:
    /// take it over rather than fail every later publish.
    fn published(&self) -> MutexGuard<'_, Option<LastReload>> {
        self.published.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a reload's outcome: counted, and kept for status.
    fn record(last: &mut Option<LastReload>, metrics: &Metrics, errors: Vec<String>) {
        metrics.count_reload(errors.is_empty());
        let at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        *last = Some(LastReload { ok: errors.is_empty(), at, errors });
    }

    /// Rebuilds the services for the monitor's current health view and publishes, if it
    /// changed. Cheap: zones and geo data are shared with the current snapshot.
    pub fn publish_health(&self) {
        let _one = self.published();
        let current = self.snapshot.load();
        let view = self.monitor.view(&current.config.health);
        if view == current.health {
            return;
        }
        let next = current.derive(current.geo.clone(), view);
        drop(current);
        self.snapshot.publish(next);
        self.metrics.health_publishes.inc();
    }

    /// Reloads config and zones off the query path and publishes them, or keeps the
    /// current snapshot and returns every problem. Either way the attempt goes into the
    /// audit trail as made `by`.
    pub async fn reload(self: &Arc<Self>, by: Actor) -> Result<ReloadReport, Vec<Problem>> {
        let _one_at_a_time = self.reload_lock.lock().await;
        let this = Arc::clone(self);
        let result = off_query_path("reload", move || {
            let previous = this.snapshot.load();
            let (config, mut snapshot, report) = load_all(this.config_path.as_deref(), &this.overrides, Some(&previous), Some(&this.monitor))?;
            crate::transfer::prepare(Some(&previous), &mut snapshot);
            build::keep_serials(&config, &snapshot.serials, Some(&previous.serials));
            let changed = notify::changed(&previous, &snapshot);
            Ok((config, snapshot, report, changed))
        })
        .await
        .unwrap_or_else(|e| Err(vec![Problem { file: PathBuf::new(), line: 0, msg: format!("reload failed: {e}") }]));
        match result {
            Ok((config, mut snapshot, report, changed)) => {
                self.mark_expired(&mut snapshot);
                self.metrics.zones.set(snapshot.catalog.len() as i64);
                self.metrics.generation.set(snapshot.generation as i64);
                self.metrics.set_services(&snapshot.services);
                {
                    let mut last = self.published();
                    self.snapshot.publish(snapshot);
                    Control::record(&mut last, &self.metrics, vec![]);
                }
                notify::spawn_all(&self.snapshot.load(), changed, &self.metrics);
                return_freed_memory();
                // Takes the new state-file path and probe limit, starts new checks, stops
                // removed ones, and schedules a health publish so the new snapshot gets the
                // latest view.
                self.monitor.reconcile(&config.health, &config.fleet);
                self.monitor.record_reload(by, true, report.generation, vec![]);
                for w in &report.warnings {
                    tracing::warn!(warning = %w, "zone warning");
                }
                for z in &report.removed {
                    tracing::warn!(zone = %z, "zone removed: its file is no longer in zones-dir; it is not served any more");
                }
                tracing::info!(generation = report.generation, zones = report.zones.len(), unchanged = report.unchanged.len(), removed = report.removed.len(), "reloaded");
                Ok(report)
            }
            Err(problems) => {
                for p in &problems {
                    tracing::error!(problem = %p, "reload failed; previous zones keep serving");
                }
                let errors: Vec<String> = problems.iter().map(ToString::to_string).collect();
                self.monitor.record_reload(by, false, self.snapshot.load().generation, errors.clone());
                Control::record(&mut self.published(), &self.metrics, errors);
                Err(problems)
            }
        }
    }

    /// Publishes a replaced GeoIP database, and nothing else: zones and config stay as
    /// they were last loaded, so a zone edit that nobody reloaded yet does not go live
    /// when a `geoipupdate` job swaps the database. A database that does not open or
    /// verify is rejected like a failed reload: logged, counted, shown in status, and
    /// the old one keeps serving.
    pub async fn reload_geo_database(self: &Arc<Self>) -> Result<(), Problem> {
        let _one_at_a_time = self.reload_lock.lock().await;
        let Some(path) = self.snapshot.load().config.geo.database.clone() else { return Ok(()) };
        let open_path = path.clone();
        let opened = tokio::task::spawn_blocking(move || GeoDb::open(&open_path))
            .await
            .unwrap_or_else(|e| Err(format!("database load task failed: {e}")));
        match opened {
            Ok(db) => {
                let mut last = self.published();
                let current = self.snapshot.load();
                let geo = Arc::new(current.geo.with_db(Some(Arc::new(db))));
                let next = current.derive(geo, current.health.clone());
                drop(current);
                self.snapshot.publish(next);
                Control::record(&mut last, &self.metrics, vec![]);
                tracing::info!(database = %path.display(), "GeoIP database replaced; zones and config unchanged");
                Ok(())
            }
            Err(msg) => {
                let problem = Problem { file: path, line: 0, msg };
                tracing::error!(problem = %problem, "GeoIP database rejected; the previous one keeps serving");
                Control::record(&mut self.published(), &self.metrics, vec![problem.to_string()]);
                Err(problem)
            }
        }
    }

    /// Signs again what needs it now, without reading config or zone files: zones whose
    /// signature window passed, or whose keys (read again from key-dir) changed state —
    /// a ZSK roll made with `dnssec-keygen -S` / `dnssec-settime` advances through its
    /// steps here. Zones that need nothing keep their signatures. Returns whether it
    /// published; a key-dir problem keeps the current snapshot (logged and shown in status).
    pub async fn resign_if_due(self: &Arc<Self>) -> Result<bool, Vec<Problem>> {
        let _one_at_a_time = self.reload_lock.lock().await;
        let this = Arc::clone(self);
        let next = off_query_path("re-signing", move || -> Result<Option<Snapshot>, Vec<Problem>> {
            let current = this.snapshot.load();
            let config = &current.config;
            if config.signing.is_none() {
                return Ok(None);
            }
            let (catalog, signed, serials) = build::sign_and_stamp(config, &current.loaded, Some(&current.signed), &current.serials)?;
            let same = signed.zones.len() == current.signed.zones.len()
                && signed.zones.iter().all(|(apex, z)| current.signed.zones.get(apex).is_some_and(|p| Arc::ptr_eq(&p.zone, &z.zone)));
            if same {
                return Ok(None);
            }
            let next = Snapshot::new(config.clone(), catalog, current.loaded.clone(), current.geo.clone(), current.health.clone(), current.rrl.clone(), current.generation, Arc::new(signed));
            let mut next = Snapshot { loaded_at: current.loaded_at, http_tls: current.http_tls.clone(), serials: Arc::new(serials), ..next };
            crate::transfer::prepare(Some(&current), &mut next);
            build::keep_serials(config, &next.serials, Some(&current.serials));
            Ok(Some(next))
        })
        .await
        .unwrap_or_else(|e| Err(vec![Problem { file: PathBuf::new(), line: 0, msg: format!("re-signing failed: {e}") }]));
        match next {
            Ok(None) => Ok(false),
            Ok(Some(mut next)) => {
                self.mark_expired(&mut next);
                let changed = notify::changed(&self.snapshot.load(), &next);
                {
                    let _publishing = self.published();
                    self.snapshot.publish(next);
                }
                // Signing again raised the served serial (signer::zone::served_serial): tell secondaries.
                notify::spawn_all(&self.snapshot.load(), changed, &self.metrics);
                tracing::info!("zones signed again (new signature window or key state)");
                Ok(true)
            }
            Err(problems) => {
                for p in &problems {
                    tracing::error!(problem = %p, "re-signing failed; the current signatures keep serving");
                }
                Control::record(&mut self.published(), &self.metrics, problems.iter().map(ToString::to_string).collect());
                Err(problems)
            }
        }
    }

    pub fn secondaries(&self) -> Vec<secondary::SecondaryStatus> {
        self.secondaries.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn set_secondaries(&self, s: Vec<secondary::SecondaryStatus>) {
        *self.secondaries.lock().unwrap_or_else(PoisonError::into_inner) = s;
    }

    /// Marks a secondary zone expired (answered SERVFAIL) or not; takes effect with the
    /// next publish ([`Control::publish_expired`] or a reload).
    fn set_expired(&self, apex: &crate::wire::Name, expired: bool) {
        let mut set = self.expired.lock().unwrap_or_else(PoisonError::into_inner);
        if expired {
            set.insert(apex.clone());
        } else {
            set.remove(apex);
        }
    }

    fn is_expired(&self, apex: &crate::wire::Name) -> bool {
        self.expired.lock().unwrap_or_else(PoisonError::into_inner).contains(apex)
    }

    /// Sets each served zone's `expired` flag as the secondary loop decided.
    fn mark_expired(&self, snap: &mut Snapshot) {
        let set = self.expired.lock().unwrap_or_else(PoisonError::into_inner);
        let apexes: Vec<crate::wire::Name> = snap.catalog.iter().filter(|z| z.expired != set.contains(&z.apex)).map(|z| z.apex.clone()).collect();
        for apex in apexes {
            if let Some(sz) = snap.catalog.get_mut(apex.as_wire()) {
                let mut z = (*sz.zone).clone();
                z.expired = set.contains(&apex);
                sz.zone = Arc::new(z);
            }
        }
    }

    /// Publishes the current snapshot with the expired flags applied.
    fn publish_expired(&self) {
        let _one = self.published();
        let current = self.snapshot.load();
        let mut next = current.derive(current.geo.clone(), current.health.clone());
        drop(current);
        self.mark_expired(&mut next);
        self.snapshot.publish(next);
    }

    pub fn last_reload(&self) -> Option<LastReload> {
        self.published().clone()
    }
}

/// Runs `build` on a thread of its own at a lower CPU priority (`BUILD_NICENESS` above the
/// process's): parsing and signing a big zone (the signing threads inherit the priority)
/// yield the cores to the threads that answer queries. The thread ends with the build, so
/// nothing is left to restore (an unprivileged process could not raise it back).
async fn off_query_path<T: Send + 'static>(what: &'static str, build: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(format!("waypost-{what}"))
        .spawn(move || {
            lower_this_thread(crate::config::defaults::BUILD_NICENESS);
            let _ = tx.send(build());
        })
        .map_err(|e| format!("cannot start the {what} thread: {e}"))?;
    rx.await.map_err(|_| format!("the {what} thread ended without a result (a bug: see the log)"))
}

/// Gives the memory a build freed back to the system. glibc keeps freed memory for reuse,
/// and a zone's parse leaves most of it between live nodes: after loading a 1,000,000-record
/// zone the process stayed at the parse's peak without this (see benches/README.md,
/// zone-scale). Called after the first snapshot and after each reload is published.
pub fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own heap; any pad value is valid.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Adds `by` to the calling thread's nice value (Linux keeps one per thread).
fn lower_this_thread(by: i32) {
    // SAFETY: plain system calls on this thread's own id; a failure only leaves the
    // priority as it was.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        let now = libc::getpriority(libc::PRIO_PROCESS, tid);
        libc::setpriority(libc::PRIO_PROCESS, tid, (now + by).min(19));
    }
}

#[cfg(test)]
mod priority_tests {
    #[tokio::test]
    async fn a_build_runs_at_a_lower_priority_and_leaves_the_caller_alone() {
        let nice = || unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::syscall(libc::SYS_gettid) as libc::id_t) };
        let before = nice();
        let during = super::off_query_path("test", move || nice()).await.unwrap();
        assert_eq!(during, (before + crate::config::defaults::BUILD_NICENESS).min(19));
        assert_eq!(nice(), before, "the caller's priority is unchanged");
        let failed = super::off_query_path("test", || -> u8 { panic!("a bug") }).await;
        assert!(failed.is_err(), "a panicking build is an error, not a hang");
    }
}
