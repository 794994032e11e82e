//! The `orion` binary (skeleton).

fn main() -> anyhow::Result<()> {
    println!("orion {}", env!("CARGO_PKG_VERSION"));
    Ok(())
}
