//! A random and bit-flipped packet storm against the real server process: at least
//! 1,000,000 packets over loopback, bounded in time. No crash, RSS stays flat, normal
//! queries still answered. Its own test binary so it runs after the main suite.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap_or(0)
}

fn query(id: u16) -> Vec<u8> {
    let mut p = vec![(id >> 8) as u8, id as u8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1];
    p.extend_from_slice(b"\x03ns1\x07example\x03com\x00\x00\x01\x00\x01");
    p.extend_from_slice(&[0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 8, 0, 8, 0, 4, 0, 1, 0, 0]);
    p
}

/// Starts the real binary on the test zones; returns it with its UDP and TCP addresses.
fn spawn_server() -> (std::process::Child, SocketAddr, SocketAddr) {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut child = Command::new(env!("CARGO_BIN_EXE_waypost"))
        .args(["serve", "--dns-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--zones"])
        .arg(format!("{root}/tests/data/zones"))
        .env("RUST_LOG", "warn,waypost::app=info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let (udp, tcp) = loop {
        let l = lines.next().expect("server log").unwrap();
        if let (Some(u), Some(t)) = (l.split("udp=").nth(1), l.split("tcp=").nth(1)) {
            let first = |x: &str| x.split_whitespace().next().unwrap().parse::<SocketAddr>().unwrap();
            break (first(u), first(t));
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, udp, tcp)
}

fn answered(server: SocketAddr) -> bool {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    (0..3).any(|i| {
        let _ = s.send_to(&query(0x7000 + i), server);
        let mut b = [0u8; 1500];
        matches!(s.recv(&mut b), Ok(n) if n > 12 && b[3] & 0x0f == 0)
    })
}

#[test]
fn a_million_packet_storm_leaves_the_server_answering_with_flat_memory() {
    let (mut child, server, _) = spawn_server();
    assert!(answered(server));
    let pid = child.id();
    let before = rss_kib(pid);

    let deadline = Instant::now() + Duration::from_secs(90);
    let senders: Vec<_> = (0..2u64)
        .map(|t| {
            std::thread::spawn(move || {
                let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
                let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ t;
                let mut next = || {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x
                };
                let base = query(1);
                let mut sent = 0u64;
                while sent < 500_000 && Instant::now() < deadline {
                    let r = next();
                    let p: Vec<u8> = if r % 2 == 0 {
                        (0..(r >> 8) % 200).map(|_| next() as u8).collect()
                    } else {
                        let mut p = base.clone();
                        for _ in 0..1 + (r >> 8) % 4 {
                            let v = next();
                            let at = (v as usize) % p.len();
                            p[at] ^= 1 << ((v >> 32) % 8);
                        }
                        p
                    };
                    if sock.send_to(&p, server).is_ok() {
                        sent += 1;
                    }
                }
                sent
            })
        })
        .collect();
    let sent: u64 = senders.into_iter().map(|h| h.join().unwrap()).sum();
    std::thread::sleep(Duration::from_millis(500));
    assert!(child.try_wait().unwrap().is_none(), "the server died during the storm");
    let after = rss_kib(pid);
    eprintln!("storm: {sent} packets sent; server RSS before {before} KiB, after {after} KiB");
    assert!(sent >= 1_000_000, "only {sent} packets were sent within the time bound");
    assert!(answered(server), "normal queries are still answered");
    assert!(after < before + 32 * 1024, "RSS grew from {before} KiB to {after} KiB");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_tcp_client_that_never_reads_does_not_grow_memory_and_is_closed() {
    use std::io::Write;
    let (mut child, _, server) = spawn_server();
    let pid = child.id();
    let before = rss_kib(pid);
    // Big answers (40 TXT records, ~3 KB each) asked again and again, never read.
    let mut q = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    q.extend_from_slice(b"\x03big\x07example\x03com\x00\x00\x10\x00\x01");
    let framed: Vec<u8> = [&(q.len() as u16).to_be_bytes()[..], &q].concat();
    let mut c = std::net::TcpStream::connect(server).unwrap();
    c.set_write_timeout(Some(Duration::from_millis(200))).unwrap();
    let start = Instant::now();
    let mut written = 0usize;
    let mut closed = false;
    while start.elapsed() < Duration::from_secs(15) {
        match c.write(&framed.repeat(64)) {
            Ok(n) => written += n,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    let after = rss_kib(pid);
    eprintln!("never-reading client: wrote {written} bytes of queries; closed by the server: {closed}; RSS {before} → {after} KiB");
    assert!(closed, "the server closes a client that never reads (write timeout)");
    assert!(after < before + 16 * 1024, "RSS grew from {before} KiB to {after} KiB");
    let _ = child.kill();
    let _ = child.wait();
}
