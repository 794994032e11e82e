//! Workers: members admitted with a worker join token. They are Raft learners for good: the
//! leader never promotes them, neither when they join nor through the autopilot.
//!
//! Who is a worker is decided by the certificate the joining node presents: the first node that
//! receives its join request over mutual TLS marks the request as a worker's when the client
//! certificate's role is `worker` (a forwarded request keeps the mark). The leader records the
//! mark in the replicated store under [`WORKERS_PREFIX`]`<raft id>` before it adds the node as a
//! learner, so every later leader knows it too.

use std::collections::BTreeSet;
use std::sync::Arc;

use orion_core::store::{Op, Store, Txn};

use super::{Command, NodeId};

/// Where the leader records the Raft ids of workers (one key per worker).
pub const WORKERS_PREFIX: &str = "/orion/raft/workers/";

/// Reads the workers recorded in this node's applied state.
#[derive(Clone)]
pub(crate) struct Workers(Arc<dyn Store>);

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Workers")
    }
}

impl Workers {
    pub(crate) fn new(store: Arc<dyn Store>) -> Self {
        Workers(store)
    }

    /// The Raft ids recorded as workers (empty when the store cannot be read).
    pub(crate) async fn ids(&self) -> BTreeSet<NodeId> {
        match self.0.range(WORKERS_PREFIX).await {
            Ok(range) => range
                .kvs
                .iter()
                .filter_map(|kv| kv.key.strip_prefix(WORKERS_PREFIX)?.parse().ok())
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the recorded workers");
                BTreeSet::new()
            }
        }
    }

    /// The command that records `id` as a worker.
    pub(crate) fn mark(id: NodeId) -> Command {
        Command::Txn(
            Txn::new().and_then(Op::Put(format!("{WORKERS_PREFIX}{id}"), b"worker".to_vec())),
        )
    }
}
