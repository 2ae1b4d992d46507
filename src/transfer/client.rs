//! Waypost as a secondary: asking a primary for its SOA serial, transferring the zone
//! (IXFR from the copy held, else AXFR; RFC 1995 §4 AXFR-style answers understood), every
//! message TSIG-checked, and the result written as a zone file that the ordinary loader
//! then reads (so a received zone gets exactly the checks of a zone file).
//!
//! The copy on disk is one record per line in presentation form (`domain`'s), after an
//! `$ORIGIN` line; IXFR differences are applied to those lines, a record matched by
//! owner, class, type and data (not TTL, RFC 1995 §4).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use domain::base::{Message, ParsedName};
use domain::rdata::AllRecordData;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::config::defaults::TRANSFER_IN_MAX_BYTES;
use crate::config::transfer::TsigKey;
use crate::wire::query::{class, rtype};
use crate::wire::Name;

use super::tsig;

/// A primary's SOA timers (seconds) and serial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Soa {
    pub serial: u32,
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
}

/// A zone as held on disk: presentation lines keyed without their TTL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Copy {
    /// (owner class type data) → the whole line.
    pub records: BTreeMap<String, String>,
    pub soa: Option<Soa>,
}

/// The key a record is matched by: its line without the TTL (the second field).
fn key_of(line: &str) -> String {
    let mut f = line.split_whitespace();
    let owner = f.next().unwrap_or("").to_ascii_lowercase();
    let _ttl = f.next();
    let rest: Vec<&str> = f.collect();
    format!("{owner} {}", rest.join(" "))
}

impl Copy {
    /// Reads a copy written by [`Copy::write`]; None when there is none (or it is not ours).
    pub fn read(path: &Path) -> Option<Copy> {
        let text = std::fs::read_to_string(path).ok()?;
        let mut c = Copy::default();
        for line in text.lines().filter(|l| !l.starts_with(';') && !l.starts_with('$') && !l.trim().is_empty()) {
            c.records.insert(key_of(line), line.to_string());
        }
        c.soa = c.records.values().find_map(|l| parse_soa_line(l));
        c.soa.is_some().then_some(c)
    }

    /// Writes the copy atomically (a temporary file renamed over the old one).
    pub fn write(&self, path: &Path, apex: &Name, from: SocketAddr) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut text = format!("; {apex} received from {from} by zone transfer; Waypost rewrites this file.\n$ORIGIN {apex}\n");
        // The SOA first, as a zone file has it.
        let soa = self.records.values().find(|l| parse_soa_line(l).is_some());
        for line in soa.into_iter().chain(self.records.values().filter(|l| Some(*l) != soa)) {
            text.push_str(line);
            text.push('\n');
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)
    }
}

/// The SOA fields of a presentation line `owner ttl IN SOA mname rname serial refresh retry expire minimum`.
fn parse_soa_line(line: &str) -> Option<Soa> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() < 11 || !f[3].eq_ignore_ascii_case("SOA") {
        return None;
    }
    let n = |i: usize| f[i].parse::<u32>().ok();
    Some(Soa { serial: n(6)?, refresh: n(7)?, retry: n(8)?, expire: n(9)? })
}

fn query(apex: &Name, qtype: u16, current: Option<&str>, key: Option<&TsigKey>, now: u64) -> (Vec<u8>, Option<Vec<u8>>) {
    let mut m = Vec::with_capacity(512);
    m.extend_from_slice(&super::notify::random_id().to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    m.extend_from_slice(apex.as_wire());
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&class::IN.to_be_bytes());
    // IXFR: the SOA of the copy held, in the authority section (RFC 1995 §3).
    if let Some(serial) = current.and_then(parse_soa_line).map(|s| s.serial) {
        m[9] = 1;
        m.extend_from_slice(apex.as_wire());
        m.extend_from_slice(&rtype::SOA.to_be_bytes());
        m.extend_from_slice(&class::IN.to_be_bytes());
        m.extend_from_slice(&0u32.to_be_bytes());
        m.extend_from_slice(&22u16.to_be_bytes());
        m.extend_from_slice(&[0, 0]);
        m.extend_from_slice(&serial.to_be_bytes());
        m.extend_from_slice(&[0u8; 16]);
    }
    let mac = key.map(|k| tsig::sign(&mut m, k, None, tsig::Part::First, 0, &[], now));
    (m, mac)
}

/// One received message's answer records: (presentation line, type, SOA fields if an SOA).
fn records(m: &[u8]) -> Result<Vec<(String, u16, Option<Soa>)>, String> {
    let msg = Message::from_octets(m).map_err(|_| "short message".to_string())?;
    let rc = msg.header().rcode().to_int();
    if rc != 0 {
        return Err(format!("the primary answered RCODE {rc}"));
    }
    let mut out = Vec::new();
    for rr in msg.answer().map_err(|e| format!("malformed answer: {e}"))? {
        let rr = rr.map_err(|e| format!("malformed record: {e}"))?;
        let Some(rec) = rr.to_record::<AllRecordData<&[u8], ParsedName<&[u8]>>>().map_err(|e| format!("malformed record: {e}"))? else { continue };
        if rec.class().to_int() != class::IN {
            return Err(format!("a record of class {} in the transfer", rec.class()));
        }
        let t = rec.rtype().to_int();
        let line = rec.to_string();
        let soa = if t == rtype::SOA { parse_soa_line(&line) } else { None };
        out.push((line, t, soa));
    }
    Ok(out)
}

/// The primary's SOA (over UDP, TSIG when keyed; two tries).
pub async fn soa(primary: SocketAddr, apex: &Name, key: Option<&TsigKey>) -> Result<Soa, String> {
    let bind: SocketAddr = if primary.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { (std::net::Ipv6Addr::UNSPECIFIED, 0).into() };
    let sock = UdpSocket::bind(bind).await.map_err(|e| format!("cannot bind: {e}"))?;
    let mut last = String::new();
    for _ in 0..2 {
        let (m, mac) = query(apex, rtype::SOA, None, key, super::now_secs());
        sock.send_to(&m, primary).await.map_err(|e| format!("cannot send: {e}"))?;
        let mut buf = vec![0u8; 4096];
        let got = tokio::time::timeout(Duration::from_secs(3), async {
            loop {
                let (n, from) = sock.recv_from(&mut buf).await?;
                if from == primary && n >= 12 && buf[..2] == m[..2] && buf[2] & 0x80 != 0 {
                    return Ok::<usize, std::io::Error>(n);
                }
            }
        })
        .await;
        let n = match got {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(format!("cannot receive: {e}")),
            Err(_) => {
                last = "no answer to the SOA query within 3s".into();
                continue;
            }
        };
        let a = &buf[..n];
        if let (Some(k), Some(mac)) = (key, mac) {
            tsig::ResponseCheck::new(k, mac).message(a, super::now_secs())?;
        }
        return records(a)?.into_iter().find_map(|r| r.2).ok_or_else(|| "the answer has no SOA".to_string());
    }
    Err(last)
}

/// What a transfer brought.
#[derive(Debug)]
pub enum Fetched {
    /// The primary's serial is the copy's: nothing to do.
    UpToDate,
    /// A new copy, whole or with the differences applied; `incremental` tells which.
    Zone { copy: Copy, incremental: bool },
}

/// Transfers `apex` from `primary` over TCP: IXFR from `current`'s serial when there is a
/// copy, else AXFR; every message TSIG-checked when keyed; the whole exchange within
/// `within` (`[transfer] timeout`) and TRANSFER_IN_MAX_BYTES.
pub async fn fetch(primary: SocketAddr, apex: &Name, key: Option<&TsigKey>, current: Option<&Copy>, within: Duration) -> Result<Fetched, String> {
    tokio::time::timeout(within, fetch_inner(primary, apex, key, current))
        .await
        .unwrap_or_else(|_| Err(format!("the transfer did not finish within {within:?}")))
}

async fn fetch_inner(primary: SocketAddr, apex: &Name, key: Option<&TsigKey>, current: Option<&Copy>) -> Result<Fetched, String> {
    let current_soa_line = current.and_then(|c| c.records.values().find(|l| parse_soa_line(l).is_some()).cloned());
    let qtype = if current_soa_line.is_some() { rtype::IXFR } else { rtype::AXFR };
    let (m, mac) = query(apex, qtype, current_soa_line.as_deref(), key, super::now_secs());
    let mut s = TcpStream::connect(primary).await.map_err(|e| format!("cannot connect: {e}"))?;
    let mut framed = (m.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&m);
    s.write_all(&framed).await.map_err(|e| format!("cannot send: {e}"))?;
    let mut check = key.zip(mac).map(|(k, mac)| tsig::ResponseCheck::new(k, mac));
    let mut all: Vec<(String, u16, Option<Soa>)> = Vec::new();
    let mut total = 0usize;
    loop {
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await.map_err(|e| format!("the transfer was cut short: {e}"))?;
        let n = u16::from_be_bytes(len) as usize;
        total += n;
        if total > TRANSFER_IN_MAX_BYTES {
            return Err(format!("the transfer is larger than {TRANSFER_IN_MAX_BYTES} bytes"));
        }
        let mut msg = vec![0u8; n];
        s.read_exact(&mut msg).await.map_err(|e| format!("the transfer was cut short: {e}"))?;
        if msg.len() < 12 || msg[..2] != m[..2] || msg[2] & 0x80 == 0 {
            return Err("an answer that is not to the transfer request".into());
        }
        if let Some(c) = check.as_mut() {
            c.message(&msg, super::now_secs())?;
        }
        all.extend(records(&msg)?);
        let Some(first) = all.first().map(|r| r.2) else { continue };
        let Some(first) = first else { return Err("the transfer does not start with an SOA".into()) };
        // IXFR answered with the SOA alone: up to date, or (another serial) no IXFR to give.
        if all.len() == 1 && qtype == rtype::IXFR {
            if current.and_then(|c| c.soa).is_some_and(|c| c.serial == first.serial) {
                return Ok(Fetched::UpToDate);
            }
            return Err(format!("IXFR answered with the SOA (serial {}) alone", first.serial));
        }
        if all.len() > 1 && all.last().and_then(|r| r.2).is_some_and(|s| s.serial == first.serial) && ends_stream(&all, qtype) {
            break;
        }
    }
    if let Some(c) = &check {
        c.finish()?;
    }
    build(all, current, qtype)
}

/// Whether the SOA just read closes the stream: for AXFR (and AXFR-style IXFR) the second
/// SOA; for an incremental IXFR the one after the last change (an odd-numbered run of
/// SOAs: opening, then pairs of old/new per change, then the closing one).
fn ends_stream(all: &[(String, u16, Option<Soa>)], qtype: u16) -> bool {
    let incremental = qtype == rtype::IXFR && all.get(1).is_some_and(|r| r.2.is_some());
    if !incremental {
        return true;
    }
    let soas = all.iter().filter(|r| r.2.is_some()).count();
    // opening + 2 per change + closing: even when complete.
    soas >= 4 && soas % 2 == 0
}

fn build(all: Vec<(String, u16, Option<Soa>)>, current: Option<&Copy>, qtype: u16) -> Result<Fetched, String> {
    let new_serial = all[0].2.map(|s| s.serial).unwrap_or(0);
    if let Some(cur) = current.and_then(|c| c.soa) {
        if new_serial == cur.serial {
            return Ok(Fetched::UpToDate);
        }
        if !super::serial_lt(cur.serial, new_serial) {
            return Err(format!("the primary's serial {new_serial} is older than the copy's {}", cur.serial));
        }
    }
    let incremental = qtype == rtype::IXFR && all.get(1).is_some_and(|r| r.2.is_some());
    if !incremental {
        // Opening SOA, the records, the closing SOA.
        let mut copy = Copy::default();
        for (line, _, _) in &all[..all.len() - 1] {
            copy.records.insert(key_of(line), line.clone());
        }
        copy.soa = all[0].2;
        return Ok(Fetched::Zone { copy, incremental: false });
    }
    let Some(cur) = current else { return Err("an incremental answer to a request without a copy".into()) };
    let mut copy = cur.clone();
    // Each change: SOA(old), what it removes, SOA(new), what it adds; then the closing SOA.
    let body = &all[1..all.len() - 1];
    let mut at = cur.soa.map_or(0, |s| s.serial);
    let mut i = 0;
    while i < body.len() {
        let Some(old) = body[i].2 else { return Err(format!("a change that does not start with an SOA: {}", body[i].0)) };
        if old.serial != at {
            return Err(format!("a change from serial {} when the copy is at {at}", old.serial));
        }
        i += 1;
        while let Some((line, _, None)) = body.get(i) {
            if copy.records.remove(&key_of(line)).is_none() {
                return Err(format!("the change removes a record the copy does not have: {line}"));
            }
            i += 1;
        }
        let Some(new) = body.get(i).and_then(|r| r.2) else { return Err("a change without its new SOA".into()) };
        i += 1;
        while let Some((line, _, None)) = body.get(i) {
            copy.records.insert(key_of(line), line.clone());
            i += 1;
        }
        at = new.serial;
    }
    if at != new_serial {
        return Err(format!("the changes end at serial {at}, not at the announced {new_serial}"));
    }
    // The SOA of the new version replaces the old one.
    copy.records.retain(|_, l| parse_soa_line(l).is_none());
    copy.records.insert(key_of(&all[0].0), all[0].0.clone());
    copy.soa = all[0].2;
    Ok(Fetched::Zone { copy, incremental: true })
}
