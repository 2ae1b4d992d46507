//! Sharing health observations between Waypost instances, and the quorum verdict.
//!
//! Every instance publishes its own latest results (`GET /v1/peer/observations`) and
//! pulls its peers' on an interval. A target is down when at least a quorum of the
//! vantage points with fresh data see it down; stale observations do not vote; with no
//! fresh peer an instance falls back to its own view and says so. Each vantage point's
//! vote is its own hysteresis phase, so `fall`/`rise` still apply per vantage point.
//!
//! The document on the wire is versioned ([`Document`], `"version": 2`; version 1 had no
//! `version` field). Versions only add fields: an instance reads every earlier version,
//! and a later one by the fields it knows, so a fleet can be upgraded one instance at a
//! time and keep its quorum.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::state::Phase;
use super::wire::WirePhase;
use crate::config::defaults::MAX_PEER_BODY;
use crate::config::fleet::{Peer, Quorum};

/// The version this release writes.
pub const VERSION: u32 = 2;

/// One target as one vantage point sees it. Only what voting needs, so the document
/// changes only when a phase or freshness changes and peers can pull it conditionally.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub id: String,
    pub phase: Phase,
    /// The sender probed it within its stale-after window.
    pub fresh: bool,
}

/// What an instance publishes to its peers (served with an ETag; unchanged → 304).
#[derive(Debug, Clone, PartialEq)]
pub struct Observations {
    pub vantage: String,
    pub generation: u64,
    pub config_digest: String,
    /// zone → serial
    pub zones: BTreeMap<String, u32>,
    pub targets: Vec<Observed>,
}

/// [`Observations`] as they travel.
#[derive(Debug, Serialize, Deserialize)]
struct Document {
    /// Absent in version 1. Every version is read the same way (see the module doc), so
    /// a reader needs it only to tell which release sent a document, e.g. in a debugger.
    #[serde(default = "first_version")]
    #[allow(dead_code)]
    version: u32,
    vantage: String,
    generation: u64,
    config_digest: String,
    zones: BTreeMap<String, u32>,
    targets: Vec<DocumentTarget>,
}

#[derive(Debug, Serialize, Deserialize)]
struct DocumentTarget {
    id: String,
    phase: WirePhase,
    fresh: bool,
}

fn first_version() -> u32 {
    1
}

impl Observations {
    /// The document's bytes, as served.
    pub fn encode(&self) -> Vec<u8> {
        let doc = Document {
            version: VERSION,
            vantage: self.vantage.clone(),
            generation: self.generation,
            config_digest: self.config_digest.clone(),
            zones: self.zones.clone(),
            targets: self.targets.iter().map(|t| DocumentTarget { id: t.id.clone(), phase: t.phase.into(), fresh: t.fresh }).collect(),
        };
        // never panics: the document has only strings, numbers and maps with string keys.
        serde_json::to_vec(&doc).expect("observations serialize")
    }

    /// Reads a peer's document of any version.
    pub fn decode(bytes: &[u8]) -> Result<Observations, String> {
        let doc: Document = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        Ok(Observations {
            vantage: doc.vantage,
            generation: doc.generation,
            config_digest: doc.config_digest,
            zones: doc.zones,
            targets: doc.targets.into_iter().map(|t| Observed { id: t.id, phase: t.phase.into(), fresh: t.fresh }).collect(),
        })
    }
}

/// What we know of one peer.
#[derive(Debug, Clone, Default)]
pub struct PeerState {
    /// ETag of `doc`, sent back as If-None-Match.
    pub etag: Option<String>,
    /// Pulls answered 304 (unchanged).
    pub unchanged: u64,
    pub name: String,
    pub url: String,
    pub reachable: bool,
    /// Seconds since the epoch of the last successful pull.
    pub last_ok: Option<u64>,
    pub last_error: Option<String>,
    pub latency_ms: Option<f64>,
    pub bytes: u64,
    pub doc: Option<Observations>,
}

/// One vote about one target.
#[derive(Debug, Clone)]
pub struct Vote {
    pub vantage: String,
    pub phase: Phase,
    pub up: bool,
    pub age_s: u64,
    pub fresh: bool,
}

/// The combined verdict about one target.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub up: bool,
    pub wavering: bool,
    pub reason: String,
    pub votes: Vec<Vote>,
}

/// Combines the votes about one target. `own` is this instance's vote if it probes the
/// target and has a result; `fallback` is the phase to use when nobody fresh has voted.
pub fn verdict(own: Option<Vote>, peers: Vec<Vote>, quorum: Quorum, fallback: Phase) -> Verdict {
    let mut votes: Vec<Vote> = own.iter().cloned().chain(peers).collect();
    votes.sort_by(|a, b| a.vantage.cmp(&b.vantage));
    let fresh: Vec<&Vote> = votes.iter().filter(|v| v.fresh).collect();
    let fresh_peers = fresh.iter().filter(|v| own.as_ref().is_none_or(|o| o.vantage != v.vantage)).count();
    if fresh_peers == 0 {
        // No fresh peer: our own view (or the last known state), said so.
        let (phase, reason) = match own.as_ref().filter(|o| o.fresh) {
            Some(o) => (o.phase, "own view only: no fresh peer observations".to_string()),
            None => (fallback, "no fresh observations: last known state".to_string()),
        };
        return Verdict { up: phase.is_up(), wavering: phase.is_wavering(), reason, votes };
    }
    let voters = fresh.len();
    let down = fresh.iter().filter(|v| !v.up).count();
    let needed = quorum.needed(voters);
    let up = down < needed;
    let wavering = fresh.iter().any(|v| v.phase.is_wavering());
    let reason = format!("{down} of {voters} fresh vantage points see it down; {needed} needed to call it down");
    Verdict { up, wavering, reason, votes }
}

/// A pull's result: a new document (with its ETag and size), or "unchanged" (304).
pub enum Pulled {
    Changed(Observations, Option<String>, u64),
    Unchanged,
}

/// ETag of an observations document's bytes.
pub fn etag(bytes: &[u8]) -> String {
    format!("\"{:016x}\"", crate::config::fnv1a(bytes))
}

/// Pulls one peer's observations (bounded in time and size), conditionally on `etag`.
pub async fn pull(client: &reqwest::Client, peer: &Peer, token: Option<&str>, etag: Option<&str>, timeout: Duration) -> Result<Pulled, String> {
    let url = format!("{}/v1/peer/observations", peer.url);
    let mut req = client.get(&url).timeout(timeout);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(e) = etag {
        req = req.header(reqwest::header::IF_NONE_MATCH, e);
    }
    // The whole chain: "error sending request" alone does not say that, e.g., the peer's
    // certificate is from another CA.
    let mut resp = req.send().await.map_err(|e| super::probe::describe(&e))?;
    if resp.status() == reqwest::StatusCode::NOT_MODIFIED {
        return Ok(Pulled::Unchanged);
    }
    let new_etag = resp.headers().get(reqwest::header::ETAG).and_then(|v| v.to_str().ok()).map(String::from);
    if !resp.status().is_success() {
        return Err(format!("{url}: HTTP {}", resp.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| super::probe::describe(&e))? {
        if body.len() + chunk.len() > MAX_PEER_BODY {
            return Err(format!("{url}: response larger than {MAX_PEER_BODY} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    let doc = Observations::decode(&body).map_err(|e| format!("{url}: not an observations document: {e}"))?;
    Ok(Pulled::Changed(doc, new_etag, body.len() as u64))
}


#[cfg(test)]
mod tests {
    use super::*;

    /// A document exactly as the release before versioned documents served it.
    const VERSION_1: &str = r#"{"vantage":"ams","generation":1,"config_digest":"39393c24d9d04860","zones":{"example.com.":2026112201},"targets":[{"id":"http://127.0.0.1:28081/health","phase":"up","fresh":true},{"id":"http://127.0.0.1:28082/health","phase":"down","fresh":true}]}"#;

    #[test]
    fn a_rolling_upgrade_reads_both_ways() {
        // A new instance reads an old peer's document.
        let old = Observations::decode(VERSION_1.as_bytes()).unwrap();
        assert_eq!((old.vantage.as_str(), old.generation, old.zones["example.com."]), ("ams", 1, 2026112201));
        assert_eq!(old.targets[1], Observed { id: "http://127.0.0.1:28082/health".into(), phase: Phase::Down, fresh: true });
        // An old instance reads a new one's: the release before read it as this struct.
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct OldReader {
            vantage: String,
            generation: u64,
            config_digest: String,
            zones: BTreeMap<String, u32>,
            targets: Vec<OldTarget>,
        }
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct OldTarget {
            id: String,
            phase: WirePhase,
            fresh: bool,
        }
        let new = old.encode();
        assert!(String::from_utf8_lossy(&new).starts_with("{\"version\":2,"));
        let read: OldReader = serde_json::from_slice(&new).unwrap();
        assert_eq!((read.targets.len(), read.targets[1].phase), (2, WirePhase::Down));
        assert_eq!(Observations::decode(&new).unwrap(), old, "and itself");
        // A later version is read by the fields this release knows.
        let later = VERSION_1.replacen('{', "{\"version\":3,\"quorum_hint\":[1,2],", 1);
        assert_eq!(Observations::decode(later.as_bytes()).unwrap(), old);
    }

    fn v(name: &str, up: bool, fresh: bool) -> Vote {
        Vote { vantage: name.into(), phase: if up { Phase::Up } else { Phase::Down }, up, age_s: 1, fresh }
    }

    #[test]
    fn a_strict_majority_is_needed_to_call_a_target_down() {
        // C alone sees it down: A and B outvote it.
        let r = verdict(Some(v("c", false, true)), vec![v("a", true, true), v("b", true, true)], Quorum::Majority, Phase::Up);
        assert!(r.up, "{}", r.reason);
        let r = verdict(Some(v("c", false, true)), vec![v("a", false, true), v("b", true, true)], Quorum::Majority, Phase::Up);
        assert!(!r.up);
    }

    #[test]
    fn stale_votes_do_not_count_and_no_fresh_peer_means_own_view() {
        let r = verdict(Some(v("c", false, true)), vec![v("a", true, false), v("b", true, false)], Quorum::Majority, Phase::Up);
        assert!(!r.up);
        assert!(r.reason.contains("own view"));
        // Two fresh voters, one down: a strict majority of 2 is 2.
        let r = verdict(Some(v("a", true, true)), vec![v("b", false, true), v("c", false, false)], Quorum::Majority, Phase::Up);
        assert!(r.up);
        let r = verdict(None, vec![], Quorum::Majority, Phase::Down);
        assert!(!r.up && r.reason.contains("last known"));
    }
}
