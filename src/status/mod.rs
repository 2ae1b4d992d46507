//! The HTTP API (`http`), the status document (`document`, filled by `report` with
//! `answers` and `findings`) and the status page rendered from it (`page`). Reads
//! snapshots only; the things it changes are asking `Control` for a reload and the
//! admin overrides.

mod answers;
pub mod auth;
pub mod document;
mod findings;
pub mod http;
pub mod page;
pub mod report;
