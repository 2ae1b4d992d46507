//! EDNS TCP keepalive (RFC 7828) on TCP answers: when a query over TCP carries the
//! `edns-tcp-keepalive` option, its answer carries the option back with the
//! connection's idle timeout.
//!
//! RFC 7828 §3.2.2: servers may include the option in responses over TCP, giving the
//! idle timeout currently associated with the connection; never over UDP (the UDP path
//! never calls this). Applied to an answer `answer::answer_packet` already wrote: its
//! OPT record is always the last record (`ResponseWriter::finish`), so the option is
//! appended to the message and the OPT RDLENGTH grows by 6. Never panics on any input.

use std::time::Duration;

use crate::wire::query::{rtype, HEADER_LEN};

/// EDNS option code of edns-tcp-keepalive (RFC 7828 §3.1).
pub const OPT_TCP_KEEPALIVE: u16 = 11;

/// The option's TIMEOUT for `idle`: RFC 7828 §3.1, "an idle timeout value for the TCP
/// connection, specified in units of 100 milliseconds", at most 65535 (about 1.8 hours).
pub fn timeout_units(idle: Duration) -> u16 {
    (idle.as_millis() / 100).min(u16::MAX as u128) as u16
}

fn u16_at(p: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*p.get(i)?, *p.get(i + 1)?]))
}

/// Offset after the (possibly compressed) name at `i`; pointers are not followed.
fn skip_name(p: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let len = *p.get(i)? as usize;
        match len & 0xc0 {
            0x00 if len == 0 => return Some(i + 1),
            0x00 => i += 1 + len,
            0xc0 => return Some(i + 2),
            _ => return None,
        }
    }
}

/// Offset after the resource record at `i`, its type and the offset of its RDATA.
fn skip_record(p: &[u8], i: usize) -> Option<(usize, u16, usize)> {
    let t = skip_name(p, i)?;
    let rtype = u16_at(p, t)?;
    let rdata = t + 10;
    let end = rdata + u16_at(p, t + 8)? as usize;
    (end <= p.len()).then_some((end, rtype, rdata))
}

/// The OPT record of `msg`: (offset of its RDATA, offset after it). None when there is
/// none or the message does not parse.
fn find_opt(msg: &[u8]) -> Option<(usize, usize)> {
    let qd = u16_at(msg, 4)?;
    let records = u16_at(msg, 6)? as usize + u16_at(msg, 8)? as usize + u16_at(msg, 10)? as usize;
    let mut i = HEADER_LEN;
    for _ in 0..qd {
        i = skip_name(msg, i)? + 4;
    }
    for _ in 0..records {
        let (end, t, rdata) = skip_record(msg, i)?;
        if t == rtype::OPT {
            return Some((rdata, end));
        }
        i = end;
    }
    None
}

/// Whether `query` carries an edns-tcp-keepalive option. RFC 7828 §3.2.1 says a client
/// sends it empty; one with a TIMEOUT is still taken as the request it is.
pub fn requested(query: &[u8]) -> bool {
    // Most queries without EDNS stop here: no additional records.
    if query.len() < HEADER_LEN || query[10] == 0 && query[11] == 0 {
        return false;
    }
    let Some((mut o, end)) = find_opt(query) else { return false };
    while o + 4 <= end {
        let (Some(code), Some(len)) = (u16_at(query, o), u16_at(query, o + 2)) else { return false };
        if code == OPT_TCP_KEEPALIVE {
            return true;
        }
        o += 4 + len as usize;
    }
    false
}

/// Appends the option with `timeout` (in 100 ms units) to the OPT record of `answer`.
/// Leaves the answer alone (and returns false) when it has no OPT record, the OPT
/// record is not last, or the answer would outgrow a TCP message.
pub fn append(answer: &mut Vec<u8>, timeout: u16) -> bool {
    let Some((rdata, end)) = find_opt(answer) else { return false };
    if end != answer.len() || answer.len() + 6 > u16::MAX as usize {
        return false;
    }
    let rdlen = (end - rdata + 6) as u16;
    answer[rdata - 2..rdata].copy_from_slice(&rdlen.to_be_bytes());
    answer.extend_from_slice(&OPT_TCP_KEEPALIVE.to_be_bytes());
    answer.extend_from_slice(&2u16.to_be_bytes());
    answer.extend_from_slice(&timeout.to_be_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query for `a.` A with an OPT record holding `options`.
    fn query(options: &[u8]) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1, b'a', 0, 0, 1, 0, 1];
        q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0]);
        q.extend_from_slice(&(options.len() as u16).to_be_bytes());
        q.extend_from_slice(options);
        q
    }

    #[test]
    fn the_option_is_found_among_others_and_only_when_present() {
        assert!(requested(&query(&[0, 11, 0, 0])));
        assert!(requested(&query(&[0, 3, 0, 0, 0, 11, 0, 0])), "after NSID");
        assert!(!requested(&query(&[0, 3, 0, 0])), "NSID only");
        assert!(!requested(&query(&[])));
        let mut plain = query(&[]);
        plain.truncate(19);
        plain[11] = 0;
        assert!(!requested(&plain), "no EDNS");
        assert!(!requested(&query(&[0, 3, 0, 9, 0, 11, 0, 0])), "an option running past the record");
        for cut in 0..query(&[0, 11, 0, 0]).len() {
            let _ = requested(&query(&[0, 11, 0, 0])[..cut]);
        }
    }

    #[test]
    fn the_timeout_goes_into_the_last_opt_record() {
        // An answer with one A record (compressed owner) and an OPT record with NSID "x".
        let mut a = vec![0x12, 0x34, 0x84, 0, 0, 1, 0, 1, 0, 0, 0, 1, 1, b'a', 0, 0, 1, 0, 1];
        a.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
        a.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 5, 0, 3, 0, 1, b'x']);
        let before = a.clone();
        assert!(append(&mut a, timeout_units(Duration::from_secs(10))));
        assert_eq!(a.len(), before.len() + 6);
        assert_eq!(&a[a.len() - 6..], &[0, 11, 0, 2, 0, 100]);
        assert_eq!(&a[before.len() - 7..before.len() - 5], &[0, 11], "RDLENGTH 5 + 6");
        let m = hickory_proto::op::Message::from_vec(&a).unwrap();
        assert_eq!(m.answers.len(), 1);
        // Without OPT nothing changes.
        let mut no_opt = before[..before.len() - 16].to_vec();
        no_opt[11] = 0;
        let copy = no_opt.clone();
        assert!(!append(&mut no_opt, 100));
        assert_eq!(no_opt, copy);
    }

    #[test]
    fn units_are_tenths_of_seconds_capped() {
        assert_eq!(timeout_units(Duration::from_millis(400)), 4);
        assert_eq!(timeout_units(Duration::from_secs(10)), 100);
        assert_eq!(timeout_units(Duration::from_secs(100_000)), u16::MAX);
    }
}
