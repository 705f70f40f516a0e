//! The two ends of the card's TLP stream that more than one block shares:
//! `RxDemux` sends completions to the DMA engine and everything else to the
//! endpoint; `TxArbiter` merges the endpoint's and the DMA engine's TLPs,
//! a whole packet at a time, alternating priority, with no idle cycle
//! between back-to-back packets.

use rust_hdl::prelude::*;

#[derive(LogicBlock, Default)]
pub struct RxDemux {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    pub in_data: Signal<In, Bits<64>>,
    pub in_sop: Signal<In, Bit>,
    pub in_eop: Signal<In, Bit>,
    pub in_valid: Signal<In, Bit>,
    pub in_ready: Signal<Out, Bit>,
    pub ep_valid: Signal<Out, Bit>,
    pub ep_ready: Signal<In, Bit>,
    pub dma_valid: Signal<Out, Bit>,
    pub dma_ready: Signal<In, Bit>,
    to_dma: DFF<Bit>,
    is_cpl: Signal<Local, Bit>,
    route_dma: Signal<Local, Bit>,
}

impl Logic for RxDemux {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, to_dma);
        // Cpl/CplD/CplLk/CplDLk: Type 0101x with a 3DW header (Fmt 000 or 010).
        self.is_cpl.next = (self.in_data.val().get_bits::<4>(25) == 5)
            & !self.in_data.val().get_bit(29)
            & !self.in_data.val().get_bit(31);
        self.route_dma.next = self.to_dma.q.val();
        if self.in_sop.val() {
            self.route_dma.next = self.is_cpl.val();
        }
        self.ep_valid.next = self.in_valid.val() & !self.route_dma.val();
        self.dma_valid.next = self.in_valid.val() & self.route_dma.val();
        self.in_ready.next = self.ep_ready.val();
        if self.route_dma.val() {
            self.in_ready.next = self.dma_ready.val();
        }
        if self.in_valid.val() & self.in_ready.val() {
            self.to_dma.d.next = self.route_dma.val() & !self.in_eop.val();
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
    pub a_data: Signal<In, Bits<64>>,
    pub a_keep: Signal<In, Bits<2>>,
    pub a_sop: Signal<In, Bit>,
    pub a_eop: Signal<In, Bit>,
    pub a_valid: Signal<In, Bit>,
    pub a_ready: Signal<Out, Bit>,
    pub b_data: Signal<In, Bits<64>>,
    pub b_keep: Signal<In, Bits<2>>,
    pub b_sop: Signal<In, Bit>,
    pub b_eop: Signal<In, Bit>,
    pub b_valid: Signal<In, Bit>,
    pub b_ready: Signal<Out, Bit>,
    pub out_data: Signal<Out, Bits<64>>,
    pub out_keep: Signal<Out, Bits<2>>,
    pub out_sop: Signal<Out, Bit>,
    pub out_eop: Signal<Out, Bit>,
    pub out_valid: Signal<Out, Bit>,
    pub out_ready: Signal<In, Bit>,
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
        } else if self.a_valid.val() & self.b_valid.val() {
            self.pick_b.next = self.prefer_b.q.val();
        } else {
            self.pick_b.next = self.b_valid.val();
        }
        self.out_data.next = self.a_data.val();
        self.out_keep.next = self.a_keep.val();
        self.out_sop.next = self.a_sop.val();
        self.out_eop.next = self.a_eop.val();
        self.out_valid.next = self.a_valid.val();
        self.a_ready.next = self.out_ready.val();
        self.b_ready.next = false;
        if self.pick_b.val() {
            self.out_data.next = self.b_data.val();
            self.out_keep.next = self.b_keep.val();
            self.out_sop.next = self.b_sop.val();
            self.out_eop.next = self.b_eop.val();
            self.out_valid.next = self.b_valid.val();
            self.a_ready.next = false;
            self.b_ready.next = self.out_ready.val();
        }
        if self.out_valid.val() & self.out_ready.val() {
            if self.out_eop.val() {
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
