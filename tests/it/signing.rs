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
        format!("version = 1\n[server]\nzones-dir = \"zones\"\n[dnssec]\nkey-dir = \"keys\"\ndenial = \"{denial}\"\n"),
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
    let cases = validator_cases(if denial == "nsec" { Denial::Nsec } else { Denial::Nsec3 });
    let (lines, all_ok) = run_cases(&resolver, &cases);
    eprintln!("{test}: {} against waypost-signed example.com.:\n{}", kind.name(), lines.join("\n"));
    // 0x20: the same names in mixed case validate too (signatures are over lowercase names).
    let mixed = resolver.ask("HoSt.ExAmPlE.cOm.", 1);
    let mixed_ok = mixed.as_ref().is_ok_and(|a| a.rcode == 0 && a.ad);
    assert!(all_ok && mixed_ok, "{test}:\n{}\nmixed case: {mixed:?}\n{}", lines.join("\n"), resolver.log());
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
