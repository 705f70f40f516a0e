//! Traffic over a fabric from plain kernel sockets in the host namespaces:
//! ICMP echo (a raw socket, no `ping` binary needed) and UDP flows with
//! chosen source ports, whose per-spine load is read from the spines'
//! interface counters.

use crate::plan::Role;
use crate::{Error, Fabric, Result};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The UDP port the flows are sent to (in the host namespace, nothing else listens).
pub const FLOW_PORT: u16 = 47000;
/// Source ports are drawn from the ephemeral range (RFC 6335), as the card's path table.
pub const EPHEMERAL: std::ops::RangeInclusive<u16> = 49152..=65535;

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// Bind, retrying for up to 2 s while the address is in use: a socket this
/// process just closed can live on for a moment in a child being spawned
/// meanwhile (between its fork and its exec, which closes it).
pub fn bind_retry<T>(mut bind: impl FnMut() -> std::io::Result<T>) -> std::io::Result<T> {
    let t0 = Instant::now();
    loop {
        match bind() {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && t0.elapsed() < Duration::from_secs(2) => std::thread::sleep(Duration::from_millis(5)),
            r => return r,
        }
    }
}

/// A UDP socket bound to `a` (with [`bind_retry`]).
pub fn udp_bind(a: SocketAddrV4) -> std::io::Result<UdpSocket> {
    bind_retry(|| UdpSocket::bind(a))
}

/// The Internet checksum (RFC 1071).
pub fn inet_checksum(b: &[u8]) -> u16 {
    let mut s: u32 = b.chunks(2).map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32).sum();
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// What an echo run saw.
#[derive(Clone, Debug)]
pub struct Ping {
    pub sent: u32,
    pub received: u32,
    /// Round-trip times of the replies, microseconds.
    pub rtt_us: Vec<f64>,
}

static PING_ID: AtomicU32 = AtomicU32::new(0);

/// `count` ICMP echo requests from host `from`'s namespace to `to`, one at a
/// time, each waiting up to `timeout` for its reply.
pub fn ping(f: &Fabric, from: u8, to: Ipv4Addr, count: u32, timeout: Duration) -> Result<Ping> {
    let sock = f
        .in_netns(Role::Host(from), || Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)))?
        .map_err(io("raw ICMP socket"))?;
    let id = (std::process::id() as u16) ^ (PING_ID.fetch_add(1, Ordering::Relaxed) as u16).rotate_left(8);
    let dst = SockAddr::from(SocketAddrV4::new(to, 0));
    let mut r = Ping { sent: 0, received: 0, rtt_us: vec![] };
    let mut buf = [0u8; 2048];
    for seq in 0..count as u16 {
        let mut pkt = vec![8u8, 0, 0, 0];
        pkt.extend_from_slice(&id.to_be_bytes());
        pkt.extend_from_slice(&seq.to_be_bytes());
        pkt.extend((0..56u8).map(|i| i.wrapping_mul(7)));
        let c = inet_checksum(&pkt);
        pkt[2..4].copy_from_slice(&c.to_be_bytes());
        let t0 = Instant::now();
        sock.send_to(&pkt, &dst).map_err(io(format!("sending an echo request to {to}")))?;
        r.sent += 1;
        // The raw socket sees every ICMP packet of the namespace: wait for ours.
        while let Some(left) = timeout.checked_sub(t0.elapsed()) {
            sock.set_read_timeout(Some(left.max(Duration::from_millis(1)))).map_err(io("socket timeout"))?;
            let n = match (&sock).read(&mut buf) {
                Ok(n) => n,
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => break,
                Err(e) => return Err(io("receiving ICMP")(e)),
            };
            let p = &buf[..n];
            let ihl = (p.first().unwrap_or(&0) & 15) as usize * 4;
            if n < ihl + 8 || ihl < 20 {
                continue;
            }
            let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
            let icmp = &p[ihl..];
            if src == to && icmp[0] == 0 && icmp[4..6] == id.to_be_bytes() && icmp[6..8] == seq.to_be_bytes() && icmp[8..] == pkt[8..] {
                r.received += 1;
                r.rtt_us.push(t0.elapsed().as_secs_f64() * 1e6);
                break;
            }
        }
    }
    Ok(r)
}

/// `n` distinct source ports from the ephemeral range, from `seed` (splitmix64).
pub fn random_ports(n: usize, seed: u64) -> Vec<u16> {
    let span = (*EPHEMERAL.end() - *EPHEMERAL.start()) as usize + 1;
    assert!(n <= span, "at most {span} distinct ephemeral ports");
    let mut s = seed;
    let mut next = || {
        s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut seen = std::collections::HashSet::new();
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        let p = *EPHEMERAL.start() + (next() % span as u64) as u16;
        if seen.insert(p) {
            v.push(p);
        }
    }
    v
}

/// How a load is spread over the spines.
#[derive(Clone, Debug, PartialEq)]
pub struct Spread {
    /// Packets per spine (spine 1 first).
    pub per_spine: Vec<u64>,
    /// Most loaded spine over the mean over all spines (1.0 balanced, N all on one).
    pub max_mean: f64,
    /// Jain's index over all spines (1.0 balanced, 1/N all on one).
    pub jain: f64,
    /// Spines that carried at least one packet.
    pub spines_used: usize,
}

impl Spread {
    pub fn of(per_spine: &[u64]) -> Spread {
        let l: Vec<f64> = per_spine.iter().map(|&x| x as f64).collect();
        Spread {
            per_spine: per_spine.to_vec(),
            max_mean: offcard_net::metrics::max_over_mean(&l),
            jain: offcard_net::metrics::jain_index(&l),
            spines_used: per_spine.iter().filter(|&&x| x > 0).count(),
        }
    }
}

/// One run of UDP flows across the fabric.
#[derive(Clone, Debug)]
pub struct FlowRun {
    pub source_ports: Vec<u16>,
    /// Datagrams the senders handed to the kernel.
    pub sent: u64,
    /// Datagrams the receiving socket got, per flow.
    pub received_per_flow: Vec<u64>,
    /// Packets each spine forwarded towards the receiver's leaf (kernel counters).
    pub spread: Spread,
}

impl FlowRun {
    pub fn received(&self) -> u64 {
        self.received_per_flow.iter().sum()
    }
    pub fn counted_at_spines(&self) -> u64 {
        self.spread.per_spine.iter().sum()
    }
}

/// One UDP flow per source port from host `from` to host `to`'s
/// [`FLOW_PORT`], `packets` datagrams each of `payload` bytes, sent
/// interleaved (one per flow in turn); the load on each spine is the change
/// of its transmit counter towards `to`'s leaf. Nothing else crosses the
/// spines while it runs (static neighbours, no IPv6), unless the caller
/// sends more.
pub fn udp_flows(f: &Fabric, from: u8, to: u8, source_ports: &[u16], packets: u32, payload: usize) -> Result<FlowRun> {
    let (src, dst) = (f.host(from).addr, f.host(to).addr);
    let payload = payload.max(8);
    let rx = f
        .in_netns(Role::Host(to), || -> std::io::Result<UdpSocket> {
            let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
            s.set_recv_buffer_size(16 << 20)?;
            bind_retry(|| s.bind(&SockAddr::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, FLOW_PORT))))?;
            Ok(s.into())
        })?
        .map_err(io(format!("UDP socket on port {FLOW_PORT} in host {to}")))?;
    rx.set_read_timeout(Some(Duration::from_millis(50))).map_err(io("socket timeout"))?;
    let senders = f
        .in_netns(Role::Host(from), || source_ports.iter().map(|&p| udp_bind(SocketAddrV4::new(src, p))).collect::<std::io::Result<Vec<_>>>())?
        .map_err(io(format!("UDP sockets on the source ports in host {from}")))?;
    let before = f.spine_counters()?;
    let done = AtomicBool::new(false);
    let expected = source_ports.len() as u64 * packets as u64;
    let (sent, received_per_flow) = std::thread::scope(|s| {
        let rx = &rx;
        let done = &done;
        let h = s.spawn(move || {
            let mut per = vec![0u64; source_ports.len()];
            let mut buf = vec![0u8; 65536];
            let mut total = 0u64;
            let mut idle_since: Option<Instant> = None;
            while total < expected {
                match rx.recv(&mut buf) {
                    Ok(n) if n >= 4 => {
                        let i = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
                        if let Some(c) = per.get_mut(i) {
                            *c += 1;
                            total += 1;
                        }
                        idle_since = None;
                    }
                    _ => {
                        if done.load(Ordering::Acquire) {
                            let t = *idle_since.get_or_insert_with(Instant::now);
                            if t.elapsed() > Duration::from_millis(300) {
                                break;
                            }
                        }
                    }
                }
            }
            per
        });
        let mut sent = 0u64;
        let mut pkt = vec![0u8; payload];
        for k in 0..packets {
            for (i, sock) in senders.iter().enumerate() {
                pkt[..4].copy_from_slice(&(i as u32).to_be_bytes());
                pkt[4..8].copy_from_slice(&k.to_be_bytes());
                // A full queue (ENOBUFS) is a datagram not sent; try once more after a pause.
                let ok = sock.send_to(&pkt, SocketAddrV4::new(dst, FLOW_PORT)).is_ok() || {
                    std::thread::sleep(Duration::from_millis(1));
                    sock.send_to(&pkt, SocketAddrV4::new(dst, FLOW_PORT)).is_ok()
                };
                sent += ok as u64;
            }
        }
        done.store(true, Ordering::Release);
        (sent, h.join().expect("receiver thread"))
    });
    // Counters are updated as packets pass; a packet still on its way is a few microseconds out.
    std::thread::sleep(Duration::from_millis(20));
    let after = f.spine_counters()?;
    Ok(FlowRun { source_ports: source_ports.to_vec(), sent, received_per_flow, spread: Spread::of(&crate::spine_load(&before, &after, to)) })
}

/// The spread one would expect if each of `flows` equal flows went to a
/// spine drawn uniformly at random (the ideal of a per-flow hash): mean
/// max/mean and Jain over `draws` draws. A reference for the kernel's figures.
pub fn uniform_hash_model(flows: usize, spines: usize, draws: usize, seed: u64) -> (f64, f64) {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1; // xorshift64: any nonzero state
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let (mut mm, mut j) = (0.0, 0.0);
    for _ in 0..draws {
        let mut load = vec![0u64; spines];
        for _ in 0..flows {
            load[(next() % spines as u64) as usize] += 1;
        }
        let sp = Spread::of(&load);
        mm += sp.max_mean;
        j += sp.jain;
    }
    (mm / draws as f64, j / draws as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 section 3's example words sum to 0xddf2; the checksum is its complement.
        assert_eq!(inet_checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), !0xddf2);
        // A packet with its checksum filled in sums to zero.
        let mut p = vec![8, 0, 0, 0, 0x12, 0x34, 0, 1, 9, 9, 9];
        let c = inet_checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
        assert_eq!(inet_checksum(&p), 0);
    }

    #[test]
    fn random_ports_are_distinct_ephemeral_and_seeded() {
        let a = random_ports(1000, 7);
        assert_eq!(a.len(), 1000);
        assert_eq!(a.iter().collect::<std::collections::HashSet<_>>().len(), 1000);
        assert!(a.iter().all(|p| EPHEMERAL.contains(p)));
        assert_eq!(a, random_ports(1000, 7));
        assert_ne!(a, random_ports(1000, 8));
    }

    #[test]
    fn spread_and_uniform_model() {
        let s = Spread::of(&[10, 0, 0, 0]);
        assert_eq!((s.max_mean, s.jain, s.spines_used), (4.0, 0.25, 1));
        let s = Spread::of(&[5, 5, 5, 5]);
        assert_eq!((s.max_mean, s.jain, s.spines_used), (1.0, 1.0, 4));
        // One flow lands on one spine: max/mean = spines, Jain = 1/spines.
        let (mm, j) = uniform_hash_model(1, 8, 100, 1);
        assert!((mm - 8.0).abs() < 1e-9 && (j - 0.125).abs() < 1e-9, "{mm} {j}");
        // Many flows even out.
        let (mm, j) = uniform_hash_model(4096, 8, 50, 1);
        assert!(mm < 1.15 && j > 0.99, "{mm} {j}");
    }
}
