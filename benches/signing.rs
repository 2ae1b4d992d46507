//! Criterion benchmarks of Waypost's own signing (DNSSEC part 2): signatures per second per
//! core (P-256, Ed25519); building a snapshot of a 1,000-name zone with 100 services × 3
//! data centres, signed and unsigned; and what one drained data centre adds to a health
//! publish with 1,000 signed services (the signature table reuses what was signed before).

use std::path::Path;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use waypost::config::{Config, Overrides};
use waypost::control::build_snapshot;
use waypost::health::{Action, HealthView};
use waypost::signer::keys;
use waypost::signer::sign::{sign_rrset, Window};
use waypost::wire::Name;

/// A zone of `names` names and a config with `services` services over 3 data centres.
fn setup(dir: &Path, names: usize, services: usize, signed: bool) -> Config {
    let zones = dir.join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    let mut zone = String::from("$ORIGIN bench.test.\n$TTL 300\n@ SOA ns1 host 1 3600 600 86400 300\n@ NS ns1\nns1 A 192.0.2.1\n");
    for i in 0..names {
        zone.push_str(&format!("h{i} A 198.51.{}.{}\n", i / 250, i % 250 + 1));
    }
    std::fs::write(zones.join("bench.test.zone"), zone).unwrap();
    let mut cfg = String::from("version = 1\n[server]\nzones-dir = \"zones\"\n[geo.map]\ndefault = [\"a\", \"b\", \"c\"]\n");
    for (d, dc) in ["a", "b", "c"].iter().enumerate() {
        cfg.push_str(&format!("[datacenters.{dc}]\nlocation = [0.0, {}.0]\n[datacenters.{dc}.services]\n", d * 10));
        for s in 0..services {
            cfg.push_str(&format!("\"s{s}.bench.test.\" = [\"203.0.{d}.{}\", \"2001:db8:{d}::{s:x}\"]\n", s % 250 + 1));
        }
    }
    for s in 0..services {
        cfg.push_str(&format!("[services.\"s{s}.bench.test.\"]\nttl = 60\npolicy = \"nearest-n\"\nn = 2\n"));
    }
    if signed {
        cfg.push_str("[dnssec]\nkey-dir = \"keys\"\n");
        keys::generate(&dir.join("keys"), &Name::from_text("bench.test.").unwrap(), keys::ECDSAP256SHA256, 1_796_162_213).unwrap();
    }
    let path = dir.join("waypost.toml");
    std::fs::write(&path, cfg).unwrap();
    Config::load(Some(&path), &Overrides::default()).unwrap()
}

fn dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("waypost-bench-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn bench(c: &mut Criterion) {
    let rng = ring::rand::SystemRandom::new();
    let d = dir("keys");
    let zone = Name::from_text("bench.test.").unwrap();
    let owner = Name::from_text("www.bench.test.").unwrap();
    let rdatas: Vec<Box<[u8]>> = vec![Box::new([192, 0, 2, 1]), Box::new([192, 0, 2, 2])];
    let window = Window { inception: 1_796_000_000, expiration: 1_798_000_000 };
    let mut g = c.benchmark_group("sign_rrset");
    for (name, alg) in [("p256", keys::ECDSAP256SHA256), ("ed25519", keys::ED25519)] {
        let path = keys::generate(&d, &zone, alg, 0).unwrap();
        let key = keys::read_key(&path.with_extension("private")).unwrap();
        g.bench_function(name, |b| b.iter(|| sign_rrset(owner.as_wire(), 1, 300, &rdatas, &key, window, &rng)));
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&d);

    let mut g = c.benchmark_group("snapshot");
    g.sample_size(10);
    for signed in [false, true] {
        let d = dir(if signed { "signed" } else { "unsigned" });
        let cfg = setup(&d, 1000, 100, signed);
        g.bench_function(if signed { "1000 names + 100 services x 3 DCs, signed" } else { "1000 names + 100 services x 3 DCs, unsigned" }, |b| {
            b.iter(|| build_snapshot(&cfg, None, &HealthView::default()).unwrap())
        });
        let _ = std::fs::remove_dir_all(&d);
    }
    g.finish();

    // A health publish with 1,000 services: one data centre drained, then back.
    let mut g = c.benchmark_group("health_flip_1000_services");
    g.sample_size(10);
    for signed in [false, true] {
        let d = dir(if signed { "flip-signed" } else { "flip-unsigned" });
        let cfg = setup(&d, 10, 1000, signed);
        let (snap, _) = build_snapshot(&cfg, None, &HealthView::default()).unwrap();
        let mut drained = HealthView::default();
        drained.datacenters.insert("b".into(), Action::Drain);
        // Both views signed once, as a running server would have them after one flip.
        let _ = snap.derive(snap.geo.clone(), drained.clone());
        let mut flip = false;
        g.bench_function(if signed { "signed" } else { "unsigned" }, |b| {
            b.iter(|| {
                flip = !flip;
                snap.derive(Arc::clone(&snap.geo), if flip { drained.clone() } else { HealthView::default() })
            })
        });
        let _ = std::fs::remove_dir_all(&d);
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
