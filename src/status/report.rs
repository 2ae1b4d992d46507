//! `GET /v1/status`: the whole picture as JSON — a summary and every problem, check
//! targets (with the last hour), data centres, what each region of each service is
//! answered right now (each data centre's share for weighted services), overrides,
//! zones, recent changes (health flips and admin actions).
//! Read-only: built from the current snapshot and the monitor's records. Every time is
//! RFC 3339 UTC with seconds (`2026-12-01T21:30:00Z`).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::{json, Value};

use crate::config::geo::{DcIndex, RegionRef, Weights};
use crate::control::Control;
use crate::geo::Order;
use crate::health::history::{AdminChange, AdminEvent, BUCKET_SECS};
use crate::health::{Action, Change, Override, OverrideTarget};
use crate::services::{Answer, Pick, Service};
use crate::snapshot::Snapshot;
use crate::wire::query::rtype;

/// Seconds since the epoch as RFC 3339 UTC with seconds, the one time format of the API.
pub fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs)).to_string()
}

/// An admin action as the API spells it.
pub fn action_str(a: Action) -> &'static str {
    match a {
        Action::Down => "down",
        Action::Up => "up",
        Action::Drain => "drain",
    }
}

fn rdata_text(t: u16, rd: &[u8]) -> String {
    match (t, rd.len()) {
        (rtype::A, 4) => Ipv4Addr::new(rd[0], rd[1], rd[2], rd[3]).to_string(),
        (rtype::AAAA, 16) => {
            let mut b = [0u8; 16];
            b.copy_from_slice(rd);
            Ipv6Addr::from(b).to_string()
        }
        _ => {
            let mut s = String::new();
            let _ = crate::wire::name::write_text(rd, &mut s);
            s
        }
    }
}

fn dc_names(snap: &Snapshot, mask: u64) -> Vec<String> {
    snap.geo.config.datacenters.iter().enumerate().filter(|(i, _)| mask & (1u64 << i) != 0).map(|(_, d)| d.name.clone()).collect()
}

fn dc_names_list(snap: &Snapshot, order: &[DcIndex]) -> Vec<String> {
    order.iter().map(|&i| snap.geo.config.datacenters[i as usize].name.clone()).collect()
}

fn records(t: u16, a: &Answer<'_>) -> Vec<String> {
    match a.pick {
        Pick::Records(set) => set.rdatas.iter().map(|d| rdata_text(t, d)).collect(),
        Pick::Cname(set) => set.rdatas.iter().map(|d| format!("CNAME {}", rdata_text(rtype::CNAME, d))).collect(),
        Pick::NoData => vec![],
    }
}

/// A data centre's state and the override in force on it.
#[derive(Debug, Clone, PartialEq)]
pub struct DatacenterState {
    pub name: String,
    /// One of [`crate::metrics::DATACENTER_STATES`].
    pub state: &'static str,
    pub action: Option<Action>,
}

/// The state of every configured data centre, in config order: an override decides
/// (drained, forced-down, forced-up); otherwise the services it serves (idle: none).
pub fn datacenter_states(snap: &Snapshot, overrides: &[Override]) -> Vec<DatacenterState> {
    snap.geo
        .config
        .datacenters
        .iter()
        .enumerate()
        .map(|(d, dc)| {
            let action = overrides.iter().find(|o| o.target == OverrideTarget::Datacenter(dc.name.clone())).map(|o| o.action);
            let (mut serving, mut ups, mut wavering) = (0, 0, false);
            for s in &snap.services.services {
                let (serves, up, w) = s.dc_status(d as DcIndex);
                if serves {
                    serving += 1;
                    ups += usize::from(up);
                    wavering |= w;
                }
            }
            let state = match action {
                Some(Action::Drain) => "drained",
                Some(Action::Down) => "forced-down",
                Some(Action::Up) => "forced-up",
                None if serving == 0 => "idle",
                None if ups == 0 => "down",
                None if ups < serving => "partial",
                None if wavering => "wavering",
                None => "up",
            };
            DatacenterState { name: dc.name.clone(), state, action }
        })
        .collect()
}

/// The weight of the data centre or address that `a` picked (weighted policy).
fn weight_of(svc: &Service, t: u16, a: &Answer<'_>) -> u64 {
    match &svc.config.weights {
        Some(Weights::Datacenter(w)) if a.datacenters != 0 => w.get(a.datacenters.trailing_zeros() as usize).map_or(0, |&x| u64::from(x)),
        Some(Weights::Address(w)) => match a.pick {
            Pick::Records(set) if set.rdatas.len() == 1 => {
                let ip: Option<IpAddr> = match (t, set.rdatas[0].len()) {
                    (rtype::A, 4) => <[u8; 4]>::try_from(&set.rdatas[0][..]).ok().map(IpAddr::from),
                    (rtype::AAAA, 16) => <[u8; 16]>::try_from(&set.rdatas[0][..]).ok().map(IpAddr::from),
                    _ => None,
                };
                ip.and_then(|ip| w.get(&ip)).map_or(0, |&x| u64::from(x))
            }
            _ => 0,
        },
        _ => 0,
    }
}

/// Each data centre's share of a weighted service's answers for one region, exactly:
/// the service picks `client_hash % total` over its healthy candidates in order, so
/// asking with the hash at each candidate's offset (0, w1, w1+w2, …) visits every
/// candidate once, until the hashes wrap around to the first pick.
fn weighted_shares(snap: &Snapshot, svc: &Service, order: &Order, t: u16) -> Vec<Value> {
    let limit: u64 = match &svc.config.weights {
        Some(Weights::Datacenter(w)) => w.iter().map(|&x| u64::from(x)).sum(),
        Some(Weights::Address(w)) => w.values().map(|&x| u64::from(x)).sum(),
        None => 0,
    };
    let first = svc.answer(order, t, 0);
    let key = |a: &Answer<'_>| (a.datacenters, records(t, a));
    let first_key = key(&first);
    // (data-centre mask, records, weight)
    let mut picks: Vec<(u64, Vec<String>, u64)> = Vec::new();
    let mut hash = 0u64;
    loop {
        let a = svc.answer(order, t, hash);
        if hash > 0 && key(&a) == first_key {
            break;
        }
        let w = if a.all_down { 0 } else { weight_of(svc, t, &a) };
        picks.push((a.datacenters, records(t, &a), w.max(1)));
        // Weight 0: the all-down answer, or every candidate weighs 0 (the first is answered).
        if w == 0 || picks.len() >= 64 {
            break;
        }
        hash += w;
        if hash >= limit {
            break;
        }
    }
    let total: u64 = picks.iter().map(|p| p.2).sum();
    // Grouped by data centre, in the order first picked.
    let mut by_dc: Vec<(u64, Vec<String>, u64)> = Vec::new();
    for (mask, recs, w) in picks {
        match by_dc.iter_mut().find(|x| x.0 == mask) {
            Some(x) => {
                x.1.extend(recs);
                x.2 += w;
            }
            None => by_dc.push((mask, recs, w)),
        }
    }
    by_dc
        .into_iter()
        .map(|(mask, recs, w)| {
            let share = if total == 0 { 0.0 } else { w as f64 / total as f64 };
            json!({ "datacenter": dc_names(snap, mask).first().cloned(), "answer": recs, "share": (share * 10_000.0).round() / 10_000.0 })
        })
        .collect()
}

/// What every region of the map gets for `svc` right now: the order the query path
/// gives the region's clients ([`crate::geo::GeoState::region_order`]) through the same
/// [`Service::answer`] that answers their queries.
fn regions(snap: &Snapshot, svc: &Service) -> Vec<Value> {
    let map = &snap.geo.config.map;
    let mut regions: Vec<RegionRef> = vec![RegionRef::Default];
    let mut entries: Vec<RegionRef> = map.entries.keys().cloned().collect();
    entries.sort_by_key(|r| r.to_string());
    regions.extend(entries);
    let weighted = svc.config.policy == crate::config::geo::Policy::Weighted && svc.config.weights.is_some();
    regions
        .into_iter()
        .map(|r| {
            let order = snap.geo.region_order(&r);
            let mut out = json!({ "region": r.to_string(), "order": dc_names_list(snap, order.as_slice()), "fenced": order.fenced });
            for (label, t) in [("a", rtype::A), ("aaaa", rtype::AAAA)] {
                let ans = svc.answer(&order, t, 0);
                out[label] = json!({
                    "answer": records(t, &ans),
                    "ttl": ans.ttl,
                    "datacenters": dc_names(snap, ans.datacenters),
                    "failed_over": ans.failed_over,
                    "all_down": ans.all_down,
                });
                if weighted {
                    out[label]["shares"] = Value::Array(weighted_shares(snap, svc, &order, t));
                }
            }
            out
        })
        .collect()
}

/// What each check decides, by check id: "datacenter ams", "web.example.com. @ iad".
fn used_by(snap: &Snapshot) -> HashMap<String, Vec<String>> {
    let cfg = &snap.config;
    let mut used_by: Vec<Vec<String>> = vec![Vec::new(); cfg.health.checks.len()];
    for (d, chk) in cfg.health.dc_checks.iter().enumerate() {
        if let Some(i) = chk {
            used_by[*i].push(format!("datacenter {}", cfg.geo.datacenters[d].name));
        }
    }
    for (si, per_dc) in cfg.health.service_checks.iter().enumerate() {
        let sname = cfg.geo.services[si].name.to_string();
        for (d, chk) in per_dc.iter().enumerate() {
            let dname = &cfg.geo.datacenters[d].name;
            match chk {
                crate::config::health::ServiceDcCheck::Whole(i) => used_by[*i].push(format!("{sname} @ {dname}")),
                crate::config::health::ServiceDcCheck::PerAddress(v) => {
                    for (a, i) in v {
                        used_by[*i].push(format!("{sname} @ {dname} {a}"));
                    }
                }
                crate::config::health::ServiceDcCheck::None => {}
            }
        }
    }
    cfg.health.checks.iter().zip(used_by).map(|(c, u)| (c.id(), u)).collect()
}

/// "address 198.51.100.10 (web.example.com. @ iad)": an override target with what it serves.
fn override_subject(snap: &Snapshot, t: &OverrideTarget) -> String {
    match t {
        OverrideTarget::Datacenter(d) => format!("datacenter {d}"),
        OverrideTarget::Address(a) => {
            let cfg = &snap.config.geo;
            let uses: Vec<String> = cfg
                .services
                .iter()
                .flat_map(|s| {
                    s.per_dc.iter().enumerate().filter(move |(_, d)| match a {
                        IpAddr::V4(v) => d.v4.contains(v),
                        IpAddr::V6(v) => d.v6.contains(v),
                    })
                    .map(move |(i, _)| format!("{} @ {}", s.name, cfg.datacenters[i].name))
                })
                .collect();
            if uses.is_empty() {
                format!("address {a}")
            } else {
                format!("address {a} ({})", uses.join(", "))
            }
        }
    }
}

/// Health flips and admin actions, newest first.
fn recent_changes(snap: &Snapshot, health: &[Change], admin: &[AdminEvent], used_by: &HashMap<String, Vec<String>>) -> Vec<Value> {
    let mut out: Vec<(u64, Value)> = health
        .iter()
        .map(|ch| {
            let subject = used_by.get(&ch.target).filter(|u| !u.is_empty()).map_or_else(|| format!("check {}", ch.target), |u| u.join(", "));
            (ch.at, json!({ "at": rfc3339(ch.at), "kind": "health", "target": ch.target, "subject": subject, "from": ch.from, "to": ch.to }))
        })
        .collect();
    for e in admin {
        let (by, note) = match e.change {
            AdminChange::Set { expires_at: Some(x) } => ("admin", Some(format!("until {}", rfc3339(x)))),
            AdminChange::Set { expires_at: None } => ("admin", None),
            AdminChange::Removed => ("admin", Some("override removed".to_string())),
            AdminChange::Expired => ("expiry", Some("override expired".to_string())),
        };
        let target = e.target.to_string();
        out.push((
            e.at,
            json!({
                "at": rfc3339(e.at), "kind": "admin", "target": target, "subject": override_subject(snap, &e.target),
                "from": e.from.map_or("none", action_str), "to": e.to.map_or("none", action_str), "by": by, "note": note,
            }),
        ));
    }
    // Both lists are newest first; a stable sort keeps that order within one second.
    out.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    out.into_iter().map(|(_, v)| v).collect()
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// One problem for the status page's banner.
fn problem(kind: &str, text: String, details: Vec<String>) -> Value {
    json!({ "kind": kind, "text": text, "details": details })
}

/// The status document.
pub fn status(c: &Control) -> Value {
    let snap = c.snapshot.load();
    let (targets, overrides, recent, state_error) = c.monitor.report();
    let admin = c.monitor.admin_events();
    let cfg = &snap.config;
    let now = crate::health::now_secs();
    let (fleet, peer_states) = c.monitor.fleet_report();
    let have_fleet = !fleet.peers.is_empty();
    let used_by = used_by(&snap);

    let targets_json: Vec<Value> = targets
        .iter()
        .map(|t| {
            let verdict = c.monitor.verdict_for(&t.check, now);
            let kind = match &t.check.kind {
                crate::config::health::CheckKind::Http { tls: true, .. } => "https",
                crate::config::health::CheckKind::Http { .. } => "http",
                crate::config::health::CheckKind::Tcp => "tcp",
            };
            // Without a fleet there is no other view to fall back from.
            let reason = if have_fleet { verdict.reason.clone() } else { "no fleet: this instance's checks decide".to_string() };
            let timeline: Vec<Value> = t
                .history
                .last_hour(now)
                .iter()
                .map(|b| {
                    json!({
                        "start": rfc3339(b.start), "probes": b.probes, "failures": b.failures, "down": b.down,
                        "latency_ms": (b.latency_ms_avg() * 1000.0).round() / 1000.0,
                        "latency_max_ms": (b.latency_ms_max * 1000.0).round() / 1000.0,
                    })
                })
                .collect();
            json!({
                "id": t.check.id(),
                "kind": kind,
                "address": t.check.target.to_string(),
                "state": t.hyst.phase.as_str(),
                "up": t.hyst.phase.is_up(),
                "since": rfc3339(t.since),
                "has_result": t.has_result,
                "last_result": t.last.as_ref().map(|l| if l.ok { "ok" } else { "fail" }),
                "last_checked": t.last.as_ref().map(|l| rfc3339(l.at)),
                "latency_ms": t.last.as_ref().map(|l| (l.latency_ms * 1000.0).round() / 1000.0),
                "last_error": t.last.as_ref().and_then(|l| l.error.clone()),
                "consecutive_ok": t.hyst.consecutive_ok,
                "consecutive_fail": t.hyst.consecutive_fail,
                "probes": t.probes,
                "failures": t.failures,
                "flips": t.flips,
                "interval_s": t.check.interval.as_secs_f64(),
                "timeout_s": t.check.timeout.as_secs_f64(),
                "fall": t.check.fall,
                "rise": t.check.rise,
                "used_by": used_by.get(&t.check.id()).cloned().unwrap_or_default(),
                "probed_here": t.check.probed_from(&cfg.fleet.vantage),
                "vantage_points": t.check.vantage_points,
                "verdict": { "up": verdict.up, "wavering": verdict.wavering, "reason": reason },
                "votes": verdict.votes,
                "timeline": { "bucket_s": BUCKET_SECS, "buckets": timeline },
            })
        })
        .collect();

    let states = datacenter_states(&snap, &overrides);
    let datacenters: Vec<Value> = cfg
        .geo
        .datacenters
        .iter()
        .zip(&states)
        .enumerate()
        .map(|(d, (dc, st))| {
            let ov = overrides.iter().find(|o| o.target == OverrideTarget::Datacenter(dc.name.clone()));
            let services: Vec<Value> = snap
                .services
                .services
                .iter()
                .filter(|s| s.dc_status(d as DcIndex).0)
                .map(|s| {
                    let (_, up, wavering) = s.dc_status(d as DcIndex);
                    json!({ "service": s.config.name.to_string(), "up": up, "wavering": wavering })
                })
                .collect();
            json!({
                "name": dc.name,
                "location": [dc.lat, dc.lon],
                "state": st.state,
                "check": cfg.health.dc_checks[d].map(|i| cfg.health.checks[i].id()),
                "override": ov.map(|o| json!({ "action": o.action, "set_at": rfc3339(o.set_at), "expires_at": o.expires_at.map(rfc3339) })),
                "services": services,
            })
        })
        .collect();

    let services: Vec<Value> = snap
        .services
        .services
        .iter()
        .map(|s| {
            json!({
                "name": s.config.name.to_string(),
                "policy": s.config.policy.to_string(),
                "ttl": s.config.ttl,
                "failover_ttl": s.config.failover_ttl,
                "all_down": s.config.all_down.as_str(),
                "regions": regions(&snap, s),
            })
        })
        .collect();

    let zones: Vec<Value> = {
        let mut z: Vec<Value> = snap
            .loaded
            .iter()
            .map(|z| {
                let d = z.dnssec.as_deref();
                json!({
                    "zone": z.apex.to_string(),
                    "serial": z.serial,
                    "records": z.record_count,
                    "file": z.source.display().to_string(),
                    "signed": d.is_some(),
                    "denial": d.map(|d| d.denial_name()),
                    "rrsig_earliest_expiry": d.and_then(|d| d.earliest_expiry).map(|t| humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t)).to_string()),
                })
            })
            .collect();
        z.sort_by(|a, b| a["zone"].as_str().cmp(&b["zone"].as_str()));
        z
    };

    let digest = cfg.routing_digest();
    let our_zones = snap.loaded.serials();
    let mut warnings: Vec<String> = Vec::new();
    let peers_json: Vec<Value> = peer_states
        .iter()
        .map(|p| {
            let doc = p.doc.as_ref();
            let age = p.last_ok.map(|t| now.saturating_sub(t));
            let fresh = age.is_some_and(|a| a <= fleet.stale_after.as_secs().max(1));
            if let Some(d) = doc {
                if d.config_digest != digest {
                    warnings.push(format!("peer {} runs a different config (digest {} vs ours {digest})", p.name, d.config_digest));
                }
                for (z, serial) in &d.zones {
                    match our_zones.get(z) {
                        Some(ours) if ours != serial => warnings.push(format!("zone {z}: peer {} serves serial {serial}, we serve {ours}", p.name)),
                        None => warnings.push(format!("zone {z}: served by peer {} but not here", p.name)),
                        _ => {}
                    }
                }
                for z in our_zones.keys().filter(|z| !d.zones.contains_key(*z)) {
                    warnings.push(format!("zone {z}: served here but not by peer {}", p.name));
                }
            }
            json!({
                "name": p.name,
                "url": p.url,
                "reachable": p.reachable,
                "fresh": fresh,
                "last_ok": p.last_ok.map(rfc3339),
                "age_s": age,
                "last_error": p.last_error,
                "latency_ms": p.latency_ms,
                "bytes_received": p.bytes,
                "unchanged_pulls": p.unchanged,
                "vantage": doc.map(|d| d.vantage.clone()),
                "generation": doc.map(|d| d.generation),
                "config_digest": doc.map(|d| d.config_digest.clone()),
                "zones": doc.map(|d| d.zones.clone()),
                "targets": doc.map(|d| d.targets.len()),
            })
        })
        .collect();
    if have_fleet && !peer_states.iter().any(|p| p.last_ok.is_some_and(|t| now.saturating_sub(t) <= fleet.stale_after.as_secs().max(1))) {
        warnings.push("no peer has fresh observations: verdicts are this instance's own view".to_string());
    }

    // Every problem, for the banner: the page's headline is fine only when this is empty.
    let loaded_at = humantime::format_rfc3339_seconds(snap.loaded_at).to_string();
    let last_reload = c.last_reload();
    let mut problems: Vec<Value> = Vec::new();
    if let Some(r) = last_reload.as_ref().filter(|r| !r.ok) {
        problems.push(problem(
            "reload",
            format!("Reload failed at {}: still serving generation {} (loaded {loaded_at})", r.at, snap.generation),
            r.errors.clone(),
        ));
    }
    if let Some(e) = &state_error {
        problems.push(problem("state_file", format!("State file: {e}"), vec![]));
    }
    for (dc, st) in cfg.geo.datacenters.iter().zip(&states) {
        // The down checks that decide this data centre or one of its services.
        let decides = |u: &str| {
            let at = format!(" @ {}", dc.name);
            u == format!("datacenter {}", dc.name) || u.ends_with(&at) || u.contains(&format!("{at} "))
        };
        let down_checks = || -> Vec<String> {
            targets_json
                .iter()
                .filter(|t| t["up"] == false && t["used_by"].as_array().is_some_and(|u| u.iter().any(|x| x.as_str().is_some_and(decides))))
                .map(|t| format!("{} is down: {}", t["id"].as_str().unwrap_or(""), t["last_error"].as_str().unwrap_or("no error recorded")))
                .collect()
        };
        match st.state {
            "down" => problems.push(problem("datacenter", format!("Data centre {} is down", dc.name), down_checks())),
            "partial" => problems.push(problem("datacenter", format!("Data centre {} is partly down", dc.name), down_checks())),
            "forced-down" => problems.push(problem("datacenter", format!("Data centre {} is forced down by an admin override", dc.name), vec![])),
            _ => {}
        }
    }
    // Down checks not already named under a data centre (e.g. one address of several).
    let named: Vec<String> = problems.iter().flat_map(|p| p["details"].as_array().cloned().unwrap_or_default()).filter_map(|d| d.as_str().map(String::from)).collect();
    for t in targets_json.iter().filter(|t| t["up"] == false) {
        let id = t["id"].as_str().unwrap_or("");
        if named.iter().any(|d| d.starts_with(&format!("{id} is down"))) {
            continue;
        }
        let decides: Vec<&str> = t["used_by"].as_array().map(|u| u.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        let why = t["last_error"].as_str().map_or_else(|| "no result yet: the saved state says down".to_string(), String::from);
        problems.push(problem("check", format!("Check {id} is down ({why})"), decides.iter().map(|d| format!("decides {d}")).collect()));
    }
    let mut all_down_regions = 0;
    let mut failed_over_regions = 0;
    for s in &services {
        let regions = s["regions"].as_array().map(Vec::as_slice).unwrap_or_default();
        let down: Vec<String> = regions.iter().filter(|r| r["a"]["all_down"] == true || r["aaaa"]["all_down"] == true).filter_map(|r| r["region"].as_str().map(String::from)).collect();
        failed_over_regions += regions.iter().filter(|r| r["a"]["failed_over"] == true || r["aaaa"]["failed_over"] == true).count();
        all_down_regions += down.len();
        if !down.is_empty() {
            problems.push(problem(
                "all_down",
                format!("{}: nothing up for {}; the all-down policy ({}) answers", s["name"].as_str().unwrap_or(""), plural(down.len(), "region", "regions"), s["all_down"].as_str().unwrap_or("")),
                down,
            ));
        }
    }
    for w in &warnings {
        problems.push(problem("fleet", format!("Fleet: {w}"), vec![]));
    }
    // Signed zones whose signatures run out soon: re-signing is the operator's job.
    let now_secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    for z in snap.loaded.iter() {
        let Some(expiry) = z.dnssec.as_ref().and_then(|d| d.earliest_expiry) else { continue };
        if expiry <= now_secs + cfg.load_limits.rrsig_expiry_margin {
            let at = humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(expiry));
            let what = if expiry <= now_secs { "expired" } else { "expire" };
            problems.push(problem("signatures", format!("Zone {}: RRSIGs {what} at {at}; re-sign it before validating resolvers see it as bogus", z.apex), vec![]));
        }
    }
    // Not problems, but not "all well" either: deliberate overrides and failovers.
    let mut notices: Vec<Value> = Vec::new();
    for o in &overrides {
        let what = match o.action {
            Action::Drain => "drained",
            Action::Down => "forced down",
            Action::Up => "forced up (checks ignored)",
        };
        let until = o.expires_at.map_or_else(|| "until removed".to_string(), |e| format!("until {}", rfc3339(e)));
        notices.push(problem("override", format!("{} {what} by an admin override, {until}", override_subject(&snap, &o.target)), vec![]));
    }
    for s in &services {
        let regions = s["regions"].as_array().map(Vec::as_slice).unwrap_or_default();
        let failed: Vec<String> = regions
            .iter()
            .filter(|r| (r["a"]["failed_over"] == true || r["aaaa"]["failed_over"] == true) && r["a"]["all_down"] != true && r["aaaa"]["all_down"] != true)
            .filter_map(|r| r["region"].as_str().map(String::from))
            .collect();
        if !failed.is_empty() {
            let text = format!("{}: {} failed over from their first choice ({})", s["name"].as_str().unwrap_or(""), plural(failed.len(), "region", "regions"), failed.join(", "));
            notices.push(problem("failover", text, vec![]));
        }
    }
    let count = |want: &[&str]| states.iter().filter(|s| want.contains(&s.state)).count();
    let summary = json!({
        "ok": problems.is_empty(),
        "problems": problems.len(),
        "notices": notices.len(),
        "datacenters": states.len(),
        "up": count(&["up", "forced-up", "wavering"]),
        "down": count(&["down", "forced-down"]),
        "partial": count(&["partial"]),
        "wavering": count(&["wavering"]),
        "drained": count(&["drained"]),
        "forced_down": count(&["forced-down"]),
        "forced_up": count(&["forced-up"]),
        "idle": count(&["idle"]),
        "failed_over_regions": failed_over_regions,
        "all_down_regions": all_down_regions,
    });

    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "summary": summary,
        "problems": problems,
        "notices": notices,
        "fleet": {
            "vantage": fleet.vantage,
            "quorum": format!("{:?}", fleet.quorum).to_lowercase(),
            "interval_s": fleet.interval.as_secs_f64(),
            "stale_after_s": fleet.stale_after.as_secs_f64(),
            "config_digest": digest,
            "peers": peers_json,
            "warnings": warnings,
        },
        "now": rfc3339(now),
        "generation": snap.generation,
        "loaded_at": loaded_at,
        "last_reload": last_reload,
        "zones": zones,
        "targets": targets_json,
        "datacenters": datacenters,
        "services": services,
        "overrides": overrides.iter().map(|o| json!({
            "target": o.target, "subject": override_subject(&snap, &o.target), "action": o.action,
            "set_at": rfc3339(o.set_at), "expires_at": o.expires_at.map(rfc3339),
        })).collect::<Vec<_>>(),
        "recent_changes": recent_changes(&snap, &recent, &admin, &used_by),
        "state_file": {
            "path": cfg.health.state_file.as_ref().map(|p| p.display().to_string()),
            "error": state_error,
        },
        "admin_enabled": cfg.health.admin_token.is_some(),
    })
}
