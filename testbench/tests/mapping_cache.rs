//! The mapping cache end to end on the Verilated card: a tenant's frame to
//! an inner destination the cache does not know leaves for the tenant's
//! default tunnel endpoint, and the miss reaches the host as a 16-byte
//! record on the miss queue (a DMA write, covered by write records); the
//! driver's slow path fills the mapping and later frames leave for the
//! mapped endpoint. Another tenant sending to the same inner destination
//! never gets the first tenant's mapping.

use offcard_driver::dma::{DmaCard, DmaConfig};
use offcard_driver::{CacheCtl, Card, MissRecord, NetCtl};
use offcard_sim::{SimNetwork, SimTransport};
use offcard_regs::{cache, dma::*};
use offcard_net::geneve::decapsulate;
use offcard_net::path::Policy;
use offcard_testbench::encap_bench::test_tenant;
use std::time::Duration;

/// An IPv4/UDP frame to `dst`.
fn frame_to(dst: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0u8; 100];
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14] = 0x45;
    f[16..18].copy_from_slice(&86u16.to_be_bytes());
    f[23] = 17;
    f[26..30].copy_from_slice(&[10, 9, 9, 9]);
    f[30..34].copy_from_slice(&dst);
    f
}

fn outer_dst(pkt: &[u8]) -> [u8; 4] {
    decapsulate(pkt).expect("valid Geneve");
    pkt[30..34].try_into().unwrap()
}

fn send(dma: &mut DmaCard<SimTransport>, tenant: u8, f: &[u8]) -> Vec<u8> {
    dma.send_frame(1, tenant, f).unwrap();
    dma.complete_all(Duration::from_millis(2)).unwrap();
    let mut out = vec![];
    for _ in 0..100 {
        out.extend(dma.transport().take_tx_frames());
        if !out.is_empty() {
            break;
        }
        dma.transport().run_cycles(100);
    }
    assert_eq!(out.len(), 1);
    out.pop().unwrap()
}

fn misses(dma: &mut DmaCard<SimTransport>, want: usize) -> Vec<MissRecord> {
    let mut got = vec![];
    for _ in 0..500 {
        for (tenant, b) in dma.poll_rx(cache::MISS_QUEUE as usize).unwrap() {
            let m = MissRecord::parse(&b).unwrap_or_else(|| panic!("not a miss record: {b:?}"));
            assert_eq!(m.tag, tenant, "the completion's tenant is the miss's tag");
            got.push(m);
        }
        if got.len() >= want {
            break;
        }
        dma.wait(Duration::from_micros(100)).unwrap();
    }
    got
}

#[test]
fn misses_reach_the_host_by_dma_and_fills_redirect_later_frames() {
    let t = SimTransport::new(9, 16 << 20).unwrap();
    let mut dma = DmaCard::new(Card::open(t).unwrap(), DmaConfig::default()).unwrap();
    dma.keep_records = true;
    for tenant in [4usize, 5] {
        let mut cfg = test_tenant(tenant, Policy::PerFlow);
        cfg.use_mapping = true;
        NetCtl::new(&mut dma.card).program_tenant(tenant, &cfg.context()).unwrap();
    }
    let default4 = test_tenant(4, Policy::PerFlow).ctx.outer_dst_ip;
    let default5 = test_tenant(5, Policy::PerFlow).ctx.outer_dst_ip;
    dma.set_queue_mode(1, QMODE_TX).unwrap();
    dma.set_queue_mode(cache::MISS_QUEUE as usize, QMODE_RX).unwrap();
    dma.post_rx_buffers(cache::MISS_QUEUE as usize, 8, 64).unwrap();
    let bufs = dma.rx_buffer_ranges(cache::MISS_QUEUE as usize);
    let lo = bufs.iter().map(|b| b.0).min().unwrap() & !4095;
    let hi = bufs.iter().map(|b| b.0 + b.1).max().unwrap();
    dma.dirty_start(&[(lo, hi - lo)], 4096).unwrap();

    let inner_dst = [10, 4, 0, 9];
    let key = u32::from_be_bytes(inner_dst);
    // Miss: the default endpoint, and a miss record for the host.
    let p = send(&mut dma, 4, &frame_to(inner_dst));
    assert_eq!(outer_dst(&p), default4);
    let m = misses(&mut dma, 1);
    assert_eq!(m, vec![MissRecord { tag: 4, key }]);
    // The record was a DMA write the hypervisor's dirty log saw.
    let bm = dma.dirty_report(lo, hi - lo).unwrap();
    assert!(bm.iter().any(|w| *w != 0), "the miss record's write produced no write record");
    // Slow path: fill, and the next frame leaves for the mapped endpoint.
    let vtep = [172, 16, 0, 44];
    CacheCtl::new(&mut dma.card).unwrap().fill(4, key, u32::from_be_bytes(vtep)).unwrap();
    let p = send(&mut dma, 4, &frame_to(inner_dst));
    assert_eq!(outer_dst(&p), vtep, "a filled mapping must be used");
    dma.transport().run_cycles(3000);
    assert!(dma.poll_rx(cache::MISS_QUEUE as usize).unwrap().is_empty(), "a hit must not queue a miss");
    // Tenant 5, same inner destination: its own miss, its own default, never tenant 4's mapping.
    let p = send(&mut dma, 5, &frame_to(inner_dst));
    assert_eq!(outer_dst(&p), default5);
    let m = misses(&mut dma, 1);
    assert_eq!(m, vec![MissRecord { tag: 5, key }]);
    let c: Vec<(&str, u32)> = NetCtl::new(&mut dma.card).encap_counters().unwrap();
    let get = |n: &str| c.iter().find(|(k, _)| *k == n).unwrap().1;
    assert_eq!((get("CNT_MAP_HIT"), get("CNT_MAP_MISS")), (1, 2), "{c:?}");
    let cc = CacheCtl::new(&mut dma.card).unwrap().counters(4).unwrap();
    assert_eq!((cc.hits, cc.misses, cc.occupancy), (1, 1, 1));
}
