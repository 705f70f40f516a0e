//! The encapsulation pipeline's mapping-cache client (`encap_lookup`) on its
//! own, against a stand-in cache that answers from a table exactly two
//! cycles after it accepts (what `TaggedCache` promises): every lookup's
//! answer is the table's, the request carries the frame's tag and key with
//! `OP_LOOKUP`, frames that do not look up never reach the port, a cache
//! that refuses is given up after `MAP_READY_TIMEOUT` cycles and one that
//! accepts but never answers after 127, and every lookup ends in exactly one
//! of the three counter events. Also rust-hdl's simulator against Verilator.

use offcard_hdl::encap::lookup::EncapLookup;
use offcard_regs::{cache, encap};
use offcard_sim::{BlockSim, VerilatedBlock};
use offcard_testbench::encap_blocks::rusthdl_vs_verilator;
use rand::{rngs::SmallRng, Rng, SeedableRng};
use std::collections::{HashMap, VecDeque};

/// How the stand-in cache behaves.
#[derive(Clone, Copy)]
struct Cache {
    /// Probability it accepts an offered request in a cycle.
    ready: f64,
    /// It accepts but never answers (a broken cache).
    mute: bool,
}

/// What one frame's lookup came to.
#[derive(Debug, PartialEq)]
struct Outcome {
    /// Cycles `pending` was high.
    pending: u32,
    hit: bool,
    value: u32,
    /// (hit, miss, timeout) events.
    events: (u32, u32, u32),
    /// Requests the cache accepted.
    accepted: u32,
}

/// One frame: `start` with (want, tag, key), then run until `pending` falls
/// and a few cycles more (the header stage waits at least 8 cycles).
fn lookup(b: &mut dyn BlockSim, rng: &mut SmallRng, c: Cache, table: &HashMap<(u8, u32), u32>, want: bool, tag: u8, key: u32) -> Outcome {
    let mut due: VecDeque<(u32, bool, u32)> = VecDeque::new();
    let mut o = Outcome { pending: 0, hit: false, value: 0, events: (0, 0, 0), accepted: 0 };
    b.set("start", 1);
    b.set("want", want as u64);
    b.set("tag", tag as u64);
    b.set("key", key as u64);
    let mut quiet = 0;
    for cycle in 0u32.. {
        let ready = rng.gen_bool(c.ready);
        b.set("map_req_ready", ready as u64);
        let rsp = if due.front().is_some_and(|d| d.0 == cycle) { due.pop_front() } else { None };
        b.set("map_rsp_valid", rsp.is_some() as u64);
        b.set("map_rsp_hit", rsp.is_some_and(|r| r.1) as u64);
        b.set("map_rsp_value", rsp.map_or(rng.gen(), |r| r.2) as u64);
        b.eval();
        if cycle == 0 {
            // Registered: nothing is offered in the start cycle itself.
            assert_eq!(b.get("map_req_valid"), 0);
        }
        if b.get("map_req_valid") != 0 {
            assert!(want, "a frame that does not look up reached the cache");
            assert_eq!((b.get("map_req_tag") as u8, b.get("map_req_key") as u32), (tag, key));
            assert_eq!((b.get("map_req_op") as u32, b.get("map_req_value")), (cache::OP_LOOKUP, 0));
            if ready {
                o.accepted += 1;
                if !c.mute {
                    let v = table.get(&(tag, key)).copied();
                    due.push_back((cycle + 2, v.is_some(), v.unwrap_or(0)));
                }
            }
        }
        o.pending += b.get("pending") as u32;
        o.events.0 += b.get("ev_hit") as u32;
        o.events.1 += b.get("ev_miss") as u32;
        o.events.2 += b.get("ev_timeout") as u32;
        quiet = if cycle > 0 && b.get("pending") == 0 { quiet + 1 } else { 0 };
        if quiet > 8 {
            o.hit = b.get("hit") != 0;
            o.value = b.get("value") as u32;
            break;
        }
        b.tick();
        b.set("start", 0);
        assert!(cycle < 1000, "the lookup never ended");
    }
    o
}

/// Random frames against a table; returns (hits, misses).
fn random_lookups(b: &mut dyn BlockSim, seed: u64, n: usize, c: Cache) -> (u32, u32) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let table: HashMap<(u8, u32), u32> = (0..40).map(|_| ((rng.gen_range(0..4), rng.gen_range(0..32)), rng.gen())).collect();
    let (mut hits, mut misses) = (0, 0);
    for _ in 0..n {
        let want = rng.gen_bool(0.8);
        let (tag, key) = (rng.gen_range(0..4u8), rng.gen_range(0..32u32));
        let o = lookup(b, &mut rng, c, &table, want, tag, key);
        if !want {
            assert_eq!(o, Outcome { pending: 0, hit: false, value: o.value, events: (0, 0, 0), accepted: 0 });
            continue;
        }
        assert_eq!(o.accepted, 1, "one request per lookup");
        match table.get(&(tag, key)) {
            Some(&v) => {
                assert!(o.hit && o.value == v, "({tag}, {key}): {o:?}, table has {v:#x}");
                assert_eq!(o.events, (1, 0, 0));
                hits += 1;
            }
            None => {
                assert!(!o.hit, "({tag}, {key}) is not in the table: {o:?}");
                assert_eq!(o.events, (0, 1, 0));
                misses += 1;
            }
        }
    }
    (hits, misses)
}

#[test]
fn answers_come_from_the_cache_one_event_each() {
    let mut b = VerilatedBlock::new("encap_lookup");
    // A cache that accepts at once, then one that is slow to accept.
    for (seed, ready) in [(1, 1.0), (2, 0.3)] {
        let (hits, misses) = random_lookups(&mut b, seed, 600, Cache { ready, mute: false });
        assert!(hits > 100 && misses > 100, "{hits} hits, {misses} misses");
    }
}

#[test]
fn refused_and_unanswered_lookups_time_out() {
    let mut b = VerilatedBlock::new("encap_lookup");
    let mut rng = SmallRng::seed_from_u64(5);
    let table = HashMap::from([((1u8, 7u32), 0x6401_0007u32)]);
    // Never accepted: withdrawn after exactly MAP_READY_TIMEOUT cycles.
    let o = lookup(&mut b, &mut rng, Cache { ready: 0.0, mute: false }, &table, true, 1, 7);
    assert_eq!(o, Outcome { pending: encap::MAP_READY_TIMEOUT, hit: false, value: o.value, events: (0, 0, 1), accepted: 0 });
    // Accepted, never answered: given up when the 7-bit timer runs out.
    let o = lookup(&mut b, &mut rng, Cache { ready: 1.0, mute: true }, &table, true, 1, 7);
    assert_eq!(o, Outcome { pending: 128, hit: false, value: o.value, events: (0, 0, 1), accepted: 1 });
    // The next lookup is not disturbed by the one given up.
    let o = lookup(&mut b, &mut rng, Cache { ready: 1.0, mute: false }, &table, true, 1, 7);
    assert_eq!(o, Outcome { pending: 3, hit: true, value: 0x6401_0007, events: (1, 0, 0), accepted: 1 });
}

#[test]
fn rusthdl_and_verilator_agree_cycle_by_cycle() {
    let ((hits, misses), cycles) = rusthdl_vs_verilator::<EncapLookup, _>(|b| {
        let mut rng = SmallRng::seed_from_u64(9);
        let table = HashMap::new();
        lookup(b, &mut rng, Cache { ready: 0.0, mute: false }, &table, true, 2, 9);
        random_lookups(b, 8, 150, Cache { ready: 0.4, mute: false })
    });
    assert!(hits > 10 && misses > 10 && cycles > 1500, "{hits} hits, {misses} misses, {cycles} cycles");
}
