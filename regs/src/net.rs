//! Network constants shared by the card's pipelines (`offcard-hdl`), the
//! reference models (`offcard-net`) and the driver: each defined once, here.

/// Shortest inner frame the card sends (Ethernet minimum without FCS);
/// shorter lengths are padded with zeros.
pub const MIN_FRAME: usize = 60;
/// Longest frame (9 KiB jumbo) anywhere on the card: a TX descriptor may
/// send it, the encapsulation pipeline truncates beyond it, the DMA RX port
/// and the decapsulation pipeline drop anything longer.
pub const MAX_FRAME: usize = 9216;
/// IANA-assigned Geneve UDP port (RFC 8926).
pub const GENEVE_PORT: u16 = 6081;
/// Geneve protocol type for an Ethernet payload (Transparent Ethernet Bridging).
pub const PROTO_ETHERNET: u16 = 0x6558;
pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86DD;
pub const ETHERTYPE_VLAN: u16 = 0x8100;
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// Outer headers the card adds and strips: Ethernet 14 + IPv4 20 + UDP 8 + Geneve 8.
pub const OVERHEAD: usize = 50;
/// Microsoft's RSS verification key (40 bytes), the key of the card's
/// Toeplitz path hash (and the default of many NICs).
pub const RSS_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb,
    0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];
/// The card's clock: the 64-bit TLP stream at 125 MHz carries 8 Gb/s.
/// Simulated time (timeouts of the simulated card, pcap timestamps) counts
/// cycles of this clock.
pub const CARD_CLOCK_HZ: u64 = 125_000_000;
