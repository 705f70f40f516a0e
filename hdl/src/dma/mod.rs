//! DMA engine: copy queues with descriptor and completion rings in host
//! memory, reads split by Max Read Request Size with up to 16 outstanding,
//! writes split by Max Payload Size, and a write record for every memory
//! write it makes (data and completion entries), appended to a ring in host
//! memory. No record is ever lost: a write that needs a record slot waits
//! for one; if the host does not free one within `WREC_TIMEOUT` cycles the
//! card sets the sticky overflow status (the host then treats everything
//! mapped as dirty for the epoch) and carries on without records. A write
//! that starts waiting raises the MSI, so the host drains the ring.
//!
//! Records are coalesced: one open data record and one open completion
//! record are kept in registers and extended while writes stay adjacent.
//! They are written to the ring when a non-adjacent write needs the slot or
//! when the host asks for a flush (`WREC_FLUSH`), after which the producer
//! count is written back to host memory.
//!
//! Completions for reads arrive on `cpl_*` (split at the Read Completion
//! Boundary, out of order across tags); their data goes straight into the
//! byte buffer at the destination's alignment, so the write side streams one
//! beat per cycle. Tags are 5-bit (chunk index mod 32), so a completion's
//! chunk follows from its tag and the issue pointer without a lookup table.
//! See docs/dma.md.

pub mod queue_regs;
pub mod regs;

use crate::byte_buffer::ByteBuffer;
use crate::konst;
use crate::regmap::dma;
use regs::*;
use rust_hdl::prelude::*;
use smart_default::SmartDefault;

#[derive(Copy, Clone, PartialEq, Debug, LogicState)]
pub enum DmaState {
    Idle,
    DescH0,
    DescH1,
    DescWait,
    Validate,
    ReadLoop,
    RdH0,
    RdH1,
    WrSetup,
    WrH0,
    WrH1,
    WrPay,
    CplSetup,
    SwH0,
    SwH1,
    SwD0,
    SwD1,
    SwDone,
    FlushOd,
    FlushOc,
    Finish,
    FlushDone,
    NtxSetup,
    NtxData,
    RxData,
    RxDrop,
}

#[derive(LogicBlock, SmartDefault)]
pub struct DmaEngine {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    // BAR0 registers from offset 0x1000 (DW index from the endpoint)
    pub reg_addr: Signal<In, Bits<14>>,
    pub reg_wr_en: Signal<In, Bit>,
    pub reg_wr_data: Signal<In, Bits<32>>,
    pub reg_wr_mask: Signal<In, Bits<32>>,
    pub reg_rd_data: Signal<Out, Bits<32>>,
    // completions from the host
    pub cpl_data: Signal<In, Bits<64>>,
    pub cpl_keep: Signal<In, Bits<2>>,
    pub cpl_sop: Signal<In, Bit>,
    pub cpl_eop: Signal<In, Bit>,
    pub cpl_valid: Signal<In, Bit>,
    pub cpl_ready: Signal<Out, Bit>,
    // requests to the host
    pub tx_data: Signal<Out, Bits<64>>,
    pub tx_keep: Signal<Out, Bits<2>>,
    pub tx_sop: Signal<Out, Bit>,
    pub tx_eop: Signal<Out, Bit>,
    pub tx_valid: Signal<Out, Bit>,
    pub tx_ready: Signal<In, Bit>,
    // from configuration space
    pub requester_id: Signal<In, Bits<16>>,
    pub bus_master: Signal<In, Bit>,
    pub max_payload: Signal<In, Bits<3>>,
    pub max_read_req: Signal<In, Bits<3>>,
    /// One-cycle pulse: raise the MSI.
    pub irq: Signal<Out, Bit>,
    // frames to the network (TX queues); sideband valid with every beat of
    // the frame (the first is the one that counts)
    pub ntx_data: Signal<Out, Bits<64>>,
    /// Valid bytes in the beat, 1..8 (only the last beat may be partial).
    pub ntx_bytes: Signal<Out, Bits<4>>,
    pub ntx_last: Signal<Out, Bit>,
    pub ntx_valid: Signal<Out, Bit>,
    pub ntx_ready: Signal<In, Bit>,
    pub ntx_tenant: Signal<Out, Bits<4>>,
    pub ntx_len: Signal<Out, Bits<14>>,
    // frames from the network (RX queues); sideband read on the first beat
    pub nrx_data: Signal<In, Bits<64>>,
    pub nrx_bytes: Signal<In, Bits<4>>,
    pub nrx_last: Signal<In, Bit>,
    pub nrx_valid: Signal<In, Bit>,
    pub nrx_ready: Signal<Out, Bit>,
    pub nrx_queue: Signal<In, Bits<2>>,
    pub nrx_tenant: Signal<In, Bits<4>>,
    /// Frame length in bytes (the decapsulation block is store-and-forward).
    pub nrx_len: Signal<In, Bits<14>>,

    regs: DmaRegs,
    xbuf: ByteBuffer,

    state: DFF<DmaState>,
    rr: DFF<Bits<2>>,
    cur_q: DFF<Bits<2>>,
    d0: DFF<Bits<32>>,
    d1: DFF<Bits<32>>,
    d2: DFF<Bits<32>>,
    d3: DFF<Bits<32>>,
    d4: DFF<Bits<32>>,
    d5: DFF<Bits<32>>,
    d6: DFF<Bits<32>>,
    d7: DFF<Bits<32>>,
    desc_mode: DFF<Bit>,
    busy: DFF<Bits<32>>,
    outstanding: DFF<Bits<6>>,
    issue_ptr: DFF<Bits<10>>,
    chunks_done: DFF<Bits<10>>,
    l2ch: DFF<Bits<4>>,
    l2w: DFF<Bits<4>>,
    rd_error: DFF<Bit>,
    status: DFF<Bits<16>>,
    w_idx: DFF<Bits<10>>,
    beat: DFF<Bits<7>>,
    cur_pos: DFF<Bits<17>>,
    t_addr: DFF<Bits<64>>,
    t_len_dw: DFF<Bits<10>>,
    t_be: DFF<Bits<8>>,
    t_4dw: DFF<Bit>,
    t_nbeats: DFF<Bits<7>>,
    t_lastkeep: DFF<Bits<2>>,
    // open records
    od_valid: DFF<Bit>,
    od_iova: DFF<Bits<64>>,
    od_len: DFF<Bits<32>>,
    od_src: DFF<Bits<8>>,
    oc_valid: DFF<Bit>,
    oc_iova: DFF<Bits<64>>,
    oc_len: DFF<Bits<32>>,
    oc_src: DFF<Bits<8>>,
    stall_count: DFF<Bits<32>>,
    cpl_since_irq: DFF<Bits<16>>,
    // small write
    sw_addr: DFF<Bits<64>>,
    sw_dw0: DFF<Bits<32>>,
    sw_dw1: DFF<Bits<32>>,
    sw_dw2: DFF<Bits<32>>,
    sw_dw3: DFF<Bits<32>>,
    sw_one: DFF<Bit>,
    sw_kind: DFF<Bits<2>>,
    sw_ret: DFF<DmaState>,
    // completion sink
    s_beat: DFF<Bits<10>>,
    s_len: DFF<Bits<10>>,
    s_status: DFF<Bits<3>>,
    s_bc: DFF<Bits<12>>,
    s_tag: DFF<Bits<5>>,
    s_relb: DFF<Bits<18>>,
    s_didx: DFF<Bits<6>>,
    s_active: DFF<Bit>,
    s_last: DFF<Bit>,
    s_ok: DFF<Bit>,
    s_relb0: DFF<Bits<18>>,
    s_didx0: DFF<Bits<6>>,
    p_valid: DFF<Bit>,
    p_data: DFF<Bits<64>>,
    p_keep: DFF<Bits<2>>,
    p_b1: DFF<Bit>,
    p_eop: DFF<Bit>,
    // network queues
    cur_mode: DFF<Bits<2>>,
    prefer_rx: DFF<Bit>,
    n_rem: DFF<Bits<17>>,
    rx_tenant: DFF<Bits<4>>,
    rx_len: DFF<Bits<14>>,
    rx_pos: DFF<Bits<17>>,
    rx_cnt: DFF<Bits<15>>,
    rx_bad: DFF<Bit>,
    drop_to_cpl: DFF<Bit>,

    // ---- combinational ----
    src: Signal<Local, Bits<64>>,
    dst: Signal<Local, Bits<64>>,
    xlen: Signal<Local, Bits<18>>,
    ch_mask: Signal<Local, Bits<13>>,
    src_lo: Signal<Local, Bits<18>>,
    end_total: Signal<Local, Bits<18>>,
    nchunks: Signal<Local, Bits<10>>,
    i_tag: Signal<Local, Bits<5>>,
    i_start: Signal<Local, Bits<18>>,
    i_end: Signal<Local, Bits<18>>,
    i_cend: Signal<Local, Bits<18>>,
    i_addr: Signal<Local, Bits<64>>,
    i_len_dw: Signal<Local, Bits<11>>,
    i_fbe: Signal<Local, Bits<4>>,
    i_lbe: Signal<Local, Bits<4>>,
    desc_addr: Signal<Local, Bits<64>>,
    w_mask: Signal<Local, Bits<9>>,
    dst_lo: Signal<Local, Bits<18>>,
    dend: Signal<Local, Bits<18>>,
    nw: Signal<Local, Bits<10>>,
    w_start: Signal<Local, Bits<18>>,
    w_end: Signal<Local, Bits<18>>,
    w_cend: Signal<Local, Bits<18>>,
    w_exact: Signal<Local, Bits<64>>,
    w_bytes: Signal<Local, Bits<32>>,
    w_len_dw: Signal<Local, Bits<10>>,
    w_fbe: Signal<Local, Bits<4>>,
    w_lbe: Signal<Local, Bits<4>>,
    w_4dw: Signal<Local, Bit>,
    w_total_dw: Signal<Local, Bits<11>>,
    entries: Signal<Local, Bits<32>>,
    used: Signal<Local, Bits<32>>,
    has_space: Signal<Local, Bit>,
    rec_on: Signal<Local, Bit>,
    data_src: Signal<Local, Bits<8>>,
    cpl_src: Signal<Local, Bits<8>>,
    cpl_iova: Signal<Local, Bits<64>>,
    slot_addr: Signal<Local, Bits<64>>,
    advance: Signal<Local, Bit>,
    hdr_dw0: Signal<Local, Bits<32>>,
    hdr_dw1: Signal<Local, Bits<32>>,
    sw_4dw: Signal<Local, Bit>,
    sw_hdr0: Signal<Local, Bits<32>>,
    // sink
    k_tag: Signal<Local, Bits<5>>,
    k_chunk: Signal<Local, Bits<10>>,
    k_end: Signal<Local, Bits<18>>,
    k_bc: Signal<Local, Bits<18>>,
    k_a0: Signal<Local, Bits<18>>,
    k_relb: Signal<Local, Bits<18>>,
    k_last: Signal<Local, Bit>,
    k_active: Signal<Local, Bit>,
    k_didx: Signal<Local, Bits<6>>,
    k_is_b1: Signal<Local, Bit>,
    k_take: Signal<Local, Bit>,
    k_end_pkt: Signal<Local, Bit>,
    lane0_ok: Signal<Local, Bit>,
    lane1_ok: Signal<Local, Bit>,
    relb_cur: Signal<Local, Bits<18>>,
    didx_cur: Signal<Local, Bits<6>>,
    bmask: Signal<Local, Bits<8>>,
    lanemask: Signal<Local, Bits<8>>,
    lim: Signal<Local, Bits<18>>,
    set_bit: Signal<Local, Bits<32>>,
    clr_bit: Signal<Local, Bits<32>>,
    do_set: Signal<Local, Bit>,
    stalling: Signal<Local, Bit>,
    do_clr: Signal<Local, Bit>,
    rx_mask: Signal<Local, Bits<8>>,
    rx_sum: Signal<Local, Bits<15>>,
    rx_beat_bad: Signal<Local, Bit>,
    buf_start: Signal<Local, Bits<17>>,
    ntx_shift: Signal<Local, Bits<6>>,
    ntx_lmask: Signal<Local, Bits<64>>,
    cpl_tenant: Signal<Local, Bits<4>>,
    #[default(konst(dma::MAX_FRAME as u64))]
    c_max_frame: Constant<Bits<32>>,
    #[default(konst(dma::MAX_FRAME as u64))]
    c_max_frame14: Constant<Bits<14>>,
    #[default(konst(dma::CPL_STATUS_RX_TOO_LONG as u64))]
    c_st_rx_too_long: Constant<Bits<16>>,
    #[default(konst(dma::QMODE_TX as u64))]
    c_mode_tx: Constant<Bits<2>>,
    #[default(konst(dma::QMODE_RX as u64))]
    c_mode_rx: Constant<Bits<2>>,
    #[default(konst(dma::SRC_KIND_COMPLETION as u64))]
    c_kind_cpl: Constant<Bits<8>>,
    #[default(konst(1))]
    c_one12: Constant<Bits<13>>,
    #[default(konst(1))]
    c_one32: Constant<Bits<32>>,
    #[default(konst(dma::MAX_TRANSFER as u64))]
    c_max_len: Constant<Bits<32>>,
    #[default(konst(dma::CPL_STATUS_BAD_LENGTH as u64))]
    c_st_bad_len: Constant<Bits<16>>,
    #[default(konst(dma::CPL_STATUS_READ_ERROR as u64))]
    c_st_read_err: Constant<Bits<16>>,
    #[default(konst(dma::CPL_STATUS_DESC_ERROR as u64))]
    c_st_desc_err: Constant<Bits<16>>,
    /// Events for the counters this cycle (bit `EV_*`).
    ev: Signal<Local, Bits<NUM_EVENTS>>,
    #[default(konst(1 << EV_DESC_DONE))]
    k_ev_desc_done: Constant<Bits<NUM_EVENTS>>,
    #[default(konst(1 << EV_DESC_ERROR))]
    k_ev_desc_error: Constant<Bits<NUM_EVENTS>>,
    #[default(konst(1 << EV_RECORDS))]
    k_ev_records: Constant<Bits<NUM_EVENTS>>,
    #[default(konst(1 << EV_COALESCED))]
    k_ev_coalesced: Constant<Bits<NUM_EVENTS>>,
    #[default(konst(1 << EV_STALL))]
    k_ev_stall: Constant<Bits<NUM_EVENTS>>,
    #[default(konst(1 << EV_UNEXPECTED_CPL))]
    k_ev_unexpected_cpl: Constant<Bits<NUM_EVENTS>>,
    #[default(konst(1 << EV_TX_FRAMES))]
    k_ev_tx_frames: Constant<Bits<NUM_EVENTS>>,
    #[default(konst(1 << EV_RX_FRAMES))]
    k_ev_rx_frames: Constant<Bits<NUM_EVENTS>>,
    #[default(konst(1 << EV_RX_NO_BUFFER))]
    k_ev_rx_no_buffer: Constant<Bits<NUM_EVENTS>>,
    #[default(konst(1 << EV_RX_TOO_LONG))]
    k_ev_rx_too_long: Constant<Bits<NUM_EVENTS>>,
    #[default(konst(1 << EV_RX_BAD_FRAME))]
    k_ev_rx_bad_frame: Constant<Bits<NUM_EVENTS>>,

}

impl Logic for DmaEngine {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clock, state, rr, cur_q, d0, d1, d2, d3, d4, d5, d6, d7, desc_mode, busy, outstanding, issue_ptr, chunks_done, l2ch, l2w, rd_error, status, w_idx, beat, cur_pos, t_addr, t_len_dw, t_be, t_4dw, t_nbeats, t_lastkeep, od_valid, od_iova, od_len, od_src, oc_valid, oc_iova, oc_len, oc_src, stall_count, cpl_since_irq, sw_addr, sw_dw0, sw_dw1, sw_dw2, sw_dw3, sw_one, sw_kind, sw_ret, s_beat, s_len, s_status, s_bc, s_tag, s_relb, s_didx, s_active, s_last, s_ok, s_relb0, s_didx0, p_valid, p_data, p_keep, p_b1, p_eop, cur_mode, prefer_rx, n_rem, rx_tenant, rx_len, rx_pos, rx_cnt, rx_bad, drop_to_cpl
        );
        clock!(self, clock, regs, xbuf);
        self.irq.next = false;
        self.ev.next = 0.into();

        // ---- registers ---------------------------------------------------------
        self.regs.reset.next = self.reset.val();
        self.regs.reg_addr.next = self.reg_addr.val();
        self.regs.reg_wr_en.next = self.reg_wr_en.val();
        self.regs.reg_wr_data.next = self.reg_wr_data.val();
        self.regs.reg_wr_mask.next = self.reg_wr_mask.val();
        self.reg_rd_data.next = self.regs.reg_rd_data.val();
        self.regs.engine_busy.next = self.state.q.val() != DmaState::Idle;
        self.regs.cur_q.next = self.cur_q.q.val();
        self.regs.rr_q.next = self.rr.q.val();
        self.regs.rx_q.next = self.nrx_queue.val();
        self.regs.head_inc.next = false;
        self.regs.record_written.next = false;
        self.regs.overflow_set.next = false;
        self.regs.flush_done.next = false;

        // ---- descriptor fields and read geometry -----------------------------
        self.src.next = (bit_cast::<64, 32>(self.d1.q.val()) << 32) | bit_cast::<64, 32>(self.d0.q.val());
        self.dst.next = (bit_cast::<64, 32>(self.d3.q.val()) << 32) | bit_cast::<64, 32>(self.d2.q.val());
        self.xlen.next = self.d4.q.val().get_bits::<18>(0);
        self.ch_mask.next = (self.c_one12.val() << self.l2ch.q.val()) - 1;
        self.src_lo.next = bit_cast::<18, 13>(self.src.val().get_bits::<13>(0) & self.ch_mask.val());
        self.end_total.next = self.src_lo.val() + self.xlen.val();
        self.nchunks.next = bit_cast::<10, 18>((self.end_total.val() - 1) >> self.l2ch.q.val()) + 1;
        self.i_tag.next = self.issue_ptr.q.val().get_bits::<5>(0);
        self.i_start.next = bit_cast::<18, 10>(self.issue_ptr.q.val()) << self.l2ch.q.val();
        if self.i_start.val() < self.src_lo.val() {
            self.i_start.next = self.src_lo.val();
        }
        self.i_cend.next = (bit_cast::<18, 10>(self.issue_ptr.q.val()) + 1) << self.l2ch.q.val();
        self.i_end.next = self.i_cend.val();
        if self.end_total.val() < self.i_cend.val() {
            self.i_end.next = self.end_total.val();
        }
        self.i_addr.next = (self.src.val() & !bit_cast::<64, 13>(self.ch_mask.val())) + bit_cast::<64, 18>(self.i_start.val());
        self.i_len_dw.next = bit_cast::<11, 18>((self.i_end.val() + 3) >> 2) - bit_cast::<11, 18>(self.i_start.val() >> 2);
        self.i_fbe.next = (bit_cast::<4, 4>(15.into()) << self.i_start.val().get_bits::<2>(0)) & 15;
        self.i_lbe.next = 15.into();
        if self.i_end.val().get_bits::<2>(0) == 1 {
            self.i_lbe.next = 1.into();
        } else if self.i_end.val().get_bits::<2>(0) == 2 {
            self.i_lbe.next = 3.into();
        } else if self.i_end.val().get_bits::<2>(0) == 3 {
            self.i_lbe.next = 7.into();
        }
        if self.i_len_dw.val() == 1 {
            self.i_fbe.next = self.i_fbe.val() & self.i_lbe.val();
            self.i_lbe.next = 0.into();
        }
        self.desc_addr.next = self.regs.cur_ring_base.val() + (bit_cast::<64, 12>(self.regs.cur_head.val()) << 5);

        // ---- write geometry ----------------------------------------------------
        self.w_mask.next = (bit_cast::<9, 1>(1.into()) << self.l2w.q.val()) - 1;
        self.dst_lo.next = bit_cast::<18, 9>(self.dst.val().get_bits::<9>(0) & self.w_mask.val());
        self.dend.next = self.dst_lo.val() + self.xlen.val();
        self.nw.next = bit_cast::<10, 18>((self.dend.val() - 1) >> self.l2w.q.val()) + 1;
        self.w_start.next = bit_cast::<18, 10>(self.w_idx.q.val()) << self.l2w.q.val();
        if self.w_start.val() < self.dst_lo.val() {
            self.w_start.next = self.dst_lo.val();
        }
        self.w_cend.next = (bit_cast::<18, 10>(self.w_idx.q.val()) + 1) << self.l2w.q.val();
        self.w_end.next = self.w_cend.val();
        if self.dend.val() < self.w_cend.val() {
            self.w_end.next = self.dend.val();
        }
        self.w_exact.next = (self.dst.val() & !bit_cast::<64, 9>(self.w_mask.val())) + bit_cast::<64, 18>(self.w_start.val());
        self.w_bytes.next = bit_cast::<32, 18>(self.w_end.val() - self.w_start.val());
        self.w_len_dw.next = bit_cast::<10, 18>((self.w_end.val() + 3) >> 2) - bit_cast::<10, 18>(self.w_start.val() >> 2);
        self.w_fbe.next = (bit_cast::<4, 4>(15.into()) << self.w_start.val().get_bits::<2>(0)) & 15;
        self.w_lbe.next = 15.into();
        if self.w_end.val().get_bits::<2>(0) == 1 {
            self.w_lbe.next = 1.into();
        } else if self.w_end.val().get_bits::<2>(0) == 2 {
            self.w_lbe.next = 3.into();
        } else if self.w_end.val().get_bits::<2>(0) == 3 {
            self.w_lbe.next = 7.into();
        }
        if self.w_len_dw.val() == 1 {
            self.w_fbe.next = self.w_fbe.val() & self.w_lbe.val();
            self.w_lbe.next = 0.into();
        }
        self.w_4dw.next = self.w_exact.val().get_bits::<32>(32).any();
        self.w_total_dw.next = bit_cast::<11, 10>(self.w_len_dw.val()) + 3;
        if self.w_4dw.val() {
            self.w_total_dw.next = bit_cast::<11, 10>(self.w_len_dw.val()) + 4;
        }

        // ---- write records -----------------------------------------------------
        self.entries.next = self.c_one32.val() << self.regs.wrec_log2.val();
        self.used.next = self.regs.wrec_prod.val() - self.regs.wrec_cons.val()
            + bit_cast::<32, 1>(self.od_valid.q.val().into())
            + bit_cast::<32, 1>(self.oc_valid.q.val().into());
        self.has_space.next = self.used.val() < self.entries.val();
        self.rec_on.next = (self.regs.wrec_log2.val() != 0) & !self.regs.overflow.val();
        self.data_src.next = bit_cast::<8, 2>(self.cur_q.q.val());
        self.cpl_src.next = bit_cast::<8, 2>(self.cur_q.q.val()) | self.c_kind_cpl.val();
        self.cpl_iova.next = self.regs.cur_cpl_base.val() + (bit_cast::<64, 12>(self.regs.cur_head.val()) << 4);
        self.slot_addr.next = self.regs.wrec_base.val()
            + (bit_cast::<64, 32>(self.regs.wrec_prod.val() & (self.entries.val() - 1)) << 4);

        // ---- TX defaults --------------------------------------------------------
        self.tx_valid.next = false;
        self.tx_sop.next = false;
        self.tx_eop.next = false;
        self.tx_keep.next = 3.into();
        self.tx_data.next = 0.into();
        // Every state that sends drives tx_valid high, so a beat moves when ready is.
        self.advance.next = self.tx_ready.val();
        self.xbuf.rd_pos.next = self.cur_pos.q.val();
        self.sw_4dw.next = self.sw_addr.q.val().get_bits::<32>(32).any();
        self.sw_hdr0.next = 0x4000_0004.into();
        if self.sw_4dw.val() & self.sw_one.q.val() {
            self.sw_hdr0.next = 0x6000_0001.into();
        } else if self.sw_4dw.val() {
            self.sw_hdr0.next = 0x6000_0004.into();
        } else if self.sw_one.q.val() {
            self.sw_hdr0.next = 0x4000_0001.into();
        }
        self.hdr_dw1.next = (bit_cast::<32, 16>(self.requester_id.val()) << 16) | 0x0000_00FF_u64;
        self.hdr_dw0.next = 0.into();

        // ---- completion sink (runs beside the state machine) ---------------------
        // Two stages, for timing: the arrival stage decodes the header beats
        // and works out where a completion's data goes (chunk from tag, its
        // end, the first byte's offset) into registers; the write stage, one
        // cycle later, puts the delayed beat into the buffer or the
        // descriptor registers and retires the tag.
        self.cpl_ready.next = true;
        self.k_take.next = self.cpl_valid.val();
        self.k_is_b1.next = self.s_beat.q.val() == 1;
        self.k_tag.next = self.cpl_data.val().get_bits::<5>(8);
        self.k_chunk.next = (self.issue_ptr.q.val() - 1)
            - ((self.issue_ptr.q.val() - 1 - bit_cast::<10, 5>(self.k_tag.val())) & 31);
        self.k_end.next = (bit_cast::<18, 10>(self.k_chunk.val()) + 1) << self.l2ch.q.val();
        if self.end_total.val() < self.k_end.val() {
            self.k_end.next = self.end_total.val();
        }
        self.k_bc.next = bit_cast::<18, 12>(self.s_bc.q.val());
        if self.s_bc.q.val() == 0 {
            self.k_bc.next = 4096.into();
        }
        self.k_a0.next = (self.k_end.val() - self.k_bc.val()) & 0x3_FFFC_u64;
        self.k_relb.next = self.k_a0.val() + 4 - self.src_lo.val();
        self.k_last.next = (self.k_a0.val() + (bit_cast::<18, 10>(self.s_len.q.val()) << 2)) >= self.k_end.val();
        self.k_didx.next = (32 - bit_cast::<6, 12>(self.s_bc.q.val())) >> 2;
        if self.desc_mode.q.val() {
            self.k_last.next = (bit_cast::<13, 10>(self.s_len.q.val()) << 2) >= bit_cast::<13, 12>(self.s_bc.q.val());
        }
        if self.s_status.q.val() != 0 {
            self.k_last.next = true;
        }
        self.k_active.next = self.busy.q.val().get_bit(self.k_tag.val().index()) & (!self.desc_mode.q.val() | (self.k_tag.val() == 0));
        // arrival stage: header registers, per-completion results at beat 1
        if self.k_take.val() {
            if self.cpl_sop.val() {
                self.s_beat.d.next = 1.into();
                self.s_len.d.next = self.cpl_data.val().get_bits::<10>(0);
                self.s_status.d.next = self.cpl_data.val().get_bits::<3>(45);
                self.s_bc.d.next = self.cpl_data.val().get_bits::<12>(32);
            } else if self.s_beat.q.val() != 0 {
                if self.s_beat.q.val() != 1023 {
                    self.s_beat.d.next = self.s_beat.q.val() + 1;
                }
                if self.k_is_b1.val() {
                    self.s_tag.d.next = self.k_tag.val();
                    self.s_active.d.next = self.k_active.val();
                    self.s_last.d.next = self.k_last.val();
                    self.s_ok.d.next = self.s_status.q.val() == 0;
                    self.s_relb0.d.next = self.k_relb.val();
                    self.s_didx0.d.next = self.k_didx.val();
                }
            }
            if self.cpl_eop.val() {
                self.s_beat.d.next = 0.into();
            }
        }
        self.p_valid.d.next = self.k_take.val() & !self.cpl_sop.val() & (self.s_beat.q.val() >= 1);
        self.p_data.d.next = self.cpl_data.val();
        self.p_keep.d.next = self.cpl_keep.val();
        self.p_b1.d.next = self.k_is_b1.val();
        self.p_eop.d.next = self.cpl_eop.val();
        // write stage
        self.relb_cur.next = self.s_relb.q.val();
        self.didx_cur.next = self.s_didx.q.val();
        if self.p_b1.q.val() {
            self.relb_cur.next = self.s_relb0.q.val();
            self.didx_cur.next = self.s_didx0.q.val();
        }
        self.lane0_ok.next = self.p_keep.q.val().get_bit(0) & !self.p_b1.q.val();
        self.lane1_ok.next = self.p_keep.q.val().get_bit(1);
        self.k_end_pkt.next = self.p_valid.q.val() & self.p_eop.q.val();
        if self.p_valid.q.val() {
            self.s_relb.d.next = self.relb_cur.val() + 8;
            self.s_didx.d.next = self.didx_cur.val() + 2;
        }
        // byte mask: lanes present and inside [0, len) of the transfer (biased by 8)
        self.lanemask.next = 0.into();
        if self.lane0_ok.val() & self.lane1_ok.val() {
            self.lanemask.next = 0xFF.into();
        } else if self.lane0_ok.val() {
            self.lanemask.next = 0x0F.into();
        } else if self.lane1_ok.val() {
            self.lanemask.next = 0xF0.into();
        }
        self.lim.next = self.xlen.val() + 8;
        self.bmask.next = 0.into();
        if (self.relb_cur.val() >= 8) & (self.relb_cur.val() < self.lim.val()) {
            self.bmask.next = self.bmask.val() | 1;
        }
        if (self.relb_cur.val() + 1 >= 8) & (self.relb_cur.val() + 1 < self.lim.val()) {
            self.bmask.next = self.bmask.val() | 2;
        }
        if (self.relb_cur.val() + 2 >= 8) & (self.relb_cur.val() + 2 < self.lim.val()) {
            self.bmask.next = self.bmask.val() | 4;
        }
        if (self.relb_cur.val() + 3 >= 8) & (self.relb_cur.val() + 3 < self.lim.val()) {
            self.bmask.next = self.bmask.val() | 8;
        }
        if (self.relb_cur.val() + 4 >= 8) & (self.relb_cur.val() + 4 < self.lim.val()) {
            self.bmask.next = self.bmask.val() | 16;
        }
        if (self.relb_cur.val() + 5 >= 8) & (self.relb_cur.val() + 5 < self.lim.val()) {
            self.bmask.next = self.bmask.val() | 32;
        }
        if (self.relb_cur.val() + 6 >= 8) & (self.relb_cur.val() + 6 < self.lim.val()) {
            self.bmask.next = self.bmask.val() | 64;
        }
        if (self.relb_cur.val() + 7 >= 8) & (self.relb_cur.val() + 7 < self.lim.val()) {
            self.bmask.next = self.bmask.val() | 128;
        }
        self.xbuf.wr_en.next = self.p_valid.q.val() & self.s_active.q.val() & !self.desc_mode.q.val() & self.s_ok.q.val();
        self.xbuf.wr_pos.next = bit_cast::<17, 18>(self.relb_cur.val() + bit_cast::<18, 3>(self.dst.val().get_bits::<3>(0)));
        self.xbuf.wr_data.next = self.p_data.q.val();
        self.xbuf.wr_mask.next = self.bmask.val() & self.lanemask.val();
        // descriptor DWs (lane 0 is index didx - 1, lane 1 is didx)
        if self.p_valid.q.val() & self.s_active.q.val() & self.desc_mode.q.val() & self.s_ok.q.val() {
            if self.lane0_ok.val() {
                if self.didx_cur.val() == 1 {
                    self.d0.d.next = self.p_data.q.val().get_bits::<32>(0);
                } else if self.didx_cur.val() == 2 {
                    self.d1.d.next = self.p_data.q.val().get_bits::<32>(0);
                } else if self.didx_cur.val() == 3 {
                    self.d2.d.next = self.p_data.q.val().get_bits::<32>(0);
                } else if self.didx_cur.val() == 4 {
                    self.d3.d.next = self.p_data.q.val().get_bits::<32>(0);
                } else if self.didx_cur.val() == 5 {
                    self.d4.d.next = self.p_data.q.val().get_bits::<32>(0);
                } else if self.didx_cur.val() == 6 {
                    self.d5.d.next = self.p_data.q.val().get_bits::<32>(0);
                } else if self.didx_cur.val() == 7 {
                    self.d6.d.next = self.p_data.q.val().get_bits::<32>(0);
                } else if self.didx_cur.val() == 8 {
                    self.d7.d.next = self.p_data.q.val().get_bits::<32>(0);
                }
            }
            if self.lane1_ok.val() {
                if self.didx_cur.val() == 0 {
                    self.d0.d.next = self.p_data.q.val().get_bits::<32>(32);
                } else if self.didx_cur.val() == 1 {
                    self.d1.d.next = self.p_data.q.val().get_bits::<32>(32);
                } else if self.didx_cur.val() == 2 {
                    self.d2.d.next = self.p_data.q.val().get_bits::<32>(32);
                } else if self.didx_cur.val() == 3 {
                    self.d3.d.next = self.p_data.q.val().get_bits::<32>(32);
                } else if self.didx_cur.val() == 4 {
                    self.d4.d.next = self.p_data.q.val().get_bits::<32>(32);
                } else if self.didx_cur.val() == 5 {
                    self.d5.d.next = self.p_data.q.val().get_bits::<32>(32);
                } else if self.didx_cur.val() == 6 {
                    self.d6.d.next = self.p_data.q.val().get_bits::<32>(32);
                } else if self.didx_cur.val() == 7 {
                    self.d7.d.next = self.p_data.q.val().get_bits::<32>(32);
                }
            }
        }
        self.do_clr.next = self.k_end_pkt.val() & self.s_active.q.val() & self.s_last.q.val();
        self.clr_bit.next = self.c_one32.val() << self.s_tag.q.val();
        if self.k_end_pkt.val() & !self.s_active.q.val() {
            self.ev.next = self.ev.val() | self.k_ev_unexpected_cpl.val();
        }
        if self.do_clr.val() & !self.s_ok.q.val() {
            self.rd_error.d.next = true;
        }
        if self.do_clr.val() & !self.desc_mode.q.val() {
            self.chunks_done.d.next = self.chunks_done.q.val() + 1;
        }

        // ---- network ports ---------------------------------------------------------
        // Transfer byte k sits at buffer position 8 + k + dst[2:0] (the layout
        // the completion sink uses), for frames too.
        self.buf_start.next = bit_cast::<17, 3>(self.dst.val().get_bits::<3>(0)) + 8;
        self.ntx_valid.next = false;
        self.ntx_last.next = false;
        self.ntx_bytes.next = 0.into();
        self.ntx_data.next = 0.into();
        self.ntx_tenant.next = 0.into();
        self.ntx_len.next = 0.into();
        // Bytes past the frame's end in the last beat read as 0.
        self.ntx_shift.next = bit_cast::<6, 3>(self.n_rem.q.val().get_bits::<3>(0)) << 3;
        self.ntx_lmask.next = 0xFFFF_FFFF_FFFF_FFFF_u64.into();
        if self.n_rem.q.val() < 8 {
            self.ntx_lmask.next = (bit_cast::<64, 1>(1.into()) << self.ntx_shift.val()) - 1;
        }
        self.nrx_ready.next = false;
        self.rx_mask.next = (bit_cast::<8, 1>(1.into()) << self.nrx_bytes.val()) - 1;
        if self.nrx_bytes.val() >= 8 {
            self.rx_mask.next = 0xFF.into();
        }
        self.rx_sum.next = self.rx_cnt.q.val() + bit_cast::<15, 4>(self.nrx_bytes.val());
        // Only the last beat may be partial, and no beat is empty or over 8.
        self.rx_beat_bad.next = (self.nrx_bytes.val() == 0) | (self.nrx_bytes.val() > 8)
            | (!self.nrx_last.val() & (self.nrx_bytes.val() != 8));
        self.cpl_tenant.next = 0.into();
        if self.cur_mode.q.val() == self.c_mode_tx.val() {
            self.cpl_tenant.next = self.d5.q.val().get_bits::<4>(0);
        } else if self.cur_mode.q.val() == self.c_mode_rx.val() {
            self.cpl_tenant.next = self.rx_tenant.q.val();
        }

        // ---- main state machine ------------------------------------------------
        self.stalling.next = false;
        self.do_set.next = false;
        self.set_bit.next = self.c_one32.val() << self.i_tag.val();
        match self.state.q.val() {
            DmaState::Idle => {
                self.desc_mode.d.next = false;
                if self.regs.flush_pending.val() & self.od_valid.q.val() {
                    self.sw_ret.d.next = DmaState::Idle;
                    self.state.d.next = DmaState::FlushOd;
                } else if self.regs.flush_pending.val() & self.oc_valid.q.val() {
                    self.sw_ret.d.next = DmaState::Idle;
                    self.state.d.next = DmaState::FlushOc;
                } else if self.regs.flush_pending.val() {
                    self.sw_addr.d.next = self.regs.wb_addr.val();
                    self.sw_dw0.d.next = self.regs.wrec_prod.val();
                    self.sw_one.d.next = true;
                    self.sw_kind.d.next = 3.into();
                    self.sw_ret.d.next = DmaState::FlushDone;
                    if self.bus_master.val() {
                        self.state.d.next = DmaState::SwH0;
                    }
                } else if self.nrx_valid.val() & (self.prefer_rx.q.val() | !(self.bus_master.val() & self.regs.rr_ready.val())) {
                    // A frame waits (its first beat's sideband is on the
                    // port). RX and the other queues take turns, and a frame
                    // nobody can take is dropped at once: the network side is
                    // never held up by a host that posts no buffers.
                    self.prefer_rx.d.next = false;
                    self.cur_q.d.next = self.nrx_queue.val();
                    self.cur_mode.d.next = self.c_mode_rx.val();
                    self.rx_tenant.d.next = self.nrx_tenant.val();
                    self.rx_len.d.next = self.nrx_len.val();
                    self.drop_to_cpl.d.next = false;
                    if (self.nrx_len.val() == 0) | (self.nrx_len.val() > self.c_max_frame14.val()) {
                        self.ev.next = self.ev.val() | self.k_ev_rx_bad_frame.val();
                        self.state.d.next = DmaState::RxDrop;
                    } else if self.bus_master.val() & self.regs.rx_q_ready.val() {
                        self.state.d.next = DmaState::DescH0;
                    } else {
                        self.ev.next = self.ev.val() | self.k_ev_rx_no_buffer.val();
                        self.state.d.next = DmaState::RxDrop;
                    }
                } else if self.bus_master.val() & self.regs.rr_ready.val() {
                    self.prefer_rx.d.next = true;
                    self.cur_q.d.next = self.rr.q.val();
                    self.cur_mode.d.next = self.regs.rr_mode.val();
                    self.rr.d.next = self.rr.q.val() + 1;
                    self.state.d.next = DmaState::DescH0;
                } else if self.regs.any_ready.val() {
                    self.rr.d.next = self.rr.q.val() + 1;
                } else if self.cpl_since_irq.q.val() != 0 {
                    self.irq.next = true;
                    self.cpl_since_irq.d.next = 0.into();
                }
            }
            DmaState::DescH0 => {
                self.tx_valid.next = true;
                self.tx_sop.next = true;
                self.hdr_dw0.next = 0x0000_0008.into();
                if self.desc_addr.val().get_bits::<32>(32).any() {
                    self.hdr_dw0.next = 0x2000_0008.into();
                }
                self.tx_data.next = (bit_cast::<64, 32>(self.hdr_dw1.val() | 0xF0_u64) << 32) | bit_cast::<64, 32>(self.hdr_dw0.val());
                if self.advance.val() {
                    self.desc_mode.d.next = true;
                    self.do_set.next = true;
                    self.set_bit.next = 1.into();
                    self.state.d.next = DmaState::DescH1;
                }
            }
            DmaState::DescH1 => {
                self.tx_valid.next = true;
                self.tx_eop.next = true;
                if self.desc_addr.val().get_bits::<32>(32).any() {
                    self.tx_data.next = (bit_cast::<64, 32>(self.desc_addr.val().get_bits::<32>(0)) << 32)
                        | bit_cast::<64, 32>(self.desc_addr.val().get_bits::<32>(32));
                } else {
                    self.tx_keep.next = 1.into();
                    self.tx_data.next = bit_cast::<64, 32>(self.desc_addr.val().get_bits::<32>(0));
                }
                if self.advance.val() {
                    self.rd_error.d.next = false;
                    self.state.d.next = DmaState::DescWait;
                }
            }
            DmaState::DescWait => {
                if !self.busy.q.val().get_bit(0) {
                    self.state.d.next = DmaState::Validate;
                }
            }
            DmaState::Validate => {
                self.desc_mode.d.next = false;
                self.issue_ptr.d.next = 0.into();
                self.chunks_done.d.next = 0.into();
                self.w_idx.d.next = 0.into();
                // Max_Read_Request_Size 128 << n (n <= 5); MPS 128 or 256.
                self.l2ch.d.next = bit_cast::<4, 3>(self.max_read_req.val()) + 7;
                if self.max_read_req.val() > 5 {
                    self.l2ch.d.next = 12.into();
                }
                self.l2w.d.next = 7.into();
                if self.max_payload.val() != 0 {
                    self.l2w.d.next = 8.into();
                }
                if self.cur_mode.q.val() == self.c_mode_rx.val() {
                    // A receive buffer: the frame's length replaces the
                    // buffer size (it is what gets written and reported).
                    self.d4.d.next = bit_cast::<32, 14>(self.rx_len.q.val());
                    self.rx_pos.d.next = self.buf_start.val();
                    self.rx_cnt.d.next = 0.into();
                    self.rx_bad.d.next = false;
                    self.drop_to_cpl.d.next = true;
                    if self.rd_error.q.val() {
                        self.status.d.next = self.c_st_desc_err.val();
                        self.d6.d.next = 0.into();
                        self.d7.d.next = 0.into();
                        self.ev.next = self.ev.val() | self.k_ev_rx_no_buffer.val();
                        self.state.d.next = DmaState::RxDrop;
                    } else if bit_cast::<32, 14>(self.rx_len.q.val()) > self.d4.q.val() {
                        self.status.d.next = self.c_st_rx_too_long.val();
                        self.ev.next = self.ev.val() | self.k_ev_rx_too_long.val();
                        self.state.d.next = DmaState::RxDrop;
                    } else {
                        self.status.d.next = 0.into();
                        self.state.d.next = DmaState::RxData;
                    }
                } else if self.rd_error.q.val() {
                    self.status.d.next = self.c_st_desc_err.val();
                    self.d6.d.next = 0.into();
                    self.d7.d.next = 0.into();
                    self.state.d.next = DmaState::CplSetup;
                } else if (self.d4.q.val() == 0)
                    | (self.d4.q.val() > self.c_max_len.val())
                    | ((self.cur_mode.q.val() == self.c_mode_tx.val()) & (self.d4.q.val() > self.c_max_frame.val()))
                {
                    self.status.d.next = self.c_st_bad_len.val();
                    self.state.d.next = DmaState::CplSetup;
                } else {
                    self.status.d.next = 0.into();
                    self.state.d.next = DmaState::ReadLoop;
                }
            }
            DmaState::ReadLoop => {
                if (self.issue_ptr.q.val() < self.nchunks.val())
                    & (self.outstanding.q.val() < 16)
                    & !self.busy.q.val().get_bit(self.i_tag.val().index())
                    & !self.rd_error.q.val()
                {
                    self.state.d.next = DmaState::RdH0;
                } else if (self.chunks_done.q.val() == self.issue_ptr.q.val())
                    & ((self.issue_ptr.q.val() == self.nchunks.val()) | self.rd_error.q.val())
                {
                    if self.rd_error.q.val() {
                        self.status.d.next = self.c_st_read_err.val();
                        self.state.d.next = DmaState::CplSetup;
                    } else if self.cur_mode.q.val() == self.c_mode_tx.val() {
                        self.state.d.next = DmaState::NtxSetup;
                    } else {
                        self.state.d.next = DmaState::WrSetup;
                    }
                }
            }
            DmaState::RdH0 => {
                self.tx_valid.next = true;
                self.tx_sop.next = true;
                self.hdr_dw0.next = bit_cast::<32, 10>(self.i_len_dw.val().get_bits::<10>(0));
                if self.i_addr.val().get_bits::<32>(32).any() {
                    self.hdr_dw0.next = 0x2000_0000_u64 | bit_cast::<32, 10>(self.i_len_dw.val().get_bits::<10>(0));
                }
                self.tx_data.next = (bit_cast::<64, 32>(
                    (bit_cast::<32, 16>(self.requester_id.val()) << 16)
                        | (bit_cast::<32, 5>(self.i_tag.val()) << 8)
                        | (bit_cast::<32, 4>(self.i_lbe.val()) << 4)
                        | bit_cast::<32, 4>(self.i_fbe.val()),
                ) << 32)
                    | bit_cast::<64, 32>(self.hdr_dw0.val());
                if self.advance.val() {
                    self.do_set.next = true;
                    self.state.d.next = DmaState::RdH1;
                }
            }
            DmaState::RdH1 => {
                self.tx_valid.next = true;
                self.tx_eop.next = true;
                if self.i_addr.val().get_bits::<32>(32).any() {
                    self.tx_data.next = (bit_cast::<64, 32>(self.i_addr.val().get_bits::<32>(0) & 0xFFFF_FFFC_u64) << 32)
                        | bit_cast::<64, 32>(self.i_addr.val().get_bits::<32>(32));
                } else {
                    self.tx_keep.next = 1.into();
                    self.tx_data.next = bit_cast::<64, 32>(self.i_addr.val().get_bits::<32>(0) & 0xFFFF_FFFC_u64);
                }
                if self.advance.val() {
                    self.issue_ptr.d.next = self.issue_ptr.q.val() + 1;
                    self.state.d.next = DmaState::ReadLoop;
                }
            }
            DmaState::WrSetup => {
                // Geometry of write TLP w_idx, then the record it needs.
                self.t_addr.d.next = self.w_exact.val() & 0xFFFF_FFFF_FFFF_FFFC_u64;
                self.t_len_dw.d.next = self.w_len_dw.val();
                self.t_be.d.next = (bit_cast::<8, 4>(self.w_lbe.val()) << 4) | bit_cast::<8, 4>(self.w_fbe.val());
                self.t_4dw.d.next = self.w_4dw.val();
                self.t_nbeats.d.next = bit_cast::<7, 11>((self.w_total_dw.val() + 1) >> 1);
                self.t_lastkeep.d.next = 3.into();
                if self.w_total_dw.val().get_bit(0) {
                    self.t_lastkeep.d.next = 1.into();
                }
                self.beat.d.next = 0.into();
                // position of beat 0's lane 0 (header beats read don't-care data)
                // (positions wrap modulo the buffer, so a negative value is fine)
                self.cur_pos.d.next =
                    bit_cast::<17, 18>((self.w_start.val() & 0x3_FFFC_u64) - (self.dst_lo.val() & 0x3_FFF8_u64) + 8 - 16);
                if !self.w_4dw.val() {
                    self.cur_pos.d.next =
                        bit_cast::<17, 18>((self.w_start.val() & 0x3_FFFC_u64) - (self.dst_lo.val() & 0x3_FFF8_u64) + 8 - 12);
                }
                if !self.rec_on.val() {
                    self.state.d.next = DmaState::WrH0;
                } else if self.od_valid.q.val()
                    & (self.od_iova.q.val() + bit_cast::<64, 32>(self.od_len.q.val()) == self.w_exact.val())
                    & (self.od_src.q.val() == self.data_src.val())
                {
                    self.od_len.d.next = self.od_len.q.val() + self.w_bytes.val();
                    self.ev.next = self.ev.val() | self.k_ev_coalesced.val();
                    self.state.d.next = DmaState::WrH0;
                } else if self.od_valid.q.val() {
                    self.sw_ret.d.next = DmaState::WrSetup;
                    self.state.d.next = DmaState::FlushOd;
                } else if self.has_space.val() {
                    self.od_valid.d.next = true;
                    self.od_iova.d.next = self.w_exact.val();
                    self.od_len.d.next = self.w_bytes.val();
                    self.od_src.d.next = self.data_src.val();
                    self.stall_count.d.next = 0.into();
                    self.state.d.next = DmaState::WrH0;
                } else {
                    // Ring full: the write waits for the host, up to the timeout.
                    self.stalling.next = true;
                }
            }
            DmaState::WrH0 => {
                self.tx_valid.next = true;
                self.tx_sop.next = true;
                self.hdr_dw0.next = 0x4000_0000_u64 | bit_cast::<32, 10>(self.t_len_dw.q.val());
                if self.t_4dw.q.val() {
                    self.hdr_dw0.next = 0x6000_0000_u64 | bit_cast::<32, 10>(self.t_len_dw.q.val());
                }
                self.tx_data.next = (bit_cast::<64, 32>(
                    (bit_cast::<32, 16>(self.requester_id.val()) << 16) | bit_cast::<32, 8>(self.t_be.q.val()),
                ) << 32)
                    | bit_cast::<64, 32>(self.hdr_dw0.val());
                if self.advance.val() {
                    self.xbuf.rd_pos.next = self.cur_pos.q.val() + 8;
                    self.cur_pos.d.next = self.cur_pos.q.val() + 8;
                    self.beat.d.next = 1.into();
                    self.state.d.next = DmaState::WrH1;
                }
            }
            DmaState::WrH1 => {
                self.tx_valid.next = true;
                if self.t_4dw.q.val() {
                    self.tx_data.next = (bit_cast::<64, 32>(self.t_addr.q.val().get_bits::<32>(0)) << 32)
                        | bit_cast::<64, 32>(self.t_addr.q.val().get_bits::<32>(32));
                } else {
                    self.tx_data.next = (self.xbuf.rd_data.val() & 0xFFFF_FFFF_0000_0000_u64)
                        | bit_cast::<64, 32>(self.t_addr.q.val().get_bits::<32>(0));
                }
                if self.t_nbeats.q.val() == 2 {
                    self.tx_eop.next = true;
                    self.tx_keep.next = self.t_lastkeep.q.val();
                }
                if self.advance.val() {
                    self.xbuf.rd_pos.next = self.cur_pos.q.val() + 8;
                    self.cur_pos.d.next = self.cur_pos.q.val() + 8;
                    self.beat.d.next = 2.into();
                    if self.t_nbeats.q.val() == 2 {
                        self.w_idx.d.next = self.w_idx.q.val() + 1;
                        if self.w_idx.q.val() + 1 == self.nw.val() {
                            self.state.d.next = DmaState::CplSetup;
                        } else {
                            self.state.d.next = DmaState::WrSetup;
                        }
                    } else {
                        self.state.d.next = DmaState::WrPay;
                    }
                }
            }
            DmaState::WrPay => {
                self.tx_valid.next = true;
                self.tx_data.next = self.xbuf.rd_data.val();
                if self.beat.q.val() + 1 == self.t_nbeats.q.val() {
                    self.tx_eop.next = true;
                    self.tx_keep.next = self.t_lastkeep.q.val();
                }
                if self.advance.val() {
                    self.xbuf.rd_pos.next = self.cur_pos.q.val() + 8;
                    self.cur_pos.d.next = self.cur_pos.q.val() + 8;
                    self.beat.d.next = self.beat.q.val() + 1;
                    if self.beat.q.val() + 1 == self.t_nbeats.q.val() {
                        self.w_idx.d.next = self.w_idx.q.val() + 1;
                        if self.w_idx.q.val() + 1 == self.nw.val() {
                            self.state.d.next = DmaState::CplSetup;
                        } else {
                            self.state.d.next = DmaState::WrSetup;
                        }
                    }
                }
            }
            DmaState::CplSetup => {
                // The completion entry is a write too: it needs its record.
                if !self.rec_on.val()
                    | (self.oc_valid.q.val()
                        & (self.oc_iova.q.val() + bit_cast::<64, 32>(self.oc_len.q.val()) == self.cpl_iova.val())
                        & (self.oc_src.q.val() == self.cpl_src.val()))
                    | (!self.oc_valid.q.val() & self.has_space.val())
                {
                    if self.rec_on.val() & self.oc_valid.q.val() {
                        self.oc_len.d.next = self.oc_len.q.val() + 16;
                        self.ev.next = self.ev.val() | self.k_ev_coalesced.val();
                    } else if self.rec_on.val() {
                        self.oc_valid.d.next = true;
                        self.oc_iova.d.next = self.cpl_iova.val();
                        self.oc_len.d.next = 16.into();
                        self.oc_src.d.next = self.cpl_src.val();
                    }
                    self.stall_count.d.next = 0.into();
                    self.sw_addr.d.next = self.cpl_iova.val();
                    self.sw_dw0.d.next = self.d6.q.val();
                    self.sw_dw1.d.next = self.d7.q.val();
                    self.sw_dw2.d.next = 0.into();
                    if (self.status.q.val() == 0) | (self.cur_mode.q.val() == self.c_mode_rx.val()) {
                        self.sw_dw2.d.next = self.d4.q.val();
                    }
                    self.sw_dw3.d.next = bit_cast::<32, 16>(self.status.q.val())
                        | (bit_cast::<32, 2>(self.cur_q.q.val()) << 16)
                        | 0x0100_0000_u64
                        | (bit_cast::<32, 4>(self.cpl_tenant.val()) << 28);
                    self.sw_one.d.next = false;
                    self.sw_kind.d.next = 2.into();
                    self.sw_ret.d.next = DmaState::Finish;
                    self.state.d.next = DmaState::SwH0;
                } else if self.oc_valid.q.val() {
                    self.sw_ret.d.next = DmaState::CplSetup;
                    self.state.d.next = DmaState::FlushOc;
                } else {
                    self.stalling.next = true;
                }
            }
            DmaState::SwH0 => {
                self.tx_valid.next = true;
                self.tx_sop.next = true;
                self.tx_data.next = (bit_cast::<64, 32>(self.hdr_dw1.val()) << 32) | bit_cast::<64, 32>(self.sw_hdr0.val());
                if self.sw_one.q.val() {
                    self.tx_data.next = (bit_cast::<64, 32>(self.hdr_dw1.val() & 0xFFFF_FF0F_u64) << 32)
                        | bit_cast::<64, 32>(self.sw_hdr0.val());
                }
                if self.advance.val() {
                    self.state.d.next = DmaState::SwH1;
                }
            }
            DmaState::SwH1 => {
                self.tx_valid.next = true;
                if self.sw_4dw.val() {
                    self.tx_data.next = (bit_cast::<64, 32>(self.sw_addr.q.val().get_bits::<32>(0)) << 32)
                        | bit_cast::<64, 32>(self.sw_addr.q.val().get_bits::<32>(32));
                } else {
                    self.tx_data.next = (bit_cast::<64, 32>(self.sw_dw0.q.val()) << 32)
                        | bit_cast::<64, 32>(self.sw_addr.q.val().get_bits::<32>(0));
                    self.tx_eop.next = self.sw_one.q.val();
                }
                if self.advance.val() {
                    if !self.sw_4dw.val() & self.sw_one.q.val() {
                        self.state.d.next = DmaState::SwDone;
                    } else {
                        self.state.d.next = DmaState::SwD0;
                    }
                }
            }
            DmaState::SwD0 => {
                self.tx_valid.next = true;
                if self.sw_4dw.val() {
                    self.tx_data.next = (bit_cast::<64, 32>(self.sw_dw1.q.val()) << 32) | bit_cast::<64, 32>(self.sw_dw0.q.val());
                    if self.sw_one.q.val() {
                        self.tx_keep.next = 1.into();
                        self.tx_eop.next = true;
                    }
                } else {
                    self.tx_data.next = (bit_cast::<64, 32>(self.sw_dw2.q.val()) << 32) | bit_cast::<64, 32>(self.sw_dw1.q.val());
                }
                if self.advance.val() {
                    if self.sw_4dw.val() & self.sw_one.q.val() {
                        self.state.d.next = DmaState::SwDone;
                    } else {
                        self.state.d.next = DmaState::SwD1;
                    }
                }
            }
            DmaState::SwD1 => {
                self.tx_valid.next = true;
                self.tx_eop.next = true;
                if self.sw_4dw.val() {
                    self.tx_data.next = (bit_cast::<64, 32>(self.sw_dw3.q.val()) << 32) | bit_cast::<64, 32>(self.sw_dw2.q.val());
                } else {
                    self.tx_keep.next = 1.into();
                    self.tx_data.next = bit_cast::<64, 32>(self.sw_dw3.q.val());
                }
                if self.advance.val() {
                    self.state.d.next = DmaState::SwDone;
                }
            }
            DmaState::SwDone => {
                if self.sw_kind.q.val() == 0 {
                    self.od_valid.d.next = false;
                    self.regs.record_written.next = true;
                    self.ev.next = self.ev.val() | self.k_ev_records.val();
                } else if self.sw_kind.q.val() == 1 {
                    self.oc_valid.d.next = false;
                    self.regs.record_written.next = true;
                    self.ev.next = self.ev.val() | self.k_ev_records.val();
                }
                self.state.d.next = self.sw_ret.q.val();
            }
            DmaState::FlushOd => {
                // Write the open data record into the next ring slot; the
                // caller chose where to go next (sw_ret).
                self.sw_addr.d.next = self.slot_addr.val();
                self.sw_dw0.d.next = self.od_iova.q.val().get_bits::<32>(0);
                self.sw_dw1.d.next = self.od_iova.q.val().get_bits::<32>(32);
                self.sw_dw2.d.next = self.od_len.q.val();
                self.sw_dw3.d.next = bit_cast::<32, 8>(self.od_src.q.val()) | 0x100_u64
                    | (bit_cast::<32, 16>(self.regs.wrec_prod.val().get_bits::<16>(0)) << 16);
                self.sw_one.d.next = false;
                self.sw_kind.d.next = 0.into();
                self.state.d.next = DmaState::SwH0;
            }
            DmaState::FlushOc => {
                self.sw_addr.d.next = self.slot_addr.val();
                self.sw_dw0.d.next = self.oc_iova.q.val().get_bits::<32>(0);
                self.sw_dw1.d.next = self.oc_iova.q.val().get_bits::<32>(32);
                self.sw_dw2.d.next = self.oc_len.q.val();
                self.sw_dw3.d.next = bit_cast::<32, 8>(self.oc_src.q.val()) | 0x100_u64
                    | (bit_cast::<32, 16>(self.regs.wrec_prod.val().get_bits::<16>(0)) << 16);
                self.sw_one.d.next = false;
                self.sw_kind.d.next = 1.into();
                self.state.d.next = DmaState::SwH0;
            }
            DmaState::Finish => {
                self.regs.head_inc.next = true;
                if self.status.q.val() == 0 {
                    self.ev.next = self.ev.val() | self.k_ev_desc_done.val();
                } else {
                    self.ev.next = self.ev.val() | self.k_ev_desc_error.val();
                }
                if self.cpl_since_irq.q.val() + 1 >= self.regs.irq_coalesce.val() {
                    self.irq.next = true;
                    self.cpl_since_irq.d.next = 0.into();
                } else {
                    self.cpl_since_irq.d.next = self.cpl_since_irq.q.val() + 1;
                }
                self.state.d.next = DmaState::Idle;
            }
            DmaState::FlushDone => {
                self.regs.flush_done.next = true;
                self.state.d.next = DmaState::Idle;
            }
            DmaState::NtxSetup => {
                // The frame is in the buffer; start reading its first beat.
                self.cur_pos.d.next = self.buf_start.val();
                self.xbuf.rd_pos.next = self.buf_start.val();
                self.n_rem.d.next = self.d4.q.val().get_bits::<17>(0);
                self.state.d.next = DmaState::NtxData;
            }
            DmaState::NtxData => {
                self.ntx_valid.next = true;
                self.ntx_data.next = self.xbuf.rd_data.val() & self.ntx_lmask.val();
                self.ntx_tenant.next = self.d5.q.val().get_bits::<4>(0);
                self.ntx_len.next = self.d4.q.val().get_bits::<14>(0);
                self.ntx_bytes.next = 8.into();
                if self.n_rem.q.val() <= 8 {
                    self.ntx_last.next = true;
                    self.ntx_bytes.next = self.n_rem.q.val().get_bits::<4>(0);
                }
                if self.ntx_ready.val() {
                    self.xbuf.rd_pos.next = self.cur_pos.q.val() + 8;
                    self.cur_pos.d.next = self.cur_pos.q.val() + 8;
                    self.n_rem.d.next = self.n_rem.q.val() - 8;
                    if self.n_rem.q.val() <= 8 {
                        self.ev.next = self.ev.val() | self.k_ev_tx_frames.val();
                        self.state.d.next = DmaState::CplSetup;
                    }
                }
            }
            DmaState::RxData => {
                // The frame goes into the buffer at the destination's
                // alignment, as read completions do; then the copy's write path.
                self.nrx_ready.next = true;
                if self.nrx_valid.val() {
                    self.xbuf.wr_en.next = true;
                    self.xbuf.wr_pos.next = self.rx_pos.q.val();
                    self.xbuf.wr_data.next = self.nrx_data.val();
                    self.xbuf.wr_mask.next = self.rx_mask.val();
                    self.rx_pos.d.next = self.rx_pos.q.val() + 8;
                    // Saturates above any valid length, so a runaway frame
                    // is a mismatch, not a wrap.
                    if !self.rx_cnt.q.val().get_bit(14) {
                        self.rx_cnt.d.next = self.rx_sum.val();
                    }
                    if self.rx_beat_bad.val() {
                        self.rx_bad.d.next = true;
                    }
                    if self.nrx_last.val() {
                        if self.rx_bad.q.val() | self.rx_beat_bad.val() | (self.rx_sum.val() != bit_cast::<15, 14>(self.rx_len.q.val())) {
                            self.status.d.next = self.c_st_bad_len.val();
                            self.ev.next = self.ev.val() | self.k_ev_rx_bad_frame.val();
                            self.state.d.next = DmaState::CplSetup;
                        } else {
                            self.ev.next = self.ev.val() | self.k_ev_rx_frames.val();
                            self.state.d.next = DmaState::WrSetup;
                        }
                    }
                }
            }
            DmaState::RxDrop => {
                // Consume the frame's beats; complete the descriptor if one was taken.
                self.nrx_ready.next = true;
                if self.nrx_valid.val() & self.nrx_last.val() {
                    if self.drop_to_cpl.q.val() {
                        self.state.d.next = DmaState::CplSetup;
                    } else {
                        self.state.d.next = DmaState::Idle;
                    }
                }
            }
            _ => {
                self.state.d.next = DmaState::Idle;
            }
        }
        // A write waiting for a record slot: count it, tell the host on the
        // first cycle (the ring needs draining), give up after the timeout.
        if self.stalling.val() {
            self.ev.next = self.ev.val() | self.k_ev_stall.val();
            self.stall_count.d.next = self.stall_count.q.val() + 1;
            if self.stall_count.q.val() == 0 {
                self.irq.next = true;
            }
            if self.stall_count.q.val() >= self.regs.wrec_timeout.val() {
                self.regs.overflow_set.next = true;
                self.stall_count.d.next = 0.into();
            }
        }
        self.regs.events.next = self.ev.val();
        // tag bookkeeping: set on issue, clear on the last completion
        self.busy.d.next = self.busy.q.val();
        if self.do_set.val() & self.do_clr.val() {
            self.busy.d.next = (self.busy.q.val() | self.set_bit.val()) & !self.clr_bit.val();
        } else if self.do_set.val() {
            self.busy.d.next = self.busy.q.val() | self.set_bit.val();
            self.outstanding.d.next = self.outstanding.q.val() + 1;
        } else if self.do_clr.val() {
            self.busy.d.next = self.busy.q.val() & !self.clr_bit.val();
            self.outstanding.d.next = self.outstanding.q.val() - 1;
        }
        if self.reset.val() {
            self.state.d.next = DmaState::Idle;
            self.busy.d.next = 0.into();
            self.outstanding.d.next = 0.into();
            self.od_valid.d.next = false;
            self.oc_valid.d.next = false;
            self.cpl_since_irq.d.next = 0.into();
            self.s_beat.d.next = 0.into();
            self.p_valid.d.next = false;
            self.desc_mode.d.next = false;
            self.cur_mode.d.next = 0.into();
            self.prefer_rx.d.next = false;
        }
    }
}
