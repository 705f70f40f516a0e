//! The driver end to end through the simulated transport, and the VFIO
//! backend's failure on a machine without VFIO.
use offcard_driver::*;
use offcard_hdl::regmap::*;
use std::time::Duration;

#[test]
fn driver_register_access_end_to_end() {
    let t = SimTransport::new(7, 1 << 20).unwrap();
    let mut card = Card::open(t).unwrap();
    let id = card.identity().unwrap();
    assert_eq!(id.magic, CARD_MAGIC);
    assert_eq!(id.version, (VERSION_MAJOR, VERSION_MINOR, VERSION_PATCH));
    assert!(card.scratch_test().unwrap() > 100);
    // Byte-granular write through the 32-bit path leaves other bytes alone.
    card.write(REG_SCRATCH1, 0xAABB_CCDD).unwrap();
    assert_eq!(card.read(REG_SCRATCH1).unwrap(), 0xAABB_CCDD);
    assert!(card.fire_msi(Duration::from_micros(50)).unwrap(), "MSI did not arrive");
    // No second MSI without a second trigger.
    assert!(!card.transport.wait_interrupt(Duration::from_micros(20)).unwrap());
    let counters = card.counters().unwrap();
    let msi = counters.iter().find(|(n, _)| *n == "REG_CNT_MSI_SENT").unwrap().1;
    assert_eq!(msi, 1);
    let cfg0 = card.transport.config_read32(0).unwrap();
    assert_eq!(cfg0, (DEVICE_ID as u32) << 16 | VENDOR_ID as u32);
    assert!(card.transport.rc.card_errors.is_empty(), "{:?}", card.transport.rc.card_errors);
}

#[test]
fn dma_buffers_are_iommu_mapped() {
    let mut t = SimTransport::new(1, 1 << 20).unwrap();
    let mut b = t.alloc_dma(100).unwrap();
    b.as_mut_slice()[..4].copy_from_slice(&[1, 2, 3, 4]);
    let mut back = [0u8; 4];
    t.rc.mem.dma_read(b.iova, &mut back).unwrap();
    assert_eq!(back, [1, 2, 3, 4]);
    assert!(t.rc.mem.dma_read(b.iova + 8192, &mut back).is_err(), "guard page must be unmapped");
}

#[test]
fn vfio_backend_fails_clearly_without_vfio() {
    if std::path::Path::new("/dev/vfio/vfio").exists() {
        eprintln!("SKIPPED: this host has /dev/vfio; the failure path is not reachable");
        return;
    }
    let err = VfioTransport::open("0000:01:00.0").err().expect("must fail without VFIO").to_string();
    assert!(err.contains("/dev/vfio/vfio"), "{err}");
    assert!(err.contains("vfio-pci"), "{err}");
}

#[test]
fn every_register_resets_to_the_value_in_the_register_map() {
    use offcard_hdl::regmap::{dma, Access, BAR0_REGISTERS};
    let mut t = SimTransport::new(4, 1 << 20).unwrap();
    let mut checked = 0;
    let regs = BAR0_REGISTERS
        .iter()
        .chain(dma::GLOBAL_REGISTERS)
        .map(|r| (r.offset, r))
        .chain(dma::QUEUE_REGISTERS.iter().map(|r| (dma::QUEUE_BASE + 2 * dma::QUEUE_STRIDE + r.offset, r)));
    for (off, r) in regs {
        // Counters and status move during enumeration, which also programs
        // the MSI vector; triggers read 0.
        if matches!(r.access, Access::CounterWriteClears | Access::WriteTrigger) || r.name.contains("STATUS") || r.name.starts_with("CNT_") || r.name.contains("MSI") {
            continue;
        }
        assert_eq!(t.bar0_read32(off).unwrap(), r.reset, "{} at {off:#x}", r.name);
        checked += 1;
    }
    assert!(checked > 20, "only {checked} registers checked");
}
