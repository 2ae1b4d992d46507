//! Validated fleet config: who this instance is, its peers, and how votes combine.

use std::path::Path;
use std::time::Duration;

use super::access::{self, FleetTls, Secret};
use super::defaults::{PEER_INTERVAL, VANTAGE};
use super::error::{ConfigError, Key};
use super::file::FleetSpec;

/// How many down votes make a target down.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Quorum {
    /// More than half of the fresh voters.
    Majority,
    /// At least this many fresh voters (capped at the number of fresh voters).
    Count(usize),
    /// At least this fraction of the fresh voters (Route 53-style), rounded up.
    Fraction(f64),
}

impl Quorum {
    /// Down votes needed among `voters` fresh voters.
    pub fn needed(self, voters: usize) -> usize {
        match self {
            Quorum::Majority => voters / 2 + 1,
            Quorum::Count(n) => n.min(voters).max(1),
            Quorum::Fraction(f) => ((voters as f64 * f).ceil() as usize).clamp(1, voters.max(1)),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Peer {
    pub name: String,
    pub url: String,
}

impl Peer {
    /// Pulled over plain HTTP: its token and observations travel unencrypted.
    pub fn is_plain_http(&self) -> bool {
        self.url.starts_with("http://")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct FleetConfig {
    pub vantage: String,
    pub token: Option<Secret>,
    /// How `https://` peers are verified and what this instance presents to them.
    pub tls: FleetTls,
    pub interval: Duration,
    pub stale_after: Duration,
    pub quorum: Quorum,
    pub peers: Vec<Peer>,
}

impl FleetConfig {
    /// Validates `[fleet]`; `base` resolves the token and PEM files (the config's folder).
    pub fn from_spec(s: &FleetSpec, max_check_interval: Duration, base: &Path) -> Result<FleetConfig, ConfigError> {
        let interval = s.interval.map_or(PEER_INTERVAL, |d| d.0);
        let default_stale = (interval * 3).max(max_check_interval * 3);
        let stale_after = s.stale_after.map_or(default_stale, |d| d.0);
        let quorum = match &s.quorum {
            None => Quorum::Majority,
            Some(toml::Value::String(m)) if m == "majority" => Quorum::Majority,
            Some(toml::Value::Integer(n)) if *n >= 1 => Quorum::Count(*n as usize),
            Some(toml::Value::Float(f)) if *f > 0.0 && *f <= 1.0 => Quorum::Fraction(*f),
            Some(other) => return Err(Key::new("fleet.quorum").err(format!("{other}: \"majority\", a count >= 1, or a fraction in (0, 1]"))),
        };
        let vantage = s.vantage.clone().unwrap_or_else(|| VANTAGE.into());
        let mut peers = Vec::new();
        for (i, p) in s.peers.iter().enumerate() {
            let key = Key::new("fleet.peers").item(i);
            if p.name == vantage {
                return Err(key.at("name").err(format!("{:?} is this instance's own vantage point", p.name)));
            }
            if !(p.url.starts_with("http://") || p.url.starts_with("https://")) {
                return Err(key.at("url").err(format!("peer {:?}: {:?} must start with http:// or https://", p.name, p.url)));
            }
            if peers.iter().any(|x: &Peer| x.name == p.name) {
                return Err(key.at("name").err(format!("{:?} listed twice", p.name)));
            }
            peers.push(Peer { name: p.name.clone(), url: p.url.trim_end_matches('/').to_string() });
        }
        let token = access::secret(s.token.as_deref(), s.token_file.as_deref(), "fleet.token", base)?;
        if !peers.is_empty() && token.is_none() {
            return Err(Key::new("fleet.token").err("required when fleet.peers are configured"));
        }
        let ca = s.ca.as_deref().map(|p| access::pem(p, "fleet.ca", base)).transpose()?;
        let client = match (&s.client_cert, &s.client_key) {
            (Some(c), Some(k)) => Some((access::pem(c, "fleet.client-cert", base)?, access::pem(k, "fleet.client-key", base)?)),
            (None, None) => None,
            (Some(_), None) => return Err(Key::new("fleet.client-cert").err("needs fleet.client-key too")),
            (None, Some(_)) => return Err(Key::new("fleet.client-key").err("needs fleet.client-cert too")),
        };
        Ok(FleetConfig { vantage, token, tls: FleetTls { ca, client }, interval, stale_after, quorum, peers })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_counts() {
        assert_eq!(Quorum::Majority.needed(3), 2);
        assert_eq!(Quorum::Majority.needed(2), 2);
        assert_eq!(Quorum::Majority.needed(1), 1);
        assert_eq!(Quorum::Count(2).needed(1), 1);
        assert_eq!(Quorum::Fraction(0.5).needed(3), 2);
        assert_eq!(Quorum::Fraction(0.34).needed(3), 2);
    }
}
