//! Boots the real Debian guest kernel (fetched and cached by assets/fetch.sh on
//! first use) far enough to print its banner. The boot / snapshot / restore-in-a-new-
//! process test runs the `offcard` binary and so lives with the root package's
//! tests (tests/vm.rs).

mod common;
use common::*;

/// Always runs (when /dev/kvm works), also on software KVM: fetches the assets, builds
/// the initramfs, loads Debian's kernel (vmlinux and bzImage) and runs the vmlinux
/// until it prints its banner on the serial console.
#[test]
fn debian_kernel_loads_and_prints_its_banner() {
    if !kvm_or_skip("debian_kernel_loads_and_prints_its_banner") {
        return;
    }
    use offcard_vmm::{default_cmdline, GuestAssets, RunOptions, StopReason, Vm, VmConfig};
    let t0 = std::time::Instant::now();
    let assets = GuestAssets::ensure(None).expect("guest assets");
    let initrd = assets.initramfs(&format!("banner-{}", std::process::id()), "echo hi", &[]).unwrap();
    eprintln!("[banner test] assets + initramfs in {:.1} s", t0.elapsed().as_secs_f64());
    let mut vm = Vm::new(VmConfig { mem_mib: 128, ..Default::default() }).unwrap();
    vm.load_linux(&assets.bzimage, Some(&initrd), &default_cmdline()).expect("bzImage loads");
    let mut vm = Vm::new(VmConfig { mem_mib: 128, ..Default::default() }).unwrap();
    let cmdline = default_cmdline() + " earlyprintk=serial,ttyS0";
    vm.load_linux(&assets.kernel, Some(&initrd), &cmdline).expect("vmlinux loads");
    let _ = std::fs::remove_file(&initrd);
    let r = vm
        .run(&RunOptions { timeout: Some(std::time::Duration::from_secs(120)), stop_on_console: Some("Command line: ".into()) })
        .unwrap();
    let out = vm.console_output();
    assert_eq!(r, StopReason::ConsoleMatch, "no banner within 120 s:\n{out}");
    assert!(out.contains("Linux version 6.1."), "{out}");
    eprintln!("[banner test] kernel banner after {:.1} s", t0.elapsed().as_secs_f64());
}
