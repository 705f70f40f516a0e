//! The fabric on this machine's kernel: up and down (twice, nothing left),
//! convergence, ICMP echo across it, and UDP flows with different source
//! ports spread over every spine by Linux's layer-4 multipath hash (and over
//! one spine with the layer-3 hash, which shows the counters see the
//! difference). Needs root and iproute2 (CI has both); skipped otherwise,
//! with the reason printed. Every test removes its fabric, also on panic.

use offcard_fabric::plan::{self, FabricSpec, Role};
use offcard_fabric::traffic::{self, random_ports};
use offcard_fabric::{ip, netns, Fabric, RemoveOnDrop};
use std::time::Duration;

/// The namespaces of fabric `name` that exist now.
fn ours(name: &str) -> Vec<String> {
    ip::netns_list().unwrap().into_iter().filter(|n| plan::parse_netns(n).is_some_and(|(f, _)| f == name)).collect()
}

/// Interface name and index of every interface of every namespace of a fabric
/// (an index changes when a link is made again).
fn inventory(f: &Fabric) -> Vec<(String, String, u64)> {
    let mut v = vec![];
    for n in ours(&f.spec().name) {
        let out = ip::ip(&["-n", &n, "-j", "link", "show"]).unwrap();
        let j: serde_json::Value = serde_json::from_str(&out).unwrap();
        for l in j.as_array().unwrap() {
            v.push((n.clone(), l["ifname"].as_str().unwrap().to_string(), l["ifindex"].as_u64().unwrap()));
        }
    }
    v.sort();
    v
}

#[test]
fn up_twice_and_down_twice_leave_nothing_behind() {
    if !offcard_fabric::runnable_or_say_why() {
        return;
    }
    let g = RemoveOnDrop::for_test("updown");
    let main_sysctls = || ["net/ipv4/ip_forward", "net/ipv4/fib_multipath_hash_policy", "net/ipv6/conf/default/disable_ipv6"].map(|k| std::fs::read_to_string(format!("/proc/sys/{k}")).unwrap());
    let main_before = main_sysctls();
    let spec = FabricSpec::new(&g.0, 8).unwrap();
    let f = Fabric::up(&spec).unwrap();
    // The sysctls went into the fabric's namespaces, not this one.
    assert_eq!(main_sysctls(), main_before, "up changed the main namespace's sysctls");
    assert_eq!(ours(&g.0).len(), 2 + 8 + 2, "{:?}", ours(&g.0));
    let first = inventory(&f);
    // Leaf: lo, the host port and 8 spine ports; spine: lo, l1, l2; host: lo, uplink, TAP.
    assert_eq!(first.len(), 2 * 10 + 8 * 3 + 2 * 3, "{first:?}");
    assert!(first.iter().any(|(n, i, _)| n == &f.host(1).netns && i == plan::CARD_TAP));
    f.leave_up();
    // Up again: nothing is made again.
    let f = Fabric::up(&spec).unwrap();
    assert_eq!(inventory(&f), first, "a second up changed the fabric");
    assert_eq!(netns::sysctl(&f.netns(Role::Leaf(1)), "net/ipv4/fib_multipath_hash_policy").unwrap(), "1");
    // Fewer spines: the extra ones go; more again: they come back.
    f.leave_up();
    let f = Fabric::up(&FabricSpec::new(&g.0, 4).unwrap()).unwrap();
    assert_eq!(ours(&g.0).len(), 2 + 4 + 2);
    assert!(!ip::links(&f.netns(Role::Leaf(1))).unwrap().iter().any(|l| l.name == "s5"), "leaf kept a port to a removed spine");
    f.leave_up();
    let f = Fabric::up(&spec).unwrap();
    assert_eq!(ours(&g.0).len(), 2 + 8 + 2);
    // Down, twice.
    let removed = f.down().unwrap();
    assert_eq!(removed.namespaces.len(), 12, "{removed:?}");
    assert!(ours(&g.0).is_empty(), "left behind: {:?}", ours(&g.0));
    let again = offcard_fabric::remove(&g.0).unwrap();
    assert!(again.namespaces.is_empty());
    // Nothing of the plan reached the main namespace (every plan MAC starts 02:0f:ca).
    let main = ip::ip(&["-j", "link", "show"]).unwrap();
    assert!(!main.contains("02:0f:ca:"), "an interface of the fabric is in the main namespace: {main}");
}

#[test]
fn a_dropped_fabric_is_removed_also_when_the_test_panics() {
    if !offcard_fabric::runnable_or_say_why() {
        return;
    }
    let g = RemoveOnDrop::for_test("panic");
    let name = g.0.clone();
    let r = std::panic::catch_unwind(move || {
        let _f = Fabric::up(&FabricSpec::new(&name, 4).unwrap()).unwrap();
        assert_eq!(ours(&name).len(), 8);
        panic!("on purpose");
    });
    assert!(r.is_err());
    assert!(ours(&g.0).is_empty(), "left behind after a panic: {:?}", ours(&g.0));
}

#[test]
fn echo_crosses_the_fabric_and_every_spine_answers() {
    if !offcard_fabric::runnable_or_say_why() {
        return;
    }
    let g = RemoveOnDrop::for_test("ping");
    let f = Fabric::up(&FabricSpec::new(&g.0, 8).unwrap()).unwrap();
    let h2 = f.host(2).addr;
    let p = traffic::ping(&f, 1, h2, 5, Duration::from_secs(2)).unwrap();
    assert_eq!((p.sent, p.received), (5, 5), "host 1 -> host 2: {p:?}");
    // Back the other way, and to every spine's address on leaf 1's side.
    assert_eq!(traffic::ping(&f, 2, f.host(1).addr, 2, Duration::from_secs(2)).unwrap().received, 2);
    for s in 1..=8 {
        let a = plan::spine_leaf_addr(1, s);
        assert_eq!(traffic::ping(&f, 1, a, 1, Duration::from_secs(2)).unwrap().received, 1, "spine {s} ({a})");
    }
    // An address nobody has gets no reply (the echo check is not fooled by other ICMP).
    let none = traffic::ping(&f, 1, "198.51.100.200".parse().unwrap(), 1, Duration::from_millis(300)).unwrap();
    assert_eq!(none.received, 0);
}

#[test]
fn udp_flows_reach_every_spine_with_the_layer4_hash_and_one_without() {
    if !offcard_fabric::runnable_or_say_why() {
        return;
    }
    let g = RemoveOnDrop::for_test("flows");
    let spec = FabricSpec::new(&g.0, 8).unwrap();
    let f = Fabric::up(&spec).unwrap();
    // 256 flows: a spine missed by all of them has probability 8 * (7/8)^256 < 1e-13.
    let ports = random_ports(256, 0x5eed);
    let r = traffic::udp_flows(&f, 1, 2, &ports, 4, 200).unwrap();
    assert_eq!(r.sent, 1024);
    assert_eq!(r.counted_at_spines(), r.sent, "spine counters {:?} vs {} sent", r.spread.per_spine, r.sent);
    assert!(r.received() >= r.sent * 95 / 100, "received {} of {}", r.received(), r.sent);
    assert_eq!(r.spread.spines_used, 8, "per spine {:?}", r.spread.per_spine);
    assert!(r.spread.max_mean < 2.0 && r.spread.jain > 0.8, "{:?}", r.spread);
    // A flow keeps its spine: the same ports again load the spines the same way.
    let r2 = traffic::udp_flows(&f, 1, 2, &ports, 4, 200).unwrap();
    assert_eq!(r2.spread.per_spine, r.spread.per_spine, "the same flows took other spines");
    // With the layer-3 hash every flow of one address pair takes one spine.
    netns::set_sysctls(&f.netns(Role::Leaf(1)), &[("net/ipv4/fib_multipath_hash_policy", "0")]).unwrap();
    let l3 = traffic::udp_flows(&f, 1, 2, &random_ports(64, 9), 2, 200).unwrap();
    assert_eq!(l3.spread.spines_used, 1, "layer-3 hash: {:?}", l3.spread.per_spine);
    assert_eq!(l3.counted_at_spines(), 128);
    // `up` again puts the layer-4 hash back.
    f.leave_up();
    let f = Fabric::up(&spec).unwrap();
    assert_eq!(netns::sysctl(&f.netns(Role::Leaf(1)), "net/ipv4/fib_multipath_hash_policy").unwrap(), "1");
}

#[test]
fn a_four_spine_fabric_spreads_over_four() {
    if !offcard_fabric::runnable_or_say_why() {
        return;
    }
    let g = RemoveOnDrop::for_test("four");
    let f = Fabric::up(&FabricSpec::new(&g.0, 4).unwrap()).unwrap();
    let r = traffic::udp_flows(&f, 2, 1, &random_ports(128, 4), 2, 100).unwrap();
    assert_eq!(r.spread.per_spine.len(), 4);
    assert_eq!(r.spread.spines_used, 4, "{:?}", r.spread.per_spine);
    assert_eq!(r.counted_at_spines(), 256);
}

/// TTL-limited probes from host 1 find every spine (the answers come from
/// the spines' own addresses) within 16 probes per spine, knowing nothing of
/// the kernel's hash; one stream sprayed over one discovered port per spine
/// then loads every spine exactly equally, while the same spray over as many
/// arbitrary ports does not.
#[test]
fn probes_find_every_spine_and_spraying_over_the_found_ports_balances() {
    use offcard_fabric::discover::discover_from_host;
    if !offcard_fabric::runnable_or_say_why() {
        return;
    }
    for spines in [8u8, 4] {
        let g = RemoveOnDrop::for_test(&format!("disc{spines}"));
        let f = Fabric::up(&FabricSpec::new(&g.0, spines).unwrap()).unwrap();
        // TTL 1 expires at the leaf: one path only.
        let leaf = discover_from_host(&f, 1, 2, 1, 1, 64, 11).unwrap();
        assert_eq!(leaf.paths.len(), 1, "{leaf:?}");
        assert_eq!(leaf.paths[0].0, f.host(1).gateway);
        let d = discover_from_host(&f, 1, 2, 2, 1, 16 * spines as u32, 12).unwrap();
        let found: std::collections::BTreeSet<u8> = d.paths.iter().map(|(a, _)| plan::spine_of_addr(*a).expect("a spine address")).collect();
        assert_eq!(found.len(), spines as usize, "{d:?}");
        assert_eq!(d.unanswered, 0, "{d:?}");
        // Spray: one datagram per discovered port in turn, 50 rounds.
        let ports = d.one_port_per_path();
        let r = traffic::udp_flows(&f, 1, 2, &ports, 50, 100).unwrap();
        assert_eq!(r.spread.per_spine, vec![50u64; spines as usize], "spray over discovered ports");
        assert_eq!(r.spread.max_mean, 1.0);
        // Each port lands on the spine that answered its probe.
        for (addr, p) in &d.paths {
            let one = traffic::udp_flows(&f, 1, 2, &p[..1], 3, 100).unwrap();
            let s = plan::spine_of_addr(*addr).unwrap() as usize;
            assert_eq!(one.spread.per_spine[s - 1], 3, "port {} answered by spine {s}, data went {:?}", p[0], one.spread.per_spine);
        }
    }
}
