//! x86_64 boot setup: 64-bit entry of a bzImage per the Linux boot protocol
//! (identity page tables, GDT, boot_params/zero page, CPUID, MSRs, LAPIC LINT pins).

use anyhow::{bail, Context, Result};
use kvm_bindings::{kvm_fpu, kvm_msr_entry, kvm_regs, kvm_segment, kvm_sregs, CpuId, Msrs, KVM_MAX_CPUID_ENTRIES};
use kvm_ioctls::{Kvm, VcpuFd};
use linux_loader::loader::bootparam::{boot_params, setup_header};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

pub const BOOT_GDT_START: u64 = 0x500;
pub const BOOT_IDT_START: u64 = 0x520;
pub const ZERO_PAGE_START: u64 = 0x7000;
pub const BOOT_STACK_POINTER: u64 = 0x8ff0;
pub const PML4_START: u64 = 0x9000;
pub const PDPTE_START: u64 = 0xa000;
pub const PDE_START: u64 = 0xb000;
pub const CMDLINE_START: u64 = 0x20000;
pub const CMDLINE_MAX_SIZE: usize = 0x10000;
pub const HIMEM_START: u64 = 0x10_0000;
pub const EBDA_START: u64 = 0x9fc00;

const X86_CR0_PE: u64 = 0x1;
const X86_CR0_ET: u64 = 0x10;
const X86_CR0_PG: u64 = 0x8000_0000;
const X86_CR4_PAE: u64 = 0x20;
const EFER_LME: u64 = 0x100;
const EFER_LMA: u64 = 0x400;

const MSR_IA32_MISC_ENABLE: u32 = 0x1a0;
const MSR_MTRR_DEF_TYPE: u32 = 0x2ff;

fn gdt_entry(flags: u16, base: u32, limit: u32) -> u64 {
    ((u64::from(base) & 0xff00_0000) << (56 - 24))
        | ((u64::from(flags) & 0x0000_f0ff) << 40)
        | ((u64::from(limit) & 0x000f_0000) << (48 - 16))
        | ((u64::from(base) & 0x00ff_ffff) << 16)
        | (u64::from(limit) & 0x0000_ffff)
}

fn segment_from_gdt(entry: u64, index: u8) -> kvm_segment {
    let base = ((entry & 0xff00_0000_0000_0000) >> 32) | ((entry & 0x0000_00ff_0000_0000) >> 16) | ((entry & 0x0000_0000_ffff_0000) >> 16);
    let g = ((entry & 0x0080_0000_0000_0000) >> 55) as u8;
    let mut limit = (((entry & 0x000f_0000_0000_0000) >> 32) | (entry & 0xffff)) as u32;
    if g == 1 {
        limit = (limit << 12) | 0xfff;
    }
    let present = ((entry & 0x0000_8000_0000_0000) >> 47) as u8;
    kvm_segment {
        base,
        limit,
        selector: u16::from(index) * 8,
        type_: ((entry & 0x0000_0f00_0000_0000) >> 40) as u8,
        present,
        dpl: ((entry & 0x0000_6000_0000_0000) >> 45) as u8,
        db: ((entry & 0x0040_0000_0000_0000) >> 54) as u8,
        s: ((entry & 0x0000_1000_0000_0000) >> 44) as u8,
        l: ((entry & 0x0020_0000_0000_0000) >> 53) as u8,
        g,
        avl: ((entry & 0x0010_0000_0000_0000) >> 52) as u8,
        padding: 0,
        unusable: if present == 0 { 1 } else { 0 },
    }
}

/// Write GDT/IDT and identity page tables (first 4 GiB, 2 MiB pages); set long-mode sregs.
pub fn setup_sregs(mem: &GuestMemoryMmap, vcpu: &VcpuFd) -> Result<()> {
    let gdt = [
        gdt_entry(0, 0, 0),
        gdt_entry(0xa09b, 0, 0xfffff), // code, 64-bit
        gdt_entry(0xc093, 0, 0xfffff), // data
        gdt_entry(0x808b, 0, 0xfffff), // TSS
    ];
    for (i, e) in gdt.iter().enumerate() {
        mem.write_obj(*e, GuestAddress(BOOT_GDT_START + (i as u64) * 8)).context("writing GDT")?;
    }
    mem.write_obj(0u64, GuestAddress(BOOT_IDT_START)).context("writing IDT")?;
    // Identity map of the first 4 GiB (RAM and the 32-bit MMIO hole) with 2 MiB pages:
    // one PML4 entry, four PDPT entries, four page directories at 0xb000..0xf000.
    mem.write_obj(PDPTE_START | 0x03, GuestAddress(PML4_START))?;
    for d in 0..4u64 {
        mem.write_obj((PDE_START + d * 0x1000) | 0x03, GuestAddress(PDPTE_START + d * 8))?;
        for i in 0..512u64 {
            mem.write_obj((((d << 9) + i) << 21) | 0x83, GuestAddress(PDE_START + d * 0x1000 + i * 8))?;
        }
    }

    let mut sregs: kvm_sregs = vcpu.get_sregs().context("KVM_GET_SREGS")?;
    let code = segment_from_gdt(gdt[1], 1);
    let data = segment_from_gdt(gdt[2], 2);
    let tss = segment_from_gdt(gdt[3], 3);
    sregs.gdt.base = BOOT_GDT_START;
    sregs.gdt.limit = (gdt.len() * 8 - 1) as u16;
    sregs.idt.base = BOOT_IDT_START;
    sregs.idt.limit = 7;
    sregs.cs = code;
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.ss = data;
    sregs.tr = tss;
    sregs.cr0 |= X86_CR0_PE | X86_CR0_ET;
    sregs.efer |= EFER_LME | EFER_LMA;
    sregs.cr3 = PML4_START;
    sregs.cr4 |= X86_CR4_PAE;
    sregs.cr0 |= X86_CR0_PG;
    vcpu.set_sregs(&sregs).context("KVM_SET_SREGS")?;
    Ok(())
}

pub fn setup_regs(vcpu: &VcpuFd, entry: u64) -> Result<()> {
    let regs = kvm_regs {
        rflags: 0x2,
        rip: entry,
        rsp: BOOT_STACK_POINTER,
        rbp: BOOT_STACK_POINTER,
        rsi: ZERO_PAGE_START,
        ..Default::default()
    };
    vcpu.set_regs(&regs).context("KVM_SET_REGS")
}

pub fn setup_fpu(vcpu: &VcpuFd) -> Result<()> {
    let fpu = kvm_fpu { fcw: 0x37f, mxcsr: 0x1f80, ..Default::default() };
    vcpu.set_fpu(&fpu).context("KVM_SET_FPU")
}

pub fn setup_msrs(vcpu: &VcpuFd) -> Result<()> {
    let entries = [
        kvm_msr_entry { index: MSR_IA32_MISC_ENABLE, data: 1, ..Default::default() },
        kvm_msr_entry { index: MSR_MTRR_DEF_TYPE, data: (1 << 11) | 6, ..Default::default() },
    ];
    let msrs = Msrs::from_entries(&entries).map_err(|e| anyhow::anyhow!("msrs: {e:?}"))?;
    let n = vcpu.set_msrs(&msrs).context("KVM_SET_MSRS")?;
    if n != entries.len() {
        bail!("KVM accepted only {n} of {} boot MSRs", entries.len());
    }
    Ok(())
}

/// LINT0 = ExtINT (the PIC), LINT1 = NMI: "virtual wire" mode, as on a PC without MP tables.
pub fn setup_lapic(vcpu: &VcpuFd) -> Result<()> {
    let mut lapic = vcpu.get_lapic().context("KVM_GET_LAPIC")?;
    fn set(regs: &mut [std::os::raw::c_char; 1024], off: usize, mode: u32) {
        let mut b = [0u8; 4];
        for i in 0..4 {
            b[i] = regs[off + i] as u8;
        }
        let v = u32::from_le_bytes(b);
        let v = (v & !0x700) | (mode << 8);
        for (i, x) in v.to_le_bytes().iter().enumerate() {
            regs[off + i] = *x as std::os::raw::c_char;
        }
    }
    set(&mut lapic.regs, 0x350, 7); // LVT LINT0: ExtINT
    set(&mut lapic.regs, 0x360, 4); // LVT LINT1: NMI
    vcpu.set_lapic(&lapic).context("KVM_SET_LAPIC")
}

/// True when KVM runs without hardware virtualization (e.g. the PVM module), where
/// some instructions must be hidden from the guest. Override: OFFCARD_VMM_HIDE_CX16=0/1.
pub fn hide_cx16() -> bool {
    match std::env::var("OFFCARD_VMM_HIDE_CX16").as_deref() {
        Ok("1") => true,
        Ok("0") => false,
        _ => software_kvm(),
    }
}

/// KVM is the PVM module (no VT-x/SVM in this machine): guest ring 0 is emulated, slowly.
pub fn software_kvm() -> bool {
    std::path::Path::new("/sys/module/kvm_pvm").exists()
}

/// The host-supported CPUID with this vCPU's APIC id and the hypervisor bit.
pub fn cpuid_for(kvm: &Kvm, cpu: u8) -> Result<CpuId> {
    let mut cpuid = kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES).context("KVM_GET_SUPPORTED_CPUID")?;
    for e in cpuid.as_mut_slice() {
        match e.function {
            1 => {
                e.ebx = (e.ebx & 0x00ff_ffff) | (u32::from(cpu) << 24);
                e.ecx |= 1 << 31;
                // Hide CMPXCHG16B: under PVM-style nested KVM (no VT-x/SVM, the guest kernel
                // is emulated) KVM's emulator cannot run `lock cmpxchg16b`, which SLUB uses.
                if hide_cx16() {
                    e.ecx &= !(1 << 13);
                }
                // Likewise XSAVE/XRSTOR (and with them AVX) and PCID: fall back to FXSAVE.
                if software_kvm() {
                    // XSAVE, OSXSAVE, AVX, PCID, FMA, F16C, POPCNT, MOVBE, RDRAND, AES,
                    // PCLMULQDQ, SSSE3, SSE4.1, SSE4.2: the emulator lacks most of them.
                    e.ecx &= !((1 << 26) | (1 << 27) | (1 << 28) | (1 << 17) | (1 << 12) | (1 << 29)
                        | (1 << 23) | (1 << 22) | (1 << 30) | (1 << 25) | (1 << 1) | (1 << 9) | (1 << 19) | (1 << 20));
                }
            }
            0xb | 0x1f => e.edx = u32::from(cpu),
            7 if software_kvm() && e.index == 0 => {
                // AVX2, SMEP, SMAP, INVPCID, AVX-512*, and the rest that needs XSAVE state.
                e.ebx &= !((1 << 0) | (1 << 3) | (1 << 8) | (1 << 18) | (1 << 19) | (1 << 23) | (1 << 24) | (1 << 29) | (1 << 5) | (1 << 7) | (1 << 20) | (1 << 10) | (1 << 16) | (1 << 17) | (1 << 21) | (1 << 26) | (1 << 27) | (1 << 28) | (1 << 30) | (1 << 31));
                e.ecx = 0;
                e.edx = 0;
            }
            0x8000_0001 if software_kvm() => {
                // LZCNT, SSE4A, RDTSCP.
                e.ecx &= !((1 << 5) | (1 << 6));
                e.edx &= !(1 << 27);
            }
            0xd if software_kvm() => {
                e.eax = 0;
                e.ebx = 0;
                e.ecx = 0;
                e.edx = 0;
            }
            _ => {}
        }
    }
    Ok(cpuid)
}

/// Fill in the zero page (boot_params) from the kernel's setup header.
pub fn write_boot_params(
    mem: &GuestMemoryMmap,
    hdr: setup_header,
    mem_size: u64,
    cmdline_size: usize,
    initrd: Option<(u64, u64)>,
) -> Result<()> {
    let mut params = boot_params::default();
    params.hdr = hdr;
    params.hdr.type_of_loader = 0xff;
    params.hdr.boot_flag = 0xaa55;
    params.hdr.header = 0x5372_6448;
    params.hdr.cmd_line_ptr = CMDLINE_START as u32;
    params.hdr.cmdline_size = cmdline_size as u32;
    params.hdr.kernel_alignment = 0x0100_0000;
    if let Some((addr, size)) = initrd {
        params.hdr.ramdisk_image = addr as u32;
        params.hdr.ramdisk_size = size as u32;
    }
    let e820 = [(0u64, EBDA_START, 1u32), (EBDA_START, HIMEM_START - EBDA_START, 2), (HIMEM_START, mem_size - HIMEM_START, 1)];
    for (i, (addr, size, ty)) in e820.iter().enumerate() {
        params.e820_table[i].addr = *addr;
        params.e820_table[i].size = *size;
        params.e820_table[i].type_ = *ty;
    }
    params.e820_entries = e820.len() as u8;
    mem.write_obj(params, GuestAddress(ZERO_PAGE_START)).context("writing boot_params")?;
    Ok(())
}
