//! The privileged operations themselves, behind a trait the card glue
//! implements. The host calls it only after every check has passed.

use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// What the management host can do on the card and host. Implementations
/// must be cheap to call concurrently (`&self`) and must validate arguments
/// themselves (e.g. an unmapped address is an error, never a partial read).
pub trait PrivilegedBackend: Send + Sync {
    /// Card-wide counters as `(name, value)` pairs. Per-tag cache counters
    /// do not belong here: they are readable only per tag, through
    /// [`PrivilegedBackend::read_tag_counters`], by keys scoped to that tag.
    fn read_counters(&self) -> Result<Vec<(String, u64)>>;
    /// Sets the cache-way mask owned by `tag`. A tag or way the cache does not
    /// have is an error.
    fn program_way_mask(&self, tag: u16, mask: u64) -> Result<()>;
    /// The cache counters of one tag, as `(name, value)` pairs named
    /// [`TAG_COUNTER_NAMES`] in that order (the five counters, then the tag's
    /// current way mask, so a caller can see what its mask writes did). A tag
    /// the cache does not have is an error.
    fn read_tag_counters(&self, tag: u16) -> Result<Vec<(String, u64)>>;
    /// Replaces the path table (outer UDP source ports / path ids) of `tenant`.
    fn program_path_table(&self, tenant: u16, entries: Vec<u16>) -> Result<()>;
    /// Takes up to `max` write records (16 bytes each, little-endian) from the ring.
    fn read_write_records(&self, max: usize) -> Result<Vec<u8>>;
    /// Reads `len` bytes of host memory at `addr` (stand-in for guest memory).
    fn read_host_memory(&self, addr: u64, len: u32) -> Result<Vec<u8>>;
}

/// Names of the values `read_tag_counters` returns, in its order: the card's
/// per-tag counters (hits, misses, fills, evictions of the tag's lines, lines
/// held now), then the tag's way mask as the card holds it.
pub const TAG_COUNTER_NAMES: [&str; 6] = [
    "hits",
    "misses",
    "fills",
    "evictions",
    "occupancy",
    "way_mask",
];

/// One recorded call on a [`MemoryBackend`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    ReadCounters,
    ProgramWayMask { tag: u16, mask: u64 },
    ProgramPathTable { tenant: u16, entries: Vec<u16> },
    ReadWriteRecords { max: usize },
    ReadHostMemory { addr: u64, len: u32 },
    ReadTagCounters { tag: u16 },
}

#[derive(Default)]
struct MemState {
    calls: Vec<Call>,
    counters: BTreeMap<String, u64>,
    way_masks: BTreeMap<u16, u64>,
    /// Per-tag counters, `TAG_COUNTER_NAMES` order (the way_mask slot unused).
    tag_counters: BTreeMap<u16, [u64; 6]>,
    path_tables: BTreeMap<u16, Vec<u16>>,
    records: Vec<[u8; 16]>,
}

/// A plain in-memory backend: keeps way masks and path tables in maps, serves
/// a fixed host-memory window and a queue of write records, and records every
/// call (so tests can prove that a rejected request had no side effect).
pub struct MemoryBackend {
    state: Mutex<MemState>,
    mem_base: u64,
    mem: Vec<u8>,
}

impl Default for MemoryBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryBackend {
    /// Base address of the simulated host-memory window.
    pub const MEM_BASE: u64 = 0x1000_0000;
    /// Size of the simulated host-memory window.
    pub const MEM_SIZE: usize = 1 << 20;
    /// Cache geometry mirrored from the card (`offcard_hdl::regmap::cache`):
    /// tags and ways beyond these are refused as the card's driver refuses them.
    pub const TAGS: u16 = 16;
    pub const WAYS: u32 = 8;
    /// A tag's way mask after reset, as on the card (every way).
    pub const RESET_WAY_MASK: u64 = 0xff;

    pub fn new() -> Self {
        let mem = (0..Self::MEM_SIZE)
            .map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[3])
            .collect();
        let mut st = MemState::default();
        st.counters.insert("cache.hits".into(), 0);
        st.counters.insert("cache.misses".into(), 0);
        st.counters.insert("tx.frames".into(), 0);
        st.counters.insert("rx.frames".into(), 0);
        MemoryBackend {
            state: Mutex::new(st),
            mem_base: Self::MEM_BASE,
            mem,
        }
    }

    /// Every call made so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    pub fn way_mask(&self, tag: u16) -> Option<u64> {
        self.state.lock().unwrap().way_masks.get(&tag).copied()
    }

    pub fn path_table(&self, tenant: u16) -> Option<Vec<u16>> {
        self.state.lock().unwrap().path_tables.get(&tenant).cloned()
    }

    /// Sets one per-tag counter (`name` from [`TAG_COUNTER_NAMES`], not `way_mask`).
    pub fn set_tag_counter(&self, tag: u16, name: &str, v: u64) {
        let i = TAG_COUNTER_NAMES[..5]
            .iter()
            .position(|n| *n == name)
            .unwrap_or_else(|| panic!("no per-tag counter {name:?}"));
        self.state
            .lock()
            .unwrap()
            .tag_counters
            .entry(tag)
            .or_default()[i] = v;
    }

    fn check_tag(tag: u16) -> Result<()> {
        if tag >= Self::TAGS {
            bail!(
                "tag {tag} out of range (the cache has {} tags, 0..={})",
                Self::TAGS,
                Self::TAGS - 1
            );
        }
        Ok(())
    }

    pub fn set_counter(&self, name: &str, v: u64) {
        self.state
            .lock()
            .unwrap()
            .counters
            .insert(name.to_string(), v);
    }

    /// Queues a write record (IOVA, length, source queue, sequence; little-endian).
    pub fn push_record(&self, iova: u64, len: u32, source: u16, seq: u16) {
        let mut r = [0u8; 16];
        r[..8].copy_from_slice(&iova.to_le_bytes());
        r[8..12].copy_from_slice(&len.to_le_bytes());
        r[12..14].copy_from_slice(&source.to_le_bytes());
        r[14..].copy_from_slice(&seq.to_le_bytes());
        self.state.lock().unwrap().records.push(r);
    }

    /// The byte the simulated memory holds at `addr` (for tests).
    pub fn mem_byte(&self, addr: u64) -> Option<u8> {
        addr.checked_sub(self.mem_base)
            .and_then(|o| self.mem.get(o as usize).copied())
    }
}

impl PrivilegedBackend for MemoryBackend {
    fn read_counters(&self) -> Result<Vec<(String, u64)>> {
        let mut st = self.state.lock().unwrap();
        st.calls.push(Call::ReadCounters);
        Ok(st.counters.iter().map(|(k, v)| (k.clone(), *v)).collect())
    }

    fn program_way_mask(&self, tag: u16, mask: u64) -> Result<()> {
        let mut st = self.state.lock().unwrap();
        st.calls.push(Call::ProgramWayMask { tag, mask });
        Self::check_tag(tag)?;
        if mask >> Self::WAYS != 0 {
            bail!(
                "mask {mask:#x} names ways beyond the {} the cache has",
                Self::WAYS
            );
        }
        if mask == 0 {
            bail!("way mask for tag {tag} must own at least one way");
        }
        st.way_masks.insert(tag, mask);
        Ok(())
    }

    fn read_tag_counters(&self, tag: u16) -> Result<Vec<(String, u64)>> {
        let mut st = self.state.lock().unwrap();
        st.calls.push(Call::ReadTagCounters { tag });
        Self::check_tag(tag)?;
        let mut v = st.tag_counters.get(&tag).copied().unwrap_or_default();
        v[5] = st
            .way_masks
            .get(&tag)
            .copied()
            .unwrap_or(Self::RESET_WAY_MASK);
        Ok(TAG_COUNTER_NAMES
            .iter()
            .zip(v)
            .map(|(n, v)| (n.to_string(), v))
            .collect())
    }

    fn program_path_table(&self, tenant: u16, entries: Vec<u16>) -> Result<()> {
        let mut st = self.state.lock().unwrap();
        st.calls.push(Call::ProgramPathTable {
            tenant,
            entries: entries.clone(),
        });
        if entries.is_empty() {
            bail!("path table for tenant {tenant} must not be empty");
        }
        st.path_tables.insert(tenant, entries);
        Ok(())
    }

    fn read_write_records(&self, max: usize) -> Result<Vec<u8>> {
        let mut st = self.state.lock().unwrap();
        st.calls.push(Call::ReadWriteRecords { max });
        let n = max.min(st.records.len());
        Ok(st.records.drain(..n).flatten().collect())
    }

    fn read_host_memory(&self, addr: u64, len: u32) -> Result<Vec<u8>> {
        self.state
            .lock()
            .unwrap()
            .calls
            .push(Call::ReadHostMemory { addr, len });
        let off = addr.checked_sub(self.mem_base);
        match off {
            Some(o)
                if o.checked_add(len as u64)
                    .is_some_and(|e| e <= self.mem.len() as u64) =>
            {
                Ok(self.mem[o as usize..o as usize + len as usize].to_vec())
            }
            _ => bail!("host memory range {addr:#x}+{len:#x} is not mapped"),
        }
    }
}
