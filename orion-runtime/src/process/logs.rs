//! Log lines from the process runtime's `stdout.log` / `stderr.log` files, with tail and follow.
//!
//! The two files are separate, so lines cannot be ordered across streams: stdout's lines come
//! first, then stderr's, and `tail` takes the last lines of that sequence.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::time::Duration;

use orion_core::runtime::{LogLine, LogOptions, LogStream, LogStreamBox};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;

use super::record::{STDERR_FILE, STDOUT_FILE};
use crate::error::RuntimeError;
use crate::lines::LineSplitter;

/// How often a followed log looks for new output.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// One log file being read from where the last read stopped.
#[derive(Debug)]
struct Tail {
    path: PathBuf,
    stream: LogStream,
    offset: u64,
    splitter: LineSplitter,
}

impl Tail {
    fn new(dir: &Path, file: &str, stream: LogStream) -> Self {
        Self {
            path: dir.join(file),
            stream,
            offset: 0,
            splitter: LineSplitter::default(),
        }
    }

    /// The lines completed since the last read (and, with `finish`, the unterminated rest).
    async fn read_lines(&mut self, finish: bool) -> std::io::Result<Vec<LogLine>> {
        let mut bytes = Vec::new();
        match tokio::fs::File::open(&self.path).await {
            Ok(mut file) => {
                file.seek(SeekFrom::Start(self.offset)).await?;
                file.read_to_end(&mut bytes).await?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        self.offset += bytes.len() as u64;
        let mut lines = self.splitter.push(&bytes);
        if finish {
            lines.extend(self.splitter.finish());
        }
        let stream = self.stream;
        Ok(lines
            .into_iter()
            .map(|line| LogLine { stream, line })
            .collect())
    }
}

/// Streams the logs in `dir`. With `follow`, keeps reading until `is_running` says the process
/// has ended (then reads once more, so nothing written before the exit is lost).
pub(crate) fn stream_logs(
    dir: &Path,
    options: LogOptions,
    is_running: impl Fn() -> bool + Send + Sync + 'static,
) -> LogStreamBox {
    let (tx, rx) = mpsc::channel::<orion_core::Result<LogLine>>(256);
    let mut out = Tail::new(dir, STDOUT_FILE, LogStream::Stdout);
    let mut err = Tail::new(dir, STDERR_FILE, LogStream::Stderr);
    tokio::spawn(async move {
        let result = async {
            let mut running = options.follow && is_running();
            let mut first = true;
            loop {
                let finish = !running;
                let mut lines = out.read_lines(finish).await?;
                lines.extend(err.read_lines(finish).await?);
                if first {
                    if let Some(n) = options.tail {
                        lines.drain(..lines.len().saturating_sub(n));
                    }
                    first = false;
                }
                for line in lines {
                    if tx.send(Ok(line)).await.is_err() {
                        return Ok(()); // The reader went away.
                    }
                }
                if finish {
                    return Ok(());
                }
                tokio::time::sleep(FOLLOW_POLL).await;
                running = is_running();
            }
        }
        .await;
        if let Err(e) = result {
            let e = RuntimeError::io("reading process logs", e);
            let _ = tx.send(Err(e.into())).await;
        }
    });
    Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}
