//! The reference model's output is what standard parsers accept: random
//! inner frames (sizes, VLAN or not, IPv4/IPv6, TCP/UDP/other) encapsulate
//! into packets etherparse reads as Geneve over UDP/IPv4 with a correct
//! header checksum, and decapsulate back; corrupted packets are dropped for
//! the right reason.
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use offcard_net::geneve::*;
use offcard_net::path::{flow_hash, flow_key_hash, PathTable, Policy, Selector};
use offcard_net::pcap::PcapWriter;
use rand::{rngs::SmallRng, Rng, SeedableRng};

fn inner_frame(rng: &mut SmallRng) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
    if rng.gen() {
        f.extend_from_slice(&[0x81, 0x00, 0x00, rng.gen_range(1..100)]);
    }
    let v6 = rng.gen_bool(0.3);
    let proto = [6u8, 17, 1][rng.gen_range(0..3)];
    let payload_len = rng.gen_range(0..1400);
    let l4_len = if proto == 1 { 8 } else if proto == 6 { 20 } else { 8 };
    let mut l4 = vec![0u8; l4_len];
    if proto != 1 {
        l4[0..2].copy_from_slice(&rng.gen::<u16>().to_be_bytes());
        l4[2..4].copy_from_slice(&rng.gen::<u16>().to_be_bytes());
    }
    if proto == 6 {
        l4[12] = 0x50;
    }
    if proto == 17 {
        l4[4..6].copy_from_slice(&((8 + payload_len) as u16).to_be_bytes());
    }
    if v6 {
        f.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
        let mut ip = vec![0u8; 40];
        ip[0] = 0x60;
        ip[4..6].copy_from_slice(&((l4_len + payload_len) as u16).to_be_bytes());
        ip[6] = proto;
        ip[7] = 64;
        rng.fill(&mut ip[8..40]);
        f.extend(ip);
    } else {
        f.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        let mut ip = vec![0u8; 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&((20 + l4_len + payload_len) as u16).to_be_bytes());
        ip[8] = 64;
        ip[9] = proto;
        rng.fill(&mut ip[12..20]);
        let ck = internet_checksum(&ip);
        ip[10..12].copy_from_slice(&ck.to_be_bytes());
        f.extend(ip);
    }
    f.extend(l4);
    f.extend((0..payload_len).map(|_| rng.gen::<u8>()));
    f
}

fn ctx(vni: u32) -> TunnelContext {
    TunnelContext {
        vni,
        outer_src_mac: [0x02, 0xaa, 0, 0, 0, 1],
        next_hop_mac: [0x02, 0xbb, 0, 0, 0, 2],
        outer_src_ip: [10, 0, 0, 1],
        outer_dst_ip: [10, 0, 1, 7],
        ttl: 64,
    }
}

#[test]
fn encapsulated_frames_parse_as_geneve_and_round_trip() {
    let mut rng = SmallRng::seed_from_u64(6081);
    let path = std::env::temp_dir().join(format!("offcard-ref-{}.pcap", std::process::id()));
    let mut pcap = PcapWriter::new(std::fs::File::create(&path).unwrap()).unwrap();
    let mut sel = Selector::default();
    let table = PathTable::spread(0);
    for i in 0..500u64 {
        let inner = inner_frame(&mut rng);
        let vni = rng.gen_range(0..1 << 24);
        let flow = flow_key(&inner).expect("generated frames are IP");
        let port = sel.pick(0, Policy::PerFlow, &table, flow_key_hash(&flow), i as u32 * 1000).port;
        assert_eq!(flow_hash(&inner), flow_key_hash(&flow));
        let pkt = encapsulate(&inner, &ctx(vni), port);
        pcap.packet(i * 1000, &pkt).unwrap();
        let s = SlicedPacket::from_ethernet(&pkt).expect("etherparse rejects the outer headers");
        let Some(NetSlice::Ipv4(ip)) = s.net else { panic!("outer is not IPv4") };
        let h = ip.header().to_header();
        assert_eq!(h.header_checksum, h.calc_header_checksum(), "outer IPv4 checksum");
        assert_eq!(h.total_len as usize, pkt.len() - 14);
        let Some(TransportSlice::Udp(udp)) = s.transport else { panic!("outer is not UDP") };
        assert_eq!(udp.destination_port(), GENEVE_PORT);
        assert_eq!(udp.source_port(), port);
        assert_eq!(udp.length() as usize, pkt.len() - 34);
        let (v, back) = decapsulate(&pkt).unwrap();
        assert_eq!((v, back), (vni, &inner[..]));
    }
    drop(pcap);
    assert!(std::fs::metadata(&path).unwrap().len() > 24 + 500 * 16);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn corrupted_packets_are_dropped_for_the_right_reason() {
    let mut rng = SmallRng::seed_from_u64(1);
    let inner = inner_frame(&mut rng);
    let good = encapsulate(&inner, &ctx(42), 50000);
    let mut cases: Vec<(Vec<u8>, DropReason)> = vec![];
    cases.push((good[..40].to_vec(), DropReason::Truncated));
    let mut p = good.clone();
    p[12] = 0x86;
    cases.push((p, DropReason::NotIpv4));
    let mut p = good.clone();
    p[14] = 0x46;
    cases.push((p, DropReason::BadIpHeader));
    let mut p = good.clone();
    p[22] ^= 1; // TTL changed, checksum not
    cases.push((p, DropReason::BadChecksum));
    let mut p = good.clone();
    p[37] ^= 1;
    cases.push((p, DropReason::NotGeneve));
    let mut p = good.clone();
    p[42] = 0x40;
    cases.push((p, DropReason::BadGeneve));
    let p = good[..good.len() - 1].to_vec();
    cases.push((p, DropReason::BadLength));
    for (p, why) in cases {
        assert_eq!(decapsulate(&p).err(), Some(why));
    }
}

#[test]
fn spray_spreads_one_flow_and_health_avoids_bad_paths() {
    let mut rng = SmallRng::seed_from_u64(2);
    let h = flow_key_hash(&flow_key(&inner_frame(&mut rng)).unwrap());
    let mut table = PathTable::spread(7);
    let mut sel = Selector::default();
    let per_flow: std::collections::HashSet<u16> =
        (0..100).map(|t| sel.pick(0, Policy::PerFlow, &table, h, t).port).collect();
    assert_eq!(per_flow.len(), 1, "per-flow must keep a flow on one path");
    let spray: Vec<usize> = (0..16).map(|t| sel.pick(0, Policy::Spray, &table, h, t).path).collect();
    for w in spray.windows(2) {
        assert_eq!(w[1], (w[0] + 1) % 8, "spray walks the paths in order: {spray:?}");
    }
    table.bad = 1 << 3 | 1 << 4;
    let spray: Vec<usize> = (0..18).map(|t| sel.pick(0, Policy::Spray, &table, h, t).path).collect();
    assert!(spray.iter().all(|&p| p != 3 && p != 4), "bad paths used: {spray:?}");
    assert_eq!(spray.iter().collect::<std::collections::HashSet<_>>().len(), 6, "every healthy path used");
    // Per-flow moves off a bad base path, and back when it recovers.
    let base = (h & 7) as usize;
    table.bad = 1 << base;
    assert_eq!(sel.pick(0, Policy::PerFlow, &table, h, 0).path, (base + 1) % 8);
    table.bad = 0;
    assert_eq!(sel.pick(0, Policy::PerFlow, &table, h, 0).path, base);
    let fl = Policy::Flowlet { gap_cycles: 1000 };
    let mut sel = Selector::default();
    let a = sel.pick(0, fl, &table, h, 10);
    let b = sel.pick(0, fl, &table, h, 500);
    let c = sel.pick(0, fl, &table, h, 1600);
    assert_eq!(a.port, b.port, "within a flowlet the path stays");
    assert!(!b.repicked && c.repicked);
    assert_ne!(b.port, c.port, "after an idle gap the flowlet moves");
    // Another tenant's identical flow has its own slot.
    assert_eq!(sel.pick(1, fl, &table, h, 900).path, base);
}

#[test]
fn non_ip_frames_hash_on_their_mac_addresses() {
    let mut f = vec![0u8; 60];
    f[..12].copy_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]);
    f[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
    assert!(flow_key(&f).is_none());
    assert_eq!(flow_hash(&f), offcard_net::hash::toeplitz(&offcard_net::hash::RSS_KEY, &f[..12]));
    let mut g = f.clone();
    g[5] = 9;
    assert_ne!(flow_hash(&f), flow_hash(&g));
}

#[test]
fn options_keep_the_packet_standard_and_receive_applies_card_limits() {
    let mut rng = SmallRng::seed_from_u64(3);
    let inner = inner_frame(&mut rng);
    let good = encapsulate(&inner, &ctx(7), 1234);
    for words in [1usize, 2, 17, 63] {
        let opts: Vec<u8> = (0..4 * words).map(|_| rng.gen()).collect();
        let p = add_options(&good, &opts);
        assert_eq!(p.len(), good.len() + 4 * words);
        let s = SlicedPacket::from_ethernet(&p).expect("etherparse reads the packet with options");
        let Some(NetSlice::Ipv4(ip)) = s.net else { panic!("outer is not IPv4") };
        let h = ip.header().to_header();
        assert_eq!(h.header_checksum, h.calc_header_checksum(), "checksum fixed after options");
        assert_eq!(h.total_len as usize, p.len() - 14);
        let Some(TransportSlice::Udp(udp)) = s.transport else { panic!("outer is not UDP") };
        assert_eq!(udp.length() as usize, p.len() - 34);
        assert_eq!(p[42] & 0x3f, words as u8);
        assert_eq!(decapsulate(&p).unwrap(), (7, &inner[..]));
        // Ethernet padding after the IPv4 total length is removed.
        let mut padded = p.clone();
        padded.extend_from_slice(&[0xee; 9]);
        assert_eq!(decapsulate(&padded).unwrap(), (7, &inner[..]));
    }
    let table = |vni: u32| (vni == 7).then_some(("tenant", 2u8));
    assert_eq!(receive(&good, inner.len(), table).unwrap(), (("tenant", 2), &inner[..]));
    assert_eq!(receive(&good, inner.len() - 1, table).err(), Some(DropReason::TooLong));
    let other = encapsulate(&inner, &ctx(8), 1234);
    assert_eq!(receive(&other, inner.len(), table).err(), Some(DropReason::UnknownVni));
    // Too long is checked before the VNI: the card's order.
    assert_eq!(receive(&other, 13, table).err(), Some(DropReason::TooLong));
    // Options that leave less than an inner Ethernet header are bad Geneve.
    let short = encapsulate(&inner[..14], &ctx(7), 1);
    assert!(decapsulate(&short).is_ok());
    let mut p = short.clone();
    p[42] = 1;
    assert_eq!(decapsulate(&p).err(), Some(DropReason::BadGeneve));
    // A total length below the headers is a bad length, not a panic.
    let mut p = good.clone();
    p[16] = 0;
    p[17] = 10;
    fix_ip_checksum(&mut p);
    assert_eq!(decapsulate(&p).err(), Some(DropReason::BadLength));
}

/// `mapping_key` is the inner destination etherparse reads: the IPv4
/// destination, or the XOR of the IPv6 destination's four words; VLAN or
/// not; nothing for non-IP frames.
#[test]
fn mapping_key_is_the_inner_destination_etherparse_reads() {
    use offcard_net::tx::mapping_key;
    let mut rng = SmallRng::seed_from_u64(10);
    let (mut n4, mut n6) = (0, 0);
    for _ in 0..400 {
        let f = inner_frame(&mut rng);
        let s = SlicedPacket::from_ethernet(&f).expect("etherparse rejects the inner frame");
        let want = match s.net {
            Some(NetSlice::Ipv4(ip)) => {
                n4 += 1;
                u32::from_be_bytes(ip.header().destination())
            }
            Some(NetSlice::Ipv6(ip)) => {
                n6 += 1;
                let d = ip.header().destination();
                (0..4).fold(0, |k, i| k ^ u32::from_be_bytes(d[4 * i..4 * i + 4].try_into().unwrap()))
            }
            _ => panic!("inner_frame makes IP frames"),
        };
        assert_eq!(mapping_key(&f), Some(want));
    }
    assert!(n4 > 100 && n6 > 50);
    let mut arp = vec![0u8; 60];
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    assert_eq!(mapping_key(&arp), None);
    arp[12..16].copy_from_slice(&[0x81, 0x00, 0x00, 0x05]);
    arp[16..18].copy_from_slice(&0x0806u16.to_be_bytes());
    assert_eq!(mapping_key(&arp), None);
    assert_eq!(mapping_key(&[0u8; 10]), None);
}
