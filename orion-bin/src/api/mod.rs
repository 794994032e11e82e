//! The HTTP API (axum, JSON, under `/v1`). See docs/api.md for the reference.

mod access;
#[cfg(test)]
mod access_tests;
mod chaos;
#[cfg(test)]
mod chaos_tests;
mod errors;
#[cfg(test)]
mod errors_tests;
mod events;
pub mod guard;
pub mod join_tokens;
mod logs;
pub mod network;
pub mod openapi;
pub mod plan;
pub mod rollout;
mod routes;
pub mod secrets;
#[cfg(test)]
mod secrets_tests;
pub mod server;
mod spec_body;
#[cfg(test)]
mod tests;
mod token_routes;
pub mod tokens;
mod traced;
#[cfg(all(test, feature = "otel"))]
mod traced_tests;
pub mod types;
mod verbs;

pub use routes::{ApiSettings, ApiState, ClusterInfo, proxy_client, router};

/// The store every part of a node shares.
pub type SharedStore = std::sync::Arc<dyn orion_core::store::Store>;
