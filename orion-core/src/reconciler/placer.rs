//! Placement for the reconciler: the scheduler's choice, checked by the reconciler's own guard,
//! accounted in one [`ClusterView`] so later placements of the same pass see earlier ones; and
//! deterministic task ids.

use std::collections::HashSet;

use crate::model::{DesiredState, Millis, NodeId, NodeStatus, Resources, ServiceSpec, Task};
use crate::model::{TaskHealth, TaskState};
use crate::scheduler::{ClusterView, PlacementOutcome, PlacementRequest, Rejection, Scheduler};

/// Name of the reconciler's own guard in [`Rejection::filter`].
pub const GUARD: &str = "reconciler_guard";

/// Places tasks over one view, whatever filters the scheduler was built with: a node is used only
/// if it is `Ready`, the request fits its free resources and its `max_tasks` is not reached.
pub(crate) struct Placer<'a> {
    scheduler: &'a Scheduler,
    view: ClusterView,
}

impl<'a> Placer<'a> {
    pub(crate) fn new(scheduler: &'a Scheduler, view: ClusterView) -> Self {
        Placer { scheduler, view }
    }

    /// The node for one task of `spec`, already assigned in the view; or every rejection.
    pub(crate) fn place(
        &mut self,
        spec: &ServiceSpec,
        task_id: &str,
        resources: Resources,
    ) -> Result<NodeId, Vec<(NodeId, Rejection)>> {
        let req = PlacementRequest {
            spec,
            task_id,
            resources,
        };
        let placement = match self.scheduler.place(&req, &self.view) {
            PlacementOutcome::Placed(p) => p,
            PlacementOutcome::Unplaceable { rejections } => return Err(rejections),
        };
        // The scheduler's choice first, then its other candidates, best first.
        let order = std::iter::once(placement.node.as_str()).chain(
            placement
                .candidates
                .iter()
                .map(|c| c.node.as_str())
                .filter(|n| *n != placement.node),
        );
        let mut rejections = Vec::new();
        for node in order {
            match self.guard(node, resources) {
                Ok(()) => {
                    let node = node.to_owned();
                    self.view.assign(&node, &spec.name, resources);
                    return Ok(node);
                }
                Err(r) => rejections.push((node.to_owned(), r)),
            }
        }
        Err(rejections)
    }

    fn guard(&self, node: &str, resources: Resources) -> Result<(), Rejection> {
        let Some(nv) = self.view.node(node) else {
            return Err(Rejection::new(GUARD, "unknown node"));
        };
        if nv.node.status != NodeStatus::Ready {
            return Err(Rejection::new(
                GUARD,
                format!(
                    "node is {}; only ready nodes take new tasks",
                    nv.node.status
                ),
            ));
        }
        let free = nv.free();
        if !resources.fits_in(&free) {
            return Err(Rejection::new(
                GUARD,
                format!(
                    "needs {}m cpu, {} B memory, {} B disk; {}m, {} B, {} B free",
                    resources.cpu_millicores,
                    resources.memory_bytes,
                    resources.disk_bytes,
                    free.cpu_millicores,
                    free.memory_bytes,
                    free.disk_bytes
                ),
            ));
        }
        if let Some(max) = nv.node.max_tasks
            && nv.task_count >= max
        {
            return Err(Rejection::new(
                GUARD,
                format!("node runs {} tasks, its limit is {max}", nv.task_count),
            ));
        }
        Ok(())
    }
}

/// Makes task ids that are a pure function of the inputs and unique among `taken`.
pub(crate) struct IdMaker {
    taken: HashSet<String>,
    now: Millis,
}

impl IdMaker {
    pub(crate) fn new<'t>(existing: impl Iterator<Item = &'t str>, now: Millis) -> Self {
        IdMaker {
            taken: existing.map(str::to_owned).collect(),
            now,
        }
    }

    /// `<service>-<slot>-<8 hex>`, the hex derived from the service, slot, spec version, the task
    /// replaced and the reconcile time; bumped until unused.
    pub(crate) fn make(
        &mut self,
        service: &str,
        slot: u32,
        version: u64,
        replaces: Option<&str>,
    ) -> String {
        let mut salt = 0u64;
        loop {
            let mut h = Fnv::default();
            h.write(service.as_bytes());
            h.write(&slot.to_le_bytes());
            h.write(&version.to_le_bytes());
            h.write(replaces.unwrap_or("").as_bytes());
            h.write(&self.now.to_le_bytes());
            h.write(&salt.to_le_bytes());
            let folded = (h.0 ^ (h.0 >> 32)) as u32;
            let id = format!("{service}-{slot}-{folded:08x}");
            if self.taken.insert(id.clone()) {
                return id;
            }
            salt += 1;
        }
    }
}

/// 64-bit FNV-1a, with a separator after each field.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes.iter().chain(std::iter::once(&0xff)) {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// A new task for `slot` of `spec`: `Scheduled` on `node`, or `Pending` with `error`.
pub(crate) fn new_task(
    spec: &ServiceSpec,
    version: u64,
    id: String,
    slot: u32,
    node: Option<NodeId>,
    error: Option<String>,
    now: Millis,
) -> Box<Task> {
    Box::new(Task {
        id,
        service: spec.name.clone(),
        slot,
        spec_version: version,
        state: if node.is_some() {
            TaskState::Scheduled
        } else {
            TaskState::Pending
        },
        node,
        desired: DesiredState::Running,
        resources: spec.resources.into(),
        container_id: None,
        ports: Vec::new(),
        exit_code: None,
        error,
        health: TaskHealth::Unknown,
        restarts: 0,
        created_at: now,
        updated_at: now,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_and_unique() {
        let mut a = IdMaker::new(std::iter::empty(), 7);
        let mut b = IdMaker::new(std::iter::empty(), 7);
        let first = a.make("web", 0, 1, None);
        assert_eq!(first, b.make("web", 0, 1, None));
        assert!(first.starts_with("web-0-"));
        let second = a.make("web", 0, 1, None);
        assert_ne!(first, second, "an id already taken is never reused");
        let mut c = IdMaker::new([first.as_str()].into_iter(), 7);
        assert_eq!(c.make("web", 0, 1, None), second);
    }
}
