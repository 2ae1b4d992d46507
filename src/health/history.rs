//! What happened lately, for the status page: per check the last hour in one-minute
//! buckets (probes, failures, probes while down, latency), and the audit trail of admin
//! changes (override set, removed, expired; reloads), each with who made it (client
//! address and token role, SIGHUP, or expiry), logged as it is kept; the override
//! changes are also shown beside the health flips in "recent changes".
//!
//! Bounded whatever the probe interval: [`BUCKETS`] buckets per check and
//! [`ADMIN_EVENTS`] events. Pure bookkeeping: the caller passes the time.

use std::collections::VecDeque;

use std::net::SocketAddr;

use super::{Action, OverrideTarget};
use crate::config::access::Role;

/// Seconds covered by one bucket.
pub const BUCKET_SECS: u64 = 60;
/// Buckets kept per check: one hour.
pub const BUCKETS: usize = 60;
/// Admin events kept (the same bound as the health changes).
pub const ADMIN_EVENTS: usize = 100;

/// The probes of one check within one bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Bucket {
    /// Start of the bucket (seconds since the epoch, a multiple of [`BUCKET_SECS`]).
    pub start: u64,
    pub probes: u32,
    pub failures: u32,
    /// Probes after which the target was down (out of answers).
    pub down: u32,
    pub latency_ms_sum: f64,
    pub latency_ms_max: f64,
}

impl Bucket {
    pub fn latency_ms_avg(&self) -> f64 {
        if self.probes == 0 {
            0.0
        } else {
            self.latency_ms_sum / f64::from(self.probes)
        }
    }
}

/// The last hour of one check.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    buckets: VecDeque<Bucket>,
}

impl History {
    /// Records one probe made at `at`; `up` is the phase after it.
    pub fn record(&mut self, at: u64, ok: bool, up: bool, latency_ms: f64) {
        let start = at - at % BUCKET_SECS;
        if self.buckets.back().is_none_or(|b| b.start < start) {
            self.buckets.push_back(Bucket { start, ..Bucket::default() });
            while self.buckets.len() > BUCKETS {
                self.buckets.pop_front();
            }
        }
        // A clock step backwards lands in the newest bucket rather than reordering.
        let Some(b) = self.buckets.back_mut() else { return };
        b.probes += 1;
        b.failures += u32::from(!ok);
        b.down += u32::from(!up);
        b.latency_ms_sum += latency_ms;
        b.latency_ms_max = b.latency_ms_max.max(latency_ms);
    }

    /// The buckets that overlap the hour before `now`, oldest first.
    pub fn last_hour(&self, now: u64) -> Vec<Bucket> {
        let from = now.saturating_sub(BUCKET_SECS * BUCKETS as u64);
        self.buckets.iter().filter(|b| b.start + BUCKET_SECS > from).copied().collect()
    }
}

/// Who made an admin change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// A caller of the HTTP API: its address and the role of the token it sent (None:
    /// the endpoint is open, e.g. a reload with no admin token configured).
    Api { client: Option<SocketAddr>, role: Option<Role> },
    /// SIGHUP.
    Signal,
    /// The server itself: an override reached its expiry.
    Expiry,
    /// A zone received from its primary (`[secondary]`) is published.
    Transfer,
}

impl Actor {
    /// `api`, `signal`, `expiry` or `transfer`.
    pub fn kind(&self) -> &'static str {
        match self {
            Actor::Api { .. } => "api",
            Actor::Signal => "signal",
            Actor::Expiry => "expiry",
            Actor::Transfer => "transfer",
        }
    }

    pub fn client(&self) -> Option<SocketAddr> {
        match self {
            Actor::Api { client, .. } => *client,
            _ => None,
        }
    }

    pub fn role(&self) -> Option<Role> {
        match self {
            Actor::Api { role, .. } => *role,
            _ => None,
        }
    }
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::Api { client, role } => {
                match client {
                    Some(c) => write!(f, "{c}")?,
                    None => f.write_str("unknown client")?,
                }
                write!(f, " ({})", role.map_or("no token", Role::as_str))
            }
            Actor::Signal => f.write_str("SIGHUP"),
            Actor::Expiry => f.write_str("expiry"),
            Actor::Transfer => f.write_str("transfer"),
        }
    }
}

/// What happened to an override.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverrideChange {
    /// Set (or replaced) through the admin API.
    Set { expires_at: Option<u64> },
    /// Removed through the admin API.
    Removed,
    /// Reached its expiry.
    Expired,
}

/// One admin change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminChange {
    Override {
        target: OverrideTarget,
        /// The action before and after (None: no override).
        from: Option<Action>,
        to: Option<Action>,
        change: OverrideChange,
    },
    /// A reload of config and zones: whether it was published, the generation serving
    /// after it, and its problems.
    Reload { ok: bool, generation: u64, errors: Vec<String> },
}

impl std::fmt::Display for AdminChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let action = |a: &Option<Action>| a.map_or("none", Action::as_str);
        match self {
            AdminChange::Override { target, from, to, change } => {
                let how = match change {
                    OverrideChange::Set { .. } => "override set",
                    OverrideChange::Removed => "override removed",
                    OverrideChange::Expired => "override expired",
                };
                write!(f, "{how}: {target} {} -> {}", action(from), action(to))
            }
            AdminChange::Reload { ok: true, generation, .. } => write!(f, "reload: generation {generation} published"),
            AdminChange::Reload { ok: false, generation, errors } => {
                let n = errors.len();
                write!(f, "reload failed ({n} problem{}): generation {generation} keeps serving", if n == 1 { "" } else { "s" })
            }
        }
    }
}

/// One entry of the audit trail: when, who, what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminEvent {
    pub at: u64,
    pub by: Actor,
    pub change: AdminChange,
}

/// The audit trail: the newest admin changes, newest first.
#[derive(Debug, Clone, Default)]
pub struct AdminLog {
    events: VecDeque<AdminEvent>,
}

impl AdminLog {
    /// Keeps the event and logs it (the `waypost::audit` target, at info).
    pub fn push(&mut self, e: AdminEvent) {
        let client = e.by.client().map_or_else(|| "-".to_string(), |c| c.to_string());
        tracing::info!(target: "waypost::audit", by = e.by.kind(), %client, role = e.by.role().map_or("none", Role::as_str), change = %e.change, "admin change");
        self.events.push_front(e);
        self.events.truncate(ADMIN_EVENTS);
    }

    pub fn events(&self) -> Vec<AdminEvent> {
        self.events.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_fall_into_minute_buckets_and_only_the_last_hour_is_kept() {
        let mut h = History::default();
        let t0 = 1_800_000_000 - 1_800_000_000 % BUCKET_SECS;
        h.record(t0, true, true, 2.0);
        h.record(t0 + 59, false, true, 4.0);
        h.record(t0 + 60, false, false, 1.0);
        let b = h.last_hour(t0 + 61);
        assert_eq!(b.len(), 2);
        assert_eq!((b[0].start, b[0].probes, b[0].failures, b[0].down), (t0, 2, 1, 0));
        assert_eq!((b[0].latency_ms_avg(), b[0].latency_ms_max), (3.0, 4.0));
        assert_eq!((b[1].probes, b[1].down), (1, 1));
        for m in 2..200 {
            h.record(t0 + m * BUCKET_SECS, true, true, 1.0);
        }
        assert_eq!(h.buckets.len(), BUCKETS, "bounded");
        let now = t0 + 199 * BUCKET_SECS + 30;
        let b = h.last_hour(now);
        assert_eq!(b.len(), BUCKETS);
        assert!(b.iter().all(|x| x.start + BUCKET_SECS > now - 3600));
        assert!(h.last_hour(now + 7200).is_empty(), "nothing within an hour of a later now");
    }

    #[test]
    fn the_admin_log_is_newest_first_and_bounded() {
        let mut log = AdminLog::default();
        for at in 0..(ADMIN_EVENTS as u64 + 5) {
            let change = AdminChange::Override { target: OverrideTarget::Datacenter("ams".into()), from: None, to: Some(Action::Drain), change: OverrideChange::Set { expires_at: None } };
            log.push(AdminEvent { at, by: Actor::Api { client: Some("192.0.2.7:4000".parse().unwrap()), role: Some(Role::Admin) }, change });
        }
        let e = log.events();
        assert_eq!(e.len(), ADMIN_EVENTS);
        assert_eq!(e[0].at, ADMIN_EVENTS as u64 + 4);
        assert_eq!(format!("{} {}", e[0].by, e[0].change), "192.0.2.7:4000 (admin) override set: datacenter ams none -> drain");
    }
}
