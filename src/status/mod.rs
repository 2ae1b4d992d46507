//! The HTTP API (`http`) and the Prometheus metrics (`metrics`). Reads snapshots only;
//! the one thing it changes is asking `Control` for a reload.

pub mod http;
pub mod metrics;
pub mod report;
