//! Tagged cache-way allocator: a set-associative cache (64 sets x 8 ways)
//! shared by 16 tags (tenants), with DAWG-style isolation (MICRO 2018):
//! every access carries a tag; a lookup hits only a line the requesting tag
//! filled, in a way of its mask; a fill replaces only within the tag's ways,
//! with round-robin replacement state kept per (tag, set), so one tag's
//! fills never move another's victim pointer. Intel CAT restricts fills
//! only; here hits and replacement state are partitioned too, which is what
//! closes the prime-and-probe channel.
//!
//! Pipeline (one lookup per cycle): stage 0 presents the set to the line
//! RAMs (synchronous read); stage 1 compares the eight ways; stage 2 picks
//! the victim and writes back; the response leaves one cycle later (three
//! cycles after the request is accepted). A write from stage 2 lands in the
//! RAM at the same edge the next request reads it, so the last write is
//! kept in registers and bypassed into stage 1; and no request is taken in
//! the cycle after a fill (a fill is in stage 1), so no request is in stage
//! 1 while the write it would need is still being decided in stage 2 (a
//! bubble per fill: timing, instead of a bypass from the victim choice).
//!
//! Way reassignment follows a safe order: a mask write stops requests,
//! drains stage 1, sweeps every (set, way) invalidating the tag's lines in
//! ways it loses and every line in ways it gains, and only then applies the
//! mask. After reset the line and replacement RAMs are cleared
//! (`INIT_CYCLES`); `CACHE_STATUS.busy` shows both.
//!
//! Lookups that miss are queued (tag, key) for the host on the `miss_*`
//! stream (the card sends them to a card-to-host DMA queue); a full queue
//! drops the miss and counts it, never stalls lookups. Registers: BAR0
//! 0x3000-0x3FFF (`regmap::cache`).

use crate::regmap::cache as c;
use crate::{dw_index, konst};
use crate::bus::RegBusTarget;
use rust_hdl::prelude::*;
use smart_default::SmartDefault;

const WAYS: usize = c::WAYS as usize;
const TAGS: usize = c::TAGS as usize;
// The geometry is set in `regmap::cache`; the RAM arrays, counters and the
// reference model follow it, but these signal widths are spelled out (rust-hdl
// has no width arithmetic on const parameters): a geometry change must fail
// to compile here rather than misbehave.
const _: () = assert!(c::WAYS == 8 && c::SETS_LOG2 == 6 && c::TAGS == 16, "update the widths in tagged_cache.rs");
/// Line metadata in the RAM: valid [36], owner tag [35:32], key [31:0].
type Meta = Bits<37>;

#[derive(LogicBlock, SmartDefault)]
pub struct TaggedCache {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    // Request port (the data path: one request per cycle when ready).
    pub req_valid: Signal<In, Bit>,
    pub req_ready: Signal<Out, Bit>,
    pub req_op: Signal<In, Bits<2>>,
    pub req_tag: Signal<In, Bits<4>>,
    pub req_key: Signal<In, Bits<32>>,
    pub req_value: Signal<In, Bits<32>>,
    // Response, three cycles after the request is accepted; never back-pressured.
    pub rsp_valid: Signal<Out, Bit>,
    pub rsp_op: Signal<Out, Bits<2>>,
    pub rsp_tag: Signal<Out, Bits<4>>,
    pub rsp_key: Signal<Out, Bits<32>>,
    pub rsp_hit: Signal<Out, Bit>,
    pub rsp_value: Signal<Out, Bits<32>>,
    // Misses for the host.
    pub miss_valid: Signal<Out, Bit>,
    pub miss_ready: Signal<In, Bit>,
    pub miss_tag: Signal<Out, Bits<4>>,
    pub miss_key: Signal<Out, Bits<32>>,
    // BAR0 (DW index, absolute).
    pub bar: RegBusTarget,

    meta: [RAM<Meta, 6>; WAYS],
    vals: [RAM<Bits<32>, 6>; WAYS],
    /// Round-robin victim pointer per (tag, set), address {tag, set}.
    rrp: RAM<Bits<3>, 10>,
    missq: SynchronousFIFO<Bits<36>, 4, 5, 1>,

    masks: [DFF<Bits<8>>; TAGS],
    cnt_hits: [DFF<Bits<32>>; TAGS],
    cnt_misses: [DFF<Bits<32>>; TAGS],
    cnt_fills: [DFF<Bits<32>>; TAGS],
    cnt_evict: [DFF<Bits<32>>; TAGS],
    occ: [DFF<Bits<32>>; TAGS],
    // counter events, registered (see the counters' update)
    ce_lookup: DFF<Bit>,
    ce_hit: DFF<Bit>,
    ce_tag: DFF<Bits<4>>,
    ce_fill: DFF<Bit>,
    ce_evict: DFF<Bit>,
    ce_owner: DFF<Bits<4>>,
    ce_kill: DFF<Bit>,
    ce_kill_owner: DFF<Bits<4>>,
    cnt_miss_dropped: DFF<Bits<32>>,
    partition: DFF<Bit>,
    /// Reset values from the register map (`CACHE_CTRL`, `CACHE_MASK_BASE`).
    #[default(konst(c::CTRL_RESET as u64))]
    k_ctrl_reset: Constant<Bits<32>>,
    #[default(konst(c::MASK_RESET as u64))]
    k_mask_reset: Constant<Bits<8>>,
    cnt_sel: DFF<Bits<4>>,
    // reset clearing
    init_busy: DFF<Bit>,
    init_ctr: DFF<Bits<10>>,
    // mask reassignment
    mask_pend: DFF<Bit>,
    mask_tag: DFF<Bits<4>>,
    mask_new: DFF<Bits<8>>,
    mask_old: DFF<Bits<8>>,
    mask_dropped: DFF<Bit>,
    sweep: DFF<Bit>,
    sweep_ctr: DFF<Bits<9>>,
    sw_valid: DFF<Bit>,
    sw_set: DFF<Bits<6>>,
    sw_way: DFF<Bits<3>>,
    sw_last: DFF<Bit>,
    // BAR0-issued operation
    op_key: DFF<Bits<32>>,
    op_value: DFF<Bits<32>>,
    op_pend: DFF<Bit>,
    op_code: DFF<Bits<2>>,
    op_tag: DFF<Bits<4>>,
    res_done: DFF<Bit>,
    res_hit: DFF<Bit>,
    res_tag: DFF<Bits<4>>,
    res_value: DFF<Bits<32>>,
    // stage 1
    s1_valid: DFF<Bit>,
    s1_bar: DFF<Bit>,
    s1_op: DFF<Bits<2>>,
    s1_tag: DFF<Bits<4>>,
    s1_key: DFF<Bits<32>>,
    s1_value: DFF<Bits<32>>,
    s1_set: DFF<Bits<6>>,
    // stage 2
    s2_valid: DFF<Bit>,
    s2_bar: DFF<Bit>,
    s2_op: DFF<Bits<2>>,
    s2_tag: DFF<Bits<4>>,
    s2_key: DFF<Bits<32>>,
    s2_value: DFF<Bits<32>>,
    s2_set: DFF<Bits<6>>,
    s2_emask: DFF<Bits<8>>,
    s2_hitv: DFF<Bits<8>>,
    s2_invv: DFF<Bits<8>>,
    s2_ptr: DFF<Bits<3>>,
    /// Ways after the pointer (bit w set for w > ptr), from stage 1.
    s2_above: DFF<Bits<8>>,
    s2_line: [DFF<Meta>; WAYS],
    s2_lval: [DFF<Bits<32>>; WAYS],
    // last line write (bypass into stage 1)
    lw_valid: DFF<Bit>,
    lw_set: DFF<Bits<6>>,
    lw_way: DFF<Bits<3>>,
    lw_meta: DFF<Meta>,
    lw_vwr: DFF<Bit>,
    lw_val: DFF<Bits<32>>,
    // last replacement-pointer write
    lp_valid: DFF<Bit>,
    lp_addr: DFF<Bits<10>>,
    lp_val: DFF<Bits<3>>,
    // response
    r_valid: DFF<Bit>,
    r_op: DFF<Bits<2>>,
    r_tag: DFF<Bits<4>>,
    r_key: DFF<Bits<32>>,
    r_hit: DFF<Bit>,
    r_value: DFF<Bits<32>>,

    // register decode (DW indices)
    #[default(dw_index(c::CACHE_BASE))]
    k_first: Constant<Bits<14>>,
    #[default(dw_index(c::CACHE_END))]
    k_end: Constant<Bits<14>>,
    #[default(dw_index(c::CACHE_GEOMETRY))]
    k_geometry: Constant<Bits<14>>,
    #[default(dw_index(c::CACHE_CTRL))]
    k_ctrl: Constant<Bits<14>>,
    #[default(dw_index(c::CACHE_STATUS))]
    k_status: Constant<Bits<14>>,
    #[default(dw_index(c::CACHE_OP_KEY))]
    k_op_key: Constant<Bits<14>>,
    #[default(dw_index(c::CACHE_OP_VALUE))]
    k_op_value: Constant<Bits<14>>,
    #[default(dw_index(c::CACHE_OP))]
    k_op: Constant<Bits<14>>,
    #[default(dw_index(c::CACHE_OP_RESULT))]
    k_op_result: Constant<Bits<14>>,
    #[default(dw_index(c::CACHE_OP_RESULT_VALUE))]
    k_op_result_value: Constant<Bits<14>>,
    #[default(dw_index(c::CACHE_CNT_SEL))]
    k_cnt_sel: Constant<Bits<14>>,
    #[default(dw_index(c::CACHE_CNT_HITS))]
    k_cnt_hits: Constant<Bits<14>>,
    #[default(dw_index(c::CACHE_CNT_MISSES))]
    k_cnt_misses: Constant<Bits<14>>,
    #[default(dw_index(c::CACHE_CNT_FILLS))]
    k_cnt_fills: Constant<Bits<14>>,
    #[default(dw_index(c::CACHE_CNT_EVICTIONS))]
    k_cnt_evict: Constant<Bits<14>>,
    #[default(dw_index(c::CACHE_CNT_OCCUPANCY))]
    k_cnt_occ: Constant<Bits<14>>,
    #[default(dw_index(c::CACHE_CNT_MISS_DROPPED))]
    k_cnt_miss_dropped: Constant<Bits<14>>,
    #[default(dw_index(c::CACHE_MASK_BASE))]
    k_mask_base: Constant<Bits<14>>,
    #[default(konst((c::SETS_LOG2 | c::WAYS << 8 | c::TAGS << 16) as u64))]
    k_geometry_value: Constant<Bits<32>>,
    #[default(konst(c::OP_LOOKUP as u64))]
    k_op_lookup: Constant<Bits<2>>,
    #[default(konst(c::OP_FILL as u64))]
    k_op_fill: Constant<Bits<2>>,
    #[default(konst(c::TAGS as u64))]
    k_tags: Constant<Bits<14>>,
    #[default(konst(1 << 36))]
    k_valid: Constant<Meta>,
    #[default(konst(0xFE))]
    k_fe16: Constant<Bits<16>>,

    // ---- combinational ----
    busy: Signal<Local, Bit>,
    fill_in_s1: Signal<Local, Bit>,
    in_fire: Signal<Local, Bit>,
    in_op: Signal<Local, Bits<2>>,
    in_tag: Signal<Local, Bits<4>>,
    in_key: Signal<Local, Bits<32>>,
    in_value: Signal<Local, Bits<32>>,
    in_set: Signal<Local, Bits<6>>,
    line: [Signal<Local, Meta>; WAYS],
    lval: [Signal<Local, Bits<32>>; WAYS],
    emask: Signal<Local, Bits<8>>,
    hit: [Signal<Local, Bit>; WAYS],
    inv: [Signal<Local, Bit>; WAYS],
    hitv: Signal<Local, Bits<8>>,
    invv: Signal<Local, Bits<8>>,
    hit1: Signal<Local, Bits<8>>,
    inv1: Signal<Local, Bits<8>>,
    any_hit: Signal<Local, Bit>,
    any_inv: Signal<Local, Bit>,
    hit_way: Signal<Local, Bits<3>>,
    hit_val: Signal<Local, Bits<32>>,
    ptr: Signal<Local, Bits<3>>,
    /// The tag's eligible ways after its pointer; the lowest of those,
    /// the lowest eligible way at all (the round robin wraps), and the
    /// victim as a one-hot mask and encoded.
    upper: Signal<Local, Bits<8>>,
    upper1: Signal<Local, Bits<8>>,
    emask1: Signal<Local, Bits<8>>,
    victim_oh: Signal<Local, Bits<8>>,
    victim: Signal<Local, Bits<3>>,
    victim_line: Signal<Local, Meta>,
    fill_new: Signal<Local, Bit>,
    evict: Signal<Local, Bit>,
    evict_owner: Signal<Local, Bits<4>>,
    lookup_miss: Signal<Local, Bit>,
    sw_line: Signal<Local, Meta>,
    sw_kill: Signal<Local, Bit>,
    rd_rel: Signal<Local, Bits<14>>,
    new_line: Signal<Local, Meta>,
    changed: Signal<Local, Bits<8>>,
    mask_rd: Signal<Local, Bits<8>>,
    /// BAR0 read, first cycle: the addressed register (one-hot) and the
    /// values behind the wide multiplexers.
    rd_sel: Signal<Local, Bits<15>>,
    rs_sel: DFF<Bits<15>>,
    rs_mask: DFF<Bits<8>>,
    rs_hits: DFF<Bits<32>>,
    rs_misses: DFF<Bits<32>>,
    rs_fills: DFF<Bits<32>>,
    rs_evict: DFF<Bits<32>>,
    rs_occ: DFF<Bits<32>>,
}

impl Logic for TaggedCache {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clock, cnt_miss_dropped, partition, cnt_sel, init_busy, init_ctr, mask_pend, mask_tag, mask_new,
            mask_old, mask_dropped, sweep, sweep_ctr, sw_valid, sw_set, sw_way, sw_last, op_key, op_value, op_pend,
            op_code, op_tag, res_done, res_hit, res_tag, res_value, s1_valid, s1_bar, s1_op, s1_tag, s1_key, s1_value,
            s1_set, lw_valid, lw_set, lw_way, lw_meta, lw_vwr, lw_val, lp_valid, lp_addr, lp_val, r_valid, r_op, r_tag,
            r_key, r_hit, r_value, ce_lookup, ce_hit, ce_tag, ce_fill, ce_evict, ce_owner, ce_kill, ce_kill_owner,
            rs_sel, rs_mask, rs_hits, rs_misses, rs_fills, rs_evict, rs_occ, s2_valid, s2_bar, s2_op, s2_tag, s2_key,
            s2_value, s2_set, s2_emask, s2_hitv, s2_invv, s2_ptr, s2_above
        );
        for i in 0..TAGS {
            self.masks[i].clock.next = self.clock.val();
            self.masks[i].d.next = self.masks[i].q.val();
            self.cnt_hits[i].clock.next = self.clock.val();
            self.cnt_hits[i].d.next = self.cnt_hits[i].q.val();
            self.cnt_misses[i].clock.next = self.clock.val();
            self.cnt_misses[i].d.next = self.cnt_misses[i].q.val();
            self.cnt_fills[i].clock.next = self.clock.val();
            self.cnt_fills[i].d.next = self.cnt_fills[i].q.val();
            self.cnt_evict[i].clock.next = self.clock.val();
            self.cnt_evict[i].d.next = self.cnt_evict[i].q.val();
            self.occ[i].clock.next = self.clock.val();
            self.occ[i].d.next = self.occ[i].q.val();
        }
        for w in 0..WAYS {
            self.meta[w].read_clock.next = self.clock.val();
            self.meta[w].write_clock.next = self.clock.val();
            self.vals[w].read_clock.next = self.clock.val();
            self.vals[w].write_clock.next = self.clock.val();
        }
        self.rrp.read_clock.next = self.clock.val();
        self.rrp.write_clock.next = self.clock.val();
        self.missq.clock.next = self.clock.val();

        // ---- stage 0: choose the request (a BAR0 operation goes first) ----
        self.busy.next = self.init_busy.q.val()
            | self.mask_pend.q.val()
            | self.sweep.q.val()
            | self.sw_valid.q.val();
        self.in_op.next = self.req_op.val();
        self.in_tag.next = self.req_tag.val();
        self.in_key.next = self.req_key.val();
        self.in_value.next = self.req_value.val();
        if self.op_pend.q.val() {
            self.in_op.next = self.op_code.q.val();
            self.in_tag.next = self.op_tag.q.val();
            self.in_key.next = self.op_key.q.val();
            self.in_value.next = self.op_value.q.val();
        }
        // A fill in stage 1 writes its set from stage 2 next cycle, after the
        // request behind it has read the RAM: take none behind a fill (one
        // bubble), so the last-write bypass covers every write.
        self.fill_in_s1.next = self.s1_valid.q.val() & (self.s1_op.q.val() == self.k_op_fill.val());
        self.in_fire.next = !self.busy.val() & !self.fill_in_s1.val() & (self.op_pend.q.val() | self.req_valid.val());
        self.req_ready.next = !self.busy.val() & !self.fill_in_s1.val() & !self.op_pend.q.val();
        // The set: the key XOR-folded to six bits (regmap::cache::set_of).
        self.in_set.next = self.in_key.val().get_bits::<6>(0)
            ^ self.in_key.val().get_bits::<6>(6)
            ^ self.in_key.val().get_bits::<6>(12)
            ^ self.in_key.val().get_bits::<6>(18)
            ^ self.in_key.val().get_bits::<6>(24)
            ^ bit_cast::<6, 2>(self.in_key.val().get_bits::<2>(30));
        for w in 0..WAYS {
            self.meta[w].read_address.next = self.in_set.val();
            self.vals[w].read_address.next = self.in_set.val();
        }
        self.rrp.read_address.next = bit_cast::<10, 4>(self.in_tag.val()) << 6 | bit_cast::<10, 6>(self.in_set.val());
        if self.sweep.q.val() {
            for w in 0..WAYS {
                self.meta[w].read_address.next = self.sweep_ctr.q.val().get_bits::<6>(3);
            }
        }
        self.s1_valid.d.next = self.in_fire.val();
        self.s1_bar.d.next = self.op_pend.q.val();
        self.s1_op.d.next = self.in_op.val();
        self.s1_tag.d.next = self.in_tag.val();
        self.s1_key.d.next = self.in_key.val();
        self.s1_value.d.next = self.in_value.val();
        self.s1_set.d.next = self.in_set.val();
        if self.in_fire.val() & self.op_pend.q.val() {
            self.op_pend.d.next = false;
        }

        // ---- stage 1: the set's lines, with the last write bypassed ----
        for w in 0..WAYS {
            self.line[w].next = self.meta[w].read_data.val();
            self.lval[w].next = self.vals[w].read_data.val();
            if self.lw_valid.q.val() & (self.lw_set.q.val() == self.s1_set.q.val()) & (self.lw_way.q.val().index() == w) {
                self.line[w].next = self.lw_meta.q.val();
                if self.lw_vwr.q.val() {
                    self.lval[w].next = self.lw_val.q.val();
                }
            }
        }
        self.emask.next = 0xFF.into();
        if self.partition.q.val() {
            self.emask.next = 0.into();
            for i in 0..TAGS {
                if self.s1_tag.q.val().index() == i {
                    self.emask.next = self.masks[i].q.val();
                }
            }
        }
        for w in 0..WAYS {
            self.hit[w].next = self.emask.val().get_bit(w)
                & self.line[w].val().get_bit(36)
                & (self.line[w].val().get_bits::<32>(0) == self.s1_key.q.val())
                & ((self.line[w].val().get_bits::<4>(32) == self.s1_tag.q.val()) | !self.partition.q.val());
            self.inv[w].next = self.emask.val().get_bit(w) & !self.line[w].val().get_bit(36);
        }
        self.hitv.next = bit_cast::<8, 1>(self.hit[0].val().into())
            | bit_cast::<8, 1>(self.hit[1].val().into()) << 1
            | bit_cast::<8, 1>(self.hit[2].val().into()) << 2
            | bit_cast::<8, 1>(self.hit[3].val().into()) << 3
            | bit_cast::<8, 1>(self.hit[4].val().into()) << 4
            | bit_cast::<8, 1>(self.hit[5].val().into()) << 5
            | bit_cast::<8, 1>(self.hit[6].val().into()) << 6
            | bit_cast::<8, 1>(self.hit[7].val().into()) << 7;
        self.invv.next = bit_cast::<8, 1>(self.inv[0].val().into())
            | bit_cast::<8, 1>(self.inv[1].val().into()) << 1
            | bit_cast::<8, 1>(self.inv[2].val().into()) << 2
            | bit_cast::<8, 1>(self.inv[3].val().into()) << 3
            | bit_cast::<8, 1>(self.inv[4].val().into()) << 4
            | bit_cast::<8, 1>(self.inv[5].val().into()) << 5
            | bit_cast::<8, 1>(self.inv[6].val().into()) << 6
            | bit_cast::<8, 1>(self.inv[7].val().into()) << 7;
        // The tag's round-robin pointer, with the last pointer write bypassed.
        self.ptr.next = self.rrp.read_data.val();
        if self.lp_valid.q.val()
            & (self.lp_addr.q.val() == (bit_cast::<10, 4>(self.s1_tag.q.val()) << 6 | bit_cast::<10, 6>(self.s1_set.q.val())))
        {
            self.ptr.next = self.lp_val.q.val();
        }

        // ---- into stage 2 (timing: the compare and the victim choice are
        // a cycle apart) ----
        self.s2_valid.d.next = self.s1_valid.q.val();
        self.s2_bar.d.next = self.s1_bar.q.val();
        self.s2_op.d.next = self.s1_op.q.val();
        self.s2_tag.d.next = self.s1_tag.q.val();
        self.s2_key.d.next = self.s1_key.q.val();
        self.s2_value.d.next = self.s1_value.q.val();
        self.s2_set.d.next = self.s1_set.q.val();
        self.s2_emask.d.next = self.emask.val();
        self.s2_hitv.d.next = self.hitv.val();
        self.s2_invv.d.next = self.invv.val();
        self.s2_ptr.d.next = self.ptr.val();
        self.s2_above.d.next = bit_cast::<8, 16>(self.k_fe16.val() << self.ptr.val());
        for w in 0..WAYS {
            self.s2_line[w].clock.next = self.clock.val();
            self.s2_line[w].d.next = self.line[w].val();
            self.s2_lval[w].clock.next = self.clock.val();
            self.s2_lval[w].d.next = self.lval[w].val();
        }

        // ---- stage 2: victim, line and pointer writes, counters, response ----
        // Lowest hit and lowest invalid way (isolate the lowest set bit, encode it).
        self.hit1.next = self.s2_hitv.q.val() & (!self.s2_hitv.q.val() + 1);
        self.inv1.next = self.s2_invv.q.val() & (!self.s2_invv.q.val() + 1);
        self.any_hit.next = self.s2_hitv.q.val().any();
        self.any_inv.next = self.s2_invv.q.val().any();
        self.hit_way.next = bit_cast::<3, 1>((self.hit1.val() & 0xAA).any().into())
            | bit_cast::<3, 1>((self.hit1.val() & 0xCC).any().into()) << 1
            | bit_cast::<3, 1>((self.hit1.val() & 0xF0).any().into()) << 2;
        self.hit_val.next = 0.into();
        for w in 0..WAYS {
            if self.hit_way.val().index() == w {
                self.hit_val.next = self.s2_lval[w].q.val();
            }
        }
        // Round-robin: the first eligible way after the tag's pointer,
        // wrapping; an invalid way first. Kept one-hot up to the write
        // enables (timing: no encode, add and decode in front of them).
        self.upper.next = self.s2_emask.q.val() & self.s2_above.q.val();
        self.upper1.next = self.upper.val() & (!self.upper.val() + 1);
        self.emask1.next = self.s2_emask.q.val() & (!self.s2_emask.q.val() + 1);
        self.victim_oh.next = self.emask1.val();
        if self.upper.val().any() {
            self.victim_oh.next = self.upper1.val();
        }
        if self.any_inv.val() {
            self.victim_oh.next = self.inv1.val();
        }
        self.victim.next = bit_cast::<3, 1>((self.victim_oh.val() & 0xAA).any().into())
            | bit_cast::<3, 1>((self.victim_oh.val() & 0xCC).any().into()) << 1
            | bit_cast::<3, 1>((self.victim_oh.val() & 0xF0).any().into()) << 2;
        self.victim_line.next = 0.into();
        for w in 0..WAYS {
            if self.victim_oh.val().get_bit(w) {
                self.victim_line.next = self.s2_line[w].q.val();
            }
        }
        self.lookup_miss.next = self.s2_valid.q.val() & (self.s2_op.q.val() == self.k_op_lookup.val()) & !self.any_hit.val();
        self.fill_new.next = self.s2_valid.q.val()
            & (self.s2_op.q.val() == self.k_op_fill.val())
            & !self.any_hit.val()
            & self.s2_emask.q.val().any();
        self.evict.next = self.fill_new.val() & self.victim_line.val().get_bit(36);
        self.evict_owner.next = self.victim_line.val().get_bits::<4>(32);

        self.new_line.next =
            self.k_valid.val() | bit_cast::<37, 4>(self.s2_tag.q.val()) << 32 | bit_cast::<37, 32>(self.s2_key.q.val());
        // Line writes: the fill (or a value update on a fill that hits).
        for w in 0..WAYS {
            self.meta[w].write_address.next = self.s2_set.q.val();
            self.meta[w].write_data.next = self.new_line.val();
            self.meta[w].write_enable.next = self.fill_new.val() & self.victim_oh.val().get_bit(w);
            self.vals[w].write_address.next = self.s2_set.q.val();
            self.vals[w].write_data.next = self.s2_value.q.val();
            self.vals[w].write_enable.next = (self.fill_new.val() & self.victim_oh.val().get_bit(w))
                | (self.s2_valid.q.val()
                    & (self.s2_op.q.val() == self.k_op_fill.val())
                    & self.any_hit.val()
                    & (self.hit_way.val().index() == w));
        }
        self.rrp.write_address.next = bit_cast::<10, 4>(self.s2_tag.q.val()) << 6 | bit_cast::<10, 6>(self.s2_set.q.val());
        self.rrp.write_data.next = self.victim.val();
        self.rrp.write_enable.next = self.fill_new.val() & !self.any_inv.val();
        self.lp_valid.d.next = self.fill_new.val() & !self.any_inv.val();
        self.lp_addr.d.next = bit_cast::<10, 4>(self.s2_tag.q.val()) << 6 | bit_cast::<10, 6>(self.s2_set.q.val());
        self.lp_val.d.next = self.victim.val();
        self.lw_valid.d.next = self.s2_valid.q.val() & (self.s2_op.q.val() == self.k_op_fill.val()) & (self.any_hit.val() | self.fill_new.val());
        self.lw_set.d.next = self.s2_set.q.val();
        self.lw_way.d.next = self.victim.val();
        self.lw_meta.d.next = self.new_line.val();
        if self.any_hit.val() {
            self.lw_way.d.next = self.hit_way.val();
            self.lw_meta.d.next = self.s2_line[0].q.val();
            for w in 0..WAYS {
                if self.hit_way.val().index() == w {
                    self.lw_meta.d.next = self.s2_line[w].q.val();
                }
            }
        }
        self.lw_vwr.d.next = true;
        self.lw_val.d.next = self.s2_value.q.val();

        // Counters of the requesting tag and of the evicted line's owner,
        // one cycle after the lookup (the events are registered first, so
        // the counters' adders are not behind the tag compare: timing).
        self.ce_lookup.d.next = self.s2_valid.q.val() & (self.s2_op.q.val() == self.k_op_lookup.val());
        self.ce_hit.d.next = self.any_hit.val();
        self.ce_tag.d.next = self.s2_tag.q.val();
        self.ce_fill.d.next = self.fill_new.val();
        self.ce_evict.d.next = self.evict.val();
        self.ce_owner.d.next = self.evict_owner.val();
        for i in 0..TAGS {
            if self.ce_lookup.q.val() & (self.ce_tag.q.val().index() == i) {
                if self.ce_hit.q.val() {
                    self.cnt_hits[i].d.next = self.cnt_hits[i].q.val() + 1;
                } else {
                    self.cnt_misses[i].d.next = self.cnt_misses[i].q.val() + 1;
                }
            }
            if self.ce_fill.q.val() & (self.ce_tag.q.val().index() == i) {
                self.cnt_fills[i].d.next = self.cnt_fills[i].q.val() + 1;
            }
            if self.ce_evict.q.val() & (self.ce_owner.q.val().index() == i) {
                self.cnt_evict[i].d.next = self.cnt_evict[i].q.val() + 1;
            }
            // Occupancy: +1 for the filler, -1 for the evicted owner (same tag: no change).
            if self.ce_fill.q.val() & (self.ce_tag.q.val().index() == i) & !(self.ce_evict.q.val() & (self.ce_owner.q.val().index() == i)) {
                self.occ[i].d.next = self.occ[i].q.val() + 1;
            }
            if self.ce_evict.q.val() & (self.ce_owner.q.val().index() == i) & !(self.ce_fill.q.val() & (self.ce_tag.q.val().index() == i)) {
                self.occ[i].d.next = self.occ[i].q.val() - 1;
            }
            if self.ce_kill.q.val() & (self.ce_kill_owner.q.val().index() == i) {
                self.occ[i].d.next = self.occ[i].q.val() - 1;
            }
        }

        // Misses to the host; a full queue drops (and counts) rather than stall lookups.
        self.missq.data_in.next = bit_cast::<36, 4>(self.s2_tag.q.val()) << 32 | bit_cast::<36, 32>(self.s2_key.q.val());
        // Only data-path misses: the driver learns about its own BAR0 lookups directly.
        self.missq.write.next = self.lookup_miss.val() & !self.s2_bar.q.val() & !self.missq.full.val();
        if self.lookup_miss.val() & !self.s2_bar.q.val() & self.missq.full.val() {
            self.cnt_miss_dropped.d.next = self.cnt_miss_dropped.q.val() + 1;
        }
        self.miss_valid.next = !self.missq.empty.val();
        self.miss_tag.next = self.missq.data_out.val().get_bits::<4>(32);
        self.miss_key.next = self.missq.data_out.val().get_bits::<32>(0);
        self.missq.read.next = self.miss_ready.val() & !self.missq.empty.val();

        // Response (stage 2) and the BAR0 operation's result.
        // BAR0 operations answer in CACHE_OP_RESULT only, never on the data path's port.
        self.r_valid.d.next = self.s2_valid.q.val() & !self.s2_bar.q.val();
        self.r_op.d.next = self.s2_op.q.val();
        self.r_tag.d.next = self.s2_tag.q.val();
        self.r_key.d.next = self.s2_key.q.val();
        self.r_hit.d.next = self.any_hit.val();
        self.r_value.d.next = self.hit_val.val();
        self.rsp_valid.next = self.r_valid.q.val();
        self.rsp_op.next = self.r_op.q.val();
        self.rsp_tag.next = self.r_tag.q.val();
        self.rsp_key.next = self.r_key.q.val();
        self.rsp_hit.next = self.r_hit.q.val();
        self.rsp_value.next = self.r_value.q.val();
        if self.s2_valid.q.val() & self.s2_bar.q.val() {
            self.res_done.d.next = true;
            self.res_hit.d.next = self.any_hit.val();
            self.res_tag.d.next = self.s2_tag.q.val();
            self.res_value.d.next = self.hit_val.val();
        }

        // ---- mask reassignment: drain, sweep, then grant ----
        if self.mask_pend.q.val() & !self.s1_valid.q.val() & !self.s2_valid.q.val() & !self.sweep.q.val() & !self.sw_valid.q.val() {
            self.mask_pend.d.next = false;
            self.sweep.d.next = true;
            self.sweep_ctr.d.next = 0.into();
            for i in 0..TAGS {
                if self.mask_tag.q.val().index() == i {
                    self.mask_old.d.next = self.masks[i].q.val();
                }
            }
        }
        if self.sweep.q.val() {
            self.sweep_ctr.d.next = self.sweep_ctr.q.val() + 1;
            if self.sweep_ctr.q.val().all() {
                self.sweep.d.next = false;
            }
        }
        self.sw_valid.d.next = self.sweep.q.val();
        self.sw_set.d.next = self.sweep_ctr.q.val().get_bits::<6>(3);
        self.sw_way.d.next = self.sweep_ctr.q.val().get_bits::<3>(0);
        self.sw_last.d.next = self.sweep.q.val() & self.sweep_ctr.q.val().all();
        self.changed.next = self.mask_old.q.val() ^ self.mask_new.q.val();
        self.sw_line.next = 0.into();
        for w in 0..WAYS {
            if self.sw_way.q.val().index() == w {
                self.sw_line.next = self.meta[w].read_data.val();
            }
        }
        // Kill a valid line in a changed way if the tag owned it or now gains the way.
        self.sw_kill.next = self.sw_valid.q.val()
            & self.sw_line.val().get_bit(36)
            & self.changed.val().get_bit(self.sw_way.q.val().index())
            & ((self.sw_line.val().get_bits::<4>(32) == self.mask_tag.q.val())
                | self.mask_new.q.val().get_bit(self.sw_way.q.val().index()));
        self.ce_kill.d.next = self.sw_kill.val();
        self.ce_kill_owner.d.next = self.sw_line.val().get_bits::<4>(32);
        if self.sw_valid.q.val() {
            for w in 0..WAYS {
                self.meta[w].write_address.next = self.sw_set.q.val();
                self.meta[w].write_data.next = 0.into();
                self.meta[w].write_enable.next = self.sw_kill.val() & (self.sw_way.q.val().index() == w);
            }
            self.lw_valid.d.next = self.sw_kill.val();
            self.lw_set.d.next = self.sw_set.q.val();
            self.lw_way.d.next = self.sw_way.q.val();
            self.lw_meta.d.next = 0.into();
            self.lw_vwr.d.next = false;
        }
        if self.sw_last.q.val() {
            for i in 0..TAGS {
                if self.mask_tag.q.val().index() == i {
                    self.masks[i].d.next = self.mask_new.q.val();
                }
            }
        }

        // ---- after reset: clear lines and replacement state ----
        if self.init_busy.q.val() {
            for w in 0..WAYS {
                self.meta[w].write_address.next = self.init_ctr.q.val().get_bits::<6>(0);
                self.meta[w].write_data.next = 0.into();
                self.meta[w].write_enable.next = true;
            }
            self.rrp.write_address.next = self.init_ctr.q.val();
            self.rrp.write_data.next = 0.into();
            self.rrp.write_enable.next = true;
            self.init_ctr.d.next = self.init_ctr.q.val() + 1;
            if self.init_ctr.q.val().all() {
                self.init_busy.d.next = false;
            }
        }

        // ---- BAR0 ----
        // Reads take two cycles (timing: the endpoint waits for them). The
        // first registers which register the address selects (one-hot) and
        // the values behind the wide multiplexers (the selected tag's
        // counters, the addressed way mask); the second ORs the selected
        // value into the read data.
        self.rd_rel.next = self.bar.addr.val() - self.k_mask_base.val();
        self.mask_rd.next = 0.into();
        for i in 0..TAGS {
            if self.rd_rel.val().index() == i {
                self.mask_rd.next = self.masks[i].q.val();
            }
        }
        self.rs_mask.d.next = self.mask_rd.val();
        self.rs_hits.d.next = 0.into();
        self.rs_misses.d.next = 0.into();
        self.rs_fills.d.next = 0.into();
        self.rs_evict.d.next = 0.into();
        self.rs_occ.d.next = 0.into();
        for i in 0..TAGS {
            if self.cnt_sel.q.val().index() == i {
                self.rs_hits.d.next = self.cnt_hits[i].q.val();
                self.rs_misses.d.next = self.cnt_misses[i].q.val();
                self.rs_fills.d.next = self.cnt_fills[i].q.val();
                self.rs_evict.d.next = self.cnt_evict[i].q.val();
                self.rs_occ.d.next = self.occ[i].q.val();
            }
        }
        self.rd_sel.next = 0.into();
        if (self.bar.addr.val() >= self.k_first.val()) & (self.bar.addr.val() < self.k_end.val()) {
            if self.bar.addr.val() == self.k_geometry.val() {
                self.rd_sel.next = 1.into();
            }
            if self.bar.addr.val() == self.k_ctrl.val() {
                self.rd_sel.next = 2.into();
            }
            if self.bar.addr.val() == self.k_status.val() {
                self.rd_sel.next = 4.into();
            }
            if self.bar.addr.val() == self.k_op_key.val() {
                self.rd_sel.next = 8.into();
            }
            if self.bar.addr.val() == self.k_op_value.val() {
                self.rd_sel.next = 16.into();
            }
            if self.bar.addr.val() == self.k_op_result.val() {
                self.rd_sel.next = 32.into();
            }
            if self.bar.addr.val() == self.k_op_result_value.val() {
                self.rd_sel.next = 64.into();
            }
            if self.bar.addr.val() == self.k_cnt_sel.val() {
                self.rd_sel.next = 128.into();
            }
            if self.bar.addr.val() == self.k_cnt_hits.val() {
                self.rd_sel.next = 256.into();
            }
            if self.bar.addr.val() == self.k_cnt_misses.val() {
                self.rd_sel.next = 512.into();
            }
            if self.bar.addr.val() == self.k_cnt_fills.val() {
                self.rd_sel.next = 1024.into();
            }
            if self.bar.addr.val() == self.k_cnt_evict.val() {
                self.rd_sel.next = 2048.into();
            }
            if self.bar.addr.val() == self.k_cnt_occ.val() {
                self.rd_sel.next = 4096.into();
            }
            if (self.bar.addr.val() >= self.k_mask_base.val()) & (self.rd_rel.val() < self.k_tags.val()) {
                self.rd_sel.next = 8192.into();
            }
            if self.bar.addr.val() == self.k_cnt_miss_dropped.val() {
                self.rd_sel.next = 16384.into();
            }
        }
        self.rs_sel.d.next = self.rd_sel.val();
        self.bar.rd_data.next = 0.into();
        if self.rs_sel.q.val().get_bit(0) {
            self.bar.rd_data.next = self.bar.rd_data.val() | self.k_geometry_value.val();
        }
        if self.rs_sel.q.val().get_bit(1) {
            self.bar.rd_data.next = self.bar.rd_data.val() | bit_cast::<32, 1>(self.partition.q.val().into());
        }
        if self.rs_sel.q.val().get_bit(2) {
            self.bar.rd_data.next = self.bar.rd_data.val()
                | bit_cast::<32, 1>(self.busy.val().into())
                | bit_cast::<32, 1>(self.op_pend.q.val().into()) << 1
                | bit_cast::<32, 1>(self.mask_dropped.q.val().into()) << 2;
        }
        if self.rs_sel.q.val().get_bit(3) {
            self.bar.rd_data.next = self.bar.rd_data.val() | self.op_key.q.val();
        }
        if self.rs_sel.q.val().get_bit(4) {
            self.bar.rd_data.next = self.bar.rd_data.val() | self.op_value.q.val();
        }
        if self.rs_sel.q.val().get_bit(5) {
            self.bar.rd_data.next = self.bar.rd_data.val()
                | bit_cast::<32, 1>(self.res_done.q.val().into())
                | bit_cast::<32, 1>(self.res_hit.q.val().into()) << 1
                | bit_cast::<32, 4>(self.res_tag.q.val()) << 8;
        }
        if self.rs_sel.q.val().get_bit(6) {
            self.bar.rd_data.next = self.bar.rd_data.val() | self.res_value.q.val();
        }
        if self.rs_sel.q.val().get_bit(7) {
            self.bar.rd_data.next = self.bar.rd_data.val() | bit_cast::<32, 4>(self.cnt_sel.q.val());
        }
        if self.rs_sel.q.val().get_bit(8) {
            self.bar.rd_data.next = self.bar.rd_data.val() | self.rs_hits.q.val();
        }
        if self.rs_sel.q.val().get_bit(9) {
            self.bar.rd_data.next = self.bar.rd_data.val() | self.rs_misses.q.val();
        }
        if self.rs_sel.q.val().get_bit(10) {
            self.bar.rd_data.next = self.bar.rd_data.val() | self.rs_fills.q.val();
        }
        if self.rs_sel.q.val().get_bit(11) {
            self.bar.rd_data.next = self.bar.rd_data.val() | self.rs_evict.q.val();
        }
        if self.rs_sel.q.val().get_bit(12) {
            self.bar.rd_data.next = self.bar.rd_data.val() | self.rs_occ.q.val();
        }
        if self.rs_sel.q.val().get_bit(13) {
            self.bar.rd_data.next = self.bar.rd_data.val() | bit_cast::<32, 8>(self.rs_mask.q.val());
        }
        if self.rs_sel.q.val().get_bit(14) {
            self.bar.rd_data.next = self.bar.rd_data.val() | self.cnt_miss_dropped.q.val();
        }
        if self.bar.wr_en.val() {
            if self.bar.addr.val() == self.k_ctrl.val() {
                self.partition.d.next = self.bar.wr_data.val().get_bit(0);
            }
            if self.bar.addr.val() == self.k_status.val() {
                self.mask_dropped.d.next = false;
            }
            if self.bar.addr.val() == self.k_op_key.val() {
                self.op_key.d.next = (self.op_key.q.val() & !self.bar.wr_mask.val()) | (self.bar.wr_data.val() & self.bar.wr_mask.val());
            }
            if self.bar.addr.val() == self.k_op_value.val() {
                self.op_value.d.next =
                    (self.op_value.q.val() & !self.bar.wr_mask.val()) | (self.bar.wr_data.val() & self.bar.wr_mask.val());
            }
            if (self.bar.addr.val() == self.k_op.val()) & !self.op_pend.q.val() {
                self.op_pend.d.next = true;
                self.op_code.d.next = self.bar.wr_data.val().get_bits::<2>(0);
                self.op_tag.d.next = self.bar.wr_data.val().get_bits::<4>(8);
                self.res_done.d.next = false;
            }
            if self.bar.addr.val() == self.k_cnt_sel.val() {
                self.cnt_sel.d.next = self.bar.wr_data.val().get_bits::<4>(0);
            }
            if (self.bar.addr.val() >= self.k_mask_base.val()) & (self.rd_rel.val() < self.k_tags.val()) {
                if self.busy.val() {
                    self.mask_dropped.d.next = true;
                } else {
                    self.mask_pend.d.next = true;
                    self.mask_tag.d.next = self.rd_rel.val().get_bits::<4>(0);
                    self.mask_new.d.next = self.bar.wr_data.val().get_bits::<8>(0);
                }
            }
        }

        if self.reset.val() {
            self.ce_lookup.d.next = false;
            self.ce_fill.d.next = false;
            self.ce_evict.d.next = false;
            self.ce_kill.d.next = false;
            self.init_busy.d.next = true;
            self.init_ctr.d.next = 0.into();
            self.s1_valid.d.next = false;
            self.s2_valid.d.next = false;
            self.op_pend.d.next = false;
            self.mask_pend.d.next = false;
            self.sweep.d.next = false;
            self.sw_valid.d.next = false;
            self.sw_last.d.next = false;
            self.lw_valid.d.next = false;
            self.lp_valid.d.next = false;
            self.r_valid.d.next = false;
            self.res_done.d.next = false;
            self.partition.d.next = self.k_ctrl_reset.val().get_bit(0);
            self.mask_dropped.d.next = false;
            self.cnt_miss_dropped.d.next = 0.into();
            self.cnt_sel.d.next = 0.into();
            for i in 0..TAGS {
                self.masks[i].d.next = self.k_mask_reset.val();
                self.cnt_hits[i].d.next = 0.into();
                self.cnt_misses[i].d.next = 0.into();
                self.cnt_fills[i].d.next = 0.into();
                self.cnt_evict[i].d.next = 0.into();
                self.occ[i].d.next = 0.into();
            }
        }
    }
}
