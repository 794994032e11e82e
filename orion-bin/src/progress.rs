//! Watching a rollout after `apply`, `deploy`, `run` and `scale`: counts per state, the latest
//! failure reason, fast failure, and the structured result `-o json` prints.
//!
//! Contract:
//! - The wait is bounded by one deadline for the whole command ([`Watch::deadline`]); each request
//!   of it by the client's own timeout and by what is left of the deadline.
//! - It ends `ok` when the current version has `desired` serving replicas and no replica of an
//!   older version is left; `timeout` at the deadline (exit code 6); `failed` (exit code 8) as
//!   soon as [`judge`] finds the rollout cannot proceed: a replica no node can take (the pending
//!   reason the scheduler wrote, seen on two polls in a row with nothing starting or stopping),
//!   every slot of the version failing (a start failure such as a missing image, or two failures
//!   in a row), the cluster rolling the version back or pausing it, or an update stalled on two
//!   looks whose dry run (`POST /v1/plan`) places no replica anywhere.
//! - Progress goes to stderr: one updating line on a terminal, a line per change otherwise.
//!   The result goes to stdout: a line in table form, the [`RolloutResult`] with `-o json|yaml`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use orion_core::model::{Task, TaskState};
use serde::Serialize;

use crate::api::types::ServiceStatus;
use crate::cli::OutputFormat;
use crate::client::{Client, ClientError, exit};
use crate::commands::Exit;
use crate::output::render_value;
use display::{Display, one_line};

/// How long a rollout is waited for without `--timeout`.
pub const DEFAULT_ROLLOUT_TIMEOUT: Duration = Duration::from_secs(300);
/// Interval between two looks at the service.
const POLL: Duration = Duration::from_millis(500);
/// Longest failure reason kept in a result (the task's own record has it whole).
const MAX_REASON: usize = 1000;

/// How to wait for rollouts: until `deadline`, or not at all when `detach`.
#[derive(Debug, Clone, Copy)]
pub struct Watch {
    pub deadline: Instant,
    pub detach: bool,
    pub format: OutputFormat,
}

impl Watch {
    /// A watch ending `timeout` (default [`DEFAULT_ROLLOUT_TIMEOUT`]) from now.
    pub fn new(timeout: Option<Duration>, detach: bool, format: OutputFormat) -> Self {
        Watch {
            deadline: Instant::now() + timeout.unwrap_or(DEFAULT_ROLLOUT_TIMEOUT),
            detach,
            format,
        }
    }

    /// `client` with each request bounded also by what is left of the deadline (at least
    /// 100 ms, so a last look can still be made).
    pub fn client(&self, client: &Client) -> Client {
        let left = self
            .deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(100));
        client.clone().with_timeout(client.timeout().min(left))
    }

    /// True when every result is printed as JSON or YAML.
    pub fn structured(&self) -> bool {
        matches!(self.format, OutputFormat::Json | OutputFormat::Yaml)
    }
}

/// Tasks of the current version by state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Not placed yet, or placed and not started (`pending`, `scheduled`).
    pub pending: u32,
    /// Its container is being created or started, or restarted in place.
    pub starting: u32,
    /// Its container runs (healthy or not).
    pub running: u32,
    /// Serving: running, and healthy when the service has a health check.
    pub healthy: u32,
    /// Failed attempts of this version: failed tasks and restarts in place.
    pub failed: u32,
}

/// How a rollout ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every replica of the version serves.
    Ok,
    /// Not converged by the deadline (exit code 6).
    Timeout,
    /// It cannot proceed (exit code 8).
    Failed,
    /// `--detach`: the change was accepted, nothing was waited for.
    Detached,
}

/// What `apply`, `deploy`, `run` and `scale` print with `-o json|yaml`.
#[derive(Debug, Clone, Serialize)]
pub struct RolloutResult {
    pub service: String,
    /// The spec version the command wrote.
    pub version: u64,
    pub desired: u32,
    pub counts: Counts,
    pub result: Outcome,
    /// Why it failed or timed out, or the latest failure seen on the way.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Time spent waiting, in milliseconds.
    pub waited_ms: u64,
}

impl RolloutResult {
    /// The result of a write that is not waited for.
    pub fn detached(status: &ServiceStatus) -> Self {
        RolloutResult {
            service: status.spec.name.clone(),
            version: status.version,
            desired: status.desired,
            counts: Counts::default(),
            result: Outcome::Detached,
            reason: None,
            waited_ms: 0,
        }
    }

    /// The process exit code of this result.
    pub fn exit_code(&self) -> u8 {
        match self.result {
            Outcome::Ok | Outcome::Detached => 0,
            Outcome::Timeout => exit::TIMEOUT,
            Outcome::Failed => exit::ROLLOUT_FAILED,
        }
    }

    /// One line for humans.
    pub fn line(&self) -> String {
        let c = &self.counts;
        let mut line = match self.result {
            Outcome::Ok => format!(
                "service {}: {}/{} serving (version {})",
                self.service, c.healthy, self.desired, self.version
            ),
            Outcome::Detached => format!(
                "service {}: accepted (version {}, {} replica{}); not waiting (--detach)",
                self.service,
                self.version,
                self.desired,
                plural(self.desired)
            ),
            Outcome::Timeout | Outcome::Failed => format!(
                "service {}: {} ({}/{} serving; {})",
                self.service,
                if self.result == Outcome::Timeout {
                    "rollout did not converge in time"
                } else {
                    "rollout failed"
                },
                c.healthy,
                self.desired,
                counts_text(c)
            ),
        };
        if let Some(r) = &self.reason {
            line.push_str(&format!(": {r}"));
        }
        line
    }
}

fn plural(n: u32) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn counts_text(c: &Counts) -> String {
    format!(
        "pending {}, starting {}, running {}, healthy {}, failed {}",
        c.pending, c.starting, c.running, c.healthy, c.failed
    )
}

/// What one look at the service found.
#[derive(Debug, Clone, PartialEq)]
pub struct Look {
    pub counts: Counts,
    /// The most recent reason a task of the version gave (failure or pending).
    pub latest_reason: Option<String>,
    /// The pending reason of an unplaced task of the version, when nothing starts or stops.
    pub stuck_pending: Option<String>,
    /// Unplaced tasks of the version.
    pub unplaced: u32,
    /// Every slot of the version is failing, with no replica running: the latest reason.
    pub all_failing: Option<String>,
    /// Active tasks of other versions.
    pub others: u32,
    /// An update with fewer active tasks of the version than `desired` and nothing starting or
    /// stopping: its new replicas may have no node to go to ([`plan_verdict`] asks).
    pub update_stalled: bool,
}

/// Summarises `tasks` (every task of the service, `all=true`) for `version` and `desired`.
pub fn look(tasks: &[Task], version: u64, desired: u32) -> Look {
    let mut counts = Counts::default();
    let mut latest: Option<&Task> = None;
    let mut in_flight = false;
    let mut others = 0;
    let mut current_active = 0;
    let mut unplaced = 0;
    let mut pending_reason = None;
    // Per slot: failed attempts, and whether a replica runs.
    let mut slots: BTreeMap<u32, (u32, bool, bool)> = BTreeMap::new();
    for t in tasks {
        if matches!(
            t.state,
            TaskState::Scheduled | TaskState::Starting | TaskState::Stopping
        ) {
            in_flight = true;
        }
        if t.spec_version != version {
            if t.is_active() {
                others += 1;
            }
            continue;
        }
        if t.error.is_some()
            && t.state != TaskState::Stopped
            && latest.is_none_or(|l| t.updated_at >= l.updated_at)
        {
            latest = Some(t);
        }
        if t.is_active() {
            current_active += 1;
        }
        let slot = slots.entry(t.slot).or_default();
        match t.state {
            TaskState::Pending => {
                counts.pending += 1;
                if t.node.is_none() && t.is_active() {
                    unplaced += 1;
                    if t.error.is_some() {
                        pending_reason = t.error.as_deref().map(str::to_owned);
                    }
                }
            }
            TaskState::Scheduled => counts.pending += 1,
            TaskState::Starting => counts.starting += 1,
            TaskState::Running => {
                counts.running += 1;
                slot.1 = true;
                if t.is_serving() {
                    counts.healthy += 1;
                }
            }
            TaskState::Failed => {
                counts.failed += 1;
                slot.0 += 1;
                // A task that never got a container failed to start: it will again.
                if t.container_id.is_none() && t.exit_code.is_none() {
                    slot.2 = true;
                }
            }
            _ => {}
        }
        if t.is_active() && t.restarts > 0 {
            counts.failed += t.restarts;
            slot.0 += t.restarts;
        }
    }
    let all_failing = (desired > 0
        && counts.running == 0
        && (0..desired).all(|s| {
            slots
                .get(&s)
                .is_some_and(|&(failures, runs, start_failed)| {
                    !runs && (start_failed || failures >= 2)
                })
        }))
    .then(|| latest.and_then(|t| t.error.as_deref().map(str::to_owned)))
    .flatten();
    Look {
        counts,
        latest_reason: latest.and_then(|t| t.error.as_deref().map(str::to_owned)),
        stuck_pending: if in_flight { None } else { pending_reason },
        unplaced,
        all_failing,
        others,
        update_stalled: others > 0 && current_active < desired && !in_flight,
    }
}

/// The verdict on one look: `Some((outcome, reason))` when the wait is over. `stuck_before` is
/// whether the previous look was stuck on placement too.
pub fn judge(l: &Look, desired: u32, stuck_before: bool) -> Option<(Outcome, Option<String>)> {
    if l.counts.healthy >= desired && l.others == 0 && l.unplaced == 0 {
        return Some((Outcome::Ok, None));
    }
    if let (Some(reason), true) = (&l.stuck_pending, stuck_before) {
        return Some((
            Outcome::Failed,
            Some(format!(
                "placement failure: {} of {desired} replica{} cannot be placed: {reason}",
                l.unplaced,
                plural(desired)
            )),
        ));
    }
    if let Some(reason) = &l.all_failing {
        return Some((
            Outcome::Failed,
            Some(format!("every new replica fails: {reason}")),
        ));
    }
    None
}

/// The verdict on an update's rollout record: a canary waiting for `promote` is as far as the
/// rollout goes by itself (`ok`, with a note); a paused rollout goes no further (`failed`).
pub fn rollout_verdict(
    r: &crate::api::rollout::RolloutStatus,
    version: u64,
) -> Option<(Outcome, Option<String>)> {
    let record = r.rollout.as_ref().filter(|rec| rec.version == version)?;
    if r.canary_waiting {
        return Some((
            Outcome::Ok,
            Some(format!(
                "canary serving; `orion rollout promote {}` replaces the other replicas",
                r.service
            )),
        ));
    }
    if record.phase == orion_core::reconciler::RolloutPhase::Paused {
        return Some((
            Outcome::Failed,
            Some(format!(
                "rollout paused{}; `orion rollout resume {}` continues it",
                record
                    .reason
                    .as_ref()
                    .map(|w| format!(": {w}"))
                    .unwrap_or_default(),
                r.service
            )),
        ));
    }
    None
}

/// The verdict on a dry run of the spec (`POST /v1/plan`) during a stalled update: when no
/// replica would be placed and every node rejects the first one, the update cannot proceed (the
/// reconciler keeps the old replicas and creates no pending task, so only a plan tells why).
pub fn plan_verdict(
    plan: &crate::api::plan::PlanResult,
    version: u64,
) -> Option<(Outcome, Option<String>)> {
    let blocked = !plan.nodes.is_empty()
        && plan.nodes.iter().all(|n| !n.feasible)
        && plan.placements.iter().all(|p| p.node.is_none());
    if !blocked {
        return None;
    }
    let reasons: Vec<String> = plan
        .nodes
        .iter()
        .take(3)
        .map(|n| format!("{}: {}", n.node, n.reason.as_deref().unwrap_or("rejected")))
        .collect();
    let more = if plan.nodes.len() > 3 { "; ..." } else { "" };
    Some((
        Outcome::Failed,
        Some(format!(
            "placement failure: no node can take a replica of version {version} (the old \
             replicas keep running): {}{more}",
            reasons.join("; ")
        )),
    ))
}

/// Waits for the rollout of `status` (the answer to the write) under `watch`.
pub async fn wait(client: &Client, status: &ServiceStatus, watch: &Watch) -> RolloutResult {
    let service = status.spec.name.clone();
    let version = status.version;
    let started = Instant::now();
    let mut display = Display::new(&service, watch.structured());
    let mut desired = status.desired;
    let mut stuck_before = false;
    let mut stalled_before = false;
    let mut last_look: Option<Look> = None;
    let mut last_error: Option<String>;
    let verdict = loop {
        let c = watch.client(client);
        match observe(&c, &service).await {
            Ok((now, tasks)) => {
                last_error = None;
                if now.version != version {
                    break rolled_back_or_replaced(&c, &service, version, now.version).await;
                }
                desired = now.desired;
                let l = look(&tasks, version, desired);
                display.show(&service, desired, &l);
                let mut verdict = judge(&l, desired, stuck_before);
                if verdict.is_none() && l.others > 0 {
                    // An update: it may wait for a promotion, or have paused.
                    let rollout = c.get(&format!("/v1/services/{service}/rollout")).await;
                    verdict = rollout.ok().and_then(|r| rollout_verdict(&r, version));
                }
                if verdict.is_none() && l.update_stalled && stalled_before {
                    let plan = c
                        .call::<_, crate::api::plan::PlanResult>(
                            reqwest::Method::POST,
                            "/v1/plan",
                            Some(&now.spec),
                        )
                        .await;
                    verdict = plan.ok().and_then(|p| plan_verdict(&p, version));
                }
                stalled_before = l.update_stalled;
                stuck_before = l.stuck_pending.is_some();
                last_look = Some(l);
                if let Some(v) = verdict {
                    break v;
                }
            }
            Err(ClientError::Api { status, body }) if status == reqwest::StatusCode::NOT_FOUND => {
                break (
                    Outcome::Failed,
                    Some(format!("the service was removed: {}", body.error)),
                );
            }
            // Unreachable for a moment (a leader change): look again until the deadline.
            Err(e) => last_error = Some(e.to_string()),
        }
        if Instant::now() + POLL >= watch.deadline {
            let reason = last_error
                .clone()
                .or_else(|| last_look.as_ref().and_then(|l| l.latest_reason.clone()));
            break (Outcome::Timeout, reason);
        }
        tokio::time::sleep(POLL).await;
    };
    display.finish();
    let (result, reason) = verdict;
    RolloutResult {
        service,
        version,
        desired,
        counts: last_look.map(|l| l.counts).unwrap_or_default(),
        result,
        reason: reason.map(|r| one_line(&r, MAX_REASON)),
        waited_ms: started.elapsed().as_millis() as u64,
    }
}

async fn observe(c: &Client, service: &str) -> Result<(ServiceStatus, Vec<Task>), ClientError> {
    let status: ServiceStatus = c.get(&format!("/v1/services/{service}")).await?;
    let tasks: Vec<Task> = c
        .get(&format!("/v1/tasks?service={service}&all=true"))
        .await?;
    Ok((status, tasks))
}

/// The service's version moved away from the one written: rolled back by its update
/// strategy, or replaced by another writer.
async fn rolled_back_or_replaced(
    c: &Client,
    service: &str,
    version: u64,
    now: u64,
) -> (Outcome, Option<String>) {
    let rollout: Result<crate::api::rollout::RolloutStatus, _> =
        c.get(&format!("/v1/services/{service}/rollout")).await;
    let record = rollout.ok().and_then(|r| r.rollout);
    match record {
        Some(r) if r.rolled_back_from == Some(version) => (
            Outcome::Failed,
            Some(format!(
                "rolled back to version {now}{}",
                r.reason.map(|w| format!(": {w}")).unwrap_or_default()
            )),
        ),
        _ => (
            Outcome::Failed,
            Some(format!(
                "version {version} was replaced by version {now} while waiting"
            )),
        ),
    }
}

/// Prints `results` (one object, or a list for several) in the watch's format, and turns the
/// worst of them into the command's error.
pub fn report(results: &[RolloutResult], watch: &Watch) -> anyhow::Result<()> {
    if watch.structured() {
        let text = match results {
            [one] => render_value(one, watch.format),
            many => render_value(&many, watch.format),
        };
        println!("{text}");
    } else {
        for r in results.iter().filter(|r| r.exit_code() == 0) {
            println!("{}", r.line());
        }
    }
    let failures: Vec<&RolloutResult> = results.iter().filter(|r| r.exit_code() != 0).collect();
    let Some(worst) = failures.iter().max_by_key(|r| r.exit_code()) else {
        return Ok(());
    };
    let message = failures
        .iter()
        .map(|r| r.line())
        .collect::<Vec<_>>()
        .join("\n");
    Err(Exit {
        code: worst.exit_code(),
        message: if watch.structured() {
            // The JSON already says it all; stderr gets the lines for humans.
            message
        } else {
            format!("{message}\n(see `orion ps --service {}`)", worst.service)
        },
    }
    .into())
}

mod display;
#[cfg(test)]
mod tests;
