//! Writing a response: header, the client's question, RRsets with name compression,
//! and the OPT record.
//!
//! RRsets are written whole or not at all (RFC 2181 §9: "the whole RRSet … or none of
//! it"), so truncation never leaves a partial RRset. The OPT record's space is reserved
//! up front so that it always fits (RFC 6891 §7).

use arrayvec::ArrayVec;

use super::name::suffix_offsets;
use super::query::{rtype, ClientSubnet, HEADER_LEN, OPT_ECS, OPT_EXPIRE, OPT_NSID};

/// Compression table capacity; names past it are written uncompressed.
const MAX_COMPRESSION_ENTRIES: usize = 64;

/// Which section an RRset goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Answer,
    Authority,
    Additional,
}

/// Where the response stood, to roll back to (see [`ResponseWriter::mark`]).
#[derive(Clone, Copy, Debug)]
pub struct Mark {
    len: usize,
    names: usize,
    counts: [u16; 3],
}

/// The response did not have room for an RRset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoSpace;

/// An RRset as the writer needs it: type, TTL and each RDATA in uncompressed wire form.
pub trait RecordData {
    fn rtype(&self) -> u16;
    fn ttl(&self) -> u32;
    fn rdatas(&self) -> &[Box<[u8]>];
}

/// Compression targets of one response: lowercased name suffixes and their offsets.
/// Not initialised up front (a response usually needs a handful of entries).
pub type Compression<'n> = ArrayVec<(&'n [u8], u16), MAX_COMPRESSION_ENTRIES>;

/// A response being written into a caller-provided buffer.
pub struct ResponseWriter<'a, 'n> {
    buf: &'a mut Vec<u8>,
    /// Size the response may not exceed, not counting the reserved OPT record.
    limit: usize,
    counts: [u16; 3],
    /// Compression targets: a lowercased name suffix and its offset in `buf`.
    /// Compression targets: a lowercased name suffix and its offset in `buf`. Owned by
    /// the caller (a local of the answering function) so the writer stays small to move.
    names: &'a mut Compression<'n>,
    /// Most compression targets kept (see [`ResponseWriter::limit_compression`]).
    max_names: usize,
}

/// How the response's OPT record is written (RFC 6891 §6.1.2).
#[derive(Clone, Copy, Debug)]
pub struct OptOut<'a> {
    pub udp_payload: u16,
    /// Extended RCODE upper 8 bits.
    pub ext_rcode: u8,
    pub dnssec_ok: bool,
    /// Echo of the client subnet option, with the scope prefix the answer used (RFC 7871 §7.2.1).
    pub client_subnet: Option<(ClientSubnet, u8)>,
    /// Extended DNS Error info-code (RFC 8914), e.g. 20 "Not Authoritative".
    pub extended_error: Option<u16>,
    /// Name server identifier, when the query asked for it and one is configured (RFC 5001).
    pub nsid: Option<&'a [u8]>,
    /// The zone's expire timer in seconds, when the query asked for it (RFC 7314).
    pub expire: Option<u32>,
}

/// EDNS option code for Extended DNS Errors (RFC 8914 §2).
pub const OPT_EDE: u16 = 15;

impl OptOut<'_> {
    pub fn wire_len(&self) -> usize {
        11 + self.client_subnet.map_or(0, |(cs, _)| 8 + (cs.source_prefix as usize).div_ceil(8))
            + self.extended_error.map_or(0, |_| 6)
            + self.nsid.map_or(0, |n| 4 + n.len())
            + self.expire.map_or(0, |_| 8)
    }
}

impl<'a, 'n> ResponseWriter<'a, 'n> {
    /// Starts a response: copies the query's ID and question, sets flags.
    /// `qname_lower` must be the lowercased question name; it seeds compression so that
    /// answers point at the client's own spelling (as Knot does).
    /// `names` is the compression table's storage, emptied here.
    pub fn start(
        buf: &'a mut Vec<u8>,
        names: &'a mut Compression<'n>,
        query: &[u8],
        question_end: usize,
        qname_lower: &'n [u8],
        limit: usize,
        reserve: usize,
    ) -> Self {
        buf.clear();
        names.clear();
        buf.extend_from_slice(&query[..question_end]);
        // QR=1; keep OPCODE and RD; clear AA, TC, RA, Z, AD, RCODE, and CD too
        // (RFC 4035 §3.1.6: an authoritative answer "SHOULD clear the CD bit"; Knot does).
        buf[2] = 0x80 | (query[2] & 0x79);
        buf[3] = 0;
        let qd: u16 = if question_end > HEADER_LEN { 1 } else { 0 };
        buf[4..6].copy_from_slice(&qd.to_be_bytes());
        buf[6..12].fill(0);
        let mut w = ResponseWriter {
            buf,
            limit: limit.saturating_sub(reserve),
            counts: [0; 3],
            names,
            max_names: MAX_COMPRESSION_ENTRIES,
        };
        if qd == 1 && !qname_lower.is_empty() {
            w.remember(qname_lower, HEADER_LEN);
        }
        w
    }

    /// Keeps at most `n` compression targets (from the question on). A zone transfer
    /// writes thousands of names per message: past the first few (the apex and its
    /// suffixes) every target costs a comparison per name written, for little gain.
    pub fn limit_compression(&mut self, n: usize) {
        self.max_names = n.min(MAX_COMPRESSION_ENTRIES);
    }

    /// Reserves `n` more bytes at the end (for an OPT option decided after start).
    pub fn reserve_more(&mut self, n: usize) {
        self.limit = self.limit.saturating_sub(n);
    }

    pub fn set_aa(&mut self) {
        self.buf[2] |= 0x04;
    }

    pub fn clear_aa(&mut self) {
        self.buf[2] &= !0x04;
    }

    pub fn set_tc(&mut self) {
        self.buf[2] |= 0x02;
    }

    pub fn is_tc(&self) -> bool {
        self.buf[2] & 0x02 != 0
    }

    /// Sets the low 4 bits of RCODE in the header.
    pub fn set_rcode(&mut self, rcode: u16) {
        self.buf[3] = (self.buf[3] & 0xf0) | (rcode & 0xf) as u8;
    }

    pub fn count(&self, section: Section) -> u16 {
        self.counts[section as usize]
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Drops every record written so far (for a TC response that carries no records).
    pub fn clear_records(&mut self, question_end: usize) {
        self.buf.truncate(question_end);
        self.counts = [0; 3];
        self.names.truncate(1);
    }

    fn remember(&mut self, name: &'n [u8], offset: usize) {
        for off in suffix_offsets(name) {
            let suffix = &name[off..];
            if suffix.len() <= 1 || offset + off > 0x3fff || self.names.len() >= self.max_names {
                break;
            }
            self.names.push((suffix, (offset + off) as u16));
        }
    }

    fn find(&self, suffix: &[u8]) -> Option<u16> {
        self.names.iter().find(|(s, _)| *s == suffix).map(|&(_, o)| o)
    }

    /// Writes a name with compression against earlier names.
    fn put_name(&mut self, name: &'n [u8]) {
        let start = self.buf.len();
        for off in suffix_offsets(name) {
            let suffix = &name[off..];
            if suffix.len() == 1 {
                self.buf.extend_from_slice(&name[..off + 1]);
                break;
            }
            if let Some(ptr) = self.find(suffix) {
                self.buf.extend_from_slice(&name[..off]);
                self.buf.extend_from_slice(&(0xc000 | ptr).to_be_bytes());
                break;
            }
        }
        // Remember the labels written literally (they precede any pointer).
        self.remember_prefix(name, start);
    }

    fn remember_prefix(&mut self, name: &'n [u8], start: usize) {
        // Every suffix whose first label was written literally at start+off.
        let written = self.buf.len() - start;
        for off in suffix_offsets(name) {
            let suffix = &name[off..];
            if suffix.len() <= 1 || off >= written || start + off > 0x3fff || self.names.len() >= self.max_names {
                break;
            }
            // Stop at the point where a pointer took over (that suffix is already known).
            if self.buf[start + off] & 0xc0 == 0xc0 {
                break;
            }
            if self.find(suffix).is_none() {
                self.names.push((suffix, (start + off) as u16));
            }
        }
    }

    /// A point to roll back to.
    pub fn mark(&self) -> Mark {
        Mark { len: self.buf.len(), names: self.names.len(), counts: self.counts }
    }

    /// Undoes everything written after `m` (an RRset whose RRSIG did not fit goes too).
    pub fn rollback(&mut self, m: Mark) {
        self.buf.truncate(m.len);
        self.names.truncate(m.names);
        self.counts = m.counts;
    }

    /// Writes a whole RRset with `owner` (lowercased wire) or rolls back and returns NoSpace.
    /// `owner` may be the question name, in which case it compresses to the client's spelling.
    pub fn put_rrset<R: RecordData + ?Sized>(&mut self, section: Section, owner: &'n [u8], rrset: &'n R) -> Result<(), NoSpace> {
        self.put_rrset_with_ttl(section, owner, rrset, rrset.ttl())
    }

    pub fn put_rrset_with_ttl<R: RecordData + ?Sized>(
        &mut self,
        section: Section,
        owner: &'n [u8],
        rrset: &'n R,
        ttl: u32,
    ) -> Result<(), NoSpace> {
        self.put_rrset_each(section, owner, rrset, |_| ttl)
    }

    /// A name's RRSIG records as one RRset, each with its Original TTL (RFC 4034 §3.1.4):
    /// the signatures of a name cover RRsets with different TTLs (ANY and type RRSIG
    /// answers, as Knot writes them).
    pub fn put_rrsigs<R: RecordData + ?Sized>(&mut self, section: Section, owner: &'n [u8], rrset: &'n R) -> Result<(), NoSpace> {
        let fallback = rrset.ttl();
        self.put_rrset_each(section, owner, rrset, |rd| rd.get(4..8).map_or(fallback, |t| u32::from_be_bytes([t[0], t[1], t[2], t[3]])))
    }

    fn put_rrset_each<R: RecordData + ?Sized>(&mut self, section: Section, owner: &'n [u8], rrset: &'n R, ttl_of: impl Fn(&[u8]) -> u32) -> Result<(), NoSpace> {
        let mark = (self.buf.len(), self.names.len());
        let rt = rrset.rtype();
        for rdata in rrset.rdatas() {
            let ttl = ttl_of(rdata);
            self.put_name(owner);
            self.buf.extend_from_slice(&rt.to_be_bytes());
            self.buf.extend_from_slice(&1u16.to_be_bytes());
            self.buf.extend_from_slice(&ttl.to_be_bytes());
            let len_at = self.buf.len();
            self.buf.extend_from_slice(&[0, 0]);
            self.put_rdata(rt, rdata);
            let rdlen = (self.buf.len() - len_at - 2) as u16;
            self.buf[len_at..len_at + 2].copy_from_slice(&rdlen.to_be_bytes());
            if self.buf.len() > self.limit {
                self.buf.truncate(mark.0);
                self.names.truncate(mark.1);
                return Err(NoSpace);
            }
        }
        self.counts[section as usize] += rrset.rdatas().len() as u16;
        Ok(())
    }

    /// RDATA with embedded names compressed where RFC 3597 §4 allows it: only the
    /// RFC 1035 types (NS, CNAME, SOA, PTR, MX and the obsolete mail types).
    fn put_rdata(&mut self, rt: u16, rdata: &'n [u8]) {
        use super::name::name_len;
        match rt {
            rtype::NS | rtype::CNAME | rtype::PTR | rtype::MD | rtype::MF | rtype::MB | rtype::MG | rtype::MR => {
                self.put_name(rdata);
            }
            rtype::MX => {
                self.buf.extend_from_slice(&rdata[..2]);
                self.put_name(&rdata[2..]);
            }
            rtype::SOA | rtype::MINFO => {
                let first = name_len(rdata);
                self.put_name(&rdata[..first]);
                let second = first + name_len(&rdata[first..]);
                self.put_name(&rdata[first..second]);
                self.buf.extend_from_slice(&rdata[second..]);
            }
            _ => self.buf.extend_from_slice(rdata),
        }
    }

    /// Writes one record of any class with its RDATA as is (no names inside to compress),
    /// or rolls back and returns NoSpace.
    pub fn put_record(&mut self, section: Section, owner: &'n [u8], rt: u16, class: u16, ttl: u32, rdata: &[u8]) -> Result<(), NoSpace> {
        let mark = (self.buf.len(), self.names.len());
        self.put_name(owner);
        self.buf.extend_from_slice(&rt.to_be_bytes());
        self.buf.extend_from_slice(&class.to_be_bytes());
        self.buf.extend_from_slice(&ttl.to_be_bytes());
        self.buf.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        self.buf.extend_from_slice(rdata);
        if self.buf.len() > self.limit {
            self.buf.truncate(mark.0);
            self.names.truncate(mark.1);
            return Err(NoSpace);
        }
        self.counts[section as usize] += 1;
        Ok(())
    }

    /// Writes the OPT record (space was reserved at start) and the section counts.
    pub fn finish(self, opt: Option<&OptOut>) {
        let mut counts = self.counts;
        if let Some(opt) = opt {
            self.buf.push(0); // root owner
            self.buf.extend_from_slice(&rtype::OPT.to_be_bytes());
            self.buf.extend_from_slice(&opt.udp_payload.to_be_bytes());
            self.buf.push(opt.ext_rcode);
            self.buf.push(0); // version
            self.buf.extend_from_slice(&(if opt.dnssec_ok { 0x8000u16 } else { 0 }).to_be_bytes());
            let rdlen = opt.wire_len() - 11;
            self.buf.extend_from_slice(&(rdlen as u16).to_be_bytes());
            if let Some(id) = opt.nsid {
                self.buf.extend_from_slice(&OPT_NSID.to_be_bytes());
                self.buf.extend_from_slice(&(id.len() as u16).to_be_bytes());
                self.buf.extend_from_slice(id);
            }
            if let Some(expire) = opt.expire {
                self.buf.extend_from_slice(&OPT_EXPIRE.to_be_bytes());
                self.buf.extend_from_slice(&4u16.to_be_bytes());
                self.buf.extend_from_slice(&expire.to_be_bytes());
            }
            if let Some(code) = opt.extended_error {
                self.buf.extend_from_slice(&OPT_EDE.to_be_bytes());
                self.buf.extend_from_slice(&2u16.to_be_bytes());
                self.buf.extend_from_slice(&code.to_be_bytes());
            }
            if let Some((cs, scope)) = opt.client_subnet {
                let octets = (cs.source_prefix as usize).div_ceil(8);
                self.buf.extend_from_slice(&OPT_ECS.to_be_bytes());
                self.buf.extend_from_slice(&((4 + octets) as u16).to_be_bytes());
                self.buf.extend_from_slice(&cs.family.to_be_bytes());
                self.buf.push(cs.source_prefix);
                self.buf.push(scope.min(cs.source_prefix));
                match cs.address {
                    std::net::IpAddr::V4(a) => self.buf.extend_from_slice(&a.octets()[..octets]),
                    std::net::IpAddr::V6(a) => self.buf.extend_from_slice(&a.octets()[..octets]),
                }
            }
            counts[2] += 1;
        }
        self.buf[6..8].copy_from_slice(&counts[0].to_be_bytes());
        self.buf[8..10].copy_from_slice(&counts[1].to_be_bytes());
        self.buf[10..12].copy_from_slice(&counts[2].to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Set(u16, u32, Vec<Box<[u8]>>);
    impl RecordData for Set {
        fn rtype(&self) -> u16 {
            self.0
        }
        fn ttl(&self) -> u32 {
            self.1
        }
        fn rdatas(&self) -> &[Box<[u8]>] {
            &self.2
        }
    }

    fn query() -> Vec<u8> {
        let mut p = vec![0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        p.extend_from_slice(b"\x03WWW\x07example\x03com\x00\x00\x01\x00\x01");
        p
    }

    #[test]
    fn answer_owner_points_at_the_question() {
        let q = query();
        let qname = b"\x03www\x07example\x03com\x00";
        let a = Set(1, 300, vec![Box::new([192, 0, 2, 1])]);
        let mut buf = Vec::new();
        let mut names = Compression::new();
        let mut w = ResponseWriter::start(&mut buf, &mut names, &q, q.len(), qname, 512, 0);
        w.set_aa();
        w.put_rrset(Section::Answer, qname, &a).unwrap();
        w.finish(None);
        assert_eq!(&buf[..4], &[0xab, 0xcd, 0x85, 0x00]);
        assert_eq!(&buf[6..8], &[0, 1]);
        assert_eq!(&buf[q.len()..q.len() + 2], &[0xc0, 0x0c]);
        assert_eq!(buf.len(), q.len() + 16);
    }

    #[test]
    fn rdata_names_compress_against_earlier_names() {
        let q = query();
        let qname: &[u8] = b"\x03www\x07example\x03com\x00";
        let target: Box<[u8]> = b"\x04mail\x07example\x03com\x00".to_vec().into_boxed_slice();
        let mut mx = vec![0, 10];
        mx.extend_from_slice(&target);
        let set = Set(rtype::MX, 60, vec![mx.into_boxed_slice()]);
        let mut buf = Vec::new();
        let mut names = Compression::new();
        let mut w = ResponseWriter::start(&mut buf, &mut names, &q, q.len(), qname, 512, 0);
        w.put_rrset(Section::Answer, qname, &set).unwrap();
        w.finish(None);
        // rdata: preference, "mail", pointer to "example.com" at offset 16
        let rd = &buf[q.len() + 12..];
        assert_eq!(rd, &[0, 10, 4, b'm', b'a', b'i', b'l', 0xc0, 16]);
    }

    #[test]
    fn an_rrset_that_does_not_fit_is_rolled_back() {
        let q = query();
        let qname: &[u8] = b"\x03www\x07example\x03com\x00";
        let many = Set(1, 1, (0..40).map(|i| vec![10, 0, 0, i as u8].into_boxed_slice()).collect());
        let mut buf = Vec::new();
        let mut names = Compression::new();
        let mut w = ResponseWriter::start(&mut buf, &mut names, &q, q.len(), qname, 512, 11);
        assert_eq!(w.put_rrset(Section::Answer, qname, &many), Err(NoSpace));
        assert_eq!(w.len(), q.len());
        assert_eq!(w.count(Section::Answer), 0);
    }
}
