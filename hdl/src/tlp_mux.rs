//! The two ends of the card's TLP stream that more than one block shares:
//! `RxDemux` sends completions to the DMA engine and everything else to the
//! endpoint; `TxArbiter` merges the endpoint's and the DMA engine's TLPs,
//! a whole packet at a time, alternating priority, with no idle cycle
//! between back-to-back packets.

use crate::bus::{TlpSink, TlpSource};
use rust_hdl::prelude::*;

#[derive(LogicBlock, Default)]
pub struct RxDemux {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    /// The link's stream in; each TLP goes out on one of `ep` (requests,
    /// for the endpoint) and `dma` (completions, for the DMA engine), which
    /// both carry the link's beat (only `valid` and `ready` are steered).
    pub rx: TlpSink,
    pub ep: TlpSource,
    pub dma: TlpSource,
    to_dma: DFF<Bit>,
    is_cpl: Signal<Local, Bit>,
    route_dma: Signal<Local, Bit>,
}

impl Logic for RxDemux {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, to_dma);
        // Cpl/CplD/CplLk/CplDLk: Type 0101x with a 3DW header (Fmt 000 or 010).
        self.is_cpl.next = (self.rx.data.val().get_bits::<4>(25) == 5)
            & !self.rx.data.val().get_bit(29)
            & !self.rx.data.val().get_bit(31);
        self.route_dma.next = self.to_dma.q.val();
        if self.rx.sop.val() {
            self.route_dma.next = self.is_cpl.val();
        }
        self.ep.data.next = self.rx.data.val();
        self.ep.keep.next = self.rx.keep.val();
        self.ep.sop.next = self.rx.sop.val();
        self.ep.eop.next = self.rx.eop.val();
        self.ep.valid.next = self.rx.valid.val() & !self.route_dma.val();
        self.dma.data.next = self.rx.data.val();
        self.dma.keep.next = self.rx.keep.val();
        self.dma.sop.next = self.rx.sop.val();
        self.dma.eop.next = self.rx.eop.val();
        self.dma.valid.next = self.rx.valid.val() & self.route_dma.val();
        self.rx.ready.next = self.ep.ready.val();
        if self.route_dma.val() {
            self.rx.ready.next = self.dma.ready.val();
        }
        if self.rx.valid.val() & self.rx.ready.val() {
            self.to_dma.d.next = self.route_dma.val() & !self.rx.eop.val();
        }
        if self.reset.val() {
            self.to_dma.d.next = false;
        }
    }
}

#[derive(LogicBlock, Default)]
pub struct TxArbiter {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    /// Two TLP streams in (in the card: the endpoint's and the DMA
    /// engine's) and the merged one out.
    pub a: TlpSink,
    pub b: TlpSink,
    pub out: TlpSource,
    /// A packet is in progress and `owner_b` says whose.
    locked: DFF<Bit>,
    owner_b: DFF<Bit>,
    /// Who goes first when both start a packet in the same cycle.
    prefer_b: DFF<Bit>,
    pick_b: Signal<Local, Bit>,
}

impl Logic for TxArbiter {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, locked, owner_b, prefer_b);
        if self.locked.q.val() {
            self.pick_b.next = self.owner_b.q.val();
        } else if self.a.valid.val() & self.b.valid.val() {
            self.pick_b.next = self.prefer_b.q.val();
        } else {
            self.pick_b.next = self.b.valid.val();
        }
        self.out.data.next = self.a.data.val();
        self.out.keep.next = self.a.keep.val();
        self.out.sop.next = self.a.sop.val();
        self.out.eop.next = self.a.eop.val();
        self.out.valid.next = self.a.valid.val();
        self.a.ready.next = self.out.ready.val();
        self.b.ready.next = false;
        if self.pick_b.val() {
            self.out.data.next = self.b.data.val();
            self.out.keep.next = self.b.keep.val();
            self.out.sop.next = self.b.sop.val();
            self.out.eop.next = self.b.eop.val();
            self.out.valid.next = self.b.valid.val();
            self.a.ready.next = false;
            self.b.ready.next = self.out.ready.val();
        }
        if self.out.valid.val() & self.out.ready.val() {
            if self.out.eop.val() {
                self.locked.d.next = false;
                self.prefer_b.d.next = !self.pick_b.val();
            } else {
                self.locked.d.next = true;
                self.owner_b.d.next = self.pick_b.val();
            }
        }
        if self.reset.val() {
            self.locked.d.next = false;
            self.prefer_b.d.next = false;
        }
    }
}
