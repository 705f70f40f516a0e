//! Transaction-layer packets as the Base Specification lays them out, and the
//! card's 64-bit stream framing of them (docs/tlp.md).
//!
//! A TLP is kept as its DWs: header DWs are the specification's big-endian DWs
//! read as numbers (byte 0, Fmt/Type, in bits [31:24]); payload DWs hold the
//! byte at the lowest address in bits [7:0].

use offcard_regs::tlp::*;

/// One beat of the 64-bit TLP stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Beat {
    pub data: u64,
    /// Bit 0: DW in bits [31:0] valid, bit 1: DW in bits [63:32] valid.
    pub keep: u8,
    pub sop: bool,
    pub eop: bool,
}

/// Split DWs into stream beats (the earlier DW in the low half).
pub fn to_beats(dws: &[u32]) -> Vec<Beat> {
    let n = dws.chunks(2).len();
    dws.chunks(2)
        .enumerate()
        .map(|(i, c)| Beat {
            data: c[0] as u64 | (c.get(1).copied().unwrap_or(0) as u64) << 32,
            keep: if c.len() == 2 { 0b11 } else { 0b01 },
            sop: i == 0,
            eop: i + 1 == n,
        })
        .collect()
}

/// PCI routing ID: bus[15:8] device[7:3] function[2:0].
pub fn bdf(bus: u8, dev: u8, func: u8) -> u16 {
    ((bus as u16) << 8) | (((dev & 0x1f) as u16) << 3) | (func & 7) as u16
}

fn dw0(fmt: u8, typ: u8, length_dw: u16) -> u32 {
    ((fmt as u32) << 29) | ((typ as u32) << 24) | (length_dw as u32 & 0x3ff)
}

/// Memory read request; 4DW header when the address needs it or `force_4dw`.
pub fn mem_read(requester: u16, tag: u8, addr: u64, len_dw: u16, fbe: u8, lbe: u8, force_4dw: bool) -> Vec<u32> {
    let four = force_4dw || addr >> 32 != 0;
    let mut v = vec![
        dw0(if four { FMT_4DW_NO_DATA } else { FMT_3DW_NO_DATA }, TYPE_MEM, len_dw),
        ((requester as u32) << 16) | ((tag as u32) << 8) | ((lbe as u32 & 0xf) << 4) | (fbe as u32 & 0xf),
    ];
    if four {
        v.push((addr >> 32) as u32);
    }
    v.push(addr as u32 & !3);
    v
}

/// Memory write request carrying `data`.
pub fn mem_write(requester: u16, addr: u64, data: &[u32], fbe: u8, lbe: u8, force_4dw: bool) -> Vec<u32> {
    let four = force_4dw || addr >> 32 != 0;
    let mut v = vec![
        dw0(if four { FMT_4DW_DATA } else { FMT_3DW_DATA }, TYPE_MEM, data.len() as u16),
        ((requester as u32) << 16) | ((lbe as u32 & 0xf) << 4) | (fbe as u32 & 0xf),
    ];
    if four {
        v.push((addr >> 32) as u32);
    }
    v.push(addr as u32 & !3);
    v.extend_from_slice(data);
    v
}

/// Type 0 configuration read of the DW at byte offset `reg` (0..4095).
pub fn cfg_read0(requester: u16, tag: u8, target: u16, reg: u16) -> Vec<u32> {
    vec![
        dw0(FMT_3DW_NO_DATA, TYPE_CFG0, 1),
        ((requester as u32) << 16) | ((tag as u32) << 8) | 0xf,
        ((target as u32) << 16) | (reg as u32 & 0xffc),
    ]
}

/// Type 0 configuration write of one DW under byte enables `be`.
pub fn cfg_write0(requester: u16, tag: u8, target: u16, reg: u16, value: u32, be: u8) -> Vec<u32> {
    vec![
        dw0(FMT_3DW_DATA, TYPE_CFG0, 1),
        ((requester as u32) << 16) | ((tag as u32) << 8) | (be as u32 & 0xf),
        ((target as u32) << 16) | (reg as u32 & 0xffc),
        value,
    ]
}

/// Completion with or without data, as a completer sends it.
#[allow(clippy::too_many_arguments)]
pub fn completion(
    completer: u16,
    status: u8,
    byte_count: u16,
    requester: u16,
    tag: u8,
    lower_addr: u8,
    data: &[u32],
) -> Vec<u32> {
    let fmt = if data.is_empty() { FMT_3DW_NO_DATA } else { FMT_3DW_DATA };
    let mut v = vec![
        dw0(fmt, TYPE_CPL, data.len() as u16),
        ((completer as u32) << 16) | ((status as u32 & 7) << 13) | (byte_count as u32 & 0xfff),
        ((requester as u32) << 16) | ((tag as u32) << 8) | (lower_addr as u32 & 0x7f),
    ];
    v.extend_from_slice(data);
    v
}

/// Decoded header fields common to all TLPs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub fmt: u8,
    pub typ: u8,
    pub tc: u8,
    pub attr: u8,
    pub td: bool,
    pub ep: bool,
    /// Length field decoded (0 means 1024).
    pub length_dw: u16,
}

pub fn header(dws: &[u32]) -> Option<Header> {
    let d = *dws.first()?;
    let len = (d & 0x3ff) as u16;
    Some(Header {
        fmt: (d >> 29) as u8,
        typ: ((d >> 24) & 0x1f) as u8,
        tc: ((d >> 20) & 7) as u8,
        attr: ((((d >> 18) & 1) << 2) | ((d >> 12) & 3)) as u8,
        td: d & (1 << 15) != 0,
        ep: d & (1 << 14) != 0,
        length_dw: if len == 0 { 1024 } else { len },
    })
}

/// A completion the card sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    pub header: Header,
    pub locked: bool,
    pub completer: u16,
    pub status: u8,
    pub bcm: bool,
    pub byte_count: u16,
    pub requester: u16,
    pub tag: u8,
    pub lower_addr: u8,
    pub data: Vec<u32>,
}

/// A memory request (read or write) the card sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemRequest {
    pub header: Header,
    pub write: bool,
    pub requester: u16,
    pub tag: u8,
    pub fbe: u8,
    pub lbe: u8,
    pub addr: u64,
    pub data: Vec<u32>,
}

/// What the card sent, decoded; anything else is an error in the card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CardTlp {
    Completion(Completion),
    Mem(MemRequest),
}

/// Decode a TLP the card sent, checking its framing strictly: a card that
/// sends a malformed TLP is a bug the tests must see.
pub fn decode_from_card(dws: &[u32]) -> Result<CardTlp, String> {
    let h = header(dws).ok_or("empty TLP")?;
    let four = h.fmt & 1 != 0;
    let with_data = h.fmt & 2 != 0;
    if h.fmt & 4 != 0 {
        return Err(format!("card sent a TLP prefix (fmt {:03b})", h.fmt));
    }
    let hdr = if four { 4 } else { 3 };
    let expect = hdr + if with_data { h.length_dw as usize } else { 0 } + h.td as usize;
    if dws.len() != expect {
        return Err(format!("card TLP has {} DWs, header says {expect}: {dws:08x?}", dws.len()));
    }
    let data = if with_data { dws[hdr..hdr + h.length_dw as usize].to_vec() } else { vec![] };
    match h.typ {
        TYPE_CPL | TYPE_CPL_LOCKED if !four => Ok(CardTlp::Completion(Completion {
            locked: h.typ == TYPE_CPL_LOCKED,
            completer: (dws[1] >> 16) as u16,
            status: ((dws[1] >> 13) & 7) as u8,
            bcm: dws[1] & (1 << 12) != 0,
            byte_count: (dws[1] & 0xfff) as u16,
            requester: (dws[2] >> 16) as u16,
            tag: (dws[2] >> 8) as u8,
            lower_addr: (dws[2] & 0x7f) as u8,
            data,
            header: h,
        })),
        TYPE_MEM => {
            let addr = if four { ((dws[2] as u64) << 32) | (dws[3] & !3) as u64 } else { (dws[2] & !3) as u64 };
            Ok(CardTlp::Mem(MemRequest {
                write: with_data,
                requester: (dws[1] >> 16) as u16,
                tag: (dws[1] >> 8) as u8,
                fbe: (dws[1] & 0xf) as u8,
                lbe: ((dws[1] >> 4) & 0xf) as u8,
                addr,
                data,
                header: h,
            }))
        }
        t => Err(format!("card sent an unexpected TLP type {t:05b} (fmt {:03b})", h.fmt)),
    }
}

/// Byte count and lower address a completer reports for a memory read of
/// `len_dw` DWs at `addr` with byte enables `fbe`/`lbe` (spec 2.2.9).
pub fn read_byte_count(addr: u64, len_dw: u16, fbe: u8, lbe: u8) -> (u16, u8) {
    let lead = |be: u8| if be == 0 { 0 } else { be.trailing_zeros() as u16 };
    let trail = |be: u8| if be == 0 { 0 } else { (be << 4).leading_zeros() as u16 };
    let bc = if len_dw == 1 {
        if fbe == 0 {
            1
        } else {
            4 - lead(fbe) - trail(fbe)
        }
    } else {
        len_dw * 4 - lead(fbe) - trail(lbe)
    };
    let la = ((addr & 0x7c) as u8) | lead(fbe) as u8;
    (bc & 0xfff, la)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn byte_count_matches_spec_examples() {
        // Table 2-xx style: 1 DW, FBE 1111 -> 4; 0110 -> 2; 1000 -> 1; 0000 -> 1.
        assert_eq!(read_byte_count(0x10, 1, 0b1111, 0), (4, 0x10));
        assert_eq!(read_byte_count(0x10, 1, 0b0110, 0), (2, 0x11));
        assert_eq!(read_byte_count(0x10, 1, 0b1000, 0), (1, 0x13));
        assert_eq!(read_byte_count(0x10, 1, 0b0000, 0), (1, 0x10));
        assert_eq!(read_byte_count(0x10, 1, 0b1001, 0), (4, 0x10));
        assert_eq!(read_byte_count(0x10, 2, 0b1110, 0b0011), (5, 0x11));
    }
    #[test]
    fn beats_roundtrip() {
        let t = mem_write(0x100, 0x1234_5678, &[1, 2], 0xf, 0xf, false);
        let b = to_beats(&t);
        assert_eq!(b.len(), 3);
        assert!(b[0].sop && !b[0].eop && b[2].eop && b[2].keep == 0b01);
    }
}
