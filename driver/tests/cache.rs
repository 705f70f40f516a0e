//! The tagged cache through the whole stack: driver -> BAR0 TLPs -> the
//! Verilated card -> completions.

use offcard_driver::{CacheCtl, Card, SimTransport};

#[test]
fn cache_through_the_card_isolates_tags_and_counts() {
    let mut card = Card::open(SimTransport::new(3, 1 << 20).unwrap()).unwrap();
    let mut cache = CacheCtl::new(&mut card).unwrap();
    let g = cache.geometry();
    assert_eq!((g.sets, g.ways, g.tags), (64, 8, 16));
    cache.set_way_mask(1, 0x0f).unwrap();
    cache.set_way_mask(2, 0xf0).unwrap();
    assert_eq!(cache.way_mask(1).unwrap(), 0x0f);
    // Miss, slow-path fill, hit.
    assert_eq!(cache.lookup(1, 0x0a00_0002).unwrap(), None);
    cache.fill(1, 0x0a00_0002, 0xc0a8_0001).unwrap();
    assert_eq!(cache.lookup(1, 0x0a00_0002).unwrap(), Some(0xc0a8_0001));
    // Another tag does not see it, even for the same key.
    assert_eq!(cache.lookup(2, 0x0a00_0002).unwrap(), None);
    let c1 = cache.counters(1).unwrap();
    assert_eq!((c1.hits, c1.misses, c1.fills, c1.occupancy), (1, 1, 1, 1));
    let c2 = cache.counters(2).unwrap();
    assert_eq!((c2.hits, c2.misses, c2.fills, c2.occupancy), (0, 1, 0, 0));
    // Reassigning tag 1's ways flushes its lines (safe order).
    cache.set_way_mask(1, 0x0c).unwrap();
    assert_eq!(cache.lookup(1, 0x0a00_0002).unwrap(), None, "a line in a way the tag lost must be gone");
    // Shared mode is the baseline in which tags do see each other.
    cache.set_partitioned(false).unwrap();
    cache.fill(3, 77, 5).unwrap();
    assert_eq!(cache.lookup(4, 77).unwrap(), Some(5));
    // Bad input gets a clear error and changes nothing.
    assert!(cache.set_way_mask(16, 1).unwrap_err().to_string().contains("out of range"));
    assert!(cache.set_way_mask(1, 0x100).unwrap_err().to_string().contains("beyond"));
    assert_eq!(cache.way_mask(1).unwrap(), 0x0c);
}
