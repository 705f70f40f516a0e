//! Transport over vfio-user: a card served by another process (the card
//! process `offcard card --socket PATH`, or any vfio-user server of this
//! device), through rust-vmm's `vfio_user::Client`.
//!
//! Configuration space and BAR0 are region reads and writes on the socket;
//! DMA memory is a memfd this process maps and hands to the server with
//! DMA_MAP, so the card reads and writes it directly (the data never
//! crosses the socket); the MSI arrives on an eventfd given with SET_IRQS.
//!
//! A simulated card process also serves its status region
//! ([`offcard_regs::sim_status`]): timeouts are then counted in the card's
//! simulated time (as the in-process transport does), and the DMA accesses
//! its IOMMU refused are reported. Against any other server, time is wall
//! time and no faults are reported.
//!
//! The released `vfio_user` client does not check a reply's error flag and
//! reads a reply of the size it expects, so a request the server refuses
//! with a short error reply would hang it. This transport therefore checks
//! every region access against the region table before it is sent, and the
//! server side is tested with a raw protocol client for the rest.

use crate::transport::{CardTransport, DmaBuffer, Result, TransportError};
use offcard_regs::{net::CARD_CLOCK_HZ, sim_status as ss};
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vfio_bindings::bindings::vfio::{
    VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_IRQ_SET_DATA_EVENTFD, VFIO_PCI_BAR0_REGION_INDEX, VFIO_PCI_CONFIG_REGION_INDEX,
    VFIO_PCI_MSI_IRQ_INDEX,
};
use vfio_user::Client;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// IOVA where this transport starts handing out DMA buffers.
pub const IOVA_BASE: u64 = 0x1_0000_0000;
/// How long a simulated card may stand still (its clock not advancing)
/// before a wait gives up with an error.
const STALLED_CARD: Duration = Duration::from_secs(30);

fn err(path: &Path, op: impl Into<String>, e: vfio_user::Error) -> TransportError {
    use std::io::ErrorKind::{BrokenPipe, ConnectionReset, UnexpectedEof};
    let op = op.into();
    // The stream closed under a request: the card process is gone (or
    // refused us with a short error reply and hung up).
    let closed = match &e {
        vfio_user::Error::StreamRead(io) | vfio_user::Error::StreamWrite(io) => matches!(io.kind(), UnexpectedEof | BrokenPipe | ConnectionReset),
        vfio_user::Error::SendWithFd(errno) | vfio_user::Error::ReceiveWithFd(errno) => matches!(errno.errno(), libc::EPIPE | libc::ECONNRESET),
        _ => false,
    };
    if closed {
        return TransportError::Backend {
            backend: "vfio-user",
            op,
            source: format!("the card process at {} closed the connection (it exited, was killed, or serves another client)", path.display())
                .into(),
        };
    }
    TransportError::backend("vfio-user", op, e)
}

/// A DMA buffer's memory and its mapping in the server; unmapped from the
/// server (DMA_UNMAP) and from this process when the last holder drops it.
struct UserMapping {
    client: Arc<Mutex<Client>>,
    ptr: *mut libc::c_void,
    size: usize,
    iova: u64,
    _file: File,
}

// SAFETY: the raw pointer is a private mmap owned by this struct; the client
// is behind a mutex.
unsafe impl Send for UserMapping {}
// SAFETY: as above; `&UserMapping` gives access to nothing mutable.
unsafe impl Sync for UserMapping {}

impl Drop for UserMapping {
    fn drop(&mut self) {
        if let Ok(mut c) = self.client.lock() {
            let _ = c.dma_unmap(self.iova, self.size as u64);
        }
        // SAFETY: `ptr`/`size` are exactly the mapping made in `alloc_dma`,
        // and no DmaBuffer refers to it any more (this is the last holder).
        unsafe { libc::munmap(self.ptr, self.size) };
    }
}

pub struct VfioUserTransport {
    path: PathBuf,
    client: Arc<Mutex<Client>>,
    bar0_size: u64,
    config_size: u64,
    simulated: bool,
    irq: Option<EventFd>,
    next_iova: u64,
    faults_seen: u64,
}

impl VfioUserTransport {
    /// Attach the vfio-user device served at `socket`.
    pub fn connect(socket: &Path) -> Result<Self> {
        if !socket.exists() {
            return Err(TransportError::Unavailable(format!(
                "no vfio-user socket at {}: start the card process first (`offcard card --socket {}`)",
                socket.display(),
                socket.display()
            )));
        }
        let client = Client::new(socket).map_err(|e| err(socket, "connect", e))?;
        let size = |i: u32| client.region(i).map(|r| r.size).unwrap_or(0);
        let (bar0_size, config_size) = (size(VFIO_PCI_BAR0_REGION_INDEX), size(VFIO_PCI_CONFIG_REGION_INDEX));
        if bar0_size == 0 || config_size < 256 {
            return Err(TransportError::Other(format!(
                "the vfio-user device at {} has no BAR0 ({bar0_size} bytes) or configuration space ({config_size} bytes)",
                socket.display()
            )));
        }
        let simulated = size(ss::REGION_INDEX) >= ss::REGION_SIZE;
        let mut t = VfioUserTransport {
            path: socket.to_path_buf(),
            client: Arc::new(Mutex::new(client)),
            bar0_size,
            config_size,
            simulated: false,
            irq: None,
            next_iova: IOVA_BASE,
            faults_seen: 0,
        };
        if simulated && t.status_u64(ss::MAGIC)? == ss::MAGIC_VALUE {
            t.simulated = true;
            t.faults_seen = t.status_u64(ss::IOMMU_FAULTS)?;
        }
        Ok(t)
    }

    /// Whether the server is a simulated card (it serves the status region).
    pub fn is_simulated(&self) -> bool {
        self.simulated
    }

    fn client(&self) -> std::sync::MutexGuard<'_, Client> {
        self.client.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check(&self, what: &str, offset: u64, len: u64, size: u64) -> Result<()> {
        if offset % len != 0 || offset.checked_add(len).is_none_or(|e| e > size) {
            return Err(TransportError::Other(format!("{what} access {offset:#x}/{len} out of range (size {size:#x}) or unaligned")));
        }
        Ok(())
    }

    fn read(&self, region: u32, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.client().region_read(region, offset, buf).map_err(|e| err(&self.path, format!("read region {region} at {offset:#x}"), e))
    }

    fn write(&self, region: u32, offset: u64, data: &[u8]) -> Result<()> {
        self.client().region_write(region, offset, data).map_err(|e| err(&self.path, format!("write region {region} at {offset:#x}"), e))
    }

    fn status_u64(&self, off: u32) -> Result<u64> {
        let mut b = [0u8; 8];
        self.read(ss::REGION_INDEX, off as u64, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// The simulated card's clock (cycles), if it is one.
    pub fn read_card_cycles(&self) -> Result<Option<u64>> {
        if !self.simulated {
            return Ok(None);
        }
        self.status_u64(ss::CYCLES).map(Some)
    }

    /// The card port's frame counters (sent, received, dropped on receive), if simulated.
    pub fn port_counters(&self) -> Result<Option<(u64, u64, u64)>> {
        if !self.simulated {
            return Ok(None);
        }
        Ok(Some((self.status_u64(ss::PORT_TX_FRAMES)?, self.status_u64(ss::PORT_RX_FRAMES)?, self.status_u64(ss::PORT_RX_DROPPED)?)))
    }

    /// Device reset (VFIO_DEVICE_RESET): the card comes back as after power-up;
    /// DMA mappings stay, interrupts must be enabled again.
    pub fn reset(&mut self) -> Result<()> {
        self.irq = None;
        self.client().reset().map_err(|e| err(&self.path, "reset", e))
    }

    fn drain_eventfd(&self) -> bool {
        self.irq.as_ref().is_some_and(|e| e.read().is_ok())
    }
}

impl CardTransport for VfioUserTransport {
    fn describe(&self) -> String {
        format!(
            "vfio-user device at {} ({}), BAR0 {:#x} bytes",
            self.path.display(),
            if self.simulated { "simulated card process" } else { "device process" },
            self.bar0_size
        )
    }
    fn config_read32(&mut self, offset: u16) -> Result<u32> {
        self.check("configuration", offset as u64, 4, self.config_size)?;
        let mut b = [0u8; 4];
        self.read(VFIO_PCI_CONFIG_REGION_INDEX, offset as u64, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn config_write32(&mut self, offset: u16, value: u32) -> Result<()> {
        self.check("configuration", offset as u64, 4, self.config_size)?;
        self.write(VFIO_PCI_CONFIG_REGION_INDEX, offset as u64, &value.to_le_bytes())
    }
    fn bar0_read32(&mut self, offset: u32) -> Result<u32> {
        self.check("BAR0", offset as u64, 4, self.bar0_size)?;
        let mut b = [0u8; 4];
        self.read(VFIO_PCI_BAR0_REGION_INDEX, offset as u64, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn bar0_write32(&mut self, offset: u32, value: u32) -> Result<()> {
        self.check("BAR0", offset as u64, 4, self.bar0_size)?;
        self.write(VFIO_PCI_BAR0_REGION_INDEX, offset as u64, &value.to_le_bytes())
    }
    fn bar0_read64(&mut self, offset: u32) -> Result<u64> {
        self.check("BAR0", offset as u64, 8, self.bar0_size)?;
        let mut b = [0u8; 8];
        self.read(VFIO_PCI_BAR0_REGION_INDEX, offset as u64, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn bar0_write64(&mut self, offset: u32, value: u64) -> Result<()> {
        self.check("BAR0", offset as u64, 8, self.bar0_size)?;
        self.write(VFIO_PCI_BAR0_REGION_INDEX, offset as u64, &value.to_le_bytes())
    }
    fn alloc_dma(&mut self, len: usize) -> Result<DmaBuffer> {
        if len == 0 {
            return Err(TransportError::Other("a DMA buffer of 0 bytes".into()));
        }
        let size = len.div_ceil(4096) * 4096;
        let name = std::ffi::CString::new("offcard-dma").unwrap();
        // SAFETY: memfd_create with a valid C string; the result is checked.
        let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(TransportError::Io(std::io::Error::last_os_error()));
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        let file = unsafe { File::from_raw_fd(fd) };
        file.set_len(size as u64)?;
        // SAFETY: a new shared mapping of the whole memfd, checked below.
        let ptr = unsafe { libc::mmap(std::ptr::null_mut(), size, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0) };
        if ptr == libc::MAP_FAILED {
            return Err(TransportError::Io(std::io::Error::last_os_error()));
        }
        let iova = self.next_iova;
        let mapping = UserMapping { client: self.client.clone(), ptr, size, iova, _file: file };
        self.client().dma_map(0, iova, size as u64, fd).map_err(|e| err(&self.path, format!("DMA_MAP {iova:#x}+{size:#x}"), e))?;
        // A guard gap between buffers, so an overrun is an IOMMU fault.
        self.next_iova += size as u64 + 4096;
        // SAFETY: `ptr` is valid for `size >= len` bytes while the mapping
        // lives, and the DmaBuffer holds the mapping; `iova` was just mapped
        // to the same memory in the server.
        Ok(unsafe { DmaBuffer::new(iova, ptr as *mut u8, len, Arc::new(mapping)) })
    }
    fn enable_interrupts(&mut self) -> Result<()> {
        if self.irq.is_some() {
            while self.drain_eventfd() {}
            return Ok(());
        }
        let efd = EventFd::new(EFD_NONBLOCK).map_err(|e| TransportError::Io(e.into()))?;
        self.client()
            .set_irqs(VFIO_PCI_MSI_IRQ_INDEX, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, 0, 1, &[efd.as_raw_fd()])
            .map_err(|e| err(&self.path, "SET_IRQS (MSI)", e))?;
        self.irq = Some(efd);
        Ok(())
    }
    fn wait_interrupt(&mut self, timeout: Duration) -> Result<bool> {
        let fd = self.irq.as_ref().ok_or(TransportError::Other("interrupts not enabled".into()))?.as_raw_fd();
        if self.drain_eventfd() {
            return Ok(true);
        }
        let wall_start = Instant::now();
        let slice = Duration::from_millis(if self.simulated { 5 } else { 1000 });
        let cycles = (timeout.as_nanos() * CARD_CLOCK_HZ as u128 / 1_000_000_000).min(u64::MAX as u128) as u64;
        let mut start = self.read_card_cycles()?;
        let mut last_progress = (Instant::now(), start.unwrap_or(0));
        loop {
            let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
            let left = match start {
                Some(_) => slice,
                None => timeout.saturating_sub(wall_start.elapsed()).min(slice),
            };
            // SAFETY: one valid pollfd for the duration of the call.
            let r = unsafe { libc::poll(&mut p, 1, left.as_millis() as i32) };
            if r < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                return Err(TransportError::Io(std::io::Error::last_os_error()));
            }
            if self.drain_eventfd() {
                return Ok(true);
            }
            match start {
                None if wall_start.elapsed() >= timeout => return Ok(false),
                None => {}
                Some(s) => {
                    let now = self.status_u64(ss::CYCLES)?;
                    if now < s {
                        start = Some(now); // the card was reset under us
                    } else if now - s >= cycles.max(1) {
                        return Ok(self.drain_eventfd());
                    }
                    if now != last_progress.1 {
                        last_progress = (Instant::now(), now);
                    } else if last_progress.0.elapsed() > STALLED_CARD {
                        return Err(TransportError::Other(format!(
                            "the card process at {} stopped advancing its clock",
                            self.path.display()
                        )));
                    }
                }
            }
        }
    }
    fn card_cycles(&mut self) -> Option<u64> {
        self.read_card_cycles().ok().flatten()
    }
    fn take_iommu_faults(&mut self) -> Vec<(u64, bool)> {
        if !self.simulated {
            return Vec::new();
        }
        let Ok(total) = self.status_u64(ss::IOMMU_FAULTS) else { return Vec::new() };
        let first = self.faults_seen.max(total.saturating_sub(ss::FAULT_SLOTS as u64));
        let mut out = Vec::new();
        for n in first..total {
            let slot = ss::FAULT_LOG + (n % ss::FAULT_SLOTS as u64) as u32 * ss::FAULT_BYTES;
            // Read tag, address, tag again: a slot the card overwrote in
            // between (a newer fault) no longer carries sequence number n.
            let (Ok(t1), Ok(iova), Ok(t2)) = (self.status_u64(slot + 8), self.status_u64(slot), self.status_u64(slot + 8)) else { continue };
            if t1 == t2 && t1 >> 1 == n {
                out.push((iova, t1 & 1 == 1));
            }
        }
        self.faults_seen = total;
        out
    }
}
