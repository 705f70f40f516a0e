//! PCIe transaction-layer endpoint: receives request TLPs on the 64-bit RX
//! stream, serves BAR0 (register file plus the `ext_*` port for the blocks
//! that sit behind it) and configuration space, answers every non-posted
//! request with exactly one completion, and sends the MSI memory write.
//!
//! Stream format (see docs/tlp.md): each beat carries two DWs, the earlier in
//! bits [31:0]; header DWs are the Base Specification's big-endian DWs as
//! 32-bit numbers (Fmt in bits [31:29] of DW0), payload DWs hold the byte at
//! the lowest address in bits [7:0]. `keep` marks valid DWs (only the last
//! beat may be partial), `sop`/`eop` frame a TLP.
//!
//! Processing is one TLP at a time: receive (headers plus up to two data DWs
//! kept, every DW counted), decode, execute, answer. BAR0 accesses are one or
//! two DWs (32- or 64-bit); everything the card does not support gets an
//! Unsupported Request completion if it is non-posted, or is dropped and
//! counted if it is posted. A new SOP in the middle of a TLP ends the old one
//! as truncated (it is still answered if it was a non-posted request whose
//! requester ID and tag arrived), so no framing error can wedge the receiver.

use crate::bus::{RegBusController, TlpSink, TlpSource};
use crate::config_space::ConfigSpace;
use crate::regfile::Bar0RegFile;
use crate::regmap::tlp;
use crate::konst;
use rust_hdl::prelude::*;
use smart_default::SmartDefault;

#[derive(Copy, Clone, PartialEq, Debug, LogicState)]
pub enum EpState {
    Idle,
    Recv,
    Decode,
    Dispatch,
    ReadReg0,
    ReadReg1,
    WriteReg0,
    WriteReg1,
    CfgRead,
    CfgWrite,
    Cpl0,
    Cpl1,
    Cpl2,
    Msi0,
    Msi1,
    Msi2,
}

/// First DW index of BAR0 served through the `ext_*` port (offset 0x1000).
pub const EXT_FIRST_DW: u64 = 0x400;

#[derive(LogicBlock, SmartDefault)]
pub struct TlpEndpoint {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    // ---- RX: TLPs from the host (root complex) ----
    pub rx: TlpSink,
    // ---- TX: TLPs to the host ----
    pub tx: TlpSource,
    // ---- BAR0 region from offset 0x1000, served by other blocks ----
    pub ext: RegBusController,
    // ---- configuration state other blocks need ----
    pub completer_id: Signal<Out, Bits<16>>,
    pub bus_master: Signal<Out, Bit>,
    pub max_payload: Signal<Out, Bits<3>>,
    pub max_read_req: Signal<Out, Bits<3>>,
    /// Raise the MSI on behalf of another block.
    pub irq_request: Signal<In, Bit>,

    cfg: ConfigSpace,
    regs: Bar0RegFile,
    state: DFF<EpState>,
    dw0: DFF<Bits<32>>,
    dw1: DFF<Bits<32>>,
    dw2: DFF<Bits<32>>,
    dw3: DFF<Bits<32>>,
    dw4: DFF<Bits<32>>,
    dw5: DFF<Bits<32>>,
    beat: DFF<Bits<2>>,
    dwcount: DFF<Bits<12>>,
    truncated: DFF<Bit>,
    rdata0: DFF<Bits<32>>,
    rdata1: DFF<Bits<32>>,
    // ---- the decoded request, registered in `Decode` (one cycle after the
    // last beat) so that the dispatch, the register port and the completion
    // start from flops rather than from the header decode ----
    q_known: DFF<Bit>,
    q_len_ok: DFF<Bit>,
    q_ep: DFF<Bit>,
    q_is_msg: DFF<Bit>,
    q_is_mrd: DFF<Bit>,
    q_is_mwr: DFF<Bit>,
    q_wd: DFF<Bit>,
    q_two: DFF<Bit>,
    q_non_posted: DFF<Bit>,
    q_answerable: DFF<Bit>,
    q_mem_ok: DFF<Bit>,
    q_cfg_ok: DFF<Bit>,
    q_req_ok: DFF<Bit>,
    q_cpl_data: DFF<Bit>,
    q_cpl_len2: DFF<Bit>,
    q_cpl_dw0: DFF<Bits<32>>,
    q_cpl_dw1: DFF<Bits<32>>,
    q_cpl_dw2: DFF<Bits<32>>,
    // ---- the register port, driven from flops: DW index, whether it is
    // behind `ext_*`, write data and byte mask of the DW being accessed ----
    acc_dw: DFF<Bits<14>>,
    acc_ext: DFF<Bit>,
    acc_wdata: DFF<Bits<32>>,
    acc_wmask: DFF<Bits<32>>,
    /// Second half of the 64-bit access (data1 and the last-DW byte mask).
    acc_wdata1: DFF<Bits<32>>,
    acc_wmask1: DFF<Bits<32>>,
    /// BAR0 reads take three cycles: the address goes out from a flop, a
    /// block may register a first stage of its read multiplexer (the
    /// tagged cache does), and the read data comes back through a flop (in
    /// the card's `Bar0Split` for the blocks on the `ext` bus, `regs_rd`
    /// here for the register file).
    rd_wait: DFF<Bits<2>>,
    regs_rd: DFF<Bits<32>>,

    // ---- decode of the held TLP (combinational) ----
    keep_count: Signal<Local, Bits<12>>,
    fmt: Signal<Local, Bits<3>>,
    typ: Signal<Local, Bits<5>>,
    td: Signal<Local, Bit>,
    ep: Signal<Local, Bit>,
    len: Signal<Local, Bits<10>>,
    len_dw: Signal<Local, Bits<12>>,
    fbe: Signal<Local, Bits<4>>,
    lbe: Signal<Local, Bits<4>>,
    is4: Signal<Local, Bit>,
    wd: Signal<Local, Bit>,
    addr_lo: Signal<Local, Bits<32>>,
    addr_hi: Signal<Local, Bits<32>>,
    data0: Signal<Local, Bits<32>>,
    data1: Signal<Local, Bits<32>>,
    expected_dw: Signal<Local, Bits<12>>,
    len_ok: Signal<Local, Bit>,
    answerable: Signal<Local, Bit>,
    is_mrd: Signal<Local, Bit>,
    is_mwr: Signal<Local, Bit>,
    is_mrdlk: Signal<Local, Bit>,
    is_io: Signal<Local, Bit>,
    is_cfg0: Signal<Local, Bit>,
    is_cfg1: Signal<Local, Bit>,
    is_msg: Signal<Local, Bit>,
    known: Signal<Local, Bit>,
    non_posted: Signal<Local, Bit>,
    dwaddr: Signal<Local, Bits<14>>,
    mem_ok: Signal<Local, Bit>,
    cfg_ok: Signal<Local, Bit>,
    req_ok: Signal<Local, Bit>,
    lead_fbe: Signal<Local, Bits<12>>,
    trail_fbe: Signal<Local, Bits<12>>,
    trail_lbe: Signal<Local, Bits<12>>,
    byte_count: Signal<Local, Bits<12>>,
    lower_addr: Signal<Local, Bits<7>>,
    cpl_data: Signal<Local, Bit>,
    cpl_len2: Signal<Local, Bit>,
    cpl_dw0: Signal<Local, Bits<32>>,
    cpl_dw1: Signal<Local, Bits<32>>,
    cpl_dw2: Signal<Local, Bits<32>>,
    mask_fbe: Signal<Local, Bits<32>>,
    mask_lbe: Signal<Local, Bits<32>>,
    access_rd: Signal<Local, Bits<32>>,
    msi_go: Signal<Local, Bit>,
    msi_4dw: Signal<Local, Bit>,
    msi_dw0: Signal<Local, Bits<32>>,
    msi_dw1: Signal<Local, Bits<32>>,
    #[default(konst(EXT_FIRST_DW))]
    ext_first: Constant<Bits<14>>,
    #[default(konst(tlp::TYPE_MEM as u64))]
    c_type_mem: Constant<Bits<5>>,
    #[default(konst(tlp::TYPE_MEM_LOCKED as u64))]
    c_type_mem_locked: Constant<Bits<5>>,
    #[default(konst(tlp::TYPE_IO as u64))]
    c_type_io: Constant<Bits<5>>,
    #[default(konst(tlp::TYPE_CFG0 as u64))]
    c_type_cfg0: Constant<Bits<5>>,
    #[default(konst(tlp::TYPE_CFG1 as u64))]
    c_type_cfg1: Constant<Bits<5>>,
    #[default(konst(tlp::TYPE_CPL as u64))]
    c_type_cpl: Constant<Bits<5>>,
    #[default(konst(tlp::TYPE_CPL_LOCKED as u64))]
    c_type_cpl_locked: Constant<Bits<5>>,
    #[default(konst(tlp::TYPE_MSG_MASK as u64))]
    c_msg_mask: Constant<Bits<5>>,
    #[default(konst(tlp::TYPE_MSG as u64))]
    c_type_msg: Constant<Bits<5>>,
    #[default(konst(tlp::CPL_UR as u64))]
    c_cpl_ur: Constant<Bits<3>>,
}

impl Logic for TlpEndpoint {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clock, state, dw0, dw1, dw2, dw3, dw4, dw5, beat, dwcount, truncated, rdata0, rdata1, q_known,
            q_len_ok, q_ep, q_is_msg, q_is_mrd, q_is_mwr, q_wd, q_two, q_non_posted, q_answerable, q_mem_ok, q_cfg_ok,
            q_req_ok, q_cpl_data, q_cpl_len2, q_cpl_dw0, q_cpl_dw1, q_cpl_dw2, acc_dw, acc_ext, acc_wdata,
            acc_wmask, acc_wdata1, acc_wmask1, rd_wait, regs_rd
        );
        clock!(self, clock, cfg, regs);
        self.cfg.reset.next = self.reset.val();
        self.regs.reset.next = self.reset.val();

        // ---- field extraction -----------------------------------------
        self.keep_count.next = bit_cast::<12, 1>(self.rx.keep.val().get_bits::<1>(0))
            + bit_cast::<12, 1>(self.rx.keep.val().get_bits::<1>(1));
        self.fmt.next = self.dw0.q.val().get_bits::<3>(29);
        self.typ.next = self.dw0.q.val().get_bits::<5>(24);
        self.td.next = self.dw0.q.val().get_bit(15);
        self.ep.next = self.dw0.q.val().get_bit(14);
        self.len.next = self.dw0.q.val().get_bits::<10>(0);
        self.len_dw.next = bit_cast::<12, 10>(self.len.val());
        if self.len.val() == 0 {
            self.len_dw.next = 1024.into();
        }
        self.fbe.next = self.dw1.q.val().get_bits::<4>(0);
        self.lbe.next = self.dw1.q.val().get_bits::<4>(4);
        self.is4.next = self.fmt.val().get_bit(0);
        self.wd.next = self.fmt.val().get_bit(1);
        if self.is4.val() {
            self.addr_lo.next = self.dw3.q.val();
            self.addr_hi.next = self.dw2.q.val();
            self.data0.next = self.dw4.q.val();
            self.data1.next = self.dw5.q.val();
        } else {
            self.addr_lo.next = self.dw2.q.val();
            self.addr_hi.next = 0.into();
            self.data0.next = self.dw3.q.val();
            self.data1.next = self.dw4.q.val();
        }
        self.expected_dw.next = 3.into();
        if self.is4.val() & self.wd.val() & self.td.val() {
            self.expected_dw.next = self.len_dw.val() + 5;
        } else if self.is4.val() & self.wd.val() {
            self.expected_dw.next = self.len_dw.val() + 4;
        } else if self.wd.val() & self.td.val() {
            self.expected_dw.next = self.len_dw.val() + 4;
        } else if self.wd.val() {
            self.expected_dw.next = self.len_dw.val() + 3;
        } else if self.is4.val() & self.td.val() {
            self.expected_dw.next = 5.into();
        } else if self.is4.val() | self.td.val() {
            self.expected_dw.next = 4.into();
        }
        self.len_ok.next = !self.truncated.q.val() & (self.dwcount.q.val() == self.expected_dw.val());
        self.answerable.next = self.dwcount.q.val() >= 2;

        // ---- classification -------------------------------------------
        self.is_mrd.next = (self.typ.val() == self.c_type_mem.val()) & !self.fmt.val().get_bit(2) & !self.wd.val();
        self.is_mwr.next = (self.typ.val() == self.c_type_mem.val()) & !self.fmt.val().get_bit(2) & self.wd.val();
        self.is_mrdlk.next =
            (self.typ.val() == self.c_type_mem_locked.val()) & !self.fmt.val().get_bit(2) & !self.wd.val();
        self.is_io.next = (self.typ.val() == self.c_type_io.val()) & !self.fmt.val().get_bit(2) & !self.is4.val();
        self.is_cfg0.next = (self.typ.val() == self.c_type_cfg0.val()) & !self.fmt.val().get_bit(2) & !self.is4.val();
        self.is_cfg1.next = (self.typ.val() == self.c_type_cfg1.val()) & !self.fmt.val().get_bit(2) & !self.is4.val();
        self.is_msg.next = ((self.typ.val() & self.c_msg_mask.val()) == self.c_type_msg.val())
            & !self.fmt.val().get_bit(2)
            & self.is4.val();
        self.known.next = self.is_mrd.val()
            | self.is_mwr.val()
            | self.is_mrdlk.val()
            | self.is_io.val()
            | self.is_cfg0.val()
            | self.is_cfg1.val()
            | self.is_msg.val();
        self.non_posted.next =
            self.is_mrd.val() | self.is_mrdlk.val() | self.is_io.val() | self.is_cfg0.val() | self.is_cfg1.val();

        // ---- BAR0 and configuration checks -----------------------------
        self.dwaddr.next = self.addr_lo.val().get_bits::<14>(2);
        self.mem_ok.next = self.cfg.mem_enable.val()
            & (((bit_cast::<48, 32>(self.addr_hi.val()) << 16) | bit_cast::<48, 16>(self.addr_lo.val().get_bits::<16>(16)))
                == self.cfg.bar0_base.val())
            & !self.ep.val()
            & self.len_ok.val()
            & (((self.len.val() == 1) & (self.lbe.val() == 0))
                | ((self.len.val() == 2) & self.fbe.val().any() & self.lbe.val().any() & !self.dwaddr.val().all()));
        self.cfg_ok.next = self.is_cfg0.val()
            & (self.dw2.q.val().get_bits::<3>(16) == 0)
            & (self.len.val() == 1)
            & (self.lbe.val() == 0)
            & !self.ep.val()
            & self.len_ok.val();
        self.req_ok.next = (self.is_mrd.val() & self.mem_ok.val()) | self.cfg_ok.val();

        // ---- completion fields ----------------------------------------
        self.lead_fbe.next = 0.into();
        if !self.fbe.val().get_bit(0) & self.fbe.val().get_bit(1) {
            self.lead_fbe.next = 1.into();
        } else if !self.fbe.val().get_bit(0) & !self.fbe.val().get_bit(1) & self.fbe.val().get_bit(2) {
            self.lead_fbe.next = 2.into();
        } else if self.fbe.val() == 8 {
            self.lead_fbe.next = 3.into();
        }
        self.trail_fbe.next = 0.into();
        if !self.fbe.val().get_bit(3) & self.fbe.val().get_bit(2) {
            self.trail_fbe.next = 1.into();
        } else if !self.fbe.val().get_bit(3) & !self.fbe.val().get_bit(2) & self.fbe.val().get_bit(1) {
            self.trail_fbe.next = 2.into();
        } else if self.fbe.val() == 1 {
            self.trail_fbe.next = 3.into();
        }
        self.trail_lbe.next = 0.into();
        if !self.lbe.val().get_bit(3) & self.lbe.val().get_bit(2) {
            self.trail_lbe.next = 1.into();
        } else if !self.lbe.val().get_bit(3) & !self.lbe.val().get_bit(2) & self.lbe.val().get_bit(1) {
            self.trail_lbe.next = 2.into();
        } else if self.lbe.val() == 1 {
            self.trail_lbe.next = 3.into();
        }
        if self.is_cfg0.val() | self.is_cfg1.val() | self.is_io.val() {
            self.byte_count.next = 4.into();
            self.lower_addr.next = 0.into();
        } else {
            if self.len.val() == 1 {
                if self.fbe.val() == 0 {
                    self.byte_count.next = 1.into();
                } else {
                    self.byte_count.next = 4 - self.lead_fbe.val() - self.trail_fbe.val();
                }
            } else {
                self.byte_count.next = (self.len_dw.val() << 2) - self.lead_fbe.val() - self.trail_lbe.val();
            }
            self.lower_addr.next =
                (bit_cast::<7, 5>(self.addr_lo.val().get_bits::<5>(2)) << 2) | bit_cast::<7, 12>(self.lead_fbe.val());
        }
        self.cpl_data.next = self.req_ok.val() & !self.wd.val();
        self.cpl_len2.next = self.cpl_data.val() & self.is_mrd.val() & (self.len.val() == 2);
        // DW0: Fmt | Type | TC | Attr[2] | TD=0 EP=0 | Attr[1:0] | Length.
        self.cpl_dw0.next = (bit_cast::<32, 5>(self.c_type_cpl.val()) << 24)
            | (self.dw0.q.val() & 0x0074_3000);
        if self.is_mrdlk.val() {
            self.cpl_dw0.next = (bit_cast::<32, 5>(self.c_type_cpl_locked.val()) << 24)
                | (self.dw0.q.val() & 0x0074_3000);
        } else if self.cpl_len2.val() {
            self.cpl_dw0.next = (bit_cast::<32, 5>(self.c_type_cpl.val()) << 24)
                | (self.dw0.q.val() & 0x0074_3000)
                | 0x4000_0002;
        } else if self.cpl_data.val() {
            self.cpl_dw0.next = (bit_cast::<32, 5>(self.c_type_cpl.val()) << 24)
                | (self.dw0.q.val() & 0x0074_3000)
                | 0x4000_0001;
        }
        // DW1: Completer ID | Status | BCM=0 | Byte Count.
        if self.req_ok.val() {
            self.cpl_dw1.next = (bit_cast::<32, 16>(self.cfg.completer_id.val()) << 16)
                | bit_cast::<32, 12>(self.byte_count.val());
        } else {
            self.cpl_dw1.next = (bit_cast::<32, 16>(self.cfg.completer_id.val()) << 16)
                | (bit_cast::<32, 3>(self.c_cpl_ur.val()) << 13)
                | bit_cast::<32, 12>(self.byte_count.val());
        }
        // DW2: Requester ID | Tag | R | Lower Address.
        self.cpl_dw2.next = (self.dw1.q.val() & 0xFFFF_FF00_u64) | bit_cast::<32, 7>(self.lower_addr.val());

        // ---- register access port --------------------------------------
        // Byte masks from the first and last DW byte enables.
        self.mask_fbe.next = 0.into();
        self.mask_lbe.next = 0.into();
        if self.fbe.val().get_bit(0) {
            self.mask_fbe.next = self.mask_fbe.val() | 0x0000_00FF;
        }
        if self.fbe.val().get_bit(1) {
            self.mask_fbe.next = self.mask_fbe.val() | 0x0000_FF00;
        }
        if self.fbe.val().get_bit(2) {
            self.mask_fbe.next = self.mask_fbe.val() | 0x00FF_0000;
        }
        if self.fbe.val().get_bit(3) {
            self.mask_fbe.next = self.mask_fbe.val() | 0xFF00_0000_u64;
        }
        if self.lbe.val().get_bit(0) {
            self.mask_lbe.next = self.mask_lbe.val() | 0x0000_00FF;
        }
        if self.lbe.val().get_bit(1) {
            self.mask_lbe.next = self.mask_lbe.val() | 0x0000_FF00;
        }
        if self.lbe.val().get_bit(2) {
            self.mask_lbe.next = self.mask_lbe.val() | 0x00FF_0000;
        }
        if self.lbe.val().get_bit(3) {
            self.mask_lbe.next = self.mask_lbe.val() | 0xFF00_0000_u64;
        }
        self.regs.addr.next = self.acc_dw.q.val();
        self.regs.wr_data.next = self.acc_wdata.q.val();
        self.regs.wr_mask.next = self.acc_wmask.q.val();
        self.regs.wr_en.next = false;
        self.ext.addr.next = self.acc_dw.q.val();
        self.ext.wr_data.next = self.acc_wdata.q.val();
        self.ext.wr_mask.next = self.acc_wmask.q.val();
        self.ext.wr_en.next = false;
        self.regs_rd.d.next = self.regs.rd_data.val();
        self.access_rd.next = self.regs_rd.q.val();
        if self.acc_ext.q.val() {
            self.access_rd.next = self.ext.rd_data.val();
        }
        self.cfg.addr.next = (bit_cast::<10, 4>(self.dw2.q.val().get_bits::<4>(8)) << 6)
            | bit_cast::<10, 6>(self.dw2.q.val().get_bits::<6>(2));
        self.cfg.wr_en.next = false;
        self.cfg.wr_data.next = self.data0.val();
        self.cfg.wr_mask.next = self.mask_fbe.val();
        self.cfg.capture_en.next = false;
        self.cfg.capture_id.next = self.dw2.q.val().get_bits::<16>(16);
        self.cfg.msi_wr_en.next = self.regs.msi_wr_en.val();
        self.cfg.msi_wr_sel.next = self.regs.msi_wr_sel.val();
        self.cfg.msi_wr_data.next = self.regs.msi_wr_data.val();
        self.cfg.msi_wr_mask.next = self.regs.msi_wr_mask.val();
        self.regs.mem_enable.next = self.cfg.mem_enable.val();
        self.regs.bus_master.next = self.cfg.bus_master.val();
        self.regs.msi_enable.next = self.cfg.msi_enable.val();
        self.regs.msi_addr.next = self.cfg.msi_addr.val();
        self.regs.msi_data.next = self.cfg.msi_data.val();
        self.completer_id.next = self.cfg.completer_id.val();
        self.bus_master.next = self.cfg.bus_master.val();
        self.max_payload.next = self.cfg.max_payload.val();
        self.max_read_req.next = self.cfg.max_read_req.val();

        // ---- MSI ------------------------------------------------------
        self.msi_go.next = self.regs.msi_request.val() & self.cfg.bus_master.val() & self.cfg.msi_enable.val();
        self.msi_4dw.next = self.cfg.msi_addr.val().get_bits::<32>(32).any();
        // MWr, one DW, TC 0, no attributes; FBE 1111 as the MSI rules require.
        self.msi_dw0.next = 0x4000_0001.into();
        if self.msi_4dw.val() {
            self.msi_dw0.next = 0x6000_0001.into();
        }
        self.msi_dw1.next = (bit_cast::<32, 16>(self.cfg.completer_id.val()) << 16) | 0x0000_000F;

        // ---- defaults for outputs and events ---------------------------
        self.rx.ready.next = false;
        self.tx.valid.next = false;
        self.tx.sop.next = false;
        self.tx.eop.next = false;
        self.tx.keep.next = 3.into();
        self.tx.data.next = 0.into();
        self.regs.msi_sent.next = false;
        self.regs.irq_request.next = self.irq_request.val();
        self.regs.inc_rx_tlp.next = false;
        self.regs.inc_tx_tlp.next = false;
        self.regs.inc_ur_cpl.next = false;
        self.regs.inc_posted_dropped.next = false;
        self.regs.inc_malformed.next = false;
        self.regs.inc_poisoned.next = false;
        self.regs.inc_msg.next = false;

        match self.state.q.val() {
            EpState::Idle => {
                self.rx.ready.next = !self.msi_go.val();
                if self.msi_go.val() {
                    self.state.d.next = EpState::Msi0;
                } else if self.rx.valid.val() & self.rx.sop.val() {
                    self.dw0.d.next = self.rx.data.val().get_bits::<32>(0);
                    self.dw1.d.next = self.rx.data.val().get_bits::<32>(32);
                    self.dw2.d.next = 0.into();
                    self.dw3.d.next = 0.into();
                    self.dw4.d.next = 0.into();
                    self.dw5.d.next = 0.into();
                    self.dwcount.d.next = self.keep_count.val();
                    self.beat.d.next = 1.into();
                    self.truncated.d.next = false;
                    if self.rx.eop.val() {
                        self.state.d.next = EpState::Decode;
                    } else {
                        self.state.d.next = EpState::Recv;
                    }
                } else if self.rx.valid.val() {
                    // A beat outside any TLP: consumed and counted.
                    self.regs.inc_malformed.next = true;
                }
            }
            EpState::Recv => {
                self.rx.ready.next = !(self.rx.valid.val() & self.rx.sop.val());
                if self.rx.valid.val() & self.rx.sop.val() {
                    self.truncated.d.next = true;
                    self.state.d.next = EpState::Decode;
                } else if self.rx.valid.val() {
                    if self.beat.q.val() == 1 {
                        self.dw2.d.next = self.rx.data.val().get_bits::<32>(0);
                        self.dw3.d.next = self.rx.data.val().get_bits::<32>(32);
                    } else if self.beat.q.val() == 2 {
                        self.dw4.d.next = self.rx.data.val().get_bits::<32>(0);
                        self.dw5.d.next = self.rx.data.val().get_bits::<32>(32);
                    }
                    if self.beat.q.val() != 3 {
                        self.beat.d.next = self.beat.q.val() + 1;
                    }
                    if self.dwcount.q.val() < 4000 {
                        self.dwcount.d.next = self.dwcount.q.val() + self.keep_count.val();
                    }
                    if self.rx.eop.val() {
                        self.state.d.next = EpState::Decode;
                    }
                }
            }
            EpState::Decode => {
                // Register the decode; act on it in `Dispatch`.
                self.q_known.d.next = self.known.val();
                self.q_len_ok.d.next = self.len_ok.val();
                self.q_ep.d.next = self.ep.val();
                self.q_is_msg.d.next = self.is_msg.val();
                self.q_is_mrd.d.next = self.is_mrd.val();
                self.q_is_mwr.d.next = self.is_mwr.val();
                self.q_wd.d.next = self.wd.val();
                self.q_two.d.next = self.len.val() == 2;
                self.q_non_posted.d.next = self.non_posted.val();
                self.q_answerable.d.next = self.answerable.val();
                self.q_mem_ok.d.next = self.mem_ok.val();
                self.q_cfg_ok.d.next = self.cfg_ok.val();
                self.q_req_ok.d.next = self.req_ok.val();
                self.q_cpl_data.d.next = self.cpl_data.val();
                self.q_cpl_len2.d.next = self.cpl_len2.val();
                self.q_cpl_dw0.d.next = self.cpl_dw0.val();
                // The completer ID is added when the completion goes out: a
                // configuration write captures it in between.
                self.q_cpl_dw1.d.next = self.cpl_dw1.val() & 0xFFFF;
                self.q_cpl_dw2.d.next = self.cpl_dw2.val();
                self.acc_dw.d.next = self.dwaddr.val();
                self.acc_ext.d.next = self.dwaddr.val() >= self.ext_first.val();
                self.acc_wdata.d.next = self.data0.val();
                self.acc_wmask.d.next = self.mask_fbe.val();
                self.acc_wdata1.d.next = self.data1.val();
                self.acc_wmask1.d.next = self.mask_lbe.val();
                self.rd_wait.d.next = 0.into();
                self.state.d.next = EpState::Dispatch;
            }
            EpState::Dispatch => {
                self.regs.inc_rx_tlp.next = true;
                self.regs.inc_malformed.next = !self.q_known.q.val() | !self.q_len_ok.q.val();
                self.regs.inc_poisoned.next = self.q_known.q.val() & self.q_ep.q.val();
                self.regs.inc_msg.next = self.q_is_msg.q.val();
                self.regs.inc_posted_dropped.next = self.q_is_mwr.q.val() & self.q_len_ok.q.val() & !self.q_mem_ok.q.val();
                self.regs.inc_ur_cpl.next = self.q_non_posted.q.val() & self.q_answerable.q.val() & !self.q_req_ok.q.val();
                self.state.d.next = EpState::Idle;
                if self.q_non_posted.q.val() & self.q_answerable.q.val() {
                    if self.q_is_mrd.q.val() & self.q_mem_ok.q.val() {
                        self.state.d.next = EpState::ReadReg0;
                    } else if self.q_cfg_ok.q.val() & self.q_wd.q.val() {
                        self.state.d.next = EpState::CfgWrite;
                    } else if self.q_cfg_ok.q.val() {
                        self.state.d.next = EpState::CfgRead;
                    } else {
                        self.state.d.next = EpState::Cpl0;
                    }
                } else if self.q_is_mwr.q.val() & self.q_mem_ok.q.val() {
                    self.state.d.next = EpState::WriteReg0;
                }
            }
            EpState::ReadReg0 => {
                self.rd_wait.d.next = self.rd_wait.q.val() + 1;
                if self.rd_wait.q.val() == 2 {
                    self.rd_wait.d.next = 0.into();
                    self.rdata0.d.next = self.access_rd.val();
                    if self.q_two.q.val() {
                        self.acc_dw.d.next = self.acc_dw.q.val() + 1;
                        self.acc_ext.d.next = (self.acc_dw.q.val() + 1) >= self.ext_first.val();
                        self.state.d.next = EpState::ReadReg1;
                    } else {
                        self.state.d.next = EpState::Cpl0;
                    }
                }
            }
            EpState::ReadReg1 => {
                self.rd_wait.d.next = self.rd_wait.q.val() + 1;
                if self.rd_wait.q.val() == 2 {
                    self.rd_wait.d.next = 0.into();
                    self.rdata1.d.next = self.access_rd.val();
                    self.state.d.next = EpState::Cpl0;
                }
            }
            EpState::WriteReg0 => {
                self.regs.wr_en.next = !self.acc_ext.q.val();
                self.ext.wr_en.next = self.acc_ext.q.val();
                if self.q_two.q.val() {
                    self.acc_dw.d.next = self.acc_dw.q.val() + 1;
                    self.acc_ext.d.next = (self.acc_dw.q.val() + 1) >= self.ext_first.val();
                    self.acc_wdata.d.next = self.acc_wdata1.q.val();
                    self.acc_wmask.d.next = self.acc_wmask1.q.val();
                    self.state.d.next = EpState::WriteReg1;
                } else {
                    self.state.d.next = EpState::Idle;
                }
            }
            EpState::WriteReg1 => {
                self.regs.wr_en.next = !self.acc_ext.q.val();
                self.ext.wr_en.next = self.acc_ext.q.val();
                self.state.d.next = EpState::Idle;
            }
            EpState::CfgRead => {
                self.rdata0.d.next = self.cfg.rd_data.val();
                self.state.d.next = EpState::Cpl0;
            }
            EpState::CfgWrite => {
                self.cfg.wr_en.next = true;
                self.cfg.capture_en.next = true;
                self.state.d.next = EpState::Cpl0;
            }
            EpState::Cpl0 => {
                self.tx.valid.next = true;
                self.tx.sop.next = true;
                self.tx.data.next = (bit_cast::<64, 16>(self.cfg.completer_id.val()) << 48)
                    | (bit_cast::<64, 32>(self.q_cpl_dw1.q.val()) << 32)
                    | bit_cast::<64, 32>(self.q_cpl_dw0.q.val());
                if self.tx.ready.val() {
                    self.state.d.next = EpState::Cpl1;
                }
            }
            EpState::Cpl1 => {
                self.tx.valid.next = true;
                self.tx.data.next = (bit_cast::<64, 32>(self.rdata0.q.val()) << 32) | bit_cast::<64, 32>(self.q_cpl_dw2.q.val());
                if !self.q_cpl_data.q.val() {
                    self.tx.keep.next = 1.into();
                    self.tx.data.next = bit_cast::<64, 32>(self.q_cpl_dw2.q.val());
                }
                self.tx.eop.next = !self.q_cpl_len2.q.val();
                if self.tx.ready.val() {
                    if self.q_cpl_len2.q.val() {
                        self.state.d.next = EpState::Cpl2;
                    } else {
                        self.regs.inc_tx_tlp.next = true;
                        self.state.d.next = EpState::Idle;
                    }
                }
            }
            EpState::Cpl2 => {
                self.tx.valid.next = true;
                self.tx.keep.next = 1.into();
                self.tx.eop.next = true;
                self.tx.data.next = bit_cast::<64, 32>(self.rdata1.q.val());
                if self.tx.ready.val() {
                    self.regs.inc_tx_tlp.next = true;
                    self.state.d.next = EpState::Idle;
                }
            }
            EpState::Msi0 => {
                self.tx.valid.next = true;
                self.tx.sop.next = true;
                self.tx.data.next = (bit_cast::<64, 32>(self.msi_dw1.val()) << 32) | bit_cast::<64, 32>(self.msi_dw0.val());
                if self.tx.ready.val() {
                    self.state.d.next = EpState::Msi1;
                }
            }
            EpState::Msi1 => {
                self.tx.valid.next = true;
                if self.msi_4dw.val() {
                    self.tx.data.next = (bit_cast::<64, 32>(self.cfg.msi_addr.val().get_bits::<32>(0)) << 32)
                        | bit_cast::<64, 32>(self.cfg.msi_addr.val().get_bits::<32>(32));
                    if self.tx.ready.val() {
                        self.state.d.next = EpState::Msi2;
                    }
                } else {
                    self.tx.eop.next = true;
                    self.tx.data.next = (bit_cast::<64, 16>(self.cfg.msi_data.val()) << 32)
                        | bit_cast::<64, 32>(self.cfg.msi_addr.val().get_bits::<32>(0));
                    if self.tx.ready.val() {
                        self.regs.msi_sent.next = true;
                        self.regs.inc_tx_tlp.next = true;
                        self.state.d.next = EpState::Idle;
                    }
                }
            }
            EpState::Msi2 => {
                self.tx.valid.next = true;
                self.tx.keep.next = 1.into();
                self.tx.eop.next = true;
                self.tx.data.next = bit_cast::<64, 16>(self.cfg.msi_data.val());
                if self.tx.ready.val() {
                    self.regs.msi_sent.next = true;
                    self.regs.inc_tx_tlp.next = true;
                    self.state.d.next = EpState::Idle;
                }
            }
            _ => {
                self.state.d.next = EpState::Idle;
            }
        }
        if self.reset.val() {
            self.state.d.next = EpState::Idle;
        }
    }
}
