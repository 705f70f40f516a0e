//! The DMA engine's network queues end to end through the driver and the
//! card's overlay pipelines, against the Verilated card with the root
//! complex standing in for the network: TX frames leave the card
//! encapsulated (valid Geneve carrying the frame byte for byte, with the
//! tenant's VNI); Geneve packets coming in are decapsulated into host
//! buffers byte for byte, their completions carry length and tenant (from
//! the VNI table), and the write records cover every received byte (seen
//! through the dirty-page report); frames nobody can take are dropped and
//! counted without holding up the network side; malformed packets are
//! dropped and counted per reason; a frame too long for its buffer
//! completes with an error; copies keep working beside TX and RX queues.
use offcard_driver::dma::{DmaCard, DmaConfig, Descriptor, RxFrame};
use offcard_driver::{Card, CardTransport, NetCtl};
use offcard_sim::{SimNetwork, SimTransport};
use offcard_regs::dma::*;
use offcard_net::geneve::{decapsulate, encapsulate};
use offcard_net::path::Policy;
use offcard_testbench::driver_suite::{FarEnd, InProcessPort};
use offcard_testbench::encap_bench::test_tenant;
use rand::{rngs::SmallRng, Rng, SeedableRng};
use std::collections::BTreeSet;
use std::time::Duration;

const PAGE: u64 = 4096;

/// Every tenant enabled for transmit (per-flow policy) and its VNI mapped
/// to (tenant, `rx_queue`) for receive.
fn setup_overlay(dma: &mut DmaCard<SimTransport>, rx_queue: u8) {
    let mut net = NetCtl::new(&mut dma.card);
    for t in 0..16 {
        net.program_tenant(t, &test_tenant(t, Policy::PerFlow).context()).unwrap();
        net.map_vni(t, test_tenant(t, Policy::PerFlow).ctx.vni, t as u8, rx_queue).unwrap();
    }
}

/// The Geneve packet a peer sends for tenant `t`.
fn packet_for(t: u8, inner: &[u8], sport: u16) -> Vec<u8> {
    encapsulate(inner, &test_tenant(t as usize, Policy::PerFlow).ctx, sport)
}

/// Decapsulate what the card sent: (tenant by VNI, inner frame).
fn unwrap_tx(pkt: &[u8]) -> (u8, Vec<u8>) {
    let (vni, inner) = decapsulate(pkt).unwrap_or_else(|e| panic!("the card sent a packet that is not valid Geneve: {e}"));
    let t = (0..16).find(|&t| test_tenant(t, Policy::PerFlow).ctx.vni == vni).unwrap_or_else(|| panic!("unknown VNI {vni:#x}"));
    (t as u8, inner.to_vec())
}

/// The packets the card sent: a completion means the frame has entered
/// the encapsulation pipeline, so clock the card until `n` have left it.
fn take_tx(dma: &mut DmaCard<SimTransport>, n: usize) -> Vec<Vec<u8>> {
    let mut out = InProcessPort.collect(dma, n);
    // Then a little longer: nothing more may come.
    dma.transport().run_cycles(2000);
    out.extend(dma.transport().take_tx_frames());
    out
}

fn setup(seed: u64) -> DmaCard<SimTransport> {
    let mut t = SimTransport::new(seed, 32 << 20).unwrap();
    t.rc.timing.rx_gap = 0.1;
    t.rc.timing.tx_stall = 0.1;
    t.rc.timing.timeout_cycles = 200_000;
    t.rc.net.rx_gap = 0.2;
    t.rc.net.tx_stall = 0.2;
    let mut dma = DmaCard::new(Card::open(t).unwrap(), DmaConfig { ring_log2: 6, wrec_log2: 8, ..Default::default() }).unwrap();
    dma.keep_records = true;
    setup_overlay(&mut dma, 2);
    dma
}

fn random_frame(rng: &mut SmallRng, min: usize, max: usize) -> Vec<u8> {
    let len = if rng.gen_bool(0.2) { *[min, max, 64, 1500, 1518].iter().nth(rng.gen_range(0..5)).unwrap() } else { rng.gen_range(min..=max) };
    let mut f = vec![0u8; len.clamp(min, max)];
    rng.fill(f.as_mut_slice());
    f
}

/// A peer that sends Geneve packets no faster than the receive side drains
/// them: at most `window` bytes of packets the host has not yet received.
/// The card never back-pressures its port (a cable cannot), so a peer that
/// outruns the host fills the decapsulation buffer and packets are dropped
/// as "no space"; these tests are about delivery, so they pace the peer.
struct Peer {
    queue: std::collections::VecDeque<Vec<u8>>,
    in_flight: std::collections::VecDeque<usize>,
    window: usize,
}

impl Peer {
    fn new(packets: Vec<Vec<u8>>) -> Self {
        Peer { queue: packets.into(), in_flight: Default::default(), window: 12 * 1024 }
    }
    fn pump(&mut self, dma: &mut DmaCard<SimTransport>) {
        while let Some(p) = self.queue.front() {
            let used: usize = self.in_flight.iter().sum();
            if !self.in_flight.is_empty() && used + p.len() > self.window {
                break;
            }
            let p = self.queue.pop_front().unwrap();
            self.in_flight.push_back(p.len());
            dma.transport().inject_rx_frame(&p);
        }
    }
    fn delivered(&mut self, n: usize) {
        for _ in 0..n {
            self.in_flight.pop_front();
        }
    }
}

/// Poll RX queue `q` until `want` frames arrived (waking on the interrupt),
/// with `peer` sending as the host drains.
fn receive_from(dma: &mut DmaCard<SimTransport>, q: usize, want: usize, peer: &mut Peer) -> Vec<RxFrame> {
    let mut got = vec![];
    let mut waits = 0;
    peer.pump(dma);
    while got.len() < want {
        let b = dma.poll_rx_frames(q).unwrap();
        peer.delivered(b.len());
        got.extend(b);
        peer.pump(dma);
        if got.len() >= want {
            break;
        }
        dma.wait(Duration::from_micros(200)).unwrap();
        waits += 1;
        assert!(waits < 2000, "only {} of {want} frames arrived", got.len());
    }
    got
}

/// Poll RX queue `q` until `want` frames arrived (waking on the interrupt),
/// for frames already injected.
fn receive(dma: &mut DmaCard<SimTransport>, q: usize, want: usize) -> Vec<RxFrame> {
    receive_from(dma, q, want, &mut Peer::new(vec![]))
}

#[test]
fn tx_frames_leave_the_card_encapsulated_byte_for_byte_with_their_tenant() {
    let mut rng = SmallRng::seed_from_u64(31);
    let mut dma = setup(31);
    dma.set_queue_mode(1, QMODE_TX).unwrap();
    assert_eq!(dma.card.read(QUEUE_BASE + QUEUE_STRIDE + Q_MODE).unwrap(), QMODE_TX);
    let mut sent = vec![];
    let mut done = vec![];
    for i in 0..40 {
        let f = random_frame(&mut rng, 60, MAX_FRAME as usize);
        let tenant = rng.gen_range(0..16u8);
        let offset = rng.gen_range(0..64);
        let idx = dma.send_frame_at(1, tenant, &f, offset).unwrap();
        sent.push((idx, tenant, f));
        if i % 16 == 15 {
            // Keep the ring from filling: let the first ones complete.
            done.extend(dma.complete_all(Duration::from_millis(2)).unwrap());
        }
    }
    done.extend(dma.complete_all(Duration::from_millis(2)).unwrap());
    // Bad lengths: refused before anything is sent.
    dma.send_frame(1, 3, &[]).unwrap();
    dma.send_frame(1, 4, &vec![0x5a; MAX_FRAME as usize + 1]).unwrap();
    let bad = dma.complete_all(Duration::from_millis(2)).unwrap();
    assert_eq!(bad.len(), 2);
    assert!(bad.iter().all(|c| c.status == CPL_STATUS_BAD_LENGTH), "{bad:?}");
    // A source the IOMMU refuses: read error, nothing on the wire.
    dma.post_flags(1, Descriptor { src: 0x7_0000_0000, dst: 0, len: 100, cookie: 5 }, 2).unwrap();
    let bad = dma.complete_all(Duration::from_millis(2)).unwrap();
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].status, CPL_STATUS_READ_ERROR, "{bad:?}");
    let frames = take_tx(&mut dma, sent.len());
    assert_eq!(frames.len(), sent.len(), "frames on the wire");
    for (i, ((_, tenant, f), pkt)) in sent.iter().zip(&frames).enumerate() {
        let (t, got) = unwrap_tx(pkt);
        assert_eq!(got.len(), f.len(), "frame {i}: length");
        assert!(&got == f, "frame {i} ({} B): bytes differ", f.len());
        assert_eq!(t, *tenant, "frame {i}: tenant (VNI)");
    }
    // One completion per frame, in order, with its length and tenant.
    assert_eq!(done.len(), sent.len());
    for ((idx, tenant, f), c) in sent.iter().zip(&done) {
        assert_eq!((c.index, c.status, c.len as usize, c.tenant, c.queue), (*idx, CPL_STATUS_OK, f.len(), *tenant, 1), "{c:?}");
    }
    let c = dma.net_counters().unwrap();
    assert_eq!(c.tx_frames as usize, sent.len());
    assert!(dma.transport().rc.card_errors.is_empty(), "{:?}", dma.transport().rc.card_errors);
    let total: usize = sent.iter().map(|s| s.2.len()).sum();
    eprintln!("TX: {} frames, {total} bytes, byte for byte with tenants; 2 bad lengths and an unreadable source refused", sent.len());
}

#[test]
fn tx_completions_carry_length_and_tenant() {
    let mut dma = setup(32);
    dma.set_queue_mode(2, QMODE_TX).unwrap();
    let f: Vec<u8> = (0..777u32).map(|i| (i * 13) as u8).collect();
    dma.send_frame_at(2, 9, &f, 5).unwrap();
    let done = dma.complete_all(Duration::from_millis(2)).unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!((done[0].status, done[0].len, done[0].tenant, done[0].queue), (CPL_STATUS_OK, 777, 9, 2));
    let out: Vec<(u8, Vec<u8>)> = take_tx(&mut dma, 1).iter().map(|p| unwrap_tx(p)).collect();
    assert_eq!(out, vec![(9, f)]);
}

#[test]
fn rx_frames_land_byte_for_byte_and_every_byte_is_dirty_logged() {
    let mut rng = SmallRng::seed_from_u64(41);
    let mut dma = setup(41);
    let q = 2;
    dma.set_queue_mode(q, QMODE_RX).unwrap();
    dma.post_rx_buffers_at(q, 12, MAX_FRAME as usize, 3).unwrap();
    let bufs = dma.rx_buffer_ranges(q);
    let lo = bufs.iter().map(|b| b.0).min().unwrap() & !(PAGE - 1);
    let hi = bufs.iter().map(|b| b.0 + b.1).max().unwrap();
    dma.dirty_start(&[(lo, hi - lo)], PAGE).unwrap();
    let mut expect = vec![];
    let mut packets = vec![];
    for _ in 0..36 {
        let f = random_frame(&mut rng, 60, MAX_FRAME as usize);
        let tenant = rng.gen_range(0..16u8);
        packets.push(packet_for(tenant, &f, rng.gen_range(49152..65535)));
        expect.push((tenant, f));
    }
    let mut peer = Peer::new(packets);
    dma.records.clear();
    let mut got = vec![];
    let mut written_pages = BTreeSet::new();
    while got.len() < expect.len() {
        let batch = receive_from(&mut dma, q, 1, &mut peer);
        for fr in &batch {
            // The buffer is re-posted at once and may be overwritten by a
            // later frame: note its pages now.
            for p in fr.iova / PAGE..=(fr.iova + fr.bytes.len() as u64 - 1) / PAGE {
                written_pages.insert(p);
            }
        }
        got.extend(batch);
    }
    assert_eq!(got.len(), expect.len());
    for (i, ((tenant, f), fr)) in expect.iter().zip(&got).enumerate() {
        assert_eq!(fr.bytes.len(), f.len(), "frame {i}: completion length");
        assert!(&fr.bytes == f, "frame {i} ({} B): bytes differ", f.len());
        assert_eq!(fr.tenant, *tenant, "frame {i}: tenant");
    }
    // The dirty report (built from the card's write records only) names
    // every page a frame was written to...
    let bm = dma.dirty_report(lo, hi - lo).unwrap();
    let first = lo / PAGE;
    for p in &written_pages {
        let k = p - first;
        assert!(bm[(k / 64) as usize] >> (k % 64) & 1 == 1, "page {p:#x} received a frame but is not reported dirty");
    }
    // ...and the data records cover every byte of every frame.
    let data_recs: Vec<_> = dma.records.iter().filter(|r| r.source & 0x30 == SRC_KIND_DATA && r.source & 0xf == q as u8).copied().collect();
    for (i, fr) in got.iter().enumerate() {
        let (a, e) = (fr.iova, fr.iova + fr.bytes.len() as u64);
        let mut covered = a;
        // records may be coalesced across adjacent buffers; walk the union
        let mut ivs: Vec<(u64, u64)> = data_recs.iter().map(|r| (r.iova, r.iova + r.len as u64)).filter(|&(s, t)| t > a && s < e).collect();
        ivs.sort();
        for (s, t) in ivs {
            if s <= covered {
                covered = covered.max(t);
            }
        }
        assert!(covered >= e, "frame {i}: bytes {covered:#x}..{e:#x} of {a:#x}.. have no write record");
    }
    let c = dma.net_counters().unwrap();
    assert_eq!(c.rx_frames as usize, expect.len());
    assert_eq!((c.rx_no_buffer, c.rx_too_long, c.rx_bad_frame), (0, 0, 0));
    assert_eq!(dma.stats.sequence_gaps, 0);
    assert!(dma.transport().rc.card_errors.is_empty(), "{:?}", dma.transport().rc.card_errors);
    let total: usize = expect.iter().map(|e| e.1.len()).sum();
    eprintln!(
        "RX: {} frames, {total} bytes into 12 buffers, {} data records cover them, {} pages dirty",
        got.len(),
        data_recs.len(),
        written_pages.len()
    );
}

#[test]
fn rx_without_buffers_drops_and_counts_then_recovers() {
    let mut dma = setup(51);
    setup_overlay(&mut dma, 3);
    NetCtl::new(&mut dma.card).map_vni(2, test_tenant(2, Policy::PerFlow).ctx.vni, 2, 0).unwrap();
    dma.set_queue_mode(3, QMODE_RX).unwrap();
    let frames: Vec<Vec<u8>> = (0..5).map(|i| vec![i as u8; 100 + 700 * i]).collect();
    for f in &frames {
        dma.transport().inject_rx_frame(&packet_for(1, f, 50000)); // tenant 1 -> queue 3: RX mode, no buffer
        dma.transport().inject_rx_frame(&packet_for(2, f, 50000)); // tenant 2 -> queue 0: a copy queue, not RX
    }
    // The card must consume all of them without any host help.
    for _ in 0..200 {
        if dma.transport().rx_frames_pending() == 0 {
            break;
        }
        dma.transport().run_cycles(1000);
    }
    assert_eq!(dma.transport().rx_frames_pending(), 0, "the network side was blocked");
    dma.transport().run_cycles(2000); // the last frame's tail
    let c = dma.net_counters().unwrap();
    assert_eq!(c.rx_no_buffer, 10);
    assert_eq!(c.rx_frames, 0);
    // Nothing was written anywhere: no records, no completions.
    dma.sync_records().unwrap();
    assert!(dma.records.is_empty(), "dropped frames wrote: {:?}", dma.records);
    // Buffers posted: frames go through again.
    dma.post_rx_buffers(3, 4, 2048).unwrap();
    for f in &frames[..3] {
        dma.transport().inject_rx_frame(&packet_for(7, f, 50001));
    }
    let got = receive(&mut dma, 3, 3);
    for (f, g) in frames[..3].iter().zip(&got) {
        assert_eq!(&g.bytes, f);
        assert_eq!(g.tenant, 7);
    }
    let c = dma.net_counters().unwrap();
    assert_eq!((c.rx_frames, c.rx_no_buffer), (3, 10));
    assert!(dma.transport().rc.card_errors.is_empty(), "{:?}", dma.transport().rc.card_errors);
}

#[test]
fn rx_frame_too_long_or_malformed_completes_with_an_error_and_is_counted() {
    let mut dma = setup(61);
    setup_overlay(&mut dma, 1);
    dma.set_queue_mode(1, QMODE_RX).unwrap();
    dma.post_rx_buffers_at(1, 4, 256, 1).unwrap();
    let bufs = dma.rx_buffer_ranges(1);
    dma.transport().inject_rx_frame(&packet_for(5, &[0xEE; 1000], 50000)); // too long for 256
    // Malformed packets: the decapsulation pipeline drops and counts them.
    let mut bad_ck = packet_for(5, &[0xDD; 200], 50000);
    bad_ck[24] ^= 0x40; // outer IPv4 header checksum field
    dma.transport().inject_rx_frame(&bad_ck);
    let mut unknown = packet_for(5, &[0xCC; 200], 50000);
    unknown[46] ^= 0x80; // VNI: no table entry
    dma.transport().inject_rx_frame(&unknown);
    dma.transport().inject_rx_frame(&packet_for(5, &[0xCC; 200], 50000)[..40]); // truncated
    let good: Vec<u8> = (0..256u32).map(|i| (i % 100) as u8).collect(); // none of the dropped frames' bytes
    dma.transport().inject_rx_frame(&packet_for(6, &good, 50002));
    let mut got = vec![];
    for _ in 0..200 {
        got.extend(dma.poll_rx(1).unwrap());
        if !got.is_empty() {
            break;
        }
        dma.wait(Duration::from_micros(200)).unwrap();
    }
    assert_eq!(got, vec![(6, good)], "only the fitting, well-formed frame is delivered");
    assert_eq!(dma.rx_stats.errors, 1);
    assert_eq!(dma.rx_stats.too_long, 1);
    let c = dma.net_counters().unwrap();
    assert_eq!((c.rx_frames, c.rx_too_long, c.rx_bad_frame, c.rx_no_buffer), (1, 1, 0, 0));
    let d = NetCtl::new(&mut dma.card).decap_counters().unwrap();
    let get = |n: &str| d.iter().find(|(k, _)| k.ends_with(n)).unwrap_or_else(|| panic!("no counter {n}: {d:?}")).1;
    assert_eq!((get("DROP_BAD_CHECKSUM"), get("DROP_UNKNOWN_VNI"), get("DROP_TRUNCATED")), (1, 1, 1), "{d:?}");
    assert_eq!(get("CNT_FRAMES"), 2, "{d:?}");
    // The refused frames wrote nothing into any buffer (fresh buffers are 0).
    for (iova, len) in bufs {
        let mut b = vec![0u8; len as usize];
        dma.transport().rc.mem.dma_read(iova, &mut b).unwrap();
        assert!(!b.iter().any(|&x| x == 0xEE || x == 0xDD || x == 0xCC), "a dropped frame was written at {iova:#x}");
    }
    assert!(dma.transport().rc.card_errors.is_empty(), "{:?}", dma.transport().rc.card_errors);
}

#[test]
fn copies_tx_and_rx_run_concurrently() {
    let mut rng = SmallRng::seed_from_u64(71);
    let mut dma = setup(71);
    dma.set_queue_mode(1, QMODE_TX).unwrap();
    dma.set_queue_mode(2, QMODE_RX).unwrap();
    dma.post_rx_buffers(2, 16, 4096).unwrap();
    let mut src = dma.transport().alloc_dma(1 << 20).unwrap();
    let dst = dma.transport().alloc_dma(1 << 20).unwrap();
    let mut bytes = vec![0u8; src.len];
    rng.fill(&mut bytes[..]);
    src.write(0, &bytes);
    let mut copies = vec![];
    let mut tx = vec![];
    let mut rx = vec![];
    let mut packets = vec![];
    for i in 0..12u64 {
        let len = rng.gen_range(1..20000u32);
        let (so, doff) = (rng.gen_range(0..1000u64), i * 65536 + rng.gen_range(0..1000u64));
        dma.post(if i % 2 == 0 { 0 } else { 3 }, Descriptor { src: src.iova + so, dst: dst.iova + doff, len, cookie: i }).unwrap();
        copies.push((so, doff, len));
        let f = random_frame(&mut rng, 60, 4096);
        let t = rng.gen_range(0..16u8);
        dma.send_frame(1, t, &f).unwrap();
        tx.push((t, f));
        let f = random_frame(&mut rng, 60, 4096);
        let t = rng.gen_range(0..16u8);
        packets.push(packet_for(t, &f, 60000 + i as u16));
        rx.push((t, f));
    }
    let done = dma.complete_all(Duration::from_millis(5)).unwrap();
    assert_eq!(done.len(), 24);
    assert!(done.iter().all(|c| c.status == CPL_STATUS_OK), "{done:?}");
    let got = receive_from(&mut dma, 2, rx.len(), &mut Peer::new(packets));
    let got: Vec<(u8, Vec<u8>)> = got.into_iter().map(|f| (f.tenant, f.bytes)).collect();
    assert!(got == rx, "RX frames differ");
    let out: Vec<(u8, Vec<u8>)> = take_tx(&mut dma, tx.len()).iter().map(|p| unwrap_tx(p)).collect();
    assert!(out == tx, "TX frames differ");
    for &(so, doff, len) in &copies {
        assert!(
            dst.read_vec(doff as usize, len as usize) == src.read_vec(so as usize, len as usize),
            "copy of {len} B wrong"
        );
    }
    assert!(dma.transport().rc.card_errors.is_empty(), "{:?}", dma.transport().rc.card_errors);
}
