//! Benchmarks (figures printed, never asserted).

use crate::hdl_sim::RustHdlCard;
use crate::tlp_gen::TlpGen;
use offcard_sim::{CardInputs, CardModel, RootComplex};
use rand::{rngs::SmallRng, SeedableRng};
use std::time::Instant;

/// A register-traffic stimulus: the per-cycle inputs a busy host presents.
fn stimulus(cycles: usize) -> Vec<CardInputs> {
    let bar0 = 0x20_0000_0000u64;
    let mut rng = SmallRng::seed_from_u64(5);
    let mut gen = TlpGen::new(bar0, 0, offcard_sim::root_complex::CARD_BDF);
    let mut v = Vec::with_capacity(cycles);
    while v.len() < cycles {
        for b in offcard_sim::tlp::to_beats(&gen.register_access(&mut rng)) {
            v.push(CardInputs {
                rx_data: b.data,
                rx_keep: b.keep,
                rx_sop: b.sop as u8,
                rx_eop: b.eop as u8,
                rx_valid: 1,
                tx_ready: 1,
                reset: 0,
                ..Default::default()
            });
        }
        v.push(CardInputs { tx_ready: 1, ..Default::default() });
    }
    v.truncate(cycles);
    v
}

/// CPU time this thread has run (user + system), from /proc/thread-self/stat
/// in USER_HZ ticks (100 a second on Linux), if readable: the benchmark's
/// figure per CPU second depends less on what else the machine runs.
fn thread_cpu_s() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the command name (which may hold spaces): state is the
    // first, utime and stime the 12th and 13th.
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

pub struct SimBench {
    /// Whole card, register traffic, one FFI call per cycle (wall clock).
    pub verilator_cycles_per_s: f64,
    /// The same per second of this thread's CPU time (None without /proc).
    pub verilator_cycles_per_cpu_s: Option<f64>,
    /// The root complex and the enumerated card with nothing to do (as
    /// when a driver waits): cycles per second through `RootComplex::run`,
    /// which clocks quiet stretches in multi-cycle runs.
    pub rc_idle_cycles_per_s: f64,
    pub rusthdl_cycles_per_s: f64,
    pub mmio_read_cycles: u64,
    pub mmio_write_read_cycles: u64,
}

pub fn sim_bench(progress: &mut dyn FnMut(&str)) -> SimBench {
    let stim = stimulus(1 << 16);
    progress("Verilator model: 4M cycles of register traffic");
    let mut m = CardModel::new();
    let t = Instant::now();
    let cpu0 = thread_cpu_s();
    let mut sink = 0u64;
    let total = 4_000_000usize;
    for i in 0..total {
        let o = m.cycle(&stim[i & (stim.len() - 1)]);
        sink = sink.wrapping_add(o.tx_data);
    }
    let verilator = total as f64 / t.elapsed().as_secs_f64();
    let verilator_cpu = cpu0.zip(thread_cpu_s()).map(|(a, b)| total as f64 / (b - a));
    progress("rust-hdl simulator: 20k cycles of the same traffic");
    let mut r = RustHdlCard::new();
    let t = Instant::now();
    let n = 20_000usize;
    for inp in stim.iter().take(n) {
        let o = r.cycle(inp);
        sink = sink.wrapping_add(o.tx_data);
    }
    let rusthdl = n as f64 / t.elapsed().as_secs_f64();
    std::hint::black_box(sink);
    progress("MMIO round trip through the root-complex model");
    let mut rc = RootComplex::new(1, 1 << 16).unwrap();
    let info = rc.enumerate(0x20_0000_0000).unwrap();
    let c0 = rc.card.cycles();
    rc.read32(info.bar0).unwrap();
    let read = rc.card.cycles() - c0;
    let c0 = rc.card.cycles();
    rc.write32(info.bar0 + 0x10, 5);
    rc.read32(info.bar0 + 0x10).unwrap();
    let wr = rc.card.cycles() - c0;
    progress("root complex and card, idle: 2M cycles");
    let idle = 2_000_000u64;
    let t = Instant::now();
    rc.run(idle);
    let rc_idle = idle as f64 / t.elapsed().as_secs_f64();
    SimBench {
        verilator_cycles_per_s: verilator,
        verilator_cycles_per_cpu_s: verilator_cpu,
        rc_idle_cycles_per_s: rc_idle,
        rusthdl_cycles_per_s: rusthdl,
        mmio_read_cycles: read,
        mmio_write_read_cycles: wr,
    }
}

/// One transfer size's figures.
pub struct DmaPoint {
    pub size: u32,
    /// Payload bytes per cycle of the write phase, over the 8 bytes a beat carries.
    pub efficiency: f64,
    /// Record bytes per payload byte.
    pub record_overhead: f64,
    /// Copy throughput end to end (read + write), bytes per card cycle.
    pub copy_bytes_per_cycle: f64,
}

/// `offcard bench dma`: copies of each size through the Verilated card,
/// with no stream stalls, destination buffers apart (no coalescing across
/// descriptors).
pub fn dma_bench(read_latency_cycles: u64, progress: &mut dyn FnMut(&str)) -> Vec<DmaPoint> {
    use offcard_driver::dma::{DmaCard, DmaConfig, Descriptor};
    use offcard_driver::{Card, CardTransport};
use offcard_sim::{SimTransport};
    let mut out = vec![];
    for &size in &[64u32, 256, 1024, 4096, 65536] {
        progress(&format!("copies of {size} bytes"));
        let mut t = SimTransport::new(1, 48 << 20).unwrap();
        t.rc.timing.read_latency_cycles = read_latency_cycles;
        let mut dma = DmaCard::new(Card::open(t).unwrap(), DmaConfig { ring_log2: 10, wrec_log2: 12, ..Default::default() }).unwrap();
        let count = ((1u64 << 20) / size as u64).clamp(8, 512) as u32;
        let stride = (size as u64).div_ceil(4096) * 4096 + 4096;
        let src = dma.transport().alloc_dma(size as usize).unwrap();
        let dst = dma.transport().alloc_dma((stride * count as u64) as usize).unwrap();
        dma.transport().rc.write_log = Some(vec![]);
        let records0 = dma.reg(offcard_regs::dma::CNT_RECORDS).unwrap();
        let c0 = dma.transport().rc.card.cycles();
        let mut posted = 0;
        while posted < count {
            while posted < count && dma.in_flight(0) < 1000 {
                let d = Descriptor { src: src.iova, dst: dst.iova + posted as u64 * stride, len: size, cookie: posted as u64 };
                if dma.post(0, d).is_err() {
                    break;
                }
                posted += 1;
            }
            dma.complete_all(std::time::Duration::from_millis(50)).unwrap();
        }
        let cycles = dma.transport().rc.card.cycles() - c0;
        dma.sync_records().unwrap();
        let records = dma.reg(offcard_regs::dma::CNT_RECORDS).unwrap() - records0;
        let log = dma.transport().rc.write_log.take().unwrap();
        // Write phase of each descriptor: first to last beat of its data writes.
        let (mut payload, mut phase_cycles) = (0u64, 0u64);
        for i in 0..count as u64 {
            let (lo, hi) = (dst.iova + i * stride, dst.iova + i * stride + size as u64);
            let w: Vec<_> = log.iter().filter(|e| e.2 >= lo && e.2 < hi).collect();
            if let (Some(first), Some(last)) = (w.iter().map(|e| e.0).min(), w.iter().map(|e| e.1).max()) {
                payload += w.iter().map(|e| e.3 as u64).sum::<u64>();
                phase_cycles += last - first + 1;
            }
        }
        out.push(DmaPoint {
            size,
            efficiency: payload as f64 / (8.0 * phase_cycles as f64),
            record_overhead: 16.0 * records as f64 / (size as f64 * count as f64),
            copy_bytes_per_cycle: (size as u64 * count as u64) as f64 / cycles as f64,
        });
    }
    out
}

/// One frame size and chain layout through a transmitq, and the same frames
/// through a DMA TX queue (the card's own descriptor format).
pub struct VirtioPoint {
    pub frame: usize,
    /// Buffers a chain: 1 (header and frame together) or 2 (header apart).
    pub buffers: usize,
    pub frames: usize,
    /// Card cycles per frame in steady state (ring kept full).
    pub cycles_per_frame: f64,
    /// Doorbells the driver rang (one per refill, not one per frame).
    pub doorbells: u64,
    /// The same frames through DMA TX queue 1: cycles per frame.
    pub dma_cycles_per_frame: f64,
}

/// `offcard bench virtio`: frames through a virtio transmitq processed by
/// the Verilated card (rings in host memory as a guest's, 256 entries), the
/// driver refilling the ring as the used ring moves and ringing the doorbell
/// once per refill; the card's cycles from the first doorbell to the last
/// used element. Then the same frames through a DMA TX queue.
pub fn virtio_bench(progress: &mut dyn FnMut(&str)) -> Vec<VirtioPoint> {
    use crate::virtio_guest::{chain_parts, TxQueue, QUEUE_SPAN};
    use offcard_driver::dma::{DmaCard, DmaConfig};
    use offcard_driver::virtq;
    use offcard_driver::{Card, CardTransport, NetCtl};
    use offcard_sim::{SimNetwork, SimTransport};
    use rand::{rngs::SmallRng, Rng, SeedableRng};
    let mut out = vec![];
    for &frame in &[64usize, 256, 1514] {
        for buffers in [1usize, 2] {
            progress(&format!("{frame}-byte frames, {buffers} buffer(s) a chain"));
            let frames = 1024usize;
            let mut rng = SmallRng::seed_from_u64(frame as u64);
            let mut t = SimTransport::new(1, 48 << 20).unwrap();
            t.rc.timing.rx_gap = 0.0;
            let mut dma = DmaCard::new(Card::open(t).unwrap(), DmaConfig { ring_log2: 8, wrec_log2: 12, ..Default::default() }).unwrap();
            NetCtl::new(&mut dma.card)
                .program_tenant(0, &crate::encap_bench::test_tenant(0, offcard_net::path::Policy::PerFlow).context())
                .unwrap();
            let mut mem = dma.transport().alloc_dma(QUEUE_SPAN).unwrap();
            let mut q = TxQueue::new(0, 8);
            virtq::setup_queue(dma.transport(), 1, &q.setup(&mem, 0)).unwrap();
            let mut bytes = vec![0u8; frame];
            rng.fill(&mut bytes[..]);
            let chain = |rng: &mut SmallRng| chain_parts(rng, &bytes, if buffers == 1 { 0 } else { 1 });
            let (mut posted, mut used_seen, mut doorbells, mut on_wire) = (0usize, 0u16, 0u64, 0usize);
            while posted < frames.min(q.size as usize) {
                let parts = chain(&mut rng);
                q.add_chain(&mut mem, &parts);
                posted += 1;
            }
            q.publish(&mut mem);
            let c0 = dma.transport().rc.card.cycles();
            virtq::notify(dma.transport(), 1).unwrap();
            doorbells += 1;
            let mut spins = 0;
            while (used_seen as usize) < frames {
                dma.transport().run_cycles(128);
                on_wire += dma.transport().take_tx_frames().len();
                let u = q.used_idx(&mem);
                let newly = u.wrapping_sub(used_seen) as usize;
                used_seen = u;
                let refill = newly.min(frames - posted);
                for _ in 0..refill {
                    let parts = chain(&mut rng);
                    q.add_chain(&mut mem, &parts);
                    posted += 1;
                }
                if refill > 0 {
                    q.publish(&mut mem);
                    virtq::notify(dma.transport(), 1).unwrap();
                    doorbells += 1;
                }
                spins += 1;
                assert!(spins < 1_000_000, "virtio bench stuck at {used_seen} of {frames}");
            }
            let cycles = dma.transport().rc.card.cycles() - c0;
            dma.transport().run_cycles(2000);
            on_wire += dma.transport().take_tx_frames().len();
            assert_eq!(on_wire, frames, "frames on the wire");
            // The same frames through the DMA engine's own TX queue.
            dma.set_queue_mode(1, offcard_regs::dma::QMODE_TX).unwrap();
            let c0 = dma.transport().rc.card.cycles();
            let mut sent = 0;
            while sent < frames {
                while sent < frames && dma.in_flight(1) < 200 {
                    dma.send_frame(1, 0, &bytes).unwrap();
                    sent += 1;
                }
                dma.complete_all(std::time::Duration::from_millis(50)).unwrap();
            }
            let dma_cycles = dma.transport().rc.card.cycles() - c0;
            dma.transport().run_cycles(2000);
            assert_eq!(dma.transport().take_tx_frames().len(), frames, "DMA TX frames on the wire");
            out.push(VirtioPoint {
                frame,
                buffers,
                frames,
                cycles_per_frame: cycles as f64 / frames as f64,
                doorbells,
                dma_cycles_per_frame: dma_cycles as f64 / frames as f64,
            });
        }
    }
    out
}
