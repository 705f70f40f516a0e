//! DMA engine: queues of descriptors and completions in host memory (copy,
//! host to network, network to host), reads split by Max Read Request Size
//! with up to 16 outstanding, writes split by Max Payload Size, and a write
//! record for every memory write it makes (data and completion entries).
//! See docs/dma.md.
//!
//! The engine is a pipeline of blocks, one per file, each with its own
//! testbench:
//!
//! - [`desc_fetch`]: the front end. Schedules queues and arriving frames,
//!   fetches and checks descriptors (ahead of the back end), hands out
//!   transfer-buffer space, gives the read engine and the back end their jobs.
//! - [`read`]: Memory Reads for a job's source, tags and their table, and how
//!   far the buffer is filled (in order).
//! - [`cpl_sink`]: completions into the buffer (or the descriptor registers).
//! - [`write`]: the back end. Memory Writes from the buffer as soon as their
//!   bytes are in (cut-through), frames to the network, completion entries,
//!   write records, interrupts.
//! - [`regs`] (with [`queue_regs`]): the registers.
//!
//! So while the back end writes one descriptor's data, the front end has
//! already fetched the next descriptor and the read engine reads its data:
//! the transmit link carries writes back to back.
//!
//! Three request streams share the link to the host: the descriptor reads
//! and the data reads are merged first (both short), then with the writes.
//!
//! The virtqueue engine ([`crate::virtq::engine`]) lives here too: its ring
//! reads and transmit frames go through the front end, its frames and
//! used-ring writes through the back end, so every write it makes into
//! guest memory has its write record. Its registers sit at BAR0 0x4000 and
//! its doorbells at 0x8000 (`regmap::virtq`); its interrupts raise the MSI.

pub mod cpl_sink;
pub mod desc_fetch;
pub mod queue_regs;
pub mod read;
pub mod regs;
pub mod write;

use crate::bus::{RegBusTarget, TlpSink, TlpSource};
use crate::byte_buffer::{ByteBuffer, POS_BITS};
use crate::tlp_mux::TxArbiter;
use crate::tlp_skid::TlpSkid;
use cpl_sink::CplSink;
use desc_fetch::DescFetch;
use read::ReadEngine;
use regs::DmaRegs;
use rust_hdl::prelude::*;
use write::WriteEngine;
use crate::virtq::engine::VirtqEngine;

#[derive(LogicBlock, smart_default::SmartDefault)]
pub struct DmaEngine {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    // BAR0 registers from offset 0x1000 (DW index from the endpoint)
    pub bar: RegBusTarget,
    // completions from the host
    pub cpl: TlpSink,
    // requests to the host
    pub tx: TlpSource,
    // from configuration space
    pub requester_id: Signal<In, Bits<16>>,
    pub bus_master: Signal<In, Bit>,
    pub max_payload: Signal<In, Bits<3>>,
    pub max_read_req: Signal<In, Bits<3>>,
    /// One-cycle pulse: raise the MSI.
    pub irq: Signal<Out, Bit>,
    // frames to the network (TX queues); sideband valid with every beat of
    // the frame (the first is the one that counts)
    pub ntx_data: Signal<Out, Bits<64>>,
    /// Valid bytes in the beat, 1..8 (only the last beat may be partial).
    pub ntx_bytes: Signal<Out, Bits<4>>,
    pub ntx_last: Signal<Out, Bit>,
    pub ntx_valid: Signal<Out, Bit>,
    pub ntx_ready: Signal<In, Bit>,
    pub ntx_tenant: Signal<Out, Bits<4>>,
    pub ntx_len: Signal<Out, Bits<14>>,
    // frames from the network (RX queues); sideband read on the first beat
    pub nrx_data: Signal<In, Bits<64>>,
    pub nrx_bytes: Signal<In, Bits<4>>,
    pub nrx_last: Signal<In, Bit>,
    pub nrx_valid: Signal<In, Bit>,
    pub nrx_ready: Signal<Out, Bit>,
    pub nrx_queue: Signal<In, Bits<2>>,
    pub nrx_tenant: Signal<In, Bits<4>>,
    /// Frame length in bytes (the decapsulation block is store-and-forward).
    pub nrx_len: Signal<In, Bits<14>>,

    regs: DmaRegs,
    virtq: VirtqEngine,
    front: DescFetch,
    reader: ReadEngine,
    sink: CplSink,
    back: WriteEngine,
    xbuf: ByteBuffer,
    /// Descriptor reads (a) and data reads (b).
    rd_arb: TxArbiter,
    /// Reads (a) and writes (b).
    tx_arb: TxArbiter,
    /// Register slices: between the back end and the read/write arbiter
    /// (the back end's ready, which moves its buffer read address, comes
    /// from a flop instead of through both arbiters), and on the link (the
    /// link's ready does not run into the arbiters). One cycle each.
    back_skid: TlpSkid,
    link_skid: TlpSkid,
    /// The transfer buffer's write port, registered (timing: the choice
    /// between the completion sink and a frame, and their own byte-mask
    /// logic, are not in front of the block RAMs). A write lands a cycle
    /// later; nothing reads a position that soon after it is written (the
    /// back end learns of filled bytes through the read engine's registered
    /// fill mark and waits for its staged geometry; frames pass through a
    /// job hand-off first).
    bw_en: DFF<Bit>,
    bw_pos: DFF<Bits<POS_BITS>>,
    bw_data: DFF<Bits<64>>,
    bw_mask: DFF<Bits<8>>,
    /// The completion sink's event (an unexpected completion) as a counter bit.
    sink_events: Signal<Local, Bits<{ regs::NUM_EVENTS }>>,
    #[default(crate::konst(1 << regs::EV_UNEXPECTED_CPL))]
    k_ev_unexpected: Constant<Bits<{ regs::NUM_EVENTS }>>,
}

impl Logic for DmaEngine {
    #[hdl_gen]
    fn update(&mut self) {
        clock!(self, clock, regs, virtq, front, reader, sink, back, xbuf, rd_arb, tx_arb, back_skid, link_skid);
        dff_setup!(self, clock, bw_en, bw_pos, bw_data, bw_mask);
        self.regs.reset.next = self.reset.val();
        self.virtq.reset.next = self.reset.val();
        self.front.reset.next = self.reset.val();
        self.reader.reset.next = self.reset.val();
        self.sink.reset.next = self.reset.val();
        self.back.reset.next = self.reset.val();
        self.rd_arb.reset.next = self.reset.val();
        self.tx_arb.reset.next = self.reset.val();
        self.back_skid.reset.next = self.reset.val();
        self.link_skid.reset.next = self.reset.val();

        // ---- registers ----
        self.regs.reg_addr.next = self.bar.addr.val();
        self.regs.reg_wr_en.next = self.bar.wr_en.val();
        self.regs.reg_wr_data.next = self.bar.wr_data.val();
        self.regs.reg_wr_mask.next = self.bar.wr_mask.val();
        self.virtq.reg_addr.next = self.bar.addr.val();
        self.virtq.reg_wr_en.next = self.bar.wr_en.val();
        self.virtq.reg_wr_data.next = self.bar.wr_data.val();
        self.virtq.reg_wr_mask.next = self.bar.wr_mask.val();
        self.bar.rd_data.next = self.regs.reg_rd_data.val() | self.virtq.reg_rd_data.val();
        self.sink_events.next = 0.into();
        if self.sink.unexpected.val() {
            self.sink_events.next = self.k_ev_unexpected.val();
        }
        self.regs.events.next = self.front.events.val() | self.back.events.val() | self.sink_events.val();
        self.regs.record_written.next = self.back.record_written.val();
        self.regs.overflow_set.next = self.back.overflow_set.val();
        self.regs.flush_done.next = self.back.flush_done.val();
        self.regs.engine_busy.next = !self.front.idle.val() | self.back.busy.val();
        self.regs.fq.next = self.front.fq.val();
        self.regs.bq.next = self.back.bq.val();
        self.regs.head_inc.next = self.back.head_inc.val();

        // ---- front end ----
        self.front.fq_ring_base.next = self.regs.fq_ring_base.val();
        self.front.fq_head.next = self.regs.fq_head.val();
        self.front.fq_tail.next = self.regs.fq_tail.val();
        self.front.fq_mask.next = self.regs.fq_mask.val();
        self.front.fq_mode.next = self.regs.fq_mode.val();
        self.front.fq_active.next = self.regs.fq_active.val();
        self.front.head_inc.next = self.back.head_inc.val();
        self.front.head_inc_q.next = self.back.bq.val();
        self.front.requester_id.next = self.requester_id.val();
        self.front.bus_master.next = self.bus_master.val();
        self.front.desc_we0.next = self.sink.desc_we0.val();
        self.front.desc_idx0.next = self.sink.desc_idx0.val();
        self.front.desc_we1.next = self.sink.desc_we1.val();
        self.front.desc_idx1.next = self.sink.desc_idx1.val();
        self.front.desc_data.next = self.sink.desc_data.val();
        self.front.desc_retire.next = self.sink.retire_valid.val() & self.sink.retire_desc.val();
        self.front.desc_ok.next = self.sink.retire_ok.val();
        self.front.nrx_data.next = self.nrx_data.val();
        self.front.nrx_bytes.next = self.nrx_bytes.val();
        self.front.nrx_last.next = self.nrx_last.val();
        self.front.nrx_valid.next = self.nrx_valid.val();
        self.nrx_ready.next = self.front.nrx_ready.val();
        self.front.nrx_queue.next = self.nrx_queue.val();
        self.front.nrx_tenant.next = self.nrx_tenant.val();
        self.front.nrx_len.next = self.nrx_len.val();
        self.front.sink_writing.next = self.sink.buf_wr_en.val();
        self.front.rj_ready.next = self.reader.job_ready.val();
        self.front.bj_take.next = self.back.bj_take.val();
        self.front.free_pos.next = self.back.free_pos.val();
        self.front.vr_valid.next = self.virtq.vr_valid.val();
        self.virtq.vr_ready.next = self.front.vr_ready.val();
        self.front.vr_addr.next = self.virtq.vr_addr.val();
        self.front.vr_qws.next = self.virtq.vr_qws.val();
        self.virtq.vrsp_valid.next = self.front.vrsp_valid.val();
        self.virtq.vrsp_data.next = self.front.vrsp_data.val();
        self.virtq.vrsp_err.next = self.front.vrsp_err.val();
        self.front.vj_valid.next = self.virtq.vj_valid.val();
        self.virtq.vj_ready.next = self.front.vj_ready.val();
        self.front.vj_addr.next = self.virtq.vj_addr.val();
        self.front.vj_len.next = self.virtq.vj_len.val();
        self.front.vj_last.next = self.virtq.vj_last.val();
        self.front.vj_frame_len.next = self.virtq.vj_frame_len.val();
        self.front.vj_tenant.next = self.virtq.vj_tenant.val();
        self.virtq.lk_tenant.next = self.nrx_tenant.val();
        self.front.vx_match.next = self.virtq.lk_match.val();
        self.front.vx_valid.next = self.virtq.lk_valid.val();
        self.front.vx_q.next = self.virtq.lk_q.val();
        self.front.vx_addr.next = self.virtq.lk_addr.val();
        self.front.vx_len.next = self.virtq.lk_len.val();
        self.virtq.take.next = self.front.vx_take.val();
        self.virtq.take_bytes.next = self.front.vx_take_bytes.val();
        self.virtq.rx_drop.next = self.front.vx_drop.val();

        // ---- read engine and completion sink ----
        self.reader.job_valid.next = self.front.rj_valid.val();
        self.reader.job_src.next = self.front.rj_src.val();
        self.reader.job_len.next = self.front.rj_len.val();
        self.reader.job_pos0.next = self.front.rj_pos0.val();
        self.reader.job_id.next = self.front.rj_id.val();
        self.reader.requester_id.next = self.requester_id.val();
        self.reader.max_read_req.next = self.max_read_req.val();
        self.reader.retire_valid.next = self.sink.retire_valid.val() & !self.sink.retire_desc.val();
        self.reader.retire_tag.next = self.sink.retire_tag.val();
        self.reader.retire_ok.next = self.sink.retire_ok.val();
        self.reader.lookup_tag.next = self.sink.lookup_tag.val();
        self.reader.err_clear.next = self.back.err_clear.val();
        self.reader.err_clear_id.next = self.back.err_clear_id.val();
        self.sink.cpl_data.next = self.cpl.data.val();
        self.sink.cpl_keep.next = self.cpl.keep.val();
        self.sink.cpl_sop.next = self.cpl.sop.val();
        self.sink.cpl_eop.next = self.cpl.eop.val();
        self.sink.cpl_valid.next = self.cpl.valid.val();
        self.cpl.ready.next = self.sink.cpl_ready.val();
        self.sink.lookup_start.next = self.reader.lookup_start.val();
        self.sink.lookup_end.next = self.reader.lookup_end.val();
        self.sink.lookup_busy.next = self.reader.lookup_busy.val();
        self.sink.desc_active.next = self.front.desc_active.val();

        // ---- back end ----
        self.back.bj_valid.next = self.front.bj_valid.val();
        self.back.bj_q.next = self.front.bj_q.val();
        self.back.bj_mode.next = self.front.bj_mode.val();
        self.back.bj_status.next = self.front.bj_status.val();
        self.back.bj_cookie.next = self.front.bj_cookie.val();
        self.back.bj_bytes.next = self.front.bj_bytes.val();
        self.back.bj_tenant.next = self.front.bj_tenant.val();
        self.back.bj_dst.next = self.front.bj_dst.val();
        self.back.bj_pos0.next = self.front.bj_pos0.val();
        self.back.bj_end.next = self.front.bj_end.val();
        self.back.bj_local.next = self.front.bj_local.val();
        self.back.bj_id.next = self.front.bj_id.val();
        self.back.bj_vq.next = self.front.bj_vq.val();
        self.back.bj_vq_q.next = self.front.bj_vq_q.val();
        self.virtq.vq_sent.next = self.back.vq_sent.val();
        self.virtq.vq_failed.next = self.back.vq_failed.val();
        self.virtq.rx_done.next = self.back.vq_rx_done.val();
        self.virtq.rx_failed.next = self.back.vq_failed.val();
        self.back.vw_valid.next = self.virtq.vw_valid.val();
        self.virtq.vw_ready.next = self.back.vw_ready.val();
        self.back.vw_addr.next = self.virtq.vw_addr.val();
        self.back.vw_data.next = self.virtq.vw_data.val();
        self.back.vw_bytes.next = self.virtq.vw_bytes.val();
        self.back.vw_q.next = self.virtq.vw_q.val();
        // Nothing of the back end's waits in its output slice.
        self.back.tx_drained.next = !self.back_skid.tx.valid.val();
        self.back.front_idle.next = self.front.idle.val() & self.reader.idle.val();
        self.back.filled_pos.next = self.reader.filled_pos.val();
        self.back.read_err.next = self.reader.err.val();
        self.back.bq_cpl_base.next = self.regs.bq_cpl_base.val();
        self.back.bq_head.next = self.regs.bq_head.val();
        self.back.wrec_base.next = self.regs.wrec_base.val();
        self.back.wrec_log2.next = self.regs.wrec_log2.val();
        self.back.wrec_prod.next = self.regs.wrec_prod.val();
        self.back.wrec_cons.next = self.regs.wrec_cons.val();
        self.back.wrec_timeout.next = self.regs.wrec_timeout.val();
        self.back.wb_addr.next = self.regs.wb_addr.val();
        self.back.irq_coalesce.next = self.regs.irq_coalesce.val();
        self.back.overflow.next = self.regs.overflow.val();
        self.back.flush_pending.next = self.regs.flush_pending.val();
        self.back.requester_id.next = self.requester_id.val();
        self.back.bus_master.next = self.bus_master.val();
        self.back.max_payload.next = self.max_payload.val();
        self.back.buf_rd_data.next = self.xbuf.rd_data.val();
        self.back.ntx_ready.next = self.ntx_ready.val();
        self.ntx_data.next = self.back.ntx_data.val();
        self.ntx_bytes.next = self.back.ntx_bytes.val();
        self.ntx_last.next = self.back.ntx_last.val();
        self.ntx_valid.next = self.back.ntx_valid.val();
        self.ntx_tenant.next = self.back.ntx_tenant.val();
        self.ntx_len.next = self.back.ntx_len.val();
        self.irq.next = self.back.irq.val() | self.virtq.irq.val();

        // ---- the transfer buffer: the sink writes first, frames when it does not ----
        self.bw_en.d.next = self.sink.buf_wr_en.val() | self.front.buf_wr_en.val();
        self.bw_pos.d.next = self.front.buf_wr_pos.val();
        self.bw_data.d.next = self.front.buf_wr_data.val();
        self.bw_mask.d.next = self.front.buf_wr_mask.val();
        if self.sink.buf_wr_en.val() {
            self.bw_pos.d.next = self.sink.buf_wr_pos.val();
            self.bw_data.d.next = self.sink.buf_wr_data.val();
            self.bw_mask.d.next = self.sink.buf_wr_mask.val();
        }
        if self.reset.val() {
            self.bw_en.d.next = false;
        }
        self.xbuf.wr_en.next = self.bw_en.q.val();
        self.xbuf.wr_pos.next = self.bw_pos.q.val();
        self.xbuf.wr_data.next = self.bw_data.q.val();
        self.xbuf.wr_mask.next = self.bw_mask.q.val();
        self.xbuf.rd_pos.next = self.back.buf_rd_pos.val();

        // ---- requests to the host ----
        self.rd_arb.a.data.next = self.front.tx_data.val();
        self.rd_arb.a.keep.next = self.front.tx_keep.val();
        self.rd_arb.a.sop.next = self.front.tx_sop.val();
        self.rd_arb.a.eop.next = self.front.tx_eop.val();
        self.rd_arb.a.valid.next = self.front.tx_valid.val();
        self.front.tx_ready.next = self.rd_arb.a.ready.val();
        self.rd_arb.b.data.next = self.reader.tx_data.val();
        self.rd_arb.b.keep.next = self.reader.tx_keep.val();
        self.rd_arb.b.sop.next = self.reader.tx_sop.val();
        self.rd_arb.b.eop.next = self.reader.tx_eop.val();
        self.rd_arb.b.valid.next = self.reader.tx_valid.val();
        self.reader.tx_ready.next = self.rd_arb.b.ready.val();
        TlpSource::join(&mut self.rd_arb.out, &mut self.tx_arb.a);
        self.back_skid.rx.data.next = self.back.tx_data.val();
        self.back_skid.rx.keep.next = self.back.tx_keep.val();
        self.back_skid.rx.sop.next = self.back.tx_sop.val();
        self.back_skid.rx.eop.next = self.back.tx_eop.val();
        self.back_skid.rx.valid.next = self.back.tx_valid.val();
        self.back.tx_ready.next = self.back_skid.rx.ready.val();
        TlpSource::join(&mut self.back_skid.tx, &mut self.tx_arb.b);
        TlpSource::join(&mut self.tx_arb.out, &mut self.link_skid.rx);
        self.tx.data.next = self.link_skid.tx.data.val();
        self.tx.keep.next = self.link_skid.tx.keep.val();
        self.tx.sop.next = self.link_skid.tx.sop.val();
        self.tx.eop.next = self.link_skid.tx.eop.val();
        self.tx.valid.next = self.link_skid.tx.valid.val();
        self.link_skid.tx.ready.next = self.tx.ready.val();
    }
}
