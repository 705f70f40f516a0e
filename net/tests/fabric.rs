//! The fabric model hashes like a switch, keeps flows on their path, makes
//! spraying balanced and per-flow hashing maximally unbalanced for one
//! flow, reorders only when paths differ, keeps traffic off a bad path, and
//! writes captures standard tools read.
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use offcard_net::fabric::*;
use offcard_net::geneve::{encapsulate, GENEVE_PORT};
use offcard_net::hash::{crc16_ccitt, crc32};
use offcard_net::workload::*;
use std::collections::HashSet;

fn tuple(sport: u16) -> FiveTuple {
    FiveTuple { src: [192, 168, 0, 1], dst: [192, 168, 1, 1], proto: 17, sport, dport: GENEVE_PORT }
}

fn quick_elephant() -> Workload {
    Workload::elephant(8_000, 1500)
}

#[test]
fn hashes_are_the_catalogue_crcs_over_the_5_tuple_in_header_order() {
    // Catalogue check values (CRC of ASCII "123456789"): CRC-16/CCITT-FALSE
    // (init 0xFFFF), CRC-16/XMODEM (init 0), CRC-32/ISO-HDLC.
    assert_eq!(crc16_ccitt(0xFFFF, b"123456789"), 0x29B1);
    assert_eq!(crc16_ccitt(0x0000, b"123456789"), 0x31C3);
    assert_eq!(crc32(0, b"123456789"), 0xCBF4_3926);
    // The hash input is the header fields in order, as parsed from a real
    // packet: addresses, protocol, ports.
    let ctx = RunConfig::default().ctx;
    let pkt = encapsulate(&[0u8; 60], &ctx, 50_000);
    let t = FiveTuple::parse(&pkt).unwrap();
    assert_eq!(t, FiveTuple { src: ctx.outer_src_ip, dst: ctx.outer_dst_ip, proto: 17, sport: 50_000, dport: GENEVE_PORT });
    let b = t.bytes();
    assert_eq!(&b[0..4], &pkt[26..30]);
    assert_eq!(&b[4..8], &pkt[30..34]);
    assert_eq!(b[8], pkt[23]);
    assert_eq!(&b[9..13], &pkt[34..38]);
    let s16 = EcmpSwitch { algo: HashAlgo::Crc16Ccitt, seed: 0xBEEF, shift: 0, fanout: 8 };
    assert_eq!(s16.hash(&t), crc16_ccitt(0xBEEF, &b) as u32);
    assert_eq!(s16.pick(&t), crc16_ccitt(0xBEEF, &b) as usize % 8);
    let s32 = EcmpSwitch { algo: HashAlgo::Crc32, seed: 7, shift: 4, fanout: 6 };
    assert_eq!(s32.pick(&t), (crc32(7, &b) >> 4) as usize % 6);
}

#[test]
fn the_5_tuple_parser_handles_vlan_options_fragments_and_other_protocols() {
    let ctx = RunConfig::default().ctx;
    let pkt = encapsulate(&[0u8; 60], &ctx, 50_000);
    let plain = FiveTuple::parse(&pkt).unwrap();
    // An 802.1Q tag between the MACs and the EtherType.
    let mut tagged = pkt[..12].to_vec();
    tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x2a]);
    tagged.extend_from_slice(&pkt[12..]);
    assert_eq!(FiveTuple::parse(&tagged), Some(plain));
    // IPv4 options (IHL 6): the ports are found after them.
    let mut opts = pkt[..14].to_vec();
    opts.push(0x46);
    opts.extend_from_slice(&pkt[15..34]);
    opts.extend_from_slice(&[1, 1, 1, 0]); // NOP, NOP, NOP, EOL
    opts.extend_from_slice(&pkt[34..]);
    assert_eq!(FiveTuple::parse(&opts), Some(plain));
    // A later fragment carries no ports: switches hash it with ports 0.
    let mut frag = pkt.clone();
    frag[20] = 0x00;
    frag[21] = 0x10;
    assert_eq!(FiveTuple::parse(&frag), Some(FiveTuple { sport: 0, dport: 0, ..plain }));
    // ICMP: no ports either.
    let mut icmp = pkt.clone();
    icmp[23] = 1;
    assert_eq!(FiveTuple::parse(&icmp), Some(FiveTuple { proto: 1, sport: 0, dport: 0, ..plain }));
    // Not IPv4, or cut inside the headers: nothing to hash.
    let mut v6 = pkt.clone();
    v6[12..14].copy_from_slice(&[0x86, 0xdd]);
    assert_eq!(FiveTuple::parse(&v6), None);
    assert_eq!(FiveTuple::parse(&pkt[..36]), None);
}

#[test]
fn the_seed_changes_the_mapping() {
    let a = EcmpSwitch { algo: HashAlgo::Crc32, seed: 1, shift: 0, fanout: 8 };
    let b = EcmpSwitch { seed: 2, ..a };
    let differ = (49152..50176u16).filter(|&p| a.pick(&tuple(p)) != b.pick(&tuple(p))).count();
    assert!(differ > 0, "a per-switch seed must change which path a tuple takes");
}

#[test]
fn the_same_5_tuple_always_takes_the_same_path() {
    let mut fabric = Fabric::new(FabricConfig::default_8_paths());
    let ctx = RunConfig::default().ctx;
    for port in [49152u16, 50000, 61234, 65535] {
        let mut paths = HashSet::new();
        for (i, len) in [60usize, 200, 1500, 9000, 64].iter().enumerate() {
            let inner: Vec<u8> = (0..*len).map(|b| (b * 7 + i) as u8).collect();
            let pkt = encapsulate(&inner, &ctx, port);
            paths.insert(fabric.path_of(&pkt).unwrap());
            match fabric.send(i as u64 * 1_000_000, &pkt) {
                SendOutcome::Queued { path } | SendOutcome::Dropped { path } => paths.insert(path),
                SendOutcome::Malformed => panic!("a Geneve packet is well-formed"),
            };
        }
        assert_eq!(paths.len(), 1, "port {port}: payload, size or time changed the path");
        assert_eq!(paths.into_iter().next().unwrap(), fabric.path_of_tuple(&tuple(port)));
    }
}

#[test]
fn a_packet_alone_takes_serialization_plus_propagation_on_each_link() {
    let cfg = FabricConfig::default_8_paths();
    let mut fabric = Fabric::new(cfg.clone());
    let pkt = encapsulate(&[0u8; 1450], &RunConfig::default().ctx, 49152);
    assert_eq!(pkt.len(), 1500);
    let SendOutcome::Queued { path } = fabric.send(1_000, &pkt) else { panic!("not queued") };
    let mut rx = Loopback::default();
    fabric.finish(&mut rx).unwrap();
    // 1500 B at 12.5 B/ns = 120 ns, 500 ns cable, 1500 B at 3.125 B/ns =
    // 480 ns, then the path's propagation delay.
    let expect = 1_000 + 120_000 + 500_000 + 480_000 + (cfg.paths[path].delay_ns * 1000.0) as u64;
    assert_eq!(rx.packets.len(), 1);
    assert_eq!((rx.packets[0].0, rx.packets[0].1), (expect, path));
    assert_eq!(rx.packets[0].2, pkt);
}

#[test]
fn non_ipv4_frames_are_dropped_and_counted() {
    let mut fabric = Fabric::new(FabricConfig::default_8_paths());
    let mut arp = vec![0xffu8; 6];
    arp.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06]);
    arp.resize(60, 0);
    assert_eq!(fabric.path_of(&arp), None);
    assert_eq!(fabric.send(0, &arp), SendOutcome::Malformed);
    assert_eq!(fabric.send(0, &arp[..10]), SendOutcome::Malformed);
    assert_eq!((fabric.malformed(), fabric.sent(), fabric.in_flight()), (2, 0, 0));
}

#[test]
fn discovery_finds_ports_that_really_land_on_each_path() {
    let fabric = Fabric::new(FabricConfig::default_8_paths());
    let ctx = RunConfig::default().ctx;
    let ports = discover_path_table(&fabric, &ctx).expect("every path reachable");
    assert_eq!(ports.len(), 8);
    for (i, &p) in ports.iter().enumerate() {
        assert!(EPHEMERAL_PORTS.contains(&p));
        assert_eq!(fabric.path_of(&encapsulate(&[0u8; 100], &ctx, p)), Some(i));
    }
    let several = discover_entropy(8, 4, EPHEMERAL_PORTS, |p| Some(fabric.path_of_tuple(&tuple(p)))).unwrap();
    for (i, ps) in several.iter().enumerate() {
        assert_eq!(ps.len(), 4);
        assert!(ps.iter().all(|&p| fabric.path_of_tuple(&tuple(p)) == i));
    }
}

#[test]
fn two_tiers_with_the_same_crc_polarize_and_discovery_says_so() {
    // CRCs are affine: the same CRC under two seeds differs by a constant
    // for inputs of one length, so a spine using the same CRC (and bits) as
    // the leaf makes the same choice again: 4 of 8 paths are unreachable.
    let mut cfg = FabricConfig::default_8_paths();
    cfg.tiers[0].algo = HashAlgo::Crc32;
    let fabric = Fabric::new(cfg.clone());
    let reached: HashSet<usize> = EPHEMERAL_PORTS.map(|p| fabric.path_of_tuple(&tuple(p))).collect();
    assert_eq!(reached.len(), 4, "same-CRC tiers should polarize");
    let missing = discover_path_table(&fabric, &RunConfig::default().ctx).unwrap_err();
    assert_eq!(missing.len(), 4);
    assert!(missing.iter().all(|p| !reached.contains(p)));
    // Taking the spine's bits from elsewhere in the hash (vendors' hash
    // bit selection) restores all 8 paths.
    cfg.tiers[1].shift = 16;
    let fabric = Fabric::new(cfg);
    assert!(discover_path_table(&fabric, &RunConfig::default().ctx).is_ok());
}

#[test]
fn per_flow_puts_one_flow_on_one_path() {
    let f = run_perflow(&quick_elephant(), &RunConfig::default(), &mut ReferenceSelector::default()).unwrap();
    assert_eq!(f.max_mean, 8.0, "{:?}", f.path_packets);
    assert_eq!(f.jain, 1.0 / 8.0);
    assert_eq!(f.path_packets.iter().filter(|&&p| p > 0).count(), 1);
    assert_eq!(f.sent, 8_000);
    // 50 Gb/s into one 25 Gb/s path overflows its buffer.
    assert!(f.dropped > 0);
    assert_eq!(f.received + f.dropped, f.sent);
    assert_eq!(f.reordered_ratio, 0.0);
}

#[test]
fn spraying_over_discovered_ports_balances_one_flow() {
    let f = run_spray(&quick_elephant(), &RunConfig::default(), &mut ReferenceSelector::default()).unwrap();
    assert!(f.max_mean <= 1.05, "max/mean {} {:?}", f.max_mean, f.path_packets);
    assert!(f.jain >= 0.98, "Jain {}", f.jain);
    assert_eq!((f.dropped, f.received, f.undecodable), (0, 8_000, 0));
}

#[test]
fn spraying_over_undiscovered_ports_is_only_as_good_as_their_collisions() {
    // Without discovery the table's 8 ports land where the hash puts them;
    // the load follows how many table entries share each path.
    let cfg = RunConfig::default();
    let fabric = Fabric::new(cfg.fabric.clone());
    let mut entries_per_path = [0u64; 8];
    for p in arbitrary_ports(8) {
        entries_per_path[fabric.path_of_tuple(&tuple(p))] += 1;
    }
    let f = run_case(&quick_elephant(), Case::SprayUndiscovered, &cfg, &mut ReferenceSelector::default()).unwrap();
    assert_eq!(f.ports, arbitrary_ports(8));
    // Round-robin over the table: each entry gets 1/8 of the packets.
    let expect: Vec<u64> = entries_per_path.iter().map(|&e| e * 1_000).collect();
    assert_eq!(f.path_packets, expect);
    assert_eq!(f.max_mean, *entries_per_path.iter().max().unwrap() as f64);
}

#[test]
fn sending_continues_after_finish() {
    let mut fabric = Fabric::new(FabricConfig::default_8_paths());
    let pkt = encapsulate(&[0u8; 100], &RunConfig::default().ctx, 50_000);
    let mut rx = Loopback::default();
    fabric.send(0, &pkt);
    fabric.finish(&mut rx).unwrap();
    fabric.send(10, &pkt);
    fabric.finish(&mut rx).unwrap();
    assert_eq!(rx.packets.len(), 2);
    assert!(rx.packets[1].0 > rx.packets[0].0);
}

#[test]
fn unequal_delays_reorder_sprayed_packets_but_not_a_per_flow_path() {
    let cfg = RunConfig::default();
    assert!(cfg.fabric.paths.windows(2).any(|w| w[0].delay_ns != w[1].delay_ns));
    let spray = run_spray(&quick_elephant(), &cfg, &mut ReferenceSelector::default()).unwrap();
    assert!(spray.reordered_ratio > 0.0);
    assert!(spray.reorder_buffer_max > 0);
    let per_flow = run_perflow(&quick_elephant(), &cfg, &mut ReferenceSelector::default()).unwrap();
    assert_eq!((per_flow.reordered_ratio, per_flow.reorder_buffer_max), (0.0, 0));
}

#[test]
fn equal_paths_without_queueing_do_not_reorder_sprayed_packets() {
    // The reordering comes from the paths differing: with equal delays and
    // paths fast enough never to queue, spraying keeps order.
    let mut cfg = RunConfig::default();
    for p in &mut cfg.fabric.paths {
        *p = LinkConfig::new(100.0, 2000.0, 1 << 20);
    }
    let f = run_spray(&quick_elephant(), &cfg, &mut ReferenceSelector::default()).unwrap();
    assert_eq!(f.max_mean, 1.0);
    assert_eq!((f.reordered_ratio, f.reorder_buffer_max), (0.0, 0));
}

#[test]
fn a_path_marked_bad_gets_no_traffic() {
    let cfg = RunConfig::default();
    for w in [quick_elephant(), Workload::small_flows(500, 420.0, 9)] {
        let f = run_spray_bad_path(&w, &cfg, &mut ReferenceSelector::default()).unwrap();
        assert_eq!(f.path_packets[cfg.bad_path], 0, "{}: {:?}", w.name, f.path_packets);
        assert_eq!(f.dropped, 0);
        assert_eq!(f.received, w.packets.len() as u64);
        assert!(f.path_packets.iter().enumerate().all(|(i, &p)| i == cfg.bad_path || p > 0));
    }
}

#[test]
fn the_selector_is_pluggable() {
    // A closure that always picks one port: everything on that port's path.
    let cfg = RunConfig::default();
    let fabric = Fabric::new(cfg.fabric.clone());
    let ports = discover_path_table(&fabric, &cfg.ctx).unwrap();
    let mut seen_tenant = None;
    let f = {
        let mut sel = FnSelector(|tenant: u32, _: &offcard_net::geneve::FlowKey, inner: &[u8], _: u64| {
            seen_tenant = Some(tenant);
            assert!(parse_inner(inner).is_some(), "the selector sees the real inner frame");
            ports[5]
        });
        run_spray(&Workload::long_flows(16, 1_600, 1500), &cfg, &mut sel).unwrap()
    };
    assert_eq!(f.path_packets.iter().enumerate().filter(|(_, &p)| p > 0).map(|(i, _)| i).collect::<Vec<_>>(), vec![5]);
    assert_eq!(seen_tenant, Some(cfg.tenant));
}

/// Records of a classic pcap file: (seconds, microseconds, bytes).
fn pcap_records(path: &std::path::Path) -> Vec<(u32, u32, Vec<u8>)> {
    let d = std::fs::read(path).unwrap();
    assert_eq!(&d[0..4], &0xa1b2_c3d4u32.to_le_bytes(), "pcap magic");
    assert_eq!(u32::from_le_bytes(d[20..24].try_into().unwrap()), 1, "Ethernet link type");
    let mut off = 24;
    let mut out = vec![];
    while off < d.len() {
        let w = |i: usize| u32::from_le_bytes(d[off + i..off + i + 4].try_into().unwrap());
        let (sec, usec, incl, orig) = (w(0), w(4), w(8) as usize, w(12) as usize);
        assert_eq!(incl, orig);
        out.push((sec, usec, d[off + 16..off + 16 + incl].to_vec()));
        off += 16 + incl;
    }
    assert_eq!(off, d.len(), "trailing bytes");
    out
}

#[test]
fn captures_parse_with_etherparse() {
    let dir = std::env::temp_dir().join(format!("offcard-fabric-{}", std::process::id()));
    let cfg = RunConfig { capture_dir: Some(dir.clone()), ..RunConfig::default() };
    let w = Workload::long_flows(4, 400, 700);
    let f = run_spray(&w, &cfg, &mut ReferenceSelector::default()).unwrap();
    let mut total = 0;
    for path in 0..8 {
        let recs = pcap_records(&dir.join(format!("path{path}.pcap")));
        assert_eq!(recs.len() as u64, f.path_packets[path] - f.path_dropped[path]);
        total += recs.len();
        for (_, _, pkt) in &recs {
            let s = SlicedPacket::from_ethernet(pkt).expect("etherparse rejects a captured packet");
            let Some(NetSlice::Ipv4(_)) = s.net else { panic!("not IPv4") };
            let Some(TransportSlice::Udp(udp)) = s.transport else { panic!("not UDP") };
            assert_eq!(udp.destination_port(), GENEVE_PORT);
            assert_eq!(udp.source_port(), f.ports[path], "a packet in path {path}'s capture has another path's port");
        }
    }
    let rx = pcap_records(&dir.join("rx.pcap"));
    assert_eq!((rx.len(), total as u64), (f.received as usize, f.received));
    let times: Vec<u64> = rx.iter().map(|(s, u, _)| *s as u64 * 1_000_000 + *u as u64).collect();
    assert!(times.windows(2).all(|t| t[0] <= t[1]), "receiver capture not in arrival order");
    for (_, _, pkt) in &rx {
        let s = SlicedPacket::from_ethernet(pkt).unwrap();
        let Some(TransportSlice::Udp(udp)) = s.transport else { panic!("not UDP") };
        // The Geneve payload carries the inner frame with its stamp.
        let inner = &udp.payload()[8..];
        let (flow, seq, _) = parse_inner(inner).unwrap();
        assert!(flow < 4 && seq < 100);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bench_json_has_the_issue_keys_and_agrees_with_the_runs() {
    let b = run_bench(BenchSpec::quick(), &RunConfig::default(), &mut || Box::new(ReferenceSelector::default())).unwrap();
    let j = figures_json(&b);
    for k in [
        "single_flow_max_mean_spray",
        "single_flow_max_mean_perflow",
        "single_flow_jain_spray",
        "single_flow_jain_perflow",
        "flows16_max_mean_spray",
        "flows16_jain_perflow",
        "small_flows_max_mean_flowlet",
        "small_flows_jain_spray_bad",
        "single_flow_reordered_ratio_spray",
        "single_flow_reorder_buffer_spray",
    ] {
        assert!(j.contains_key(k), "missing {k}");
    }
    assert_eq!(b.runs.len(), 15);
    for f in &b.runs {
        let key = format!("{}_max_mean_{}", f.workload, f.case.key());
        assert!((j[&key].as_f64().unwrap() - f.max_mean).abs() < 1e-4, "{key}");
    }
    assert_eq!(j["single_flow_max_mean_perflow"].as_f64(), Some(8.0));
    assert!(j["single_flow_max_mean_spray"].as_f64().unwrap() <= 1.05);
}
