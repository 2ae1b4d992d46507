//! Health checking, on the control side only: probes, hysteresis, admin overrides, the
//! fleet's votes, and the [`HealthView`] a snapshot's services are built from.
//!
//! ```text
//!  tasks::probe_loop ─► Prober ─► Monitor::observe ─► state::Hysteresis (per target)
//!  tasks::peer_loop ─► fleet::pull ─► Monitor (peer documents)        │ a phase changed
//!  admin API ─► Monitor::set_override / clear_override                 ▼
//!                               Monitor.changed (Notify) ─► control::tasks::publish_health
//!                                  └─► Monitor::view: per check the fleet verdict, overrides
//! ```
//!
//! `monitor` holds all state under one lock; `tasks` runs one probe loop per unique check
//! and one pull loop per peer; `probe` is one HTTP(S)/TCP probe; `state` the pure
//! hysteresis; `fleet` the peer document and the quorum verdict; `store` the state file;
//! `history` the last hour per check and the admin actions; `wire` the serialized forms.
//! Knows HTTP and TCP, nothing about DNS messages; nothing here is on the query path.

pub mod fleet;
pub mod history;
mod monitor;
pub mod probe;
pub mod state;
pub mod store;
mod tasks;
pub mod wire;

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use crate::config::health::Check;
pub use monitor::{Monitor, MonitorReport, ProbeObserver};
use state::{Hysteresis, Phase};
pub use tasks::{Probe, ProbeFactory};

/// An admin action on a data centre or an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Out of answers, whatever checks say.
    Down,
    /// In answers, whatever checks say.
    Up,
    /// Out of answers while checks keep running (planned maintenance).
    Drain,
}

impl Action {
    pub fn serves(self) -> bool {
        self == Action::Up
    }

    /// As the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Down => "down",
            Action::Up => "up",
            Action::Drain => "drain",
        }
    }
}

/// What an override applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OverrideTarget {
    Datacenter(String),
    Address(IpAddr),
}

impl std::fmt::Display for OverrideTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OverrideTarget::Datacenter(d) => write!(f, "datacenter {d}"),
            OverrideTarget::Address(a) => write!(f, "address {a}"),
        }
    }
}

/// An admin override, saved in the state file.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    pub target: OverrideTarget,
    pub action: Action,
    /// Seconds since the epoch when it was set, and when it ends (None: until removed).
    pub set_at: u64,
    pub expires_at: Option<u64>,
}

/// One probe's outcome as shown in status.
#[derive(Debug, Clone)]
pub struct Observation {
    pub ok: bool,
    pub at: u64,
    pub latency_ms: f64,
    pub error: Option<String>,
}

/// Everything known about one check target.
#[derive(Debug, Clone)]
pub struct TargetRecord {
    pub check: Check,
    pub hyst: Hysteresis,
    /// When the current phase began (seconds since the epoch).
    pub since: u64,
    pub last: Option<Observation>,
    pub flips: u64,
    pub probes: u64,
    pub failures: u64,
    /// Set once this process has a result of its own; before that the phase is the
    /// saved one (or up).
    pub has_result: bool,
    /// This instance probes it (not restricted to other vantage points).
    pub probed_here: bool,
    /// The last hour, for the status page's timeline.
    pub history: history::History,
}

/// A change of phase, for the status page and logs.
#[derive(Debug, Clone)]
pub struct Change {
    pub at: u64,
    pub target: String,
    pub from: Phase,
    pub to: Phase,
}

/// Changes arriving within this window are published together.
pub const PUBLISH_COALESCE: Duration = Duration::from_millis(50);

/// The status of one configured check, as answers need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckView {
    pub up: bool,
    pub wavering: bool,
    /// Seconds until the phase could next change (checks left × interval).
    pub next_change: u32,
}

/// Health as the answer side sees it: frozen per snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealthView {
    /// Indexed like `HealthConfig::checks`.
    pub checks: Vec<CheckView>,
    pub datacenters: HashMap<String, Action>,
    pub addresses: HashMap<IpAddr, Action>,
}

/// Seconds since the epoch (wall clock: these times are shown and saved).
pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
