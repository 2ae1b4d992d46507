//! The state file: last known phase of every target and the admin overrides, written
//! atomically (temp file + rename) on every change, read at start-up so a restart does
//! not send clients to a site that was down a second ago.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::state::Phase;
use super::Override;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct StateFile {
    pub version: u32,
    /// Check id → last known phase.
    #[serde(default)]
    pub targets: BTreeMap<String, Phase>,
    #[serde(default)]
    pub overrides: Vec<Override>,
}

/// Reads the state file; a missing file is an empty state, a corrupt one is an error.
pub fn read(path: &Path) -> Result<StateFile, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| format!("{}: corrupt state file: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(StateFile::default()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Writes the state file atomically.
pub fn write(path: &Path, state: &StateFile) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    let bytes = serde_json::to_vec_pretty(state).map_err(|e| e.to_string())?;
    std::fs::write(&tmp, bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}
