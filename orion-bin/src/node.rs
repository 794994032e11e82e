//! Running a node. (Filled once the stores, Raft, gossip and runtimes land.)

use crate::cli::ServerArgs;

/// Single-node (`orion up`) or member of a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Single,
    Cluster,
}

/// Runs a node until interrupted.
pub async fn serve(args: ServerArgs, mode: Mode) -> anyhow::Result<()> {
    serve_with_cluster_id(args, mode, None).await
}

/// Runs a node, recording `cluster_id` in a new data dir.
pub async fn serve_with_cluster_id(
    _args: ServerArgs,
    _mode: Mode,
    _cluster_id: Option<String>,
) -> anyhow::Result<()> {
    anyhow::bail!("the node is being assembled; see issue 6")
}
