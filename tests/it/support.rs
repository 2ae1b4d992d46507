//! Starting the real server in-process on 127.0.0.1 port 0, small DNS and HTTP client
//! helpers, and waiting for what a test expects (status, answers).

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use serde_json::Value;
use waypost::config::Overrides;

/// A running server; stops on Drop.
pub struct TestServer {
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
    pub http: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    /// Serves a zones directory with default settings.
    pub fn start_zones(zones: &Path) -> TestServer {
        Self::start(None, Overrides { zones_dir: Some(zones.to_path_buf()), http_listen: Some("127.0.0.1:0".parse().unwrap()), ..Overrides::default() })
    }

    /// Serves a config file (its listen addresses are replaced by port 0 on loopback).
    pub fn start_config(config: &Path) -> TestServer {
        Self::start(Some(config.to_path_buf()), Overrides { http_listen: Some("127.0.0.1:0".parse().unwrap()), ..Overrides::default() })
    }

    /// Serves a config file on DNS port 0, keeping the config's HTTP address (fleet peers
    /// need to know it in advance).
    pub fn start_config_with_http(config: &Path) -> TestServer {
        Self::start(Some(config.to_path_buf()), Overrides::default())
    }

    fn start(config_path: Option<PathBuf>, mut overrides: Overrides) -> TestServer {
        overrides.dns_listen = vec!["127.0.0.1:0".parse().unwrap()];
        let (tx, rx) = mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(async move {
                let mut prepared = waypost::app::prepare(config_path, overrides).expect("test config loads");
                prepared.config.udp_workers = 1;
                let running = waypost::app::start(prepared).await.expect("server starts");
                tx.send((running.udp[0], running.tcp[0], running.http)).unwrap();
                let _ = stop_rx.await;
                running.shutdown().await;
            });
        });
        let (udp, tcp, http) = rx.recv_timeout(Duration::from_secs(30)).expect("server started");
        TestServer { udp, tcp, http, stop: Some(stop_tx), thread: Some(thread) }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Builds a query message.
pub fn query(name: &str, rtype: RecordType, edns: Option<u16>) -> Message {
    let mut m = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = false;
    let mut q = Query::query(Name::from_ascii(name).unwrap(), rtype);
    q.set_query_class(DNSClass::IN);
    m.add_query(q);
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        m.set_edns(e);
    }
    m
}

fn rand_id() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(4242);
    NEXT.fetch_add(7919, Ordering::Relaxed)
}

/// Sends raw bytes over UDP; None on timeout (the server dropped the packet).
pub fn udp_raw(server: SocketAddr, packet: &[u8]) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(700))).unwrap();
    sock.send_to(packet, server).unwrap();
    let mut buf = vec![0u8; 65535];
    match sock.recv_from(&mut buf) {
        Ok((n, _)) => Some(buf[..n].to_vec()),
        Err(_) => None,
    }
}

pub fn udp(server: SocketAddr, m: &Message) -> Message {
    let bytes = udp_raw(server, &m.to_vec().unwrap()).expect("UDP answer");
    Message::from_vec(&bytes).expect("parsable response")
}

/// Sends raw bytes over TCP (length-prefixed); None if the connection closed without an answer.
pub fn tcp_raw(server: SocketAddr, packet: &[u8]) -> Option<Vec<u8>> {
    let mut s = TcpStream::connect(server).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut framed = (packet.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(packet);
    s.write_all(&framed).unwrap();
    read_framed(&mut s)
}

pub fn read_framed(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).ok()?;
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).ok()?;
    Some(buf)
}

pub fn tcp(server: SocketAddr, m: &Message) -> Message {
    let bytes = tcp_raw(server, &m.to_vec().unwrap()).expect("TCP answer");
    Message::from_vec(&bytes).expect("parsable response")
}

/// Path of a file under tests/data.
pub fn data(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(p)
}

/// A fresh temporary directory, removed on Drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!("waypost-{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A loopback port free for TCP and UDP now, for a server whose address must be known
/// before it starts (fleet peers). Taken below the kernel's ephemeral range (32768 and
/// up), so no other test's port-0 socket can be given it before the server binds it;
/// each call in this process returns another port.
pub fn fixed_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = 20_000 + (std::process::id() % 50) * 200;
    loop {
        let port = (base + NEXT.fetch_add(1, Ordering::Relaxed) % 10_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() && UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A blocking HTTP/1.1 request to the server's API; returns (status, body).
pub fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let request = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// `GET /v1/status` of the API at `addr`, parsed; the test fails unless it is 200.
pub fn status(addr: SocketAddr) -> Value {
    let (code, body) = http(addr, "GET", "/v1/status");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Polls `ok` every 20 ms until it holds; the test fails after `secs` seconds, naming `what`.
pub fn wait(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `/v1/status` until `ok` holds (10 s at most); returns the document that did.
pub fn wait_for_status(addr: SocketAddr, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let st = status(addr);
        if ok(&st) {
            return st;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}; summary: {}", st["summary"]);
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Queries with ECS; returns (addresses or CNAME target, sorted; ECS scope; response).
pub fn ask_ecs(server: SocketAddr, name: &str, t: RecordType, subnet: &str) -> (Vec<String>, Option<u8>, Message) {
    let (ip, prefix) = subnet.split_once('/').unwrap();
    let mut q = query(name, t, Some(1232));
    let cs = ClientSubnet::new(ip.parse::<IpAddr>().unwrap(), prefix.parse().unwrap(), 0);
    q.edns.as_mut().unwrap().options_mut().insert(EdnsOption::Subnet(cs));
    let r = udp(server, &q);
    (rdata(&r), scope(&r), r)
}

/// The answer records as text, sorted.
pub fn rdata(r: &Message) -> Vec<String> {
    let mut v: Vec<String> = r
        .answers
        .iter()
        .map(|a| match &a.data {
            RData::A(x) => x.to_string(),
            RData::AAAA(x) => x.to_string(),
            RData::CNAME(x) => x.to_string(),
            other => other.to_string(),
        })
        .collect();
    v.sort();
    v
}

/// The ECS scope of a response.
pub fn scope(r: &Message) -> Option<u8> {
    r.edns.as_ref()?.options().as_ref().iter().find_map(|(_, o)| match o {
        EdnsOption::Subnet(cs) => Some(cs.scope_prefix()),
        _ => None,
    })
}

/// The first address of `name`'s A answer (as a client in `subnet` gets it over ECS, or
/// from the source address without), and the answer's TTL; ("", 0) for no answer.
pub fn web(server: SocketAddr, name: &str, subnet: Option<&str>) -> (String, u32) {
    let r = match subnet {
        Some(net) => ask_ecs(server, name, RecordType::A, net).2,
        None => udp(server, &query(name, RecordType::A, None)),
    };
    (rdata(&r).first().cloned().unwrap_or_default(), r.answers.first().map_or(0, |a| a.ttl))
}

/// Two backends on one port, at 127.0.0.2 and 127.0.0.3, and a config in which one data
/// centre answers web.example.com. with both addresses, each checked on its own;
/// `health` holds the `[health]` keys.
pub fn per_address_setup(health: &str) -> (Backend, Backend, String) {
    let a = Backend::start_at("127.0.0.2:0".parse().unwrap());
    let port = a.addr.port();
    let b = Backend::start_at(format!("127.0.0.3:{port}").parse().unwrap());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cfg = format!(
        "version = 1\n[server]\nzones-dir = {:?}\n[health]\n{health}\n\
         [datacenters.one]\nlocation = [0.0, 0.0]\nservices = {{ \"web.example.com.\" = [\"127.0.0.2\", \"127.0.0.3\"] }}\n\
         [services.\"web.example.com.\"]\nttl = 60\n[services.\"web.example.com.\".check]\ntype = \"http\"\nport = {port}\npath = \"/health\"\nper-address = true\n",
        root.join("zones").display().to_string()
    );
    (a, b, cfg)
}

/// A real HTTP backend for health checks, started and stopped by the test.
pub struct Backend {
    pub addr: SocketAddr,
    pub mode: std::sync::Arc<std::sync::atomic::AtomicU8>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Backend behaviours.
pub mod mode {
    pub const OK: u8 = 0;
    pub const ERROR_500: u8 = 1;
    /// Accepts, reads, and never answers (until the test ends).
    pub const HANG: u8 = 2;
    /// 200 with a body that lacks the expected text.
    pub const WRONG_BODY: u8 = 3;
    /// 200 and 500 in turn.
    pub const ALTERNATE: u8 = 4;
    pub const REDIRECT: u8 = 5;
    /// 200 with a body that is not JSON.
    pub const GARBAGE: u8 = 6;
    /// 200 with a 6 MiB body.
    pub const HUGE: u8 = 7;
}

impl Backend {
    pub fn start() -> Backend {
        Self::start_at("127.0.0.1:0".parse().unwrap())
    }

    /// A backend on a given loopback address and port (port 0: any).
    pub fn start_at(at: SocketAddr) -> Backend {
        use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
        use std::sync::Arc;
        let listener = std::net::TcpListener::bind(at).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(AtomicU8::new(mode::OK));
        // Requests served; ALTERNATE uses it to take turns.
        let hits = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, h, st) = (mode.clone(), hits.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                let Ok((mut conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let (m, h, st) = (m.clone(), h.clone(), st.clone());
                std::thread::spawn(move || {
                    let _ = conn.set_nonblocking(false);
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                    let mut buf = [0u8; 2048];
                    let _ = conn.read(&mut buf);
                    let n = h.fetch_add(1, Ordering::Relaxed);
                    if m.load(Ordering::Relaxed) == mode::HUGE {
                        let body = vec![b'x'; 6 << 20];
                        let _ = write!(conn, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                        let _ = conn.write_all(&body);
                        return;
                    }
                    let (status, body) = match m.load(Ordering::Relaxed) {
                        mode::OK => ("200 OK", "ok"),
                        mode::ERROR_500 => ("500 Internal Server Error", "broken"),
                        mode::HANG => {
                            while !st.load(Ordering::Relaxed) {
                                std::thread::sleep(Duration::from_millis(20));
                            }
                            return;
                        }
                        mode::WRONG_BODY => ("200 OK", "nope"),
                        mode::REDIRECT => ("302 Found\r\nLocation: http://127.0.0.1:1/elsewhere", ""),
                        mode::GARBAGE => ("200 OK", "\u{0}\u{1}{{not json]] ok"),
                        _ if n % 2 == 0 => ("200 OK", "ok"),
                        _ => ("500 Internal Server Error", "broken"),
                    };
                    let _ = write!(conn, "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                });
            }
        });
        Backend { addr, mode, stop, thread: Some(thread) }
    }

    pub fn set(&self, m: u8) {
        self.mode.store(m, std::sync::atomic::Ordering::Relaxed);
    }

    /// Stops accepting and closes the listener: connections are refused from now on.
    pub fn close(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.close();
    }
}

/// A request with headers from a chosen loopback source address (127.0.0.0/8 all reach
/// the server), so tests of per-client limits can be distinct clients; returns (status, body).
pub fn request_from(source: IpAddr, addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&SocketAddr::new(source, 0).into()).unwrap();
    sock.connect(&addr.into()).unwrap();
    let mut s: TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: test\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// Test certificates made with `deploy/fleet-certs.sh` (openssl): any number of CAs,
/// each in its own folder, and certificates for 127.0.0.1 signed by one of them.
pub struct Pki {
    pub dir: TempDir,
}

impl Pki {
    /// None (the test says SKIPPED) where there is no `openssl`, except under CI (env
    /// `CI` set), where it must be there.
    pub fn new(tag: &str) -> Option<Pki> {
        let found = std::process::Command::new("openssl").arg("version").output().is_ok_and(|o| o.status.success());
        if !found {
            assert!(std::env::var_os("CI").is_none(), "CI must have openssl (the TLS tests' certificates)");
            eprintln!("SKIPPED {tag}: needs openssl");
            return None;
        }
        Some(Pki { dir: TempDir::new(tag) })
    }

    fn script(args: &[&str]) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/fleet-certs.sh");
        // Each CA its own name, as separate CAs have (one of the same name would fail
        // verification with BadSignature rather than UnknownIssuer).
        let name = format!("Waypost test CA {}", Path::new(args[1]).file_name().unwrap().to_string_lossy());
        let out = std::process::Command::new("bash").arg(script).args(args).env("CA_NAME", name).output().expect("bash and openssl run");
        assert!(out.status.success(), "fleet-certs.sh {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// The bundle of CA `ca`, made on first use.
    pub fn ca(&self, ca: &str) -> PathBuf {
        let dir = self.dir.0.join(ca);
        if !dir.join("ca.pem").exists() {
            Self::script(&["ca", dir.to_str().unwrap()]);
        }
        dir.join("ca.pem")
    }

    /// A new certificate and key for `name` (SAN IP:127.0.0.1), signed by CA `ca`.
    pub fn cert(&self, ca: &str, name: &str) -> (PathBuf, PathBuf) {
        self.ca(ca);
        let dir = self.dir.0.join(ca);
        Self::script(&["cert", dir.to_str().unwrap(), name, "IP:127.0.0.1", "DNS:localhost"]);
        (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")))
    }
}

/// How a test client speaks TLS: the roots it trusts and its client certificate.
pub struct ClientTls {
    pub config: std::sync::Arc<rustls::ClientConfig>,
}

impl ClientTls {
    /// Built by the server's own code for its fleet client (`waypost::tls::client_config`).
    pub fn new(ca: &Path, client: Option<&(PathBuf, PathBuf)>) -> ClientTls {
        use waypost::config::access::{FleetTls, PemFile};
        let pem = |p: &Path| PemFile { path: p.to_path_buf(), key: "test".into(), bytes: std::fs::read(p).unwrap() };
        let tls = FleetTls { ca: Some(pem(ca)), client: client.map(|(c, k)| (pem(c), pem(k))) };
        ClientTls { config: std::sync::Arc::new(waypost::tls::client_config(&tls).unwrap()) }
    }
}

/// An HTTPS request to 127.0.0.1; Err describes a failed connection or handshake.
pub fn https(addr: SocketAddr, tls: &ClientTls, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Result<(u16, String), String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder().use_preconfigured_tls((*tls.config).clone()).no_proxy().timeout(Duration::from_secs(30)).build().unwrap();
        let mut req = client.request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), format!("https://127.0.0.1:{}{path}", addr.port()));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.body(body.to_string()).send().await.map_err(|e| error_chain(&e))?;
        let code = resp.status().as_u16();
        Ok((code, resp.text().await.map_err(|e| error_chain(&e))?))
    })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s += &format!(": {x}");
        src = x.source();
    }
    s
}

/// `GET /v1/status` over HTTPS, parsed; the test fails unless it is 200.
pub fn https_status(addr: SocketAddr, tls: &ClientTls, headers: &[(&str, &str)]) -> Value {
    let (code, body) = https(addr, tls, "GET", "/v1/status", headers, "").unwrap();
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// The certificate the HTTPS listener at `addr` presents (DER of the leaf).
pub fn served_certificate(addr: SocketAddr, tls: &ClientTls) -> Vec<u8> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
        let conn = tokio_rustls::TlsConnector::from(tls.config.clone()).connect(name, tcp).await.unwrap();
        conn.get_ref().1.peer_certificates().unwrap()[0].to_vec()
    })
}

/// The DER of the first certificate in a PEM file.
pub fn certificate_der(pem: &Path) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_file_iter(pem).unwrap().next().unwrap().unwrap().to_vec()
}
