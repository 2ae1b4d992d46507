//! The real binary: bound addresses are logged, SIGHUP reloads, SIGTERM exits 0.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use crate::support::{query, udp, TempDir};

fn zone(dir: &std::path::Path, serial: u32, addr: &str) {
    std::fs::write(
        dir.join("proc.test.zone"),
        format!("$TTL 60\n@ SOA ns1 host {serial} 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.1\nwww A {addr}\n"),
    )
    .unwrap();
}

/// The server process, killed when dropped so that a failed assertion does not leave it
/// running (holding the test's output pipe open).
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts `waypost serve` on port 0 and returns it with the UDP address from its log.
fn spawn(dir: &std::path::Path) -> (Server, SocketAddr, mpsc::Receiver<String>) {
    spawn_with(dir, &[])
}

/// As [`spawn`], with more `serve` arguments.
fn spawn_with(dir: &std::path::Path, extra: &[&str]) -> (Server, SocketAddr, mpsc::Receiver<String>) {
    let mut child = Server(Command::new(env!("CARGO_BIN_EXE_waypost"))
        .args(["serve", "--dns-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--udp-workers", "1", "--zones"])
        .arg(dir)
        .args(extra)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap());
    let (tx, rx) = mpsc::channel();
    let stderr = child.0.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) else {
            panic!("server did not log its address");
        };
        if let Some(rest) = line.split("udp=").nth(1) {
            let addr = rest.split_whitespace().next().unwrap().parse().unwrap();
            return (child, addr, rx);
        }
    }
}

fn www(addr: SocketAddr) -> String {
    udp(addr, &query("www.proc.test.", RecordType::A, None)).answers[0].data.to_string()
}

#[test]
fn sighup_reloads_and_sigterm_exits_cleanly() {
    let dir = TempDir::new("proc");
    zone(&dir.0, 1, "192.0.2.10");
    let (mut child, addr, logs) = spawn(&dir.0);
    assert_eq!(www(addr), "192.0.2.10");

    zone(&dir.0, 2, "192.0.2.20");
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.0.id() as i32, libc::SIGHUP) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while www(addr) != "192.0.2.20" {
        assert!(Instant::now() < deadline, "SIGHUP did not reload");
        std::thread::sleep(Duration::from_millis(50));
    }

    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "SIGTERM did not stop the server");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    let all: Vec<String> = logs.try_iter().collect();
    assert!(all.iter().any(|l| l.contains("reloaded")), "{all:?}");
    assert!(all.iter().any(|l| l.contains("shutting down")), "{all:?}");
}

/// `--tcp-threads N` (`server.tcp-threads`) starts N TCP threads, whatever the CPU count,
/// and TCP answers on them.
#[test]
fn tcp_threads_can_be_set() {
    let dir = TempDir::new("proc-tcp");
    zone(&dir.0, 1, "192.0.2.10");
    let (child, addr, _logs) = spawn_with(&dir.0, &["--tcp-threads", "3"]);
    let tcp_threads = || {
        std::fs::read_dir(format!("/proc/{}/task", child.0.id()))
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|name| name.starts_with("tcp-"))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while tcp_threads() != 3 {
        assert!(Instant::now() < deadline, "{} TCP threads, not 3", tcp_threads());
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = crate::support::tcp(addr, &query("www.proc.test.", RecordType::A, None));
    assert_eq!(r.answers[0].data.to_string(), "192.0.2.10");
}
