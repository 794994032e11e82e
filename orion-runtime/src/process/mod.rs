//! placeholder
/// placeholder
#[derive(Debug)]
pub struct ProcessRuntime;
