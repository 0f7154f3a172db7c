// SPDX-License-Identifier: MIT OR Apache-2.0
//! The session's state file (`apply --continue` resumes from it) and its step log.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::conflict::ConflictReport;
use super::Mode;
use crate::error::{Error, Result};

/// Persistent state of an apply session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub series: PathBuf,
    pub mode: Mode,
    /// Index of the first patch not yet dealt with.
    pub next: usize,
    /// Index at which the running `git am` session started (git mode).
    pub am_from: usize,
    pub applied: Vec<String>,
    pub skipped: Vec<String>,
    pub conflict: Option<ConflictReport>,
}

pub(super) fn read_state(path: &Path) -> Result<Option<State>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::parse(path.display().to_string(), e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

pub(super) fn save_state(path: &Path, state: &State) -> Result<()> {
    let json =
        serde_json::to_vec_pretty(state).map_err(|e| Error::parse("apply state", e.to_string()))?;
    let tmp = path.with_extension("json.tmp");
    fs::write(&tmp, json).map_err(|e| Error::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// The apply log (one timestamped line per step).
pub(super) struct Log {
    pub(super) path: PathBuf,
}

impl Log {
    pub(super) fn write(&self, line: &str) -> Result<()> {
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| Error::io(&self.path, e))?;
        writeln!(f, "{} {line}", utc_now()).map_err(|e| Error::io(&self.path, e))
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` (UTC, whole seconds).
pub(crate) fn utc_now() -> String {
    let now = jiff::Timestamp::now();
    // Truncated like `date -u`, not rounded up.
    jiff::Timestamp::from_second(now.as_second())
        .unwrap_or(now)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_format() {
        let s = utc_now();
        assert_eq!(s.len(), 20);
        assert!(s.ends_with('Z'));
    }
}
