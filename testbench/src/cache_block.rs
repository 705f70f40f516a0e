//! The tagged cache block (`hdl/src/tagged_cache.rs`) driven through its
//! Verilated block model: request port, BAR0 registers, miss port. Used by
//! the block tests, the isolation experiment on hardware and `offcard bench
//! cache`. Any [`BlockSim`] works, so rust-hdl's simulator can stand in for
//! the differential test.

use crate::cache_model::TagCache;
use offcard_regs::cache as c;
use offcard_sim::{BlockSim, VerilatedBlock};

/// One request on the cache's request port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    pub op: u32,
    pub tag: u8,
    pub key: u32,
    pub value: u32,
}

/// A response: three cycles after its request was accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Response {
    pub op: u32,
    pub tag: u8,
    pub key: u32,
    pub hit: bool,
    pub value: u32,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockCounters {
    pub hits: u32,
    pub misses: u32,
    pub fills: u32,
    pub evictions: u32,
    pub occupancy: u32,
}

pub struct CacheBlock<S: BlockSim = VerilatedBlock> {
    pub sim: S,
    /// Misses taken from the miss port (when `drain_misses` is on).
    pub misses: Vec<(u8, u32)>,
    pub drain_misses: bool,
}

impl CacheBlock<VerilatedBlock> {
    /// The Verilated block, reset and cleared (ready for requests).
    pub fn new() -> Self {
        Self::with_sim(VerilatedBlock::new("tagged_cache"))
    }
}

impl Default for CacheBlock<VerilatedBlock> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: BlockSim> CacheBlock<S> {
    pub fn with_sim(sim: S) -> Self {
        let mut b = CacheBlock { sim, misses: Vec::new(), drain_misses: true };
        b.sim.set("bar_wr_mask", 0xffff_ffff);
        b.wait_idle();
        b
    }

    /// One cycle: offer `req` (if any), return whether it was accepted and
    /// the response leaving this cycle.
    pub fn step(&mut self, req: Option<Request>) -> (bool, Option<Response>) {
        let s = &mut self.sim;
        match req {
            Some(r) => {
                s.set("req_valid", 1);
                s.set("req_op", r.op as u64);
                s.set("req_tag", r.tag as u64);
                s.set("req_key", r.key as u64);
                s.set("req_value", r.value as u64);
            }
            None => s.set("req_valid", 0),
        }
        s.set("miss_ready", self.drain_misses as u64);
        s.eval();
        let accepted = req.is_some() && s.get("req_ready") == 1;
        let rsp = (s.get("rsp_valid") == 1).then(|| Response {
            op: s.get("rsp_op") as u32,
            tag: s.get("rsp_tag") as u8,
            key: s.get("rsp_key") as u32,
            hit: s.get("rsp_hit") == 1,
            value: s.get("rsp_value") as u32,
        });
        if self.drain_misses && s.get("miss_valid") == 1 {
            self.misses.push((s.get("miss_tag") as u8, s.get("miss_key") as u32));
        }
        s.tick();
        s.set("req_valid", 0);
        (accepted, rsp)
    }

    /// Issue one request and wait for its response.
    pub fn request(&mut self, req: Request) -> Response {
        let mut sent = false;
        for _ in 0..10_000 {
            let (acc, rsp) = self.step(if sent { None } else { Some(req) });
            sent |= acc;
            if let Some(r) = rsp {
                return r;
            }
        }
        panic!("tagged cache: no response to {req:?}");
    }

    pub fn lookup(&mut self, tag: u8, key: u32) -> Option<u32> {
        let r = self.request(Request { op: c::OP_LOOKUP, tag, key, value: 0 });
        r.hit.then_some(r.value)
    }

    pub fn fill(&mut self, tag: u8, key: u32, value: u32) {
        self.request(Request { op: c::OP_FILL, tag, key, value });
    }

    /// Requests back to back, one offered per cycle while the cache accepts;
    /// returns the responses in order and the cycles taken.
    pub fn stream(&mut self, reqs: &[Request]) -> (Vec<Response>, u64) {
        let start = self.sim.cycles();
        let mut out = Vec::with_capacity(reqs.len());
        let mut i = 0;
        while out.len() < reqs.len() {
            let (acc, rsp) = self.step(reqs.get(i).copied());
            if acc {
                i += 1;
            }
            if let Some(r) = rsp {
                out.push(r);
            }
            assert!(self.sim.cycles() - start < 10 * reqs.len() as u64 + 10_000, "tagged cache stopped answering");
        }
        (out, self.sim.cycles() - start)
    }

    pub fn write_reg(&mut self, offset: u32, value: u32) {
        let s = &mut self.sim;
        s.set("bar_addr", (offset / 4) as u64);
        s.set("bar_wr_data", value as u64);
        s.set("bar_wr_en", 1);
        s.set("req_valid", 0);
        s.tick();
        s.set("bar_wr_en", 0);
    }

    /// Reads take a cycle: the cache registers its first read stage.
    pub fn read_reg(&mut self, offset: u32) -> u32 {
        self.sim.set("bar_addr", (offset / 4) as u64);
        self.sim.set("req_valid", 0);
        self.sim.tick();
        self.sim.eval();
        self.sim.get("bar_rd_data") as u32
    }

    /// Wait while the cache clears its RAMs or reassigns ways.
    pub fn wait_idle(&mut self) {
        for _ in 0..100_000 {
            if self.read_reg(c::CACHE_STATUS) & c::STATUS_BUSY == 0 {
                return;
            }
            self.step(None);
        }
        panic!("tagged cache stays busy");
    }

    /// Give `tag` the ways in `mask` (safe reassignment; waits for it).
    pub fn set_mask(&mut self, tag: u8, mask: u8) {
        self.wait_idle();
        self.write_reg(c::CACHE_MASK_BASE + 4 * tag as u32, mask as u32);
        self.wait_idle();
        assert_eq!(self.read_reg(c::CACHE_STATUS) & c::STATUS_MASK_DROPPED, 0, "mask write dropped");
    }

    pub fn set_partitioned(&mut self, on: bool) {
        self.write_reg(c::CACHE_CTRL, on as u32);
    }

    pub fn counters(&mut self, tag: u8) -> BlockCounters {
        self.write_reg(c::CACHE_CNT_SEL, tag as u32);
        BlockCounters {
            hits: self.read_reg(c::CACHE_CNT_HITS),
            misses: self.read_reg(c::CACHE_CNT_MISSES),
            fills: self.read_reg(c::CACHE_CNT_FILLS),
            evictions: self.read_reg(c::CACHE_CNT_EVICTIONS),
            occupancy: self.read_reg(c::CACHE_CNT_OCCUPANCY),
        }
    }

    /// An operation through BAR0 (the driver's path): returns (hit, value).
    pub fn bar_op(&mut self, op: u32, tag: u8, key: u32, value: u32) -> (bool, u32) {
        self.write_reg(c::CACHE_OP_KEY, key);
        self.write_reg(c::CACHE_OP_VALUE, value);
        self.write_reg(c::CACHE_OP, op | (tag as u32) << 8);
        for _ in 0..10_000 {
            let r = self.read_reg(c::CACHE_OP_RESULT);
            if r & c::RESULT_DONE != 0 {
                return (r & c::RESULT_HIT != 0, self.read_reg(c::CACHE_OP_RESULT_VALUE));
            }
            self.step(None);
        }
        panic!("BAR0 cache operation did not complete");
    }
}

impl<S: BlockSim> TagCache for CacheBlock<S> {
    fn ways(&self) -> usize {
        c::WAYS as usize
    }
    fn set_of(&self, key: u32) -> usize {
        c::set_of(key) as usize
    }
    fn access(&mut self, tag: u8, key: u32) -> bool {
        if self.lookup(tag, key).is_some() {
            return true;
        }
        self.fill(tag, key, 0);
        false
    }
}

/// The same block in rust-hdl's own simulator, behind [`BlockSim`], for the
/// differential test.
pub type RustHdlCache = crate::rusthdl_block::RustHdlBlock<offcard_hdl::tagged_cache::TaggedCache>;

impl crate::rusthdl_block::NamedPorts for offcard_hdl::tagged_cache::TaggedCache {
    const NAME: &'static str = "tagged_cache";
    fn set_port(&mut self, port: &str, v: u64) -> bool {
        use offcard_hdl::rust_hdl::prelude::*;
        let u = self;
        match port {
            "reset" => u.reset.next = v != 0,
            "req_valid" => u.req_valid.next = v != 0,
            "req_op" => u.req_op.next = v.to_bits(),
            "req_tag" => u.req_tag.next = v.to_bits(),
            "req_key" => u.req_key.next = v.to_bits(),
            "req_value" => u.req_value.next = v.to_bits(),
            "miss_ready" => u.miss_ready.next = v != 0,
            "bar_addr" => u.bar.addr.next = v.to_bits(),
            "bar_wr_en" => u.bar.wr_en.next = v != 0,
            "bar_wr_data" => u.bar.wr_data.next = v.to_bits(),
            "bar_wr_mask" => u.bar.wr_mask.next = v.to_bits(),
            _ => return false,
        }
        true
    }
    fn get_port(&self, port: &str) -> Option<u64> {
        let u = self;
        match port {
            "req_ready" => Some(u.req_ready.val() as u64),
            "rsp_valid" => Some(u.rsp_valid.val() as u64),
            "rsp_op" => Some(u.rsp_op.val().to_u64()),
            "rsp_tag" => Some(u.rsp_tag.val().to_u64()),
            "rsp_key" => Some(u.rsp_key.val().to_u64()),
            "rsp_hit" => Some(u.rsp_hit.val() as u64),
            "rsp_value" => Some(u.rsp_value.val().to_u64()),
            "miss_valid" => Some(u.miss_valid.val() as u64),
            "miss_tag" => Some(u.miss_tag.val().to_u64()),
            "miss_key" => Some(u.miss_key.val().to_u64()),
            "bar_rd_data" => Some(u.bar.rd_data.val().to_u64()),
            _ => None,
        }
    }
    fn clock_signal(&mut self) -> &mut offcard_hdl::rust_hdl::prelude::Signal<offcard_hdl::rust_hdl::prelude::In, offcard_hdl::rust_hdl::prelude::Clock> {
        &mut self.clock
    }
}

/// Output ports compared by the differential test.
pub const OUTPUTS: &[&str] = &[
    "req_ready", "rsp_valid", "rsp_op", "rsp_tag", "rsp_key", "rsp_hit", "rsp_value", "miss_valid", "miss_tag",
    "miss_key", "bar_rd_data",
];

/// The cache through the driver (BAR0 operations over the simulated card or
/// a real one), for the demo.
pub struct DriverCache<'a, 'b, T: offcard_driver::CardTransport>(pub &'b mut offcard_driver::CacheCtl<'a, T>);

impl<T: offcard_driver::CardTransport> TagCache for DriverCache<'_, '_, T> {
    fn ways(&self) -> usize {
        self.0.geometry().ways as usize
    }
    fn set_of(&self, key: u32) -> usize {
        c::set_of(key) as usize
    }
    fn access(&mut self, tag: u8, key: u32) -> bool {
        if self.0.lookup(tag, key).expect("cache lookup").is_some() {
            return true;
        }
        self.0.fill(tag, key, key ^ 0x0a00_0000).expect("cache fill");
        false
    }
}

/// Two tenants sharing the cache: tenant `a` reuses a working set that
/// fits half the ways, tenant `b` streams through keys it never reuses (a
/// scan, the classic polluter). Returns the hit rates of a and b. With
/// partitioning (a and b on disjoint halves) b cannot evict a's lines.
pub fn two_tenant_workload<C: TagCache>(cache: &mut C, a: u8, b: u8, accesses: usize, seed: u64) -> (f64, f64) {
    let mut x = seed | 1;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    // Working set of a: 3 lines per set over all sets (fits 4 ways).
    let sets = c::SETS as usize;
    let mut by_set: Vec<Vec<u32>> = vec![Vec::new(); sets];
    let mut k = 1u32;
    while by_set.iter().any(|v| v.len() < 3) {
        let s = cache.set_of(k);
        if by_set[s].len() < 3 {
            by_set[s].push(k);
        }
        k += 1;
    }
    let work: Vec<u32> = by_set.into_iter().flatten().collect();
    let mut scan = 0x4000_0000u32;
    let (mut ha, mut na, mut hb, mut nb) = (0usize, 0usize, 0usize, 0usize);
    for i in 0..accesses {
        if i % 2 == 0 {
            let key = work[(rnd() % work.len() as u64) as usize];
            na += 1;
            ha += cache.access(a, key) as usize;
        } else {
            scan = scan.wrapping_add(1);
            nb += 1;
            hb += cache.access(b, scan) as usize;
        }
    }
    (ha as f64 / na.max(1) as f64, hb as f64 / nb.max(1) as f64)
}

/// Figures of `offcard bench cache`.
#[derive(Clone, Debug)]
pub struct CacheBenchFigures {
    pub lookups_per_cycle: f64,
    pub lookup_latency_cycles: u64,
    pub hit_rate_a_partitioned: f64,
    pub hit_rate_b_partitioned: f64,
    pub hit_rate_a_shared: f64,
    pub hit_rate_b_shared: f64,
    pub leak_bits_partitioned: f64,
    pub leak_bits_shared: f64,
    pub mi_partitioned: f64,
    pub mi_threshold_partitioned: f64,
    pub mi_shared: f64,
    pub mi_threshold_shared: f64,
    pub trials: usize,
}

/// Measure the Verilated cache block: lookup throughput and latency, the
/// two-tenant workload partitioned and shared, and the information the
/// prime-and-probe attacker gains per trial above the shuffled threshold.
pub fn cache_bench(progress: &mut dyn FnMut(&str)) -> CacheBenchFigures {
    progress("lookup throughput: 200,000 lookups back to back");
    let mut hw = CacheBlock::new();
    let n = 200_000u32;
    let reqs: Vec<Request> = (0..n)
        .map(|i| Request { op: c::OP_LOOKUP, tag: (i % 16) as u8, key: i.wrapping_mul(2654435761) % 4096, value: 0 })
        .collect();
    let (_, cycles) = hw.stream(&reqs);
    let lat = {
        let mut h = CacheBlock::new();
        let t0 = h.sim.cycles();
        h.lookup(0, 1);
        h.sim.cycles() - t0
    };
    progress("two tenants, partitioned (4 + 4 ways) and shared");
    let mut part = CacheBlock::new();
    part.set_mask(1, 0x0f);
    part.set_mask(2, 0xf0);
    let (pa, pb) = two_tenant_workload(&mut part, 1, 2, 60_000, 5);
    let mut shared = CacheBlock::new();
    shared.set_partitioned(false);
    let (sa, sb) = two_tenant_workload(&mut shared, 1, 2, 60_000, 5);
    let trials = 4000;
    progress("prime and probe, partitioned and shared (4,000 trials each)");
    let mut p = CacheBlock::new();
    p.set_mask(1, 0x0f);
    p.set_mask(2, 0xf0);
    let (mp, tp) = crate::cache_model::prime_probe(&mut p, 1, 2, trials, 11);
    let mut s = CacheBlock::new();
    s.set_partitioned(false);
    let (ms, ts) = crate::cache_model::prime_probe(&mut s, 1, 2, trials, 11);
    CacheBenchFigures {
        lookups_per_cycle: n as f64 / cycles as f64,
        lookup_latency_cycles: lat,
        hit_rate_a_partitioned: pa,
        hit_rate_b_partitioned: pb,
        hit_rate_a_shared: sa,
        hit_rate_b_shared: sb,
        leak_bits_partitioned: (mp - tp).max(0.0),
        leak_bits_shared: (ms - ts).max(0.0),
        mi_partitioned: mp,
        mi_threshold_partitioned: tp,
        mi_shared: ms,
        mi_threshold_shared: ts,
        trials,
    }
}
