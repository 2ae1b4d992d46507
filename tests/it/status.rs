//! The HTTP API around status: who may reload, errors as JSON, one time format, the
//! status document's counts, shares, recent changes and timelines, the page rendered on
//! the server, and the data-centre gauges.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;

use crate::geo::{example_config, start_with};
use crate::support::{mode, per_address_setup, status, wait_for_status, Backend, TempDir};

const TOKEN: &str = "s3cret";

/// One HTTP/1.1 request; returns (status, content type, body).
fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String, String) {
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    write!(c, "{method} {path} HTTP/1.1\r\nHost: t\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let code = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let ctype = head.lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("content-type: ").map(String::from)).unwrap_or_default();
    (code, ctype, body.to_string())
}

const BEARER: (&str, &str) = ("Authorization", "Bearer s3cret");
const JSON: (&str, &str) = ("Content-Type", "application/json");

/// The example config with the admin token and, per given data centre, a fast HTTP check.
fn config(token: bool, checks: &[(&str, &Backend)]) -> String {
    let mut c = example_config(&[]);
    c += "\n[health]\ninterval = \"100ms\"\ntimeout = \"300ms\"\nfall = 2\nrise = 2\n";
    if token {
        c += &format!("admin-token = \"{TOKEN}\"\n");
    }
    for (dc, b) in checks {
        c += &format!("[datacenters.{dc}.check]\ntype = \"http\"\naddress = \"127.0.0.1\"\nport = {}\npath = \"/health\"\n", b.addr.port());
    }
    c
}

fn error_of(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    v["error"].as_str().unwrap_or_else(|| panic!("no error field: {body}")).to_string()
}

#[test]
fn reload_needs_the_admin_token_when_one_is_configured() {
    let dir = TempDir::new("reload-token");
    let s = start_with(&dir, &config(true, &[]));
    for headers in [&[][..], &[("Authorization", "Bearer wrong")][..], &[("Authorization", "s3cret")][..]] {
        let (code, ctype, body) = request(s.http, "POST", "/v1/reload", headers, "");
        assert_eq!(code, 401, "{headers:?}: {body}");
        assert!(ctype.starts_with("application/json") && error_of(&body).contains("bearer token"), "{body}");
    }
    assert_eq!(status(s.http)["generation"], 1, "no reload happened");
    let (code, _, body) = request(s.http, "POST", "/v1/reload", &[BEARER], "");
    assert_eq!(code, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["ok"], true);
    assert_eq!(status(s.http)["generation"], 2);
    drop(s);

    // Without a token (README: "admin-token … without it admin endpoints are disabled"),
    // reload stays open, as SIGHUP is: it only reads the files already there.
    let dir = TempDir::new("reload-open");
    let s = start_with(&dir, &config(false, &[]));
    assert_eq!(request(s.http, "POST", "/v1/reload", &[], "").0, 200);
    assert_eq!(request(s.http, "PUT", "/v1/admin/datacenters/ams", &[JSON], r#"{"action":"drain"}"#).0, 403, "admin stays disabled");
}

#[test]
fn api_errors_are_json() {
    let dir = TempDir::new("api-errors");
    let s = start_with(&dir, &config(true, &[]));
    let put = "/v1/admin/datacenters/ams";
    for (what, method, path, headers, body, want) in [
        ("malformed JSON", "PUT", put, &[BEARER, JSON][..], "{\"action\":", 400),
        ("no content type", "PUT", put, &[BEARER][..], r#"{"action":"drain"}"#, 415),
        ("unknown action", "PUT", put, &[BEARER, JSON][..], r#"{"action":"explode"}"#, 422),
        ("bad expiry", "PUT", put, &[BEARER, JSON][..], r#"{"action":"drain","expires_in":"soon"}"#, 400),
        ("body too large", "PUT", put, &[BEARER, JSON][..], &format!("{{\"action\":\"drain\",\"x\":\"{}\"}}", "x".repeat(128 * 1024)), 413),
        ("unknown data centre", "PUT", "/v1/admin/datacenters/nope", &[BEARER, JSON][..], r#"{"action":"drain"}"#, 404),
        ("not an address", "PUT", "/v1/admin/addresses/nope", &[BEARER, JSON][..], r#"{"action":"drain"}"#, 400),
        ("lookup without parameters", "GET", "/v1/lookup", &[][..], "", 400),
        ("lookup of a bad client", "GET", "/v1/lookup?client=nope&name=web.example.com.", &[][..], "", 400),
        ("unknown route", "GET", "/v1/nothing-here", &[][..], "", 404),
        ("wrong method", "GET", "/v1/reload", &[][..], "", 405),
        // The caller is checked before the body is looked at.
        ("malformed JSON without the token", "PUT", put, &[JSON][..], "{\"action\":", 401),
    ] {
        let (code, ctype, text) = request(s.http, method, path, headers, body);
        assert_eq!(code, want, "{what}: {text}");
        assert!(ctype.starts_with("application/json"), "{what}: content type {ctype:?}");
        assert!(!error_of(&text).is_empty(), "{what}");
    }
}

/// Every string under a time-named key is RFC 3339 UTC with seconds.
fn check_times(v: &Value, path: &str, seen: &mut usize) {
    let is_time_key = |k: &str| ["at", "since", "now", "start", "last_checked", "last_ok"].contains(&k) || k.ends_with("_at");
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if is_time_key(k) {
                    if let Some(t) = x.as_str() {
                        let b = t.as_bytes();
                        let shape = t.len() == 20 && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':' && b[16] == b':' && b[19] == b'Z';
                        assert!(shape && humantime::parse_rfc3339(t).is_ok(), "{path}.{k} = {t:?} is not like 2026-12-01T21:30:00Z");
                        *seen += 1;
                    } else {
                        assert!(x.is_null(), "{path}.{k} = {x} is neither a time string nor null");
                    }
                }
                check_times(x, &format!("{path}.{k}"), seen);
            }
        }
        Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| check_times(x, &format!("{path}[{i}]"), seen)),
        _ => {}
    }
}

#[test]
fn every_time_in_status_and_api_answers_has_one_format() {
    let b = Backend::start();
    let dir = TempDir::new("times");
    let s = start_with(&dir, &config(true, &[("ams", &b)]));
    let (code, _, body) = request(s.http, "PUT", "/v1/admin/datacenters/sin", &[BEARER, JSON], r#"{"action":"drain","expires_in":"10m"}"#);
    assert_eq!(code, 200, "{body}");
    let mut seen = 0;
    check_times(&serde_json::from_str(&body).unwrap(), "put", &mut seen);
    assert_eq!(seen, 2, "set_at and expires_at in the answer: {body}");
    std::fs::write(dir.0.join("waypost.toml"), "version = 1\n[server]\nbogus = 1\n").unwrap();
    assert_eq!(request(s.http, "POST", "/v1/reload", &[BEARER], "").0, 422);
    let st = wait_for_status(s.http, "a probe", |st| st["targets"][0]["has_result"] == true && !st["targets"][0]["timeline"]["buckets"].as_array().unwrap().is_empty());
    let mut seen = 0;
    check_times(&st, "status", &mut seen);
    // now, loaded_at, last_reload.at, since, last_checked, the bucket start, override set_at
    // and expires_at (twice: overrides[] and the data centre), and the admin change.
    assert!(seen >= 10, "only {seen} times checked");
}

#[test]
fn status_counts_drains_and_gives_weighted_shares() {
    let dir = TempDir::new("shares");
    let s = start_with(&dir, &config(true, &[]));
    let shares = |st: &Value, region: &str| -> Vec<(String, f64)> {
        let cdn = st["services"].as_array().unwrap().iter().find(|x| x["name"] == "cdn.example.com.").unwrap();
        let r = cdn["regions"].as_array().unwrap().iter().find(|r| r["region"] == region).unwrap();
        let mut v: Vec<(String, f64)> = r["a"]["shares"].as_array().unwrap().iter().map(|x| (x["datacenter"].as_str().unwrap().to_string(), x["share"].as_f64().unwrap())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    let st = status(s.http);
    // weights = { ams = 3, iad = 1, sin = 1 }
    assert_eq!(shares(&st, "default"), [("ams".into(), 0.6), ("iad".into(), 0.2), ("sin".into(), 0.2)]);
    assert_eq!(st["summary"]["up"], 3);
    assert_eq!(st["summary"]["ok"], true);
    assert_eq!(st["problems"], serde_json::json!([]));

    assert_eq!(request(s.http, "PUT", "/v1/admin/datacenters/ams", &[BEARER, JSON], r#"{"action":"drain"}"#).0, 200);
    // The data centre's state follows the override at once, answers at the next publish.
    let st = wait_for_status(s.http, "ams drained in answers", |st| st["datacenters"][0]["state"] == "drained" && shares(st, "default").len() == 2);
    let sum = &st["summary"];
    assert_eq!((sum["datacenters"].as_u64(), sum["up"].as_u64(), sum["drained"].as_u64(), sum["down"].as_u64()), (Some(3), Some(2), Some(1), Some(0)), "{sum}");
    assert_eq!(shares(&st, "default"), [("iad".into(), 0.5), ("sin".into(), 0.5)]);
    assert!(st["notices"].as_array().unwrap().iter().any(|n| n["kind"] == "override" && n["text"].as_str().unwrap().contains("datacenter ams drained")), "{}", st["notices"]);
    assert_eq!(st["problems"], serde_json::json!([]), "a drain is deliberate, not a problem");
    drop(s);

    // Weights per address: a data centre's share is the sum of its addresses'.
    let weights = "weights = { \"192.0.2.12\" = 2, \"192.0.2.13\" = 1, \"198.51.100.12\" = 1 }";
    let dir = TempDir::new("shares-addr");
    let s = start_with(&dir, &config(true, &[]).replace("weights = { ams = 3, iad = 1, sin = 1 }", weights));
    let st = status(s.http);
    assert_eq!(shares(&st, "default"), [("ams".into(), 0.75), ("iad".into(), 0.25)], "sin weighs 0");
    let cdn = st["services"].as_array().unwrap().iter().find(|x| x["name"] == "cdn.example.com.").unwrap();
    let ams = cdn["regions"][0]["a"]["shares"].as_array().unwrap().iter().find(|x| x["datacenter"] == "ams").unwrap().clone();
    let mut answer: Vec<&str> = ams["answer"].as_array().unwrap().iter().map(|x| x.as_str().unwrap()).collect();
    answer.sort();
    assert_eq!(answer, ["192.0.2.12", "192.0.2.13"]);
}

#[test]
fn recent_changes_name_the_data_centre_and_list_admin_actions() {
    let b = Backend::start();
    let dir = TempDir::new("changes");
    let s = start_with(&dir, &config(true, &[("ams", &b)]));
    wait_for_status(s.http, "first result", |st| st["targets"][0]["has_result"] == true);
    b.set(mode::ERROR_500);
    let st = wait_for_status(s.http, "ams down", |st| st["datacenters"][0]["state"] == "down");
    let health = st["recent_changes"].as_array().unwrap().iter().find(|c| c["kind"] == "health" && c["to"] == "down").unwrap().clone();
    assert_eq!(health["subject"], "datacenter ams");
    assert!(health["target"].as_str().unwrap().starts_with("http://127.0.0.1:"), "{health}");
    let problem = st["problems"].as_array().unwrap().iter().find(|p| p["kind"] == "datacenter").unwrap().clone();
    assert_eq!(problem["text"], "Data centre ams is down");
    assert!(problem["details"][0].as_str().unwrap().ends_with("is down: status 500"), "{problem}");

    assert_eq!(request(s.http, "PUT", "/v1/admin/datacenters/sin", &[BEARER, JSON], r#"{"action":"drain","expires_in":"1s"}"#).0, 200);
    assert_eq!(request(s.http, "PUT", "/v1/admin/addresses/198.51.100.10", &[BEARER, JSON], r#"{"action":"down"}"#).0, 200);
    assert_eq!(request(s.http, "DELETE", "/v1/admin/addresses/198.51.100.10", &[BEARER], "").0, 200);
    let st = wait_for_status(s.http, "the drain to expire", |st| st["recent_changes"].as_array().unwrap().iter().any(|c| c["by"] == "expiry"));
    let admin: Vec<(String, String, String, String)> = st["recent_changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "admin")
        .map(|c| [&c["subject"], &c["from"], &c["to"], &c["by"]].map(|x| x.as_str().unwrap().to_string()).into())
        .collect();
    let want = |a: &str, b: &str, c: &str, d: &str| (a.to_string(), b.to_string(), c.to_string(), d.to_string());
    assert_eq!(
        admin,
        [
            want("datacenter sin", "drain", "none", "expiry"),
            want("address 198.51.100.10 (web.example.com. @ iad)", "down", "none", "admin"),
            want("address 198.51.100.10 (web.example.com. @ iad)", "none", "down", "admin"),
            want("datacenter sin", "none", "drain", "admin"),
        ],
        "newest first"
    );
}

#[test]
fn each_check_has_a_timeline_of_the_last_hour() {
    let b = Backend::start();
    let dir = TempDir::new("timeline");
    let s = start_with(&dir, &config(false, &[("ams", &b)]));
    wait_for_status(s.http, "a few probes", |st| st["targets"][0]["probes"].as_u64() >= Some(4));
    b.set(mode::ERROR_500);
    let st = wait_for_status(s.http, "ams down", |st| st["targets"][0]["state"] == "down");
    let t = &st["targets"][0];
    assert_eq!(t["timeline"]["bucket_s"], 60);
    let buckets = t["timeline"]["buckets"].as_array().unwrap();
    assert!(!buckets.is_empty() && buckets.len() <= 60);
    let sum = |k: &str| buckets.iter().map(|b| b[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!(sum("probes"), t["probes"].as_u64().unwrap(), "every probe is in the timeline");
    assert_eq!(sum("failures"), t["failures"].as_u64().unwrap());
    assert!(sum("down") >= 1, "the probe that took it down counts as down");
    assert!(buckets.iter().all(|b| b["latency_max_ms"].as_f64().unwrap() >= b["latency_ms"].as_f64().unwrap()));
    // A single instance has no fleet: nothing says "own view only".
    assert!(!t["verdict"]["reason"].as_str().unwrap().contains("own view"), "{}", t["verdict"]);
    assert_eq!(st["fleet"]["warnings"], serde_json::json!([]));
}

#[test]
fn the_first_view_is_rendered_on_the_server() {
    let b = Backend::start();
    let dir = TempDir::new("server-render");
    let s = start_with(&dir, &config(true, &[("ams", &b)]));
    assert_eq!(request(s.http, "PUT", "/v1/admin/datacenters/sin", &[BEARER, JSON], r#"{"action":"drain"}"#).0, 200);
    b.set(mode::ERROR_500);
    wait_for_status(s.http, "ams down", |st| st["datacenters"][0]["state"] == "down" && st["datacenters"][2]["state"] == "drained");
    let (code, ctype, page) = request(s.http, "GET", "/", &[], "");
    assert_eq!(code, 200);
    assert!(ctype.starts_with("text/html"));
    // Without running any script: banner, summary, cards, maps and the check's timeline.
    assert!(page.contains("<div id=\"banner\" class=\"banner bad\""), "{page}");
    assert!(page.contains("data-problem=\"datacenter\">Data centre ams is down"), "{page}");
    assert!(page.contains("data-count=\"drained\">1 drained</span>") && page.contains("data-count=\"down\">1 down</span>"), "{page}");
    for dc in ["data-dc=\"ams\" data-state=\"down\"", "data-dc=\"iad\" data-state=\"up\"", "data-dc=\"sin\" data-state=\"drained\""] {
        assert!(page.contains(dc), "no {dc}");
    }
    assert_eq!(page.matches("<figure class=\"map\"").count(), 3, "a map per service");
    assert!(page.contains("data-map-region=\"continent:EU\"") && page.contains("data-map-dc=\"sin\" data-state=\"drained\""));
    assert!(page.contains("<svg class=\"timeline\""));
    // Self-contained: nothing is fetched from anywhere but this server's own API.
    for external in [" src=", " href=", "<link", "@import", "url(http"] {
        assert!(!page.contains(external), "the page refers to something outside it: {external}");
    }
    // The view the script refreshes with is the same renderer's.
    let (code, _, view) = request(s.http, "GET", "/v1/status.html", &[], "");
    assert_eq!(code, 200);
    assert!(view.starts_with("<div id=\"view\"") && view.contains("data-dc=\"sin\" data-state=\"drained\""));
}

#[test]
fn metrics_have_data_centre_gauges_and_lower_case_labels() {
    let dir = TempDir::new("dc-gauges");
    let s = start_with(&dir, &config(true, &[]));
    assert_eq!(request(s.http, "PUT", "/v1/admin/datacenters/ams", &[BEARER, JSON], r#"{"action":"drain"}"#).0, 200);
    wait_for_status(s.http, "ams drained", |st| st["datacenters"][0]["state"] == "drained");
    let text = request(s.http, "GET", "/metrics", &[], "").2;
    for line in [
        "waypost_datacenter_state{datacenter=\"ams\",state=\"drained\"} 1",
        "waypost_datacenter_state{datacenter=\"ams\",state=\"up\"} 0",
        "waypost_datacenter_state{datacenter=\"iad\",state=\"up\"} 1",
        "waypost_datacenter_override{datacenter=\"ams\",action=\"drain\"} 1",
        "waypost_datacenter_override{datacenter=\"iad\",action=\"drain\"} 0",
        "waypost_dns_responses_total{proto=\"udp\",rcode=\"noerror\"} 0",
        "waypost_dns_responses_total{proto=\"tcp\",rcode=\"badvers\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "no line {line:?} in\n{text}");
    }
    // Only RCODEs Waypost can send have series; label values are lower-case.
    for never in ["yxrrset", "nxrrset", "notauth", "notzone", "rcode11", "NOERROR", "Udp"] {
        assert!(!text.contains(&format!("\"{never}\"")), "{never} in\n{text}");
    }
    assert_eq!(request(s.http, "DELETE", "/v1/admin/datacenters/ams", &[BEARER], "").0, 200);
    wait_for_status(s.http, "ams back", |st| st["datacenters"][0]["state"] == "up");
    let text = request(s.http, "GET", "/metrics", &[], "").2;
    assert!(text.contains("waypost_datacenter_state{datacenter=\"ams\",state=\"up\"} 1"));
    assert!(text.contains("waypost_datacenter_override{datacenter=\"ams\",action=\"drain\"} 0"));
}

#[test]
fn a_down_check_is_a_problem_even_while_its_data_centre_serves() {
    let (a, _b, cfg) = per_address_setup("interval = \"100ms\"\ntimeout = \"300ms\"\nfall = 2\nrise = 2");
    let port = a.addr.port();
    let dir = TempDir::new("check-problem");
    let s = start_with(&dir, &cfg);
    wait_for_status(s.http, "both checked", |st| st["targets"].as_array().unwrap().iter().all(|t| t["has_result"] == true));
    a.set(mode::ERROR_500);
    // The sibling address keeps the data centre serving (up, once the flip is published).
    let st = wait_for_status(s.http, "127.0.0.2 down, one up", |st| st["targets"].as_array().unwrap().iter().any(|t| t["state"] == "down") && st["datacenters"][0]["state"] == "up");
    let p = st["problems"].as_array().unwrap().iter().find(|p| p["kind"] == "check").unwrap_or_else(|| panic!("{}", st["problems"])).clone();
    assert_eq!(p["text"], format!("Check http://127.0.0.2:{port}/health is down (status 500)"));
    assert_eq!(p["details"], serde_json::json!(["decides web.example.com. @ one 127.0.0.2"]));
    assert_eq!(st["summary"]["ok"], false);
}
