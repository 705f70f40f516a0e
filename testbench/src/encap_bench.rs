//! Test bench of the Geneve encapsulation block (`geneve_encap`): programs
//! the mapping table through the register port, streams inner frames in and
//! collects the outer frames, recording when each frame's first beat entered
//! (the time the flowlet policy sees) and every cycle the output idled.
//! Drives any [`BlockSim`]: the Verilated block, or rust-hdl's simulator of
//! the same block ([`RustHdlEncap`]) for the differential test.
//! [`beats_per_cycle`] is the throughput figure of `offcard bench encap`.

use offcard_hdl::geneve_encap::GeneveEncap;
use offcard_regs::cache;
use offcard_regs::encap;
use offcard_hdl::rust_hdl::prelude::*;
use offcard_net::geneve::{internet_checksum, TunnelContext, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_VLAN};
use offcard_net::path::{PathTable, Policy, Selector};
use offcard_net::tx::{transmit, MapLookupFn, TxResult, TxTenant};
use offcard_sim::{BlockSim, VerilatedBlock};
use rand::{rngs::SmallRng, Rng, SeedableRng};
use std::collections::{HashMap, VecDeque};

/// One frame from a host queue.
#[derive(Clone, Debug)]
pub struct TxFrame {
    pub tenant: usize,
    /// The bytes in host memory (what the beats carry).
    pub data: Vec<u8>,
    /// The descriptor's length (the sideband `in_len`).
    pub in_len: usize,
    /// Idle input cycles before this frame's first beat is offered.
    pub gap_before: u32,
}

impl TxFrame {
    pub fn new(tenant: usize, data: Vec<u8>) -> Self {
        let in_len = data.len();
        TxFrame { tenant, data, in_len, gap_before: 0 }
    }
}

/// Stimulus options.
#[derive(Clone, Copy, Debug)]
pub struct RunOpts {
    /// Probability an input beat is withheld in a cycle (0: back to back).
    pub in_idle: f64,
    /// Probability `out_ready` is low in a cycle.
    pub out_stall: f64,
    pub seed: u64,
    pub max_cycles: u64,
    /// Put random values on the inputs the block must ignore: `in_bytes` of
    /// beats before the last, `in_tenant` and `in_len` after the first.
    pub sideband_noise: bool,
}

impl Default for RunOpts {
    fn default() -> Self {
        RunOpts { in_idle: 0.0, out_stall: 0.0, seed: 1, max_cycles: 10_000_000, sideband_noise: false }
    }
}

/// What came out.
#[derive(Clone, Debug, Default)]
pub struct RunResult {
    pub packets: Vec<Vec<u8>>,
    /// Card time (`NOW`) when each input frame's first beat was accepted.
    pub start_times: Vec<u32>,
    /// Output beats, and cycles from the first output beat to the last.
    pub out_beats: u64,
    pub out_span_cycles: u64,
    /// Cycles in that span with `out_ready` high and `out_valid` low.
    pub bubbles: u64,
    /// Per cycle: (in_ready, out_valid, out_data, out_bytes, out_last), for
    /// differential comparison.
    pub trace: Vec<(u8, u8, u64, u8, u8)>,
    /// Per cycle with `keep_trace`: (map_req_valid, map_req_tag, map_req_key).
    pub map_trace: Vec<(u8, u8, u32)>,
}

/// A stand-in for the mapping cache's request port (for the block alone):
/// accepts a request in a cycle with probability `ready_prob` and answers
/// from `table` exactly three cycles later, as `TaggedCache` does.
pub struct MapResponder {
    pub table: HashMap<(u8, u32), u32>,
    pub ready_prob: f64,
    rng: SmallRng,
    /// (cycle due, hit, value)
    pending: VecDeque<(u64, bool, u32)>,
    /// Every accepted lookup (tag, key), in order.
    pub lookups: Vec<(u8, u32)>,
}

impl MapResponder {
    pub fn new(table: HashMap<(u8, u32), u32>, ready_prob: f64, seed: u64) -> Self {
        MapResponder {
            table,
            ready_prob,
            rng: SmallRng::seed_from_u64(seed),
            pending: VecDeque::new(),
            lookups: vec![],
        }
    }
}

pub struct EncapBench<S: BlockSim> {
    pub sim: S,
    /// Record every cycle's outputs in `RunResult::trace`.
    pub keep_trace: bool,
    /// Drive the map_* port from this stand-in during `run` (None: the
    /// port is left alone, idle unless `sim` connects it, as
    /// [`EncapWithCache`] does).
    pub map: Option<MapResponder>,
}

fn reg_dw(offset: u32) -> u64 {
    (offset >> 2) as u64
}

impl<S: BlockSim> EncapBench<S> {
    /// Idle the inputs and wait for the flow table to be cleared after reset.
    pub fn new(mut sim: S) -> Self {
        for p in [
            "in_valid",
            "in_last",
            "in_data",
            "in_bytes",
            "in_tenant",
            "in_len",
            "bar_wr_en",
            "bar_wr_data",
            "map_req_ready",
            "map_rsp_valid",
            "map_rsp_hit",
            "map_rsp_value",
        ] {
            sim.set(p, 0);
        }
        sim.set("out_ready", 1);
        sim.set("bar_wr_mask", 0xFFFF_FFFF);
        let mut b = EncapBench { sim, keep_trace: false, map: None };
        let mut n = 0;
        while b.read_reg(encap::STATUS) & encap::STATUS_CLEARING != 0 {
            b.sim.tick();
            n += 1;
            assert!(n < 10_000, "flow table clear never finished");
        }
        b
    }

    pub fn write_reg(&mut self, offset: u32, value: u32) {
        self.sim.set("bar_addr", reg_dw(offset));
        self.sim.set("bar_wr_data", value as u64);
        self.sim.set("bar_wr_en", 1);
        self.sim.tick();
        self.sim.set("bar_wr_en", 0);
    }

    /// Reads are combinational: the value for the address this cycle.
    pub fn read_reg(&mut self, offset: u32) -> u32 {
        self.sim.set("bar_addr", reg_dw(offset));
        self.sim.eval();
        self.sim.get("bar_rd_data") as u32
    }

    /// Write tenant `t`'s row of the mapping table and its enable bit (the
    /// same register writes the driver makes).
    pub fn program_tenant(&mut self, t: usize, cfg: &TxTenant) {
        for (off, v) in cfg.context().register_writes(t) {
            self.write_reg(off, v);
        }
        let en = self.read_reg(encap::TENANT_ENABLE);
        let en = if cfg.enabled { en | 1 << t } else { en & !(1 << t) };
        self.write_reg(encap::TENANT_ENABLE, en);
    }

    /// Mark tenant `t`'s bad paths.
    pub fn set_bad_paths(&mut self, t: usize, bad: u8) {
        self.write_reg(encap::TENANT_BASE + t as u32 * encap::TENANT_STRIDE + encap::T_BAD_PATHS, bad as u32);
    }

    /// Stream `frames` in and collect `expect_out` outer frames (then wait a
    /// few cycles to see nothing more comes out).
    pub fn run(&mut self, frames: &[TxFrame], expect_out: usize, opts: RunOpts) -> RunResult {
        let mut rng = SmallRng::seed_from_u64(opts.seed);
        let mut res = RunResult::default();
        let (mut fi, mut bi, mut gap) = (0usize, 0usize, frames.first().map_or(0, |f| f.gap_before));
        let mut cur: Vec<u8> = vec![];
        let mut first_out: Option<u64> = None;
        let mut last_out = 0u64;
        let mut bubbles_since_last = 0u64;
        let mut after = 0u32;
        self.sim.set("bar_addr", reg_dw(encap::NOW));
        let mut cycle = 0u64;
        loop {
            let presenting = fi < frames.len() && gap == 0 && !rng.gen_bool(opts.in_idle);
            if presenting {
                let f = &frames[fi];
                let nbeats = f.data.len().div_ceil(8).max(1);
                let lo = bi * 8;
                let hi = (lo + 8).min(f.data.len());
                let mut word = [0u8; 8];
                word[..hi - lo].copy_from_slice(&f.data[lo..hi]);
                self.sim.set("in_data", u64::from_le_bytes(word));
                self.sim.set("in_bytes", (hi - lo) as u64);
                self.sim.set("in_last", (bi + 1 == nbeats) as u64);
                self.sim.set("in_tenant", f.tenant as u64);
                self.sim.set("in_len", f.in_len as u64);
                if opts.sideband_noise && bi > 0 {
                    self.sim.set("in_tenant", rng.gen_range(0..16));
                    self.sim.set("in_len", rng.gen_range(0..1 << 14));
                }
                if opts.sideband_noise && bi + 1 < nbeats {
                    self.sim.set("in_bytes", rng.gen_range(0..16));
                }
            }
            self.sim.set("in_valid", presenting as u64);
            let ready = !rng.gen_bool(opts.out_stall);
            self.sim.set("out_ready", ready as u64);
            let mut map_ready = false;
            if let Some(m) = &mut self.map {
                map_ready = m.rng.gen_bool(m.ready_prob);
                self.sim.set("map_req_ready", map_ready as u64);
                let rsp = if m.pending.front().is_some_and(|p| p.0 == cycle) { m.pending.pop_front() } else { None };
                let (hit, value) = rsp.map_or((false, 0), |r| (r.1, r.2));
                self.sim.set("map_rsp_valid", rsp.is_some() as u64);
                self.sim.set("map_rsp_hit", hit as u64);
                self.sim.set("map_rsp_value", value as u64);
            }
            self.sim.eval();
            if let Some(m) = &mut self.map {
                if map_ready && self.sim.get("map_req_valid") != 0 {
                    let (tag, key) = (self.sim.get("map_req_tag") as u8, self.sim.get("map_req_key") as u32);
                    assert_eq!(self.sim.get("map_req_op") as u32, cache::OP_LOOKUP);
                    let v = m.table.get(&(tag, key)).copied();
                    m.pending.push_back((cycle + 3, v.is_some(), v.unwrap_or(0)));
                    m.lookups.push((tag, key));
                }
            }
            let in_ready = self.sim.get("in_ready");
            let out_valid = self.sim.get("out_valid");
            let now = self.sim.get("bar_rd_data") as u32;
            if self.keep_trace {
                let mv = self.sim.get("map_req_valid");
                res.map_trace.push((
                    mv as u8,
                    if mv != 0 { self.sim.get("map_req_tag") as u8 } else { 0 },
                    if mv != 0 { self.sim.get("map_req_key") as u32 } else { 0 },
                ));
                let v = out_valid != 0;
                res.trace.push((
                    in_ready as u8,
                    out_valid as u8,
                    if v { self.sim.get("out_data") } else { 0 },
                    if v { self.sim.get("out_bytes") as u8 } else { 0 },
                    if v { self.sim.get("out_last") as u8 } else { 0 },
                ));
            }
            if presenting && in_ready != 0 {
                let f = &frames[fi];
                if bi == 0 {
                    res.start_times.push(now);
                }
                bi += 1;
                if bi == f.data.len().div_ceil(8).max(1) {
                    fi += 1;
                    bi = 0;
                    gap = frames.get(fi).map_or(0, |f| f.gap_before);
                }
            } else if !presenting && gap > 0 {
                gap -= 1;
            }
            if out_valid != 0 && ready {
                let n = self.sim.get("out_bytes") as usize;
                assert!((1..=8).contains(&n), "out_bytes {n} outside 1..8");
                let d = self.sim.get("out_data").to_le_bytes();
                let last = self.sim.get("out_last") != 0;
                assert!(last || n == 8, "a beat before the last is partial ({n} bytes)");
                cur.extend_from_slice(&d[..n]);
                if last {
                    res.packets.push(std::mem::take(&mut cur));
                }
                res.out_beats += 1;
                first_out.get_or_insert(cycle);
                last_out = cycle;
                res.bubbles += bubbles_since_last;
                bubbles_since_last = 0;
            } else if first_out.is_some() && ready && out_valid == 0 {
                bubbles_since_last += 1;
            }
            self.sim.tick();
            cycle += 1;
            if fi == frames.len() && res.packets.len() >= expect_out {
                after += 1;
                if after > 64 {
                    break;
                }
            }
            assert!(
                cycle < opts.max_cycles,
                "pipeline stuck: {} of {expect_out} frames out after {cycle} cycles ({fi} of {} in)",
                res.packets.len(),
                frames.len()
            );
        }
        self.sim.set("in_valid", 0);
        assert!(cur.is_empty(), "a frame was left unfinished on the output");
        if let Some(f) = first_out {
            res.out_span_cycles = last_out - f + 1;
        }
        res
    }
}

/// The reference side of a run: the tenants as programmed and the flow table.
pub struct EncapModel {
    pub tenants: Vec<TxTenant>,
    pub sel: Selector,
}

impl EncapModel {
    pub fn new(tenants: Vec<TxTenant>) -> Self {
        EncapModel { tenants, sel: Selector::default() }
    }
    /// What the card must send for `frames`, given when each first beat entered.
    /// (Mapping lookups all miss: for tenants without mapping.)
    pub fn expect(&mut self, frames: &[TxFrame], start_times: &[u32]) -> Vec<TxResult> {
        self.expect_with(frames, start_times, &mut |_, _| None)
    }
    /// The same, with `lookup` answering the mapping lookups in frame order.
    pub fn expect_with(&mut self, frames: &[TxFrame], start_times: &[u32], lookup: MapLookupFn) -> Vec<TxResult> {
        assert_eq!(frames.len(), start_times.len(), "not every frame entered the card");
        frames
            .iter()
            .zip(start_times)
            .map(|(f, &t)| transmit(&mut self.sel, f.tenant, &self.tenants[f.tenant], &f.data, f.in_len, t, lookup))
            .collect()
    }
}

/// A tenant context for tests: distinct addresses per tenant.
pub fn test_tenant(t: usize, policy: Policy) -> TxTenant {
    let t8 = t as u8;
    TxTenant {
        enabled: true,
        ctx: TunnelContext {
            vni: 0x10_0000 + 0x111 * t as u32,
            outer_src_mac: [0x02, 0xaa, 0x10, 0x20, 0x30, t8],
            next_hop_mac: [0x02, 0xbb, 0xc0, 0xd0, 0xe0, t8],
            outer_src_ip: [10, 0, t8, 1],
            outer_dst_ip: [192, 168, 200, 7 + t8],
            ttl: 64 - t8,
        },
        policy,
        paths: PathTable::spread(t as u16 * 3),
        use_mapping: false,
    }
}

/// Point an IP frame at another inner destination (IPv4 `v4` or IPv6 `v6`,
/// the header checksum of IPv4 kept right); other frames are left alone.
pub fn set_inner_destination(f: &mut [u8], v4: [u8; 4], v6: [u8; 16]) {
    let be16 = |f: &[u8], o: usize| f.get(o..o + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let (mut off, mut et) = (14, be16(f, 12));
    if et == Some(ETHERTYPE_VLAN) {
        et = be16(f, 16);
        off = 18;
    }
    if et == Some(ETHERTYPE_IPV4) && f.len() >= off + 20 {
        f[off + 16..off + 20].copy_from_slice(&v4);
        let ihl = (f[off] & 15) as usize * 4;
        if ihl >= 20 && f.len() >= off + ihl {
            f[off + 10..off + 12].fill(0);
            let ck = internet_checksum(&f[off..off + ihl]);
            f[off + 10..off + 12].copy_from_slice(&ck.to_be_bytes());
        }
    } else if et == Some(ETHERTYPE_IPV6) && f.len() >= off + 40 {
        f[off + 24..off + 40].copy_from_slice(&v6);
    }
}

/// The Verilated encapsulation block with a Verilated tagged cache on its
/// map_* port, behind [`BlockSim`] (ports are the encapsulation block's):
/// every cycle the block's map_req_* go to the cache's req_*, the cache's
/// combinational req_ready and its rsp_* come back, both are evaluated and
/// then clocked together. The cache's miss port is always ready; the misses
/// it carries are collected in `misses`. The cache's BAR0 port is reached
/// with the `cache_*` methods.
pub struct EncapWithCache {
    pub encap: VerilatedBlock,
    pub cache: VerilatedBlock,
    /// (tag, key) of every miss the cache queued for the host, in order.
    pub misses: Vec<(u8, u32)>,
}

impl EncapWithCache {
    pub fn new() -> Self {
        let mut s = EncapWithCache {
            encap: VerilatedBlock::new("geneve_encap"),
            cache: VerilatedBlock::new("tagged_cache"),
            misses: vec![],
        };
        s.cache.set("bar_wr_mask", 0xFFFF_FFFF);
        s.cache.set("miss_ready", 1);
        s
    }

    pub fn cache_write_reg(&mut self, offset: u32, value: u32) {
        self.cache.set("bar_addr", (offset / 4) as u64);
        self.cache.set("bar_wr_data", value as u64);
        self.cache.set("bar_wr_en", 1);
        self.tick();
        self.cache.set("bar_wr_en", 0);
    }

    /// Reads take a cycle: the cache registers its first read stage.
    pub fn cache_read_reg(&mut self, offset: u32) -> u32 {
        self.cache.set("bar_addr", (offset / 4) as u64);
        self.tick();
        self.eval();
        self.cache.get("bar_rd_data") as u32
    }

    /// Wait while the cache clears its RAMs after reset (or reassigns ways).
    pub fn cache_wait_idle(&mut self) {
        for _ in 0..100_000 {
            if self.cache_read_reg(cache::CACHE_STATUS) & cache::STATUS_BUSY == 0 {
                return;
            }
            self.tick();
        }
        panic!("tagged cache stays busy");
    }

    /// An operation through the cache's BAR0 registers (the driver's slow
    /// path, the register sequence of `CacheBlock::bar_op`): (hit, value).
    pub fn cache_op(&mut self, op: u32, tag: u8, key: u32, value: u32) -> (bool, u32) {
        self.cache_write_reg(cache::CACHE_OP_KEY, key);
        self.cache_write_reg(cache::CACHE_OP_VALUE, value);
        self.cache_write_reg(cache::CACHE_OP, op | (tag as u32) << 8);
        for _ in 0..10_000 {
            let r = self.cache_read_reg(cache::CACHE_OP_RESULT);
            if r & cache::RESULT_DONE != 0 {
                return (r & cache::RESULT_HIT != 0, self.cache_read_reg(cache::CACHE_OP_RESULT_VALUE));
            }
            self.tick();
        }
        panic!("BAR0 cache operation did not complete");
    }

    /// Answer a miss: store the mapping for (tag, key).
    pub fn cache_fill(&mut self, tag: u8, key: u32, value: u32) {
        self.cache_op(cache::OP_FILL, tag, key, value);
    }
}

impl Default for EncapWithCache {
    fn default() -> Self {
        Self::new()
    }
}

impl BlockSim for EncapWithCache {
    fn set(&mut self, port: &str, v: u64) {
        self.encap.set(port, v);
    }
    fn get(&self, port: &str) -> u64 {
        self.encap.get(port)
    }
    fn eval(&mut self) {
        self.encap.eval();
        for (from, to) in [
            ("map_req_valid", "req_valid"),
            ("map_req_tag", "req_tag"),
            ("map_req_key", "req_key"),
            ("map_req_op", "req_op"),
            ("map_req_value", "req_value"),
        ] {
            self.cache.set(to, self.encap.get(from));
        }
        self.cache.eval();
        for (from, to) in [
            ("req_ready", "map_req_ready"),
            ("rsp_valid", "map_rsp_valid"),
            ("rsp_hit", "map_rsp_hit"),
            ("rsp_value", "map_rsp_value"),
        ] {
            self.encap.set(to, self.cache.get(from));
        }
        self.encap.eval();
    }
    fn tick(&mut self) {
        self.eval();
        if self.cache.get("miss_valid") != 0 {
            self.misses.push((self.cache.get("miss_tag") as u8, self.cache.get("miss_key") as u32));
        }
        self.encap.tick();
        self.cache.tick();
    }
    fn cycles(&self) -> u64 {
        self.encap.cycles()
    }
}

/// A random inner frame of exactly `len` bytes: Ethernet, VLAN tag or not,
/// then IPv4 (sometimes with options), IPv6 or a non-IP ethertype, with
/// TCP, UDP or another protocol; headers longer than `len` are cut.
pub fn random_frame(rng: &mut SmallRng, len: usize) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, rng.gen(), 0x02, 0, 0, 0, 0, rng.gen()];
    if rng.gen() {
        f.extend_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
        f.extend_from_slice(&[0x00, rng.gen_range(1..100)]);
    }
    let kind = rng.gen_range(0..10);
    let proto = [6u8, 17, 1, 47][rng.gen_range(0..4)];
    if kind < 5 {
        let ihl = if rng.gen_bool(0.2) { rng.gen_range(6..=15) } else { 5 };
        f.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        let mut ip = vec![0u8; ihl * 4];
        ip[0] = 0x40 | ihl as u8;
        ip[2..4].copy_from_slice(&((len.saturating_sub(f.len() + 2)) as u16).to_be_bytes());
        ip[8] = 64;
        ip[9] = proto;
        rng.fill(&mut ip[12..20]);
        let ck = internet_checksum(&ip);
        ip[10..12].copy_from_slice(&ck.to_be_bytes());
        f.extend(ip);
    } else if kind < 9 {
        f.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
        let mut ip = vec![0u8; 40];
        ip[0] = 0x60;
        ip[6] = proto;
        ip[7] = 64;
        rng.fill(&mut ip[8..40]);
        f.extend(ip);
    } else {
        f.extend_from_slice(&0x88B5u16.to_be_bytes());
    }
    let mut l4 = [0u8; 20];
    rng.fill(&mut l4[..4]);
    f.extend_from_slice(&l4);
    while f.len() < len {
        f.push(rng.gen());
    }
    f.truncate(len);
    f
}

/// The block in rust-hdl's own simulator behind the same [`BlockSim`]
/// contract as the Verilated block (for the differential test).
pub type RustHdlEncap = crate::rusthdl_block::RustHdlBlock<GeneveEncap>;

impl crate::rusthdl_block::NamedPorts for GeneveEncap {
    const NAME: &'static str = "geneve_encap";
    fn set_port(&mut self, port: &str, v: u64) -> bool {
        let u = self;
        match port {
            "reset" => u.reset.next = v != 0,
            "in_data" => u.in_data.next = v.to_bits(),
            "in_bytes" => u.in_bytes.next = v.to_bits(),
            "in_last" => u.in_last.next = v != 0,
            "in_valid" => u.in_valid.next = v != 0,
            "in_tenant" => u.in_tenant.next = v.to_bits(),
            "in_len" => u.in_len.next = v.to_bits(),
            "out_ready" => u.out_ready.next = v != 0,
            "bar_addr" => u.bar.addr.next = v.to_bits(),
            "bar_wr_en" => u.bar.wr_en.next = v != 0,
            "bar_wr_data" => u.bar.wr_data.next = v.to_bits(),
            "bar_wr_mask" => u.bar.wr_mask.next = v.to_bits(),
            "map_req_ready" => u.map_req_ready.next = v != 0,
            "map_rsp_valid" => u.map_rsp_valid.next = v != 0,
            "map_rsp_hit" => u.map_rsp_hit.next = v != 0,
            "map_rsp_value" => u.map_rsp_value.next = v.to_bits(),
            _ => return false,
        }
        true
    }
    fn get_port(&self, port: &str) -> Option<u64> {
        let u = self;
        match port {
            "in_ready" => Some(u.in_ready.val() as u64),
            "out_data" => Some(u.out_data.val().to_u64()),
            "out_bytes" => Some(u.out_bytes.val().to_u64()),
            "out_last" => Some(u.out_last.val() as u64),
            "out_valid" => Some(u.out_valid.val() as u64),
            "bar_rd_data" => Some(u.bar.rd_data.val().to_u64()),
            "map_req_valid" => Some(u.map_req_valid.val() as u64),
            "map_req_tag" => Some(u.map_req_tag.val().to_u64()),
            "map_req_key" => Some(u.map_req_key.val().to_u64()),
            "map_req_op" => Some(u.map_req_op.val().to_u64()),
            "map_req_value" => Some(u.map_req_value.val().to_u64()),
            _ => None,
        }
    }
    fn clock_signal(&mut self) -> &mut Signal<In, Clock> {
        &mut self.clock
    }
}


/// Throughput of the Verilated block for back-to-back frames of `len`
/// bytes with the output always ready: output beats per cycle from the
/// first output beat to the last (1.0 is full rate), over `frames` frames.
/// Also checks every frame against the reference model.
pub fn beats_per_cycle(len: usize, frames: usize) -> f64 {
    let mut rng = SmallRng::seed_from_u64(len as u64);
    let tenant = test_tenant(0, Policy::PerFlow);
    let mut b = EncapBench::new(VerilatedBlock::new("geneve_encap"));
    b.program_tenant(0, &tenant);
    let fs: Vec<TxFrame> = (0..frames).map(|_| TxFrame::new(0, random_frame(&mut rng, len))).collect();
    let r = b.run(&fs, frames, RunOpts::default());
    let want = EncapModel::new(vec![tenant]).expect(&fs, &r.start_times);
    for (i, (got, w)) in r.packets.iter().zip(&want).enumerate() {
        assert_eq!(Some(got), w.packet.as_ref(), "frame {i} of {len} bytes differs from the reference");
    }
    r.out_beats as f64 / r.out_span_cycles as f64
}


/// One elephant flow (1500-byte frames) of a tenant with `policy` through
/// the Verilated encapsulation block, its path table found by path
/// discovery on the 8-path fabric model, each packet routed by the fabric's
/// ECMP hashing: the packets per path. This is the hardware's own path
/// choice (the bench's full policy table uses the reference selector the
/// block matches packet for packet).
pub fn hardware_path_load(policy: Policy, packets: usize) -> Vec<f64> {
    hardware_path_run(policy, packets).0
}

/// [`hardware_path_load`] and the packets the block sent (outer frames, in
/// order), for a capture.
pub fn hardware_path_run(policy: Policy, packets: usize) -> (Vec<f64>, Vec<Vec<u8>>) {
    use offcard_net::fabric::{discover_path_table, Fabric, FabricConfig};
    let fabric = Fabric::new(FabricConfig::default_8_paths());
    let mut cfg = test_tenant(0, policy);
    let ports = discover_path_table(&fabric, &cfg.ctx).expect("every path reachable");
    cfg.paths.ports.copy_from_slice(&ports[..8]);
    let mut b = EncapBench::new(VerilatedBlock::new("geneve_encap"));
    b.program_tenant(0, &cfg);
    let frames: Vec<TxFrame> =
        (0..packets as u32).map(|seq| TxFrame::new(0, offcard_net::workload::inner_frame(1, seq, 0, 1500))).collect();
    let res = b.run(&frames, packets, RunOpts::default());
    let mut load = vec![0f64; fabric.path_count()];
    for p in &res.packets {
        load[fabric.path_of(p).expect("IPv4 outer packet")] += 1.0;
    }
    (load, res.packets)
}
