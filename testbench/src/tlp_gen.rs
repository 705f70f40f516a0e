//! Random TLPs, well-formed and malformed, for the endpoint's fuzz and
//! property tests. Everything comes from the caller's seeded RNG.

use offcard_hdl::regmap::{self, cfg, tlp::*};
use offcard_sim::tlp::{self, Beat};
use rand::Rng;

pub struct TlpGen {
    pub bar0: u64,
    pub requester: u16,
    pub target: u16,
    next_tag: u8,
}

fn register_offset<R: Rng>(rng: &mut R) -> u32 {
    match rng.gen_range(0..10) {
        0..=6 => regmap::BAR0_REGISTERS[rng.gen_range(0..regmap::BAR0_REGISTERS.len())].offset,
        7 => rng.gen_range(0..0x40u32) * 4,
        // Offsets behind the endpoint that no block decodes (the blocks'
        // registers, 0x1000-0x3FFF, have their own tests).
        8 => 0x1100 + rng.gen_range(0..64u32) * 4,
        _ => loop {
            let o = rng.gen_range(0..0x4000u32) * 4;
            if !(0x1000..0x1100).contains(&o) && !(0x1200..0x4000).contains(&o) {
                break o;
            }
        },
    }
}

fn random_be<R: Rng>(rng: &mut R) -> u8 {
    if rng.gen_bool(0.7) {
        0xf
    } else {
        rng.gen_range(0..16)
    }
}

impl TlpGen {
    pub fn new(bar0: u64, requester: u16, target: u16) -> Self {
        TlpGen { bar0, requester, target, next_tag: 0 }
    }

    fn tag(&mut self) -> u8 {
        self.next_tag = self.next_tag.wrapping_add(1);
        self.next_tag
    }

    /// A well-formed BAR0 register access (what a driver does), avoiding
    /// registers that change the card's PCI state.
    pub fn register_access<R: Rng>(&mut self, rng: &mut R) -> Vec<u32> {
        let mut off = register_offset(rng);
        let two = rng.gen_bool(0.3);
        if two && off % 8 == 4 {
            off -= 4;
        }
        let addr = self.bar0 + off as u64;
        let tag = self.tag();
        if rng.gen_bool(0.5) {
            if two {
                tlp::mem_read(self.requester, tag, addr, 2, 0xf, 0xf, false)
            } else {
                tlp::mem_read(self.requester, tag, addr, 1, random_be(rng), 0, false)
            }
        } else {
            let d0: u32 = rng.gen();
            if two {
                tlp::mem_write(self.requester, addr, &[d0, rng.gen()], 0xf, 0xf, false)
            } else {
                tlp::mem_write(self.requester, addr, &[d0], random_be(rng), 0, false)
            }
        }
    }

    /// Any TLP a host might legally send, supported or not.
    pub fn legal<R: Rng>(&mut self, rng: &mut R) -> Vec<u32> {
        let tag = self.tag();
        match rng.gen_range(0..20) {
            0..=9 => self.register_access(rng),
            10 => {
                // Multi-DW or odd-BE reads: UR when unsupported.
                let len = rng.gen_range(1..6);
                let lbe = if len == 1 { 0 } else { rng.gen_range(0..16) };
                tlp::mem_read(self.requester, tag, self.bar0 + register_offset(rng) as u64, len, rng.gen_range(0..16), lbe, rng.gen())
            }
            11 => {
                // Outside BAR0 (32-bit address, or another 64-bit region).
                let addr = if rng.gen() { rng.gen_range(0..0x1_0000_0000u64) } else { self.bar0 ^ (1 << rng.gen_range(16..40)) };
                if rng.gen() {
                    tlp::mem_read(self.requester, tag, addr, 1, 0xf, 0, false)
                } else {
                    tlp::mem_write(self.requester, addr, &[rng.gen()], 0xf, 0, false)
                }
            }
            12 | 13 => {
                let regs = [0u16, 4, 8, 0xc, 0x10, 0x14, 0x2c, 0x34, 0x3c, 0x40, 0x44, 0x48, 0x4c, 0x60, 0x64, 0x68, 0x6c, 0x70];
                let reg = if rng.gen_bool(0.8) { regs[rng.gen_range(0..regs.len())] } else { rng.gen_range(0..1024u16) * 4 };
                let target = if rng.gen_bool(0.9) { self.target } else { self.target | rng.gen_range(1..8) };
                tlp::cfg_read0(self.requester, tag, target, reg)
            }
            14 => {
                // Configuration writes to registers that do not move the card.
                let regs = [cfg::INTERRUPT, cfg::PCIE_DEVCTL, cfg::PCIE_LINKCTL, cfg::MSI_DATA, cfg::VENDOR_DEVICE, 0x100];
                let reg = regs[rng.gen_range(0..regs.len())];
                tlp::cfg_write0(self.requester, tag, self.target, reg, rng.gen(), random_be(rng))
            }
            15 => {
                // Type 1 configuration, I/O, locked read: all Unsupported.
                let mut t = tlp::cfg_read0(self.requester, tag, self.target, 0);
                let (fmt, typ) = [(0u32, TYPE_CFG1), (2, TYPE_CFG1), (0, TYPE_IO), (2, TYPE_IO), (0, TYPE_MEM_LOCKED)][rng.gen_range(0..5)];
                t[0] = (fmt << 29) | ((typ as u32) << 24) | 1;
                if fmt == 2 {
                    t.push(rng.gen());
                }
                t
            }
            16 => {
                // Message (4DW), with or without data.
                let data = rng.gen_bool(0.3);
                let mut t = vec![
                    (if data { 0b011u32 } else { 0b001 } << 29) | ((TYPE_MSG as u32 | rng.gen_range(0..8)) << 24) | data as u32,
                    (self.requester as u32) << 16 | (tag as u32) << 8 | rng.gen_range(0..256u32),
                    rng.gen(),
                    rng.gen(),
                ];
                if data {
                    t.push(rng.gen());
                }
                t
            }
            17 => {
                let n = rng.gen_range(0..3);
                let data: Vec<u32> = (0..n).map(|_| rng.gen()).collect();
                tlp::completion(0x0000, rng.gen_range(0..8), rng.gen_range(0..4096), self.target, tag, rng.gen_range(0..128), &data)
            }
            18 => {
                // Poisoned request.
                let mut t = self.register_access(rng);
                t[0] |= 1 << 14;
                t
            }
            _ => {
                // TLP digest present (TD=1): one extra DW.
                let mut t = self.register_access(rng);
                t[0] |= 1 << 15;
                t.push(rng.gen());
                t
            }
        }
    }

    /// A TLP (as beats) that may be malformed in any way the stream allows.
    pub fn any<R: Rng>(&mut self, rng: &mut R) -> Vec<Beat> {
        let mut t = self.legal(rng);
        match rng.gen_range(0..12) {
            0 => t[0] ^= 1 << rng.gen_range(24..32), // fmt/type bit flip
            1 => t[0] = (t[0] & !0x3ff) | rng.gen_range(0..1024), // wrong length
            2 => {
                let n = rng.gen_range(1..t.len().max(2));
                t.truncate(n); // cut short (EOP early)
            }
            3 => {
                for _ in 0..rng.gen_range(1..5) {
                    t.push(rng.gen()); // trailing garbage
                }
            }
            4 => {
                // Missing EOP: the next TLP's SOP ends this one.
                let mut b = tlp::to_beats(&t);
                b.last_mut().unwrap().eop = false;
                return b;
            }
            5 => {
                // A stray beat outside any TLP, then the TLP.
                let mut b = vec![Beat { data: rng.gen(), keep: 3, sop: false, eop: rng.gen() }];
                b.extend(tlp::to_beats(&t));
                return b;
            }
            6 => t = (0..rng.gen_range(1..8)).map(|_| rng.gen()).collect(), // garbage
            7 => t[1] = rng.gen(), // random requester/tag/byte enables
            _ => {}
        }
        tlp::to_beats(&t)
    }
}
