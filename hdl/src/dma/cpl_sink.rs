//! Completion sink: read completions from the host (split at the Read
//! Completion Boundary, out of order across tags) go straight into the
//! transfer buffer at the position the read engine's tag table gives, or,
//! for the descriptor fetch's tag, into the front end's descriptor
//! registers. The last completion of a tag retires it.
//!
//! Two stages, for timing: the arrival stage decodes the header beats and
//! works out where the completion's data goes (from the tag's chunk end and
//! the Byte Count: the data ends where the chunk ends) into registers; the
//! write stage, one cycle later, puts the delayed beat into the buffer under
//! a byte mask (only bytes inside the chunk) and retires the tag.
//!
//! Stream beats (docs/tlp.md): beat 0 holds header DWs 0 and 1, beat 1 DW 2
//! (requester, tag, lower address) in lane 0 and the first data DW in lane
//! 1, later beats two data DWs each.

use super::read::VPOS_BITS;
use crate::byte_buffer::POS_BITS;
use crate::konst;
use rust_hdl::prelude::*;
use smart_default::SmartDefault;

/// The tag of the front end's descriptor reads (data reads use 0..15).
pub const DESC_TAG: u64 = 16;

#[derive(LogicBlock, SmartDefault)]
pub struct CplSink {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    pub cpl_data: Signal<In, Bits<64>>,
    pub cpl_keep: Signal<In, Bits<2>>,
    pub cpl_sop: Signal<In, Bit>,
    pub cpl_eop: Signal<In, Bit>,
    pub cpl_valid: Signal<In, Bit>,
    pub cpl_ready: Signal<Out, Bit>,
    // ---- the read engine's tag table ----
    pub lookup_tag: Signal<Out, Bits<4>>,
    pub lookup_start: Signal<In, Bits<VPOS_BITS>>,
    pub lookup_end: Signal<In, Bits<VPOS_BITS>>,
    pub lookup_busy: Signal<In, Bit>,
    /// The front end waits for a descriptor (tag `DESC_TAG` is expected).
    pub desc_active: Signal<In, Bit>,
    // ---- the transfer buffer ----
    pub buf_wr_en: Signal<Out, Bit>,
    pub buf_wr_pos: Signal<Out, Bits<POS_BITS>>,
    pub buf_wr_data: Signal<Out, Bits<64>>,
    pub buf_wr_mask: Signal<Out, Bits<8>>,
    // ---- descriptor DWs: lane 0 is DW `desc_idx0`, lane 1 DW `desc_idx1` ----
    pub desc_we0: Signal<Out, Bit>,
    pub desc_idx0: Signal<Out, Bits<3>>,
    pub desc_we1: Signal<Out, Bit>,
    pub desc_idx1: Signal<Out, Bits<3>>,
    pub desc_data: Signal<Out, Bits<64>>,
    // ---- retirement ----
    pub retire_valid: Signal<Out, Bit>,
    /// The retired tag is the descriptor fetch's (else data tag `retire_tag`).
    pub retire_desc: Signal<Out, Bit>,
    pub retire_tag: Signal<Out, Bits<4>>,
    pub retire_ok: Signal<Out, Bit>,
    /// A completion for no outstanding request ended (dropped).
    pub unexpected: Signal<Out, Bit>,

    // arrival stage
    s_beat: DFF<Bits<10>>,
    s_len: DFF<Bits<10>>,
    s_status: DFF<Bits<3>>,
    s_bc: DFF<Bits<12>>,
    s_tag: DFF<Bits<4>>,
    s_desc: DFF<Bit>,
    s_active: DFF<Bit>,
    s_last: DFF<Bit>,
    s_ok: DFF<Bit>,
    s_start: DFF<Bits<VPOS_BITS>>,
    s_clen: DFF<Bits<VPOS_BITS>>,
    s_pos0: DFF<Bits<VPOS_BITS>>,
    s_didx0: DFF<Bits<6>>,
    // write stage
    s_pos: DFF<Bits<VPOS_BITS>>,
    s_didx: DFF<Bits<6>>,
    p_valid: DFF<Bit>,
    p_data: DFF<Bits<64>>,
    p_keep: DFF<Bits<2>>,
    p_b1: DFF<Bit>,
    p_eop: DFF<Bit>,

    k_take: Signal<Local, Bit>,
    k_is_b1: Signal<Local, Bit>,
    k_tag: Signal<Local, Bits<5>>,
    k_desc: Signal<Local, Bit>,
    k_active: Signal<Local, Bit>,
    k_bc: Signal<Local, Bits<VPOS_BITS>>,
    k_la: Signal<Local, Bits<VPOS_BITS>>,
    k_last: Signal<Local, Bit>,
    k_dgap: Signal<Local, Bits<12>>,
    k_didx: Signal<Local, Bits<6>>,
    pos_cur: Signal<Local, Bits<VPOS_BITS>>,
    didx_cur: Signal<Local, Bits<6>>,
    lane0_ok: Signal<Local, Bit>,
    lane1_ok: Signal<Local, Bit>,
    lanemask: Signal<Local, Bits<8>>,
    bmask: Signal<Local, Bits<8>>,
    /// Each lane's offset in the chunk, wrapping at 20 bits (so a byte
    /// before the chunk's start is far out, not negative).
    boff: [Signal<Local, Bits<VPOS_BITS>>; 8],
    end_pkt: Signal<Local, Bit>,
    write_ok: Signal<Local, Bit>,
    #[default(konst(DESC_TAG))]
    c_desc_tag: Constant<Bits<5>>,
}

impl Logic for CplSink {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clock, s_beat, s_len, s_status, s_bc, s_tag, s_desc, s_active, s_last, s_ok, s_start, s_clen, s_pos0,
            s_didx0, s_pos, s_didx, p_valid, p_data, p_keep, p_b1, p_eop
        );
        self.cpl_ready.next = true;
        self.k_take.next = self.cpl_valid.val();
        self.k_is_b1.next = self.s_beat.q.val() == 1;
        // ---- arrival stage: the tag and lower address are in beat 1, lane 0 ----
        self.k_tag.next = self.cpl_data.val().get_bits::<5>(8);
        self.k_desc.next = self.k_tag.val() == self.c_desc_tag.val();
        self.lookup_tag.next = self.k_tag.val().get_bits::<4>(0);
        self.k_active.next = self.lookup_busy.val() & !self.k_tag.val().get_bit(4);
        if self.k_desc.val() {
            self.k_active.next = self.desc_active.val();
        }
        self.k_bc.next = bit_cast::<VPOS_BITS, 12>(self.s_bc.q.val());
        if self.s_bc.q.val() == 0 {
            self.k_bc.next = 4096.into();
        }
        self.k_la.next = bit_cast::<VPOS_BITS, 2>(self.cpl_data.val().get_bits::<2>(0));
        // The last completion of a request carries all the bytes left.
        self.k_last.next = ((bit_cast::<VPOS_BITS, 10>(self.s_len.q.val()) << 2) - self.k_la.val()) >= self.k_bc.val();
        if self.s_status.q.val() != 0 {
            self.k_last.next = true;
        }
        // Descriptor: 32 bytes at an aligned address; the first data DW's index.
        // (The difference goes through a 12-bit signal first, so rust-hdl
        // and the Verilog wrap it the same way for a malformed byte count.)
        self.k_dgap.next = 32 - self.s_bc.q.val();
        self.k_didx.next = bit_cast::<6, 12>(self.k_dgap.val() >> 2);
        if self.k_take.val() {
            if self.cpl_sop.val() {
                self.s_beat.d.next = 1.into();
                self.s_len.d.next = self.cpl_data.val().get_bits::<10>(0);
                self.s_status.d.next = self.cpl_data.val().get_bits::<3>(45);
                self.s_bc.d.next = self.cpl_data.val().get_bits::<12>(32);
            } else if self.s_beat.q.val() != 0 {
                if self.s_beat.q.val() != 1023 {
                    self.s_beat.d.next = self.s_beat.q.val() + 1;
                }
                if self.k_is_b1.val() {
                    self.s_tag.d.next = self.k_tag.val().get_bits::<4>(0);
                    self.s_desc.d.next = self.k_desc.val();
                    self.s_active.d.next = self.k_active.val();
                    self.s_last.d.next = self.k_last.val();
                    self.s_ok.d.next = self.s_status.q.val() == 0;
                    self.s_start.d.next = self.lookup_start.val();
                    self.s_clen.d.next = self.lookup_end.val() - self.lookup_start.val();
                    // Lane 0 of beat 1 sits one DW before the first data DW,
                    // which starts (lower address & 3) before the first byte.
                    self.s_pos0.d.next = self.lookup_end.val() - self.k_bc.val() - self.k_la.val() - 4;
                    self.s_didx0.d.next = self.k_didx.val();
                }
            }
            if self.cpl_eop.val() {
                self.s_beat.d.next = 0.into();
            }
        }
        self.p_valid.d.next = self.k_take.val() & !self.cpl_sop.val() & (self.s_beat.q.val() >= 1);
        self.p_data.d.next = self.cpl_data.val();
        self.p_keep.d.next = self.cpl_keep.val();
        self.p_b1.d.next = self.k_is_b1.val();
        self.p_eop.d.next = self.cpl_eop.val();

        // ---- write stage ----
        self.pos_cur.next = self.s_pos.q.val();
        self.didx_cur.next = self.s_didx.q.val();
        if self.p_b1.q.val() {
            self.pos_cur.next = self.s_pos0.q.val();
            self.didx_cur.next = self.s_didx0.q.val();
        }
        self.lane0_ok.next = self.p_keep.q.val().get_bit(0) & !self.p_b1.q.val();
        self.lane1_ok.next = self.p_keep.q.val().get_bit(1);
        if self.p_valid.q.val() {
            self.s_pos.d.next = self.pos_cur.val() + 8;
            self.s_didx.d.next = self.didx_cur.val() + 2;
        }
        self.lanemask.next = 0.into();
        if self.lane0_ok.val() & self.lane1_ok.val() {
            self.lanemask.next = 0xFF.into();
        } else if self.lane0_ok.val() {
            self.lanemask.next = 0x0F.into();
        } else if self.lane1_ok.val() {
            self.lanemask.next = 0xF0.into();
        }
        // Only the chunk's own bytes: its first and last DW may hold others.
        self.bmask.next = 0.into();
        self.boff[0].next = self.pos_cur.val() - self.s_start.q.val();
        self.boff[1].next = self.pos_cur.val() + 1 - self.s_start.q.val();
        self.boff[2].next = self.pos_cur.val() + 2 - self.s_start.q.val();
        self.boff[3].next = self.pos_cur.val() + 3 - self.s_start.q.val();
        self.boff[4].next = self.pos_cur.val() + 4 - self.s_start.q.val();
        self.boff[5].next = self.pos_cur.val() + 5 - self.s_start.q.val();
        self.boff[6].next = self.pos_cur.val() + 6 - self.s_start.q.val();
        self.boff[7].next = self.pos_cur.val() + 7 - self.s_start.q.val();
        if self.boff[0].val() < self.s_clen.q.val() {
            self.bmask.next = self.bmask.val() | 1;
        }
        if self.boff[1].val() < self.s_clen.q.val() {
            self.bmask.next = self.bmask.val() | 2;
        }
        if self.boff[2].val() < self.s_clen.q.val() {
            self.bmask.next = self.bmask.val() | 4;
        }
        if self.boff[3].val() < self.s_clen.q.val() {
            self.bmask.next = self.bmask.val() | 8;
        }
        if self.boff[4].val() < self.s_clen.q.val() {
            self.bmask.next = self.bmask.val() | 16;
        }
        if self.boff[5].val() < self.s_clen.q.val() {
            self.bmask.next = self.bmask.val() | 32;
        }
        if self.boff[6].val() < self.s_clen.q.val() {
            self.bmask.next = self.bmask.val() | 64;
        }
        if self.boff[7].val() < self.s_clen.q.val() {
            self.bmask.next = self.bmask.val() | 128;
        }
        self.write_ok.next = self.p_valid.q.val() & self.s_active.q.val() & self.s_ok.q.val();
        self.buf_wr_en.next = self.write_ok.val() & !self.s_desc.q.val();
        self.buf_wr_pos.next = self.pos_cur.val().get_bits::<POS_BITS>(0);
        self.buf_wr_data.next = self.p_data.q.val();
        self.buf_wr_mask.next = self.bmask.val() & self.lanemask.val();
        // Descriptor DWs: lane 0 is index didx - 1, lane 1 is didx.
        self.desc_data.next = self.p_data.q.val();
        self.desc_we0.next = self.write_ok.val()
            & self.s_desc.q.val()
            & self.lane0_ok.val()
            & (self.didx_cur.val() >= 1)
            & (self.didx_cur.val() <= 8);
        self.desc_idx0.next = bit_cast::<3, 6>(self.didx_cur.val() - 1);
        self.desc_we1.next = self.write_ok.val() & self.s_desc.q.val() & self.lane1_ok.val() & (self.didx_cur.val() <= 7);
        self.desc_idx1.next = self.didx_cur.val().get_bits::<3>(0);
        // ---- retirement ----
        self.end_pkt.next = self.p_valid.q.val() & self.p_eop.q.val();
        self.retire_valid.next = self.end_pkt.val() & self.s_active.q.val() & self.s_last.q.val();
        self.retire_desc.next = self.s_desc.q.val();
        self.retire_tag.next = self.s_tag.q.val();
        self.retire_ok.next = self.s_ok.q.val();
        self.unexpected.next = self.end_pkt.val() & !self.s_active.q.val();
        if self.reset.val() {
            self.s_beat.d.next = 0.into();
            self.p_valid.d.next = false;
        }
    }
}
