//! Running iproute2: single commands, `ip -batch` per namespace, and its
//! JSON output (`ip -j`) parsed with serde_json.

use crate::{Error, Result};
use std::io::Write;
use std::process::{Command, Stdio};

/// The `ip` program (iproute2); `OFFCARD_IP` overrides it.
fn ip_program() -> String {
    std::env::var("OFFCARD_IP").unwrap_or_else(|_| "ip".to_string())
}

fn describe(args: &[&str]) -> String {
    format!("ip {}", args.join(" "))
}

/// Run `ip args...`; its stdout, or an error naming the command and its stderr.
pub fn ip(args: &[&str]) -> Result<String> {
    let out = Command::new(ip_program()).args(args).stdin(Stdio::null()).output().map_err(|e| Error::NoIproute2(e.to_string()))?;
    if !out.status.success() {
        return Err(Error::Command { cmd: describe(args), stderr: String::from_utf8_lossy(&out.stderr).trim().to_string() });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Run `lines` with `ip -n NETNS -batch -` (one process per namespace).
pub fn batch(netns: &str, lines: &[String]) -> Result<()> {
    if lines.is_empty() {
        return Ok(());
    }
    let args = ["-n", netns, "-batch", "-"];
    let mut child = Command::new(ip_program())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::NoIproute2(e.to_string()))?;
    let mut text = lines.join("\n");
    text.push('\n');
    child.stdin.take().expect("piped stdin").write_all(text.as_bytes()).map_err(|e| Error::Io { what: "writing to ip -batch".into(), source: e })?;
    let out = child.wait_with_output().map_err(|e| Error::Io { what: "waiting for ip -batch".into(), source: e })?;
    if !out.status.success() {
        return Err(Error::Command {
            cmd: format!("{} <<< {:?}", describe(&args), lines),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// Names of every network namespace `ip netns` knows.
pub fn netns_list() -> Result<Vec<String>> {
    let out = ip(&["-j", "netns", "list"])?;
    Ok(parse_netns_list(&out))
}

/// `ip -j netns list` prints nothing when there is no namespace.
fn parse_netns_list(out: &str) -> Vec<String> {
    if out.trim().is_empty() {
        return vec![];
    }
    match serde_json::from_str::<serde_json::Value>(out) {
        Ok(serde_json::Value::Array(v)) => v.iter().filter_map(|n| n["name"].as_str().map(str::to_string)).collect(),
        _ => out.lines().filter_map(|l| l.split_whitespace().next().map(str::to_string)).collect(),
    }
}

/// An interface and its kernel counters (`ip -s -j link show`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IfStats {
    pub name: String,
    pub up: bool,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
}

/// Every interface of `netns` with its counters.
pub fn links(netns: &str) -> Result<Vec<IfStats>> {
    let out = ip(&["-n", netns, "-s", "-j", "link", "show"])?;
    parse_links(&out).map_err(|e| Error::Other(format!("ip -n {netns} -s -j link show: {e}")))
}

pub(crate) fn parse_links(out: &str) -> std::result::Result<Vec<IfStats>, String> {
    let v: serde_json::Value = serde_json::from_str(out).map_err(|e| e.to_string())?;
    let arr = v.as_array().ok_or("not a JSON array")?;
    let mut r = vec![];
    for l in arr {
        let s = &l["stats64"];
        let n = |dir: &str, k: &str| s[dir][k].as_u64().unwrap_or(0);
        r.push(IfStats {
            name: l["ifname"].as_str().ok_or("an interface without ifname")?.to_string(),
            up: l["flags"].as_array().is_some_and(|f| f.iter().any(|x| x == "UP")),
            rx_packets: n("rx", "packets"),
            rx_bytes: n("rx", "bytes"),
            tx_packets: n("tx", "packets"),
            tx_bytes: n("tx", "bytes"),
            rx_dropped: n("rx", "dropped"),
            tx_dropped: n("tx", "dropped"),
        });
    }
    Ok(r)
}

/// The processes whose network namespace is `netns` (`ip netns pids`).
pub fn netns_pids(netns: &str) -> Result<Vec<i32>> {
    Ok(ip(&["netns", "pids", netns])?.split_whitespace().filter_map(|p| p.parse().ok()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_iproute2_json() {
        assert!(parse_netns_list("").is_empty());
        assert_eq!(parse_netns_list(r#"[{"name":"ofc-a-l1","id":3},{"name":"x"}]"#), ["ofc-a-l1", "x"]);
        assert_eq!(parse_netns_list("ofc-a-l1 (id: 3)\nx\n"), ["ofc-a-l1", "x"]);
        let j = r#"[{"ifindex":3,"link":"vb","ifname":"va","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,
            "stats64":{"rx":{"bytes":100,"packets":2,"errors":0,"dropped":1},"tx":{"bytes":300,"packets":5,"errors":0,"dropped":0}}},
            {"ifindex":1,"ifname":"lo","flags":["LOOPBACK"],"stats64":{"rx":{"bytes":0,"packets":0},"tx":{"bytes":0,"packets":0}}}]"#;
        let l = parse_links(j).unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!((l[0].name.as_str(), l[0].up, l[0].rx_packets, l[0].rx_bytes, l[0].tx_packets, l[0].tx_bytes, l[0].rx_dropped), ("va", true, 2, 100, 5, 300, 1));
        assert!(!l[1].up);
        assert!(parse_links("{}").is_err());
    }
}
