//! Testbench of `dma_write` (hdl/src/dma/write.rs), the DMA engine's back
//! end, on its own (Verilated). The test plays the front end (jobs on
//! `bj_*`, in order, buffer space handed out as the front end does and
//! given back through `free_pos`), the read engine (`filled_pos` advancing
//! over the jobs' bytes as they arrive, read errors on `read_err`), the
//! transfer buffer (a byte model answering `buf_rd_pos` one cycle later, as
//! `ByteBuffer` does; bytes not arrived yet hold garbage), the registers
//! (`dma_regs`: completion ring base and head per queue, the write-record
//! ring, flush) and the host and network sides. Checked against docs/dma.md:
//!
//! - Memory Writes (decoded from the beats: header, 3-DW below 4 GiB,
//!   requester, address, byte enables) write exactly each job's bytes at its
//!   destination, in order, split at Max Payload Size (128 or 256 B)
//!   boundaries; none is offered before `filled_pos` covers its last byte
//!   (network frames: their last byte), none set up after the job's read
//!   error is seen (the back end decides a TLP a cycle ahead, so one decided
//!   in the cycle the error shows may go: its bytes all arrived, which the
//!   byte check confirms); RX jobs (`bj_local`) go at once;
//! - the completion entry: 16 bytes at the queue's completion base +
//!   head * 16 after the job's data (cookie, bytes, status, queue, flags:
//!   done and tenant), then `head_inc` for the queue, `err_clear` for the
//!   job id, `free_pos` = the job's end; a read error completes with
//!   `CPL_STATUS_READ_ERROR` once the job's bytes are all accounted for;
//!   front-end errors complete at once;
//! - TX jobs go out on `ntx_*` as one frame (bytes, tenant and length on every
//!   beat, the last beat's unused bytes 0) under random back-pressure;
//! - write records: each record slot (`WREC_PROD` mod entries) written only
//!   when the host has consumed it, with sequence = producer count; the
//!   records are exactly the maximal runs of adjacent writes of one source
//!   (data and completion entries kept apart), so every write is covered and
//!   nothing else; a flush writes the open records, then the producer count
//!   at `WREC_WB`, then `flush_done`; a full ring stalls the write (MSI on
//!   the first cycle, counted) until the host frees a slot, or until
//!   `WREC_TIMEOUT` (overflow, then no records);
//! - the MSI after `IRQ_COALESCE` completions and when idle, events
//!   (`CNT_*`) per cycle;
//! - and rust-hdl's simulator agrees with Verilator cycle by cycle.

use offcard_hdl::byte_buffer::POS_BITS;
use offcard_hdl::dma::read::VPOS_BITS;
use offcard_hdl::dma::regs::{
    EV_COALESCED, EV_DESC_DONE, EV_DESC_ERROR, EV_RECORDS, EV_STALL, EV_TX_FRAMES, NUM_EVENTS,
};
use offcard_hdl::dma::write::WriteEngine;
use offcard_hdl::regmap::{dma, tlp as tlpc};
use offcard_sim::tlp::{decode_from_card, CardTlp, MemRequest};
use offcard_sim::{BlockSim, VerilatedBlock};
use offcard_testbench::dma_blocks::{
    block_inputs, differential, pattern_byte, random_fit, request_span, StreamTlp, TlpStream,
};
use rand::{rngs::SmallRng, Rng, SeedableRng};
use std::collections::VecDeque;

const VMASK: u64 = (1 << VPOS_BITS) - 1;
const BUF: u64 = 1 << POS_BITS;
const REQUESTER: u64 = 0x0a18;
const MODES: [u32; 4] = [dma::QMODE_COPY, dma::QMODE_TX, dma::QMODE_RX, dma::QMODE_COPY];
/// Completion rings: two below 4 GiB (3-DW writes), two above.
const CPL_BASE: [u64; 4] = [0x0010_0000, 0x0010_1000, 0x7_0000_0000, 0x7_0001_0000];
const CPL_LOG2: u32 = 3;

fn die(cycle: u64, msg: String) -> ! {
    panic!("dma_write, cycle {cycle}: {msg}")
}

#[derive(Clone, Debug)]
struct Job {
    n: usize,
    q: usize,
    mode: u32,
    /// The front end's status (0, or an error found before any read).
    status: u16,
    cookie: u64,
    /// `bj_bytes`: the length (copy, TX), the frame's length (RX).
    bytes: u32,
    tenant: u8,
    dst: u64,
    local: bool,
    id: u8,
    max_payload: u64,
    /// Read error at this byte offset (the read engine's).
    fail_at: Option<u64>,
    // set when allocated
    pos0: u64,
    end: u64,
    allocated: bool,
    // progress
    taken: bool,
    written: u64,
    cpl_written: bool,
    finished: bool,
}

impl Job {
    fn has_data(&self) -> bool {
        self.status == 0
    }
    fn reads(&self) -> bool {
        self.status == 0 && !self.local
    }
    fn final_status(&self) -> u16 {
        if self.status != 0 {
            self.status
        } else if self.fail_at.is_some() {
            dma::CPL_STATUS_READ_ERROR
        } else {
            dma::CPL_STATUS_OK
        }
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Drain {
    /// The host consumes each record up to this many cycles after it appears.
    Lag(u64),
    /// The host consumes nothing until `host_drain` is called.
    Never,
}

#[derive(Clone, Debug)]
struct Config {
    seed: u64,
    jobs: usize,
    wrec_log2: u64,
    wrec_timeout: u64,
    drain: Drain,
    /// Small copies to scattered destinations (every write needs a record).
    scattered: bool,
    /// Host flushes at random times (besides the one at the end).
    random_flush: bool,
}

/// One memory write the engine made, for the record check.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Write {
    iova: u64,
    len: u64,
    src: u8,
}

struct Bench {
    cfg: Config,
    hw: VerilatedBlock,
    rng: SmallRng,
    cycle: u64,
    jobs: Vec<Job>,
    // front end
    alloc: u64,
    next_alloc: usize,
    next_present: usize,
    /// The job the back end works on.
    cur: Option<usize>,
    free: u64,
    // read engine
    filled: u64,
    filled_hist: Vec<u64>,
    fill_job: usize,
    fill_off: u64,
    fill_next: u64,
    fill_jump: Option<u64>,
    read_err: u8,
    err_hist: Vec<u8>,
    // buffer
    buf: Vec<u8>,
    rd_pos: u64,
    // registers
    head: [u64; 4],
    prod: u64,
    cons: u64,
    cons_at: VecDeque<(u64, u64)>,
    flush_pending: bool,
    overflow: bool,
    irq_coalesce: u64,
    cpl_since: u64,
    max_payload: u64,
    // host
    stream: TlpStream,
    writes: Vec<(Write, bool)>,
    records: Vec<Write>,
    /// The open data and completion records (model).
    od: Option<Write>,
    oc: Option<Write>,
    /// A record was written to make room: the next write of its kind must not extend it.
    must_break: [Option<Write>; 2],
    expect_coalesced: u64,
    wait_record_written: bool,
    wait_flush_done: bool,
    wait_finish: bool,
    // network
    ntx_ready_p: f64,
    ntx_held: Option<(u64, u64, bool)>,
    ntx_off: u64,
    tx_ready_p: f64,
    // counts
    events: [u64; NUM_EVENTS],
    irqs: u64,
    idle_irqs: u64,
    stall_irqs: u64,
    /// The front end hands out no job before this cycle (idle periods).
    pause_until: u64,
    first_stall_irq: bool,
    stall_runs: u64,
    overflow_sets: u64,
    flushes: u64,
    data_tlps: u64,
    frames: u64,
    prev_stall: bool,
    /// Writes decided in the cycle the job's read error showed.
    late_after_err: u64,
    records_at_overflow: u64,
    stall_at_overflow: u64,
}

impl Bench {
    fn new(cfg: Config) -> Self {
        let mut rng = SmallRng::seed_from_u64(cfg.seed);
        let buf = (0..BUF).map(|_| rng.gen()).collect();
        let mut b = Bench {
            hw: VerilatedBlock::new("dma_write"),
            rng,
            cycle: 0,
            jobs: vec![],
            alloc: 0,
            next_alloc: 0,
            next_present: 0,
            cur: None,
            free: 0,
            filled: 0,
            filled_hist: vec![],
            fill_job: 0,
            fill_off: 0,
            fill_next: 0,
            fill_jump: None,
            read_err: 0,
            err_hist: vec![],
            buf,
            rd_pos: 0,
            head: [0; 4],
            prod: 0,
            cons: 0,
            cons_at: VecDeque::new(),
            flush_pending: false,
            overflow: false,
            irq_coalesce: 1,
            cpl_since: 0,
            max_payload: 0,
            stream: TlpStream::new(false),
            writes: vec![],
            records: vec![],
            od: None,
            oc: None,
            must_break: [None; 2],
            expect_coalesced: 0,
            wait_record_written: false,
            wait_flush_done: false,
            wait_finish: false,
            ntx_ready_p: 0.8,
            ntx_held: None,
            ntx_off: 0,
            tx_ready_p: 0.8,
            events: [0; NUM_EVENTS],
            irqs: 0,
            idle_irqs: 0,
            stall_irqs: 0,
            pause_until: 0,
            first_stall_irq: true,
            stall_runs: 0,
            overflow_sets: 0,
            flushes: 0,
            data_tlps: 0,
            frames: 0,
            prev_stall: false,
            late_after_err: 0,
            records_at_overflow: 0,
            stall_at_overflow: 0,
            cfg,
        };
        for n in 0..b.cfg.jobs {
            let j = b.gen_job(n);
            b.jobs.push(j);
        }
        b
    }

    fn fail(&self, msg: String) -> ! {
        die(self.cycle, msg)
    }

    fn gen_job(&mut self, n: usize) -> Job {
        let r = &mut self.rng;
        let q = if self.cfg.scattered { [0, 3][r.gen_range(0..2)] } else { r.gen_range(0..4) };
        let mode = MODES[q];
        let mut len: u64 = match r.gen_range(0..10) {
            0 => r.gen_range(1..=16),
            1..=3 => r.gen_range(17..=600),
            4..=6 => r.gen_range(601..=4096),
            7..=8 => r.gen_range(4097..=20000),
            _ => r.gen_range(20001..=65536),
        };
        if self.cfg.scattered {
            len = r.gen_range(1..=300);
        }
        if mode != dma::QMODE_COPY {
            len = len.min(dma::MAX_FRAME as u64);
        }
        let dst = match r.gen_range(0..6) {
            _ if self.cfg.scattered => 0x1000_0000 + r.gen_range(0..0x1000u64) * 0x10000 + r.gen_range(0..64),
            // right after the previous job of this queue: writes (and their records) join up
            0 | 1 => match self.jobs.iter().rev().find(|j| j.q == q && j.has_data()) {
                Some(p) => p.dst + p.bytes as u64,
                None => 0x2000_0000,
            },
            2 => 0x1_0000_0000 - r.gen_range(1..70_000),
            3 => 0x10_0000_0000 + (r.gen::<u64>() & 0xf_ffff_ffff),
            _ => 0x1000_0000 + r.gen_range(0..0xd000_0000u64),
        };
        let mut status = 0;
        let mut bytes = len as u32;
        if r.gen_bool(0.1) {
            status = match mode {
                dma::QMODE_RX => [dma::CPL_STATUS_RX_TOO_LONG, dma::CPL_STATUS_BAD_LENGTH, dma::CPL_STATUS_DESC_ERROR]
                    [r.gen_range(0..3)],
                _ => {
                    if r.gen_bool(0.5) {
                        bytes = if r.gen_bool(0.5) { 0 } else { r.gen_range(dma::MAX_TRANSFER + 1..u32::MAX) };
                        dma::CPL_STATUS_BAD_LENGTH
                    } else {
                        bytes = r.gen();
                        dma::CPL_STATUS_DESC_ERROR
                    }
                }
            };
        }
        let fail_at = (status == 0 && mode != dma::QMODE_RX && r.gen_bool(0.1)).then(|| r.gen_range(0..len));
        Job {
            n,
            q,
            mode,
            status,
            cookie: r.gen(),
            bytes,
            tenant: if mode == dma::QMODE_COPY { 0 } else { r.gen_range(0..16) },
            dst,
            local: mode == dma::QMODE_RX,
            id: (n % 4) as u8,
            max_payload: r.gen_range(0..4),
            fail_at,
            pos0: 0,
            end: 0,
            allocated: false,
            taken: false,
            written: 0,
            cpl_written: false,
            finished: false,
        }
    }

    fn data_byte(j: &Job, off: u64) -> u8 {
        pattern_byte(j.n as u64 + 1000, off)
    }

    fn buf_write(&mut self, pos: u64, v: u8) {
        self.buf[(pos % BUF) as usize] = v;
    }

    // ---- the front end: space, jobs in order ----
    fn front(&mut self) {
        if let Some(j) = self.jobs.get(self.next_alloc) {
            let k = self.next_alloc;
            let three_done = k < 3 || self.jobs[k - 3].finished;
            let dst_low = j.dst & 7;
            let need = if j.has_data() { (dst_low + j.bytes as u64 + 7) & !7 } else { 0 };
            let go = self.cycle >= self.pause_until && self.rng.gen_bool(0.3);
            if three_done && self.alloc + need - self.free <= BUF && go {
                let (pos0, end) =
                    if j.has_data() { (self.alloc + dst_low, self.alloc + need) } else { (self.alloc, self.alloc) };
                // The space holds garbage until the data arrive.
                for p in self.alloc..self.alloc + need {
                    let g = self.rng.gen();
                    self.buf_write(p, g);
                }
                self.alloc += need;
                let j = &mut self.jobs[k];
                j.pos0 = pos0;
                j.end = end;
                j.allocated = true;
                if j.local && j.has_data() {
                    // An RX frame is in the buffer before its job.
                    let j = j.clone();
                    for off in 0..j.bytes as u64 {
                        self.buf_write(j.pos0 + off, Self::data_byte(&j, off));
                    }
                }
                self.next_alloc += 1;
            }
        }
    }

    // ---- the read engine: bytes arrive in order, filled_pos follows ----
    fn reader(&mut self) {
        let now = self.cycle;
        while self.fill_job < self.next_alloc && !self.jobs[self.fill_job].reads() {
            self.fill_job += 1;
        }
        if self.fill_job >= self.next_alloc || now < self.fill_next {
            return;
        }
        let j = self.jobs[self.fill_job].clone();
        let len = j.bytes as u64;
        if let Some(at) = self.fill_jump {
            // After a read error the job's other reads finish: filled_pos
            // passes its end (its bytes are garbage).
            if now >= at {
                self.filled = j.pos0 + len;
                self.fill_jump = None;
                self.fill_job += 1;
                self.fill_off = 0;
            }
            return;
        }
        if self.fill_off == 0 && self.filled < j.pos0 && self.rng.gen_bool(0.5) {
            // Nothing in flight when the job starts: filled_pos jumps to pos0.
            self.filled = j.pos0;
        }
        if j.fail_at == Some(self.fill_off) {
            self.read_err |= 1 << j.id;
            self.fill_jump = Some(now + 1 + self.rng.gen_range(0..40));
            return;
        }
        let mut step = self.rng.gen_range(1..=2048u64).min(len - self.fill_off);
        if let Some(e) = j.fail_at {
            step = step.min(e - self.fill_off);
        }
        for off in self.fill_off..self.fill_off + step {
            self.buf_write(j.pos0 + off, Self::data_byte(&j, off));
        }
        self.fill_off += step;
        self.filled = j.pos0 + self.fill_off;
        self.fill_next = now + self.rng.gen_range(0..60);
        if self.fill_off == len {
            self.fill_job += 1;
            self.fill_off = 0;
        }
    }

    fn front_idle(&self) -> bool {
        self.next_present >= self.next_alloc && self.fill_job >= self.next_alloc
    }

    fn classify(&self, addr: u64) -> Option<usize> {
        (0..4).find(|&q| (CPL_BASE[q]..CPL_BASE[q] + (16 << CPL_LOG2)).contains(&addr))
    }

    fn wrec_base(&self) -> u64 {
        if self.cfg.seed & 1 == 0 {
            0x0030_0000
        } else {
            0x7_8000_0000
        }
    }

    fn wb_addr(&self) -> u64 {
        if self.cfg.seed & 2 == 0 {
            0x0040_0000
        } else {
            0x7_9000_0000
        }
    }

    /// Record model: the write joins the open record of its kind, or opens
    /// one (the record it replaces was written before it, see `check_tlp`).
    fn record_write(&mut self, w: Write, completion: bool) {
        self.writes.push((w, !self.overflow && self.cfg.wrec_log2 != 0));
        if self.overflow || self.cfg.wrec_log2 == 0 {
            return;
        }
        let kind = completion as usize;
        if let Some(r) = self.must_break[kind].take() {
            if r.iova + r.len == w.iova && r.src == w.src {
                self.fail(format!("record {r:x?} was written to the ring though the next write {w:x?} extends it"));
            }
        }
        let open = if completion { &mut self.oc } else { &mut self.od };
        match open {
            Some(o) if o.iova + o.len == w.iova && o.src == w.src => {
                o.len += w.len;
                self.expect_coalesced += 1;
            }
            Some(o) => {
                let o = *o;
                self.fail(format!("write {w:x?} does not extend the open record {o:x?}, which was not written"))
            }
            None => *open = Some(w),
        }
    }

    /// After a flush: no open record, every recorded write covered by a
    /// record of its source, and every record byte written by that source.
    fn check_coverage(&self) {
        if self.od.is_some() || self.oc.is_some() {
            self.fail(format!("open records {:x?} {:x?} not flushed", self.od, self.oc));
        }
        for (w, recorded) in &self.writes {
            if *recorded
                && !self.records.iter().any(|r| r.src == w.src && r.iova <= w.iova && w.iova + w.len <= r.iova + r.len)
            {
                self.fail(format!("write {w:x?} not covered by a record"));
            }
        }
        for r in &self.records {
            let mut covered = 0;
            for (w, _) in self.writes.iter().filter(|(w, _)| w.src == r.src) {
                let (a, b) = (w.iova.max(r.iova), (w.iova + w.len).min(r.iova + r.len));
                covered += b.saturating_sub(a);
            }
            if covered < r.len {
                self.fail(format!("record {r:x?} names bytes that were not written"));
            }
        }
    }

    fn host_drain(&mut self) {
        self.cons = self.prod;
        self.cons_at.clear();
    }

    /// Run until every job finished and a final flush is done; `hook` is
    /// called at the start of every cycle (to play the host).
    fn run(&mut self, hook: &mut dyn FnMut(&mut Bench)) {
        let mut final_flush = false;
        loop {
            hook(self);
            let now = self.cycle;
            if now > 5_000_000 {
                self.fail("did not finish".into());
            }
            if now % 3000 == 0 {
                self.tx_ready_p = [1.0, 0.9, 0.6, 0.3][self.rng.gen_range(0..4)];
                self.ntx_ready_p = [1.0, 0.8, 0.3][self.rng.gen_range(0..3)];
                self.irq_coalesce = self.rng.gen_range(0..5);
                if self.rng.gen_bool(0.4) {
                    self.pause_until = now + self.rng.gen_range(1000..8000);
                }
                if let Drain::Lag(_) = self.cfg.drain {
                    self.cfg.drain = Drain::Lag([2, 20, 3000][self.rng.gen_range(0..3)]);
                }
            }
            // ---- host: record consumption, flushes ----
            while self.cons_at.front().is_some_and(|&(at, _)| at <= now) {
                self.cons = self.cons_at.pop_front().unwrap().1;
            }
            let all_done = self.jobs.iter().all(|j| j.finished);
            if !self.flush_pending && !self.wait_flush_done {
                if all_done && !final_flush {
                    final_flush = true;
                    self.flush_pending = true;
                } else if self.cfg.random_flush && self.rng.gen_bool(0.0005) {
                    self.flush_pending = true;
                }
            }
            if all_done && final_flush && !self.flush_pending {
                break;
            }
            // ---- front end and read engine ----
            self.front();
            self.reader();
            let present = (self.next_present < self.next_alloc).then_some(self.next_present);
            // ---- inputs ----
            let rd = self.rd_pos;
            let rd_data = (0..8).map(|i| (self.buf[((rd + i) % BUF) as usize] as u64) << (8 * i)).sum::<u64>();
            let set = |hw: &mut VerilatedBlock, p: &str, v: u64| hw.set(p, v);
            match present {
                Some(k) => {
                    let j = &self.jobs[k];
                    self.max_payload = j.max_payload;
                    for (p, v) in [
                        ("bj_valid", 1),
                        ("bj_q", j.q as u64),
                        ("bj_mode", j.mode as u64),
                        ("bj_status", j.status as u64),
                        ("bj_cookie", j.cookie),
                        ("bj_bytes", j.bytes as u64),
                        ("bj_tenant", j.tenant as u64),
                        ("bj_dst", j.dst),
                        ("bj_pos0", j.pos0 & VMASK),
                        ("bj_end", j.end & VMASK),
                        ("bj_local", j.local as u64),
                        ("bj_id", j.id as u64),
                    ] {
                        set(&mut self.hw, p, v);
                    }
                }
                None => {
                    let junk: [u64; 6] = self.rng.gen();
                    set(&mut self.hw, "bj_valid", 0);
                    for (p, v) in [
                        ("bj_q", junk[0] & 3),
                        ("bj_mode", junk[0] >> 2 & 3),
                        ("bj_status", junk[0] >> 4 & 0xffff),
                        ("bj_cookie", junk[1]),
                        ("bj_bytes", junk[2] & 0xffff_ffff),
                        ("bj_tenant", junk[0] >> 20 & 15),
                        ("bj_dst", junk[3]),
                        ("bj_pos0", junk[4] & VMASK),
                        ("bj_end", junk[5] & VMASK),
                        ("bj_local", junk[0] >> 24 & 1),
                        ("bj_id", junk[0] >> 25 & 3),
                    ] {
                        set(&mut self.hw, p, v);
                    }
                }
            }
            let tx_ready = self.rng.gen_bool(self.tx_ready_p);
            let ntx_ready = self.rng.gen_bool(self.ntx_ready_p);
            let front_idle = self.front_idle() && present.is_none();
            for (p, v) in [
                ("front_idle", front_idle as u64),
                ("filled_pos", self.filled & VMASK),
                ("read_err", self.read_err as u64),
                ("wrec_base", self.wrec_base()),
                ("wrec_log2", self.cfg.wrec_log2),
                ("wrec_prod", self.prod & 0xffff_ffff),
                ("wrec_cons", self.cons & 0xffff_ffff),
                ("wrec_timeout", self.cfg.wrec_timeout),
                ("wb_addr", self.wb_addr()),
                ("irq_coalesce", self.irq_coalesce),
                ("overflow", self.overflow as u64),
                ("flush_pending", self.flush_pending as u64),
                ("requester_id", REQUESTER),
                ("bus_master", 1),
                ("max_payload", self.max_payload),
                ("tx_ready", tx_ready as u64),
                ("ntx_ready", ntx_ready as u64),
                ("buf_rd_data", rd_data),
            ] {
                set(&mut self.hw, p, v);
            }
            self.hw.eval();
            let bq = self.hw.get("bq") as usize;
            self.hw.set("bq_cpl_base", CPL_BASE[bq]);
            self.hw.set("bq_head", self.head[bq]);
            self.hw.eval();
            self.filled_hist.push(self.filled);
            self.err_hist.push(self.read_err);

            // ---- outputs ----
            self.rd_pos = self.hw.get("buf_rd_pos");
            let o = |p: &str| self.hw.get(p);
            let take = o("bj_take") == 1;
            if take && present.is_none() {
                self.fail("bj_take without a job".into());
            }
            if take && (self.cur.is_some() || self.wait_finish) {
                self.fail(format!("took a job while job {:?} is not finished", self.cur));
            }
            let events = o("events");
            for (i, e) in self.events.iter_mut().enumerate() {
                *e += events >> i & 1;
            }
            let allowed_events = [EV_DESC_DONE, EV_DESC_ERROR, EV_RECORDS, EV_COALESCED, EV_STALL, EV_TX_FRAMES];
            if allowed_events.iter().fold(events, |e, &b| e & !(1 << b)) != 0 {
                self.fail(format!("events {events:#b}: the back end counts none of these"));
            }
            let stalling = events >> EV_STALL & 1 == 1;
            if stalling && !self.prev_stall {
                self.stall_runs += 1;
            }
            // The MSI: coalesced completions, idle with completions not signalled, a stall.
            let head_inc = o("head_inc") == 1;
            let mut want_irq = false;
            let mut since = self.cpl_since;
            if head_inc {
                if since + 1 >= self.irq_coalesce {
                    want_irq = true;
                    since = 0;
                } else {
                    since += 1;
                }
            } else if o("busy") == 0 && !self.flush_pending && present.is_none() && front_idle && since != 0 {
                want_irq = true;
                since = 0;
                self.idle_irqs += 1;
            }
            let irq = o("irq") == 1;
            if irq != want_irq {
                if irq && stalling {
                    self.stall_irqs += 1;
                } else {
                    self.fail(format!(
                        "irq {irq}, expected {want_irq} (completions not signalled {}, coalesce {}, busy {}, front idle {front_idle})",
                        self.cpl_since,
                        self.irq_coalesce,
                        o("busy")
                    ));
                }
            }
            if stalling && !self.prev_stall && !irq {
                self.first_stall_irq = false;
            }
            self.irqs += irq as u64;
            self.prev_stall = stalling;
            if o("free_pos") != self.free & VMASK {
                self.fail(format!("free_pos {:#x}, expected {:#x}", o("free_pos"), self.free & VMASK));
            }
            // the TLP stream
            let (valid, data, keep) = (o("tx_valid") == 1, o("tx_data"), o("tx_keep"));
            let (sop, eop) = (o("tx_sop") == 1, o("tx_eop") == 1);
            match self.stream.cycle(now, valid, tx_ready, data, keep, sop, eop) {
                Err(e) => self.fail(e),
                Ok(Some(t)) => self.check_tlp(t),
                Ok(None) => {}
            }
            self.check_ntx(ntx_ready);
            let o = |p: &str| self.hw.get(p);
            // pulses after the TLPs that cause them
            let record_written = o("record_written") == 1;
            if record_written != (events >> EV_RECORDS & 1 == 1) {
                self.fail("record_written and the records event disagree".into());
            }
            if record_written {
                if !self.wait_record_written {
                    self.fail("record_written without a record write".into());
                }
                self.wait_record_written = false;
            }
            let flush_done = o("flush_done") == 1;
            if flush_done {
                if !self.wait_flush_done {
                    self.fail("flush_done without the producer write-back".into());
                }
                self.wait_flush_done = false;
                self.check_coverage();
                self.flushes += 1;
            }
            let err_clear = o("err_clear") == 1;
            if head_inc != err_clear {
                self.fail(format!("head_inc {head_inc} but err_clear {err_clear}"));
            }
            if head_inc {
                let Some(k) = self.cur.filter(|_| self.wait_finish) else {
                    self.fail("head_inc without a completion entry".into())
                };
                let j = &self.jobs[k];
                if bq != j.q || o("err_clear_id") != j.id as u64 {
                    self.fail(format!("finish of job {k}: bq {bq}, err_clear_id {}", o("err_clear_id")));
                }
                let ev = if j.final_status() == 0 { EV_DESC_DONE } else { EV_DESC_ERROR };
                if events >> ev & 1 == 0 || events >> (EV_DESC_DONE + EV_DESC_ERROR - ev) & 1 == 1 {
                    self.fail(format!("events {events:#b} at the finish of job {k} (status {})", j.final_status()));
                }
            } else if events & (1 << EV_DESC_DONE | 1 << EV_DESC_ERROR) != 0 {
                self.fail(format!("events {events:#b} without a finish"));
            }
            let overflow_set = o("overflow_set") == 1;
            self.hw.tick();
            self.cycle += 1;

            // ---- the model after the edge ----
            self.cpl_since = since;
            if take {
                let k = present.unwrap();
                self.jobs[k].taken = true;
                self.cur = Some(k);
                self.next_present += 1;
                self.ntx_off = 0;
            }
            if record_written {
                self.prod += 1;
                if let Drain::Lag(l) = self.cfg.drain {
                    let at = self.cycle + self.rng.gen_range(0..=l);
                    let at = at.max(self.cons_at.back().map_or(0, |x| x.0));
                    self.cons_at.push_back((at, self.prod));
                }
            }
            if flush_done {
                self.flush_pending = false;
            }
            if overflow_set {
                self.overflow = true;
                self.overflow_sets += 1;
                self.records_at_overflow = self.records.len() as u64;
                self.stall_at_overflow = self.events[EV_STALL];
            }
            if head_inc {
                let k = self.cur.take().unwrap();
                self.wait_finish = false;
                let j = &mut self.jobs[k];
                j.finished = true;
                self.head[j.q] = (self.head[j.q] + 1) & ((1 << CPL_LOG2) - 1);
                self.free = j.end;
                self.read_err &= !(1 << j.id);
            }
        }
        self.hw.eval();
        assert_eq!(self.hw.get("busy"), 0);
        self.check_coverage();
    }

    fn check_tlp(&mut self, t: StreamTlp) {
        let m = match decode_from_card(&t.dws) {
            Ok(CardTlp::Mem(m)) if m.write => m,
            other => self.fail(format!("not a memory write: {other:x?}")),
        };
        let h = &m.header;
        let four = m.addr >> 32 != 0;
        let fmt = if four { tlpc::FMT_4DW_DATA } else { tlpc::FMT_3DW_DATA };
        if h.fmt != fmt || h.typ != tlpc::TYPE_MEM || h.tc != 0 || h.attr != 0 || h.td || h.ep {
            self.fail(format!("header {h:?} for address {:#x}", m.addr));
        }
        if m.requester as u64 != REQUESTER {
            self.fail(format!("requester {:#x}", m.requester));
        }
        let (start, end) = request_span(m.addr, h.length_dw, m.fbe, m.lbe).unwrap_or_else(|e| self.fail(e));
        let byte = |a: u64| (m.data[((a - m.addr) / 4) as usize] >> (8 * ((a - m.addr) % 4))) as u8;
        let dws = |m: &MemRequest| m.data.clone();
        let wrec_entries = 1u64 << self.cfg.wrec_log2;
        if let Some(q) = self.classify(m.addr) {
            // ---- a completion entry ----
            let Some(k) = self.cur.filter(|_| !self.wait_finish) else {
                self.fail(format!("completion entry at {:#x} with no job", m.addr))
            };
            let j = self.jobs[k].clone();
            let want_addr = CPL_BASE[j.q] + self.head[j.q] * dma::CPL_BYTES as u64;
            if q != j.q || (start, end) != (want_addr, want_addr + dma::CPL_BYTES as u64) {
                self.fail(format!("completion entry of job {k} at {start:#x}..{end:#x}, expected at {want_addr:#x}"));
            }
            let st = j.final_status();
            if j.has_data() && st == 0 && j.written != j.bytes as u64 && j.mode != dma::QMODE_TX {
                self.fail(format!("completion of job {k} after {} of {} bytes", j.written, j.bytes));
            }
            if j.mode == dma::QMODE_TX && st == 0 && self.ntx_off != j.bytes as u64 {
                self.fail(format!("completion of TX job {k} before its frame went out"));
            }
            if j.reads() && self.filled_hist[t.offered as usize - 1] < j.pos0 + j.bytes as u64 {
                self.fail(format!("completion of job {k} before all its reads were accounted for"));
            }
            let d = dws(&m);
            let flags = dma::CPL_FLAG_DONE as u32 | (j.tenant as u32) << dma::CPL_FLAG_TENANT_SHIFT;
            let want3 = st as u32 | (j.q as u32) << 16 | flags << 24;
            let bytes_ok = !(st == 0 || j.mode == dma::QMODE_RX) || d[2] == j.bytes;
            if d[0] as u64 | (d[1] as u64) << 32 != j.cookie || d[3] != want3 || !bytes_ok {
                self.fail(format!(
                    "completion entry of job {k}: {:x?}, expected cookie {:#x}, bytes {}, status {st}, queue {}, flags {flags:#x}",
                    d, j.cookie, j.bytes, j.q
                ));
            }
            self.jobs[k].cpl_written = true;
            self.wait_finish = true;
            let src = j.q as u8 | dma::SRC_KIND_COMPLETION;
            self.record_write(Write { iova: start, len: end - start, src }, true);
        } else if (self.wrec_base()..self.wrec_base() + wrec_entries * 16).contains(&m.addr) {
            // ---- a write record ----
            let d = dws(&m);
            let slot = self.wrec_base() + (self.prod % wrec_entries) * dma::WREC_BYTES as u64;
            if (start, end) != (slot, slot + dma::WREC_BYTES as u64) {
                self.fail(format!("record at {start:#x}..{end:#x}, the slot of record {} is {slot:#x}", self.prod));
            }
            if self.prod - self.cons >= wrec_entries {
                self.fail(format!("record {} written over one not consumed (consumer {})", self.prod, self.cons));
            }
            let (src, flags, seq) = (d[3] as u8, (d[3] >> 8) as u8, d[3] >> 16);
            if flags != 1 || seq != (self.prod & 0xffff) as u32 {
                self.fail(format!("record {}: flags {flags:#x}, sequence {seq}", self.prod));
            }
            if self.wait_record_written {
                self.fail("a record before the last one was counted".into());
            }
            self.wait_record_written = true;
            let rec = Write { iova: d[0] as u64 | (d[1] as u64) << 32, len: d[2] as u64, src };
            self.records.push(rec);
            // It is the open record of its kind, written because a write
            // that does not extend it needs the slot, or for a flush.
            let kind = (src & dma::SRC_KIND_COMPLETION != 0) as usize;
            let open = if kind == 1 { self.oc.take() } else { self.od.take() };
            if open != Some(rec) {
                self.fail(format!("record {rec:x?} written, the open record is {open:x?}"));
            }
            if !self.flush_pending {
                self.must_break[kind] = Some(rec);
            }
        } else if m.addr == self.wb_addr() {
            // ---- the producer write-back ----
            if !self.flush_pending || self.cur.is_some() || (start, end) != (m.addr, m.addr + 4) {
                self.fail(format!("write-back {start:#x}..{end:#x} (flush pending {})", self.flush_pending));
            }
            if self.od.is_some() || self.oc.is_some() {
                self.fail("producer write-back before the open records".into());
            }
            if m.data[0] as u64 != self.prod & 0xffff_ffff {
                self.fail(format!("write-back of {}, producer count is {}", m.data[0], self.prod));
            }
            self.wait_flush_done = true;
        } else {
            // ---- data ----
            let Some(k) = self.cur.filter(|_| !self.wait_finish) else {
                self.fail(format!("write at {start:#x} with no job"))
            };
            let j = self.jobs[k].clone();
            let mps = if j.max_payload != 0 { 256 } else { 128 };
            let want_start = j.dst + j.written;
            let want_end = (j.dst + j.bytes as u64).min((want_start / mps + 1) * mps);
            if !j.has_data() || j.mode == dma::QMODE_TX || (start, end) != (want_start, want_end) {
                self.fail(format!(
                    "write of {start:#x}..{end:#x} for job {k} (dst {:#x}, {} bytes, {} written, MPS {mps}, status {}, mode {})",
                    j.dst, j.bytes, j.written, j.status, j.mode
                ));
            }
            for a in start..end {
                let (v, want) = (byte(a), Self::data_byte(&j, a - j.dst));
                if v != want {
                    self.fail(format!("job {k}: byte {} written {v:#04x}, expected {want:#04x}", a - j.dst));
                }
            }
            let c = t.offered as usize - 1;
            if !j.local && self.filled_hist[c] < j.pos0 + (end - j.dst) {
                self.fail(format!(
                    "write of job {k}'s bytes up to {} offered with the buffer filled to {} only",
                    end - j.dst,
                    self.filled_hist[c] as i64 - j.pos0 as i64
                ));
            }
            // The back end decides on the next TLP a cycle ahead (in the
            // previous TLP's last beat, from a flop), so a TLP decided just
            // before the error shows may still go: its bytes all arrived
            // before it (the data check above sees any that did not).
            if c >= 1 && self.err_hist[c - 1] >> j.id & 1 == 1 {
                self.fail(format!("write of job {k} set up after its read error was seen"));
            }
            self.late_after_err += (self.err_hist[c] >> j.id & 1) as u64;
            self.jobs[k].written = end - j.dst;
            self.data_tlps += 1;
            self.record_write(Write { iova: start, len: end - start, src: j.q as u8 | dma::SRC_KIND_DATA }, false);
        }
    }

    fn check_ntx(&mut self, ready: bool) {
        let o = |p: &str| self.hw.get(p);
        let valid = o("ntx_valid") == 1;
        let beat = (o("ntx_data"), o("ntx_bytes"), o("ntx_last") == 1);
        if let Some(h) = self.ntx_held.take() {
            if !valid || beat != h {
                self.fail(format!("network beat {h:x?} offered and not taken changed to {beat:x?} (valid {valid})"));
            }
        }
        if !valid {
            return;
        }
        let Some(k) = self.cur.filter(|_| !self.wait_finish) else { self.fail("network beat with no job".into()) };
        let j = self.jobs[k].clone();
        let len = j.bytes as u64;
        if j.mode != dma::QMODE_TX || j.final_status() != 0 {
            self.fail(format!("network beat for job {k} (mode {}, status {})", j.mode, j.final_status()));
        }
        if self.ntx_off == 0 && self.filled_hist[self.cycle as usize - 1] < j.pos0 + len {
            self.fail(format!("frame of job {k} started before all its bytes were in"));
        }
        if o("ntx_tenant") != j.tenant as u64 || o("ntx_len") != len {
            self.fail(format!("frame of job {k}: tenant {} len {}", o("ntx_tenant"), o("ntx_len")));
        }
        let n = (len - self.ntx_off).min(8);
        if beat.1 != n || beat.2 != (self.ntx_off + n == len) {
            self.fail(format!("frame of job {k}: beat at {} has {} bytes, last {}", self.ntx_off, beat.1, beat.2));
        }
        for i in 0..8 {
            let want = if i < n { Self::data_byte(&j, self.ntx_off + i) } else { 0 };
            if (beat.0 >> (8 * i)) as u8 != want {
                self.fail(format!(
                    "frame of job {k}: byte {} is {:#04x}, expected {want:#04x}",
                    self.ntx_off + i,
                    (beat.0 >> (8 * i)) as u8
                ));
            }
        }
        let tx_ev = o("events") >> EV_TX_FRAMES & 1 == 1;
        if tx_ev != (ready && beat.2) {
            self.fail(format!("TX frame event {tx_ev} on a beat (ready {ready}, last {})", beat.2));
        }
        if ready {
            self.ntx_off += n;
            if beat.2 {
                self.frames += 1;
            }
        } else {
            self.ntx_held = Some(beat);
        }
    }
}

fn config(seed: u64) -> Config {
    Config {
        seed,
        jobs: 320,
        wrec_log2: 2,
        wrec_timeout: 1_000_000,
        drain: Drain::Lag(20),
        scattered: false,
        random_flush: true,
    }
}

#[test]
fn random_jobs_writes_completions_frames_and_records() {
    for seed in [0x3a11, 0x3a12, 0x1111] {
        let mut b = Bench::new(config(seed));
        b.run(&mut |_| {});
        let ok = b.jobs.iter().filter(|j| j.final_status() == 0).count();
        let rerr = b.jobs.iter().filter(|j| j.final_status() == dma::CPL_STATUS_READ_ERROR).count();
        let ev = |i: usize| b.events[i];
        println!(
            "seed {seed:#x}: {} cycles, {} jobs ({ok} ok, {rerr} read errors, {} writes decided as the error showed), {} data TLPs, {} frames, {} records \
             ({} coalesced), {} flushes, {} irqs ({} idle, {} on stalls), {} stall cycles in {} runs, buffer {} bytes",
            b.cycle,
            b.jobs.len(),
            b.late_after_err,
            b.data_tlps,
            b.frames,
            b.records.len(),
            ev(EV_COALESCED),
            b.flushes,
            b.irqs,
            b.idle_irqs,
            b.stall_irqs,
            ev(EV_STALL),
            b.stall_runs,
            b.alloc
        );
        assert_eq!(ev(EV_RECORDS), b.records.len() as u64);
        let seqs_ok = b.records.len() as u64 == b.prod;
        assert_eq!(ev(EV_COALESCED), b.expect_coalesced, "writes folded into an open record");
        assert_eq!(ev(EV_DESC_DONE) as usize, ok);
        assert_eq!(ev(EV_TX_FRAMES), b.frames);
        assert_eq!(b.overflow_sets, 0);
        assert!(seqs_ok);
        assert!(b.first_stall_irq, "the MSI on the first cycle of every stall");
        // The stimulus reached what matters.
        assert!(b.idle_irqs >= 3, "MSIs when idle");
        assert!(rerr > 5 && b.frames > 20 && b.flushes > 3 && b.stall_runs > 3 && b.expect_coalesced > 100);
        assert!(b.alloc > VMASK + 1, "buffer positions wrapped");
    }
}

#[test]
fn full_record_ring_stalls_until_the_host_frees_a_slot() {
    // Two record slots, scattered writes (each needs its own record), the
    // host drains only when told: every write stalls on the ring, raises the
    // MSI, and goes on once a slot is free; nothing is lost.
    let cfg =
        Config { jobs: 40, wrec_log2: 1, drain: Drain::Never, scattered: true, random_flush: false, ..config(0x5a) };
    let mut b = Bench::new(cfg);
    let mut stall_since = None;
    // The host drains the ring 300 cycles into each stall.
    b.run(&mut |b| {
        if b.prev_stall {
            let s = *stall_since.get_or_insert(b.cycle);
            if b.cycle - s == 300 {
                b.host_drain();
            }
        } else {
            stall_since = None;
        }
    });
    println!(
        "{} cycles, {} stall cycles in {} runs, {} records",
        b.cycle,
        b.events[EV_STALL],
        b.stall_runs,
        b.records.len()
    );
    assert_eq!(b.overflow_sets, 0);
    assert!(b.stall_runs >= 20 && b.first_stall_irq && b.events[EV_STALL] >= 300 * 20);
    assert_eq!(b.events[EV_RECORDS], b.records.len() as u64);
}

#[test]
fn record_ring_overflow_after_the_timeout_then_writes_go_on_without_records() {
    let cfg = Config {
        jobs: 30,
        wrec_log2: 1,
        wrec_timeout: 50,
        drain: Drain::Never,
        scattered: true,
        random_flush: false,
        ..config(0x5b)
    };
    let mut b = Bench::new(cfg);
    b.run(&mut |b| {
        // The host starts a new epoch (clears the overflow, drains) after job 20.
        if b.overflow && b.jobs[20].finished && b.cur.is_none() {
            b.overflow = false;
            b.host_drain();
            b.cfg.drain = Drain::Lag(5);
        }
    });
    println!("{} cycles, {} stall cycles, {} records", b.cycle, b.events[EV_STALL], b.records.len());
    assert_eq!(b.overflow_sets, 1, "one overflow");
    // The stall lasted the timeout (plus the cycle that declares it).
    assert_eq!(b.stall_at_overflow, 51);
    assert!(b.records.len() as u64 > b.records_at_overflow + 5, "records again in the new epoch");
}

#[test]
fn rusthdl_and_verilator_agree_cycle_by_cycle() {
    let mut rng = SmallRng::seed_from_u64(13);
    let inputs = block_inputs("dma_write");
    let mut filled = 0u64;
    let compared = differential::<WriteEngine>(4000, |cycle, set| {
        set("reset", (cycle < 2) as u64);
        filled = (filled + rng.gen_range(0..24)) & VMASK;
        for &(p, w) in inputs {
            let v = match p {
                "reset" => continue,
                "bj_valid" | "tx_ready" | "ntx_ready" | "front_idle" | "bus_master" => rng.gen_bool(0.7) as u64,
                "bj_status" => [0, 0, 0, 2][rng.gen_range(0..4)],
                "bj_bytes" => rng.gen_range(1..700),
                "bj_pos0" => (filled + rng.gen_range(0..64)) & VMASK,
                "filled_pos" => filled,
                "read_err" => [0, 0, 0, 0, 1, 8][rng.gen_range(0..6)],
                "flush_pending" | "overflow" => rng.gen_bool(0.05) as u64,
                "wrec_log2" => rng.gen_range(0..4),
                "wrec_timeout" => rng.gen_range(0..40),
                "irq_coalesce" => rng.gen_range(0..4),
                _ => random_fit(&mut rng, w),
            };
            set(p, v);
        }
    });
    assert!(compared > 4000 * 10);
}
