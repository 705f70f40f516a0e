//! Testbench of `virtq_rx` (hdl/src/virtq/rx.rs), the virtqueue engine's
//! receive stage, on its own (Verilated), against a model written from its
//! documentation. Four receiveqs (tenants 3, 7, 3 again, and a disabled
//! one); receive chains of one to three buffers arrive as the chain fetcher
//! hands them on (only while the block shows room for that queue), some with
//! a first buffer the device may not write, some aborted; frames of random
//! tenants are looked up, taken when a buffer is there, and finished by the
//! "back end" later, in order, some failed. Checked:
//!
//! - the lookup: a tenant is matched by the lowest enabled pair with it,
//!   and the buffer offered is that pair's oldest complete chain's first
//!   buffer, never an aborted or returned one;
//! - `room` falls while a pair holds a chain and rises when it is taken;
//! - every chain comes out done exactly once, in order: taken ones with the
//!   bytes written (0 if the frame failed) after the back end finished them,
//!   bad ones with 0 at once (counted); aborted ones never;
//! - rust-hdl's simulator agrees with Verilator cycle by cycle.

use offcard_hdl::regmap::virtq as vq;
use offcard_hdl::virtq::rx::VirtqRx;
use offcard_sim::{BlockSim, VerilatedBlock};
use offcard_testbench::encap_blocks::rusthdl_vs_verilator;
use rand::{rngs::SmallRng, Rng, SeedableRng};
use std::collections::VecDeque;

const TENANTS: [u64; 4] = [3, 7, 3, 9];
const ENABLED: [bool; 4] = [true, true, true, false];

#[derive(Clone, Copy, Debug, PartialEq)]
struct Seg {
    head: u16,
    addr: u64,
    len: u32,
    write: bool,
    first: bool,
    last: bool,
    abort: bool,
}

#[derive(Default, Debug)]
struct Seen {
    takes: usize,
    bad: usize,
    done: usize,
    failed: usize,
    no_buffer: usize,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    q: u64,
    head: u16,
    bytes: u32,
    /// The used length once the chain is done (frames: after the back end).
    len: Option<u32>,
}

fn run(b: &mut dyn BlockSim, seed: u64, cycles: usize) -> Seen {
    let mut rng = SmallRng::seed_from_u64(seed);
    b.set("reset", 1);
    b.tick();
    b.set("reset", 0);
    for p in 0..4 {
        b.set("cfg_we", 1);
        b.set("cfg_q", 2 * p as u64);
        b.set("cfg_sel", vq::CFG_CTRL);
        b.set("cfg_data", 6 | TENANTS[p] << vq::CTRL_TENANT_SHIFT | if ENABLED[p] { vq::CTRL_ENABLE } else { 0 } | vq::CTRL_RESET);
        b.tick();
    }
    b.set("cfg_we", 0);
    // The fetcher side: per pair, the segments of the chain being handed on.
    let mut feeding: [VecDeque<Seg>; 4] = Default::default();
    // The model: the first buffer of the chain arriving, each pair's
    // complete buffer, done entries in order, frames in the back end (their
    // failure flags, in order).
    let mut first_of: [Option<Seg>; 4] = [None; 4];
    let mut slot: [Option<Seg>; 4] = [None; 4];
    let mut expect: VecDeque<Entry> = VecDeque::new();
    let mut in_back_end: VecDeque<bool> = VecDeque::new();
    let mut next_head = [0u16; 4];
    let mut seen = Seen::default();
    for cycle in 0..cycles {
        b.set("take", 0);
        b.set("rx_done", 0);
        b.set("seg_valid", 0);
        b.eval();
        // ---- room, and the fetcher starting chains where there is room ----
        let room = b.get("room");
        assert_eq!(room & 0xAA, 0xAA, "transmitqs always have room");
        for p in 0..4 {
            let want = slot[p].is_none() && first_of[p].is_none() && expect.len() < 3;
            assert_eq!(room >> (2 * p) & 1 == 1, want, "cycle {cycle}: room of pair {p}");
            if feeding[p].is_empty() && first_of[p].is_none() && want && rng.gen_bool(0.05) {
                let n = rng.gen_range(1..=3);
                let head = next_head[p];
                next_head[p] = next_head[p].wrapping_add(3);
                let write = rng.gen_bool(0.85);
                let abort = n > 1 && rng.gen_bool(0.1);
                for k in 0..n {
                    feeding[p].push_back(Seg {
                        head,
                        addr: rng.gen::<u64>() >> 8,
                        len: if abort && k + 1 == n { 0 } else { rng.gen_range(12..4000) },
                        write: if k == 0 { write } else { rng.gen() },
                        first: k == 0,
                        last: k + 1 == n,
                        abort: abort && k + 1 == n,
                    });
                }
            }
        }
        let offers: Vec<usize> = (0..4).filter(|&p| !feeding[p].is_empty()).collect();
        let offer = if offers.is_empty() { None } else { Some(offers[rng.gen_range(0..offers.len())]) };
        if let Some(p) = offer {
            let s = feeding[p][0];
            b.set("seg_valid", 1);
            b.set("seg_q", 2 * p as u64);
            b.set("seg_head", s.head as u64);
            b.set("seg_addr", s.addr);
            b.set("seg_len", s.len as u64);
            b.set("seg_write", s.write as u64);
            b.set("seg_first", s.first as u64);
            b.set("seg_last", s.last as u64);
            b.set("seg_abort", s.abort as u64);
        }
        // ---- a frame's lookup, and maybe its take ----
        let tenant = [3u64, 7, 9, 1][rng.gen_range(0..4)];
        b.set("lk_tenant", tenant);
        b.eval();
        let want_pair = (0..4).find(|&p| ENABLED[p] && TENANTS[p] == tenant);
        assert_eq!(b.get("lk_match") == 1, want_pair.is_some(), "cycle {cycle}: match for tenant {tenant}");
        let mut take = None;
        if let Some(p) = want_pair {
            assert_eq!(b.get("lk_q"), 2 * p as u64, "cycle {cycle}: the lowest pair with tenant {tenant}");
            let full = expect.len() >= 3;
            assert_eq!(b.get("lk_valid") == 1, slot[p].is_some() && !full, "cycle {cycle}: buffer of pair {p}");
            match slot[p] {
                Some(s) if !full => {
                    assert_eq!((b.get("lk_addr"), b.get("lk_len") as u32), (s.addr, s.len), "cycle {cycle}: pair {p}'s buffer");
                    if rng.gen_bool(0.3) {
                        let bytes = rng.gen_range(12..=s.len.min(1530));
                        b.set("take", 1);
                        b.set("take_bytes", bytes as u64);
                        take = Some((p, s, bytes));
                    }
                }
                _ => seen.no_buffer += 1,
            }
        }
        // ---- the back end finishes the oldest frame, sometimes ----
        let done_now = !in_back_end.is_empty() && rng.gen_bool(0.2);
        let failed = done_now && in_back_end[0];
        b.set("rx_done", done_now as u64);
        b.set("rx_failed", failed as u64);
        let done_ready = rng.gen_bool(0.6);
        b.set("done_ready", done_ready as u64);
        b.eval();
        assert_eq!(b.get("seg_ready") == 1, take.is_none(), "cycle {cycle}: segments wait while a buffer is taken");
        let seg_taken = offer.is_some() && take.is_none();
        // ---- done output, against the model's order ----
        let mut popped = false;
        match expect.front() {
            Some(e) if e.len.is_some() => {
                assert_eq!(b.get("done_valid"), 1, "cycle {cycle}: finished chain {e:?} not offered");
                assert_eq!((b.get("done_q"), b.get("done_head") as u16, b.get("done_len") as u32), (e.q, e.head, e.len.unwrap()), "cycle {cycle}");
                popped = done_ready;
            }
            _ => assert_eq!(b.get("done_valid"), 0, "cycle {cycle}: a done before the chain finished"),
        }
        // A returned chain: its last segment taken, its first buffer not writable.
        let bad_now = seg_taken && {
            let p = offer.unwrap();
            let s = feeding[p][0];
            let first = if s.first { s } else { first_of[p].unwrap() };
            s.last && !s.abort && !first.write
        };
        assert_eq!(b.get("ev_bad") == 1, bad_now, "cycle {cycle}: bad chain event");
        b.tick();
        // ---- the model moves ----
        if popped {
            expect.pop_front();
            seen.done += 1;
        }
        if done_now {
            let fail = in_back_end.pop_front().unwrap();
            let e = expect.iter_mut().find(|e| e.len.is_none()).expect("a frame in the back end");
            e.len = Some(if fail { 0 } else { e.bytes });
            seen.failed += fail as usize;
        }
        if let Some((p, s, bytes)) = take {
            slot[p] = None;
            in_back_end.push_back(rng.gen_bool(0.1));
            expect.push_back(Entry { q: 2 * p as u64, head: s.head, bytes, len: None });
            seen.takes += 1;
        }
        if seg_taken {
            let p = offer.unwrap();
            let s = feeding[p].pop_front().unwrap();
            if s.first {
                first_of[p] = Some(s);
            }
            if s.last {
                let first = first_of[p].take().unwrap();
                if s.abort {
                    // Forgotten.
                } else if first.write {
                    slot[p] = Some(first);
                } else {
                    expect.push_back(Entry { q: 2 * p as u64, head: first.head, bytes: 0, len: Some(0) });
                    seen.bad += 1;
                }
            }
        }
    }
    seen
}

#[test]
fn buffers_lookups_and_done_chains_match_the_model() {
    let mut b = VerilatedBlock::new("virtq_rx");
    let seen = run(&mut b, 1, 60_000);
    assert!(seen.takes > 1000 && seen.bad > 30 && seen.failed > 50 && seen.no_buffer > 1000 && seen.done > 1000, "{seen:?}");
}

#[test]
fn rusthdl_and_verilator_agree_cycle_by_cycle() {
    let (seen, cycles) = rusthdl_vs_verilator::<VirtqRx, _>(|b| run(b, 2, 3000));
    assert!(seen.takes > 30 && cycles >= 3000, "{seen:?}");
}
