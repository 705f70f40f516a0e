//! A fast non-cryptographic 64-bit hash of a byte slice: the checksum of snapshot
//! files and the fingerprint of guest RAM. A leaf module (no crate imports), so that
//! `memory` and `snapshot` can both use it without importing each other.

/// Fast non-cryptographic 64-bit hash (4 lanes of multiply-xorshift over u64 words).
pub fn hash64(data: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = [0x243F_6A88_85A3_08D3u64, 0x1319_8A2E_0370_7344, 0xA409_3822_299F_31D0, 0x082E_FA98_EC4E_6C89];
    let chunks = data.chunks_exact(32);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..4 {
            let w = u64::from_le_bytes(c[l * 8..l * 8 + 8].try_into().unwrap());
            h[l] = (h[l] ^ w).wrapping_mul(K).rotate_left(29);
        }
    }
    let mut out = data.len() as u64;
    for (i, &b) in rest.iter().enumerate() {
        out ^= u64::from(b) << ((i % 8) * 8);
        out = out.wrapping_mul(K);
    }
    for x in h {
        out = (out ^ x).wrapping_mul(K).rotate_left(31);
    }
    out ^ (out >> 33)
}
