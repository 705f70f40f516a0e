//! `verilator --lint-only -Wall` on the generated card, with or without the
//! waivers of `sim/verilator.vlt` (used by `offcard lint` and by CI).

use offcard_toolchain::Verilator;
use std::path::{Path, PathBuf};
use std::process::Output;

/// The waiver file every lint and build of the card uses.
pub fn waivers() -> PathBuf {
    offcard_toolchain::project_root().join("sim/verilator.vlt")
}

/// Write the card's Verilog to `dir/top.v` and lint it.
pub fn lint_card(v: &Verilator, dir: &Path, with_waivers: bool) -> std::io::Result<Output> {
    std::fs::create_dir_all(dir)?;
    let top = dir.join("top.v");
    std::fs::write(&top, offcard_hdl::card_verilog())?;
    let mut cmd = v.command();
    cmd.args(["--lint-only", "-Wall", "--top-module", offcard_hdl::TOP_MODULE]);
    if with_waivers {
        cmd.arg(waivers());
    }
    cmd.arg(&top).output()
}
