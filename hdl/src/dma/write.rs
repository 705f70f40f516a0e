//! Back end of the DMA engine: takes the front end's jobs in order and
//! finishes them: writes the data from the transfer buffer into host memory
//! (Memory Write TLPs split at Max Payload Size, each sent as soon as its
//! bytes are in the buffer), or sends it as a frame on the network port,
//! then writes the completion entry, retires the descriptor and raises the
//! MSI (coalesced).
//!
//! Every memory write it makes emits a write record, appended to the ring in
//! host memory. No record is ever lost: a write that needs a record slot
//! waits for one; if the host does not free one within `WREC_TIMEOUT` cycles
//! the card sets the sticky overflow status (the host then treats everything
//! mapped as dirty for the epoch) and carries on without records. A write
//! that starts waiting raises the MSI, so the host drains the ring.
//!
//! Records are coalesced: one open data record and one open completion
//! record are kept in registers and extended while writes stay adjacent.
//! They are written to the ring when a non-adjacent write needs the slot or
//! when the host asks for a flush (`WREC_FLUSH`), after which the producer
//! count is written back to host memory. See docs/dma.md.
//!
//! For the virtqueue engine (`crate::virtq`) it sends transmitq frames
//! (`bj_vq`: no completion entry; `vq_sent` tells the engine, which writes
//! the used element) and makes the engine's used-ring writes (`vw_*`: a
//! used element, 8 bytes, or `used.idx`, 2), each with its write record
//! (source kind `SRC_KIND_VIRTQ`, coalesced like completion entries). A used
//! write is reported done (`vw_ready`) only once it has left this engine's
//! output slice (`tx_drained`): the engine's next request, the `avail.flags`
//! read that must follow the index write, then cannot pass it.

use super::read::VPOS_BITS;
use super::regs::*;
use crate::byte_buffer::POS_BITS;
use crate::konst;
use crate::regmap::dma;
use rust_hdl::prelude::*;
use smart_default::SmartDefault;

#[derive(Copy, Clone, PartialEq, Debug, LogicState)]
pub enum WriteState {
    Idle,
    WrSetup,
    WrH0,
    WrH1,
    WrPay,
    ErrWait,
    NtxWait,
    NtxSetup,
    NtxData,
    /// A cycle for the completion's record checks to settle into registers.
    CplPrep,
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
    /// A virtqueue frame is done (sent, or its read failed).
    VqFin,
    /// A used-ring write: its record checks settle, it is set up, and it is
    /// reported once it has left the output slice.
    VwPrep,
    VwSetup,
    VwDrain,
}

#[derive(LogicBlock, SmartDefault)]
pub struct WriteEngine {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    // ---- jobs from the front end ----
    pub bj_valid: Signal<In, Bit>,
    pub bj_take: Signal<Out, Bit>,
    pub bj_q: Signal<In, Bits<2>>,
    pub bj_mode: Signal<In, Bits<2>>,
    pub bj_status: Signal<In, Bits<16>>,
    pub bj_cookie: Signal<In, Bits<64>>,
    pub bj_bytes: Signal<In, Bits<32>>,
    pub bj_tenant: Signal<In, Bits<4>>,
    pub bj_dst: Signal<In, Bits<64>>,
    pub bj_pos0: Signal<In, Bits<VPOS_BITS>>,
    pub bj_end: Signal<In, Bits<VPOS_BITS>>,
    pub bj_local: Signal<In, Bit>,
    pub bj_id: Signal<In, Bits<2>>,
    /// The job is a virtqueue frame: sent (TX) or received into a guest
    /// buffer (RX), of virtqueue `bj_vq_q`.
    pub bj_vq: Signal<In, Bit>,
    pub bj_vq_q: Signal<In, Bits<3>>,
    /// A virtqueue frame is done (one cycle, in order): sent (`vq_sent`) or
    /// written into its guest buffer (`vq_rx_done`); `vq_failed` with it: a
    /// read of its buffers failed and it was not sent, or the received frame
    /// was malformed and nothing was written.
    pub vq_sent: Signal<Out, Bit>,
    pub vq_rx_done: Signal<Out, Bit>,
    pub vq_failed: Signal<Out, Bit>,
    // ---- the virtqueue engine's used-ring writes ----
    pub vw_valid: Signal<In, Bit>,
    pub vw_ready: Signal<Out, Bit>,
    pub vw_addr: Signal<In, Bits<64>>,
    /// `vw_bytes` bytes (1..4 within a DW, or 8 from a DW boundary) from the low byte.
    pub vw_data: Signal<In, Bits<64>>,
    pub vw_bytes: Signal<In, Bits<4>>,
    pub vw_q: Signal<In, Bits<3>>,
    /// Nothing of this engine's waits in the output slice.
    pub tx_drained: Signal<In, Bit>,
    /// Buffer space given back (the finished job's end).
    pub free_pos: Signal<Out, Bits<VPOS_BITS>>,
    /// The front end has nothing in progress (for the idle interrupt).
    pub front_idle: Signal<In, Bit>,
    // ---- the read engine ----
    pub filled_pos: Signal<In, Bits<VPOS_BITS>>,
    pub read_err: Signal<In, Bits<4>>,
    pub err_clear: Signal<Out, Bit>,
    pub err_clear_id: Signal<Out, Bits<2>>,
    // ---- registers (dma_regs) ----
    pub bq: Signal<Out, Bits<2>>,
    pub bq_cpl_base: Signal<In, Bits<64>>,
    pub bq_head: Signal<In, Bits<12>>,
    pub head_inc: Signal<Out, Bit>,
    pub wrec_base: Signal<In, Bits<64>>,
    pub wrec_log2: Signal<In, Bits<5>>,
    pub wrec_prod: Signal<In, Bits<32>>,
    pub wrec_cons: Signal<In, Bits<32>>,
    pub wrec_timeout: Signal<In, Bits<32>>,
    pub wb_addr: Signal<In, Bits<64>>,
    pub irq_coalesce: Signal<In, Bits<16>>,
    pub overflow: Signal<In, Bit>,
    pub flush_pending: Signal<In, Bit>,
    pub record_written: Signal<Out, Bit>,
    pub overflow_set: Signal<Out, Bit>,
    pub flush_done: Signal<Out, Bit>,
    pub events: Signal<Out, Bits<NUM_EVENTS>>,
    // ---- configuration ----
    pub requester_id: Signal<In, Bits<16>>,
    pub bus_master: Signal<In, Bit>,
    pub max_payload: Signal<In, Bits<3>>,
    // ---- requests to the host ----
    pub tx_data: Signal<Out, Bits<64>>,
    pub tx_keep: Signal<Out, Bits<2>>,
    pub tx_sop: Signal<Out, Bit>,
    pub tx_eop: Signal<Out, Bit>,
    pub tx_valid: Signal<Out, Bit>,
    pub tx_ready: Signal<In, Bit>,
    // ---- the transfer buffer (one cycle read latency) ----
    pub buf_rd_pos: Signal<Out, Bits<POS_BITS>>,
    pub buf_rd_data: Signal<In, Bits<64>>,
    // ---- frames to the network ----
    pub ntx_data: Signal<Out, Bits<64>>,
    pub ntx_bytes: Signal<Out, Bits<4>>,
    pub ntx_last: Signal<Out, Bit>,
    pub ntx_valid: Signal<Out, Bit>,
    pub ntx_ready: Signal<In, Bit>,
    pub ntx_tenant: Signal<Out, Bits<4>>,
    pub ntx_len: Signal<Out, Bits<14>>,
    /// One-cycle pulse: raise the MSI.
    pub irq: Signal<Out, Bit>,
    pub busy: Signal<Out, Bit>,

    state: DFF<WriteState>,
    // the job
    j_q: DFF<Bits<2>>,
    j_mode: DFF<Bits<2>>,
    status: DFF<Bits<16>>,
    j_cookie: DFF<Bits<64>>,
    j_bytes: DFF<Bits<32>>,
    j_tenant: DFF<Bits<4>>,
    j_dst: DFF<Bits<64>>,
    j_pos0: DFF<Bits<VPOS_BITS>>,
    j_end: DFF<Bits<VPOS_BITS>>,
    j_local: DFF<Bit>,
    j_id: DFF<Bits<2>>,
    j_vq: DFF<Bit>,
    j_vq_q: DFF<Bits<3>>,
    freed: DFF<Bits<VPOS_BITS>>,
    // writes
    /// Max Payload Size - 1 (127 or 255), from the job's start.
    wmask_q: DFF<Bits<9>>,
    /// The next write TLP's first and the job's end byte, in MPS-window
    /// coordinates (the destination's offset in its MPS block is byte 0's).
    /// Registers stepped TLP by TLP, so no shifter sits in the geometry.
    w_start_q: DFF<Bits<18>>,
    dend_q: DFF<Bits<18>>,
    beat: DFF<Bits<7>>,
    cur_pos: DFF<Bits<VPOS_BITS>>,
    t_addr: DFF<Bits<64>>,
    t_len_dw: DFF<Bits<10>>,
    t_be: DFF<Bits<8>>,
    t_4dw: DFF<Bit>,
    t_nbeats: DFF<Bits<7>>,
    t_lastkeep: DFF<Bits<2>>,
    n_rem: DFF<Bits<17>>,
    // open records
    od_valid: DFF<Bit>,
    od_iova: DFF<Bits<64>>,
    od_len: DFF<Bits<32>>,
    /// od_iova + od_len, kept alongside.
    od_end: DFF<Bits<64>>,
    /// Address of write the next write TLP (the job's destination, then each TLP's end).
    w_addr: DFF<Bits<64>>,
    /// The fill and read-error checks for the next write TLP, a cycle stale (safe as for next_ok).
    have_q: DFF<Bit>,
    od_src: DFF<Bits<8>>,
    oc_valid: DFF<Bit>,
    oc_iova: DFF<Bits<64>>,
    oc_len: DFF<Bits<32>>,
    oc_src: DFF<Bits<8>>,
    stall_count: DFF<Bits<32>>,
    cpl_since_irq: DFF<Bits<16>>,
    // small write (completion entry, record, producer write-back)
    sw_addr: DFF<Bits<64>>,
    sw_dw0: DFF<Bits<32>>,
    sw_dw1: DFF<Bits<32>>,
    sw_dw2: DFF<Bits<32>>,
    sw_dw3: DFF<Bits<32>>,
    sw_one: DFF<Bit>,
    /// Two data DWs (a used element); `sw_be` the byte enables (last, first).
    sw_two: DFF<Bit>,
    sw_be: DFF<Bits<8>>,
    sw_kind: DFF<Bits<2>>,
    sw_ret: DFF<WriteState>,

    ev: Signal<Local, Bits<NUM_EVENTS>>,
    xlen: Signal<Local, Bits<18>>,
    dst_lo: Signal<Local, Bits<18>>,
    w_end: Signal<Local, Bits<18>>,
    w_cend: Signal<Local, Bits<18>>,
    w_next_addr: Signal<Local, Bits<64>>,
    w_bytes: Signal<Local, Bits<32>>,
    w_len_dw: Signal<Local, Bits<10>>,
    w_fbe: Signal<Local, Bits<4>>,
    w_lbe: Signal<Local, Bits<4>>,
    w_4dw: Signal<Local, Bit>,
    w_total_dw: Signal<Local, Bits<11>>,
    base: Signal<Local, Bits<VPOS_BITS>>,
    w_need: Signal<Local, Bits<VPOS_BITS>>,
    w_gap: Signal<Local, Bits<VPOS_BITS>>,
    w_have: Signal<Local, Bit>,
    end_gap: Signal<Local, Bits<VPOS_BITS>>,
    all_in: Signal<Local, Bit>,
    job_err: Signal<Local, Bit>,
    entries: Signal<Local, Bits<32>>,
    used: Signal<Local, Bits<32>>,
    has_space: Signal<Local, Bit>,
    rec_on: Signal<Local, Bit>,
    data_src: Signal<Local, Bits<8>>,
    cpl_src: Signal<Local, Bits<8>>,
    cpl_iova: Signal<Local, Bits<64>>,
    /// The record the completion-kind checks are for: a completion entry,
    /// or (in `VwPrep` / `VwSetup`) a used-ring write.
    rec_vw: Signal<Local, Bit>,
    r_iova: Signal<Local, Bits<64>>,
    r_src: Signal<Local, Bits<8>>,
    r_len: Signal<Local, Bits<32>>,
    vw_off: Signal<Local, Bits<2>>,
    vw_mask: Signal<Local, Bits<8>>,
    vw_two: Signal<Local, Bit>,
    slot_addr: Signal<Local, Bits<64>>,
    hdr_dw0: Signal<Local, Bits<32>>,
    hdr_dw1: Signal<Local, Bits<32>>,
    sw_4dw: Signal<Local, Bit>,
    sw_hdr0: Signal<Local, Bits<32>>,
    stalling: Signal<Local, Bit>,
    od_extends: Signal<Local, Bit>,
    rec_ok: Signal<Local, Bit>,
    /// A TLP's last beat goes this cycle.
    last_beat: Signal<Local, Bit>,
    /// Set up the next write TLP this cycle.
    do_setup: Signal<Local, Bit>,
    /// The next TLP could be set up (its bytes in, no read error, its
    /// record needs no flush), as of the previous cycle: registered so the
    /// last beat's decision is not behind the link's ready (timing). A
    /// cycle stale is safe: the buffer only fills, record space only frees,
    /// the open record changes only here, and a read error is flagged
    /// before the fill position passes the failed chunk.
    next_ok: DFF<Bit>,
    // ---- the next write TLP's geometry, registered (timing): computed
    // from the geometry registers above, a cycle behind them ----
    g_end: DFF<Bits<18>>,
    g_bytes: DFF<Bits<32>>,
    g_next_addr: DFF<Bits<64>>,
    g_len_dw: DFF<Bits<10>>,
    g_be: DFF<Bits<8>>,
    g_4dw: DFF<Bit>,
    g_nbeats: DFF<Bits<7>>,
    g_lastkeep: DFF<Bits<2>>,
    g_pos: DFF<Bits<VPOS_BITS>>,
    g_need: DFF<Bits<VPOS_BITS>>,
    /// Stage A of the geometry (the TLP's start and end offsets) and
    /// stage B (length, byte count, byte enables, fill mark, position); the
    /// g_* registers are stage C.
    a_start: DFF<Bits<18>>,
    a_end: DFF<Bits<18>>,
    a_4dw: DFF<Bit>,
    b_end: DFF<Bits<18>>,
    b_bytes: DFF<Bits<32>>,
    b_len_dw: DFF<Bits<10>>,
    b_fbe: DFF<Bits<4>>,
    b_lbe: DFF<Bits<4>>,
    b_4dw: DFF<Bit>,
    b_need: DFF<Bits<VPOS_BITS>>,
    b_pos: DFF<Bits<VPOS_BITS>>,
    /// Nothing moved the geometry registers in the last cycle (`cur_a`),
    /// two cycles (`cur_b`), three cycles (`g_cur`): stage A, B, C current.
    cur_a: DFF<Bit>,
    cur_b: DFF<Bit>,
    g_cur: DFF<Bit>,
    /// The completion entry's address and record checks, registered every
    /// cycle; exact in CplSetup because CplPrep changes nothing (timing).
    cpl_iova_q: DFF<Bits<64>>,
    oc_extends_q: DFF<Bit>,
    has_space_q: DFF<Bit>,
    /// The next write extends the open data record, registered (timing).
    /// Exact whenever the state did not move in the previous cycle: in
    /// WrSetup after its first cycle (`in_ws`), and for `next_ok`, which
    /// waits three cycles after a setup anyway.
    od_extends_q: DFF<Bit>,
    in_ws: DFF<Bit>,
    c_fbe: Signal<Local, Bits<4>>,
    c_lbe: Signal<Local, Bits<4>>,
    /// The geometry registers move this cycle (a TLP set up or a job taken).
    geo_moves: Signal<Local, Bit>,
    w_pos: Signal<Local, Bits<VPOS_BITS>>,
    ntx_shift: Signal<Local, Bits<6>>,
    ntx_lmask: Signal<Local, Bits<64>>,
    #[default(konst(dma::SRC_KIND_COMPLETION as u64))]
    c_kind_cpl: Constant<Bits<8>>,
    #[default(konst(dma::SRC_KIND_VIRTQ as u64))]
    c_kind_vq: Constant<Bits<8>>,
    #[default(konst(1))]
    c_one32: Constant<Bits<32>>,
    #[default(konst(dma::QMODE_TX as u64))]
    c_mode_tx: Constant<Bits<2>>,
    #[default(konst(dma::QMODE_RX as u64))]
    c_mode_rx: Constant<Bits<2>>,
    #[default(konst(dma::CPL_STATUS_READ_ERROR as u64))]
    c_st_read_err: Constant<Bits<16>>,
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
    #[default(konst(1 << EV_TX_FRAMES))]
    k_ev_tx_frames: Constant<Bits<NUM_EVENTS>>,
}

impl Logic for WriteEngine {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clock, state, j_q, j_mode, status, j_cookie, j_bytes, j_tenant, j_dst, j_pos0, j_end, j_local, j_id,
            freed, next_ok, wmask_q, w_start_q, dend_q, beat, cur_pos, t_addr, t_len_dw, t_be, t_4dw, t_nbeats, t_lastkeep, n_rem, od_valid,
            od_iova, od_len, od_end, w_addr, have_q, od_src, oc_valid, oc_iova, oc_len, oc_src, stall_count, cpl_since_irq, sw_addr, sw_dw0,
            sw_dw1, sw_dw2, sw_dw3, sw_one, sw_two, sw_be, j_vq, j_vq_q, sw_kind, sw_ret, g_end, g_bytes, g_next_addr, g_len_dw, g_be, g_4dw, g_nbeats,
            g_lastkeep, g_pos, g_need, g_cur, a_start, a_end, a_4dw, b_end, b_bytes, b_len_dw, b_fbe, b_lbe, b_4dw, b_need,
            b_pos, cur_a, cur_b, cpl_iova_q, oc_extends_q, has_space_q, od_extends_q, in_ws
        );
        self.ev.next = 0.into();
        self.irq.next = false;
        self.bj_take.next = false;
        self.bq.next = self.j_q.q.val();
        self.head_inc.next = false;
        self.record_written.next = false;
        self.overflow_set.next = false;
        self.flush_done.next = false;
        self.err_clear.next = false;
        self.err_clear_id.next = self.j_id.q.val();
        self.vq_sent.next = false;
        self.vq_rx_done.next = false;
        self.vq_failed.next = false;
        self.vw_ready.next = false;

        // ---- write geometry (TLPs never cross a Max Payload Size boundary) ----
        self.xlen.next = self.j_bytes.q.val().get_bits::<18>(0);
        self.dst_lo.next = bit_cast::<18, 9>(self.j_dst.q.val().get_bits::<9>(0) & self.wmask_q.q.val());
        // The TLP ends at the next MPS boundary or at the job's end.
        self.w_cend.next = (self.w_start_q.q.val() | bit_cast::<18, 9>(self.wmask_q.q.val())) + 1;
        self.w_end.next = self.w_cend.val();
        if self.dend_q.q.val() < self.w_cend.val() {
            self.w_end.next = self.dend_q.q.val();
        }
        // The TLP's address is w_addr: where the previous one ended (a
        // register, so no 64-bit adder sits in front of the record compare).
        // (Stage B, from stage A's start and end.)
        self.w_bytes.next = bit_cast::<32, 18>(self.a_end.q.val() - self.a_start.q.val());
        self.w_len_dw.next =
            bit_cast::<10, 18>((self.a_end.q.val() + 3) >> 2) - bit_cast::<10, 18>(self.a_start.q.val() >> 2);
        self.w_fbe.next = (bit_cast::<4, 4>(15.into()) << self.a_start.q.val().get_bits::<2>(0)) & 15;
        self.w_lbe.next = 15.into();
        if self.a_end.q.val().get_bits::<2>(0) == 1 {
            self.w_lbe.next = 1.into();
        } else if self.a_end.q.val().get_bits::<2>(0) == 2 {
            self.w_lbe.next = 3.into();
        } else if self.a_end.q.val().get_bits::<2>(0) == 3 {
            self.w_lbe.next = 7.into();
        }
        self.w_4dw.next = self.w_addr.q.val().get_bits::<32>(32).any();
        // (Stage C, from stage B.)
        self.w_next_addr.next = self.w_addr.q.val() + bit_cast::<64, 32>(self.b_bytes.q.val());
        self.c_fbe.next = self.b_fbe.q.val();
        self.c_lbe.next = self.b_lbe.q.val();
        if self.b_len_dw.q.val() == 1 {
            self.c_fbe.next = self.b_fbe.q.val() & self.b_lbe.q.val();
            self.c_lbe.next = 0.into();
        }
        self.w_total_dw.next = bit_cast::<11, 10>(self.b_len_dw.q.val()) + 3;
        if self.b_4dw.q.val() {
            self.w_total_dw.next = bit_cast::<11, 10>(self.b_len_dw.q.val()) + 4;
        }
        // Byte k of the job is at buffer position pos0 + k; pos0 - dst[2:0]
        // is beat aligned. A TLP may go once the buffer is filled past its
        // last byte (positions compared across the wrap, as differences).
        self.base.next = self.j_pos0.q.val() - bit_cast::<VPOS_BITS, 3>(self.j_dst.q.val().get_bits::<3>(0));
        self.w_need.next = self.j_pos0.q.val() + bit_cast::<VPOS_BITS, 18>(self.a_end.q.val() - self.dst_lo.val());
        // (Differences into 20-bit signals first: they must wrap at 20 bits.)
        self.w_gap.next = self.filled_pos.val() - self.g_need.q.val();
        self.w_have.next = (self.w_gap.val() < 0x8_0000) | self.j_local.q.val();
        self.end_gap.next = self.filled_pos.val() - self.j_pos0.q.val() - bit_cast::<VPOS_BITS, 18>(self.xlen.val());
        self.all_in.next = (self.end_gap.val() < 0x8_0000) | self.j_local.q.val();
        self.job_err.next = self.read_err.val().get_bit(self.j_id.q.val().index()) & !self.j_local.q.val();

        // ---- write records ----
        self.entries.next = self.c_one32.val() << self.wrec_log2.val();
        self.used.next = self.wrec_prod.val() - self.wrec_cons.val()
            + bit_cast::<32, 1>(self.od_valid.q.val().into())
            + bit_cast::<32, 1>(self.oc_valid.q.val().into());
        self.has_space.next = self.used.val() < self.entries.val();
        self.rec_on.next = (self.wrec_log2.val() != 0) & !self.overflow.val();
        self.data_src.next = bit_cast::<8, 2>(self.j_q.q.val());
        if self.j_vq.q.val() {
            self.data_src.next = bit_cast::<8, 3>(self.j_vq_q.q.val()) | self.c_kind_vq.val();
        }
        self.cpl_src.next = bit_cast::<8, 2>(self.j_q.q.val()) | self.c_kind_cpl.val();
        self.cpl_iova.next = self.bq_cpl_base.val() + (bit_cast::<64, 12>(self.bq_head.val()) << 4);
        self.rec_vw.next = (self.state.q.val() == WriteState::VwPrep) | (self.state.q.val() == WriteState::VwSetup);
        self.r_iova.next = self.cpl_iova.val();
        self.r_src.next = self.cpl_src.val();
        self.r_len.next = 16.into();
        if self.rec_vw.val() {
            self.r_iova.next = self.vw_addr.val();
            self.r_src.next = bit_cast::<8, 3>(self.vw_q.val()) | self.c_kind_vq.val();
            self.r_len.next = bit_cast::<32, 4>(self.vw_bytes.val());
        }
        self.cpl_iova_q.d.next = self.r_iova.val();
        self.oc_extends_q.d.next = self.oc_valid.q.val()
            & (self.oc_iova.q.val() + bit_cast::<64, 32>(self.oc_len.q.val()) == self.r_iova.val())
            & (self.oc_src.q.val() == self.r_src.val());
        // A used-ring write's DWs and byte enables: 8 bytes from a DW
        // boundary are two DWs, anything within a DW one.
        self.vw_off.next = self.vw_addr.val().get_bits::<2>(0);
        self.vw_mask.next = (bit_cast::<8, 1>(1.into()) << self.vw_bytes.val()) - 1;
        if self.vw_bytes.val() >= 8 {
            self.vw_mask.next = 0xFF.into();
        }
        self.vw_two.next = self.vw_bytes.val() > 4;
        self.has_space_q.d.next = self.has_space.val();
        // The open data record grows by the next write, or a new one opens
        // in a free slot; otherwise the write waits (flush or free slot).
        self.od_extends.next = self.od_valid.q.val()
            & (self.od_end.q.val() == self.w_addr.q.val())
            & (self.od_src.q.val() == self.data_src.val());
        self.od_extends_q.d.next = self.od_extends.val();
        self.rec_ok.next =
            !self.rec_on.val() | self.od_extends_q.q.val() | (!self.od_valid.q.val() & self.has_space_q.q.val());
        self.in_ws.d.next = self.state.q.val() == WriteState::WrSetup;
        self.slot_addr.next = self.wrec_base.val()
            + (bit_cast::<64, 32>(self.wrec_prod.val() & (self.entries.val() - 1)) << 4);

        // ---- TX defaults ----
        self.tx_valid.next = false;
        self.tx_sop.next = false;
        self.tx_eop.next = false;
        self.tx_keep.next = 3.into();
        self.tx_data.next = 0.into();
        self.buf_rd_pos.next = self.cur_pos.q.val().get_bits::<POS_BITS>(0);
        self.sw_4dw.next = self.sw_addr.q.val().get_bits::<32>(32).any();
        self.sw_hdr0.next = 0x4000_0004.into();
        if self.sw_4dw.val() & self.sw_one.q.val() {
            self.sw_hdr0.next = 0x6000_0001.into();
        } else if self.sw_4dw.val() & self.sw_two.q.val() {
            self.sw_hdr0.next = 0x6000_0002.into();
        } else if self.sw_4dw.val() {
            self.sw_hdr0.next = 0x6000_0004.into();
        } else if self.sw_one.q.val() {
            self.sw_hdr0.next = 0x4000_0001.into();
        } else if self.sw_two.q.val() {
            self.sw_hdr0.next = 0x4000_0002.into();
        }
        self.hdr_dw1.next = (bit_cast::<32, 16>(self.requester_id.val()) << 16) | bit_cast::<32, 8>(self.sw_be.q.val());
        self.hdr_dw0.next = 0.into();

        // ---- network TX ----
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

        self.stalling.next = false;
        self.last_beat.next = false;
        self.do_setup.next = false;
        match self.state.q.val() {
            WriteState::Idle => {
                if self.flush_pending.val() & self.od_valid.q.val() {
                    self.sw_ret.d.next = WriteState::Idle;
                    self.state.d.next = WriteState::FlushOd;
                } else if self.flush_pending.val() & self.oc_valid.q.val() {
                    self.sw_ret.d.next = WriteState::Idle;
                    self.state.d.next = WriteState::FlushOc;
                } else if self.flush_pending.val() {
                    self.sw_addr.d.next = self.wb_addr.val();
                    self.sw_dw0.d.next = self.wrec_prod.val();
                    self.sw_one.d.next = true;
                    self.sw_two.d.next = false;
                    self.sw_be.d.next = 0x0F.into();
                    self.sw_kind.d.next = 3.into();
                    self.sw_ret.d.next = WriteState::FlushDone;
                    if self.bus_master.val() {
                        self.state.d.next = WriteState::SwH0;
                    }
                } else if self.vw_valid.val() & self.bus_master.val() {
                    self.state.d.next = WriteState::VwPrep;
                } else if self.bj_valid.val() {
                    self.bj_take.next = true;
                    self.j_vq.d.next = self.bj_vq.val();
                    self.j_vq_q.d.next = self.bj_vq_q.val();
                    self.j_q.d.next = self.bj_q.val();
                    self.j_mode.d.next = self.bj_mode.val();
                    self.status.d.next = self.bj_status.val();
                    self.j_cookie.d.next = self.bj_cookie.val();
                    self.j_bytes.d.next = self.bj_bytes.val();
                    self.j_tenant.d.next = self.bj_tenant.val();
                    self.j_dst.d.next = self.bj_dst.val();
                    self.j_pos0.d.next = self.bj_pos0.val();
                    self.j_end.d.next = self.bj_end.val();
                    self.j_local.d.next = self.bj_local.val();
                    self.j_id.d.next = self.bj_id.val();
                    // MPS 128 or 256.
                    self.wmask_q.d.next = 0x7F.into();
                    self.w_start_q.d.next = bit_cast::<18, 9>(self.bj_dst.val().get_bits::<9>(0) & 0x7F);
                    self.dend_q.d.next =
                        bit_cast::<18, 9>(self.bj_dst.val().get_bits::<9>(0) & 0x7F) + self.bj_bytes.val().get_bits::<18>(0);
                    if self.max_payload.val() != 0 {
                        self.wmask_q.d.next = 0xFF.into();
                        self.w_start_q.d.next = bit_cast::<18, 9>(self.bj_dst.val().get_bits::<9>(0) & 0xFF);
                        self.dend_q.d.next = bit_cast::<18, 9>(self.bj_dst.val().get_bits::<9>(0) & 0xFF)
                            + self.bj_bytes.val().get_bits::<18>(0);
                    }
                    self.w_addr.d.next = self.bj_dst.val();
                    if self.bj_status.val() != 0 {
                        self.state.d.next = WriteState::CplPrep;
                    } else if self.bj_mode.val() == self.c_mode_tx.val() {
                        self.state.d.next = WriteState::NtxWait;
                    } else {
                        self.state.d.next = WriteState::WrSetup;
                    }
                } else if self.front_idle.val() & (self.cpl_since_irq.q.val() != 0) {
                    self.irq.next = true;
                    self.cpl_since_irq.d.next = 0.into();
                }
            }
            WriteState::WrSetup => {
                if self.job_err.val() {
                    // A read failed: no more writes; wait for the job's
                    // other reads, then complete with the error.
                    self.status.d.next = self.c_st_read_err.val();
                    self.state.d.next = WriteState::ErrWait;
                } else if !self.have_q.q.val() | !self.in_ws.q.val() {
                    // Its bytes are not all in yet (or this cycle's setup
                    // moved on to the next TLP), or the registered record
                    // checks are a cycle old (first cycle here).
                } else if self.rec_ok.val() {
                    self.do_setup.next = true;
                } else if self.od_valid.q.val() {
                    self.sw_ret.d.next = WriteState::WrSetup;
                    self.state.d.next = WriteState::FlushOd;
                } else {
                    // Ring full: the write waits for the host, up to the timeout.
                    self.stalling.next = true;
                }
            }
            WriteState::WrH0 => {
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
                if self.tx_ready.val() {
                    self.buf_rd_pos.next = bit_cast::<POS_BITS, VPOS_BITS>(self.cur_pos.q.val() + 8);
                    self.cur_pos.d.next = self.cur_pos.q.val() + 8;
                    self.beat.d.next = 1.into();
                    self.state.d.next = WriteState::WrH1;
                }
            }
            WriteState::WrH1 => {
                self.tx_valid.next = true;
                if self.t_4dw.q.val() {
                    self.tx_data.next = (bit_cast::<64, 32>(self.t_addr.q.val().get_bits::<32>(0)) << 32)
                        | bit_cast::<64, 32>(self.t_addr.q.val().get_bits::<32>(32));
                } else {
                    self.tx_data.next = (self.buf_rd_data.val() & 0xFFFF_FFFF_0000_0000_u64)
                        | bit_cast::<64, 32>(self.t_addr.q.val().get_bits::<32>(0));
                }
                if self.t_nbeats.q.val() == 2 {
                    self.tx_eop.next = true;
                    self.tx_keep.next = self.t_lastkeep.q.val();
                }
                if self.tx_ready.val() {
                    self.buf_rd_pos.next = bit_cast::<POS_BITS, VPOS_BITS>(self.cur_pos.q.val() + 8);
                    self.cur_pos.d.next = self.cur_pos.q.val() + 8;
                    self.beat.d.next = 2.into();
                    if self.t_nbeats.q.val() == 2 {
                        self.last_beat.next = true;
                    } else {
                        self.state.d.next = WriteState::WrPay;
                    }
                }
            }
            WriteState::WrPay => {
                self.tx_valid.next = true;
                self.tx_data.next = self.buf_rd_data.val();
                if self.beat.q.val() + 1 == self.t_nbeats.q.val() {
                    self.tx_eop.next = true;
                    self.tx_keep.next = self.t_lastkeep.q.val();
                }
                if self.tx_ready.val() {
                    self.buf_rd_pos.next = bit_cast::<POS_BITS, VPOS_BITS>(self.cur_pos.q.val() + 8);
                    self.cur_pos.d.next = self.cur_pos.q.val() + 8;
                    self.beat.d.next = self.beat.q.val() + 1;
                    if self.beat.q.val() + 1 == self.t_nbeats.q.val() {
                        self.last_beat.next = true;
                    }
                }
            }
            WriteState::ErrWait => {
                if self.all_in.val() {
                    self.state.d.next = WriteState::CplPrep;
                    if self.j_vq.q.val() {
                        self.state.d.next = WriteState::VqFin;
                    }
                }
            }
            WriteState::NtxWait => {
                // A frame goes out whole: wait for all of it.
                if self.job_err.val() {
                    self.status.d.next = self.c_st_read_err.val();
                    self.state.d.next = WriteState::ErrWait;
                } else if self.all_in.val() {
                    self.state.d.next = WriteState::NtxSetup;
                }
            }
            WriteState::NtxSetup => {
                self.cur_pos.d.next = self.j_pos0.q.val();
                self.buf_rd_pos.next = self.j_pos0.q.val().get_bits::<POS_BITS>(0);
                self.n_rem.d.next = self.j_bytes.q.val().get_bits::<17>(0);
                self.state.d.next = WriteState::NtxData;
            }
            WriteState::NtxData => {
                self.ntx_valid.next = true;
                self.ntx_data.next = self.buf_rd_data.val() & self.ntx_lmask.val();
                self.ntx_tenant.next = self.j_tenant.q.val();
                self.ntx_len.next = self.j_bytes.q.val().get_bits::<14>(0);
                self.ntx_bytes.next = 8.into();
                if self.n_rem.q.val() <= 8 {
                    self.ntx_last.next = true;
                    self.ntx_bytes.next = self.n_rem.q.val().get_bits::<4>(0);
                }
                if self.ntx_ready.val() {
                    self.buf_rd_pos.next = bit_cast::<POS_BITS, VPOS_BITS>(self.cur_pos.q.val() + 8);
                    self.cur_pos.d.next = self.cur_pos.q.val() + 8;
                    self.n_rem.d.next = self.n_rem.q.val() - 8;
                    if self.n_rem.q.val() <= 8 {
                        self.state.d.next = WriteState::CplPrep;
                        if self.j_vq.q.val() {
                            // (Counted by the virtqueue engine.)
                            self.state.d.next = WriteState::VqFin;
                        } else {
                            self.ev.next = self.ev.val() | self.k_ev_tx_frames.val();
                        }
                    }
                }
            }
            WriteState::CplPrep => {
                self.state.d.next = WriteState::CplSetup;
                if self.j_vq.q.val() {
                    self.state.d.next = WriteState::VqFin;
                }
            }
            WriteState::CplSetup => {
                // The completion entry is a write too: it needs its record.
                // (Space only grows while waiting here: a cycle-old
                // has_space_q is safe.)
                if !self.rec_on.val() | self.oc_extends_q.q.val() | (!self.oc_valid.q.val() & self.has_space_q.q.val()) {
                    if self.rec_on.val() & self.oc_valid.q.val() {
                        self.oc_len.d.next = self.oc_len.q.val() + 16;
                        self.ev.next = self.ev.val() | self.k_ev_coalesced.val();
                    } else if self.rec_on.val() {
                        self.oc_valid.d.next = true;
                        self.oc_iova.d.next = self.cpl_iova_q.q.val();
                        self.oc_len.d.next = 16.into();
                        self.oc_src.d.next = self.cpl_src.val();
                    }
                    self.stall_count.d.next = 0.into();
                    self.sw_addr.d.next = self.cpl_iova_q.q.val();
                    self.sw_dw0.d.next = self.j_cookie.q.val().get_bits::<32>(0);
                    self.sw_dw1.d.next = self.j_cookie.q.val().get_bits::<32>(32);
                    self.sw_dw2.d.next = 0.into();
                    if (self.status.q.val() == 0) | (self.j_mode.q.val() == self.c_mode_rx.val()) {
                        self.sw_dw2.d.next = self.j_bytes.q.val();
                    }
                    self.sw_dw3.d.next = bit_cast::<32, 16>(self.status.q.val())
                        | (bit_cast::<32, 2>(self.j_q.q.val()) << 16)
                        | 0x0100_0000_u64
                        | (bit_cast::<32, 4>(self.j_tenant.q.val()) << 28);
                    self.sw_one.d.next = false;
                    self.sw_two.d.next = false;
                    self.sw_be.d.next = 0xFF.into();
                    self.sw_kind.d.next = 2.into();
                    self.sw_ret.d.next = WriteState::Finish;
                    self.state.d.next = WriteState::SwH0;
                } else if self.oc_valid.q.val() {
                    self.sw_ret.d.next = WriteState::CplPrep;
                    self.state.d.next = WriteState::FlushOc;
                } else {
                    self.stalling.next = true;
                }
            }
            WriteState::SwH0 => {
                self.tx_valid.next = true;
                self.tx_sop.next = true;
                self.tx_data.next = (bit_cast::<64, 32>(self.hdr_dw1.val()) << 32) | bit_cast::<64, 32>(self.sw_hdr0.val());
                if self.tx_ready.val() {
                    self.state.d.next = WriteState::SwH1;
                }
            }
            WriteState::SwH1 => {
                self.tx_valid.next = true;
                if self.sw_4dw.val() {
                    self.tx_data.next = (bit_cast::<64, 32>(self.sw_addr.q.val().get_bits::<32>(0)) << 32)
                        | bit_cast::<64, 32>(self.sw_addr.q.val().get_bits::<32>(32));
                } else {
                    self.tx_data.next = (bit_cast::<64, 32>(self.sw_dw0.q.val()) << 32)
                        | bit_cast::<64, 32>(self.sw_addr.q.val().get_bits::<32>(0));
                    self.tx_eop.next = self.sw_one.q.val();
                }
                if self.tx_ready.val() {
                    if !self.sw_4dw.val() & self.sw_one.q.val() {
                        self.state.d.next = WriteState::SwDone;
                    } else {
                        self.state.d.next = WriteState::SwD0;
                    }
                }
            }
            WriteState::SwD0 => {
                self.tx_valid.next = true;
                if self.sw_4dw.val() {
                    self.tx_data.next = (bit_cast::<64, 32>(self.sw_dw1.q.val()) << 32) | bit_cast::<64, 32>(self.sw_dw0.q.val());
                    if self.sw_one.q.val() {
                        self.tx_keep.next = 1.into();
                        self.tx_eop.next = true;
                    }
                    if self.sw_two.q.val() {
                        self.tx_eop.next = true;
                    }
                } else {
                    self.tx_data.next = (bit_cast::<64, 32>(self.sw_dw2.q.val()) << 32) | bit_cast::<64, 32>(self.sw_dw1.q.val());
                    if self.sw_two.q.val() {
                        self.tx_keep.next = 1.into();
                        self.tx_eop.next = true;
                    }
                }
                if self.tx_ready.val() {
                    if (self.sw_4dw.val() & self.sw_one.q.val()) | self.sw_two.q.val() {
                        self.state.d.next = WriteState::SwDone;
                    } else {
                        self.state.d.next = WriteState::SwD1;
                    }
                }
            }
            WriteState::SwD1 => {
                self.tx_valid.next = true;
                self.tx_eop.next = true;
                if self.sw_4dw.val() {
                    self.tx_data.next = (bit_cast::<64, 32>(self.sw_dw3.q.val()) << 32) | bit_cast::<64, 32>(self.sw_dw2.q.val());
                } else {
                    self.tx_keep.next = 1.into();
                    self.tx_data.next = bit_cast::<64, 32>(self.sw_dw3.q.val());
                }
                if self.tx_ready.val() {
                    self.state.d.next = WriteState::SwDone;
                }
            }
            WriteState::SwDone => {
                if self.sw_kind.q.val() == 0 {
                    self.od_valid.d.next = false;
                    self.record_written.next = true;
                    self.ev.next = self.ev.val() | self.k_ev_records.val();
                } else if self.sw_kind.q.val() == 1 {
                    self.oc_valid.d.next = false;
                    self.record_written.next = true;
                    self.ev.next = self.ev.val() | self.k_ev_records.val();
                }
                self.state.d.next = self.sw_ret.q.val();
            }
            WriteState::FlushOd => {
                // Write the open data record into the next ring slot; the
                // caller chose where to go next (sw_ret).
                self.sw_addr.d.next = self.slot_addr.val();
                self.sw_dw0.d.next = self.od_iova.q.val().get_bits::<32>(0);
                self.sw_dw1.d.next = self.od_iova.q.val().get_bits::<32>(32);
                self.sw_dw2.d.next = self.od_len.q.val();
                self.sw_dw3.d.next = bit_cast::<32, 8>(self.od_src.q.val())
                    | 0x100_u64
                    | (bit_cast::<32, 16>(self.wrec_prod.val().get_bits::<16>(0)) << 16);
                self.sw_one.d.next = false;
                self.sw_two.d.next = false;
                self.sw_be.d.next = 0xFF.into();
                self.sw_kind.d.next = 0.into();
                self.state.d.next = WriteState::SwH0;
            }
            WriteState::FlushOc => {
                self.sw_addr.d.next = self.slot_addr.val();
                self.sw_dw0.d.next = self.oc_iova.q.val().get_bits::<32>(0);
                self.sw_dw1.d.next = self.oc_iova.q.val().get_bits::<32>(32);
                self.sw_dw2.d.next = self.oc_len.q.val();
                self.sw_dw3.d.next = bit_cast::<32, 8>(self.oc_src.q.val())
                    | 0x100_u64
                    | (bit_cast::<32, 16>(self.wrec_prod.val().get_bits::<16>(0)) << 16);
                self.sw_one.d.next = false;
                self.sw_two.d.next = false;
                self.sw_be.d.next = 0xFF.into();
                self.sw_kind.d.next = 1.into();
                self.state.d.next = WriteState::SwH0;
            }
            WriteState::Finish => {
                self.head_inc.next = true;
                self.freed.d.next = self.j_end.q.val();
                self.err_clear.next = true;
                if self.status.q.val() == 0 {
                    self.ev.next = self.ev.val() | self.k_ev_desc_done.val();
                } else {
                    self.ev.next = self.ev.val() | self.k_ev_desc_error.val();
                }
                if self.cpl_since_irq.q.val() + 1 >= self.irq_coalesce.val() {
                    self.irq.next = true;
                    self.cpl_since_irq.d.next = 0.into();
                } else {
                    self.cpl_since_irq.d.next = self.cpl_since_irq.q.val() + 1;
                }
                self.state.d.next = WriteState::Idle;
            }
            WriteState::FlushDone => {
                self.flush_done.next = true;
                self.state.d.next = WriteState::Idle;
            }
            WriteState::VqFin => {
                // No completion entry: the virtqueue engine writes the used element.
                self.freed.d.next = self.j_end.q.val();
                self.err_clear.next = true;
                self.vq_sent.next = self.j_mode.q.val() == self.c_mode_tx.val();
                self.vq_rx_done.next = self.j_mode.q.val() == self.c_mode_rx.val();
                self.vq_failed.next = self.status.q.val() != 0;
                self.state.d.next = WriteState::Idle;
            }
            WriteState::VwPrep => {
                self.state.d.next = WriteState::VwSetup;
            }
            WriteState::VwSetup => {
                // As a completion entry: the write needs its record (kind virtq).
                if !self.rec_on.val() | self.oc_extends_q.q.val() | (!self.oc_valid.q.val() & self.has_space_q.q.val()) {
                    if self.rec_on.val() & self.oc_valid.q.val() {
                        self.oc_len.d.next = self.oc_len.q.val() + self.r_len.val();
                        self.ev.next = self.ev.val() | self.k_ev_coalesced.val();
                    } else if self.rec_on.val() {
                        self.oc_valid.d.next = true;
                        self.oc_iova.d.next = self.cpl_iova_q.q.val();
                        self.oc_len.d.next = self.r_len.val();
                        self.oc_src.d.next = self.r_src.val();
                    }
                    self.stall_count.d.next = 0.into();
                    self.sw_addr.d.next = self.vw_addr.val() & 0xFFFF_FFFF_FFFF_FFFC_u64;
                    if self.vw_two.val() {
                        self.sw_dw0.d.next = self.vw_data.val().get_bits::<32>(0);
                        self.sw_dw1.d.next = self.vw_data.val().get_bits::<32>(32);
                        self.sw_one.d.next = false;
                        self.sw_two.d.next = true;
                        self.sw_be.d.next = 0xFF.into();
                    } else {
                        self.sw_dw0.d.next = self.vw_data.val().get_bits::<32>(0) << (bit_cast::<5, 2>(self.vw_off.val()) << 3);
                        self.sw_one.d.next = true;
                        self.sw_two.d.next = false;
                        self.sw_be.d.next = (self.vw_mask.val() << self.vw_off.val()) & 0x0F;
                    }
                    self.sw_kind.d.next = 2.into();
                    self.sw_ret.d.next = WriteState::VwDrain;
                    self.state.d.next = WriteState::SwH0;
                } else if self.oc_valid.q.val() {
                    self.sw_ret.d.next = WriteState::VwPrep;
                    self.state.d.next = WriteState::FlushOc;
                } else {
                    self.stalling.next = true;
                }
            }
            WriteState::VwDrain => {
                if self.tx_drained.val() {
                    self.vw_ready.next = true;
                    self.state.d.next = WriteState::Idle;
                }
            }
            _ => {
                self.state.d.next = WriteState::Idle;
            }
        }
        // The last beat of a TLP went: the next one, if any, is set up in the
        // same cycle when its bytes are in and its record needs no flush
        // (the link carries writes back to back); else in WrSetup.
        if self.last_beat.val() {
            if self.w_start_q.q.val() == self.dend_q.q.val() {
                self.state.d.next = WriteState::CplPrep;
            } else if self.next_ok.q.val() {
                self.do_setup.next = true;
            } else {
                self.state.d.next = WriteState::WrSetup;
            }
        }
        // Set up the next write TLP (its geometry is in the g_* registers): the
        // header fields, where its data is, its write record.
        if self.do_setup.val() {
            self.t_addr.d.next = self.w_addr.q.val() & 0xFFFF_FFFF_FFFF_FFFC_u64;
            self.t_len_dw.d.next = self.g_len_dw.q.val();
            self.t_be.d.next = self.g_be.q.val();
            self.t_4dw.d.next = self.g_4dw.q.val();
            self.t_nbeats.d.next = self.g_nbeats.q.val();
            self.t_lastkeep.d.next = self.g_lastkeep.q.val();
            self.beat.d.next = 0.into();
            self.cur_pos.d.next = self.g_pos.q.val();
            if self.rec_on.val() & self.od_extends_q.q.val() {
                self.od_len.d.next = self.od_len.q.val() + self.g_bytes.q.val();
                self.od_end.d.next = self.g_next_addr.q.val();
                self.ev.next = self.ev.val() | self.k_ev_coalesced.val();
            } else if self.rec_on.val() {
                self.od_valid.d.next = true;
                self.od_iova.d.next = self.w_addr.q.val();
                self.od_len.d.next = self.g_bytes.q.val();
                self.od_end.d.next = self.g_next_addr.q.val();
                self.od_src.d.next = self.data_src.val();
                self.stall_count.d.next = 0.into();
            }
            self.w_start_q.d.next = self.g_end.q.val();
            self.w_addr.d.next = self.g_next_addr.q.val();
            self.state.d.next = WriteState::WrH0;
        }
        // (After a setup the geometry moves to the TLP after: not known yet.)
        // (Nor when a new job is taken: its geometry shows next cycle.)
        // (Nor while the g_* registers lag the geometry.)
        self.geo_moves.next = self.do_setup.val() | self.bj_take.val();
        self.next_ok.d.next =
            self.g_cur.q.val() & self.w_have.val() & !self.job_err.val() & self.rec_ok.val() & !self.geo_moves.val();
        self.have_q.d.next = self.g_cur.q.val() & self.w_have.val() & !self.geo_moves.val();
        self.cur_a.d.next = !self.geo_moves.val();
        self.cur_b.d.next = self.cur_a.q.val() & !self.geo_moves.val();
        self.g_cur.d.next = self.cur_b.q.val() & !self.geo_moves.val();
        // The geometry of the TLP at w_start_q in three register stages
        // (short adder chains: timing), three cycles behind, which g_cur
        // tracks (next_ok and have_q wait for it). A: where the TLP ends.
        self.a_start.d.next = self.w_start_q.q.val();
        self.a_end.d.next = self.w_end.val();
        self.a_4dw.d.next = self.w_4dw.val();
        // B: its length, bytes, byte enables, fill mark and buffer position.
        self.b_end.d.next = self.a_end.q.val();
        self.b_bytes.d.next = self.w_bytes.val();
        self.b_len_dw.d.next = self.w_len_dw.val();
        self.b_fbe.d.next = self.w_fbe.val();
        self.b_lbe.d.next = self.w_lbe.val();
        self.b_4dw.d.next = self.a_4dw.q.val();
        self.b_need.d.next = self.w_need.val();
        // Position of beat 0's lane 0 (header beats read don't-care
        // data): the first payload DW is lane 1 of beat 1 (3-DW header)
        // or lane 0 of beat 2 (4-DW header).
        self.w_pos.next =
            self.base.val() + bit_cast::<VPOS_BITS, 18>((self.a_start.q.val() & 0x3_FFFC_u64) - (self.dst_lo.val() & 0x3_FFF8_u64));
        self.b_pos.d.next = self.w_pos.val() - 16;
        if !self.a_4dw.q.val() {
            self.b_pos.d.next = self.w_pos.val() - 12;
        }
        // C: the TLP's header fields, beats and next address.
        self.g_end.d.next = self.b_end.q.val();
        self.g_bytes.d.next = self.b_bytes.q.val();
        self.g_next_addr.d.next = self.w_next_addr.val();
        self.g_len_dw.d.next = self.b_len_dw.q.val();
        self.g_be.d.next = (bit_cast::<8, 4>(self.c_lbe.val()) << 4) | bit_cast::<8, 4>(self.c_fbe.val());
        self.g_4dw.d.next = self.b_4dw.q.val();
        self.g_nbeats.d.next = bit_cast::<7, 11>((self.w_total_dw.val() + 1) >> 1);
        self.g_lastkeep.d.next = 3.into();
        if self.w_total_dw.val().get_bit(0) {
            self.g_lastkeep.d.next = 1.into();
        }
        self.g_pos.d.next = self.b_pos.q.val();
        self.g_need.d.next = self.b_need.q.val();
        // A write waiting for a record slot: count it, tell the host on the
        // first cycle (the ring needs draining), give up after the timeout.
        if self.stalling.val() {
            self.ev.next = self.ev.val() | self.k_ev_stall.val();
            self.stall_count.d.next = self.stall_count.q.val() + 1;
            if self.stall_count.q.val() == 0 {
                self.irq.next = true;
            }
            if self.stall_count.q.val() >= self.wrec_timeout.val() {
                self.overflow_set.next = true;
                self.stall_count.d.next = 0.into();
            }
        }
        self.events.next = self.ev.val();
        self.free_pos.next = self.freed.q.val();
        self.busy.next = self.state.q.val() != WriteState::Idle;
        if self.reset.val() {
            self.state.d.next = WriteState::Idle;
            self.od_valid.d.next = false;
            self.oc_valid.d.next = false;
            self.cpl_since_irq.d.next = 0.into();
            self.freed.d.next = 0.into();
        }
    }
}
