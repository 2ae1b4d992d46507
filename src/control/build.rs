//! Building a snapshot from the config and the files it names: the TLS certificates
//! (`crate::tls`), zone files (unchanged ones reused), the GeoIP database (reused when its file is unchanged), the network
//! overrides file; then services attached to the zones and built for the health view.
//!
//! Reload and `waypost check` run the same [`load_all`], so `check` says exactly what a
//! reload would do. Nothing here publishes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::config::{Config, Overrides, Problem};
use crate::geo::db::file_stamp;
use crate::geo::{GeoDb, GeoState};
use crate::health::{HealthView, Monitor};
use crate::rrl::Limiter;
use crate::snapshot::Snapshot;
use crate::zones::attach::attach;
use crate::zones::load_catalog_with;

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
    // Certificates first: a bad one fails the build like a bad zone, and the serving
    // snapshot keeps the previous certificate.
    let http_tls = crate::tls::load(config)?;
    // Zones received from a primary are served from their copy on disk, once there is one.
    let received: Vec<PathBuf> = config.transfer.secondaries.iter().map(|s| s.file.clone()).filter(|f| f.is_file()).collect();
    let loaded = load_catalog_with(&config.zones_dir, &received, &config.load_limits, previous.map(|s| &s.loaded))?;
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
        Some(path) => crate::config::geo::load_overrides(path, &config.geo)?,
    };
    let geo = Arc::new(GeoState::new(Arc::new(config.geo.clone()), db, &file_overrides));
    let (signed_catalog, signed) = sign_zones(config, &loaded.catalog, previous.map(|p| &*p.signed))?;
    let catalog = attach(&signed_catalog, &config.geo.services, &config_file, &|apex| signed.zones.contains_key(apex))?;
    let generation = previous.map_or(1, |s| s.generation + 1);
    let mut zones: Vec<ZoneSummary> = loaded
        .catalog
        .iter()
        .map(|z| ZoneSummary { zone: z.apex.to_string(), serial: z.serial, records: z.record_count, file: z.source.display().to_string() })
        .collect();
    zones.sort_by(|a, b| a.zone.cmp(&b.zone));
    let report = ReloadReport {
        generation,
        zones,
        unchanged: loaded.reused.iter().map(ToString::to_string).collect(),
        removed: loaded.removed.iter().map(ToString::to_string).collect(),
        warnings: loaded.warnings.iter().map(ToString::to_string).collect(),
    };
    // The limiter (and the budgets in it) outlives a reload that does not change it.
    let rrl = match previous {
        Some(p) if p.config.rrl == config.rrl => p.rrl.clone(),
        _ => Arc::new(Limiter::new(config.rrl.clone())),
    };
    let snapshot = Snapshot::new(Arc::new(config.clone()), catalog, loaded.catalog, geo, health.clone(), rrl, generation, Arc::new(signed));
    Ok((Snapshot { http_tls, ..snapshot }, report))
}

/// Signs the zones that have keys in `[dnssec] key-dir` (reusing `previous`'s signatures
/// of unchanged zones in the same window).
fn sign_zones(config: &Config, loaded: &crate::zones::Catalog, previous: Option<&crate::signer::Signed>) -> Result<(crate::zones::Catalog, crate::signer::Signed), Vec<Problem>> {
    let now = crate::health::now_secs();
    let check = crate::zones::dnssec::SignatureCheck { now, expiry_margin: config.load_limits.rrsig_expiry_margin };
    crate::signer::sign_catalog(loaded, config.signing.as_ref(), &config.geo.services, previous.unwrap_or(&crate::signer::Signed::default()), now, check)
}

/// Loads the config and builds a snapshot: what `waypost check` and every reload run.
/// `health` gives the view for the new config's checks (all up when None).
pub fn load_all(config_path: Option<&Path>, overrides: &Overrides, previous: Option<&Snapshot>, health: Option<&Monitor>) -> Result<(Config, Snapshot, ReloadReport), Vec<Problem>> {
    let config = Config::load(config_path, overrides)?;
    let view = match health {
        Some(m) => m.view(&config.health),
        None => HealthView::default(),
    };
    let (snapshot, report) = build_snapshot(&config, previous, &view)?;
    Ok((config, snapshot, report))
}
