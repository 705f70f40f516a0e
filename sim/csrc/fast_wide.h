// Faster drop-in versions of two Verilator runtime helpers, force-included
// (g++ -include) into every Verilated model this crate compiles.
//
// Why: the encapsulation block's Toeplitz hash shifts a 320-bit key by one
// bit 64 times a cycle (`kw = kw << 1`); Verilator folds the chain into 64
// calls of VL_SHIFTL_WWI with constant amounts, of which the design reads
// one 32-bit word each. Verilator's VL_SHIFTL_WWI inserts the bits with the
// generic _vl_insert_WW (a branch per word, not unrolled, not inlined), and
// that alone took 43% of the whole card's simulation time. The versions
// here compute each output word on its own from at most two input words in
// a loop the compiler unrolls, so once inlined with constant widths and
// amounts it keeps only the words the model reads. VL_SHIFTR_WWI (the same
// for right shifts, e.g. a 704-bit byte-window shift of which one word is
// read) gets the same treatment.
//
// Results are bit for bit those of Verilator's own functions, for every
// width, amount (including amounts >= the width) and input (dirty bits
// above the width included): `offcard_fast_wide_selftest` in
// fast_wide_selftest.cpp compares them exhaustively over many widths and a
// test (sim/tests/fast_wide.rs) runs it. Signatures are Verilator's
// (unchanged since 4.x). Nothing here is design-specific.
#pragma once
#include "verilated.h"

static inline WDataOutP offcard_shiftl_wwi(int obits, int, int, WDataOutP owp, WDataInP const lwp,
                                           IData rd) VL_MT_SAFE {
    const int words = VL_WORDS_I(obits);
    if (rd >= static_cast<IData>(obits)) {
#pragma GCC unroll 64
        for (int i = 0; i < words; ++i) owp[i] = 0;
        return owp;
    }
    const int ws = VL_BITWORD_E(rd);
    const int bs = VL_BITBIT_E(rd);
    if (bs == 0) {
        // Whole-word shift: Verilator copies without cleaning the top word.
#pragma GCC unroll 64
        for (int i = 0; i < words; ++i) owp[i] = i >= ws ? lwp[i - ws] : 0;
    } else {
        // Verilator reads the low VL_WORDS_I(obits - rd) words of lwp and
        // cleans the top word of the result.
        const int nsrc = VL_WORDS_I(obits - static_cast<int>(rd));
#pragma GCC unroll 64
        for (int i = 0; i < words; ++i) {
            const int k = i - ws;
            EData v = 0;
            if (k >= 0 && k < nsrc) v = lwp[k] << bs;
            if (k >= 1 && k - 1 < nsrc) v |= lwp[k - 1] >> (VL_EDATASIZE - bs);
            owp[i] = v;
        }
        owp[words - 1] &= VL_MASK_E(obits);
    }
    return owp;
}

static inline WDataOutP offcard_shiftr_wwi(int obits, int, int, WDataOutP owp, WDataInP const lwp,
                                           IData rd) VL_MT_SAFE {
    const int words = VL_WORDS_I(obits);
    if (rd >= static_cast<IData>(obits)) {
#pragma GCC unroll 64
        for (int i = 0; i < words; ++i) owp[i] = 0;
        return owp;
    }
    const int ws = VL_BITWORD_E(rd);
    const int bs = VL_BITBIT_E(rd);
    if (bs == 0) {
#pragma GCC unroll 64
        for (int i = 0; i < words; ++i) owp[i] = i < words - ws ? lwp[i + ws] : 0;
    } else {
        const int nw = VL_WORDS_I(obits - static_cast<int>(rd));
#pragma GCC unroll 64
        for (int i = 0; i < words; ++i) {
            EData v = 0;
            if (i < nw) {
                v = lwp[i + ws] >> bs;
                if (i + ws + 1 < words) v |= lwp[i + ws + 1] << (VL_EDATASIZE - bs);
            }
            owp[i] = v;
        }
    }
    return owp;
}

// The generated model calls these by name; verilated.h (included above, with
// include guards) has already declared Verilator's own, which stay reachable
// as (VL_SHIFTL_WWI)(...) for the self-test.
#define VL_SHIFTL_WWI offcard_shiftl_wwi
#define VL_SHIFTR_WWI offcard_shiftr_wwi
