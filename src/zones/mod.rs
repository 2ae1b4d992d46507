//! Zones: parsing and checking zone files (`load`, with the presentation-format pre-pass
//! `presentation`), the immutable zone (`zone`), signed-zone data prepared at load
//! (`dnssec`), the set of served zones (`catalog`) and service names put into zones
//! (`attach`). A zone that fails any check is never published.

pub mod attach;
pub mod catalog;
mod check;
mod diagnose;
pub mod dnssec;
pub mod journal;
pub mod load;
pub mod presentation;
pub mod serial;
pub mod zone;

pub use catalog::{load_catalog, load_catalog_with, Catalog};
pub use zone::{Node, RRset, Zone};
