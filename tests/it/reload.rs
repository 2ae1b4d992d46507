//! Broken zones are rejected with file, line and reason by `waypost check` and by a
//! reload while serving, and the previous zones keep answering.

use std::path::Path;
use std::process::Command;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::support::{data, http, query, udp, TempDir, TestServer};

/// (file, expected line, expected reason) from each bad zone's `; expect: LINE: reason`
/// header lines: a file with several errors has one line for each, all to be reported.
fn bad_zone_problems() -> Vec<(std::path::PathBuf, usize, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(data("zones/bad")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "zone") {
            let text = std::fs::read_to_string(&p).unwrap();
            let specs: Vec<&str> = text.lines().map_while(|l| l.strip_prefix("; expect: ")).collect();
            assert!(!specs.is_empty(), "{}: no expect header", p.display());
            for spec in specs {
                let (line, reason) = spec.split_once(": ").unwrap();
                out.push((p.clone(), line.parse().unwrap(), reason.to_string()));
            }
        }
    }
    out
}

/// The first expected problem of each bad zone.
fn bad_zones() -> Vec<(std::path::PathBuf, usize, String)> {
    let mut out = bad_zone_problems();
    out.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    out.dedup_by(|a, b| a.0 == b.0);
    assert!(out.len() >= 10, "the bad-zone catalogue shrank");
    out
}

fn good_zone(dir: &Path, serial: u32, www: &str) {
    std::fs::write(
        dir.join("bad.test.zone"),
        format!("$ORIGIN bad.test.\n$TTL 300\n@ SOA ns1 host {serial} 3600 600 86400 300\n@ NS ns1\nns1 A 192.0.2.1\nwww A {www}\n"),
    )
    .unwrap();
}

#[test]
fn check_rejects_each_broken_zone_with_its_line_and_reason() {
    let all = bad_zone_problems();
    assert!(all.iter().filter(|p| p.0.ends_with("several-errors.zone")).count() >= 5, "the several-errors fixture lists each error");
    for (file, line, reason) in all {
        let dir = TempDir::new("check");
        let name = file.file_name().unwrap();
        std::fs::copy(&file, dir.0.join(name)).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_waypost")).args(["check", "--zones"]).arg(&dir.0).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{name:?} should fail: {stdout}");
        let want = format!("{}:{line}: ", dir.0.join(name).display());
        let hit = stdout.lines().find(|l| l.starts_with(&want));
        assert!(hit.is_some_and(|l| l.contains(&reason)), "{name:?}: want `{want}…{reason}`, got:\n{stdout}");
    }
}

#[test]
fn check_accepts_the_shipped_example_and_test_zones() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO_BIN_EXE_waypost")).current_dir(root).arg("check").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let out = Command::new(env!("CARGO_BIN_EXE_waypost")).arg("check").arg("--zones").arg(data("zones")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn broken_zone_file_keeps_old_zone_serving() {
    let dir = TempDir::new("reload");
    good_zone(&dir.0, 1, "192.0.2.80");
    let server = TestServer::start_zones(&dir.0);
    let www = |s: &TestServer| udp(s.udp, &query("www.bad.test.", RecordType::A, None));
    assert_eq!(www(&server).answers[0].data.to_string(), "192.0.2.80");

    for (file, line, reason) in bad_zones() {
        std::fs::copy(&file, dir.0.join("bad.test.zone")).unwrap();
        let (status, body) = http(server.http, "POST", "/v1/reload");
        assert_eq!(status, 422, "{file:?}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let reported = v["errors"].as_array().unwrap().iter().any(|e| e["line"] == line && e["reason"].as_str().unwrap_or("").contains(&reason));
        assert!(reported, "{file:?}: want line {line}: {reason}, got {body}");
        let r = www(&server);
        assert_eq!(r.metadata.response_code, ResponseCode::NoError, "{file:?}");
        assert_eq!(r.answers[0].data.to_string(), "192.0.2.80", "old data keeps serving after {file:?}");
    }
    let (_, metrics) = http(server.http, "GET", "/metrics");
    let failures = metrics.lines().find(|l| l.starts_with("waypost_reloads_total{result=\"failure\"}")).unwrap();
    assert!(failures.ends_with(&format!(" {}", bad_zones().len())), "{failures}");

    // A good zone with a new serial is picked up.
    good_zone(&dir.0, 2, "192.0.2.81");
    let (status, body) = http(server.http, "POST", "/v1/reload");
    assert_eq!(status, 200, "{body}");
    assert_eq!(www(&server).answers[0].data.to_string(), "192.0.2.81");
}

#[test]
fn unchanged_zone_files_are_not_parsed_again() {
    let dir = TempDir::new("unchanged");
    good_zone(&dir.0, 5, "192.0.2.80");
    let server = TestServer::start_zones(&dir.0);
    let (status, body) = http(server.http, "POST", "/v1/reload");
    assert_eq!(status, 200);
    assert!(body.contains("\"unchanged\":[\"bad.test.\"]"), "{body}");
    assert!(body.contains("\"generation\":2"), "{body}");
}

#[test]
fn serial_going_backwards_still_loads_with_a_warning() {
    let dir = TempDir::new("backwards");
    good_zone(&dir.0, 10, "192.0.2.80");
    let server = TestServer::start_zones(&dir.0);
    good_zone(&dir.0, 9, "192.0.2.99");
    let (status, body) = http(server.http, "POST", "/v1/reload");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("went backwards"), "{body}");
    let r = udp(server.udp, &query("www.bad.test.", RecordType::A, None));
    assert_eq!(r.answers[0].data.to_string(), "192.0.2.99");
}

#[test]
fn sighup_is_not_needed_for_health_endpoints() {
    let dir = TempDir::new("health");
    good_zone(&dir.0, 1, "192.0.2.80");
    let server = TestServer::start_zones(&dir.0);
    assert_eq!(http(server.http, "GET", "/healthz").0, 200);
    let (status, body) = http(server.http, "GET", "/readyz");
    assert_eq!(status, 200);
    assert!(body.contains("\"ready\":true"), "{body}");
}

/// (file, expected line, expected message) from each bad config's `# expect: LINE: message` header.
fn bad_configs() -> Vec<(std::path::PathBuf, usize, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(data("config/bad")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            let text = std::fs::read_to_string(&p).unwrap();
            let spec = text.lines().next().unwrap().strip_prefix("# expect: ").expect("expect header");
            let (line, msg) = spec.split_once(": ").unwrap();
            out.push((p, line.parse().unwrap(), msg.to_string()));
        }
    }
    assert!(out.len() >= 10, "the bad-config catalogue shrank");
    out
}

fn check_config(path: &Path) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_waypost")).args(["check", "--config"]).arg(path).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn check_rejects_each_broken_config_with_the_line_of_its_key() {
    for (file, line, msg) in bad_configs() {
        let (code, stdout) = check_config(&file);
        assert_eq!(code, Some(1), "{file:?} should fail: {stdout}");
        let want = format!("{}:{line}: {msg}", file.display());
        assert!(stdout.lines().any(|l| l.starts_with(&want)), "want `{want}…`, got:\n{stdout}");
    }
}

#[test]
fn check_reports_a_missing_config_file_without_a_line() {
    let dir = TempDir::new("missing-config");
    let path = dir.0.join("waypost.toml");
    let (code, stdout) = check_config(&path);
    assert_eq!(code, Some(1), "{stdout}");
    let want = format!("{}: cannot read config: ", path.display());
    assert!(stdout.starts_with(&want) && !stdout.contains(":0:"), "want `{want}…`, got:\n{stdout}");
}

#[test]
fn check_reports_overrides_file_errors_at_their_line() {
    let (code, stdout) = check_config(&data("config/overrides.toml"));
    assert_eq!(code, Some(1), "{stdout}");
    let want = format!("{}:6: networks.\"203.0.113.0/24\": unknown data centre \"fra\"", data("config/overrides/bad-network.toml").display());
    assert!(stdout.lines().any(|l| l == want), "want `{want}`, got:\n{stdout}");
}

#[test]
fn check_accepts_durations_and_ttls_in_both_forms() {
    let (code, stdout) = check_config(&data("config/durations.toml"));
    assert_eq!(code, Some(0), "{stdout}");
}

/// A reload with a broken config keeps serving, and says which line is wrong.
#[test]
fn broken_config_reload_reports_the_line_and_keeps_serving() {
    let dir = TempDir::new("config-reload");
    let zones = dir.0.join("zones");
    std::fs::create_dir(&zones).unwrap();
    good_zone(&zones, 1, "192.0.2.80");
    let good = "version = 1\n[server]\nzones-dir = \"zones\"\n\n[datacenters.ams]\nlocation = [52.37, 4.90]\n";
    let config = dir.0.join("waypost.toml");
    std::fs::write(&config, good).unwrap();
    let server = TestServer::start_config(&config);
    std::fs::write(&config, format!("{good}[geo.map.continent]\nEU = [\"fra\"]\n")).unwrap();
    let (status, body) = http(server.http, "POST", "/v1/reload");
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("\"line\":8") && body.contains("geo.map.continent.EU: unknown data centre \\\"fra\\\""), "{body}");
    let r = udp(server.udp, &query("www.bad.test.", RecordType::A, None));
    assert_eq!(r.answers[0].data.to_string(), "192.0.2.80");
}

/// `check` says which files of the zones directory it did not load (a zone file saved as
/// `example.org.zon` was skipped in silence), and prints no INFO log lines unless asked.
#[test]
fn check_lists_skipped_files_and_is_quiet_by_default() {
    let dir = TempDir::new("check-skipped");
    let zone = "$TTL 60\n@ SOA ns1 h 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.1\n";
    std::fs::write(dir.0.join("example.com.zone"), zone).unwrap();
    std::fs::write(dir.0.join("example.org.zon"), zone.replace("192.0.2.1", "192.0.2.2")).unwrap();
    std::fs::write(dir.0.join("example.com.zone~"), zone).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_waypost")).args(["check", "--zones"]).arg(&dir.0).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains(&format!("warning: {}: skipped: only files named <zone>.zone are loaded as zones", dir.0.join("example.org.zon").display())), "{stdout}");
    assert!(!stdout.contains("zone~"), "an editor's backup is not worth a warning: {stdout}");
    assert!(stdout.contains("ok: example.com."), "{stdout}");
    assert!(!stderr.contains("INFO"), "check logs at warn unless asked: {stderr}");
}
