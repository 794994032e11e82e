//! Property tests of the reconciler over random clusters: repeated reconcile + apply rounds reach
//! a fixpoint with the right number of tasks per service; no action ever places a task on a down
//! or draining node; no node's capacity is ever overcommitted; no plan takes a service below its
//! replicas (or below what served before); plans are deterministic and idempotent.

mod reconciler_support;

use std::collections::{BTreeSet, HashMap};

use orion_core::model::spec::RestartPolicy;
use orion_core::model::{DesiredState, Node, NodeStatus, Resources, Task, TaskHealth, TaskState};
use orion_core::reconciler::VersionedSpec;
use orion_core::scheduler::Scheduler;
use proptest::prelude::*;
use reconciler_support::*;

/// Enough rounds for any generated rollout (at most 6 replicas, parallelism >= 1) to finish.
const MAX_ROUNDS: u64 = 40;

#[derive(Debug, Clone)]
struct Cluster {
    nodes: Vec<Node>,
    specs: Vec<VersionedSpec>,
    tasks: Vec<Task>,
}

fn status() -> impl Strategy<Value = NodeStatus> {
    prop_oneof![
        3 => Just(NodeStatus::Ready),
        1 => Just(NodeStatus::Draining),
        1 => Just(NodeStatus::Down),
    ]
}

fn nodes(extra_big: bool) -> impl Strategy<Value = Vec<Node>> {
    prop::collection::vec(
        (
            prop::sample::select(vec![500u64, 1000, 2000, 4000]),
            status(),
        ),
        1..6,
    )
    .prop_map(move |v| {
        let mut out: Vec<Node> = v
            .into_iter()
            .enumerate()
            .map(|(i, (cpu, st))| node(&format!("n{i}"), cpu, 1 << 34, st))
            .collect();
        if extra_big {
            out.push(node("big", 1_000_000, 1 << 40, NodeStatus::Ready));
        }
        out
    })
}

fn specs() -> impl Strategy<Value = Vec<VersionedSpec>> {
    prop::collection::vec(
        (
            0u32..6,
            prop::sample::select(vec![100u64, 250, 400, 800]),
            1u64..4,
            1u32..4,
            prop::sample::select(vec![
                RestartPolicy::Always,
                RestartPolicy::UnlessStopped,
                RestartPolicy::OnFailure,
                RestartPolicy::No,
            ]),
        ),
        1..4,
    )
    .prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (replicas, cpu, version, parallelism, policy))| {
                let mut s = spec(&format!("svc{i}"), replicas, cpu, version);
                s.spec.update_strategy.parallelism = parallelism;
                // Every surge from none (stop first) to the whole batch, or unset.
                s.spec.update_strategy.max_surge = (i as u32 + parallelism + replicas)
                    .checked_rem(parallelism + 2)
                    .filter(|m| *m <= parallelism);
                s.spec.restart_policy = policy;
                s
            })
            .collect()
    })
}

type RawTask = (usize, u32, u64, usize, usize, bool, bool);

fn raw_tasks() -> impl Strategy<Value = Vec<RawTask>> {
    prop::collection::vec(
        (
            0usize..4,
            0u32..7,
            1u64..4,
            0usize..9,
            0usize..8,
            any::<bool>(),
            prop::bool::weighted(0.15),
        ),
        0..16,
    )
}

/// Builds a consistent starting state: pending tasks have no node, placed ones fit their node
/// (those that would not are made `stopped`), service index 3 may name a deleted service.
fn cluster(extra_big: bool) -> impl Strategy<Value = Cluster> {
    (nodes(extra_big), specs(), raw_tasks()).prop_map(|(nodes, specs, raw)| {
        let mut used: HashMap<String, Resources> = HashMap::new();
        let mut tasks = Vec::new();
        for (i, (svc, slot, version, state, node_ix, healthy, shutdown)) in
            raw.into_iter().enumerate()
        {
            let (name, resources, version) = match specs.get(svc) {
                Some(vs) => (
                    vs.spec.name.clone(),
                    vs.spec.resources.into(),
                    version.min(vs.version),
                ),
                None => ("deleted".to_owned(), Resources::new(100, 1 << 20), version),
            };
            let mut t = Task::new(&name, slot, version, resources);
            t.id = format!("{name}-{slot}-init{i}").into();
            t.state = TaskState::ALL[state];
            t.health = if healthy {
                TaskHealth::Healthy
            } else {
                TaskHealth::Unhealthy
            };
            t.desired = if shutdown {
                DesiredState::Shutdown
            } else {
                DesiredState::Running
            };
            t.created_at = i as u64;
            t.updated_at = i as u64;
            let n = &nodes[node_ix % nodes.len()];
            if t.state != TaskState::Pending {
                t.node = Some(n.id.as_str().into());
            }
            if t.state.holds_resources() {
                let u = used.entry(n.id.clone()).or_default();
                let after = u.saturating_add(t.resources);
                if after.fits_in(&n.capacity) {
                    *u = after;
                } else {
                    t.state = TaskState::Stopped;
                }
            }
            tasks.push(t);
        }
        Cluster {
            nodes,
            specs,
            tasks,
        }
    })
}

/// A node's status changing at the start of a round (membership declaring it dead, an operator
/// draining it, a node coming back).
#[derive(Debug, Clone)]
struct NodeChange {
    round: u64,
    node: usize,
    status: NodeStatus,
}

fn node_changes() -> impl Strategy<Value = Vec<NodeChange>> {
    prop::collection::vec((0u64..6, 0usize..8, status()), 0..5).prop_map(|v| {
        v.into_iter()
            .map(|(round, node, status)| NodeChange {
                round,
                node,
                status,
            })
            .collect()
    })
}

/// What [`converge`] ends with.
struct Fixpoint {
    tasks: Vec<Task>,
    nodes: Vec<Node>,
    any_unplaced: bool,
}

/// Runs rounds until the plan is empty (and every node change has happened), checking after
/// every round: placements only on ready nodes, no overcommit, no service taken below what
/// served, idempotent replay, deterministic plans.
fn converge(
    c: &Cluster,
    sched: &Scheduler,
    changes: &[NodeChange],
) -> Result<Fixpoint, TestCaseError> {
    let mut nodes = c.nodes.clone();
    let last_change = changes.iter().map(|ch| ch.round).max();
    let mut tasks = c.tasks.clone();
    for round in 0..MAX_ROUNDS {
        for ch in changes.iter().filter(|ch| ch.round == round) {
            let i = ch.node % nodes.len();
            nodes[i].status = ch.status;
        }
        let status: HashMap<&str, NodeStatus> =
            nodes.iter().map(|n| (n.id.as_str(), n.status)).collect();
        let p = plan(&c.specs, &tasks, &nodes, 1000 + round, sched);
        // Same input, same plan.
        prop_assert_eq!(&p, &plan(&c.specs, &tasks, &nodes, 1000 + round, sched));
        if p.is_empty() && p.retry_at.is_none() && !p.more && last_change.is_none_or(|r| round > r)
        {
            // A fixpoint once the agents have nothing left to do either.
            let before = tasks.clone();
            run_agents(&mut tasks, &nodes);
            if tasks == before {
                let any_unplaced = !p.unplaced.is_empty();
                return Ok(Fixpoint {
                    tasks,
                    nodes,
                    any_unplaced,
                });
            }
            continue;
        }
        for a in &p.actions {
            if let Some(n) = a.placed_on() {
                prop_assert_eq!(status.get(n), Some(&NodeStatus::Ready), "{:?}", a);
            }
        }
        let before = tasks.clone();
        apply_actions(&p, &mut tasks);
        // Never below desired: stops take effect now, new tasks are not running yet. Only an
        // update's slots that stop first (beyond `max_surge`) may stop serving.
        for vs in &c.specs {
            let was = serving_slots(&before, &nodes, &vs.spec.name);
            let now = serving_slots(&tasks, &nodes, &vs.spec.name);
            let strategy = &vs.spec.update_strategy;
            let stop_first = (strategy.parallelism - strategy.surge()) as usize;
            prop_assert!(
                now + stop_first >= was.min(vs.spec.replicas as usize),
                "{} went from {} to {} serving slots (replicas {})",
                vs.spec.name,
                was,
                now,
                vs.spec.replicas
            );
        }
        let mut again = tasks.clone();
        apply_actions(&p, &mut again);
        prop_assert_eq!(&again, &tasks, "applying a plan twice changes nothing more");
        run_agents(&mut tasks, &nodes);
        for (n, used) in load(&tasks) {
            let cap = nodes
                .iter()
                .find(|x| x.id == n)
                .map(|x| x.capacity)
                .unwrap_or_default();
            prop_assert!(
                used.fits_in(&cap),
                "node {} overcommitted: {:?} > {:?}",
                n,
                used,
                cap
            );
        }
    }
    Err(TestCaseError::fail(format!(
        "no fixpoint after {MAX_ROUNDS} rounds"
    )))
}

/// Slots below `replicas` that ended for good: no active task, and the most recent task (by
/// creation) is from the current version and exited as its restart policy accepts.
fn finished_slots(vs: &VersionedSpec, tasks: &[Task]) -> u32 {
    let mut n = 0;
    for slot in 0..vs.spec.replicas {
        let in_slot: Vec<&Task> = tasks
            .iter()
            .filter(|t| t.service == vs.spec.name && t.slot == slot)
            .collect();
        if in_slot.iter().any(|t| t.is_active()) {
            continue;
        }
        let latest = in_slot
            .iter()
            .filter(|t| t.state.is_terminal())
            .max_by_key(|t| (t.created_at, t.updated_at, t.id.as_str()));
        let done = latest.is_some_and(|t| {
            t.spec_version == vs.version
                && match t.state {
                    TaskState::Failed => vs.spec.restart_policy == RestartPolicy::No,
                    TaskState::Completed => matches!(
                        vs.spec.restart_policy,
                        RestartPolicy::No | RestartPolicy::OnFailure
                    ),
                    _ => false,
                }
        });
        n += u32::from(done);
    }
    n
}

fn check_fixpoint(c: &Cluster, f: &Fixpoint) -> Result<(), TestCaseError> {
    let status: HashMap<&str, NodeStatus> =
        f.nodes.iter().map(|n| (n.id.as_str(), n.status)).collect();
    prop_assert!(active(&f.tasks, "deleted").is_empty());
    for vs in &c.specs {
        let live = active(&f.tasks, &vs.spec.name);
        let slots: BTreeSet<u32> = live.iter().map(|t| t.slot).collect();
        // Finished slots only spare refills; they never stop a running task.
        let occupied = slots.len() as u32;
        let finished = finished_slots(vs, &f.tasks);
        prop_assert!(
            occupied <= vs.spec.replicas && occupied + finished >= vs.spec.replicas,
            "{}: {} occupied + {} finished slots for {} replicas: {:?}",
            vs.spec.name,
            occupied,
            finished,
            vs.spec.replicas,
            live
        );
        for t in &live {
            if let Some(n) = t.node.as_deref() {
                prop_assert_ne!(status.get(n).copied(), Some(NodeStatus::Down), "{:?}", t);
            }
        }
        if !f.any_unplaced {
            prop_assert_eq!(live.len() as u32, occupied, "one task per slot");
            for t in &live {
                // Placed (the agents move scheduled/starting tasks on; that is not the
                // reconciler's business), from the current version, on a ready node.
                prop_assert_ne!(t.state, TaskState::Pending);
                prop_assert_eq!(t.spec_version, vs.version);
                let n = t.node.as_deref().unwrap_or_default();
                prop_assert_eq!(status.get(n).copied(), Some(NodeStatus::Ready));
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn rounds_converge_without_bad_placements_or_overcommit(c in cluster(false)) {
        let f = converge(&c, &scheduler(), &[])?;
        check_fixpoint(&c, &f)?;
    }

    #[test]
    fn the_guard_holds_with_a_scheduler_that_has_no_filters(c in cluster(false)) {
        let f = converge(&c, &naive_scheduler(), &[])?;
        check_fixpoint(&c, &f)?;
    }

    #[test]
    fn with_room_every_service_ends_with_exactly_its_replicas_running(c in cluster(true)) {
        let f = converge(&c, &scheduler(), &[])?;
        prop_assert!(!f.any_unplaced, "a node with room exists, nothing may stay unplaced");
        check_fixpoint(&c, &f)?;
    }

    #[test]
    fn nodes_changing_status_mid_flight_keep_every_invariant(
        c in cluster(false),
        changes in node_changes(),
    ) {
        let f = converge(&c, &scheduler(), &changes)?;
        check_fixpoint(&c, &f)?;
    }
}
