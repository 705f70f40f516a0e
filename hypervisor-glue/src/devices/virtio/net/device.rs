//! The virtio-net device: queue 0 receives, queue 1 transmits, every buffer starts
//! with a 12-byte `virtio_net_hdr_v1`; frames go to and come from a [`NetBackend`].
//! The rings are virtio-queue's; the device copies each frame between guest memory
//! and the backend itself (the card-backed device will not).

use std::collections::VecDeque;
use std::mem::{offset_of, size_of};
use std::sync::atomic::Ordering;

use virtio_bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_bindings::virtio_ids::VIRTIO_ID_NET;
use virtio_bindings::virtio_net::{virtio_net_config, virtio_net_hdr_v1, VIRTIO_NET_F_MAC, VIRTIO_NET_S_LINK_UP};
use virtio_bindings::virtio_ring::{vring_used, vring_used_elem_t};
use virtio_queue::desc::split::Descriptor;
use virtio_queue::{DescriptorChain, Queue, QueueOwnedT, QueueT};
use vm_memory::{Bytes, GuestMemoryMmap};

use super::NetBackend;
use crate::devices::virtio::{DeviceError, Interrupt, VirtioDevice};
use crate::dirty::DeviceWriteLog;

/// Bytes of the header before every frame (`virtio_net_hdr_v1`, with num_buffers).
pub const NET_HDR_LEN: usize = size_of::<virtio_net_hdr_v1>();
/// Largest queue the device accepts (what QueueNumMax reads).
const QUEUE_MAX_SIZE: u16 = 256;
const RX_QUEUE: usize = 0;
const TX_QUEUE: usize = 1;
/// Most bytes one transmit chain may carry: 65562, the buffer bound of crosvm's and
/// Firecracker's net devices (a 64 KiB segmentation-offload frame with its headers),
/// plus the header.
const MAX_TX_BYTES: usize = 65562 + NET_HDR_LEN;
/// Frames the device holds from its backend while the driver has no receive buffer
/// posted; more are dropped and counted.
const RX_PENDING_MAX: usize = 1024;

/// What the device did, cumulative.
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetStats {
    pub tx_frames: u64,
    pub rx_frames: u64,
    pub rx_dropped: u64,
    /// Times the driver broke the ring protocol (the device then needs a reset).
    pub errors: u64,
    /// Bytes of transmit buffers (header and frame) the device read from guest memory.
    pub tx_buffer_bytes_read: u64,
    /// Bytes of receive buffers (header and frame) the device wrote into guest memory.
    /// Ring metadata (descriptors, indices, used elements) is in neither count.
    pub rx_buffer_bytes_written: u64,
}

/// A virtio-net device (behind a transport such as `MmioTransport`).
pub struct Net {
    mem: GuestMemoryMmap,
    backend: Box<dyn NetBackend>,
    mac: [u8; 6],
    /// [receive, transmit].
    queues: [Queue; 2],
    /// Frames from the backend waiting for a receive buffer.
    pending_rx: VecDeque<Vec<u8>>,
    pub stats: NetStats,
    /// Where the device's writes into guest memory are recorded: KVM's dirty log only
    /// sees vCPU writes, so the VM merges these in (as it will the card's write records).
    write_log: Option<DeviceWriteLog>,
}

impl Net {
    pub fn new(mem: GuestMemoryMmap, backend: Box<dyn NetBackend>, mac: [u8; 6]) -> Self {
        let queue = || Queue::new(QUEUE_MAX_SIZE).expect("QUEUE_MAX_SIZE is a power of two within the split-ring limit");
        Net {
            mem,
            backend,
            mac,
            queues: [queue(), queue()],
            pending_rx: VecDeque::new(),
            stats: NetStats::default(),
            write_log: None,
        }
    }

    /// Record every guest-memory write of this device into `log`.
    pub fn set_write_log(&mut self, log: DeviceWriteLog) {
        self.write_log = Some(log);
    }

    fn wrote(&self, gpa: u64, len: u64) {
        if let Some(l) = &self.write_log {
            l.lock().unwrap().push((gpa, len));
        }
    }

    /// Put `head` (written `len` bytes) in the used ring of queue `qi` and log the
    /// used element and the used index as written.
    fn add_used(&mut self, qi: usize, head: u16, len: u32) -> Result<(), DeviceError> {
        let q = &mut self.queues[qi];
        let slot = u64::from(q.next_used() % q.size());
        q.add_used(&self.mem, head, len)?;
        let used = q.used_ring();
        let elem_size = size_of::<vring_used_elem_t>() as u64;
        self.wrote(used + offset_of!(vring_used, ring) as u64 + slot * elem_size, elem_size);
        self.wrote(used + offset_of!(vring_used, idx) as u64, 2);
        Ok(())
    }

    /// Transmit every frame the driver has queued on the transmit queue.
    fn process_tx(&mut self, irq: &mut Interrupt) -> Result<(), DeviceError> {
        let mut used_any = false;
        while let Some(chain) = pop(&mut self.queues[TX_QUEUE], &self.mem)? {
            let head = chain.head_index();
            let mut buf = Vec::new();
            for desc in descriptors(chain)? {
                if desc.is_write_only() {
                    return Err(DeviceError::Protocol("write-only descriptor on the transmit queue"));
                }
                if buf.len() + desc.len() as usize > MAX_TX_BYTES {
                    return Err(DeviceError::Protocol("transmit frame too large"));
                }
                let start = buf.len();
                buf.resize(start + desc.len() as usize, 0);
                self.mem.read_slice(&mut buf[start..], desc.addr())?;
            }
            self.stats.tx_buffer_bytes_read += buf.len() as u64;
            // A backend that cannot take the frame drops it, like a full NIC queue.
            if buf.len() > NET_HDR_LEN && self.backend.send(&buf[NET_HDR_LEN..]).is_ok() {
                self.stats.tx_frames += 1;
            }
            self.add_used(TX_QUEUE, head, 0)?;
            used_any = true;
        }
        if used_any {
            irq.signal_used_queue();
        }
        Ok(())
    }

    /// Take the frames waiting in the backend and, if the driver is OK, deliver them
    /// into the driver's receive buffers.
    fn process_rx(&mut self, driver_ok: bool, irq: &mut Interrupt) -> Result<(), DeviceError> {
        while let Ok(Some(f)) = self.backend.try_recv() {
            if self.pending_rx.len() >= RX_PENDING_MAX {
                self.stats.rx_dropped += 1;
            } else {
                self.pending_rx.push_back(f);
            }
        }
        if !driver_ok {
            return Ok(());
        }
        let mut delivered = 0usize;
        let outcome = loop {
            let Some(frame) = self.pending_rx.pop_front() else { break Ok(()) };
            match self.deliver_rx(&frame) {
                Ok(true) => delivered += 1,
                Ok(false) => {
                    // No receive buffer posted: the frame waits.
                    self.pending_rx.push_front(frame);
                    break Ok(());
                }
                Err(e) => {
                    self.pending_rx.push_front(frame);
                    break Err(e);
                }
            }
        };
        if delivered > 0 {
            irq.signal_used_queue();
        }
        outcome
    }

    /// Write one frame, after its header, into the next receive chain. False when the
    /// driver has posted no buffer; a chain too small for the frame gets it truncated,
    /// is returned with length 0, and the frame counts as dropped.
    fn deliver_rx(&mut self, frame: &[u8]) -> Result<bool, DeviceError> {
        let Some(chain) = pop(&mut self.queues[RX_QUEUE], &self.mem)? else { return Ok(false) };
        let head = chain.head_index();
        let mut packet = vec![0u8; NET_HDR_LEN];
        // One buffer per frame: VIRTIO_NET_F_MRG_RXBUF is not offered.
        let num_buffers = offset_of!(virtio_net_hdr_v1, num_buffers);
        packet[num_buffers..num_buffers + 2].copy_from_slice(&1u16.to_le_bytes());
        packet.extend_from_slice(frame);
        let mut written = 0usize;
        for desc in descriptors(chain)? {
            if !desc.is_write_only() {
                return Err(DeviceError::Protocol("read-only descriptor on the receive queue"));
            }
            let n = (desc.len() as usize).min(packet.len() - written);
            self.mem.write_slice(&packet[written..written + n], desc.addr())?;
            self.wrote(desc.addr().0, n as u64);
            written += n;
            if written == packet.len() {
                break;
            }
        }
        self.stats.rx_buffer_bytes_written += written as u64;
        if written < packet.len() {
            self.stats.rx_dropped += 1;
            self.add_used(RX_QUEUE, head, 0)?;
        } else {
            self.stats.rx_frames += 1;
            self.add_used(RX_QUEUE, head, written as u32)?;
        }
        Ok(true)
    }

    /// Count a protocol error the transport is about to report.
    fn counted(&mut self, r: Result<(), DeviceError>) -> Result<(), DeviceError> {
        if r.is_err() {
            self.stats.errors += 1;
        }
        r
    }
}

impl VirtioDevice for Net {
    fn device_type(&self) -> u32 {
        VIRTIO_ID_NET
    }

    fn avail_features(&self) -> u64 {
        (1 << VIRTIO_NET_F_MAC) | (1 << VIRTIO_F_VERSION_1)
    }

    fn queues(&self) -> &[Queue] {
        &self.queues
    }

    fn queues_mut(&mut self) -> &mut [Queue] {
        &mut self.queues
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        let mut config = [0u8; size_of::<virtio_net_config>()];
        let mac = offset_of!(virtio_net_config, mac);
        config[mac..mac + 6].copy_from_slice(&self.mac);
        // Link up. A driver reads the status only with VIRTIO_NET_F_STATUS, which is not
        // offered; the device has always reported it anyway.
        let status = offset_of!(virtio_net_config, status);
        config[status..status + 2].copy_from_slice(&(VIRTIO_NET_S_LINK_UP as u16).to_le_bytes());
        for (i, b) in data.iter_mut().enumerate() {
            *b = config.get(offset as usize + i).copied().unwrap_or(0);
        }
    }

    fn process_queue(&mut self, index: u32, irq: &mut Interrupt) -> Result<(), DeviceError> {
        let r = match index as usize {
            RX_QUEUE => self.process_rx(true, irq),
            TX_QUEUE => self.process_tx(irq),
            _ => Ok(()),
        };
        self.counted(r)
    }

    fn poll(&mut self, driver_ok: bool, irq: &mut Interrupt) -> Result<(), DeviceError> {
        let r = self.process_rx(driver_ok, irq);
        self.counted(r)
    }

    fn reset(&mut self) {
        self.queues.iter_mut().for_each(Queue::reset);
    }
}

/// The next descriptor chain the driver made available on `queue`, if any.
fn pop<'m>(queue: &mut Queue, mem: &'m GuestMemoryMmap) -> Result<Option<DescriptorChain<&'m GuestMemoryMmap>>, DeviceError> {
    if !queue.ready() {
        return Ok(None);
    }
    // virtio-queue's iterator also ends, silently, when it cannot read the available
    // ring entry; compare the indices first so that case is an error.
    if queue.avail_idx(mem, Ordering::Acquire)?.0 == queue.next_avail() {
        return Ok(None);
    }
    // `iter` rejects an index that moved further than the queue size.
    queue.iter(mem)?.next().map(Some).ok_or(DeviceError::AvailRingUnreadable)
}

/// All descriptors of a chain. virtio-queue's chain iterator just stops on a loop, a
/// chain longer than the queue, a `next` outside the table or an unreadable
/// descriptor, so a chain that ends on a descriptor still flagged NEXT (or yields
/// none) is malformed.
fn descriptors(chain: DescriptorChain<&GuestMemoryMmap>) -> Result<Vec<Descriptor>, DeviceError> {
    let all: Vec<Descriptor> = chain.collect();
    match all.last() {
        Some(d) if !d.has_next() => Ok(all),
        _ => Err(DeviceError::BadChain),
    }
}
