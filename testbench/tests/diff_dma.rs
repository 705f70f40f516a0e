//! Differential test of the DMA engine: the same copy program, through the
//! same root-complex model (same seed, so the same completion splitting and
//! interleaving), run on rust-hdl's simulation and on the Verilated card.
//! Every TLP the card sends and the final host memory must be identical.
use offcard_driver::dma::Descriptor;
use offcard_hdl::regmap::dma::*;
use offcard_sim::{CardSim, RootComplex};
use offcard_testbench::hdl_sim::RustHdlCard;

fn run<C: CardSim>(card: C) -> (Vec<Vec<u32>>, Vec<u8>) {
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
    w(&mut rc, WREC_FLUSH, 1);
    rc.run(300);
    assert!(rc.card_errors.is_empty(), "{:?}", rc.card_errors);
    (rc.seen.take().unwrap(), rc.mem.as_slice()[..0x50000].to_vec())
}

#[test]
fn dma_copy_identical_in_rusthdl_and_verilator() {
    let (tv, mv) = run(offcard_sim::CardModel::new());
    let (tr, mr) = run(RustHdlCard::new());
    assert!(tv.len() > 20, "the copy program did too little: {} TLPs", tv.len());
    for (i, (a, b)) in tv.iter().zip(&tr).enumerate() {
        assert_eq!(a, b, "TLP {i} differs: Verilator vs rust-hdl");
    }
    assert_eq!(tv.len(), tr.len());
    assert!(mv == mr, "host memory differs after the copy");
    // And the copy happened.
    assert_eq!(&mv[0x40011..0x40011 + 700], &mv[0x10003..0x10003 + 700]);
    assert_eq!(&mv[0x41000..0x41000 + 1500], &mv[0x11001..0x11001 + 1500]);
    eprintln!("DMA differential: {} TLPs identical", tv.len());
}
