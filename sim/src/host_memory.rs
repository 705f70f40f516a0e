//! Host memory as shared mappings, with the IOMMU view the card sees.
//!
//! The simulated host's own memory is a memfd mapped with `memmap2`, so the
//! driver, the hypervisor and the card model all see the same bytes. A card
//! process (vfio-user) also maps memory its client hands over with DMA_MAP:
//! the client's file descriptor, mapped here, so the card reads and writes
//! the client's memory directly. The card reaches memory only through IOVAs
//! that were mapped; anything else is an error the card sees (an Unsupported
//! Request completion for a read, a dropped and counted write), never a
//! silent access.

use memmap2::{MmapOptions, MmapRaw};
use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::Arc;

#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum MemError {
    #[error("IOVA range {iova:#x}+{len:#x} is not mapped for DMA")]
    Unmapped { iova: u64, len: u64 },
    #[error("range {offset:#x}+{len:#x} is outside host memory ({size:#x} bytes)")]
    OutOfRange { offset: u64, len: u64, size: u64 },
    #[error("IOVA range {iova:#x}+{len:#x} overlaps an existing mapping")]
    Overlap { iova: u64, len: u64 },
    #[error("cannot map the memory handed over for IOVA {iova:#x}+{len:#x}: {reason}")]
    BadBacking { iova: u64, len: u64, reason: String },
}

/// One piece of memory the card can be given: a file mapped shared. The
/// mapping lives as long as any IOMMU entry or DMA buffer refers to it.
pub struct Backing {
    _file: File,
    map: MmapRaw,
}

impl Backing {
    pub fn len(&self) -> u64 {
        self.map.len() as u64
    }
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }
    pub fn as_ptr(&self) -> *mut u8 {
        self.map.as_mut_ptr()
    }
    fn range(&self, offset: u64, len: u64) -> Result<std::ops::Range<usize>, MemError> {
        match offset.checked_add(len).filter(|&e| e <= self.len()) {
            Some(e) => Ok(offset as usize..e as usize),
            None => Err(MemError::OutOfRange { offset, len, size: self.len() }),
        }
    }
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), MemError> {
        let r = self.range(offset, buf.len() as u64)?;
        // SAFETY: `r` lies inside the mapping (checked), which lives as long
        // as `self`. Another process may write the same bytes concurrently
        // (the memory is shared on purpose, like a host's RAM under DMA);
        // a byte copy of it is what a device sees.
        unsafe { std::ptr::copy_nonoverlapping(self.as_ptr().add(r.start), buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), MemError> {
        let r = self.range(offset, data.len() as u64)?;
        // SAFETY: as in `read`: inside the live shared mapping.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.as_ptr().add(r.start), data.len()) };
        Ok(())
    }
}

#[derive(Clone)]
struct Mapping {
    len: u64,
    offset: u64,
    writable: bool,
    backing: Arc<Backing>,
}

pub struct HostMemory {
    local: Arc<Backing>,
    iommu: BTreeMap<u64, Mapping>,
}

impl HostMemory {
    /// `size` bytes of zeroed, shareable memory (a memfd): the simulated
    /// host's own RAM.
    pub fn new(size: usize) -> std::io::Result<Self> {
        let name = std::ffi::CString::new("offcard-host-memory").unwrap();
        // SAFETY: memfd_create with a valid C string; the result is checked.
        let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
        // SAFETY: `fd` is a fresh descriptor nothing else owns.
        let file = if fd < 0 { tempfile_fallback()? } else { unsafe { File::from_raw_fd(fd) } };
        file.set_len(size as u64)?;
        let map = MmapOptions::new().len(size).map_raw(&file)?;
        Ok(HostMemory { local: Arc::new(Backing { _file: file, map }), iommu: BTreeMap::new() })
    }

    /// The backing file of the host's own memory (another process can map it).
    pub fn fd(&self) -> i32 {
        self.local._file.as_raw_fd()
    }

    /// The host's own memory, shared: DMA buffers carved from it hold this
    /// so the memory outlives them.
    pub fn local_backing(&self) -> Arc<Backing> {
        self.local.clone()
    }

    pub fn size(&self) -> u64 {
        self.local.len()
    }

    /// Host (CPU) view: physical offset into the host's own memory.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), MemError> {
        self.local.read(offset, buf)
    }

    pub fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), MemError> {
        self.local.write(offset, data)
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the whole mapping, alive as long as `self`; in-process
        // simulation only touches it from the thread that clocks the card.
        unsafe { std::slice::from_raw_parts(self.local.as_ptr(), self.local.len() as usize) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, with `&mut self` for exclusivity here.
        unsafe { std::slice::from_raw_parts_mut(self.local.as_ptr(), self.local.len() as usize) }
    }

    fn insert(&mut self, iova: u64, m: Mapping) -> Result<(), MemError> {
        let len = m.len;
        let end = iova.checked_add(len).filter(|_| len > 0).ok_or(MemError::Overlap { iova, len })?;
        if let Some((&a, prev)) = self.iommu.range(..end).next_back() {
            if a + prev.len > iova {
                return Err(MemError::Overlap { iova, len });
            }
        }
        self.iommu.insert(iova, m);
        Ok(())
    }

    /// Map `len` bytes of the host's own memory at `offset` to the card at `iova`.
    pub fn dma_map(&mut self, iova: u64, offset: u64, len: u64, writable: bool) -> Result<(), MemError> {
        self.local.range(offset, len)?;
        self.insert(iova, Mapping { len, offset, writable, backing: self.local.clone() })
    }

    /// Map `len` bytes of `file` at `file_offset` to the card at `iova` (a
    /// vfio-user DMA_MAP with the client's memory file descriptor).
    pub fn dma_map_file(&mut self, iova: u64, file: File, file_offset: u64, len: u64, writable: bool) -> Result<(), MemError> {
        let bad = |reason: String| MemError::BadBacking { iova, len, reason };
        if len == 0 || iova.checked_add(len).is_none() {
            return Err(bad("empty or wrapping range".into()));
        }
        let flen = file.metadata().map_err(|e| bad(e.to_string()))?.len();
        if !file.metadata().map(|m| m.is_file()).unwrap_or(false) || file_offset.checked_add(len).is_none_or(|e| e > flen) {
            return Err(bad(format!("the descriptor is not a memory file of at least {:#x} bytes ({flen:#x})", file_offset + len)));
        }
        let map = MmapOptions::new().offset(file_offset).len(len as usize).map_raw(&file).map_err(|e| bad(e.to_string()))?;
        let backing = Arc::new(Backing { _file: file, map });
        self.insert(iova, Mapping { len, offset: 0, writable, backing })
    }

    /// Remove the mapping that starts at `iova`.
    pub fn dma_unmap(&mut self, iova: u64) -> bool {
        self.iommu.remove(&iova).is_some()
    }

    /// Remove every mapping inside `iova..iova + len`; a mapping only partly
    /// inside is an error (VFIO unmaps whole mappings). Returns how many.
    pub fn dma_unmap_range(&mut self, iova: u64, len: u64) -> Result<usize, MemError> {
        let end = iova.saturating_add(len);
        let hit: Vec<u64> = self.iommu.iter().filter(|(&a, m)| a < end && a + m.len > iova).map(|(&a, _)| a).collect();
        if hit.iter().any(|&a| a < iova || a + self.iommu[&a].len > end) {
            return Err(MemError::Overlap { iova, len });
        }
        for a in &hit {
            self.iommu.remove(a);
        }
        Ok(hit.len())
    }

    /// Remove every mapping (a client went away, or the device was reset).
    pub fn dma_unmap_all(&mut self) {
        self.iommu.clear();
    }

    fn translate_mapping(&self, iova: u64, len: u64, write: bool) -> Result<(&Mapping, u64), MemError> {
        let err = MemError::Unmapped { iova, len };
        let (&a, m) = self.iommu.range(..=iova).next_back().ok_or(err.clone())?;
        if iova.checked_add(len).is_none_or(|e| e > a + m.len) || (write && !m.writable) {
            return Err(err);
        }
        Ok((m, m.offset + (iova - a)))
    }

    /// Translate a card access of `len` bytes at `iova` into an offset of the
    /// host's own memory (it must lie in one mapping of it).
    pub fn translate(&self, iova: u64, len: u64, write: bool) -> Result<u64, MemError> {
        let (m, off) = self.translate_mapping(iova, len, write)?;
        if !Arc::ptr_eq(&m.backing, &self.local) {
            return Err(MemError::Unmapped { iova, len });
        }
        Ok(off)
    }

    /// Card view: write through the IOMMU.
    pub fn dma_write(&mut self, iova: u64, data: &[u8]) -> Result<(), MemError> {
        let (m, off) = self.translate_mapping(iova, data.len() as u64, true)?;
        m.backing.write(off, data)
    }

    /// Card view: read through the IOMMU.
    pub fn dma_read(&self, iova: u64, buf: &mut [u8]) -> Result<(), MemError> {
        let (m, off) = self.translate_mapping(iova, buf.len() as u64, false)?;
        m.backing.read(off, buf)
    }
}

fn tempfile_fallback() -> std::io::Result<File> {
    let path = std::env::temp_dir().join(format!("offcard-mem-{}-{}", std::process::id(), rand::random::<u64>()));
    let f = std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn iommu_rejects_unmapped_and_partial() {
        let mut m = HostMemory::new(1 << 16).unwrap();
        m.dma_map(0x10_0000, 0x1000, 0x1000, true).unwrap();
        assert!(m.dma_write(0x10_0000, &[1, 2, 3]).is_ok());
        assert_eq!(m.as_slice()[0x1000..0x1003], [1, 2, 3]);
        assert!(matches!(m.dma_write(0x10_0ffe, &[0; 4]), Err(MemError::Unmapped { .. })));
        assert!(matches!(m.dma_write(0x20_0000, &[0]), Err(MemError::Unmapped { .. })));
        assert!(matches!(m.dma_map(0x10_0800, 0, 0x1000, true), Err(MemError::Overlap { .. })));
    }

    #[test]
    fn client_memory_is_mapped_from_its_descriptor() {
        let client = HostMemory::new(1 << 16).unwrap();
        // SAFETY: dup of a live descriptor; the File owns the duplicate.
        let fd = unsafe { File::from_raw_fd(libc::dup(client.fd())) };
        let mut card = HostMemory::new(4096).unwrap();
        card.dma_map_file(0x8000_0000, fd, 0x2000, 0x3000, true).unwrap();
        card.dma_write(0x8000_0010, &[9, 8, 7]).unwrap();
        assert_eq!(client.as_slice()[0x2010..0x2013], [9, 8, 7], "the card writes the client's memory");
        assert!(card.dma_write(0x8000_3000, &[1]).is_err(), "one past the mapping");
        // A descriptor that is not memory, or too short, is refused.
        let dev_null = File::open("/dev/null").unwrap();
        assert!(matches!(card.dma_map_file(0x9000_0000, dev_null, 0, 4096, true), Err(MemError::BadBacking { .. })));
        // SAFETY: as above.
        let fd = unsafe { File::from_raw_fd(libc::dup(client.fd())) };
        assert!(matches!(card.dma_map_file(0x9000_0000, fd, 0xf000, 0x2000, true), Err(MemError::BadBacking { .. })));
        assert!(card.dma_unmap_range(0x8000_1000, 0x1000).is_err(), "partial unmap refused");
        assert_eq!(card.dma_unmap_range(0x8000_0000, 0x3000).unwrap(), 1);
        assert!(card.dma_read(0x8000_0010, &mut [0; 1]).is_err());
    }
}
