//! The root-complex model: what a host's PCIe root port does for the card.
//!
//! It turns configuration and BAR accesses into TLPs on the card's RX stream,
//! matches the card's completions by tag (with a timeout that reports a card
//! that never answers), applies the card's memory writes through the IOMMU
//! view of host memory, and turns writes to the MSI address into interrupt
//! notifications. Stream timing (gaps on RX, back-pressure on TX) is random
//! but seeded, so every failure replays.
//!
//! It also stands in for the network: [`NetPort`] feeds queued frames into
//! the card's `net_rx_*` port and collects what the card sends on `net_tx_*`.

use crate::host_memory::HostMemory;
use crate::model::{CardInputs, CardModel, CardSim};
use crate::tlp::{self, Beat, CardTlp, Completion};
use offcard_regs::{self as regmap, cfg};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::{HashMap, VecDeque};

/// Routing ID of the root port (requester of host-initiated TLPs).
pub const ROOT_PORT_ID: u16 = 0x0000;
/// Where the card sits: bus 1, device 0, function 0.
pub const CARD_BDF: u16 = 0x0100;
/// x86 MSI address window base; writes into [MSI_BASE, MSI_BASE + 1 MiB) are interrupts.
pub const MSI_BASE: u64 = 0xFEE0_0000;
/// Completer ID the root port uses for completions to the card's reads.
pub const CARD_ROOT_ID: u16 = 0x0000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SimError {
    #[error("card did not complete {what} within {cycles} cycles (tag {tag})")]
    Timeout { what: String, tag: u8, cycles: u64 },
    #[error("{what} completed with status {status:03b} ({})", status_name(*status))]
    CompletionStatus { what: String, status: u8 },
    #[error("card protocol error: {0}")]
    Protocol(String),
    #[error("bad argument: {0}")]
    BadArgument(String),
}

pub fn status_name(s: u8) -> &'static str {
    match s {
        regmap::tlp::CPL_SC => "Successful Completion",
        regmap::tlp::CPL_UR => "Unsupported Request",
        regmap::tlp::CPL_CRS => "Configuration Request Retry Status",
        regmap::tlp::CPL_CA => "Completer Abort",
        _ => "reserved",
    }
}

/// Stream timing knobs; all randomness comes from the seed.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Probability that the root port leaves a cycle idle between beats it sends.
    pub rx_gap: f64,
    /// Probability that the root port is not ready for a beat from the card.
    pub tx_stall: f64,
    /// Cycles to wait for a completion before reporting a timeout.
    pub timeout_cycles: u64,
    /// Cycles between the card's read request and the first moment its
    /// completions may go back: a host's memory read latency (no host
    /// answers at once). Default [`DEFAULT_READ_LATENCY_NS`] at 125 MHz.
    pub read_latency_cycles: u64,
}

/// A host's read-completion latency the model assumes unless told otherwise.
pub const DEFAULT_READ_LATENCY_NS: u64 = 500;

impl Default for Timing {
    fn default() -> Self {
        Timing {
            rx_gap: 0.0,
            tx_stall: 0.0,
            timeout_cycles: 20_000,
            read_latency_cycles: (DEFAULT_READ_LATENCY_NS * offcard_regs::net::CARD_CLOCK_HZ).div_ceil(1_000_000_000),
        }
    }
}

/// Counts the root port keeps (for tests and reports).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RootStats {
    pub tlps_sent: u64,
    pub tlps_received: u64,
    pub completions: u64,
    pub msi: u64,
    pub dma_writes: u64,
    pub dma_write_errors: u64,
    pub unexpected: u64,
    pub dma_reads: u64,
    pub read_completions: u64,
    pub iommu_faults: u64,
}

/// A frame on the card's Ethernet port (without FCS): outer, encapsulated
/// frames in both directions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetFrame {
    pub bytes: Vec<u8>,
}

impl NetFrame {
    pub fn new(bytes: Vec<u8>) -> Self {
        NetFrame { bytes }
    }
}

/// The network side of the card as the root complex drives it each cycle:
/// queued frames go into `net_rx_*` (respecting the card's ready), frames
/// from `net_tx_*` are collected. Gaps and back-pressure are seeded, like the
/// PCIe streams'.
#[derive(Debug, Default)]
pub struct NetPort {
    /// Frames still to be fed to the card, in order.
    pub to_card: VecDeque<NetFrame>,
    /// Frames the card sent, in order.
    pub from_card: Vec<NetFrame>,
    /// Probability that an RX beat is held back for a cycle.
    pub rx_gap: f64,
    /// Probability that `net_tx_ready` is low for a cycle.
    pub tx_stall: f64,
    /// When set, `net_tx_ready` follows this pattern (indexed by the card's
    /// cycle count, repeating) instead of `tx_stall`.
    pub tx_ready_pattern: Option<Vec<bool>>,
    /// Frames fully taken by the card.
    pub frames_fed: u64,
    rx_beat: usize,
    tx_cur: Option<NetFrame>,
}

impl NetPort {
    /// Nothing left to feed and no TX frame half received.
    pub fn idle(&self) -> bool {
        self.to_card.is_empty() && self.tx_cur.is_none()
    }
}

pub struct RootComplex<C: CardSim = CardModel> {
    pub card: C,
    pub mem: HostMemory,
    pub timing: Timing,
    rng: SmallRng,
    to_card: VecDeque<Beat>,
    from_card: Vec<u32>,
    in_packet: bool,
    completions: HashMap<u8, Completion>,
    next_tag: u8,
    /// MSI vector the root port programmed (address, data) and interrupts seen.
    msi_vector: Option<(u64, u16)>,
    msi_seen: u64,
    pub stats: RootStats,
    /// Protocol errors the card made (malformed TLPs it sent); tests assert empty.
    pub card_errors: Vec<String>,
    /// When set, every TLP the card sends is logged here raw, in order, and
    /// not otherwise acted on (for comparison against a reference model).
    pub tlp_log: Option<Vec<Vec<u32>>>,
    /// When set, every TLP the card sends is also recorded here (and handled).
    pub seen: Option<Vec<Vec<u32>>>,
    /// When set, every memory write the card makes: (cycle of its first
    /// beat, cycle of its last beat, address, payload bytes) — for benchmarks.
    pub write_log: Option<Vec<(u64, u64, u64, u32)>>,
    sop_cycle: u64,
    /// Completions for the card's reads, per tag, not yet sent; the root
    /// port interleaves tags at random (seeded).
    /// Completions for the card's reads, by tag: (cycle from which it may be sent, TLP).
    pending_cpl: std::collections::BTreeMap<u8, VecDeque<(u64, Vec<u32>)>>,
    /// Accesses the IOMMU refused: (IOVA, is_write).
    pub iommu_faults: Vec<(u64, bool)>,
    /// Read Completion Boundary and the Max Payload Size completions obey.
    pub rcb: u64,
    pub max_payload: u64,
    /// The card's network ports.
    pub net: NetPort,
    /// Clock every cycle with [`step`](Self::step), never in quiet runs
    /// (see [`advance`](Self::advance)): the reference the runs are tested
    /// against.
    pub single_step: bool,
}

impl RootComplex<CardModel> {
    pub fn new(seed: u64, mem_bytes: usize) -> std::io::Result<Self> {
        Self::with_card(CardModel::new(), seed, mem_bytes)
    }
}

impl<C: CardSim> RootComplex<C> {
    /// A root complex around any clocked card (rust-hdl's simulation too).
    pub fn with_card(card: C, seed: u64, mem_bytes: usize) -> std::io::Result<Self> {
        Ok(RootComplex {
            card,
            mem: HostMemory::new(mem_bytes)?,
            timing: Timing::default(),
            rng: SmallRng::seed_from_u64(seed),
            to_card: VecDeque::new(),
            from_card: Vec::new(),
            in_packet: false,
            completions: HashMap::new(),
            next_tag: 0,
            msi_vector: None,
            msi_seen: 0,
            stats: RootStats::default(),
            card_errors: Vec::new(),
            tlp_log: None,
            seen: None,
            write_log: None,
            sop_cycle: 0,
            pending_cpl: Default::default(),
            iommu_faults: Vec::new(),
            rcb: 64,
            max_payload: 256,
            net: NetPort::default(),
            single_step: false,
        })
    }

    /// Queue a TLP (as DWs) for the card.
    pub fn send(&mut self, dws: &[u32]) {
        self.to_card.extend(tlp::to_beats(dws));
        self.stats.tlps_sent += 1;
    }

    /// Queue raw beats (for malformed-framing tests).
    pub fn send_beats(&mut self, beats: &[Beat]) {
        self.to_card.extend(beats.iter().copied());
    }

    pub fn alloc_tag(&mut self) -> u8 {
        let t = self.next_tag;
        self.next_tag = self.next_tag.wrapping_add(1);
        t
    }

    /// Advance one clock cycle.
    pub fn step(&mut self) {
        if self.to_card.is_empty() && !self.pending_cpl.is_empty() {
            // Completions whose read latency has passed, in a random order
            // across tags (in order within a tag, as PCIe requires).
            let now = self.card.cycles();
            let ready: Vec<u8> = self.pending_cpl.iter().filter(|(_, q)| q.front().is_some_and(|c| c.0 <= now)).map(|(&t, _)| t).collect();
            if !ready.is_empty() {
                let pick = if ready.len() == 1 { 0 } else { self.rng.gen_range(0..ready.len()) };
                let tag = ready[pick];
                let q = self.pending_cpl.get_mut(&tag).unwrap();
                let (_, t) = q.pop_front().unwrap();
                if q.is_empty() {
                    self.pending_cpl.remove(&tag);
                }
                self.to_card.extend(tlp::to_beats(&t));
            }
        }
        let mut inp = CardInputs::default();
        if let Some(b) = self.to_card.front() {
            if self.timing.rx_gap == 0.0 || !self.rng.gen_bool(self.timing.rx_gap) {
                inp.rx_data = b.data;
                inp.rx_keep = b.keep;
                inp.rx_sop = b.sop as u8;
                inp.rx_eop = b.eop as u8;
                inp.rx_valid = 1;
            }
        }
        let ready = self.timing.tx_stall == 0.0 || !self.rng.gen_bool(self.timing.tx_stall);
        inp.tx_ready = ready as u8;
        // network RX: the front frame's current beat
        if let Some(f) = self.net.to_card.front() {
            if self.net.rx_gap == 0.0 || !self.rng.gen_bool(self.net.rx_gap) {
                let start = self.net.rx_beat * 8;
                let end = (start + 8).min(f.bytes.len());
                let mut w = [0u8; 8];
                w[..end - start].copy_from_slice(&f.bytes[start..end]);
                inp.net_rx_data = u64::from_le_bytes(w);
                inp.net_rx_bytes = (end - start) as u8;
                inp.net_rx_last = (end == f.bytes.len()) as u8;
                inp.net_rx_valid = 1;
            }
        }
        let net_ready = match &self.net.tx_ready_pattern {
            Some(p) if !p.is_empty() => p[(self.card.cycles() % p.len() as u64) as usize],
            _ => self.net.tx_stall == 0.0 || !self.rng.gen_bool(self.net.tx_stall),
        };
        inp.net_tx_ready = net_ready as u8;
        let out = self.card.cycle(&inp);
        self.after_cycle(&inp, &out);
    }

    /// What the root port does with a cycle's outputs: take the beats that
    /// crossed (`inp` says what was offered and whether it was ready).
    fn after_cycle(&mut self, inp: &CardInputs, out: &crate::model::CardOutputs) {
        if inp.rx_valid != 0 && out.rx_ready != 0 {
            self.to_card.pop_front();
        }
        if inp.tx_ready != 0 && out.tx_valid != 0 {
            self.take_beat(out.tx_data, out.tx_keep, out.tx_sop != 0, out.tx_eop != 0);
        }
        if inp.net_rx_valid != 0 && out.net_rx_ready != 0 {
            if inp.net_rx_last != 0 {
                self.net.to_card.pop_front();
                self.net.rx_beat = 0;
                self.net.frames_fed += 1;
            } else {
                self.net.rx_beat += 1;
            }
        }
        if inp.net_tx_ready != 0 && out.net_tx_valid != 0 {
            self.take_net_beat(out);
        }
    }

    /// The inputs of the coming cycles while the root port has nothing to
    /// offer and nothing random to draw, and how many cycles that lasts at
    /// most: nothing queued for either stream, no stalls drawn at random,
    /// no read completion due (their latency runs out at a known cycle).
    /// `None` when the next cycle needs [`step`](Self::step).
    fn quiet_inputs(&self) -> Option<(CardInputs, u64)> {
        if !self.to_card.is_empty()
            || !self.net.to_card.is_empty()
            || self.timing.tx_stall != 0.0
            || self.net.tx_stall != 0.0
            || self.net.tx_ready_pattern.as_ref().is_some_and(|p| !p.is_empty())
        {
            return None;
        }
        let now = self.card.cycles();
        let limit = match self.pending_cpl.values().filter_map(|q| q.front()).map(|c| c.0).min() {
            Some(due) if due <= now => return None,
            Some(due) => due - now,
            None => u64::MAX,
        };
        Some((CardInputs { tx_ready: 1, net_tx_ready: 1, ..Default::default() }, limit))
    }

    /// Advance at least one and at most `max` cycles (none when `max` is 0),
    /// cycle for cycle as [`step`](Self::step) would: while the root port is
    /// quiet (see `quiet_inputs`) the card runs in one call until a beat
    /// crosses its boundary, which ends the run. Returns the cycles run.
    pub fn advance(&mut self, max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        match if self.single_step { None } else { self.quiet_inputs() } {
            Some((inp, limit)) => {
                let (n, out) = self.card.run_until_beat(&inp, max.min(limit));
                self.after_cycle(&inp, &out);
                n
            }
            None => {
                self.step();
                1
            }
        }
    }

    /// One beat of a frame from the card's network TX port; framing errors
    /// are card errors.
    fn take_net_beat(&mut self, o: &crate::model::CardOutputs) {
        let f = self.net.tx_cur.get_or_insert_with(|| NetFrame { bytes: Vec::new() });
        let n = o.net_tx_bytes as usize;
        let mut err = None;
        if n == 0 || n > 8 || (o.net_tx_last == 0 && n != 8) {
            err = Some(format!("network TX beat with {n} valid bytes (last={})", o.net_tx_last));
        }
        f.bytes.extend_from_slice(&o.net_tx_data.to_le_bytes()[..n.min(8)]);
        if o.net_tx_last != 0 {
            let f = self.net.tx_cur.take().unwrap();
            self.net.from_card.push(f);
        }
        if let Some(e) = err {
            self.card_error(e);
        }
    }

    pub fn run(&mut self, cycles: u64) {
        let mut left = cycles;
        while left > 0 {
            left -= self.advance(left);
        }
    }

    /// Run until nothing is queued for the card and the card is quiet for `quiet` cycles.
    pub fn drain(&mut self, quiet: u64) {
        let mut idle = 0;
        let mut guard = 0u64;
        while idle < quiet && guard < 10_000_000 {
            let before = (self.to_card.len(), self.stats.tlps_received);
            // A quiet run counts as that many idle steps: none of its cycles
            // but the last moves a beat, so only the last can end the count.
            let n = if before.0 == 0 && !self.in_packet {
                self.advance((quiet - idle).min(10_000_000 - guard))
            } else {
                self.step();
                1
            };
            guard += n;
            if self.to_card.is_empty() && before.0 == 0 && before.1 == self.stats.tlps_received && !self.in_packet {
                idle += n;
            } else {
                idle = 0;
            }
        }
    }

    pub fn pending_to_card(&self) -> usize {
        self.to_card.len()
    }

    /// Note a protocol error of the card (the first 100; the count goes on).
    fn card_error(&mut self, e: String) {
        if self.card_errors.len() < 100 {
            self.card_errors.push(e);
        }
    }

    fn take_beat(&mut self, data: u64, keep: u8, sop: bool, eop: bool) {
        if sop {
            if self.in_packet {
                self.card_error("card started a TLP before ending the previous one".into());
            }
            self.from_card.clear();
            self.in_packet = true;
            self.sop_cycle = self.card.cycles();
        } else if !self.in_packet {
            self.card_error("card sent a beat outside a TLP".into());
            return;
        }
        if keep & 1 != 0 {
            self.from_card.push(data as u32);
        }
        if keep & 2 != 0 {
            if keep & 1 == 0 {
                self.card_error("card sent keep=10".into());
            }
            self.from_card.push((data >> 32) as u32);
        }
        if eop {
            self.in_packet = false;
            let dws = std::mem::take(&mut self.from_card);
            self.stats.tlps_received += 1;
            self.handle_card_tlp(&dws);
        }
    }

    fn handle_card_tlp(&mut self, dws: &[u32]) {
        if let Some(s) = self.seen.as_mut() {
            s.push(dws.to_vec());
        }
        if let Some(log) = self.tlp_log.as_mut() {
            log.push(dws.to_vec());
            return;
        }
        match tlp::decode_from_card(dws) {
            Ok(CardTlp::Completion(c)) => {
                self.stats.completions += 1;
                if self.completions.insert(c.tag, c.clone()).is_some() {
                    self.card_error(format!("second completion for tag {}", c.tag));
                }
            }
            Ok(CardTlp::Mem(m)) if m.write => {
                if let Some(w) = self.write_log.as_mut() {
                    w.push((self.sop_cycle, self.card.cycles(), m.addr, 4 * m.data.len() as u32));
                }
                if (MSI_BASE..MSI_BASE + (1 << 20)).contains(&m.addr) {
                    self.stats.msi += 1;
                    match self.msi_vector {
                        Some((a, d)) if a == m.addr && m.data.len() == 1 && m.data[0] == d as u32 && m.fbe == 0xf => {
                            self.msi_seen += 1
                        }
                        _ => self.card_error(format!(
                            "MSI write {:#x}={:x?} does not match the programmed vector {:x?}",
                            m.addr, m.data, self.msi_vector
                        )),
                    }
                } else {
                    let bytes: Vec<u8> = m.data.iter().flat_map(|d| d.to_le_bytes()).collect();
                    let (first, last) = (m.fbe, if m.data.len() == 1 { m.fbe } else { m.lbe });
                    let start = first.trailing_zeros() as usize;
                    let end = bytes.len() - (last << 4).leading_zeros() as usize;
                    match self.mem.dma_write(m.addr + start as u64, &bytes[start..end.max(start)]) {
                        Ok(()) => self.stats.dma_writes += 1,
                        Err(_) => {
                            // The IOMMU drops it: host memory stays untouched.
                            self.stats.dma_write_errors += 1;
                            self.stats.iommu_faults += 1;
                            self.iommu_faults.push((m.addr + start as u64, true));
                        }
                    }
                }
            }
            Ok(CardTlp::Mem(m)) => self.serve_read(&m),
            Err(e) => self.card_error(e),
        }
    }

    /// Serve a memory read from the card: completions split at random
    /// multiples of the RCB (never above Max Payload Size), queued per tag;
    /// an IOVA that is not mapped gets one Unsupported Request completion.
    fn serve_read(&mut self, m: &tlp::MemRequest) {
        self.stats.dma_reads += 1;
        let len_dw = m.header.length_dw as u64;
        if m.tag >= 32 || (len_dw > 1 && m.lbe == 0) || m.addr % 4 != 0 {
            self.card_error(format!("malformed read from card: {m:?}"));
        }
        let (bc_total, la) = tlp::read_byte_count(m.addr, len_dw as u16, m.fbe, m.lbe);
        let bc_total = if bc_total == 0 { 4096 } else { bc_total as u64 };
        let first = m.addr + (la as u64 & 3);
        if len_dw * 4 > 4096 || (m.addr & 0xfff) + len_dw * 4 > 4096 {
            self.card_error(format!("card read crosses a 4 KiB boundary: {:#x}+{}", m.addr, len_dw * 4));
        }
        let mut bytes = vec![0u8; (len_dw * 4) as usize];
        let lead = (first - m.addr) as usize;
        if self.mem.dma_read(first, &mut bytes[lead..lead + bc_total as usize]).is_err() {
            self.stats.iommu_faults += 1;
            self.iommu_faults.push((first, false));
            let c = tlp::completion(CARD_ROOT_ID, regmap::tlp::CPL_UR, bc_total as u16 & 0xfff, m.requester, m.tag, la, &[]);
            let at = self.card.cycles() + self.timing.read_latency_cycles;
            self.pending_cpl.entry(m.tag).or_default().push_back((at, c));
            return;
        }
        let dws: Vec<u32> = bytes.chunks(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect();
        // Split points: RCB boundaries, chosen at random, no piece above MPS.
        let end = first + bc_total;
        let mut start = first;
        while start < end {
            let mut stop = ((start / self.rcb) + 1) * self.rcb;
            while stop < end && stop + self.rcb - (start & !3) <= self.max_payload && self.rng.gen_bool(0.5) {
                stop += self.rcb;
            }
            let stop = stop.min(end);
            let d0 = ((start & !3) - m.addr) / 4;
            let d1 = (stop - m.addr).div_ceil(4);
            let bc = (end - start) as u16 & 0xfff;
            let c = tlp::completion(CARD_ROOT_ID, regmap::tlp::CPL_SC, bc, m.requester, m.tag, (start & 0x7f) as u8, &dws[d0 as usize..d1 as usize]);
            self.stats.read_completions += 1;
            let at = self.card.cycles() + self.timing.read_latency_cycles;
            self.pending_cpl.entry(m.tag).or_default().push_back((at, c));
            start = stop;
        }
    }

    /// Wait for the completion with `tag`.
    pub fn wait_completion(&mut self, tag: u8, what: &str) -> Result<Completion, SimError> {
        let start = self.card.cycles();
        loop {
            if let Some(c) = self.completions.remove(&tag) {
                return Ok(c);
            }
            let waited = self.card.cycles() - start;
            if waited > self.timing.timeout_cycles {
                return Err(SimError::Timeout { what: what.into(), tag, cycles: self.timing.timeout_cycles });
            }
            // A completion arrives only with a beat, which ends a quiet run.
            self.advance(self.timing.timeout_cycles + 1 - waited);
        }
    }

    /// Take any completion that arrived (for tests that send many requests).
    pub fn take_completions(&mut self) -> Vec<Completion> {
        let mut v: Vec<_> = self.completions.drain().map(|(_, c)| c).collect();
        v.sort_by_key(|c| c.tag);
        v
    }

    fn check_ok(c: &Completion, what: &str) -> Result<(), SimError> {
        if c.status != regmap::tlp::CPL_SC {
            return Err(SimError::CompletionStatus { what: what.into(), status: c.status });
        }
        Ok(())
    }

    // ---- configuration space -------------------------------------------

    pub fn cfg_read(&mut self, reg: u16) -> Result<u32, SimError> {
        let tag = self.alloc_tag();
        self.send(&tlp::cfg_read0(ROOT_PORT_ID, tag, CARD_BDF, reg));
        let what = format!("config read {reg:#x}");
        let c = self.wait_completion(tag, &what)?;
        Self::check_ok(&c, &what)?;
        c.data.first().copied().ok_or(SimError::Protocol(format!("{what}: completion without data")))
    }

    pub fn cfg_write(&mut self, reg: u16, value: u32, be: u8) -> Result<(), SimError> {
        let tag = self.alloc_tag();
        self.send(&tlp::cfg_write0(ROOT_PORT_ID, tag, CARD_BDF, reg, value, be));
        let what = format!("config write {reg:#x}");
        let c = self.wait_completion(tag, &what)?;
        Self::check_ok(&c, &what)
    }

    // ---- memory (BAR) accesses -----------------------------------------

    /// Read `len_dw` (1 or 2) DWs at `addr` with byte enables.
    pub fn mem_read(&mut self, addr: u64, len_dw: u16, fbe: u8, lbe: u8) -> Result<Vec<u32>, SimError> {
        let tag = self.alloc_tag();
        self.send(&tlp::mem_read(ROOT_PORT_ID, tag, addr, len_dw, fbe, lbe, false));
        let what = format!("memory read {addr:#x}");
        let c = self.wait_completion(tag, &what)?;
        Self::check_ok(&c, &what)?;
        if c.data.len() != len_dw as usize {
            return Err(SimError::Protocol(format!("{what}: {} DWs returned, {len_dw} asked", c.data.len())));
        }
        Ok(c.data)
    }

    pub fn mem_write(&mut self, addr: u64, data: &[u32], fbe: u8, lbe: u8) {
        self.send(&tlp::mem_write(ROOT_PORT_ID, addr, data, fbe, lbe, false));
    }

    pub fn read32(&mut self, addr: u64) -> Result<u32, SimError> {
        Ok(self.mem_read(addr, 1, 0xf, 0)?[0])
    }

    pub fn read64(&mut self, addr: u64) -> Result<u64, SimError> {
        let v = self.mem_read(addr, 2, 0xf, 0xf)?;
        Ok(v[0] as u64 | (v[1] as u64) << 32)
    }

    /// Posted write; returns once the card has taken the whole TLP.
    pub fn write32(&mut self, addr: u64, value: u32) {
        self.mem_write(addr, &[value], 0xf, 0);
        self.flush();
    }

    pub fn write64(&mut self, addr: u64, value: u64) {
        self.mem_write(addr, &[value as u32, (value >> 32) as u32], 0xf, 0xf);
        self.flush();
    }

    /// Run until every queued beat has been accepted by the card (posted
    /// writes have no completion; ordering makes a later read see them).
    pub fn flush(&mut self) {
        let start = self.card.cycles();
        while !self.to_card.is_empty() && self.card.cycles() - start < self.timing.timeout_cycles {
            self.step();
        }
    }

    // ---- interrupts ------------------------------------------------------

    /// Interrupts received so far on the programmed MSI vector.
    pub fn msi_count(&self) -> u64 {
        self.msi_seen
    }

    /// Run until an MSI arrives beyond `seen`, for at most `cycles`.
    pub fn wait_msi(&mut self, seen: u64, cycles: u64) -> bool {
        let start = self.card.cycles();
        while self.msi_seen <= seen {
            let waited = self.card.cycles() - start;
            if waited >= cycles {
                return false;
            }
            self.advance(cycles - waited);
        }
        true
    }

    // ---- enumeration -----------------------------------------------------

    /// What a host does at boot: identify the function, size and assign
    /// BAR0, enable memory decoding and bus mastering, program MSI.
    pub fn enumerate(&mut self, bar0_addr: u64) -> Result<Enumerated, SimError> {
        let id = self.cfg_read(cfg::VENDOR_DEVICE)?;
        let (vendor, device) = (id as u16, (id >> 16) as u16);
        if vendor == 0xffff {
            return Err(SimError::Protocol("no function at 01:00.0".into()));
        }
        let class = self.cfg_read(cfg::CLASS_REV)? >> 8;
        // BAR sizing: write all ones, read back the mask, restore.
        self.cfg_write(cfg::BAR0, 0xffff_ffff, 0xf)?;
        self.cfg_write(cfg::BAR1, 0xffff_ffff, 0xf)?;
        let lo = self.cfg_read(cfg::BAR0)?;
        let hi = self.cfg_read(cfg::BAR1)?;
        if lo & 1 != 0 || (lo >> 1) & 3 != 2 {
            return Err(SimError::Protocol(format!("BAR0 is not a 64-bit memory BAR ({lo:#x})")));
        }
        let mask = ((hi as u64) << 32) | (lo & !0xf) as u64;
        let size = (!mask).wrapping_add(1);
        if size == 0 || !size.is_power_of_two() || bar0_addr % size != 0 {
            return Err(SimError::BadArgument(format!("BAR0 size {size:#x} cannot be placed at {bar0_addr:#x}")));
        }
        self.cfg_write(cfg::BAR0, bar0_addr as u32, 0xf)?;
        self.cfg_write(cfg::BAR1, (bar0_addr >> 32) as u32, 0xf)?;
        // Walk the capability list for MSI.
        let mut ptr = (self.cfg_read(cfg::CAP_PTR)? & 0xfc) as u16;
        let mut msi_cap = None;
        let mut guard = 0;
        while ptr != 0 && guard < 48 {
            let h = self.cfg_read(ptr)?;
            if h & 0xff == 0x05 {
                msi_cap = Some(ptr);
            }
            ptr = ((h >> 8) & 0xfc) as u16;
            guard += 1;
        }
        let msi_cap = msi_cap.ok_or(SimError::Protocol("no MSI capability".into()))?;
        let (msi_addr, msi_data) = (MSI_BASE | 0x1000, 0x4041u16);
        self.cfg_write(msi_cap + 4, msi_addr as u32, 0xf)?;
        self.cfg_write(msi_cap + 8, (msi_addr >> 32) as u32, 0xf)?;
        self.cfg_write(msi_cap + 12, msi_data as u32, 0x3)?;
        let ctl = self.cfg_read(msi_cap)?;
        self.cfg_write(msi_cap, ctl | (1 << 16), 0xc)?;
        self.msi_vector = Some((msi_addr, msi_data));
        // Device Control: Max_Payload_Size 256 B (001b), Max_Read_Request_Size 512 B (010b).
        self.cfg_write(cfg::PCIE_DEVCTL, (0b001 << 5) | (0b010 << 12), 0x3)?;
        self.max_payload = 256;
        let cmd = (cfg::COMMAND_MEM_ENABLE | cfg::COMMAND_BUS_MASTER) as u32;
        self.cfg_write(cfg::COMMAND_STATUS, cmd, 0x3)?;
        let status = self.cfg_read(cfg::COMMAND_STATUS)?;
        if status & cmd != cmd {
            return Err(SimError::Protocol(format!("command register did not take {cmd:#x}: {status:#x}")));
        }
        Ok(Enumerated { vendor, device, class, bar0: bar0_addr, bar0_size: size, msi_cap })
    }

    /// Record the MSI vector when a test programs it itself.
    pub fn set_msi_vector(&mut self, addr: u64, data: u16) {
        self.msi_vector = Some((addr, data));
    }
}

/// What enumeration found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enumerated {
    pub vendor: u16,
    pub device: u16,
    pub class: u32,
    pub bar0: u64,
    pub bar0_size: u64,
    pub msi_cap: u16,
}
