//! `rollout::step_own` over `tasks_by_service` (what `reconcile_state` and the controller's
//! rollout pass now use: one pass over the tasks) decides exactly what `rollout::step` (a scan of
//! every task per service) decides, on seeded random task sets of several services and versions.

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng};

use orion_core::model::{DesiredState, Resources, ServiceSpec, Task, TaskHealth, TaskState};
use orion_core::reconciler::VersionedSpec;
use orion_core::reconciler::rollout::{self, Rollout};

const NOW: u64 = 1_000_000;

/// Seeded (`rand`'s `StdRng`, as the cluster harness uses), so a failure names its seed.
struct Rng(StdRng);

impl Rng {
    fn seeded(seed: u64) -> Self {
        Rng(StdRng::seed_from_u64(seed))
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0.random_range(0..n)
    }
}

fn random_task(rng: &mut Rng, i: usize) -> Task {
    let mut t = Task::new(
        &format!("s{}", rng.below(4)),
        rng.below(5) as u32,
        1 + rng.below(3),
        Resources::default(),
    );
    t.id = format!("t{i:03}").into();
    t.state = [
        TaskState::Pending,
        TaskState::Running,
        TaskState::Failed,
        TaskState::Completed,
    ][rng.below(4) as usize];
    t.desired = [DesiredState::Running, DesiredState::Shutdown][rng.below(2) as usize];
    t.health = [
        TaskHealth::Unknown,
        TaskHealth::Healthy,
        TaskHealth::Unhealthy,
    ][rng.below(3) as usize];
    t.created_at = NOW - rng.below(100_000);
    t
}

#[test]
fn step_over_grouped_tasks_decides_as_step_over_all_tasks() {
    for seed in 1..=40u64 {
        let mut rng = Rng::seeded(seed);
        let tasks: Vec<Task> = (0..60).map(|i| random_task(&mut rng, i)).collect();
        let by_service = rollout::tasks_by_service(&tasks);
        for s in 0..5 {
            let name = format!("s{s}");
            let mut spec = ServiceSpec::new(name.clone(), "img:1", rng.below(6) as u32);
            spec.update_strategy.canary = rng.below(2) as u32;
            let vs = VersionedSpec::new(spec, 1 + rng.below(3));
            let record = (rng.below(2) == 0)
                .then(|| Rollout::new(&name, vs.version, Some(1), 0, NOW - rng.below(50_000)));
            let own = by_service.get(name.as_str()).map_or(&[][..], Vec::as_slice);
            assert_eq!(
                rollout::step_own(&vs, own, record.as_ref(), NOW),
                rollout::step(&vs, &tasks, record.as_ref(), NOW),
                "seed {seed}, service {name}"
            );
        }
    }
}
