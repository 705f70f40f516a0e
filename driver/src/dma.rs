//! The DMA engine's host side: copy queues (post, poll, wait for the
//! interrupt) and dirty-page logging built from the card's write records,
//! shaped like Linux's VFIO device DMA logging: start with IOVA ranges and a
//! page size, report a bitmap for a range (clearing what it returns), stop.
//!
//! Network queues: a queue in TX mode sends frames (`send_frame`, copied into
//! a per-queue bounce area the card reads from); a queue in RX mode gets
//! receive buffers (`post_rx_buffers`) that the card fills with frames from
//! the network side (`poll_rx` returns them and re-posts the buffers).
//!
//! Formats and offsets come from `offcard_regs::{dma, formats}` (docs/dma.md).

use crate::card::Card;
use crate::transport::{CardTransport, DmaBuffer, Result, TransportError};
use offcard_regs::dma::*;
use std::time::Duration;

pub use offcard_regs::formats::{Descriptor, WriteRecord};
use offcard_regs::formats::CompletionRecord;

/// Driver-level status for a destination the IOMMU refused (the card cannot
/// see a dropped posted write; the IOMMU fault is attributed here).
pub const STATUS_IOMMU_FAULT: u16 = 0x100;

/// A completion entry the card wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    pub cookie: u64,
    pub len: u32,
    pub status: u16,
    pub queue: u8,
    /// Tenant from the completion's flags (RX: the frame's; TX: the descriptor's).
    pub tenant: u8,
    /// Ring index of the descriptor this completes.
    pub index: u32,
}

struct Queue {
    ring: DmaBuffer,
    cpl: DmaBuffer,
    entries: u32,
    tail: u32,
    next_cpl: u32,
    in_flight: u32,
    /// dst ranges of descriptors in flight, by ring index (for IOMMU faults).
    dst: Vec<(u64, u32)>,
    mode: u32,
    /// TX mode: one `TX_SLOT` per ring entry, the frame's bytes for the card to read.
    tx_area: Option<DmaBuffer>,
    /// RX mode: receive buffers, and which one each ring entry holds.
    /// (buffer, offset of the posted dst in it)
    rx_bufs: Vec<(DmaBuffer, usize)>,
    rx_slot: Vec<usize>,
}

/// The engine's network counters (`CNT_TX_FRAMES` ...).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetCounters {
    pub tx_frames: u32,
    pub rx_frames: u32,
    pub rx_no_buffer: u32,
    pub rx_too_long: u32,
    pub rx_bad_frame: u32,
}

/// A received frame and the IOVA of the buffer it was written into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RxFrame {
    pub tenant: u8,
    pub iova: u64,
    pub bytes: Vec<u8>,
}

/// What `poll_rx` saw besides good frames.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxStats {
    pub frames: u64,
    pub bytes: u64,
    /// Completions with an error status (frame dropped, buffer re-posted).
    pub errors: u64,
    pub too_long: u64,
}

/// Dirty-page tracking state (one epoch at a time).
struct DirtyLog {
    ranges: Vec<(u64, u64)>,
    page_size: u64,
    /// Dirty pages, as page numbers (iova / page_size).
    pages: std::collections::BTreeSet<u64>,
}

/// Everything the driver learnt about write records so far.
#[derive(Clone, Copy, Debug, Default)]
pub struct RecordStats {
    pub records: u64,
    pub bytes_described: u64,
    pub overflows: u64,
    pub sequence_gaps: u64,
}

pub struct DmaCard<T: CardTransport> {
    pub card: Card<T>,
    queues: Vec<Queue>,
    wrec: DmaBuffer,
    wrec_entries: u32,
    wrec_cons: u32,
    wb: DmaBuffer,
    dirty: Option<DirtyLog>,
    next_seq: u16,
    pub stats: RecordStats,
    /// Every record seen, when `keep_records` is set (tests).
    pub keep_records: bool,
    pub records: Vec<WriteRecord>,
    pub rx_stats: RxStats,
    /// IOMMU faults reported but not yet matched to a completion (a fault
    /// can be reported before the completion it belongs to is seen).
    pending_faults: Vec<(u64, bool)>,
}

/// Queue and record-ring sizes.
#[derive(Clone, Copy, Debug)]
pub struct DmaConfig {
    pub queues: u32,
    pub ring_log2: u32,
    pub wrec_log2: u32,
    /// Cycles a write may wait on a full record ring before overflow.
    pub wrec_timeout: u32,
    pub irq_coalesce: u32,
}

impl Default for DmaConfig {
    fn default() -> Self {
        DmaConfig { queues: NUM_QUEUES, ring_log2: 8, wrec_log2: 10, wrec_timeout: 100_000, irq_coalesce: 1 }
    }
}

/// Bytes of a TX queue's bounce slot: a largest frame at any offset below 64.
const TX_SLOT: usize = MAX_FRAME as usize + 64;

fn qreg(q: u32, off: u32) -> u32 {
    QUEUE_BASE + q * QUEUE_STRIDE + off
}

impl<T: CardTransport> DmaCard<T> {
    /// Allocate rings, program the engine, enable the queues.
    pub fn new(mut card: Card<T>, cfg: DmaConfig) -> Result<Self> {
        if cfg.queues == 0 || cfg.queues > NUM_QUEUES || !(1..=12).contains(&cfg.ring_log2) || !(1..=16).contains(&cfg.wrec_log2) {
            return Err(TransportError::Other(format!("bad DMA configuration {cfg:?}")));
        }
        let entries = 1u32 << cfg.ring_log2;
        let mut queues = vec![];
        for q in 0..cfg.queues {
            let ring = card.transport.alloc_dma((entries * DESC_BYTES) as usize)?;
            let cpl = card.transport.alloc_dma((entries * CPL_BYTES) as usize)?;
            let t = &mut card.transport;
            t.bar0_write32(qreg(q, Q_CTRL), Q_CTRL_RESET)?;
            t.bar0_write32(qreg(q, Q_RING_LO), ring.iova as u32)?;
            t.bar0_write32(qreg(q, Q_RING_HI), (ring.iova >> 32) as u32)?;
            t.bar0_write32(qreg(q, Q_RING_LOG2), cfg.ring_log2)?;
            t.bar0_write32(qreg(q, Q_CPL_LO), cpl.iova as u32)?;
            t.bar0_write32(qreg(q, Q_CPL_HI), (cpl.iova >> 32) as u32)?;
            t.bar0_write32(qreg(q, Q_CTRL), Q_CTRL_ENABLE)?;
            t.bar0_write32(qreg(q, Q_MODE), QMODE_COPY)?;
            queues.push(Queue {
                ring,
                cpl,
                entries,
                tail: 0,
                next_cpl: 0,
                in_flight: 0,
                dst: vec![(0, 0); entries as usize],
                mode: QMODE_COPY,
                tx_area: None,
                rx_bufs: vec![],
                rx_slot: vec![0; entries as usize],
            });
        }
        let wrec_entries = 1u32 << cfg.wrec_log2;
        let wrec = card.transport.alloc_dma((wrec_entries * WREC_BYTES) as usize)?;
        let wb = card.transport.alloc_dma(64)?;
        let t = &mut card.transport;
        t.bar0_write32(WREC_LO, wrec.iova as u32)?;
        t.bar0_write32(WREC_HI, (wrec.iova >> 32) as u32)?;
        t.bar0_write32(WREC_LOG2, cfg.wrec_log2)?;
        t.bar0_write32(WREC_TIMEOUT, cfg.wrec_timeout)?;
        t.bar0_write32(WREC_WB_LO, wb.iova as u32)?;
        t.bar0_write32(WREC_WB_HI, (wb.iova >> 32) as u32)?;
        t.bar0_write32(IRQ_COALESCE, cfg.irq_coalesce)?;
        let cons = t.bar0_read32(WREC_PROD)?;
        t.bar0_write32(WREC_CONS, cons)?;
        t.enable_interrupts()?;
        Ok(DmaCard {
            card,
            queues,
            wrec,
            wrec_entries,
            wrec_cons: cons,
            wb,
            dirty: None,
            next_seq: cons as u16,
            stats: RecordStats::default(),
            keep_records: false,
            records: vec![],
            rx_stats: RxStats::default(),
            pending_faults: Vec::new(),
        })
    }

    pub fn transport(&mut self) -> &mut T {
        &mut self.card.transport
    }

    /// Queue a descriptor; `Err` if the ring is full.
    pub fn post(&mut self, q: usize, d: Descriptor) -> Result<u32> {
        self.post_flags(q, d, 0)
    }

    /// Queue a descriptor with its flags word; `Err` if the ring is full.
    pub fn post_flags(&mut self, q: usize, d: Descriptor, flags: u32) -> Result<u32> {
        let qu = self.queues.get_mut(q).ok_or(TransportError::Other(format!("no queue {q}")))?;
        if qu.in_flight + 1 >= qu.entries {
            return Err(TransportError::Other(format!("queue {q} is full")));
        }
        let idx = qu.tail;
        let off = (idx * DESC_BYTES) as usize;
        qu.ring.write(off, &d.to_bytes_with_flags(flags));
        let c = (idx * CPL_BYTES) as usize;
        qu.cpl.fill(c, CPL_BYTES as usize, 0);
        qu.dst[idx as usize] = (d.dst, d.len);
        qu.tail = (qu.tail + 1) % qu.entries;
        qu.in_flight += 1;
        let tail = qu.tail;
        self.card.transport.bar0_write32(qreg(q as u32, Q_TAIL), tail)?;
        Ok(idx)
    }

    /// Ring the doorbell with a raw tail value (a misbehaving host, for tests).
    pub fn write_tail_raw(&mut self, q: usize, tail: u32) -> Result<()> {
        self.card.transport.bar0_write32(qreg(q as u32, Q_TAIL), tail)
    }

    /// Queue status register (bit 0: tail out of range, queue stopped).
    pub fn queue_status(&mut self, q: usize) -> Result<u32> {
        self.card.transport.bar0_read32(qreg(q as u32, Q_STATUS))
    }

    pub fn in_flight(&self, q: usize) -> u32 {
        self.queues[q].in_flight
    }

    /// Completed descriptors of queue `q`, in order. Also drains the record
    /// ring, so a card stalled on a full ring can go on.
    pub fn poll(&mut self, q: usize) -> Result<Vec<Completion>> {
        self.drain_records()?;
        let new_faults = self.card.transport.take_iommu_faults();
        self.pending_faults.extend(new_faults);
        let excess = self.pending_faults.len().saturating_sub(1024);
        self.pending_faults.drain(..excess);
        let faults = &mut self.pending_faults;
        let qu = &mut self.queues[q];
        let mut out = vec![];
        while qu.in_flight > 0 {
            let off = (qu.next_cpl * CPL_BYTES) as usize;
            let Some(r) = CompletionRecord::parse(&qu.cpl.read_vec(off, CPL_BYTES as usize)) else {
                break;
            };
            let mut c =
                Completion { cookie: r.cookie, len: r.len, status: r.status, queue: r.queue, tenant: r.tenant(), index: qu.next_cpl };
            let (dst, len) = qu.dst[qu.next_cpl as usize];
            let hit = |&(a, w): &(u64, bool)| w && a >= dst && a < dst + len as u64;
            if c.status == CPL_STATUS_OK && faults.iter().any(hit) {
                c.status = STATUS_IOMMU_FAULT;
                faults.retain(|f| !hit(f));
            }
            out.push(c);
            qu.next_cpl = (qu.next_cpl + 1) % qu.entries;
            qu.in_flight -= 1;
        }
        Ok(out)
    }

    /// Wait for the engine's interrupt.
    pub fn wait(&mut self, timeout: Duration) -> Result<bool> {
        self.card.transport.wait_interrupt(timeout)
    }

    /// Poll every copy and TX queue until all posted descriptors completed
    /// (RX queues are left alone: their buffers complete when frames come,
    /// and `poll_rx` takes those completions).
    pub fn complete_all(&mut self, timeout: Duration) -> Result<Vec<Completion>> {
        let mut all = vec![];
        let mut idle_waits = 0;
        loop {
            for q in 0..self.queues.len() {
                if self.queues[q].mode != QMODE_RX {
                    all.extend(self.poll(q)?);
                }
            }
            if self.queues.iter().all(|q| q.in_flight == 0 || q.mode == QMODE_RX) {
                return Ok(all);
            }
            // Wake up on the interrupt (completions, or a full record
            // ring asking to be drained) and poll again.
            if !self.wait(timeout)? {
                idle_waits += 1;
                if idle_waits > 3 {
                    return Err(TransportError::Other(format!(
                        "DMA did not complete: {:?} descriptors in flight",
                        self.queues.iter().map(|q| if q.mode == QMODE_RX { 0 } else { q.in_flight }).collect::<Vec<_>>()
                    )));
                }
            }
        }
    }

    /// Consume the records the card has published (WREC_PROD) and free
    /// their slots (WREC_CONS).
    pub fn drain_records(&mut self) -> Result<usize> {
        let prod = self.card.transport.bar0_read32(WREC_PROD)?;
        let mut n = 0;
        while self.wrec_cons != prod {
            let slot = (self.wrec_cons % self.wrec_entries) as usize * WREC_BYTES as usize;
            let r = WriteRecord::parse(&self.wrec.read_vec(slot, WREC_BYTES as usize))
                .ok_or(TransportError::Other(format!("record slot {slot:#x} not valid below the producer index")))?;
            if r.seq != self.next_seq {
                self.stats.sequence_gaps += 1;
            }
            self.next_seq = r.seq.wrapping_add(1);
            self.stats.records += 1;
            self.stats.bytes_described += r.len as u64;
            if let Some(d) = self.dirty.as_mut() {
                mark(d, r.iova, r.len as u64);
            }
            if self.keep_records {
                self.records.push(r);
            }
            self.wrec.write(slot + 13, &[0]);
            self.wrec_cons = self.wrec_cons.wrapping_add(1);
            n += 1;
        }
        if n > 0 {
            self.card.transport.bar0_write32(WREC_CONS, self.wrec_cons)?;
        }
        Ok(n)
    }

    /// Make every write so far visible as records: flush, wait, drain.
    pub fn sync_records(&mut self) -> Result<()> {
        self.card.transport.bar0_write32(WREC_FLUSH, 1)?;
        for _ in 0..100_000 {
            self.drain_records()?;
            let st = self.card.transport.bar0_read32(DMA_STATUS)?;
            if st & STATUS_FLUSH_PENDING == 0 {
                self.drain_records()?;
                let wb = u32::from_le_bytes(self.wb.read_vec(0, 4).try_into().unwrap());
                if wb != self.wrec_cons {
                    return Err(TransportError::Other(format!("producer write-back {wb} != records consumed {}", self.wrec_cons)));
                }
                return Ok(());
            }
        }
        Err(TransportError::Other("record flush did not finish".into()))
    }

    // ---- dirty logging (the shape of VFIO device DMA logging) ----------------

    /// Start tracking writes into `ranges` (IOVA, length) at `page_size`.
    pub fn dirty_start(&mut self, ranges: &[(u64, u64)], page_size: u64) -> Result<()> {
        if !page_size.is_power_of_two() || page_size < 4096 {
            return Err(TransportError::Other(format!("page size {page_size} must be a power of two >= 4096")));
        }
        self.sync_records()?;
        self.card.transport.bar0_write32(DMA_STATUS, STATUS_OVERFLOW)?;
        self.dirty = Some(DirtyLog { ranges: ranges.to_vec(), page_size, pages: Default::default() });
        Ok(())
    }

    /// Bitmap (one bit per page, LSB first in each u64) of the pages in
    /// [iova, iova + len) written since the last report; the bits returned
    /// are cleared. If the record ring overflowed, every tracked page is
    /// reported dirty for this epoch.
    pub fn dirty_report(&mut self, iova: u64, len: u64) -> Result<Vec<u64>> {
        self.sync_records()?;
        let st = self.card.transport.bar0_read32(DMA_STATUS)?;
        let d = self.dirty.as_mut().ok_or(TransportError::Other("dirty logging not started".into()))?;
        if st & STATUS_OVERFLOW != 0 {
            self.stats.overflows += 1;
            let ranges = d.ranges.clone();
            for (a, l) in ranges {
                mark(d, a, l);
            }
            self.card.transport.bar0_write32(DMA_STATUS, STATUS_OVERFLOW)?;
        }
        let d = self.dirty.as_mut().unwrap();
        let ps = d.page_size;
        let first = iova / ps;
        let n = len.div_ceil(ps);
        let mut bm = vec![0u64; n.div_ceil(64) as usize];
        let hits: Vec<u64> = d.pages.range(first..first + n).copied().collect();
        for p in hits {
            bm[((p - first) / 64) as usize] |= 1 << ((p - first) % 64);
            d.pages.remove(&p);
        }
        Ok(bm)
    }

    pub fn dirty_stop(&mut self) {
        self.dirty = None;
    }

    /// Read a global DMA register.
    pub fn reg(&mut self, off: u32) -> Result<u32> {
        self.card.transport.bar0_read32(off)
    }

    // ---- network queues ---------------------------------------------------------

    /// Switch queue `q` to `mode` (`QMODE_COPY`, `QMODE_TX`, `QMODE_RX`).
    /// The queue must be idle (nothing in flight); a TX queue gets its
    /// bounce area here.
    pub fn set_queue_mode(&mut self, q: usize, mode: u32) -> Result<()> {
        if mode > QMODE_RX {
            return Err(TransportError::Other(format!("queue mode {mode} is not defined")));
        }
        let qu = self.queues.get(q).ok_or(TransportError::Other(format!("no queue {q}")))?;
        if qu.in_flight != 0 {
            return Err(TransportError::Other(format!("queue {q} has {} descriptors in flight", qu.in_flight)));
        }
        if mode == QMODE_TX && qu.tx_area.is_none() {
            let area = self.card.transport.alloc_dma(qu.entries as usize * TX_SLOT)?;
            self.queues[q].tx_area = Some(area);
        }
        self.card.transport.bar0_write32(qreg(q as u32, Q_MODE), mode)?;
        self.queues[q].mode = mode;
        Ok(())
    }

    pub fn queue_mode(&self, q: usize) -> u32 {
        self.queues[q].mode
    }

    /// Send one frame of `tenant` on TX queue `q`: the bytes go into the
    /// queue's bounce slot for the next ring entry, the card reads them and
    /// sends them out of its network port. Completions come through
    /// `poll`/`complete_all`. Returns the ring index.
    pub fn send_frame(&mut self, q: usize, tenant: u8, bytes: &[u8]) -> Result<u32> {
        self.send_frame_at(q, tenant, bytes, 0)
    }

    /// The same with the frame placed `offset` bytes (0..64) into its slot,
    /// so tests can vary the source alignment.
    pub fn send_frame_at(&mut self, q: usize, tenant: u8, bytes: &[u8], offset: usize) -> Result<u32> {
        let qu = self.queues.get_mut(q).ok_or(TransportError::Other(format!("no queue {q}")))?;
        if qu.mode != QMODE_TX {
            return Err(TransportError::Other(format!("queue {q} is not in TX mode")));
        }
        if tenant as u32 > DESC_FLAGS_TENANT_MASK || offset >= 64 {
            return Err(TransportError::Other(format!("bad tenant {tenant} or offset {offset}")));
        }
        // A frame over MAX_FRAME is still posted (only its first MAX_FRAME
        // bytes are staged): the card must refuse it with
        // CPL_STATUS_BAD_LENGTH without reading, and tests check that.
        let slot = qu.tail as usize * TX_SLOT;
        let area = qu.tx_area.as_mut().unwrap();
        let n = bytes.len().min(MAX_FRAME as usize);
        area.write(slot + offset, &bytes[..n]);
        let src = area.iova + (slot + offset) as u64;
        let d = Descriptor { src, dst: 0, len: bytes.len() as u32, cookie: src };
        self.post_flags(q, d, (tenant as u32 & DESC_FLAGS_TENANT_MASK) << DESC_FLAGS_TENANT_SHIFT)
    }

    /// Give RX queue `q` `n` receive buffers of `size` bytes each (allocated
    /// here, kept for the queue's life, re-posted by `poll_rx`).
    pub fn post_rx_buffers(&mut self, q: usize, n: usize, size: usize) -> Result<()> {
        self.post_rx_buffers_at(q, n, size, 0)
    }

    /// The same with each buffer starting `offset` bytes into a page (the
    /// card writes frames at any byte alignment).
    pub fn post_rx_buffers_at(&mut self, q: usize, n: usize, size: usize, offset: usize) -> Result<()> {
        let qu = self.queues.get(q).ok_or(TransportError::Other(format!("no queue {q}")))?;
        if qu.mode != QMODE_RX {
            return Err(TransportError::Other(format!("queue {q} is not in RX mode")));
        }
        if qu.in_flight as usize + n >= qu.entries as usize {
            return Err(TransportError::Other(format!("queue {q}: {n} more buffers do not fit the ring")));
        }
        for _ in 0..n {
            let b = self.card.transport.alloc_dma(size + offset)?;
            let id = self.queues[q].rx_bufs.len();
            self.queues[q].rx_bufs.push((b, offset));
            self.post_rx_buffer(q, id)?;
        }
        Ok(())
    }

    fn post_rx_buffer(&mut self, q: usize, id: usize) -> Result<()> {
        let qu = &mut self.queues[q];
        let (b, off) = &qu.rx_bufs[id];
        let d = Descriptor { src: 0, dst: b.iova + *off as u64, len: (b.len - off) as u32, cookie: id as u64 };
        qu.rx_slot[qu.tail as usize] = id;
        self.post(q, d)?;
        Ok(())
    }

    /// Frames received on RX queue `q` since the last call, as (tenant,
    /// bytes), in order. Every completed buffer is posted again; completions
    /// with an error status are counted in `rx_stats` and skipped.
    pub fn poll_rx(&mut self, q: usize) -> Result<Vec<(u8, Vec<u8>)>> {
        Ok(self.poll_rx_frames(q)?.into_iter().map(|f| (f.tenant, f.bytes)).collect())
    }

    /// `poll_rx` with where each frame landed.
    pub fn poll_rx_frames(&mut self, q: usize) -> Result<Vec<RxFrame>> {
        if self.queues.get(q).map(|qu| qu.mode) != Some(QMODE_RX) {
            return Err(TransportError::Other(format!("queue {q} is not in RX mode")));
        }
        let done = self.poll(q)?;
        let mut out = vec![];
        for c in done {
            let id = self.queues[q].rx_slot[c.index as usize];
            if c.status == CPL_STATUS_OK {
                let (b, off) = &self.queues[q].rx_bufs[id];
                out.push(RxFrame { tenant: c.tenant, iova: b.iova + *off as u64, bytes: b.read_vec(*off, c.len as usize) });
                self.rx_stats.frames += 1;
                self.rx_stats.bytes += c.len as u64;
            } else {
                self.rx_stats.errors += 1;
                if c.status == CPL_STATUS_RX_TOO_LONG {
                    self.rx_stats.too_long += 1;
                }
            }
            self.post_rx_buffer(q, id)?;
        }
        Ok(out)
    }

    /// IOVA ranges (start, length) of queue `q`'s receive buffers as posted.
    pub fn rx_buffer_ranges(&self, q: usize) -> Vec<(u64, u64)> {
        self.queues[q].rx_bufs.iter().map(|(b, off)| (b.iova + *off as u64, (b.len - off) as u64)).collect()
    }

    /// The engine's network counters.
    pub fn net_counters(&mut self) -> Result<NetCounters> {
        Ok(NetCounters {
            tx_frames: self.reg(CNT_TX_FRAMES)?,
            rx_frames: self.reg(CNT_RX_FRAMES)?,
            rx_no_buffer: self.reg(CNT_RX_NO_BUFFER)?,
            rx_too_long: self.reg(CNT_RX_TOO_LONG)?,
            rx_bad_frame: self.reg(CNT_RX_BAD_FRAME)?,
        })
    }
}

fn mark(d: &mut DirtyLog, iova: u64, len: u64) {
    if len == 0 {
        return;
    }
    let end = iova + len;
    for &(a, l) in &d.ranges {
        let (s, e) = (iova.max(a), end.min(a + l));
        if s < e {
            for p in s / d.page_size..=(e - 1) / d.page_size {
                d.pages.insert(p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn write_record_bytes_round_trip() {
        let r = WriteRecord { iova: 0x1234_5678_9abc, len: 4097, source: 0x13, seq: 65535 };
        assert_eq!(WriteRecord::parse(&r.to_bytes()), Some(r));
        let mut b = r.to_bytes();
        b[13] = 0;
        assert_eq!(WriteRecord::parse(&b), None, "a slot without the valid flag is not a record");
    }
}
