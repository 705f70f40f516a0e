//! Reference model of the TLP endpoint, configuration space and BAR0 register
//! file, written from the rules in docs/tlp.md independently of the HDL.
//!
//! It consumes the same beats the card receives and predicts, in order,
//! every TLP the card must send (completions and MSI writes) and every
//! counter. Tests compare the Verilated card against it TLP for TLP.

use offcard_hdl::regmap::{self, cfg, tlp::*, *};
use offcard_sim::tlp::{read_byte_count, Beat};

/// Counter indices, in BAR0 order.
pub const COUNTERS: [u32; 8] = [
    REG_CNT_RX_TLP,
    REG_CNT_TX_TLP,
    REG_CNT_UR_CPL,
    REG_CNT_POSTED_DROPPED,
    REG_CNT_MALFORMED,
    REG_CNT_POISONED,
    REG_CNT_MSG,
    REG_CNT_MSI_SENT,
];

#[derive(Clone, Debug, Default)]
pub struct EndpointModel {
    // BAR0
    pub scratch: [u32; 4],
    pub control: u32,
    pub msi_pending: bool,
    pub counters: [u32; 8],
    // configuration space
    pub command: u16,
    pub bar0_lo: u16,
    pub bar0_hi: u32,
    pub int_line: u8,
    pub msi_en: bool,
    pub msi_mme: u8,
    pub msi_lo: u32,
    pub msi_hi: u32,
    pub msi_data: u16,
    pub devctl: u16,
    pub linkctl: u16,
    pub bus_dev: u16,
    // framing
    in_packet: bool,
    /// The card's RX demultiplexer sends completions to the DMA engine.
    to_dma: bool,
    dws: [u32; 6],
    beat: u32,
    dwcount: u32,
    /// TLPs the card must send, in order.
    pub expected: Vec<Vec<u32>>,
}

fn cnt(model: &mut EndpointModel, reg: u32) {
    let i = COUNTERS.iter().position(|&r| r == reg).unwrap();
    model.counters[i] = model.counters[i].saturating_add(1);
}

fn mask(be: u32) -> u32 {
    (0..4).filter(|i| be >> i & 1 != 0).map(|i| 0xffu32 << (8 * i)).fold(0, |a, b| a | b)
}

impl EndpointModel {
    pub fn new() -> Self {
        EndpointModel { devctl: 0b010 << 12, ..Default::default() }
    }

    fn mem_enable(&self) -> bool {
        self.command & cfg::COMMAND_MEM_ENABLE != 0
    }
    fn bus_master(&self) -> bool {
        self.command & cfg::COMMAND_BUS_MASTER != 0
    }
    pub fn bar0_base(&self) -> u64 {
        ((self.bar0_hi as u64) << 32) | ((self.bar0_lo as u64) << 16)
    }
    fn status(&self) -> u32 {
        self.msi_pending as u32
            | (self.bus_master() as u32) << 1
            | (self.msi_en as u32) << 2
            | (self.mem_enable() as u32) << 3
    }

    /// BAR0 register read by DW index.
    pub fn reg_read(&self, dw: u32) -> u32 {
        let off = dw * 4;
        if let Some(i) = COUNTERS.iter().position(|&r| r == off) {
            return self.counters[i];
        }
        match off {
            REG_ID => CARD_MAGIC,
            REG_VERSION => CARD_VERSION,
            REG_CAPS => CARD_CAPS,
            REG_SCRATCH0 => self.scratch[0],
            REG_SCRATCH1 => self.scratch[1],
            REG_SCRATCH2 => self.scratch[2],
            REG_SCRATCH3 => self.scratch[3],
            REG_CONTROL => self.control,
            REG_STATUS => self.status(),
            REG_MSI_ADDR_LO => self.msi_lo,
            REG_MSI_ADDR_HI => self.msi_hi,
            REG_MSI_DATA => self.msi_data as u32,
            _ => 0,
        }
    }

    fn reg_write(&mut self, dw: u32, data: u32, be: u32) {
        let off = dw * 4;
        let m = mask(be);
        let merged = (self.reg_read(dw) & !m) | (data & m);
        if let Some(i) = COUNTERS.iter().position(|&r| r == off) {
            self.counters[i] = 0;
            return;
        }
        match off {
            REG_SCRATCH0 => self.scratch[0] = merged,
            REG_SCRATCH1 => self.scratch[1] = merged,
            REG_SCRATCH2 => self.scratch[2] = merged,
            REG_SCRATCH3 => self.scratch[3] = merged,
            REG_CONTROL => self.control = merged & CONTROL_MSI_MASK,
            REG_MSI_ADDR_LO => self.msi_lo = merged & !3,
            REG_MSI_ADDR_HI => self.msi_hi = merged,
            REG_MSI_DATA => self.msi_data = merged as u16,
            REG_MSI_TRIGGER => self.msi_pending = true,
            _ => {}
        }
    }

    /// Configuration read by DW index (extended register number << 6 | register).
    pub fn cfg_read(&self, dw: u32) -> u32 {
        match (dw * 4) as u16 {
            cfg::VENDOR_DEVICE => ((DEVICE_ID as u32) << 16) | VENDOR_ID as u32,
            cfg::COMMAND_STATUS => ((cfg::STATUS_CAP_LIST as u32) << 16) | self.command as u32,
            cfg::CLASS_REV => (CLASS_CODE << 8) | REVISION_ID as u32,
            cfg::BAR0 => ((self.bar0_lo as u32) << 16) | cfg::BAR0_FLAGS,
            cfg::BAR1 => self.bar0_hi,
            cfg::SUBSYSTEM => ((SUBSYSTEM_ID as u32) << 16) | SUBSYSTEM_VENDOR_ID as u32,
            cfg::CAP_PTR => cfg::MSI_CAP as u32,
            cfg::INTERRUPT => self.int_line as u32,
            cfg::MSI_CAP => {
                ((cfg::MSI_CTRL_64BIT as u32) << 16)
                    | ((cfg::PCIE_CAP as u32) << 8)
                    | 0x05
                    | (self.msi_mme as u32) << 20
                    | (self.msi_en as u32) << 16
            }
            cfg::MSI_ADDR_LO => self.msi_lo,
            cfg::MSI_ADDR_HI => self.msi_hi,
            cfg::MSI_DATA => self.msi_data as u32,
            cfg::PCIE_CAP => (2 << 16) | 0x10,
            cfg::PCIE_DEVCAP => (1 << 15) | cfg::DEVCAP_MPS_256,
            cfg::PCIE_DEVCTL => self.devctl as u32,
            cfg::PCIE_LINKCAP => cfg::LINKCAP_GEN2_X1,
            cfg::PCIE_LINKCTL => 0x0012_0000 | self.linkctl as u32,
            _ => 0,
        }
    }

    fn cfg_write(&mut self, dw: u32, data: u32, be: u32) {
        let m = mask(be);
        let merged = (self.cfg_read(dw) & !m) | (data & m);
        match (dw * 4) as u16 {
            cfg::COMMAND_STATUS => self.command = merged as u16 & 0x0546,
            cfg::BAR0 => self.bar0_lo = (merged >> 16) as u16,
            cfg::BAR1 => self.bar0_hi = merged,
            cfg::INTERRUPT => self.int_line = merged as u8,
            cfg::MSI_CAP => {
                self.msi_en = merged >> 16 & 1 != 0;
                self.msi_mme = (merged >> 20 & 7) as u8;
            }
            cfg::PCIE_DEVCTL => self.devctl = merged as u16 & 0x7fff,
            cfg::PCIE_LINKCTL => self.linkctl = merged as u16,
            cfg::MSI_ADDR_LO => self.msi_lo = merged & !3,
            cfg::MSI_ADDR_HI => self.msi_hi = merged,
            cfg::MSI_DATA => self.msi_data = merged as u16,
            _ => {}
        }
    }

    /// Feed one beat the card accepts.
    pub fn beat(&mut self, b: &Beat) {
        // Completions (Type 0101x, 3DW Fmt) go to the DMA engine, beats
        // up to their EOP with them; the endpoint never sees them.
        let d0 = b.data as u32;
        let route_dma = if b.sop { (d0 >> 25) & 0xf == 5 && d0 >> 29 & 1 == 0 && d0 >> 31 == 0 } else { self.to_dma };
        self.to_dma = route_dma && !b.eop;
        if route_dma {
            return;
        }
        let keep = (b.keep & 1) as u32 + (b.keep >> 1 & 1) as u32;
        if self.in_packet && b.sop {
            // A new TLP before EOP: the old one ends truncated.
            self.decode(true);
            self.in_packet = false;
        }
        if !self.in_packet {
            self.msi_check();
            if !b.sop {
                cnt(self, REG_CNT_MALFORMED);
                return;
            }
            self.dws = [b.data as u32, (b.data >> 32) as u32, 0, 0, 0, 0];
            self.dwcount = keep;
            self.beat = 1;
            self.in_packet = true;
        } else {
            if self.beat == 1 {
                self.dws[2] = b.data as u32;
                self.dws[3] = (b.data >> 32) as u32;
            } else if self.beat == 2 {
                self.dws[4] = b.data as u32;
                self.dws[5] = (b.data >> 32) as u32;
            }
            if self.beat != 3 {
                self.beat += 1;
            }
            if self.dwcount < 4000 {
                self.dwcount += keep;
            }
        }
        if b.eop {
            self.decode(false);
            self.in_packet = false;
            self.msi_check();
        }
    }

    /// The card sends a pending MSI whenever it is idle and allowed to.
    fn msi_check(&mut self) {
        if self.msi_pending && self.control & CONTROL_MSI_MASK == 0 && self.bus_master() && self.msi_en {
            let four = self.msi_hi != 0;
            let mut t = vec![if four { 0x6000_0001 } else { 0x4000_0001 }, ((self.bus_dev as u32) << 16) | 0xf];
            if four {
                t.push(self.msi_hi);
            }
            t.push(self.msi_lo);
            t.push(self.msi_data as u32);
            self.expected.push(t);
            self.msi_pending = false;
            cnt(self, REG_CNT_MSI_SENT);
            cnt(self, REG_CNT_TX_TLP);
        }
    }

    fn decode(&mut self, truncated: bool) {
        let d = self.dws;
        let fmt = d[0] >> 29;
        let typ = (d[0] >> 24) & 0x1f;
        let td = d[0] >> 15 & 1 != 0;
        let ep = d[0] >> 14 & 1 != 0;
        let len = d[0] & 0x3ff;
        let len_dw = if len == 0 { 1024 } else { len };
        let fbe = d[1] & 0xf;
        let lbe = d[1] >> 4 & 0xf;
        let is4 = fmt & 1 != 0;
        let wd = fmt & 2 != 0;
        let pfx = fmt & 4 != 0;
        let (addr_lo, addr_hi, data0, data1) = if is4 { (d[3], d[2], d[4], d[5]) } else { (d[2], 0, d[3], d[4]) };
        let expected_dw = (if is4 { 4 } else { 3 }) + if wd { len_dw } else { 0 } + td as u32;
        let len_ok = !truncated && self.dwcount == expected_dw;
        let answerable = self.dwcount >= 2;
        let t = |v: u8| typ == v as u32 && !pfx;
        let is_mrd = t(TYPE_MEM) && !wd;
        let is_mwr = t(TYPE_MEM) && wd;
        let is_mrdlk = t(TYPE_MEM_LOCKED) && !wd;
        let is_io = t(TYPE_IO) && !is4;
        let is_cfg0 = t(TYPE_CFG0) && !is4;
        let is_cfg1 = t(TYPE_CFG1) && !is4;
        let is_msg = typ & TYPE_MSG_MASK as u32 == TYPE_MSG as u32 && !pfx && is4;
        let known = is_mrd || is_mwr || is_mrdlk || is_io || is_cfg0 || is_cfg1 || is_msg;
        let non_posted = is_mrd || is_mrdlk || is_io || is_cfg0 || is_cfg1;
        let dwaddr = (addr_lo >> 2) & 0x3fff;
        let addr = ((addr_hi as u64) << 32) | addr_lo as u64;
        let mem_ok = self.mem_enable()
            && addr >> 16 == self.bar0_base() >> 16
            && !ep
            && len_ok
            && ((len == 1 && lbe == 0) || (len == 2 && fbe != 0 && lbe != 0 && dwaddr != 0x3fff));
        let cfg_ok = is_cfg0 && (d[2] >> 16 & 7) == 0 && len == 1 && lbe == 0 && !ep && len_ok;
        let req_ok = (is_mrd && mem_ok) || cfg_ok;

        cnt(self, REG_CNT_RX_TLP);
        if !known || !len_ok {
            cnt(self, REG_CNT_MALFORMED);
        }
        if known && ep {
            cnt(self, REG_CNT_POISONED);
        }
        if is_msg {
            cnt(self, REG_CNT_MSG);
        }
        if is_mwr && len_ok && !mem_ok {
            cnt(self, REG_CNT_POSTED_DROPPED);
        }
        if non_posted && answerable && !req_ok {
            cnt(self, REG_CNT_UR_CPL);
        }

        if non_posted && answerable {
            let cfg_dw = ((d[2] >> 8 & 0xf) << 6) | (d[2] >> 2 & 0x3f);
            let mut rdata = vec![];
            if is_mrd && mem_ok {
                rdata.push(self.reg_read(dwaddr));
                if len == 2 {
                    rdata.push(self.reg_read(dwaddr + 1));
                }
            } else if cfg_ok && wd {
                self.cfg_write(cfg_dw, data0, fbe);
                self.bus_dev = (d[2] >> 16) as u16;
            } else if cfg_ok {
                rdata.push(self.cfg_read(cfg_dw));
            }
            let (bc, la) = if is_cfg0 || is_cfg1 || is_io {
                (4, 0)
            } else {
                // The byte count and lower address rules of spec 2.2.9, as
                // the root-complex model's codec computes them.
                let (bc, la) = read_byte_count(addr_lo as u64, len_dw as u16, fbe as u8, lbe as u8);
                (bc as u32, la as u32)
            };
            let attrs = d[0] & 0x0074_3000;
            let dw0 = if is_mrdlk {
                ((TYPE_CPL_LOCKED as u32) << 24) | attrs
            } else if !rdata.is_empty() {
                (0b010 << 29) | ((TYPE_CPL as u32) << 24) | attrs | rdata.len() as u32
            } else {
                ((TYPE_CPL as u32) << 24) | attrs
            };
            let status = if req_ok { CPL_SC } else { CPL_UR } as u32;
            let mut c = vec![dw0, ((self.bus_dev as u32) << 16) | (status << 13) | bc, (d[1] & 0xffff_ff00) | la];
            c.extend(rdata);
            self.expected.push(c);
            cnt(self, REG_CNT_TX_TLP);
        } else if is_mwr && mem_ok {
            self.reg_write(dwaddr, data0, fbe);
            if len == 2 {
                self.reg_write(dwaddr + 1, data1, lbe);
            }
        }
        let _ = regmap::BAR0_SIZE;
    }
}
