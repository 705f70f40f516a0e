//! The `offcard` binary end to end: the demo, a benchmark's JSON line, and the
//! secured management API served by the simulated card.
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn offcard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_offcard"))
}

#[test]
fn demo_passes_every_step() {
    let out = offcard().arg("demo").output().unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{s}\n{}", String::from_utf8_lossy(&out.stderr));
    for needle in ["enumerated: f0ca:0c01", "magic 0x4f464643", "scratch test", "interrupt received", "MSI_SENT                   1", "demo: host view of the card passed", "data verified", "demo: DMA and dirty logging passed", "RX queue 2: tenant  7", "demo: network queues passed"] {
        assert!(s.contains(needle), "demo output lacks {needle:?}:\n{s}");
    }
}

#[test]
fn demo_vfio_fails_clearly_here() {
    if std::path::Path::new("/dev/vfio/vfio").exists() {
        eprintln!("SKIPPED: /dev/vfio exists on this host");
        return;
    }
    let out = offcard().args(["demo", "--vfio", "0000:01:00.0"]).output().unwrap();
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("/dev/vfio/vfio") && e.contains("vfio-pci"), "{e}");
}

#[test]
fn bench_sim_ends_with_json_line() {
    let out = offcard().args(["bench", "sim", "--json"]).output().unwrap();
    assert!(out.status.success());
    let s = String::from_utf8_lossy(&out.stdout);
    let last = s.lines().last().unwrap();
    for k in ["verilator_cycles_per_s", "rusthdl_cycles_per_s", "mmio_read_cycles"] {
        assert!(last.starts_with('{') && last.contains(k), "last line {last:?} lacks {k}");
    }
}

#[test]
fn bench_dma_ends_with_json_line() {
    let out = offcard().args(["bench", "dma", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = String::from_utf8_lossy(&out.stdout);
    let last = s.lines().last().unwrap();
    for k in ["dma_efficiency_4k", "record_overhead_4k", "dma_efficiency_64k"] {
        assert!(last.starts_with('{') && last.contains(k), "last line {last:?} lacks {k}");
    }
}

#[test]
fn vm_subcommand_reaches_the_hypervisor() {
    let out = offcard().args(["vm", "restore", "--snapshot", "/nonexistent/snap"]).output().unwrap();
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("snap") && !e.contains("unknown command"), "{e}");
}

#[test]
fn mgmt_reads_card_counters_through_sealed_api() {
    let home = std::env::temp_dir().join(format!("offcard-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).unwrap();
    let out = offcard().env("OFFCARD_HOME", &home).arg("keygen").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let all = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let line = all.lines().find(|l| l.contains("# this key")).expect("keygen prints an authorized_keys line");
    let key = line.split_whitespace().next().unwrap();
    std::fs::write(home.join("authorized_keys"), format!("{key} read-counters,program-way-mask,read-write-records\n")).unwrap();
    let mut server = offcard().env("OFFCARD_HOME", &home).arg("serve").stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let sock = home.join("mgmt.sock");
    let t = Instant::now();
    while !sock.exists() && t.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = offcard().env("OFFCARD_HOME", &home).args(["mgmt", "read-counters"]).output().unwrap();
    let denied = offcard().env("OFFCARD_HOME", &home).args(["mgmt", "read-host-memory", "0", "16"]).output().unwrap();
    let nocache = offcard().env("OFFCARD_HOME", &home).args(["mgmt", "program-way-mask", "1", "3"]).output().unwrap();
    let recs = offcard().env("OFFCARD_HOME", &home).args(["mgmt", "read-write-records", "16"]).output().unwrap();
    server.kill().unwrap();
    let _ = server.wait();
    let s = String::from_utf8_lossy(&r.stdout).to_string() + &String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success(), "{s}");
    assert!(s.contains("rx_tlp") && s.contains("msi_sent"), "card counters missing:\n{s}");
    assert!(!denied.status.success(), "unauthorized op must be refused");
    let n = String::from_utf8_lossy(&nocache.stdout).to_string() + &String::from_utf8_lossy(&nocache.stderr);
    assert!(!nocache.status.success() && n.contains("tagged cache"), "{n}");
    let rs = String::from_utf8_lossy(&recs.stdout).to_string() + &String::from_utf8_lossy(&recs.stderr);
    assert!(recs.status.success(), "read-write-records through the card failed: {rs}");
    let _ = std::fs::remove_dir_all(&home);
}
