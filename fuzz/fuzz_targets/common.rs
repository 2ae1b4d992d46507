//! Shared by the fuzz targets: a snapshot of the differential-test zones, built once.

use std::sync::OnceLock;

use waypost::config::LoadLimits;
use waypost::snapshot::Snapshot;
use waypost::zones::load_catalog;

pub fn snapshot() -> &'static Snapshot {
    static S: OnceLock<Snapshot> = OnceLock::new();
    S.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/zones");
        Snapshot::from_catalog(load_catalog(std::path::Path::new(dir), &LoadLimits::default(), None).expect("zones").catalog)
    })
}
