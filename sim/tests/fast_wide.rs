//! The wide-shift helpers every model is compiled with (`csrc/fast_wide.h`)
//! give Verilator's own results bit for bit.

#[test]
fn fast_wide_shifts_match_verilators_own() {
    let (cases, bad) = offcard_sim::model::fast_wide_selftest();
    assert!(cases > 50_000, "only {cases} comparisons");
    assert_eq!(bad, 0, "{bad} output words differ from Verilator's VL_SHIFTL_WWI / VL_SHIFTR_WWI");
}
