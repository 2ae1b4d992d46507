//! Class CH: the server's identity and version (RFC 4892 `id.server`, and the BIND
//! conventions `hostname.bind` and `version.bind`), answered the way Knot answers them:
//! TXT only, class CH, TTL 0, no AA; every other CH query is REFUSED. In a fleet,
//! `dig CH TXT id.server @address` tells which instance answered. The strings are
//! validated and encoded at config time ([`crate::config::Chaos`]).

use crate::config::Chaos;
use crate::wire::query::{rcode, rtype, Query};
use crate::wire::response::{ResponseWriter, Section};

const ID_SERVER: &[u8] = b"\x02id\x06server\x00";
const HOSTNAME_BIND: &[u8] = b"\x08hostname\x04bind\x00";
const VERSION_SERVER: &[u8] = b"\x07version\x06server\x00";
const VERSION_BIND: &[u8] = b"\x07version\x04bind\x00";

const CLASS_CH: u16 = crate::wire::query::class::CH;

impl Chaos {
    /// Answers a CH query into `w`; returns the RCODE.
    pub fn answer<'n>(&'n self, q: &'n Query, w: &mut ResponseWriter<'_, 'n>) -> u16 {
        let rdata = match q.qname() {
            ID_SERVER | HOSTNAME_BIND => self.identity.as_deref(),
            VERSION_SERVER | VERSION_BIND => self.version.as_deref(),
            _ => None,
        };
        match rdata {
            Some(rdata) if q.qtype == rtype::TXT => match w.put_record(Section::Answer, q.qname(), rtype::TXT, CLASS_CH, 0, rdata) {
                Ok(()) => rcode::NOERROR,
                // A 255-byte string always fits in 512 bytes; never reached.
                Err(_) => rcode::SERVFAIL,
            },
            _ => rcode::REFUSED,
        }
    }
}
