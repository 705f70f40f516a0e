//! The driver's `CardTransport` over the simulated card in this process
//! (root-complex model + Verilator), the emulated backend that depends on the
//! driver crate (as openvmm's emulated device depends on `user_driver`).
//!
//! Every call runs the model synchronously: an MMIO read sends the TLP and
//! clocks the card until its completion arrives; waiting for an interrupt
//! clocks it until the MSI write arrives or the simulated timeout passes.

use crate::{CardModel, CardSim, Enumerated, NetFrame, RootComplex};
use offcard_driver::{CardTransport, DmaBuffer, Result, TransportError};
use std::time::Duration;

/// Card clock the simulated time is counted in.
pub const SIM_CLOCK_HZ: u64 = offcard_regs::net::CARD_CLOCK_HZ;
/// Where the simulated host places BAR0 (64-bit, above 4 GiB: exercises 4DW headers).
pub const SIM_BAR0_ADDR: u64 = 0x20_0000_0000;
/// IOVA base of DMA buffers handed out by the simulated IOMMU.
pub const SIM_IOVA_BASE: u64 = 0x1_0000_0000;

pub struct SimTransport<C: CardSim = CardModel> {
    pub rc: RootComplex<C>,
    pub info: Enumerated,
    next_host_off: u64,
    next_iova: u64,
    msi_seen: u64,
}

impl SimTransport {
    /// A fresh simulated card with `mem_bytes` of host memory, enumerated the
    /// way a host does it at boot. `seed` fixes all stream timing randomness.
    pub fn new(seed: u64, mem_bytes: usize) -> Result<Self> {
        SimTransport::with_card(CardModel::new(), seed, mem_bytes)
    }

    /// The same around a model built with tracing (see `CardModel::new_traced`).
    pub fn new_traced(seed: u64, mem_bytes: usize) -> Result<Self> {
        SimTransport::with_card(CardModel::new_traced(), seed, mem_bytes)
    }
}

impl<C: CardSim> SimTransport<C> {
    /// The same around any card simulation (a recording wrapper, say).
    pub fn with_card(card: C, seed: u64, mem_bytes: usize) -> Result<Self> {
        SimTransport::with_root_complex(RootComplex::with_card(card, seed, mem_bytes)?)
    }

    /// Around a root complex set up by the caller (its timing knobs, say),
    /// enumerated here.
    pub fn with_root_complex(mut rc: RootComplex<C>) -> Result<Self> {
        let info = rc.enumerate(SIM_BAR0_ADDR).map_err(sim_err)?;
        Ok(SimTransport { rc, info, next_host_off: 0, next_iova: SIM_IOVA_BASE, msi_seen: 0 })
    }
}

/// The simulator's errors, carried by the driver's generic backend error.
pub fn sim_err(e: impl std::error::Error + Send + Sync + 'static) -> TransportError {
    TransportError::backend("simulated card", "root complex", e)
}

impl<C: CardSim + Send> CardTransport for SimTransport<C> {
    fn describe(&self) -> String {
        format!(
            "simulated card (Verilator {}), {:04x}:{:04x} at 01:00.0, BAR0 {:#x}+{:#x}",
            crate::model::VERILATOR_VERSION,
            self.info.vendor,
            self.info.device,
            self.info.bar0,
            self.info.bar0_size
        )
    }
    fn config_read32(&mut self, offset: u16) -> Result<u32> {
        self.rc.cfg_read(offset).map_err(sim_err)
    }
    fn config_write32(&mut self, offset: u16, value: u32) -> Result<()> {
        self.rc.cfg_write(offset, value, 0xf).map_err(sim_err)
    }
    fn bar0_read32(&mut self, offset: u32) -> Result<u32> {
        self.rc.read32(self.info.bar0 + offset as u64).map_err(sim_err)
    }
    fn bar0_write32(&mut self, offset: u32, value: u32) -> Result<()> {
        self.rc.write32(self.info.bar0 + offset as u64, value);
        Ok(())
    }
    fn bar0_read64(&mut self, offset: u32) -> Result<u64> {
        self.rc.read64(self.info.bar0 + offset as u64).map_err(sim_err)
    }
    fn bar0_write64(&mut self, offset: u32, value: u64) -> Result<()> {
        self.rc.write64(self.info.bar0 + offset as u64, value);
        Ok(())
    }
    fn alloc_dma(&mut self, len: usize) -> Result<DmaBuffer> {
        let len_pages = (len as u64).div_ceil(4096) * 4096;
        let off = self.next_host_off;
        if off + len_pages > self.rc.mem.size() {
            return Err(TransportError::Other(format!("simulated host memory exhausted ({len} bytes asked)")));
        }
        let iova = self.next_iova;
        self.rc.mem.dma_map(iova, off, len_pages, true).map_err(sim_err)?;
        self.next_host_off += len_pages;
        // A guard page between buffers so an overrun is an IOMMU error.
        self.next_iova += len_pages + 4096;
        let backing = self.rc.mem.local_backing();
        // SAFETY: `off + len_pages` lies inside the host memory (checked
        // above), so the pointer stays inside the mapping, which the buffer
        // keeps alive through `backing`; the IOVA range was just mapped to it.
        let ptr = unsafe { backing.as_ptr().add(off as usize) };
        // SAFETY: see above: valid for `len` bytes while `backing` lives.
        Ok(unsafe { DmaBuffer::new(iova, ptr, len, backing) })
    }
    fn enable_interrupts(&mut self) -> Result<()> {
        // Enumeration programmed and enabled the MSI capability already.
        self.msi_seen = self.rc.msi_count();
        Ok(())
    }
    fn card_cycles(&mut self) -> Option<u64> {
        Some(self.rc.card.cycles())
    }
    fn take_iommu_faults(&mut self) -> Vec<(u64, bool)> {
        std::mem::take(&mut self.rc.iommu_faults)
    }
    fn wait_interrupt(&mut self, timeout: Duration) -> Result<bool> {
        let cycles = (timeout.as_nanos() as u64).saturating_mul(SIM_CLOCK_HZ) / 1_000_000_000;
        let got = self.rc.wait_msi(self.msi_seen, cycles.max(1));
        // Interrupts are edge events: several MSIs since the last wait are one wake-up.
        self.msi_seen = self.rc.msi_count();
        Ok(got)
    }
}

/// The simulated card's network side, for tests and the demo (simulation
/// only: a real card's network port is a cable). Frames injected here go
/// into the card's `net_rx` port as the card takes them, and frames the
/// card sends on `net_tx` are collected until taken.
pub trait SimNetwork {
    /// Queue a packet (an outer Ethernet frame, without FCS) for the card's port.
    fn inject_rx_frame(&mut self, bytes: &[u8]);
    /// Frames still waiting to enter the card.
    fn rx_frames_pending(&self) -> usize;
    /// Packets the card sent on its port since the last call.
    fn take_tx_frames(&mut self) -> Vec<Vec<u8>>;
    /// Clock the card for `cycles` cycles with nothing else to do.
    fn run_cycles(&mut self, cycles: u64);
}

impl<C: CardSim> SimNetwork for SimTransport<C> {
    fn inject_rx_frame(&mut self, bytes: &[u8]) {
        self.rc.net.to_card.push_back(NetFrame::new(bytes.to_vec()));
    }
    fn rx_frames_pending(&self) -> usize {
        self.rc.net.to_card.len()
    }
    fn take_tx_frames(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.rc.net.from_card).into_iter().map(|f| f.bytes).collect()
    }
    fn run_cycles(&mut self, cycles: u64) {
        self.rc.run(cycles);
    }
}
