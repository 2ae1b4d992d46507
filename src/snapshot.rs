//! The one shared mutable thing: the current [`Snapshot`], swapped atomically.
//!
//! The control side builds a complete new snapshot off the query path and publishes
//! it; the query path loads it once per packet (wait-free) and reads only `&Snapshot`.

use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;

use crate::answer::AnswerSettings;
use crate::zones::Catalog;

/// Everything a query needs, frozen. Never mutated after publish.
#[derive(Debug)]
pub struct Snapshot {
    pub catalog: Catalog,
    pub settings: AnswerSettings,
    /// Increases by one with every successful reload.
    pub generation: u64,
    pub loaded_at: SystemTime,
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
