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

#[cfg(test)]
mod tests {
    use super::*;

    /// Parse a newc archive back into (name, mode, rdev major, data).
    fn parse(mut a: &[u8]) -> Vec<(String, u32, u32, Vec<u8>)> {
        let mut v = Vec::new();
        let hex = |b: &[u8]| u32::from_str_radix(std::str::from_utf8(b).unwrap(), 16).unwrap();
        let pad = |n: usize| (4 - n % 4) % 4;
        loop {
            assert_eq!(&a[..6], b"070701");
            let f: Vec<u32> = (0..13).map(|i| hex(&a[6 + i * 8..14 + i * 8])).collect();
            let namesize = f[11] as usize;
            let name = String::from_utf8(a[110..110 + namesize - 1].to_vec()).unwrap();
            let hdr = 110 + namesize;
            let off = hdr + pad(hdr);
            let size = f[6] as usize;
            let data = a[off..off + size].to_vec();
            a = &a[off + size + pad(size)..];
            if name == "TRAILER!!!" {
                return v;
            }
            v.push((name, f[1], f[9], data));
        }
    }

    #[test]
    fn newc_roundtrip() {
        let mut c = Cpio::new();
        c.dir("bin");
        c.file("bin/x", 0o755, b"hello");
        c.symlink("bin/sh", "x");
        c.char_dev("dev/console", 0o600, 5, 1);
        let out = c.finish();
        assert_eq!(out.len() % 512, 0);
        let e = parse(&out);
        assert_eq!(e.len(), 4);
        assert_eq!(e[0].0, "bin");
        assert_eq!(e[0].1 & 0o170000, 0o040000);
        assert_eq!((e[1].0.as_str(), e[1].1, e[1].3.as_slice()), ("bin/x", 0o100755, &b"hello"[..]));
        assert_eq!((e[2].1, e[2].3.as_slice()), (0o120777, &b"x"[..]));
        assert_eq!((e[3].1, e[3].2), (0o020600, 5));
    }

    #[test]
    fn init_script_runs_script_and_resets() {
        let d = std::env::temp_dir().join(format!("offcard-cpio-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("busybox"), b"\x7fELF fake").unwrap();
        let out = build(&d.join("busybox"), "echo MARK", &[("m.ko".into(), b"ko".to_vec())]).unwrap();
        let e = parse(&out);
        let init = e.iter().find(|x| x.0 == "init").unwrap();
        let s = String::from_utf8(init.3.clone()).unwrap();
        assert!(s.contains(INIT_STARTED) && s.contains("echo MARK") && s.contains("reboot -f"));
        assert!(s.contains("insmod /lib/modules/m.ko"));
        assert!(e.iter().any(|x| x.0 == "lib/modules/m.ko" && x.3 == b"ko"));
        let _ = std::fs::remove_dir_all(&d);
    }
}
