//! Class CH: the server's identity and version (RFC 4892 `id.server`, and the BIND
//! conventions `hostname.bind` and `version.bind`), answered the way Knot answers them:
//! TXT only, class CH, TTL 0, no AA; every other CH query is REFUSED. In a fleet,
//! `dig CH TXT id.server @address` tells which instance answered.

use crate::wire::query::{rcode, rtype, Query};
use crate::wire::response::{ResponseWriter, Section};

/// Longest identity or version string (one TXT character-string).
pub const MAX_TEXT: usize = 255;

const ID_SERVER: &[u8] = b"\x02id\x06server\x00";
const HOSTNAME_BIND: &[u8] = b"\x08hostname\x04bind\x00";
const VERSION_SERVER: &[u8] = b"\x07version\x06server\x00";
const VERSION_BIND: &[u8] = b"\x07version\x04bind\x00";

/// What the CH names answer, as TXT RDATA; None when turned off (REFUSED).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chaos {
    identity: Option<Box<[u8]>>,
    version: Option<Box<[u8]>>,
}

impl Chaos {
    /// Empty strings turn a name off. Errors name the key when a string is too long.
    pub fn new(identity: &str, version: &str) -> Result<Chaos, String> {
        Ok(Chaos { identity: txt("server.identity", identity)?, version: txt("server.version", version)? })
    }

    pub fn identity(&self) -> Option<&[u8]> {
        self.identity.as_deref().map(|r| &r[1..])
    }

    pub fn version(&self) -> Option<&[u8]> {
        self.version.as_deref().map(|r| &r[1..])
    }

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

const CLASS_CH: u16 = crate::wire::query::class::CH;

/// One TXT character-string holding `text`; None for the empty string.
fn txt(key: &str, text: &str) -> Result<Option<Box<[u8]>>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    if text.len() > MAX_TEXT {
        return Err(format!("{key}: {} bytes, at most {MAX_TEXT}", text.len()));
    }
    let mut r = Vec::with_capacity(text.len() + 1);
    r.push(text.len() as u8);
    r.extend_from_slice(text.as_bytes());
    Ok(Some(r.into_boxed_slice()))
}

/// The default identity: the host name, as Knot uses.
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is writable for its whole length, which is what we pass.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_become_one_character_string_and_empty_turns_off() {
        let c = Chaos::new("dc1-ns1", "").unwrap();
        assert_eq!(c.identity(), Some(&b"dc1-ns1"[..]));
        assert_eq!(c.version(), None);
        assert!(Chaos::new(&"x".repeat(256), "v").unwrap_err().contains("server.identity"));
        assert!(Chaos::new("id", &"x".repeat(255)).is_ok());
    }
}
