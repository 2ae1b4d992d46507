//! TTL units (`1h`, `2w`, `1h30m`) as BIND, Knot and NSD accept them in zone files.
//!
//! `domain`'s scanner reads TTLs as plain decimal numbers only, so before parsing we
//! rewrite unit TTLs to seconds where a TTL can stand: the `$TTL` argument, the TTL
//! field of a record, and the four timer fields of an SOA. Newlines are never added or
//! removed, so line numbers in errors stay true.

/// A token of the zone text: its byte range and whether it started a line (column 0).
#[derive(Debug, Clone, Copy)]
struct Token {
    start: usize,
    end: usize,
    at_line_start: bool,
}

/// Seconds for a unit TTL such as `1h30m`; None if the token is not one (or is plain digits).
pub fn unit_ttl(tok: &str) -> Option<u32> {
    if tok.bytes().all(|b| b.is_ascii_digit()) || !tok.as_bytes().first()?.is_ascii_digit() {
        return None;
    }
    let mut total: u64 = 0;
    let mut num: Option<u64> = None;
    for b in tok.bytes() {
        match b {
            b'0'..=b'9' => num = Some(num.unwrap_or(0).checked_mul(10)?.checked_add((b - b'0') as u64)?),
            _ => {
                let mult = match b.to_ascii_lowercase() {
                    b's' => 1,
                    b'm' => 60,
                    b'h' => 3600,
                    b'd' => 86_400,
                    b'w' => 604_800,
                    _ => return None,
                };
                total = total.checked_add(num.take()?.checked_mul(mult)?)?;
            }
        }
    }
    if let Some(n) = num {
        total = total.checked_add(n)?;
    }
    u32::try_from(total).ok()
}

/// Splits the text into entries (a line, or several joined by parentheses) of tokens.
fn entries(text: &[u8]) -> Vec<Vec<Token>> {
    let mut out = Vec::new();
    let mut cur: Vec<Token> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    let mut line_start = true;
    while i < text.len() {
        let c = text[i];
        match c {
            b'\n' => {
                if depth == 0 && !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                line_start = true;
                i += 1;
                continue;
            }
            b' ' | b'\t' | b'\r' => {}
            b';' => {
                while i < text.len() && text[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            _ => {
                let start = i;
                let quoted = c == b'"';
                i += 1;
                while i < text.len() {
                    let d = text[i];
                    if d == b'\\' {
                        i += 2;
                        continue;
                    }
                    if quoted {
                        i += 1;
                        if d == b'"' {
                            break;
                        }
                        continue;
                    }
                    if matches!(d, b' ' | b'\t' | b'\r' | b'\n' | b';' | b'(' | b')') {
                        break;
                    }
                    i += 1;
                }
                cur.push(Token { start, end: i.min(text.len()), at_line_start: line_start && depth == 0 && cur.is_empty() });
                line_start = false;
                continue;
            }
        }
        line_start = false;
        i += 1;
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn is_class(t: &str) -> bool {
    ["IN", "CH", "HS", "CS", "NONE", "ANY"].iter().any(|c| t.eq_ignore_ascii_case(c)) || t.to_ascii_uppercase().starts_with("CLASS")
}

/// Rewrites unit TTLs to seconds. Returns the text unchanged (borrowed) when there are none.
pub fn expand_ttl_units(text: &str) -> std::borrow::Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut edits: Vec<(usize, usize, u32)> = Vec::new();
    for entry in entries(bytes) {
        let tok = |t: &Token| &text[t.start..t.end];
        let first = tok(&entry[0]);
        if entry[0].at_line_start && first.starts_with('$') {
            if first.eq_ignore_ascii_case("$TTL") {
                if let Some(t) = entry.get(1) {
                    if let Some(v) = unit_ttl(tok(t)) {
                        edits.push((t.start, t.end, v));
                    }
                }
            }
            continue;
        }
        // Skip the owner when the entry starts in column 0.
        let mut k = usize::from(entry[0].at_line_start);
        // Up to two of [TTL] [class] before the type.
        for _ in 0..2 {
            let Some(t) = entry.get(k) else { break };
            let s = tok(t);
            if let Some(v) = unit_ttl(s) {
                edits.push((t.start, t.end, v));
                k += 1;
            } else if is_class(s) || s.bytes().all(|b| b.is_ascii_digit()) {
                k += 1;
            } else {
                break;
            }
        }
        let Some(rtype) = entry.get(k) else { continue };
        if tok(rtype).eq_ignore_ascii_case("SOA") {
            // MNAME RNAME SERIAL REFRESH RETRY EXPIRE MINIMUM
            for t in entry.iter().skip(k + 4).take(4) {
                if let Some(v) = unit_ttl(tok(t)) {
                    edits.push((t.start, t.end, v));
                }
            }
        }
    }
    if edits.is_empty() {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for (s, e, v) in edits {
        out.push_str(&text[pos..s]);
        out.push_str(&v.to_string());
        pos = e;
    }
    out.push_str(&text[pos..]);
    std::borrow::Cow::Owned(out)
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
        let out = expand_ttl_units(text);
        assert_eq!(
            out,
            "$TTL 3600\n1h IN 7200 A 192.0.2.1 ; 1h\n  86400 TXT \"1h\"\n@ SOA ns h (\n 1 7200 1800\n 1209600 300 )\nmx MX 10 1h\n"
        );
        assert_eq!(out.matches('\n').count(), text.matches('\n').count());
    }
}
