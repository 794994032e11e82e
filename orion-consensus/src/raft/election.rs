//! Elections with a pre-vote round, which openraft 0.9 lacks.
//!
//! openraft's own election timer is switched off (`Config::enable_elect = false`). Instead the
//! [`ElectionDriver`] of each voter watches how long it has not heard from a leader; after
//! `election_timeout_max + random(election_timeout_min..election_timeout_max)` of silence it
//! asks every other voter, on `/raft/prevote`, whether it *would* vote for it
//! ([`PreVoteRequest`]). Nothing changes on either side. Only when a majority of every voter
//! configuration (itself included) says yes, and no voter answers "I am the leader", does it let
//! openraft campaign (`Raft::trigger().elect()`), which raises the term.
//!
//! A voter says yes ([`answer`]) only when it is not the leader, has not heard from a leader for
//! the leader lease (`election_timeout_max`, the same lease openraft's vote handling honours),
//! and the candidate's log is at least as up to date as its own.
//!
//! Why: a node cut off from the others (or paused) used to campaign alone, raising its term at
//! every election timeout; back on the network, its higher term made the healthy leader step
//! down (openraft answers the leader's AppendEntries with the higher vote). With the pre-vote an
//! isolated node never gets a majority, so its term stays, and the leader is left alone.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::{LogId, ServerState};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::Instant;

use super::log_store::LastLogId;
use super::network::paths;
use super::{NodeId, OrionRaft};
use crate::transport::Transport;

/// "Would you vote for me?", sent before an election; changes nothing on the receiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreVoteRequest {
    pub candidate: NodeId,
    /// The term the candidate would campaign in (its current term + 1).
    pub term: u64,
    pub last_log_id: Option<LogId<NodeId>>,
}

/// The answer to a [`PreVoteRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreVoteResponse {
    pub granted: bool,
    /// The answering node is the leader (so it is alive and reachable from the candidate).
    pub leader: bool,
    /// The answering node's current term.
    pub term: u64,
}

/// When this node last heard from a leader (an accepted AppendEntries or snapshot chunk), or
/// granted a vote. Shared by the Raft port, which updates it, and the [`ElectionDriver`].
#[derive(Debug, Clone)]
pub(crate) struct LeaderContact(Arc<Mutex<Instant>>);

impl LeaderContact {
    pub fn new() -> Self {
        Self(Arc::new(Mutex::new(Instant::now())))
    }

    pub fn touch(&self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    pub fn since(&self) -> Duration {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).elapsed()
    }
}

/// What a voter needs to answer pre-votes and run its own.
#[derive(Clone)]
pub(crate) struct Elections {
    pub id: NodeId,
    pub raft: OrionRaft,
    pub contact: LeaderContact,
    pub last_log: LastLogId,
    pub transport: Transport,
    pub timeout_min: Duration,
    pub timeout_max: Duration,
}

impl std::fmt::Debug for Elections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Elections")
            .field("id", &self.id)
            .field("timeout_min", &self.timeout_min)
            .field("timeout_max", &self.timeout_max)
            .finish_non_exhaustive()
    }
}

/// This node's answer to `req` (see the module doc for the rule).
pub(crate) fn answer(e: &Elections, req: &PreVoteRequest) -> PreVoteResponse {
    let (leader, term) = {
        let metrics = e.raft.metrics();
        let m = metrics.borrow();
        (m.state == ServerState::Leader, m.current_term)
    };
    let lease_over = e.contact.since() > e.timeout_max;
    let log_ok = req.last_log_id >= e.last_log.get();
    let granted = !leader && lease_over && log_ok;
    tracing::debug!(
        node = e.id,
        candidate = req.candidate,
        granted,
        leader,
        lease_over,
        log_ok,
        "pre-vote"
    );
    PreVoteResponse {
        granted,
        leader,
        term,
    }
}

/// Runs the pre-vote round; true when this node may campaign.
async fn pre_vote(e: &Elections) -> bool {
    let (term, configs, peers) = {
        let metrics = e.raft.metrics();
        let m = metrics.borrow();
        let membership = m.membership_config.membership();
        let configs: Vec<BTreeSet<NodeId>> = membership.get_joint_config().clone();
        let peers: Vec<(NodeId, String)> = membership
            .voter_ids()
            .filter(|v| *v != e.id)
            .filter_map(|v| membership.get_node(&v).map(|n| (v, n.addr.clone())))
            .collect();
        (m.current_term, configs, peers)
    };
    let req = PreVoteRequest {
        candidate: e.id,
        term: term + 1,
        last_log_id: e.last_log.get(),
    };
    let asks = peers.iter().map(|(id, addr)| {
        let req = &req;
        async move {
            let answer: Option<PreVoteResponse> = e
                .transport
                .call(Some(*id), addr, paths::PREVOTE, req, e.timeout_min)
                .await
                .ok();
            (*id, answer)
        }
    });
    let answers = futures::future::join_all(asks).await;
    if answers
        .iter()
        .any(|(_, a)| a.as_ref().is_some_and(|a| a.leader && a.term >= term))
    {
        tracing::debug!(
            node = e.id,
            "pre-vote: a live leader answered; not campaigning"
        );
        return false;
    }
    let yes: BTreeSet<NodeId> = answers
        .iter()
        .filter(|(_, a)| a.as_ref().is_some_and(|a| a.granted))
        .map(|(id, _)| *id)
        .chain([e.id])
        .collect();
    let won = configs
        .iter()
        .all(|c| c.iter().filter(|v| yes.contains(v)).count() * 2 > c.len());
    tracing::debug!(node = e.id, ?yes, won, "pre-vote round");
    won
}

/// Starts the election timer of this node; it ends when `stop` turns true or Raft stops.
pub(crate) fn spawn_driver(e: Elections, mut stop: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let poll = (e.timeout_min / 4).max(Duration::from_millis(5));
        let draw = |e: &Elections| {
            let (lo, hi) = (
                e.timeout_min.as_millis() as u64,
                e.timeout_max.as_millis() as u64,
            );
            e.timeout_max + Duration::from_millis(rand::rng().random_range(lo..hi.max(lo + 1)))
        };
        let mut wait = draw(&e);
        let mut last_attempt = Instant::now();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        return;
                    }
                }
            }
            let (state, voters, is_voter) = {
                let metrics = e.raft.metrics();
                let m = metrics.borrow();
                let membership = m.membership_config.membership();
                (
                    m.state,
                    membership.voter_ids().count(),
                    membership.voter_ids().any(|v| v == e.id),
                )
            };
            if state == ServerState::Shutdown {
                return;
            }
            if state == ServerState::Leader || !is_voter {
                continue;
            }
            // The only voter campaigns at once (as openraft does), but not more often than
            // every election_timeout_min, so a campaign in progress is not restarted.
            let alone = voters == 1;
            let silent = e.contact.since().min(last_attempt.elapsed());
            if (alone && last_attempt.elapsed() < e.timeout_min) || (!alone && silent < wait) {
                continue;
            }
            last_attempt = Instant::now();
            wait = draw(&e);
            if (alone || pre_vote(&e).await) && e.raft.trigger().elect().await.is_err() {
                return; // Raft stopped.
            }
        }
    });
}
