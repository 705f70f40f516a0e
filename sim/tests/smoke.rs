use offcard_hdl::regmap::*;
use offcard_sim::RootComplex;

#[test]
fn enumerate_identify_scratch_msi() {
    let mut rc = RootComplex::new(1, 1 << 20).unwrap();
    let e = rc.enumerate(0x2_0000_0000).unwrap();
    assert_eq!((e.vendor, e.device), (VENDOR_ID, DEVICE_ID));
    assert_eq!(e.bar0_size, BAR0_SIZE);
    assert_eq!(rc.read32(e.bar0 + REG_ID as u64).unwrap(), CARD_MAGIC);
    assert_eq!(rc.read32(e.bar0 + REG_VERSION as u64).unwrap(), CARD_VERSION);
    rc.write32(e.bar0 + REG_SCRATCH0 as u64, 0xdead_beef);
    assert_eq!(rc.read32(e.bar0 + REG_SCRATCH0 as u64).unwrap(), 0xdead_beef);
    rc.write64(e.bar0 + REG_SCRATCH2 as u64, 0x1122_3344_5566_7788);
    assert_eq!(rc.read64(e.bar0 + REG_SCRATCH2 as u64).unwrap(), 0x1122_3344_5566_7788);
    let seen = rc.msi_count();
    rc.write32(e.bar0 + REG_MSI_TRIGGER as u64, 1);
    assert!(rc.wait_msi(seen, 1000));
    assert!(rc.card_errors.is_empty(), "{:?}", rc.card_errors);
}

#[test]
fn vcd_tracing_switches_on_and_off_at_run_time() {
    let fast = RootComplex::new(2, 1 << 16).unwrap();
    drop(fast);
    let mut fast = offcard_sim::CardModel::new();
    assert!(fast.trace_open(std::path::Path::new("/tmp/never.vcd")).is_err(), "the fast model has no tracing");
    let mut rc = RootComplex::with_card(offcard_sim::CardModel::new_traced(), 2, 1 << 16).unwrap();
    let path = std::env::temp_dir().join(format!("offcard-trace-{}.vcd", std::process::id()));
    rc.run(10);
    rc.card.trace_open(&path).unwrap();
    assert!(rc.card.trace_open(&path).is_err(), "a second trace must be refused");
    let e = rc.enumerate(0x2_0000_0000).unwrap();
    rc.card.trace_close();
    let size = std::fs::metadata(&path).unwrap().len();
    rc.read32(e.bar0).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), size, "trace grew after it was closed");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("$enddefinitions") && text.contains("rx_valid") && text.lines().count() > 100);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_card_that_never_answers_is_reported_not_waited_on_forever() {
    let mut rc = RootComplex::new(3, 1 << 16).unwrap();
    let e = rc.enumerate(0x2_0000_0000).unwrap();
    // The root port stops accepting anything from the card: no completion
    // can arrive, and the read must fail with a timeout naming the request.
    rc.timing.tx_stall = 1.0;
    rc.timing.timeout_cycles = 500;
    let err = rc.read32(e.bar0 + REG_ID as u64).unwrap_err();
    match err {
        offcard_sim::SimError::Timeout { ref what, cycles, .. } => {
            assert!(what.contains("memory read"), "{what}");
            assert_eq!(cycles, 500);
        }
        other => panic!("expected a timeout, got {other}"),
    }
    assert!(err.to_string().contains("did not complete"));
}
