//! Fills the status document ([`super::document::Status`]): a summary and every problem
//! (`findings`), check targets (with the last hour), data centres, what each region of
//! each service is answered right now (`answers`), overrides, zones, recent changes
//! (health flips and admin actions), the fleet. Read-only: built from the current
//! snapshot and one copy of the monitor's state.

use std::collections::HashMap;
use std::net::IpAddr;

use super::answers::regions;
use super::document as doc;
use super::findings;
use crate::config::geo::DcIndex;
use crate::config::health::{CheckKind, ServiceDcCheck};
use crate::control::Control;
use crate::config::access::Role;
use crate::health::history::{AdminChange, AdminEvent, OverrideChange, BUCKET_SECS};
use crate::health::{now_secs, Action, Change, MonitorReport, Override, OverrideTarget, TargetRecord};
use crate::snapshot::Snapshot;

/// Seconds since the epoch as RFC 3339 UTC with seconds, the one time format of the API.
pub fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs)).to_string()
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
                ServiceDcCheck::Whole(i) => used_by[*i].push(format!("{sname} @ {dname}")),
                ServiceDcCheck::PerAddress(v) => {
                    for (a, i) in v {
                        used_by[*i].push(format!("{sname} @ {dname} {a}"));
                    }
                }
                ServiceDcCheck::None => {}
            }
        }
    }
    cfg.health.checks.iter().zip(used_by).map(|(c, u)| (c.id(), u)).collect()
}

/// "address 198.51.100.10 (web.example.com. @ iad)": an override target with what it serves.
pub fn override_subject(snap: &Snapshot, t: &OverrideTarget) -> String {
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

/// `{"kind": "datacenter", "name": "ams"}`.
pub fn target_ref(t: &OverrideTarget) -> doc::OverrideTarget {
    match t {
        OverrideTarget::Datacenter(d) => doc::OverrideTarget { kind: "datacenter", name: d.clone() },
        OverrideTarget::Address(a) => doc::OverrideTarget { kind: "address", name: a.to_string() },
    }
}

/// Health flips and override changes, newest first.
fn recent_changes(snap: &Snapshot, health: &[Change], admin: &[AdminEvent], used_by: &HashMap<String, Vec<String>>) -> Vec<doc::ChangeEntry> {
    let mut out: Vec<(u64, doc::ChangeEntry)> = health
        .iter()
        .map(|ch| {
            let subject = used_by.get(&ch.target).filter(|u| !u.is_empty()).map_or_else(|| format!("check {}", ch.target), |u| u.join(", "));
            let entry = doc::ChangeEntry { at: rfc3339(ch.at), kind: "health", target: ch.target.clone(), subject, from: ch.from.as_str(), to: ch.to.as_str(), admin: None };
            (ch.at, entry)
        })
        .collect();
    for e in admin {
        let AdminChange::Override { target, from, to, change } = &e.change else { continue };
        let (by, note) = match change {
            OverrideChange::Set { expires_at: Some(x) } => ("admin", Some(format!("until {}", rfc3339(*x)))),
            OverrideChange::Set { expires_at: None } => ("admin", None),
            OverrideChange::Removed => ("admin", Some("override removed".to_string())),
            OverrideChange::Expired => ("expiry", Some("override expired".to_string())),
        };
        let entry = doc::ChangeEntry {
            at: rfc3339(e.at),
            kind: "admin",
            target: target.to_string(),
            subject: override_subject(snap, target),
            from: from.map_or("none", Action::as_str),
            to: to.map_or("none", Action::as_str),
            admin: Some(doc::AdminChange { by, note }),
        };
        out.push((e.at, entry));
    }
    // Both lists are newest first; a stable sort keeps that order within one second.
    out.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    out.into_iter().map(|(_, v)| v).collect()
}

/// The audit trail as the document shows it, newest first.
fn audit(snap: &Snapshot, admin: &[AdminEvent]) -> Vec<doc::AuditEntry> {
    admin
        .iter()
        .map(|e| {
            let mut entry = doc::AuditEntry {
                at: rfc3339(e.at),
                by: e.by.kind(),
                client: e.by.client().map(|c| c.to_string()),
                role: e.by.role().map(Role::as_str),
                action: "reload",
                target: None,
                subject: None,
                from: None,
                to: None,
                expires_at: None,
                ok: None,
                generation: None,
                errors: vec![],
                text: format!("{}: {}", e.by, e.change),
            };
            match &e.change {
                AdminChange::Override { target, from, to, change } => {
                    entry.action = match change {
                        OverrideChange::Set { .. } => "override-set",
                        OverrideChange::Removed => "override-removed",
                        OverrideChange::Expired => "override-expired",
                    };
                    entry.target = Some(target_ref(target));
                    entry.subject = Some(override_subject(snap, target));
                    entry.from = Some(from.map_or("none", Action::as_str));
                    entry.to = Some(to.map_or("none", Action::as_str));
                    if let OverrideChange::Set { expires_at } = change {
                        entry.expires_at = expires_at.map(rfc3339);
                    }
                }
                AdminChange::Reload { ok, generation, errors } => {
                    entry.ok = Some(*ok);
                    entry.generation = Some(*generation);
                    entry.errors = errors.clone();
                }
            }
            entry
        })
        .collect()
}

/// How the API is protected: TLS, client certificates, which roles have a token (never the tokens).
fn api(snap: &Snapshot) -> doc::Api {
    let cfg = &snap.config;
    let tls = cfg.http_tls.as_ref();
    doc::Api {
        https: snap.http_tls.is_some(),
        certificate_file: tls.map(|t| t.cert.path.display().to_string()),
        client_certificate_required: tls.is_some_and(|t| t.client_ca.is_some()),
        admin_token: cfg.health.admin_token.is_some(),
        peer_token: cfg.fleet.token.is_some(),
        read_token: cfg.health.read_token.is_some(),
    }
}

/// One check target, with this instance's and the fleet's view of it.
fn target(c: &Control, snap: &Snapshot, t: &TargetRecord, used_by: &HashMap<String, Vec<String>>, have_fleet: bool, now: u64) -> doc::Target {
    let verdict = c.monitor.verdict_for(&t.check, now);
    let kind = match &t.check.kind {
        CheckKind::Http { tls: true, .. } => "https",
        CheckKind::Http { .. } => "http",
        CheckKind::Tcp => "tcp",
    };
    // Without a fleet there is no other view to fall back from.
    let reason = if have_fleet { verdict.reason.clone() } else { "no fleet: this instance's checks decide".to_string() };
    let round3 = |v: f64| (v * 1000.0).round() / 1000.0;
    let buckets = t
        .history
        .last_hour(now)
        .iter()
        .map(|b| doc::Bucket { start: rfc3339(b.start), probes: b.probes, failures: b.failures, down: b.down, latency_ms: round3(b.latency_ms_avg()), latency_max_ms: round3(b.latency_ms_max) })
        .collect();
    let votes = verdict.votes.iter().map(|v| doc::Vote { vantage: v.vantage.clone(), phase: v.phase.as_str(), up: v.up, age_s: v.age_s, fresh: v.fresh }).collect();
    doc::Target {
        id: t.check.id(),
        kind,
        address: t.check.target.to_string(),
        state: t.hyst.phase.as_str(),
        up: t.hyst.phase.is_up(),
        since: rfc3339(t.since),
        has_result: t.has_result,
        last_result: t.last.as_ref().map(|l| if l.ok { "ok" } else { "fail" }),
        last_checked: t.last.as_ref().map(|l| rfc3339(l.at)),
        latency_ms: t.last.as_ref().map(|l| round3(l.latency_ms)),
        last_error: t.last.as_ref().and_then(|l| l.error.clone()),
        consecutive_ok: t.hyst.consecutive_ok,
        consecutive_fail: t.hyst.consecutive_fail,
        probes: t.probes,
        failures: t.failures,
        flips: t.flips,
        interval_s: t.check.interval.as_secs_f64(),
        timeout_s: t.check.timeout.as_secs_f64(),
        fall: t.check.fall,
        rise: t.check.rise,
        used_by: used_by.get(&t.check.id()).cloned().unwrap_or_default(),
        probed_here: t.check.probed_from(&snap.config.fleet.vantage),
        vantage_points: t.check.vantage_points.clone(),
        verdict: doc::Verdict { up: verdict.up, wavering: verdict.wavering, reason },
        votes,
        timeline: doc::Timeline { bucket_s: BUCKET_SECS, buckets },
    }
}

fn datacenters(snap: &Snapshot, overrides: &[Override], states: &[DatacenterState]) -> Vec<doc::Datacenter> {
    let cfg = &snap.config;
    cfg.geo
        .datacenters
        .iter()
        .zip(states)
        .enumerate()
        .map(|(d, (dc, st))| {
            let ov = overrides.iter().find(|o| o.target == OverrideTarget::Datacenter(dc.name.clone()));
            let services = snap
                .services
                .services
                .iter()
                .filter(|s| s.dc_status(d as DcIndex).0)
                .map(|s| {
                    let (_, up, wavering) = s.dc_status(d as DcIndex);
                    doc::DatacenterService { service: s.config.name.to_string(), up, wavering }
                })
                .collect();
            doc::Datacenter {
                name: dc.name.clone(),
                location: [dc.lat, dc.lon],
                state: st.state,
                check: cfg.health.dc_checks[d].map(|i| cfg.health.checks[i].id()),
                override_: ov.map(|o| doc::DatacenterOverride { action: o.action.as_str(), set_at: rfc3339(o.set_at), expires_at: o.expires_at.map(rfc3339) }),
                services,
            }
        })
        .collect()
}

fn zones(snap: &Snapshot) -> Vec<doc::Zone> {
    let mut zones: Vec<doc::Zone> = snap
        .loaded
        .iter()
        .map(|z| {
            // The zone as served: signed by Waypost, or as its file was signed.
            let served = snap.catalog.find(z.apex.as_wire()).filter(|s| s.apex == z.apex).unwrap_or(z);
            let d = served.dnssec.as_deref();
            let by_us = snap.signed.zones.get(&z.apex);
            doc::Zone {
                zone: z.apex.to_string(),
                serial: z.serial,
                records: z.record_count,
                file: z.source.display().to_string(),
                signed: d.is_some(),
                denial: d.map(|d| d.denial_name()),
                rrsig_earliest_expiry: d.and_then(|d| d.earliest_expiry).map(rfc3339),
                signed_by: d.map(|_| if by_us.is_some() { "waypost" } else { "file" }),
                keys: by_us
                    .map(|s| {
                        s.keys
                            .iter()
                            .map(|k| doc::ZoneKey {
                                tag: k.tag,
                                algorithm: k.algorithm,
                                role: k.role,
                                state: if k.active { "active" } else if k.published { "published" } else { "retired" },
                                file: k.file.display().to_string(),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                signatures: d.map(|d| d.signatures),
                signing_ms: by_us.map(|s| s.signing_ms),
            }
        })
        .collect();
    zones.sort_by(|a, b| a.zone.cmp(&b.zone));
    zones
}

/// The fleet section; `warnings` collects what peers disagree about.
fn fleet(snap: &Snapshot, m: &MonitorReport, now: u64) -> doc::Fleet {
    let f = &m.fleet;
    let digest = snap.config.routing_digest();
    let our_zones = snap.loaded.serials();
    let stale = f.stale_after.as_secs().max(1);
    let mut warnings: Vec<String> = Vec::new();
    let peers = m
        .peers
        .iter()
        .map(|p| {
            let doc = p.doc.as_ref();
            let age = p.last_ok.map(|t| now.saturating_sub(t));
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
            doc::Peer {
                name: p.name.clone(),
                url: p.url.clone(),
                reachable: p.reachable,
                fresh: age.is_some_and(|a| a <= stale),
                last_ok: p.last_ok.map(rfc3339),
                age_s: age,
                last_error: p.last_error.clone(),
                latency_ms: p.latency_ms,
                bytes_received: p.bytes,
                unchanged_pulls: p.unchanged,
                vantage: doc.map(|d| d.vantage.clone()),
                generation: doc.map(|d| d.generation),
                config_digest: doc.map(|d| d.config_digest.clone()),
                zones: doc.map(|d| d.zones.clone()),
                targets: doc.map(|d| d.targets.len()),
            }
        })
        .collect();
    for p in f.peers.iter().filter(|p| p.is_plain_http()) {
        warnings.push(format!("peer {} is pulled over plain HTTP ({}): its token and observations travel unencrypted", p.name, p.url));
    }
    if !f.peers.is_empty() && !m.peers.iter().any(|p| p.last_ok.is_some_and(|t| now.saturating_sub(t) <= stale)) {
        warnings.push("no peer has fresh observations: verdicts are this instance's own view".to_string());
    }
    doc::Fleet {
        vantage: f.vantage.clone(),
        quorum: format!("{:?}", f.quorum).to_lowercase(),
        interval_s: f.interval.as_secs_f64(),
        stale_after_s: f.stale_after.as_secs_f64(),
        config_digest: digest,
        peers,
        warnings,
    }
}

/// The status document.
pub fn status(c: &Control) -> doc::Status {
    let snap = c.snapshot.load();
    let m = c.monitor.report();
    let cfg = &snap.config;
    let now = now_secs();
    let used_by = used_by(&snap);
    let have_fleet = !m.fleet.peers.is_empty();
    let targets: Vec<doc::Target> = m.targets.iter().map(|t| target(c, &snap, t, &used_by, have_fleet, now)).collect();
    let states = datacenter_states(&snap, &m.overrides);
    let services: Vec<doc::Service> = snap
        .services
        .services
        .iter()
        .map(|s| doc::Service {
            name: s.config.name.to_string(),
            policy: s.config.policy.to_string(),
            ttl: s.config.ttl,
            failover_ttl: s.config.failover_ttl,
            all_down: s.config.all_down.as_str(),
            regions: regions(&snap, s),
        })
        .collect();
    let fleet = fleet(&snap, &m, now);
    let last_reload = c.last_reload().map(|r| doc::Reload { ok: r.ok, at: r.at, errors: r.errors });
    let loaded_at = humantime::format_rfc3339_seconds(snap.loaded_at).to_string();
    let problems = findings::problems(&snap, &findings::Inputs { last_reload: &last_reload, loaded_at: &loaded_at, state_error: &m.state_error, states: &states, targets: &targets, services: &services, fleet_warnings: &fleet.warnings, now });
    let notices = findings::notices(&snap, &m.overrides, &services);
    let count = |want: &[&str]| states.iter().filter(|s| want.contains(&s.state)).count();
    let summary = doc::Summary {
        ok: problems.is_empty(),
        problems: problems.len(),
        notices: notices.len(),
        datacenters: states.len(),
        up: count(&["up", "forced-up", "wavering"]),
        down: count(&["down", "forced-down"]),
        partial: count(&["partial"]),
        wavering: count(&["wavering"]),
        drained: count(&["drained"]),
        forced_down: count(&["forced-down"]),
        forced_up: count(&["forced-up"]),
        idle: count(&["idle"]),
        failed_over_regions: services.iter().flat_map(|s| &s.regions).filter(|r| r.a.failed_over || r.aaaa.failed_over).count(),
        all_down_regions: services.iter().flat_map(|s| &s.regions).filter(|r| r.a.all_down || r.aaaa.all_down).count(),
    };
    doc::Status {
        version: env!("CARGO_PKG_VERSION"),
        summary,
        problems,
        notices,
        fleet,
        now: rfc3339(now),
        generation: snap.generation,
        loaded_at,
        last_reload,
        zones: zones(&snap),
        secondaries: c.secondaries(),
        targets,
        datacenters: datacenters(&snap, &m.overrides, &states),
        services,
        overrides: m
            .overrides
            .iter()
            .map(|o| doc::Override {
                target: target_ref(&o.target),
                subject: override_subject(&snap, &o.target),
                action: o.action.as_str(),
                set_at: rfc3339(o.set_at),
                expires_at: o.expires_at.map(rfc3339),
            })
            .collect(),
        recent_changes: recent_changes(&snap, &m.recent, &m.admin, &used_by),
        audit: audit(&snap, &m.admin),
        api: api(&snap),
        state_file: doc::StateFile { path: cfg.health.state_file.as_ref().map(|p| p.display().to_string()), error: m.state_error.clone() },
        admin_enabled: cfg.health.admin_token.is_some(),
    }
}
