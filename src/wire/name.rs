//! Domain names in uncompressed wire form, lowercased for lookup.
//!
//! A [`Name`] owns its bytes (`len label … 0`). Lookup keys are lowercased
//! (RFC 4343: "comparisons … MUST be done in a case-insensitive manner"),
//! while the client's spelling of the question is kept in the packet.

use std::fmt;

/// RFC 1035 §2.3.4: "names 255 octets or less".
pub const MAX_NAME_LEN: usize = 255;
/// RFC 1035 §2.3.4: "labels 63 octets or less".
pub const MAX_LABEL_LEN: usize = 63;

/// A fully qualified domain name in uncompressed, lowercased wire form.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(Box<[u8]>);

impl Name {
    /// The root name.
    pub fn root() -> Name {
        Name(Box::new([0]))
    }

    /// Builds a name from wire bytes that are known to be valid; lowercases them.
    pub fn from_wire(wire: &[u8]) -> Option<Name> {
        validate(wire)?;
        Some(Name(wire.to_ascii_lowercase().into_boxed_slice()))
    }

    /// Parses presentation format (`www.example.com.`; a missing final dot is accepted).
    /// Supports `\DDD` and `\X` escapes.
    pub fn from_text(text: &str) -> Option<Name> {
        let mut wire = Vec::with_capacity(text.len() + 2);
        if text == "." || text.is_empty() {
            return Some(Name::root());
        }
        let bytes = text.as_bytes();
        let mut label: Vec<u8> = Vec::new();
        let mut i = 0;
        let mut trailing_dot = false;
        while i < bytes.len() {
            let c = bytes[i];
            trailing_dot = false;
            match c {
                b'.' => {
                    if label.is_empty() || label.len() > MAX_LABEL_LEN {
                        return None;
                    }
                    wire.push(label.len() as u8);
                    wire.extend_from_slice(&label);
                    label.clear();
                    trailing_dot = true;
                    i += 1;
                }
                b'\\' => {
                    let d = bytes.get(i + 1..i + 4);
                    if let Some(d) = d.filter(|d| d.iter().all(u8::is_ascii_digit)) {
                        let v = (d[0] - b'0') as u32 * 100 + (d[1] - b'0') as u32 * 10 + (d[2] - b'0') as u32;
                        label.push(u8::try_from(v).ok()?);
                        i += 4;
                    } else {
                        label.push(*bytes.get(i + 1)?);
                        i += 2;
                    }
                }
                _ => {
                    label.push(c);
                    i += 1;
                }
            }
        }
        if !trailing_dot {
            if label.is_empty() || label.len() > MAX_LABEL_LEN {
                return None;
            }
            wire.push(label.len() as u8);
            wire.extend_from_slice(&label);
        }
        wire.push(0);
        Name::from_wire(&wire)
    }

    /// The wire bytes (lowercase).
    pub fn as_wire(&self) -> &[u8] {
        &self.0
    }

    /// Number of labels, not counting the root.
    pub fn label_count(&self) -> usize {
        label_count(&self.0)
    }

    pub fn is_root(&self) -> bool {
        self.0.len() == 1
    }

    /// True when `self` equals `ancestor` or lies below it.
    pub fn is_subdomain_of(&self, ancestor: &Name) -> bool {
        is_suffix(&self.0, &ancestor.0)
    }

    /// The name without its first label (None for the root).
    pub fn parent(&self) -> Option<Name> {
        if self.is_root() {
            return None;
        }
        let skip = self.0[0] as usize + 1;
        Some(Name(self.0[skip..].into()))
    }

    /// `*.<self>`.
    pub fn wildcard_child(&self) -> Name {
        let mut w = Vec::with_capacity(self.0.len() + 2);
        w.extend_from_slice(&[1, b'*']);
        w.extend_from_slice(&self.0);
        Name(w.into_boxed_slice())
    }

    /// True when the first label is `*`.
    pub fn is_wildcard(&self) -> bool {
        self.0.len() >= 2 && self.0[0] == 1 && self.0[1] == b'*'
    }

    /// Every ancestor from the name itself up to and including `apex`, longest first.
    pub fn suffix_offsets(&self) -> impl Iterator<Item = usize> + '_ {
        suffix_offsets(&self.0)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_text(&self.0, f)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({self})")
    }
}

/// Writes wire-format name bytes in presentation format, escaping as RFC 4343 §2.1 allows.
pub fn write_text(wire: &[u8], f: &mut impl fmt::Write) -> fmt::Result {
    if wire.len() <= 1 {
        return f.write_char('.');
    }
    let mut i = 0;
    while i < wire.len() && wire[i] != 0 {
        let len = wire[i] as usize;
        for &b in &wire[i + 1..i + 1 + len] {
            match b {
                b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b'@' | b'$' => write!(f, "\\{}", b as char)?,
                0x21..=0x7e => f.write_char(b as char)?,
                _ => write!(f, "\\{b:03}")?,
            }
        }
        f.write_char('.')?;
        i += len + 1;
    }
    Ok(())
}

/// Checks that `wire` is exactly one uncompressed name: labels ≤ 63, total ≤ 255, ends in root.
pub fn validate(wire: &[u8]) -> Option<()> {
    if wire.is_empty() || wire.len() > MAX_NAME_LEN {
        return None;
    }
    let mut i = 0;
    loop {
        let len = *wire.get(i)? as usize;
        if len == 0 {
            return (i + 1 == wire.len()).then_some(());
        }
        if len > MAX_LABEL_LEN {
            return None;
        }
        i += len + 1;
    }
}

/// Length of the uncompressed name at the start of `wire` (which must be valid).
pub fn name_len(wire: &[u8]) -> usize {
    let mut i = 0;
    while wire[i] != 0 {
        i += wire[i] as usize + 1;
    }
    i + 1
}

pub fn label_count(wire: &[u8]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < wire.len() && wire[i] != 0 {
        i += wire[i] as usize + 1;
        n += 1;
    }
    n
}

/// Offsets at which each suffix of the name starts, from the full name to the root.
pub fn suffix_offsets(wire: &[u8]) -> impl Iterator<Item = usize> + '_ {
    let mut i = Some(0usize);
    std::iter::from_fn(move || {
        let cur = i?;
        let len = *wire.get(cur)?;
        i = if len == 0 { None } else { Some(cur + len as usize + 1) };
        Some(cur)
    })
}

/// True when lowercased `name` ends with lowercased `suffix` at a label boundary.
pub fn is_suffix(name: &[u8], suffix: &[u8]) -> bool {
    if suffix.len() > name.len() {
        return false;
    }
    let start = name.len() - suffix.len();
    if &name[start..] != suffix {
        return false;
    }
    suffix_offsets(name).any(|o| o == start)
}

/// RFC 4034 §6.1 canonical order of two lowercased wire names: label by label from the
/// root, each label compared as an octet string (a shorter label that is a prefix of a
/// longer one sorts first, and so does a name that is a suffix of the other). No
/// allocation: label offsets are kept on the stack.
pub fn canonical_cmp(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let offs = |w: &[u8]| {
        let mut v = arrayvec::ArrayVec::<u8, 128>::new();
        for o in suffix_offsets(w) {
            if w[o] != 0 && !v.is_full() {
                v.push(o as u8);
            }
        }
        v
    };
    let (la, lb) = (offs(a), offs(b));
    for (&oa, &ob) in la.iter().rev().zip(lb.iter().rev()) {
        let (oa, ob) = (oa as usize, ob as usize);
        let x = &a[oa + 1..oa + 1 + a[oa] as usize];
        let y = &b[ob + 1..ob + 1 + b[ob] as usize];
        match x.cmp(y) {
            std::cmp::Ordering::Equal => continue,
            other => return other,
        }
    }
    la.len().cmp(&lb.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_with_escapes() {
        let n = Name::from_text("A\\032b.Example.COM.").unwrap();
        assert_eq!(n.as_wire(), b"\x03a b\x07example\x03com\x00");
        assert_eq!(n.to_string(), "a\\032b.example.com.");
        assert_eq!(Name::from_text("x\\.y.").unwrap().as_wire(), b"\x03x.y\x00");
        assert!(Name::from_text("a..b").is_none());
    }

    #[test]
    fn suffix_checks_respect_label_boundaries() {
        let n = Name::from_text("www.example.com").unwrap();
        assert!(n.is_subdomain_of(&Name::from_text("example.com").unwrap()));
        assert!(!n.is_subdomain_of(&Name::from_text("ample.com").unwrap()));
        assert!(n.is_subdomain_of(&Name::root()));
        assert_eq!(n.suffix_offsets().collect::<Vec<_>>(), vec![0, 4, 12, 16]);
    }

    #[test]
    fn long_labels_are_rejected() {
        let long = "a".repeat(64);
        assert!(Name::from_text(&long).is_none());
        assert!(Name::from_text(&"a".repeat(63)).is_some());
    }

    #[test]
    fn canonical_order_is_rfc_4034_section_6_1() {
        // The example of RFC 4034 §6.1, in order.
        let names = ["example.", "a.example.", "yljkjljk.a.example.", "Z.a.example.", "zABC.a.EXAMPLE.", "z.example.", "\\001.z.example.", "*.z.example.", "\\200.z.example."];
        let wire: Vec<Vec<u8>> = names.iter().map(|n| Name::from_text(n).unwrap().as_wire().to_vec()).collect();
        for i in 0..wire.len() {
            for j in 0..wire.len() {
                assert_eq!(canonical_cmp(&wire[i], &wire[j]), i.cmp(&j), "{} vs {}", names[i], names[j]);
            }
        }
    }
}
