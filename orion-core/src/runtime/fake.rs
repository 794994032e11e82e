//! `FakeRuntime`: containers in memory, with fault knobs. (Skeleton, filled by the fakes work.)

/// Faults a [`FakeRuntime`] injects.
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {}

/// An in-memory runtime for unit tests and simulation only.
#[derive(Debug, Default)]
pub struct FakeRuntime {}
