//! RFC 8906 §8, "Testing": every test it lists (§8.1.5, TCP, is every test sent over
//! TCP), and two more combinations, over UDP and over TCP, against a
//! signed zone (so DO=1 and the 512-octet DNSKEY test mean something), with the RFC's
//! expectations checked and each answer compared with knotd's for the same zone.
//!
//! The packets are written byte by byte here, because several tests need what a DNS
//! library will not send: a set reserved header bit, an unknown opcode without a
//! question, EDNS version 1, unknown EDNS flags.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use crate::dnssec::{sign_test_zones, Denial, Signing};
use crate::knot::Knot;
use crate::support::TestServer;

const ZONE: &str = "example.com.";
const SOA: u16 = 6;
const RRSIG: u16 = 46;
const DNSKEY: u16 = 48;
const OPT: u16 = 41;
const BADVERS: u16 = 16;
/// Header bits.
const RD: u16 = 0x0100;
const Z: u16 = 0x0040;
const AD: u16 = 0x0020;
const CD: u16 = 0x0010;
/// EDNS flags: DO, and one no RFC defines (dig's `+ednsflags=0x40`).
const DO: u16 = 0x8000;
const MBZ_40: u16 = 0x0040;

#[derive(Clone)]
struct Edns {
    version: u8,
    flags: u16,
    payload: u16,
    options: Vec<(u16, Vec<u8>)>,
}

fn edns0() -> Option<Edns> {
    Some(Edns { version: 0, flags: 0, payload: 1232, options: vec![] })
}

/// One RFC 8906 query.
struct Probe {
    section: &'static str,
    what: &'static str,
    opcode: u8,
    flags: u16,
    /// None: the header only (no question).
    question: Option<(&'static str, u16)>,
    edns: Option<Edns>,
}

fn probes() -> Vec<Probe> {
    let q = |t| Some((ZONE, t));
    let with = |version: u8, flags: u16, options: Vec<(u16, Vec<u8>)>| Some(Edns { version, flags, payload: 1232, options });
    vec![
        Probe { section: "8.1.1", what: "plain DNS: is the server configured for the zone", opcode: 0, flags: 0, question: q(SOA), edns: None },
        Probe { section: "8.1.2", what: "an unknown type (TYPE1000)", opcode: 0, flags: 0, question: q(1000), edns: None },
        Probe { section: "8.1.3.1", what: "CD=1", opcode: 0, flags: CD, question: q(SOA), edns: None },
        Probe { section: "8.1.3.2", what: "AD=1", opcode: 0, flags: AD, question: q(SOA), edns: None },
        Probe { section: "8.1.3.3", what: "the reserved header bit (Z=1)", opcode: 0, flags: Z, question: q(SOA), edns: None },
        Probe { section: "8.1.4", what: "an unknown opcode (15), header only", opcode: 15, flags: 0, question: None, edns: None },
        Probe { section: "8.1.4", what: "an unknown opcode (15) with a question", opcode: 15, flags: 0, question: q(SOA), edns: None },
        Probe { section: "extra", what: "RD=1 (copied; this server does not recurse)", opcode: 0, flags: RD, question: q(SOA), edns: None },
        Probe { section: "8.2.1", what: "minimal EDNS", opcode: 0, flags: 0, question: q(SOA), edns: edns0() },
        Probe { section: "8.2.2", what: "EDNS version 1", opcode: 0, flags: 0, question: q(SOA), edns: with(1, 0, vec![]) },
        Probe { section: "8.2.3", what: "an unknown EDNS option (100)", opcode: 0, flags: 0, question: q(SOA), edns: with(0, 0, vec![(100, vec![])]) },
        Probe { section: "8.2.4", what: "an unknown EDNS flag (0x40)", opcode: 0, flags: 0, question: q(SOA), edns: with(0, MBZ_40, vec![]) },
        Probe { section: "8.2.5", what: "EDNS version 1 with an unknown flag", opcode: 0, flags: 0, question: q(SOA), edns: with(1, MBZ_40, vec![]) },
        Probe { section: "8.2.6", what: "EDNS version 1 with an unknown option", opcode: 0, flags: 0, question: q(SOA), edns: with(1, 0, vec![(100, vec![])]) },
        Probe {
            section: "8.2.7",
            what: "DNSKEY with DO=1 and a 512-octet buffer (truncation)",
            opcode: 0,
            flags: 0,
            question: q(DNSKEY),
            edns: Some(Edns { version: 0, flags: DO, payload: 512, options: vec![] }),
        },
        Probe { section: "8.2.8", what: "DO=1", opcode: 0, flags: 0, question: q(SOA), edns: with(0, DO, vec![]) },
        Probe {
            section: "extra",
            what: "EDNS version 1, an unknown option and an unknown flag",
            opcode: 0,
            flags: 0,
            question: q(SOA),
            edns: with(1, MBZ_40, vec![(100, vec![])]),
        },
        Probe {
            section: "8.2.9",
            what: "several defined options (NSID, ECS, EXPIRE, COOKIE)",
            opcode: 0,
            flags: 0,
            question: q(SOA),
            edns: with(0, 0, vec![(3, vec![]), (8, vec![0, 1, 0, 0]), (9, vec![]), (10, vec![1, 2, 3, 4, 5, 6, 7, 8])]),
        },
    ]
}

fn name_wire(name: &str) -> Vec<u8> {
    let mut w = Vec::new();
    for label in name.trim_end_matches('.').split('.').filter(|l| !l.is_empty()) {
        w.push(label.len() as u8);
        w.extend_from_slice(label.as_bytes());
    }
    w.push(0);
    w
}

fn packet(p: &Probe, id: u16) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&((u16::from(p.opcode) << 11) | p.flags).to_be_bytes());
    m.extend_from_slice(&u16::from(p.question.is_some()).to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 0]);
    m.extend_from_slice(&u16::from(p.edns.is_some()).to_be_bytes());
    if let Some((name, qtype)) = p.question {
        m.extend_from_slice(&name_wire(name));
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
    }
    if let Some(e) = &p.edns {
        m.push(0);
        m.extend_from_slice(&OPT.to_be_bytes());
        m.extend_from_slice(&e.payload.to_be_bytes());
        m.extend_from_slice(&[0, e.version]);
        m.extend_from_slice(&e.flags.to_be_bytes());
        let rdata: Vec<u8> = e.options.iter().flat_map(|(c, d)| [c.to_be_bytes().to_vec(), (d.len() as u16).to_be_bytes().to_vec(), d.clone()].concat()).collect();
        m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        m.extend_from_slice(&rdata);
    }
    m
}

/// What RFC 8906 looks at in a response.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    rcode: u16,
    aa: bool,
    tc: bool,
    rd: bool,
    ad: bool,
    z: bool,
    /// The answer section's types.
    answer: Vec<u16>,
    /// The OPT record: (version, DO, flags other than DO, option codes).
    opt: Option<(u8, bool, u16, Vec<u16>)>,
}

fn skip_name(m: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let len = *m.get(i)? as usize;
        match len {
            0 => return Some(i + 1),
            l if l & 0xc0 == 0xc0 => return Some(i + 2),
            l => i += 1 + l,
        }
    }
}

fn parse(m: &[u8]) -> Option<(Seen, usize)> {
    let u16_at = |i: usize| Some(u16::from_be_bytes([*m.get(i)?, *m.get(i + 1)?]));
    let flags = u16_at(2)?;
    let counts = [u16_at(4)?, u16_at(6)?, u16_at(8)?, u16_at(10)?];
    let mut i = 12;
    for _ in 0..counts[0] {
        i = skip_name(m, i)? + 4;
    }
    let mut seen = Seen {
        rcode: flags & 0xf,
        aa: flags & 0x0400 != 0,
        tc: flags & 0x0200 != 0,
        rd: flags & RD != 0,
        ad: flags & AD != 0,
        z: flags & Z != 0,
        answer: vec![],
        opt: None,
    };
    for section in 1..4 {
        for _ in 0..counts[section] {
            i = skip_name(m, i)?;
            let (t, len) = (u16_at(i)?, u16_at(i + 8)? as usize);
            if section == 1 {
                seen.answer.push(t);
            }
            if t == OPT {
                let ttl = [*m.get(i + 4)?, *m.get(i + 5)?, *m.get(i + 6)?, *m.get(i + 7)?];
                let eflags = u16::from_be_bytes([ttl[2], ttl[3]]);
                let mut codes = Vec::new();
                let mut o = i + 10;
                while o + 4 <= i + 10 + len {
                    codes.push(u16_at(o)?);
                    o += 4 + u16_at(o + 2)? as usize;
                }
                seen.rcode |= u16::from(ttl[0]) << 4;
                seen.opt = Some((ttl[1], eflags & DO != 0, eflags & !DO, codes));
            }
            i += 10 + len;
        }
    }
    Some((seen, m.len()))
}

fn ask(server: SocketAddr, wire: &[u8], tcp: bool) -> Result<(Seen, usize), String> {
    let raw = if tcp {
        let mut s = TcpStream::connect(server).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut framed = (wire.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(wire);
        s.write_all(&framed).map_err(|e| e.to_string())?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len).map_err(|e| format!("no answer over TCP: {e}"))?;
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut buf).map_err(|e| e.to_string())?;
        buf
    } else {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        s.send_to(wire, server).map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 65535];
        let n = s.recv(&mut buf).map_err(|e| format!("no answer over UDP: {e}"))?;
        buf.truncate(n);
        buf
    };
    parse(&raw).ok_or_else(|| format!("unparsable answer: {raw:02x?}"))
}

/// The RFC's expectations for `p`'s answer `s` (`size` octets) over `tcp`: the failures.
fn expectations(p: &Probe, s: &Seen, size: usize, tcp: bool) -> Vec<String> {
    let mut bad = Vec::new();
    let mut expect = |ok: bool, what: &str| {
        if !ok {
            bad.push(what.to_string());
        }
    };
    let edns_version = p.edns.as_ref().map(|e| e.version);
    let has = |t: u16| s.answer.contains(&t);
    match (p.opcode, edns_version) {
        (15, _) => {
            expect(s.rcode == 4, "status NOTIMP");
            expect(!has(SOA), "no SOA");
            expect(!s.aa, "aa not set");
        }
        (_, Some(1)) => {
            expect(s.rcode == BADVERS, "status BADVERS");
            expect(!has(SOA), "no SOA");
        }
        _ => {
            expect(s.rcode == 0, "status NOERROR");
            expect(s.aa, "aa set");
            match p.question.map(|q| q.1) {
                Some(SOA) => expect(has(SOA), "the SOA in the answer"),
                Some(DNSKEY) if tcp => expect(has(DNSKEY), "the DNSKEY in the answer (TCP)"),
                Some(DNSKEY) => expect(s.tc || (size <= 512 && has(DNSKEY)), "TC=1, or an answer within 512 octets"),
                _ => {}
            }
        }
    }
    expect(!s.ad, "ad not set");
    expect(!s.z, "the reserved bit (Z) not set");
    expect(s.rd == (p.flags & RD != 0), "rd copied from the query");
    match (&p.edns, &s.opt) {
        (None, None) => {}
        (None, Some(_)) => expect(false, "no OPT record (the query had none)"),
        (Some(_), None) => expect(false, "an OPT record"),
        (Some(e), Some((version, do_bit, mbz, codes))) => {
            expect(*version == 0, "EDNS version 0");
            expect(*mbz == 0, "no unknown EDNS flag echoed");
            expect(!codes.contains(&100), "the unknown option not echoed");
            expect(*do_bit == (e.flags & DO != 0), "DO copied from the query (RFC 3225)");
            if e.flags & DO != 0 && s.rcode == 0 && !s.tc && p.question.is_some() {
                expect(has(RRSIG), "RRSIGs with DO=1 (the zone is signed)");
            }
        }
    }
    bad
}

/// What is compared with knotd: everything but the ECS option, which Waypost answers (it
/// serves geo answers, RFC 7871) and knotd without its geoip module ignores.
fn comparable(s: &Seen) -> Seen {
    let mut s = s.clone();
    if let Some((_, _, _, codes)) = s.opt.as_mut() {
        codes.retain(|&c| c != 8);
        codes.sort();
    }
    s
}

#[test]
fn every_rfc8906_test_passes_over_udp_and_tcp_and_matches_knot() {
    let test = "every_rfc8906_test_passes_over_udp_and_tcp_and_matches_knot";
    let Some(signed) = sign_test_zones(test, Signing::new(Denial::Nsec)) else { return };
    let ours = TestServer::start_zones(&signed.zones);
    let knot = Knot::start(&signed.zones);
    if knot.is_none() {
        crate::dnssec::skip(test, "knotd (package knot)");
    }
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for (n, p) in probes().iter().enumerate() {
        for tcp in [false, true] {
            let wire = packet(p, 0x8906 + n as u16);
            let via = if tcp { "TCP" } else { "UDP" };
            let line = format!("§{} {} ({via})", p.section, p.what);
            let (seen, size) = match ask(ours.udp, &wire, tcp) {
                Ok(r) => r,
                Err(e) => {
                    failures.push(format!("{line}: {e}"));
                    continue;
                }
            };
            let bad = expectations(p, &seen, size, tcp);
            if !bad.is_empty() {
                failures.push(format!("{line}: expected {}; got {seen:?}", bad.join(", ")));
            }
            if let Some(k) = &knot {
                match ask(k.addr, &wire, tcp) {
                    Ok((theirs, _)) if comparable(&theirs) == comparable(&seen) => {}
                    Ok((theirs, _)) => failures.push(format!("{line}: waypost {seen:?}, knotd {theirs:?}")),
                    Err(e) => failures.push(format!("{line}: knotd: {e}")),
                }
            }
            report.push(format!("ok? {line}: {seen:?}"));
        }
    }
    eprintln!("{test}: {} checks\n{}", report.len(), report.join("\n"));
    assert!(failures.is_empty(), "{test}:\n{}", failures.join("\n"));
}
