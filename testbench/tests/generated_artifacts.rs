//! Generated artifacts stay in step with their single sources: the register
//! document with the register map, and the Verilog passes Verilator's lint
//! with exactly the waivers of sim/verilator.vlt.

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
    let out = offcard_testbench::lint::lint_card(&v, &dir, true).unwrap();
    assert!(out.status.success(), "lint failed:\n{}", String::from_utf8_lossy(&out.stderr));
    // Without the waivers the same Verilog must warn: the test would notice
    // a waiver file that silently stopped applying.
    let raw = offcard_testbench::lint::lint_card(&v, &dir, false).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!raw.status.success(), "expected rust-hdl's Verilog to need the documented waivers");
}
