//! The HTTP API (axum, JSON, under `/v1`).

pub mod types;
