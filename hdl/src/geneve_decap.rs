//! Geneve decapsulation: the card's receive pipeline. Packets from the
//! network port (Geneve over UDP over IPv4 over Ethernet) are checked,
//! stripped of their outer headers and options, mapped by VNI to a tenant
//! and a card-to-host DMA queue, and handed to the DMA engine as inner
//! Ethernet frames. See docs/decap.md.
//!
//! Store-and-forward: some checks (the packet's real length against the IP
//! and UDP lengths) are only possible at the end, so every frame goes into a
//! circular buffer in RAM and only becomes visible to the output side when
//! it is committed; a bad frame is rolled back. The input never waits
//! (`in_ready` is high except in reset): a frame that does not fit is dropped
//! and counted, so only validated frames ever leave.
//!
//! Input side: header fields are captured from fixed beats (the outer
//! headers are at fixed offsets; only the options vary), the IPv4 header
//! checksum is summed as its beats pass, and the beats from the one holding
//! the first inner byte to the one holding the last (Ethernet padding after
//! the IPv4 total length is not stored) are written as they come. The
//! inner frame starts at byte 50 + 4 * Opt Len, i.e. at byte 2 or 6 of a
//! beat: the output side realigns with two fixed shifts. In the three
//! cycles after a packet's last beat it is judged (checks in
//! `offcard_net::geneve` order; the checks, the choice of counter, the
//! commit are a stage apart), counted under exactly one counter, and either
//! committed with a header word (length, tenant, queue, alignment) written
//! in front of its data, or rolled back. The next packet's first six beats
//! are all outer header, so this judgement never competes with its data
//! writes.
//!
//! Output side: reads the header word, then the data words (one per cycle),
//! joining each with the previous one; the RAM is read again when the
//! output is stalled, so the buffer holds every word until it has left.

use crate::regfile::EventCounter;
use crate::regmap::decap;
use crate::{dw_index, konst};
use crate::bus::RegBusTarget;
use rust_hdl::prelude::*;
use smart_default::SmartDefault;

const VNI_ENTRIES: usize = decap::VNI_ENTRIES as usize;

#[derive(LogicBlock, SmartDefault)]
pub struct GeneveDecap {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    /// Packets from the network port (byte i of a beat in bits 8i+7:8i).
    pub in_data: Signal<In, Bits<64>>,
    /// Valid bytes of this beat, 1..8; only the last beat may have fewer than 8.
    pub in_bytes: Signal<In, Bits<4>>,
    pub in_last: Signal<In, Bit>,
    pub in_valid: Signal<In, Bit>,
    /// High except in reset: the network port is never back-pressured.
    pub in_ready: Signal<Out, Bit>,
    /// Inner frames to the DMA engine.
    pub out_data: Signal<Out, Bits<64>>,
    pub out_bytes: Signal<Out, Bits<4>>,
    pub out_last: Signal<Out, Bit>,
    pub out_valid: Signal<Out, Bit>,
    pub out_ready: Signal<In, Bit>,
    /// Sideband, valid with every beat of a frame (so on its first).
    pub out_tenant: Signal<Out, Bits<4>>,
    pub out_queue: Signal<Out, Bits<2>>,
    pub out_len: Signal<Out, Bits<14>>,
    /// BAR0 register port (see regfile.rs / dma.rs).
    pub bar: RegBusTarget,
    /// Frame buffer: 2048 words of 8 bytes, circular; a header word then the data words of each frame.
    fbuf: RAM<Bits<64>, 11>,
    cnt_frames: EventCounter,
    cnt_trunc: EventCounter,
    cnt_not_ipv4: EventCounter,
    cnt_bad_ip: EventCounter,
    cnt_bad_ck: EventCounter,
    cnt_not_geneve: EventCounter,
    cnt_bad_len: EventCounter,
    cnt_bad_geneve: EventCounter,
    cnt_too_long: EventCounter,
    cnt_unknown_vni: EventCounter,
    cnt_no_space: EventCounter,
    cnt_bytes: DFF<Bits<32>>,
    /// VNI table: valid (31), queue (29:28), tenant (27:24), VNI (23:0).
    vte: [DFF<Bits<32>>; VNI_ENTRIES],
    /// Beat index in the current packet (saturates).
    pos: DFF<Bits<14>>,
    /// A partial or empty beat before the last was seen (broken framing).
    ferr: DFF<Bit>,
    /// A data word of this packet did not fit: no further writes.
    nospace: DFF<Bit>,
    ethertype: DFF<Bits<16>>,
    /// IPv4 version and IHL byte.
    ipvh: DFF<Bits<8>>,
    /// Sum of the IPv4 header's 16-bit words, folded at the end.
    csum: DFF<Bits<20>>,
    /// IPv4 total length.
    total: DFF<Bits<16>>,
    proto: DFF<Bits<8>>,
    dport: DFF<Bits<16>>,
    udplen: DFF<Bits<16>>,
    /// Geneve version (7:6) and option length in words (5:0).
    g0: DFF<Bits<8>>,
    gproto: DFF<Bits<16>>,
    vni_hi: DFF<Bits<16>>,
    vni_lo: DFF<Bits<8>>,
    /// First beat holding inner-frame bytes.
    b0: DFF<Bits<14>>,
    /// Beat holding the last inner-frame byte.
    ebeat: DFF<Bits<14>>,
    /// The inner frame starts at byte 2 of its first beat (else byte 6).
    s2: DFF<Bit>,
    /// Next data word address (12 bits: one more than the RAM's, so full and empty differ).
    wp: DFF<Bits<12>>,
    /// End of the committed frames; the header slot of the frame being written.
    commit: DFF<Bits<12>>,
    /// The packet whose last beat came in the previous cycle is judged now.
    fin: DFF<Bit>,
    /// Its length in bytes.
    fin_plen: DFF<Bits<17>>,
    fin_ferr: DFF<Bit>,
    fin_nospace: DFF<Bit>,
    /// Address of the word on the RAM's read port (if rv), or of the next to fetch.
    cur: DFF<Bits<12>>,
    /// The RAM's read data is the word at `cur`.
    rv: DFF<Bit>,
    /// 0: expecting a header word, 1: data words, 2: the last beat from `hold` alone.
    rstate: DFF<Bits<2>>,
    r_len: DFF<Bits<14>>,
    r_s2: DFF<Bit>,
    r_lastbytes: DFF<Bits<4>>,
    r_tenant: DFF<Bits<4>>,
    r_queue: DFF<Bits<2>>,
    /// The frame's last beat needs no further word (comes from `hold`).
    r_tail: DFF<Bit>,
    /// Index of the frame's last data word.
    r_lastj: DFF<Bits<12>>,
    /// Index of the data word expected next.
    r_j: DFF<Bits<12>>,
    /// The previous data word (realignment).
    hold: DFF<Bits<64>>,
    o_valid: DFF<Bit>,
    o_data: DFF<Bits<64>>,
    o_bytes: DFF<Bits<4>>,
    o_last: DFF<Bit>,
    o_tenant: DFF<Bits<4>>,
    o_queue: DFF<Bits<2>>,
    o_len: DFF<Bits<14>>,
    fire: Signal<Local, Bit>,
    sw0: Signal<Local, Bits<16>>,
    sw1: Signal<Local, Bits<16>>,
    sw2: Signal<Local, Bits<16>>,
    sw3: Signal<Local, Bits<16>>,
    beat_sum: Signal<Local, Bits<20>>,
    bad_beat: Signal<Local, Bit>,
    plen_now: Signal<Local, Bits<17>>,
    used: Signal<Local, Bits<12>>,
    room: Signal<Local, Bit>,
    in_region: Signal<Local, Bit>,
    do_write: Signal<Local, Bit>,
    no_room_now: Signal<Local, Bit>,
    ferr_acc: Signal<Local, Bit>,
    nsp_acc: Signal<Local, Bit>,
    ebeat_now: Signal<Local, Bits<17>>,
    opt_now: Signal<Local, Bits<17>>,
    b0_now: Signal<Local, Bits<17>>,
    ck1: Signal<Local, Bits<20>>,
    ck2: Signal<Local, Bits<20>>,
    total17: Signal<Local, Bits<17>>,
    t14: Signal<Local, Bits<17>>,
    u20: Signal<Local, Bits<17>>,
    opt4: Signal<Local, Bits<17>>,
    g64: Signal<Local, Bits<17>>,
    inner_len: Signal<Local, Bits<17>>,
    lm1: Signal<Local, Bits<17>>,
    lastbytes: Signal<Local, Bits<4>>,
    nwords: Signal<Local, Bits<12>>,
    mbeats: Signal<Local, Bits<17>>,
    tail: Signal<Local, Bit>,
    vni_f: Signal<Local, Bits<24>>,
    m_tenant: Signal<Local, Bits<4>>,
    m_queue: Signal<Local, Bits<2>>,
    pass_now: Signal<Local, Bit>,
    vhit_now: Signal<Local, Bits<16>>,
    vfirst: Signal<Local, Bits<16>>,
    // J1 flops: the checks (true = failed), the VNI entries that match, the inner length.
    c_trunc: DFF<Bit>,
    c_not_ipv4: DFF<Bit>,
    c_bad_ip: DFF<Bit>,
    c_bad_ck: DFF<Bit>,
    c_not_geneve: DFF<Bit>,
    c_bad_len: DFF<Bit>,
    c_bad_geneve: DFF<Bit>,
    c_too_long: DFF<Bit>,
    c_no_space: DFF<Bit>,
    vhit: DFF<Bits<16>>,
    j_len: DFF<Bits<17>>,
    /// The packet judged in J1 last cycle is in J2.
    j2: DFF<Bit>,
    // J2 flops: commit (with this header word and length) or roll back in J3.
    h_commit: DFF<Bit>,
    h_roll: DFF<Bit>,
    h_word: DFF<Bits<64>>,
    h_len: DFF<Bits<17>>,
    o_free: Signal<Local, Bit>,
    consume: Signal<Local, Bit>,
    load: Signal<Local, Bit>,
    ld_data: Signal<Local, Bits<64>>,
    ld_last: Signal<Local, Bit>,
    comb: Signal<Local, Bits<64>>,
    tailw: Signal<Local, Bits<64>>,
    mask_sh: Signal<Local, Bits<8>>,
    lastmask: Signal<Local, Bits<64>>,
    target: Signal<Local, Bits<12>>,
    rd: Signal<Local, Bits<32>>,
    merged: Signal<Local, Bits<32>>,
    tbl_sel: Signal<Local, Bit>,
    tbl_idx: Signal<Local, Bits<4>>,
    tbl_rd: Signal<Local, Bits<32>>,
    #[default(konst(decap::ETHERTYPE_IPV4.into()))]
    k_ethertype_ipv4: Constant<Bits<16>>,
    #[default(konst(decap::GENEVE_PORT.into()))]
    k_geneve_port: Constant<Bits<16>>,
    #[default(konst(decap::PROTO_ETHERNET.into()))]
    k_proto_ethernet: Constant<Bits<16>>,
    #[default(konst(decap::OUTER_LEN.into()))]
    k_outer_len: Constant<Bits<17>>,
    #[default(konst(decap::MAX_FRAME_LEN.into()))]
    k_max_frame: Constant<Bits<17>>,
    #[default(konst(decap::BUF_BYTES.into()))]
    k_buf_bytes: Constant<Bits<32>>,
    #[default(konst(decap::MAX_FRAME_LEN.into()))]
    k_max_frame32: Constant<Bits<32>>,
    #[default(konst((decap::VNI_VALID | (3 << decap::VNI_QUEUE_SHIFT) | (0xF << decap::VNI_TENANT_SHIFT) | decap::VNI_MASK).into()))]
    k_vni_wmask: Constant<Bits<32>>,
    #[default(konst(u64::MAX))]
    k_ones: Constant<Bits<64>>,
    #[default(konst(8))]
    k_eight: Constant<Bits<8>>,
    #[default(dw_index(decap::INFO_MAX_FRAME))]
    a_max_frame: Constant<Bits<14>>,
    #[default(dw_index(decap::BUF_SIZE))]
    a_buf_size: Constant<Bits<14>>,
    #[default(dw_index(decap::BUF_USED))]
    a_buf_used: Constant<Bits<14>>,
    #[default(dw_index(decap::CNT_BYTES))]
    a_cnt_bytes: Constant<Bits<14>>,
    #[default(dw_index(decap::VNI_TABLE))]
    a_vni_table: Constant<Bits<14>>,
    #[default(dw_index(decap::VNI_TABLE + 4 * decap::VNI_ENTRIES))]
    a_vni_end: Constant<Bits<14>>,
    #[default(dw_index(decap::CNT_FRAMES))]
    a_cnt_frames: Constant<Bits<14>>,
    #[default(dw_index(decap::CNT_DROP_TRUNCATED))]
    a_cnt_trunc: Constant<Bits<14>>,
    #[default(dw_index(decap::CNT_DROP_NOT_IPV4))]
    a_cnt_not_ipv4: Constant<Bits<14>>,
    #[default(dw_index(decap::CNT_DROP_BAD_IP_HEADER))]
    a_cnt_bad_ip: Constant<Bits<14>>,
    #[default(dw_index(decap::CNT_DROP_BAD_CHECKSUM))]
    a_cnt_bad_ck: Constant<Bits<14>>,
    #[default(dw_index(decap::CNT_DROP_NOT_GENEVE))]
    a_cnt_not_geneve: Constant<Bits<14>>,
    #[default(dw_index(decap::CNT_DROP_BAD_LENGTH))]
    a_cnt_bad_len: Constant<Bits<14>>,
    #[default(dw_index(decap::CNT_DROP_BAD_GENEVE))]
    a_cnt_bad_geneve: Constant<Bits<14>>,
    #[default(dw_index(decap::CNT_DROP_TOO_LONG))]
    a_cnt_too_long: Constant<Bits<14>>,
    #[default(dw_index(decap::CNT_DROP_UNKNOWN_VNI))]
    a_cnt_unknown_vni: Constant<Bits<14>>,
    #[default(dw_index(decap::CNT_DROP_NO_SPACE))]
    a_cnt_no_space: Constant<Bits<14>>,
}

impl Logic for GeneveDecap {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            cnt_bytes,
            pos,
            ferr,
            nospace,
            ethertype,
            ipvh,
            csum,
            total,
            proto,
            dport,
            udplen,
            g0,
            gproto,
            vni_hi,
            vni_lo,
            b0,
            ebeat,
            s2,
            wp,
            commit,
            fin,
            fin_plen,
            fin_ferr,
            fin_nospace,
            c_trunc,
            c_not_ipv4,
            c_bad_ip,
            c_bad_ck,
            c_not_geneve,
            c_bad_len,
            c_bad_geneve,
            c_too_long,
            c_no_space,
            vhit,
            j_len,
            j2,
            h_commit,
            h_roll,
            h_word,
            h_len,
            cur,
            rv,
            rstate,
            r_len,
            r_s2,
            r_lastbytes,
            r_tenant,
            r_queue,
            r_tail,
            r_lastj,
            r_j,
            hold,
            o_valid,
            o_data,
            o_bytes,
            o_last,
            o_tenant,
            o_queue,
            o_len
        );
        clock!(
            self,
            clock,
            cnt_frames,
            cnt_trunc,
            cnt_not_ipv4,
            cnt_bad_ip,
            cnt_bad_ck,
            cnt_not_geneve,
            cnt_bad_len,
            cnt_bad_geneve,
            cnt_too_long,
            cnt_unknown_vni,
            cnt_no_space
        );
        self.cnt_frames.reset.next = self.reset.val();
        self.cnt_frames.inc.next = false;
        self.cnt_frames.clear.next = false;
        self.cnt_trunc.reset.next = self.reset.val();
        self.cnt_trunc.inc.next = false;
        self.cnt_trunc.clear.next = false;
        self.cnt_not_ipv4.reset.next = self.reset.val();
        self.cnt_not_ipv4.inc.next = false;
        self.cnt_not_ipv4.clear.next = false;
        self.cnt_bad_ip.reset.next = self.reset.val();
        self.cnt_bad_ip.inc.next = false;
        self.cnt_bad_ip.clear.next = false;
        self.cnt_bad_ck.reset.next = self.reset.val();
        self.cnt_bad_ck.inc.next = false;
        self.cnt_bad_ck.clear.next = false;
        self.cnt_not_geneve.reset.next = self.reset.val();
        self.cnt_not_geneve.inc.next = false;
        self.cnt_not_geneve.clear.next = false;
        self.cnt_bad_len.reset.next = self.reset.val();
        self.cnt_bad_len.inc.next = false;
        self.cnt_bad_len.clear.next = false;
        self.cnt_bad_geneve.reset.next = self.reset.val();
        self.cnt_bad_geneve.inc.next = false;
        self.cnt_bad_geneve.clear.next = false;
        self.cnt_too_long.reset.next = self.reset.val();
        self.cnt_too_long.inc.next = false;
        self.cnt_too_long.clear.next = false;
        self.cnt_unknown_vni.reset.next = self.reset.val();
        self.cnt_unknown_vni.inc.next = false;
        self.cnt_unknown_vni.clear.next = false;
        self.cnt_no_space.reset.next = self.reset.val();
        self.cnt_no_space.inc.next = false;
        self.cnt_no_space.clear.next = false;
        self.fbuf.read_clock.next = self.clock.val();
        self.fbuf.write_clock.next = self.clock.val();
        for i in 0..VNI_ENTRIES {
            self.vte[i].clock.next = self.clock.val();
            self.vte[i].d.next = self.vte[i].q.val();
        }

        // ================= input side =================
        self.in_ready.next = !self.reset.val();
        self.fire.next = self.in_valid.val() & !self.reset.val();
        // The beat's four big-endian 16-bit words (IPv4 checksum, fields).
        self.sw0.next = (bit_cast::<16, 8>(self.in_data.val().get_bits::<8>(0)) << 8)
            | bit_cast::<16, 8>(self.in_data.val().get_bits::<8>(8));
        self.sw1.next = (bit_cast::<16, 8>(self.in_data.val().get_bits::<8>(16)) << 8)
            | bit_cast::<16, 8>(self.in_data.val().get_bits::<8>(24));
        self.sw2.next = (bit_cast::<16, 8>(self.in_data.val().get_bits::<8>(32)) << 8)
            | bit_cast::<16, 8>(self.in_data.val().get_bits::<8>(40));
        self.sw3.next = (bit_cast::<16, 8>(self.in_data.val().get_bits::<8>(48)) << 8)
            | bit_cast::<16, 8>(self.in_data.val().get_bits::<8>(56));
        self.beat_sum.next = bit_cast::<20, 16>(self.sw0.val())
            + bit_cast::<20, 16>(self.sw1.val())
            + bit_cast::<20, 16>(self.sw2.val())
            + bit_cast::<20, 16>(self.sw3.val());
        // Broken framing: an empty or oversized beat, or a partial one before the last.
        self.bad_beat.next =
            (self.in_bytes.val() == 0) | (self.in_bytes.val() > 8) | (!self.in_last.val() & (self.in_bytes.val() != 8));
        self.plen_now.next = (bit_cast::<17, 14>(self.pos.q.val()) << 3) + bit_cast::<17, 4>(self.in_bytes.val());
        // Words in use from the oldest word the output side still needs; a
        // write needs used < 2048 (a 12-bit pointer difference).
        self.used.next = self.wp.q.val() - self.cur.q.val();
        self.room.next = !self.used.val().get_bit(11);
        // Beats 0..5 are outer headers whatever the fields say.
        self.in_region.next =
            (self.pos.q.val() >= 6) & (self.pos.q.val() >= self.b0.q.val()) & (self.pos.q.val() <= self.ebeat.q.val());
        self.do_write.next = self.fire.val() & self.in_region.val() & !self.nospace.q.val() & self.room.val();
        self.no_room_now.next = self.fire.val() & self.in_region.val() & !self.room.val();
        self.ferr_acc.next = self.ferr.q.val() | self.bad_beat.val();
        self.nsp_acc.next = self.nospace.q.val() | self.no_room_now.val();
        self.ebeat_now.next = (bit_cast::<17, 16>(self.sw0.val()) + 13) >> 3;
        self.opt_now.next = bit_cast::<17, 6>(self.in_data.val().get_bits::<6>(16)) << 2;
        self.b0_now.next = (self.opt_now.val() + self.k_outer_len.val()) >> 3;

        self.fin.d.next = self.fire.val() & self.in_last.val();
        if self.fire.val() {
            if self.in_last.val() {
                self.pos.d.next = 0.into();
                self.ferr.d.next = false;
                self.nospace.d.next = false;
                self.fin_plen.d.next = self.plen_now.val();
                self.fin_ferr.d.next = self.ferr_acc.val();
                self.fin_nospace.d.next = self.nsp_acc.val();
            } else {
                if !self.pos.q.val().all() {
                    self.pos.d.next = self.pos.q.val() + 1;
                }
                self.ferr.d.next = self.ferr_acc.val();
                self.nospace.d.next = self.nsp_acc.val();
            }
            // Field captures: byte i of the packet is lane i % 8 of beat i / 8.
            if self.pos.q.val() == 1 {
                self.ethertype.d.next = self.sw2.val(); // bytes 12-13
                self.ipvh.d.next = self.in_data.val().get_bits::<8>(48); // byte 14
                self.csum.d.next = bit_cast::<20, 16>(self.sw3.val()); // bytes 14-15
            }
            if self.pos.q.val() == 2 {
                self.total.d.next = self.sw0.val(); // bytes 16-17
                self.proto.d.next = self.in_data.val().get_bits::<8>(56); // byte 23
                self.csum.d.next = self.csum.q.val() + self.beat_sum.val();
                self.ebeat.d.next = self.ebeat_now.val().get_bits::<14>(0);
            }
            if self.pos.q.val() == 3 {
                self.csum.d.next = self.csum.q.val() + self.beat_sum.val(); // bytes 24-31
            }
            if self.pos.q.val() == 4 {
                self.csum.d.next = self.csum.q.val() + bit_cast::<20, 16>(self.sw0.val()); // bytes 32-33
                self.dport.d.next = self.sw2.val(); // bytes 36-37
                self.udplen.d.next = self.sw3.val(); // bytes 38-39
            }
            if self.pos.q.val() == 5 {
                self.g0.d.next = self.in_data.val().get_bits::<8>(16); // byte 42
                self.gproto.d.next = self.sw2.val(); // bytes 44-45
                self.vni_hi.d.next = self.sw3.val(); // bytes 46-47
                self.b0.d.next = self.b0_now.val().get_bits::<14>(0);
                // 50 + 4 * Opt Len is 2 mod 8 for an even Opt Len, 6 for an odd one.
                self.s2.d.next = !self.in_data.val().get_bit(16);
            }
            if self.pos.q.val() == 6 {
                self.vni_lo.d.next = self.in_data.val().get_bits::<8>(0); // byte 48
            }
        }

        // ================= judgement, in three stages after the last beat =================
        // J1 (`fin`, the cycle after the last beat): the checks, each into a
        // flop. J2 (`j2`): the first failing check picks the counter, the
        // header word is built. J3 (`j3`): the header word is written and the
        // frame committed, or it is rolled back. Timing: the length adders,
        // the VNI compares, the reason priority and the frame buffer's write
        // port are a stage apart (they were one 15 ns path in the whole
        // card). The next packet's first six beats are outer header, so J3
        // (two cycles after the last beat) still never competes with its data
        // writes, and J1 reads the captured fields before its beat 1 can
        // overwrite them.
        self.ck1.next = bit_cast::<20, 16>(self.csum.q.val().get_bits::<16>(0)) + (self.csum.q.val() >> 16);
        self.ck2.next = bit_cast::<20, 16>(self.ck1.val().get_bits::<16>(0)) + (self.ck1.val() >> 16);
        self.total17.next = bit_cast::<17, 16>(self.total.q.val());
        self.t14.next = self.total17.val() + 14;
        self.u20.next = bit_cast::<17, 16>(self.udplen.q.val()) + 20;
        self.opt4.next = bit_cast::<17, 6>(self.g0.q.val().get_bits::<6>(0)) << 2;
        // Outer headers, options and at least an inner Ethernet header.
        self.g64.next = self.opt4.val() + self.k_outer_len.val() + 14;
        self.inner_len.next = self.t14.val() - self.k_outer_len.val() - self.opt4.val();
        self.vni_f.next = (bit_cast::<24, 16>(self.vni_hi.q.val()) << 8) | bit_cast::<24, 8>(self.vni_lo.q.val());
        // Which entries match (the lowest index wins, in J2).
        self.vhit_now.next = 0.into();
        for i in 0..VNI_ENTRIES {
            self.vhit_now.next = self.vhit_now.val().replace_bit(
                i,
                self.vte[i].q.val().get_bit(31) & (self.vte[i].q.val().get_bits::<24>(0) == self.vni_f.val()),
            );
        }
        self.vhit.d.next = self.vhit_now.val();
        self.c_trunc.d.next = self.fin_ferr.q.val() | (self.fin_plen.q.val() < self.k_outer_len.val());
        self.c_not_ipv4.d.next = self.ethertype.q.val() != self.k_ethertype_ipv4.val();
        self.c_bad_ip.d.next = self.ipvh.q.val() != 0x45;
        self.c_bad_ck.d.next = self.ck2.val() != 0xFFFF;
        self.c_not_geneve.d.next = (self.proto.q.val() != 17) | (self.dport.q.val() != self.k_geneve_port.val());
        self.c_bad_len.d.next = (self.t14.val() > self.fin_plen.q.val())
            | (self.u20.val() != self.total17.val())
            | (self.udplen.q.val() < 16);
        self.c_bad_geneve.d.next = (self.g0.q.val().get_bits::<2>(6) != 0)
            | (self.gproto.q.val() != self.k_proto_ethernet.val())
            | (self.g64.val() > self.t14.val());
        self.c_too_long.d.next = self.inner_len.val() > self.k_max_frame.val();
        self.c_no_space.d.next = self.fin_nospace.q.val();
        self.j_len.d.next = self.inner_len.val();
        self.j2.d.next = self.fin.q.val();

        // J2: one counter per packet, the first failing check's.
        self.lm1.next = self.j_len.q.val() - 1;
        self.lastbytes.next = bit_cast::<4, 3>(self.lm1.val().get_bits::<3>(0)) + 1;
        // The lowest matching entry alone (x & -x).
        self.vfirst.next = self.vhit.q.val() & (!self.vhit.q.val() + 1);
        self.m_tenant.next = 0.into();
        self.m_queue.next = 0.into();
        for i in 0..VNI_ENTRIES {
            if self.vfirst.val().get_bit(i) {
                self.m_tenant.next = self.vte[i].q.val().get_bits::<4>(24);
                self.m_queue.next = self.vte[i].q.val().get_bits::<2>(28);
            }
        }
        self.pass_now.next = false;
        if self.j2.q.val() {
            if self.c_trunc.q.val() {
                self.cnt_trunc.inc.next = true;
            } else if self.c_not_ipv4.q.val() {
                self.cnt_not_ipv4.inc.next = true;
            } else if self.c_bad_ip.q.val() {
                self.cnt_bad_ip.inc.next = true;
            } else if self.c_bad_ck.q.val() {
                self.cnt_bad_ck.inc.next = true;
            } else if self.c_not_geneve.q.val() {
                self.cnt_not_geneve.inc.next = true;
            } else if self.c_bad_len.q.val() {
                self.cnt_bad_len.inc.next = true;
            } else if self.c_bad_geneve.q.val() {
                self.cnt_bad_geneve.inc.next = true;
            } else if self.c_too_long.q.val() {
                self.cnt_too_long.inc.next = true;
            } else if !self.vhit.q.val().any() {
                self.cnt_unknown_vni.inc.next = true;
            } else if self.c_no_space.q.val() {
                self.cnt_no_space.inc.next = true;
            } else {
                self.pass_now.next = true;
                self.cnt_frames.inc.next = true;
            }
        }
        self.h_commit.d.next = self.pass_now.val();
        self.h_roll.d.next = self.j2.q.val() & !self.pass_now.val();
        self.h_len.d.next = self.j_len.q.val();
        // Data words are wp - commit - 1 (the first slot is the header); no
        // data word is written between the last beat and J3.
        self.nwords.next = self.wp.q.val() - self.commit.q.val() - 1;
        self.mbeats.next = (self.j_len.q.val() + 7) >> 3;
        self.tail.next = bit_cast::<17, 12>(self.nwords.val()) == self.mbeats.val();
        self.h_word.d.next = bit_cast::<64, 14>(self.j_len.q.val().get_bits::<14>(0))
            | (bit_cast::<64, 1>(self.s2.q.val().into()) << 16)
            | (bit_cast::<64, 4>(self.lastbytes.val()) << 20)
            | (bit_cast::<64, 4>(self.m_tenant.val()) << 24)
            | (bit_cast::<64, 2>(self.m_queue.val()) << 28)
            | (bit_cast::<64, 1>(self.tail.val().into()) << 30)
            | (bit_cast::<64, 12>(self.nwords.val() - 1) << 32);

        // J3. One RAM write port: data beats (pos >= 6) and the header write
        // (two cycles after a last beat, pos <= 2) never coincide.
        self.fbuf.write_enable.next = self.do_write.val() | self.h_commit.q.val();
        self.fbuf.write_address.next = self.wp.q.val().get_bits::<11>(0);
        self.fbuf.write_data.next = self.in_data.val();
        if self.do_write.val() {
            self.wp.d.next = self.wp.q.val() + 1;
        }
        if self.h_commit.q.val() {
            self.fbuf.write_address.next = self.commit.q.val().get_bits::<11>(0);
            self.fbuf.write_data.next = self.h_word.q.val();
            self.commit.d.next = self.wp.q.val();
            self.wp.d.next = self.wp.q.val() + 1;
            self.cnt_bytes.d.next = self.cnt_bytes.q.val() + bit_cast::<32, 17>(self.h_len.q.val());
        }
        if self.h_roll.q.val() {
            // Roll back: the next frame reuses this one's slots.
            self.wp.d.next = self.commit.q.val() + 1;
        }

        // ================= output side =================
        self.o_free.next = !self.o_valid.q.val() | self.out_ready.val();
        self.comb.next = (self.hold.q.val() >> 48) | (self.fbuf.read_data.val() << 16);
        self.tailw.next = self.hold.q.val() >> 48;
        if self.r_s2.q.val() {
            self.comb.next = (self.hold.q.val() >> 16) | (self.fbuf.read_data.val() << 48);
            self.tailw.next = self.hold.q.val() >> 16;
        }
        self.mask_sh.next = (self.k_eight.val() - bit_cast::<8, 4>(self.r_lastbytes.q.val())) << 3;
        self.lastmask.next = self.k_ones.val() >> self.mask_sh.val();
        self.consume.next = false;
        self.load.next = false;
        self.ld_data.next = self.comb.val();
        self.ld_last.next = false;
        if self.rstate.q.val() == 0 {
            if self.rv.q.val() {
                self.consume.next = true;
                self.r_len.d.next = self.fbuf.read_data.val().get_bits::<14>(0);
                self.r_s2.d.next = self.fbuf.read_data.val().get_bit(16);
                self.r_lastbytes.d.next = self.fbuf.read_data.val().get_bits::<4>(20);
                self.r_tenant.d.next = self.fbuf.read_data.val().get_bits::<4>(24);
                self.r_queue.d.next = self.fbuf.read_data.val().get_bits::<2>(28);
                self.r_tail.d.next = self.fbuf.read_data.val().get_bit(30);
                self.r_lastj.d.next = self.fbuf.read_data.val().get_bits::<12>(32);
                self.r_j.d.next = 0.into();
                self.rstate.d.next = 1.into();
            }
        } else if self.rstate.q.val() == 1 {
            if self.rv.q.val() {
                if self.r_j.q.val() == 0 {
                    self.consume.next = true;
                    self.hold.d.next = self.fbuf.read_data.val();
                    self.r_j.d.next = 1.into();
                } else if self.o_free.val() {
                    self.consume.next = true;
                    self.load.next = true;
                    self.ld_last.next = (self.r_j.q.val() == self.r_lastj.q.val()) & !self.r_tail.q.val();
                    self.hold.d.next = self.fbuf.read_data.val();
                    self.r_j.d.next = self.r_j.q.val() + 1;
                    if self.r_j.q.val() == self.r_lastj.q.val() {
                        if self.r_tail.q.val() {
                            self.rstate.d.next = 2.into();
                        } else {
                            self.rstate.d.next = 0.into();
                        }
                    }
                }
            }
        } else {
            if self.o_free.val() {
                self.load.next = true;
                self.ld_data.next = self.tailw.val();
                self.ld_last.next = true;
                self.rstate.d.next = 0.into();
            }
        }
        if self.o_free.val() {
            self.o_valid.d.next = self.load.val();
        }
        if self.load.val() {
            self.o_data.d.next = self.ld_data.val();
            self.o_bytes.d.next = 8.into();
            if self.ld_last.val() {
                self.o_data.d.next = self.ld_data.val() & self.lastmask.val();
                self.o_bytes.d.next = self.r_lastbytes.q.val();
            }
            self.o_last.d.next = self.ld_last.val();
            self.o_tenant.d.next = self.r_tenant.q.val();
            self.o_queue.d.next = self.r_queue.q.val();
            self.o_len.d.next = self.r_len.q.val();
        }
        // Fetch the next word once this one is used, else read it again.
        self.target.next = self.cur.q.val() + bit_cast::<12, 1>(self.consume.val().into());
        self.fbuf.read_address.next = self.target.val().get_bits::<11>(0);
        self.cur.d.next = self.target.val();
        self.rv.d.next = self.target.val() != self.commit.q.val();
        self.out_valid.next = self.o_valid.q.val();
        self.out_data.next = self.o_data.q.val();
        self.out_bytes.next = self.o_bytes.q.val();
        self.out_last.next = self.o_last.q.val();
        self.out_tenant.next = self.o_tenant.q.val();
        self.out_queue.next = self.o_queue.q.val();
        self.out_len.next = self.o_len.q.val();

        // ================= registers =================
        self.tbl_sel.next =
            (self.bar.addr.val() >= self.a_vni_table.val()) & (self.bar.addr.val() < self.a_vni_end.val());
        self.tbl_idx.next = self.bar.addr.val().get_bits::<4>(0);
        self.tbl_rd.next = 0.into();
        for i in 0..VNI_ENTRIES {
            if self.tbl_idx.val().index() == i {
                self.tbl_rd.next = self.vte[i].q.val();
            }
        }
        self.rd.next = 0.into();
        if self.bar.addr.val() == self.a_max_frame.val() {
            self.rd.next = self.k_max_frame32.val();
        } else if self.bar.addr.val() == self.a_buf_size.val() {
            self.rd.next = self.k_buf_bytes.val();
        } else if self.bar.addr.val() == self.a_buf_used.val() {
            self.rd.next = bit_cast::<32, 12>(self.commit.q.val() - self.cur.q.val()) << 3;
        } else if self.bar.addr.val() == self.a_cnt_bytes.val() {
            self.rd.next = self.cnt_bytes.q.val();
        } else if self.bar.addr.val() == self.a_cnt_frames.val() {
            self.rd.next = self.cnt_frames.count.val();
        } else if self.bar.addr.val() == self.a_cnt_trunc.val() {
            self.rd.next = self.cnt_trunc.count.val();
        } else if self.bar.addr.val() == self.a_cnt_not_ipv4.val() {
            self.rd.next = self.cnt_not_ipv4.count.val();
        } else if self.bar.addr.val() == self.a_cnt_bad_ip.val() {
            self.rd.next = self.cnt_bad_ip.count.val();
        } else if self.bar.addr.val() == self.a_cnt_bad_ck.val() {
            self.rd.next = self.cnt_bad_ck.count.val();
        } else if self.bar.addr.val() == self.a_cnt_not_geneve.val() {
            self.rd.next = self.cnt_not_geneve.count.val();
        } else if self.bar.addr.val() == self.a_cnt_bad_len.val() {
            self.rd.next = self.cnt_bad_len.count.val();
        } else if self.bar.addr.val() == self.a_cnt_bad_geneve.val() {
            self.rd.next = self.cnt_bad_geneve.count.val();
        } else if self.bar.addr.val() == self.a_cnt_too_long.val() {
            self.rd.next = self.cnt_too_long.count.val();
        } else if self.bar.addr.val() == self.a_cnt_unknown_vni.val() {
            self.rd.next = self.cnt_unknown_vni.count.val();
        } else if self.bar.addr.val() == self.a_cnt_no_space.val() {
            self.rd.next = self.cnt_no_space.count.val();
        } else if self.tbl_sel.val() {
            self.rd.next = self.tbl_rd.val();
        }
        self.bar.rd_data.next = self.rd.val();
        self.merged.next =
            (self.rd.val() & !self.bar.wr_mask.val()) | (self.bar.wr_data.val() & self.bar.wr_mask.val());
        if self.bar.wr_en.val() {
            if self.bar.addr.val() == self.a_cnt_frames.val() {
                self.cnt_frames.clear.next = true;
            }
            if self.bar.addr.val() == self.a_cnt_trunc.val() {
                self.cnt_trunc.clear.next = true;
            }
            if self.bar.addr.val() == self.a_cnt_not_ipv4.val() {
                self.cnt_not_ipv4.clear.next = true;
            }
            if self.bar.addr.val() == self.a_cnt_bad_ip.val() {
                self.cnt_bad_ip.clear.next = true;
            }
            if self.bar.addr.val() == self.a_cnt_bad_ck.val() {
                self.cnt_bad_ck.clear.next = true;
            }
            if self.bar.addr.val() == self.a_cnt_not_geneve.val() {
                self.cnt_not_geneve.clear.next = true;
            }
            if self.bar.addr.val() == self.a_cnt_bad_len.val() {
                self.cnt_bad_len.clear.next = true;
            }
            if self.bar.addr.val() == self.a_cnt_bad_geneve.val() {
                self.cnt_bad_geneve.clear.next = true;
            }
            if self.bar.addr.val() == self.a_cnt_too_long.val() {
                self.cnt_too_long.clear.next = true;
            }
            if self.bar.addr.val() == self.a_cnt_unknown_vni.val() {
                self.cnt_unknown_vni.clear.next = true;
            }
            if self.bar.addr.val() == self.a_cnt_no_space.val() {
                self.cnt_no_space.clear.next = true;
            }
            if self.tbl_sel.val() {
                for i in 0..VNI_ENTRIES {
                    if self.tbl_idx.val().index() == i {
                        self.vte[i].d.next = self.merged.val() & self.k_vni_wmask.val();
                    }
                }
            }
        }
        if self.bar.wr_en.val() & (self.bar.addr.val() == self.a_cnt_bytes.val()) {
            self.cnt_bytes.d.next = 0.into();
        }

        if self.reset.val() {
            self.pos.d.next = 0.into();
            self.ferr.d.next = false;
            self.nospace.d.next = false;
            self.fin.d.next = false;
            self.j2.d.next = false;
            self.h_commit.d.next = false;
            self.h_roll.d.next = false;
            self.wp.d.next = 1.into();
            self.commit.d.next = 0.into();
            self.cur.d.next = 0.into();
            self.rv.d.next = false;
            self.rstate.d.next = 0.into();
            self.r_j.d.next = 0.into();
            self.o_valid.d.next = false;
            self.cnt_bytes.d.next = 0.into();
            for i in 0..VNI_ENTRIES {
                self.vte[i].d.next = 0.into();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_verilog() {
        let mut uut = GeneveDecap::default();
        uut.connect_all();
        let v = generate_verilog(&uut);
        assert!(v.contains("module top"));
    }
}
