//! Making RRSIGs (RFC 4034 §3.1.8.1, RFC 4035 §2.2) over RRsets in canonical form.

use ring::rand::SystemRandom;

use super::keys::Key;
use crate::wire::name::{label_count, name_len};
use crate::wire::query::{class, rtype};

/// A signature validity window, as RRSIG writes it (RFC 4034 §3.1.5: 32-bit serials).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window {
    pub inception: u32,
    pub expiration: u32,
}

/// The RDATA in canonical form (RFC 4034 §6.2, as corrected by RFC 6840 §5.1): the
/// domain names of the listed types lowercased. Names are stored lowercase for the
/// types answers compare (NS, CNAME, PTR, DNAME, MX, SRV, SOA); this covers the rest.
pub fn canonical_rdata(rt: u16, rdata: &[u8]) -> Vec<u8> {
    let mut out = rdata.to_vec();
    let lower = |buf: &mut [u8], at: usize| -> Option<usize> {
        let n = name_len_checked(buf.get(at..)?)?;
        buf[at..at + n].make_ascii_lowercase();
        Some(at + n)
    };
    // RP 17, AFSDB 18, RT 21, PX 26, KX 36, NAPTR 35, MINFO 14, MB/MG/MR/MD/MF.
    match rt {
        rtype::NS | rtype::CNAME | rtype::PTR | rtype::DNAME | rtype::MB | rtype::MG | rtype::MR | rtype::MD | rtype::MF => {
            lower(&mut out, 0);
        }
        rtype::MX | 18 | 21 | 36 => {
            lower(&mut out, 2);
        }
        rtype::SRV => {
            lower(&mut out, 6);
        }
        rtype::SOA | rtype::MINFO | 17 => {
            if let Some(n) = lower(&mut out, 0) {
                lower(&mut out, n);
            }
        }
        26 => {
            if let Some(n) = lower(&mut out, 2) {
                lower(&mut out, n);
            }
        }
        35 => {
            // ORDER PREFERENCE FLAGS SERVICES REGEXP REPLACEMENT
            let mut at = 4;
            for _ in 0..3 {
                at += 1 + *out.get(at).unwrap_or(&0) as usize;
            }
            lower(&mut out, at);
        }
        _ => {}
    }
    out
}

fn name_len_checked(wire: &[u8]) -> Option<usize> {
    let mut i = 0;
    loop {
        let l = *wire.get(i)? as usize;
        if l > 63 {
            return None;
        }
        i += l + 1;
        if l == 0 {
            return Some(i);
        }
    }
}

/// RRSIG Labels field: the owner's labels, not counting the root or a leading `*`
/// (RFC 4034 §3.1.3).
fn labels(owner: &[u8]) -> u8 {
    let n = label_count(owner);
    let wild = owner.len() >= 2 && owner[0] == 1 && owner[1] == b'*';
    (n - usize::from(wild)) as u8
}

/// The RRSIG RDATA for the RRset `owner`/`rt` with `ttl` and `rdatas`, by `key` (whose
/// zone is the signer's name). `owner` is lowercase wire, as every owner here is.
pub fn sign_rrset(owner: &[u8], rt: u16, ttl: u32, rdatas: &[Box<[u8]>], key: &Key, window: Window, rng: &SystemRandom) -> Option<Box<[u8]>> {
    let signer = key.zone.as_wire();
    let mut rdata = Vec::with_capacity(18 + signer.len() + 64);
    rdata.extend_from_slice(&rt.to_be_bytes());
    rdata.push(key.algorithm);
    rdata.push(labels(owner));
    rdata.extend_from_slice(&ttl.to_be_bytes());
    rdata.extend_from_slice(&window.expiration.to_be_bytes());
    rdata.extend_from_slice(&window.inception.to_be_bytes());
    rdata.extend_from_slice(&key.tag.to_be_bytes());
    rdata.extend_from_slice(signer);
    // RFC 4034 §3.1.8.1: signature = sign(RRSIG_RDATA | RR(1) | RR(2)...), each RR in
    // canonical form, RRs in canonical order (§6.3).
    let mut canon: Vec<Vec<u8>> = rdatas.iter().map(|rd| canonical_rdata(rt, rd)).collect();
    canon.sort();
    canon.dedup();
    let mut data = rdata.clone();
    for rd in &canon {
        data.extend_from_slice(owner);
        data.extend_from_slice(&rt.to_be_bytes());
        data.extend_from_slice(&class::IN.to_be_bytes());
        data.extend_from_slice(&ttl.to_be_bytes());
        data.extend_from_slice(&(rd.len() as u16).to_be_bytes());
        data.extend_from_slice(rd);
    }
    let sig = key.signer.sign(&data, rng)?;
    rdata.extend_from_slice(&sig);
    Some(rdata.into_boxed_slice())
}

/// RFC 4034 §4.1.2 type bitmap for `types` (any order).
pub fn type_bitmap(types: &[u16]) -> Vec<u8> {
    let mut t: Vec<u16> = types.to_vec();
    t.sort_unstable();
    t.dedup();
    let mut out = Vec::new();
    let mut i = 0;
    while i < t.len() {
        let window = (t[i] >> 8) as u8;
        let mut bits = [0u8; 32];
        let mut len = 0;
        while i < t.len() && (t[i] >> 8) as u8 == window {
            let low = (t[i] & 0xff) as usize;
            bits[low / 8] |= 0x80 >> (low % 8);
            len = len.max(low / 8 + 1);
            i += 1;
        }
        out.push(window);
        out.push(len as u8);
        out.extend_from_slice(&bits[..len]);
    }
    out
}

/// Length of the uncompressed name at the start of valid wire (re-export for chains).
pub fn owner_len(wire: &[u8]) -> usize {
    name_len(wire)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmaps_follow_rfc_4034_section_4_1_2() {
        // RFC 4034 §4.3's example: A MX RRSIG NSEC TYPE1234.
        let mut want = vec![0x00, 0x06, 0x40, 0x01, 0x00, 0x00, 0x00, 0x03, 0x04, 0x1b];
        want.extend_from_slice(&[0; 26]);
        want.push(0x20);
        assert_eq!(type_bitmap(&[1, 15, 46, 47, 1234]), want);
    }

    #[test]
    fn labels_leave_out_a_wildcard() {
        assert_eq!(labels(b"\x01*\x07example\x00"), 1);
        assert_eq!(labels(b"\x03www\x07example\x00"), 2);
        assert_eq!(labels(b"\x00"), 0);
    }

    #[test]
    fn canonical_rdata_lowercases_names_of_the_listed_types_only() {
        assert_eq!(canonical_rdata(17, b"\x01A\x00\x01B\x00"), b"\x01a\x00\x01b\x00");
        assert_eq!(canonical_rdata(rtype::TXT, b"\x01A"), b"\x01A");
        let naptr = b"\x00\x01\x00\x02\x01U\x01S\x00\x03WWW\x00".to_vec();
        assert!(canonical_rdata(35, &naptr).ends_with(b"\x03www\x00"));
        assert!(canonical_rdata(35, &naptr).starts_with(b"\x00\x01\x00\x02\x01U\x01S"), "text fields keep their case");
    }
}
