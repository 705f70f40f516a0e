//! The encapsulation pipeline's writer (`encap_writer`) on its own: random
//! inner frames (runts, jumbo frames, descriptor lengths that are too long,
//! too short or out of range, disabled tenants, garbage in the lanes and
//! sideband the writer must ignore) go in with random input gaps while a
//! stand-in parser holds the capture for random times and a stand-in output
//! stage reads the ring at random speed. Checked against
//! `offcard_net::tx::normalize`/`clamp_len` (the reference `transmit` is
//! built on): the ring carries each frame cut or padded to its length,
//! shifted by the header's two bytes; the capture holds its first 88 bytes;
//! the counter events agree; no frame starts while the capture is full or
//! the flow table is being cleared, and the ring is never overrun. Also
//! rust-hdl's simulator against Verilator.

use offcard_hdl::encap::writer::EncapWriter;
use offcard_net::tx::{clamp_len, normalize, MAX_FRAME, MIN_FRAME};
use offcard_sim::{BlockSim, VerilatedBlock};
use offcard_testbench::encap_bench::{random_frame, TxFrame};
use offcard_testbench::encap_blocks::rusthdl_vs_verilator;
use rand::{rngs::SmallRng, Rng, SeedableRng};

const RING_WORDS: u64 = 512;
const CAPTURE_BYTES: usize = 88;

#[derive(Clone, Copy)]
struct Opts {
    seed: u64,
    /// Probability an input beat is withheld in a cycle.
    in_idle: f64,
    /// Probability the output stage reads a ring word in a cycle.
    read: f64,
    /// The parser keeps a finished capture up to this many cycles.
    hold: u32,
    /// `clearing` is high for the first cycles.
    clearing: u32,
}

#[derive(Debug, Default)]
struct Capture {
    tenant: u64,
    len: u64,
    words: [u64; 11],
}

#[derive(Debug, Default)]
struct Run {
    /// Ring words in the order the output stage read them.
    ring: Vec<u64>,
    captures: Vec<Capture>,
    /// (drop, mismatch, clamped) events.
    events: (usize, usize, usize),
    /// Cycles a frame was held back by a full capture or the clear, and
    /// cycles the ring was full.
    held_back: u64,
    ring_full: u64,
}

fn run(b: &mut dyn BlockSim, frames: &[TxFrame], enable: u16, o: Opts) -> Run {
    let mut rng = SmallRng::seed_from_u64(o.seed);
    let mut r = Run::default();
    let (mut fi, mut bi) = (0usize, 0usize);
    let mut ring = vec![0u64; RING_WORDS as usize];
    let (mut written, mut rptr) = (0u64, 0u64);
    let mut cap: Option<Capture> = None;
    // The parser's full flag and when it takes the capture.
    let (mut full, mut take_at) = (false, 0u64);
    b.set("tenant_enable", enable as u64);
    let mut idle_after = 0;
    for cycle in 0u64.. {
        let clearing = cycle < o.clearing as u64;
        b.set("clearing", clearing as u64);
        b.set("capture_full", full as u64);
        b.set("rptr", rptr & 1023);
        let presenting = fi < frames.len() && !rng.gen_bool(o.in_idle);
        let f = frames.get(fi);
        if let (true, Some(f)) = (presenting, f) {
            let nbeats = f.data.len().div_ceil(8).max(1);
            let (lo, hi) = (bi * 8, (bi * 8 + 8).min(f.data.len()));
            // Lanes past the frame's end carry garbage the writer must mask.
            let mut word: [u8; 8] = rng.gen();
            word[..hi - lo].copy_from_slice(&f.data[lo..hi]);
            b.set("in_data", u64::from_le_bytes(word));
            let last = bi + 1 == nbeats;
            b.set("in_last", last as u64);
            // Sideband and byte counts are only looked at where they mean something.
            b.set("in_bytes", if last { (hi - lo) as u64 } else { rng.gen_range(0..16) });
            b.set("in_tenant", if bi == 0 { f.tenant as u64 } else { rng.gen_range(0..16) });
            b.set("in_len", if bi == 0 { f.in_len as u64 } else { rng.gen_range(0..1 << 14) });
        }
        b.set("in_valid", presenting as u64);
        b.eval();
        let wptr = b.get("wptr");
        assert_eq!(wptr, written & 1023, "wptr counts the words written");
        if b.get("ring_write") != 0 {
            assert!(written - rptr < RING_WORDS, "cycle {cycle}: ring overrun ({written} written, {rptr} read)");
            ring[(written % RING_WORDS) as usize] = b.get("ring_data");
            written += 1;
        }
        r.ring_full += (written - rptr == RING_WORDS) as u64;
        if b.get("cap_first") != 0 {
            assert!(!full && !clearing && cap.is_none(), "cycle {cycle}: a frame started over a held capture or during the clear");
            cap = Some(Capture { tenant: b.get("frame_tenant"), len: b.get("frame_len"), ..Default::default() });
        }
        if b.get("cap_write") != 0 {
            let i = b.get("cap_index") as usize;
            cap.as_mut().expect("capture write outside a frame").words[i] = b.get("cap_data");
        }
        if b.get("cap_done") != 0 {
            r.captures.push(cap.take().expect("capture done outside a frame"));
            full = true;
            take_at = cycle + 1 + rng.gen_range(0..=o.hold) as u64;
        } else if full && cycle >= take_at {
            full = false;
        }
        r.events.0 += b.get("ev_drop") as usize;
        r.events.1 += b.get("ev_mismatch") as usize;
        r.events.2 += b.get("ev_clamped") as usize;
        if presenting && bi == 0 && (full || clearing) {
            r.held_back += 1;
            assert_eq!(b.get("in_ready"), 0, "cycle {cycle}: first beat taken while the capture is full or clearing");
        }
        if presenting && b.get("in_ready") != 0 {
            bi += 1;
            if bi == frames[fi].data.len().div_ceil(8).max(1) {
                fi += 1;
                bi = 0;
            }
        }
        // The output stage reads words written in earlier cycles.
        if rptr < written - b.get("ring_write") && rng.gen_bool(o.read) {
            r.ring.push(ring[(rptr % RING_WORDS) as usize]);
            rptr += 1;
        }
        b.tick();
        if fi == frames.len() && rptr == written && !full {
            idle_after += 1;
            if idle_after > 40 {
                break;
            }
        }
        assert!(cycle < 5_000_000, "stuck: {fi} of {} frames in", frames.len());
    }
    r
}

/// What the reference says the run must give: (ring words, captures as
/// (tenant, len, bytes), events).
fn check(frames: &[TxFrame], enable: u16, r: &Run) {
    let enabled: Vec<&TxFrame> = frames.iter().filter(|f| enable >> f.tenant & 1 != 0).collect();
    let mut ring = r.ring.iter();
    assert_eq!(r.captures.len(), enabled.len(), "one capture per frame written");
    for (n, (f, c)) in enabled.iter().zip(&r.captures).enumerate() {
        let inner = normalize(&f.data, f.in_len);
        // Ring: two free lanes, the frame as sent, zeros to a whole word.
        let mut want = vec![0u8, 0];
        want.extend_from_slice(&inner);
        want.resize(want.len().div_ceil(8) * 8, 0);
        let got: Vec<u8> = ring.by_ref().take(want.len() / 8).flat_map(|w| w.to_le_bytes()).collect();
        assert!(got == want, "frame {n} ({} bytes, in_len {}): ring words differ", f.data.len(), f.in_len);
        // Capture: the frame's first 88 bytes, zero past its end.
        let mut first = inner.clone();
        first.resize(CAPTURE_BYTES, 0);
        let words: Vec<u8> = c.words.iter().flat_map(|w| w.to_le_bytes()).collect();
        assert_eq!(words, first, "frame {n}: capture");
        assert_eq!((c.tenant, c.len), (f.tenant as u64, inner.len() as u64), "frame {n}: sideband");
    }
    assert_eq!(ring.next(), None, "ring words beyond the frames");
    let drops = frames.len() - enabled.len();
    let mismatches = enabled.iter().filter(|f| f.data.len() != clamp_len(f.in_len)).count();
    let clamped = frames.iter().filter(|f| clamp_len(f.in_len) != f.in_len).count();
    assert_eq!(r.events, (drops, mismatches, clamped), "(drop, mismatch, clamped) events");
}

fn frames(seed: u64, n: usize, big: bool) -> Vec<TxFrame> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let len = match rng.gen_range(0..10) {
                0 if big => rng.gen_range(1000..=MAX_FRAME),
                0 | 1 => rng.gen_range(1..MIN_FRAME),
                2 | 3 => rng.gen_range(100..400),
                _ => rng.gen_range(MIN_FRAME..100),
            };
            let mut f = TxFrame::new(rng.gen_range(0..6), random_frame(&mut rng, len));
            match i % 11 {
                3 => f.in_len = f.data.len() + rng.gen_range(1..40),
                5 => f.in_len = f.data.len().saturating_sub(rng.gen_range(1..30)),
                7 => f.in_len = rng.gen_range(0..MIN_FRAME),
                9 if big => f.in_len = rng.gen_range(MAX_FRAME + 1..1 << 14),
                _ => {}
            }
            f
        })
        .collect()
}

#[test]
fn frames_reach_the_ring_and_the_capture_as_the_reference_cuts_and_pads_them() {
    let fs = frames(1, 600, true);
    let enable = 0b101111; // tenant 4 disabled
    let mut b = VerilatedBlock::new("encap_writer");
    let o = Opts { seed: 2, in_idle: 0.2, read: 0.9, hold: 12, clearing: 300 };
    let r = run(&mut b, &fs, enable, o);
    check(&fs, enable, &r);
    assert!(r.held_back > 300, "the bench never held a frame back ({})", r.held_back);
    assert!(r.events.0 > 50 && r.events.1 > 50 && r.events.2 > 50, "{:?}", r.events);
}

/// A slow reader: the ring fills up, the writer waits, nothing is lost.
#[test]
fn a_full_ring_holds_the_writer() {
    let fs = frames(3, 120, true);
    let mut b = VerilatedBlock::new("encap_writer");
    let r = run(&mut b, &fs, 0xFFFF, Opts { seed: 4, in_idle: 0.0, read: 0.3, hold: 0, clearing: 0 });
    check(&fs, 0xFFFF, &r);
    assert!(r.ring_full > 1000, "the ring was full for only {} cycles", r.ring_full);
}

#[test]
fn rusthdl_and_verilator_agree_cycle_by_cycle() {
    let fs = frames(5, 60, false);
    let o = Opts { seed: 6, in_idle: 0.3, read: 0.5, hold: 20, clearing: 40 };
    let (r, cycles) = rusthdl_vs_verilator::<EncapWriter, _>(|b| run(b, &fs, 0b011111, o));
    check(&fs, 0b011111, &r);
    assert!(cycles > 1500 && r.events.0 > 0 && r.events.1 > 0 && r.events.2 > 0, "{cycles} cycles, {:?}", r.events);
}
