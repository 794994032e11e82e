//! The node's Prometheus metrics (`GET /metrics`), with prometheus-client.
//!
//! The library crates do not depend on a metrics library: the agent and the controllers report
//! events through [`orion_core::observe::Observer`], which [`Metrics`] implements with counters
//! and histograms; the store's commit latency is timed by [`TimedStore`] around the node's store;
//! the API is measured by the [`track_requests`] middleware; and what is a state rather than an
//! event (Raft term and apply lag, members by state, pending tasks by reason) is read when
//! scraped ([`Metrics::refresh`]). Container CPU and memory are sampled in the background
//! ([`sample_containers`]), since a runtime may take a second per container to answer.
//!
//! Every label set is bounded: reasons, states, outcomes and methods come from fixed lists
//! (anything else is `other`), API routes are the matched route templates (never the raw path;
//! `unmatched` for the rest), and the per-service container gauges have one series per service
//! running on this node. Recording an event is an atomic update; an API request adds one label
//! lookup under a read lock and one small allocation (the route label); nothing waits.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use orion_core::membership::MemberState;
use orion_core::model::{Task, TaskState};
use orion_core::scheduler::reasons;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::api::types::ClusterStatus;

mod dns;
mod http;
mod sampler;
mod store;

pub use http::track_requests;
pub use sampler::{sample_containers, watch_cluster_events};
pub use store::TimedStore;

/// The `Content-Type` of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The `Content-Type` of [`Metrics::encode_prometheus_text`]'s output.
pub const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Reason label of a pending task whose error names none of [`PENDING_REASONS`].
const OTHER: &str = "other";

/// The scheduler's rejection reasons, the `reason` label of `orion_scheduler_pending_tasks`.
const PENDING_REASONS: &[&str] = &[
    reasons::NODE_NOT_READY,
    reasons::INSUFFICIENT_CPU,
    reasons::INSUFFICIENT_MEMORY,
    reasons::INSUFFICIENT_DISK,
    reasons::NODE_TASK_LIMIT,
    reasons::SERVICE_PER_NODE_LIMIT,
    reasons::HOST_PORT_IN_USE,
    reasons::NODE_SELECTOR,
    reasons::OUTSIDE_ZONES,
    reasons::AVOIDED_ZONE,
    reasons::ZONE_AFFINITY,
    reasons::ZONE_ANTI_AFFINITY,
    reasons::SERVICE_ANTI_AFFINITY,
    reasons::LATENCY_TOO_HIGH,
    reasons::BANDWIDTH_TOO_LOW,
    reasons::LOSS_TOO_HIGH,
    reasons::UNMEASURED,
    reasons::UNKNOWN_NODE,
];

const MEMBER_STATES: &[(MemberState, &str)] = &[
    (MemberState::Alive, "alive"),
    (MemberState::Suspect, "suspect"),
    (MemberState::Dead, "dead"),
    (MemberState::Left, "left"),
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabel {
    event: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabel {
    service: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteCodeLabels {
    method: &'static str,
    route: String,
    code: u16,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Latency buckets from 1 ms to about 33 s (doubling).
fn latency_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Container start buckets from 10 ms to about 5.5 min (doubling): an image pull is slow.
fn start_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 16))
}

/// Every metric of a node, and the registry that encodes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    raft_term: Gauge,
    raft_leader_changes: Counter,
    raft_commit_latency: Histogram,
    raft_apply_lag: Gauge,
    placement_latency: Histogram,
    placements: Family<OutcomeLabel, Counter>,
    pending_tasks: Family<ReasonLabel, Gauge>,
    members: Family<StateLabel, Gauge>,
    membership_events: Family<EventLabel, Counter>,
    container_start_latency: Histogram,
    container_start_failures: Counter,
    container_restarts: Counter,
    container_cpu: Family<ServiceLabel, Gauge<f64, AtomicU64>>,
    container_memory: Family<ServiceLabel, Gauge>,
    api_requests: Family<RouteCodeLabels, Counter>,
    api_latency: HistogramFamily<RouteLabels>,
    dns_queries: Family<dns::DnsLabels, Counter>,
    dns_latency: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric registered under the `orion_` prefix, the fixed label values set to 0 so
    /// that each series exists from the start.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("orion");
        let m = Metrics {
            raft_term: Gauge::default(),
            raft_leader_changes: Counter::default(),
            raft_commit_latency: latency_buckets(),
            raft_apply_lag: Gauge::default(),
            placement_latency: latency_buckets(),
            placements: Family::default(),
            pending_tasks: Family::default(),
            members: Family::default(),
            membership_events: Family::default(),
            container_start_latency: start_buckets(),
            container_start_failures: Counter::default(),
            container_restarts: Counter::default(),
            container_cpu: Family::default(),
            container_memory: Family::default(),
            api_requests: Family::default(),
            api_latency: Family::new_with_constructor(latency_buckets as fn() -> Histogram),
            dns_queries: Family::default(),
            dns_latency: dns::dns_buckets(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "raft_term",
            "Current consensus term (1 on a single node)",
            m.raft_term.clone(),
        );
        r.register(
            "raft_leader_changes",
            "Times this node saw a new Raft leader, the first it learned included (0 on a \
             single node)",
            m.raft_leader_changes.clone(),
        );
        r.register(
            "raft_commit_latency_seconds",
            "Time from a write this node makes to the store until it is committed and applied \
             (through Raft in a cluster, a flushed local write on a single node)",
            m.raft_commit_latency.clone(),
        );
        r.register(
            "raft_apply_lag",
            "Log entries committed but not yet applied on this node",
            m.raft_apply_lag.clone(),
        );
        r.register(
            "scheduler_placement_latency_seconds",
            "Time the reconciler and scheduler took to plan a round that placed or left pending \
             at least one task (leader only)",
            m.placement_latency.clone(),
        );
        r.register(
            "scheduler_placements",
            "Tasks placed on a node (outcome=placed) or left pending (outcome=unplaced) by \
             reconcile rounds on this node (leader only)",
            m.placements.clone(),
        );
        r.register(
            "scheduler_pending_tasks",
            "Pending tasks of the cluster by the first scheduler reason their error names",
            m.pending_tasks.clone(),
        );
        r.register(
            "members",
            "Cluster members by state, as this node's membership sees them",
            m.members.clone(),
        );
        r.register(
            "membership_events",
            "Membership changes this node detected, by event",
            m.membership_events.clone(),
        );
        r.register(
            "container_start_latency_seconds",
            "Time to start a task's container on this node (image check or pull included)",
            m.container_start_latency.clone(),
        );
        r.register(
            "container_start_failures",
            "Task containers this node could not start",
            m.container_start_failures.clone(),
        );
        r.register(
            "container_restarts",
            "Task containers restarted in place on this node after they exited",
            m.container_restarts.clone(),
        );
        r.register(
            "container_cpu_percent",
            "CPU use of this node's running task containers by service, in percent of one core \
             (sampled every few seconds)",
            m.container_cpu.clone(),
        );
        r.register(
            "container_memory_bytes",
            "Memory use of this node's running task containers by service (sampled every few \
             seconds)",
            m.container_memory.clone(),
        );
        r.register(
            "api_requests",
            "API requests by method, matched route template and status code",
            m.api_requests.clone(),
        );
        r.register(
            "api_request_duration_seconds",
            "Time to answer an API request, until the response head (a streamed body is not \
             included), by method and matched route template",
            m.api_latency.clone(),
        );
        r.register(
            "dns_queries",
            "DNS queries this node's server answered, by query type (A, AAAA, SRV, SOA, NS, PTR, \
             TXT, CNAME, MX, ANY, other, none) and response code (NOERROR, NXDOMAIN, REFUSED, \
             SERVFAIL, FORMERR, NOTIMP, other)",
            m.dns_queries.clone(),
        );
        r.register(
            "dns_query_duration_seconds",
            "Time from receiving a DNS query to sending its answer",
            m.dns_latency.clone(),
        );
        for reason in PENDING_REASONS.iter().copied().chain([OTHER]) {
            m.pending_tasks
                .get_or_create(&ReasonLabel { reason })
                .set(0);
        }
        for (_, state) in MEMBER_STATES {
            m.members.get_or_create(&StateLabel { state }).set(0);
        }
        for outcome in ["placed", "unplaced"] {
            let _ = m.placements.get_or_create(&OutcomeLabel { outcome });
        }
        for event in MEMBERSHIP_EVENTS {
            let _ = m.membership_events.get_or_create(&EventLabel { event });
        }
        Metrics { registry, ..m }
    }

    /// Sets what is read at scrape time: Raft term and apply lag from `status`, members by
    /// state, and (when the store answered) pending tasks by reason from `tasks`.
    pub fn refresh(&self, status: &ClusterStatus, tasks: Option<&[Task]>) {
        self.raft_term
            .set(i64::try_from(status.term).unwrap_or(i64::MAX));
        let lag = status.commit_index.saturating_sub(status.applied_index);
        self.raft_apply_lag
            .set(i64::try_from(lag).unwrap_or(i64::MAX));
        for (state, label) in MEMBER_STATES {
            let n = status.members.iter().filter(|m| m.state == *state).count();
            self.members
                .get_or_create(&StateLabel { state: label })
                .set(n as i64);
        }
        if let Some(tasks) = tasks {
            let mut counts = [0i64; PENDING_REASONS.len() + 1];
            for t in tasks.iter().filter(|t| t.state == TaskState::Pending) {
                counts[pending_reason_index(t.error.as_deref().unwrap_or(""))] += 1;
            }
            for (i, reason) in PENDING_REASONS.iter().copied().chain([OTHER]).enumerate() {
                self.pending_tasks
                    .get_or_create(&ReasonLabel { reason })
                    .set(counts[i]);
            }
        }
    }

    /// The registry in the OpenMetrics text format ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// The registry in Prometheus' older text format (0.0.4, [`CONTENT_TYPE_TEXT`]), for
    /// clients that do not ask for OpenMetrics: the same series, with a counter's `HELP` and
    /// `TYPE` named after its `_total` sample, and without `# EOF`.
    pub fn encode_prometheus_text(&self) -> String {
        openmetrics_to_text(&self.encode())
    }

    /// Records a write to the store that took `elapsed` to commit.
    pub fn commit(&self, elapsed: Duration) {
        self.raft_commit_latency.observe(elapsed.as_secs_f64());
    }

    /// Records that the Raft leader changed.
    pub fn leader_changed(&self) {
        self.raft_leader_changes.inc();
    }

    /// Records a membership event (`joined`, `suspect`, `dead`, `left`, `recovered`,
    /// `updated`).
    pub fn membership_event(&self, event: &orion_core::membership::MembershipEvent) {
        use orion_core::membership::MembershipEvent as E;
        let event = match event {
            E::Joined(_) => "joined",
            E::Suspect(_) => "suspect",
            E::Dead(_) => "dead",
            E::Left(_) => "left",
            E::Recovered(_) => "recovered",
            E::Updated(_) => "updated",
        };
        self.membership_events
            .get_or_create(&EventLabel { event })
            .inc();
    }

    /// Replaces the per-service container gauges with `by_service` (CPU percent, memory bytes).
    pub fn set_container_usage(&self, by_service: &[(String, f64, u64)]) {
        self.container_cpu.clear();
        self.container_memory.clear();
        for (service, cpu, memory) in by_service {
            let label = ServiceLabel {
                service: service.clone(),
            };
            self.container_cpu.get_or_create(&label).set(*cpu);
            self.container_memory
                .get_or_create(&label)
                .set(i64::try_from(*memory).unwrap_or(i64::MAX));
        }
    }
}

/// Rewrites prometheus-client's OpenMetrics output into the 0.0.4 text format.
fn openmetrics_to_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| Some((p, line.strip_prefix(p)?)));
        match meta {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                out.push_str(prefix);
                out.push_str(name);
                if counters.contains(name) {
                    out.push_str("_total");
                }
                out.push(' ');
                out.push_str(tail);
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

const MEMBERSHIP_EVENTS: [&str; 6] = ["joined", "suspect", "dead", "left", "recovered", "updated"];

/// Index in [`PENDING_REASONS`] of the reason `error` names first, or the index of `other`.
fn pending_reason_index(error: &str) -> usize {
    PENDING_REASONS
        .iter()
        .enumerate()
        .filter_map(|(i, r)| error.find(r).map(|at| (at, i)))
        .min()
        .map_or(PENDING_REASONS.len(), |(_, i)| i)
}

impl orion_core::observe::Observer for Metrics {
    fn reconcile_planned(&self, elapsed: Duration, placed: usize, unplaced: usize) {
        if placed + unplaced == 0 {
            return;
        }
        self.placement_latency.observe(elapsed.as_secs_f64());
        self.placements
            .get_or_create(&OutcomeLabel { outcome: "placed" })
            .inc_by(placed as u64);
        self.placements
            .get_or_create(&OutcomeLabel {
                outcome: "unplaced",
            })
            .inc_by(unplaced as u64);
    }

    fn container_started(&self, elapsed: Duration) {
        self.container_start_latency.observe(elapsed.as_secs_f64());
    }

    fn container_start_failed(&self) {
        self.container_start_failures.inc();
    }

    fn container_restarted(&self) {
        self.container_restarts.inc();
    }
}

#[cfg(test)]
mod tests;
