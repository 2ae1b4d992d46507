//! The zone text pre-pass: what `domain`'s scanner does not do the way Knot, BIND and
//! NSD do, done before it scans a file.
//!
//! ```text
//!   file text ──► entries (a line, or lines joined by parentheses) of tokens
//!             ──► rewrites: TTL units → seconds; `@` in RDATA names → the origin
//!             ──► lexical problems: unclosed `(`, stray `)`, unterminated quote
//!             ──► entry table: byte range, first line, origin / owner / $TTL in effect
//! ```
//!
//! - TTL units (`1h`, `2w`, `1h30m`) are rewritten to seconds where a TTL can stand: the
//!   `$TTL` argument, the TTL field of a record and the four timer fields of an SOA
//!   (`domain` reads plain decimal TTLs only).
//! - RFC 1035 §5.1: "A free standing @ is used to denote the current origin." `domain`
//!   honours that for owners only and reads an `@` in record data as the label `\@`, so
//!   `www CNAME @` would point at `\@.example.com.`. Every domain-name field of the
//!   record data (see [`name_fields`]) that is a lone `@` is replaced by the origin in
//!   effect at that line, as Knot's scanner does.
//! - The entry table lets the loader give each record its line, say what is wrong with an
//!   entry the scanner rejects (`zones::diagnose`) and resume scanning after it, so a file's
//!   errors are all reported, not only the first.
//!
//! Newlines are never added or removed and rewrites stay inside one token, so line
//! numbers stay true and entries keep their shape.


pub use crate::config::duration::unit_ttl;

/// A token of the zone text: its byte range and whether it started a line (column 0).
#[derive(Debug, Clone, Copy)]
pub struct Token {
    pub start: usize,
    pub end: usize,
    pub at_line_start: bool,
}

/// One entry: a directive or a record, in the rewritten text.
#[derive(Debug, Clone)]
pub struct Entry {
    pub tokens: Vec<Token>,
    /// Byte range, from the start of the entry's first line to its end.
    pub start: usize,
    pub end: usize,
    /// 1-based line of the first token.
    pub line: usize,
    /// The origin in effect (absolute, presentation format); shared by the entries it
    /// applies to (a string per entry was a million allocations in a big zone).
    pub origin: std::rc::Rc<str>,
    /// The owner a record here has: its own, or the last one stated (absolute).
    pub owner: Option<std::rc::Rc<str>>,
    /// The `$TTL` in effect, if one was given.
    pub dollar_ttl: Option<u32>,
}

/// A problem the pre-pass found on its own: (line, message).
pub type LexProblem = (usize, String);

/// The rewritten text, its entries and the lexical problems.
#[derive(Debug)]
pub struct Prepared {
    pub text: Vec<u8>,
    pub entries: Vec<Entry>,
    pub problems: Vec<LexProblem>,
}

impl Prepared {
    /// The first entry whose first token is at or after byte `offset` of the rewritten
    /// text, skipping `$ORIGIN` and `$TTL` (the scanner reads those on its own, so an
    /// offset before them belongs to the record that follows).
    pub fn entry_at(&self, offset: usize) -> Option<usize> {
        self.entry_at_from(offset, 0)
    }

    /// [`Self::entry_at`] for a scan that moves forward: the search starts at entry
    /// `hint` (the last answer), so a file's records cost one step each, not a binary
    /// search over every entry (7% of loading a million records).
    pub fn entry_at_from(&self, offset: usize, hint: usize) -> Option<usize> {
        let before = |i: usize| self.entries.get(i).is_some_and(|e| e.tokens[0].start < offset);
        let search = || self.entries.partition_point(|e| e.tokens[0].start < offset);
        let mut i = match hint.min(self.entries.len()) {
            0 => search(),
            h if !before(h - 1) => search(),
            h => h,
        };
        while before(i) {
            i += 1;
        }
        while let Some(e) = self.entries.get(i) {
            let first = self.token(&e.tokens[0]);
            if !(e.tokens[0].at_line_start && (first.eq_ignore_ascii_case("$ORIGIN") || first.eq_ignore_ascii_case("$TTL"))) {
                return Some(i);
            }
            i += 1;
        }
        None
    }

    /// Text of one token.
    pub fn token(&self, t: &Token) -> &str {
        std::str::from_utf8(&self.text[t.start..t.end]).unwrap_or("")
    }
}

/// Splits the text into entries of tokens, and notes lexical problems. The entries'
/// origin, owner and `$TTL` are left for [`prepare`] to fill in.
fn tokenize(text: &[u8], problems: Option<&mut Vec<LexProblem>>) -> Vec<Entry> {
    let unset: std::rc::Rc<str> = std::rc::Rc::from("");
    let mut sink = Vec::new();
    let problems = problems.unwrap_or(&mut sink);
    let mut out = Vec::new();
    let mut cur: Vec<Token> = Vec::new();
    let mut depth = 0usize;
    let mut open_line = 0usize;
    let mut i = 0;
    let mut line = 1usize;
    let mut line_start_at = 0usize;
    let mut entry_start = 0usize;
    let mut entry_line = 1usize;
    let mut at_line_start = true;
    let push = |cur: &mut Vec<Token>, out: &mut Vec<Entry>, start: usize, end: usize, line: usize| {
        if !cur.is_empty() {
            out.push(Entry { tokens: std::mem::take(cur), start, end, line, origin: unset.clone(), owner: None, dollar_ttl: None });
        }
    };
    while i < text.len() {
        let c = text[i];
        match c {
            b'\n' => {
                if depth == 0 {
                    push(&mut cur, &mut out, entry_start, i, entry_line);
                }
                line += 1;
                i += 1;
                line_start_at = i;
                at_line_start = true;
                continue;
            }
            b' ' | b'\t' | b'\r' => {}
            b';' => {
                while i < text.len() && text[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'(' => {
                if depth == 0 {
                    open_line = line;
                }
                depth += 1;
            }
            b')' => {
                if depth == 0 {
                    problems.push((line, "\")\" without a matching \"(\"".into()));
                } else {
                    depth -= 1;
                }
            }
            _ => {
                let start = i;
                // The token's line: counted as the text is walked (counting the newlines
                // before `start` for every entry made loading quadratic: 84 s for 100,000 records).
                let start_line = line;
                let quoted = c == b'"';
                let mut closed = !quoted;
                i += 1;
                while i < text.len() {
                    let d = text[i];
                    if d == b'\\' {
                        if text.get(i + 1) == Some(&b'\n') {
                            line += 1;
                        }
                        i += 2;
                        continue;
                    }
                    if quoted {
                        i += 1;
                        if d == b'"' {
                            closed = true;
                            break;
                        }
                        if d == b'\n' {
                            line += 1;
                        }
                        continue;
                    }
                    if matches!(d, b' ' | b'\t' | b'\r' | b'\n' | b';' | b'(' | b')') {
                        break;
                    }
                    i += 1;
                }
                i = i.min(text.len());
                if !closed {
                    // The quote runs to the end of the file: report it where it opened and
                    // read on from the end of that line.
                    let token_line = 1 + text[..start].iter().filter(|&&b| b == b'\n').count();
                    problems.push((token_line, "unterminated quoted string (no closing \")".into()));
                    let eol = text[start..].iter().position(|&b| b == b'\n').map_or(text.len(), |p| start + p);
                    line = token_line;
                    i = eol;
                }
                if cur.is_empty() {
                    entry_start = line_start_at;
                    entry_line = if closed { start_line } else { line };
                }
                cur.push(Token { start, end: i, at_line_start: at_line_start && depth == 0 && cur.is_empty() && start == line_start_at });
                at_line_start = false;
                continue;
            }
        }
        at_line_start = false;
        i += 1;
    }
    if depth > 0 {
        problems.push((open_line, "unclosed \"(\": no matching \")\" before the end of the file".into()));
    }
    push(&mut cur, &mut out, entry_start, text.len(), entry_line);
    out
}

pub(super) fn is_class(t: &str) -> bool {
    ["IN", "CH", "HS", "CS", "NONE", "ANY"].iter().any(|c| t.eq_ignore_ascii_case(c))
        || (t.len() > 5 && t.as_bytes()[..5].eq_ignore_ascii_case(b"CLASS") && t.as_bytes()[5..].iter().all(u8::is_ascii_digit))
}

fn is_ttl(t: &str) -> bool {
    (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())) || unit_ttl(t).is_some()
}

/// Index of the type token in a record entry: after the owner (when the entry starts in
/// column 0) and up to two of TTL and class.
fn type_index<S: AsRef<str>>(tokens: &[Token], tok: impl Fn(&Token) -> S) -> usize {
    let mut k = usize::from(tokens[0].at_line_start);
    for _ in 0..2 {
        let Some(t) = tokens.get(k) else { break };
        let s = tok(t);
        let s = s.as_ref();
        if is_ttl(s) || is_class(s) {
            k += 1;
        } else {
            break;
        }
    }
    k
}

/// The RDATA fields (0-based, in presentation order) that hold a domain name, for the
/// types whose presentation format has them (RFC 1035 §3.3, 1183, 2163, 2230, 2782,
/// 2915, 3403, 4034, 5155, 6672, 9460, …).
pub fn name_fields(rtype: &str, rdata: &[&str]) -> Vec<usize> {
    match rtype.to_ascii_uppercase().as_str() {
        "NS" | "CNAME" | "DNAME" | "PTR" | "MB" | "MD" | "MF" | "MG" | "MR" | "NSEC" | "NXT" => vec![0],
        "SOA" | "MINFO" | "RP" | "TALINK" => vec![0, 1],
        "MX" | "AFSDB" | "RT" | "KX" | "LP" | "SVCB" | "HTTPS" => vec![1],
        "PX" => vec![1, 2],
        "SRV" => vec![3],
        "NAPTR" => vec![5],
        "RRSIG" | "SIG" => vec![7],
        // Gateway type 3 is a domain name (RFC 4025 §2.5).
        "IPSECKEY" if rdata.get(2) == Some(&"3") => vec![3],
        // Relay type 3 is a domain name (RFC 8777 §4.3).
        "AMTRELAY" if rdata.get(2) == Some(&"3") => vec![3],
        // Rendezvous servers follow the HIT and the public key (RFC 8005 §5).
        "HIP" => (3..rdata.len()).collect(),
        _ => Vec::new(),
    }
}

/// `name` made absolute against `origin` (both presentation format; `origin` absolute).
fn absolute(name: &str, origin: &str) -> String {
    if name == "@" {
        origin.to_string()
    } else if name.ends_with('.') && !name.ends_with("\\.") {
        name.to_string()
    } else if origin == "." {
        format!("{name}.")
    } else {
        format!("{name}.{origin}")
    }
}

/// Reads the text (of one file, whose origin starts as `origin`), rewrites it and builds
/// the entry table. `origin` is absolute presentation format.
pub fn prepare(text: &[u8], origin: &str) -> Prepared {
    use std::borrow::Cow;
    use std::rc::Rc;
    let mut problems = Vec::new();
    let mut entries = tokenize(text, Some(&mut problems));
    let s = |t: &Token| -> Cow<'_, str> { String::from_utf8_lossy(&text[t.start..t.end]) };
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let mut origin: Rc<str> = Rc::from(origin);
    let mut owner: Option<Rc<str>> = None;
    let mut dollar_ttl: Option<u32> = None;
    // Each entry gets the (origin, owner, $TTL) in effect there.
    for e in entries.iter_mut() {
        let first = s(&e.tokens[0]);
        if e.tokens[0].at_line_start && first.starts_with('$') {
            (e.origin, e.owner, e.dollar_ttl) = (origin.clone(), owner.clone(), dollar_ttl);
            if first.eq_ignore_ascii_case("$TTL") {
                if let Some(t) = e.tokens.get(1) {
                    let v = s(t);
                    if let Some(secs) = unit_ttl(&v) {
                        edits.push((t.start, t.end, secs.to_string()));
                        dollar_ttl = Some(secs);
                    } else if let Ok(secs) = v.parse::<u32>() {
                        dollar_ttl = Some(secs);
                    }
                }
            } else if first.eq_ignore_ascii_case("$ORIGIN") {
                if let Some(t) = e.tokens.get(1) {
                    origin = Rc::from(absolute(&s(t), &origin));
                }
            }
            continue;
        }
        if e.tokens[0].at_line_start {
            owner = Some(Rc::from(absolute(&first, &origin)));
        }
        (e.origin, e.owner, e.dollar_ttl) = (origin.clone(), owner.clone(), dollar_ttl);
        let k = type_index(&e.tokens, s);
        // TTL units before the type.
        for t in &e.tokens[usize::from(e.tokens[0].at_line_start)..k.min(e.tokens.len())] {
            if let Some(v) = unit_ttl(&s(t)) {
                edits.push((t.start, t.end, v.to_string()));
            }
        }
        let Some(rtype) = e.tokens.get(k).map(s) else { continue };
        let rdata_tokens = &e.tokens[k + 1..];
        if rtype.eq_ignore_ascii_case("SOA") {
            // MNAME RNAME SERIAL REFRESH RETRY EXPIRE MINIMUM
            for t in rdata_tokens.iter().skip(3).take(4) {
                if let Some(v) = unit_ttl(&s(t)) {
                    edits.push((t.start, t.end, v.to_string()));
                }
            }
        }
        // RFC 3597 generic data has no names to read; only a bare "@" is rewritten.
        if rdata_tokens.first().is_some_and(|t| &text[t.start..t.end] == b"\\#") || !rdata_tokens.iter().any(|t| &text[t.start..t.end] == b"@") {
            continue;
        }
        let rdata: Vec<Cow<'_, str>> = rdata_tokens.iter().map(s).collect();
        let rdata_ref: Vec<&str> = rdata.iter().map(|c| c.as_ref()).collect();
        for i in name_fields(&rtype, &rdata_ref) {
            if rdata_ref.get(i) == Some(&"@") {
                let t = rdata_tokens[i];
                edits.push((t.start, t.end, origin.to_string()));
            }
        }
    }
    // Rewrites keep every entry's shape, so the entries of the new text pair one to one
    // with those above; without rewrites they are the entries already made.
    let text: Vec<u8> = if edits.is_empty() {
        text.to_vec()
    } else {
        edits.sort_by_key(|e| e.0);
        let mut out = Vec::with_capacity(text.len() + 64);
        let mut pos = 0;
        for (st, en, v) in edits {
            out.extend_from_slice(&text[pos..st]);
            out.extend_from_slice(v.as_bytes());
            pos = en;
        }
        out.extend_from_slice(&text[pos..]);
        let mut rewritten = tokenize(&out, None);
        for (n, o) in rewritten.iter_mut().zip(entries.iter_mut()) {
            (n.origin, n.owner, n.dollar_ttl) = (std::mem::replace(&mut o.origin, origin.clone()), o.owner.take(), o.dollar_ttl);
        }
        entries = rewritten;
        out
    };
    problems.sort();
    problems.dedup();
    Prepared { text, entries, problems }
}

/// The rewritten text alone (TTL units, `@` names), for tests.
#[cfg(test)]
fn rewrite(text: &str, origin: &str) -> String {
    String::from_utf8_lossy(&prepare(text.as_bytes(), origin).text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_convert_to_seconds() {
        assert_eq!(unit_ttl("1h"), Some(3600));
        assert_eq!(unit_ttl("1h30m"), Some(5400));
        assert_eq!(unit_ttl("2W"), Some(1_209_600));
        assert_eq!(unit_ttl("300"), None);
        assert_eq!(unit_ttl("h1"), None);
        assert_eq!(unit_ttl("1x"), None);
        assert_eq!(unit_ttl("99999999w"), None);
    }

    #[test]
    fn rewrites_ttl_fields_but_not_names_or_data() {
        let text = "$TTL 1h\n1h IN 2h A 192.0.2.1 ; 1h\n  1d TXT \"1h\"\n@ SOA ns h (\n 1 2h 30m\n 2w 5m )\nmx MX 10 1h\n";
        let out = rewrite(text, "example.com.");
        assert_eq!(
            out,
            "$TTL 3600\n1h IN 7200 A 192.0.2.1 ; 1h\n  86400 TXT \"1h\"\n@ SOA ns h (\n 1 7200 1800\n 1209600 300 )\nmx MX 10 1h\n"
        );
        assert_eq!(out.matches('\n').count(), text.matches('\n').count());
    }

    #[test]
    fn at_in_rdata_names_becomes_the_origin_in_effect() {
        let text = "@ SOA @ hostmaster.@ 1 2 3 4 5\n\
                    www CNAME @\n@ MX 10 @\n_s._tcp SRV 0 0 80 @\nt TXT @\n\
                    $ORIGIN sub\nx PTR @\nn NAPTR 1 1 \"u\" \"E2U+sip\" \"\" @\n\
                    $ORIGIN other.test.\ny DNAME @\ng TYPE5 \\# 1 00\nrp RP @ @\n";
        let out = rewrite(text, "example.com.");
        assert_eq!(
            out,
            "@ SOA example.com. hostmaster.@ 1 2 3 4 5\n\
             www CNAME example.com.\n@ MX 10 example.com.\n_s._tcp SRV 0 0 80 example.com.\nt TXT @\n\
             $ORIGIN sub\nx PTR sub.example.com.\nn NAPTR 1 1 \"u\" \"E2U+sip\" \"\" sub.example.com.\n\
             $ORIGIN other.test.\ny DNAME other.test.\ng TYPE5 \\# 1 00\nrp RP other.test. other.test.\n"
        );
    }

    #[test]
    fn lexical_problems_name_their_line() {
        let p = prepare(b"a A 192.0.2.1\nb TXT \"open\nc A 192.0.2.2\n", "x.");
        assert_eq!(p.problems, vec![(2, "unterminated quoted string (no closing \")".to_string())]);
        assert_eq!(p.entries.len(), 3, "reading goes on after the line with the open quote");
        let p = prepare(b"a A 192.0.2.1\n@ SOA ns h ( 1 2\n 3 4 5\nb A 192.0.2.2\n", "x.");
        assert_eq!(p.problems[0].0, 2);
        assert!(p.problems[0].1.contains("unclosed"), "{:?}", p.problems);
        let p = prepare(b"a A 192.0.2.1 )\n", "x.");
        assert_eq!(p.problems[0].0, 1);
    }

    #[test]
    fn diagnoses_say_what_was_found() {
        let p = prepare(b"www IN FOO 1.2.3.4\nw 3x IN A 192.0.2.1\nv A 192.0.2.300\nm MX ten mail\ns SRV 0 0 http t\n", "x.");
        let d: Vec<String> = p.entries.iter().map(|e| super::super::diagnose::diagnose(&p, e, "scanner says no")).collect();
        assert_eq!(d[0], "unknown record type \"FOO\"");
        assert_eq!(d[1], "bad TTL \"3x\" (expected seconds or units like 1h30m)");
        assert_eq!(d[2], "\"192.0.2.300\" is not an IPv4 address");
        assert_eq!(d[3], "MX preference \"ten\" is not a number from 0 to 65535");
        assert_eq!(d[4], "SRV port \"http\" is not a number from 0 to 65535");
    }

    #[test]
    fn entries_know_their_lines_owner_and_ttl() {
        let p = prepare(b"$TTL 60\n\na A 192.0.2.1\n  TXT (\n \"x\" )\n\nb A 192.0.2.2\n", "x.");
        let lines: Vec<usize> = p.entries.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![1, 3, 4, 7]);
        assert_eq!(p.entries[2].owner.as_deref(), Some("a.x."));
        assert_eq!(p.entries[2].dollar_ttl, Some(60));
        assert_eq!(p.entry_at(p.entries[1].end), Some(2));
        assert_eq!(p.entry_at(0), Some(1), "$TTL is skipped");
    }
}
