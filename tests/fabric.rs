//! `offcard fabric` and `offcard bench fabric` end to end, and a card
//! process on the fabric: its port on host 1's TAP, Geneve across the
//! leaf-spine fabric to a Linux socket on host 2 (over several spines, from
//! the spines' counters) and back into the card's receive queue. Needs root
//! and iproute2 (CI has both); skipped otherwise, with the reason printed.
//! Every fabric and card process a test makes is removed when it ends, also
//! when it fails.

use offcard_fabric::plan::Role;
use offcard_fabric::{Fabric, RemoveOnDrop};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

fn offcard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_offcard"))
}

/// How many namespaces of fabric `name` exist now.
fn ours(name: &str) -> usize {
    offcard_fabric::ip::netns_list().unwrap().iter().filter(|n| n.starts_with(&format!("ofc-{name}-"))).count()
}

fn run_ok(args: &[&str]) -> String {
    let out = offcard().args(args).output().unwrap();
    let s = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "offcard {args:?}: {s}\n{}", String::from_utf8_lossy(&out.stderr));
    s
}

#[test]
fn fabric_up_status_down_from_the_command_line() {
    if !offcard_fabric::runnable_or_say_why() {
        return;
    }
    let g = RemoveOnDrop::for_test("cli");
    let n = g.0.as_str();
    let s = run_ok(&["fabric", "up", "--name", n, "--spines", "4"]);
    assert!(s.contains(&format!("ip netns exec ofc-{n}-h1 offcard card")), "{s}");
    run_ok(&["fabric", "up", "--name", n, "--spines", "4"]);
    assert_eq!(ours(n), 2 + 4 + 2);
    assert!(run_ok(&["fabric", "list"]).lines().any(|l| l == n));
    let j: serde_json::Value = serde_json::from_str(run_ok(&["fabric", "status", "--name", n, "--json"]).trim()).unwrap();
    assert_eq!(j["spines"], 4);
    assert_eq!(j["hosts"][1]["addr"], "198.51.100.2");
    assert_eq!(j["hosts"][0]["tap"], "card0");
    let sp = j["spine_counters"].as_array().unwrap();
    assert_eq!(sp.len(), 4);
    assert!(sp.iter().all(|s| s["ports"]["l1"]["up"] == true && s["ports"]["l2"]["up"] == true), "{j}");
    let s = run_ok(&["fabric", "down", "--name", n]);
    assert!(s.contains("removed: 8 namespaces"), "{s}");
    assert!(run_ok(&["fabric", "down", "--name", n]).contains("nothing to remove"));
    assert_eq!(ours(n), 0);
    let out = offcard().args(["fabric", "status", "--name", n]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("no fabric {n} is up")));
}

#[test]
fn fabric_errors_name_what_is_missing() {
    // Without iproute2 (as root: the root check comes first).
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let out = offcard().args(["fabric", "up", "--name", "never"]).env("OFFCARD_IP", "/nonexistent/ip").output().unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(e.contains(if root { "iproute2's `ip` cannot be run" } else { "the fabric needs root" }), "{e}");
    // Without root (as root: run it as nobody, from a copy nobody can reach:
    // the build directory may be under a private home).
    let dir = std::env::temp_dir().join(format!("offcard-nobody-{}", std::process::id()));
    let mut cmd = if root {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let exe = dir.join("offcard");
        std::fs::copy(env!("CARGO_BIN_EXE_offcard"), &exe).unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut c = Command::new(exe);
        c.uid(65534).gid(65534);
        c
    } else {
        offcard()
    };
    cmd.args(["fabric", "up", "--name", "never"]);
    let out = cmd.output();
    let _ = std::fs::remove_dir_all(&dir);
    let out = out.unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(e.contains("the fabric needs root"), "{e}");
    // A bad name or spine count is refused in parsing or before anything is made.
    let out = offcard().args(["fabric", "up", "--name", "a-b"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("letters, digits or '_'"));
    assert_eq!(offcard().args(["fabric", "up", "--spines", "9"]).output().unwrap().status.code(), Some(2));
    assert_eq!(offcard().args(["fabric", "up", "--spines", "3"]).output().unwrap().status.code(), Some(2));
}

#[test]
fn bench_fabric_ends_with_json_line() {
    if !offcard_fabric::runnable_or_say_why() {
        return;
    }
    let benches = || offcard_fabric::fabrics().unwrap().into_iter().filter(|f| f.starts_with("bench")).count();
    let before = benches();
    let out = offcard().args(["bench", "fabric", "--json", "--spines", "4", "--flows", "32", "--packets", "5", "--trials", "2"]).output().unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{s}\n{}", String::from_utf8_lossy(&out.stderr));
    let j: serde_json::Value = serde_json::from_str(s.lines().last().unwrap()).unwrap();
    assert_eq!(j["spines"], 4);
    assert_eq!(j["flows"], 32);
    assert_eq!(j["packets_sent"], 32 * 5 * 2);
    assert_eq!(j["packets_at_spines"], j["packets_sent"], "{j}");
    // One flow sits on one spine; 32 flows use more than one.
    assert_eq!(j["perflow_max_mean_1"], 4.0);
    let mm = j["perflow_max_mean"].as_f64().unwrap();
    assert!((1.0..4.0).contains(&mm), "{j}");
    let jain = j["perflow_jain"].as_f64().unwrap();
    assert!((0.25..=1.0).contains(&jain), "{j}");
    // Discovery found every spine, and spraying over the found ports loads them equally.
    assert_eq!(j["spines_found"], 4, "{j}");
    assert!(j["probes_sent"].as_f64().unwrap() <= 64.0, "{j}");
    assert_eq!(j["spray_max_mean"], 1.0, "{j}");
    assert_eq!(j["spray_jain"], 1.0, "{j}");
    // The bench's fabric is gone.
    assert_eq!(benches(), before, "{:?}", offcard_fabric::fabrics());
}

/// A card process at host 1 (its port on the fabric's TAP): the frames its
/// transmit queue sends leave as Geneve, are routed by host 1 into the
/// fabric, spread over several spines by the leaves' layer-4 hash (the card
/// sprays over its path table's source ports), and reach a Linux UDP socket
/// on host 2; a Geneve datagram from host 2 to the card's address comes back
/// across the fabric into the card's receive queue.
#[test]
fn a_card_at_host_1_exchanges_geneve_with_host_2_across_the_fabric() {
    use offcard_driver::dma::DmaCard;
    use offcard_driver::{Card, DmaConfig, NetCtl};
    use offcard_net::path::Policy;
    use offcard_testbench::card_process::CardProcess;
    use offcard_testbench::driver_suite as suite;
    use offcard_testbench::encap_bench::test_tenant;
    if !offcard_fabric::runnable_or_say_why() || !std::path::Path::new("/dev/net/tun").exists() {
        eprintln!("SKIPPED: needs root, iproute2 and /dev/net/tun");
        return;
    }
    let g = RemoveOnDrop::for_test("card");
    let f = Fabric::up(&offcard_fabric::plan::FabricSpec::new(&g.0, 8).unwrap()).unwrap();
    let (h1, h2) = (f.host(1), f.host(2));
    let socket = offcard_sim::card_process::temp_socket("fabric");
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &h1.netns, env!("CARGO_BIN_EXE_offcard"), "card", "--net", &format!("tap:{}", h1.tap), "--socket"]).arg(&socket);
    let card = CardProcess::spawn(cmd, socket);
    let mut tt = test_tenant(0, Policy::Spray);
    tt.ctx.outer_src_mac = h1.card_mac;
    tt.ctx.next_hop_mac = h1.tap_mac;
    tt.ctx.outer_src_ip = h1.card_addr.octets();
    tt.ctx.outer_dst_ip = h2.addr.octets();
    let sock = f.in_netns(Role::Host(2), || std::net::UdpSocket::bind("0.0.0.0:6081")).unwrap().unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(60))).unwrap();

    let mut dma = DmaCard::new(Card::open(card.connect()).unwrap(), DmaConfig::default()).unwrap();
    NetCtl::new(&mut dma.card).program_tenant(0, &tt.context()).unwrap();
    NetCtl::new(&mut dma.card).map_vni(0, tt.ctx.vni, 0, 2).unwrap();
    dma.set_queue_mode(1, offcard_regs::dma::QMODE_TX).unwrap();
    dma.set_queue_mode(2, offcard_regs::dma::QMODE_RX).unwrap();
    dma.post_rx_buffers(2, 4, 2048).unwrap();
    let frames: Vec<Vec<u8>> = (0..16).map(|k| (0..200 + 10 * k).map(|i| (i * 3 + k * 17) as u8).collect()).collect();
    let before = f.spine_counters().unwrap();
    for fr in &frames {
        dma.send_frame(1, 0, fr).unwrap();
    }
    dma.complete_all(Duration::from_millis(2)).unwrap();
    let mut got = vec![];
    let mut buf = [0u8; 4096];
    while got.len() < frames.len() {
        let (n, from) = sock.recv_from(&mut buf).unwrap_or_else(|e| panic!("host 2 got {} of {} Geneve datagrams: {e}", got.len(), frames.len()));
        assert_eq!(from.ip(), h1.card_addr, "outer source");
        let gnv = &buf[..n];
        assert_eq!(u16::from_be_bytes([gnv[2], gnv[3]]), 0x6558, "Geneve protocol: Ethernet");
        assert_eq!(u32::from_be_bytes([0, gnv[4], gnv[5], gnv[6]]), tt.ctx.vni & 0xff_ffff, "VNI");
        got.push(gnv[8..].to_vec());
    }
    std::thread::sleep(Duration::from_millis(20));
    let load = offcard_fabric::spine_load(&before, &f.spine_counters().unwrap(), 2);
    for fr in &frames {
        assert!(got.contains(fr), "a frame did not arrive intact");
    }
    eprintln!("the card's {} sprayed frames, per spine: {load:?}", frames.len());
    assert_eq!(load.iter().sum::<u64>(), frames.len() as u64, "spine counters {load:?}");
    // Spraying over 8 source ports: Linux's hash puts them on more than one spine.
    assert!(load.iter().filter(|&&x| x > 0).count() >= 2, "all on one spine: {load:?}");
    // Back from host 2 to the card's address, through the fabric and host 1's TAP.
    let back: Vec<u8> = (0..180).map(|i| (i * 5 + 3) as u8).collect();
    let mut pkt = vec![0u8, 0, 0x65, 0x58];
    pkt.extend_from_slice(&(tt.ctx.vni << 8).to_be_bytes());
    pkt.extend_from_slice(&back);
    sock.send_to(&pkt, (h1.card_addr, 6081)).unwrap();
    let rx = suite::receive(&mut dma, 2, 1, Duration::from_secs(60)).unwrap();
    assert_eq!(rx.len(), 1, "the card received nothing from host 2");
    assert_eq!(rx[0].bytes, back);
    assert_eq!(rx[0].tenant, 0);
    drop(dma);
    drop(card);
    drop(f);
    assert_eq!(ours(&g.0), 0);
}
