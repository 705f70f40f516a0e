//! `bench-vm`: placeholder until filled in.
use anyhow::Result;
pub fn bench_main(_json: bool) -> Result<()> {
    anyhow::bail!("not yet")
}
