//! The records the card and the host exchange through host memory, in the
//! card's little-endian layouts (docs/dma.md, docs/cache.md, docs/encap.md).
//! The HDL writes and reads these layouts; the driver builds and parses them
//! with the functions here.

use crate::{cache, dma, encap};

/// One DMA descriptor (`dma::DESC_BYTES` = 32 bytes): src IOVA, dst IOVA,
/// length, flags word, cookie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Descriptor {
    pub src: u64,
    pub dst: u64,
    pub len: u32,
    pub cookie: u64,
}

impl Descriptor {
    pub fn to_bytes(&self) -> [u8; dma::DESC_BYTES as usize] {
        self.to_bytes_with_flags(0)
    }

    /// The same with the flags word (bytes 20..24) set, e.g. a TX
    /// descriptor's tenant (`dma::DESC_FLAGS_TENANT_*`).
    pub fn to_bytes_with_flags(&self, flags: u32) -> [u8; dma::DESC_BYTES as usize] {
        let mut b = [0u8; dma::DESC_BYTES as usize];
        b[0..8].copy_from_slice(&self.src.to_le_bytes());
        b[8..16].copy_from_slice(&self.dst.to_le_bytes());
        b[16..20].copy_from_slice(&self.len.to_le_bytes());
        b[20..24].copy_from_slice(&flags.to_le_bytes());
        b[24..32].copy_from_slice(&self.cookie.to_le_bytes());
        b
    }
}

/// A completion record as the card writes it (`dma::CPL_BYTES` = 16 bytes):
/// cookie u64, length u32, status u16, queue u8, flags u8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompletionRecord {
    pub cookie: u64,
    pub len: u32,
    pub status: u16,
    pub queue: u8,
    pub flags: u8,
}

impl CompletionRecord {
    /// `None` until the card has set `CPL_FLAG_DONE`.
    pub fn parse(b: &[u8]) -> Option<CompletionRecord> {
        if b.len() < dma::CPL_BYTES as usize || b[15] & dma::CPL_FLAG_DONE == 0 {
            return None;
        }
        Some(CompletionRecord {
            cookie: u64::from_le_bytes(b[0..8].try_into().ok()?),
            len: u32::from_le_bytes(b[8..12].try_into().ok()?),
            status: u16::from_le_bytes([b[12], b[13]]),
            queue: b[14],
            flags: b[15],
        })
    }

    /// The tenant in flags bits 7:4.
    pub fn tenant(&self) -> u8 {
        self.flags >> dma::CPL_FLAG_TENANT_SHIFT
    }
}

/// A write record the card appends for every write into host memory
/// (`dma::WREC_BYTES` = 16 bytes): iova u64, length u32, source u8, flags u8
/// (bit 0 valid), sequence u16.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteRecord {
    pub iova: u64,
    pub len: u32,
    pub source: u8,
    pub seq: u16,
}

impl WriteRecord {
    /// The card's 16-byte format (valid flag set).
    pub fn to_bytes(&self) -> [u8; dma::WREC_BYTES as usize] {
        let mut b = [0u8; dma::WREC_BYTES as usize];
        b[0..8].copy_from_slice(&self.iova.to_le_bytes());
        b[8..12].copy_from_slice(&self.len.to_le_bytes());
        b[12] = self.source;
        b[13] = 1;
        b[14..16].copy_from_slice(&self.seq.to_le_bytes());
        b
    }

    /// `None` for a slot without the valid flag (not yet written).
    pub fn parse(b: &[u8]) -> Option<WriteRecord> {
        if b.len() < dma::WREC_BYTES as usize || b[13] & 1 == 0 {
            return None;
        }
        Some(WriteRecord {
            iova: u64::from_le_bytes(b[0..8].try_into().ok()?),
            len: u32::from_le_bytes(b[8..12].try_into().ok()?),
            source: b[12],
            seq: u16::from_le_bytes([b[14], b[15]]),
        })
    }
}

/// A mapping-cache miss as the card sends it to the host's miss queue
/// (`cache::MISS_RECORD_BYTES` = 16 bytes): key u32, tag u8, zeros.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MissRecord {
    pub tag: u8,
    pub key: u32,
}

impl MissRecord {
    pub fn to_bytes(&self) -> [u8; cache::MISS_RECORD_BYTES as usize] {
        let mut b = [0u8; cache::MISS_RECORD_BYTES as usize];
        b[0..4].copy_from_slice(&self.key.to_le_bytes());
        b[4] = self.tag;
        b
    }

    /// `None` for anything that is not exactly a well-formed record.
    pub fn parse(b: &[u8]) -> Option<MissRecord> {
        if b.len() != cache::MISS_RECORD_BYTES as usize || b[5..].iter().any(|&x| x != 0) || b[4] as u32 >= cache::TAGS {
            return None;
        }
        Some(MissRecord { tag: b[4], key: u32::from_le_bytes([b[0], b[1], b[2], b[3]]) })
    }
}

/// A tenant's tunnel: what the encapsulation pipeline writes in the outer
/// headers (and what decapsulation checks the VNI of).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TunnelContext {
    /// 24-bit virtual network identifier.
    pub vni: u32,
    pub outer_src_mac: [u8; 6],
    pub next_hop_mac: [u8; 6],
    pub outer_src_ip: [u8; 4],
    pub outer_dst_ip: [u8; 4],
    pub ttl: u8,
}

/// A tenant's row of the encapsulation pipeline's mapping table: the
/// tunnel context, the path policy and the path table, as the host
/// programs it (`encap::T_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TenantContext {
    /// The tenant's frames are sent (`encap::TENANT_ENABLE` bit); a disabled
    /// tenant's frames are dropped and counted.
    pub enabled: bool,
    pub tunnel: TunnelContext,
    /// `encap::POLICY_*`.
    pub policy: u32,
    /// Flowlet gap in card clock cycles (flowlet policy).
    pub flowlet_gap: u32,
    /// Bit i: path i is bad.
    pub bad_paths: u8,
    /// Outer UDP source ports, one per path.
    pub path_ports: [u16; encap::PATHS as usize],
    /// Look inner destinations up in the mapping cache (`CONFIG_USE_MAPPING`).
    pub use_mapping: bool,
}

impl TenantContext {
    /// The register writes that program tenant `t`'s row (context, policy,
    /// path table), in order; the enable bit is separate.
    pub fn register_writes(&self, t: usize) -> Vec<(u32, u32)> {
        let base = encap::TENANT_BASE + t as u32 * encap::TENANT_STRIDE;
        let mac_hi = |m: [u8; 6]| u16::from_be_bytes([m[0], m[1]]) as u32;
        let mac_lo = |m: [u8; 6]| u32::from_be_bytes([m[2], m[3], m[4], m[5]]);
        let c = &self.tunnel;
        let mut w = vec![
            (
                encap::T_CONFIG,
                c.ttl as u32
                    | (self.policy & 3) << encap::CONFIG_POLICY_SHIFT
                    | if self.use_mapping { encap::CONFIG_USE_MAPPING } else { 0 },
            ),
            (encap::T_FLOWLET_GAP, self.flowlet_gap),
            (encap::T_BAD_PATHS, self.bad_paths as u32),
            (encap::T_VNI, c.vni & 0xFF_FFFF),
            (encap::T_SRC_IP, u32::from_be_bytes(c.outer_src_ip)),
            (encap::T_DST_IP, u32::from_be_bytes(c.outer_dst_ip)),
            (encap::T_SRC_MAC_HI, mac_hi(c.outer_src_mac)),
            (encap::T_SRC_MAC_LO, mac_lo(c.outer_src_mac)),
            (encap::T_NEXT_HOP_MAC_HI, mac_hi(c.next_hop_mac)),
            (encap::T_NEXT_HOP_MAC_LO, mac_lo(c.next_hop_mac)),
        ];
        let p = &self.path_ports;
        for k in 0..encap::PATHS as usize / 2 {
            w.push((encap::T_PATHS + 4 * k as u32, p[2 * k] as u32 | (p[2 * k + 1] as u32) << 16));
        }
        w.into_iter().map(|(o, v)| (base + o, v)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let w = WriteRecord { iova: 0x1_2345_6789, len: 4096, source: dma::SRC_KIND_COMPLETION | 3, seq: 0xbeef };
        assert_eq!(WriteRecord::parse(&w.to_bytes()), Some(w));
        assert_eq!(WriteRecord::parse(&[0u8; 16]), None, "a slot without the valid bit is not a record");
        let m = MissRecord { tag: 7, key: 0x0a00_0002 };
        assert_eq!(MissRecord::parse(&m.to_bytes()), Some(m));
        let mut bad = m.to_bytes();
        bad[4] = cache::TAGS as u8;
        assert_eq!(MissRecord::parse(&bad), None, "tag out of range");
        let d = Descriptor { src: 1, dst: 2, len: 3, cookie: 4 }.to_bytes_with_flags(5);
        assert_eq!((d[0], d[8], d[16], d[20], d[24]), (1, 2, 3, 5, 4));
    }

    #[test]
    fn tenant_writes_cover_the_row() {
        let t = TenantContext {
            enabled: true,
            tunnel: TunnelContext {
                vni: 0x1234_5678,
                outer_src_mac: [2, 0xaa, 0, 0, 0, 1],
                next_hop_mac: [2, 0xbb, 1, 2, 3, 4],
                outer_src_ip: [10, 0, 0, 1],
                outer_dst_ip: [10, 0, 0, 2],
                ttl: 64,
            },
            policy: encap::POLICY_SPRAY,
            flowlet_gap: 0,
            bad_paths: 0x81,
            path_ports: [1, 2, 3, 4, 5, 6, 7, 8],
            use_mapping: true,
        };
        let w = t.register_writes(2);
        let base = encap::TENANT_BASE + 2 * encap::TENANT_STRIDE;
        assert_eq!(w.len() as u32, encap::T_CONTEXT_DWS + encap::PATHS / 2);
        assert!(w.contains(&(base + encap::T_VNI, 0x34_5678)), "VNI is 24 bits");
        assert!(w.contains(&(base + encap::T_SRC_MAC_HI, 0x02aa)));
        assert!(w.contains(&(base + encap::T_PATHS + 12, 7 | 8 << 16)));
        let cfg = w.iter().find(|(o, _)| *o == base + encap::T_CONFIG).unwrap().1;
        assert_eq!(cfg & 0xff, 64);
        assert_eq!(cfg >> encap::CONFIG_POLICY_SHIFT & 3, encap::POLICY_SPRAY);
        assert_ne!(cfg & encap::CONFIG_USE_MAPPING, 0);
    }
}
