//! The one shared mutable thing: the current [`Snapshot`], swapped atomically.
//!
//! The control side (`control`) builds a complete new snapshot off the query path and
//! publishes it; the query path (`dns` → `answer`) loads it once per packet (or batch)
//! and reads only `&Snapshot`.
//!
//! **Invariant:** a snapshot is never changed after it is built, except for the RRL
//! table's atomic buckets, which outlive snapshots on purpose (a reload must not reset
//! a flood's budget).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;

use crate::config::{AnswerSettings, Config, RrlConfig};
use crate::geo::GeoState;
use crate::health::HealthView;
use crate::rrl::Limiter;
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
    /// Built from `config` for `health` (see [`Snapshot::new`]).
    pub services: ServiceTable,
    /// The health the services were built with.
    pub health: HealthView,
    /// UDP response rate limiter (kept across health publishes and unchanged reloads).
    pub rrl: Arc<Limiter>,
    pub config: Arc<Config>,
    /// Increases by one with every successful reload.
    pub generation: u64,
    /// Unique per snapshot built in this process (health publishes included), for
    /// per-thread caches of answers: see `dns::cache`. Never 0.
    pub id: u64,
    pub loaded_at: SystemTime,
    /// The zones Waypost signed, kept so the next snapshot re-signs only what changed.
    pub signed: Arc<crate::signer::Signed>,
    /// Every zone's served serial and the fingerprint it was decided for; the next build
    /// decides from it (`zones::serial`).
    pub serials: Arc<crate::zones::serial::Book>,
    /// Each zone's recent serial changes, for IXFR (set by the control side before it
    /// publishes; shared by derived snapshots).
    pub journals: Arc<crate::zones::journal::Journals>,
    /// Per zone, the messages of its AXFR answer, written on the control side (see
    /// `transfer::prepare`); shared by derived snapshots (health does not change them).
    pub transfer_images: Arc<rustc_hash::FxHashMap<crate::wire::Name, Arc<Vec<Box<[u8]>>>>>,
    /// The HTTPS listener's TLS config (certificate, key, client CA) loaded with this
    /// config; None: plain HTTP. Each accepted connection uses the current snapshot's,
    /// so a reload swaps the certificate without touching the listener.
    pub http_tls: Option<Arc<rustls::ServerConfig>>,
}

impl Snapshot {
    /// The one way a snapshot is put together: `loaded` as its files gave it and
    /// `catalog` with the config's services attached; the services are built here for
    /// `health`, so a snapshot's answers always follow the health it carries.
    /// The services' answers in zones Waypost signs are signed here too (`signed` keeps
    /// their signatures from snapshot to snapshot).
    #[allow(clippy::too_many_arguments)]
    pub fn new(config: Arc<Config>, catalog: Catalog, loaded: Catalog, geo: Arc<GeoState>, health: HealthView, rrl: Arc<Limiter>, generation: u64, signed: Arc<crate::signer::Signed>) -> Snapshot {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let mut services = ServiceTable::build(&config.geo, &config.health, &health);
        crate::signer::sign_services(&mut services, &catalog, &signed);
        Snapshot {
            catalog,
            loaded,
            settings: config.answer,
            geo,
            services,
            health,
            rrl,
            config,
            generation,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            loaded_at: SystemTime::now(),
            signed,
            serials: Arc::default(),
            journals: Arc::default(),
            transfer_images: Arc::default(),
            http_tls: None,
        }
    }

    /// This snapshot's zones, config and limiter over `geo`, with the services built for
    /// `health`: how a health change and a GeoIP database swap publish (same generation).
    pub fn derive(&self, geo: Arc<GeoState>, health: HealthView) -> Snapshot {
        let next = Snapshot::new(self.config.clone(), self.catalog.clone(), self.loaded.clone(), geo, health, self.rrl.clone(), self.generation, self.signed.clone());
        Snapshot { loaded_at: self.loaded_at, serials: self.serials.clone(), journals: self.journals.clone(), transfer_images: self.transfer_images.clone(), http_tls: self.http_tls.clone(), ..next }
    }

    /// A snapshot serving `catalog` with default settings and no services (tests, benches).
    pub fn from_catalog(catalog: Catalog) -> Snapshot {
        let config = Arc::new(Config::default_for_zones(PathBuf::new()));
        let geo = Arc::new(GeoState::new(Arc::new(config.geo.clone()), None, &[]));
        let rrl = Arc::new(Limiter::new(RrlConfig { rate: 0, ..Default::default() }));
        Snapshot::new(config, catalog.clone(), catalog, geo, HealthView::default(), rrl, 1, Arc::default())
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
