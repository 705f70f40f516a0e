//! Type 0 configuration space of the card's single function.
//!
//! Why it lives in card logic: the ECP5 has SERDES but no PCIe hard IP, so the
//! transaction layer (configuration included) is the card's own; on a board
//! whose hard block terminates configuration requests, the block is unused and
//! the same outputs come from the hard block's configuration bus.
//!
//! Layout (see `regmap::cfg`): standard header with one 64-bit memory BAR
//! (BAR0/BAR1), an MSI capability (64-bit, one vector) at 0x40 and a PCI Express
//! capability (version 2, endpoint) at 0x60. Reads are combinational on
//! `rd_addr` (DW index); writes take a 32-bit byte mask already expanded from
//! the byte enables. The MSI address and data registers have a second write
//! port so the BAR0 view (`REG_MSI_*`) and the capability share one storage.

use crate::regmap::{self, cfg};
use crate::{dw_index, konst};
use rust_hdl::prelude::*;
use smart_default::SmartDefault;

#[derive(LogicBlock, SmartDefault)]
pub struct ConfigSpace {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    /// DW index (extended register number and register number) of the
    /// access; reads are combinational, a write happens on `wr_en`.
    pub addr: Signal<In, Bits<10>>,
    pub rd_data: Signal<Out, Bits<32>>,
    pub wr_en: Signal<In, Bit>,
    pub wr_data: Signal<In, Bits<32>>,
    pub wr_mask: Signal<In, Bits<32>>,
    /// Bus and device number captured from a type 0 configuration write.
    pub capture_en: Signal<In, Bit>,
    pub capture_id: Signal<In, Bits<16>>,
    /// Second write port for the MSI registers (the BAR0 view): 0 address low,
    /// 1 address high, 2 data.
    pub msi_wr_en: Signal<In, Bit>,
    pub msi_wr_sel: Signal<In, Bits<2>>,
    pub msi_wr_data: Signal<In, Bits<32>>,
    pub msi_wr_mask: Signal<In, Bits<32>>,
    /// Decoded state the rest of the card uses.
    pub completer_id: Signal<Out, Bits<16>>,
    pub mem_enable: Signal<Out, Bit>,
    pub bus_master: Signal<Out, Bit>,
    pub msi_enable: Signal<Out, Bit>,
    pub msi_addr: Signal<Out, Bits<64>>,
    pub msi_data: Signal<Out, Bits<16>>,
    /// BAR0 base address, bits [63:16].
    pub bar0_base: Signal<Out, Bits<48>>,
    /// Device Control Max_Payload_Size and Max_Read_Request_Size encodings.
    pub max_payload: Signal<Out, Bits<3>>,
    pub max_read_req: Signal<Out, Bits<3>>,

    command: DFF<Bits<16>>,
    bar0_lo: DFF<Bits<16>>,
    bar0_hi: DFF<Bits<32>>,
    int_line: DFF<Bits<8>>,
    msi_ctrl_enable: DFF<Bits<1>>,
    msi_mme: DFF<Bits<3>>,
    msi_addr_lo: DFF<Bits<32>>,
    msi_addr_hi: DFF<Bits<32>>,
    msi_data_r: DFF<Bits<16>>,
    devctl: DFF<Bits<16>>,
    linkctl: DFF<Bits<16>>,
    bus_dev: DFF<Bits<16>>,
    /// Write data merged into the current value under the byte mask.
    merged: Signal<Local, Bits<32>>,
    msi_merged: Signal<Local, Bits<32>>,
    msi_old: Signal<Local, Bits<32>>,

    #[default(dw_index(cfg::VENDOR_DEVICE.into()))]
    a_vendor: Constant<Bits<10>>,
    #[default(dw_index(cfg::COMMAND_STATUS.into()))]
    a_command: Constant<Bits<10>>,
    #[default(dw_index(cfg::CLASS_REV.into()))]
    a_class: Constant<Bits<10>>,
    #[default(dw_index(cfg::HEADER.into()))]
    a_header: Constant<Bits<10>>,
    #[default(dw_index(cfg::BAR0.into()))]
    a_bar0: Constant<Bits<10>>,
    #[default(dw_index(cfg::BAR1.into()))]
    a_bar1: Constant<Bits<10>>,
    #[default(dw_index(cfg::SUBSYSTEM.into()))]
    a_subsys: Constant<Bits<10>>,
    #[default(dw_index(cfg::CAP_PTR.into()))]
    a_cap_ptr: Constant<Bits<10>>,
    #[default(dw_index(cfg::INTERRUPT.into()))]
    a_interrupt: Constant<Bits<10>>,
    #[default(dw_index(cfg::MSI_CAP.into()))]
    a_msi_cap: Constant<Bits<10>>,
    #[default(dw_index(cfg::MSI_ADDR_LO.into()))]
    a_msi_lo: Constant<Bits<10>>,
    #[default(dw_index(cfg::MSI_ADDR_HI.into()))]
    a_msi_hi: Constant<Bits<10>>,
    #[default(dw_index(cfg::MSI_DATA.into()))]
    a_msi_data: Constant<Bits<10>>,
    #[default(dw_index(cfg::PCIE_CAP.into()))]
    a_pcie_cap: Constant<Bits<10>>,
    #[default(dw_index(cfg::PCIE_DEVCAP.into()))]
    a_devcap: Constant<Bits<10>>,
    #[default(dw_index(cfg::PCIE_DEVCTL.into()))]
    a_devctl: Constant<Bits<10>>,
    #[default(dw_index(cfg::PCIE_LINKCAP.into()))]
    a_linkcap: Constant<Bits<10>>,
    #[default(dw_index(cfg::PCIE_LINKCTL.into()))]
    a_linkctl: Constant<Bits<10>>,
    #[default(konst(((regmap::DEVICE_ID as u64) << 16) | regmap::VENDOR_ID as u64))]
    v_vendor: Constant<Bits<32>>,
    #[default(konst(((regmap::CLASS_CODE << 8) | regmap::REVISION_ID as u32) as u64))]
    v_class: Constant<Bits<32>>,
    #[default(konst(((regmap::SUBSYSTEM_ID as u64) << 16) | regmap::SUBSYSTEM_VENDOR_ID as u64))]
    v_subsys: Constant<Bits<32>>,
    #[default(konst(cfg::MSI_CAP as u64))]
    v_cap_ptr: Constant<Bits<32>>,
    /// Message control (64-bit capable, one vector) | next = PCIe cap | ID 05h.
    #[default(konst(((cfg::MSI_CTRL_64BIT as u64) << 16) | ((cfg::PCIE_CAP as u64) << 8) | 0x05))]
    v_msi_cap: Constant<Bits<32>>,
    /// PCIe capabilities register: version 2, endpoint (0000b) | next = 0 | ID 10h.
    #[default(konst((0x0002 << 16) | 0x10))]
    v_pcie_cap: Constant<Bits<32>>,
    /// Role-based error reporting (bit 15) and MPS supported.
    #[default(konst(((1 << 15) | cfg::DEVCAP_MPS_256) as u64))]
    v_devcap: Constant<Bits<32>>,
    #[default(konst(cfg::LINKCAP_GEN2_X1 as u64))]
    v_linkcap: Constant<Bits<32>>,
    #[default(konst(cfg::BAR0_FLAGS as u64))]
    v_bar0_flags: Constant<Bits<16>>,
    #[default(konst(cfg::STATUS_CAP_LIST as u64))]
    v_status: Constant<Bits<16>>,
    /// Writable bits of the command register: memory space, bus master,
    /// parity error response, SERR# enable, interrupt disable.
    #[default(konst(0x0546))]
    m_command: Constant<Bits<16>>,
    /// Writable bits of Device Control (everything but the reserved bit 15).
    #[default(konst(0x7FFF))]
    m_devctl: Constant<Bits<16>>,
    /// Max_Read_Request_Size resets to 512 bytes (010b), MPS to 128 bytes.
    #[default(konst(0b010 << 12))]
    v_devctl_reset: Constant<Bits<16>>,
    /// Link status: current speed 5 GT/s, negotiated width x1.
    #[default(konst(0x0012_0000))]
    v_linksta: Constant<Bits<32>>,
    /// MSI address is DW aligned.
    #[default(konst(0xFFFF_FFFC))]
    m_msi_lo: Constant<Bits<32>>,
}

impl Logic for ConfigSpace {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clock, command, bar0_lo, bar0_hi, int_line, msi_ctrl_enable, msi_mme,
            msi_addr_lo, msi_addr_hi, msi_data_r, devctl, linkctl, bus_dev
        );
        // ---- read mux -------------------------------------------------
        self.rd_data.next = 0.into();
        if self.addr.val() == self.a_vendor.val() {
            self.rd_data.next = self.v_vendor.val();
        } else if self.addr.val() == self.a_command.val() {
            self.rd_data.next = (bit_cast::<32, 16>(self.v_status.val()) << 16)
                | bit_cast::<32, 16>(self.command.q.val());
        } else if self.addr.val() == self.a_class.val() {
            self.rd_data.next = self.v_class.val();
        } else if self.addr.val() == self.a_header.val() {
            self.rd_data.next = 0.into();
        } else if self.addr.val() == self.a_bar0.val() {
            self.rd_data.next = (bit_cast::<32, 16>(self.bar0_lo.q.val()) << 16)
                | bit_cast::<32, 16>(self.v_bar0_flags.val());
        } else if self.addr.val() == self.a_bar1.val() {
            self.rd_data.next = self.bar0_hi.q.val();
        } else if self.addr.val() == self.a_subsys.val() {
            self.rd_data.next = self.v_subsys.val();
        } else if self.addr.val() == self.a_cap_ptr.val() {
            self.rd_data.next = self.v_cap_ptr.val();
        } else if self.addr.val() == self.a_interrupt.val() {
            self.rd_data.next = bit_cast::<32, 8>(self.int_line.q.val());
        } else if self.addr.val() == self.a_msi_cap.val() {
            self.rd_data.next = self.v_msi_cap.val()
                | (bit_cast::<32, 3>(self.msi_mme.q.val()) << 20)
                | (bit_cast::<32, 1>(self.msi_ctrl_enable.q.val()) << 16);
        } else if self.addr.val() == self.a_msi_lo.val() {
            self.rd_data.next = self.msi_addr_lo.q.val();
        } else if self.addr.val() == self.a_msi_hi.val() {
            self.rd_data.next = self.msi_addr_hi.q.val();
        } else if self.addr.val() == self.a_msi_data.val() {
            self.rd_data.next = bit_cast::<32, 16>(self.msi_data_r.q.val());
        } else if self.addr.val() == self.a_pcie_cap.val() {
            self.rd_data.next = self.v_pcie_cap.val();
        } else if self.addr.val() == self.a_devcap.val() {
            self.rd_data.next = self.v_devcap.val();
        } else if self.addr.val() == self.a_devctl.val() {
            self.rd_data.next = bit_cast::<32, 16>(self.devctl.q.val());
        } else if self.addr.val() == self.a_linkcap.val() {
            self.rd_data.next = self.v_linkcap.val();
        } else if self.addr.val() == self.a_linkctl.val() {
            // Link status (upper half): current speed 5 GT/s, width x1.
            self.rd_data.next = bit_cast::<32, 16>(self.linkctl.q.val()) | self.v_linksta.val();
        }

        // ---- configuration writes ------------------------------------
        self.merged.next = (self.rd_data.val() & !self.wr_mask.val()) | (self.wr_data.val() & self.wr_mask.val());
        if self.wr_en.val() {
            if self.addr.val() == self.a_command.val() {
                self.command.d.next = self.merged.val().get_bits::<16>(0) & self.m_command.val();
            } else if self.addr.val() == self.a_bar0.val() {
                // Size 64 KiB: address bits [15:4] are hard-wired to zero, so
                // writing all-ones reads back the size mask.
                self.bar0_lo.d.next = self.merged.val().get_bits::<16>(16);
            } else if self.addr.val() == self.a_bar1.val() {
                self.bar0_hi.d.next = self.merged.val();
            } else if self.addr.val() == self.a_interrupt.val() {
                self.int_line.d.next = self.merged.val().get_bits::<8>(0);
            } else if self.addr.val() == self.a_msi_cap.val() {
                self.msi_ctrl_enable.d.next = self.merged.val().get_bits::<1>(16);
                self.msi_mme.d.next = self.merged.val().get_bits::<3>(20);
            } else if self.addr.val() == self.a_devctl.val() {
                self.devctl.d.next = self.merged.val().get_bits::<16>(0) & self.m_devctl.val();
            } else if self.addr.val() == self.a_linkctl.val() {
                self.linkctl.d.next = self.merged.val().get_bits::<16>(0);
            }
        }
        // ---- MSI storage: written from either view --------------------
        self.msi_old.next = self.msi_addr_lo.q.val();
        if self.msi_wr_sel.val() == 1 {
            self.msi_old.next = self.msi_addr_hi.q.val();
        } else if self.msi_wr_sel.val() == 2 {
            self.msi_old.next = bit_cast::<32, 16>(self.msi_data_r.q.val());
        }
        self.msi_merged.next =
            (self.msi_old.val() & !self.msi_wr_mask.val()) | (self.msi_wr_data.val() & self.msi_wr_mask.val());
        if self.wr_en.val() {
            if self.addr.val() == self.a_msi_lo.val() {
                self.msi_addr_lo.d.next = self.merged.val() & self.m_msi_lo.val();
            } else if self.addr.val() == self.a_msi_hi.val() {
                self.msi_addr_hi.d.next = self.merged.val();
            } else if self.addr.val() == self.a_msi_data.val() {
                self.msi_data_r.d.next = self.merged.val().get_bits::<16>(0);
            }
        } else if self.msi_wr_en.val() {
            if self.msi_wr_sel.val() == 0 {
                self.msi_addr_lo.d.next = self.msi_merged.val() & self.m_msi_lo.val();
            } else if self.msi_wr_sel.val() == 1 {
                self.msi_addr_hi.d.next = self.msi_merged.val();
            } else if self.msi_wr_sel.val() == 2 {
                self.msi_data_r.d.next = self.msi_merged.val().get_bits::<16>(0);
            }
        }
        if self.capture_en.val() {
            self.bus_dev.d.next = self.capture_id.val();
        }
        if self.reset.val() {
            self.command.d.next = 0.into();
            self.bar0_lo.d.next = 0.into();
            self.bar0_hi.d.next = 0.into();
            self.int_line.d.next = 0.into();
            self.msi_ctrl_enable.d.next = 0.into();
            self.msi_mme.d.next = 0.into();
            self.msi_addr_lo.d.next = 0.into();
            self.msi_addr_hi.d.next = 0.into();
            self.msi_data_r.d.next = 0.into();
            self.devctl.d.next = self.v_devctl_reset.val();
            self.linkctl.d.next = 0.into();
            self.bus_dev.d.next = 0.into();
        }
        // ---- decoded outputs -----------------------------------------
        self.completer_id.next = self.bus_dev.q.val();
        self.mem_enable.next = self.command.q.val().get_bit(1);
        self.bus_master.next = self.command.q.val().get_bit(2);
        self.msi_enable.next = self.msi_ctrl_enable.q.val().any();
        self.msi_addr.next =
            (bit_cast::<64, 32>(self.msi_addr_hi.q.val()) << 32) | bit_cast::<64, 32>(self.msi_addr_lo.q.val());
        self.msi_data.next = self.msi_data_r.q.val();
        self.bar0_base.next =
            (bit_cast::<48, 32>(self.bar0_hi.q.val()) << 16) | bit_cast::<48, 16>(self.bar0_lo.q.val());
        self.max_payload.next = self.devctl.q.val().get_bits::<3>(5);
        self.max_read_req.next = self.devctl.q.val().get_bits::<3>(12);
    }
}
