//! `bench-vm [--json]`: boot the Debian guest to its init, snapshot (full, then diff),
//! restore, and report. Human lines first, then one JSON line last.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::assets::GuestAssets;
use crate::initramfs::INIT_STARTED;
use crate::vm::{default_cmdline, RunOptions, StopReason, Vm, VmConfig};

/// Milliseconds since this process started (from /proc/self/stat and /proc/uptime).
fn ms_since_process_start() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let start_ticks: f64 = after.split_whitespace().nth(19)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let uptime: f64 = std::fs::read_to_string("/proc/uptime").ok()?.split_whitespace().next()?.parse().ok()?;
    Some((uptime - start_ticks / hz) * 1e3)
}

fn status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

/// The raw-guest counter program (64-bit): increments a counter at 0x200000, prints '.'
/// every 4096 increments, exits through port 0xf4 at `limit`.
pub fn counter_program(limit: u32) -> Vec<u8> {
    let mut c = vec![0x48, 0xFF, 0x04, 0x25, 0x00, 0x00, 0x20, 0x00];
    c.extend_from_slice(&[0x48, 0x8B, 0x04, 0x25, 0x00, 0x00, 0x20, 0x00]);
    c.extend_from_slice(&[0xA9, 0xFF, 0x0F, 0x00, 0x00, 0x75, 0xE9]);
    c.extend_from_slice(&[0xB0, 0x2E, 0x66, 0xBA, 0xF8, 0x03, 0xEE, 0x48, 0x3D]);
    c.extend_from_slice(&limit.to_le_bytes());
    c.extend_from_slice(&[0x72, 0xDA, 0xB0, 0x02, 0xE6, 0xF4, 0xF4]);
    c
}

/// `offcard bench vm [--linux|--raw]`: `linux` Some(true) for the Linux guest,
/// Some(false) for the raw one. Default (None): the Linux guest, except on software KVM
/// (PVM host, see docs/vmm.md) where booting Linux takes minutes: there the raw guest
/// (a 64-bit counter program) gives the VMM-side figures and `boot_to_init_ms` is null.
/// The figures end with one JSON line either way.
pub fn bench_vm(linux: Option<bool>) -> Result<()> {
    let linux = linux.unwrap_or_else(|| !crate::x86::software_kvm());
    if linux {
        bench_main(true)
    } else {
        bench_raw()
    }
}

fn bench_raw() -> Result<()> {
    let t_proc0 = ms_since_process_start().unwrap_or(0.0);
    let t0 = Instant::now();
    let mem_mib = 128;
    let mut vm = Vm::new(VmConfig { mem_mib, ..Default::default() })?;
    vm.load_long_mode_code(&counter_program(64 * 4096), 0x10_0000)?;
    let r = vm.run(&RunOptions { timeout: Some(Duration::from_secs(120)), stop_on_console: Some(".".into()) })?;
    if r != StopReason::ConsoleMatch {
        bail!("raw guest did not start: {r:?}");
    }
    let first_ms = t_proc0 + t0.elapsed().as_secs_f64() * 1e3;
    // Touch guest RAM like a booted guest would (64 MiB of data), then measure.
    let m = vm.memory().as_mut_slice();
    for (i, chunk) in m[0x40_0000..0x440_0000].chunks_mut(4096).enumerate() {
        chunk[0] = (i as u8) | 1;
    }
    let rss = status_kib("VmRSS:");
    let shmem = status_kib("RssShmem:");
    let overhead_mib = rss.saturating_sub(shmem) as f64 / 1024.0;
    println!("raw guest (64-bit counter program), {mem_mib} MiB, software_kvm={}", crate::x86::software_kvm());
    println!("process start to guest's first output: {first_ms:.1} ms");
    println!("VMM resident memory beyond guest RAM: {overhead_mib:.2} MiB (VmRSS {rss} KiB - guest RAM resident {shmem} KiB)");
    let dir = std::env::temp_dir().join(format!("offcard-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let full = vm.snapshot(&dir.join("full"), false)?;
    println!("full snapshot: {:.1} ms, {} bytes of memory data, {} bytes on disk", full.millis, full.memory_bytes, full.disk_bytes);
    let r = vm.run(&RunOptions { timeout: Some(Duration::from_secs(120)), stop_on_console: Some("....".into()) })?;
    if r != StopReason::ConsoleMatch {
        bail!("raw guest did not continue: {r:?}");
    }
    let diff = vm.snapshot(&dir.join("diff"), true)?;
    println!("diff snapshot: {:.1} ms, {} bytes of memory data, {} bytes on disk", diff.millis, diff.memory_bytes, diff.disk_bytes);
    drop(vm);
    let t_restore = Instant::now();
    let mut vm2 = Vm::restore(&dir.join("diff"), false)?;
    let restore_ms = t_restore.elapsed().as_secs_f64() * 1e3;
    let r = vm2.run(&RunOptions { timeout: Some(Duration::from_secs(120)), stop_on_console: None })?;
    let ok = r == StopReason::DebugExit(2);
    println!("restore (diff on full, memory hash checked): {restore_ms:.1} ms; guest ran to its end: {ok}");
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "{{\"bench\":\"vm\",\"guest\":\"raw-counter\",\"software_kvm\":{},\"guest_mem_mib\":{mem_mib},\"boot_to_init_ms\":null,\"process_start_to_guest_output_ms\":{first_ms:.1},\"vmm_overhead_mib\":{overhead_mib:.2},\"snapshot_ms\":{:.1},\"restore_ms\":{restore_ms:.1},\"diff_snapshot_ms\":{:.1},\"full_snapshot_bytes\":{},\"diff_snapshot_bytes\":{},\"full_snapshot_disk_bytes\":{},\"diff_snapshot_disk_bytes\":{},\"restored_ok\":{ok}}}",
        crate::x86::software_kvm(),
        full.millis,
        diff.millis,
        full.memory_bytes,
        diff.memory_bytes,
        full.disk_bytes,
        diff.disk_bytes
    );
    Ok(())
}

pub fn bench_main(json: bool) -> Result<()> {
    let _ = json; // the JSON line is always printed last
    let t_proc0 = ms_since_process_start().unwrap_or(0.0);
    let t0 = Instant::now();
    let assets = GuestAssets::ensure(None)?;
    let script = "echo BENCH-RUNNING; i=0; while [ $i -lt 6 ]; do i=$((i+1)); echo \"COUNTER $i\"; usleep 20000; done";
    let initrd = assets.initramfs(&format!("bench-{}", std::process::id()), script, &[])?;
    let t_assets = t0.elapsed();
    let mem_mib = 128;
    let cmdline = default_cmdline() + " quiet";

    let t_boot = Instant::now();
    let mut vm = Vm::new(VmConfig { mem_mib, ..Default::default() })?;
    let slow = crate::x86::software_kvm();
    let _ = slow;
    vm.load_linux(&assets.kernel, Some(&initrd), &cmdline)?;
    let _ = std::fs::remove_file(&initrd);
    let r = vm.run(&RunOptions { timeout: Some(Duration::from_secs(3600)), stop_on_console: Some(INIT_STARTED.into()) })?;
    if r != StopReason::ConsoleMatch {
        bail!("guest did not reach init: {r:?}\n{}", vm.console_output());
    }
    let boot_ms = t_boot.elapsed().as_secs_f64() * 1e3;
    let boot_to_init_ms = t_proc0 + t0.elapsed().as_secs_f64() * 1e3 - t_assets.as_secs_f64() * 1e3;
    let rss = status_kib("VmRSS:");
    let shmem = status_kib("RssShmem:");
    let overhead_mib = rss.saturating_sub(shmem) as f64 / 1024.0;
    println!("guest kernel {} ({}), {mem_mib} MiB, 1 vCPU", assets.kernel_version, assets.kernel.display());
    println!("boot to init: {boot_to_init_ms:.1} ms from process start ({boot_ms:.1} ms from VM creation)");
    println!("VMM resident memory beyond guest RAM: {overhead_mib:.2} MiB (VmRSS {rss} KiB - guest RAM resident {shmem} KiB)");

    let dir = std::env::temp_dir().join(format!("offcard-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let full = vm.snapshot(&dir.join("full"), false)?;
    println!("full snapshot: {:.1} ms, {} bytes of memory data, {} bytes on disk", full.millis, full.memory_bytes, full.disk_bytes);
    let r = vm.run(&RunOptions { timeout: Some(Duration::from_secs(1800)), stop_on_console: Some("COUNTER 2\n".into()) })?;
    if r != StopReason::ConsoleMatch {
        bail!("guest did not continue after the snapshot: {r:?}");
    }
    let diff = vm.snapshot(&dir.join("diff"), true)?;
    println!("diff snapshot: {:.1} ms, {} bytes of memory data, {} bytes on disk", diff.millis, diff.memory_bytes, diff.disk_bytes);
    drop(vm);

    let t_restore = Instant::now();
    let mut vm2 = Vm::restore(&dir.join("diff"), false)?;
    let restore_ms = t_restore.elapsed().as_secs_f64() * 1e3;
    println!("restore (diff on full, memory hash checked): {restore_ms:.1} ms");
    let r = vm2.run(&RunOptions { timeout: Some(Duration::from_secs(1800)), stop_on_console: None })?;
    let out = vm2.console_output();
    let ok = r == StopReason::Shutdown && out.contains("COUNTER 6");
    println!("restored guest continued to power-off: {ok} ({r:?})");
    let _ = std::fs::remove_dir_all(&dir);

    println!(
        "{{\"bench\":\"vm\",\"kernel\":\"{}\",\"software_kvm\":{},\"guest_mem_mib\":{mem_mib},\"boot_to_init_ms\":{boot_to_init_ms:.1},\"boot_from_vm_create_ms\":{boot_ms:.1},\"vmm_overhead_mib\":{overhead_mib:.2},\"snapshot_ms\":{:.1},\"restore_ms\":{restore_ms:.1},\"diff_snapshot_ms\":{:.1},\"full_snapshot_bytes\":{},\"diff_snapshot_bytes\":{},\"full_snapshot_disk_bytes\":{},\"diff_snapshot_disk_bytes\":{},\"restored_ok\":{ok}}}",
        assets.kernel_version,
        crate::x86::software_kvm(),
        full.millis,
        diff.millis,
        full.memory_bytes,
        diff.memory_bytes,
        full.disk_bytes,
        diff.disk_bytes
    );
    Ok(())
}
