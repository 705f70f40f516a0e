//! Testbench of `virtq_tx_frame` (hdl/src/virtq/tx_frame.rs), the
//! virtqueue engine's transmit stage, on its own (Verilated). Transmit
//! chains arrive as the chain fetcher hands them on, laid out every way a
//! driver may (the 12-byte header alone, with the frame's start, split over
//! two buffers; zero-length buffers; up to 32 buffers), with malformed ones
//! among them (a device-writable buffer, 33 buffers, nothing after the
//! header, a frame above the limit) and aborted ones. Jobs are taken and
//! frames "sent" after random delays. Checked against a model of the
//! chain's bytes:
//!
//! - each good chain becomes one frame: read jobs covering exactly the bytes
//!   after the header, in order, with the frame's length, the pair's tenant
//!   and queue on every job, first and last marked;
//! - malformed chains give no job and one drop event each; aborted chains
//!   give nothing at all;
//! - used elements (`done`) come out for every chain but the aborted, in
//!   chain order, a sent chain's never before its frame was sent;
//! - rust-hdl's simulator agrees with Verilator cycle by cycle.

use offcard_hdl::regmap::virtq as vq;
use offcard_hdl::virtq::tx_frame::VirtqTxFrame;
use offcard_sim::{BlockSim, VerilatedBlock};
use offcard_testbench::encap_blocks::rusthdl_vs_verilator;
use rand::{rngs::SmallRng, Rng, SeedableRng};
use std::collections::VecDeque;

const HDR: u32 = vq::NET_HDR_BYTES;

/// A buffer: (address, length, device-writable).
type Buf = (u64, u32, bool);

#[derive(Clone, Debug)]
struct Chain {
    q: usize,
    head: u16,
    bufs: Vec<Buf>,
    abort: bool,
}

#[derive(Clone, Debug, PartialEq)]
enum Expect {
    /// The jobs (address, length) and the frame's length.
    Frame(Vec<(u64, u32)>, u32),
    Drop,
    Nothing,
}

fn tenant_of(q: usize) -> u64 {
    (q as u64 * 5 + 3) & 0xF
}

/// What the stage must do with a chain.
fn expect(c: &Chain) -> Expect {
    if c.abort {
        return Expect::Nothing;
    }
    let total: u64 = c.bufs.iter().map(|b| b.1 as u64).sum();
    if c.bufs.iter().any(|b| b.2) || c.bufs.len() > vq::TX_MAX_SEGS || total <= HDR as u64 || total - HDR as u64 > vq::TX_MAX_FRAME as u64 {
        return Expect::Drop;
    }
    let mut skip = HDR;
    let mut jobs = vec![];
    for &(addr, len, _) in &c.bufs {
        if len <= skip {
            skip -= len;
            continue;
        }
        jobs.push((addr + skip as u64, len - skip));
        skip = 0;
    }
    Expect::Frame(jobs, (total - HDR as u64) as u32)
}

fn random_chain(rng: &mut SmallRng, head: u16) -> Chain {
    let q = 2 * rng.gen_range(0..4) + 1;
    let frame = if rng.gen_bool(0.1) { rng.gen_range(9000..=9300) } else { rng.gen_range(1..1600) };
    let mut lens: Vec<u32> = match rng.gen_range(0..4) {
        0 => vec![HDR, frame],
        1 => vec![HDR + frame],
        2 => vec![5, 7 + frame],
        _ => {
            // The frame split over several buffers.
            let mut v = vec![HDR];
            let mut left = frame;
            while left > 0 {
                let n = rng.gen_range(1..=left.min(700));
                v.push(n);
                left -= n;
            }
            v
        }
    };
    if rng.gen_bool(0.1) {
        lens.push(0);
    }
    if rng.gen_bool(0.05) {
        lens = vec![rng.gen_range(0..=HDR)];
    }
    if rng.gen_bool(0.03) {
        lens = (0..rng.gen_range(33..36)).map(|_| 10).collect();
    }
    let bufs: Vec<Buf> = lens.iter().map(|&l| (rng.gen::<u64>() >> rng.gen_range(0..40), l, rng.gen_bool(0.02))).collect();
    Chain { q, head, bufs, abort: rng.gen_bool(0.03) }
}

#[derive(Default)]
struct Seen {
    frames: usize,
    drops: usize,
    aborts: usize,
    jobs: usize,
}

fn run(b: &mut dyn BlockSim, seed: u64, n: usize) -> Seen {
    let mut rng = SmallRng::seed_from_u64(seed);
    b.set("reset", 1);
    b.tick();
    b.set("reset", 0);
    for q in 0..vq::NUM_QUEUES {
        b.set("cfg_we", 1);
        b.set("cfg_q", q as u64);
        b.set("cfg_sel", vq::CFG_CTRL);
        b.set("cfg_data", 5 | vq::CTRL_ENABLE | tenant_of(q) << vq::CTRL_TENANT_SHIFT);
        b.tick();
    }
    b.set("cfg_we", 0);
    let chains: Vec<Chain> = (0..n).map(|i| random_chain(&mut rng, i as u16)).collect();
    // Segments to offer: (chain index, buffer index, last).
    let mut segs: VecDeque<(usize, usize)> = VecDeque::new();
    for (ci, c) in chains.iter().enumerate() {
        // An aborted chain: some buffers, then the abort marker (index MAX).
        let shown = if c.abort { rng.gen_range(0..c.bufs.len()) } else { c.bufs.len() };
        segs.extend((0..shown).map(|k| (ci, k)));
        if c.abort {
            segs.push_back((ci, usize::MAX));
        }
    }
    let mut frames_expected: VecDeque<(usize, Vec<(u64, u32)>, u32)> = chains
        .iter()
        .enumerate()
        .filter_map(|(i, c)| match expect(c) {
            Expect::Frame(j, l) => Some((i, j, l)),
            _ => None,
        })
        .collect();
    let dones_expected: Vec<(usize, u16)> = chains.iter().filter(|c| !c.abort).map(|c| (c.q, c.head)).collect();
    let mut seen = Seen { aborts: chains.iter().filter(|c| c.abort).count(), ..Default::default() };
    let (mut cur_jobs, mut dones) = (Vec::new(), Vec::new());
    // Frames whose last job went, waiting to be sent: cycle due.
    let mut to_send: VecDeque<u64> = VecDeque::new();
    let (mut sent, mut cycle) = (0usize, 0u64);
    let frames_total = frames_expected.len();
    while dones.len() < dones_expected.len() {
        let (ci, k) = segs.front().copied().unwrap_or((0, 0));
        b.set("seg_valid", !segs.is_empty() as u64);
        if !segs.is_empty() {
            let c = &chains[ci];
            let abort = k == usize::MAX;
            let (addr, len, write) = if abort { (0, 0, false) } else { c.bufs[k] };
            b.set("seg_q", c.q as u64);
            b.set("seg_head", c.head as u64);
            b.set("seg_addr", addr);
            b.set("seg_len", len as u64);
            b.set("seg_write", write as u64);
            b.set("seg_last", (abort || k + 1 == c.bufs.len()) as u64);
            b.set("seg_abort", abort as u64);
        }
        let job_ready = rng.gen_bool(0.6);
        let done_ready = rng.gen_bool(0.6);
        b.set("job_ready", job_ready as u64);
        b.set("done_ready", done_ready as u64);
        let send_now = to_send.front().is_some_and(|&due| due <= cycle);
        b.set("sent", send_now as u64);
        b.eval();
        if send_now {
            to_send.pop_front();
            sent += 1;
        }
        if b.get("seg_ready") == 1 && !segs.is_empty() {
            segs.pop_front();
        }
        if b.get("job_valid") == 1 && job_ready {
            let (fi, jobs, flen) = frames_expected.front().cloned().unwrap_or_else(|| panic!("cycle {cycle}: a job with no frame expected"));
            let c = &chains[fi];
            let k = cur_jobs.len();
            let got = (b.get("job_addr"), b.get("job_len") as u32);
            assert_eq!(got, jobs[k], "chain {fi} ({:?}): job {k}", c.bufs);
            assert_eq!(
                (b.get("frame_len") as u32, b.get("frame_tenant"), b.get("frame_q") as usize),
                (flen, tenant_of(c.q), c.q),
                "chain {fi}: frame sideband"
            );
            assert_eq!((b.get("job_first") == 1, b.get("job_last") == 1), (k == 0, k + 1 == jobs.len()), "chain {fi}: job {k} of {}", jobs.len());
            cur_jobs.push(got);
            seen.jobs += 1;
            if k + 1 == jobs.len() {
                frames_expected.pop_front();
                cur_jobs.clear();
                seen.frames += 1;
                to_send.push_back(cycle + rng.gen_range(1..40));
            }
        }
        if b.get("done_valid") == 1 && done_ready {
            let d = (b.get("done_q") as usize, b.get("done_head") as u16);
            let i = dones.len();
            assert_eq!(d, dones_expected[i], "used element {i}");
            let ci = chains.iter().position(|c| c.head == d.1).unwrap();
            if let Expect::Frame(..) = expect(&chains[ci]) {
                // Frames before it in order were all sent.
                let frames_upto = chains[..=ci].iter().filter(|c| matches!(expect(c), Expect::Frame(..))).count();
                assert!(sent >= frames_upto, "chain {ci}: used before its frame was sent ({sent} sent)");
            }
            dones.push(d);
        }
        seen.drops += b.get("ev_drop") as usize;
        b.tick();
        cycle += 1;
        assert!(cycle < 2000 * n as u64, "stalled: {} of {} used elements", dones.len(), dones_expected.len());
    }
    assert!(frames_expected.is_empty() && seen.frames == frames_total);
    assert_eq!(seen.drops, chains.iter().filter(|c| expect(c) == Expect::Drop).count(), "drop events");
    seen
}

#[test]
fn chains_become_frames_with_the_header_skipped() {
    let mut b = VerilatedBlock::new("virtq_tx_frame");
    let s = run(&mut b, 1, 3000);
    assert!(s.frames > 2000 && s.drops > 100 && s.aborts > 30, "{} frames, {} drops, {} aborts", s.frames, s.drops, s.aborts);
    assert!(s.jobs > s.frames + 1000, "frames over several buffers: {} jobs", s.jobs);
}

#[test]
fn rusthdl_and_verilator_agree_cycle_by_cycle() {
    let (s, cycles) = rusthdl_vs_verilator::<VirtqTxFrame, _>(|b| run(b, 2, 60));
    assert!(s.frames > 30 && cycles > 300, "{} frames in {cycles} cycles", s.frames);
}
