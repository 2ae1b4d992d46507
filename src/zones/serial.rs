//! The SOA serial each zone is served with, and the rule that decides it:
//!
//! ```text
//!   what the zone serves ──► fingerprint (file content but the serial, file serial,
//!                             signing inputs, services' transferred answers)
//!   same fingerprint as last served  ──► the same serial (also after a restart)
//!   another fingerprint              ──► the file's serial if it is higher (RFC 1982),
//!                                        else the next one by `serial-policy`
//! ```
//!
//! So every change of what a zone serves (its file, its keys or their states, the denial
//! mode, a new signature window, a service's transferred answer) gives a higher serial,
//! which secondaries follow (RFC 1996 NOTIFY, RFC 1995 IXFR), and the served serial never
//! goes backwards: also not when a zone stops being signed, nor across a restart, as the
//! last served serial of each zone is kept in `[server] state-dir` (`serials.json`).
//! Knot's `serial-policy` choices apply when Waypost has to pick a serial itself.
//!
//! Control side only: decided while a snapshot is built, written to `state-dir` before
//! the snapshot that serves it is published. A zone that is removed keeps its record, so
//! if it comes back its serial still does not go backwards.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::catalog::serial_lt;
use crate::config::geo::ServiceConfig;
use crate::config::{Problem, SerialPolicy};
use crate::wire::Name;

/// The file in `state-dir` that keeps the last served serial of every zone.
pub const FILE: &str = "serials.json";

/// A zone's last served serial and the fingerprint of what was served with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Served {
    pub serial: u32,
    pub fingerprint: u64,
}

/// Every zone's last served serial, by apex. Immutable once in a snapshot: the next
/// build makes a new book from it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Book {
    pub zones: BTreeMap<Name, Served>,
}

/// The serial to serve for a zone whose file says `file_serial` and whose content now
/// has `fingerprint`, after `last` (None: never served, then `first` is served).
pub fn decide(last: Option<Served>, file_serial: u32, fingerprint: u64, first: u32, policy: SerialPolicy, now: u64) -> u32 {
    let Some(last) = last else { return first };
    if last.fingerprint == fingerprint {
        return last.serial;
    }
    if serial_lt(last.serial, file_serial) {
        // The operator raised the file's serial past what was served: theirs wins.
        return file_serial;
    }
    let next = last.serial.wrapping_add(1);
    let candidate = match policy {
        SerialPolicy::Increment => next,
        SerialPolicy::Unixtime => now as u32,
        SerialPolicy::Dateserial => dateserial(now),
    };
    if serial_lt(last.serial, candidate) {
        candidate
    } else {
        next
    }
}

/// `YYYYMMDD00` for the UTC day of `now`.
fn dateserial(now: u64) -> u32 {
    let days = (now / 86_400) as i64;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y * 1_000_000 + m * 10_000 + d * 100) as u32
}

/// A stable 64-bit fingerprint of what a zone file gave (every record but the SOA
/// serial), independent of the order of the records: the [`record_fingerprint`]s of its
/// `records` records add up to `sum` (the parser adds them as it reads).
pub fn sum_fingerprint(sum: u64, records: usize) -> u64 {
    sum.wrapping_add(records as u64)
}

/// One record (its RDATA with names lowercased; an SOA without its serial), hashed and
/// mixed.
pub fn record_fingerprint(owner: &[u8], rtype: u16, ttl: u32, rdata: &[u8]) -> u64 {
    let mut h = StableHash::default();
    h.write(owner);
    h.write(&[(rtype >> 8) as u8, rtype as u8]);
    h.write(&ttl.to_be_bytes());
    // The SOA's serial is not content: it is what this module decides.
    let rd = if rtype == crate::wire::query::rtype::SOA && rdata.len() >= 20 { &rdata[..rdata.len() - 20] } else { rdata };
    h.write(rd);
    mix(h.0)
}

/// Adds `parts` (each already a fingerprint or a small value) into one fingerprint.
pub fn combine(parts: &[u64]) -> u64 {
    let mut h = StableHash::default();
    for p in parts {
        h.write(&p.to_be_bytes());
    }
    mix(h.0)
}

/// A fingerprint of what transfers carry for `services` (the names of one zone): each
/// name, its TTL and its `transfer` data centre's configured answer (or "omit").
pub fn services_fingerprint<'a>(services: impl Iterator<Item = &'a ServiceConfig>) -> u64 {
    let mut h = StableHash::default();
    for s in services {
        h.write(s.name.as_wire());
        h.write(&s.ttl.to_be_bytes());
        match s.transfer.and_then(|d| s.per_dc.get(d as usize)) {
            None => h.write(b"omit"),
            Some(a) => {
                for v in &a.v4 {
                    h.write(&v.octets());
                }
                h.write(b"|");
                for v in &a.v6 {
                    h.write(&v.octets());
                }
                h.write(b"|");
                if let Some(c) = &a.cname {
                    h.write(c.as_wire());
                }
            }
        }
    }
    h.0
}

/// A 64-bit hash defined here (so a fingerprint kept on disk means the same after an
/// upgrade of any library), eight octets per step: FNV-1a byte by byte cost 7% of loading
/// an 870,000-record zone.
pub struct StableHash(pub u64);

impl Default for StableHash {
    fn default() -> StableHash {
        StableHash(0xcbf2_9ce4_8422_2325)
    }
}

impl StableHash {
    pub fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            // never panics: chunks_exact yields 8 octets.
            let w = u64::from_le_bytes(c.try_into().expect("8 octets"));
            self.0 = (self.0 ^ w).wrapping_mul(K).rotate_left(29);
        }
        let rest = chunks.remainder();
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        self.0 = (self.0 ^ u64::from_le_bytes(last) ^ ((bytes.len() as u64) << 56)).wrapping_mul(K).rotate_left(29);
    }
}

/// splitmix64's finaliser: spreads FNV's weak high bits before the sum.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// `serials.json`, version 1.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileV1 {
    version: u32,
    zones: BTreeMap<String, ServedV1>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServedV1 {
    serial: u32,
    /// Hex, 16 digits.
    fingerprint: String,
}

/// Reads the book kept in `dir` (an empty book when the file does not exist yet).
pub fn read(dir: &Path) -> Result<Book, Problem> {
    let path = dir.join(FILE);
    let problem = |line: usize, msg: String| Problem { file: path.clone(), line, msg };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Book::default()),
        Err(e) => return Err(problem(0, format!("cannot read the served serials: {e}"))),
    };
    let file: FileV1 = serde_json::from_str(&text)
        .map_err(|e| problem(e.line(), format!("{e}; the last served serial of each zone is kept here: repair the file, or remove it to serve the files' serials (secondaries may then refuse a lower serial)")))?;
    if file.version != 1 {
        return Err(problem(1, format!("version {} is not 1 (written by a newer Waypost?)", file.version)));
    }
    let mut book = Book::default();
    for (zone, s) in file.zones {
        let name = Name::from_text(&zone).ok_or_else(|| problem(0, format!("{zone:?} is not a zone name")))?;
        let fingerprint = u64::from_str_radix(&s.fingerprint, 16).map_err(|e| problem(0, format!("zone {zone}: fingerprint {:?}: {e}", s.fingerprint)))?;
        book.zones.insert(name, Served { serial: s.serial, fingerprint });
    }
    Ok(book)
}

/// Writes `book` into `dir` (created if needed), atomically.
pub fn write(dir: &Path, book: &Book) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let file = FileV1 {
        version: 1,
        zones: book.zones.iter().map(|(n, s)| (n.to_string(), ServedV1 { serial: s.serial, fingerprint: format!("{:016x}", s.fingerprint) })).collect(),
    };
    // never panics: the types serialize.
    let text = serde_json::to_string_pretty(&file).expect("serializable") + "\n";
    let path: PathBuf = dir.join(FILE);
    let tmp = dir.join(format!("{FILE}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_796_000_000; // 2026-11-30

    #[test]
    fn the_same_content_keeps_its_serial_and_new_content_raises_it() {
        let last = Some(Served { serial: 100, fingerprint: 7 });
        assert_eq!(decide(last, 5, 7, 5, SerialPolicy::Increment, NOW), 100, "unchanged: the serial served before");
        assert_eq!(decide(last, 5, 8, 5, SerialPolicy::Increment, NOW), 101, "changed, file serial lower: +1");
        assert_eq!(decide(last, 500, 8, 500, SerialPolicy::Increment, NOW), 500, "changed, file serial higher: the file's");
        assert_eq!(decide(None, 5, 8, 42, SerialPolicy::Increment, NOW), 42, "first: as given");
        let wrap = Some(Served { serial: u32::MAX, fingerprint: 1 });
        assert_eq!(decide(wrap, 5, 2, 5, SerialPolicy::Increment, NOW), 5, "5 is after u32::MAX in serial arithmetic");
        assert_eq!(decide(wrap, 0, 2, 0, SerialPolicy::Increment, NOW), 0, "RFC 1982 wraps");
    }

    #[test]
    fn unixtime_and_dateserial_never_go_back() {
        let last = Some(Served { serial: 100, fingerprint: 7 });
        assert_eq!(decide(last, 5, 8, 5, SerialPolicy::Unixtime, NOW), NOW as u32);
        assert_eq!(decide(last, 5, 8, 5, SerialPolicy::Dateserial, NOW), 2026_11_30_00);
        let ahead = Some(Served { serial: 2026_11_30_07, fingerprint: 7 });
        assert_eq!(decide(ahead, 5, 8, 5, SerialPolicy::Dateserial, NOW), 2026_11_30_08, "the day's serial is taken: +1");
        let far = Some(Served { serial: 2_100_000_000, fingerprint: 7 });
        assert_eq!(decide(far, 5, 8, 5, SerialPolicy::Unixtime, NOW), 2_100_000_001, "the clock is behind the served serial: +1");
        assert_eq!(dateserial(0), 1970_01_01_00);
        assert_eq!(dateserial(951_782_400), 2000_02_29_00);
    }

    #[test]
    fn the_book_survives_a_round_trip_and_a_broken_file_names_its_line() {
        let dir = crate::test_dir::TestDir::new("serials");
        let mut book = Book::default();
        book.zones.insert(Name::from_text("example.com.").unwrap(), Served { serial: 2026120801, fingerprint: u64::MAX - 3 });
        write(&dir, &book).unwrap();
        assert_eq!(read(&dir).unwrap(), book);
        std::fs::write(dir.join(FILE), "{\n  \"version\": 1,\n  \"zones\": {\n    \"example.com.\": { \"serial\": \"x\" }\n  }\n}\n").unwrap();
        let p = read(&dir).unwrap_err();
        assert_eq!(p.line, 4, "{p}");
        assert_eq!(read(&dir.join("nothing-here")).unwrap(), Book::default(), "no file yet: an empty book");
    }
}
