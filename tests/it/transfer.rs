//! Zone transfer (issue 15): knotd and nsd as TSIG secondaries of Waypost, following a
//! change by NOTIFY and IXFR; their copy equals Waypost's AXFR; no key or a wrong key
//! is refused; transfers over UDP; the journal's IXFR against a full AXFR, and its bound.
//! TSIG with every algorithm, its errors on the wire, every message of a large AXFR
//! signed; service names in transfers; a signed zone validated on knotd. Waypost as a
//! secondary: of knotd, of a test primary that misbehaves, expiry (also across a
//! restart), NOTIFY in with a key, IXFR falling back to AXFR; NOTIFY out retried.
//!
//! knotd, nsd and kdig come from Debian's knot, nsd and knot-dnsutils. Without them the
//! tests print SKIPPED and pass, except when `CI` is set (then they must run).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use waypost::config::transfer::{TsigAlgorithm, TsigKey};
use waypost::transfer::tsig;

use crate::support::{http, TempDir, TestServer};

pub const SECRET: &str = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=";
const WRONG: &str = "d3Jvbmd3cm9uZ3dyb25nd3Jvbmd3cm9uZ3dyb25nMTI=";

pub fn tool(name: &str, test: &str) -> Option<PathBuf> {
    let found = ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"].iter().map(|d| Path::new(d).join(name)).find(|p| p.is_file());
    if found.is_none() {
        assert!(std::env::var_os("CI").is_none(), "{test}: {name} is not installed, and CI is set");
        eprintln!("{test}: SKIPPED, {name} is not installed");
    }
    found
}

/// A daemon killed on drop.
pub struct Daemon(Child, PathBuf);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Daemon {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.1).unwrap_or_default()
    }
}

fn spawn(name: &'static str, cmd: &mut Command, log: PathBuf) -> Daemon {
    let f = std::fs::File::create(&log).unwrap();
    let child = cmd.stdout(f.try_clone().unwrap()).stderr(f).stdin(Stdio::null()).spawn().unwrap_or_else(|e| panic!("{name}: {e}"));
    Daemon(child, log)
}

/// `kdig` output lines (answer records only), whitespace normalised, sorted; TSIG left out.
fn kdig(server: SocketAddr, args: &[&str]) -> (Vec<String>, String) {
    let out = Command::new("kdig")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string(), "+noall", "+answer", "+time=3", "+retry=0"])
        .args(args)
        .output()
        .expect("kdig");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty() && !l.contains("\tTSIG\t") && !l.contains(" TSIG "))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    lines.sort();
    (lines, text)
}

pub fn axfr(server: SocketAddr, zone: &str, secret: Option<&str>) -> (Vec<String>, String) {
    let key = secret.map(|s| format!("hmac-sha256:xfr:{s}"));
    let mut args = vec![zone, "AXFR"];
    if let Some(k) = &key {
        args.extend(["-y", k]);
    }
    let (mut lines, text) = kdig(server, &args);
    // The SOA opens and closes the transfer: keep one.
    lines.dedup();
    (lines, text)
}

pub fn soa_serial(server: SocketAddr, zone: &str) -> Option<u32> {
    let (lines, _) = kdig(server, &[zone, "SOA", "+norec"]);
    lines.iter().find(|l| l.contains(" SOA ")).and_then(|l| l.split(' ').nth(6)).and_then(|s| s.parse().ok())
}

fn zone_text(serial: u32, extra: &str) -> String {
    format!(
        "$ORIGIN example.test.\n$TTL 300\n@ SOA ns1 hostmaster {serial} 3600 600 86400 300\n  NS ns1\n  NS ns2\nns1 A 192.0.2.1\nns2 A 192.0.2.2\nwww CNAME web\nweb TXT \"geo\"\n\
         sub NS ns.sub\nns.sub A 192.0.2.53\n*.wild TXT \"w\"\n{extra}"
    )
}

/// Waypost serving example.test with a geo service, transfers allowed to loopback with
/// the key, NOTIFY to `notify` (ports).
fn waypost(dir: &Path, notify: &[u16]) -> TestServer {
    TestServer::start_config(&write_config(dir, notify, "", ""))
}

/// The config of [`waypost`], with `zone_extra` added to the zone file and `extra`
/// appended to the config (lines before any `[table]` of it go into `[transfer]`).
fn write_config(dir: &Path, notify: &[u16], zone_extra: &str, extra: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("zones")).unwrap();
    std::fs::write(dir.join("zones/example.test.zone"), zone_text(1, zone_extra)).unwrap();
    let targets: Vec<String> = notify.iter().map(|p| format!("{{ address = \"127.0.0.1:{p}\", key = \"xfr\" }}")).collect();
    let config = format!(
        "version = 1\n[server]\nzones-dir = \"zones\"\n\
         [datacenters.ams]\nlocation = [52.4, 4.9]\nservices = {{ \"web.example.test.\" = [\"192.0.2.10\", \"2001:db8::10\"] }}\n\
         [datacenters.iad]\nlocation = [38.9, -77.0]\nservices = {{ \"web.example.test.\" = [\"198.51.100.10\"] }}\n\
         [geo.map]\ndefault = [\"ams\", \"iad\"]\n\
         [services.\"web.example.test.\"]\nttl = 60\n\
         [tsig.keys]\nxfr = \"hmac-sha256:{SECRET}\"\n\
         [transfer]\nallow = [{{ network = \"127.0.0.1\", key = \"xfr\" }}]\nnotify = [{}]\n{extra}",
        targets.join(", ")
    );
    std::fs::write(dir.join("waypost.toml"), config).unwrap();
    dir.join("waypost.toml")
}

fn knot_secondary(dir: &Path, port: u16, primary: SocketAddr) -> Daemon {
    knot_secondary_with(dir, port, primary, "")
}

/// knotd as a TSIG secondary of `primary`; `zone_extra` goes into its zone entry.
pub fn knot_secondary_with(dir: &Path, port: u16, primary: SocketAddr, zone_extra: &str) -> Daemon {
    let knotd = tool("knotd", "transfer").unwrap();
    std::fs::create_dir_all(dir.join("run")).unwrap();
    let conf = format!(
        "server:\n    rundir: \"{run}\"\n    listen: 127.0.0.1@{port}\n    udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1\n\
         log:\n  - target: stderr\n    any: debug\n\
         database:\n    storage: \"{run}\"\n\
         key:\n  - id: xfr\n    algorithm: hmac-sha256\n    secret: {SECRET}\n\
         remote:\n  - id: primary\n    address: {ip}@{pport}\n    key: xfr\n\
         acl:\n  - id: from_primary\n    address: 127.0.0.1\n    key: xfr\n    action: notify\n  - id: out\n    address: 127.0.0.1\n    action: transfer\n\
         zone:\n  - domain: example.test\n    storage: \"{run}\"\n    file: example.test.zone\n    master: primary\n    acl: [from_primary, out]\n    zonefile-load: none\n    journal-content: changes\n{zone_extra}",
        run = dir.join("run").display(),
        ip = primary.ip(),
        pport = primary.port()
    );
    std::fs::write(dir.join("knot.conf"), conf).unwrap();
    spawn("knotd", Command::new(knotd).arg("-c").arg(dir.join("knot.conf")), dir.join("knot.log"))
}

fn nsd_secondary(dir: &Path, port: u16, primary: SocketAddr) -> Daemon {
    let nsd = tool("nsd", "transfer").unwrap();
    let run = dir.join("nsd");
    std::fs::create_dir_all(&run).unwrap();
    let conf = format!(
        "server:\n    ip-address: 127.0.0.1\n    port: {port}\n    username: \"\"\n    zonesdir: \"{run}\"\n    database: \"\"\n    pidfile: \"{run}/nsd.pid\"\n\
         xfrdfile: \"{run}/xfrd.state\"\n    zonelistfile: \"{run}/zone.list\"\n    xfrdir: \"{run}\"\n    server-count: 1\n    verbosity: 2\n    logfile: \"{run}/nsd.log\"\n\
         remote-control:\n    control-enable: no\n\
         key:\n    name: xfr\n    algorithm: hmac-sha256\n    secret: \"{SECRET}\"\n\
         zone:\n    name: example.test\n    zonefile: \"example.test.zone\"\n    allow-notify: 127.0.0.1 xfr\n    request-xfr: {ip}@{pport} xfr\n    provide-xfr: 127.0.0.1 NOKEY\n",
        run = run.display(),
        ip = primary.ip(),
        pport = primary.port()
    );
    std::fs::write(dir.join("nsd.conf"), conf).unwrap();
    spawn("nsd", Command::new(nsd).args(["-d", "-c"]).arg(dir.join("nsd.conf")), run.join("nsd.log"))
}

pub fn wait_serial(what: &str, d: &Daemon, at: SocketAddr, serial: u32, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while soa_serial(at, "example.test.") != Some(serial) {
        assert!(Instant::now() < deadline, "{what}: serial {serial} did not arrive; log:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn knot_and_nsd_follow_waypost_by_notify_and_ixfr() {
    let (Some(_), Some(_), Some(_)) = (tool("knotd", "transfer"), tool("nsd", "transfer"), tool("kdig", "transfer")) else { return };
    let dir = TempDir::new("xfr");
    let (kport, nport) = (crate::support::fixed_port(), crate::support::fixed_port());
    let server = waypost(&dir.0, &[kport, nport]);
    let knot_at: SocketAddr = format!("127.0.0.1:{kport}").parse().unwrap();
    let nsd_at: SocketAddr = format!("127.0.0.1:{nport}").parse().unwrap();
    let knot = knot_secondary(&dir.0, kport, server.tcp);
    let nsd = nsd_secondary(&dir.0, nport, server.tcp);
    wait_serial("knotd's first transfer", &knot, knot_at, 1, 20);
    wait_serial("nsd's first transfer", &nsd, nsd_at, 1, 20);

    // Waypost's AXFR: the service carries its default region's first data centre, both families.
    let (ours, text) = axfr(server.tcp, "example.test.", Some(SECRET));
    assert!(ours.iter().any(|l| l == "web.example.test. 60 IN A 192.0.2.10"), "{text}");
    assert!(ours.iter().any(|l| l == "web.example.test. 60 IN AAAA 2001:db8::10"), "{text}");
    assert!(ours.iter().any(|l| l == "ns.sub.example.test. 300 IN A 192.0.2.53"), "glue travels: {text}");
    assert_eq!(axfr(knot_at, "example.test.", None).0, ours, "knotd's copy differs");
    assert_eq!(axfr(nsd_at, "example.test.", None).0, ours, "nsd's copy differs");

    // No key, a wrong key: refused (REFUSED; NOTAUTH with BADSIG).
    let (lines, text) = axfr(server.tcp, "example.test.", None);
    assert!(lines.is_empty() && text.contains("REFUSED"), "{text}");
    let (lines, text) = axfr(server.tcp, "example.test.", Some(WRONG));
    assert!(lines.is_empty() && text.contains("BADSIG"), "{text}");
    // AXFR over UDP is refused; IXFR over UDP gets the SOA (come back over TCP).
    let (lines, text) = kdig(server.udp, &["example.test.", "AXFR", "+notcp", "-y", &format!("hmac-sha256:xfr:{SECRET}")]);
    assert!(lines.is_empty() && text.contains("(UDP)") && text.contains("server replied with error 'REFUSED'"), "{text}");

    // A change: NOTIFY, then each secondary asks for IXFR and gets the difference.
    std::fs::write(dir.0.join("zones/example.test.zone"), zone_text(2, "new A 192.0.2.99\n")).unwrap();
    let (code, body) = http(server.http, "POST", "/v1/reload");
    assert_eq!(code, 200, "{body}");
    let changed = Instant::now();
    wait_serial("knotd after NOTIFY", &knot, knot_at, 2, 10);
    let knot_took = changed.elapsed();
    wait_serial("nsd after NOTIFY", &nsd, nsd_at, 2, 10);
    // The README quotes these figures.
    eprintln!("secondaries followed the change: knotd in {knot_took:?}, nsd in {:?}", changed.elapsed());
    let (ours, _) = axfr(server.tcp, "example.test.", Some(SECRET));
    assert!(ours.iter().any(|l| l == "new.example.test. 300 IN A 192.0.2.99"));
    assert_eq!(axfr(knot_at, "example.test.", None).0, ours, "knotd's copy after IXFR differs");
    assert_eq!(axfr(nsd_at, "example.test.", None).0, ours, "nsd's copy after IXFR differs");
    let klog = knot.log();
    assert!(klog.contains("IXFR") && klog.contains("notify"), "knotd did not take an IXFR after a NOTIFY:\n{klog}");

    // The metrics count what was served.
    let (_, metrics) = http(server.http, "GET", "/metrics");
    // Both secondaries took the change as an IXFR (their first copies came by AXFR).
    let ixfrs = metrics.lines().find(|l| l.starts_with("waypost_transfers_total{kind=\"ixfr\",result=\"ok\"}")).and_then(|l| l.split(' ').nth(1)).and_then(|n| n.parse::<u32>().ok());
    assert!(ixfrs >= Some(2), "{metrics}");
    assert!(metrics.contains("waypost_transfers_total{kind=\"axfr\",result=\"refused\"}"), "{metrics}");
    assert!(metrics.contains("waypost_transfers_total{kind=\"notify-out\",result=\"ok\"}"), "{metrics}");
}

#[test]
fn ixfr_from_the_journal_matches_axfr() {
    let Some(_) = tool("kdig", "transfer") else { return };
    let dir = TempDir::new("ixfr");
    let server = waypost(&dir.0, &[]);
    for serial in 2..=4 {
        std::fs::write(dir.0.join("zones/example.test.zone"), zone_text(serial, &format!("n{serial} A 192.0.2.{serial}\n"))).unwrap();
        assert_eq!(http(server.http, "POST", "/v1/reload").0, 200);
    }
    let key = format!("hmac-sha256:xfr:{SECRET}");
    // From serial 2: two changes, SOA-bracketed (kdig prints the IXFR sequence).
    let (_, text) = kdig(server.tcp, &["example.test.", "IXFR=2", "-y", &key]);
    assert!(text.contains("n3.example.test.") && text.contains("n4.example.test.") && !text.contains("ns.sub.example.test."), "{text}");
    // Up to date: the SOA alone; unknown serial: the whole zone.
    let (lines, text) = kdig(server.tcp, &["example.test.", "IXFR=4", "-y", &key]);
    assert_eq!(lines.len(), 1, "{text}");
    let (_, text) = kdig(server.tcp, &["example.test.", "IXFR=0", "-y", &key]);
    assert!(text.contains("ns.sub.example.test."), "{text}");
    // Over UDP: the current SOA only.
    let (lines, text) = kdig(server.udp, &["example.test.", "IXFR=2", "+notcp", "-y", &key]);
    assert!(lines.len() == 1 && lines[0].contains(" SOA ") && lines[0].contains(" 4 "), "{text}");
}

fn knot_primary(dir: &Path, port: u16, notify: SocketAddr, serial: u32, extra: &str) -> (Daemon, PathBuf) {
    let knotd = tool("knotd", "transfer").unwrap();
    let run = dir.join("primary");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("example.test.zone"), zone_text(serial, extra)).unwrap();
    let conf = format!(
        "server:\n    rundir: \"{run}\"\n    listen: 127.0.0.1@{port}\n    udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1\n\
         log:\n  - target: stderr\n    any: info\n\
         database:\n    storage: \"{run}\"\n\
         key:\n  - id: xfr\n    algorithm: hmac-sha256\n    secret: {SECRET}\n\
         remote:\n  - id: waypost\n    address: {ip}@{nport}\n    key: xfr\n\
         acl:\n  - id: to_waypost\n    address: 127.0.0.1\n    key: xfr\n    action: transfer\n\
         zone:\n  - domain: example.test\n    storage: \"{run}\"\n    file: example.test.zone\n    notify: waypost\n    acl: to_waypost\n    zonefile-load: difference\n    journal-content: changes\n",
        run = run.display(),
        ip = notify.ip(),
        nport = notify.port()
    );
    let conf_path = dir.join("primary.conf");
    std::fs::write(&conf_path, conf).unwrap();
    (spawn("knotd", Command::new(knotd).arg("-c").arg(&conf_path), dir.join("primary.log")), conf_path)
}

fn secondary_config(dir: &Path, primary_port: u16) -> PathBuf {
    secondary_config_with(dir, primary_port, SECRET)
}

fn secondary_config_with(dir: &Path, primary_port: u16, secret: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("zones")).unwrap();
    let config = format!(
        "version = 1\n[server]\nzones-dir = \"zones\"\n[tsig.keys]\nxfr = \"hmac-sha256:{secret}\"\n\
         [secondary.\"example.test.\"]\nprimary = \"127.0.0.1:{primary_port}\"\nkey = \"xfr\"\n"
    );
    std::fs::write(dir.join("waypost.toml"), config).unwrap();
    dir.join("waypost.toml")
}

fn secondary_status(server: &TestServer) -> serde_json::Value {
    crate::support::status(server.http)["secondaries"][0].clone()
}

#[test]
fn waypost_is_a_secondary_of_knot() {
    let (Some(_), Some(knotc), Some(_)) = (tool("knotd", "transfer"), tool("knotc", "transfer"), tool("kdig", "transfer")) else { return };
    let dir = TempDir::new("secondary");
    let kport = crate::support::fixed_port();
    let config = secondary_config(&dir.0, kport);
    let server = TestServer::start_config(&config);
    let (knot, conf) = knot_primary(&dir.0, kport, server.udp, 1, "");
    let wait_for = |serial: u32, secs: u64| {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while soa_serial(server.udp, "example.test.") != Some(serial) {
            assert!(Instant::now() < deadline, "serial {serial} never served; status {}\nknot:\n{}", secondary_status(&server), knot.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // The first transfer (the loop retries every 5 s until the primary is up).
    wait_for(1, 20);
    let (lines, _) = kdig(server.udp, &["ns.sub.example.test.", "A", "+norec"]);
    assert!(lines.is_empty(), "glue is not an authoritative answer");
    let (lines, text) = kdig(server.udp, &["www.example.test.", "CNAME"]);
    assert_eq!(lines, vec!["www.example.test. 300 IN CNAME web.example.test."], "{text}");
    let st = secondary_status(&server);
    assert_eq!((st["serial"].as_u64(), st["last_transfer_kind"].as_str(), st["expired"].as_bool()), (Some(1), Some("axfr"), Some(false)), "{st}");
    // Status names the primary, when the copy came, and when it is asked next: the SOA refresh (3600 s) after the last answer.
    assert_eq!(st["primary"], format!("127.0.0.1:{kport}"), "{st}");
    let (transferred, refreshed, next) = (status_time(&st, "last_transfer"), status_time(&st, "last_refresh"), status_time(&st, "next_refresh"));
    assert!(SystemTime::now().duration_since(transferred).unwrap() < Duration::from_secs(30), "{st}");
    assert!(refreshed >= transferred, "{st}");
    assert_eq!(next.duration_since(refreshed).unwrap(), Duration::from_secs(3600), "{st}");

    // A change on the primary: its NOTIFY brings it at once (the refresh timer is an hour), by IXFR.
    std::fs::write(dir.0.join("primary/example.test.zone"), zone_text(2, "new A 192.0.2.99\n")).unwrap();
    let out = Command::new(knotc).arg("-c").arg(&conf).args(["zone-reload", "example.test"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_for(2, 10);
    let (lines, _) = kdig(server.udp, &["new.example.test.", "A"]);
    assert_eq!(lines, vec!["new.example.test. 300 IN A 192.0.2.99"]);
    let st = secondary_status(&server);
    assert_eq!((st["serial"].as_u64(), st["last_transfer_kind"].as_str()), (Some(2), Some("ixfr")), "{st}\n{}", knot.log());
    assert!(status_time(&st, "last_transfer") >= transferred, "{st}");
    let refreshed = st["last_refresh"].clone();
    // Its copy equals the primary's.
    let key = Some(SECRET);
    assert_eq!(axfr(format!("127.0.0.1:{kport}").parse().unwrap(), "example.test.", key).0, {
        let received = std::fs::read_to_string(dir.0.join("secondary/example.test.zone")).unwrap();
        let mut lines: Vec<String> = received.lines().filter(|l| !l.starts_with(';') && !l.starts_with('$')).map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
        lines.sort();
        lines
    });

    // Restart with the primary down: the copy on disk serves, and status says why it is not refreshed.
    drop(knot);
    drop(server);
    let server = TestServer::start_config(&config);
    assert_eq!(soa_serial(server.udp, "example.test."), Some(2));
    let deadline = Instant::now() + Duration::from_secs(15);
    while secondary_status(&server)["last_error"].as_str().is_none() {
        assert!(Instant::now() < deadline, "no refresh error in status: {}", secondary_status(&server));
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(soa_serial(server.udp, "example.test."), Some(2), "the copy keeps serving");
    // The last refresh is the copy's (its file's time, which outlives the restart); the
    // next try comes after the SOA retry (600 s); no transfer in this run yet.
    let st = secondary_status(&server);
    assert_eq!(st["last_refresh"], refreshed, "{st}");
    assert!(st["last_transfer"].is_null(), "{st}");
    let retry_in = status_time(&st, "next_refresh").duration_since(SystemTime::now()).unwrap();
    assert!(retry_in > Duration::from_secs(580) && retry_in <= Duration::from_secs(600), "{st}");
}

/// A time field of a secondary's status.
fn status_time(st: &serde_json::Value, field: &str) -> SystemTime {
    let text = st[field].as_str().unwrap_or_else(|| panic!("no {field} in status: {st}"));
    humantime::parse_rfc3339(text).unwrap_or_else(|e| panic!("{field} {text:?}: {e}"))
}

/// How the test primary answers transfers.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    /// SOA, `records` A records, SOA.
    Good { records: u8 },
    /// A message cut in the middle, then the connection closed.
    Truncated,
    /// The closing SOA has another serial; then the connection closed.
    WrongEnd,
    /// A record whose RDATA runs past the message.
    Garbage,
    /// Reads the request and never answers.
    Hang,
    /// SERVFAIL.
    Refuse,
    /// IXFR answered NOTIMP; AXFR as `Good`.
    NoIxfr { records: u8 },
    /// UDP SOA queries get no answer either.
    Dead,
}

/// A primary written for this test, to misbehave on purpose (no TSIG).
struct TestPrimary {
    addr: SocketAddr,
    state: std::sync::Arc<std::sync::Mutex<(u32, Mode, u32)>>,
    /// The QTYPE of every transfer request received over TCP.
    asked: std::sync::Arc<std::sync::Mutex<Vec<u16>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

const APEX: &[u8] = b"\x07example\x04test\x00";

fn soa_rr(serial: u32, timers: u32) -> Vec<u8> {
    let mut rd = b"\x03ns1\x07example\x04test\x00\x0ahostmaster\x07example\x04test\x00".to_vec();
    rd.extend_from_slice(&serial.to_be_bytes());
    let (refresh, retry, expire) = if timers > 0 { (timers, timers, timers * 2) } else { (3600, 600, 86400) };
    for v in [refresh, retry, expire, 300] {
        rd.extend_from_slice(&v.to_be_bytes());
    }
    rr(APEX, 6, &rd)
}

fn rr(owner: &[u8], t: u16, rd: &[u8]) -> Vec<u8> {
    let mut r = owner.to_vec();
    r.extend_from_slice(&t.to_be_bytes());
    r.extend_from_slice(&[0, 1, 0, 0, 1, 44]);
    r.extend_from_slice(&(rd.len() as u16).to_be_bytes());
    r.extend_from_slice(rd);
    r
}

fn answer(query: &[u8], rcode: u8, records: &[Vec<u8>]) -> Vec<u8> {
    let qend = 12 + query[12..].iter().position(|&b| b == 0).unwrap() + 1 + 4;
    let mut m = query[..qend].to_vec();
    m[2] = 0x84 | (query[2] & 0x78);
    m[3] = rcode;
    m[6..8].copy_from_slice(&(records.len() as u16).to_be_bytes());
    m[8..12].fill(0);
    for r in records {
        m.extend_from_slice(r);
    }
    m
}

impl TestPrimary {
    fn start(serial: u32, mode: Mode, timers: u32) -> TestPrimary {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        // A port free for both UDP and TCP (a UDP port's TCP twin may be taken).
        let (udp, tcp) = (0..50)
            .find_map(|_| {
                let udp = std::net::UdpSocket::bind("127.0.0.1:0").ok()?;
                let tcp = std::net::TcpListener::bind(udp.local_addr().ok()?).ok()?;
                Some((udp, tcp))
            })
            .expect("a free loopback port");
        let addr = udp.local_addr().unwrap();
        tcp.set_nonblocking(true).unwrap();
        udp.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let state = std::sync::Arc::new(std::sync::Mutex::new((serial, mode, timers)));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !sp.load(Ordering::Relaxed) {
                let Ok((n, from)) = udp.recv_from(&mut buf) else { continue };
                let (serial, mode, timers) = *st.lock().unwrap();
                if mode != Mode::Dead && n > 12 {
                    let _ = udp.send_to(&answer(&buf[..n], 0, &[soa_rr(serial, timers)]), from);
                }
            }
        });
        let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (st, sp, log) = (state.clone(), stop.clone(), asked.clone());
        std::thread::spawn(move || {
            while !sp.load(Ordering::Relaxed) {
                let Ok((mut s, _)) = tcp.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                s.set_nonblocking(false).unwrap();
                let mut len = [0u8; 2];
                if s.read_exact(&mut len).is_err() {
                    continue;
                }
                let mut q = vec![0u8; u16::from_be_bytes(len) as usize];
                if s.read_exact(&mut q).is_err() {
                    continue;
                }
                let (serial, mode, timers) = *st.lock().unwrap();
                let qtype = q.get(12 + APEX.len()..14 + APEX.len()).map_or(0, |t| u16::from_be_bytes([t[0], t[1]]));
                log.lock().unwrap().push(qtype);
                let framed = |m: Vec<u8>| {
                    let mut f = (m.len() as u16).to_be_bytes().to_vec();
                    f.extend(m);
                    f
                };
                let a = |i: u8| rr(&[b"\x01h".as_slice(), APEX].concat(), 1, &[192, 0, 2, i]);
                let out = match mode {
                    Mode::NoIxfr { .. } if qtype == 251 => framed(answer(&q, 4, &[])),
                    Mode::Good { records } | Mode::NoIxfr { records } => {
                        let mut rs = vec![soa_rr(serial, timers), rr(APEX, 2, b"\x03ns1\x07example\x04test\x00")];
                        rs.extend((0..records).map(a));
                        rs.push(soa_rr(serial, timers));
                        framed(answer(&q, 0, &rs))
                    }
                    Mode::Truncated => framed(answer(&q, 0, &[soa_rr(serial, timers), a(1)]))[..40].to_vec(),
                    Mode::WrongEnd => framed(answer(&q, 0, &[soa_rr(serial, timers), a(1), soa_rr(serial + 7, timers)])),
                    Mode::Garbage => {
                        let mut bad = a(1);
                        let n = bad.len();
                        bad[n - 6..n - 4].copy_from_slice(&200u16.to_be_bytes());
                        framed(answer(&q, 0, &[soa_rr(serial, timers), bad]))
                    }
                    Mode::Refuse => framed(answer(&q, 2, &[])),
                    Mode::Hang | Mode::Dead => {
                        std::thread::sleep(Duration::from_secs(5));
                        Vec::new()
                    }
                };
                let _ = s.write_all(&out);
            }
        });
        TestPrimary { addr, state, asked, stop }
    }

    fn set(&self, serial: u32, mode: Mode) {
        let mut s = self.state.lock().unwrap();
        s.0 = serial;
        s.1 = mode;
    }
}

impl Drop for TestPrimary {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Waits until `server` serves example.test. with `serial`; fails after `secs` with its status.
fn wait_served(server: &TestServer, serial: u32, secs: u64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while soa_serial(server.udp, "example.test.") != Some(serial) {
        assert!(Instant::now() < deadline, "{what}: serial {serial} not served; status {}", secondary_status(server));
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A NOTIFY for example.test. from loopback (the test primary's address).
fn notify(server: &TestServer) {
    let mut m = vec![0x55, 0x55, 0x24, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(APEX);
    m.extend_from_slice(&[0, 6, 0, 1]);
    let r = crate::support::udp_raw(server.udp, &m).expect("NOTIFY answered");
    assert_eq!(r[3] & 0x0f, 0, "NOTIFY from the primary's address is accepted");
}

fn secondary_of(dir: &Path, primary: SocketAddr, extra: &str) -> TestServer {
    std::fs::create_dir_all(dir.join("zones")).unwrap();
    let config = format!("version = 1\n[server]\nzones-dir = \"zones\"\nmax-zone-records = 10\n[transfer]\ntimeout = \"2s\"\n[secondary.\"example.test.\"]\nprimary = \"{primary}\"\n{extra}");
    std::fs::write(dir.join("waypost.toml"), config).unwrap();
    TestServer::start_config(&dir.join("waypost.toml"))
}

#[test]
fn bad_transfers_keep_the_old_copy() {
    let Some(_) = tool("kdig", "transfer") else { return };
    let dir = TempDir::new("badxfr");
    let primary = TestPrimary::start(1, Mode::Good { records: 2 }, 0);
    let server = secondary_of(&dir.0, primary.addr, "");
    wait_served(&server, 1, 10, "first transfer");
    let failures = || {
        let (_, metrics) = http(server.http, "GET", "/metrics");
        metrics.lines().find(|l| l.starts_with("waypost_transfers_total{kind=\"refresh\",result=\"failed\"}")).and_then(|l| l.split(' ').nth(1)?.parse::<u64>().ok()).unwrap_or(0)
    };
    for (serial, mode, expect) in [
        (2, Mode::Truncated, "cut short"),
        (2, Mode::WrongEnd, "cut short"),
        (2, Mode::Garbage, "malformed"),
        (2, Mode::Hang, "did not finish within 2s"),
        (2, Mode::Refuse, "RCODE 2"),
        (0, Mode::Good { records: 1 }, "older than the copy"),
        (2, Mode::Good { records: 20 }, "rejected"),
    ] {
        primary.set(serial, mode);
        let before = failures();
        notify(&server);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let st = secondary_status(&server);
            if failures() > before && st["last_error"].as_str().unwrap_or("").contains(expect) {
                break;
            }
            assert!(Instant::now() < deadline, "{mode:?}: expected an error with {expect:?}; status {st}");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(soa_serial(server.udp, "example.test."), Some(1), "{mode:?}: the old copy keeps serving");
    }
    // A good transfer again.
    primary.set(3, Mode::Good { records: 3 });
    notify(&server);
    wait_served(&server, 3, 10, "the new serial");
    assert!(secondary_status(&server)["last_error"].is_null());
    // NOTIFY from elsewhere than the primary is refused.
    let other = std::net::UdpSocket::bind("127.0.0.2:0");
    if let Ok(s) = other {
        let mut m = vec![0x56, 0x56, 0x24, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(APEX);
        m.extend_from_slice(&[0, 6, 0, 1]);
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s.send_to(&m, server.udp).unwrap();
        let mut buf = [0u8; 512];
        let n = s.recv(&mut buf).unwrap();
        assert_eq!(buf[3] & 0x0f, 5, "REFUSED: {:?}", &buf[..n]);
    }
}

#[test]
fn an_expired_secondary_zone_answers_servfail() {
    let Some(_) = tool("kdig", "transfer") else { return };
    let dir = TempDir::new("expire");
    // refresh = retry = 5 s, expire = 10 s.
    let primary = TestPrimary::start(1, Mode::Good { records: 1 }, 5);
    let server = secondary_of(&dir.0, primary.addr, "");
    wait_served(&server, 1, 10, "first transfer");
    primary.set(1, Mode::Dead);
    let rcode = || {
        let out = Command::new("kdig").args([&format!("@{}", server.udp.ip()), "-p", &server.udp.port().to_string(), "example.test.", "SOA", "+norec", "+time=2"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).lines().find(|l| l.contains("status:")).map(|l| l.to_string()).unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(25);
    while !rcode().contains("SERVFAIL") {
        assert!(Instant::now() < deadline, "never expired: {}", secondary_status(&server));
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(secondary_status(&server)["expired"], true);
    // The primary answers again: the zone is served again at the next refresh.
    primary.set(1, Mode::Good { records: 1 });
    wait_served(&server, 1, 15, "not served again");
}

/// A zone Waypost signs, transferred: `dnssec-verify` (BIND) and `ldns-verify-zone` (ldns)
/// accept the copy a secondary gets, service names included (their fixed answers, signed,
/// and the NSEC/NSEC3 variant without the family the fixed answer lacks).
fn signed_transfer_verifies(denial: &str) {
    let test = format!("signed_transfer_verifies({denial})");
    let (Some(_), Some(verify), Some(ldns)) = (tool("kdig", &test), tool("dnssec-verify", &test), tool("ldns-verify-zone", &test)) else { return };
    let dir = TempDir::new("xfr-signed");
    std::fs::create_dir_all(dir.0.join("zones")).unwrap();
    std::fs::write(dir.0.join("zones/example.test.zone"), zone_text(1, "")).unwrap();
    let config = dir.0.join("waypost.toml");
    std::fs::write(
        &config,
        format!(
            "version = 1\n[server]\nzones-dir = \"zones\"\n[dnssec]\nkey-dir = \"keys\"\ndenial = \"{denial}\"\n\
             [datacenters.ams]\nlocation = [52.4, 4.9]\nservices = {{ \"web.example.test.\" = [\"192.0.2.10\", \"2001:db8::10\"] }}\n\
             [datacenters.iad]\nlocation = [38.9, -77.0]\nservices = {{ \"web.example.test.\" = [\"198.51.100.10\"], \"v4.example.test.\" = [\"198.51.100.4\"] }}\n\
             [geo.map]\ndefault = [\"ams\", \"iad\"]\n[services.\"web.example.test.\"]\nttl = 60\n[services.\"v4.example.test.\"]\nttl = 60\n\
             [transfer]\nallow = [{{ network = \"127.0.0.1\" }}]\n"
        ),
    )
    .unwrap();
    let waypost = env!("CARGO_BIN_EXE_waypost");
    let keygen = Command::new(waypost).args(["dnssec", "keygen", "example.test.", "--config"]).arg(&config).output().unwrap();
    assert!(keygen.status.success(), "{}", String::from_utf8_lossy(&keygen.stderr));
    let server = TestServer::start_config(&config);
    let out = Command::new("kdig").args([&format!("@{}", server.tcp.ip()), "-p", &server.tcp.port().to_string(), "example.test.", "AXFR", "+nocomments", "+nostats", "+noheader"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines: Vec<&str> = text.lines().filter(|l| !l.starts_with(';') && !l.trim().is_empty()).collect();
    lines.pop(); // the closing SOA
    let file = dir.0.join("copy.zone");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    assert!(text.contains("v4.example.test.") && text.contains("RRSIG"), "{text}");
    // -z: the key is a CSK (flags 257 signs everything).
    let bind = Command::new(verify).args(["-z", "-o", "example.test."]).arg(&file).output().unwrap();
    assert!(bind.status.success(), "dnssec-verify rejects the transferred zone:\n{}{}\n{text}", String::from_utf8_lossy(&bind.stdout), String::from_utf8_lossy(&bind.stderr));
    let l = Command::new(ldns).arg(&file).output().unwrap();
    assert!(l.status.success(), "ldns-verify-zone rejects the transferred zone:\n{}{}\n{text}", String::from_utf8_lossy(&l.stdout), String::from_utf8_lossy(&l.stderr));
    eprintln!("{test}: dnssec-verify: {}", String::from_utf8_lossy(&bind.stdout).trim());
}

#[test]
fn a_signed_nsec_zone_transfers_and_verifies() {
    signed_transfer_verifies("nsec");
}

#[test]
fn a_signed_nsec3_zone_transfers_and_verifies() {
    signed_transfer_verifies("nsec3");
}

#[test]
fn a_primary_that_rejects_our_key_leaves_the_reason_in_status() {
    let (Some(_), Some(_)) = (tool("knotd", "transfer"), tool("kdig", "transfer")) else { return };
    let dir = TempDir::new("secondary-badkey");
    let kport = crate::support::fixed_port();
    let config = secondary_config_with(&dir.0, kport, WRONG);
    let server = TestServer::start_config(&config);
    let (knot, _) = knot_primary(&dir.0, kport, server.udp, 1, "");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let st = secondary_status(&server);
        if st["last_error"].as_str().is_some_and(|e| e.contains("TSIG") && e.contains("16")) {
            break;
        }
        assert!(Instant::now() < deadline, "no TSIG error in status: {st}\n{}", knot.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(soa_serial(server.udp, "example.test."), None, "nothing received, nothing served");
}

/// SECRET's bytes (the tests sign requests themselves with them).
const SECRET_BYTES: &[u8] = b"secretsecretsecretsecretsecret12";

fn test_key(name: &str, algorithm: TsigAlgorithm) -> TsigKey {
    TsigKey { name: waypost::wire::Name::from_text(name).unwrap(), algorithm, secret: SECRET_BYTES.into() }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs()
}

/// An AXFR request for example.test. signed with `key` at `time`, and its MAC.
fn signed_axfr(key: &TsigKey, time: u64) -> (Vec<u8>, Vec<u8>) {
    let mut m = vec![0x42, 0x42, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(APEX);
    m.extend_from_slice(&[0, 252, 0, 1]);
    let mac = tsig::sign(&mut m, key, None, tsig::Part::First, 0, &[], time);
    (m, mac)
}

/// The rcode in the header and the TSIG record's fields of one answer.
#[derive(Debug)]
struct Signed {
    rcode: u8,
    error: u16,
    mac: Vec<u8>,
    time_signed: u64,
    other: Vec<u8>,
}

fn signed_answer(m: &[u8]) -> Signed {
    let t = tsig::find(m).expect("a well-formed answer").expect("a TSIG record in the answer");
    Signed { rcode: m[3] & 0x0f, error: t.error, mac: t.mac.to_vec(), time_signed: t.time_signed, other: t.other.to_vec() }
}

/// kdig transfers with keys of each other algorithm Waypost accepts (RFC 8945 §6: HMAC-SHA1
/// for old peers, SHA-384, SHA-512) and verifies the answers; a key's name with another
/// algorithm than its own is BADKEY.
#[test]
fn axfr_signed_with_hmac_sha1_sha384_and_sha512_verifies_in_kdig() {
    let Some(_) = tool("kdig", "transfer") else { return };
    let dir = TempDir::new("xfr-algorithms");
    let config = write_config(&dir.0, &[], "", "");
    // Three more keys, each allowed to transfer.
    let keys = format!("xfr = \"hmac-sha256:{SECRET}\"\nk1 = \"hmac-sha1:{SECRET}\"\nk384 = \"hmac-sha384:{SECRET}\"\nk512 = \"hmac-sha512:{SECRET}\"\n");
    let allow = ["xfr", "k1", "k384", "k512"].map(|k| format!("{{ network = \"127.0.0.1\", key = \"{k}\" }}")).join(", ");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(&format!("xfr = \"hmac-sha256:{SECRET}\"\n"), &keys)
        .replace("allow = [{ network = \"127.0.0.1\", key = \"xfr\" }]", &format!("allow = [{allow}]"));
    std::fs::write(&config, text).unwrap();
    let server = TestServer::start_config(&config);
    let (want, text) = axfr(server.tcp, "example.test.", Some(SECRET));
    assert!(want.len() > 10, "{text}");
    for (algorithm, name) in [("hmac-sha1", "k1"), ("hmac-sha384", "k384"), ("hmac-sha512", "k512")] {
        let key = format!("{algorithm}:{name}:{SECRET}");
        let (mut lines, text) = kdig(server.tcp, &["example.test.", "AXFR", "-y", &key]);
        lines.dedup();
        assert_eq!(lines, want, "{algorithm}: {text}");
        // kdig's full output: the answer's TSIG record, and no complaint about it.
        let out = Command::new("kdig").args([&format!("@{}", server.tcp.ip()), "-p", &server.tcp.port().to_string(), "+time=3", "+retry=0", "example.test.", "AXFR", "-y", &key]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && !text.contains(";; WARNING") && !text.contains(";; ERROR") && text.split_whitespace().collect::<Vec<_>>().join(" ").contains(&format!("ANY TSIG {algorithm}. ")), "{algorithm}: kdig did not verify the answer:\n{text}");
        // A signed SOA query too (a secondary's refresh).
        let (lines, text) = kdig(server.udp, &["example.test.", "SOA", "-y", &format!("{algorithm}:{name}:{SECRET}")]);
        assert!(lines.len() == 1 && !text.contains(";; WARNING"), "{algorithm}: {text}");
        let (lines, text) = kdig(server.tcp, &["example.test.", "AXFR", "-y", &format!("hmac-sha256:{name}:{SECRET}")]);
        assert!(lines.is_empty() && text.contains("BADKEY"), "{name} under hmac-sha256: {text}");
    }
}

/// TSIG errors are answered as RFC 8945 §5.2 says, NOTAUTH in the header: an unknown key
/// or algorithm BADKEY and a wrong secret BADSIG, both unsigned; a time outside the 300 s
/// fudge BADTIME, signed with the key over the request's MAC, with the client's time in
/// Time Signed and the server's in Other Data. kdig sees BADKEY too. Each is counted.
#[test]
fn tsig_errors_are_notauth_with_badkey_badsig_and_a_signed_badtime() {
    let Some(_) = tool("kdig", "transfer") else { return };
    let dir = TempDir::new("tsig-errors");
    let server = waypost(&dir.0, &[]);
    let (lines, text) = kdig(server.tcp, &["example.test.", "AXFR", "-y", &format!("hmac-sha256:nokey:{SECRET}")]);
    assert!(lines.is_empty() && text.contains("BADKEY"), "kdig with an unknown key: {text}");

    let ask = |key: &TsigKey, time: u64| {
        let (request, mac) = signed_axfr(key, time);
        let answer = crate::support::tcp_raw(server.tcp, &request).expect("an answer");
        (signed_answer(&answer), answer, mac)
    };
    let xfr = test_key("xfr", TsigAlgorithm::Sha256);
    for (what, key, error) in [
        ("unknown key name", test_key("nokey", TsigAlgorithm::Sha256), 17),
        ("the key's name with another algorithm", test_key("xfr", TsigAlgorithm::Sha512), 17),
        ("another secret", TsigKey { secret: b"not the secret at all, not at all".to_vec().into(), ..xfr.clone() }, 16),
    ] {
        let (a, _, _) = ask(&key, unix_now());
        assert_eq!((a.rcode, a.error, a.mac.len()), (9, error, 0), "{what}: NOTAUTH, the error, unsigned: {a:?}");
    }
    // BADTIME: a request signed 1000 s ago.
    let client_time = unix_now() - 1000;
    let (a, answer, request_mac) = ask(&xfr, client_time);
    assert_eq!((a.rcode, a.error, a.mac.len()), (9, 18, 32), "BADTIME: {a:?}");
    assert_eq!(a.time_signed, client_time, "Time Signed is the client's time");
    assert_eq!(a.other.len(), 6, "{a:?}");
    let server_time = a.other.iter().fold(0u64, |t, b| t << 8 | *b as u64);
    assert!(unix_now().abs_diff(server_time) <= 5, "Other Data is the server's time: {server_time}");
    // Its MAC, computed here (RFC 8945 §4.3.3, §5.3): the request's MAC, the answer without
    // its TSIG record (ARCOUNT - 1, the original ID), then the TSIG variables.
    let t = tsig::find(&answer).unwrap().unwrap();
    let mut unsigned = answer[..t.start].to_vec();
    unsigned[..2].copy_from_slice(&t.original_id.to_be_bytes());
    unsigned[11] -= 1;
    let mut ctx = ring::hmac::Context::with_key(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET_BYTES));
    ctx.update(&(request_mac.len() as u16).to_be_bytes());
    ctx.update(&request_mac);
    ctx.update(&unsigned);
    ctx.update(b"\x03xfr\x00\x00\xff\x00\x00\x00\x00\x0bhmac-sha256\x00");
    ctx.update(&client_time.to_be_bytes()[2..]);
    ctx.update(&t.fudge.to_be_bytes());
    ctx.update(&[0, 18, 0, 6]);
    ctx.update(&a.other);
    assert_eq!(ctx.sign().as_ref(), a.mac.as_slice(), "the BADTIME answer is signed with the key");

    let (_, metrics) = http(server.http, "GET", "/metrics");
    for (result, at_least) in [("badkey", 3), ("badsig", 1), ("badtime", 1)] {
        let n = metrics.lines().find(|l| l.starts_with(&format!("waypost_transfers_total{{kind=\"tsig\",result=\"{result}\"}}"))).and_then(|l| l.split(' ').nth(1)?.parse::<u64>().ok());
        assert!(n >= Some(at_least), "{result}: {metrics}");
    }
}

/// The answer records of one message, from its ANCOUNT; and whether the last is an SOA.
fn answer_records(m: &[u8]) -> (usize, usize) {
    let parsed = hickory_proto::op::Message::from_vec(m).expect("a message that parses");
    let soas = parsed.answers.iter().filter(|r| r.record_type() == hickory_proto::rr::RecordType::SOA).count();
    (parsed.answers.len(), soas)
}

/// A zone of 9,000 more records needs several AXFR messages: every message carries a TSIG
/// record that checks against the one before (read here message by message), kdig
/// verifies the stream, and knotd as a TSIG secondary loads all of it.
#[test]
fn a_multi_message_axfr_is_signed_on_every_message_and_knot_loads_it_all() {
    let (Some(_), Some(_)) = (tool("knotd", "transfer"), tool("kdig", "transfer")) else { return };
    let dir = TempDir::new("xfr-big");
    let big: String = (0..3000).map(|i| format!("h{i} A 192.0.2.{}\nh{i} AAAA 2001:db8::{i:x}\nh{i} TXT \"host number {i} of the big zone\"\n", i % 250)).collect();
    let kport = crate::support::fixed_port();
    let server = TestServer::start_config(&write_config(&dir.0, &[kport], &big, ""));

    let key = test_key("xfr", TsigAlgorithm::Sha256);
    let (request, mac) = signed_axfr(&key, unix_now());
    let mut s = std::net::TcpStream::connect(server.tcp).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut framed = (request.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&request);
    std::io::Write::write_all(&mut s, &framed).unwrap();
    let mut check = tsig::ResponseCheck::new(&key, mac);
    let (mut messages, mut records, mut soas) = (0, 0, 0);
    while soas < 2 {
        let m = crate::support::read_framed(&mut s).unwrap_or_else(|| panic!("the stream ended after {messages} messages, {records} records"));
        assert!(tsig::find(&m).unwrap().is_some(), "message {messages} is not signed");
        check.message(&m, unix_now()).unwrap_or_else(|e| panic!("message {messages}: {e}"));
        let (n, s) = answer_records(&m);
        (messages, records, soas) = (messages + 1, records + n, soas + s);
    }
    check.finish().unwrap();
    // The 10 records of zone_text, the service's A and AAAA, the 9,000, and the closing SOA.
    assert_eq!(records, 10 + 2 + 9000 + 1);
    assert!(messages >= 3, "{messages} messages");

    let (ours, text) = axfr(server.tcp, "example.test.", Some(SECRET));
    assert!(!text.contains(";; WARNING") && !text.contains(";; ERROR"), "kdig did not verify the stream:\n{}", &text[text.len().saturating_sub(2000)..]);
    assert_eq!(ours.len(), 10 + 2 + 9000, "kdig's AXFR");
    let knot_at: SocketAddr = format!("127.0.0.1:{kport}").parse().unwrap();
    let knot = knot_secondary(&dir.0, kport, server.tcp);
    wait_serial("knotd's transfer of the big zone", &knot, knot_at, 1, 20);
    let (theirs, _) = axfr(knot_at, "example.test.", None);
    assert_eq!(theirs.len(), ours.len(), "knotd's copy has another record count");
    assert!(theirs == ours, "knotd's copy differs");
}

/// A NOTIFY for a secondary zone that has a key, from the primary's address: unsigned it
/// is REFUSED, with a wrong secret NOTAUTH (BADSIG); neither starts a refresh, one signed
/// with the zone's key does.
#[test]
fn notify_for_a_keyed_secondary_zone_needs_the_key() {
    let dir = TempDir::new("notify-key");
    // The test primary does not sign: every refresh fails (the answer is not signed), and
    // each is counted, which is what this test watches.
    let primary = TestPrimary::start(1, Mode::Good { records: 1 }, 0);
    let server = secondary_of(&dir.0, primary.addr, &format!("key = \"xfr\"\n[tsig.keys]\nxfr = \"hmac-sha256:{SECRET}\"\n"));
    let refreshes = || {
        let (_, metrics) = http(server.http, "GET", "/metrics");
        metrics.lines().filter(|l| l.starts_with("waypost_transfers_total{kind=\"refresh\",")).filter_map(|l| l.split(' ').nth(1)?.parse::<u64>().ok()).sum::<u64>()
    };
    crate::support::wait("the first refresh", 15, || refreshes() == 1);
    let st = secondary_status(&server);
    assert!(st["last_error"].as_str().is_some_and(|e| e.contains("not signed")), "{st}");
    let apex = waypost::wire::Name::from_text("example.test.").unwrap();
    let send = |key: Option<&TsigKey>| {
        let (m, _) = waypost::transfer::notify::message(&apex, key, unix_now());
        crate::support::udp_raw(server.udp, &m).expect("NOTIFY answered")[3] & 0x0f
    };
    assert_eq!(send(None), 5, "an unsigned NOTIFY is REFUSED");
    let wrong = TsigKey { secret: b"not the secret at all, not at all".to_vec().into(), ..test_key("xfr", TsigAlgorithm::Sha256) };
    assert_eq!(send(Some(&wrong)), 9, "a NOTIFY with a wrong secret is NOTAUTH (BADSIG)");
    // A refresh after an accepted NOTIFY starts within the loop's wake-up and takes
    // milliseconds against the test primary: two seconds would show one.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(refreshes(), 1, "a refused NOTIFY started a refresh");
    assert_eq!(send(Some(&test_key("xfr", TsigAlgorithm::Sha256))), 0, "a NOTIFY signed with the key is accepted");
    crate::support::wait("the refresh a signed NOTIFY starts", 10, || refreshes() == 2);
    let (_, metrics) = http(server.http, "GET", "/metrics");
    assert!(metrics.contains("waypost_transfers_total{kind=\"notify-in\",result=\"refused\"} 1"), "{metrics}");
    assert!(metrics.contains("waypost_transfers_total{kind=\"notify-in\",result=\"ok\"} 1"), "{metrics}");
}

/// What a service name is in a transfer: by default its default region's first data
/// centre's answer, `transfer = "iad"` another data centre's, `transfer = "omit"` nothing
/// (while queries still get it). Draining a data centre changes answers but neither the
/// served SOA serial nor the AXFR.
#[test]
fn service_names_transfer_fixed_answers_that_a_drain_leaves_alone() {
    let Some(_) = tool("kdig", "transfer") else { return };
    let dir = TempDir::new("xfr-services");
    std::fs::create_dir_all(dir.0.join("zones")).unwrap();
    std::fs::write(dir.0.join("zones/example.test.zone"), zone_text(1, "")).unwrap();
    let services = |web: &str, pin: &str, gone: &str| format!("{{ \"web.example.test.\" = [\"{web}\"], \"pin.example.test.\" = [\"{pin}\"], \"gone.example.test.\" = [\"{gone}\"] }}");
    let config = format!(
        "version = 1\n[server]\nzones-dir = \"zones\"\n\
         [datacenters.ams]\nlocation = [52.4, 4.9]\nservices = {}\n\
         [datacenters.iad]\nlocation = [38.9, -77.0]\nservices = {}\n\
         [geo.map]\ndefault = [\"ams\", \"iad\"]\n\
         [services.\"web.example.test.\"]\nttl = 60\n\
         [services.\"pin.example.test.\"]\nttl = 60\ntransfer = \"iad\"\n\
         [services.\"gone.example.test.\"]\nttl = 60\ntransfer = \"omit\"\n\
         [health]\nadmin-token = \"t\"\n\
         [transfer]\nallow = [{{ network = \"127.0.0.1\" }}]\n",
        services("192.0.2.10", "192.0.2.20", "192.0.2.30"),
        services("198.51.100.10", "198.51.100.20", "198.51.100.30"),
    );
    std::fs::write(dir.0.join("waypost.toml"), config).unwrap();
    let server = TestServer::start_config(&dir.0.join("waypost.toml"));
    let (before, text) = axfr(server.tcp, "example.test.", None);
    assert!(before.iter().any(|l| l == "web.example.test. 60 IN A 192.0.2.10"), "web: the default region's first data centre (ams): {text}");
    assert!(before.iter().any(|l| l == "pin.example.test. 60 IN A 198.51.100.20"), "pin: transfer = \"iad\": {text}");
    assert!(!before.iter().any(|l| l.starts_with("pin.example.test.") && l.contains("192.0.2.20")), "pin: only iad's answer: {text}");
    assert!(!before.iter().any(|l| l.starts_with("gone.example.test.")), "gone: transfer = \"omit\": {text}");
    let (lines, text) = kdig(server.udp, &["gone.example.test.", "A"]);
    assert_eq!(lines, vec!["gone.example.test. 60 IN A 192.0.2.30"], "an omitted name is still answered: {text}");
    let serial = soa_serial(server.udp, "example.test.");
    assert!(serial.is_some());

    let (code, body) = crate::health::admin(&server, "PUT", "/v1/admin/datacenters/ams", Some("t"), r#"{"action":"drain"}"#);
    assert_eq!(code, 200, "{body}");
    crate::support::wait("the drain to move web to iad", 10, || kdig(server.udp, &["web.example.test.", "A"]).0.iter().any(|l| l.ends_with(" IN A 198.51.100.10")));
    assert_eq!(soa_serial(server.udp, "example.test."), serial, "a drain changed the served serial");
    let (after, text) = axfr(server.tcp, "example.test.", None);
    assert_eq!(after, before, "a drain changed the AXFR: {text}");
}

/// A zone Waypost signs, transferred to knotd (TSIG secondary) that validates every
/// signature and NSEC link of what it receives (`dnssec-validation: on`); delv against
/// knotd, trusting only the DS that `waypost dnssec ds` prints, fully validates a service
/// name's fixed answer and an NXDOMAIN; kdig +dnssec shows the RRSIGs; dnssec-verify
/// accepts knotd's AXFR.
#[test]
fn a_zone_waypost_signs_validates_on_knot_as_its_secondary() {
    let test = "a_zone_waypost_signs_validates_on_knot_as_its_secondary";
    let (Some(_), Some(_), Some(verify), Some(_)) = (tool("knotd", test), tool("kdig", test), tool("dnssec-verify", test), tool("delv", test)) else { return };
    let dir = TempDir::new("xfr-signed-knot");
    let kport = crate::support::fixed_port();
    let config = write_config(&dir.0, &[kport], "", "[dnssec]\nkey-dir = \"keys\"\ndenial = \"nsec\"\n");
    let waypost = env!("CARGO_BIN_EXE_waypost");
    let run = |args: &[&str]| {
        let out = Command::new(waypost).args(args).arg("--config").arg(&config).output().unwrap();
        assert!(out.status.success(), "waypost {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&["dnssec", "keygen", "example.test."]);
    let ds = run(&["dnssec", "ds", "example.test."]);
    let ds: Vec<&str> = ds.lines().find(|l| l.contains(" DS ")).expect("a DS line").split_whitespace().collect();
    let server = TestServer::start_config(&config);
    let serial = soa_serial(server.udp, "example.test.").expect("the signed zone is served");
    let knot_at: SocketAddr = format!("127.0.0.1:{kport}").parse().unwrap();
    let knot = knot_secondary_with(&dir.0, kport, server.tcp, "    dnssec-validation: on\n");
    wait_serial("knotd's validated transfer", &knot, knot_at, serial, 20);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !knot.log().contains("DNSSEC, validation successful") {
        assert!(Instant::now() < deadline, "knotd did not validate the zone:\n{}", knot.log());
        std::thread::sleep(Duration::from_millis(100));
    }

    let out = Command::new("kdig").args([&format!("@{}", knot_at.ip()), "-p", &kport.to_string(), "+dnssec", "+norec", "web.example.test.", "A"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("192.0.2.10") && text.contains("RRSIG\tA "), "knotd serves the fixed answer signed:\n{text}");

    let anchor = dir.0.join("anchor.conf");
    std::fs::write(&anchor, format!("trust-anchors {{\n  example.test. static-ds {} {} {} \"{}\";\n}};\n", ds[3], ds[4], ds[5], ds[6])).unwrap();
    for (name, want) in [("web.example.test.", "192.0.2.10"), ("nothere.example.test.", "ncache nxdomain")] {
        let out = Command::new("delv").args([&format!("@{}", knot_at.ip()), "-p", &kport.to_string(), "-a"]).arg(&anchor).args(["+root=example.test", name, "A"]).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(text.contains("fully validated") && text.contains(want), "delv against knotd, {name}:\n{text}");
    }

    let out = Command::new("kdig").args([&format!("@{}", knot_at.ip()), "-p", &kport.to_string(), "example.test.", "AXFR", "+nocomments", "+nostats", "+noheader"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines: Vec<&str> = text.lines().filter(|l| !l.starts_with(';') && !l.trim().is_empty()).collect();
    lines.pop(); // the closing SOA
    let file = dir.0.join("knot-copy.zone");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let out = Command::new(verify).args(["-z", "-o", "example.test."]).arg(&file).output().unwrap();
    assert!(out.status.success(), "dnssec-verify rejects knotd's copy:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

/// After a restart with the primary down, a copy whose last refresh (its file's time) is
/// older than the SOA expire (24 h here) answers SERVFAIL from the first query, before any
/// refresh attempt has failed; one refreshed within it is served. When the primary answers
/// again the zone is served and the file's time is the refresh's.
#[test]
fn a_copy_past_its_expire_answers_servfail_at_once_after_a_restart() {
    let Some(_) = tool("kdig", "transfer") else { return };
    let dir = TempDir::new("expire-restart");
    let primary = TestPrimary::start(1, Mode::Good { records: 1 }, 0);
    drop({
        let server = secondary_of(&dir.0, primary.addr, "");
        wait_served(&server, 1, 10, "first transfer");
        server
    });
    primary.set(1, Mode::Dead);
    let copy = dir.0.join("secondary/example.test.zone");
    let refreshed_ago = |secs: u64| std::fs::File::options().append(true).open(&copy).unwrap().set_modified(SystemTime::now() - Duration::from_secs(secs)).unwrap();
    let rcode = |server: &TestServer| {
        let out = Command::new("kdig").args([&format!("@{}", server.udp.ip()), "-p", &server.udp.port().to_string(), "example.test.", "SOA", "+norec", "+time=1", "+retry=0"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).lines().find(|l| l.contains("status:")).map(|l| l.to_string()).unwrap_or_default()
    };
    let config = dir.0.join("waypost.toml");

    refreshed_ago(23 * 3600);
    let server = TestServer::start_config(&config);
    assert!(rcode(&server).contains("NOERROR"), "a copy within its expire is served");
    drop(server);

    refreshed_ago(25 * 3600);
    let started = Instant::now();
    let server = TestServer::start_config(&config);
    let first = rcode(&server);
    // The first refresh against the dead primary takes 6 s to fail (two SOA queries).
    assert!(started.elapsed() < Duration::from_secs(4), "too slow to tell: {:?}", started.elapsed());
    assert!(first.contains("SERVFAIL"), "the first answer from an expired copy: {first}");
    crate::support::wait("status to say expired", 3, || secondary_status(&server)["expired"] == true);

    // The primary answers again (same serial): a NOTIFY brings the refresh.
    primary.set(1, Mode::Good { records: 1 });
    notify(&server);
    wait_served(&server, 1, 15, "served again after a refresh");
    assert_eq!(secondary_status(&server)["expired"], false);
    let mtime = std::fs::metadata(&copy).unwrap().modified().unwrap();
    assert!(SystemTime::now().duration_since(mtime).unwrap_or_default() < Duration::from_secs(30), "the refresh sets the copy's time");
}

/// A primary that answers IXFR with NOTIMP: the secondary asks for IXFR from its copy,
/// then takes the change by AXFR, with no error left in status.
#[test]
fn a_secondary_falls_back_from_ixfr_to_axfr() {
    let Some(_) = tool("kdig", "transfer") else { return };
    let dir = TempDir::new("ixfr-fallback");
    let primary = TestPrimary::start(1, Mode::NoIxfr { records: 1 }, 0);
    let server = secondary_of(&dir.0, primary.addr, "");
    wait_served(&server, 1, 10, "first transfer");
    assert_eq!(*primary.asked.lock().unwrap(), vec![252], "no copy yet: AXFR");
    primary.set(2, Mode::NoIxfr { records: 2 });
    notify(&server);
    wait_served(&server, 2, 10, "the change by AXFR");
    assert_eq!(*primary.asked.lock().unwrap(), vec![252, 251, 252], "IXFR from the copy, then AXFR");
    let (lines, _) = kdig(server.udp, &["h.example.test.", "A"]);
    assert_eq!(lines, vec!["h.example.test. 300 IN A 192.0.2.0", "h.example.test. 300 IN A 192.0.2.1"], "the AXFR's new record is served");
    let st = secondary_status(&server);
    assert_eq!((st["serial"].as_u64(), st["last_transfer_kind"].as_str()), (Some(2), Some("axfr")), "{st}");
    assert!(st["last_error"].is_null(), "{st}");
}

/// `[transfer] history = 2`: IXFR from the last two serial changes is incremental; from a
/// serial before them it is the whole zone (AXFR-style), the oldest change having been
/// dropped.
#[test]
fn ixfr_history_keeps_only_the_last_changes() {
    let Some(_) = tool("kdig", "transfer") else { return };
    let dir = TempDir::new("ixfr-history");
    let server = TestServer::start_config(&write_config(&dir.0, &[], "", "history = 2\n"));
    for serial in 2..=5 {
        std::fs::write(dir.0.join("zones/example.test.zone"), zone_text(serial, &format!("n{serial} A 192.0.2.{serial}\n"))).unwrap();
        assert_eq!(http(server.http, "POST", "/v1/reload").0, 200);
    }
    let key = format!("hmac-sha256:xfr:{SECRET}");
    let whole = |text: &str| text.contains("ns.sub.example.test.");
    let (_, text) = kdig(server.tcp, &["example.test.", "IXFR=3", "-y", &key]);
    assert!(text.contains("n4.example.test.") && text.contains("n5.example.test.") && !whole(&text), "from 3: two changes:\n{text}");
    let (_, text) = kdig(server.tcp, &["example.test.", "IXFR=2", "-y", &key]);
    assert!(whole(&text) && text.contains("n5.example.test."), "from 2 (dropped): the whole zone:\n{text}");
}

/// NOTIFY out to a target that does not answer is sent again with the wait doubling (1 s,
/// then 2 s), each new try counted; the third, answered, counts as acknowledged.
#[test]
fn notify_out_is_retried_with_back_off_until_answered() {
    let dir = TempDir::new("notify-retry");
    let target = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    target.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let server = TestServer::start_config(&write_config(&dir.0, &[target.local_addr().unwrap().port()], "", ""));
    std::fs::write(dir.0.join("zones/example.test.zone"), zone_text(2, "")).unwrap();
    assert_eq!(http(server.http, "POST", "/v1/reload").0, 200);
    let key = test_key("xfr", TsigAlgorithm::Sha256);
    let mut at = Vec::new();
    let mut buf = [0u8; 1024];
    for n in 0..3 {
        let (len, from) = target.recv_from(&mut buf).unwrap_or_else(|e| panic!("NOTIFY {n}: {e}"));
        at.push(Instant::now());
        let m = &buf[..len];
        assert_eq!(m[2] >> 3 & 0x0f, 4, "opcode NOTIFY");
        let t = tsig::find(m).unwrap().expect("the NOTIFY is signed");
        if n == 2 {
            // Answer: the header with QR, the question, signed over the NOTIFY's MAC.
            let mut a = m[..t.start].to_vec();
            a[..2].copy_from_slice(&t.original_id.to_be_bytes());
            a[2] |= 0x80;
            a[11] -= 1;
            let mac = t.mac.to_vec();
            tsig::sign(&mut a, &key, Some(&mac), tsig::Part::First, 0, &[], unix_now());
            target.send_to(&a, from).unwrap();
        }
    }
    let (first, second) = (at[1] - at[0], at[2] - at[1]);
    // Lower bounds only: a loaded CI machine may be late, never early (no timing goal here).
    assert!(first >= Duration::from_millis(950), "the first wait: {first:?}");
    assert!(second >= Duration::from_millis(1950) && second > first, "the second wait doubles: {first:?} then {second:?}");
    crate::support::wait("the acknowledged NOTIFY counted", 5, || http(server.http, "GET", "/metrics").1.contains("waypost_transfers_total{kind=\"notify-out\",result=\"ok\"} 1"));
    let (_, metrics) = http(server.http, "GET", "/metrics");
    assert!(metrics.contains("waypost_transfers_total{kind=\"notify-out\",result=\"retry\"} 2"), "{metrics}");
}
