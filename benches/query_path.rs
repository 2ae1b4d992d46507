//! Criterion benchmark of the in-process query path: packet bytes in → response bytes out,
//! for an A hit, an NXDOMAIN and a referral, against the differential-test zones; and a
//! geo service name with EDNS Client Subnet, against the example configuration.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use waypost::answer::{answer_packet, Transport};
use waypost::config::LoadLimits;
use waypost::snapshot::Snapshot;
use waypost::zones::load_catalog;

fn packet(name: &str, qtype: u16, edns: bool) -> Vec<u8> {
    let mut p = vec![0x12, 0x34, 0x00, 0x00, 0, 1, 0, 0, 0, 0, 0, u8::from(edns)];
    for label in name.trim_end_matches('.').split('.') {
        p.push(label.len() as u8);
        p.extend_from_slice(label.as_bytes());
    }
    p.push(0);
    p.extend_from_slice(&qtype.to_be_bytes());
    p.extend_from_slice(&1u16.to_be_bytes());
    if edns {
        p.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    }
    p
}

/// A query with an ECS option for an IPv4 /24 (RFC 7871 §6).
fn ecs_packet(name: &str, subnet: [u8; 3]) -> Vec<u8> {
    let mut p = packet(name, 1, false);
    p[11] = 1;
    p.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 11]);
    p.extend_from_slice(&[0, 8, 0, 7, 0, 1, 24, 0]);
    p.extend_from_slice(&subnet);
    p
}

fn bench(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/zones");
    let catalog = load_catalog(&dir, &LoadLimits::default(), None).expect("test zones load").catalog;
    let snap = Snapshot::from_catalog(catalog);
    let client = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut out = Vec::with_capacity(65535);
    let mut g = c.benchmark_group("answer_packet");
    g.throughput(Throughput::Elements(1));
    for (label, name, qtype, edns) in [
        ("a_hit", "ns1.example.com.", 1u16, false),
        ("a_hit_edns", "ns1.example.com.", 1, true),
        ("nxdomain", "nothere.example.com.", 1, true),
        ("referral", "www.sub.example.com.", 1, true),
        ("wildcard", "x.wild.example.com.", 1, true),
        ("cname_chain", "chain1.example.com.", 1, true),
    ] {
        let p = packet(name, qtype, edns);
        assert!(answer_packet(&snap, &p, Transport::Udp, client, &mut out).is_some());
        g.bench_function(label, |b| {
            b.iter(|| answer_packet(&snap, std::hint::black_box(&p), Transport::Udp, client, &mut out))
        });
    }

    // A service answer: ECS from ten /24s (as benches/load-geo.sh spreads them), so each
    // iteration also exercises the per-thread decision cache's lookup.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (_, geo, _) = waypost::control::load_all(Some(&root.join("waypost.toml")), &Default::default(), None, None)
        .unwrap_or_else(|e| panic!("example config loads: {e:?}"));
    let subnets = [[81, 2, 69], [89, 160, 20], [216, 160, 83], [175, 16, 199], [214, 0, 1], [10, 20, 30], [8, 8, 8], [1, 2, 3], [2, 125, 160], [5, 6, 7]];
    let packets: Vec<Vec<u8>> = subnets.iter().map(|s| ecs_packet("web.example.com.", *s)).collect();
    for p in &packets {
        assert!(answer_packet(&geo, p, Transport::Udp, client, &mut out).is_some_and(|o| o.service.is_some()));
    }
    let mut i = 0;
    g.bench_function("geo_service_ecs", |b| {
        b.iter(|| {
            i = (i + 1) % packets.len();
            answer_packet(&geo, std::hint::black_box(&packets[i]), Transport::Udp, client, &mut out)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
