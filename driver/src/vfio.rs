//! Transport backend for a real card bound to `vfio-pci`.
//!
//! Plain VFIO ioctls (linux/vfio.h): container + group + device fd, type-1 v2
//! IOMMU, BAR0 mapped into the process, configuration space through the
//! config region, DMA buffers mapped with VFIO_IOMMU_MAP_DMA, MSI delivered
//! to an eventfd. On a machine without `/dev/vfio` or an IOMMU group for the
//! device, `open` fails with a message that names what is missing.

use crate::transport::{CardTransport, DmaBuffer, Result, TransportError};
use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

const VFIO_TYPE: u64 = b';' as u64;
const VFIO_BASE: u64 = 100;
const fn vfio_io(nr: u64) -> u64 {
    (VFIO_TYPE << 8) | (VFIO_BASE + nr)
}
const VFIO_GET_API_VERSION: u64 = vfio_io(0);
const VFIO_CHECK_EXTENSION: u64 = vfio_io(1);
const VFIO_SET_IOMMU: u64 = vfio_io(2);
const VFIO_GROUP_GET_STATUS: u64 = vfio_io(3);
const VFIO_GROUP_SET_CONTAINER: u64 = vfio_io(4);
const VFIO_GROUP_GET_DEVICE_FD: u64 = vfio_io(6);
const VFIO_DEVICE_GET_REGION_INFO: u64 = vfio_io(8);
const VFIO_DEVICE_SET_IRQS: u64 = vfio_io(10);
const VFIO_IOMMU_MAP_DMA: u64 = vfio_io(13);
const VFIO_API_VERSION: i32 = 0;
const VFIO_TYPE1V2_IOMMU: u64 = 3;
const VFIO_GROUP_FLAGS_VIABLE: u32 = 1;
const VFIO_PCI_BAR0_REGION_INDEX: u32 = 0;
const VFIO_PCI_CONFIG_REGION_INDEX: u32 = 7;
const VFIO_PCI_MSI_IRQ_INDEX: u32 = 1;
const VFIO_IRQ_SET_DATA_EVENTFD: u32 = 1 << 2;
const VFIO_IRQ_SET_ACTION_TRIGGER: u32 = 1 << 5;
const VFIO_DMA_MAP_FLAG_READ: u32 = 1;
const VFIO_DMA_MAP_FLAG_WRITE: u32 = 2;

#[repr(C)]
#[derive(Default)]
struct GroupStatus {
    argsz: u32,
    flags: u32,
}

#[repr(C)]
#[derive(Default)]
struct RegionInfo {
    argsz: u32,
    flags: u32,
    index: u32,
    cap_offset: u32,
    size: u64,
    offset: u64,
}

#[repr(C)]
struct DmaMap {
    argsz: u32,
    flags: u32,
    vaddr: u64,
    iova: u64,
    size: u64,
}

#[repr(C)]
struct IrqSetEventfd {
    argsz: u32,
    flags: u32,
    index: u32,
    start: u32,
    count: u32,
    fd: i32,
}

fn ioctl(fd: i32, op: &'static str, req: u64, arg: *mut libc::c_void) -> Result<i32> {
    let r = unsafe { libc::ioctl(fd, req as _, arg) };
    if r < 0 {
        return Err(TransportError::Ioctl { op, err: std::io::Error::last_os_error() });
    }
    Ok(r)
}

pub struct VfioTransport {
    bdf: String,
    _container: File,
    _group: File,
    device: File,
    config_offset: u64,
    bar0: *mut u8,
    bar0_size: usize,
    eventfd: Option<File>,
    next_iova: u64,
    dma: Vec<(*mut libc::c_void, usize)>,
}

unsafe impl Send for VfioTransport {}

/// The IOMMU group of a PCI device (`0000:01:00.0`), from sysfs.
pub fn iommu_group(bdf: &str) -> Result<u32> {
    let link = Path::new("/sys/bus/pci/devices").join(bdf).join("iommu_group");
    let target = std::fs::read_link(&link).map_err(|_| {
        TransportError::VfioUnavailable(format!(
            "PCI device {bdf} has no IOMMU group ({} missing): enable the IOMMU (intel_iommu=on or amd_iommu=on) and check the device exists",
            link.display()
        ))
    })?;
    target
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| TransportError::VfioUnavailable(format!("unreadable IOMMU group link {}", target.display())))
}

impl VfioTransport {
    /// Open the card at `bdf` (e.g. `0000:01:00.0`), bound to vfio-pci.
    pub fn open(bdf: &str) -> Result<Self> {
        let container = OpenOptions::new().read(true).write(true).open("/dev/vfio/vfio").map_err(|e| {
            TransportError::VfioUnavailable(format!(
                "cannot open /dev/vfio/vfio ({e}): load the vfio-pci module (`modprobe vfio-pci`) on a host with an IOMMU"
            ))
        })?;
        let group_no = iommu_group(bdf)?;
        let gpath = PathBuf::from(format!("/dev/vfio/{group_no}"));
        let group = OpenOptions::new().read(true).write(true).open(&gpath).map_err(|e| {
            TransportError::VfioUnavailable(format!(
                "cannot open {} ({e}): bind {bdf} to vfio-pci (echo vfio-pci > /sys/bus/pci/devices/{bdf}/driver_override)",
                gpath.display()
            ))
        })?;
        let cfd = container.as_raw_fd();
        if ioctl(cfd, "VFIO_GET_API_VERSION", VFIO_GET_API_VERSION, std::ptr::null_mut())? != VFIO_API_VERSION {
            return Err(TransportError::VfioUnavailable("unknown VFIO API version".into()));
        }
        if ioctl(cfd, "VFIO_CHECK_EXTENSION", VFIO_CHECK_EXTENSION, VFIO_TYPE1V2_IOMMU as *mut _)? == 0 {
            return Err(TransportError::VfioUnavailable("the kernel has no VFIO type-1 v2 IOMMU".into()));
        }
        let mut st = GroupStatus { argsz: std::mem::size_of::<GroupStatus>() as u32, flags: 0 };
        ioctl(group.as_raw_fd(), "VFIO_GROUP_GET_STATUS", VFIO_GROUP_GET_STATUS, &mut st as *mut _ as *mut _)?;
        if st.flags & VFIO_GROUP_FLAGS_VIABLE == 0 {
            return Err(TransportError::VfioUnavailable(format!(
                "IOMMU group {group_no} is not viable: bind every device in it to vfio-pci"
            )));
        }
        let mut c = cfd;
        ioctl(group.as_raw_fd(), "VFIO_GROUP_SET_CONTAINER", VFIO_GROUP_SET_CONTAINER, &mut c as *mut _ as *mut _)?;
        ioctl(cfd, "VFIO_SET_IOMMU", VFIO_SET_IOMMU, VFIO_TYPE1V2_IOMMU as *mut _)?;
        let name = std::ffi::CString::new(bdf).unwrap();
        let dfd = ioctl(group.as_raw_fd(), "VFIO_GROUP_GET_DEVICE_FD", VFIO_GROUP_GET_DEVICE_FD, name.as_ptr() as *mut _)?;
        let device = unsafe { File::from_raw_fd(dfd) };
        let region = |index: u32| -> Result<RegionInfo> {
            let mut ri = RegionInfo { argsz: std::mem::size_of::<RegionInfo>() as u32, index, ..Default::default() };
            ioctl(dfd, "VFIO_DEVICE_GET_REGION_INFO", VFIO_DEVICE_GET_REGION_INFO, &mut ri as *mut _ as *mut _)?;
            Ok(ri)
        };
        let cfg = region(VFIO_PCI_CONFIG_REGION_INDEX)?;
        let bar = region(VFIO_PCI_BAR0_REGION_INDEX)?;
        let bar0 = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bar.size as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                dfd,
                bar.offset as i64,
            )
        };
        if bar0 == libc::MAP_FAILED {
            return Err(TransportError::Ioctl { op: "mmap BAR0", err: std::io::Error::last_os_error() });
        }
        Ok(VfioTransport {
            bdf: bdf.into(),
            _container: container,
            _group: group,
            device,
            config_offset: cfg.offset,
            bar0: bar0 as *mut u8,
            bar0_size: bar.size as usize,
            eventfd: None,
            next_iova: 0x1_0000_0000,
            dma: vec![],
        })
    }

    fn check(&self, offset: u32, len: usize) -> Result<()> {
        if offset as usize % len != 0 || offset as usize + len > self.bar0_size {
            return Err(TransportError::Other(format!("BAR0 access {offset:#x}/{len} out of range or unaligned")));
        }
        Ok(())
    }
}

impl CardTransport for VfioTransport {
    fn describe(&self) -> String {
        format!("VFIO device {} (BAR0 {} bytes)", self.bdf, self.bar0_size)
    }
    fn config_read32(&mut self, offset: u16) -> Result<u32> {
        let mut b = [0u8; 4];
        self.device.read_exact_at(&mut b, self.config_offset + offset as u64)?;
        Ok(u32::from_le_bytes(b))
    }
    fn config_write32(&mut self, offset: u16, value: u32) -> Result<()> {
        self.device.write_all_at(&value.to_le_bytes(), self.config_offset + offset as u64)?;
        Ok(())
    }
    fn bar0_read32(&mut self, offset: u32) -> Result<u32> {
        self.check(offset, 4)?;
        Ok(unsafe { std::ptr::read_volatile(self.bar0.add(offset as usize) as *const u32) })
    }
    fn bar0_write32(&mut self, offset: u32, value: u32) -> Result<()> {
        self.check(offset, 4)?;
        unsafe { std::ptr::write_volatile(self.bar0.add(offset as usize) as *mut u32, value) };
        Ok(())
    }
    fn bar0_read64(&mut self, offset: u32) -> Result<u64> {
        self.check(offset, 8)?;
        Ok(unsafe { std::ptr::read_volatile(self.bar0.add(offset as usize) as *const u64) })
    }
    fn bar0_write64(&mut self, offset: u32, value: u64) -> Result<()> {
        self.check(offset, 8)?;
        unsafe { std::ptr::write_volatile(self.bar0.add(offset as usize) as *mut u64, value) };
        Ok(())
    }
    fn alloc_dma(&mut self, len: usize) -> Result<DmaBuffer> {
        let size = len.div_ceil(4096) * 4096;
        let p = unsafe {
            libc::mmap(std::ptr::null_mut(), size, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
        };
        if p == libc::MAP_FAILED {
            return Err(TransportError::Io(std::io::Error::last_os_error()));
        }
        let iova = self.next_iova;
        let mut m = DmaMap {
            argsz: std::mem::size_of::<DmaMap>() as u32,
            flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
            vaddr: p as u64,
            iova,
            size: size as u64,
        };
        ioctl(self._container.as_raw_fd(), "VFIO_IOMMU_MAP_DMA", VFIO_IOMMU_MAP_DMA, &mut m as *mut _ as *mut _)?;
        self.next_iova += size as u64 + 4096;
        self.dma.push((p, size));
        Ok(unsafe { DmaBuffer::new(iova, p as *mut u8, len) })
    }
    fn enable_interrupts(&mut self) -> Result<()> {
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if efd < 0 {
            return Err(TransportError::Io(std::io::Error::last_os_error()));
        }
        let mut s = IrqSetEventfd {
            argsz: std::mem::size_of::<IrqSetEventfd>() as u32,
            flags: VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
            index: VFIO_PCI_MSI_IRQ_INDEX,
            start: 0,
            count: 1,
            fd: efd,
        };
        ioctl(self.device.as_raw_fd(), "VFIO_DEVICE_SET_IRQS", VFIO_DEVICE_SET_IRQS, &mut s as *mut _ as *mut _)?;
        self.eventfd = Some(unsafe { File::from_raw_fd(efd) });
        Ok(())
    }
    fn wait_interrupt(&mut self, timeout: Duration) -> Result<bool> {
        let fd = self.eventfd.as_ref().ok_or(TransportError::Other("interrupts not enabled".into()))?.as_raw_fd();
        let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        let r = unsafe { libc::poll(&mut p, 1, timeout.as_millis().min(i32::MAX as u128) as i32) };
        if r < 0 {
            return Err(TransportError::Io(std::io::Error::last_os_error()));
        }
        if r == 0 {
            return Ok(false);
        }
        let mut v = 0u64;
        unsafe { libc::read(fd, &mut v as *mut u64 as *mut _, 8) };
        Ok(true)
    }
}

impl Drop for VfioTransport {
    fn drop(&mut self) {
        unsafe {
            libc::munmap(self.bar0 as *mut _, self.bar0_size);
            for &(p, s) in &self.dma {
                libc::munmap(p, s);
            }
        }
    }
}
