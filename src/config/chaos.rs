//! The validated class CH answers: identity and version as TXT RDATA, built once at
//! config time (`answer::chaos` answers with them).

use super::defaults::MAX_CHAOS_TEXT;

/// What the CH names answer, as TXT RDATA; None when turned off (REFUSED).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chaos {
    pub(crate) identity: Option<Box<[u8]>>,
    pub(crate) version: Option<Box<[u8]>>,
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
}

/// One TXT character-string holding `text`; None for the empty string.
fn txt(key: &str, text: &str) -> Result<Option<Box<[u8]>>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    if text.len() > MAX_CHAOS_TEXT {
        return Err(format!("{key}: {} bytes, at most {MAX_CHAOS_TEXT}", text.len()));
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
