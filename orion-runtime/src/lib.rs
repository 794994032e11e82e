//! # orion-runtime
//!
//! Implementations of [`orion_core::runtime::Runtime`], the trait that runs containers on one node:
//!
//! - [`DockerRuntime`] (feature `docker`, default): the Docker engine API through bollard.
//! - [`ProcessRuntime`] (feature `process`, default): host programs as supervised children, like
//!   Nomad's `raw_exec`; no isolation, no images, no port mapping.
//! - [`containerd::ContainerdRuntime`] (feature `containerd`): containerd's gRPC API, in its own
//!   namespace; images imported through the content store; host or no networking only.
//! - `testing` (feature `testing`): a busybox root filesystem built in Rust, loaded into the engine
//!   as [`testing::TEST_IMAGE`] without any registry, and [`testing::require_docker`].
//!
//! Every runtime passes the conformance suite `orion_core::testing::runtime`, and converts its own
//! [`RuntimeError`] into [`orion_core::Error`] at the trait boundary.
//!
//! ```no_run
//! # #[cfg(feature = "process")]
//! # async fn demo() -> orion_core::Result<()> {
//! use orion_core::runtime::{ContainerSpec, Runtime};
//! use orion_runtime::ProcessRuntime;
//!
//! let runtime = ProcessRuntime::new("/var/lib/orion/processes")?;
//! let spec = ContainerSpec {
//!     name: "hello".into(),
//!     image: "/bin/sh".into(),
//!     command: vec!["-c".into(), "echo hello".into()],
//!     ..ContainerSpec::default()
//! };
//! let info = runtime.create_and_start(&spec).await?;
//! runtime.remove(&info.id).await?;
//! # Ok(())
//! # }
//! ```
//! See `docs/runtimes.md` for how the runtimes differ.

mod error;
#[cfg(any(feature = "docker", feature = "process"))]
mod lines;

#[cfg(feature = "containerd")]
pub mod containerd;
#[cfg(feature = "docker")]
pub mod docker;
#[cfg(feature = "process")]
pub mod process;
pub mod secret_files;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::{Result, RuntimeError};

#[cfg(feature = "docker")]
pub use docker::{DockerRuntime, PullPolicy};
#[cfg(feature = "process")]
pub use process::ProcessRuntime;
