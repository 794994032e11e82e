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
            kind: "process record",
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
                kind: "process record",
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
/// Safe against a concurrent writer (the exit waiter and a stop can race): the first code linked
/// into place stays, and a directory removed meanwhile is not an error.
pub(crate) fn record_exit_code_once(dir: &Path, code: i64) -> Result<()> {
    if read_exit_code(dir).is_some() || !dir.exists() {
        return Ok(());
    }
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(EXIT_FILE);
    let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
    let written =
        std::fs::write(&tmp, format!("{code}\n")).and_then(|()| std::fs::hard_link(&tmp, &path));
    let _ = std::fs::remove_file(&tmp);
    match written {
        Ok(()) => Ok(()),
        // Another writer was first, or the task was removed meanwhile: nothing to record.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists || !dir.exists() => Ok(()),
        Err(e) => Err(RuntimeError::io(format!("writing {}", path.display()), e)),
    }
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

    #[test]
    fn concurrent_exit_code_writers_all_succeed_and_the_first_code_stays() {
        for _ in 0..50 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().to_path_buf();
            let writers: Vec<_> = (0..4)
                .map(|code| {
                    let path = path.clone();
                    std::thread::spawn(move || record_exit_code_once(&path, code))
                })
                .collect();
            for w in writers {
                w.join().unwrap().unwrap();
            }
            assert!(read_exit_code(&path).is_some_and(|c| (0..4).contains(&c)));
        }
        // A directory removed meanwhile is not an error.
        let gone = tempfile::tempdir().unwrap().path().to_path_buf();
        record_exit_code_once(&gone, 1).unwrap();
    }
}
