//! `exec`: a command run in a running container's task, its output collected from files.

use std::path::Path;

use containerd_client::services::v1::{DeleteProcessRequest, ExecProcessRequest, StartRequest};
use containerd_client::types::v1::Status as ProcessStatus;
use orion_core::error::ValidationErrors;
use orion_core::runtime::ExecOutput;
use prost_types::Any;

use super::ContainerdRuntime;
use super::errors::{is_gone, on};
use super::io::OutputFiles;
use super::oci::PROCESS_TYPE_URL;
use super::task::is_bad_command;
use crate::error::{Result, RuntimeError};

impl ContainerdRuntime {
    /// Runs `command` in the running container `id`, waits for it and returns its exit code and
    /// output (each stream cut at [`orion_core::runtime::MAX_EXEC_OUTPUT`] bytes). A command that
    /// is not in the image exits 127 (126 when it cannot be run), as with Docker.
    ///
    /// Errors: [`RuntimeError::InvalidFields`] for an empty command, [`RuntimeError::NotFound`]
    /// for an unknown container, [`RuntimeError::Conflict`] when it is not running.
    pub(crate) async fn exec_in(&self, id: &str, command: &[String]) -> Result<ExecOutput> {
        if command.is_empty() {
            let mut errors = ValidationErrors::default();
            errors.push("command", "[]", "a program and its arguments");
            return Err(RuntimeError::InvalidFields(errors));
        }
        let container = self.get_container(id).await?;
        if !self
            .task_process(id)
            .await?
            .is_some_and(|p| ProcessStatus::try_from(p.status) == Ok(ProcessStatus::Running))
        {
            return Err(RuntimeError::Conflict {
                id: id.to_owned(),
                reason: "not running; exec needs a running container".to_owned(),
            });
        }
        let mut process: serde_json::Value = container
            .spec
            .as_ref()
            .and_then(|s| serde_json::from_slice::<serde_json::Value>(&s.value).ok())
            .and_then(|s| s.get("process").cloned())
            .ok_or_else(|| RuntimeError::CorruptRecord {
                kind: "containerd record of",
                path: format!("container {id}"),
                reason: "its runtime spec has no process".to_string(),
            })?;
        process["args"] = serde_json::json!(command);
        let exec_id = self.unique("exec");
        let files = OutputFiles::exec(&self.container_dir(id), &exec_id);
        let uri = files.uri();
        self.tasks()
            .exec(self.request(
                ExecProcessRequest {
                    container_id: id.to_string(),
                    stdin: String::new(),
                    stdout: uri.clone(),
                    stderr: uri,
                    terminal: false,
                    spec:
                        Some(
                            Any {
                                type_url: PROCESS_TYPE_URL.to_string(),
                                value:
                                    serde_json::to_vec(&process).map_err(|e| {
                                        RuntimeError::backend("encode exec process", e)
                                    })?,
                            },
                        ),
                    exec_id: exec_id.clone(),
                },
            ))
            .await
            .map_err(on("exec in", "container", id))?;
        let started = self
            .tasks()
            .start(self.request(StartRequest {
                container_id: id.to_string(),
                exec_id: exec_id.clone(),
            }))
            .await;
        let outcome = match started {
            Ok(_) => self
                .wait(id, &exec_id)
                .await
                .map(|code| (i64::from(code), None)),
            // Docker's convention: 127 for a command that is not there, 126 for one that cannot run.
            Err(status) if is_bad_command(&status) => {
                let code = if status.message().contains("permission denied") {
                    126
                } else {
                    127
                };
                Ok((code, Some(status.message().to_string())))
            }
            Err(status) => Err(on("start exec in", "container", id)(status)),
        };
        let deleted = self
            .tasks()
            .delete_process(self.request(DeleteProcessRequest {
                container_id: id.to_string(),
                exec_id: exec_id.clone(),
            }))
            .await;
        if let Err(status) = deleted
            && !is_gone(&status)
        {
            tracing::warn!(id, exec_id, error = %status, "cannot delete exec process");
        }
        let (stdout, cut_out) = read_and_remove(&files.stdout).await;
        let (mut stderr, cut_err) = read_and_remove(&files.stderr).await;
        let (exit_code, start_error) = outcome?;
        if let Some(message) = start_error {
            stderr.push_str(&message);
        }
        Ok(ExecOutput {
            exit_code,
            stdout,
            stderr,
            truncated: cut_out || cut_err,
        })
    }
}

/// The file's first [`orion_core::runtime::MAX_EXEC_OUTPUT`] bytes, and whether it was
/// longer; the file is removed.
async fn read_and_remove(path: &Path) -> (String, bool) {
    use tokio::io::AsyncReadExt;
    let limit = orion_core::runtime::MAX_EXEC_OUTPUT;
    let mut kept = Vec::new();
    let mut longer = false;
    if let Ok(file) = tokio::fs::File::open(path).await {
        let _ = file.take(limit as u64 + 1).read_to_end(&mut kept).await;
        longer = kept.len() > limit;
        kept.truncate(limit);
    }
    let _ = tokio::fs::remove_file(path).await;
    (String::from_utf8_lossy(&kept).into_owned(), longer)
}
