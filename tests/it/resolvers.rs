//! Throw-away validating resolvers (unbound, kresd) for the DNSSEC tests.
//!
//! `Resolver::start(kind, &setup)` writes a config into a temporary directory,
//! starts the resolver on a free 127.0.0.1 port with no network beyond
//! loopback, and waits until it answers. It trusts only `setup.trust_anchor`
//! (a DS of the signed zone; the root trust anchor is not configured), sends
//! every query for `setup.zone` to `setup.server`, and every query for the
//! insecure child zone `setup.child` to `setup.child_server`. Dropping the
//! handle kills the process and removes the directory.
//!
//! How each resolver is pointed at the servers:
//! - unbound: `stub-zone` for the zone and for the child; the iterator finds
//!   the DS (or the proof that there is none) of the child at the parent's
//!   server by itself.
//! - kresd: `policy.FORWARD` (kresd's `STUB` does not validate). A forwarded
//!   request sends its sub-queries (DS, DNSKEY) to the forwarder chosen for
//!   the client's QNAME, so the child's DS, asked by a client, is sent to the
//!   parent by an extra rule, and a name below the child validates as
//!   insecure only once that proof is cached: the child's DS case comes
//!   before the child's names in every case list.
//!
//! `start` returns `None` (after printing why) only when the resolver is not
//! installed; the caller decides between skip and failure. Once it is
//! installed, a failure to start panics with the resolver's log.

#![allow(dead_code)]

use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, Name, RecordType};

use crate::knot::free_port;
use crate::support::TempDir;

/// How long `start` waits for the resolver to answer its first query.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);
/// How many times `start` tries again (the free port may be taken meanwhile).
const START_ATTEMPTS: usize = 3;
/// How long `ask` waits for one answer. A validating resolver may need
/// several round trips (DNSKEY, DS, the child's zone) for a cold cache.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Unbound,
    Kresd,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Unbound => "unbound",
            Kind::Kresd => "kresd",
        }
    }

    /// The Debian package that installs it.
    pub fn package(self) -> &'static str {
        match self {
            Kind::Unbound => "unbound",
            Kind::Kresd => "knot-resolver",
        }
    }

    fn env_var(self) -> &'static str {
        match self {
            Kind::Unbound => "UNBOUND",
            Kind::Kresd => "KRESD",
        }
    }

    fn version_arg(self) -> &'static str {
        match self {
            Kind::Unbound => "-V",
            Kind::Kresd => "--version",
        }
    }
}

/// Where the resolver sends its queries and what it trusts.
pub struct Setup<'a> {
    /// A DS RR in presentation form (`example.com. IN DS 12345 13 2 ABCD…`).
    pub trust_anchor: &'a str,
    /// The signed zone, with the trailing dot.
    pub zone: &'a str,
    /// Its authoritative server (UDP and TCP on the same port).
    pub server: SocketAddr,
    /// An unsigned zone delegated from `zone` without DS.
    pub child: &'a str,
    pub child_server: SocketAddr,
    /// The address the resolver sends its queries from (default 127.0.0.1): the geo tests
    /// pick a client region with it.
    pub source: Option<std::net::IpAddr>,
}

/// A running resolver.
pub struct Resolver {
    pub kind: Kind,
    /// UDP and TCP address it listens on.
    pub addr: SocketAddr,
    child: Child,
    log_path: PathBuf,
    // Dropped after `child` is killed (Drop below).
    dir: TempDir,
}

/// What a resolver answered, reduced to what the DNSSEC tests check.
#[derive(Debug, Clone)]
pub struct Answer {
    pub rcode: u16,
    pub ad: bool,
    /// Records in the answer section.
    pub answers: usize,
    /// Extended DNS errors (RFC 8914): (INFO-CODE, EXTRA-TEXT).
    pub ede: Vec<(u16, String)>,
    /// The answer section, one record a line.
    pub text: String,
    /// The answer section without RRSIGs and TTLs, one `name type rdata` a record,
    /// lowercase, sorted: what two servers' answers are compared by.
    pub records: Vec<String>,
}

impl Answer {
    /// `NOERROR ad` / `SERVFAIL (EDE 6: …)`.
    pub fn summary(&self) -> String {
        let mut s = rcode_name(self.rcode);
        if self.ad {
            s.push_str(" ad");
        }
        s.push_str(&format!(" answers={}", self.answers));
        for (code, text) in &self.ede {
            s.push_str(&format!(" (EDE {code}: {text})"));
        }
        s
    }
}

pub use crate::differential::rcode_name;

/// The resolver's binary: `$UNBOUND` / `$KRESD`, then `$PATH`, then
/// `/usr/sbin` and `/usr/local/sbin`.
pub fn find(kind: Kind) -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os(kind.env_var()) {
        candidates.push(PathBuf::from(p));
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            candidates.push(dir.join(kind.name()));
        }
    }
    candidates.push(PathBuf::from("/usr/sbin").join(kind.name()));
    candidates.push(PathBuf::from("/usr/local/sbin").join(kind.name()));
    candidates.into_iter().find(|p| {
        p.is_file()
            && Command::new(p)
                .arg(kind.version_arg())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
    })
}

impl Resolver {
    /// Starts the resolver; None when it is not installed.
    pub fn start(kind: Kind, setup: &Setup) -> Option<Resolver> {
        let Some(binary) = find(kind) else {
            eprintln!(
                "{}: not found (looked in ${}, $PATH, /usr/sbin, /usr/local/sbin); install the `{}` package",
                kind.name(),
                kind.env_var(),
                kind.package()
            );
            return None;
        };
        let mut last_error = String::new();
        for attempt in 1..=START_ATTEMPTS {
            match start_once(kind, &binary, setup) {
                Ok(r) => return Some(r),
                Err(e) => {
                    eprintln!("{}: start attempt {attempt} failed: {e}", kind.name());
                    last_error = e;
                }
            }
        }
        panic!("{} ({}) did not start: {last_error}", kind.name(), binary.display());
    }

    /// The resolver's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Asks `name qtype` with RD=1 and EDNS DO=1 (as a stub resolver that
    /// wants the AD flag), over UDP, with one retry.
    pub fn ask(&self, name: &str, qtype: u16) -> Result<Answer, String> {
        ask(self.addr, name, qtype, QUERY_TIMEOUT)
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_once(kind: Kind, binary: &Path, setup: &Setup) -> Result<Resolver, String> {
    let dir = TempDir::new(kind.name());
    let port = free_port()?;
    let log_path = dir.0.join(format!("{}.log", kind.name()));
    let log = File::create(&log_path).map_err(|e| format!("create {}: {e}", log_path.display()))?;
    let log2 = log.try_clone().map_err(|e| format!("dup log: {e}"))?;
    let mut cmd = match kind {
        Kind::Unbound => {
            let conf = dir.0.join("unbound.conf");
            fs::write(&conf, unbound_config(&dir.0, port, setup)).map_err(|e| format!("write {}: {e}", conf.display()))?;
            let mut c = Command::new(binary);
            c.arg("-d").arg("-c").arg(&conf);
            c
        }
        Kind::Kresd => {
            let conf = dir.0.join("kresd.conf");
            fs::write(&conf, kresd_config(port, setup)).map_err(|e| format!("write {}: {e}", conf.display()))?;
            let mut c = Command::new(binary);
            c.arg("-n").arg("-c").arg(&conf).arg(&dir.0);
            c
        }
    };
    let child = cmd
        .current_dir(&dir.0)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2))
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", binary.display()))?;
    let mut r = Resolver { kind, addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)), child, log_path, dir };

    // Ready when it answers anything; `<zone> SOA` also warms the zone's DNSKEY.
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        if let Ok(Some(status)) = r.child.try_wait() {
            return Err(format!("exited with {status}; log:\n{}", r.log()));
        }
        if ask(r.addr, setup.zone, 6, Duration::from_millis(500)).is_ok() {
            return Ok(r);
        }
        if Instant::now() > deadline {
            return Err(format!("no answer after {STARTUP_TIMEOUT:?}; log:\n{}", r.log()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `example.com. IN DS …` → `example.com. DS …` (both resolvers take either,
/// the class-less form is the one in their manuals).
fn trust_anchor_text(ds: &str) -> String {
    ds.split_whitespace().filter(|t| *t != "IN").collect::<Vec<_>>().join(" ")
}

fn unbound_config(dir: &Path, port: u16, s: &Setup) -> String {
    let mut c = String::new();
    c.push_str("# written by tests/it/resolvers.rs\n");
    c.push_str("server:\n");
    c.push_str(&format!("    directory: {}\n", quote(&dir.to_string_lossy())));
    c.push_str("    chroot: \"\"\n    username: \"\"\n    pidfile: \"\"\n");
    c.push_str("    use-syslog: no\n    logfile: \"\"\n    verbosity: 1\n");
    // Why an answer is bogus goes to the log, and into an EDE in the answer.
    c.push_str("    val-log-level: 2\n    log-servfail: yes\n    ede: yes\n");
    c.push_str("    interface: 127.0.0.1\n");
    if let Some(ip) = s.source {
        c.push_str(&format!("    outgoing-interface: {ip}\n"));
    }
    c.push_str(&format!("    port: {port}\n"));
    c.push_str("    do-ip6: no\n    num-threads: 1\n    so-reuseport: no\n");
    c.push_str("    access-control: 127.0.0.0/8 allow\n");
    c.push_str("    do-not-query-localhost: no\n");
    c.push_str("    module-config: \"validator iterator\"\n");
    c.push_str(&format!("    trust-anchor: {}\n", quote(&trust_anchor_text(s.trust_anchor))));
    // Every answer is validated from what the server sent for it: no
    // synthesis from cached NSEC records (RFC 8198), no fetches of NS
    // addresses out of the zones (there is no network).
    c.push_str("    aggressive-nsec: no\n");
    c.push_str("    target-fetch-policy: \"0 0 0 0 0\"\n");
    // unbound answers some TLDs itself (test., invalid., …): not the zone's.
    let tld = s.zone.trim_end_matches('.').rsplit('.').next().unwrap_or("com");
    c.push_str(&format!("    local-zone: \"{tld}.\" nodefault\n"));
    c.push_str("remote-control:\n    control-enable: no\n");
    for (zone, addr) in [(s.zone, s.server), (s.child, s.child_server)] {
        c.push_str("stub-zone:\n");
        c.push_str(&format!("    name: {}\n", quote(zone)));
        c.push_str(&format!("    stub-addr: {}@{}\n", addr.ip(), addr.port()));
    }
    c
}

fn kresd_config(port: u16, s: &Setup) -> String {
    let ta = trust_anchor_text(s.trust_anchor).replace('\'', "");
    let parent = format!("{}@{}", s.server.ip(), s.server.port());
    let child_addr = format!("{}@{}", s.child_server.ip(), s.child_server.port());
    let source = s.source.map_or(String::new(), |ip| format!("net.outgoing_v4('{ip}')\n"));
    format!(
        r#"-- written by tests/it/resolvers.rs
net.listen('127.0.0.1', {port}, {{ kind = 'dns' }})
{source}-- Trust only the zone's DS: no root trust anchor, no RFC 5011 updates,
-- no root priming or time checks (there is no network).
trust_anchors.remove('.')
trust_anchors.add('{ta}')
for _, m in ipairs({{ 'ta_update', 'ta_signal_query', 'ta_sentinel', 'priming',
                      'detect_time_skew', 'detect_time_jump' }}) do
    pcall(modules.unload, m)
end
cache.size = 10 * MB
local parent = policy.FORWARD('{parent}')
local child_name = todname('{child}')
-- The child's DS lives in the parent zone.
policy.add(function (state, query)
    if query.stype == kres.type.DS and query:name() == child_name then
        return parent
    end
    return nil
end)
policy.add(policy.suffix(policy.FORWARD('{child_addr}'), {{ child_name }}))
policy.add(policy.suffix(parent, {{ todname('{zone}') }}))
"#,
        child = s.child,
        zone = s.zone,
    )
}

/// One RD=1, DO=1 query over UDP (EDNS 1232), with one resend.
pub fn ask(server: SocketAddr, name: &str, qtype: u16, timeout: Duration) -> Result<Answer, String> {
    ask_with(server, Ipv4Addr::LOCALHOST.into(), true, name, qtype, timeout)
}

/// As [`ask`], sent from `source`, with RD as `rd` says (false: a query to an
/// authoritative server).
pub fn ask_with(server: SocketAddr, source: std::net::IpAddr, rd: bool, name: &str, qtype: u16, timeout: Duration) -> Result<Answer, String> {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT_ID: AtomicU16 = AtomicU16::new(0x5e00);
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = rd;
    let qname = Name::from_ascii(name).map_err(|e| format!("bad name {name}: {e}"))?;
    let mut q = Query::query(qname, RecordType::from(qtype));
    q.set_query_class(DNSClass::IN);
    m.add_query(q);
    let mut e = Edns::new();
    e.set_max_payload(1232);
    e.set_dnssec_ok(true);
    m.set_edns(e);
    let wire = m.to_vec().map_err(|e| format!("encode: {e}"))?;

    let sock = UdpSocket::bind((source, 0)).map_err(|e| format!("bind: {e}"))?;
    let mut buf = vec![0u8; 65535];
    for _ in 0..2 {
        sock.send_to(&wire, server).map_err(|e| format!("send: {e}"))?;
        let deadline = Instant::now() + timeout / 2;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            sock.set_read_timeout(Some(left.max(Duration::from_millis(1)))).map_err(|e| e.to_string())?;
            let Ok((n, from)) = sock.recv_from(&mut buf) else { break };
            if from != server || n < 12 || u16::from_be_bytes([buf[0], buf[1]]) != id {
                continue;
            }
            return parse_answer(&buf[..n]);
        }
    }
    Err(format!("no answer from {server} within {timeout:?}"))
}

fn parse_answer(raw: &[u8]) -> Result<Answer, String> {
    let msg = Message::from_vec(raw).map_err(|e| format!("unparsable answer: {e}"))?;
    let mut rcode = u16::from(raw[3] & 0x0f);
    let mut ede = Vec::new();
    if let Some(edns) = &msg.edns {
        rcode |= u16::from(edns.rcode_high()) << 4;
        for (code, opt) in edns.options().as_ref().iter() {
            if u16::from(*code) == 15 {
                let data = Vec::<u8>::try_from(opt).unwrap_or_default();
                if data.len() >= 2 {
                    ede.push((u16::from_be_bytes([data[0], data[1]]), String::from_utf8_lossy(&data[2..]).into_owned()));
                }
            }
        }
    }
    let text = msg.answers.iter().map(|r| format!("      {r}\n")).collect();
    let mut records: Vec<String> = msg
        .answers
        .iter()
        .filter(|r| r.record_type() != RecordType::RRSIG)
        .map(|r| format!("{} {} {}", r.name, r.record_type(), r.data).to_ascii_lowercase())
        .collect();
    records.sort();
    Ok(Answer { rcode, ad: raw[3] & 0x20 != 0, answers: msg.answers.len(), ede, text, records })
}
