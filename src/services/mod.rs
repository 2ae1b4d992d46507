//! Services: names whose A/AAAA answer depends on the client's data-centre order.
//!
//! ```text
//!  control side (per snapshot)              query side (per packet)
//!  config + HealthView ──► build ──► ServiceTable ──► pick: order, qtype, client key
//!                                   (every RRset        └─► a reference to one RRset
//!                                    prebuilt)
//! ```
//!
//! Every answer a service can give is built when the snapshot is built (`build`: per data
//! centre, per `nearest-n` subset, per weighted address), so the query path (`pick`)
//! only chooses a reference: no allocation, no encoding of addresses per query.

mod build;
mod pick;

use std::net::IpAddr;

use rustc_hash::FxHashMap;

use crate::config::geo::{DcIndex, ServiceConfig};
use crate::wire::Name;
use crate::zones::RRset;

pub use pick::client_key;

/// One data centre as one service sees it now.
#[derive(Debug, Default)]
struct DcState {
    /// Configured to serve this service.
    serves: bool,
    /// Not down by checks or overrides, and has an address (or a CNAME) left.
    up: bool,
    /// Per family: up, and not every configured address of that family down (a family
    /// the data centre has no addresses of stays "up", to answer NODATA as configured).
    up_a: bool,
    up_aaaa: bool,
    /// A check deciding it is between up and down.
    wavering: bool,
    /// Seconds until a wavering check could flip.
    next_change: u32,
    /// Healthy addresses, and every address (for serve-all).
    a: Option<RRset>,
    aaaa: Option<RRset>,
    a_all: Option<RRset>,
    aaaa_all: Option<RRset>,
    cname: Option<RRset>,
}

/// One service with its prebuilt answers.
#[derive(Debug)]
pub struct Service {
    pub config: ServiceConfig,
    pub index: u32,
    dc: Vec<DcState>,
    /// `nearest-n`: union of the healthy addresses of each subset of data centres, by bit mask.
    subsets_a: FxHashMap<u64, RRset>,
    subsets_aaaa: FxHashMap<u64, RRset>,
    /// Weighted by address: one single-address RRset per healthy address.
    single: FxHashMap<IpAddr, RRset>,
    fallback_a: Option<RRset>,
    fallback_aaaa: Option<RRset>,
    fallback_cname: Option<RRset>,
    /// Where an unfenced client goes when nothing of its own order is up: the map's
    /// default order, then every data centre (`pick` walks them in turn).
    default_order: Box<[DcIndex]>,
    datacenters: usize,
}

/// What a service answers for one query.
#[derive(Debug, Clone, Copy)]
pub enum Pick<'s> {
    /// The RRset to answer (A or AAAA).
    Records(&'s RRset),
    /// The chosen data centre answers with a CNAME.
    Cname(&'s RRset),
    /// No address of the asked family: NODATA.
    NoData,
}

/// A pick with the TTL to answer with and the data centres it came from (bit mask).
#[derive(Debug, Clone, Copy)]
pub struct Answer<'s> {
    pub pick: Pick<'s>,
    pub ttl: u32,
    pub datacenters: u64,
    /// The client's first choice is not serving.
    pub failed_over: bool,
    /// Nothing the client may use is up: the all-down policy answered.
    pub all_down: bool,
}

impl Service {
    /// Every prebuilt RRset this service can answer with, to sign them (control side).
    pub fn rrsets_mut(&mut self) -> impl Iterator<Item = &mut RRset> {
        let dcs = self.dc.iter_mut().flat_map(|d| [&mut d.a, &mut d.aaaa, &mut d.a_all, &mut d.aaaa_all, &mut d.cname].into_iter().flatten());
        let fallback = [&mut self.fallback_a, &mut self.fallback_aaaa, &mut self.fallback_cname].into_iter().flatten();
        dcs.chain(self.subsets_a.values_mut()).chain(self.subsets_aaaa.values_mut()).chain(self.single.values_mut()).chain(fallback)
    }

    /// What a zone transfer carries for this name: every configured address (or the
    /// CNAME) of the data centre `config.transfer` names, whatever its health, signed
    /// where the zone is signed; nothing when the name is left out of transfers.
    pub fn transfer_rrsets(&self) -> impl Iterator<Item = &RRset> {
        self.config.transfer.and_then(|d| self.dc.get(d as usize)).into_iter().flat_map(|s| [&s.a_all, &s.aaaa_all, &s.cname].into_iter().flatten())
    }

    /// (configured to serve, up now, wavering) for data centre `d`.
    pub fn dc_status(&self, d: DcIndex) -> (bool, bool, bool) {
        self.dc.get(d as usize).map_or((false, false, false), |s| (s.serves, s.up, s.wavering))
    }
}

/// Every service, by name.
#[derive(Debug, Default)]
pub struct ServiceTable {
    pub by_name: FxHashMap<Name, u32>,
    pub services: Vec<Service>,
}

impl ServiceTable {
    pub fn get(&self, index: u32) -> &Service {
        &self.services[index as usize]
    }
}
