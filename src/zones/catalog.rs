//! The set of served zones: name → zone by longest suffix match, and loading a whole
//! zones directory the way a reload does.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use rustc_hash::FxHashMap;

use super::load::{load_zone, LoadLimits, Problem};
use super::zone::Zone;
use crate::wire::name::suffix_offsets;
use crate::wire::Name;

/// A zone as served, with what is needed to tell whether its file changed.
#[derive(Debug, Clone)]
pub struct ServedZone {
    pub zone: Arc<Zone>,
    pub modified: Option<SystemTime>,
    pub size: u64,
}

/// Every served zone, keyed by apex.
#[derive(Debug, Default, Clone)]
pub struct Catalog {
    zones: FxHashMap<Name, ServedZone>,
    /// Bit n is set when some apex is n octets long in wire form: the query path probes
    /// the map only for suffixes of those lengths.
    apex_lengths: [u64; 4],
}

impl Catalog {
    pub fn new(zones: FxHashMap<Name, ServedZone>) -> Catalog {
        let mut apex_lengths = [0u64; 4];
        for apex in zones.keys() {
            let n = apex.as_wire().len();
            apex_lengths[n / 64] |= 1 << (n % 64);
        }
        Catalog { zones, apex_lengths }
    }

    /// The zone with the longest apex that contains `qname` (lowercased wire).
    #[inline]
    pub fn find(&self, qname: &[u8]) -> Option<&Zone> {
        suffix_offsets(qname).find_map(|o| {
            let n = qname.len() - o;
            if self.apex_lengths[(n / 64) & 3] & (1 << (n % 64)) == 0 {
                return None;
            }
            self.zones.get(&qname[o..]).map(|z| &*z.zone)
        })
    }

    pub fn len(&self) -> usize {
        self.zones.len()
    }

    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }

    /// A zone to change in place (its apex, the key, stays as it is).
    pub fn get_mut(&mut self, apex: &[u8]) -> Option<&mut ServedZone> {
        self.zones.get_mut(apex)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Zone> {
        self.zones.values().map(|z| &*z.zone)
    }
}

/// What loading a zones directory produced: the new catalog, or every problem.
pub struct CatalogLoad {
    pub catalog: Catalog,
    pub warnings: Vec<Problem>,
    pub reused: Vec<Name>,
}

/// The `*.zone` files of a directory, sorted.
pub fn zone_files(dir: &Path) -> Result<Vec<PathBuf>, Problem> {
    let rd = std::fs::read_dir(dir)
        .map_err(|e| Problem { file: dir.to_path_buf(), line: 0, msg: format!("cannot read zones directory: {e}") })?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "zone") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// Loads every zone file in `dir`. A file whose size and modification time match the
/// zone in `previous` is not parsed again. All-or-nothing: any error fails the load.
pub fn load_catalog(dir: &Path, limits: &LoadLimits, previous: Option<&Catalog>) -> Result<CatalogLoad, Vec<Problem>> {
    let files = zone_files(dir).map_err(|p| vec![p])?;
    let mut zones: FxHashMap<Name, ServedZone> = FxHashMap::default();
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let mut reused = Vec::new();
    for file in files {
        let meta = std::fs::metadata(&file).ok();
        let modified = meta.as_ref().and_then(|m| m.modified().ok());
        let size = meta.as_ref().map_or(0, |m| m.len());
        if let Some(prev) = previous.and_then(|c| c.zones.values().find(|z| z.zone.source == file)) {
            if prev.modified.is_some() && prev.modified == modified && prev.size == size && !has_includes(&prev.zone) {
                reused.push(prev.zone.apex.clone());
                zones.insert(prev.zone.apex.clone(), prev.clone());
                continue;
            }
        }
        match load_zone(&file, limits) {
            Ok(loaded) => {
                warnings.extend(loaded.warnings);
                let zone = loaded.zone;
                if let Some(other) = zones.get(&zone.apex) {
                    problems.push(Problem {
                        file: file.clone(),
                        line: 0,
                        msg: format!("zone {} is also defined in {}", zone.apex, other.zone.source.display()),
                    });
                    continue;
                }
                let mut served = ServedZone { zone: Arc::new(zone), modified, size };
                if let Some(prev) = previous.and_then(|c| c.zones.get(&served.zone.apex)) {
                    let (old, new) = (prev.zone.serial, served.zone.serial);
                    if serial_lt(new, old) {
                        warnings.push(Problem {
                            file: file.clone(),
                            line: 0,
                            msg: format!("SOA serial went backwards ({old} → {new}); secondaries will not follow"),
                        });
                    } else if new == old {
                        if same_content(&prev.zone, &served.zone) {
                            // Unchanged data under an unchanged serial: keep the loaded zone.
                            served.zone = prev.zone.clone();
                            reused.push(served.zone.apex.clone());
                        } else {
                            warnings.push(Problem {
                                file: file.clone(),
                                line: 0,
                                msg: format!("zone changed but its SOA serial {new} did not; secondaries will not see the change"),
                            });
                        }
                    }
                }
                zones.insert(served.zone.apex.clone(), served);
            }
            Err(p) => problems.extend(p),
        }
    }
    if problems.is_empty() {
        Ok(CatalogLoad { catalog: Catalog::new(zones), warnings, reused })
    } else {
        Err(problems)
    }
}

/// RFC 1982 serial number comparison: is `a` before `b`?
pub fn serial_lt(a: u32, b: u32) -> bool {
    a != b && (b.wrapping_sub(a) as i32) > 0
}

fn same_content(a: &Zone, b: &Zone) -> bool {
    a.nodes.len() == b.nodes.len()
        && a.nodes.iter().all(|(k, n)| b.nodes.get(k).is_some_and(|m| m.rrsets == n.rrsets))
}

/// A zone assembled from `$INCLUDE`s may change without its own file changing.
fn has_includes(zone: &Zone) -> bool {
    std::fs::read_to_string(&zone.source).map_or(true, |t| t.to_ascii_uppercase().contains("$INCLUDE"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(text: &str) -> Vec<u8> {
        let mut w = Vec::new();
        for label in text.trim_end_matches('.').split('.').filter(|l| !l.is_empty()) {
            w.push(label.len() as u8);
            w.extend_from_slice(label.as_bytes());
        }
        w.push(0);
        w
    }

    #[test]
    fn find_takes_the_longest_apex_and_only_probes_apex_lengths() {
        let dir = std::env::temp_dir().join(format!("waypost-catalog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for apex in ["com.", "example.com.", "sub.example.com.", "a.b.c.d.e.f.test."] {
            let text = format!("$ORIGIN {apex}\n$TTL 300\n@ SOA ns1 host 1 3600 600 86400 60\n@ NS ns1.example.net.\n");
            std::fs::write(dir.join(format!("{apex}zone")), text).unwrap();
        }
        let catalog = load_catalog(&dir, &LoadLimits::default(), None).unwrap().catalog;
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(catalog.len(), 4);
        let apex_of = |q: &str| catalog.find(&wire(q)).map(|z| z.apex.to_string());
        assert_eq!(apex_of("www.sub.example.com."), Some("sub.example.com.".into()));
        assert_eq!(apex_of("sub.example.com."), Some("sub.example.com.".into()));
        assert_eq!(apex_of("x.example.com."), Some("example.com.".into()));
        assert_eq!(apex_of("example.org.com."), Some("com.".into()));
        assert_eq!(apex_of("x.a.b.c.d.e.f.test."), Some("a.b.c.d.e.f.test.".into()));
        assert_eq!(apex_of("b.c.d.e.f.test."), None);
        assert_eq!(apex_of("example.net."), None);
        assert_eq!(apex_of("."), None);
    }
}
