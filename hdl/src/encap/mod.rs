//! Geneve encapsulation (transmit) pipeline: inner Ethernet frames from the
//! host queues go out as outer Ethernet / IPv4 / UDP / Geneve (RFC 8926),
//! one 64-bit beat per cycle with no idle cycle between frames, byte for
//! byte what `offcard_net::tx::transmit` says. See docs/encap.md.
//!
//! [`GeneveEncap`] is the block the card instantiates; it holds the BAR0
//! registers (0x2000-0x27FF: tenant enables, counters, `NOW`,
//! `LAST_HASH`), the ring between the writer and the output, and wires
//! the stages, each a block of its own (and a Verilated model with its own
//! test bench):
//!
//! ```text
//!  in_*   -> writer -> ring words -> output -> out_*
//!            writer -> capture words -> parser
//!  parser -> frame (tenant, length, time) -> header;  header -> take -> parser, hash, lookup
//!  parser -> RSS input, 64 bits a step -> hash -> hash -> select
//!  header -> tenant, time, policy, gap, bad paths, decide -> select -> port -> header
//!  parser -> map key -> lookup <-> map_* (the cache);  lookup -> destination -> header
//!  header -> header words (by index) -> output
//! ```
//!
//! * [`writer`] (W) writes the frame, cut or padded to its length, into the
//!   ring (already shifted for the 50-byte header) and its first 88 bytes
//!   into the parser's capture;
//! * [`parser`] picks the RSS input and the mapping key out of the capture;
//! * [`hash`] is Toeplitz, 64 bits a cycle;
//! * [`select`] applies the tenant's path policy with the flow table;
//! * [`lookup`] asks the mapping cache for the outer destination;
//! * [`header`] runs a frame's ten cycles (context, hash, path, checksum)
//!   and holds the finished header until the output takes it;
//! * [`output`] (O) sends header words, then ring words, into a two-entry
//!   output queue.
//!
//! The output is 50 bytes longer than the input, so the input stalls for
//! about six cycles a frame; the ring (4 KiB) lets the writer run ahead
//! through those cycles.
//!
//! No stage boundary adds a register (each signal that crosses one is a
//! register output or a value of the same cycle), so the block behaves
//! cycle for cycle as it did as one block. Every port of a stage is at
//! most 64 bits wide, what the block models carry: the capture is written
//! a word at a time, the RSS input leaves the parser 64 bits a step, and
//! the output reads the finished header by word index.

pub mod hash;
pub mod header;
pub mod lookup;
pub mod output;
pub mod parser;
pub mod select;
pub mod writer;

use crate::regfile::EventCounter;
use crate::regmap::encap;
use crate::{dw_index, konst};
use crate::bus::RegBusTarget;
use rust_hdl::prelude::*;
use smart_default::SmartDefault;

// The register decode below assumes this layout of regmap::encap.
const _: () = {
    assert!(encap::TENANT_BASE == encap::BASE);
    assert!(encap::TENANT_STRIDE == 0x40);
    assert!(encap::TENANTS == 16);
    assert!(encap::GLOBAL_BASE == encap::BASE + 0x400);
    assert!(encap::END == encap::BASE + 0x7FF);
    assert!(encap::RING_LOG2 == 9);
    assert!(encap::T_PATHS == 4 * encap::T_CONTEXT_DWS);
    // update() reads the mapping enable as bit 10 of a T_CONFIG write.
    assert!(encap::CONFIG_USE_MAPPING == 1 << 10);
};

#[derive(LogicBlock, SmartDefault)]
pub struct GeneveEncap {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    // inner frames from the host queues
    pub in_data: Signal<In, Bits<64>>,
    /// Valid bytes in this beat (1..8); only a frame's last beat may be partial.
    pub in_bytes: Signal<In, Bits<4>>,
    pub in_last: Signal<In, Bit>,
    pub in_valid: Signal<In, Bit>,
    pub in_ready: Signal<Out, Bit>,
    /// Sideband, valid with a frame's first beat.
    pub in_tenant: Signal<In, Bits<4>>,
    pub in_len: Signal<In, Bits<14>>,
    // encapsulated frames
    pub out_data: Signal<Out, Bits<64>>,
    pub out_bytes: Signal<Out, Bits<4>>,
    pub out_last: Signal<Out, Bit>,
    pub out_valid: Signal<Out, Bit>,
    pub out_ready: Signal<In, Bit>,
    // BAR0 0x2000-0x27FF (DW index, absolute)
    pub bar: RegBusTarget,
    // Mapping cache request port (to `TaggedCache` req_*/rsp_*): one lookup
    // per IP frame of a tenant with `CONFIG_USE_MAPPING`, issued while the
    // parser runs. The cache answers 2 cycles after accepting, in order.
    pub map_req_valid: Signal<Out, Bit>,
    pub map_req_ready: Signal<In, Bit>,
    /// The frame's tenant.
    pub map_req_tag: Signal<Out, Bits<4>>,
    /// The inner destination (`offcard_net::tx::mapping_key`).
    pub map_req_key: Signal<Out, Bits<32>>,
    /// Always `regmap::cache::OP_LOOKUP`.
    pub map_req_op: Signal<Out, Bits<2>>,
    /// Always 0 (lookups carry no value).
    pub map_req_value: Signal<Out, Bits<32>>,
    pub map_rsp_valid: Signal<In, Bit>,
    pub map_rsp_hit: Signal<In, Bit>,
    /// On a hit: the outer IPv4 destination.
    pub map_rsp_value: Signal<In, Bits<32>>,

    writer: writer::EncapWriter,
    parser: parser::EncapParser,
    hasher: hash::EncapHash,
    select: select::EncapSelect,
    lookup: lookup::EncapLookup,
    header: header::EncapHeader,
    out: output::EncapOutput,
    /// The ring between the writer and the output: 512 words.
    ring: RAM<Bits<64>, 9>,

    cnt_frames: EventCounter,
    cnt_drop: EventCounter,
    cnt_mismatch: EventCounter,
    cnt_clamped: EventCounter,
    cnt_repick: EventCounter,
    cnt_avoided: EventCounter,
    cnt_map_hit: EventCounter,
    cnt_map_miss: EventCounter,
    cnt_map_timeout: EventCounter,
    /// `NOW`: the cycle counter frames are timed with.
    now: DFF<Bits<32>>,
    tenant_enable: DFF<Bits<16>>,
    last_hash: DFF<Bits<32>>,
    /// Per tenant: `T_CONFIG` bit `CONFIG_USE_MAPPING` (a copy of the bit the
    /// context RAM holds, so the lookup can start at the take, before the
    /// context is read).
    map_en: DFF<Bits<16>>,

    in_block: Signal<Local, Bit>,
    in_tenants: Signal<Local, Bit>,
    reg_dw: Signal<Local, Bits<4>>,
    reg_tenant: Signal<Local, Bits<4>>,
    reg_masked: Signal<Local, Bits<32>>,
    map_sel: Signal<Local, Bits<16>>,
    path_dw: Signal<Local, Bits<4>>,
    map_en_bits: Signal<Local, Bits<16>>,

    /// The block's 2 KiB of BAR0 (DW index bits 13:9).
    #[default(konst((encap::BASE >> 11) as u64))]
    c_block: Constant<Bits<5>>,
    #[default(dw_index(encap::TENANT_ENABLE))]
    c_g_enable: Constant<Bits<14>>,
    #[default(dw_index(encap::STATUS))]
    c_g_status: Constant<Bits<14>>,
    #[default(dw_index(encap::NOW))]
    c_g_now: Constant<Bits<14>>,
    #[default(dw_index(encap::CNT_FRAMES_OUT))]
    c_g_frames: Constant<Bits<14>>,
    #[default(dw_index(encap::CNT_DROP_DISABLED))]
    c_g_drop: Constant<Bits<14>>,
    #[default(dw_index(encap::CNT_LEN_MISMATCH))]
    c_g_mismatch: Constant<Bits<14>>,
    #[default(dw_index(encap::CNT_LEN_CLAMPED))]
    c_g_clamped: Constant<Bits<14>>,
    #[default(dw_index(encap::CNT_FLOWLET_REPICK))]
    c_g_repick: Constant<Bits<14>>,
    #[default(dw_index(encap::CNT_BAD_PATH_AVOIDED))]
    c_g_avoided: Constant<Bits<14>>,
    #[default(dw_index(encap::LAST_HASH))]
    c_g_last_hash: Constant<Bits<14>>,
    #[default(dw_index(encap::CNT_MAP_HIT))]
    c_g_map_hit: Constant<Bits<14>>,
    #[default(dw_index(encap::CNT_MAP_MISS))]
    c_g_map_miss: Constant<Bits<14>>,
    #[default(dw_index(encap::CNT_MAP_TIMEOUT))]
    c_g_map_timeout: Constant<Bits<14>>,
    #[default(konst(1))]
    c_one16: Constant<Bits<16>>,
    #[default(konst(encap::T_CONTEXT_DWS as u64))]
    c_ctx_dws: Constant<Bits<4>>,
    #[default(dw_index(encap::T_PATHS))]
    c_paths_dw: Constant<Bits<4>>,
}

impl Logic for GeneveEncap {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, now, tenant_enable, last_hash, map_en);
        clock!(
            self,
            clock,
            writer,
            parser,
            hasher,
            select,
            lookup,
            header,
            out,
            cnt_frames,
            cnt_drop,
            cnt_mismatch,
            cnt_clamped,
            cnt_repick,
            cnt_avoided,
            cnt_map_hit,
            cnt_map_miss,
            cnt_map_timeout
        );
        self.ring.read_clock.next = self.clock.val();
        self.ring.write_clock.next = self.clock.val();
        self.writer.reset.next = self.reset.val();
        self.parser.reset.next = self.reset.val();
        self.select.reset.next = self.reset.val();
        self.lookup.reset.next = self.reset.val();
        self.header.reset.next = self.reset.val();
        self.out.reset.next = self.reset.val();
        self.now.d.next = self.now.q.val() + 1;

        // ---- W: input into the ring and the capture ----
        self.writer.in_data.next = self.in_data.val();
        self.writer.in_bytes.next = self.in_bytes.val();
        self.writer.in_last.next = self.in_last.val();
        self.writer.in_valid.next = self.in_valid.val();
        self.writer.in_tenant.next = self.in_tenant.val();
        self.writer.in_len.next = self.in_len.val();
        self.in_ready.next = self.writer.in_ready.val();
        self.writer.tenant_enable.next = self.tenant_enable.q.val();
        self.writer.capture_full.next = self.parser.full.val();
        self.writer.clearing.next = self.select.clearing.val();
        self.writer.rptr.next = self.out.rptr.val();
        self.ring.write_address.next = self.writer.wptr.val().get_bits::<9>(0);
        self.ring.write_data.next = self.writer.ring_data.val();
        self.ring.write_enable.next = self.writer.ring_write.val();

        // ---- parser: the capture ----
        self.parser.cap_first.next = self.writer.cap_first.val();
        self.parser.cap_write.next = self.writer.cap_write.val();
        self.parser.cap_index.next = self.writer.cap_index.val();
        self.parser.cap_data.next = self.writer.cap_data.val();
        self.parser.cap_done.next = self.writer.cap_done.val();
        self.parser.frame_tenant.next = self.writer.frame_tenant.val();
        self.parser.frame_len.next = self.writer.frame_len.val();
        self.parser.now.next = self.now.q.val();
        self.parser.take.next = self.header.take.val();
        self.parser.shift.next = self.header.step.val();

        // ---- header: the frame's steps ----
        self.header.next_valid.next = self.parser.full.val();
        self.header.next_tenant.next = self.parser.tenant.val();
        self.header.next_len.next = self.parser.len.val();
        self.header.next_time.next = self.parser.frame_time.val();
        self.header.port.next = self.select.port.val();
        self.header.map_pending.next = self.lookup.pending.val();
        self.header.map_hit.next = self.lookup.hit.val();
        self.header.map_value.next = self.lookup.value.val();
        self.header.hdr_index.next = self.out.hdr_index.val();
        self.header.hdr_release.next = self.out.hdr_release.val();

        // ---- hash and path ----
        self.hasher.start.next = self.header.take.val();
        self.hasher.step.next = self.header.step.val();
        self.hasher.data.next = self.parser.tuple_word.val();
        self.select.tenant.next = self.header.tenant.val();
        self.select.hash.next = self.hasher.hash.val().get_bits::<9>(0);
        self.select.frame_time.next = self.header.frame_time.val();
        self.select.policy.next = self.header.policy.val();
        self.select.gap.next = self.header.gap.val();
        self.select.bad.next = self.header.bad.val();
        self.select.decide.next = self.header.decide.val();
        if self.header.decide.val() {
            self.last_hash.d.next = self.hasher.hash.val();
        }

        // ---- mapping lookup: started with the take, for IP frames of
        // tenants with the enable bit ----
        self.map_en_bits.next = self.map_en.q.val() >> self.parser.tenant.val();
        self.lookup.start.next = self.header.take.val();
        self.lookup.want.next = self.map_en_bits.val().get_bit(0) & self.parser.is_ip.val();
        self.lookup.tag.next = self.parser.tenant.val();
        self.lookup.key.next = self.parser.map_key.val();
        self.map_req_valid.next = self.lookup.map_req_valid.val();
        self.map_req_tag.next = self.lookup.map_req_tag.val();
        self.map_req_key.next = self.lookup.map_req_key.val();
        self.map_req_op.next = self.lookup.map_req_op.val();
        self.map_req_value.next = self.lookup.map_req_value.val();
        self.lookup.map_req_ready.next = self.map_req_ready.val();
        self.lookup.map_rsp_valid.next = self.map_rsp_valid.val();
        self.lookup.map_rsp_hit.next = self.map_rsp_hit.val();
        self.lookup.map_rsp_value.next = self.map_rsp_value.val();

        // ---- O: header words, then ring words ----
        self.out.hdr_valid.next = self.header.hdr_valid.val();
        self.out.hdr_words.next = self.header.hdr_words.val();
        self.out.hdr_last_bytes.next = self.header.hdr_last_bytes.val();
        self.out.hdr_word.next = self.header.hdr_word.val();
        self.out.wptr.next = self.writer.wptr.val();
        self.ring.read_address.next = self.out.rptr.val().get_bits::<9>(0);
        self.out.ring_data.next = self.ring.read_data.val();
        self.out.out_ready.next = self.out_ready.val();
        self.out_data.next = self.out.out_data.val();
        self.out_bytes.next = self.out.out_bytes.val();
        self.out_last.next = self.out.out_last.val();
        self.out_valid.next = self.out.out_valid.val();

        // ---- counters ----
        self.cnt_frames.inc.next = self.out.ev_frame.val();
        self.cnt_drop.inc.next = self.writer.ev_drop.val();
        self.cnt_mismatch.inc.next = self.writer.ev_mismatch.val();
        self.cnt_clamped.inc.next = self.writer.ev_clamped.val();
        self.cnt_repick.inc.next = self.select.ev_repick.val();
        self.cnt_avoided.inc.next = self.select.ev_avoided.val();
        self.cnt_map_hit.inc.next = self.lookup.ev_hit.val();
        self.cnt_map_miss.inc.next = self.lookup.ev_miss.val();
        self.cnt_map_timeout.inc.next = self.lookup.ev_timeout.val();
        self.cnt_frames.reset.next = self.reset.val();
        self.cnt_drop.reset.next = self.reset.val();
        self.cnt_mismatch.reset.next = self.reset.val();
        self.cnt_clamped.reset.next = self.reset.val();
        self.cnt_repick.reset.next = self.reset.val();
        self.cnt_avoided.reset.next = self.reset.val();
        self.cnt_map_hit.reset.next = self.reset.val();
        self.cnt_map_miss.reset.next = self.reset.val();
        self.cnt_map_timeout.reset.next = self.reset.val();
        self.cnt_frames.clear.next = false;
        self.cnt_drop.clear.next = false;
        self.cnt_mismatch.clear.next = false;
        self.cnt_clamped.clear.next = false;
        self.cnt_repick.clear.next = false;
        self.cnt_avoided.clear.next = false;
        self.cnt_map_hit.clear.next = false;
        self.cnt_map_miss.clear.next = false;
        self.cnt_map_timeout.clear.next = false;

        // ---- register port ----
        self.in_block.next = self.bar.addr.val().get_bits::<5>(9) == self.c_block.val();
        self.in_tenants.next = self.in_block.val() & !self.bar.addr.val().get_bit(8);
        self.reg_dw.next = self.bar.addr.val().get_bits::<4>(0);
        self.reg_tenant.next = self.bar.addr.val().get_bits::<4>(4);
        self.reg_masked.next = self.bar.wr_data.val() & self.bar.wr_mask.val();
        self.bar.rd_data.next = 0.into();
        if self.bar.addr.val() == self.c_g_enable.val() {
            self.bar.rd_data.next = bit_cast::<32, 16>(self.tenant_enable.q.val());
        } else if self.bar.addr.val() == self.c_g_status.val() {
            self.bar.rd_data.next = bit_cast::<32, 1>(self.select.clearing.val().into());
        } else if self.bar.addr.val() == self.c_g_now.val() {
            self.bar.rd_data.next = self.now.q.val();
        } else if self.bar.addr.val() == self.c_g_frames.val() {
            self.bar.rd_data.next = self.cnt_frames.count.val();
        } else if self.bar.addr.val() == self.c_g_drop.val() {
            self.bar.rd_data.next = self.cnt_drop.count.val();
        } else if self.bar.addr.val() == self.c_g_mismatch.val() {
            self.bar.rd_data.next = self.cnt_mismatch.count.val();
        } else if self.bar.addr.val() == self.c_g_clamped.val() {
            self.bar.rd_data.next = self.cnt_clamped.count.val();
        } else if self.bar.addr.val() == self.c_g_repick.val() {
            self.bar.rd_data.next = self.cnt_repick.count.val();
        } else if self.bar.addr.val() == self.c_g_avoided.val() {
            self.bar.rd_data.next = self.cnt_avoided.count.val();
        } else if self.bar.addr.val() == self.c_g_last_hash.val() {
            self.bar.rd_data.next = self.last_hash.q.val();
        } else if self.bar.addr.val() == self.c_g_map_hit.val() {
            self.bar.rd_data.next = self.cnt_map_hit.count.val();
        } else if self.bar.addr.val() == self.c_g_map_miss.val() {
            self.bar.rd_data.next = self.cnt_map_miss.count.val();
        } else if self.bar.addr.val() == self.c_g_map_timeout.val() {
            self.bar.rd_data.next = self.cnt_map_timeout.count.val();
        }
        if self.bar.wr_en.val() & (self.bar.addr.val() == self.c_g_enable.val()) {
            self.tenant_enable.d.next = bit_cast::<16, 32>(
                (bit_cast::<32, 16>(self.tenant_enable.q.val()) & !self.bar.wr_mask.val()) | self.reg_masked.val(),
            );
        }
        // A T_CONFIG write also sets the tenant's copy of the mapping enable
        // (the RAM stores the masked data, so the copy takes the masked bit).
        self.map_sel.next = self.c_one16.val() << self.reg_tenant.val();
        if self.bar.wr_en.val() & self.in_tenants.val() & (self.reg_dw.val() == 0) {
            self.map_en.d.next = self.map_en.q.val() & !self.map_sel.val();
            if self.reg_masked.val().get_bit(10) {
                self.map_en.d.next = self.map_en.q.val() | self.map_sel.val();
            }
        }
        // The tenant rows (context and path table) are write-only: they live
        // in RAMs in the header and select stages.
        self.header.ctx_write.next =
            self.bar.wr_en.val() & self.in_tenants.val() & (self.reg_dw.val() < self.c_ctx_dws.val());
        self.header.ctx_tenant.next = self.reg_tenant.val();
        self.header.ctx_dw.next = self.reg_dw.val();
        self.header.ctx_data.next = self.reg_masked.val();
        self.path_dw.next = self.reg_dw.val() - self.c_paths_dw.val();
        self.select.path_write.next = self.bar.wr_en.val()
            & self.in_tenants.val()
            & (self.reg_dw.val() >= self.c_paths_dw.val())
            & (self.reg_dw.val() < self.c_paths_dw.val() + 4);
        self.select.path_tenant.next = self.reg_tenant.val();
        self.select.path_word.next = self.path_dw.val().get_bits::<2>(0);
        self.select.path_data.next = self.reg_masked.val();

        if self.reset.val() {
            self.now.d.next = 0.into();
            self.tenant_enable.d.next = 0.into();
            self.map_en.d.next = 0.into();
        }
    }
}
