//! The page's tables: check targets (each with a timeline of the last hour), recent
//! changes, overrides, the fleet's peers and the zones.

use std::fmt::Write;

use serde_json::Value;

use super::{arr, badge, esc, s, secs, table, when};

/// The last hour of a check: a band per minute (green up, amber failures, red down) and
/// the average latency as a line below, scaled to the hour's slowest probe.
fn timeline(t: &Value, now: u64) -> String {
    const W: f64 = 240.0;
    let buckets = arr(&t["timeline"]["buckets"]);
    let bucket_s = t["timeline"]["bucket_s"].as_u64().unwrap_or(60).max(1) as f64;
    let from = now.saturating_sub(3600) as f64;
    let x_of = |start: u64| ((start as f64 - from) / 3600.0 * W).max(0.0);
    let bw = (bucket_s / 3600.0 * W).max(1.0);
    let max = buckets.iter().filter_map(|b| b["latency_max_ms"].as_f64()).fold(0.0f64, f64::max);
    let mut svg = format!("<svg class=\"timeline\" viewBox=\"0 0 {W} 34\" width=\"{W}\" height=\"34\" role=\"img\" aria-label=\"last hour\"><rect class=\"tl-bg\" width=\"{W}\" height=\"12\"/>");
    let mut pts = Vec::new();
    for b in buckets {
        let Some(start) = secs(s(&b["start"])) else { continue };
        let (probes, failures, down) = (b["probes"].as_u64().unwrap_or(0), b["failures"].as_u64().unwrap_or(0), b["down"].as_u64().unwrap_or(0));
        let colour = if probes > 0 && down == probes {
            "#c62828"
        } else if down > 0 || failures > 0 {
            "#d4a72c"
        } else {
            "#2da44e"
        };
        let x = x_of(start);
        let avg = b["latency_ms"].as_f64().unwrap_or(0.0);
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" width=\"{:.1}\" height=\"12\" fill=\"{colour}\"><title>{}: {probes} probes, {failures} failed, {down} while down; latency avg {avg:.1} ms, max {:.1} ms</title></rect>",
            (bw - 0.5).max(0.8),
            esc(s(&b["start"])),
            b["latency_max_ms"].as_f64().unwrap_or(0.0)
        );
        let y = if max > 0.0 { 33.0 - avg / max * 18.0 } else { 33.0 };
        pts.push(format!("{:.1},{y:.1}", x + bw / 2.0));
    }
    if pts.len() == 1 {
        let _ = write!(svg, "<circle cx=\"{}\" cy=\"{}\" r=\"1.8\" class=\"tl-line-dot\"/>", pts[0].split(',').next().unwrap_or("0"), pts[0].split(',').nth(1).unwrap_or("33"));
    } else if !pts.is_empty() {
        let _ = write!(svg, "<polyline class=\"tl-line\" points=\"{}\"/>", pts.join(" "));
    }
    svg.push_str("</svg>");
    format!("<div class=\"tl\">{svg}<div class=\"muted tl-cap\">last hour · latency max {max:.1} ms</div></div>")
}

pub(super) fn targets(h: &mut String, d: &Value, now: u64) {
    let fleet = !arr(&d["fleet"]["peers"]).is_empty();
    let rows: Vec<String> = arr(&d["targets"])
        .iter()
        .map(|t| {
            let (id, state) = (s(&t["id"]), s(&t["state"]));
            let title = format!("{} every {}s, timeout {}s, fall {}, rise {}", s(&t["kind"]), t["interval_s"], t["timeout_s"], t["fall"], t["rise"]);
            let last = if t["has_result"] == true {
                format!("{} {}", badge(s(&t["last_result"])), when(&t["last_checked"], now))
            } else {
                "<span class=\"muted\">no result yet</span>".into()
            };
            let latency = t["latency_ms"].as_f64().map_or("—".into(), |l| format!("{l:.1} ms"));
            let error = match t["last_error"].as_str() {
                Some(e) => format!("<td class=\"err\">{}</td>", esc(e)),
                None => "<td class=\"muted\">—</td>".into(),
            };
            let verdict = if fleet { format!("<div class=\"muted\">{}</div>", esc(s(&t["verdict"]["reason"]))) } else { String::new() };
            format!(
                "<tr data-target=\"{}\" data-state=\"{}\"><td class=\"mono\" title=\"{}\">{}</td><td>{} <span class=\"muted\">since</span> {}{}</td><td>{}</td><td>{}</td><td>{} / {}</td>{}<td>{}</td><td>{}</td></tr>",
                esc(id),
                esc(state),
                esc(&title),
                esc(id),
                badge(state),
                when(&t["since"], now),
                verdict,
                last,
                latency,
                t["consecutive_ok"],
                t["consecutive_fail"],
                error,
                esc(&arr(&t["used_by"]).iter().map(s).collect::<Vec<_>>().join("; ")),
                timeline(t, now)
            )
        })
        .collect();
    table(h, &["Check", "State", "Last result", "Latency", "OK / fail in a row", "Last error", "Decides", "Last hour"], &rows, "No health checks configured: every data centre counts as up.");
}

pub(super) fn changes(h: &mut String, d: &Value, now: u64) {
    let rows: Vec<String> = arr(&d["recent_changes"])
        .iter()
        .map(|c| {
            let admin = s(&c["kind"]) == "admin";
            let what = if admin {
                let by = if s(&c["by"]) == "expiry" { "expired" } else { "admin" };
                format!("<span class=\"badge\">{by}</span> override {} → {}{}", badge(s(&c["from"])), badge(s(&c["to"])), c["note"].as_str().map(|n| format!(" <span class=\"muted\">{}</span>", esc(n))).unwrap_or_default())
            } else {
                format!("{} → {}", badge(s(&c["from"])), badge(s(&c["to"])))
            };
            let detail = if admin { String::new() } else { format!("<div class=\"muted mono\">{}</div>", esc(s(&c["target"]))) };
            format!(
                "<tr data-change=\"{}\" data-kind=\"{}\"><td>{}</td><td><strong>{}</strong>{}</td><td>{}</td></tr>",
                esc(s(&c["target"])),
                esc(s(&c["kind"])),
                when(&c["at"], now),
                esc(s(&c["subject"])),
                detail,
                what
            )
        })
        .collect();
    table(h, &["Time", "What", "Change"], &rows, "No changes yet.");
}

pub(super) fn overrides(h: &mut String, d: &Value, now: u64) {
    let rows: Vec<String> = arr(&d["overrides"])
        .iter()
        .map(|o| {
            let expires = if o["expires_at"].is_null() { "never".to_string() } else { when(&o["expires_at"], now) };
            format!("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", esc(s(&o["subject"])), badge(s(&o["action"])), when(&o["set_at"], now), expires)
        })
        .collect();
    let empty = if d["admin_enabled"] == true { "No overrides." } else { "No overrides (admin API disabled: no [health] admin-token)." };
    table(h, &["Target", "Action", "Set", "Expires"], &rows, empty);
}

pub(super) fn fleet(h: &mut String, d: &Value, now: u64) {
    let f = &d["fleet"];
    let _ = write!(h, "<p class=\"muted\">vantage {} · quorum {} · pull every {}s · stale after {}s</p>", esc(s(&f["vantage"])), esc(s(&f["quorum"])), f["interval_s"], f["stale_after_s"]);
    let rows: Vec<String> = arr(&f["peers"])
        .iter()
        .map(|p| {
            let st = if p["reachable"] != true { "down" } else if p["fresh"] == true { "up" } else { "wavering" };
            let err = p["last_error"].as_str().map_or("—".into(), esc);
            format!(
                "<tr data-peer=\"{}\"><td>{}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"err\">{}</td></tr>",
                esc(s(&p["name"])),
                esc(s(&p["name"])),
                esc(s(&p["url"])),
                badge(if st == "wavering" { "stale" } else { st }),
                when(&p["last_ok"], now),
                p["generation"],
                err
            )
        })
        .collect();
    table(h, &["Peer", "URL", "State", "Last pull", "Generation", "Last error"], &rows, "No peers.");
}

pub(super) fn zones(h: &mut String, d: &Value) {
    let rows: Vec<String> = arr(&d["zones"])
        .iter()
        .map(|z| format!("<tr data-zone=\"{0}\"><td>{0}</td><td class=\"mono\">{1}</td><td>{2}</td><td class=\"mono muted\">{3}</td></tr>", esc(s(&z["zone"])), z["serial"], z["records"], esc(s(&z["file"]))))
        .collect();
    table(h, &["Zone", "Serial", "Records", "File"], &rows, "No zones loaded.");
}
