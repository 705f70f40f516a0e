//! The vfio-user device behind `offcard card`: region accesses become TLPs
//! to the Verilated card, DMA mappings become the card's IOMMU view of the
//! client's memory, the card's MSI becomes the client's eventfd.

use super::Shared;
use offcard_regs::{cfg, sim_status as ss, BAR0_SIZE};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::io::{Error, ErrorKind};
use std::sync::Arc;
use vfio_bindings::bindings::vfio::*;
use vfio_user::{DmaMapFlags, DmaUnmapFlags, IrqInfo, ServerBackend, ServerRegion};

/// Configuration space the client sees (PCIe: 4 KiB; the card decodes the
/// first 256 bytes, the rest reads 0).
pub const CONFIG_SIZE: u64 = 4096;

fn invalid(msg: String) -> Error {
    Error::new(ErrorKind::InvalidInput, msg)
}

/// The regions in index order (the vfio-user server answers
/// DEVICE_GET_REGION_INFO by position): BAR0..BAR5, ROM, config, VGA, and
/// the simulation status region.
pub fn regions() -> Vec<ServerRegion> {
    let rw = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
    (0..=ss::REGION_INDEX)
        .map(|index| {
            let (size, flags) = match index {
                VFIO_PCI_BAR0_REGION_INDEX => (BAR0_SIZE, rw),
                VFIO_PCI_CONFIG_REGION_INDEX => (CONFIG_SIZE, rw),
                ss::REGION_INDEX => (ss::REGION_SIZE, VFIO_REGION_INFO_FLAG_READ),
                _ => (0, 0),
            };
            ServerRegion {
                region_info: vfio_region_info {
                    argsz: std::mem::size_of::<vfio_region_info>() as u32,
                    flags,
                    index,
                    cap_offset: 0,
                    size,
                    offset: 0,
                },
                sparse_areas: Vec::new(),
                mmap_fd: None,
            }
        })
        .collect()
}

/// Interrupt indices: INTx, MSI (one vector), MSI-X, ERR, REQ; only MSI has vectors.
pub fn irqs() -> Vec<IrqInfo> {
    (0..VFIO_PCI_NUM_IRQS)
        .map(|index| IrqInfo {
            index,
            flags: VFIO_IRQ_INFO_EVENTFD,
            count: if index == VFIO_PCI_MSI_IRQ_INDEX { 1 } else { 0 },
        })
        .collect()
}

pub struct CardBackend {
    shared: Arc<Shared>,
    /// The BAR registers as the client wrote them (vfio-pci virtualizes
    /// them: the device's own BAR stays where the root port put it).
    bar_shadow: [u32; 6],
    /// MSI address low/high and data as the client wrote them (virtualized:
    /// the card's MSI goes to the root port, which signals the eventfd).
    msi_shadow: [u32; 3],
}

impl CardBackend {
    pub fn new(shared: Arc<Shared>) -> Self {
        CardBackend { shared, bar_shadow: [0; 6], msi_shadow: [0; 3] }
    }

    fn check(region: u32, offset: u64, len: usize, size: u64) -> Result<(), Error> {
        let ok = matches!(len, 1 | 2 | 4 | 8) && offset % len as u64 == 0 && offset.checked_add(len as u64).is_some_and(|e| e <= size);
        if !ok {
            return Err(invalid(format!("region {region}: access of {len} bytes at {offset:#x} is unaligned, of a bad size or beyond {size:#x}")));
        }
        Ok(())
    }

    fn config_read(&mut self, offset: u64, data: &mut [u8]) -> Result<(), Error> {
        Self::check(VFIO_PCI_CONFIG_REGION_INDEX, offset, data.len(), CONFIG_SIZE)?;
        let mut bytes = [0u8; 8];
        let first_dw = offset & !3;
        for (k, dw_off) in (first_dw..offset + data.len() as u64).step_by(4).enumerate() {
            let v = self.config_dword(dw_off as u16)?;
            bytes[4 * k..4 * k + 4].copy_from_slice(&v.to_le_bytes());
        }
        let s = (offset - first_dw) as usize;
        data.copy_from_slice(&bytes[s..s + data.len()]);
        Ok(())
    }

    fn config_dword(&mut self, off: u16) -> Result<u32, Error> {
        if off >= 256 {
            return Ok(0);
        }
        if (cfg::BAR0..cfg::BAR0 + 24).contains(&off) {
            let i = ((off - cfg::BAR0) / 4) as usize;
            // BAR0 (64-bit memory, non-prefetchable): address bits above
            // the size, type bits 2:1 = 10b; BAR1 its upper half.
            return Ok(match i {
                0 => (self.bar_shadow[0] & !((BAR0_SIZE as u32) - 1)) | 0b100,
                1 => self.bar_shadow[1],
                _ => 0,
            });
        }
        if (cfg::MSI_ADDR_LO..cfg::MSI_DATA + 4).contains(&off) {
            return Ok(self.msi_shadow[((off - cfg::MSI_ADDR_LO) / 4) as usize]);
        }
        let mut st = self.shared.lock();
        let r = st.rc.cfg_read(off);
        st.deliver_interrupts();
        // A configuration read that fails (no completion, or an error
        // status) reads all ones, as a root port makes it; an error reply
        // would leave a client that expects data waiting.
        Ok(r.unwrap_or_else(|e| {
            eprintln!("offcard card: configuration read {off:#x}: {e}");
            u32::MAX
        }))
    }

    fn config_write(&mut self, offset: u64, data: &[u8]) -> Result<(), Error> {
        Self::check(VFIO_PCI_CONFIG_REGION_INDEX, offset, data.len(), CONFIG_SIZE)?;
        if offset >= 256 {
            return Ok(());
        }
        let off = offset as u16;
        let dw = off & !3;
        let shift = (off - dw) as usize;
        if data.len() + shift > 4 {
            // An 8-byte write: two DWs.
            self.config_write(offset, &data[..4])?;
            return self.config_write(offset + 4, &data[4..]);
        }
        let be = (((1u16 << data.len()) - 1) << shift) as u8;
        let mut v = [0u8; 4];
        v[shift..shift + data.len()].copy_from_slice(data);
        let value = u32::from_le_bytes(v);
        let merge = |old: u32| {
            let mask = (0..4).filter(|b| be >> b & 1 == 1).fold(0u32, |m, b| m | 0xff << (8 * b));
            (old & !mask) | (value & mask)
        };
        if (cfg::BAR0..cfg::BAR0 + 24).contains(&dw) {
            let i = ((dw - cfg::BAR0) / 4) as usize;
            self.bar_shadow[i] = merge(self.bar_shadow[i]);
            return Ok(());
        }
        if (cfg::MSI_ADDR_LO..cfg::MSI_DATA + 4).contains(&dw) {
            let i = ((dw - cfg::MSI_ADDR_LO) / 4) as usize;
            self.msi_shadow[i] = merge(self.msi_shadow[i]);
            return Ok(());
        }
        let mut st = self.shared.lock();
        let r = st.rc.cfg_write(dw, value, be);
        if r.is_ok() && dw == cfg::PCIE_DEVCTL & !3 {
            // The root port's completions obey the Max_Payload_Size the client set.
            if let Ok(ctl) = st.rc.cfg_read(cfg::PCIE_DEVCTL & !3) {
                st.rc.max_payload = 128 << ((ctl >> 5) & 7).min(5);
            }
        }
        st.deliver_interrupts();
        if let Err(e) = r {
            eprintln!("offcard card: configuration write {dw:#x}: {e} (dropped)");
        }
        Ok(())
    }

    fn bar0_read(&mut self, offset: u64, data: &mut [u8]) -> Result<(), Error> {
        Self::check(VFIO_PCI_BAR0_REGION_INDEX, offset, data.len(), BAR0_SIZE)?;
        let mut st = self.shared.lock();
        let addr = crate::SIM_BAR0_ADDR + offset;
        let dw = addr & !3;
        let r = match data.len() {
            8 => st.rc.mem_read(dw, 2, 0xf, 0xf),
            n => st.rc.mem_read(dw, 1, (((1u16 << n) - 1) << (addr - dw)) as u8, 0),
        };
        st.deliver_interrupts();
        match r {
            Ok(dws) => {
                let bytes: Vec<u8> = dws.iter().flat_map(|d| d.to_le_bytes()).collect();
                let s = (addr - dw) as usize;
                data.copy_from_slice(&bytes[s..s + data.len()]);
            }
            // A request the card does not support completes with UR: the
            // CPU sees all ones, as on a real host.
            Err(crate::SimError::CompletionStatus { .. }) => data.fill(0xff),
            // No completion at all (a completion timeout): all ones too.
            Err(e) => {
                eprintln!("offcard card: BAR0 read {offset:#x}: {e}");
                data.fill(0xff)
            }
        }
        Ok(())
    }

    fn bar0_write(&mut self, offset: u64, data: &[u8]) -> Result<(), Error> {
        Self::check(VFIO_PCI_BAR0_REGION_INDEX, offset, data.len(), BAR0_SIZE)?;
        let mut st = self.shared.lock();
        let addr = crate::SIM_BAR0_ADDR + offset;
        let dw = addr & !3;
        let mut b = [0u8; 8];
        let s = (addr - dw) as usize;
        b[s..s + data.len()].copy_from_slice(data);
        let words = [u32::from_le_bytes(b[0..4].try_into().unwrap()), u32::from_le_bytes(b[4..8].try_into().unwrap())];
        if data.len() == 8 {
            st.rc.mem_write(dw, &words, 0xf, 0xf);
        } else {
            st.rc.mem_write(dw, &words[..1], (((1u16 << data.len()) - 1) << s) as u8, 0);
        }
        st.rc.flush();
        st.deliver_interrupts();
        Ok(())
    }

    fn status_read(&mut self, offset: u64, data: &mut [u8]) -> Result<(), Error> {
        Self::check(ss::REGION_INDEX, offset, data.len(), ss::REGION_SIZE)?;
        let mut img = vec![0u8; ss::REGION_SIZE as usize];
        {
            let mut st = self.shared.lock();
            st.deliver_interrupts();
            let mut put = |o: u32, v: u64| img[o as usize..o as usize + 8].copy_from_slice(&v.to_le_bytes());
            put(ss::MAGIC, ss::MAGIC_VALUE);
            put(ss::CYCLES, st.cycles());
            put(ss::IOMMU_FAULTS, st.faults_total);
            put(ss::PORT_TX_FRAMES, st.port_tx);
            put(ss::PORT_RX_FRAMES, st.port_rx);
            put(ss::PORT_RX_DROPPED, st.port_rx_dropped);
            let first = st.faults_total - st.fault_log.len() as u64;
            for (k, &(iova, write)) in st.fault_log.iter().enumerate() {
                let n = first + k as u64;
                let slot = ss::FAULT_LOG + (n % ss::FAULT_SLOTS as u64) as u32 * ss::FAULT_BYTES;
                put(slot, iova);
                put(slot + 8, n << 1 | write as u64);
            }
        }
        data.copy_from_slice(&img[offset as usize..offset as usize + data.len()]);
        Ok(())
    }
}

impl ServerBackend for CardBackend {
    fn region_read(&mut self, region: u32, offset: u64, data: &mut [u8]) -> Result<(), Error> {
        match region {
            VFIO_PCI_BAR0_REGION_INDEX => self.bar0_read(offset, data),
            VFIO_PCI_CONFIG_REGION_INDEX => self.config_read(offset, data),
            ss::REGION_INDEX => self.status_read(offset, data),
            _ => Err(invalid(format!("region {region} is empty on this device"))),
        }
    }

    fn region_write(&mut self, region: u32, offset: u64, data: &[u8]) -> Result<(), Error> {
        match region {
            VFIO_PCI_BAR0_REGION_INDEX => self.bar0_write(offset, data),
            VFIO_PCI_CONFIG_REGION_INDEX => self.config_write(offset, data),
            _ => Err(invalid(format!("region {region} is not writable on this device"))),
        }
    }

    fn dma_map(&mut self, flags: DmaMapFlags, offset: u64, address: u64, size: u64, fd: Option<File>) -> Result<(), Error> {
        let fd = fd.ok_or_else(|| {
            invalid(format!("DMA_MAP {address:#x}+{size:#x} without a file descriptor: this card reaches client memory only through a shared mapping"))
        })?;
        if flags.bits() & !DmaMapFlags::READ_WRITE.bits() != 0 {
            return Err(invalid(format!("DMA_MAP flags {:#x}: unknown bits", flags.bits())));
        }
        if !flags.contains(DmaMapFlags::READ) {
            return Err(invalid(format!("DMA_MAP {address:#x}+{size:#x} without read permission")));
        }
        let writable = flags.contains(DmaMapFlags::WRITE);
        let mut st = self.shared.lock();
        st.rc.mem.dma_map_file(address, fd, offset, size, writable).map_err(|e| invalid(e.to_string()))
    }

    fn dma_unmap(&mut self, flags: DmaUnmapFlags, address: u64, size: u64) -> Result<(), Error> {
        let mut st = self.shared.lock();
        if flags == DmaUnmapFlags::UNMAP_ALL {
            st.rc.mem.dma_unmap_all();
            return Ok(());
        }
        if !flags.is_empty() {
            return Err(invalid(format!("DMA_UNMAP flags {:#x} not supported (dirty-page logging comes with migration)", flags.bits())));
        }
        // Unmapping where nothing is mapped succeeds, as in VFIO; a range
        // that cuts a mapping in two is refused.
        st.rc.mem.dma_unmap_range(address, size).map(|_| ()).map_err(|e| invalid(e.to_string()))
    }

    fn reset(&mut self) -> Result<(), Error> {
        self.bar_shadow = [0; 6];
        self.msi_shadow = [0; 3];
        let mut st = self.shared.lock();
        st.irq_fds.clear();
        st.reset()
    }

    fn set_irqs(&mut self, index: u32, flags: u32, start: u32, count: u32, fds: Vec<File>) -> Result<(), Error> {
        if index != VFIO_PCI_MSI_IRQ_INDEX {
            if count == 0 {
                return Ok(());
            }
            return Err(invalid(format!("interrupt index {index} has no vectors (the card signals MSI, index {VFIO_PCI_MSI_IRQ_INDEX})")));
        }
        if start.checked_add(count).is_none_or(|e| e > 1) {
            return Err(invalid(format!("MSI vectors {start}..{} asked; the card has one", start + count)));
        }
        let mut st = self.shared.lock();
        if flags & VFIO_IRQ_SET_ACTION_TRIGGER == 0 {
            return Ok(()); // mask / unmask: the card has no per-vector mask
        }
        if flags & VFIO_IRQ_SET_DATA_EVENTFD != 0 {
            if count == 0 {
                st.irq_fds.clear();
            } else if fds.len() != count as usize {
                return Err(invalid(format!("SET_IRQS: {} descriptors for {count} vectors", fds.len())));
            } else {
                for f in &fds {
                    // Never block the card on a descriptor the client does not
                    // read (an eventfd that fills, or something else).
                    // SAFETY: fcntl on a descriptor this process owns.
                    unsafe {
                        let fl = libc::fcntl(f.as_raw_fd(), libc::F_GETFL);
                        libc::fcntl(f.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
                    }
                }
                st.irq_fds = fds;
            }
        } else if flags & VFIO_IRQ_SET_DATA_NONE != 0 && count == 0 {
            st.irq_fds.clear();
        }
        Ok(())
    }
}
