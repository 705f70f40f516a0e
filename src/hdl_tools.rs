//! `offcard gen-verilog`, `lint` and `regs`: the generated Verilog and the
//! register map document.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes the Verilog of every block, or of `block`, to `out`.
pub fn gen_verilog(out: &Path, block: Option<&str>) -> Result<()> {
    std::fs::create_dir_all(out)?;
    let blocks: Vec<&str> = match block {
        Some(b) => vec![b],
        None => offcard_hdl::BLOCKS.to_vec(),
    };
    for b in blocks {
        let v = offcard_hdl::block_verilog(b).with_context(|| format!("unknown block {b:?}; known: {:?}", offcard_hdl::BLOCKS))?;
        let path = out.join(format!("{b}.v"));
        std::fs::write(&path, &v)?;
        println!("wrote {} ({} lines)", path.display(), v.lines().count());
    }
    Ok(())
}

pub fn lint() -> Result<()> {
    let v = offcard_toolchain::find_or_install_verilator(&mut |m| eprintln!("{m}")).map_err(anyhow::Error::msg)?;
    let dir = PathBuf::from("build/lint");
    println!("verilator --lint-only -Wall {} (waivers: {})", dir.join("top.v").display(), offcard_testbench::lint::waivers().display());
    let out = offcard_testbench::lint::lint_card(&v, &dir, true)?;
    std::io::stderr().write_all(&out.stderr)?;
    if !out.status.success() {
        bail!("lint failed");
    }
    println!("lint: clean");
    Ok(())
}

pub fn regs(check: bool) -> Result<()> {
    let path = offcard_toolchain::project_root().join("docs/registers.md");
    let text = offcard_testbench::docs::registers_markdown();
    if check {
        let cur = std::fs::read_to_string(&path).unwrap_or_default();
        if cur != text {
            bail!("{} is out of date: run `offcard regs`", path.display());
        }
        println!("{} matches the register map", path.display());
    } else {
        std::fs::write(&path, text)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

