//! The serialized forms of health state: what the state file (`store`) and the peer
//! observations document (`fleet`) are made of. Internal types convert to and from these
//! at the edge, so a change inside `health` cannot change a file or a protocol by
//! accident; a change here is a format change and goes with a new document version.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::state::Phase;
use super::{Action, Override, OverrideTarget};

/// A hysteresis phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WirePhase {
    Up,
    Failing,
    Down,
    Recovering,
}

impl From<Phase> for WirePhase {
    fn from(p: Phase) -> Self {
        match p {
            Phase::Up => WirePhase::Up,
            Phase::Failing => WirePhase::Failing,
            Phase::Down => WirePhase::Down,
            Phase::Recovering => WirePhase::Recovering,
        }
    }
}

impl From<WirePhase> for Phase {
    fn from(p: WirePhase) -> Self {
        match p {
            WirePhase::Up => Phase::Up,
            WirePhase::Failing => Phase::Failing,
            WirePhase::Down => Phase::Down,
            WirePhase::Recovering => Phase::Recovering,
        }
    }
}

/// An admin override as saved: `{"target": {"kind": "datacenter", "name": "ams"},
/// "action": "drain", "set_at": 1796162554, "expires_at": null}` (times in seconds since
/// the epoch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireOverride {
    pub target: WireTarget,
    pub action: WireAction,
    pub set_at: u64,
    pub expires_at: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub enum WireTarget {
    Datacenter(String),
    Address(IpAddr),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireAction {
    Down,
    Up,
    Drain,
}

impl From<&Override> for WireOverride {
    fn from(o: &Override) -> Self {
        let target = match &o.target {
            OverrideTarget::Datacenter(d) => WireTarget::Datacenter(d.clone()),
            OverrideTarget::Address(a) => WireTarget::Address(*a),
        };
        let action = match o.action {
            Action::Down => WireAction::Down,
            Action::Up => WireAction::Up,
            Action::Drain => WireAction::Drain,
        };
        WireOverride { target, action, set_at: o.set_at, expires_at: o.expires_at }
    }
}

impl From<WireOverride> for Override {
    fn from(o: WireOverride) -> Self {
        let target = match o.target {
            WireTarget::Datacenter(d) => OverrideTarget::Datacenter(d),
            WireTarget::Address(a) => OverrideTarget::Address(a),
        };
        let action = match o.action {
            WireAction::Down => Action::Down,
            WireAction::Up => Action::Up,
            WireAction::Drain => Action::Drain,
        };
        Override { target, action, set_at: o.set_at, expires_at: o.expires_at }
    }
}
