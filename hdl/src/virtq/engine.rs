//! The virtqueue engine as the DMA engine holds it: its registers, the chain
//! fetcher, the transmit stage and the used-ring writer, joined. Memory
//! traffic goes through the DMA engine, so the engine's writes get their
//! write records and its reads share the link's tags and ordering:
//!
//! * ring reads (the fetcher's and the used writer's `avail.flags` reads)
//!   go to the DMA front end one at a time (`vr_*`); the used writer goes
//!   first when both wait, and the answer goes back to whoever asked;
//! * a transmitq frame's read jobs go to the front end (`vj_*`), which gives
//!   them buffer space and the read engine, and the back end sends the frame
//!   and reports it done (`vq_sent`, in order);
//! * used elements and `used.idx` are written by the back end (`vw_*`);
//! * a frame from the network whose tenant a pair takes is looked up here
//!   by the front end (`lk_*`: the receiveq's next buffer), which writes the
//!   virtio-net header and the frame into it through the back end
//!   (`take`, then `rx_done` in order); its used element follows. Chains
//!   done by transmit and receive take turns at the used writer.
//!
//! `irq` pulses for each queue interrupt the used writer raises (the card's
//! MSI; `VQ_IRQ_STATUS` says which queue).

use super::chain_fetch::VirtqChainFetch;
use super::regs::VirtqRegs;
use super::rx::VirtqRx;
use super::tx_frame::VirtqTxFrame;
use super::used::VirtqUsed;
use rust_hdl::prelude::*;

#[derive(LogicBlock, smart_default::SmartDefault)]
pub struct VirtqEngine {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    // ---- BAR0 ----
    pub reg_addr: Signal<In, Bits<14>>,
    pub reg_wr_en: Signal<In, Bit>,
    pub reg_wr_data: Signal<In, Bits<32>>,
    pub reg_wr_mask: Signal<In, Bits<32>>,
    pub reg_rd_data: Signal<Out, Bits<32>>,
    // ---- ring reads, through the DMA front end ----
    pub vr_valid: Signal<Out, Bit>,
    pub vr_ready: Signal<In, Bit>,
    pub vr_addr: Signal<Out, Bits<64>>,
    pub vr_qws: Signal<Out, Bits<2>>,
    pub vrsp_valid: Signal<In, Bit>,
    pub vrsp_data: Signal<In, Bits<64>>,
    pub vrsp_err: Signal<In, Bit>,
    // ---- transmit frames' read jobs, to the DMA front end ----
    pub vj_valid: Signal<Out, Bit>,
    pub vj_ready: Signal<In, Bit>,
    pub vj_addr: Signal<Out, Bits<64>>,
    pub vj_len: Signal<Out, Bits<14>>,
    pub vj_last: Signal<Out, Bit>,
    pub vj_frame_len: Signal<Out, Bits<14>>,
    pub vj_tenant: Signal<Out, Bits<4>>,
    // ---- the DMA back end ----
    pub vq_sent: Signal<In, Bit>,
    pub vq_failed: Signal<In, Bit>,
    pub vw_valid: Signal<Out, Bit>,
    pub vw_ready: Signal<In, Bit>,
    pub vw_addr: Signal<Out, Bits<64>>,
    pub vw_data: Signal<Out, Bits<64>>,
    pub vw_bytes: Signal<Out, Bits<4>>,
    pub vw_q: Signal<Out, Bits<3>>,
    // ---- received frames: the front end's lookup by tenant ----
    pub lk_tenant: Signal<In, Bits<4>>,
    pub lk_match: Signal<Out, Bit>,
    pub lk_valid: Signal<Out, Bit>,
    pub lk_q: Signal<Out, Bits<3>>,
    pub lk_addr: Signal<Out, Bits<64>>,
    pub lk_len: Signal<Out, Bits<32>>,
    pub take: Signal<In, Bit>,
    pub take_bytes: Signal<In, Bits<16>>,
    /// A frame for a pair was dropped by the front end (no buffer, too big, malformed).
    pub rx_drop: Signal<In, Bit>,
    pub rx_done: Signal<In, Bit>,
    pub rx_failed: Signal<In, Bit>,
    /// A queue interrupt (one cycle).
    pub irq: Signal<Out, Bit>,

    regs: VirtqRegs,
    fetch: VirtqChainFetch,
    tx: VirtqTxFrame,
    rx: VirtqRx,
    used: VirtqUsed,
    /// The used writer's last done chain came from the receive stage.
    last_rx: DFF<Bit>,
    pick_rx: Signal<Local, Bit>,
    #[default(crate::konst(0x55))]
    k_rx_queues: Constant<Bits<8>>,
    /// The ring read in flight is the used writer's (else the fetcher's).
    rd_used: DFF<Bit>,
    pick_used: Signal<Local, Bit>,
}

impl Logic for VirtqEngine {
    #[hdl_gen]
    fn update(&mut self) {
        clock!(self, clock, regs, fetch, tx, rx, used);
        dff_setup!(self, clock, rd_used, last_rx);
        self.rx.reset.next = self.reset.val();
        self.regs.reset.next = self.reset.val();
        self.fetch.reset.next = self.reset.val();
        self.tx.reset.next = self.reset.val();
        self.used.reset.next = self.reset.val();

        // ---- registers and the configuration port ----
        self.regs.reg_addr.next = self.reg_addr.val();
        self.regs.reg_wr_en.next = self.reg_wr_en.val();
        self.regs.reg_wr_data.next = self.reg_wr_data.val();
        self.regs.reg_wr_mask.next = self.reg_wr_mask.val();
        self.reg_rd_data.next = self.regs.reg_rd_data.val();
        self.fetch.cfg_we.next = self.regs.cfg_we.val();
        self.fetch.cfg_q.next = self.regs.cfg_q.val();
        self.fetch.cfg_sel.next = self.regs.cfg_sel.val();
        self.fetch.cfg_data.next = self.regs.cfg_data.val();
        self.tx.cfg_we.next = self.regs.cfg_we.val();
        self.tx.cfg_q.next = self.regs.cfg_q.val();
        self.tx.cfg_sel.next = self.regs.cfg_sel.val();
        self.tx.cfg_data.next = self.regs.cfg_data.val();
        self.rx.cfg_we.next = self.regs.cfg_we.val();
        self.rx.cfg_q.next = self.regs.cfg_q.val();
        self.rx.cfg_sel.next = self.regs.cfg_sel.val();
        self.rx.cfg_data.next = self.regs.cfg_data.val();
        self.used.cfg_we.next = self.regs.cfg_we.val();
        self.used.cfg_q.next = self.regs.cfg_q.val();
        self.used.cfg_sel.next = self.regs.cfg_sel.val();
        self.used.cfg_data.next = self.regs.cfg_data.val();
        self.fetch.kick.next = self.regs.kick.val();
        self.fetch.kick_q.next = self.regs.kick_q.val();
        self.fetch.st_q.next = self.regs.st_q.val();
        self.used.st_q.next = self.regs.st_q.val();
        self.regs.st_last_avail.next = self.fetch.st_last_avail.val();
        self.regs.st_err.next = self.fetch.st_err.val();
        self.regs.st_used_idx.next = self.used.st_used_idx.val();
        self.regs.ev_tx_frame.next = self.vq_sent.val() & !self.vq_failed.val();
        self.regs.ev_tx_drop.next = self.tx.ev_drop.val() | (self.vq_sent.val() & self.vq_failed.val());
        self.regs.ev_queue_error.next = self.fetch.ev_error.val();
        self.regs.ev_irq.next = self.used.irq.val();
        self.regs.ev_irq_q.next = self.used.irq_q.val();
        self.regs.ev_suppressed.next = self.used.ev_suppressed.val();
        self.regs.ev_flag_read_error.next = self.used.ev_read_error.val();
        self.regs.ev_rx_frame.next = self.rx_done.val() & !self.rx_failed.val();
        self.regs.ev_rx_drop.next = self.rx_drop.val() | (self.rx_done.val() & self.rx_failed.val());
        self.regs.ev_rx_bad.next = self.rx.ev_bad.val();

        // ---- ring reads: one at a time, the used writer's first ----
        self.pick_used.next = self.used.rd_valid.val();
        self.vr_valid.next = self.used.rd_valid.val() | self.fetch.rd_valid.val();
        self.vr_addr.next = self.fetch.rd_addr.val();
        self.vr_qws.next = self.fetch.rd_qws.val();
        if self.pick_used.val() {
            self.vr_addr.next = self.used.rd_addr.val();
            self.vr_qws.next = 1.into();
        }
        self.used.rd_ready.next = self.vr_ready.val() & self.pick_used.val();
        self.fetch.rd_ready.next = self.vr_ready.val() & !self.pick_used.val();
        if self.vr_ready.val() {
            self.rd_used.d.next = self.pick_used.val();
        }
        self.used.rsp_valid.next = self.vrsp_valid.val() & self.rd_used.q.val();
        self.fetch.rsp_valid.next = self.vrsp_valid.val() & !self.rd_used.q.val();
        self.used.rsp_data.next = self.vrsp_data.val();
        self.fetch.rsp_data.next = self.vrsp_data.val();
        self.used.rsp_err.next = self.vrsp_err.val();
        self.fetch.rsp_err.next = self.vrsp_err.val();

        // ---- chains: transmitqs' (odd) to the transmit stage, receiveqs'
        // (even) to the receive stage, which the fetcher serves one chain a
        // turn and only when it has room ----
        self.fetch.room.next = self.rx.room.val();
        self.fetch.one_chain.next = self.k_rx_queues.val();
        self.tx.seg_valid.next = self.fetch.seg_valid.val() & self.fetch.seg_q.val().get_bit(0);
        self.rx.seg_valid.next = self.fetch.seg_valid.val() & !self.fetch.seg_q.val().get_bit(0);
        self.fetch.seg_ready.next = self.rx.seg_ready.val();
        if self.fetch.seg_q.val().get_bit(0) {
            self.fetch.seg_ready.next = self.tx.seg_ready.val();
        }
        self.rx.seg_q.next = self.fetch.seg_q.val();
        self.rx.seg_head.next = self.fetch.seg_head.val();
        self.rx.seg_addr.next = self.fetch.seg_addr.val();
        self.rx.seg_len.next = self.fetch.seg_len.val();
        self.rx.seg_write.next = self.fetch.seg_write.val();
        self.rx.seg_first.next = self.fetch.seg_first.val();
        self.rx.seg_last.next = self.fetch.seg_last.val();
        self.rx.seg_abort.next = self.fetch.seg_abort.val();
        self.rx.lk_tenant.next = self.lk_tenant.val();
        self.lk_match.next = self.rx.lk_match.val();
        self.lk_valid.next = self.rx.lk_valid.val();
        self.lk_q.next = self.rx.lk_q.val();
        self.lk_addr.next = self.rx.lk_addr.val();
        self.lk_len.next = self.rx.lk_len.val();
        self.rx.take.next = self.take.val();
        self.rx.take_bytes.next = self.take_bytes.val();
        self.rx.rx_done.next = self.rx_done.val();
        self.rx.rx_failed.next = self.rx_failed.val();
        self.tx.seg_q.next = self.fetch.seg_q.val();
        self.tx.seg_head.next = self.fetch.seg_head.val();
        self.tx.seg_addr.next = self.fetch.seg_addr.val();
        self.tx.seg_len.next = self.fetch.seg_len.val();
        self.tx.seg_write.next = self.fetch.seg_write.val();
        self.tx.seg_last.next = self.fetch.seg_last.val();
        self.tx.seg_abort.next = self.fetch.seg_abort.val();
        self.vj_valid.next = self.tx.job_valid.val();
        self.tx.job_ready.next = self.vj_ready.val();
        self.vj_addr.next = self.tx.job_addr.val();
        self.vj_len.next = self.tx.job_len.val();
        self.vj_last.next = self.tx.job_last.val();
        self.vj_frame_len.next = self.tx.frame_len.val();
        self.vj_tenant.next = self.tx.frame_tenant.val();
        self.tx.sent.next = self.vq_sent.val();

        // ---- chains done: the used ring, transmit and receive in turn ----
        self.pick_rx.next = self.rx.done_valid.val() & (!self.tx.done_valid.val() | !self.last_rx.q.val());
        self.used.done_valid.next = self.tx.done_valid.val() | self.rx.done_valid.val();
        self.tx.done_ready.next = self.used.done_ready.val() & !self.pick_rx.val();
        self.rx.done_ready.next = self.used.done_ready.val() & self.pick_rx.val();
        // Transmit buffers are only read: the used length is 0.
        self.used.done_q.next = self.tx.done_q.val();
        self.used.done_head.next = self.tx.done_head.val();
        self.used.done_len.next = 0.into();
        if self.pick_rx.val() {
            self.used.done_q.next = self.rx.done_q.val();
            self.used.done_head.next = self.rx.done_head.val();
            self.used.done_len.next = self.rx.done_len.val();
        }
        if self.used.done_valid.val() & self.used.done_ready.val() {
            self.last_rx.d.next = self.pick_rx.val();
        }
        self.vw_valid.next = self.used.wr_valid.val();
        self.used.wr_ready.next = self.vw_ready.val();
        self.vw_addr.next = self.used.wr_addr.val();
        self.vw_data.next = self.used.wr_data.val();
        self.vw_bytes.next = self.used.wr_bytes.val();
        self.vw_q.next = self.used.irq_q.val();
        self.irq.next = self.used.irq.val();
        if self.reset.val() {
            self.rd_used.d.next = false;
            self.last_rx.d.next = false;
        }
    }
}
