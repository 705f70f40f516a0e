//! The Geneve encapsulation block on its own (Verilated), against the
//! reference model `offcard_net::tx::transmit`: random frames agree byte for
//! byte, every path policy behaves, the output parses as Geneve, and
//! back-to-back frames leave with no idle cycle between them. With the
//! Verilated tagged cache attached to the map port: mapping lookups agree
//! with the reference driven by `CacheModel`, misses reach the miss port,
//! answered misses hit, tenants never share mappings, full rate holds.
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use offcard_hdl::regmap::encap;
use offcard_net::geneve::GENEVE_PORT;
use offcard_net::path::Policy;
use offcard_net::pcap::PcapWriter;
use offcard_net::tx::{mapping_key, normalize, TxResult, TxTenant, MAX_FRAME, MIN_FRAME};
use offcard_sim::{BlockSim, VerilatedBlock};
use offcard_testbench::cache_model::CacheModel;
use offcard_testbench::encap_bench::*;
use rand::{rngs::SmallRng, Rng, SeedableRng};
use std::collections::HashMap;

fn bench() -> EncapBench<VerilatedBlock> {
    EncapBench::new(VerilatedBlock::new("geneve_encap"))
}

/// Compare the card's packets with the reference's, in order (dropped
/// frames produce none).
fn check_against_reference(got: &[Vec<u8>], want: &[TxResult]) {
    let want: Vec<&Vec<u8>> = want.iter().filter_map(|w| w.packet.as_ref()).collect();
    assert_eq!(got.len(), want.len(), "number of frames out");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if g != w {
            let at = g.iter().zip(w.iter()).position(|(a, b)| a != b).unwrap_or(g.len().min(w.len()));
            panic!("frame {i}: {} bytes vs reference {}; first difference at byte {at}", g.len(), w.len());
        }
    }
}

/// Policy, hash and path of the reference's pick, for the policy tests.
fn ports(r: &[TxResult]) -> Vec<u16> {
    r.iter().filter_map(|x| x.pick.map(|p| p.port)).collect()
}

fn card_ports(packets: &[Vec<u8>]) -> Vec<u16> {
    packets.iter().map(|p| u16::from_be_bytes([p[34], p[35]])).collect()
}

#[test]
fn random_frames_match_the_reference_byte_for_byte_and_parse_as_geneve() {
    let mut rng = SmallRng::seed_from_u64(8926);
    let mut tenants: Vec<TxTenant> = (0..16)
        .map(|t| {
            let policy = match t % 4 {
                0 => Policy::PerFlow,
                1 => Policy::Flowlet { gap_cycles: 300 },
                2 => Policy::Spray,
                _ => Policy::PerFlow,
            };
            test_tenant(t, policy)
        })
        .collect();
    tenants[3].paths.bad = 0b0010_0101;
    tenants[6].paths.bad = 0b1111_1110;
    tenants[7].enabled = false;
    let mut b = bench();
    for (t, cfg) in tenants.iter().enumerate() {
        b.program_tenant(t, cfg);
    }
    let mut frames = vec![];
    for i in 0..400 {
        let len = match rng.gen_range(0..10) {
            0 => rng.gen_range(1000..=MAX_FRAME),
            1 | 2 => rng.gen_range(100..1000),
            _ => rng.gen_range(MIN_FRAME..100),
        };
        let data = random_frame(&mut rng, len);
        let mut f = TxFrame::new(rng.gen_range(0..8), data);
        // Some descriptors disagree with the data, or are out of range.
        match i % 23 {
            5 => f.in_len = f.data.len() + rng.gen_range(1..40),
            9 => f.in_len = f.data.len().saturating_sub(rng.gen_range(1..30)),
            13 => f.in_len = rng.gen_range(0..MIN_FRAME),
            17 => f.in_len = rng.gen_range(MAX_FRAME + 1..16384),
            20 => {
                // A runt: padded to the minimum.
                let n = rng.gen_range(1..MIN_FRAME);
                f.data = random_frame(&mut rng, n);
                f.in_len = f.data.len();
            }
            _ => {}
        }
        if i % 50 == 0 {
            f.gap_before = rng.gen_range(100..800);
        }
        frames.push(f);
    }
    let mut model = EncapModel::new(tenants.clone());
    let n_out = frames.iter().filter(|f| tenants[f.tenant].enabled).count();
    let opts = RunOpts { in_idle: 0.1, out_stall: 0.2, seed: 3, sideband_noise: true, ..Default::default() };
    let r = b.run(&frames, n_out, opts);
    let want = model.expect(&frames, &r.start_times);
    check_against_reference(&r.packets, &want);

    // The counters agree with what the reference saw.
    let count = |f: &dyn Fn(&TxResult) -> bool| want.iter().filter(|w| f(w)).count() as u32;
    assert_eq!(b.read_reg(encap::CNT_FRAMES_OUT), n_out as u32);
    assert_eq!(b.read_reg(encap::CNT_DROP_DISABLED), count(&|w| w.packet.is_none()));
    assert_eq!(b.read_reg(encap::CNT_LEN_MISMATCH), count(&|w| w.length_mismatch));
    assert_eq!(b.read_reg(encap::CNT_LEN_CLAMPED), count(&|w| w.length_clamped));
    assert_eq!(b.read_reg(encap::CNT_FLOWLET_REPICK), count(&|w| w.pick.is_some_and(|p| p.repicked)));
    assert_eq!(b.read_reg(encap::CNT_BAD_PATH_AVOIDED), count(&|w| w.pick.is_some_and(|p| p.avoided_bad)));
    assert!(count(&|w| w.length_mismatch) > 10 && count(&|w| w.length_clamped) > 10);
    assert!(
        count(&|w| w.pick.is_some_and(|p| p.repicked)) > 0 && count(&|w| w.pick.is_some_and(|p| p.avoided_bad)) > 0
    );

    // The pcap parses as Geneve over UDP/IPv4 with correct checksums.
    let path = std::env::temp_dir().join(format!("offcard-encap-{}.pcap", std::process::id()));
    let mut pcap = PcapWriter::new(std::fs::File::create(&path).unwrap()).unwrap();
    for (i, p) in r.packets.iter().enumerate() {
        pcap.packet(i as u64 * 1000, p).unwrap();
    }
    drop(pcap);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let enabled: Vec<&TxFrame> = frames.iter().filter(|f| tenants[f.tenant].enabled).collect();
    let mut off = 24;
    let mut n = 0;
    while off < bytes.len() {
        let len = u32::from_le_bytes(bytes[off + 8..off + 12].try_into().unwrap()) as usize;
        let pkt = &bytes[off + 16..off + 16 + len];
        off += 16 + len;
        let s = SlicedPacket::from_ethernet(pkt).expect("etherparse rejects the outer headers");
        let Some(NetSlice::Ipv4(ip)) = s.net else { panic!("outer is not IPv4") };
        let h = ip.header().to_header();
        assert_eq!(h.header_checksum, h.calc_header_checksum(), "outer IPv4 header checksum");
        assert_eq!(h.total_len as usize, pkt.len() - 14);
        assert!(h.dont_fragment);
        let Some(TransportSlice::Udp(udp)) = s.transport else { panic!("outer is not UDP") };
        assert_eq!(udp.destination_port(), GENEVE_PORT);
        assert_eq!(udp.length() as usize, pkt.len() - 34, "UDP length");
        let g = udp.payload();
        let vni = u32::from_be_bytes([g[4], g[5], g[6], g[7]]) >> 8;
        assert_eq!(vni, tenants[enabled[n].tenant].ctx.vni, "VNI of frame {n}");
        n += 1;
    }
    assert_eq!(n, n_out);
}

/// Frames of one flow (same headers, different payload) for `tenant`.
fn flow_frames(rng: &mut SmallRng, tenant: usize, n: usize, gap: u32) -> Vec<TxFrame> {
    let proto = loop {
        let f = random_frame(rng, 128);
        if offcard_net::geneve::flow_key(&f).is_some_and(|k| k.proto == 6 || k.proto == 17) {
            break f;
        }
    };
    (0..n)
        .map(|_| {
            let mut d = proto.clone();
            let len = rng.gen_range(MIN_FRAME..200).max(80);
            d.resize(len, 0);
            rng.fill(&mut d[80..]);
            TxFrame { gap_before: gap, ..TxFrame::new(tenant, d) }
        })
        .collect()
}

#[test]
fn every_policy_behaves() {
    let mut rng = SmallRng::seed_from_u64(17);
    let gap = 400;
    let tenants = vec![
        test_tenant(0, Policy::PerFlow),
        test_tenant(1, Policy::Spray),
        test_tenant(2, Policy::Flowlet { gap_cycles: gap }),
    ];
    let mut b = bench();
    for (t, cfg) in tenants.iter().enumerate() {
        b.program_tenant(t, cfg);
    }
    let mut model = EncapModel::new(tenants.clone());
    let run = |b: &mut EncapBench<VerilatedBlock>, model: &mut EncapModel, frames: &[TxFrame]| {
        let r = b.run(frames, frames.len(), RunOpts::default());
        let want = model.expect(frames, &r.start_times);
        check_against_reference(&r.packets, &want);
        card_ports(&r.packets)
    };

    // Per-flow: one port for the whole flow.
    let flow = flow_frames(&mut rng, 0, 40, 0);
    let pf = run(&mut b, &mut model, &flow[..20]);
    assert!(pf.iter().all(|&p| p == pf[0]), "per-flow changed port: {pf:?}");
    assert!(tenants[0].paths.ports.contains(&pf[0]));

    // Bad path: the flow's path marked bad is never used while marked (the
    // flow moves to one other path), and the flow comes back when it is
    // healthy again.
    let bad_i = tenants[0].paths.ports.iter().position(|&p| p == pf[0]).unwrap();
    b.set_bad_paths(0, 1 << bad_i);
    model.tenants[0].paths.bad = 1 << bad_i;
    let moved = run(&mut b, &mut model, &flow[20..30]);
    assert!(moved.iter().all(|&p| p != pf[0] && p == moved[0]), "bad path used or flow split: {moved:?}");
    b.set_bad_paths(0, 0);
    model.tenants[0].paths.bad = 0;
    let back = run(&mut b, &mut model, &flow[30..]);
    assert!(back.iter().all(|&p| p == pf[0]), "flow did not return to its path: {back:?}");

    // Spray: consecutive packets walk the healthy entries in order.
    let bad = 0b0100_1000u8;
    b.set_bad_paths(1, bad);
    model.tenants[1].paths.bad = bad;
    let sp = run(&mut b, &mut model, &flow_frames(&mut rng, 1, 24, 0));
    let healthy: Vec<u16> = (0..8).filter(|i| bad >> i & 1 == 0).map(|i| tenants[1].paths.ports[i]).collect();
    let idx: Vec<usize> =
        sp.iter().map(|p| healthy.iter().position(|h| h == p).expect("spray used a bad path")).collect();
    for w in idx.windows(2) {
        assert_eq!(w[1], (w[0] + 1) % healthy.len(), "spray did not rotate: {sp:?}");
    }

    // Flowlet: packets closer than the gap keep the path; after an idle gap
    // longer than it the path moves on.
    let mut fl = flow_frames(&mut rng, 2, 12, 0);
    for (i, f) in fl.iter_mut().enumerate() {
        f.gap_before = if i % 4 == 0 { gap + 200 } else { 0 };
    }
    let r = b.run(&fl, fl.len(), RunOpts::default());
    let want = model.expect(&fl, &r.start_times);
    check_against_reference(&r.packets, &want);
    let got = card_ports(&r.packets);
    assert_eq!(got, ports(&want));
    for i in 1..fl.len() {
        let idle = r.start_times[i].wrapping_sub(r.start_times[i - 1]);
        if idle > gap {
            assert_ne!(got[i], got[i - 1], "flowlet kept its path after {idle} idle cycles");
        } else {
            assert_eq!(got[i], got[i - 1], "flowlet moved after only {idle} cycles");
        }
    }
    assert!(r.start_times.windows(2).any(|w| w[1] - w[0] > gap), "the test never idled past the gap");
}

#[test]
fn back_to_back_frames_leave_with_no_bubbles() {
    for (len, n) in [(60usize, 300usize), (64, 300), (1500, 40), (9000, 8)] {
        let mut rng = SmallRng::seed_from_u64(len as u64);
        let tenant = test_tenant(0, Policy::Spray);
        let mut b = bench();
        b.program_tenant(0, &tenant);
        let frames: Vec<TxFrame> = (0..n).map(|_| TxFrame::new(0, random_frame(&mut rng, len))).collect();
        let r = b.run(&frames, n, RunOpts::default());
        let want = EncapModel::new(vec![tenant]).expect(&frames, &r.start_times);
        check_against_reference(&r.packets, &want);
        let beats = ((len + 50).div_ceil(8) * n) as u64;
        assert_eq!(r.out_beats, beats);
        assert_eq!(r.bubbles, 0, "{len}-byte frames: {} idle output cycles", r.bubbles);
        assert_eq!(r.out_span_cycles, beats, "{len}-byte frames");
    }
    // Every size from 60 to 140 bytes (all byte-lane alignments of the
    // 50-byte header), a few frames each.
    for len in MIN_FRAME..=140 {
        let mut rng = SmallRng::seed_from_u64(len as u64);
        let tenant = test_tenant(0, Policy::PerFlow);
        let mut b = bench();
        b.program_tenant(0, &tenant);
        let frames: Vec<TxFrame> = (0..12).map(|_| TxFrame::new(0, random_frame(&mut rng, len))).collect();
        let r = b.run(&frames, frames.len(), RunOpts::default());
        check_against_reference(&r.packets, &EncapModel::new(vec![tenant]).expect(&frames, &r.start_times));
        assert_eq!(r.bubbles, 0, "{len}-byte frames: {} idle output cycles", r.bubbles);
    }
    // Mixed sizes, jumbo next to minimum, every kind of header.
    let mut rng = SmallRng::seed_from_u64(1);
    let tenants: Vec<TxTenant> = (0..4).map(|t| test_tenant(t, Policy::Flowlet { gap_cycles: 100 })).collect();
    let mut b = bench();
    for (t, cfg) in tenants.iter().enumerate() {
        b.program_tenant(t, cfg);
    }
    let frames: Vec<TxFrame> = (0..300)
        .map(|i| {
            let len = if i % 7 == 0 { rng.gen_range(MIN_FRAME..=MAX_FRAME) } else { rng.gen_range(MIN_FRAME..130) };
            TxFrame::new(rng.gen_range(0..4), random_frame(&mut rng, len))
        })
        .collect();
    let r = b.run(&frames, frames.len(), RunOpts::default());
    check_against_reference(&r.packets, &EncapModel::new(tenants).expect(&frames, &r.start_times));
    assert_eq!(r.bubbles, 0, "mixed sizes: {} idle output cycles", r.bubbles);
}

#[test]
fn registers_read_back_and_ignore_other_addresses() {
    let mut b = bench();
    b.write_reg(encap::TENANT_ENABLE, 0x8421);
    assert_eq!(b.read_reg(encap::TENANT_ENABLE), 0x8421);
    let t0 = b.read_reg(encap::NOW);
    b.sim.tick();
    assert_eq!(b.read_reg(encap::NOW), t0 + 1);
    // Table registers are write-only; addresses outside the block read 0.
    assert_eq!(b.read_reg(encap::TENANT_BASE + encap::T_VNI), 0);
    for off in [0x1FFC, 0x2800, 0x0000, encap::TENANT_ENABLE + 0x800] {
        assert_eq!(b.read_reg(off), 0, "offset {off:#x}");
    }
    // A write outside the block changes nothing here.
    b.write_reg(encap::TENANT_ENABLE + 0x800, 0);
    assert_eq!(b.read_reg(encap::TENANT_ENABLE), 0x8421);
    // Frames of a disabled tenant are dropped and counted, and the pipeline moves on.
    let mut rng = SmallRng::seed_from_u64(5);
    let t = test_tenant(1, Policy::PerFlow);
    b.program_tenant(1, &TxTenant { enabled: false, ..t });
    b.program_tenant(0, &test_tenant(0, Policy::PerFlow));
    let frames: Vec<TxFrame> = (0..6).map(|i| TxFrame::new(i % 2, random_frame(&mut rng, 100))).collect();
    let r = b.run(&frames, 3, RunOpts::default());
    assert_eq!(r.packets.len(), 3);
    assert_eq!(b.read_reg(encap::CNT_DROP_DISABLED), 3);
}

trait ReadReg {
    fn reg(&mut self, offset: u32) -> u32;
}
impl<S: BlockSim> ReadReg for EncapBench<S> {
    fn reg(&mut self, offset: u32) -> u32 {
        self.read_reg(offset)
    }
}

/// The same stimulus into rust-hdl's simulator and the Verilated block:
/// every output agrees on every cycle.
#[test]
fn rusthdl_and_verilator_agree_cycle_by_cycle() {
    let mut rng = SmallRng::seed_from_u64(22);
    let tenants = vec![test_tenant(0, Policy::Spray), test_tenant(1, Policy::Flowlet { gap_cycles: 50 })];
    // One flow per tenant, so the flow-table slots are read back (spray
    // wraps its offset), plus frames of other kinds and a wrong length.
    let mut frames = flow_frames(&mut rng, 0, 9, 0);
    // Flowlet: idle gaps move the flow on, past path 7 back to 0, and the
    // packet right after each gap reads the slot's timestamp back.
    frames.extend(
        flow_frames(&mut rng, 1, 16, 0)
            .into_iter()
            .enumerate()
            .map(|(i, f)| TxFrame { gap_before: if i % 2 == 0 { 80 } else { 0 }, ..f }),
    );
    frames.extend((0..4).map(|i| TxFrame::new(i % 2, random_frame(&mut rng, [60, 77, 130, 64][i]))));
    assert_eq!(frames[27].data.len(), 130);
    frames[27].in_len = 100; // cut, and the rest discarded
    let n = frames.len();
    let mut v = EncapBench::new(VerilatedBlock::new("geneve_encap"));
    let mut r = EncapBench::new(RustHdlEncap::new());
    assert_eq!(v.sim.cycles(), r.sim.cycles(), "flow-table clear took different times");
    for b in [&mut v.keep_trace, &mut r.keep_trace] {
        *b = true;
    }
    // Tenant 1 looks its destinations up: a stand-in cache knows the
    // flow's destination and not the others, and accepts a request only in
    // 40 % of the cycles (so the parser waits for some answers); both
    // simulators see the same responder.
    let mut tenants = tenants;
    tenants[1].use_mapping = true;
    let mut table = HashMap::new();
    let flow_key = mapping_key(&frames[9].data).expect("the flow is IP");
    table.insert((1u8, flow_key), 0x6401_0000 | (flow_key & 0xFFFF));
    for (t, cfg) in tenants.iter().enumerate() {
        v.program_tenant(t, cfg);
        r.program_tenant(t, cfg);
    }
    v.map = Some(MapResponder::new(table.clone(), 0.4, 77));
    r.map = Some(MapResponder::new(table.clone(), 0.4, 77));
    let opts = RunOpts { in_idle: 0.2, out_stall: 0.3, seed: 9, max_cycles: 20_000, sideband_noise: true };
    let rv = v.run(&frames, n, opts);
    let rr = r.run(&frames, n, opts);
    assert_eq!(rv.trace.len(), rr.trace.len());
    for (c, (a, b)) in rv.trace.iter().zip(&rr.trace).enumerate() {
        assert_eq!(a, b, "cycle {c}: Verilator vs rust-hdl (in_ready, out_valid, data, bytes, last)");
    }
    assert_eq!(rv.map_trace, rr.map_trace, "map_req_* differ between Verilator and rust-hdl");
    let lookups = v.map.as_ref().unwrap().lookups.clone();
    assert!(!lookups.is_empty() && lookups.iter().all(|l| l.0 == 1), "lookups {lookups:?}");
    let want =
        EncapModel::new(tenants).expect_with(&frames, &rv.start_times, &mut |t, k| table.get(&(t as u8, k)).copied());
    check_against_reference(&rr.packets, &want);
    let hits = want.iter().filter(|w| w.map.is_some_and(|m| m.value.is_some())).count();
    assert!(hits >= 16, "{hits} hits of {} lookups", lookups.len());
    assert_eq!(lookups.len(), want.iter().filter(|w| w.map.is_some()).count());
    for b in [&mut v as &mut dyn ReadReg, &mut r] {
        assert_eq!(b.reg(encap::CNT_MAP_HIT) as usize, hits);
        assert_eq!(b.reg(encap::CNT_MAP_MISS) as usize, lookups.len() - hits);
    }
    eprintln!("rust-hdl and Verilator agreed for {} cycles", rv.trace.len());
}

/// The hardware Toeplitz equals the reference (checked against Microsoft's
/// RSS verification vectors in offcard-net) on random frames of every kind,
/// and gives Microsoft's published IPv4/TCP hashes on the vector flows.
#[test]
fn hardware_toeplitz_matches_rss() {
    let mut b = bench();
    let tenant = test_tenant(0, Policy::PerFlow);
    b.program_tenant(0, &tenant);
    let mut rng = SmallRng::seed_from_u64(99);
    let mut model = EncapModel::new(vec![tenant]);
    for i in 0..120 {
        let f = TxFrame::new(0, random_frame(&mut rng, [60, 61, 64, 70, 82, 90, 200][i % 7]));
        let r = b.run(std::slice::from_ref(&f), 1, RunOpts::default());
        let want = model.expect(std::slice::from_ref(&f), &r.start_times);
        assert_eq!(b.read_reg(encap::LAST_HASH), want[0].hash, "frame {i}: {:02x?}", &f.data[..40]);
    }
    // (destination, destination port, source, source port, IPv4+TCP hash).
    let vectors = [
        ([161u8, 142, 100, 80], 1766u16, [66u8, 9, 149, 187], 2794u16, 0x51ccc178u32),
        ([65, 69, 140, 83], 4739, [199, 92, 111, 2], 14230, 0xc626b0ea),
        ([12, 22, 207, 184], 38024, [24, 19, 198, 95], 12898, 0x5c2b394a),
    ];
    for (dst, dport, src, sport, hash) in vectors {
        let mut f = vec![0u8; 80];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        f[14] = 0x45;
        f[23] = 6;
        f[26..30].copy_from_slice(&src);
        f[30..34].copy_from_slice(&dst);
        f[34..36].copy_from_slice(&sport.to_be_bytes());
        f[36..38].copy_from_slice(&dport.to_be_bytes());
        b.run(&[TxFrame::new(0, f)], 1, RunOpts::default());
        assert_eq!(b.read_reg(encap::LAST_HASH), hash, "Microsoft RSS vector {dst:?}");
    }
}

#[test]
fn bench_function_reports_full_rate() {
    for len in [60, 1500] {
        let r = beats_per_cycle(len, 50);
        eprintln!("{len}-byte frames: {r:.4} output beats per cycle");
        assert_eq!(r, 1.0);
    }
}

/// Inner destinations shared by every tenant: (IPv4, IPv6) pairs.
fn destination_pool(rng: &mut SmallRng, n: usize) -> Vec<([u8; 4], [u8; 16])> {
    (0..n)
        .map(|i| {
            let mut v6 = [0u8; 16];
            rng.fill(&mut v6[..]);
            ([172, 16, (i / 200) as u8, 1 + (i % 200) as u8], v6)
        })
        .collect()
}

/// The mapping the host answers tenant `t`'s miss for `key` with: an outer
/// address that names the tenant (100.t.x.y), so a frame that got another
/// tenant's mapping is recognisable.
fn mapping_for(t: usize, key: u32) -> u32 {
    0x6400_0000 | (t as u32) << 16 | (key & 0xFFFF) ^ (key >> 16)
}

/// Random frames of tenants 0..`tenants`, lengths from `lens`, IP
/// destinations drawn from `pool`.
fn frames_to(
    rng: &mut SmallRng,
    n: usize,
    tenants: usize,
    pool: &[([u8; 4], [u8; 16])],
    lens: &[usize],
) -> Vec<TxFrame> {
    (0..n)
        .map(|_| {
            let len = lens[rng.gen_range(0..lens.len())];
            let mut d = random_frame(rng, len);
            let (v4, v6) = pool[rng.gen_range(0..pool.len())];
            set_inner_destination(&mut d, v4, v6);
            TxFrame::new(rng.gen_range(0..tenants), d)
        })
        .collect()
}

/// The mapping key of an IPv6 destination (what `mapping_key` computes).
fn v6_key(v6: &[u8; 16]) -> u32 {
    v6.chunks(4).fold(0, |a, w| a ^ u32::from_be_bytes(w.try_into().unwrap()))
}

fn outer_dst(p: &[u8]) -> u32 {
    u32::from_be_bytes(p[30..34].try_into().unwrap())
}

/// The encapsulation block with the tagged cache on its map port: random
/// frames of several tenants agree with the reference whose lookups go to
/// `CacheModel`; misses leave on the cache's miss port as (tenant, key);
/// the test answers them (a BAR0 fill of the hardware cache and a fill of
/// the model) and later frames to those destinations hit; a tenant never
/// gets another tenant's mapping for the same inner destination.
#[test]
fn mapping_lookups_through_the_tagged_cache_match_the_reference() {
    let mut rng = SmallRng::seed_from_u64(4242);
    let policies = [Policy::PerFlow, Policy::Spray, Policy::Flowlet { gap_cycles: 200 }, Policy::PerFlow];
    let mut tenants: Vec<TxTenant> = (0..5).map(|t| test_tenant(t, policies[t % 4])).collect();
    for t in &mut tenants[..4] {
        t.use_mapping = true;
    }
    // Tenant 4 does not use the mapping cache: it never looks up.
    let mut b = EncapBench::new(EncapWithCache::new());
    b.sim.cache_wait_idle();
    for (t, cfg) in tenants.iter().enumerate() {
        b.program_tenant(t, cfg);
    }
    let mut model = EncapModel::new(tenants.clone());
    let mut cache = CacheModel::card();
    let pool = destination_pool(&mut rng, 40);
    let (mut hits, mut misses) = (0, 0);
    let mut cross_checked = 0;
    for batch in 0..8 {
        // Destinations come into use over the batches, so every batch has
        // new misses and hits on earlier fills.
        let used = &pool[..(8 + 4 * batch).min(pool.len())];
        let mut frames = frames_to(&mut rng, 80, 5, used, &[60, 64, 90, 130, 200, 600, 1500]);
        // Some descriptors disagree with the data: the key is taken from the
        // frame as sent (cut or zero-padded), as the reference does.
        for f in frames.iter_mut().step_by(11) {
            f.in_len = if rng.gen() { f.data.len() + rng.gen_range(1..20) } else { rng.gen_range(20..f.data.len()) };
        }
        let n_miss_before = b.sim.misses.len();
        let opts = RunOpts { in_idle: 0.05, out_stall: 0.1, seed: batch as u64, ..Default::default() };
        let r = b.run(&frames, frames.len(), opts);
        let want = model.expect_with(&frames, &r.start_times, &mut |t, k| cache.lookup(t as u8, k));
        check_against_reference(&r.packets, &want);
        // Misses on the cache's miss port: (tenant, key) of each, in order.
        let want_misses: Vec<(u8, u32)> = frames
            .iter()
            .zip(&want)
            .filter_map(|(f, w)| w.map.filter(|m| m.value.is_none()).map(|m| (f.tenant as u8, m.key)))
            .collect();
        assert_eq!(&b.sim.misses[n_miss_before..], &want_misses[..], "batch {batch}: misses queued for the host");
        // Partitioning: a hit gives the frame's own tenant's mapping;
        // tenant 4 and non-IP frames use the default endpoint.
        for ((f, w), p) in frames.iter().zip(&want).zip(&r.packets) {
            let default = u32::from_be_bytes(tenants[f.tenant].ctx.outer_dst_ip);
            match w.map {
                Some(m) => {
                    assert_eq!(m.key, mapping_key(&normalize(&f.data, f.in_len)).unwrap());
                    let expect = m.value.map_or(default, |_| mapping_for(f.tenant, m.key));
                    assert_eq!(outer_dst(p), expect, "tenant {} key {:#x}", f.tenant, m.key);
                }
                None => {
                    assert!(f.tenant == 4 || mapping_key(&normalize(&f.data, f.in_len)).is_none());
                    assert_eq!(outer_dst(p), default);
                }
            }
        }
        hits += want.iter().filter(|w| w.map.is_some_and(|m| m.value.is_some())).count();
        misses += want_misses.len();
        // The same destination mapped for several tenants, each hit its own.
        let mut by_key: HashMap<u32, std::collections::HashSet<usize>> = HashMap::new();
        for (f, w) in frames.iter().zip(&want) {
            if let Some(found) = w.map.filter(|m| m.value.is_some()) {
                by_key.entry(found.key).or_default().insert(f.tenant);
            }
        }
        cross_checked += by_key.values().filter(|s| s.len() > 1).count();
        // The host answers each miss once: fill the card's cache and the model.
        let mut answered = std::collections::HashSet::new();
        for &(t, k) in &want_misses {
            if answered.insert((t, k)) {
                b.sim.cache_fill(t, k, mapping_for(t as usize, k));
                cache.fill(t, k, mapping_for(t as usize, k));
            }
        }
    }
    assert_eq!(b.read_reg(encap::CNT_MAP_HIT) as usize, hits);
    assert_eq!(b.read_reg(encap::CNT_MAP_MISS) as usize, misses);
    assert_eq!(b.read_reg(encap::CNT_MAP_TIMEOUT), 0);
    assert!(hits > 100 && misses > 50, "{hits} hits, {misses} misses");
    assert!(cross_checked > 10, "only {cross_checked} destinations hit by more than one tenant");
    eprintln!("{hits} hits, {misses} misses; {cross_checked} (batch, destination) pairs hit by several tenants");
}

/// Full rate with the cache attached: once the mappings are filled,
/// back-to-back 64 B and 1500 B frames that all look up (and hit) leave
/// with no idle output cycle.
#[test]
fn full_rate_with_the_mapping_cache_attached() {
    for (len, n) in [(64usize, 300usize), (60, 200), (1500, 40)] {
        let mut rng = SmallRng::seed_from_u64(len as u64 + 7);
        let mut tenants: Vec<TxTenant> = (0..2).map(|t| test_tenant(t, Policy::Spray)).collect();
        for t in &mut tenants {
            t.use_mapping = true;
        }
        let mut b = EncapBench::new(EncapWithCache::new());
        b.sim.cache_wait_idle();
        for (t, cfg) in tenants.iter().enumerate() {
            b.program_tenant(t, cfg);
        }
        let pool = destination_pool(&mut rng, 16);
        let mut cache = CacheModel::card();
        for (t, _) in tenants.iter().enumerate() {
            for (v4, v6) in &pool {
                for k in [u32::from_be_bytes(*v4), v6_key(v6)] {
                    b.sim.cache_fill(t as u8, k, mapping_for(t, k));
                    cache.fill(t as u8, k, mapping_for(t, k));
                }
            }
        }
        let frames = frames_to(&mut rng, n, 2, &pool, &[len]);
        let r = b.run(&frames, n, RunOpts::default());
        let want = EncapModel::new(tenants).expect_with(&frames, &r.start_times, &mut |t, k| cache.lookup(t as u8, k));
        check_against_reference(&r.packets, &want);
        let lookups = want.iter().filter(|w| w.map.is_some()).count();
        assert!(lookups > n * 8 / 10, "{lookups} lookups of {n} frames");
        assert_eq!(b.read_reg(encap::CNT_MAP_HIT) as usize, lookups, "every lookup hits");
        assert_eq!(b.sim.misses.len(), 0);
        let beats = ((len + 50).div_ceil(8) * n) as u64;
        assert_eq!(r.bubbles, 0, "{len}-byte frames with lookups: {} idle output cycles", r.bubbles);
        assert_eq!(r.out_span_cycles, beats, "{len}-byte frames with lookups");
    }
}

/// A cache that does not accept (busy reassigning ways): after
/// MAP_READY_TIMEOUT cycles the frame uses the default endpoint and
/// `CNT_MAP_TIMEOUT` counts it, and nothing locks up; a cache that is only
/// slow to accept still gives every frame its mapping.
#[test]
fn map_port_refused_times_out_and_slow_port_still_maps() {
    let mut rng = SmallRng::seed_from_u64(64);
    let mut tenant = test_tenant(2, Policy::PerFlow);
    tenant.use_mapping = true;
    let tenants = vec![test_tenant(0, Policy::PerFlow), test_tenant(1, Policy::PerFlow), tenant];
    let pool = destination_pool(&mut rng, 8);
    let mut table = HashMap::new();
    for (v4, v6) in &pool {
        for k in [u32::from_be_bytes(*v4), v6_key(v6)] {
            table.insert((2u8, k), mapping_for(2, k));
        }
    }
    let mut frames = frames_to(&mut rng, 30, 1, &pool, &[60, 64, 300]);
    for f in &mut frames {
        f.tenant = 2;
    }
    let lookups = frames.iter().filter(|f| mapping_key(&f.data).is_some()).count();
    assert!(lookups > 20);

    // Refused: never ready.
    let mut b = bench();
    b.program_tenant(2, &tenants[2]);
    b.map = Some(MapResponder::new(table.clone(), 0.0, 1));
    let r = b.run(&frames, frames.len(), RunOpts::default());
    let want = EncapModel::new(tenants.clone()).expect(&frames, &r.start_times);
    check_against_reference(&r.packets, &want);
    assert_eq!(b.read_reg(encap::CNT_MAP_TIMEOUT) as usize, lookups);
    assert_eq!(b.read_reg(encap::CNT_MAP_HIT) + b.read_reg(encap::CNT_MAP_MISS), 0);
    assert!(r.packets.iter().all(|p| outer_dst(p) == u32::from_be_bytes(tenants[2].ctx.outer_dst_ip)));
    // Each looking-up frame waited the bound, no more: the run takes about
    // MAP_READY_TIMEOUT cycles per lookup, not forever.
    assert!(r.out_span_cycles >= (lookups as u64 - 1) * encap::MAP_READY_TIMEOUT as u64 / 2);

    // Slow: ready in 10 % of the cycles (the parser waits for the answer).
    let mut b = bench();
    b.program_tenant(2, &tenants[2]);
    b.map = Some(MapResponder::new(table.clone(), 0.1, 2));
    let r = b.run(&frames, frames.len(), RunOpts::default());
    let want = EncapModel::new(tenants.clone())
        .expect_with(&frames, &r.start_times, &mut |t, k| table.get(&(t as u8, k)).copied());
    check_against_reference(&r.packets, &want);
    assert_eq!(b.read_reg(encap::CNT_MAP_TIMEOUT), 0);
    assert_eq!(b.read_reg(encap::CNT_MAP_HIT) as usize, lookups);
    assert_eq!(b.map.as_ref().unwrap().lookups.len(), lookups);
    // Every IP frame got its mapping (100.2.x.y).
    assert!(r.packets.iter().all(|p| outer_dst(p) >> 24 == 100 || mapping_key(&p[50..]).is_none()));
}
