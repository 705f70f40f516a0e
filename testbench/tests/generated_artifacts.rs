//! Generated artifacts stay in step with their single sources: the register
//! document with the register map, and the Verilog passes Verilator's lint
//! with exactly the waivers of sim/verilator.vlt.
use std::process::Command;

#[test]
fn registers_doc_matches_register_map() {
    let path = offcard_toolchain::project_root().join("docs/registers.md");
    let cur = std::fs::read_to_string(&path).expect("docs/registers.md missing: run `cargo run --release -- regs`");
    assert_eq!(cur, offcard_testbench::docs::registers_markdown(), "docs/registers.md is stale: run `cargo run --release -- regs`");
}

#[test]
fn generated_verilog_passes_verilator_lint_wall() {
    let v = offcard_toolchain::find_or_install_verilator(&mut |m| eprintln!("{m}")).unwrap();
    let dir = std::env::temp_dir().join(format!("offcard-lint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let top = dir.join("top.v");
    std::fs::write(&top, offcard_hdl::card_verilog()).unwrap();
    let waivers = offcard_toolchain::project_root().join("sim/verilator.vlt");
    let out = Command::new(&v.bin)
        .env("VERILATOR_ROOT", &v.root)
        .args(["--lint-only", "-Wall", "--top-module", "top"])
        .arg(&waivers)
        .arg(&top)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "lint failed:\n{}", String::from_utf8_lossy(&out.stderr));
    // Without the waivers the same Verilog must warn: the test would notice
    // a waiver file that silently stopped applying.
    let dir2 = std::env::temp_dir().join(format!("offcard-lint2-{}", std::process::id()));
    std::fs::create_dir_all(&dir2).unwrap();
    let top2 = dir2.join("top.v");
    std::fs::write(&top2, offcard_hdl::card_verilog()).unwrap();
    let raw = Command::new(&v.bin).env("VERILATOR_ROOT", &v.root).args(["--lint-only", "-Wall", "--top-module", "top"]).arg(&top2).output().unwrap();
    let _ = std::fs::remove_dir_all(&dir2);
    assert!(!raw.status.success(), "expected rust-hdl's Verilog to need the documented waivers");
}
