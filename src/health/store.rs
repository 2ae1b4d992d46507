//! The state file: last known phase of every target and the admin overrides, written
//! atomically (temp file + rename) on every change, read at start-up so a restart does
//! not send clients to a site that was down a second ago.
//!
//! The file is a versioned document ([`StateFile`], `"version": 1`). This release reads
//! version 1 (what every earlier release wrote) and writes it; a file of a later version
//! is refused like a corrupt one (set aside by the monitor), never half-read.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::state::Phase;
use super::wire::{WireOverride, WirePhase};
use super::Override;

/// The version this release writes.
pub const VERSION: u32 = 1;

/// The state file as it is on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StateFile {
    version: u32,
    /// Check id → last known phase.
    #[serde(default)]
    targets: BTreeMap<String, WirePhase>,
    #[serde(default)]
    overrides: Vec<WireOverride>,
}

/// What the state file holds, as the monitor uses it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Saved {
    pub targets: BTreeMap<String, Phase>,
    pub overrides: Vec<Override>,
}

/// Reads the state file; a missing file is an empty state, a corrupt one (or one of a
/// version this release does not read) is an error.
pub fn read(path: &Path) -> Result<Saved, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Saved::default()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let file: StateFile = serde_json::from_slice(&bytes).map_err(|e| format!("{}: corrupt state file: {e}", path.display()))?;
    if file.version != VERSION {
        return Err(format!("{}: state file version {} (this release reads version {VERSION})", path.display(), file.version));
    }
    Ok(Saved {
        targets: file.targets.into_iter().map(|(id, p)| (id, p.into())).collect(),
        overrides: file.overrides.into_iter().map(Override::from).collect(),
    })
}

/// Writes the state file atomically.
pub fn write(path: &Path, state: &Saved) -> Result<(), String> {
    let file = StateFile {
        version: VERSION,
        targets: state.targets.iter().map(|(id, &p)| (id.clone(), p.into())).collect(),
        overrides: state.overrides.iter().map(WireOverride::from).collect(),
    };
    let tmp = path.with_extension("tmp");
    let bytes = serde_json::to_vec_pretty(&file).map_err(|e| e.to_string())?;
    std::fs::write(&tmp, bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::{Action, OverrideTarget};

    /// A state file exactly as the release before the versioned types wrote it.
    const PREVIOUS_RELEASE: &str = r#"{
  "version": 1,
  "targets": {
    "http://127.0.0.1:28081/health": "up",
    "http://127.0.0.1:28082/health": "down"
  },
  "overrides": [
    {
      "target": {
        "kind": "datacenter",
        "name": "sin"
      },
      "action": "drain",
      "set_at": 1796162554,
      "expires_at": 1796163154
    },
    {
      "target": {
        "kind": "address",
        "name": "192.0.2.10"
      },
      "action": "down",
      "set_at": 1796162554,
      "expires_at": null
    }
  ]
}"#;

    #[test]
    fn the_previous_releases_file_is_read_and_written_back_the_same() {
        let dir = crate::test_dir::TestDir::new("store");
        let path = dir.join("state.json");
        std::fs::write(&path, PREVIOUS_RELEASE).unwrap();
        let saved = read(&path).unwrap();
        assert_eq!(saved.targets["http://127.0.0.1:28082/health"], Phase::Down);
        assert_eq!(saved.overrides[0].target, OverrideTarget::Datacenter("sin".into()));
        assert_eq!((saved.overrides[0].action, saved.overrides[0].expires_at), (Action::Drain, Some(1796163154)));
        assert_eq!(saved.overrides[1].target, OverrideTarget::Address("192.0.2.10".parse().unwrap()));
        write(&path, &saved).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), PREVIOUS_RELEASE, "the format is unchanged");
    }

    #[test]
    fn missing_is_empty_and_corrupt_or_newer_is_refused() {
        let dir = crate::test_dir::TestDir::new("store-bad");
        let path = dir.join("state.json");
        assert_eq!(read(&path).unwrap(), Saved::default());
        std::fs::write(&path, "{\"version\":1,\"targets\":{\"http://127.0").unwrap();
        assert!(read(&path).unwrap_err().contains("corrupt state file"));
        std::fs::write(&path, "{\"version\":2,\"targets\":{}}").unwrap();
        assert!(read(&path).unwrap_err().contains("version 2"));
    }
}
