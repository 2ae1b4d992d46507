//! Zone file → [`Zone`], with the semantic checks a zone must pass before it is served.
//!
//! Parsing uses NLnet Labs' `domain` zone file scanner (RFC 1035 §5 master format with
//! `$ORIGIN`, `$TTL`, `$INCLUDE`, RFC 3597 generic records and escapes). Every problem
//! is reported as `FILE:LINE: reason`. A zone with any error is never published.

use std::path::{Path, PathBuf};

use domain::base::iana::Class;
use domain::base::name::ToName;
use domain::base::rdata::ComposeRecordData;
use domain::zonefile::inplace::{Entry, Zonefile};

use super::presentation;
use super::zone::Zone;
use crate::config::{LoadLimits, Problem};
use crate::wire::name::{name_len, validate};
use crate::wire::query::rtype;
use crate::wire::Name;

/// `$INCLUDE` nesting limit, so an include loop ends with an error.
pub const MAX_INCLUDE_DEPTH: usize = 8;

/// A zone that passed every check, with the warnings its checks raised.
#[derive(Debug)]
pub struct LoadedZone {
    pub zone: Zone,
    pub warnings: Vec<Problem>,
}

/// The zone a file holds by its name: `example.com.zone` → `example.com.`.
pub fn origin_from_file_name(path: &Path) -> Option<Name> {
    let file = path.file_name()?.to_str()?;
    let stem = file.strip_suffix(".zone")?;
    if stem == "root" || stem.is_empty() || stem == "." {
        return Some(Name::root());
    }
    Name::from_text(stem)
}

pub(super) struct ParsedRecord {
    pub(super) owner: Name,
    pub(super) rtype: u16,
    pub(super) ttl: u32,
    pub(super) rdata: Box<[u8]>,
    /// Shared by the records of one file (a path per record was a million allocations).
    pub(super) file: std::sync::Arc<Path>,
    pub(super) line: usize,
}

struct Parser<'a> {
    limits: &'a LoadLimits,
    records: Vec<ParsedRecord>,
    errors: Vec<Problem>,
    /// The file the last record came from.
    file: Option<std::sync::Arc<Path>>,
    /// What the records say (`zones::serial::record_fingerprint`), added as they come.
    fingerprint: u64,
    /// Scratch for composing a record's owner and RDATA.
    owner_buf: Vec<u8>,
    rdata_buf: Vec<u8>,
}

/// Splits domain's `"LINE:COL: reason"` error text into (line, reason). domain reports
/// errors in record data after it has read the record's final newline, at column 1 of
/// the next line; such an error belongs to the line before.
fn split_scan_error(err: &str) -> (usize, String) {
    let mut parts = err.splitn(3, ':');
    let line: usize = parts.next().and_then(|l| l.trim().parse().ok()).unwrap_or(0);
    let col: usize = parts.next().and_then(|c| c.trim().parse().ok()).unwrap_or(0);
    let msg = parts.next().map(|m| m.trim().to_string()).unwrap_or_else(|| err.to_string());
    let line = if col <= 1 && line > 1 { line - 1 } else { line };
    (line, msg)
}

/// At most this many errors are reported per zone file, as `named-checkzone` and
/// `kzonecheck` stop too; the rest would mostly follow from the first ones.
pub const MAX_ERRORS_PER_FILE: usize = 20;

impl Parser<'_> {
    fn problem(&mut self, file: &Path, line: usize, msg: impl Into<String>) {
        self.errors.push(Problem { file: file.to_path_buf(), line, msg: msg.into() });
    }

    fn parse_file(&mut self, path: &Path, origin: &Name, depth: usize, include_line: Option<(&Path, usize)>) {
        let raw = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) => {
                match include_line {
                    Some((f, l)) => self.problem(f, l, format!("$INCLUDE {}: {e}", path.display())),
                    None => self.problem(path, 0, format!("cannot read: {e}")),
                }
                return;
            }
        };
        // What domain's scanner does not do as Knot does (TTL units, `@` in RDATA names),
        // and the entry table for lines, diagnoses and resuming: see `presentation`.
        let pre = presentation::prepare(&raw, &origin.to_string());
        let first_error = self.errors.len();
        let lexical: Vec<usize> = pre.problems.iter().map(|p| p.0).collect();
        for (line, msg) in &pre.problems {
            self.problem(path, *line, msg.clone());
        }
        // Scan from the start; after an error, go on with a new scanner at the entry after
        // the bad one (domain's scanner cannot continue after an error), so every error in
        // the file is reported.
        let mut resume: Option<usize> = None;
        loop {
            let (buf, base, prefix_lines, prefix_len, scan_origin) = match resume {
                None => (std::borrow::Cow::Borrowed(&pre.text[..]), 0, 0, 0, origin.clone()),
                Some(i) => {
                    let e = &pre.entries[i];
                    let mut buf = Vec::with_capacity(pre.text.len() - e.start + 64);
                    let mut prefix_lines = 0;
                    if let Some(t) = e.dollar_ttl {
                        buf.extend_from_slice(format!("$TTL {t}\n").as_bytes());
                        prefix_lines = 1;
                    }
                    let mut from = e.start;
                    if !e.tokens[0].at_line_start {
                        // The entry uses the last owner: state it, in place of the indent.
                        if let Some(o) = &e.owner {
                            buf.extend_from_slice(o.as_bytes());
                            buf.push(b' ');
                            from = e.tokens[0].start;
                        }
                    }
                    let prefix_len = buf.len();
                    buf.extend_from_slice(&pre.text[from..]);
                    let Some(o) = Name::from_text(&e.origin) else { return };
                    (std::borrow::Cow::Owned(buf), from, prefix_lines, prefix_len, o)
                }
            };
            let line_base = 1 + pre.text[..base].iter().filter(|&&b| b == b'\n').count();
            let to_line = |scanned: usize| if scanned > prefix_lines { scanned - prefix_lines - 1 + line_base } else { line_base };
            let to_offset = |scanned: usize| base + scanned.saturating_sub(prefix_len);
            let mut zf = Zonefile::from(buf.as_ref());
            zf.set_origin(to_domain_name(&scan_origin));
            zf.set_default_class(Class::IN);
            let mut hint = 0;
            loop {
                let offset = to_offset(zf.current_offset());
                let entry = pre.entry_at_from(offset, hint);
                hint = entry.unwrap_or(hint);
                let line = entry.map_or_else(|| to_line(1), |i| pre.entries[i].line);
                // domain 0.12.3's scanner can panic on some malformed input (an index past the
                // end of the buffer, found by our random zone-text test): contain it and
                // report it as a problem at this entry, so `check` and reloads survive.
                let scanned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| zf.next_entry()));
                let Ok(scanned) = scanned else {
                    self.problem(path, line, "the zone file scanner failed on this entry (malformed input; see tests/data/fuzz-regressions)");
                    return;
                };
                let entry = match scanned {
                    Ok(Some(e)) => e,
                    Ok(None) => return,
                    Err(e) => {
                        let (l, msg) = split_scan_error(&e.to_string());
                        let err_line = if l == 0 { line } else { to_line(l).max(line) };
                        // The bad entry: the last one starting at or before the reported
                        // line, but not before where the scanner was.
                        let by_line = pre.entries.partition_point(|e| e.line <= err_line).saturating_sub(1);
                        let Some(bad) = entry.map(|i| i.max(by_line)).or((by_line < pre.entries.len()).then_some(by_line)) else { return };
                        let bad_entry = &pre.entries[bad];
                        let last_line = bad_entry.line + pre.text[bad_entry.start..bad_entry.end].iter().filter(|&&b| b == b'\n').count();
                        // An entry the pre-pass already explained (an open quote or
                        // parenthesis) gets no second message.
                        if !lexical.iter().any(|&l| l >= bad_entry.line && l <= last_line) {
                            self.problem(path, bad_entry.line, super::diagnose::diagnose(&pre, bad_entry, &msg));
                        }
                        if self.errors.len() - first_error >= MAX_ERRORS_PER_FILE {
                            self.problem(path, bad_entry.line, format!("too many errors; stopped after {MAX_ERRORS_PER_FILE}"));
                            return;
                        }
                        if bad + 1 >= pre.entries.len() {
                            return;
                        }
                        resume = Some(bad + 1);
                        break;
                    }
                };
                match entry {
                    Entry::Record(rec) => {
                        if !self.record(path, line, rec) {
                            return;
                        }
                    }
                    Entry::Include { path: inc, origin: inc_origin } => {
                        if depth >= MAX_INCLUDE_DEPTH {
                            self.problem(path, line, format!("$INCLUDE nested more than {MAX_INCLUDE_DEPTH} deep"));
                            return;
                        }
                        let inc = PathBuf::from(inc.to_string());
                        let inc = if inc.is_absolute() {
                            inc
                        } else {
                            path.parent().unwrap_or(Path::new(".")).join(inc)
                        };
                        let inc_origin = match inc_origin {
                            Some(o) => Name::from_wire(o.as_slice()).unwrap_or_else(|| origin.clone()),
                            None => current_origin(&zf).unwrap_or_else(|| origin.clone()),
                        };
                        self.parse_file(&inc, &inc_origin, depth + 1, Some((path, line)));
                    }
                }
            }
        }
    }

    /// Checks one scanned record and keeps it. False when the zone is over its record
    /// limit, which ends the scan.
    fn record(&mut self, path: &Path, line: usize, rec: domain::zonefile::inplace::ScannedRecord) -> bool {
        if self.records.len() >= self.limits.max_records {
            self.problem(path, line, format!("zone has more than {} records", self.limits.max_records));
            return false;
        }
        if rec.class() != Class::IN {
            self.problem(path, line, format!("class {} is not served (only IN)", rec.class()));
            return true;
        }
        // Composed into buffers kept from record to record: one allocation per name and
        // RDATA kept, none for the scratch.
        let mut owner = std::mem::take(&mut self.owner_buf);
        owner.clear();
        let owner_ok = rec.owner().compose(&mut owner).is_ok() && validate(&owner).is_some();
        let owner_name = if owner_ok { Name::from_wire(&owner) } else { None };
        self.owner_buf = owner;
        if !owner_ok {
            self.problem(path, line, "owner name is not valid");
            return true;
        }
        let mut rdata = std::mem::take(&mut self.rdata_buf);
        rdata.clear();
        let rdata_ok = rec.data().compose_rdata(&mut rdata).is_ok() && rdata.len() <= u16::MAX as usize;
        if !rdata_ok {
            self.rdata_buf = rdata;
            self.problem(path, line, "record data too long");
            return true;
        }
        let rt = rec.rtype().to_int();
        if matches!(rt, rtype::OPT | rtype::AXFR | rtype::IXFR | rtype::ANY | rtype::MAILA | rtype::MAILB) {
            self.rdata_buf = rdata;
            self.problem(path, line, format!("type {} cannot appear in a zone", rec.rtype()));
            return true;
        }
        let Some(owner) = owner_name else {
            self.rdata_buf = rdata;
            self.problem(path, line, "owner name is not valid");
            return true;
        };
        lowercase_rdata_names(rt, &mut rdata);
        let kept: Box<[u8]> = Box::from(&rdata[..]);
        self.rdata_buf = rdata;
        let rdata = kept;
        let ttl = rec.ttl().as_secs();
        self.fingerprint = self.fingerprint.wrapping_add(super::serial::record_fingerprint(owner.as_wire(), rt, ttl, &rdata));
        let file = match &self.file {
            Some(f) if f.as_os_str() == path.as_os_str() => f.clone(),
            _ => {
                let f: std::sync::Arc<Path> = std::sync::Arc::from(path);
                self.file = Some(f.clone());
                f
            }
        };
        self.records.push(ParsedRecord {
            owner,
            rtype: rt,
            ttl,
            rdata,
            file,
            line,
        });
        true
    }
}

fn current_origin(zf: &Zonefile) -> Option<Name> {
    let o = zf.origin().ok()?;
    Name::from_wire(o.as_slice())
}

fn to_domain_name(name: &Name) -> domain::base::Name<bytes::Bytes> {
    // never panics: a `Name` is always valid wire format.
    domain::base::Name::from_octets(bytes::Bytes::copy_from_slice(name.as_wire())).expect("valid name")
}

/// Lowercases the names inside RDATA of the types whose names are used for
/// lookups (NS, CNAME, MX, SRV, PTR, SOA), so additional-section processing and
/// CNAME chasing can compare bytes. Knot serves these names as lowercase too.
fn lowercase_rdata_names(rt: u16, rdata: &mut [u8]) {
    let lower = |r: &mut [u8]| {
        if validate_prefix(r).is_some() {
            let n = name_len(r);
            r[..n].make_ascii_lowercase();
        }
    };
    match rt {
        rtype::NS | rtype::CNAME | rtype::PTR | rtype::DNAME => lower(rdata),
        rtype::MX if rdata.len() > 2 => lower(&mut rdata[2..]),
        rtype::SRV if rdata.len() > 6 => lower(&mut rdata[6..]),
        rtype::SOA if validate_prefix(&rdata).is_some() => {
            let a = name_len(&rdata);
            rdata[..a].make_ascii_lowercase();
            if validate_prefix(&rdata[a..]).is_some() {
                let b = name_len(&rdata[a..]);
                rdata[a..a + b].make_ascii_lowercase();
            }
        }
        _ => {}
    }
}

/// Checks that `wire` starts with a valid uncompressed name.
fn validate_prefix(wire: &[u8]) -> Option<()> {
    let mut i = 0;
    loop {
        let len = *wire.get(i)? as usize;
        if len > 63 || i > 255 {
            return None;
        }
        if len == 0 {
            return Some(());
        }
        i += len + 1;
    }
}

/// The name an RDATA points at, for types that name a host: NS, CNAME, MX, SRV.
pub fn rdata_target(rt: u16, rdata: &[u8]) -> Option<&[u8]> {
    let r = match rt {
        rtype::NS | rtype::CNAME | rtype::PTR | rtype::DNAME => rdata,
        rtype::MX => rdata.get(2..)?,
        rtype::SRV => rdata.get(6..)?,
        _ => return None,
    };
    validate_prefix(r)?;
    Some(&r[..name_len(r)])
}

/// The origin a zone file declares with a leading `$ORIGIN`, if it starts with one.
fn leading_origin(text: &str) -> Option<Name> {
    for line in text.lines() {
        let t = line.split(';').next().unwrap_or("").trim();
        if t.is_empty() {
            continue;
        }
        let mut words = t.split_whitespace();
        if words.next()?.eq_ignore_ascii_case("$ORIGIN") {
            return Name::from_text(words.next()?);
        }
        if t.starts_with("$TTL") || t.starts_with("$ttl") {
            continue;
        }
        return None;
    }
    None
}

/// Loads one zone file and runs every check. On error, returns all problems found.
pub fn load_zone(path: &Path, limits: &LoadLimits) -> Result<LoadedZone, Vec<Problem>> {
    match load_zone_unless(path, limits, None)? {
        Loaded::Zone(z) => Ok(z),
        // never panics: without a previous zone nothing can be the same.
        Loaded::Same => unreachable!("no previous zone to compare with"),
    }
}

/// What [`load_zone_unless`] found.
pub enum Loaded {
    Zone(LoadedZone),
    /// The file says what `previous` says (records and serial): nothing was built.
    Same,
}

/// [`load_zone`], except that a file whose records and SOA serial are those `previous`
/// was loaded from (a comment edited, a file rewritten unchanged) is answered `Same`
/// before any node is built: a reload of such a big zone holds the parsed records beside
/// the serving zone, not a second zone.
pub fn load_zone_unless(path: &Path, limits: &LoadLimits, previous: Option<&Zone>) -> Result<Loaded, Vec<Problem>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![Problem { file: path.to_path_buf(), line: 0, msg: format!("cannot read zone file: {e}") }]
    })?;
    let origin = match leading_origin(&text).or_else(|| origin_from_file_name(path)) {
        Some(o) => o,
        None => {
            return Err(vec![Problem {
                file: path.to_path_buf(),
                line: 1,
                msg: "no $ORIGIN and the file name is not <zone>.zone".into(),
            }])
        }
    };
    drop(text);
    let mut parser = Parser { limits, records: Vec::new(), errors: Vec::new(), file: None, fingerprint: 0, owner_buf: Vec::with_capacity(256), rdata_buf: Vec::with_capacity(1024) };
    parser.parse_file(path, &origin, 0, None);
    let Parser { records, mut errors, fingerprint, .. } = parser;
    if !errors.is_empty() {
        // Syntax errors: semantic checks on a partly read zone would only add noise.
        errors.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
        return Err(errors);
    }
    let fingerprint = super::serial::sum_fingerprint(fingerprint, records.len());
    if let Some(prev) = previous.filter(|p| p.apex == origin && p.fingerprint == fingerprint) {
        let serial = records.iter().find(|r| r.rtype == rtype::SOA && r.owner == origin).and_then(|r| soa_serial_minimum(&r.rdata)).map(|(s, _)| s);
        if serial == Some(prev.serial) {
            return Ok(Loaded::Same);
        }
    }
    let mut warnings = Vec::new();
    let zone = super::check::build_zone(path, origin, records, limits, &mut errors, &mut warnings);
    if errors.is_empty() {
        // never panics: build_zone returns Some whenever it raised no error.
        let mut zone = zone.expect("zone built");
        zone.fingerprint = fingerprint;
        Ok(Loaded::Zone(LoadedZone { zone, warnings }))
    } else {
        errors.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
        Err(errors)
    }
}

/// SERIAL and MINIMUM from SOA RDATA.
pub fn soa_serial_minimum(rdata: &[u8]) -> Option<(u32, u32)> {
    validate_prefix(rdata)?;
    let a = name_len(rdata);
    validate_prefix(&rdata[a..])?;
    let b = a + name_len(&rdata[a..]);
    let f = rdata.get(b..b + 20)?;
    Some((u32::from_be_bytes([f[0], f[1], f[2], f[3]]), u32::from_be_bytes([f[16], f[17], f[18], f[19]])))
}

/// Mnemonic for a record type, for messages.
pub fn type_name(rt: u16) -> String {
    domain::base::iana::Rtype::from_int(rt).to_string()
}

#[cfg(test)]
mod tests;
