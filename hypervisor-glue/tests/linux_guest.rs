//! Boots the real Debian guest kernel with a busybox initramfs (fetched and cached by
//! assets/fetch.sh on first use), checks the console, snapshots it at two checkpoints
//! (full, then diff) and restores each in a NEW process (the offcard-vmm binary): the
//! guest's counter continues and guest memory hashes match.

mod common;
use common::*;

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_offcard-vmm");

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN).args(args).output().expect("spawn offcard-vmm");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn hash_after(s: &str, key: &str) -> String {
    let i = s.find(key).unwrap_or_else(|| panic!("{key} not in {s}"));
    s[i..].split_whitespace().find_map(|w| w.strip_prefix("mem_hash=")).unwrap().to_string()
}

#[test]
fn linux_boots_snapshots_and_restores_in_new_process() {
    if !kvm_or_skip("linux_boots_snapshots_and_restores_in_new_process") {
        return;
    }
    if offcard_vmm::x86::software_kvm() && std::env::var_os("OFFCARD_VMM_SLOW_LINUX").is_none() {
        loud(
            "SKIPPED linux_boots_snapshots_and_restores_in_new_process: KVM on this machine is the\n\
             PVM module (no VT-x/SVM): the guest kernel's ring 0 runs in KVM's instruction\n\
             emulator at ~1M instructions/s, so Debian's kernel needs many minutes to reach\n\
             init. Set OFFCARD_VMM_SLOW_LINUX=1 to run it anyway (timeouts scale up). The\n\
             raw-guest tests (tests/raw_guest.rs) cover the same VMM paths quickly.",
        );
        return;
    }
    let slow = offcard_vmm::x86::software_kvm();
    let (t_boot, t_restore) = if slow { ("3000", "1500") } else { ("280", "200") };
    let t0 = std::time::Instant::now();
    // Fetch (first time: apt-get download, ~28 MB; progress on stderr) or reuse the cache.
    let (ok, out, err) = run(&["vm", "fetch-assets"]);
    assert!(ok, "fetch-assets failed:\n{out}\n{err}");
    eprintln!("[linux test] assets ready after {:.1} s: {}", t0.elapsed().as_secs_f64(), out.trim());

    let d = tmpdir("linux");
    let (full, diff) = (d.join("full"), d.join("diff"));
    let script = "echo \"guest says: $(uname -s) $(uname -r)\"; echo 'sum:' $((6*7)); \
                  i=0; while [ $i -lt 12 ]; do i=$((i+1)); echo \"COUNTER $i\"; usleep 50000; done";
    let cp1 = format!("COUNTER 4\\n={}", full.display());
    let cp2 = format!("COUNTER 8\\n={}", diff.display());
    let (ok, out, err) = run(&["vm", "run", "--mem", "128", "--timeout", t_boot, "--script", script, "--checkpoint", &cp1, "--checkpoint", &cp2]);
    eprintln!("[linux test] boot + 2 snapshots took {:.1} s", t0.elapsed().as_secs_f64());
    assert!(ok, "vm run failed:\nSTDOUT:\n{out}\nSTDERR:\n{err}");
    assert!(out.contains("Linux version 6."), "no kernel banner:\n{out}");
    assert!(out.contains("OFFCARD-INIT: started"), "init did not start:\n{out}");
    assert!(out.contains("guest says: Linux 6."), "{out}");
    assert!(out.contains("sum: 42"), "{out}");
    assert!(out.contains("COUNTER 4\n") && out.contains("COUNTER 8\n"), "{out}");
    assert!(!out.contains("COUNTER 9\n"), "ran past the second checkpoint:\n{out}");
    let full_hash = hash_after(&err, "kind=full");
    let diff_hash = hash_after(&err, "kind=diff");
    let bytes = |kind: &str| -> u64 {
        let i = err.find(kind).unwrap();
        err[i..].split_whitespace().find_map(|w| w.strip_prefix("memory_bytes=")).unwrap().parse().unwrap()
    };
    assert!(bytes("kind=diff") < bytes("kind=full"), "diff not smaller:\n{err}");

    // Restore the diff (on top of the full one) in a new process: counting goes on from 9.
    let (ok, out2, err2) = run(&["vm", "restore", "--snapshot", diff.to_str().unwrap(), "--timeout", t_restore]);
    eprintln!("[linux test] restore of diff finished at {:.1} s", t0.elapsed().as_secs_f64());
    assert!(ok, "restore failed:\n{out2}\n{err2}");
    assert_eq!(hash_after(&err2, "restored"), diff_hash, "{err2}");
    assert!(!out2.contains("Linux version"), "guest rebooted instead of continuing:\n{out2}");
    assert!(!out2.contains("COUNTER 8\n") && out2.contains("COUNTER 9\n") && out2.contains("COUNTER 12\n"), "{out2}");
    assert!(out2.contains("OFFCARD-INIT: done rc=0"), "guest did not finish its script:\n{out2}");

    // And the full one: counting goes on from 5.
    let (ok, out3, err3) = run(&["vm", "restore", "--snapshot", full.to_str().unwrap(), "--timeout", t_restore]);
    eprintln!("[linux test] restore of full finished at {:.1} s", t0.elapsed().as_secs_f64());
    assert!(ok, "restore failed:\n{out3}\n{err3}");
    assert_eq!(hash_after(&err3, "restored"), full_hash, "{err3}");
    assert!(out3.contains("COUNTER 5\n") && out3.contains("COUNTER 12\n") && !out3.contains("COUNTER 4\n"), "{out3}");
    assert!(out3.contains("OFFCARD-INIT: done rc=0"), "{out3}");
    let _ = std::fs::remove_dir_all(&d);
}

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
