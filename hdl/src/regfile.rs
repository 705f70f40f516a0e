//! BAR0 register file: identity, scratch, control/status, the MSI vector (a
//! view of the configuration space's MSI capability) and the error counters.
//!
//! Offsets and reset values come from `regmap`; the register file decodes the
//! DW index on `addr` combinationally for reads and applies a write (under a
//! byte mask expanded from the TLP's byte enables) on `wr_en`.

use crate::regmap;
use crate::{dw_index, konst};
use rust_hdl::prelude::*;
use smart_default::SmartDefault;

/// A 32-bit event counter that saturates instead of wrapping (a wrapped error
/// counter reads as "no errors"), cleared by `clear` or `reset`.
#[derive(LogicBlock, Default)]
pub struct EventCounter {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    pub inc: Signal<In, Bit>,
    pub clear: Signal<In, Bit>,
    pub count: Signal<Out, Bits<32>>,
    value: DFF<Bits<32>>,
}

impl Logic for EventCounter {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, value);
        if self.reset.val() | self.clear.val() {
            self.value.d.next = 0.into();
        } else if self.inc.val() & !self.value.q.val().all() {
            self.value.d.next = self.value.q.val() + 1;
        }
        self.count.next = self.value.q.val();
    }
}

#[derive(LogicBlock, SmartDefault)]
pub struct Bar0RegFile {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    /// DW index within BAR0 of the access.
    pub addr: Signal<In, Bits<14>>,
    pub rd_data: Signal<Out, Bits<32>>,
    pub wr_en: Signal<In, Bit>,
    pub wr_data: Signal<In, Bits<32>>,
    pub wr_mask: Signal<In, Bits<32>>,
    /// State from the configuration space, shown in STATUS and the MSI view.
    pub mem_enable: Signal<In, Bit>,
    pub bus_master: Signal<In, Bit>,
    pub msi_enable: Signal<In, Bit>,
    pub msi_addr: Signal<In, Bits<64>>,
    pub msi_data: Signal<In, Bits<16>>,
    /// Writes to the MSI view go to the configuration space's storage.
    pub msi_wr_en: Signal<Out, Bit>,
    pub msi_wr_sel: Signal<Out, Bits<2>>,
    pub msi_wr_data: Signal<Out, Bits<32>>,
    pub msi_wr_mask: Signal<Out, Bits<32>>,
    /// An MSI is pending and not masked; the endpoint sends it when bus
    /// mastering and MSI are enabled and pulses `msi_sent`.
    pub msi_request: Signal<Out, Bit>,
    pub msi_sent: Signal<In, Bit>,
    /// Another block (the DMA engine) asks for the MSI.
    pub irq_request: Signal<In, Bit>,
    /// Counter events from the endpoint (one-cycle pulses).
    pub inc_rx_tlp: Signal<In, Bit>,
    pub inc_tx_tlp: Signal<In, Bit>,
    pub inc_ur_cpl: Signal<In, Bit>,
    pub inc_posted_dropped: Signal<In, Bit>,
    pub inc_malformed: Signal<In, Bit>,
    pub inc_poisoned: Signal<In, Bit>,
    pub inc_msg: Signal<In, Bit>,

    scratch0: DFF<Bits<32>>,
    scratch1: DFF<Bits<32>>,
    scratch2: DFF<Bits<32>>,
    scratch3: DFF<Bits<32>>,
    control: DFF<Bits<32>>,
    msi_pending: DFF<Bit>,
    cnt_rx_tlp: EventCounter,
    cnt_tx_tlp: EventCounter,
    cnt_ur_cpl: EventCounter,
    cnt_posted_dropped: EventCounter,
    cnt_malformed: EventCounter,
    cnt_poisoned: EventCounter,
    cnt_msg: EventCounter,
    cnt_msi_sent: EventCounter,
    status: Signal<Local, Bits<32>>,
    merged: Signal<Local, Bits<32>>,

    #[default(dw_index(regmap::REG_ID))]
    a_id: Constant<Bits<14>>,
    #[default(dw_index(regmap::REG_VERSION))]
    a_version: Constant<Bits<14>>,
    #[default(dw_index(regmap::REG_CAPS))]
    a_caps: Constant<Bits<14>>,
    #[default(dw_index(regmap::REG_SCRATCH0))]
    a_scratch0: Constant<Bits<14>>,
    #[default(dw_index(regmap::REG_SCRATCH1))]
    a_scratch1: Constant<Bits<14>>,
    #[default(dw_index(regmap::REG_SCRATCH2))]
    a_scratch2: Constant<Bits<14>>,
    #[default(dw_index(regmap::REG_SCRATCH3))]
    a_scratch3: Constant<Bits<14>>,
    #[default(dw_index(regmap::REG_CONTROL))]
    a_control: Constant<Bits<14>>,
    #[default(dw_index(regmap::REG_STATUS))]
    a_status: Constant<Bits<14>>,
    #[default(dw_index(regmap::REG_MSI_ADDR_LO))]
    a_msi_lo: Constant<Bits<14>>,
    #[default(dw_index(regmap::REG_MSI_ADDR_HI))]
    a_msi_hi: Constant<Bits<14>>,
    #[default(dw_index(regmap::REG_MSI_DATA))]
    a_msi_data: Constant<Bits<14>>,
    #[default(dw_index(regmap::REG_MSI_TRIGGER))]
    a_msi_trigger: Constant<Bits<14>>,
    #[default(dw_index(regmap::REG_CNT_RX_TLP))]
    a_cnt_rx_tlp: Constant<Bits<14>>,
    #[default(dw_index(regmap::REG_CNT_TX_TLP))]
    a_cnt_tx_tlp: Constant<Bits<14>>,
    #[default(dw_index(regmap::REG_CNT_UR_CPL))]
    a_cnt_ur_cpl: Constant<Bits<14>>,
    #[default(dw_index(regmap::REG_CNT_POSTED_DROPPED))]
    a_cnt_posted_dropped: Constant<Bits<14>>,
    #[default(dw_index(regmap::REG_CNT_MALFORMED))]
    a_cnt_malformed: Constant<Bits<14>>,
    #[default(dw_index(regmap::REG_CNT_POISONED))]
    a_cnt_poisoned: Constant<Bits<14>>,
    #[default(dw_index(regmap::REG_CNT_MSG))]
    a_cnt_msg: Constant<Bits<14>>,
    #[default(dw_index(regmap::REG_CNT_MSI_SENT))]
    a_cnt_msi_sent: Constant<Bits<14>>,
    #[default(konst(regmap::CARD_MAGIC as u64))]
    v_id: Constant<Bits<32>>,
    #[default(konst(regmap::CARD_VERSION as u64))]
    v_version: Constant<Bits<32>>,
    #[default(konst(regmap::CARD_CAPS as u64))]
    v_caps: Constant<Bits<32>>,
    #[default(konst(regmap::CONTROL_MSI_MASK as u64))]
    m_control: Constant<Bits<32>>,
}

impl Logic for Bar0RegFile {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, scratch0, scratch1, scratch2, scratch3, control, msi_pending);
        clock!(
            self, clock, cnt_rx_tlp, cnt_tx_tlp, cnt_ur_cpl, cnt_posted_dropped, cnt_malformed,
            cnt_poisoned, cnt_msg, cnt_msi_sent
        );
        self.cnt_rx_tlp.reset.next = self.reset.val();
        self.cnt_tx_tlp.reset.next = self.reset.val();
        self.cnt_ur_cpl.reset.next = self.reset.val();
        self.cnt_posted_dropped.reset.next = self.reset.val();
        self.cnt_malformed.reset.next = self.reset.val();
        self.cnt_poisoned.reset.next = self.reset.val();
        self.cnt_msg.reset.next = self.reset.val();
        self.cnt_msi_sent.reset.next = self.reset.val();
        self.cnt_rx_tlp.inc.next = self.inc_rx_tlp.val();
        self.cnt_tx_tlp.inc.next = self.inc_tx_tlp.val();
        self.cnt_ur_cpl.inc.next = self.inc_ur_cpl.val();
        self.cnt_posted_dropped.inc.next = self.inc_posted_dropped.val();
        self.cnt_malformed.inc.next = self.inc_malformed.val();
        self.cnt_poisoned.inc.next = self.inc_poisoned.val();
        self.cnt_msg.inc.next = self.inc_msg.val();
        self.cnt_msi_sent.inc.next = self.msi_sent.val();

        self.status.next = bit_cast::<32, 1>(self.msi_pending.q.val().into())
            | (bit_cast::<32, 1>(self.bus_master.val().into()) << 1)
            | (bit_cast::<32, 1>(self.msi_enable.val().into()) << 2)
            | (bit_cast::<32, 1>(self.mem_enable.val().into()) << 3);

        // ---- read mux -------------------------------------------------
        self.rd_data.next = 0.into();
        if self.addr.val() == self.a_id.val() {
            self.rd_data.next = self.v_id.val();
        } else if self.addr.val() == self.a_version.val() {
            self.rd_data.next = self.v_version.val();
        } else if self.addr.val() == self.a_caps.val() {
            self.rd_data.next = self.v_caps.val();
        } else if self.addr.val() == self.a_scratch0.val() {
            self.rd_data.next = self.scratch0.q.val();
        } else if self.addr.val() == self.a_scratch1.val() {
            self.rd_data.next = self.scratch1.q.val();
        } else if self.addr.val() == self.a_scratch2.val() {
            self.rd_data.next = self.scratch2.q.val();
        } else if self.addr.val() == self.a_scratch3.val() {
            self.rd_data.next = self.scratch3.q.val();
        } else if self.addr.val() == self.a_control.val() {
            self.rd_data.next = self.control.q.val();
        } else if self.addr.val() == self.a_status.val() {
            self.rd_data.next = self.status.val();
        } else if self.addr.val() == self.a_msi_lo.val() {
            self.rd_data.next = self.msi_addr.val().get_bits::<32>(0);
        } else if self.addr.val() == self.a_msi_hi.val() {
            self.rd_data.next = self.msi_addr.val().get_bits::<32>(32);
        } else if self.addr.val() == self.a_msi_data.val() {
            self.rd_data.next = bit_cast::<32, 16>(self.msi_data.val());
        } else if self.addr.val() == self.a_cnt_rx_tlp.val() {
            self.rd_data.next = self.cnt_rx_tlp.count.val();
        } else if self.addr.val() == self.a_cnt_tx_tlp.val() {
            self.rd_data.next = self.cnt_tx_tlp.count.val();
        } else if self.addr.val() == self.a_cnt_ur_cpl.val() {
            self.rd_data.next = self.cnt_ur_cpl.count.val();
        } else if self.addr.val() == self.a_cnt_posted_dropped.val() {
            self.rd_data.next = self.cnt_posted_dropped.count.val();
        } else if self.addr.val() == self.a_cnt_malformed.val() {
            self.rd_data.next = self.cnt_malformed.count.val();
        } else if self.addr.val() == self.a_cnt_poisoned.val() {
            self.rd_data.next = self.cnt_poisoned.count.val();
        } else if self.addr.val() == self.a_cnt_msg.val() {
            self.rd_data.next = self.cnt_msg.count.val();
        } else if self.addr.val() == self.a_cnt_msi_sent.val() {
            self.rd_data.next = self.cnt_msi_sent.count.val();
        }

        // ---- writes ---------------------------------------------------
        self.merged.next = (self.rd_data.val() & !self.wr_mask.val()) | (self.wr_data.val() & self.wr_mask.val());
        self.msi_wr_en.next = false;
        self.msi_wr_sel.next = 0.into();
        self.msi_wr_data.next = self.wr_data.val();
        self.msi_wr_mask.next = self.wr_mask.val();
        self.cnt_rx_tlp.clear.next = false;
        self.cnt_tx_tlp.clear.next = false;
        self.cnt_ur_cpl.clear.next = false;
        self.cnt_posted_dropped.clear.next = false;
        self.cnt_malformed.clear.next = false;
        self.cnt_poisoned.clear.next = false;
        self.cnt_msg.clear.next = false;
        self.cnt_msi_sent.clear.next = false;
        if self.wr_en.val() {
            if self.addr.val() == self.a_scratch0.val() {
                self.scratch0.d.next = self.merged.val();
            } else if self.addr.val() == self.a_scratch1.val() {
                self.scratch1.d.next = self.merged.val();
            } else if self.addr.val() == self.a_scratch2.val() {
                self.scratch2.d.next = self.merged.val();
            } else if self.addr.val() == self.a_scratch3.val() {
                self.scratch3.d.next = self.merged.val();
            } else if self.addr.val() == self.a_control.val() {
                self.control.d.next = self.merged.val() & self.m_control.val();
            } else if self.addr.val() == self.a_msi_lo.val() {
                self.msi_wr_en.next = true;
                self.msi_wr_sel.next = 0.into();
            } else if self.addr.val() == self.a_msi_hi.val() {
                self.msi_wr_en.next = true;
                self.msi_wr_sel.next = 1.into();
            } else if self.addr.val() == self.a_msi_data.val() {
                self.msi_wr_en.next = true;
                self.msi_wr_sel.next = 2.into();
            } else if self.addr.val() == self.a_cnt_rx_tlp.val() {
                self.cnt_rx_tlp.clear.next = true;
            } else if self.addr.val() == self.a_cnt_tx_tlp.val() {
                self.cnt_tx_tlp.clear.next = true;
            } else if self.addr.val() == self.a_cnt_ur_cpl.val() {
                self.cnt_ur_cpl.clear.next = true;
            } else if self.addr.val() == self.a_cnt_posted_dropped.val() {
                self.cnt_posted_dropped.clear.next = true;
            } else if self.addr.val() == self.a_cnt_malformed.val() {
                self.cnt_malformed.clear.next = true;
            } else if self.addr.val() == self.a_cnt_poisoned.val() {
                self.cnt_poisoned.clear.next = true;
            } else if self.addr.val() == self.a_cnt_msg.val() {
                self.cnt_msg.clear.next = true;
            } else if self.addr.val() == self.a_cnt_msi_sent.val() {
                self.cnt_msi_sent.clear.next = true;
            }
        }
        // A trigger that coincides with the send of the previous MSI keeps
        // the vector pending: one more MSI, never a lost one.
        if (self.wr_en.val() & (self.addr.val() == self.a_msi_trigger.val())) | self.irq_request.val() {
            self.msi_pending.d.next = true;
        } else if self.msi_sent.val() {
            self.msi_pending.d.next = false;
        }
        if self.reset.val() {
            self.scratch0.d.next = 0.into();
            self.scratch1.d.next = 0.into();
            self.scratch2.d.next = 0.into();
            self.scratch3.d.next = 0.into();
            self.control.d.next = 0.into();
            self.msi_pending.d.next = false;
        }
        self.msi_request.next = self.msi_pending.q.val() & !self.control.q.val().get_bit(0);
    }
}
