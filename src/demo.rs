//! `offcard demo`: the host's view of the card, end to end (see the README).

use crate::pcap::{inner_frame, Capture, Proto, Recording};
use crate::DemoArgs;
use anyhow::{bail, Context, Result};
use offcard_driver::{Card, CardTransport, VfioTransport, VfioUserTransport};
use offcard_regs as regmap;
use offcard_sim::SimTransport;
use offcard_testbench::driver_suite::{FarEnd, InProcessPort, WirePeer};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

fn step(msg: &str) {
    print!("  {msg:<52}");
    let _ = std::io::stdout().flush();
}

/// `offcard demo`: on the simulated card (default), a real card through
/// kernel VFIO (`--vfio`) or a card process over vfio-user (`--vfio-user`).
pub fn run(a: &DemoArgs) -> Result<()> {
    println!("Offcard demo");
    let mut capture = a.pcap.as_deref().map(Capture::create).transpose()?;
    let mut figures = Figures::default();
    let r = run_on(a, capture.as_mut(), &mut figures);
    if let (Some(c), Some(path)) = (capture, &a.pcap) {
        let n = c.finish()?;
        println!("  pcap: {n} frames of the card's port written to {}", path.display());
    }
    r?;
    if let Some(dir) = &a.plots {
        for f in crate::plots::demo_plots(dir, &figures)? {
            println!("  plot: {}", f.display());
        }
    }
    Ok(())
}

/// What the demo measured, for `--plots`.
#[derive(Default)]
pub struct Figures {
    /// Per policy (its name): packets of one flow on each of the 8 fabric paths.
    pub path_load: Vec<(String, Vec<u64>)>,
    /// Shared or partitioned: (hit rate, occupancy) of tenants 1 and 2.
    pub cache: Vec<(String, [(f64, u32); 2])>,
}

/// The demo's far end of the card's port, recorded to the capture if any.
fn far_end<'a, P>(port: P, capture: Option<&'a mut Capture>) -> Recorded<'a, P> {
    match capture {
        Some(c) => Recorded::Yes(Recording { inner: port, capture: c, error: None }),
        None => Recorded::No(port),
    }
}

enum Recorded<'a, P> {
    Yes(Recording<'a, P>),
    No(P),
}

impl<T: CardTransport, P: FarEnd<T>> FarEnd<T> for Recorded<'_, P> {
    fn inject(&mut self, dma: &mut offcard_driver::DmaCard<T>, frame: &[u8]) {
        match self {
            Recorded::Yes(r) => r.inject(dma, frame),
            Recorded::No(p) => p.inject(dma, frame),
        }
    }
    fn collect(&mut self, dma: &mut offcard_driver::DmaCard<T>, n: usize) -> Vec<Vec<u8>> {
        match self {
            Recorded::Yes(r) => r.collect(dma, n),
            Recorded::No(p) => p.collect(dma, n),
        }
    }
    fn idle(&mut self, dma: &mut offcard_driver::DmaCard<T>, cycles: u64) {
        match self {
            Recorded::Yes(r) => r.idle(dma, cycles),
            Recorded::No(p) => p.idle(dma, cycles),
        }
    }
}

impl<P> Recorded<'_, P> {
    fn error(&mut self) -> Option<anyhow::Error> {
        match self {
            Recorded::Yes(r) => r.error.take(),
            Recorded::No(_) => None,
        }
    }
}

fn run_on(a: &DemoArgs, capture: Option<&mut Capture>, figures: &mut Figures) -> Result<()> {
    if let Some(socket) = &a.vfio_user {
        return demo_vfio_user(socket, a.wire.as_deref(), capture, figures);
    }
    if let Some(bdf) = &a.vfio {
        let t = VfioTransport::open(bdf).context("opening the card through VFIO")?;
        return demo_on(t).map(|_| ());
    }
    let t0 = Instant::now();
    step("simulated card: Verilator model + root complex");
    let mut t = if a.trace.is_some() { SimTransport::new_traced(1, 16 << 20)? } else { SimTransport::new(1, 16 << 20)? };
    println!("ok ({:.2} s)", t0.elapsed().as_secs_f64());
    if let Some(path) = &a.trace {
        // Waveform of everything after enumeration (switchable at run time).
        t.rc.card.trace_open(path)?;
        println!("  tracing the card's signals to {} (VCD)", path.display());
    }
    println!("  enumerated: {:04x}:{:04x} class {:06x}, BAR0 {} KiB at {:#x} (64-bit), MSI cap at {:#x}",
        t.info.vendor, t.info.device, t.info.class, t.info.bar0_size / 1024, t.info.bar0, t.info.msi_cap);
    let mut card = demo_on(t)?;
    demo_cache(&mut card, figures)?;
    demo_dma(card, Some(&mut far_end(InProcessPort, capture)), figures)
}

/// The demo against a card process over vfio-user; its Ethernet port is
/// reached through the far end of `--wire PATH` when given.
fn demo_vfio_user(socket: &Path, wire: Option<&Path>, capture: Option<&mut Capture>, figures: &mut Figures) -> Result<()> {
    step(&format!("card process at {} (vfio-user)", socket.display()));
    let t = VfioUserTransport::connect(socket).context("attaching the card process")?;
    println!("ok");
    let mut card = demo_on(t)?;
    demo_cache(&mut card, figures)?;
    match wire {
        Some(w) => {
            let end = offcard_sim::card_process::port::WireEnd::open(w).context("taking the far end of the wire")?;
            demo_dma(card, Some(&mut far_end(WirePeer(end), capture)), figures)
        }
        None => demo_dma::<_, Recorded<WirePeer>>(card, None, figures),
    }
}

/// Two tenants share the card's tagged cache: tenant 1 reuses a working
/// set, tenant 2 scans. Shared, the scan evicts tenant 1's lines; with
/// partitioning (4 ways each) it cannot. Every operation is a BAR0 access
/// through the driver.
fn demo_cache<T: CardTransport>(card: &mut Card<T>, figures: &mut Figures) -> Result<()> {
    use offcard_testbench::cache_block::{two_tenant_workload, DriverCache};
    let mut cache = offcard_driver::CacheCtl::new(card)?;
    let g = cache.geometry();
    println!("  tagged cache: {} sets x {} ways, {} tags; tenant 1 reuses a working set, tenant 2 scans", g.sets, g.ways, g.tags);
    for partitioned in [false, true] {
        cache.set_partitioned(partitioned)?;
        // A fresh start for each run: flush both tenants by moving their ways.
        cache.set_way_mask(1, 0)?;
        cache.set_way_mask(2, 0)?;
        if partitioned {
            cache.set_way_mask(1, 0x0f)?;
            cache.set_way_mask(2, 0xf0)?;
        } else {
            cache.set_way_mask(1, 0xff)?;
            cache.set_way_mask(2, 0xff)?;
        }
        let before = (cache.counters(1)?, cache.counters(2)?);
        let (ha, hb) = two_tenant_workload(&mut DriverCache(&mut cache), 1, 2, 3000, 9);
        let (c1, c2) = (cache.counters(1)?, cache.counters(2)?);
        println!(
            "    {:<12} tenant 1 hit rate {:.3} ({} of its lines evicted), tenant 2 hit rate {:.3}; occupancy {} / {} lines",
            if partitioned { "partitioned:" } else { "shared:" },
            ha,
            c1.evictions - before.0.evictions,
            hb,
            c1.occupancy,
            c2.occupancy
        );
        figures.cache.push((if partitioned { "partitioned" } else { "shared" }.into(), [(ha, c1.occupancy), (hb, c2.occupancy)]));
    }
    Ok(())
}

/// Move data through the card's DMA engine with dirty logging on, and show
/// the pages the card's write records say it dirtied.
fn demo_dma<T: CardTransport, P: FarEnd<T>>(card: Card<T>, port: Option<&mut Recorded<P>>, figures: &mut Figures) -> Result<()> {
    use offcard_driver::dma::{DmaCard, DmaConfig, Descriptor};
    println!("  DMA with dirty logging:");
    let mut dma = DmaCard::new(card, DmaConfig::default())?;
    let mut src = dma.transport().alloc_dma(64 << 10)?;
    let guest = dma.transport().alloc_dma(256 << 10)?;
    let pattern: Vec<u8> = (0..src.len).map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[3]).collect();
    src.write(0, &pattern);
    let page = 4096u64;
    dma.dirty_start(&[(guest.iova, 256 << 10)], page)?;
    let copies = [(0u64, 0x0100u64, 1500u32, 0usize), (0x2000, 0x9ffe, 5000, 1), (0x800, 0x2f000, 20, 2), (0, 0x12000, 8192, 3)];
    let c0 = dma.transport().card_cycles();
    for (i, &(so, go, len, q)) in copies.iter().enumerate() {
        dma.post(q, Descriptor { src: src.iova + so, dst: guest.iova + go, len, cookie: i as u64 })?;
        println!("    queue {q}: copy {len:>5} B  src+{so:#07x} -> guest+{go:#07x}");
    }
    let done = dma.complete_all(Duration::from_millis(5))?;
    let cycles = match (c0, dma.transport().card_cycles()) {
        (Some(a), Some(b)) => format!(", {} card cycles", b - a),
        _ => String::new(),
    };
    let mut bad = 0;
    for &(so, go, len, _) in &copies {
        if guest.read_vec(go as usize, len as usize) != src.read_vec(so as usize, len as usize) {
            bad += 1;
        }
    }
    if bad > 0 || done.iter().any(|c| c.status != 0) {
        bail!("DMA copies wrong: {bad} mismatches, completions {done:?}");
    }
    println!("    {} completions, data verified{cycles}", done.len());
    let bm = dma.dirty_report(guest.iova, 256 << 10)?;
    let pages: Vec<u64> = (0..64u64).filter(|p| bm[(p / 64) as usize] >> (p % 64) & 1 == 1).collect();
    let expect: std::collections::BTreeSet<u64> = copies
        .iter()
        .flat_map(|&(_, go, len, _)| go / page..=(go + len as u64 - 1) / page)
        .collect();
    println!("    dirty pages reported (guest page numbers): {pages:?}");
    println!("    pages the copies touched:                  {:?}", expect.iter().collect::<Vec<_>>());
    if pages != expect.into_iter().collect::<Vec<_>>() {
        bail!("dirty bitmap does not match the pages written");
    }
    println!("    write records: {} ({} bytes described)", dma.stats.records, dma.stats.bytes_described);
    println!("demo: DMA and dirty logging passed");
    match port {
        Some(p) => {
            let r = demo_net(&mut dma, p, figures);
            match p.error() {
                Some(e) => Err(e.context("writing the pcap file")),
                None => r,
            }
        }
        None => {
            println!("  overlay network: skipped (the card process has no port this demo can reach: start it with --net wire:PATH and pass --wire PATH)");
            Ok(())
        }
    }
}

/// The overlay network: three tenants (per-flow, flowlet and spray path
/// policies) send one flow each from a host TX queue through the card's
/// encapsulation pipeline into a simulated 8-path ECMP fabric (leaf and
/// spine switches hashing the outer 5-tuple); the per-path load shows what
/// each policy does to one flow. The peer then sends the packets back: the
/// card decapsulates them into host RX buffers (tenant from the VNI), and
/// malformed packets are dropped and counted per reason.
fn demo_net<T: CardTransport, P: FarEnd<T>>(dma: &mut offcard_driver::DmaCard<T>, port: &mut P, figures: &mut Figures) -> Result<()> {
    use offcard_driver::NetCtl;
    use offcard_net::fabric::{discover_path_table, Fabric, FabricConfig};
    use offcard_net::path::Policy;
    use regmap::dma::{QMODE_RX, QMODE_TX};
    println!("  overlay network: tenants -> encapsulation -> 8-path ECMP fabric -> back through decapsulation");
    dma.dirty_stop();
    dma.set_queue_mode(1, QMODE_TX)?;
    dma.set_queue_mode(2, QMODE_RX)?;
    dma.post_rx_buffers(2, 16, 2048)?;
    let fabric = Fabric::new(FabricConfig::default_8_paths());
    let tenants = [(1usize, Policy::PerFlow, "per-flow"), (2, Policy::Flowlet { gap_cycles: 300 }, "flowlet"), (3, Policy::Spray, "spray")];
    let mut cfgs = vec![];
    for &(t, pol, _) in &tenants {
        let mut cfg = offcard_testbench::encap_bench::test_tenant(t, pol);
        // Path discovery: entropy values that land on 8 distinct fabric paths.
        let ports = discover_path_table(&fabric, &cfg.ctx).map_err(|unreached| anyhow::anyhow!("paths {unreached:?} unreachable"))?;
        cfg.paths.ports.copy_from_slice(&ports[..8]);
        let mut net = NetCtl::new(&mut dma.card);
        net.program_tenant(t, &cfg.context())?;
        net.map_vni(t, cfg.ctx.vni, t as u8, 2)?;
        cfgs.push(cfg);
    }
    // One flow per tenant, 48 frames each, interleaved, in bursts with idle gaps between them.
    let per_tenant = 48;
    // Tenant 2's flow is TCP, the others UDP; every inner checksum is real.
    let mut sent: Vec<(u8, Vec<u8>)> = vec![];
    let mut packets = vec![];
    let mut seq = [0u32; 4];
    for burst in 0..per_tenant / 8 {
        for _ in 0..8 {
            for &(t, _, _) in &tenants {
                let (proto, hdrs) = if t == 2 { (Proto::Tcp, 54) } else { (Proto::Udp, 42) };
                let len = 200 + 100 * t;
                let f = inner_frame(proto, [10, 0, t as u8, 1], [10, 0, t as u8, 2], 40000, 7, seq[t], len);
                seq[t] = seq[t].wrapping_add((len - hdrs) as u32);
                dma.send_frame(1, t as u8, &f)?;
                sent.push((t as u8, f));
            }
        }
        let done = dma.complete_all(Duration::from_millis(5))?;
        if done.iter().any(|c| c.status != 0) {
            bail!("TX completions with errors: {done:?}");
        }
        packets.extend(port.collect(dma, sent.len() - packets.len()));
        port.idle(dma, 600 + 100 * burst as u64);
    }
    if packets.len() != sent.len() {
        bail!("{} packets on the wire for {} frames", packets.len(), sent.len());
    }
    for (i, &(t, _, name)) in tenants.iter().enumerate() {
        let mut load = [0usize; 8];
        for (p, (st, _)) in packets.iter().zip(&sent) {
            if *st as usize == t {
                let (vni, _) = offcard_net::geneve::decapsulate(p).map_err(|e| anyhow::anyhow!("card sent invalid Geneve: {e}"))?;
                if vni != cfgs[i].ctx.vni {
                    bail!("tenant {t}: VNI {vni:#x}");
                }
                load[fabric.path_of(p).unwrap_or(0)] += 1;
            }
        }
        let max = *load.iter().max().unwrap() as f64;
        let mean = per_tenant as f64 / 8.0;
        println!("    tenant {t} ({name:<8}) one flow, {per_tenant} packets, per-path load {load:?}, max/mean {:.2}", max / mean);
        figures.path_load.push((name.to_string(), load.iter().map(|&n| n as u64).collect()));
    }
    // The peer sends everything back, paced to what the host drains.
    let mut got: Vec<(u8, Vec<u8>)> = vec![];
    let mut next = 0;
    for _ in 0..5000 {
        while next < packets.len() && next - got.len() < 8 {
            port.inject(dma, &packets[next]);
            next += 1;
        }
        got.extend(dma.poll_rx(2)?);
        if got.len() == packets.len() {
            break;
        }
        dma.wait(Duration::from_micros(100))?;
    }
    if got != sent {
        bail!("RX: {} of {} frames came back, or not byte for byte", got.len(), sent.len());
    }
    println!("    received back: {} packets decapsulated into host buffers, byte for byte, tenants from the VNI table", got.len());
    // Malformed packets: dropped and counted per reason; traffic right after still passes.
    let good = &packets[0];
    let mut bad_ck = good.clone();
    bad_ck[24] ^= 0x01;
    let mut bad_vni = good.clone();
    bad_vni[47] ^= 0x5a; // a VNI nobody mapped
    let mut not_geneve = good.clone();
    not_geneve[37] ^= 0x01;
    for p in [&bad_ck, &bad_vni, &not_geneve, &good[..30].to_vec(), good] {
        port.inject(dma, p);
    }
    let mut back = vec![];
    for _ in 0..500 {
        back.extend(dma.poll_rx(2)?);
        if !back.is_empty() {
            break;
        }
        dma.wait(Duration::from_micros(100))?;
    }
    if back != vec![sent[0].clone()] {
        bail!("the valid packet after the malformed ones did not arrive");
    }
    let d = NetCtl::new(&mut dma.card).decap_counters()?;
    let drops: Vec<String> =
        d.iter().filter(|(n, v)| n.contains("DROP") && *v > 0).map(|(n, v)| format!("{} {v}", n.trim_start_matches("DECAP_CNT_DROP_").to_lowercase())).collect();
    println!("    malformed packets dropped and counted: {}; the valid one after them arrived", drops.join(", "));
    let c = dma.net_counters()?;
    println!("    DMA: TX_FRAMES {} RX_FRAMES {}", c.tx_frames, c.rx_frames);
    if drops.len() != 4 {
        bail!("expected four drop reasons, counters say {d:?}");
    }
    demo_mapping(dma, port)?;
    println!("demo: overlay network passed");
    Ok(())
}

/// The mapping cache: tenant 4 looks up each frame's inner destination in
/// the tagged cache; a miss leaves for the tenant's default tunnel endpoint
/// and reaches the host as a miss record (a DMA write on the miss queue);
/// the driver's slow path fills the mapping and the next frame goes to the
/// mapped endpoint. Tenant 5 asking for the same destination misses: it
/// never sees tenant 4's line.
fn demo_mapping<T: CardTransport, P: FarEnd<T>>(dma: &mut offcard_driver::DmaCard<T>, port: &mut P) -> Result<()> {
    use offcard_driver::{CacheCtl, MissRecord, NetCtl};
    use offcard_net::path::Policy;
    use regmap::{cache, dma::QMODE_RX};
    dma.set_queue_mode(cache::MISS_QUEUE as usize, QMODE_RX)?;
    dma.post_rx_buffers(cache::MISS_QUEUE as usize, 8, 64)?;
    for t in [4usize, 5] {
        let mut cfg = offcard_testbench::encap_bench::test_tenant(t, Policy::PerFlow);
        cfg.use_mapping = true;
        NetCtl::new(&mut dma.card).program_tenant(t, &cfg.context())?;
    }
    let dst = [10, 4, 0, 9];
    let key = u32::from_be_bytes(dst);
    let vtep = [172, 16, 0, 44];
    let send = |dma: &mut offcard_driver::DmaCard<T>, port: &mut P, t: u8| -> Result<[u8; 4]> {
        dma.send_frame(1, t, &inner_frame(Proto::Udp, [10, 0, t, 1], dst, 40000, 7, 0, 120))?;
        dma.complete_all(Duration::from_millis(5))?;
        let p = port.collect(dma, 1);
        let p = p.first().ok_or_else(|| anyhow::anyhow!("no packet"))?;
        Ok(p[30..34].try_into()?)
    };
    let fmt = |a: [u8; 4]| format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3]);
    let first = send(dma, port, 4)?;
    port.idle(dma, 400);
    let recs: Vec<MissRecord> = dma.poll_rx(cache::MISS_QUEUE as usize)?.iter().filter_map(|(_, b)| MissRecord::parse(b)).collect();
    if recs != vec![MissRecord { tag: 4, key }] {
        bail!("expected one miss record for tenant 4, got {recs:?}");
    }
    CacheCtl::new(&mut dma.card)?.fill(4, key, u32::from_be_bytes(vtep))?;
    let second = send(dma, port, 4)?;
    let other = send(dma, port, 5)?;
    println!(
        "    mapping cache: tenant 4 -> {}: miss, sent to default {}; miss record by DMA; fill -> {}; next frame sent to {}; tenant 5, same destination: {} (its own default)",
        fmt(dst), fmt(first), fmt(vtep), fmt(second), fmt(other)
    );
    if second != vtep || first == vtep || other == vtep {
        bail!("mapping cache did not redirect as expected");
    }
    Ok(())
}

fn demo_on<T: CardTransport>(t: T) -> Result<Card<T>> {
    println!("  transport: {}", t.describe());
    step("identify (BAR0 ID/VERSION/CAPS)");
    let mut card = Card::open(t)?;
    let id = card.identity()?;
    println!("ok: magic {:#010x} \"OFFC\", version {}.{}.{}, caps {:#x}", id.magic, id.version.0, id.version.1, id.version.2, id.caps);
    step("bus mastering enabled (config COMMAND)");
    let cmd = card.transport.config_read32(regmap::cfg::COMMAND_STATUS)?;
    if cmd & regmap::cfg::COMMAND_BUS_MASTER as u32 == 0 {
        bail!("bus mastering is off: COMMAND reads {cmd:#x}");
    }
    println!("ok: COMMAND {:#06x}", cmd & 0xffff);
    step("scratch test (walking 1s/0s, 32- and 64-bit)");
    let n = card.scratch_test()?;
    println!("ok: {n} patterns");
    step("MSI: trigger and wait");
    let t = Instant::now();
    if !card.fire_msi(Duration::from_millis(1))? {
        bail!("the card's MSI did not arrive within 1 ms");
    }
    println!("ok: interrupt received ({:.0} us host time)", t.elapsed().as_secs_f64() * 1e6);
    println!("  counters:");
    for (name, v) in card.counters()? {
        println!("    {:<26} {v}", name.trim_start_matches("REG_CNT_"));
    }
    println!("demo: host view of the card passed");
    Ok(card)
}

