//! A newc (SVR4 "070701") cpio writer and the guest initramfs builder.

use std::path::Path;

use anyhow::{Context, Result};

/// Builds an uncompressed newc cpio archive in memory.
pub struct Cpio {
    out: Vec<u8>,
    ino: u32,
}

impl Default for Cpio {
    fn default() -> Self {
        Self::new()
    }
}

impl Cpio {
    pub fn new() -> Self {
        Cpio { out: Vec::new(), ino: 1 }
    }

    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) {
        let fields = [
            self.ino,
            mode,
            0,
            0,
            if mode & 0o170000 == 0o040000 { 2 } else { 1 },
            0,
            data.len() as u32,
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0,
        ];
        self.ino += 1;
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }
    fn pad(&mut self) {
        while self.out.len() % 4 != 0 {
            self.out.push(0);
        }
    }
    pub fn dir(&mut self, name: &str) {
        self.entry(name, 0o040755, (0, 0), &[]);
    }
    pub fn file(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.entry(name, 0o100000 | (mode & 0o7777), (0, 0), data);
    }
    pub fn symlink(&mut self, name: &str, target: &str) {
        self.entry(name, 0o120777, (0, 0), target.as_bytes());
    }
    pub fn char_dev(&mut self, name: &str, mode: u32, major: u32, minor: u32) {
        self.entry(name, 0o020000 | (mode & 0o7777), (major, minor), &[]);
    }
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, (0, 0), &[]);
        while self.out.len() % 512 != 0 {
            self.out.push(0);
        }
        self.out
    }
}

/// Marker lines the standard init prints (tests and the benchmark look for them).
pub const INIT_STARTED: &str = "OFFCARD-INIT: started";
pub const INIT_DONE: &str = "OFFCARD-INIT: done";

/// Build an initramfs with a static busybox and an `/init` that prints
/// [`INIT_STARTED`], runs `script` (busybox sh), prints [`INIT_DONE`] and resets the
/// machine (`reboot -f` with `reboot=k`: this VMM's power-off; the kernel has no ACPI
/// here, so `poweroff -f` would only halt — with `panic=-1` it also ends in a reset).
/// `modules` are (name in initramfs, bytes) of kernel modules that init loads with insmod first.
pub fn build(busybox: &Path, script: &str, modules: &[(String, Vec<u8>)]) -> Result<Vec<u8>> {
    let bb = std::fs::read(busybox).with_context(|| format!("reading busybox {}", busybox.display()))?;
    let mut c = Cpio::new();
    for d in ["bin", "sbin", "dev", "proc", "sys", "tmp", "lib", "lib/modules", "usr", "usr/bin", "usr/sbin"] {
        c.dir(d);
    }
    c.char_dev("dev/console", 0o600, 5, 1);
    c.char_dev("dev/null", 0o666, 1, 3);
    c.file("bin/busybox", 0o755, &bb);
    for app in ["sh", "echo", "mount", "cat", "sleep", "usleep", "ls", "dd", "sha256sum", "ip", "ping", "ifconfig", "insmod", "seq", "head", "wc", "true", "uname"] {
        c.symlink(&format!("bin/{app}"), "busybox");
    }
    for app in ["reboot", "poweroff", "halt"] {
        c.symlink(&format!("sbin/{app}"), "../bin/busybox");
    }
    let mut insmods = String::new();
    for (name, data) in modules {
        c.file(&format!("lib/modules/{name}"), 0o644, data);
        insmods.push_str(&format!("insmod /lib/modules/{name} || echo \"OFFCARD-INIT: insmod {name} failed\"\n"));
    }
    let init = format!(
        "#!/bin/sh\n\
         export PATH=/bin:/sbin\n\
         mount -t proc proc /proc 2>/dev/null\n\
         mount -t sysfs sys /sys 2>/dev/null\n\
         mount -t devtmpfs dev /dev 2>/dev/null\n\
         echo \"{INIT_STARTED}\"\n\
         {insmods}\
         (\n{script}\n)\n\
         echo \"{INIT_DONE} rc=$?\"\n\
         reboot -f\n\
         poweroff -f\n"
    );
    c.file("init", 0o755, init.as_bytes());
    Ok(c.finish())
}
