//! orion-consensus (skeleton; see the issues that fill it).

pub mod error;
pub mod gossip;

pub use error::{Error, Result};
