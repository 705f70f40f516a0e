//! The virtqueue engine's transmit stage: turns a transmitq's chain (the
//! chain fetcher's segments) into the read jobs of one frame. A chain's
//! buffers hold the 12-byte `virtio_net_hdr_v1` and then the frame, laid
//! out any way the driver likes (header alone in the first buffer, or with
//! the frame's start, or even split); the stage gathers the chain (up to
//! `TX_MAX_SEGS` buffers), so the frame's length is known before its first
//! byte is read (the network side wants it up front), then hands on one read
//! job per buffer with the header's bytes skipped, the frame's length and
//! the pair's tenant on the first.
//!
//! Each chain is done, in order, when its frame has been sent (`sent`, one
//! pulse a frame, in order) or at once when it is dropped: a chain with a
//! device-writable buffer, more than `TX_MAX_SEGS` buffers, no frame byte
//! after the header or a frame above `TX_MAX_FRAME` is dropped and counted
//! (`ev_drop`); its used element still goes out (length 0, as for every
//! transmit buffer), so the driver gets its buffers back. A chain the
//! fetcher aborted (a malformed ring: the queue is in error) is forgotten:
//! no used element, as `last_avail_idx` did not move for it.

use crate::konst;
use crate::regmap::virtq as vq;
use rust_hdl::prelude::*;
use smart_default::SmartDefault;

const _: () = assert!(
    vq::NUM_QUEUES == 8
        && vq::CFG_SEL_BITS == 3
        && vq::CTRL_TENANT_SHIFT == 12
        && vq::TX_MAX_SEGS == 32
        && vq::NET_HDR_BYTES == 12
);

/// Chains done or in flight that the stage remembers (sent frames and
/// drops wait here in order for their used element).
const DONE_SLOTS: usize = 8;

#[derive(Copy, Clone, PartialEq, Debug, LogicState)]
pub enum TxState {
    Gather,
    Decide,
    Read,
    Job,
}

#[derive(LogicBlock, SmartDefault)]
pub struct VirtqTxFrame {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    // ---- configuration (CFG_CTRL: the pair's tenant) ----
    pub cfg_we: Signal<In, Bit>,
    pub cfg_q: Signal<In, Bits<3>>,
    pub cfg_sel: Signal<In, Bits<3>>,
    pub cfg_data: Signal<In, Bits<64>>,
    // ---- segments of transmit chains ----
    pub seg_valid: Signal<In, Bit>,
    pub seg_ready: Signal<Out, Bit>,
    pub seg_q: Signal<In, Bits<3>>,
    pub seg_head: Signal<In, Bits<16>>,
    pub seg_addr: Signal<In, Bits<64>>,
    pub seg_len: Signal<In, Bits<32>>,
    pub seg_write: Signal<In, Bit>,
    pub seg_last: Signal<In, Bit>,
    pub seg_abort: Signal<In, Bit>,
    // ---- read jobs, a frame's in order ----
    pub job_valid: Signal<Out, Bit>,
    pub job_ready: Signal<In, Bit>,
    pub job_addr: Signal<Out, Bits<64>>,
    pub job_len: Signal<Out, Bits<14>>,
    pub job_first: Signal<Out, Bit>,
    pub job_last: Signal<Out, Bit>,
    /// With every job: the frame's length (after the header), its tenant
    /// and queue.
    pub frame_len: Signal<Out, Bits<14>>,
    pub frame_tenant: Signal<Out, Bits<4>>,
    pub frame_q: Signal<Out, Bits<3>>,
    /// A frame has left (in order).
    pub sent: Signal<In, Bit>,
    // ---- chains done, for the used ring ----
    pub done_valid: Signal<Out, Bit>,
    pub done_ready: Signal<In, Bit>,
    pub done_q: Signal<Out, Bits<3>>,
    pub done_head: Signal<Out, Bits<16>>,
    /// A chain was dropped (one cycle, for a counter).
    pub ev_drop: Signal<Out, Bit>,

    seg_addrs: RAM<Bits<64>, 5>,
    seg_lens: RAM<Bits<32>, 5>,
    tenants: [DFF<Bits<4>>; 8],
    state: DFF<TxState>,
    /// The chain being gathered: its queue, head, buffers, total bytes
    /// (38 bits: 32 buffers of up to 4 GiB), and what is wrong with it.
    c_q: DFF<Bits<3>>,
    c_head: DFF<Bits<16>>,
    c_n: DFF<Bits<6>>,
    c_total: DFF<Bits<38>>,
    c_bad: DFF<Bit>,
    /// Emitting: the buffer read, header bytes still to skip, first job.
    i: DFF<Bits<6>>,
    skip: DFF<Bits<32>>,
    first: DFF<Bit>,
    f_len: DFF<Bits<14>>,
    /// Frame bytes handed on in jobs so far.
    emitted: DFF<Bits<14>>,
    /// Done slots: {dropped, queue, head}, in order; `sent_owed` frames
    /// sent whose slot has not gone out yet.
    slots: [DFF<Bits<20>>; DONE_SLOTS],
    wr: DFF<Bits<4>>,
    rd: DFF<Bits<4>>,
    sent_owed: DFF<Bits<4>>,

    frame_bytes: Signal<Local, Bits<38>>,
    slot_push: Signal<Local, Bit>,
    slot_data: Signal<Local, Bits<20>>,
    slot_head: Signal<Local, Bits<20>>,
    slots_used: Signal<Local, Bits<4>>,
    pop: Signal<Local, Bit>,
    b_len: Signal<Local, Bits<32>>,
    rest: Signal<Local, Bits<32>>,

    #[default(konst(vq::CFG_CTRL))]
    c_cfg_ctrl: Constant<Bits<3>>,
    #[default(konst(vq::NET_HDR_BYTES as u64))]
    c_hdr: Constant<Bits<38>>,
    #[default(konst(vq::NET_HDR_BYTES as u64))]
    c_hdr32: Constant<Bits<32>>,
    #[default(konst(vq::TX_MAX_FRAME as u64))]
    c_max_frame: Constant<Bits<38>>,
    #[default(konst(vq::TX_MAX_SEGS as u64))]
    c_max_segs: Constant<Bits<6>>,
    #[default(konst(1 << 19))]
    c_drop_bit: Constant<Bits<20>>,
    #[default(konst(DONE_SLOTS as u64))]
    c_slots: Constant<Bits<4>>,
}

impl Logic for VirtqTxFrame {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, state, c_q, c_head, c_n, c_total, c_bad, i, skip, first, f_len, emitted, wr, rd, sent_owed);
        for k in 0..8 {
            self.tenants[k].clock.next = self.clock.val();
            self.tenants[k].d.next = self.tenants[k].q.val();
            self.slots[k].clock.next = self.clock.val();
            self.slots[k].d.next = self.slots[k].q.val();
        }
        self.seg_addrs.read_clock.next = self.clock.val();
        self.seg_addrs.write_clock.next = self.clock.val();
        self.seg_lens.read_clock.next = self.clock.val();
        self.seg_lens.write_clock.next = self.clock.val();
        self.seg_addrs.write_address.next = self.c_n.q.val().get_bits::<5>(0);
        self.seg_lens.write_address.next = self.c_n.q.val().get_bits::<5>(0);
        self.seg_addrs.write_data.next = self.seg_addr.val();
        self.seg_lens.write_data.next = self.seg_len.val();
        self.seg_addrs.write_enable.next = false;
        self.seg_lens.write_enable.next = false;
        self.seg_addrs.read_address.next = self.i.q.val().get_bits::<5>(0);
        self.seg_lens.read_address.next = self.i.q.val().get_bits::<5>(0);

        self.seg_ready.next = false;
        self.job_valid.next = false;
        self.job_addr.next = self.seg_addrs.read_data.val() + bit_cast::<64, 32>(self.skip.q.val());
        self.job_first.next = self.first.q.val();
        self.b_len.next = self.seg_lens.read_data.val();
        self.rest.next = self.b_len.val() - self.skip.q.val();
        // The last job ends the frame (zero-length buffers may follow it).
        self.job_last.next = (bit_cast::<32, 14>(self.emitted.q.val()) + self.rest.val()) == bit_cast::<32, 14>(self.f_len.q.val());
        self.frame_len.next = self.f_len.q.val();
        self.frame_q.next = self.c_q.q.val();
        self.frame_tenant.next = 0.into();
        for k in 0..8 {
            if self.c_q.q.val().index() == k {
                self.frame_tenant.next = self.tenants[k].q.val();
            }
        }
        self.ev_drop.next = false;
        self.slot_push.next = false;
        self.slot_data.next = (bit_cast::<20, 3>(self.c_q.q.val()) << 16) | bit_cast::<20, 16>(self.c_head.q.val());
        self.slots_used.next = self.wr.q.val() - self.rd.q.val();
        self.frame_bytes.next = self.c_total.q.val() - self.c_hdr.val();
        self.job_len.next = self.rest.val().get_bits::<14>(0);

        match self.state.q.val() {
            TxState::Gather => {
                self.seg_ready.next = true;
                if self.seg_valid.val() {
                    if self.first.q.val() {
                        self.c_q.d.next = self.seg_q.val();
                        self.c_head.d.next = self.seg_head.val();
                    }
                    self.first.d.next = false;
                    // Buffers past the limit are not kept; the chain is bad.
                    if self.c_n.q.val() < self.c_max_segs.val() {
                        self.seg_addrs.write_enable.next = true;
                        self.seg_lens.write_enable.next = true;
                        self.c_n.d.next = self.c_n.q.val() + 1;
                    } else {
                        self.c_bad.d.next = true;
                    }
                    self.c_total.d.next = self.c_total.q.val() + bit_cast::<38, 32>(self.seg_len.val());
                    if self.seg_write.val() {
                        self.c_bad.d.next = true;
                    }
                    if self.seg_last.val() {
                        self.state.d.next = TxState::Decide;
                        if self.seg_abort.val() {
                            // The fetcher gave up on the chain: forget it.
                            self.state.d.next = TxState::Gather;
                            self.first.d.next = true;
                            self.c_n.d.next = 0.into();
                            self.c_total.d.next = 0.into();
                            self.c_bad.d.next = false;
                        }
                    }
                }
            }
            TxState::Decide => {
                // A slot for the chain's used element is needed either way.
                if self.slots_used.val() != self.c_slots.val() {
                    self.slot_push.next = true;
                    self.i.d.next = 0.into();
                    self.skip.d.next = self.c_hdr32.val();
                    self.first.d.next = true;
                    self.f_len.d.next = self.frame_bytes.val().get_bits::<14>(0);
                    self.emitted.d.next = 0.into();
                    self.state.d.next = TxState::Read;
                    if self.c_bad.q.val()
                        | (self.c_total.q.val() <= self.c_hdr.val())
                        | (self.frame_bytes.val() > self.c_max_frame.val())
                    {
                        self.slot_data.next = self.slot_data.val() | self.c_drop_bit.val();
                        self.ev_drop.next = true;
                        self.state.d.next = TxState::Gather;
                        self.c_n.d.next = 0.into();
                        self.c_total.d.next = 0.into();
                        self.c_bad.d.next = false;
                    }
                }
            }
            TxState::Read => {
                // The buffer's address and length are read this cycle.
                self.state.d.next = TxState::Job;
            }
            TxState::Job => {
                if self.b_len.val() <= self.skip.q.val() {
                    // All header: no job, less to skip.
                    self.skip.d.next = self.skip.q.val() - self.b_len.val();
                    self.i.d.next = self.i.q.val() + 1;
                    self.seg_addrs.read_address.next = bit_cast::<5, 6>(self.i.q.val() + 1);
                    self.seg_lens.read_address.next = bit_cast::<5, 6>(self.i.q.val() + 1);
                    self.state.d.next = TxState::Read;
                } else {
                    self.job_valid.next = true;
                    if self.job_ready.val() {
                        self.first.d.next = false;
                        self.skip.d.next = 0.into();
                        self.emitted.d.next = self.emitted.q.val() + self.rest.val().get_bits::<14>(0);
                        self.i.d.next = self.i.q.val() + 1;
                        self.seg_addrs.read_address.next = bit_cast::<5, 6>(self.i.q.val() + 1);
                        self.seg_lens.read_address.next = bit_cast::<5, 6>(self.i.q.val() + 1);
                        self.state.d.next = TxState::Read;
                        if self.job_last.val() {
                            self.state.d.next = TxState::Gather;
                            self.first.d.next = true;
                            self.c_n.d.next = 0.into();
                            self.c_total.d.next = 0.into();
                            self.c_bad.d.next = false;
                        }
                    }
                }
            }
        }

        // ---- done slots, in order ----
        self.slot_head.next = 0.into();
        for k in 0..DONE_SLOTS {
            if self.rd.q.val().get_bits::<3>(0).index() == k {
                self.slot_head.next = self.slots[k].q.val();
            }
        }
        if self.slot_push.val() {
            for k in 0..DONE_SLOTS {
                if self.wr.q.val().get_bits::<3>(0).index() == k {
                    self.slots[k].d.next = self.slot_data.val();
                }
            }
            self.wr.d.next = self.wr.q.val() + 1;
        }
        self.done_q.next = self.slot_head.val().get_bits::<3>(16);
        self.done_head.next = self.slot_head.val().get_bits::<16>(0);
        // A dropped chain is done at once; a sent one when its frame left.
        self.done_valid.next = (self.slots_used.val() != 0) & (self.slot_head.val().get_bit(19) | (self.sent_owed.q.val() != 0));
        self.pop.next = self.done_valid.val() & self.done_ready.val();
        if self.pop.val() {
            self.rd.d.next = self.rd.q.val() + 1;
        }
        self.sent_owed.d.next = self.sent_owed.q.val();
        if self.sent.val() & !(self.pop.val() & !self.slot_head.val().get_bit(19)) {
            self.sent_owed.d.next = self.sent_owed.q.val() + 1;
        }
        if !self.sent.val() & self.pop.val() & !self.slot_head.val().get_bit(19) {
            self.sent_owed.d.next = self.sent_owed.q.val() - 1;
        }

        // ---- configuration ----
        for k in 0..8 {
            if self.cfg_we.val() & (self.cfg_q.val().index() == k) & (self.cfg_sel.val() == self.c_cfg_ctrl.val()) {
                self.tenants[k].d.next = self.cfg_data.val().get_bits::<4>(12);
            }
        }

        if self.reset.val() {
            self.state.d.next = TxState::Gather;
            self.first.d.next = true;
            self.c_n.d.next = 0.into();
            self.c_total.d.next = 0.into();
            self.c_bad.d.next = false;
            self.wr.d.next = 0.into();
            self.rd.d.next = 0.into();
            self.sent_owed.d.next = 0.into();
        }
    }
}
