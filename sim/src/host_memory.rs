//! Host memory as a shared mapping, with the IOMMU view the card sees.
//!
//! The backing is a memfd (or a file), mapped with `memmap2`, so the driver,
//! the hypervisor and the card model all see the same bytes. The card reaches
//! memory only through IOVAs the driver mapped; anything else is an error the
//! card sees (an Unsupported Request completion for a read, a dropped write
//! for a write), never a silent access.

use memmap2::MmapMut;
use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};

#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum MemError {
    #[error("IOVA range {iova:#x}+{len:#x} is not mapped for DMA")]
    Unmapped { iova: u64, len: u64 },
    #[error("range {offset:#x}+{len:#x} is outside host memory ({size:#x} bytes)")]
    OutOfRange { offset: u64, len: u64, size: u64 },
    #[error("IOVA range {iova:#x}+{len:#x} overlaps an existing mapping")]
    Overlap { iova: u64, len: u64 },
}

#[derive(Clone, Copy, Debug)]
struct Mapping {
    len: u64,
    offset: u64,
    writable: bool,
}

pub struct HostMemory {
    file: File,
    map: MmapMut,
    iommu: BTreeMap<u64, Mapping>,
}

impl HostMemory {
    /// `size` bytes of zeroed, shareable memory (a memfd).
    pub fn new(size: usize) -> std::io::Result<Self> {
        let name = std::ffi::CString::new("offcard-host-memory").unwrap();
        let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
        let file = if fd < 0 { tempfile_fallback()? } else { unsafe { File::from_raw_fd(fd) } };
        file.set_len(size as u64)?;
        let map = unsafe { MmapMut::map_mut(&file)? };
        Ok(HostMemory { file, map, iommu: BTreeMap::new() })
    }

    /// The backing file (another process or component can map it).
    pub fn fd(&self) -> i32 {
        self.file.as_raw_fd()
    }

    pub fn size(&self) -> u64 {
        self.map.len() as u64
    }

    fn check(&self, offset: u64, len: u64) -> Result<std::ops::Range<usize>, MemError> {
        let end = offset.checked_add(len).filter(|&e| e <= self.size());
        match end {
            Some(e) => Ok(offset as usize..e as usize),
            None => Err(MemError::OutOfRange { offset, len, size: self.size() }),
        }
    }

    /// Host (CPU) view: physical offset into the memory.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), MemError> {
        let r = self.check(offset, buf.len() as u64)?;
        buf.copy_from_slice(&self.map[r]);
        Ok(())
    }

    pub fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), MemError> {
        let r = self.check(offset, data.len() as u64)?;
        self.map[r].copy_from_slice(data);
        Ok(())
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.map
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.map
    }

    /// Map `len` bytes at host offset `offset` to the card at `iova`.
    pub fn dma_map(&mut self, iova: u64, offset: u64, len: u64, writable: bool) -> Result<(), MemError> {
        self.check(offset, len)?;
        let end = iova.checked_add(len).ok_or(MemError::Overlap { iova, len })?;
        if let Some((&a, m)) = self.iommu.range(..end).next_back() {
            if a + m.len > iova {
                return Err(MemError::Overlap { iova, len });
            }
        }
        self.iommu.insert(iova, Mapping { len, offset, writable });
        Ok(())
    }

    pub fn dma_unmap(&mut self, iova: u64) -> bool {
        self.iommu.remove(&iova).is_some()
    }

    /// Translate a card access of `len` bytes at `iova` (it must lie in one mapping).
    pub fn translate(&self, iova: u64, len: u64, write: bool) -> Result<u64, MemError> {
        let err = MemError::Unmapped { iova, len };
        let (&a, m) = self.iommu.range(..=iova).next_back().ok_or(err.clone())?;
        if iova + len > a + m.len || (write && !m.writable) {
            return Err(err);
        }
        Ok(m.offset + (iova - a))
    }

    /// Card view: write through the IOMMU.
    pub fn dma_write(&mut self, iova: u64, data: &[u8]) -> Result<(), MemError> {
        let off = self.translate(iova, data.len() as u64, true)?;
        self.write(off, data)
    }

    /// Card view: read through the IOMMU.
    pub fn dma_read(&self, iova: u64, buf: &mut [u8]) -> Result<(), MemError> {
        let off = self.translate(iova, buf.len() as u64, false)?;
        self.read(off, buf)
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
}
