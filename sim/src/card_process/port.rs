//! The card's Ethernet port outside its process.
//!
//! - `tap:NAME`: a Linux TAP device (IFF_TAP | IFF_NO_PI) in the caller's
//!   network namespace; frames the card sends appear on it as received by
//!   Linux, and what Linux sends into it enters the card's port.
//! - `wire:PATH`: one end of a cable between two card processes (or a card
//!   and a test), a Unix datagram socket per end: the first to come binds
//!   `PATH.a`, the second `PATH.b`; each sends to the other end's address.
//!   One datagram is one Ethernet frame (without FCS).
//!
//! [`PcapTap`] records every frame the port sends and receives to a pcap
//! file (LINKTYPE_ETHERNET) with timestamps from the card's cycle count.

use std::fs::File;
use std::io::BufWriter;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

/// Largest frame the port carries (jumbo plus a VLAN tag and outer headers).
pub const PORT_MTU: usize = offcard_regs::net::MAX_FRAME + 64;

/// An Ethernet port: frames in and out, never blocking.
pub trait EthernetPort: Send {
    /// Send one frame; a frame the far side cannot take now is dropped
    /// (Ethernet does that too) and `false` is returned.
    fn send(&mut self, frame: &[u8]) -> std::io::Result<bool>;
    /// The next frame that arrived, if any.
    fn recv(&mut self) -> std::io::Result<Option<Vec<u8>>>;
    /// Retry frames the far side could not take yet (called on every pump).
    fn poll_out(&mut self) -> std::io::Result<()> {
        Ok(())
    }
    /// Frames dropped because the far side did not take them in time.
    fn tx_dropped(&self) -> u64 {
        0
    }
    /// A descriptor to poll for readability.
    fn fd(&self) -> i32;
    fn describe(&self) -> String;
}

/// Parse `tap:NAME` or `wire:PATH`.
pub fn open_port(spec: &str) -> std::io::Result<Box<dyn EthernetPort>> {
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("--net {spec:?}: expected tap:NAME or wire:PATH"));
    match spec.split_once(':') {
        Some(("tap", name)) if !name.is_empty() => Ok(Box::new(Tap::open(name)?)),
        Some(("wire", path)) if !path.is_empty() => Ok(Box::new(WireEnd::open(Path::new(path))?)),
        _ => Err(bad()),
    }
}

/// One end of a `wire:PATH` cable.
///
/// A Unix datagram socket's receive queue is short (`net.unix.max_dgram_qlen`,
/// 10 by default), so frames the far end cannot take yet wait in a transmit
/// FIFO of [`WIRE_TX_FIFO`] frames, like a MAC's, and are dropped (counted)
/// only when it overflows.
pub struct WireEnd {
    sock: UnixDatagram,
    local: PathBuf,
    peer: PathBuf,
    fifo: std::collections::VecDeque<Vec<u8>>,
    dropped: u64,
}

/// Frames a wire end holds for a far end that is slow to read.
pub const WIRE_TX_FIFO: usize = 1024;

fn end_path(cable: &Path, end: &str) -> PathBuf {
    let mut s = cable.as_os_str().to_owned();
    s.push(end);
    PathBuf::from(s)
}

/// A socket file nobody listens on any more (its process died): safe to take over.
fn is_stale(path: &Path) -> bool {
    match UnixDatagram::unbound().and_then(|s| s.connect(path)) {
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionRefused,
        Ok(()) => false,
    }
}

impl WireEnd {
    /// Take a free end of the cable at `cable` (`.a` first, then `.b`).
    pub fn open(cable: &Path) -> std::io::Result<WireEnd> {
        for (mine, theirs) in [(".a", ".b"), (".b", ".a")] {
            let local = end_path(cable, mine);
            if local.exists() && is_stale(&local) {
                let _ = std::fs::remove_file(&local);
            }
            match UnixDatagram::bind(&local) {
                Ok(sock) => {
                    sock.set_nonblocking(true)?;
                    return Ok(WireEnd { sock, local, peer: end_path(cable, theirs), fifo: Default::default(), dropped: 0 });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
                Err(e) => return Err(std::io::Error::new(e.kind(), format!("wire {}: cannot bind {}: {e}", cable.display(), local.display()))),
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!("wire {}: both ends (.a, .b) are taken by live processes", cable.display()),
        ))
    }

    /// Block until a frame arrives or `timeout` passes.
    pub fn recv_timeout(&mut self, timeout: std::time::Duration) -> std::io::Result<Option<Vec<u8>>> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            self.poll_out()?;
            if let Some(f) = self.recv()? {
                return Ok(Some(f));
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            poll_readable(self.fd(), left.min(std::time::Duration::from_millis(50)));
        }
    }
}

impl Drop for WireEnd {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.local);
    }
}

impl WireEnd {
    /// Send until the FIFO is empty or the far end's queue is full.
    /// `Ok(false)` when frames still wait.
    pub fn flush(&mut self) -> std::io::Result<bool> {
        while let Some(f) = self.fifo.front() {
            match self.sock.send_to(f, &self.peer) {
                Ok(_) => {
                    self.fifo.pop_front();
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(false),
                // No one at the other end (yet, or any more): the frame is lost on the wire.
                Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused) => {
                    self.fifo.pop_front();
                    self.dropped += 1;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}

impl EthernetPort for WireEnd {
    fn send(&mut self, frame: &[u8]) -> std::io::Result<bool> {
        if self.fifo.len() >= WIRE_TX_FIFO {
            self.dropped += 1;
            return Ok(false);
        }
        self.fifo.push_back(frame.to_vec());
        self.flush()?;
        Ok(true)
    }
    fn poll_out(&mut self) -> std::io::Result<()> {
        self.flush().map(|_| ())
    }
    fn tx_dropped(&self) -> u64 {
        self.dropped
    }
    fn recv(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        let mut buf = vec![0u8; PORT_MTU];
        match self.sock.recv(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                Ok(Some(buf))
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }
    fn fd(&self) -> i32 {
        self.sock.as_raw_fd()
    }
    fn describe(&self) -> String {
        format!("wire {} -> {}", self.local.display(), self.peer.display())
    }
}

/// A TAP device.
pub struct Tap {
    fd: OwnedFd,
    name: String,
}

#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;

impl Tap {
    /// Open (creating if needed, which takes CAP_NET_ADMIN) the TAP device `name`.
    pub fn open(name: &str) -> std::io::Result<Tap> {
        if name.len() >= libc::IFNAMSIZ || name.contains('/') {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("TAP name {name:?} is not a valid interface name")));
        }
        let path = std::ffi::CString::new("/dev/net/tun").unwrap();
        // SAFETY: open with a valid C string; the result is checked.
        let raw = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC) };
        if raw < 0 {
            let e = std::io::Error::last_os_error();
            return Err(std::io::Error::new(e.kind(), format!("cannot open /dev/net/tun ({e}): the TUN/TAP driver is needed for --net tap")));
        }
        // SAFETY: `raw` is a fresh descriptor this function owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut req = IfReq { name: [0; libc::IFNAMSIZ], flags: (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short, _pad: [0; 22] };
        req.name[..name.len()].copy_from_slice(name.as_bytes());
        // SAFETY: TUNSETIFF reads and writes a `struct ifreq`, which `IfReq`
        // lays out (name, flags, padding to its 40 bytes).
        if unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF as _, &mut req as *mut IfReq) } < 0 {
            let e = std::io::Error::last_os_error();
            return Err(std::io::Error::new(
                e.kind(),
                format!("cannot attach TAP {name} ({e}): creating a TAP device needs CAP_NET_ADMIN (root), or create it first with `ip tuntap add {name} mode tap user $USER`"),
            ));
        }
        Ok(Tap { fd, name: name.to_string() })
    }
}

impl EthernetPort for Tap {
    fn send(&mut self, frame: &[u8]) -> std::io::Result<bool> {
        // SAFETY: writes `frame.len()` bytes from a valid slice to our descriptor.
        let n = unsafe { libc::write(self.fd.as_raw_fd(), frame.as_ptr() as *const _, frame.len()) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            // A TAP whose link is down, or whose queue is full, drops the frame.
            if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EIO)) {
                return Ok(false);
            }
            return Err(e);
        }
        Ok(true)
    }
    fn recv(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        let mut buf = vec![0u8; PORT_MTU];
        // SAFETY: reads at most `buf.len()` bytes into a valid buffer.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr() as *mut _, buf.len()) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EAGAIN) {
                return Ok(None);
            }
            return Err(e);
        }
        buf.truncate(n as usize);
        Ok(Some(buf))
    }
    fn fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }
    fn describe(&self) -> String {
        format!("TAP {}", self.name)
    }
}

/// Wait until `fd` is readable or `timeout` passes.
pub fn poll_readable(fd: i32, timeout: std::time::Duration) -> bool {
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd.
    let r = unsafe { libc::poll(&mut p, 1, timeout.as_millis().min(i32::MAX as u128) as i32) };
    r > 0
}

/// Every frame through the port, to a pcap file Wireshark reads.
pub struct PcapTap {
    w: offcard_net::pcap::PcapWriter<BufWriter<File>>,
    pub frames: u64,
}

impl PcapTap {
    pub fn create(path: &Path) -> std::io::Result<PcapTap> {
        let f = File::create(path).map_err(|e| std::io::Error::new(e.kind(), format!("--pcap {}: {e}", path.display())))?;
        Ok(PcapTap { w: offcard_net::pcap::PcapWriter::new(BufWriter::new(f))?, frames: 0 })
    }
    /// Record a frame at card cycle `cycle` (125 MHz: 8 ns a cycle).
    pub fn frame(&mut self, cycle: u64, bytes: &[u8]) -> std::io::Result<()> {
        self.frames += 1;
        self.w.packet(cycle * (1_000_000_000 / offcard_regs::net::CARD_CLOCK_HZ), bytes)
    }
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.w.flush()
    }
}
