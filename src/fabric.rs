//! `offcard fabric up|down|status|list`: a leaf-spine ECMP fabric of network
//! namespaces (crate `offcard-fabric`, docs/fabric.md), and `offcard bench
//! fabric`: how Linux's layer-4 multipath hash spreads UDP flows over the
//! spines, path discovery by TTL-limited probes and spraying over the ports
//! found, all from kernel sockets in host 1, measured by the spines' kernel
//! counters.

use crate::{plots, progress, BenchCommon};
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use offcard_fabric::plan::{self, FabricSpec, Role};
use offcard_fabric::traffic::{self, random_ports, uniform_hash_model};
use offcard_fabric::Fabric;
use std::time::Duration;

#[derive(Subcommand, Debug)]
pub enum FabricCmd {
    /// Build the fabric (or complete / correct it; running it again changes nothing)
    Up(UpArgs),
    /// Remove the fabric: end processes inside its namespaces, delete the namespaces (veths and TAPs go with them)
    Down(NameArg),
    /// Hosts, card ports and every spine's interface counters
    Status {
        #[command(flatten)]
        name: NameArg,
        /// Print one JSON object instead of text
        #[arg(long)]
        json: bool,
    },
    /// The fabrics that have namespaces on this machine
    List,
}

#[derive(Args, Debug)]
pub struct NameArg {
    /// The fabric's name (letters, digits, '_'): its namespaces are ofc-NAME-l1, ofc-NAME-s1, ofc-NAME-h1, ...
    #[arg(long, value_name = "NAME", default_value = "f0")]
    pub name: String,
}

#[derive(Args, Debug)]
pub struct UpArgs {
    #[command(flatten)]
    pub name: NameArg,
    /// Number of spines (every leaf has a link to each)
    #[arg(long, value_name = "N", default_value_t = plan::DEFAULT_SPINES, value_parser = clap::value_parser!(u8).range(plan::MIN_SPINES as i64..=plan::MAX_SPINES as i64))]
    pub spines: u8,
}

#[derive(Args, Debug)]
pub struct FabricBenchArgs {
    #[command(flatten)]
    pub common: BenchCommon,
    /// Spines of the fabric the bench builds (and removes)
    #[arg(long, value_name = "N", default_value_t = plan::DEFAULT_SPINES, value_parser = clap::value_parser!(u8).range(plan::MIN_SPINES as i64..=plan::MAX_SPINES as i64))]
    pub spines: u8,
    /// UDP flows (random source ports) for the JSON figures
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub flows: u32,
    /// Datagrams per flow
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub packets: u32,
    /// Runs per flow count, each with new random source ports
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub trials: u32,
    /// Seed of the source ports
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
}

pub fn run(cmd: FabricCmd) -> Result<()> {
    match cmd {
        FabricCmd::Up(a) => up(&a),
        FabricCmd::Down(a) => down(&a.name),
        FabricCmd::Status { name, json } => status(&name.name, json),
        FabricCmd::List => {
            offcard_fabric::check_prerequisites()?;
            for f in offcard_fabric::fabrics()? {
                println!("{f}");
            }
            Ok(())
        }
    }
}

fn up(a: &UpArgs) -> Result<()> {
    let spec = FabricSpec::new(&a.name.name, a.spines)?;
    let f = Fabric::up(&spec).with_context(|| format!("fabric {} up", spec.name))?;
    print_layout(&f);
    f.leave_up();
    Ok(())
}

fn print_layout(f: &Fabric) {
    let s = f.spec();
    let n = |r| f.netns(r);
    println!(
        "fabric {} is up: leaves {} {}, spines {}..{} ({}), hosts {} {}",
        s.name,
        n(Role::Leaf(1)),
        n(Role::Leaf(2)),
        n(Role::Spine(1)),
        n(Role::Spine(s.spines)),
        s.spines,
        n(Role::Host(1)),
        n(Role::Host(2))
    );
    println!("leaves hash on layer 4 (net.ipv4.fib_multipath_hash_policy=1), one multipath route over every spine");
    for i in 1..=plan::LEAVES {
        let h = f.host(i);
        println!(
            "host {i}: {} at {} (gateway {}); card port: TAP {} ({}, {}), the card's address {} and MAC {}",
            h.netns,
            h.addr,
            h.gateway,
            h.tap,
            h.tap_addr,
            plan::mac::fmt(h.tap_mac),
            h.card_addr,
            plan::mac::fmt(h.card_mac)
        );
    }
    let h = f.host(1);
    println!("a card at host 1: ip netns exec {} offcard card --socket /tmp/card1.sock --net tap:{}", h.netns, h.tap);
    println!("down: offcard fabric down --name {}", s.name);
}

fn down(name: &str) -> Result<()> {
    let r = offcard_fabric::remove(name).with_context(|| format!("fabric {name} down"))?;
    if r.namespaces.is_empty() {
        println!("fabric {name}: nothing to remove");
    } else {
        println!("fabric {name} removed: {} namespaces ({})", r.namespaces.len(), r.namespaces.join(" "));
    }
    if !r.ended.is_empty() {
        println!("ended processes that were inside it: {:?}", r.ended);
    }
    Ok(())
}

fn status(name: &str, json: bool) -> Result<()> {
    let f = Fabric::attach(name)?;
    let c = f.spine_counters()?;
    if json {
        let hosts: Vec<_> = (1..=plan::LEAVES)
            .map(|i| {
                let h = f.host(i);
                serde_json::json!({"host": i, "netns": h.netns, "addr": h.addr.to_string(), "tap": h.tap,
                    "tap_addr": h.tap_addr.to_string(), "tap_mac": plan::mac::fmt(h.tap_mac),
                    "card_addr": h.card_addr.to_string(), "card_mac": plan::mac::fmt(h.card_mac)})
            })
            .collect();
        let spines: Vec<_> = c
            .iter()
            .map(|s| {
                let ports: serde_json::Map<_, _> = s
                    .ports
                    .iter()
                    .map(|p| (p.name.clone(), serde_json::json!({"up": p.up, "rx_packets": p.rx_packets, "rx_bytes": p.rx_bytes, "tx_packets": p.tx_packets, "tx_bytes": p.tx_bytes})))
                    .collect();
                serde_json::json!({"spine": s.spine, "netns": f.netns(Role::Spine(s.spine)), "ports": ports})
            })
            .collect();
        println!("{}", serde_json::json!({"name": name, "spines": f.spec().spines, "hosts": hosts, "spine_counters": spines}));
        return Ok(());
    }
    print_layout(&f);
    println!("{:<6} {:>12} {:>12} {:>12} {:>12}", "spine", "from leaf 1", "to leaf 2", "from leaf 2", "to leaf 1");
    for s in &c {
        let p = |l: u8| s.port(l).cloned().unwrap_or_default();
        println!("{:<6} {:>12} {:>12} {:>12} {:>12}", s.spine, p(1).rx_packets, p(2).tx_packets, p(2).rx_packets, p(1).tx_packets);
    }
    println!("(packets, the spines' own interface counters)");
    Ok(())
}

/// Sums of max/mean and Jain over runs.
#[derive(Default)]
struct Agg(f64, f64);

impl Agg {
    fn add(&mut self, r: &traffic::FlowRun) {
        self.0 += r.spread.max_mean;
        self.1 += r.spread.jain;
    }
    fn mean(&self, n: u32) -> (f64, f64) {
        (self.0 / n as f64, self.1 / n as f64)
    }
}

/// One flow count's runs.
struct Row {
    flows: u32,
    max_mean: f64,
    jain: f64,
    spines_used: f64,
    model_max_mean: f64,
    model_jain: f64,
    sent: u64,
    counted: u64,
    received: u64,
    last_load: Vec<u64>,
}

pub fn bench(a: &FabricBenchArgs) -> Result<()> {
    let name = format!("bench{}", std::process::id());
    let spec = FabricSpec::new(&name, a.spines)?;
    let pb = progress::spinner("bench fabric");
    progress::note(&pb, &format!("bench fabric: building fabric {name} ({} spines; removed at the end)", a.spines));
    let f = Fabric::up(&spec).with_context(|| format!("fabric {name} up"))?;
    let ping = traffic::ping(&f, 1, f.host(2).addr, 20, Duration::from_secs(1))?;
    let rtt = if ping.rtt_us.is_empty() { f64::NAN } else { ping.rtt_us.iter().sum::<f64>() / ping.rtt_us.len() as f64 };
    let mut counts: Vec<u32> = vec![1, 4, 16, 64, 256];
    if !counts.contains(&a.flows) {
        counts.push(a.flows);
        counts.sort();
    }
    let mut rows = vec![];
    for (k, &flows) in counts.iter().enumerate() {
        progress::note(&pb, &format!("bench fabric: {flows} flows x {} datagrams, {} runs", a.packets, a.trials));
        let mut r = Row { flows, max_mean: 0.0, jain: 0.0, spines_used: 0.0, model_max_mean: 0.0, model_jain: 0.0, sent: 0, counted: 0, received: 0, last_load: vec![] };
        for t in 0..a.trials {
            let seed = a.seed.wrapping_mul(1_000_003).wrapping_add((k as u64) << 32 | t as u64);
            let run = traffic::udp_flows(&f, 1, 2, &random_ports(flows as usize, seed), a.packets, 100)?;
            r.max_mean += run.spread.max_mean;
            r.jain += run.spread.jain;
            r.spines_used += run.spread.spines_used as f64;
            r.sent += run.sent;
            r.counted += run.counted_at_spines();
            r.received += run.received();
            r.last_load = run.spread.per_spine.clone();
        }
        let n = a.trials as f64;
        (r.max_mean, r.jain, r.spines_used) = (r.max_mean / n, r.jain / n, r.spines_used / n);
        (r.model_max_mean, r.model_jain) = uniform_hash_model(flows as usize, a.spines as usize, 2000, a.seed ^ flows as u64);
        rows.push(r);
    }
    // Discovery by TTL-limited probes (TTL 2 expires at the spines), then one
    // stream sprayed over one found port per spine, and over as many arbitrary ports.
    progress::note(&pb, &format!("bench fabric: path discovery and spray, {} runs", a.trials));
    let max_probes = 16 * a.spines as u32;
    let (mut found_min, mut probes, mut probes_max, mut unanswered, mut to_last) = (usize::MAX, 0u64, 0u32, 0u64, 0u64);
    let (mut spray, mut undisc) = (Agg::default(), Agg::default());
    for t in 0..a.trials as u64 {
        let d = offcard_fabric::discover::discover_from_host(&f, 1, 2, 2, 1, max_probes, a.seed ^ 0xd15c ^ t << 20)?;
        found_min = found_min.min(d.paths.len());
        probes += d.probes_sent as u64;
        probes_max = probes_max.max(d.probes_sent);
        to_last += d.probes_to_last_new as u64;
        unanswered += d.unanswered as u64;
        spray.add(&traffic::udp_flows(&f, 1, 2, &d.one_port_per_path(), a.packets, 100)?);
        undisc.add(&traffic::udp_flows(&f, 1, 2, &random_ports(a.spines as usize, a.seed ^ 0x5a1d ^ t << 20), a.packets, 100)?);
    }
    let probes_mean = probes as f64 / a.trials as f64;
    let to_last_mean = to_last as f64 / a.trials as f64;
    pb.finish_and_clear();
    let removed = f.down()?;
    println!("fabric {name}: {} spines, leaves hash on layer 4; ping host 1 -> host 2: {}/{} replies, mean RTT {rtt:.0} us", a.spines, ping.received, ping.sent);
    println!("UDP flows host 1 -> host 2 with random source ports, {} datagrams each, {} runs per row; load = packets each spine forwarded (its kernel counters)", a.packets, a.trials);
    println!("{:>6} {:>9} {:>7} {:>11} {:>14} {:>12} {:>10} {:>10}", "flows", "max/mean", "Jain", "spines used", "uniform model", "(model Jain)", "sent", "at spines");
    for r in &rows {
        println!(
            "{:>6} {:>9.3} {:>7.3} {:>11.2} {:>14.3} {:>12.3} {:>10} {:>10}",
            r.flows, r.max_mean, r.jain, r.spines_used, r.model_max_mean, r.model_jain, r.sent, r.counted
        );
    }
    println!("(uniform model: each flow on a spine drawn at random, the ideal of a per-flow hash)");
    println!(
        "discovery (UDP probes with TTL 2 from host 1, answers: ICMP time exceeded from the spines; MDA stopping rule, miss probability {}): spines found {found_min} of {} in every run, probes {probes_mean:.1} on average (max {probes_max}, cap {max_probes}; the last spine found after {to_last_mean:.1}), unanswered {unanswered}",
        offcard_fabric::discover::ALPHA,
        a.spines
    );
    let (sp, un) = (spray.mean(a.trials), undisc.mean(a.trials));
    println!("one stream sprayed over one discovered port per spine, {} datagrams per port: max/mean {:.3}, Jain {:.3}", a.packets, sp.0, sp.1);
    println!("the same spray over {} arbitrary ports (no discovery):          max/mean {:.3}, Jain {:.3}", a.spines, un.0, un.1);
    println!("(all from kernel sockets in host 1, not the card; {} namespaces removed)", removed.namespaces.len());
    let main = rows.iter().find(|r| r.flows == a.flows).expect("the requested flow count is in the table");
    if let Some(dir) = &a.common.plots {
        let files = plots::bars(dir, "fabric_spine_load", &plots::Bars {
            title: format!("Linux ECMP (layer-4 hash): {} UDP flows over {} spines, packets per spine (last run)", main.flows, a.spines),
            x_desc: "spine".into(),
            y_desc: "packets forwarded (kernel counters)".into(),
            groups: (1..=a.spines).map(|s| format!("s{s}")).collect(),
            series: vec![(format!("{} flows", main.flows), main.last_load.iter().map(|&x| x as f64).collect())],
            y_max: None,
        })?;
        for p in files {
            println!("plot: {}", p.display());
        }
    }
    if a.common.json {
        let r4 = |x: f64| (x * 10000.0).round() / 10000.0;
        let mut m = serde_json::Map::new();
        m.insert("spines".into(), a.spines.into());
        m.insert("flows".into(), main.flows.into());
        m.insert("packets_per_flow".into(), a.packets.into());
        m.insert("trials".into(), a.trials.into());
        m.insert("perflow_max_mean".into(), r4(main.max_mean).into());
        m.insert("perflow_jain".into(), r4(main.jain).into());
        m.insert("perflow_spines_used".into(), r4(main.spines_used).into());
        m.insert("uniform_hash_max_mean".into(), r4(main.model_max_mean).into());
        m.insert("uniform_hash_jain".into(), r4(main.model_jain).into());
        m.insert("packets_sent".into(), main.sent.into());
        m.insert("packets_at_spines".into(), main.counted.into());
        m.insert("packets_received".into(), main.received.into());
        m.insert("traffic_source".into(), "host1_kernel_sockets".into());
        m.insert("spines_found".into(), found_min.into());
        m.insert("probes_sent".into(), r4(probes_mean).into());
        m.insert("probes_sent_max".into(), probes_max.into());
        m.insert("probes_unanswered".into(), unanswered.into());
        m.insert("probes_to_last_spine".into(), r4(to_last_mean).into());
        m.insert("spray_max_mean".into(), r4(sp.0).into());
        m.insert("spray_jain".into(), r4(sp.1).into());
        m.insert("spray_undiscovered_max_mean".into(), r4(un.0).into());
        m.insert("spray_undiscovered_jain".into(), r4(un.1).into());
        m.insert("ping_rtt_us".into(), if rtt.is_finite() { serde_json::json!((rtt * 10.0).round() / 10.0) } else { serde_json::Value::Null });
        for r in &rows {
            m.insert(format!("perflow_max_mean_{}", r.flows), r4(r.max_mean).into());
            m.insert(format!("perflow_jain_{}", r.flows), r4(r.jain).into());
        }
        println!("{}", serde_json::Value::Object(m));
    }
    Ok(())
}
