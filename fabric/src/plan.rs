//! The fabric as data: namespace names, links, addresses, MAC addresses,
//! neighbours, routes and sysctls, computed from a [`FabricSpec`] without
//! touching the system (so it is tested without root).
//!
//! ```text
//!   card 192.0.2.6                                               card 198.51.100.6
//!      |  TAP card0 192.0.2.5                                       |  TAP card0 198.51.100.5
//!   [ host h1   192.0.2.2 ]                                      [ host h2   198.51.100.2 ]
//!      |  192.0.2.0/30                                              |  198.51.100.0/30
//!   [ leaf l1   192.0.2.1 ]                                      [ leaf l2   198.51.100.1 ]
//!      |  ports s1..sN: one multipath route, layer-4 hash           |  ports s1..sN (the same)
//!      |                                                            |
//!      +-- 100.64.S.1 --- 100.64.S.2 [ spine sS ] 100.64.S.6 --- 100.64.S.5 --+
//!                         (port l1)                (port l2)      S = 1..N, a /30 per link
//! ```
//!
//! Leaf L owns one documentation /24 (leaf 1: 192.0.2.0/24, leaf 2:
//! 198.51.100.0/24): its host link is .0/30 (leaf .1, host .2), the card
//! port behind the host is .4/30 (the TAP .5, the card .6). Spine S's link
//! to leaf L is 100.64.S.(4(L-1))/30 (leaf .4(L-1)+1, spine .4(L-1)+2), so the
//! third octet of any spine address names the spine. Spines route each
//! leaf's /24 to that leaf; a leaf routes the other leaf's /24 over every
//! spine with one multipath route (equal weights). Every neighbour is static
//! (every MAC address is set from the plan), so no ARP crosses the fabric and
//! IPv6 is off: the spines' interface counters count only the traffic sent.

use crate::{Error, Result};
use std::fmt;
use std::net::Ipv4Addr;

/// Every namespace of every fabric starts with this (`ofc-<fabric>-<role>`).
pub const PREFIX: &str = "ofc";
pub const LEAVES: u8 = 2;
pub const MIN_SPINES: u8 = 4;
pub const MAX_SPINES: u8 = 8;
pub const DEFAULT_SPINES: u8 = 8;
/// The TAP a card process attaches to, inside each host's namespace.
pub const CARD_TAP: &str = "card0";
/// Interface names inside the namespaces (each namespace has its own).
pub const HOST_UPLINK: &str = "leaf";
pub const LEAF_HOST_PORT: &str = "host";
/// Longest fabric name: namespace names stay short in `ip netns list`.
pub const MAX_NAME: usize = 24;

/// What to build: a name (letters, digits, `_`) and a spine count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FabricSpec {
    pub name: String,
    pub spines: u8,
}

impl FabricSpec {
    pub fn new(name: &str, spines: u8) -> Result<FabricSpec> {
        check_name(name)?;
        if !(MIN_SPINES..=MAX_SPINES).contains(&spines) {
            return Err(Error::Spec(format!("{spines} spines: a fabric has {MIN_SPINES} to {MAX_SPINES}")));
        }
        Ok(FabricSpec { name: name.to_string(), spines })
    }
}

/// A fabric name becomes part of namespace names: letters, digits and `_`
/// only (no `-`, so `ofc-a-` never matches fabric `a-b`'s namespaces).
pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_NAME || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(Error::Spec(format!(
            "fabric name {name:?}: 1 to {MAX_NAME} letters, digits or '_' (it becomes part of the namespace names {PREFIX}-NAME-l1, ...)"
        )));
    }
    Ok(())
}

/// A namespace's part in the fabric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Leaf(u8),
    Spine(u8),
    Host(u8),
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Role::Leaf(i) => write!(f, "l{i}"),
            Role::Spine(i) => write!(f, "s{i}"),
            Role::Host(i) => write!(f, "h{i}"),
        }
    }
}

impl Role {
    /// `l1`, `s8`, `h2` (indices from 1).
    pub fn parse(s: &str) -> Option<Role> {
        let (kind, num) = s.split_at(s.len().min(1));
        if num.is_empty() || num.starts_with('0') || !num.bytes().all(|b| b.is_ascii_digit()) || num.len() > 3 {
            return None;
        }
        let i: u8 = num.parse().ok()?;
        match kind {
            "l" => Some(Role::Leaf(i)),
            "s" => Some(Role::Spine(i)),
            "h" => Some(Role::Host(i)),
            _ => None,
        }
    }
}

/// `ofc-<fabric>-<role>`.
pub fn netns_name(fabric: &str, role: Role) -> String {
    format!("{PREFIX}-{fabric}-{role}")
}

/// The fabric and role of a namespace name, if it is one of ours.
pub fn parse_netns(ns: &str) -> Option<(&str, Role)> {
    let rest = ns.strip_prefix(PREFIX)?.strip_prefix('-')?;
    let (fabric, role) = rest.rsplit_once('-')?;
    check_name(fabric).ok()?;
    Some((fabric, Role::parse(role)?))
}

/// Locally administered MAC addresses, one per interface of the plan:
/// 02:0f:ca:KIND:LEAF:SPINE.
pub mod mac {
    pub const LEAF_TO_SPINE: u8 = 1;
    pub const SPINE_TO_LEAF: u8 = 2;
    pub const LEAF_TO_HOST: u8 = 3;
    pub const HOST_UPLINK: u8 = 4;
    pub const CARD_TAP: u8 = 5;
    /// The card's own port (what the driver programs as the outer source MAC).
    pub const CARD: u8 = 6;
    pub fn make(kind: u8, leaf: u8, spine: u8) -> [u8; 6] {
        [0x02, 0x0f, 0xca, kind, leaf, spine]
    }
    pub fn fmt(m: [u8; 6]) -> String {
        m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
    }
}

/// Leaf `leaf`'s /24 (1: 192.0.2.0/24, 2: 198.51.100.0/24).
pub fn leaf_prefix(leaf: u8) -> [u8; 3] {
    match leaf {
        1 => [192, 0, 2],
        2 => [198, 51, 100],
        _ => [203, 0, 113], // a third leaf would take the last documentation /24
    }
}

fn leaf_net(leaf: u8, last: u8) -> Ipv4Addr {
    let p = leaf_prefix(leaf);
    Ipv4Addr::new(p[0], p[1], p[2], last)
}

/// Leaf `leaf`'s address on its link to spine `spine`.
pub fn leaf_spine_addr(leaf: u8, spine: u8) -> Ipv4Addr {
    Ipv4Addr::new(100, 64, spine, 4 * (leaf - 1) + 1)
}

/// Spine `spine`'s address on its link to leaf `leaf` (the source of the
/// ICMP errors it sends for packets from that leaf).
pub fn spine_leaf_addr(leaf: u8, spine: u8) -> Ipv4Addr {
    Ipv4Addr::new(100, 64, spine, 4 * (leaf - 1) + 2)
}

/// The spine whose address `a` is (100.64.S.x), if it is one.
pub fn spine_of_addr(a: Ipv4Addr) -> Option<u8> {
    let o = a.octets();
    (o[0] == 100 && o[1] == 64 && o[2] >= 1 && o[2] <= MAX_SPINES && (o[3] % 4 == 2)).then_some(o[2])
}

/// Spine `spine`'s interface towards leaf `leaf` (in the spine's namespace).
pub fn spine_port(leaf: u8) -> String {
    format!("l{leaf}")
}

/// Leaf `leaf`'s interface towards spine `spine` (in the leaf's namespace).
pub fn leaf_port(spine: u8) -> String {
    format!("s{spine}")
}

/// A host at a leaf: its namespace, addresses and card port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostInfo {
    pub index: u8,
    pub netns: String,
    /// The host's address (on its uplink to the leaf).
    pub addr: Ipv4Addr,
    /// The leaf's address on the host link (the host's default route).
    pub gateway: Ipv4Addr,
    /// The TAP a card process attaches to (`ip netns exec NETNS offcard card --net tap:card0`).
    pub tap: String,
    /// The TAP's address and MAC: the card's next hop.
    pub tap_addr: Ipv4Addr,
    pub tap_mac: [u8; 6],
    /// The address and MAC the card's port should use (a static neighbour in the host).
    pub card_addr: Ipv4Addr,
    pub card_mac: [u8; 6],
}

pub fn host_info(fabric: &str, leaf: u8) -> HostInfo {
    HostInfo {
        index: leaf,
        netns: netns_name(fabric, Role::Host(leaf)),
        addr: leaf_net(leaf, 2),
        gateway: leaf_net(leaf, 1),
        tap: CARD_TAP.to_string(),
        tap_addr: leaf_net(leaf, 5),
        tap_mac: mac::make(mac::CARD_TAP, leaf, 0),
        card_addr: leaf_net(leaf, 6),
        card_mac: mac::make(mac::CARD, leaf, 0),
    }
}

/// One end of a veth pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct End {
    pub netns: String,
    pub ifname: String,
    pub mac: [u8; 6],
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
}

/// A veth pair between two namespaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub a: End,
    pub b: End,
}

/// Everything `up` makes, as data.
#[derive(Clone, Debug)]
pub struct Plan {
    pub spec: FabricSpec,
    /// In creation order.
    pub namespaces: Vec<(Role, String)>,
    pub links: Vec<Link>,
    /// TAPs: (namespace, name, MAC, address/prefix).
    pub taps: Vec<(String, String, [u8; 6], Ipv4Addr, u8)>,
    /// Per namespace: sysctls under /proc/sys, set before any link is made.
    pub sysctls: Vec<(String, Vec<(&'static str, &'static str)>)>,
    /// Per namespace: `ip -batch` lines (addresses, links up, neighbours, routes).
    pub config: Vec<(String, Vec<String>)>,
}

const COMMON_SYSCTLS: &[(&str, &str)] = &[
    // No IPv6: no router solicitations or MLD reports in the counters.
    ("net/ipv6/conf/all/disable_ipv6", "1"),
    ("net/ipv6/conf/default/disable_ipv6", "1"),
    // Multipath makes paths asymmetric; no reverse-path filtering.
    ("net/ipv4/conf/all/rp_filter", "0"),
    ("net/ipv4/conf/default/rp_filter", "0"),
    ("net/ipv4/ip_forward", "1"),
    // Every TTL-expired probe gets its answer (Linux rate-limits ICMP errors by default).
    // (per peer), and all ICMP errors together per namespace (icmp_msgs_per_sec);
    // a ratemask of 0 exempts every type from both.
    ("net/ipv4/icmp_ratelimit", "0"),
    ("net/ipv4/icmp_ratemask", "0"),
];

const LEAF_SYSCTLS: &[(&str, &str)] = &[
    // Layer-4 multipath hash: source and destination address, protocol, ports.
    ("net/ipv4/fib_multipath_hash_policy", "1"),
    // A spine whose link is down is left out of the multipath route.
    ("net/ipv4/conf/all/ignore_routes_with_linkdown", "1"),
    ("net/ipv4/conf/default/ignore_routes_with_linkdown", "1"),
];

impl Plan {
    pub fn new(spec: &FabricSpec) -> Plan {
        let f = &spec.name;
        let ns = |r| netns_name(f, r);
        let mut namespaces = vec![];
        for l in 1..=LEAVES {
            namespaces.push((Role::Leaf(l), ns(Role::Leaf(l))));
        }
        for s in 1..=spec.spines {
            namespaces.push((Role::Spine(s), ns(Role::Spine(s))));
        }
        for l in 1..=LEAVES {
            namespaces.push((Role::Host(l), ns(Role::Host(l))));
        }
        let sysctls = namespaces
            .iter()
            .map(|(r, n)| {
                let mut v = COMMON_SYSCTLS.to_vec();
                if matches!(r, Role::Leaf(_)) {
                    v.extend_from_slice(LEAF_SYSCTLS);
                }
                (n.clone(), v)
            })
            .collect();
        let mut links = vec![];
        for l in 1..=LEAVES {
            for s in 1..=spec.spines {
                links.push(Link {
                    a: End { netns: ns(Role::Leaf(l)), ifname: leaf_port(s), mac: mac::make(mac::LEAF_TO_SPINE, l, s), addr: leaf_spine_addr(l, s), prefix_len: 30 },
                    b: End { netns: ns(Role::Spine(s)), ifname: spine_port(l), mac: mac::make(mac::SPINE_TO_LEAF, l, s), addr: spine_leaf_addr(l, s), prefix_len: 30 },
                });
            }
        }
        let mut taps = vec![];
        for l in 1..=LEAVES {
            let h = host_info(f, l);
            links.push(Link {
                a: End { netns: ns(Role::Leaf(l)), ifname: LEAF_HOST_PORT.into(), mac: mac::make(mac::LEAF_TO_HOST, l, 0), addr: h.gateway, prefix_len: 30 },
                b: End { netns: h.netns.clone(), ifname: HOST_UPLINK.into(), mac: mac::make(mac::HOST_UPLINK, l, 0), addr: h.addr, prefix_len: 30 },
            });
            taps.push((h.netns.clone(), h.tap.clone(), h.tap_mac, h.tap_addr, 30));
        }
        // Per-namespace configuration.
        let mut config: Vec<(String, Vec<String>)> = namespaces.iter().map(|(_, n)| (n.clone(), vec!["link set dev lo up".to_string()])).collect();
        let cfg = |config: &mut Vec<(String, Vec<String>)>, n: &str, line: String| {
            config.iter_mut().find(|(x, _)| x == n).expect("namespace of the plan").1.push(line);
        };
        for k in &links {
            for (me, peer) in [(&k.a, &k.b), (&k.b, &k.a)] {
                cfg(&mut config, &me.netns, format!("link set dev {} address {} up", me.ifname, mac::fmt(me.mac)));
                cfg(&mut config, &me.netns, format!("addr replace {}/{} dev {}", me.addr, me.prefix_len, me.ifname));
                cfg(&mut config, &me.netns, format!("neigh replace {} lladdr {} dev {} nud permanent", peer.addr, mac::fmt(peer.mac), me.ifname));
            }
        }
        for (n, tap, m, a, plen) in &taps {
            cfg(&mut config, n, format!("link set dev {tap} address {} up", mac::fmt(*m)));
            cfg(&mut config, n, format!("addr replace {a}/{plen} dev {tap}"));
        }
        for l in 1..=LEAVES {
            let h = host_info(f, l);
            let p = leaf_prefix(l);
            // The host: everything through its leaf; the card behind the TAP is a static neighbour.
            cfg(&mut config, &h.netns, format!("route replace default via {} dev {HOST_UPLINK}", h.gateway));
            cfg(&mut config, &h.netns, format!("neigh replace {} lladdr {} dev {} nud permanent", h.card_addr, mac::fmt(h.card_mac), h.tap));
            // The leaf: the card's /30 through the host; the other leaves' /24s over every spine.
            let leaf = ns(Role::Leaf(l));
            cfg(&mut config, &leaf, format!("route replace {}.{}.{}.4/30 via {} dev {LEAF_HOST_PORT}", p[0], p[1], p[2], h.addr));
            for m in (1..=LEAVES).filter(|&m| m != l) {
                let q = leaf_prefix(m);
                let hops: Vec<String> = (1..=spec.spines).map(|s| format!("nexthop via {} dev {} weight 1", spine_leaf_addr(l, s), leaf_port(s))).collect();
                cfg(&mut config, &leaf, format!("route replace {}.{}.{}.0/24 {}", q[0], q[1], q[2], hops.join(" ")));
            }
            // Each spine: leaf l's /24 to leaf l.
            for s in 1..=spec.spines {
                cfg(&mut config, &ns(Role::Spine(s)), format!("route replace {}.{}.{}.0/24 via {} dev {}", p[0], p[1], p[2], leaf_spine_addr(l, s), spine_port(l)));
            }
        }
        Plan { spec: spec.clone(), namespaces, links, taps, sysctls, config }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_names_are_refused() {
        for r in [Role::Leaf(1), Role::Spine(8), Role::Host(2)] {
            let n = netns_name("t_1", r);
            assert_eq!(parse_netns(&n), Some(("t_1", r)), "{n}");
        }
        assert_eq!(parse_netns("ofc-a-b-l1"), None, "a '-' in the fabric part is not ours");
        assert_eq!(parse_netns("ofc-a-x1"), None);
        assert_eq!(parse_netns("ofc-a-s01"), None);
        assert_eq!(parse_netns("other-a-l1"), None);
        for bad in ["", "a-b", "a b", "é", &"x".repeat(MAX_NAME + 1)] {
            assert!(FabricSpec::new(bad, 8).is_err(), "{bad:?} accepted");
        }
        assert!(FabricSpec::new("f0", 3).is_err());
        assert!(FabricSpec::new("f0", 9).is_err());
        assert!(FabricSpec::new("f0", 4).is_ok());
    }

    #[test]
    fn plan_has_every_link_once_and_addresses_only_from_test_ranges() {
        let p = Plan::new(&FabricSpec::new("x", 8).unwrap());
        assert_eq!(p.namespaces.len(), 2 + 8 + 2);
        assert_eq!(p.links.len(), 2 * 8 + 2);
        let mut macs = std::collections::HashSet::new();
        let mut addrs = std::collections::HashSet::new();
        for k in &p.links {
            for e in [&k.a, &k.b] {
                assert!(e.ifname.len() <= 15, "{}", e.ifname);
                assert!(macs.insert(e.mac), "MAC {} twice", mac::fmt(e.mac));
                assert!(addrs.insert(e.addr), "address {} twice", e.addr);
                let o = e.addr.octets();
                let doc = matches!(o[..3], [192, 0, 2] | [198, 51, 100] | [203, 0, 113]);
                let cgn = o[0] == 100 && (64..128).contains(&o[1]);
                assert!(doc || cgn, "{} is not a documentation or shared-space address", e.addr);
            }
            // Both ends of a link in one /30.
            let (a, b) = (u32::from(k.a.addr), u32::from(k.b.addr));
            assert_eq!(a >> 2, b >> 2, "{} and {}", k.a.addr, k.b.addr);
        }
        // Spine addresses name their spine; leaf addresses do not.
        for s in 1..=8 {
            assert_eq!(spine_of_addr(spine_leaf_addr(1, s)), Some(s));
            assert_eq!(spine_of_addr(spine_leaf_addr(2, s)), Some(s));
            assert_eq!(spine_of_addr(leaf_spine_addr(1, s)), None);
        }
        // Leaf 1's multipath route to leaf 2's /24 names all 8 spines.
        let leaf1 = &p.config.iter().find(|(n, _)| n == "ofc-x-l1").unwrap().1;
        let route = leaf1.iter().find(|l| l.starts_with("route replace 198.51.100.0/24")).unwrap();
        assert_eq!(route.matches("nexthop via").count(), 8, "{route}");
        // Only leaves hash on layer 4; every namespace has IPv6 off.
        for (n, s) in &p.sysctls {
            assert_eq!(s.contains(&("net/ipv4/fib_multipath_hash_policy", "1")), n.contains("-l"), "{n}");
            assert!(s.contains(&("net/ipv6/conf/default/disable_ipv6", "1")));
        }
        let p4 = Plan::new(&FabricSpec::new("x", 4).unwrap());
        assert_eq!(p4.links.len(), 2 * 4 + 2);
    }
}
