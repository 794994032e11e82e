//! The HTTP API (axum, JSON, under `/v1`). See docs/api.md for the reference.

mod errors;
mod logs;
mod routes;
pub mod types;

pub use routes::{ApiState, ClusterInfo, router};
