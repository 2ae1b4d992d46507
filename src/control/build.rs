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
use crate::signer::Signed;
use crate::wire::Name;
use crate::zones::attach::attach;
use crate::zones::serial::{self, Book};
use crate::zones::{load_catalog_with, Catalog, Zone};

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
    let book = match previous {
        Some(p) => p.serials.clone(),
        None => Arc::new(match &config.state_dir {
            Some(dir) => serial::read(dir).map_err(|p| vec![p])?,
            None => Book::default(),
        }),
    };
    let (catalog, signed, serials) = sign_and_stamp(config, &loaded.catalog, previous.map(|p| &*p.signed), &book)?;
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
    Ok((Snapshot { http_tls, serials: Arc::new(serials), ..snapshot }, report))
}

/// The zones as served: the ones with keys in `[dnssec] key-dir` signed (reusing
/// `previous`'s signatures of unchanged zones in the same window), the services attached,
/// and every zone's serial decided from `book`, the serials served before
/// (`zones::serial`). What a reload, `waypost check` and a re-signing all run.
pub(crate) fn sign_and_stamp(config: &Config, loaded: &Catalog, previous: Option<&Signed>, book: &Book) -> Result<(Catalog, Signed, Book), Vec<Problem>> {
    let now = crate::health::now_secs();
    let check = crate::zones::dnssec::SignatureCheck { now, expiry_margin: config.load_limits.rrsig_expiry_margin };
    let config_file = config.source.clone().unwrap_or_else(|| PathBuf::from("(command line)"));
    let services_of = |apex: &Name| serial::services_fingerprint(config.geo.services.iter().filter(|s| loaded.find(s.name.as_wire()).is_some_and(|z| &z.apex == apex)));
    // Zones no longer served keep their record: one that comes back goes on from it.
    let mut next = book.clone();
    // `first`: the serial when the zone was never served; None: the file's serial is
    // served whatever changed (the zone is not Waypost's to change).
    let mut decide = |zone: &Zone, signing: u64, first: Option<u32>| {
        let fingerprint = serial::combine(&[zone.fingerprint, u64::from(zone.serial), services_of(&zone.apex), signing]);
        let s = match first {
            Some(first) => serial::decide(book.zones.get(&zone.apex).copied(), zone.serial, fingerprint, first, config.serial_policy, now),
            None => zone.serial,
        };
        next.zones.insert(zone.apex.clone(), serial::Served { serial: s, fingerprint });
        s
    };
    let mut serial_of = |zone: &Zone, signing: u64, first: u32| decide(zone, signing, Some(first));
    let (signed_catalog, signed) = crate::signer::sign_catalog(loaded, config.signing.as_ref(), &config.geo.services, previous.unwrap_or(&Signed::default()), now, check, &mut serial_of)?;
    let mut catalog = attach(&signed_catalog, &config.geo.services, &config_file, &|apex| signed.zones.contains_key(apex), !config.transfer.allow.is_empty())?;
    let apexes: Vec<Name> = catalog.iter().map(|z| z.apex.clone()).filter(|a| !signed.zones.contains_key(a)).collect();
    for apex in apexes {
        // never panics: the apex was just taken from this catalog.
        let served = catalog.get_mut(apex.as_wire()).expect("zone");
        let z = &served.zone;
        // Not Waypost's to change: a pre-signed zone (its SOA's RRSIG covers the serial),
        // a copy received from a primary (the primary's serial).
        let received = config.transfer.secondaries.iter().any(|s| s.apex == apex);
        let serial = decide(z, 0, (z.dnssec.is_none() && !received).then_some(z.serial));
        if serial != z.serial {
            Arc::make_mut(&mut served.zone).set_serial(serial);
        }
    }
    Ok((catalog, signed, next))
}

/// Keeps `book` in `state-dir` (when one is set) if it differs from `before`: called
/// before a snapshot carrying it is published, so a serial served is never forgotten.
pub fn keep_serials(config: &Config, book: &Book, before: Option<&Book>) {
    let Some(dir) = &config.state_dir else { return };
    if before == Some(book) {
        return;
    }
    if let Err(e) = serial::write(dir, book) {
        tracing::error!(error = %e, "cannot keep the served serials; after a restart a zone Waypost changed may be served with a lower serial");
    }
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
