//! KVM tests with tiny hand-assembled guest programs (fast, exact control of what the
//! guest touches): dirty logging, illegal I/O, snapshot/restore in a new process, bad input.

mod common;
use common::*;

use std::time::Duration;

use offcard_vmm::{bitmap_to_pages, DirtyRange, DirtyTracker, RunOptions, StopReason, Vm, VmConfig};
use vm_memory::{Bytes, GuestAddress};

fn small_vm() -> Vm {
    Vm::new(VmConfig { mem_mib: 64, ..Default::default() }).expect("create VM")
}

fn run(vm: &mut Vm, secs: u64) -> StopReason {
    vm.run(&RunOptions { timeout: Some(Duration::from_secs(secs)), stop_on_console: None }).expect("run")
}

#[test]
fn dirty_log_reports_pages_the_guest_wrote() {
    if !kvm_or_skip("dirty_log_reports_pages_the_guest_wrote") {
        return;
    }
    let mut vm = small_vm();
    let pages: Vec<u64> = vec![0x20_0000, 0x20_1000, 0x23_7000, 0x40_0000, 0x1ff_f000, 0x2a0_0000, 0x3ff_f000];
    let mut code = Vec::new();
    for &p in &pages {
        code.extend_from_slice(&[0x48, 0xB8]);
        code.extend_from_slice(&(p + 0x123).to_le_bytes()); // mov rax, p+0x123
        code.extend_from_slice(&[0xC6, 0x00, 0xAB]); // mov byte [rax], 0xab
    }
    code.extend_from_slice(&[0xB0, 0x01, 0xE6, 0xF4, 0xF4]);
    vm.load_long_mode_code(&code, CODE_ADDR).unwrap();
    let size = vm.memory().size();
    let all = DirtyRange { iova: 0, length: size };
    vm.dirty_start(&[all], 4096).unwrap();
    assert_eq!(run(&mut vm, 60), StopReason::DebugExit(1));

    let bm = vm.dirty_report_and_clear(all, 4096).unwrap();
    let got = bitmap_to_pages(&bm, 0, 4096);
    for p in &pages {
        assert!(got.contains(p), "page {p:#x} written by the guest not reported; got {got:x?}");
    }
    assert!(got.len() < pages.len() + 16, "too many pages reported: {got:x?}");
    for p in &pages {
        assert_eq!(vm.memory().guest_memory().read_obj::<u8>(GuestAddress(p + 0x123)).unwrap(), 0xab);
    }
    // Reported pages were cleared.
    let again = bitmap_to_pages(&vm.dirty_report_and_clear(all, 4096).unwrap(), 0, 4096);
    assert!(again.iter().all(|p| !pages.contains(p)), "not cleared: {again:x?}");

    // A sub-range and a larger page size give the same answer at their granularity.
    vm.dirty_stop().unwrap();
    vm.dirty_start(&[DirtyRange { iova: 0x20_0000, length: 0x20_0000 }], 0x20_0000).unwrap();
    vm.load_long_mode_code(&code, CODE_ADDR).unwrap();
    assert_eq!(run(&mut vm, 60), StopReason::DebugExit(1));
    let bm = vm.dirty_report_and_clear(DirtyRange { iova: 0x20_0000, length: 0x20_0000 }, 0x20_0000).unwrap();
    assert_eq!(bm, vec![1]);
    assert!(vm.dirty_report_and_clear(DirtyRange { iova: 0, length: 0x1000 }, 0x20_0000).is_err());
    vm.dirty_stop().unwrap();
}

#[test]
fn guest_memory_is_shared_through_the_fd() {
    if !kvm_or_skip("guest_memory_is_shared_through_the_fd") {
        return;
    }
    let mut vm = small_vm();
    // Another mapping of the same file (as the card's DMA would have) sees guest writes.
    let f = std::fs::OpenOptions::new().read(true).write(true).open(vm.memory().fd_path()).unwrap();
    let len = vm.memory().size() as usize;
    // SAFETY: mapping a file we own for the test.
    let p = unsafe {
        libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, std::os::fd::AsRawFd::as_raw_fd(&f), 0)
    };
    assert_ne!(p, libc::MAP_FAILED);
    let other = unsafe { std::slice::from_raw_parts_mut(p as *mut u8, len) };
    other[0x30_0000] = 0x5a; // "DMA" write the guest will read back
    let mut code = vec![0x8A, 0x04, 0x25, 0x00, 0x00, 0x30, 0x00]; // mov al, [0x300000]
    code.extend_from_slice(&[0x88, 0x04, 0x25, 0x08, 0x00, 0x30, 0x00]); // mov [0x300008], al
    code.extend_from_slice(&[0xE6, 0xF4, 0xF4]); // out 0xf4, al
    vm.load_long_mode_code(&code, CODE_ADDR).unwrap();
    assert_eq!(run(&mut vm, 60), StopReason::DebugExit(0x5a));
    assert_eq!(other[0x30_0008], 0x5a);
    unsafe { libc::munmap(p, len) };
}

#[test]
fn illegal_guest_io_is_ignored_not_fatal() {
    if !kvm_or_skip("illegal_guest_io_is_ignored_not_fatal") {
        return;
    }
    let mut vm = small_vm();
    let mut code = vec![0x66, 0xBA, 0x34, 0x12, 0xEE, 0xEC]; // mov dx,0x1234; out dx,al; in al,dx
    code.extend_from_slice(&[0x48, 0xB8]);
    code.extend_from_slice(&0x3000_0000u64.to_le_bytes()); // mov rax, 0x30000000 (no RAM there)
    code.extend_from_slice(&[0x48, 0x8B, 0x18, 0x48, 0x89, 0x18]); // mov rbx,[rax]; mov [rax],rbx
    code.extend_from_slice(&[0xE4, 0x61, 0x88, 0xD8, 0xE6, 0xF4, 0xF4]); // in al,0x61; mov al,bl; out 0xf4,al
    vm.load_long_mode_code(&code, CODE_ADDR).unwrap();
    // The MMIO read of unbacked memory returns all ones.
    assert_eq!(run(&mut vm, 60), StopReason::DebugExit(0xff));
    assert!(vm.unknown_io_ports().contains(&0x1234));
}

#[test]
fn bad_inputs_give_clear_errors() {
    if !kvm_or_skip("bad_inputs_give_clear_errors") {
        return;
    }
    let d = tmpdir("badinput");
    let mut vm = small_vm();
    let e = vm.load_linux(&d.join("no-such-kernel"), None, "console=ttyS0").unwrap_err();
    assert!(format!("{e:#}").contains("cannot open kernel image"), "{e:#}");
    std::fs::write(d.join("junk"), vec![0x42u8; 8192]).unwrap();
    let e = vm.load_linux(&d.join("junk"), None, "console=ttyS0").unwrap_err();
    assert!(format!("{e:#}").contains("not a loadable"), "{e:#}");
    let e = Vm::restore(&d.join("no-snapshot"), false).err().unwrap();
    assert!(format!("{e:#}").contains("cannot read snapshot state"), "{e:#}");
    assert!(Vm::new(VmConfig { mem_mib: 1, ..Default::default() }).is_err());
    assert!(offcard_vmm::commands::parse_checkpoint("no-directory").is_err());
    let _ = std::fs::remove_dir_all(&d);
}

/// Helper mode: when OFFCARD_VMM_HELPER is set this "test" restores a snapshot in this
/// fresh process, checks the counter, runs the guest to its end and reports on stdout.
#[test]
fn helper_restore_counter() {
    let Ok(dir) = std::env::var("OFFCARD_VMM_HELPER_RESTORE") else { return };
    let mut vm = Vm::restore(std::path::Path::new(&dir), false).expect("restore");
    let c0: u64 = vm.memory().guest_memory().read_obj(GuestAddress(COUNTER_ADDR)).unwrap();
    println!("HELPER restored counter={c0} hash={:#x}", vm.memory().hash());
    let r = run(&mut vm, 120);
    let c1: u64 = vm.memory().guest_memory().read_obj(GuestAddress(COUNTER_ADDR)).unwrap();
    println!("HELPER stop={r:?} counter={c1} dots={}", vm.console_output().matches('.').count());
}

fn helper(dir: &std::path::Path) -> String {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "helper_restore_counter", "--nocapture", "--test-threads=1"])
        .env("OFFCARD_VMM_HELPER_RESTORE", dir)
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "helper failed: {s}");
    s
}

fn field(s: &str, key: &str) -> String {
    s.split_whitespace().find_map(|w| w.strip_prefix(key)).unwrap_or_else(|| panic!("{key} missing in {s}")).to_string()
}

#[test]
fn snapshot_restore_in_new_process_and_diff() {
    if !kvm_or_skip("snapshot_restore_in_new_process_and_diff") {
        return;
    }
    let d = tmpdir("snap");
    let limit = 48 * 4096;
    let mut vm = small_vm();
    vm.load_long_mode_code(&counter_program(limit), CODE_ADDR).unwrap();
    let stop = |n: usize| RunOptions { timeout: Some(Duration::from_secs(120)), stop_on_console: Some(".".repeat(n)) };
    assert_eq!(vm.run(&stop(16)).unwrap(), StopReason::ConsoleMatch);
    let full = vm.snapshot(&d.join("full"), false).unwrap();
    let c_full: u64 = vm.memory().guest_memory().read_obj(GuestAddress(COUNTER_ADDR)).unwrap();
    assert_eq!(c_full, 16 * 4096);
    assert_eq!(vm.run(&stop(24)).unwrap(), StopReason::ConsoleMatch);
    let diff = vm.snapshot(&d.join("diff"), true).unwrap();
    let c_diff: u64 = vm.memory().guest_memory().read_obj(GuestAddress(COUNTER_ADDR)).unwrap();
    assert_eq!(c_diff, 24 * 4096);
    println!("full: {full:?}\ndiff: {diff:?}");
    assert!(diff.memory_bytes < full.memory_bytes, "diff {} !< full {}", diff.memory_bytes, full.memory_bytes);
    assert!(diff.disk_bytes < full.disk_bytes);
    drop(vm);

    // Restore the full snapshot in a new process: the counter continues from 16*4096.
    let s = helper(&d.join("full"));
    assert_eq!(field(&s, "counter="), (16 * 4096).to_string(), "{s}");
    assert_eq!(field(&s, "hash="), format!("{:#x}", full.mem_hash), "{s}");
    assert!(s.contains("stop=DebugExit(2) counter=196608 dots=32"), "{s}");
    // And the diff (applied on its parent).
    let s = helper(&d.join("diff"));
    assert_eq!(field(&s, "hash="), format!("{:#x}", diff.mem_hash), "{s}");
    assert!(s.contains("restored counter=98304"), "{s}");
    assert!(s.contains("stop=DebugExit(2) counter=196608 dots=24"), "{s}");

    // Corruption is detected with a clear error.
    let st = d.join("full/vm.state");
    let mut bytes = std::fs::read(&st).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x55;
    std::fs::write(&st, &bytes).unwrap();
    let e = Vm::restore(&d.join("full"), false).err().unwrap();
    assert!(format!("{e:#}").contains("checksum mismatch"), "{e:#}");
    let md = d.join("diff/memory.diff");
    let mut bytes = std::fs::read(&md).unwrap();
    let n = bytes.len();
    bytes[n - 100] ^= 1;
    std::fs::write(&md, &bytes).unwrap();
    let e = Vm::restore(&d.join("diff"), false).err().unwrap();
    assert!(format!("{e:#}").contains("corrupt"), "{e:#}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn two_vcpus_pause_snapshot_restore() {
    if !kvm_or_skip("two_vcpus_pause_snapshot_restore") {
        return;
    }
    let d = tmpdir("smp");
    // vCPU 1 stays in wait-for-SIPI inside KVM_RUN; pausing must still kick it out.
    let mut vm = Vm::new(VmConfig { mem_mib: 32, vcpus: 2, ..Default::default() }).unwrap();
    vm.load_long_mode_code(&counter_program(12 * 4096), CODE_ADDR).unwrap();
    let r = vm.run(&RunOptions { timeout: Some(Duration::from_secs(60)), stop_on_console: Some("....".into()) }).unwrap();
    assert_eq!(r, StopReason::ConsoleMatch);
    // A timeout pause with both vCPUs running, then resume.
    let r = vm.run(&RunOptions { timeout: Some(Duration::from_millis(20)), stop_on_console: None }).unwrap();
    assert!(matches!(r, StopReason::Timeout | StopReason::DebugExit(2)), "{r:?}");
    if r == StopReason::Timeout {
        let info = vm.snapshot(&d.join("s"), false).unwrap();
        drop(vm);
        let mut vm2 = Vm::restore(&d.join("s"), false).unwrap();
        assert_eq!(vm2.memory().hash(), info.mem_hash);
        assert_eq!(run(&mut vm2, 60), StopReason::DebugExit(2));
        let c: u64 = vm2.memory().guest_memory().read_obj(GuestAddress(COUNTER_ADDR)).unwrap();
        assert_eq!(c, 12 * 4096);
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn sse_control_register_instructions_work() {
    // ldmxcsr/stmxcsr: on software KVM these are completed by the VMM (KVM's emulator
    // lacks them and the Linux kernel uses them in kernel_fpu_begin).
    if !kvm_or_skip("sse_control_register_instructions_work") {
        return;
    }
    let mut vm = small_vm();
    let mut code = vec![0x48, 0xBC];
    code.extend_from_slice(&0x8000u64.to_le_bytes()); // mov rsp, 0x8000
    code.extend_from_slice(&[0xC7, 0x44, 0x24, 0x04, 0x80, 0x7F, 0x00, 0x00]); // mov dword [rsp+4], 0x7f80
    code.extend_from_slice(&[0x0F, 0xAE, 0x54, 0x24, 0x04]); // ldmxcsr [rsp+4]
    code.extend_from_slice(&[0x0F, 0xAE, 0x5C, 0x24, 0x08]); // stmxcsr [rsp+8]
    code.extend_from_slice(&[0x8B, 0x44, 0x24, 0x08, 0xC1, 0xE8, 0x08]); // mov eax,[rsp+8]; shr eax,8
    code.extend_from_slice(&[0xE6, 0xF4, 0xF4]); // out 0xf4, al
    vm.load_long_mode_code(&code, CODE_ADDR).unwrap();
    assert_eq!(run(&mut vm, 60), StopReason::DebugExit(0x7f));
}

#[test]
fn named_memory_file_survives_restore() {
    if !kvm_or_skip("named_memory_file_survives_restore") {
        return;
    }
    let d = tmpdir("memfile");
    let f1 = d.join("ram1");
    let mut vm = Vm::new(VmConfig { mem_mib: 32, mem_file: Some(f1.clone()), ..Default::default() }).unwrap();
    assert_eq!(vm.memory().fd_path(), f1);
    vm.load_long_mode_code(&counter_program(8 * 4096), CODE_ADDR).unwrap();
    let r = vm.run(&RunOptions { timeout: Some(Duration::from_secs(60)), stop_on_console: Some("...".into()) }).unwrap();
    assert_eq!(r, StopReason::ConsoleMatch);
    vm.snapshot(&d.join("s"), false).unwrap();
    // Another process reading the file sees the guest's counter.
    let bytes = std::fs::read(&f1).unwrap();
    let c = u64::from_le_bytes(bytes[COUNTER_ADDR as usize..COUNTER_ADDR as usize + 8].try_into().unwrap());
    assert_eq!(c, 3 * 4096);
    drop(vm);
    let f2 = d.join("ram2");
    let mut vm2 = Vm::restore_with(&d.join("s"), false, Some(&f2)).unwrap();
    assert_eq!(run(&mut vm2, 60), StopReason::DebugExit(2));
    let bytes = std::fs::read(&f2).unwrap();
    let c = u64::from_le_bytes(bytes[COUNTER_ADDR as usize..COUNTER_ADDR as usize + 8].try_into().unwrap());
    assert_eq!(c, 8 * 4096);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn guest_reaches_virtio_net_registers_over_mmio() {
    if !kvm_or_skip("guest_reaches_virtio_net_registers_over_mmio") {
        return;
    }
    let mut vm = small_vm();
    let (a, _b) = offcard_vmm::devices::virtio::net::pair();
    let (base, gsi) = vm.add_virtio_net(Box::new(a), [2, 0, 0, 0, 0, 9]).unwrap();
    assert_eq!((base, gsi), (offcard_vmm::vm::VIRTIO_MMIO_BASE, 5));
    let mut code = vec![0x48, 0xBB];
    code.extend_from_slice(&base.to_le_bytes()); // mov rbx, base
    code.extend_from_slice(&[0x8B, 0x03]); // mov eax, [rbx]      (magic "virt")
    code.extend_from_slice(&[0x8B, 0x4B, 0x08]); // mov ecx, [rbx+8]  (device id 1)
    code.extend_from_slice(&[0x0F, 0xB6, 0x93, 0x05, 0x01, 0x00, 0x00]); // movzx edx, byte [rbx+0x105] (mac[5])
    code.extend_from_slice(&[0x01, 0xC8, 0x01, 0xD0]); // add eax, ecx; add eax, edx
    code.extend_from_slice(&[0xE6, 0xF4, 0xF4]); // out 0xf4, al
    vm.load_long_mode_code(&code, CODE_ADDR).unwrap();
    // 0x76 ('v') + 1 + 9
    assert_eq!(run(&mut vm, 60), StopReason::DebugExit(0x76 + 1 + 9));
}

/// A guest program that is a minimal virtio-net driver: it programs the device's
/// registers, kicks the transmit queue (frame prepared in its RAM), then spins until
/// a received frame appears in its receive buffer and exits with its first byte.
#[test]
fn guest_driver_sends_and_receives_through_virtio_net() {
    if !kvm_or_skip("guest_driver_sends_and_receives_through_virtio_net") {
        return;
    }
    let mut vm = small_vm();
    let (a, mut peer) = offcard_vmm::devices::virtio::net::pair();
    let (base, _) = vm.add_virtio_net(Box::new(a), [2, 0, 0, 0, 0, 7]).unwrap();
    let m = vm.memory().guest_memory().clone();
    let q = |i: u64| 0x40_0000 + i * 0x1_0000; // desc, avail +0x1000, used +0x2000
    let (rxbuf, txbuf) = (0x50_0000u64, 0x51_0000u64);
    // Receive queue: one 2 KiB device-writable buffer. Transmit: header + frame.
    let tx_frame: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
    let mut tx = vec![0u8; 12];
    tx.extend_from_slice(&tx_frame);
    m.write_slice(&tx, GuestAddress(txbuf)).unwrap();
    for (qi, addr, len, flags) in [(0u64, rxbuf, 2048u32, 2u16), (1, txbuf, tx.len() as u32, 0)] {
        m.write_obj(addr, GuestAddress(q(qi))).unwrap();
        m.write_obj(len, GuestAddress(q(qi) + 8)).unwrap();
        m.write_obj(flags, GuestAddress(q(qi) + 12)).unwrap();
        m.write_obj(0u16, GuestAddress(q(qi) + 0x1000 + 4)).unwrap(); // ring[0] = desc 0
        m.write_obj(1u16, GuestAddress(q(qi) + 0x1000 + 2)).unwrap(); // avail idx = 1
    }
    let rx_frame: Vec<u8> = (0..200u32).map(|i| (0xA5 ^ i) as u8).collect();
    use offcard_vmm::devices::virtio::net::NetBackend;
    peer.send(&rx_frame).unwrap();

    let mut code = vec![0x48, 0xBB];
    code.extend_from_slice(&base.to_le_bytes()); // mov rbx, base
    let mut w = |off: i32, v: u32| {
        code.extend_from_slice(&[0xC7, 0x83]);
        code.extend_from_slice(&off.to_le_bytes());
        code.extend_from_slice(&v.to_le_bytes());
    };
    w(0x70, 1);
    w(0x70, 3);
    w(0x24, 1);
    w(0x20, 1); // VERSION_1
    w(0x70, 11);
    for qi in 0..2u64 {
        w(0x30, qi as u32);
        w(0x38, 1);
        w(0x80, q(qi) as u32);
        w(0x90, (q(qi) + 0x1000) as u32);
        w(0xa0, (q(qi) + 0x2000) as u32);
        w(0x44, 1);
    }
    w(0x70, 15);
    w(0x50, 1); // kick transmit
    let used0 = q(0) + 0x2000 + 2;
    code.extend_from_slice(&[0x66, 0x8B, 0x04, 0x25]);
    code.extend_from_slice(&(used0 as u32).to_le_bytes()); // spin: mov ax, [used0]
    code.extend_from_slice(&[0x66, 0x85, 0xC0, 0x74, 0xF3]); // test ax,ax; jz spin (-13)
    code.extend_from_slice(&[0x8A, 0x04, 0x25]);
    code.extend_from_slice(&((rxbuf + 12) as u32).to_le_bytes()); // mov al, [rxbuf+12]
    code.extend_from_slice(&[0xE6, 0xF4, 0xF4]);
    vm.load_long_mode_code(&code, CODE_ADDR).unwrap();
    let all = DirtyRange { iova: 0, length: vm.memory().size() };
    vm.dirty_start(&[all], 4096).unwrap();
    assert_eq!(run(&mut vm, 60), StopReason::DebugExit(rx_frame[0]));
    // The receive buffer was written only by the device (the guest only read it):
    // the dirty log still reports it, merged from the VMM's own writes.
    let dirty = bitmap_to_pages(&vm.dirty_report_and_clear(all, 4096).unwrap(), 0, 4096);
    assert!(dirty.contains(&rxbuf), "device-written page missing from the dirty log: {dirty:x?}");
    assert!(dirty.contains(&(q(0) + 0x2000)), "used ring page missing: {dirty:x?}");
    vm.dirty_stop().unwrap();
    assert_eq!(peer.try_recv().unwrap().as_deref(), Some(&tx_frame[..]), "transmitted frame");
    let mut got = vec![0u8; rx_frame.len()];
    m.read_slice(&mut got, GuestAddress(rxbuf + 12)).unwrap();
    assert_eq!(got, rx_frame, "received frame");
    let used_len: u32 = m.read_obj(GuestAddress(q(0) + 0x2000 + 8)).unwrap();
    assert_eq!(used_len as usize, 12 + rx_frame.len());
}
