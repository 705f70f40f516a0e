//! The DMA engine's sub-blocks on their own: their ports by name for
//! rust-hdl's simulator ([`NamedPorts`]), a differential run of any block
//! (rust-hdl vs Verilator, every output of every cycle), and the reference
//! model of the engine's registers (`dma_regs`).

use crate::rusthdl_block::{NamedPorts, RustHdlBlock};
use offcard_hdl::regmap::dma;
use offcard_hdl::rust_hdl::prelude::*;
use offcard_sim::{BlockSim, VerilatedBlock};

/// `NamedPorts` for a block from its port lists: one-bit inputs, wider
/// inputs, one-bit outputs, wider outputs.
macro_rules! named_ports {
    ($t:ty, $name:literal, in_bit: [$($ib:ident),*], in_bits: [$($iv:ident),*], out_bit: [$($ob:ident),*], out_bits: [$($ov:ident),*]) => {
        impl NamedPorts for $t {
            const NAME: &'static str = $name;
            fn set_port(&mut self, port: &str, v: u64) -> bool {
                match port {
                    $(stringify!($ib) => self.$ib.next = v != 0,)*
                    $(stringify!($iv) => self.$iv.next = v.to_bits(),)*
                    _ => return false,
                }
                true
            }
            fn get_port(&self, port: &str) -> Option<u64> {
                match port {
                    $(stringify!($ob) => Some(self.$ob.val() as u64),)*
                    $(stringify!($ov) => Some(self.$ov.val().to_u64()),)*
                    _ => None,
                }
            }
            fn clock_signal(&mut self) -> &mut Signal<In, Clock> {
                &mut self.clock
            }
        }
    };
}

named_ports!(offcard_hdl::dma::regs::DmaRegs, "dma_regs",
    in_bit: [reset, reg_wr_en, record_written, overflow_set, flush_done, engine_busy, head_inc],
    in_bits: [reg_addr, reg_wr_data, reg_wr_mask, events, fq, bq],
    out_bit: [overflow, flush_pending, fq_active],
    out_bits: [reg_rd_data, wrec_base, wrec_log2, wrec_prod, wrec_cons, wrec_timeout, wb_addr, irq_coalesce,
        fq_ring_base, fq_head, fq_tail, fq_mask, fq_mode, bq_cpl_base, bq_head]);

/// Drive block `name` in rust-hdl's simulator and in Verilator with the same
/// inputs (`stimulus(cycle, set)` sets them each cycle) and compare every
/// output after every evaluation. Returns the number of comparisons.
pub fn differential<U: NamedPorts>(cycles: u64, mut stimulus: impl FnMut(u64, &mut dyn FnMut(&str, u64))) -> usize {
    let mut a = RustHdlBlock::<U>::new();
    let mut b = VerilatedBlock::new(U::NAME);
    let outputs: Vec<&str> = b.abi().outputs.iter().map(|(n, _)| *n).collect();
    let mut compared = 0;
    for cycle in 0..cycles {
        stimulus(cycle, &mut |p, v| {
            a.set(p, v);
            b.set(p, v);
        });
        a.eval();
        b.eval();
        for p in &outputs {
            assert_eq!(a.get(p), b.get(p), "{}: cycle {cycle}: output {p} differs (rust-hdl vs Verilator)", U::NAME);
            compared += 1;
        }
        a.tick();
        b.tick();
    }
    compared
}

/// One DMA queue's registers as the host sees them (docs/dma.md).
#[derive(Clone, Default, Debug)]
pub struct QueueModel {
    pub ring: [u32; 2],
    pub log2: u32,
    pub cpl: [u32; 2],
    pub tail: u32,
    pub head: u32,
    pub enabled: bool,
    pub error: bool,
    pub mode: u32,
}

/// Reference model of `dma_regs`: the queues, the global registers and the
/// counters, written from the register map's documentation.
#[derive(Clone, Debug)]
pub struct DmaRegsModel {
    pub q: [QueueModel; 4],
    pub wrec: [u32; 2],
    pub wrec_log2: u32,
    pub prod: u32,
    pub cons: u32,
    pub timeout: u32,
    pub wb: [u32; 2],
    pub irq_coalesce: u32,
    pub overflow: bool,
    pub flush: bool,
    pub counters: [u32; 11],
}

impl Default for DmaRegsModel {
    fn default() -> Self {
        let q = QueueModel { log2: dma::Q_RING_LOG2_RESET, ..Default::default() };
        DmaRegsModel {
            q: [q.clone(), q.clone(), q.clone(), q],
            wrec: [0; 2],
            wrec_log2: 0,
            prod: 0,
            cons: 0,
            timeout: dma::WREC_TIMEOUT_RESET,
            wb: [0; 2],
            irq_coalesce: dma::IRQ_COALESCE_RESET,
            overflow: false,
            flush: false,
            counters: [0; 11],
        }
    }
}

impl DmaRegsModel {
    /// What a read of byte offset `off` returns (0 outside any register).
    pub fn read(&self, off: u32, engine_busy: bool) -> u32 {
        if (dma::QUEUE_BASE..dma::QUEUE_BASE + 4 * dma::QUEUE_STRIDE).contains(&off) {
            let q = &self.q[((off - dma::QUEUE_BASE) / dma::QUEUE_STRIDE) as usize];
            return match (off - dma::QUEUE_BASE) % dma::QUEUE_STRIDE {
                dma::Q_RING_LO => q.ring[0],
                dma::Q_RING_HI => q.ring[1],
                dma::Q_RING_LOG2 => q.log2,
                dma::Q_CPL_LO => q.cpl[0],
                dma::Q_CPL_HI => q.cpl[1],
                dma::Q_TAIL => q.tail,
                dma::Q_HEAD => q.head,
                dma::Q_STATUS => q.error as u32 | (q.enabled as u32) << 1,
                dma::Q_CTRL => q.enabled as u32,
                dma::Q_MODE => q.mode,
                _ => 0,
            };
        }
        match off {
            dma::DMA_STATUS => self.overflow as u32 | (self.flush as u32) << 1 | (engine_busy as u32) << 2,
            dma::WREC_LO => self.wrec[0],
            dma::WREC_HI => self.wrec[1],
            dma::WREC_LOG2 => self.wrec_log2,
            dma::WREC_PROD => self.prod,
            dma::WREC_CONS => self.cons,
            dma::WREC_TIMEOUT => self.timeout,
            dma::WREC_WB_LO => self.wb[0],
            dma::WREC_WB_HI => self.wb[1],
            dma::IRQ_COALESCE => self.irq_coalesce,
            o if (dma::CNT_DESC_DONE..=dma::CNT_RX_BAD_FRAME).contains(&o) => {
                self.counters[((o - dma::CNT_DESC_DONE) / 4) as usize]
            }
            _ => 0,
        }
    }

    /// A host write of `data` under byte mask `mask` at byte offset `off`.
    pub fn write(&mut self, off: u32, data: u32, mask: u32) {
        let merged = (self.read(off, false) & !mask) | (data & mask);
        if (dma::QUEUE_BASE..dma::QUEUE_BASE + 4 * dma::QUEUE_STRIDE).contains(&off) {
            let q = &mut self.q[((off - dma::QUEUE_BASE) / dma::QUEUE_STRIDE) as usize];
            match (off - dma::QUEUE_BASE) % dma::QUEUE_STRIDE {
                dma::Q_RING_LO => q.ring[0] = merged & !0x1f,
                dma::Q_RING_HI => q.ring[1] = merged,
                dma::Q_RING_LOG2 => {
                    q.log2 = match merged {
                        m if m & 0xf == 0 => dma::Q_RING_LOG2_RESET,
                        m if m > 12 => 12,
                        m => m & 0xf,
                    }
                }
                dma::Q_CPL_LO => q.cpl[0] = merged & !0xf,
                dma::Q_CPL_HI => q.cpl[1] = merged,
                dma::Q_TAIL => {
                    if merged >> q.log2 != 0 {
                        q.error = true;
                    } else {
                        q.tail = merged;
                    }
                }
                dma::Q_CTRL => {
                    q.enabled = merged & dma::Q_CTRL_ENABLE != 0;
                    if merged & dma::Q_CTRL_RESET != 0 {
                        q.head = 0;
                        q.tail = 0;
                        q.error = false;
                    }
                }
                dma::Q_MODE => {
                    if merged & 3 != 3 {
                        q.mode = merged & 3;
                    }
                }
                _ => {}
            }
            return;
        }
        match off {
            dma::DMA_STATUS => {
                if data & mask & 1 != 0 {
                    self.overflow = false;
                }
            }
            dma::WREC_LO => self.wrec[0] = merged & !0xf,
            dma::WREC_HI => self.wrec[1] = merged,
            dma::WREC_LOG2 => self.wrec_log2 = merged.min(16) & 0x1f,
            dma::WREC_CONS => self.cons = merged,
            dma::WREC_FLUSH => self.flush = true,
            dma::WREC_TIMEOUT => self.timeout = merged,
            dma::WREC_WB_LO => self.wb[0] = merged & !3,
            dma::WREC_WB_HI => self.wb[1] = merged,
            dma::IRQ_COALESCE => self.irq_coalesce = merged & 0xffff,
            _ => {}
        }
    }

    /// The engine retires queue `q`'s descriptor (before the host's write
    /// of the same cycle: a queue reset then wins).
    pub fn head_inc(&mut self, q: usize) {
        let q = &mut self.q[q];
        q.head = (q.head + 1) & ((1 << q.log2) - 1);
    }

    /// The engine's other events of one cycle (after the host's write: the
    /// engine's update wins).
    pub fn events(&mut self, counters: u32, record_written: bool, overflow_set: bool, flush_done: bool) {
        for (i, c) in self.counters.iter_mut().enumerate() {
            if counters >> i & 1 == 1 && *c != u32::MAX {
                *c += 1;
            }
        }
        if record_written {
            self.prod = self.prod.wrapping_add(1);
        }
        if overflow_set {
            self.overflow = true;
        }
        if flush_done {
            self.flush = false;
        }
    }

    /// Queue `q` has a descriptor waiting.
    pub fn has_desc(&self, q: usize) -> bool {
        let q = &self.q[q];
        q.enabled && !q.error && q.head != q.tail
    }
}
