//! The status document's problems (everything wrong now, as the page's banner shows
//! it: a failed reload, the state file, data centres down, down checks, regions with
//! nothing up, fleet disagreements, signatures running out) and notices (deliberate or
//! expected departures: overrides, failovers), from the sections already built.

use super::document::{Finding, Reload, Service, Target};
use super::report::{override_subject, rfc3339, DatacenterState};
use crate::health::{Action, Override};
use crate::snapshot::Snapshot;

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn finding(kind: &'static str, text: String, details: Vec<String>) -> Finding {
    Finding { kind, text, details }
}

/// What the problems are found in.
pub struct Inputs<'a> {
    pub last_reload: &'a Option<Reload>,
    pub loaded_at: &'a str,
    pub state_error: &'a Option<String>,
    pub states: &'a [DatacenterState],
    pub targets: &'a [Target],
    pub services: &'a [Service],
    pub fleet_warnings: &'a [String],
    pub now: u64,
}

/// Every problem, for the banner: the page's headline is fine only when this is empty.
pub fn problems(snap: &Snapshot, i: &Inputs<'_>) -> Vec<Finding> {
    let cfg = &snap.config;
    let mut problems: Vec<Finding> = Vec::new();
    if let Some(r) = i.last_reload.as_ref().filter(|r| !r.ok) {
        problems.push(finding("reload", format!("Reload failed at {}: still serving generation {} (loaded {})", r.at, snap.generation, i.loaded_at), r.errors.clone()));
    }
    if let Some(e) = i.state_error {
        problems.push(finding("state_file", format!("State file: {e}"), vec![]));
    }
    let down_text = |t: &Target| format!("{} is down: {}", t.id, t.last_error.as_deref().unwrap_or("no error recorded"));
    for (dc, st) in cfg.geo.datacenters.iter().zip(i.states) {
        // The down checks that decide this data centre or one of its services.
        let decides = |u: &String| {
            let at = format!(" @ {}", dc.name);
            *u == format!("datacenter {}", dc.name) || u.ends_with(&at) || u.contains(&format!("{at} "))
        };
        let down_checks = || -> Vec<String> { i.targets.iter().filter(|t| !t.up && t.used_by.iter().any(decides)).map(down_text).collect() };
        match st.state {
            "down" => problems.push(finding("datacenter", format!("Data centre {} is down", dc.name), down_checks())),
            "partial" => problems.push(finding("datacenter", format!("Data centre {} is partly down", dc.name), down_checks())),
            "forced-down" => problems.push(finding("datacenter", format!("Data centre {} is forced down by an admin override", dc.name), vec![])),
            _ => {}
        }
    }
    // Down checks not already named under a data centre (e.g. one address of several).
    let named: Vec<String> = problems.iter().flat_map(|p| p.details.iter().cloned()).collect();
    for t in i.targets.iter().filter(|t| !t.up) {
        if named.iter().any(|d| d.starts_with(&format!("{} is down", t.id))) {
            continue;
        }
        let why = t.last_error.clone().unwrap_or_else(|| "no result yet: the saved state says down".to_string());
        problems.push(finding("check", format!("Check {} is down ({why})", t.id), t.used_by.iter().map(|d| format!("decides {d}")).collect()));
    }
    for s in i.services {
        let down: Vec<String> = s.regions.iter().filter(|r| r.a.all_down || r.aaaa.all_down).map(|r| r.region.clone()).collect();
        if !down.is_empty() {
            let text = format!("{}: nothing up for {}; the all-down policy ({}) answers", s.name, plural(down.len(), "region", "regions"), s.all_down);
            problems.push(finding("all_down", text, down));
        }
    }
    for w in i.fleet_warnings {
        problems.push(finding("fleet", format!("Fleet: {w}"), vec![]));
    }
    // Signed zones whose signatures run out soon: re-signing is the operator's job.
    for z in snap.catalog.iter() {
        let Some(expiry) = z.dnssec.as_ref().and_then(|d| d.earliest_expiry) else { continue };
        if expiry <= i.now + cfg.load_limits.rrsig_expiry_margin {
            let what = if expiry <= i.now { "expired" } else { "expire" };
            let text = format!("Zone {}: RRSIGs {what} at {}; re-sign it before validating resolvers see it as bogus", z.apex, rfc3339(expiry));
            problems.push(finding("signatures", text, vec![]));
        }
    }
    problems
}

/// Not problems, but not "all well" either: deliberate overrides and failovers.
pub fn notices(snap: &Snapshot, overrides: &[Override], services: &[Service]) -> Vec<Finding> {
    let mut notices: Vec<Finding> = Vec::new();
    for o in overrides {
        let what = match o.action {
            Action::Drain => "drained",
            Action::Down => "forced down",
            Action::Up => "forced up (checks ignored)",
        };
        let until = o.expires_at.map_or_else(|| "until removed".to_string(), |e| format!("until {}", rfc3339(e)));
        notices.push(finding("override", format!("{} {what} by an admin override, {until}", override_subject(snap, &o.target)), vec![]));
    }
    for s in services {
        let failed: Vec<&str> = s
            .regions
            .iter()
            .filter(|r| (r.a.failed_over || r.aaaa.failed_over) && !r.a.all_down && !r.aaaa.all_down)
            .map(|r| r.region.as_str())
            .collect();
        if !failed.is_empty() {
            let text = format!("{}: {} failed over from their first choice ({})", s.name, plural(failed.len(), "region", "regions"), failed.join(", "));
            notices.push(finding("failover", text, vec![]));
        }
    }
    notices
}
