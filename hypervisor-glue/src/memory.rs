//! Guest memory backed by a shared file mapping (memfd by default).
//!
//! The guest RAM is one `MAP_SHARED` mapping of a memfd (or of a file the
//! caller names). Another component — the card's simulator, or a VFIO
//! container mapping IOVA = guest physical address — can map the same bytes
//! through [`GuestMem::fd`] / [`GuestMem::fd_path`] and see guest writes
//! immediately, and the guest sees its writes.
//!
//! The mapping is a vm-memory `GuestMemoryMmap` (one `GuestRegionMmap` over the
//! file), so the virtio devices (virtio-queue) and the kernel loader (linux-loader)
//! take [`GuestMem::guest_memory`] directly; `GuestMem` only adds what vm-memory does
//! not keep: the backing file, its path and the size.
//!
//! Layering: this module is the bottom of the crate. It imports only `hash`; the
//! dirty log, the VM and snapshots import it (for [`PAGE_SIZE`] and [`GuestMem`]),
//! never the other way round.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use vm_memory::{FileOffset, GuestAddress, GuestMemory, GuestMemoryMmap, GuestRegionMmap};

/// Start of the 32-bit MMIO hole; RAM above it is not supported (guests up to 3 GiB).
pub const MMIO_GAP_START: u64 = 0xC000_0000;
/// Guest page size used by KVM's dirty log on x86_64.
pub const PAGE_SIZE: u64 = 4096;

/// Guest RAM: one region at guest physical address 0, backed by a shared file.
pub struct GuestMem {
    mem: GuestMemoryMmap,
    file: File,
    size: u64,
    path: Option<PathBuf>,
}

impl GuestMem {
    /// Allocate `size` bytes of guest RAM in a new memfd (sealed against shrinking).
    pub fn new_memfd(size: u64) -> Result<Self> {
        check_size(size)?;
        let name = std::ffi::CString::new("offcard-guest-ram").unwrap();
        // SAFETY: valid C string; flags are constants.
        let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error()).context("memfd_create for guest RAM");
        }
        // SAFETY: we own the fresh fd.
        let file = unsafe { File::from_raw_fd(fd) };
        file.set_len(size).context("sizing guest RAM memfd")?;
        // SAFETY: fcntl on our own fd.
        unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, libc::F_SEAL_SHRINK | libc::F_SEAL_GROW) };
        Self::from_file(file, size, None)
    }

    /// Back guest RAM with a named file (created/truncated to `size`), e.g. on /dev/shm
    /// or hugetlbfs, so another process can open it by path.
    pub fn new_file(path: &Path, size: u64) -> Result<Self> {
        check_size(size)?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .with_context(|| format!("creating guest RAM file {}", path.display()))?;
        file.set_len(size).context("sizing guest RAM file")?;
        Self::from_file(file, size, Some(path.to_path_buf()))
    }

    fn from_file(file: File, size: u64, path: Option<PathBuf>) -> Result<Self> {
        let dup = file.try_clone().context("dup guest RAM fd")?;
        let region = GuestRegionMmap::from_range(GuestAddress(0), size as usize, Some(FileOffset::new(dup, 0)))
            .map_err(|e| anyhow::anyhow!("mapping guest RAM ({size} bytes): {e:?}"))?;
        let mem = GuestMemoryMmap::from_regions(vec![region]).map_err(|e| anyhow::anyhow!("guest memory: {e:?}"))?;
        let g = GuestMem { mem, file, size, path };
        match std::env::var("OFFCARD_VMM_PREFAULT").as_deref() {
            // SAFETY: madvise on the whole mapping we just created; it only changes how
            // the kernel backs the pages, never their contents.
            Ok("populate") => unsafe {
                let r = libc::madvise(g.host_addr() as *mut libc::c_void, size as usize, 23 /* MADV_POPULATE_WRITE */);
                eprintln!("populate: {r}");
            },
            // SAFETY: as above.
            Ok("huge") => unsafe {
                let r = libc::madvise(g.host_addr() as *mut libc::c_void, size as usize, libc::MADV_HUGEPAGE);
                eprintln!("hugepage: {r}");
            },
            _ => {}
        }
        Ok(g)
    }

    /// The rust-vmm `GuestMemory` view of guest RAM.
    pub fn guest_memory(&self) -> &GuestMemoryMmap {
        &self.mem
    }
    /// Size of guest RAM in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }
    /// The file descriptor backing guest RAM (offset 0 = guest physical address 0).
    pub fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
    /// The backing file itself.
    pub fn file(&self) -> &File {
        &self.file
    }
    /// A path another process can open to map the same bytes: the file's own path,
    /// or `/proc/<pid>/fd/<fd>` for a memfd.
    pub fn fd_path(&self) -> PathBuf {
        match &self.path {
            Some(p) => p.clone(),
            None => PathBuf::from(format!("/proc/{}/fd/{}", std::process::id(), self.fd())),
        }
    }
    /// Host virtual address of guest physical address 0.
    pub fn host_addr(&self) -> *mut u8 {
        self.mem.iter().next().unwrap().as_ptr()
    }
    /// The whole of guest RAM as a byte slice (racy if vCPUs run; use while paused).
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the mapping lives as long as self and is `size` bytes long.
        unsafe { std::slice::from_raw_parts(self.host_addr(), self.size as usize) }
    }
    /// Mutable view of guest RAM (only while no vCPU runs).
    #[allow(clippy::mut_from_ref)]
    pub(crate) fn as_mut_slice(&self) -> &mut [u8] {
        // SAFETY: as above; callers only use it while vCPUs are stopped.
        unsafe { std::slice::from_raw_parts_mut(self.host_addr(), self.size as usize) }
    }
    /// A fast 64-bit hash of all guest RAM (for snapshot checks).
    pub fn hash(&self) -> u64 {
        crate::hash::hash64(self.as_slice())
    }
}

fn check_size(size: u64) -> Result<()> {
    if size < 16 << 20 {
        bail!("guest memory too small: {} MiB (need at least 16 MiB)", size >> 20);
    }
    if size > MMIO_GAP_START {
        bail!("guest memory {} MiB is above the 3072 MiB supported (no RAM above the MMIO gap)", size >> 20);
    }
    if size % PAGE_SIZE != 0 {
        bail!("guest memory size must be a multiple of 4 KiB");
    }
    Ok(())
}
