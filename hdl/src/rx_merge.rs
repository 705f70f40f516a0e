//! Merges the two card-to-host frame sources in front of the DMA engine's
//! network-receive port: decapsulated frames (with their queue, tenant and
//! length) and the tagged cache's misses, each turned into a 16-byte miss
//! record frame for `regmap::cache::MISS_QUEUE`. Arbitration is per frame
//! and alternates when both wait, so a flood of packets cannot starve the
//! miss path (nor misses the packets).

use crate::regmap::cache as c;
use crate::konst;
use rust_hdl::prelude::*;
use smart_default::SmartDefault;

#[derive(Copy, Clone, PartialEq, Debug, LogicState)]
pub enum MergeState {
    Idle,
    Frame,
    Miss0,
    Miss1,
}

#[derive(LogicBlock, SmartDefault)]
pub struct RxMerge {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    // decapsulated frames
    pub a_data: Signal<In, Bits<64>>,
    pub a_bytes: Signal<In, Bits<4>>,
    pub a_last: Signal<In, Bit>,
    pub a_valid: Signal<In, Bit>,
    pub a_ready: Signal<Out, Bit>,
    pub a_queue: Signal<In, Bits<2>>,
    pub a_tenant: Signal<In, Bits<4>>,
    pub a_len: Signal<In, Bits<14>>,
    // cache misses (head of the miss FIFO, held until read)
    pub miss_valid: Signal<In, Bit>,
    pub miss_ready: Signal<Out, Bit>,
    pub miss_tag: Signal<In, Bits<4>>,
    pub miss_key: Signal<In, Bits<32>>,
    // to the DMA engine
    pub out_data: Signal<Out, Bits<64>>,
    pub out_bytes: Signal<Out, Bits<4>>,
    pub out_last: Signal<Out, Bit>,
    pub out_valid: Signal<Out, Bit>,
    pub out_ready: Signal<In, Bit>,
    pub out_queue: Signal<Out, Bits<2>>,
    pub out_tenant: Signal<Out, Bits<4>>,
    pub out_len: Signal<Out, Bits<14>>,
    state: DFF<MergeState>,
    /// The miss path goes first next time both wait.
    miss_first: DFF<Bit>,
    #[default(konst(c::MISS_QUEUE as u64))]
    k_miss_queue: Constant<Bits<2>>,
    #[default(konst(c::MISS_RECORD_BYTES as u64))]
    k_miss_len: Constant<Bits<14>>,
}

impl Logic for RxMerge {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, state, miss_first);
        // Frame path by default.
        self.out_data.next = self.a_data.val();
        self.out_bytes.next = self.a_bytes.val();
        self.out_last.next = self.a_last.val();
        self.out_valid.next = false;
        self.out_queue.next = self.a_queue.val();
        self.out_tenant.next = self.a_tenant.val();
        self.out_len.next = self.a_len.val();
        self.a_ready.next = false;
        self.miss_ready.next = false;
        match self.state.q.val() {
            MergeState::Idle => {
                if self.miss_valid.val() & (self.miss_first.q.val() | !self.a_valid.val()) {
                    self.state.d.next = MergeState::Miss0;
                } else if self.a_valid.val() {
                    self.state.d.next = MergeState::Frame;
                }
            }
            MergeState::Frame => {
                self.out_valid.next = self.a_valid.val();
                self.a_ready.next = self.out_ready.val();
                if self.a_valid.val() & self.out_ready.val() & self.a_last.val() {
                    self.state.d.next = MergeState::Idle;
                    self.miss_first.d.next = true;
                }
            }
            MergeState::Miss0 => {
                self.out_valid.next = true;
                self.out_data.next = bit_cast::<64, 32>(self.miss_key.val()) | (bit_cast::<64, 4>(self.miss_tag.val()) << 32);
                self.out_bytes.next = 8.into();
                self.out_last.next = false;
                self.out_queue.next = self.k_miss_queue.val();
                self.out_tenant.next = self.miss_tag.val();
                self.out_len.next = self.k_miss_len.val();
                if self.out_ready.val() {
                    self.state.d.next = MergeState::Miss1;
                }
            }
            MergeState::Miss1 => {
                self.out_valid.next = true;
                self.out_data.next = 0.into();
                self.out_bytes.next = 8.into();
                self.out_last.next = true;
                self.out_queue.next = self.k_miss_queue.val();
                self.out_tenant.next = self.miss_tag.val();
                self.out_len.next = self.k_miss_len.val();
                if self.out_ready.val() {
                    self.miss_ready.next = true;
                    self.state.d.next = MergeState::Idle;
                    self.miss_first.d.next = false;
                }
            }
            _ => {
                self.state.d.next = MergeState::Idle;
            }
        }
        if self.reset.val() {
            self.state.d.next = MergeState::Idle;
            self.miss_first.d.next = false;
        }
    }
}
