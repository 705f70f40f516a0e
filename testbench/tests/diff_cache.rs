//! The tagged cache in rust-hdl's simulator and in Verilator, the same
//! stimulus, every output compared every cycle (reset clearing, lookups,
//! fills, a mask reassignment, register reads).

use offcard_hdl::regmap::cache as c;
use offcard_sim::{BlockSim, VerilatedBlock};
use offcard_testbench::cache_block::{RustHdlCache, OUTPUTS};

#[test]
fn rusthdl_and_verilator_agree_cycle_by_cycle() {
    let mut a = RustHdlCache::new();
    let mut b = VerilatedBlock::new("tagged_cache");
    let mut x = 99u64;
    let mut compared = 0;
    let mut hits = 0;
    for cycle in 0..2600u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Inputs: requests over a tiny key space, a mask write at cycle 1500,
        // register reads of counters and status all along.
        let inputs: [(&str, u64); 11] = [
            ("reset", 0),
            ("req_valid", (x % 4 != 0) as u64),
            ("req_op", if x >> 8 & 1 == 1 { c::OP_FILL } else { c::OP_LOOKUP } as u64),
            ("req_tag", x >> 12 & 3),
            ("req_key", x >> 16 & 15),
            ("req_value", x >> 32 & 0xffff),
            ("miss_ready", (x >> 20 & 1)),
            ("bar_addr", [c::CACHE_STATUS, c::CACHE_CNT_HITS, c::CACHE_CNT_OCCUPANCY, c::CACHE_MASK_BASE + 4][(x >> 24 & 3) as usize] as u64 / 4),
            ("bar_wr_en", (cycle == 1500) as u64),
            ("bar_wr_data", 0x3c),
            ("bar_wr_mask", 0xffff_ffff),
        ];
        for (p, v) in inputs {
            a.set(p, v);
            b.set(p, v);
        }
        if cycle == 1500 {
            a.set("bar_addr", (c::CACHE_MASK_BASE + 4) as u64 / 4);
            b.set("bar_addr", (c::CACHE_MASK_BASE + 4) as u64 / 4);
        }
        a.eval();
        b.eval();
        for p in OUTPUTS {
            assert_eq!(a.get(p), b.get(p), "cycle {cycle}: output {p} differs (rust-hdl vs Verilator)");
            compared += 1;
        }
        hits += (a.get("rsp_valid") == 1 && a.get("rsp_hit") == 1) as u32;
        a.tick();
        b.tick();
    }
    assert!(compared > 20_000);
    assert!(hits > 50, "the stimulus must produce hits ({hits})");
}
