//! The control side: builds snapshots from config and zone files and publishes them.
//!
//! Reload (SIGHUP, `POST /v1/reload`) and `waypost check` run the same
//! [`build_snapshot`], so `check` says exactly what a reload would do. A failed reload
//! leaves the serving snapshot untouched.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Serialize;

use crate::config::{Config, Overrides};
use crate::geo::db::file_stamp;
use crate::geo::{GeoDb, GeoState};
use crate::health::{HealthView, Monitor};
use crate::services::ServiceTable;
use crate::snapshot::{Snapshot, SnapshotHandle};
use crate::metrics::Metrics;
use crate::config::Problem;
use crate::zones::load_catalog;

/// What a successful build produced, for logs and the reload endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadReport {
    pub generation: u64,
    pub zones: Vec<ZoneSummary>,
    /// Zones whose files were unchanged and were not parsed again.
    pub unchanged: Vec<String>,
    /// Zones served before this load that no file in zones-dir defines any more.
    pub removed: Vec<String>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ZoneSummary {
    pub zone: String,
    pub serial: u32,
    pub records: usize,
    pub file: String,
}

/// Builds a complete snapshot from a validated config. `previous` lets unchanged zone
/// files and an unchanged GeoIP database be reused without reading them again.
pub fn build_snapshot(config: &Config, previous: Option<&Snapshot>, health: &HealthView) -> Result<(Snapshot, ReloadReport), Vec<Problem>> {
    let config_file = config.source.clone().unwrap_or_else(|| PathBuf::from("(command line)"));
    let loaded = load_catalog(&config.zones_dir, &config.load_limits, previous.map(|s| &s.loaded))?;
    let geo_cfg = Arc::new(config.geo.clone());
    let db = match &config.geo.database {
        None => None,
        Some(path) => {
            let unchanged = previous
                .and_then(|p| p.geo.db.clone())
                .filter(|d| &d.path == path && d.stamp.is_some() && d.stamp == file_stamp(path));
            match unchanged {
                Some(d) => Some(d),
                None => Some(Arc::new(GeoDb::open(path).map_err(|msg| vec![Problem { file: path.clone(), line: 0, msg }])?)),
            }
        }
    };
    let file_overrides = match &config.geo.overrides_file {
        None => Vec::new(),
        Some(path) => load_overrides(path, &config.geo)?,
    };
    let geo = Arc::new(GeoState::new(geo_cfg, db, &file_overrides));
    let services = ServiceTable::build(&config.geo, &config.health, health);
    let catalog = crate::zones::attach::attach(&loaded.catalog, &config.geo.services, &config_file)?;
    let generation = previous.map_or(1, |s| s.generation + 1);
    let mut zones: Vec<ZoneSummary> = loaded
        .catalog
        .iter()
        .map(|z| ZoneSummary {
            zone: z.apex.to_string(),
            serial: z.serial,
            records: z.record_count,
            file: z.source.display().to_string(),
        })
        .collect();
    zones.sort_by(|a, b| a.zone.cmp(&b.zone));
    let report = ReloadReport {
        generation,
        zones,
        unchanged: loaded.reused.iter().map(ToString::to_string).collect(),
        removed: loaded.removed.iter().map(ToString::to_string).collect(),
        warnings: loaded.warnings.iter().map(ToString::to_string).collect(),
    };
    let snapshot = Snapshot {
        catalog,
        loaded: loaded.catalog,
        settings: config.answer,
        geo,
        services,
        health: health.clone(),
        rrl: match previous {
            Some(p) if p.config.rrl == config.rrl => p.rrl.clone(),
            _ => Arc::new(crate::rrl::Limiter::new(config.rrl.clone())),
        },
        config: Arc::new(config.clone()),
        generation,
        id: Snapshot::next_id(),
        loaded_at: SystemTime::now(),
    };
    Ok((snapshot, report))
}

/// Reads the network overrides file (`[networks]`).
fn load_overrides(path: &std::path::Path, geo: &crate::config::geo::GeoConfig) -> Result<Vec<(ipnet::IpNet, crate::config::geo::OverrideTarget)>, Vec<Problem>> {
    crate::config::geo::load_overrides(path, geo)
}

/// Loads the config and builds a snapshot: what `waypost check` and every reload run.
/// `health` gives the view for the new config's checks (all up when None).
pub fn load_all(
    config_path: Option<&std::path::Path>,
    overrides: &Overrides,
    previous: Option<&Snapshot>,
    health: Option<&Monitor>,
) -> Result<(Config, Snapshot, ReloadReport), Vec<Problem>> {
    let config = Config::load(config_path, overrides)?;
    let view = match health {
        Some(m) => m.view(&config.health),
        None => HealthView::default(),
    };
    let (snapshot, report) = build_snapshot(&config, previous, &view)?;
    Ok((config, snapshot, report))
}

/// A new snapshot with `current`'s zones, config and limiter, over `geo` and with the
/// services built for `view`: how a health change and a GeoIP database swap publish.
fn derive(current: &Snapshot, geo: Arc<GeoState>, view: HealthView) -> Snapshot {
    Snapshot {
        catalog: current.catalog.clone(),
        loaded: current.loaded.clone(),
        settings: current.settings,
        geo,
        services: ServiceTable::build(&current.config.geo, &current.config.health, &view),
        health: view,
        rrl: current.rrl.clone(),
        config: current.config.clone(),
        generation: current.generation,
        id: Snapshot::next_id(),
        loaded_at: current.loaded_at,
    }
}

/// A new snapshot that differs from `current` only in health: services rebuilt.
pub fn with_health(current: &Snapshot, view: HealthView) -> Snapshot {
    derive(current, current.geo.clone(), view)
}

/// Outcome of the last reload attempt, shown by the API.
#[derive(Debug, Clone, Serialize)]
pub struct LastReload {
    pub ok: bool,
    pub at: String,
    pub errors: Vec<String>,
}

/// Owns reloading: the config's origin, the snapshot handle and the reload counters.
pub struct Control {
    pub config_path: Option<PathBuf>,
    pub overrides: Overrides,
    pub snapshot: Arc<SnapshotHandle>,
    pub metrics: Arc<Metrics>,
    pub monitor: Arc<Monitor>,
    reload_lock: tokio::sync::Mutex<()>,
    /// Held while publishing, so a health publish never overwrites a newer reload.
    publish_lock: Mutex<()>,
    last: Mutex<Option<LastReload>>,
}

impl Control {
    pub fn new(config_path: Option<PathBuf>, overrides: Overrides, snapshot: Arc<SnapshotHandle>, metrics: Arc<Metrics>, monitor: Arc<Monitor>) -> Self {
        Control {
            config_path,
            overrides,
            snapshot,
            metrics,
            monitor,
            reload_lock: tokio::sync::Mutex::new(()),
            publish_lock: Mutex::new(()),
            last: Mutex::new(None),
        }
    }

    /// Rebuilds the services for the monitor's current health view and publishes, if it
    /// changed. Cheap: zones and geo data are shared with the current snapshot.
    pub fn publish_health(&self) {
        let _one = self.publish_lock.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.snapshot.load();
        let view = self.monitor.view(&current.config.health);
        if view == current.health {
            return;
        }
        let next = with_health(&current, view);
        drop(current);
        self.snapshot.publish(next);
        self.metrics.health_publishes.inc();
    }

    /// Reloads config and zones off the query path and publishes them, or keeps the
    /// current snapshot and returns every problem.
    pub async fn reload(self: &Arc<Self>) -> Result<ReloadReport, Vec<Problem>> {
        let _one_at_a_time = self.reload_lock.lock().await;
        let this = Arc::clone(self);
        let result = tokio::task::spawn_blocking(move || {
            let previous = this.snapshot.load();
            load_all(this.config_path.as_deref(), &this.overrides, Some(&previous), Some(&this.monitor))
        })
        .await
        .unwrap_or_else(|e| Err(vec![Problem { file: PathBuf::new(), line: 0, msg: format!("reload task failed: {e}") }]));
        let at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        match result {
            Ok((config, snapshot, report)) => {
                self.metrics.zones.set(snapshot.catalog.len() as i64);
                self.metrics.generation.set(snapshot.generation as i64);
                self.metrics.set_services(&snapshot.services);
                {
                    let _one = self.publish_lock.lock().unwrap_or_else(|p| p.into_inner());
                    self.snapshot.publish(snapshot);
                }
                *self.monitor.state_file.lock().unwrap_or_else(|p| p.into_inner()) = config.health.state_file.clone();
                // Starts new checks, stops removed ones, and schedules a health publish
                // so the new snapshot gets the latest view.
                self.monitor.reconcile(&config.health, &config.fleet);
                self.metrics.count_reload(true);
                for w in &report.warnings {
                    tracing::warn!(warning = %w, "zone warning");
                }
                for z in &report.removed {
                    tracing::warn!(zone = %z, "zone removed: its file is no longer in zones-dir; it is not served any more");
                }
                tracing::info!(generation = report.generation, zones = report.zones.len(), unchanged = report.unchanged.len(), removed = report.removed.len(), "reloaded");
                *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(LastReload { ok: true, at, errors: vec![] });
                Ok(report)
            }
            Err(problems) => {
                self.metrics.count_reload(false);
                for p in &problems {
                    tracing::error!(problem = %p, "reload failed; previous zones keep serving");
                }
                *self.last.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(LastReload { ok: false, at, errors: problems.iter().map(ToString::to_string).collect() });
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
        let at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        match opened {
            Ok(db) => {
                {
                    let _one = self.publish_lock.lock().unwrap_or_else(|p| p.into_inner());
                    let current = self.snapshot.load();
                    let geo = Arc::new(current.geo.with_db(Some(Arc::new(db))));
                    let next = derive(&current, geo, current.health.clone());
                    drop(current);
                    self.snapshot.publish(next);
                }
                self.metrics.count_reload(true);
                tracing::info!(database = %path.display(), "GeoIP database replaced; zones and config unchanged");
                *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(LastReload { ok: true, at, errors: vec![] });
                Ok(())
            }
            Err(msg) => {
                let problem = Problem { file: path, line: 0, msg };
                self.metrics.count_reload(false);
                tracing::error!(problem = %problem, "GeoIP database rejected; the previous one keeps serving");
                *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(LastReload { ok: false, at, errors: vec![problem.to_string()] });
                Err(problem)
            }
        }
    }

    pub fn last_reload(&self) -> Option<LastReload> {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
