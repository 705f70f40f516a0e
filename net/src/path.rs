//! Path-balancing policies for the outer UDP source port (the entropy the
//! fabric's ECMP hashing sees), per tenant.

use crate::geneve::FlowKey;
use crate::hash::{toeplitz, RSS_KEY};
use std::collections::HashMap;

/// How a tenant's traffic picks its outer source port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Hash of the inner 5-tuple: one path per flow (RFC 8926's default).
    PerFlow,
    /// Re-pick when a flow was idle longer than `gap_ns`.
    Flowlet { gap_ns: u64 },
    /// Rotate every packet of a flow over the path table.
    Spray,
}

/// The entropy values (source ports) a tenant may use, and which are bad.
#[derive(Clone, Debug)]
pub struct PathTable {
    pub ports: Vec<u16>,
    pub bad: Vec<bool>,
}

impl PathTable {
    /// `n` ports in the ephemeral range, spread so they hash apart.
    pub fn new(n: usize) -> Self {
        let ports = (0..n).map(|i| 49152 + (i as u16).wrapping_mul(2477) % 16384).collect();
        PathTable { ports, bad: vec![false; n] }
    }
    fn healthy(&self, i: usize) -> usize {
        // Path health: step over entries the host marked bad.
        let n = self.ports.len();
        (0..n).map(|k| (i + k) % n).find(|&j| !self.bad[j]).unwrap_or(i % n)
    }
}

/// Per-flow state a policy keeps.
#[derive(Default)]
pub struct Selector {
    last_seen: HashMap<FlowKey, (u64, usize)>,
    rotate: HashMap<FlowKey, usize>,
}

impl Selector {
    /// The outer source port for a packet of `flow` at time `now_ns`.
    pub fn pick(&mut self, policy: Policy, table: &PathTable, flow: &FlowKey, now_ns: u64) -> u16 {
        let n = table.ports.len();
        let h = toeplitz(&RSS_KEY, &flow.bytes()) as usize;
        let idx = match policy {
            Policy::PerFlow => h % n,
            Policy::Flowlet { gap_ns } => {
                let e = self.last_seen.entry(*flow).or_insert((now_ns, h % n));
                if now_ns.saturating_sub(e.0) > gap_ns {
                    e.1 = (e.1 + 1 + h % (n.max(2) - 1)) % n;
                }
                e.0 = now_ns;
                e.1
            }
            Policy::Spray => {
                let r = self.rotate.entry(*flow).or_insert(h % n);
                *r = (*r + 1) % n;
                *r
            }
        };
        table.ports[table.healthy(idx)]
    }
}
