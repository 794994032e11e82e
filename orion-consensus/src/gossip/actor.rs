//! The task that owns the SWIM state machine: it feeds foca datagrams, timers and commands,
//! sends what foca asks for, and publishes the resulting events.
//!
//! Datagrams are handled before due timers (a `biased` select): a node that was paused or
//! starved first reads the acks and refutations waiting in its socket, and only then lets its
//! probe and suspicion timers fire, so its own slowness does not make it accuse live members.
//! A bounded run of datagrams still lets due timers through, so a flood cannot stall probing.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use foca::{AccumulatingRuntime, Foca, NoCustomBroadcast, OwnedNotification, PostcardCodec, Timer};
use orion_core::model::{NodeId, Resources};
use rand_foca::rngs::StdRng;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::identity::NodeIdentity;
use super::membership::Shared;
use super::transport::{MAX_DATAGRAM, Transport};
use super::view::View;
use super::wire::{self, Frame};
use crate::cluster_id::LogLimiter;

/// Repeated log lines (datagrams of another cluster, refusals, renewals) are written at most
/// this often, with the count of the ones held back.
const LOG_PERIOD: Duration = Duration::from_secs(10);

/// How many datagrams in a row may be handled before due timers get a turn.
const MAX_DATAGRAMS_BEFORE_TIMERS: u32 = 64;
/// A leave notice is sent this many times to each member (UDP may drop one).
const LEAVE_NOTICE_COPIES: usize = 2;
/// Members announced to once our identity changed (a renewal or new metadata), live ones first.
const ANNOUNCES_AFTER_NEW_IDENTITY: usize = 8;

pub(crate) type SwimMachine = Foca<NodeIdentity, PostcardCodec, StdRng, NoCustomBroadcast>;

/// Requests from the [`super::GossipMembership`] handle.
#[derive(Debug)]
pub(crate) enum Command {
    /// Leave gracefully, then stop.
    Leave(oneshot::Sender<()>),
    /// Gossip new metadata as the next generation of our identity; replies with it.
    Update {
        labels: BTreeMap<String, String>,
        capacity: Resources,
        done: oneshot::Sender<Result<NodeIdentity, String>>,
    },
}

pub(crate) struct Actor {
    pub(crate) swim: SwimMachine,
    pub(crate) runtime: AccumulatingRuntime<NodeIdentity>,
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) view: View,
    pub(crate) seeds: Vec<SocketAddr>,
    pub(crate) join_retry: Duration,
    /// Ids of the seeds that answered a hello. Joining is done once one of them is a member:
    /// knowing some other member is not enough, since that member may have joined through us
    /// while our own hello was still unanswered, leaving two clusters that never merge.
    pub(crate) seed_ids: BTreeSet<NodeId>,
    /// Set once a seed was seen as a member; from then on the seeds are greeted again only
    /// while this node knows no live member (a seed that later leaves is not chased).
    pub(crate) joined_a_seed: bool,
    pub(crate) timers: BTreeMap<(Instant, u64), Timer<NodeIdentity>>,
    pub(crate) timer_seq: u64,
    /// The cluster id stamped on every datagram (empty: none yet, learned from a seed's reply).
    pub(crate) cluster_id: String,
    /// When a seed first refused our hello because a live member uses our node id; cleared by
    /// a hello reply. Refused for `duplicate_grace` in a row, the node stops.
    pub(crate) refused_since: Option<Instant>,
    pub(crate) duplicate_grace: Duration,
    pub(crate) logs: Logs,
}

/// Rate limits of the log lines a misbehaving peer could otherwise repeat without end.
#[derive(Debug)]
pub(crate) struct Logs {
    foreign_cluster: LogLimiter,
    refused_duplicate: LogLimiter,
    refused_us: LogLimiter,
    rejoined: LogLimiter,
    declared_down: LogLimiter,
}

impl Default for Logs {
    fn default() -> Self {
        Logs {
            foreign_cluster: LogLimiter::new(LOG_PERIOD),
            refused_duplicate: LogLimiter::new(LOG_PERIOD),
            refused_us: LogLimiter::new(LOG_PERIOD),
            rejoined: LogLimiter::new(LOG_PERIOD),
            declared_down: LogLimiter::new(LOG_PERIOD),
        }
    }
}

impl Actor {
    /// Runs until `leave`, until the handle is dropped, or until the transport is gone; then
    /// ends the subscribers' streams.
    pub(crate) async fn run(mut self, commands: mpsc::Receiver<Command>) {
        let shared = self.shared.clone();
        self.serve(commands).await;
        shared.close();
    }

    async fn serve(&mut self, mut commands: mpsc::Receiver<Command>) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut next_join = Instant::now();
        let mut datagrams_in_row = 0u32;
        loop {
            let next_timer = self.timers.keys().next().map(|(at, _)| *at);
            let joining =
                !self.seeds.is_empty() && (self.swim.num_members() == 0 || !self.joined_a_seed());
            let wake = match (next_timer, joining) {
                (Some(at), true) => Some(at.min(next_join)),
                (Some(at), false) => Some(at),
                (None, true) => Some(next_join),
                (None, false) => None,
            };
            tokio::select! {
                biased;
                command = commands.recv() => match command {
                    None => return,
                    Some(Command::Leave(done)) => {
                        self.leave().await;
                        let _ = done.send(());
                        return;
                    }
                    Some(Command::Update { labels, capacity, done }) => {
                        let mut next = self.swim.identity().with_next_generation();
                        next.labels = labels;
                        next.capacity = capacity;
                        let result = self
                            .swim
                            .change_identity(next.clone(), &mut self.runtime)
                            .map(|()| next)
                            .map_err(|err| err.to_string());
                        if result.is_ok() {
                            self.announce_new_identity();
                        }
                        let _ = done.send(result);
                    }
                },
                received = self.transport.recv_from(&mut buf) => match received {
                    Ok((len, from)) => {
                        if !self.handle_datagram(&buf[..len], from).await {
                            return;
                        }
                        datagrams_in_row += 1;
                    }
                    Err(err) if err.kind() == std::io::ErrorKind::NotConnected => return,
                    // A failed receive concerns one datagram (or an ICMP error): keep serving.
                    Err(err) => tracing::debug!(%err, "gossip receive error"),
                },
                () = sleep_until(wake), if wake.is_some() => {
                    datagrams_in_row = 0;
                    self.fire_due_timers();
                    if joining && Instant::now() >= next_join {
                        self.say_hello_to_seeds().await;
                        next_join = Instant::now() + self.join_retry;
                    }
                }
            }
            if datagrams_in_row >= MAX_DATAGRAMS_BEFORE_TIMERS {
                datagrams_in_row = 0;
                self.fire_due_timers();
            }
            self.flush().await;
        }
    }

    async fn send(&self, to: SocketAddr, datagram: &[u8]) {
        self.shared.stats.count_sent();
        if let Err(err) = self.transport.send_to(to, datagram).await {
            tracing::debug!(%to, %err, "gossip send failed");
        }
    }

    fn joined_a_seed(&mut self) -> bool {
        if !self.joined_a_seed && !self.seed_ids.is_empty() {
            self.joined_a_seed = self
                .swim
                .iter_members()
                .any(|member| self.seed_ids.contains(&member.id().id));
        }
        self.joined_a_seed
    }

    async fn say_hello_to_seeds(&self) {
        let own = self.swim.identity().gossip_addr;
        let hello = wire::hello(&self.cluster_id, self.swim.identity());
        for seed in self.seeds.iter().filter(|seed| **seed != own) {
            self.send(*seed, &hello).await;
        }
    }

    /// Whether a datagram stamped with `cluster` is for this node: same cluster; or a hello
    /// from a node that has no cluster id yet (it asks to join); or, while this node has none,
    /// a seed's reply (which teaches it the id) or refusal.
    fn accepts(&self, cluster: &str, frame: &Frame<'_>) -> bool {
        if cluster == self.cluster_id {
            return true;
        }
        if self.cluster_id.is_empty() {
            matches!(frame, Frame::HelloReply(_) | Frame::Refuse(_))
        } else {
            cluster.is_empty() && matches!(frame, Frame::Hello(_))
        }
    }

    /// The live member (this node included) that already uses `newcomer`'s node id from
    /// another gossip address, if any. The same address is a restart of that member: accepted.
    fn live_holder_of(&self, newcomer: &NodeIdentity) -> Option<NodeIdentity> {
        let own = self.swim.identity();
        if newcomer.id == own.id {
            return (newcomer.gossip_addr != own.gossip_addr).then(|| own.clone());
        }
        self.swim
            .iter_members()
            .map(|member| member.id())
            .find(|member| member.id == newcomer.id && member.gossip_addr != newcomer.gossip_addr)
            .cloned()
    }

    /// A seed says a live member uses our node id. Returns false (stop) once that has lasted
    /// `duplicate_grace`: long enough for a crashed old life of this node to be declared dead.
    fn refused(&mut self, holder: NodeIdentity) -> bool {
        let since = *self.refused_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= self.duplicate_grace {
            tracing::error!(
                node = %holder.id,
                holder_gossip = %holder.gossip_addr,
                holder_api = %holder.addresses.api,
                "another live member uses this node id; stopping gossip without joining"
            );
            self.shared.duplicate_of.send_replace(Some(holder));
            return false;
        }
        if let Some(held_back) = self.logs.refused_us.allow() {
            tracing::warn!(
                node = %holder.id,
                holder_gossip = %holder.gossip_addr,
                held_back,
                "a seed refused this node: a live member uses its node id; retrying until it is \
                 declared dead or the grace period ends"
            );
        }
        true
    }

    /// Handles one datagram; returns false when the node must stop (its node id is taken).
    async fn handle_datagram(&mut self, datagram: &[u8], from: SocketAddr) -> bool {
        self.shared.stats.count_received();
        let (cluster, frame) = match wire::decode(datagram) {
            Ok(decoded) => decoded,
            Err(kind) => {
                tracing::debug!(%from, ?kind, "dropped a malformed gossip datagram");
                self.shared.stats.count_malformed();
                return true;
            }
        };
        if !self.accepts(cluster, &frame) {
            self.shared.stats.count_foreign_cluster();
            if let Some(held_back) = self.logs.foreign_cluster.allow() {
                tracing::warn!(
                    %from,
                    theirs = cluster,
                    ours = %self.cluster_id,
                    held_back,
                    "dropped gossip from a node of another cluster"
                );
            }
            return true;
        }
        match frame {
            Frame::Swim(payload) => {
                if let Err(err) = self.swim.handle_data(payload, &mut self.runtime) {
                    match err {
                        foca::Error::Decode(_)
                        | foca::Error::MalformedPacket
                        | foca::Error::DataTooBig => {
                            tracing::debug!(%from, %err, "dropped an undecodable SWIM packet");
                            self.shared.stats.count_malformed();
                        }
                        other => tracing::debug!(%from, err = %other, "SWIM packet ignored"),
                    }
                }
            }
            Frame::Hello(newcomer) => match self.live_holder_of(&newcomer) {
                Some(holder) => {
                    self.shared.stats.count_refused_duplicate();
                    if let Some(held_back) = self.logs.refused_duplicate.allow() {
                        tracing::warn!(
                            %from,
                            node = %newcomer.id,
                            holder_gossip = %holder.gossip_addr,
                            held_back,
                            "refused a second process using a live member's node id"
                        );
                    }
                    self.send(from, &wire::refuse(&self.cluster_id, &holder))
                        .await;
                }
                None => {
                    let reply = wire::hello_reply(&self.cluster_id, self.swim.identity());
                    self.send(from, &reply).await;
                }
            },
            Frame::HelloReply(seed) => {
                self.refused_since = None;
                if self.cluster_id.is_empty() && !cluster.is_empty() {
                    tracing::info!(cluster_id = cluster, seed = %seed.id, "learned the cluster id");
                    self.cluster_id = cluster.to_owned();
                    self.shared
                        .cluster_id
                        .send_replace(Some(cluster.to_owned()));
                }
                if seed.id != self.swim.identity().id {
                    self.seed_ids.insert(seed.id.clone());
                    if let Err(err) = self.swim.announce(seed, &mut self.runtime) {
                        tracing::debug!(%err, "announce to seed failed");
                    }
                }
            }
            Frame::Leave(identity) => {
                if let Some(event) = self.view.mark_left(&identity) {
                    self.shared.apply(self.view.members(), vec![event]);
                }
            }
            Frame::Refuse(holder) => {
                if holder.id == self.swim.identity().id {
                    return self.refused(holder);
                }
            }
        }
        true
    }

    fn fire_due_timers(&mut self) {
        let now = Instant::now();
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let timer = entry.remove();
            if let Err(err) = self.swim.handle_timer(timer, &mut self.runtime) {
                tracing::debug!(%err, "SWIM timer failed");
            }
        }
    }

    /// Sends what foca queued, arms its timers, follows its notifications and publishes events.
    async fn flush(&mut self) {
        while let Some((to, data)) = self.runtime.to_send() {
            self.send(to.gossip_addr, &wire::swim(&self.cluster_id, &data))
                .await;
        }
        let now = Instant::now();
        while let Some((after, timer)) = self.runtime.to_schedule() {
            self.timer_seq += 1;
            self.timers.insert((now + after, self.timer_seq), timer);
        }
        let mut rejoined = false;
        while let Some(notification) = self.runtime.to_notify() {
            match notification {
                OwnedNotification::Rejoin(identity) => {
                    if let Some(held_back) = self.logs.rejoined.allow() {
                        tracing::info!(
                            generation = identity.generation,
                            held_back,
                            "rejoined after being declared down"
                        );
                    }
                    self.shared.set_local(&identity);
                    rejoined = true;
                }
                OwnedNotification::Defunct => {
                    if let Some(held_back) = self.logs.declared_down.allow() {
                        tracing::warn!(held_back, "this node was declared down");
                    }
                }
                other => tracing::trace!(?other, "SWIM notification"),
            }
        }
        if rejoined {
            self.announce_new_identity();
            while let Some((to, data)) = self.runtime.to_send() {
                self.send(to.gossip_addr, &wire::swim(&self.cluster_id, &data))
                    .await;
            }
        }
        let events = self.view.sync(self.swim.iter_membership_state());
        if !events.is_empty() {
            self.shared.apply(self.view.members(), events);
        }
    }

    /// Announces our new identity to the members we know (at most
    /// [`ANNOUNCES_AFTER_NEW_IDENTITY`], live ones first, then those we hold down).
    ///
    /// Once its identity changed, foca accepts only messages addressed to the new one, and its
    /// timers stay stopped until a member talks to it. Members that renewed at the same moment
    /// (on both sides of a healed partition, every member does) know only our old identity, as
    /// we know only theirs: without this, neither would ever hear from the other again. An
    /// announce is accepted by node id, whatever the identity it is addressed to, and answered.
    fn announce_new_identity(&mut self) {
        let own = self.swim.identity().id.clone();
        let live = self.swim.iter_members().map(|m| m.id().clone());
        let down = (self.swim.iter_membership_state())
            .filter(|m| m.state() == foca::State::Down)
            .map(|m| m.id().clone());
        let targets: Vec<NodeIdentity> = live
            .chain(down)
            .filter(|target| target.id != own)
            .take(ANNOUNCES_AFTER_NEW_IDENTITY)
            .collect();
        for target in targets {
            if let Err(err) = self.swim.announce(target, &mut self.runtime) {
                tracing::debug!(%err, "announce after a new identity failed");
            }
        }
    }

    /// Tells every live member (and the seeds) directly that we leave (so they report `Left`, not `Dead`), then
    /// lets SWIM spread our departure.
    async fn leave(&mut self) {
        let notice = wire::leave(&self.cluster_id, self.swim.identity());
        // The seeds too: a member that joined a moment ago may not have the roster yet.
        let own = self.swim.identity().gossip_addr;
        let mut targets: Vec<SocketAddr> = self
            .swim
            .iter_members()
            .map(|member| member.id().gossip_addr)
            .chain(self.seeds.iter().copied())
            .filter(|addr| *addr != own)
            .collect();
        targets.sort();
        targets.dedup();
        for _ in 0..LEAVE_NOTICE_COPIES {
            for to in &targets {
                self.send(*to, &notice).await;
            }
        }
        if let Err(err) = self.swim.leave_cluster(&mut self.runtime) {
            tracing::debug!(%err, "SWIM leave failed");
        }
        while let Some((to, data)) = self.runtime.to_send() {
            self.send(to.gossip_addr, &wire::swim(&self.cluster_id, &data))
                .await;
        }
        self.shared.mark_local_left();
    }
}

async fn sleep_until(wake: Option<Instant>) {
    if let Some(at) = wake {
        tokio::time::sleep_until(at).await;
    }
}
