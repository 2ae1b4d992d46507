//! Config errors that name the offending key, and where that key is in the file.
//!
//! Validation (`Config::from_spec`) works on the parsed spec, which has no positions.
//! Each error carries the key path it is about (`geo.map.continent.EU`,
//! `services."web.example.com.".check.address`); [`line_of`] finds that key in the
//! file's text with `toml`'s spanned parse, as deep as the path goes. An error without
//! a key, or whose key is not in the text at all, has no line (0, never shown).
//!
//! [`Problem`] is what a failed load reports, for config and zone files alike.

use std::fmt;
use std::path::PathBuf;

use toml::de::{DeTable, DeValue};

/// A dotted key path into a TOML file, e.g. `services."web.example.com.".check`.
///
/// Shown as TOML writes it: bare segments as they are, others quoted. Array items are
/// kept for finding the line but not shown (the message names the item).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Key(Vec<Seg>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Name(String),
    Item(usize),
}

impl Key {
    /// A path of bare segments written dotted: `Key::new("server.dns-listen")`.
    pub fn new(dotted: &str) -> Key {
        Key(dotted.split('.').map(|s| Seg::Name(s.to_string())).collect())
    }

    /// This path with one more key (any text: it is quoted when shown if need be).
    pub fn at(&self, name: &str) -> Key {
        let mut k = self.clone();
        k.0.push(Seg::Name(name.to_string()));
        k
    }

    /// This path with one array item (its line is found; it is not shown).
    pub fn item(&self, index: usize) -> Key {
        let mut k = self.clone();
        k.0.push(Seg::Item(index));
        k
    }

    /// An error about this key: shown as `KEY: DETAIL`.
    pub fn err(&self, detail: impl fmt::Display) -> ConfigError {
        ConfigError { key: Some(self.clone()), msg: detail.to_string() }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in &self.0 {
            let Seg::Name(n) = s else { continue };
            if !first {
                f.write_str(".")?;
            }
            first = false;
            let bare = !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if bare {
                f.write_str(n)?;
            } else {
                write!(f, "{n:?}")?;
            }
        }
        Ok(())
    }
}

/// A config validation error: the key it is about (if any) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub key: Option<Key>,
    pub msg: String,
}

impl ConfigError {
    /// An error about the config as a whole (no key, so no line).
    pub fn general(msg: impl fmt::Display) -> ConfigError {
        ConfigError { key: None, msg: msg.to_string() }
    }

    /// The 1-based line of this error's key in `text`; 0 when there is none.
    pub fn line_in(&self, text: &str) -> usize {
        self.key.as_ref().map_or(0, |k| line_of(text, k))
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(k) => write!(f, "{k}: {}", self.msg),
            None => f.write_str(&self.msg),
        }
    }
}

/// One problem found in a zone or config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    /// 1-based line of the offending record or key; 0 when no line applies (the file
    /// cannot be read, the problem is about the file as a whole). Never shown as `:0:`.
    pub line: usize,
    pub msg: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            0 => write!(f, "{}: {}", self.file.display(), self.msg),
            l => write!(f, "{}:{}: {}", self.file.display(), l, self.msg),
        }
    }
}

/// The 1-based line of `key` in the TOML `text`: of its deepest part that is present
/// (a key's own line; an array item's line). 0 when not even the first part is there,
/// or the text does not parse.
pub fn line_of(text: &str, key: &Key) -> usize {
    let Ok(doc) = DeTable::parse(text) else { return 0 };
    let mut at: Option<usize> = None;
    let mut table: Option<&DeTable> = Some(doc.get_ref());
    let mut array: Option<&[toml::Spanned<DeValue>]> = None;
    for seg in &key.0 {
        let found = match (seg, table, array) {
            (Seg::Name(n), Some(t), _) => t.get_key_value(n.as_str()).map(|(k, v)| (k.span().start, v)),
            (Seg::Item(i), _, Some(a)) => a.get(*i).map(|v| (v.span().start, v)),
            _ => None,
        };
        let Some((offset, value)) = found else { break };
        at = Some(offset);
        (table, array) = match value.get_ref() {
            DeValue::Table(t) => (Some(t), None),
            DeValue::Array(a) => (None, Some(&a[..])),
            _ => (None, None),
        };
    }
    at.map_or(0, |o| line_at(text, o))
}

/// The 1-based line of a byte offset.
pub fn line_at(text: &str, offset: usize) -> usize {
    1 + text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count()
}

/// The deepest key whose value holds byte `offset` of `text` (to name the key of a
/// type error that `toml` reports only by position).
pub fn key_at(text: &str, offset: usize) -> Option<Key> {
    let doc = DeTable::parse(text).ok()?;
    find(doc.get_ref(), offset, &Key::default())
}

/// Searches a table's entries; a `[header]` table's span is its header only, so tables
/// are searched inside before their own spans are tried.
fn find(table: &DeTable, offset: usize, key: &Key) -> Option<Key> {
    for (k, v) in table.iter() {
        let here = key.at(k.get_ref());
        let inner = match v.get_ref() {
            DeValue::Table(t) => find(t, offset, &here),
            DeValue::Array(a) => a.iter().enumerate().find_map(|(i, item)| match item.get_ref() {
                DeValue::Table(t) => find(t, offset, &here.item(i)).or_else(|| item.span().contains(&offset).then(|| here.item(i))),
                _ => None,
            }),
            _ => None,
        };
        if inner.is_some() {
            return inner;
        }
        if k.span().contains(&offset) || v.span().contains(&offset) {
            return Some(here);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "version = 1\n\n[geo.map.continent]\nEU = [\"ams\",\n  \"fra\"]\n\n[services.\"web.example.com.\"]\nttl = 60\n\n[services.\"web.example.com.\".check]\ntype = \"http\"\naddress = \"x\"\n\n[[fleet.peers]]\nname = \"a\"\n[[fleet.peers]]\nname = \"b\"\nurl = \"ftp://b\"\n";

    #[test]
    fn keys_show_as_toml_writes_them() {
        let k = Key::new("services").at("web.example.com.").at("check").at("address");
        assert_eq!(k.to_string(), "services.\"web.example.com.\".check.address");
        assert_eq!(Key::new("geo.map.city").at("GB/London").to_string(), "geo.map.city.\"GB/London\"");
        assert_eq!(Key::new("fleet.peers").item(1).at("url").to_string(), "fleet.peers.url");
        assert_eq!(Key::new("geo.map.continent").at("EU").err("unknown data centre \"fra\"").to_string(), "geo.map.continent.EU: unknown data centre \"fra\"");
    }

    #[test]
    fn lines_are_found_as_deep_as_the_key_goes() {
        assert_eq!(line_of(TEXT, &Key::new("version")), 1);
        assert_eq!(line_of(TEXT, &Key::new("geo.map.continent.EU")), 4);
        assert_eq!(line_of(TEXT, &Key::new("geo.map.continent.EU").item(1)), 5);
        assert_eq!(line_of(TEXT, &Key::new("services").at("web.example.com.").at("ttl")), 8);
        assert_eq!(line_of(TEXT, &Key::new("services").at("web.example.com.").at("check").at("address")), 12);
        // A key that is not there (a default) gives the line of its table.
        assert_eq!(line_of(TEXT, &Key::new("services").at("web.example.com.").at("check").at("port")), 10);
        assert_eq!(line_of(TEXT, &Key::new("fleet.peers").item(1).at("url")), 18);
        assert_eq!(line_of(TEXT, &Key::new("fleet.peers").item(1).at("token")), 16, "the item's header");
        assert_eq!(line_of(TEXT, &Key::new("rrl.rate")), 0, "nothing of it is there");
        assert_eq!(line_of("not toml [", &Key::new("version")), 0);
    }

    #[test]
    fn the_key_of_a_position_is_found() {
        let at = TEXT.find("60").unwrap();
        assert_eq!(key_at(TEXT, at).unwrap().to_string(), "services.\"web.example.com.\".ttl");
        assert_eq!(key_at(TEXT, 0).unwrap().to_string(), "version");
        let at = TEXT.find("ftp").unwrap();
        assert_eq!(key_at(TEXT, at), Some(Key::new("fleet.peers").item(1).at("url")));
        let at = TEXT.find("\"fra").unwrap();
        assert_eq!(key_at(TEXT, at).unwrap().to_string(), "geo.map.continent.EU");
    }
}
