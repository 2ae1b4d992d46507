//! Parsing a query packet: the header, the one question, and the OPT record.
//!
//! This is a strict, allocation-free parser for the query path. It reads only what an
//! authoritative server needs and classifies everything else as a reason to answer
//! FORMERR or to drop the packet (RFC 1035 §4.1, RFC 6891 §6.1.1, RFC 7871 §6).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use arrayvec::ArrayVec;

use super::name::{MAX_LABEL_LEN, MAX_NAME_LEN};

pub const HEADER_LEN: usize = 12;

pub mod rtype {
    pub const A: u16 = 1;
    pub const NS: u16 = 2;
    pub const MD: u16 = 3;
    pub const MF: u16 = 4;
    pub const CNAME: u16 = 5;
    pub const SOA: u16 = 6;
    pub const MB: u16 = 7;
    pub const MG: u16 = 8;
    pub const MR: u16 = 9;
    pub const PTR: u16 = 12;
    pub const HINFO: u16 = 13;
    pub const MINFO: u16 = 14;
    pub const MX: u16 = 15;
    pub const TXT: u16 = 16;
    pub const AAAA: u16 = 28;
    pub const SRV: u16 = 33;
    pub const DNAME: u16 = 39;
    pub const OPT: u16 = 41;
    pub const DS: u16 = 43;
    pub const RRSIG: u16 = 46;
    pub const NSEC: u16 = 47;
    pub const NSEC3: u16 = 50;
    pub const TSIG: u16 = 250;
    pub const IXFR: u16 = 251;
    pub const AXFR: u16 = 252;
    pub const MAILB: u16 = 253;
    pub const MAILA: u16 = 254;
    pub const ANY: u16 = 255;
}

pub mod class {
    pub const IN: u16 = 1;
    pub const CH: u16 = 3;
    pub const HS: u16 = 4;
    pub const NONE: u16 = 254;
    pub const ANY: u16 = 255;
}

pub mod opcode {
    pub const QUERY: u8 = 0;
    pub const NOTIFY: u8 = 4;
    pub const UPDATE: u8 = 5;
}

pub mod rcode {
    pub const NOERROR: u16 = 0;
    pub const FORMERR: u16 = 1;
    pub const SERVFAIL: u16 = 2;
    pub const NXDOMAIN: u16 = 3;
    pub const NOTIMP: u16 = 4;
    pub const REFUSED: u16 = 5;
    /// RFC 6672 §2.2: a DNAME substitution would make a name longer than 255 octets.
    pub const YXDOMAIN: u16 = 6;
    pub const NOTAUTH: u16 = 9;
    /// RFC 6891 §6.1.3: extended RCODE 16, carried in the OPT record.
    pub const BADVERS: u16 = 16;
}

/// EDNS option code for Client Subnet (RFC 7871 §6).
pub const OPT_ECS: u16 = 8;
/// EDNS option code for the name server identifier (RFC 5001 §2.3).
pub const OPT_NSID: u16 = 3;
/// EDNS EXPIRE (RFC 7314).
pub const OPT_EXPIRE: u16 = 9;

/// What the parser decided about a packet that is not a well-formed query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// Not worth an answer: too short for a header, or a response (QR=1).
    Drop,
    /// Answer FORMERR; `question_end` is Some when the question itself parsed and may be
    /// echoed; `edns` when the query's OPT record could be read (it is echoed too).
    FormErr { question_end: Option<usize>, edns: Option<Edns> },
    /// Answer NOTIMP with no question: an opcode nobody implements, in a packet whose
    /// question count is not 1 (RFC 8906 §8.1.4: the opcode decides, as Knot answers).
    NotImp { edns: Option<Edns> },
}

/// EDNS Client Subnet option as received (RFC 7871 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSubnet {
    pub family: u16,
    pub source_prefix: u8,
    pub address: IpAddr,
}

/// The OPT pseudo-record of a query (RFC 6891 §6.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edns {
    pub udp_payload: u16,
    pub version: u8,
    pub dnssec_ok: bool,
    pub client_subnet: Option<ClientSubnet>,
    /// The query carried an NSID option: it asks for the name server identifier (RFC 5001 §2.1).
    pub nsid: bool,
    /// The query carried an EXPIRE option (RFC 7314 §2): it asks for the zone's expire timer.
    pub expire: bool,
}

/// A parsed query. `qname_lower` holds the question name lowercased; the client's
/// spelling stays in the packet at `HEADER_LEN..question_end - 4`.
#[derive(Clone)]
pub struct Query {
    pub id: u16,
    pub opcode: u8,
    pub rd: bool,
    pub cd: bool,
    pub qtype: u16,
    pub qclass: u16,
    /// Filled as the name is read; never initialised beyond it.
    qname_lower: ArrayVec<u8, MAX_NAME_LEN>,
    pub question_end: usize,
    pub edns: Option<Edns>,
    /// A TSIG record ends the additional section (RFC 8945): the query is answered by
    /// `transfer`, which checks the signature and signs the answer.
    pub signed: bool,
}

impl Query {
    pub fn qname(&self) -> &[u8] {
        &self.qname_lower
    }
}

impl std::fmt::Debug for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut name = String::new();
        let _ = super::name::write_text(self.qname(), &mut name);
        f.debug_struct("Query")
            .field("id", &self.id)
            .field("qname", &name)
            .field("qtype", &self.qtype)
            .field("qclass", &self.qclass)
            .field("edns", &self.edns)
            .finish()
    }
}

fn u16_at(p: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*p.get(i)?, *p.get(i + 1)?]))
}

/// Parses a query packet.
pub fn parse_query(p: &[u8]) -> Result<Query, Reject> {
    if p.len() < HEADER_LEN {
        return Err(Reject::Drop);
    }
    let flags = u16::from_be_bytes([p[2], p[3]]);
    // RFC 1035 §4.1.1: QR=1 is a response; answering it invites reflection loops.
    if flags & 0x8000 != 0 {
        return Err(Reject::Drop);
    }
    let qdcount = u16::from_be_bytes([p[4], p[5]]);
    let ancount = u16::from_be_bytes([p[6], p[7]]);
    let nscount = u16::from_be_bytes([p[8], p[9]]);
    let arcount = u16::from_be_bytes([p[10], p[11]]);
    let op = ((flags >> 11) & 0xf) as u8;
    let known = matches!(op, opcode::QUERY | opcode::NOTIFY | opcode::UPDATE);
    if qdcount != 1 && !known {
        let edns = if qdcount == 0 { scan_records(p, HEADER_LEN, ancount, nscount, arcount).ok().and_then(|r| r.0) } else { None };
        return Err(Reject::NotImp { edns });
    }
    if qdcount == 0 {
        // No question: still echo the OPT record if the rest of the packet holds one, as Knot does.
        let edns = scan_records(p, HEADER_LEN, ancount, nscount, arcount).ok().and_then(|r| r.0);
        return Err(Reject::FormErr { question_end: None, edns });
    }
    if qdcount != 1 {
        return Err(Reject::FormErr { question_end: None, edns: None });
    }
    let mut q = Query {
        id: u16::from_be_bytes([p[0], p[1]]),
        opcode: op,
        rd: flags & 0x0100 != 0,
        cd: flags & 0x0010 != 0,
        qtype: 0,
        qclass: 0,
        qname_lower: ArrayVec::new(),
        question_end: 0,
        edns: None,
        signed: false,
    };
    // The question name: no compression is possible here (nothing precedes it). Walk the
    // length octets to find its end, then copy and lowercase it in one go: length octets
    // are at most 63, below 'A', so lowercasing leaves them alone.
    let mut i = HEADER_LEN;
    loop {
        let Some(&len) = p.get(i) else { return Err(Reject::FormErr { question_end: None, edns: None }) };
        let len = len as usize;
        if len > MAX_LABEL_LEN || i + len + 1 - HEADER_LEN > MAX_NAME_LEN {
            return Err(Reject::FormErr { question_end: None, edns: None });
        }
        i += len + 1;
        if len == 0 {
            break;
        }
    }
    let Some(name) = p.get(HEADER_LEN..i) else { return Err(Reject::FormErr { question_end: None, edns: None }) };
    // never fails: the name is at most MAX_NAME_LEN octets, checked above.
    if q.qname_lower.try_extend_from_slice(name).is_err() {
        return Err(Reject::FormErr { question_end: None, edns: None });
    }
    q.qname_lower.make_ascii_lowercase();
    let (Some(qtype), Some(qclass)) = (u16_at(p, i), u16_at(p, i + 2)) else {
        return Err(Reject::FormErr { question_end: None, edns: None });
    };
    q.qtype = qtype;
    q.qclass = qclass;
    i += 4;
    q.question_end = i;
    (q.edns, q.signed) = scan_records(p, i, ancount, nscount, arcount)
        .map_err(|()| Reject::FormErr { question_end: Some(q.question_end), edns: None })?;
    Ok(q)
}

/// Walks the answer, authority and additional sections from offset `i`; returns the OPT
/// record's contents and whether a TSIG record is the last one, or Err if the sections
/// are malformed or followed by trailing bytes.
fn scan_records(p: &[u8], mut i: usize, ancount: u16, nscount: u16, arcount: u16) -> Result<(Option<Edns>, bool), ()> {
    for _ in 0..(ancount as u32 + nscount as u32) {
        i = skip_record(p, i).ok_or(())?.0;
    }
    let mut edns = None;
    let mut signed = false;
    for _ in 0..arcount {
        let (next, rtype, type_at) = skip_record(p, i).ok_or(())?;
        // RFC 8945 §5.1: a TSIG anywhere but last is FORMERR (checked again when verified).
        signed = rtype == rtype::TSIG;
        if rtype == rtype::OPT {
            // RFC 6891 §6.1.1: "If a query message with more than one OPT RR is
            // received, a FORMERR (RCODE=1) MUST be returned." A non-root owner is
            // tolerated, as Knot does.
            if edns.is_some() {
                return Err(());
            }
            edns = Some(parse_opt(p, type_at, next).ok_or(())?);
        }
        i = next;
    }
    if i != p.len() {
        // Trailing bytes after the last counted record.
        return Err(());
    }
    Ok((edns, signed))
}

/// Skips one resource record; returns (offset after it, its type, offset of its TYPE field).
pub fn skip_record(p: &[u8], mut i: usize) -> Option<(usize, u16, usize)> {
    let start = i;
    // Owner: labels ending in a zero byte or a pointer. The pointer is not followed: we
    // only need to know where the name ends, so a loop cannot trap us.
    let mut total = 0usize;
    loop {
        let len = *p.get(i)?;
        match len & 0xc0 {
            0x00 => {
                i += 1 + len as usize;
                total += 1 + len as usize;
                if total > MAX_NAME_LEN {
                    return None;
                }
                if len == 0 {
                    break;
                }
            }
            0xc0 => {
                let ptr = u16::from_be_bytes([len, *p.get(i + 1)?]) as usize & 0x3fff;
                // A pointer must point backwards into the packet (RFC 1035 §4.1.4 "prior occurrence").
                if ptr >= start {
                    return None;
                }
                i += 2;
                break;
            }
            _ => return None,
        }
    }
    let rtype = u16_at(p, i)?;
    let rdlen = u16_at(p, i + 8)? as usize;
    let end = i + 10 + rdlen;
    if end > p.len() {
        return None;
    }
    Some((end, rtype, i))
}

/// Parses OPT fields; `i` points at the TYPE field, `end` after RDATA.
fn parse_opt(p: &[u8], i: usize, end: usize) -> Option<Edns> {
    let udp_payload = u16_at(p, i + 2)?;
    let version = *p.get(i + 5)?;
    let flags = u16_at(p, i + 6)?;
    let mut edns = Edns { udp_payload, version, dnssec_ok: flags & 0x8000 != 0, client_subnet: None, nsid: false, expire: false };
    let mut o = i + 10;
    while o < end {
        let code = u16_at(p, o)?;
        let len = u16_at(p, o + 2)? as usize;
        let data = p.get(o + 4..o + 4 + len)?;
        if o + 4 + len > end {
            return None;
        }
        // RFC 5001 §2.1: the requester sends an empty NSID option; its payload is ignored.
        edns.nsid |= code == OPT_NSID;
        edns.expire |= code == OPT_EXPIRE;
        if code == OPT_ECS {
            // RFC 7871 §7.1.1: a malformed option is answered with FORMERR; so is a second one.
            if edns.client_subnet.is_some() {
                return None;
            }
            edns.client_subnet = Some(parse_client_subnet(data)?);
        }
        o += 4 + len;
    }
    (o == end).then_some(edns)
}

/// RFC 7871 §6 option data: FAMILY, SOURCE PREFIX-LENGTH, SCOPE PREFIX-LENGTH, ADDRESS.
pub fn parse_client_subnet(d: &[u8]) -> Option<ClientSubnet> {
    if d.len() < 4 {
        return None;
    }
    let family = u16::from_be_bytes([d[0], d[1]]);
    let source_prefix = d[2];
    let scope_prefix = d[3];
    let addr = &d[4..];
    let max_prefix = match family {
        1 => 32,
        2 => 128,
        _ => return None,
    };
    // §6: "SCOPE PREFIX-LENGTH … In queries, it MUST be set to 0."
    if source_prefix > max_prefix || scope_prefix != 0 {
        return None;
    }
    // §6: ADDRESS "MUST be truncated to the number of bits indicated by the SOURCE
    // PREFIX-LENGTH field, padding with 0 bits to pad to the end of the last octet";
    // §7.1.1: non-zero bits beyond the prefix are FORMERR.
    let octets = (source_prefix as usize).div_ceil(8);
    if addr.len() != octets {
        return None;
    }
    if source_prefix % 8 != 0 {
        let mask = 0xffu8 >> (source_prefix % 8);
        if addr[octets - 1] & mask != 0 {
            return None;
        }
    }
    let address = if family == 1 {
        let mut b = [0u8; 4];
        b[..octets].copy_from_slice(addr);
        IpAddr::V4(Ipv4Addr::from(b))
    } else {
        let mut b = [0u8; 16];
        b[..octets].copy_from_slice(addr);
        IpAddr::V6(Ipv6Addr::from(b))
    };
    Some(ClientSubnet { family, source_prefix, address })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &[u8], qtype: u16, extra: &[u8], arcount: u16) -> Vec<u8> {
        let mut p = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0];
        p.extend_from_slice(&arcount.to_be_bytes());
        p.extend_from_slice(name);
        p.extend_from_slice(&qtype.to_be_bytes());
        p.extend_from_slice(&1u16.to_be_bytes());
        p.extend_from_slice(extra);
        p
    }

    const OPT: &[u8] = &[0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0];

    #[test]
    fn an_unknown_opcode_without_one_question_is_notimp_and_a_query_without_one_is_formerr() {
        // RFC 8906 §8.1.4: `dig +opcode=15 +header-only` expects NOTIMP (as knotd answers).
        let header = |op: u8, qd: u8| [0x12, 0x34, op << 3, 0, 0, qd, 0, 0, 0, 0, 0, 0];
        assert!(matches!(parse_query(&header(15, 0)), Err(Reject::NotImp { edns: None })));
        assert!(matches!(parse_query(&header(2, 2)), Err(Reject::NotImp { edns: None })));
        assert!(matches!(parse_query(&header(0, 0)), Err(Reject::FormErr { question_end: None, .. })));
        assert!(matches!(parse_query(&header(4, 0)), Err(Reject::FormErr { question_end: None, .. })));
    }

    #[test]
    fn parses_a_plain_query_and_lowercases_the_name() {
        let q = parse_query(&query(b"\x03WwW\x07example\x03com\x00", 1, &[], 0)).unwrap();
        assert_eq!(q.qname(), b"\x03www\x07example\x03com\x00");
        assert_eq!((q.id, q.qtype, q.qclass, q.rd), (0x1234, 1, 1, true));
        assert!(q.edns.is_none());
    }

    #[test]
    fn parses_edns_and_rejects_two_opts() {
        let q = parse_query(&query(b"\x00", 6, OPT, 1)).unwrap();
        let e = q.edns.unwrap();
        assert_eq!((e.udp_payload, e.version, e.dnssec_ok), (1232, 0, true));
        let two = [OPT, OPT].concat();
        assert!(matches!(parse_query(&query(b"\x00", 6, &two, 2)), Err(Reject::FormErr { question_end: Some(_), .. })));
    }

    #[test]
    fn drops_short_packets_and_responses() {
        for len in 0..12 {
            assert_eq!(parse_query(&vec![0u8; len]).unwrap_err(), Reject::Drop);
        }
        let mut p = query(b"\x00", 1, &[], 0);
        p[2] |= 0x80;
        assert_eq!(parse_query(&p).unwrap_err(), Reject::Drop);
    }

    #[test]
    fn rejects_bad_questions() {
        // compression pointer in the question, truncated name, label > 63, trailing garbage
        assert!(parse_query(&query(b"\xc0\x0c", 1, &[], 0)).is_err());
        assert!(parse_query(&query(b"\x05ab", 1, &[], 0)[..15]).is_err());
        let mut long = vec![64u8];
        long.extend_from_slice(&[b'a'; 64]);
        long.push(0);
        assert!(parse_query(&query(&long, 1, &[], 0)).is_err());
        assert!(parse_query(&query(b"\x00", 1, &[1, 2, 3], 0)).is_err());
    }

    #[test]
    fn client_subnet_must_be_well_formed() {
        let ok = parse_client_subnet(&[0, 1, 24, 0, 192, 0, 2]).unwrap();
        assert_eq!(ok.address, "192.0.2.0".parse::<IpAddr>().unwrap());
        assert!(parse_client_subnet(&[0, 1, 24, 0, 192, 0, 2, 1]).is_none()); // too long
        assert!(parse_client_subnet(&[0, 1, 23, 0, 192, 0, 3]).is_none()); // bits past prefix
        assert!(parse_client_subnet(&[0, 1, 24, 8, 192, 0, 2]).is_none()); // scope set
        assert!(parse_client_subnet(&[0, 3, 0, 0]).is_none()); // family
        assert!(parse_client_subnet(&[0, 1, 33, 0, 1, 2, 3, 4, 5]).is_none());
        assert_eq!(parse_client_subnet(&[0, 2, 0, 0]).unwrap().source_prefix, 0);
    }
}
