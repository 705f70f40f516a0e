//! Snapshot and restore.
//!
//! A snapshot is a folder:
//! * `vm.state` — header `OFFCSNAP`, format version, kind (full/diff), payload length,
//!   64-bit checksum of the payload, then tagged sections: config, parent (diff), the
//!   hash of guest RAM at the snapshot, per-vCPU regs/sregs/xsave/xcrs/lapic/MSRs/
//!   mp_state/events/debugregs, the PIC/IOAPIC/PIT/kvmclock state and the serial port.
//! * `memory.img` (full) — guest RAM as a sparse file (all-zero pages are holes).
//! * `memory.diff` (diff) — only the 4 KiB pages written since the parent snapshot:
//!   header `OFFCDIFF`, version, count, page numbers, page data, checksum.
//!
//! Restoring checks every checksum and, after loading memory (following the chain of
//! diffs), that guest RAM hashes to the recorded value.
//!
//! Layering: this module adds `Vm::snapshot` / `Vm::restore` on top of `vm`, and uses
//! `memory` (page size), `dirty` (pages written since the last snapshot) and `hash`;
//! none of those imports it.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use kvm_bindings::*;
use kvm_ioctls::VcpuFd;
use vm_superio::serial::SerialState;

use crate::dirty::DirtyLog;
use crate::hash::hash64;
use crate::memory::PAGE_SIZE;
use crate::vm::{Vm, VmConfig};

const MAGIC: &[u8; 8] = b"OFFCSNAP";
const DIFF_MAGIC: &[u8; 8] = b"OFFCDIFF";
pub const FORMAT_VERSION: u32 = 1;

fn is_zero(p: &[u8]) -> bool {
    // SAFETY: u64 has no invalid bit patterns; align_to splits off unaligned ends.
    let (a, b, c) = unsafe { p.align_to::<u64>() };
    a.iter().all(|&x| x == 0) && b.iter().fold(0, |acc, &x| acc | x) == 0 && c.iter().all(|&x| x == 0)
}

/// What a snapshot wrote.
#[derive(Debug, Clone)]
pub struct SnapshotInfo {
    pub dir: PathBuf,
    pub diff: bool,
    /// Bytes of guest memory data written (diff: dirty pages; full: non-zero pages).
    pub memory_bytes: u64,
    /// Total bytes allocated on disk by the snapshot's files.
    pub disk_bytes: u64,
    pub mem_hash: u64,
    pub millis: f64,
}

// ---- POD helpers for the KVM structs (plain C structs without pointers) ----
fn pod_bytes<T>(v: &T) -> Vec<u8> {
    // SAFETY: T is a plain-old-data KVM struct; reading its bytes is fine.
    unsafe { std::slice::from_raw_parts(v as *const T as *const u8, std::mem::size_of::<T>()) }.to_vec()
}
fn pod_read<T>(b: &[u8], what: &str) -> Result<T> {
    if b.len() != std::mem::size_of::<T>() {
        bail!("snapshot section {what}: {} bytes, expected {}", b.len(), std::mem::size_of::<T>());
    }
    // SAFETY: size checked; T is POD, any bit pattern is acceptable to KVM's checks.
    Ok(unsafe { std::ptr::read_unaligned(b.as_ptr() as *const T) })
}

struct Writer(Vec<u8>);
impl Writer {
    fn sec(&mut self, tag: &str, data: &[u8]) {
        let t = tag.as_bytes();
        self.0.extend_from_slice(&(t.len() as u32).to_le_bytes());
        self.0.extend_from_slice(t);
        self.0.extend_from_slice(&(data.len() as u64).to_le_bytes());
        self.0.extend_from_slice(data);
    }
}

fn parse_sections(mut p: &[u8]) -> Result<Vec<(String, Vec<u8>)>> {
    let mut v = Vec::new();
    let take = |p: &mut &[u8], n: usize| -> Result<Vec<u8>> {
        if p.len() < n {
            bail!("snapshot state truncated");
        }
        let (a, b) = p.split_at(n);
        *p = b;
        Ok(a.to_vec())
    };
    while !p.is_empty() {
        let tl = u32::from_le_bytes(take(&mut p, 4)?.try_into().unwrap()) as usize;
        let tag = String::from_utf8(take(&mut p, tl)?).map_err(|_| anyhow!("bad section tag"))?;
        let dl = u64::from_le_bytes(take(&mut p, 8)?.try_into().unwrap()) as usize;
        v.push((tag, take(&mut p, dl)?));
    }
    Ok(v)
}

fn get<'a>(secs: &'a [(String, Vec<u8>)], tag: &str) -> Result<&'a [u8]> {
    secs.iter().find(|(t, _)| t == tag).map(|(_, d)| d.as_slice()).ok_or_else(|| anyhow!("snapshot lacks section {tag}"))
}

fn serial_bytes(s: &SerialState) -> Vec<u8> {
    let mut v = vec![
        s.baud_divisor_low,
        s.baud_divisor_high,
        s.interrupt_enable,
        s.interrupt_identification,
        s.line_control,
        s.line_status,
        s.modem_control,
        s.modem_status,
        s.scratch,
    ];
    v.extend_from_slice(&s.in_buffer);
    v
}
fn serial_from(b: &[u8]) -> Result<SerialState> {
    if b.len() < 9 {
        bail!("serial state truncated");
    }
    Ok(SerialState {
        baud_divisor_low: b[0],
        baud_divisor_high: b[1],
        interrupt_enable: b[2],
        interrupt_identification: b[3],
        line_control: b[4],
        line_status: b[5],
        modem_control: b[6],
        modem_status: b[7],
        scratch: b[8],
        in_buffer: b[9..].to_vec(),
    })
}

fn save_msrs(kvm: &kvm_ioctls::Kvm, vcpu: &VcpuFd) -> Result<Vec<kvm_msr_entry>> {
    let list = kvm.get_msr_index_list().context("KVM_GET_MSR_INDEX_LIST")?;
    let mut idx: Vec<u32> = list.as_slice().to_vec();
    let mut out = Vec::new();
    while !idx.is_empty() {
        let n = idx.len().min(KVM_MAX_MSR_ENTRIES);
        let entries: Vec<kvm_msr_entry> = idx[..n].iter().map(|&i| kvm_msr_entry { index: i, ..Default::default() }).collect();
        let mut msrs = Msrs::from_entries(&entries).map_err(|e| anyhow!("msrs: {e:?}"))?;
        let got = vcpu.get_msrs(&mut msrs).context("KVM_GET_MSRS")?;
        out.extend_from_slice(&msrs.as_slice()[..got]);
        // Skip the one MSR KVM refused (if any) and go on.
        let skip = if got < n { got + 1 } else { n };
        idx.drain(..skip);
    }
    Ok(out)
}

fn save_vcpu(kvm: &kvm_ioctls::Kvm, vcpu: &VcpuFd, i: usize, w: &mut Writer) -> Result<()> {
    let p = |s: &str| format!("vcpu{i}.{s}");
    w.sec(&p("regs"), &pod_bytes(&vcpu.get_regs()?));
    w.sec(&p("sregs"), &pod_bytes(&vcpu.get_sregs()?));
    w.sec(&p("xsave"), &pod_bytes(&vcpu.get_xsave().context("KVM_GET_XSAVE")?));
    w.sec(&p("xcrs"), &pod_bytes(&vcpu.get_xcrs().context("KVM_GET_XCRS")?));
    w.sec(&p("lapic"), &pod_bytes(&vcpu.get_lapic()?));
    w.sec(&p("mp_state"), &pod_bytes(&vcpu.get_mp_state()?));
    w.sec(&p("events"), &pod_bytes(&vcpu.get_vcpu_events()?));
    w.sec(&p("debugregs"), &pod_bytes(&vcpu.get_debug_regs()?));
    let msrs = save_msrs(kvm, vcpu)?;
    let mut b = Vec::new();
    for m in &msrs {
        b.extend_from_slice(&pod_bytes(m));
    }
    w.sec(&p("msrs"), &b);
    Ok(())
}

fn restore_vcpu(vcpu: &VcpuFd, i: usize, secs: &[(String, Vec<u8>)]) -> Result<()> {
    let g = |s: &str| get(secs, &format!("vcpu{i}.{s}"));
    vcpu.set_mp_state(pod_read(g("mp_state")?, "mp_state")?)?;
    vcpu.set_regs(&pod_read(g("regs")?, "regs")?)?;
    vcpu.set_sregs(&pod_read(g("sregs")?, "sregs")?)?;
    vcpu.set_xsave(&pod_read(g("xsave")?, "xsave")?).context("KVM_SET_XSAVE")?;
    vcpu.set_xcrs(&pod_read(g("xcrs")?, "xcrs")?)?;
    vcpu.set_debug_regs(&pod_read(g("debugregs")?, "debugregs")?)?;
    vcpu.set_lapic(&pod_read(g("lapic")?, "lapic")?)?;
    let mb = g("msrs")?;
    let es = std::mem::size_of::<kvm_msr_entry>();
    if mb.len() % es != 0 {
        bail!("snapshot MSR section malformed");
    }
    let entries: Vec<kvm_msr_entry> = mb.chunks(es).map(|c| pod_read(c, "msr")).collect::<Result<_>>()?;
    let mut rest = &entries[..];
    while !rest.is_empty() {
        let n = rest.len().min(KVM_MAX_MSR_ENTRIES);
        let msrs = Msrs::from_entries(&rest[..n]).map_err(|e| anyhow!("msrs: {e:?}"))?;
        let set = vcpu.set_msrs(&msrs).context("KVM_SET_MSRS")?;
        rest = &rest[if set < n { set + 1 } else { n }..];
    }
    vcpu.set_vcpu_events(&pod_read(g("events")?, "events")?)?;
    Ok(())
}

fn irqchip(id: u32) -> kvm_irqchip {
    kvm_irqchip { chip_id: id, ..Default::default() }
}

fn disk_bytes(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).map(|m| m.blocks() * 512).unwrap_or(0)
}

/// Write a byte file atomically (tmp + rename).
fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(data)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

impl Vm {
    /// Save the paused VM (after [`Vm::run`] returned with it paused) into `dir`.
    /// `diff = true` writes only the pages dirtied since the previous snapshot this VM
    /// took or was restored from (needs one); otherwise a full snapshot.
    /// Afterwards the VM tracks dirty pages so that a later diff snapshot is possible.
    pub fn snapshot(&mut self, dir: &Path, diff: bool) -> Result<SnapshotInfo> {
        let t0 = Instant::now();
        std::fs::create_dir_all(dir).with_context(|| format!("creating snapshot folder {}", dir.display()))?;
        let dir = dir.canonicalize()?;
        let parent = if diff {
            let p = self.snap_parent.clone().ok_or_else(|| anyhow!("diff snapshot needs an earlier snapshot of this VM"))?;
            if p == dir {
                bail!("diff snapshot must go to a new folder, not its parent {}", p.display());
            }
            Some(p)
        } else {
            None
        };
        let mut w = Writer(Vec::new());
        let mut cfg = Vec::new();
        cfg.extend_from_slice(&self.config.mem_mib.to_le_bytes());
        cfg.extend_from_slice(&u32::from(self.config.vcpus).to_le_bytes());
        w.sec("config", &cfg);
        if let Some(p) = &parent {
            w.sec("parent", p.to_string_lossy().as_bytes());
        }
        for (i, v) in self.vcpus.iter().enumerate() {
            save_vcpu(&self.kvm, v, i, &mut w)?;
        }
        for (id, name) in [(KVM_IRQCHIP_PIC_MASTER, "pic_master"), (KVM_IRQCHIP_PIC_SLAVE, "pic_slave"), (KVM_IRQCHIP_IOAPIC, "ioapic")] {
            let mut c = irqchip(id);
            self.vm.get_irqchip(&mut c).context("KVM_GET_IRQCHIP")?;
            w.sec(name, &pod_bytes(&c));
        }
        w.sec("pit", &pod_bytes(&self.vm.get_pit2().context("KVM_GET_PIT2")?));
        let mut clock = self.vm.get_clock().context("KVM_GET_CLOCK")?;
        clock.flags = 0;
        w.sec("clock", &pod_bytes(&clock));
        w.sec("serial", &serial_bytes(&self.devices.serial_state()));
        let mem_hash = self.mem.hash();
        w.sec("mem_hash", &mem_hash.to_le_bytes());

        // Memory.
        if diff {
            self.sync_dirty()?;
        }
        let mem = self.mem.as_slice();
        let npages = self.mem.size() / PAGE_SIZE;
        let memory_bytes;
        let _ = std::fs::remove_file(dir.join("memory.img"));
        let _ = std::fs::remove_file(dir.join("memory.diff"));
        if diff {
            let pages = self
                .dirty
                .as_ref()
                .and_then(DirtyLog::snapshot_dirty_pages)
                .ok_or_else(|| anyhow!("no dirty tracking since the last snapshot"))?;
            let mut out = Vec::with_capacity(32 + pages.len() * (8 + PAGE_SIZE as usize));
            out.extend_from_slice(DIFF_MAGIC);
            out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
            out.extend_from_slice(&(PAGE_SIZE as u32).to_le_bytes());
            out.extend_from_slice(&(pages.len() as u64).to_le_bytes());
            for p in &pages {
                out.extend_from_slice(&p.to_le_bytes());
            }
            for &p in &pages {
                out.extend_from_slice(&mem[(p * PAGE_SIZE) as usize..((p + 1) * PAGE_SIZE) as usize]);
            }
            let h = hash64(&out);
            out.extend_from_slice(&h.to_le_bytes());
            write_atomic(&dir.join("memory.diff"), &out)?;
            memory_bytes = pages.len() as u64 * PAGE_SIZE;
        } else {
            let path = dir.join("memory.img");
            let tmp = path.with_extension("tmp");
            let mut f = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
            f.set_len(self.mem.size())?;
            let ps = PAGE_SIZE as usize;
            let mut written = 0u64;
            let mut p = 0usize;
            let total = npages as usize;
            while p < total {
                if is_zero(&mem[p * ps..(p + 1) * ps]) {
                    p += 1;
                    continue;
                }
                let start = p;
                while p < total && !is_zero(&mem[p * ps..(p + 1) * ps]) {
                    p += 1;
                }
                f.seek(SeekFrom::Start((start * ps) as u64))?;
                f.write_all(&mem[start * ps..p * ps])?;
                written += ((p - start) * ps) as u64;
            }
            // No fsync: like Firecracker, durability is the caller's choice (it costs
            // ~0.3 s per 64 MiB here).
            std::fs::rename(&tmp, &path)?;
            memory_bytes = written;
        }

        // State file last: a folder with a valid vm.state is a complete snapshot.
        let payload = w.0;
        let mut out = Vec::with_capacity(payload.len() + 32);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&u32::from(diff).to_le_bytes());
        out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        out.extend_from_slice(&hash64(&payload).to_le_bytes());
        out.extend_from_slice(&payload);
        write_atomic(&dir.join("vm.state"), &out)?;

        // Track pages dirtied from now on, for the next diff.
        self.ensure_logging()?;
        self.sync_dirty()?;
        self.dirty.as_mut().expect("logging was just enabled").restart_snapshot_tracking();
        self.snap_parent = Some(dir.clone());

        let disk = disk_bytes(&dir.join("vm.state")) + disk_bytes(&dir.join(if diff { "memory.diff" } else { "memory.img" }));
        Ok(SnapshotInfo { dir, diff, memory_bytes, disk_bytes: disk, mem_hash, millis: t0.elapsed().as_secs_f64() * 1e3 })
    }

    /// Restore a snapshot (full, or a diff and its chain of parents) into a new VM.
    /// The VM is paused; call [`Vm::run`] to continue the guest.
    pub fn restore(dir: &Path, echo_console: bool) -> Result<Vm> {
        Self::restore_with(dir, echo_console, None)
    }

    /// [`Vm::restore`], backing guest RAM with the named file `mem_file` (for another
    /// process to map) instead of an anonymous memfd.
    pub fn restore_with(dir: &Path, echo_console: bool, mem_file: Option<&Path>) -> Result<Vm> {
        let state = read_state(dir)?;
        let secs = parse_sections(&state.payload)?;
        let cfg = get(&secs, "config")?;
        if cfg.len() != 12 {
            bail!("snapshot config section malformed");
        }
        let mem_mib = u64::from_le_bytes(cfg[0..8].try_into().unwrap());
        let vcpus = u32::from_le_bytes(cfg[8..12].try_into().unwrap());
        if vcpus == 0 || vcpus > 32 {
            bail!("snapshot has {vcpus} vCPUs: corrupt");
        }
        let serial = serial_from(get(&secs, "serial")?)?;
        let config = VmConfig { mem_mib, vcpus: vcpus as u8, mem_file: mem_file.map(Path::to_path_buf), echo_console };
        let mut vm = Vm::create(config, Some(&serial))?;

        load_memory(dir, &vm, 0)?;
        let want = u64::from_le_bytes(get(&secs, "mem_hash")?.try_into().map_err(|_| anyhow!("bad mem_hash"))?);
        let got = vm.mem.hash();
        if want != got {
            bail!("snapshot {}: guest memory hash mismatch after loading ({got:#x} != {want:#x}): corrupt memory file", dir.display());
        }

        vm.vm.set_pit2(&pod_read(get(&secs, "pit")?, "pit")?).context("KVM_SET_PIT2")?;
        vm.vm.set_clock(&pod_read(get(&secs, "clock")?, "clock")?).context("KVM_SET_CLOCK")?;
        for name in ["pic_master", "pic_slave", "ioapic"] {
            let c: kvm_irqchip = pod_read(get(&secs, name)?, name)?;
            vm.vm.set_irqchip(&c).context("KVM_SET_IRQCHIP")?;
        }
        for (i, v) in vm.vcpus.iter().enumerate() {
            restore_vcpu(v, i, &secs).with_context(|| format!("restoring vCPU {i}"))?;
        }
        // Start tracking for a diff snapshot against this one.
        vm.ensure_logging()?;
        vm.dirty.as_mut().expect("logging was just enabled").restart_snapshot_tracking();
        vm.snap_parent = Some(dir.canonicalize()?);
        Ok(vm)
    }
}

struct State {
    diff: bool,
    payload: Vec<u8>,
}

fn read_state(dir: &Path) -> Result<State> {
    let path = dir.join("vm.state");
    let data = std::fs::read(&path).with_context(|| format!("cannot read snapshot state {}", path.display()))?;
    if data.len() < 32 || &data[0..8] != MAGIC {
        bail!("{} is not an offcard snapshot (bad magic)", path.display());
    }
    let ver = u32::from_le_bytes(data[8..12].try_into().unwrap());
    if ver != FORMAT_VERSION {
        bail!("{}: snapshot format version {ver}, this build reads version {FORMAT_VERSION}", path.display());
    }
    let diff = u32::from_le_bytes(data[12..16].try_into().unwrap()) != 0;
    let len = u64::from_le_bytes(data[16..24].try_into().unwrap()) as usize;
    let sum = u64::from_le_bytes(data[24..32].try_into().unwrap());
    let payload = &data[32..];
    if payload.len() != len {
        bail!("{}: truncated or padded ({} payload bytes, header says {len})", path.display(), payload.len());
    }
    if hash64(payload) != sum {
        bail!("{}: checksum mismatch — the snapshot state is corrupt", path.display());
    }
    Ok(State { diff, payload: payload.to_vec() })
}

fn load_memory(dir: &Path, vm: &Vm, depth: u32) -> Result<()> {
    if depth > 64 {
        bail!("snapshot diff chain too long (or cyclic)");
    }
    let state = read_state(dir)?;
    let mem = vm.mem.as_mut_slice();
    if !state.diff {
        let path = dir.join("memory.img");
        let mut f = File::open(&path).with_context(|| format!("cannot open snapshot memory {}", path.display()))?;
        let len = f.metadata()?.len();
        if len != vm.mem.size() {
            bail!("{}: {} bytes, expected {} (corrupt or wrong snapshot)", path.display(), len, vm.mem.size());
        }
        // Copy only the data extents of the sparse file.
        let fd = std::os::fd::AsRawFd::as_raw_fd(&f);
        let mut off: i64 = 0;
        while (off as u64) < len {
            // SAFETY: lseek on our own fd.
            let data = unsafe { libc::lseek(fd, off, libc::SEEK_DATA) };
            if data < 0 {
                break; // no more data
            }
            // SAFETY: as above.
            let hole = unsafe { libc::lseek(fd, data, libc::SEEK_HOLE) };
            let end = if hole < 0 { len as i64 } else { hole };
            f.seek(SeekFrom::Start(data as u64))?;
            f.read_exact(&mut mem[data as usize..end as usize])?;
            off = end;
        }
        return Ok(());
    }
    let secs = parse_sections(&state.payload)?;
    let parent = PathBuf::from(String::from_utf8_lossy(get(&secs, "parent")?).into_owned());
    load_memory(&parent, vm, depth + 1).with_context(|| format!("loading parent snapshot {}", parent.display()))?;
    let path = dir.join("memory.diff");
    let data = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    if data.len() < 32 || &data[0..8] != DIFF_MAGIC {
        bail!("{}: bad magic", path.display());
    }
    let (body, sum) = data.split_at(data.len() - 8);
    if hash64(body) != u64::from_le_bytes(sum.try_into().unwrap()) {
        bail!("{}: checksum mismatch — the diff snapshot is corrupt", path.display());
    }
    let ver = u32::from_le_bytes(body[8..12].try_into().unwrap());
    let ps = u32::from_le_bytes(body[12..16].try_into().unwrap()) as usize;
    let n = u64::from_le_bytes(body[16..24].try_into().unwrap()) as usize;
    if ver != FORMAT_VERSION || ps != PAGE_SIZE as usize || body.len() != 24 + n * 8 + n * ps {
        bail!("{}: malformed diff (version {ver}, page size {ps}, {n} pages)", path.display());
    }
    let idx = &body[24..24 + n * 8];
    let pages = &body[24 + n * 8..];
    for i in 0..n {
        let p = u64::from_le_bytes(idx[i * 8..i * 8 + 8].try_into().unwrap()) as usize;
        if (p + 1) * ps > mem.len() {
            bail!("{}: page {p} outside guest memory", path.display());
        }
        mem[p * ps..(p + 1) * ps].copy_from_slice(&pages[i * ps..(i + 1) * ps]);
    }
    Ok(())
}
