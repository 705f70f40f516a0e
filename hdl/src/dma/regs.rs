//! The DMA engine's registers (BAR0 0x1000..0x12FF): the four queues'
//! registers (`QueueRegs`, one per queue), the global registers (write
//! record ring, producer write-back, interrupt coalescing, status) and the
//! event counters. The engine's data path sees them as plain outputs and
//! reports what happens through one-cycle pulses; the host's view and the
//! engine's never race because every register has one writer (host writes
//! here, the engine's events here, the engine's state in the engine).
//!
//! The engine is pipelined: its front end fetches descriptors (`fq`
//! selects the queue it looks at) while its back end completes earlier ones
//! in order (`bq`), so each has its own view of the queues.

use super::queue_regs::QueueRegs;
use crate::konst;
use crate::regfile::EventCounter;
use crate::regmap::dma;
use rust_hdl::prelude::*;
use smart_default::SmartDefault;

pub const NUM_QUEUES: usize = dma::NUM_QUEUES as usize;

/// Index of a counter (register offset `CNT_*`) in the `events` pulse
/// vector: the counters sit at consecutive DWs from `CNT_DESC_DONE`.
pub const fn event(counter_offset: u32) -> usize {
    ((counter_offset - dma::CNT_DESC_DONE) >> 2) as usize
}
pub const NUM_EVENTS: usize = event(dma::CNT_RX_BAD_FRAME) + 1;
pub const EV_DESC_DONE: usize = event(dma::CNT_DESC_DONE);
pub const EV_DESC_ERROR: usize = event(dma::CNT_DESC_ERROR);
pub const EV_RECORDS: usize = event(dma::CNT_RECORDS);
pub const EV_COALESCED: usize = event(dma::CNT_COALESCED);
pub const EV_STALL: usize = event(dma::CNT_STALL_CYCLES);
pub const EV_UNEXPECTED_CPL: usize = event(dma::CNT_UNEXPECTED_CPL);
pub const EV_TX_FRAMES: usize = event(dma::CNT_TX_FRAMES);
pub const EV_RX_FRAMES: usize = event(dma::CNT_RX_FRAMES);
pub const EV_RX_NO_BUFFER: usize = event(dma::CNT_RX_NO_BUFFER);
pub const EV_RX_TOO_LONG: usize = event(dma::CNT_RX_TOO_LONG);
pub const EV_RX_BAD_FRAME: usize = event(dma::CNT_RX_BAD_FRAME);

/// DW index of a global register relative to `DMA_BASE`.
/// A global register's DW index in BAR0 (the decode compares the address
/// with these directly: no subtraction in front of the compares; timing).
fn g(off: u32) -> Constant<Bits<14>> {
    konst((off >> 2) as u64)
}

#[derive(LogicBlock, SmartDefault)]
pub struct DmaRegs {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    // ---- BAR0 port (DW index from the endpoint) ----
    pub reg_addr: Signal<In, Bits<14>>,
    pub reg_wr_en: Signal<In, Bit>,
    pub reg_wr_data: Signal<In, Bits<32>>,
    pub reg_wr_mask: Signal<In, Bits<32>>,
    pub reg_rd_data: Signal<Out, Bits<32>>,
    // ---- events from the engine (one-cycle pulses) ----
    /// Bit `EV_*` counts one event of that counter.
    pub events: Signal<In, Bits<NUM_EVENTS>>,
    /// A record went into the ring: the producer count advances.
    pub record_written: Signal<In, Bit>,
    /// A write gave up waiting for a record slot: sticky overflow.
    pub overflow_set: Signal<In, Bit>,
    /// The flush the host asked for is done (producer written back).
    pub flush_done: Signal<In, Bit>,
    /// The engine is working on a descriptor (`DMA_STATUS` bit 2).
    pub engine_busy: Signal<In, Bit>,
    // ---- global registers, as the engine uses them ----
    pub wrec_base: Signal<Out, Bits<64>>,
    pub wrec_log2: Signal<Out, Bits<5>>,
    pub wrec_prod: Signal<Out, Bits<32>>,
    pub wrec_cons: Signal<Out, Bits<32>>,
    pub wrec_timeout: Signal<Out, Bits<32>>,
    pub wb_addr: Signal<Out, Bits<64>>,
    pub irq_coalesce: Signal<Out, Bits<16>>,
    pub overflow: Signal<Out, Bit>,
    pub flush_pending: Signal<Out, Bit>,
    // ---- queues ----
    /// The front end's queue (scheduler candidate, descriptor fetch): where
    /// its ring is, head, tail and index mask (it fetches ahead of head),
    /// mode, and whether it may run.
    pub fq: Signal<In, Bits<2>>,
    pub fq_ring_base: Signal<Out, Bits<64>>,
    pub fq_head: Signal<Out, Bits<12>>,
    pub fq_tail: Signal<Out, Bits<12>>,
    pub fq_mask: Signal<Out, Bits<12>>,
    pub fq_mode: Signal<Out, Bits<2>>,
    pub fq_active: Signal<Out, Bit>,
    /// The back end's queue (completions, in order): its completion ring and
    /// head; `head_inc` retires the descriptor at head.
    pub bq: Signal<In, Bits<2>>,
    pub head_inc: Signal<In, Bit>,
    pub bq_cpl_base: Signal<Out, Bits<64>>,
    pub bq_head: Signal<Out, Bits<12>>,

    queues: [QueueRegs; NUM_QUEUES],
    counters: [EventCounter; NUM_EVENTS],
    wrec_lo: DFF<Bits<32>>,
    wrec_hi: DFF<Bits<32>>,
    wrec_log2_r: DFF<Bits<5>>,
    wrec_prod_r: DFF<Bits<32>>,
    wrec_cons_r: DFF<Bits<32>>,
    wrec_timeout_r: DFF<Bits<32>>,
    wb_lo: DFF<Bits<32>>,
    wb_hi: DFF<Bits<32>>,
    irq_coalesce_r: DFF<Bits<16>>,
    overflow_r: DFF<Bit>,
    flush_pending_r: DFF<Bit>,

    is_queue: Signal<Local, Bit>,
    /// BAR0 read, first cycle: the global register's value, the addressed
    /// queue's, and which of the two the address selects.
    rd_g: DFF<Bits<32>>,
    rd_q: DFF<Bits<32>>,
    rd_from_q: DFF<Bit>,
    g_rd: Signal<Local, Bits<32>>,
    /// Counter index of the access (valid when the address is at or past the first).
    cnt_idx: Signal<Local, Bits<14>>,
    /// A host write merged under its byte mask with the register written,
    /// one per register (not through the read multiplexer: timing).
    m_wrec_lo: Signal<Local, Bits<32>>,
    m_wrec_hi: Signal<Local, Bits<32>>,
    m_wrec_log2: Signal<Local, Bits<32>>,
    m_wrec_cons: Signal<Local, Bits<32>>,
    m_wrec_timeout: Signal<Local, Bits<32>>,
    m_wb_lo: Signal<Local, Bits<32>>,
    m_wb_hi: Signal<Local, Bits<32>>,
    m_irq_coalesce: Signal<Local, Bits<16>>,
    #[default(konst((dma::QUEUE_BASE >> 2) as u64))]
    c_q_first: Constant<Bits<14>>,
    #[default(g(dma::DMA_STATUS))]
    g_dma_status: Constant<Bits<14>>,
    #[default(g(dma::WREC_LO))]
    g_wrec_lo: Constant<Bits<14>>,
    #[default(g(dma::WREC_HI))]
    g_wrec_hi: Constant<Bits<14>>,
    #[default(g(dma::WREC_LOG2))]
    g_wrec_log2: Constant<Bits<14>>,
    #[default(g(dma::WREC_PROD))]
    g_wrec_prod: Constant<Bits<14>>,
    #[default(g(dma::WREC_CONS))]
    g_wrec_cons: Constant<Bits<14>>,
    #[default(g(dma::WREC_FLUSH))]
    g_wrec_flush: Constant<Bits<14>>,
    #[default(g(dma::WREC_TIMEOUT))]
    g_wrec_timeout: Constant<Bits<14>>,
    #[default(g(dma::WREC_WB_LO))]
    g_wrec_wb_lo: Constant<Bits<14>>,
    #[default(g(dma::WREC_WB_HI))]
    g_wrec_wb_hi: Constant<Bits<14>>,
    #[default(g(dma::IRQ_COALESCE))]
    g_irq_coalesce: Constant<Bits<14>>,
    /// First counter's DW index relative to `DMA_BASE`.
    #[default(g(dma::CNT_DESC_DONE))]
    g_counters: Constant<Bits<14>>,
    /// Reset values from the register map.
    #[default(konst(dma::WREC_TIMEOUT_RESET as u64))]
    k_wrec_timeout_reset: Constant<Bits<32>>,
    #[default(konst(dma::IRQ_COALESCE_RESET as u64))]
    k_irq_coalesce_reset: Constant<Bits<16>>,
}

impl Logic for DmaRegs {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clock, wrec_lo, wrec_hi, wrec_log2_r, wrec_prod_r, wrec_cons_r, wrec_timeout_r, wb_lo, wb_hi,
            irq_coalesce_r, overflow_r, flush_pending_r, rd_g, rd_q, rd_from_q
        );
        // ---- queues: address decode, per-queue fields, selections ----
        self.is_queue.next =
            (self.reg_addr.val() >= self.c_q_first.val()) & (self.reg_addr.val() < self.c_q_first.val() + 64);
        self.fq_ring_base.next = 0.into();
        self.fq_head.next = 0.into();
        self.fq_tail.next = 0.into();
        self.fq_mask.next = 0.into();
        self.fq_mode.next = 0.into();
        self.fq_active.next = false;
        self.bq_cpl_base.next = 0.into();
        self.bq_head.next = 0.into();
        for q in 0..NUM_QUEUES {
            self.queues[q].clock.next = self.clock.val();
            self.queues[q].reset.next = self.reset.val();
            self.queues[q].offset.next = self.reg_addr.val().get_bits::<4>(0);
            self.queues[q].sel.next = self.is_queue.val() & (self.reg_addr.val().get_bits::<2>(4).index() == q);
            self.queues[q].wr_en.next = self.reg_wr_en.val();
            self.queues[q].wr_data.next = self.reg_wr_data.val();
            self.queues[q].wr_mask.next = self.reg_wr_mask.val();
            self.queues[q].head_inc.next = self.head_inc.val() & (self.bq.val().index() == q);
            if self.fq.val().index() == q {
                self.fq_ring_base.next = self.queues[q].ring_base.val();
                self.fq_head.next = self.queues[q].head.val();
                self.fq_tail.next = self.queues[q].tail_idx.val();
                self.fq_mask.next = self.queues[q].index_mask.val();
                self.fq_mode.next = self.queues[q].mode.val();
                self.fq_active.next = self.queues[q].active.val();
            }
            if self.bq.val().index() == q {
                self.bq_cpl_base.next = self.queues[q].cpl_base.val();
                self.bq_head.next = self.queues[q].head.val();
            }
        }

        // ---- counters ----
        self.cnt_idx.next = self.reg_addr.val() - self.g_counters.val();
        self.g_rd.next = 0.into();
        for i in 0..NUM_EVENTS {
            self.counters[i].clock.next = self.clock.val();
            self.counters[i].reset.next = self.reset.val();
            self.counters[i].clear.next = false;
            self.counters[i].inc.next = self.events.val().get_bit(i);
            if (self.reg_addr.val() >= self.g_counters.val()) & (self.cnt_idx.val().index() == i) {
                self.g_rd.next = self.counters[i].count.val();
            }
        }

        // ---- global registers: read ----
        if self.reg_addr.val() == self.g_dma_status.val() {
            self.g_rd.next = bit_cast::<32, 1>(self.overflow_r.q.val().into())
                | (bit_cast::<32, 1>(self.flush_pending_r.q.val().into()) << 1)
                | (bit_cast::<32, 1>(self.engine_busy.val().into()) << 2);
        } else if self.reg_addr.val() == self.g_wrec_lo.val() {
            self.g_rd.next = self.wrec_lo.q.val();
        } else if self.reg_addr.val() == self.g_wrec_hi.val() {
            self.g_rd.next = self.wrec_hi.q.val();
        } else if self.reg_addr.val() == self.g_wrec_log2.val() {
            self.g_rd.next = bit_cast::<32, 5>(self.wrec_log2_r.q.val());
        } else if self.reg_addr.val() == self.g_wrec_prod.val() {
            self.g_rd.next = self.wrec_prod_r.q.val();
        } else if self.reg_addr.val() == self.g_wrec_cons.val() {
            self.g_rd.next = self.wrec_cons_r.q.val();
        } else if self.reg_addr.val() == self.g_wrec_timeout.val() {
            self.g_rd.next = self.wrec_timeout_r.q.val();
        } else if self.reg_addr.val() == self.g_wrec_wb_lo.val() {
            self.g_rd.next = self.wb_lo.q.val();
        } else if self.reg_addr.val() == self.g_wrec_wb_hi.val() {
            self.g_rd.next = self.wb_hi.q.val();
        } else if self.reg_addr.val() == self.g_irq_coalesce.val() {
            self.g_rd.next = bit_cast::<32, 16>(self.irq_coalesce_r.q.val());
        }
        // Reads take two cycles (timing; the endpoint waits for them): the
        // first registers the global value and the addressed queue's
        // value, the second picks one.
        self.rd_g.d.next = self.g_rd.val();
        self.rd_q.d.next = 0.into();
        self.rd_from_q.d.next = self.is_queue.val();
        for q in 0..NUM_QUEUES {
            if self.queues[q].sel.val() {
                self.rd_q.d.next = self.queues[q].rd_data.val();
            }
        }
        self.reg_rd_data.next = self.rd_g.q.val();
        if self.rd_from_q.q.val() {
            self.reg_rd_data.next = self.rd_q.q.val();
        }

        // ---- global registers: write (host), then the engine's events ----
        self.m_wrec_lo.next = (self.wrec_lo.q.val() & !self.reg_wr_mask.val()) | (self.reg_wr_data.val() & self.reg_wr_mask.val());
        self.m_wrec_hi.next = (self.wrec_hi.q.val() & !self.reg_wr_mask.val()) | (self.reg_wr_data.val() & self.reg_wr_mask.val());
        self.m_wrec_log2.next = (bit_cast::<32, 5>(self.wrec_log2_r.q.val()) & !self.reg_wr_mask.val())
            | (self.reg_wr_data.val() & self.reg_wr_mask.val());
        self.m_wrec_cons.next =
            (self.wrec_cons_r.q.val() & !self.reg_wr_mask.val()) | (self.reg_wr_data.val() & self.reg_wr_mask.val());
        self.m_wrec_timeout.next =
            (self.wrec_timeout_r.q.val() & !self.reg_wr_mask.val()) | (self.reg_wr_data.val() & self.reg_wr_mask.val());
        self.m_wb_lo.next = (self.wb_lo.q.val() & !self.reg_wr_mask.val()) | (self.reg_wr_data.val() & self.reg_wr_mask.val());
        self.m_wb_hi.next = (self.wb_hi.q.val() & !self.reg_wr_mask.val()) | (self.reg_wr_data.val() & self.reg_wr_mask.val());
        self.m_irq_coalesce.next = (self.irq_coalesce_r.q.val() & !self.reg_wr_mask.val().get_bits::<16>(0))
            | (self.reg_wr_data.val().get_bits::<16>(0) & self.reg_wr_mask.val().get_bits::<16>(0));
        if self.reg_wr_en.val() {
            if self.reg_addr.val() == self.g_dma_status.val() {
                // Writing 1 to bit 0 clears the overflow (a new epoch).
                if self.reg_wr_data.val().get_bit(0) & self.reg_wr_mask.val().get_bit(0) {
                    self.overflow_r.d.next = false;
                }
            } else if self.reg_addr.val() == self.g_wrec_lo.val() {
                self.wrec_lo.d.next = self.m_wrec_lo.val() & 0xFFFF_FFF0_u64;
            } else if self.reg_addr.val() == self.g_wrec_hi.val() {
                self.wrec_hi.d.next = self.m_wrec_hi.val();
            } else if self.reg_addr.val() == self.g_wrec_log2.val() {
                if self.m_wrec_log2.val() > 16 {
                    self.wrec_log2_r.d.next = 16.into();
                } else {
                    self.wrec_log2_r.d.next = self.m_wrec_log2.val().get_bits::<5>(0);
                }
            } else if self.reg_addr.val() == self.g_wrec_cons.val() {
                self.wrec_cons_r.d.next = self.m_wrec_cons.val();
            } else if self.reg_addr.val() == self.g_wrec_flush.val() {
                self.flush_pending_r.d.next = true;
            } else if self.reg_addr.val() == self.g_wrec_timeout.val() {
                self.wrec_timeout_r.d.next = self.m_wrec_timeout.val();
            } else if self.reg_addr.val() == self.g_wrec_wb_lo.val() {
                self.wb_lo.d.next = self.m_wb_lo.val() & 0xFFFF_FFFC_u64;
            } else if self.reg_addr.val() == self.g_wrec_wb_hi.val() {
                self.wb_hi.d.next = self.m_wb_hi.val();
            } else if self.reg_addr.val() == self.g_irq_coalesce.val() {
                self.irq_coalesce_r.d.next = self.m_irq_coalesce.val();
            }
        }
        if self.record_written.val() {
            self.wrec_prod_r.d.next = self.wrec_prod_r.q.val() + 1;
        }
        if self.overflow_set.val() {
            self.overflow_r.d.next = true;
        }
        if self.flush_done.val() {
            self.flush_pending_r.d.next = false;
        }
        if self.reset.val() {
            self.wrec_log2_r.d.next = 0.into();
            self.wrec_prod_r.d.next = 0.into();
            self.wrec_cons_r.d.next = 0.into();
            self.wrec_timeout_r.d.next = self.k_wrec_timeout_reset.val();
            self.overflow_r.d.next = false;
            self.flush_pending_r.d.next = false;
            self.irq_coalesce_r.d.next = self.k_irq_coalesce_reset.val();
        }

        self.wrec_base.next = (bit_cast::<64, 32>(self.wrec_hi.q.val()) << 32) | bit_cast::<64, 32>(self.wrec_lo.q.val());
        self.wrec_log2.next = self.wrec_log2_r.q.val();
        self.wrec_prod.next = self.wrec_prod_r.q.val();
        self.wrec_cons.next = self.wrec_cons_r.q.val();
        self.wrec_timeout.next = self.wrec_timeout_r.q.val();
        self.wb_addr.next = (bit_cast::<64, 32>(self.wb_hi.q.val()) << 32) | bit_cast::<64, 32>(self.wb_lo.q.val());
        self.irq_coalesce.next = self.irq_coalesce_r.q.val();
        self.overflow.next = self.overflow_r.q.val();
        self.flush_pending.next = self.flush_pending_r.q.val();
    }
}
