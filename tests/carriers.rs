//! One driver suite on every carrier: the in-process simulated card and the
//! card as a device process (`offcard card`) over vfio-user; two card
//! processes cabled with `--net wire`; the card process under bad input
//! (a raw vfio-user client), a second client, a client that dies, and a
//! card process killed under its client. Every card process a test starts
//! is killed and its socket removed when the test ends, also when it fails.

use offcard_driver::dma::DmaCard;
use offcard_driver::{Card, CardTransport, VfioUserTransport};
use offcard_sim::card_process::port::WireEnd;
use offcard_sim::SimTransport;
use offcard_testbench::card_process::CardProcess;
use offcard_testbench::driver_suite::{self as suite, InProcessPort, WirePeer};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// `offcard card --socket ... extra...`, killed and cleaned up on drop.
fn card_process(tag: &str, extra: &[&str]) -> CardProcess {
    CardProcess::start(Path::new(env!("CARGO_BIN_EXE_offcard")), tag, extra)
}

fn temp_path(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("offcard-{tag}-{}-{}", std::process::id(), rand_u32()))
}

fn rand_u32() -> u32 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    t.subsec_nanos() ^ (t.as_secs() as u32).rotate_left(13)
}

fn check(r: suite::Check) {
    if let Err(e) = r {
        panic!("{e}");
    }
}

#[test]
fn driver_suite_in_process() {
    let mut card = Card::open(SimTransport::new(7, 32 << 20).unwrap()).unwrap();
    check(suite::registers_reset_to_the_map(&mut card));
    check(suite::identity_scratch_msi(&mut card));
    check(suite::cache_control(&mut card));
    let mut dma = suite::dma_copy_with_records(card).unwrap();
    check(suite::network_queues(&mut dma, &mut InProcessPort));
    assert!(dma.transport().rc.card_errors.is_empty(), "{:?}", dma.transport().rc.card_errors);
}

#[test]
fn driver_suite_over_vfio_user() {
    let wire = temp_path("wire");
    let proc_ = card_process("suite", &["--net", &format!("wire:{}", wire.display())]);
    // The card process took the first end; this is the other.
    let mut peer = WirePeer(WireEnd::open(&wire).unwrap());
    let t = proc_.connect();
    assert!(t.is_simulated(), "{}", t.describe());
    let mut card = Card::open(t).unwrap();
    check(suite::registers_reset_to_the_map(&mut card));
    check(suite::identity_scratch_msi(&mut card));
    check(suite::cache_control(&mut card));
    let mut dma = suite::dma_copy_with_records(card).unwrap();
    check(suite::network_queues(&mut dma, &mut peer));
    let (tx, rx, dropped) = dma.transport().port_counters().unwrap().unwrap();
    assert!(tx >= 3 && rx >= 1 && dropped == 0, "port counters {tx} {rx} {dropped}");
}

/// Two card processes cabled together: a frame tenant 2 sends on card A
/// arrives decapsulated in card B's receive queue.
#[test]
fn two_card_processes_exchange_overlay_traffic() {
    use offcard_driver::{DmaConfig, NetCtl};
    use offcard_net::path::Policy;
    use offcard_testbench::encap_bench::test_tenant;
    let wire = temp_path("cable");
    let pa = card_process("a", &["--net", &format!("wire:{}", wire.display())]);
    let pcap = temp_path("b.pcap");
    let pb = card_process("b", &["--net", &format!("wire:{}", wire.display()), "--pcap", pcap.to_str().unwrap()]);
    let open = |p: &CardProcess| DmaCard::new(Card::open(p.connect()).unwrap(), DmaConfig::default()).unwrap();
    let (mut a, mut b) = (open(&pa), open(&pb));
    let tt = test_tenant(2, Policy::Spray);
    NetCtl::new(&mut a.card).program_tenant(2, &tt.context()).unwrap();
    NetCtl::new(&mut b.card).map_vni(0, tt.ctx.vni, 2, 2).unwrap();
    a.set_queue_mode(1, offcard_regs::dma::QMODE_TX).unwrap();
    b.set_queue_mode(2, offcard_regs::dma::QMODE_RX).unwrap();
    b.post_rx_buffers(2, 8, 2048).unwrap();
    let frames: Vec<Vec<u8>> = (0..4).map(|k| (0..(64 + 200 * k)).map(|i| (i ^ k * 31) as u8).collect()).collect();
    for f in &frames {
        a.send_frame(1, 2, f).unwrap();
    }
    a.complete_all(Duration::from_millis(2)).unwrap();
    let got = suite::receive(&mut b, 2, frames.len(), Duration::from_secs(90)).unwrap();
    assert_eq!(got.len(), frames.len(), "frames that crossed the cable");
    for (g, f) in got.iter().zip(&frames) {
        assert_eq!(g.tenant, 2);
        assert_eq!(&g.bytes, f, "frame changed on the way");
    }
    // Card B's pcap holds the Geneve packets it received (written when its client detaches).
    drop(b);
    let t0 = Instant::now();
    let mut pkts = 0;
    while t0.elapsed() < Duration::from_secs(20) {
        let bytes = std::fs::read(&pcap).unwrap_or_default();
        pkts = count_pcap(&bytes);
        if pkts >= frames.len() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = std::fs::remove_file(&pcap);
    assert!(pkts >= frames.len(), "pcap holds {pkts} packets");
}

fn count_pcap(b: &[u8]) -> usize {
    if b.len() < 24 || b[0..4] != 0xa1b2_c3d4u32.to_le_bytes() || b[20..24] != 1u32.to_le_bytes() {
        return 0;
    }
    let (mut off, mut n) = (24, 0);
    while off + 16 <= b.len() {
        let len = u32::from_le_bytes(b[off + 8..off + 12].try_into().unwrap()) as usize;
        if off + 16 + len > b.len() {
            break;
        }
        let eth_type = u16::from_be_bytes([b[off + 16 + 12], b[off + 16 + 13]]);
        assert_eq!(eth_type, 0x0800, "an outer frame that is not IPv4");
        off += 16 + len;
        n += 1;
    }
    n
}

/// A raw vfio-user message: header (id, command, size, flags, error) + body.
fn raw_request(s: &mut UnixStream, id: u16, cmd: u16, body: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut m = Vec::new();
    m.extend_from_slice(&id.to_le_bytes());
    m.extend_from_slice(&cmd.to_le_bytes());
    m.extend_from_slice(&(16 + body.len() as u32).to_le_bytes());
    m.extend_from_slice(&0u32.to_le_bytes());
    m.extend_from_slice(&0u32.to_le_bytes());
    m.extend_from_slice(body);
    s.write_all(&m).unwrap();
    let mut h = [0u8; 16];
    s.read_exact(&mut h).unwrap();
    let size = u32::from_le_bytes(h[4..8].try_into().unwrap());
    let flags = u32::from_le_bytes(h[8..12].try_into().unwrap());
    let error = u32::from_le_bytes(h[12..16].try_into().unwrap());
    let mut rest = vec![0u8; size as usize - 16];
    s.read_exact(&mut rest).unwrap();
    (flags, error, rest)
}

/// A raw DMA_MAP carrying `fd`; returns the reply's flags.
fn raw_dma_map(s: &mut UnixStream, id: u16, fd: std::os::fd::RawFd, offset: u64, iova: u64, size: u64) -> u32 {
    use vmm_sys_util::sock_ctrl_msg::ScmSocket;
    let mut m = Vec::new();
    m.extend_from_slice(&id.to_le_bytes());
    m.extend_from_slice(&2u16.to_le_bytes());
    m.extend_from_slice(&48u32.to_le_bytes());
    m.extend_from_slice(&0u64.to_le_bytes());
    m.extend_from_slice(&32u32.to_le_bytes()); // argsz
    m.extend_from_slice(&3u32.to_le_bytes()); // read | write
    m.extend_from_slice(&offset.to_le_bytes());
    m.extend_from_slice(&iova.to_le_bytes());
    m.extend_from_slice(&size.to_le_bytes());
    s.send_with_fd(&m[..], fd).unwrap();
    let mut h = [0u8; 16];
    s.read_exact(&mut h).unwrap();
    u32::from_le_bytes(h[8..12].try_into().unwrap())
}

fn region_access(region: u32, offset: u64, count: u32) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&offset.to_le_bytes());
    b.extend_from_slice(&region.to_le_bytes());
    b.extend_from_slice(&count.to_le_bytes());
    b
}

const ERROR_FLAG: u32 = 1 << 5;

#[test]
fn bad_input_gets_clear_errors_and_the_card_stays_usable() {
    let p = card_process("bad", &[]);
    {
        let mut s = UnixStream::connect(&p.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        // VERSION first, as the protocol asks.
        let caps = b"{\"capabilities\":{\"max_msg_fds\":8}}\0";
        let mut body = vec![0, 0, 1, 0];
        body.extend_from_slice(caps);
        let (flags, _, _) = raw_request(&mut s, 1, 1, &body);
        assert_eq!(flags & ERROR_FLAG, 0, "version refused");
        // Out of range, unaligned, bad size, empty region, unknown region.
        for (i, (region, off, count)) in [(0u32, 0x1_0000u64, 4u32), (0, 2, 4), (0, 0, 3), (1, 0, 4), (40, 0, 4), (7, 0x1000, 4)].into_iter().enumerate() {
            let (flags, error, rest) = raw_request(&mut s, 10 + i as u16, 9, &region_access(region, off, count));
            assert_ne!(flags & ERROR_FLAG, 0, "region {region} {off:#x}/{count} accepted");
            assert!(rest.is_empty(), "an error reply is the header alone");
            // The released server crate sets errno only for requests it
            // refuses itself (EINVAL = 22 for an unknown region).
            if region == 40 {
                assert_eq!(error, 22, "unknown region: errno {error}");
            }
        }
        // DMA_MAP without a descriptor, and an unmap of nothing.
        let mut map = Vec::new();
        map.extend_from_slice(&32u32.to_le_bytes());
        map.extend_from_slice(&3u32.to_le_bytes());
        map.extend_from_slice(&0u64.to_le_bytes());
        map.extend_from_slice(&0x1_0000_0000u64.to_le_bytes());
        map.extend_from_slice(&0x1000u64.to_le_bytes());
        let (flags, _, _) = raw_request(&mut s, 30, 2, &map);
        assert_ne!(flags & ERROR_FLAG, 0, "DMA_MAP without an fd accepted");
        // DMA_MAP with a descriptor that is not memory, with a range beyond
        // the file, and over a range already mapped.
        use std::os::fd::AsRawFd;
        let null = std::fs::File::open("/dev/null").unwrap();
        assert_ne!(raw_dma_map(&mut s, 32, null.as_raw_fd(), 0, 0x2_0000_0000, 0x1000) & ERROR_FLAG, 0, "/dev/null mapped");
        let mem = offcard_sim::HostMemory::new(0x4000).unwrap();
        assert_ne!(raw_dma_map(&mut s, 33, mem.fd(), 0x2000, 0x2_0000_0000, 0x4000) & ERROR_FLAG, 0, "a range beyond the file mapped");
        assert_eq!(raw_dma_map(&mut s, 34, mem.fd(), 0, 0x2_0000_0000, 0x2000) & ERROR_FLAG, 0, "a good mapping refused");
        assert_ne!(raw_dma_map(&mut s, 35, mem.fd(), 0, 0x2_0000_1000, 0x2000) & ERROR_FLAG, 0, "an overlapping mapping accepted");
        // Unmapping where nothing is mapped succeeds (as in VFIO); a range
        // that cuts the mapping above in two is refused.
        let unmap = |iova: u64, size: u64| {
            let mut u = Vec::new();
            u.extend_from_slice(&24u32.to_le_bytes());
            u.extend_from_slice(&0u32.to_le_bytes());
            u.extend_from_slice(&iova.to_le_bytes());
            u.extend_from_slice(&size.to_le_bytes());
            u
        };
        let (flags, _, _) = raw_request(&mut s, 36, 3, &unmap(0x5_0000_0000, 0x1000));
        assert_eq!(flags & ERROR_FLAG, 0, "unmap of nothing refused");
        let (flags, _, _) = raw_request(&mut s, 37, 3, &unmap(0x2_0000_1000, 0x1000));
        assert_ne!(flags & ERROR_FLAG, 0, "an unmap that cuts a mapping accepted");
        // A good read still works on the same connection.
        let (flags, _, data) = raw_request(&mut s, 40, 9, &region_access(0, 0, 4));
        assert_eq!(flags & ERROR_FLAG, 0);
        assert_eq!(u32::from_le_bytes(data[16..20].try_into().unwrap()), offcard_regs::CARD_MAGIC);
        // Hang up in the middle of a message.
        s.write_all(&[7, 0, 9, 0, 32, 0]).unwrap();
    }
    // The next client finds a working card.
    let mut card = p.card_when_free("no card after a raw client hung up mid-message");
    assert!(card.scratch_test().unwrap() > 100);
    // The driver refuses what it knows to be out of range, before sending.
    let e = card.transport.bar0_read32(0x1_0000).unwrap_err().to_string();
    assert!(e.contains("out of range"), "{e}");
    // A DMA_MAP over an existing mapping is refused by the card process:
    // the card keeps the first mapping (the client crate cannot report it,
    // so the proof is that the first buffer still works).
    let mut dma = DmaCard::new(card, offcard_driver::DmaConfig::default()).unwrap();
    let mut src0 = dma.transport().alloc_dma(4096).unwrap();
    let dst0 = dma.transport().alloc_dma(4096).unwrap();
    src0.write(0, &[0x5a; 64]);
    dma.post(0, offcard_driver::Descriptor { src: src0.iova, dst: dst0.iova, len: 64, cookie: 9 }).unwrap();
    let c = dma.complete_all(Duration::from_millis(2)).unwrap();
    assert_eq!(c[0].status, 0);
    assert_eq!(dst0.read_vec(0, 64), vec![0x5a; 64]);
    // This client goes away in the middle of a 1 MiB transfer: its memory
    // is unmapped under the card, and the next client still gets a card.
    let mut src = dma.transport().alloc_dma(1 << 20).unwrap();
    let dst = dma.transport().alloc_dma(1 << 20).unwrap();
    src.fill(0, 1 << 20, 0x77);
    for k in 0..16u64 {
        dma.post((k % 4) as usize, offcard_driver::Descriptor { src: src.iova + k * 65536, dst: dst.iova + k * 65536, len: 65536, cookie: k }).unwrap();
    }
    // (A buffer keeps its mapping, and so the connection, alive: all go.)
    drop((src0, dst0, src, dst, dma));
    let card = p.card_when_free("no card after a client left mid-transfer");
    let mut dma = DmaCard::new(card, offcard_driver::DmaConfig::default()).unwrap();
    let mut src = dma.transport().alloc_dma(4096).unwrap();
    let dst = dma.transport().alloc_dma(4096).unwrap();
    src.write(0, &[0x3c; 128]);
    dma.post(0, offcard_driver::Descriptor { src: src.iova, dst: dst.iova, len: 128, cookie: 1 }).unwrap();
    let c = dma.complete_all(Duration::from_millis(2)).unwrap();
    assert_eq!((c.len(), c[0].status), (1, 0), "{c:?}");
    assert_eq!(dst.read_vec(0, 128), vec![0x3c; 128]);
}

#[test]
fn a_second_client_is_refused_while_one_is_attached() {
    let p = card_process("busy", &[]);
    let mut first = Card::open(p.connect()).unwrap();
    let e = VfioUserTransport::connect(&p.socket).err().expect("a second client must be refused").to_string();
    assert!(e.contains("closed the connection") || e.contains("serves another client"), "{e}");
    // The first client is unaffected.
    assert!(first.scratch_test().unwrap() > 100);
    drop(first);
    // And after it leaves, a new client gets the card.
    p.card_when_free("no card after the first client left");
}

#[test]
fn a_killed_card_process_gives_the_client_an_error_not_a_hang() {
    let mut p = card_process("kill", &[]);
    let mut card = Card::open(p.connect()).unwrap();
    card.transport.enable_interrupts().unwrap();
    p.child.kill().unwrap();
    p.child.wait().unwrap();
    let t0 = Instant::now();
    let e = card.read(offcard_regs::REG_ID).unwrap_err().to_string();
    assert!(t0.elapsed() < Duration::from_secs(10), "took {:?}", t0.elapsed());
    assert!(e.contains("closed the connection") || e.contains("Broken pipe") || e.contains("reset"), "{e}");
    assert!(card.transport.wait_interrupt(Duration::from_millis(1)).is_err(), "waiting on a dead card must fail");
}

#[test]
fn no_socket_is_a_clear_error() {
    let e = VfioUserTransport::connect(Path::new("/nonexistent/offcard.sock")).err().unwrap().to_string();
    assert!(e.contains("offcard card --socket"), "{e}");
}

/// A network namespace with a card process whose port is a TAP device in it;
/// all removed on drop.
struct TapNamespace {
    name: String,
    card: Option<CardProcess>,
}

impl Drop for TapNamespace {
    fn drop(&mut self) {
        self.card.take();
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

fn ip(ns: &str, args: &[&str]) {
    let st = Command::new("ip").args(["netns", "exec", ns, "ip"]).args(args).status().unwrap();
    assert!(st.success(), "ip {args:?} in {ns} failed");
}

/// Run `f` in a thread that has entered namespace `ns`; sockets it makes
/// stay in that namespace.
fn in_netns<R: Send + 'static>(ns: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let f_ns = std::fs::File::open(&path).unwrap();
        use std::os::fd::AsRawFd;
        // SAFETY: setns on a valid namespace descriptor, for this thread only.
        assert_eq!(unsafe { libc::setns(f_ns.as_raw_fd(), libc::CLONE_NEWNET) }, 0, "setns");
        f()
    })
    .join()
    .unwrap()
}

/// The card's port on a TAP device talks to Linux: a frame sent on a TX
/// queue reaches a UDP socket on Linux's Geneve port as RFC 8926 Geneve
/// carrying the frame; a Geneve datagram Linux sends to the card's address
/// arrives decapsulated in the card's RX queue.
#[test]
fn tap_port_talks_to_linux() {
    use offcard_driver::{DmaConfig, NetCtl};
    use offcard_net::path::Policy;
    use offcard_testbench::encap_bench::test_tenant;
    let root = unsafe { libc::geteuid() } == 0;
    if !root || !Path::new("/dev/net/tun").exists() || Command::new("ip").arg("-V").output().is_err() {
        eprintln!("SKIPPED: needs root, /dev/net/tun and iproute2 (CI has them)");
        return;
    }
    let name = format!("offcard-tap-{}", std::process::id());
    let st = Command::new("ip").args(["netns", "add", &name]).status().unwrap();
    assert!(st.success(), "ip netns add");
    let mut ns = TapNamespace { name: name.clone(), card: None };
    // The card process runs in the namespace; its TAP appears there.
    let socket = offcard_sim::card_process::temp_socket("tap");
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &name, env!("CARGO_BIN_EXE_offcard"), "card", "--net", "tap:oc0", "--socket"]).arg(&socket);
    ns.card = Some(CardProcess::spawn(cmd, socket.clone()));
    let mut tt = test_tenant(0, Policy::PerFlow);
    tt.ctx.outer_src_ip = [192, 0, 2, 2];
    tt.ctx.outer_dst_ip = [192, 0, 2, 1];
    let linux_mac = "02:bb:c0:d0:e0:00"; // tenant 0's next-hop MAC
    let card_mac = "02:aa:10:20:30:00";
    ip(&name, &["link", "set", "oc0", "address", linux_mac]);
    ip(&name, &["addr", "add", "192.0.2.1/24", "dev", "oc0"]);
    ip(&name, &["link", "set", "oc0", "up"]);
    ip(&name, &["neigh", "replace", "192.0.2.2", "lladdr", card_mac, "dev", "oc0"]);
    let sock = in_netns(&name, || std::net::UdpSocket::bind("192.0.2.1:6081").unwrap());
    sock.set_read_timeout(Some(Duration::from_secs(30))).unwrap();

    let mut dma = DmaCard::new(Card::open(VfioUserTransport::connect(&socket).unwrap()).unwrap(), DmaConfig::default()).unwrap();
    NetCtl::new(&mut dma.card).program_tenant(0, &tt.context()).unwrap();
    NetCtl::new(&mut dma.card).map_vni(0, tt.ctx.vni, 0, 2).unwrap();
    dma.set_queue_mode(1, offcard_regs::dma::QMODE_TX).unwrap();
    dma.set_queue_mode(2, offcard_regs::dma::QMODE_RX).unwrap();
    dma.post_rx_buffers(2, 4, 2048).unwrap();
    let inner: Vec<u8> = (0..300).map(|i| (i * 3 + 7) as u8).collect();
    dma.send_frame(1, 0, &inner).unwrap();
    dma.complete_all(Duration::from_millis(2)).unwrap();
    let mut buf = [0u8; 4096];
    let (n, from) = sock.recv_from(&mut buf).expect("Linux received no Geneve datagram from the card");
    assert_eq!(from.ip().to_string(), "192.0.2.2");
    let g = &buf[..n];
    assert_eq!(g[0] >> 6, 0, "Geneve version");
    assert_eq!(u16::from_be_bytes([g[2], g[3]]), 0x6558, "Geneve protocol: Ethernet");
    assert_eq!(u32::from_be_bytes([0, g[4], g[5], g[6]]), tt.ctx.vni & 0xff_ffff, "VNI");
    assert_eq!(&g[8..8 + inner.len()], &inner[..], "the inner frame");
    // Back: Linux sends a Geneve datagram to the card's address.
    let back: Vec<u8> = (0..200).map(|i| (i * 11 + 1) as u8).collect();
    let mut pkt = vec![0u8, 0, 0x65, 0x58];
    pkt.extend_from_slice(&(tt.ctx.vni << 8).to_be_bytes());
    pkt.extend_from_slice(&back);
    sock.send_to(&pkt, "192.0.2.2:6081").unwrap();
    let got = suite::receive(&mut dma, 2, 1, Duration::from_secs(30)).unwrap();
    assert!(!got.is_empty(), "the card received nothing from Linux");
    assert_eq!(got[0].bytes, back, "decapsulated frame from Linux");
    assert_eq!(got[0].tenant, 0);
}

/// `offcard demo --vfio-user` runs the whole demo against a card process,
/// the overlay part through the far end of the card's wire.
#[test]
fn demo_runs_against_a_card_process() {
    let wire = temp_path("demo-wire");
    let p = card_process("demo", &["--net", &format!("wire:{}", wire.display())]);
    let out = Command::new(env!("CARGO_BIN_EXE_offcard"))
        .args(["demo", "--vfio-user", p.socket.to_str().unwrap(), "--wire", wire.to_str().unwrap()])
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{s}\n{}", String::from_utf8_lossy(&out.stderr));
    for needle in ["vfio-user device at", "simulated card process", "demo: host view of the card passed", "data verified", "demo: DMA and dirty logging passed", "received back: 144 packets", "demo: overlay network passed"] {
        assert!(s.contains(needle), "demo output lacks {needle:?}:\n{s}");
    }
}

/// SIGTERM ends a card process cleanly: its socket and its end of the wire
/// are removed and the pcap is complete.
#[test]
fn sigterm_removes_the_socket_and_the_wire_end() {
    let wire = temp_path("term-wire");
    let pcap = temp_path("term.pcap");
    let mut p = card_process("term", &["--net", &format!("wire:{}", wire.display()), "--pcap", pcap.to_str().unwrap()]);
    let mut end_a = wire.clone().into_os_string();
    end_a.push(".a");
    assert!(Path::new(&end_a).exists(), "the card process holds end .a of the wire");
    // SAFETY: sends a signal to our own child.
    assert_eq!(unsafe { libc::kill(p.child.id() as i32, libc::SIGTERM) }, 0);
    let st = p.child.wait().unwrap();
    assert!(st.success(), "card process exit: {st}");
    assert!(!p.socket.exists(), "socket left behind");
    assert!(!Path::new(&end_a).exists(), "wire end left behind");
    let bytes = std::fs::read(&pcap).unwrap();
    let _ = std::fs::remove_file(&pcap);
    assert_eq!(&bytes[..4], &0xa1b2_c3d4u32.to_le_bytes(), "pcap header written");
}
