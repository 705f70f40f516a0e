//! Dirty-page bookkeeping in the same shape as VFIO device DMA dirty tracking:
//! `start(ranges, page_size)`, `report_and_clear(range, page_size) -> bitmap`, `stop()`.
//! Bit `i` of a returned bitmap (u64 words, LSB first) covers page
//! `iova + i * page_size`, so a bitmap from the card's DMA logging and one from KVM
//! can be OR-ed together.
//!
//! Layering: this module only keeps bitmaps and checks ranges; it imports `memory`
//! (for [`PAGE_SIZE`]) and nothing else of the crate. The KVM side — the memslot's
//! `KVM_MEM_LOG_DIRTY_PAGES` flag and `KVM_GET_DIRTY_LOG` — lives in `vm`, which owns a
//! [`DirtyLog`] and implements [`DirtyTracker`] for `Vm` on top of it; `snapshot`
//! reads the pages dirtied since the last snapshot from it. Neither is imported here.

use std::sync::{Arc, Mutex};

use anyhow::{bail, Result};

use crate::memory::PAGE_SIZE;

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

/// Guest memory the VMM's own devices wrote, as (guest physical address, length).
/// KVM's dirty log sees only vCPU writes, so the devices append here and the VM
/// merges the list into every consumer of the log (as it will the card's write records).
pub type DeviceWriteLog = Arc<Mutex<Vec<(u64, u64)>>>;

/// The [`DirtyTracker`] session of a user (page size, tracked ranges, pages seen).
struct UserLog {
    page_size: u64,
    ranges: Vec<DirtyRange>,
    acc: Vec<u64>,
}

/// Pages dirtied, kept separately per consumer at 4 KiB granularity: the user's
/// [`DirtyTracker`] session and the pages written since the last snapshot (for a
/// diff snapshot). KVM's bitmap and the devices' writes are OR-ed into both.
pub(crate) struct DirtyLog {
    /// Number of 4 KiB pages of guest RAM.
    pages: u64,
    user: Option<UserLog>,
    snap: Option<Vec<u64>>,
}

fn bit(bm: &[u64], i: u64) -> bool {
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

/// A range must be non-empty, aligned to `page_size` and inside guest RAM.
pub(crate) fn check_range(r: &DirtyRange, page_size: u64, mem_size: u64) -> Result<()> {
    if r.length == 0 || !r.iova.is_multiple_of(page_size) || !r.length.is_multiple_of(page_size) {
        bail!("dirty range {:#x}+{:#x} is empty or not aligned to the page size {page_size:#x}", r.iova, r.length);
    }
    if r.iova.checked_add(r.length).is_none_or(|e| e > mem_size) {
        bail!("dirty range {:#x}+{:#x} is outside guest RAM ({:#x} bytes)", r.iova, r.length, mem_size);
    }
    Ok(())
}

/// What `dirty_start` accepts: a power-of-two page size of at least 4 KiB and one or
/// more valid ranges.
pub(crate) fn check_start(ranges: &[DirtyRange], page_size: u64, mem_size: u64) -> Result<()> {
    if !page_size.is_power_of_two() || page_size < PAGE_SIZE {
        bail!("page size {page_size:#x} must be a power of two >= 4 KiB");
    }
    if ranges.is_empty() {
        bail!("no ranges to track");
    }
    ranges.iter().try_for_each(|r| check_range(r, page_size, mem_size))
}

impl DirtyLog {
    /// An empty log for `mem_size` bytes of guest RAM, with no consumer yet.
    pub(crate) fn new(mem_size: u64) -> Self {
        DirtyLog { pages: mem_size / PAGE_SIZE, user: None, snap: None }
    }

    fn words(&self) -> usize {
        self.pages.div_ceil(64) as usize
    }

    /// True when neither a user session nor snapshot tracking needs the log.
    pub(crate) fn is_idle(&self) -> bool {
        self.user.is_none() && self.snap.is_none()
    }

    fn consumers(&mut self) -> impl Iterator<Item = &mut Vec<u64>> {
        self.user.as_mut().map(|u| &mut u.acc).into_iter().chain(self.snap.as_mut())
    }

    /// OR a bitmap of 4 KiB pages (KVM's dirty log of the memslot) into every consumer.
    pub(crate) fn merge_bitmap(&mut self, bm: &[u64]) {
        for acc in self.consumers() {
            for (a, b) in acc.iter_mut().zip(bm) {
                *a |= *b;
            }
        }
    }

    /// Mark the pages of `len` bytes at `gpa` dirty for every consumer.
    pub(crate) fn mark(&mut self, gpa: u64, len: u64) {
        if len == 0 {
            return;
        }
        let (first, last) = (gpa / PAGE_SIZE, (gpa + len - 1) / PAGE_SIZE);
        for acc in self.consumers() {
            for p in first..=last {
                if let Some(w) = acc.get_mut((p / 64) as usize) {
                    *w |= 1 << (p % 64);
                }
            }
        }
    }

    pub(crate) fn user_active(&self) -> bool {
        self.user.is_some()
    }

    /// Begin a user session (ranges already checked with [`check_start`]).
    pub(crate) fn start_user(&mut self, ranges: &[DirtyRange], page_size: u64) {
        self.user = Some(UserLog { page_size, ranges: ranges.to_vec(), acc: vec![0; self.words()] });
    }

    pub(crate) fn stop_user(&mut self) {
        self.user = None;
    }

    /// Check a `report_and_clear` request against the running user session.
    pub(crate) fn check_report(&self, range: &DirtyRange, page_size: u64, mem_size: u64) -> Result<()> {
        let Some(u) = &self.user else { bail!("dirty logging not started") };
        if page_size != u.page_size {
            bail!("page size {page_size:#x} differs from the one logging started with ({:#x})", u.page_size);
        }
        check_range(range, u.page_size, mem_size)?;
        if !u.ranges.iter().any(|r| range.iova >= r.iova && range.iova + range.length <= r.iova + r.length) {
            bail!("range {:#x}+{:#x} is not inside a tracked range", range.iova, range.length);
        }
        Ok(())
    }

    /// The user session's dirty pages in `range` (checked with [`Self::check_report`]),
    /// folded to its page size, and cleared.
    pub(crate) fn report_and_clear_user(&mut self, range: &DirtyRange) -> Vec<u64> {
        let Some(u) = self.user.as_mut() else { return Vec::new() };
        let ps = u.page_size;
        let per = ps / PAGE_SIZE;
        let npages = range.length / ps;
        let mut out = vec![0u64; npages.div_ceil(64) as usize];
        for i in 0..npages {
            let first = (range.iova + i * ps) / PAGE_SIZE;
            let mut d = false;
            for p in first..first + per {
                let w = &mut u.acc[(p / 64) as usize];
                if *w & (1 << (p % 64)) != 0 {
                    d = true;
                    *w &= !(1 << (p % 64));
                }
            }
            if d {
                out[(i / 64) as usize] |= 1 << (i % 64);
            }
        }
        out
    }

    /// Start (or restart) collecting the pages written from now on, for a diff snapshot.
    pub(crate) fn restart_snapshot_tracking(&mut self) {
        self.snap = Some(vec![0; self.words()]);
    }

    /// Page numbers written since snapshot tracking (re)started, if it runs.
    pub(crate) fn snapshot_dirty_pages(&self) -> Option<Vec<u64>> {
        let bm = self.snap.as_ref()?;
        Some((0..self.pages).filter(|&p| bit(bm, p)).collect())
    }
}
