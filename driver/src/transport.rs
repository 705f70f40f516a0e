//! The seam between the driver and a card: what a driver needs of a PCIe
//! function (configuration space, BAR0 registers, DMA memory, interrupts).
//! Two backends implement it: [`crate::vfio::VfioTransport`] for a real card
//! bound to vfio-pci, and [`crate::sim::SimTransport`] for the Verilator model.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("VFIO unavailable: {0}")]
    VfioUnavailable(String),
    #[error("VFIO ioctl {op} failed: {err}")]
    Ioctl { op: &'static str, err: std::io::Error },
    #[error("simulated card: {0}")]
    Sim(#[from] offcard_sim::SimError),
    #[error("host memory: {0}")]
    Memory(#[from] offcard_sim::MemError),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, TransportError>;

/// A DMA-able buffer: CPU address and the IOVA the card uses.
#[derive(Debug)]
pub struct DmaBuffer {
    pub iova: u64,
    pub len: usize,
    ptr: *mut u8,
}

// The buffer is plain memory owned by the transport for its lifetime.
unsafe impl Send for DmaBuffer {}

impl DmaBuffer {
    /// # Safety
    /// `ptr` must stay valid for `len` bytes while the buffer is used.
    pub unsafe fn new(iova: u64, ptr: *mut u8, len: usize) -> Self {
        DmaBuffer { iova, len, ptr }
    }
    pub fn as_slice(&self) -> &[u8] {
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
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
    /// Wait for an interrupt; `false` on timeout. For the simulated card the
    /// timeout is simulated time at the card's 125 MHz clock.
    fn wait_interrupt(&mut self, timeout: Duration) -> Result<bool>;
    /// DMA accesses the IOMMU refused since the last call: (IOVA, is_write).
    /// A backend without fault reporting returns none.
    fn take_iommu_faults(&mut self) -> Vec<(u64, bool)> {
        Vec::new()
    }
}
