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
