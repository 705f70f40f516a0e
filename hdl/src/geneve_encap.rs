//! Geneve encapsulation (transmit) pipeline: inner Ethernet frames from the
//! host queues go out as outer Ethernet / IPv4 / UDP / Geneve (RFC 8926),
//! one 64-bit beat per cycle with no idle cycle between frames.
//!
//! Four stages, each a small state machine, decoupled by registers:
//!
//! * **W (writer)** takes input beats, cuts or zero-pads the frame to its
//!   descriptor length (clamped to 60..9216) and writes it into the ring
//!   already shifted by the two bytes the 50-byte outer header leaves in its
//!   last beat (ring word i = input bytes 8i-2 .. 8i+6). The first eleven
//!   beats are also kept in the capture registers (an IPv4 header with
//!   options and a VLAN tag puts the ports as far as byte 82).
//! * **P (parser/selector)** takes a full capture in one cycle: it picks the
//!   RSS tuple out of it (IPv4/IPv6 addresses and TCP/UDP ports, or the MAC
//!   addresses), runs Toeplitz over it 64 bits a cycle while it reads the
//!   tenant's context from RAM, then applies the tenant's path policy with
//!   the flow-table slot the hash selects, reads the entropy value and
//!   builds the header. Nine cycles a frame. For a tenant with
//!   `CONFIG_USE_MAPPING` it also looks the inner destination up in the
//!   mapping cache (`map_*` port, to `TaggedCache`'s request port) from the
//!   cycle after the take; the answer (outer IPv4 destination on a hit, else
//!   `T_DST_IP`) is in long before the checksum is taken, unless the cache
//!   is slow to accept, when the parser waits (at most `MAP_READY_TIMEOUT`
//!   cycles for acceptance, then the default is used and counted).
//! * the **next-header registers** hold one finished header while the
//!   output sends the previous frame, so frame k+1's header is ready when
//!   frame k's last beat leaves.
//! * **O (output)** issues one word a cycle (header words from the
//!   next-header registers, then ring words) into a two-entry output queue.
//!
//! The output is 50 bytes longer than the input, so the input stalls for
//! about six cycles a frame; the ring (4 KiB) lets the writer run ahead
//! through those cycles. See docs/encap.md for the full-rate argument.

use crate::regfile::EventCounter;
use crate::regmap::encap;
use crate::regmap::net::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_VLAN, GENEVE_PORT, MAX_FRAME, MIN_FRAME, PROTO_ETHERNET, RSS_KEY};
use crate::{dw_index, konst};
use rust_hdl::prelude::*;
use smart_default::SmartDefault;

#[derive(Copy, Clone, PartialEq, Debug, LogicState)]
pub enum EncWriter {
    Idle,
    Data,
    Discard,
}

#[derive(Copy, Clone, PartialEq, Debug, LogicState)]
pub enum EncParser {
    Idle,
    Run,
    /// Header built except the outer destination: the mapping lookup has
    /// not answered yet (only when the cache is slow to accept it).
    Wait,
    Done,
}

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
    pub reg_addr: Signal<In, Bits<14>>,
    pub reg_wr_en: Signal<In, Bit>,
    pub reg_wr_data: Signal<In, Bits<32>>,
    pub reg_wr_mask: Signal<In, Bits<32>>,
    pub reg_rd_data: Signal<Out, Bits<32>>,
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

    ring: RAM<Bits<64>, 9>,
    /// Mapping table: context DWs 0..9 of each tenant, even and odd DWs apart
    /// so one read returns two.
    ctx_even: RAM<Bits<32>, 7>,
    ctx_odd: RAM<Bits<32>, 7>,
    /// Path table: two entropy values per word.
    paths: RAM<Bits<32>, 6>,
    /// Flow table: {last time [34:3], path offset [2:0]}.
    flows: RAM<Bits<35>, 10>,
    cnt_frames: EventCounter,
    cnt_drop: EventCounter,
    cnt_mismatch: EventCounter,
    cnt_clamped: EventCounter,
    cnt_repick: EventCounter,
    cnt_avoided: EventCounter,
    cnt_map_hit: EventCounter,
    cnt_map_miss: EventCounter,
    cnt_map_timeout: EventCounter,

    now: DFF<Bits<32>>,
    clearing: DFF<Bit>,
    clear_idx: DFF<Bits<10>>,
    tenant_enable: DFF<Bits<16>>,
    // writer
    w_state: DFF<EncWriter>,
    w_i: DFF<Bits<11>>,
    w_beats: DFF<Bits<11>>,
    w_words: DFF<Bits<11>>,
    w_last_bytes: DFF<Bits<4>>,
    w_carry: DFF<Bits<16>>,
    w_ended: DFF<Bit>,
    w_long: DFF<Bit>,
    w_mismatch: DFF<Bit>,
    wptr: DFF<Bits<10>>,
    rptr: DFF<Bits<10>>,
    cap0: DFF<Bits<64>>,
    cap1: DFF<Bits<64>>,
    cap2: DFF<Bits<64>>,
    cap3: DFF<Bits<64>>,
    cap4: DFF<Bits<64>>,
    cap5: DFF<Bits<64>>,
    cap6: DFF<Bits<64>>,
    cap7: DFF<Bits<64>>,
    cap8: DFF<Bits<64>>,
    cap9: DFF<Bits<64>>,
    cap10: DFF<Bits<64>>,
    cap_full: DFF<Bit>,
    cap_tenant: DFF<Bits<4>>,
    cap_len: DFF<Bits<14>>,
    cap_time: DFF<Bits<32>>,
    // parser / selector
    p_state: DFF<EncParser>,
    p_pc: DFF<Bits<3>>,
    p_tup: DFF<Bits<288>>,
    p_key: DFF<Bits<320>>,
    p_hash: DFF<Bits<32>>,
    p_tenant: DFF<Bits<4>>,
    p_len: DFF<Bits<14>>,
    p_time: DFF<Bits<32>>,
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
    p_path: DFF<Bits<3>>,
    p_port: DFF<Bits<16>>,
    p_ck: DFF<Bits<16>>,
    last_hash: DFF<Bits<32>>,
    // mapping lookup
    /// Per tenant: `T_CONFIG` bit `CONFIG_USE_MAPPING` (a copy of the bit the
    /// context RAM holds, so the request can leave the cycle after the take,
    /// before the context is read).
    map_en: DFF<Bits<16>>,
    /// The request is offered on map_req_*.
    mq_valid: DFF<Bit>,
    mq_tag: DFF<Bits<4>>,
    mq_key: DFF<Bits<32>>,
    /// The current frame's lookup has not been answered (offered or in flight).
    m_wait: DFF<Bit>,
    /// Accepted by the cache, response due.
    m_acc: DFF<Bit>,
    /// Cycles the lookup has waited.
    m_timer: DFF<Bits<7>>,
    /// The answer: use m_value as the outer destination.
    m_hit: DFF<Bit>,
    m_value: DFF<Bits<32>>,
    // next header
    nm_valid: DFF<Bit>,
    nm_h0: DFF<Bits<64>>,
    nm_h1: DFF<Bits<64>>,
    nm_h2: DFF<Bits<64>>,
    nm_h3: DFF<Bits<64>>,
    nm_h4: DFF<Bits<64>>,
    nm_h5: DFF<Bits<64>>,
    nm_h6: DFF<Bits<16>>,
    nm_words: DFF<Bits<11>>,
    nm_last_bytes: DFF<Bits<4>>,
    // output
    o_busy: DFF<Bit>,
    o_j: DFF<Bits<11>>,
    o_words: DFF<Bits<11>>,
    o_last_bytes: DFF<Bits<4>>,
    s1_valid: DFF<Bit>,
    s1_ring: DFF<Bit>,
    s1_merge: DFF<Bit>,
    s1_hdr: DFF<Bits<64>>,
    s1_last: DFF<Bit>,
    s1_bytes: DFF<Bits<4>>,
    f_cnt: DFF<Bits<2>>,
    f0_data: DFF<Bits<64>>,
    f0_bytes: DFF<Bits<4>>,
    f0_last: DFF<Bit>,
    f1_data: DFF<Bits<64>>,
    f1_bytes: DFF<Bits<4>>,
    f1_last: DFF<Bit>,

    // ---- combinational ----
    in_block: Signal<Local, Bit>,
    in_tenants: Signal<Local, Bit>,
    reg_dw: Signal<Local, Bits<4>>,
    reg_tenant: Signal<Local, Bits<4>>,
    reg_masked: Signal<Local, Bits<32>>,
    len_used: Signal<Local, Bits<14>>,
    len_clamped: Signal<Local, Bit>,
    ring_space: Signal<Local, Bit>,
    take_input: Signal<Local, Bit>,
    can_go: Signal<Local, Bit>,
    in_bytes_c: Signal<Local, Bits<4>>,
    lanes: Signal<Local, Bits<4>>,
    lane_mask: Signal<Local, Bits<64>>,
    wdata: Signal<Local, Bits<64>>,
    cap_done: Signal<Local, Bit>,
    capall: Signal<Local, Bits<704>>,
    et0: Signal<Local, Bits<16>>,
    vlan: Signal<Local, Bit>,
    et: Signal<Local, Bits<16>>,
    shb: Signal<Local, Bits<704>>,
    is4: Signal<Local, Bit>,
    is6: Signal<Local, Bit>,
    proto: Signal<Local, Bits<8>>,
    l4off: Signal<Local, Bits<8>>,
    l4sh: Signal<Local, Bits<10>>,
    shl4: Signal<Local, Bits<704>>,
    has_ports: Signal<Local, Bit>,
    ip_ok: Signal<Local, Bit>,
    ports: Signal<Local, Bits<32>>,
    tup: Signal<Local, Bits<288>>,
    p_take: Signal<Local, Bit>,
    kw: Signal<Local, Bits<320>>,
    hacc: Signal<Local, Bits<32>>,
    st_off: Signal<Local, Bits<3>>,
    st_last: Signal<Local, Bits<32>>,
    idle: Signal<Local, Bit>,
    policy: Signal<Local, Bits<2>>,
    base: Signal<Local, Bits<3>>,
    start: Signal<Local, Bits<3>>,
    bad2: Signal<Local, Bits<16>>,
    rot: Signal<Local, Bits<8>>,
    skip: Signal<Local, Bits<3>>,
    chosen: Signal<Local, Bits<3>>,
    tot_len: Signal<Local, Bits<16>>,
    udp_len: Signal<Local, Bits<16>>,
    ck_sum: Signal<Local, Bits<20>>,
    ck_f1: Signal<Local, Bits<20>>,
    ck_f2: Signal<Local, Bits<20>>,
    h0: Signal<Local, Bits<64>>,
    h1: Signal<Local, Bits<64>>,
    h2: Signal<Local, Bits<64>>,
    h3: Signal<Local, Bits<64>>,
    h4: Signal<Local, Bits<64>>,
    h5: Signal<Local, Bits<64>>,
    h6: Signal<Local, Bits<16>>,
    pop: Signal<Local, Bit>,
    occ: Signal<Local, Bits<3>>,
    space: Signal<Local, Bit>,
    cur_j: Signal<Local, Bits<11>>,
    cur_words: Signal<Local, Bits<11>>,
    cur_last_bytes: Signal<Local, Bits<4>>,
    need_ring: Signal<Local, Bit>,
    issue: Signal<Local, Bit>,
    hsel: Signal<Local, Bits<64>>,
    is_last: Signal<Local, Bit>,
    arrive: Signal<Local, Bits<64>>,
    keep_n: Signal<Local, Bits<2>>,
    push_at1: Signal<Local, Bit>,
    ring_used: Signal<Local, Bits<10>>,
    en_bits: Signal<Local, Bits<16>>,
    beat_mismatch: Signal<Local, Bit>,
    flow_slot: Signal<Local, Bits<10>>,
    new_off: Signal<Local, Bits<3>>,
    ctx_k: Signal<Local, Bits<3>>,
    path_dw: Signal<Local, Bits<4>>,
    map_en_bits: Signal<Local, Bits<16>>,
    map_sel: Signal<Local, Bits<16>>,
    do_map: Signal<Local, Bit>,
    mk_raw: Signal<Local, Bits<32>>,
    map_key: Signal<Local, Bits<32>>,
    m_rsp: Signal<Local, Bit>,
    m_expire: Signal<Local, Bit>,
    dip_used: Signal<Local, Bits<32>>,

    // ---- constants (from regmap and offcard-net) ----
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
    #[default(konst(crate::regmap::cache::OP_LOOKUP as u64))]
    c_op_lookup: Constant<Bits<2>>,
    /// Last cycle a lookup may wait for the cache to accept it.
    #[default(konst((encap::MAP_READY_TIMEOUT - 1) as u64))]
    c_map_ready_last: Constant<Bits<7>>,
    #[default(konst(1))]
    c_one16: Constant<Bits<16>>,
    #[default(konst(encap::T_CONTEXT_DWS as u64))]
    c_ctx_dws: Constant<Bits<4>>,
    #[default(dw_index(encap::T_PATHS))]
    c_paths_dw: Constant<Bits<4>>,
    #[default(konst(MIN_FRAME as u64))]
    c_min_len: Constant<Bits<14>>,
    #[default(konst(MAX_FRAME as u64))]
    c_max_len: Constant<Bits<14>>,
    #[default(konst(1))]
    c_one64: Constant<Bits<64>>,
    #[default(konst(u64::MAX))]
    c_ones64: Constant<Bits<64>>,
    #[default(konst(!0xFFFF))]
    c_merge_mask: Constant<Bits<64>>,
    #[default(konst(ETHERTYPE_VLAN.swap_bytes() as u64))]
    c_vlan_le: Constant<Bits<16>>,
    #[default(konst(ETHERTYPE_IPV4.swap_bytes() as u64))]
    c_v4_le: Constant<Bits<16>>,
    #[default(konst(ETHERTYPE_IPV6.swap_bytes() as u64))]
    c_v6_le: Constant<Bits<16>>,
    #[default(Constant::new(rss_key()))]
    c_key: Constant<Bits<320>>,
    #[default(konst(encap::POLICY_FLOWLET as u64))]
    c_flowlet: Constant<Bits<2>>,
    #[default(konst(encap::POLICY_SPRAY as u64))]
    c_spray: Constant<Bits<2>>,
    #[default(konst(fixed_checksum_sum()))]
    c_ck_fixed: Constant<Bits<20>>,
    #[default(konst(header_word(0)))]
    c_hc0: Constant<Bits<64>>,
    #[default(konst(header_word(1)))]
    c_hc1: Constant<Bits<64>>,
    #[default(konst(header_word(2)))]
    c_hc2: Constant<Bits<64>>,
    #[default(konst(header_word(3)))]
    c_hc3: Constant<Bits<64>>,
    #[default(konst(header_word(4)))]
    c_hc4: Constant<Bits<64>>,
    #[default(konst(header_word(5)))]
    c_hc5: Constant<Bits<64>>,
    #[default(konst(header_word(6)))]
    c_hc6: Constant<Bits<16>>,
}

/// The outer header's fixed bytes (the rest are filled per frame): the
/// layout `offcard_net::geneve::encapsulate` writes.
fn fixed_header() -> [u8; 50] {
    let mut h = [0u8; 50];
    h[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    h[14] = 0x45; // IPv4, 20-byte header
    h[20] = 0x40; // DF
    h[23] = 17; // UDP
    h[36..38].copy_from_slice(&GENEVE_PORT.to_be_bytes());
    h[44..46].copy_from_slice(&PROTO_ETHERNET.to_be_bytes());
    h
}

/// Fixed header word `w` (0..6) as the output sends it: byte i of the word
/// in bits 8i+7:8i (word 6 holds the last two header bytes).
fn header_word(w: usize) -> u64 {
    let hdr = fixed_header();
    let mut b = [0u8; 8];
    let n = (50 - 8 * w).min(8);
    b[..n].copy_from_slice(&hdr[8 * w..8 * w + n]);
    u64::from_le_bytes(b)
}

/// The sum of the fixed header's IPv4 header words (the checksum adds the
/// varying ones per frame).
fn fixed_checksum_sum() -> u64 {
    let hdr = fixed_header();
    (0..10).map(|i| u16::from_be_bytes([hdr[14 + 2 * i], hdr[15 + 2 * i]]) as u64).sum()
}

/// The RSS key as one register, first key byte in the top bits (the
/// Toeplitz window is taken from the top and the key shifts up).
fn rss_key() -> Bits<320> {
    let mut key: Bits<320> = Bits::default();
    for b in RSS_KEY {
        key = (key << 8) | bit_cast::<320, 8>((b as u64).to_bits());
    }
    key
}

// The decode in `update` assumes this layout of regmap::encap.
const _: () = {
    assert!(encap::TENANT_BASE == encap::BASE);
    assert!(encap::TENANT_STRIDE == 0x40);
    assert!(encap::TENANTS == 16);
    assert!(encap::GLOBAL_BASE == encap::BASE + 0x400);
    assert!(encap::END == encap::BASE + 0x7FF);
    assert!(encap::RING_LOG2 == 9);
    assert!(encap::FLOW_SLOTS_LOG2 == 6);
    // Context DWs are read two at a time: (CONFIG, GAP), (BAD, VNI),
    // (SRC_IP, DST_IP), (SRC_MAC_HI, LO), (NEXT_HOP_MAC_HI, LO).
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
    assert!(encap::T_PATHS == 4 * encap::T_CONTEXT_DWS);
    assert!(encap::CONFIG_POLICY_SHIFT == 8);
    // update() reads the mapping enable as bit 10 of a T_CONFIG write.
    assert!(encap::CONFIG_USE_MAPPING == 1 << 10);
    // The lookup timer is 7 bits; it also bounds a lookup in flight at 127.
    assert!(encap::MAP_READY_TIMEOUT >= 1 && encap::MAP_READY_TIMEOUT <= 100);
};

impl Logic for GeneveEncap {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            now,
            clearing,
            clear_idx,
            tenant_enable,
            w_state,
            w_i,
            w_beats,
            w_words,
            w_last_bytes,
            w_carry,
            w_ended,
            w_long,
            w_mismatch,
            wptr,
            rptr,
            cap0,
            cap1,
            cap2,
            cap3,
            cap4,
            cap5,
            cap6,
            cap7,
            cap8,
            cap9,
            cap10,
            cap_full,
            cap_tenant,
            cap_len,
            cap_time,
            p_state,
            p_pc,
            p_tup,
            p_key,
            p_hash,
            p_tenant,
            p_len,
            p_time,
            p_cfg,
            p_gap,
            p_bad,
            p_vni,
            p_sip,
            p_dip,
            p_smac_hi,
            p_smac_lo,
            p_nh_hi,
            p_nh_lo,
            p_path,
            p_port,
            p_ck,
            last_hash,
            map_en,
            mq_valid,
            mq_tag,
            mq_key,
            m_wait,
            m_acc,
            m_timer,
            m_hit,
            m_value,
            nm_valid,
            nm_h0,
            nm_h1,
            nm_h2,
            nm_h3,
            nm_h4,
            nm_h5,
            nm_h6,
            nm_words,
            nm_last_bytes,
            o_busy,
            o_j,
            o_words,
            o_last_bytes,
            s1_valid,
            s1_ring,
            s1_merge,
            s1_hdr,
            s1_last,
            s1_bytes,
            f_cnt,
            f0_data,
            f0_bytes,
            f0_last,
            f1_data,
            f1_bytes,
            f1_last
        );
        clock!(
            self,
            clock,
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
        self.ctx_even.read_clock.next = self.clock.val();
        self.ctx_even.write_clock.next = self.clock.val();
        self.ctx_odd.read_clock.next = self.clock.val();
        self.ctx_odd.write_clock.next = self.clock.val();
        self.paths.read_clock.next = self.clock.val();
        self.paths.write_clock.next = self.clock.val();
        self.flows.read_clock.next = self.clock.val();
        self.flows.write_clock.next = self.clock.val();
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
        self.cnt_frames.inc.next = false;
        self.cnt_drop.inc.next = false;
        self.cnt_mismatch.inc.next = false;
        self.cnt_clamped.inc.next = false;
        self.cnt_repick.inc.next = false;
        self.cnt_avoided.inc.next = false;
        self.cnt_map_hit.inc.next = false;
        self.cnt_map_miss.inc.next = false;
        self.cnt_map_timeout.inc.next = false;

        self.now.d.next = self.now.q.val() + 1;

        // ---- register port -------------------------------------------------
        self.in_block.next = self.reg_addr.val().get_bits::<5>(9) == self.c_block.val();
        self.in_tenants.next = self.in_block.val() & !self.reg_addr.val().get_bit(8);
        self.reg_dw.next = self.reg_addr.val().get_bits::<4>(0);
        self.reg_tenant.next = self.reg_addr.val().get_bits::<4>(4);
        self.reg_masked.next = self.reg_wr_data.val() & self.reg_wr_mask.val();
        self.reg_rd_data.next = 0.into();
        if self.reg_addr.val() == self.c_g_enable.val() {
            self.reg_rd_data.next = bit_cast::<32, 16>(self.tenant_enable.q.val());
        } else if self.reg_addr.val() == self.c_g_status.val() {
            self.reg_rd_data.next = bit_cast::<32, 1>(self.clearing.q.val().into());
        } else if self.reg_addr.val() == self.c_g_now.val() {
            self.reg_rd_data.next = self.now.q.val();
        } else if self.reg_addr.val() == self.c_g_frames.val() {
            self.reg_rd_data.next = self.cnt_frames.count.val();
        } else if self.reg_addr.val() == self.c_g_drop.val() {
            self.reg_rd_data.next = self.cnt_drop.count.val();
        } else if self.reg_addr.val() == self.c_g_mismatch.val() {
            self.reg_rd_data.next = self.cnt_mismatch.count.val();
        } else if self.reg_addr.val() == self.c_g_clamped.val() {
            self.reg_rd_data.next = self.cnt_clamped.count.val();
        } else if self.reg_addr.val() == self.c_g_repick.val() {
            self.reg_rd_data.next = self.cnt_repick.count.val();
        } else if self.reg_addr.val() == self.c_g_avoided.val() {
            self.reg_rd_data.next = self.cnt_avoided.count.val();
        } else if self.reg_addr.val() == self.c_g_last_hash.val() {
            self.reg_rd_data.next = self.last_hash.q.val();
        } else if self.reg_addr.val() == self.c_g_map_hit.val() {
            self.reg_rd_data.next = self.cnt_map_hit.count.val();
        } else if self.reg_addr.val() == self.c_g_map_miss.val() {
            self.reg_rd_data.next = self.cnt_map_miss.count.val();
        } else if self.reg_addr.val() == self.c_g_map_timeout.val() {
            self.reg_rd_data.next = self.cnt_map_timeout.count.val();
        }
        if self.reg_wr_en.val() & (self.reg_addr.val() == self.c_g_enable.val()) {
            self.tenant_enable.d.next = bit_cast::<16, 32>(
                (bit_cast::<32, 16>(self.tenant_enable.q.val()) & !self.reg_wr_mask.val()) | self.reg_masked.val(),
            );
        }
        // A T_CONFIG write also sets the tenant's copy of the mapping enable
        // (the RAM stores the masked data, so the copy takes the masked bit).
        self.map_sel.next = self.c_one16.val() << self.reg_tenant.val();
        if self.reg_wr_en.val() & self.in_tenants.val() & (self.reg_dw.val() == 0) {
            self.map_en.d.next = self.map_en.q.val() & !self.map_sel.val();
            if self.reg_masked.val().get_bit(10) {
                self.map_en.d.next = self.map_en.q.val() | self.map_sel.val();
            }
        }
        // Mapping-table writes go straight to the RAMs (write-only from BAR0).
        self.ctx_even.write_address.next =
            (bit_cast::<7, 4>(self.reg_tenant.val()) << 3) | bit_cast::<7, 3>(self.reg_dw.val().get_bits::<3>(1));
        self.ctx_odd.write_address.next =
            (bit_cast::<7, 4>(self.reg_tenant.val()) << 3) | bit_cast::<7, 3>(self.reg_dw.val().get_bits::<3>(1));
        self.ctx_even.write_data.next = self.reg_masked.val();
        self.ctx_odd.write_data.next = self.reg_masked.val();
        self.ctx_even.write_enable.next = self.reg_wr_en.val()
            & self.in_tenants.val()
            & (self.reg_dw.val() < self.c_ctx_dws.val())
            & !self.reg_dw.val().get_bit(0);
        self.ctx_odd.write_enable.next = self.reg_wr_en.val()
            & self.in_tenants.val()
            & (self.reg_dw.val() < self.c_ctx_dws.val())
            & self.reg_dw.val().get_bit(0);
        self.path_dw.next = self.reg_dw.val() - self.c_paths_dw.val();
        self.paths.write_address.next =
            (bit_cast::<6, 4>(self.reg_tenant.val()) << 2) | bit_cast::<6, 2>(self.path_dw.val().get_bits::<2>(0));
        self.paths.write_data.next = self.reg_masked.val();
        self.paths.write_enable.next = self.reg_wr_en.val()
            & self.in_tenants.val()
            & (self.reg_dw.val() >= self.c_paths_dw.val())
            & (self.reg_dw.val() < self.c_paths_dw.val() + 4);

        // ---- W: input beats into the ring and the capture -----------------
        self.len_used.next = self.in_len.val();
        self.len_clamped.next = false;
        if self.in_len.val() < self.c_min_len.val() {
            self.len_used.next = self.c_min_len.val();
            self.len_clamped.next = true;
        }
        if self.in_len.val() > self.c_max_len.val() {
            self.len_used.next = self.c_max_len.val();
            self.len_clamped.next = true;
        }
        self.ring_used.next = self.wptr.q.val() - self.rptr.q.val();
        self.ring_space.next = !self.ring_used.val().get_bit(9);
        self.en_bits.next = self.tenant_enable.q.val() >> self.in_tenant.val();
        self.in_bytes_c.next = self.in_bytes.val();
        if self.in_bytes.val() > 8 {
            self.in_bytes_c.next = 8.into();
        }
        self.ring.write_address.next = self.wptr.q.val().get_bits::<9>(0);
        self.ring.write_enable.next = false;
        self.in_ready.next = false;
        self.take_input.next = false;
        self.can_go.next = false;
        self.cap_done.next = false;
        // Bytes of this beat that belong to the frame: all, unless it is the
        // input's last beat or the last beat the length allows.
        self.lanes.next = 8.into();
        if self.w_state.q.val() == EncWriter::Data {
            self.take_input.next = (self.w_i.q.val() < self.w_beats.q.val()) & !self.w_ended.q.val();
            if (self.w_i.q.val() + 1 == self.w_beats.q.val()) & (self.w_last_bytes.q.val() != 8) {
                self.lanes.next = self.w_last_bytes.q.val();
            }
        }
        if self.in_last.val() & (self.in_bytes_c.val() < self.lanes.val()) {
            self.lanes.next = self.in_bytes_c.val();
        }
        self.lane_mask.next = self.c_ones64.val();
        if self.lanes.val() < 8 {
            self.lane_mask.next = (self.c_one64.val() << (bit_cast::<7, 4>(self.lanes.val()) << 3)) - 1;
        }
        self.wdata.next = 0.into();
        if (self.w_state.q.val() == EncWriter::Idle) | self.take_input.val() {
            self.wdata.next = self.in_data.val() & self.lane_mask.val();
        }
        // The input disagrees with the length: ends early, or has bytes left
        // after the last beat the length allows.
        self.beat_mismatch.next = self.take_input.val()
            & ((self.in_last.val()
                & ((self.w_i.q.val() + 1 < self.w_beats.q.val())
                    | (self.in_bytes_c.val() != self.w_last_bytes.q.val())))
                | (!self.in_last.val() & (self.w_i.q.val() + 1 == self.w_beats.q.val())));
        self.ring.write_data.next = (self.wdata.val() << 16) | bit_cast::<64, 16>(self.w_carry.q.val());
        match self.w_state.q.val() {
            EncWriter::Idle => {
                self.in_ready.next = !self.clearing.q.val() & !self.cap_full.q.val() & self.ring_space.val();
                if self.in_valid.val() & self.in_ready.val() {
                    self.cnt_clamped.inc.next = self.len_clamped.val();
                    if !self.en_bits.val().get_bit(0) {
                        self.cnt_drop.inc.next = true;
                        if !self.in_last.val() {
                            self.w_state.d.next = EncWriter::Discard;
                        }
                    } else {
                        // Word 0: lanes 0-1 are filled by the header's last two bytes.
                        self.ring.write_data.next = self.wdata.val() << 16;
                        self.ring.write_enable.next = true;
                        self.wptr.d.next = self.wptr.q.val() + 1;
                        self.w_carry.d.next = self.wdata.val().get_bits::<16>(48);
                        self.w_i.d.next = 1.into();
                        self.w_beats.d.next = bit_cast::<11, 14>((self.len_used.val() + 7) >> 3);
                        self.w_words.d.next = bit_cast::<11, 14>((self.len_used.val() + 9) >> 3);
                        self.w_last_bytes.d.next = bit_cast::<4, 14>(((self.len_used.val() + 7) & 7) + 1);
                        // A frame is at least eight beats, so an input that
                        // ends here is short: the rest is zero padding.
                        self.w_ended.d.next = self.in_last.val();
                        self.w_mismatch.d.next = self.in_last.val();
                        self.w_long.d.next = false;
                        self.cap0.d.next = self.wdata.val();
                        self.cap1.d.next = 0.into();
                        self.cap2.d.next = 0.into();
                        self.cap3.d.next = 0.into();
                        self.cap4.d.next = 0.into();
                        self.cap5.d.next = 0.into();
                        self.cap6.d.next = 0.into();
                        self.cap7.d.next = 0.into();
                        self.cap8.d.next = 0.into();
                        self.cap9.d.next = 0.into();
                        self.cap10.d.next = 0.into();
                        self.cap_tenant.d.next = self.in_tenant.val();
                        self.cap_len.d.next = self.len_used.val();
                        self.cap_time.d.next = self.now.q.val();
                        self.w_state.d.next = EncWriter::Data;
                    }
                }
            }
            EncWriter::Data => {
                self.in_ready.next = self.take_input.val() & self.ring_space.val();
                self.can_go.next = self.ring_space.val() & (!self.take_input.val() | self.in_valid.val());
                if self.can_go.val() {
                    self.ring.write_enable.next = true;
                    self.wptr.d.next = self.wptr.q.val() + 1;
                    self.w_carry.d.next = self.wdata.val().get_bits::<16>(48);
                    self.w_i.d.next = self.w_i.q.val() + 1;
                    if self.w_i.q.val() == 1 {
                        self.cap1.d.next = self.wdata.val();
                    }
                    if self.w_i.q.val() == 2 {
                        self.cap2.d.next = self.wdata.val();
                    }
                    if self.w_i.q.val() == 3 {
                        self.cap3.d.next = self.wdata.val();
                    }
                    if self.w_i.q.val() == 4 {
                        self.cap4.d.next = self.wdata.val();
                    }
                    if self.w_i.q.val() == 5 {
                        self.cap5.d.next = self.wdata.val();
                    }
                    if self.w_i.q.val() == 6 {
                        self.cap6.d.next = self.wdata.val();
                    }
                    if self.w_i.q.val() == 7 {
                        self.cap7.d.next = self.wdata.val();
                    }
                    if self.w_i.q.val() == 8 {
                        self.cap8.d.next = self.wdata.val();
                    }
                    if self.w_i.q.val() == 9 {
                        self.cap9.d.next = self.wdata.val();
                    }
                    if self.w_i.q.val() == 10 {
                        self.cap10.d.next = self.wdata.val();
                    }
                    self.cap_done.next = (self.w_i.q.val() == 10)
                        | ((self.w_i.q.val() < 10) & (self.w_i.q.val() + 1 == self.w_words.q.val()));
                    if self.cap_done.val() {
                        self.cap_full.d.next = true;
                    }
                    if self.beat_mismatch.val() {
                        self.w_mismatch.d.next = true;
                    }
                    if self.take_input.val() & self.in_last.val() {
                        self.w_ended.d.next = true;
                    }
                    if self.w_i.q.val() + 1 == self.w_words.q.val() {
                        self.cnt_mismatch.inc.next = self.w_mismatch.q.val() | self.beat_mismatch.val();
                        self.w_state.d.next = EncWriter::Idle;
                        // More data than the length: the rest is discarded.
                        if self.w_long.q.val() | (self.take_input.val() & !self.in_last.val()) {
                            self.w_state.d.next = EncWriter::Discard;
                        }
                    } else if self.take_input.val()
                        & !self.in_last.val()
                        & (self.w_i.q.val() + 1 == self.w_beats.q.val())
                    {
                        self.w_long.d.next = true;
                    }
                }
            }
            EncWriter::Discard => {
                self.in_ready.next = true;
                if self.in_valid.val() & self.in_last.val() {
                    self.w_state.d.next = EncWriter::Idle;
                }
            }
            _ => {
                self.w_state.d.next = EncWriter::Idle;
            }
        }

        // ---- P: tuple, Toeplitz, context, policy, header -----------------
        self.capall.next = bit_cast::<704, 64>(self.cap0.q.val())
            | (bit_cast::<704, 64>(self.cap1.q.val()) << 64)
            | (bit_cast::<704, 64>(self.cap2.q.val()) << 128)
            | (bit_cast::<704, 64>(self.cap3.q.val()) << 192)
            | (bit_cast::<704, 64>(self.cap4.q.val()) << 256)
            | (bit_cast::<704, 64>(self.cap5.q.val()) << 320)
            | (bit_cast::<704, 64>(self.cap6.q.val()) << 384)
            | (bit_cast::<704, 64>(self.cap7.q.val()) << 448)
            | (bit_cast::<704, 64>(self.cap8.q.val()) << 512)
            | (bit_cast::<704, 64>(self.cap9.q.val()) << 576)
            | (bit_cast::<704, 64>(self.cap10.q.val()) << 640);
        // Ethertypes compare in lane order (the first byte in bits 7:0).
        self.et0.next = self.capall.val().get_bits::<16>(96);
        self.vlan.next = self.et0.val() == self.c_vlan_le.val();
        self.et.next = self.et0.val();
        self.shb.next = self.capall.val() >> 112;
        self.l4off.next = 14.into();
        if self.vlan.val() {
            self.et.next = self.capall.val().get_bits::<16>(128);
            self.shb.next = self.capall.val() >> 144;
            self.l4off.next = 18.into();
        }
        self.is4.next = self.et.val() == self.c_v4_le.val();
        self.is6.next = self.et.val() == self.c_v6_le.val();
        self.proto.next = self.shb.val().get_bits::<8>(48);
        if self.is4.val() {
            self.proto.next = self.shb.val().get_bits::<8>(72);
            self.l4off.next = self.l4off.val() + (bit_cast::<8, 4>(self.shb.val().get_bits::<4>(0)) << 2);
        } else {
            self.l4off.next = self.l4off.val() + 40;
        }
        self.l4sh.next = bit_cast::<10, 8>(self.l4off.val()) << 3;
        self.shl4.next = self.capall.val() >> self.l4sh.val();
        self.has_ports.next = (self.proto.val() == 6) | (self.proto.val() == 17);
        self.ip_ok.next = (self.is4.val() | self.is6.val())
            & (!self.has_ports.val() | (bit_cast::<14, 8>(self.l4off.val()) + 4 <= self.cap_len.q.val()));
        self.ports.next = 0.into();
        if self.has_ports.val() {
            self.ports.next = self.shl4.val().get_bits::<32>(0);
        }
        // The RSS input, first byte in bits 7:0 (what FlowKey::bytes() lists,
        // or the two MAC addresses).
        self.tup.next = bit_cast::<288, 96>(self.capall.val().get_bits::<96>(0));
        if self.ip_ok.val() & self.is4.val() {
            self.tup.next =
                bit_cast::<288, 64>(self.shb.val().get_bits::<64>(96)) | (bit_cast::<288, 32>(self.ports.val()) << 64);
        }
        if self.ip_ok.val() & self.is6.val() {
            self.tup.next = bit_cast::<288, 256>(self.shb.val().get_bits::<256>(64))
                | (bit_cast::<288, 32>(self.ports.val()) << 256);
        }
        // Mapping key (offcard_net::tx::mapping_key): the IPv4 destination, or
        // the XOR of the IPv6 destination's four words; the XOR is taken in
        // lane order and the bytes swapped once (swapping commutes with XOR).
        // A frame is at least 60 bytes, so the address is always captured.
        self.mk_raw.next = self.shb.val().get_bits::<32>(128);
        if self.is6.val() {
            self.mk_raw.next = self.shb.val().get_bits::<32>(192)
                ^ self.shb.val().get_bits::<32>(224)
                ^ self.shb.val().get_bits::<32>(256)
                ^ self.shb.val().get_bits::<32>(288);
        }
        self.map_key.next = (bit_cast::<32, 8>(self.mk_raw.val().get_bits::<8>(0)) << 24)
            | (bit_cast::<32, 8>(self.mk_raw.val().get_bits::<8>(8)) << 16)
            | (bit_cast::<32, 8>(self.mk_raw.val().get_bits::<8>(16)) << 8)
            | bit_cast::<32, 8>(self.mk_raw.val().get_bits::<8>(24));
        self.map_en_bits.next = self.map_en.q.val() >> self.cap_tenant.q.val();
        self.do_map.next = self.map_en_bits.val().get_bit(0) & (self.is4.val() | self.is6.val());
        // Toeplitz, 64 input bits a cycle: bit n of the input selects the
        // 32-bit key window starting at key bit n.
        self.kw.next = self.p_key.q.val();
        self.hacc.next = self.p_hash.q.val();
        for j in 0..8 {
            for b in 0..8 {
                if self.p_tup.q.val().get_bit(8 * j + 7 - b) {
                    self.hacc.next = self.hacc.val() ^ bit_cast::<32, 320>(self.kw.val() >> 288);
                }
                self.kw.next = self.kw.val() << 1;
            }
        }
        // Policy (used at pc 6, with the flow-table slot read at pc 5).
        self.st_off.next = self.flows.read_data.val().get_bits::<3>(0);
        self.st_last.next = self.flows.read_data.val().get_bits::<32>(3);
        self.idle.next = (self.p_time.q.val() - self.st_last.val()) > self.p_gap.q.val();
        self.policy.next = self.p_cfg.q.val().get_bits::<2>(8);
        self.base.next = self.p_hash.q.val().get_bits::<3>(0);
        self.start.next = self.base.val();
        if self.policy.val() == self.c_flowlet.val() {
            self.start.next = self.base.val() + self.st_off.val() + bit_cast::<3, 1>(self.idle.val().into());
        }
        if self.policy.val() == self.c_spray.val() {
            self.start.next = self.base.val() + self.st_off.val() + 1;
        }
        self.bad2.next = (bit_cast::<16, 8>(self.p_bad.q.val()) << 8) | bit_cast::<16, 8>(self.p_bad.q.val());
        self.rot.next = bit_cast::<8, 16>(self.bad2.val() >> self.start.val());
        // First healthy path at or after start (start itself if none is).
        self.skip.next = 0.into();
        if !self.rot.val().get_bit(7) {
            self.skip.next = 7.into();
        }
        if !self.rot.val().get_bit(6) {
            self.skip.next = 6.into();
        }
        if !self.rot.val().get_bit(5) {
            self.skip.next = 5.into();
        }
        if !self.rot.val().get_bit(4) {
            self.skip.next = 4.into();
        }
        if !self.rot.val().get_bit(3) {
            self.skip.next = 3.into();
        }
        if !self.rot.val().get_bit(2) {
            self.skip.next = 2.into();
        }
        if !self.rot.val().get_bit(1) {
            self.skip.next = 1.into();
        }
        if !self.rot.val().get_bit(0) {
            self.skip.next = 0.into();
        }
        self.chosen.next = self.start.val() + self.skip.val();
        // Wrapping 3-bit arithmetic goes through a 3-bit Local: inside a
        // wider bit_cast, Verilog would evaluate it at the wider width.
        self.new_off.next = self.chosen.val() - self.base.val();
        // IPv4 header checksum over the fields that vary.
        self.tot_len.next = bit_cast::<16, 14>(self.p_len.q.val()) + 36;
        self.udp_len.next = bit_cast::<16, 14>(self.p_len.q.val()) + 16;
        // The outer destination: the cached mapping on a hit, else T_DST_IP.
        self.dip_used.next = self.p_dip.q.val();
        if self.m_hit.q.val() {
            self.dip_used.next = self.m_value.q.val();
        }
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
        self.h0.next = self.c_hc0.val()
            | bit_cast::<64, 8>(self.p_nh_hi.q.val().get_bits::<8>(8))
            | (bit_cast::<64, 8>(self.p_nh_hi.q.val().get_bits::<8>(0)) << 8)
            | (bit_cast::<64, 8>(self.p_nh_lo.q.val().get_bits::<8>(24)) << 16)
            | (bit_cast::<64, 8>(self.p_nh_lo.q.val().get_bits::<8>(16)) << 24)
            | (bit_cast::<64, 8>(self.p_nh_lo.q.val().get_bits::<8>(8)) << 32)
            | (bit_cast::<64, 8>(self.p_nh_lo.q.val().get_bits::<8>(0)) << 40)
            | (bit_cast::<64, 8>(self.p_smac_hi.q.val().get_bits::<8>(8)) << 48)
            | (bit_cast::<64, 8>(self.p_smac_hi.q.val().get_bits::<8>(0)) << 56);
        self.h1.next = self.c_hc1.val()
            | bit_cast::<64, 8>(self.p_smac_lo.q.val().get_bits::<8>(24))
            | (bit_cast::<64, 8>(self.p_smac_lo.q.val().get_bits::<8>(16)) << 8)
            | (bit_cast::<64, 8>(self.p_smac_lo.q.val().get_bits::<8>(8)) << 16)
            | (bit_cast::<64, 8>(self.p_smac_lo.q.val().get_bits::<8>(0)) << 24);
        self.h2.next = self.c_hc2.val()
            | bit_cast::<64, 8>(self.tot_len.val().get_bits::<8>(8))
            | (bit_cast::<64, 8>(self.tot_len.val().get_bits::<8>(0)) << 8)
            | (bit_cast::<64, 8>(self.p_cfg.q.val().get_bits::<8>(0)) << 48);
        self.h3.next = self.c_hc3.val()
            | bit_cast::<64, 8>(self.p_ck.q.val().get_bits::<8>(8))
            | (bit_cast::<64, 8>(self.p_ck.q.val().get_bits::<8>(0)) << 8)
            | (bit_cast::<64, 8>(self.p_sip.q.val().get_bits::<8>(24)) << 16)
            | (bit_cast::<64, 8>(self.p_sip.q.val().get_bits::<8>(16)) << 24)
            | (bit_cast::<64, 8>(self.p_sip.q.val().get_bits::<8>(8)) << 32)
            | (bit_cast::<64, 8>(self.p_sip.q.val().get_bits::<8>(0)) << 40)
            | (bit_cast::<64, 8>(self.dip_used.val().get_bits::<8>(24)) << 48)
            | (bit_cast::<64, 8>(self.dip_used.val().get_bits::<8>(16)) << 56);
        self.h4.next = self.c_hc4.val()
            | bit_cast::<64, 8>(self.dip_used.val().get_bits::<8>(8))
            | (bit_cast::<64, 8>(self.dip_used.val().get_bits::<8>(0)) << 8)
            | (bit_cast::<64, 8>(self.p_port.q.val().get_bits::<8>(8)) << 16)
            | (bit_cast::<64, 8>(self.p_port.q.val().get_bits::<8>(0)) << 24)
            | (bit_cast::<64, 8>(self.udp_len.val().get_bits::<8>(8)) << 48)
            | (bit_cast::<64, 8>(self.udp_len.val().get_bits::<8>(0)) << 56);
        self.h5.next = self.c_hc5.val()
            | (bit_cast::<64, 8>(self.p_vni.q.val().get_bits::<8>(16)) << 48)
            | (bit_cast::<64, 8>(self.p_vni.q.val().get_bits::<8>(8)) << 56);
        self.h6.next = self.c_hc6.val() | bit_cast::<16, 8>(self.p_vni.q.val().get_bits::<8>(0));

        self.p_take.next = self.cap_full.q.val()
            & ((self.p_state.q.val() == EncParser::Idle)
                | ((self.p_state.q.val() == EncParser::Done) & !self.nm_valid.q.val()));
        self.ctx_k.next = self.p_pc.q.val() + 1;
        self.ctx_even.read_address.next =
            (bit_cast::<7, 4>(self.p_tenant.q.val()) << 3) | bit_cast::<7, 3>(self.ctx_k.val());
        self.ctx_odd.read_address.next =
            (bit_cast::<7, 4>(self.p_tenant.q.val()) << 3) | bit_cast::<7, 3>(self.ctx_k.val());
        if self.p_take.val() {
            self.ctx_even.read_address.next = bit_cast::<7, 4>(self.cap_tenant.q.val()) << 3;
            self.ctx_odd.read_address.next = bit_cast::<7, 4>(self.cap_tenant.q.val()) << 3;
        }
        self.flow_slot.next =
            (bit_cast::<10, 4>(self.p_tenant.q.val()) << 6) | bit_cast::<10, 6>(self.p_hash.q.val().get_bits::<6>(3));
        self.flows.read_address.next = self.flow_slot.val();
        self.flows.write_address.next = self.flow_slot.val();
        self.flows.write_data.next =
            (bit_cast::<35, 32>(self.p_time.q.val()) << 3) | bit_cast::<35, 3>(self.new_off.val());
        self.flows.write_enable.next = false;
        self.paths.read_address.next =
            (bit_cast::<6, 4>(self.p_tenant.q.val()) << 2) | bit_cast::<6, 2>(self.chosen.val().get_bits::<2>(1));
        match self.p_state.q.val() {
            EncParser::Run => {
                self.p_pc.d.next = self.p_pc.q.val() + 1;
                if self.p_pc.q.val() <= 4 {
                    self.p_hash.d.next = self.hacc.val();
                    self.p_key.d.next = self.kw.val();
                    self.p_tup.d.next = self.p_tup.q.val() >> 64;
                }
                if self.p_pc.q.val() == 0 {
                    self.p_cfg.d.next = self.ctx_even.read_data.val().get_bits::<10>(0);
                    self.p_gap.d.next = self.ctx_odd.read_data.val();
                }
                if self.p_pc.q.val() == 1 {
                    self.p_bad.d.next = self.ctx_even.read_data.val().get_bits::<8>(0);
                    self.p_vni.d.next = self.ctx_odd.read_data.val().get_bits::<24>(0);
                }
                if self.p_pc.q.val() == 2 {
                    self.p_sip.d.next = self.ctx_even.read_data.val();
                    self.p_dip.d.next = self.ctx_odd.read_data.val();
                }
                if self.p_pc.q.val() == 3 {
                    self.p_smac_hi.d.next = self.ctx_even.read_data.val().get_bits::<16>(0);
                    self.p_smac_lo.d.next = self.ctx_odd.read_data.val();
                }
                if self.p_pc.q.val() == 4 {
                    self.p_nh_hi.d.next = self.ctx_even.read_data.val().get_bits::<16>(0);
                    self.p_nh_lo.d.next = self.ctx_odd.read_data.val();
                }
                if self.p_pc.q.val() == 6 {
                    self.flows.write_enable.next = true;
                    self.p_path.d.next = self.chosen.val();
                    self.last_hash.d.next = self.p_hash.q.val();
                    self.cnt_repick.inc.next = (self.policy.val() == self.c_flowlet.val()) & self.idle.val();
                    self.cnt_avoided.inc.next = self.skip.val() != 0;
                }
                if self.p_pc.q.val() == 7 {
                    self.p_port.d.next = self.paths.read_data.val().get_bits::<16>(0);
                    if self.p_path.q.val().get_bit(0) {
                        self.p_port.d.next = self.paths.read_data.val().get_bits::<16>(16);
                    }
                    self.p_ck.d.next = !self.ck_f2.val().get_bits::<16>(0);
                    self.p_state.d.next = EncParser::Done;
                    if self.m_wait.q.val() {
                        self.p_state.d.next = EncParser::Wait;
                    }
                }
            }
            EncParser::Wait => {
                // The checksum is taken again once the destination is known.
                if !self.m_wait.q.val() {
                    self.p_ck.d.next = !self.ck_f2.val().get_bits::<16>(0);
                    self.p_state.d.next = EncParser::Done;
                }
            }
            EncParser::Done => {
                if !self.nm_valid.q.val() {
                    self.nm_valid.d.next = true;
                    self.nm_h0.d.next = self.h0.val();
                    self.nm_h1.d.next = self.h1.val();
                    self.nm_h2.d.next = self.h2.val();
                    self.nm_h3.d.next = self.h3.val();
                    self.nm_h4.d.next = self.h4.val();
                    self.nm_h5.d.next = self.h5.val();
                    self.nm_h6.d.next = self.h6.val();
                    self.nm_words.d.next = bit_cast::<11, 14>((self.p_len.q.val() + 9) >> 3) + 6;
                    self.nm_last_bytes.d.next = bit_cast::<4, 14>(((self.p_len.q.val() + 1) & 7) + 1);
                    self.p_state.d.next = EncParser::Idle;
                }
            }
            _ => {}
        }
        // ---- mapping lookup: offered from the cycle after the take ---------
        self.map_req_valid.next = self.mq_valid.q.val();
        self.map_req_tag.next = self.mq_tag.q.val();
        self.map_req_key.next = self.mq_key.q.val();
        self.map_req_op.next = self.c_op_lookup.val();
        self.map_req_value.next = 0.into();
        self.m_rsp.next = self.m_acc.q.val() & self.map_rsp_valid.val();
        // Give up when the cache has refused the request for
        // MAP_READY_TIMEOUT cycles, or (a cache that broke its 2-cycle
        // promise) when an accepted lookup is still unanswered at 127.
        self.m_expire.next = self.m_wait.q.val()
            & !self.m_rsp.val()
            & ((self.mq_valid.q.val()
                & !self.map_req_ready.val()
                & (self.m_timer.q.val() == self.c_map_ready_last.val()))
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
            self.cnt_map_hit.inc.next = self.map_rsp_hit.val();
            self.cnt_map_miss.inc.next = !self.map_rsp_hit.val();
        }
        if self.m_expire.val() {
            self.mq_valid.d.next = false;
            self.m_wait.d.next = false;
            self.m_acc.d.next = false;
            self.cnt_map_timeout.inc.next = true;
        }
        if self.p_take.val() {
            self.mq_valid.d.next = self.do_map.val();
            self.m_wait.d.next = self.do_map.val();
            self.m_acc.d.next = false;
            self.m_timer.d.next = 0.into();
            self.m_hit.d.next = false;
            self.mq_tag.d.next = self.cap_tenant.q.val();
            self.mq_key.d.next = self.map_key.val();
            self.cap_full.d.next = false;
            self.p_tup.d.next = self.tup.val();
            self.p_key.d.next = self.c_key.val();
            self.p_hash.d.next = 0.into();
            self.p_tenant.d.next = self.cap_tenant.q.val();
            self.p_len.d.next = self.cap_len.q.val();
            self.p_time.d.next = self.cap_time.q.val();
            self.p_pc.d.next = 0.into();
            self.p_state.d.next = EncParser::Run;
        }

        // ---- O: header words, then ring words, into a two-entry queue -----
        self.pop.next = (self.f_cnt.q.val() != 0) & self.out_ready.val();
        self.occ.next = bit_cast::<3, 2>(self.f_cnt.q.val()) + bit_cast::<3, 1>(self.s1_valid.q.val().into());
        self.space.next = (self.occ.val() < 2) | ((self.occ.val() == 2) & self.pop.val());
        self.cur_j.next = 0.into();
        self.cur_words.next = self.nm_words.q.val();
        self.cur_last_bytes.next = self.nm_last_bytes.q.val();
        if self.o_busy.q.val() {
            self.cur_j.next = self.o_j.q.val();
            self.cur_words.next = self.o_words.q.val();
            self.cur_last_bytes.next = self.o_last_bytes.q.val();
        }
        self.need_ring.next = self.cur_j.val() >= 6;
        self.issue.next = (self.o_busy.q.val() | self.nm_valid.q.val())
            & self.space.val()
            & (!self.need_ring.val() | (self.rptr.q.val() != self.wptr.q.val()));
        self.hsel.next = 0.into();
        if self.cur_j.val() == 0 {
            self.hsel.next = self.nm_h0.q.val();
        }
        if self.cur_j.val() == 1 {
            self.hsel.next = self.nm_h1.q.val();
        }
        if self.cur_j.val() == 2 {
            self.hsel.next = self.nm_h2.q.val();
        }
        if self.cur_j.val() == 3 {
            self.hsel.next = self.nm_h3.q.val();
        }
        if self.cur_j.val() == 4 {
            self.hsel.next = self.nm_h4.q.val();
        }
        if self.cur_j.val() == 5 {
            self.hsel.next = self.nm_h5.q.val();
        }
        if self.cur_j.val() == 6 {
            self.hsel.next = bit_cast::<64, 16>(self.nm_h6.q.val());
        }
        self.is_last.next = self.cur_j.val() + 1 == self.cur_words.val();
        self.ring.read_address.next = self.rptr.q.val().get_bits::<9>(0);
        self.s1_valid.d.next = self.issue.val();
        if self.issue.val() {
            self.s1_ring.d.next = self.need_ring.val();
            self.s1_merge.d.next = self.cur_j.val() == 6;
            self.s1_hdr.d.next = self.hsel.val();
            self.s1_last.d.next = self.is_last.val();
            self.s1_bytes.d.next = 8.into();
            if self.is_last.val() {
                self.s1_bytes.d.next = self.cur_last_bytes.val();
            }
            if self.need_ring.val() {
                self.rptr.d.next = self.rptr.q.val() + 1;
            }
            if self.cur_j.val() == 6 {
                // The next-header registers are free once their last bytes are taken.
                self.nm_valid.d.next = false;
            }
            self.o_busy.d.next = !self.is_last.val();
            self.o_j.d.next = self.cur_j.val() + 1;
            self.o_words.d.next = self.cur_words.val();
            self.o_last_bytes.d.next = self.cur_last_bytes.val();
        }
        self.arrive.next = self.s1_hdr.q.val();
        if self.s1_ring.q.val() {
            self.arrive.next = self.ring.read_data.val();
            if self.s1_merge.q.val() {
                self.arrive.next = (self.ring.read_data.val() & self.c_merge_mask.val()) | self.s1_hdr.q.val();
            }
        }
        self.keep_n.next = self.f_cnt.q.val() - bit_cast::<2, 1>(self.pop.val().into());
        if self.pop.val() {
            self.f0_data.d.next = self.f1_data.q.val();
            self.f0_bytes.d.next = self.f1_bytes.q.val();
            self.f0_last.d.next = self.f1_last.q.val();
            self.cnt_frames.inc.next = self.f0_last.q.val();
        }
        self.push_at1.next = self.keep_n.val() != 0;
        self.f_cnt.d.next = self.keep_n.val() + bit_cast::<2, 1>(self.s1_valid.q.val().into());
        if self.s1_valid.q.val() {
            if self.push_at1.val() {
                self.f1_data.d.next = self.arrive.val();
                self.f1_bytes.d.next = self.s1_bytes.q.val();
                self.f1_last.d.next = self.s1_last.q.val();
            } else {
                self.f0_data.d.next = self.arrive.val();
                self.f0_bytes.d.next = self.s1_bytes.q.val();
                self.f0_last.d.next = self.s1_last.q.val();
            }
        }
        self.out_valid.next = self.f_cnt.q.val() != 0;
        self.out_data.next = self.f0_data.q.val();
        self.out_bytes.next = self.f0_bytes.q.val();
        self.out_last.next = self.f0_last.q.val();

        // ---- flow-table clear after reset, and reset ------------------------
        if self.clearing.q.val() {
            self.flows.write_address.next = self.clear_idx.q.val();
            self.flows.write_data.next = 0.into();
            self.flows.write_enable.next = true;
            self.clear_idx.d.next = self.clear_idx.q.val() + 1;
            if self.clear_idx.q.val().all() {
                self.clearing.d.next = false;
            }
        }
        if self.reset.val() {
            self.now.d.next = 0.into();
            self.clearing.d.next = true;
            self.clear_idx.d.next = 0.into();
            self.tenant_enable.d.next = 0.into();
            self.w_state.d.next = EncWriter::Idle;
            self.wptr.d.next = 0.into();
            self.rptr.d.next = 0.into();
            self.cap_full.d.next = false;
            self.p_state.d.next = EncParser::Idle;
            self.map_en.d.next = 0.into();
            self.mq_valid.d.next = false;
            self.m_wait.d.next = false;
            self.m_acc.d.next = false;
            self.nm_valid.d.next = false;
            self.o_busy.d.next = false;
            self.s1_valid.d.next = false;
            self.f_cnt.d.next = 0.into();
        }
    }
}
