//! The control side's two loops, spawned by `app`: publishing health changes and
//! watching the GeoIP database file. Both stop when `shutdown` fires.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::Control;
use crate::config::defaults::GEO_DB_POLL;
use crate::geo::db::{file_stamp, FileStamp};
use crate::health::{now_secs, PUBLISH_COALESCE};

/// How often overrides are checked for expiry (and gauges refreshed) without a change.
const HEALTH_TICK: Duration = Duration::from_secs(1);

/// Publishes health changes: waits for the monitor's notice (or a tick), coalesces a
/// burst for [`PUBLISH_COALESCE`], expires overrides, publishes when anything answers
/// depend on changed, saves the state file, and refreshes the health and fleet gauges.
pub async fn publish_health(control: Arc<Control>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = control.monitor.changed.notified() => tokio::time::sleep(PUBLISH_COALESCE).await,
            _ = tokio::time::sleep(HEALTH_TICK) => {}
            _ = shutdown.changed() => {
                control.monitor.save_if_changed();
                return;
            }
        }
        control.monitor.expire_overrides(now_secs());
        if control.monitor.take_dirty() {
            control.publish_health();
        }
        control.monitor.save_if_changed();
        let report = control.monitor.report();
        control.metrics.observe_health(&report);
        let snap = control.snapshot.load();
        control.metrics.observe_fleet(&report, &snap.config.routing_digest(), &snap.loaded.serials());
    }
}

/// Publishes the GeoIP database again when its file is replaced (by rename, or
/// rewritten): the database only, never zones or config (`Control::reload_geo_database`).
/// A file that failed to load is not retried until it changes again; the old one keeps
/// serving.
pub async fn watch_geo_database(control: Arc<Control>, mut shutdown: watch::Receiver<bool>) {
    let mut failed: Option<FileStamp> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(GEO_DB_POLL) => {}
            _ = shutdown.changed() => return,
        }
        let (path, current) = {
            let snap = control.snapshot.load();
            let Some(path) = snap.config.geo.database.clone() else { continue };
            (path, snap.geo.db.as_ref().and_then(|d| d.stamp))
        };
        let now = file_stamp(&path);
        if now.is_none() || now == current || now == failed {
            continue;
        }
        tracing::info!(database = %path.display(), "GeoIP database changed; loading it");
        match control.reload_geo_database().await {
            Ok(_) => failed = None,
            Err(_) => failed = now,
        }
    }
}

/// How often the zones Waypost signs are checked for a new window or a key's new state.
const RESIGN_TICK: Duration = Duration::from_secs(15);

/// Signs again when a signature window passes or a key changes state
/// (`Control::resign_if_due`); never blocks the other loops.
pub async fn resign(control: Arc<Control>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(RESIGN_TICK) => {}
            _ = shutdown.changed() => return,
        }
        if control.snapshot.load().config.signing.is_some() {
            let _ = control.resign_if_due().await;
        }
    }
}
