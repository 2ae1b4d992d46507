//! Counting on the query path: one atomic add per response (TCP) or a few per batch
//! (UDP, through a worker's [`Tally`]). No lock and no allocation per response once a
//! counter exists; only an RCODE Waypost never sends gets its series, under the family's
//! lock, the first time it is counted.

use prometheus_client::metrics::counter::Counter;

use super::{Metrics, Proto, QueryLabels, RCODE_NAMES};

impl Metrics {
    /// The counter of (proto, rcode): one atomic load once it exists (always, for the
    /// RCODEs Waypost sends).
    #[inline]
    fn response_counter(&self, proto: &Proto, rcode: usize) -> &Counter {
        let table = match proto {
            Proto::Udp => &self.udp_by_rcode,
            Proto::Tcp => &self.tcp_by_rcode,
        };
        let slot = rcode.min(RCODE_NAMES.len() - 1);
        table[slot].get_or_init(|| self.responses.get_or_create_owned(&QueryLabels { proto: proto.clone(), rcode: RCODE_NAMES[slot] }))
    }

    #[inline]
    pub fn count_response(&self, proto: Proto, rcode: u16, truncated: bool) {
        self.response_counter(&proto, rcode as usize).inc();
        if truncated {
            self.truncated.inc();
        }
    }

    /// Adds a worker's tally of one batch to the shared counters and clears it.
    pub fn flush(&self, proto: Proto, t: &mut Tally) {
        for (rcode, n) in t.by_rcode.iter_mut().enumerate() {
            if *n > 0 {
                self.response_counter(&proto, rcode).inc_by(std::mem::take(n) as u64);
            }
        }
        if t.truncated > 0 {
            self.truncated.inc_by(std::mem::take(&mut t.truncated) as u64);
        }
        if t.cache_hits > 0 {
            let hits = match proto {
                Proto::Udp => &self.udp_cache_hits,
                Proto::Tcp => &self.tcp_cache_hits,
            };
            hits.inc_by(std::mem::take(&mut t.cache_hits) as u64);
        }
        if !t.services.is_empty() {
            let counters = self.per_service.load();
            for (index, n) in t.services.drain(..) {
                if let Some(c) = counters.get(index as usize) {
                    c.inc_by(n as u64);
                }
            }
        }
    }

    /// Counts an answer to service `index` (query path: one wait-free load, one atomic add).
    #[inline]
    pub fn count_service(&self, index: u32) {
        if let Some(c) = self.per_service.load().get(index as usize) {
            c.inc();
        }
    }
}

/// Responses counted by one worker over one batch, added to the shared counters with
/// [`Metrics::flush`]: a few atomic additions per batch instead of two per query.
#[derive(Debug, Default)]
pub struct Tally {
    by_rcode: [u32; RCODE_NAMES.len()],
    truncated: u32,
    /// Answers copied from the worker's (UDP) or TCP thread's answer cache.
    pub cache_hits: u32,
    /// (service index, answers); a batch answers few distinct services.
    services: Vec<(u32, u32)>,
}

impl Tally {
    /// A tally for batches of up to `batch` responses (allocates once, here).
    pub fn with_capacity(batch: usize) -> Tally {
        Tally { services: Vec::with_capacity(batch), ..Tally::default() }
    }

    #[inline]
    pub fn response(&mut self, rcode: u16, truncated: bool, service: Option<u32>) {
        self.by_rcode[(rcode as usize).min(RCODE_NAMES.len() - 1)] += 1;
        self.truncated += truncated as u32;
        if let Some(index) = service {
            match self.services.iter_mut().find(|(i, _)| *i == index) {
                Some((_, n)) => *n += 1,
                None => self.services.push((index, 1)),
            }
        }
    }
}
