//! The header stage: builds each frame's outer Ethernet / IPv4 / UDP / Geneve
//! header (the 50 bytes `offcard_net::geneve::encapsulate` puts in front of
//! the inner frame) and holds it for the output stage.
//!
//! It runs the frame's steps, ten cycles a frame (nine until issue 15 gave
//! select a register stage):
//!
//! | cycle | here | elsewhere |
//! |---|---|---|
//! | take | context read of DWs 0-1 | parser frees the capture, loads the RSS input; hash starts; lookup request registered |
//! | pc 0-4 | context DWs 2k, 2k+1 latched (two a cycle, even and odd RAMs) | hash steps (`step`); lookup offered and answered |
//! | pc 5 | | select reads the flow-table slot (the hash is final) |
//! | pc 6 | | select registers the start path (idle test, policy) |
//! | pc 7 | `decide` | select chooses the path, writes the slot, reads the entropy value |
//! | pc 8 | port and IPv4 checksum latched | |
//!
//! then the header moves to the next-header registers as soon as they are
//! free (the output stage releases them when it issues the header's last
//! word), and the next capture is taken in that same cycle. So the next
//! frame's header is ready when the previous frame's last beat leaves.
//!
//! If the mapping lookup has not answered by pc 8 (only when the cache is
//! slow to accept), the stage waits in `Wait` and takes the checksum again
//! once the destination is known.
//!
//! The tenant context (`T_CONFIG` .. `T_NEXT_HOP_MAC_LO`, DWs 0-9) lives
//! here in two RAMs, even and odd DWs apart, so one read returns two.

use crate::konst;
use crate::regmap::encap;
use crate::regmap::net::{ETHERTYPE_IPV4, GENEVE_PORT, OVERHEAD, PROTO_ETHERNET};
use rust_hdl::prelude::*;
use smart_default::SmartDefault;

/// Header words: 50 bytes in 64-bit beats, the last holding two bytes.
pub const HEADER_WORDS: usize = 7;
const _: () = assert!(OVERHEAD == 50 && (OVERHEAD + 7) / 8 == HEADER_WORDS);

// The context is read as pairs (CONFIG, GAP), (BAD, VNI), (SRC_IP, DST_IP),
// (SRC_MAC_HI, LO), (NEXT_HOP_MAC_HI, LO): DW 2k in the even RAM, 2k+1 in
// the odd one, at address {tenant, k}.
const _: () = {
    let order = [
        encap::T_CONFIG,
        encap::T_FLOWLET_GAP,
        encap::T_BAD_PATHS,
        encap::T_VNI,
        encap::T_SRC_IP,
        encap::T_DST_IP,
        encap::T_SRC_MAC_HI,
        encap::T_SRC_MAC_LO,
        encap::T_NEXT_HOP_MAC_HI,
        encap::T_NEXT_HOP_MAC_LO,
    ];
    let mut i = 0;
    while i < order.len() {
        assert!(order[i] == 4 * i as u32);
        i += 1;
    }
    assert!(encap::T_CONTEXT_DWS == 10 && encap::CONFIG_POLICY_SHIFT == 8);
};

#[derive(Copy, Clone, PartialEq, Debug, LogicState)]
pub enum HeaderState {
    Idle,
    /// Steps pc 0..8 of a frame.
    Run,
    /// Header built except the outer destination: the mapping lookup has
    /// not answered yet.
    Wait,
    /// Header built, waiting for the next-header registers.
    Done,
}

#[derive(LogicBlock, SmartDefault)]
pub struct EncapHeader {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    /// The next frame, in the parser's capture.
    pub next_valid: Signal<In, Bit>,
    pub next_tenant: Signal<In, Bits<4>>,
    pub next_len: Signal<In, Bits<14>>,
    pub next_time: Signal<In, Bits<32>>,
    /// Take the next frame (parser, hash and lookup start on it).
    pub take: Signal<Out, Bit>,
    /// The hash absorbs a word of the RSS input (five steps a frame).
    pub step: Signal<Out, Bit>,
    /// The path is chosen (select).
    pub decide: Signal<Out, Bit>,
    /// The frame in progress, for select: tenant, time, and the tenant's
    /// policy, flowlet gap and bad-path mask.
    pub tenant: Signal<Out, Bits<4>>,
    pub frame_time: Signal<Out, Bits<32>>,
    pub policy: Signal<Out, Bits<2>>,
    pub gap: Signal<Out, Bits<32>>,
    pub bad: Signal<Out, Bits<8>>,
    /// The entropy value select chose (the cycle after `decide`).
    pub port: Signal<In, Bits<16>>,
    /// The mapping lookup (see `EncapLookup`).
    pub map_pending: Signal<In, Bit>,
    pub map_hit: Signal<In, Bit>,
    pub map_value: Signal<In, Bits<32>>,
    /// Context write (BAR0 DWs 0..9 of a tenant's row; write-only).
    pub ctx_write: Signal<In, Bit>,
    pub ctx_tenant: Signal<In, Bits<4>>,
    pub ctx_dw: Signal<In, Bits<4>>,
    pub ctx_data: Signal<In, Bits<32>>,
    /// The next header, for the output stage: its words are read by index
    /// (word `hdr_index`, byte i in bits 8i+7:8i), `hdr_release` frees it.
    pub hdr_valid: Signal<Out, Bit>,
    /// Output words of the frame (header and inner frame), and bytes in the last.
    pub hdr_words: Signal<Out, Bits<11>>,
    pub hdr_last_bytes: Signal<Out, Bits<4>>,
    pub hdr_index: Signal<In, Bits<3>>,
    pub hdr_word: Signal<Out, Bits<64>>,
    pub hdr_release: Signal<In, Bit>,

    ctx_even: RAM<Bits<32>, 7>,
    ctx_odd: RAM<Bits<32>, 7>,
    state: DFF<HeaderState>,
    pc: DFF<Bits<4>>,
    p_tenant: DFF<Bits<4>>,
    p_len: DFF<Bits<14>>,
    p_time: DFF<Bits<32>>,
    /// T_CONFIG: TTL [7:0], policy [9:8].
    p_cfg: DFF<Bits<10>>,
    p_gap: DFF<Bits<32>>,
    p_bad: DFF<Bits<8>>,
    p_vni: DFF<Bits<24>>,
    p_sip: DFF<Bits<32>>,
    p_dip: DFF<Bits<32>>,
    p_smac_hi: DFF<Bits<16>>,
    p_smac_lo: DFF<Bits<32>>,
    p_nh_hi: DFF<Bits<16>>,
    p_nh_lo: DFF<Bits<32>>,
    p_port: DFF<Bits<16>>,
    p_ck: DFF<Bits<16>>,
    // The next-header registers.
    nm_valid: DFF<Bit>,
    nm_h: [DFF<Bits<64>>; HEADER_WORDS],
    nm_words: DFF<Bits<11>>,
    nm_last_bytes: DFF<Bits<4>>,

    take_now: Signal<Local, Bit>,
    ctx_k: Signal<Local, Bits<3>>,
    tot_len: Signal<Local, Bits<16>>,
    udp_len: Signal<Local, Bits<16>>,
    dip_used: Signal<Local, Bits<32>>,
    ck_sum: Signal<Local, Bits<20>>,
    ck_f1: Signal<Local, Bits<20>>,
    ck_f2: Signal<Local, Bits<20>>,
    /// The header being built, word by word.
    h: [Signal<Local, Bits<64>>; HEADER_WORDS],

    /// The header's fixed bytes, word by word (the rest are ORed in).
    #[default(core::array::from_fn(|w| konst(header_word(w))))]
    c_hc: [Constant<Bits<64>>; HEADER_WORDS],
    /// The sum of the fixed IPv4 header words (the checksum adds the rest).
    #[default(konst(fixed_checksum_sum()))]
    c_ck_fixed: Constant<Bits<20>>,
}

/// The outer header's fixed bytes (the rest are filled per frame): the
/// layout `offcard_net::geneve::encapsulate` writes.
fn fixed_header() -> [u8; OVERHEAD] {
    let mut h = [0u8; OVERHEAD];
    h[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    h[14] = 0x45; // IPv4, 20-byte header
    h[20] = 0x40; // DF
    h[23] = 17; // UDP
    h[36..38].copy_from_slice(&GENEVE_PORT.to_be_bytes());
    h[44..46].copy_from_slice(&PROTO_ETHERNET.to_be_bytes());
    h
}

/// Word `w` of the fixed header as the output sends it.
fn header_word(w: usize) -> u64 {
    let hdr = fixed_header();
    let mut b = [0u8; 8];
    let n = (OVERHEAD - 8 * w).min(8);
    b[..n].copy_from_slice(&hdr[8 * w..8 * w + n]);
    u64::from_le_bytes(b)
}

fn fixed_checksum_sum() -> u64 {
    let hdr = fixed_header();
    (0..10).map(|i| u16::from_be_bytes([hdr[14 + 2 * i], hdr[15 + 2 * i]]) as u64).sum()
}

impl Logic for EncapHeader {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clock, state, pc, p_tenant, p_len, p_time, p_cfg, p_gap, p_bad, p_vni, p_sip, p_dip, p_smac_hi,
            p_smac_lo, p_nh_hi, p_nh_lo, p_port, p_ck, nm_valid, nm_words, nm_last_bytes
        );
        for i in 0..HEADER_WORDS {
            self.nm_h[i].clock.next = self.clock.val();
            self.nm_h[i].d.next = self.nm_h[i].q.val();
        }
        self.ctx_even.read_clock.next = self.clock.val();
        self.ctx_even.write_clock.next = self.clock.val();
        self.ctx_odd.read_clock.next = self.clock.val();
        self.ctx_odd.write_clock.next = self.clock.val();

        // ---- context writes ----
        self.ctx_even.write_address.next =
            (bit_cast::<7, 4>(self.ctx_tenant.val()) << 3) | bit_cast::<7, 3>(self.ctx_dw.val().get_bits::<3>(1));
        self.ctx_odd.write_address.next =
            (bit_cast::<7, 4>(self.ctx_tenant.val()) << 3) | bit_cast::<7, 3>(self.ctx_dw.val().get_bits::<3>(1));
        self.ctx_even.write_data.next = self.ctx_data.val();
        self.ctx_odd.write_data.next = self.ctx_data.val();
        self.ctx_even.write_enable.next = self.ctx_write.val() & !self.ctx_dw.val().get_bit(0);
        self.ctx_odd.write_enable.next = self.ctx_write.val() & self.ctx_dw.val().get_bit(0);

        // ---- the frame in progress, for select ----
        self.tenant.next = self.p_tenant.q.val();
        self.frame_time.next = self.p_time.q.val();
        self.policy.next = self.p_cfg.q.val().get_bits::<2>(8);
        self.gap.next = self.p_gap.q.val();
        self.bad.next = self.p_bad.q.val();
        self.step.next = (self.state.q.val() == HeaderState::Run) & (self.pc.q.val() <= 4);
        self.decide.next = (self.state.q.val() == HeaderState::Run) & (self.pc.q.val() == 7);

        // ---- the header ----
        self.tot_len.next = bit_cast::<16, 14>(self.p_len.q.val()) + 36;
        self.udp_len.next = bit_cast::<16, 14>(self.p_len.q.val()) + 16;
        // The outer destination: the cached mapping on a hit, else T_DST_IP.
        self.dip_used.next = self.p_dip.q.val();
        if self.map_hit.val() {
            self.dip_used.next = self.map_value.val();
        }
        // IPv4 header checksum: the fixed words' sum plus the varying ones,
        // folded twice (a 20-bit sum of seven 16-bit terms needs two folds).
        self.ck_sum.next = self.c_ck_fixed.val()
            + bit_cast::<20, 16>(self.tot_len.val())
            + (bit_cast::<20, 8>(self.p_cfg.q.val().get_bits::<8>(0)) << 8)
            + bit_cast::<20, 16>(self.p_sip.q.val().get_bits::<16>(16))
            + bit_cast::<20, 16>(self.p_sip.q.val().get_bits::<16>(0))
            + bit_cast::<20, 16>(self.dip_used.val().get_bits::<16>(16))
            + bit_cast::<20, 16>(self.dip_used.val().get_bits::<16>(0));
        self.ck_f1.next = bit_cast::<20, 16>(self.ck_sum.val().get_bits::<16>(0))
            + bit_cast::<20, 4>(self.ck_sum.val().get_bits::<4>(16));
        self.ck_f2.next = bit_cast::<20, 16>(self.ck_f1.val().get_bits::<16>(0))
            + bit_cast::<20, 4>(self.ck_f1.val().get_bits::<4>(16));
        // Multi-byte fields are big-endian on the wire: the field's top byte
        // goes in the lower lane. Bytes 0-5 next hop, 6-11 source MAC.
        self.h[0].next = self.c_hc[0].val()
            | bit_cast::<64, 8>(self.p_nh_hi.q.val().get_bits::<8>(8))
            | (bit_cast::<64, 8>(self.p_nh_hi.q.val().get_bits::<8>(0)) << 8)
            | (bit_cast::<64, 8>(self.p_nh_lo.q.val().get_bits::<8>(24)) << 16)
            | (bit_cast::<64, 8>(self.p_nh_lo.q.val().get_bits::<8>(16)) << 24)
            | (bit_cast::<64, 8>(self.p_nh_lo.q.val().get_bits::<8>(8)) << 32)
            | (bit_cast::<64, 8>(self.p_nh_lo.q.val().get_bits::<8>(0)) << 40)
            | (bit_cast::<64, 8>(self.p_smac_hi.q.val().get_bits::<8>(8)) << 48)
            | (bit_cast::<64, 8>(self.p_smac_hi.q.val().get_bits::<8>(0)) << 56);
        self.h[1].next = self.c_hc[1].val()
            | bit_cast::<64, 8>(self.p_smac_lo.q.val().get_bits::<8>(24))
            | (bit_cast::<64, 8>(self.p_smac_lo.q.val().get_bits::<8>(16)) << 8)
            | (bit_cast::<64, 8>(self.p_smac_lo.q.val().get_bits::<8>(8)) << 16)
            | (bit_cast::<64, 8>(self.p_smac_lo.q.val().get_bits::<8>(0)) << 24);
        // Bytes 16-17 total length, 22 TTL.
        self.h[2].next = self.c_hc[2].val()
            | bit_cast::<64, 8>(self.tot_len.val().get_bits::<8>(8))
            | (bit_cast::<64, 8>(self.tot_len.val().get_bits::<8>(0)) << 8)
            | (bit_cast::<64, 8>(self.p_cfg.q.val().get_bits::<8>(0)) << 48);
        // Bytes 24-25 checksum, 26-29 source, 30-33 destination.
        self.h[3].next = self.c_hc[3].val()
            | bit_cast::<64, 8>(self.p_ck.q.val().get_bits::<8>(8))
            | (bit_cast::<64, 8>(self.p_ck.q.val().get_bits::<8>(0)) << 8)
            | (bit_cast::<64, 8>(self.p_sip.q.val().get_bits::<8>(24)) << 16)
            | (bit_cast::<64, 8>(self.p_sip.q.val().get_bits::<8>(16)) << 24)
            | (bit_cast::<64, 8>(self.p_sip.q.val().get_bits::<8>(8)) << 32)
            | (bit_cast::<64, 8>(self.p_sip.q.val().get_bits::<8>(0)) << 40)
            | (bit_cast::<64, 8>(self.dip_used.val().get_bits::<8>(24)) << 48)
            | (bit_cast::<64, 8>(self.dip_used.val().get_bits::<8>(16)) << 56);
        // Bytes 34-35 UDP source port, 38-39 UDP length.
        self.h[4].next = self.c_hc[4].val()
            | bit_cast::<64, 8>(self.dip_used.val().get_bits::<8>(8))
            | (bit_cast::<64, 8>(self.dip_used.val().get_bits::<8>(0)) << 8)
            | (bit_cast::<64, 8>(self.p_port.q.val().get_bits::<8>(8)) << 16)
            | (bit_cast::<64, 8>(self.p_port.q.val().get_bits::<8>(0)) << 24)
            | (bit_cast::<64, 8>(self.udp_len.val().get_bits::<8>(8)) << 48)
            | (bit_cast::<64, 8>(self.udp_len.val().get_bits::<8>(0)) << 56);
        // Bytes 46-48 VNI.
        self.h[5].next = self.c_hc[5].val()
            | (bit_cast::<64, 8>(self.p_vni.q.val().get_bits::<8>(16)) << 48)
            | (bit_cast::<64, 8>(self.p_vni.q.val().get_bits::<8>(8)) << 56);
        self.h[6].next = self.c_hc[6].val() | bit_cast::<64, 8>(self.p_vni.q.val().get_bits::<8>(0));

        // ---- steps ----
        self.take_now.next = self.next_valid.val()
            & ((self.state.q.val() == HeaderState::Idle)
                | ((self.state.q.val() == HeaderState::Done) & !self.nm_valid.q.val()));
        self.take.next = self.take_now.val();
        // The context pair for the next step is read one cycle ahead.
        self.ctx_k.next = bit_cast::<3, 4>(self.pc.q.val() + 1);
        self.ctx_even.read_address.next =
            (bit_cast::<7, 4>(self.p_tenant.q.val()) << 3) | bit_cast::<7, 3>(self.ctx_k.val());
        self.ctx_odd.read_address.next =
            (bit_cast::<7, 4>(self.p_tenant.q.val()) << 3) | bit_cast::<7, 3>(self.ctx_k.val());
        if self.take_now.val() {
            self.ctx_even.read_address.next = bit_cast::<7, 4>(self.next_tenant.val()) << 3;
            self.ctx_odd.read_address.next = bit_cast::<7, 4>(self.next_tenant.val()) << 3;
        }
        match self.state.q.val() {
            HeaderState::Run => {
                self.pc.d.next = self.pc.q.val() + 1;
                if self.pc.q.val() == 0 {
                    self.p_cfg.d.next = self.ctx_even.read_data.val().get_bits::<10>(0);
                    self.p_gap.d.next = self.ctx_odd.read_data.val();
                }
                if self.pc.q.val() == 1 {
                    self.p_bad.d.next = self.ctx_even.read_data.val().get_bits::<8>(0);
                    self.p_vni.d.next = self.ctx_odd.read_data.val().get_bits::<24>(0);
                }
                if self.pc.q.val() == 2 {
                    self.p_sip.d.next = self.ctx_even.read_data.val();
                    self.p_dip.d.next = self.ctx_odd.read_data.val();
                }
                if self.pc.q.val() == 3 {
                    self.p_smac_hi.d.next = self.ctx_even.read_data.val().get_bits::<16>(0);
                    self.p_smac_lo.d.next = self.ctx_odd.read_data.val();
                }
                if self.pc.q.val() == 4 {
                    self.p_nh_hi.d.next = self.ctx_even.read_data.val().get_bits::<16>(0);
                    self.p_nh_lo.d.next = self.ctx_odd.read_data.val();
                }
                if self.pc.q.val() == 8 {
                    self.p_port.d.next = self.port.val();
                    self.p_ck.d.next = !self.ck_f2.val().get_bits::<16>(0);
                    self.state.d.next = HeaderState::Done;
                    if self.map_pending.val() {
                        self.state.d.next = HeaderState::Wait;
                    }
                }
            }
            HeaderState::Wait => {
                if !self.map_pending.val() {
                    self.p_ck.d.next = !self.ck_f2.val().get_bits::<16>(0);
                    self.state.d.next = HeaderState::Done;
                }
            }
            HeaderState::Done => {
                if !self.nm_valid.q.val() {
                    self.nm_valid.d.next = true;
                    for i in 0..HEADER_WORDS {
                        self.nm_h[i].d.next = self.h[i].val();
                    }
                    self.nm_words.d.next = bit_cast::<11, 14>((self.p_len.q.val() + 9) >> 3) + 6;
                    self.nm_last_bytes.d.next = bit_cast::<4, 14>(((self.p_len.q.val() + 1) & 7) + 1);
                    self.state.d.next = HeaderState::Idle;
                }
            }
            _ => {}
        }
        if self.take_now.val() {
            self.p_tenant.d.next = self.next_tenant.val();
            self.p_len.d.next = self.next_len.val();
            self.p_time.d.next = self.next_time.val();
            self.pc.d.next = 0.into();
            self.state.d.next = HeaderState::Run;
        }

        // ---- the next header, read by the output stage ----
        self.hdr_valid.next = self.nm_valid.q.val();
        self.hdr_words.next = self.nm_words.q.val();
        self.hdr_last_bytes.next = self.nm_last_bytes.q.val();
        self.hdr_word.next = 0.into();
        for i in 0..HEADER_WORDS {
            if self.hdr_index.val().index() == i {
                self.hdr_word.next = self.nm_h[i].q.val();
            }
        }
        if self.hdr_release.val() {
            self.nm_valid.d.next = false;
        }
        if self.reset.val() {
            self.state.d.next = HeaderState::Idle;
            self.nm_valid.d.next = false;
        }
    }
}
