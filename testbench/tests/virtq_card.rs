//! The card's virtqueue engine end to end (issue 13, transmit): a virtio-net
//! driver's transmitqs laid out in host memory as a guest's are (split
//! rings, virtio 1.x 2.7), programmed through the driver's
//! `offcard_driver::virtq` control path, against the Verilated card with
//! the root complex standing in for memory and network. Checked:
//!
//! - every chain the driver makes available leaves the card as one Geneve
//!   packet carrying the frame byte for byte (the 12-byte
//!   `virtio_net_hdr_v1` skipped wherever it lies: alone, with the frame's
//!   start, split across buffers), with the pair's tenant, in ring order;
//! - the used ring afterwards is what rust-vmm's device side would write
//!   (`{id: head, len: 0}` per chain in order, `used.idx`), the card's
//!   `last_avail_idx` and used index agree, the counters count the frames;
//! - the queue's interrupt arrives (MSI, `VQ_IRQ_STATUS` bit q), and none
//!   while the driver sets `VIRTQ_AVAIL_F_NO_INTERRUPT` (counted instead);
//! - the card's writes into guest memory (the used ring) come with write
//!   records of the virtqueue kind covering every byte written;
//! - a malformed ring (`avail.idx` more than the queue size ahead) puts only
//!   that queue into its error state, counted, with nothing sent or written
//!   for it, while another pair's queue goes on;
//! - receive: Geneve packets for the pair's tenant land in the receiveq's
//!   buffers as the 12-byte `virtio_net_hdr_v1` (`num_buffers` 1) and the
//!   inner frame, byte for byte, nothing past them; used elements `{head,
//!   12 + len}` in order; write records of the virtqueue kind cover every
//!   byte written; with no buffer posted, or one too small, the frame is
//!   dropped and counted and written nowhere, and a later frame still lands.
use offcard_driver::dma::{DmaCard, DmaConfig};
use offcard_driver::virtq;
use offcard_driver::{Card, CardTransport, DmaBuffer, NetCtl};
use offcard_net::geneve::{decapsulate, encapsulate};
use offcard_net::path::Policy;
use offcard_net::tx::{MAX_FRAME, MIN_FRAME};
use offcard_regs::dma::SRC_KIND_VIRTQ;
use offcard_regs::virtq as vq;
use offcard_sim::{SimNetwork, SimTransport};
use offcard_testbench::encap_bench::test_tenant;
use offcard_testbench::virtio_guest::{chain_parts, TxQueue, QUEUE_SPAN, USED_OFF};
use rand::{rngs::SmallRng, Rng, SeedableRng};

const SIZE_LOG2: u32 = 7;
const SIZE: u16 = 1 << SIZE_LOG2;

fn random_layout(rng: &mut SmallRng, frame: &[u8]) -> Vec<Vec<u8>> {
    let layout = rng.gen_range(0..4);
    chain_parts(rng, frame, layout)
}

fn random_frame(rng: &mut SmallRng) -> Vec<u8> {
    let len = if rng.gen_bool(0.2) { [MIN_FRAME, MAX_FRAME, 1514][rng.gen_range(0..3)] } else { rng.gen_range(MIN_FRAME..=1514) };
    let mut f = vec![0u8; len];
    rng.fill(f.as_mut_slice());
    f
}

fn setup() -> (DmaCard<SimTransport>, DmaBuffer) {
    let mut t = SimTransport::new(7, 32 << 20).unwrap();
    t.rc.timing.rx_gap = 0.1;
    t.rc.timing.tx_stall = 0.1;
    t.rc.net.tx_stall = 0.2;
    let mut dma = DmaCard::new(Card::open(t).unwrap(), DmaConfig { ring_log2: 4, wrec_log2: 8, ..Default::default() }).unwrap();
    dma.keep_records = true;
    let mut net = NetCtl::new(&mut dma.card);
    for t in 0..16 {
        net.program_tenant(t, &test_tenant(t, Policy::PerFlow).context()).unwrap();
    }
    let mem = dma.transport().alloc_dma(4 * QUEUE_SPAN).unwrap();
    (dma, mem)
}

/// (tenant by VNI, inner frame) of a packet the card sent.
fn unwrap_tx(pkt: &[u8]) -> (u8, Vec<u8>) {
    let (vni, inner) = decapsulate(pkt).unwrap_or_else(|e| panic!("the card sent a packet that is not valid Geneve: {e}"));
    let t = (0..16).find(|&t| test_tenant(t, Policy::PerFlow).ctx.vni == vni).unwrap_or_else(|| panic!("unknown VNI {vni:#x}"));
    (t as u8, inner.to_vec())
}

fn collect(dma: &mut DmaCard<SimTransport>, n: usize) -> Vec<Vec<u8>> {
    let mut out = dma.transport().take_tx_frames();
    for _ in 0..2000 {
        if out.len() >= n {
            break;
        }
        dma.transport().run_cycles(200);
        out.extend(dma.transport().take_tx_frames());
    }
    // Then a little longer: nothing more may come.
    dma.transport().run_cycles(3000);
    out.extend(dma.transport().take_tx_frames());
    out
}

/// Byte ranges the virtqueue-kind write records of queue q cover.
fn covered(dma: &DmaCard<SimTransport>, q: u8) -> Vec<(u64, u64)> {
    dma.records.iter().filter(|r| r.source == SRC_KIND_VIRTQ | q).map(|r| (r.iova, r.iova + r.len as u64)).collect()
}

fn is_covered(ranges: &[(u64, u64)], a: u64, b: u64) -> bool {
    (a..b).all(|x| ranges.iter().any(|&(s, e)| s <= x && x < e))
}

#[test]
fn transmitq_chains_leave_encapsulated_and_come_back_used_with_records() {
    let mut rng = SmallRng::seed_from_u64(13);
    let (mut dma, mut mem) = setup();
    // Pair 0's transmitq (queue 1), tenant 5.
    let mut txq = TxQueue::new(0, SIZE_LOG2);
    virtq::setup_queue(dma.transport(), 1, &txq.setup(&mem, 5)).unwrap();
    let mut sent_total: Vec<Vec<u8>> = vec![];
    let mut heads = vec![];
    for round in 0..4 {
        // (At most 4 descriptors a chain: a round fits the table.)
        let n = [1usize, 7, 20, 30][round];
        let frames: Vec<Vec<u8>> = (0..n).map(|_| random_frame(&mut rng)).collect();
        for f in &frames {
            let parts = random_layout(&mut rng, f);
            heads.push(txq.add_chain(&mut mem, &parts));
        }
        txq.publish(&mut mem);
        let irqs_before = virtq::counters(dma.transport()).unwrap().irqs;
        virtq::notify(dma.transport(), 1).unwrap();
        let got = collect(&mut dma, n);
        assert_eq!(got.len(), n, "round {round}: {} of {n} frames left the card", got.len());
        for (k, (p, f)) in got.iter().zip(&frames).enumerate() {
            let (t, inner) = unwrap_tx(p);
            assert_eq!(t, 5, "round {round} frame {k}: tenant");
            assert!(inner == *f, "round {round} frame {k}: {} bytes out, {} in", inner.len(), f.len());
        }
        sent_total.extend(frames);
        // The used ring: every chain, in order, length 0; published.
        let mut waited = 0;
        while txq.used_idx(&mem) != txq.avail_idx {
            dma.transport().run_cycles(500);
            waited += 1;
            assert!(waited < 200, "round {round}: used.idx {} of {}", txq.used_idx(&mem), txq.avail_idx);
        }
        for (i, &h) in heads.iter().enumerate() {
            assert_eq!(txq.used_elem(&mem, i as u16), (h as u32, 0), "used element {i}");
        }
        let st = virtq::queue_state(dma.transport(), 1).unwrap();
        assert_eq!((st.last_avail, st.used_idx, st.error), (txq.avail_idx, txq.avail_idx, 0));
        // The interrupt: MSI and the status bit of queue 1.
        let c = virtq::counters(dma.transport()).unwrap();
        assert!(c.irqs > irqs_before, "round {round}: no interrupt counted");
        assert_eq!(virtq::take_irq_status(dma.transport()).unwrap() & 0x2, 0x2, "round {round}");
        assert_eq!(virtq::take_irq_status(dma.transport()).unwrap(), 0, "cleared");
    }
    let c = virtq::counters(dma.transport()).unwrap();
    assert_eq!((c.tx_frames as usize, c.tx_drops, c.queue_errors), (sent_total.len(), 0, 0));
    // Suppressed: the driver sets NO_INTERRUPT; the frames still go, no interrupt.
    txq.set_no_interrupt(&mut mem, true);
    let f = random_frame(&mut rng);
    heads.push(txq.add_chain(&mut mem, &random_layout(&mut rng, &f)));
    txq.publish(&mut mem);
    let before = virtq::counters(dma.transport()).unwrap();
    virtq::notify(dma.transport(), 1).unwrap();
    assert_eq!(collect(&mut dma, 1).len(), 1);
    dma.transport().run_cycles(5000);
    let after = virtq::counters(dma.transport()).unwrap();
    assert_eq!((after.irqs, after.irqs_suppressed), (before.irqs, before.irqs_suppressed + 1));
    assert_eq!(virtq::take_irq_status(dma.transport()).unwrap(), 0);
    assert_eq!(txq.used_idx(&mem), txq.avail_idx);
    // Write records: the used ring's every byte written (the index and the
    // elements), as the virtqueue kind of queue 1.
    dma.sync_records().unwrap();
    let r = covered(&dma, 1);
    let used = mem.iova + USED_OFF as u64;
    assert!(is_covered(&r, used + 2, used + 4), "used.idx not in the records: {r:x?}");
    let elems = heads.len().min(SIZE as usize) as u64;
    assert!(is_covered(&r, used + 4, used + 4 + 8 * elems), "used elements not in the records: {r:x?}");
    // Nothing else of the guest's memory is claimed written.
    assert!(r.iter().all(|&(s, e)| s >= used && e <= used + 4 + 8 * SIZE as u64), "{r:x?}");
}

#[test]
fn a_malformed_ring_stops_only_its_queue() {
    let mut rng = SmallRng::seed_from_u64(14);
    let (mut dma, mut mem) = setup();
    let mut good = TxQueue::new(0, SIZE_LOG2);
    let mut bad = TxQueue::new(QUEUE_SPAN, SIZE_LOG2);
    virtq::setup_queue(dma.transport(), 1, &good.setup(&mem, 2)).unwrap();
    virtq::setup_queue(dma.transport(), 3, &bad.setup(&mem, 9)).unwrap();
    // The bad queue's avail.idx jumps more than the queue size ahead.
    let f = random_frame(&mut rng);
    bad.add_chain(&mut mem, &random_layout(&mut rng, &f));
    bad.avail_idx = SIZE + 3;
    bad.publish(&mut mem);
    let used_before = mem.read_vec(QUEUE_SPAN + USED_OFF, 4 + 8 * SIZE as usize);
    virtq::notify(dma.transport(), 3).unwrap();
    let frames: Vec<Vec<u8>> = (0..5).map(|_| random_frame(&mut rng)).collect();
    for f in &frames {
        good.add_chain(&mut mem, &random_layout(&mut rng, f));
    }
    good.publish(&mut mem);
    virtq::notify(dma.transport(), 1).unwrap();
    let got = collect(&mut dma, 5);
    assert_eq!(got.len(), 5, "the good queue's frames (and nothing of the bad queue's)");
    for (p, f) in got.iter().zip(&frames) {
        assert_eq!(unwrap_tx(p), (2, f.clone()));
    }
    let st = virtq::queue_state(dma.transport(), 3).unwrap();
    assert_eq!((st.error as u64, st.last_avail, st.used_idx), (vq::ERR_AVAIL_JUMP, 0, 0));
    assert_eq!(virtq::queue_state(dma.transport(), 1).unwrap().error, 0);
    let c = virtq::counters(dma.transport()).unwrap();
    assert_eq!((c.queue_errors, c.tx_frames), (1, 5));
    assert_eq!(mem.read_vec(QUEUE_SPAN + USED_OFF, 4 + 8 * SIZE as usize), used_before, "the bad queue's used ring was written");
    // A reset brings the queue back: a sane ring then works.
    virtq::setup_queue(dma.transport(), 3, &bad.setup(&mem, 9)).unwrap();
    let mut bad = TxQueue::new(QUEUE_SPAN, SIZE_LOG2);
    let f = random_frame(&mut rng);
    bad.add_chain(&mut mem, &random_layout(&mut rng, &f));
    bad.publish(&mut mem);
    virtq::notify(dma.transport(), 3).unwrap();
    let got = collect(&mut dma, 1);
    assert_eq!(got.len(), 1);
    assert_eq!(unwrap_tx(&got[0]), (9, f));
}

/// Run until queue `q`'s used index reaches `want` (or give up).
fn wait_used(dma: &mut DmaCard<SimTransport>, q: &TxQueue, mem: &DmaBuffer, want: u16) -> bool {
    for _ in 0..400 {
        if q.used_idx(mem) == want {
            return true;
        }
        dma.transport().run_cycles(250);
    }
    q.used_idx(mem) == want
}

#[test]
fn receiveq_buffers_get_the_header_and_the_frame_with_records() {
    let mut rng = SmallRng::seed_from_u64(15);
    let (mut dma, mut mem) = setup();
    // Pair 1 (receiveq 2) takes tenant 3's frames; tenant 3's VNI maps to it.
    let tenant = 3u8;
    let vni = test_tenant(tenant as usize, Policy::PerFlow).ctx.vni;
    NetCtl::new(&mut dma.card).map_vni(0, vni, tenant, 2).unwrap();
    let mut rxq = TxQueue::new(0, SIZE_LOG2);
    virtq::setup_queue(dma.transport(), 2, &rxq.setup(&mem, tenant)).unwrap();
    let packet = |inner: &[u8], sport: u16| encapsulate(inner, &test_tenant(tenant as usize, Policy::PerFlow).ctx, sport);
    // No buffer posted: frames are dropped and counted, nothing is written.
    let before = mem.to_vec();
    for _ in 0..3 {
        let f = random_frame(&mut rng);
        dma.transport().inject_rx_frame(&packet(&f, rng.gen()));
    }
    dma.transport().run_cycles(20_000);
    assert_eq!(virtq::counters(dma.transport()).unwrap().rx_drops, 3);
    assert!(mem.to_vec() == before, "a frame with no buffer was written somewhere");
    // Buffers of 1600 bytes: each frame lands, one at a time (the card holds
    // one fetched buffer per receiveq).
    let mut bufs = vec![];
    for _ in 0..24 {
        bufs.push(rxq.add_rx_buffer(&mut mem, 1600, 0xEE));
    }
    rxq.publish(&mut mem);
    virtq::notify(dma.transport(), 2).unwrap();
    dma.transport().run_cycles(3000);
    let mut frames = vec![];
    for i in 0..20u16 {
        let f = random_frame(&mut rng);
        dma.transport().inject_rx_frame(&packet(&f, rng.gen()));
        assert!(wait_used(&mut dma, &rxq, &mem, i + 1), "frame {i} not received (used.idx {})", rxq.used_idx(&mem));
        frames.push(f);
        // The next buffer is fetched.
        dma.transport().run_cycles(1500);
    }
    for (i, f) in frames.iter().enumerate() {
        let (head, at) = bufs[i];
        assert_eq!(rxq.used_elem(&mem, i as u16), (head as u32, (12 + f.len()) as u32), "used element {i}");
        let got = mem.read_vec(at, 12 + f.len() + 8);
        assert_eq!(&got[..12], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0], "frame {i}: virtio_net_hdr_v1");
        assert!(got[12..12 + f.len()] == f[..], "frame {i}: {} bytes, not the frame", f.len());
        assert!(got[12 + f.len()..].iter().all(|&b| b == 0xEE), "frame {i}: written past its end");
    }
    let c = virtq::counters(dma.transport()).unwrap();
    assert_eq!((c.rx_frames, c.rx_drops, c.rx_bad_buffers), (20, 3, 0));
    assert_eq!(virtq::queue_state(dma.transport(), 2).unwrap().error, 0);
    assert_eq!(virtq::take_irq_status(dma.transport()).unwrap() & 0x4, 0x4, "receiveq 2's interrupt");
    // Records: every byte written (buffers and used ring), virtqueue kind, queue 2.
    dma.sync_records().unwrap();
    let r = covered(&dma, 2);
    for (i, f) in frames.iter().enumerate() {
        let iova = mem.iova + bufs[i].1 as u64;
        assert!(is_covered(&r, iova, iova + 12 + f.len() as u64), "buffer {i} not in the records");
    }
    let used = rxq.used_iova(&mem);
    assert!(is_covered(&r, used + 2, used + 4 + 8 * frames.len() as u64), "used ring not in the records");
    // A buffer too small for the frame: dropped, counted, the buffer kept for the next frame.
    let mut small = TxQueue::new(QUEUE_SPAN, SIZE_LOG2);
    virtq::setup_queue(dma.transport(), 2, &small.setup(&mem, tenant)).unwrap();
    let (head, at) = small.add_rx_buffer(&mut mem, 100, 0xEE);
    small.publish(&mut mem);
    virtq::notify(dma.transport(), 2).unwrap();
    dma.transport().run_cycles(3000);
    let big = vec![0x42u8; 200];
    dma.transport().inject_rx_frame(&packet(&big, 1));
    dma.transport().run_cycles(5000);
    assert_eq!(virtq::counters(dma.transport()).unwrap().rx_drops, 4);
    assert!(mem.read_vec(at, 108).iter().all(|&b| b == 0xEE), "the small buffer was written");
    let f = vec![0x17u8; 64];
    dma.transport().inject_rx_frame(&packet(&f, 2));
    assert!(wait_used(&mut dma, &small, &mem, 1));
    assert_eq!(small.used_elem(&mem, 0), (head as u32, 76));
    assert!(mem.read_vec(at + 12, 64) == f);
}
