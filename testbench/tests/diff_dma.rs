//! Differential test of the DMA engine: the same copy program, through the
//! same root-complex model (same seed, so the same completion splitting and
//! interleaving), run on rust-hdl's simulation and on the Verilated card.
//! Every TLP the card sends and the final host memory must be identical.
//! The program ends with a short network exchange: a TX frame (under
//! back-pressure), an RX frame into a posted buffer and one for a queue
//! without buffers; the frames the card sends must be identical too.
use offcard_driver::dma::Descriptor;
use offcard_regs::dma::*;
use offcard_regs::{decap, encap};
use offcard_net::geneve::{decapsulate, encapsulate};
use offcard_net::path::Policy;
use offcard_testbench::encap_bench::test_tenant;
use offcard_sim::{CardSim, NetFrame, RootComplex};
use offcard_testbench::hdl_sim::RustHdlCard;

fn run<C: CardSim>(card: C) -> (Vec<Vec<u32>>, Vec<u8>, Vec<NetFrame>) {
    let mut rc = RootComplex::with_card(card, 21, 1 << 20).unwrap();
    rc.seen = Some(vec![]);
    let info = rc.enumerate(0x20_0000_0000).unwrap();
    let b = info.bar0;
    // Memory: ring at 0x1000, completions at 0x2000, records at 0x3000,
    // write-back at 0x4000, source at 0x10000, destination at 0x40000.
    rc.mem.dma_map(0x1_0000_0000, 0, 1 << 20, true).unwrap();
    let iova = |o: u64| 0x1_0000_0000 + o;
    for (i, byte) in rc.mem.as_mut_slice()[0x10000..0x12000].iter_mut().enumerate() {
        *byte = (i * 31 + 7) as u8;
    }
    let descs = [(0x10003u64, 0x40011u64, 700u32), (0x10800, 0x40400, 64), (0x11001, 0x41000, 1500)];
    for (i, (s, d, l)) in descs.iter().enumerate() {
        let e = Descriptor { src: iova(*s), dst: iova(*d), len: *l, cookie: i as u64 + 1 }.to_bytes();
        rc.mem.write(0x1000 + 32 * i as u64, &e).unwrap();
    }
    let w = |rc: &mut RootComplex<C>, off: u32, v: u32| rc.write32(b + off as u64, v);
    w(&mut rc, QUEUE_BASE + Q_RING_LO, iova(0x1000) as u32);
    w(&mut rc, QUEUE_BASE + Q_RING_HI, 1);
    w(&mut rc, QUEUE_BASE + Q_RING_LOG2, 3);
    w(&mut rc, QUEUE_BASE + Q_CPL_LO, iova(0x2000) as u32);
    w(&mut rc, QUEUE_BASE + Q_CPL_HI, 1);
    w(&mut rc, QUEUE_BASE + Q_CTRL, Q_CTRL_ENABLE);
    w(&mut rc, WREC_LO, iova(0x3000) as u32);
    w(&mut rc, WREC_HI, 1);
    w(&mut rc, WREC_LOG2, 4);
    w(&mut rc, WREC_WB_LO, iova(0x4000) as u32);
    w(&mut rc, WREC_WB_HI, 1);
    w(&mut rc, QUEUE_BASE + Q_TAIL, 3);
    rc.run(6000);
    // Network: queue 1 sends 203 bytes from 0x10105 (tenant 6) while the
    // port takes two beats in three; queue 2 receives 150 bytes at 0x48003;
    // a frame for queue 3 (copy mode) is dropped.
    let tx = Descriptor { src: iova(0x10105), dst: 0, len: 203, cookie: 0x7700 }.to_bytes_with_flags(6 << DESC_FLAGS_TENANT_SHIFT);
    rc.mem.write(0x5000, &tx).unwrap();
    let rx = Descriptor { src: 0, dst: iova(0x48003), len: 2048, cookie: 0x8800 }.to_bytes();
    rc.mem.write(0x7000, &rx).unwrap();
    for (q, ring, cpl, mode) in [(1u32, 0x5000u64, 0x6000u64, QMODE_TX), (2, 0x7000, 0x8000, QMODE_RX)] {
        let base = QUEUE_BASE + q * QUEUE_STRIDE;
        w(&mut rc, base + Q_RING_LO, iova(ring) as u32);
        w(&mut rc, base + Q_RING_HI, 1);
        w(&mut rc, base + Q_RING_LOG2, 3);
        w(&mut rc, base + Q_CPL_LO, iova(cpl) as u32);
        w(&mut rc, base + Q_CPL_HI, 1);
        w(&mut rc, base + Q_MODE, mode);
        w(&mut rc, base + Q_CTRL, Q_CTRL_ENABLE);
        w(&mut rc, base + Q_TAIL, 1);
    }
    // The overlay: tenant 6 transmits; VNIs of tenants 11 and 2 map to queues 2 and 3.
    for (off, v) in test_tenant(6, Policy::PerFlow).context().register_writes(6) {
        w(&mut rc, off, v);
    }
    w(&mut rc, encap::TENANT_ENABLE, 1 << 6);
    let vni = |t: usize| test_tenant(t, Policy::PerFlow).ctx.vni;
    w(&mut rc, decap::VNI_TABLE, decap::vni_entry(vni(11), 11, 2));
    w(&mut rc, decap::VNI_TABLE + 4, decap::vni_entry(vni(2), 2, 3));
    rc.net.tx_ready_pattern = Some(vec![true, false, true]);
    let pkt = |t: usize, inner: Vec<u8>| NetFrame::new(encapsulate(&inner, &test_tenant(t, Policy::PerFlow).ctx, 50000));
    rc.net.to_card.push_back(pkt(2, (0..90u32).map(|i| (i * 3) as u8).collect()));
    rc.net.to_card.push_back(pkt(11, (0..150u32).map(|i| (i * 7 + 1) as u8).collect()));
    rc.run(2500);
    w(&mut rc, WREC_FLUSH, 1);
    rc.run(300);
    assert!(rc.card_errors.is_empty(), "{:?}", rc.card_errors);
    assert!(rc.net.to_card.is_empty(), "RX frames not taken");
    (rc.seen.take().unwrap(), rc.mem.as_slice()[..0x50000].to_vec(), std::mem::take(&mut rc.net.from_card))
}

#[test]
fn dma_copy_identical_in_rusthdl_and_verilator() {
    let (tv, mv, nv) = run(offcard_sim::CardModel::new());
    let (tr, mr, nr) = offcard_testbench::hdl_sim::with_big_stack(|| run(RustHdlCard::new()));
    assert!(tv.len() > 20, "the copy program did too little: {} TLPs", tv.len());
    for (i, (a, b)) in tv.iter().zip(&tr).enumerate() {
        assert_eq!(a, b, "TLP {i} differs: Verilator vs rust-hdl");
    }
    assert_eq!(tv.len(), tr.len());
    assert!(mv == mr, "host memory differs after the copy");
    // And the copy happened.
    assert_eq!(&mv[0x40011..0x40011 + 700], &mv[0x10003..0x10003 + 700]);
    assert_eq!(&mv[0x41000..0x41000 + 1500], &mv[0x11001..0x11001 + 1500]);
    assert_eq!(nv, nr, "network TX frames differ");
    assert_eq!(nv.len(), 1);
    let (v, inner) = decapsulate(&nv[0].bytes).expect("the card's packet is valid Geneve");
    assert_eq!((v, inner), (test_tenant(6, Policy::PerFlow).ctx.vni, &mv[0x10105..0x10105 + 203]));
    let rx: Vec<u8> = (0..150u32).map(|i| (i * 7 + 1) as u8).collect();
    assert_eq!(&mv[0x48003..0x48003 + 150], &rx[..]);
    // RX completion: cookie, frame length, status 0, queue 2, done + tenant 11.
    assert_eq!(&mv[0x8000..0x8010], &[0x00, 0x88, 0, 0, 0, 0, 0, 0, 150, 0, 0, 0, 0, 0, 2, 1 | (11 << CPL_FLAG_TENANT_SHIFT)]);
    eprintln!("DMA differential: {} TLPs identical", tv.len());
}
