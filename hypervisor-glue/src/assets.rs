//! Guest assets: Debian's cloud kernel and busybox-static, fetched by
//! `assets/fetch.sh` (apt-get download + dpkg-deb -x) into a cache folder.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Paths of the cached guest assets.
#[derive(Debug, Clone)]
pub struct GuestAssets {
    pub dir: PathBuf,
    pub kernel: PathBuf,
    pub bzimage: PathBuf,
    pub busybox: PathBuf,
    pub modules: PathBuf,
    pub kernel_version: String,
}

/// The crate's own folder (hypervisor-glue/).
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Default cache: `<repo>/.tools/guest` (gitignored), or `$OFFCARD_GUEST_DIR`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("OFFCARD_GUEST_DIR") {
        return PathBuf::from(d);
    }
    crate_dir().parent().map(|p| p.join(".tools/guest")).unwrap_or_else(|| PathBuf::from(".tools/guest"))
}

impl GuestAssets {
    fn at(dir: &Path) -> Result<Self> {
        let version = std::fs::read_to_string(dir.join("VERSION")).with_context(|| format!("{}/VERSION missing", dir.display()))?;
        let kver = version
            .lines()
            .find_map(|l| l.strip_prefix("kernel="))
            .unwrap_or("unknown")
            .to_string();
        let a = GuestAssets {
            dir: dir.to_path_buf(),
            // Prefer the decompressed ELF: the bzImage decompressor is slow when the guest's
            // ring 0 is emulated (PVM hosts); both boot.
            kernel: if dir.join("vmlinux").is_file() { dir.join("vmlinux") } else { dir.join("vmlinuz") },
            bzimage: dir.join("vmlinuz"),
            busybox: dir.join("busybox"),
            modules: dir.join("modules").join(&kver),
            kernel_version: kver,
        };
        if !a.kernel.is_file() || !a.busybox.is_file() {
            bail!("guest assets in {} are incomplete", dir.display());
        }
        Ok(a)
    }

    /// Use the cache if complete, else run `assets/fetch.sh` (progress goes to stderr).
    pub fn ensure(dir: Option<&Path>) -> Result<Self> {
        let dir = dir.map(Path::to_path_buf).unwrap_or_else(default_cache_dir);
        if let Ok(a) = Self::at(&dir) {
            return Ok(a);
        }
        let script = crate_dir().join("assets/fetch.sh");
        eprintln!("offcard-vmm: fetching guest assets into {} (Debian packages, ~28 MB) ...", dir.display());
        let st = Command::new("bash")
            .arg(&script)
            .arg(&dir)
            .stdout(std::process::Stdio::inherit())
            .stderr(std::process::Stdio::inherit())
            .status()
            .with_context(|| format!("running {}", script.display()))?;
        if !st.success() {
            bail!("{} failed ({st})", script.display());
        }
        Self::at(&dir)
    }

    /// Read a kernel module from the cached modules tree (path relative to lib/modules/<ver>/kernel).
    pub fn module(&self, rel: &str) -> Result<(String, Vec<u8>)> {
        let p = self.modules.join("kernel").join(rel);
        let data = std::fs::read(&p).with_context(|| format!("kernel module {}", p.display()))?;
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        Ok((name, data))
    }

    /// Build an initramfs running `script` and write it into the cache; returns its path.
    pub fn initramfs(&self, tag: &str, script: &str, modules: &[(String, Vec<u8>)]) -> Result<PathBuf> {
        let data = crate::initramfs::build(&self.busybox, script, modules)?;
        let path = self.dir.join(format!("initramfs-{tag}.cpio"));
        let tmp = self.dir.join(format!(".initramfs-{tag}.{}.tmp", std::process::id()));
        std::fs::write(&tmp, &data).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path)?;
        Ok(path)
    }
}
