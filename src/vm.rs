//! `offcard vm ...`: the KVM hypervisor (docs/vmm.md). clap checks the
//! arguments here; the hypervisor library runs them.

use anyhow::Result;
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum VmCmd {
    /// Boot Linux (default: the cached Debian cloud kernel and a busybox initramfs that runs
    /// SCRIPT) and print the console
    Run(VmRunArgs),
    /// Restore a snapshot in this (new) process and continue the guest
    Restore {
        /// The snapshot directory
        #[arg(long, value_name = "DIR")]
        snapshot: PathBuf,
        /// Seconds to wait for the guest to power off
        #[arg(long, value_name = "SECS")]
        timeout: Option<f64>,
        /// Back guest RAM with this named file instead of a memfd
        #[arg(long, value_name = "PATH")]
        mem_file: Option<PathBuf>,
    },
    /// Fetch and cache the guest kernel and busybox (Debian packages)
    FetchAssets {
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
pub struct VmRunArgs {
    #[arg(long, value_name = "BZIMAGE")]
    kernel: Option<PathBuf>,
    #[arg(long, value_name = "CPIO")]
    initrd: Option<PathBuf>,
    /// Guest RAM in MiB
    #[arg(long, value_name = "MIB")]
    mem: Option<u64>,
    #[arg(long, value_name = "N")]
    vcpus: Option<u8>,
    #[arg(long, value_name = "TEXT")]
    cmdline: Option<String>,
    /// Shell script the default initramfs runs (\n allowed)
    #[arg(long, value_name = "SH")]
    script: Option<String>,
    /// Seconds to wait for the guest to power off
    #[arg(long, value_name = "SECS")]
    timeout: Option<f64>,
    /// Pause when the console prints TEXT and snapshot into DIR (first full, then diffs); repeatable
    #[arg(long, value_name = "TEXT=DIR")]
    checkpoint: Vec<String>,
    /// Back guest RAM with this named file (e.g. /dev/shm/guest) instead of a memfd
    #[arg(long, value_name = "PATH")]
    mem_file: Option<PathBuf>,
}

fn push(a: &mut Vec<String>, name: &str, v: Option<impl ToString>) {
    if let Some(v) = v {
        a.push(name.into());
        a.push(v.to_string());
    }
}

/// The hypervisor library's entry takes its words; they are rebuilt here
/// from checked values, so what it sees is always well-formed.
pub fn run(cmd: VmCmd, quiet: bool) -> Result<()> {
    let mut a: Vec<String> = vec!["vm".into()];
    let p = |p: &PathBuf| p.display().to_string();
    match cmd {
        VmCmd::Run(r) => {
            a.push("run".into());
            push(&mut a, "--kernel", r.kernel.as_ref().map(p));
            push(&mut a, "--initrd", r.initrd.as_ref().map(p));
            push(&mut a, "--mem", r.mem);
            push(&mut a, "--vcpus", r.vcpus);
            push(&mut a, "--cmdline", r.cmdline);
            push(&mut a, "--script", r.script);
            push(&mut a, "--timeout", r.timeout);
            for c in r.checkpoint {
                push(&mut a, "--checkpoint", Some(c));
            }
            push(&mut a, "--mem-file", r.mem_file.as_ref().map(p));
        }
        VmCmd::Restore { snapshot, timeout, mem_file } => {
            a.push("restore".into());
            push(&mut a, "--snapshot", Some(p(&snapshot)));
            push(&mut a, "--timeout", timeout);
            push(&mut a, "--mem-file", mem_file.as_ref().map(p));
        }
        VmCmd::FetchAssets { dir } => {
            a.push("fetch-assets".into());
            push(&mut a, "--dir", dir.as_ref().map(p));
        }
    }
    if quiet && matches!(a[1].as_str(), "run" | "restore") {
        a.push("--quiet".into());
    }
    offcard_vmm::cli::cli_main(&a)
}
