//! Testbench of `dma_regs` (hdl/src/dma/regs.rs), the DMA engine's register
//! block: random host reads and writes (byte masks, every queue and global
//! register, counters, addresses next to them) mixed with the engine's
//! events, against the reference model in `offcard_testbench::dma_blocks`;
//! the engine-side outputs (the front end's and the back end's queue views,
//! the record ring) are checked every cycle. Then rust-hdl's simulator against Verilator.

use offcard_hdl::dma::regs::DmaRegs;
use offcard_hdl::regmap::dma;
use offcard_sim::{BlockSim, VerilatedBlock};
use offcard_testbench::dma_blocks::{differential, DmaRegsModel};
use rand::{rngs::SmallRng, Rng, SeedableRng};

/// Byte offsets the stimulus uses: every register, plus holes.
fn offsets() -> Vec<u32> {
    let mut v = vec![];
    for q in 0..4 {
        for r in 0..16 {
            v.push(dma::QUEUE_BASE + q * dma::QUEUE_STRIDE + 4 * r);
        }
    }
    for off in (dma::DMA_BASE..=dma::CNT_RX_BAD_FRAME + 8).step_by(4) {
        v.push(off);
    }
    v
}

/// A random value that often lands in the interesting range of `off`.
fn value(rng: &mut SmallRng, off: u32) -> u32 {
    match rng.gen_range(0..4) {
        0 => rng.gen(),
        1 => rng.gen_range(0..20),
        2 if (dma::QUEUE_BASE..dma::DMA_BASE).contains(&off) => {
            // enable, sometimes reset; small tails; modes 0..3
            rng.gen_range(0..4)
        }
        _ => rng.gen_range(0..4096),
    }
}

fn byte_mask(rng: &mut SmallRng) -> u32 {
    let be: u32 = if rng.gen_bool(0.7) { 0xf } else { rng.gen_range(1..16) };
    (0..4).filter(|i| be >> i & 1 == 1).map(|i| 0xff << (8 * i)).sum()
}

#[test]
fn random_register_traffic_and_events_match_the_model() {
    let mut hw = VerilatedBlock::new("dma_regs");
    let mut m = DmaRegsModel::default();
    let mut rng = SmallRng::seed_from_u64(0xd3a);
    let offs = offsets();
    let (mut reads, mut nonzero, mut pending_seen, mut errors) = (0, 0, 0, 0);
    let mut prev_read: Option<(u32, u32)> = None;
    for cycle in 0..40_000u32 {
        let off = offs[rng.gen_range(0..offs.len())];
        let write = rng.gen_bool(0.4);
        let (data, mask) = (value(&mut rng, off), byte_mask(&mut rng));
        let counters: u32 = if rng.gen_bool(0.3) { rng.gen_range(0..1 << 11) } else { 0 };
        let record_written = rng.gen_bool(0.1);
        let overflow_set = rng.gen_bool(0.01);
        let flush_done = rng.gen_bool(0.02);
        let busy = rng.gen_bool(0.5);
        let head_inc = rng.gen_bool(0.1);
        let (fq, bq) = (rng.gen_range(0..4usize), rng.gen_range(0..4usize));
        for (p, v) in [
            ("reg_addr", off as u64 / 4),
            ("reg_wr_en", write as u64),
            ("reg_wr_data", data as u64),
            ("reg_wr_mask", mask as u64),
            ("events", counters as u64),
            ("record_written", record_written as u64),
            ("overflow_set", overflow_set as u64),
            ("flush_done", flush_done as u64),
            ("engine_busy", busy as u64),
            ("head_inc", head_inc as u64),
            ("fq", fq as u64),
            ("bq", bq as u64),
        ] {
            hw.set(p, v);
        }
        hw.eval();
        // Reads take two cycles: this cycle's read data answers the previous
        // cycle's address, from the state as it was then.
        if let Some((prev_off, want)) = prev_read {
            assert_eq!(hw.get("reg_rd_data") as u32, want, "cycle {cycle}: read of {prev_off:#x} (previous cycle)");
            reads += 1;
            nonzero += (want != 0) as u32;
        }
        prev_read = Some((off, m.read(off, busy)));
        // Combinational outputs for this cycle's inputs, from the state so far.
        let q = &m.q[fq];
        assert_eq!(hw.get("fq_ring_base"), (q.ring[1] as u64) << 32 | q.ring[0] as u64, "cycle {cycle}: ring base");
        assert_eq!(
            [hw.get("fq_head"), hw.get("fq_tail"), hw.get("fq_mask"), hw.get("fq_mode")],
            [q.head, q.tail, (1 << q.log2) - 1, q.mode].map(|v| v as u64),
            "cycle {cycle}: front view of queue {fq}"
        );
        assert_eq!(hw.get("fq_active") == 1, q.enabled && !q.error, "cycle {cycle}: active");
        let q = &m.q[bq];
        assert_eq!(hw.get("bq_cpl_base"), (q.cpl[1] as u64) << 32 | q.cpl[0] as u64, "cycle {cycle}: cpl base");
        assert_eq!(hw.get("bq_head") as u32, q.head, "cycle {cycle}: back view of queue {bq}");
        assert_eq!(hw.get("wrec_base"), (m.wrec[1] as u64) << 32 | m.wrec[0] as u64);
        assert_eq!(hw.get("wb_addr"), (m.wb[1] as u64) << 32 | m.wb[0] as u64);
        assert_eq!(
            [hw.get("wrec_log2"), hw.get("wrec_prod"), hw.get("wrec_cons"), hw.get("wrec_timeout"), hw.get("irq_coalesce")],
            [m.wrec_log2, m.prod, m.cons, m.timeout, m.irq_coalesce].map(|v| v as u64),
            "cycle {cycle}: record ring registers"
        );
        assert_eq!((hw.get("overflow") == 1, hw.get("flush_pending") == 1), (m.overflow, m.flush), "cycle {cycle}: status");
        pending_seen += (0..4).any(|q| m.has_desc(q)) as u32;
        errors += m.q.iter().filter(|q| q.error).count() as u32;
        hw.tick();
        if head_inc {
            m.head_inc(bq);
        }
        if write {
            m.write(off, data, mask);
        }
        m.events(counters, record_written, overflow_set, flush_done);
    }
    // The stimulus reached the states that matter.
    assert!(nonzero > reads / 4, "most reads should see non-zero registers ({nonzero}/{reads})");
    assert!(pending_seen > 1000, "queues with descriptors waiting: {pending_seen} cycles");
    assert!(errors > 0, "a tail outside the ring must have set a queue's error");
    assert!(m.counters.iter().all(|&c| c > 100), "every counter counted: {:?}", m.counters);
}

#[test]
fn rusthdl_and_verilator_agree_cycle_by_cycle() {
    let mut rng = SmallRng::seed_from_u64(7);
    let offs = offsets();
    let compared = differential::<DmaRegs>(6000, |cycle, set| {
        set("reset", (cycle < 2) as u64);
        set("reg_addr", offs[rng.gen_range(0..offs.len())] as u64 / 4);
        set("reg_wr_en", rng.gen_bool(0.4) as u64);
        set("reg_wr_data", rng.gen_range(0..64));
        set("reg_wr_mask", if rng.gen_bool(0.8) { 0xffff_ffff } else { 0xff });
        set("events", rng.gen_range(0..1 << 11));
        for p in ["record_written", "overflow_set", "flush_done", "engine_busy", "head_inc"] {
            set(p, rng.gen_bool(0.2) as u64);
        }
        for p in ["fq", "bq"] {
            set(p, rng.gen_range(0..4));
        }
    });
    assert!(compared > 6000 * 10);
}
