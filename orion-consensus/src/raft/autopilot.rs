//! Autopilot (as Consul's): on the leader, removes voters that have been dead for a grace period
//! and keeps the voters an odd number, at most [`MAX_VOTERS`], by promoting live, caught-up
//! learners (and, rarely, demoting a voter).
//!
//! Every [`AutopilotConfig::interval`] the leader probes each other member on its Raft port
//! ([`LeaderRequest::Probe`], through the transport and so through the fault layer), with the
//! election timeout (`election_timeout_max`) as the deadline:
//!
//! - **live**: answered the latest probe, i.e. heard from within the election timeout;
//! - **dead**: has not answered any probe for [`AutopilotConfig::dead_voter_grace`];
//! - **caught up**: the leader's replication has matched its log up to within
//!   [`AutopilotConfig::max_lag`] entries of the leader's last log index.
//!
//! [`plan`] then decides the new voter set: voters dead past the grace are dropped, live
//! caught-up learners are promoted until the voters are `target_voters(members)`. It never
//! touches the leader, never leaves fewer than `min(3, current voters)` voters (a 3-voter cluster
//! with a dead voter and nobody to replace it keeps the dead voter: dropping it would not add
//! fault tolerance and would lose a copy of every write), and does nothing while a membership
//! change is in progress. A removed node that comes back rejoins by `join`, as a new learner.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::future::join_all;
use openraft::{ChangeMembers, ServerState};
use tokio::sync::watch;
use tokio::time::{Instant, timeout};

use super::leader::{LeaderRequest, LeaderResponse, MAX_VOTERS, target_voters};
use super::network::paths;
use super::{NodeId, OrionRaft};
use crate::error::{Error as ConsensusError, Result};
use crate::transport::Transport;

/// When the autopilot acts. Part of [`super::RaftConfig`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutopilotConfig {
    /// A voter that has answered no probe for this long is removed (and replaced when a live,
    /// caught-up learner exists). `None` turns dead-voter removal off (promotion still runs).
    ///
    /// Default 30 s: long enough that a restarted process or a short network blip (seconds)
    /// never changes the membership, short enough that a cluster does not sit for minutes one
    /// failure away from losing its quorum when a spare learner could take the dead voter's
    /// place. A node removed by mistake comes back as a learner by joining again.
    pub dead_voter_grace: Option<Duration>,
    /// How often the leader probes the members and reconsiders the voters (default 1 s).
    pub interval: Duration,
    /// A learner is caught up when its matched log index is within this many entries of the
    /// leader's last log index (default 1,000, about one batch of writes in flight).
    pub max_lag: u64,
}

impl Default for AutopilotConfig {
    fn default() -> Self {
        Self {
            dead_voter_grace: Some(Duration::from_secs(30)),
            interval: Duration::from_secs(1),
            max_lag: 1_000,
        }
    }
}

impl AutopilotConfig {
    /// Checks the ranges: interval 10 ms to 60 s, grace 100 ms to 7 days, lag at least 1.
    pub(crate) fn validate(&self) -> Result<()> {
        let invalid = |field, value: String, expected: &str| ConsensusError::RaftConfig {
            field,
            value,
            expected: expected.to_owned(),
        };
        if !(Duration::from_millis(10)..=Duration::from_secs(60)).contains(&self.interval) {
            return Err(invalid(
                "autopilot.interval",
                format!("{:?}", self.interval),
                "between 10ms and 60s",
            ));
        }
        if let Some(grace) = self.dead_voter_grace
            && !(Duration::from_millis(100)..=Duration::from_secs(7 * 24 * 3600)).contains(&grace)
        {
            return Err(invalid(
                "autopilot.dead_voter_grace",
                format!("{grace:?}"),
                "between 100ms and 7 days, or none",
            ));
        }
        if self.max_lag == 0 {
            return Err(invalid("autopilot.max_lag", "0".into(), "at least 1"));
        }
        Ok(())
    }
}

/// What the leader knows at one tick; the input of [`plan`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Facts {
    pub leader: NodeId,
    pub voters: BTreeSet<NodeId>,
    pub learners: BTreeSet<NodeId>,
    /// Learners admitted as workers: never promoted (see `super::workers`).
    pub workers: BTreeSet<NodeId>,
    /// Members that answered the latest probe (the leader counts as live).
    pub live: BTreeSet<NodeId>,
    /// Members dead for longer than the grace period.
    pub dead: BTreeSet<NodeId>,
    /// Matched log index per member, from the leader's replication; a member the leader has
    /// not matched any entry with yet is absent (and so never caught up).
    pub matched: BTreeMap<NodeId, u64>,
    pub last_log_index: u64,
    pub max_lag: u64,
}

/// A membership change decided by [`plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change {
    /// The voters after the change.
    pub voters: BTreeSet<NodeId>,
    /// Members removed entirely (dead voters).
    pub removed: BTreeSet<NodeId>,
}

/// The voter set the cluster should move to, or `None` when it is fine as it is (see the
/// module doc for the rules).
pub(crate) fn plan(f: &Facts) -> Option<Change> {
    let caught_up = |id: &NodeId| {
        f.matched
            .get(id)
            .is_some_and(|m| f.last_log_index.saturating_sub(*m) <= f.max_lag)
    };
    // Live, caught-up learners, most caught-up first, then by id.
    let mut eligible: Vec<NodeId> = f
        .learners
        .iter()
        .copied()
        .filter(|l| {
            f.live.contains(l) && !f.dead.contains(l) && !f.workers.contains(l) && caught_up(l)
        })
        .collect();
    eligible.sort_by_key(|l| (std::cmp::Reverse(f.matched.get(l).copied()), *l));
    let removable: BTreeSet<NodeId> = f
        .voters
        .iter()
        .copied()
        .filter(|v| *v != f.leader && f.dead.contains(v))
        .collect();
    let floor = f.voters.len().min(3);
    for dropped in [removable, BTreeSet::new()] {
        let mut voters: BTreeSet<NodeId> = f.voters.difference(&dropped).copied().collect();
        let wanted = target_voters(voters.len() + eligible.len()).min(MAX_VOTERS);
        if wanted < floor {
            continue;
        }
        if wanted > voters.len() {
            let missing = wanted - voters.len();
            voters.extend(eligible.iter().take(missing));
        } else if wanted < voters.len() {
            // Demote the least useful voters: not the leader; not live first, then least matched.
            let mut by_use: Vec<NodeId> =
                voters.iter().copied().filter(|v| *v != f.leader).collect();
            by_use.sort_by_key(|v| (f.live.contains(v), f.matched.get(v).copied(), *v));
            for v in by_use.into_iter().take(voters.len() - wanted) {
                voters.remove(&v);
            }
        }
        if voters == f.voters && dropped.is_empty() {
            return None;
        }
        return Some(Change {
            voters,
            removed: dropped,
        });
    }
    None
}

/// The autopilot task's state on one node.
struct Autopilot {
    raft: OrionRaft,
    transport: Transport,
    config: AutopilotConfig,
    probe_timeout: Duration,
    change_timeout: Duration,
    workers: super::workers::Workers,
    /// Since when each member has not answered (absent: it answered the latest probe).
    silent_since: BTreeMap<NodeId, Instant>,
}

/// Runs the autopilot until `stop` turns true; it acts only while this node leads.
pub(crate) async fn run(
    raft: OrionRaft,
    transport: Transport,
    config: AutopilotConfig,
    probe_timeout: Duration,
    change_timeout: Duration,
    workers: super::workers::Workers,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(config.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pilot = Autopilot {
        raft,
        transport,
        config,
        probe_timeout,
        change_timeout,
        workers,
        silent_since: BTreeMap::new(),
    };
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    return;
                }
                continue;
            }
        }
        if let Err(e) = pilot.tick().await {
            tracing::warn!(error = %e, "autopilot: membership change failed; retrying next tick");
        }
    }
}

impl Autopilot {
    async fn tick(&mut self) -> Result<()> {
        let m = self.raft.metrics().borrow().clone();
        if m.state != ServerState::Leader || m.current_leader != Some(m.id) {
            // A new leader starts every grace period afresh.
            self.silent_since.clear();
            return Ok(());
        }
        let membership = m.membership_config.membership();
        if membership.get_joint_config().len() > 1 {
            return Ok(()); // a change is in progress
        }
        let others: Vec<(NodeId, String)> = membership
            .nodes()
            .filter(|(id, _)| **id != m.id)
            .map(|(id, n)| (*id, n.addr.clone()))
            .collect();
        let answers = join_all(others.iter().map(|(id, addr)| self.probe(*id, addr))).await;
        let now = Instant::now();
        let mut live = BTreeSet::from([m.id]);
        for ((id, _), alive) in others.iter().zip(answers) {
            if alive {
                live.insert(*id);
                self.silent_since.remove(id);
            } else {
                self.silent_since.entry(*id).or_insert(now);
            }
        }
        self.silent_since
            .retain(|id, _| others.iter().any(|(o, _)| o == id));
        let dead = match self.config.dead_voter_grace {
            Some(grace) => self
                .silent_since
                .iter()
                .filter(|(_, since)| now.duration_since(**since) >= grace)
                .map(|(id, _)| *id)
                .collect(),
            None => BTreeSet::new(),
        };
        let matched = m
            .replication
            .iter()
            .flatten()
            .filter_map(|(id, l)| l.as_ref().map(|l| (*id, l.index)))
            .collect();
        let facts = Facts {
            leader: m.id,
            voters: membership.voter_ids().collect(),
            learners: membership.learner_ids().collect(),
            workers: self.workers.ids().await,
            live,
            dead,
            matched,
            last_log_index: m.last_log_index.unwrap_or(0),
            max_lag: self.config.max_lag,
        };
        let Some(change) = plan(&facts) else {
            return Ok(());
        };
        tracing::info!(
            from = ?facts.voters,
            to = ?change.voters,
            removed = ?change.removed,
            "autopilot: changing the voters"
        );
        if change.voters != facts.voters {
            self.commit(ChangeMembers::ReplaceAllVoters(change.voters), true)
                .await?;
        }
        if !change.removed.is_empty() {
            self.commit(ChangeMembers::RemoveNodes(change.removed.clone()), false)
                .await?;
            for id in &change.removed {
                self.silent_since.remove(id);
            }
        }
        Ok(())
    }

    async fn probe(&self, id: NodeId, addr: &str) -> bool {
        let answer: Result<std::result::Result<LeaderResponse, super::WireError>> = self
            .transport
            .call(
                Some(id),
                addr,
                paths::LEADER,
                &LeaderRequest::Probe,
                self.probe_timeout,
            )
            .await;
        matches!(answer, Ok(Ok(LeaderResponse::Alive { .. })))
    }

    async fn commit(
        &self,
        change: openraft::ChangeMembers<NodeId, openraft::BasicNode>,
        retain: bool,
    ) -> Result<()> {
        match timeout(
            self.change_timeout,
            self.raft.change_membership(change, retain),
        )
        .await
        {
            Err(_) => Err(ConsensusError::Unavailable(format!(
                "autopilot: the membership change did not commit within {:?}",
                self.change_timeout
            ))),
            Ok(Err(e)) => Err(ConsensusError::raft(e)),
            Ok(Ok(_)) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(voters: &[NodeId], learners: &[NodeId]) -> Facts {
        let all: Vec<NodeId> = voters.iter().chain(learners).copied().collect();
        Facts {
            leader: voters[0],
            voters: voters.iter().copied().collect(),
            learners: learners.iter().copied().collect(),
            workers: BTreeSet::new(),
            live: all.iter().copied().collect(),
            dead: BTreeSet::new(),
            matched: all.iter().map(|id| (*id, 100)).collect(),
            last_log_index: 100,
            max_lag: 10,
        }
    }

    fn set(ids: &[NodeId]) -> BTreeSet<NodeId> {
        ids.iter().copied().collect()
    }

    #[test]
    fn a_healthy_cluster_is_left_alone() {
        assert_eq!(plan(&facts(&[1, 2, 3], &[])), None);
        assert_eq!(plan(&facts(&[1], &[])), None);
        assert_eq!(plan(&facts(&[1, 2, 3, 4, 5], &[6, 7])), None);
    }

    #[test]
    fn workers_are_never_promoted() {
        let mut f = facts(&[1], &[2, 3]);
        f.workers = set(&[2, 3]);
        assert_eq!(plan(&f), None, "two worker learners stay learners");
        let mut f = facts(&[1], &[2, 3, 4]);
        f.workers = set(&[3]);
        assert_eq!(plan(&f).unwrap().voters, set(&[1, 2, 4]));
        let mut f = facts(&[1, 2, 3], &[4]);
        f.workers = set(&[4]);
        f.live.remove(&3);
        f.dead.insert(3);
        assert_eq!(plan(&f), None, "a dead voter is not replaced by a worker");
    }

    #[test]
    fn a_dead_voter_is_replaced_by_a_live_caught_up_learner() {
        let mut f = facts(&[1, 2, 3], &[4]);
        f.live.remove(&3);
        f.dead.insert(3);
        let change = plan(&f).unwrap();
        assert_eq!(change.voters, set(&[1, 2, 4]));
        assert_eq!(change.removed, set(&[3]));
    }

    #[test]
    fn only_live_caught_up_learners_are_promoted() {
        let mut f = facts(&[1, 2, 3], &[4, 5, 6]);
        f.dead.insert(3);
        f.live.remove(&3);
        f.live.remove(&4); // silent
        f.matched.insert(5, 50); // 50 entries behind, more than max_lag
        let change = plan(&f).unwrap();
        assert_eq!(change.voters, set(&[1, 2, 6]));
        assert_eq!(change.removed, set(&[3]));
    }

    #[test]
    fn a_learner_with_nothing_matched_yet_is_not_caught_up() {
        let mut f = facts(&[1], &[2, 3]);
        f.last_log_index = 5; // even within max_lag of an empty log
        f.matched.remove(&3);
        assert_eq!(
            plan(&f),
            None,
            "one caught-up learner is not enough for 3 voters"
        );
        f.matched.insert(3, 5);
        assert_eq!(plan(&f).unwrap().voters, set(&[1, 2, 3]));
    }

    #[test]
    fn a_dead_voter_without_a_replacement_stays_in_a_three_voter_cluster() {
        let mut f = facts(&[1, 2, 3], &[4]);
        f.dead.insert(3);
        f.live.remove(&3);
        f.live.remove(&4);
        assert_eq!(plan(&f), None);
    }

    #[test]
    fn five_voters_with_two_dead_shrink_to_three() {
        let mut f = facts(&[1, 2, 3, 4, 5], &[]);
        for d in [4, 5] {
            f.dead.insert(d);
            f.live.remove(&d);
        }
        let change = plan(&f).unwrap();
        assert_eq!(change.voters, set(&[1, 2, 3]));
        assert_eq!(change.removed, set(&[4, 5]));
    }

    #[test]
    fn voters_stay_odd_when_one_of_five_dies_without_a_spare() {
        let mut f = facts(&[1, 2, 3, 4, 5], &[]);
        f.dead.insert(5);
        f.live.remove(&5);
        f.matched.insert(2, 90); // the least caught-up live voter is demoted
        let change = plan(&f).unwrap();
        assert_eq!(change.voters, set(&[1, 3, 4]));
        assert_eq!(change.removed, set(&[5]));
    }

    #[test]
    fn the_leader_is_never_dropped_and_learners_fill_up_to_five() {
        let mut f = facts(&[1], &[2, 3, 4, 5, 6]);
        f.dead.insert(1); // even if the leader's own entry were stale
        let change = plan(&f).unwrap();
        assert!(change.voters.contains(&1));
        assert_eq!(change.voters.len(), 5);
        assert!(change.removed.is_empty());
    }

    #[test]
    fn config_ranges_are_checked() {
        assert!(AutopilotConfig::default().validate().is_ok());
        let bad = AutopilotConfig {
            interval: Duration::ZERO,
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("10ms"));
        let bad = AutopilotConfig {
            max_lag: 0,
            ..Default::default()
        };
        assert!(bad.validate().is_err());
    }
}
