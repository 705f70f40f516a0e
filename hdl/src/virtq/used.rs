//! The virtqueue engine's used-ring writer: when a chain is done (a frame
//! sent from it, or received into it) the next stage reports `done` (queue,
//! head, bytes written into the chain); this block writes the used element
//! `{id, len}` at `used.ring[used_idx % size]`, and when no further done
//! chain of the same queue follows at once, publishes `used.idx` (so a
//! burst of completions costs one index write), then reads `avail.flags`
//! and raises the queue's interrupt unless the driver set
//! `VIRTQ_AVAIL_F_NO_INTERRUPT` (virtio 1.x 2.7.10: the device checks the
//! flag after updating the index; the read follows the posted index write,
//! which PCIe does not let it pass).
//!
//! Writes go out on a small write port (`wr_addr`, `wr_bytes` 1..8 bytes of
//! `wr_data` from its low byte), which the DMA back end turns into Memory
//! Writes with their write records, so the used ring's pages reach the
//! dirty log like the frames do. Reads use the same read port as the chain
//! fetcher (one 8-byte word, `rsp_err` on a failed read: no interrupt,
//! counted).

use crate::konst;
use crate::regmap::virtq as vq;
use rust_hdl::prelude::*;
use smart_default::SmartDefault;

const _: () = assert!(
    vq::NUM_QUEUES == 8
        && vq::CFG_SEL_BITS == 3
        && vq::CTRL_SIZE_LOG2_MASK == 0xF
        && vq::CTRL_RESET == 1 << 9
        && vq::USED_ELEM_BYTES == 8
        && vq::AVAIL_F_NO_INTERRUPT == 1
);

#[derive(Copy, Clone, PartialEq, Debug, LogicState)]
pub enum UsedState {
    Idle,
    Base,
    Elem,
    Next,
    Index,
    FlagsRead,
    FlagsWait,
}

#[derive(LogicBlock, SmartDefault)]
pub struct VirtqUsed {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    // ---- configuration (regmap::virtq::CFG_*: AVAIL, CTRL, USED, USED_IDX) ----
    pub cfg_we: Signal<In, Bit>,
    pub cfg_q: Signal<In, Bits<3>>,
    pub cfg_sel: Signal<In, Bits<3>>,
    pub cfg_data: Signal<In, Bits<64>>,
    // ---- chains done ----
    pub done_valid: Signal<In, Bit>,
    pub done_ready: Signal<Out, Bit>,
    pub done_q: Signal<In, Bits<3>>,
    pub done_head: Signal<In, Bits<16>>,
    pub done_len: Signal<In, Bits<32>>,
    // ---- status of queue `st_q` ----
    pub st_q: Signal<In, Bits<3>>,
    pub st_used_idx: Signal<Out, Bits<16>>,
    // ---- writes ----
    pub wr_valid: Signal<Out, Bit>,
    pub wr_ready: Signal<In, Bit>,
    pub wr_addr: Signal<Out, Bits<64>>,
    pub wr_data: Signal<Out, Bits<64>>,
    pub wr_bytes: Signal<Out, Bits<4>>,
    // ---- reads ----
    pub rd_valid: Signal<Out, Bit>,
    pub rd_ready: Signal<In, Bit>,
    pub rd_addr: Signal<Out, Bits<64>>,
    pub rsp_valid: Signal<In, Bit>,
    pub rsp_data: Signal<In, Bits<64>>,
    pub rsp_err: Signal<In, Bit>,
    // ---- interrupts ----
    /// The queue's interrupt (MSI vector `irq_q`), one cycle.
    pub irq: Signal<Out, Bit>,
    pub irq_q: Signal<Out, Bits<3>>,
    /// Interrupts the driver suppressed, and flag reads that failed (one
    /// cycle each, for counters).
    pub ev_suppressed: Signal<Out, Bit>,
    pub ev_read_error: Signal<Out, Bit>,

    /// Ring bases: address {queue, 0 available ring / 1 used ring}.
    bases: RAM<Bits<64>, 4>,
    used_idx: [DFF<Bits<16>>; 8],
    size_log2: [DFF<Bits<4>>; 8],
    state: DFF<UsedState>,
    qn: DFF<Bits<3>>,
    head: DFF<Bits<16>>,
    len: DFF<Bits<32>>,
    idx: DFF<Bits<16>>,
    mask: DFF<Bits<16>>,
    used_base: DFF<Bits<64>>,
    avail_base: DFF<Bits<64>>,
    /// Lane of `avail.flags` in the word read.
    lane: DFF<Bits<2>>,

    sel_size: Signal<Local, Bits<4>>,
    sel_idx: Signal<Local, Bits<16>>,
    flags_word: Signal<Local, Bits<64>>,
    next_idx: Signal<Local, Bits<16>>,

    #[default(konst(vq::CFG_AVAIL))]
    c_cfg_avail: Constant<Bits<3>>,
    #[default(konst(vq::CFG_CTRL))]
    c_cfg_ctrl: Constant<Bits<3>>,
    #[default(konst(vq::CFG_USED))]
    c_cfg_used: Constant<Bits<3>>,
    #[default(konst(vq::CFG_USED_IDX))]
    c_cfg_used_idx: Constant<Bits<3>>,
    #[default(konst(vq::USED_RING))]
    c_used_ring: Constant<Bits<64>>,
    #[default(konst(vq::USED_IDX))]
    c_used_idx: Constant<Bits<64>>,
    #[default(konst(!7))]
    c_qw_align: Constant<Bits<64>>,
    #[default(konst(1))]
    c_one16: Constant<Bits<16>>,
}

impl Logic for VirtqUsed {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, state, qn, head, len, idx, mask, used_base, avail_base, lane);
        for i in 0..8 {
            self.used_idx[i].clock.next = self.clock.val();
            self.used_idx[i].d.next = self.used_idx[i].q.val();
            self.size_log2[i].clock.next = self.clock.val();
            self.size_log2[i].d.next = self.size_log2[i].q.val();
        }
        self.bases.read_clock.next = self.clock.val();
        self.bases.write_clock.next = self.clock.val();
        self.bases.write_address.next = bit_cast::<4, 3>(self.cfg_q.val()) << 1;
        if self.cfg_sel.val() == self.c_cfg_used.val() {
            self.bases.write_address.next = (bit_cast::<4, 3>(self.cfg_q.val()) << 1) | 1;
        }
        self.bases.write_data.next = self.cfg_data.val();
        self.bases.write_enable.next =
            self.cfg_we.val() & ((self.cfg_sel.val() == self.c_cfg_avail.val()) | (self.cfg_sel.val() == self.c_cfg_used.val()));
        self.bases.read_address.next = (bit_cast::<4, 3>(self.done_q.val()) << 1) | 1;

        self.done_ready.next = false;
        self.wr_valid.next = false;
        self.wr_addr.next = 0.into();
        self.wr_data.next = 0.into();
        self.wr_bytes.next = 0.into();
        self.rd_valid.next = false;
        self.rd_addr.next = 0.into();
        self.irq.next = false;
        self.irq_q.next = self.qn.q.val();
        self.ev_suppressed.next = false;
        self.ev_read_error.next = false;

        self.sel_size.next = 0.into();
        self.sel_idx.next = 0.into();
        for i in 0..8 {
            if self.done_q.val().index() == i {
                self.sel_size.next = self.size_log2[i].q.val();
                self.sel_idx.next = self.used_idx[i].q.val();
            }
        }
        self.next_idx.next = self.idx.q.val() + 1;
        self.flags_word.next = self.rsp_data.val() >> (bit_cast::<64, 2>(self.lane.q.val()) << 4);

        match self.state.q.val() {
            UsedState::Idle => {
                // The base RAM is read at the waiting chain's queue's used
                // ring; its base is there in `Base`.
                if self.done_valid.val() {
                    self.done_ready.next = true;
                    self.qn.d.next = self.done_q.val();
                    self.head.d.next = self.done_head.val();
                    self.len.d.next = self.done_len.val();
                    self.idx.d.next = self.sel_idx.val();
                    self.mask.d.next = (self.c_one16.val() << self.sel_size.val()) - 1;
                    self.state.d.next = UsedState::Base;
                }
            }
            UsedState::Base => {
                self.used_base.d.next = self.bases.read_data.val();
                self.state.d.next = UsedState::Elem;
            }
            UsedState::Elem => {
                self.wr_valid.next = true;
                self.wr_addr.next = self.used_base.q.val()
                    + self.c_used_ring.val()
                    + (bit_cast::<64, 16>(self.idx.q.val() & self.mask.q.val()) << 3);
                self.wr_data.next = (bit_cast::<64, 32>(self.len.q.val()) << 32) | bit_cast::<64, 16>(self.head.q.val());
                self.wr_bytes.next = 8.into();
                if self.wr_ready.val() {
                    self.idx.d.next = self.next_idx.val();
                    self.state.d.next = UsedState::Next;
                }
            }
            UsedState::Next => {
                // Another done chain of the same queue at once: its element
                // first, one index write for both.
                if self.done_valid.val() & (self.done_q.val() == self.qn.q.val()) {
                    self.done_ready.next = true;
                    self.head.d.next = self.done_head.val();
                    self.len.d.next = self.done_len.val();
                    self.state.d.next = UsedState::Elem;
                } else {
                    self.state.d.next = UsedState::Index;
                }
            }
            UsedState::Index => {
                self.wr_valid.next = true;
                self.wr_addr.next = self.used_base.q.val() + self.c_used_idx.val();
                self.wr_data.next = bit_cast::<64, 16>(self.idx.q.val());
                self.wr_bytes.next = 2.into();
                self.bases.read_address.next = bit_cast::<4, 3>(self.qn.q.val()) << 1;
                if self.wr_ready.val() {
                    for i in 0..8 {
                        if self.qn.q.val().index() == i {
                            self.used_idx[i].d.next = self.idx.q.val();
                        }
                    }
                    self.state.d.next = UsedState::FlagsRead;
                }
            }
            UsedState::FlagsRead => {
                self.avail_base.d.next = self.bases.read_data.val();
                self.bases.read_address.next = bit_cast::<4, 3>(self.qn.q.val()) << 1;
                self.rd_valid.next = true;
                self.rd_addr.next = self.bases.read_data.val() & self.c_qw_align.val();
                self.lane.d.next = self.bases.read_data.val().get_bits::<2>(1);
                if self.rd_ready.val() {
                    self.state.d.next = UsedState::FlagsWait;
                }
            }
            UsedState::FlagsWait => {
                if self.rsp_valid.val() {
                    self.state.d.next = UsedState::Idle;
                    if self.rsp_err.val() {
                        self.ev_read_error.next = true;
                    } else if self.flags_word.val().get_bit(0) {
                        self.ev_suppressed.next = true;
                    } else {
                        self.irq.next = true;
                    }
                }
            }
        }

        // ---- configuration ----
        for i in 0..8 {
            if self.cfg_we.val() & (self.cfg_q.val().index() == i) {
                if self.cfg_sel.val() == self.c_cfg_ctrl.val() {
                    self.size_log2[i].d.next = self.cfg_data.val().get_bits::<4>(0);
                    if self.cfg_data.val().get_bit(9) {
                        self.used_idx[i].d.next = 0.into();
                    }
                }
                if self.cfg_sel.val() == self.c_cfg_used_idx.val() {
                    self.used_idx[i].d.next = self.cfg_data.val().get_bits::<16>(0);
                }
            }
        }
        self.st_used_idx.next = 0.into();
        for i in 0..8 {
            if self.st_q.val().index() == i {
                self.st_used_idx.next = self.used_idx[i].q.val();
            }
        }

        if self.reset.val() {
            self.state.d.next = UsedState::Idle;
            for i in 0..8 {
                self.used_idx[i].d.next = 0.into();
                self.size_log2[i].d.next = 0.into();
            }
        }
    }
}
