//! The Raft log and vote in plain files, fdatasync'd before anything is acknowledged.
//!
//! Layout (`<data dir>/raft/log/`):
//!
//! - `<first index, 20 digits>.seg`: append-only segments of records
//!   `[len: u32 LE][crc32 of payload: u32 LE][payload]`, the payload being a postcard
//!   [`Entry`]. A new segment starts once the current one holds [`SEGMENT_BYTES`].
//! - `meta`: the vote and the last purged log id, replaced durably ([`durable::replace`]).
//! - `committed`: the last committed log id, overwritten in place without a sync (losing it
//!   only means re-learning the commit index from the leader); a torn one reads as none.
//!
//! Durability contract: `append` writes the entries (readable at once) and hands openraft's
//! callback to a flusher task, which takes every pending callback, fdatasyncs every segment
//! written since its last sync, and only then reports them persisted (group commit: concurrent
//! appends share one fdatasync). `save_vote` and `purge` replace `meta` durably, and `truncate`
//! syncs the shortened segment, before they return.
//!
//! Crash safety: a record cut short or failing its checksum at the end of the last segment (a
//! write interrupted by a crash, never acknowledged) is cut off at open, with a warning. The
//! same in an earlier segment, or a gap between indexes, is corruption: open fails naming the
//! file and offset.

// openraft's trait methods return `StorageError`, which is large; the helpers here return it too.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::ops::RangeBounds;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    Entry, LogId, LogState, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote,
};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::{NodeId, TypeConfig, durable};
use crate::codec;
use crate::error::{Error as ConsensusError, Result};

/// A segment is closed, and the next one started, once it holds this many bytes.
pub const SEGMENT_BYTES: u64 = 16 * 1024 * 1024;
/// The largest record accepted when reading (a record's length field is checked against it).
const MAX_RECORD: u32 = 256 * 1024 * 1024;
const HEADER: usize = 8;
const META: &str = "meta";
const COMMITTED: &str = "committed";
const SEGMENT_SUFFIX: &str = ".seg";

type StorageResult<T> = std::result::Result<T, StorageError<NodeId>>;

fn read_err(e: impl ToString) -> StorageError<NodeId> {
    StorageIOError::read_logs(openraft::AnyError::error(e)).into()
}

fn write_err(e: impl ToString) -> StorageError<NodeId> {
    StorageIOError::write_logs(openraft::AnyError::error(e)).into()
}

fn io_err(path: &Path, source: std::io::Error) -> ConsensusError {
    ConsensusError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What `meta` holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Meta {
    vote: Option<Vote<NodeId>>,
    last_purged: Option<LogId<NodeId>>,
}

#[derive(Debug)]
struct Segment {
    first: u64,
    path: PathBuf,
    file: Arc<File>,
    len: u64,
}

/// Where one entry's record is.
#[derive(Debug, Clone, Copy)]
struct Location {
    log_id: LogId<NodeId>,
    /// Position of the segment in `Files::segments`'s key space (its first index).
    segment: u64,
    offset: u64,
    len: u32,
}

/// The segments and the index of every live entry; shared by the store, its readers and the
/// flusher.
#[derive(Debug, Default)]
struct Files {
    /// Keyed by each segment's first index.
    segments: BTreeMap<u64, Segment>,
    index: BTreeMap<u64, Location>,
    /// Segments written since the flusher's last fdatasync.
    dirty: Vec<Arc<File>>,
    last_purged: Option<LogId<NodeId>>,
}

impl Files {
    fn locate(&self, range: impl RangeBounds<u64>) -> Vec<(Arc<File>, Location)> {
        self.index
            .range(range)
            .map(|(_, loc)| (self.segments[&loc.segment].file.clone(), *loc))
            .collect()
    }
}

fn lock(files: &Mutex<Files>) -> std::sync::MutexGuard<'_, Files> {
    // A poisoned lock only means a panic elsewhere while holding it; the data is still valid.
    files.lock().unwrap_or_else(|p| p.into_inner())
}

fn read_entries(
    files: &Mutex<Files>,
    range: impl RangeBounds<u64>,
) -> StorageResult<Vec<Entry<TypeConfig>>> {
    let located = lock(files).locate(range);
    let mut entries = Vec::with_capacity(located.len());
    for (file, loc) in located {
        let mut buf = vec![0u8; loc.len as usize];
        file.read_exact_at(&mut buf, loc.offset + HEADER as u64)
            .map_err(read_err)?;
        entries.push(codec::from_bytes(&buf).map_err(read_err)?);
    }
    Ok(entries)
}

/// Reads log entries; cheap to clone, shared by openraft's replication tasks.
#[derive(Debug, Clone)]
pub struct FileLogReader {
    files: Arc<Mutex<Files>>,
}

impl RaftLogReader<TypeConfig> for FileLogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> StorageResult<Vec<Entry<TypeConfig>>> {
        read_entries(&self.files, range)
    }
}

/// The Raft log and vote of one node, in files (see the module doc for the contract).
#[derive(Debug)]
pub struct FileLogStore {
    dir: PathBuf,
    files: Arc<Mutex<Files>>,
    meta: Meta,
    committed_file: File,
    /// Length of the last frame written to `committed_file`.
    committed_len: u64,
    flusher: mpsc::UnboundedSender<LogFlushed<TypeConfig>>,
    committed_index: Arc<AtomicU64>,
}

fn segment_name(first: u64) -> String {
    format!("{first:020}{SEGMENT_SUFFIX}")
}

/// Parses every record of one segment into `index`; returns the length of its valid prefix.
/// A bad record is tolerated (cut off) only when `last` (the segment being appended to).
fn load_segment(
    seg: &Segment,
    bytes: &[u8],
    last: bool,
    last_purged: Option<u64>,
    index: &mut BTreeMap<u64, Location>,
) -> Result<u64> {
    let mut pos = 0usize;
    let bad = |pos: usize, why: String| ConsensusError::Codec {
        what: format!("Raft log segment {} at offset {pos}", seg.path.display()),
        reason: format!(
            "{why}; the log is corrupt before its end (not a torn last write). Move the data \
             dir aside and start with an empty one: the node catches up from the leader"
        ),
    };
    while pos < bytes.len() {
        let torn = |why: String| -> Result<u64> {
            if last {
                tracing::warn!(
                    segment = %seg.path.display(),
                    offset = pos,
                    reason = %why,
                    "cutting off an incomplete record at the end of the Raft log (a write \
                     interrupted by a crash; it was never acknowledged)"
                );
                Ok(pos as u64)
            } else {
                Err(bad(pos, why))
            }
        };
        if bytes.len() - pos < HEADER {
            return torn(format!(
                "{} bytes left, a record header is {HEADER}",
                bytes.len() - pos
            ));
        }
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap_or_default());
        let crc = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap_or_default());
        let body_start = pos + HEADER;
        if len > MAX_RECORD || bytes.len() - body_start < len as usize {
            return torn(format!("record of {len} bytes does not fit"));
        }
        let body = &bytes[body_start..body_start + len as usize];
        if crc32fast::hash(body) != crc {
            return torn("record checksum mismatch".into());
        }
        let entry: Entry<TypeConfig> =
            codec::from_bytes(body).map_err(|e| bad(pos, e.to_string()))?;
        let log_id = entry.log_id;
        if last_purged.is_none_or(|p| log_id.index > p) {
            if let Some((prev, _)) = index.last_key_value()
                && *prev + 1 != log_id.index
            {
                return Err(bad(
                    pos,
                    format!("entry {} follows entry {prev}", log_id.index),
                ));
            }
            index.insert(
                log_id.index,
                Location {
                    log_id,
                    segment: seg.first,
                    offset: pos as u64,
                    len,
                },
            );
        }
        pos = body_start + len as usize;
    }
    Ok(pos as u64)
}

fn open_rw(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| io_err(path, e))
}

impl FileLogStore {
    /// Opens (or creates) the log in `dir`, cutting off a torn last record. Must be called
    /// inside a tokio runtime: it starts the flusher task, which ends when the store is dropped.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let meta: Meta = durable::read(dir, META)?.unwrap_or_default();
        let committed_path = dir.join(COMMITTED);
        let committed: Option<LogId<NodeId>> = std::fs::read(&committed_path)
            .ok()
            .and_then(|b| codec::from_frame(&b).ok())
            .flatten();
        let committed_file = open_rw(&committed_path)?;

        let mut firsts = Vec::new();
        for item in std::fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
            let name = item.map_err(|e| io_err(dir, e))?.file_name();
            let name = name.to_string_lossy();
            if let Some(first) = name.strip_suffix(SEGMENT_SUFFIX)
                && let Ok(first) = first.parse::<u64>()
            {
                firsts.push(first);
            }
        }
        firsts.sort_unstable();
        let mut files = Files {
            last_purged: meta.last_purged,
            ..Files::default()
        };
        let last_purged = meta.last_purged.map(|l| l.index);
        for (i, first) in firsts.iter().copied().enumerate() {
            let path = dir.join(segment_name(first));
            let bytes = std::fs::read(&path).map_err(|e| io_err(&path, e))?;
            let file = Arc::new(open_rw(&path)?);
            let mut seg = Segment {
                first,
                path,
                file,
                len: bytes.len() as u64,
            };
            let last = i + 1 == firsts.len();
            let valid = load_segment(&seg, &bytes, last, last_purged, &mut files.index)?;
            if valid < seg.len {
                seg.file
                    .set_len(valid)
                    .and_then(|()| seg.file.sync_data())
                    .map_err(|e| io_err(&seg.path, e))?;
                seg.len = valid;
            }
            files.segments.insert(first, seg);
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let files = Arc::new(Mutex::new(files));
        tokio::spawn(flush_loop(files.clone(), rx));
        Ok(Self {
            dir: dir.to_owned(),
            files,
            meta,
            committed_file,
            committed_len: u64::MAX,
            flusher: tx,
            committed_index: Arc::new(AtomicU64::new(committed.map_or(0, |c| c.index))),
        })
    }

    /// The last committed index this node knows of, shared with [`super::RaftNode::status`].
    pub fn committed_index(&self) -> Arc<AtomicU64> {
        self.committed_index.clone()
    }

    /// The id of the last entry in the log (or the last purged one), for the pre-vote check.
    pub(crate) fn last_log_id_handle(&self) -> LastLogId {
        LastLogId {
            files: self.files.clone(),
        }
    }

    /// Appends `entries` and fdatasyncs them before returning, outside openraft (for tools and
    /// tests; a running node appends through openraft's `append`, which group-commits).
    pub fn append_synced(&mut self, entries: Vec<Entry<TypeConfig>>) -> Result<()> {
        self.write_records(entries)?;
        let dirty = std::mem::take(&mut lock(&self.files).dirty);
        dirty
            .iter()
            .try_for_each(|f| f.sync_data())
            .map_err(|e| io_err(&self.dir, e))
    }

    async fn save_meta(&self) -> StorageResult<()> {
        durable::replace_async(self.dir.clone(), META, self.meta.clone())
            .await
            .map_err(|e| StorageIOError::write_vote(openraft::AnyError::error(e)).into())
    }

    fn write_records(&self, entries: Vec<Entry<TypeConfig>>) -> Result<()> {
        write_records(&self.dir, &self.files, entries)
    }
}

/// Writes the records of `entries` at the end of the current segment (starting a new one when
/// needed) and indexes them. Blocking: a write into a page under writeback can wait for the
/// device, so async callers run it on a blocking thread.
fn write_records(dir: &Path, files: &Mutex<Files>, entries: Vec<Entry<TypeConfig>>) -> Result<()> {
    let Some(first) = entries.first().map(|e| e.log_id.index) else {
        return Ok(());
    };
    let mut buf = Vec::new();
    let mut records = Vec::with_capacity(entries.len());
    for entry in &entries {
        let body = codec::to_bytes(entry)?;
        let len = u32::try_from(body.len())
            .ok()
            .filter(|l| *l <= MAX_RECORD)
            .ok_or_else(|| {
                ConsensusError::Raft(format!(
                    "log entry {} is {} bytes; the most is {MAX_RECORD}",
                    entry.log_id.index,
                    body.len()
                ))
            })?;
        records.push((entry.log_id, buf.len() as u64, len));
        buf.extend_from_slice(&len.to_le_bytes());
        buf.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        buf.extend_from_slice(&body);
    }
    let mut files = lock(files);
    let need_new = files
        .segments
        .last_key_value()
        .is_none_or(|(_, s)| s.len >= SEGMENT_BYTES);
    if need_new {
        let path = dir.join(segment_name(first));
        let file = Arc::new(open_rw(&path)?);
        file.set_len(0).map_err(|e| io_err(&path, e))?;
        // The new file's name must survive a power loss before anything in it is acked.
        durable::sync_dir(dir)?;
        files.segments.insert(
            first,
            Segment {
                first,
                path,
                file,
                len: 0,
            },
        );
    }
    let Some(seg) = files.segments.values_mut().next_back() else {
        return Err(ConsensusError::Raft("no log segment to append to".into()));
    };
    let base = seg.len;
    seg.file
        .write_all_at(&buf, base)
        .map_err(|e| io_err(&seg.path, e))?;
    seg.len += buf.len() as u64;
    let (segment, file) = (seg.first, seg.file.clone());
    if !files.dirty.iter().any(|f| Arc::ptr_eq(f, &file)) {
        files.dirty.push(file);
    }
    for (log_id, offset, len) in records {
        files.index.insert(
            log_id.index,
            Location {
                log_id,
                segment,
                offset: base + offset,
                len,
            },
        );
    }
    Ok(())
}

/// Reads the id of the last log entry (or of the last purged one when the log is empty).
#[derive(Debug, Clone)]
pub(crate) struct LastLogId {
    files: Arc<Mutex<Files>>,
}

impl LastLogId {
    /// The last entry's id; for an empty log the last purged one (`None` when never written).
    pub fn get(&self) -> Option<LogId<NodeId>> {
        let files = lock(&self.files);
        files
            .index
            .last_key_value()
            .map(|(_, l)| l.log_id)
            .or(files.last_purged)
    }
}

/// Group commit: one fdatasync of every written segment for every append that arrived while
/// the previous sync ran; callbacks are answered only after it.
async fn flush_loop(
    files: Arc<Mutex<Files>>,
    mut rx: mpsc::UnboundedReceiver<LogFlushed<TypeConfig>>,
) {
    let mut pending = Vec::new();
    while rx.recv_many(&mut pending, 4096).await > 0 {
        let dirty = std::mem::take(&mut lock(&files).dirty);
        let result =
            tokio::task::spawn_blocking(move || dirty.iter().try_for_each(|f| f.sync_data()))
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
        for callback in pending.drain(..) {
            callback.log_io_completed(match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
            });
        }
    }
}

impl RaftLogReader<TypeConfig> for FileLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> StorageResult<Vec<Entry<TypeConfig>>> {
        read_entries(&self.files, range)
    }
}

impl RaftLogStorage<TypeConfig> for FileLogStore {
    type LogReader = FileLogReader;

    async fn get_log_state(&mut self) -> StorageResult<LogState<TypeConfig>> {
        let last = lock(&self.files)
            .index
            .last_key_value()
            .map(|(_, l)| l.log_id);
        Ok(LogState {
            last_purged_log_id: self.meta.last_purged,
            last_log_id: last.or(self.meta.last_purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        FileLogReader {
            files: self.files.clone(),
        }
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> StorageResult<()> {
        self.meta.vote = Some(*vote);
        self.save_meta().await
    }

    async fn read_vote(&mut self) -> StorageResult<Option<Vote<NodeId>>> {
        Ok(self.meta.vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> StorageResult<()> {
        self.committed_index
            .store(committed.map_or(0, |c| c.index), Ordering::Relaxed);
        // Not synced: losing it only means re-learning the commit index from the leader. The
        // frame is fixed-size for a given value shape and checksummed, so a torn one reads as
        // none.
        let frame = codec::to_frame(&committed).map_err(write_err)?;
        self.committed_file
            .write_all_at(&frame, 0)
            .map_err(write_err)?;
        if frame.len() as u64 != self.committed_len {
            self.committed_file
                .set_len(frame.len() as u64)
                .map_err(write_err)?;
            self.committed_len = frame.len() as u64;
        }
        Ok(())
    }

    async fn read_committed(&mut self) -> StorageResult<Option<LogId<NodeId>>> {
        let bytes = std::fs::read(self.dir.join(COMMITTED)).map_err(read_err)?;
        Ok(codec::from_frame(&bytes).ok().flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> StorageResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<_> = entries.into_iter().collect();
        let (dir, files) = (self.dir.clone(), self.files.clone());
        tokio::task::spawn_blocking(move || write_records(&dir, &files, entries))
            .await
            .map_err(write_err)?
            .map_err(write_err)?;
        if let Err(mpsc::error::SendError(callback)) = self.flusher.send(callback) {
            // The flusher only stops when the store is dropped; sync inline to stay correct.
            let dirty = std::mem::take(&mut lock(&self.files).dirty);
            let result = dirty.iter().try_for_each(|f| f.sync_data());
            callback.log_io_completed(result);
        }
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        let mut files = lock(&self.files);
        let Some(loc) = files.index.get(&log_id.index).copied() else {
            return Ok(()); // Nothing at or after this index.
        };
        // Remove later segments first (newest first): a crash midway leaves a prefix of the
        // old log, never a log with a hole.
        let later: Vec<u64> = files
            .segments
            .range(loc.segment + 1..)
            .map(|(k, _)| *k)
            .rev()
            .collect();
        for first in later {
            if let Some(seg) = files.segments.remove(&first) {
                std::fs::remove_file(&seg.path).map_err(write_err)?;
            }
        }
        durable::sync_dir(&self.dir).map_err(write_err)?;
        if let Some(seg) = files.segments.get_mut(&loc.segment) {
            seg.file
                .set_len(loc.offset)
                .and_then(|()| seg.file.sync_data())
                .map_err(write_err)?;
            seg.len = loc.offset;
        }
        files.index.split_off(&log_id.index);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        // Record the purge first: a crash before the files go leaves purged entries on disk,
        // which open skips.
        self.meta.last_purged = Some(log_id);
        self.save_meta().await?;
        let mut files = lock(&self.files);
        files.last_purged = Some(log_id);
        let mut index = files.index.split_off(&(log_id.index + 1));
        std::mem::swap(&mut files.index, &mut index);
        // A segment goes once the next one starts at or before the first kept index; the last
        // segment always stays (it is appended to).
        let firsts: Vec<u64> = files.segments.keys().copied().collect();
        let mut removed = false;
        for pair in firsts.windows(2) {
            if pair[1] <= log_id.index + 1
                && let Some(seg) = files.segments.remove(&pair[0])
            {
                std::fs::remove_file(&seg.path).map_err(write_err)?;
                removed = true;
            }
        }
        if removed {
            durable::sync_dir(&self.dir).map_err(write_err)?;
        }
        Ok(())
    }
}
