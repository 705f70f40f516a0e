//! The transmit pipeline as a plain function: what the card's encapsulation
//! block (`hdl/src/geneve_encap.rs`) sends for one frame from a host queue,
//! including how it treats a length field that disagrees with the data.

use crate::geneve::{encapsulate, TunnelContext};
use crate::path::{flow_hash, PathTable, Pick, Policy, Selector};

/// Shortest inner frame the card sends (Ethernet minimum without FCS);
/// shorter lengths are padded with zeros.
pub const MIN_FRAME: usize = 60;
/// Longest inner frame (9 KiB jumbo); longer lengths are truncated.
pub const MAX_FRAME: usize = 9216;

/// A tenant's row of the mapping table, as the host programs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxTenant {
    pub enabled: bool,
    pub ctx: TunnelContext,
    pub policy: Policy,
    pub paths: PathTable,
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
}

/// Encapsulate `data` (the frame's bytes from host memory, `in_len` the
/// descriptor's length) for `tenant`, whose first beat entered the card at
/// cycle `now`, updating the flow table `sel`.
pub fn transmit(sel: &mut Selector, tenant: usize, t: &TxTenant, data: &[u8], in_len: usize, now: u32) -> TxResult {
    let length_clamped = clamp_len(in_len) != in_len;
    if !t.enabled {
        return TxResult { packet: None, pick: None, hash: 0, length_mismatch: false, length_clamped };
    }
    let inner = normalize(data, in_len);
    let hash = flow_hash(&inner);
    let pick = sel.pick(tenant, t.policy, &t.paths, hash, now);
    TxResult {
        packet: Some(encapsulate(&inner, &t.ctx, pick.port)),
        pick: Some(pick),
        hash,
        length_mismatch: data.len() != inner.len(),
        length_clamped,
    }
}
