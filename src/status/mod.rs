//! The HTTP API (`http`), the status document (`report`) and the status page rendered
//! from it (`page`). Reads snapshots only; the things it changes are asking `Control`
//! for a reload and the admin overrides.

pub mod http;
pub mod page;
pub mod report;
