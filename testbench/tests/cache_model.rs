//! The tagged-cache reference model: partitioning isolates tags (prime and
//! probe learns nothing), sharing does not (the same test detects the
//! victim), and mask changes never let a tag hit another tag's line.
use offcard_testbench::cache_model::{prime_probe, CacheModel};

#[test]
fn partitioned_cache_leaks_nothing_shared_cache_leaks() {
    let mut part = CacheModel::new(64, 8, 16);
    part.set_mask(1, 0x0f);
    part.set_mask(2, 0xf0);
    let (mi_p, thr_p) = prime_probe(&mut part, 1, 2, 4000, 7);
    let mut shared = CacheModel::new(64, 8, 16);
    shared.shared = true;
    let (mi_s, thr_s) = prime_probe(&mut shared, 1, 2, 4000, 7);
    eprintln!("prime+probe: partitioned {mi_p:.4} bits (threshold {thr_p:.4}), shared {mi_s:.4} bits (threshold {thr_s:.4})");
    assert!(mi_p <= thr_p + 1e-9, "partitioned cache leaks: {mi_p} > {thr_p}");
    assert!(mi_s > thr_s + 0.5, "the experiment cannot see the shared-cache leak: {mi_s} vs {thr_s}");
}

#[test]
fn mask_changes_never_expose_another_tags_line() {
    let mut c = CacheModel::new(16, 4, 16);
    let mut x = 12345u64;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    // All tags use the same keys, so a cross-tag hit would be easy to make;
    // masks change at random times, overlapping or not.
    let mut hits = 0;
    for step in 0..100_000 {
        if rnd() % 50 == 0 {
            c.set_mask((rnd() % 4) as u8, rnd() & 0xf);
        }
        let tag = (rnd() % 4) as u8;
        if let Some(owner) = c.access_owner(tag, (rnd() % 64) as u32) {
            assert_eq!(owner, tag, "tag {tag} hit a line filled by tag {owner} at step {step}");
            hits += 1;
        }
    }
    assert!(hits > 1000, "too few hits ({hits}) for the test to mean anything");
    // The same stream without partitioning does produce cross-tag hits.
    let mut shared = CacheModel::new(16, 4, 16);
    shared.shared = true;
    let cross = (0..10_000u64).filter(|i| shared.access_owner((i / 16 % 4) as u8, (i % 16) as u32).is_some_and(|o| o != (i / 16 % 4) as u8)).count();
    assert!(cross > 0, "the shared baseline must show cross-tag hits");
    let total: usize = (0..4).map(|t| c.occupancy(t)).sum();
    assert!(total <= 16 * 4);
}

#[test]
fn model_set_function_is_the_cards() {
    let m = CacheModel::card();
    for k in [0u32, 1, 63, 64, 0xdead_beef, u32::MAX, 0x8000_0000] {
        assert_eq!(m.set_of(k) as u32, offcard_hdl::regmap::cache::set_of(k), "key {k:#x}");
    }
}
