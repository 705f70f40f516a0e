//! The driver's test suite, written once against `CardTransport` and run
//! on every carrier (in-process card, card process over vfio-user): what a
//! driver needs of any card, checked the same way whatever carries it.
//!
//! Each check returns `Err(text)` instead of panicking, so a caller can
//! clean up (stop a card process) before it fails the test.

use crate::encap_bench::test_tenant;
use offcard_driver::dma::{DmaCard, DmaConfig, Descriptor, RxFrame, STATUS_IOMMU_FAULT};
use offcard_driver::{CacheCtl, Card, CardTransport, NetCtl};
use offcard_net::geneve::{decapsulate, encapsulate};
use offcard_net::path::Policy;
use offcard_regs::{self as regs, dma::*, Access};
use offcard_sim::card_process::port::{EthernetPort, WireEnd};
use offcard_sim::{SimNetwork, SimTransport};
use std::time::{Duration, Instant};

pub type Check = Result<(), String>;

macro_rules! ensure {
    ($c:expr, $($t:tt)*) => {
        if !$c {
            return Err(format!($($t)*));
        }
    };
}

fn e<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> String + '_ {
    move |err| format!("{what}: {err}")
}

/// Frames that arrive in RX queue `q`, polled (waking on the card's
/// interrupt) until `want` came or `limit` of wall time passed; the caller
/// checks how many.
pub fn receive<T: CardTransport>(dma: &mut DmaCard<T>, q: usize, want: usize, limit: Duration) -> Result<Vec<RxFrame>, String> {
    let deadline = Instant::now() + limit;
    let mut got = dma.poll_rx_frames(q).map_err(e("RX poll"))?;
    while got.len() < want && Instant::now() < deadline {
        dma.wait(Duration::from_micros(200)).map_err(e("wait"))?;
        got.extend(dma.poll_rx_frames(q).map_err(e("RX poll"))?);
    }
    Ok(got)
}

/// The far end of the card's Ethernet port, whatever it is.
pub trait FarEnd<T: CardTransport> {
    /// Put a frame on the cable towards the card.
    fn inject(&mut self, dma: &mut DmaCard<T>, frame: &[u8]);
    /// Frames the card sent, waiting (in the card's time) until `n` came or
    /// the card has been given long enough.
    fn collect(&mut self, dma: &mut DmaCard<T>, n: usize) -> Vec<Vec<u8>>;
    /// Leave the card alone for about `cycles` of its clock.
    fn idle(&mut self, dma: &mut DmaCard<T>, cycles: u64);
}

/// The in-process card's port: the root-complex model's network side.
pub struct InProcessPort;

impl FarEnd<SimTransport> for InProcessPort {
    fn inject(&mut self, dma: &mut DmaCard<SimTransport>, frame: &[u8]) {
        dma.transport().inject_rx_frame(frame);
    }
    fn collect(&mut self, dma: &mut DmaCard<SimTransport>, n: usize) -> Vec<Vec<u8>> {
        let mut out = dma.transport().take_tx_frames();
        for _ in 0..1000 {
            if out.len() >= n {
                break;
            }
            dma.transport().run_cycles(200);
            out.extend(dma.transport().take_tx_frames());
        }
        out
    }
    fn idle(&mut self, dma: &mut DmaCard<SimTransport>, cycles: u64) {
        dma.transport().run_cycles(cycles);
    }
}

/// The far end of a card process's `--net wire:PATH`.
pub struct WirePeer(pub WireEnd);

impl<T: CardTransport> FarEnd<T> for WirePeer {
    fn inject(&mut self, _dma: &mut DmaCard<T>, frame: &[u8]) {
        // A lost frame shows up as a missing one where the caller counts them.
        let _ = self.0.send(frame);
        let t0 = Instant::now();
        while !self.0.flush().unwrap_or(true) && t0.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_micros(100));
        }
    }
    fn collect(&mut self, _dma: &mut DmaCard<T>, n: usize) -> Vec<Vec<u8>> {
        let mut out = vec![];
        while out.len() < n {
            match self.0.recv_timeout(Duration::from_secs(30)) {
                Ok(Some(f)) => out.push(f),
                _ => break,
            }
        }
        out
    }
    fn idle(&mut self, _dma: &mut DmaCard<T>, cycles: u64) {
        // The card process runs on its own clock (roughly 0.4M cycles/s).
        std::thread::sleep(Duration::from_micros(cycles * 5 / 2));
    }
}

/// Identity, scratch registers with 32- and 64-bit TLPs, configuration
/// space, MSI delivery (and no second one without a trigger).
pub fn identity_scratch_msi<T: CardTransport>(card: &mut Card<T>) -> Check {
    let id = card.identity().map_err(e("identity"))?;
    ensure!(id.magic == regs::CARD_MAGIC, "magic {:#x}", id.magic);
    ensure!(id.version == (regs::VERSION_MAJOR, regs::VERSION_MINOR, regs::VERSION_PATCH), "version {:?}", id.version);
    let n = card.scratch_test().map_err(e("scratch test"))?;
    ensure!(n > 100, "scratch test checked only {n} patterns");
    let cfg0 = card.transport.config_read32(regs::cfg::VENDOR_DEVICE).map_err(e("config read"))?;
    ensure!(cfg0 == (regs::DEVICE_ID as u32) << 16 | regs::VENDOR_ID as u32, "vendor/device {cfg0:#x}");
    let cmd = card.transport.config_read32(regs::cfg::COMMAND_STATUS).map_err(e("config read"))?;
    ensure!(cmd & regs::cfg::COMMAND_BUS_MASTER as u32 != 0, "bus mastering off after enumeration: {cmd:#x}");
    let before = card.counters().map_err(e("counters"))?.iter().find(|(n, _)| *n == "REG_CNT_MSI_SENT").map(|c| c.1).unwrap_or(0);
    ensure!(card.fire_msi(Duration::from_micros(50)).map_err(e("fire MSI"))?, "MSI did not arrive");
    ensure!(!card.transport.wait_interrupt(Duration::from_micros(20)).map_err(e("wait"))?, "a second MSI without a trigger");
    let after = card.counters().map_err(e("counters"))?.iter().find(|(n, _)| *n == "REG_CNT_MSI_SENT").map(|c| c.1).unwrap_or(0);
    ensure!(after == before + 1, "MSI_SENT went {before} -> {after}");
    Ok(())
}

/// Every register of every block that is not a counter, status or trigger
/// reads its reset value from the map right after reset (enumeration):
/// run it on a card nobody has written yet.
pub fn registers_reset_to_the_map<T: CardTransport>(card: &mut Card<T>) -> Check {
    let mut checked = 0;
    let queue2 = regs::dma::QUEUE_REGISTERS.iter().map(|r| (regs::dma::QUEUE_BASE + 2 * regs::dma::QUEUE_STRIDE + r.offset, r));
    let all = regs::BAR0_REGISTERS
        .iter()
        .chain(regs::dma::GLOBAL_REGISTERS)
        .chain(regs::encap::ENCAP_REGISTERS)
        .chain(regs::cache::CACHE_REGISTERS)
        .chain(regs::decap::DECAP_REGISTERS)
        .chain(regs::virtq::GLOBAL_REGISTERS)
        .map(|r| (r.offset, r))
        .chain(queue2)
        .chain(regs::virtq::QUEUE_REGISTERS.iter().map(|r| (regs::virtq::VQ_BASE + 5 * regs::virtq::VQ_STRIDE + r.offset, r)));
    for (off, r) in all {
        // Counters and status move during enumeration (which also programs
        // the MSI vector); triggers and write-only tables read 0 by definition.
        if matches!(r.access, Access::CounterWriteClears | Access::WriteTrigger)
            || r.name.contains("STATUS")
            || r.name.contains("CNT_")
            || r.name.contains("MSI")
            || r.name == "NOW"
        {
            continue;
        }
        let v = card.read(off).map_err(e(r.name))?;
        ensure!(v == r.reset, "{} at {off:#x} reads {v:#x} after reset, the map says {:#x}", r.name, r.reset);
        checked += 1;
    }
    ensure!(checked > 40, "only {checked} registers checked");
    Ok(())
}

/// A DMA copy moves the bytes exactly, is covered by a write record; a copy
/// from an IOVA nobody mapped completes with a read error and one to such
/// an IOVA is reported as an IOMMU fault; neither touches memory.
pub fn dma_copy_with_records<T: CardTransport>(card: Card<T>) -> Result<DmaCard<T>, String> {
    let mut dma = DmaCard::new(card, DmaConfig::default()).map_err(e("DMA setup"))?;
    dma.keep_records = true;
    let mut src = dma.transport().alloc_dma(8192).map_err(e("alloc"))?;
    let dst = dma.transport().alloc_dma(8192).map_err(e("alloc"))?;
    let pattern: Vec<u8> = (0..src.len).map(|i| (i * 7 + 3) as u8).collect();
    src.write(0, &pattern);
    let (s, d, len) = (src.iova + 5, dst.iova + 13, 3001u32);
    dma.post(0, Descriptor { src: s, dst: d, len, cookie: 0xc0ffee }).map_err(e("post"))?;
    let c = dma.complete_all(Duration::from_millis(2)).map_err(e("complete"))?;
    ensure!(c.len() == 1 && c[0].cookie == 0xc0ffee && c[0].status == 0, "completion {c:?}");
    let (dn, sn) = (dst.to_vec(), src.to_vec());
    ensure!(dn[13..13 + len as usize] == sn[5..5 + len as usize], "copied bytes differ");
    ensure!(dn[..13].iter().all(|&b| b == 0) && dn[13 + len as usize..].iter().all(|&b| b == 0), "bytes around dst touched");
    dma.sync_records().map_err(e("records"))?;
    ensure!(dma.records.iter().any(|r| r.iova <= d && r.iova + r.len as u64 >= d + len as u64), "no record covers the data: {:?}", dma.records);
    // An IOVA in the guard gap after `dst`: mapped to nothing.
    let hole = dst.iova + 8192 + 64;
    dma.post(1, Descriptor { src: hole, dst: d, len: 64, cookie: 1 }).map_err(e("post"))?;
    let c = dma.complete_all(Duration::from_millis(2)).map_err(e("complete"))?;
    ensure!(c.len() == 1 && c[0].status == CPL_STATUS_READ_ERROR, "copy from an unmapped IOVA: {c:?}");
    dma.post(1, Descriptor { src: s, dst: hole, len: 64, cookie: 2 }).map_err(e("post"))?;
    let c = dma.complete_all(Duration::from_millis(2)).map_err(e("complete"))?;
    ensure!(c.len() == 1 && c[0].status == STATUS_IOMMU_FAULT, "copy to an unmapped IOVA: {c:?}");
    ensure!(dst.to_vec() == dn, "a refused copy changed memory");
    Ok(dma)
}

/// Network queues through the overlay: a frame sent on a TX queue leaves
/// the port as Geneve with the tenant's VNI and the frame inside byte for
/// byte; a Geneve packet for a mapped VNI arrives in an RX buffer,
/// decapsulated, with write records covering it.
pub fn network_queues<T: CardTransport>(dma: &mut DmaCard<T>, far: &mut impl FarEnd<T>) -> Check {
    {
        let mut net = NetCtl::new(&mut dma.card);
        for t in 0..4 {
            let tt = test_tenant(t, Policy::PerFlow);
            net.program_tenant(t, &tt.context()).map_err(e("program tenant"))?;
            net.map_vni(t, tt.ctx.vni, t as u8, 2).map_err(e("map VNI"))?;
        }
    }
    dma.set_queue_mode(1, QMODE_TX).map_err(e("TX mode"))?;
    dma.set_queue_mode(2, QMODE_RX).map_err(e("RX mode"))?;
    dma.post_rx_buffers(2, 8, 2048).map_err(e("RX buffers"))?;
    let frames: Vec<Vec<u8>> = (0..3).map(|k| (0..(100 + 300 * k)).map(|i| (i * 13 + k) as u8).collect()).collect();
    for (k, f) in frames.iter().enumerate() {
        dma.send_frame(1, k as u8, f).map_err(e("send"))?;
    }
    dma.complete_all(Duration::from_millis(2)).map_err(e("TX completions"))?;
    let sent = far.collect(dma, frames.len());
    ensure!(sent.len() == frames.len(), "{} of {} frames left the port", sent.len(), frames.len());
    for (k, p) in sent.iter().enumerate() {
        let (vni, inner) = decapsulate(p).map_err(|x| format!("frame {k} is not valid Geneve: {x}"))?;
        ensure!(vni == test_tenant(k, Policy::PerFlow).ctx.vni, "frame {k}: VNI {vni:#x}");
        ensure!(inner[..frames[k].len()] == frames[k][..], "frame {k}: inner bytes differ");
    }
    let inner: Vec<u8> = (0..200).map(|i| (i * 5 + 1) as u8).collect();
    far.inject(dma, &encapsulate(&inner, &test_tenant(3, Policy::PerFlow).ctx, 40000));
    let got = receive(dma, 2, 1, Duration::from_secs(60))?;
    ensure!(!got.is_empty(), "no frame arrived in the RX queue");
    ensure!(got.len() == 1 && got[0].tenant == 3 && got[0].bytes == inner, "received {:?}", got.iter().map(|f| (f.tenant, f.bytes.len())).collect::<Vec<_>>());
    dma.sync_records().map_err(e("records"))?;
    let (a, n) = (got[0].iova, got[0].bytes.len() as u64);
    ensure!(dma.records.iter().any(|r| r.iova <= a && r.iova + r.len as u64 >= a + n), "no write record covers the received frame");
    Ok(())
}

/// The tagged cache through the driver: isolation, counters, clear errors.
pub fn cache_control<T: CardTransport>(card: &mut Card<T>) -> Check {
    let mut cache = CacheCtl::new(card).map_err(e("cache"))?;
    cache.set_way_mask(1, 0x0f).map_err(e("mask"))?;
    cache.set_way_mask(2, 0xf0).map_err(e("mask"))?;
    ensure!(cache.lookup(1, 0x0a00_0002).map_err(e("lookup"))?.is_none(), "hit in an empty cache");
    cache.fill(1, 0x0a00_0002, 0xc0a8_0001).map_err(e("fill"))?;
    ensure!(cache.lookup(1, 0x0a00_0002).map_err(e("lookup"))? == Some(0xc0a8_0001), "fill not found");
    ensure!(cache.lookup(2, 0x0a00_0002).map_err(e("lookup"))?.is_none(), "tag 2 sees tag 1's line");
    let c1 = cache.counters(1).map_err(e("counters"))?;
    ensure!((c1.hits, c1.misses, c1.fills) == (1, 1, 1), "tag 1 counters {c1:?}");
    ensure!(cache.set_way_mask(16, 1).is_err(), "tag 16 accepted");
    Ok(())
}
