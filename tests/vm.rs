//! `offcard vm`: boots the real Debian guest kernel with a busybox initramfs
//! (fetched and cached on first use), checks the console, snapshots it at two
//! checkpoints (full, then diff) and restores each in a NEW process (`offcard vm
//! restore`): the guest's counter continues and guest memory hashes match.
//! (Moved from hypervisor-glue/tests/linux_guest.rs, which spawned the crate's
//! own `offcard-vmm` binary; the `offcard` binary is now the only command line.)

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_offcard");

/// Print straight to the process's stderr, past the test harness's output capture,
/// so that a skip is visible in every `cargo test` run.
fn loud(msg: &str) {
    use std::io::Write;
    let bar = "=".repeat(78);
    let _ = writeln!(std::io::stderr(), "\n{bar}\n{msg}\n{bar}\n");
}

/// Returns false (after a loud SKIPPED message) when /dev/kvm is unusable.
fn kvm_or_skip(test: &str) -> bool {
    match offcard_vmm::kvm_available() {
        Ok(()) => true,
        Err(why) => {
            loud(&format!("SKIPPED {test}: {why}. The KVM tests need /dev/kvm."));
            false
        }
    }
}

fn tmpdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("offcard-vm-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN).args(args).output().expect("spawn offcard");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn hash_after(s: &str, key: &str) -> String {
    let i = s.find(key).unwrap_or_else(|| panic!("{key} not in {s}"));
    s[i..].split_whitespace().find_map(|w| w.strip_prefix("mem_hash=")).unwrap().to_string()
}

/// A checkpoint that is not TEXT=DIR fails in parsing (exit 2), before any guest starts.
#[test]
fn vm_run_rejects_a_bad_checkpoint() {
    let out = Command::new(BIN).args(["vm", "run", "--checkpoint", "no-directory"]).output().unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{e}");
    assert!(e.contains("TEXT=DIR"), "{e}");
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
