//! The in-process transport's DMA mapping. The driver's suite itself runs on
//! every carrier in the root package's `tests/carriers.rs`.
use offcard_driver::*;
use offcard_sim::SimTransport;

#[test]
fn dma_buffers_are_iommu_mapped() {
    let mut t = SimTransport::new(1, 1 << 20).unwrap();
    let mut b = t.alloc_dma(100).unwrap();
    b.write(0, &[1, 2, 3, 4]);
    let mut back = [0u8; 4];
    t.rc.mem.dma_read(b.iova, &mut back).unwrap();
    assert_eq!(back, [1, 2, 3, 4]);
    assert!(t.rc.mem.dma_read(b.iova + 8192, &mut back).is_err(), "guard page must be unmapped");
}

