//! Rebalancing: when a node joins or comes back, running replicas move to it gradually, start
//! new then stop old, within a disruption budget and only when the gain in balance is worth it.
//! Swarm never does this (a returning node stays empty until something else changes).
//!
//! - **Measure.** For each service, the replicas per node: the kept task of every occupied slot
//!   counts on its node. A replica moves from node `A` to node `B` only when `A` runs at least
//!   [`RebalancePolicy::min_spread`] more replicas of the service than `B` (at least 2: a
//!   difference of 1 cannot be improved). Each move lowers the sum of squares of the counts, so
//!   rebalancing converges and never moves a replica back and forth over a fixed set of nodes.
//!   With `scheduling.spread_by`, a move between two label values is made only when the target's
//!   value runs fewer replicas than the source's, so the spread over the label never worsens.
//! - **Which service.** Only a service at rest: every slot's kept task is from the current spec
//!   version, on a `Ready` node, serving, alone in its slot, and nothing is pending, refilled,
//!   drained, moved, updated or backing off. A service whose rebalancing replacement failed
//!   within the cooldown waits for the cooldown's end.
//! - **Where to.** The least loaded node that the scheduler's filters (constraints, resources,
//!   ports, network rules...) and the reconciler's guard accept, that has been `Ready` (its
//!   record unchanged) for [`RebalancePolicy::cooldown`]: a flapping node gets nothing. Ties go to
//!   the lowest node id. It never places on a node a filter rejects.
//! - **Which replica.** On the most loaded node, the one in the highest slot that has run at
//!   least the cooldown (so a replica moves at most once per cooldown).
//! - **How.** As a move (module `moves`): the replacement is created in the same slot on the
//!   target node, with [`Task::moved_because`] starting with [`REBALANCE_PREFIX`] (the record:
//!   which nodes, and the service's spread before and after). While it exists, the old task is
//!   treated as leaving: it keeps running until the replacement serves, then is stopped
//!   ([`StopReason::Rebalanced`](super::StopReason::Rebalanced)). A replacement that never
//!   serves (it fails, or its node goes down) leaves the old task where it is.
//! - **Budget.** At most [`RebalancePolicy::max_in_flight`] moves in flight across the cluster
//!   (0 turns rebalancing off), and `update_strategy.parallelism` per service: a service starts
//!   its next moves only once the previous ones serve. The running count therefore never drops
//!   below `replicas`.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::model::{Millis, NodeStatus, Task, TaskState};

use super::placer::{Placer, new_task};
use super::{Action, Purpose, Round, ServiceWork};

/// How a rebalancing move's [`Task::moved_because`] starts; it tells a rebalancing replacement
/// from a re-placement (module `moves`).
pub const REBALANCE_PREFIX: &str = "rebalance:";

/// Rebalancing's knobs (`scheduler.rebalance` in orion.yaml).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RebalancePolicy {
    /// Rebalancing moves in flight across the cluster at most; 0 turns rebalancing off.
    pub max_in_flight: u32,
    /// A replica moves only when its node runs at least this many more replicas of its service
    /// than the node it moves to; at least 2.
    pub min_spread: u32,
    /// A node receives replicas only once it has been `Ready` this long, and a replica moves
    /// only once it has run this long.
    pub cooldown: Millis,
}

impl Default for RebalancePolicy {
    fn default() -> Self {
        RebalancePolicy {
            max_in_flight: 2,
            min_spread: 2,
            cooldown: 60_000,
        }
    }
}

impl<'a> Round<'a> {
    /// Finds the tasks a rebalancing move is taking over from: in a slot whose newest active
    /// task is a rebalancing replacement (from the current version), the older active tasks of
    /// the current version on other nodes. They are treated like misplaced tasks.
    pub(super) fn find_rebalancing(&mut self) {
        // One pass over the tasks: the slots with an active rebalancing replacement (rare), and
        // per service when its latest failed one (failed, lost) frees its rebalancing again.
        let cooldown = self.input.policy.rebalance.cooldown;
        let mut marked: HashMap<(&'a str, u32), &'a Task> = HashMap::new();
        for &t in &self.tasks {
            if !t
                .moved_because
                .as_deref()
                .is_some_and(|m| m.starts_with(REBALANCE_PREFIX))
            {
                continue;
            }
            if self.is_active(t) {
                marked.insert((t.service.as_str(), t.slot), t);
            } else if t.state != TaskState::Stopped {
                let until = self
                    .rebalance_held_until
                    .entry(t.service.as_str())
                    .or_default();
                *until = (*until).max(t.created_at.saturating_add(cooldown));
            }
        }
        if marked.is_empty() {
            return;
        }
        let mut slots: HashMap<(&str, u32), Vec<&'a Task>> = HashMap::new();
        for &t in &self.tasks {
            let Some(vs) = self.specs.get(t.service.as_str()) else {
                continue;
            };
            let key = (t.service.as_str(), t.slot);
            if marked.contains_key(&key) && self.is_active(t) && t.spec_version == vs.version {
                slots.entry(key).or_default().push(t);
            }
        }
        for tasks in slots.into_values().filter(|ts| ts.len() > 1) {
            let Some(newest) = tasks.iter().copied().max_by_key(|t| (t.created_at, &t.id)) else {
                continue;
            };
            let Some(why) = newest
                .moved_because
                .as_deref()
                .filter(|m| m.starts_with(REBALANCE_PREFIX))
            else {
                continue;
            };
            for &old in &tasks {
                if old.id != newest.id && old.node != newest.node {
                    self.rebalancing.insert(old.id.as_str());
                    self.misplaced
                        .entry(old.id.as_str())
                        .or_insert_with(|| why.to_owned());
                }
            }
        }
    }

    /// Starts rebalancing moves within the budget; see the module docs.
    pub(super) fn place_rebalancing(&mut self, works: &[ServiceWork<'a>], placer: &mut Placer<'_>) {
        let policy = self.input.policy.rebalance;
        if policy.max_in_flight == 0 {
            return;
        }
        let in_flight: u32 = works.iter().map(|w| w.rebalances_in_flight).sum();
        let mut left = policy.max_in_flight.saturating_sub(in_flight);
        for w in works {
            if left == 0 {
                return;
            }
            if !self.at_rest(w) {
                continue;
            }
            let started = self.rebalance_service(w, placer, left);
            left -= started;
        }
    }

    /// True when `w`'s service may be rebalanced (module docs, "Which service").
    fn at_rest(&mut self, w: &ServiceWork<'a>) -> bool {
        if w.busy
            || !w.pending.is_empty()
            || !w.refills.is_empty()
            || !w.drains.is_empty()
            || !w.moves.is_empty()
            || !w.updates.is_empty()
            || w.updates_in_flight + w.moves_in_flight + w.rebalances_in_flight > 0
            || w.kept.len() < 2
        {
            return false;
        }
        // A rebalancing replacement that failed (or was lost) recently: wait for the cooldown.
        let failed_at = self
            .rebalance_held_until
            .get(w.spec.spec.name.as_str())
            .copied();
        if let Some(at) = failed_at
            && self.input.now < at
        {
            self.retry_at(at);
            return false;
        }
        true
    }

    /// Starts at most `left` (and the service's parallelism) moves of one service at rest;
    /// returns how many it started.
    fn rebalance_service(
        &mut self,
        w: &ServiceWork<'a>,
        placer: &mut Placer<'_>,
        left: u32,
    ) -> u32 {
        let policy = self.input.policy.rebalance;
        let (vs, now, nodes) = (w.spec, self.input.now, self.input.nodes);
        let spec = &vs.spec;
        let min_spread = policy.min_spread.max(2);
        let movable = |t: &Task| t.created_at.saturating_add(policy.cooldown) <= now;
        // Per node: replicas of the service, and how many of them may move (counted, not
        // listed: this runs for every service at rest in every round, and the one task moved
        // is looked up only once its node is chosen).
        let mut counts: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
        for &t in &w.kept {
            if let Some((&n, _)) = t
                .node
                .as_deref()
                .and_then(|n| self.node_status.get_key_value(n))
            {
                let entry = counts.entry(n).or_default();
                entry.0 += 1;
                entry.1 += u32::from(movable(t));
            }
        }
        // Tasks this call has moved already.
        let mut moved: Vec<&str> = Vec::new();
        let spread_label = spec.scheduling.spread_by.as_deref();
        let labels: HashMap<&str, &str> = match spread_label {
            Some(l) => nodes
                .iter()
                .filter_map(|n| Some((n.id.as_str(), n.labels.get(l)?.as_str())))
                .collect(),
            None => HashMap::new(),
        };
        let label_of = |node: &str| -> String {
            labels
                .get(node)
                .map(|v| (*v).to_owned())
                .unwrap_or_default()
        };
        let mut by_label: HashMap<String, u32> = HashMap::new();
        if spread_label.is_some() {
            for (n, (count, _)) in &counts {
                *by_label.entry(label_of(n)).or_default() += count;
            }
        }
        let budget = spec.update_strategy.parallelism.max(1).min(left);
        let mut started = 0;
        while started < budget {
            // Sources: the most loaded nodes first (ties: the lowest id), each with a replica
            // old enough to move.
            let mut sources: Vec<(u32, &str)> = counts
                .iter()
                .filter(|(_, (count, movers))| *movers > 0 && *count >= min_spread)
                .map(|(n, (count, _))| (*count, *n))
                .collect();
            sources.sort_by_key(|&(count, n)| (Reverse(count), n));
            let mut placed = None;
            'sources: for (high, source) in sources {
                // Targets: ready for the cooldown, few enough replicas; least loaded first.
                let mut targets: Vec<(u32, &str)> = Vec::new();
                for n in nodes {
                    let count = counts.get(n.id.as_str()).map_or(0, |c| c.0);
                    if n.status != NodeStatus::Ready || n.id == source || count + min_spread > high
                    {
                        continue;
                    }
                    let settled_at = n.updated_at.saturating_add(policy.cooldown);
                    if now < settled_at {
                        self.retry_at(settled_at);
                        continue;
                    }
                    let (from, to) = (label_of(source), label_of(&n.id));
                    if from != to && by_label.get(&to) >= by_label.get(&from) {
                        continue;
                    }
                    targets.push((count, n.id.as_str()));
                }
                targets.sort();
                let Some(old) = (w.kept.iter().copied())
                    .filter(|t| t.node.as_deref() == Some(source) && movable(t))
                    .filter(|t| !moved.contains(&t.id.as_str()))
                    .max_by_key(|t| t.slot)
                else {
                    continue;
                };
                for (low, target) in targets {
                    if !placer.fits(spec, spec.resources.into(), target) {
                        continue;
                    }
                    if self.creates_left == 0 {
                        self.plan.more = true;
                        return started;
                    }
                    let id = self
                        .ids
                        .make(&spec.name, old.slot, vs.version, Some(&old.id));
                    if placer
                        .place_on(spec, &id, spec.resources.into(), target)
                        .is_ok()
                    {
                        self.creates_left -= 1;
                        placed = Some((source, high, old, id, target, low));
                        break 'sources;
                    }
                }
            }
            // None: no node with few enough replicas can take one; as balanced as it gets.
            let Some((source, high, old, id, target, low)) = placed else {
                break;
            };
            let because = format!(
                "{REBALANCE_PREFIX} moved from {source} ({high} replicas of {name}) to {target} \
                 ({low}): a difference of {diff}, at least {min_spread} moves one",
                name = spec.name,
                diff = high - low,
            );
            let mut task = new_task(
                spec,
                vs.version,
                id,
                old.slot,
                Some(target.to_owned()),
                None,
                now,
            );
            task.moved_because = Some(because.into());
            self.plan.actions.push(Action::Create {
                task,
                purpose: Purpose::Rebalance,
                replaces: Some(old.id.to_string()),
            });
            if let Some(c) = by_label.get_mut(&label_of(source)) {
                *c -= 1;
            }
            if spread_label.is_some() {
                *by_label.entry(label_of(target)).or_default() += 1;
            }
            if let Some((count, movers)) = counts.get_mut(source) {
                *count -= 1;
                *movers -= 1;
            }
            moved.push(old.id.as_str());
            // The replacement counts on its node, and does not move again this round.
            counts.entry(target).or_default().0 += 1;
            started += 1;
        }
        started
    }
}
