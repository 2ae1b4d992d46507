//! Waypost signs zones itself (`[dnssec] key-dir`): unbound and kresd, trusting only the
//! DS that `waypost dnssec ds` prints, validate its answers; for P-256 and Ed25519 keys,
//! NSEC and NSEC3 denial, and 0x20 mixed-case names.

use std::path::Path;
use std::process::Command;

use crate::dnssec::{run, run_cases, skip, start_resolver, validator_cases, write_child_zone, Denial};
use crate::resolvers::{self, Kind};
use crate::support::{data, TempDir, TestServer};

/// The test zones and a config that signs example.com. with a new key; returns the
/// server and the DS for example.com.
fn serve_signed(dir: &Path, algorithm: &str, denial: &str) -> (TestServer, String) {
    serve_signed_with(dir, algorithm, denial, "", "")
}

/// [`serve_signed`] with more lines in `[server]` and in `[dnssec]`.
fn serve_signed_with(dir: &Path, algorithm: &str, denial: &str, server: &str, dnssec: &str) -> (TestServer, String) {
    let zones = dir.join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    for e in std::fs::read_dir(data("zones")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "zone") {
            std::fs::copy(&p, zones.join(p.file_name().unwrap())).unwrap();
        }
    }
    let config = dir.join("waypost.toml");
    std::fs::write(
        &config,
        format!("version = 1\n[server]\nzones-dir = \"zones\"\n{server}[dnssec]\nkey-dir = \"keys\"\ndenial = \"{denial}\"\n{dnssec}"),
    )
    .unwrap();
    let waypost = env!("CARGO_BIN_EXE_waypost");
    run(Command::new(waypost).args(["dnssec", "keygen", "example.com.", "--algorithm", algorithm, "--config"]).arg(&config));
    let ds = run(Command::new(waypost).args(["dnssec", "ds", "example.com.", "--config"]).arg(&config));
    let ds = ds.lines().find(|l| l.contains(" DS ")).expect("a DS line").to_string();
    (TestServer::start_config(&config), ds)
}

fn validates_waypost_signed(test: &str, kind: Kind, algorithm: &str, denial: &str) {
    if resolvers::find(kind).is_none() {
        skip(test, &format!("{} (package {})", kind.name(), kind.package()));
        return;
    }
    let dir = TempDir::new("signing");
    let (server, ds) = serve_signed(&dir.0, algorithm, denial);
    let child_dir = TempDir::new("signing-child");
    write_child_zone(&child_dir.0);
    let child = TestServer::start_zones(&child_dir.0);
    let resolver = start_resolver(kind, &ds, server.udp, child.udp).expect("found above");
    let cases = match denial {
        "nsec" => validator_cases(Denial::Nsec),
        "nsec3" => validator_cases(Denial::Nsec3),
        // RFC 9824: a name that does not exist is a secure NODATA (NOERROR) to a validator.
        _ => validator_cases(Denial::Nsec).into_iter().map(|mut c| {
            if c.rcode == 3 {
                c.rcode = 0;
            }
            c
        }).collect(),
    };
    let (lines, all_ok) = run_cases(&resolver, &cases);
    eprintln!("{test}: {} against waypost-signed example.com.:\n{}", kind.name(), lines.join("\n"));
    // 0x20: the same names in mixed case validate too (signatures are over lowercase names).
    let mixed = resolver.ask("HoSt.ExAmPlE.cOm.", 1);
    let mixed_ok = mixed.as_ref().is_ok_and(|a| a.rcode == 0 && a.ad);
    // And a name that does not exist (compact denial signs its NSEC for the lowercase name).
    let missing = resolver.ask("NoThErE2.ExAmPlE.cOm.", 1);
    let missing_ok = missing.as_ref().is_ok_and(|a| a.rcode == if denial == "compact" { 0 } else { 3 } && a.ad);
    assert!(all_ok && mixed_ok && missing_ok, "{test}:\n{}\nmixed case: {mixed:?}\n{missing:?}\n{}", lines.join("\n"), resolver.log());
}

#[test]
fn unbound_validates_a_p256_nsec_zone_signed_by_waypost() {
    validates_waypost_signed("unbound_validates_a_p256_nsec_zone_signed_by_waypost", Kind::Unbound, "ecdsap256sha256", "nsec");
}

#[test]
fn unbound_validates_an_ed25519_nsec3_zone_signed_by_waypost() {
    validates_waypost_signed("unbound_validates_an_ed25519_nsec3_zone_signed_by_waypost", Kind::Unbound, "ed25519", "nsec3");
}

#[test]
fn kresd_validates_an_ed25519_nsec_zone_signed_by_waypost() {
    validates_waypost_signed("kresd_validates_an_ed25519_nsec_zone_signed_by_waypost", Kind::Kresd, "ed25519", "nsec");
}

#[test]
fn unbound_validates_a_p256_compact_zone_signed_by_waypost() {
    validates_waypost_signed("unbound_validates_a_p256_compact_zone_signed_by_waypost", Kind::Unbound, "ecdsap256sha256", "compact");
}

#[test]
fn kresd_validates_an_ed25519_compact_zone_signed_by_waypost() {
    validates_waypost_signed("kresd_validates_an_ed25519_compact_zone_signed_by_waypost", Kind::Kresd, "ed25519", "compact");
}

/// kdig's answer text for `name` `qtype` (with DNSSEC records when `dnssec`), over UDP
/// unless `tcp`.
fn kdig(server: std::net::SocketAddr, name: &str, qtype: &str, dnssec: bool, tcp: bool) -> String {
    let mut c = Command::new("kdig");
    c.args([&format!("@{}", server.ip()), "-p", &server.port().to_string(), "+norec", name, qtype]);
    if dnssec {
        c.arg("+dnssec");
    }
    if tcp {
        c.arg("+tcp");
    }
    String::from_utf8_lossy(&c.output().expect("kdig").stdout).into_owned()
}

/// (RCODE, TC) of a DO=1 UDP query for `name` A sent from `sock`.
fn do_query(sock: &std::net::UdpSocket, server: std::net::SocketAddr, name: &str) -> Option<(u8, bool)> {
    use hickory_proto::rr::RecordType;
    let mut q = crate::support::query(name, RecordType::A, None);
    let mut edns = hickory_proto::op::Edns::new();
    edns.set_max_payload(1232).set_dnssec_ok(true);
    q.set_edns(edns);
    sock.send_to(&q.to_vec().unwrap(), server).unwrap();
    let mut buf = [0u8; 1500];
    let n = sock.recv(&mut buf).ok()?;
    (n >= 12).then(|| (buf[3] & 0x0f, buf[2] & 0x02 != 0))
}

/// Compact denial (RFC 9824) on the wire, and its signing budget: a name that does not
/// exist is NOERROR with `name NSEC \000.name RRSIG NSEC NXNAME` (NXDOMAIN without DO); a
/// wildcard answer is signed as owned by the name asked (no next-closer NSEC); past the
/// per-thread budget (5 signatures per second here; test servers have one UDP worker) UDP answers are empty
/// with TC=1 and never cached, a name signed before is still answered, and TCP (its own,
/// larger budget) signs.
#[test]
fn compact_denial_answers_nodata_for_missing_names_within_a_signing_budget() {
    if Command::new("kdig").arg("-V").output().is_err() {
        skip("compact_denial_answers_nodata_for_missing_names_within_a_signing_budget", "kdig (package knot-dnsutils)");
        return;
    }
    let dir = TempDir::new("signing-compact");
    let (server, ds) = serve_signed_with(&dir.0, "ecdsap256sha256", "compact", "", "compact-signing-rate = 5\n");
    let a = kdig(server.udp, "nothere.example.com.", "A", true, false);
    assert!(a.contains("status: NOERROR"), "{a}");
    assert!(a.contains("NSEC\t\\000.nothere.example.com.") && (a.contains("TYPE128") || a.contains("NXNAME")), "{a}");
    assert!(a.contains("RRSIG\tNSEC 13 3 ") && a.contains("RRSIG\tSOA"), "{a}");
    let plain = kdig(server.udp, "nothere.example.com.", "A", false, false);
    assert!(plain.contains("status: NXDOMAIN") && !plain.contains("NSEC"), "{plain}");
    // A wildcard answer: its RRSIG counts the labels of the name asked; no NSEC needed.
    let w = kdig(server.udp, "x.wild.example.com.", "A", true, false);
    assert!(w.contains("RRSIG\tA 13 4 ") && !w.contains("\tNSEC\t"), "{w}");
    // Wildcard NODATA: the NSEC of the name asked, with the wildcard's types.
    let wn = kdig(server.udp, "y.wild.example.com.", "MX", true, false);
    assert!(wn.contains("NSEC\t\\000.y.wild.example.com. A TXT RRSIG NSEC") && wn.contains("status: NOERROR"), "{wn}");
    // An existing name's NODATA: made with the zone, next name \000.name too.
    let nd = kdig(server.udp, "host.example.com.", "MX", true, false);
    assert!(nd.contains("NSEC\t\\000.host.example.com."), "{nd}");

    // delv, trusting only the DS, validates the compact answers (when installed).
    if Command::new("delv").arg("-v").output().is_ok() {
        let f: Vec<&str> = ds.split_whitespace().collect();
        let anchor = dir.0.join("anchor.conf");
        std::fs::write(&anchor, format!("trust-anchors {{\n  example.com. static-ds {} {} {} \"{}\";\n}};\n", f[3], f[4], f[5], f[6])).unwrap();
        for (name, qtype) in [("gone.example.com.", "A"), ("z.wild.example.com.", "A"), ("w.wild.example.com.", "MX"), ("b.c.example.com.", "A")] {
            let (ok, text) = delv("127.0.0.1", server.udp, &anchor, name, qtype);
            assert!(ok, "delv: {name} {qtype}:\n{text}");
        }
    }

    // The budget refills (5 per second) after what was signed above.
    std::thread::sleep(std::time::Duration::from_millis(1200));
    // A flood of names that do not exist, from one socket, as fast as answers come.
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(2))).unwrap();
    let t0 = std::time::Instant::now();
    let mut signed = Vec::new();
    let mut truncated = Vec::new();
    for i in 0..60 {
        let name = format!("flood{i}.example.com.");
        match do_query(&sock, server.udp, &name) {
            Some((0, false)) => signed.push(name),
            Some((0, true)) => truncated.push(name),
            other => panic!("{name}: {other:?}"),
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    // The budget so far (those above, and a burst of 5), plus its refill while flooding.
    let budget = 5.0 + 5.0 * secs + 5.0;
    assert!((signed.len() as f64) <= budget && truncated.len() >= 60usize.saturating_sub(budget as usize), "{} signed, {} truncated in {secs:.2} s", signed.len(), truncated.len());
    // A name signed before is answered from the thread's cache, budget or not (here in
    // other case, so not from the answer cache, which keys on the query's bytes); a
    // truncated one is not cached: over TCP (its own budget) it is signed.
    assert!(!signed.is_empty(), "nothing signed in the flood");
    assert_eq!(do_query(&sock, server.udp, &signed[0].to_uppercase()), Some((0, false)), "{signed:?}");
    let tcp = kdig(server.tcp, &truncated[0], "A", true, true);
    assert!(tcp.contains("status: NOERROR") && tcp.contains(&format!("NSEC\t\\000.{}", truncated[0])), "{tcp}");
    let (_, metrics) = crate::support::http(server.http, "GET", "/metrics");
    let value = |name: &str| metrics.lines().find(|l| l.starts_with(name)).and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok()).unwrap_or(0);
    assert!(value("waypost_compact_denial_truncated_total") >= truncated.len() as u64, "{metrics}");
    assert!(value("waypost_compact_denial_signatures_total") >= signed.len() as u64 + 3, "{metrics}");
    assert!(value("waypost_compact_denial_cache_hits_total") >= 1, "{metrics}");
    let (_, body) = crate::support::http(server.http, "GET", "/v1/status");
    assert!(body.contains("\"denial\":\"compact\""), "{body}");
}

#[test]
fn kresd_validates_a_p256_nsec3_zone_signed_by_waypost() {
    validates_waypost_signed("kresd_validates_a_p256_nsec3_zone_signed_by_waypost", Kind::Kresd, "ecdsap256sha256", "nsec3");
}

/// Bad key input is refused with the file and the reason; the previous state serves.
#[test]
fn a_key_for_a_zone_not_served_or_a_broken_key_is_refused_with_its_file() {
    let dir = TempDir::new("signing-bad");
    let zones = dir.0.join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    std::fs::copy(data("zones/other.test.zone"), zones.join("other.test.zone")).unwrap();
    let config = dir.0.join("waypost.toml");
    std::fs::write(&config, "version = 1\n[server]\nzones-dir = \"zones\"\n[dnssec]\nkey-dir = \"keys\"\n").unwrap();
    let waypost = env!("CARGO_BIN_EXE_waypost");
    let key = run(Command::new(waypost).args(["dnssec", "keygen", "nowhere.test.", "--config"]).arg(&config));
    let out = Command::new(waypost).args(["check", "--config"]).arg(&config).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains(".private: a key for nowhere.test., which is not a served zone"), "{text}");
    // A truncated private key.
    let private = Path::new(key.trim()).with_extension("private");
    std::fs::write(&private, "Private-key-format: v1.3\nAlgorithm: 13 (ECDSAP256SHA256)\nPrivateKey: AAAA\n").unwrap();
    let out = Command::new(waypost).args(["check", "--config"]).arg(&config).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("{}: the private key does not match the DNSKEY", private.display())), "{text}");
}

/// `delv` (BIND's validating stub) sent from `source`, trusting only `anchor`: the answer
/// lines, and whether it says "fully validated".
fn delv(source: &str, server: std::net::SocketAddr, anchor: &Path, name: &str, qtype: &str) -> (bool, String) {
    let out = Command::new("delv")
        .args(["-b", source, &format!("@{}", server.ip()), "-p", &server.port().to_string(), "-a"])
        .arg(anchor)
        .args(["+root=example.com", name, qtype])
        .output()
        .expect("delv");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (text.contains("; fully validated") || text.contains("; negative response, fully validated"), text)
}

/// The shipped example (zone and geo config) with the synthetic loopback GeoIP database
/// (127.0.0.1 US, .2 EU, .4 AS), signed by Waypost with a new key, admin token "t", sin
/// without IPv6 for web, `denial` "nsec" or "nsec3"; returns the server and the DS line.
fn serve_signed_geo(dir: &Path, denial: &str) -> (TestServer, String) {
    let db = data("geo/loopback-geo-test.mmdb").display().to_string();
    let shipped_db = format!("{:?}", Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/geo/GeoIP2-City-Test.mmdb").display().to_string());
    let cfg = crate::geo::example_config(&[("\"web.example.com.\" = [\"203.0.113.10\", \"2001:db8:c::10\"]", "\"web.example.com.\" = [\"203.0.113.10\"]")])
        .replace(&shipped_db, &format!("{db:?}"))
        + &format!("\n[health]\nadmin-token = \"t\"\n[dnssec]\nkey-dir = \"keys\"\ndenial = \"{denial}\"\n");
    let config = dir.join("waypost.toml");
    std::fs::write(&config, cfg).unwrap();
    let waypost = env!("CARGO_BIN_EXE_waypost");
    run(Command::new(waypost).args(["dnssec", "keygen", "example.com.", "--config"]).arg(&config));
    let ds = run(Command::new(waypost).args(["dnssec", "ds", "example.com.", "--config"]).arg(&config));
    let ds = ds.lines().find(|l| l.contains(" DS ")).expect("a DS line").to_string();
    (TestServer::start_config(&config), ds)
}

/// unbound and kresd, each sending from addresses the loopback GeoIP database puts in the
/// US, EU and Asia and trusting only the zone's DS, validate (AD) each region's geo answer,
/// a wildcard CNAME and a CNAME into a service, a service's NODATA, NXDOMAIN, a mixed-case
/// name, and, with fresh caches after ams is drained, the EU answer that moved to iad.
fn resolvers_validate_geo_answers(test: &str, kind: Kind, denial: &str) {
    if resolvers::find(kind).is_none() {
        skip(test, &format!("{} (package {})", kind.name(), kind.package()));
        return;
    }
    let dir = TempDir::new("signing-geo-resolvers");
    let (server, ds) = serve_signed_geo(&dir.0, denial);
    let from = |last: u8| crate::dnssec::start_resolver_from(kind, &ds, server.udp, server.udp, Some([127, 0, 0, last].into())).expect("found above");
    let mut report = Vec::new();
    let mut all = true;
    let mut check = |r: &resolvers::Resolver, what: &str, name: &str, qtype: u16, rcode: u16, want: &str| {
        let got = r.ask(name, qtype);
        let good = got.as_ref().is_ok_and(|a| a.ad && a.rcode == rcode && a.text.contains(want) && (want.is_empty() || a.answers > 0));
        report.push(format!("{} {what}: {name} {qtype}: {}", if good { "ok  " } else { "FAIL" }, got.as_ref().map_or_else(|e| e.clone(), |a| format!("{}\n{}", a.summary(), a.text))));
        all &= good;
    };
    let (us, eu, asia) = (from(1), from(2), from(4));
    check(&us, "US → iad", "web.example.com.", 1, 0, "198.51.100.10");
    check(&eu, "EU → ams", "web.example.com.", 1, 0, "192.0.2.10");
    check(&asia, "AS → sin", "web.example.com.", 1, 0, "203.0.113.10");
    check(&eu, "nearest-n union", "api.example.com.", 28, 0, "2001:db8:a::11");
    check(&eu, "CNAME into a service", "www.example.com.", 1, 0, "192.0.2.10");
    check(&asia, "wildcard CNAME into a service", "shop.apps.example.com.", 1, 0, "203.0.113.10");
    check(&asia, "service NODATA: sin has no IPv6 for web", "web.example.com.", 28, 0, "");
    check(&us, "NODATA at a service name", "web.example.com.", 15, 0, "");
    // RFC 9824: compact denial answers a name that does not exist with NOERROR.
    check(&us, "NXDOMAIN", "nothere.example.com.", 1, if denial == "compact" { 0 } else { 3 }, "");
    check(&eu, "mixed case (0x20)", "WeB.ExAmPlE.cOm.", 1, 0, "192.0.2.10");
    let (status, body) = crate::health::admin(&server, "PUT", "/v1/admin/datacenters/ams", Some("t"), r#"{"action":"drain"}"#);
    assert_eq!(status, 200, "{body}");
    // The drain is published within a moment; a new resolver has nothing cached.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !web_a_from(server.udp, [127, 0, 0, 2]).contains(&"198.51.100.10".to_string()) {
        assert!(std::time::Instant::now() < deadline, "the drain did not move EU to iad");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let eu_after = from(2);
    check(&eu_after, "EU after draining ams → iad", "web.example.com.", 1, 0, "198.51.100.10");
    let logs = format!("{}\n{}", us.log(), eu.log());
    eprintln!("{test}: {} ({denial}):\n{}", kind.name(), report.join("\n"));
    assert!(all, "{test}:\n{}\n{logs}", report.join("\n"));
}

/// The A records of web.example.com. asked directly from `source` (no resolver, no cache).
fn web_a_from(server: std::net::SocketAddr, source: [u8; 4]) -> Vec<String> {
    use hickory_proto::rr::RecordType;
    let sock = std::net::UdpSocket::bind((std::net::Ipv4Addr::from(source), 0)).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(2))).unwrap();
    let q = crate::support::query("web.example.com.", RecordType::A, None);
    sock.send_to(&q.to_vec().unwrap(), server).unwrap();
    let mut buf = [0u8; 1500];
    let Ok(n) = sock.recv(&mut buf) else { return Vec::new() };
    hickory_proto::op::Message::from_vec(&buf[..n]).map(|m| crate::support::rdata(&m)).unwrap_or_default()
}

#[test]
fn unbound_validates_nsec_geo_answers_from_every_region_and_after_a_drain() {
    resolvers_validate_geo_answers("unbound_validates_nsec_geo_answers_from_every_region_and_after_a_drain", Kind::Unbound, "nsec");
}

#[test]
fn unbound_validates_compact_geo_answers_from_every_region_and_after_a_drain() {
    resolvers_validate_geo_answers("unbound_validates_compact_geo_answers_from_every_region_and_after_a_drain", Kind::Unbound, "compact");
}

#[test]
fn kresd_validates_nsec3_geo_answers_from_every_region_and_after_a_drain() {
    resolvers_validate_geo_answers("kresd_validates_nsec3_geo_answers_from_every_region_and_after_a_drain", Kind::Kresd, "nsec3");
}

/// Geo answers are signed too, and a health change picks other, already signed answers:
/// BIND's delv, sent from loopback addresses the synthetic GeoIP database puts on
/// different continents and trusting only the zone's DS, validates each region's answer,
/// a service's NODATA, and the answer after a data centre is drained.
#[test]
fn geo_answers_of_a_zone_waypost_signs_validate_in_every_region_and_after_a_drain() {
    if Command::new("delv").arg("-v").output().is_err() {
        skip("geo_answers_of_a_zone_waypost_signs_validate", "delv (package bind9-dnsutils)");
        return;
    }
    let dir = TempDir::new("signing-geo");
    let (server, ds) = serve_signed_geo(&dir.0, "nsec");
    let f: Vec<&str> = ds.split_whitespace().collect();
    let anchor = dir.0.join("anchor.conf");
    std::fs::write(&anchor, format!("trust-anchors {{\n  example.com. static-ds {} {} {} \"{}\";\n}};\n", f[3], f[4], f[5], f[6])).unwrap();

    let mut report = Vec::new();
    let mut check = |what: &str, source: &str, name: &str, qtype: &str, want: &str| {
        let (ok, text) = delv(source, server.udp, &anchor, name, qtype);
        let good = ok && text.contains(want);
        report.push(format!("{} {what}: {source} {name} {qtype} want {want:?}\n{text}", if good { "ok  " } else { "FAIL" }));
        good
    };
    let mut all = true;
    all &= check("US → iad", "127.0.0.1", "web.example.com.", "A", "198.51.100.10");
    all &= check("EU → ams", "127.0.0.2", "web.example.com.", "A", "192.0.2.10");
    all &= check("AS → sin", "127.0.0.4", "web.example.com.", "A", "203.0.113.10");
    all &= check("nearest-n union", "127.0.0.2", "api.example.com.", "AAAA", "2001:db8:a::11");
    all &= check("service NODATA: sin has no IPv6 for web", "127.0.0.4", "web.example.com.", "AAAA", "ncache nxrrset");
    all &= check("NODATA at a service name", "127.0.0.1", "web.example.com.", "MX", "ncache nxrrset");
    all &= check("CNAME into a service", "127.0.0.2", "www.example.com.", "A", "192.0.2.10");
    all &= check("mixed case (0x20)", "127.0.0.2", "WeB.ExAmPlE.cOm.", "A", "192.0.2.10");
    all &= check("NXDOMAIN", "127.0.0.1", "nothere.example.com.", "A", "ncache nxdomain");
    // Drain ams: EU clients go to iad, with answers signed when the snapshot was built.
    let (status, body) = crate::health::admin(&server, "PUT", "/v1/admin/datacenters/ams", Some("t"), r#"{"action":"drain"}"#);
    assert_eq!(status, 200, "{body}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !delv("127.0.0.2", server.udp, &anchor, "web.example.com.", "A").1.contains("198.51.100.10") {
        assert!(std::time::Instant::now() < deadline, "the drain did not move EU to iad");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    all &= check("EU after draining ams → iad", "127.0.0.2", "web.example.com.", "A", "198.51.100.10");
    assert!(all, "{}", report.join("\n"));
    // Status tells who signs the zone, with which key, and how.
    let (_, body) = crate::support::http(server.http, "GET", "/v1/status");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let zone = v["zones"].as_array().unwrap().iter().find(|z| z["zone"] == "example.com.").unwrap();
    assert_eq!((zone["signed"].as_bool(), zone["signed_by"].as_str(), zone["denial"].as_str()), (Some(true), Some("waypost"), Some("nsec")), "{zone}");
    assert_eq!(zone["keys"][0]["role"], "ksk", "{zone}");
    assert_eq!(zone["keys"][0]["state"], "active", "{zone}");
    assert!(zone["rrsig_earliest_expiry"].as_str().is_some() && zone["signatures"].as_u64().unwrap() > 10, "{zone}");
}

/// NXDOMAIN answers Waypost has sent, over UDP and TCP (from its metrics).
fn nxdomain_answers(http: std::net::SocketAddr) -> u64 {
    let (_, metrics) = crate::support::http(http, "GET", "/metrics");
    metrics
        .lines()
        .filter(|l| l.starts_with("waypost_dns_responses_total{") && l.contains("rcode=\"nxdomain\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// The key tags in the served DNSKEY RRset and in the RRSIGs over the SOA (with dig).
fn key_tags(server: std::net::SocketAddr) -> (Vec<u16>, Vec<u16>) {
    let dig = |qtype: &str, multi: bool| {
        let mut c = Command::new("dig");
        c.args([&format!("@{}", server.ip()), "-p", &server.port().to_string(), "+norec", "+dnssec", "+tcp", "example.com.", qtype]);
        c.arg(if multi { "+multi" } else { "+short" });
        String::from_utf8_lossy(&c.output().expect("dig").stdout).into_owned()
    };
    let mut keys: Vec<u16> = dig("DNSKEY", true).lines().filter_map(|l| l.split("key id = ").nth(1)).filter_map(|t| t.trim().parse().ok()).collect();
    keys.sort();
    let mut sigs: Vec<u16> = dig("SOA", false).lines().filter(|l| l.starts_with("SOA ")).filter_map(|l| l.split_whitespace().nth(6)?.parse().ok()).collect();
    sigs.sort();
    (keys, sigs)
}

/// A ZSK roll as BIND's tools plan it, start to finish while Waypost serves: the new ZSK
/// is made with `dnssec-keygen -S` (pre-published 10 s before the old one goes inactive
/// 20 s from now; the old one deleted 15 s later, set with `dnssec-settime`). Waypost
/// follows each step by itself (it reads the key timing every few seconds), and delv,
/// trusting only the DS, validates the answers at every moment. unbound and kresd (when
/// installed), started once both ZSKs are published, keep the DNSKEY set they cached then
/// and validate fresh names (a new wildcard expansion and a new NXDOMAIN each round)
/// through the switch to ZSK2 and ZSK1's removal. unbound asks Waypost for each (the test
/// checks it); kresd may answer fresh NXDOMAINs from NSEC records it cached (RFC 8198).
#[test]
fn a_zsk_roll_made_with_bind_tools_validates_at_every_step() {
    if Command::new("delv").arg("-v").output().is_err() || Command::new("dnssec-keygen").arg("-h").output().is_err() {
        skip("a_zsk_roll_made_with_bind_tools_validates_at_every_step", "delv and dnssec-keygen (packages bind9-dnsutils, bind9-utils)");
        return;
    }
    let dir = TempDir::new("signing-roll");
    let zones = dir.0.join("zones");
    let keys = dir.0.join("keys");
    std::fs::create_dir_all(&zones).unwrap();
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::copy(data("zones/example.com.zone"), zones.join("example.com.zone")).unwrap();
    let config = dir.0.join("waypost.toml");
    std::fs::write(&config, "version = 1\n[server]\nzones-dir = \"zones\"\n[dnssec]\nkey-dir = \"keys\"\n").unwrap();
    let keygen = |args: &[&str]| run(Command::new("dnssec-keygen").arg("-q").arg("-K").arg(&keys).args(args)).trim().to_string();
    keygen(&["-a", "ECDSAP256SHA256", "-f", "KSK", "-n", "ZONE", "example.com."]);
    let zsk1 = keygen(&["-a", "ECDSAP256SHA256", "-n", "ZONE", "example.com."]);
    run(Command::new("dnssec-settime").arg("-K").arg(&keys).args(["-I", "+20", "-D", "+35", &zsk1]));
    let zsk2 = keygen(&["-S", &zsk1, "-i", "10"]);
    let tag = |k: &str| -> u16 { k.rsplit('+').next().unwrap().parse().unwrap() };
    let (t1, t2) = (tag(&zsk1), tag(&zsk2));
    let ds = run(Command::new(env!("CARGO_BIN_EXE_waypost")).args(["dnssec", "ds", "example.com.", "--config"]).arg(&config));
    let f: Vec<&str> = ds.lines().find(|l| l.contains(" DS ")).unwrap().split_whitespace().collect();
    let anchor = dir.0.join("anchor.conf");
    std::fs::write(&anchor, format!("trust-anchors {{\n  example.com. static-ds {} {} {} \"{}\";\n}};\n", f[3], f[4], f[5], f[6])).unwrap();
    let server = TestServer::start_config(&config);

    // (both ZSKs published, ZSK2 signing, ZSK1 gone) must each be seen.
    let mut seen = [false; 3];
    let mut log = Vec::new();
    let ds_line = ds.lines().find(|l| l.contains(" DS ")).unwrap().to_string();
    let mut caching: Vec<resolvers::Resolver> = Vec::new();
    // Rounds in which every caching resolver validated, per step.
    let mut resolved = [0u32; 3];
    let mut round = 0u32;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(75);
    while std::time::Instant::now() < deadline && !seen.iter().all(|s| *s) {
        let (keys_now, sigs_now) = key_tags(server.udp);
        seen[0] |= keys_now.contains(&t1) && keys_now.contains(&t2) && sigs_now == vec![t1];
        seen[1] |= keys_now.contains(&t1) && sigs_now == vec![t2];
        seen[2] |= !keys_now.contains(&t1) && sigs_now == vec![t2];
        for (name, qtype) in [("host.example.com.", "A"), ("nothere.example.com.", "A"), ("x.wild.example.com.", "A")] {
            let (ok, text) = delv("127.0.0.1", server.udp, &anchor, name, qtype);
            assert!(ok, "not valid during the roll (DNSKEY tags {keys_now:?}, SOA signed by {sigs_now:?}): {name} {qtype}\n{text}\n{}", log.join("\n"));
        }
        let step = if !keys_now.contains(&t1) { 2 } else if sigs_now == vec![t2] { 1 } else { 0 };
        if caching.is_empty() && keys_now.contains(&t1) && keys_now.contains(&t2) {
            caching = [Kind::Unbound, Kind::Kresd].into_iter().filter_map(|k| crate::dnssec::start_resolver(k, &ds_line, server.udp, server.udp)).collect();
        }
        round += 1;
        let mut all = !caching.is_empty();
        let nxdomain_before = nxdomain_answers(server.http);
        for r in &caching {
            for (name, qtype, rcode) in [(format!("n{round}.wild.example.com."), 1, 0), (format!("nothere{round}.example.com."), 1, 3), ("host.example.com.".to_string(), 1, 0)] {
                let got = r.ask(&name, qtype);
                let ok = got.as_ref().is_ok_and(|a| a.ad && a.rcode == rcode);
                assert!(ok, "{} does not validate during the roll (DNSKEY tags {keys_now:?}, SOA signed by {sigs_now:?}): {name}: {got:?}\n{}\n{}", r.kind.name(), log.join("\n"), r.log());
                all &= ok;
            }
        }
        // unbound (aggressive-nsec off) asks Waypost for each fresh NXDOMAIN name, so it
        // validated a new answer; kresd may answer it from NSEC records it cached and
        // validated earlier (RFC 8198), so it is not counted.
        let asked = nxdomain_answers(server.http) - nxdomain_before;
        let unbound = caching.iter().filter(|r| matches!(r.kind, Kind::Unbound)).count() as u64;
        assert!(!all || asked >= unbound, "{asked} NXDOMAIN answers from Waypost for {unbound} unbound's fresh names");
        if all {
            resolved[step] += 1;
        }
        log.push(format!("{:?}: DNSKEY {keys_now:?}, SOA RRSIG {sigs_now:?}, caching resolvers {}", std::time::Instant::now(), caching.len()));
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
    assert!(seen.iter().all(|s| *s), "steps seen {seen:?} (ZSK1 {t1}, ZSK2 {t2}):\n{}", log.join("\n"));
    // With a validator installed, it validated after the switch and after the removal.
    if !caching.is_empty() {
        assert!(resolved[1] > 0 && resolved[2] > 0, "caching resolvers validated in rounds per step {resolved:?}:\n{}", log.join("\n"));
    }
}
