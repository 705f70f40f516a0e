//! A real leaf-spine ECMP fabric for the card's overlay, made of Linux
//! network namespaces with iproute2 (`offcard fabric up|down|status`):
//! two leaves, 4 to 8 spines, veth pairs between them, one multipath route
//! per leaf with layer-4 hashing (`net.ipv4.fib_multipath_hash_policy=1`),
//! a host namespace at each leaf with a TAP for a card process's port, and
//! per-path load from the spines' own kernel interface counters.
//!
//! The model in `offcard-net` (`fabric.rs`) stays the fast reference; this
//! is the fabric a user meets: hash functions and seeds nobody outside the
//! kernel knows. Layout, addresses and names: [`plan`]. Traffic over it
//! (ICMP echo, UDP flows, the per-flow spread measurement): [`traffic`].
//! Path discovery by TTL-limited probes from a host's sockets: [`discover`].
//!
//! [`Fabric::up`] converges (running it on a fabric that is already up
//! changes nothing, on a half-built one completes it, with another spine
//! count adds or removes spines) and returns a guard that removes the fabric
//! when dropped, also when a test panics; [`Fabric::leave_up`] keeps it (the
//! CLI). [`remove`] takes a fabric down by name: it ends the processes still
//! inside its namespaces (e.g. card processes started with `ip netns exec`)
//! and deletes the namespaces, which deletes their veths and TAPs.

pub mod discover;
pub mod ip;
pub mod netns;
pub mod plan;
pub mod traffic;

use plan::{FabricSpec, HostInfo, Plan, Role};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the fabric needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN, to make network namespaces and links): run as root, e.g. with sudo")]
    NotRoot,
    #[error("iproute2's `ip` cannot be run ({0}): install iproute2 (Debian/Ubuntu: apt-get install iproute2)")]
    NoIproute2(String),
    #[error("`{cmd}` failed: {stderr}")]
    Command { cmd: String, stderr: String },
    #[error("{0}")]
    Spec(String),
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("{0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Root and iproute2 (with network namespace and JSON support), or an error saying which is missing.
pub fn check_prerequisites() -> Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err(Error::NotRoot);
    }
    let v = ip::ip(&["-V"])?;
    if !v.contains("iproute2") {
        return Err(Error::NoIproute2(format!("`ip -V` says {:?}, not iproute2", v.trim())));
    }
    Ok(())
}

/// Removes fabric `name` when dropped, also when the code that made it
/// panics: for fabrics made by name (`offcard fabric up --name`) rather than
/// through [`Fabric`], whose own drop removes it. Tests name theirs after
/// their process (`RemoveOnDrop::for_test`) so parallel runs do not clash.
pub struct RemoveOnDrop(pub String);

impl RemoveOnDrop {
    /// `t<pid><tag>`.
    pub fn for_test(tag: &str) -> RemoveOnDrop {
        RemoveOnDrop(format!("t{}{tag}", std::process::id()))
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Err(e) = remove(&self.0) {
            eprintln!("removing fabric {}: {e}", self.0);
        }
    }
}

/// Whether fabrics can be made here; if not, says why on stderr as
/// `SKIPPED: ...` (the tests' way to skip without root or iproute2).
pub fn runnable_or_say_why() -> bool {
    match check_prerequisites() {
        Ok(()) => true,
        Err(e) => {
            eprintln!("SKIPPED: {e}");
            false
        }
    }
}

/// The namespaces of fabric `name` that exist now, sorted by role.
pub fn namespaces_of(name: &str) -> Result<Vec<(Role, String)>> {
    let mut v: Vec<(Role, String)> = ip::netns_list()?
        .into_iter()
        .filter_map(|n| match plan::parse_netns(&n) {
            Some((f, r)) if f == name => Some((r, n.clone())),
            _ => None,
        })
        .collect();
    v.sort();
    Ok(v)
}

/// Every fabric that has at least one namespace now.
pub fn fabrics() -> Result<Vec<String>> {
    let set: BTreeSet<String> = ip::netns_list()?.iter().filter_map(|n| plan::parse_netns(n).map(|(f, _)| f.to_string())).collect();
    Ok(set.into_iter().collect())
}

/// What [`remove`] did.
#[derive(Clone, Debug, Default)]
pub struct Removed {
    pub namespaces: Vec<String>,
    /// Processes that were still inside the fabric's namespaces, ended.
    pub ended: Vec<i32>,
}

/// Take fabric `name` down: end the processes inside its namespaces
/// (SIGTERM, SIGKILL after 2 s), delete the namespaces (with their veths and
/// TAPs) and check that none is left. Removing a fabric that is not there
/// succeeds and removes nothing.
pub fn remove(name: &str) -> Result<Removed> {
    plan::check_name(name)?;
    check_prerequisites()?;
    let nss = namespaces_of(name)?;
    let mut removed = Removed::default();
    for (_, ns) in &nss {
        removed.ended.extend(ip::netns_pids(ns)?);
    }
    end_processes(&removed.ended);
    for (_, ns) in &nss {
        match ip::ip(&["netns", "del", ns]) {
            Ok(_) => removed.namespaces.push(ns.clone()),
            // Removed meanwhile by someone else: fine.
            Err(_) if !ip::netns_list()?.contains(ns) => {}
            Err(e) => return Err(e),
        }
    }
    let left = namespaces_of(name)?;
    if !left.is_empty() {
        return Err(Error::Other(format!("fabric {name}: namespaces left after down: {:?}", left.iter().map(|x| &x.1).collect::<Vec<_>>())));
    }
    Ok(removed)
}

fn end_processes(pids: &[i32]) {
    let alive = |p: i32| std::path::Path::new(&format!("/proc/{p}")).exists();
    for &p in pids {
        // SAFETY: kill(2) with a pid from `ip netns pids` and a valid signal.
        unsafe { libc::kill(p, libc::SIGTERM) };
    }
    let t0 = Instant::now();
    while pids.iter().any(|&p| alive(p)) && t0.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(20));
    }
    for &p in pids.iter().filter(|&&p| alive(p)) {
        // SAFETY: as above.
        unsafe { libc::kill(p, libc::SIGKILL) };
    }
}

/// Counters of one spine's interfaces (`l1` towards leaf 1, `l2` towards leaf 2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpineCounters {
    pub spine: u8,
    pub ports: Vec<ip::IfStats>,
}

impl SpineCounters {
    pub fn port(&self, leaf: u8) -> Option<&ip::IfStats> {
        let n = plan::spine_port(leaf);
        self.ports.iter().find(|p| p.name == n)
    }

    /// Packets this spine forwarded towards leaf `to` (its port's transmit counter).
    pub fn towards(&self, to: u8) -> u64 {
        self.port(to).map_or(0, |p| p.tx_packets)
    }

    pub fn bytes_towards(&self, to: u8) -> u64 {
        self.port(to).map_or(0, |p| p.tx_bytes)
    }
}

/// Packets each spine forwarded towards leaf `to` between two readings.
pub fn spine_load(before: &[SpineCounters], after: &[SpineCounters], to: u8) -> Vec<u64> {
    after
        .iter()
        .map(|a| {
            let b = before.iter().find(|b| b.spine == a.spine).map_or(0, |b| b.towards(to));
            a.towards(to).saturating_sub(b)
        })
        .collect()
}

/// A fabric that is up. Dropping an owned one takes it down.
#[derive(Debug)]
pub struct Fabric {
    spec: FabricSpec,
    owned: bool,
}

impl Fabric {
    /// Build `spec`'s fabric, or complete and correct the one that is there.
    pub fn up(spec: &FabricSpec) -> Result<Fabric> {
        check_prerequisites()?;
        // The guard exists from the first namespace on: a failure half-way removes what was made.
        let mut f = Fabric { spec: spec.clone(), owned: true };
        let existed = !namespaces_of(&spec.name)?.is_empty();
        if existed {
            // Someone else's fabric (or an earlier `up`): converge, but do not take it down on failure.
            f.owned = false;
        }
        converge(&Plan::new(spec))?;
        f.owned = true;
        Ok(f)
    }

    /// The fabric `name` as it is (not owned: dropping it leaves it up).
    pub fn attach(name: &str) -> Result<Fabric> {
        check_prerequisites()?;
        plan::check_name(name)?;
        let nss = namespaces_of(name)?;
        let spines = nss.iter().filter(|(r, _)| matches!(r, Role::Spine(_))).count() as u8;
        let spec = FabricSpec::new(name, spines).map_err(|_| Error::Other(format!("no fabric {name} is up (its namespaces: {:?})", nss.iter().map(|x| &x.1).collect::<Vec<_>>())))?;
        for (r, n) in Plan::new(&spec).namespaces {
            if !nss.iter().any(|x| x.0 == r) {
                return Err(Error::Other(format!("fabric {name} is incomplete: no namespace {n} (run `offcard fabric up --name {name}` again)")));
            }
        }
        Ok(Fabric { spec, owned: false })
    }

    /// Keep the fabric up when this handle is dropped.
    pub fn leave_up(mut self) -> FabricSpec {
        self.owned = false;
        self.spec.clone()
    }

    /// Take the fabric down now (the error, unlike a drop's, is returned).
    pub fn down(mut self) -> Result<Removed> {
        self.owned = false;
        remove(&self.spec.name)
    }

    pub fn spec(&self) -> &FabricSpec {
        &self.spec
    }

    pub fn netns(&self, role: Role) -> String {
        plan::netns_name(&self.spec.name, role)
    }

    /// Host `i` (1 or 2): namespace, addresses, card port.
    pub fn host(&self, i: u8) -> HostInfo {
        plan::host_info(&self.spec.name, i)
    }

    /// Every spine's interface counters, read from the kernel (`ip -s -j link`).
    pub fn spine_counters(&self) -> Result<Vec<SpineCounters>> {
        (1..=self.spec.spines)
            .map(|s| {
                let ports = ip::links(&self.netns(Role::Spine(s)))?.into_iter().filter(|l| l.name != "lo").collect();
                Ok(SpineCounters { spine: s, ports })
            })
            .collect()
    }

    /// Run `f` inside namespace `role` (sockets made there stay there).
    pub fn in_netns<R: Send>(&self, role: Role, f: impl FnOnce() -> R + Send) -> Result<R> {
        netns::in_netns(&self.netns(role), f)
    }
}

impl Drop for Fabric {
    fn drop(&mut self) {
        if self.owned {
            if let Err(e) = remove(&self.spec.name) {
                eprintln!("offcard-fabric: taking fabric {} down: {e}", self.spec.name);
            }
        }
    }
}

/// Make the system match `plan`: create what is missing, set what differs,
/// remove spines beyond the plan's count. Every step is idempotent.
fn converge(plan: &Plan) -> Result<()> {
    let name = &plan.spec.name;
    let existing = namespaces_of(name)?;
    // Spines (or other namespaces) the plan does not have: gone, with their links.
    for (r, n) in &existing {
        if !plan.namespaces.iter().any(|(pr, _)| pr == r) {
            for p in ip::netns_pids(n)? {
                end_processes(&[p]);
            }
            ip::ip(&["netns", "del", n])?;
        }
    }
    for (r, n) in &plan.namespaces {
        if !existing.iter().any(|(er, _)| er == r) {
            ip::ip(&["netns", "add", n])?;
        }
    }
    for (n, values) in &plan.sysctls {
        netns::set_sysctls(n, values)?;
    }
    // Links: a veth pair is made whole or not at all; a stray end of a pair
    // the plan would make (its peer gone) is deleted first.
    let mut names: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
    for (_, n) in &plan.namespaces {
        names.insert(n.clone(), ip::links(n)?.into_iter().map(|l| l.name).collect());
    }
    let has = |names: &std::collections::HashMap<String, Vec<String>>, ns: &str, ifn: &str| names.get(ns).is_some_and(|v| v.iter().any(|x| x == ifn));
    for k in &plan.links {
        let (a, b) = (&k.a, &k.b);
        match (has(&names, &a.netns, &a.ifname), has(&names, &b.netns, &b.ifname)) {
            (true, true) => continue,
            (true, false) => ip::ip(&["-n", &a.netns, "link", "del", &a.ifname]).map(|_| ())?,
            (false, true) => ip::ip(&["-n", &b.netns, "link", "del", &b.ifname]).map(|_| ())?,
            (false, false) => {}
        }
        ip::ip(&[
            "-n", &a.netns, "link", "add", "name", &a.ifname, "address", &plan::mac::fmt(a.mac), "type", "veth",
            "peer", "name", &b.ifname, "address", &plan::mac::fmt(b.mac), "netns", &b.netns,
        ])?;
    }
    for (n, tap, _, _, _) in &plan.taps {
        if !has(&names, n, tap) {
            ip::ip(&["-n", n, "tuntap", "add", "dev", tap, "mode", "tap"])?;
        }
    }
    for (n, lines) in &plan.config {
        ip::batch(n, lines)?;
    }
    Ok(())
}
