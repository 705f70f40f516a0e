//! Hashes used for path selection: Toeplitz (the RSS hash NICs compute, so
//! the card's choice is reproducible with standard tools) and the CRCs
//! switch vendors use for ECMP.

/// Microsoft's RSS verification key, the card's Toeplitz key (`offcard_regs::net`).
pub use offcard_regs::net::RSS_KEY;

/// Toeplitz hash of `input` under `key` (key must be at least input + 4 bytes).
pub fn toeplitz(key: &[u8], input: &[u8]) -> u32 {
    assert!(key.len() >= input.len() + 4, "Toeplitz key too short for the input");
    let mut result = 0u32;
    let mut window = u32::from_be_bytes([key[0], key[1], key[2], key[3]]);
    for (i, &byte) in input.iter().enumerate() {
        for bit in (0..8).rev() {
            if byte >> bit & 1 == 1 {
                result ^= window;
            }
            // Shift the next key bit into the window.
            let next = key[i + 4] >> bit & 1;
            window = (window << 1) | next as u32;
        }
    }
    result
}

/// RSS input for IPv4 with ports: source address, destination address,
/// source port, destination port (network byte order).
pub fn rss_input_v4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    let mut v = Vec::with_capacity(12);
    v.extend_from_slice(&src);
    v.extend_from_slice(&dst);
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v
}

/// CRC-32 (IEEE 802.3, reflected, as in Ethernet FCS) with a seed.
pub fn crc32(seed: u32, data: &[u8]) -> u32 {
    let mut crc = !seed;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// CRC-16/CCITT (polynomial 0x1021, MSB first) with a seed as the initial value.
pub fn crc16_ccitt(seed: u16, data: &[u8]) -> u16 {
    let mut crc = seed;
    for &b in data {
        crc ^= (b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Microsoft's "Verifying the RSS Hash Calculation" IPv4 vectors:
    /// (destination, destination port, source, source port, IPv4 only, IPv4 with TCP).
    const VECTORS: [([u8; 4], u16, [u8; 4], u16, u32, u32); 3] = [
        ([161, 142, 100, 80], 1766, [66, 9, 149, 187], 2794, 0x323e8fc2, 0x51ccc178),
        ([65, 69, 140, 83], 4739, [199, 92, 111, 2], 14230, 0xd718262a, 0xc626b0ea),
        ([12, 22, 207, 184], 38024, [24, 19, 198, 95], 12898, 0xd2d0a5de, 0x5c2b394a),
    ];

    #[test]
    fn toeplitz_matches_microsoft_rss_verification_vectors() {
        for (dst, dport, src, sport, ip_only, with_tcp) in VECTORS {
            let mut ip = src.to_vec();
            ip.extend_from_slice(&dst);
            assert_eq!(toeplitz(&RSS_KEY, &ip), ip_only, "IPv4 only {dst:?}");
            assert_eq!(toeplitz(&RSS_KEY, &rss_input_v4(src, dst, sport, dport)), with_tcp, "IPv4+TCP {dst:?}");
        }
    }

    #[test]
    fn crcs_match_their_check_values() {
        // The catalogue "check" values: CRC of ASCII "123456789".
        assert_eq!(crc32(0, b"123456789"), 0xCBF4_3926);
        assert_eq!(crc16_ccitt(0xFFFF, b"123456789"), 0x29B1);
    }
}
