//! A register slice (skid buffer) for a TLP stream: every output of the
//! block comes from a flop, so neither `tx.ready` nor the beat runs through
//! it combinationally. The DMA engine uses one on the link and one between
//! its back end and the arbiter that merges reads and writes, so that the
//! back end's transfer-buffer read address (which moves when its beat is
//! taken) does not wait for the arbiters' choice (timing, docs/tlp.md).
//!
//! Full rate: a beat can move in and one out every cycle. One cycle of
//! latency. When `tx.ready` drops while a beat is on the output, the beat
//! that `rx.ready` (still high from the cycle before) let in waits in the
//! skid register; `rx.ready` is low while that register is full.

use crate::bus::{TlpSink, TlpSource};
use rust_hdl::prelude::*;

#[derive(LogicBlock, Default)]
pub struct TlpSkid {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    pub rx: TlpSink,
    pub tx: TlpSource,
    /// The beat on the output: data 63:0, keep 65:64, sop 66, eop 67.
    out_valid: DFF<Bit>,
    out_beat: DFF<Bits<68>>,
    /// The beat taken while the output was stalled.
    skid_valid: DFF<Bit>,
    skid_beat: DFF<Bits<68>>,
    in_beat: Signal<Local, Bits<68>>,
    in_take: Signal<Local, Bit>,
}

impl Logic for TlpSkid {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, out_valid, out_beat, skid_valid, skid_beat);
        self.rx.ready.next = !self.skid_valid.q.val();
        self.tx.valid.next = self.out_valid.q.val();
        self.tx.data.next = self.out_beat.q.val().get_bits::<64>(0);
        self.tx.keep.next = self.out_beat.q.val().get_bits::<2>(64);
        self.tx.sop.next = self.out_beat.q.val().get_bit(66);
        self.tx.eop.next = self.out_beat.q.val().get_bit(67);
        self.in_beat.next = bit_cast::<68, 64>(self.rx.data.val())
            | (bit_cast::<68, 2>(self.rx.keep.val()) << 64)
            | (bit_cast::<68, 1>(self.rx.sop.val().into()) << 66)
            | (bit_cast::<68, 1>(self.rx.eop.val().into()) << 67);
        self.in_take.next = self.rx.valid.val() & !self.skid_valid.q.val();
        if self.tx.ready.val() | !self.out_valid.q.val() {
            // The output moves on (or was empty): it takes the waiting beat
            // first, else the one coming in.
            if self.skid_valid.q.val() {
                self.out_beat.d.next = self.skid_beat.q.val();
                self.skid_valid.d.next = false;
            } else {
                self.out_valid.d.next = self.in_take.val();
                self.out_beat.d.next = self.in_beat.val();
            }
        } else if self.in_take.val() {
            self.skid_valid.d.next = true;
            self.skid_beat.d.next = self.in_beat.val();
        }
        if self.reset.val() {
            self.out_valid.d.next = false;
            self.skid_valid.d.next = false;
        }
    }
}
