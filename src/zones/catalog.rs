//! The set of served zones: name → zone by longest suffix match, and loading a whole
//! zones directory the way a reload does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use rustc_hash::FxHashMap;

use super::load::{load_zone_unless, Loaded};
use super::zone::Zone;
use crate::config::{LoadLimits, Problem};
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

    /// Apex (presentation form) → SOA serial of every zone: what fleet peers compare.
    pub fn serials(&self) -> BTreeMap<String, u32> {
        self.iter().map(|z| (z.apex.to_string(), z.serial)).collect()
    }
}

/// What loading a zones directory produced: the new catalog, or every problem.
pub struct CatalogLoad {
    pub catalog: Catalog,
    pub warnings: Vec<Problem>,
    pub reused: Vec<Name>,
    /// Zones of `previous` that no file defines any more: they stop being served.
    pub removed: Vec<Name>,
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

/// Files in `dir` that [`zone_files`] leaves out and an operator may have meant as zones:
/// not hidden, not an editor's backup or swap file.
fn skipped_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_none_or(|x| x != "zone"))
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            !(name.starts_with('.') || name.ends_with('~') || [".swp", ".bak", ".orig", ".tmp", ".received"].iter().any(|s| name.ends_with(s)))
        })
        .collect();
    out.sort();
    out
}

/// Line of the apex SOA, for messages about the serial.
fn soa_line(zone: &Zone) -> usize {
    zone.node(zone.apex.as_wire()).and_then(|n| n.rrset(crate::wire::query::rtype::SOA)).map_or(0, |s| s.line as usize)
}

/// Loads every zone file in `dir`. A file whose size and modification time match the
/// zone in `previous` is not parsed again. All-or-nothing: any error fails the load.
pub fn load_catalog(dir: &Path, limits: &LoadLimits, previous: Option<&Catalog>) -> Result<CatalogLoad, Vec<Problem>> {
    load_catalog_with(dir, &[], limits, previous)
}

/// [`load_catalog`] plus `extra` zone files from elsewhere (the copies of zones received
/// from a primary), loaded and checked the same way.
pub fn load_catalog_with(dir: &Path, extra: &[PathBuf], limits: &LoadLimits, previous: Option<&Catalog>) -> Result<CatalogLoad, Vec<Problem>> {
    let mut files = zone_files(dir).map_err(|p| vec![p])?;
    files.extend(extra.iter().cloned());
    let mut zones: FxHashMap<Name, ServedZone> = FxHashMap::default();
    let mut problems = Vec::new();
    // A file that is not `*.zone` is not loaded: say so, so `example.org.zon` is not
    // skipped in silence (editor backups and hidden files are left alone).
    let mut warnings: Vec<Problem> = skipped_files(dir)
        .into_iter()
        .map(|file| Problem { file, line: 0, msg: "skipped: only files named <zone>.zone are loaded as zones".into() })
        .collect();
    let mut reused = Vec::new();
    // The zone a previous snapshot loaded from this very file, if any.
    let previous_of = |file: &Path| previous.and_then(|c| c.zones.values().find(|z| z.zone.source == file));
    for file in files {
        let meta = std::fs::metadata(&file).ok();
        let modified = meta.as_ref().and_then(|m| m.modified().ok());
        let size = meta.as_ref().map_or(0, |m| m.len());
        let served = match previous_of(&file) {
            Some(prev) if prev.modified.is_some() && prev.modified == modified && prev.size == size && !has_includes(&prev.zone) => {
                reused.push(prev.zone.apex.clone());
                prev.clone()
            }
            _ => match load_zone_unless(&file, limits, previous_of(&file).map(|p| &*p.zone)) {
                Err(p) => {
                    problems.extend(p);
                    continue;
                }
                // Rewritten with the same records and serial (a comment edited): the zone
                // serving now is kept, and no second copy was built.
                Ok(Loaded::Same) => {
                    // never panics: Same is only answered when there is a previous zone.
                    let prev = previous_of(&file).expect("previous zone");
                    reused.push(prev.zone.apex.clone());
                    ServedZone { zone: prev.zone.clone(), modified, size }
                }
                Ok(Loaded::Zone(loaded)) => {
                    warnings.extend(loaded.warnings);
                    let mut served = ServedZone { zone: Arc::new(loaded.zone), modified, size };
                    // Compared with the zone this file held before (not with a zone of the
                    // same name from another file: that one is a duplicate, below).
                    if let Some(prev) = previous_of(&file).filter(|p| p.zone.apex == served.zone.apex) {
                        let (old, new) = (prev.zone.serial, served.zone.serial);
                        let line = soa_line(&served.zone);
                        if serial_lt(new, old) {
                            warnings.push(Problem {
                                file: file.clone(),
                                line,
                                msg: format!("SOA serial went backwards ({old} → {new}); secondaries will not follow"),
                            });
                        } else if new == old {
                            if same_content(&prev.zone, &served.zone) {
                                // Unchanged data under an unchanged serial: keep the loaded zone.
                                served.zone = prev.zone.clone();
                                served.modified = modified;
                                served.size = size;
                                reused.push(served.zone.apex.clone());
                            } else if served.zone.dnssec.is_some() {
                                // A pre-signed zone's SOA is covered by its RRSIG: Waypost cannot raise it.
                                warnings.push(Problem {
                                    file: file.clone(),
                                    line,
                                    msg: format!("zone changed but its SOA serial {new} did not; secondaries will not see the change"),
                                });
                            } else {
                                warnings.push(Problem {
                                    file: file.clone(),
                                    line,
                                    msg: format!("zone changed but its SOA serial {new} did not; it is served with the next serial (server.serial-policy), and secondaries follow"),
                                });
                            }
                        }
                    }
                    served
                }
            },
        };
        if let Some(other) = zones.get(&served.zone.apex) {
            problems.push(Problem {
                file: file.clone(),
                line: soa_line(&served.zone),
                msg: format!("zone {} is also defined in {}", served.zone.apex, other.zone.source.display()),
            });
            continue;
        }
        zones.insert(served.zone.apex.clone(), served);
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut removed: Vec<Name> = previous.map_or_else(Vec::new, |p| p.zones.keys().filter(|a| !zones.contains_key(*a)).cloned().collect());
    removed.sort();
    Ok(CatalogLoad { catalog: Catalog::new(zones), warnings, reused, removed })
}

/// RFC 1982 serial number comparison: is `a` before `b`?
pub fn serial_lt(a: u32, b: u32) -> bool {
    a != b && (b.wrapping_sub(a) as i32) > 0
}

fn same_content(a: &Zone, b: &Zone) -> bool {
    a.nodes.len() == b.nodes.len()
        && a.nodes.values().all(|n| b.nodes.get(&n.name).is_some_and(|m| m.rrsets == n.rrsets))
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
        let dir = crate::test_dir::TestDir::new("catalog");
        for apex in ["com.", "example.com.", "sub.example.com.", "a.b.c.d.e.f.test."] {
            let text = format!("$ORIGIN {apex}\n$TTL 300\n@ SOA ns1 host 1 3600 600 86400 60\n@ NS ns1.example.net.\n");
            std::fs::write(dir.join(format!("{apex}zone")), text).unwrap();
        }
        let catalog = load_catalog(&dir, &LoadLimits::default(), None).unwrap().catalog;
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

    fn zone_text(apex: &str, serial: u32) -> String {
        format!("$ORIGIN {apex}\n$TTL 300\n@ SOA ns1 host {serial} 3600 600 86400 60\n@ NS ns1.example.net.\n")
    }

    #[test]
    fn a_duplicate_zone_names_both_files_and_a_removed_zone_is_reported() {
        let dir = crate::test_dir::TestDir::new("catalog-dup");
        std::fs::write(dir.join("corp.test.zone"), zone_text("corp.test.", 1)).unwrap();
        std::fs::write(dir.join("gone.test.zone"), zone_text("gone.test.", 1)).unwrap();
        let first = load_catalog(&dir, &LoadLimits::default(), None).unwrap();
        assert!(first.removed.is_empty());
        // A second file for the same zone, sorting before the first, with the same content.
        std::fs::write(dir.join("corp-dup.zone"), zone_text("corp.test.", 1)).unwrap();
        let errs = load_catalog(&dir, &LoadLimits::default(), Some(&first.catalog)).err().expect("duplicate rejected");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].file, dir.join("corp.test.zone"));
        assert_eq!(errs[0].line, 3);
        assert!(errs[0].msg.ends_with(&format!("is also defined in {}", dir.join("corp-dup.zone").display())), "{errs:?}");
        std::fs::remove_file(dir.join("corp-dup.zone")).unwrap();
        std::fs::remove_file(dir.join("gone.test.zone")).unwrap();
        let next = load_catalog(&dir, &LoadLimits::default(), Some(&first.catalog)).unwrap();
        let removed: Vec<String> = next.removed.iter().map(ToString::to_string).collect();
        assert_eq!(removed, vec!["gone.test.".to_string()]);
        assert_eq!(next.catalog.len(), 1);
    }

    #[test]
    fn a_serial_that_goes_backwards_warns_at_the_soa_line() {
        let dir = crate::test_dir::TestDir::new("catalog-serial");
        let f = dir.join("s.test.zone");
        std::fs::write(&f, zone_text("s.test.", 5)).unwrap();
        let first = load_catalog(&dir, &LoadLimits::default(), None).unwrap();
        std::fs::write(&f, format!("; a comment line\n{}", zone_text("s.test.", 4))).unwrap();
        let next = load_catalog(&dir, &LoadLimits::default(), Some(&first.catalog)).unwrap();
        assert_eq!(next.warnings.len(), 1);
        assert_eq!(next.warnings[0].line, 4, "{:?}", next.warnings);
        assert!(next.warnings[0].msg.contains("went backwards (5 → 4)"));
    }
}
