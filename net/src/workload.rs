//! Workloads run through a source-port selector and the fabric model, and
//! the figures that judge a path policy: per-path load, max/mean, Jain's
//! index, RFC 4737 reordered ratio, RFC 5236 reorder buffer, latency.
//!
//! The selector is pluggable (`SourcePortSelector`): `ReferenceSelector`
//! wraps the plain-Rust policies of `crate::path`; the card's encapsulation
//! pipeline (Verilated) can be plugged in the same way. Every packet is a
//! real frame: the inner frame carries (flow, sequence, send time) in its
//! UDP payload, is Geneve-encapsulated with the selector's source port,
//! crosses the fabric, and the peer decapsulates it and reads them back.

use crate::fabric::{discover_path_table, Fabric, FabricConfig, Receiver};
use crate::geneve::{decapsulate, encapsulate, internet_checksum, FlowKey, TunnelContext, ETHERTYPE_IPV4};
use crate::metrics::{jain_index, max_over_mean, ReorderSummary};
use crate::path::{flow_key_hash, PathTable, Policy, Selector, TENANTS};
use std::collections::HashMap;
use std::path::PathBuf;

/// How a tenant's packets pick their outer UDP source port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathPolicy {
    /// Hash of the inner flow: one path per flow (RFC 8926's default).
    PerFlow,
    /// Re-pick after the flow was idle longer than `gap_ns`.
    Flowlet { gap_ns: u64 },
    /// Every packet to the next path.
    Spray,
}

/// What the host programs for a tenant: the policy and the path table
/// (entropy values, i.e. source ports, and which entries are bad).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathSetup {
    pub policy: PathPolicy,
    pub ports: Vec<u16>,
    pub bad: Vec<bool>,
}

/// The thing under test: picks the outer UDP source port for each packet.
pub trait SourcePortSelector {
    /// The host programs a tenant's policy and path table (and resets its
    /// per-flow state).
    fn program(&mut self, tenant: u32, setup: &PathSetup);
    /// The source port for `inner` (an Ethernet frame of `flow`), sent by
    /// `tenant` at `now_ns`.
    fn select(&mut self, tenant: u32, flow: &FlowKey, inner: &[u8], now_ns: u64) -> u16;
}

/// A closure as a selector (it sees no programming).
pub struct FnSelector<F>(pub F);

impl<F: FnMut(u32, &FlowKey, &[u8], u64) -> u16> SourcePortSelector for FnSelector<F> {
    fn program(&mut self, _tenant: u32, _setup: &PathSetup) {}
    fn select(&mut self, tenant: u32, flow: &FlowKey, inner: &[u8], now_ns: u64) -> u16 {
        (self.0)(tenant, flow, inner, now_ns)
    }
}

/// Adapter over the reference policies in `crate::path` (the selector the
/// card's encapsulation pipeline implements), one selector per tenant. The
/// card counts time in clock cycles; here one tick is one nanosecond
/// (32-bit, wrapping after 4.29 s, like the card's counter), and a table of
/// fewer than eight paths is repeated to fill the card's eight entries.
#[derive(Default)]
pub struct ReferenceSelector {
    tenants: HashMap<u32, (Policy, PathTable, Selector)>,
}

impl SourcePortSelector for ReferenceSelector {
    fn program(&mut self, tenant: u32, setup: &PathSetup) {
        let policy = match setup.policy {
            PathPolicy::PerFlow => Policy::PerFlow,
            PathPolicy::Flowlet { gap_ns } => Policy::Flowlet { gap_cycles: gap_ns.min(u32::MAX as u64) as u32 },
            PathPolicy::Spray => Policy::Spray,
        };
        let table = PathTable::from_entries(&setup.ports, &setup.bad);
        self.tenants.insert(tenant, (policy, table, Selector::default()));
    }

    fn select(&mut self, tenant: u32, flow: &FlowKey, _inner: &[u8], now_ns: u64) -> u16 {
        let (policy, table, sel) = self.tenants.get_mut(&tenant).expect("tenant's path table was never programmed");
        sel.pick(tenant as usize % TENANTS, *policy, table, flow_key_hash(flow), now_ns as u32).port
    }
}

/// One packet of a workload: when the card sends it, its flow, its
/// sequence number within the flow, and the inner frame length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketSpec {
    pub time_ps: u64,
    pub flow: u32,
    pub seq: u32,
    pub frame_len: usize,
}

/// A list of packets in send order (times non-decreasing).
#[derive(Clone, Debug)]
pub struct Workload {
    pub name: String,
    pub flows: u32,
    pub packets: Vec<PacketSpec>,
}

/// The card's line rate in the default fabric.
pub const LINE_GBPS: f64 = 100.0;
/// Smallest inner frame the workloads make: Ethernet, IPv4, UDP and the
/// 16-byte (flow, sequence, send time) stamp.
pub const MIN_FRAME: usize = 14 + 20 + 8 + 16;

impl Workload {
    /// `flows` flows sharing `total` frames of `frame_len` bytes, packet k
    /// belonging to flow k mod `flows`, sent in bursts of `burst` frames at
    /// `line_gbps` (as TSO emits 64 KB segments), the bursts spaced so the
    /// average rate is `avg_gbps`.
    pub fn interleaved(name: &str, flows: u32, total: usize, frame_len: usize, burst: usize, line_gbps: f64, avg_gbps: f64) -> Self {
        assert!(flows > 0 && burst > 0 && avg_gbps > 0.0 && avg_gbps <= line_gbps);
        let frame_len = frame_len.max(MIN_FRAME);
        let slot_ps = frame_len as f64 * 8000.0 / line_gbps;
        let period_ps = burst as f64 * frame_len as f64 * 8000.0 / avg_gbps;
        let mut seqs = vec![0u32; flows as usize];
        let packets = (0..total)
            .map(|k| {
                let flow = (k % flows as usize) as u32;
                let seq = seqs[flow as usize];
                seqs[flow as usize] += 1;
                let time = (k / burst) as f64 * period_ps + (k % burst) as f64 * slot_ps;
                PacketSpec { time_ps: time.round() as u64, flow, seq, frame_len }
            })
            .collect();
        Workload { name: name.to_string(), flows, packets }
    }

    /// One elephant flow: `total` frames of `frame_len`, 43-frame (64 KB)
    /// bursts at line rate, 50 Gb/s on average.
    pub fn elephant(total: usize, frame_len: usize) -> Self {
        Self::interleaved("single_flow", 1, total, frame_len, 43, LINE_GBPS, LINE_GBPS / 2.0)
    }

    /// `flows` long flows sharing the same burst pattern.
    pub fn long_flows(flows: u32, total: usize, frame_len: usize) -> Self {
        Self::interleaved(&format!("flows{flows}"), flows, total, frame_len, 43, LINE_GBPS, LINE_GBPS / 2.0)
    }

    /// `flows` small flows: each 1 to 8 packets of one size (64 to 1500 B),
    /// 1 us apart; flows start at exponentially distributed intervals
    /// (Poisson arrivals) averaging `mean_gap_ns`. Deterministic in `seed`.
    pub fn small_flows(flows: u32, mean_gap_ns: f64, seed: u64) -> Self {
        const SIZES: [usize; 6] = [64, 128, 256, 512, 1024, 1500];
        let mut rng = SplitMix64(seed);
        let mut start_ps = 0.0f64;
        let mut packets = Vec::new();
        for flow in 0..flows {
            start_ps += -(1.0 - rng.unit()).ln() * mean_gap_ns * 1000.0;
            let n = 1 + rng.below(8) as u32;
            let frame_len = SIZES[rng.below(SIZES.len() as u64) as usize].max(MIN_FRAME);
            for seq in 0..n {
                packets.push(PacketSpec { time_ps: start_ps as u64 + seq as u64 * 1_000_000, flow, seq, frame_len });
            }
        }
        // Send order; ties keep flow order (the sort is stable).
        packets.sort_by_key(|p| p.time_ps);
        Workload { name: "small_flows".to_string(), flows, packets }
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): a small, well-mixed generator so
/// workloads are reproducible without a dependency.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The inner flow of workload flow `flow`: UDP from 10.a.b.c (the flow
/// number, so flows differ) to 10.255.0.1 port 5201, from an ephemeral
/// port drawn from the flow number. The port must not follow the address
/// (e.g. both equal to the flow number): Toeplitz is linear, and such
/// correlated fields cancel in some hash bits, putting all flows on even
/// table entries, which real flows do not do.
pub fn flow_key_of(flow: u32) -> FlowKey {
    let mut src = [0u8; 16];
    src[..4].copy_from_slice(&[10, (flow >> 16) as u8, (flow >> 8) as u8, flow as u8]);
    let mut dst = [0u8; 16];
    dst[..4].copy_from_slice(&[10, 255, 0, 1]);
    let sport = 32768 + (SplitMix64(flow as u64).next() % 28232) as u16;
    FlowKey { v6: false, src, dst, proto: 17, sport, dport: 5201 }
}

/// An inner Ethernet/IPv4/UDP frame of `len` bytes (at least `MIN_FRAME`)
/// for `flow`, whose payload starts with flow, sequence and send time.
pub fn inner_frame(flow: u32, seq: u32, send_ps: u64, len: usize) -> Vec<u8> {
    let len = len.max(MIN_FRAME);
    let key = flow_key_of(flow);
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01]);
    f.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((len - 14) as u16).to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&key.src[..4]);
    ip[16..20].copy_from_slice(&key.dst[..4]);
    let ck = internet_checksum(&ip);
    ip[10..12].copy_from_slice(&ck.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&key.sport.to_be_bytes());
    f.extend_from_slice(&key.dport.to_be_bytes());
    f.extend_from_slice(&((len - 34) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&flow.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&send_ps.to_be_bytes());
    f.resize(len, 0);
    f
}

/// (flow, sequence, send time) from an inner frame made by `inner_frame`.
pub fn parse_inner(inner: &[u8]) -> Option<(u32, u32, u64)> {
    let p = inner.get(42..58)?;
    Some((
        u32::from_be_bytes(p[0..4].try_into().ok()?),
        u32::from_be_bytes(p[4..8].try_into().ok()?),
        u64::from_be_bytes(p[8..16].try_into().ok()?),
    ))
}

/// The peer: decapsulates, reads the stamp, keeps each flow's arrival
/// order and the latency.
struct Peer {
    arrivals: Vec<Vec<u64>>,
    received: u64,
    undecodable: u64,
    latency_sum_ps: u128,
    latency_max_ps: u64,
}

impl Receiver for Peer {
    fn receive(&mut self, time_ps: u64, _path: usize, packet: &[u8]) {
        let Some((flow, seq, sent)) = decapsulate(packet).ok().and_then(|(_, inner)| parse_inner(inner)) else {
            self.undecodable += 1;
            return;
        };
        let Some(a) = self.arrivals.get_mut(flow as usize) else {
            self.undecodable += 1;
            return;
        };
        a.push(seq as u64);
        self.received += 1;
        let latency = time_ps.saturating_sub(sent);
        self.latency_sum_ps += latency as u128;
        self.latency_max_ps = self.latency_max_ps.max(latency);
    }
}

/// The policies compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Case {
    PerFlow,
    Flowlet,
    Spray,
    /// Spray with one path failed in the fabric and marked bad in the table.
    SprayBadPath,
    /// Spray over arbitrary ephemeral ports instead of discovered ones:
    /// what happens without path discovery (ports collide on paths).
    SprayUndiscovered,
}

impl Case {
    pub const ALL: [Case; 5] = [Case::PerFlow, Case::Flowlet, Case::Spray, Case::SprayBadPath, Case::SprayUndiscovered];

    /// The name in JSON keys.
    pub fn key(self) -> &'static str {
        match self {
            Case::PerFlow => "perflow",
            Case::Flowlet => "flowlet",
            Case::Spray => "spray",
            Case::SprayBadPath => "spray_bad",
            Case::SprayUndiscovered => "spray_undiscovered",
        }
    }
}

/// Everything a run needs besides the workload and the selector.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub fabric: FabricConfig,
    pub tenant: u32,
    pub ctx: TunnelContext,
    /// Idle gap that starts a new flowlet. It must exceed the delay
    /// difference between paths for flowlets not to reorder.
    pub flowlet_gap_ns: u64,
    /// The path that fails in `Case::SprayBadPath`.
    pub bad_path: usize,
    /// RFC 5236 occupancy threshold BT (packets).
    pub rbd_threshold: usize,
    /// Write pcap captures (per path and at the receiver) here.
    pub capture_dir: Option<PathBuf>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            fabric: FabricConfig::default_8_paths(),
            tenant: 1,
            ctx: TunnelContext {
                vni: 1,
                outer_src_mac: [0x02, 0xaa, 0, 0, 0, 1],
                next_hop_mac: [0x02, 0xbb, 0, 0, 0, 1],
                outer_src_ip: [192, 168, 0, 1],
                outer_dst_ip: [192, 168, 1, 1],
                ttl: 64,
            },
            flowlet_gap_ns: 4000,
            bad_path: 3,
            rbd_threshold: 1024,
            capture_dir: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("path discovery found no source port for paths {0:?}")]
    Discovery(Vec<usize>),
    #[error("pcap capture: {0}")]
    Io(#[from] std::io::Error),
}

/// What one run measured.
#[derive(Clone, Debug)]
pub struct Figures {
    pub workload: String,
    pub case: Case,
    /// The source ports in the path table: discovered (entry i = path i),
    /// or `arbitrary_ports` for `Case::SprayUndiscovered`.
    pub ports: Vec<u16>,
    /// Offered load per path (bytes and packets the switches sent there).
    pub path_bytes: Vec<u64>,
    pub path_packets: Vec<u64>,
    pub path_dropped: Vec<u64>,
    /// max/mean and Jain over all paths' bytes.
    pub max_mean: f64,
    pub jain: f64,
    /// The same over the paths that are up (differs in SprayBadPath).
    pub max_mean_healthy: f64,
    pub jain_healthy: f64,
    /// RFC 4737 Type-P-Reordered-Ratio-Stream, pooled over flows.
    pub reordered_ratio: f64,
    pub reordered: u64,
    /// RFC 5236: the largest reorder buffer any flow needed (packets), the
    /// mean occupancy, and the pooled RBD.
    pub reorder_buffer_max: usize,
    pub reorder_buffer_mean: f64,
    pub rbd: Vec<f64>,
    pub latency_mean_ns: f64,
    pub latency_max_ns: f64,
    pub sent: u64,
    pub received: u64,
    pub dropped: u64,
    pub undecodable: u64,
}

/// Run `workload` under `case`: discover one source port per path, program
/// the selector, send every packet through the fabric, measure.
pub fn run_case(workload: &Workload, case: Case, cfg: &RunConfig, selector: &mut dyn SourcePortSelector) -> Result<Figures, RunError> {
    let mut fabric_cfg = cfg.fabric.clone();
    if case == Case::SprayBadPath {
        fabric_cfg.paths[cfg.bad_path].up = false;
    }
    let mut fabric = Fabric::new(fabric_cfg);
    if let Some(dir) = &cfg.capture_dir {
        fabric.capture_to(dir)?;
    }
    let mut ports = discover_path_table(&fabric, &cfg.ctx).map_err(RunError::Discovery)?;
    let n = ports.len();
    if case == Case::SprayUndiscovered {
        ports = arbitrary_ports(n);
    }
    let mut bad = vec![false; n];
    let policy = match case {
        Case::PerFlow => PathPolicy::PerFlow,
        Case::Flowlet => PathPolicy::Flowlet { gap_ns: cfg.flowlet_gap_ns },
        Case::Spray | Case::SprayUndiscovered => PathPolicy::Spray,
        Case::SprayBadPath => {
            bad[cfg.bad_path] = true;
            PathPolicy::Spray
        }
    };
    selector.program(cfg.tenant, &PathSetup { policy, ports: ports.clone(), bad });
    let keys: Vec<FlowKey> = (0..workload.flows).map(flow_key_of).collect();
    let mut peer = Peer {
        arrivals: vec![Vec::new(); workload.flows as usize],
        received: 0,
        undecodable: 0,
        latency_sum_ps: 0,
        latency_max_ps: 0,
    };
    for p in &workload.packets {
        fabric.deliver_until(p.time_ps, &mut peer);
        let inner = inner_frame(p.flow, p.seq, p.time_ps, p.frame_len);
        let port = selector.select(cfg.tenant, &keys[p.flow as usize], &inner, p.time_ps / 1000);
        fabric.send(p.time_ps, &encapsulate(&inner, &cfg.ctx, port));
    }
    fabric.finish(&mut peer)?;

    let stats = fabric.path_stats();
    let loads: Vec<f64> = stats.iter().map(|s| s.bytes as f64).collect();
    let up: Vec<f64> = loads.iter().zip(&fabric.config().paths).filter(|(_, l)| l.up).map(|(x, _)| *x).collect();
    let mut reorder = ReorderSummary::default();
    for a in &peer.arrivals {
        reorder.add_stream(a, cfg.rbd_threshold);
    }
    Ok(Figures {
        workload: workload.name.clone(),
        case,
        ports,
        path_bytes: stats.iter().map(|s| s.bytes).collect(),
        path_packets: stats.iter().map(|s| s.packets).collect(),
        path_dropped: stats.iter().map(|s| s.dropped).collect(),
        max_mean: max_over_mean(&loads),
        jain: jain_index(&loads),
        max_mean_healthy: max_over_mean(&up),
        jain_healthy: jain_index(&up),
        reordered_ratio: reorder.count.ratio(),
        reordered: reorder.count.reordered,
        reorder_buffer_max: reorder.max_buffer,
        reorder_buffer_mean: reorder.occupancy.mean_occupancy(),
        rbd: reorder.occupancy.density(),
        latency_mean_ns: if peer.received == 0 { 0.0 } else { peer.latency_sum_ps as f64 / peer.received as f64 / 1000.0 },
        latency_max_ns: peer.latency_max_ps as f64 / 1000.0,
        sent: fabric.sent(),
        received: peer.received,
        dropped: stats.iter().map(|s| s.dropped).sum(),
        undecodable: peer.undecodable,
    })
}

/// `n` distinct ephemeral ports drawn without looking at the fabric (a
/// fixed draw, so runs are reproducible).
pub fn arbitrary_ports(n: usize) -> Vec<u16> {
    let mut rng = SplitMix64(0x5eed_0bad);
    let mut ports: Vec<u16> = Vec::with_capacity(n);
    while ports.len() < n {
        let p = 49152 + rng.below(16384) as u16;
        if !ports.contains(&p) {
            ports.push(p);
        }
    }
    ports
}

/// Per-flow hashing.
pub fn run_perflow(w: &Workload, cfg: &RunConfig, sel: &mut dyn SourcePortSelector) -> Result<Figures, RunError> {
    run_case(w, Case::PerFlow, cfg, sel)
}

/// Flowlets with `cfg.flowlet_gap_ns`.
pub fn run_flowlet(w: &Workload, cfg: &RunConfig, sel: &mut dyn SourcePortSelector) -> Result<Figures, RunError> {
    run_case(w, Case::Flowlet, cfg, sel)
}

/// Spraying over the discovered ports.
pub fn run_spray(w: &Workload, cfg: &RunConfig, sel: &mut dyn SourcePortSelector) -> Result<Figures, RunError> {
    run_case(w, Case::Spray, cfg, sel)
}

/// Spraying with `cfg.bad_path` failed and marked bad.
pub fn run_spray_bad_path(w: &Workload, cfg: &RunConfig, sel: &mut dyn SourcePortSelector) -> Result<Figures, RunError> {
    run_case(w, Case::SprayBadPath, cfg, sel)
}

/// Sizes of the benchmark's three workloads.
#[derive(Clone, Copy, Debug)]
pub struct BenchSpec {
    /// Frames of the single elephant flow (1500 B each).
    pub elephant_packets: usize,
    /// Frames of the 16 long flows together (1500 B each).
    pub flows16_packets: usize,
    /// Number of small flows (1 to 8 packets each).
    pub small_flows: u32,
}

impl BenchSpec {
    /// The sizes: 100,000-packet elephant, 16 flows, 10,000 small flows.
    pub fn full() -> Self {
        BenchSpec { elephant_packets: 100_000, flows16_packets: 100_000, small_flows: 10_000 }
    }
    /// Small enough for tests.
    pub fn quick() -> Self {
        BenchSpec { elephant_packets: 8_000, flows16_packets: 8_000, small_flows: 1_000 }
    }

    pub fn workloads(&self) -> Vec<Workload> {
        vec![
            Workload::elephant(self.elephant_packets, 1500),
            Workload::long_flows(16, self.flows16_packets, 1500),
            // One flow start every 420 ns: about half the line rate.
            Workload::small_flows(self.small_flows, 420.0, 0x00ff_ca4d),
        ]
    }
}

/// Every workload under every case.
pub struct BenchFigures {
    pub paths: usize,
    pub runs: Vec<Figures>,
}

/// Run the benchmark; `make_selector` gives a fresh selector per run.
pub fn run_bench(
    spec: BenchSpec,
    cfg: &RunConfig,
    make_selector: &mut dyn FnMut() -> Box<dyn SourcePortSelector>,
) -> Result<BenchFigures, RunError> {
    let mut runs = Vec::new();
    for w in spec.workloads() {
        for case in Case::ALL {
            let mut sel = make_selector();
            runs.push(run_case(&w, case, cfg, sel.as_mut())?);
        }
    }
    Ok(BenchFigures { paths: cfg.fabric.path_count(), runs })
}

/// The figures as flat JSON keys `<workload>_<metric>_<case>`, workload in
/// single_flow, flows16, small_flows; case in perflow, flowlet, spray,
/// spray_bad, spray_undiscovered; metric in max_mean, jain (over all paths), max_mean_up,
/// jain_up (over the paths that are up), reordered_ratio (RFC 4737),
/// reorder_buffer (RFC 5236, packets), latency_mean_ns, latency_max_ns,
/// drop_ratio; plus fabric_paths. E.g. single_flow_max_mean_spray,
/// single_flow_jain_spray, single_flow_max_mean_perflow.
pub fn figures_json(b: &BenchFigures) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    m.insert("fabric_paths".into(), b.paths.into());
    let round = |x: f64, digits: i32| {
        let s = 10f64.powi(digits);
        (x * s).round() / s
    };
    for f in &b.runs {
        let c = f.case.key();
        let w = &f.workload;
        let mut put = |metric: &str, v: serde_json::Value| {
            m.insert(format!("{w}_{metric}_{c}"), v);
        };
        put("max_mean", round(f.max_mean, 4).into());
        put("jain", round(f.jain, 4).into());
        put("max_mean_up", round(f.max_mean_healthy, 4).into());
        put("jain_up", round(f.jain_healthy, 4).into());
        put("reordered_ratio", round(f.reordered_ratio, 4).into());
        put("reorder_buffer", f.reorder_buffer_max.into());
        put("latency_mean_ns", round(f.latency_mean_ns, 1).into());
        put("latency_max_ns", round(f.latency_max_ns, 1).into());
        put("drop_ratio", round(if f.sent == 0 { 0.0 } else { f.dropped as f64 / f.sent as f64 }, 4).into());
    }
    m
}
