//! Rollouts: the state of a service's latest spec change, and the pure decisions that pace it.
//!
//! A [`Rollout`] record per service lives in the store (`keys::rollout`), so a new leader picks
//! up a paused, failed, rolled-back or canary-waiting rollout where the old one left it. Every
//! reconcile round, [`step`] reads the service's spec, its tasks and its record, and says:
//!
//! - the record to store (a new one when the spec version changed; progress otherwise);
//! - whether the update failed and `failure_action: rollback` asks to go back
//!   ([`Step::rollback_to`]; the controller writes the previous spec back, see
//!   `ClusterStore::rollback_service`);
//! - the [`RolloutGate`] the reconciler obeys when it starts replacements of old-version tasks.
//!
//! # Rules
//!
//! - **Batches.** The reconciler starts at most `update_strategy.parallelism` replacements at
//!   once; of them, at most `max_surge` start their new replica before the old one stops, the
//!   others stop the old one first (the batch is in flight until their new replicas serve). The next batch starts only once every new-version replica serves (runs, and passes
//!   its health check when it has one), and then `delay_seconds` later.
//! - **Failure.** A replica of the new version, created since the rollout began, fails the
//!   rollout when it fails (bad image, exits under `restart_policy: no`...), restarts in place,
//!   turns unhealthy, or does not serve within its health wait: `health_wait_seconds` after its
//!   first check is due (one `health_check.interval` after its creation; at once without a
//!   check). Then `failure_action` decides: `rollback` goes back to the previous version (a
//!   rollback that fails itself pauses instead), `pause` pauses, `continue` carries on.
//! - **Canary.** With `update_strategy.canary: N`, an update replaces N slots and waits (phase
//!   `progressing`, [`Rollout::canary_waiting`]) until promoted: [`Rollout::canary`] becomes 0.
//! - **Paused** rollouts start no replacement until resumed; replacements already started
//!   finish. A first deploy (no previous version) is never gated.
//! - **Completed** when no active task of an older version is left and every new one serves.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::hash::StableMap;
use crate::model::spec::FailureAction;
use crate::model::{DesiredState, Millis, Task, TaskHealth, TaskState};

use super::VersionedSpec;

/// Where a rollout is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutPhase {
    /// Replacing old-version replicas batch by batch (or waiting for a canary's promotion).
    Progressing,
    /// Starts no replacement until `orion rollout resume` (paused by hand or by
    /// `failure_action: pause`; [`Rollout::reason`] says why).
    Paused,
    /// Every replica runs the rollout's version and serves.
    Completed,
}

impl RolloutPhase {
    /// Lower-case name, as in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutPhase::Progressing => "progressing",
            RolloutPhase::Paused => "paused",
            RolloutPhase::Completed => "completed",
        }
    }
}

/// The stored state of a service's latest rollout (one record per service).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollout {
    pub service: String,
    /// The spec version rolled out: the service's current version.
    pub version: u64,
    /// The version it replaces, what an automatic rollback or `undo` returns to; `None` for a
    /// first deploy.
    #[serde(default)]
    pub previous_version: Option<u64>,
    pub phase: RolloutPhase,
    /// Slots the new version may take until promoted; 0 once promoted (or without a canary).
    #[serde(default)]
    pub canary: u32,
    /// True while a batch of replacements is starting (the next one waits for it).
    #[serde(default)]
    pub batch_in_flight: bool,
    /// New-version replicas created in this rollout as of the end of the latest batch (a
    /// larger count means a batch started since).
    #[serde(default)]
    pub created: u32,
    /// The next batch starts at this time at the earliest (the previous batch served, plus
    /// `delay_seconds`).
    #[serde(default)]
    pub next_batch_at: Millis,
    /// Set when this rollout goes back to an older version: the version it left.
    #[serde(default)]
    pub rolled_back_from: Option<u64>,
    /// Why it paused or was rolled back, for humans.
    #[serde(default)]
    pub reason: Option<String>,
    pub started_at: Millis,
    pub updated_at: Millis,
}

impl Rollout {
    /// A new rollout of `version` replacing `previous`, started at `now`, with `canary` slots
    /// first (ignored without a previous version: there is nothing to compare with).
    pub fn new(
        service: &str,
        version: u64,
        previous: Option<u64>,
        canary: u32,
        now: Millis,
    ) -> Self {
        Rollout {
            service: service.to_owned(),
            version,
            previous_version: previous,
            phase: RolloutPhase::Progressing,
            canary: if previous.is_some() { canary } else { 0 },
            batch_in_flight: false,
            created: 0,
            next_batch_at: 0,
            rolled_back_from: None,
            reason: None,
            started_at: now,
            updated_at: now,
        }
    }

    /// Pauses it at `now` (`orion rollout pause`): no replacement starts until resumed.
    /// [`Error::Conflict`] unless it is progressing.
    pub fn pause(&mut self, now: Millis) -> Result<()> {
        self.expect(RolloutPhase::Progressing, "pause")?;
        self.phase = RolloutPhase::Paused;
        self.reason = Some("paused by hand".to_owned());
        self.updated_at = now;
        Ok(())
    }

    /// Resumes a paused rollout at `now` (`orion rollout resume`). Failures of replicas created
    /// before are forgotten (they are what paused it). [`Error::Conflict`] unless paused.
    pub fn resume(&mut self, now: Millis) -> Result<()> {
        self.expect(RolloutPhase::Paused, "resume")?;
        self.phase = RolloutPhase::Progressing;
        self.reason = None;
        self.started_at = now;
        self.created = 0;
        self.updated_at = now;
        Ok(())
    }

    /// Lets a canary rollout replace every slot (`orion rollout promote`). [`Error::Conflict`]
    /// when no canary waits.
    pub fn promote(&mut self, now: Millis) -> Result<()> {
        if self.canary == 0 || self.phase == RolloutPhase::Completed {
            return Err(Error::Conflict(format!(
                "the rollout of {:?} version {} has no canary waiting for promotion (it is {})",
                self.service,
                self.version,
                self.phase.as_str()
            )));
        }
        self.canary = 0;
        self.updated_at = now;
        Ok(())
    }

    fn expect(&self, phase: RolloutPhase, what: &str) -> Result<()> {
        if self.phase == phase {
            return Ok(());
        }
        Err(Error::Conflict(format!(
            "cannot {what} the rollout of {:?} version {}: it is {}, not {}",
            self.service,
            self.version,
            self.phase.as_str(),
            phase.as_str()
        )))
    }

    /// True when a canary is configured and not promoted yet.
    pub fn canary_waiting(&self) -> bool {
        self.canary > 0 && self.phase == RolloutPhase::Progressing
    }
}

/// What the reconciler may do with a service's old-version tasks this round.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutGate {
    /// Start no replacement of an old-version task (paused, batch in flight, delay, failed).
    #[serde(default)]
    pub hold: bool,
    /// At most this many slots may hold the current version (a canary not promoted yet).
    #[serde(default)]
    pub max_new_slots: Option<u32>,
}

/// What [`step`] decided for one service.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The record as it should be stored (equal to the one read when nothing changed).
    pub record: Rollout,
    /// The update failed under `failure_action: rollback`: write this version's spec back.
    pub rollback_to: Option<u64>,
    /// Why, when `rollback_to` is set.
    pub failure: Option<String>,
    pub gate: RolloutGate,
    /// Decide again at this time at the latest (a health wait or a delay ends).
    pub wake_at: Option<Millis>,
}

/// Decides one service's rollout from its spec, its tasks (any order; other services' tasks are
/// ignored), its stored record and the time. Pure; see the module docs for the rules.
pub fn step(vs: &VersionedSpec, tasks: &[Task], record: Option<&Rollout>, now: Millis) -> Step {
    let own: Vec<&Task> = tasks.iter().filter(|t| t.service == vs.spec.name).collect();
    step_own(vs, &own, record, now)
}

/// The tasks of each service, by service name, in `tasks` order: one pass, for calling
/// [`step_own`] on every service (instead of [`step`], which scans all tasks per service).
pub fn tasks_by_service(tasks: &[Task]) -> StableMap<&str, Vec<&Task>> {
    let mut by_service: StableMap<&str, Vec<&Task>> = StableMap::default();
    for t in tasks {
        by_service.entry(t.service.as_str()).or_default().push(t);
    }
    by_service
}

/// [`step`] over `own`, the service's tasks (those whose `service` is the spec's name, in the
/// state's order), already picked out by [`tasks_by_service`].
pub fn step_own(vs: &VersionedSpec, own: &[&Task], record: Option<&Rollout>, now: Millis) -> Step {
    let spec = &vs.spec;
    let version = vs.version;
    let mut r = match record {
        Some(r) if r.version == version && r.service == spec.name => r.clone(),
        _ => {
            // A new spec version: what it replaces is the previous record's version or, with no
            // record (a cluster older than rollouts), the newest older version still running.
            let previous = record.map(|r| r.version).or_else(|| {
                own.iter()
                    .filter(|t| t.is_active() && t.spec_version != version)
                    .map(|t| t.spec_version)
                    .max()
            });
            Rollout::new(
                &spec.name,
                version,
                previous,
                spec.update_strategy.canary,
                now,
            )
        }
    };
    let mut out = Step {
        record: r.clone(),
        rollback_to: None,
        failure: None,
        gate: RolloutGate::default(),
        wake_at: None,
    };
    if r.phase == RolloutPhase::Completed || r.previous_version.is_none() {
        if r.phase != RolloutPhase::Completed && !own.iter().any(|t| is_old(t, version)) {
            r.phase = RolloutPhase::Completed;
            r.updated_at = now;
        }
        out.record = r;
        return out;
    }
    let strategy = &spec.update_strategy;
    let first_check = spec.health_check.as_ref().map_or(0, |h| h.interval);
    let wait_ms = first_check
        .saturating_add(strategy.health_wait_seconds)
        .saturating_mul(1000);
    let fresh: Vec<&Task> = own
        .iter()
        .copied()
        .filter(|t| t.spec_version == version && t.created_at >= r.started_at)
        .collect();
    let failed = fresh
        .iter()
        .find_map(|t| failure_of(t, now, wait_ms).map(|why| format!("replica {}: {why}", t.id)));
    if let Some(why) = &failed
        && r.phase == RolloutPhase::Progressing
    {
        match strategy.failure_action {
            FailureAction::Continue => {}
            FailureAction::Rollback if r.rolled_back_from.is_none() => {
                out.rollback_to = r.previous_version;
                out.failure = Some(why.clone());
            }
            FailureAction::Rollback | FailureAction::Pause => {
                r.phase = RolloutPhase::Paused;
                r.reason = Some(if strategy.failure_action == FailureAction::Pause {
                    format!("failed ({why}); failure_action is pause")
                } else {
                    format!("the rollback failed too ({why}); paused")
                });
                r.updated_at = now;
            }
        }
    }
    // A batch is in flight while a new replica is neither serving nor given up on.
    let starting: Vec<&Task> = fresh
        .iter()
        .copied()
        .filter(|t| t.is_active() && !t.is_serving() && failure_of(t, now, wait_ms).is_none())
        .collect();
    for t in &starting {
        out.wake_at = min_time(out.wake_at, t.created_at.saturating_add(wait_ms));
    }
    let refilling = stopped_first(own, version, spec.replicas);
    if !starting.is_empty() || refilling {
        if !r.batch_in_flight {
            r.batch_in_flight = true;
            r.updated_at = now;
        }
    } else if r.batch_in_flight || fresh.len() as u32 > r.created {
        // The batch ended (every new replica serves, or was given up on).
        r.batch_in_flight = false;
        r.created = fresh.len() as u32;
        r.next_batch_at = now.saturating_add(strategy.delay_seconds.saturating_mul(1000));
        r.updated_at = now;
    }
    let old_left = own.iter().any(|t| is_old(t, version));
    if !old_left
        && !refilling
        && starting.is_empty()
        && failed.is_none()
        && r.phase == RolloutPhase::Progressing
    {
        r.phase = RolloutPhase::Completed;
        r.canary = 0;
        r.updated_at = now;
    }
    out.gate.hold = r.phase == RolloutPhase::Paused
        || out.rollback_to.is_some()
        || r.batch_in_flight
        || now < r.next_batch_at;
    if now < r.next_batch_at {
        out.wake_at = min_time(out.wake_at, r.next_batch_at);
    }
    if r.canary > 0 {
        out.gate.max_new_slots = Some(r.canary);
    }
    out.record = r;
    out
}

/// The services of `state` at their versions, each gated by [`step`] over its stored record at
/// `now`, and the earliest time a wait ends, if any.
pub(super) fn gated_specs(
    state: &crate::store::ClusterState,
    now: Millis,
) -> (Vec<VersionedSpec>, Option<Millis>) {
    let mut wake_at: Option<Millis> = None;
    let by_service = tasks_by_service(&state.tasks);
    let specs = state
        .services
        .iter()
        .map(|s| {
            let vs = VersionedSpec::new(s.spec.clone(), s.spec_version);
            let own = by_service
                .get(s.spec.name.as_str())
                .map_or(&[][..], Vec::as_slice);
            let step = step_own(&vs, own, state.rollouts.get(&s.spec.name), now);
            if let Some(at) = step.wake_at {
                wake_at = min_time(wake_at, at);
            }
            vs.with_gate(step.gate)
        })
        .collect();
    (specs, wake_at)
}

/// An active task from another spec version than `version`.
fn is_old(t: &Task, version: u64) -> bool {
    t.is_active() && t.spec_version != version
}

/// True while an old replica stopped first (`update_strategy.max_surge`) waits for its new one:
/// fewer than `replicas` tasks are active, and an old-version task is stopping or stopped with
/// no active task in its slot.
fn stopped_first(own: &[&Task], version: u64, replicas: u32) -> bool {
    let active: Vec<&Task> = own.iter().copied().filter(|t| t.is_active()).collect();
    (active.len() as u32) < replicas
        && own.iter().any(|t| {
            t.spec_version != version
                && t.desired == DesiredState::Shutdown
                && !matches!(
                    t.state,
                    TaskState::Failed | TaskState::Completed | TaskState::Lost | TaskState::Pending
                )
                && !active.iter().any(|a| a.slot == t.slot)
        })
}

/// Why new replica `t` fails its rollout, if it does (see the module docs).
fn failure_of(t: &Task, now: Millis, wait_ms: Millis) -> Option<String> {
    if t.state == TaskState::Failed {
        let error = t.error.as_deref().unwrap_or("no error recorded");
        return Some(format!("failed: {error}"));
    }
    if t.restarts > 0 {
        return Some(format!("restarted {} times in place", t.restarts));
    }
    if t.health == TaskHealth::Unhealthy {
        return Some("unhealthy".to_owned());
    }
    if t.is_active() && !t.is_serving() && now >= t.created_at.saturating_add(wait_ms) {
        return Some(format!(
            "not serving {} s after its creation (state {}, health {})",
            wait_ms / 1000,
            t.state,
            t.health
        ));
    }
    None
}

fn min_time(a: Option<Millis>, b: Millis) -> Option<Millis> {
    Some(a.map_or(b, |a| a.min(b)))
}
