//! The reconciler: a pure function from desired state (specs) and actual state (tasks, nodes) to
//! the actions that close the gap. (Skeleton, filled by the reconciler work.)
