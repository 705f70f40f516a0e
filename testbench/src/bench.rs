//! Benchmarks (figures printed, never asserted).

use crate::hdl_sim::RustHdlCard;
use crate::tlp_gen::TlpGen;
use offcard_sim::{CardInputs, CardModel, RootComplex};
use rand::{rngs::SmallRng, Rng, SeedableRng};
use std::time::Instant;

/// A register-traffic stimulus: the per-cycle inputs a busy host presents.
fn stimulus(cycles: usize) -> Vec<CardInputs> {
    let bar0 = 0x20_0000_0000u64;
    let mut rng = SmallRng::seed_from_u64(5);
    let mut gen = TlpGen::new(bar0, 0, offcard_sim::root_complex::CARD_BDF);
    let mut v = Vec::with_capacity(cycles);
    while v.len() < cycles {
        for b in offcard_sim::tlp::to_beats(&gen.register_access(&mut rng)) {
            v.push(CardInputs {
                rx_data: b.data,
                rx_keep: b.keep,
                rx_sop: b.sop as u8,
                rx_eop: b.eop as u8,
                rx_valid: 1,
                tx_ready: 1,
                reset: 0,
            });
        }
        v.push(CardInputs { tx_ready: 1, ..Default::default() });
    }
    v.truncate(cycles);
    v
}

pub struct SimBench {
    pub verilator_cycles_per_s: f64,
    pub rusthdl_cycles_per_s: f64,
    pub mmio_read_cycles: u64,
    pub mmio_write_read_cycles: u64,
}

pub fn sim_bench(progress: &mut dyn FnMut(&str)) -> SimBench {
    let stim = stimulus(1 << 16);
    progress("Verilator model: 4M cycles of register traffic");
    let mut m = CardModel::new();
    let t = Instant::now();
    let mut sink = 0u64;
    let total = 4_000_000usize;
    for i in 0..total {
        let o = m.cycle(&stim[i & (stim.len() - 1)]);
        sink = sink.wrapping_add(o.tx_data);
    }
    let verilator = total as f64 / t.elapsed().as_secs_f64();
    progress("rust-hdl simulator: 20k cycles of the same traffic");
    let mut r = RustHdlCard::new();
    let t = Instant::now();
    let n = 20_000usize;
    for inp in stim.iter().take(n) {
        let o = r.cycle(inp);
        sink = sink.wrapping_add(o.tx_data);
    }
    let rusthdl = n as f64 / t.elapsed().as_secs_f64();
    std::hint::black_box(sink);
    progress("MMIO round trip through the root-complex model");
    let mut rc = RootComplex::new(1, 1 << 16).unwrap();
    let info = rc.enumerate(0x20_0000_0000).unwrap();
    let c0 = rc.card.cycles();
    rc.read32(info.bar0).unwrap();
    let read = rc.card.cycles() - c0;
    let c0 = rc.card.cycles();
    rc.write32(info.bar0 + 0x10, 5);
    rc.read32(info.bar0 + 0x10).unwrap();
    let wr = rc.card.cycles() - c0;
    let mut rng = SmallRng::seed_from_u64(1);
    let _: u8 = rng.gen();
    SimBench {
        verilator_cycles_per_s: verilator,
        rusthdl_cycles_per_s: rusthdl,
        mmio_read_cycles: read,
        mmio_write_read_cycles: wr,
    }
}
