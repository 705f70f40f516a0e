//! Front end of the DMA engine: picks the next piece of work (a queue with
//! a descriptor waiting, round robin, or a frame arriving from the network),
//! fetches the descriptor, checks it, gives the read engine its read job
//! and the back end its job, then goes on with the next descriptor while
//! the back end still writes the previous one's data.
//!
//! Descriptors of a queue are fetched ahead of its `head` (which the back
//! end advances when it completes one, in order): per queue the front end
//! counts the descriptors it has taken that are not completed yet.
//!
//! Receive frames (queues in `QMODE_RX`) are taken here: the frame's
//! beats go into the transfer buffer (when the completion sink is not
//! writing it) and the back end writes them into the receive buffer. A
//! frame nobody can take is dropped at once, so the network side is never
//! held up by a host that posts no buffers.
//!
//! Space in the transfer buffer is handed out in order (`alloc`) and given
//! back by the back end in the same order (`free_pos`).
//!
//! The virtqueue engine (`crate::virtq`) uses the front end twice. Its ring
//! reads (`vr_*`: `avail.idx`, ring entries, descriptors, `avail.flags`; 8 or
//! 16 bytes) go out as Memory Reads with the descriptor fetch's tag, first
//! in line when the front end is idle, and their DWs land in the descriptor
//! registers (a read of n bytes fills the last n/4: the sink places DWs by
//! the byte count left), from where they are answered in order (`vrsp_*`).
//! And a transmitq's frame (`vj_*`, one read job per buffer, the header
//! already skipped) gets its buffer space like a descriptor (the frame's
//! length, rounded up to whole beats), one read job per buffer at
//! consecutive positions under one job id, and a back-end job that sends
//! it (`bj_vq`: no completion entry; the back end tells the virtqueue
//! engine instead). Frames and DMA-queue descriptors take turns. A frame
//! from the network whose tenant a virtio pair takes (`vx_match`) goes into
//! that pair's next receive buffer (`vx_*`) instead of a DMA RX queue: the
//! 12-byte `virtio_net_hdr_v1` (`num_buffers` 1) is written into the
//! transfer buffer ahead of the frame, and the back end writes both into
//! guest memory; with no buffer, or one too small, the frame is dropped at
//! once (`vx_drop`) and written nowhere.

use super::cpl_sink::DESC_TAG;
use super::read::VPOS_BITS;
use super::regs::*;
use crate::byte_buffer::POS_BITS;
use crate::konst;
use crate::regmap::dma;
use rust_hdl::prelude::*;
use smart_default::SmartDefault;

#[derive(Copy, Clone, PartialEq, Debug, LogicState)]
pub enum FetchState {
    Idle,
    DescH0,
    DescH1,
    DescWait,
    Validate,
    Alloc,
    RxData,
    RxDrop,
    Push,
    /// A virtqueue ring read: the request's two beats, the wait for its
    /// completion, the answer's one or two beats.
    VrH0,
    VrH1,
    VrWait,
    VrRsp0,
    VrRsp1,
    /// A virtqueue frame's read jobs, one per buffer.
    VqSeg,
    /// A received frame for a virtio pair: the virtio-net header's two
    /// writes into the transfer buffer, ahead of the frame.
    VxHdr0,
    VxHdr1,
}

#[derive(LogicBlock, SmartDefault)]
pub struct DescFetch {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    // ---- the queues (dma_regs' front view) ----
    pub fq: Signal<Out, Bits<2>>,
    pub fq_ring_base: Signal<In, Bits<64>>,
    pub fq_head: Signal<In, Bits<12>>,
    pub fq_tail: Signal<In, Bits<12>>,
    pub fq_mask: Signal<In, Bits<12>>,
    pub fq_mode: Signal<In, Bits<2>>,
    pub fq_active: Signal<In, Bit>,
    /// The back end completed the descriptor at `head` of queue `head_inc_q`.
    pub head_inc: Signal<In, Bit>,
    pub head_inc_q: Signal<In, Bits<2>>,
    // ---- configuration ----
    pub requester_id: Signal<In, Bits<16>>,
    pub bus_master: Signal<In, Bit>,
    // ---- descriptor reads ----
    pub tx_data: Signal<Out, Bits<64>>,
    pub tx_keep: Signal<Out, Bits<2>>,
    pub tx_sop: Signal<Out, Bit>,
    pub tx_eop: Signal<Out, Bit>,
    pub tx_valid: Signal<Out, Bit>,
    pub tx_ready: Signal<In, Bit>,
    /// A descriptor read is outstanding (the sink accepts `DESC_TAG`).
    pub desc_active: Signal<Out, Bit>,
    pub desc_we0: Signal<In, Bit>,
    pub desc_idx0: Signal<In, Bits<3>>,
    pub desc_we1: Signal<In, Bit>,
    pub desc_idx1: Signal<In, Bits<3>>,
    pub desc_data: Signal<In, Bits<64>>,
    pub desc_retire: Signal<In, Bit>,
    pub desc_ok: Signal<In, Bit>,
    // ---- frames from the network ----
    pub nrx_data: Signal<In, Bits<64>>,
    pub nrx_bytes: Signal<In, Bits<4>>,
    pub nrx_last: Signal<In, Bit>,
    pub nrx_valid: Signal<In, Bit>,
    pub nrx_ready: Signal<Out, Bit>,
    pub nrx_queue: Signal<In, Bits<2>>,
    pub nrx_tenant: Signal<In, Bits<4>>,
    pub nrx_len: Signal<In, Bits<14>>,
    /// The sink writes the buffer this cycle (it has the write port).
    pub sink_writing: Signal<In, Bit>,
    pub buf_wr_en: Signal<Out, Bit>,
    pub buf_wr_pos: Signal<Out, Bits<POS_BITS>>,
    pub buf_wr_data: Signal<Out, Bits<64>>,
    pub buf_wr_mask: Signal<Out, Bits<8>>,
    // ---- the read engine ----
    pub rj_valid: Signal<Out, Bit>,
    pub rj_ready: Signal<In, Bit>,
    pub rj_src: Signal<Out, Bits<64>>,
    pub rj_len: Signal<Out, Bits<18>>,
    pub rj_pos0: Signal<Out, Bits<VPOS_BITS>>,
    pub rj_id: Signal<Out, Bits<2>>,
    // ---- the back end's job (held until taken) ----
    pub bj_valid: Signal<Out, Bit>,
    pub bj_take: Signal<In, Bit>,
    pub bj_q: Signal<Out, Bits<2>>,
    pub bj_mode: Signal<Out, Bits<2>>,
    pub bj_status: Signal<Out, Bits<16>>,
    /// Completion fields: cookie, byte count, tenant.
    pub bj_cookie: Signal<Out, Bits<64>>,
    pub bj_bytes: Signal<Out, Bits<32>>,
    pub bj_tenant: Signal<Out, Bits<4>>,
    pub bj_dst: Signal<Out, Bits<64>>,
    /// The job's data: byte 0's buffer position; the end of its buffer space.
    pub bj_pos0: Signal<Out, Bits<VPOS_BITS>>,
    pub bj_end: Signal<Out, Bits<VPOS_BITS>>,
    /// Its data came from the network (all in the buffer already).
    pub bj_local: Signal<Out, Bit>,
    pub bj_id: Signal<Out, Bits<2>>,
    /// The job is a virtqueue frame (sent, or received into a guest
    /// buffer, then reported to the engine), of queue `bj_vq_q`.
    pub bj_vq: Signal<Out, Bit>,
    pub bj_vq_q: Signal<Out, Bits<3>>,
    // ---- virtio pairs' receive buffers, looked up by the frame's tenant ----
    pub vx_match: Signal<In, Bit>,
    pub vx_valid: Signal<In, Bit>,
    pub vx_q: Signal<In, Bits<3>>,
    pub vx_addr: Signal<In, Bits<64>>,
    pub vx_len: Signal<In, Bits<32>>,
    pub vx_take: Signal<Out, Bit>,
    pub vx_take_bytes: Signal<Out, Bits<16>>,
    /// A frame for a pair dropped (no buffer, or too small).
    pub vx_drop: Signal<Out, Bit>,
    /// The back end gave buffer space back up to here.
    pub free_pos: Signal<In, Bits<VPOS_BITS>>,
    // ---- the virtqueue engine's ring reads (8 or 16 bytes, 8-aligned) ----
    pub vr_valid: Signal<In, Bit>,
    pub vr_ready: Signal<Out, Bit>,
    pub vr_addr: Signal<In, Bits<64>>,
    pub vr_qws: Signal<In, Bits<2>>,
    /// The answer: `vr_qws` beats in order, or one with `vrsp_err`.
    pub vrsp_valid: Signal<Out, Bit>,
    pub vrsp_data: Signal<Out, Bits<64>>,
    pub vrsp_err: Signal<Out, Bit>,
    // ---- the virtqueue engine's frames (a transmitq's read jobs) ----
    pub vj_valid: Signal<In, Bit>,
    pub vj_ready: Signal<Out, Bit>,
    pub vj_addr: Signal<In, Bits<64>>,
    pub vj_len: Signal<In, Bits<14>>,
    pub vj_last: Signal<In, Bit>,
    pub vj_frame_len: Signal<In, Bits<14>>,
    pub vj_tenant: Signal<In, Bits<4>>,
    // ---- status ----
    pub events: Signal<Out, Bits<NUM_EVENTS>>,
    pub idle: Signal<Out, Bit>,

    state: DFF<FetchState>,
    desc: [DFF<Bits<32>>; 8],
    rr: DFF<Bits<2>>,
    prefer_rx: DFF<Bit>,
    /// A virtqueue frame goes before the next DMA-queue descriptor.
    prefer_vq: DFF<Bit>,
    /// The work in progress is a virtqueue frame: its length and tenant,
    /// and where its next buffer's bytes go.
    vq_frame: DFF<Bit>,
    vq_len: DFF<Bits<14>>,
    vq_tenant: DFF<Bits<4>>,
    vq_pos: DFF<Bits<VPOS_BITS>>,
    /// The work in progress is a frame received for a virtio pair: its
    /// buffer's address and queue.
    vq_rx: DFF<Bit>,
    vq_dst: DFF<Bits<64>>,
    vq_q: DFF<Bits<3>>,
    vx_need: Signal<Local, Bits<32>>,
    /// The ring read in progress: 16 bytes (else 8).
    vr_two: DFF<Bit>,
    cur_q: DFF<Bits<2>>,
    mode: DFF<Bits<2>>,
    desc_addr: DFF<Bits<64>>,
    rd_error: DFF<Bit>,
    status: DFF<Bits<16>>,
    inflight: [DFF<Bits<3>>; NUM_QUEUES],
    rx_tenant: DFF<Bits<4>>,
    rx_len: DFF<Bits<14>>,
    rx_pos: DFF<Bits<VPOS_BITS>>,
    rx_cnt: DFF<Bits<15>>,
    rx_bad: DFF<Bit>,
    drop_to_cpl: DFF<Bit>,
    alloc: DFF<Bits<VPOS_BITS>>,
    pos0: DFF<Bits<VPOS_BITS>>,
    region_end: DFF<Bits<VPOS_BITS>>,
    next_id: DFF<Bits<2>>,
    // the job slot
    j_valid: DFF<Bit>,
    j_q: DFF<Bits<2>>,
    j_mode: DFF<Bits<2>>,
    j_status: DFF<Bits<16>>,
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

    ev: Signal<Local, Bits<NUM_EVENTS>>,
    q_inflight: Signal<Local, Bits<3>>,
    q_pending: Signal<Local, Bits<12>>,
    q_ok: Signal<Local, Bit>,
    fetch_idx: Signal<Local, Bits<12>>,
    take: Signal<Local, Bit>,
    len: Signal<Local, Bits<18>>,
    dst_low: Signal<Local, Bits<VPOS_BITS>>,
    need: Signal<Local, Bits<VPOS_BITS>>,
    /// Buffer bytes held once this job has its space (wraps at 20 bits).
    held: Signal<Local, Bits<VPOS_BITS>>,
    space_ok: Signal<Local, Bit>,
    /// The job's buffer need and the space check, registered (timing: the
    /// length, alignment and space adders are not behind one another or
    /// in front of the allocation). Alloc acts on them from its third
    /// cycle (`al1`, `al2`: the state was Alloc one and two cycles ago),
    /// when both reflect the job; space only grows meanwhile.
    need_q: DFF<Bits<VPOS_BITS>>,
    space_ok_q: DFF<Bit>,
    al1: DFF<Bit>,
    al2: DFF<Bit>,
    rx_mask: Signal<Local, Bits<8>>,
    rx_sum: Signal<Local, Bits<15>>,
    rx_beat_bad: Signal<Local, Bit>,
    tenant: Signal<Local, Bits<4>>,
    #[default(konst(dma::MAX_FRAME as u64))]
    c_max_frame: Constant<Bits<32>>,
    #[default(konst(dma::MAX_FRAME as u64))]
    c_max_frame14: Constant<Bits<14>>,
    #[default(konst(dma::MAX_TRANSFER as u64))]
    c_max_len: Constant<Bits<32>>,
    #[default(konst(dma::QMODE_TX as u64))]
    c_mode_tx: Constant<Bits<2>>,
    #[default(konst(dma::QMODE_RX as u64))]
    c_mode_rx: Constant<Bits<2>>,
    #[default(konst(dma::CPL_STATUS_BAD_LENGTH as u64))]
    c_st_bad_len: Constant<Bits<16>>,
    #[default(konst(dma::CPL_STATUS_DESC_ERROR as u64))]
    c_st_desc_err: Constant<Bits<16>>,
    #[default(konst(dma::CPL_STATUS_RX_TOO_LONG as u64))]
    c_st_rx_too_long: Constant<Bits<16>>,
    #[default(konst(DESC_TAG))]
    c_desc_tag: Constant<Bits<32>>,
    vr_hdr: Signal<Local, Bits<64>>,
    /// Transfer buffer size in bytes.
    #[default(konst(1 << POS_BITS))]
    c_buf_size: Constant<Bits<VPOS_BITS>>,
    #[default(konst(1 << EV_RX_FRAMES))]
    k_ev_rx_frames: Constant<Bits<NUM_EVENTS>>,
    #[default(konst(1 << EV_RX_NO_BUFFER))]
    k_ev_rx_no_buffer: Constant<Bits<NUM_EVENTS>>,
    #[default(konst(1 << EV_RX_TOO_LONG))]
    k_ev_rx_too_long: Constant<Bits<NUM_EVENTS>>,
    #[default(konst(1 << EV_RX_BAD_FRAME))]
    k_ev_rx_bad_frame: Constant<Bits<NUM_EVENTS>>,
}

impl Logic for DescFetch {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clock, state, rr, prefer_rx, cur_q, mode, desc_addr, rd_error, status, rx_tenant, rx_len, rx_pos,
            rx_cnt, rx_bad, drop_to_cpl, alloc, pos0, region_end, next_id, j_valid, j_q, j_mode, j_status, j_cookie,
            j_bytes, j_tenant, j_dst, j_pos0, j_end, j_local, j_id, need_q, space_ok_q, al1, al2, prefer_vq, vq_frame,
            vq_len, vq_tenant, vq_pos, vr_two, j_vq, vq_rx, vq_dst, vq_q, j_vq_q
        );
        for i in 0..8 {
            self.desc[i].clock.next = self.clock.val();
            self.desc[i].d.next = self.desc[i].q.val();
        }
        self.ev.next = 0.into();

        // ---- descriptor DWs from the sink ----
        for i in 0..8 {
            if self.desc_we0.val() & (self.desc_idx0.val().index() == i) {
                self.desc[i].d.next = self.desc_data.val().get_bits::<32>(0);
            }
            if self.desc_we1.val() & (self.desc_idx1.val().index() == i) {
                self.desc[i].d.next = self.desc_data.val().get_bits::<32>(32);
            }
        }

        // ---- the queue looked at: the candidate while idle, else the one taken ----
        self.fq.next = self.cur_q.q.val();
        if self.state.q.val() == FetchState::Idle {
            self.fq.next = self.rr.q.val();
            if self.nrx_valid.val() & self.prefer_rx.q.val() {
                self.fq.next = self.nrx_queue.val();
            }
        }
        self.q_inflight.next = 0.into();
        for q in 0..NUM_QUEUES {
            self.inflight[q].clock.next = self.clock.val();
            self.inflight[q].d.next = self.inflight[q].q.val();
            if self.fq.val().index() == q {
                self.q_inflight.next = self.inflight[q].q.val();
            }
        }
        self.q_pending.next = (self.fq_tail.val() - self.fq_head.val()) & self.fq_mask.val();
        self.q_ok.next = self.fq_active.val() & (self.q_pending.val() > bit_cast::<12, 3>(self.q_inflight.val()));
        self.fetch_idx.next = (self.fq_head.val() + bit_cast::<12, 3>(self.q_inflight.val())) & self.fq_mask.val();
        self.take.next = false;

        // ---- descriptor fields and buffer space ----
        self.len.next = self.desc[4].q.val().get_bits::<18>(0);
        if self.mode.q.val() == self.c_mode_rx.val() {
            self.len.next = bit_cast::<18, 14>(self.rx_len.q.val());
        }
        if self.vq_frame.q.val() {
            self.len.next = bit_cast::<18, 14>(self.vq_len.q.val());
        }
        if self.vq_rx.q.val() {
            // The virtio-net header, then the frame.
            self.len.next = bit_cast::<18, 14>(self.rx_len.q.val()) + 12;
        }
        self.dst_low.next = bit_cast::<VPOS_BITS, 3>(self.desc[2].q.val().get_bits::<3>(0));
        if self.vq_frame.q.val() {
            // A frame starts on a beat: the back end sends it from there.
            self.dst_low.next = 0.into();
        }
        if self.vq_rx.q.val() {
            self.dst_low.next = bit_cast::<VPOS_BITS, 3>(self.vq_dst.q.val().get_bits::<3>(0));
        }
        // Byte k of the job at alloc + dst[2:0] + k: the buffer has the
        // destination's alignment, so writes read whole beats.
        self.need.next = (self.dst_low.val() + bit_cast::<VPOS_BITS, 18>(self.len.val()) + 7) & 0xF_FFF8_u64;
        if self.mode.q.val() == self.c_mode_rx.val() {
            // A frame's last beat that starts inside its announced length
            // may run up to 7 bytes past it: room for that.
            self.need.next = ((self.dst_low.val() + bit_cast::<VPOS_BITS, 18>(self.len.val()) + 7) & 0xF_FFF8_u64) + 8;
        }
        self.need_q.d.next = self.need.val();
        self.held.next = self.alloc.q.val() + self.need_q.q.val() - self.free_pos.val();
        self.space_ok.next = self.held.val() <= self.c_buf_size.val();
        self.space_ok_q.d.next = self.space_ok.val();
        self.al1.d.next = self.state.q.val() == FetchState::Alloc;
        self.al2.d.next = self.al1.q.val() & (self.state.q.val() == FetchState::Alloc);
        self.tenant.next = 0.into();
        if self.mode.q.val() == self.c_mode_tx.val() {
            self.tenant.next = self.desc[5].q.val().get_bits::<4>(0);
        } else if self.mode.q.val() == self.c_mode_rx.val() {
            self.tenant.next = self.rx_tenant.q.val();
        }
        if self.vq_frame.q.val() {
            self.tenant.next = self.vq_tenant.q.val();
        }

        // ---- frames ----
        self.nrx_ready.next = false;
        self.rx_mask.next = (bit_cast::<8, 1>(1.into()) << self.nrx_bytes.val()) - 1;
        if self.nrx_bytes.val() >= 8 {
            self.rx_mask.next = 0xFF.into();
        }
        self.rx_sum.next = self.rx_cnt.q.val() + bit_cast::<15, 4>(self.nrx_bytes.val());
        // Only the last beat may be partial, and no beat is empty or over 8.
        self.rx_beat_bad.next = (self.nrx_bytes.val() == 0)
            | (self.nrx_bytes.val() > 8)
            | (!self.nrx_last.val() & (self.nrx_bytes.val() != 8));
        self.buf_wr_en.next = false;
        self.buf_wr_pos.next = self.rx_pos.q.val().get_bits::<POS_BITS>(0);
        self.buf_wr_data.next = self.nrx_data.val();
        self.buf_wr_mask.next = self.rx_mask.val();

        // ---- requests ----
        self.tx_valid.next = false;
        self.tx_sop.next = false;
        self.tx_eop.next = false;
        self.tx_keep.next = 3.into();
        self.tx_data.next = 0.into();
        self.rj_valid.next = false;
        self.rj_src.next = (bit_cast::<64, 32>(self.desc[1].q.val()) << 32) | bit_cast::<64, 32>(self.desc[0].q.val());
        self.rj_len.next = self.desc[4].q.val().get_bits::<18>(0);
        self.rj_pos0.next = self.alloc.q.val() + self.dst_low.val();
        self.rj_id.next = self.next_id.q.val();
        self.desc_active.next = false;
        self.vr_ready.next = false;
        self.vrsp_valid.next = false;
        self.vrsp_err.next = false;
        self.vrsp_data.next = (bit_cast::<64, 32>(self.desc[7].q.val()) << 32) | bit_cast::<64, 32>(self.desc[6].q.val());
        self.vj_ready.next = false;
        self.vx_take.next = false;
        self.vx_drop.next = false;
        self.vx_need.next = bit_cast::<32, 14>(self.nrx_len.val()) + 12;
        self.vx_take_bytes.next = self.vx_need.val().get_bits::<16>(0);
        // A ring read: MRd of 2 or 4 DWs, all bytes; 4-DW header above 4 GiB.
        self.vr_hdr.next = (bit_cast::<64, 32>(
            (bit_cast::<32, 16>(self.requester_id.val()) << 16) | (self.c_desc_tag.val() << 8) | 0xFF_u64,
        ) << 32)
            | 0x0000_0002_u64;
        if self.vr_two.q.val() {
            self.vr_hdr.next = (bit_cast::<64, 32>(
                (bit_cast::<32, 16>(self.requester_id.val()) << 16) | (self.c_desc_tag.val() << 8) | 0xFF_u64,
            ) << 32)
                | 0x0000_0004_u64;
        }
        if self.desc_addr.q.val().get_bits::<32>(32).any() {
            self.vr_hdr.next = self.vr_hdr.val() | 0x2000_0000_u64;
        }

        match self.state.q.val() {
            FetchState::Idle => {
                self.vq_frame.d.next = false;
                self.vq_rx.d.next = false;
                if self.vr_valid.val() & self.bus_master.val() {
                    // A virtqueue ring read (short, and the engine waits on it).
                    self.vr_ready.next = true;
                    self.desc_addr.d.next = self.vr_addr.val() & 0xFFFF_FFFF_FFFF_FFF8_u64;
                    self.vr_two.d.next = self.vr_qws.val() == 2;
                    self.state.d.next = FetchState::VrH0;
                } else if self.nrx_valid.val() & self.prefer_rx.q.val() {
                    // A frame waits (its first beat's sideband is on the port).
                    self.prefer_rx.d.next = false;
                    self.cur_q.d.next = self.nrx_queue.val();
                    self.mode.d.next = self.c_mode_rx.val();
                    self.rx_tenant.d.next = self.nrx_tenant.val();
                    self.rx_len.d.next = self.nrx_len.val();
                    self.drop_to_cpl.d.next = false;
                    if (self.nrx_len.val() == 0) | (self.nrx_len.val() > self.c_max_frame14.val()) {
                        self.ev.next = self.ev.val() | self.k_ev_rx_bad_frame.val();
                        self.vx_drop.next = self.vx_match.val();
                        self.state.d.next = FetchState::RxDrop;
                    } else if self.vx_match.val() {
                        // A virtio pair takes this tenant's frames.
                        if self.bus_master.val() & self.vx_valid.val() & (self.vx_need.val() <= self.vx_len.val()) {
                            self.vx_take.next = true;
                            self.vq_rx.d.next = true;
                            self.vq_dst.d.next = self.vx_addr.val();
                            self.vq_q.d.next = self.vx_q.val();
                            self.status.d.next = 0.into();
                            self.rd_error.d.next = false;
                            self.state.d.next = FetchState::Alloc;
                        } else {
                            self.vx_drop.next = true;
                            self.state.d.next = FetchState::RxDrop;
                        }
                    } else if self.bus_master.val() & self.q_ok.val() & (self.fq_mode.val() == self.c_mode_rx.val()) {
                        self.take.next = true;
                    } else {
                        self.ev.next = self.ev.val() | self.k_ev_rx_no_buffer.val();
                        self.state.d.next = FetchState::RxDrop;
                    }
                } else if self.vj_valid.val()
                    & self.bus_master.val()
                    & (self.prefer_vq.q.val() | !(self.q_ok.val() & (self.fq_mode.val() != self.c_mode_rx.val())))
                {
                    // A virtqueue frame (its first buffer's job is on the port).
                    self.prefer_vq.d.next = false;
                    if self.nrx_valid.val() {
                        self.prefer_rx.d.next = true;
                    }
                    self.vq_frame.d.next = true;
                    self.vq_len.d.next = self.vj_frame_len.val();
                    self.vq_tenant.d.next = self.vj_tenant.val();
                    self.mode.d.next = self.c_mode_tx.val();
                    self.status.d.next = 0.into();
                    self.rd_error.d.next = false;
                    self.state.d.next = FetchState::Alloc;
                } else if self.bus_master.val() & self.q_ok.val() & (self.fq_mode.val() != self.c_mode_rx.val()) {
                    // RX and the other queues take turns (and virtqueue frames).
                    self.prefer_rx.d.next = true;
                    self.prefer_vq.d.next = true;
                    self.cur_q.d.next = self.rr.q.val();
                    self.mode.d.next = self.fq_mode.val();
                    self.rr.d.next = self.rr.q.val() + 1;
                    self.take.next = true;
                } else {
                    self.rr.d.next = self.rr.q.val() + 1;
                    if self.nrx_valid.val() {
                        self.prefer_rx.d.next = true;
                    }
                }
                if self.take.val() {
                    self.desc_addr.d.next = self.fq_ring_base.val() + (bit_cast::<64, 12>(self.fetch_idx.val()) << 5);
                    self.state.d.next = FetchState::DescH0;
                }
            }
            FetchState::DescH0 => {
                self.tx_valid.next = true;
                self.tx_sop.next = true;
                // MRd of 8 DWs, all bytes; 4-DW header above 4 GiB.
                self.tx_data.next = (bit_cast::<64, 32>(
                    (bit_cast::<32, 16>(self.requester_id.val()) << 16) | (self.c_desc_tag.val() << 8) | 0xFF_u64,
                ) << 32)
                    | 0x0000_0008_u64;
                if self.desc_addr.q.val().get_bits::<32>(32).any() {
                    self.tx_data.next = (bit_cast::<64, 32>(
                        (bit_cast::<32, 16>(self.requester_id.val()) << 16) | (self.c_desc_tag.val() << 8) | 0xFF_u64,
                    ) << 32)
                        | 0x2000_0008_u64;
                }
                if self.tx_ready.val() {
                    self.state.d.next = FetchState::DescH1;
                }
            }
            FetchState::DescH1 => {
                self.tx_valid.next = true;
                self.tx_eop.next = true;
                self.desc_active.next = true;
                if self.desc_addr.q.val().get_bits::<32>(32).any() {
                    self.tx_data.next = (bit_cast::<64, 32>(self.desc_addr.q.val().get_bits::<32>(0)) << 32)
                        | bit_cast::<64, 32>(self.desc_addr.q.val().get_bits::<32>(32));
                } else {
                    self.tx_keep.next = 1.into();
                    self.tx_data.next = bit_cast::<64, 32>(self.desc_addr.q.val().get_bits::<32>(0));
                }
                if self.tx_ready.val() {
                    self.state.d.next = FetchState::DescWait;
                }
            }
            FetchState::DescWait => {
                self.desc_active.next = true;
                if self.desc_retire.val() {
                    self.rd_error.d.next = !self.desc_ok.val();
                    self.state.d.next = FetchState::Validate;
                }
            }
            FetchState::Validate => {
                self.status.d.next = 0.into();
                if self.mode.q.val() == self.c_mode_rx.val() {
                    // A receive buffer: the frame's length is what gets
                    // written and reported.
                    self.drop_to_cpl.d.next = true;
                    self.desc[4].d.next = bit_cast::<32, 14>(self.rx_len.q.val());
                    if self.rd_error.q.val() {
                        self.status.d.next = self.c_st_desc_err.val();
                        self.ev.next = self.ev.val() | self.k_ev_rx_no_buffer.val();
                        self.state.d.next = FetchState::RxDrop;
                    } else if bit_cast::<32, 14>(self.rx_len.q.val()) > self.desc[4].q.val() {
                        self.status.d.next = self.c_st_rx_too_long.val();
                        self.ev.next = self.ev.val() | self.k_ev_rx_too_long.val();
                        self.state.d.next = FetchState::RxDrop;
                    } else {
                        self.state.d.next = FetchState::Alloc;
                    }
                } else if self.rd_error.q.val() {
                    self.status.d.next = self.c_st_desc_err.val();
                    self.state.d.next = FetchState::Push;
                } else if (self.desc[4].q.val() == 0)
                    | (self.desc[4].q.val() > self.c_max_len.val())
                    | ((self.mode.q.val() == self.c_mode_tx.val()) & (self.desc[4].q.val() > self.c_max_frame.val()))
                {
                    self.status.d.next = self.c_st_bad_len.val();
                    self.state.d.next = FetchState::Push;
                } else {
                    self.state.d.next = FetchState::Alloc;
                }
            }
            FetchState::Alloc => {
                // Buffer space and the read engine; the back end's slot may
                // still hold the previous job (three jobs in flight: one
                // written, one waiting, this one read).
                if self.al2.q.val() & self.space_ok_q.q.val() {
                    if self.mode.q.val() == self.c_mode_rx.val() {
                        self.pos0.d.next = self.alloc.q.val() + self.dst_low.val();
                        self.rx_pos.d.next = self.alloc.q.val() + self.dst_low.val();
                        self.rx_cnt.d.next = 0.into();
                        self.rx_bad.d.next = false;
                        self.region_end.d.next = self.alloc.q.val() + self.need_q.q.val();
                        self.alloc.d.next = self.alloc.q.val() + self.need_q.q.val();
                        self.state.d.next = FetchState::RxData;
                        if self.vq_rx.q.val() {
                            // The frame goes after the header.
                            self.rx_pos.d.next = self.alloc.q.val() + self.dst_low.val() + 12;
                            self.state.d.next = FetchState::VxHdr0;
                        }
                    } else if self.vq_frame.q.val() {
                        self.pos0.d.next = self.alloc.q.val();
                        self.vq_pos.d.next = self.alloc.q.val();
                        self.region_end.d.next = self.alloc.q.val() + self.need_q.q.val();
                        self.alloc.d.next = self.alloc.q.val() + self.need_q.q.val();
                        self.state.d.next = FetchState::VqSeg;
                    } else if self.rj_ready.val() {
                        self.rj_valid.next = true;
                        self.pos0.d.next = self.alloc.q.val() + self.dst_low.val();
                        self.region_end.d.next = self.alloc.q.val() + self.need_q.q.val();
                        self.alloc.d.next = self.alloc.q.val() + self.need_q.q.val();
                        self.state.d.next = FetchState::Push;
                    }
                }
            }
            FetchState::RxData => {
                self.nrx_ready.next = !self.sink_writing.val();
                if self.nrx_valid.val() & !self.sink_writing.val() {
                    // Only beats that start inside the announced length are
                    // written: a runaway frame never leaves its own space.
                    self.buf_wr_en.next = self.rx_cnt.q.val() < bit_cast::<15, 14>(self.rx_len.q.val());
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
                        if self.rx_bad.q.val()
                            | self.rx_beat_bad.val()
                            | (self.rx_sum.val() != bit_cast::<15, 14>(self.rx_len.q.val()))
                        {
                            self.status.d.next = self.c_st_bad_len.val();
                            self.ev.next = self.ev.val() | self.k_ev_rx_bad_frame.val();
                        } else {
                            self.ev.next = self.ev.val() | self.k_ev_rx_frames.val();
                        }
                        self.state.d.next = FetchState::Push;
                    }
                }
            }
            FetchState::VqSeg => {
                // One read job per buffer, its bytes right after the last's.
                self.rj_src.next = self.vj_addr.val();
                self.rj_len.next = bit_cast::<18, 14>(self.vj_len.val());
                self.rj_pos0.next = self.vq_pos.q.val();
                if self.vj_valid.val() & self.rj_ready.val() {
                    self.rj_valid.next = true;
                    self.vj_ready.next = true;
                    self.vq_pos.d.next = self.vq_pos.q.val() + bit_cast::<VPOS_BITS, 14>(self.vj_len.val());
                    if self.vj_last.val() {
                        self.state.d.next = FetchState::Push;
                    }
                }
            }
            FetchState::VxHdr0 => {
                // virtio_net_hdr_v1: flags, gso_type, hdr_len, gso_size,
                // csum_start, csum_offset all 0 (no offloads), num_buffers 1.
                self.buf_wr_pos.next = self.pos0.q.val().get_bits::<POS_BITS>(0);
                self.buf_wr_data.next = 0.into();
                self.buf_wr_mask.next = 0xFF.into();
                if !self.sink_writing.val() {
                    self.buf_wr_en.next = true;
                    self.state.d.next = FetchState::VxHdr1;
                }
            }
            FetchState::VxHdr1 => {
                self.buf_wr_pos.next = bit_cast::<POS_BITS, VPOS_BITS>(self.pos0.q.val() + 8);
                self.buf_wr_data.next = 0x0001_0000_u64.into();
                self.buf_wr_mask.next = 0x0F.into();
                if !self.sink_writing.val() {
                    self.buf_wr_en.next = true;
                    self.state.d.next = FetchState::RxData;
                }
            }
            FetchState::VrH0 => {
                self.tx_valid.next = true;
                self.tx_sop.next = true;
                self.tx_data.next = self.vr_hdr.val();
                if self.tx_ready.val() {
                    self.state.d.next = FetchState::VrH1;
                }
            }
            FetchState::VrH1 => {
                self.tx_valid.next = true;
                self.tx_eop.next = true;
                self.desc_active.next = true;
                if self.desc_addr.q.val().get_bits::<32>(32).any() {
                    self.tx_data.next = (bit_cast::<64, 32>(self.desc_addr.q.val().get_bits::<32>(0)) << 32)
                        | bit_cast::<64, 32>(self.desc_addr.q.val().get_bits::<32>(32));
                } else {
                    self.tx_keep.next = 1.into();
                    self.tx_data.next = bit_cast::<64, 32>(self.desc_addr.q.val().get_bits::<32>(0));
                }
                if self.tx_ready.val() {
                    self.state.d.next = FetchState::VrWait;
                }
            }
            FetchState::VrWait => {
                self.desc_active.next = true;
                if self.desc_retire.val() {
                    self.rd_error.d.next = !self.desc_ok.val();
                    self.state.d.next = FetchState::VrRsp0;
                }
            }
            FetchState::VrRsp0 => {
                // n bytes landed in the last n/4 descriptor DWs.
                self.vrsp_valid.next = true;
                self.vrsp_err.next = self.rd_error.q.val();
                self.state.d.next = FetchState::Idle;
                if self.vr_two.q.val() {
                    self.vrsp_data.next = (bit_cast::<64, 32>(self.desc[5].q.val()) << 32) | bit_cast::<64, 32>(self.desc[4].q.val());
                    if !self.rd_error.q.val() {
                        self.state.d.next = FetchState::VrRsp1;
                    }
                }
            }
            FetchState::VrRsp1 => {
                self.vrsp_valid.next = true;
                self.state.d.next = FetchState::Idle;
            }
            FetchState::RxDrop => {
                // Consume the frame's beats; complete the descriptor if one was taken.
                self.nrx_ready.next = true;
                if self.nrx_valid.val() & self.nrx_last.val() {
                    if self.drop_to_cpl.q.val() {
                        self.state.d.next = FetchState::Push;
                    } else {
                        self.state.d.next = FetchState::Idle;
                    }
                }
            }
            FetchState::Push => {
                if !self.j_valid.q.val() {
                    self.j_valid.d.next = true;
                    self.j_q.d.next = self.cur_q.q.val();
                    self.j_mode.d.next = self.mode.q.val();
                    self.j_status.d.next = self.status.q.val();
                    self.j_cookie.d.next =
                        (bit_cast::<64, 32>(self.desc[7].q.val()) << 32) | bit_cast::<64, 32>(self.desc[6].q.val());
                    self.j_bytes.d.next = self.desc[4].q.val();
                    self.j_tenant.d.next = self.tenant.val();
                    self.j_dst.d.next =
                        (bit_cast::<64, 32>(self.desc[3].q.val()) << 32) | bit_cast::<64, 32>(self.desc[2].q.val());
                    self.j_pos0.d.next = self.pos0.q.val();
                    self.j_end.d.next = self.region_end.q.val();
                    self.j_local.d.next = self.mode.q.val() == self.c_mode_rx.val();
                    self.j_id.d.next = self.next_id.q.val();
                    self.j_vq.d.next = self.vq_frame.q.val() | self.vq_rx.q.val();
                    self.j_vq_q.d.next = self.vq_q.q.val();
                    if self.vq_frame.q.val() {
                        self.j_bytes.d.next = bit_cast::<32, 14>(self.vq_len.q.val());
                    }
                    if self.vq_rx.q.val() {
                        self.j_bytes.d.next = bit_cast::<32, 14>(self.rx_len.q.val()) + 12;
                        self.j_dst.d.next = self.vq_dst.q.val();
                    }
                    self.next_id.d.next = self.next_id.q.val() + 1;
                    if self.status.q.val() != 0 {
                        // No data: its (empty) space ends where the last
                        // job's does, so giving it back moves nothing.
                        self.j_pos0.d.next = self.alloc.q.val();
                        self.j_end.d.next = self.alloc.q.val();
                        if self.rd_error.q.val() {
                            // An unreadable descriptor: its cookie is unknown.
                            self.j_cookie.d.next = 0.into();
                        }
                    }
                    self.state.d.next = FetchState::Idle;
                }
            }
            _ => {
                self.state.d.next = FetchState::Idle;
            }
        }
        if self.bj_take.val() {
            self.j_valid.d.next = false;
        }

        // ---- descriptors taken and not yet completed, per queue ----
        for q in 0..NUM_QUEUES {
            if self.take.val() & (self.fq.val().index() == q) & !(self.head_inc.val() & (self.head_inc_q.val().index() == q)) {
                self.inflight[q].d.next = self.inflight[q].q.val() + 1;
            } else if !(self.take.val() & (self.fq.val().index() == q)) & self.head_inc.val() & (self.head_inc_q.val().index() == q) {
                self.inflight[q].d.next = self.inflight[q].q.val() - 1;
            }
        }

        self.bj_valid.next = self.j_valid.q.val();
        self.bj_q.next = self.j_q.q.val();
        self.bj_mode.next = self.j_mode.q.val();
        self.bj_status.next = self.j_status.q.val();
        self.bj_cookie.next = self.j_cookie.q.val();
        self.bj_bytes.next = self.j_bytes.q.val();
        self.bj_tenant.next = self.j_tenant.q.val();
        self.bj_dst.next = self.j_dst.q.val();
        self.bj_pos0.next = self.j_pos0.q.val();
        self.bj_end.next = self.j_end.q.val();
        self.bj_local.next = self.j_local.q.val();
        self.bj_id.next = self.j_id.q.val();
        self.bj_vq.next = self.j_vq.q.val();
        self.bj_vq_q.next = self.j_vq_q.q.val();
        self.events.next = self.ev.val();
        self.idle.next = (self.state.q.val() == FetchState::Idle) & !self.j_valid.q.val();
        if self.reset.val() {
            self.state.d.next = FetchState::Idle;
            self.prefer_rx.d.next = false;
            self.prefer_vq.d.next = false;
            self.vq_frame.d.next = false;
            self.vq_rx.d.next = false;
            self.j_valid.d.next = false;
            self.alloc.d.next = 0.into();
            self.next_id.d.next = 0.into();
            for q in 0..NUM_QUEUES {
                self.inflight[q].d.next = 0.into();
            }
        }
    }
}
