//! The card's network side from the host: the encapsulation pipeline's
//! per-tenant context and path tables, the decapsulation pipeline's VNI
//! table, their counters, and the tagged cache's miss records as they
//! arrive on the miss queue. Registers and formats from `offcard_regs`.

use crate::card::Card;
use crate::transport::{CardTransport, Result, TransportError};
use offcard_regs::{decap, encap, Access, Register};

pub use offcard_regs::formats::{MissRecord, TenantContext, TunnelContext};

pub struct NetCtl<'a, T: CardTransport> {
    card: &'a mut Card<T>,
}

impl<'a, T: CardTransport> NetCtl<'a, T> {
    pub fn new(card: &'a mut Card<T>) -> Self {
        NetCtl { card }
    }

    fn check_tenant(t: usize) -> Result<()> {
        if t as u32 >= encap::TENANTS {
            return Err(TransportError::Other(format!("tenant {t} out of range (the card has {} tenants)", encap::TENANTS)));
        }
        Ok(())
    }

    /// Program tenant `t`'s context, policy and path table, then enable or
    /// disable it (a disabled tenant's frames are dropped and counted).
    pub fn program_tenant(&mut self, t: usize, cfg: &TenantContext) -> Result<()> {
        Self::check_tenant(t)?;
        for (off, v) in cfg.register_writes(t) {
            self.card.write(off, v)?;
        }
        let en = self.card.read(encap::TENANT_ENABLE)?;
        let en = if cfg.enabled { en | 1 << t } else { en & !(1 << t) };
        self.card.write(encap::TENANT_ENABLE, en)
    }

    /// Mark tenant `t`'s bad paths (bit i: path-table entry i); traffic moves off them.
    pub fn set_bad_paths(&mut self, t: usize, bad: u8) -> Result<()> {
        Self::check_tenant(t)?;
        self.card.write(encap::TENANT_BASE + t as u32 * encap::TENANT_STRIDE + encap::T_BAD_PATHS, bad as u32)
    }

    /// Replace tenant `t`'s path table (the outer UDP source ports).
    pub fn set_path_table(&mut self, t: usize, ports: &[u16]) -> Result<()> {
        Self::check_tenant(t)?;
        if ports.is_empty() || ports.len() > encap::PATHS as usize {
            return Err(TransportError::Other(format!("a path table has 1..={} entries, not {}", encap::PATHS, ports.len())));
        }
        // Fewer entries than the table holds repeat, so every entry is one of them.
        let full: Vec<u16> = (0..encap::PATHS as usize).map(|i| ports[i % ports.len()]).collect();
        let base = encap::TENANT_BASE + t as u32 * encap::TENANT_STRIDE;
        for k in 0..encap::PATHS as usize / 2 {
            self.card.write(base + encap::T_PATHS + 4 * k as u32, full[2 * k] as u32 | (full[2 * k + 1] as u32) << 16)?;
        }
        Ok(())
    }

    /// Map VNI `vni` to `tenant` and card-to-host queue `queue` in VNI-table entry `entry`.
    pub fn map_vni(&mut self, entry: usize, vni: u32, tenant: u8, queue: u8) -> Result<()> {
        if entry as u32 >= decap::VNI_ENTRIES || vni > decap::VNI_MASK || tenant as u32 >= encap::TENANTS || queue > 3 {
            return Err(TransportError::Other(format!("bad VNI entry {entry}: vni {vni:#x} tenant {tenant} queue {queue}")));
        }
        self.card.write(decap::VNI_TABLE + 4 * entry as u32, decap::vni_entry(vni, tenant as u32, queue as u32))
    }

    pub fn unmap_vni(&mut self, entry: usize) -> Result<()> {
        self.card.write(decap::VNI_TABLE + 4 * entry as u32, 0)
    }

    fn counters(&mut self, regs: &[Register]) -> Result<Vec<(&'static str, u32)>> {
        let mut v = vec![];
        for r in regs.iter().filter(|r| r.name.contains("CNT_") && r.access != Access::WriteTrigger) {
            v.push((r.name, self.card.read(r.offset)?));
        }
        Ok(v)
    }

    /// Encapsulation counters by register name.
    pub fn encap_counters(&mut self) -> Result<Vec<(&'static str, u32)>> {
        self.counters(encap::ENCAP_REGISTERS)
    }

    /// Decapsulation counters (frames, bytes and drops per reason) by register name.
    pub fn decap_counters(&mut self) -> Result<Vec<(&'static str, u32)>> {
        self.counters(decap::DECAP_REGISTERS)
    }
}
