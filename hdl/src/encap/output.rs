//! Stage O of the encapsulation pipeline: sends each frame as its header
//! words, then its ring words, one word a cycle.
//!
//! Word j of a frame is header word j (from the header stage's next-header
//! registers) for j < 6, header bytes 48-49 merged with ring word 0 for
//! j = 6 (the writer left lanes 0-1 of that ring word free), and ring word
//! j-6 after that. The next-header registers are released when word 6 is
//! issued, so the header stage can deliver the next frame's header while
//! this frame's data streams.
//!
//! Issued words go through a one-cycle read stage (the ring is a
//! synchronous RAM) into a two-entry output queue. Issuing only while the
//! queue will have room keeps one word a cycle under back-pressure, and
//! the queue is registered, so `out_valid` never depends on `out_ready`.

use crate::konst;
use rust_hdl::prelude::*;
use smart_default::SmartDefault;

#[derive(LogicBlock, SmartDefault)]
pub struct EncapOutput {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    /// The next header (see `EncapHeader`).
    pub hdr_valid: Signal<In, Bit>,
    pub hdr_words: Signal<In, Bits<11>>,
    pub hdr_last_bytes: Signal<In, Bits<4>>,
    pub hdr_index: Signal<Out, Bits<3>>,
    pub hdr_word: Signal<In, Bits<64>>,
    pub hdr_release: Signal<Out, Bit>,
    /// The writer's ring pointer: ring words before it are written.
    pub wptr: Signal<In, Bits<10>>,
    /// Ring word `rptr` (low nine bits) is read; its data arrives the next
    /// cycle on `ring_data`.
    pub rptr: Signal<Out, Bits<10>>,
    pub ring_data: Signal<In, Bits<64>>,
    // Encapsulated frames (the encapsulation block's output port).
    pub out_data: Signal<Out, Bits<64>>,
    pub out_bytes: Signal<Out, Bits<4>>,
    pub out_last: Signal<Out, Bit>,
    pub out_valid: Signal<Out, Bit>,
    pub out_ready: Signal<In, Bit>,
    /// A frame's last beat left (a one-cycle pulse).
    pub ev_frame: Signal<Out, Bit>,

    rptr_r: DFF<Bits<10>>,
    /// A frame is being issued: word `o_j` of `o_words`.
    o_busy: DFF<Bit>,
    o_j: DFF<Bits<11>>,
    o_words: DFF<Bits<11>>,
    o_last_bytes: DFF<Bits<4>>,
    // Read stage: the word issued last cycle.
    s1_valid: DFF<Bit>,
    s1_ring: DFF<Bit>,
    s1_merge: DFF<Bit>,
    s1_hdr: DFF<Bits<64>>,
    s1_last: DFF<Bit>,
    s1_bytes: DFF<Bits<4>>,
    // Output queue: entry 0 is the head (on `out_*`), `f_cnt` entries valid.
    f_cnt: DFF<Bits<2>>,
    f0_data: DFF<Bits<64>>,
    f0_bytes: DFF<Bits<4>>,
    f0_last: DFF<Bit>,
    f1_data: DFF<Bits<64>>,
    f1_bytes: DFF<Bits<4>>,
    f1_last: DFF<Bit>,

    pop: Signal<Local, Bit>,
    occ: Signal<Local, Bits<3>>,
    space: Signal<Local, Bit>,
    cur_j: Signal<Local, Bits<11>>,
    cur_words: Signal<Local, Bits<11>>,
    cur_last_bytes: Signal<Local, Bits<4>>,
    need_ring: Signal<Local, Bit>,
    issue: Signal<Local, Bit>,
    hsel: Signal<Local, Bits<64>>,
    is_last: Signal<Local, Bit>,
    arrive: Signal<Local, Bits<64>>,
    keep_n: Signal<Local, Bits<2>>,
    push_at1: Signal<Local, Bit>,

    /// Ring word 0 keeps lanes 2-7 when merged with header bytes 48-49.
    #[default(konst(!0xFFFF))]
    c_merge_mask: Constant<Bits<64>>,
}

impl Logic for EncapOutput {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clock, rptr_r, o_busy, o_j, o_words, o_last_bytes, s1_valid, s1_ring, s1_merge, s1_hdr, s1_last,
            s1_bytes, f_cnt, f0_data, f0_bytes, f0_last, f1_data, f1_bytes, f1_last
        );
        self.pop.next = (self.f_cnt.q.val() != 0) & self.out_ready.val();
        // The queue has room for what is in flight plus one more word.
        self.occ.next = bit_cast::<3, 2>(self.f_cnt.q.val()) + bit_cast::<3, 1>(self.s1_valid.q.val().into());
        self.space.next = (self.occ.val() < 2) | ((self.occ.val() == 2) & self.pop.val());
        // A new frame starts at word 0 with the next header's sizes.
        self.cur_j.next = 0.into();
        self.cur_words.next = self.hdr_words.val();
        self.cur_last_bytes.next = self.hdr_last_bytes.val();
        if self.o_busy.q.val() {
            self.cur_j.next = self.o_j.q.val();
            self.cur_words.next = self.o_words.q.val();
            self.cur_last_bytes.next = self.o_last_bytes.q.val();
        }
        self.need_ring.next = self.cur_j.val() >= 6;
        self.issue.next = (self.o_busy.q.val() | self.hdr_valid.val())
            & self.space.val()
            & (!self.need_ring.val() | (self.rptr_r.q.val() != self.wptr.val()));
        self.hdr_index.next = self.cur_j.val().get_bits::<3>(0);
        self.hsel.next = 0.into();
        if self.cur_j.val() < 7 {
            self.hsel.next = self.hdr_word.val();
        }
        self.is_last.next = self.cur_j.val() + 1 == self.cur_words.val();
        self.rptr.next = self.rptr_r.q.val();
        self.hdr_release.next = false;
        self.s1_valid.d.next = self.issue.val();
        if self.issue.val() {
            self.s1_ring.d.next = self.need_ring.val();
            self.s1_merge.d.next = self.cur_j.val() == 6;
            self.s1_hdr.d.next = self.hsel.val();
            self.s1_last.d.next = self.is_last.val();
            self.s1_bytes.d.next = 8.into();
            if self.is_last.val() {
                self.s1_bytes.d.next = self.cur_last_bytes.val();
            }
            if self.need_ring.val() {
                self.rptr_r.d.next = self.rptr_r.q.val() + 1;
            }
            // The next-header registers are free once their last bytes are taken.
            self.hdr_release.next = self.cur_j.val() == 6;
            self.o_busy.d.next = !self.is_last.val();
            self.o_j.d.next = self.cur_j.val() + 1;
            self.o_words.d.next = self.cur_words.val();
            self.o_last_bytes.d.next = self.cur_last_bytes.val();
        }
        self.arrive.next = self.s1_hdr.q.val();
        if self.s1_ring.q.val() {
            self.arrive.next = self.ring_data.val();
            if self.s1_merge.q.val() {
                self.arrive.next = (self.ring_data.val() & self.c_merge_mask.val()) | self.s1_hdr.q.val();
            }
        }
        self.keep_n.next = self.f_cnt.q.val() - bit_cast::<2, 1>(self.pop.val().into());
        self.ev_frame.next = false;
        if self.pop.val() {
            self.f0_data.d.next = self.f1_data.q.val();
            self.f0_bytes.d.next = self.f1_bytes.q.val();
            self.f0_last.d.next = self.f1_last.q.val();
            self.ev_frame.next = self.f0_last.q.val();
        }
        self.push_at1.next = self.keep_n.val() != 0;
        self.f_cnt.d.next = self.keep_n.val() + bit_cast::<2, 1>(self.s1_valid.q.val().into());
        if self.s1_valid.q.val() {
            if self.push_at1.val() {
                self.f1_data.d.next = self.arrive.val();
                self.f1_bytes.d.next = self.s1_bytes.q.val();
                self.f1_last.d.next = self.s1_last.q.val();
            } else {
                self.f0_data.d.next = self.arrive.val();
                self.f0_bytes.d.next = self.s1_bytes.q.val();
                self.f0_last.d.next = self.s1_last.q.val();
            }
        }
        self.out_valid.next = self.f_cnt.q.val() != 0;
        self.out_data.next = self.f0_data.q.val();
        self.out_bytes.next = self.f0_bytes.q.val();
        self.out_last.next = self.f0_last.q.val();
        if self.reset.val() {
            self.rptr_r.d.next = 0.into();
            self.o_busy.d.next = false;
            self.s1_valid.d.next = false;
            self.f_cnt.d.next = 0.into();
        }
    }
}
