//! Saying what is wrong with a zone-file entry the scanner rejected, with the offending
//! token: `unknown record type "FOO"`, `bad TTL "3x"`, `"192.0.2.300" is not an IPv4
//! address`, field counts and field syntax of the common types, RFC 3597 lengths.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::presentation::{is_class, unit_ttl, Entry, Prepared, Token};

/// What is wrong with an entry the scanner rejected, said with the offending token:
/// `unknown record type "FOO"`, `bad TTL "3x"`, `"192.0.2.300" is not an IPv4 address`.
/// `scanner` is the scanner's own message, used when nothing more precise is found.
pub fn diagnose(p: &Prepared, entry: &Entry, scanner: &str) -> String {
    let tok = |t: &Token| p.token(t).to_string();
    let tokens = &entry.tokens;
    let first = tok(&tokens[0]);
    if tokens[0].at_line_start && first.starts_with('$') {
        let arg = tokens.get(1).map(tok);
        return match first.to_ascii_uppercase().as_str() {
            "$TTL" => match arg {
                None => "$TTL needs a value".into(),
                Some(a) => format!("bad $TTL value {a:?} (expected seconds or units like 1h30m)"),
            },
            "$ORIGIN" => match arg {
                None => "$ORIGIN needs a domain name".into(),
                Some(a) => format!("bad $ORIGIN {a:?}: {scanner}"),
            },
            "$INCLUDE" => match arg {
                None => "$INCLUDE needs a file name".into(),
                Some(a) => format!("bad $INCLUDE {a:?}: {scanner}"),
            },
            _ => format!("unknown directive {first:?} (expected $ORIGIN, $TTL or $INCLUDE)"),
        };
    }
    let mut k = usize::from(tokens[0].at_line_start);
    if tokens[0].at_line_start {
        if let Some(m) = bad_name(&first) {
            return format!("owner name {first:?}: {m}");
        }
    }
    for _ in 0..2 {
        let Some(t) = tokens.get(k) else { break };
        let s = tok(t);
        if s.bytes().all(|b| b.is_ascii_digit()) {
            if s.parse::<u32>().is_err() {
                return format!("TTL {s} is out of range (at most 4294967295)");
            }
            k += 1;
        } else if unit_ttl(&s).is_some() || is_class(&s) {
            k += 1;
        } else if s.as_bytes().first().is_some_and(u8::is_ascii_digit) {
            return format!("bad TTL {s:?} (expected seconds or units like 1h30m)");
        } else {
            break;
        }
    }
    let Some(rt) = tokens.get(k).map(tok) else {
        return "record has no type".into();
    };
    if domain::base::iana::Rtype::from_str(&rt).is_err() {
        if domain::base::iana::Class::from_str(&rt).is_ok() {
            return format!("class {rt:?} given twice or after the type");
        }
        return format!("unknown record type {rt:?}");
    }
    let rdata: Vec<String> = tokens[k + 1..].iter().map(tok).collect();
    let rdata: Vec<&str> = rdata.iter().map(String::as_str).collect();
    let up = rt.to_ascii_uppercase();
    if let Some(m) = check_rdata(&up, &rdata) {
        return m;
    }
    let shown = rdata.join(" ");
    let shown = if shown.len() > 60 { format!("{}…", &shown[..shown.char_indices().nth(57).map_or(shown.len(), |c| c.0)]) } else { shown };
    format!("bad {up} record data {shown:?}: {scanner}")
}

fn bad_name(name: &str) -> Option<String> {
    if name == "@" || name == "." {
        return None;
    }
    let labels: Vec<&str> = name.trim_end_matches('.').split('.').collect();
    if labels.iter().any(|l| l.is_empty()) && !name.contains('\\') {
        return Some("empty label (two dots in a row)".into());
    }
    if labels.iter().any(|l| l.len() > 63 && !l.contains('\\')) {
        return Some("a label is longer than 63 octets".into());
    }
    if name.len() > 254 && !name.contains('\\') {
        return Some("the name is longer than 255 octets".into());
    }
    None
}

fn number(field: &str, v: &str, max: u64) -> Option<String> {
    match v.parse::<u64>() {
        Ok(n) if n <= max => None,
        _ => Some(format!("{field} {v:?} is not a number from 0 to {max}")),
    }
}

/// Field counts and field syntax of the common types.
fn check_rdata(rt: &str, rdata: &[&str]) -> Option<String> {
    if rdata.first() == Some(&"\\#") {
        let len: usize = match rdata.get(1).map(|l| l.parse()) {
            Some(Ok(l)) => l,
            _ => return Some(format!("RFC 3597 data: length {:?} is not a number", rdata.get(1).copied().unwrap_or(""))),
        };
        let hex: String = rdata[2..].concat();
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) || hex.len() % 2 != 0 {
            return Some(format!("RFC 3597 data: {hex:?} is not hexadecimal octets"));
        }
        if hex.len() / 2 != len {
            return Some(format!("RFC 3597 data: length {len} but {} octets given", hex.len() / 2));
        }
        return None;
    }
    let need = |n: usize, what: &str| -> Option<String> {
        (rdata.len() != n).then(|| format!("{rt} needs {n} field{} ({what}), found {}: {:?}", if n == 1 { "" } else { "s" }, rdata.len(), rdata.join(" ")))
    };
    let name_ok = |field: &str, v: &str| bad_name(v).map(|m| format!("{rt} {field} {v:?}: {m}"));
    match rt {
        "A" => need(1, "an IPv4 address").or_else(|| Ipv4Addr::from_str(rdata[0]).is_err().then(|| format!("{:?} is not an IPv4 address", rdata[0]))),
        "AAAA" => need(1, "an IPv6 address").or_else(|| Ipv6Addr::from_str(rdata[0]).is_err().then(|| format!("{:?} is not an IPv6 address", rdata[0]))),
        "NS" | "CNAME" | "DNAME" | "PTR" => need(1, "a domain name").or_else(|| name_ok("target", rdata[0])),
        "MX" => need(2, "preference and exchange").or_else(|| number("MX preference", rdata[0], 65535)).or_else(|| name_ok("exchange", rdata[1])),
        "SRV" => need(4, "priority, weight, port and target")
            .or_else(|| number("SRV priority", rdata[0], 65535))
            .or_else(|| number("SRV weight", rdata[1], 65535))
            .or_else(|| number("SRV port", rdata[2], 65535))
            .or_else(|| name_ok("target", rdata[3])),
        "SOA" => need(7, "mname, rname, serial, refresh, retry, expire and minimum")
            .or_else(|| name_ok("mname", rdata[0]))
            .or_else(|| name_ok("rname", rdata[1]))
            .or_else(|| number("SOA serial", rdata[2], u32::MAX as u64))
            .or_else(|| rdata[3..].iter().zip(["refresh", "retry", "expire", "minimum"]).find_map(|(v, f)| number(&format!("SOA {f}"), v, u32::MAX as u64))),
        "CAA" => (rdata.len() < 3)
            .then(|| format!("CAA needs flags, tag and value, found {}: {:?}", rdata.len(), rdata.join(" ")))
            .or_else(|| number("CAA flags", rdata[0], 255)),
        "TXT" | "SPF" => rdata.is_empty().then(|| format!("{rt} needs at least one string")),
        _ => None,
    }
}

