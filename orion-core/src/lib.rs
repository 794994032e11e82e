//! # orion-core
//!
//! The heart of Orion, with no heavy I/O dependency: the domain model, the four traits every other
//! crate plugs into, two stores, the scheduler and the reconciler.
//!
//! - [`model`]: [`ServiceSpec`](model::ServiceSpec), [`Task`](model::Task) and its state machine,
//!   [`Node`](model::Node), network measurements.
//! - [`store::Store`]: the cluster state (etcd model), with [`store::MemoryStore`] and
//!   [`store::SledStore`] (feature `sled`, default) and the typed [`store::ClusterStore`].
//! - [`membership::Membership`]: who is alive, with [`membership::StaticMembership`].
//! - [`runtime::Runtime`]: containers on one node.
//! - [`scheduler`]: [`scheduler::Filter`] and [`scheduler::Scorer`] plugins in one pipeline.
//! - [`reconciler`]: specs + tasks + nodes in, actions out.
//! - [`secrets`]: secret values, sealed at rest ([`secrets::SecretSealer`]).
//! - [`observe`]: hooks the node's loops call on events, for metrics.
//! - [`trace`]: trace context carried with the work (API write to running), for an embedder's
//!   OpenTelemetry layer.
//! - `testing` (feature `testing`): conformance suites and `FakeRuntime`.

pub mod autoscale;
pub mod blocking;
pub mod error;
pub mod hash;
pub mod membership;
pub mod model;
pub mod node;
pub mod observe;
pub mod reconciler;
pub mod runtime;
pub mod scheduler;
pub mod secrets;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod trace;

pub use error::{Error, Result};
