//! Where signing, services and transfers meet, generated rather than picked: every
//! combination of data-centre answers (A only, AAAA only, dual-stack, CNAME, and mixes
//! across data centres), policy (failover, nearest, nearest-n, weighted), all-down
//! policy (serve-all, nodata, fallback addresses, fallback CNAME) becomes one service of
//! one zone that Waypost signs; a fenced region (AS) and two unfenced ones (NA, EU) ask
//! through unbound, which trusts only the DS, in four states (all up, ams drained, iad
//! down, all down) and each denial mode. For each service: the name itself, a name below
//! it and a wildcard CNAME into it, for A, AAAA, TXT, MX and HTTPS; every answer must be
//! validated (AD) and equal to Waypost's own answer to the same client.
//!
//! For NSEC and NSEC3 (compact denial cannot be transferred) the same zone's AXFR copy
//! passes `dnssec-verify -z` and `ldns-verify-zone`, and knotd as TSIG secondary with
//! `dnssec-validation: on` serves it to an unbound that validates every answer too.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::dnssec::{run, skip};
use crate::resolvers::{self, ask_with, Answer, Kind, Resolver, Setup};
use crate::support::{fixed_port, TempDir, TestServer};
use crate::transfer::{knot_secondary_with, soa_serial, tool, wait_serial, SECRET};

const ZONE: &str = "example.test.";
const DCS: [&str; 3] = ["ams", "iad", "sin"];

#[derive(Clone, Copy, Debug)]
enum DcKind {
    V4,
    V6,
    Dual,
    Cname,
}

#[derive(Clone, Copy, Debug)]
enum Policy {
    Failover,
    Nearest,
    NearestN,
    Weighted,
}

#[derive(Clone, Copy, Debug)]
enum AllDown {
    ServeAll,
    NoData,
    FallbackAddresses,
    FallbackCname,
}

/// The answers per data centre (ams, iad, sin): each kind alone, and mixes.
const MIXES: [[DcKind; 3]; 8] = {
    use DcKind::*;
    [[V4, V4, V4], [V6, V6, V6], [Dual, Dual, Dual], [Cname, Cname, Cname], [V4, Dual, Cname], [V6, V4, Dual], [Dual, Cname, V6], [Cname, V6, V4]]
};
const POLICIES: [Policy; 4] = [Policy::Failover, Policy::Nearest, Policy::NearestN, Policy::Weighted];
const ALL_DOWN: [AllDown; 4] = [AllDown::ServeAll, AllDown::NoData, AllDown::FallbackAddresses, AllDown::FallbackCname];

/// One generated service.
struct Service {
    name: String,
    mix: [DcKind; 3],
    policy: Policy,
    all_down: AllDown,
    /// Left out of transfers (one service, where nothing is transferred), else the
    /// default data centre's answer.
    omit: bool,
}

fn services(transfers: bool) -> Vec<Service> {
    let mut out = Vec::new();
    for (p, &policy) in POLICIES.iter().enumerate() {
        for (m, &mix) in MIXES.iter().enumerate() {
            let i = out.len();
            out.push(Service { name: format!("s{i:02}.{ZONE}"), mix, policy, all_down: ALL_DOWN[(p + m) % ALL_DOWN.len()], omit: i == 7 && !transfers });
        }
    }
    out
}

fn zone_text(services: &[Service]) -> String {
    let mut z = format!(
        "$ORIGIN {ZONE}\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 300\n  NS ns1\n  TXT \"seams\"\nns1 A 192.0.2.1\n\
         t4 A 192.0.2.44\ntdual A 192.0.2.45\ntdual AAAA 2001:db8::45\n"
    );
    for (i, s) in services.iter().enumerate() {
        z += &format!("*.w{i:02} CNAME {}\n", s.name);
    }
    z
}

fn dc_answer(kind: DcKind, dc: usize, i: usize) -> String {
    let v4 = format!("\"{}.{}\"", ["192.0.2", "198.51.100", "203.0.113"][dc], 100 + i);
    let v6 = format!("\"2001:db8:{}::{}\"", ["a", "b", "c"][dc], 100 + i);
    match kind {
        DcKind::V4 => format!("[{v4}]"),
        DcKind::V6 => format!("[{v6}]"),
        DcKind::Dual => format!("[{v4}, {v6}]"),
        DcKind::Cname => format!("{{ cname = \"tdual.{ZONE}\" }}"),
    }
}

/// The config: the loopback GeoIP database (127.0.0.1 NA, .2 EU, .4 AS), AS fenced to
/// sin and ams, every generated service and a probe service that shows each state.
fn config_text(services: &[Service], denial: &str, notify: Option<u16>) -> String {
    let db = crate::support::data("geo/loopback-geo-test.mmdb");
    let mut c = format!(
        "version = 1\n[server]\nzones-dir = \"zones\"\n[geo]\ndatabase = {:?}\nfenced = [\"continent:AS\"]\n\
         [geo.map]\ndefault = [\"iad\", \"ams\", \"sin\"]\n[geo.map.continent]\nNA = [\"iad\", \"ams\", \"sin\"]\nEU = [\"ams\", \"iad\", \"sin\"]\nAS = [\"sin\", \"ams\"]\n",
        db.display().to_string()
    );
    for (d, dc) in DCS.iter().enumerate() {
        c += &format!("[datacenters.{dc}]\nlocation = [{}]\n[datacenters.{dc}.services]\n", ["52.37, 4.90", "39.04, -77.49", "1.35, 103.82"][d]);
        c += &format!("\"probe.{ZONE}\" = {}\n", dc_answer(DcKind::V4, d, 99));
        for (i, s) in services.iter().enumerate() {
            c += &format!("\"{}\" = {}\n", s.name, dc_answer(s.mix[d], d, i));
        }
    }
    c += &format!("[services.\"probe.{ZONE}\"]\nttl = 60\nall-down = \"nodata\"\n");
    for s in services {
        c += &format!("[services.\"{}\"]\nttl = 60\n", s.name);
        c += match s.policy {
            Policy::Failover => "policy = \"failover\"\n",
            Policy::Nearest => "policy = \"failover\"\norder = \"nearest\"\n",
            Policy::NearestN => "policy = \"nearest-n\"\nn = 2\n",
            Policy::Weighted => "policy = \"weighted\"\nweights = { ams = 2, iad = 1, sin = 1 }\n",
        };
        c += &match s.all_down {
            AllDown::ServeAll => "all-down = \"serve-all\"\n".to_string(),
            AllDown::NoData => "all-down = \"nodata\"\n".to_string(),
            AllDown::FallbackAddresses => "all-down = \"fallback\"\nfallback = [\"192.0.2.250\", \"2001:db8:f::250\"]\n".to_string(),
            AllDown::FallbackCname => format!("all-down = \"fallback\"\nfallback = {{ cname = \"t4.{ZONE}\" }}\n"),
        };
        if s.omit {
            c += "transfer = \"omit\"\n";
        }
    }
    c += &format!("[health]\nadmin-token = \"t\"\n[dnssec]\nkey-dir = \"keys\"\ndenial = \"{denial}\"\n");
    if let Some(port) = notify {
        c += &format!(
            "[tsig.keys]\nxfr = \"hmac-sha256:{SECRET}\"\n[transfer]\nallow = [{{ network = \"127.0.0.1\", key = \"xfr\" }}, {{ network = \"127.0.0.1\" }}]\nnotify = [{{ address = \"127.0.0.1:{port}\", key = \"xfr\" }}]\n"
        );
    }
    c
}

/// The states, each with how to reach it from the previous one (admin calls) and a probe
/// that shows it is published: (source, the probe's answer from there).
struct State {
    name: &'static str,
    calls: &'static [(&'static str, &'static str, &'static str)],
    probe: (u8, &'static str),
}

const STATES: [State; 4] = [
    State { name: "all up", calls: &[], probe: (1, "198.51.100.199") },
    State { name: "ams drained", calls: &[("PUT", "ams", "drain")], probe: (2, "198.51.100.199") },
    State { name: "iad down", calls: &[("DELETE", "ams", ""), ("PUT", "iad", "down")], probe: (1, "192.0.2.199") },
    State { name: "all down", calls: &[("PUT", "ams", "down"), ("PUT", "sin", "down")], probe: (1, "") },
];

/// Client regions: (loopback source, name).
const REGIONS: [(u8, &str); 3] = [(1, "NA"), (2, "EU"), (4, "AS (fenced)")];
const QTYPES: [(u16, &str); 5] = [(1, "A"), (28, "AAAA"), (16, "TXT"), (15, "MX"), (65, "HTTPS")];

fn source(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// An unbound trusting only `ds`, sending to `server` from `from`.
fn validator(ds: &str, server: SocketAddr, from: Option<IpAddr>) -> Resolver {
    let setup = Setup { trust_anchor: ds, zone: ZONE, server, child: "child.example.test.", child_server: server, source: from };
    Resolver::start(Kind::Unbound, &setup).expect("unbound is installed")
}

/// Asks every generated name and type through `resolver` and directly from `from` at
/// `server`; returns (answers checked, failures).
fn check_all(services: &[Service], resolver: &Resolver, server: SocketAddr, from: IpAddr, compact: bool) -> (usize, Vec<String>) {
    let mut failures = Vec::new();
    let mut checked = 0;
    for (i, s) in services.iter().enumerate() {
        let names = [(s.name.clone(), "name"), (format!("below.{}", s.name), "below"), (format!("any.w{i:02}.{ZONE}"), "wildcard")];
        for (name, what) in &names {
            for (qtype, tname) in QTYPES {
                checked += 1;
                let direct = ask_with(server, from, false, name, qtype, Duration::from_secs(4));
                let got = resolver.ask(name, qtype);
                let nx = if compact { 0 } else { 3 };
                let want_rcode = if *what == "below" { nx } else { 0 };
                let ok = match (&got, &direct) {
                    (Ok(g), Ok(d)) => g.ad && g.rcode == want_rcode && d.rcode == want_rcode && g.records == d.records,
                    _ => false,
                };
                if !ok {
                    let show = |a: &Result<Answer, String>| a.as_ref().map_or_else(|e| e.clone(), |a| format!("{}\n{}", a.summary(), a.text));
                    failures.push(format!(
                        "{name} {tname} ({what}; {:?} {:?} {:?}): resolver {}\n   waypost {}",
                        s.mix,
                        s.policy,
                        s.all_down,
                        show(&got),
                        show(&direct)
                    ));
                }
            }
        }
    }
    (checked, failures)
}

/// Sets up the state's overrides and waits until the probe shows it is published.
fn enter(server: &TestServer, state: &State) {
    for (method, dc, action) in state.calls {
        let body = if action.is_empty() { String::new() } else { format!("{{\"action\":\"{action}\"}}") };
        let (status, text) = crate::health::admin(server, method, &format!("/v1/admin/datacenters/{dc}"), Some("t"), &body);
        assert!(status == 200 || status == 204, "{method} {dc} {action}: {status} {text}");
    }
    let (from, want) = state.probe;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let a = ask_with(server.udp, source(from), false, &format!("probe.{ZONE}"), 1, Duration::from_secs(2));
        let seen = a.as_ref().is_ok_and(|a| if want.is_empty() { a.rcode == 0 && a.records.is_empty() } else { a.records.iter().any(|r| r.ends_with(want)) });
        if seen {
            return;
        }
        assert!(Instant::now() < deadline, "state {}: the probe never showed {want:?}: {a:?}", state.name);
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn combinations_validate(test: &str, denial: &str) {
    if resolvers::find(Kind::Unbound).is_none() {
        skip(test, "unbound (package unbound)");
        return;
    }
    let transfers = denial != "compact";
    let tools = transfers.then(|| (tool("knotd", test), tool("dnssec-verify", test), tool("ldns-verify-zone", test), tool("kdig", test)));
    if let Some((None, _, _, _) | (_, None, _, _) | (_, _, None, _) | (_, _, _, None)) = tools {
        return;
    }
    let services = services(transfers);
    let dir = TempDir::new("seams");
    let kport = transfers.then(fixed_port);
    let (server, ds) = serve_generated(&dir.0, &services, denial, kport);

    let mut report = Vec::new();
    let mut failures = Vec::new();
    let mut answers = 0;
    let mut combinations = 0;
    for state in &STATES {
        enter(&server, state);
        // One fresh resolver per region and state (no answer cached from another state).
        let results: Vec<(usize, Vec<String>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = REGIONS
                .iter()
                .map(|&(last, _)| {
                    let (ds, services) = (&ds, &services);
                    let udp = server.udp;
                    scope.spawn(move || {
                        let r = validator(ds, udp, Some(source(last)));
                        check_all(services, &r, udp, source(last), denial == "compact")
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for ((_, region), (n, f)) in REGIONS.iter().zip(results) {
            report.push(format!("{denial}, {}, {region}: {n} answers, {} failed", state.name, f.len()));
            answers += n;
            combinations += services.len();
            failures.extend(f.into_iter().map(|f| format!("[{} {region}] {f}", state.name)));
        }
    }

    if let (Some(kport), Some((_, Some(verify), Some(ldns), _))) = (kport, tools) {
        // The copy a secondary gets, checked by two verifiers.
        let copy = dir.0.join("copy.zone");
        std::fs::write(&copy, axfr_text(server.tcp)).unwrap();
        for (tool, args) in [(&verify, vec!["-z", "-o", ZONE]), (&ldns, vec![])] {
            let out = Command::new(tool).args(args).arg(&copy).output().unwrap();
            if !out.status.success() {
                failures.push(format!("{} rejects the AXFR copy:\n{}{}", tool.display(), String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)));
            }
        }
        // knotd, validating what it receives, serves the copy; unbound validates it there.
        let serial = soa_serial(server.udp, ZONE).expect("served");
        let knot_at: SocketAddr = format!("127.0.0.1:{kport}").parse().unwrap();
        let knot = knot_secondary_with(&dir.0, kport, server.tcp, "    dnssec-validation: on\n");
        wait_serial("knotd's validated transfer", &knot, knot_at, serial, 20);
        let r = validator(&ds, knot_at, None);
        let transferred: Vec<Service> = services.into_iter().filter(|s| !s.omit).collect();
        let (n, f) = check_all(&transferred, &r, knot_at, source(1), false);
        report.push(format!("{denial}, knotd's copy: {n} answers, {} failed", f.len()));
        answers += n;
        combinations += transferred.len();
        failures.extend(f.into_iter().map(|f| format!("[knotd] {f}")));
        if !knot.log().contains("DNSSEC, validation successful") {
            failures.push(format!("knotd did not validate the zone:\n{}", knot.log()));
        }
    }
    eprintln!("{test}: {combinations} combinations (service × state × client), {answers} answers validated\n{}", report.join("\n"));
    assert!(failures.is_empty(), "{test}: {} failures:\n{}", failures.len(), failures.iter().take(40).cloned().collect::<Vec<_>>().join("\n"));
}

/// The generated zone and config in `dir`, signed with a new key; the server and the DS.
fn serve_generated(dir: &std::path::Path, services: &[Service], denial: &str, notify: Option<u16>) -> (TestServer, String) {
    std::fs::create_dir_all(dir.join("zones")).unwrap();
    std::fs::write(dir.join(format!("zones/{ZONE}zone")), zone_text(services)).unwrap();
    let config = dir.join("waypost.toml");
    std::fs::write(&config, config_text(services, denial, notify)).unwrap();
    let waypost = env!("CARGO_BIN_EXE_waypost");
    run(Command::new(waypost).args(["dnssec", "keygen", ZONE, "--config"]).arg(&config));
    let ds = run(Command::new(waypost).args(["dnssec", "ds", ZONE, "--config"]).arg(&config));
    let ds = ds.lines().find(|l| l.contains(" DS ")).expect("a DS line").to_string();
    (TestServer::start_config(&config), ds)
}

/// A proof that shows a service name is made for the client who asked: two clients sending
/// the same bytes (a name below the service, which does not exist) get the service's NSEC
/// stating each one's own answer, not one client's answer from the other's cache entry.
/// s04 is A-only in ams (EU's first choice) and a CNAME in sin (AS's).
#[test]
fn a_service_names_nsec_in_a_proof_follows_the_client_even_from_the_answer_cache() {
    let test = "a_service_names_nsec_in_a_proof_follows_the_client_even_from_the_answer_cache";
    let Some(_) = tool("kdig", test) else { return };
    let services = services(false);
    assert!(matches!(services[4].mix, [DcKind::V4, DcKind::Dual, DcKind::Cname]));
    let dir = TempDir::new("seams-cache");
    let (server, _) = serve_generated(&dir.0, &services, "nsec", None);
    let nsec_of_s04 = |from: &str| {
        let out = Command::new("kdig")
            .args(["-b", from, &format!("@{}", server.udp.ip()), "-p", &server.udp.port().to_string(), "+dnssec", "+norec", "+noall", "+authority", "below.s04.example.test.", "A"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines().find(|l| l.starts_with("s04.example.test.") && l.contains("\tNSEC\t")).map(|l| l.split_whitespace().skip(5).collect::<Vec<_>>().join(" ")).unwrap_or(text)
    };
    for round in 0..2 {
        let (eu, asia) = (nsec_of_s04("127.0.0.2"), nsec_of_s04("127.0.0.4"));
        assert_eq!(eu, "A RRSIG NSEC", "round {round}: EU (ams, A only)");
        assert_eq!(asia, "CNAME RRSIG NSEC", "round {round}: AS (sin, a CNAME)");
    }
}

/// `kdig AXFR` of the zone as a zone file (the closing SOA left out).
fn axfr_text(server: SocketAddr) -> String {
    let out = Command::new("kdig").args([&format!("@{}", server.ip()), "-p", &server.port().to_string(), ZONE, "AXFR", "+nocomments", "+nostats", "+noheader"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines: Vec<&str> = text.lines().filter(|l| !l.starts_with(';') && !l.trim().is_empty()).collect();
    lines.pop();
    lines.join("\n") + "\n"
}

#[test]
fn generated_service_combinations_validate_with_nsec_and_their_transfer_verifies() {
    combinations_validate("generated_service_combinations_validate_with_nsec_and_their_transfer_verifies", "nsec");
}

#[test]
fn generated_service_combinations_validate_with_nsec3_and_their_transfer_verifies() {
    combinations_validate("generated_service_combinations_validate_with_nsec3_and_their_transfer_verifies", "nsec3");
}

#[test]
fn generated_service_combinations_validate_with_compact_denial() {
    combinations_validate("generated_service_combinations_validate_with_compact_denial", "compact");
}

/// `transfer = "omit"` for a service in a zone Waypost signs and transfers is refused with
/// the line: the name is in the signed chain, so the secondaries' copy could not verify.
#[test]
fn omitting_a_service_from_a_signed_transferred_zone_is_refused_with_its_line() {
    let dir = TempDir::new("seams-omit");
    let services = services(false);
    std::fs::create_dir_all(dir.0.join("zones")).unwrap();
    std::fs::write(dir.0.join(format!("zones/{ZONE}zone")), zone_text(&services)).unwrap();
    let config = dir.0.join("waypost.toml");
    let text = config_text(&services, "nsec3", Some(fixed_port()));
    std::fs::write(&config, &text).unwrap();
    let waypost = env!("CARGO_BIN_EXE_waypost");
    run(Command::new(waypost).args(["dnssec", "keygen", ZONE, "--config"]).arg(&config));
    let out = Command::new(waypost).arg("check").arg("--config").arg(&config).output().unwrap();
    let err = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().position(|l| l == "transfer = \"omit\"").unwrap() + 1;
    assert!(!out.status.success(), "accepted: {err}");
    assert!(err.contains(&format!("waypost.toml:{line}: service s07.example.test.: transfer = \"omit\"")), "{err}");
}

/// One version of the serial test's setup: what the zone file, config and key-dir say.
struct Version<'a> {
    denial: &'a str,
    /// `[dnssec]` lines beyond key-dir and denial.
    window: &'a str,
    /// ams's address for web (the answer transfers carry).
    ams: &'a str,
    /// Extra lines in the zone file (its serial stays 1).
    extra: &'a str,
    signed: bool,
}

fn write_setup(dir: &std::path::Path, s: &Version, kport: u16) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("zones")).unwrap();
    std::fs::write(
        dir.join("zones/example.test.zone"),
        format!("$ORIGIN {ZONE}\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 300\n  NS ns1\nns1 A 192.0.2.1\nwww CNAME web\n{}", s.extra),
    )
    .unwrap();
    let dnssec = if s.signed { format!("[dnssec]\nkey-dir = \"keys\"\ndenial = \"{}\"\n{}", s.denial, s.window) } else { String::new() };
    let config = format!(
        "version = 1\n[server]\nzones-dir = \"zones\"\nstate-dir = \"state\"\n\
         [datacenters.ams]\nlocation = [52.4, 4.9]\nservices = {{ \"web.{ZONE}\" = [\"{}\", \"2001:db8::10\"] }}\n\
         [datacenters.iad]\nlocation = [38.9, -77.0]\nservices = {{ \"web.{ZONE}\" = [\"198.51.100.10\"] }}\n\
         [geo.map]\ndefault = [\"ams\", \"iad\"]\n[services.\"web.{ZONE}\"]\nttl = 60\n\
         [tsig.keys]\nxfr = \"hmac-sha256:{SECRET}\"\n\
         [transfer]\nallow = [{{ network = \"127.0.0.1\", key = \"xfr\" }}]\nnotify = [{{ address = \"127.0.0.1:{kport}\", key = \"xfr\" }}]\n{dnssec}",
        s.ams
    );
    std::fs::write(dir.join("waypost.toml"), config).unwrap();
    dir.join("waypost.toml")
}

/// The serial rule (README, "Serials"): every change of what a zone serves that is not
/// an edit of its file's serial (the denial mode, the signature window, a new key, a key
/// retired, a service's transferred answer, data edited under the same file serial, the
/// keys taken away) gives a higher serial and a NOTIFY; knotd as TSIG secondary follows
/// each to the same serial and the same AXFR within 3 s; a restart serves the same
/// serial, never a lower one.
#[test]
fn every_change_raises_the_serial_and_knot_follows_each() {
    let test = "every_change_raises_the_serial_and_knot_follows_each";
    let (Some(_), Some(_), Some(_)) = (tool("knotd", test), tool("kdig", test), tool("dnssec-settime", test)) else { return };
    let dir = TempDir::new("seams-serial");
    let kport = fixed_port();
    let mut setup = Version { denial: "nsec", window: "", ams: "192.0.2.10", extra: "", signed: true };
    let config = write_setup(&dir.0, &setup, kport);
    let waypost = env!("CARGO_BIN_EXE_waypost");
    let keygen = || run(Command::new(waypost).args(["dnssec", "keygen", ZONE, "--config"]).arg(&config));
    let first_key = keygen().trim().to_string();
    let mut server = TestServer::start_config(&config);
    let knot_at: SocketAddr = format!("127.0.0.1:{kport}").parse().unwrap();
    let knot = knot_secondary_with(&dir.0, kport, server.tcp, "");
    let mut serial = soa_serial(server.udp, ZONE).expect("served");
    wait_serial("knotd's first transfer", &knot, knot_at, serial, 20);
    let mut report = vec![format!("start: {serial}")];

    let keys = dir.0.join("keys");
    let steps: Vec<(&str, Box<dyn Fn(&mut Version)>)> = vec![
        ("denial nsec → nsec3", Box::new(|s: &mut Version| s.denial = "nsec3")),
        ("a new signature window (signature-refresh 1h)", Box::new(|s: &mut Version| s.window = "signature-refresh = \"1h\"\nsignature-validity = \"2d\"\n")),
        ("a second key published and active", Box::new(|_: &mut Version| drop(keygen()))),
        (
            "the first key retired (dnssec-settime -I now -D now)",
            Box::new(|_: &mut Version| {
                let stem = std::path::Path::new(&first_key).file_stem().unwrap().to_string_lossy().into_owned();
                run(Command::new("dnssec-settime").arg("-K").arg(&keys).args(["-I", "now", "-D", "now", &stem]));
            }),
        ),
        ("the transferred service answer (ams's address)", Box::new(|s: &mut Version| s.ams = "192.0.2.11")),
        ("data edited under the same file serial", Box::new(|s: &mut Version| s.extra = "new A 192.0.2.99\n")),
        ("the keys taken away (the zone goes unsigned)", Box::new(|s: &mut Version| s.signed = false)),
    ];
    for (what, change) in &steps {
        change(&mut setup);
        write_setup(&dir.0, &setup, kport);
        let (code, body) = crate::support::http(server.http, "POST", "/v1/reload");
        assert_eq!(code, 200, "{what}: reload: {body}");
        let changed = Instant::now();
        let next = soa_serial(server.udp, ZONE).expect("served");
        assert!(serial_lt(serial, next), "{what}: the serial went from {serial} to {next}");
        wait_serial(what, &knot, knot_at, next, 3);
        let took = changed.elapsed();
        let (ours, _) = crate::transfer::axfr(server.tcp, ZONE, Some(SECRET));
        assert_eq!(crate::transfer::axfr(knot_at, ZONE, None).0, ours, "{what}: knotd's copy differs");
        report.push(format!("{what}: {serial} → {next}, knotd followed in {took:?}"));
        serial = next;
    }
    // A restart (same state-dir) serves the serial last served, not the file's.
    drop(server);
    server = TestServer::start_config(&config);
    let after = soa_serial(server.udp, ZONE).expect("served");
    assert_eq!(after, serial, "a restart changed the serial");
    report.push(format!("restart: {after}"));
    eprintln!("{test}:\n{}", report.join("\n"));
    assert!(knot.log().contains("IXFR"), "knotd took no IXFR:\n{}", knot.log());
}

fn serial_lt(a: u32, b: u32) -> bool {
    a != b && (b.wrapping_sub(a) as i32) > 0
}
