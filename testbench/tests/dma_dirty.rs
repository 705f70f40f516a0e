//! The DMA engine end to end through the driver, against the Verilated card:
//! random copy programs (1 B to 64 KiB, random alignment, several queues)
//! move the right bytes, and every page whose bytes changed is in the dirty
//! bitmap (checked by comparing memory before and after each epoch); a tiny
//! record ring stalls and overflows without losing a dirty page; malformed
//! descriptors get error completions and make no stray write.
use offcard_driver::dma::{DmaCard, DmaConfig, Descriptor, STATUS_IOMMU_FAULT};
use offcard_driver::{Card, CardTransport};
use offcard_sim::{SimTransport};
use offcard_regs::dma::*;
use rand::{rngs::SmallRng, Rng, SeedableRng};
use std::time::Duration;

const PAGE: u64 = 4096;

fn setup(seed: u64, cfg: DmaConfig) -> DmaCard<SimTransport> {
    let mut t = SimTransport::new(seed, 24 << 20).unwrap();
    t.rc.timing.rx_gap = 0.1;
    t.rc.timing.tx_stall = 0.1;
    t.rc.timing.timeout_cycles = 200_000;
    DmaCard::new(Card::open(t).unwrap(), cfg).unwrap()
}

fn snapshot(mem: &[u8]) -> Vec<u8> {
    mem.to_vec()
}

#[test]
fn random_dma_programs_report_every_dirty_page() {
    let seed: u64 = std::env::var("OFFCARD_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(11);
    let epochs: usize = std::env::var("OFFCARD_DMA_EPOCHS").ok().and_then(|s| s.parse().ok()).unwrap_or(6);
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut dma = setup(seed, DmaConfig { wrec_log2: 6, ..Default::default() });
    let region = 4 << 20;
    let mut src = dma.transport().alloc_dma(region).unwrap();
    let dst = dma.transport().alloc_dma(region).unwrap();
    let mut bytes = vec![0u8; src.len];
    rng.fill(&mut bytes[..]);
    src.write(0, &bytes);
    let (dst_iova, dst_len) = (dst.iova, region as u64);
    dma.dirty_start(&[(dst_iova, dst_len)], PAGE).unwrap();
    let (mut false_pos, mut dirty_total, mut copies) = (0u64, 0u64, 0u64);
    for epoch in 0..epochs {
        let before = snapshot(&dst.to_vec());
        let n = rng.gen_range(1..12);
        let mut expect = vec![];
        for i in 0..n {
            let len = match rng.gen_range(0..4) {
                0 => rng.gen_range(1..64),
                1 => rng.gen_range(64..4096),
                2 => 4096,
                _ => rng.gen_range(4096..=65536),
            } as u32;
            let so = rng.gen_range(0..region as u64 - len as u64);
            let doff = rng.gen_range(0..region as u64 - len as u64);
            let q = rng.gen_range(0..4);
            dma.post(q, Descriptor { src: src.iova + so, dst: dst.iova + doff, len, cookie: (epoch * 100 + i) as u64 }).unwrap();
            expect.push((so, doff, len));
        }
        let done = dma.complete_all(Duration::from_millis(5)).unwrap();
        assert_eq!(done.len(), n, "epoch {epoch}: completions {done:?}");
        assert!(done.iter().all(|c| c.status == 0), "epoch {epoch}: {done:?}");
        // Later copies may overwrite earlier ones; check the final image
        // against applying the copies in order to the old image.
        let mut model = before.clone();
        for &(so, doff, len) in &expect {
            model[doff as usize..(doff + len as u64) as usize].copy_from_slice(&src.read_vec(so as usize, len as usize));
        }
        // Queues run in any interleaving; overlapping copies make the order
        // matter, so compare only bytes written by exactly one copy.
        let mut writers = vec![0u8; region];
        for &(_, doff, len) in &expect {
            for w in &mut writers[doff as usize..(doff + len as u64) as usize] {
                *w = w.saturating_add(1);
            }
        }
        let dst_now = dst.to_vec();
        for (i, w) in writers.iter().enumerate() {
            if *w <= 1 {
                assert_eq!(dst_now[i], model[i], "epoch {epoch}: byte {i:#x} wrong after copy");
            }
        }
        copies += n as u64;
        let bm = dma.dirty_report(dst_iova, dst_len).unwrap();
        let after = dst.to_vec();
        for p in 0..dst_len / PAGE {
            let r = (p * PAGE) as usize..((p + 1) * PAGE) as usize;
            let changed = before[r.clone()] != after[r];
            let reported = bm[(p / 64) as usize] >> (p % 64) & 1 == 1;
            assert!(!changed || reported, "epoch {epoch}: page {p} changed but not reported dirty");
            if reported {
                dirty_total += 1;
                if !changed {
                    false_pos += 1;
                }
            }
        }
    }
    let s = dma.stats;
    eprintln!(
        "dirty logging: {copies} copies over {epochs} epochs, {dirty_total} pages reported, {false_pos} false positives (pages written with the same bytes or partially covered), {} records, {} sequence gaps",
        s.records, s.sequence_gaps
    );
    assert_eq!(s.sequence_gaps, 0);
    assert_eq!(s.overflows, 0);
    assert!(dma.transport().rc.card_errors.is_empty(), "{:?}", &dma.transport().rc.card_errors[..1]);
}

#[test]
fn tiny_record_ring_stalls_then_overflows_without_losing_pages() {
    let mut dma = setup(5, DmaConfig { wrec_log2: 1, wrec_timeout: 2_000, ring_log2: 6, ..Default::default() });
    let mut src = dma.transport().alloc_dma(1 << 20).unwrap();
    let dst = dma.transport().alloc_dma(1 << 20).unwrap();
    src.fill(0, src.len, 0xA5);
    dma.dirty_start(&[(dst.iova, 1 << 20)], PAGE).unwrap();
    // 1) Stall: non-adjacent writes need more slots than the ring has; the
    //    driver drains while polling, so the card waits and nothing is lost.
    for i in 0..8u64 {
        dma.post(0, Descriptor { src: src.iova, dst: dst.iova + i * 3 * PAGE, len: 100, cookie: i }).unwrap();
    }
    let done = dma.complete_all(Duration::from_millis(1)).unwrap();
    assert!(done.iter().all(|c| c.status == 0));
    let stalls = dma.reg(CNT_STALL_CYCLES).unwrap();
    assert!(stalls > 0, "the tiny ring never made the card stall");
    let bm = dma.dirty_report(dst.iova, 1 << 20).unwrap();
    for i in 0..8u64 {
        let p = i * 3;
        assert!(bm[0] >> p & 1 == 1, "page {p} lost under stall");
    }
    assert_eq!(bm[0].count_ones(), 8, "stall path: exactly the written pages");
    assert_eq!(dma.stats.overflows, 0);
    // 2) Overflow: the host stops draining; after the timeout the card
    //    declares overflow and the report marks every tracked page dirty.
    for i in 0..6u64 {
        dma.post(1, Descriptor { src: src.iova, dst: dst.iova + (i * 5 + 1) * PAGE, len: 64, cookie: 100 + i }).unwrap();
    }
    // Wait without polling (polling drains the ring).
    for _ in 0..50 {
        dma.wait(Duration::from_micros(100)).unwrap();
    }
    let st = dma.reg(DMA_STATUS).unwrap();
    assert!(st & STATUS_OVERFLOW != 0, "no overflow after the timeout (status {st:#x})");
    let done = dma.complete_all(Duration::from_millis(1)).unwrap();
    assert_eq!(done.len(), 6);
    let bm = dma.dirty_report(dst.iova, 1 << 20).unwrap();
    assert!(bm.iter().all(|w| *w == u64::MAX), "overflow must report every tracked page dirty");
    assert_eq!(dma.stats.overflows, 1);
    // The next epoch is precise again.
    dma.post(2, Descriptor { src: src.iova, dst: dst.iova + 7 * PAGE, len: 10, cookie: 999 }).unwrap();
    dma.complete_all(Duration::from_millis(1)).unwrap();
    let bm = dma.dirty_report(dst.iova, 1 << 20).unwrap();
    assert_eq!(bm[0], 1 << 7);
    assert!(bm[1..].iter().all(|w| *w == 0));
    eprintln!("tiny ring: {stalls} stall cycles, 1 overflow, precise again after it");
}

#[test]
fn malformed_descriptors_get_error_completions_and_no_stray_writes() {
    let mut dma = setup(9, DmaConfig::default());
    let src = dma.transport().alloc_dma(1 << 16).unwrap();
    let dst = dma.transport().alloc_dma(1 << 17).unwrap();
    let mem_before = dma.transport().rc.mem.as_slice().to_vec();
    let unmapped = 0x7_0000_0000u64;
    let cases = [
        (Descriptor { src: src.iova, dst: dst.iova, len: 0, cookie: 1 }, CPL_STATUS_BAD_LENGTH),
        (Descriptor { src: src.iova, dst: dst.iova, len: MAX_TRANSFER + 1, cookie: 2 }, CPL_STATUS_BAD_LENGTH),
        (Descriptor { src: unmapped, dst: dst.iova, len: 1000, cookie: 3 }, CPL_STATUS_READ_ERROR),
        (Descriptor { src: src.iova + 0xff00, dst: dst.iova, len: 0x1000, cookie: 4 }, CPL_STATUS_READ_ERROR),
        (Descriptor { src: src.iova, dst: unmapped, len: 300, cookie: 5 }, STATUS_IOMMU_FAULT),
    ];
    for (i, (d, _)) in cases.iter().enumerate() {
        dma.post(i % 4, *d).unwrap();
    }
    let mut done = dma.complete_all(Duration::from_millis(2)).unwrap();
    done.sort_by_key(|c| c.cookie);
    for ((d, want), c) in cases.iter().zip(&done) {
        assert_eq!(c.cookie, d.cookie);
        assert_eq!(c.status, *want, "descriptor {d:?} -> {c:?}");
    }
    // Nothing but completion entries and records changed: dst is untouched.
    let now = dma.transport().rc.mem.as_slice();
    let dst_off = (dst.iova - offcard_sim::SIM_IOVA_BASE) as usize;
    let _ = dst_off;
    assert!(dst.to_vec().iter().all(|&b| b == 0), "a failed copy wrote into dst");
    assert_eq!(mem_before.len(), now.len());
    // Tail out of range: the queue stops with an error, the card goes on.
    dma.write_tail_raw(3, 1 << 20).unwrap();
    assert!(dma.queue_status(3).unwrap() & Q_STATUS_TAIL_ERROR != 0);
    dma.post(0, Descriptor { src: src.iova, dst: dst.iova, len: 8, cookie: 77 }).unwrap();
    let ok = dma.complete_all(Duration::from_millis(1)).unwrap();
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].status, 0);
    assert!(dma.transport().rc.card_errors.is_empty(), "{:?}", &dma.transport().rc.card_errors[..1]);
}
