//! The encapsulation pipeline's parser: holds the capture (the first eleven
//! beats of the frame the writer is on, or has finished) and reads out of it,
//! all in the cycle the header stage takes it:
//!
//! * the RSS input, exactly `offcard_net::geneve::FlowKey::bytes()`: IPv4 or
//!   IPv6 source and destination address and TCP/UDP ports (zero for other
//!   protocols), one 802.1Q tag skipped; frames that are not IP, or too
//!   short to hold their ports, use the 12 MAC address bytes instead
//!   (`offcard_net::path::flow_hash`). Loaded into a shift register that
//!   gives the hash 64 bits a cycle (`tuple_word`, first byte in bits 7:0);
//! * the mapping-cache key, `offcard_net::tx::mapping_key`, and whether the
//!   frame is IP (only IP frames look up).
//!
//! The take frees the capture, so the writer can capture the next frame
//! while the header stage works on this one.

use rust_hdl::prelude::*;
use smart_default::SmartDefault;
use crate::konst;
use crate::regmap::net::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_VLAN};

/// Capture words: bytes 0..88 of the frame.
pub const CAPTURE_WORDS: usize = 11;

#[derive(LogicBlock, SmartDefault)]
pub struct EncapParser {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    // Capture write port (from the writer, see `EncapWriter`).
    pub cap_first: Signal<In, Bit>,
    pub cap_write: Signal<In, Bit>,
    pub cap_index: Signal<In, Bits<4>>,
    pub cap_data: Signal<In, Bits<64>>,
    pub cap_done: Signal<In, Bit>,
    pub frame_tenant: Signal<In, Bits<4>>,
    pub frame_len: Signal<In, Bits<14>>,
    /// The card's cycle counter: a frame's time is the cycle its first beat
    /// was accepted (what the flowlet policy compares).
    pub now: Signal<In, Bits<32>>,
    /// The header stage takes the captured frame (only while `full`).
    pub take: Signal<In, Bit>,
    /// Move the next 64 bits of the RSS input into `tuple_word`.
    pub shift: Signal<In, Bit>,
    /// A finished capture waits to be taken.
    pub full: Signal<Out, Bit>,
    /// The captured frame's tenant, length and time.
    pub tenant: Signal<Out, Bits<4>>,
    pub len: Signal<Out, Bits<14>>,
    pub frame_time: Signal<Out, Bits<32>>,
    /// The captured frame's mapping key and whether it is IP (read them in
    /// the take cycle).
    pub map_key: Signal<Out, Bits<32>>,
    pub is_ip: Signal<Out, Bit>,
    /// RSS input bytes 8k..8k+7 after k shifts since the take (zero past
    /// the end of the input).
    pub tuple_word: Signal<Out, Bits<64>>,

    cap: [DFF<Bits<64>>; CAPTURE_WORDS],
    cap_full: DFF<Bit>,
    cap_tenant: DFF<Bits<4>>,
    cap_len: DFF<Bits<14>>,
    cap_time: DFF<Bits<32>>,
    /// The RSS input (36 bytes at most), shifting down 64 bits a step.
    tuple: DFF<Bits<288>>,

    /// The capture as one vector, byte i in bits 8i+7:8i.
    capall: Signal<Local, Bits<704>>,
    et0: Signal<Local, Bits<16>>,
    vlan: Signal<Local, Bit>,
    et: Signal<Local, Bits<16>>,
    /// The capture from the IP header on.
    shb: Signal<Local, Bits<704>>,
    is4: Signal<Local, Bit>,
    is6: Signal<Local, Bit>,
    proto: Signal<Local, Bits<8>>,
    l4off: Signal<Local, Bits<8>>,
    l4sh: Signal<Local, Bits<10>>,
    /// The capture from the transport header on.
    shl4: Signal<Local, Bits<704>>,
    has_ports: Signal<Local, Bit>,
    ip_ok: Signal<Local, Bit>,
    ports: Signal<Local, Bits<32>>,
    tup: Signal<Local, Bits<288>>,
    mk_raw: Signal<Local, Bits<32>>,

    // Ethertypes as they sit in the capture (first byte in bits 7:0).
    #[default(konst(ETHERTYPE_VLAN.swap_bytes() as u64))]
    c_vlan_le: Constant<Bits<16>>,
    #[default(konst(ETHERTYPE_IPV4.swap_bytes() as u64))]
    c_v4_le: Constant<Bits<16>>,
    #[default(konst(ETHERTYPE_IPV6.swap_bytes() as u64))]
    c_v6_le: Constant<Bits<16>>,
}

impl Logic for EncapParser {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, cap_full, cap_tenant, cap_len, cap_time, tuple);
        for i in 0..CAPTURE_WORDS {
            self.cap[i].clock.next = self.clock.val();
            self.cap[i].d.next = self.cap[i].q.val();
        }
        // ---- capture ----
        // A frame's first beat writes word 0 and clears the others (a short
        // frame leaves the rest zero). Written as one if/else per word, the
        // words synthesize to flip-flops with clear and enable; separate
        // clear and write loops cost a multiplexer per bit.
        for i in 0..CAPTURE_WORDS {
            if self.cap_write.val() & (self.cap_index.val().index() == i) {
                self.cap[i].d.next = self.cap_data.val();
            } else if self.cap_first.val() {
                self.cap[i].d.next = 0.into();
            }
        }
        if self.cap_first.val() {
            self.cap_tenant.d.next = self.frame_tenant.val();
            self.cap_len.d.next = self.frame_len.val();
            self.cap_time.d.next = self.now.val();
        }
        if self.cap_done.val() {
            self.cap_full.d.next = true;
        }
        self.full.next = self.cap_full.q.val();
        self.tenant.next = self.cap_tenant.q.val();
        self.len.next = self.cap_len.q.val();
        self.frame_time.next = self.cap_time.q.val();

        // ---- fields ----
        // (rust-hdl evaluates bit_cast's width outside the HDL, so it cannot
        // take a loop index: the eleven words are spelled out.)
        self.capall.next = bit_cast::<704, 64>(self.cap[0].q.val())
            | (bit_cast::<704, 64>(self.cap[1].q.val()) << 64)
            | (bit_cast::<704, 64>(self.cap[2].q.val()) << 128)
            | (bit_cast::<704, 64>(self.cap[3].q.val()) << 192)
            | (bit_cast::<704, 64>(self.cap[4].q.val()) << 256)
            | (bit_cast::<704, 64>(self.cap[5].q.val()) << 320)
            | (bit_cast::<704, 64>(self.cap[6].q.val()) << 384)
            | (bit_cast::<704, 64>(self.cap[7].q.val()) << 448)
            | (bit_cast::<704, 64>(self.cap[8].q.val()) << 512)
            | (bit_cast::<704, 64>(self.cap[9].q.val()) << 576)
            | (bit_cast::<704, 64>(self.cap[10].q.val()) << 640);
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
        self.is_ip.next = self.is4.val() | self.is6.val();
        // IPv4: protocol at byte 9, header length from IHL; IPv6: next
        // header at byte 6, 40-byte header (extension headers not followed).
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
        // An IP frame too short to hold its ports hashes like a non-IP one
        // (what `flow_key` does with it).
        self.ip_ok.next = (self.is4.val() | self.is6.val())
            & (!self.has_ports.val() | (bit_cast::<14, 8>(self.l4off.val()) + 4 <= self.cap_len.q.val()));
        self.ports.next = 0.into();
        if self.has_ports.val() {
            self.ports.next = self.shl4.val().get_bits::<32>(0);
        }
        // The RSS input, first byte in bits 7:0: the MAC addresses, or
        // addresses then ports.
        self.tup.next = bit_cast::<288, 96>(self.capall.val().get_bits::<96>(0));
        if self.ip_ok.val() & self.is4.val() {
            self.tup.next =
                bit_cast::<288, 64>(self.shb.val().get_bits::<64>(96)) | (bit_cast::<288, 32>(self.ports.val()) << 64);
        }
        if self.ip_ok.val() & self.is6.val() {
            self.tup.next = bit_cast::<288, 256>(self.shb.val().get_bits::<256>(64))
                | (bit_cast::<288, 32>(self.ports.val()) << 256);
        }
        // Mapping key: the IPv4 destination, or the XOR of the IPv6
        // destination's four words; the XOR is taken in lane order and the
        // bytes swapped once (swapping commutes with XOR). A frame is at
        // least 60 bytes, so the address is always captured.
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

        // ---- the RSS input, 64 bits a step ----
        self.tuple_word.next = self.tuple.q.val().get_bits::<64>(0);
        if self.shift.val() {
            self.tuple.d.next = self.tuple.q.val() >> 64;
        }
        if self.take.val() {
            self.cap_full.d.next = false;
            self.tuple.d.next = self.tup.val();
        }
        if self.reset.val() {
            self.cap_full.d.next = false;
        }
    }
}
