//! Placement simulation: a service graph placed on nodes whose pairwise RTT is a given matrix,
//! once with the network-aware pipeline ([`crate::scoring::network_aware_pipeline`]) and once
//! with the resource-only default ([`Scheduler::default_pipeline`]), compared by the mean RTT
//! of the graph's calls.
//!
//! - Nodes `n0`, `n1`, ... are identical, sized so the whole graph fits in about half the
//!   cluster (at least 4 cores and 16 GiB each), have no zone label, and are all `Ready`.
//! - The matrix becomes the view's [`NetworkMatrix`] (RTT only: no loss, no bandwidth); an
//!   unmeasured pair stays unmeasured (the network scorer is neutral about it).
//! - Services are placed callees first (a depth-first order over the edges; a cycle is broken
//!   at the service listed first), each replica placed and assigned in turn; a service
//!   depends on (`depends_on`) the services it calls.
//! - Both pipelines scan every node (no sampling), so the comparison is about scoring only.
//! - The mean RTT is over every (edge, caller replica): the RTT from the caller's node to the
//!   nearest node running the callee (0 on the same node). A pair whose callee replicas are
//!   all unmeasured from the caller's node is left out and counted in `unmeasured_calls`.
//!
//! ```
//! use orion_netscore::placement_sim::{Graph, simulate};
//!
//! let graph = Graph::parse(r#"{"services": ["web", {"name": "db", "replicas": 2}],
//!                              "edges": [["web", "db"]]}"#)?;
//! // Two zones of two nodes: 1 ms inside, 30 ms across; one pair unmeasured.
//! let rtt = vec![
//!     vec![Some(0.0), Some(1.0), Some(30.0), None],
//!     vec![Some(1.0), Some(0.0), Some(30.0), Some(30.0)],
//!     vec![Some(30.0), Some(30.0), Some(0.0), Some(1.0)],
//!     vec![None, Some(30.0), Some(1.0), Some(0.0)],
//! ];
//! let report = simulate(&rtt, &graph, 7)?;
//! assert!(report.network_aware.mean_rtt_ms <= report.resource_only.mean_rtt_ms);
//! println!("{}", serde_json::to_string(&report).unwrap());
//! # Ok::<(), orion_netscore::Error>(())
//! ```

use std::collections::HashMap;

use orion_core::model::{NetworkMatrix, NetworkMeasurement, Node, Resources, ServiceSpec};
use orion_core::scheduler::{ClusterView, PlacementRequest, Scheduler, SchedulerConfig};
use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::scoring::network_aware_pipeline;

/// Most services in a graph.
pub const MAX_SERVICES: usize = 10_000;
/// Most edges in a graph.
pub const MAX_EDGES: usize = 100_000;
/// Most replicas of one service.
pub const MAX_REPLICAS: u32 = 1_000;
/// Most replicas of all services together.
pub const MAX_TOTAL_REPLICAS: u64 = 100_000;
/// Most nodes (rows of the RTT matrix).
pub const MAX_NODES: usize = 5_000;
/// Longest service name, in bytes.
pub const MAX_NAME: usize = 253;

const DEFAULT_CPU: u64 = 100;
const DEFAULT_MEMORY: u64 = 64 << 20;

/// One service of a [`Graph`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Service {
    pub name: String,
    /// At least 1, at most [`MAX_REPLICAS`] (default 1).
    pub replicas: u32,
    /// Per replica (default 100).
    pub cpu_millicores: u64,
    /// Per replica (default 64 MiB).
    pub memory_bytes: u64,
}

/// A service graph: services and the calls between them (`caller -> callee`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Graph {
    pub services: Vec<Service>,
    /// `(caller, callee)` pairs; each names a service of the graph, and a service never calls
    /// itself.
    pub edges: Vec<(String, String)>,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::InvalidGraph(msg.into())
}

fn field_u64(obj: &serde_json::Map<String, Value>, key: &str, at: &str) -> Result<Option<u64>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| bad(format!("{at}.{key}: got {v}, expected a whole number >= 0"))),
    }
}

impl Graph {
    /// Reads `{"services": [...], "edges": [["caller", "callee"], ...]}`. A service is a name or
    /// `{"name", "replicas", "cpu_millicores", "memory_bytes"}` (all but `name` optional); keys
    /// not listed here are ignored. Refused, with the path of the problem: bad JSON, a missing
    /// `services`, an empty or duplicate name, zero or more than [`MAX_REPLICAS`] replicas,
    /// zero cpu or memory, an edge naming an unknown service or a service calling itself, and
    /// more than [`MAX_SERVICES`] services, [`MAX_EDGES`] edges or [`MAX_TOTAL_REPLICAS`]
    /// replicas.
    pub fn parse(json: &str) -> Result<Graph> {
        let root: Value = serde_json::from_str(json).map_err(|e| bad(format!("not JSON: {e}")))?;
        let obj = root
            .as_object()
            .ok_or_else(|| bad("expected an object {\"services\": [...], \"edges\": [...]}"))?;
        let list = obj
            .get("services")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("services: expected a list of names or objects"))?;
        if list.len() > MAX_SERVICES {
            return Err(bad(format!(
                "services: {} given, at most {MAX_SERVICES}",
                list.len()
            )));
        }
        let mut services = Vec::with_capacity(list.len());
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut total: u64 = 0;
        for (i, v) in list.iter().enumerate() {
            let at = format!("services[{i}]");
            let service = match v {
                Value::String(name) => Service {
                    name: name.clone(),
                    replicas: 1,
                    cpu_millicores: DEFAULT_CPU,
                    memory_bytes: DEFAULT_MEMORY,
                },
                Value::Object(o) => {
                    let name = o
                        .get("name")
                        .and_then(Value::as_str)
                        .ok_or_else(|| bad(format!("{at}.name: expected a string")))?;
                    let replicas = field_u64(o, "replicas", &at)?.unwrap_or(1);
                    if replicas == 0 || replicas > u64::from(MAX_REPLICAS) {
                        return Err(bad(format!(
                            "{at}.replicas: got {replicas}, expected 1 to {MAX_REPLICAS}"
                        )));
                    }
                    let cpu = field_u64(o, "cpu_millicores", &at)?.unwrap_or(DEFAULT_CPU);
                    let mem = field_u64(o, "memory_bytes", &at)?.unwrap_or(DEFAULT_MEMORY);
                    if cpu == 0 || mem == 0 {
                        return Err(bad(format!(
                            "{at}: cpu_millicores and memory_bytes must be above 0"
                        )));
                    }
                    Service {
                        name: name.to_owned(),
                        replicas: replicas as u32,
                        cpu_millicores: cpu,
                        memory_bytes: mem,
                    }
                }
                other => {
                    return Err(bad(format!(
                        "{at}: got {other}, expected a name or an object"
                    )));
                }
            };
            if service.name.is_empty() || service.name.len() > MAX_NAME {
                return Err(bad(format!("{at}.name: expected 1 to {MAX_NAME} bytes")));
            }
            if index.insert(service.name.clone(), i).is_some() {
                return Err(bad(format!(
                    "{at}.name: {:?} is listed twice",
                    service.name
                )));
            }
            total += u64::from(service.replicas);
            if total > MAX_TOTAL_REPLICAS {
                return Err(bad(format!(
                    "more than {MAX_TOTAL_REPLICAS} replicas in all"
                )));
            }
            services.push(service);
        }
        let mut edges = Vec::new();
        match obj.get("edges") {
            None | Some(Value::Null) => {}
            Some(Value::Array(list)) => {
                if list.len() > MAX_EDGES {
                    return Err(bad(format!(
                        "edges: {} given, at most {MAX_EDGES}",
                        list.len()
                    )));
                }
                for (i, e) in list.iter().enumerate() {
                    let pair = e.as_array().filter(|a| a.len() == 2);
                    let names = pair.and_then(|a| Some((a[0].as_str()?, a[1].as_str()?)));
                    let Some((caller, callee)) = names else {
                        return Err(bad(format!(
                            "edges[{i}]: got {e}, expected [\"caller\", \"callee\"]"
                        )));
                    };
                    for n in [caller, callee] {
                        if !index.contains_key(n) {
                            return Err(bad(format!(
                                "edges[{i}]: {n:?} is not a service of the graph"
                            )));
                        }
                    }
                    if caller == callee {
                        return Err(bad(format!("edges[{i}]: {caller:?} calls itself")));
                    }
                    edges.push((caller.to_owned(), callee.to_owned()));
                }
            }
            Some(other) => {
                return Err(bad(format!("edges: got {other}, expected a list of pairs")));
            }
        }
        Ok(Graph { services, edges })
    }

    /// Services in placement order: callees before their callers (depth first, in the order
    /// listed; a cycle is broken where it is entered).
    fn placement_order(&self) -> Vec<usize> {
        let index: HashMap<&str, usize> = self
            .services
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.as_str(), i))
            .collect();
        let mut callees: Vec<Vec<usize>> = vec![Vec::new(); self.services.len()];
        for (a, b) in &self.edges {
            callees[index[a.as_str()]].push(index[b.as_str()]);
        }
        let mut seen = vec![false; self.services.len()];
        let mut order = Vec::with_capacity(self.services.len());
        for root in 0..self.services.len() {
            if seen[root] {
                continue;
            }
            // Iterative post-order, so deep graphs cannot overflow the stack.
            let mut stack = vec![(root, 0usize)];
            seen[root] = true;
            while let Some(&mut (v, ref mut next)) = stack.last_mut() {
                if let Some(&c) = callees[v].get(*next) {
                    *next += 1;
                    if !seen[c] {
                        seen[c] = true;
                        stack.push((c, 0));
                    }
                } else {
                    order.push(v);
                    stack.pop();
                }
            }
        }
        order
    }
}

/// One pipeline's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PipelineResult {
    /// Mean RTT of the graph's calls, ms (0 when there is no measured call).
    pub mean_rtt_ms: f64,
    /// (edge, caller replica) pairs measured and averaged.
    pub calls: u64,
    /// Pairs left out because no callee replica was measured from the caller's node.
    pub unmeasured_calls: u64,
    /// Replicas no node could take.
    pub unplaced: u64,
    /// Distinct nodes used.
    pub nodes_used: usize,
}

/// What [`simulate`] found; one JSON object per run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlacementReport {
    pub nodes: usize,
    pub services: usize,
    pub edges: usize,
    pub replicas: u64,
    pub seed: u64,
    pub network_aware: PipelineResult,
    pub resource_only: PipelineResult,
    /// `network_aware.mean_rtt_ms / resource_only.mean_rtt_ms`; `None` when the latter is 0.
    /// Below 1 means the network-aware pipeline placed calls closer.
    pub ratio: Option<f64>,
}

/// Checks the matrix: square, 1 to [`MAX_NODES`] rows, each value finite and >= 0.
fn check_matrix(rtt: &[Vec<Option<f64>>]) -> Result<()> {
    let n = rtt.len();
    if n == 0 || n > MAX_NODES {
        return Err(Error::InvalidMatrix(format!(
            "{n} rows, expected 1 to {MAX_NODES}"
        )));
    }
    for (i, row) in rtt.iter().enumerate() {
        if row.len() != n {
            return Err(Error::InvalidMatrix(format!(
                "row {i} has {} values, expected {n} (a square matrix)",
                row.len()
            )));
        }
        if let Some((j, v)) = row
            .iter()
            .enumerate()
            .find_map(|(j, v)| v.filter(|v| !(v.is_finite() && *v >= 0.0)).map(|v| (j, v)))
        {
            return Err(Error::InvalidMatrix(format!(
                "row {i}, column {j}: {v}, expected a finite RTT >= 0 ms (None for unmeasured)"
            )));
        }
    }
    Ok(())
}

/// RTT between nodes `a` and `b`: 0 for the same node, else `rtt[a][b]`, else `rtt[b][a]`.
fn rtt_between(rtt: &[Vec<Option<f64>>], a: usize, b: usize) -> Option<f64> {
    if a == b {
        return Some(0.0);
    }
    rtt[a][b].or(rtt[b][a])
}

/// Places `graph` on `rtt.len()` nodes whose RTT (ms; `None` = unmeasured) is `rtt`, with both
/// pipelines seeded with `seed`, and reports the mean RTT of the calls of each. Deterministic
/// for the same inputs. Errors: a matrix that is not square, is empty, has more than
/// [`MAX_NODES`] rows or a negative or non-finite value.
pub fn simulate(rtt: &[Vec<Option<f64>>], graph: &Graph, seed: u64) -> Result<PlacementReport> {
    check_matrix(rtt)?;
    let n = rtt.len();
    let replicas: u64 = graph.services.iter().map(|s| u64::from(s.replicas)).sum();
    let need = |per: fn(&Service) -> u64| -> u64 {
        graph
            .services
            .iter()
            .map(|s| per(s).saturating_mul(u64::from(s.replicas)))
            .sum()
    };
    let per_node = |total: u64, floor: u64| (total.saturating_mul(2) / n as u64).max(floor);
    let capacity = Resources::new(
        per_node(need(|s| s.cpu_millicores), 4000),
        per_node(need(|s| s.memory_bytes), 16 << 30),
    );
    let nodes: Vec<Node> = (0..n)
        .map(|i| Node::new(format!("n{i}"), capacity))
        .collect();
    let mut matrix = NetworkMatrix::new();
    for i in 0..n {
        for j in i + 1..n {
            if let Some(v) = rtt_between(rtt, i, j) {
                matrix.insert(NetworkMeasurement {
                    from: nodes[i].id.clone(),
                    to: nodes[j].id.clone(),
                    rtt_ms: v,
                    jitter_ms: 0.0,
                    loss: 0.0,
                    bandwidth_mbps: None,
                    measured_at: 0,
                    ..NetworkMeasurement::default()
                });
            }
        }
    }
    let config = SchedulerConfig {
        full_scan_up_to: usize::MAX,
        ..SchedulerConfig::with_seed(seed)
    };
    let view = ClusterView::new(nodes, &[], matrix);
    let aware = network_aware_pipeline(config.clone());
    let plain = Scheduler::default_pipeline(config);
    Ok(PlacementReport {
        nodes: n,
        services: graph.services.len(),
        edges: graph.edges.len(),
        replicas,
        seed,
        network_aware: run(&aware, view.clone(), graph, rtt),
        resource_only: run(&plain, view, graph, rtt),
        ratio: None,
    }
    .with_ratio())
}

impl PlacementReport {
    fn with_ratio(mut self) -> Self {
        let base = self.resource_only.mean_rtt_ms;
        self.ratio = (base > 0.0).then(|| self.network_aware.mean_rtt_ms / base);
        self
    }
}

/// Places every replica with `scheduler` and measures the graph's calls.
fn run(
    scheduler: &Scheduler,
    mut view: ClusterView,
    graph: &Graph,
    rtt: &[Vec<Option<f64>>],
) -> PipelineResult {
    let mut placed: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut unplaced = 0;
    for i in graph.placement_order() {
        let s = &graph.services[i];
        let mut spec = ServiceSpec::new(s.name.clone(), "sim", s.replicas);
        spec.resources.cpu_millicores = s.cpu_millicores;
        spec.resources.memory_bytes = s.memory_bytes;
        spec.depends_on = graph
            .edges
            .iter()
            .filter(|(a, _)| *a == s.name)
            .map(|(_, b)| b.clone())
            .collect();
        spec.depends_on.sort_unstable();
        spec.depends_on.dedup();
        let nodes = placed.entry(s.name.as_str()).or_default();
        for r in 0..s.replicas {
            let id = format!("{}-{r}", s.name);
            let req = PlacementRequest::new(&spec, &id);
            match scheduler.place(&req, &view).node() {
                Some(node) => {
                    let node = node.to_owned();
                    view.assign_request(&node, &req);
                    nodes.push(view.position(&node).expect("placed on a node of the view"));
                }
                None => unplaced += 1,
            }
        }
    }
    let (mut sum, mut calls, mut unmeasured) = (0.0, 0u64, 0u64);
    for (caller, callee) in &graph.edges {
        let empty = Vec::new();
        let targets = placed.get(callee.as_str()).unwrap_or(&empty);
        for &c in placed.get(caller.as_str()).unwrap_or(&empty) {
            let nearest = targets
                .iter()
                .filter_map(|&t| rtt_between(rtt, c, t))
                .min_by(f64::total_cmp);
            match nearest {
                Some(v) => {
                    sum += v;
                    calls += 1;
                }
                None if !targets.is_empty() => unmeasured += 1,
                None => {}
            }
        }
    }
    let mut used: Vec<usize> = placed.values().flatten().copied().collect();
    used.sort_unstable();
    used.dedup();
    PipelineResult {
        mean_rtt_ms: if calls == 0 { 0.0 } else { sum / calls as f64 },
        calls,
        unmeasured_calls: unmeasured,
        unplaced,
        nodes_used: used.len(),
    }
}

/// A test matrix: `zones` zones of `per_zone` nodes each, `inside` ms between nodes of one
/// zone and `across` ms between zones (node `i` is in zone `i / per_zone`).
pub fn zoned_matrix(
    zones: usize,
    per_zone: usize,
    inside: f64,
    across: f64,
) -> Vec<Vec<Option<f64>>> {
    let n = zones * per_zone;
    (0..n)
        .map(|i| {
            (0..n)
                .map(|j| {
                    Some(if i == j {
                        0.0
                    } else if i / per_zone == j / per_zone {
                        inside
                    } else {
                        across
                    })
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests;
