//! Node-level glue around a [`RaftNode`]: the Raft id derived from a node's name, whether the
//! node is a member, a leadership watch, and joining through any live member.
//!
//! The `orion` binary runs these; an embedder with its own node loop can too:
//!
//! ```rust,ignore
//! let raft = Arc::new(RaftNode::start(RaftConfig::new(raft_id("n2"), ...), inner).await?);
//! let leader = leadership(&raft);                 // Leader { term } while this node leads
//! let via = join_any(&raft, || member_raft_addrs(&*membership, "n2"), &JoinOptions::default()).await?;
//! ```

use std::future::Future;
use std::time::Duration;

use orion_core::membership::{MemberState, Membership};
use orion_core::node::Leadership;
use orion_core::store::Store;
use tokio::sync::watch;
use tokio::time::{Instant, sleep, timeout};

use crate::error::{Error, Result};
use crate::raft::{NodeId, RaftNode};

/// The Raft id of the node named `node_name`: `orion_core::hash::stable_hash` of the name
/// (never 0, which openraft treats as unset), so every node derives the same id for a name
/// without asking anyone. Two names hashing to the same id is possible in principle (64 bits)
/// and is refused by the data dir's identity check only when they share a dir; pick distinct
/// names.
pub fn raft_id(node_name: &str) -> NodeId {
    orion_core::hash::stable_hash(node_name.as_bytes()).max(1)
}

/// True once `raft`'s own view of the membership lists it, as voter or learner. A node that
/// was removed while it was down still lists itself until it hears from the leader, so this is
/// a hint for logs and status; [`join_any`] is what makes sure.
pub fn in_raft<S: Store>(raft: &RaftNode<S>) -> bool {
    let s = raft.status();
    s.voters.contains(&s.node_id) || s.learners.contains(&s.node_id)
}

/// A watch of whether `raft` is the Raft leader and in which term (per its metrics), updated
/// on every change; the term is what `orion_core::node::Fence` compares, so a deposed leader's
/// writes are refused. The background task ends when the node's Raft stops (its metrics channel
/// closes) or every receiver is dropped.
pub fn leadership<S: Store>(raft: &RaftNode<S>) -> watch::Receiver<Leadership> {
    let me = raft.id();
    let mut metrics = raft.raft().metrics();
    let of = move |m: &openraft::RaftMetrics<NodeId, openraft::BasicNode>| {
        if m.current_leader == Some(me) {
            Leadership::Leader {
                term: m.current_term,
            }
        } else {
            Leadership::Follower
        }
    };
    let (tx, rx) = watch::channel(of(&metrics.borrow()));
    tokio::spawn(async move {
        while metrics.changed().await.is_ok() {
            let now = of(&metrics.borrow());
            tx.send_if_modified(|v| {
                let changed = *v != now;
                *v = now;
                changed
            });
            if tx.is_closed() {
                return;
            }
        }
    });
    rx
}

/// How [`join_any`] retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinOptions {
    /// The longest one join request through one member may take, catching up included; after
    /// that the next member is tried (default 20 s). A member that died mid-join costs at most
    /// this.
    pub attempt_timeout: Duration,
    /// The longest the whole join may take before [`join_any`] gives up (default 1 h).
    pub give_up_after: Duration,
    /// The longest pause between rounds over the members (default 5 s; the first is 200 ms,
    /// doubling).
    pub max_backoff: Duration,
}

impl Default for JoinOptions {
    fn default() -> Self {
        Self {
            attempt_timeout: Duration::from_secs(20),
            give_up_after: Duration::from_secs(3600),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// The Raft addresses of the members `membership` reports alive, except `me` (a node name).
pub async fn member_raft_addrs(membership: &dyn Membership, me: &str) -> Vec<String> {
    membership
        .members()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.id != me && m.state == MemberState::Alive)
        .map(|m| m.addresses.raft)
        .filter(|a| !a.is_empty())
        .collect()
}

/// Joins `raft` to its cluster through any member: asks each address `peers()` returns in turn
/// ([`RaftNode::join`], at most `attempt_timeout` each), then pauses (200 ms doubling to
/// `max_backoff`) and asks `peers()` again, until one join succeeds or `give_up_after` has
/// passed. Returns the address the join went through.
///
/// Safe to call on every start: a node that is already a voter is answered at once, a
/// restarted learner catches up and may be promoted, a node removed while it was away comes
/// back as a new learner, and a node whose data dir was wiped is admitted as a new member (its
/// old self removed first). Errors: [`Error::Unavailable`] naming the last failure when the
/// time is up.
pub async fn join_any<S, F, Fut>(
    raft: &RaftNode<S>,
    mut peers: F,
    options: &JoinOptions,
) -> Result<String>
where
    S: Store,
    F: FnMut() -> Fut,
    Fut: Future<Output = Vec<String>>,
{
    let deadline = Instant::now() + options.give_up_after;
    let mut backoff = Duration::from_millis(200);
    let mut last = String::from("no member known yet");
    loop {
        for addr in peers().await {
            if addr == raft.addr() {
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match timeout(options.attempt_timeout.min(left), raft.join(&addr)).await {
                Ok(Ok(())) => {
                    tracing::info!(node = raft.id(), via = %addr, "joined Raft");
                    return Ok(addr);
                }
                Ok(Err(e)) => {
                    tracing::warn!(via = %addr, error = %e, "Raft join failed; trying another member");
                    last = format!("through {addr}: {e}");
                }
                Err(_) => {
                    tracing::warn!(via = %addr, "Raft join timed out; trying another member");
                    last = format!(
                        "through {addr}: no answer within {:?}",
                        options.attempt_timeout
                    );
                }
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Unavailable(format!(
                "could not join the Raft cluster within {:?} (last: {last}); check that a \
                 majority of voters is up and that the members' Raft addresses are reachable",
                options.give_up_after
            )));
        }
        sleep(backoff.min(left)).await;
        backoff = (backoff * 2).min(options.max_backoff);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raft_ids_are_stable_distinct_and_never_zero() {
        assert_eq!(raft_id("node1"), raft_id("node1"));
        assert_ne!(raft_id("node1"), raft_id("node2"));
        assert_eq!(
            raft_id("node1"),
            orion_core::hash::stable_hash(b"node1").max(1)
        );
        assert_ne!(raft_id(""), 0);
    }
}
