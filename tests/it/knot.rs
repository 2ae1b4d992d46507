//! A throw-away Knot DNS (`knotd`) instance for the differential test.
//!
//! `Knot::start(zones_dir)` serves every `<origin>.zone` file of `zones_dir`
//! on a free loopback port, waits until every zone answers a SOA query and
//! returns the handle; dropping the handle kills knotd and removes its
//! temporary directory.
//!
//! Only std is used. knotd is looked up in `$KNOTD`, then in `$PATH`, then in
//! `/usr/sbin` and `/usr/local/sbin` (Debian puts it in `/usr/sbin`, which is
//! not in every user's `$PATH`).
//!
//! `start` returns `None` (after printing why) only when knotd is not
//! installed; the caller decides whether that is a skip or a failure. Once
//! knotd exists, a failure to start or to load a zone is a bug in the test
//! data or the config, so `start` panics with knotd's log.

#![allow(dead_code)]

use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Knot's maximum UDP response size. This is Knot's default
/// (`udp-max-payload`); it is written into the config explicitly because the
/// differential test depends on it: Knot advertises it in every OPT record
/// and never sends a UDP response larger than it, whatever the client's
/// EDNS payload size says.
pub const KNOT_UDP_MAX_PAYLOAD: u16 = 1232;

/// How long `start` waits for knotd to answer for every zone.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// How many times `start` tries again when knotd fails to start (the free
/// port may have been taken between the check and knotd's bind).
const START_ATTEMPTS: usize = 3;

static INSTANCE: AtomicUsize = AtomicUsize::new(0);

/// A running knotd.
pub struct Knot {
    /// UDP and TCP address knotd listens on (127.0.0.1, same port for both).
    pub addr: SocketAddr,
    /// Origins of the zones served, with the trailing dot (`example.com.`).
    pub zones: Vec<String>,
    child: Child,
    dir: PathBuf,
}

impl Knot {
    /// Starts knotd serving every `*.zone` file in `zones_dir` (the origin is
    /// the file name without `.zone`). Returns `None` when knotd is not
    /// installed.
    pub fn start(zones_dir: &Path) -> Option<Knot> {
        let knotd = match find_knotd() {
            Some(p) => p,
            None => {
                eprintln!(
                    "knot: knotd not found (looked in $KNOTD, $PATH, /usr/sbin, /usr/local/sbin); \
                     install it with `apt-get install knot`"
                );
                return None;
            }
        };
        let zones_dir = zones_dir
            .canonicalize()
            .unwrap_or_else(|e| panic!("knot: zones dir {}: {e}", zones_dir.display()));
        let zones = zone_files(&zones_dir);
        assert!(
            !zones.is_empty(),
            "knot: no *.zone files in {}",
            zones_dir.display()
        );

        let mut last_error = String::new();
        for attempt in 1..=START_ATTEMPTS {
            match start_once(&knotd, &zones) {
                Ok(knot) => return Some(knot),
                Err(e) => {
                    eprintln!("knot: start attempt {attempt} failed: {e}");
                    last_error = e;
                }
            }
        }
        panic!(
            "knot: knotd ({}) did not start: {last_error}",
            knotd.display()
        );
    }

    /// The temporary directory holding knot.conf, knotd.log and knotd's state.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// knotd's log so far (stderr and stdout).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("knotd.log")).unwrap_or_default()
    }
}

impl Drop for Knot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// `(origin, absolute path)` of every `<origin>.zone` file, sorted by origin.
fn zone_files(zones_dir: &Path) -> Vec<(String, PathBuf)> {
    let mut zones = Vec::new();
    let entries = fs::read_dir(zones_dir)
        .unwrap_or_else(|e| panic!("knot: read {}: {e}", zones_dir.display()));
    for entry in entries {
        let path = entry.expect("knot: read_dir entry").path();
        let file_name = match path.file_name().and_then(|n| n.to_str()) {
            Some(n) => n.to_string(),
            None => continue,
        };
        if let Some(stem) = file_name.strip_suffix(".zone") {
            if stem.is_empty() || !path.is_file() {
                continue;
            }
            let origin = if stem.ends_with('.') {
                stem.to_string()
            } else {
                format!("{stem}.")
            };
            zones.push((origin, path));
        }
    }
    zones.sort();
    zones
}

fn find_knotd() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("KNOTD") {
        candidates.push(PathBuf::from(p));
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            candidates.push(dir.join("knotd"));
        }
    }
    candidates.push(PathBuf::from("/usr/sbin/knotd"));
    candidates.push(PathBuf::from("/usr/local/sbin/knotd"));
    candidates.into_iter().find(|p| {
        p.is_file()
            && Command::new(p)
                .arg("-V")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
    })
}

/// A port on 127.0.0.1 that is free for both UDP and TCP right now.
pub fn free_port() -> Result<u16, String> {
    for _ in 0..50 {
        let udp =
            UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| format!("bind udp: {e}"))?;
        let port = udp
            .local_addr()
            .map_err(|e| format!("local_addr: {e}"))?
            .port();
        let tcp_free = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok();
        drop(udp);
        if tcp_free {
            return Ok(port);
        }
    }
    Err("no free loopback port for UDP+TCP".to_string())
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn write_config(dir: &Path, port: u16, zones: &[(String, PathBuf)]) -> Result<PathBuf, String> {
    let run = dir.join("run");
    let db = dir.join("db");
    fs::create_dir_all(&run).map_err(|e| format!("mkdir {}: {e}", run.display()))?;
    fs::create_dir_all(&db).map_err(|e| format!("mkdir {}: {e}", db.display()))?;

    let mut conf = String::new();
    conf.push_str("# written by tests/it/knot.rs\n");
    conf.push_str("server:\n");
    conf.push_str(&format!("    rundir: {}\n", quote(&run.to_string_lossy())));
    conf.push_str(&format!("    listen: 127.0.0.1@{port}\n"));
    conf.push_str("    udp-workers: 1\n");
    conf.push_str("    tcp-workers: 1\n");
    conf.push_str("    background-workers: 1\n");
    conf.push_str(&format!("    udp-max-payload: {KNOT_UDP_MAX_PAYLOAD}\n"));
    // Knot answers an NSID request with the host name by default; an empty
    // value turns NSID off so answers do not depend on the machine.
    conf.push_str("    nsid: \"\"\n");
    conf.push_str("log:\n");
    conf.push_str("  - target: stderr\n");
    conf.push_str("    any: info\n");
    conf.push_str("database:\n");
    conf.push_str(&format!("    storage: {}\n", quote(&db.to_string_lossy())));
    conf.push_str("template:\n");
    conf.push_str("  - id: default\n");
    conf.push_str(&format!("    storage: {}\n", quote(&db.to_string_lossy())));
    // Serve the files as they are: never write back, no journal.
    conf.push_str("    zonefile-sync: -1\n");
    conf.push_str("    zonefile-load: whole\n");
    conf.push_str("    journal-content: none\n");
    // Extra checks only log warnings; mandatory checks still refuse broken zones.
    conf.push_str("    semantic-checks: on\n");
    conf.push_str("zone:\n");
    for (origin, path) in zones {
        conf.push_str(&format!("  - domain: {}\n", quote(origin)));
        conf.push_str(&format!("    file: {}\n", quote(&path.to_string_lossy())));
    }

    let conf_path = dir.join("knot.conf");
    fs::write(&conf_path, conf).map_err(|e| format!("write {}: {e}", conf_path.display()))?;
    Ok(conf_path)
}

fn start_once(knotd: &Path, zones: &[(String, PathBuf)]) -> Result<Knot, String> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "waypost-knot-{}-{}-{}",
        std::process::id(),
        INSTANCE.fetch_add(1, Ordering::SeqCst),
        nanos
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;

    let (port, child) = match spawn_knotd(knotd, &dir, zones) {
        Ok(v) => v,
        Err(e) => {
            let _ = fs::remove_dir_all(&dir);
            return Err(e);
        }
    };

    // From here on, Drop cleans up (kills knotd, removes the dir).
    let mut knot = Knot {
        addr: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)),
        zones: zones.iter().map(|(o, _)| o.clone()).collect(),
        child,
        dir,
    };

    let deadline = Instant::now() + STARTUP_TIMEOUT;
    let mut pending: Vec<String> = knot.zones.clone();
    let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| format!("bind: {e}"))?;
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(|e| format!("set_read_timeout: {e}"))?;
    let mut id: u16 = 0x4b00;
    while !pending.is_empty() {
        if let Ok(Some(status)) = knot.child.try_wait() {
            return Err(format!("knotd exited with {status}; log:\n{}", knot.log()));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "zones {:?} not answering SOA after {:?}; log:\n{}",
                pending,
                STARTUP_TIMEOUT,
                knot.log()
            ));
        }
        let origin = pending[0].clone();
        id = id.wrapping_add(1);
        if soa_ok(&sock, knot.addr, id, &origin) {
            pending.remove(0);
        } else {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(knot)
}

/// Picks a port, writes knot.conf into `dir` and starts knotd with its
/// stdout and stderr going to `dir/knotd.log`.
fn spawn_knotd(
    knotd: &Path,
    dir: &Path,
    zones: &[(String, PathBuf)],
) -> Result<(u16, Child), String> {
    let port = free_port()?;
    let conf = write_config(dir, port, zones)?;
    let log_path = dir.join("knotd.log");
    let log = File::create(&log_path).map_err(|e| format!("create {}: {e}", log_path.display()))?;
    let log2 = log.try_clone().map_err(|e| format!("dup log: {e}"))?;
    let child = Command::new(knotd)
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2))
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", knotd.display()))?;
    Ok((port, child))
}

/// Wire form of a presentation name without escapes (zone origins).
fn simple_name_wire(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() {
            continue;
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

/// Sends `origin IN SOA` (RD=0, no EDNS) and checks for NOERROR + AA + an answer.
fn soa_ok(sock: &UdpSocket, addr: SocketAddr, id: u16, origin: &str) -> bool {
    let mut q = Vec::with_capacity(64);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    q.extend_from_slice(&simple_name_wire(origin));
    q.extend_from_slice(&[0, 6, 0, 1]);
    if sock.send_to(&q, addr).is_err() {
        return false;
    }
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_millis(500);
    while Instant::now() < deadline {
        match sock.recv_from(&mut buf) {
            Ok((n, from)) if from == addr && n >= 12 => {
                if u16::from_be_bytes([buf[0], buf[1]]) != id {
                    continue; // a late answer to an earlier poll
                }
                let qr = buf[2] & 0x80 != 0;
                let aa = buf[2] & 0x04 != 0;
                let rcode = buf[3] & 0x0f;
                let ancount = u16::from_be_bytes([buf[6], buf[7]]);
                return qr && aa && rcode == 0 && ancount >= 1;
            }
            Ok(_) => continue,
            Err(_) => return false,
        }
    }
    false
}
