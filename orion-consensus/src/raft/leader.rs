//! Requests only the leader can serve (writes, read index, membership changes), and the
//! [`Router`] that delivers them to the leader from any node.

use std::sync::Arc;
use std::time::Duration;

use openraft::error::{CheckIsLeaderError, ClientWriteError, ForwardToLeader, RaftError};
use openraft::{BasicNode, ChangeMembers};
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::{Instant, sleep, timeout};

use super::network::paths;
use super::{Command, CommandResponse, NodeId, OrionRaft, WireError};
use crate::error::{Error as ConsensusError, Result, TransportFailure};
use crate::transport::Transport;

/// A node asking to become a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    pub node_id: NodeId,
    /// Where the joining node's Raft port is reached.
    pub addr: String,
    /// True when the joining node's data dir holds no vote, log or snapshot (new or wiped). The
    /// leader then admits it as a new learner, first removing any member of the same id, which
    /// can only be a wiped former self (see [`super::membership`]).
    pub fresh: bool,
    /// True for a node admitted with a worker token: it stays a learner (see
    /// [`super::workers`]). Set by the node that receives the request from the joining node's
    /// certificate, whatever the joining node sent.
    #[serde(default)]
    pub worker: bool,
}

/// What a node sends the leader on `/raft/leader`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LeaderRequest {
    Write(Command),
    ReadIndex,
    Join(JoinRequest),
    Remove(NodeId),
    /// Answered by any node (leader or not) with [`LeaderResponse::Alive`]: the autopilot's
    /// liveness probe.
    Probe,
}

impl LeaderRequest {
    /// True when sending it twice is harmless, so an unanswered attempt may be retried.
    fn is_idempotent(&self) -> bool {
        !matches!(self, LeaderRequest::Write(_))
    }
}

/// The leader's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LeaderResponse {
    Written(CommandResponse),
    /// Reads that start now are linearizable once the reader has applied this index.
    ReadIndex(u64),
    Done,
    /// A fresh node was added as a learner: it may now accept the leader's replication, then
    /// join again (not fresh) to catch up and be promoted.
    Admitted,
    /// The answer to [`LeaderRequest::Probe`]: the node is up; its applied index.
    Alive {
        applied_index: u64,
    },
}

/// A write waiting for the batcher, with where to send its result.
type PendingWrite = (
    Command,
    oneshot::Sender<std::result::Result<CommandResponse, WireError>>,
);

/// Most writes in one batch entry.
const MAX_BATCH: usize = 512;
/// Batches proposed to Raft at the same time; while they are in flight, new writes queue up and
/// form the next batch. One is fastest: a commit round's cost is mostly per batch (an fsync on
/// every node, two RPCs), so the fewer and larger the batches, the more writes per second, and
/// the batch grows with the load (up to [`MAX_BATCH`]). A write waits at most for the round in
/// flight plus its own. Measured with 64 writers: 2 in flight was 10-20 % slower, 4 slower still.
const BATCHES_IN_FLIGHT: usize = 1;

/// Serves [`LeaderRequest`]s on this node, if it is the leader.
#[derive(Clone)]
pub(crate) struct LeaderOps {
    pub raft: OrionRaft,
    pub(super) request_timeout: Duration,
    pub(super) join_timeout: Duration,
    writes: mpsc::UnboundedSender<PendingWrite>,
    pub(super) workers: super::workers::Workers,
}

/// Proposes queued writes as [`Command::Batch`] entries: one log entry, one append and one
/// replication round for many concurrent writes.
async fn batch_writes(
    raft: OrionRaft,
    request_timeout: Duration,
    mut queue: mpsc::UnboundedReceiver<PendingWrite>,
) {
    let permits = Arc::new(Semaphore::new(BATCHES_IN_FLIGHT));
    let mut pending = Vec::new();
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        if queue.recv_many(&mut pending, MAX_BATCH).await == 0 {
            return;
        }
        let batch = std::mem::take(&mut pending);
        let raft = raft.clone();
        tokio::spawn(async move {
            propose(&raft, request_timeout, batch).await;
            drop(permit);
        });
    }
}

async fn propose(raft: &OrionRaft, request_timeout: Duration, batch: Vec<PendingWrite>) {
    let (mut commands, waiters): (Vec<Command>, Vec<_>) = batch.into_iter().unzip();
    let is_batch = commands.len() > 1;
    let command = match commands.pop() {
        Some(only) if !is_batch => only,
        Some(last) => {
            commands.push(last);
            Command::Batch(commands)
        }
        None => return,
    };
    let outcome = match timeout(request_timeout, raft.client_write(command)).await {
        Err(_) => Err(no_quorum(request_timeout, "the write")),
        Ok(Ok(resp)) => Ok(resp.data),
        Ok(Err(e)) => Err(write_error(e)),
    };
    match outcome {
        Ok(resp) if is_batch => {
            for (waiter, result) in waiters.into_iter().zip(resp.batch) {
                let _ = waiter.send(Ok(CommandResponse::single(result)));
            }
        }
        Ok(resp) => {
            for waiter in waiters {
                let _ = waiter.send(Ok(resp.clone()));
            }
        }
        Err(e) => {
            for waiter in waiters {
                let _ = waiter.send(Err(e.clone()));
            }
        }
    }
}

fn no_quorum(request_timeout: Duration, what: &str) -> WireError {
    WireError::Unavailable(format!(
        "no quorum: {what} did not complete within {request_timeout:?}; the leader cannot reach \
         a majority of voters (for a write, the outcome is unknown until a quorum returns)"
    ))
}

impl std::fmt::Debug for LeaderOps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderOps")
            .field("request_timeout", &self.request_timeout)
            .field("join_timeout", &self.join_timeout)
            .finish_non_exhaustive()
    }
}

pub(super) fn not_leader(f: &ForwardToLeader<NodeId, BasicNode>) -> WireError {
    WireError::NotLeader {
        leader: f.leader_id,
        leader_addr: f.leader_node.as_ref().map(|n| n.addr.clone()),
    }
}

pub(super) fn write_error(e: RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>) -> WireError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => not_leader(&f),
        RaftError::APIError(ClientWriteError::ChangeMembershipError(c)) => {
            WireError::Conflict(format!("membership change refused: {c}"))
        }
        RaftError::Fatal(f) => WireError::Unavailable(format!("raft stopped: {f}")),
    }
}

impl LeaderOps {
    /// Leader operations on `raft`; starts the write batcher (it ends when the last clone of
    /// the returned value is dropped).
    pub(crate) fn new(
        raft: OrionRaft,
        request_timeout: Duration,
        join_timeout: Duration,
        workers: super::workers::Workers,
    ) -> Self {
        let (writes, queue) = mpsc::unbounded_channel();
        tokio::spawn(batch_writes(raft.clone(), request_timeout, queue));
        Self {
            raft,
            request_timeout,
            join_timeout,
            writes,
            workers,
        }
    }

    pub(super) fn no_quorum(&self, what: &str) -> WireError {
        no_quorum(self.request_timeout, what)
    }

    /// Serves `req` if this node is the leader; otherwise answers [`WireError::NotLeader`].
    pub async fn handle(
        &self,
        req: LeaderRequest,
    ) -> std::result::Result<LeaderResponse, WireError> {
        match req {
            LeaderRequest::Write(command) => {
                let stopped = || {
                    WireError::Unavailable(
                        "the Raft node is stopping; the write's outcome is unknown".into(),
                    )
                };
                let (tx, rx) = oneshot::channel();
                self.writes.send((command, tx)).map_err(|_| stopped())?;
                rx.await
                    .map_err(|_| stopped())?
                    .map(LeaderResponse::Written)
            }
            LeaderRequest::ReadIndex => {
                match timeout(self.request_timeout, self.raft.ensure_linearizable()).await {
                    Err(_) => Err(self.no_quorum("the read")),
                    Ok(Ok(log_id)) => Ok(LeaderResponse::ReadIndex(log_id.map_or(0, |l| l.index))),
                    Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)))) => {
                        Err(not_leader(&f))
                    }
                    Ok(Err(e)) => Err(WireError::Unavailable(format!(
                        "cannot confirm leadership: {e}"
                    ))),
                }
            }
            LeaderRequest::Join(join) => self.join(join).await,
            LeaderRequest::Remove(id) => self.remove(id).await,
            LeaderRequest::Probe => Ok(LeaderResponse::Alive {
                applied_index: self
                    .raft
                    .metrics()
                    .borrow()
                    .last_applied
                    .map_or(0, |l| l.index),
            }),
        }
    }

    /// Commits a membership change (members removed from the voters are removed entirely);
    /// returns the log index of the resulting configuration.
    pub(super) async fn change(
        &self,
        change: ChangeMembers<NodeId, BasicNode>,
    ) -> std::result::Result<u64, WireError> {
        match timeout(
            self.request_timeout,
            self.raft.change_membership(change, false),
        )
        .await
        {
            Err(_) => Err(self.no_quorum("the membership change")),
            Ok(Ok(resp)) => Ok(resp.log_id.index),
            Ok(Err(e)) => Err(write_error(e)),
        }
    }
}

/// The most voters a cluster keeps; further members are learners (non-voters).
pub const MAX_VOTERS: usize = 5;

/// How many of `members` should vote: the largest odd number not above `members` or
/// [`MAX_VOTERS`] (an even count adds no fault tolerance and slows every commit).
pub fn target_voters(members: usize) -> usize {
    let n = members.clamp(1, MAX_VOTERS);
    if n.is_multiple_of(2) { n - 1 } else { n }
}

/// Delivers [`LeaderRequest`]s to the current leader, wherever it is, with bounded retries.
#[derive(Debug, Clone)]
pub(crate) struct Router {
    id: NodeId,
    ops: LeaderOps,
    transport: Transport,
    request_timeout: Duration,
}

enum Target {
    Local,
    Remote(Option<NodeId>, String),
    Unknown,
}

impl Router {
    pub fn new(
        id: NodeId,
        ops: LeaderOps,
        transport: Transport,
        request_timeout: Duration,
    ) -> Self {
        Self {
            id,
            ops,
            transport,
            request_timeout,
        }
    }

    fn leader(&self) -> Target {
        let metrics = self.ops.raft.metrics();
        let m = metrics.borrow();
        match m.current_leader {
            Some(l) if l == self.id => Target::Local,
            Some(l) => match m.membership_config.membership().get_node(&l) {
                Some(node) => Target::Remote(Some(l), node.addr.clone()),
                None => Target::Unknown,
            },
            None => Target::Unknown,
        }
    }

    /// Sends `req` to the leader, following redirects and waiting out elections, for at most
    /// the request timeout (plus the join timeout for a join).
    pub async fn route(&self, req: LeaderRequest) -> Result<LeaderResponse> {
        self.deliver(None, req).await
    }

    /// Like [`Self::route`], but starts at the node listening at `addr`.
    pub async fn send_to(&self, addr: &str, req: LeaderRequest) -> Result<LeaderResponse> {
        self.deliver(Some(addr.to_owned()), req).await
    }

    async fn deliver(&self, first: Option<String>, req: LeaderRequest) -> Result<LeaderResponse> {
        let budget = match req {
            LeaderRequest::Join(_) => self.request_timeout + self.ops.join_timeout,
            _ => self.request_timeout,
        };
        let deadline = Instant::now() + budget;
        let mut next: Option<Target> = first.map(|a| Target::Remote(None, a));
        let mut backoff = Duration::from_millis(10);
        let mut last = String::from("no leader known yet (an election may be in progress)");
        loop {
            let target = next.take().unwrap_or_else(|| self.leader());
            let remaining = deadline.saturating_duration_since(Instant::now());
            let outcome: Option<std::result::Result<LeaderResponse, WireError>> = match target {
                Target::Local => Some(self.ops.handle(req.clone()).await),
                Target::Remote(id, addr) => {
                    let wait = remaining + Duration::from_millis(200);
                    match self
                        .transport
                        .call(id, &addr, paths::LEADER, &req, wait)
                        .await
                    {
                        Ok(answer) => Some(answer),
                        Err(e) => {
                            let retry = matches!(
                                e,
                                ConsensusError::Transport {
                                    failure: TransportFailure::NotDelivered,
                                    ..
                                }
                            ) || req.is_idempotent();
                            if !retry {
                                return Err(ConsensusError::Unavailable(format!(
                                    "the leader did not answer, the write's outcome is unknown: {e}"
                                )));
                            }
                            last = e.to_string();
                            None
                        }
                    }
                }
                Target::Unknown => None,
            };
            match outcome {
                Some(Ok(resp)) => return Ok(resp),
                Some(Err(WireError::NotLeader {
                    leader,
                    leader_addr,
                })) => {
                    last = format!("redirected to leader {leader:?}");
                    if let Some(addr) = leader_addr
                        && leader != Some(self.id)
                    {
                        next = Some(Target::Remote(leader, addr));
                    }
                }
                Some(Err(WireError::Unavailable(msg))) if Instant::now() >= deadline => {
                    return Err(ConsensusError::Unavailable(msg));
                }
                Some(Err(WireError::Unavailable(msg))) => last = msg,
                Some(Err(other)) => return Err(ConsensusError::Store(other.into())),
                None => {}
            }
            if Instant::now() >= deadline {
                return Err(ConsensusError::Unavailable(format!(
                    "no quorum: no Raft leader with a quorum answered within {budget:?} \
                     (last: {last}); check that a majority of voters is up and reachable"
                )));
            }
            if next.is_none() {
                sleep(backoff.min(deadline.saturating_duration_since(Instant::now()))).await;
                backoff = (backoff * 2).min(Duration::from_millis(100));
            }
        }
    }
}

impl Router {
    /// How long one routed request may take.
    pub fn request_timeout(&self) -> std::time::Duration {
        self.request_timeout
    }
}

#[cfg(test)]
mod tests {
    use super::target_voters;

    #[test]
    fn voters_stay_odd_and_at_most_five() {
        let got: Vec<usize> = (1..=8).map(target_voters).collect();
        assert_eq!(got, vec![1, 1, 3, 3, 5, 5, 5, 5]);
    }
}
