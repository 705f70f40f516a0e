//! The virtqueue engine's chain fetcher: for each of eight virtio split
//! queues (virtio 1.x 2.7) in guest memory it reads `avail.idx`, the new
//! available-ring entries (up to four from one 8-byte read) and each
//! entry's descriptor chain (one 16-byte read a descriptor, following
//! `VIRTQ_DESC_F_NEXT`), and hands the chain's buffers on as segments, in
//! ring order per queue. What the segments are for (a frame to send, buffers
//! to receive into) and the used ring are the next stages' business.
//!
//! Doorbells (`kick`) mark a queue pending; queues take turns, a turn being
//! at most the chains whose heads came in one ring read (up to four), so one
//! busy queue does not starve the others. The queue's `last_avail_idx` is
//! the card's own and moves on when a chain's last segment is taken.
//!
//! A malformed ring puts the queue into an error state (`regmap::virtq::
//! ERR_*`) that the host can read (`st_*`), with no further reads for it
//! until its reset; the others go on. A chain that breaks after some of its
//! segments went out is ended by a segment with `seg_abort` (and
//! `seg_last`), so the next stage drops what it gathered of it.
//!
//! Reads go out on a small read port: `rd_addr` 8-byte aligned, `rd_qws`
//! (1 or 2) 8-byte words answered in order on `rsp_*`; a failed read
//! answers one beat with `rsp_err`. In the card the DMA front end's
//! descriptor read path serves it (Memory Reads by tag); the testbench
//! answers from a guest-memory model.

use crate::konst;
use crate::regmap::virtq as vq;
use rust_hdl::prelude::*;
use smart_default::SmartDefault;

// The widths and bit positions below follow these.
const _: () = assert!(
    vq::NUM_QUEUES == 8
        && vq::CTRL_SIZE_LOG2_MASK == 0xF
        && vq::CTRL_ENABLE == 1 << 8
        && vq::CTRL_RESET == 1 << 9
        && vq::MAX_SIZE_LOG2 == 15
        && vq::CFG_SEL_BITS == 3
        && vq::CFG_DESC == 0
        && vq::CFG_AVAIL == 1
);

#[derive(Copy, Clone, PartialEq, Debug, LogicState)]
pub enum ChainState {
    Idle,
    BaseAvail,
    BaseDesc,
    IdxRead,
    IdxWait,
    Check,
    RingRead,
    RingWait,
    HeadPick,
    DescRead,
    DescWait0,
    DescWait1,
    DescCheck,
    Emit,
    Abort,
    Fail,
}

#[derive(LogicBlock, SmartDefault)]
pub struct VirtqChainFetch {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    // ---- configuration (regmap::virtq::CFG_*) ----
    pub cfg_we: Signal<In, Bit>,
    pub cfg_q: Signal<In, Bits<3>>,
    pub cfg_sel: Signal<In, Bits<3>>,
    pub cfg_data: Signal<In, Bits<64>>,
    /// A doorbell: queue `kick_q` has new available entries.
    pub kick: Signal<In, Bit>,
    pub kick_q: Signal<In, Bits<3>>,
    /// Queues whose next stage can take a chain now (bit q); a pending
    /// queue without room waits, still pending, and the others go on.
    pub room: Signal<In, Bits<8>>,
    /// Queues served one chain a turn (receive queues: a chain is fetched
    /// only when there is room for it, so none blocks the segment port).
    pub one_chain: Signal<In, Bits<8>>,
    // ---- status of queue `st_q` ----
    pub st_q: Signal<In, Bits<3>>,
    pub st_last_avail: Signal<Out, Bits<16>>,
    pub st_err: Signal<Out, Bits<4>>,
    /// A queue went into error (one cycle, for a counter).
    pub ev_error: Signal<Out, Bit>,
    // ---- reads ----
    pub rd_valid: Signal<Out, Bit>,
    pub rd_addr: Signal<Out, Bits<64>>,
    pub rd_qws: Signal<Out, Bits<2>>,
    pub rd_ready: Signal<In, Bit>,
    pub rsp_valid: Signal<In, Bit>,
    pub rsp_data: Signal<In, Bits<64>>,
    pub rsp_err: Signal<In, Bit>,
    // ---- segments ----
    pub seg_valid: Signal<Out, Bit>,
    pub seg_ready: Signal<In, Bit>,
    pub seg_q: Signal<Out, Bits<3>>,
    /// The chain's head index (the id its used element will carry).
    pub seg_head: Signal<Out, Bits<16>>,
    pub seg_addr: Signal<Out, Bits<64>>,
    pub seg_len: Signal<Out, Bits<32>>,
    /// The buffer is device-writable (`VIRTQ_DESC_F_WRITE`).
    pub seg_write: Signal<Out, Bit>,
    pub seg_first: Signal<Out, Bit>,
    pub seg_last: Signal<Out, Bit>,
    /// The chain broke after segments of it went out: drop them.
    pub seg_abort: Signal<Out, Bit>,

    /// Ring bases: address {queue, 0 descriptor table / 1 available ring}.
    bases: RAM<Bits<64>, 4>,
    last_avail: [DFF<Bits<16>>; 8],
    size_log2: [DFF<Bits<4>>; 8],
    err: [DFF<Bits<4>>; 8],
    enabled: DFF<Bits<8>>,
    pending: DFF<Bits<8>>,
    state: DFF<ChainState>,
    /// The queue being served, and the next one the idle scan looks at.
    qn: DFF<Bits<3>>,
    scan: DFF<Bits<3>>,
    avail_base: DFF<Bits<64>>,
    desc_base: DFF<Bits<64>>,
    /// Queue size - 1.
    mask: DFF<Bits<16>>,
    avail_idx: DFF<Bits<16>>,
    /// The served queue's `last_avail_idx` as this turn moves it.
    cur_last: DFF<Bits<16>>,
    /// The ring word read and which of its four entries is next.
    ring_qw: DFF<Bits<64>>,
    lane: DFF<Bits<2>>,
    head: DFF<Bits<16>>,
    idx: DFF<Bits<16>>,
    /// Descriptors of this chain taken so far.
    hops: DFF<Bits<16>>,
    first: DFF<Bit>,
    d_addr: DFF<Bits<64>>,
    d_word1: DFF<Bits<64>>,
    fail_code: DFF<Bits<4>>,

    pend_set: Signal<Local, Bits<8>>,
    pend_clear: Signal<Local, Bits<8>>,
    lane_word: Signal<Local, Bits<64>>,
    lane_val: Signal<Local, Bits<16>>,
    idx_addr: Signal<Local, Bits<64>>,
    entry_addr: Signal<Local, Bits<64>>,
    ahead: Signal<Local, Bits<16>>,
    d_flags: Signal<Local, Bits<16>>,
    d_next: Signal<Local, Bits<16>>,
    last_next: Signal<Local, Bits<16>>,
    set_err: Signal<Local, Bit>,
    sel_size: Signal<Local, Bits<4>>,
    sel_last: Signal<Local, Bits<16>>,

    #[default(konst(vq::CFG_CTRL))]
    c_cfg_ctrl: Constant<Bits<3>>,
    #[default(konst(vq::CFG_LAST_AVAIL))]
    c_cfg_last: Constant<Bits<3>>,
    #[default(konst(vq::DESC_F_NEXT as u64))]
    c_f_next: Constant<Bits<16>>,
    #[default(konst(vq::DESC_F_WRITE as u64))]
    c_f_write: Constant<Bits<16>>,
    #[default(konst(vq::DESC_F_INDIRECT as u64))]
    c_f_indirect: Constant<Bits<16>>,
    #[default(konst(vq::AVAIL_IDX))]
    c_avail_idx: Constant<Bits<64>>,
    #[default(konst(vq::AVAIL_RING))]
    c_avail_ring: Constant<Bits<64>>,
    #[default(konst(vq::ERR_AVAIL_JUMP))]
    c_err_jump: Constant<Bits<4>>,
    #[default(konst(vq::ERR_INDEX))]
    c_err_index: Constant<Bits<4>>,
    #[default(konst(vq::ERR_CHAIN_LOOP))]
    c_err_loop: Constant<Bits<4>>,
    #[default(konst(vq::ERR_INDIRECT))]
    c_err_indirect: Constant<Bits<4>>,
    #[default(konst(vq::ERR_READ))]
    c_err_read: Constant<Bits<4>>,
    #[default(konst(!7))]
    c_qw_align: Constant<Bits<64>>,
    #[default(konst(1))]
    c_one8: Constant<Bits<8>>,
    #[default(konst(1))]
    c_one16: Constant<Bits<16>>,
}

impl Logic for VirtqChainFetch {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clock, enabled, pending, state, qn, scan, avail_base, desc_base, mask, avail_idx, cur_last, ring_qw, lane,
            head, idx, hops, first, d_addr, d_word1, fail_code
        );
        for i in 0..8 {
            self.last_avail[i].clock.next = self.clock.val();
            self.last_avail[i].d.next = self.last_avail[i].q.val();
            self.size_log2[i].clock.next = self.clock.val();
            self.size_log2[i].d.next = self.size_log2[i].q.val();
            self.err[i].clock.next = self.clock.val();
            self.err[i].d.next = self.err[i].q.val();
        }
        self.bases.read_clock.next = self.clock.val();
        self.bases.write_clock.next = self.clock.val();
        self.bases.write_address.next = (bit_cast::<4, 3>(self.cfg_q.val()) << 1) | bit_cast::<4, 1>(self.cfg_sel.val().get_bit(0).into());
        // Fields 0 (descriptor table) and 1 (available ring) live in the RAM.
        self.bases.write_data.next = self.cfg_data.val();
        self.bases.write_enable.next = self.cfg_we.val() & (self.cfg_sel.val().get_bits::<2>(1) == 0);
        self.bases.read_address.next = (bit_cast::<4, 3>(self.scan.q.val()) << 1) | 1;

        // ---- outputs' idle values ----
        self.rd_valid.next = false;
        self.rd_addr.next = 0.into();
        self.rd_qws.next = 1.into();
        self.seg_valid.next = false;
        self.seg_q.next = self.qn.q.val();
        self.seg_head.next = self.head.q.val();
        self.seg_addr.next = self.d_addr.q.val();
        self.seg_len.next = self.d_word1.q.val().get_bits::<32>(0);
        self.seg_write.next = (self.d_word1.q.val().get_bits::<16>(32) & self.c_f_write.val()).any();
        self.seg_first.next = self.first.q.val();
        self.seg_last.next = !(self.d_word1.q.val().get_bits::<16>(32) & self.c_f_next.val()).any();
        self.seg_abort.next = false;
        self.ev_error.next = false;
        self.set_err.next = false;
        self.pend_set.next = 0.into();
        self.pend_clear.next = 0.into();

        // A 16-bit field of the word read, at lane `lane` (ring entries and
        // `avail.idx` are 2-byte aligned, so never straddle 8-byte words).
        self.lane_word.next = self.rsp_data.val() >> (bit_cast::<64, 2>(self.lane.q.val()) << 4);
        if self.state.q.val() == ChainState::HeadPick {
            self.lane_word.next = self.ring_qw.q.val() >> (bit_cast::<64, 2>(self.lane.q.val()) << 4);
        }
        self.lane_val.next = self.lane_word.val().get_bits::<16>(0);
        self.idx_addr.next = self.avail_base.q.val() + self.c_avail_idx.val();
        self.entry_addr.next =
            self.avail_base.q.val() + self.c_avail_ring.val() + (bit_cast::<64, 16>(self.cur_last.q.val() & self.mask.q.val()) << 1);
        self.ahead.next = self.avail_idx.q.val() - self.cur_last.q.val();
        self.d_flags.next = self.d_word1.q.val().get_bits::<16>(32);
        self.d_next.next = self.d_word1.q.val().get_bits::<16>(48);
        self.last_next.next = self.cur_last.q.val() + 1;
        self.sel_size.next = 0.into();
        for i in 0..8 {
            if self.qn.q.val().index() == i {
                self.sel_size.next = self.size_log2[i].q.val();
            }
        }

        match self.state.q.val() {
            ChainState::Idle => {
                // One queue looked at per cycle; the base RAM is read at the
                // scanned queue's available ring meanwhile.
                self.qn.d.next = self.scan.q.val();
                self.scan.d.next = self.scan.q.val() + 1;
                for i in 0..8 {
                    if self.scan.q.val().index() == i {
                        self.cur_last.d.next = self.last_avail[i].q.val();
                        if self.pending.q.val().get_bit(i) & self.room.val().get_bit(i) {
                            self.pend_clear.next = self.pend_clear.val().replace_bit(i, true);
                            if self.enabled.q.val().get_bit(i) & (self.err[i].q.val() == 0) {
                                self.state.d.next = ChainState::BaseAvail;
                                self.scan.d.next = self.scan.q.val();
                            }
                        }
                    }
                }
            }
            ChainState::BaseAvail => {
                self.avail_base.d.next = self.bases.read_data.val();
                self.bases.read_address.next = bit_cast::<4, 3>(self.qn.q.val()) << 1;
                self.mask.d.next = (self.c_one16.val() << self.sel_size.val()) - 1;
                self.state.d.next = ChainState::BaseDesc;
            }
            ChainState::BaseDesc => {
                self.desc_base.d.next = self.bases.read_data.val();
                self.state.d.next = ChainState::IdxRead;
            }
            ChainState::IdxRead => {
                self.rd_valid.next = true;
                self.rd_addr.next = self.idx_addr.val() & self.c_qw_align.val();
                self.lane.d.next = self.idx_addr.val().get_bits::<2>(1);
                if self.rd_ready.val() {
                    self.state.d.next = ChainState::IdxWait;
                }
            }
            ChainState::IdxWait => {
                if self.rsp_valid.val() {
                    self.avail_idx.d.next = self.lane_val.val();
                    self.state.d.next = ChainState::Check;
                    if self.rsp_err.val() {
                        self.fail_code.d.next = self.c_err_read.val();
                        self.state.d.next = ChainState::Fail;
                    }
                }
            }
            ChainState::Check => {
                if self.ahead.val() == 0 {
                    self.state.d.next = ChainState::Idle;
                    self.scan.d.next = self.qn.q.val() + 1;
                } else if self.ahead.val() > self.mask.q.val() + 1 {
                    self.fail_code.d.next = self.c_err_jump.val();
                    self.state.d.next = ChainState::Fail;
                } else {
                    self.state.d.next = ChainState::RingRead;
                }
            }
            ChainState::RingRead => {
                self.rd_valid.next = true;
                self.rd_addr.next = self.entry_addr.val() & self.c_qw_align.val();
                self.lane.d.next = self.entry_addr.val().get_bits::<2>(1);
                if self.rd_ready.val() {
                    self.state.d.next = ChainState::RingWait;
                }
            }
            ChainState::RingWait => {
                if self.rsp_valid.val() {
                    self.ring_qw.d.next = self.rsp_data.val();
                    self.state.d.next = ChainState::HeadPick;
                    if self.rsp_err.val() {
                        self.fail_code.d.next = self.c_err_read.val();
                        self.state.d.next = ChainState::Fail;
                    }
                }
            }
            ChainState::HeadPick => {
                self.head.d.next = self.lane_val.val();
                self.idx.d.next = self.lane_val.val();
                self.hops.d.next = 0.into();
                self.first.d.next = true;
                self.state.d.next = ChainState::DescRead;
                if (self.lane_val.val() & !self.mask.q.val()).any() {
                    self.fail_code.d.next = self.c_err_index.val();
                    self.state.d.next = ChainState::Fail;
                }
            }
            ChainState::DescRead => {
                self.rd_valid.next = true;
                self.rd_addr.next = self.desc_base.q.val() + (bit_cast::<64, 16>(self.idx.q.val()) << 4);
                self.rd_qws.next = 2.into();
                if self.rd_ready.val() {
                    self.state.d.next = ChainState::DescWait0;
                }
            }
            ChainState::DescWait0 => {
                if self.rsp_valid.val() {
                    self.d_addr.d.next = self.rsp_data.val();
                    self.state.d.next = ChainState::DescWait1;
                    if self.rsp_err.val() {
                        self.fail_code.d.next = self.c_err_read.val();
                        self.state.d.next = ChainState::Abort;
                    }
                }
            }
            ChainState::DescWait1 => {
                if self.rsp_valid.val() {
                    self.d_word1.d.next = self.rsp_data.val();
                    self.state.d.next = ChainState::DescCheck;
                    if self.rsp_err.val() {
                        self.fail_code.d.next = self.c_err_read.val();
                        self.state.d.next = ChainState::Abort;
                    }
                }
            }
            ChainState::DescCheck => {
                self.state.d.next = ChainState::Emit;
                if (self.d_flags.val() & self.c_f_indirect.val()).any() {
                    self.fail_code.d.next = self.c_err_indirect.val();
                    self.state.d.next = ChainState::Abort;
                } else if self.hops.q.val() > self.mask.q.val() {
                    // More descriptors than the queue has: the chain loops.
                    self.fail_code.d.next = self.c_err_loop.val();
                    self.state.d.next = ChainState::Abort;
                } else if (self.d_flags.val() & self.c_f_next.val()).any() & (self.d_next.val() & !self.mask.q.val()).any() {
                    self.fail_code.d.next = self.c_err_index.val();
                    self.state.d.next = ChainState::Abort;
                }
            }
            ChainState::Emit => {
                self.seg_valid.next = true;
                if self.seg_ready.val() {
                    self.first.d.next = false;
                    self.hops.d.next = self.hops.q.val() + 1;
                    if (self.d_flags.val() & self.c_f_next.val()).any() {
                        self.idx.d.next = self.d_next.val();
                        self.state.d.next = ChainState::DescRead;
                    } else {
                        // The chain is done: the next head from the same ring
                        // word if it has one, else the turn ends (the queue
                        // stays pending while entries remain).
                        self.cur_last.d.next = self.last_next.val();
                        for i in 0..8 {
                            if self.qn.q.val().index() == i {
                                self.last_avail[i].d.next = self.last_next.val();
                            }
                        }
                        if self.last_next.val() == self.avail_idx.q.val() {
                            self.state.d.next = ChainState::Idle;
                            self.scan.d.next = self.qn.q.val() + 1;
                        } else if (self.lane.q.val() != 3)
                            & ((self.last_next.val() & self.mask.q.val()) != 0)
                            & !self.one_chain.val().get_bit(self.qn.q.val().index())
                        {
                            // (At the ring's end the next entry is its first
                            // slot, not the next lane.)
                            self.lane.d.next = self.lane.q.val() + 1;
                            self.state.d.next = ChainState::HeadPick;
                        } else {
                            self.pend_set.next = self.c_one8.val() << self.qn.q.val();
                            self.state.d.next = ChainState::Idle;
                            self.scan.d.next = self.qn.q.val() + 1;
                        }
                    }
                }
            }
            ChainState::Abort => {
                // Segments of this chain went out: end it for the next stage.
                if self.first.q.val() {
                    self.state.d.next = ChainState::Fail;
                } else {
                    self.seg_valid.next = true;
                    self.seg_abort.next = true;
                    self.seg_last.next = true;
                    self.seg_len.next = 0.into();
                    if self.seg_ready.val() {
                        self.state.d.next = ChainState::Fail;
                    }
                }
            }
            ChainState::Fail => {
                self.set_err.next = true;
                self.ev_error.next = true;
                self.state.d.next = ChainState::Idle;
                self.scan.d.next = self.qn.q.val() + 1;
            }
        }

        // ---- configuration, doorbells, errors ----
        if self.kick.val() {
            self.pend_set.next = self.pend_set.val() | (self.c_one8.val() << self.kick_q.val());
        }
        self.pending.d.next = (self.pending.q.val() & !self.pend_clear.val()) | self.pend_set.val();
        for i in 0..8 {
            if self.set_err.val() & (self.qn.q.val().index() == i) {
                self.err[i].d.next = self.fail_code.q.val();
            }
            if self.cfg_we.val() & (self.cfg_q.val().index() == i) {
                if self.cfg_sel.val() == self.c_cfg_ctrl.val() {
                    self.size_log2[i].d.next = self.cfg_data.val().get_bits::<4>(0);
                    if self.cfg_data.val().get_bit(8) {
                        self.enabled.d.next = self.enabled.q.val().replace_bit(i, true);
                    } else {
                        self.enabled.d.next = self.enabled.q.val().replace_bit(i, false);
                    }
                    if self.cfg_data.val().get_bit(9) {
                        self.last_avail[i].d.next = 0.into();
                        self.err[i].d.next = 0.into();
                    }
                }
                if self.cfg_sel.val() == self.c_cfg_last.val() {
                    self.last_avail[i].d.next = self.cfg_data.val().get_bits::<16>(0);
                }
            }
        }
        self.sel_last.next = 0.into();
        self.st_err.next = 0.into();
        for i in 0..8 {
            if self.st_q.val().index() == i {
                self.sel_last.next = self.last_avail[i].q.val();
                self.st_err.next = self.err[i].q.val();
            }
        }
        self.st_last_avail.next = self.sel_last.val();

        if self.reset.val() {
            self.state.d.next = ChainState::Idle;
            self.enabled.d.next = 0.into();
            self.pending.d.next = 0.into();
            for i in 0..8 {
                self.last_avail[i].d.next = 0.into();
                self.err[i].d.next = 0.into();
                self.size_log2[i].d.next = 0.into();
            }
        }
    }
}
