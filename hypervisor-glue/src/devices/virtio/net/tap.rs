//! The TAP backend of the virtio-net device.

use std::io;

use super::NetBackend;

/// A TAP device as backend: the guest's frames reach the host's network stack (for
/// example inside a network namespace) and back. Non-blocking.
pub struct TapBackend {
    file: std::fs::File,
    name: String,
}

/// `struct ifreq` with the name and flags members (the kernel reads 40 bytes).
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
        let mut req = IfReq { name: [0; 16], flags: (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short, _pad: [0; 22] };
        req.name[..name.len()].copy_from_slice(name.as_bytes());
        // SAFETY: TUNSETIFF reads and writes a 40-byte ifreq; `req` is one and outlives the call.
        if unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF as _, &mut req) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: F_GETFL / F_SETFL on the fd we own; no memory is passed.
        unsafe {
            let fl = libc::fcntl(file.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(file.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
        // Bring the interface up (SIOCSIFFLAGS on any socket of this namespace).
        // SAFETY: socket() has no preconditions; the ioctls read and write the 40-byte
        // ifreq `r`, which outlives them; we close only the socket we opened.
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
