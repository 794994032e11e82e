//! Placement for the reconciler: the scheduler's choice, checked by the reconciler's own guard,
//! accounted in one [`ClusterView`] so later placements of the same pass see earlier ones; and
//! deterministic task ids.

use std::collections::HashSet;
use std::hash::Hasher;

use crate::hash::{StableBuildHasher, StableHasher};
use crate::model::{DesiredState, Millis, NodeId, Resources, ServiceSpec, Task};
use crate::model::{TaskHealth, TaskState};
use crate::scheduler::filters::{MaxTasksFilter, NodeStatusFilter, ResourcesFilter};
use crate::scheduler::{
    ClusterView, Filter, PlacementOutcome, PlacementRequest, Rejection, Scheduler, reasons,
};

/// Name of the reconciler's guard in [`Rejection::filter`] when the scheduler chose a node that
/// is not in the view; other guard rejections name the filter that gave them
/// ([`GUARD_FILTERS`]).
pub const GUARD: &str = "reconciler_guard";

/// The filters the reconciler's guard runs on every node the scheduler chooses, whatever
/// filters the scheduler was built with.
pub const GUARD_FILTERS: [&str; 3] = [
    crate::scheduler::filters::NODE_STATUS,
    crate::scheduler::filters::RESOURCES,
    crate::scheduler::filters::MAX_TASKS,
];

/// Places tasks over one view, whatever filters the scheduler was built with: a node is used only
/// if the guard's filters ([`GUARD_FILTERS`]: `Ready`, the request fits its free resources, its
/// `max_tasks` and the spec's `max_per_node` are not reached) accept it.
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
        self.place_avoiding(spec, task_id, resources, None)
    }

    /// [`Placer::place`], trying `avoid` (the node a task just failed on) only when no other
    /// candidate passes the guard.
    pub(crate) fn place_avoiding(
        &mut self,
        spec: &ServiceSpec,
        task_id: &str,
        resources: Resources,
        avoid: Option<&str>,
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
        let (avoided, preferred): (Vec<&str>, Vec<&str>) =
            order.partition(|n| avoid.is_some_and(|a| a == *n));
        let order = preferred.into_iter().chain(avoided);
        let mut rejections = Vec::new();
        for node in order {
            match self.guard(node, &req) {
                Ok(()) => {
                    let node = node.to_owned();
                    self.view.assign_request(&node, &req);
                    return Ok(node);
                }
                Err(r) => rejections.push((node.to_owned(), r)),
            }
        }
        Err(rejections)
    }

    /// Places one task of `spec` on `node` itself, already assigned in the view, when the
    /// scheduler's filters and the guard accept it; the rejection otherwise.
    pub(crate) fn place_on(
        &mut self,
        spec: &ServiceSpec,
        task_id: &str,
        resources: Resources,
        node: &str,
    ) -> Result<NodeId, Rejection> {
        let req = PlacementRequest {
            spec,
            task_id,
            resources,
        };
        self.guard(node, &req)?;
        self.scheduler.check(&req, node, &self.view)?;
        self.view.assign_request(node, &req);
        Ok(node.to_owned())
    }

    /// Whether a task of `spec` could go on `node` (the scheduler's filters and the guard),
    /// without assigning it.
    pub(crate) fn fits(&self, spec: &ServiceSpec, resources: Resources, node: &str) -> bool {
        let req = PlacementRequest {
            spec,
            task_id: "",
            resources,
        };
        self.guard(node, &req).is_ok() && self.scheduler.check(&req, node, &self.view).is_ok()
    }

    /// The safety guard: the real [`NodeStatusFilter`], [`ResourcesFilter`] and
    /// [`MaxTasksFilter`], whatever the scheduler was built with.
    fn guard(&self, node: &str, req: &PlacementRequest<'_>) -> Result<(), Rejection> {
        let Some(nv) = self.view.node(node) else {
            return Err(Rejection::new(GUARD, reasons::UNKNOWN_NODE).detail(node.to_owned()));
        };
        let filters: [&dyn Filter; 3] = [&NodeStatusFilter, &ResourcesFilter, &MaxTasksFilter];
        for f in filters {
            f.check(req, nv, &self.view)?;
        }
        Ok(())
    }
}

/// Makes task ids that are a pure function of the inputs and unique among `taken`: two leaders
/// that plan from the same state make the same ids, so a redone `Create` is a no-op. (What keeps a
/// slot from getting two tasks is the compare-and-swap on the slot's key, not the id.)
///
/// The existing ids are borrowed (a round over a million tasks copies none of them).
pub(crate) struct IdMaker<'t> {
    existing: HashSet<&'t str, StableBuildHasher>,
    made: HashSet<String, StableBuildHasher>,
}

impl<'t> IdMaker<'t> {
    pub(crate) fn new(existing: impl Iterator<Item = &'t str>) -> Self {
        IdMaker {
            existing: existing.collect(),
            made: HashSet::default(),
        }
    }

    /// `<service>-<slot>-<8 hex>`, the hex derived from the service, slot, spec version and the
    /// task replaced; bumped until unused.
    pub(crate) fn make(
        &mut self,
        service: &str,
        slot: u32,
        version: u64,
        replaces: Option<&str>,
    ) -> String {
        let mut salt = 0u64;
        loop {
            let mut h = StableHasher::default();
            h.write_field(service.as_bytes());
            h.write_field(&slot.to_le_bytes());
            h.write_field(&version.to_le_bytes());
            h.write_field(replaces.unwrap_or("").as_bytes());
            h.write_field(&salt.to_le_bytes());
            let hash = h.finish();
            let folded = (hash ^ (hash >> 32)) as u32;
            let id = format!("{service}-{slot}-{folded:08x}");
            if !self.existing.contains(id.as_str()) && self.made.insert(id.clone()) {
                return id;
            }
            salt += 1;
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
        id: id.into(),
        service: spec.name.as_str().into(),
        slot,
        spec_version: version,
        state: if node.is_some() {
            TaskState::Scheduled
        } else {
            TaskState::Pending
        },
        node: node.map(Into::into),
        desired: DesiredState::Running,
        resources: spec.resources.into(),
        container_id: None,
        ports: Vec::new(),
        exit_code: None,
        error: error.map(Into::into),
        health: TaskHealth::Unknown,
        health_output: None,
        restarts: 0,
        attempt: 0,
        moved_because: None,
        trace_parent: None,
        created_at: now,
        updated_at: now,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_and_unique() {
        let mut a = IdMaker::new(std::iter::empty());
        let mut b = IdMaker::new(std::iter::empty());
        let first = a.make("web", 0, 1, None);
        assert_eq!(first, b.make("web", 0, 1, None));
        assert!(first.starts_with("web-0-"));
        let second = a.make("web", 0, 1, None);
        assert_ne!(first, second, "an id already taken is never reused");
        let mut c = IdMaker::new([first.as_str()].into_iter());
        assert_eq!(c.make("web", 0, 1, None), second);
    }
}
