//! Command line: `vm run`, `vm restore`, `vm fetch-assets`, `bench-vm`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use crate::assets::GuestAssets;
use crate::vm::{default_cmdline, RunOptions, StopReason, Vm, VmConfig};

pub const USAGE: &str = "\
usage:
  vm run [--kernel BZIMAGE] [--initrd CPIO] [--mem MIB] [--vcpus N] [--cmdline TEXT]
         [--script SH] [--timeout SECS] [--checkpoint TEXT=DIR]... [--mem-file PATH] [--quiet]
      Boot Linux (default: the cached Debian cloud kernel and a busybox initramfs that
      runs SH) and print the console. Each --checkpoint pauses when the console prints
      TEXT (\\n allowed) and snapshots into DIR (first full, then diffs); after the last
      checkpoint the process exits. --mem-file backs guest RAM with a named file
      (e.g. /dev/shm/guest) instead of a memfd, for another process to map.
  vm restore --snapshot DIR [--timeout SECS] [--mem-file PATH] [--quiet]
      Restore a snapshot in this (new) process and continue the guest.
  vm fetch-assets [--dir DIR]
      Fetch/cache the guest kernel and busybox (Debian packages).
  bench-vm [--json] [--linux|--raw]      (also: bench vm)
      Boot/snapshot/restore figures; the last line is JSON. Default guest: Linux,
      except on software KVM (PVM host) where a raw 64-bit program is used.";

fn unescape(s: &str) -> String {
    s.replace("\\n", "\n")
}

/// The demo script `vm run` runs when none is given.
pub const DEMO_SCRIPT: &str = "echo \"hello from $(uname -sr) on $(cat /proc/cpuinfo | grep -c ^processor) cpu(s)\"; \
i=0; while [ $i -lt 5 ]; do i=$((i+1)); echo \"COUNTER $i\"; done";

/// Entry point for `offcard` subcommands. `args` are the words after the program name,
/// e.g. `["vm", "run", "--mem", "256"]` or `["bench-vm", "--json"]`.
pub fn cli_main(args: &[String]) -> Result<()> {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    match a.as_slice() {
        ["vm", "run", rest @ ..] => vm_run(rest),
        ["vm", "restore", rest @ ..] => vm_restore(rest),
        ["vm", "fetch-assets", rest @ ..] => {
            let dir = opt(rest, "--dir")?.map(PathBuf::from);
            let a = GuestAssets::ensure(dir.as_deref())?;
            println!("kernel {} ({})", a.kernel.display(), a.kernel_version);
            println!("busybox {}", a.busybox.display());
            Ok(())
        }
        ["bench-vm", rest @ ..] | ["bench", "vm", rest @ ..] => crate::bench::bench_cli(rest),
        ["help"] | ["--help"] | ["-h"] | [] => {
            println!("{USAGE}");
            Ok(())
        }
        _ => bail!("unknown command {:?}\n{USAGE}", args.join(" ")),
    }
}

fn opt<'a>(args: &[&'a str], name: &str) -> Result<Option<&'a str>> {
    match args.iter().position(|a| *a == name) {
        None => Ok(None),
        Some(i) => args.get(i + 1).copied().map(Some).ok_or_else(|| anyhow!("{name} needs a value")),
    }
}

fn opts_all<'a>(args: &[&'a str], name: &str) -> Vec<&'a str> {
    args.windows(2).filter(|w| w[0] == name).map(|w| w[1]).collect()
}

fn check_flags(args: &[&str], with_value: &[&str], plain: &[&str]) -> Result<()> {
    let mut i = 0;
    while i < args.len() {
        if with_value.contains(&args[i]) {
            i += 2;
        } else if plain.contains(&args[i]) {
            i += 1;
        } else {
            bail!("unknown option {:?}\n{USAGE}", args[i]);
        }
    }
    Ok(())
}

fn num<T: std::str::FromStr>(v: Option<&str>, name: &str, default: T) -> Result<T> {
    match v {
        None => Ok(default),
        Some(s) => s.parse().map_err(|_| anyhow!("{name}: not a number: {s:?}")),
    }
}

fn vm_run(args: &[&str]) -> Result<()> {
    check_flags(
        args,
        &["--kernel", "--initrd", "--mem", "--vcpus", "--cmdline", "--script", "--timeout", "--checkpoint", "--mem-file"],
        &["--quiet"],
    )?;
    let quiet = args.contains(&"--quiet");
    let mem_mib = num(opt(args, "--mem")?, "--mem", 128u64)?;
    let vcpus = num(opt(args, "--vcpus")?, "--vcpus", 1u8)?;
    let timeout = num(opt(args, "--timeout")?, "--timeout", 60f64)?;
    let cmdline = opt(args, "--cmdline")?.map(str::to_string).unwrap_or_else(default_cmdline);
    let (kernel, initrd) = match (opt(args, "--kernel")?, opt(args, "--initrd")?) {
        (Some(k), i) => (PathBuf::from(k), i.map(PathBuf::from)),
        (None, i) => {
            let assets = GuestAssets::ensure(None)?;
            let initrd = match i {
                Some(i) => PathBuf::from(i),
                None => {
                    let script = opt(args, "--script")?.map(unescape).unwrap_or_else(|| DEMO_SCRIPT.to_string());
                    assets.initramfs(&format!("run-{}", std::process::id()), &script, &[])?
                }
            };
            (assets.kernel.clone(), Some(initrd))
        }
    };
    let mut checkpoints = Vec::new();
    for c in opts_all(args, "--checkpoint") {
        let (t, d) = c.rsplit_once('=').ok_or_else(|| anyhow!("--checkpoint wants TEXT=DIR, got {c:?}"))?;
        checkpoints.push((unescape(t), PathBuf::from(d)));
    }

    let mem_file = opt(args, "--mem-file")?.map(PathBuf::from);
    let mut vm = Vm::new(VmConfig { mem_mib, vcpus, mem_file, echo_console: !quiet })?;
    eprintln!("offcard-vmm: guest RAM {mem_mib} MiB shared at {}", vm.memory().fd_path().display());
    vm.load_linux(&kernel, initrd.as_deref(), &cmdline)?;
    if opt(args, "--initrd")?.is_none() && opt(args, "--kernel")?.is_none() {
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

fn vm_restore(args: &[&str]) -> Result<()> {
    check_flags(args, &["--snapshot", "--timeout", "--mem-file"], &["--quiet"])?;
    let dir = opt(args, "--snapshot")?.ok_or_else(|| anyhow!("vm restore needs --snapshot DIR"))?;
    let timeout = num(opt(args, "--timeout")?, "--timeout", 60f64)?;
    let t0 = std::time::Instant::now();
    let mem_file = opt(args, "--mem-file")?.map(PathBuf::from);
    let mut vm = Vm::restore_with(&PathBuf::from(dir), !args.contains(&"--quiet"), mem_file.as_deref())?;
    eprintln!(
        "offcard-vmm: restored {} mem_hash={:#x} in {:.1} ms",
        dir,
        vm.memory().hash(),
        t0.elapsed().as_secs_f64() * 1e3
    );
    match vm.run(&RunOptions { timeout: Some(Duration::from_secs_f64(timeout)), stop_on_console: None })? {
        StopReason::Shutdown | StopReason::DebugExit(_) => Ok(()),
        r => bail!("restored guest did not power off within {timeout} s ({r:?})"),
    }
}
