//! Stopping, removing, measuring and exec-ing supervised processes.

use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use orion_core::runtime::{ContainerStats, ExecOutput};

use super::record::{self, ProcessRecord};
use super::{KILL_WAIT, ProcessRuntime, STATS_INTERVAL, STOP_POLL, cgroup, procfs};
use crate::error::{Result, RuntimeError};

impl ProcessRuntime {
    pub(super) async fn stop_inner(&self, id: &str, grace: Duration) -> Result<()> {
        let (dir, record) = self.load(id)?;
        if !Self::status(&dir, &record).is_running() {
            return Ok(());
        }
        let group = Pid::from_raw(record.pid as i32);
        // SIGTERM to the program and its children; the supervisor stays to record the code.
        for (pid, _) in procfs::group_members(record.pid) {
            if pid != record.pid {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
            }
        }
        if wait_until_dead(&record, grace).await {
            // The supervisor is gone; what is left of its group (children that ignored SIGTERM
            // or outlived the program) goes too, as in a container whose init has exited.
            let _ = killpg(group, Signal::SIGKILL);
            return Ok(());
        }
        let _ = killpg(group, Signal::SIGKILL);
        if !wait_until_dead(&record, KILL_WAIT).await {
            return Err(RuntimeError::Conflict {
                id: id.to_owned(),
                reason: format!(
                    "process group {} survived SIGKILL for {KILL_WAIT:?}",
                    record.pid
                ),
            });
        }
        // Killed with its supervisor, no code was written: record what a shell would report.
        record::record_exit_code_once(&dir, 128 + Signal::SIGKILL as i64)
    }

    pub(super) async fn remove_inner(&self, id: &str) -> Result<()> {
        let (dir, record) = self.load(id)?;
        self.stop_inner(id, Duration::ZERO).await?;
        if let Some(cgroup) = &record.cgroup {
            let cgroup = cgroup.clone();
            let _ = tokio::task::spawn_blocking(move || cgroup::remove(&cgroup)).await;
        }
        std::fs::remove_dir_all(&dir)
            .map_err(|e| RuntimeError::io(format!("removing {}", dir.display()), e))
    }

    pub(super) async fn stats_inner(&self, id: &str) -> Result<ContainerStats> {
        let (dir, record) = self.load(id)?;
        if !Self::status(&dir, &record).is_running() {
            return Ok(ContainerStats::default());
        }
        let (before, _) = procfs::group_usage(record.pid);
        let started = tokio::time::Instant::now();
        tokio::time::sleep(STATS_INTERVAL).await;
        let (after, resident) = procfs::group_usage(record.pid);
        let seconds = started.elapsed().as_secs_f64();
        let cpu_seconds = after.saturating_sub(before) as f64 / procfs::ticks_per_second() as f64;
        Ok(ContainerStats {
            cpu_percent: if seconds > 0.0 {
                cpu_seconds / seconds * 100.0
            } else {
                0.0
            },
            memory_bytes: resident,
            memory_limit_bytes: (record.cgroup.is_some() && record.spec.memory_bytes > 0)
                .then_some(record.spec.memory_bytes),
        })
    }

    pub(super) async fn exec_inner(&self, id: &str, command: &[String]) -> Result<ExecOutput> {
        let (dir, record) = self.load(id)?;
        if !Self::status(&dir, &record).is_running() {
            return Err(RuntimeError::Conflict {
                id: id.to_owned(),
                reason: "not running; exec needs a running process".to_owned(),
            });
        }
        let (program, args) = command
            .split_first()
            .ok_or_else(|| RuntimeError::InvalidSpec {
                field: "command".into(),
                value: String::new(),
                expected: "a program and its arguments".into(),
            })?;
        let io_error = |e| RuntimeError::io(format!("exec {program:?} for {id}"), e);
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .envs(record.spec.env.iter().filter_map(|e| e.split_once('=')))
            .current_dir(&record.workdir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A caller that gives up (a health check's timeout) must not leave it running.
            .kill_on_drop(true)
            .spawn()
            .map_err(io_error)?;
        let (out, err) = (child.stdout.take(), child.stderr.take());
        let (stdout, stderr, status) =
            tokio::join!(read_bounded(out), read_bounded(err), child.wait());
        let status = status.map_err(io_error)?;
        let ((stdout, cut_out), (stderr, cut_err)) =
            (stdout.map_err(io_error)?, stderr.map_err(io_error)?);
        use std::os::unix::process::ExitStatusExt;
        Ok(ExecOutput {
            exit_code: status
                .code()
                .map(i64::from)
                .or_else(|| status.signal().map(|s| 128 + i64::from(s)))
                .unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            truncated: cut_out || cut_err,
        })
    }
}

/// Polls until the record's process is gone; false if it still runs after `limit`.
async fn wait_until_dead(record: &ProcessRecord, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if !procfs::is_alive(record.pid, record.start_ticks) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(STOP_POLL).await;
    }
}

/// Everything `pipe` gives until its end, keeping [`orion_core::runtime::MAX_EXEC_OUTPUT`]
/// bytes (the rest is read, so the writer never blocks, and dropped); whether some was dropped.
async fn read_bounded<R: tokio::io::AsyncRead + Unpin>(
    pipe: Option<R>,
) -> std::io::Result<(Vec<u8>, bool)> {
    use tokio::io::AsyncReadExt;
    let (mut kept, mut cut) = (Vec::new(), false);
    let Some(mut pipe) = pipe else {
        return Ok((kept, cut));
    };
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let n = pipe.read(&mut chunk).await?;
        if n == 0 {
            return Ok((kept, cut));
        }
        cut |= orion_core::runtime::append_bounded(&mut kept, &chunk[..n]);
    }
}
