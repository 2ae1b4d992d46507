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
