//! `offcard bench ...`: each benchmark prints its figures, ends with one
//! JSON line of them on stdout with `--json`, and writes plots with
//! `--plots DIR`. Progress goes to stderr (bars, or plain lines when stdout is
//! not a terminal).

use crate::{plots, progress, BenchCmd, BenchCommon};
use anyhow::{bail, Result};
use std::path::PathBuf;
use std::time::Instant;

pub fn run(cmd: BenchCmd) -> Result<()> {
    match cmd {
        BenchCmd::Sim(c) => sim(&c),
        BenchCmd::Dma { common, read_latency_ns } => dma(&common, read_latency_ns),
        BenchCmd::Cache(c) => cache(&c),
        BenchCmd::Virtio(c) => virtio(&c),
        BenchCmd::Encap { common, pcap } => encap(&common, pcap),
        BenchCmd::Transport(c) => transport(&c),
        BenchCmd::Mgmt(c) => mgmt(&c),
        BenchCmd::Vm { common, linux, raw } => vm(&common, linux, raw),
        BenchCmd::Fabric(a) => crate::fabric::bench(&a),
    }
}

/// Benches without plots of their own say so rather than ignore `--plots`.
fn no_plots(c: &BenchCommon, name: &str) -> Result<()> {
    if c.plots.is_some() {
        bail!("bench {name} has no plots (plots: demo, bench dma, bench cache, bench encap, bench fabric)");
    }
    Ok(())
}

fn sim(c: &BenchCommon) -> Result<()> {
    no_plots(c, "sim")?;
    let json = c.json;
    let pb = progress::spinner("bench sim");
    let b = offcard_testbench::bench::sim_bench(&mut |m| progress::note(&pb, &format!("bench sim: {m}")));
    pb.finish_and_clear();
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

fn dma(c: &BenchCommon, read_latency_ns: Option<u64>) -> Result<()> {
    let json = c.json;
    let latency_ns = read_latency_ns.unwrap_or(offcard_sim::root_complex::DEFAULT_READ_LATENCY_NS);
    let cycles = (latency_ns * offcard_regs::net::CARD_CLOCK_HZ).div_ceil(1_000_000_000);
    println!("host read-completion latency {latency_ns} ns ({cycles} card cycles at 125 MHz)");
    let pb = progress::spinner("bench dma");
    let pts = offcard_testbench::bench::dma_bench(cycles, &mut |m| progress::note(&pb, &format!("bench dma: {m}")));
    pb.finish_and_clear();
    println!("{:>8} {:>11} {:>16} {:>18}", "size", "write eff.", "record overhead", "copy bytes/cycle");
    let mut j = vec![format!("\"read_latency_ns\":{latency_ns}")];
    for p in &pts {
        println!("{:>8} {:>11.3} {:>16.5} {:>18.2}", p.size, p.efficiency, p.record_overhead, p.copy_bytes_per_cycle);
        let tag = match p.size { 64 => "64".to_string(), 256 => "256".into(), 1024 => "1k".into(), 4096 => "4k".into(), _ => "64k".into() };
        j.push(format!("\"dma_efficiency_{tag}\":{:.4},\"record_overhead_{tag}\":{:.5},\"copy_bytes_per_cycle_{tag}\":{:.3}", p.efficiency, p.record_overhead, p.copy_bytes_per_cycle));
    }
    if let Some(dir) = &c.plots {
        let sizes: Vec<String> = pts.iter().map(|p| if p.size >= 1024 { format!("{} KiB", p.size / 1024) } else { format!("{} B", p.size) }).collect();
        let mut files = plots::bars(dir, "dma_efficiency", &plots::Bars {
            title: format!("DMA writes: efficiency by transfer size (read latency {latency_ns} ns)"),
            x_desc: "transfer size".into(),
            y_desc: "payload / link bytes".into(),
            groups: sizes.clone(),
            series: vec![("write efficiency".into(), pts.iter().map(|p| p.efficiency).collect())],
            y_max: Some(1.0),
        })?;
        files.extend(plots::bars(dir, "dma_record_overhead", &plots::Bars {
            title: "Write records: overhead by transfer size".into(),
            x_desc: "transfer size".into(),
            y_desc: "record bytes / data bytes".into(),
            groups: sizes,
            series: vec![("record overhead".into(), pts.iter().map(|p| p.record_overhead).collect())],
            y_max: None,
        })?);
        print_plots(&files);
    }
    if json {
        println!("{{{}}}", j.join(","));
    }
    Ok(())
}

fn virtio(c: &BenchCommon) -> Result<()> {
    no_plots(c, "virtio")?;
    let pb = progress::spinner("bench virtio");
    let pts = offcard_testbench::bench::virtio_bench(&mut |m| progress::note(&pb, &format!("bench virtio: {m}")));
    pb.finish_and_clear();
    let hz = offcard_regs::net::CARD_CLOCK_HZ as f64;
    println!("virtio transmitq on the Verilated card (256 entries, ring kept full, one doorbell per refill), 1024 frames each; card clock 125 MHz");
    println!("{:>6} {:>8} {:>13} {:>12} {:>9} {:>10} {:>15}", "frame", "buffers", "cycles/frame", "Mframes/s", "Gbit/s", "doorbells", "DMA TX cyc/fr");
    let mut j = vec![];
    for p in &pts {
        let fps = hz / p.cycles_per_frame;
        println!(
            "{:>6} {:>8} {:>13.1} {:>12.3} {:>9.3} {:>10} {:>15.1}",
            p.frame, p.buffers, p.cycles_per_frame, fps / 1e6, fps * p.frame as f64 * 8.0 / 1e9, p.doorbells, p.dma_cycles_per_frame
        );
        let tag = format!("{}_{}buf", p.frame, p.buffers);
        j.push(format!("\"cycles_per_frame_{tag}\":{:.2},\"doorbells_{tag}\":{},\"dma_tx_cycles_per_frame_{tag}\":{:.2}", p.cycles_per_frame, p.doorbells, p.dma_cycles_per_frame));
    }
    println!("(the encapsulation output alone takes ceil((L + 50) / 8) cycles a frame: 15 for 64 bytes, 196 for 1514)");
    if c.json {
        println!("{{{}}}", j.join(","));
    }
    Ok(())
}

fn cache(c: &BenchCommon) -> Result<()> {
    let json = c.json;
    let pb = progress::spinner("bench cache");
    let f = offcard_testbench::cache_block::cache_bench(&mut |m| progress::note(&pb, &format!("bench cache: {m}")));
    pb.finish_and_clear();
    println!("tagged cache (Verilated block, 64 sets x 8 ways, 16 tags)");
    println!("  lookups per cycle:            {:>8.4} (latency {} cycles)", f.lookups_per_cycle, f.lookup_latency_cycles);
    println!("  two tenants, hit rate a / b:  partitioned {:.3} / {:.3}, shared {:.3} / {:.3}",
        f.hit_rate_a_partitioned, f.hit_rate_b_partitioned, f.hit_rate_a_shared, f.hit_rate_b_shared);
    println!("  prime+probe ({} trials):    partitioned MI {:.4} bits (threshold {:.4}), shared MI {:.4} (threshold {:.4})",
        f.trials, f.mi_partitioned, f.mi_threshold_partitioned, f.mi_shared, f.mi_threshold_shared);
    println!("  leaked bits per trial:        partitioned {:.4}, shared {:.4}", f.leak_bits_partitioned, f.leak_bits_shared);
    if let Some(dir) = &c.plots {
        let files = plots::bars(dir, "cache_hit_rate", &plots::Bars {
            title: "Tagged cache block: two tenants' hit rates".into(),
            x_desc: "way allocation".into(),
            y_desc: "hit rate".into(),
            groups: vec!["partitioned".into(), "shared".into()],
            series: vec![
                ("tenant a".into(), vec![f.hit_rate_a_partitioned, f.hit_rate_a_shared]),
                ("tenant b".into(), vec![f.hit_rate_b_partitioned, f.hit_rate_b_shared]),
            ],
            y_max: Some(1.0),
        })?;
        print_plots(&files);
    }
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

fn encap(c: &BenchCommon, pcap: Option<PathBuf>) -> Result<()> {
    let json = c.json;
    use offcard_net::workload::{figures_json, run_bench, BenchSpec, ReferenceSelector, RunConfig};
    let pb = progress::spinner("bench encap");
    progress::note(&pb, "bench encap: full-rate measurement on the Verilated encapsulation block");
    let b64 = offcard_testbench::encap_bench::beats_per_cycle(64, 4000);
    let b1500 = offcard_testbench::encap_bench::beats_per_cycle(1500, 600);
    let b9000 = offcard_testbench::encap_bench::beats_per_cycle(9000, 100);
    println!("encapsulation block, back-to-back frames: {b64:.4} beats/cycle at 64 B, {b1500:.4} at 1500 B, {b9000:.4} at 9000 B");
    progress::note(&pb, "bench encap: one elephant flow through the Verilated block's own path selection, spray and per-flow");
    let (spray, spray_pkts) = offcard_testbench::encap_bench::hardware_path_run(offcard_net::path::Policy::Spray, 4000);
    let (perflow, perflow_pkts) = offcard_testbench::encap_bench::hardware_path_run(offcard_net::path::Policy::PerFlow, 4000);
    if let Some(path) = &pcap {
        // The encapsulation block's output for both runs (spray, then
        // per-flow). The block-level bench has no wall clock: frames are
        // stamped 1.2 us apart (1500 B at 10 Gb/s); only their order is measured.
        let mut cap = crate::pcap::Capture::create(path)?;
        for (i, p) in spray_pkts.iter().chain(&perflow_pkts).enumerate() {
            cap.frame(Some(i as u64 * 1200), p)?;
        }
        let n = cap.finish()?;
        eprintln!("bench encap: {n} frames written to {}", path.display());
    }
    let (hs_mm, hs_j) = (offcard_net::metrics::max_over_mean(&spray), offcard_net::metrics::jain_index(&spray));
    let hp_mm = offcard_net::metrics::max_over_mean(&perflow);
    println!("hardware path choice, one flow, 4000 packets over 8 paths: spray load {spray:?} (max/mean {hs_mm:.3}, Jain {hs_j:.3}); per-flow max/mean {hp_mm:.3}");
    progress::note(&pb, "bench encap: path policies through the 8-path ECMP fabric model (hardware-shaped selector)");
    let t = Instant::now();
    let f = run_bench(BenchSpec::full(), &RunConfig::default(), &mut || Box::new(ReferenceSelector::default()))
        .map_err(|e| anyhow::anyhow!("fabric bench: {e:?}"));
    pb.finish_and_clear();
    let f = f?;
    println!("{:<12} {:<19} {:>8} {:>6} {:>9} {:>9} {:>7}", "workload", "policy", "max/mean", "jain", "reordered", "rbuf pkts", "drops");
    for r in &f.runs {
        println!(
            "{:<12} {:<19} {:>8.3} {:>6.3} {:>9.4} {:>9} {:>7}",
            r.workload, r.case.key(), r.max_mean, r.jain, r.reordered_ratio, r.reorder_buffer_max, r.dropped
        );
    }
    eprintln!("bench encap: fabric runs took {:.1} s", t.elapsed().as_secs_f64());
    if let Some(dir) = &c.plots {
        print_plots(&encap_plots(dir, &f)?);
    }
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

fn transport(c: &BenchCommon) -> Result<()> {
    no_plots(c, "transport")?;
    let json = c.json;
    let exe = std::env::current_exe()?;
    let pb = progress::spinner("bench transport");
    let (inp, vu) = offcard_testbench::transport_bench::transport_bench(&exe, &mut |m| progress::note(&pb, &format!("bench transport: {m}")));
    pb.finish_and_clear();
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

fn mgmt(c: &BenchCommon) -> Result<()> {
    no_plots(c, "mgmt")?;
    let pb = progress::spinner("bench mgmt: signed and sealed requests vs plain");
    let r = offcard_mgmt::bench::run_bench(offcard_mgmt::bench::BenchConfig::default());
    pb.finish_and_clear();
    let r = r?;
    print!("{}", r.human());
    if c.json {
        println!("{}", r.json());
    }
    Ok(())
}

fn vm(c: &BenchCommon, linux: bool, raw: bool) -> Result<()> {
    no_plots(c, "vm")?;
    // Guest boots take seconds to minutes; the bench prints its own lines as it goes.
    let pb = progress::spinner("bench vm: booting, snapshotting and restoring guests");
    // The hypervisor's bench prints its own figures and ends with the JSON line
    // (with or without --json).
    let guest = if linux { Some(true) } else if raw { Some(false) } else { None };
    let r = offcard_vmm::bench::bench_vm(guest);
    pb.finish_and_clear();
    r
}

/// Plots go to stderr's neighbour, stdout, before the JSON line.
fn print_plots(files: &[PathBuf]) {
    for f in files {
        println!("plot: {}", f.display());
    }
}

/// Per-path load per policy (the single elephant flow) and the reordered
/// share per policy and workload.
fn encap_plots(dir: &std::path::Path, f: &offcard_net::workload::BenchFigures) -> Result<Vec<PathBuf>> {
    let single: Vec<_> = f.runs.iter().filter(|r| r.workload == "single_flow").collect();
    let mut files = plots::bars(dir, "encap_path_load", &plots::Bars {
        title: "One elephant flow over the 8-path ECMP fabric: bytes per path by policy".into(),
        x_desc: "ECMP path".into(),
        y_desc: "MB".into(),
        groups: (0..f.paths).map(|p| format!("path {p}")).collect(),
        series: single.iter().map(|r| (r.case.key().to_string(), r.path_bytes.iter().map(|&b| b as f64 / 1e6).collect())).collect(),
        y_max: None,
    })?;
    let mut workloads: Vec<String> = vec![];
    let mut cases: Vec<String> = vec![];
    for r in &f.runs {
        if !workloads.contains(&r.workload) {
            workloads.push(r.workload.clone());
        }
        if !cases.contains(&r.case.key().to_string()) {
            cases.push(r.case.key().to_string());
        }
    }
    let series = cases
        .iter()
        .map(|c| {
            let v = workloads
                .iter()
                .map(|w| f.runs.iter().find(|r| &r.workload == w && r.case.key() == c).map_or(0.0, |r| r.reordered_ratio))
                .collect();
            (c.clone(), v)
        })
        .collect();
    files.extend(plots::bars(dir, "encap_reordering", &plots::Bars {
        title: "Packets delivered out of order, by policy and workload".into(),
        x_desc: "workload".into(),
        y_desc: "reordered share".into(),
        groups: workloads,
        series,
        y_max: None,
    })?);
    Ok(files)
}
