//! Path discovery by TTL-limited probes (Paris / Dublin traceroute), from
//! kernel sockets in a host namespace: UDP probes with the data's 5-tuple
//! except the source port, and an IP TTL that expires at the hop where the
//! paths differ (from a host: 1 expires at its leaf, 2 at a spine). The
//! router there answers with ICMP time exceeded from its own address and
//! quotes the probe, so each answer says which router a source port's
//! packets reach. Nothing about the routers' hash function or seed is used.
//!
//! How many paths there are is not known either: probing stops by the
//! Multipath Detection Algorithm's rule (Veitch et al., "Failure control in
//! multipath route tracing", INFOCOM 2009): with k paths found, after
//! n(k) probes in all, where a (k+1)-th path with an equal share would
//! have been missed with probability at most alpha.
//!
//! This is the host-socket form of issue 16's discovery; the card's own
//! (probes from its transmit queue, answers through an exception path to
//! the driver) needs card changes and uses the same [`discover`] rule.

use crate::plan::Role;
use crate::traffic::{random_ports, udp_bind, FLOW_PORT};
use crate::{Error, Fabric, Result};
use socket2::{Domain, Protocol, Socket, Type};
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

/// MDA's stopping point: probes to send in all, with `k` paths found, so
/// that a (k+1)-th equally likely path is missed with probability <= `alpha`:
/// the least n with (k+1) (k/(k+1))^n <= alpha.
pub fn mda_probes(k: usize, alpha: f64) -> u32 {
    if k == 0 {
        return 1;
    }
    let k = k as f64;
    ((alpha / (k + 1.0)).ln() / (k / (k + 1.0)).ln()).ceil() as u32
}

/// What discovery found: each answering router with the source ports that
/// reach it, in the order found.
#[derive(Clone, Debug, Default)]
pub struct Discovery {
    pub paths: Vec<(Ipv4Addr, Vec<u16>)>,
    pub probes_sent: u32,
    /// Probes answered: MDA's count (an unanswered probe says nothing about the paths).
    pub answered: u32,
    /// Probes sent when the last path found was found (the rest confirmed there was no other).
    pub probes_to_last_new: u32,
    pub unanswered: u32,
    pub elapsed: Duration,
}

impl Discovery {
    /// One source port per path found (the first of each).
    pub fn one_port_per_path(&self) -> Vec<u16> {
        self.paths.iter().map(|(_, p)| p[0]).collect()
    }
}

/// The miss probability host discovery stops at. MDA's customary 0.05
/// missed a spine in about one run in 25 (measured: 3 of 4 spines after 16
/// answered probes); 0.001 costs 39 probes for 4 spines, 78 for 8.
pub const ALPHA: f64 = 0.001;

/// Probes sent from one source port before it is given up as unanswered.
pub const ATTEMPTS: u32 = 3;

/// The search: probe candidate ports until each path found has `per_path`
/// ports and MDA's rule says no path is left (or `max_probes` ran out).
/// `probe(port)` is the router a probe with that source port reached, or None.
/// A port whose probe went unanswered (an answer late on a loaded host, or
/// lost) is probed again, up to [`ATTEMPTS`] times, and only answered probes
/// count toward MDA's rule, so lost answers cannot stop the search early.
pub fn discover(candidates: impl IntoIterator<Item = u16>, per_path: usize, alpha: f64, max_probes: u32, mut probe: impl FnMut(u16) -> Result<Option<Ipv4Addr>>) -> Result<Discovery> {
    let t0 = Instant::now();
    let mut d = Discovery::default();
    for port in candidates {
        let k = d.paths.len();
        if d.probes_sent >= max_probes || (k > 0 && d.answered >= mda_probes(k, alpha) && d.paths.iter().all(|(_, p)| p.len() >= per_path)) {
            break;
        }
        let mut answer = None;
        for _ in 0..ATTEMPTS {
            if d.probes_sent >= max_probes {
                break;
            }
            d.probes_sent += 1;
            answer = probe(port)?;
            if answer.is_some() {
                break;
            }
            d.unanswered += 1;
        }
        match answer {
            None => {}
            Some(r) => match d.paths.iter_mut().find(|(a, _)| *a == r) {
                Some((_, ports)) if ports.len() < per_path => ports.push(port),
                Some(_) => {}
                None => {
                    d.paths.push((r, vec![port]));
                    d.probes_to_last_new = d.probes_sent;
                }
            },
        }
        if answer.is_some() {
            d.answered += 1;
        }
    }
    d.elapsed = t0.elapsed();
    Ok(d)
}

/// A probe socket pair inside a host namespace: a raw ICMP socket that sees
/// the answers, and the host's address.
struct Prober {
    icmp: Socket,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u32,
    timeout: Duration,
}

impl Prober {
    /// One probe from source port `port`; the router that answered.
    fn probe(&self, port: u16) -> std::io::Result<Option<Ipv4Addr>> {
        let s = udp_bind(SocketAddrV4::new(self.src, port))?;
        s.set_ttl(self.ttl)?;
        s.send_to(b"offcard-probe", SocketAddrV4::new(self.dst, FLOW_PORT))?;
        let t0 = Instant::now();
        let mut buf = [0u8; 1500];
        while let Some(left) = self.timeout.checked_sub(t0.elapsed()) {
            self.icmp.set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
            let n = match (&self.icmp).read(&mut buf) {
                Ok(n) => n,
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => return Ok(None),
                Err(e) => return Err(e),
            };
            if let Some((router, sport)) = parse_time_exceeded(&buf[..n], self.src, self.dst) {
                if sport == port {
                    return Ok(Some(router));
                }
            }
        }
        Ok(None)
    }
}

/// An ICMP time exceeded (as a raw socket hands it: IP header first) that
/// quotes a UDP packet from `src` to `dst`: the answering router and the
/// quoted source port.
pub fn parse_time_exceeded(p: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> Option<(Ipv4Addr, u16)> {
    let ihl = (*p.first()? & 15) as usize * 4;
    if ihl < 20 || p.len() < ihl + 8 || p[9] != 1 {
        return None;
    }
    let router = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
    let icmp = &p[ihl..];
    if icmp[0] != 11 || icmp[1] != 0 {
        return None;
    }
    let q = &icmp[8..];
    let qihl = (*q.first()? & 15) as usize * 4;
    if qihl < 20 || q.len() < qihl + 4 || q[9] != 17 {
        return None;
    }
    if q[12..16] != src.octets() || q[16..20] != dst.octets() {
        return None;
    }
    Some((router, u16::from_be_bytes([q[qihl], q[qihl + 1]])))
}

/// Discover the paths from host `from` to host `to`'s [`FLOW_PORT`] at hop
/// `ttl` (2: the spines), with candidate source ports drawn from `seed`.
pub fn discover_from_host(f: &Fabric, from: u8, to: u8, ttl: u32, per_path: usize, max_probes: u32, seed: u64) -> Result<Discovery> {
    let (src, dst) = (f.host(from).addr, f.host(to).addr);
    f.in_netns(Role::Host(from), || -> Result<Discovery> {
        let icmp = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)).map_err(|e| Error::Io { what: "raw ICMP socket".into(), source: e })?;
        let p = Prober { icmp, src, dst, ttl, timeout: Duration::from_millis(200) };
        discover(random_ports(max_probes as usize, seed), per_path, ALPHA, max_probes, |port| {
            p.probe(port).map_err(|e| Error::Io { what: format!("probe from source port {port}"), source: e })
        })
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mda_stopping_points_are_the_least_that_bound_the_miss_probability() {
        // The first points of MDA's 95 % table (Augustin et al.): 6, 11, 16, 21.
        assert_eq!((1..=4).map(|k| mda_probes(k, 0.05)).collect::<Vec<_>>(), [6, 11, 16, 21]);
        for k in 1..=16usize {
            let n = mda_probes(k, 0.05) as i32;
            let miss = |n: i32| (k as f64 + 1.0) * (k as f64 / (k as f64 + 1.0)).powi(n);
            assert!(miss(n) <= 0.05 && miss(n - 1) > 0.05, "k {k}: n {n}");
        }
    }

    #[test]
    fn discover_finds_every_path_of_a_hidden_hash_and_stops() {
        // A "router" hashing ports onto 8 next hops by a function discovery does not know.
        let hop = |p: u16| Ipv4Addr::new(100, 64, 1 + (p.wrapping_mul(40503) >> 13) as u8 % 8, 2);
        let d = discover(random_ports(1000, 3), 1, 0.05, 1000, |p| Ok(Some(hop(p)))).unwrap();
        assert_eq!(d.paths.len(), 8);
        assert!(d.probes_sent >= mda_probes(8, 0.05) && d.probes_sent < 128, "{}", d.probes_sent);
        assert!(d.probes_to_last_new >= 8 && d.probes_to_last_new <= d.probes_sent, "{d:?}");
        for (r, ports) in &d.paths {
            assert!(ports.iter().all(|&p| hop(p) == *r));
        }
        // Two ports per path; unanswered probes are counted; the cap holds.
        let d = discover(random_ports(1000, 4), 2, 0.05, 1000, |p| Ok((p % 5 != 0).then(|| hop(p)))).unwrap();
        assert!(d.paths.iter().all(|(_, p)| p.len() == 2));
        assert!(d.unanswered > 0);
        let d = discover(random_ports(1000, 5), 1, 0.05, 3, |p| Ok(Some(hop(p)))).unwrap();
        assert_eq!(d.probes_sent, 3);
        // Every other answer lost: the port is probed again, and lost answers
        // do not count toward the stopping rule, so all 8 paths are still found.
        let mut lose = false;
        let d = discover(random_ports(1000, 6), 1, 0.05, 1000, |p| {
            lose = !lose;
            Ok((!lose).then(|| hop(p)))
        })
        .unwrap();
        assert_eq!(d.paths.len(), 8, "{d:?}");
        assert_eq!(d.unanswered, d.answered);
        assert!(d.answered >= mda_probes(8, 0.05));
    }

    #[test]
    fn parses_a_time_exceeded_quote() {
        let (src, dst) = (Ipv4Addr::new(192, 0, 2, 2), Ipv4Addr::new(198, 51, 100, 2));
        let mut p = vec![0x45, 0, 0, 56, 0, 0, 0, 0, 64, 1, 0, 0, 100, 64, 3, 2, 192, 0, 2, 2];
        p.extend_from_slice(&[11, 0, 0, 0, 0, 0, 0, 0]);
        p.extend_from_slice(&[0x45, 0, 0, 41, 0, 0, 0, 0, 1, 17, 0, 0]);
        p.extend_from_slice(&src.octets());
        p.extend_from_slice(&dst.octets());
        p.extend_from_slice(&[0xc0, 0x01, 0xb7, 0x98, 0, 21, 0, 0]);
        assert_eq!(parse_time_exceeded(&p, src, dst), Some((Ipv4Addr::new(100, 64, 3, 2), 0xc001)));
        assert_eq!(parse_time_exceeded(&p, dst, src), None, "another flow's quote");
        let mut unreach = p.clone();
        unreach[20] = 3;
        assert_eq!(parse_time_exceeded(&unreach, src, dst), None);
    }
}
