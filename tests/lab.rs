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
