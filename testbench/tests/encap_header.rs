//! The encapsulation pipeline's header stage (`encap_header`) on its own:
//! tenant contexts are programmed through its context port (the driver's
//! register writes), frames of random tenants and lengths arrive from a
//! stand-in parser, a stand-in selector answers each decision with an
//! entropy value, a stand-in lookup answers at once, late (past the
//! checksum step) or not at all, and a stand-in output stage reads the
//! finished header word by word and releases it after a random wait.
//! Checked against `offcard_net::geneve::encapsulate`: every header is the
//! first 50 bytes of the reference's outer frame for that context, port and
//! destination (IPv4 checksum included, with destinations chosen so that
//! some sums need the checksum's second fold); the frame's steps come at their
//! cycles (five hash steps, the decision at pc 7, ten cycles a frame at
//! full rate) with the frame's tenant, time and the tenant's policy, gap and
//! bad paths; and the stage never runs more than one frame ahead of the
//! output. Also rust-hdl's simulator against Verilator.

use offcard_hdl::encap::header::EncapHeader;
use offcard_net::geneve::{encapsulate, OVERHEAD};
use offcard_net::path::Policy;
use offcard_net::tx::{TxTenant, MAX_FRAME, MIN_FRAME};
use offcard_regs::encap;
use offcard_sim::{BlockSim, VerilatedBlock};
use offcard_testbench::encap_bench::test_tenant;
use offcard_testbench::encap_blocks::rusthdl_vs_verilator;
use rand::{rngs::SmallRng, Rng, SeedableRng};

#[derive(Clone, Debug)]
struct Frame {
    tenant: usize,
    len: usize,
    time: u32,
    port: u16,
    /// Cycles the lookup stays pending after the take (0: no lookup).
    pending: u32,
    /// The lookup's answer: the outer destination on a hit.
    mapped: Option<u32>,
}

#[derive(Clone, Copy)]
struct Opts {
    seed: u64,
    /// The output stage releases a header up to this many cycles after it appears.
    release_wait: u32,
    /// The parser offers the next frame up to this many cycles after a take.
    parser_wait: u32,
}

fn program(b: &mut dyn BlockSim, tenants: &[TxTenant]) {
    for (t, cfg) in tenants.iter().enumerate() {
        let base = encap::TENANT_BASE + t as u32 * encap::TENANT_STRIDE;
        for (off, v) in cfg.context().register_writes(t) {
            let dw = (off - base) / 4;
            if dw < encap::T_CONTEXT_DWS {
                b.set("ctx_write", 1);
                b.set("ctx_tenant", t as u64);
                b.set("ctx_dw", dw as u64);
                b.set("ctx_data", v as u64);
                b.tick();
            }
        }
    }
    b.set("ctx_write", 0);
}

/// The header the reference puts in front of a frame.
fn reference(tenants: &[TxTenant], f: &Frame) -> Vec<u8> {
    let mut ctx = tenants[f.tenant].ctx;
    if let Some(v) = f.mapped {
        ctx.outer_dst_ip = v.to_be_bytes();
    }
    encapsulate(&vec![0; f.len], &ctx, f.port)[..OVERHEAD].to_vec()
}

/// Run the frames through; returns the cycles between consecutive takes.
fn run(b: &mut dyn BlockSim, tenants: &[TxTenant], frames: &[Frame], o: Opts) -> Vec<u64> {
    let mut rng = SmallRng::seed_from_u64(o.seed);
    program(b, tenants);
    let (mut offered, mut taken, mut released) = (0usize, 0usize, 0usize);
    let mut offer_at = 0u64;
    let mut take_cycles: Vec<u64> = vec![];
    // The lookup of the frame in progress: (pending until, hit, value).
    let mut map = (0u64, false, 0u32);
    let mut release_at: Option<u64> = None;
    let mut steps = vec![];
    for cycle in 0u64.. {
        let valid = offered < frames.len() && cycle >= offer_at;
        b.set("next_valid", valid as u64);
        if valid {
            let f = &frames[offered];
            b.set("next_tenant", f.tenant as u64);
            b.set("next_len", f.len as u64);
            b.set("next_time", f.time as u64);
        } else {
            b.set("next_tenant", rng.gen_range(0..16));
            b.set("next_len", rng.gen_range(0..1 << 14));
            b.set("next_time", rng.gen::<u32>() as u64);
        }
        let pending = cycle < map.0;
        b.set("map_pending", pending as u64);
        b.set("map_hit", (!pending && map.1) as u64);
        b.set("map_value", if !pending && map.1 { map.2 } else { rng.gen() } as u64);
        b.set("hdr_release", 0);
        b.set("hdr_index", 0);
        b.eval();
        let k = taken.wrapping_sub(1); // the frame in progress
        if b.get("step") != 0 {
            steps.push(cycle);
        }
        if b.get("decide") != 0 {
            let f = &frames[k];
            assert_eq!(cycle, take_cycles[k] + 8, "frame {k}: the decision is at pc 7");
            let p = tenants[f.tenant].policy;
            assert_eq!(
                [b.get("tenant"), b.get("frame_time"), b.get("policy"), b.get("gap"), b.get("bad")],
                [f.tenant as u64, f.time as u64, p.code() as u64, p.gap() as u64, tenants[f.tenant].paths.bad as u64],
                "frame {k}: what select is given"
            );
            // Five hash steps, right after the take.
            let t = take_cycles[k];
            assert_eq!(steps, (t + 1..t + 6).collect::<Vec<_>>(), "frame {k}: hash steps");
            steps.clear();
        }
        // Select's answer, from the cycle after the decision.
        if taken > 0 && cycle > take_cycles[k] + 7 {
            b.set("port", frames[k].port as u64);
        } else {
            b.set("port", rng.gen::<u16>() as u64);
        }
        b.eval();
        // The output stage reads the finished header and releases it later.
        if b.get("hdr_valid") != 0 {
            let f = &frames[released];
            if release_at.is_none() {
                // The destination was known before the header was finished.
                assert!(taken > released && cycle >= map_end(&take_cycles, frames, released), "frame {released}: header before the lookup's answer");
                let mut got = vec![];
                for i in 0..7 {
                    b.set("hdr_index", i);
                    b.eval();
                    got.extend(b.get("hdr_word").to_le_bytes());
                }
                assert!(got[OVERHEAD..].iter().all(|&x| x == 0), "frame {released}: header word 6 past byte 49");
                got.truncate(OVERHEAD);
                assert_eq!(got, reference(tenants, f), "frame {released}: header ({} bytes, tenant {})", f.len, f.tenant);
                let words = (f.len + OVERHEAD).div_ceil(8);
                assert_eq!(b.get("hdr_words"), words as u64, "frame {released}: words");
                assert_eq!(b.get("hdr_last_bytes"), (f.len + OVERHEAD - 8 * (words - 1)) as u64);
                release_at = Some(cycle + rng.gen_range(0..=o.release_wait) as u64);
            }
            if release_at.is_some_and(|r| cycle >= r) {
                b.set("hdr_release", 1);
                release_at = None;
                released += 1;
            }
            b.set("hdr_index", rng.gen_range(0..8));
        }
        b.eval();
        if b.get("take") != 0 {
            assert!(valid, "cycle {cycle}: take without a frame");
            // One frame in progress and one header waiting, no more.
            assert!(taken - released <= 1, "cycle {cycle}: frame {taken} taken with {} headers unreleased", taken - released);
            let f = &frames[taken];
            take_cycles.push(cycle);
            map = (if f.pending > 0 { cycle + 1 + f.pending as u64 } else { 0 }, f.mapped.is_some(), f.mapped.unwrap_or(0));
            taken += 1;
            offered += 1;
            offer_at = cycle + 1 + rng.gen_range(0..=o.parser_wait) as u64;
        }
        b.tick();
        if released == frames.len() {
            break;
        }
        assert!(cycle < 1_000_000, "stuck: {taken} taken, {released} released");
    }
    take_cycles.windows(2).map(|w| w[1] - w[0]).collect()
}

/// The cycle from which frame `k`'s lookup has answered.
fn map_end(take_cycles: &[u64], frames: &[Frame], k: usize) -> u64 {
    take_cycles[k] + 1 + frames[k].pending as u64
}

fn tenants() -> Vec<TxTenant> {
    let mut t: Vec<TxTenant> = (0..16)
        .map(|t| test_tenant(t, [Policy::PerFlow, Policy::Flowlet { gap_cycles: 100 + t as u32 }, Policy::Spray][t % 3]))
        .collect();
    for (i, x) in t.iter_mut().enumerate() {
        x.paths.bad = (i * 37) as u8;
        x.ctx.ttl = 255 - i as u8;
        x.use_mapping = i % 2 == 0;
    }
    t
}

/// An outer destination that makes the IPv4 header's one's-complement sum
/// need its second fold (the first fold carries out of 16 bits): the sum
/// of the header's 16-bit words lands on 0x1FFFF, 0x2FFFF or 0x3FFFF.
/// Random contexts almost never do that.
fn destination_folding_twice(t: &TxTenant, len: usize, port: u16) -> Option<u32> {
    let mut ctx = t.ctx;
    ctx.outer_dst_ip = [0; 4];
    let mut ip = encapsulate(&vec![0; len], &ctx, port)[14..34].to_vec();
    ip[10..12].fill(0);
    let s0: u32 = ip.chunks(2).map(|w| u16::from_be_bytes([w[0], w[1]]) as u32).sum();
    let s = [0x1FFFFu32, 0x2FFFF, 0x3FFFF].into_iter().find(|&s| s >= s0 && s - s0 <= 0x1FFFE)?;
    let d = s - s0;
    let hi = d.min(0xFFFF);
    Some(hi << 16 | (d - hi))
}

/// The sum needs the second fold for this frame's header.
fn folds_twice(tenants: &[TxTenant], f: &Frame) -> bool {
    let mut ip = reference(tenants, f)[14..34].to_vec();
    ip[10..12].fill(0);
    let s: u32 = ip.chunks(2).map(|w| u16::from_be_bytes([w[0], w[1]]) as u32).sum();
    (s & 0xFFFF) + (s >> 16) > 0xFFFF
}

fn frames(tenants: &[TxTenant], seed: u64, n: usize, slow_lookups: bool) -> Vec<Frame> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut fs: Vec<Frame> = (0..n)
        .map(|_| {
            let lookup = rng.gen_bool(0.6);
            Frame {
                tenant: rng.gen_range(0..16),
                len: if rng.gen_bool(0.8) { rng.gen_range(MIN_FRAME..200) } else { rng.gen_range(200..=MAX_FRAME) },
                time: rng.gen(),
                port: rng.gen(),
                // The cache answers 3 cycles after the take when it accepts
                // at once; a slow one answers after the checksum step (9).
                pending: match (lookup, slow_lookups && rng.gen_bool(0.4)) {
                    (false, _) => 0,
                    (true, false) => rng.gen_range(1..=3),
                    (true, true) => rng.gen_range(9..40),
                },
                mapped: (lookup && rng.gen_bool(0.7)).then(|| rng.gen()),
            }
        })
        .collect();
    for f in fs.iter_mut().filter(|f| f.mapped.is_some()).step_by(4) {
        f.mapped = destination_folding_twice(&tenants[f.tenant], f.len, f.port).or(f.mapped);
    }
    fs
}

#[test]
fn headers_match_the_reference() {
    let t = tenants();
    let fs = frames(&t, 1, 1500, true);
    // Headers whose checksum needs the second fold, on both checksum paths
    // (taken at pc 8, and again after a late lookup).
    let twice = |slow: bool| fs.iter().filter(|f| folds_twice(&t, f) && (f.pending >= 9) == slow).count();
    assert!(twice(false) > 20 && twice(true) > 20, "{} + {} frames fold twice", twice(false), twice(true));
    let mut b = VerilatedBlock::new("encap_header");
    run(&mut b, &t, &fs, Opts { seed: 2, release_wait: 30, parser_wait: 12 });
}

/// Frames back to back, each header released as soon as it appears (what
/// the output stage does at full rate): a take every ten cycles.
#[test]
fn ten_cycles_a_frame() {
    let t = tenants();
    let fs = frames(&t, 3, 300, false);
    let mut b = VerilatedBlock::new("encap_header");
    let gaps = run(&mut b, &t, &fs, Opts { seed: 4, release_wait: 0, parser_wait: 0 });
    assert!(gaps.iter().all(|&g| g == 10), "cycles between takes: {gaps:?}");
}

#[test]
fn rusthdl_and_verilator_agree_cycle_by_cycle() {
    let t = tenants();
    let fs = frames(&t, 5, 120, true);
    let (gaps, cycles) =
        rusthdl_vs_verilator::<EncapHeader, _>(|b| run(b, &t, &fs, Opts { seed: 6, release_wait: 20, parser_wait: 5 }));
    assert!(gaps.len() == 119 && cycles > 1500, "{cycles} cycles");
}
