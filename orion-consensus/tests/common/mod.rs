//! Shared helpers for the Raft tests: a small in-memory inner store and a loopback cluster.
#![allow(dead_code)]

pub mod cluster;
pub mod mem_store;
