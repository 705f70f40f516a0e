//! Testbench of `virtq_used` (hdl/src/virtq/used.rs), the virtqueue
//! engine's used-ring writer, on its own (Verilated). Chains of eight queues
//! are reported done at random (bursts of one queue, random gaps); the
//! block's writes are applied to one guest memory (`vm-memory`), and the
//! same completions are given to rust-vmm's device side
//! (`virtio_queue::Queue::add_used`) over a second memory. Checked:
//!
//! - the used rings (every element and `used.idx`) end byte for byte equal
//!   to the reference's, and each `used.idx` write publishes only elements
//!   already written with the reference's values;
//! - a burst of completions of one queue costs one index write;
//! - after each index write the block reads `avail.flags` and interrupts
//!   exactly once unless the driver set `VIRTQ_AVAIL_F_NO_INTERRUPT`
//!   (queues with the flag get none, and the suppression is counted); a
//!   flags read that fails gives no interrupt and is counted;
//! - a used index set through the configuration port (a migrated queue)
//!   continues where it says, as the reference's `set_next_used`;
//! - rust-hdl's simulator agrees with Verilator cycle by cycle.

use offcard_hdl::regmap::virtq as vq;
use offcard_hdl::virtq::used::VirtqUsed;
use offcard_sim::{BlockSim, VerilatedBlock};
use offcard_testbench::encap_blocks::rusthdl_vs_verilator;
use rand::{rngs::SmallRng, Rng, SeedableRng};
use std::collections::VecDeque;
use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const MEM_SIZE: usize = 4 << 20;

fn memory() -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEM_SIZE)]).unwrap()
}

/// (size log2, available ring, used ring) of queue q; queue 7's available
/// ring is outside memory (its flags read fails).
fn layout(q: usize) -> (u32, u64, u64) {
    let base = 0x10_0000 + 0x1_0000 * q as u64;
    let avail = if q == 7 { MEM_SIZE as u64 + 0x1000 } else { base + 0x800 + 2 * (q % 4) as u64 };
    (2 + (q % 4) as u32, avail, base + 0xC00 + 4 * (q % 2) as u64)
}

#[derive(Default)]
struct Counts {
    dones: usize,
    index_writes: [usize; 8],
    irqs: [usize; 8],
    suppressed: usize,
    read_errors: usize,
}

/// Runs `n` completions; queues in `no_interrupt` have the flag set.
/// Returns the counts; panics on any mismatch with the reference.
fn run(b: &mut dyn BlockSim, seed: u64, n: usize, no_interrupt: &[usize], start_idx: &[(usize, u16)]) -> Counts {
    let mut rng = SmallRng::seed_from_u64(seed);
    let (mem, ref_mem) = (memory(), memory());
    let mut refs: Vec<Queue> = Vec::new();
    b.set("reset", 1);
    b.tick();
    b.set("reset", 0);
    let cfg = |b: &mut dyn BlockSim, q: usize, sel: u64, data: u64| {
        b.set("cfg_we", 1);
        b.set("cfg_q", q as u64);
        b.set("cfg_sel", sel);
        b.set("cfg_data", data);
        b.tick();
        b.set("cfg_we", 0);
    };
    for q in 0..vq::NUM_QUEUES {
        let (l, avail, used) = layout(q);
        let mut r = Queue::new(1 << l).unwrap();
        r.set_size(1 << l);
        r.set_avail_ring_address(Some(avail as u32), Some(0));
        r.set_used_ring_address(Some(used as u32), Some(0));
        r.set_ready(true);
        if q != 7 {
            let flags = if no_interrupt.contains(&q) { vq::AVAIL_F_NO_INTERRUPT } else { 0 };
            mem.write_obj(flags, GuestAddress(avail)).unwrap();
        }
        cfg(b, q, vq::CFG_AVAIL, avail);
        cfg(b, q, vq::CFG_USED, used);
        cfg(b, q, vq::CFG_CTRL, l as u64 | vq::CTRL_ENABLE | vq::CTRL_RESET);
        refs.push(r);
    }
    for &(q, idx) in start_idx {
        cfg(b, q, vq::CFG_USED_IDX, idx as u64);
        refs[q].set_next_used(idx);
        // The driver's ring already says so.
        let used = layout(q).2;
        mem.write_obj(idx, GuestAddress(used + vq::USED_IDX)).unwrap();
        ref_mem.write_obj(idx, GuestAddress(used + vq::USED_IDX)).unwrap();
    }
    let mut c = Counts::default();
    // Completions waiting to be offered: (queue, head, len).
    let mut offer: VecDeque<(usize, u16, u32)> = VecDeque::new();
    let mut answers: VecDeque<(u64, u64, bool)> = VecDeque::new();
    let (mut cycle, mut offered) = (0u64, 0);
    let mut pending_irq: [bool; 8] = [false; 8];
    // Runs until every completion was taken and the block has been quiet
    // (no write, read or answer) for a while.
    let mut quiet = 0;
    while c.dones < n || !offer.is_empty() || quiet < 100 {
        quiet += 1;
        if offered < n && offer.is_empty() && rng.gen_bool(0.3) {
            let q = rng.gen_range(0..vq::NUM_QUEUES);
            for _ in 0..rng.gen_range(1..=5).min(n - offered) {
                let size = 1u16 << layout(q).0;
                offer.push_back((q, rng.gen_range(0..size), rng.gen_range(0..9000)));
                offered += 1;
            }
        }
        let &(q, head, len) = offer.front().unwrap_or(&(0, 0, 0));
        b.set("done_valid", !offer.is_empty() as u64);
        b.set("done_q", q as u64);
        b.set("done_head", head as u64);
        b.set("done_len", len as u64);
        match answers.front() {
            Some(&(due, data, err)) if due <= cycle => {
                b.set("rsp_valid", 1);
                b.set("rsp_data", data);
                b.set("rsp_err", err as u64);
                answers.pop_front();
            }
            _ => {
                b.set("rsp_valid", 0);
                b.set("rsp_err", 0);
            }
        }
        let wr_ready = rng.gen_bool(0.7);
        let rd_ready = rng.gen_bool(0.7);
        b.set("wr_ready", wr_ready as u64);
        b.set("rd_ready", rd_ready as u64);
        b.eval();
        if b.get("done_ready") == 1 {
            assert!(!offer.is_empty(), "cycle {cycle}: took a chain nobody offered");
            offer.pop_front();
            refs[q].add_used(&ref_mem, head, len).unwrap();
            c.dones += 1;
        }
        if b.get("wr_valid") == 1 || b.get("rd_valid") == 1 || !answers.is_empty() {
            quiet = 0;
        }
        if b.get("wr_valid") == 1 && wr_ready {
            let (addr, data, bytes) = (b.get("wr_addr"), b.get("wr_data"), b.get("wr_bytes") as usize);
            assert!(bytes == 8 || bytes == 2, "a write of {bytes} bytes");
            mem.write_slice(&data.to_le_bytes()[..bytes], GuestAddress(addr)).unwrap();
            if bytes == 2 {
                // An index write: which queue, and is all it publishes in place?
                let wq = (0..8).find(|&w| layout(w).2 + vq::USED_IDX == addr).unwrap_or_else(|| panic!("index write at {addr:#x}"));
                let (l, _, used) = layout(wq);
                let new = data as u16;
                assert_eq!(new, refs[wq].next_used(), "queue {wq}: published index");
                for k in 0..(1u64 << l).min(new as u64) {
                    let at = used + vq::USED_RING + vq::USED_ELEM_BYTES * k;
                    let (got, want): (u64, u64) = (mem.read_obj(GuestAddress(at)).unwrap(), ref_mem.read_obj(GuestAddress(at)).unwrap());
                    assert_eq!(got, want, "queue {wq}: element {k} when index {new} was published");
                }
                c.index_writes[wq] += 1;
                assert!(!pending_irq[wq], "queue {wq}: a second index write before the first's flags check");
                pending_irq[wq] = true;
            }
        }
        if b.get("rd_valid") == 1 && rd_ready {
            let addr = b.get("rd_addr");
            let due = cycle + rng.gen_range(2..15);
            match mem.read_obj::<u64>(GuestAddress(addr)) {
                Ok(v) => answers.push_back((due, v, false)),
                Err(_) => answers.push_back((due, 0, true)),
            }
        }
        let irq_q = b.get("irq_q") as usize;
        for ev in ["irq", "ev_suppressed", "ev_read_error"] {
            if b.get(ev) == 1 {
                assert!(pending_irq[irq_q], "cycle {cycle}: {ev} for queue {irq_q} with no index write before it");
                pending_irq[irq_q] = false;
                match ev {
                    "irq" => c.irqs[irq_q] += 1,
                    "ev_suppressed" => c.suppressed += 1,
                    _ => c.read_errors += 1,
                }
            }
        }
        b.tick();
        cycle += 1;
        assert!(cycle < 200 * n as u64 + 1000, "stalled at {} of {n} completions", c.dones);
    }
    assert!(pending_irq.iter().all(|&p| !p), "an index write without its flags check");
    for q in 0..vq::NUM_QUEUES {
        let (l, _, used) = layout(q);
        let bytes = (vq::USED_RING + vq::USED_ELEM_BYTES * (1 << l)) as usize;
        let (mut got, mut want) = (vec![0u8; bytes], vec![0u8; bytes]);
        mem.read_slice(&mut got, GuestAddress(used)).unwrap();
        ref_mem.read_slice(&mut want, GuestAddress(used)).unwrap();
        // The flags word (first two bytes) is the driver's; the rest is the device's.
        assert_eq!(got[2..], want[2..], "queue {q}: used ring");
        b.set("st_q", q as u64);
        b.eval();
        assert_eq!(b.get("st_used_idx") as u16, refs[q].next_used(), "queue {q}: used index");
    }
    c
}

#[test]
fn used_rings_match_rust_vmm_and_interrupts_follow_the_flags() {
    let mut b = VerilatedBlock::new("virtq_used");
    let c = run(&mut b, 1, 4000, &[2, 5], &[]);
    let index_writes: usize = c.index_writes.iter().sum();
    assert!(index_writes * 10 < c.dones * 8, "{index_writes} index writes for {} completions: bursts share one", c.dones);
    for q in 0..8 {
        assert!(c.index_writes[q] > 20, "queue {q} was served");
        match q {
            2 | 5 | 7 => assert_eq!(c.irqs[q], 0, "queue {q}: no interrupt"),
            _ => assert_eq!(c.irqs[q], c.index_writes[q], "queue {q}: an interrupt per index write"),
        }
    }
    assert_eq!(c.suppressed, c.index_writes[2] + c.index_writes[5]);
    assert_eq!(c.read_errors, c.index_writes[7]);
}

#[test]
fn a_used_index_set_by_the_host_continues_from_there() {
    let mut b = VerilatedBlock::new("virtq_used");
    // Queue 1 (size 8) resumes at 65533: the index wraps past 65535.
    let c = run(&mut b, 2, 800, &[], &[(1, 65533), (4, 7)]);
    assert!(c.index_writes[1] > 5 && c.index_writes[4] > 5);
}

#[test]
fn rusthdl_and_verilator_agree_cycle_by_cycle() {
    let (c, cycles) = rusthdl_vs_verilator::<VirtqUsed, _>(|b| run(b, 3, 80, &[3], &[(0, 9)]));
    assert_eq!(c.dones, 80);
    assert!(cycles > 200);
}
