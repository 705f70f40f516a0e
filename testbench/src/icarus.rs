//! Icarus Verilog as a second simulator: the generated Verilog driven with
//! the per-cycle stimulus a Verilator run saw, its outputs compared cycle by
//! cycle. Icarus is event-driven, as the simulators FPGA engineers use
//! (Questa, VCS, Xcelium) are: a design that only runs in Verilator's
//! scheduling fails here.

use offcard_toolchain::Icarus;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A port of the module under test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    pub name: String,
    pub input: bool,
    pub width: u32,
}

/// The ports of module `module` in `verilog`, in declaration order, from
/// rust-hdl's "Module arguments" section (`input wire [63:0] rx_data;`).
pub fn ports(verilog: &str, module: &str) -> Vec<Port> {
    let head = format!("module {module}(");
    let Some(start) = verilog.find(&head) else { return vec![] };
    let mut out = vec![];
    for l in verilog[start..].lines().skip(1) {
        let t = l.trim();
        if t.starts_with("// Constant") || t.starts_with("// Stub") || t.starts_with("// Update") || t.starts_with("endmodule") || t.starts_with("// Enums") {
            break;
        }
        let input = t.starts_with("input ");
        if !input && !t.starts_with("output ") {
            continue;
        }
        let width = match (t.find('['), t.find(':')) {
            (Some(a), Some(b)) if b > a => t[a + 1..b].trim().parse::<u32>().map(|h| h + 1).unwrap_or(1),
            _ => 1,
        };
        let name = t.trim_end_matches(';').split_whitespace().last().unwrap_or("").to_string();
        out.push(Port { name, input, width });
    }
    out
}

/// One cycle's values, by port, in the order of the ports given.
pub type Values = Vec<u128>;

/// What Icarus printed for one output on one cycle: hex digits, `x`/`z` where unknown.
fn hex(v: u128, width: u32) -> String {
    let digits = width.div_ceil(4) as usize;
    format!("{v:0digits$x}")
}

/// Drive `module` of `verilog` with `stimulus` (per cycle, the value of
/// every input port but `clock`, in port order) and return every output's
/// value per cycle as Icarus printed it (hex, width-padded). Inputs are
/// applied with the clock low, outputs sampled, then the clock rises: the
/// same cycle as the Verilator models' C ABI. A run longer than `limit` is
/// a hang and an error; the files of a failed run stay in `work`.
pub fn run(icarus: &Icarus, verilog: &str, module: &str, stimulus: &[Values], work: &Path, limit: Duration) -> Result<Vec<Vec<String>>, String> {
    let ports = ports(verilog, module);
    let ins: Vec<&Port> = ports.iter().filter(|p| p.input && p.name != "clock").collect();
    let outs: Vec<&Port> = ports.iter().filter(|p| !p.input).collect();
    if ports.is_empty() || !ports.iter().any(|p| p.name == "clock") {
        return Err(format!("module {module}: no ports or no clock"));
    }
    std::fs::create_dir_all(work).map_err(|e| e.to_string())?;
    let total: u32 = ins.iter().map(|p| p.width).sum::<u32>().max(1);
    // Stimulus: one hex line per cycle, inputs concatenated in port order.
    let mut stim = String::new();
    for cyc in stimulus {
        let mut line = String::new();
        for (p, v) in ins.iter().zip(cyc) {
            // Each field as binary, concatenated, then as hex.
            line.push_str(&format!("{:0w$b}", v & mask(p.width), w = p.width as usize));
        }
        stim.push_str(&bin_to_hex(&line, total));
        stim.push('\n');
    }
    let stim_path = work.join("stim.hex");
    let out_path = work.join("out.txt");
    std::fs::write(&stim_path, stim).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(&out_path);
    let mut tb = String::new();
    tb.push_str("`timescale 1ns/1ps\nmodule offcard_tb;\n    reg clock = 1'b0;\n");
    for p in &ins {
        tb.push_str(&format!("    reg [{}:0] i_{};\n", p.width - 1, san(&p.name)));
    }
    for p in &outs {
        tb.push_str(&format!("    wire [{}:0] o_{};\n", p.width - 1, san(&p.name)));
    }
    tb.push_str(&format!("    {module} dut(.clock(clock)"));
    for p in ins.iter().chain(outs.iter()) {
        tb.push_str(&format!(", .{}({}_{})", p.name, if p.input { "i" } else { "o" }, san(&p.name)));
    }
    tb.push_str(");\n");
    tb.push_str(&format!("    reg [{}:0] stim [0:{}];\n    integer i, f;\n", total - 1, stimulus.len().max(1) - 1));
    tb.push_str(&format!("    initial begin\n        $readmemh(\"{}\", stim);\n        f = $fopen(\"{}\", \"w\");\n", stim_path.display(), out_path.display()));
    tb.push_str(&format!("        for (i = 0; i < {}; i = i + 1) begin\n", stimulus.len()));
    if !ins.is_empty() {
        let names: Vec<String> = ins.iter().map(|p| format!("i_{}", san(&p.name))).collect();
        tb.push_str(&format!("            {{{}}} = stim[i];\n", names.join(", ")));
    }
    tb.push_str("            #1;\n");
    let fmt: Vec<&str> = outs.iter().map(|_| "%h").collect();
    let args: Vec<String> = outs.iter().map(|p| format!("o_{}", san(&p.name))).collect();
    tb.push_str(&format!("            $fwrite(f, \"{}\\n\"{}{});\n", fmt.join(" "), if args.is_empty() { "" } else { ", " }, args.join(", ")));
    tb.push_str("            if (i % 256 == 0) $fflush(f);\n            clock = 1'b1;\n            #1;\n            clock = 1'b0;\n            #1;\n        end\n        $fclose(f);\n        $finish;\n    end\nendmodule\n");
    let tb_path = work.join("tb.v");
    let dut_path = work.join("dut.v");
    std::fs::write(&tb_path, tb).map_err(|e| e.to_string())?;
    std::fs::write(&dut_path, verilog).map_err(|e| e.to_string())?;
    let vvp_path = work.join("sim.vvp");
    let c = icarus
        .iverilog()
        .args(["-g2012", "-o"])
        .arg(&vvp_path)
        .arg("-s")
        .arg("offcard_tb")
        .arg(&tb_path)
        .arg(&dut_path)
        .output()
        .map_err(|e| format!("iverilog: {e}"))?;
    if !c.status.success() {
        return Err(format!("iverilog failed: {}", String::from_utf8_lossy(&c.stderr)));
    }
    let mut child = icarus.vvp().arg("-n").arg(&vvp_path).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().map_err(|e| format!("vvp: {e}"))?;
    let t0 = Instant::now();
    loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            if !st.success() {
                return Err(format!("vvp exited with {st}"));
            }
            break;
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let done = std::fs::read_to_string(&out_path).map(|s| s.lines().count()).unwrap_or(0);
            return Err(format!(
                "Icarus did not finish {} cycles of {module} within {:?}: it hung after about {done} cycles (simulated time stopped advancing)",
                stimulus.len(),
                limit
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = std::fs::read_to_string(&out_path).map_err(|e| e.to_string())?;
    // A run that finished leaves nothing behind (a failed one keeps its
    // testbench, stimulus and output in `work` to look at).
    let _ = std::fs::remove_dir_all(work);
    Ok(text.lines().map(|l| l.split_whitespace().map(str::to_lowercase).collect()).collect())
}

fn san(n: &str) -> String {
    n.replace('$', "_")
}

fn mask(w: u32) -> u128 {
    if w >= 128 {
        u128::MAX
    } else {
        (1u128 << w) - 1
    }
}

fn bin_to_hex(bits: &str, total: u32) -> String {
    let pad = (4 - total % 4) % 4;
    let s = format!("{}{}", "0".repeat(pad as usize), bits);
    s.as_bytes().chunks(4).map(|c| format!("{:x}", u8::from_str_radix(std::str::from_utf8(c).unwrap(), 2).unwrap())).collect()
}

/// Compare Icarus's outputs with the expected values (Verilator's), cycle by
/// cycle; the first difference, named, is the error.
pub fn compare(verilog: &str, module: &str, icarus: &[Vec<String>], expected: &[Values]) -> Result<(), String> {
    let outs: Vec<Port> = ports(verilog, module).into_iter().filter(|p| !p.input).collect();
    if icarus.len() != expected.len() {
        return Err(format!("{module}: Icarus printed {} cycles, Verilator ran {}", icarus.len(), expected.len()));
    }
    for (cyc, (got, want)) in icarus.iter().zip(expected).enumerate() {
        for ((p, g), w) in outs.iter().zip(got).zip(want) {
            let w = hex(*w & mask(p.width), p.width);
            if *g != w {
                return Err(format!("{module}: cycle {cyc}: output {} is {g} in Icarus, {w} in Verilator", p.name));
            }
        }
    }
    Ok(())
}

/// A scratch directory for one run.
pub fn work_dir(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("offcard-icarus-{tag}-{}", std::process::id()))
}
