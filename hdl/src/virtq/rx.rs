//! The virtqueue engine's receive stage: for each pair's receiveq (queue
//! 2p) it holds the next receive buffer the driver posted (the first
//! buffer of the chain the fetcher hands on; the fetcher serves a receiveq
//! one chain a turn and only when this slot is free, `room`), and it tells
//! the DMA front end, for a frame arriving from the network with tenant t,
//! whether a pair takes tenant t's frames (`lk_match`: its receiveq is
//! enabled with tenant t in `CFG_CTRL` bits 15:12) and where the frame goes
//! (`lk_valid`, `lk_addr`, `lk_len`).
//!
//! The front end writes the 12-byte `virtio_net_hdr_v1` (`num_buffers` 1,
//! no offloads) and the frame into that buffer (`take`, with the bytes it
//! will write); when the back end has written them (`rx_done`, in order;
//! `rx_failed` if the frame was malformed and nothing was written) the
//! chain is done with that length (0 on failure), for the used ring.
//!
//! A receive chain whose first buffer is not device-writable is a driver
//! error: it is handed back at once, length 0, and counted (`ev_bad`).
//! Further buffers of a chain are not used (one buffer a frame, as Linux
//! posts them with or without `VIRTIO_NET_F_MRG_RXBUF`). A chain the
//! fetcher aborted (its queue went into error) is forgotten.

use crate::konst;
use crate::regmap::virtq as vq;
use rust_hdl::prelude::*;
use smart_default::SmartDefault;

const _: () = assert!(
    vq::NUM_QUEUES == 8 && vq::CFG_SEL_BITS == 3 && vq::CTRL_TENANT_SHIFT == 12 && vq::CTRL_ENABLE == 1 << 8
);

/// Pairs (receiveqs).
const PAIRS: usize = 4;
/// Chains taken or handed back whose used element has not gone out (at
/// most 3 when a new chain or frame is let in, plus one returned chain per
/// pair still arriving).
const DONE_SLOTS: usize = 8;

#[derive(LogicBlock, SmartDefault)]
pub struct VirtqRx {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    // ---- configuration (CFG_CTRL of the receiveqs) ----
    pub cfg_we: Signal<In, Bit>,
    pub cfg_q: Signal<In, Bits<3>>,
    pub cfg_sel: Signal<In, Bits<3>>,
    pub cfg_data: Signal<In, Bits<64>>,
    // ---- segments of receive chains (even queues) ----
    pub seg_valid: Signal<In, Bit>,
    pub seg_ready: Signal<Out, Bit>,
    pub seg_q: Signal<In, Bits<3>>,
    pub seg_head: Signal<In, Bits<16>>,
    pub seg_addr: Signal<In, Bits<64>>,
    pub seg_len: Signal<In, Bits<32>>,
    pub seg_write: Signal<In, Bit>,
    pub seg_first: Signal<In, Bit>,
    pub seg_last: Signal<In, Bit>,
    pub seg_abort: Signal<In, Bit>,
    /// Queues that may be handed a chain (receiveqs with a free slot; the
    /// transmitqs always).
    pub room: Signal<Out, Bits<8>>,
    // ---- the front end's lookup for the frame at its port ----
    pub lk_tenant: Signal<In, Bits<4>>,
    pub lk_match: Signal<Out, Bit>,
    pub lk_valid: Signal<Out, Bit>,
    pub lk_q: Signal<Out, Bits<3>>,
    pub lk_addr: Signal<Out, Bits<64>>,
    pub lk_len: Signal<Out, Bits<32>>,
    /// The front end takes the looked-up buffer for `take_bytes` bytes.
    pub take: Signal<In, Bit>,
    pub take_bytes: Signal<In, Bits<16>>,
    // ---- the back end ----
    pub rx_done: Signal<In, Bit>,
    pub rx_failed: Signal<In, Bit>,
    // ---- chains done, for the used ring ----
    pub done_valid: Signal<Out, Bit>,
    pub done_ready: Signal<In, Bit>,
    pub done_q: Signal<Out, Bits<3>>,
    pub done_head: Signal<Out, Bits<16>>,
    pub done_len: Signal<Out, Bits<32>>,
    /// A chain handed back unused (its first buffer not device-writable).
    pub ev_bad: Signal<Out, Bit>,

    enabled: DFF<Bits<4>>,
    tenant: [DFF<Bits<4>>; PAIRS],
    /// The slot of each pair: a buffer (complete: its chain's last segment
    /// came), its head, address, length, and whether the first buffer was
    /// writable; `filling`: a chain is arriving into it.
    s_valid: [DFF<Bit>; PAIRS],
    s_filling: [DFF<Bit>; PAIRS],
    s_ok: [DFF<Bit>; PAIRS],
    s_head: [DFF<Bits<16>>; PAIRS],
    s_addr: [DFF<Bits<64>>; PAIRS],
    s_len: [DFF<Bits<32>>; PAIRS],
    /// Done slots, in order: {handed back (no frame) [35], queue [34:32], head [31:16], length [15:0]}.
    d_entry: [DFF<Bits<36>>; DONE_SLOTS],
    d_wr: DFF<Bits<4>>,
    d_rd: DFF<Bits<4>>,
    /// Frames finished by the back end whose entry has not gone out.
    owed: DFF<Bits<3>>,
    /// Failed frames among them go out with length 0: the failures, in order.
    fail_bits: DFF<Bits<4>>,

    pair: Signal<Local, Bits<2>>,
    seg_acc: Signal<Local, Bit>,
    hits: Signal<Local, Bits<4>>,
    lk_pair: Signal<Local, Bits<2>>,
    lk_hit: Signal<Local, Bit>,
    lk_head: Signal<Local, Bits<16>>,
    d_count: Signal<Local, Bits<4>>,
    d_full: Signal<Local, Bit>,
    push: Signal<Local, Bit>,
    push_entry: Signal<Local, Bits<36>>,
    head_entry: Signal<Local, Bits<36>>,
    pop: Signal<Local, Bit>,
    owed_next: Signal<Local, Bits<3>>,
    fail_next: Signal<Local, Bits<4>>,
    bad_back: Signal<Local, Bit>,
    #[default(konst(vq::CFG_CTRL))]
    c_ctrl: Constant<Bits<3>>,
}

impl Logic for VirtqRx {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, enabled, d_wr, d_rd, owed, fail_bits);
        for p in 0..PAIRS {
            self.tenant[p].clock.next = self.clock.val();
            self.tenant[p].d.next = self.tenant[p].q.val();
            self.s_valid[p].clock.next = self.clock.val();
            self.s_valid[p].d.next = self.s_valid[p].q.val();
            self.s_filling[p].clock.next = self.clock.val();
            self.s_filling[p].d.next = self.s_filling[p].q.val();
            self.s_ok[p].clock.next = self.clock.val();
            self.s_ok[p].d.next = self.s_ok[p].q.val();
            self.s_head[p].clock.next = self.clock.val();
            self.s_head[p].d.next = self.s_head[p].q.val();
            self.s_addr[p].clock.next = self.clock.val();
            self.s_addr[p].d.next = self.s_addr[p].q.val();
            self.s_len[p].clock.next = self.clock.val();
            self.s_len[p].d.next = self.s_len[p].q.val();
        }
        for i in 0..DONE_SLOTS {
            self.d_entry[i].clock.next = self.clock.val();
            self.d_entry[i].d.next = self.d_entry[i].q.val();
        }

        // ---- configuration: a receiveq's enable and tenant ----
        if self.cfg_we.val() & (self.cfg_sel.val() == self.c_ctrl.val()) & !self.cfg_q.val().get_bit(0) {
            for p in 0..PAIRS {
                if self.cfg_q.val().get_bits::<2>(1).index() == p {
                    self.tenant[p].d.next = self.cfg_data.val().get_bits::<4>(12);
                    self.enabled.d.next = self.enabled.q.val().replace_bit(p, self.cfg_data.val().get_bit(8));
                    if self.cfg_data.val().get_bit(9) {
                        // Reset: the posted buffer is the driver's again.
                        self.s_valid[p].d.next = false;
                        self.s_filling[p].d.next = false;
                    }
                }
            }
        }

        // ---- done slots ----
        self.d_count.next = self.d_wr.q.val() - self.d_rd.q.val();
        self.d_full.next = self.d_count.val() >= 3;
        self.head_entry.next = 0.into();
        for i in 0..DONE_SLOTS {
            if self.d_rd.q.val().get_bits::<3>(0).index() == i {
                self.head_entry.next = self.d_entry[i].q.val();
            }
        }
        self.push.next = false;
        self.push_entry.next = 0.into();

        // ---- segments: the first buffer of a chain fills its pair's slot ----
        self.pair.next = self.seg_q.val().get_bits::<2>(1);
        self.room.next = 0xAA.into();
        for p in 0..PAIRS {
            if !self.s_valid[p].q.val() & !self.s_filling[p].q.val() & !self.d_full.val() {
                self.room.next = self.room.val().replace_bit(2 * p, true);
            }
        }
        // (No segment is taken in a cycle the front end takes a buffer: one
        // done entry a cycle.)
        self.seg_ready.next = !self.take.val();
        self.seg_acc.next = self.seg_valid.val() & !self.take.val();
        self.ev_bad.next = false;
        self.bad_back.next = false;
        if self.seg_acc.val() {
            for p in 0..PAIRS {
                if self.pair.val().index() == p {
                    if self.seg_first.val() {
                        self.s_filling[p].d.next = true;
                        self.s_ok[p].d.next = self.seg_write.val();
                        self.s_head[p].d.next = self.seg_head.val();
                        self.s_addr[p].d.next = self.seg_addr.val();
                        self.s_len[p].d.next = self.seg_len.val();
                    }
                    if self.seg_abort.val() {
                        self.s_filling[p].d.next = false;
                    } else if self.seg_last.val() {
                        self.s_filling[p].d.next = false;
                        // A first buffer the device may not write: back at once.
                        if (self.seg_first.val() & !self.seg_write.val())
                            | (!self.seg_first.val() & !self.s_ok[p].q.val())
                        {
                            self.bad_back.next = true;
                        } else {
                            self.s_valid[p].d.next = true;
                        }
                    }
                }
            }
        }
        if self.bad_back.val() {
            self.ev_bad.next = true;
            self.push.next = true;
            self.push_entry.next = (bit_cast::<36, 1>(true.into()) << 35)
                | (bit_cast::<36, 3>(self.seg_q.val()) << 32)
                | (bit_cast::<36, 16>(self.seg_head.val()) << 16);
        }

        // ---- the front end's lookup ----
        self.hits.next = 0.into();
        for p in 0..PAIRS {
            if self.enabled.q.val().get_bit(p) & (self.tenant[p].q.val() == self.lk_tenant.val()) {
                self.hits.next = self.hits.val().replace_bit(p, true);
            }
        }
        // The lowest pair with the tenant.
        self.lk_hit.next = self.hits.val().any();
        self.lk_pair.next = 3.into();
        if self.hits.val().get_bit(2) {
            self.lk_pair.next = 2.into();
        }
        if self.hits.val().get_bit(1) {
            self.lk_pair.next = 1.into();
        }
        if self.hits.val().get_bit(0) {
            self.lk_pair.next = 0.into();
        }
        self.lk_match.next = self.lk_hit.val();
        self.lk_q.next = bit_cast::<3, 2>(self.lk_pair.val()) << 1;
        self.lk_valid.next = false;
        self.lk_addr.next = 0.into();
        self.lk_len.next = 0.into();
        self.lk_head.next = 0.into();
        for p in 0..PAIRS {
            if self.lk_pair.val().index() == p {
                self.lk_valid.next = self.lk_hit.val() & self.s_valid[p].q.val() & !self.d_full.val();
                self.lk_addr.next = self.s_addr[p].q.val();
                self.lk_len.next = self.s_len[p].q.val();
                self.lk_head.next = self.s_head[p].q.val();
            }
        }
        if self.take.val() {
            for p in 0..PAIRS {
                if self.lk_pair.val().index() == p {
                    self.s_valid[p].d.next = false;
                }
            }
            self.push.next = true;
            self.push_entry.next = (bit_cast::<36, 3>(self.lk_q.val()) << 32)
                | (bit_cast::<36, 16>(self.lk_head.val()) << 16)
                | bit_cast::<36, 16>(self.take_bytes.val());
        }
        for i in 0..DONE_SLOTS {
            if self.push.val() & (self.d_wr.q.val().get_bits::<3>(0).index() == i) {
                self.d_entry[i].d.next = self.push_entry.val();
            }
        }
        if self.push.val() {
            self.d_wr.d.next = self.d_wr.q.val() + 1;
        }

        // ---- done: the oldest entry goes out once it is finished ----
        self.owed_next.next = self.owed.q.val();
        self.fail_next.next = self.fail_bits.q.val();
        self.done_valid.next = false;
        self.done_q.next = self.head_entry.val().get_bits::<3>(32);
        self.done_head.next = self.head_entry.val().get_bits::<16>(16);
        self.done_len.next = bit_cast::<32, 16>(self.head_entry.val().get_bits::<16>(0));
        if self.d_count.val() != 0 {
            if self.head_entry.val().get_bit(35) {
                self.done_valid.next = true;
            } else if self.owed.q.val() != 0 {
                self.done_valid.next = true;
                if self.fail_bits.q.val().get_bit(0) {
                    self.done_len.next = 0.into();
                }
            }
        }
        self.pop.next = self.done_valid.val() & self.done_ready.val();
        if self.pop.val() {
            self.d_rd.d.next = self.d_rd.q.val() + 1;
            if !self.head_entry.val().get_bit(35) {
                self.owed_next.next = self.owed.q.val() - 1;
                self.fail_next.next = self.fail_bits.q.val() >> 1;
            }
        }
        if self.rx_done.val() {
            // The failure flag of the frame finished now sits behind those owed.
            self.fail_bits.d.next = self.fail_next.val()
                | (bit_cast::<4, 1>(self.rx_failed.val().into()) << bit_cast::<2, 3>(self.owed_next.val()));
            self.owed.d.next = self.owed_next.val() + 1;
        } else {
            self.fail_bits.d.next = self.fail_next.val();
            self.owed.d.next = self.owed_next.val();
        }
        if self.reset.val() {
            self.enabled.d.next = 0.into();
            self.d_wr.d.next = 0.into();
            self.d_rd.d.next = 0.into();
            self.owed.d.next = 0.into();
            self.fail_bits.d.next = 0.into();
            for p in 0..PAIRS {
                self.s_valid[p].d.next = false;
                self.s_filling[p].d.next = false;
            }
        }
    }
}
