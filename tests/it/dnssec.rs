//! DNSSEC part 1: Waypost serves pre-signed zones as Knot DNS does.
//!
//! Every test here signs copies of `tests/data/zones/*.zone` with BIND's
//! tools (`dnssec-keygen`: an ECDSA P-256 KSK and ZSK per zone;
//! `dnssec-signzone -S`), in one of three ways: NSEC, NSEC3 (no salt, 0
//! extra iterations, RFC 9276) and NSEC3 with opt-out. `example.com.` has a
//! delegation with DS (`sub`) and several without (`sib`, `nogl`, `fat`).
//! Each signed zone is written as `<origin>.zone` in one directory, which
//! both knotd and Waypost serve.
//!
//! - `signed_*_answers_match_knot`: the differential test of
//!   `differential.rs` on the signed zones, DO=1 on every query, RRSIG and
//!   NSEC / NSEC3 RRsets compared like all other RRsets.
//! - `{unbound,kresd}_validates_*`: a validating resolver that trusts only
//!   the DS of `example.com.` asks Waypost; each case checks the rcode and
//!   the AD flag (positive, NXDOMAIN, NODATA, wildcard, CNAME, DNAME, DS at
//!   a secure and at an insecure delegation, a name below an insecure
//!   delegation served by an unsigned child). When a case fails, the same
//!   cases are run against knotd on the same files, to tell a Waypost bug
//!   from a wrong expectation.
//! - `waypost check` and reload: signatures about to expire load with a
//!   warning; a signed zone without its apex DNSKEY is refused with file and
//!   line, and a reload keeps the old zone serving.
//!
//! A missing tool (BIND's dnssec tools, knotd, unbound, kresd) makes a test
//! print SKIPPED and pass, except when `CI` is set: then it fails.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use hickory_proto::op::{Edns, Message, ResponseCode};
use hickory_proto::rr::RecordType;

use crate::differential::run_differential;
use crate::knot::Knot;
use crate::resolvers::{self, Kind, Resolver, Setup};
use crate::support::{data, http, query, udp, TempDir, TestServer};

// ---------------------------------------------------------------------------
// Signing

/// How a zone proves that names and types do not exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denial {
    Nsec,
    /// NSEC3, SHA-1, no salt, 0 extra iterations (RFC 9276 §3.1).
    Nsec3,
    /// The same with the opt-out flag (RFC 5155 §6): insecure delegations
    /// have no NSEC3 of their own.
    Nsec3OptOut,
}

impl Denial {
    pub fn name(self) -> &'static str {
        match self {
            Denial::Nsec => "nsec",
            Denial::Nsec3 => "nsec3",
            Denial::Nsec3OptOut => "nsec3-optout",
        }
    }

    fn signzone_args(self) -> &'static [&'static str] {
        match self {
            Denial::Nsec => &[],
            Denial::Nsec3 => &["-3", "-", "-H", "0"],
            Denial::Nsec3OptOut => &["-3", "-", "-H", "0", "-A"],
        }
    }
}

/// How to sign.
#[derive(Clone, Copy, Debug)]
pub struct Signing {
    pub denial: Denial,
    /// `dnssec-signzone -e`: signature expiration.
    pub expire: &'static str,
    /// `-O full`: one record per line with its owner, easy to edit.
    pub one_record_per_line: bool,
}

impl Signing {
    pub fn new(denial: Denial) -> Signing {
        Signing { denial, expire: "now+30d", one_record_per_line: false }
    }
}

/// Signature inception: an hour back, so clock skew cannot make them young.
const INCEPTION: &str = "now-1h";

/// Signed copies of the test zones.
pub struct SignedZones {
    /// `<origin>.zone`, signed: the directory to serve.
    pub zones: PathBuf,
    /// The DS of example.com.'s KSK (SHA-256), `example.com. IN DS …`.
    pub trust_anchor: String,
    /// Holds `zones/`, `keys/` (the BIND key files) and `unsigned/` (the copies).
    _root: TempDir,
}

impl SignedZones {
    pub fn file(&self, origin: &str) -> PathBuf {
        self.zones.join(format!("{origin}zone"))
    }
}

const BIND_TOOLS: &[&str] = &["dnssec-keygen", "dnssec-signzone", "dnssec-dsfromkey"];

fn find_tool(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"].map(PathBuf::from));
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// Prints SKIPPED for `test` (or fails when `CI` is set) because `what` is missing.
pub fn skip(test: &str, what: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{test}: {what} is not installed, and CI is set: the DNSSEC tests must run in CI");
    }
    eprintln!("{test}: SKIPPED, {what} is not installed");
}

/// Runs a tool and returns its stdout; panics with its stderr when it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed ({}):\n{}{}", out.status, String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Origins of the test zones (file stem + dot), sorted.
pub fn test_zone_origins() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(data("zones"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "zone"))
        .map(|p| format!("{}.", p.file_stem().unwrap().to_str().unwrap()))
        .collect();
    v.sort();
    v
}

/// Signs copies of every test zone; None (after SKIPPED) when BIND's tools
/// are missing.
pub fn sign_test_zones(test: &str, signing: Signing) -> Option<SignedZones> {
    let mut tools = Vec::new();
    for t in BIND_TOOLS {
        match find_tool(t) {
            Some(p) => tools.push(p),
            None => {
                skip(test, &format!("{t} (package bind9-dnsutils / bind9-utils)"));
                return None;
            }
        }
    }
    let (keygen, signzone, dsfromkey) = (&tools[0], &tools[1], &tools[2]);

    let root = TempDir::new(&format!("dnssec-{}", signing.denial.name()));
    let (unsigned, keys, zones) = (root.0.join("unsigned"), root.0.join("keys"), root.0.join("zones"));
    for d in [&unsigned, &keys, &zones] {
        std::fs::create_dir(d).unwrap();
    }

    let mut trust_anchor = None;
    for origin in test_zone_origins() {
        let src = data(&format!("zones/{origin}zone"));
        let text = std::fs::read_to_string(&src).unwrap();
        if origin == "example.com." {
            // The referral-with-DS cases need a delegation with DS.
            assert!(
                text.lines().any(|l| l.starts_with("sub ") && l.split_whitespace().nth(1) == Some("DS")),
                "tests/data/zones/example.com.zone lost the DS of sub.example.com."
            );
        }
        let copy = unsigned.join(format!("{origin}zone"));
        std::fs::write(&copy, text).unwrap();

        let ksk = run(Command::new(keygen).arg("-q").arg("-K").arg(&keys).args(["-a", "ECDSAP256SHA256", "-n", "ZONE", "-f", "KSK", &origin]));
        run(Command::new(keygen).arg("-q").arg("-K").arg(&keys).args(["-a", "ECDSAP256SHA256", "-n", "ZONE", &origin]));
        if origin == "example.com." {
            let ds = run(Command::new(dsfromkey).arg("-2").arg(keys.join(format!("{}.key", ksk.trim()))));
            trust_anchor = Some(ds.trim().to_string());
        }

        let mut cmd = Command::new(signzone);
        // -d: the dsset- file goes with the keys, not into the working directory.
        cmd.arg("-q").arg("-S").arg("-K").arg(&keys).arg("-d").arg(&keys);
        cmd.args(["-o", &origin, "-s", INCEPTION, "-e", signing.expire]);
        cmd.args(signing.denial.signzone_args());
        if signing.one_record_per_line {
            cmd.args(["-O", "full"]);
        }
        cmd.arg("-f").arg(zones.join(format!("{origin}zone"))).arg(&copy);
        run(&mut cmd);
    }
    let trust_anchor = trust_anchor.expect("example.com. is one of the test zones");
    Some(SignedZones { zones, trust_anchor, _root: root })
}

// ---------------------------------------------------------------------------
// Differential against knotd, DO=1

fn signed_differential(test: &str, denial: Denial) {
    let Some(signed) = sign_test_zones(test, Signing::new(denial)) else { return };
    let Some(report) = run_differential(test, &signed.zones, true) else { return };
    report.save(test);
    if !report.is_clean() {
        panic!("{}", report.render());
    }
}

#[test]
fn signed_nsec_answers_match_knot() {
    signed_differential("signed_nsec_answers_match_knot", Denial::Nsec);
}

#[test]
fn signed_nsec3_answers_match_knot() {
    signed_differential("signed_nsec3_answers_match_knot", Denial::Nsec3);
}

#[test]
fn signed_nsec3_optout_answers_match_knot() {
    signed_differential("signed_nsec3_optout_answers_match_knot", Denial::Nsec3OptOut);
}

// ---------------------------------------------------------------------------
// Validating resolvers

const A: u16 = 1;
const NS: u16 = 2;
const SOA: u16 = 6;
const MX: u16 = 15;
const AAAA: u16 = 28;
const DS: u16 = 43;
const DNSKEY: u16 = 48;

const NOERROR: u16 = 0;
const NXDOMAIN: u16 = 3;

/// The insecure child served by an unsigned zone of its own.
const CHILD: &str = "sib.example.com.";

/// One check: `name qtype` through the resolver gives `rcode`, and AD iff `secure`.
pub struct Case {
    what: &'static str,
    name: &'static str,
    qtype: u16,
    pub rcode: u16,
    secure: bool,
}

fn case(what: &'static str, name: &'static str, qtype: u16, rcode: u16, secure: bool) -> Case {
    Case { what, name, qtype, rcode, secure }
}

/// The cases, in the order they are asked (the child's DS before the child's
/// names: see resolvers.rs on kresd).
pub fn validator_cases(denial: Denial) -> Vec<Case> {
    // RFC 5155 §9.2: "The AD bit … MUST NOT be set when returning a response
    // containing a closest (provable) encloser proof in which the NSEC3 RR
    // that covers the 'next closer' name has the Opt-Out bit set."
    // dnssec-signzone -A sets it on every NSEC3.
    let proven = denial != Denial::Nsec3OptOut;
    vec![
        case("positive", "host.example.com.", A, NOERROR, true),
        case("positive at the apex", "example.com.", MX, NOERROR, true),
        case("apex DNSKEY", "example.com.", DNSKEY, NOERROR, true),
        case("CNAME", "www.example.com.", A, NOERROR, true),
        case("CNAME chain", "chain1.example.com.", AAAA, NOERROR, true),
        case("DNAME", "www.dn.example.com.", A, NOERROR, true),
        case("NXDOMAIN", "nothere.example.com.", A, NXDOMAIN, proven),
        case("NXDOMAIN below a wildcard's sibling", "x.exists.wild.example.com.", A, NXDOMAIN, proven),
        case("NXDOMAIN below an ENT", "x.b.c.example.com.", A, NXDOMAIN, proven),
        case("CNAME to a name that does not exist", "dangling.example.com.", A, NXDOMAIN, proven),
        case("NODATA", "v4only.example.com.", AAAA, NOERROR, true),
        case("NODATA at an empty non-terminal", "b.c.example.com.", A, NOERROR, true),
        case("NODATA at an empty non-terminal above a wildcard", "wild.example.com.", A, NOERROR, true),
        case("wildcard", "x.wild.example.com.", A, NOERROR, proven),
        case("wildcard, two labels deep", "a.b.wild.example.com.", A, NOERROR, proven),
        case("wildcard NODATA", "x.wild.example.com.", MX, NOERROR, proven),
        case("wildcard CNAME", "x.wcname.example.com.", A, NOERROR, proven),
        case("CNAME to a wildcard", "to-wild.example.com.", A, NOERROR, proven),
        case("DS at a delegation with DS", "sub.example.com.", DS, NOERROR, true),
        case("DS at a delegation without DS", CHILD, DS, NOERROR, proven),
        case("DS at another delegation without DS", "fat.example.com.", DS, NOERROR, proven),
        case("insecure delegation: a name in the unsigned child", "www.sib.example.com.", A, NOERROR, false),
        case("insecure delegation: the child's apex", CHILD, SOA, NOERROR, false),
    ]
}

/// The unsigned child zone behind the insecure delegation `sib`.
pub fn write_child_zone(dir: &Path) {
    std::fs::write(
        dir.join(format!("{CHILD}zone")),
        format!("$ORIGIN {CHILD}\n$TTL 300\n@ SOA ns1.example.com. hostmaster.example.com. 1 3600 600 86400 300\n@ NS ns1.example.com.\nwww A 192.0.2.200\n"),
    )
    .unwrap();
}

/// Runs every case; returns one line per case (`ok`/`FAIL`) and whether all passed.
pub fn run_cases(resolver: &Resolver, cases: &[Case]) -> (Vec<String>, bool) {
    let mut lines = Vec::new();
    let mut all_ok = true;
    for c in cases {
        let got = resolver.ask(c.name, c.qtype);
        let ok = matches!(&got, Ok(a) if a.rcode == c.rcode && a.ad == c.secure);
        all_ok &= ok;
        let want = format!("{}{}", resolvers::rcode_name(c.rcode), if c.secure { " ad" } else { " (no ad)" });
        let got_text = match &got {
            Ok(a) => a.summary(),
            Err(e) => e.clone(),
        };
        lines.push(format!(
            "{} {:<50} {:<27} {:<6} want {:<16} got {}",
            if ok { "ok  " } else { "FAIL" },
            c.what,
            c.name,
            type_name(c.qtype),
            want,
            got_text
        ));
        if let (false, Ok(a)) = (ok, &got) {
            lines.push(a.text.trim_end().to_string());
        }
    }
    (lines, all_ok)
}

fn type_name(t: u16) -> &'static str {
    match t {
        A => "A",
        NS => "NS",
        SOA => "SOA",
        MX => "MX",
        AAAA => "AAAA",
        DS => "DS",
        DNSKEY => "DNSKEY",
        _ => "?",
    }
}

/// A resolver of `kind` in front of `server` (authoritative for the signed
/// example.com.) and `child` (the unsigned sib.example.com.).
pub fn start_resolver(kind: Kind, trust_anchor: &str, server: SocketAddr, child: SocketAddr) -> Option<Resolver> {
    start_resolver_from(kind, trust_anchor, server, child, None)
}

/// As [`start_resolver`], the resolver sending its queries from `source`.
pub fn start_resolver_from(kind: Kind, trust_anchor: &str, server: SocketAddr, child: SocketAddr, source: Option<std::net::IpAddr>) -> Option<Resolver> {
    Resolver::start(kind, &Setup { trust_anchor, zone: "example.com.", server, child: CHILD, child_server: child, source })
}

fn validates(test: &str, kind: Kind, denial: Denial) {
    if resolvers::find(kind).is_none() {
        skip(test, &format!("{} (package {})", kind.name(), kind.package()));
        return;
    }
    let Some(signed) = sign_test_zones(test, Signing::new(denial)) else { return };
    let child_dir = TempDir::new("dnssec-child");
    write_child_zone(&child_dir.0);
    let child = TestServer::start_zones(&child_dir.0);
    let server = TestServer::start_zones(&signed.zones);
    assert_eq!(server.udp.port(), server.tcp.port(), "resolvers expect UDP and TCP on one port");
    let cases = validator_cases(denial);

    let resolver = start_resolver(kind, &signed.trust_anchor, server.udp, child.udp).expect("found above");
    let (lines, all_ok) = run_cases(&resolver, &cases);
    eprintln!("{test}: {} against waypost:\n{}", kind.name(), lines.join("\n"));
    if all_ok {
        return;
    }
    let log = resolver.log();
    drop(resolver);

    // The same cases against knotd on the same files: a case that fails
    // there too has a wrong expectation, not a Waypost bug.
    let mut control = String::from("(knotd not installed: no control run)");
    if let Some(knot) = Knot::start(&signed.zones) {
        let r = start_resolver(kind, &signed.trust_anchor, knot.addr, child.udp).expect("found above");
        let (klines, kok) = run_cases(&r, &cases);
        control = format!(
            "the same cases against knotd ({}):\n{}",
            if kok { "all pass: the failures above are Waypost's" } else { "some FAIL there too: check those expectations" },
            klines.join("\n")
        );
    }
    let tail: Vec<&str> = log.lines().rev().take(60).collect::<Vec<_>>().into_iter().rev().collect();
    panic!(
        "{test}: {} does not validate Waypost's answers as expected ({} zones):\n{}\n\n{control}\n\n{} log (last 60 lines):\n{}",
        kind.name(),
        denial.name(),
        lines.join("\n"),
        kind.name(),
        tail.join("\n")
    );
}

#[test]
fn unbound_validates_nsec_answers() {
    validates("unbound_validates_nsec_answers", Kind::Unbound, Denial::Nsec);
}

#[test]
fn unbound_validates_nsec3_answers() {
    validates("unbound_validates_nsec3_answers", Kind::Unbound, Denial::Nsec3);
}

#[test]
fn unbound_validates_nsec3_optout_answers() {
    validates("unbound_validates_nsec3_optout_answers", Kind::Unbound, Denial::Nsec3OptOut);
}

#[test]
fn kresd_validates_nsec_answers() {
    validates("kresd_validates_nsec_answers", Kind::Kresd, Denial::Nsec);
}

#[test]
fn kresd_validates_nsec3_answers() {
    validates("kresd_validates_nsec3_answers", Kind::Kresd, Denial::Nsec3);
}

#[test]
fn kresd_validates_nsec3_optout_answers() {
    validates("kresd_validates_nsec3_optout_answers", Kind::Kresd, Denial::Nsec3OptOut);
}

// ---------------------------------------------------------------------------
// Load checks: `waypost check` and reload

fn waypost_check(zones: &Path) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_waypost")).args(["check", "--zones"]).arg(zones).output().unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code(), text)
}

/// Deletes the DNSKEY records of a signed file written one record a line
/// (`-O full`); their RRSIGs stay. Returns how many were deleted.
fn remove_dnskeys(file: &Path) -> usize {
    let text = std::fs::read_to_string(file).unwrap();
    let mut removed = 0;
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| {
            let is_dnskey = l.split_whitespace().nth(3) == Some("DNSKEY");
            removed += usize::from(is_dnskey);
            !is_dnskey
        })
        .collect();
    assert!(removed >= 2, "{}: expected a KSK and a ZSK DNSKEY line", file.display());
    std::fs::write(file, kept.join("\n") + "\n").unwrap();
    removed
}

#[test]
fn signatures_expiring_within_three_days_load_with_a_warning() {
    let test = "signatures_expiring_within_three_days_load_with_a_warning";
    let signing = Signing { expire: "now+1d", ..Signing::new(Denial::Nsec) };
    let Some(signed) = sign_test_zones(test, signing) else { return };
    let (code, out) = waypost_check(&signed.zones);
    assert_eq!(code, Some(0), "zones that still validate for a day load:\n{out}");
    let file = signed.file("example.com.").display().to_string();
    assert!(
        out.lines().any(|l| l.contains(&file) && l.contains("expire")),
        "want a warning naming {file} and saying the signatures expire, got:\n{out}"
    );

    // Signatures valid for 30 days: no such warning.
    let Some(fresh) = sign_test_zones(test, Signing::new(Denial::Nsec)) else { return };
    let (code, out) = waypost_check(&fresh.zones);
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains("expire"), "no expiry warning for a 30-day validity:\n{out}");
}

/// A zone just signed by dnssec-signzone is a clean zone: RRSIGs at one
/// owner carry the TTLs of the RRsets they cover, which differ (RFC 4034
/// §3: "The TTL value of an RRSIG RR MUST match the TTL value of the RRset it
/// covers"), so they are no RFC 2181 §5.2 TTL mismatch.
#[test]
fn freshly_signed_zones_load_without_warnings() {
    let test = "freshly_signed_zones_load_without_warnings";
    for denial in [Denial::Nsec, Denial::Nsec3, Denial::Nsec3OptOut] {
        let Some(signed) = sign_test_zones(test, Signing::new(denial)) else { return };
        let (code, out) = waypost_check(&signed.zones);
        assert_eq!(code, Some(0), "{}: {out}", denial.name());
        let warnings: Vec<&str> = out.lines().filter(|l| l.starts_with("warning")).collect();
        assert!(
            warnings.is_empty(),
            "{}: {} warnings for freshly signed zones, the first ones:\n{}",
            denial.name(),
            warnings.len(),
            warnings.iter().take(8).copied().collect::<Vec<_>>().join("\n")
        );
    }
}

/// (line, message) of the `waypost check` error for `file`, which must be
/// `<file>:<line>: <message>`.
fn check_error_for(out: &str, file: &Path) -> Option<(usize, String)> {
    let prefix = format!("{}:", file.display());
    out.lines().find_map(|l| {
        let rest = l.split_once(&prefix)?.1;
        let (line, msg) = rest.split_once(": ")?;
        Some((line.parse().ok()?, msg.to_string()))
    })
}

#[test]
fn signed_zone_without_its_dnskey_is_rejected_with_file_and_line() {
    let test = "signed_zone_without_its_dnskey_is_rejected_with_file_and_line";
    let signing = Signing { one_record_per_line: true, ..Signing::new(Denial::Nsec) };
    let Some(signed) = sign_test_zones(test, signing) else { return };
    let (code, out) = waypost_check(&signed.zones);
    assert_eq!(code, Some(0), "the signed zones load before the edit:\n{out}");

    let file = signed.file("example.com.");
    remove_dnskeys(&file);
    let (code, out) = waypost_check(&signed.zones);
    assert_eq!(code, Some(1), "a signed zone without DNSKEY is refused:\n{out}");
    let Some((line, msg)) = check_error_for(&out, &file) else {
        panic!("want `{}:<line>: …DNSKEY…`, got:\n{out}", file.display());
    };
    let lines = std::fs::read_to_string(&file).unwrap().lines().count();
    assert!((1..=lines).contains(&line), "line {line} is not a line of the {lines}-line file:\n{out}");
    assert!(msg.contains("DNSKEY"), "the message names the missing DNSKEY: {msg}");
}

fn query_do(name: &str, rtype: RecordType) -> Message {
    let mut m = query(name, rtype, None);
    let mut e = Edns::new();
    e.set_max_payload(1232);
    e.set_dnssec_ok(true);
    m.set_edns(e);
    m
}

#[test]
fn signed_zone_without_its_dnskey_keeps_the_old_zone_serving_over_reload() {
    let test = "signed_zone_without_its_dnskey_keeps_the_old_zone_serving_over_reload";
    let signing = Signing { one_record_per_line: true, ..Signing::new(Denial::Nsec) };
    let Some(signed) = sign_test_zones(test, signing) else { return };
    let server = TestServer::start_zones(&signed.zones);
    let keys = |s: &TestServer| udp(s.udp, &query_do("example.com.", RecordType::DNSKEY));
    let before = keys(&server);
    assert_eq!(before.metadata.response_code, ResponseCode::NoError);
    let dnskeys = before.answers.iter().filter(|r| r.record_type() == RecordType::DNSKEY).count();
    assert_eq!(dnskeys, 2, "KSK and ZSK are served before the edit: {before:?}");

    let file = signed.file("example.com.");
    remove_dnskeys(&file);
    let (status, body) = http(server.http, "POST", "/v1/reload");
    assert_eq!(status, 422, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let reported = v["errors"].as_array().unwrap().iter().any(|e| {
        e["file"].as_str().is_some_and(|f| f.ends_with("example.com.zone"))
            && e["line"].as_u64().is_some_and(|l| l > 0)
            && e["reason"].as_str().is_some_and(|r| r.contains("DNSKEY"))
    });
    assert!(reported, "want an error with example.com.zone, its line and DNSKEY, got {body}");

    // The old zone keeps answering, keys and signatures included.
    let after = keys(&server);
    assert_eq!(after.metadata.response_code, ResponseCode::NoError);
    let dnskeys = after.answers.iter().filter(|r| r.record_type() == RecordType::DNSKEY).count();
    assert_eq!(dnskeys, 2, "the old zone's DNSKEYs keep serving: {after:?}");
    let host = udp(server.udp, &query_do("host.example.com.", RecordType::A));
    assert_eq!(host.metadata.response_code, ResponseCode::NoError);
    assert!(
        host.answers.iter().any(|r| r.record_type() == RecordType::RRSIG),
        "the old zone's RRSIGs keep serving with DO=1: {host:?}"
    );
}
