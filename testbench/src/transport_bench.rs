//! `offcard bench transport`: what a carrier costs. The same driver calls on
//! the in-process card and on a card process over vfio-user: the wall time
//! of one BAR0 read (a socket round trip more, and the card's completion
//! either way), and a 1 MiB copy by the card's DMA engine (the data moves
//! between memory the driver shares with the card; only doorbells,
//! interrupts and completions' bookkeeping cross the socket).

use offcard_driver::dma::{DmaCard, DmaConfig, Descriptor};
use offcard_driver::{Card, CardTransport};
use offcard_sim::SimTransport;
use crate::card_process::CardProcess;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, Default)]
pub struct CarrierFigures {
    pub mmio_read_ns: f64,
    /// vfio-user only: a read of the status region, which the card process
    /// answers without the card (the protocol's own round trip).
    pub protocol_round_trip_ns: f64,
    pub dma_mib_per_s: f64,
}

/// BAR0 reads, timed over `n` reads (after a warm-up).
fn mmio<T: CardTransport>(card: &mut Card<T>, n: usize) -> f64 {
    for _ in 0..50 {
        card.read(offcard_regs::REG_SCRATCH0).unwrap();
    }
    let t0 = Instant::now();
    for _ in 0..n {
        card.read(offcard_regs::REG_SCRATCH0).unwrap();
    }
    t0.elapsed().as_nanos() as f64 / n as f64
}

/// A 1 MiB copy in 64 KiB descriptors, wall clock from the first doorbell
/// to the last completion; the copy is checked.
fn dma_mib<T: CardTransport>(card: Card<T>, rounds: usize) -> f64 {
    const MIB: usize = 1 << 20;
    let chunk = offcard_regs::dma::MAX_TRANSFER as usize;
    let mut dma = DmaCard::new(card, DmaConfig { ring_log2: 6, wrec_log2: 10, ..Default::default() }).unwrap();
    let mut src = dma.transport().alloc_dma(MIB).unwrap();
    let dst = dma.transport().alloc_dma(MIB).unwrap();
    let pattern: Vec<u8> = (0..MIB).map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[3]).collect();
    src.write(0, &pattern);
    let mut best = f64::MAX;
    for r in 0..rounds {
        dst.to_vec(); // touch
        let t0 = Instant::now();
        for k in 0..MIB / chunk {
            let off = (k * chunk) as u64;
            dma.post(k % 4, Descriptor { src: src.iova + off, dst: dst.iova + off, len: chunk as u32, cookie: (r * 100 + k) as u64 }).unwrap();
        }
        let done = dma.complete_all(Duration::from_secs(1)).unwrap();
        let secs = t0.elapsed().as_secs_f64();
        assert!(done.len() == MIB / chunk && done.iter().all(|c| c.status == 0), "copy failed: {done:?}");
        best = best.min(secs);
    }
    assert!(dst.to_vec() == pattern, "the 1 MiB copy is wrong");
    1.0 / best
}

/// (in-process, vfio-user) figures; `exe` is the `offcard` binary.
pub fn transport_bench(exe: &Path, progress: &mut dyn FnMut(&str)) -> (CarrierFigures, CarrierFigures) {
    progress("in-process: MMIO reads");
    let mut card = Card::open(SimTransport::new(1, 8 << 20).unwrap()).unwrap();
    let mmio_in = mmio(&mut card, 2000);
    progress("in-process: 1 MiB DMA copies");
    let dma_in = dma_mib(card, 3);
    progress("vfio-user: MMIO reads");
    let card_process = CardProcess::start(exe, "bench", &["--quiet"]);
    let t = card_process.connect();
    let t0 = Instant::now();
    for _ in 0..2000 {
        t.read_card_cycles().unwrap();
    }
    let rt = t0.elapsed().as_nanos() as f64 / 2000.0;
    let mut card = Card::open(t).unwrap();
    let mmio_vu = mmio(&mut card, 2000);
    progress("vfio-user: 1 MiB DMA copies");
    let dma_vu = dma_mib(card, 3);
    drop(card_process);
    (
        CarrierFigures { mmio_read_ns: mmio_in, dma_mib_per_s: dma_in, protocol_round_trip_ns: 0.0 },
        CarrierFigures { mmio_read_ns: mmio_vu, dma_mib_per_s: dma_vu, protocol_round_trip_ns: rt },
    )
}
