//! The virtual machine: KVM VM + vCPUs + guest RAM + devices, the run loop, and the
//! KVM side of dirty logging.
//!
//! Layering: `vm` imports `memory`, `dirty` and `devices`; none of them imports `vm`.
//! `snapshot` adds `Vm::snapshot` / `Vm::restore` on top (it imports `vm`, not the
//! other way round).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, Once};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use kvm_bindings::{kvm_pit_config, kvm_userspace_memory_region, KVM_MEM_LOG_DIRTY_PAGES, KVM_PIT_SPEAKER_DUMMY};
use kvm_ioctls::{Kvm, VcpuExit, VcpuFd, VmFd};
use linux_loader::cmdline::Cmdline;
use linux_loader::loader::{load_cmdline, BzImage, Elf, KernelLoader};
use vm_memory::{Bytes, GuestAddress};
use vmm_sys_util::eventfd::EventFd;

use crate::devices::serial::SERIAL_IRQ;
use crate::devices::virtio::mmio::{MmioTransport, VIRTIO_MMIO_SIZE};
use crate::devices::virtio::net::{Net, NetBackend};
use crate::devices::{Devices, IoAction};
use crate::dirty::{self, DeviceWriteLog, DirtyLog, DirtyRange, DirtyTracker};
use crate::memory::GuestMem;
use crate::x86;

/// Default kernel command line: serial console, reboot through the i8042 (the guest's
/// "power off"), no ACPI/PCI probing (this VMM provides neither).
pub const DEFAULT_CMDLINE: &str =
    "console=ttyS0 reboot=k panic=-1 acpi=off pci=off nomodeset i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd tsc=reliable lpj=5000000 rdinit=/init";

/// [`DEFAULT_CMDLINE`] plus, on software KVM (PVM, no VT-x/SVM, guest ring 0 emulated
/// by KVM's instruction emulator), options that keep the kernel off instructions the
/// emulator lacks and skip slow probing.
pub fn default_cmdline() -> String {
    let mut s = DEFAULT_CMDLINE.to_string();
    if x86::software_kvm() {
        // clearcpuid: instructions KVM's emulator lacks (XSAVE, SSSE3 code in the
        // built-in blake2s, ...). ftrace_check_for_weak_functions walks all ~37k ftrace
        // records through kallsyms in a worker boot waits for (half an hour emulated);
        // init_kprobe_trace waits minutes on the kprobe optimizer.
        s.push_str(
            " clearcpuid=xsave,smap,smep,popcnt,ssse3,sse4_1,sse4_2,avx,avx2,aes,pclmulqdq,cx16 \
             mitigations=off nofsgsbase nowatchdog nosoftlockup sysctl.kernel.hung_task_timeout_secs=0 lsm=capability audit=0 \
             initcall_blacklist=ftrace_check_for_weak_functions,init_kprobe_trace",
        );
    }
    s
}

/// Guest physical address of the first virtio-mmio window (in the 32-bit MMIO hole).
pub const VIRTIO_MMIO_BASE: u64 = 0xd000_0000;

#[derive(Debug, Clone)]
pub struct VmConfig {
    pub mem_mib: u64,
    pub vcpus: u8,
    /// Back guest RAM with this file instead of an anonymous memfd.
    pub mem_file: Option<PathBuf>,
    /// Echo the console to stdout as it is produced.
    pub echo_console: bool,
}

impl Default for VmConfig {
    fn default() -> Self {
        VmConfig { mem_mib: 128, vcpus: 1, mem_file: None, echo_console: false }
    }
}

/// Why [`Vm::run`] returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// The guest reset the machine (i8042 0xFE, triple fault, KVM system event): its power-off.
    Shutdown,
    /// The guest wrote this byte to the debug-exit port 0xf4.
    DebugExit(u8),
    /// The console printed the watched pattern; the VM is paused and can be resumed.
    ConsoleMatch,
    /// The timeout passed; the VM is paused and can be resumed.
    Timeout,
}

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub timeout: Option<Duration>,
    /// Pause the VM as soon as the console output ends with this text.
    pub stop_on_console: Option<String>,
}

pub struct Vm {
    pub(crate) kvm: Kvm,
    pub(crate) vm: VmFd,
    pub(crate) vcpus: Vec<VcpuFd>,
    pub(crate) mem: GuestMem,
    pub(crate) devices: Arc<Devices>,
    pub(crate) serial_evt: EventFd,
    pub(crate) slot_flags: u32,
    pub(crate) config: VmConfig,
    /// Dirty pages per consumer, while KVM logs them (`None`: logging off).
    pub(crate) dirty: Option<DirtyLog>,
    pub(crate) snap_parent: Option<PathBuf>,
    /// Guest memory written by the VMM's devices, merged into the dirty log.
    pub(crate) device_writes: DeviceWriteLog,
}

impl Vm {
    /// Create the VM, its memory, in-kernel PIC/IOAPIC/PIT, vCPUs and the serial port.
    pub fn new(config: VmConfig) -> Result<Vm> {
        Self::create(config, None)
    }

    pub(crate) fn create(config: VmConfig, serial_state: Option<&vm_superio::serial::SerialState>) -> Result<Vm> {
        if config.vcpus == 0 || config.vcpus > 32 {
            bail!("vcpus must be 1..=32, got {}", config.vcpus);
        }
        let kvm = Kvm::new().map_err(|e| anyhow!("cannot open /dev/kvm: {e} (is KVM available and accessible?)"))?;
        let vm = kvm.create_vm().context("KVM_CREATE_VM")?;
        vm.set_tss_address(0xfffb_d000).context("KVM_SET_TSS_ADDR")?;
        vm.set_identity_map_address(0xfffb_c000).context("KVM_SET_IDENTITY_MAP_ADDR")?;
        vm.create_irq_chip().context("KVM_CREATE_IRQCHIP")?;
        vm.create_pit2(kvm_pit_config { flags: KVM_PIT_SPEAKER_DUMMY, ..Default::default() }).context("KVM_CREATE_PIT2")?;

        let size = config.mem_mib << 20;
        let mem = match &config.mem_file {
            Some(p) => GuestMem::new_file(p, size)?,
            None => GuestMem::new_memfd(size)?,
        };
        let mut this_vm = Vm {
            kvm,
            vm,
            vcpus: Vec::new(),
            mem,
            devices: Arc::new(Devices::new(EventFd::new(0)?, config.echo_console)),
            serial_evt: EventFd::new(libc::EFD_NONBLOCK).context("eventfd")?,
            slot_flags: 0,
            config: config.clone(),
            dirty: None,
            snap_parent: None,
            device_writes: Default::default(),
        };
        this_vm.set_slot_flags(0)?;

        let evt = this_vm.serial_evt.try_clone().context("eventfd clone")?;
        this_vm.vm.register_irqfd(&this_vm.serial_evt, SERIAL_IRQ).context("KVM_IRQFD for serial")?;
        this_vm.devices = Arc::new(match serial_state {
            Some(st) => Devices::from_serial_state(evt, config.echo_console, st),
            None => Devices::new(evt, config.echo_console),
        });

        for id in 0..config.vcpus {
            let vcpu = this_vm.vm.create_vcpu(u64::from(id)).with_context(|| format!("KVM_CREATE_VCPU {id}"))?;
            let cpuid = x86::cpuid_for(&this_vm.kvm, id)?;
            vcpu.set_cpuid2(&cpuid).context("KVM_SET_CPUID2")?;
            this_vm.vcpus.push(vcpu);
        }
        Ok(this_vm)
    }

    pub(crate) fn set_slot_flags(&mut self, flags: u32) -> Result<()> {
        let region = kvm_userspace_memory_region {
            slot: 0,
            flags,
            guest_phys_addr: 0,
            memory_size: self.mem.size(),
            userspace_addr: self.mem.host_addr() as u64,
        };
        // SAFETY: the mapping outlives the VM (both are owned by self; vm is dropped first
        // because KVM keeps only a reference it drops with the VM fd).
        unsafe { self.vm.set_user_memory_region(region) }.context("KVM_SET_USER_MEMORY_REGION")?;
        self.slot_flags = flags;
        Ok(())
    }

    pub(crate) fn dirty_logging_enabled(&self) -> bool {
        self.slot_flags & KVM_MEM_LOG_DIRTY_PAGES != 0
    }

    /// Guest RAM (shared file mapping): fd, path, `GuestMemory` view.
    pub fn memory(&self) -> &GuestMem {
        &self.mem
    }
    pub fn config(&self) -> &VmConfig {
        &self.config
    }
    pub fn vm_fd(&self) -> &VmFd {
        &self.vm
    }
    /// Everything the guest printed on the serial console so far.
    pub fn console_output(&self) -> String {
        self.devices.console.text()
    }
    pub fn set_console_echo(&self, on: bool) {
        self.devices.console.echo.store(on, Ordering::Relaxed);
    }
    /// One line per vCPU with rip/rsp/cr0/cr3/efer (diagnostics).
    pub fn vcpu_summary(&self) -> String {
        let mut out = String::new();
        for (i, v) in self.vcpus.iter().enumerate() {
            if let (Ok(r), Ok(s)) = (v.get_regs(), v.get_sregs()) {
                out.push_str(&format!(
                    "vcpu{i}: rip={:#x} rsp={:#x} rflags={:#x} cr0={:#x} cr3={:#x} cr4={:#x} efer={:#x} cs={:#x}\n",
                    r.rip, r.rsp, r.rflags, s.cr0, s.cr3, s.cr4, s.efer, s.cs.selector
                ));
            }
        }
        out
    }
    /// Guest I/O ports that no device handles and that the guest touched.
    pub fn unknown_io_ports(&self) -> Vec<u16> {
        self.devices.unknown_ports()
    }

    /// Attach a virtio-net device (virtio-mmio) with `backend`; returns its MMIO base
    /// address and GSI. The guest must learn about it from its firmware tables — not yet
    /// provided (see docs/vmm.md) — or from a driver that knows the address.
    pub fn add_virtio_net(&mut self, backend: Box<dyn NetBackend>, mac: [u8; 6]) -> Result<(u64, u32)> {
        let mut list = self.devices.mmio.lock().unwrap();
        let n = list.len() as u64;
        if n >= 8 {
            bail!("at most 8 virtio-mmio devices");
        }
        let base = VIRTIO_MMIO_BASE + n * VIRTIO_MMIO_SIZE;
        let gsi = 5 + n as u32;
        let irq = EventFd::new(libc::EFD_NONBLOCK).context("eventfd")?;
        self.vm.register_irqfd(&irq, gsi).context("KVM_IRQFD for virtio-net")?;
        let mut net = Net::new(self.mem.guest_memory().clone(), backend, mac);
        net.set_write_log(self.device_writes.clone());
        list.push((base, MmioTransport::new(net, irq)));
        Ok((base, gsi))
    }

    /// Load a Linux bzImage (64-bit boot protocol), an optional initramfs and the command line.
    pub fn load_linux(&mut self, kernel: &Path, initrd: Option<&Path>, cmdline: &str) -> Result<()> {
        let mem = self.mem.guest_memory();
        let mut kf = File::open(kernel).with_context(|| format!("cannot open kernel image {}", kernel.display()))?;
        let mut magic = [0u8; 4];
        use std::io::{Read, Seek};
        let _ = kf.read(&mut magic);
        kf.rewind()?;
        // An ELF vmlinux boots at its entry (64-bit boot protocol, no decompressor);
        // a bzImage at code32_start + 0x200 (startup_64 of the decompressor).
        let (hdr, kernel_end, entry) = if &magic == b"\x7fELF" {
            let res = Elf::load(mem, None, &mut kf, Some(GuestAddress(x86::HIMEM_START)))
                .map_err(|e| anyhow!("{} is not a loadable vmlinux ELF: {e}", kernel.display()))?;
            let hdr = linux_loader::loader::bootparam::setup_header {
                version: 0x020f,
                loadflags: 1,
                initrd_addr_max: 0x37ff_ffff,
                ..Default::default()
            };
            (hdr, res.kernel_end, res.kernel_load.0)
        } else {
            let res = BzImage::load(mem, None, &mut kf, Some(GuestAddress(x86::HIMEM_START)))
                .map_err(|e| anyhow!("{} is not a loadable bzImage or vmlinux: {e}", kernel.display()))?;
            let hdr = res.setup_header.ok_or_else(|| anyhow!("{}: no setup header", kernel.display()))?;
            (hdr, res.kernel_end, res.kernel_load.0 + 0x200)
        };

        let cl = Cmdline::try_from(cmdline, x86::CMDLINE_MAX_SIZE).map_err(|e| anyhow!("bad kernel command line: {e}"))?;
        load_cmdline(mem, GuestAddress(x86::CMDLINE_START), &cl).map_err(|e| anyhow!("loading command line: {e}"))?;

        let initrd_loc = match initrd {
            None => None,
            Some(p) => {
                let data = std::fs::read(p).with_context(|| format!("cannot read initramfs {}", p.display()))?;
                let size = data.len() as u64;
                let max = if hdr.initrd_addr_max != 0 { u64::from(hdr.initrd_addr_max) + 1 } else { 0x3800_0000 };
                let top = self.mem.size().min(max);
                if size + kernel_end + (1 << 20) > top {
                    bail!("initramfs {} ({} KiB) does not fit in guest memory", p.display(), size >> 10);
                }
                let addr = (top - size) & !0xfff;
                mem.write_slice(&data, GuestAddress(addr)).context("writing initramfs")?;
                Some((addr, size))
            }
        };
        x86::write_boot_params(mem, hdr, self.mem.size(), cmdline.len() + 1, initrd_loc)?;

        for (i, vcpu) in self.vcpus.iter().enumerate() {
            x86::setup_lapic(vcpu)?;
            if i == 0 {
                x86::setup_msrs(vcpu)?;
                x86::setup_fpu(vcpu)?;
                x86::setup_sregs(mem, vcpu)?;
                x86::setup_regs(vcpu, entry)?;
            }
        }
        Ok(())
    }

    /// Load 16-bit real-mode code at `addr` (< 1 MiB) and point vCPU 0 at it — a tiny
    /// guest program for tests that need exact control over what the guest touches.
    pub fn load_real_mode_code(&mut self, code: &[u8], addr: u64) -> Result<()> {
        if addr + code.len() as u64 > 0x10_0000 {
            bail!("real-mode code must sit below 1 MiB");
        }
        self.mem.guest_memory().write_slice(code, GuestAddress(addr))?;
        let vcpu = &self.vcpus[0];
        let mut sregs = vcpu.get_sregs()?;
        sregs.cs.base = 0;
        sregs.cs.selector = 0;
        vcpu.set_sregs(&sregs)?;
        let regs = kvm_bindings::kvm_regs { rip: addr, rflags: 2, rsp: 0xfff0, ..Default::default() };
        vcpu.set_regs(&regs)?;
        Ok(())
    }

    /// Load 64-bit code at `addr` and start vCPU 0 there in long mode (ring 0, identity
    /// mapping of the first 4 GiB, stack below 0x8ff0) — a tiny guest program for tests.
    pub fn load_long_mode_code(&mut self, code: &[u8], addr: u64) -> Result<()> {
        if addr < 0x10000 || addr + code.len() as u64 > self.mem.size().min(1 << 30) {
            bail!("64-bit test code must sit between 64 KiB and min(RAM, 1 GiB)");
        }
        let mem = self.mem.guest_memory();
        mem.write_slice(code, GuestAddress(addr))?;
        let vcpu = &self.vcpus[0];
        x86::setup_fpu(vcpu)?;
        x86::setup_sregs(mem, vcpu)?;
        x86::setup_regs(vcpu, addr)?;
        // Allow SSE (CR4.OSFXSR | OSXMMEXCPT), as a kernel would.
        let mut sregs = vcpu.get_sregs()?;
        sregs.cr4 |= (1 << 9) | (1 << 10);
        vcpu.set_sregs(&sregs)?;
        Ok(())
    }

    /// Run the vCPUs until the guest shuts down, the console prints the watched pattern,
    /// or the timeout passes. In the last two cases the VM is paused (all vCPUs out of
    /// KVM_RUN with their pending I/O completed) and may be resumed, saved or inspected.
    pub fn run(&mut self, opts: &RunOptions) -> Result<StopReason> {
        install_kick_handler();
        self.devices.console.set_watch(opts.stop_on_console.as_deref());
        let n = self.vcpus.len();
        let sh = RunShared {
            stop: AtomicBool::new(false),
            reason: Mutex::new(None),
            cv: Condvar::new(),
            tids: Mutex::new(Vec::new()),
            done: AtomicUsize::new(0),
        };
        let devices = self.devices.clone();
        let has_net = !devices.mmio.lock().unwrap().is_empty();
        let result = std::thread::scope(|s| -> Result<StopReason> {
            let mut handles = Vec::new();
            for (i, vcpu) in self.vcpus.iter_mut().enumerate() {
                let sh = &sh;
                let dev = &*devices;
                let mem = self.mem.guest_memory();
                let h = std::thread::Builder::new()
                    .name(format!("vcpu{i}"))
                    .spawn_scoped(s, move || {
                        let r = vcpu_loop(vcpu, sh, dev, mem);
                        if let Err(e) = &r {
                            sh.request_stop(Err(format!("vcpu{i}: {e:#}")));
                        }
                        sh.done.fetch_add(1, Ordering::SeqCst);
                        r
                    })
                    .context("spawning vCPU thread")?;
                handles.push(h);
            }
            let deadline = opts.timeout.map(|t| Instant::now() + t);
            {
                let mut g = sh.reason.lock().unwrap();
                while g.is_none() {
                    let wait = match deadline {
                        Some(d) => {
                            let now = Instant::now();
                            if now >= d {
                                *g = Some(Ok(StopReason::Timeout));
                                break;
                            }
                            d - now
                        }
                        None => Duration::from_secs(3600),
                    };
                    if has_net {
                        g = sh.cv.wait_timeout(g, wait.min(Duration::from_millis(1))).unwrap().0;
                        drop(g);
                        devices.poll_virtio();
                        g = sh.reason.lock().unwrap();
                    } else {
                        g = sh.cv.wait_timeout(g, wait).unwrap().0;
                    }
                }
            }
            sh.stop.store(true, Ordering::SeqCst);
            // Kick every vCPU out of KVM_RUN until all threads have stopped.
            while sh.done.load(Ordering::SeqCst) < n {
                for &t in sh.tids.lock().unwrap().iter() {
                    // SAFETY: the threads are alive (scoped) until joined below.
                    unsafe { libc::pthread_kill(t, kick_signal()) };
                }
                std::thread::sleep(Duration::from_micros(500));
            }
            for h in handles {
                match h.join() {
                    Ok(r) => r?,
                    Err(_) => bail!("vCPU thread panicked"),
                }
            }
            let r = sh.reason.lock().unwrap().take().unwrap();
            r.map_err(|e| anyhow!(e))
        });
        self.devices.console.set_watch(None);
        result
    }
}

// ---- Dirty logging, KVM's side: the memslot flag and KVM_GET_DIRTY_LOG feed the
// bookkeeping of `dirty::DirtyLog`. ----

impl Vm {
    pub(crate) fn ensure_logging(&mut self) -> Result<()> {
        if !self.dirty_logging_enabled() {
            self.set_slot_flags(KVM_MEM_LOG_DIRTY_PAGES)?;
        }
        if self.dirty.is_none() {
            self.dirty = Some(DirtyLog::new(self.mem.size()));
        }
        Ok(())
    }

    /// Pull KVM's dirty bitmap (which clears it) and the devices' writes, and OR them
    /// into every active consumer.
    pub(crate) fn sync_dirty(&mut self) -> Result<()> {
        let writes = std::mem::take(&mut *self.device_writes.lock().unwrap());
        if !self.dirty_logging_enabled() {
            return Ok(());
        }
        for (gpa, len) in writes {
            self.mark_dirty(gpa, len);
        }
        let bm = self.vm.get_dirty_log(0, self.mem.size() as usize).map_err(|e| anyhow!("KVM_GET_DIRTY_LOG: {e}"))?;
        if let Some(d) = self.dirty.as_mut() {
            d.merge_bitmap(&bm);
        }
        Ok(())
    }

    /// Mark guest pages dirty that the VMM itself wrote (device emulation, DMA by a
    /// simulated card): KVM only sees writes made by the vCPUs.
    pub fn mark_dirty(&mut self, gpa: u64, len: u64) {
        if let Some(d) = self.dirty.as_mut() {
            d.mark(gpa, len);
        }
    }
}

impl DirtyTracker for Vm {
    fn dirty_start(&mut self, ranges: &[DirtyRange], page_size: u64) -> Result<()> {
        dirty::check_start(ranges, page_size, self.mem.size())?;
        if self.dirty.as_ref().is_some_and(DirtyLog::user_active) {
            bail!("dirty logging already started");
        }
        self.ensure_logging()?;
        self.sync_dirty()?;
        self.dirty.as_mut().expect("logging was just enabled").start_user(ranges, page_size);
        Ok(())
    }

    fn dirty_report_and_clear(&mut self, range: DirtyRange, page_size: u64) -> Result<Vec<u64>> {
        match &self.dirty {
            Some(d) => d.check_report(&range, page_size, self.mem.size())?,
            None => bail!("dirty logging not started"),
        }
        self.sync_dirty()?;
        Ok(self.dirty.as_mut().map(|d| d.report_and_clear_user(&range)).unwrap_or_default())
    }

    fn dirty_stop(&mut self) -> Result<()> {
        if let Some(d) = self.dirty.as_mut() {
            d.stop_user();
            if d.is_idle() {
                self.dirty = None;
                self.set_slot_flags(0)?;
            }
        }
        Ok(())
    }
}

struct RunShared {
    stop: AtomicBool,
    reason: Mutex<Option<std::result::Result<StopReason, String>>>,
    cv: Condvar,
    tids: Mutex<Vec<libc::pthread_t>>,
    done: AtomicUsize,
}

impl RunShared {
    fn request_stop(&self, r: std::result::Result<StopReason, String>) {
        self.stop.store(true, Ordering::SeqCst);
        let mut g = self.reason.lock().unwrap();
        if g.is_none() {
            *g = Some(r);
        }
        self.cv.notify_all();
    }
}

fn kick_signal() -> libc::c_int {
    libc::SIGRTMIN() + 1
}

extern "C" fn kick_handler(_: libc::c_int) {}

fn install_kick_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: installing a no-op handler (no SA_RESTART so KVM_RUN returns EINTR).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = kick_handler as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(kick_signal(), &sa, std::ptr::null_mut());
        }
    });
}

fn vcpu_loop(vcpu: &mut VcpuFd, sh: &RunShared, dev: &Devices, mem: &vm_memory::GuestMemoryMmap) -> Result<()> {
    // SAFETY: pthread_self has no preconditions.
    sh.tids.lock().unwrap().push(unsafe { libc::pthread_self() });
    let mut odd_exits = 0u32;
    let mut emulated = 0u64;
    while !sh.stop.load(Ordering::SeqCst) {
        match vcpu.run() {
            Ok(exit) => match exit {
                VcpuExit::IoIn(port, data) => dev.io_in(port, data),
                VcpuExit::IoOut(port, data) => match dev.io_out(port, data) {
                    IoAction::None => {}
                    IoAction::Reset => sh.request_stop(Ok(StopReason::Shutdown)),
                    IoAction::DebugExit(v) => sh.request_stop(Ok(StopReason::DebugExit(v))),
                    IoAction::ConsoleMatch => sh.request_stop(Ok(StopReason::ConsoleMatch)),
                },
                VcpuExit::MmioRead(addr, data) => dev.mmio_read(addr, data),
                VcpuExit::MmioWrite(addr, data) => dev.mmio_write(addr, data),
                VcpuExit::Shutdown | VcpuExit::Hlt => sh.request_stop(Ok(StopReason::Shutdown)),
                VcpuExit::SystemEvent(_, _) => sh.request_stop(Ok(StopReason::Shutdown)),
                VcpuExit::Intr => {}
                VcpuExit::FailEntry(reason, cpu) => bail!("KVM entry failed: reason {reason:#x} on cpu {cpu}"),
                VcpuExit::InternalError => {
                    // SAFETY: the exit reason says the `internal` member of the union is valid.
                    let (sub, data) = unsafe {
                        let i = vcpu.get_kvm_run().__bindgen_anon_1.internal;
                        (i.suberror, i.data[..(i.ndata as usize).min(16)].to_vec())
                    };
                    if sub == kvm_bindings::KVM_INTERNAL_ERROR_EMULATION && emulate_fallback(vcpu, mem, &data)? {
                        emulated += 1;
                        continue;
                    }
                    let rip = vcpu.get_regs().map(|r| r.rip).unwrap_or(0);
                    bail!("KVM internal error (guest did something KVM cannot emulate): suberror {sub}, data {data:x?}, rip {rip:#x}")
                }
                other => {
                    odd_exits += 1;
                    if odd_exits > 1000 {
                        bail!("too many unexpected vCPU exits, last: {other:?}");
                    }
                }
            },
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {}
            Err(e) => return Err(anyhow!("KVM_RUN failed: {e}")),
        }
    }
    if emulated > 0 && std::env::var_os("OFFCARD_VMM_DEBUG").is_some() {
        eprintln!("offcard-vmm: {emulated} instructions completed in userspace");
    }
    // Re-enter once with immediate_exit so a pending I/O completes: state is now consistent.
    vcpu.set_kvm_immediate_exit(1);
    let _ = vcpu.run();
    vcpu.set_kvm_immediate_exit(0);
    Ok(())
}

/// Instructions KVM's emulator gives up on when it must emulate guest ring 0 (software
/// KVM such as PVM, without VT-x/SVM): finish them here. Returns false if unknown.
/// `data` is KVM's emulation-failure payload: [flags, insn_size | insn bytes ...].
fn emulate_fallback(vcpu: &mut VcpuFd, mem: &vm_memory::GuestMemoryMmap, data: &[u64]) -> Result<bool> {
    if data.len() < 3 {
        return Ok(false);
    }
    let mut b = Vec::new();
    for w in &data[1..3] {
        b.extend_from_slice(&w.to_le_bytes());
    }
    let len = b[0] as usize;
    let insn = &b[1..(1 + len).min(b.len())];
    // ldmxcsr / stmxcsr m32 (0f ae /2, /3), possibly after a REX prefix.
    let (rex, op) = match insn.first() {
        Some(&r) if (0x40..=0x4f).contains(&r) => (r, &insn[1..]),
        _ => (0, insn),
    };
    if op.len() >= 3 && op[0] == 0x0f && op[1] == 0xae && matches!((op[2] >> 3) & 7, 2 | 3) && op[2] >> 6 != 3 {
        let regs = vcpu.get_regs()?;
        let Some((ea, modrm_len)) = effective_address(&regs, rex, &op[2..], insn.len() as u64) else {
            return Ok(false);
        };
        let t = vcpu.translate_gva(ea)?;
        if t.valid == 0 {
            return Ok(false);
        }
        let gpa = GuestAddress(t.physical_address);
        // MXCSR lives at byte 24 of the (F)XSAVE legacy area.
        let mut xs = vcpu.get_xsave()?;
        if (op[2] >> 3) & 7 == 2 {
            xs.region[6] = mem.read_obj::<u32>(gpa)?;
            // The kernel takes MXCSR from the buffer only if the header's XSTATE_BV
            // (bytes 512..520) marks SSE (bit 1) as not in its initial state; with the
            // bit clear (a guest that has not touched SSE yet) the write would be dropped.
            // Setting it is exact: the XMM registers in the buffer are what KVM just gave.
            xs.region[128] |= 1 << 1;
            vcpu.set_xsave(&xs)?;
        } else {
            mem.write_obj::<u32>(xs.region[6], gpa)?;
        }
        let mut regs = regs;
        regs.rip += (insn.len() - op.len()) as u64 + 2 + modrm_len as u64;
        vcpu.set_regs(&regs)?;
        return Ok(true);
    }
    match insn.first() {
        // int3: deliver #BP (a trap: the saved rip is after the instruction).
        Some(0xcc) => {
            let mut regs = vcpu.get_regs()?;
            regs.rip += 1;
            vcpu.set_regs(&regs)?;
            let mut ev = vcpu.get_vcpu_events()?;
            ev.exception.injected = 1;
            ev.exception.nr = 3;
            ev.exception.has_error_code = 0;
            ev.exception.error_code = 0;
            vcpu.set_vcpu_events(&ev)?;
            Ok(true)
        }
        // fwait: no x87 exceptions are ever pending here.
        Some(0x9b) => {
            let mut regs = vcpu.get_regs()?;
            regs.rip += 1;
            vcpu.set_regs(&regs)?;
            Ok(true)
        }
        // fninit: reset the x87 state.
        Some(0xdb) if insn.get(1) == Some(&0xe3) => {
            let mut fpu = vcpu.get_fpu()?;
            fpu.fcw = 0x37f;
            fpu.fsw = 0;
            fpu.ftwx = 0;
            fpu.last_opcode = 0;
            fpu.last_ip = 0;
            fpu.last_dp = 0;
            vcpu.set_fpu(&fpu)?;
            let mut regs = vcpu.get_regs()?;
            regs.rip += 2;
            vcpu.set_regs(&regs)?;
            Ok(true)
        }
        // clac / stac (SMAP): clear / set RFLAGS.AC.
        Some(0x0f) if insn.len() >= 3 && insn[1] == 0x01 && (insn[2] == 0xca || insn[2] == 0xcb) => {
            let mut regs = vcpu.get_regs()?;
            if insn[2] == 0xca {
                regs.rflags &= !(1 << 18);
            } else {
                regs.rflags |= 1 << 18;
            }
            regs.rip += 3;
            vcpu.set_regs(&regs)?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Effective address of a ModRM memory operand (64-bit addressing). `m` starts at the
/// ModRM byte. Returns the address and the length of ModRM+SIB+displacement.
/// RIP-relative operands need the full instruction length, `insn_len`.
fn effective_address(regs: &kvm_bindings::kvm_regs, rex: u8, m: &[u8], insn_len: u64) -> Option<(u64, usize)> {
    let reg = |n: u8| -> u64 {
        [
            regs.rax, regs.rcx, regs.rdx, regs.rbx, regs.rsp, regs.rbp, regs.rsi, regs.rdi, regs.r8, regs.r9, regs.r10, regs.r11, regs.r12,
            regs.r13, regs.r14, regs.r15,
        ][n as usize]
    };
    let modrm = *m.first()?;
    let md = modrm >> 6;
    let rm = modrm & 7;
    let mut len = 1usize;
    let mut ea: u64;
    if rm == 4 {
        let sib = *m.get(1)?;
        len += 1;
        let scale = 1u64 << (sib >> 6);
        let index = ((sib >> 3) & 7) | ((rex & 2) << 2);
        let base = (sib & 7) | ((rex & 1) << 3);
        ea = if index == 4 { 0 } else { reg(index).wrapping_mul(scale) };
        if sib & 7 == 5 && md == 0 {
            let d = i32::from_le_bytes(m.get(len..len + 4)?.try_into().ok()?);
            len += 4;
            ea = ea.wrapping_add(d as i64 as u64);
        } else {
            ea = ea.wrapping_add(reg(base));
        }
    } else if rm == 5 && md == 0 {
        // RIP-relative: `insn_len` is KVM's fetch window, not the instruction's
        // length, so the next-instruction address is unknown: not handled.
        let _ = insn_len;
        return None;
    } else {
        ea = reg(rm | ((rex & 1) << 3));
    }
    match md {
        1 => {
            let d = *m.get(len)? as i8;
            len += 1;
            ea = ea.wrapping_add(d as i64 as u64);
        }
        2 => {
            let d = i32::from_le_bytes(m.get(len..len + 4)?.try_into().ok()?);
            len += 4;
            ea = ea.wrapping_add(d as i64 as u64);
        }
        _ => {}
    }
    Some((ea, len))
}
