//! Geo routing over the wire: ECS and source-address clients, the MaxMind test
//! databases, overrides, nearest mode, weighted answers, database replacement.

use std::collections::HashMap;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::RecordType;

use crate::support::{ask_ecs, data, http, query, rdata, udp, wait, TempDir, TestServer};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The shipped example (waypost.toml), with paths made absolute so it can be copied.
pub fn example_config(replace: &[(&str, &str)]) -> String {
    let mut text = std::fs::read_to_string(root().join("waypost.toml")).unwrap();
    for rel in ["tests/data/geo/GeoIP2-City-Test.mmdb", "deploy/example/geo-overrides.toml"] {
        text = text.replace(&format!("\"{rel}\""), &format!("{:?}", root().join(rel).display().to_string()));
    }
    text = text.replace("zones-dir = \"zones\"", &format!("zones-dir = {:?}", root().join("zones").display().to_string()));
    for (from, to) in replace {
        assert!(text.contains(from), "example config lacks {from:?}");
        text = text.replace(from, to);
    }
    text
}

pub fn start_with(dir: &TempDir, config: &str) -> TestServer {
    let path = dir.0.join("waypost.toml");
    std::fs::write(&path, config).unwrap();
    TestServer::start_config(&path)
}

fn example() -> &'static TestServer {
    static S: OnceLock<TestServer> = OnceLock::new();
    S.get_or_init(|| TestServer::start_config(&root().join("waypost.toml")))
}

const AMS: &str = "192.0.2.10";
const IAD: &str = "198.51.100.10";
const SIN: &str = "203.0.113.10";

#[test]
fn ecs_subnets_get_the_data_centres_the_example_map_promises() {
    let s = example();
    for (subnet, want, want_scope, why) in [
        ("81.2.69.160/27", AMS, 27, "GB, city GB/London"),
        ("89.160.20.128/25", AMS, 25, "SE, continent EU"),
        ("216.160.83.56/29", IAD, 29, "US, subdivision US-WA"),
        ("175.16.199.0/24", SIN, 24, "CN, continent AS"),
        ("214.0.1.0/24", SIN, 24, "AU, continent OC"),
        ("2001:218::/48", SIN, 32, "JP, country JP; scope is the database's /32"),
        ("2a02:d180::/48", AMS, 29, "DE, continent EU"),
        ("2a02:e700::/48", AMS, 29, "LY, continent AF"),
    ] {
        let (got, sc, r) = ask_ecs(s.udp, "web.example.com.", RecordType::A, subnet);
        assert!(r.metadata.authoritative);
        assert_eq!(got, vec![want.to_string()], "{subnet} ({why})");
        assert_eq!(sc, Some(want_scope), "{subnet} scope ({why})");
        assert_eq!(r.answers[0].ttl, 60);
    }
    // AAAA follows the same order.
    let (got, _, _) = ask_ecs(s.udp, "web.example.com.", RecordType::AAAA, "175.16.199.0/24");
    assert_eq!(got, vec!["2001:db8:c::10".to_string()]);
}

#[test]
fn unknown_private_and_no_information_clients_get_the_default() {
    let s = example();
    for subnet in ["8.8.8.0/24", "172.16.0.0/16", "2001:db8:1::/48", "81.2.69.160/0"] {
        let (got, sc, _) = ask_ecs(s.udp, "web.example.com.", RecordType::A, subnet);
        assert_eq!(got, vec![IAD.to_string()], "{subnet}");
        if subnet.ends_with("/0") {
            assert_eq!(sc, Some(0), "SOURCE PREFIX-LENGTH 0: no client information");
        }
    }
    // Without ECS, the loopback source is not in the database: default.
    let r = udp(s.udp, &query("web.example.com.", RecordType::A, None));
    assert_eq!(rdata(&r), vec![IAD.to_string()]);
    // Static names echo ECS with scope 0.
    let (_, sc, _) = ask_ecs(s.udp, "mail.example.com.", RecordType::A, "81.2.69.160/27");
    assert_eq!(sc, Some(0));
}

#[test]
fn override_networks_beat_the_database_and_never_widen_the_scope() {
    let s = example();
    // 10.0.0.0/8 → [ams, iad] (inline); 198.51.100.0/24 → [sin, …] (overrides file).
    let (got, sc, _) = ask_ecs(s.udp, "web.example.com.", RecordType::A, "10.1.0.0/16");
    assert_eq!((got, sc), (vec![AMS.to_string()], Some(8)));
    let (got, sc, _) = ask_ecs(s.udp, "web.example.com.", RecordType::A, "198.51.100.0/24");
    assert_eq!((got, sc), (vec![SIN.to_string()], Some(24)));
    // 192.0.2.0/26 → continent:AS; the client sent /24, so the scope stays /24.
    let (got, sc, _) = ask_ecs(s.udp, "web.example.com.", RecordType::A, "192.0.2.0/24");
    assert_eq!((got, sc), (vec![SIN.to_string()], Some(24)));

    // An override file entry beats a database network that says GB.
    let dir = TempDir::new("override");
    let ov = dir.0.join("ov.toml");
    std::fs::write(&ov, "[networks]\n\"81.2.69.0/24\" = [\"sin\"]\n").unwrap();
    let cfg = example_config(&[]).replace(&format!("{:?}", root().join("deploy/example/geo-overrides.toml").display().to_string()), &format!("{:?}", ov.display().to_string()));
    let s = start_with(&dir, &cfg);
    let (got, sc, _) = ask_ecs(s.udp, "web.example.com.", RecordType::A, "81.2.69.160/27");
    assert_eq!((got, sc), (vec![SIN.to_string()], Some(24)));
    // Removed from the file and reloaded: the database decides again.
    std::fs::write(&ov, "[networks]\n").unwrap();
    assert_eq!(http(s.http, "POST", "/v1/reload").0, 200);
    let (got, sc, _) = ask_ecs(s.udp, "web.example.com.", RecordType::A, "81.2.69.160/27");
    assert_eq!((got, sc), (vec![AMS.to_string()], Some(27)));
}

#[test]
fn nearest_mode_orders_by_distance() {
    let dir = TempDir::new("nearest");
    let s = start_with(&dir, &example_config(&[("order = \"map\"", "order = \"nearest\"")]));
    for (subnet, first_two) in [
        ("2001:218::/48", ["2001:db8:a::11", "2001:db8:c::11"]),   // Tokyo: sin 5,300 km, ams 9,300, iad 10,900
        ("81.2.69.160/27", ["2001:db8:a::11", "2001:db8:b::11"]),  // London: ams 360 km, iad 5,900
        ("216.160.83.56/29", ["2001:db8:a::11", "2001:db8:b::11"]), // Milton, WA: iad 3,700 km, ams 7,900
        ("214.0.1.0/24", ["2001:db8:b::11", "2001:db8:c::11"]),    // Melbourne: sin 6,000 km, iad 16,000 < ams 16,500
    ] {
        let (got, _, _) = ask_ecs(s.udp, "api.example.com.", RecordType::AAAA, subnet);
        assert_eq!(got, first_two.map(String::from).to_vec(), "{subnet}");
    }
    let (got, _, _) = ask_ecs(s.udp, "web.example.com.", RecordType::A, "214.0.1.0/24");
    assert_eq!(got, vec![SIN.to_string()]);
    let out = Command::new(env!("CARGO_BIN_EXE_waypost"))
        .args(["lookup", "--config"])
        .arg(dir.0.join("waypost.toml"))
        .args(["--client", "2001:218::1", "web.example.com"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("rule:     nearest: by distance") && text.contains("order:    sin > ams > iad"), "{text}");
}

/// A DB-less server with six data centres, one per continent, fed by the synthetic
/// loopback database: each loopback source address is a different continent.
#[test]
fn loopback_sources_without_ecs_get_per_continent_answers() {
    let dir = TempDir::new("loopback");
    let mut cfg = format!(
        "version = 1\n[server]\nzones-dir = {:?}\n[geo]\ndatabase = {:?}\n[geo.map]\ndefault = [\"na\"]\n[geo.map.continent]\n",
        root().join("zones").display().to_string(),
        data("geo/loopback-geo-test.mmdb").display().to_string()
    );
    let conts = ["NA", "EU", "SA", "AS", "OC", "AF"];
    for c in conts {
        cfg += &format!("{c} = [\"{}\"]\n", c.to_lowercase());
    }
    for (i, c) in conts.iter().enumerate() {
        cfg += &format!("[datacenters.{}]\nlocation = [0.0, 0.0]\nservices = {{ \"web.example.com.\" = [\"192.0.2.{}\"] }}\n", c.to_lowercase(), 101 + i);
    }
    cfg += "[services.\"web.example.com.\"]\nttl = 30\n";
    let s = start_with(&dir, &cfg);
    let q = query("web.example.com.", RecordType::A, None).to_vec().unwrap();
    for (i, c) in conts.iter().enumerate() {
        let src = format!("127.0.0.{}", i + 1);
        let sock = UdpSocket::bind((src.as_str(), 0)).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        sock.send_to(&q, s.udp).unwrap();
        let mut buf = [0u8; 2048];
        let n = sock.recv(&mut buf).unwrap();
        let r = Message::from_vec(&buf[..n]).unwrap();
        assert_eq!(rdata(&r), vec![format!("192.0.2.{}", 101 + i)], "source {src} is {c}");
        assert!(r.edns.is_none(), "no ECS in, no ECS out");
    }
}

#[test]
fn weighted_answers_are_stable_per_subnet_and_follow_the_weights() {
    let s = example();
    let mut counts: HashMap<String, u32> = HashMap::new();
    let n = 3000u32;
    for i in 0..n {
        // Subnets that no override or database network covers: the default order, all three data centres.
        let subnet = format!("100.{}.{}.0/24", 64 + (i / 250) % 64, i % 250);
        let (got, sc, _) = ask_ecs(s.udp, "cdn.example.com.", RecordType::A, &subnet);
        let again = ask_ecs(s.udp, "cdn.example.com.", RecordType::A, &subnet.replace(".0/24", ".77/32")).0;
        assert_eq!(got, again, "stable within {subnet}");
        assert!(sc.is_some());
        let dc = match got.first().map(String::as_str) {
            Some("192.0.2.12") => "ams",
            Some("198.51.100.12") => "iad",
            Some("cdn-sin.example.net.") => "sin",
            other => panic!("unexpected answer {other:?} for {subnet}"),
        };
        *counts.entry(dc.into()).or_default() += 1;
    }
    for (dc, weight) in [("ams", 3.0 / 5.0), ("iad", 1.0 / 5.0), ("sin", 1.0 / 5.0)] {
        let share = counts[dc] as f64 / n as f64;
        assert!((share - weight).abs() < 0.03, "{dc}: {share:.3} vs weight {weight:.3} ({counts:?})");
    }
}

pub fn copy_db(src: &str, dst: &Path) {
    // Replace by rename, as the docs say: write beside it, then move over it.
    let tmp = dst.with_extension("new");
    std::fs::copy(data(src), &tmp).unwrap();
    std::fs::rename(&tmp, dst).unwrap();
}

#[test]
fn a_replaced_database_is_picked_up_and_a_corrupt_one_rejected() {
    let dir = TempDir::new("dbswap");
    let db: PathBuf = dir.0.join("geo.mmdb");
    copy_db("geo/loopback-geo-test.mmdb", &db);
    let cfg = example_config(&[]).replace(&format!("{:?}", root().join("tests/data/geo/GeoIP2-City-Test.mmdb").display().to_string()), &format!("{:?}", db.display().to_string()));
    let s = start_with(&dir, &cfg);
    let web = |s: &TestServer| ask_ecs(s.udp, "web.example.com.", RecordType::A, "81.2.69.160/27").0;
    assert_eq!(web(&s), vec![IAD.to_string()], "81.2.69.160 is unknown to the synthetic database");

    copy_db("geo/GeoIP2-City-Test.mmdb", &db);
    wait("the new database to be used", 15, || web(&s) == vec![AMS.to_string()]);

    copy_db("geo/GeoIP2-City-Test-Broken-Double-Format.mmdb", &db);
    let failures = |s: &TestServer| {
        let (_, m) = http(s.http, "GET", "/metrics");
        m.lines().find(|l| l.starts_with("waypost_reloads_total{result=\"failure\"}")).map(|l| l.rsplit(' ').next().unwrap().to_string())
    };
    wait("the corrupt database to be rejected", 15, || failures(&s).as_deref() == Some("1"));
    assert_eq!(web(&s), vec![AMS.to_string()], "the previous database keeps serving");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(failures(&s).as_deref(), Some("1"), "a rejected file is not retried until it changes");
}

#[test]
fn malformed_ecs_is_formerr() {
    let s = example();
    let mut q = query("web.example.com.", RecordType::A, Some(1232));
    // SCOPE PREFIX-LENGTH must be 0 in queries (RFC 7871 §6).
    q.edns.as_mut().unwrap().options_mut().insert(EdnsOption::Subnet(ClientSubnet::new("192.0.2.0".parse().unwrap(), 24, 8)));
    let r = udp(s.udp, &q);
    assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
}

#[test]
fn lookup_explains_answers_on_the_cli_and_over_http() {
    let out = Command::new(env!("CARGO_BIN_EXE_waypost"))
        .current_dir(root())
        .args(["lookup", "--client", "81.2.69.160/27", "web.example.com", "A"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for want in [
        "network:  81.2.69.160/27",
        "country GB continent EU",
        "rule:     city GB/London (geo.map.city.\"GB/London\")\n",
        "order:    ams > iad > sin",
        "rcode:    NOERROR (authoritative)",
        "ecs scope: /27",
        "web.example.com. 60 IN A 192.0.2.10",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    let (status, body) = http(example().http, "GET", "/v1/lookup?client=175.16.199.1/24&name=web.example.com&type=A");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["geo"]["order"], serde_json::json!(["sin", "ams", "iad"]));
    assert_eq!(v["geo"]["rule"], serde_json::json!({"kind": "continent", "key": "AS"}));
    assert_eq!(v["rule_text"], "continent AS (geo.map.continent.AS)");
    assert_eq!((&v["rcode"], &v["rcode_value"]), (&serde_json::json!("NOERROR"), &serde_json::json!(0)));
    assert_eq!(v["ecs_scope"], 24);
    assert_eq!(v["answer"][0], "web.example.com. 60 IN A 203.0.113.10");
}

/// The shipped zone has `www CNAME web`, and web is a service: lookup follows the CNAME
/// and explains the service's answer, on the command line and over HTTP.
#[test]
fn lookup_follows_a_cname_to_a_service() {
    let out = Command::new(env!("CARGO_BIN_EXE_waypost"))
        .current_dir(root())
        .args(["lookup", "--client", "81.2.69.160/27", "www.example.com", "A"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for want in [
        "cname:    www.example.com. -> web.example.com.\n",
        "service:  web.example.com. (policy failover)\n",
        "rule:     city GB/London (geo.map.city.\"GB/London\")\n",
        "order:    ams > iad > sin\n",
        "rcode:    NOERROR (authoritative)\n",
        "www.example.com. 3600 IN CNAME web.example.com.",
        "web.example.com. 60 IN A 192.0.2.10",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    assert!(!text.contains("service:  none"), "{text}");

    let (status, body) = http(example().http, "GET", "/v1/lookup?client=175.16.199.1/24&name=www.example.com&type=A");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["service"], "web.example.com.");
    assert_eq!(v["cname_chain"], serde_json::json!(["www.example.com.", "web.example.com."]));
    assert_eq!(v["geo"]["order"], serde_json::json!(["sin", "ams", "iad"]));
    assert_eq!(v["answer"][1], "web.example.com. 60 IN A 203.0.113.10");

    // Static data and errors: no service, and the rcode as dig prints it.
    let out = Command::new(env!("CARGO_BIN_EXE_waypost"))
        .current_dir(root())
        .args(["lookup", "--client", "81.2.69.160", "nothere.example.com", "A"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("service:  none") && text.contains("rcode:    NXDOMAIN (authoritative)"), "{text}");
    let out = Command::new(env!("CARGO_BIN_EXE_waypost"))
        .current_dir(root())
        .args(["lookup", "--client", "81.2.69.160", "example.org", "A"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("rcode:    REFUSED\n"), "{text}");
}

/// Runs `waypost check` on the example config with its zones directory replaced by one
/// holding `zone_text` as example.com.zone and `edit` applied to the config text; returns
/// the exit code, stdout and the zone file's path.
fn check_example(tag: &str, zone_text: &str, edit: impl Fn(String) -> String) -> (Option<i32>, String, PathBuf) {
    let dir = TempDir::new(tag);
    let zones = dir.0.join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    std::fs::write(zones.join("example.com.zone"), zone_text).unwrap();
    let cfg = example_config(&[]).replace(&format!("zones-dir = {:?}", root().join("zones").display().to_string()), &format!("zones-dir = {:?}", zones.display().to_string()));
    std::fs::write(dir.0.join("waypost.toml"), edit(cfg)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_waypost")).args(["check", "--config"]).arg(dir.0.join("waypost.toml")).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), zones.join("example.com.zone"))
}

#[test]
fn check_rejects_a_service_name_with_zone_addresses() {
    let zone = "$TTL 60\n@ SOA ns1 h 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.1\nweb A 192.0.2.99\n";
    let (code, text, file) = check_example("svc-conflict", zone, |c| c);
    assert_eq!(code, Some(1), "{text}");
    let want = format!("{}:5: web.example.com. is a service", file.display());
    assert!(text.contains(&want), "want {want:?} in:\n{text}");
}

/// A service below a DNAME would always be substituted: `waypost check` says so with the
/// DNAME's file and line.
#[test]
fn check_rejects_a_service_below_a_dname() {
    let zone = "$TTL 60\n@ SOA ns1 h 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.1\nold DNAME new.example.com.\n";
    let (code, text, file) = check_example("svc-dname", zone, |c| {
        assert!(c.contains("\"web.example.com.\""));
        c.replace("\"web.example.com.\"", "\"web.old.example.com.\"")
    });
    assert_eq!(code, Some(1), "{text}");
    let want = format!("{}:5: service web.old.example.com. is below the DNAME at old.example.com.", file.display());
    assert!(text.contains(&want), "want {want:?} in:\n{text}");
}

/// A service below a delegation, and one outside every zone: each reported with the line
/// of the delegation's NS records, or of the service's key in the config.
#[test]
fn check_rejects_services_below_a_cut_or_outside_the_zones_at_their_lines() {
    let zone = "$TTL 60\n@ SOA ns1 h 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.1\nweb A 192.0.2.99\n; the cut\ndev NS ns.example.net.\n";
    let (code, text, file) = check_example("svc-cut", zone, |c| c.replace("\"web.example.com.\"", "\"web.dev.example.com.\""));
    assert_eq!(code, Some(1), "{text}");
    let want = format!("{}:7: service web.dev.example.com. is at or below the delegation dev.example.com.", file.display());
    assert!(text.contains(&want), "want {want:?} in:\n{text}");
    let (code, text, _) = check_example("svc-outside", zone, |c| c.replace("\"api.example.com.\"", "\"api.example.org.\""));
    assert_eq!(code, Some(1), "{text}");
    let line = text.lines().find(|l| l.contains("service api.example.org. is not inside any served zone")).unwrap_or_else(|| panic!("{text}"));
    let cfg = std::fs::read_to_string(root().join("waypost.toml")).unwrap();
    let key_line = 1 + cfg.lines().position(|l| l.starts_with("[services.\"api.example.com.\"]")).expect("the example has api.example.com");
    assert!(line.contains(&format!("waypost.toml:{key_line}: ")), "{line}");
}

/// A pre-signed zone's keys are not Waypost's: a service in it could only be answered
/// unsigned, which validators reject, so the config is refused.
#[test]
fn check_rejects_a_service_inside_a_pre_signed_zone() {
    let zone = "$TTL 60\n@ SOA ns1 h 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.1\n\
                @ DNSKEY 257 3 13 mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ==\n\
                @ RRSIG SOA 13 2 60 20301231000000 20200101000000 12345 example.com. AAAA\n\
                @ NSEC ns1 NS SOA RRSIG NSEC DNSKEY\nns1 NSEC example.com. A NSEC\n";
    let (code, text, _) = check_example("svc-signed", zone, |c| c);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("service web.example.com. is inside the signed zone example.com."), "{text}");
}

/// A Country-layout database (no city, no coordinates) routes by country and continent.
#[test]
fn country_layout_database_routes_by_continent() {
    let dir = TempDir::new("country-db");
    let cfg = example_config(&[]).replace(
        &format!("{:?}", root().join("tests/data/geo/GeoIP2-City-Test.mmdb").display().to_string()),
        &format!("{:?}", data("geo/GeoLite2-Country-Test.mmdb").display().to_string()),
    );
    let s = start_with(&dir, &cfg);
    let (got, sc, _) = ask_ecs(s.udp, "web.example.com.", RecordType::A, "81.2.69.160/27");
    assert_eq!((got, sc), (vec![AMS.to_string()], Some(27)));
    let (got, _, _) = ask_ecs(s.udp, "web.example.com.", RecordType::A, "2001:218::/48");
    assert_eq!(got, vec![SIN.to_string()]);
}

/// DB-IP's country-lite layout has only `country_code`: the continent comes from the
/// built-in table. The database is written here with mmdb-writer in that layout.
#[test]
fn dbip_country_lite_layout_maps_countries_to_continents() {
    #[derive(serde::Serialize)]
    struct Flat {
        country_code: &'static str,
    }
    let dir = TempDir::new("dbip");
    let mut w = mmdb_writer::Writer::builder("DBIP-Country-Lite")
        .description(&[("en", "waypost test: DB-IP country lite layout")])
        .build_epoch(std::time::UNIX_EPOCH + Duration::from_secs(1_767_225_600))
        .build();
    for (net, cc) in [("198.18.0.0/24", "FR"), ("198.18.1.0/24", "ZA"), ("198.18.2.0/24", "NZ")] {
        w.insert(net.parse::<ipnet::IpNet>().unwrap(), &Flat { country_code: cc }).unwrap();
    }
    let db = dir.0.join("dbip-country.mmdb");
    std::fs::write(&db, w.to_bytes().unwrap()).unwrap();
    let cfg = example_config(&[]).replace(
        &format!("{:?}", root().join("tests/data/geo/GeoIP2-City-Test.mmdb").display().to_string()),
        &format!("{:?}", db.display().to_string()),
    );
    let s = start_with(&dir, &cfg);
    for (subnet, want) in [("198.18.0.0/24", AMS), ("198.18.1.0/24", AMS), ("198.18.2.0/24", SIN)] {
        let (got, sc, _) = ask_ecs(s.udp, "web.example.com.", RecordType::A, subnet);
        assert_eq!((got, sc), (vec![want.to_string()], Some(24)), "{subnet}");
    }
}
