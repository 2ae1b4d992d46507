//! Zones: parsing and checking zone files (`load`), the immutable zone (`zone`), and
//! the set of served zones (`catalog`).

pub mod catalog;
pub mod dnssec;
pub mod load;
pub mod presentation;
pub mod zone;

pub use catalog::{load_catalog, Catalog};
pub use zone::{Node, RRset, Zone};
