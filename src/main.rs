//! `offcard`: the user's entry point to the card, its simulator, its host
//! software and its benchmarks.
//!
//! This file is the command line only (clap, derive): it parses, then calls
//! the module that does the work (`demo`, `bench`, `hdl_tools`, `synth`,
//! `card`, `fabric`, `mgmt`, `vm`), which calls the libraries of the workspace. There is
//! one CLI: the crates under `mgmt/`, `bitstreams/` and `hypervisor-glue/` are
//! libraries; their old argument parsers are not used by this binary.

mod bench;
mod card;
mod card_backend;
mod demo;
mod fabric;
mod hdl_tools;
mod mgmt;
mod pcap;
mod plots;
mod progress;
mod synth;
mod vm;

use anyhow::Result;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "offcard",
    version,
    about = "Offcard: an open PCIe offload card for VM hosts (rust-hdl + Verilator + VFIO)",
    propagate_version = true,
    arg_required_else_help = true
)]
pub struct Cli {
    /// No progress bars and fewer messages (progress bars are also off when stdout is not a terminal)
    #[arg(long, short, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// The host's view of the card, end to end: enumeration, identity, BAR0 scratch test, MSI,
    /// counters, tagged cache, DMA with dirty logging, the overlay network and the mapping cache
    Demo(DemoArgs),
    /// Write the generated Verilog (rust-hdl, after the single-assignment pass) of every block, or one
    GenVerilog(GenVerilogArgs),
    /// verilator --lint-only -Wall on the generated Verilog, with the waivers of sim/verilator.vlt
    Lint,
    /// Write docs/registers.md from the register map
    Regs {
        /// Only verify that docs/registers.md matches the register map
        #[arg(long)]
        check: bool,
    },
    /// Benchmarks; each ends its output with one JSON line of figures with --json
    #[command(subcommand)]
    Bench(BenchCmd),
    /// Open synthesis flow: yosys + nextpnr + pack, report to docs/synthesis.md
    Synth(SynthArgs),
    /// Run the simulated card as a vfio-user device process (docs/carriers.md)
    Card(CardArgs),
    /// A leaf-spine ECMP fabric of network namespaces for card ports (docs/fabric.md)
    #[command(subcommand)]
    Fabric(fabric::FabricCmd),
    /// Generate the management identity (Ed25519 + X25519) and print its authorized_keys line
    Keygen(mgmt::KeygenArgs),
    /// Serve the secured management API for the simulated card on a Unix socket (docs/mgmt.md)
    Serve(mgmt::ServeArgs),
    /// Send one signed management request to `offcard serve` and print the opened result
    Mgmt(mgmt::MgmtArgs),
    /// The KVM hypervisor (docs/vmm.md)
    #[command(subcommand)]
    Vm(vm::VmCmd),
    /// Print a shell completion script (e.g. `offcard completions bash > /etc/bash_completion.d/offcard`)
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Args, Debug, Default)]
pub struct DemoArgs {
    /// Also write a VCD waveform of the card (simulated card only)
    #[arg(long, value_name = "FILE", conflicts_with_all = ["vfio", "vfio_user"])]
    pub trace: Option<PathBuf>,
    /// Run against a real card bound to vfio-pci (PCI address, e.g. 0000:01:00.0)
    #[arg(long, value_name = "BDF", conflicts_with = "vfio_user")]
    pub vfio: Option<String>,
    /// Run against a card process (`offcard card --socket SOCKET`) over vfio-user
    #[arg(long, value_name = "SOCKET")]
    pub vfio_user: Option<PathBuf>,
    /// The far end of the card process's `--net wire:CABLE` (for the overlay network part)
    #[arg(long, value_name = "CABLE", requires = "vfio_user")]
    pub wire: Option<PathBuf>,
    /// Record every frame on the card's Ethernet port (both directions) to FILE (pcap)
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    /// Write plots (SVG and PNG) of what the demo measured into DIR
    #[arg(long, value_name = "DIR")]
    pub plots: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct GenVerilogArgs {
    /// Output directory
    #[arg(long, value_name = "DIR", default_value = "build/verilog")]
    pub out: PathBuf,
    /// Only this block
    #[arg(long, value_name = "NAME", hide_possible_values = true, value_parser = clap::builder::PossibleValuesParser::new(offcard_hdl::BLOCKS))]
    pub block: Option<String>,
}

/// Options every benchmark takes.
#[derive(Args, Debug, Default, Clone)]
pub struct BenchCommon {
    /// End the output with one JSON line of figures
    #[arg(long)]
    pub json: bool,
    /// Write plots (SVG and PNG) of the figures into DIR
    #[arg(long, value_name = "DIR")]
    pub plots: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum BenchCmd {
    /// Simulation speed: Verilator vs rust-hdl, MMIO round trip
    Sim(BenchCommon),
    /// DMA write efficiency and write-record overhead per transfer size
    Dma {
        #[command(flatten)]
        common: BenchCommon,
        /// Host read-completion latency in ns (default: the root complex model's, 500 ns)
        #[arg(long, value_name = "N")]
        read_latency_ns: Option<u64>,
    },
    /// Tagged cache: lookups per cycle, two-tenant hit rates, prime+probe leak partitioned vs shared
    Cache(BenchCommon),
    /// Virtio transmitq processed by the card: cycles per frame by size and chain layout, vs the DMA TX queue
    Virtio(BenchCommon),
    /// Encapsulation full rate; path policies over an 8-path ECMP fabric: max/mean, Jain, reordering
    Encap {
        #[command(flatten)]
        common: BenchCommon,
        /// Record the frames of the card's port (the hardware path-choice runs) to FILE (pcap)
        #[arg(long, value_name = "FILE")]
        pcap: Option<PathBuf>,
    },
    /// What a carrier costs: BAR0 read and 1 MiB DMA copy, in-process vs vfio-user
    Transport(BenchCommon),
    /// Secured management operations: signed and sealed vs plain
    Mgmt(BenchCommon),
    /// Hypervisor: boot, snapshot and restore figures
    Vm {
        #[command(flatten)]
        common: BenchCommon,
        /// Boot a Linux guest (default except on software KVM)
        #[arg(long, conflicts_with = "raw")]
        linux: bool,
        /// Run a raw 64-bit program instead of Linux
        #[arg(long)]
        raw: bool,
    },
    /// Linux ECMP over a namespace fabric: how UDP flows spread over the spines (kernel counters); needs root
    Fabric(fabric::FabricBenchArgs),
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum BoardArg {
    Versa,
    Icebreaker,
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SynthArgs {
    #[command(subcommand)]
    pub action: Option<SynthAction>,
    /// Only this board (default: both)
    #[arg(long, value_enum)]
    pub board: Option<BoardArg>,
    /// Only this block (default: every block)
    #[arg(long, value_name = "NAME", hide_possible_values = true, value_parser = clap::builder::PossibleValuesParser::new(offcard_hdl::BLOCKS))]
    pub block: Option<String>,
    /// Also place and route with nextpnr seeds 2..N (fmax per seed in the report)
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=10))]
    pub seeds: u64,
    /// Print the summary as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum SynthAction {
    /// Quick yosys synthesis of every block (what CI runs)
    Check {
        #[arg(long)]
        json: bool,
    },
    /// Rewrite docs/synthesis.md from docs/synthesis.json
    Report {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct CardArgs {
    /// The vfio-user socket to serve
    #[arg(long, value_name = "PATH")]
    pub socket: PathBuf,
    /// The card's Ethernet port: tap:NAME or wire:PATH (default: frames are counted and dropped)
    #[arg(long, value_name = "tap:NAME|wire:PATH")]
    pub net: Option<String>,
    /// Record every frame the port carries to FILE (pcap)
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    /// Serve this many clients, then exit (0: forever)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub clients: usize,
    /// Seed of the root port's stream timing
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
}

/// The `offcard --help` text ends with the block names (`gen-verilog --block`, `synth --block`).
/// (`gen-verilog --help` and `synth --help` too: the list is long for clap's
/// "possible values").
fn command() -> clap::Command {
    let blocks = offcard_hdl::BLOCKS.join(" ");
    Cli::command()
        .after_help(format!("blocks (gen-verilog --block, synth --block): {blocks}"))
        .mut_subcommand("gen-verilog", |c| c.after_help(format!("blocks: {blocks}")))
        .mut_subcommand("synth", |c| c.after_help(format!("blocks: {blocks}")))
}

fn main() {
    let matches = command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    progress::set_quiet(cli.quiet);
    if let Err(e) = run(cli) {
        eprintln!("offcard: error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Demo(a) => demo::run(&a),
        Command::GenVerilog(a) => hdl_tools::gen_verilog(&a.out, a.block.as_deref()),
        Command::Lint => hdl_tools::lint(),
        Command::Regs { check } => hdl_tools::regs(check),
        Command::Bench(b) => bench::run(b),
        Command::Synth(a) => synth::run(&a),
        Command::Card(a) => card::run(&a, cli.quiet),
        Command::Fabric(f) => fabric::run(f),
        Command::Keygen(a) => mgmt::keygen(&a),
        Command::Serve(a) => mgmt::serve(&a),
        Command::Mgmt(a) => mgmt::mgmt(&a),
        Command::Vm(v) => vm::run(v, cli.quiet),
        Command::Completions { shell } => {
            // Into a buffer first: clap_complete panics on a write error, and
            // `offcard completions bash | head` closes the pipe early.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command(), "offcard", &mut script);
            match std::io::Write::write_all(&mut std::io::stdout(), &script) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                r => Ok(r?),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// clap's own consistency checks (conflicting names, bad defaults) over
    /// the whole command tree.
    #[test]
    fn cli_definition_is_consistent() {
        command().debug_assert();
    }
}
