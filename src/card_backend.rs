//! The secured management API's operations, carried out on the card.
//!
//! Way masks and per-tag counters go to the card's tagged cache through the
//! driver's `CacheCtl` (BAR0 accesses on the simulated card). Operations whose
//! hardware has not landed yet (path table) fail with a clear error rather
//! than pretending.

use anyhow::{anyhow, bail, Result};
use offcard_driver::dma::{DmaCard, DmaConfig};
use offcard_driver::{CacheCtl, Card, SimTransport};
use offcard_mgmt::backend::{PrivilegedBackend, TAG_COUNTER_NAMES};
use std::sync::Mutex;

pub struct CardBackend {
    card: Mutex<DmaCard<SimTransport>>,
}

impl CardBackend {
    pub fn simulated() -> Result<Self> {
        let t = SimTransport::new(1, 16 << 20)?;
        let mut dma = DmaCard::new(Card::open(t)?, DmaConfig::default())?;
        dma.keep_records = true;
        Ok(CardBackend { card: Mutex::new(dma) })
    }
}

impl CardBackend {
    /// Runs `f` on the card's tagged cache. The protocol carries 16-bit tags
    /// and the card's are narrower: a tag the cache does not have is refused
    /// here with the card's geometry in the message (the driver checks again).
    fn with_cache<R>(&self, tag: u16, f: impl FnOnce(&mut CacheCtl<'_, SimTransport>, u8) -> Result<R>) -> Result<R> {
        let mut c = self.card.lock().map_err(|_| anyhow!("card lock poisoned"))?;
        let mut cache = CacheCtl::new(&mut c.card)?;
        let tags = cache.geometry().tags;
        let t = u8::try_from(tag)
            .ok()
            .filter(|t| u32::from(*t) < tags)
            .ok_or_else(|| anyhow!("tag {tag} out of range (the card's cache has {tags} tags, 0..={})", tags - 1))?;
        f(&mut cache, t)
    }
}

impl PrivilegedBackend for CardBackend {
    fn read_counters(&self) -> Result<Vec<(String, u64)>> {
        let mut c = self.card.lock().map_err(|_| anyhow!("card lock poisoned"))?;
        Ok(c.card.counters()?.into_iter().map(|(n, v)| (n.trim_start_matches("REG_CNT_").to_lowercase(), v as u64)).collect())
    }
    fn program_way_mask(&self, tag: u16, mask: u64) -> Result<()> {
        self.with_cache(tag, |cache, t| Ok(cache.set_way_mask(t, mask)?))
    }
    fn read_tag_counters(&self, tag: u16) -> Result<Vec<(String, u64)>> {
        self.with_cache(tag, |cache, t| {
            let k = cache.counters(t)?;
            let mask = cache.way_mask(t)?;
            let v = [k.hits, k.misses, k.fills, k.evictions, k.occupancy].map(u64::from).into_iter().chain([mask]);
            Ok(TAG_COUNTER_NAMES.iter().zip(v).map(|(n, v)| (n.to_string(), v)).collect())
        })
    }
    fn program_path_table(&self, _tenant: u16, _entries: Vec<u16>) -> Result<()> {
        bail!("this card build has no encapsulation pipeline yet (issue: encapsulation pipeline)")
    }
    /// The write records the card produced since the last call (flushed
    /// first), in the card's 16-byte format, oldest first.
    fn read_write_records(&self, max: usize) -> Result<Vec<u8>> {
        let mut c = self.card.lock().map_err(|_| anyhow!("card lock poisoned"))?;
        c.sync_records()?;
        let n = max.min(c.records.len());
        Ok(c.records.drain(..n).flat_map(|r| r.to_bytes()).collect())
    }
    fn read_host_memory(&self, addr: u64, len: u32) -> Result<Vec<u8>> {
        if len > 1 << 20 {
            bail!("read of {len} bytes exceeds the 1 MiB limit");
        }
        let c = self.card.lock().map_err(|_| anyhow!("card lock poisoned"))?;
        let mut buf = vec![0u8; len as usize];
        c.card.transport.rc.mem.read(addr, &mut buf)?;
        Ok(buf)
    }
}
