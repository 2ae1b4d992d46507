//! `GET /v1/status`: the whole picture as JSON — check targets, data centres, what each
//! region of each service is answered right now, overrides, zones, recent changes.
//! Read-only: built from the current snapshot and the monitor's records.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::{json, Value};

use crate::config::geo::{DcIndex, RegionRef};
use crate::control::Control;
use crate::health::{Action, OverrideTarget};
use crate::services::{Pick, Service};
use crate::snapshot::Snapshot;
use crate::wire::query::rtype;

fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs)).to_string()
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

/// What every region of the map gets for `svc` right now.
fn regions(snap: &Snapshot, svc: &Service) -> Vec<Value> {
    let map = &snap.geo.config.map;
    let mut regions: Vec<(RegionRef, Vec<DcIndex>)> = vec![(RegionRef::Default, map.default.clone())];
    let mut entries: Vec<_> = map.entries.iter().map(|(r, l)| (r.clone(), l.clone())).collect();
    entries.sort_by_key(|(r, _)| r.to_string());
    regions.extend(entries);
    let all: Vec<DcIndex> = (0..snap.geo.config.datacenters.len() as DcIndex).collect();
    regions
        .into_iter()
        .map(|(r, order)| {
            let fenced = snap.geo.config.fenced.contains(&r);
            let mut out = json!({ "region": r.to_string(), "order": dc_names_list(snap, &order), "fenced": fenced });
            for (label, t) in [("a", rtype::A), ("aaaa", rtype::AAAA)] {
                let ans = svc.answer(&order, fenced, [&map.default, &all], t, 0);
                let records: Vec<String> = match ans.pick {
                    Pick::Records(set) => set.rdatas.iter().map(|d| rdata_text(t, d)).collect(),
                    Pick::Cname(set) => set.rdatas.iter().map(|d| format!("CNAME {}", rdata_text(rtype::CNAME, d))).collect(),
                    Pick::NoData => vec![],
                };
                out[label] = json!({
                    "answer": records,
                    "ttl": ans.ttl,
                    "datacenters": dc_names(snap, ans.datacenters),
                    "failed_over": ans.failed_over,
                    "all_down": ans.all_down,
                });
            }
            out
        })
        .collect()
}

fn dc_names_list(snap: &Snapshot, order: &[DcIndex]) -> Vec<String> {
    order.iter().map(|&i| snap.geo.config.datacenters[i as usize].name.clone()).collect()
}

/// The status document.
pub fn status(c: &Control) -> Value {
    let snap = c.snapshot.load();
    let (targets, overrides, recent, state_error) = c.monitor.report();
    let cfg = &snap.config;

    // Which data centres, services and addresses each check decides.
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
    let now = crate::health::now_secs();
    let index: std::collections::HashMap<String, usize> = cfg.health.checks.iter().enumerate().map(|(i, c)| (c.id(), i)).collect();
    let targets_json: Vec<Value> = targets
        .iter()
        .map(|t| {
            let verdict = c.monitor.verdict_for(&t.check, now);
            let idx = index.get(&t.check.id()).copied();
            let kind = match &t.check.kind {
                crate::config::health::CheckKind::Http { tls: true, .. } => "https",
                crate::config::health::CheckKind::Http { .. } => "http",
                crate::config::health::CheckKind::Tcp => "tcp",
            };
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
                "used_by": idx.map(|i| used_by[i].clone()).unwrap_or_default(),
                "probed_here": t.check.probed_from(&cfg.fleet.vantage),
                "vantage_points": t.check.vantage_points,
                "verdict": { "up": verdict.up, "wavering": verdict.wavering, "reason": verdict.reason },
                "votes": verdict.votes,
            })
        })
        .collect();

    let datacenters: Vec<Value> = cfg
        .geo
        .datacenters
        .iter()
        .enumerate()
        .map(|(d, dc)| {
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
            let dc_check = cfg.health.dc_checks[d].map(|i| cfg.health.checks[i].id());
            let ups = services.iter().filter(|s| s["up"] == json!(true)).count();
            let wavering = services.iter().any(|s| s["wavering"] == json!(true));
            let state = match ov.map(|o| o.action) {
                Some(Action::Drain) => "drained",
                Some(Action::Down) => "forced-down",
                Some(Action::Up) => "forced-up",
                None if services.is_empty() => "idle",
                None if ups == 0 => "down",
                None if ups < services.len() => "partial",
                None if wavering => "wavering",
                None => "up",
            };
            json!({
                "name": dc.name,
                "location": [dc.lat, dc.lon],
                "state": state,
                "check": dc_check,
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
                "all_down": match &s.config.all_down {
                    crate::config::health::AllDown::ServeAll => "serve-all",
                    crate::config::health::AllDown::Fallback(_) => "fallback",
                    crate::config::health::AllDown::NoData => "nodata",
                },
                "regions": regions(&snap, s),
            })
        })
        .collect();

    let zones: Vec<Value> = {
        let mut z: Vec<Value> = snap
            .loaded
            .iter()
            .map(|z| json!({ "zone": z.apex.to_string(), "serial": z.serial, "records": z.record_count, "file": z.source.display().to_string() }))
            .collect();
        z.sort_by(|a, b| a["zone"].as_str().cmp(&b["zone"].as_str()));
        z
    };

    let (fleet, peer_states) = c.monitor.fleet_report();
    let digest = cfg.routing_digest();
    let our_zones: std::collections::BTreeMap<String, u32> = snap.loaded.iter().map(|z| (z.apex.to_string(), z.serial)).collect();
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
    if !fleet.peers.is_empty() && !peer_states.iter().any(|p| p.last_ok.is_some_and(|t| now.saturating_sub(t) <= fleet.stale_after.as_secs().max(1))) {
        warnings.push("no peer has fresh observations: verdicts are this instance's own view".to_string());
    }

    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "fleet": {
            "vantage": fleet.vantage,
            "quorum": format!("{:?}", fleet.quorum).to_lowercase(),
            "interval_s": fleet.interval.as_secs_f64(),
            "stale_after_s": fleet.stale_after.as_secs_f64(),
            "config_digest": digest,
            "peers": peers_json,
            "warnings": warnings,
        },
        "now": rfc3339(crate::health::now_secs()),
        "generation": snap.generation,
        "loaded_at": humantime::format_rfc3339_seconds(snap.loaded_at).to_string(),
        "last_reload": c.last_reload(),
        "zones": zones,
        "targets": targets_json,
        "datacenters": datacenters,
        "services": services,
        "overrides": overrides.iter().map(|o| json!({
            "target": o.target, "action": o.action, "set_at": rfc3339(o.set_at), "expires_at": o.expires_at.map(rfc3339),
        })).collect::<Vec<_>>(),
        "recent_changes": recent.iter().map(|ch| json!({
            "at": rfc3339(ch.at), "target": ch.target, "from": ch.from, "to": ch.to,
        })).collect::<Vec<_>>(),
        "state_file": {
            "path": cfg.health.state_file.as_ref().map(|p| p.display().to_string()),
            "error": state_error,
        },
        "admin_enabled": cfg.health.admin_token.is_some(),
    })
}
