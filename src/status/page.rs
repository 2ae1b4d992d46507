//! The status page for people, rendered on the server from the status document
//! (`report::status`): `GET /` is `page.html` with the view already in it, so the page
//! works without JavaScript; with it, the page replaces the view every 2 s with
//! `GET /v1/status.html` (this same renderer). One renderer, no second copy in JS.
//!
//! Pictures: a world map per service (inline SVG, equirectangular, no external assets)
//! with every data centre coloured by its state and every region by the data centre it
//! is sent to now; per check a timeline of the last hour (up/down and latency).
//!
//! Every string from the document goes through [`esc`]: names in the config cannot
//! inject markup.

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
        map(&mut h, d, svc, i);
    }
    if arr(&d["services"]).is_empty() {
        h.push_str("<p class=\"empty\">No services configured.</p>");
    }
    h.push_str("</div><h2 id=\"services\">Services</h2>");
    services(&mut h, d);
    h.push_str("<h2 id=\"checks\">Check targets</h2>");
    targets(&mut h, d, now);
    h.push_str("<h2 id=\"changes\">Recent changes</h2>");
    changes(&mut h, d, now);
    h.push_str("<h2 id=\"overrides\">Overrides</h2>");
    overrides(&mut h, d, now);
    if !arr(&d["fleet"]["peers"]).is_empty() {
        h.push_str("<h2 id=\"fleet\">Fleet</h2>");
        fleet(&mut h, d, now);
    }
    h.push_str("<h2 id=\"zones\">Zones</h2>");
    zones(&mut h, d);
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

// --- The world map --------------------------------------------------------------------

/// Map size: equirectangular, 2 px per degree, latitudes 84° N to 58° S.
const MAP_W: f64 = 720.0;
const MAP_H: f64 = 284.0;
const MAP_TOP: f64 = 84.0;

fn project(lat: f64, lon: f64) -> (f64, f64) {
    ((lon + 180.0) * 2.0, (MAP_TOP - lat) * 2.0)
}

/// Closed outlines, each a ring of (lon, lat) points.
type Rings = &'static [&'static [(f64, f64)]];

/// Coarse continent outlines; good enough to colour, not to navigate.
const CONTINENTS: [(&str, Rings); 6] = [
    (
        "NA",
        &[
            &[
                (-168.0, 66.0), (-162.0, 70.0), (-140.0, 70.0), (-125.0, 72.0), (-95.0, 72.0), (-80.0, 73.0), (-62.0, 66.0),
                (-55.0, 52.0), (-66.0, 45.0), (-76.0, 35.0), (-81.0, 25.0), (-90.0, 29.0), (-97.0, 26.0), (-97.0, 19.0),
                (-88.0, 15.0), (-83.0, 9.0), (-78.0, 8.0), (-86.0, 13.0), (-92.0, 14.0), (-105.0, 20.0), (-112.0, 30.0),
                (-118.0, 34.0), (-124.0, 40.0), (-125.0, 48.0), (-135.0, 57.0), (-150.0, 60.0), (-165.0, 60.0),
            ],
            &[(-55.0, 60.0), (-43.0, 60.0), (-20.0, 70.0), (-18.0, 80.0), (-40.0, 83.0), (-62.0, 82.0), (-72.0, 78.0), (-58.0, 70.0)],
        ],
    ),
    (
        "SA",
        &[&[
            (-78.0, 8.0), (-72.0, 12.0), (-62.0, 10.0), (-51.0, 4.0), (-35.0, -5.0), (-39.0, -13.0), (-48.0, -26.0),
            (-58.0, -35.0), (-65.0, -41.0), (-68.0, -50.0), (-69.0, -55.0), (-75.0, -50.0), (-73.0, -40.0), (-71.0, -30.0),
            (-70.0, -18.0), (-76.0, -14.0), (-81.0, -5.0), (-80.0, 1.0),
        ]],
    ),
    (
        "EU",
        &[
            &[
                (-10.0, 36.0), (-9.0, 43.0), (-1.0, 46.0), (-5.0, 48.0), (2.0, 51.0), (5.0, 53.0), (8.0, 54.0), (8.0, 57.0),
                (5.0, 59.0), (5.0, 62.0), (14.0, 67.0), (20.0, 70.0), (28.0, 71.0), (40.0, 68.0), (44.0, 66.0), (60.0, 68.0),
                (66.0, 69.0), (60.0, 56.0), (55.0, 51.0), (50.0, 47.0), (47.0, 43.0), (40.0, 43.0), (37.0, 46.0), (30.0, 45.0),
                (28.0, 42.0), (26.0, 40.0), (24.0, 37.0), (22.0, 36.0), (20.0, 40.0), (16.0, 38.0), (12.0, 44.0), (8.0, 44.0),
                (3.0, 43.0), (0.0, 38.0), (-5.0, 36.0),
            ],
            &[(-10.0, 51.5), (-10.0, 54.0), (-6.0, 58.5), (-3.0, 59.0), (0.0, 53.0), (2.0, 51.0), (-5.0, 50.0)],
            &[(-24.0, 64.0), (-22.0, 66.5), (-14.0, 66.5), (-13.0, 64.5), (-19.0, 63.3)],
        ],
    ),
    (
        "AF",
        &[
            &[
                (-17.0, 21.0), (-16.0, 28.0), (-10.0, 30.0), (-6.0, 36.0), (10.0, 37.0), (11.0, 33.0), (20.0, 31.0), (25.0, 32.0),
                (32.0, 31.0), (34.0, 28.0), (38.0, 18.0), (43.0, 12.0), (51.0, 12.0), (47.0, 5.0), (40.0, -3.0), (40.0, -15.0),
                (35.0, -24.0), (32.0, -29.0), (27.0, -34.0), (20.0, -35.0), (18.0, -32.0), (12.0, -18.0), (13.0, -12.0),
                (9.0, -1.0), (9.0, 4.0), (4.0, 6.0), (-4.0, 5.0), (-8.0, 4.0), (-13.0, 8.0), (-17.0, 14.0),
            ],
            &[(44.0, -25.0), (47.0, -25.0), (50.0, -15.0), (49.0, -12.0), (44.0, -17.0)],
        ],
    ),
    (
        "AS",
        &[
            &[
                (66.0, 69.0), (70.0, 73.0), (80.0, 73.0), (100.0, 78.0), (112.0, 74.0), (130.0, 71.0), (140.0, 72.0),
                (160.0, 70.0), (180.0, 68.0), (180.0, 65.0), (170.0, 60.0), (163.0, 56.0), (156.0, 51.0), (155.0, 59.0),
                (143.0, 59.0), (135.0, 54.0), (141.0, 48.0), (130.0, 42.0), (129.0, 35.0), (126.0, 35.0), (122.0, 40.0),
                (121.0, 31.0), (117.0, 24.0), (109.0, 21.0), (106.0, 10.0), (100.0, 13.0), (103.0, 1.5), (98.0, 8.0),
                (98.0, 16.0), (92.0, 21.0), (86.0, 21.0), (80.0, 15.0), (77.0, 8.0), (73.0, 20.0), (67.0, 24.0), (57.0, 25.0),
                (56.0, 27.0), (52.0, 28.0), (48.0, 30.0), (58.0, 22.0), (52.0, 16.0), (44.0, 12.0), (39.0, 21.0), (35.0, 28.0),
                (34.0, 31.0), (36.0, 36.0), (27.0, 37.0), (26.0, 40.0), (28.0, 42.0), (30.0, 45.0), (37.0, 46.0), (40.0, 43.0),
                (47.0, 43.0), (50.0, 47.0), (55.0, 51.0), (60.0, 56.0),
            ],
            &[(130.0, 31.0), (135.0, 34.0), (140.0, 35.0), (142.0, 40.0), (141.5, 45.5), (145.5, 44.0), (141.0, 41.0), (140.0, 38.0), (136.0, 36.5), (131.0, 34.5)],
            &[(95.0, 5.5), (106.0, -6.0), (104.0, -5.5), (98.0, 2.0)],
            &[(109.0, 1.5), (117.0, 7.0), (119.0, 5.0), (116.0, -4.0), (110.0, -3.0)],
            &[(105.0, -6.0), (114.0, -8.5), (106.0, -7.5)],
            &[(120.0, 18.5), (122.5, 18.5), (126.5, 7.0), (122.0, 7.0)],
        ],
    ),
    (
        "OC",
        &[
            &[
                (114.0, -22.0), (122.0, -17.0), (130.0, -12.0), (137.0, -12.0), (142.0, -11.0), (146.0, -19.0), (153.0, -25.0),
                (151.0, -34.0), (146.0, -39.0), (140.0, -38.0), (135.0, -35.0), (129.0, -32.0), (115.0, -34.0), (113.0, -26.0),
            ],
            &[(131.0, -1.0), (141.0, -2.5), (150.0, -10.0), (143.0, -9.0), (138.0, -8.0)],
            &[(172.5, -34.5), (178.5, -37.5), (175.0, -41.5), (168.0, -46.5), (166.5, -46.0), (172.0, -40.5)],
        ],
    ),
];

/// Where continent labels go (lat, lon).
const CONTINENT_LABELS: [(&str, f64, f64); 6] = [("NA", 48.0, -102.0), ("SA", -12.0, -58.0), ("EU", 53.0, 20.0), ("AF", 6.0, 20.0), ("AS", 50.0, 95.0), ("OC", -25.0, 134.0)];

/// Rough country centroids (lat, lon) for markers of country, subdivision and city regions.
const COUNTRIES: [(&str, f64, f64); 64] = [
    ("US", 39.8, -98.6), ("CA", 56.0, -106.0), ("MX", 23.6, -102.5), ("BR", -10.0, -52.0), ("AR", -34.0, -64.0),
    ("CL", -30.0, -71.0), ("CO", 4.0, -73.0), ("PE", -9.0, -75.0), ("VE", 7.0, -66.0), ("GB", 54.0, -2.0),
    ("IE", 53.4, -8.0), ("FR", 46.6, 2.4), ("DE", 51.0, 10.4), ("NL", 52.2, 5.3), ("BE", 50.6, 4.6),
    ("LU", 49.8, 6.1), ("ES", 40.2, -3.6), ("PT", 39.6, -8.0), ("IT", 42.8, 12.5), ("CH", 46.8, 8.2),
    ("AT", 47.6, 14.1), ("PL", 52.0, 19.4), ("CZ", 49.8, 15.5), ("SE", 62.0, 15.0), ("NO", 61.0, 9.0),
    ("FI", 64.0, 26.0), ("DK", 56.0, 10.0), ("RU", 61.5, 100.0), ("UA", 49.0, 31.0), ("TR", 39.0, 35.0),
    ("GR", 39.0, 22.0), ("RO", 45.9, 25.0), ("HU", 47.1, 19.5), ("IL", 31.0, 35.0), ("SA", 24.0, 45.0),
    ("AE", 24.0, 54.0), ("EG", 26.5, 30.0), ("ZA", -29.0, 24.0), ("NG", 9.6, 8.0), ("KE", 0.2, 37.9),
    ("MA", 31.8, -7.0), ("IN", 22.0, 79.0), ("PK", 30.0, 70.0), ("BD", 23.7, 90.3), ("CN", 35.0, 103.0),
    ("JP", 36.5, 138.5), ("KR", 36.5, 127.8), ("TW", 23.7, 121.0), ("HK", 22.3, 114.2), ("SG", 1.35, 103.8),
    ("MY", 4.0, 102.0), ("TH", 15.5, 101.0), ("VN", 16.0, 106.0), ("PH", 12.5, 122.0), ("ID", -2.5, 118.0),
    ("AU", -25.0, 134.0), ("NZ", -41.5, 172.5), ("IR", 32.5, 54.0), ("IQ", 33.0, 44.0), ("KZ", 48.0, 67.0),
    ("BG", 42.7, 25.5), ("RS", 44.0, 20.9), ("IS", 64.9, -18.6), ("EE", 58.7, 25.5),
];

/// The country a country, subdivision or city region is in: "country:JP", "subdivision:US-WA", "city:GB/London".
fn country_of(region: &str) -> Option<&str> {
    let (kind, key) = region.split_once(':')?;
    match kind {
        "country" => Some(key),
        "subdivision" => key.split('-').next(),
        "city" => key.split('/').next(),
        _ => None,
    }
}

/// The fill for a region: one data centre's colour, stripes by share (weighted), or red
/// when nothing is up. Gradients are defined into `defs`.
fn region_fill(d: &Value, r: &Value, id: &str, defs: &mut String) -> (String, String) {
    let (shares, fam) = serving(r);
    let label = shares.iter().map(|(n, sh)| if shares.len() > 1 { format!("{n} {:.0}%", sh * 100.0) } else { n.clone() }).collect::<Vec<_>>().join(", ");
    if fam["all_down"] == true || shares.is_empty() {
        return ("url(#hatch)".into(), if label.is_empty() { "all down".into() } else { format!("{label} (all down)") });
    }
    if shares.len() == 1 {
        return (dc_colour(d, &shares[0].0).into(), label);
    }
    let _ = write!(defs, "<linearGradient id=\"{id}\" x1=\"0\" y1=\"0\" x2=\"1\" y2=\"0\">");
    let mut at = 0.0;
    for (n, sh) in &shares {
        let c = dc_colour(d, n);
        let _ = write!(defs, "<stop offset=\"{:.4}\" stop-color=\"{c}\"/><stop offset=\"{:.4}\" stop-color=\"{c}\"/>", at, at + sh);
        at += sh;
    }
    defs.push_str("</linearGradient>");
    (format!("url(#{id})"), label)
}

/// One service's map: continents coloured by where their clients are sent, markers for
/// country, subdivision and city regions, data centres as dots ringed by their state.
fn map(h: &mut String, d: &Value, svc: &Value, index: usize) {
    let name = s(&svc["name"]);
    let regions = arr(&svc["regions"]);
    let find = |key: &str| regions.iter().find(|r| s(&r["region"]) == key);
    let default = find("default");
    let mut defs = String::from(
        "<pattern id=\"hatch\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#ffd7d5\"/><rect width=\"3\" height=\"6\" fill=\"#c62828\"/></pattern>",
    );
    let mut body = String::new();
    for (ci, (code, rings)) in CONTINENTS.iter().enumerate() {
        let key = format!("continent:{code}");
        let (region, via) = match find(&key) {
            Some(r) => (Some(r), key.clone()),
            None => (default, "default".to_string()),
        };
        let Some(r) = region else { continue };
        let (fill, label) = region_fill(d, r, &format!("m{index}-c{ci}"), &mut defs);
        let failed = r["a"]["failed_over"] == true || r["aaaa"]["failed_over"] == true;
        let stroke = if failed { " stroke=\"#bf8700\" stroke-width=\"2\" stroke-dasharray=\"4 2\"" } else { " stroke=\"#ffffff\" stroke-width=\"0.6\"" };
        let _ = write!(body, "<g data-map-region=\"{}\" fill=\"{fill}\"{stroke}><title>{}{} → {}{}</title>", esc(&key), esc(&key), if via == "default" { " (default)" } else { "" }, esc(&label), if failed { " · failed over" } else { "" });
        for ring in *rings {
            let pts: Vec<String> = ring.iter().map(|&(lon, lat)| {
                let (x, y) = project(lat, lon);
                format!("{x:.0},{y:.0}")
            }).collect();
            let _ = write!(body, "<polygon points=\"{}\"/>", pts.join(" "));
        }
        body.push_str("</g>");
    }
    for &(code, lat, lon) in &CONTINENT_LABELS {
        let (x, y) = project(lat, lon);
        let _ = write!(body, "<text class=\"map-label\" x=\"{x:.0}\" y=\"{y:.0}\" text-anchor=\"middle\">{code}</text>");
    }
    // Markers for the more specific regions, at their country's centre.
    let mut unplaced = Vec::new();
    let mut placed_at: Vec<(f64, f64)> = Vec::new();
    for (ri, r) in regions.iter().enumerate() {
        let key = s(&r["region"]);
        let Some(country) = country_of(key) else { continue };
        let Some(&(_, lat, lon)) = COUNTRIES.iter().find(|c| c.0.eq_ignore_ascii_case(country)) else {
            unplaced.push(key.to_string());
            continue;
        };
        let (mut x, mut y) = project(lat, lon);
        while placed_at.iter().any(|&(px, py)| (px - x).abs() < 8.0 && (py - y).abs() < 8.0) {
            x += 9.0;
            y += 4.0;
        }
        placed_at.push((x, y));
        let (fill, label) = region_fill(d, r, &format!("m{index}-r{ri}"), &mut defs);
        let failed = r["a"]["failed_over"] == true || r["aaaa"]["failed_over"] == true;
        let stroke = if failed { "#bf8700\" stroke-dasharray=\"2 1" } else { "#1d2330" };
        let _ = write!(
            body,
            "<g data-map-region=\"{}\"><title>{} → {}{}</title><rect x=\"{:.0}\" y=\"{:.0}\" width=\"8\" height=\"8\" transform=\"rotate(45 {:.0} {:.0})\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"1.2\"/></g>",
            esc(key),
            esc(key),
            esc(&label),
            if failed { " · failed over" } else { "" },
            x - 4.0,
            y - 4.0,
            x,
            y
        );
    }
    for dc in arr(&d["datacenters"]) {
        let loc = arr(&dc["location"]);
        let (Some(lat), Some(lon)) = (loc.first().and_then(Value::as_f64), loc.get(1).and_then(Value::as_f64)) else { continue };
        let (x, y) = project(lat, lon);
        let (dname, state) = (s(&dc["name"]), s(&dc["state"]));
        let _ = write!(
            body,
            "<g data-map-dc=\"{0}\" data-state=\"{1}\"><title>{0}: {1}</title><circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"6.5\" fill=\"{2}\" stroke=\"{3}\" stroke-width=\"3\"/><text class=\"map-dc\" x=\"{4:.1}\" y=\"{5:.1}\">{0}</text></g>",
            esc(dname),
            esc(state),
            dc_colour(d, dname),
            state_colour(state),
            x + 9.0,
            y + 4.0
        );
    }
    let _ = write!(
        h,
        "<figure class=\"map\" data-map-service=\"{}\"><figcaption><strong>{}</strong> <span class=\"muted\">· {}</span></figcaption>\
         <svg viewBox=\"0 0 {MAP_W} {MAP_H}\" role=\"img\" aria-label=\"Where clients of {} are sent\"><defs>{}</defs>\
         <rect class=\"sea\" width=\"{MAP_W}\" height=\"{MAP_H}\"/>{}</svg><div class=\"legend\">",
        esc(name),
        esc(name),
        esc(s(&svc["policy"])),
        esc(name),
        defs.replace("id=\"hatch\"", &format!("id=\"hatch-{index}\"")),
        body.replace("url(#hatch)", &format!("url(#hatch-{index})"))
    );
    for dc in arr(&d["datacenters"]) {
        let _ = write!(h, "<span class=\"svc\">{}{} {}</span>", swatch(d, s(&dc["name"])), esc(s(&dc["name"])), badge(s(&dc["state"])));
    }
    h.push_str("<span class=\"muted\">dashed: failed over · hatched: all down · ◆ country / subdivision / city</span>");
    if !unplaced.is_empty() {
        let _ = write!(h, "<span class=\"muted\"> · not on the map: {}</span>", esc(&unplaced.join(", ")));
    }
    h.push_str("</div></figure>");
}

// --- Checks and their timelines ---------------------------------------------------------

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

fn targets(h: &mut String, d: &Value, now: u64) {
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

fn changes(h: &mut String, d: &Value, now: u64) {
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

fn overrides(h: &mut String, d: &Value, now: u64) {
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

fn fleet(h: &mut String, d: &Value, now: u64) {
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

fn zones(h: &mut String, d: &Value) {
    let rows: Vec<String> = arr(&d["zones"])
        .iter()
        .map(|z| format!("<tr data-zone=\"{0}\"><td>{0}</td><td class=\"mono\">{1}</td><td>{2}</td><td class=\"mono muted\">{3}</td></tr>", esc(s(&z["zone"])), z["serial"], z["records"], esc(s(&z["file"]))))
        .collect();
    table(h, &["Zone", "Serial", "Records", "File"], &rows, "No zones loaded.");
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
