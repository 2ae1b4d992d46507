//! The status page for people, rendered on the server from the status document as
//! `/v1/status` sends it (its JSON, so the page shows exactly what the API says):
//! `GET /` is `page.html` with the view already in it, so the page works without
//! JavaScript; with it, the page replaces the view every 2 s with `GET /v1/status.html`
//! (this same renderer). One renderer, no second copy in JS.
//!
//! Here: the banner, summary, data centres and services; `map` draws a world map per
//! service (inline SVG, equirectangular, no external assets) with every data centre
//! coloured by its state and every region by the data centre it is sent to now;
//! `tables` the checks (with a timeline of the last hour), changes, overrides, fleet and
//! zones.
//!
//! Every string from the document goes through [`esc`]: names in the config cannot
//! inject markup.

mod map;
mod tables;

use std::fmt::Write;

use serde_json::Value;

/// The page shell; `<!--VIEW-->` is replaced with the rendered view.
const SHELL: &str = include_str!("page.html");

/// Colours that tell data centres apart on the maps (by config index).
const PALETTE: [&str; 8] = ["#2f6feb", "#a15bd8", "#e0761c", "#12a39a", "#d6367f", "#8c6a2e", "#0b9ec9", "#5d6b7a"];

/// The whole page with `doc` rendered in.
pub fn page(doc: &Value) -> String {
    SHELL.replacen("<!--VIEW-->", &view(doc), 1)
}

/// Escapes text for HTML text and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn arr(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

fn secs(iso: &str) -> Option<u64> {
    humantime::parse_rfc3339(iso).ok()?.duration_since(std::time::UNIX_EPOCH).ok().map(|d| d.as_secs())
}

fn age(d: u64) -> String {
    match d {
        0..60 => format!("{d}s"),
        60..3600 => format!("{}m", d / 60),
        3600..86400 => format!("{}h", d / 3600),
        _ => format!("{}d", d / 86400),
    }
}

/// "21:30:00 (5s ago)", with the full time as the tooltip.
fn when(iso: &Value, now: u64) -> String {
    let Some(text) = iso.as_str() else { return "<span class=\"muted\">—</span>".into() };
    let clock = text.split('T').nth(1).unwrap_or(text).trim_end_matches('Z');
    let rel = match secs(text) {
        Some(t) if t > now => format!(" (in {})", age(t - now)),
        Some(t) => format!(" ({} ago)", age(now - t)),
        None => String::new(),
    };
    format!("<span title=\"{}\">{}{}</span>", esc(text), esc(clock), rel)
}

/// Colour class for any state word (data centre or check target).
fn tone(state: &str) -> &'static str {
    match state {
        "up" | "ok" => "s-up",
        "down" | "forced-down" | "fail" => "s-down",
        "partial" | "wavering" | "failing" | "recovering" => "s-warn",
        _ => "s-grey", // drained, forced-up, idle, none
    }
}

fn badge(state: &str) -> String {
    format!("<span class=\"badge {}\">{}</span>", tone(state), esc(state))
}

/// The state colour of a data centre on the map (its dot's ring).
fn state_colour(state: &str) -> &'static str {
    match tone(state) {
        "s-up" => "#1a7f37",
        "s-down" => "#c62828",
        "s-warn" => "#bf8700",
        _ => "#8c959f",
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The view: meta line, banner, summary and every section.
pub fn view(d: &Value) -> String {
    let now = secs(s(&d["now"])).unwrap_or(0);
    let sum = &d["summary"];
    let problems = arr(&d["problems"]);
    let n = |k: &str| sum[k].as_u64().unwrap_or(0);
    let mut h = String::new();
    let title = if problems.is_empty() { "Waypost status".to_string() } else { format!("({}) Waypost status", plural(problems.len() as u64, "problem", "problems")) };
    let _ = write!(h, "<div id=\"view\" data-title=\"{}\" data-ok=\"{}\">", esc(&title), problems.is_empty());

    let _ = write!(h, "<p class=\"meta\" id=\"meta\">version {} · generation {} · loaded {}", esc(s(&d["version"])), d["generation"], when(&d["loaded_at"], now));
    if let Some(r) = d["last_reload"].as_object() {
        let ok = r.get("ok").and_then(Value::as_bool).unwrap_or(false);
        let _ = write!(h, " · last reload {} {}", if ok { "ok" } else { "<strong class=\"err\">failed</strong>" }, when(r.get("at").unwrap_or(&Value::Null), now));
    }
    let _ = write!(h, " · updated {}</p>", when(&d["now"], now));

    // The headline and banner: "all is well" only without problems or notices; red with
    // every problem; amber with the notices (overrides, failovers) alone.
    let dcs = n("datacenters");
    let notices = arr(&d["notices"]);
    let items = |h: &mut String, list: &[Value], attr: &str| {
        for p in list {
            let _ = write!(h, "<li {attr}=\"{}\">{}", esc(s(&p["kind"])), esc(s(&p["text"])));
            let details = arr(&p["details"]);
            if !details.is_empty() {
                h.push_str("<ul class=\"details\">");
                for x in details {
                    let _ = write!(h, "<li class=\"mono\">{}</li>", esc(s(x)));
                }
                h.push_str("</ul>");
            }
            h.push_str("</li>");
        }
    };
    if problems.is_empty() && notices.is_empty() {
        let _ = write!(h, "<div id=\"banner\" class=\"banner ok\" data-problems=\"0\"><strong>All is well:</strong> {} answering, no problems.</div>", plural(dcs, "data centre", "data centres"));
    } else if problems.is_empty() {
        let _ = write!(h, "<div id=\"banner\" class=\"banner note\" data-problems=\"0\"><strong>No problems; {}:</strong><ul>", plural(notices.len() as u64, "thing to know", "things to know"));
        items(&mut h, notices, "data-notice");
        h.push_str("</ul></div>");
    } else {
        let _ = write!(h, "<div id=\"banner\" class=\"banner bad\" role=\"alert\" data-problems=\"{}\"><strong>{}</strong><ul>", problems.len(), plural(problems.len() as u64, "problem", "problems"));
        items(&mut h, problems, "data-problem");
        if !notices.is_empty() {
            h.push_str("</ul><div class=\"also\">Also:</div><ul class=\"notices\">");
            items(&mut h, notices, "data-notice");
        }
        h.push_str("</ul></div>");
    }
    // Counts: every data centre is in exactly one of these.
    h.push_str("<p id=\"summary\">");
    let mut parts = Vec::new();
    for (key, label, state) in [
        ("up", "up", "up"),
        ("partial", "partly down", "partial"),
        ("down", "down", "down"),
        ("drained", "drained", "drained"),
        ("idle", "idle", "idle"),
    ] {
        let v = n(key);
        if v > 0 || key == "up" || key == "down" {
            let class = if v > 0 { tone(state) } else { "s-none" };
            parts.push(format!("<span class=\"count {class}\" data-count=\"{key}\">{v} {label}</span>"));
        }
    }
    let _ = write!(h, "{} data centres: {}", dcs, parts.join(" · "));
    if n("forced_down") + n("forced_up") > 0 {
        let _ = write!(h, " <span class=\"muted\">(forced: {} down, {} up)</span>", n("forced_down"), n("forced_up"));
    }
    if n("failed_over_regions") > 0 {
        let _ = write!(h, " · {} failed over", plural(n("failed_over_regions"), "service region", "service regions"));
    }
    h.push_str("</p>");

    h.push_str("<h2 id=\"datacenters\">Data centres</h2>");
    datacenters(&mut h, d, now);
    h.push_str("<h2 id=\"map\">Where clients are sent</h2><div class=\"maps\">");
    for (i, svc) in arr(&d["services"]).iter().enumerate() {
        map::map(&mut h, d, svc, i);
    }
    if arr(&d["services"]).is_empty() {
        h.push_str("<p class=\"empty\">No services configured.</p>");
    }
    h.push_str("</div><h2 id=\"services\">Services</h2>");
    services(&mut h, d);
    h.push_str("<h2 id=\"checks\">Check targets</h2>");
    tables::targets(&mut h, d, now);
    h.push_str("<h2 id=\"changes\">Recent changes</h2>");
    tables::changes(&mut h, d, now);
    h.push_str("<h2 id=\"overrides\">Overrides</h2>");
    tables::overrides(&mut h, d, now);
    if !arr(&d["fleet"]["peers"]).is_empty() {
        h.push_str("<h2 id=\"fleet\">Fleet</h2>");
        tables::fleet(&mut h, d, now);
    }
    h.push_str("<h2 id=\"zones\">Zones</h2>");
    tables::zones(&mut h, d);
    h.push_str("</div>");
    h
}

fn table(h: &mut String, headers: &[&str], rows: &[String], empty: &str) {
    if rows.is_empty() {
        let _ = write!(h, "<p class=\"empty\">{}</p>", esc(empty));
        return;
    }
    h.push_str("<div class=\"scroll\"><table><thead><tr>");
    for x in headers {
        let _ = write!(h, "<th>{}</th>", esc(x));
    }
    h.push_str("</tr></thead><tbody>");
    for r in rows {
        h.push_str(r);
    }
    h.push_str("</tbody></table></div>");
}

fn dc_colour(d: &Value, name: &str) -> &'static str {
    let i = arr(&d["datacenters"]).iter().position(|x| s(&x["name"]) == name).unwrap_or(PALETTE.len() - 1);
    PALETTE[i % PALETTE.len()]
}

fn swatch(d: &Value, name: &str) -> String {
    format!("<span class=\"swatch\" style=\"background:{}\"></span>", dc_colour(d, name))
}

fn datacenters(h: &mut String, d: &Value, now: u64) {
    h.push_str("<div class=\"cards\">");
    for dc in arr(&d["datacenters"]) {
        let (name, state) = (s(&dc["name"]), s(&dc["state"]));
        let loc: Vec<String> = arr(&dc["location"]).iter().map(|x| format!("{:.2}", x.as_f64().unwrap_or(0.0))).collect();
        let _ = write!(
            h,
            "<section class=\"card {}\" data-dc=\"{}\" data-state=\"{}\"><div>{}<span class=\"name\">{}</span>{}</div><div class=\"muted\">Location {}</div>",
            tone(state),
            esc(name),
            esc(state),
            swatch(d, name),
            esc(name),
            badge(state),
            esc(&loc.join(", "))
        );
        match dc["check"].as_str() {
            Some(c) => {
                let _ = write!(h, "<div class=\"muted mono\">check: {}</div>", esc(c));
            }
            None => h.push_str("<div class=\"muted\">no data-centre check</div>"),
        }
        h.push_str("<div>");
        for svc in arr(&dc["services"]) {
            let st = match (svc["up"].as_bool(), svc["wavering"].as_bool()) {
                (Some(true), Some(true)) => "wavering",
                (Some(true), _) => "up",
                _ => "down",
            };
            let _ = write!(h, "<span class=\"svc\" title=\"{0}: {1}\"><span class=\"dot {2}\"></span>{0}</span>", esc(s(&svc["service"])), st, tone(st));
        }
        h.push_str("</div>");
        if let Some(ov) = dc["override"].as_object() {
            let _ = write!(h, "<div class=\"override\"><strong>Override: {}</strong> set {}", esc(ov.get("action").and_then(Value::as_str).unwrap_or("")), when(ov.get("set_at").unwrap_or(&Value::Null), now));
            match ov.get("expires_at").filter(|x| !x.is_null()) {
                Some(x) => {
                    let _ = write!(h, ", expires {}", when(x, now));
                }
                None => h.push_str(", no expiry"),
            }
            h.push_str("</div>");
        }
        h.push_str("</section>");
    }
    h.push_str("</div>");
}

/// The data centres a region is sent to now, with their shares (1.0 unless weighted),
/// the A answer unless it has none.
fn serving(r: &Value) -> (Vec<(String, f64)>, &Value) {
    let fam = if arr(&r["a"]["datacenters"]).is_empty() && !arr(&r["aaaa"]["datacenters"]).is_empty() { &r["aaaa"] } else { &r["a"] };
    if let Some(shares) = fam["shares"].as_array().filter(|x| !x.is_empty()) {
        let v = shares.iter().filter_map(|x| Some((x["datacenter"].as_str()?.to_string(), x["share"].as_f64().unwrap_or(0.0)))).collect();
        return (v, fam);
    }
    let names: Vec<&str> = arr(&fam["datacenters"]).iter().filter_map(Value::as_str).collect();
    // The most preferred serving data centre (the serving list comes in config order).
    let first = arr(&r["order"]).iter().filter_map(Value::as_str).find(|n| names.contains(n)).or(names.first().copied());
    (first.map(|f| vec![(f.to_string(), 1.0)]).unwrap_or_default(), fam)
}

fn services(h: &mut String, d: &Value) {
    for svc in arr(&d["services"]) {
        let name = s(&svc["name"]);
        let weighted = s(&svc["policy"]) == "weighted";
        let _ = write!(
            h,
            "<div class=\"service\"><h3>{} <span class=\"muted\">· {} · TTL {} (failover {}) · all down: {}</span></h3>",
            esc(name),
            esc(s(&svc["policy"])),
            svc["ttl"],
            svc["failover_ttl"],
            esc(s(&svc["all_down"]))
        );
        let rows: Vec<String> = arr(&svc["regions"])
            .iter()
            .map(|r| {
                let (a, aaaa) = (&r["a"], &r["aaaa"]);
                let (shares, _) = serving(r);
                let first = shares.iter().max_by(|x, y| x.1.total_cmp(&y.1)).map(|x| x.0.clone()).unwrap_or_default();
                let failed = a["failed_over"] == true || aaaa["failed_over"] == true;
                let all_down = a["all_down"] == true || aaaa["all_down"] == true;
                let class = if all_down { " class=\"all-down\"" } else if failed { " class=\"failed-over\"" } else { "" };
                let order: Vec<String> = arr(&r["order"]).iter().map(|x| esc(s(x))).collect();
                let serving_cell = if weighted {
                    shares.iter().map(|(n, sh)| format!("{}<strong>{}</strong> {:.0}%", swatch(d, n), esc(n), sh * 100.0)).collect::<Vec<_>>().join(", ")
                } else {
                    let names: Vec<String> = arr(&a["datacenters"]).iter().chain(arr(&aaaa["datacenters"])).filter_map(Value::as_str).map(String::from).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
                    if names.is_empty() { "—".into() } else { names.iter().map(|n| format!("{}<strong>{}</strong>", swatch(d, n), esc(n))).collect::<Vec<_>>().join(", ") }
                };
                let answer = |x: &Value| {
                    if weighted {
                        let parts: Vec<String> = arr(&x["shares"])
                            .iter()
                            .map(|sh| {
                                let recs: Vec<&str> = arr(&sh["answer"]).iter().map(s).collect();
                                let recs = if recs.is_empty() { "NODATA".to_string() } else { recs.join(", ") };
                                format!("{} <span class=\"muted\">{:.0}%</span>", esc(&recs), sh["share"].as_f64().unwrap_or(0.0) * 100.0)
                            })
                            .collect();
                        if parts.is_empty() { "<td class=\"mono muted\">—</td>".to_string() } else { format!("<td class=\"mono\">{}</td>", parts.join("<br>")) }
                    } else {
                        let v: Vec<&str> = arr(&x["answer"]).iter().map(s).collect();
                        if v.is_empty() { "<td class=\"mono muted\">—</td>".to_string() } else { format!("<td class=\"mono\">{}</td>", esc(&v.join(", "))) }
                    }
                };
                let ttl = if a["ttl"] == aaaa["ttl"] || aaaa["ttl"].is_null() { a["ttl"].to_string() } else { format!("{} / {}", a["ttl"], aaaa["ttl"]) };
                let mut notes = String::new();
                if all_down {
                    notes.push_str("<span class=\"badge s-down\">all down</span> ");
                }
                if failed {
                    notes.push_str("<span class=\"badge s-warn\">failed over</span> ");
                }
                if r["fenced"] == true {
                    notes.push_str("<span class=\"badge\">fenced</span>");
                }
                format!(
                    "<tr{class} data-service=\"{}\" data-region=\"{}\" data-dc=\"{}\"><td>{}</td><td class=\"muted\">{}</td><td>{}</td>{}{}<td>{}</td><td>{}</td></tr>",
                    esc(name),
                    esc(s(&r["region"])),
                    esc(&first),
                    esc(s(&r["region"])),
                    order.join(" › "),
                    serving_cell,
                    answer(a),
                    answer(aaaa),
                    esc(&ttl),
                    notes
                )
            })
            .collect();
        let serving_head = if weighted { "Share" } else { "Serving" };
        table(h, &["Region", "Preference", serving_head, "A", "AAAA", "TTL", ""], &rows, "No regions.");
        h.push_str("</div>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_from_the_config_cannot_inject_markup() {
        assert_eq!(esc("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        let doc = json!({
            "now": "2026-12-01T21:30:00Z", "summary": {"datacenters": 1, "up": 1},
            "datacenters": [{"name": "<script>x</script>", "state": "up", "location": [1.0, 2.0], "services": []}],
            "problems": [{"kind": "reload", "text": "<b>bad</b>", "details": ["<i>x</i>"]}],
        });
        let v = view(&doc);
        assert!(!v.contains("<script>") && !v.contains("<b>bad") && !v.contains("<i>x"), "{v}");
        assert!(v.contains("&lt;script&gt;x&lt;/script&gt;"));
    }

    #[test]
    fn the_headline_is_fine_only_without_problems() {
        let ok = view(&json!({"now": "2026-12-01T21:30:00Z", "summary": {"datacenters": 2, "up": 2}, "problems": []}));
        assert!(ok.contains("class=\"banner ok\"") && ok.contains("All is well"));
        let bad = view(&json!({"now": "2026-12-01T21:30:00Z", "summary": {"datacenters": 2, "up": 2}, "problems": [{"kind": "reload", "text": "Reload failed", "details": []}]}));
        assert!(bad.contains("class=\"banner bad\"") && !bad.contains("All is well") && bad.contains("data-problem=\"reload\""));
    }

    #[test]
    fn relative_times_are_from_the_documents_now() {
        let now = secs("2026-12-01T21:30:00Z").unwrap();
        assert_eq!(when(&json!("2026-12-01T21:29:55Z"), now), "<span title=\"2026-12-01T21:29:55Z\">21:29:55 (5s ago)</span>");
        assert!(when(&json!("2026-12-01T21:40:00Z"), now).contains("(in 10m)"));
    }
}
