//! The secured management API's operations, carried out on the card.
//!
//! Way masks and per-tag counters go to the card's tagged cache through the
//! driver's `CacheCtl`, path tables to the encapsulation pipeline through
//! `NetCtl` (BAR0 accesses on the simulated card).

use anyhow::{anyhow, bail, Result};
use offcard_driver::dma::{DmaCard, DmaConfig};
use offcard_driver::{CacheCtl, Card};
use offcard_sim::{SimTransport};
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
    /// The tenant's path table in the encapsulation pipeline (outer UDP
    /// source ports); fewer entries than the card's table holds repeat.
    fn program_path_table(&self, tenant: u16, entries: Vec<u16>) -> Result<()> {
        let tenants = offcard_regs::encap::TENANTS;
        let t = usize::from(tenant);
        if t >= tenants as usize {
            bail!("tenant {tenant} out of range (the card has {tenants} tenants, 0..={})", tenants - 1);
        }
        let mut c = self.card.lock().map_err(|_| anyhow!("card lock poisoned"))?;
        Ok(offcard_driver::NetCtl::new(&mut c.card).set_path_table(t, &entries)?)
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

#[cfg(test)]
mod tests {
    //! The card backend in process, where cache traffic can be made with the
    //! driver (the management API has no lookup op): counters read through a
    //! scoped management request change with the traffic of that tag only.
    use super::*;
    use offcard_mgmt::client::{open_response, prepare, RequestOptions};
    use offcard_mgmt::{AuditLog, AuthorizedKeys, Host, HostConfig, Identity, Op, OpOutput, Outcome, Params, TagScope};
    use std::sync::Arc;

    fn get(v: &[(String, u64)], name: &str) -> u64 {
        v.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no {name} in {v:?}")).1
    }

    /// A path table programmed through the management backend is what the
    /// card's spray policy then uses: every outer UDP source port of a
    /// tenant's frames is one of the entries.
    #[test]
    fn path_table_reaches_the_encapsulation_pipeline() {
        use offcard_net::path::Policy;
        use offcard_sim::SimNetwork;
        let backend = CardBackend::simulated().unwrap();
        {
            let mut c = backend.card.lock().unwrap();
            let tt = offcard_testbench::encap_bench::test_tenant(3, Policy::Spray);
            offcard_driver::NetCtl::new(&mut c.card).program_tenant(3, &tt.context()).unwrap();
            c.set_queue_mode(1, offcard_regs::dma::QMODE_TX).unwrap();
        }
        let ports = vec![50001u16, 50002, 50003];
        backend.program_path_table(3, ports.clone()).unwrap();
        assert!(backend.program_path_table(16, ports.clone()).unwrap_err().to_string().contains("out of range"));
        assert!(backend.program_path_table(3, vec![]).is_err(), "an empty table is refused");
        let mut c = backend.card.lock().unwrap();
        for k in 0..12u8 {
            c.send_frame(1, 3, &[k; 100]).unwrap();
        }
        c.complete_all(std::time::Duration::from_millis(2)).unwrap();
        c.transport().run_cycles(3000);
        let sent = c.transport().take_tx_frames();
        assert_eq!(sent.len(), 12);
        let used: std::collections::BTreeSet<u16> = sent.iter().map(|p| u16::from_be_bytes([p[34], p[35]])).collect();
        assert_eq!(used, ports.into_iter().collect(), "spray uses exactly the programmed ports");
    }

    #[test]
    fn tag_counters_follow_cache_traffic_through_a_scoped_request() {
        let backend = Arc::new(CardBackend::simulated().unwrap());
        let tenant = Identity::generate();
        let mut auth = AuthorizedKeys::default();
        auth.allow_tags(tenant.ed25519.verifying_key().to_bytes(), &[Op::ProgramWayMask, Op::ReadTagCounters], TagScope::tags(&[1]), "tenant 1");
        let dynb: Arc<dyn PrivilegedBackend> = backend.clone();
        let host = Host::new(Identity::generate(), auth, dynb, HostConfig::default(), AuditLog::memory());
        let ask = |p: Params| {
            let r = prepare(&tenant, &p, &RequestOptions::default()).unwrap();
            let (resp, outcome) = host.process(&r.bytes);
            (outcome, open_response(&tenant, &host.identity().ed25519.verifying_key(), &r, &resp))
        };
        let read = |tag| match ask(Params::ReadTagCounters { tag }) {
            (Outcome::Ok, Ok(OpOutput::Counters(v))) => v,
            other => panic!("{other:?}"),
        };

        assert_eq!(ask(Params::ProgramWayMask { tag: 1, mask: 0x03 }).0, Outcome::Ok);
        let before = read(1);
        assert_eq!((get(&before, "hits"), get(&before, "fills"), get(&before, "occupancy"), get(&before, "way_mask")), (0, 0, 0, 0x03));

        // Traffic of tag 1 (a miss, the slow path's fill, then two hits) and of tag 2.
        {
            let mut c = backend.card.lock().unwrap();
            let mut cache = CacheCtl::new(&mut c.card).unwrap();
            cache.set_partitioned(true).unwrap();
            assert_eq!(cache.lookup(1, 0x0a00_0001).unwrap(), None);
            cache.fill(1, 0x0a00_0001, 0xc0a8_0001).unwrap();
            assert_eq!(cache.lookup(1, 0x0a00_0001).unwrap(), Some(0xc0a8_0001));
            assert_eq!(cache.lookup(1, 0x0a00_0001).unwrap(), Some(0xc0a8_0001));
            assert_eq!(cache.lookup(2, 0x0a00_0002).unwrap(), None);
        }
        let after = read(1);
        assert_eq!(get(&after, "misses") - get(&before, "misses"), 1, "{after:?}");
        assert_eq!(get(&after, "hits") - get(&before, "hits"), 2, "{after:?}");
        assert_eq!(get(&after, "fills") - get(&before, "fills"), 1, "{after:?}");
        assert_eq!(get(&after, "occupancy"), 1, "{after:?}");

        // Tag 2's counters exist on the card but this key may not read them.
        let (o, c) = ask(Params::ReadTagCounters { tag: 2 });
        assert!(matches!(o, Outcome::Rejected(ref r) if r.code() == "tag-not-authorized"), "{o:?}");
        assert_eq!(c.unwrap_err().rejection_code(), Some("tag-not-authorized"));
        // Read directly, they show only tag 2's miss: the backend keeps tags apart.
        let t2 = backend.read_tag_counters(2).unwrap();
        assert_eq!((get(&t2, "misses"), get(&t2, "hits"), get(&t2, "occupancy")), (1, 0, 0), "{t2:?}");

        // The driver's range checks come through as clear errors.
        let e = backend.program_way_mask(1, 0x100).unwrap_err().to_string();
        assert!(e.contains("names ways beyond the 8"), "{e}");
        let e = backend.read_tag_counters(256).unwrap_err().to_string();
        assert!(e.contains("tag 256 out of range") && e.contains("16 tags"), "{e}");
        assert_eq!(get(&backend.read_tag_counters(1).unwrap(), "way_mask"), 0x03);
    }
}
