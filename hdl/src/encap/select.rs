//! Path selection: which of the tenant's eight entropy values (outer UDP
//! source ports) a frame gets, written the way `offcard_net::path::Selector`
//! is, so the two agree packet for packet.
//!
//! A frame with hash h of tenant t at time `now` uses `base = h & 7` and the
//! flow-table slot `(t << 6) | (h >> 3 & 63)`, holding `(last, offset)`:
//!
//! * per-flow (0): start at `base`;
//! * flowlet (1): `idle = now - last > gap` (32-bit wrapping); start at
//!   `base + offset + idle`: the path moves on only after an idle gap;
//! * spray (2): start at `base + offset + 1`: each packet takes the next path;
//!
//! then the first healthy path at or after the start is used (the start if
//! all are bad), and the slot becomes `(now, used - base)`. Flows that share
//! a slot share its state, as in any hardware flowlet table.
//!
//! Timing: present the frame (tenant, hash, time and the tenant's policy)
//! and hold it; the cycle after, the slot is read; the cycle after that,
//! the start path (the idle test's 32-bit subtract and compare, and the
//! policy's adds) is registered, and from then on `decide` may be raised:
//! that cycle the first healthy path from the start is chosen, the slot
//! written and the events pulse; the cycle after, `port` holds the entropy
//! value (until the next decision). (The start was computed in the decision
//! cycle until issue 15: the table read, the idle test, the rotate and the
//! write-back were one 14 ns path, the card's longest.) After reset the flow table is cleared (1024 cycles,
//! `clearing`), during which no frame may start.

use crate::konst;
use crate::regmap::encap;
use rust_hdl::prelude::*;
use smart_default::SmartDefault;

// The widths below follow these (eight paths, 64 slots per tenant).
const _: () = assert!(encap::PATHS == 8 && encap::FLOW_SLOTS_LOG2 == 6 && encap::TENANTS == 16);

#[derive(LogicBlock, SmartDefault)]
pub struct EncapSelect {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    pub tenant: Signal<In, Bits<4>>,
    /// The flow hash's bits 8:0 (the base path is bits 2:0, the slot bits 8:3).
    pub hash: Signal<In, Bits<9>>,
    pub frame_time: Signal<In, Bits<32>>,
    /// The tenant's `T_CONFIG` policy field, `T_FLOWLET_GAP`, `T_BAD_PATHS`.
    pub policy: Signal<In, Bits<2>>,
    pub gap: Signal<In, Bits<32>>,
    pub bad: Signal<In, Bits<8>>,
    pub decide: Signal<In, Bit>,
    /// The chosen path's entropy value, from the cycle after `decide`.
    pub port: Signal<Out, Bits<16>>,
    /// With `decide`: a flowlet's slot was idle past the gap.
    pub ev_repick: Signal<Out, Bit>,
    /// With `decide`: the start path was bad and another was used.
    pub ev_avoided: Signal<Out, Bit>,
    pub clearing: Signal<Out, Bit>,
    /// Path table write (BAR0 `T_PATHS*`: two entropy values a DW, the
    /// lower path in bits 15:0).
    pub path_write: Signal<In, Bit>,
    pub path_tenant: Signal<In, Bits<4>>,
    pub path_word: Signal<In, Bits<2>>,
    pub path_data: Signal<In, Bits<32>>,

    /// Path table: RAM `w` holds paths 2w and 2w+1 (two entropy values a
    /// word), address = tenant. Four RAMs read in parallel by tenant, not one
    /// read at {tenant, chosen path}: the RAM address then does not wait for
    /// the choice (it was the card's critical path), and the chosen path
    /// picks among the four words the cycle after, as the half word was
    /// picked before.
    paths: [RAM<Bits<32>, 4>; 4],
    /// Flow table: {last time [34:3], path offset [2:0]}, address {tenant, slot}.
    flows: RAM<Bits<35>, 10>,
    /// The path chosen at the last decision (its bit 0 picks the half word).
    chosen_r: DFF<Bits<3>>,
    /// Stage 1 (registered every cycle from the slot read): the start path,
    /// the base path and the idle test.
    start_r: DFF<Bits<3>>,
    base_r: DFF<Bits<3>>,
    idle_r: DFF<Bit>,
    clearing_r: DFF<Bit>,
    clear_idx: DFF<Bits<10>>,

    flow_slot: Signal<Local, Bits<10>>,
    st_off: Signal<Local, Bits<3>>,
    st_last: Signal<Local, Bits<32>>,
    idle: Signal<Local, Bit>,
    base: Signal<Local, Bits<3>>,
    start: Signal<Local, Bits<3>>,
    bad2: Signal<Local, Bits<16>>,
    /// The bad mask rotated so that bit 0 is the start path.
    rot: Signal<Local, Bits<8>>,
    healthy: Signal<Local, Bits<8>>,
    first: Signal<Local, Bits<8>>,
    skip: Signal<Local, Bits<3>>,
    chosen: Signal<Local, Bits<3>>,
    new_off: Signal<Local, Bits<3>>,

    #[default(konst(encap::POLICY_FLOWLET as u64))]
    c_flowlet: Constant<Bits<2>>,
    #[default(konst(encap::POLICY_SPRAY as u64))]
    c_spray: Constant<Bits<2>>,
}

impl Logic for EncapSelect {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, chosen_r, start_r, base_r, idle_r, clearing_r, clear_idx);
        self.flows.read_clock.next = self.clock.val();
        self.flows.write_clock.next = self.clock.val();
        for w in 0..4 {
            self.paths[w].read_clock.next = self.clock.val();
            self.paths[w].write_clock.next = self.clock.val();
            self.paths[w].write_address.next = self.path_tenant.val();
            self.paths[w].write_data.next = self.path_data.val();
            self.paths[w].write_enable.next = self.path_write.val() & (self.path_word.val().index() == w);
            self.paths[w].read_address.next = self.tenant.val();
        }

        // The slot is read every cycle for the frame presented.
        self.flow_slot.next = (bit_cast::<10, 4>(self.tenant.val()) << 6) | bit_cast::<10, 6>(self.hash.val().get_bits::<6>(3));
        self.flows.read_address.next = self.flow_slot.val();
        self.st_off.next = self.flows.read_data.val().get_bits::<3>(0);
        self.st_last.next = self.flows.read_data.val().get_bits::<32>(3);
        self.idle.next = (self.frame_time.val() - self.st_last.val()) > self.gap.val();
        self.base.next = self.hash.val().get_bits::<3>(0);
        self.start.next = self.base.val();
        if self.policy.val() == self.c_flowlet.val() {
            self.start.next = self.base.val() + self.st_off.val() + bit_cast::<3, 1>(self.idle.val().into());
        }
        if self.policy.val() == self.c_spray.val() {
            self.start.next = self.base.val() + self.st_off.val() + 1;
        }
        self.start_r.d.next = self.start.val();
        self.base_r.d.next = self.base.val();
        self.idle_r.d.next = self.idle.val();
        // First healthy path at or after start: the lowest set bit of the
        // healthy mask rotated to start, encoded (0 if none is healthy).
        self.bad2.next = (bit_cast::<16, 8>(self.bad.val()) << 8) | bit_cast::<16, 8>(self.bad.val());
        self.rot.next = bit_cast::<8, 16>(self.bad2.val() >> self.start_r.q.val());
        self.healthy.next = !self.rot.val();
        self.first.next = self.healthy.val() & (!self.healthy.val() + 1);
        self.skip.next = bit_cast::<3, 1>((self.first.val() & 0xAA).any().into())
            | (bit_cast::<3, 1>((self.first.val() & 0xCC).any().into()) << 1)
            | (bit_cast::<3, 1>((self.first.val() & 0xF0).any().into()) << 2);
        self.chosen.next = self.start_r.q.val() + self.skip.val();
        // Wrapping 3-bit arithmetic goes through a 3-bit Local: inside a
        // wider bit_cast, Verilog would evaluate it at the wider width.
        self.new_off.next = self.chosen.val() - self.base_r.q.val();

        self.flows.write_address.next = self.flow_slot.val();
        self.flows.write_data.next = (bit_cast::<35, 32>(self.frame_time.val()) << 3) | bit_cast::<35, 3>(self.new_off.val());
        self.flows.write_enable.next = self.decide.val();
        self.ev_repick.next = self.decide.val() & (self.policy.val() == self.c_flowlet.val()) & self.idle_r.q.val();
        self.ev_avoided.next = self.decide.val() & (self.skip.val() != 0);
        if self.decide.val() {
            self.chosen_r.d.next = self.chosen.val();
        }
        // The tenant's eight entropy values are read every cycle; the one
        // chosen at the last decision is picked the cycle after it.
        self.port.next = 0.into();
        for w in 0..4 {
            if self.chosen_r.q.val().get_bits::<2>(1).index() == w {
                self.port.next = self.paths[w].read_data.val().get_bits::<16>(0);
                if self.chosen_r.q.val().get_bit(0) {
                    self.port.next = self.paths[w].read_data.val().get_bits::<16>(16);
                }
            }
        }

        // ---- flow-table clear after reset ----
        self.clearing.next = self.clearing_r.q.val();
        if self.clearing_r.q.val() {
            self.flows.write_address.next = self.clear_idx.q.val();
            self.flows.write_data.next = 0.into();
            self.flows.write_enable.next = true;
            self.clear_idx.d.next = self.clear_idx.q.val() + 1;
            if self.clear_idx.q.val().all() {
                self.clearing_r.d.next = false;
            }
        }
        if self.reset.val() {
            self.clearing_r.d.next = true;
            self.clear_idx.d.next = 0.into();
        }
    }
}
