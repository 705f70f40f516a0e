//! Testbench of `virtq_chain_fetch` (hdl/src/virtq/chain_fetch.rs), the
//! virtqueue engine's chain fetcher, on its own (Verilated). The test plays
//! a virtio driver for eight split queues in a guest memory (rust-vmm's
//! `vm-memory`): descriptor tables, available rings at every 2-byte
//! alignment, chains of 1 to 4 descriptors in random slots, rings below and
//! above 4 GiB, sizes 4 to 32 so that indices wrap. It answers the block's
//! reads from that memory after random delays (an address outside it gets
//! an error beat) and takes segments with random back-pressure. Checked:
//!
//! - every chain the block hands on is the chain rust-vmm's device side
//!   (`virtio_queue::Queue::pop_descriptor_chain`) pops from the same
//!   rings: head, and each descriptor's address, length and write flag, in
//!   ring order per queue; `last_avail_idx` equals the reference's
//!   `next_avail` at the end;
//! - ring entries are fetched in batches (fewer ring reads than chains);
//! - each malformed ring (`avail.idx` jumping past the size, a head or a
//!   `next` out of range, a chain that loops, an indirect descriptor, a
//!   descriptor table outside memory) puts its queue into the matching
//!   error state with nothing handed on for the broken chain but an abort
//!   marker, while a healthy queue beside it goes on; a queue reset clears
//!   the error;
//! - the virtio layout constants match rust-vmm's `virtio-bindings`;
//! - rust-hdl's simulator agrees with Verilator cycle by cycle.

use offcard_hdl::regmap::virtq as vq;
use offcard_hdl::virtq::chain_fetch::VirtqChainFetch;
use offcard_sim::{BlockSim, VerilatedBlock};
use offcard_testbench::encap_blocks::rusthdl_vs_verilator;
use rand::seq::SliceRandom;
use rand::{rngs::SmallRng, Rng, SeedableRng};
use std::collections::VecDeque;
use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const LOW: u64 = 0;
const LOW_SIZE: usize = 16 << 20;
const HIGH: u64 = 0x1_0000_0000;
const HIGH_SIZE: usize = 1 << 20;

fn memory() -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(LOW), LOW_SIZE), (GuestAddress(HIGH), HIGH_SIZE)]).unwrap()
}

/// One segment as the block hands it on.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Seg {
    q: usize,
    head: u16,
    addr: u64,
    len: u32,
    write: bool,
    first: bool,
    last: bool,
    abort: bool,
}

/// A driver's view of one queue: where its rings are, its descriptors.
struct DriverQueue {
    size: u16,
    desc: u64,
    avail: u64,
    avail_idx: u16,
    free: Vec<u16>,
    /// Chains posted and not yet handed on, by head: their descriptors.
    in_flight: VecDeque<(u16, Vec<u16>)>,
    reference: Queue,
}

impl DriverQueue {
    fn new(mem: &GuestMemoryMmap, size_log2: u32, desc: u64, avail: u64, used: u64) -> Self {
        let size = 1u16 << size_log2;
        let mut reference = Queue::new(size).unwrap();
        reference.set_size(size);
        reference.set_desc_table_address(Some(desc as u32), Some((desc >> 32) as u32));
        reference.set_avail_ring_address(Some(avail as u32), Some((avail >> 32) as u32));
        reference.set_used_ring_address(Some(used as u32), Some((used >> 32) as u32));
        reference.set_ready(true);
        assert!(reference.is_valid(mem), "reference queue at {desc:#x}/{avail:#x}/{used:#x}");
        mem.write_obj(0u16, GuestAddress(avail)).unwrap();
        mem.write_obj(0u16, GuestAddress(avail + vq::AVAIL_IDX)).unwrap();
        DriverQueue { size, desc, avail, avail_idx: 0, free: (0..size).collect(), in_flight: VecDeque::new(), reference }
    }

    fn write_desc(&self, mem: &GuestMemoryMmap, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let at = self.desc + vq::DESC_BYTES * i as u64;
        mem.write_obj(addr, GuestAddress(at)).unwrap();
        mem.write_obj(len, GuestAddress(at + 8)).unwrap();
        mem.write_obj(flags, GuestAddress(at + 12)).unwrap();
        mem.write_obj(next, GuestAddress(at + 14)).unwrap();
    }

    /// Publishes `head` in the available ring (entry, then index).
    fn publish(&mut self, mem: &GuestMemoryMmap, head: u16) {
        let slot = self.avail + vq::AVAIL_RING + 2 * (self.avail_idx % self.size) as u64;
        mem.write_obj(head, GuestAddress(slot)).unwrap();
        self.avail_idx = self.avail_idx.wrapping_add(1);
        mem.write_obj(self.avail_idx, GuestAddress(self.avail + vq::AVAIL_IDX)).unwrap();
    }

    /// Posts a chain of 1 to 4 free descriptors in random slots.
    fn post_chain(&mut self, mem: &GuestMemoryMmap, rng: &mut SmallRng, write: bool) -> bool {
        let n = rng.gen_range(1..=4usize).min(self.free.len());
        if n == 0 {
            return false;
        }
        self.free.shuffle(rng);
        let chain: Vec<u16> = self.free.split_off(self.free.len() - n);
        for (k, &i) in chain.iter().enumerate() {
            let next = chain.get(k + 1).copied();
            let flags = if write { vq::DESC_F_WRITE } else { 0 } | if next.is_some() { vq::DESC_F_NEXT } else { 0 };
            // Unused `next` fields hold junk, as a driver's free list leaves them.
            self.write_desc(mem, i, rng.gen_range(0..0x1_0000_0000u64) & !1, rng.gen_range(1..4000), flags, next.unwrap_or(rng.gen()));
        }
        self.publish(mem, chain[0]);
        self.in_flight.push_back((chain[0], chain));
        true
    }
}

/// The block with its environment: the memory, the read port's pending
/// answers, the segments taken.
struct Bench<'a> {
    b: &'a mut dyn BlockSim,
    rng: SmallRng,
    /// Beats to answer: (cycle due, data, error).
    answers: VecDeque<(u64, u64, bool)>,
    cycle: u64,
    segs: Vec<Seg>,
    reads: Vec<(u64, u64)>,
    errors: usize,
    p_seg_ready: f64,
    /// Room per queue (`room`), and whether even queues' room is random
    /// each cycle (receive queues whose next stage fills and drains).
    room: u64,
    random_room: bool,
}

impl<'a> Bench<'a> {
    fn new(b: &'a mut dyn BlockSim, seed: u64) -> Self {
        let bench = Bench {
            b,
            rng: SmallRng::seed_from_u64(seed),
            answers: VecDeque::new(),
            cycle: 0,
            segs: vec![],
            reads: vec![],
            errors: 0,
            p_seg_ready: 0.7,
            room: 0xFF,
            random_room: false,
        };
        bench.b.set("room", 0xFF);
        bench.b.set("one_chain", 0);
        bench.b.set("reset", 1);
        bench.b.tick();
        bench.b.set("reset", 0);
        bench
    }

    fn cfg(&mut self, q: usize, sel: u64, data: u64) {
        self.b.set("cfg_we", 1);
        self.b.set("cfg_q", q as u64);
        self.b.set("cfg_sel", sel);
        self.b.set("cfg_data", data);
        self.step(None);
        self.b.set("cfg_we", 0);
    }

    fn setup(&mut self, q: usize, dq: &DriverQueue) {
        self.cfg(q, vq::CFG_DESC, dq.desc);
        self.cfg(q, vq::CFG_AVAIL, dq.avail);
        self.cfg(q, vq::CFG_CTRL, dq.size.trailing_zeros() as u64 | vq::CTRL_ENABLE | vq::CTRL_RESET);
    }

    fn kick(&mut self, mem: &GuestMemoryMmap, q: usize) {
        self.b.set("kick", 1);
        self.b.set("kick_q", q as u64);
        self.step(Some(mem));
        self.b.set("kick", 0);
    }

    fn status(&mut self, q: usize) -> (u16, u64) {
        self.b.set("st_q", q as u64);
        self.b.eval();
        (self.b.get("st_last_avail") as u16, self.b.get("st_err"))
    }

    /// One cycle: answer reads, take segments.
    fn step(&mut self, mem: Option<&GuestMemoryMmap>) {
        let b = &mut *self.b;
        match self.answers.front() {
            Some(&(due, data, err)) if due <= self.cycle => {
                b.set("rsp_valid", 1);
                b.set("rsp_data", data);
                b.set("rsp_err", err as u64);
                self.answers.pop_front();
            }
            _ => {
                b.set("rsp_valid", 0);
                b.set("rsp_err", 0);
            }
        }
        let rd_ready = self.answers.is_empty() && self.rng.gen_bool(0.6);
        b.set("rd_ready", rd_ready as u64);
        let seg_ready = self.rng.gen_bool(self.p_seg_ready);
        b.set("seg_ready", seg_ready as u64);
        if self.random_room {
            self.room = 0xAA | if self.rng.gen_bool(0.5) { 0x55 } else { 0 };
        }
        b.set("room", self.room);
        b.eval();
        if b.get("rd_valid") == 1 && rd_ready {
            let (addr, qws) = (b.get("rd_addr"), b.get("rd_qws"));
            assert_eq!(addr % 8, 0, "cycle {}: read address {addr:#x} not 8-byte aligned", self.cycle);
            assert!(qws == 1 || qws == 2, "read of {qws} words");
            self.reads.push((addr, qws));
            let mem = mem.expect("a read while configuring");
            let mut due = self.cycle + self.rng.gen_range(2..20);
            for k in 0..qws {
                match mem.read_obj::<u64>(GuestAddress(addr + 8 * k)) {
                    Ok(v) => self.answers.push_back((due, v, false)),
                    Err(_) => {
                        self.answers.push_back((due, 0, true));
                        break;
                    }
                }
                due += self.rng.gen_range(0..2);
            }
        }
        if b.get("seg_valid") == 1 && seg_ready {
            self.segs.push(Seg {
                q: b.get("seg_q") as usize,
                head: b.get("seg_head") as u16,
                addr: b.get("seg_addr"),
                len: b.get("seg_len") as u32,
                write: b.get("seg_write") == 1,
                first: b.get("seg_first") == 1,
                last: b.get("seg_last") == 1,
                abort: b.get("seg_abort") == 1,
            });
        }
        self.errors += b.get("ev_error") as usize;
        b.tick();
        self.cycle += 1;
    }
}

/// Queue layouts: (size log2, descriptor table, available ring, used ring).
/// Available rings at each 2-byte alignment within an 8-byte word.
fn layouts() -> Vec<(u32, u64, u64, u64)> {
    (0..vq::NUM_QUEUES)
        .map(|q| {
            let base = if q % 3 == 2 { HIGH + 0x1000 * q as u64 } else { 0x10_0000 + 0x1_0000 * q as u64 };
            (2 + (q % 4) as u32, base, base + 0x800 + 2 * (q % 4) as u64, base + 0xC00)
        })
        .collect()
}

/// Random traffic on all eight queues; every chain handed on is checked
/// against rust-vmm's device side. Returns (chains, ring reads).
fn random_traffic(b: &mut dyn BlockSim, seed: u64, chains_wanted: usize, gated: bool) -> (usize, usize, Vec<Seg>) {
    let mem = memory();
    let mut bench = Bench::new(b, seed);
    if gated {
        // Receive queues (even): room comes and goes, one chain a turn.
        bench.b.set("one_chain", 0x55);
        bench.random_room = true;
    }
    let mut qs: Vec<DriverQueue> = layouts().into_iter().map(|(l, d, a, u)| DriverQueue::new(&mem, l, d, a, u)).collect();
    for (q, dq) in qs.iter().enumerate() {
        bench.setup(q, dq);
    }
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed);
    let (mut posted, mut checked, mut seen) = (0, 0, 0);
    let mut partial: Vec<Vec<Seg>> = vec![vec![]; vq::NUM_QUEUES];
    while checked < chains_wanted {
        if posted < chains_wanted && rng.gen_bool(0.05) {
            let q = rng.gen_range(0..vq::NUM_QUEUES);
            let burst = rng.gen_range(1..=6);
            let mut any = false;
            for _ in 0..burst {
                if posted < chains_wanted && qs[q].post_chain(&mem, &mut rng, q % 2 == 0) {
                    posted += 1;
                    any = true;
                }
            }
            if any {
                bench.kick(&mem, q);
                continue;
            }
        }
        bench.step(Some(&mem));
        assert!(bench.cycle < 400 * chains_wanted as u64 + 10_000, "stalled: {checked} of {chains_wanted} chains checked");
        while seen < bench.segs.len() {
            let s = bench.segs[seen];
            seen += 1;
            assert!(!s.abort, "abort segment on a well-formed ring: {s:?}");
            let p = &mut partial[s.q];
            assert_eq!(s.first, p.is_empty(), "queue {}: first flag: {s:?}", s.q);
            p.push(s);
            if !s.last {
                continue;
            }
            let chain = std::mem::take(p);
            let dq = &mut qs[s.q];
            let want = dq.reference.pop_descriptor_chain(&mem).unwrap_or_else(|| panic!("queue {}: the reference has no chain", s.q));
            assert_eq!(want.head_index(), s.head, "queue {}: head", s.q);
            let want: Vec<(u64, u32, bool)> = want.map(|d| (d.addr().0, d.len(), d.is_write_only())).collect();
            let got: Vec<(u64, u32, bool)> = chain.iter().map(|g| (g.addr, g.len, g.write)).collect();
            assert_eq!(got, want, "queue {} head {}", s.q, s.head);
            assert!(chain.iter().all(|g| g.head == s.head), "queue {}: segments of one chain carry its head", s.q);
            // The device is done with the chain: the driver may reuse it.
            let (head, descs) = dq.in_flight.pop_front().unwrap();
            assert_eq!(head, s.head, "queue {}: chains out of ring order", s.q);
            dq.free.extend(descs);
            checked += 1;
        }
    }
    for (q, dq) in qs.iter().enumerate() {
        assert_eq!(bench.status(q), (dq.reference.next_avail(), vq::ERR_NONE), "queue {q}: last_avail_idx, error");
        assert!(dq.in_flight.is_empty(), "queue {q}: chains posted and not handed on");
    }
    assert_eq!(bench.errors, 0);
    if gated {
        // One chain a turn: every chain of a receive queue began with its own avail.idx read.
        for (q, dq) in qs.iter().enumerate().filter(|(q, _)| q % 2 == 0) {
            let idx_reads = bench.reads.iter().filter(|(a, _)| *a == (dq.avail + vq::AVAIL_IDX) & !7).count();
            let chains = bench.segs.iter().filter(|s| s.q == q && s.last).count();
            assert!(idx_reads >= chains, "queue {q}: {chains} chains from {idx_reads} turns");
        }
    }
    let ring_reads = bench
        .reads
        .iter()
        .filter(|(a, _)| qs.iter().any(|dq| *a >= (dq.avail + vq::AVAIL_RING) & !7 && *a < dq.avail + vq::AVAIL_RING + 2 * dq.size as u64) && !qs.iter().any(|dq| *a == (dq.avail + vq::AVAIL_IDX) & !7))
        .count();
    (checked, ring_reads, bench.segs)
}

#[test]
fn chains_match_rust_vmm_device_side_on_eight_queues() {
    let (chains, ring_reads, segs) = random_traffic(&mut VerilatedBlock::new("virtq_chain_fetch"), 1, 3000, false);
    assert!(segs.len() > chains * 2, "chains of several descriptors were walked: {} segments", segs.len());
    // Batching: up to four heads come from one ring read.
    assert!(ring_reads * 10 < chains * 9, "{ring_reads} ring reads for {chains} chains");
    for q in 0..vq::NUM_QUEUES {
        assert!(segs.iter().filter(|s| s.q == q).count() > 100, "queue {q} was served");
    }
}

/// What breaks a queue: each case writes one malformed ring on queue 3,
/// after one good chain went through, while queue 4 runs a healthy one.
/// Returns the block's error code for queue 3 and whether the broken chain
/// ended in an abort marker.
fn broken_ring(case: &str) -> (u64, bool) {
    let mem = memory();
    let mut block = VerilatedBlock::new("virtq_chain_fetch");
    let mut bench = Bench::new(&mut block, 7);
    let lay = layouts();
    let (l, d, a, u) = lay[3];
    let mut bad = DriverQueue::new(&mem, l, d, a, u);
    let (l4, d4, a4, u4) = lay[4];
    let mut good = DriverQueue::new(&mem, l4, d4, a4, u4);
    if case == "desc_unmapped" {
        // The table's last 32 bytes are the low region's: its higher
        // entries are outside guest memory.
        bad.desc = LOW + LOW_SIZE as u64 - 32;
    }
    bench.setup(3, &bad);
    bench.setup(4, &good);
    let size = bad.size;
    bad.write_desc(&mem, 0, 0x1000, 64, 0, 0);
    bad.publish(&mem, 0);
    bench.kick(&mem, 3);
    for _ in 0..300 {
        bench.step(Some(&mem));
    }
    match case {
        "avail_jump" => {
            bad.avail_idx = bad.avail_idx.wrapping_add(size + 1);
            mem.write_obj(bad.avail_idx, GuestAddress(bad.avail + vq::AVAIL_IDX)).unwrap();
        }
        "head_index" => bad.publish(&mem, size),
        "head_next_index" => {
            bad.write_desc(&mem, 1, 0x2000, 100, vq::DESC_F_NEXT, size + 3);
            bad.publish(&mem, 1);
        }
        "next_index" => {
            bad.write_desc(&mem, 1, 0x2000, 100, vq::DESC_F_NEXT, 2);
            bad.write_desc(&mem, 2, 0x3000, 100, vq::DESC_F_NEXT, size + 3);
            bad.publish(&mem, 1);
        }
        "loop" => {
            bad.write_desc(&mem, 1, 0x2000, 100, vq::DESC_F_NEXT, 2);
            bad.write_desc(&mem, 2, 0x3000, 100, vq::DESC_F_NEXT, 1);
            bad.publish(&mem, 1);
        }
        "indirect" => {
            bad.write_desc(&mem, 1, 0x2000, 100, vq::DESC_F_NEXT, 2);
            bad.write_desc(&mem, 2, 0x4000, 32, vq::DESC_F_INDIRECT, 0);
            bad.publish(&mem, 1);
        }
        "desc_unmapped" => bad.publish(&mem, size - 1),
        _ => unreachable!(),
    }
    bench.kick(&mem, 3);
    let mut rng = SmallRng::seed_from_u64(9);
    let mut good_chains = 0;
    for round in 0..40 {
        if good.post_chain(&mem, &mut rng, false) {
            bench.kick(&mem, 4);
        }
        for _ in 0..200 {
            bench.step(Some(&mem));
        }
        let done = bench.segs.iter().filter(|s| s.q == 4 && s.last).count();
        while good_chains < done {
            let (_, descs) = good.in_flight.pop_front().unwrap();
            good.free.extend(descs);
            good_chains += 1;
        }
        if round == 20 {
            // Kicking a queue in error does nothing.
            bench.kick(&mem, 3);
        }
    }
    let on3: Vec<Seg> = bench.segs.iter().filter(|s| s.q == 3).copied().collect();
    let errors = bench.errors;
    let (last, err) = bench.status(3);
    // Only the good chain moved last_avail_idx on.
    assert_eq!(last, 1, "{case}: last_avail_idx of the broken queue");
    assert_eq!(on3.iter().filter(|s| !s.abort && s.head == 0 && s.last).count(), 1, "{case}: the good chain before the break");
    assert!(on3.iter().filter(|s| s.abort).count() <= 1, "{case}: one abort at most");
    let aborted = on3.last().is_some_and(|s| s.abort && s.last);
    assert_eq!(errors, 1, "{case}: one error event");
    assert!(good_chains >= 30, "{case}: the healthy queue went on ({good_chains} chains)");
    // A reset clears the error; the queue works again from index 0.
    bench.cfg(3, vq::CFG_CTRL, l as u64 | vq::CTRL_ENABLE | vq::CTRL_RESET);
    assert_eq!(bench.status(3), (0, vq::ERR_NONE), "{case}: after reset");
    (err, aborted)
}

#[test]
fn malformed_rings_stop_only_their_queue_with_the_right_error() {
    for (case, code, abort) in [
        ("avail_jump", vq::ERR_AVAIL_JUMP, false),
        ("head_index", vq::ERR_INDEX, false),
        ("head_next_index", vq::ERR_INDEX, false),
        ("next_index", vq::ERR_INDEX, true),
        ("loop", vq::ERR_CHAIN_LOOP, true),
        ("indirect", vq::ERR_INDIRECT, true),
        ("desc_unmapped", vq::ERR_READ, false),
    ] {
        let (err, aborted) = broken_ring(case);
        assert_eq!((err, aborted), (code, abort), "{case}: error code, abort marker");
    }
}

/// Receive queues: a queue without room is not served (its chains wait, it
/// stays pending), and with room it gets one chain a turn; the chains still
/// equal rust-vmm's, and the transmit queues beside them go on.
#[test]
fn queues_wait_for_room_and_take_one_chain_a_turn() {
    let (chains, _, segs) = random_traffic(&mut VerilatedBlock::new("virtq_chain_fetch"), 3, 1500, true);
    assert_eq!(chains, 1500);
    for q in 0..vq::NUM_QUEUES {
        assert!(segs.iter().filter(|s| s.q == q).count() > 50, "queue {q} was served");
    }
    // No room at all for queue 0: kicked, it sends nothing; given room, it does.
    let mem = memory();
    let mut block = VerilatedBlock::new("virtq_chain_fetch");
    let mut bench = Bench::new(&mut block, 5);
    let lay = layouts();
    let (l, d, a, u) = lay[0];
    let mut dq = DriverQueue::new(&mem, l, d, a, u);
    bench.setup(0, &dq);
    bench.b.set("one_chain", 0x55);
    bench.room = 0xFE;
    let mut rng = SmallRng::seed_from_u64(6);
    let mut posted = 0;
    while posted < 3 && dq.post_chain(&mem, &mut rng, true) {
        posted += 1;
    }
    assert!(posted >= 1);
    bench.kick(&mem, 0);
    for _ in 0..2000 {
        bench.step(Some(&mem));
    }
    assert!(bench.segs.is_empty() && bench.reads.is_empty(), "a queue without room was served: {:?}", bench.segs);
    bench.room = 0xFF;
    for _ in 0..3000 {
        bench.step(Some(&mem));
    }
    assert_eq!(bench.segs.iter().filter(|s| s.last).count(), posted, "with room, the chains come");
}

#[test]
fn layout_constants_are_the_virtio_specifications() {
    use virtio_bindings::virtio_net::virtio_net_hdr_v1;
    use virtio_bindings::virtio_ring::*;
    assert_eq!(vq::DESC_F_NEXT as u32, VRING_DESC_F_NEXT);
    assert_eq!(vq::DESC_F_WRITE as u32, VRING_DESC_F_WRITE);
    assert_eq!(vq::DESC_F_INDIRECT as u32, VRING_DESC_F_INDIRECT);
    assert_eq!(vq::AVAIL_F_NO_INTERRUPT as u32, VRING_AVAIL_F_NO_INTERRUPT);
    assert_eq!(vq::DESC_BYTES as usize, std::mem::size_of::<vring_desc>());
    assert_eq!(vq::USED_ELEM_BYTES as usize, std::mem::size_of::<vring_used_elem>());
    assert_eq!(vq::NET_HDR_BYTES as usize, std::mem::size_of::<virtio_net_hdr_v1>());
    assert_eq!(1u64 << vq::MAX_SIZE_LOG2, 32768);
}

#[test]
fn rusthdl_and_verilator_agree_cycle_by_cycle() {
    let ((chains, _, segs), cycles) = rusthdl_vs_verilator::<VirtqChainFetch, _>(|b| random_traffic(b, 3, 60, true));
    assert_eq!(chains, 60);
    assert!(segs.len() > 60 && cycles > 500, "{} segments in {cycles} cycles", segs.len());
}
