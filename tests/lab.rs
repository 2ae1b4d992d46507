//! The fleet lab as a test: three data centres and a client in network namespaces,
//! four scenarios end to end (deploy/lab/test.sh). A separate test binary, so cargo runs
//! it after the main suite rather than beside it (its timings want quiet cores).
//!
//! Needs root and iproute2. Elsewhere it is skipped, except under CI (env `CI` set),
//! where it must run.

use std::path::Path;
use std::process::Command;

#[test]
fn fleet_lab_scenarios_pass() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let is_root = Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let has_ip = Command::new("ip").args(["netns", "list"]).output().is_ok_and(|o| o.status.success());
    if !(is_root && has_ip) {
        assert!(std::env::var_os("CI").is_none(), "CI must be able to run the namespace lab (root: {is_root}, ip netns: {has_ip})");
        eprintln!("SKIPPED fleet_lab_scenarios_pass: needs root and iproute2 (ip netns)");
        return;
    }
    let status = Command::new("bash")
        .arg(root.join("deploy/lab/test.sh"))
        .current_dir(root)
        .env("WAYPOST", env!("CARGO_BIN_EXE_waypost"))
        .status()
        .expect("bash runs");
    assert!(status.success(), "deploy/lab/test.sh failed ({status})");
}

/// Runs as `nobody` with only CAP_NET_BIND_SERVICE, in a private network namespace:
/// binds port 53 and answers; without the capability it fails cleanly.
#[test]
fn runs_unprivileged_with_cap_net_bind_service() {
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
