//! Waypost signs the zones whose keys are in `[dnssec] key-dir`, on the control side,
//! when a snapshot is built: the query path only serves signatures made beforehand.
//!
//! ```text
//!   key-dir (BIND key files) ──► keys ──► KeySet at `now` (published / active by timing)
//!   loaded zone ──► sign_zone: DNSKEY CDS CDNSKEY, NSEC or NSEC3 chain, RRSIGs
//!               ──► zones::dnssec::prepare (as for a pre-signed zone) ──► served zone
//! ```
//!
//! A signed zone is kept from snapshot to snapshot and made again only when its file,
//! its keys' states or the signature window changed ([`Signed`]); health flips never
//! re-sign. Windows start at multiples of `signature-refresh` since the epoch, so every
//! instance of a fleet with the same keys makes signatures with the same windows.

pub mod keys;
pub mod sign;
pub mod zone;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::wire::Name;
use crate::zones::dnssec::SignatureCheck;
use crate::config::Problem;
use crate::zones::{Catalog, Zone};
pub use crate::config::SigningConfig;
pub use zone::{window_at, DenialMode, Policy};

/// One zone as Waypost signed it.
#[derive(Debug, Clone)]
pub struct SignedZone {
    /// The zone as loaded from its file (to know when it changed).
    pub loaded: Arc<Zone>,
    pub zone: Arc<Zone>,
    /// (key tag, algorithm, role, published, active) of each key, at signing.
    pub keys: Vec<KeyState>,
    pub window_start: u64,
    pub signatures: usize,
    /// Milliseconds the signing took.
    pub signing_ms: u64,
    /// The earliest moment a key changes state (then the zone is signed again).
    pub next_key_event: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyState {
    pub tag: u16,
    pub algorithm: &'static str,
    pub role: &'static str,
    pub published: bool,
    pub active: bool,
    pub file: PathBuf,
}

/// Every zone Waypost signed, by apex.
#[derive(Debug, Clone, Default)]
pub struct Signed {
    pub zones: FxHashMap<Name, SignedZone>,
    pub policy: Option<Policy>,
}

impl Signed {
    /// True when a zone's window or a key's state changed since it was signed.
    pub fn due(&self, now: u64) -> bool {
        let Some(p) = &self.policy else { return false };
        let (start, _) = window_at(now, p);
        self.zones.values().any(|z| z.window_start != start || z.next_key_event.is_some_and(|t| t <= now))
    }
}

/// Signs the zones of `catalog` that have keys; returns the catalog to serve and the
/// signing state to keep. `previous` lets unchanged zones keep their signatures.
pub fn sign_catalog(catalog: &Catalog, cfg: Option<&SigningConfig>, previous: &Signed, now: u64, check: SignatureCheck) -> Result<(Catalog, Signed), Vec<Problem>> {
    let Some(cfg) = cfg else { return Ok((catalog.clone(), Signed::default())) };
    let keys = keys::read_key_dir(&cfg.key_dir).map_err(|ps| ps.into_iter().map(|(file, msg)| Problem { file, line: 0, msg }).collect::<Vec<_>>())?;
    let mut problems = Vec::new();
    let mut by_zone: FxHashMap<Name, Vec<&keys::Key>> = FxHashMap::default();
    for k in &keys {
        if catalog.find(k.zone.as_wire()).is_none_or(|z| z.apex != k.zone) {
            problems.push(Problem { file: k.file.clone(), line: 0, msg: format!("a key for {}, which is not a served zone", k.zone) });
            continue;
        }
        by_zone.entry(k.zone.clone()).or_default().push(k);
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let (start, _) = window_at(now, &cfg.policy);
    let mut out = catalog.clone();
    let mut signed = Signed { zones: FxHashMap::default(), policy: Some(cfg.policy) };
    for (apex, zone_keys) in by_zone {
        // never panics: every key's zone was found in this catalog above.
        let served = out.get_mut(apex.as_wire()).expect("zone");
        let states: Vec<KeyState> = zone_keys
            .iter()
            .map(|k| KeyState { tag: k.tag, algorithm: k.algorithm_name(), role: k.role(), published: k.timing.published(now), active: k.timing.active(now), file: k.file.clone() })
            .collect();
        let next_key_event = zone_keys.iter().filter_map(|k| k.timing.next_event(now)).min();
        if let Some(prev) = previous.zones.get(&apex).filter(|p| Arc::ptr_eq(&p.loaded, &served.zone) && p.keys == states && p.window_start == start && previous.policy == signed.policy) {
            served.zone = prev.zone.clone();
            signed.zones.insert(apex, prev.clone());
            continue;
        }
        let set = zone::KeySet::at(&zone_keys, now).map_err(|msg| vec![Problem { file: cfg.key_dir.clone(), line: 0, msg: format!("zone {apex}: {msg}") }])?;
        if served.zone.dnssec.is_some() {
            tracing::info!(zone = %apex, "the zone file is signed; Waypost signs the zone with the keys in key-dir and replaces the file's signatures");
        }
        let t0 = std::time::Instant::now();
        let z = zone::sign_zone(&served.zone, &set, &cfg.policy, now, check)?;
        let signing_ms = t0.elapsed().as_millis() as u64;
        let signatures = z.dnssec.as_ref().map_or(0, |d| d.signatures);
        tracing::info!(zone = %apex, signatures, signing_ms, "zone signed");
        let loaded = served.zone.clone();
        let z = Arc::new(z);
        served.zone = z.clone();
        signed.zones.insert(apex, SignedZone { loaded, zone: z, keys: states, window_start: start, signatures, signing_ms, next_key_event });
    }
    Ok((out, signed))
}

/// `waypost dnssec keygen`: a new CSK for `zone` in `dir`.
pub fn keygen(dir: &Path, zone: &Name, algorithm: u8) -> Result<PathBuf, String> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    keys::generate(dir, zone, algorithm, now)
}

/// `waypost dnssec ds`: the DS and DNSKEY records of `zone`'s SEP keys, for the parent.
pub fn ds_records(dir: &Path, zone: &Name) -> Result<Vec<String>, String> {
    let keys = keys::read_key_dir(dir).map_err(|ps| ps.into_iter().map(|(f, m)| format!("{}: {m}", f.display())).collect::<Vec<_>>().join("\n"))?;
    let mut out = Vec::new();
    for k in keys.iter().filter(|k| &k.zone == zone && k.is_sep()) {
        out.push(keys::ds_text(k));
        out.push(keys::dnskey_text(k));
    }
    if out.is_empty() {
        return Err(format!("no KSK or CSK for {zone} in {}", dir.display()));
    }
    Ok(out)
}
