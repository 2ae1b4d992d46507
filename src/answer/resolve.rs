//! RFC 1034 §4.3.2 inside one zone: exact match, zone cuts, CNAME chains,
//! wildcards (RFC 4592) and negative answers (RFC 2308).

use std::cell::OnceCell;
use std::net::IpAddr;

use arrayvec::ArrayVec;

use crate::geo::Client;
use crate::services::{client_key, Pick};
use crate::snapshot::Snapshot;
use crate::wire::name::{suffix_offsets, MAX_NAME_LEN};
use crate::wire::query::{rcode, rtype, Query};
use crate::wire::response::{NoSpace, ResponseWriter, Section};
use crate::zones::load::rdata_target;
use crate::zones::dnssec::{Compact, Denial, Dnssec};
use super::compact::{self, OverBudget};
use super::Transport;
use crate::zones::{Node, RRset, Zone};

/// Longest CNAME chain followed inside a zone before the answer stops (loop guard).
pub const MAX_CNAME_CHAIN: usize = 16;

/// Most labels a name can have (255 octets / 2).
const MAX_LABELS: usize = 128;

/// Most names whose addresses go to the additional section.
const MAX_ADDITIONAL_TARGETS: usize = 32;

/// Where a lookup of one name inside the zone ended.
enum Found<'z> {
    /// The name exists (possibly an empty non-terminal).
    Exact(&'z Node),
    /// The name does not exist, but the wildcard at its closest encloser does.
    Wildcard(&'z Node),
    /// The name is at or below a zone cut (and not a DS query at the cut).
    Referral(&'z Node),
    /// The name is below a DNAME owner (RFC 6672 §2.3): substitute and go on.
    Dname(&'z Node, &'z RRset),
    /// The name does not exist and no wildcard covers it; the node is its closest
    /// encloser (RFC 5155 §1.3), for denial proofs.
    NxDomain(&'z Node),
}

/// Finds `name` (lowercased wire) in `zone`, walking down from the apex so that a zone
/// cut above the name is seen before anything below it (RFC 1034 §4.3.2 step 3).
fn lookup<'z>(zone: &'z Zone, name: &[u8], qtype: u16) -> Found<'z> {
    let mut offs: ArrayVec<usize, { MAX_LABELS + 1 }> = ArrayVec::new();
    for o in suffix_offsets(name) {
        // never panics: a valid name has at most MAX_LABELS labels plus the root.
        offs.push(o);
    }
    let n = offs.len();
    let apex_labels = zone.apex.label_count();
    let name_labels = n - 1;
    // The closest encloser so far; None stands for the apex, looked up only if needed.
    let mut encloser: Option<&Node> = None;
    // depth = number of labels below the apex: offs[name_labels - apex_labels - depth]
    let below = name_labels - apex_labels;
    if zone.has_dname && below > 0 {
        if let Some(d) = zone.apex_node().rrset(rtype::DNAME) {
            return Found::Dname(zone.apex_node(), d);
        }
    }
    for depth in 1..=below {
        let suffix = &name[offs[below - depth]..];
        match zone.node(suffix) {
            Some(node) => {
                if node.is_cut && !(depth == below && qtype == rtype::DS) {
                    return Found::Referral(node);
                }
                if zone.has_dname && depth < below {
                    if let Some(d) = node.rrset(rtype::DNAME) {
                        return Found::Dname(node, d);
                    }
                }
                encloser = Some(node);
            }
            None => {
                // RFC 4592 §3.3.1: the wildcard is looked for only at the closest encloser.
                let ce = encloser.map_or(zone.apex.as_wire(), |e| e.name.as_wire());
                let mut wild = [0u8; MAX_NAME_LEN + 2];
                wild[0] = 1;
                wild[1] = b'*';
                wild[2..2 + ce.len()].copy_from_slice(ce);
                return match zone.node(&wild[..2 + ce.len()]) {
                    Some(w) => Found::Wildcard(w),
                    None => Found::NxDomain(encloser.unwrap_or_else(|| zone.apex_node())),
                };
            }
        }
    }
    Found::Exact(encloser.unwrap_or_else(|| zone.apex_node()))
}

/// What [`resolve`] decided besides the sections it wrote.
pub struct Resolved {
    pub rcode: u16,
    /// The ECS scope, when the answer depended on the client's address.
    pub scope: Option<u8>,
    /// The geo service that answered.
    pub service: Option<u32>,
    /// The answer depended on this thread's signing budget (compact denial): not cached.
    pub volatile: bool,
}

/// Answers `q` from `zone`, writing into `w`.
/// `synth` keeps the CNAMEs that DNAME substitution makes, and the records compact denial
/// signs, for as long as the response.
pub fn resolve<'n>(
    snap: &'n Snapshot,
    zone: &'n Zone,
    q: &'n Query,
    source: IpAddr,
    transport: Transport,
    synth: &'n Synthesized,
    w: &mut ResponseWriter<'_, 'n>,
) -> Resolved {
    // RFC 4035 §3.1: DNSSEC records only for a query with DO, from a signed zone.
    let dnssec = zone.dnssec.as_deref().filter(|_| q.edns.is_some_and(|e| e.dnssec_ok));
    let compact = dnssec.and_then(|d| match &d.denial {
        Denial::Compact(c) => Some(c),
        _ => None,
    });
    let mut r = Resolver {
        snap,
        zone,
        q,
        source,
        synth,
        scope: None,
        service: None,
        targets: ArrayVec::new(),
        rcode: rcode::NOERROR,
        dnssec,
        wildcards: ArrayVec::new(),
        proved: ArrayVec::new(),
        transport,
        compact,
        over_budget: false,
        shape: None,
    };
    let start = w.mark();
    match r.run(w) {
        Ok(()) => {}
        // The signing budget is spent (compact.rs): nothing of the answer is sent; over
        // UDP TC=1 sends the resolver to TCP, over TCP the answer is SERVFAIL.
        Err(NoSpace) if r.over_budget => {
            w.rollback(start);
            w.clear_aa();
            match transport {
                Transport::Udp => w.set_tc(),
                Transport::Tcp => r.rcode = rcode::SERVFAIL,
            }
        }
        // An RRset of the answer did not fit (RFC 2181 §9): it is left out whole, what
        // was written before it stays, and TC tells the client to retry over TCP.
        Err(NoSpace) => w.set_tc(),
    }
    Resolved { rcode: r.rcode, scope: r.scope, service: r.service, volatile: r.over_budget }
}

pub(super) struct Resolver<'n> {
    snap: &'n Snapshot,
    pub(super) zone: &'n Zone,
    pub(super) q: &'n Query,
    /// The packet's source address (the client when there is no ECS).
    source: IpAddr,
    synth: &'n Synthesized,
    /// ECS scope of a client-dependent answer.
    scope: Option<u8>,
    /// The service that answered.
    service: Option<u32>,
    /// Names whose A/AAAA go to the additional section (RFC 1034 §4.3.2 step 6).
    targets: ArrayVec<&'n [u8], MAX_ADDITIONAL_TARGETS>,
    /// The RCODE decided so far (kept when the response is truncated).
    rcode: u16,
    /// The zone's DNSSEC data, when the query has DO and the zone is signed.
    pub(super) dnssec: Option<&'n Dnssec>,
    /// Wildcards expanded on the way, with the name each answered (RFC 4035 §3.1.3.3).
    pub(super) wildcards: ArrayVec<(&'n Node, &'n [u8]), 4>,
    /// NSEC/NSEC3 RRsets already in the response (Knot's CHECKDUP: an NSEC answered
    /// for a type NSEC query is not repeated as a proof).
    pub(super) proved: ArrayVec<&'n RRset, 8>,
    transport: Transport,
    /// Compact denial (RFC 9824), when the query has DO and the zone uses it.
    pub(super) compact: Option<&'n Compact>,
    /// A signature was needed past the thread's budget (compact.rs).
    over_budget: bool,
    /// (service, shape) of the service whose answers this client sees, once asked.
    shape: Option<(u32, u8)>,
}

/// Query types for which a CNAME at the name is not followed: the CNAME itself, ANY,
/// and the DNSSEC types that live beside a CNAME (RFC 4035 §2.5).
fn follows_cname(qtype: u16) -> bool {
    !matches!(qtype, rtype::CNAME | rtype::ANY | rtype::RRSIG | rtype::NSEC)
}

/// What answering at a geo service name left to do.
enum AtService<'n> {
    /// The answer (or NODATA) is written.
    Done,
    /// The client's answer is this CNAME (with its TTL): follow it.
    Follow((&'n RRset, u32)),
    /// Answer from the node's own data, as for any name.
    Node,
}

/// How the walk down a CNAME chain ended: what the additional section still needs.
enum End<'n> {
    /// A referral at this cut: its glue.
    Referral(&'n Node),
    /// An answer RRset: the addresses of the targets `note_targets` kept.
    Answer,
    /// Nothing more (a negative answer, a truncated referral, the end of a chain).
    Done,
}

impl<'n> Resolver<'n> {
    /// The answer and authority sections, then, on every path, the proofs for the
    /// wildcards the chain went through (RFC 4035 §3.1.3.3: also when a wildcard CNAME
    /// leads out of the zone, into a delegation or to a service), then additional.
    fn run(&mut self, w: &mut ResponseWriter<'_, 'n>) -> Result<(), NoSpace> {
        let end = self.walk(w)?;
        self.prove_wildcards(w)?;
        match end {
            End::Referral(cut) => self.glue(cut, w),
            End::Answer => self.additional(w),
            End::Done => {}
        }
        Ok(())
    }

    fn walk(&mut self, w: &mut ResponseWriter<'_, 'n>) -> Result<End<'n>, NoSpace> {
        let q = self.q;
        let zone = self.zone;
        let mut owner: &'n [u8] = q.qname();
        let mut chain: ArrayVec<&[u8], { MAX_CNAME_CHAIN + 1 }> = ArrayVec::new();
        loop {
            let node = match lookup(zone, owner, q.qtype) {
                Found::Referral(cut) => {
                    // AA is decided by the first name: set when a CNAME chain led here
                    // (RFC 1034 §4.3.2 step 3b: the referral goes to authority).
                    return Ok(if self.referral(cut, owner, w) { End::Referral(cut) } else { End::Done });
                }
                Found::NxDomain(_) if self.compact.is_some() => {
                    // RFC 9824 §3.1: the name "exists" with no data: NOERROR, and its NSEC
                    // (RRSIG NSEC NXNAME) in authority, or in answer to a type NSEC query.
                    w.set_aa();
                    let Some(nsec) = self.compact_nsec(owner, None)? else {
                        // No NSEC could be made (the key failed to sign): nothing to prove with.
                        self.rcode = rcode::SERVFAIL;
                        return Ok(End::Done);
                    };
                    if q.qtype == rtype::NSEC {
                        self.put(w, Section::Answer, owner, nsec, nsec.ttl)?;
                    } else {
                        self.negative(w)?;
                        self.put_proof(w, owner, nsec)?;
                    }
                    return Ok(End::Done);
                }
                Found::NxDomain(encloser) => {
                    w.set_aa();
                    // RFC 6604 §2.1: the RCODE reflects the last name in the chain.
                    self.rcode = rcode::NXDOMAIN;
                    self.negative(w)?;
                    self.prove_nxdomain(w, owner, encloser)?;
                    return Ok(End::Done);
                }
                Found::Dname(node, dname) => {
                    // RFC 6672 §3.1: the DNAME, then a CNAME from the name to the name with
                    // the DNAME owner replaced by its target, with the DNAME's TTL.
                    w.set_aa();
                    // The DNAME is signed; the CNAME made from it is not (RFC 6672 §5.3.1).
                    self.put(w, Section::Answer, node.name.as_wire(), dname, dname.ttl)?;
                    let Some(target) = dname.rdatas.first() else { return Ok(End::Done) };
                    let prefix = &owner[..owner.len() - node.name.as_wire().len()];
                    if prefix.len() + target.len() > MAX_NAME_LEN {
                        // §2.2: the substituted name would be too long.
                        self.rcode = rcode::YXDOMAIN;
                        return Ok(End::Done);
                    }
                    let Some(cname) = self.synth.cname(prefix, target, dname.ttl) else { return Ok(End::Done) };
                    w.put_rrset(Section::Answer, owner, cname)?;
                    chain.push(owner);
                    let new = &cname.rdatas[0][..];
                    // Followed unless the query asked for the CNAME itself (ANY follows it, as
                    // Knot does), or it leaves the zone, loops or is too long.
                    if q.qtype == rtype::CNAME || !is_below(new, zone.apex.as_wire()) || chain.contains(&new) || chain.len() >= MAX_CNAME_CHAIN {
                        return Ok(End::Done);
                    }
                    owner = new;
                    continue;
                }
                Found::Exact(node) => node,
                Found::Wildcard(node) => {
                    if !self.wildcards.iter().any(|(n, _)| std::ptr::eq(*n, node)) && !self.wildcards.is_full() {
                        self.wildcards.push((node, owner));
                    }
                    node
                }
            };
            w.set_aa();
            let service_cname = match node.service {
                Some(si) => match self.service_answer(si, owner, node, w)? {
                    AtService::Done => return Ok(End::Done),
                    AtService::Follow(cname) => Some(cname),
                    AtService::Node => None,
                },
                None => None,
            };
            if let Some((cname, ttl)) = service_cname.or_else(|| node.cname().filter(|_| follows_cname(q.qtype)).map(|c| (c, c.ttl))) {
                self.put_answer(w, owner, node, cname, ttl)?;
                chain.push(owner);
                let Some(target) = rdata_target(rtype::CNAME, &cname.rdatas[0]) else { return Ok(End::Done) };
                // Out of zone, a loop, or too long: the answer ends with this CNAME.
                if !is_below(target, zone.apex.as_wire()) || chain.contains(&target) || chain.len() >= MAX_CNAME_CHAIN {
                    return Ok(End::Done);
                }
                owner = target;
                continue;
            }
            let set = match q.qtype {
                // RFC 8482 §4.1: "select one or a larger subset of the available RRsets".
                // One RRset, the lowest type, over UDP and TCP alike (as Knot does).
                rtype::ANY => node.rrsets.first(),
                // Knot answers type RRSIG with the signatures of the name's first signed
                // RRset only (RFC 4035 §3.1.5 leaves it open), with that RRset's TTL.
                rtype::RRSIG if zone.dnssec.is_some() => node.rrsets.iter().find_map(|s| s.sigs.as_deref()),
                _ => node.rrset(q.qtype),
            };
            return match set {
                Some(set) if set.rtype == rtype::RRSIG => {
                    w.put_rrsigs(Section::Answer, owner, set)?;
                    Ok(End::Done)
                }
                Some(set) => {
                    let set = if set.rtype == rtype::NSEC { self.for_client(owner, set) } else { set };
                    self.put_answer(w, owner, node, set, set.ttl)?;
                    if set.rtype == rtype::NSEC && !self.proved.is_full() {
                        self.proved.push(set);
                    }
                    self.note_targets(set);
                    Ok(End::Answer)
                }
                // NODATA (RFC 2308 §2.2), also for empty non-terminals and wildcard NODATA.
                None => {
                    self.negative(w)?;
                    self.prove_nodata(w, owner, node)?;
                    Ok(End::Done)
                }
            };
        }
    }

    /// Answers at a geo service name: the client's data-centre order, without the data
    /// centres that are down, picks prebuilt records. To the client the name is what its
    /// pick is: a CNAME (answered for type CNAME, else followed), or its addresses (A and
    /// AAAA answered; any other type from the zone's own data at the name, or NODATA
    /// proved by the NSEC/NSEC3 that states the client's shape, `put_proof`).
    fn service_answer(&mut self, si: u32, owner: &'n [u8], node: &'n Node, w: &mut ResponseWriter<'_, 'n>) -> Result<AtService<'n>, NoSpace> {
        let asked = self.q.qtype;
        // RFC 4035 §2.5: these live beside a CNAME; the zone's own (or the variant NSEC).
        if matches!(asked, rtype::RRSIG | rtype::NSEC) {
            return Ok(AtService::Node);
        }
        let svc = self.snap.services.get(si);
        let (order, key) = self.client_order(si);
        self.service = Some(si);
        let address = matches!(asked, rtype::A | rtype::AAAA);
        // ANY and the other types see the name as an A query does (the CNAME, if any).
        let ans = svc.answer(&order, if asked == rtype::AAAA { rtype::AAAA } else { rtype::A }, key);
        match ans.pick {
            Pick::Cname(set) if asked == rtype::CNAME => {
                self.put(w, Section::Answer, owner, set, ans.ttl)?;
                Ok(AtService::Done)
            }
            Pick::Cname(set) => Ok(AtService::Follow((set, ans.ttl))),
            _ if !address && asked != rtype::ANY => Ok(AtService::Node),
            Pick::Records(set) => {
                self.put(w, Section::Answer, owner, set, ans.ttl)?;
                Ok(AtService::Done)
            }
            Pick::NoData => {
                self.negative(w)?;
                self.prove_nodata(w, owner, node)?;
                Ok(AtService::Done)
            }
        }
    }

    /// The client's data-centre order for service `si` and its key for weighted choices;
    /// the answer now depends on the client's address (its ECS scope is set).
    fn client_order(&mut self, si: u32) -> (crate::geo::Order, u64) {
        let snap = self.snap;
        let svc = snap.services.get(si);
        let client = match self.q.edns.and_then(|e| e.client_subnet) {
            Some(cs) => Client { addr: cs.address, source_prefix: Some(cs.source_prefix) },
            None => Client { addr: self.source, source_prefix: None },
        };
        let decision = snap.geo.decide(client, svc.mode(&snap.geo.config));
        self.scope = Some(self.scope.map_or(decision.scope, |s| s.max(decision.scope)));
        (decision.order, client_key(client, si))
    }

    /// The [`shape`](crate::zones::dnssec::shape) of service `si`'s answers to this
    /// client (kept for the rest of the response).
    pub(super) fn client_shape(&mut self, si: u32) -> u8 {
        if let Some((_, shape)) = self.shape.filter(|(s, _)| *s == si) {
            return shape;
        }
        let (order, key) = self.client_order(si);
        let shape = self.snap.services.get(si).shape(&order, key);
        self.shape = Some((si, shape));
        shape
    }

    /// SOA in authority with TTL = min(SOA TTL, SOA MINIMUM) (RFC 2308 §3). Unsigned, it
    /// is optional for TC purposes: it always fits in practice, and is left out if not.
    /// With DNSSEC it and its RRSIG are required (RFC 4035 §3.1.3): TC when they do not fit.
    fn negative(&mut self, w: &mut ResponseWriter<'_, 'n>) -> Result<(), NoSpace> {
        let zone = self.zone;
        let put = self.put(w, Section::Authority, zone.apex.as_wire(), zone.soa(), zone.negative_ttl);
        if self.dnssec.is_some() {
            put
        } else {
            Ok(())
        }
    }

    /// Writes an RRset, and with DNSSEC the RRSIGs that cover it right after it, with the
    /// same owner (for a wildcard answer: the name asked, with the wildcard's signatures,
    /// RFC 4035 §3.1.3.3). In answer and authority both fit or neither is written; in
    /// additional the signatures are optional (RFC 4035 §3.1.1).
    pub(super) fn put(&mut self, w: &mut ResponseWriter<'_, 'n>, section: Section, owner: &'n [u8], set: &'n RRset, ttl: u32) -> Result<(), NoSpace> {
        let sigs = self.dnssec.and(set.sigs.as_deref());
        Self::put_signed(w, section, owner, set, sigs, ttl)
    }

    /// `set` and then `sigs` (when there are any), both or neither in answer and authority.
    fn put_signed(w: &mut ResponseWriter<'_, 'n>, section: Section, owner: &'n [u8], set: &'n RRset, sigs: Option<&'n RRset>, ttl: u32) -> Result<(), NoSpace> {
        let Some(sigs) = sigs else { return w.put_rrset_with_ttl(section, owner, set, ttl) };
        let mark = w.mark();
        w.put_rrset_with_ttl(section, owner, set, ttl)?;
        // With the TTL its RRset is written with (an SOA in a negative answer: the
        // negative TTL), as Knot does.
        if w.put_rrset_with_ttl(section, owner, sigs, ttl).is_err() && section != Section::Additional {
            w.rollback(mark);
            return Err(NoSpace);
        }
        Ok(())
    }

    /// An answer RRset of `node` for `owner`. A wildcard's, under compact denial, is signed
    /// as owned by `owner` (RFC 9824 §3.4: no proof of the next closer name then), and its
    /// NSEC is made for `owner`; otherwise [`Self::put`].
    fn put_answer(&mut self, w: &mut ResponseWriter<'_, 'n>, owner: &'n [u8], node: &'n Node, set: &'n RRset, ttl: u32) -> Result<(), NoSpace> {
        let expanded = node.name.is_wildcard() && !node.name.as_wire().eq(owner);
        let Some(c) = self.compact.filter(|_| expanded) else { return self.put(w, Section::Answer, owner, set, ttl) };
        if set.rtype == rtype::NSEC {
            return match self.wildcard_nsec(owner, node)? {
                Some(nsec) => self.put(w, Section::Answer, owner, nsec, nsec.ttl),
                None => Ok(()),
            };
        }
        let sigs = match compact::rrsig(c, owner, set, self.transport, self.snap.settings.compact_signing_rate) {
            Ok(s) => s.and_then(|s| self.synth.keep(s)),
            Err(OverBudget) => return self.budget_spent(),
        };
        Self::put_signed(w, Section::Answer, owner, set, sigs, ttl)
    }

    /// The compact NSEC of `owner`, a name the wildcard `node` answers: the wildcard's
    /// types (its own NSEC's bitmap), made now or earlier by this thread.
    pub(super) fn wildcard_nsec(&mut self, owner: &[u8], node: &'n Node) -> Result<Option<&'n RRset>, NoSpace> {
        let bitmap = node.rrset(rtype::NSEC).and_then(|s| s.rdatas.first()).and_then(|rd| compact::bitmap_of(rd));
        self.compact_nsec(owner, Some(bitmap.unwrap_or_default()))
    }

    /// The compact NSEC of `owner` (a name that does not exist: `bitmap` None; an
    /// expanded wildcard: its types), signed now or earlier by this thread, kept for the
    /// response. None when no signature could be made.
    pub(super) fn compact_nsec(&mut self, owner: &[u8], bitmap: Option<&[u8]>) -> Result<Option<&'n RRset>, NoSpace> {
        let Some(c) = self.compact else { return Ok(None) };
        match compact::nsec(c, owner, bitmap, self.transport, self.snap.settings.compact_signing_rate) {
            Ok(set) => Ok(set.and_then(|s| self.synth.keep(s))),
            Err(OverBudget) => self.budget_spent().map(|_| None),
        }
    }

    fn budget_spent(&mut self) -> Result<(), NoSpace> {
        self.over_budget = true;
        Err(NoSpace)
    }

    /// A referral's authority section: NS of the cut and its DS (or the proof there is
    /// none), AA as decided so far; false when it did not fit (TC is set). Its glue
    /// follows the wildcard proofs (`glue`).
    fn referral(&mut self, cut: &'n Node, name: &'n [u8], w: &mut ResponseWriter<'_, 'n>) -> bool {
        // never panics: a node is a cut because it has NS records.
        let ns: &'n RRset = cut.rrset(rtype::NS).expect("cut has NS");
        // The delegation's NS RRset is not signed (RFC 4035 §2.2: only authoritative data is).
        if w.put_rrset(Section::Authority, cut.name.as_wire(), ns).is_err() {
            w.set_tc();
            return false;
        }
        // RFC 4035 §3.1.4: the DS RRset, or the proof that there is none, in authority.
        if self.dnssec.is_some() && self.prove_delegation(cut, name, w).is_err() {
            w.set_tc();
            return false;
        }
        true
    }

    /// A referral's glue in additional. RFC 9471 §3: in-domain glue MUST be included, and
    /// TC set when it does not fit; sibling glue is included when it fits. In-domain
    /// targets come first.
    fn glue(&mut self, cut: &'n Node, w: &mut ResponseWriter<'_, 'n>) {
        // never panics: a node is a cut because it has NS records.
        let ns: &'n RRset = cut.rrset(rtype::NS).expect("cut has NS");
        let cut_name = cut.name.as_wire();
        for in_domain in [true, false] {
            for rd in &ns.rdatas {
                let Some(target) = rdata_target(rtype::NS, rd) else { continue };
                if is_below(target, cut_name) != in_domain {
                    continue;
                }
                let Some(node) = self.zone.node(target) else { continue };
                for t in [rtype::A, rtype::AAAA] {
                    let Some(set) = node.rrset(t) else { continue };
                    // Glue below the cut has no RRSIGs; sibling glue (authoritative data) does.
                    if self.put(w, Section::Additional, node.name.as_wire(), set, set.ttl).is_err() {
                        if in_domain {
                            w.set_tc();
                        }
                        // Whatever follows is left out too, as Knot does.
                        return;
                    }
                }
            }
        }
    }

    fn note_targets(&mut self, set: &'n RRset) {
        if !matches!(set.rtype, rtype::NS | rtype::MX | rtype::SRV) {
            return;
        }
        for rd in &set.rdatas {
            if let Some(t) = rdata_target(set.rtype, rd) {
                if !self.targets.is_full() && !self.targets.contains(&t) {
                    self.targets.push(t);
                }
            }
        }
    }

    /// Addresses of in-zone NS/MX/SRV targets, including targets a wildcard covers
    /// (owner = the target). Optional: the first RRset that does not fit ends the section.
    fn additional(&mut self, w: &mut ResponseWriter<'_, 'n>) {
        let zone = self.zone;
        for i in 0..self.targets.len() {
            let t = self.targets[i];
            if t.len() <= 1 || !is_below(t, zone.apex.as_wire()) {
                continue;
            }
            let (owner, node): (&'n [u8], &'n Node) = match zone.node(t) {
                Some(node) => (node.name.as_wire(), node),
                None => match lookup(zone, t, rtype::A) {
                    Found::Wildcard(w) => (t, w),
                    _ => continue,
                },
            };
            for rt in [rtype::A, rtype::AAAA] {
                if let Some(set) = node.rrset(rt) {
                    if self.put(w, Section::Additional, owner, set, set.ttl).is_err() {
                        return;
                    }
                }
            }
        }
    }
}

fn is_below(name: &[u8], ancestor: &[u8]) -> bool {
    crate::wire::name::is_suffix(name, ancestor)
}

/// CNAME RRsets made by DNAME substitution while answering one query, and the records
/// compact denial signed for it. They must live as long as the response (the writer
/// compresses against their names), so they are kept here; the CNAMEs allocated only when
/// a DNAME is met.
#[derive(Debug, Default)]
pub struct Synthesized {
    cells: OnceCell<Box<[OnceCell<RRset>]>>,
    signed: [OnceCell<std::sync::Arc<RRset>>; 8],
}

impl Synthesized {
    /// Keeps `set` for the response; None when this query already keeps as many as fit.
    fn keep(&self, set: std::sync::Arc<RRset>) -> Option<&RRset> {
        let cell = self.signed.iter().find(|c| c.get().is_none())?;
        Some(&**cell.get_or_init(|| set))
    }

    /// A CNAME to `prefix` + `target` (both lowercased wire); None once MAX_CNAME_CHAIN
    /// have been made for this query.
    fn cname(&self, prefix: &[u8], target: &[u8], ttl: u32) -> Option<&RRset> {
        let cells = self.cells.get_or_init(|| (0..MAX_CNAME_CHAIN).map(|_| OnceCell::new()).collect());
        let cell = cells.iter().find(|c| c.get().is_none())?;
        let name: Box<[u8]> = [prefix, target].concat().into_boxed_slice();
        Some(cell.get_or_init(|| RRset::new(rtype::CNAME, ttl, vec![name])))
    }
}
