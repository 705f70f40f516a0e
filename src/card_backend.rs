//! The secured management API's operations, carried out on the card.
//!
//! Operations whose hardware has not landed yet (tagged cache, path table)
//! fail with a clear error rather than pretending.

use anyhow::{anyhow, bail, Result};
use offcard_driver::dma::{DmaCard, DmaConfig};
use offcard_driver::{Card, SimTransport};
use offcard_mgmt::backend::PrivilegedBackend;
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

impl PrivilegedBackend for CardBackend {
    fn read_counters(&self) -> Result<Vec<(String, u64)>> {
        let mut c = self.card.lock().map_err(|_| anyhow!("card lock poisoned"))?;
        Ok(c.card.counters()?.into_iter().map(|(n, v)| (n.trim_start_matches("REG_CNT_").to_lowercase(), v as u64)).collect())
    }
    fn program_way_mask(&self, _tag: u16, _mask: u64) -> Result<()> {
        bail!("this card build has no tagged cache yet (issue: tagged cache-way allocator)")
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
