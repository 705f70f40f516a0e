//! virtio devices, laid out as in Firecracker: the transport ([`mmio`], the
//! virtio-mmio register file) is separate from the devices ([`net`]); a device is
//! anything that implements [`VirtioDevice`]. The split rings are rust-vmm's
//! `virtio-queue` (`Queue`, `DescriptorChain`, reading and writing guest memory through
//! vm-memory's `GuestMemory`); the constants come from `virtio-bindings`.
//!
//! Layering: `mmio` knows [`VirtioDevice`] and [`Interrupt`] only; `net` implements
//! the trait and knows nothing of the transport. Guest writes of a device reach the
//! dirty log through `crate::dirty::DeviceWriteLog`.

pub mod mmio;
pub mod net;

use virtio_bindings::virtio_mmio::{VIRTIO_MMIO_INT_CONFIG, VIRTIO_MMIO_INT_VRING};
use virtio_queue::Queue;
use vmm_sys_util::eventfd::EventFd;

/// Why a device stopped processing its queues: the driver broke the virtio contract
/// (or pointed outside guest memory). The transport then sets `DEVICE_NEEDS_RESET`.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("virtqueue: {0}")]
    Queue(#[from] virtio_queue::Error),
    #[error("{0}")]
    Memory(#[from] vm_memory::GuestMemoryError),
    #[error("the available ring's next entry is outside guest memory")]
    AvailRingUnreadable,
    #[error("descriptor chain loops, is longer than the queue, or names a descriptor outside the table")]
    BadChain,
    #[error("{0}")]
    Protocol(&'static str),
}

/// A device's interrupt: the bits of the virtio-mmio interrupt status register and
/// the eventfd registered as the device's irqfd (its GSI).
pub struct Interrupt {
    status: u32,
    irqfd: EventFd,
}

impl Interrupt {
    pub fn new(irqfd: EventFd) -> Self {
        Interrupt { status: 0, irqfd }
    }

    /// The device put buffers in a used ring.
    pub fn signal_used_queue(&mut self) {
        self.raise(VIRTIO_MMIO_INT_VRING);
    }

    /// The device's configuration or status changed (here: it needs a reset).
    pub fn signal_config_change(&mut self) {
        self.raise(VIRTIO_MMIO_INT_CONFIG);
    }

    fn raise(&mut self, bit: u32) {
        self.status |= bit;
        // A full eventfd counter already means "interrupt pending": nothing is lost.
        let _ = self.irqfd.write(1);
    }

    pub fn status(&self) -> u32 {
        self.status
    }

    /// The driver acknowledged these status bits.
    pub fn ack(&mut self, bits: u32) {
        self.status &= !bits;
    }
}

/// A virtio device behind a transport: its identity, features, queues and
/// configuration space, and the work it does on a notification or a poll.
pub trait VirtioDevice: Send {
    /// The virtio device id (`VIRTIO_ID_*`).
    fn device_type(&self) -> u32;
    /// The feature bits the device offers.
    fn avail_features(&self) -> u64;
    fn queues(&self) -> &[Queue];
    fn queues_mut(&mut self) -> &mut [Queue];
    /// Read `data.len()` bytes at `offset` of the device-specific configuration space.
    fn read_config(&self, offset: u64, data: &mut [u8]);
    /// The driver notified queue `index`. Called only while the driver is OK.
    fn process_queue(&mut self, index: u32, irq: &mut Interrupt) -> Result<(), DeviceError>;
    /// Work that does not start with the driver (a backend with frames waiting).
    /// `driver_ok` says whether the device may use its queues.
    fn poll(&mut self, driver_ok: bool, irq: &mut Interrupt) -> Result<(), DeviceError>;
    /// Device reset: the queues go back to their initial state.
    fn reset(&mut self);
}
