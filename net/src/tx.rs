//! The transmit pipeline as a plain function: what the card's encapsulation
//! block (`hdl/src/encap/`) sends for one frame from a host queue,
//! including how it treats a length field that disagrees with the data.

use crate::geneve::{encapsulate, TunnelContext, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_VLAN};
use crate::path::{flow_hash, PathTable, Pick, Policy, Selector};

/// Shortest and longest inner frame the card sends (shorter lengths are
/// padded with zeros, longer ones truncated): `offcard_regs::net`.
pub use offcard_regs::net::{MAX_FRAME, MIN_FRAME};

/// A tenant's row of the mapping table, as the host programs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxTenant {
    pub enabled: bool,
    pub ctx: TunnelContext,
    pub policy: Policy,
    pub paths: PathTable,
    /// Look the inner destination up in the mapping cache (`T_CONFIG` bit
    /// `CONFIG_USE_MAPPING`): a hit gives the outer IPv4 destination, a miss
    /// (or no answer) leaves `ctx.outer_dst_ip` (the default tunnel endpoint).
    pub use_mapping: bool,
}

impl TxTenant {
    /// The row as the card's register format (`offcard_regs::formats`),
    /// which the driver programs.
    pub fn context(&self) -> offcard_regs::formats::TenantContext {
        offcard_regs::formats::TenantContext {
            enabled: self.enabled,
            tunnel: self.ctx,
            policy: self.policy.code(),
            flowlet_gap: self.policy.gap(),
            bad_paths: self.paths.bad,
            path_ports: self.paths.ports,
            use_mapping: self.use_mapping,
        }
    }
}

/// The mapping cache's key for an inner frame: its inner destination. The
/// IPv4 destination address as a big-endian number, or for IPv6 the XOR of
/// the destination's four 32-bit words (big-endian); one 802.1Q tag is
/// skipped. `None` for frames that are not IP (they do no lookup). Only the
/// ethertype decides, as in the hardware; a frame too short to hold the
/// address gives `None` (the card never sees one: frames are padded to 60
/// bytes, which always holds it).
pub fn mapping_key(frame: &[u8]) -> Option<u32> {
    let be16 = |o: usize| frame.get(o..o + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let be32 = |o: usize| frame.get(o..o + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    let mut off = 14;
    let mut et = be16(12)?;
    if et == ETHERTYPE_VLAN {
        et = be16(16)?;
        off = 18;
    }
    match et {
        ETHERTYPE_IPV4 => be32(off + 16),
        ETHERTYPE_IPV6 => (0..4).try_fold(0u32, |k, i| Some(k ^ be32(off + 24 + 4 * i)?)),
        _ => None,
    }
}

/// One mapping lookup the card made for a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapLookup {
    pub key: u32,
    /// The cached outer IPv4 destination (`None`: a miss, the default is used).
    pub value: Option<u32>,
}

/// The length the card uses for a frame whose descriptor says `in_len`.
pub fn clamp_len(in_len: usize) -> usize {
    in_len.clamp(MIN_FRAME, MAX_FRAME)
}

/// The inner frame as sent: the host's bytes cut or zero-padded to the
/// (clamped) descriptor length.
pub fn normalize(data: &[u8], in_len: usize) -> Vec<u8> {
    let l = clamp_len(in_len);
    let mut v = data[..data.len().min(l)].to_vec();
    v.resize(l, 0);
    v
}

/// What happened to one frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxResult {
    /// The outer frame, `None` if the tenant is disabled (dropped).
    pub packet: Option<Vec<u8>>,
    pub pick: Option<Pick>,
    pub hash: u32,
    /// The data was longer or shorter than the length used.
    pub length_mismatch: bool,
    /// `in_len` was outside MIN_FRAME..=MAX_FRAME.
    pub length_clamped: bool,
    /// The mapping lookup, if one was made (tenant uses mapping, IP frame).
    pub map: Option<MapLookup>,
}

/// The mapping cache as the transmit path sees it: `(tenant, key)` to the
/// cached outer IPv4 destination, `None` on a miss.
pub type MapLookupFn<'a> = &'a mut dyn FnMut(usize, u32) -> Option<u32>;

/// Encapsulate `data` (the frame's bytes from host memory, `in_len` the
/// descriptor's length) for `tenant`, whose first beat entered the card at
/// cycle `now`, updating the flow table `sel`. `lookup` is the mapping
/// cache, asked once per frame of a tenant with `use_mapping` whose inner
/// frame is IP ([`mapping_key`]).
pub fn transmit(
    sel: &mut Selector,
    tenant: usize,
    t: &TxTenant,
    data: &[u8],
    in_len: usize,
    now: u32,
    lookup: MapLookupFn,
) -> TxResult {
    let length_clamped = clamp_len(in_len) != in_len;
    if !t.enabled {
        return TxResult { packet: None, pick: None, hash: 0, length_mismatch: false, length_clamped, map: None };
    }
    let inner = normalize(data, in_len);
    let hash = flow_hash(&inner);
    let pick = sel.pick(tenant, t.policy, &t.paths, hash, now);
    let map = match (t.use_mapping, mapping_key(&inner)) {
        (true, Some(key)) => Some(MapLookup { key, value: lookup(tenant, key) }),
        _ => None,
    };
    let mut ctx = t.ctx;
    if let Some(MapLookup { value: Some(v), .. }) = map {
        ctx.outer_dst_ip = v.to_be_bytes();
    }
    TxResult {
        packet: Some(encapsulate(&inner, &ctx, pick.port)),
        map,
        pick: Some(pick),
        hash,
        length_mismatch: data.len() != inner.len(),
        length_clamped,
    }
}
