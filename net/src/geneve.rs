//! Geneve (RFC 8926) over UDP over IPv4 over Ethernet: the reference model
//! of the card's encapsulation and decapsulation, as plain functions.

/// The protocol constants, defined once in `offcard_regs::net`.
pub use offcard_regs::net::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_VLAN, GENEVE_PORT, OVERHEAD, PROTO_ETHERNET};

/// Per-tenant tunnel context the host programs into the mapping table
/// (defined with the card's record formats in `offcard_regs`).
pub use offcard_regs::formats::TunnelContext;

/// The inner flow (what per-flow hashing looks at).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// Addresses (IPv4 in the first 4 bytes).
    pub v6: bool,
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
}

impl FlowKey {
    /// The RSS hash input: source and destination address, source and
    /// destination port (12 bytes for IPv4, 36 for IPv6), so the card's
    /// per-flow hash is the one NICs compute.
    pub fn bytes(&self) -> Vec<u8> {
        let n = if self.v6 { 16 } else { 4 };
        let mut v = self.src[..n].to_vec();
        v.extend_from_slice(&self.dst[..n]);
        v.extend_from_slice(&self.sport.to_be_bytes());
        v.extend_from_slice(&self.dport.to_be_bytes());
        v
    }
}

/// Parse the inner frame's flow: Ethernet, optional 802.1Q tag, IPv4 or
/// IPv6, TCP/UDP ports when present. `None` for anything else (such frames
/// hash on their MAC addresses instead).
pub fn flow_key(frame: &[u8]) -> Option<FlowKey> {
    let mut off = 12;
    let mut et = u16::from_be_bytes(frame.get(off..off + 2)?.try_into().ok()?);
    off += 2;
    if et == ETHERTYPE_VLAN {
        et = u16::from_be_bytes(frame.get(off + 2..off + 4)?.try_into().ok()?);
        off += 4;
    }
    let v6 = et == ETHERTYPE_IPV6;
    let (src, dst, proto, l4) = match et {
        ETHERTYPE_IPV4 => {
            let ip = frame.get(off..off + 20)?;
            let ihl = (ip[0] & 0xf) as usize * 4;
            let mut s = [0u8; 16];
            let mut d = [0u8; 16];
            s[..4].copy_from_slice(&ip[12..16]);
            d[..4].copy_from_slice(&ip[16..20]);
            (s, d, ip[9], off + ihl)
        }
        ETHERTYPE_IPV6 => {
            let ip = frame.get(off..off + 40)?;
            (ip[8..24].try_into().ok()?, ip[24..40].try_into().ok()?, ip[6], off + 40)
        }
        _ => return None,
    };
    let (sport, dport) = if proto == 6 || proto == 17 {
        let p = frame.get(l4..l4 + 4)?;
        (u16::from_be_bytes([p[0], p[1]]), u16::from_be_bytes([p[2], p[3]]))
    } else {
        (0, 0)
    };
    Some(FlowKey { v6, src, dst, proto, sport, dport })
}

/// The Internet checksum (RFC 1071) of `data`.
pub fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in data.chunks(2) {
        sum += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Wrap `inner` (an Ethernet frame without FCS) for the tunnel, with the
/// outer UDP source port chosen by the path policy. IPv4 total length and
/// header checksum and UDP length are filled in; the UDP checksum is zero,
/// which RFC 8926 allows over IPv4.
pub fn encapsulate(inner: &[u8], ctx: &TunnelContext, udp_src_port: u16) -> Vec<u8> {
    let mut p = Vec::with_capacity(OVERHEAD + inner.len());
    p.extend_from_slice(&ctx.next_hop_mac);
    p.extend_from_slice(&ctx.outer_src_mac);
    p.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    let total = (20 + 8 + 8 + inner.len()) as u16;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[6] = 0x40; // DF: never fragment the overlay
    ip[8] = ctx.ttl;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&ctx.outer_src_ip);
    ip[16..20].copy_from_slice(&ctx.outer_dst_ip);
    let ck = internet_checksum(&ip);
    ip[10..12].copy_from_slice(&ck.to_be_bytes());
    p.extend_from_slice(&ip);
    p.extend_from_slice(&udp_src_port.to_be_bytes());
    p.extend_from_slice(&GENEVE_PORT.to_be_bytes());
    p.extend_from_slice(&(total - 20).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    // Geneve: Ver 0, Opt Len 0, O=0, C=0, protocol type, VNI, reserved.
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&PROTO_ETHERNET.to_be_bytes());
    p.extend_from_slice(&(ctx.vni << 8).to_be_bytes());
    p.extend_from_slice(inner);
    p
}

/// Why a received packet was dropped. The variants are in the order the
/// card checks them (docs/decap.md): a packet with several faults is
/// dropped for the first, so per-reason counts are comparable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum DropReason {
    /// Shorter than the outer headers (50 bytes); the card also counts
    /// broken framing here (a partial beat before the last).
    #[error("truncated")]
    Truncated,
    #[error("not IPv4")]
    NotIpv4,
    #[error("bad IPv4 version or header length")]
    BadIpHeader,
    #[error("bad IPv4 header checksum")]
    BadChecksum,
    #[error("not UDP to the Geneve port")]
    NotGeneve,
    #[error("length fields disagree with the packet")]
    BadLength,
    #[error("bad Geneve version, option length or protocol")]
    BadGeneve,
    /// The inner frame is longer than the card accepts.
    #[error("inner frame too long")]
    TooLong,
    /// No valid entry of the VNI table has the packet's VNI.
    #[error("unknown VNI")]
    UnknownVni,
    /// The card's frame buffer had no room (depends on the card's state,
    /// so the reference functions never return it).
    #[error("no buffer space")]
    NoSpace,
}

impl DropReason {
    /// Every reason, in check order.
    pub const ALL: [DropReason; 10] = [
        DropReason::Truncated,
        DropReason::NotIpv4,
        DropReason::BadIpHeader,
        DropReason::BadChecksum,
        DropReason::NotGeneve,
        DropReason::BadLength,
        DropReason::BadGeneve,
        DropReason::TooLong,
        DropReason::UnknownVni,
        DropReason::NoSpace,
    ];
}

/// Smallest inner frame accepted: an Ethernet header.
pub const MIN_INNER: usize = 14;

/// Validate and strip the outer headers: (VNI, inner frame). Checks, in
/// the card's order: length >= 50; EtherType IPv4; version 4 and IHL 5;
/// header checksum; protocol UDP and destination port 6081; IPv4 total
/// length within the packet (bytes after it are Ethernet padding and are
/// removed), UDP length = total length - 20 and >= 16; Geneve version 0,
/// protocol 0x6558 and options that leave at least an Ethernet header.
pub fn decapsulate(pkt: &[u8]) -> Result<(u32, &[u8]), DropReason> {
    if pkt.len() < OVERHEAD {
        return Err(DropReason::Truncated);
    }
    if u16::from_be_bytes([pkt[12], pkt[13]]) != ETHERTYPE_IPV4 {
        return Err(DropReason::NotIpv4);
    }
    let ip = &pkt[14..34];
    if ip[0] != 0x45 {
        return Err(DropReason::BadIpHeader);
    }
    if internet_checksum(ip) != 0 {
        return Err(DropReason::BadChecksum);
    }
    let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
    if ip[9] != 17 || u16::from_be_bytes([pkt[36], pkt[37]]) != GENEVE_PORT {
        return Err(DropReason::NotGeneve);
    }
    let udp_len = u16::from_be_bytes([pkt[38], pkt[39]]) as usize;
    if total + 14 > pkt.len() || udp_len + 20 != total || udp_len < 16 {
        return Err(DropReason::BadLength);
    }
    let g = &pkt[42..50];
    let opt_len = (g[0] & 0x3f) as usize * 4;
    if g[0] >> 6 != 0 || u16::from_be_bytes([g[2], g[3]]) != PROTO_ETHERNET || OVERHEAD + opt_len + MIN_INNER > 14 + total {
        return Err(DropReason::BadGeneve);
    }
    let vni = u32::from_be_bytes([g[4], g[5], g[6], g[7]]) >> 8;
    Ok((vni, &pkt[OVERHEAD + opt_len..14 + total]))
}

/// What the card's receive pipeline does with `pkt`, apart from buffer
/// space: [`decapsulate`], then an inner frame longer than `max_inner` is
/// `TooLong`, then the VNI is looked up (`lookup` gives the tenant/queue
/// context, `None` is `UnknownVni`).
pub fn receive<T>(
    pkt: &[u8],
    max_inner: usize,
    lookup: impl FnOnce(u32) -> Option<T>,
) -> Result<(T, &[u8]), DropReason> {
    let (vni, inner) = decapsulate(pkt)?;
    if inner.len() > max_inner {
        return Err(DropReason::TooLong);
    }
    let ctx = lookup(vni).ok_or(DropReason::UnknownVni)?;
    Ok((ctx, inner))
}

/// Insert Geneve options (`opts`, a multiple of 4 bytes, at most 252) into
/// a packet made by [`encapsulate`]: sets Opt Len and fixes the IPv4 total
/// length, header checksum and UDP length.
pub fn add_options(pkt: &[u8], opts: &[u8]) -> Vec<u8> {
    assert!(opts.len() % 4 == 0 && opts.len() <= 252, "Geneve options are 0..=63 words");
    let mut p = pkt[..OVERHEAD].to_vec();
    p.extend_from_slice(opts);
    p.extend_from_slice(&pkt[OVERHEAD..]);
    p[42] = (p[42] & 0xc0) | (opts.len() / 4) as u8;
    let total = u16::from_be_bytes([p[16], p[17]]) + opts.len() as u16;
    p[16..18].copy_from_slice(&total.to_be_bytes());
    p[38..40].copy_from_slice(&(total - 20).to_be_bytes());
    fix_ip_checksum(&mut p);
    p
}

/// Recompute the outer IPv4 header checksum in place.
pub fn fix_ip_checksum(p: &mut [u8]) {
    p[24] = 0;
    p[25] = 0;
    let ck = internet_checksum(&p[14..34]);
    p[24..26].copy_from_slice(&ck.to_be_bytes());
}
