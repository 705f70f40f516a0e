//! `offcard`: the user's entry point to the card, its simulator, its host
//! software and its benchmarks.

mod card_backend;

use anyhow::{bail, Context, Result};
use offcard_driver::{Card, CardTransport, VfioTransport, VfioUserTransport};
use offcard_testbench::driver_suite::{FarEnd, InProcessPort, WirePeer};
use offcard_sim::{SimTransport};
use offcard_regs as regmap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const USAGE: &str = "offcard <command>

  demo                     enumerate the (simulated) card, identify it, scratch-test BAR0,
                           fire an MSI and wait for it; print a report
  demo --trace FILE        also write a VCD waveform of the card
  demo --vfio BDF          the same against a real card bound to vfio-pci
  gen-verilog [--out DIR] [--block NAME]
                           write the card's Verilog (rust-hdl); every block, or one (blocks: see the end)
  lint                     verilator --lint-only -Wall on the generated Verilog, with the waivers
                           of sim/verilator.vlt (justified in docs/verilator-waivers.md)
  regs [--check]           write docs/registers.md from the register map (--check: verify it)
  bench sim [--json]       simulation speed: Verilator vs rust-hdl, MMIO round trip
  bench dma [--json] [--read-latency-ns N]
                           DMA write efficiency and write-record overhead (host read latency, default 500 ns)
  bench cache [--json]     tagged cache: lookups per cycle, two-tenant hit rates, prime+probe leak
  bench encap [--json]     encapsulation full rate; path policies over an 8-path ECMP fabric
  bench transport [--json] what a carrier costs: MMIO read and 1 MiB DMA, in-process vs vfio-user
  bench mgmt [--json]      secured management operations: sealed vs plain
  synth [--board versa|icebreaker] [--block NAME] [--json]
                           open synthesis flow: yosys + nextpnr + pack, report to docs/synthesis.md
  synth check              quick yosys synthesis of every block (what CI runs)
  card --socket PATH [--net tap:NAME|wire:PATH] [--pcap FILE] [--clients N] [--seed N] [--quiet]
                           run the simulated card as a vfio-user device process (docs/carriers.md)
  demo --vfio-user PATH [--wire CABLE]
                           the demo against a card process (`offcard card --socket PATH --net wire:CABLE`)
  keygen | serve | mgmt    secured management API (see docs/mgmt.md)
  vm ...                   the KVM hypervisor (see docs/vmm.md)
";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = run(&args) {
        eprintln!("offcard: error: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: &[String]) -> Result<()> {
    let cmd = args.first().map(String::as_str).unwrap_or("help");
    let rest = &args[args.len().min(1)..];
    match cmd {
        "demo" => demo(rest),
        "gen-verilog" => gen_verilog(rest),
        "lint" => lint(),
        "regs" => regs(rest),
        "bench" => bench(rest),
        "keygen" | "serve" | "mgmt" => offcard_mgmt::cli::cli_main_with_backend(args, &|| {
            let b: std::sync::Arc<dyn offcard_mgmt::backend::PrivilegedBackend> =
                std::sync::Arc::new(card_backend::CardBackend::simulated()?);
            Ok(b)
        }),
        "vm" => offcard_vmm::cli::cli_main(args),
        "card" => card_process(rest),
        "synth" => offcard_synth::cli_main(rest),
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            println!("\nblocks (gen-verilog --block, synth --block): {}", offcard_hdl::BLOCKS.join(" "));
            Ok(())
        }
        other => bail!("unknown command {other:?}\n\n{USAGE}"),
    }
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn step(msg: &str) {
    print!("  {msg:<52}");
    let _ = std::io::stdout().flush();
}

/// `offcard card`: the Verilated card as a vfio-user device process.
fn card_process(args: &[String]) -> Result<()> {
    const KNOWN: &[&str] = &["--socket", "--net", "--pcap", "--clients", "--seed", "--quiet"];
    for a in args.iter().filter(|a| a.starts_with("--")) {
        if !KNOWN.contains(&a.as_str()) {
            bail!("offcard card: unknown option {a}; options: {}", KNOWN.join(" "));
        }
    }
    let num = |name: &str, default: u64| -> Result<u64> {
        flag(args, name).map(|v| v.parse::<u64>().with_context(|| format!("{name} {v}: not a number"))).unwrap_or(Ok(default))
    };
    let opts = offcard_sim::card_process::CardProcessOptions {
        socket: PathBuf::from(flag(args, "--socket").context("offcard card needs --socket PATH (the vfio-user socket to serve)")?),
        net: flag(args, "--net"),
        pcap: flag(args, "--pcap").map(PathBuf::from),
        seed: num("--seed", 1)?,
        max_clients: num("--clients", 0)? as usize,
        quiet: args.iter().any(|a| a == "--quiet"),
    };
    offcard_sim::card_process::serve(&opts).context("card process")
}

fn demo(args: &[String]) -> Result<()> {
    println!("Offcard demo");
    if let Some(socket) = flag(args, "--vfio-user") {
        return demo_vfio_user(&socket, flag(args, "--wire"));
    }
    if let Some(bdf) = flag(args, "--vfio") {
        let t = VfioTransport::open(&bdf).context("opening the card through VFIO")?;
        return demo_on(t).map(|_| ());
    }
    let t0 = Instant::now();
    step("simulated card: Verilator model + root complex");
    let trace = flag(args, "--trace");
    let mut t = if trace.is_some() { SimTransport::new_traced(1, 16 << 20)? } else { SimTransport::new(1, 16 << 20)? };
    println!("ok ({:.2} s)", t0.elapsed().as_secs_f64());
    if let Some(path) = trace {
        // Waveform of everything after enumeration (switchable at run time).
        t.rc.card.trace_open(std::path::Path::new(&path))?;
        println!("  tracing the card's signals to {path} (VCD)");
    }
    println!("  enumerated: {:04x}:{:04x} class {:06x}, BAR0 {} KiB at {:#x} (64-bit), MSI cap at {:#x}",
        t.info.vendor, t.info.device, t.info.class, t.info.bar0_size / 1024, t.info.bar0, t.info.msi_cap);
    let mut card = demo_on(t)?;
    demo_cache(&mut card)?;
    demo_dma(card, Some(&mut InProcessPort))
}

/// The demo against a card process over vfio-user; its Ethernet port is
/// reached through the far end of `--wire PATH` when given.
fn demo_vfio_user(socket: &str, wire: Option<String>) -> Result<()> {
    step(&format!("card process at {socket} (vfio-user)"));
    let t = VfioUserTransport::connect(std::path::Path::new(socket)).context("attaching the card process")?;
    println!("ok");
    let mut card = demo_on(t)?;
    demo_cache(&mut card)?;
    match wire {
        Some(w) => {
            let end = offcard_sim::card_process::port::WireEnd::open(std::path::Path::new(&w)).context("taking the far end of the wire")?;
            demo_dma(card, Some(&mut WirePeer(end)))
        }
        None => demo_dma::<_, WirePeer>(card, None),
    }
}

/// Two tenants share the card's tagged cache: tenant 1 reuses a working
/// set, tenant 2 scans. Shared, the scan evicts tenant 1's lines; with
/// partitioning (4 ways each) it cannot. Every operation is a BAR0 access
/// through the driver.
fn demo_cache<T: CardTransport>(card: &mut Card<T>) -> Result<()> {
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
    }
    Ok(())
}

/// Move data through the card's DMA engine with dirty logging on, and show
/// the pages the card's write records say it dirtied.
fn demo_dma<T: CardTransport, P: FarEnd<T>>(card: Card<T>, port: Option<&mut P>) -> Result<()> {
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
        Some(p) => demo_net(&mut dma, p),
        None => {
            println!("  overlay network: skipped (the card process has no port this demo can reach: start it with --net wire:PATH and pass --wire PATH)");
            Ok(())
        }
    }
}

/// An Ethernet/IPv4/UDP frame of `len` bytes (what a guest hands the card
/// before encapsulation, and what decapsulation hands back).
fn udp_frame(src_ip: [u8; 4], dst_ip: [u8; 4], len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len.max(42)];
    f[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x02]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip_len = (f.len() - 14) as u16;
    f[14] = 0x45;
    f[16..18].copy_from_slice(&ip_len.to_be_bytes());
    f[22] = 64;
    f[23] = 17;
    f[26..30].copy_from_slice(&src_ip);
    f[30..34].copy_from_slice(&dst_ip);
    let c = offcard_net::geneve::internet_checksum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f[34..36].copy_from_slice(&40000u16.to_be_bytes());
    f[36..38].copy_from_slice(&7u16.to_be_bytes());
    f[38..40].copy_from_slice(&(ip_len - 20).to_be_bytes());
    for (i, b) in f[42..].iter_mut().enumerate() {
        *b = i as u8;
    }
    f
}

/// The overlay network: three tenants (per-flow, flowlet and spray path
/// policies) send one flow each from a host TX queue through the card's
/// encapsulation pipeline into a simulated 8-path ECMP fabric (leaf and
/// spine switches hashing the outer 5-tuple); the per-path load shows what
/// each policy does to one flow. The peer then sends the packets back: the
/// card decapsulates them into host RX buffers (tenant from the VNI), and
/// malformed packets are dropped and counted per reason.
fn demo_net<T: CardTransport, P: FarEnd<T>>(dma: &mut offcard_driver::DmaCard<T>, port: &mut P) -> Result<()> {
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
    let mut sent: Vec<(u8, Vec<u8>)> = vec![];
    let mut packets = vec![];
    for burst in 0..per_tenant / 8 {
        for _ in 0..8 {
            for &(t, _, _) in &tenants {
                let f = udp_frame([10, 0, t as u8, 1], [10, 0, t as u8, 2], 200 + 100 * t);
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
        dma.send_frame(1, t, &udp_frame([10, 0, t, 1], dst, 120))?;
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

fn gen_verilog(args: &[String]) -> Result<()> {
    let usage = format!(
        "offcard gen-verilog [--out DIR] [--block NAME]\n  writes the generated Verilog (after the single-assignment pass) of every block, or of one, to DIR (build/verilog)\n  blocks: {}\n",
        offcard_hdl::BLOCKS.join(" ")
    );
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{usage}");
        return Ok(());
    }
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--out" | "--block" if i + 1 < args.len() => i += 2,
            other => bail!("gen-verilog: unexpected argument {other:?}\n\n{usage}"),
        }
    }
    let out = PathBuf::from(flag(args, "--out").unwrap_or_else(|| "build/verilog".into()));
    std::fs::create_dir_all(&out)?;
    let blocks: Vec<String> = match flag(args, "--block") {
        Some(b) => vec![b],
        None => offcard_hdl::BLOCKS.iter().map(|s| s.to_string()).collect(),
    };
    for b in blocks {
        let v = offcard_hdl::block_verilog(&b).with_context(|| format!("unknown block {b:?}; known: {:?}", offcard_hdl::BLOCKS))?;
        let name = format!("{b}.v");
        let path = out.join(name);
        std::fs::write(&path, &v)?;
        println!("wrote {} ({} lines)", path.display(), v.lines().count());
    }
    Ok(())
}

fn lint() -> Result<()> {
    let v = offcard_toolchain::find_or_install_verilator(&mut |m| eprintln!("{m}")).map_err(anyhow::Error::msg)?;
    let dir = PathBuf::from("build/lint");
    println!("verilator --lint-only -Wall {} (waivers: {})", dir.join("top.v").display(), offcard_testbench::lint::waivers().display());
    let out = offcard_testbench::lint::lint_card(&v, &dir, true)?;
    std::io::stderr().write_all(&out.stderr)?;
    if !out.status.success() {
        bail!("lint failed");
    }
    println!("lint: clean");
    Ok(())
}

fn regs(args: &[String]) -> Result<()> {
    let path = offcard_toolchain::project_root().join("docs/registers.md");
    let text = offcard_testbench::docs::registers_markdown();
    if args.iter().any(|a| a == "--check") {
        let cur = std::fs::read_to_string(&path).unwrap_or_default();
        if cur != text {
            bail!("{} is out of date: run `offcard regs`", path.display());
        }
        println!("{} matches the register map", path.display());
    } else {
        std::fs::write(&path, text)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn bench(args: &[String]) -> Result<()> {
    let json = args.iter().any(|a| a == "--json");
    match args.first().map(String::as_str) {
        Some("sim") => {
            let b = offcard_testbench::bench::sim_bench(&mut |m| eprintln!("bench sim: {m}"));
            let ratio = b.verilator_cycles_per_s / b.rusthdl_cycles_per_s;
            println!("Verilator model:      {:>12.0} cycles/s (whole card, one core)", b.verilator_cycles_per_s);
            if let Some(c) = b.verilator_cycles_per_cpu_s {
                println!("                      {:>12.0} cycles per CPU second", c);
            }
            println!("root complex, idle:   {:>12.0} cycles/s (multi-cycle runs)", b.rc_idle_cycles_per_s);
            println!("rust-hdl simulator:   {:>12.0} cycles/s", b.rusthdl_cycles_per_s);
            println!("speed-up:             {:>12.0}x", ratio);
            println!("MMIO read round trip: {:>12} cycles", b.mmio_read_cycles);
            println!("MMIO write then read: {:>12} cycles", b.mmio_write_read_cycles);
            if json {
                println!(
                    "{{\"verilator_cycles_per_s\":{:.0},\"verilator_cycles_per_cpu_s\":{},\"rc_idle_cycles_per_s\":{:.0},\"rusthdl_cycles_per_s\":{:.0},\"verilator_over_rusthdl\":{:.1},\"mmio_read_cycles\":{},\"mmio_write_read_cycles\":{}}}",
                    b.verilator_cycles_per_s,
                    b.verilator_cycles_per_cpu_s.map_or("null".to_string(), |c| format!("{c:.0}")),
                    b.rc_idle_cycles_per_s,
                    b.rusthdl_cycles_per_s,
                    ratio,
                    b.mmio_read_cycles,
                    b.mmio_write_read_cycles
                );
            }
            Ok(())
        }
        Some("dma") => {
            let latency_ns: u64 = match flag(args, "--read-latency-ns") {
                Some(v) => v.parse().with_context(|| format!("--read-latency-ns {v}: not a number"))?,
                None => offcard_sim::root_complex::DEFAULT_READ_LATENCY_NS,
            };
            let cycles = (latency_ns * offcard_regs::net::CARD_CLOCK_HZ).div_ceil(1_000_000_000);
            println!("host read-completion latency {latency_ns} ns ({cycles} card cycles at 125 MHz)");
            let pts = offcard_testbench::bench::dma_bench(cycles, &mut |m| eprintln!("bench dma: {m}"));
            println!("{:>8} {:>11} {:>16} {:>18}", "size", "write eff.", "record overhead", "copy bytes/cycle");
            let mut j = vec![format!("\"read_latency_ns\":{latency_ns}")];
            for p in &pts {
                println!("{:>8} {:>11.3} {:>16.5} {:>18.2}", p.size, p.efficiency, p.record_overhead, p.copy_bytes_per_cycle);
                let tag = match p.size { 64 => "64".to_string(), 256 => "256".into(), 1024 => "1k".into(), 4096 => "4k".into(), _ => "64k".into() };
                j.push(format!("\"dma_efficiency_{tag}\":{:.4},\"record_overhead_{tag}\":{:.5},\"copy_bytes_per_cycle_{tag}\":{:.3}", p.efficiency, p.record_overhead, p.copy_bytes_per_cycle));
            }
            if json {
                println!("{{{}}}", j.join(","));
            }
            Ok(())
        }
        Some("mgmt") => {
            let mut a = vec!["bench-mgmt".to_string()];
            a.extend(args[1..].iter().cloned());
            offcard_mgmt::cli::cli_main(&a)
        }
        Some("vm") => {
            let mut a = vec!["bench-vm".to_string()];
            a.extend(args[1..].iter().cloned());
            offcard_vmm::cli::cli_main(&a)
        }
        Some("transport") => {
            let exe = std::env::current_exe()?;
            let (inp, vu) = offcard_testbench::transport_bench::transport_bench(&exe, &mut |m| eprintln!("bench transport: {m}"));
            println!("carrier      MMIO read (wall)   1 MiB DMA copy (wall)");
            println!("in-process   {:>10.0} ns      {:>8.1} MiB/s", inp.mmio_read_ns, inp.dma_mib_per_s);
            println!("vfio-user    {:>10.0} ns      {:>8.1} MiB/s", vu.mmio_read_ns, vu.dma_mib_per_s);
            println!("vfio-user protocol round trip (status region, no card access): {:.0} ns", vu.protocol_round_trip_ns);
            println!("vfio-user / in-process: MMIO {:.2}x (goal <= 3x), DMA rate {:.2} (goal >= 0.90)",
                vu.mmio_read_ns / inp.mmio_read_ns, vu.dma_mib_per_s / inp.dma_mib_per_s);
            if json {
                println!(
                    "{{\"mmio_read_ns_inproc\":{:.0},\"mmio_read_ns_vfio_user\":{:.0},\"dma_mib_per_s_inproc\":{:.2},\"dma_mib_per_s_vfio_user\":{:.2},\"mmio_ratio\":{:.3},\"dma_ratio\":{:.3},\"protocol_round_trip_ns\":{:.0}}}",
                    inp.mmio_read_ns, vu.mmio_read_ns, inp.dma_mib_per_s, vu.dma_mib_per_s,
                    vu.mmio_read_ns / inp.mmio_read_ns, vu.dma_mib_per_s / inp.dma_mib_per_s, vu.protocol_round_trip_ns
                );
            }
            Ok(())
        }
        Some("cache") => {
            let f = offcard_testbench::cache_block::cache_bench(&mut |m| eprintln!("bench cache: {m}"));
            println!("tagged cache (Verilated block, 64 sets x 8 ways, 16 tags)");
            println!("  lookups per cycle:            {:>8.4} (latency {} cycles)", f.lookups_per_cycle, f.lookup_latency_cycles);
            println!("  two tenants, hit rate a / b:  partitioned {:.3} / {:.3}, shared {:.3} / {:.3}",
                f.hit_rate_a_partitioned, f.hit_rate_b_partitioned, f.hit_rate_a_shared, f.hit_rate_b_shared);
            println!("  prime+probe ({} trials):    partitioned MI {:.4} bits (threshold {:.4}), shared MI {:.4} (threshold {:.4})",
                f.trials, f.mi_partitioned, f.mi_threshold_partitioned, f.mi_shared, f.mi_threshold_shared);
            println!("  leaked bits per trial:        partitioned {:.4}, shared {:.4}", f.leak_bits_partitioned, f.leak_bits_shared);
            if json {
                println!(
                    "{{\"lookups_per_cycle\":{:.4},\"lookup_latency_cycles\":{},\"hit_rate_a_partitioned\":{:.4},\"hit_rate_b_partitioned\":{:.4},\"hit_rate_a_shared\":{:.4},\"hit_rate_b_shared\":{:.4},\"hit_rate_partitioned\":{:.4},\"hit_rate_shared\":{:.4},\"leak_bits_partitioned\":{:.4},\"leak_bits_shared\":{:.4},\"mi_threshold\":{:.4}}}",
                    f.lookups_per_cycle, f.lookup_latency_cycles, f.hit_rate_a_partitioned, f.hit_rate_b_partitioned,
                    f.hit_rate_a_shared, f.hit_rate_b_shared,
                    (f.hit_rate_a_partitioned + f.hit_rate_b_partitioned) / 2.0, (f.hit_rate_a_shared + f.hit_rate_b_shared) / 2.0,
                    f.leak_bits_partitioned, f.leak_bits_shared, f.mi_threshold_partitioned
                );
            }
            Ok(())
        }
        Some("encap") => {
            use offcard_net::workload::{figures_json, run_bench, BenchSpec, ReferenceSelector, RunConfig};
            eprintln!("bench encap: full-rate measurement on the Verilated encapsulation block");
            let b64 = offcard_testbench::encap_bench::beats_per_cycle(64, 4000);
            let b1500 = offcard_testbench::encap_bench::beats_per_cycle(1500, 600);
            let b9000 = offcard_testbench::encap_bench::beats_per_cycle(9000, 100);
            println!("encapsulation block, back-to-back frames: {b64:.4} beats/cycle at 64 B, {b1500:.4} at 1500 B, {b9000:.4} at 9000 B");
            eprintln!("bench encap: one elephant flow through the Verilated block's own path selection, spray and per-flow");
            let spray = offcard_testbench::encap_bench::hardware_path_load(offcard_net::path::Policy::Spray, 4000);
            let perflow = offcard_testbench::encap_bench::hardware_path_load(offcard_net::path::Policy::PerFlow, 4000);
            let (hs_mm, hs_j) = (offcard_net::metrics::max_over_mean(&spray), offcard_net::metrics::jain_index(&spray));
            let hp_mm = offcard_net::metrics::max_over_mean(&perflow);
            println!("hardware path choice, one flow, 4000 packets over 8 paths: spray load {spray:?} (max/mean {hs_mm:.3}, Jain {hs_j:.3}); per-flow max/mean {hp_mm:.3}");
            eprintln!("bench encap: path policies through the 8-path ECMP fabric model (hardware-shaped selector)");
            let t = Instant::now();
            let f = run_bench(BenchSpec::full(), &RunConfig::default(), &mut || Box::new(ReferenceSelector::default()))
                .map_err(|e| anyhow::anyhow!("fabric bench: {e:?}"))?;
            println!("{:<12} {:<19} {:>8} {:>6} {:>9} {:>9} {:>7}", "workload", "policy", "max/mean", "jain", "reordered", "rbuf pkts", "drops");
            for r in &f.runs {
                println!(
                    "{:<12} {:<19} {:>8.3} {:>6.3} {:>9.4} {:>9} {:>7}",
                    r.workload, r.case.key(), r.max_mean, r.jain, r.reordered_ratio, r.reorder_buffer_max, r.dropped
                );
            }
            eprintln!("bench encap: fabric runs took {:.1} s", t.elapsed().as_secs_f64());
            if json {
                let mut m = figures_json(&f);
                m.insert("beats_per_cycle_64".into(), serde_json::json!((b64 * 10000.0).round() / 10000.0));
                m.insert("beats_per_cycle_1500".into(), serde_json::json!((b1500 * 10000.0).round() / 10000.0));
                m.insert("beats_per_cycle_9000".into(), serde_json::json!((b9000 * 10000.0).round() / 10000.0));
                m.insert("hw_single_flow_max_mean_spray".into(), serde_json::json!((hs_mm * 10000.0).round() / 10000.0));
                m.insert("hw_single_flow_jain_spray".into(), serde_json::json!((hs_j * 10000.0).round() / 10000.0));
                m.insert("hw_single_flow_max_mean_perflow".into(), serde_json::json!((hp_mm * 10000.0).round() / 10000.0));
                println!("{}", serde_json::Value::Object(m));
            }
            Ok(())
        }
        other => bail!("unknown benchmark {other:?}: sim, dma, cache, encap, transport, mgmt, vm"),
    }
}
