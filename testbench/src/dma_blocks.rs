//! The DMA engine's sub-blocks on their own: their ports by name for
//! rust-hdl's simulator ([`NamedPorts`]), a differential run of any block
//! (rust-hdl vs Verilator, every output of every cycle), and the reference
//! model of the engine's registers (`dma_regs`).

use crate::rusthdl_block::{NamedPorts, RustHdlBlock};
use offcard_hdl::regmap::dma;
use offcard_sim::{BlockSim, VerilatedBlock};

crate::named_ports!(offcard_hdl::dma::regs::DmaRegs, "dma_regs",
    in: [reset, reg_wr_en, record_written, overflow_set, flush_done, engine_busy, head_inc, reg_addr, reg_wr_data, reg_wr_mask, events, fq, bq],
    out: [overflow, flush_pending, fq_active, reg_rd_data, wrec_base, wrec_log2, wrec_prod, wrec_cons, wrec_timeout, wb_addr, irq_coalesce, fq_ring_base, fq_head, fq_tail, fq_mask, fq_mode, bq_cpl_base, bq_head]);

crate::named_ports!(offcard_hdl::dma::read::ReadEngine, "dma_read",
    in: [reset, job_valid, tx_ready, retire_valid, retire_ok, err_clear, job_src, job_len, job_pos0, job_id, requester_id, max_read_req, retire_tag, lookup_tag, err_clear_id],
    out: [job_ready, tx_sop, tx_eop, tx_valid, lookup_busy, idle, tx_data, tx_keep, lookup_start, lookup_end, filled_pos, err]);

crate::named_ports!(offcard_hdl::dma::cpl_sink::CplSink, "dma_cpl_sink",
    in: [reset, cpl_sop, cpl_eop, cpl_valid, lookup_busy, desc_active, cpl_data, cpl_keep, lookup_start, lookup_end],
    out: [cpl_ready, buf_wr_en, desc_we0, desc_we1, retire_valid, retire_desc, retire_ok, unexpected, lookup_tag, buf_wr_pos, buf_wr_data, buf_wr_mask, desc_idx0, desc_idx1, desc_data, retire_tag]);

crate::named_ports!(offcard_hdl::dma::desc_fetch::DescFetch, "dma_desc_fetch",
    in: [reset, fq_active, head_inc, bus_master, tx_ready, desc_we0, desc_we1, desc_retire, desc_ok, nrx_last, nrx_valid, sink_writing, rj_ready, bj_take, fq_ring_base, fq_head, fq_tail, fq_mask, fq_mode, head_inc_q, requester_id, desc_idx0, desc_idx1, desc_data, nrx_data, nrx_bytes, nrx_queue, nrx_tenant, nrx_len, free_pos, vr_valid, vr_addr, vr_qws, vj_valid, vj_addr, vj_len, vj_last, vj_frame_len, vj_tenant, vx_match, vx_valid, vx_q, vx_addr, vx_len],
    out: [tx_sop, tx_eop, tx_valid, desc_active, nrx_ready, buf_wr_en, rj_valid, bj_valid, bj_local, idle, fq, tx_data, tx_keep, buf_wr_pos, buf_wr_data, buf_wr_mask, rj_src, rj_len, rj_pos0, rj_id, bj_q, bj_mode, bj_status, bj_cookie, bj_bytes, bj_tenant, bj_dst, bj_pos0, bj_end, bj_id, events, bj_vq, vr_ready, vrsp_valid, vrsp_data, vrsp_err, vj_ready, bj_vq_q, vx_take, vx_take_bytes, vx_drop]);

crate::named_ports!(offcard_hdl::dma::write::WriteEngine, "dma_write",
    in: [reset, bj_valid, bj_local, front_idle, overflow, flush_pending, bus_master, tx_ready, ntx_ready, bj_q, bj_mode, bj_status, bj_cookie, bj_bytes, bj_tenant, bj_dst, bj_pos0, bj_end, bj_id, filled_pos, read_err, bq_cpl_base, bq_head, wrec_base, wrec_log2, wrec_prod, wrec_cons, wrec_timeout, wb_addr, irq_coalesce, requester_id, max_payload, buf_rd_data, bj_vq, bj_vq_q, vw_valid, vw_addr, vw_data, vw_bytes, vw_q, tx_drained],
    out: [bj_take, err_clear, head_inc, record_written, overflow_set, flush_done, tx_sop, tx_eop, tx_valid, ntx_last, ntx_valid, irq, busy, free_pos, err_clear_id, bq, events, tx_data, tx_keep, buf_rd_pos, ntx_data, ntx_bytes, ntx_tenant, ntx_len, vq_sent, vq_rx_done, vq_failed, vw_ready]);

/// Drive block `name` in rust-hdl's simulator and in Verilator with the same
/// inputs (`stimulus(cycle, set)` sets them each cycle) and compare every
/// output after every evaluation. Returns the number of comparisons.
pub fn differential<U: NamedPorts>(cycles: u64, mut stimulus: impl FnMut(u64, &mut dyn FnMut(&str, u64))) -> usize {
    let mut a = RustHdlBlock::<U>::new();
    let mut b = VerilatedBlock::new(U::NAME);
    let outputs: Vec<&str> = b.abi().outputs.iter().map(|(n, _)| *n).collect();
    let mut compared = 0;
    for cycle in 0..cycles {
        stimulus(cycle, &mut |p, v| {
            a.set(p, v);
            b.set(p, v);
        });
        a.eval();
        b.eval();
        for p in &outputs {
            assert_eq!(a.get(p), b.get(p), "{}: cycle {cycle}: output {p} differs (rust-hdl vs Verilator)", U::NAME);
            compared += 1;
        }
        a.tick();
        b.tick();
    }
    compared
}

/// One DMA queue's registers as the host sees them (docs/dma.md).
#[derive(Clone, Default, Debug)]
pub struct QueueModel {
    pub ring: [u32; 2],
    pub log2: u32,
    pub cpl: [u32; 2],
    pub tail: u32,
    pub head: u32,
    pub enabled: bool,
    pub error: bool,
    pub mode: u32,
}

/// Reference model of `dma_regs`: the queues, the global registers and the
/// counters, written from the register map's documentation.
#[derive(Clone, Debug)]
pub struct DmaRegsModel {
    pub q: [QueueModel; 4],
    pub wrec: [u32; 2],
    pub wrec_log2: u32,
    pub prod: u32,
    pub cons: u32,
    pub timeout: u32,
    pub wb: [u32; 2],
    pub irq_coalesce: u32,
    pub overflow: bool,
    pub flush: bool,
    pub counters: [u32; 11],
}

impl Default for DmaRegsModel {
    fn default() -> Self {
        let q = QueueModel { log2: dma::Q_RING_LOG2_RESET, ..Default::default() };
        DmaRegsModel {
            q: [q.clone(), q.clone(), q.clone(), q],
            wrec: [0; 2],
            wrec_log2: 0,
            prod: 0,
            cons: 0,
            timeout: dma::WREC_TIMEOUT_RESET,
            wb: [0; 2],
            irq_coalesce: dma::IRQ_COALESCE_RESET,
            overflow: false,
            flush: false,
            counters: [0; 11],
        }
    }
}

impl DmaRegsModel {
    /// What a read of byte offset `off` returns (0 outside any register).
    pub fn read(&self, off: u32, engine_busy: bool) -> u32 {
        if (dma::QUEUE_BASE..dma::QUEUE_BASE + 4 * dma::QUEUE_STRIDE).contains(&off) {
            let q = &self.q[((off - dma::QUEUE_BASE) / dma::QUEUE_STRIDE) as usize];
            return match (off - dma::QUEUE_BASE) % dma::QUEUE_STRIDE {
                dma::Q_RING_LO => q.ring[0],
                dma::Q_RING_HI => q.ring[1],
                dma::Q_RING_LOG2 => q.log2,
                dma::Q_CPL_LO => q.cpl[0],
                dma::Q_CPL_HI => q.cpl[1],
                dma::Q_TAIL => q.tail,
                dma::Q_HEAD => q.head,
                dma::Q_STATUS => q.error as u32 | (q.enabled as u32) << 1,
                dma::Q_CTRL => q.enabled as u32,
                dma::Q_MODE => q.mode,
                _ => 0,
            };
        }
        match off {
            dma::DMA_STATUS => self.overflow as u32 | (self.flush as u32) << 1 | (engine_busy as u32) << 2,
            dma::WREC_LO => self.wrec[0],
            dma::WREC_HI => self.wrec[1],
            dma::WREC_LOG2 => self.wrec_log2,
            dma::WREC_PROD => self.prod,
            dma::WREC_CONS => self.cons,
            dma::WREC_TIMEOUT => self.timeout,
            dma::WREC_WB_LO => self.wb[0],
            dma::WREC_WB_HI => self.wb[1],
            dma::IRQ_COALESCE => self.irq_coalesce,
            o if (dma::CNT_DESC_DONE..=dma::CNT_RX_BAD_FRAME).contains(&o) => {
                self.counters[((o - dma::CNT_DESC_DONE) / 4) as usize]
            }
            _ => 0,
        }
    }

    /// A host write of `data` under byte mask `mask` at byte offset `off`.
    pub fn write(&mut self, off: u32, data: u32, mask: u32) {
        let merged = (self.read(off, false) & !mask) | (data & mask);
        if (dma::QUEUE_BASE..dma::QUEUE_BASE + 4 * dma::QUEUE_STRIDE).contains(&off) {
            let q = &mut self.q[((off - dma::QUEUE_BASE) / dma::QUEUE_STRIDE) as usize];
            match (off - dma::QUEUE_BASE) % dma::QUEUE_STRIDE {
                dma::Q_RING_LO => q.ring[0] = merged & !0x1f,
                dma::Q_RING_HI => q.ring[1] = merged,
                dma::Q_RING_LOG2 => {
                    q.log2 = match merged {
                        m if m & 0xf == 0 => dma::Q_RING_LOG2_RESET,
                        m if m > 12 => 12,
                        m => m & 0xf,
                    }
                }
                dma::Q_CPL_LO => q.cpl[0] = merged & !0xf,
                dma::Q_CPL_HI => q.cpl[1] = merged,
                dma::Q_TAIL => {
                    if merged >> q.log2 != 0 {
                        q.error = true;
                    } else {
                        q.tail = merged;
                    }
                }
                dma::Q_CTRL => {
                    q.enabled = merged & dma::Q_CTRL_ENABLE != 0;
                    if merged & dma::Q_CTRL_RESET != 0 {
                        q.head = 0;
                        q.tail = 0;
                        q.error = false;
                    }
                }
                dma::Q_MODE => {
                    if merged & 3 != 3 {
                        q.mode = merged & 3;
                    }
                }
                _ => {}
            }
            return;
        }
        match off {
            dma::DMA_STATUS => {
                if data & mask & 1 != 0 {
                    self.overflow = false;
                }
            }
            dma::WREC_LO => self.wrec[0] = merged & !0xf,
            dma::WREC_HI => self.wrec[1] = merged,
            dma::WREC_LOG2 => self.wrec_log2 = merged.min(16) & 0x1f,
            dma::WREC_CONS => self.cons = merged,
            dma::WREC_FLUSH => self.flush = true,
            dma::WREC_TIMEOUT => self.timeout = merged,
            dma::WREC_WB_LO => self.wb[0] = merged & !3,
            dma::WREC_WB_HI => self.wb[1] = merged,
            dma::IRQ_COALESCE => self.irq_coalesce = merged & 0xffff,
            _ => {}
        }
    }

    /// The engine retires queue `q`'s descriptor (before the host's write
    /// of the same cycle: a queue reset then wins).
    pub fn head_inc(&mut self, q: usize) {
        let q = &mut self.q[q];
        q.head = (q.head + 1) & ((1 << q.log2) - 1);
    }

    /// The engine's other events of one cycle (after the host's write: the
    /// engine's update wins).
    pub fn events(&mut self, counters: u32, record_written: bool, overflow_set: bool, flush_done: bool) {
        for (i, c) in self.counters.iter_mut().enumerate() {
            if counters >> i & 1 == 1 && *c != u32::MAX {
                *c += 1;
            }
        }
        if record_written {
            self.prod = self.prod.wrapping_add(1);
        }
        if overflow_set {
            self.overflow = true;
        }
        if flush_done {
            self.flush = false;
        }
    }

    /// Queue `q` has a descriptor waiting.
    pub fn has_desc(&self, q: usize) -> bool {
        let q = &self.q[q];
        q.enabled && !q.error && q.head != q.tail
    }
}

/// The inputs of block `name` (name, width), as its Verilated model has them.
pub fn block_inputs(name: &str) -> &'static [(&'static str, u32)] {
    VerilatedBlock::new(name).abi().inputs
}

/// A random value that fits `width` bits: often small, 0 or all ones, for
/// differential runs (where corner values matter more than uniform ones).
pub fn random_fit(rng: &mut impl rand::Rng, width: u32) -> u64 {
    let mask = if width >= 64 { u64::MAX } else { (1u64 << width) - 1 };
    match rng.gen_range(0..8) {
        0 => 0,
        1 => mask,
        2 | 3 => rng.gen_range(0..16) & mask,
        _ => rng.gen::<u64>() & mask,
    }
}

/// A TLP stream (64-bit beats, docs/tlp.md) as a sink sees it: collects the
/// beats that move and checks the framing (`sop` on the first beat only,
/// `keep` 11 on every beat but the last, which may be 01) and that a beat
/// offered and not taken stays as it was (`stable_data`: its data too).
#[derive(Default)]
pub struct TlpStream {
    dws: Vec<u32>,
    in_tlp: bool,
    /// Cycle in which the current TLP's first beat was first offered.
    first_offered: Option<u64>,
    held: Option<(u64, u64, bool, bool)>,
    pub stable_data: bool,
}

/// A TLP taken from a stream.
#[derive(Clone, Debug)]
pub struct StreamTlp {
    pub dws: Vec<u32>,
    /// Cycle in which its first beat was first offered.
    pub offered: u64,
    /// Cycle in which its last beat moved.
    pub done: u64,
}

impl TlpStream {
    pub fn new(stable_data: bool) -> Self {
        TlpStream { stable_data, ..Default::default() }
    }

    /// Nothing in the middle of a TLP.
    pub fn idle(&self) -> bool {
        !self.in_tlp
    }

    /// A TLP's first beat is offered for the first time (call before `cycle`).
    pub fn is_new_offer(&self, valid: bool, sop: bool) -> bool {
        valid && sop && !self.in_tlp && self.held.is_none()
    }

    /// One cycle of the stream; returns the TLP whose last beat moved.
    #[allow(clippy::too_many_arguments)]
    pub fn cycle(
        &mut self,
        cycle: u64,
        valid: bool,
        ready: bool,
        data: u64,
        keep: u64,
        sop: bool,
        eop: bool,
    ) -> Result<Option<StreamTlp>, String> {
        if let Some((d, k, s, e)) = self.held.take() {
            if !valid {
                return Err(format!("cycle {cycle}: a beat offered and not taken was withdrawn"));
            }
            let same = k == keep && s == sop && e == eop && (!self.stable_data || d == data);
            if !same {
                return Err(format!(
                    "cycle {cycle}: a beat offered and not taken changed ({d:#x} {k} {s} {e} -> {data:#x} {keep} {sop} {eop})"
                ));
            }
        }
        if !valid {
            return Ok(None);
        }
        if !self.in_tlp && !sop {
            return Err(format!("cycle {cycle}: beat outside a TLP (no sop)"));
        }
        if self.in_tlp && sop {
            return Err(format!("cycle {cycle}: sop inside a TLP"));
        }
        if sop && self.first_offered.is_none() {
            self.first_offered = Some(cycle);
        }
        if !(keep == 3 || (keep == 1 && eop)) {
            return Err(format!("cycle {cycle}: keep {keep:02b} (eop {eop})"));
        }
        if !ready {
            self.held = Some((data, keep, sop, eop));
            return Ok(None);
        }
        self.in_tlp = true;
        self.dws.push(data as u32);
        if keep == 3 {
            self.dws.push((data >> 32) as u32);
        }
        if !eop {
            return Ok(None);
        }
        self.in_tlp = false;
        let offered = self.first_offered.take().unwrap();
        Ok(Some(StreamTlp { dws: std::mem::take(&mut self.dws), offered, done: cycle }))
    }
}

/// The bytes `[start, end)` a memory request of `len_dw` DWs at DW address
/// `addr` with byte enables `fbe`/`lbe` covers; the enables must be those of
/// one contiguous range (1 DW: `lbe` 0, `fbe` contiguous and not 0; more:
/// `fbe` ends at byte 3, `lbe` starts at byte 0, neither 0).
pub fn request_span(addr: u64, len_dw: u16, fbe: u8, lbe: u8) -> Result<(u64, u64), String> {
    if addr & 3 != 0 || fbe > 15 || lbe > 15 {
        return Err(format!("address {addr:#x} not DW aligned or enables out of range"));
    }
    let contiguous = |be: u8| be != 0 && ((be >> be.trailing_zeros()) + 1).is_power_of_two();
    if len_dw == 1 {
        if lbe != 0 || !contiguous(fbe) {
            return Err(format!("1-DW request with fbe {fbe:04b} lbe {lbe:04b}"));
        }
        return Ok((addr + fbe.trailing_zeros() as u64, addr + 8 - fbe.leading_zeros() as u64));
    }
    if ![0xf, 0xe, 0xc, 0x8].contains(&fbe) || ![0x1, 0x3, 0x7, 0xf].contains(&lbe) {
        return Err(format!("{len_dw}-DW request with fbe {fbe:04b} lbe {lbe:04b} (not one contiguous range)"));
    }
    Ok((addr + fbe.trailing_zeros() as u64, addr + 4 * (len_dw as u64 - 1) + lbe.count_ones() as u64))
}

/// A byte of a test pattern: different for every (stream, offset).
pub fn pattern_byte(stream: u64, off: u64) -> u8 {
    let mut x = stream.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ off.wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
    x ^= x >> 29;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    (x ^ (x >> 32)) as u8
}
