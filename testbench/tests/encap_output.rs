//! The encapsulation pipeline's output stage (`encap_output`) on its own: a
//! stand-in header stage offers each frame's header (read by index,
//! released when the stage says so), a stand-in writer fills the ring (a
//! synchronous RAM, as in the block) at random speed, and the output is
//! stalled at random. Checked against `offcard_net::geneve::encapsulate`:
//! every outer frame is the reference's byte for byte with the right beat
//! sizes; each header is released once, when its last bytes are taken;
//! `out_valid` never depends on `out_ready`; and with the ring ahead and
//! the next header ready, back-to-back frames leave with no idle cycle.
//! Also rust-hdl's simulator against Verilator.

use offcard_hdl::encap::output::EncapOutput;
use offcard_net::geneve::{encapsulate, OVERHEAD};
use offcard_net::path::Policy;
use offcard_net::tx::{MAX_FRAME, MIN_FRAME};
use offcard_sim::{BlockSim, VerilatedBlock};
use offcard_testbench::encap_bench::{random_frame, test_tenant};
use offcard_testbench::encap_blocks::rusthdl_vs_verilator;
use rand::{rngs::SmallRng, Rng, SeedableRng};

const RING_WORDS: u64 = 512;

struct Frame {
    /// The reference's outer frame: header, then the inner frame.
    outer: Vec<u8>,
}

impl Frame {
    fn inner(&self) -> &[u8] {
        &self.outer[OVERHEAD..]
    }
    /// Ring words as the writer leaves them: two free lanes, the inner
    /// frame, zeros to a whole word.
    fn ring_words(&self) -> Vec<u64> {
        let mut b = vec![0u8, 0];
        b.extend_from_slice(self.inner());
        b.resize(b.len().div_ceil(8) * 8, 0);
        b.chunks(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect()
    }
    fn header_word(&self, i: usize) -> u64 {
        let mut w = [0u8; 8];
        let lo = (8 * i).min(OVERHEAD);
        let hi = (8 * i + 8).min(OVERHEAD);
        w[..hi - lo].copy_from_slice(&self.outer[lo..hi]);
        u64::from_le_bytes(w)
    }
}

#[derive(Clone, Copy)]
struct Opts {
    seed: u64,
    /// Probability the writer writes a ring word in a cycle.
    write: f64,
    /// Probability `out_ready` is low in a cycle.
    stall: f64,
    /// The next header appears up to this many cycles after the last release.
    header_wait: u32,
}

#[derive(Default)]
struct Run {
    packets: Vec<Vec<u8>>,
    /// Cycles with `out_ready` high and `out_valid` low between the first
    /// and the last beat.
    bubbles: u64,
    frame_events: usize,
}

fn run(b: &mut dyn BlockSim, frames: &[Frame], o: Opts) -> Run {
    let mut rng = SmallRng::seed_from_u64(o.seed);
    let ring_stream: Vec<u64> = frames.iter().flat_map(|f| f.ring_words()).collect();
    let mut ring = vec![0u64; RING_WORDS as usize];
    let mut written = 0u64;
    // The ring's read data: the word at the address of the cycle before.
    let mut read_data = 0u64;
    // The header stage: frame `hdr` is offered from cycle `hdr_at`.
    let (mut hdr, mut hdr_at) = (0usize, 0u64);
    let mut r = Run::default();
    let mut cur: Vec<u8> = vec![];
    let mut asked = [false; 7];
    let (mut first_out, mut pending_bubbles) = (None, 0u64);
    for cycle in 0u64.. {
        let valid = hdr < frames.len() && cycle >= hdr_at;
        b.set("hdr_valid", valid as u64);
        if valid {
            let f = &frames[hdr];
            let words = f.outer.len().div_ceil(8);
            b.set("hdr_words", words as u64);
            b.set("hdr_last_bytes", (f.outer.len() - 8 * (words - 1)) as u64);
        } else {
            b.set("hdr_words", rng.gen_range(0..1 << 11));
            b.set("hdr_last_bytes", rng.gen_range(0..16));
        }
        b.set("wptr", written & 1023);
        b.set("ring_data", read_data);
        b.set("out_ready", 0);
        b.eval();
        let valid_unready = b.get("out_valid");
        let ready = !rng.gen_bool(o.stall);
        b.set("out_ready", ready as u64);
        // The header word asked for, from the frame offered.
        let i = b.get("hdr_index") as usize;
        b.set("hdr_word", if valid && i < 7 { frames[hdr].header_word(i) } else { rng.gen() });
        b.eval();
        assert_eq!(b.get("out_valid"), valid_unready, "cycle {cycle}: out_valid depends on out_ready");
        if valid && i < 7 {
            asked[i] = true;
        }
        if b.get("hdr_release") != 0 {
            assert!(valid, "cycle {cycle}: release without a header");
            assert_eq!(i, 6, "released before its last bytes were taken");
            assert!(asked.iter().all(|&a| a), "frame {hdr}: header released before all its words were read");
            asked = [false; 7];
            hdr += 1;
            hdr_at = cycle + 1 + rng.gen_range(0..=o.header_wait) as u64;
        }
        if b.get("out_valid") != 0 && ready {
            let n = b.get("out_bytes") as usize;
            let last = b.get("out_last") != 0;
            assert!((1..=8).contains(&n) && (last || n == 8), "cycle {cycle}: {n} bytes in a beat (last {last})");
            cur.extend_from_slice(&b.get("out_data").to_le_bytes()[..n]);
            if last {
                r.packets.push(std::mem::take(&mut cur));
            }
            first_out.get_or_insert(cycle);
            r.bubbles += pending_bubbles;
            pending_bubbles = 0;
        } else if first_out.is_some() && ready {
            pending_bubbles += 1;
        }
        r.frame_events += b.get("ev_frame") as usize;
        // The RAM reads at the edge; the writer writes behind the reader.
        let rptr = b.get("rptr");
        read_data = ring[(rptr % RING_WORDS) as usize];
        b.tick();
        if written < ring_stream.len() as u64 && (written - rptr_full(rptr, written)) < RING_WORDS && rng.gen_bool(o.write) {
            ring[(written % RING_WORDS) as usize] = ring_stream[written as usize];
            written += 1;
        }
        if r.packets.len() == frames.len() {
            break;
        }
        assert!(cycle < 2_000_000, "stuck after {} frames", r.packets.len());
    }
    for (k, (got, f)) in r.packets.iter().zip(frames).enumerate() {
        assert!(*got == f.outer, "frame {k} ({} bytes): differs from the reference", f.outer.len());
    }
    r
}

/// The reader's position as a full count (the block's `rptr` wraps at 1024).
fn rptr_full(rptr: u64, written: u64) -> u64 {
    written - ((written - rptr) & 1023)
}

fn frames(seed: u64, n: usize, lens: &[usize]) -> Vec<Frame> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let tenants: Vec<_> = (0..4).map(|t| test_tenant(t, Policy::PerFlow)).collect();
    (0..n)
        .map(|_| {
            let len = if lens.is_empty() { rng.gen_range(MIN_FRAME..300) } else { lens[rng.gen_range(0..lens.len())] };
            let inner = random_frame(&mut rng, len);
            Frame { outer: encapsulate(&inner, &tenants[rng.gen_range(0..4)].ctx, rng.gen()) }
        })
        .collect()
}

#[test]
fn frames_leave_as_the_reference_builds_them() {
    let mut fs = frames(1, 400, &[]);
    fs.extend(frames(2, 6, &[MAX_FRAME, 1500, 4000]));
    let mut b = VerilatedBlock::new("encap_output");
    let r = run(&mut b, &fs, Opts { seed: 3, write: 0.7, stall: 0.3, header_wait: 10 });
    assert_eq!(r.frame_events, fs.len());
}

/// Every frame length from 60 to 140 (all alignments of the 50-byte header
/// against the beats), the ring ahead, headers ready, output always ready:
/// one beat every cycle from the first to the last.
#[test]
fn back_to_back_frames_leave_with_no_bubbles() {
    let lens: Vec<usize> = (MIN_FRAME..=140).chain([1500, MAX_FRAME]).collect();
    let mut fs = Vec::new();
    for (k, &len) in lens.iter().enumerate() {
        fs.extend(frames(5 + k as u64, 3, &[len]));
    }
    let mut b = VerilatedBlock::new("encap_output");
    let r = run(&mut b, &fs, Opts { seed: 6, write: 1.0, stall: 0.0, header_wait: 0 });
    assert_eq!(r.bubbles, 0, "{} idle output cycles", r.bubbles);
    // With the output stalled, the queue keeps the order and nothing is lost.
    let r = run(&mut VerilatedBlock::new("encap_output"), &fs, Opts { seed: 7, write: 1.0, stall: 0.5, header_wait: 0 });
    assert_eq!(r.packets.len(), fs.len());
}

#[test]
fn rusthdl_and_verilator_agree_cycle_by_cycle() {
    let fs = frames(8, 60, &[]);
    let (r, cycles) = rusthdl_vs_verilator::<EncapOutput, _>(|b| run(b, &fs, Opts { seed: 9, write: 0.6, stall: 0.3, header_wait: 5 }));
    assert!(r.packets.len() == 60 && cycles > 1500, "{cycles} cycles");
}
