//! Container output: where it goes and how it is read back.
//!
//! containerd 1.6's runc shim knows three kinds of stdio URI: a FIFO path (someone must keep
//! reading it, so output is lost or blocks once the caller goes away), `file://` (stdout and
//! stderr are merged into one file: the shim takes the path from the stdout URI for both) and
//! `binary://` (the shim starts a logger with the container's stdout on fd 3, stderr on fd 4, and
//! waits for fd 5 to close). Orion uses `binary:///bin/sh` with a one-line script, so output keeps
//! flowing when no Orion process is reading:
//! - a container's main process: two `sed -u` append fd 3 and fd 4 line by line to one file,
//!   each line tagged `1 ` (stdout) or `2 ` (stderr), so the order across streams is kept (no
//!   sed address may look ahead: the shim keeps the pipes open until the task is deleted, so a
//!   `$` address would hold the last line back until then);
//! - an exec: two `cat` copy fd 3 and fd 4 to two files, read back whole after it exits.
//!
//! The logger ignores SIGTERM and exits once both streams reach EOF, so when the shim deletes a
//! process, its output is completely on disk.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;

use orion_core::runtime::{LogLine, LogOptions, LogStream, LogStreamBox};

use super::ContainerdRuntime;
use crate::error::{Result, RuntimeError};

/// How often a following log stream looks for new output.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// The log of a container's main process: lines tagged `1 ` (stdout) or `2 ` (stderr).
pub(crate) fn main_log(dir: &Path) -> PathBuf {
    dir.join("output.log")
}

/// The stdio URI (set it as both stdout and stderr) that appends tagged lines to `log`.
pub(crate) fn main_log_uri(log: &Path) -> String {
    let log = shell_quote(&log.to_string_lossy());
    let script = format!(
        "trap '' TERM; exec 5>&-; \
         /bin/sed -u 's/^/1 /' <&3 >>{log} & /bin/sed -u 's/^/2 /' <&4 >>{log} & wait"
    );
    binary_sh_uri(&script)
}

fn binary_sh_uri(script: &str) -> String {
    format!("binary:///bin/sh?-c={}", percent_encode(script))
}

/// The two files an exec writes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutputFiles {
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

impl OutputFiles {
    /// The files of one exec.
    pub fn exec(dir: &Path, exec_id: &str) -> Self {
        OutputFiles {
            stdout: dir.join(format!("{exec_id}.stdout")),
            stderr: dir.join(format!("{exec_id}.stderr")),
        }
    }

    /// The stdio URI for containerd (set it as both stdout and stderr).
    pub fn uri(&self) -> String {
        let script = format!(
            "trap '' TERM; exec 5>&-; /bin/cat <&3 >>{} & /bin/cat <&4 >>{} & wait",
            shell_quote(&self.stdout.to_string_lossy()),
            shell_quote(&self.stderr.to_string_lossy()),
        );
        binary_sh_uri(&script)
    }
}

/// Quotes for `sh`: `'...'` with each `'` written as `'\''`.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reads a tagged log file incrementally, splitting it into lines.
#[derive(Debug)]
struct Cursor {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl Cursor {
    fn new(path: PathBuf) -> Self {
        Cursor {
            path,
            offset: 0,
            partial: Vec::new(),
        }
    }

    /// Appends the complete lines written since the last call.
    async fn read_new(&mut self, out: &mut Vec<LogLine>) -> std::io::Result<()> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let mut file = match tokio::fs::File::open(&self.path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        file.seek(std::io::SeekFrom::Start(self.offset)).await?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).await?;
        self.offset += bytes.len() as u64;
        self.partial.extend_from_slice(&bytes);
        while let Some(newline) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=newline).collect();
            out.push(self.line(&line[..line.len() - 1]));
        }
        Ok(())
    }

    /// A failure of [`Cursor::read_new`], naming the log file.
    fn read_error(&self, e: std::io::Error) -> RuntimeError {
        RuntimeError::io(format!("reading {}", self.path.display()), e)
    }

    /// Emits a last line that has no newline yet.
    fn flush(&mut self, out: &mut Vec<LogLine>) {
        if !self.partial.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            out.push(self.line(&rest));
        }
    }

    fn line(&self, bytes: &[u8]) -> LogLine {
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        let (stream, text) = match bytes {
            [b'2', b' ', rest @ ..] => (LogStream::Stderr, rest),
            [b'1', b' ', rest @ ..] => (LogStream::Stdout, rest),
            untagged => (LogStream::Stdout, untagged),
        };
        LogLine {
            stream,
            line: String::from_utf8_lossy(text).into_owned(),
        }
    }
}

#[derive(Debug)]
struct Follower {
    runtime: ContainerdRuntime,
    id: String,
    cursor: Cursor,
    pending: VecDeque<LogLine>,
    done: bool,
}

impl Follower {
    /// The next line; a stream item, so an error is already an [`orion_core::Error`].
    async fn next(mut self) -> Option<(orion_core::Result<LogLine>, Self)> {
        loop {
            if let Some(line) = self.pending.pop_front() {
                return Some((Ok(line), self));
            }
            if self.done {
                return None;
            }
            let mut lines = Vec::new();
            if let Err(e) = self.cursor.read_new(&mut lines).await {
                self.done = true;
                return Some((Err(self.cursor.read_error(e).into()), self));
            }
            if !lines.is_empty() {
                self.pending.extend(lines);
                continue;
            }
            match self.runtime.task_process(&self.id).await {
                Ok(Some(p)) if super::task::process_is_live(&p) => {
                    tokio::time::sleep(FOLLOW_POLL).await;
                }
                Ok(_) => {
                    // Exited (or gone): take what the logger wrote last, then end.
                    if let Err(e) = self.cursor.read_new(&mut lines).await {
                        self.done = true;
                        return Some((Err(self.cursor.read_error(e).into()), self));
                    }
                    self.cursor.flush(&mut lines);
                    self.pending.extend(lines);
                    self.done = true;
                }
                Err(e) => {
                    self.done = true;
                    return Some((Err(e.into()), self));
                }
            }
        }
    }
}

impl ContainerdRuntime {
    /// Where a container's files (logs, hosts, resolv.conf) live.
    pub(crate) fn container_dir(&self, id: &str) -> PathBuf {
        self.state_dir().join("containers").join(id)
    }

    /// The container's output in the order it was written; `tail` keeps the last `n` lines;
    /// `follow` then streams new lines as they come until the container exits.
    pub(crate) async fn container_logs(
        &self,
        id: &str,
        options: LogOptions,
    ) -> Result<LogStreamBox> {
        self.get_container(id).await?;
        let mut cursor = Cursor::new(main_log(&self.container_dir(id)));
        let mut backlog = Vec::new();
        cursor
            .read_new(&mut backlog)
            .await
            .map_err(|e| cursor.read_error(e))?;
        if !options.follow {
            cursor.flush(&mut backlog);
        }
        if let Some(n) = options.tail {
            let skip = backlog.len().saturating_sub(n);
            backlog.drain(..skip);
        }
        if !options.follow {
            return Ok(Box::pin(futures::stream::iter(backlog.into_iter().map(Ok))));
        }
        let follower = Follower {
            runtime: self.clone(),
            id: id.to_string(),
            cursor,
            pending: backlog.into(),
            done: false,
        };
        Ok(Box::pin(futures::stream::unfold(follower, Follower::next)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logger_uri_is_a_percent_encoded_sh_script() {
        let uri = main_log_uri(&main_log(Path::new("/state/it's")));
        assert!(uri.starts_with("binary:///bin/sh?-c="), "{uri}");
        let encoded = uri.split_once("?-c=").unwrap().1;
        assert!(
            encoded
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b))
        );
        assert!(encoded.contains("%27%5C%27%27"), "quote escaped: {encoded}");
    }

    #[tokio::test]
    async fn cursor_returns_complete_lines_then_the_rest_on_flush() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        std::fs::write(&path, "1 one\n2 two\r\n1 thr").unwrap();
        let mut cursor = Cursor::new(path.clone());
        let mut lines = Vec::new();
        cursor.read_new(&mut lines).await.unwrap();
        let text: Vec<_> = lines.iter().map(|l| (l.stream, l.line.as_str())).collect();
        assert_eq!(
            text,
            [(LogStream::Stdout, "one"), (LogStream::Stderr, "two")]
        );
        std::fs::write(&path, "1 one\n2 two\r\n1 three\nuntagged").unwrap();
        lines.clear();
        cursor.read_new(&mut lines).await.unwrap();
        cursor.flush(&mut lines);
        let text: Vec<_> = lines.iter().map(|l| l.line.as_str()).collect();
        assert_eq!(text, ["three", "untagged"]);
    }
}
