//! Stage W of the encapsulation pipeline: takes the inner frame's beats from
//! the host queues and writes them into the ring, and the frame's first
//! eleven beats into the parser's capture.
//!
//! * The length used is the descriptor's `in_len` clamped to
//!   `MIN_FRAME..=MAX_FRAME`. The frame is cut to it (the input's extra
//!   beats are consumed and dropped) or zero-padded (the writer makes the
//!   missing beats itself), so a wrong length never locks the pipeline and
//!   the header always describes what is sent (`offcard_net::tx::normalize`).
//! * Ring word i holds inner bytes 8i-2 .. 8i+5: the 50-byte outer header
//!   leaves two bytes in its last beat, so the shift is done once here and
//!   the output stage copies ring words as they are. Word 0's two free lanes
//!   are filled by the output with the header's last two bytes.
//! * Capture word i (i < 11) holds inner bytes 8i .. 8i+7 (unshifted, what
//!   the parser looks at): an IPv4 header with options behind a VLAN tag
//!   puts the ports as far as byte 82.
//! * A frame of a disabled tenant (`tenant_enable`) is consumed and counted,
//!   never written.
//!
//! A new frame starts only when the capture is free (`capture_full` low: the
//! parser has taken the previous frame), the flow table is not being
//! cleared, and the ring has room; `in_ready` depends on registers only.

use crate::konst;
use crate::regmap::net::{MAX_FRAME, MIN_FRAME};
use rust_hdl::prelude::*;
use smart_default::SmartDefault;

#[derive(Copy, Clone, PartialEq, Debug, LogicState)]
pub enum WriterState {
    /// Waiting for a frame's first beat.
    Idle,
    /// Writing ring words 1.. of the frame.
    Data,
    /// Consuming input beats that are not part of the frame.
    Discard,
}

#[derive(LogicBlock, SmartDefault)]
pub struct EncapWriter {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    // Inner frames (the encapsulation block's input port).
    pub in_data: Signal<In, Bits<64>>,
    pub in_bytes: Signal<In, Bits<4>>,
    pub in_last: Signal<In, Bit>,
    pub in_valid: Signal<In, Bit>,
    pub in_ready: Signal<Out, Bit>,
    pub in_tenant: Signal<In, Bits<4>>,
    pub in_len: Signal<In, Bits<14>>,
    /// `TENANT_ENABLE`: bit t lets tenant t's frames through.
    pub tenant_enable: Signal<In, Bits<16>>,
    /// The capture still holds a frame the parser has not taken.
    pub capture_full: Signal<In, Bit>,
    /// The flow table is being cleared after reset: no frame may start.
    pub clearing: Signal<In, Bit>,
    /// The output stage's read pointer (the ring is full when the writer is
    /// 512 words ahead of it).
    pub rptr: Signal<In, Bits<10>>,
    // Ring write port: word `wptr` (low nine bits) gets `ring_data`.
    pub ring_write: Signal<Out, Bit>,
    pub ring_data: Signal<Out, Bits<64>>,
    /// Words written so far (wrapping); the output reads up to it.
    pub wptr: Signal<Out, Bits<10>>,
    // Capture write port (to the parser).
    /// A frame's first beat: the capture starts over (its other words become
    /// 0) and takes `frame_tenant` and `frame_len`.
    pub cap_first: Signal<Out, Bit>,
    /// Capture word `cap_index` gets `cap_data`.
    pub cap_write: Signal<Out, Bit>,
    pub cap_index: Signal<Out, Bits<4>>,
    pub cap_data: Signal<Out, Bits<64>>,
    /// The capture holds everything the parser needs (eleven words, or the
    /// whole frame if it is shorter).
    pub cap_done: Signal<Out, Bit>,
    pub frame_tenant: Signal<Out, Bits<4>>,
    /// The length used (clamped).
    pub frame_len: Signal<Out, Bits<14>>,
    // Counter events (one-cycle pulses).
    pub ev_drop: Signal<Out, Bit>,
    pub ev_mismatch: Signal<Out, Bit>,
    pub ev_clamped: Signal<Out, Bit>,

    state: DFF<WriterState>,
    /// Ring word being written (0 is written from Idle).
    w_i: DFF<Bits<11>>,
    /// Input beats the length allows, and ring words it makes (one more
    /// when the two-byte shift spills into another word).
    w_beats: DFF<Bits<11>>,
    w_words: DFF<Bits<11>>,
    /// Bytes of the length's last beat (1..8).
    w_last_bytes: DFF<Bits<4>>,
    /// The previous beat's top two bytes, the next ring word's lanes 0-1.
    w_carry: DFF<Bits<16>>,
    /// The input's last beat has been taken (the rest is padding).
    w_ended: DFF<Bit>,
    /// The input went on past the length (the rest is discarded).
    w_long: DFF<Bit>,
    /// The input disagreed with the length somewhere in this frame.
    w_mismatch: DFF<Bit>,
    wptr_r: DFF<Bits<10>>,

    len_used: Signal<Local, Bits<14>>,
    len_clamped: Signal<Local, Bit>,
    ring_used: Signal<Local, Bits<10>>,
    ring_space: Signal<Local, Bit>,
    en_bits: Signal<Local, Bits<16>>,
    in_bytes_c: Signal<Local, Bits<4>>,
    take_input: Signal<Local, Bit>,
    can_go: Signal<Local, Bit>,
    lanes: Signal<Local, Bits<4>>,
    lane_mask: Signal<Local, Bits<64>>,
    wdata: Signal<Local, Bits<64>>,
    beat_mismatch: Signal<Local, Bit>,

    #[default(konst(MIN_FRAME as u64))]
    c_min_len: Constant<Bits<14>>,
    #[default(konst(MAX_FRAME as u64))]
    c_max_len: Constant<Bits<14>>,
    #[default(konst(1))]
    c_one64: Constant<Bits<64>>,
    #[default(konst(u64::MAX))]
    c_ones64: Constant<Bits<64>>,
}

impl Logic for EncapWriter {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clock, state, w_i, w_beats, w_words, w_last_bytes, w_carry, w_ended, w_long, w_mismatch, wptr_r
        );
        self.len_used.next = self.in_len.val();
        self.len_clamped.next = false;
        if self.in_len.val() < self.c_min_len.val() {
            self.len_used.next = self.c_min_len.val();
            self.len_clamped.next = true;
        }
        if self.in_len.val() > self.c_max_len.val() {
            self.len_used.next = self.c_max_len.val();
            self.len_clamped.next = true;
        }
        self.ring_used.next = self.wptr_r.q.val() - self.rptr.val();
        self.ring_space.next = !self.ring_used.val().get_bit(9);
        self.en_bits.next = self.tenant_enable.val() >> self.in_tenant.val();
        // in_bytes is only looked at on a last beat: 0 means no bytes, above 8 means 8.
        self.in_bytes_c.next = self.in_bytes.val();
        if self.in_bytes.val() > 8 {
            self.in_bytes_c.next = 8.into();
        }
        self.wptr.next = self.wptr_r.q.val();
        self.frame_tenant.next = self.in_tenant.val();
        self.frame_len.next = self.len_used.val();
        self.ring_write.next = false;
        self.in_ready.next = false;
        self.take_input.next = false;
        self.can_go.next = false;
        self.cap_first.next = false;
        self.cap_write.next = false;
        self.cap_index.next = self.w_i.q.val().get_bits::<4>(0);
        self.cap_done.next = false;
        self.ev_drop.next = false;
        self.ev_mismatch.next = false;
        self.ev_clamped.next = false;
        // Bytes of this beat that belong to the frame: all, unless it is the
        // input's last beat or the last beat the length allows.
        self.lanes.next = 8.into();
        if self.state.q.val() == WriterState::Data {
            self.take_input.next = (self.w_i.q.val() < self.w_beats.q.val()) & !self.w_ended.q.val();
            if (self.w_i.q.val() + 1 == self.w_beats.q.val()) & (self.w_last_bytes.q.val() != 8) {
                self.lanes.next = self.w_last_bytes.q.val();
            }
        }
        if self.in_last.val() & (self.in_bytes_c.val() < self.lanes.val()) {
            self.lanes.next = self.in_bytes_c.val();
        }
        self.lane_mask.next = self.c_ones64.val();
        if self.lanes.val() < 8 {
            self.lane_mask.next = (self.c_one64.val() << (bit_cast::<7, 4>(self.lanes.val()) << 3)) - 1;
        }
        // Padding beats (after the input ended) are zero.
        self.wdata.next = 0.into();
        if (self.state.q.val() == WriterState::Idle) | self.take_input.val() {
            self.wdata.next = self.in_data.val() & self.lane_mask.val();
        }
        self.cap_data.next = self.wdata.val();
        // The input disagrees with the length: ends early, or has bytes left
        // after the last beat the length allows.
        self.beat_mismatch.next = self.take_input.val()
            & ((self.in_last.val()
                & ((self.w_i.q.val() + 1 < self.w_beats.q.val())
                    | (self.in_bytes_c.val() != self.w_last_bytes.q.val())))
                | (!self.in_last.val() & (self.w_i.q.val() + 1 == self.w_beats.q.val())));
        self.ring_data.next = (self.wdata.val() << 16) | bit_cast::<64, 16>(self.w_carry.q.val());
        match self.state.q.val() {
            WriterState::Idle => {
                self.in_ready.next = !self.clearing.val() & !self.capture_full.val() & self.ring_space.val();
                if self.in_valid.val() & self.in_ready.val() {
                    self.ev_clamped.next = self.len_clamped.val();
                    if !self.en_bits.val().get_bit(0) {
                        self.ev_drop.next = true;
                        if !self.in_last.val() {
                            self.state.d.next = WriterState::Discard;
                        }
                    } else {
                        // Word 0: lanes 0-1 are filled by the header's last two bytes.
                        self.ring_data.next = self.wdata.val() << 16;
                        self.ring_write.next = true;
                        self.wptr_r.d.next = self.wptr_r.q.val() + 1;
                        self.w_carry.d.next = self.wdata.val().get_bits::<16>(48);
                        self.w_i.d.next = 1.into();
                        self.w_beats.d.next = bit_cast::<11, 14>((self.len_used.val() + 7) >> 3);
                        self.w_words.d.next = bit_cast::<11, 14>((self.len_used.val() + 9) >> 3);
                        self.w_last_bytes.d.next = bit_cast::<4, 14>(((self.len_used.val() + 7) & 7) + 1);
                        // A frame is at least eight beats, so an input that
                        // ends here is short: the rest is zero padding.
                        self.w_ended.d.next = self.in_last.val();
                        self.w_mismatch.d.next = self.in_last.val();
                        self.w_long.d.next = false;
                        self.cap_first.next = true;
                        self.cap_write.next = true;
                        self.cap_index.next = 0.into();
                        self.state.d.next = WriterState::Data;
                    }
                }
            }
            WriterState::Data => {
                self.in_ready.next = self.take_input.val() & self.ring_space.val();
                self.can_go.next = self.ring_space.val() & (!self.take_input.val() | self.in_valid.val());
                if self.can_go.val() {
                    self.ring_write.next = true;
                    self.wptr_r.d.next = self.wptr_r.q.val() + 1;
                    self.w_carry.d.next = self.wdata.val().get_bits::<16>(48);
                    self.w_i.d.next = self.w_i.q.val() + 1;
                    self.cap_write.next = self.w_i.q.val() <= 10;
                    // Done at word 10, or at the frame's last ring word if
                    // the frame has fewer.
                    self.cap_done.next = (self.w_i.q.val() == 10)
                        | ((self.w_i.q.val() < 10) & (self.w_i.q.val() + 1 == self.w_words.q.val()));
                    if self.beat_mismatch.val() {
                        self.w_mismatch.d.next = true;
                    }
                    if self.take_input.val() & self.in_last.val() {
                        self.w_ended.d.next = true;
                    }
                    if self.w_i.q.val() + 1 == self.w_words.q.val() {
                        self.ev_mismatch.next = self.w_mismatch.q.val() | self.beat_mismatch.val();
                        self.state.d.next = WriterState::Idle;
                        // More data than the length: the rest is discarded.
                        if self.w_long.q.val() | (self.take_input.val() & !self.in_last.val()) {
                            self.state.d.next = WriterState::Discard;
                        }
                    } else if self.take_input.val()
                        & !self.in_last.val()
                        & (self.w_i.q.val() + 1 == self.w_beats.q.val())
                    {
                        self.w_long.d.next = true;
                    }
                }
            }
            WriterState::Discard => {
                self.in_ready.next = true;
                if self.in_valid.val() & self.in_last.val() {
                    self.state.d.next = WriterState::Idle;
                }
            }
            _ => {
                self.state.d.next = WriterState::Idle;
            }
        }
        if self.reset.val() {
            self.state.d.next = WriterState::Idle;
            self.wptr_r.d.next = 0.into();
        }
    }
}
