//! `offcard synth`: the open synthesis flow of `offcard-synth` (yosys,
//! nextpnr, ecppack/icepack) with a progress bar over the runs. The report
//! goes to docs/synthesis.md and docs/synthesis.json as before.

use crate::{progress, BoardArg, SynthAction, SynthArgs};
use anyhow::{bail, Result};
use offcard_synth::{Board, BlockReport};
use serde_json::{json, Value};
use std::time::Instant;

pub fn run(a: &SynthArgs) -> Result<()> {
    match &a.action {
        Some(SynthAction::Check { json }) => check(*json || a.json),
        Some(SynthAction::Report { json }) => report(*json || a.json),
        None => full(a),
    }
}

/// CI's quick yosys pass over every block.
fn check(json_out: bool) -> Result<()> {
    let pb = progress::bar(offcard_hdl::BLOCKS.len() as u64, "synth check (yosys)");
    let r = offcard_synth::quick_check_with(&mut |s| {
        // One "done" line per block from the library: advance on those.
        if s.contains("cells") {
            pb.inc(1);
        }
        progress::note(&pb, &format!("[synth] {s}"));
    });
    pb.finish_and_clear();
    let r = r?;
    for (b, n) in &r {
        println!("{b}: {n} cells");
    }
    if json_out {
        let m: serde_json::Map<String, Value> = r.iter().map(|(b, n)| (b.clone(), json!(n))).collect();
        println!("{}", json!({ "check": "ok", "cells": m }));
    }
    Ok(())
}

fn report(json_out: bool) -> Result<()> {
    let results = offcard_synth::write_docs(&[], "offcard synth report")?;
    eprintln!("[synth] rewrote docs/synthesis.md and docs/synthesis.json from {} stored results", results.len());
    if json_out {
        println!("{}", serde_json::to_string(&offcard_synth::summary_json(&results))?);
    }
    Ok(())
}

fn full(a: &SynthArgs) -> Result<()> {
    let boards: Vec<Board> = match a.board {
        Some(BoardArg::Versa) => vec![Board::Versa],
        Some(BoardArg::Icebreaker) => vec![Board::IceBreaker],
        None => Board::ALL.to_vec(),
    };
    let blocks: Vec<&str> = match &a.block {
        Some(b) => vec![b.as_str()],
        None => offcard_hdl::BLOCKS.to_vec(),
    };
    // The command line as the report records it (what to run to redo it).
    let mut command = String::from("offcard synth");
    if let Some(b) = &a.board {
        command += &format!(" --board {}", if matches!(b, BoardArg::Versa) { "versa" } else { "icebreaker" });
    }
    if let Some(b) = &a.block {
        command += &format!(" --block {b}");
    }
    if a.seeds > 1 {
        command += &format!(" --seeds {}", a.seeds);
    }
    let t0 = Instant::now();
    let pb = progress::bar((boards.len() * blocks.len()) as u64, "synthesis");
    offcard_synth::install_tools(&mut |s| progress::note(&pb, &format!("[synth] {s}")))?;
    let mut reports: Vec<BlockReport> = Vec::new();
    for board in &boards {
        for block in &blocks {
            pb.set_message(format!("{block} on {}", board.name()));
            let r = offcard_synth::synth_block_seeds(*board, block, a.seeds, &mut |s| progress::note(&pb, &format!("[synth] {s}")))?;
            progress::note(&pb, &format!("[synth] {}/{}: {}", board.name(), block, r.status));
            pb.inc(1);
            reports.push(r);
        }
    }
    pb.finish_and_clear();
    let results = offcard_synth::write_docs(&reports, &command)?;
    eprintln!("[synth] wrote docs/synthesis.md and docs/synthesis.json in {:.0} s", t0.elapsed().as_secs_f64());
    if a.json {
        println!("{}", serde_json::to_string(&offcard_synth::summary_json(&results))?);
    } else {
        print!("{}", offcard_synth::results_table(&reports));
    }
    let failed: Vec<String> =
        reports.iter().filter(|r| r.status.starts_with("failed")).map(|r| format!("{}/{}", r.board.name(), r.block)).collect();
    if !failed.is_empty() {
        bail!("{} of {} runs failed: {}", failed.len(), reports.len(), failed.join(", "));
    }
    Ok(())
}
