//! The world map of one service: continents filled by the data centre their clients are
//! sent to (hatched when all down, dashed when failed over), markers for country,
//! subdivision and city regions, data centres as dots ringed by their state.

use std::fmt::Write;

use serde_json::Value;

use super::{arr, badge, dc_colour, esc, s, serving, state_colour, swatch};

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
pub(super) fn map(h: &mut String, d: &Value, svc: &Value, index: usize) {
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
