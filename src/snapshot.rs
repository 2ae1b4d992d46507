//! The one shared mutable thing: the current [`Snapshot`], swapped atomically.
//!
//! The control side builds a complete new snapshot off the query path and publishes
//! it; the query path loads it once per packet (or batch) and reads only `&Snapshot`.

use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;

use crate::config::AnswerSettings;
use crate::config::Config;
use crate::geo::GeoState;
use crate::health::HealthView;
use crate::services::ServiceTable;
use crate::zones::Catalog;

/// Everything a query needs, frozen. Never mutated after publish.
#[derive(Debug)]
pub struct Snapshot {
    /// The zones as served: the loaded zones with service names attached.
    pub catalog: Catalog,
    /// The zones as loaded from their files, reused by the next reload when unchanged.
    pub loaded: Catalog,
    pub settings: AnswerSettings,
    pub geo: Arc<GeoState>,
    pub services: ServiceTable,
    /// The health the services were built with.
    pub health: HealthView,
    /// UDP response rate limiter (kept across health publishes and unchanged reloads).
    pub rrl: Arc<crate::rrl::Limiter>,
    pub config: Arc<Config>,
    /// Increases by one with every successful reload.
    pub generation: u64,
    /// Unique per snapshot built in this process (health publishes included), for
    /// per-thread caches of answers: see `dns::cache`.
    pub id: u64,
    pub loaded_at: SystemTime,
    /// The zones Waypost signed, kept so the next snapshot re-signs only what changed.
    pub signed: Arc<crate::signer::Signed>,
}

impl Snapshot {
    /// A snapshot serving `catalog` with default settings and no services (tests, benches).
    pub fn from_catalog(catalog: Catalog) -> Snapshot {
        let config = Arc::new(Config::default_for_zones(std::path::PathBuf::new()));
        Snapshot {
            loaded: catalog.clone(),
            catalog,
            settings: config.answer,
            geo: Arc::new(GeoState::new(Arc::new(config.geo.clone()), None, &[])),
            services: ServiceTable::default(),
            health: HealthView::default(),
            rrl: Arc::new(crate::rrl::Limiter::new(crate::config::RrlConfig { rate: 0, ..Default::default() })),
            config,
            generation: 1,
            id: Snapshot::next_id(),
            loaded_at: SystemTime::now(),
            signed: Arc::default(),
        }
    }

    /// A fresh `id`; never 0.
    pub fn next_id() -> u64 {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }
}

/// The atomically swapped current snapshot.
#[derive(Debug)]
pub struct SnapshotHandle(ArcSwap<Snapshot>);

impl SnapshotHandle {
    pub fn new(first: Snapshot) -> Self {
        SnapshotHandle(ArcSwap::from_pointee(first))
    }

    /// Query path: wait-free.
    #[inline]
    pub fn load(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.0.load()
    }

    /// Control path only.
    pub fn publish(&self, next: Snapshot) {
        self.0.store(Arc::new(next));
    }
}
