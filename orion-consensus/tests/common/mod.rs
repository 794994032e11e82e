//! Shared helpers for the Raft tests: a loopback cluster.
#![allow(dead_code)]

pub mod cluster;
