//! orion-runtime (skeleton; see the issues that fill it).

#[cfg(feature = "containerd")]
pub mod containerd;
