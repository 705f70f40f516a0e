//! The tagged cache in hardware (Verilated block) against the reference
//! model, hit for hit; isolation (prime and probe) measured on the hardware;
//! mask changes at random times; one lookup per cycle; the miss queue.

use offcard_hdl::regmap::cache as c;
use offcard_testbench::cache_block::{CacheBlock, Request};
use offcard_testbench::cache_model::{prime_probe, CacheModel};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Random lookups and fills of several tags, streamed back to back (so the
/// pipeline's bypass is exercised on every same-set pair), with masks and
/// the partitioning switch changed at random points: every response and
/// every counter equals the model's.
#[test]
fn random_streams_agree_with_the_model_hit_for_hit() {
    let mut hw = CacheBlock::new();
    let mut m = CacheModel::card();
    let mut rng = Rng(0x5eed_cafe);
    let mut hits = 0;
    let mut total = 0;
    for round in 0..60 {
        // A burst of requests over a small key space (many same-set conflicts).
        let n = 50 + rng.next() % 400;
        let reqs: Vec<Request> = (0..n)
            .map(|_| {
                let tag = (rng.next() % 4) as u8;
                let key = ((rng.next() % 24) as u32).wrapping_mul(0x41) ^ (rng.next() % 2) as u32;
                let op = if rng.next() % 3 == 0 { c::OP_FILL } else { c::OP_LOOKUP };
                Request { op, tag, key, value: rng.next() as u32 }
            })
            .collect();
        let (rsps, _) = hw.stream(&reqs);
        for (q, r) in reqs.iter().zip(&rsps) {
            assert_eq!((r.op, r.tag, r.key), (q.op, q.tag, q.key), "responses out of order");
            if q.op == c::OP_LOOKUP {
                let want = m.lookup(q.tag, q.key);
                assert_eq!(r.hit.then_some(r.value), want, "round {round}: lookup tag {} key {:#x}", q.tag, q.key);
                hits += want.is_some() as u32;
                total += 1;
            } else {
                m.fill(q.tag, q.key, q.value);
            }
        }
        // Between bursts: a mask change or a partitioning switch, sometimes.
        match rng.next() % 4 {
            0 => {
                let tag = (rng.next() % 4) as u8;
                let mask = (rng.next() & 0xff) as u8;
                hw.set_mask(tag, mask);
                m.set_mask(tag, mask as u64);
            }
            1 => {
                let on = rng.next() % 4 != 0;
                hw.set_partitioned(on);
                m.shared = !on;
            }
            _ => {}
        }
    }
    for t in 0..4u8 {
        let h = hw.counters(t);
        let mc = m.counters[t as usize];
        assert_eq!(
            (h.hits as u64, h.misses as u64, h.fills as u64, h.evictions as u64),
            (mc.hits, mc.misses, mc.fills, mc.evictions),
            "counters of tag {t}"
        );
        assert_eq!(h.occupancy as usize, m.occupancy(t), "occupancy of tag {t}");
    }
    assert!(hits > total / 10 && hits < total, "a test that neither hits nor misses proves little: {hits}/{total}");
}

/// The prime-and-probe experiment run on the hardware: with partitioning
/// the attacker learns nothing above the shuffled-data threshold; with it
/// switched off the same experiment sees the victim.
#[test]
fn prime_and_probe_on_hardware_partitioned_leaks_nothing() {
    let mut hw = CacheBlock::new();
    hw.set_mask(1, 0x0f);
    hw.set_mask(2, 0xf0);
    let (mi_p, thr_p) = prime_probe(&mut hw, 1, 2, 600, 11);
    let mut shared = CacheBlock::new();
    shared.set_partitioned(false);
    let (mi_s, thr_s) = prime_probe(&mut shared, 1, 2, 600, 11);
    eprintln!("hardware prime+probe: partitioned {mi_p:.4} bits (threshold {thr_p:.4}), shared {mi_s:.4} (threshold {thr_s:.4})");
    assert!(mi_p <= thr_p + 1e-9, "partitioned hardware leaks: {mi_p} > {thr_p}");
    assert!(mi_s > thr_s + 0.5, "the experiment cannot see the shared-cache leak: {mi_s} vs {thr_s}");
}

/// Every tag fills the same keys with its own tag in the value; masks
/// change at random times, overlapping or not: a hit must always return the
/// requester's own value.
#[test]
fn mask_changes_never_let_a_tag_hit_another_tags_line() {
    let mut hw = CacheBlock::new();
    let mut rng = Rng(77);
    let mut hits = 0;
    for _ in 0..40 {
        let reqs: Vec<Request> = (0..200)
            .map(|_| {
                let tag = (rng.next() % 4) as u8;
                let key = (rng.next() % 24) as u32;
                let op = if rng.next() % 2 == 0 { c::OP_FILL } else { c::OP_LOOKUP };
                Request { op, tag, key, value: 0x1000 * tag as u32 + key }
            })
            .collect();
        let (rsps, _) = hw.stream(&reqs);
        for r in rsps.iter().filter(|r| r.op == c::OP_LOOKUP && r.hit) {
            assert_eq!(r.value, 0x1000 * r.tag as u32 + r.key, "tag {} hit a line filled by tag {}", r.tag, r.value >> 12);
            hits += 1;
        }
        let tag = (rng.next() % 4) as u8;
        hw.set_mask(tag, (rng.next() & 0xff) as u8);
    }
    assert!(hits > 500, "too few hits ({hits}) for the test to mean anything");
    // Without partitioning the same kind of stream does hit other tags' lines.
    hw.set_partitioned(false);
    for t in 0..4 {
        hw.set_mask(t, 0xff);
    }
    hw.fill(1, 5, 0x1005);
    assert_eq!(hw.lookup(2, 5), Some(0x1005), "shared baseline: tag 2 sees tag 1's line");
}

/// One lookup per cycle: a long back-to-back stream is accepted every
/// cycle and answered every cycle (3 cycles of latency).
#[test]
fn one_lookup_per_cycle() {
    let mut hw = CacheBlock::new();
    let reqs: Vec<Request> =
        (0..5000u32).map(|i| Request { op: c::OP_LOOKUP, tag: (i % 16) as u8, key: i % 700, value: 0 }).collect();
    let (rsps, cycles) = hw.stream(&reqs);
    assert_eq!(rsps.len(), reqs.len());
    assert_eq!(cycles, reqs.len() as u64 + 3, "the pipeline took a bubble");
}

/// Misses go out on the miss port in order; with the port blocked, the
/// FIFO fills, further misses are dropped and counted, lookups never stall;
/// BAR0 operations work alongside.
#[test]
fn misses_are_queued_for_the_host_and_overflow_is_counted() {
    let mut hw = CacheBlock::new();
    for k in 0..5u32 {
        assert_eq!(hw.lookup(3, 100 + k), None);
    }
    for _ in 0..4 {
        hw.step(None);
    }
    assert_eq!(hw.misses, (0..5).map(|k| (3u8, 100 + k)).collect::<Vec<_>>());
    hw.misses.clear();
    hw.drain_misses = false;
    let n = 40u32;
    let reqs: Vec<Request> = (0..n).map(|k| Request { op: c::OP_LOOKUP, tag: 4, key: 500 + k, value: 0 }).collect();
    let (_, cycles) = hw.stream(&reqs);
    assert_eq!(cycles, n as u64 + 3, "misses must not stall lookups (3 cycles of latency)");
    let dropped = hw.read_reg(c::CACHE_CNT_MISS_DROPPED);
    assert_eq!(dropped, n - c::MISS_FIFO_DEPTH, "misses beyond the FIFO are dropped and counted");
    hw.drain_misses = true;
    for _ in 0..40 {
        hw.step(None);
    }
    assert_eq!(hw.misses.len() as u32, c::MISS_FIFO_DEPTH);
    assert_eq!(hw.misses[0], (4, 500));
    // The driver's slow path: a fill through BAR0, then the lookup hits.
    assert_eq!(hw.bar_op(c::OP_FILL, 4, 500, 0x0a00_0001).0, false);
    assert_eq!(hw.bar_op(c::OP_LOOKUP, 4, 500, 0), (true, 0x0a00_0001));
    assert_eq!(hw.lookup(4, 500), Some(0x0a00_0001));
    assert_eq!(hw.lookup(5, 500), None, "another tag does not see it");
    assert_eq!(hw.read_reg(c::CACHE_GEOMETRY), c::SETS_LOG2 | c::WAYS << 8 | c::TAGS << 16);
    assert_eq!(hw.read_reg(0x2000), 0, "outside its range the cache reads 0");
}

/// A mask write while a reassignment runs is refused and flagged, never
/// half-applied.
#[test]
fn mask_write_while_busy_is_dropped_and_flagged() {
    let mut hw = CacheBlock::new();
    hw.write_reg(c::CACHE_MASK_BASE + 4, 0x0f);
    hw.write_reg(c::CACHE_MASK_BASE + 8, 0x03);
    hw.wait_idle();
    assert_ne!(hw.read_reg(c::CACHE_STATUS) & c::STATUS_MASK_DROPPED, 0);
    assert_eq!(hw.read_reg(c::CACHE_MASK_BASE + 4), 0x0f);
    assert_eq!(hw.read_reg(c::CACHE_MASK_BASE + 8), 0xff, "the dropped write changed nothing");
    hw.write_reg(c::CACHE_STATUS, 0);
    assert_eq!(hw.read_reg(c::CACHE_STATUS) & c::STATUS_MASK_DROPPED, 0);
}
