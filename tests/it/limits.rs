//! Limits that protect the server: response rate limiting over the wire.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::rr::RecordType;

use crate::support::{data, query, TempDir, TestServer};

const RATE: u64 = 50;

#[test]
fn rrl_limits_a_flooding_slash_24_with_slips_while_another_is_served() {
    let dir = TempDir::new("rrl");
    let cfg = dir.0.join("waypost.toml");
    std::fs::write(&cfg, format!("version = 1\n[server]\nzones-dir = {:?}\n[rrl]\nrate = {RATE}\nslip = 2\nexempt = []\n", data("zones").display().to_string())).unwrap();
    let s = TestServer::start_config(&cfg);
    let q = query("ns1.example.com.", RecordType::A, None).to_vec().unwrap();

    // Start at a second boundary and flood for exactly three seconds of buckets.
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    std::thread::sleep(Duration::from_nanos(1_000_000_000 - now.subsec_nanos() as u64) + Duration::from_millis(20));
    let flood = UdpSocket::bind("127.0.5.1:0").unwrap();
    flood.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let (ok, tc, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
    let reader = {
        let (sock, ok, tc, stop) = (flood.try_clone().unwrap(), ok.clone(), tc.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                if let Ok(n) = sock.recv(&mut buf) {
                    if n >= 12 && buf[2] & 0x02 != 0 {
                        tc.fetch_add(1, Ordering::Relaxed);
                    } else if n >= 12 {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };
    // Meanwhile another /24 asks politely and must be answered every time.
    let polite = std::thread::spawn({
        let server = s.udp;
        let q = q.clone();
        move || {
            let sock = UdpSocket::bind("127.0.6.1:0").unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
            let mut answered = 0;
            let mut buf = [0u8; 2048];
            for _ in 0..40 {
                sock.send_to(&q, server).unwrap();
                if let Ok(n) = sock.recv(&mut buf) {
                    if n >= 12 && buf[2] & 0x02 == 0 {
                        answered += 1;
                    }
                }
                std::thread::sleep(Duration::from_millis(60));
            }
            answered
        }
    });
    let start = std::time::Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < Duration::from_millis(2950) {
        for _ in 0..5 {
            flood.send_to(&q, s.udp).unwrap();
            sent += 1;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    let (ok, tc) = (ok.load(Ordering::Relaxed), tc.load(Ordering::Relaxed));
    let want = RATE * 3;
    eprintln!("rrl: sent {sent}, answered {ok} (want {want} ± 10%), slipped {tc}");
    assert!(sent > 3 * want * 4, "the flood must exceed the rate clearly ({sent})");
    assert!(ok.abs_diff(want) * 10 <= want, "answered {ok}, want {want} ± 10%");
    let limited = sent - ok;
    assert!(tc.abs_diff(limited / 2) * 5 <= limited / 2 + 5, "slip 2: about half of {limited} limited responses are TC, got {tc}");
    assert_eq!(polite.join().unwrap(), 40, "another /24 is served normally");
}

#[test]
fn one_client_cannot_take_every_tcp_slot() {
    use std::io::Write;
    let dir = TempDir::new("tcp-per-client");
    let cfg = dir.0.join("waypost.toml");
    std::fs::write(&cfg, format!("version = 1\n[server]\nzones-dir = {:?}\ntcp-max-connections-per-client = 2\n", data("zones").display().to_string())).unwrap();
    let s = TestServer::start_config(&cfg);
    let q = query("ns1.example.com.", RecordType::A, None).to_vec().unwrap();
    let framed = [&(q.len() as u16).to_be_bytes()[..], &q].concat();
    let connect_from = |ip: &str| {
        let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        sock.bind(&format!("{ip}:0").parse::<std::net::SocketAddr>().unwrap().into()).unwrap();
        sock.connect(&s.tcp.into()).unwrap();
        let mut c: std::net::TcpStream = sock.into();
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let _ = c.write_all(&framed);
        c
    };
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = connect_from("127.0.0.1");
        assert!(crate::support::read_framed(&mut c).is_some());
        held.push(c);
    }
    let mut third = connect_from("127.0.0.1");
    assert!(crate::support::read_framed(&mut third).is_none(), "a third connection from the same address is closed");
    let mut other = connect_from("127.0.0.2");
    assert!(crate::support::read_framed(&mut other).is_some(), "another client is served");
}

/// Every malformed shape from the hardening catalogue gets its documented reaction, and
/// the server answers a normal query after each one.
#[test]
fn malformed_packet_catalogue_gets_the_documented_reactions() {
    let s = crate::support::TestServer::start_zones(&data("zones"));
    let normal = query("ns1.example.com.", RecordType::A, None).to_vec().unwrap();
    let hdr = |id: u16, flags: u16, qd: u16, an: u16, ns: u16, ar: u16| -> Vec<u8> { [id, flags, qd, an, ns, ar].iter().flat_map(|v| v.to_be_bytes()).collect() };
    let q = b"\x07example\x03com\x00\x00\x01\x00\x01".to_vec();
    let opt = |version: u8| vec![0u8, 0, 41, 4, 0xd0, 0, version, 0, 0, 0, 0];
    let long_label = [vec![64u8], vec![b'a'; 64], vec![0, 0, 1, 0, 1]].concat();
    let long_name: Vec<u8> = [(0..5).flat_map(|_| [vec![60u8], vec![b'b'; 60]].concat()).collect::<Vec<u8>>(), vec![0, 0, 1, 0, 1]].concat();
    enum Want {
        Drop,
        Rcode(u8),
        /// BADVERS: header RCODE 0 with extended RCODE 1 in the OPT record.
        BadVers,
    }
    let mut cases: Vec<(String, Vec<u8>, Want)> = Vec::new();
    for len in 0..=17usize {
        cases.push((format!("{len} zero bytes"), vec![0u8; len], if len < 12 { Want::Drop } else { Want::Rcode(1) }));
    }
    cases.push(("QDCOUNT 0".into(), hdr(1, 0, 0, 0, 0, 0), Want::Rcode(1)));
    cases.push(("QDCOUNT 2".into(), [hdr(2, 0, 2, 0, 0, 0), q.clone(), q.clone()].concat(), Want::Rcode(1)));
    cases.push(("ANCOUNT 1, no record".into(), [hdr(3, 0, 1, 1, 0, 0), q.clone()].concat(), Want::Rcode(1)));
    cases.push(("ARCOUNT 5, no records".into(), [hdr(4, 0, 1, 0, 0, 5), q.clone()].concat(), Want::Rcode(1)));
    cases.push(("pointer in the question".into(), [hdr(5, 0, 1, 0, 0, 0), vec![0xc0, 0x0c, 0, 1, 0, 1]].concat(), Want::Rcode(1)));
    cases.push(("compression loop in a record".into(), [hdr(6, 0, 1, 0, 0, 1), q.clone(), vec![0xc0, 0x40, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0]].concat(), Want::Rcode(1)));
    cases.push(("self-pointing record name".into(), {
        let mut p = [hdr(7, 0, 1, 0, 0, 1), q.clone()].concat();
        let at = p.len() as u16;
        p.extend_from_slice(&(0xc000 | at).to_be_bytes());
        p.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 0, 0, 0]);
        p
    }, Want::Rcode(1)));
    cases.push(("label over 63".into(), [hdr(8, 0, 1, 0, 0, 0), long_label].concat(), Want::Rcode(1)));
    cases.push(("name over 255".into(), [hdr(9, 0, 1, 0, 0, 0), long_name].concat(), Want::Rcode(1)));
    cases.push(("two OPT records".into(), [hdr(10, 0, 1, 0, 0, 2), q.clone(), opt(0), opt(0)].concat(), Want::Rcode(1)));
    cases.push(("EDNS version 1".into(), [hdr(11, 0, 1, 0, 0, 1), q.clone(), opt(1)].concat(), Want::BadVers));
    cases.push(("QTYPE 0".into(), [hdr(12, 0, 1, 0, 0, 0), b"\x07example\x03com\x00\x00\x00\x00\x01".to_vec()].concat(), Want::Rcode(4)));
    cases.push(("QTYPE 65535".into(), [hdr(13, 0, 1, 0, 0, 0), b"\x07example\x03com\x00\xff\xff\x00\x01".to_vec()].concat(), Want::Rcode(0)));
    cases.push(("QR=1".into(), [hdr(14, 0x8000, 1, 0, 0, 0), q.clone()].concat(), Want::Drop));
    cases.push(("trailing garbage".into(), [hdr(15, 0, 1, 0, 0, 0), q.clone(), vec![0xde, 0xad]].concat(), Want::Rcode(1)));
    cases.push(("truncated OPT".into(), [hdr(16, 0, 1, 0, 0, 1), q.clone(), opt(0)[..7].to_vec()].concat(), Want::Rcode(1)));
    for (what, packet, want) in cases {
        let got = crate::support::udp_raw(s.udp, &packet);
        match (want, got) {
            (Want::Drop, None) => {}
            (Want::Rcode(rc), Some(r)) => {
                assert!(r.len() >= 12 && r[2] & 0x80 != 0, "{what}: not a response");
                assert_eq!(r[3] & 0x0f, rc, "{what}: RCODE");
            }
            (Want::BadVers, Some(r)) => {
                assert_eq!(r[3] & 0x0f, 0, "{what}");
                let m = hickory_proto::op::Message::from_vec(&r).unwrap();
                assert_eq!(m.edns.unwrap().rcode_high(), 1, "{what}");
            }
            (Want::Drop, Some(r)) => panic!("{what}: answered {r:?}, should be dropped"),
            (_, None) => panic!("{what}: no answer"),
        }
        assert!(crate::support::udp_raw(s.udp, &normal).is_some(), "still answering after {what}");
    }
}

#[test]
fn udp_amplification_is_bounded_by_the_query_size() {
    let dir = TempDir::new("amplification");
    let cfg = dir.0.join("waypost.toml");
    std::fs::write(&cfg, format!("version = 1\n[server]\nzones-dir = {:?}\nudp-max-amplification = 10\n", data("zones").display().to_string())).unwrap();
    let s = TestServer::start_config(&cfg);
    // 30 A records (~525 bytes) for a 45-byte query: over 10× and over 512 → TC.
    let q = query("many.example.com.", RecordType::A, Some(4096)).to_vec().unwrap();
    let r = crate::support::udp_raw(s.udp, &q).unwrap();
    assert!(r[2] & 0x02 != 0, "TC set");
    assert!(r.len() <= (q.len() * 10).max(512), "{} bytes for a {}-byte query", r.len(), q.len());
    // The same over TCP is complete.
    let t = crate::support::tcp(s.tcp, &query("many.example.com.", RecordType::A, Some(4096)));
    assert_eq!(t.answers.len(), 30);
    // With the default (40×) the same query is answered in full over UDP.
    let d = crate::support::TestServer::start_zones(&data("zones"));
    let r = crate::support::udp_raw(d.udp, &q).unwrap();
    assert_eq!(r[2] & 0x02, 0);
}
