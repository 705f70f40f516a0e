//! The card's virtqueue engine from the host: the control path a VMM (or a
//! vhost-user / vDPA front end) runs for a virtio-net device whose data path
//! is the card (docs/virtio.md). Queue setup (ring addresses as guest
//! physical addresses, size, the pair's tenant), enable and reset, the
//! doorbells, and the engine's state: each queue's indices and error, the
//! interrupt status and the counters. Registers: `regmap::virtq`.

use crate::transport::{CardTransport, Result, TransportError};
use offcard_regs::virtq::*;

/// Where a split queue lives in guest memory and what it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueSetup {
    /// Queue size, log2 (1..=15).
    pub size_log2: u32,
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
    /// The pair's tenant: its transmitq's frames get this encapsulation
    /// context, and its receiveq takes the frames decapsulated for it.
    pub tenant: u8,
}

/// One queue's state on the card.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueState {
    pub last_avail: u16,
    pub used_idx: u16,
    /// `ERR_*` (0: running).
    pub error: u32,
}

/// The engine's counters (`VQ_CNT_*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VirtqCounters {
    pub tx_frames: u32,
    pub tx_drops: u32,
    pub queue_errors: u32,
    pub irqs: u32,
    pub irqs_suppressed: u32,
    pub flag_read_errors: u32,
    pub rx_frames: u32,
    pub rx_drops: u32,
    pub rx_bad_buffers: u32,
}

fn qreg(q: u32, off: u32) -> u32 {
    VQ_BASE + q * VQ_STRIDE + off
}

fn check_queue(q: u32) -> Result<()> {
    if q as usize >= NUM_QUEUES {
        return Err(TransportError::Other(format!("virtqueue {q} does not exist (the card has {NUM_QUEUES})")));
    }
    Ok(())
}

/// Program queue `q` and enable it: reset (indices and error to 0), ring
/// addresses, then size, tenant and enable.
pub fn setup_queue<T: CardTransport>(t: &mut T, q: u32, s: &QueueSetup) -> Result<()> {
    check_queue(q)?;
    if !(1..=MAX_SIZE_LOG2).contains(&s.size_log2) {
        return Err(TransportError::Other(format!("virtqueue size 2^{} is not 2^1..2^{MAX_SIZE_LOG2}", s.size_log2)));
    }
    // virtio 1.x 2.7: descriptor table 16-byte, available ring 2-byte, used ring 4-byte aligned.
    if s.desc % 16 != 0 || s.avail % 2 != 0 || s.used % 4 != 0 {
        return Err(TransportError::Other(format!("virtqueue {q}: misaligned rings {s:x?}")));
    }
    if s.tenant as u64 > CTRL_TENANT_MASK {
        return Err(TransportError::Other(format!("tenant {} is not 0..={CTRL_TENANT_MASK}", s.tenant)));
    }
    reset_queue(t, q)?;
    for (lo, addr) in [(Q_DESC_LO, s.desc), (Q_AVAIL_LO, s.avail), (Q_USED_LO, s.used)] {
        t.bar0_write32(qreg(q, lo), addr as u32)?;
        t.bar0_write32(qreg(q, lo + 4), (addr >> 32) as u32)?;
    }
    let ctrl = s.size_log2 as u64 | CTRL_ENABLE | (s.tenant as u64) << CTRL_TENANT_SHIFT;
    t.bar0_write32(qreg(q, Q_CTRL), ctrl as u32)
}

/// Stop queue `q` and set its indices and error state to 0.
pub fn reset_queue<T: CardTransport>(t: &mut T, q: u32) -> Result<()> {
    check_queue(q)?;
    t.bar0_write32(qreg(q, Q_CTRL), CTRL_RESET as u32)?;
    t.bar0_write32(qreg(q, Q_USED_IDX), 0)
}

/// The driver's notification: queue `q` has new available entries.
pub fn notify<T: CardTransport>(t: &mut T, q: u32) -> Result<()> {
    check_queue(q)?;
    t.bar0_write32(NOTIFY_BASE + q * NOTIFY_STRIDE, q)
}

pub fn queue_state<T: CardTransport>(t: &mut T, q: u32) -> Result<QueueState> {
    check_queue(q)?;
    Ok(QueueState {
        last_avail: t.bar0_read32(qreg(q, Q_LAST_AVAIL))? as u16,
        used_idx: t.bar0_read32(qreg(q, Q_USED_IDX))? as u16,
        error: t.bar0_read32(qreg(q, Q_ERROR))?,
    })
}

pub fn counters<T: CardTransport>(t: &mut T) -> Result<VirtqCounters> {
    Ok(VirtqCounters {
        tx_frames: t.bar0_read32(VQ_CNT_TX_FRAMES)?,
        tx_drops: t.bar0_read32(VQ_CNT_TX_DROPS)?,
        queue_errors: t.bar0_read32(VQ_CNT_QUEUE_ERRORS)?,
        irqs: t.bar0_read32(VQ_CNT_IRQS)?,
        irqs_suppressed: t.bar0_read32(VQ_CNT_IRQ_SUPPRESSED)?,
        flag_read_errors: t.bar0_read32(VQ_CNT_FLAG_READ_ERRORS)?,
        rx_frames: t.bar0_read32(VQ_CNT_RX_FRAMES)?,
        rx_drops: t.bar0_read32(VQ_CNT_RX_DROPS)?,
        rx_bad_buffers: t.bar0_read32(VQ_CNT_RX_BAD_BUFFERS)?,
    })
}

/// The queues that interrupted since the last call (bit q), cleared.
pub fn take_irq_status<T: CardTransport>(t: &mut T) -> Result<u32> {
    let s = t.bar0_read32(VQ_IRQ_STATUS)?;
    if s != 0 {
        t.bar0_write32(VQ_IRQ_STATUS, s)?;
    }
    Ok(s)
}
