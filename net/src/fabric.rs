//! A model of the data-centre fabric between the card's port and a peer:
//! N parallel paths, chosen per packet by ECMP switches that hash the
//! outer IPv4 5-tuple, each path a FIFO link with its own rate, buffer and
//! propagation delay. Queueing and unequal delays make packets of one flow
//! that took different paths arrive out of order, which is what spraying
//! costs and what `crate::metrics` measures.
//!
//! Times are integer picoseconds internally so that line-rate spacing of
//! small frames (5.12 ns for 64 B at 100 Gb/s) is exact.

use crate::hash::{crc16_ccitt, crc32};
use crate::pcap::PcapWriter;
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, VecDeque};
use std::fs::File;
use std::io::{self, BufWriter};
use std::path::Path;

/// The hash function an ECMP switch computes over the 5-tuple.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashAlgo {
    /// CRC-16/CCITT (poly 0x1021, MSB first); the seed is the initial value
    /// (low 16 bits of `EcmpSwitch::seed`).
    Crc16Ccitt,
    /// CRC-32 (IEEE 802.3, reflected); the seed is the initial value.
    Crc32,
}

/// The outer IPv4 5-tuple, the fields switches hash for ECMP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FiveTuple {
    pub src: [u8; 4],
    pub dst: [u8; 4],
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
}

impl FiveTuple {
    /// Hash input, in header order: source address, destination address,
    /// protocol, source port, destination port (network byte order).
    pub fn bytes(&self) -> [u8; 13] {
        let mut b = [0u8; 13];
        b[0..4].copy_from_slice(&self.src);
        b[4..8].copy_from_slice(&self.dst);
        b[8] = self.proto;
        b[9..11].copy_from_slice(&self.sport.to_be_bytes());
        b[11..13].copy_from_slice(&self.dport.to_be_bytes());
        b
    }

    /// Parse an Ethernet frame (optionally one 802.1Q tag) carrying IPv4.
    /// Ports are those of TCP or UDP in the first fragment; other protocols
    /// and later fragments hash with ports 0, as switches do (they cannot
    /// see ports there). `None` for anything that is not well-formed IPv4.
    pub fn parse(frame: &[u8]) -> Option<FiveTuple> {
        let mut off = 12;
        let mut et = u16::from_be_bytes(frame.get(off..off + 2)?.try_into().ok()?);
        off += 2;
        if et == crate::geneve::ETHERTYPE_VLAN {
            et = u16::from_be_bytes(frame.get(off + 2..off + 4)?.try_into().ok()?);
            off += 4;
        }
        if et != crate::geneve::ETHERTYPE_IPV4 {
            return None;
        }
        let ip = frame.get(off..off + 20)?;
        let ihl = (ip[0] & 0xf) as usize * 4;
        if ip[0] >> 4 != 4 || ihl < 20 {
            return None;
        }
        let proto = ip[9];
        let fragment_offset = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff;
        let (sport, dport) = if (proto == 6 || proto == 17) && fragment_offset == 0 {
            let p = frame.get(off + ihl..off + ihl + 4)?;
            (u16::from_be_bytes([p[0], p[1]]), u16::from_be_bytes([p[2], p[3]]))
        } else {
            (0, 0)
        };
        Some(FiveTuple { src: ip[12..16].try_into().ok()?, dst: ip[16..20].try_into().ok()?, proto, sport, dport })
    }
}

/// One ECMP stage: hash the 5-tuple with `algo` and `seed`, drop `shift`
/// low bits (the "hash bit selection" vendors expose), take the result
/// modulo `fanout` as the egress member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EcmpSwitch {
    pub algo: HashAlgo,
    pub seed: u32,
    pub shift: u32,
    pub fanout: usize,
}

impl EcmpSwitch {
    pub fn hash(&self, t: &FiveTuple) -> u32 {
        let b = t.bytes();
        match self.algo {
            HashAlgo::Crc16Ccitt => crc16_ccitt(self.seed as u16, &b) as u32,
            HashAlgo::Crc32 => crc32(self.seed, &b),
        }
    }

    /// The egress member (0..fanout) for this 5-tuple.
    pub fn pick(&self, t: &FiveTuple) -> usize {
        (self.hash(t) >> self.shift) as usize % self.fanout
    }
}

/// A FIFO link: serialization at `rate_bytes_per_ns`, then `delay_ns` of
/// propagation; at most `buffer_bytes` wait (tail drop beyond). A link that
/// is not `up` drops everything sent to it (a failed path).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkConfig {
    pub rate_bytes_per_ns: f64,
    pub delay_ns: f64,
    pub buffer_bytes: usize,
    pub up: bool,
}

impl LinkConfig {
    pub fn new(gbps: f64, delay_ns: f64, buffer_bytes: usize) -> Self {
        LinkConfig { rate_bytes_per_ns: gbps / 8.0, delay_ns, buffer_bytes, up: true }
    }
    fn serialization_ps(&self, bytes: usize) -> u64 {
        (bytes as f64 * 1000.0 / self.rate_bytes_per_ns).ceil() as u64
    }
    fn delay_ps(&self) -> u64 {
        (self.delay_ns * 1000.0).round() as u64
    }
}

/// The card's port link, the switch tiers, and the paths. The path index is
/// the mixed-radix number of the tiers' picks (first tier most
/// significant), so there are `product of fanouts` paths and `paths` must
/// have that many entries.
#[derive(Clone, Debug, PartialEq)]
pub struct FabricConfig {
    pub port: LinkConfig,
    pub tiers: Vec<EcmpSwitch>,
    pub paths: Vec<LinkConfig>,
}

/// Leaf seed and spine seed of the default fabric (arbitrary, fixed so runs
/// are reproducible; real switches take them from configuration).
pub const LEAF_SEED: u32 = 0x1D0F;
pub const SPINE_SEED: u32 = 0x5EED_C0DE;

impl FabricConfig {
    /// The default 8-path fabric: a 100 Gb/s port, a leaf hashing with
    /// CRC16-CCITT over 4 spines, each spine hashing with CRC32 over 2
    /// links to the far leaf; each path 25 Gb/s (the share of the fabric a
    /// tenant can count on), 1 MiB of buffer, and propagation delays that
    /// differ by 150 ns from path to path (2.0 to 3.05 us), as cable
    /// lengths and switch latencies do.
    pub fn default_8_paths() -> Self {
        FabricConfig {
            port: LinkConfig::new(100.0, 500.0, usize::MAX),
            tiers: vec![
                EcmpSwitch { algo: HashAlgo::Crc16Ccitt, seed: LEAF_SEED, shift: 0, fanout: 4 },
                EcmpSwitch { algo: HashAlgo::Crc32, seed: SPINE_SEED, shift: 0, fanout: 2 },
            ],
            paths: (0..8).map(|i| LinkConfig::new(25.0, 2000.0 + 150.0 * i as f64, 1 << 20)).collect(),
        }
    }

    /// One switch with `n` equal paths (same rate and delay: no reordering
    /// from the fabric itself).
    pub fn single_switch(n: usize, algo: HashAlgo, seed: u32, path: LinkConfig) -> Self {
        FabricConfig {
            port: LinkConfig::new(100.0, 500.0, usize::MAX),
            tiers: vec![EcmpSwitch { algo, seed, shift: 0, fanout: n }],
            paths: vec![path; n],
        }
    }

    pub fn path_count(&self) -> usize {
        self.tiers.iter().map(|s| s.fanout).product()
    }

    /// The path a 5-tuple takes through all tiers.
    pub fn route(&self, t: &FiveTuple) -> usize {
        self.tiers.iter().fold(0, |acc, s| acc * s.fanout + s.pick(t))
    }
}

/// What became of a packet handed to the fabric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    /// Queued on this path; it will be delivered.
    Queued { path: usize },
    /// Hashed onto this path but dropped: the path is down or its buffer full.
    Dropped { path: usize },
    /// Not an IPv4 frame the switches can hash: dropped and counted.
    Malformed,
}

/// Per-path counters. `packets`/`bytes` count what the switches hashed onto
/// the path (the offered load, including what the path then dropped).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PathStats {
    pub packets: u64,
    pub bytes: u64,
    pub dropped: u64,
    pub delivered: u64,
    pub max_backlog_bytes: usize,
}

/// Where the far end hands packets, in arrival order.
pub trait Receiver {
    /// `time_ps`: when the last bit arrived; `path`: the path it took.
    fn receive(&mut self, time_ps: u64, path: usize, packet: &[u8]);
}

/// A loopback peer: keeps what arrives so the caller (e.g. the card model's
/// receive side) can take it.
#[derive(Default)]
pub struct Loopback {
    pub packets: VecDeque<(u64, usize, Vec<u8>)>,
}

impl Receiver for Loopback {
    fn receive(&mut self, time_ps: u64, path: usize, packet: &[u8]) {
        self.packets.push_back((time_ps, path, packet.to_vec()));
    }
}

struct LinkState {
    free_at_ps: u64,
    /// (serialization end, bytes) of packets still in the buffer, to know
    /// the backlog when the next one comes.
    queue: VecDeque<(u64, usize)>,
    backlog_bytes: usize,
    stats: PathStats,
}

struct InFlight {
    arrival_ps: u64,
    order: u64,
    path: usize,
    data: Vec<u8>,
}

impl PartialEq for InFlight {
    fn eq(&self, o: &Self) -> bool {
        (self.arrival_ps, self.order) == (o.arrival_ps, o.order)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for InFlight {
    // Ties in arrival time go in send order, so runs are deterministic.
    fn cmp(&self, o: &Self) -> Ordering {
        (self.arrival_ps, self.order).cmp(&(o.arrival_ps, o.order))
    }
}

struct Captures {
    paths: Vec<PcapWriter<BufWriter<File>>>,
    rx: PcapWriter<BufWriter<File>>,
}

/// The fabric in motion. Send packets with non-decreasing times; call
/// `deliver_until(t)` before sending at `t` (or only `finish` at the end)
/// to hand arrived packets to a receiver in arrival order.
pub struct Fabric {
    cfg: FabricConfig,
    port_free_at_ps: u64,
    links: Vec<LinkState>,
    in_flight: BinaryHeap<Reverse<InFlight>>,
    sent: u64,
    malformed: u64,
    delivered_until_ps: u64,
    captures: Option<Captures>,
    capture_error: Option<io::Error>,
}

impl Fabric {
    pub fn new(cfg: FabricConfig) -> Self {
        assert_eq!(cfg.paths.len(), cfg.path_count(), "one LinkConfig per path (product of the tiers' fanouts)");
        assert!(cfg.tiers.iter().all(|s| s.fanout > 0), "a switch needs at least one egress member");
        let links = (0..cfg.paths.len())
            .map(|_| LinkState { free_at_ps: 0, queue: VecDeque::new(), backlog_bytes: 0, stats: PathStats::default() })
            .collect();
        Fabric {
            cfg,
            port_free_at_ps: 0,
            links,
            in_flight: BinaryHeap::new(),
            sent: 0,
            malformed: 0,
            delivered_until_ps: 0,
            captures: None,
            capture_error: None,
        }
    }

    pub fn config(&self) -> &FabricConfig {
        &self.cfg
    }

    pub fn path_count(&self) -> usize {
        self.links.len()
    }

    /// Write pcap captures into `dir`: `path<i>.pcap` for each path (time
    /// the packet starts onto that path) and `rx.pcap` at the receiver
    /// (arrival time, arrival order).
    pub fn capture_to(&mut self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let open = |name: String| -> io::Result<PcapWriter<BufWriter<File>>> {
            PcapWriter::new(BufWriter::new(File::create(dir.join(name))?))
        };
        let paths = (0..self.links.len()).map(|i| open(format!("path{i}.pcap"))).collect::<io::Result<Vec<_>>>()?;
        let rx = open("rx.pcap".to_string())?;
        self.captures = Some(Captures { paths, rx });
        Ok(())
    }

    /// The path this packet would take: the model's traceroute probe.
    /// `None` if the switches could not hash it (not IPv4).
    pub fn path_of(&self, packet: &[u8]) -> Option<usize> {
        FiveTuple::parse(packet).map(|t| self.cfg.route(&t))
    }

    pub fn path_of_tuple(&self, t: &FiveTuple) -> usize {
        self.cfg.route(t)
    }

    /// The card starts sending `packet` at `time_ps`.
    pub fn send(&mut self, time_ps: u64, packet: &[u8]) -> SendOutcome {
        let Some(tuple) = FiveTuple::parse(packet) else {
            self.malformed += 1;
            return SendOutcome::Malformed;
        };
        self.sent += 1;
        // Never schedule into the past of what was already delivered, or
        // arrival order at the receiver would break.
        let t = time_ps.max(self.delivered_until_ps);
        let start = t.max(self.port_free_at_ps);
        self.port_free_at_ps = start + self.cfg.port.serialization_ps(packet.len());
        // Store and forward at the switch: the whole frame is in.
        let at_switch = self.port_free_at_ps + self.cfg.port.delay_ps();
        let path = self.cfg.route(&tuple);
        let cfg = self.cfg.paths[path];
        let link = &mut self.links[path];
        link.stats.packets += 1;
        link.stats.bytes += packet.len() as u64;
        while let Some(&(done, bytes)) = link.queue.front() {
            if done > at_switch {
                break;
            }
            link.backlog_bytes -= bytes;
            link.queue.pop_front();
        }
        if !cfg.up || link.backlog_bytes.saturating_add(packet.len()) > cfg.buffer_bytes {
            link.stats.dropped += 1;
            return SendOutcome::Dropped { path };
        }
        let begin = at_switch.max(link.free_at_ps);
        link.free_at_ps = begin + cfg.serialization_ps(packet.len());
        link.queue.push_back((link.free_at_ps, packet.len()));
        link.backlog_bytes += packet.len();
        link.stats.max_backlog_bytes = link.stats.max_backlog_bytes.max(link.backlog_bytes);
        if let Some(c) = self.captures.as_mut() {
            if let Err(e) = c.paths[path].packet(begin / 1000, packet) {
                self.capture_error.get_or_insert(e);
            }
        }
        let arrival_ps = link.free_at_ps + cfg.delay_ps();
        self.in_flight.push(Reverse(InFlight { arrival_ps, order: self.sent, path, data: packet.to_vec() }));
        SendOutcome::Queued { path }
    }

    /// Hand every packet that has arrived by `time_ps` to `rx`, in arrival
    /// order. Packets sent at or after `time_ps` arrive later, so calling
    /// this before each send keeps the receiver's view exact.
    pub fn deliver_until(&mut self, time_ps: u64, rx: &mut dyn Receiver) {
        self.delivered_until_ps = self.delivered_until_ps.max(time_ps);
        self.deliver(time_ps, rx);
    }

    fn deliver(&mut self, time_ps: u64, rx: &mut dyn Receiver) {
        while self.in_flight.peek().is_some_and(|p| p.0.arrival_ps <= time_ps) {
            let Reverse(p) = self.in_flight.pop().unwrap();
            self.links[p.path].stats.delivered += 1;
            if let Some(c) = self.captures.as_mut() {
                if let Err(e) = c.rx.packet(p.arrival_ps / 1000, &p.data) {
                    self.capture_error.get_or_insert(e);
                }
            }
            self.delivered_until_ps = self.delivered_until_ps.max(p.arrival_ps);
            rx.receive(p.arrival_ps, p.path, &p.data);
        }
    }

    /// Deliver everything still in flight; flush and close the captures
    /// (reporting the first write error, if any). Sending may continue
    /// afterwards (from the last arrival time on), without captures.
    pub fn finish(&mut self, rx: &mut dyn Receiver) -> io::Result<()> {
        self.deliver(u64::MAX, rx);
        if let Some(c) = self.captures.take() {
            for w in c.paths.into_iter().chain(std::iter::once(c.rx)) {
                if let Err(e) = w.into_inner().into_inner() {
                    self.capture_error.get_or_insert(e.into_error());
                }
            }
        }
        match self.capture_error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    pub fn path_stats(&self) -> Vec<PathStats> {
        self.links.iter().map(|l| l.stats).collect()
    }

    /// Packets the switches hashed (everything but malformed ones).
    pub fn sent(&self) -> u64 {
        self.sent
    }

    pub fn malformed(&self) -> u64 {
        self.malformed
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}

/// Path discovery, as the host does it with traceroute-style probes: try
/// candidate UDP source ports (`probe` says which path a port lands on, or
/// `None` if the probe got no answer) until each of `paths` paths has
/// `per_path` ports. Returns the ports per path, or the paths no candidate
/// reached (e.g. a polarized two-tier fabric, see docs/fabric.md).
pub fn discover_entropy(
    paths: usize,
    per_path: usize,
    candidates: impl IntoIterator<Item = u16>,
    mut probe: impl FnMut(u16) -> Option<usize>,
) -> Result<Vec<Vec<u16>>, Vec<usize>> {
    let mut found: Vec<Vec<u16>> = vec![Vec::new(); paths];
    let mut complete = 0;
    for port in candidates {
        if complete == paths {
            break;
        }
        if let Some(p) = probe(port) {
            if p < paths && found[p].len() < per_path {
                found[p].push(port);
                if found[p].len() == per_path {
                    complete += 1;
                }
            }
        }
    }
    let missing: Vec<usize> = (0..paths).filter(|&p| found[p].len() < per_path).collect();
    if missing.is_empty() {
        Ok(found)
    } else {
        Err(missing)
    }
}

/// The ephemeral port range (RFC 6335), where overlay source ports live.
pub const EPHEMERAL_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;

/// Discover one entropy value per path for the tunnel `ctx`, probing the
/// model with real Geneve packets from the card to the tunnel's peer. Entry
/// `i` of the result lands on path `i`, so a path table built from it in
/// order puts table entry `i` on fabric path `i`.
pub fn discover_path_table(fabric: &Fabric, ctx: &crate::geneve::TunnelContext) -> Result<Vec<u16>, Vec<usize>> {
    // A minimal inner frame: only the outer headers matter to the switches.
    let inner = [0u8; 14];
    let found = discover_entropy(fabric.path_count(), 1, EPHEMERAL_PORTS, |port| {
        fabric.path_of(&crate::geneve::encapsulate(&inner, ctx, port))
    })?;
    Ok(found.into_iter().map(|v| v[0]).collect())
}
