//! Validated fleet config: who this instance is, its peers, and how votes combine.

use std::time::Duration;

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

#[derive(Debug, Clone, PartialEq)]
pub struct FleetConfig {
    pub vantage: String,
    pub token: Option<String>,
    pub interval: Duration,
    pub stale_after: Duration,
    pub quorum: Quorum,
    pub peers: Vec<Peer>,
}

impl FleetConfig {
    pub fn from_spec(s: &FleetSpec, max_check_interval: Duration) -> Result<FleetConfig, ConfigError> {
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
        let token = s.token.clone().filter(|t| !t.is_empty());
        if !peers.is_empty() && token.is_none() {
            return Err(Key::new("fleet.token").err("required when fleet.peers are configured"));
        }
        Ok(FleetConfig { vantage, token, interval, stale_after, quorum, peers })
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
