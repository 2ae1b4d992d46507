//! Health checks against real HTTP and TCP backends started by the tests, and what
//! they do to answers, TTLs, the state file, overrides, status and metrics.

use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::Value;

use crate::geo::{example_config, start_with};
use crate::support::{self, ask_ecs, http, mode, status, wait, Backend, TempDir, TestServer};
use waypost::config::health::{Check, CheckKind, StatusSet};
use waypost::health::probe::Prober;

const AMS: &str = "192.0.2.10";
const IAD: &str = "198.51.100.10";
const LONDON: &str = "81.2.69.160/27";

/// The example config with each data centre checked against a test backend.
fn config_with_checks(backends: &[&Backend; 3], health: &str, service_extra: &str) -> String {
    let mut c = example_config(&[]);
    if !service_extra.is_empty() {
        c = c.replace("[services.\"web.example.com.\"]\nttl = 60\npolicy = \"failover\"\n", &format!("[services.\"web.example.com.\"]\nttl = 60\npolicy = \"failover\"\n{service_extra}\n"));
    }
    c += &format!("\n[health]\n{health}\n");
    for (dc, b) in ["ams", "iad", "sin"].iter().zip(backends) {
        c += &format!("[datacenters.{dc}.check]\ntype = \"http\"\naddress = \"127.0.0.1\"\nport = {}\npath = \"/health\"\nexpect-body = \"ok\"\n", b.addr.port());
    }
    c
}

const FAST: &str = "interval = \"100ms\"\ntimeout = \"300ms\"\nfall = 3\nrise = 2";

fn target(st: &Value, port: u16) -> &Value {
    st["targets"].as_array().unwrap().iter().find(|t| t["address"] == format!("127.0.0.1:{port}")).expect("target listed")
}

/// What a London client gets for web.example.com, with the TTL.
fn web(s: &TestServer) -> (String, u32) {
    support::web(s.udp, "web.example.com.", Some(LONDON))
}

fn http_check(port: u16, expect_body: Option<&str>) -> Check {
    Check {
        kind: CheckKind::Http { tls: false, method: "GET".into(), path: "/health".into(), host: None, expect: StatusSet::Class(2), body: expect_body.map(String::from), insecure: false },
        target: format!("127.0.0.1:{port}").parse().unwrap(),
        interval: Duration::from_secs(1),
        timeout: Duration::from_millis(300),
        fall: 3,
        rise: 2,
        vantage_points: None,
    }
}

#[test]
fn probes_tell_each_backend_failure_apart() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut b = Backend::start();
    let probe = |c: &Check| rt.block_on(Prober::new(c).unwrap().probe());
    let c = http_check(b.addr.port(), Some("ok"));
    assert!(probe(&c).ok);
    b.set(mode::ERROR_500);
    assert_eq!(probe(&c).error.as_deref(), Some("status 500"));
    b.set(mode::WRONG_BODY);
    assert!(probe(&c).error.unwrap().contains("body does not contain"));
    b.set(mode::REDIRECT);
    assert_eq!(probe(&c).error.as_deref(), Some("status 302"), "redirects are not followed");
    b.set(mode::HANG);
    let t = Instant::now();
    let r = probe(&c);
    assert!(r.error.unwrap().contains("timed out"));
    assert!(t.elapsed() < Duration::from_secs(2), "the timeout bounds a hung target");
    let tcp = Check { kind: CheckKind::Tcp, ..c.clone() };
    assert!(probe(&tcp).ok);
    b.close();
    assert!(!probe(&c).ok, "connection refused");
    assert!(probe(&tcp).error.unwrap().contains("connect"));
}

#[test]
fn targets_go_down_after_fall_failures_and_up_after_rise_successes() {
    let bs = [Backend::start(), Backend::start(), Backend::start()];
    let dir = TempDir::new("fallrise");
    let s = start_with(&dir, &config_with_checks(&[&bs[0], &bs[1], &bs[2]], FAST, ""));
    let port = bs[0].addr.port();
    wait("ams up with results", 10, || target(&status(s.http), port)["consecutive_ok"].as_u64() >= Some(2));
    bs[0].set(mode::ERROR_500);
    // Invariant while failing: fewer than `fall` failures never means down.
    wait("ams down", 10, || {
        let st = status(s.http);
        let t = target(&st, port);
        let fails = t["consecutive_fail"].as_u64().unwrap();
        if fails < 3 {
            assert_ne!(t["state"], "down", "down after only {fails} failures: {t}");
        }
        t["state"] == "down"
    });
    assert!(target(&status(s.http), port)["consecutive_fail"].as_u64().unwrap() >= 3);
    bs[0].set(mode::OK);
    wait("ams up again", 10, || {
        let st = status(s.http);
        let t = target(&st, port);
        let oks = t["consecutive_ok"].as_u64().unwrap();
        if oks < 2 {
            assert_ne!(t["state"], "up", "up after only {oks} successes: {t}");
        }
        t["state"] == "up"
    });
    let st = status(s.http);
    assert_eq!(target(&st, port)["flips"], 2);
    let changes: Vec<(String, String)> = st["recent_changes"].as_array().unwrap().iter().map(|c| (c["from"].as_str().unwrap().into(), c["to"].as_str().unwrap().into())).collect();
    assert_eq!(changes[..4], [("recovering".into(), "up".into()), ("down".into(), "recovering".into()), ("failing".into(), "down".into()), ("up".into(), "failing".into())]);
}

#[test]
fn an_alternating_target_never_flips() {
    let bs = [Backend::start(), Backend::start(), Backend::start()];
    bs[0].set(mode::ALTERNATE);
    let dir = TempDir::new("alternate");
    let s = start_with(&dir, &config_with_checks(&[&bs[0], &bs[1], &bs[2]], FAST, ""));
    let port = bs[0].addr.port();
    wait("30 probes", 20, || target(&status(s.http), port)["probes"].as_u64() >= Some(30));
    let st = status(s.http);
    assert_eq!(target(&st, port)["flips"], 0);
    assert!(target(&st, port)["failures"].as_u64().unwrap() >= 10);
    assert_eq!(web(&s).0, AMS);
}

#[test]
fn a_region_fails_over_to_the_next_data_centre_and_comes_back() {
    let bs = [Backend::start(), Backend::start(), Backend::start()];
    let dir = TempDir::new("failover");
    let s = start_with(&dir, &config_with_checks(&[&bs[0], &bs[1], &bs[2]], FAST, ""));
    wait("first results", 10, || status(s.http)["targets"].as_array().unwrap().iter().all(|t| t["has_result"] == true));
    assert_eq!(web(&s), (AMS.into(), 60));
    bs[0].set(mode::ERROR_500);
    wait("failover to iad", 10, || web(&s).0 == IAD);
    assert_eq!(web(&s), (IAD.into(), 10), "short TTL while failed over");
    // Clients whose first choice is iad are not failed over: normal TTL.
    let (got, _, r) = ask_ecs(s.udp, "web.example.com.", RecordType::A, "216.160.83.56/29");
    assert_eq!((got[0].as_str(), r.answers[0].ttl), (IAD, 60));
    bs[0].set(mode::OK);
    wait("back to ams", 10, || web(&s).0 == AMS);
    assert_eq!(web(&s), (AMS.into(), 60));
}

#[test]
fn all_down_follows_each_policy() {
    for (extra, want) in [
        ("", Some((AMS, 10))),
        ("all-down = \"fallback\"\nfallback = [\"192.0.2.99\"]", Some(("192.0.2.99", 10))),
        ("all-down = \"nodata\"", None),
    ] {
        let bs = [Backend::start(), Backend::start(), Backend::start()];
        for b in &bs {
            b.set(mode::ERROR_500);
        }
        let dir = TempDir::new("alldown");
        let s = start_with(&dir, &config_with_checks(&[&bs[0], &bs[1], &bs[2]], FAST, extra));
        wait("all down", 10, || status(s.http)["datacenters"].as_array().unwrap().iter().all(|d| d["state"] == "down"));
        let (got, _, r) = ask_ecs(s.udp, "web.example.com.", RecordType::A, LONDON);
        match want {
            Some((addr, ttl)) => assert_eq!((got[0].as_str(), r.answers[0].ttl), (addr, ttl), "{extra:?}"),
            None => {
                assert_eq!(r.metadata.response_code, ResponseCode::NoError);
                assert!(r.answers.is_empty() && r.authorities.len() == 1, "NODATA with SOA");
            }
        }
    }
}

pub fn admin(s: &TestServer, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(s.http).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(c, "{method} {path} HTTP/1.1\r\nHost: t\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    let code = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    (code, out.split_once("\r\n\r\n").map(|x| x.1.to_string()).unwrap_or_default())
}

#[test]
fn overrides_need_the_token_change_answers_at_once_and_survive_a_restart() {
    let bs = [Backend::start(), Backend::start(), Backend::start()];
    let dir = TempDir::new("overrides");
    let state = dir.0.join("state.json");
    let health = format!("{FAST}\nadmin-token = \"s3cret\"\nstate-file = {:?}", state.display().to_string());
    let cfg = config_with_checks(&[&bs[0], &bs[1], &bs[2]], &health, "");
    let s = start_with(&dir, &cfg);
    assert_eq!(web(&s).0, AMS);
    let drain = r#"{"action":"drain"}"#;
    assert_eq!(admin(&s, "PUT", "/v1/admin/datacenters/ams", None, drain).0, 401);
    assert_eq!(admin(&s, "PUT", "/v1/admin/datacenters/ams", Some("wrong"), drain).0, 401);
    assert_eq!(admin(&s, "PUT", "/v1/admin/datacenters/nope", Some("s3cret"), drain).0, 404);
    assert_eq!(admin(&s, "PUT", "/v1/admin/datacenters/ams", Some("s3cret"), drain).0, 200);
    wait("drain applied", 2, || web(&s).0 == IAD);
    assert_eq!(status(s.http)["datacenters"][0]["state"], "drained");
    // An address override: iad's web address forced down → sin for London.
    assert_eq!(admin(&s, "PUT", "/v1/admin/addresses/198.51.100.10", Some("s3cret"), r#"{"action":"down"}"#).0, 200);
    wait("address down applied", 2, || web(&s).0 == "203.0.113.10");
    drop(s);

    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(saved["overrides"].as_array().unwrap().len(), 2);
    let s = start_with(&dir, &cfg);
    assert_eq!(web(&s).0, "203.0.113.10", "overrides survive a restart");
    assert_eq!(admin(&s, "DELETE", "/v1/admin/addresses/198.51.100.10", Some("s3cret"), "").0, 200);
    wait("address back", 2, || web(&s).0 == IAD);
    assert_eq!(admin(&s, "DELETE", "/v1/admin/datacenters/ams", Some("s3cret"), "").0, 200);
    wait("ams back", 2, || web(&s).0 == AMS);
    // Expiring overrides end by themselves.
    assert_eq!(admin(&s, "PUT", "/v1/admin/datacenters/ams", Some("s3cret"), r#"{"action":"down","expires_in":"1s"}"#).0, 200);
    wait("forced down", 2, || web(&s).0 == IAD);
    wait("expired", 5, || web(&s).0 == AMS);
}

#[test]
fn admin_endpoints_are_disabled_without_a_token() {
    let dir = TempDir::new("noadmin");
    let s = start_with(&dir, &example_config(&[]));
    assert_eq!(admin(&s, "PUT", "/v1/admin/datacenters/ams", Some("x"), r#"{"action":"drain"}"#).0, 403);
}

#[test]
fn the_state_file_restores_state_before_the_first_check_result() {
    let bs = [Backend::start(), Backend::start(), Backend::start()];
    bs[0].set(mode::ERROR_500);
    let dir = TempDir::new("statefile");
    let state = dir.0.join("state.json");
    let fast = format!("{FAST}\nstate-file = {:?}", state.display().to_string());
    let s = start_with(&dir, &config_with_checks(&[&bs[0], &bs[1], &bs[2]], &fast, ""));
    wait("ams down", 10, || web(&s).0 == IAD);
    drop(s);
    // Restart with checks that will not report for a long while: the saved state decides.
    let slow = format!("interval = \"60s\"\ntimeout = \"1s\"\nfall = 3\nrise = 2\nstate-file = {:?}", state.display().to_string());
    let s = start_with(&dir, &config_with_checks(&[&bs[0], &bs[1], &bs[2]], &slow, ""));
    assert_eq!(web(&s).0, IAD, "a restart does not send clients to a site that was down");
    // Without the state file the same restart would answer ams until three failures.
    std::fs::remove_file(&state).unwrap();
    drop(s);
    let s = start_with(&dir, &config_with_checks(&[&bs[0], &bs[1], &bs[2]], &slow, ""));
    assert_eq!(web(&s).0, AMS);
}

#[test]
fn status_json_describes_a_known_scenario_field_by_field() {
    let bs = [Backend::start(), Backend::start(), Backend::start()];
    bs[0].set(mode::ERROR_500);
    let dir = TempDir::new("status");
    let s = start_with(&dir, &config_with_checks(&[&bs[0], &bs[1], &bs[2]], FAST, ""));
    wait("ams down", 10, || status(s.http)["datacenters"][0]["state"] == "down");
    let st = status(s.http);
    let ams = target(&st, bs[0].addr.port());
    assert_eq!(ams["id"], format!("http://127.0.0.1:{}/health", bs[0].addr.port()));
    assert_eq!(ams["kind"], "http");
    assert_eq!(ams["state"], "down");
    assert_eq!(ams["up"], false);
    assert_eq!(ams["last_result"], "fail");
    assert_eq!(ams["last_error"], "status 500");
    assert_eq!((ams["fall"].as_u64(), ams["rise"].as_u64(), ams["interval_s"].as_f64()), (Some(3), Some(2), Some(0.1)));
    assert_eq!(ams["used_by"], serde_json::json!(["datacenter ams"]));
    assert!(ams["latency_ms"].as_f64().unwrap() >= 0.0);
    let iad = target(&st, bs[1].addr.port());
    assert_eq!((iad["state"].as_str(), iad["last_result"].as_str(), iad["flips"].as_u64()), (Some("up"), Some("ok"), Some(0)));

    let dcs = st["datacenters"].as_array().unwrap();
    assert_eq!(dcs.iter().map(|d| (d["name"].as_str().unwrap(), d["state"].as_str().unwrap())).collect::<Vec<_>>(), [("ams", "down"), ("iad", "up"), ("sin", "up")]);
    assert_eq!(dcs[0]["location"], serde_json::json!([52.37, 4.90]));

    let web = st["services"].as_array().unwrap().iter().find(|x| x["name"] == "web.example.com.").unwrap();
    assert_eq!((web["policy"].as_str(), web["ttl"].as_u64(), web["failover_ttl"].as_u64(), web["all_down"].as_str()), (Some("failover"), Some(60), Some(10), Some("serve-all")));
    let region = |r: &str| web["regions"].as_array().unwrap().iter().find(|x| x["region"] == r).unwrap().clone();
    let london = region("city:GB/London");
    assert_eq!(london["order"], serde_json::json!(["ams", "iad", "sin"]));
    assert_eq!(london["a"]["answer"], serde_json::json!([IAD]));
    assert_eq!((london["a"]["ttl"].as_u64(), london["a"]["failed_over"].as_bool()), (Some(10), Some(true)));
    assert_eq!(london["a"]["datacenters"], serde_json::json!(["iad"]));
    let default = region("default");
    assert_eq!((default["a"]["answer"][0].as_str(), default["a"]["ttl"].as_u64(), default["a"]["failed_over"].as_bool()), (Some(IAD), Some(60), Some(false)));
    assert_eq!(region("continent:AS")["aaaa"]["answer"], serde_json::json!(["2001:db8:c::10"]));

    assert_eq!(st["zones"][0]["zone"], "example.com.");
    assert_eq!(st["zones"][0]["serial"], 2026112201);
    assert_eq!(st["overrides"], serde_json::json!([]));
    assert_eq!(st["generation"], 1);
    assert_eq!(st["admin_enabled"], false);
    assert!(st["recent_changes"].as_array().unwrap().iter().any(|c| c["from"] == "failing" && c["to"] == "down"));
}

#[test]
fn metrics_parse_as_prometheus_text() {
    let bs = [Backend::start(), Backend::start(), Backend::start()];
    let dir = TempDir::new("metrics");
    let s = start_with(&dir, &config_with_checks(&[&bs[0], &bs[1], &bs[2]], FAST, ""));
    wait("probes", 10, || target(&status(s.http), bs[0].addr.port())["probes"].as_u64() >= Some(3));
    for _ in 0..5 {
        web(&s);
    }
    let (code, text) = http(s.http, "GET", "/metrics");
    assert_eq!(code, 200);
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text");
    let value = |name: &str, label: Option<(&str, &str)>| -> f64 {
        scrape
            .samples
            .iter()
            .filter(|x| x.metric == name && label.is_none_or(|(k, v)| x.labels.get(k) == Some(v)))
            .map(|x| match x.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum()
    };
    assert!(value("waypost_service_answers_total", Some(("service", "web.example.com."))) >= 5.0);
    assert!(value("waypost_dns_responses_total", Some(("rcode", "noerror"))) >= 5.0);
    assert!(value("waypost_dns_responses_total", Some(("proto", "udp"))) >= 5.0);
    assert!(value("waypost_health_checks_total", Some(("result", "ok"))) >= 3.0);
    assert_eq!(value("waypost_health_target_up", None), 3.0);
    assert!(scrape.samples.iter().any(|x| x.metric.starts_with("waypost_answer_seconds")));
    assert!(scrape.samples.iter().any(|x| x.metric.starts_with("waypost_health_check_seconds")));
    assert!(scrape.samples.iter().any(|x| x.metric == "waypost_reloads_total"));
    // Per data centre: one series per state (1 for the current one) and per override action.
    assert_eq!(value("waypost_datacenter_state", Some(("state", "up"))), 3.0);
    assert_eq!(value("waypost_datacenter_state", None), 3.0, "each data centre is in exactly one state");
    assert_eq!(scrape.samples.iter().filter(|x| x.metric == "waypost_datacenter_state").count(), 3 * waypost::metrics::DATACENTER_STATES.len());
    assert_eq!(value("waypost_datacenter_override", None), 0.0);
    assert_eq!(scrape.samples.iter().filter(|x| x.metric == "waypost_datacenter_override" && x.labels.get("datacenter") == Some("ams")).count(), 3);
}

#[test]
fn a_failed_address_is_dropped_while_its_siblings_keep_serving() {
    let (a, b, cfg) = support::per_address_setup(FAST);
    let dir = TempDir::new("peraddr");
    let s = start_with(&dir, &cfg);
    let answer = |s: &TestServer| {
        let (got, _, r) = ask_ecs(s.udp, "web.example.com.", RecordType::A, LONDON);
        (got, r.answers.first().map_or(0, |x| x.ttl))
    };
    wait("both checked", 10, || status(s.http)["targets"].as_array().unwrap().iter().all(|t| t["has_result"] == true));
    assert_eq!(status(s.http)["targets"].as_array().unwrap().len(), 2, "one check per address");
    assert_eq!(answer(&s), (vec!["127.0.0.2".to_string(), "127.0.0.3".to_string()], 60));
    a.set(mode::ERROR_500);
    wait("127.0.0.2 left out", 10, || answer(&s).0 == vec!["127.0.0.3".to_string()]);
    wait("settled", 10, || answer(&s).1 == 60);
    a.set(mode::OK);
    wait("127.0.0.2 back", 10, || answer(&s).0.len() == 2);
    drop(b);
}

#[test]
fn a_hung_target_does_not_delay_other_checks() {
    let bs = [Backend::start(), Backend::start(), Backend::start()];
    bs[0].set(mode::HANG);
    let dir = TempDir::new("hung");
    // Timeout (300 ms) three times the interval (100 ms), and one probe slot only:
    // the hung probe must not hold up the others beyond its own timeout.
    let health = "interval = \"100ms\"\ntimeout = \"300ms\"\nfall = 3\nrise = 2\nmax-concurrent = 2";
    let s = start_with(&dir, &config_with_checks(&[&bs[0], &bs[1], &bs[2]], health, ""));
    std::thread::sleep(Duration::from_millis(2000));
    let st = status(s.http);
    let probes = |b: &Backend| target(&st, b.addr.port())["probes"].as_u64().unwrap();
    assert!(probes(&bs[1]) >= 12 && probes(&bs[2]) >= 12, "healthy targets keep their pace: {} {}", probes(&bs[1]), probes(&bs[2]));
    let hung = target(&st, bs[0].addr.port());
    assert!(hung["last_error"].as_str().unwrap_or("").contains("timed out"), "{hung}");
    assert_eq!(hung["state"], "down");
}

/// Read-your-writes: an override's or its removal's 200 comes after the snapshot that
/// carries it is published, so a query sent right after the answer sees the new state,
/// every time (the health publisher alone took up to ~0.1 s; issue 23).
#[test]
fn an_admin_override_is_live_when_its_call_answers() {
    let dir = TempDir::new("read-your-writes");
    let cfg = format!(
        "version = 1\n[server]\nzones-dir = {:?}\n[geo.map]\ndefault = [\"ams\", \"iad\"]\n\
         [datacenters.ams]\nlocation = [52.4, 4.9]\nservices = {{ \"web.example.com.\" = [\"192.0.2.10\"] }}\n\
         [datacenters.iad]\nlocation = [38.9, -77.0]\nservices = {{ \"web.example.com.\" = [\"198.51.100.10\"] }}\n\
         [services.\"web.example.com.\"]\nttl = 60\n[health]\nadmin-token = \"t\"\n",
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("zones").display().to_string()
    );
    let s = start_with(&dir, &cfg);
    assert_eq!(support::web(s.udp, "web.example.com.", None).0, "192.0.2.10");
    let mut snapshots = Vec::new();
    for round in 0..25 {
        let (code, body) = admin(&s, "PUT", "/v1/admin/datacenters/ams", Some("t"), r#"{"action":"drain"}"#);
        assert_eq!(code, 200, "{body}");
        assert_eq!(support::web(s.udp, "web.example.com.", None).0, "198.51.100.10", "round {round}: right after the drain's 200");
        let v: Value = serde_json::from_str(&body).unwrap();
        snapshots.push(v["snapshot"].as_u64().expect("the published snapshot in the answer"));
        let (code, body) = admin(&s, "DELETE", "/v1/admin/datacenters/ams", Some("t"), "");
        assert_eq!(code, 200, "{body}");
        assert_eq!(support::web(s.udp, "web.example.com.", None).0, "192.0.2.10", "round {round}: right after the undrain's 200");
    }
    assert!(snapshots.windows(2).all(|w| w[0] < w[1]), "each drain is a new snapshot: {snapshots:?}");
}
