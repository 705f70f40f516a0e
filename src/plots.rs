//! Plots (SVG and PNG) of what the demo and the benchmarks measured.

use crate::demo::Figures;
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

pub fn demo_plots(_dir: &Path, _f: &Figures) -> Result<Vec<PathBuf>> {
    bail!("--plots is not implemented yet")
}
