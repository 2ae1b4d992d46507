//! Broken zones are rejected with file, line and reason by `waypost check` and by a
//! reload while serving, and the previous zones keep answering.

use std::path::Path;
use std::process::Command;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::support::{data, http, query, udp, TempDir, TestServer};

/// (file, expected line, expected reason) from each bad zone's `; expect: LINE: reason` header.
fn bad_zones() -> Vec<(std::path::PathBuf, usize, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(data("zones/bad")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "zone") {
            let text = std::fs::read_to_string(&p).unwrap();
            let spec = text.lines().next().unwrap().strip_prefix("; expect: ").expect("expect header");
            let (line, reason) = spec.split_once(": ").unwrap();
            out.push((p, line.parse().unwrap(), reason.to_string()));
        }
    }
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
    for (file, line, reason) in bad_zones() {
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
        assert!(body.contains(&format!("\"line\":{line}")) && body.contains(&reason), "{file:?}: {body}");
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
