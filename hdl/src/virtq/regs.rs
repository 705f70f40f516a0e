//! The virtqueue engine's BAR0 registers (`regmap::virtq`, docs/registers.md):
//! per queue its ring addresses, control word, indices and error state;
//! the engine's counters and interrupt status; and one doorbell page per
//! queue. Register writes become the engine's configuration port (`cfg_*`,
//! which every block of the engine watches for the fields it keeps), and a
//! doorbell write becomes a kick of its queue.
//!
//! A ring address is 64 bits written as two DWs: the low DW is staged here
//! and the 64-bit address applies when the high DW is written (one staging
//! register for all: a driver writes the pair back to back). Sub-DW writes
//! write the other bytes as 0. Reads are registered (the endpoint holds a
//! read's address for three cycles).
//!

use crate::konst;
use crate::regfile::EventCounter;
use crate::regmap::virtq as vq;
use rust_hdl::prelude::*;
use smart_default::SmartDefault;

// The address decode below follows these (DW indices: queue registers at
// 0x1000 + 16 q, globals at 0x1080, doorbells at 0x2000 + 0x400 q).
const _: () = assert!(
    vq::VQ_BASE == 0x4000
        && vq::VQ_STRIDE == 0x40
        && vq::VQ_GLOBAL == 0x4200
        && vq::END == 0x4400
        && vq::NOTIFY_BASE == 0x8000
        && vq::NOTIFY_STRIDE == 0x1000
        && vq::NUM_QUEUES == 8
        && vq::Q_DESC_HI == 0x04
        && vq::Q_AVAIL_HI == 0x0C
        && vq::Q_USED_HI == 0x14
        && vq::VQ_CNT_FLAG_READ_ERRORS == 0x4218
        && vq::VQ_CNT_RX_BAD_BUFFERS == 0x4224
);

/// The engine's counters, in register order from `VQ_CNT_TX_FRAMES`.
const COUNTERS: usize = 9;

#[derive(LogicBlock, SmartDefault)]
pub struct VirtqRegs {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    // ---- the BAR0 register bus (DW index) ----
    pub reg_addr: Signal<In, Bits<14>>,
    pub reg_wr_en: Signal<In, Bit>,
    pub reg_wr_data: Signal<In, Bits<32>>,
    pub reg_wr_mask: Signal<In, Bits<32>>,
    pub reg_rd_data: Signal<Out, Bits<32>>,
    // ---- the engine's configuration port ----
    pub cfg_we: Signal<Out, Bit>,
    pub cfg_q: Signal<Out, Bits<3>>,
    pub cfg_sel: Signal<Out, Bits<3>>,
    pub cfg_data: Signal<Out, Bits<64>>,
    pub kick: Signal<Out, Bit>,
    pub kick_q: Signal<Out, Bits<3>>,
    // ---- status of queue `st_q` (the queue a read addresses) ----
    pub st_q: Signal<Out, Bits<3>>,
    pub st_last_avail: Signal<In, Bits<16>>,
    pub st_err: Signal<In, Bits<4>>,
    pub st_used_idx: Signal<In, Bits<16>>,
    // ---- events (one cycle each) ----
    pub ev_tx_frame: Signal<In, Bit>,
    pub ev_tx_drop: Signal<In, Bit>,
    pub ev_queue_error: Signal<In, Bit>,
    pub ev_irq: Signal<In, Bit>,
    pub ev_irq_q: Signal<In, Bits<3>>,
    pub ev_suppressed: Signal<In, Bit>,
    pub ev_flag_read_error: Signal<In, Bit>,
    pub ev_rx_frame: Signal<In, Bit>,
    pub ev_rx_drop: Signal<In, Bit>,
    pub ev_rx_bad: Signal<In, Bit>,

    counters: [EventCounter; COUNTERS],
    irq_status: DFF<Bits<8>>,
    lo: DFF<Bits<32>>,
    rd: DFF<Bits<32>>,

    wdata: Signal<Local, Bits<32>>,
    in_queues: Signal<Local, Bit>,
    in_globals: Signal<Local, Bit>,
    in_doorbells: Signal<Local, Bit>,
    qreg: Signal<Local, Bits<4>>,
    greg: Signal<Local, Bits<7>>,
    /// The counter a global register address names (from VQ_CNT_TX_FRAMES).
    cnt_idx: Signal<Local, Bits<7>>,
    rd_next: Signal<Local, Bits<32>>,
    irq_next: Signal<Local, Bits<8>>,
    irq_set: Signal<Local, Bits<8>>,
    #[default(konst(vq::CFG_DESC))]
    c_desc: Constant<Bits<3>>,
    #[default(konst(vq::CFG_AVAIL))]
    c_avail: Constant<Bits<3>>,
    #[default(konst(vq::CFG_USED))]
    c_used: Constant<Bits<3>>,
    #[default(konst(vq::CFG_CTRL))]
    c_ctrl: Constant<Bits<3>>,
    #[default(konst(vq::CFG_LAST_AVAIL))]
    c_last_avail: Constant<Bits<3>>,
    #[default(konst(vq::CFG_USED_IDX))]
    c_used_idx: Constant<Bits<3>>,
    #[default(konst((vq::Q_DESC_LO / 4) as u64))]
    r_desc_lo: Constant<Bits<4>>,
    #[default(konst((vq::Q_DESC_HI / 4) as u64))]
    r_desc_hi: Constant<Bits<4>>,
    #[default(konst((vq::Q_AVAIL_LO / 4) as u64))]
    r_avail_lo: Constant<Bits<4>>,
    #[default(konst((vq::Q_AVAIL_HI / 4) as u64))]
    r_avail_hi: Constant<Bits<4>>,
    #[default(konst((vq::Q_USED_LO / 4) as u64))]
    r_used_lo: Constant<Bits<4>>,
    #[default(konst((vq::Q_USED_HI / 4) as u64))]
    r_used_hi: Constant<Bits<4>>,
    #[default(konst((vq::Q_CTRL / 4) as u64))]
    r_ctrl: Constant<Bits<4>>,
    #[default(konst((vq::Q_LAST_AVAIL / 4) as u64))]
    r_last_avail: Constant<Bits<4>>,
    #[default(konst((vq::Q_USED_IDX / 4) as u64))]
    r_used_idx: Constant<Bits<4>>,
    #[default(konst((vq::Q_ERROR / 4) as u64))]
    r_error: Constant<Bits<4>>,
    #[default(konst(((vq::VQ_IRQ_STATUS - vq::VQ_GLOBAL) / 4) as u64))]
    g_irq_status: Constant<Bits<7>>,
    #[default(konst(((vq::VQ_CNT_TX_FRAMES - vq::VQ_GLOBAL) / 4) as u64))]
    g_cnt0: Constant<Bits<7>>,
}

impl Logic for VirtqRegs {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, irq_status, lo, rd);
        for i in 0..COUNTERS {
            self.counters[i].clock.next = self.clock.val();
            self.counters[i].reset.next = self.reset.val();
            self.counters[i].clear.next = false;
        }
        self.counters[0].inc.next = self.ev_tx_frame.val();
        self.counters[1].inc.next = self.ev_tx_drop.val();
        self.counters[2].inc.next = self.ev_queue_error.val();
        self.counters[3].inc.next = self.ev_irq.val();
        self.counters[4].inc.next = self.ev_suppressed.val();
        self.counters[5].inc.next = self.ev_flag_read_error.val();
        self.counters[6].inc.next = self.ev_rx_frame.val();
        self.counters[7].inc.next = self.ev_rx_drop.val();
        self.counters[8].inc.next = self.ev_rx_bad.val();

        // ---- decode (DW index) ----
        self.in_queues.next = self.reg_addr.val().get_bits::<7>(7) == 0x20;
        self.in_globals.next = self.reg_addr.val().get_bits::<7>(7) == 0x21;
        self.in_doorbells.next = self.reg_addr.val().get_bit(13);
        self.qreg.next = self.reg_addr.val().get_bits::<4>(0);
        self.greg.next = self.reg_addr.val().get_bits::<7>(0);
        self.cnt_idx.next = self.greg.val() - self.g_cnt0.val();
        self.wdata.next = self.reg_wr_data.val() & self.reg_wr_mask.val();

        // ---- writes ----
        self.cfg_we.next = false;
        self.cfg_q.next = self.reg_addr.val().get_bits::<3>(4);
        self.cfg_sel.next = self.c_ctrl.val();
        self.cfg_data.next = bit_cast::<64, 32>(self.wdata.val());
        self.kick.next = false;
        self.kick_q.next = self.reg_addr.val().get_bits::<3>(10);
        if self.reg_wr_en.val() & self.in_queues.val() {
            if (self.qreg.val() == self.r_desc_lo.val())
                | (self.qreg.val() == self.r_avail_lo.val())
                | (self.qreg.val() == self.r_used_lo.val())
            {
                self.lo.d.next = self.wdata.val();
            }
            // A ring address: the staged low DW under the high one.
            self.cfg_data.next = (bit_cast::<64, 32>(self.wdata.val()) << 32) | bit_cast::<64, 32>(self.lo.q.val());
            if self.qreg.val() == self.r_desc_hi.val() {
                self.cfg_we.next = true;
                self.cfg_sel.next = self.c_desc.val();
            }
            if self.qreg.val() == self.r_avail_hi.val() {
                self.cfg_we.next = true;
                self.cfg_sel.next = self.c_avail.val();
            }
            if self.qreg.val() == self.r_used_hi.val() {
                self.cfg_we.next = true;
                self.cfg_sel.next = self.c_used.val();
            }
            if self.qreg.val() == self.r_ctrl.val() {
                self.cfg_we.next = true;
                self.cfg_sel.next = self.c_ctrl.val();
                self.cfg_data.next = bit_cast::<64, 32>(self.wdata.val());
            }
            if self.qreg.val() == self.r_last_avail.val() {
                self.cfg_we.next = true;
                self.cfg_sel.next = self.c_last_avail.val();
                self.cfg_data.next = bit_cast::<64, 32>(self.wdata.val());
            }
            if self.qreg.val() == self.r_used_idx.val() {
                self.cfg_we.next = true;
                self.cfg_sel.next = self.c_used_idx.val();
                self.cfg_data.next = bit_cast::<64, 32>(self.wdata.val());
            }
        }
        // Doorbells.
        if self.reg_wr_en.val() & self.in_doorbells.val() {
            self.kick.next = true;
        }
        // Interrupt status: set by the engine, cleared by writing 1s.
        // (Through a Local: rust-hdl's simulator does not read back a
        // DFF's `d` assigned earlier in the same update as Verilog does.)
        self.irq_next.next = self.irq_status.q.val();
        if self.reg_wr_en.val() & self.in_globals.val() & (self.greg.val() == self.g_irq_status.val()) {
            self.irq_next.next = self.irq_status.q.val() & !self.wdata.val().get_bits::<8>(0);
        }
        self.irq_set.next = 0.into();
        if self.ev_irq.val() {
            self.irq_set.next = bit_cast::<8, 1>(1.into()) << self.ev_irq_q.val();
        }
        self.irq_status.d.next = self.irq_next.val() | self.irq_set.val();
        for i in 0..COUNTERS {
            if self.reg_wr_en.val() & self.in_globals.val() & (self.cnt_idx.val().index() == i) {
                self.counters[i].clear.next = true;
            }
        }

        // ---- reads (registered) ----
        self.st_q.next = self.reg_addr.val().get_bits::<3>(4);
        self.rd_next.next = 0.into();
        if self.in_queues.val() {
            if self.qreg.val() == self.r_last_avail.val() {
                self.rd_next.next = bit_cast::<32, 16>(self.st_last_avail.val());
            }
            if self.qreg.val() == self.r_used_idx.val() {
                self.rd_next.next = bit_cast::<32, 16>(self.st_used_idx.val());
            }
            if self.qreg.val() == self.r_error.val() {
                self.rd_next.next = bit_cast::<32, 4>(self.st_err.val());
            }
        }
        if self.in_globals.val() {
            if self.greg.val() == self.g_irq_status.val() {
                self.rd_next.next = bit_cast::<32, 8>(self.irq_status.q.val());
            }
            for i in 0..COUNTERS {
                if self.cnt_idx.val().index() == i {
                    self.rd_next.next = self.counters[i].count.val();
                }
            }
        }
        self.rd.d.next = self.rd_next.val();
        self.reg_rd_data.next = self.rd.q.val();
        if self.reset.val() {
            self.irq_status.d.next = 0.into();
        }
    }
}
