//! Testbench of `dma_read` (hdl/src/dma/read.rs), the DMA engine's read
//! engine, on its own (Verilated), against a model written from its
//! documentation (the module's doc comment, docs/dma.md "Reads", docs/tlp.md):
//!
//! - random read jobs (source at any alignment, below, across and above
//!   4 GiB, 1 B to 64 KiB, buffer positions across the 20-bit wrap, Max Read
//!   Request Size 128 B to 4 KiB) under random back-pressure: every Memory
//!   Read is decoded from its beats (Fmt/Type, 3-DW header below 4 GiB,
//!   requester, tag, address, length, first/last byte enables) and the
//!   requests of a job cover exactly its bytes, in order, each up to the next
//!   MRRS boundary (so never across it nor across 4 KiB); tags count in issue
//!   order mod 16, a tag is never reused while busy, at most
//!   `DMA_MAX_OUTSTANDING` are outstanding;
//! - the test retires tags (as the completion sink would) after random
//!   delays and in random order: `lookup_*` gives every busy tag's buffer
//!   start and end (job `pos0` + offset in the job), `lookup_busy` follows
//!   the test's tags, and `filled_pos` walks the ends of the retired chunks in
//!   issue order only (never past a chunk not yet retired, never skipping one,
//!   within two cycles of the retirement that allows it);
//! - a retirement with an error sets `err` for the job's id, no request of
//!   that job starts after `err` is seen, and `filled_pos` still reaches the
//!   job's end; `err_clear` clears the bit;
//! - and rust-hdl's simulator agrees with Verilator cycle by cycle.

use offcard_hdl::dma::read::{ReadEngine, DATA_TAGS, VPOS_BITS};
use offcard_hdl::regmap::{tlp as tlpc, DMA_MAX_OUTSTANDING};
use offcard_sim::tlp::{decode_from_card, CardTlp};
use offcard_sim::{BlockSim, VerilatedBlock};
use offcard_testbench::dma_blocks::{block_inputs, differential, random_fit, request_span, StreamTlp, TlpStream};
use rand::{rngs::SmallRng, Rng, SeedableRng};

const VMASK: u64 = (1 << VPOS_BITS) - 1;
const REQUESTER: u64 = 0x0a18;
/// Jobs the front end may have in the engine at once (ids are mod 4).
const MAX_JOBS_IN_FLIGHT: usize = 3;

#[derive(Debug)]
struct Job {
    id: u8,
    src: u64,
    len: u64,
    /// Buffer position of byte 0 (absolute; the block sees it mod 2^20).
    pos0: u64,
    mrrs_code: u64,
    /// Bytes covered by the requests decoded so far.
    issued: u64,
    chunks: Vec<usize>,
    /// Retirements of this job's chunks may carry an error.
    fail: bool,
    /// A retirement with an error happened (err bit seen).
    err_seen: Option<u64>,
    /// No more requests will come for it (all issued, or cut short by an error).
    issue_done: bool,
    /// Its last mark (once `issue_done`).
    last_mark: Option<usize>,
    /// `filled_pos` passed its end (cycle).
    done_at: Option<u64>,
    cleared: bool,
}

#[derive(Debug)]
struct Chunk {
    job: usize,
    tag: u8,
    start: u64,
    end: u64,
    /// Cycle the test may retire it from.
    ready_at: u64,
    retired: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum MarkKind {
    /// A job's `pos0` (the engine starts there when nothing is in flight; may be skipped).
    Pos0,
    Chunk(usize),
    /// The end of a job cut short by an error (its stand-in chunk).
    End,
}

#[derive(Clone, Copy, Debug)]
struct Mark {
    val: u64,
    kind: MarkKind,
    job: usize,
}

struct Bench {
    hw: VerilatedBlock,
    rng: SmallRng,
    cycle: u64,
    jobs: Vec<Job>,
    chunks: Vec<Chunk>,
    /// Current issuing job (index into `jobs`).
    ij: usize,
    /// Chunk numbers handed out (requests and stand-ins): tag = seq mod 16.
    seq: u64,
    busy: [bool; DATA_TAGS],
    tag_chunk: [Option<usize>; DATA_TAGS],
    err: u8,
    err_hist: Vec<u8>,
    marks: Vec<Mark>,
    /// Index of the mark `filled_pos` shows (None: the reset value 0).
    cursor: Option<usize>,
    cur_val: u64,
    cursor_moved: u64,
    stream: TlpStream,
    alloc: u64,
    pending_clear: Vec<(u64, usize)>,
    first_not_done: usize,
    // stimulus knobs
    retire_p: f64,
    retire_delay: u64,
    ready_p: f64,
    // coverage
    max_busy: usize,
    aborted: usize,
    errors: usize,
    four_dw: usize,
    three_dw: usize,
    requests: usize,
}

impl Bench {
    fn new(seed: u64) -> Self {
        let mut hw = VerilatedBlock::new("dma_read");
        hw.set("requester_id", REQUESTER);
        hw.eval();
        Bench {
            hw,
            rng: SmallRng::seed_from_u64(seed),
            cycle: 0,
            jobs: vec![],
            chunks: vec![],
            ij: 0,
            seq: 0,
            busy: [false; DATA_TAGS],
            tag_chunk: [None; DATA_TAGS],
            err: 0,
            err_hist: vec![],
            marks: vec![],
            cursor: None,
            cur_val: 0,
            cursor_moved: 0,
            stream: TlpStream::new(true),
            // Start close to the 20-bit wrap of buffer positions.
            alloc: VMASK + 1 - 70_000,
            pending_clear: vec![],
            first_not_done: 0,
            retire_p: 0.5,
            retire_delay: 30,
            ready_p: 0.8,
            max_busy: 0,
            aborted: 0,
            errors: 0,
            four_dw: 0,
            three_dw: 0,
            requests: 0,
        }
    }

    fn new_job(&mut self) -> usize {
        let r = &mut self.rng;
        let len: u64 = match r.gen_range(0..20) {
            0 => 1,
            1 => 65536,
            2..=8 => r.gen_range(1..=256),
            9..=13 => r.gen_range(257..=4096),
            14..=17 => r.gen_range(4097..=16384),
            _ => r.gen_range(16385..=65536),
        };
        let src: u64 = match r.gen_range(0..5) {
            0 => r.gen::<u32>() as u64,
            1 => (1u64 << 32) - r.gen_range(1..=70_000),
            2 => r.gen::<u64>() >> r.gen_range(8..24),
            3 => (r.gen::<u32>() as u64) & !0xfff,
            _ => ((r.gen::<u64>() >> 16) & !0xfff) + r.gen_range(0..0x1000),
        };
        let dst_low = r.gen_range(0..8u64);
        let pos0 = self.alloc + dst_low;
        self.alloc += (dst_low + len + 7) & !7;
        let job = Job {
            id: (self.jobs.len() % 4) as u8,
            src,
            len,
            pos0,
            mrrs_code: r.gen_range(0..=5),
            issued: 0,
            chunks: vec![],
            fail: r.gen_bool(0.12),
            err_seen: None,
            issue_done: false,
            last_mark: None,
            done_at: None,
            cleared: false,
        };
        self.jobs.push(job);
        self.jobs.len() - 1
    }

    fn jobs_in_flight(&self) -> usize {
        self.jobs.iter().filter(|j| !j.cleared).count()
    }

    fn fail(&self, msg: String) -> ! {
        panic!("dma_read, cycle {}: {msg}", self.cycle)
    }

    /// Run until `njobs` jobs went through and every one was cleared.
    fn run(&mut self, njobs: usize) {
        let mut presenting: Option<usize> = None;
        let mut submitted = 0;
        loop {
            let now = self.cycle;
            if now > 3_000_000 {
                self.fail("did not finish".into());
            }
            // ---- stimulus phases ----
            if now % 1500 == 0 {
                let (p, d) = match self.rng.gen_range(0..6) {
                    0 => (0.02, 400), // tags pile up: the 16-tag window fills
                    1 => (0.9, 2),
                    2 => (0.3, 100),
                    _ => (0.6, 30),
                };
                self.retire_p = p;
                self.retire_delay = d;
                self.ready_p = [1.0, 0.8, 0.5, 0.2][self.rng.gen_range(0..4)];
            }
            // ---- a job ----
            if presenting.is_none()
                && submitted < njobs
                && self.jobs_in_flight() < MAX_JOBS_IN_FLIGHT
                // its id is free again
                && (self.jobs.len() < 4 || self.jobs[self.jobs.len() - 4].cleared)
                && self.rng.gen_bool(0.3)
            {
                presenting = Some(self.new_job());
                submitted += 1;
            }
            match presenting {
                Some(j) => {
                    let job = &self.jobs[j];
                    for (p, v) in [
                        ("job_valid", 1),
                        ("job_src", job.src),
                        ("job_len", job.len),
                        ("job_pos0", job.pos0 & VMASK),
                        ("job_id", job.id as u64),
                        ("max_read_req", job.mrrs_code),
                    ] {
                        self.hw.set(p, v);
                    }
                }
                None => {
                    // Fields the engine must not look at.
                    let junk: [u64; 4] = self.rng.gen();
                    self.hw.set("job_valid", 0);
                    self.hw.set("job_src", junk[0]);
                    self.hw.set("job_len", junk[1] & 0x3ffff);
                    self.hw.set("job_pos0", junk[2] & VMASK);
                    self.hw.set("job_id", junk[3] & 3);
                }
            }
            let ready = self.rng.gen_bool(self.ready_p);
            self.hw.set("tx_ready", ready as u64);
            // ---- a retirement (the completion sink's) ----
            let mut retire = None;
            if self.rng.gen_bool(self.retire_p) {
                let cands: Vec<usize> = (0..DATA_TAGS)
                    .filter_map(|t| self.tag_chunk[t].filter(|&c| self.busy[t] && self.chunks[c].ready_at <= now))
                    .collect();
                if !cands.is_empty() {
                    let c = cands[self.rng.gen_range(0..cands.len())];
                    let ok = !(self.jobs[self.chunks[c].job].fail && self.rng.gen_bool(0.35));
                    retire = Some((c, ok));
                }
            }
            match retire {
                Some((c, ok)) => {
                    self.hw.set("retire_valid", 1);
                    self.hw.set("retire_tag", self.chunks[c].tag as u64);
                    self.hw.set("retire_ok", ok as u64);
                }
                None => {
                    self.hw.set("retire_valid", 0);
                    self.hw.set("retire_tag", self.rng.gen_range(0..16));
                    self.hw.set("retire_ok", self.rng.gen_range(0..2));
                }
            }
            // ---- the back end clears a finished job's error bit ----
            let clear = self.pending_clear.iter().position(|&(at, _)| at <= now);
            let clear = clear.map(|i| self.pending_clear.swap_remove(i).1);
            self.hw.set("err_clear", clear.is_some() as u64);
            self.hw.set("err_clear_id", clear.map(|j| self.jobs[j].id as u64).unwrap_or(self.rng.gen_range(0..4)));
            // ---- a lookup ----
            let busy_tags: Vec<usize> = (0..DATA_TAGS).filter(|&t| self.busy[t]).collect();
            let lookup = if !busy_tags.is_empty() && self.rng.gen_bool(0.7) {
                busy_tags[self.rng.gen_range(0..busy_tags.len())]
            } else {
                self.rng.gen_range(0..DATA_TAGS)
            };
            self.hw.set("lookup_tag", lookup as u64);
            self.hw.eval();

            // ---- outputs of this cycle ----
            self.check_lookup(lookup);
            let err = self.hw.get("err") as u8;
            if err != self.err {
                self.fail(format!("err {err:04b}, expected {:04b}", self.err));
            }
            self.err_hist.push(self.err);
            self.check_filled();
            if busy_tags.len() > 0 && self.hw.get("idle") == 1 {
                self.fail(format!("idle with tags {busy_tags:?} outstanding"));
            }
            let (valid, data) = (self.hw.get("tx_valid") == 1, self.hw.get("tx_data"));
            let (sop, eop, keep) = (self.hw.get("tx_sop") == 1, self.hw.get("tx_eop") == 1, self.hw.get("tx_keep"));
            let sop_tag = (valid && ready && sop).then_some(((data >> 40) & 0xff) as usize);
            match self.stream.cycle(now, valid, ready, data, keep, sop, eop) {
                Err(e) => self.fail(e),
                Ok(Some(t)) => self.check_request(t),
                Ok(None) => {}
            }
            // A job whose error was seen: once no request is under way, none
            // of its requests can start any more (the engine checks the bit
            // before each); if bytes are left, a stand-in chunk ends it.
            while self.ij < self.jobs.len() && self.jobs[self.ij].issue_done {
                self.ij += 1;
            }
            if !valid && self.stream.idle() && self.ij < self.jobs.len() {
                let ij = self.ij;
                let j = &self.jobs[ij];
                if j.err_seen.is_some_and(|t| t < now) {
                    assert!(j.issued > 0, "job {ij} failed before any request");
                    let end = j.pos0 + j.len;
                    self.marks.push(Mark { val: end, kind: MarkKind::End, job: ij });
                    self.jobs[ij].issue_done = true;
                    self.jobs[ij].last_mark = Some(self.marks.len() - 1);
                    self.seq += 1;
                    self.aborted += 1;
                    self.ij += 1;
                }
            }
            let accepted = presenting.is_some() && self.hw.get("job_ready") == 1;
            self.hw.tick();
            self.cycle += 1;

            // ---- the model after the clock edge ----
            if let Some(t) = sop_tag {
                if t >= DATA_TAGS {
                    self.fail(format!("data read with tag {t}"));
                }
                if self.busy[t] {
                    self.fail(format!("tag {t} reused while busy"));
                }
                self.busy[t] = true;
                self.tag_chunk[t] = None;
                let n = self.busy.iter().filter(|&&b| b).count();
                if n > DMA_MAX_OUTSTANDING as usize {
                    self.fail(format!("{n} reads outstanding"));
                }
                self.max_busy = self.max_busy.max(n);
            }
            if let Some((c, ok)) = retire {
                let tag = self.chunks[c].tag as usize;
                self.busy[tag] = false;
                self.chunks[c].retired = Some(now);
                if !ok {
                    let j = self.chunks[c].job;
                    self.err |= 1 << self.jobs[j].id;
                    self.jobs[j].err_seen.get_or_insert(now + 1);
                    self.errors += 1;
                }
            }
            if let Some(j) = clear {
                self.err &= !(1 << self.jobs[j].id);
                self.jobs[j].cleared = true;
            }
            if accepted {
                let j = presenting.take().unwrap();
                self.marks.push(Mark { val: self.jobs[j].pos0, kind: MarkKind::Pos0, job: j });
            }
            if submitted == njobs && presenting.is_none() && self.jobs.iter().all(|j| j.cleared) {
                break;
            }
        }
        // Everything retired and passed.
        self.hw.eval();
        let last = self.jobs.last().unwrap();
        assert_eq!(self.hw.get("filled_pos"), (last.pos0 + last.len) & VMASK, "filled_pos at the end");
        assert_eq!(self.hw.get("idle"), 1, "idle at the end");
        assert_eq!(self.hw.get("err"), 0);
        assert!(self.busy.iter().all(|b| !b));
    }

    fn check_lookup(&self, tag: usize) {
        let busy = self.hw.get("lookup_busy") == 1;
        if busy != self.busy[tag] {
            self.fail(format!("lookup_busy of tag {tag}: {busy}, expected {}", self.busy[tag]));
        }
        if let Some(c) = self.tag_chunk[tag].filter(|_| busy) {
            let ch = &self.chunks[c];
            let got = (self.hw.get("lookup_start"), self.hw.get("lookup_end"));
            if got != (ch.start & VMASK, ch.end & VMASK) {
                self.fail(format!(
                    "lookup of tag {tag}: start/end {:#x}/{:#x}, expected {:#x}/{:#x} (job {} pos0 {:#x})",
                    got.0,
                    got.1,
                    ch.start & VMASK,
                    ch.end & VMASK,
                    ch.job,
                    self.jobs[ch.job].pos0 & VMASK
                ));
            }
        }
    }

    /// May `filled_pos` show mark `m` now?
    fn allowed(&self, m: &Mark) -> bool {
        let retired_long_enough = |c: usize| self.chunks[c].retired.is_some_and(|r| r + 2 <= self.cycle);
        match m.kind {
            MarkKind::Pos0 => true,
            MarkKind::Chunk(c) => retired_long_enough(c),
            MarkKind::End => self.jobs[m.job].chunks.iter().all(|&c| retired_long_enough(c)),
        }
    }

    fn check_filled(&mut self) {
        let v = self.hw.get("filled_pos");
        let start = self.cursor.map_or(0, |c| c + 1);
        if v != self.cur_val & VMASK {
            let mut k = start;
            loop {
                let Some(m) = self.marks.get(k).copied() else {
                    self.fail(format!(
                        "filled_pos {v:#x} is no chunk end in issue order (was {:#x}; next marks {:?})",
                        self.cur_val & VMASK,
                        &self.marks[start..self.marks.len().min(start + 4)]
                    ));
                };
                if m.val & VMASK == v {
                    if !self.allowed(&m) {
                        self.fail(format!("filled_pos {v:#x} moved to {m:?} before it was retired"));
                    }
                    self.cursor = Some(k);
                    self.cur_val = m.val;
                    self.cursor_moved = self.cycle;
                    break;
                }
                if matches!(m.kind, MarkKind::Chunk(_)) && m.val != self.cur_val {
                    self.fail(format!(
                        "filled_pos {v:#x} skipped the end of chunk {m:?} (was {:#x})",
                        self.cur_val & VMASK
                    ));
                }
                k += 1;
            }
        } else {
            // Still here: the next chunk, if all before it passed and it was
            // retired, must show within two cycles of its retirement (one
            // chunk passes per cycle).
            for m in &self.marks[start..] {
                match m.kind {
                    MarkKind::Pos0 => continue,
                    MarkKind::End => break,
                    MarkKind::Chunk(c) => {
                        if let Some(r) = self.chunks[c].retired {
                            let deadline = (r + 2).max(self.cursor_moved + 1) + 1;
                            if self.cycle >= deadline && m.val & VMASK != v {
                                self.fail(format!(
                                    "filled_pos {v:#x} still short of chunk {c} (end {:#x}) retired in cycle {r}",
                                    m.val & VMASK
                                ));
                            }
                        }
                        break;
                    }
                }
            }
        }
        // A job is done (the back end may finish it and clear its error
        // bit) once filled_pos passed its last mark.
        while let Some(job) = self.jobs.get_mut(self.first_not_done) {
            match (job.last_mark, self.cursor) {
                (Some(l), Some(cur)) if cur >= l => {
                    job.done_at = Some(self.cycle);
                    let delay = self.rng.gen_range(0..20);
                    self.pending_clear.push((self.cycle + delay, self.first_not_done));
                    self.first_not_done += 1;
                }
                _ => break,
            }
        }
    }

    fn check_request(&mut self, t: StreamTlp) {
        let m = match decode_from_card(&t.dws) {
            Ok(CardTlp::Mem(m)) if !m.write => m,
            other => self.fail(format!("not a memory read: {other:?}")),
        };
        self.requests += 1;
        let h = &m.header;
        let four = m.addr >> 32 != 0;
        let fmt = if four { tlpc::FMT_4DW_NO_DATA } else { tlpc::FMT_3DW_NO_DATA };
        if h.fmt != fmt || h.typ != tlpc::TYPE_MEM || h.tc != 0 || h.attr != 0 || h.td || h.ep {
            self.fail(format!("header {h:?} for address {:#x}", m.addr));
        }
        if four {
            self.four_dw += 1;
        } else {
            self.three_dw += 1;
        }
        if m.requester as u64 != REQUESTER {
            self.fail(format!("requester {:#x}", m.requester));
        }
        if m.tag as u64 != self.seq % DATA_TAGS as u64 {
            self.fail(format!("tag {} for chunk number {} (expected number mod 16)", m.tag, self.seq));
        }
        self.seq += 1;
        let (start, end) = request_span(m.addr, h.length_dw, m.fbe, m.lbe).unwrap_or_else(|e| self.fail(e));
        while self.ij < self.jobs.len() && self.jobs[self.ij].issue_done {
            self.ij += 1;
        }
        let ij = self.ij;
        let Some(job) = self.jobs.get(ij) else {
            self.fail(format!("request for bytes {start:#x}..{end:#x} with no job"))
        };
        let mrrs = 128u64 << job.mrrs_code;
        let want_start = job.src + job.issued;
        let want_end = (job.src + job.len).min((want_start / mrrs + 1) * mrrs);
        if (start, end) != (want_start, want_end) {
            self.fail(format!(
                "request for bytes {start:#x}..{end:#x}, expected {want_start:#x}..{want_end:#x} (job {ij}: src {:#x} len {} MRRS {mrrs}, {} issued)",
                job.src, job.len, job.issued
            ));
        }
        assert_eq!(start >> 12, (end - 1) >> 12, "crosses 4 KiB");
        // No request of a job starts once its error bit is seen.
        if t.offered > 0 && self.err_hist[t.offered as usize - 1] >> job.id & 1 == 1 {
            self.fail(format!("request of job {ij} (id {}) offered after its read error", job.id));
        }
        let c = self.chunks.len();
        let delay = self.rng.gen_range(0..=self.retire_delay);
        self.chunks.push(Chunk {
            job: ij,
            tag: m.tag,
            start: job.pos0 + (start - job.src),
            end: job.pos0 + (end - job.src),
            ready_at: self.cycle + 1 + delay,
            retired: None,
        });
        if !self.busy[m.tag as usize] {
            self.fail(format!("tag {} not busy after its request", m.tag));
        }
        self.tag_chunk[m.tag as usize] = Some(c);
        self.marks.push(Mark { val: self.chunks[c].end, kind: MarkKind::Chunk(c), job: ij });
        let last = self.marks.len() - 1;
        let job = &mut self.jobs[ij];
        job.chunks.push(c);
        job.issued = end - job.src;
        if job.issued == job.len {
            job.issue_done = true;
            job.last_mark = Some(last);
        }
    }
}

#[test]
fn random_jobs_requests_tags_and_fill_order() {
    let mut b = Bench::new(0x5eed_2ead);
    b.run(400);
    let wrapped = b.jobs.iter().filter(|j| j.pos0 > VMASK).count();
    println!(
        "{} cycles, {} jobs, {} requests ({} 3-DW, {} 4-DW), max {} outstanding, {} error retirements, {} jobs cut short",
        b.cycle,
        b.jobs.len(),
        b.requests,
        b.three_dw,
        b.four_dw,
        b.max_busy,
        b.errors,
        b.aborted
    );
    assert_eq!(b.max_busy, DMA_MAX_OUTSTANDING as usize, "the 16-tag window was filled");
    assert!(b.three_dw > 100 && b.four_dw > 100);
    assert!(b.errors > 10 && b.aborted > 3, "read errors and jobs cut short by one");
    assert!(wrapped > 100, "buffer positions wrapped");
}

#[test]
fn rusthdl_and_verilator_agree_cycle_by_cycle() {
    let mut rng = SmallRng::seed_from_u64(11);
    let inputs = block_inputs("dma_read");
    let compared = differential::<ReadEngine>(5000, |cycle, set| {
        set("reset", (cycle < 2) as u64);
        for &(p, w) in inputs {
            let v = match p {
                "reset" => continue,
                "job_valid" => rng.gen_bool(0.3) as u64,
                "tx_ready" => rng.gen_bool(0.7) as u64,
                "retire_valid" => rng.gen_bool(0.3) as u64,
                "retire_ok" => rng.gen_bool(0.9) as u64,
                "err_clear" => rng.gen_bool(0.1) as u64,
                "job_len" => {
                    let max = if rng.gen_bool(0.1) { 65536 } else { 3000 };
                    rng.gen_range(1..=max)
                }
                _ => random_fit(&mut rng, w),
            };
            set(p, v);
        }
    });
    assert!(compared > 5000 * 10);
}
