use offcard_driver::*;
use std::time::Duration;

#[test]
fn one_copy_moves_bytes_and_is_recorded() {
    let t = SimTransport::new(3, 8 << 20).unwrap();
    let mut dma = DmaCard::new(Card::open(t).unwrap(), DmaConfig::default()).unwrap();
    dma.keep_records = true;
    let mut src = dma.transport().alloc_dma(8192).unwrap();
    let dst = dma.transport().alloc_dma(8192).unwrap();
    for (i, b) in src.as_mut_slice().iter_mut().enumerate() {
        *b = (i * 7 + 3) as u8;
    }
    let (s, d, len) = (src.iova + 5, dst.iova + 13, 3001u32);
    dma.post(0, Descriptor { src: s, dst: d, len, cookie: 0xc0ffee }).unwrap();
    let c = dma.complete_all(Duration::from_millis(2)).unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].cookie, 0xc0ffee);
    assert_eq!(c[0].status, 0, "{c:?}");
    assert_eq!(&dst.as_slice()[13..13 + len as usize], &src.as_slice()[5..5 + len as usize]);
    assert!(dst.as_slice()[..13].iter().all(|&b| b == 0), "bytes before dst touched");
    assert!(dst.as_slice()[13 + len as usize..].iter().all(|&b| b == 0), "bytes after dst touched");
    dma.sync_records().unwrap();
    let covered = dma.records.iter().any(|r| r.iova <= d && r.iova + r.len as u64 >= d + len as u64);
    assert!(covered, "no record covers the data: {:?}", dma.records);
    assert!(dma.transport().rc.card_errors.is_empty(), "{:?}", dma.transport().rc.card_errors);
}
