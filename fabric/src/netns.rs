//! Running code inside a named network namespace: a thread enters it with
//! `setns(CLONE_NEWNET)` (a network namespace is per thread), runs the
//! closure and ends. Sockets made there stay in that namespace wherever they
//! are used afterwards; /proc/sys/net written there is that namespace's.

use crate::{Error, Result};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

/// Where iproute2 keeps a named namespace (`/run/netns`, or `/var/run/netns`).
pub fn netns_path(name: &str) -> PathBuf {
    let run = PathBuf::from("/run/netns").join(name);
    if run.exists() {
        return run;
    }
    PathBuf::from("/var/run/netns").join(name)
}

/// Run `f` in a thread that has entered network namespace `name`.
pub fn in_netns<R: Send>(name: &str, f: impl FnOnce() -> R + Send) -> Result<R> {
    let path = netns_path(name);
    let file = std::fs::File::open(&path).map_err(|e| Error::Io { what: format!("opening network namespace {name} ({})", path.display()), source: e })?;
    std::thread::scope(|s| {
        s.spawn(move || {
            // SAFETY: `file` is an open descriptor of a network namespace
            // (iproute2's bind mount); setns with CLONE_NEWNET changes only
            // this thread's network namespace, which ends with the thread.
            let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            if r != 0 {
                return Err(Error::Io { what: format!("setns into {name}"), source: std::io::Error::last_os_error() });
            }
            Ok(f())
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// Write sysctls (paths under /proc/sys) inside namespace `name`.
pub fn set_sysctls(name: &str, values: &[(&str, &str)]) -> Result<()> {
    in_netns(name, || {
        for (k, v) in values {
            let p = PathBuf::from("/proc/sys").join(k);
            std::fs::write(&p, v).map_err(|e| Error::Io { what: format!("sysctl {} = {v} in {name}", k.replace('/', ".")), source: e })?;
        }
        Ok(())
    })?
}

/// Read a sysctl (a path under /proc/sys) inside namespace `name`.
pub fn sysctl(name: &str, key: &str) -> Result<String> {
    in_netns(name, || {
        std::fs::read_to_string(PathBuf::from("/proc/sys").join(key))
            .map(|s| s.trim().to_string())
            .map_err(|e| Error::Io { what: format!("reading sysctl {} in {name}", key.replace('/', ".")), source: e })
    })?
}
