//! [`GossipMembership`]: the handle, the state it shares with its actor, and the `Membership`
//! implementation.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::num::{NonZeroU8, NonZeroUsize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use async_trait::async_trait;
use foca::{AccumulatingRuntime, Config, Foca, PeriodicParams, PostcardCodec};
use orion_core::membership::{Member, MemberState, Membership, MembershipEvent, MembershipEvents};
use orion_core::model::{Resources, now_millis};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::actor::{Actor, Command};
use super::identity::NodeIdentity;
use super::transport::{Transport, UdpTransport};
use super::view::View;
use super::{GossipConfig, GossipStats, GossipTimings, wire};
use crate::error::{Error, Result};

/// Counters updated by the actor, read by [`GossipMembership::stats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    received: AtomicU64,
    sent: AtomicU64,
    malformed: AtomicU64,
    foreign_cluster: AtomicU64,
    refused_duplicates: AtomicU64,
}

impl Counters {
    pub(crate) fn count_received(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn count_sent(&self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn count_malformed(&self) {
        self.malformed.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn count_foreign_cluster(&self) {
        self.foreign_cluster.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn count_refused_duplicate(&self) {
        self.refused_duplicates.fetch_add(1, Ordering::Relaxed);
    }
}

/// What the handle and the actor share.
#[derive(Debug)]
pub(crate) struct Shared {
    local: RwLock<Member>,
    others: RwLock<Vec<Member>>,
    subscribers: Mutex<Vec<mpsc::UnboundedSender<MembershipEvent>>>,
    pub(crate) stats: Counters,
    /// The cluster id in use: configured, or learned from a seed.
    pub(crate) cluster_id: watch::Sender<Option<String>>,
    /// Set when the node stopped because a live member already uses its node id (that member).
    pub(crate) duplicate_of: watch::Sender<Option<NodeIdentity>>,
}

impl Shared {
    /// Stores the new member list, then hands `events` to every live subscriber, in order.
    pub(crate) fn apply(&self, members: Vec<Member>, events: Vec<MembershipEvent>) {
        *self.others.write().unwrap_or_else(PoisonError::into_inner) = members;
        let mut subscribers = self
            .subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for event in events {
            tracing::debug!(node = event.node_id(), ?event, "membership event");
            subscribers.retain(|subscriber| subscriber.send(event.clone()).is_ok());
        }
    }

    pub(crate) fn set_local(&self, identity: &NodeIdentity) {
        *self.local.write().unwrap_or_else(PoisonError::into_inner) =
            identity.to_member(MemberState::Alive, 0);
    }

    /// Ends every subscriber's stream (the node stopped).
    pub(crate) fn close(&self) {
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Marks the local member `Left` and tells the local subscribers, once (the contract: a node
    /// that leaves is reported `Left`, by itself too).
    pub(crate) fn mark_local_left(&self) {
        let id = {
            let mut local = self.local.write().unwrap_or_else(PoisonError::into_inner);
            if local.state == MemberState::Left {
                return;
            }
            local.state = MemberState::Left;
            local.id.clone()
        };
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|subscriber| subscriber.send(MembershipEvent::Left(id.clone())).is_ok());
    }
}

/// SWIM gossip membership over a [`Transport`] (UDP by default). See the module docs.
///
/// Dropping the handle stops the node without a goodbye, as a crash would: others report it
/// `Suspect`, then `Dead`. Call [`Membership::leave`] first to be reported `Left`.
#[derive(Debug)]
pub struct GossipMembership {
    shared: Arc<Shared>,
    commands: mpsc::Sender<Command>,
    task: JoinHandle<()>,
    gossip_addr: SocketAddr,
    identity: Mutex<NodeIdentity>,
    timings: GossipTimings,
}

fn swim_config(timings: &GossipTimings) -> Config {
    let nonzero = |n: usize| NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN);
    Config {
        probe_period: timings.probe_period,
        probe_rtt: timings.probe_rtt,
        num_indirect_probes: nonzero(timings.indirect_probes),
        max_transmissions: NonZeroU8::new(timings.max_transmissions).unwrap_or(NonZeroU8::MIN),
        suspect_to_down_after: timings.suspect_to_down_after,
        // Never forget a down member: a renewed identity is what brings it back.
        remove_down_after: None,
        // Envelope bytes come on top of what foca produces.
        max_packet_size: nonzero(timings.max_packet_size - 8),
        notify_down_members: true,
        periodic_announce: Some(PeriodicParams {
            frequency: timings.announce_to_down_interval * 10,
            num_members: NonZeroUsize::MIN,
        }),
        periodic_announce_to_down_members: Some(PeriodicParams {
            frequency: timings.announce_to_down_interval,
            num_members: nonzero(2),
        }),
        periodic_gossip: Some(PeriodicParams {
            frequency: timings.gossip_interval,
            num_members: nonzero(timings.gossip_fanout),
        }),
    }
}

impl GossipMembership {
    /// Binds UDP at `config.bind` and joins through `config.seeds` (none: starts a cluster).
    ///
    /// Returns once the socket is bound; joining continues in the background (watch
    /// [`Membership::subscribe`] for `Joined`). Errors: an invalid config
    /// ([`Error::GossipConfig`]) or a socket that cannot be bound ([`Error::GossipIo`]).
    pub async fn start(config: GossipConfig) -> Result<Self> {
        config.validate()?;
        let transport =
            UdpTransport::bind(config.bind)
                .await
                .map_err(|source| Error::GossipIo {
                    addr: config.bind.to_string(),
                    source,
                })?;
        Self::start_with_transport(config, Arc::new(transport)).await
    }

    /// Like [`GossipMembership::start`] over any transport (`config.bind` is ignored): an
    /// in-process [`super::MemoryTransport`], or UDP with a fault filter.
    pub async fn start_with_transport(
        config: GossipConfig,
        transport: Arc<dyn Transport>,
    ) -> Result<Self> {
        config.validate()?;
        let gossip_addr = match config.addresses.gossip.parse::<SocketAddr>() {
            Ok(advertised) => advertised,
            Err(_) => transport.local_addr(),
        };
        let mut addresses = config.addresses.clone();
        addresses.gossip = gossip_addr.to_string();
        let identity = NodeIdentity {
            id: config.node_id.clone(),
            boot: now_millis(),
            generation: 0,
            gossip_addr,
            addresses,
            labels: config.labels.clone(),
            capacity: config.capacity,
        };
        check_identity_fits(&identity, &config.timings)?;
        let swim = Foca::new(
            identity.clone(),
            swim_config(&config.timings),
            rand_foca::make_rng(),
            PostcardCodec,
        );
        let shared = Arc::new(Shared {
            local: RwLock::new(identity.to_member(MemberState::Alive, 0)),
            others: RwLock::new(Vec::new()),
            subscribers: Mutex::new(Vec::new()),
            stats: Counters::default(),
            cluster_id: watch::channel(config.cluster_id.clone()).0,
            duplicate_of: watch::channel(None).0,
        });
        let (commands, command_rx) = mpsc::channel(16);
        let actor = Actor {
            swim,
            runtime: AccumulatingRuntime::new(),
            transport,
            shared: shared.clone(),
            view: View::new(config.node_id.clone()),
            seeds: config.seeds.clone(),
            join_retry: config.timings.join_retry_interval,
            seed_ids: Default::default(),
            joined_a_seed: false,
            timers: BTreeMap::new(),
            timer_seq: 0,
            cluster_id: config.cluster_id.clone().unwrap_or_default(),
            refused_since: None,
            duplicate_grace: config.timings.typical_detection() * 5,
            logs: Default::default(),
        };
        let task = tokio::spawn(actor.run(command_rx));
        Ok(GossipMembership {
            shared,
            commands,
            task,
            gossip_addr,
            identity: Mutex::new(identity),
            timings: config.timings,
        })
    }

    /// The advertised gossip address: the one to give other nodes as a seed.
    pub fn gossip_addr(&self) -> SocketAddr {
        self.gossip_addr
    }

    /// Datagram counters, malformed and foreign ones included.
    pub fn stats(&self) -> GossipStats {
        let stats = &self.shared.stats;
        GossipStats {
            packets_received: stats.received.load(Ordering::Relaxed),
            packets_sent: stats.sent.load(Ordering::Relaxed),
            malformed_packets: stats.malformed.load(Ordering::Relaxed),
            foreign_cluster_packets: stats.foreign_cluster.load(Ordering::Relaxed),
            refused_duplicates: stats.refused_duplicates.load(Ordering::Relaxed),
        }
    }

    /// The cluster id this node stamps its datagrams with: the configured one, or the one
    /// learned from the first seed that answered; `None` while unknown.
    pub fn cluster_id(&self) -> Option<String> {
        self.shared.cluster_id.borrow().clone()
    }

    /// Follows [`Self::cluster_id`]: changes once, when a node started without one learns it.
    pub fn watch_cluster_id(&self) -> watch::Receiver<Option<String>> {
        self.shared.cluster_id.subscribe()
    }

    /// Resolves if this node stops on its own because another live member already uses its
    /// node id: its seeds refused it for `5 × typical_detection` (a node that crashed and
    /// restarted at another address is accepted as soon as its old life is declared dead). The
    /// error, [`Error::DuplicateNodeId`], names the live holder's addresses. Never resolves
    /// otherwise. A refused node never announced itself, so the members saw nothing of it.
    pub async fn duplicate_node_id(&self) -> Error {
        let mut duplicate = self.shared.duplicate_of.subscribe();
        let holder = match duplicate.wait_for(Option::is_some).await {
            Ok(holder) => holder.clone(),
            // The sender lives in `shared`, which `self` holds: this cannot end.
            Err(_) => None,
        };
        match holder {
            Some(holder) => Error::DuplicateNodeId {
                node_id: holder.id.clone(),
                holder_gossip: holder.gossip_addr.to_string(),
                holder_api: holder.addresses.api.clone(),
                holder_raft: holder.addresses.raft.clone(),
            },
            None => std::future::pending().await,
        }
    }

    /// Gossips new labels and capacity; other members report `Updated`.
    ///
    /// Errors: [`Error::GossipStopped`] after `leave()`, [`Error::GossipConfig`] when the labels
    /// do not fit in a packet.
    pub async fn update_metadata(
        &self,
        labels: BTreeMap<String, String>,
        capacity: Resources,
    ) -> Result<()> {
        let mut template = self
            .identity
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        template.labels = labels.clone();
        template.capacity = capacity;
        check_identity_fits(&template, &self.timings)?;
        let (done, result) = oneshot::channel();
        self.commands
            .send(Command::Update {
                labels,
                capacity,
                done,
            })
            .await
            .map_err(|_| Error::GossipStopped)?;
        let next = result
            .await
            .map_err(|_| Error::GossipStopped)?
            .map_err(Error::GossipProtocol)?;
        self.shared.set_local(&next);
        *self.identity.lock().unwrap_or_else(PoisonError::into_inner) = next;
        Ok(())
    }
}

/// Every header carries two identities; they must leave room for updates.
fn check_identity_fits(identity: &NodeIdentity, timings: &GossipTimings) -> Result<()> {
    let len = wire::identity_len(identity);
    let budget = timings.max_packet_size / 5;
    if len > budget {
        return Err(Error::GossipConfig {
            field: "labels",
            value: format!("{} labels encoding to {len} bytes", identity.labels.len()),
            expected: format!(
                "node metadata (id, addresses, labels) of at most {budget} bytes (a fifth of timings.max_packet_size): trim the labels or raise max_packet_size"
            ),
        });
    }
    Ok(())
}

impl Drop for GossipMembership {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[async_trait]
impl Membership for GossipMembership {
    fn local(&self) -> Member {
        self.shared
            .local
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn members(&self) -> orion_core::Result<Vec<Member>> {
        let mut members = vec![self.local()];
        members.extend(
            self.shared
                .others
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .cloned(),
        );
        Ok(members)
    }

    fn subscribe(&self) -> MembershipEvents {
        let (tx, rx) = mpsc::unbounded_channel();
        if !self.task.is_finished() {
            self.shared
                .subscribers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(tx);
        }
        Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|event| (event, rx))
        }))
    }

    /// Tells every live member directly, then spreads the departure through SWIM and stops.
    /// Idempotent: a second call returns `Ok` at once.
    async fn leave(&self) -> orion_core::Result<()> {
        let (done, finished) = oneshot::channel();
        if self.commands.send(Command::Leave(done)).await.is_ok() {
            let _ = finished.await;
        }
        self.shared.mark_local_left();
        Ok(())
    }
}
