//! Durations as people write them, in one parser with two dialects:
//!
//! - [`parse_duration`]: config keys and the admin API (`"10s"`, `"1h 30m"`, `"250ms"`,
//!   long unit names, plain seconds);
//! - [`unit_ttl`]: TTLs in zone files as BIND reads them (`1h30m`, `2W`, and `1h30`:
//!   a last number without a unit counts as seconds; one token, no spaces).
//!
//! Both read the same terms (a number, then a unit word) with [`sum_terms`]; they differ
//! only in the unit words, spacing and a unit-less tail. Months and years are units in
//! neither (`M` is minutes).

use std::time::Duration;

/// Why a text is not a duration.
#[derive(Debug, PartialEq, Eq)]
enum Fault {
    NotDuration,
    TooLarge,
    /// A number with no unit after it.
    NeedsUnit(u64),
    /// The unit word, lower-cased.
    UnknownUnit(String),
}

/// What one dialect accepts.
struct Dialect {
    /// Milliseconds per unit word (given lower-cased); None for a word it does not know.
    unit: fn(&str) -> Option<u64>,
    /// Spaces may stand between a number and its unit, and between terms.
    spaced: bool,
    /// A last number without a unit counts as seconds.
    bare_tail: bool,
}

/// Sums the terms of `text` (a number, then a unit word; repeated) in milliseconds.
fn sum_terms(text: &str, d: &Dialect) -> Result<u64, Fault> {
    let space = |s: &str| if d.spaced { s.trim_start().len() } else { s.len() };
    let mut rest = text;
    if rest.is_empty() {
        return Err(Fault::NotDuration);
    }
    let mut millis: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(Fault::NotDuration);
        }
        let n: u64 = rest[..digits].parse().map_err(|_| Fault::TooLarge)?;
        rest = &rest[digits..];
        rest = &rest[rest.len() - space(rest)..];
        let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = rest[..letters].to_ascii_lowercase();
        rest = &rest[letters..];
        rest = &rest[rest.len() - space(rest)..];
        let per = match (unit.as_str(), (d.unit)(&unit)) {
            ("", _) if d.bare_tail && rest.is_empty() => 1_000,
            ("", _) => return Err(Fault::NeedsUnit(n)),
            (_, Some(per)) => per,
            (_, None) => return Err(Fault::UnknownUnit(unit)),
        };
        millis = n.checked_mul(per).and_then(|v| millis.checked_add(v)).ok_or(Fault::TooLarge)?;
    }
    Ok(millis)
}

const CONFIG: Dialect = Dialect {
    unit: |u| match u {
        "ms" | "msec" | "msecs" | "millisecond" | "milliseconds" => Some(1),
        "s" | "sec" | "secs" | "second" | "seconds" => Some(1_000),
        "m" | "min" | "mins" | "minute" | "minutes" => Some(60_000),
        "h" | "hr" | "hrs" | "hour" | "hours" => Some(3_600_000),
        "d" | "day" | "days" => Some(86_400_000),
        "w" | "week" | "weeks" => Some(604_800_000),
        _ => None,
    },
    spaced: true,
    bare_tail: false,
};

const ZONE: Dialect = Dialect {
    unit: |u| match u {
        "s" => Some(1_000),
        "m" => Some(60_000),
        "h" => Some(3_600_000),
        "d" => Some(86_400_000),
        "w" => Some(604_800_000),
        _ => None,
    },
    spaced: false,
    bare_tail: true,
};

/// Parses a duration as Waypost's config and API write it: plain seconds (`"300"`), or
/// numbers with units run together or spaced: `ms`, `s`, `m`, `h`, `d`, `w` (any case,
/// as BIND reads zone TTLs; long forms such as `min`, `hours` too), e.g. `"10s"`,
/// `"5m"`, `"1h30m"`, `"250ms"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse::<u64>().map(Duration::from_secs).map_err(|_| format!("{text:?} is too large"));
    }
    sum_terms(t, &CONFIG).map(Duration::from_millis).map_err(|f| match f {
        Fault::NotDuration => format!("{text:?} is not a duration (e.g. \"10s\", \"5m\", \"1h30m\")"),
        Fault::TooLarge => format!("{text:?} is too large"),
        Fault::NeedsUnit(n) => format!("{text:?}: {n} needs a unit (ms, s, m, h, d or w)"),
        Fault::UnknownUnit(unit) => format!("{text:?}: unknown unit {unit:?} (use ms, s, m, h, d or w)"),
    })
}

/// Seconds for a zone-file TTL token with units such as `1h30m`; None if the token is not
/// one (or is plain digits, which the caller reads as seconds).
pub fn unit_ttl(tok: &str) -> Option<u32> {
    if tok.bytes().all(|b| b.is_ascii_digit()) || !tok.as_bytes().first()?.is_ascii_digit() {
        return None;
    }
    let millis = sum_terms(tok, &ZONE).ok()?;
    u32::try_from(millis / 1_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_durations_are_seconds_or_units() {
        for (text, want) in [
            ("10s", Duration::from_secs(10)),
            ("5m", Duration::from_secs(300)),
            ("1h30m", Duration::from_secs(5400)),
            ("1h 30m", Duration::from_secs(5400)),
            ("250ms", Duration::from_millis(250)),
            ("2w", Duration::from_secs(1_209_600)),
            ("1D", Duration::from_secs(86_400)),
            ("3min", Duration::from_secs(180)),
            ("300", Duration::from_secs(300)),
            (" 5 m ", Duration::from_secs(300)),
        ] {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
        for bad in ["", "s", "5x", "1h30", "1.5s", "-5s", "99999999999999999999s", "1M2"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_duration("5x").unwrap_err(), "\"5x\": unknown unit \"x\" (use ms, s, m, h, d or w)");
        assert_eq!(parse_duration("1h30").unwrap_err(), "\"1h30\": 30 needs a unit (ms, s, m, h, d or w)");
    }

    #[test]
    fn zone_ttls_are_bind_units() {
        assert_eq!(unit_ttl("1h"), Some(3600));
        assert_eq!(unit_ttl("1h30m"), Some(5400));
        assert_eq!(unit_ttl("2W"), Some(1_209_600));
        assert_eq!(unit_ttl("1h30"), Some(3630), "a last bare number is seconds");
        for none in ["300", "h1", "1x", "99999999w", "1ms", "1h 30m", "1hm", "", "1h-"] {
            assert_eq!(unit_ttl(none), None, "{none:?}");
        }
    }
}
