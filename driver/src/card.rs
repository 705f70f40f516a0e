//! The card API above the transport: identity, scratch test, interrupts,
//! counters. Register names come from `offcard_regs`.

use crate::transport::{CardTransport, Result, TransportError};
use offcard_regs::{self as regmap, *};
use std::time::Duration;

/// Identity the card reports in BAR0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub magic: u32,
    pub version: (u32, u32, u32),
    pub caps: u32,
}

pub struct Card<T: CardTransport> {
    pub transport: T,
}

impl<T: CardTransport> Card<T> {
    /// Wrap a transport and check the card answers with the Offcard magic.
    pub fn open(transport: T) -> Result<Self> {
        let mut c = Card { transport };
        let id = c.identity()?;
        if id.magic != CARD_MAGIC {
            return Err(TransportError::Other(format!("not an Offcard: ID register reads {:#010x}", id.magic)));
        }
        Ok(c)
    }

    pub fn read(&mut self, reg: u32) -> Result<u32> {
        self.transport.bar0_read32(reg)
    }

    pub fn write(&mut self, reg: u32, v: u32) -> Result<()> {
        self.transport.bar0_write32(reg, v)
    }

    pub fn identity(&mut self) -> Result<Identity> {
        let magic = self.read(REG_ID)?;
        let v = self.read(REG_VERSION)?;
        let caps = self.read(REG_CAPS)?;
        Ok(Identity { magic, version: ((v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff), caps })
    }

    /// Walking-ones, walking-zeros and address-in-data patterns through the
    /// scratch registers, in 32- and 64-bit accesses. Returns the number of
    /// patterns checked.
    pub fn scratch_test(&mut self) -> Result<usize> {
        let regs = [REG_SCRATCH0, REG_SCRATCH1, REG_SCRATCH2, REG_SCRATCH3];
        let mut n = 0;
        for bit in 0..32 {
            for (i, &r) in regs.iter().enumerate() {
                let pat = (1u32 << bit) ^ if i % 2 == 1 { u32::MAX } else { 0 };
                self.write(r, pat)?;
            }
            for (i, &r) in regs.iter().enumerate() {
                let pat = (1u32 << bit) ^ if i % 2 == 1 { u32::MAX } else { 0 };
                let got = self.read(r)?;
                if got != pat {
                    return Err(TransportError::Other(format!("scratch {r:#x}: wrote {pat:#010x}, read {got:#010x}")));
                }
                n += 1;
            }
        }
        let v = 0x0123_4567_89ab_cdefu64;
        self.transport.bar0_write64(REG_SCRATCH0, v)?;
        self.transport.bar0_write64(REG_SCRATCH2, !v)?;
        let (a, b) = (self.transport.bar0_read64(REG_SCRATCH0)?, self.transport.bar0_read64(REG_SCRATCH2)?);
        if a != v || b != !v {
            return Err(TransportError::Other(format!("64-bit scratch: read {a:#x} {b:#x}")));
        }
        Ok(n + 2)
    }

    /// Ask the card to send its MSI and wait for it.
    pub fn fire_msi(&mut self, timeout: Duration) -> Result<bool> {
        self.transport.enable_interrupts()?;
        self.write(REG_MSI_TRIGGER, 1)?;
        self.transport.wait_interrupt(timeout)
    }

    /// Every counter register, by name.
    pub fn counters(&mut self) -> Result<Vec<(&'static str, u32)>> {
        let mut v = vec![];
        for r in regmap::BAR0_REGISTERS.iter().filter(|r| r.access == Access::CounterWriteClears) {
            v.push((r.name, self.read(r.offset)?));
        }
        Ok(v)
    }
}
