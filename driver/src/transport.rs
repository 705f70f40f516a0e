//! The seam between the driver and a card: what a driver needs of a PCIe
//! function (configuration space, BAR0 registers, DMA memory, interrupts).
//!
//! Backends implement [`CardTransport`]: [`crate::vfio::VfioTransport`] for a
//! real card bound to vfio-pci (rust-vmm's `vfio-ioctls`),
//! [`crate::vfio_user::VfioUserTransport`] for a card served by another
//! process over vfio-user (`offcard card --socket PATH`), and, outside this
//! crate, the simulator's in-process transport (`offcard_sim::SimTransport`,
//! which depends on this crate, not the other way round).

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

/// Errors of every backend. Backend-specific errors travel as a boxed
/// source, so the driver names no backend's error type.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The carrier cannot be used on this machine; the text says what is missing.
    #[error("{0}")]
    Unavailable(String),
    /// A backend operation failed (`op` says which).
    #[error("{backend}: {op}: {source}")]
    Backend {
        backend: &'static str,
        op: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Other(String),
}

impl TransportError {
    /// Wrap a backend's own error.
    pub fn backend(backend: &'static str, op: impl Into<String>, e: impl std::error::Error + Send + Sync + 'static) -> Self {
        TransportError::Backend { backend, op: op.into(), source: Box::new(e) }
    }
}

pub type Result<T> = std::result::Result<T, TransportError>;

/// What keeps a DMA buffer's memory and its IOMMU mapping alive. A backend
/// hands each [`DmaBuffer`] a reference to it; the mapping is torn down
/// (unmapped from the IOMMU, unmapped from the process) only when the last
/// buffer and the backend have let it go, so a buffer cannot outlive its
/// mapping.
pub type MappingGuard = Arc<dyn Any + Send + Sync>;

/// A DMA-able buffer: memory the CPU reaches through `ptr` and the card
/// reaches at `iova`.
///
/// The card writes this memory while the driver holds the buffer (it is
/// shared with a device, possibly another process), so the accessors copy
/// with volatile accesses instead of lending out references the compiler
/// may assume nobody else changes.
pub struct DmaBuffer {
    pub iova: u64,
    pub len: usize,
    ptr: *mut u8,
    _mapping: MappingGuard,
}

impl std::fmt::Debug for DmaBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DmaBuffer {{ iova: {:#x}, len: {:#x} }}", self.iova, self.len)
    }
}

// SAFETY: the buffer points into a shared mapping kept alive by `_mapping`
// (which is Send + Sync); moving the handle to another thread does not
// change who may access the memory.
unsafe impl Send for DmaBuffer {}

impl DmaBuffer {
    /// # Safety
    /// `ptr` must be valid for reads and writes of `len` bytes for as long as
    /// `mapping` is alive, and `iova..iova + len` must be mapped for the card
    /// to that memory for as long.
    pub unsafe fn new(iova: u64, ptr: *mut u8, len: usize, mapping: MappingGuard) -> Self {
        DmaBuffer { iova, len, ptr, _mapping: mapping }
    }

    fn check(&self, offset: usize, n: usize) {
        assert!(offset.checked_add(n).is_some_and(|e| e <= self.len), "DMA buffer access {offset}+{n} beyond {} bytes", self.len);
    }

    /// Copy `buf.len()` bytes out at `offset`.
    pub fn read(&self, offset: usize, buf: &mut [u8]) {
        self.check(offset, buf.len());
        for (i, b) in buf.iter_mut().enumerate() {
            // SAFETY: in bounds (checked above) of memory valid while
            // `_mapping` lives; volatile because the card writes it too.
            *b = unsafe { std::ptr::read_volatile(self.ptr.add(offset + i)) };
        }
    }

    /// The bytes at `offset..offset + n`, copied.
    pub fn read_vec(&self, offset: usize, n: usize) -> Vec<u8> {
        let mut v = vec![0; n];
        self.read(offset, &mut v);
        v
    }

    /// Copy `data` in at `offset`.
    pub fn write(&mut self, offset: usize, data: &[u8]) {
        self.check(offset, data.len());
        for (i, &b) in data.iter().enumerate() {
            // SAFETY: as in `read`.
            unsafe { std::ptr::write_volatile(self.ptr.add(offset + i), b) };
        }
    }

    /// Set `offset..offset + n` to `value`.
    pub fn fill(&mut self, offset: usize, n: usize, value: u8) {
        self.check(offset, n);
        for i in 0..n {
            // SAFETY: as in `read`.
            unsafe { std::ptr::write_volatile(self.ptr.add(offset + i), value) };
        }
    }

    /// The whole buffer, copied.
    pub fn to_vec(&self) -> Vec<u8> {
        self.read_vec(0, self.len)
    }
}

/// What a driver needs of a card, whatever is behind it.
pub trait CardTransport: Send {
    /// One line naming the backend and the device.
    fn describe(&self) -> String;
    fn config_read32(&mut self, offset: u16) -> Result<u32>;
    fn config_write32(&mut self, offset: u16, value: u32) -> Result<()>;
    fn bar0_read32(&mut self, offset: u32) -> Result<u32>;
    fn bar0_write32(&mut self, offset: u32, value: u32) -> Result<()>;
    /// 64-bit access as one TLP (two registers at `offset`, `offset + 4`).
    fn bar0_read64(&mut self, offset: u32) -> Result<u64>;
    fn bar0_write64(&mut self, offset: u32, value: u64) -> Result<()>;
    /// Allocate `len` bytes of host memory mapped for the card's DMA.
    fn alloc_dma(&mut self, len: usize) -> Result<DmaBuffer>;
    /// Route the card's MSI to this driver (programs the vector).
    fn enable_interrupts(&mut self) -> Result<()>;
    /// Wait for an interrupt; `false` on timeout. The timeout is the card's
    /// time: wall time on a real card, simulated time at the card's 125 MHz
    /// clock on a simulated one (in-process or in a card process).
    fn wait_interrupt(&mut self, timeout: Duration) -> Result<bool>;
    /// DMA accesses the IOMMU refused since the last call: (IOVA, is_write).
    /// A backend without fault reporting returns none.
    fn take_iommu_faults(&mut self) -> Vec<(u64, bool)> {
        Vec::new()
    }
    /// The card's clock in cycles, where the backend can read it (a
    /// simulated card); `None` for a real card.
    fn card_cycles(&mut self) -> Option<u64> {
        None
    }
}
