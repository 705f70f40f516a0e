//! virtio-net over virtio-mmio (virtio 1.x, split virtqueues), with a backend trait.
//!
//! Status: the device model and the in-process pair backend are implemented and tested
//! by driving the device's registers and rings the way a guest driver does
//! (tests/virtio_net.rs). Not yet done: announcing the device to a Linux guest — the
//! Debian cloud kernel lacks VIRTIO_MMIO_CMDLINE_DEVICES, so it needs an ACPI DSDT
//! entry (LNRO0005) or a virtio-pci transport. See docs/vmm.md.

use std::collections::VecDeque;
use std::io;
use std::sync::mpsc;

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmm_sys_util::eventfd::EventFd;

/// Where the frames of a virtio-net device go and come from (the card becomes one).
pub trait NetBackend: Send {
    /// Send one Ethernet frame.
    fn send(&mut self, frame: &[u8]) -> io::Result<()>;
    /// Receive one frame if one is waiting (never blocks).
    fn try_recv(&mut self) -> io::Result<Option<Vec<u8>>>;
}

/// One end of an in-process link: what one end sends, the other receives.
pub struct PairBackend {
    tx: mpsc::Sender<Vec<u8>>,
    rx: mpsc::Receiver<Vec<u8>>,
}

/// Two connected ends (guest A <-> guest B, or guest <-> a test).
pub fn pair() -> (PairBackend, PairBackend) {
    let (a_tx, b_rx) = mpsc::channel();
    let (b_tx, a_rx) = mpsc::channel();
    (PairBackend { tx: a_tx, rx: a_rx }, PairBackend { tx: b_tx, rx: b_rx })
}

impl NetBackend for PairBackend {
    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        self.tx.send(frame.to_vec()).map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "peer gone"))
    }
    fn try_recv(&mut self) -> io::Result<Option<Vec<u8>>> {
        match self.rx.try_recv() {
            Ok(f) => Ok(Some(f)),
            Err(mpsc::TryRecvError::Empty) => Ok(None),
            Err(mpsc::TryRecvError::Disconnected) => Ok(None),
        }
    }
}

pub const VIRTIO_MMIO_SIZE: u64 = 0x1000;
const MAGIC: u32 = 0x7472_6976;
const DEVICE_ID_NET: u32 = 1;
const VENDOR_ID: u32 = 0x4f46_4643; // "OFFC"
const F_MAC: u64 = 1 << 5;
const F_VERSION_1: u64 = 1 << 32;
const QUEUE_MAX: u16 = 256;
/// virtio_net_hdr_v1 (with num_buffers).
pub const NET_HDR_LEN: usize = 12;
const DESC_F_NEXT: u16 = 1;
const DESC_F_WRITE: u16 = 2;
const STATUS_NEEDS_RESET: u32 = 0x40;

#[derive(Default, Clone, Debug)]
struct Queue {
    num: u16,
    ready: bool,
    desc: u64,
    avail: u64,
    used: u64,
    last_avail: u16,
    used_idx: u16,
}

/// A virtio-net device on the virtio-mmio transport.
pub struct VirtioNet {
    mem: GuestMemoryMmap,
    backend: Box<dyn NetBackend>,
    irq: EventFd,
    mac: [u8; 6],
    status: u32,
    dev_features_sel: u32,
    drv_features_sel: u32,
    drv_features: u64,
    queue_sel: u32,
    queues: [Queue; 2], // 0 = receive, 1 = transmit
    interrupt_status: u32,
    pending_rx: VecDeque<Vec<u8>>,
    pub stats: NetStats,
    /// Guest memory this device wrote (gpa, len): KVM's dirty log only sees vCPU
    /// writes, so the VMM merges these in (as it will the card's write records).
    dirty: Option<WriteLog>,
}

/// Shared list of (guest physical address, length) the VMM's devices wrote.
pub type WriteLog = std::sync::Arc<std::sync::Mutex<Vec<(u64, u64)>>>;

#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetStats {
    pub tx_frames: u64,
    pub rx_frames: u64,
    pub rx_dropped: u64,
    pub errors: u64,
}

type R<T> = std::result::Result<T, String>;

impl VirtioNet {
    pub fn new(mem: GuestMemoryMmap, backend: Box<dyn NetBackend>, irq: EventFd, mac: [u8; 6]) -> Self {
        VirtioNet {
            mem,
            backend,
            irq,
            mac,
            status: 0,
            dev_features_sel: 0,
            drv_features_sel: 0,
            drv_features: 0,
            queue_sel: 0,
            queues: Default::default(),
            interrupt_status: 0,
            pending_rx: VecDeque::new(),
            stats: NetStats::default(),
            dirty: None,
        }
    }

    /// Record every guest-memory write of this device into `log`.
    pub fn set_write_log(&mut self, log: WriteLog) {
        self.dirty = Some(log);
    }

    fn wrote(&self, gpa: u64, len: u64) {
        if let Some(l) = &self.dirty {
            l.lock().unwrap().push((gpa, len));
        }
    }

    fn features() -> u64 {
        F_MAC | F_VERSION_1
    }

    fn q(&mut self) -> Option<&mut Queue> {
        self.queues.get_mut(self.queue_sel as usize)
    }

    /// A guest read of `data.len()` bytes at `offset` in the device's MMIO window.
    pub fn mmio_read(&mut self, offset: u64, data: &mut [u8]) {
        if offset >= 0x100 {
            let mut cfg = [0u8; 8];
            cfg[..6].copy_from_slice(&self.mac);
            cfg[6] = 1; // status: link up
            for (i, b) in data.iter_mut().enumerate() {
                *b = cfg.get((offset - 0x100) as usize + i).copied().unwrap_or(0);
            }
            return;
        }
        let v: u32 = match offset {
            0x000 => MAGIC,
            0x004 => 2,
            0x008 => DEVICE_ID_NET,
            0x00c => VENDOR_ID,
            0x010 => match self.dev_features_sel {
                0 => Self::features() as u32,
                1 => (Self::features() >> 32) as u32,
                _ => 0,
            },
            0x034 => {
                if self.q().is_some() {
                    u32::from(QUEUE_MAX)
                } else {
                    0
                }
            }
            0x044 => self.q().map(|q| u32::from(q.ready)).unwrap_or(0),
            0x060 => self.interrupt_status,
            0x070 => self.status,
            0x0fc => 0,
            _ => 0,
        };
        let b = v.to_le_bytes();
        for (i, d) in data.iter_mut().enumerate() {
            *d = b.get(i).copied().unwrap_or(0);
        }
    }

    /// A guest write at `offset`. Queue notifications run the transmit path.
    pub fn mmio_write(&mut self, offset: u64, data: &[u8]) {
        if offset >= 0x100 {
            return; // config space is read-only here
        }
        let mut b = [0u8; 4];
        for (i, x) in data.iter().take(4).enumerate() {
            b[i] = *x;
        }
        let v = u32::from_le_bytes(b);
        let set_lo = |x: &mut u64, v: u32| *x = (*x & !0xffff_ffff) | u64::from(v);
        let set_hi = |x: &mut u64, v: u32| *x = (*x & 0xffff_ffff) | (u64::from(v) << 32);
        match offset {
            0x014 => self.dev_features_sel = v,
            0x020 => match self.drv_features_sel {
                0 => set_lo(&mut self.drv_features, v),
                1 => set_hi(&mut self.drv_features, v),
                _ => {}
            },
            0x024 => self.drv_features_sel = v,
            0x030 => self.queue_sel = v,
            0x038 => {
                if let Some(q) = self.q() {
                    q.num = (v as u16).min(QUEUE_MAX);
                }
            }
            0x044 => {
                if let Some(q) = self.q() {
                    q.ready = v & 1 == 1;
                }
            }
            0x050 => match v {
                1 => self.process_tx(),
                0 => {
                    self.process_rx();
                }
                _ => {}
            },
            0x064 => self.interrupt_status &= !v,
            0x070 => {
                if v == 0 {
                    self.reset();
                } else {
                    self.status = v;
                }
            }
            0x080 => self.q().into_iter().for_each(|q| set_lo(&mut q.desc, v)),
            0x084 => self.q().into_iter().for_each(|q| set_hi(&mut q.desc, v)),
            0x090 => self.q().into_iter().for_each(|q| set_lo(&mut q.avail, v)),
            0x094 => self.q().into_iter().for_each(|q| set_hi(&mut q.avail, v)),
            0x0a0 => self.q().into_iter().for_each(|q| set_lo(&mut q.used, v)),
            0x0a4 => self.q().into_iter().for_each(|q| set_hi(&mut q.used, v)),
            _ => {}
        }
    }

    fn reset(&mut self) {
        self.status = 0;
        self.drv_features = 0;
        self.queues = Default::default();
        self.interrupt_status = 0;
    }

    fn driver_ok(&self) -> bool {
        self.status & 4 != 0 && self.status & STATUS_NEEDS_RESET == 0
    }

    fn fail(&mut self, why: String) {
        self.stats.errors += 1;
        self.status |= STATUS_NEEDS_RESET;
        if std::env::var_os("OFFCARD_VMM_DEBUG").is_some() {
            eprintln!("offcard-vmm: virtio-net: {why}; device needs reset");
        }
        self.interrupt_status |= 2;
        let _ = self.irq.write(1);
    }

    /// Next available descriptor chain head of queue `qi`, if any.
    fn pop(&mut self, qi: usize) -> R<Option<u16>> {
        let q = &self.queues[qi];
        if !q.ready || q.num == 0 {
            return Ok(None);
        }
        let idx: u16 = self.mem.read_obj(GuestAddress(q.avail + 2)).map_err(|e| format!("avail idx: {e}"))?;
        if idx == q.last_avail {
            return Ok(None);
        }
        let slot = u64::from(q.last_avail % q.num);
        let head: u16 = self.mem.read_obj(GuestAddress(q.avail + 4 + slot * 2)).map_err(|e| format!("avail ring: {e}"))?;
        if head >= q.num {
            return Err(format!("descriptor index {head} >= queue size {}", q.num));
        }
        self.queues[qi].last_avail = q.last_avail.wrapping_add(1);
        Ok(Some(head))
    }

    /// The (addr, len, flags) of a chain, bounded by the queue size (no loops).
    fn chain(&self, qi: usize, head: u16) -> R<Vec<(u64, u32, u16)>> {
        let q = &self.queues[qi];
        let mut v = Vec::new();
        let mut i = head;
        loop {
            if v.len() >= q.num as usize || i >= q.num {
                return Err("descriptor chain too long or index out of range".into());
            }
            let base = GuestAddress(q.desc + u64::from(i) * 16);
            let addr: u64 = self.mem.read_obj(base).map_err(|e| format!("desc: {e}"))?;
            let len: u32 = self.mem.read_obj(GuestAddress(base.0 + 8)).map_err(|e| format!("desc: {e}"))?;
            let flags: u16 = self.mem.read_obj(GuestAddress(base.0 + 12)).map_err(|e| format!("desc: {e}"))?;
            let next: u16 = self.mem.read_obj(GuestAddress(base.0 + 14)).map_err(|e| format!("desc: {e}"))?;
            v.push((addr, len, flags));
            if flags & DESC_F_NEXT == 0 {
                return Ok(v);
            }
            i = next;
        }
    }

    fn push_used(&mut self, qi: usize, head: u16, len: u32) -> R<()> {
        let q = &self.queues[qi];
        let slot = u64::from(q.used_idx % q.num);
        let e = GuestAddress(q.used + 4 + slot * 8);
        self.mem.write_obj(u32::from(head), e).map_err(|e| format!("used: {e}"))?;
        self.mem.write_obj(len, GuestAddress(e.0 + 4)).map_err(|e| format!("used: {e}"))?;
        let ni = q.used_idx.wrapping_add(1);
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
        self.mem.write_obj(ni, GuestAddress(q.used + 2)).map_err(|e| format!("used idx: {e}"))?;
        self.wrote(e.0, 8);
        self.wrote(q.used + 2, 2);
        self.queues[qi].used_idx = ni;
        Ok(())
    }

    fn signal(&mut self) {
        self.interrupt_status |= 1;
        let _ = self.irq.write(1);
    }

    /// Transmit every frame the driver has queued on the transmit queue.
    pub fn process_tx(&mut self) {
        if !self.driver_ok() {
            return;
        }
        let mut any = false;
        loop {
            let r = (|| -> R<bool> {
                let Some(head) = self.pop(1)? else { return Ok(false) };
                let mut buf = Vec::new();
                for (addr, len, flags) in self.chain(1, head)? {
                    if flags & DESC_F_WRITE != 0 {
                        return Err("write-only descriptor on the transmit queue".into());
                    }
                    if buf.len() + len as usize > 65562 + NET_HDR_LEN {
                        return Err("transmit frame too large".into());
                    }
                    let start = buf.len();
                    buf.resize(start + len as usize, 0);
                    self.mem.read_slice(&mut buf[start..], GuestAddress(addr)).map_err(|e| format!("tx buffer: {e}"))?;
                }
                if buf.len() > NET_HDR_LEN {
                    if self.backend.send(&buf[NET_HDR_LEN..]).is_ok() {
                        self.stats.tx_frames += 1;
                    }
                }
                self.push_used(1, head, 0)?;
                Ok(true)
            })();
            match r {
                Ok(true) => any = true,
                Ok(false) => break,
                Err(e) => {
                    self.fail(e);
                    return;
                }
            }
        }
        if any {
            self.signal();
        }
    }

    /// Deliver frames waiting in the backend into the driver's receive buffers.
    /// Returns how many were delivered. Call it when the backend may have data.
    pub fn process_rx(&mut self) -> usize {
        while let Ok(Some(f)) = self.backend.try_recv() {
            if self.pending_rx.len() >= 1024 {
                self.stats.rx_dropped += 1;
            } else {
                self.pending_rx.push_back(f);
            }
        }
        if !self.driver_ok() {
            return 0;
        }
        let mut n = 0;
        while let Some(frame) = self.pending_rx.front().cloned() {
            let r = (|| -> R<bool> {
                let Some(head) = self.pop(0)? else { return Ok(false) };
                let mut hdr = [0u8; NET_HDR_LEN];
                hdr[10] = 1; // num_buffers
                let data: Vec<u8> = hdr.iter().chain(frame.iter()).copied().collect();
                let mut off = 0usize;
                for (addr, len, flags) in self.chain(0, head)? {
                    if flags & DESC_F_WRITE == 0 {
                        return Err("read-only descriptor on the receive queue".into());
                    }
                    let k = (len as usize).min(data.len() - off);
                    self.mem.write_slice(&data[off..off + k], GuestAddress(addr)).map_err(|e| format!("rx buffer: {e}"))?;
                    self.wrote(addr, k as u64);
                    off += k;
                    if off == data.len() {
                        break;
                    }
                }
                if off < data.len() {
                    self.stats.rx_dropped += 1; // buffer too small: drop, give it back
                    self.push_used(0, head, 0)?;
                } else {
                    self.stats.rx_frames += 1;
                    self.push_used(0, head, off as u32)?;
                }
                Ok(true)
            })();
            match r {
                Ok(true) => {
                    self.pending_rx.pop_front();
                    n += 1;
                }
                Ok(false) => break,
                Err(e) => {
                    self.fail(e);
                    break;
                }
            }
        }
        if n > 0 {
            self.signal();
        }
        n
    }
}

/// A TAP device as backend: the guest's frames reach the host's network stack (for
/// example inside a network namespace) and back. Non-blocking.
pub struct TapBackend {
    file: std::fs::File,
    name: String,
}

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;

#[repr(C)]
struct IfReq {
    name: [u8; 16],
    flags: libc::c_short,
    _pad: [u8; 22],
}

impl TapBackend {
    /// Create (or attach to) TAP interface `name` in the calling thread's network
    /// namespace and bring it up.
    pub fn open(name: &str) -> io::Result<Self> {
        use std::os::fd::AsRawFd;
        if name.len() >= 16 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "interface name too long"));
        }
        let file = std::fs::OpenOptions::new().read(true).write(true).open("/dev/net/tun")?;
        let mut req = IfReq { name: [0; 16], flags: IFF_TAP | IFF_NO_PI, _pad: [0; 22] };
        req.name[..name.len()].copy_from_slice(name.as_bytes());
        // SAFETY: TUNSETIFF with a properly sized ifreq.
        if unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF as _, &mut req) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fcntl on our fd.
        unsafe {
            let fl = libc::fcntl(file.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(file.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
        // Bring the interface up (SIOCSIFFLAGS on any socket of this namespace).
        // SAFETY: plain socket/ioctl calls with a valid ifreq.
        unsafe {
            let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
            if s < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut r = IfReq { name: req.name, flags: 0, _pad: [0; 22] };
            libc::ioctl(s, libc::SIOCGIFFLAGS as _, &mut r);
            r.flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            let rc = libc::ioctl(s, libc::SIOCSIFFLAGS as _, &mut r);
            let err = io::Error::last_os_error();
            libc::close(s);
            if rc < 0 {
                return Err(err);
            }
        }
        Ok(TapBackend { file, name: name.to_string() })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl NetBackend for TapBackend {
    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        use std::io::Write;
        match self.file.write(frame) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()), // dropped, like a full NIC
            Err(e) => Err(e),
        }
    }
    fn try_recv(&mut self) -> io::Result<Option<Vec<u8>>> {
        use std::io::Read;
        let mut buf = vec![0u8; 65536];
        match self.file.read(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                Ok(Some(buf))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }
}
