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
    for needle in ["enumerated: f0ca:0c01", "magic 0x4f464643", "scratch test", "interrupt received", "MSI_SENT                   1", "demo: host view of the card passed", "data verified", "demo: DMA and dirty logging passed", "tenant 3 (spray   ) one flow", "received back: 144 packets", "malformed packets dropped and counted", "demo: overlay network passed", "partitioned: tenant 1 hit rate"] {
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
    // Not a terminal: no progress bar, so no control characters anywhere,
    // and the stage lines still reach stderr as plain text.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.stdout.contains(&0x1b) && !out.stderr.contains(&0x1b), "terminal control characters in captured output: {err}");
    assert!(err.contains("bench sim:"), "{err}");
    let quiet = offcard().args(["bench", "sim", "--quiet"]).output().unwrap();
    assert!(quiet.status.success() && !String::from_utf8_lossy(&quiet.stderr).contains("bench sim:"), "--quiet still prints progress");
    let s = String::from_utf8_lossy(&out.stdout);
    let last = s.lines().last().unwrap();
    for k in ["verilator_cycles_per_s", "rusthdl_cycles_per_s", "mmio_read_cycles"] {
        assert!(last.starts_with('{') && last.contains(k), "last line {last:?} lacks {k}");
    }
}

#[test]
fn bench_dma_ends_with_json_line() {
    let dir = std::env::temp_dir().join(format!("offcard-dma-plots-{}", std::process::id()));
    let out = offcard().args(["bench", "dma", "--json", "--plots"]).arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    check_plot(&dir, "dma_efficiency", "efficiency by transfer size");
    check_plot(&dir, "dma_record_overhead", "overhead by transfer size");
    let _ = std::fs::remove_dir_all(&dir);
    let s = String::from_utf8_lossy(&out.stdout);
    let last = s.lines().last().unwrap();
    for k in ["dma_efficiency_4k", "record_overhead_4k", "dma_efficiency_64k"] {
        assert!(last.starts_with('{') && last.contains(k), "last line {last:?} lacks {k}");
    }
}

#[test]
fn bench_virtio_ends_with_json_line() {
    let out = offcard().args(["bench", "virtio", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = String::from_utf8_lossy(&out.stdout);
    let j: serde_json::Value = serde_json::from_str(s.lines().last().unwrap()).unwrap();
    for tag in ["64_1buf", "64_2buf", "1514_1buf", "1514_2buf"] {
        let c = j[format!("cycles_per_frame_{tag}")].as_f64().unwrap_or_else(|| panic!("{tag} missing: {j}"));
        // A frame cannot leave faster than the encapsulation output sends it.
        let frame: f64 = tag.split('_').next().unwrap().parse().unwrap();
        assert!(c >= ((frame + 50.0) / 8.0).ceil(), "{tag}: {c} cycles a frame");
        assert!(j[format!("doorbells_{tag}")].as_u64().unwrap() >= 1);
    }
}

#[test]
fn bench_encap_ends_with_json_line() {
    let pcap = std::env::temp_dir().join(format!("offcard-encap-{}.pcap", std::process::id()));
    let dir = std::env::temp_dir().join(format!("offcard-encap-plots-{}", std::process::id()));
    let out = offcard().args(["bench", "encap", "--json", "--pcap"]).arg(&pcap).arg("--plots").arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    check_plot(&dir, "encap_path_load", "bytes per path");
    check_plot(&dir, "encap_reordering", "out of order");
    let _ = std::fs::remove_dir_all(&dir);
    // The capture: both hardware runs (4000 packets each), every outer frame valid Geneve.
    let frames = pcap_frames(&std::fs::read(&pcap).unwrap());
    let _ = std::fs::remove_file(&pcap);
    assert_eq!(frames.len(), 8000);
    for f in &frames {
        let (proto, dport, _) = check_frame(f).unwrap();
        assert_eq!((proto, dport), (17, 6081));
    }
    let s = String::from_utf8_lossy(&out.stdout);
    let last = s.lines().last().unwrap();
    for k in ["beats_per_cycle_64", "beats_per_cycle_1500", "single_flow_max_mean_spray", "single_flow_max_mean_perflow", "single_flow_jain_spray", "single_flow_reordered_ratio_spray", "single_flow_reorder_buffer_spray", "small_flows_jain_perflow", "flows16_max_mean_spray"] {
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
    // Listed for program-way-mask but without tags=: no tag access (deny by default).
    let notags = offcard().env("OFFCARD_HOME", &home).args(["mgmt", "program-way-mask", "1", "3"]).output().unwrap();
    let recs = offcard().env("OFFCARD_HOME", &home).args(["mgmt", "read-write-records", "16"]).output().unwrap();
    server.kill().unwrap();
    let _ = server.wait();
    let s = String::from_utf8_lossy(&r.stdout).to_string() + &String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success(), "{s}");
    assert!(s.contains("rx_tlp") && s.contains("msi_sent"), "card counters missing:\n{s}");
    assert!(!denied.status.success(), "unauthorized op must be refused");
    let n = String::from_utf8_lossy(&notags.stdout).to_string() + &String::from_utf8_lossy(&notags.stderr);
    assert!(!notags.status.success() && n.contains("tag-not-authorized"), "{n}");
    let rs = String::from_utf8_lossy(&recs.stdout).to_string() + &String::from_utf8_lossy(&recs.stderr);
    assert!(recs.status.success(), "read-write-records through the card failed: {rs}");
    let _ = std::fs::remove_dir_all(&home);
}

/// Runs `offcard serve` on the simulated card under `home` until dropped.
struct Server(std::process::Child);

impl Server {
    fn start(home: &std::path::Path) -> Server {
        let child = offcard().env("OFFCARD_HOME", home).arg("serve").stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let sock = home.join("mgmt.sock");
        let t = Instant::now();
        while !sock.exists() && t.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(sock.exists(), "offcard serve did not come up");
        Server(child)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn mgmt_programs_way_mask_and_reads_tag_counters_on_the_card() {
    let home = std::env::temp_dir().join(format!("offcard-cli-tags-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).unwrap();
    // keygen prints the line with the tags= field asked for.
    let out = offcard().env("OFFCARD_HOME", &home).args(["keygen", "--ops", "read-counters,program-way-mask,read-tag-counters", "--tags", "1,16"]).output().unwrap();
    let all = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{all}");
    let line = all.lines().find(|l| l.contains("# this key")).expect("keygen prints an authorized_keys line");
    assert!(line.contains(" read-counters,program-way-mask,read-tag-counters tags=1,16 "), "{line}");
    std::fs::write(home.join("authorized_keys"), format!("{line}\n")).unwrap();
    let _server = Server::start(&home);
    let mgmt = |args: &[&str]| {
        let o = offcard().env("OFFCARD_HOME", &home).arg("mgmt").args(args).output().unwrap();
        (o.status.success(), String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr))
    };
    let counters = |s: &str| -> Vec<(String, u64)> {
        s.lines().filter_map(|l| l.split_once(' ')).map(|(n, v)| (n.to_string(), v.trim().parse().unwrap())).collect()
    };
    let names = ["hits", "misses", "fills", "evictions", "occupancy", "way_mask"];

    // Tag 1 before anything: the card's per-tag counters, all zero after reset.
    let (ok, s) = mgmt(&["read-tag-counters", "1"]);
    assert!(ok, "{s}");
    let c = counters(&s);
    assert_eq!(c.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), names, "{s}");
    assert!(c[..5].iter().all(|(_, v)| *v == 0), "fresh cache, tag 1: {s}");
    // After reset every tag may use every way (CACHE_MASK_BASE resets to 0xff).
    assert_eq!(c[5].1, 0xff, "{s}");

    // Program tag 1's ways on the card.
    let (ok, s) = mgmt(&["program-way-mask", "1", "0x0f"]);
    assert!(ok && s.trim() == "ok", "{s}");
    let (ok, s) = mgmt(&["read-tag-counters", "1"]);
    assert!(ok, "{s}");
    let c = counters(&s);
    let get = |n: &str| c.iter().find(|(k, _)| k == n).unwrap().1;
    // No lookup or fill can reach the card through the management API; the
    // mask change flushes nothing the tag owns: still nothing filled or held.
    assert_eq!((get("fills"), get("occupancy")), (0, 0), "{s}");
    // The card holds the new mask.
    assert_eq!(get("way_mask"), 0x0f, "{s}");

    // A mask naming ways the card does not have: refused by the driver, clearly.
    let (ok, s) = mgmt(&["program-way-mask", "1", "0x1ff"]);
    assert!(!ok && s.contains("mask 0x1ff names ways beyond the 8 the cache has"), "{s}");
    // ... and left the card's mask alone.
    let (ok, s) = mgmt(&["read-tag-counters", "1"]);
    assert!(ok && counters(&s).last() == Some(&("way_mask".to_string(), 0x0f)), "{s}");
    // A tag in scope but beyond the card's 16.
    let (ok, s) = mgmt(&["read-tag-counters", "16"]);
    assert!(!ok && s.contains("tag 16 out of range") && s.contains("16 tags"), "{s}");
    let (ok, s) = mgmt(&["program-way-mask", "16", "1"]);
    assert!(!ok && s.contains("tag 16 out of range"), "{s}");
    // A tag outside the key's scope: refused in the checks.
    for args in [&["read-tag-counters", "2"][..], &["program-way-mask", "2", "0xf0"], &["read-tag-counters", "2", "--seal-params"]] {
        let (ok, s) = mgmt(args);
        assert!(!ok && s.contains("tag-not-authorized"), "{args:?}: {s}");
    }
    // The audit log saw each refusal, with the tag, and never accepted one.
    let audit = std::fs::read_to_string(home.join("audit.log")).unwrap();
    let refused: Vec<&str> = audit.lines().filter(|l| l.contains("outcome=rejected:tag-not-authorized")).collect();
    assert_eq!(refused.len(), 3, "{audit}");
    assert!(refused.iter().all(|l| l.contains("[tag 2]")), "{audit}");
    assert_eq!(audit.lines().filter(|l| l.contains("outcome=accepted")).count(), 4 + 3, "{audit}");
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn gen_verilog_help_and_bad_options_write_nothing() {
    let dir = std::env::temp_dir().join(format!("offcard-genv-{}", std::process::id()));
    let out = offcard().args(["gen-verilog", "--help", "--out"]).arg(&dir).output().unwrap();
    assert!(out.status.success());
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("blocks:") && s.contains("geneve_encap") && s.contains("rx_merge"), "{s}");
    assert!(!dir.exists(), "--help wrote Verilog");
    let out = offcard().args(["gen-verilog", "--bogus"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unexpected argument '--bogus'"));
    let out = offcard().arg("--help").output().unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    for b in ["dma", "tagged_cache", "geneve_decap", "rx_demux"] {
        assert!(s.contains(b), "--help lacks block {b}: {s}");
    }
    let out = offcard().args(["gen-verilog", "--block", "dma", "--out"]).arg(&dir).output().unwrap();
    assert!(out.status.success());
    let v = std::fs::read_to_string(dir.join("dma.v")).unwrap();
    assert!(v.contains("module offcard_dma("), "unique module name");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The subcommand names in the "Commands:" section of a `--help` text.
fn subcommands(help: &str) -> Vec<String> {
    let mut names = vec![];
    let mut inside = false;
    for l in help.lines() {
        if l == "Commands:" {
            inside = true;
        } else if inside && l.is_empty() {
            break;
        } else if inside && l.starts_with("  ") && !l.starts_with("   ") {
            let name = l.split_whitespace().next().unwrap().to_string();
            if name != "help" {
                names.push(name);
            }
        }
    }
    names
}

/// Every command path of the CLI, found by walking the `--help` texts
/// themselves (so a new subcommand is covered without editing this test).
fn all_command_paths() -> Vec<Vec<String>> {
    let mut todo = vec![vec![]];
    let mut all = vec![];
    while let Some(path) = todo.pop() {
        let out = offcard().args(&path).arg("--help").output().unwrap();
        let s = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "offcard {path:?} --help failed: {}", String::from_utf8_lossy(&out.stderr));
        assert!(s.contains("Usage: offcard"), "offcard {path:?} --help prints no usage: {s}");
        for sub in subcommands(&s) {
            let mut p = path.clone();
            p.push(sub);
            todo.push(p);
        }
        all.push(path);
    }
    all
}

#[test]
fn every_subcommand_has_help_and_rejects_unknown_options() {
    let paths = all_command_paths();
    // The tree as the README documents it: a lost subcommand fails here.
    for expected in [
        &["demo"][..],
        &["gen-verilog"],
        &["lint"],
        &["regs"],
        &["bench", "sim"],
        &["bench", "dma"],
        &["bench", "cache"],
        &["bench", "encap"],
        &["bench", "transport"],
        &["bench", "mgmt"],
        &["bench", "vm"],
        &["bench", "fabric"],
        &["synth"],
        &["synth", "check"],
        &["synth", "report"],
        &["card"],
        &["fabric", "up"],
        &["fabric", "down"],
        &["fabric", "status"],
        &["fabric", "list"],
        &["keygen"],
        &["serve"],
        &["mgmt", "read-counters"],
        &["mgmt", "program-path-table"],
        &["mgmt", "read-tag-counters"],
        &["vm", "run"],
        &["vm", "restore"],
        &["vm", "fetch-assets"],
        &["completions"],
    ] {
        assert!(paths.iter().any(|p| p == expected), "no subcommand {expected:?} in {paths:?}");
    }
    for path in paths.iter().filter(|p| !p.is_empty()) {
        // An unknown option fails in parsing (exit 2, clap's message), before anything runs.
        let out = offcard().args(path).arg("--no-such-option").output().unwrap();
        let e = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "offcard {path:?} --no-such-option: {e}");
        assert!(e.contains("unexpected argument '--no-such-option'"), "offcard {path:?}: {e}");
    }
    // An unknown command too.
    let out = offcard().arg("frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unrecognized subcommand 'frobnicate'"));
    // A value outside the choices is named with the choices.
    let out = offcard().args(["synth", "--board", "arty"]).output().unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.code() == Some(2) && e.contains("versa") && e.contains("icebreaker"), "{e}");
}

/// `offcard synth` rejects a bad board, block or seed count in parsing (exit
/// 2, before any tool is installed or run); the synthesis library has no
/// parser of its own, so these are its only checks.
#[test]
fn synth_rejects_bad_board_block_and_seeds() {
    for (args, says) in [
        (&["--board", "zed"][..], "'zed'"),
        (&["--block", "nope"], "'nope'"),
        (&["--seeds", "0"], "'0'"),
        (&["--seeds", "11"], "'11'"),
        (&["--seeds", "x"], "'x'"),
        (&["--seeds"], "--seeds"),
        (&["--bogus"], "'--bogus'"),
    ] {
        let out = offcard().arg("synth").args(args).output().unwrap();
        let e = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "offcard synth {args:?}: {e}");
        assert!(e.contains(says), "offcard synth {args:?}: {e}");
        assert!(out.stdout.is_empty(), "offcard synth {args:?} ran: {}", String::from_utf8_lossy(&out.stdout));
    }
}

#[test]
fn completions_cover_the_subcommands() {
    let out = offcard().args(["completions", "bash"]).output().unwrap();
    assert!(out.status.success());
    let s = String::from_utf8_lossy(&out.stdout);
    for w in ["_offcard()", "gen-verilog", "program-path-table", "--read-latency-ns", "--pcap"] {
        assert!(s.contains(w), "bash completion lacks {w}");
    }
    let out = offcard().args(["completions", "zsh"]).output().unwrap();
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("#compdef offcard"));
}

/// `offcard mgmt program-path-table` through `offcard serve` on the
/// simulated card: accepted and run on the card (the card receives the
/// table's register writes: its RX_TLP counter grows by at least one TLP per
/// entry), and the card's range checks come back as clear errors.
#[test]
fn mgmt_programs_a_path_table_on_the_card() {
    let home = std::env::temp_dir().join(format!("offcard-cli-paths-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).unwrap();
    let out = offcard().env("OFFCARD_HOME", &home).args(["keygen", "--ops", "read-counters,program-path-table"]).output().unwrap();
    let all = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{all}");
    let line = all.lines().find(|l| l.contains("# this key")).expect("keygen prints an authorized_keys line");
    std::fs::write(home.join("authorized_keys"), format!("{line}\n")).unwrap();
    let _server = Server::start(&home);
    let mgmt = |args: &[&str]| {
        let o = offcard().env("OFFCARD_HOME", &home).arg("mgmt").args(args).output().unwrap();
        (o.status.success(), String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr))
    };
    let rx_tlp = || -> u64 {
        let (ok, s) = mgmt(&["read-counters"]);
        assert!(ok, "{s}");
        s.lines().find_map(|l| l.strip_prefix("rx_tlp ")).unwrap_or_else(|| panic!("no rx_tlp in {s}")).trim().parse().unwrap()
    };
    let before = rx_tlp();
    let (ok, s) = mgmt(&["program-path-table", "3", "50001,50002,50003,50004,50005,50006,50007,50008"]);
    assert!(ok && s.trim() == "ok", "{s}");
    let after = rx_tlp();
    // The read-counters request itself costs a few BAR0 reads; the table is 8 writes at least.
    assert!(after >= before + 8, "the card saw {} TLPs for an 8-entry path table", after - before);
    // Sealed parameters take the same path.
    let (ok, s) = mgmt(&["program-path-table", "5", "40000,40001", "--seal-params"]);
    assert!(ok && s.trim() == "ok", "{s}");
    // The card's range checks, as clear errors.
    let (ok, s) = mgmt(&["program-path-table", "16", "50001"]);
    assert!(!ok && s.contains("tenant 16 out of range"), "{s}");
    let (ok, s) = mgmt(&["program-path-table", "3", "70000"]);
    assert!(!ok && s.contains("out of range"), "{s}");
    let audit = std::fs::read_to_string(home.join("audit.log")).unwrap();
    assert_eq!(audit.lines().filter(|l| l.contains("op=program-path-table") && l.contains("outcome=ok")).count(), 2, "{audit}");
    let _ = std::fs::remove_dir_all(&home);
}

/// Frames of a classic pcap file (little-endian, as `offcard` writes it).
fn pcap_frames(b: &[u8]) -> Vec<Vec<u8>> {
    assert_eq!(&b[..4], &0xa1b2_c3d4u32.to_le_bytes(), "pcap magic");
    assert_eq!(u32::from_le_bytes(b[20..24].try_into().unwrap()), 1, "link type Ethernet");
    let mut at = 24;
    let mut out = vec![];
    while at < b.len() {
        let incl = u32::from_le_bytes(b[at + 8..at + 12].try_into().unwrap()) as usize;
        out.push(b[at + 16..at + 16 + incl].to_vec());
        at += 16 + incl;
    }
    assert_eq!(at, b.len(), "pcap ends inside a record");
    out
}

/// The checksums of an Ethernet/IPv4 frame, checked with etherparse (an
/// independent implementation): the IPv4 header's, and the UDP or TCP one
/// (a zero UDP checksum means "none" and passes). Returns the transport
/// protocol and its payload, or why the frame is not valid.
fn check_frame(f: &[u8]) -> Result<(u8, u16, Vec<u8>), String> {
    use etherparse::{Ethernet2Header, IpNumber, Ipv4Header, TcpHeader, UdpHeader};
    let (eth, rest) = Ethernet2Header::from_slice(f).map_err(|e| format!("ethernet: {e}"))?;
    if eth.ether_type != etherparse::EtherType::IPV4 {
        return Err("not IPv4".into());
    }
    let (ip, rest) = Ipv4Header::from_slice(rest).map_err(|e| format!("ipv4: {e}"))?;
    if ip.header_checksum != ip.calc_header_checksum() {
        return Err("bad IPv4 header checksum".into());
    }
    let rest = &rest[..(ip.total_len as usize - ip.header_len()).min(rest.len())];
    match ip.protocol {
        IpNumber::UDP => {
            let (u, payload) = UdpHeader::from_slice(rest).map_err(|e| format!("udp: {e}"))?;
            if u.checksum != 0 && u.checksum != u.calc_checksum_ipv4(&ip, payload).unwrap() {
                return Err("bad UDP checksum".into());
            }
            Ok((17, u.destination_port, payload.to_vec()))
        }
        IpNumber::TCP => {
            let (t, payload) = TcpHeader::from_slice(rest).map_err(|e| format!("tcp: {e}"))?;
            if t.checksum != t.calc_checksum_ipv4(&ip, payload).unwrap() {
                return Err("bad TCP checksum".into());
            }
            Ok((6, t.destination_port, payload.to_vec()))
        }
        p => Err(format!("protocol {p:?}")),
    }
}

/// `offcard demo --pcap FILE`: both directions of the card's port, every
/// checksum valid (outer IPv4, outer UDP zero as RFC 8926 allows over IPv4,
/// inner IPv4, inner UDP and TCP), except the three packets the demo makes
/// malformed on purpose (the fourth, an unknown VNI, is well-formed).
#[test]
fn demo_pcap_has_valid_checksums() {
    let path = std::env::temp_dir().join(format!("offcard-demo-{}.pcap", std::process::id()));
    let out = offcard().args(["demo", "--pcap"]).arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let frames = pcap_frames(&std::fs::read(&path).unwrap());
    let _ = std::fs::remove_file(&path);
    let (mut inner_udp, mut inner_tcp, mut outer_zero) = (0, 0, 0);
    let mut bad = vec![];
    for f in &frames {
        let (proto, dport, payload) = match check_frame(f) {
            Ok(x) => x,
            Err(e) => {
                bad.push(e);
                continue;
            }
        };
        if proto != 17 || dport != 6081 {
            bad.push(format!("not Geneve: protocol {proto} port {dport}"));
            continue;
        }
        outer_zero += (u16::from_be_bytes([f[40], f[41]]) == 0) as usize;
        // Geneve: 8-byte header plus options (length in 4-byte words), then the tenant's frame.
        let opt = (payload[0] & 0x3f) as usize * 4;
        assert_eq!(u16::from_be_bytes([payload[2], payload[3]]), 0x6558, "Geneve carries Ethernet");
        match check_frame(&payload[8 + opt..]) {
            Ok((17, _, _)) => inner_udp += 1,
            Ok((6, _, _)) => inner_tcp += 1,
            other => panic!("inner frame: {other:?}"),
        }
    }
    bad.sort();
    assert_eq!(bad.len(), 3, "{bad:?}");
    assert!(bad[0].contains("bad IPv4 header checksum") && bad[1].starts_with("ipv4:") && bad[2].contains("port 6080"), "{bad:?}");
    // Tenant 2's TCP flow, 48 segments out and back.
    assert_eq!(inner_tcp, 96, "inner TCP segments");
    assert!(inner_udp >= 2 * 96, "inner UDP datagrams: {inner_udp}");
    assert_eq!(outer_zero, inner_udp + inner_tcp, "the card's outer UDP checksum is zero (docs/encap.md)");
}

/// A plot pair written by `--plots`: a non-empty SVG with its title and
/// bars, and a PNG of the expected size that is not one flat colour.
fn check_plot(dir: &std::path::Path, stem: &str, title_word: &str) {
    let svg = std::fs::read_to_string(dir.join(format!("{stem}.svg"))).unwrap_or_else(|e| panic!("{stem}.svg: {e}"));
    assert!(svg.starts_with("<svg") && svg.contains(title_word), "{stem}.svg lacks its title");
    assert!(svg.matches("<rect").count() > 3, "{stem}.svg has no bars");
    let png = std::fs::read(dir.join(format!("{stem}.png"))).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{stem}.png is not a PNG");
    let (w, h) = (u32::from_be_bytes(png[16..20].try_into().unwrap()), u32::from_be_bytes(png[20..24].try_into().unwrap()));
    assert_eq!((w, h), (900, 500), "{stem}.png size");
    assert!(png.len() > 5000, "{stem}.png is nearly empty ({} bytes)", png.len());
}

#[test]
fn demo_writes_plots() {
    let dir = std::env::temp_dir().join(format!("offcard-plots-{}", std::process::id()));
    let out = offcard().args(["demo", "--plots"]).arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    check_plot(&dir, "demo_path_load", "packets per fabric path");
    check_plot(&dir, "demo_cache_hit_rate", "hit rate per tenant");
    check_plot(&dir, "demo_cache_occupancy", "lines held");
    let _ = std::fs::remove_dir_all(&dir);
}
