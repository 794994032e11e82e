//! Small files that are replaced whole and durably: the vote and purge mark (`meta`) and the
//! snapshot. Each is a [`codec`] frame (postcard + CRC-32), written to `<name>.tmp`, fdatasync'd,
//! renamed over `<name>`, and the directory fsync'd, all before the write returns. A crash
//! leaves either the old or the new file, never a torn one.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec;
use crate::error::{Error as ConsensusError, Result};

fn io_err(path: &Path, source: std::io::Error) -> ConsensusError {
    ConsensusError::Io {
        path: path.to_owned(),
        source,
    }
}

/// fsyncs the directory `dir`, so that files created, renamed or removed in it stay so after a
/// power loss.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir, e))
}

/// Writes `value` to `dir/name`, durably and atomically (see the module doc). Blocking.
pub(crate) fn replace<T: Serialize + ?Sized>(dir: &Path, name: &str, value: &T) -> Result<()> {
    let frame = codec::to_frame(value)?;
    let tmp = dir.join(format!("{name}.tmp"));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| io_err(&tmp, e))?;
    file.write_all(&frame).map_err(|e| io_err(&tmp, e))?;
    file.sync_data().map_err(|e| io_err(&tmp, e))?;
    drop(file);
    let path = dir.join(name);
    std::fs::rename(&tmp, &path).map_err(|e| io_err(&path, e))?;
    sync_dir(dir)
}

/// [`replace`] on a blocking thread.
pub(crate) async fn replace_async<T: Serialize + Send + 'static>(
    dir: PathBuf,
    name: &'static str,
    value: T,
) -> Result<()> {
    tokio::task::spawn_blocking(move || replace(&dir, name, &value))
        .await
        .map_err(|e| ConsensusError::Raft(format!("the {name} writer panicked: {e}")))?
}

/// Reads `dir/name` as written by [`replace`]; `None` when there is no such file. A file that
/// fails its checksum is an error naming it (it was fsync'd whole, so this is corruption).
pub(crate) fn read<T: DeserializeOwned>(dir: &Path, name: &str) -> Result<Option<T>> {
    let path = dir.join(name);
    match std::fs::read(&path) {
        Ok(bytes) => codec::from_frame(&bytes)
            .map(Some)
            .map_err(|e| ConsensusError::codec(path.display().to_string(), e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(&path, e)),
    }
}
