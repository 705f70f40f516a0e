//! What `offcard vm run`, `vm restore` and `vm fetch-assets` run. The `offcard`
//! binary parses the command line (clap) and fills the option structs; this
//! crate has no command-line parser of its own.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use crate::assets::GuestAssets;
use crate::vm::{default_cmdline, RunOptions, StopReason, Vm, VmConfig};

/// `\n` in a script or checkpoint text given on a command line is a newline.
fn unescape(s: &str) -> String {
    s.replace("\\n", "\n")
}

/// The demo script `vm run` runs when none is given.
pub const DEMO_SCRIPT: &str = "echo \"hello from $(uname -sr) on $(cat /proc/cpuinfo | grep -c ^processor) cpu(s)\"; \
i=0; while [ $i -lt 5 ]; do i=$((i+1)); echo \"COUNTER $i\"; done";

/// A checkpoint: pause when the console prints `text`, snapshot into `dir`.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    pub text: String,
    pub dir: PathBuf,
}

/// `TEXT=DIR` (split at the last `=`, `\n` in TEXT is a newline) into a
/// [`Checkpoint`]; the binary uses it as clap's value parser.
pub fn parse_checkpoint(s: &str) -> Result<Checkpoint> {
    let (t, d) = s.rsplit_once('=').ok_or_else(|| anyhow!("wants TEXT=DIR, got {s:?}"))?;
    if d.is_empty() {
        bail!("no snapshot directory after '=' in {s:?}");
    }
    Ok(Checkpoint { text: unescape(t), dir: PathBuf::from(d) })
}

/// Options of `vm run`.
#[derive(Debug, Clone)]
pub struct VmRunOptions {
    /// Guest kernel (default: the cached Debian kernel, fetched on first use).
    pub kernel: Option<PathBuf>,
    /// Initramfs (default with no `kernel`: a busybox initramfs that runs `script`).
    pub initrd: Option<PathBuf>,
    pub mem_mib: u64,
    pub vcpus: u8,
    /// Kernel command line (default [`default_cmdline`]).
    pub cmdline: Option<String>,
    /// Shell script of the default initramfs (`\n` allowed; default [`DEMO_SCRIPT`]).
    pub script: Option<String>,
    /// Seconds to wait for the guest to power off.
    pub timeout_secs: f64,
    /// Snapshots to take (first full, then diffs); after the last one the run ends.
    pub checkpoints: Vec<Checkpoint>,
    /// Back guest RAM with this named file instead of a memfd.
    pub mem_file: Option<PathBuf>,
    /// Do not echo the guest console.
    pub quiet: bool,
}

impl Default for VmRunOptions {
    fn default() -> Self {
        VmRunOptions {
            kernel: None,
            initrd: None,
            mem_mib: 128,
            vcpus: 1,
            cmdline: None,
            script: None,
            timeout_secs: 60.0,
            checkpoints: vec![],
            mem_file: None,
            quiet: false,
        }
    }
}

/// Options of `vm restore`.
#[derive(Debug, Clone)]
pub struct VmRestoreOptions {
    /// The snapshot directory.
    pub snapshot: PathBuf,
    /// Seconds to wait for the guest to power off.
    pub timeout_secs: f64,
    /// Back guest RAM with this named file instead of a memfd.
    pub mem_file: Option<PathBuf>,
    /// Do not echo the guest console.
    pub quiet: bool,
}

/// `vm fetch-assets`: fetch and cache the guest kernel and busybox; returns
/// the lines to print.
pub fn fetch_assets(dir: Option<&Path>) -> Result<String> {
    let a = GuestAssets::ensure(dir)?;
    Ok(format!("kernel {} ({})\nbusybox {}\n", a.kernel.display(), a.kernel_version, a.busybox.display()))
}

/// `vm run`: boot, take the checkpoints' snapshots, wait for power-off.
pub fn vm_run(o: &VmRunOptions) -> Result<()> {
    let (mem_mib, vcpus, timeout) = (o.mem_mib, o.vcpus, o.timeout_secs);
    let cmdline = o.cmdline.clone().unwrap_or_else(default_cmdline);
    let (kernel, initrd) = match (&o.kernel, &o.initrd) {
        (Some(k), i) => (k.clone(), i.clone()),
        (None, i) => {
            let assets = GuestAssets::ensure(None)?;
            let initrd = match i {
                Some(i) => i.clone(),
                None => {
                    let script = o.script.as_deref().map(unescape).unwrap_or_else(|| DEMO_SCRIPT.to_string());
                    assets.initramfs(&format!("run-{}", std::process::id()), &script, &[])?
                }
            };
            (assets.kernel.clone(), Some(initrd))
        }
    };
    let checkpoints: Vec<(String, PathBuf)> = o.checkpoints.iter().map(|c| (c.text.clone(), c.dir.clone())).collect();

    let mem_file = o.mem_file.clone();
    let mut vm = Vm::new(VmConfig { mem_mib, vcpus, mem_file, echo_console: !o.quiet })?;
    eprintln!("offcard-vmm: guest RAM {mem_mib} MiB shared at {}", vm.memory().fd_path().display());
    vm.load_linux(&kernel, initrd.as_deref(), &cmdline)?;
    if o.initrd.is_none() && o.kernel.is_none() {
        if let Some(i) = &initrd {
            let _ = std::fs::remove_file(i);
        }
    }
    let deadline = std::time::Instant::now() + Duration::from_secs_f64(timeout);
    let n_cp = checkpoints.len();
    for (i, (text, dir)) in checkpoints.into_iter().enumerate() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let r = vm.run(&RunOptions { timeout: Some(left), stop_on_console: Some(text.clone()) })?;
        if r != StopReason::ConsoleMatch {
            bail!("guest stopped ({r:?}) before printing checkpoint text {text:?}");
        }
        let info = vm.snapshot(&dir, i > 0).with_context(|| format!("snapshot into {}", dir.display()))?;
        eprintln!(
            "offcard-vmm: snapshot {} kind={} memory_bytes={} disk_bytes={} mem_hash={:#x} ms={:.1}",
            info.dir.display(),
            if info.diff { "diff" } else { "full" },
            info.memory_bytes,
            info.disk_bytes,
            info.mem_hash,
            info.millis
        );
        if i + 1 == n_cp {
            return Ok(());
        }
    }
    let left = deadline.saturating_duration_since(std::time::Instant::now());
    match vm.run(&RunOptions { timeout: Some(left), stop_on_console: None })? {
        StopReason::Shutdown => Ok(()),
        StopReason::DebugExit(v) => {
            eprintln!("offcard-vmm: guest debug exit {v}");
            Ok(())
        }
        r => bail!(
            "guest did not power off within {timeout} s ({r:?})\n{}unhandled ports: {:x?}",
            vm.vcpu_summary(),
            vm.unknown_io_ports()
        ),
    }
}

/// `vm restore`: restore a snapshot in this process and run the guest to power-off.
pub fn vm_restore(o: &VmRestoreOptions) -> Result<()> {
    let timeout = o.timeout_secs;
    let t0 = std::time::Instant::now();
    let mut vm = Vm::restore_with(&o.snapshot, !o.quiet, o.mem_file.as_deref())?;
    eprintln!(
        "offcard-vmm: restored {} mem_hash={:#x} in {:.1} ms",
        o.snapshot.display(),
        vm.memory().hash(),
        t0.elapsed().as_secs_f64() * 1e3
    );
    match vm.run(&RunOptions { timeout: Some(Duration::from_secs_f64(timeout)), stop_on_console: None })? {
        StopReason::Shutdown | StopReason::DebugExit(_) => Ok(()),
        r => bail!("restored guest did not power off within {timeout} s ({r:?})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_parse() {
        assert_eq!(
            parse_checkpoint("COUNTER 4\\n=/tmp/a=b").unwrap(),
            Checkpoint { text: "COUNTER 4\n=/tmp/a".into(), dir: "b".into() }
        );
        assert_eq!(parse_checkpoint("x=/d").unwrap().dir, PathBuf::from("/d"));
        assert!(parse_checkpoint("no-dir").is_err());
        assert!(parse_checkpoint("text=").is_err());
    }
}
