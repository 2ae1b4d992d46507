//! Authenticated denial of existence in the authority section, for DO queries to a
//! signed zone, built as Knot builds it (`CZ-NIC/knot` `src/knot/nameserver/nsec_proofs.c`,
//! measured in `tests/data/KNOT-BEHAVIOUR.md`):
//!
//! ```text
//!   NXDOMAIN  NSEC: covering QNAME + covering *.<closest encloser>      (RFC 4035 §3.1.3.2)
//!             NSEC3: closest encloser + next closer + *.<encloser>      (RFC 5155 §7.2.2)
//!   NODATA    NSEC: the matching NSEC; an empty non-terminal as NXDOMAIN (§3.1.3.1)
//!             NSEC3: the matching NSEC3 (+ closest encloser proof for a
//!             wildcard or an opt-out delegation)                         (RFC 5155 §7.2.3-5)
//!   wildcard  NSEC: covering QNAME; NSEC3: next closer of QNAME         (§3.1.3.3, §7.2.6)
//!   referral  DS + RRSIG, or the NODATA proof of DS at the cut          (RFC 4035 §3.1.4)
//! ```
//!
//! Every record comes from the zone as loaded (`zones::dnssec` found each one when the
//! zone loaded); the only per-query work is binary searches and, with NSEC3, the hash of
//! the next closer name, which is not a name of the zone. A record already in the section
//! is not written twice (the NXDOMAIN proofs often name one NSEC twice).

use super::resolve::Resolver;
use crate::wire::name::{suffix_offsets, MAX_NAME_LEN};
use crate::wire::query::rtype;
use crate::wire::response::{NoSpace, ResponseWriter, Section};
use crate::zones::dnssec::{Denial, Nsec3Chain, Nsec3Node, NsecChain, NONE};
use crate::zones::{Node, RRset};

/// The name one label longer than `encloser_at` (an offset into `name` where a suffix
/// starts) towards `name`: the "next closer name" of RFC 5155 §1.3.
fn next_closer(name: &[u8], encloser_at: usize) -> Option<&[u8]> {
    let mut prev = None;
    for o in suffix_offsets(name) {
        if o == encloser_at {
            return prev.map(|p| &name[p..]);
        }
        prev = Some(o);
    }
    None
}

impl<'n> Resolver<'n> {
    /// An NSEC or NSEC3 RRset with its RRSIGs in authority, unless it is there already.
    pub(super) fn put_proof(&mut self, w: &mut ResponseWriter<'_, 'n>, owner: &'n [u8], set: &'n RRset) -> Result<(), NoSpace> {
        let set = self.for_client(owner, set);
        if self.proved.iter().any(|p| std::ptr::eq(*p, set)) {
            return Ok(());
        }
        self.put(w, Section::Authority, owner, set, set.ttl)?;
        if !self.proved.is_full() {
            self.proved.push(set);
        }
        Ok(())
    }

    /// `set`, the NSEC/NSEC3 owned by `owner`; at a geo service name, the variant that
    /// states the types of this client's answer there (`Dnssec::service_nsec`), so every
    /// proof that shows the name, NODATA or a covering record, agrees with its answers.
    pub(super) fn for_client(&mut self, owner: &[u8], set: &'n RRset) -> &'n RRset {
        let Some(d) = self.dnssec.filter(|d| !d.service_nsec.is_empty()) else { return set };
        let Some(sn) = d.service_nsec.get(owner) else { return set };
        let shape = self.client_shape(sn.service);
        sn.variants[shape as usize].as_ref().unwrap_or(set)
    }

    /// The NSEC of the node `name` names.
    fn put_nsec_at(&mut self, w: &mut ResponseWriter<'_, 'n>, name: &[u8]) -> Result<(), NoSpace> {
        let Some(node) = self.zone.node(name) else { return Ok(()) };
        let Some(set) = node.rrset(rtype::NSEC) else { return Ok(()) };
        self.put_proof(w, node.name.as_wire(), set)
    }

    /// The NSEC that matches or covers `name`.
    fn put_covering_nsec(&mut self, w: &mut ResponseWriter<'_, 'n>, chain: &'n NsecChain, name: &[u8]) -> Result<(), NoSpace> {
        match chain.covering(name) {
            Some(owner) => self.put_nsec_at(w, owner.as_wire()),
            None => Ok(()),
        }
    }

    fn put_nsec3(&mut self, w: &mut ResponseWriter<'_, 'n>, chain: &'n Nsec3Chain, i: u32) -> Result<(), NoSpace> {
        match chain.record(i) {
            Some(r) => self.put_proof(w, r.owner.as_wire(), &r.rrset),
            None => Ok(()),
        }
    }

    /// The NSEC3 covering the next closer name of `name` below the encloser at `at`.
    fn put_next_closer(&mut self, w: &mut ResponseWriter<'_, 'n>, chain: &'n Nsec3Chain, name: &[u8], at: usize) -> Result<(), NoSpace> {
        let Some(nc) = next_closer(name, at) else { return Ok(()) };
        let h = chain.hash(nc);
        match chain.covering(&h) {
            Some(i) => self.put_nsec3(w, chain, i as u32),
            None => Ok(()),
        }
    }

    /// The closest provable encloser of `name` at or above the suffix at `from`: the
    /// first name with a matching NSEC3 (an opt-out delegation has none). Returns its
    /// offset in `name` and its proofs.
    fn provable_encloser(chain: &Nsec3Chain, name: &[u8], from: usize) -> Option<(usize, Nsec3Node)> {
        suffix_offsets(name).filter(|&o| o >= from).find_map(|o| chain.nodes.get(&name[o..]).filter(|p| p.matching != NONE).map(|p| (o, *p)))
    }

    /// RFC 5155 §7.2.1: the NSEC3 matching the closest provable encloser and the one
    /// covering the next closer name. `from` is where the search for the encloser starts.
    fn put_closest_encloser_proof(&mut self, w: &mut ResponseWriter<'_, 'n>, chain: &'n Nsec3Chain, name: &[u8], from: usize) -> Result<Option<Nsec3Node>, NoSpace> {
        let Some((at, cpe)) = Self::provable_encloser(chain, name, from) else { return Ok(None) };
        self.put_nsec3(w, chain, cpe.matching)?;
        self.put_next_closer(w, chain, name, at)?;
        Ok(Some(cpe))
    }

    /// Offset in `name` of its suffix `encloser` (a name known to be an ancestor).
    fn offset_of(name: &[u8], encloser: &[u8]) -> usize {
        name.len().saturating_sub(encloser.len())
    }

    /// NXDOMAIN for `name`, whose closest encloser is `encloser`.
    pub(super) fn prove_nxdomain(&mut self, w: &mut ResponseWriter<'_, 'n>, name: &'n [u8], encloser: &'n Node) -> Result<(), NoSpace> {
        let Some(d) = self.dnssec else { return Ok(()) };
        match &d.denial {
            Denial::Nsec(chain) => {
                self.put_covering_nsec(w, chain, name)?;
                // No wildcard at the closest encloser could have answered.
                let ce = encloser.name.as_wire();
                if ce.len() + 2 > MAX_NAME_LEN {
                    return Ok(());
                }
                let mut wild = [0u8; MAX_NAME_LEN + 2];
                wild[..2].copy_from_slice(&[1, b'*']);
                wild[2..2 + ce.len()].copy_from_slice(ce);
                let wild = &wild[..2 + ce.len()];
                // An empty non-terminal with a wildcard child (NODATA there): the wildcard
                // exists and proves nothing about the ENT; Knot sends the covering NSEC only.
                if self.zone.node(wild).is_some() {
                    return Ok(());
                }
                self.put_covering_nsec(w, chain, wild)
            }
            Denial::Nsec3(chain) => {
                let from = Self::offset_of(name, encloser.name.as_wire());
                if let Some(cpe) = self.put_closest_encloser_proof(w, chain, name, from)? {
                    self.put_nsec3(w, chain, cpe.wildcard_cover)?;
                }
                Ok(())
            }
            // A name that does not exist is answered as NODATA (resolve.rs).
            Denial::Compact(_) => Ok(()),
        }
    }

    /// NODATA for `name` at `node` (an exact match, an empty non-terminal or a wildcard).
    pub(super) fn prove_nodata(&mut self, w: &mut ResponseWriter<'_, 'n>, name: &'n [u8], node: &'n Node) -> Result<(), NoSpace> {
        let Some(d) = self.dnssec else { return Ok(()) };
        match &d.denial {
            // An empty non-terminal has no NSEC: prove it as a name error would be.
            Denial::Nsec(_) if node.rrsets.is_empty() => self.prove_nxdomain(w, name, node),
            Denial::Nsec(_) => self.put_nsec_at(w, node.name.as_wire()),
            // RFC 9824: the NSEC of the name asked, with the wildcard's types, made now.
            Denial::Compact(_) if node.name.is_wildcard() && !is_wildcard(name) => {
                match self.wildcard_nsec(name, node)? {
                    Some(nsec) => self.put_proof(w, name, nsec),
                    None => Ok(()),
                }
            }
            Denial::Compact(c) if node.rrsets.is_empty() => match c.ents.get_key_value(node.name.as_wire()) {
                Some((owner, set)) => self.put_proof(w, owner.as_wire(), set),
                None => Ok(()),
            },
            Denial::Compact(_) => self.put_nsec_at(w, node.name.as_wire()),
            Denial::Nsec3(chain) => {
                let proof = chain.nodes.get(node.name.as_wire()).copied();
                if let Some(p) = proof.filter(|p| p.matching != NONE) {
                    self.put_nsec3(w, chain, p.matching)?;
                }
                let expanded = node.name.is_wildcard() && !is_wildcard(name);
                let opt_out = node.is_cut && proof.is_none_or(|p| p.matching == NONE);
                if expanded {
                    // The closest encloser is the wildcard's parent.
                    let from = Self::offset_of(name, &node.name.as_wire()[2..]);
                    self.put_closest_encloser_proof(w, chain, name, from)?;
                } else if opt_out {
                    // The delegation has no NSEC3: the encloser is above it.
                    let own = Self::offset_of(name, node.name.as_wire());
                    let from = suffix_offsets(name).find(|&o| o > own).unwrap_or(own);
                    self.put_closest_encloser_proof(w, chain, name, from)?;
                }
                Ok(())
            }
        }
    }

    /// For every wildcard that answered on the way: no closer name exists.
    pub(super) fn prove_wildcards(&mut self, w: &mut ResponseWriter<'_, 'n>) -> Result<(), NoSpace> {
        let Some(d) = self.dnssec else { return Ok(()) };
        for i in 0..self.wildcards.len() {
            let (node, sname) = self.wildcards[i];
            if is_wildcard(sname) {
                continue;
            }
            match &d.denial {
                Denial::Nsec(chain) => self.put_covering_nsec(w, chain, sname)?,
                // The expanded answers were signed as owned by the names asked.
                Denial::Compact(_) => {}
                Denial::Nsec3(chain) => {
                    let parent = &node.name.as_wire()[2..];
                    let from = Self::offset_of(sname, parent);
                    if let Some((at, _)) = Self::provable_encloser(chain, sname, from) {
                        self.put_next_closer(w, chain, sname, at)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// A referral: the DS RRset and its RRSIG, or the proof that the cut has no DS.
    pub(super) fn prove_delegation(&mut self, cut: &'n Node, name: &'n [u8], w: &mut ResponseWriter<'_, 'n>) -> Result<(), NoSpace> {
        match cut.rrset(rtype::DS) {
            Some(ds) => self.put(w, Section::Authority, cut.name.as_wire(), ds, ds.ttl),
            None => {
                let at = Self::offset_of(name, cut.name.as_wire());
                self.prove_nodata(w, &name[at..], cut)
            }
        }
    }
}

fn is_wildcard(name: &[u8]) -> bool {
    name.len() >= 2 && name[0] == 1 && name[1] == b'*'
}

#[cfg(test)]
mod tests {
    use super::next_closer;

    #[test]
    fn the_next_closer_name_is_one_label_below_the_encloser() {
        let name = b"\x01a\x01b\x07example\x00";
        assert_eq!(next_closer(name, 4), Some(&name[2..]));
        assert_eq!(next_closer(name, 2), Some(&name[..]));
        assert_eq!(next_closer(name, 0), None);
    }
}
