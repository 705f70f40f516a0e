//! `offcard vm ...`: the KVM hypervisor (docs/vmm.md). clap parses the
//! arguments here into the library's option structs; `offcard_vmm::commands`
//! runs them.

use anyhow::Result;
use clap::{Args, Subcommand};
use offcard_vmm::commands::{self as lib, Checkpoint, VmRestoreOptions, VmRunOptions};
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
    #[arg(long, value_name = "TEXT=DIR", value_parser = checkpoint)]
    checkpoint: Vec<Checkpoint>,
    /// Back guest RAM with this named file (e.g. /dev/shm/guest) instead of a memfd
    #[arg(long, value_name = "PATH")]
    mem_file: Option<PathBuf>,
}

fn checkpoint(s: &str) -> Result<Checkpoint, String> {
    lib::parse_checkpoint(s).map_err(|e| e.to_string())
}

pub fn run(cmd: VmCmd, quiet: bool) -> Result<()> {
    let d = VmRunOptions::default();
    match cmd {
        VmCmd::Run(r) => lib::vm_run(&VmRunOptions {
            kernel: r.kernel,
            initrd: r.initrd,
            mem_mib: r.mem.unwrap_or(d.mem_mib),
            vcpus: r.vcpus.unwrap_or(d.vcpus),
            cmdline: r.cmdline,
            script: r.script,
            timeout_secs: r.timeout.unwrap_or(d.timeout_secs),
            checkpoints: r.checkpoint,
            mem_file: r.mem_file,
            quiet,
        }),
        VmCmd::Restore { snapshot, timeout, mem_file } => lib::vm_restore(&VmRestoreOptions {
            snapshot,
            timeout_secs: timeout.unwrap_or(d.timeout_secs),
            mem_file,
            quiet,
        }),
        VmCmd::FetchAssets { dir } => {
            print!("{}", lib::fetch_assets(dir.as_deref())?);
            Ok(())
        }
    }
}
