//! The fleet lab as a test: three data centres and a client in network namespaces,
//! four scenarios end to end (deploy/lab/test.sh). A separate test binary, so cargo runs
//! it after the main suite rather than beside it (its timings want quiet cores).
//!
//! Needs root and iproute2. Elsewhere it is skipped, except under CI (env `CI` set),
//! where it must run.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `$TMPDIR/NAME-PID`, removed on drop, so a failing test leaves nothing behind either.
/// Not created here: the lab script creates its own (and refuses a foreign one).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `WAYPOST_SKIP_LAB=1 cargo test` leaves out these root-only namespace tests (outside CI).
fn skipped_on_request(test: &str) -> bool {
    let asked = std::env::var_os("WAYPOST_SKIP_LAB").is_some_and(|v| v != "0");
    if asked {
        assert!(std::env::var_os("CI").is_none(), "CI runs the namespace lab: WAYPOST_SKIP_LAB is for developers");
        eprintln!("SKIPPED {test}: WAYPOST_SKIP_LAB is set");
    }
    asked
}

#[test]
fn fleet_lab_scenarios_pass() {
    if skipped_on_request("fleet_lab_scenarios_pass") {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let is_root = Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let has_ip = Command::new("ip").args(["netns", "list"]).output().is_ok_and(|o| o.status.success());
    if !(is_root && has_ip) {
        assert!(std::env::var_os("CI").is_none(), "CI must be able to run the namespace lab (root: {is_root}, ip netns: {has_ip})");
        eprintln!("SKIPPED fleet_lab_scenarios_pass: needs root and iproute2 (ip netns)");
        return;
    }
    let lab = TempDir::new("waypost-lab");
    let status = Command::new("bash")
        .arg(root.join("deploy/lab/test.sh"))
        .current_dir(root)
        .env("WAYPOST", env!("CARGO_BIN_EXE_waypost"))
        .env("LAB_DIR", &lab.0)
        .status()
        .expect("bash runs");
    assert!(status.success(), "deploy/lab/test.sh failed ({status})");
}

/// Runs as `nobody` with only CAP_NET_BIND_SERVICE, in a private network namespace:
/// binds port 53 and answers; without the capability it fails cleanly.
#[test]
fn runs_unprivileged_with_cap_net_bind_service() {
    if skipped_on_request("runs_unprivileged_with_cap_net_bind_service") {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tool = |name: &str| Command::new("sh").args(["-c", &format!("command -v {name}")]).output().is_ok_and(|o| o.status.success());
    let is_root = Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !(is_root && tool("ip") && tool("setpriv") && tool("kdig")) {
        assert!(std::env::var_os("CI").is_none(), "CI must be able to run the unprivileged test");
        eprintln!("SKIPPED runs_unprivileged_with_cap_net_bind_service: needs root, ip, setpriv and kdig");
        return;
    }
    let ns = format!("wp-cap-{}", std::process::id());
    let run = |args: &[&str]| Command::new(args[0]).args(&args[1..]).output().unwrap();
    let _ = run(&["ip", "netns", "del", &ns]);
    assert!(run(&["ip", "netns", "add", &ns]).status.success());
    assert!(run(&["ip", "-n", &ns, "link", "set", "lo", "up"]).status.success());
    let bin = env!("CARGO_BIN_EXE_waypost");
    let zones = root.join("tests/data/zones");
    let serve = |caps: bool| {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]);
        if caps {
            cmd.args(["--inh-caps=+net_bind_service", "--ambient-caps=+net_bind_service", "--bounding-set=-all,+net_bind_service"]);
        } else {
            cmd.args(["--inh-caps=-all", "--bounding-set=-all"]);
        }
        cmd.args([bin, "serve", "--dns-listen", "127.0.0.1:53", "--http-listen", "127.0.0.1:8053", "--zones"]).arg(&zones);
        cmd.stderr(std::process::Stdio::piped()).stdout(std::process::Stdio::null());
        cmd.spawn().unwrap()
    };
    // Without the capability: a clean error, no panic.
    let out = serve(false).wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("cannot bind") && err.contains("Permission denied") && !err.contains("panicked"), "{err}");
    // With it: serves port 53.
    let mut child = serve(true);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let answer = loop {
        let o = run(&["ip", "netns", "exec", &ns, "kdig", "@127.0.0.1", "-p", "53", "+short", "+retry=0", "+timeout=1", "ns1.example.com", "A"]);
        let a = String::from_utf8_lossy(&o.stdout).trim().to_string();
        if !a.is_empty() || std::time::Instant::now() > deadline {
            break a;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let _ = child.kill();
    let _ = child.wait();
    let _ = run(&["ip", "netns", "del", &ns]);
    assert_eq!(answer, "192.0.2.1", "unprivileged server with CAP_NET_BIND_SERVICE answers on port 53");
}

/// Answers too big for the outgoing interface are not fragmented (DF, RFC 9715 §3.1):
/// on a loopback with a 1280-byte MTU and `udp-max-payload = 4096`, a 2.6 KB answer is
/// answered again within 1232 bytes, which gives TC (the client retries over TCP, where
/// it gets the whole answer); a 1.1 KB answer goes out as it is. With fragmentation
/// allowed the 2.6 KB answer would arrive whole, in fragments, over UDP. IPv4 and IPv6.
#[test]
fn answers_above_the_interface_mtu_get_tc_not_fragments() {
    if skipped_on_request("answers_above_the_interface_mtu_get_tc_not_fragments") {
        return;
    }
    let tool = |name: &str| Command::new("sh").args(["-c", &format!("command -v {name}")]).output().is_ok_and(|o| o.status.success());
    let is_root = Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !(is_root && tool("ip") && tool("kdig")) {
        assert!(std::env::var_os("CI").is_none(), "CI must be able to run the MTU test");
        eprintln!("SKIPPED answers_above_the_interface_mtu_get_tc_not_fragments: needs root, ip and kdig");
        return;
    }
    let tmp = TempDir::new("wp-mtu");
    let dir = &tmp.0;
    std::fs::create_dir_all(dir.join("zones")).unwrap();
    let txt = |n: usize| (0..n).map(|i| format!("\"{}\"", char::from(b'a' + i as u8).to_string().repeat(200))).collect::<Vec<_>>().join(" ");
    let mut zone = String::from("$ORIGIN mtu.test.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 900 604800 300\n@ NS ns1\nns1 A 192.0.2.1\n");
    for i in 0..12 {
        zone.push_str(&format!("big TXT \"{i}\" {}\n", txt(1)));
    }
    zone.push_str(&format!("fits TXT {}\n", txt(5)));
    std::fs::write(dir.join("zones/mtu.test.zone"), zone).unwrap();
    std::fs::write(dir.join("waypost.toml"), "version = 1\n[server]\nzones-dir = \"zones\"\nudp-max-payload = 4096\nudp-max-amplification = 0\n").unwrap();

    let ns = format!("wp-mtu-{}", std::process::id());
    let run = |args: &[&str]| Command::new(args[0]).args(&args[1..]).output().unwrap();
    let _ = run(&["ip", "netns", "del", &ns]);
    assert!(run(&["ip", "netns", "add", &ns]).status.success());
    assert!(run(&["ip", "-n", &ns, "link", "set", "lo", "mtu", "1280", "up"]).status.success());
    let mut child = Command::new("ip")
        .args(["netns", "exec", &ns, env!("CARGO_BIN_EXE_waypost"), "serve", "--config"])
        .arg(dir.join("waypost.toml"))
        .args(["--dns-listen", "127.0.0.1:53", "--dns-listen", "[::1]:53", "--http-listen", "127.0.0.1:8053"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let kdig_at = |server: &str, extra: &[&str], name: &str| {
        let mut args = vec!["ip", "netns", "exec", &ns, "kdig", server, "-p", "53", "+retry=0", "+timeout=2", "+bufsize=4096", "+ignore"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[name, "TXT"]);
        String::from_utf8_lossy(&run(&args).stdout).to_string()
    };
    let kdig = |extra: &[&str], name: &str| kdig_at("@127.0.0.1", extra, name);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !kdig(&[], "fits.mtu.test.").contains("status: NOERROR") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let fits = kdig(&[], "fits.mtu.test.");
    let big_udp = kdig(&[], "big.mtu.test.");
    let big_tcp = kdig(&["+tcp"], "big.mtu.test.");
    let fits_v6 = kdig_at("@::1", &[], "fits.mtu.test.");
    let big_v6 = kdig_at("@::1", &[], "big.mtu.test.");
    let metrics = run(&["ip", "netns", "exec", &ns, "python3", "-c", "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8053/metrics').read().decode())"]);
    let metrics = String::from_utf8_lossy(&metrics.stdout).to_string();
    let _ = child.kill();
    let _ = child.wait();
    let _ = run(&["ip", "netns", "del", &ns]);
    drop(tmp);

    let flags = |out: &str| out.lines().find(|l| l.contains("Flags:")).unwrap_or_default().to_string();
    let answers = |out: &str| out.lines().find_map(|l| l.split("ANSWER: ").nth(1)).and_then(|r| r.split(';').next()).map(|n| n.trim().to_string());
    assert!(fits.contains("status: NOERROR") && !flags(&fits).contains(" tc"), "a 1.1 KB answer goes out whole over UDP:\n{fits}");
    assert_eq!(answers(&fits).as_deref(), Some("1"), "{fits}");
    assert!(big_udp.contains("status: NOERROR") && flags(&big_udp).contains(" tc"), "a 2.6 KB answer over a 1280-byte MTU gets TC, not fragments:\n{big_udp}");
    assert_eq!(answers(&big_udp).as_deref(), Some("0"), "{big_udp}");
    assert_eq!(answers(&big_tcp).as_deref(), Some("12"), "over TCP the whole RRset:\n{big_tcp}");
    assert_eq!(answers(&fits_v6).as_deref(), Some("1"), "IPv6, 1.1 KB:\n{fits_v6}");
    assert!(flags(&big_v6).contains(" tc") && answers(&big_v6).as_deref() == Some("0"), "IPv6, 2.6 KB: TC, no fragments:\n{big_v6}");
    assert!(metrics.lines().any(|l| l.starts_with("waypost_udp_too_big_total 2")), "each re-answer is counted:\n{metrics}");
}
