//! The pure answer function on hand-made packets; the wire-level cases are in tests/it.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use super::*;
use crate::config::LoadLimits;
use crate::zones::{load_catalog, Catalog};

fn snapshot() -> &'static Snapshot {
    static C: std::sync::OnceLock<Snapshot> = std::sync::OnceLock::new();
    C.get_or_init(|| Snapshot::from_catalog(build_catalog()))
}

fn build_catalog() -> Catalog {
    // The catalog is in memory once loaded: the directory goes when this returns.
    let dir = crate::test_dir::TestDir::new("answer");
    let zone: PathBuf = dir.join("example.org.zone");
    std::fs::write(
        &zone,
        "$TTL 300\n@ SOA ns1 host 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.80\n*.w TXT \"wild\"\n",
    )
    .unwrap();
    load_catalog(&dir, &LoadLimits::default(), None).unwrap().catalog
}

fn packet(name: &[u8], qtype: u16, ecs: Option<&[u8]>) -> Vec<u8> {
    let mut p = vec![0xbe, 0xef, 0x01, 0x10, 0, 1, 0, 0, 0, 0, 0, u8::from(ecs.is_some())];
    p.extend_from_slice(name);
    p.extend_from_slice(&qtype.to_be_bytes());
    p.extend_from_slice(&[0, 1]);
    if let Some(ecs) = ecs {
        let rdlen = 4 + ecs.len();
        p.extend_from_slice(&[0, 0, 41, 0x10, 0x00, 0, 0, 0, 0]);
        p.extend_from_slice(&(rdlen as u16).to_be_bytes());
        p.extend_from_slice(&8u16.to_be_bytes());
        p.extend_from_slice(&(ecs.len() as u16).to_be_bytes());
        p.extend_from_slice(ecs);
    }
    p
}

fn run(p: &[u8]) -> (Option<Outcome>, Vec<u8>) {
    let mut out = Vec::new();
    let o = answer_packet(snapshot(), p, Transport::Udp, IpAddr::V4(Ipv4Addr::LOCALHOST), &mut out);
    (o, out)
}

#[test]
fn a_hit_sets_aa_copies_rd_and_clears_cd() {
    let (o, out) = run(&packet(b"\x03www\x07example\x03org\x00", 1, None));
    assert_eq!(o.unwrap().rcode, rcode::NOERROR);
    assert_eq!(out[2], 0x85, "QR AA RD");
    assert_eq!(out[3], 0x00, "CD cleared, RA unset");
    assert_eq!(&out[6..8], &[0, 1]);
}

#[test]
fn static_answers_echo_ecs_with_scope_zero() {
    let (o, out) = run(&packet(b"\x03www\x07example\x03org\x00", 1, Some(&[0, 1, 24, 0, 192, 0, 2])));
    assert_eq!(o.unwrap().rcode, rcode::NOERROR);
    // the ECS option closes the packet: family 1, source 24, scope 0, 3 address bytes
    assert_eq!(&out[out.len() - 7..], &[0, 1, 24, 0, 192, 0, 2]);
}

#[test]
fn malformed_ecs_is_formerr() {
    let (o, out) = run(&packet(b"\x03www\x07example\x03org\x00", 1, Some(&[0, 1, 24, 4, 192, 0, 2])));
    assert_eq!(o.unwrap().rcode, rcode::FORMERR);
    assert_eq!(out[3] & 0x0f, 1);
}

#[test]
fn out_of_zone_is_refused_with_ede_20_when_edns() {
    let (o, out) = run(&packet(b"\x07example\x03net\x00", 1, Some(&[0, 1, 0, 0])));
    assert_eq!(o.unwrap().rcode, rcode::REFUSED);
    assert_eq!(out[2] & 0x04, 0, "no AA");
    let ede = [0u8, 15, 0, 2, 0, 20];
    assert!(out.windows(6).any(|w| w == ede), "EDE 20 present");
}

#[test]
fn qtype_zero_is_notimp_and_class_any_is_answered_like_in() {
    let (o, _) = run(&packet(b"\x03www\x07example\x03org\x00", 0, None));
    assert_eq!(o.unwrap().rcode, rcode::NOTIMP);
    let mut p = packet(b"\x03www\x07example\x03org\x00", 1, None);
    let n = p.len();
    p[n - 1] = 255;
    let (o, out) = run(&p);
    assert_eq!(o.unwrap().rcode, rcode::NOERROR);
    assert_eq!(&out[6..8], &[0, 1]);
}

/// Stable fallback for fuzzing (see fuzz/): random and bit-flipped packets through the
/// real answer function, unguarded, so a panic fails the test; every response it makes
/// must parse as a DNS message (parse → answer → re-parse round trip).
#[test]
fn random_and_bit_flipped_packets_never_panic_and_responses_parse() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let seeds = [
        packet(b"\x03www\x07example\x03org\x00", 1, None),
        packet(b"\x03www\x07example\x03org\x00", 28, Some(&[0, 1, 24, 0, 192, 0, 2])),
        packet(b"\x01x\x01w\x07example\x03org\x00", 255, Some(&[0, 2, 48, 0, 0x20, 1, 0x0d, 0xb8, 0, 0])),
        packet(b"\x07example\x03org\x00", 6, None),
    ];
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut answered = 0u32;
    for i in 0..200_000u32 {
        if std::time::Instant::now() > deadline {
            break;
        }
        let p: Vec<u8> = if i % 2 == 0 {
            let len = rng.random_range(0..300);
            (0..len).map(|_| rng.random()).collect()
        } else {
            let mut p = seeds[(i as usize / 2) % seeds.len()].clone();
            for _ in 0..rng.random_range(1..6) {
                let at = rng.random_range(0..p.len());
                p[at] ^= 1 << rng.random_range(0..8);
            }
            if rng.random_bool(0.1) {
                p.truncate(rng.random_range(0..p.len()));
            }
            p
        };
        if answer_packet(snapshot(), &p, Transport::Udp, IpAddr::V4(Ipv4Addr::LOCALHOST), &mut out).is_some() {
            answered += 1;
            assert!(hickory_proto::op::Message::from_vec(&out).is_ok() || out.len() == 12 || out[4..6] == [0, 0], "response to {p:?} does not parse: {out:?}");
        }
    }
    assert!(answered > 1000, "the bit-flipped seeds mostly get answers ({answered})");
}

/// A zone with a DNAME at its apex and two DNAMEs pointing at each other.
#[test]
fn dname_loops_stop_and_an_apex_dname_substitutes() {
    let dir = crate::test_dir::TestDir::new("dname");
    std::fs::write(dir.join("loop.test.zone"), "$ORIGIN loop.test.\n$TTL 300\n@ SOA ns1.example.org. host 1 3600 600 86400 60\n@ NS ns1.example.org.\nl1 DNAME l2.loop.test.\nl2 DNAME l1.loop.test.\n").unwrap();
    std::fs::write(dir.join("apex.test.zone"), "$ORIGIN apex.test.\n$TTL 300\n@ SOA ns1.example.org. host 1 3600 600 86400 60\n@ NS ns1.example.org.\n@ DNAME loop.test.\n").unwrap();
    let catalog = load_catalog(&dir, &LoadLimits::default(), None).unwrap().catalog;
    drop(dir);
    let snap = Snapshot::from_catalog(catalog);
    let ask = |name: &[u8]| {
        let mut out = Vec::new();
        let o = answer_packet(&snap, &packet(name, 1, None), Transport::Udp, IpAddr::V4(Ipv4Addr::LOCALHOST), &mut out).unwrap();
        let m = hickory_proto::op::Message::from_vec(&out).unwrap();
        let answer: Vec<(String, u16)> = m.answers.iter().map(|r| (r.name.to_ascii(), u16::from(r.record_type()))).collect();
        (o.rcode, answer)
    };
    // x.l1 -> DNAME l1, CNAME x.l2 -> DNAME l2, CNAME x.l1: a loop, so the chain stops.
    let (rc, answer) = ask(b"\x01x\x02l1\x04loop\x04test\x00");
    assert_eq!(rc, rcode::NOERROR);
    let want = [("l1.loop.test.", 39), ("x.l1.loop.test.", 5), ("l2.loop.test.", 39), ("x.l2.loop.test.", 5)];
    assert_eq!(answer, want.map(|(n, t)| (n.to_string(), t)).to_vec());
    // The apex DNAME moves x.apex.test to x.loop.test, another zone: DNAME + CNAME, stop.
    let (rc, answer) = ask(b"\x01x\x04apex\x04test\x00");
    assert_eq!(rc, rcode::NOERROR);
    assert_eq!(answer, vec![("apex.test.".to_string(), 39), ("x.apex.test.".to_string(), 5)]);
    // The apex itself is an ordinary name: its SOA is served.
    assert_eq!(ask(b"\x04apex\x04test\x00").0, rcode::NOERROR);
}

/// A zone Waypost signs with compact denial (RFC 9824), signed as a reload signs it.
fn compact_snapshot() -> &'static Snapshot {
    static C: std::sync::OnceLock<Snapshot> = std::sync::OnceLock::new();
    C.get_or_init(|| {
        let dir = crate::test_dir::TestDir::new("answer-compact");
        let zones = dir.join("zones");
        std::fs::create_dir_all(&zones).unwrap();
        std::fs::write(
            zones.join("example.org.zone"),
            "$TTL 300\n@ SOA ns1 host 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.80\n*.w TXT \"wild\"\n*.c CNAME www\na.b.e A 192.0.2.9\n",
        )
        .unwrap();
        let catalog = load_catalog(&zones, &LoadLimits::default(), None).unwrap().catalog;
        let keys = dir.join("keys");
        let now = crate::health::now_secs();
        crate::signer::keys::generate(&keys, &crate::wire::Name::from_text("example.org.").unwrap(), crate::signer::keys::ECDSAP256SHA256, now).unwrap();
        let cfg = crate::config::SigningConfig {
            key_dir: keys,
            policy: crate::config::SigningPolicy { denial: crate::config::DenialMode::Compact, validity: 21 * 86_400, refresh: 7 * 86_400 },
        };
        let check = crate::zones::dnssec::SignatureCheck { now, expiry_margin: 0 };
        let (signed, _) = crate::signer::sign_catalog(&catalog, Some(&cfg), &[], &crate::signer::Signed::default(), now, check, &mut |_, _, first| first).unwrap();
        Snapshot::from_catalog(signed)
    })
}

/// A DO query (EDNS 1232) for `name` `qtype`.
fn do_packet(name: &[u8], qtype: u16) -> Vec<u8> {
    let mut p = vec![0xbe, 0xef, 0x00, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
    p.extend_from_slice(name);
    p.extend_from_slice(&qtype.to_be_bytes());
    p.extend_from_slice(&[0, 1, 0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0]);
    p
}

/// Compact denial through the pure answer function: names that do not exist (up to the
/// longest name there is, where `\000.name` would be too long) are NOERROR with one
/// signed NSEC; wildcard answers, wildcard NODATA and empty non-terminals too; and random
/// and bit-flipped DO queries never panic and always parse (the stable fuzz fallback, on
/// the paths that sign per query).
#[test]
fn compact_denial_answers_parse_for_every_name_and_never_panic() {
    use rand::{Rng, SeedableRng};
    let snap = compact_snapshot();
    let mut out = Vec::new();
    let ask = |p: &[u8], out: &mut Vec<u8>| answer_packet(snap, p, Transport::Tcp, IpAddr::V4(Ipv4Addr::LOCALHOST), out);
    // A name of 255 octets below example.org. (three labels of 62 octets and one of 52).
    let mut long = Vec::new();
    for l in [62usize, 62, 62, 52] {
        long.push(l as u8);
        long.extend(std::iter::repeat_n(b'x', l));
    }
    long.extend_from_slice(b"\x07example\x03org\x00");
    assert!(long.len() >= 254, "{}", long.len());
    for (name, qtype) in [
        (&b"\x07missing\x07example\x03org\x00"[..], 1u16),
        (&long[..], 1),
        (b"\x01q\x01w\x07example\x03org\x00", 16),
        (b"\x01q\x01w\x07example\x03org\x00", 1),
        (b"\x01q\x01c\x07example\x03org\x00", 1),
        (b"\x01b\x01e\x07example\x03org\x00", 1),
        (b"\x03www\x07example\x03org\x00", 15),
    ] {
        let o = ask(&do_packet(name, qtype), &mut out).expect("answered");
        assert_eq!(o.rcode, rcode::NOERROR, "{name:?} {qtype}");
        let m = hickory_proto::op::Message::from_vec(&out).unwrap_or_else(|e| panic!("{name:?} {qtype}: {e}: {out:?}"));
        let sigs = m.answers.iter().chain(&m.authorities).filter(|r| u16::from(r.record_type()) == rtype::RRSIG).count();
        assert!(sigs >= 1, "{name:?} {qtype}: no RRSIG in {m:?}");
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xc0ffee);
    let seeds = [do_packet(b"\x07missing\x07example\x03org\x00", 1), do_packet(b"\x01q\x01w\x07example\x03org\x00", 16), do_packet(&long, 28)];
    for i in 0..20_000u32 {
        let mut p = seeds[i as usize % seeds.len()].clone();
        for _ in 0..rng.random_range(1..4) {
            let at = rng.random_range(12..p.len());
            p[at] ^= 1 << rng.random_range(0..8);
        }
        if ask(&p, &mut out).is_some() {
            assert!(hickory_proto::op::Message::from_vec(&out).is_ok() || out[4..6] == [0, 0], "response to {p:?} does not parse: {out:?}");
        }
    }
}
