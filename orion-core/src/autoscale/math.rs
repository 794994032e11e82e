//! The autoscaling decision, as pure functions of what the controller read.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::{DEFAULT_TARGET_CPU, ScaleDecision, ServiceUsage};
use crate::model::Millis;
use crate::model::spec::ScalePolicy;

/// A usage within this fraction of its target recommends no change (Kubernetes's 10 %).
pub const TOLERANCE: f64 = 0.1;

/// Recommendations a window keeps at most (an hour at one a second).
const MAX_WINDOW_ENTRIES: usize = 3700;

/// What an evaluation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// More replicas.
    ScaleUp,
    /// Fewer replicas.
    ScaleDown,
    /// `replicas` was outside `min_replicas..=max_replicas` and was brought inside.
    Clamp,
    /// Usage is on target (within the tolerance) or the bound is reached: no change.
    Steady,
    /// No fresh stats: no change either way.
    NoStats,
    /// A scale-down held by the stabilization window.
    Stabilizing,
    /// A change held until the cooldown since the last one ends.
    Cooldown,
}

impl Outcome {
    /// The name shown by `orion status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::ScaleUp => "scale-up",
            Outcome::ScaleDown => "scale-down",
            Outcome::Clamp => "clamp",
            Outcome::Steady => "steady",
            Outcome::NoStats => "no-stats",
            Outcome::Stabilizing => "stabilizing",
            Outcome::Cooldown => "cooldown",
        }
    }
}

/// The recommendations of one service over its scale-down stabilization window, kept by the
/// leader in memory. A new leader starts an empty window and scales nothing down until it has
/// watched a whole window (`since` is when it started), so a leader change never shortens one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecommendationWindow {
    since: Millis,
    entries: VecDeque<(Millis, u32)>,
}

impl RecommendationWindow {
    /// An empty window, watched from `since`.
    pub fn new(since: Millis) -> Self {
        RecommendationWindow {
            since,
            entries: VecDeque::new(),
        }
    }

    /// Adds `recommendation` made at `now` and forgets those older than `window_ms`.
    pub fn push(&mut self, now: Millis, recommendation: u32, window_ms: u64) {
        self.entries.push_back((now, recommendation));
        let oldest = now.saturating_sub(window_ms);
        while self.entries.len() > MAX_WINDOW_ENTRIES
            || self.entries.front().is_some_and(|(at, _)| *at < oldest)
        {
            self.entries.pop_front();
        }
    }

    /// The highest recommendation kept.
    pub fn highest(&self) -> Option<u32> {
        self.entries.iter().map(|(_, r)| *r).max()
    }

    /// Whether a whole window of `window_ms` has been watched by `now`.
    pub fn covers(&self, now: Millis, window_ms: u64) -> bool {
        now.saturating_sub(self.since) >= window_ms
    }
}

/// What [`evaluate`] decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// The replicas to run (the current count when held).
    pub to: u32,
    pub outcome: Outcome,
    pub reason: String,
    pub usage: Option<ServiceUsage>,
}

impl Evaluation {
    /// This evaluation as a stored decision, from `from` replicas at `at`.
    pub fn decision(&self, from: u32, at: Millis, policy: &ScalePolicy) -> ScaleDecision {
        let (target_cpu, target_memory) = targets(policy);
        ScaleDecision {
            at,
            from,
            to: self.to,
            outcome: self.outcome,
            usage: self.usage,
            target_cpu,
            target_memory,
            reason: self.reason.clone(),
        }
    }
}

/// The targets in effect: the policy's, or [`DEFAULT_TARGET_CPU`] when it sets none.
pub fn targets(policy: &ScalePolicy) -> (Option<f64>, Option<f64>) {
    match (policy.target_cpu, policy.target_memory) {
        (None, None) => (Some(DEFAULT_TARGET_CPU), None),
        t => t,
    }
}

/// The unclamped replica count `usage` asks for with `current` replicas: for each target,
/// `ceil(current x usage / target)`, or `current` within [`TOLERANCE`]; the larger of the two.
/// Also says how it got there.
pub fn recommend(current: u32, usage: &ServiceUsage, policy: &ScalePolicy) -> (u32, String) {
    let (target_cpu, target_memory) = targets(policy);
    let base = f64::from(current.max(1));
    let mut best = None::<u32>;
    let mut why = Vec::new();
    for (name, used, target) in [
        ("cpu", usage.cpu_percent, target_cpu),
        ("memory", usage.memory_percent, target_memory),
    ] {
        let Some(target) = target else { continue };
        let ratio = used / target;
        let wanted = if !ratio.is_finite() || (ratio - 1.0).abs() <= TOLERANCE + 1e-9 {
            current
        } else {
            // Bounded: ratio x current fits in u32 for any sane usage; saturate otherwise.
            (base * ratio).ceil().clamp(0.0, f64::from(u32::MAX)) as u32
        };
        why.push(format!(
            "{name} {used:.0}% of target {target:.0}%: {wanted}"
        ));
        best = Some(best.map_or(wanted, |b| b.max(wanted)));
    }
    (best.unwrap_or(current), why.join(", "))
}

/// Decides the replicas of a service running `current` at `now` under `policy`, given its
/// fresh `usage` (None when stale or missing), when the autoscaler last changed it, and its
/// stabilization `window` (which this updates).
pub fn evaluate(
    now: Millis,
    current: u32,
    policy: &ScalePolicy,
    usage: Option<ServiceUsage>,
    last_change_at: Option<Millis>,
    window: &mut RecommendationWindow,
) -> Evaluation {
    let (min, max) = (
        policy.min_replicas,
        policy.max_replicas.max(policy.min_replicas),
    );
    let held = |outcome, reason: String| Evaluation {
        to: current,
        outcome,
        reason,
        usage,
    };
    if !(min..=max).contains(&current) {
        let to = current.clamp(min, max);
        return Evaluation {
            to,
            outcome: Outcome::Clamp,
            reason: format!(
                "{current} replicas is outside min_replicas..max_replicas ({min}-{max})"
            ),
            usage,
        };
    }
    let Some(u) = usage else {
        return held(
            Outcome::NoStats,
            "no fresh usage from the service's tasks: not scaling either way".to_owned(),
        );
    };
    let (raw, why) = recommend(current, &u, policy);
    let recommended = raw.clamp(min, max);
    let bounded = if recommended != raw {
        format!(" (bounded to {recommended} by {min}-{max})")
    } else {
        String::new()
    };
    let window_ms = policy.stabilization_seconds.saturating_mul(1000);
    window.push(now, recommended, window_ms);
    let wanted = match recommended.cmp(&current) {
        std::cmp::Ordering::Equal => {
            return held(
                Outcome::Steady,
                format!("{why} over {} replicas{bounded}", u.replicas),
            );
        }
        std::cmp::Ordering::Greater => recommended,
        std::cmp::Ordering::Less => {
            let secs = policy.stabilization_seconds;
            if !window.covers(now, window_ms) {
                return held(
                    Outcome::Stabilizing,
                    format!(
                        "{why}{bounded}; a scale-down waits until a whole stabilization window \
                         ({secs}s) has been watched"
                    ),
                );
            }
            let highest = window.highest().unwrap_or(current);
            if highest >= current {
                return held(
                    Outcome::Stabilizing,
                    format!(
                        "{why}{bounded}; the highest recommendation over the last {secs}s is \
                         {highest}"
                    ),
                );
            }
            highest.max(recommended)
        }
    };
    if let Some(at) = last_change_at {
        let cooldown_ms = policy.cooldown_seconds.saturating_mul(1000);
        if now < at.saturating_add(cooldown_ms) {
            return held(
                Outcome::Cooldown,
                format!(
                    "{why}{bounded}; {wanted} waits for the cooldown: the last change was {}s \
                     ago (cooldown {}s)",
                    now.saturating_sub(at) / 1000,
                    policy.cooldown_seconds
                ),
            );
        }
    }
    Evaluation {
        to: wanted,
        outcome: if wanted > current {
            Outcome::ScaleUp
        } else {
            Outcome::ScaleDown
        },
        reason: format!("{why}{bounded} over {} replicas", u.replicas),
        usage,
    }
}
