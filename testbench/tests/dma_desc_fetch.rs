//! Testbench of `dma_desc_fetch` (hdl/src/dma/desc_fetch.rs), the DMA
//! engine's front end, on its own (Verilated). The test plays the registers
//! (`fq_*` for the queue the block looks at, from a model of four queues:
//! rings below, across and above 4 GiB, copy, TX and RX modes, a queue that
//! stops and one that changes mode), the host (descriptors and receive
//! buffers posted at random), the completion sink (each descriptor read
//! answered after a random delay: its eight DWs on `desc_we0/1` in random
//! order and pairs, then `desc_retire`, or a read error), the read engine
//! (`rj_ready`), the back end (jobs taken and completed in order: `head_inc`,
//! `free_pos`), the network (frames on `nrx_*`: good, malformed, with
//! gaps) and the sink's use of the buffer port (`sink_writing`). Checked
//! against docs/dma.md:
//!
//! - scheduling: a queue is taken only when enabled, not in RX mode, with a
//!   descriptor not yet taken, bus mastering on; round robin (no queue served
//!   twice while another waited throughout); RX frames and queues take turns
//!   (a queue taken while a frame waits is followed by the frame; a queue
//!   waiting sees at most four frames before its turn);
//! - descriptor reads: 8-DW Memory Reads (tag `DESC_TAG`, all byte
//!   enables, 3-DW header below 4 GiB) at ring base + index * 32, the index
//!   running ahead of head by the descriptors taken and not completed,
//!   never reaching tail;
//! - checks: length 0 or above 64 KiB (TX: above `MAX_FRAME`) completes with
//!   `CPL_STATUS_BAD_LENGTH`, an unreadable descriptor with
//!   `CPL_STATUS_DESC_ERROR` and cookie 0, neither reads nor takes space;
//! - read jobs (src, len, pos0 = allocation pointer + dst[2:0], id) and the
//!   back end's jobs (every field), ids counting mod 4, buffer space handed
//!   out in order and never more than 128 KiB beyond `free_pos`;
//! - RX frames: dropped and counted (`CNT_RX_BAD_FRAME`, `CNT_RX_NO_BUFFER`)
//!   at once when malformed or without a buffer, after the descriptor when it
//!   is unreadable or too short (`CNT_RX_TOO_LONG`); otherwise their beats go
//!   into the buffer at pos0, one per cycle, with the beat's byte mask, never
//!   while the sink writes, never onto space not yet freed; malformed beats
//!   give status `CPL_STATUS_BAD_LENGTH`; the job carries the frame's length
//!   and tenant;
//! - and rust-hdl's simulator agrees with Verilator cycle by cycle.

use offcard_hdl::byte_buffer::POS_BITS;
use offcard_hdl::dma::cpl_sink::DESC_TAG;
use offcard_hdl::dma::desc_fetch::DescFetch;
use offcard_hdl::dma::read::VPOS_BITS;
use offcard_hdl::dma::regs::{EV_RX_BAD_FRAME, EV_RX_FRAMES, EV_RX_NO_BUFFER, EV_RX_TOO_LONG, NUM_EVENTS};
use offcard_hdl::regmap::{dma, tlp as tlpc};
use offcard_sim::tlp::{decode_from_card, CardTlp};
use offcard_sim::{BlockSim, VerilatedBlock};
use offcard_testbench::dma_blocks::{block_inputs, differential, random_fit, request_span, StreamTlp, TlpStream};
use rand::seq::SliceRandom;
use rand::{rngs::SmallRng, Rng, SeedableRng};

const VMASK: u64 = (1 << VPOS_BITS) - 1;
const BUF: u64 = 1 << POS_BITS;
const REQUESTER: u64 = 0x0a18;
/// Rings: below 4 GiB, across it (indices 4..7 above), above, below.
const RING_BASE: [u64; 4] = [0x0020_0000, 0x1_0000_0000 - 4 * 32, 0x9_0000_0000, 0x0030_0000];
const RING_LOG2: [u32; 4] = [4, 3, 2, 5];
const MAX_FRAME: u64 = dma::MAX_FRAME as u64;

fn die(cycle: u64, msg: String) -> ! {
    panic!("dma_desc_fetch, cycle {cycle}: {msg}")
}

#[derive(Clone, Copy, Debug)]
struct Desc {
    src: u64,
    dst: u64,
    len: u32,
    flags: u32,
    cookie: u64,
    unreadable: bool,
}

impl Desc {
    fn dws(&self) -> [u32; 8] {
        let s = |v: u64| [v as u32, (v >> 32) as u32];
        let (a, b, c) = (s(self.src), s(self.dst), s(self.cookie));
        [a[0], a[1], b[0], b[1], self.len, self.flags, c[0], c[1]]
    }
}

struct Queue {
    head: u64,
    tail: u64,
    mode: u32,
    active: bool,
    /// Descriptors taken by the front end and not completed (model).
    inflight: u64,
    descs: Vec<Option<Desc>>,
}

impl Queue {
    fn mask(&self, q: usize) -> u64 {
        (1 << RING_LOG2[q]) - 1
    }
    fn pending(&self, q: usize) -> u64 {
        self.tail.wrapping_sub(self.head) & self.mask(q)
    }
}

#[derive(Clone, Debug)]
struct Frame {
    queue: usize,
    tenant: u8,
    len: u64,
    /// data, bytes, last
    beats: Vec<(u64, u64, bool)>,
    /// The beats add up to `len`, only the last is partial.
    good: bool,
}

impl Frame {
    fn valid_len(&self) -> bool {
        self.len != 0 && self.len <= MAX_FRAME
    }
}

/// What the model saw in one cycle (for decisions found a cycle later).
#[derive(Clone, Copy, Default)]
struct Snap {
    /// A queue the scheduler may take.
    eligible: [bool; 4],
    /// An RX queue with a buffer for a frame.
    rx_ok: [bool; 4],
    mode: [u32; 4],
    next_idx: [u64; 4],
    /// The frame on the port (its first beat).
    frame: Option<usize>,
    events: u64,
    free: u64,
}

#[derive(Clone, Debug, PartialEq)]
struct ExpJob {
    q: u64,
    mode: u64,
    status: u64,
    cookie: u64,
    bytes: Option<u64>,
    tenant: Option<u64>,
    dst: Option<u64>,
    pos0: u64,
    end: u64,
    local: u64,
    id: u64,
}

#[derive(Clone, Debug, PartialEq)]
enum Stage {
    /// The descriptor read is on the link.
    Mrd,
    /// The test answers as the sink: steps of (lane 0 DW, lane 1 DW), then retire.
    Answer { at: u64, steps: Vec<[Option<usize>; 2]> },
    /// Checked; waiting for the read job (if any) and the back end's slot.
    Validate,
    /// RX: the frame's beats go into the buffer (k beats so far).
    RxData { k: usize },
    /// RX: the frame's beats are consumed and dropped; then the job.
    RxDrop,
    /// RX: the frame is dropped without a descriptor.
    DropOnly,
    /// Only the job is still to come.
    Push,
}

struct Work {
    q: usize,
    idx: u64,
    frame: Option<usize>,
    desc: Option<Desc>,
    stage: Stage,
    job: Option<ExpJob>,
    rj: Option<(u64, u64, u64, u64)>,
    /// RX data: where beat 0 goes, the space's end, the frame's beats are good.
    rx: (u64, u64),
}

struct Bench {
    hw: VerilatedBlock,
    rng: SmallRng,
    cycle: u64,
    q: [Queue; 4],
    bus_master: bool,
    hist: Vec<Snap>,
    work: Option<Work>,
    stream: TlpStream,
    // network
    frames: Vec<Frame>,
    /// Frame on the port and its next beat.
    port: Option<(usize, usize)>,
    rx_gap_p: f64,
    // buffer space
    alloc: u64,
    free: u64,
    next_id: u64,
    // back end
    slot_prev: bool,
    be_job: Option<(ExpJob, u64)>,
    be_pause: u64,
    // stimulus knobs
    post_p: f64,
    rj_ready_p: f64,
    sink_p: f64,
    tx_ready_p: f64,
    stop: bool,
    frame_p: f64,
    /// Copies of 32..64 KiB: the buffer fills up.
    big: bool,
    // fairness
    waiting: [bool; 4],
    served: [[u32; 4]; 4],
    rx_served: [u32; 4],
    rx_owed: bool,
    /// Frames taken right after a queue taken while they waited; queue
    /// services while another queue waited.
    turns: u64,
    rr_waits: u64,
    // counts
    events: [u64; NUM_EVENTS],
    want_events: [u64; NUM_EVENTS],
    jobs: u64,
    read_jobs: u64,
    status_count: [u64; 5],
    rx_delivered: u64,
    fetches: u64,
    four_dw: u64,
    space_waits: u64,
    max_inflight: u64,
    pending_event: Option<(u64, usize)>,
    slot_job: Option<ExpJob>,
    slot_fields: Option<Vec<u64>>,
}

impl Bench {
    fn new(seed: u64) -> Self {
        let q = |i: usize, mode: u32| Queue {
            head: 0,
            tail: 0,
            mode,
            active: true,
            inflight: 0,
            descs: vec![None; 1 << RING_LOG2[i]],
        };
        let mut hw = VerilatedBlock::new("dma_desc_fetch");
        hw.set("requester_id", REQUESTER);
        Bench {
            hw,
            rng: SmallRng::seed_from_u64(seed),
            cycle: 0,
            q: [q(0, dma::QMODE_COPY), q(1, dma::QMODE_TX), q(2, dma::QMODE_RX), q(3, dma::QMODE_COPY)],
            bus_master: true,
            hist: vec![],
            work: None,
            stream: TlpStream::new(true),
            frames: vec![],
            port: None,
            rx_gap_p: 0.1,
            alloc: 0,
            free: 0,
            next_id: 0,
            slot_prev: false,
            be_job: None,
            be_pause: 0,
            post_p: 0.05,
            rj_ready_p: 0.5,
            sink_p: 0.2,
            tx_ready_p: 0.8,
            stop: false,
            frame_p: 0.01,
            big: false,
            waiting: [false; 4],
            served: [[0; 4]; 4],
            rx_served: [0; 4],
            rx_owed: false,
            turns: 0,
            rr_waits: 0,
            events: [0; NUM_EVENTS],
            want_events: [0; NUM_EVENTS],
            jobs: 0,
            read_jobs: 0,
            status_count: [0; 5],
            rx_delivered: 0,
            fetches: 0,
            four_dw: 0,
            space_waits: 0,
            max_inflight: 0,
            pending_event: None,
            slot_job: None,
            slot_fields: None,
        }
    }

    fn fail(&self, msg: String) -> ! {
        die(self.cycle, msg)
    }

    // ---- the host ----
    fn gen_desc(&mut self, q: usize) -> Desc {
        let r = &mut self.rng;
        let mode = self.q[q].mode;
        let len: u32 = match r.gen_range(0..40) {
            0 => 0,
            1 if mode == dma::QMODE_TX => dma::MAX_FRAME + 1,
            1 => dma::MAX_TRANSFER + 1,
            2 => r.gen(),
            3 if mode == dma::QMODE_TX => dma::MAX_FRAME,
            3 => dma::MAX_TRANSFER,
            4..=9 if mode == dma::QMODE_COPY => r.gen_range(4097..=dma::MAX_TRANSFER),
            _ if mode == dma::QMODE_COPY && self.big => r.gen_range(32768..=dma::MAX_TRANSFER),
            _ if mode == dma::QMODE_RX && r.gen_bool(0.5) => r.gen_range(64..=2000),
            _ if mode == dma::QMODE_RX => r.gen_range(64..=dma::MAX_FRAME),
            _ => r.gen_range(1..=4096),
        };
        Desc {
            src: r.gen::<u64>() >> r.gen_range(0..32),
            dst: r.gen::<u64>() >> r.gen_range(0..32),
            len,
            // TX: the tenant in bits 3:0; other bits (and other modes) must not matter.
            flags: r.gen(),
            cookie: r.gen(),
            unreadable: r.gen_bool(0.06),
        }
    }

    fn host(&mut self) {
        let now = self.cycle;
        if now % 2500 == 0 {
            self.post_p = [0.01, 0.05, 0.3][self.rng.gen_range(0..3)];
            self.rj_ready_p = [1.0, 0.5, 0.05][self.rng.gen_range(0..3)];
            self.sink_p = [0.0, 0.2, 0.6][self.rng.gen_range(0..3)];
            self.tx_ready_p = [1.0, 0.7, 0.3][self.rng.gen_range(0..3)];
            self.rx_gap_p = [0.0, 0.1, 0.5][self.rng.gen_range(0..3)];
            self.frame_p = [0.002, 0.01, 0.1][self.rng.gen_range(0..3)];
            // Queue 0 stops or starts; queue 3 changes mode when idle.
            self.q[0].active = self.rng.gen_bool(0.7);
            let q3 = &self.q[3];
            if q3.pending(3) == 0 && q3.inflight == 0 && self.rng.gen_bool(0.5) {
                self.q[3].mode = if q3.mode == dma::QMODE_RX { dma::QMODE_COPY } else { dma::QMODE_RX };
            }
            self.big = self.rng.gen_bool(0.25);
            if self.rng.gen_bool(0.3) {
                self.be_pause = now + self.rng.gen_range(500..4000);
            }
        }
        if now % 700 == 0 {
            self.bus_master = self.rng.gen_bool(0.9);
        }
        if self.stop {
            self.bus_master = true;
            self.q[0].active = true;
            return;
        }
        for q in 0..4 {
            let qq = &self.q[q];
            let full = (qq.tail + 1) & qq.mask(q) == qq.head;
            let p = if qq.mode == dma::QMODE_RX { self.post_p * 0.5 } else { self.post_p };
            // Big phases: only large copies, so three of them fill the buffer.
            let p = if self.big && qq.mode != dma::QMODE_COPY { 0.0 } else { p };
            if !full && self.rng.gen_bool(p) {
                let d = self.gen_desc(q);
                let qq = &mut self.q[q];
                qq.descs[qq.tail as usize] = Some(d);
                qq.tail = (qq.tail + 1) & qq.mask(q);
            }
        }
    }

    // ---- the network ----
    fn gen_frame(&mut self) -> Frame {
        let r = &mut self.rng;
        let queue = [2, 2, 2, 3, 3, 0, 1][r.gen_range(0..7)];
        let tenant = r.gen_range(0..16);
        let beats_for = |r: &mut SmallRng, n: u64| -> Vec<(u64, u64, bool)> {
            let k = n.div_ceil(8).max(1);
            (0..k).map(|i| (r.gen(), if i + 1 == k { n - 8 * i } else { 8 }, i + 1 == k)).collect()
        };
        let mut len = if r.gen_bool(0.1) { r.gen_range(1..=MAX_FRAME) } else { r.gen_range(1..=1600) };
        // Exactly the size of the buffer it will get, or one byte more.
        let qq = &self.q[queue];
        if let Some(d) = qq.descs[((qq.head + qq.inflight) & qq.mask(queue)) as usize].filter(|_| r.gen_bool(0.25)) {
            len = (d.len as u64 + r.gen_range(0..2)).clamp(1, MAX_FRAME);
        }
        let (n1, n2, n3) = (r.gen_range(1..30), r.gen_range(1..20), r.gen_range(1..8));
        let (len, beats, good) = match r.gen_range(0..24) {
            // announced length the engine refuses outright
            0 => (0, beats_for(r, n1), false),
            1 => (r.gen_range(MAX_FRAME + 1..1 << 14), beats_for(r, n1), false),
            // beats that do not add up
            2 => (len, beats_for(r, len.saturating_sub(n2).max(1)), false),
            3 => (len, beats_for(r, len + n3), false),
            4 if len > 16 => {
                let mut b = beats_for(r, len);
                let i = r.gen_range(0..b.len() - 1);
                b[i].1 = n3;
                (len, b, false)
            }
            5 => {
                let mut b = beats_for(r, len);
                b.last_mut().unwrap().1 = [0, 9, 15][n3 as usize % 3];
                (len, b, false)
            }
            _ => (len, beats_for(r, len), true),
        };
        let good = good && beats.iter().map(|b| b.1).sum::<u64>() == len;
        Frame { queue, tenant, len, beats, good }
    }

    fn snapshot(&self, events: u64) -> Snap {
        let mut s = Snap { events, free: self.free, ..Default::default() };
        for (i, q) in self.q.iter().enumerate() {
            let ready = self.bus_master && q.active && q.pending(i) > q.inflight;
            s.eligible[i] = ready && q.mode != dma::QMODE_RX;
            s.rx_ok[i] = ready && q.mode == dma::QMODE_RX;
            s.mode[i] = q.mode;
            s.next_idx[i] = (q.head + q.inflight) & q.mask(i);
        }
        s.frame = self.port.filter(|p| p.1 == 0).map(|p| p.0);
        s
    }

    /// The front end decided at cycle `d`: take queue `q` (with the frame
    /// on the port if `frame`), or drop the frame without a descriptor.
    fn decision(&mut self, d: u64, q: Option<usize>, rx: bool) {
        if self.work.is_some() {
            self.fail("a new decision while the front end is busy".into());
        }
        let s = self.hist[d as usize];
        if rx {
            let Some(f) = s.frame else { self.fail("took a frame when none waited".into()) };
            let fr = self.frames[f].clone();
            self.turns += self.rx_owed as u64;
            self.rx_owed = false;
            for w in 0..4 {
                if self.waiting[w] {
                    self.rx_served[w] += 1;
                    if self.rx_served[w] > 4 {
                        self.fail(format!("queue {w} waited through {} frames", self.rx_served[w]));
                    }
                }
            }
            match q {
                Some(q) => {
                    if q != fr.queue || !fr.valid_len() || !s.rx_ok[q] {
                        self.fail(format!(
                            "took queue {q}'s buffer for a frame of queue {} (length {}, buffer ready {})",
                            fr.queue, fr.len, s.rx_ok[fr.queue]
                        ));
                    }
                }
                None => {
                    // Dropped at once: malformed, or no buffer.
                    let ev = if !fr.valid_len() {
                        EV_RX_BAD_FRAME
                    } else if !s.rx_ok[fr.queue] {
                        EV_RX_NO_BUFFER
                    } else {
                        self.fail(format!(
                            "dropped a frame of length {} for queue {} that had a buffer",
                            fr.len, fr.queue
                        ))
                    };
                    self.want_event(d, ev);
                    self.work = Some(Work {
                        q: fr.queue,
                        idx: 0,
                        frame: Some(f),
                        desc: None,
                        stage: Stage::DropOnly,
                        job: None,
                        rj: None,
                        rx: (0, 0),
                    });
                    return;
                }
            }
        } else {
            let q = q.unwrap();
            if !s.eligible[q] {
                self.fail(format!("took queue {q}, which was not ready (mode {})", s.mode[q]));
            }
            if self.rx_owed {
                self.fail("took a queue twice while a frame waited".into());
            }
            self.rx_owed = s.frame.is_some();
            self.rr_waits += (0..4).any(|w| w != q && self.waiting[w]) as u64;
            for w in 0..4 {
                if w != q && self.waiting[w] {
                    self.served[w][q] += 1;
                    if self.served[w][q] >= 2 {
                        self.fail(format!("queue {q} served twice while queue {w} waited"));
                    }
                }
            }
            self.waiting[q] = false;
        }
        let q = q.unwrap();
        let idx = s.next_idx[q];
        let desc = self.q[q].descs[idx as usize];
        self.q[q].inflight += 1;
        self.max_inflight = self.max_inflight.max(self.q[q].inflight);
        self.fetches += 1;
        self.work = Some(Work {
            q,
            idx,
            frame: if rx { s.frame } else { None },
            desc,
            stage: Stage::Mrd,
            job: None,
            rj: None,
            rx: (0, 0),
        });
    }

    fn want_event(&mut self, cycle: u64, ev: usize) {
        self.want_events[ev] += 1;
        if self.hist[cycle as usize].events >> ev & 1 == 0 {
            self.fail(format!("event {ev} missing in cycle {cycle}"));
        }
    }

    fn check_mrd(&mut self, t: StreamTlp) {
        let m = match decode_from_card(&t.dws) {
            Ok(CardTlp::Mem(m)) if !m.write => m,
            other => self.fail(format!("not a memory read: {other:x?}")),
        };
        let h = &m.header;
        let four = m.addr >> 32 != 0;
        let fmt = if four { tlpc::FMT_4DW_NO_DATA } else { tlpc::FMT_3DW_NO_DATA };
        if h.fmt != fmt || h.typ != tlpc::TYPE_MEM || h.tc != 0 || h.attr != 0 || h.td || h.ep {
            self.fail(format!("header {h:?} for address {:#x}", m.addr));
        }
        self.four_dw += four as u64;
        let span = request_span(m.addr, h.length_dw, m.fbe, m.lbe).unwrap_or_else(|e| self.fail(e));
        let Some(w) = self.work.as_mut().filter(|w| w.stage == Stage::Mrd) else {
            self.fail("descriptor read with no fetch".into())
        };
        let want = RING_BASE[w.q] + w.idx * dma::DESC_BYTES as u64;
        if span != (want, want + dma::DESC_BYTES as u64)
            || m.tag as u64 != DESC_TAG
            || m.requester as u64 != REQUESTER
            || (m.fbe, m.lbe) != (0xf, 0xf)
        {
            let (q, idx) = (w.q, w.idx);
            self.fail(format!(
                "descriptor read {:#x}..{:#x} tag {} be {:x}/{:x}, expected queue {q} index {idx} at {want:#x}",
                span.0, span.1, m.tag, m.fbe, m.lbe
            ));
        }
        let Some(d) = w.desc else { unreachable!("checked: index below tail") };
        // The sink's answer: the DWs in random order and pairs, or an error.
        let mut steps = vec![];
        if !d.unreadable {
            let mut order: Vec<usize> = (0..8).collect();
            order.shuffle(&mut self.rng);
            let mut it = order.into_iter().peekable();
            while it.peek().is_some() {
                let mut st = [None, None];
                for lane in 0..2 {
                    if self.rng.gen_bool(0.6) {
                        st[lane] = it.next();
                    }
                }
                steps.push(st);
            }
        }
        if steps.is_empty() || self.rng.gen_bool(0.3) {
            steps.push([None, None]);
        }
        w.stage = Stage::Answer { at: self.cycle + 1 + self.rng.gen_range(0..30), steps };
    }

    /// The descriptor is in (retired this cycle): what must follow.
    fn outcome(&mut self, retired: u64) {
        let w = self.work.as_mut().unwrap();
        let d = w.desc.unwrap();
        let q = w.q;
        let mode = self.q[q].mode;
        let id = self.next_id & 3;
        self.next_id += 1;
        let mut job = ExpJob {
            q: q as u64,
            mode: mode as u64,
            status: 0,
            cookie: d.cookie,
            bytes: Some(d.len as u64),
            tenant: Some(if mode == dma::QMODE_TX { (d.flags & dma::DESC_FLAGS_TENANT_MASK) as u64 } else { 0 }),
            dst: Some(d.dst),
            pos0: self.alloc,
            end: self.alloc,
            local: 0,
            id,
        };
        let dst_low = d.dst & 7;
        let mut ev = None;
        if let Some(f) = w.frame {
            let fr = &self.frames[f];
            job.local = 1;
            job.bytes = Some(fr.len);
            job.tenant = Some(fr.tenant as u64);
            if d.unreadable {
                (job.status, job.cookie, job.dst) = (dma::CPL_STATUS_DESC_ERROR as u64, 0, None);
                (w.stage, ev) = (Stage::RxDrop, Some(EV_RX_NO_BUFFER));
            } else if fr.len > d.len as u64 {
                job.status = dma::CPL_STATUS_RX_TOO_LONG as u64;
                (w.stage, ev) = (Stage::RxDrop, Some(EV_RX_TOO_LONG));
            } else {
                // A frame's space has 8 bytes of room for a last beat that
                // starts inside its announced length and runs past it.
                let need = ((dst_low + fr.len + 7) & !7) + 8;
                w.rx = (self.alloc + dst_low, self.alloc + need);
                self.alloc += need;
                if fr.good {
                    (job.pos0, job.end) = (w.rx.0, w.rx.1);
                } else {
                    job.status = dma::CPL_STATUS_BAD_LENGTH as u64;
                    (job.pos0, job.end) = (self.alloc, self.alloc);
                }
                w.stage = Stage::Validate;
            }
        } else if d.unreadable {
            (job.status, job.cookie) = (dma::CPL_STATUS_DESC_ERROR as u64, 0);
            // The descriptor's fields are whatever the registers held.
            (job.bytes, job.dst) = (None, None);
            if mode == dma::QMODE_TX {
                job.tenant = None;
            }
            w.stage = Stage::Push;
        } else if d.len == 0 || d.len > dma::MAX_TRANSFER || (mode == dma::QMODE_TX && d.len > dma::MAX_FRAME) {
            job.status = dma::CPL_STATUS_BAD_LENGTH as u64;
            w.stage = Stage::Push;
        } else {
            let need = (dst_low + d.len as u64 + 7) & !7;
            (job.pos0, job.end) = (self.alloc + dst_low, self.alloc + need);
            w.rj = Some((d.src, d.len as u64, job.pos0, id));
            self.alloc += need;
            w.stage = Stage::Validate;
        }
        w.job = Some(job);
        if let Some(ev) = ev {
            // Counted in Validate, the cycle after the descriptor retired.
            self.pending_event = Some((retired + 1, ev));
        }
    }

    fn done(&self) -> bool {
        self.work.is_none()
            && self.port.is_none()
            && self.slot_job.is_none()
            && self.be_job.is_none()
            && (0..4).all(|q| self.q[q].inflight == 0 && (self.q[q].mode == dma::QMODE_RX || self.q[q].pending(q) == 0))
    }

    fn run(&mut self, stim_cycles: u64) {
        loop {
            let now = self.cycle;
            if now >= stim_cycles {
                self.stop = true;
                if self.done() {
                    break;
                }
                if now > stim_cycles + 200_000 {
                    self.fail("did not drain".into());
                }
            }
            self.host();
            if self.port.is_none() && !self.stop && !self.big && self.rng.gen_bool(self.frame_p) {
                let f = self.gen_frame();
                self.frames.push(f);
                self.port = Some((self.frames.len() - 1, 0));
            }
            // ---- inputs: the network ----
            let beat = match self.port {
                Some((f, k)) if k == 0 || !self.rng.gen_bool(self.rx_gap_p) => Some((f, k)),
                _ => None,
            };
            let junk: [u64; 4] = self.rng.gen();
            let (data, bytes, last) =
                beat.map_or((junk[0], junk[1] & 15, junk[1] & 16 != 0), |(f, k)| self.frames[f].beats[k]);
            self.hw.set("nrx_valid", beat.is_some() as u64);
            self.hw.set("nrx_data", data);
            self.hw.set("nrx_bytes", bytes);
            self.hw.set("nrx_last", last as u64);
            let (nq, nt, nl) = match beat {
                Some((f, 0)) => (self.frames[f].queue as u64, self.frames[f].tenant as u64, self.frames[f].len),
                // read on the first beat only
                _ => (junk[2] & 3, junk[2] >> 2 & 15, junk[3] & 0x3fff),
            };
            self.hw.set("nrx_queue", nq);
            self.hw.set("nrx_tenant", nt);
            self.hw.set("nrx_len", nl);
            // ---- the sink's answer ----
            let mut answer = None;
            if let Some(Work { stage: Stage::Answer { at, steps }, desc, .. }) = &self.work {
                if now >= *at {
                    answer = Some((steps[0], steps.len() == 1, !desc.unwrap().unreadable));
                }
            }
            let junk: [u64; 2] = self.rng.gen();
            match answer {
                Some((st, retire, ok)) => {
                    let dws = self.work.as_ref().unwrap().desc.unwrap().dws();
                    let lane = |i: Option<usize>| i.map_or(junk[0] as u32, |i| dws[i]) as u64;
                    self.hw.set("desc_we0", st[0].is_some() as u64);
                    self.hw.set("desc_idx0", st[0].unwrap_or(junk[1] as usize & 7) as u64);
                    self.hw.set("desc_we1", st[1].is_some() as u64);
                    self.hw.set("desc_idx1", st[1].unwrap_or(junk[1] as usize >> 3 & 7) as u64);
                    self.hw.set("desc_data", lane(st[0]) | lane(st[1]) << 32);
                    self.hw.set("desc_retire", retire as u64);
                    self.hw.set("desc_ok", ok as u64);
                }
                None => {
                    self.hw.set("desc_we0", 0);
                    self.hw.set("desc_we1", 0);
                    self.hw.set("desc_idx0", junk[1] & 7);
                    self.hw.set("desc_idx1", junk[1] >> 3 & 7);
                    self.hw.set("desc_data", junk[0]);
                    self.hw.set("desc_retire", 0);
                    self.hw.set("desc_ok", junk[1] >> 6 & 1);
                }
            }
            // ---- the back end finishes its job ----
            let finish = self.be_job.as_ref().filter(|(_, at)| now >= *at).map(|(j, _)| j.q as usize);
            self.hw.set("head_inc", finish.is_some() as u64);
            self.hw.set("head_inc_q", finish.unwrap_or(self.rng.gen_range(0..4)) as u64);
            let rj_ready = self.rng.gen_bool(self.rj_ready_p);
            let sink_writing = self.rng.gen_bool(self.sink_p);
            let tx_ready = self.rng.gen_bool(self.tx_ready_p);
            self.hw.set("rj_ready", rj_ready as u64);
            self.hw.set("sink_writing", sink_writing as u64);
            self.hw.set("tx_ready", tx_ready as u64);
            self.hw.set("bus_master", self.bus_master as u64);
            self.hw.set("free_pos", self.free & VMASK);
            self.hw.set("bj_take", 0);
            self.hw.eval();
            // ---- the registers: the queue the block looks at ----
            let fq = self.hw.get("fq") as usize;
            let qq = &self.q[fq];
            self.hw.set("fq_ring_base", RING_BASE[fq]);
            self.hw.set("fq_head", qq.head);
            self.hw.set("fq_tail", qq.tail);
            self.hw.set("fq_mask", qq.mask(fq));
            self.hw.set("fq_mode", qq.mode as u64);
            self.hw.set("fq_active", qq.active as u64);
            self.hw.eval();
            // the back end takes the job in the slot
            let bj_valid = self.hw.get("bj_valid") == 1;
            let take =
                bj_valid && finish.is_none() && self.be_job.is_none() && now >= self.be_pause && self.rng.gen_bool(0.5);
            self.hw.set("bj_take", take as u64);
            self.hw.eval();

            // ---- outputs ----
            let o = |p: &str| self.hw.get(p);
            let (valid, tdata, keep, sop, eop) =
                (o("tx_valid") == 1, o("tx_data"), o("tx_keep"), o("tx_sop") == 1, o("tx_eop") == 1);
            let consumed = beat.is_some() && o("nrx_ready") == 1;
            let events = o("events");
            let desc_active = o("desc_active") == 1;
            // decisions of the previous cycle
            if self.stream.is_new_offer(valid, sop) {
                let d = now - 1;
                let rx = self.hist[d as usize].mode[fq] == dma::QMODE_RX;
                self.decision(d, Some(fq), rx);
            } else if consumed && self.work.is_none() {
                self.decision(now - 1, None, true);
            }
            self.hist.push(self.snapshot(events));
            for (i, e) in self.events.iter_mut().enumerate() {
                *e += events >> i & 1;
            }
            let rx_events = 1 << EV_RX_FRAMES | 1 << EV_RX_NO_BUFFER | 1 << EV_RX_TOO_LONG | 1 << EV_RX_BAD_FRAME;
            if events & !rx_events != 0 {
                self.fail(format!("events {events:#b}: the front end counts only RX events"));
            }
            if let Some((at, ev)) = self.pending_event.filter(|p| p.0 == now) {
                self.pending_event = None;
                self.want_event(at, ev);
            }
            for q in 0..4 {
                if self.hist[now as usize].eligible[q] {
                    if !self.waiting[q] {
                        self.waiting[q] = true;
                        self.served[q] = [0; 4];
                        self.rx_served[q] = 0;
                    }
                } else {
                    self.waiting[q] = false;
                }
            }
            // descriptor read outstanding: the sink may deliver tag 16
            let stage = self.work.as_ref().map(|w| w.stage.clone());
            match stage {
                Some(Stage::Answer { .. }) if !desc_active => {
                    self.fail("desc_active low while the descriptor is awaited".into())
                }
                Some(Stage::Mrd) | Some(Stage::Answer { .. }) => {}
                _ if desc_active => self.fail(format!("desc_active with no descriptor read ({stage:?})")),
                _ => {}
            }
            match self.stream.cycle(now, valid, tx_ready, tdata, keep, sop, eop) {
                Err(e) => self.fail(e),
                Ok(Some(t)) => self.check_mrd(t),
                Ok(None) => {}
            }
            if let Some((_, retire, _)) = answer {
                let w = self.work.as_mut().unwrap();
                if let Stage::Answer { steps, .. } = &mut w.stage {
                    steps.remove(0);
                }
                if retire {
                    self.outcome(now);
                }
            }
            self.check_read_job(rj_ready);
            self.check_frame_beat(consumed, sink_writing);
            if consumed {
                let (f, k) = self.port.unwrap();
                self.port = if k + 1 == self.frames[f].beats.len() { None } else { Some((f, k + 1)) };
            }
            self.check_slot(bj_valid, take);
            self.hw.tick();
            self.cycle += 1;

            // ---- the model after the edge ----
            if let Some(q) = finish {
                let (j, _) = self.be_job.take().unwrap();
                self.free = j.end;
                let qq = &mut self.q[q];
                qq.head = (qq.head + 1) & qq.mask(q);
                qq.inflight -= 1;
            }
        }
        self.hw.eval();
        assert_eq!(self.hw.get("idle"), 1, "idle at the end");
    }

    fn check_read_job(&mut self, rj_ready: bool) {
        let rj_valid = self.hw.get("rj_valid") == 1;
        let o = |p: &str| self.hw.get(p);
        let got = (o("rj_src"), o("rj_len"), o("rj_pos0"), o("rj_id"));
        let Some(w) = self.work.as_mut() else {
            if rj_valid {
                self.fail("read job with no descriptor".into());
            }
            return;
        };
        let want = w.rj.filter(|_| w.stage == Stage::Validate);
        match (want, rj_valid) {
            (Some((src, len, pos0, id)), true) => {
                if !rj_ready {
                    self.fail("read job offered while the read engine is not ready".into());
                }
                if got != (src, len & 0x3ffff, pos0 & VMASK, id) {
                    self.fail(format!("read job {got:x?}, expected {:x?}", (src, len, pos0 & VMASK, id)));
                }
                let end = w.job.as_ref().unwrap().end;
                if end - self.free > BUF {
                    self.fail(format!("buffer space to {end:#x} handed out with only {:#x} freed", self.free));
                }
                w.rj = None;
                w.stage = Stage::Push;
                self.read_jobs += 1;
            }
            (Some(_), false) => {
                let end = w.job.as_ref().unwrap().end;
                if end - self.free > BUF {
                    self.space_waits += 1;
                }
            }
            (None, true) => self.fail(format!("read job {got:x?} not expected")),
            (None, false) => {}
        }
    }

    fn check_frame_beat(&mut self, consumed: bool, sink_writing: bool) {
        let cycle = self.cycle;
        let o = |p: &str| self.hw.get(p);
        let wr = o("buf_wr_en") == 1;
        let (pos, data, mask) = (o("buf_wr_pos"), o("buf_wr_data"), o("buf_wr_mask"));
        if wr && sink_writing {
            die(cycle, "frame write while the sink writes the buffer".into());
        }
        if !consumed {
            if wr {
                die(cycle, "buffer write with no frame beat".into());
            }
            return;
        }
        let (f, k) = self.port.unwrap();
        let (bdata, bytes, last) = self.frames[f].beats[k];
        let now = self.cycle;
        let free_prev = self.hist[now as usize - 1].free;
        let w = self.work.as_mut().unwrap();
        if w.frame != Some(f) {
            die(cycle, format!("beat of frame {f} taken while working on {:?}", w.frame));
        }
        match w.stage.clone() {
            Stage::DropOnly | Stage::RxDrop => {
                if wr {
                    die(cycle, "buffer write for a dropped frame".into());
                }
                if last {
                    if w.stage == Stage::DropOnly {
                        self.work = None;
                    } else {
                        w.stage = Stage::Push;
                    }
                }
            }
            Stage::Validate | Stage::RxData { .. } if w.rx.1 != 0 => {
                let k2 = if let Stage::RxData { k } = w.stage { k } else { 0 };
                assert_eq!(k2, k);
                let (p0, end) = w.rx;
                if k == 0 && end - free_prev > BUF {
                    die(cycle, format!("frame space to {end:#x} handed out with only {free_prev:#x} freed"));
                }
                let want_mask = if bytes >= 8 { 0xff } else { (1u64 << bytes) - 1 };
                let p = p0 + 8 * k as u64;
                // Beats that start past the announced length are taken but
                // not written (a runaway frame stays in its own space).
                let fr_len = self.frames[f].len;
                if 8 * k as u64 >= fr_len {
                    if wr {
                        die(cycle, format!("frame {f} beat {k} starts past the announced {fr_len} bytes but is written"));
                    }
                } else if !wr || pos != p % BUF || data != bdata || mask != want_mask {
                    die(cycle, format!(
                        "frame {f} beat {k}: write {wr} at {pos:#x} mask {mask:#x} data {data:#x}, expected at {:#x} mask {want_mask:#x} data {bdata:#x}",
                        p % BUF
                    ));
                }
                for i in 0..8 {
                    let b = p + i;
                    if mask >> i & 1 == 1 && b >= self.free + BUF {
                        die(
                            cycle,
                            format!(
                            "frame {f} beat {k} writes byte {b:#x}, over buffer space not freed yet (freed to {:#x})",
                            self.free
                        ),
                        );
                    }
                    if mask >> i & 1 == 1 && self.frames[f].good && b >= end {
                        die(cycle, format!("frame {f} beat {k} writes past its space"));
                    }
                }
                let good = self.frames[f].good;
                w.stage = Stage::RxData { k: k + 1 };
                if last {
                    w.stage = Stage::Push;
                    self.want_event(now, if good { EV_RX_FRAMES } else { EV_RX_BAD_FRAME });
                    self.rx_delivered += good as u64;
                }
            }
            st => die(cycle, format!("frame {f} beat {k} taken in stage {st:?}")),
        }
    }

    fn check_slot(&mut self, bj_valid: bool, take: bool) {
        let o = |p: &str| self.hw.get(p);
        let fields: Vec<u64> = [
            "bj_q",
            "bj_mode",
            "bj_status",
            "bj_cookie",
            "bj_bytes",
            "bj_tenant",
            "bj_dst",
            "bj_pos0",
            "bj_end",
            "bj_local",
            "bj_id",
        ]
        .iter()
        .map(|p| o(p))
        .collect();
        if bj_valid && !self.slot_prev {
            let Some(w) = self.work.as_ref().filter(|w| w.stage == Stage::Push) else {
                self.fail("a job in the slot before its descriptor was done".into())
            };
            let j = w.job.clone().unwrap();
            let want = [
                Some(j.q),
                Some(j.mode),
                Some(j.status),
                Some(j.cookie),
                j.bytes,
                j.tenant,
                j.dst,
                Some(j.pos0 & VMASK),
                Some(j.end & VMASK),
                Some(j.local),
                Some(j.id),
            ];
            if fields.iter().zip(&want).any(|(g, w)| w.is_some_and(|w| w != *g)) {
                self.fail(format!(
                    "job {:x?}, expected {:x?} (q mode status cookie bytes tenant dst pos0 end local id)",
                    fields, want
                ));
            }
            self.jobs += 1;
            self.status_count[j.status as usize] += 1;
            self.slot_job = Some(j);
            self.slot_fields = Some(fields.clone());
            self.work = None;
        } else if bj_valid && self.slot_fields.as_ref() != Some(&fields) {
            self.fail("the job in the slot changed before it was taken".into());
        }
        if take {
            let j = self.slot_job.take().unwrap();
            let dur = if j.status == 0 { self.rng.gen_range(0..j.bytes.unwrap_or(0) / 32 + 20) } else { 3 };
            self.be_job = Some((j, self.cycle + 1 + dur));
            self.slot_fields = None;
        }
        self.slot_prev = bj_valid && !take;
    }
}

#[test]
fn scheduling_descriptors_jobs_buffer_space_and_frames() {
    let mut b = Bench::new(0xfe7c);
    b.run(400_000);
    let ev = |i: usize| b.events[i];
    println!(
        "{} cycles: {} descriptor reads ({} 4-DW), {} jobs (by status {:?}), {} read jobs, {} frames ({} delivered), \
         events frames/no buffer/too long/bad {}/{}/{}/{}, {} cycles waiting for space, {} in flight at most",
        b.cycle,
        b.fetches,
        b.four_dw,
        b.jobs,
        b.status_count,
        b.read_jobs,
        b.frames.len(),
        b.rx_delivered,
        ev(EV_RX_FRAMES),
        ev(EV_RX_NO_BUFFER),
        ev(EV_RX_TOO_LONG),
        ev(EV_RX_BAD_FRAME),
        b.space_waits,
        b.max_inflight
    );
    for e in [EV_RX_FRAMES, EV_RX_NO_BUFFER, EV_RX_TOO_LONG, EV_RX_BAD_FRAME] {
        assert_eq!(b.events[e], b.want_events[e], "event {e}: counted {}, expected {}", b.events[e], b.want_events[e]);
        assert!(b.events[e] > 20, "event {e} seen");
    }
    let statuses =
        [dma::CPL_STATUS_OK, dma::CPL_STATUS_BAD_LENGTH, dma::CPL_STATUS_DESC_ERROR, dma::CPL_STATUS_RX_TOO_LONG];
    assert!(statuses.iter().all(|&s| b.status_count[s as usize] > 10), "every status: {:?}", b.status_count);
    println!("{} frames taken in their turn, {} queue services while another waited", b.turns, b.rr_waits);
    assert!(b.turns > 15 && b.rr_waits > 100, "the scheduling rules were exercised");
    assert!(b.read_jobs > 500 && b.four_dw > 100 && b.space_waits > 100 && b.max_inflight >= 3);
    assert!(b.alloc > VMASK + 1, "buffer positions wrapped");
}

#[test]
fn rusthdl_and_verilator_agree_cycle_by_cycle() {
    let mut rng = SmallRng::seed_from_u64(14);
    let inputs = block_inputs("dma_desc_fetch");
    let compared = differential::<DescFetch>(5000, |cycle, set| {
        set("reset", (cycle < 2) as u64);
        for &(p, w) in inputs {
            let v = match p {
                "reset" => continue,
                "fq_mask" => [1, 3, 7, 15][rng.gen_range(0..4)],
                "fq_head" | "fq_tail" => rng.gen_range(0..16),
                "fq_active" | "bus_master" | "tx_ready" | "rj_ready" | "desc_ok" => rng.gen_bool(0.8) as u64,
                "desc_we0" | "desc_we1" | "sink_writing" | "bj_take" | "nrx_last" => rng.gen_bool(0.3) as u64,
                "desc_retire" | "head_inc" => rng.gen_bool(0.1) as u64,
                "nrx_valid" => rng.gen_bool(0.4) as u64,
                "nrx_len" => [rng.gen_range(0..200), rng.gen_range(0..1 << 14)][rng.gen_range(0..2)],
                "nrx_bytes" => [8, rng.gen_range(0..16)][rng.gen_range(0..2)],
                "desc_data" => {
                    // lengths around the limits in DW 4 (lane 0) or 5 (lane 1... DW 4 is lane 0 at index 4)
                    let len = [0, 1, 100, 9216, 9217, 65536, 65537, rng.gen()][rng.gen_range(0..8)] as u64;
                    if rng.gen_bool(0.5) {
                        len | (rng.gen::<u32>() as u64) << 32
                    } else {
                        random_fit(&mut rng, w)
                    }
                }
                _ => random_fit(&mut rng, w),
            };
            set(p, v);
        }
    });
    assert!(compared > 5000 * 10);
}

/// A frame whose beats run far past its announced length (the network side
/// misbehaving; docs/dma.md: beats that do not add up give status 1 and no
/// write): its beats must not land on buffer space the front end handed out
/// to earlier jobs and the back end has not given back (`free_pos`).
/// Two copies of 60 KiB hold the buffer (the back end keeps the first); an
/// RX frame announced as 100 bytes then brings 2000 full beats.
#[test]
fn runaway_frame_does_not_overwrite_buffer_space_in_use() {
    const COPY_LEN: u32 = 61440;
    let mut hw = VerilatedBlock::new("dma_desc_fetch");
    let desc = |dst: u64, len: u32| Desc { src: 0x5000_0000, dst, len, flags: 0, cookie: dst, unreadable: false };
    let descs: [Vec<Desc>; 4] =
        [vec![desc(0x1000_0000, COPY_LEN), desc(0x2000_0000, COPY_LEN)], vec![], vec![desc(0x3000_0000, 9216)], vec![]];
    let modes = [dma::QMODE_COPY, dma::QMODE_TX, dma::QMODE_RX, dma::QMODE_COPY];
    let frame: Vec<(u64, u64, bool)> = (0..2000u64).map(|i| (i, 8, i == 1999)).collect();
    let mut stream = TlpStream::new(true);
    let (mut answer, mut rj, mut taken, mut beat) = (None::<(u64, Desc)>, 0, false, 0usize);
    let held_end = 2 * COPY_LEN as u64; // space of the two copies: [0, held_end), none freed
    let mut collisions = vec![];
    for cycle in 0..30_000u64 {
        let frame_on = rj == 2 && beat < frame.len();
        let (d, b, l) = if frame_on { frame[beat] } else { (0, 0, false) };
        for (p, v) in [
            ("requester_id", REQUESTER),
            ("bus_master", 1),
            ("tx_ready", 1),
            ("rj_ready", 1),
            ("sink_writing", 0),
            ("free_pos", 0),
            ("head_inc", 0),
            ("nrx_valid", frame_on as u64),
            ("nrx_data", d),
            ("nrx_bytes", b),
            ("nrx_last", l as u64),
            ("nrx_queue", 2),
            ("nrx_tenant", 1),
            ("nrx_len", 100),
        ] {
            hw.set(p, v);
        }
        // the sink: the descriptor's DWs two at a time, then retire
        let (mut we, mut idx, mut data, mut retire) = (0, 0, 0, 0);
        if let Some((at, dsc)) = answer {
            if cycle >= at {
                let k = (cycle - at) as usize;
                let dws = dsc.dws();
                (we, idx, data) = (1, 2 * k, dws[2 * k] as u64 | (dws[2 * k + 1] as u64) << 32);
                if k == 3 {
                    retire = 1;
                    answer = None;
                }
            }
        }
        for (p, v) in [
            ("desc_we0", we),
            ("desc_idx0", idx as u64),
            ("desc_we1", we),
            ("desc_idx1", idx as u64 + 1),
            ("desc_data", data),
            ("desc_retire", retire),
            ("desc_ok", 1),
            ("bj_take", 0),
        ] {
            hw.set(p, v);
        }
        hw.eval();
        let q = hw.get("fq") as usize;
        for (p, v) in [
            ("fq_ring_base", RING_BASE[q]),
            ("fq_head", 0),
            ("fq_tail", descs[q].len() as u64),
            ("fq_mask", (1 << RING_LOG2[q]) - 1),
            ("fq_mode", modes[q] as u64),
            ("fq_active", 1),
        ] {
            hw.set(p, v);
        }
        hw.eval();
        // the back end takes the first job and keeps it
        let take = hw.get("bj_valid") == 1 && !taken;
        hw.set("bj_take", take as u64);
        taken |= take;
        hw.eval();
        let o = |p: &str| hw.get(p);
        let t = stream.cycle(
            cycle,
            o("tx_valid") == 1,
            true,
            o("tx_data"),
            o("tx_keep"),
            o("tx_sop") == 1,
            o("tx_eop") == 1,
        );
        if let Some(t) = t.unwrap() {
            let Ok(CardTlp::Mem(m)) = decode_from_card(&t.dws) else { panic!("not a read") };
            let q = (0..4).find(|&q| m.addr >> 12 == RING_BASE[q] >> 12).unwrap();
            let i = ((m.addr - RING_BASE[q]) / 32) as usize;
            answer = Some((cycle + 2, descs[q][i]));
        }
        rj += o("rj_valid");
        if frame_on && o("nrx_ready") == 1 {
            if o("buf_wr_en") == 1 {
                // buffer positions wrap at 128 KiB: a byte in [0, held_end) is the copies'
                for i in 0..8 {
                    let p = (o("buf_wr_pos") + i) % BUF;
                    if o("buf_wr_mask") >> i & 1 == 1 && p < held_end {
                        collisions.push((beat, p));
                    }
                }
            }
            beat += 1;
        }
        hw.tick();
    }
    assert_eq!(rj, 2, "both copies got their read jobs");
    assert!(beat == frame.len(), "the frame was taken ({beat} beats)");
    assert!(
        collisions.is_empty(),
        "{} frame bytes written over the copies' buffer space (not freed): first at beat {}, position {:#x}",
        collisions.len(),
        collisions[0].0,
        collisions[0].1
    );
}
