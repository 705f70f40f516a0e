//! The encapsulation pipeline's client of the mapping cache (`TaggedCache`'s
//! request port): one lookup per IP frame of a tenant with
//! `CONFIG_USE_MAPPING`, key `offcard_net::tx::mapping_key`, tag the tenant.
//!
//! The request is registered and offered from the cycle after `start`; the
//! cache answers three cycles after it accepts, in order, never
//! back-pressured. On a hit `value` is the outer IPv4 destination. While the
//! cache refuses (`map_req_ready` low, e.g. while it reassigns ways) the
//! request waits, at most `MAP_READY_TIMEOUT` cycles: then it is withdrawn
//! and the frame uses its default destination. An accepted lookup whose
//! answer never comes (a cache breaking its promise) is given up after 127
//! cycles. Either way `pending` falls, so nothing locks up, and every lookup
//! ends in exactly one of `ev_hit`, `ev_miss`, `ev_timeout`.

use crate::konst;
use crate::regmap::{cache, encap};
use rust_hdl::prelude::*;
use smart_default::SmartDefault;

// The timer is 7 bits: it counts to the ready timeout and bounds a lookup in
// flight at 127 cycles.
const _: () = assert!(encap::MAP_READY_TIMEOUT >= 1 && encap::MAP_READY_TIMEOUT <= 100);

#[derive(LogicBlock, SmartDefault)]
pub struct EncapLookup {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    /// A new frame: forget the last answer; look `key` up for `tag` if `want`.
    pub start: Signal<In, Bit>,
    pub want: Signal<In, Bit>,
    pub tag: Signal<In, Bits<4>>,
    pub key: Signal<In, Bits<32>>,
    /// The frame's lookup is not answered yet (offered or in flight).
    pub pending: Signal<Out, Bit>,
    /// The answer, once `pending` is low: use `value` as the outer destination.
    pub hit: Signal<Out, Bit>,
    pub value: Signal<Out, Bits<32>>,
    // The cache's request port (the encapsulation block's map_* ports).
    pub map_req_valid: Signal<Out, Bit>,
    pub map_req_ready: Signal<In, Bit>,
    pub map_req_tag: Signal<Out, Bits<4>>,
    pub map_req_key: Signal<Out, Bits<32>>,
    pub map_req_op: Signal<Out, Bits<2>>,
    pub map_req_value: Signal<Out, Bits<32>>,
    pub map_rsp_valid: Signal<In, Bit>,
    pub map_rsp_hit: Signal<In, Bit>,
    pub map_rsp_value: Signal<In, Bits<32>>,
    pub ev_hit: Signal<Out, Bit>,
    pub ev_miss: Signal<Out, Bit>,
    pub ev_timeout: Signal<Out, Bit>,

    /// The request is offered.
    mq_valid: DFF<Bit>,
    mq_tag: DFF<Bits<4>>,
    mq_key: DFF<Bits<32>>,
    m_wait: DFF<Bit>,
    /// Accepted by the cache, response due.
    m_acc: DFF<Bit>,
    /// Cycles the lookup has waited.
    m_timer: DFF<Bits<7>>,
    m_hit: DFF<Bit>,
    m_value: DFF<Bits<32>>,

    m_rsp: Signal<Local, Bit>,
    m_expire: Signal<Local, Bit>,

    #[default(konst(cache::OP_LOOKUP as u64))]
    c_op_lookup: Constant<Bits<2>>,
    /// Last cycle a lookup may wait for the cache to accept it.
    #[default(konst((encap::MAP_READY_TIMEOUT - 1) as u64))]
    c_map_ready_last: Constant<Bits<7>>,
}

impl Logic for EncapLookup {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, mq_valid, mq_tag, mq_key, m_wait, m_acc, m_timer, m_hit, m_value);
        self.map_req_valid.next = self.mq_valid.q.val();
        self.map_req_tag.next = self.mq_tag.q.val();
        self.map_req_key.next = self.mq_key.q.val();
        self.map_req_op.next = self.c_op_lookup.val();
        self.map_req_value.next = 0.into();
        self.pending.next = self.m_wait.q.val();
        self.hit.next = self.m_hit.q.val();
        self.value.next = self.m_value.q.val();
        self.ev_hit.next = false;
        self.ev_miss.next = false;
        self.ev_timeout.next = false;
        self.m_rsp.next = self.m_acc.q.val() & self.map_rsp_valid.val();
        self.m_expire.next = self.m_wait.q.val()
            & !self.m_rsp.val()
            & ((self.mq_valid.q.val() & !self.map_req_ready.val() & (self.m_timer.q.val() == self.c_map_ready_last.val()))
                | self.m_timer.q.val().all());
        if self.m_wait.q.val() {
            self.m_timer.d.next = self.m_timer.q.val() + 1;
        }
        if self.mq_valid.q.val() & self.map_req_ready.val() {
            self.mq_valid.d.next = false;
            self.m_acc.d.next = true;
        }
        if self.m_rsp.val() {
            self.m_wait.d.next = false;
            self.m_acc.d.next = false;
            self.m_hit.d.next = self.map_rsp_hit.val();
            self.m_value.d.next = self.map_rsp_value.val();
            self.ev_hit.next = self.map_rsp_hit.val();
            self.ev_miss.next = !self.map_rsp_hit.val();
        }
        if self.m_expire.val() {
            self.mq_valid.d.next = false;
            self.m_wait.d.next = false;
            self.m_acc.d.next = false;
            self.ev_timeout.next = true;
        }
        if self.start.val() {
            self.mq_valid.d.next = self.want.val();
            self.m_wait.d.next = self.want.val();
            self.m_acc.d.next = false;
            self.m_timer.d.next = 0.into();
            self.m_hit.d.next = false;
            self.mq_tag.d.next = self.tag.val();
            self.mq_key.d.next = self.key.val();
        }
        if self.reset.val() {
            self.mq_valid.d.next = false;
            self.m_wait.d.next = false;
            self.m_acc.d.next = false;
        }
    }
}
