//! The tagged cache-way allocator, from the host: way masks per tag, the
//! partitioning switch, per-tag counters, and the slow path that answers a
//! miss with a fill. Registers from `offcard_regs::cache`.

use crate::card::Card;
use crate::transport::{CardTransport, Result, TransportError};
use offcard_regs::cache as c;

/// Geometry the card reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub sets: u32,
    pub ways: u32,
    pub tags: u32,
}

/// Per-tag counters (free-running 32-bit on the card).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TagCounters {
    pub hits: u32,
    pub misses: u32,
    pub fills: u32,
    pub evictions: u32,
    pub occupancy: u32,
}

/// How long the driver polls the card for a cache operation, in register reads.
const POLL_LIMIT: u32 = 100_000;

pub struct CacheCtl<'a, T: CardTransport> {
    card: &'a mut Card<T>,
    geometry: Geometry,
}

impl<'a, T: CardTransport> CacheCtl<'a, T> {
    /// Attach to the card's cache (waits for its reset clearing to end).
    pub fn new(card: &'a mut Card<T>) -> Result<Self> {
        let g = card.read(c::CACHE_GEOMETRY)?;
        let geometry = Geometry { sets: 1 << (g & 0xff), ways: g >> 8 & 0xff, tags: g >> 16 & 0xff };
        if geometry.ways == 0 || geometry.tags == 0 {
            return Err(TransportError::Other(format!("this card has no tagged cache (CACHE_GEOMETRY reads {g:#x})")));
        }
        let mut s = CacheCtl { card, geometry };
        s.wait_idle()?;
        Ok(s)
    }

    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    fn check_tag(&self, tag: u8) -> Result<()> {
        if tag as u32 >= self.geometry.tags {
            return Err(TransportError::Other(format!("tag {tag} out of range (the cache has {} tags)", self.geometry.tags)));
        }
        Ok(())
    }

    fn wait_idle(&mut self) -> Result<()> {
        for _ in 0..POLL_LIMIT {
            if self.card.read(c::CACHE_STATUS)? & c::STATUS_BUSY == 0 {
                return Ok(());
            }
        }
        Err(TransportError::Other("tagged cache stays busy".into()))
    }

    /// Give `tag` the ways in `mask`. The card reassigns safely (stops
    /// requests, flushes the changed ways, then applies the mask); this
    /// waits until it has.
    pub fn set_way_mask(&mut self, tag: u8, mask: u64) -> Result<()> {
        self.check_tag(tag)?;
        if mask >> self.geometry.ways != 0 {
            return Err(TransportError::Other(format!("mask {mask:#x} names ways beyond the {} the cache has", self.geometry.ways)));
        }
        self.wait_idle()?;
        self.card.write(c::CACHE_MASK_BASE + 4 * tag as u32, mask as u32)?;
        self.wait_idle()?;
        if self.card.read(c::CACHE_STATUS)? & c::STATUS_MASK_DROPPED != 0 {
            self.card.write(c::CACHE_STATUS, 0)?;
            return Err(TransportError::Other(format!("the card dropped the mask write for tag {tag} (busy)")));
        }
        Ok(())
    }

    pub fn way_mask(&mut self, tag: u8) -> Result<u64> {
        self.check_tag(tag)?;
        Ok(self.card.read(c::CACHE_MASK_BASE + 4 * tag as u32)? as u64)
    }

    /// Partitioning on (isolation) or off (one shared cache, the baseline).
    pub fn set_partitioned(&mut self, on: bool) -> Result<()> {
        self.card.write(c::CACHE_CTRL, if on { c::CTRL_PARTITION } else { 0 })
    }

    pub fn counters(&mut self, tag: u8) -> Result<TagCounters> {
        self.check_tag(tag)?;
        self.card.write(c::CACHE_CNT_SEL, tag as u32)?;
        Ok(TagCounters {
            hits: self.card.read(c::CACHE_CNT_HITS)?,
            misses: self.card.read(c::CACHE_CNT_MISSES)?,
            fills: self.card.read(c::CACHE_CNT_FILLS)?,
            evictions: self.card.read(c::CACHE_CNT_EVICTIONS)?,
            occupancy: self.card.read(c::CACHE_CNT_OCCUPANCY)?,
        })
    }

    pub fn misses_dropped(&mut self) -> Result<u32> {
        self.card.read(c::CACHE_CNT_MISS_DROPPED)
    }

    fn op(&mut self, op: u32, tag: u8, key: u32, value: u32) -> Result<(bool, u32)> {
        self.check_tag(tag)?;
        self.card.write(c::CACHE_OP_KEY, key)?;
        self.card.write(c::CACHE_OP_VALUE, value)?;
        self.card.write(c::CACHE_OP, op | (tag as u32) << 8)?;
        for _ in 0..POLL_LIMIT {
            let r = self.card.read(c::CACHE_OP_RESULT)?;
            if r & c::RESULT_DONE != 0 {
                let v = if r & c::RESULT_HIT != 0 { self.card.read(c::CACHE_OP_RESULT_VALUE)? } else { 0 };
                return Ok((r & c::RESULT_HIT != 0, v));
            }
        }
        Err(TransportError::Other("cache operation did not complete".into()))
    }

    /// Look `key` up for `tag` (a miss is also queued for the slow path).
    pub fn lookup(&mut self, tag: u8, key: u32) -> Result<Option<u32>> {
        let (hit, v) = self.op(c::OP_LOOKUP, tag, key, 0)?;
        Ok(hit.then_some(v))
    }

    /// The slow path's answer to a miss: install `key` -> `value` for `tag`.
    pub fn fill(&mut self, tag: u8, key: u32, value: u32) -> Result<()> {
        self.op(c::OP_FILL, tag, key, value).map(|_| ())
    }
}
