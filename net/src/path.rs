//! Path selection for the outer UDP source port (the entropy the fabric's
//! ECMP hashing sees), written the way the encapsulation pipeline
//! (`hdl/src/encap/`) implements it, so the two agree packet for
//! packet:
//!
//! * the flow hash is Toeplitz with the RSS key over `FlowKey::bytes()`
//!   (non-IP frames, and IP frames too short to hold their ports, hash the
//!   12 bytes of destination and source MAC instead), see [`flow_hash`];
//! * per-flow state lives in a fixed table of [`FLOW_SLOTS`] entries per
//!   tenant, indexed by hash bits (not by the flow itself: flows that share
//!   a slot share its state, as in any hardware flowlet table);
//! * time is the card's cycle counter (32 bits, wrapping);
//! * a path is an index 0..8 into the tenant's table of entropy values.
//!
//! The algorithm, for a packet with hash `h` of tenant `t` at time `now`:
//! `base = h & 7`, slot `s = (t << 6) | ((h >> 3) & 63)` holding
//! `(last, offset)`;
//! * per-flow: `start = base`;
//! * flowlet: `idle = now - last > gap` (wrapping); `start = base + offset + idle`;
//! * spray: `start = base + offset + 1`;
//!
//! then the first healthy path at or after `start` (cyclically; `start`
//! itself if every path is bad) is used, and the slot becomes
//! `(now, used - base)`. So spray walks the healthy entries in order, a
//! flowlet moves to the next healthy path after an idle gap, and a path
//! marked bad is left by every policy on the next packet.

use crate::geneve::{flow_key, FlowKey};
use crate::hash::{toeplitz, RSS_KEY};

/// Entropy values (outer source ports) per tenant.
pub const PATHS: usize = offcard_regs::encap::PATHS as usize;
/// Tenants the card serves.
pub const TENANTS: usize = offcard_regs::encap::TENANTS as usize;
/// log2 of the flow-state slots per tenant.
pub const FLOW_SLOTS_LOG2: u32 = offcard_regs::encap::FLOW_SLOTS_LOG2;
pub const FLOW_SLOTS: usize = 1 << FLOW_SLOTS_LOG2;

/// How a tenant's traffic picks its outer source port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Hash of the inner 5-tuple: one path per flow (RFC 8926's default).
    PerFlow,
    /// Move to the next path when the flow's slot was idle longer than
    /// `gap_cycles` (card clock cycles).
    Flowlet { gap_cycles: u32 },
    /// Every packet of a flow takes the next healthy path.
    Spray,
}

impl Policy {
    /// The 2-bit code of the tenant configuration register.
    pub fn code(self) -> u32 {
        match self {
            Policy::PerFlow => 0,
            Policy::Flowlet { .. } => 1,
            Policy::Spray => 2,
        }
    }
    pub fn gap(self) -> u32 {
        match self {
            Policy::Flowlet { gap_cycles } => gap_cycles,
            _ => 0,
        }
    }
    /// Decode the register fields (code 3 is reserved and behaves as per-flow).
    pub fn from_code(code: u32, gap_cycles: u32) -> Self {
        match code & 3 {
            1 => Policy::Flowlet { gap_cycles },
            2 => Policy::Spray,
            _ => Policy::PerFlow,
        }
    }
}

/// The entropy values (source ports) a tenant may use, and which are bad.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathTable {
    pub ports: [u16; PATHS],
    /// Bit i: path i is marked bad by the host.
    pub bad: u8,
}

impl PathTable {
    /// Ports in the ephemeral range, spread so they hash apart.
    pub fn spread(seed: u16) -> Self {
        let mut ports = [0u16; PATHS];
        for (i, p) in ports.iter_mut().enumerate() {
            *p = 49152 + (seed.wrapping_add(i as u16).wrapping_mul(2477)) % 16384;
        }
        PathTable { ports, bad: 0 }
    }
    /// A table from any number of discovered entries, repeated to fill the
    /// card's eight (what a host programming the card does with fewer paths).
    pub fn from_entries(ports: &[u16], bad: &[bool]) -> Self {
        assert!(!ports.is_empty() && ports.len() == bad.len(), "path entries and bad flags must pair up");
        let mut t = PathTable { ports: [0; PATHS], bad: 0 };
        for i in 0..PATHS {
            t.ports[i] = ports[i % ports.len()];
            t.bad |= (bad[i % ports.len()] as u8) << i;
        }
        t
    }
    pub fn is_bad(&self, i: usize) -> bool {
        self.bad >> i & 1 != 0
    }
    /// The first healthy path at or after `start`, cyclically (`start` if all are bad).
    pub fn first_healthy(&self, start: usize) -> usize {
        (0..PATHS).map(|k| (start + k) % PATHS).find(|&j| !self.is_bad(j)).unwrap_or(start % PATHS)
    }
}

/// The per-flow hash: Toeplitz (RSS key) over the inner 5-tuple as
/// `FlowKey::bytes()` defines it, or over the MAC addresses (bytes 0..12)
/// for frames `flow_key` does not parse.
pub fn flow_hash(frame: &[u8]) -> u32 {
    match flow_key(frame) {
        Some(k) => flow_key_hash(&k),
        None => toeplitz(&RSS_KEY, &frame[..12.min(frame.len())]),
    }
}

pub fn flow_key_hash(k: &FlowKey) -> u32 {
    toeplitz(&RSS_KEY, &k.bytes())
}

/// One slot of the flow table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlotState {
    /// Cycle of the last packet through this slot.
    pub last: u32,
    /// Path used last, relative to the hash's base path (0..8).
    pub offset: u8,
}

/// What the selector decided for one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pick {
    /// Path index 0..8.
    pub path: usize,
    pub port: u16,
    /// Flowlet: the slot was idle longer than the gap, so the path moved on.
    pub repicked: bool,
    /// The path the policy chose first was marked bad; a healthy one was used.
    pub avoided_bad: bool,
}

/// The flow table (all tenants), zero after reset like the card's.
#[derive(Clone)]
pub struct Selector {
    slots: Vec<SlotState>,
}

impl Default for Selector {
    fn default() -> Self {
        Selector { slots: vec![SlotState::default(); TENANTS * FLOW_SLOTS] }
    }
}

impl Selector {
    pub fn slot_index(tenant: usize, hash: u32) -> usize {
        (tenant % TENANTS) << FLOW_SLOTS_LOG2 | (hash >> 3) as usize & (FLOW_SLOTS - 1)
    }

    pub fn slot(&self, tenant: usize, hash: u32) -> SlotState {
        self.slots[Self::slot_index(tenant, hash)]
    }

    /// The path for a packet of `tenant` with flow hash `hash` at cycle `now`.
    pub fn pick(&mut self, tenant: usize, policy: Policy, table: &PathTable, hash: u32, now: u32) -> Pick {
        let base = (hash & 7) as usize;
        let s = Self::slot_index(tenant, hash);
        let st = self.slots[s];
        let off = st.offset as usize;
        let mut repicked = false;
        let start = match policy {
            Policy::PerFlow => base,
            Policy::Flowlet { gap_cycles } => {
                repicked = now.wrapping_sub(st.last) > gap_cycles;
                base + off + repicked as usize
            }
            Policy::Spray => base + off + 1,
        } % PATHS;
        let path = table.first_healthy(start);
        self.slots[s] = SlotState { last: now, offset: ((path + PATHS - base) % PATHS) as u8 };
        Pick { path, port: table.ports[path], repicked, avoided_bad: path != start }
    }
}
