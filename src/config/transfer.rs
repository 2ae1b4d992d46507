//! Validated zone-transfer config: TSIG keys, who may transfer, whom to notify, and the
//! zones received from a primary.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use ipnet::IpNet;

use super::defaults::{TRANSFER_HISTORY, TRANSFER_IN_TIMEOUT};
use super::error::{ConfigError, Key};
use super::file::{SecondarySpec, TransferSpec, TsigSpec};
use crate::wire::Name;

/// TSIG MAC algorithms (RFC 8945 §6; HMAC-SHA1 for old peers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsigAlgorithm {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl TsigAlgorithm {
    /// As `keymgr -t` and `tsig-keygen` write it (and as the algorithm name's first label).
    pub fn parse(s: &str) -> Option<TsigAlgorithm> {
        match s.to_ascii_lowercase().trim_end_matches('.') {
            "hmac-sha1" => Some(TsigAlgorithm::Sha1),
            "hmac-sha256" => Some(TsigAlgorithm::Sha256),
            "hmac-sha384" => Some(TsigAlgorithm::Sha384),
            "hmac-sha512" => Some(TsigAlgorithm::Sha512),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TsigAlgorithm::Sha1 => "hmac-sha1",
            TsigAlgorithm::Sha256 => "hmac-sha256",
            TsigAlgorithm::Sha384 => "hmac-sha384",
            TsigAlgorithm::Sha512 => "hmac-sha512",
        }
    }
}

/// One shared secret. Its Debug form leaves the secret out: configs are logged.
#[derive(Clone, PartialEq, Eq)]
pub struct TsigKey {
    /// The key's name as it goes on the wire (`xfr` → `xfr.`), lowercased.
    pub name: Name,
    pub algorithm: TsigAlgorithm,
    pub secret: Box<[u8]>,
}

impl fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TsigKey({} {})", self.name, self.algorithm.as_str())
    }
}

/// Who may transfer: a network and, when set, the key (index into `keys`) it signs with.
#[derive(Debug, Clone, PartialEq)]
pub struct Allow {
    pub network: IpNet,
    pub key: Option<usize>,
}

/// A server told of serial changes.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifyTarget {
    pub address: SocketAddr,
    pub key: Option<usize>,
}

/// A zone received from a primary.
#[derive(Debug, Clone, PartialEq)]
pub struct Secondary {
    pub apex: Name,
    pub primary: SocketAddr,
    pub key: Option<usize>,
    /// The received copy on disk, a zone file (served after a restart with the primary down).
    pub file: PathBuf,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TransferConfig {
    pub keys: Vec<TsigKey>,
    pub allow: Vec<Allow>,
    pub notify: Vec<NotifyTarget>,
    /// Serial changes kept per zone for IXFR.
    pub history: usize,
    /// How long a transfer from a primary may take before it is abandoned.
    pub timeout: std::time::Duration,
    pub secondaries: Vec<Secondary>,
}

impl Default for TransferConfig {
    fn default() -> Self {
        TransferConfig { keys: Vec::new(), allow: Vec::new(), notify: Vec::new(), history: TRANSFER_HISTORY.default, timeout: TRANSFER_IN_TIMEOUT, secondaries: Vec::new() }
    }
}

impl TransferConfig {
    pub fn from_spec(tsig: &TsigSpec, t: &TransferSpec, secondaries: &BTreeMap<String, SecondarySpec>, base: &Path) -> Result<TransferConfig, ConfigError> {
        let mut keys = Vec::new();
        let mut names = Vec::new();
        for (name, value) in &tsig.keys {
            let key = Key::new("tsig.keys").at(name);
            keys.push(parse_key(name, value).map_err(|e| key.err(e))?);
            names.push(name.as_str());
        }
        let find_key = |k: &Option<String>, at: &Key| -> Result<Option<usize>, ConfigError> {
            match k {
                None => Ok(None),
                Some(k) => names.iter().position(|n| n == k).map(Some).ok_or_else(|| at.err(format!("{k:?} is not in [tsig.keys]"))),
            }
        };
        let mut allow = Vec::new();
        for (i, a) in t.allow.iter().enumerate() {
            let at = Key::new("transfer.allow").item(i);
            let network = a
                .network
                .parse::<IpNet>()
                .or_else(|_| a.network.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| at.at("network").err(format!("{:?} is not a network", a.network)))?;
            allow.push(Allow { network, key: find_key(&a.key, &at.at("key"))? });
        }
        let mut notify = Vec::new();
        for (i, n) in t.notify.iter().enumerate() {
            let at = Key::new("transfer.notify").item(i);
            let address = parse_address(&n.address).ok_or_else(|| at.at("address").err(format!("{:?} is not an address (IP, or IP:port)", n.address)))?;
            notify.push(NotifyTarget { address, key: find_key(&n.key, &at.at("key"))? });
        }
        let history = t.history.unwrap_or(TRANSFER_HISTORY.default);
        if !TRANSFER_HISTORY.contains(history) {
            return Err(Key::new("transfer.history").err(format!("{history}: from {} to {}", TRANSFER_HISTORY.min, TRANSFER_HISTORY.max)));
        }
        let mut out = Vec::new();
        for (zone, s) in secondaries {
            let at = Key::new("secondary").at(zone);
            let apex = Name::from_text(zone).ok_or_else(|| at.err("not a domain name"))?;
            let primary = parse_address(&s.primary).ok_or_else(|| at.at("primary").err(format!("{:?} is not an address (IP, or IP:port)", s.primary)))?;
            let file = match &s.file {
                Some(f) => base.join(f),
                None => base.join("secondary").join(format!("{}zone", apex)),
            };
            out.push(Secondary { apex, primary, key: find_key(&s.key, &at.at("key"))?, file });
        }
        let timeout = t.timeout.map_or(TRANSFER_IN_TIMEOUT, |d| d.0);
        if timeout.is_zero() {
            return Err(Key::new("transfer.timeout").err("must be more than 0"));
        }
        Ok(TransferConfig { keys, allow, notify, history, timeout, secondaries: out })
    }

    pub fn secondary(&self, apex: &[u8]) -> Option<&Secondary> {
        self.secondaries.iter().find(|s| s.apex.as_wire() == apex)
    }
}

/// `ADDRESS` or `ADDRESS:PORT` (IPv6 with a port in brackets); port 53 by default.
fn parse_address(s: &str) -> Option<SocketAddr> {
    s.parse::<SocketAddr>().ok().or_else(|| s.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53)))
}

/// `algorithm:base64-secret`.
fn parse_key(name: &str, value: &str) -> Result<TsigKey, String> {
    let wire = Name::from_text(name).ok_or_else(|| format!("{name:?} is not a valid key name"))?;
    let (alg, secret) = value.split_once(':').ok_or("expected \"algorithm:base64-secret\" (e.g. hmac-sha256:…)")?;
    let algorithm = TsigAlgorithm::parse(alg).ok_or_else(|| format!("{alg:?}: expected hmac-sha256, hmac-sha384, hmac-sha512 or hmac-sha1"))?;
    let secret: Vec<u8> = domain::utils::base64::decode(secret.trim()).map_err(|_| "the secret is not valid base64".to_string())?;
    if secret.is_empty() {
        return Err("the secret is empty".into());
    }
    Ok(TsigKey { name: wire, algorithm, secret: secret.into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_and_hide_their_secret() {
        let k = parse_key("xfr", "hmac-sha256:c2VjcmV0").unwrap();
        assert_eq!(k.name.to_string(), "xfr.");
        assert_eq!(&*k.secret, b"secret");
        assert!(!format!("{k:?}").contains("c2VjcmV0") && !format!("{k:?}").contains("secret"));
        assert!(parse_key("xfr", "hmac-md5:c2VjcmV0").unwrap_err().contains("hmac-md5"));
        assert!(parse_key("xfr", "hmac-sha256:@@@").unwrap_err().contains("base64"));
        assert!(parse_key("xfr", "c2VjcmV0").is_err());
    }

    #[test]
    fn addresses_default_to_port_53() {
        assert_eq!(parse_address("192.0.2.1"), Some("192.0.2.1:53".parse().unwrap()));
        assert_eq!(parse_address("[2001:db8::1]:5300"), Some("[2001:db8::1]:5300".parse().unwrap()));
        assert_eq!(parse_address("host:53"), None);
    }
}
