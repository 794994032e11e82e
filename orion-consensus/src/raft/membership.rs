//! Membership changes served by the leader: joins (new, restarted and wiped nodes), promotion to
//! voter, and removal.
//!
//! **Joining** takes up to two requests from the joining node (see [`super::RaftNode::join`]):
//!
//! 1. A node whose data dir holds no vote, log or snapshot (`fresh`) asks to be admitted. Its
//!    Raft port refuses appends, votes and snapshots until then, so a wiped voter cannot vote or
//!    count towards a quorum with an empty log. If the membership already holds a member of that
//!    id, it is that node before its data dir was wiped: the leader removes it and adds the node
//!    back as a new learner (the safe "remove, wipe, join" procedure, done for the operator).
//!    Answer: [`LeaderResponse::Admitted`].
//! 2. A node that is not fresh (restarted, or admitted in step 1) is added as a learner if it is
//!    not one already, the leader waits until it has caught up, then promotes it (and the
//!    longest-standing learners) while voters stay odd and at most [`super::MAX_VOTERS`]. The join is
//!    answered [`LeaderResponse::Done`] only once every promoted node holds the membership entry
//!    that made it a voter, so a leader lost right after a join leaves voters that all know
//!    they vote.
//!
//! **Removal** refuses the leader itself and the last voter, with a message saying what to do.

use std::collections::BTreeSet;

use openraft::error::ForwardToLeader;
use openraft::{BasicNode, ChangeMembers, ServerState};
use std::time::Duration;

use tokio::time::{Instant, sleep, timeout};

use super::leader::{
    JoinRequest, LeaderOps, LeaderResponse, not_leader, target_voters, write_error,
};
use super::{NodeId, WireError};

type Answer = std::result::Result<LeaderResponse, WireError>;

/// The leader's view of the membership, taken at one instant.
struct View {
    me: NodeId,
    voters: BTreeSet<NodeId>,
    learners: BTreeSet<NodeId>,
    /// The log index of the effective membership configuration.
    config_index: u64,
    addr_of: std::collections::BTreeMap<NodeId, String>,
}

impl LeaderOps {
    /// The membership as this node sees it, or [`WireError::NotLeader`] when it does not lead.
    fn view(&self) -> std::result::Result<View, WireError> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let membership = m.membership_config.membership();
        let addr_of = membership
            .nodes()
            .map(|(id, n)| (*id, n.addr.clone()))
            .collect::<std::collections::BTreeMap<_, _>>();
        if m.state != ServerState::Leader || m.current_leader != Some(m.id) {
            let leader = m.current_leader;
            return Err(not_leader(&ForwardToLeader {
                leader_id: leader,
                leader_node: leader.and_then(|l| membership.get_node(&l).cloned()),
            }));
        }
        Ok(View {
            me: m.id,
            voters: membership.voter_ids().collect(),
            learners: membership.learner_ids().collect(),
            config_index: m.membership_config.log_id().map_or(0, |l| l.index),
            addr_of,
        })
    }

    /// Serves a [`JoinRequest`] (see the module doc).
    pub(super) async fn join(&self, join: JoinRequest) -> Answer {
        let view = self.view()?;
        let id = join.node_id;
        let known = view.voters.contains(&id) || view.learners.contains(&id);
        if join.worker {
            self.record_worker(id).await?;
        }
        if join.fresh {
            if id == view.me {
                return Err(WireError::Conflict(format!(
                    "node {id} asked to join as a new node, but the leader has that id"
                )));
            }
            if known {
                tracing::warn!(
                    node = id,
                    voter = view.voters.contains(&id),
                    "a member came back with an empty data dir (wiped?): removing it and adding \
                     it back as a new learner"
                );
                self.remove_member(&view, id).await?;
            }
            let node = BasicNode { addr: join.addr };
            return match timeout(self.request_timeout, self.raft.add_learner(id, node, false)).await
            {
                Err(_) => Err(self.no_quorum("adding the learner")),
                Ok(Err(e)) => Err(write_error(e)),
                Ok(Ok(_)) => Ok(LeaderResponse::Admitted),
            };
        }

        // Joining again (a restarted node) is a no-op once it is a voter at the same address.
        if view.voters.contains(&id) && view.addr_of.get(&id) == Some(&join.addr) {
            self.wait_holds_config(&BTreeSet::from([id]), view.config_index)
                .await?;
            return Ok(LeaderResponse::Done);
        }
        let node = BasicNode { addr: join.addr };
        let add = self.raft.add_learner(id, node, true);
        match timeout(self.join_timeout, add).await {
            Err(_) => {
                return Err(WireError::Unavailable(format!(
                    "node {id} did not catch up within {:?}",
                    self.join_timeout
                )));
            }
            Ok(Err(e)) => return Err(write_error(e)),
            Ok(Ok(_)) => {}
        }
        // Voters stay an odd number, at most MAX_VOTERS; other members stay learners, and
        // workers stay learners for good.
        let view = self.view()?;
        if view.voters.contains(&id) {
            return Ok(LeaderResponse::Done);
        }
        let workers = self.workers.ids().await;
        if join.worker || workers.contains(&id) {
            tracing::info!(node = id, "a worker joined; it stays a learner");
            return Ok(LeaderResponse::Done);
        }
        let candidates: Vec<NodeId> = view
            .learners
            .iter()
            .copied()
            .filter(|l| !workers.contains(l))
            .collect();
        let wanted = target_voters(view.voters.len() + candidates.len());
        if wanted <= view.voters.len() {
            return Ok(LeaderResponse::Done);
        }
        // The joining node first (it is caught up), then the longest-standing learners.
        let mut promote = BTreeSet::from([id]);
        promote.extend(
            candidates
                .iter()
                .copied()
                .filter(|l| *l != id)
                .take(wanted - view.voters.len() - 1),
        );
        // The autopilot may be changing the membership at the same moment (promoting this very
        // node, say): then the change is refused as in progress; look again, briefly.
        let deadline = Instant::now() + self.request_timeout;
        loop {
            match self
                .change(ChangeMembers::AddVoterIds(promote.clone()))
                .await
            {
                Ok(index) => {
                    self.wait_holds_config(&promote, index).await?;
                    return Ok(LeaderResponse::Done);
                }
                Err(WireError::Conflict(why)) if Instant::now() < deadline => {
                    tracing::debug!(node = id, %why, "promotion waits for a membership change");
                    sleep(Duration::from_millis(50)).await;
                    let view = self.view()?;
                    if view.voters.contains(&id) {
                        self.wait_holds_config(&BTreeSet::from([id]), view.config_index)
                            .await?;
                        return Ok(LeaderResponse::Done);
                    }
                    promote.retain(|p| !view.voters.contains(p) && !workers.contains(p));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Records `id` as a worker in the replicated store (idempotent), before it is a learner.
    async fn record_worker(&self, id: NodeId) -> std::result::Result<(), WireError> {
        if self.workers.ids().await.contains(&id) {
            return Ok(());
        }
        match timeout(
            self.request_timeout,
            self.raft.client_write(super::workers::Workers::mark(id)),
        )
        .await
        {
            Err(_) => Err(self.no_quorum("recording a worker")),
            Ok(Err(e)) => Err(write_error(e)),
            Ok(Ok(_)) => Ok(()),
        }
    }

    /// Removes `id` from the cluster (by hand: `RaftNode::remove`, `orion cluster remove`).
    /// Refuses the leader itself and the last voter.
    pub(super) async fn remove(&self, id: NodeId) -> Answer {
        let view = self.view()?;
        if id == view.me {
            return Err(WireError::Conflict(format!(
                "node {id} is the Raft leader and cannot remove itself; stop it (the other \
                 voters elect a new leader), then remove it through any other member"
            )));
        }
        if !view.voters.contains(&id) && !view.learners.contains(&id) {
            return Err(WireError::NotFound {
                kind: "member".into(),
                name: format!(
                    "raft node {id} (voters {:?}, learners {:?})",
                    view.voters, view.learners
                ),
            });
        }
        self.remove_member(&view, id).await?;
        Ok(LeaderResponse::Done)
    }

    async fn remove_member(&self, view: &View, id: NodeId) -> std::result::Result<(), WireError> {
        let change = if view.voters.contains(&id) {
            if view.voters.len() == 1 {
                return Err(WireError::Conflict(format!(
                    "node {id} is the last voter; removing it would leave no quorum: add a \
                     node first"
                )));
            }
            ChangeMembers::RemoveVoters(BTreeSet::from([id]))
        } else {
            ChangeMembers::RemoveNodes(BTreeSet::from([id]))
        };
        // Retried briefly while another membership change (the autopilot's) is in progress.
        let deadline = Instant::now() + self.request_timeout;
        loop {
            match self.change(change.clone()).await {
                Err(WireError::Conflict(_)) if Instant::now() < deadline => {
                    sleep(Duration::from_millis(50)).await;
                }
                other => return other.map(|_| ()),
            }
        }
    }

    /// Waits (for at most the request timeout) until every node in `ids` other than this one
    /// holds the log up to `index` (a membership entry), as the leader's replication reports.
    async fn wait_holds_config(
        &self,
        ids: &BTreeSet<NodeId>,
        index: u64,
    ) -> std::result::Result<(), WireError> {
        let ready = |m: &openraft::RaftMetrics<NodeId, BasicNode>| {
            let Some(replication) = &m.replication else {
                return false;
            };
            ids.iter().all(|id| {
                *id == m.id
                    || replication
                        .get(id)
                        .and_then(|l| l.as_ref())
                        .is_some_and(|l| l.index >= index)
            })
        };
        self.raft
            .wait(Some(self.request_timeout))
            .metrics(ready, "new voters hold their membership entry")
            .await
            .map(|_| ())
            .map_err(|e| {
                WireError::Unavailable(format!(
                    "nodes {ids:?} are voters but did not receive the membership entry {index} \
                     within {:?} ({e}); join again to confirm",
                    self.request_timeout
                ))
            })
    }
}
