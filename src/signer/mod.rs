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
use std::sync::{Arc, Mutex};

use ring::rand::SystemRandom;

use rustc_hash::FxHashMap;

use crate::config::geo::{AllDown, ServiceConfig};
use crate::services::ServiceTable;
use crate::wire::query::rtype;
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
    /// The service names in the zone as the chain states them.
    pub services: Vec<zone::ServiceName>,
    /// The keys that sign the zone's data (and its services' answers), and the window.
    pub zone_signing: Vec<Arc<keys::Key>>,
    pub window: sign::Window,
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

/// Signatures of service answers: by what all of a service's signatures share (owner,
/// Original TTL, keys, window), then by a hash of the RRset's type and RDATA, with the
/// exact type and RDATA kept beside each entry.
type SignatureTable = FxHashMap<Box<[u8]>, FxHashMap<u64, Vec<(u16, Vec<Box<[u8]>>, Arc<crate::zones::RRset>)>>>;

/// Every zone Waypost signed, by apex.
#[derive(Debug, Default)]
pub struct Signed {
    pub zones: FxHashMap<Name, SignedZone>,
    pub policy: Option<Policy>,
    /// Signatures of service answers, by what they sign (owner, type, TTL, RDATA, key,
    /// window): a health publish signs only answers it has not signed before. Control
    /// side only; shared by every snapshot of one window, so a snapshot that is thrown
    /// away (a failed reload) leaves the serving one its table.
    cache: Arc<Mutex<SignatureTable>>,
}

/// Decides the serial a zone Waypost signs is served with (`zones::serial`): called with
/// the zone as loaded, the fingerprint of everything its signed form depends on, and the
/// serial to serve when the zone was never served before.
pub type SerialOf<'a> = dyn FnMut(&Zone, u64, u32) -> u32 + 'a;

/// Signs the zones of `catalog` that have keys; returns the catalog to serve and the
/// signing state to keep. `previous` lets unchanged zones keep their signatures.
pub fn sign_catalog(
    catalog: &Catalog,
    cfg: Option<&SigningConfig>,
    services: &[ServiceConfig],
    previous: &Signed,
    now: u64,
    check: SignatureCheck,
    serial_of: &mut SerialOf<'_>,
) -> Result<(Catalog, Signed), Vec<Problem>> {
    let Some(cfg) = cfg else { return Ok((catalog.clone(), Signed::default())) };
    let keys = keys::read_key_dir(&cfg.key_dir).map_err(|ps| ps.into_iter().map(|(file, msg)| Problem { file, line: 0, msg }).collect::<Vec<_>>())?;
    let keys: Vec<Arc<keys::Key>> = keys.into_iter().map(Arc::new).collect();
    let mut problems = Vec::new();
    let mut by_zone: FxHashMap<Name, Vec<Arc<keys::Key>>> = FxHashMap::default();
    for k in &keys {
        if catalog.find(k.zone.as_wire()).is_none_or(|z| z.apex != k.zone) {
            problems.push(Problem { file: k.file.clone(), line: 0, msg: format!("a key for {}, which is not a served zone", k.zone) });
            continue;
        }
        by_zone.entry(k.zone.clone()).or_default().push(k.clone());
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let (start, window) = window_at(now, &cfg.policy);
    let mut out = catalog.clone();
    // Signatures of service answers stay useful while the window lasts.
    let cache = match previous.policy == Some(cfg.policy) && previous.zones.values().all(|z| z.window_start == start) {
        true => previous.cache.clone(),
        false => Arc::default(),
    };
    let mut signed = Signed { zones: FxHashMap::default(), policy: Some(cfg.policy), cache };
    for (apex, zone_keys) in by_zone {
        let zone_services: Vec<zone::ServiceName> = services
            .iter()
            .enumerate()
            .filter(|(_, s)| catalog.find(s.name.as_wire()).is_some_and(|z| z.apex == apex))
            .map(|(i, s)| zone::ServiceName { name: s.name.clone(), index: i as u32, types: service_types(s), transfer: transfer_shape(s) })
            .collect();
        let zone_keys: Vec<&keys::Key> = zone_keys.iter().map(|k| &**k).collect();
        // never panics: every key's zone was found in this catalog above.
        let served = out.get_mut(apex.as_wire()).expect("zone");
        let states: Vec<KeyState> = zone_keys
            .iter()
            .map(|k| KeyState { tag: k.tag, algorithm: k.algorithm_name(), role: k.role(), published: k.timing.published(now), active: k.timing.active(now), file: k.file.clone() })
            .collect();
        let next_key_event = zone_keys.iter().filter_map(|k| k.timing.next_event(now)).min();
        // Everything the signed zone is made from: when it changes, so does the serial.
        // Explicit fields, not Debug text (kept on disk, it must mean the same after an
        // upgrade), and not the services' config order.
        let fingerprint = {
            let mut h = crate::zones::serial::StableHash::default();
            let p = &cfg.policy;
            h.write(&[p.denial as u8]);
            for v in [p.validity, p.refresh, start] {
                h.write(&v.to_be_bytes());
            }
            for k in &states {
                h.write(&[(k.tag >> 8) as u8, k.tag as u8, u8::from(k.published), u8::from(k.active)]);
            }
            for sv in &zone_services {
                h.write(sv.name.as_wire());
                h.write(&[sv.transfer]);
                h.write(&sv.types.iter().flat_map(|t| t.to_be_bytes()).collect::<Vec<u8>>());
            }
            h.0
        };
        let first = zone::served_serial(served.zone.serial, &zone_keys, &cfg.policy, now);
        let serial = serial_of(&served.zone, fingerprint, first);
        if let Some(prev) = previous.zones.get(&apex).filter(|p| {
            Arc::ptr_eq(&p.loaded, &served.zone) && p.zone.serial == serial && p.keys == states && p.window_start == start && p.services == zone_services && previous.policy == signed.policy
        }) {
            served.zone = prev.zone.clone();
            signed.zones.insert(apex, prev.clone());
            continue;
        }
        let set = zone::KeySet::at(&zone_keys, now).map_err(|msg| vec![Problem { file: cfg.key_dir.clone(), line: 0, msg: format!("zone {apex}: {msg}") }])?;
        if served.zone.dnssec.is_some() {
            tracing::info!(zone = %apex, "the zone file is signed; Waypost signs the zone with the keys in key-dir and replaces the file's signatures");
        }
        let t0 = std::time::Instant::now();
        let zone_signing: Vec<Arc<keys::Key>> =
            keys.iter().filter(|k| set.zone_signing.iter().any(|z| std::ptr::eq(*z, &***k))).cloned().collect();
        let online: Option<Arc<dyn crate::zones::dnssec::OnlineSigner>> = (cfg.policy.denial == DenialMode::Compact)
            .then(|| Arc::new(zone::ZoneSigner { keys: zone_signing.clone(), window, rng: SystemRandom::new() }) as Arc<dyn crate::zones::dnssec::OnlineSigner>);
        let z = zone::sign_zone(&served.zone, &set, &cfg.policy, &zone_services, serial, now, check, online)?;
        let signing_ms = t0.elapsed().as_millis() as u64;
        let signatures = z.dnssec.as_ref().map_or(0, |d| d.signatures);
        tracing::info!(zone = %apex, signatures, signing_ms, "zone signed");
        let loaded = served.zone.clone();
        let z = Arc::new(z);
        served.zone = z.clone();
        signed.zones.insert(
            apex,
            SignedZone { loaded, zone: z, keys: states, window_start: start, signatures, signing_ms, next_key_event, services: zone_services, zone_signing, window },
        );
    }
    Ok((out, signed))
}

/// The types a service can answer with: A and AAAA for the families it has addresses
/// of, CNAME when a data centre (or the fallback) answers with one.
pub fn service_types(s: &ServiceConfig) -> Vec<u16> {
    let mut answers: Vec<&crate::config::geo::DcAnswer> = s.per_dc.iter().collect();
    if let AllDown::Fallback(f) = &s.all_down {
        answers.push(f);
    }
    let mut t = Vec::new();
    if answers.iter().any(|a| !a.v4.is_empty()) {
        t.push(rtype::A);
    }
    if answers.iter().any(|a| !a.v6.is_empty()) {
        t.push(rtype::AAAA);
    }
    if answers.iter().any(|a| a.cname.is_some()) {
        t.push(rtype::CNAME);
    }
    t
}

/// The [`shape`](crate::zones::dnssec::shape) of the answer a zone transfer carries for
/// a service: its `transfer` data centre's configured answer (0 when left out).
pub fn transfer_shape(s: &ServiceConfig) -> u8 {
    use crate::zones::dnssec::shape;
    let Some(a) = s.transfer.and_then(|d| s.per_dc.get(d as usize)) else { return 0 };
    match a.cname {
        Some(_) => shape::CNAME,
        None => (if a.v4.is_empty() { 0 } else { shape::A }) | (if a.v6.is_empty() { 0 } else { shape::AAAA }),
    }
}

/// Signs every answer of the services in zones Waypost signs, with the TTL the service
/// is configured with as the Original TTL: the failover TTL is shorter, and a validator
/// takes the lower of the TTL it receives and the Original TTL (RFC 4035 §5.3.3), so one
/// signature serves both. Signatures made before (same RRset, keys and window) are reused
/// from the signature table: a health publish signs only answers it never signed.
pub fn sign_services(table: &mut ServiceTable, catalog: &Catalog, signed: &Signed) {
    if signed.zones.is_empty() {
        return;
    }
    let rng = SystemRandom::new();
    let mut cache = signed.cache.lock().unwrap_or_else(|p| p.into_inner());
    for svc in &mut table.services {
        let Some(zone) = catalog.find(svc.config.name.as_wire()) else { continue };
        let Some(sz) = signed.zones.get(&zone.apex) else { continue };
        let owner = svc.config.name.clone();
        let ttl = svc.config.ttl.max(svc.config.failover_ttl);
        // What all of this service's signatures share: owner, Original TTL, keys, window.
        let mut prefix = owner.as_wire().to_vec();
        prefix.extend_from_slice(&ttl.to_be_bytes());
        prefix.extend_from_slice(&sz.window.inception.to_be_bytes());
        prefix.extend_from_slice(&sz.window.expiration.to_be_bytes());
        for k in &sz.zone_signing {
            prefix.extend_from_slice(&k.dnskey);
        }
        let table = cache.entry(prefix.into_boxed_slice()).or_default();
        for set in svc.rrsets_mut() {
            let hash = {
                use std::hash::{Hash, Hasher};
                let mut h = rustc_hash::FxHasher::default();
                (set.rtype, &set.rdatas).hash(&mut h);
                h.finish()
            };
            let bucket = table.entry(hash).or_default();
            // Exact comparison: no hash collision hands one RRset another's signatures.
            if let Some(sigs) = bucket.iter().find(|(t, rd, _)| *t == set.rtype && *rd == set.rdatas).map(|e| e.2.clone()) {
                set.sigs = Some(sigs);
                continue;
            }
            let sigs: Vec<Box<[u8]>> = sz.zone_signing.iter().filter_map(|k| sign::sign_rrset(owner.as_wire(), set.rtype, ttl, &set.rdatas, k, sz.window, &rng)).collect();
            if sigs.is_empty() {
                continue;
            }
            let sigs = Arc::new(crate::zones::RRset::new(rtype::RRSIG, ttl, sigs));
            bucket.push((set.rtype, set.rdatas.clone(), sigs.clone()));
            set.sigs = Some(sigs);
        }
    }
}

/// `waypost dnssec keygen`: a new CSK for `zone` in `dir`.
pub fn keygen(dir: &Path, zone: &Name, algorithm: u8) -> Result<PathBuf, String> {
    let now = crate::health::now_secs();
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
