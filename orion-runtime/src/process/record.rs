//! What the process runtime persists per process, so that a new `ProcessRuntime` over the same
//! state directory finds (lists, adopts) everything an earlier one started.
//!
//! Layout: `<state_dir>/<id>/record.json`, `stdout.log`, `stderr.log`, and `exit_code` (written
//! by the supervisor when the program ends).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use orion_core::model::PublishedPort;
use orion_core::runtime::ContainerSpec;
use serde::{Deserialize, Serialize};

use crate::error::{Result, RuntimeError};

pub(crate) const RECORD_FILE: &str = "record.json";
pub(crate) const STDOUT_FILE: &str = "stdout.log";
pub(crate) const STDERR_FILE: &str = "stderr.log";
pub(crate) const EXIT_FILE: &str = "exit_code";

/// One supervised process, as persisted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ProcessRecord {
    pub id: String,
    pub name: String,
    /// The supervisor's pid, which is also the process group of the program and its children.
    pub pid: u32,
    /// The supervisor's start time in clock ticks after boot (`/proc/<pid>/stat` field 22).
    pub start_ticks: u64,
    /// Wall-clock start, seconds since the Unix epoch.
    pub started_at_unix: u64,
    /// The working directory the program (and `exec`) runs in.
    pub workdir: PathBuf,
    pub ports: Vec<PublishedPort>,
    pub labels: BTreeMap<String, String>,
    /// The spec, with dynamic host ports replaced by the ports chosen.
    pub spec: ContainerSpec,
    /// The process's own cgroup when its limits are enforced (removed with the process).
    #[serde(default)]
    pub cgroup: Option<PathBuf>,
}

impl ProcessRecord {
    /// Writes `record.json` atomically (temp file, then rename).
    pub(crate) fn save(&self, dir: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| RuntimeError::CorruptRecord {
            path: dir.join(RECORD_FILE).display().to_string(),
            reason: e.to_string(),
        })?;
        write_atomically(&dir.join(RECORD_FILE), &bytes)
    }

    /// Reads `<dir>/record.json`; `Ok(None)` when there is none (a start in progress or failed).
    pub(crate) fn load(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(RECORD_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(RuntimeError::io(format!("reading {}", path.display()), e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| RuntimeError::CorruptRecord {
                path: path.display().to_string(),
                reason: e.to_string(),
            })
    }
}

/// The exit code the supervisor (or the runtime) recorded in `<dir>/exit_code`, if any.
pub(crate) fn read_exit_code(dir: &Path) -> Option<i64> {
    std::fs::read_to_string(dir.join(EXIT_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Records `code` unless a code is already there (the supervisor's own is the better one).
pub(crate) fn record_exit_code_once(dir: &Path, code: i64) -> Result<()> {
    if read_exit_code(dir).is_some() || !dir.exists() {
        return Ok(());
    }
    write_atomically(&dir.join(EXIT_FILE), format!("{code}\n").as_bytes())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| RuntimeError::io(format!("writing {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_and_exit_code_is_written_once() {
        let dir = tempfile::tempdir().unwrap();
        let record = ProcessRecord {
            id: "p1".into(),
            name: "web".into(),
            pid: 42,
            start_ticks: 7,
            started_at_unix: 1,
            workdir: dir.path().to_path_buf(),
            ports: Vec::new(),
            labels: BTreeMap::from([("a".into(), "b".into())]),
            spec: ContainerSpec::default(),
            cgroup: None,
        };
        assert_eq!(ProcessRecord::load(dir.path()).unwrap(), None);
        record.save(dir.path()).unwrap();
        assert_eq!(ProcessRecord::load(dir.path()).unwrap(), Some(record));
        assert_eq!(read_exit_code(dir.path()), None);
        record_exit_code_once(dir.path(), 3).unwrap();
        record_exit_code_once(dir.path(), 137).unwrap();
        assert_eq!(read_exit_code(dir.path()), Some(3));
    }

    #[test]
    fn corrupt_record_names_its_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(RECORD_FILE), b"{not json").unwrap();
        let err = ProcessRecord::load(dir.path()).unwrap_err();
        assert!(err.to_string().contains(RECORD_FILE), "{err}");
    }
}
