// Compares the shifts of fast_wide.h with Verilator's own, bit for bit.
#include <cstdint>
#include "fast_wide.h"

namespace {
// xorshift64*: deterministic inputs, no <random> needed.
uint64_t next(uint64_t& s) {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1DULL;
}
}  // namespace

extern "C" {

// Every width in a list that covers partial and whole top words (33 to 704
// bits), every shift amount from 0 to width + 69 and the same with the
// MSB set, eight inputs per width (half with dirty bits above the width).
// Counts the comparisons in *cases; returns the number of mismatching
// output words (0 when the versions agree).
uint64_t offcard_fast_wide_selftest(uint64_t* cases) {
    static const int widths[] = {33, 40, 63, 64, 65, 95, 96, 97, 100, 127, 128, 129, 160, 200, 288, 319, 320, 321, 704};
    const int maxw = 32;
    uint64_t seed = 0x9E3779B97F4A7C15ULL, bad = 0, n = 0;
    for (int obits : widths) {
        const int words = VL_WORDS_I(obits);
        for (int rep = 0; rep < 8; ++rep) {
            EData in[maxw], a[maxw], b[maxw];
            for (int i = 0; i < maxw; ++i) in[i] = static_cast<EData>(next(seed) >> 32);
            if (rep & 1) in[words - 1] &= VL_MASK_E(obits);
            for (IData rd = 0; rd < static_cast<IData>(obits) + 70; ++rd) {
                for (IData r : {rd, rd | 0x80000000U}) {
                    for (int dir = 0; dir < 2; ++dir) {
                        for (int i = 0; i < maxw; ++i) a[i] = b[i] = 0xA5A5A5A5U;
                        if (dir == 0) {
                            (VL_SHIFTL_WWI)(obits, obits, 32, a, in, r);
                            offcard_shiftl_wwi(obits, obits, 32, b, in, r);
                        } else {
                            (VL_SHIFTR_WWI)(obits, obits, 32, a, in, r);
                            offcard_shiftr_wwi(obits, obits, 32, b, in, r);
                        }
                        for (int i = 0; i < maxw; ++i) bad += a[i] != b[i];
                        ++n;
                    }
                }
            }
        }
    }
    if (cases) *cases = n;
    return bad;
}

}
