//! Read engine: turns a read job (source IOVA, length, where byte 0 goes in
//! the transfer buffer) into Memory Read requests split at Max Read Request
//! Size boundaries, up to 16 outstanding, and tells the back end how far the
//! buffer is filled.
//!
//! Chunks are numbered in issue order (`issue_seq`, across jobs); a chunk's
//! tag is its number mod 16. For each tag a small table keeps where its data
//! goes in the buffer (start and end position) and which job it belongs to;
//! the completion sink looks up the tag of each arriving completion there
//! (`lookup_*`) instead of working the position out from the tag. When the
//! oldest chunk is retired (its last completion arrived), `filled_pos`
//! advances to its end: everything before it is in the buffer, so the back
//! end can start writing a TLP as soon as its bytes are there (cut-through),
//! while this engine already reads the next job.
//!
//! A completion with an error status marks the chunk's job (`err`); the
//! engine issues no more reads for that job, but still moves `filled_pos`
//! past it (a chunk with no request, already retired) so the back end sees
//! the whole job accounted for.
//!
//! Positions are 20-bit "virtual" buffer positions (the buffer uses the low
//! 17 bits); the extra bits let the back end compare positions across the
//! buffer's wrap.

use crate::konst;
use rust_hdl::prelude::*;
use smart_default::SmartDefault;

/// Virtual buffer position width.
pub const VPOS_BITS: usize = 20;
/// Tags for data reads: 0..DATA_TAGS-1 (the descriptor fetch uses another).
pub const DATA_TAGS: usize = 16;

#[derive(Copy, Clone, PartialEq, Debug, LogicState)]
pub enum ReadState {
    Idle,
    /// The job's constants (chunk mask, start offset, end) into registers.
    Prep,
    Issue,
    Hdr0,
    Hdr1,
}

#[derive(LogicBlock, SmartDefault)]
pub struct ReadEngine {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    // ---- jobs (taken when `job_ready`) ----
    pub job_valid: Signal<In, Bit>,
    pub job_ready: Signal<Out, Bit>,
    pub job_src: Signal<In, Bits<64>>,
    /// 1 to 64 KiB.
    pub job_len: Signal<In, Bits<18>>,
    /// Buffer position of the job's byte 0.
    pub job_pos0: Signal<In, Bits<VPOS_BITS>>,
    /// Jobs are numbered mod 4 (at most three are in flight: written,
    /// waiting, read), so a read error belongs to exactly one.
    pub job_id: Signal<In, Bits<2>>,
    // ---- configuration ----
    pub requester_id: Signal<In, Bits<16>>,
    pub max_read_req: Signal<In, Bits<3>>,
    // ---- requests to the host ----
    pub tx_data: Signal<Out, Bits<64>>,
    pub tx_keep: Signal<Out, Bits<2>>,
    pub tx_sop: Signal<Out, Bit>,
    pub tx_eop: Signal<Out, Bit>,
    pub tx_valid: Signal<Out, Bit>,
    pub tx_ready: Signal<In, Bit>,
    // ---- the completion sink ----
    /// A tag's last completion arrived (`retire_ok`: without error).
    pub retire_valid: Signal<In, Bit>,
    pub retire_tag: Signal<In, Bits<4>>,
    pub retire_ok: Signal<In, Bit>,
    /// Where the data of `lookup_tag` goes, and whether the tag is in flight.
    pub lookup_tag: Signal<In, Bits<4>>,
    pub lookup_start: Signal<Out, Bits<VPOS_BITS>>,
    pub lookup_end: Signal<Out, Bits<VPOS_BITS>>,
    pub lookup_busy: Signal<Out, Bit>,
    // ---- the back end ----
    /// Every byte before this position is in the buffer (of read jobs).
    pub filled_pos: Signal<Out, Bits<VPOS_BITS>>,
    /// Job id `i` had a read error (bit i), until cleared.
    pub err: Signal<Out, Bits<4>>,
    pub err_clear: Signal<In, Bit>,
    pub err_clear_id: Signal<In, Bits<2>>,
    /// No job and no read outstanding.
    pub idle: Signal<Out, Bit>,

    state: DFF<ReadState>,
    src: DFF<Bits<64>>,
    xlen: DFF<Bits<18>>,
    pos0: DFF<Bits<VPOS_BITS>>,
    id: DFF<Bits<2>>,
    l2ch: DFF<Bits<4>>,
    // ---- the job's constants, registered in `Prep` ----
    /// Chunk size - 1 (MRRS - 1).
    ch_mask: DFF<Bits<13>>,
    /// Offset of the first byte within its chunk.
    src_lo: DFF<Bits<18>>,
    /// End of the job, as an offset from its first chunk's start.
    end_total: DFF<Bits<18>>,
    /// The first chunk's address (source rounded down to MRRS).
    src_base: DFF<Bits<64>>,
    /// Start of the current chunk (a multiple of MRRS from `src_base`).
    c_start: DFF<Bits<18>>,
    // ---- the current chunk's request, registered in `Issue` ----
    r_start: DFF<Bits<18>>,
    r_end: DFF<Bits<18>>,
    r_addr: DFF<Bits<64>>,
    r_len_dw: DFF<Bits<11>>,
    r_fbe: DFF<Bits<4>>,
    r_lbe: DFF<Bits<4>>,
    r_4dw: DFF<Bit>,
    r_last: DFF<Bit>,
    issue_seq: DFF<Bits<5>>,
    done_seq: DFF<Bits<5>>,
    busy: DFF<Bits<DATA_TAGS>>,
    filled: DFF<Bits<VPOS_BITS>>,
    /// Read error seen for job id i (bit i).
    err_r: DFF<Bits<4>>,
    tt_start: [DFF<Bits<VPOS_BITS>>; DATA_TAGS],
    tt_end: [DFF<Bits<VPOS_BITS>>; DATA_TAGS],
    tt_id: [DFF<Bits<2>>; DATA_TAGS],

    // ---- geometry of the chunk at `c_start` (registered into r_* in `Issue`) ----
    i_tag: Signal<Local, Bits<4>>,
    i_start: Signal<Local, Bits<18>>,
    i_cend: Signal<Local, Bits<18>>,
    i_end: Signal<Local, Bits<18>>,
    i_addr: Signal<Local, Bits<64>>,
    i_len_dw: Signal<Local, Bits<11>>,
    i_fbe: Signal<Local, Bits<4>>,
    i_lbe: Signal<Local, Bits<4>>,
    i_4dw: Signal<Local, Bit>,
    p_mask: Signal<Local, Bits<13>>,
    p_src_lo: Signal<Local, Bits<18>>,
    hdr_dw0: Signal<Local, Bits<32>>,
    /// Chunks issued and not yet passed by the in-order retirement (5-bit wrap).
    in_flight: Signal<Local, Bits<5>>,
    in_window: Signal<Local, Bit>,
    aborted: Signal<Local, Bit>,
    set_bit: Signal<Local, Bits<DATA_TAGS>>,
    clr_bit: Signal<Local, Bits<DATA_TAGS>>,
    done_tag: Signal<Local, Bits<4>>,
    advance_done: Signal<Local, Bit>,
    #[default(konst(1))]
    c_one13: Constant<Bits<13>>,
    #[default(konst(1))]
    c_one16: Constant<Bits<DATA_TAGS>>,
    #[default(konst(1))]
    c_one4: Constant<Bits<4>>,
    err_next: Signal<Local, Bits<4>>,
    retire_id: Signal<Local, Bits<2>>,
}

impl Logic for ReadEngine {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clock, state, src, xlen, pos0, id, l2ch, ch_mask, src_lo, end_total, src_base, c_start, r_start, r_end,
            r_addr, r_len_dw, r_fbe, r_lbe, r_4dw, r_last, issue_seq, done_seq, busy, filled, err_r
        );
        for t in 0..DATA_TAGS {
            self.tt_start[t].clock.next = self.clock.val();
            self.tt_start[t].d.next = self.tt_start[t].q.val();
            self.tt_end[t].clock.next = self.clock.val();
            self.tt_end[t].d.next = self.tt_end[t].q.val();
            self.tt_id[t].clock.next = self.clock.val();
            self.tt_id[t].d.next = self.tt_id[t].q.val();
        }

        // ---- geometry (as docs/dma.md: chunks at MRRS-aligned addresses) ----
        // Two register stages keep the adders short: the job's constants
        // once per job (`Prep`), then the next chunk's request while waiting
        // for a tag (`Issue`); chunk starts step by the chunk size, no shifts.
        self.p_mask.next = (self.c_one13.val() << self.l2ch.q.val()) - 1;
        self.p_src_lo.next = bit_cast::<18, 13>(self.src.q.val().get_bits::<13>(0) & self.p_mask.val());
        self.i_tag.next = self.issue_seq.q.val().get_bits::<4>(0);
        self.i_start.next = self.c_start.q.val();
        if self.c_start.q.val() < self.src_lo.q.val() {
            self.i_start.next = self.src_lo.q.val();
        }
        self.i_cend.next = self.c_start.q.val() + bit_cast::<18, 13>(self.ch_mask.q.val()) + 1;
        self.i_end.next = self.i_cend.val();
        if self.end_total.q.val() < self.i_cend.val() {
            self.i_end.next = self.end_total.q.val();
        }
        self.i_addr.next = self.src_base.q.val() + bit_cast::<64, 18>(self.i_start.val());
        self.i_len_dw.next =
            bit_cast::<11, 18>((self.i_end.val() + 3) >> 2) - bit_cast::<11, 18>(self.i_start.val() >> 2);
        self.i_fbe.next = (bit_cast::<4, 4>(15.into()) << self.i_start.val().get_bits::<2>(0)) & 15;
        self.i_lbe.next = 15.into();
        if self.i_end.val().get_bits::<2>(0) == 1 {
            self.i_lbe.next = 1.into();
        } else if self.i_end.val().get_bits::<2>(0) == 2 {
            self.i_lbe.next = 3.into();
        } else if self.i_end.val().get_bits::<2>(0) == 3 {
            self.i_lbe.next = 7.into();
        }
        if self.i_len_dw.val() == 1 {
            self.i_fbe.next = self.i_fbe.val() & self.i_lbe.val();
            self.i_lbe.next = 0.into();
        }
        self.i_4dw.next = self.i_addr.val().get_bits::<32>(32).any();
        // Fewer than 16 chunks between the oldest unretired and the next: the
        // tag (number mod 16) is free and the sink's lookups are unambiguous.
        self.in_flight.next = self.issue_seq.q.val() - self.done_seq.q.val();
        self.in_window.next = self.in_flight.val() < 16;
        self.aborted.next = self.err_r.q.val().get_bit(self.id.q.val().index());

        // ---- the sink's view ----
        self.lookup_start.next = 0.into();
        self.lookup_end.next = 0.into();
        for t in 0..DATA_TAGS {
            if self.lookup_tag.val().index() == t {
                self.lookup_start.next = self.tt_start[t].q.val();
                self.lookup_end.next = self.tt_end[t].q.val();
            }
        }
        self.lookup_busy.next = self.busy.q.val().get_bit(self.lookup_tag.val().index());

        // ---- in-order retirement: the buffer is filled up to the oldest chunk's end ----
        self.done_tag.next = self.done_seq.q.val().get_bits::<4>(0);
        self.advance_done.next =
            (self.done_seq.q.val() != self.issue_seq.q.val()) & !self.busy.q.val().get_bit(self.done_tag.val().index());
        if self.advance_done.val() {
            for t in 0..DATA_TAGS {
                if self.done_tag.val().index() == t {
                    self.filled.d.next = self.tt_end[t].q.val();
                }
            }
            self.done_seq.d.next = self.done_seq.q.val() + 1;
        }

        // ---- requests ----
        self.tx_valid.next = false;
        self.tx_sop.next = false;
        self.tx_eop.next = false;
        self.tx_keep.next = 3.into();
        self.tx_data.next = 0.into();
        self.job_ready.next = false;
        self.set_bit.next = 0.into();
        self.hdr_dw0.next = bit_cast::<32, 10>(self.r_len_dw.q.val().get_bits::<10>(0));
        if self.r_4dw.q.val() {
            self.hdr_dw0.next = 0x2000_0000_u64 | bit_cast::<32, 10>(self.r_len_dw.q.val().get_bits::<10>(0));
        }
        match self.state.q.val() {
            ReadState::Idle => {
                self.job_ready.next = true;
                if self.job_valid.val() {
                    self.src.d.next = self.job_src.val();
                    self.xlen.d.next = self.job_len.val();
                    self.pos0.d.next = self.job_pos0.val();
                    self.id.d.next = self.job_id.val();
                    self.c_start.d.next = 0.into();
                    // Max_Read_Request_Size 128 << n (n <= 5).
                    self.l2ch.d.next = bit_cast::<4, 3>(self.max_read_req.val()) + 7;
                    if self.max_read_req.val() > 5 {
                        self.l2ch.d.next = 12.into();
                    }
                    // Nothing in flight: whatever lies before this job is done.
                    if self.done_seq.q.val() == self.issue_seq.q.val() {
                        self.filled.d.next = self.job_pos0.val();
                    }
                    self.state.d.next = ReadState::Prep;
                }
            }
            ReadState::Prep => {
                self.ch_mask.d.next = self.p_mask.val();
                self.src_lo.d.next = self.p_src_lo.val();
                self.end_total.d.next = self.p_src_lo.val() + self.xlen.q.val();
                self.src_base.d.next = self.src.q.val() & !bit_cast::<64, 13>(self.p_mask.val());
                self.state.d.next = ReadState::Issue;
            }
            ReadState::Issue => {
                self.r_start.d.next = self.i_start.val();
                self.r_end.d.next = self.i_end.val();
                self.r_addr.d.next = self.i_addr.val();
                self.r_len_dw.d.next = self.i_len_dw.val();
                self.r_fbe.d.next = self.i_fbe.val();
                self.r_lbe.d.next = self.i_lbe.val();
                self.r_4dw.d.next = self.i_4dw.val();
                self.r_last.d.next = self.end_total.q.val() <= self.i_cend.val();
                if self.in_window.val() & self.aborted.val() {
                    // The job failed: one chunk with no request stands for
                    // the rest of it, already retired.
                    for t in 0..DATA_TAGS {
                        if self.i_tag.val().index() == t {
                            self.tt_start[t].d.next = self.pos0.q.val();
                            self.tt_end[t].d.next = self.pos0.q.val() + bit_cast::<VPOS_BITS, 18>(self.xlen.q.val());
                            self.tt_id[t].d.next = self.id.q.val();
                        }
                    }
                    self.issue_seq.d.next = self.issue_seq.q.val() + 1;
                    self.state.d.next = ReadState::Idle;
                } else if self.in_window.val() {
                    self.state.d.next = ReadState::Hdr0;
                }
            }
            ReadState::Hdr0 => {
                self.tx_valid.next = true;
                self.tx_sop.next = true;
                self.tx_data.next = (bit_cast::<64, 32>(
                    (bit_cast::<32, 16>(self.requester_id.val()) << 16)
                        | (bit_cast::<32, 4>(self.i_tag.val()) << 8)
                        | (bit_cast::<32, 4>(self.r_lbe.q.val()) << 4)
                        | bit_cast::<32, 4>(self.r_fbe.q.val()),
                ) << 32)
                    | bit_cast::<64, 32>(self.hdr_dw0.val());
                if self.tx_ready.val() {
                    for t in 0..DATA_TAGS {
                        if self.i_tag.val().index() == t {
                            self.tt_start[t].d.next = self.pos0.q.val()
                                + bit_cast::<VPOS_BITS, 18>(self.r_start.q.val() - self.src_lo.q.val());
                            self.tt_end[t].d.next =
                                self.pos0.q.val() + bit_cast::<VPOS_BITS, 18>(self.r_end.q.val() - self.src_lo.q.val());
                            self.tt_id[t].d.next = self.id.q.val();
                        }
                    }
                    self.set_bit.next = self.c_one16.val() << self.i_tag.val();
                    self.state.d.next = ReadState::Hdr1;
                }
            }
            ReadState::Hdr1 => {
                self.tx_valid.next = true;
                self.tx_eop.next = true;
                if self.r_4dw.q.val() {
                    self.tx_data.next = (bit_cast::<64, 32>(self.r_addr.q.val().get_bits::<32>(0) & 0xFFFF_FFFC_u64) << 32)
                        | bit_cast::<64, 32>(self.r_addr.q.val().get_bits::<32>(32));
                } else {
                    self.tx_keep.next = 1.into();
                    self.tx_data.next = bit_cast::<64, 32>(self.r_addr.q.val().get_bits::<32>(0) & 0xFFFF_FFFC_u64);
                }
                if self.tx_ready.val() {
                    self.issue_seq.d.next = self.issue_seq.q.val() + 1;
                    self.c_start.d.next = self.c_start.q.val() + bit_cast::<18, 13>(self.ch_mask.q.val()) + 1;
                    if self.r_last.q.val() {
                        self.state.d.next = ReadState::Idle;
                    } else {
                        self.state.d.next = ReadState::Issue;
                    }
                }
            }
            _ => {
                self.state.d.next = ReadState::Idle;
            }
        }

        // ---- tags in flight, errors by job ----
        self.clr_bit.next = 0.into();
        if self.retire_valid.val() {
            self.clr_bit.next = self.c_one16.val() << self.retire_tag.val();
        }
        self.busy.d.next = (self.busy.q.val() | self.set_bit.val()) & !self.clr_bit.val();
        self.err_next.next = self.err_r.q.val();
        if self.err_clear.val() {
            self.err_next.next = self.err_r.q.val() & !(self.c_one4.val() << self.err_clear_id.val());
        }
        self.retire_id.next = 0.into();
        for t in 0..DATA_TAGS {
            if self.retire_tag.val().index() == t {
                self.retire_id.next = self.tt_id[t].q.val();
            }
        }
        if self.retire_valid.val() & !self.retire_ok.val() {
            self.err_next.next = self.err_next.val() | (self.c_one4.val() << self.retire_id.val());
        }
        self.err_r.d.next = self.err_next.val();
        self.filled_pos.next = self.filled.q.val();
        self.err.next = self.err_r.q.val();
        self.idle.next = (self.state.q.val() == ReadState::Idle) & (self.done_seq.q.val() == self.issue_seq.q.val());
        if self.reset.val() {
            self.state.d.next = ReadState::Idle;
            self.issue_seq.d.next = 0.into();
            self.done_seq.d.next = 0.into();
            self.busy.d.next = 0.into();
            self.filled.d.next = 0.into();
            self.err_r.d.next = 0.into();
        }
    }
}
