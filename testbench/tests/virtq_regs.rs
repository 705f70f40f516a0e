//! Testbench of `virtq_regs` (hdl/src/virtq/regs.rs), the virtqueue
//! engine's BAR0 registers and doorbells, on its own (Verilated), against a
//! model written from `regmap::virtq`'s documentation. Random register
//! traffic over the engine's window, its edges and the windows beside it:
//!
//! - each ring address reaches the configuration port once, when its high
//!   DW is written, with the staged low DW under it; the control word and
//!   both indices at once; nothing else writes the port;
//! - a doorbell write anywhere in a queue's page kicks that queue, nothing
//!   outside the doorbell pages kicks;
//! - reads return the addressed queue's `last_avail_idx`, used index and
//!   error state, the interrupt status (set per queue, cleared by writing
//!   1s) and the six counters (cleared by a write); everything else reads 0;
//! - rust-hdl's simulator agrees with Verilator cycle by cycle.

use offcard_hdl::regmap::virtq as vq;
use offcard_hdl::virtq::regs::VirtqRegs;
use offcard_sim::{BlockSim, VerilatedBlock};
use offcard_testbench::encap_blocks::rusthdl_vs_verilator;
use rand::{rngs::SmallRng, Rng, SeedableRng};

/// The status the engine shows for queue q (what the block must read out).
fn status(q: u64, salt: u64) -> (u64, u64, u64) {
    ((q * 0x1111 + salt) & 0xFFFF, (q * 0x0707 + 3 * salt) & 0xFFFF, (q + salt) % 6)
}

struct Model {
    lo: u32,
    irq_status: u32,
    counters: [u32; 9],
}

#[derive(Default, Debug)]
struct Seen {
    cfg_writes: usize,
    kicks: usize,
    reads_checked: usize,
    nonzero_reads: usize,
}

fn write(b: &mut dyn BlockSim, addr: u32, data: u32) {
    b.set("reg_addr", (addr / 4) as u64);
    b.set("reg_wr_en", 1);
    b.set("reg_wr_data", data as u64);
    b.set("reg_wr_mask", 0xFFFF_FFFF);
}

fn run(b: &mut dyn BlockSim, seed: u64, n: usize) -> Seen {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut m = Model { lo: 0, irq_status: 0, counters: [0; 9] };
    let mut seen = Seen::default();
    b.set("reset", 1);
    b.tick();
    b.set("reset", 0);
    let events = ["ev_tx_frame", "ev_tx_drop", "ev_queue_error", "ev_irq", "ev_suppressed", "ev_flag_read_error", "ev_rx_frame", "ev_rx_drop", "ev_rx_bad"];
    for step in 0..n {
        let salt = (step / 50) as u64;
        b.set("reg_wr_en", 0);
        let q = rng.gen_range(0..8u32);
        let qbase = vq::VQ_BASE + q * vq::VQ_STRIDE;
        let mut expect_cfg: Option<(u64, u64, u64)> = None;
        let mut expect_kick: Option<u64> = None;
        let mut read_addr: Option<u32> = None;
        let mut cleared: Option<usize> = None;
        match rng.gen_range(0..10) {
            // A ring address, low then high (sometimes a lone high: the last low stays staged).
            0 | 1 => {
                let (lo_reg, sel) = [(vq::Q_DESC_LO, vq::CFG_DESC), (vq::Q_AVAIL_LO, vq::CFG_AVAIL), (vq::Q_USED_LO, vq::CFG_USED)]
                    [rng.gen_range(0..3)];
                if rng.gen_bool(0.8) {
                    let lo: u32 = rng.gen();
                    write(b, qbase + lo_reg, lo);
                    m.lo = lo;
                    b.eval();
                    assert_eq!(b.get("cfg_we"), 0, "a low DW alone writes nothing");
                    b.tick();
                    b.set("reg_wr_en", 0);
                }
                let hi: u32 = rng.gen();
                write(b, qbase + lo_reg + 4, hi);
                expect_cfg = Some((q as u64, sel, (hi as u64) << 32 | m.lo as u64));
            }
            2 => {
                let (reg, sel) = [(vq::Q_CTRL, vq::CFG_CTRL), (vq::Q_LAST_AVAIL, vq::CFG_LAST_AVAIL), (vq::Q_USED_IDX, vq::CFG_USED_IDX)]
                    [rng.gen_range(0..3)];
                let v: u32 = rng.gen();
                write(b, qbase + reg, v);
                expect_cfg = Some((q as u64, sel, v as u64));
            }
            // Doorbells: anywhere in the queue's page.
            3 | 4 => {
                let off = rng.gen_range(0..vq::NOTIFY_STRIDE / 4) * 4;
                write(b, vq::NOTIFY_BASE + q * vq::NOTIFY_STRIDE + off, rng.gen());
                expect_kick = Some(q as u64);
            }
            // Writes beside the window: the DMA queues, the cache, the window's ends.
            5 => {
                let addr = [0x1000, 0x1FFC, 0x3FFC, vq::END, vq::END + 0x100, 0x7FFC, vq::VQ_BASE + 0x3C][rng.gen_range(0..7)];
                write(b, addr, rng.gen());
            }
            // Clear interrupt bits, or a counter.
            6 => {
                let v: u32 = rng.gen::<u32>() & 0xFF;
                write(b, vq::VQ_IRQ_STATUS, v);
                m.irq_status &= !v;
            }
            7 => {
                let i = rng.gen_range(0..9);
                write(b, vq::VQ_CNT_TX_FRAMES + 4 * i as u32, 0);
                cleared = Some(i);
            }
            // Reads.
            _ => {
                let addr = match rng.gen_range(0..4) {
                    0 => qbase + [vq::Q_LAST_AVAIL, vq::Q_USED_IDX, vq::Q_ERROR, vq::Q_DESC_LO, vq::Q_CTRL][rng.gen_range(0..5)],
                    1 => vq::VQ_IRQ_STATUS,
                    2 => vq::VQ_CNT_TX_FRAMES + 4 * rng.gen_range(0..9),
                    _ => [vq::END, vq::NOTIFY_BASE + 0x1000 * q, 0x1000][rng.gen_range(0..3)],
                };
                b.set("reg_addr", (addr / 4) as u64);
                read_addr = Some(addr);
            }
        }
        // Events of the engine, at random, in the access's cycle.
        let mut irq_now = false;
        for (i, e) in events.iter().enumerate() {
            let on = rng.gen_bool(0.2);
            b.set(e, on as u64);
            if on {
                m.counters[i] = m.counters[i].saturating_add(1);
                irq_now |= *e == "ev_irq";
            }
        }
        let irq_q = rng.gen_range(0..8u64);
        b.set("ev_irq_q", irq_q);
        // (A counter cleared in the cycle of its event stays 0: the clear wins.)
        if let Some(i) = cleared {
            m.counters[i] = 0;
        }
        // The engine's status for whatever queue the block asks about.
        b.eval();
        let (la, ui, er) = status(b.get("st_q"), salt);
        b.set("st_last_avail", la);
        b.set("st_used_idx", ui);
        b.set("st_err", er);
        b.eval();
        match expect_cfg {
            Some((eq, esel, edata)) => {
                assert_eq!((b.get("cfg_we"), b.get("cfg_q"), b.get("cfg_sel"), b.get("cfg_data")), (1, eq, esel, edata), "step {step}");
                seen.cfg_writes += 1;
            }
            None => assert_eq!(b.get("cfg_we"), 0, "step {step}: a configuration write from nowhere"),
        }
        match expect_kick {
            Some(kq) => {
                assert_eq!((b.get("kick"), b.get("kick_q")), (1, kq), "step {step}");
                seen.kicks += 1;
            }
            None => assert_eq!(b.get("kick"), 0, "step {step}: a kick from nowhere"),
        }
        b.tick();
        if irq_now {
            m.irq_status |= 1 << irq_q;
        }
        b.set("reg_wr_en", 0);
        for e in events {
            b.set(e, 0);
        }
        if let Some(addr) = read_addr {
            // The read is registered: hold the address a cycle, then look.
            b.eval();
            let (la, ui, er) = status(b.get("st_q"), salt);
            b.set("st_last_avail", la);
            b.set("st_used_idx", ui);
            b.set("st_err", er);
            b.tick();
            b.eval();
            let want = if addr >= vq::VQ_BASE && addr < vq::VQ_GLOBAL {
                let (la, ui, er) = status(((addr - vq::VQ_BASE) / vq::VQ_STRIDE) as u64, salt);
                match (addr - vq::VQ_BASE) % vq::VQ_STRIDE {
                    r if r == vq::Q_LAST_AVAIL => la,
                    r if r == vq::Q_USED_IDX => ui,
                    r if r == vq::Q_ERROR => er,
                    _ => 0,
                }
            } else if addr == vq::VQ_IRQ_STATUS {
                m.irq_status as u64
            } else if (vq::VQ_CNT_TX_FRAMES..vq::VQ_CNT_TX_FRAMES + 36).contains(&addr) {
                m.counters[((addr - vq::VQ_CNT_TX_FRAMES) / 4) as usize] as u64
            } else {
                0
            };
            assert_eq!(b.get("reg_rd_data"), want, "step {step}: read of {addr:#x}");
            seen.reads_checked += 1;
            seen.nonzero_reads += (want != 0) as usize;
        }
    }
    seen
}

#[test]
fn registers_doorbells_and_counters_match_the_model() {
    let mut b = VerilatedBlock::new("virtq_regs");
    let seen = run(&mut b, 1, 20_000);
    assert!(seen.cfg_writes > 3000 && seen.kicks > 1000 && seen.reads_checked > 3000 && seen.nonzero_reads > 1500, "{seen:?}");
}

#[test]
fn rusthdl_and_verilator_agree_cycle_by_cycle() {
    let (seen, cycles) = rusthdl_vs_verilator::<VirtqRegs, _>(|b| run(b, 2, 1500));
    assert!(seen.cfg_writes > 100 && cycles > 1500, "{seen:?}");
}
