//! openraft's network over the [`Transport`]: each RPC is one [`codec`](crate::codec) frame POSTed to the peer's Raft
//! port (see `server.rs` for the paths).

use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, network::Backoff};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{NodeId, TypeConfig};
use crate::error::{Error as ConsensusError, TransportFailure};
use crate::transport::Transport;

/// Paths of the Raft RPCs on a node's Raft port.
pub(crate) mod paths {
    pub const APPEND: &str = "/raft/append";
    pub const VOTE: &str = "/raft/vote";
    pub const PREVOTE: &str = "/raft/prevote";
    pub const SNAPSHOT: &str = "/raft/snapshot";
    pub const LEADER: &str = "/raft/leader";
    pub const STATUS: &str = "/raft/status";
}

/// Creates one [`PeerClient`] per target for openraft.
#[derive(Debug, Clone)]
pub struct NetworkFactory {
    transport: Transport,
}

impl NetworkFactory {
    /// A factory whose clients all go through `transport`.
    pub fn new(transport: Transport) -> Self {
        Self { transport }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        PeerClient {
            target,
            addr: node.addr.clone(),
            transport: self.transport.clone(),
        }
    }
}

/// The connection to one peer.
#[derive(Debug)]
pub struct PeerClient {
    target: NodeId,
    addr: String,
    transport: Transport,
}

impl PeerClient {
    async fn rpc<Req, Resp, E>(
        &self,
        path: &str,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let timeout = option.hard_ttl().max(Duration::from_millis(50));
        let answer: Result<Resp, RaftError<NodeId, E>> = self
            .transport
            .call(Some(self.target), &self.addr, path, req, timeout)
            .await
            .map_err(|e| match &e {
                ConsensusError::Transport {
                    failure: TransportFailure::NotDelivered,
                    ..
                } => RPCError::Unreachable(Unreachable::new(&e)),
                _ => RPCError::Network(NetworkError::new(&e)),
            })?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.rpc(paths::APPEND, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.rpc(paths::SNAPSHOT, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.rpc(paths::VOTE, &rpc, &option).await
    }

    fn backoff(&self) -> Backoff {
        // Retry an unreachable peer often enough that a restarted node rejoins quickly.
        Backoff::new(std::iter::repeat(Duration::from_millis(100)))
    }
}
