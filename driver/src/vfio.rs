//! Transport backend for a real card bound to `vfio-pci`, through rust-vmm's
//! `vfio-ioctls` (built without its KVM/MSHV features: no hypervisor here,
//! the driver is a plain userspace process).
//!
//! # Design
//!
//! * **Container, group, device.** [`VfioTransport::open`] first checks,
//!   itself, what the kernel must provide: the container node
//!   `/dev/vfio/vfio`, the device's IOMMU group in sysfs and the group node
//!   `/dev/vfio/<group>`. Each missing piece fails with
//!   [`TransportError::Unavailable`] and a message saying what to do, before
//!   any call into `vfio-ioctls` (whose own errors say less). Then
//!   [`VfioContainer::new`] opens the container (API version, type-1 v2
//!   IOMMU) and [`VfioDevice::new`] attaches the group to it, sets the IOMMU
//!   type and opens the device, reading its region and IRQ tables.
//! * **Configuration space and region I/O.** Offsets, sizes and flags of
//!   the config region and BAR0 come from the device's region table
//!   ([`VfioDevice::get_region_offset`] etc.). The accesses themselves are
//!   `pread`/`pwrite` on a duplicate of the device fd, because
//!   [`VfioDevice::region_read`]/[`VfioDevice::region_write`] only log a
//!   failed access (a config read would silently return zeros, a write to a
//!   read-only region would silently do nothing); here every failure is an
//!   error.
//! * **BAR0.** If the region is mmappable, BAR0 (or, when the kernel
//!   reports a sparse-mmap capability, each mmappable area of it) is mapped
//!   into the process and accessed with volatile 32/64-bit loads and stores,
//!   one TLP each. Offsets outside every mapped area, or the whole BAR when
//!   it is not mmappable, go through region I/O. Every access is checked for
//!   alignment and range first.
//! * **DMA.** [`CardTransport::alloc_dma`] mmaps anonymous memory and maps it
//!   for the card with [`VfioContainer::vfio_dma_map`] at a growing IOVA
//!   (from 4 GiB up, a 4 KiB unmapped guard gap between buffers, so a card
//!   overrunning a buffer faults instead of hitting the next one). The
//!   buffer's guard owns the memory and an `Arc` of the container: when the
//!   last clone drops it unmaps the IOVA range
//!   ([`VfioContainer::vfio_dma_unmap`]) and then munmaps the memory. A
//!   buffer may outlive the transport: once the device is closed its group
//!   leaves the container, the kernel drops every IOMMU mapping with it, the
//!   unmap then fails harmlessly and the memory is still released.
//! * **Interrupts.** [`CardTransport::enable_interrupts`] prefers MSI-X when
//!   the device has it, else MSI: one non-blocking [`EventFd`] per vector
//!   (at most `MAX_VECTORS`, 32), handed to [`VfioDevice::enable_msix`] /
//!   [`VfioDevice::enable_msi`]; the kernel programs the vectors' address
//!   and data. If the platform cannot give every vector, it falls back to
//!   one. [`CardTransport::wait_interrupt`] `ppoll`s all the eventfds for at
//!   most the given wall-clock time and drains those that fired.
//!
//! Field order in [`VfioTransport`] is drop order, and it matters: the BAR0
//! mappings and the duplicate device fd hold the device file open, so they
//! go before the [`VfioDevice`], whose drop must close the last reference to
//! the device for the group to leave the container.

use crate::transport::{CardTransport, DmaBuffer, MappingGuard, Result, TransportError};
use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vfio_bindings::bindings::vfio::{
    VFIO_PCI_BAR0_REGION_INDEX, VFIO_PCI_CONFIG_REGION_INDEX, VFIO_PCI_MSIX_IRQ_INDEX, VFIO_PCI_MSI_IRQ_INDEX,
    VFIO_REGION_INFO_FLAG_MMAP, VFIO_REGION_INFO_FLAG_READ, VFIO_REGION_INFO_FLAG_WRITE,
};
use vfio_ioctls::{VfioContainer, VfioDevice, VfioError, VfioOps, VfioRegionInfoCap};
use vmm_sys_util::eventfd::{EventFd, EFD_CLOEXEC, EFD_NONBLOCK};

/// Backend name in [`TransportError::Backend`].
const BACKEND: &str = "VFIO";
/// The VFIO container node.
const CONTAINER_PATH: &str = "/dev/vfio/vfio";
/// First IOVA handed out for DMA buffers.
const FIRST_IOVA: u64 = 0x1_0000_0000;
/// Unmapped IOVA space left after each DMA buffer.
const DMA_GUARD_GAP: u64 = 4096;
/// Most interrupt vectors given an eventfd (MSI allows 32; MSI-X up to 2048,
/// more file descriptors than the card uses).
const MAX_VECTORS: u32 = 32;

fn vfio_err(op: impl Into<String>, e: VfioError) -> TransportError {
    TransportError::backend(BACKEND, op, e)
}

fn io_err(op: impl Into<String>, e: std::io::Error) -> TransportError {
    TransportError::backend(BACKEND, op, e)
}

/// The IOMMU group of a PCI device (`0000:01:00.0`), from sysfs.
pub fn iommu_group(bdf: &str) -> Result<u32> {
    let link = Path::new("/sys/bus/pci/devices").join(bdf).join("iommu_group");
    let target = std::fs::read_link(&link).map_err(|_| {
        TransportError::Unavailable(format!(
            "PCI device {bdf} has no IOMMU group ({} missing): enable the IOMMU (intel_iommu=on or amd_iommu=on) and check the device exists",
            link.display()
        ))
    })?;
    target
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| TransportError::Unavailable(format!("unreadable IOMMU group link {}", target.display())))
}

/// The kernel driver `bdf` is bound to, if any (for error messages).
fn bound_driver(bdf: &str) -> Option<String> {
    let target = std::fs::read_link(Path::new("/sys/bus/pci/devices").join(bdf).join("driver")).ok()?;
    Some(target.file_name()?.to_string_lossy().into_owned())
}

/// The system page size.
fn page_size() -> usize {
    // SAFETY: sysconf only reads a system constant; no memory is passed.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as usize
    } else {
        4096
    }
}

/// Where a region lives in the device fd, from the device's region table.
#[derive(Debug, Clone, Copy)]
struct Region {
    /// Offset of the region in the device fd.
    offset: u64,
    size: u64,
    flags: u32,
}

impl Region {
    fn of(device: &VfioDevice, index: u32) -> Self {
        Region {
            offset: device.get_region_offset(index),
            size: device.get_region_size(index),
            flags: device.get_region_flags(index),
        }
    }

    fn readable(&self) -> bool {
        self.flags & VFIO_REGION_INFO_FLAG_READ != 0
    }

    fn writable(&self) -> bool {
        self.flags & VFIO_REGION_INFO_FLAG_WRITE != 0
    }
}

/// One mmap of (an area of) BAR0, unmapped on drop.
struct BarMapping {
    /// Offset of the area within BAR0.
    bar_offset: u64,
    len: usize,
    ptr: *mut u8,
}

// SAFETY: a BarMapping exclusively owns an mmap of device memory; nothing in
// it is tied to the thread that created it (the mapping belongs to the
// process), so moving the owner to another thread is sound. It is not Sync,
// and every access goes through `&mut VfioTransport`.
unsafe impl Send for BarMapping {}

impl Drop for BarMapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned for this
        // mapping, and it is unmapped once, here; no reference into it
        // outlives `self` (accesses are volatile copies).
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// BAR0: its region, and the parts of it mapped into the process.
struct Bar0 {
    region: Region,
    maps: Vec<BarMapping>,
}

impl Bar0 {
    /// Map every mmappable area of BAR0 (none if the region is not
    /// mmappable: then every access is region I/O).
    fn map(device: &VfioDevice, bdf: &str) -> Result<Self> {
        let region = Region::of(device, VFIO_PCI_BAR0_REGION_INDEX);
        if region.size == 0 {
            return Err(TransportError::Unavailable(format!("{bdf} has no BAR0 (VFIO reports size 0)")));
        }
        if !region.readable() || !region.writable() {
            return Err(TransportError::Unavailable(format!("BAR0 of {bdf} is not readable and writable through VFIO")));
        }
        let mut maps = Vec::new();
        if region.flags & VFIO_REGION_INFO_FLAG_MMAP != 0 {
            // With a sparse-mmap capability only the listed areas may be
            // mapped (older kernels carve out the MSI-X table); without it,
            // the whole region.
            let areas: Vec<(u64, u64)> = device
                .get_region_caps(VFIO_PCI_BAR0_REGION_INDEX)
                .iter()
                .find_map(|c| match c {
                    VfioRegionInfoCap::SparseMmap(s) => Some(s.areas.iter().map(|a| (a.offset, a.size)).collect()),
                    _ => None,
                })
                .unwrap_or_else(|| vec![(0, region.size)]);
            for (bar_offset, size) in areas {
                if size == 0 || bar_offset.checked_add(size).is_none_or(|end| end > region.size) {
                    continue;
                }
                let len = usize::try_from(size)
                    .map_err(|_| TransportError::Other(format!("BAR0 area {bar_offset:#x}+{size:#x} too large to map")))?;
                let file_offset = region
                    .offset
                    .checked_add(bar_offset)
                    .and_then(|o| libc::off_t::try_from(o).ok())
                    .ok_or_else(|| TransportError::Other(format!("BAR0 area {bar_offset:#x} has no valid mmap offset")))?;
                // SAFETY: a new shared mapping at an address the kernel
                // chooses (it replaces nothing); the device fd is valid for
                // the call, and the range is one the kernel reported as
                // mmappable. The result is checked before use.
                let p = unsafe {
                    libc::mmap(
                        std::ptr::null_mut(),
                        len,
                        libc::PROT_READ | libc::PROT_WRITE,
                        libc::MAP_SHARED,
                        device.as_raw_fd(),
                        file_offset,
                    )
                };
                if p == libc::MAP_FAILED {
                    return Err(io_err(format!("mmap BAR0 {bar_offset:#x}+{size:#x}"), std::io::Error::last_os_error()));
                }
                maps.push(BarMapping { bar_offset, len, ptr: p.cast() });
            }
        }
        Ok(Bar0 { region, maps })
    }

    /// The mapped address of `offset..offset + width`, if one mapping holds
    /// all of it at a `width`-aligned address; `None` means region I/O.
    fn mapped(&self, offset: u32, width: usize) -> Option<*mut u8> {
        let (offset, width64) = (offset as u64, width as u64);
        self.maps.iter().find_map(|m| {
            let rel = offset.checked_sub(m.bar_offset)?;
            if rel + width64 > m.len as u64 {
                return None;
            }
            // SAFETY: `rel + width <= len` (checked above), so the result
            // stays inside the mapping.
            let p = unsafe { m.ptr.add(rel as usize) };
            (p as usize).is_multiple_of(width).then_some(p)
        })
    }

    fn describe(&self) -> &'static str {
        let mapped: u64 = self.maps.iter().map(|m| m.len as u64).sum();
        if mapped == 0 {
            "region I/O"
        } else if mapped >= self.region.size {
            "mmapped"
        } else {
            "partly mmapped"
        }
    }
}

/// Anonymous memory, unmapped from the process on drop.
struct AnonMemory {
    /// Address (kept as an integer so the owner is plainly Send + Sync: it
    /// is only turned back into a pointer for volatile access or munmap).
    addr: usize,
    len: usize,
}

impl AnonMemory {
    fn new(len: usize) -> Result<Self> {
        // SAFETY: a new private anonymous mapping at an address the kernel
        // chooses; it overlaps no existing memory. The result is checked.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io_err(format!("mmap {len:#x} bytes of DMA memory"), std::io::Error::last_os_error()));
        }
        let mem = AnonMemory { addr: p as usize, len };
        // A forked child must not share these pages copy-on-write: the first
        // write by either process would leave the card DMAing to a page the
        // parent no longer sees.
        // SAFETY: advice on exactly the range just mapped (owned by `mem`);
        // MADV_DONTFORK does not change its contents.
        if unsafe { libc::madvise(p, len, libc::MADV_DONTFORK) } != 0 {
            return Err(io_err("madvise(MADV_DONTFORK) on DMA memory", std::io::Error::last_os_error()));
        }
        Ok(mem)
    }

    fn ptr(&self) -> *mut u8 {
        self.addr as *mut u8
    }
}

impl Drop for AnonMemory {
    fn drop(&mut self) {
        // SAFETY: `addr`/`len` are exactly what mmap returned; unmapped once,
        // here. No Rust reference into it exists (DMA buffers use volatile
        // raw-pointer copies, and they hold the guard that owns `self`).
        unsafe { libc::munmap(self.addr as *mut libc::c_void, self.len) };
    }
}

/// A DMA buffer's memory and its IOMMU mapping: the [`MappingGuard`] of
/// every [`DmaBuffer`] handed out by [`VfioTransport::alloc_dma`].
struct DmaMapping {
    container: Arc<VfioContainer>,
    iova: u64,
    /// Dropped after `Drop::drop` has unmapped the IOVA range.
    mem: AnonMemory,
}

impl Drop for DmaMapping {
    fn drop(&mut self) {
        // Fails only when the mapping is already gone (the device was closed
        // and its group left the container, which drops every mapping):
        // then there is nothing left to undo before the memory is freed.
        let _ = self.container.vfio_dma_unmap(self.iova, self.mem.len);
    }
}

/// Interrupt delivery once enabled: which VFIO IRQ index, and an eventfd
/// per vector.
struct Interrupts {
    index: u32,
    kind: &'static str,
    fds: Vec<EventFd>,
}

/// A card bound to vfio-pci, driven through `vfio-ioctls`.
pub struct VfioTransport {
    bdf: String,
    group: u32,
    config: Region,
    next_iova: u64,
    // Drop order below matters (see the module documentation): everything
    // holding the device file open goes before `device`.
    irq: Option<Interrupts>,
    bar0: Bar0,
    /// A duplicate of the device fd, for region I/O that reports errors.
    device_file: File,
    device: VfioDevice,
    container: Arc<VfioContainer>,
}

impl VfioTransport {
    /// Open the card at `bdf` (e.g. `0000:01:00.0`), bound to vfio-pci.
    pub fn open(bdf: &str) -> Result<Self> {
        // What the kernel must provide, checked here so that a machine
        // without VFIO gets a message that says what to do.
        OpenOptions::new().read(true).write(true).open(CONTAINER_PATH).map_err(|e| {
            TransportError::Unavailable(format!(
                "cannot open {CONTAINER_PATH} ({e}): load the vfio-pci module (`modprobe vfio-pci`) on a host with an IOMMU"
            ))
        })?;
        let group = iommu_group(bdf)?;
        let gpath = format!("/dev/vfio/{group}");
        OpenOptions::new().read(true).write(true).open(&gpath).map_err(|e| {
            TransportError::Unavailable(match (e.kind(), e.raw_os_error()) {
                (ErrorKind::PermissionDenied, _) => {
                    format!("cannot open {gpath} ({e}): run as root or give this user the VFIO group node")
                }
                (_, Some(libc::EBUSY)) => format!("cannot open {gpath} ({e}): IOMMU group {group} is in use by another process"),
                _ => {
                    let bound = match bound_driver(bdf) {
                        Some(d) => format!("it is bound to {d}"),
                        None => "it is bound to no driver".into(),
                    };
                    format!(
                        "cannot open {gpath} ({e}): bind {bdf} to vfio-pci ({bound}; echo vfio-pci > /sys/bus/pci/devices/{bdf}/driver_override, then echo {bdf} > /sys/bus/pci/drivers_probe)"
                    )
                }
            })
        })?;
        // The probe above closed the group node again (a group can be
        // opened once); vfio-ioctls opens it for good below.

        let container = Arc::new(VfioContainer::new(None).map_err(|e| vfio_err("open container", e))?);
        let sysfs = Path::new("/sys/bus/pci/devices").join(bdf);
        let device = VfioDevice::new(&sysfs, container.clone() as Arc<dyn VfioOps>, false).map_err(|e| match e {
            VfioError::GroupViable => TransportError::Unavailable(format!(
                "IOMMU group {group} is not viable: bind every device in it (/sys/kernel/iommu_groups/{group}/devices) to vfio-pci"
            )),
            e => vfio_err(format!("open device {bdf}"), e),
        })?;

        // Region I/O on a duplicate of the device fd (see the module doc).
        // SAFETY: `device` owns this fd and is alive for the whole borrow,
        // which ends with this statement (the clone is a new, owned fd).
        let device_fd = unsafe { BorrowedFd::borrow_raw(device.as_raw_fd()) };
        let device_file = File::from(device_fd.try_clone_to_owned().map_err(|e| io_err("duplicate device fd", e))?);

        let config = Region::of(&device, VFIO_PCI_CONFIG_REGION_INDEX);
        if config.size < 256 || !config.readable() {
            return Err(TransportError::Unavailable(format!(
                "{bdf}: VFIO reports no readable configuration space (size {:#x}, flags {:#x})",
                config.size, config.flags
            )));
        }
        let bar0 = Bar0::map(&device, bdf)?;
        Ok(VfioTransport {
            bdf: bdf.into(),
            group,
            config,
            next_iova: FIRST_IOVA,
            irq: None,
            bar0,
            device_file,
            device,
            container,
        })
    }

    fn check_config(&self, offset: u16) -> Result<()> {
        if !offset.is_multiple_of(4) || offset as u64 + 4 > self.config.size {
            return Err(TransportError::Other(format!(
                "config access {offset:#x}/4 out of range ({:#x} bytes) or unaligned",
                self.config.size
            )));
        }
        Ok(())
    }

    fn check_bar0(&self, offset: u32, width: usize) -> Result<()> {
        if !(offset as usize).is_multiple_of(width) || offset as u64 + width as u64 > self.bar0.region.size {
            return Err(TransportError::Other(format!(
                "BAR0 access {offset:#x}/{width} out of range ({:#x} bytes) or unaligned",
                self.bar0.region.size
            )));
        }
        Ok(())
    }

    /// A `width`-byte (4 or 8) little-endian read of BAR0.
    fn bar0_read(&mut self, offset: u32, width: usize) -> Result<u64> {
        self.check_bar0(offset, width)?;
        if let Some(p) = self.bar0.mapped(offset, width) {
            // SAFETY: `p..p + width` lies inside a live mapping of BAR0
            // (owned by `self.bar0`) and is `width`-aligned (both checked by
            // `mapped`); volatile because it is device memory.
            return Ok(unsafe {
                match width {
                    4 => u32::from_le(std::ptr::read_volatile(p as *const u32)) as u64,
                    _ => u64::from_le(std::ptr::read_volatile(p as *const u64)),
                }
            });
        }
        let mut b = [0u8; 8];
        self.device_file
            .read_exact_at(&mut b[..width], self.bar0.region.offset + offset as u64)
            .map_err(|e| io_err(format!("read BAR0 {offset:#x}/{width}"), e))?;
        Ok(u64::from_le_bytes(b))
    }

    /// A `width`-byte (4 or 8) little-endian write of BAR0.
    fn bar0_write(&mut self, offset: u32, width: usize, value: u64) -> Result<()> {
        self.check_bar0(offset, width)?;
        if let Some(p) = self.bar0.mapped(offset, width) {
            // SAFETY: as in `bar0_read`.
            unsafe {
                match width {
                    4 => std::ptr::write_volatile(p as *mut u32, (value as u32).to_le()),
                    _ => std::ptr::write_volatile(p as *mut u64, value.to_le()),
                }
            }
            return Ok(());
        }
        self.device_file
            .write_all_at(&value.to_le_bytes()[..width], self.bar0.region.offset + offset as u64)
            .map_err(|e| io_err(format!("write BAR0 {offset:#x}/{width}"), e))
    }
}

impl CardTransport for VfioTransport {
    fn describe(&self) -> String {
        format!(
            "VFIO device {} (IOMMU group {}, BAR0 {} bytes {}{})",
            self.bdf,
            self.group,
            self.bar0.region.size,
            self.bar0.describe(),
            match &self.irq {
                Some(i) => format!(", {} x{}", i.kind, i.fds.len()),
                None => String::new(),
            }
        )
    }

    fn config_read32(&mut self, offset: u16) -> Result<u32> {
        self.check_config(offset)?;
        let mut b = [0u8; 4];
        self.device_file
            .read_exact_at(&mut b, self.config.offset + offset as u64)
            .map_err(|e| io_err(format!("read config {offset:#x}"), e))?;
        Ok(u32::from_le_bytes(b))
    }

    fn config_write32(&mut self, offset: u16, value: u32) -> Result<()> {
        self.check_config(offset)?;
        if !self.config.writable() {
            return Err(TransportError::Other(format!("{}: VFIO configuration space is read-only", self.bdf)));
        }
        self.device_file
            .write_all_at(&value.to_le_bytes(), self.config.offset + offset as u64)
            .map_err(|e| io_err(format!("write config {offset:#x}"), e))
    }

    fn bar0_read32(&mut self, offset: u32) -> Result<u32> {
        Ok(self.bar0_read(offset, 4)? as u32)
    }

    fn bar0_write32(&mut self, offset: u32, value: u32) -> Result<()> {
        self.bar0_write(offset, 4, value as u64)
    }

    fn bar0_read64(&mut self, offset: u32) -> Result<u64> {
        self.bar0_read(offset, 8)
    }

    fn bar0_write64(&mut self, offset: u32, value: u64) -> Result<()> {
        self.bar0_write(offset, 8, value)
    }

    fn alloc_dma(&mut self, len: usize) -> Result<DmaBuffer> {
        if len == 0 {
            return Err(TransportError::Other("alloc_dma: zero-length DMA buffer".into()));
        }
        let page = page_size();
        let too_big = || TransportError::Other(format!("alloc_dma: {len:#x} bytes do not fit the IOVA space"));
        let size = len.checked_next_multiple_of(page).ok_or_else(too_big)?;
        let iova = self.next_iova;
        let next_iova = iova
            .checked_add(size as u64)
            .and_then(|end| end.checked_add(DMA_GUARD_GAP))
            .and_then(|end| end.checked_next_multiple_of(page as u64))
            .ok_or_else(too_big)?;

        let mem = AnonMemory::new(size)?;
        let ptr = mem.ptr();
        // SAFETY: this meets the contract of `vfio_dma_map`: the range is a fresh
        // anonymous mapping owned by `mem`, `size` bytes long, of which no
        // Rust reference exists or will ever be made: the only access is
        // through `DmaBuffer`, which copies with volatile raw-pointer reads
        // and writes. The memory stays mapped until `DmaMapping::drop` has
        // called `vfio_dma_unmap` with the same IOVA and size (or, should the
        // map fail here, is freed having never been mapped).
        unsafe { self.container.vfio_dma_map(iova, size, ptr) }
            .map_err(|e| vfio_err(format!("map {size:#x} bytes for DMA at IOVA {iova:#x}"), e))?;
        self.next_iova = next_iova;
        let guard: MappingGuard = Arc::new(DmaMapping { container: self.container.clone(), iova, mem });
        // SAFETY: `ptr` is valid for reads and writes of `size >= len` bytes
        // while `guard` (which owns the memory) lives, and `iova..iova+size`
        // stays mapped to it until the guard's drop unmaps it (or the device
        // is closed, after which the card cannot reach memory at all).
        Ok(unsafe { DmaBuffer::new(iova, ptr, len, guard) })
    }

    fn enable_interrupts(&mut self) -> Result<()> {
        if self.irq.is_some() {
            return Ok(());
        }
        let count = |index| self.device.get_irq_info(index).map_or(0, |i| i.count);
        let (index, kind, n) = [(VFIO_PCI_MSIX_IRQ_INDEX, "MSI-X"), (VFIO_PCI_MSI_IRQ_INDEX, "MSI")]
            .into_iter()
            .map(|(index, kind)| (index, kind, count(index)))
            .find(|&(_, _, n)| n > 0)
            .ok_or_else(|| TransportError::Unavailable(format!("{}: VFIO reports neither MSI-X nor MSI", self.bdf)))?;
        let enable = |fds: &[EventFd]| {
            let fds: Vec<&EventFd> = fds.iter().collect();
            if index == VFIO_PCI_MSIX_IRQ_INDEX {
                self.device.enable_msix(fds)
            } else {
                self.device.enable_msi(fds)
            }
        };
        let mut fds = (0..n.min(MAX_VECTORS))
            .map(|_| EventFd::new(EFD_NONBLOCK | EFD_CLOEXEC))
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|e| io_err("create interrupt eventfd", e))?;
        if let Err(e) = enable(&fds) {
            // The platform may not give every vector (multi-message MSI
            // without interrupt remapping): the card works with one.
            if fds.len() == 1 {
                return Err(vfio_err(format!("enable {kind}"), e));
            }
            fds.truncate(1);
            enable(&fds).map_err(|e| vfio_err(format!("enable {kind} (1 vector)"), e))?;
        }
        self.irq = Some(Interrupts { index, kind, fds });
        Ok(())
    }

    fn wait_interrupt(&mut self, timeout: Duration) -> Result<bool> {
        let irq = self
            .irq
            .as_ref()
            .ok_or_else(|| TransportError::Other("interrupts not enabled: call enable_interrupts first".into()))?;
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let mut pfds: Vec<libc::pollfd> =
                irq.fds.iter().map(|f| libc::pollfd { fd: f.as_raw_fd(), events: libc::POLLIN, revents: 0 }).collect();
            let ts = deadline.map(|d| {
                let left = d.saturating_duration_since(Instant::now());
                libc::timespec {
                    tv_sec: left.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
                    tv_nsec: left.subsec_nanos() as _,
                }
            });
            let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
            // SAFETY: `pfds` is a live array of `pfds.len()` pollfds, `ts_ptr`
            // is null (no timeout) or points to `ts`, which outlives the
            // call, and a null sigmask leaves the signal mask alone.
            let r = unsafe { libc::ppoll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ts_ptr, std::ptr::null()) };
            if r < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                return Err(io_err("poll interrupt eventfds", e));
            }
            if r == 0 {
                return Ok(false);
            }
            let mut fired = false;
            for (p, fd) in pfds.iter().zip(&irq.fds) {
                if p.revents & (libc::POLLERR | libc::POLLNVAL) != 0 {
                    return Err(TransportError::Other(format!("{} eventfd reports an error (revents {:#x})", irq.kind, p.revents)));
                }
                if p.revents & libc::POLLIN != 0 {
                    match fd.read() {
                        Ok(_) => fired = true,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                        Err(e) => return Err(io_err("read interrupt eventfd", e)),
                    }
                }
            }
            if fired {
                return Ok(true);
            }
            // Readable but already drained: wait out the rest of the timeout.
        }
    }
}

impl Drop for VfioTransport {
    fn drop(&mut self) {
        if let Some(irq) = &self.irq {
            // Closing the device would also tear the vectors down; doing it
            // first detaches the eventfds while they are still open.
            let _ = self.device.disable_irq(irq.index);
        }
        // The fields then drop in declaration order: eventfds, BAR0
        // mappings, the duplicate fd, the device (its group leaves the
        // container), the container (once no DMA buffer holds it).
    }
}
