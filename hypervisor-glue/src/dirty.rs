//! Dirty-page logging of guest RAM through KVM (KVM_MEM_LOG_DIRTY_PAGES +
//! KVM_GET_DIRTY_LOG), in the same shape as VFIO device DMA dirty tracking:
//! `start(ranges, page_size)`, `report_and_clear(range, page_size) -> bitmap`, `stop()`.
//! Bit `i` of the returned bitmap (u64 words, LSB first) covers page
//! `iova + i * page_size`, so a bitmap from the card's DMA logging and one from
//! here can be OR-ed together.

use anyhow::{bail, Result};

use crate::memory::PAGE_SIZE;
use crate::vm::Vm;

/// A guest-physical range (IOVA = GPA for the card).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirtyRange {
    pub iova: u64,
    pub length: u64,
}

/// The dirty-tracking interface shared with the card's driver (VFIO DMA logging).
pub trait DirtyTracker {
    fn dirty_start(&mut self, ranges: &[DirtyRange], page_size: u64) -> Result<()>;
    fn dirty_report_and_clear(&mut self, range: DirtyRange, page_size: u64) -> Result<Vec<u64>>;
    fn dirty_stop(&mut self) -> Result<()>;
}

pub(crate) struct UserLog {
    page_size: u64,
    ranges: Vec<DirtyRange>,
    acc: Vec<u64>,
}

#[derive(Default)]
pub(crate) struct DirtyState {
    pub(crate) user: Option<UserLog>,
    /// Pages dirtied since the last snapshot (4 KiB granularity), if tracking for diffs.
    pub(crate) snap: Option<Vec<u64>>,
}

pub(crate) fn bit(bm: &[u64], i: u64) -> bool {
    bm.get((i / 64) as usize).is_some_and(|w| w & (1 << (i % 64)) != 0)
}

/// Expand a bitmap from `report_and_clear` into page addresses.
pub fn bitmap_to_pages(bitmap: &[u64], iova: u64, page_size: u64) -> Vec<u64> {
    let mut v = Vec::new();
    for (wi, &w) in bitmap.iter().enumerate() {
        let mut w = w;
        while w != 0 {
            let b = w.trailing_zeros() as u64;
            v.push(iova + (wi as u64 * 64 + b) * page_size);
            w &= w - 1;
        }
    }
    v
}

impl Vm {
    fn words(&self) -> usize {
        (self.mem.size() / PAGE_SIZE).div_ceil(64) as usize
    }

    pub(crate) fn ensure_logging(&mut self) -> Result<()> {
        if !self.dirty_logging_enabled() {
            self.set_slot_flags(kvm_bindings::KVM_MEM_LOG_DIRTY_PAGES)?;
        }
        if self.dirty.is_none() {
            self.dirty = Some(DirtyState::default());
        }
        Ok(())
    }

    /// Pull KVM's dirty bitmap (which clears it) and OR it into every active consumer.
    pub(crate) fn sync_dirty(&mut self) -> Result<()> {
        let writes = std::mem::take(&mut *self.vmm_writes.lock().unwrap());
        if !self.dirty_logging_enabled() {
            return Ok(());
        }
        for (gpa, len) in writes {
            self.mark_dirty(gpa, len);
        }
        let bm = self
            .vm
            .get_dirty_log(0, self.mem.size() as usize)
            .map_err(|e| anyhow::anyhow!("KVM_GET_DIRTY_LOG: {e}"))?;
        if let Some(d) = self.dirty.as_mut() {
            if let Some(u) = d.user.as_mut() {
                for (a, b) in u.acc.iter_mut().zip(&bm) {
                    *a |= *b;
                }
            }
            if let Some(s) = d.snap.as_mut() {
                for (a, b) in s.iter_mut().zip(&bm) {
                    *a |= *b;
                }
            }
        }
        Ok(())
    }

    /// Mark guest pages dirty that the VMM itself wrote (device emulation, DMA by a
    /// simulated card): KVM only sees writes made by the vCPUs.
    pub fn mark_dirty(&mut self, gpa: u64, len: u64) {
        if len == 0 {
            return;
        }
        let (first, last) = (gpa / PAGE_SIZE, (gpa + len - 1) / PAGE_SIZE);
        if let Some(d) = self.dirty.as_mut() {
            for acc in d.user.as_mut().map(|u| &mut u.acc).into_iter().chain(d.snap.as_mut()) {
                for p in first..=last {
                    if let Some(w) = acc.get_mut((p / 64) as usize) {
                        *w |= 1 << (p % 64);
                    }
                }
            }
        }
    }

    fn check_range(&self, r: &DirtyRange, page_size: u64) -> Result<()> {
        if r.length == 0 || r.iova % page_size != 0 || r.length % page_size != 0 {
            bail!("dirty range {:#x}+{:#x} is empty or not aligned to the page size {page_size:#x}", r.iova, r.length);
        }
        if r.iova.checked_add(r.length).is_none_or(|e| e > self.mem.size()) {
            bail!("dirty range {:#x}+{:#x} is outside guest RAM ({:#x} bytes)", r.iova, r.length, self.mem.size());
        }
        Ok(())
    }
}

impl DirtyTracker for Vm {
    fn dirty_start(&mut self, ranges: &[DirtyRange], page_size: u64) -> Result<()> {
        if !page_size.is_power_of_two() || page_size < PAGE_SIZE {
            bail!("page size {page_size:#x} must be a power of two >= 4 KiB");
        }
        if ranges.is_empty() {
            bail!("no ranges to track");
        }
        for r in ranges {
            self.check_range(r, page_size)?;
        }
        if self.dirty.as_ref().is_some_and(|d| d.user.is_some()) {
            bail!("dirty logging already started");
        }
        self.ensure_logging()?;
        self.sync_dirty()?;
        let words = self.words();
        self.dirty.as_mut().unwrap().user = Some(UserLog { page_size, ranges: ranges.to_vec(), acc: vec![0; words] });
        Ok(())
    }

    fn dirty_report_and_clear(&mut self, range: DirtyRange, page_size: u64) -> Result<Vec<u64>> {
        let (ps, ranges) = match self.dirty.as_ref().and_then(|d| d.user.as_ref()) {
            Some(u) => (u.page_size, u.ranges.clone()),
            None => bail!("dirty logging not started"),
        };
        if page_size != ps {
            bail!("page size {page_size:#x} differs from the one logging started with ({ps:#x})");
        }
        self.check_range(&range, ps)?;
        if !ranges.iter().any(|r| range.iova >= r.iova && range.iova + range.length <= r.iova + r.length) {
            bail!("range {:#x}+{:#x} is not inside a tracked range", range.iova, range.length);
        }
        self.sync_dirty()?;
        let acc = &mut self.dirty.as_mut().unwrap().user.as_mut().unwrap().acc;
        let per = ps / PAGE_SIZE;
        let npages = range.length / ps;
        let mut out = vec![0u64; npages.div_ceil(64) as usize];
        for i in 0..npages {
            let first = (range.iova + i * ps) / PAGE_SIZE;
            let mut d = false;
            for p in first..first + per {
                let w = &mut acc[(p / 64) as usize];
                if *w & (1 << (p % 64)) != 0 {
                    d = true;
                    *w &= !(1 << (p % 64));
                }
            }
            if d {
                out[(i / 64) as usize] |= 1 << (i % 64);
            }
        }
        Ok(out)
    }

    fn dirty_stop(&mut self) -> Result<()> {
        if let Some(d) = self.dirty.as_mut() {
            d.user = None;
            if d.snap.is_none() {
                self.dirty = None;
                self.set_slot_flags(0)?;
            }
        }
        Ok(())
    }
}
