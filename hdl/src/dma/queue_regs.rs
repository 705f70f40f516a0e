//! Registers of one DMA queue (descriptor ring, completion ring, head and
//! tail, mode), one instance per queue. Offsets are `regmap::dma::Q_*`.

use crate::regmap::dma;
use crate::{dw_index, konst};
use rust_hdl::prelude::*;
use smart_default::SmartDefault;

#[derive(LogicBlock, SmartDefault)]
pub struct QueueRegs {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    /// This queue's block is addressed; `offset` is the DW index inside it.
    pub sel: Signal<In, Bit>,
    pub offset: Signal<In, Bits<4>>,
    pub wr_en: Signal<In, Bit>,
    pub wr_data: Signal<In, Bits<32>>,
    pub wr_mask: Signal<In, Bits<32>>,
    pub rd_data: Signal<Out, Bits<32>>,
    /// The engine finished the descriptor at `head`.
    pub head_inc: Signal<In, Bit>,
    pub ring_base: Signal<Out, Bits<64>>,
    pub cpl_base: Signal<Out, Bits<64>>,
    pub head: Signal<Out, Bits<12>>,
    /// `regmap::dma::QMODE_*`.
    pub mode: Signal<Out, Bits<2>>,
    /// The host's tail, the ring's index mask, and whether the queue may
    /// run (enabled, no error): a pipelined engine fetches ahead of `head`.
    pub tail_idx: Signal<Out, Bits<12>>,
    pub index_mask: Signal<Out, Bits<12>>,
    pub active: Signal<Out, Bit>,
    ring_lo: DFF<Bits<32>>,
    ring_hi: DFF<Bits<32>>,
    log2: DFF<Bits<4>>,
    cpl_lo: DFF<Bits<32>>,
    cpl_hi: DFF<Bits<32>>,
    tail: DFF<Bits<12>>,
    head_r: DFF<Bits<12>>,
    enabled: DFF<Bit>,
    error: DFF<Bit>,
    mode_r: DFF<Bits<2>>,
    merged: Signal<Local, Bits<32>>,
    entries_mask: Signal<Local, Bits<12>>,
    #[default(dw_index(dma::Q_RING_LO))]
    o_ring_lo: Constant<Bits<4>>,
    #[default(dw_index(dma::Q_RING_HI))]
    o_ring_hi: Constant<Bits<4>>,
    #[default(dw_index(dma::Q_RING_LOG2))]
    o_log2: Constant<Bits<4>>,
    #[default(dw_index(dma::Q_CPL_LO))]
    o_cpl_lo: Constant<Bits<4>>,
    #[default(dw_index(dma::Q_CPL_HI))]
    o_cpl_hi: Constant<Bits<4>>,
    #[default(dw_index(dma::Q_TAIL))]
    o_tail: Constant<Bits<4>>,
    #[default(dw_index(dma::Q_HEAD))]
    o_head: Constant<Bits<4>>,
    #[default(dw_index(dma::Q_STATUS))]
    o_status: Constant<Bits<4>>,
    #[default(dw_index(dma::Q_CTRL))]
    o_ctrl: Constant<Bits<4>>,
    #[default(dw_index(dma::Q_MODE))]
    o_mode: Constant<Bits<4>>,
    /// `Q_RING_LOG2`'s reset value, from the register map.
    #[default(konst(dma::Q_RING_LOG2_RESET as u64))]
    k_log2_reset: Constant<Bits<4>>,
    #[default(konst(1))]
    c_one: Constant<Bits<12>>,
}

impl Logic for QueueRegs {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, ring_lo, ring_hi, log2, cpl_lo, cpl_hi, tail, head_r, enabled, error, mode_r);
        self.entries_mask.next = (self.c_one.val() << self.log2.q.val()) - 1;
        self.rd_data.next = 0.into();
        if self.offset.val() == self.o_ring_lo.val() {
            self.rd_data.next = self.ring_lo.q.val();
        } else if self.offset.val() == self.o_ring_hi.val() {
            self.rd_data.next = self.ring_hi.q.val();
        } else if self.offset.val() == self.o_log2.val() {
            self.rd_data.next = bit_cast::<32, 4>(self.log2.q.val());
        } else if self.offset.val() == self.o_cpl_lo.val() {
            self.rd_data.next = self.cpl_lo.q.val();
        } else if self.offset.val() == self.o_cpl_hi.val() {
            self.rd_data.next = self.cpl_hi.q.val();
        } else if self.offset.val() == self.o_tail.val() {
            self.rd_data.next = bit_cast::<32, 12>(self.tail.q.val());
        } else if self.offset.val() == self.o_head.val() {
            self.rd_data.next = bit_cast::<32, 12>(self.head_r.q.val());
        } else if self.offset.val() == self.o_status.val() {
            self.rd_data.next = bit_cast::<32, 1>(self.error.q.val().into())
                | (bit_cast::<32, 1>(self.enabled.q.val().into()) << 1);
        } else if self.offset.val() == self.o_ctrl.val() {
            self.rd_data.next = bit_cast::<32, 1>(self.enabled.q.val().into());
        } else if self.offset.val() == self.o_mode.val() {
            self.rd_data.next = bit_cast::<32, 2>(self.mode_r.q.val());
        }
        self.merged.next = (self.rd_data.val() & !self.wr_mask.val()) | (self.wr_data.val() & self.wr_mask.val());
        if self.head_inc.val() {
            self.head_r.d.next = (self.head_r.q.val() + 1) & self.entries_mask.val();
        }
        if self.sel.val() & self.wr_en.val() {
            if self.offset.val() == self.o_ring_lo.val() {
                // Descriptor rings are 32-byte aligned.
                self.ring_lo.d.next = self.merged.val() & 0xFFFF_FFE0_u64;
            } else if self.offset.val() == self.o_ring_hi.val() {
                self.ring_hi.d.next = self.merged.val();
            } else if self.offset.val() == self.o_log2.val() {
                // 2 to 4096 entries.
                if self.merged.val().get_bits::<4>(0) == 0 {
                    self.log2.d.next = self.k_log2_reset.val();
                } else if self.merged.val() > 12 {
                    self.log2.d.next = 12.into();
                } else {
                    self.log2.d.next = self.merged.val().get_bits::<4>(0);
                }
            } else if self.offset.val() == self.o_cpl_lo.val() {
                self.cpl_lo.d.next = self.merged.val() & 0xFFFF_FFF0_u64;
            } else if self.offset.val() == self.o_cpl_hi.val() {
                self.cpl_hi.d.next = self.merged.val();
            } else if self.offset.val() == self.o_tail.val() {
                // An index outside the ring stops the queue instead of
                // letting the card fetch past its end.
                if (self.merged.val() & !bit_cast::<32, 12>(self.entries_mask.val())).any() {
                    self.error.d.next = true;
                } else {
                    self.tail.d.next = self.merged.val().get_bits::<12>(0);
                }
            } else if self.offset.val() == self.o_ctrl.val() {
                self.enabled.d.next = self.merged.val().get_bit(0);
                if self.merged.val().get_bit(1) {
                    self.head_r.d.next = 0.into();
                    self.tail.d.next = 0.into();
                    self.error.d.next = false;
                }
            } else if self.offset.val() == self.o_mode.val() {
                // Mode 3 is not defined: such a write is ignored.
                if self.merged.val().get_bits::<2>(0) != 3 {
                    self.mode_r.d.next = self.merged.val().get_bits::<2>(0);
                }
            }
        }
        if self.reset.val() {
            self.ring_lo.d.next = 0.into();
            self.ring_hi.d.next = 0.into();
            self.log2.d.next = self.k_log2_reset.val();
            self.cpl_lo.d.next = 0.into();
            self.cpl_hi.d.next = 0.into();
            self.tail.d.next = 0.into();
            self.head_r.d.next = 0.into();
            self.enabled.d.next = false;
            self.error.d.next = false;
            self.mode_r.d.next = 0.into();
        }
        self.ring_base.next = (bit_cast::<64, 32>(self.ring_hi.q.val()) << 32) | bit_cast::<64, 32>(self.ring_lo.q.val());
        self.cpl_base.next = (bit_cast::<64, 32>(self.cpl_hi.q.val()) << 32) | bit_cast::<64, 32>(self.cpl_lo.q.val());
        self.head.next = self.head_r.q.val();
        self.mode.next = self.mode_r.q.val();
        self.tail_idx.next = self.tail.q.val();
        self.index_mask.next = self.entries_mask.val();
        self.active.next = self.enabled.q.val() & !self.error.q.val();
    }
}
