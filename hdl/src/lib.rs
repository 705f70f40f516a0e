//! Offcard hardware, described in rust-hdl.
//!
//! One block per file; [`regmap`] (the `offcard-regs` crate) is the single
//! definition of the register map and constants that the HDL, the simulator,
//! the driver and the docs use.

pub mod byte_buffer;
pub mod card;
pub mod dma;
pub mod queue_regs;
pub mod tlp_mux;
pub mod config_space;
pub mod endpoint;
pub mod geneve_decap;
pub mod geneve_encap;
pub mod regfile;
/// The register map and shared constants, defined in `offcard-regs` (one
/// source for hardware, host and docs); `regmap` inside the HDL.
pub use offcard_regs as regmap;
pub mod rx_merge;
pub mod tagged_cache;
pub mod verilog_post;

pub use rust_hdl;
use rust_hdl::prelude::*;

/// Name of the top-level Verilog module the simulator and synthesis expect.
pub const TOP_MODULE: &str = "top";

/// The card's Verilog, as rust-hdl generates it (module `top`).
pub fn card_verilog() -> String {
    let mut uut = card::OffcardTop::default();
    uut.connect_all();
    verilog_post::single_assignment(&generate_verilog(&uut))
}

/// The card's Verilog exactly as rust-hdl writes it, before
/// [`verilog_post::single_assignment`] (tests show why the pass exists).
pub fn card_verilog_raw() -> String {
    let mut uut = card::OffcardTop::default();
    uut.connect_all();
    generate_verilog(&uut)
}

/// Verilog of one named block (used by the per-block synthesis check).
pub fn block_verilog(name: &str) -> Option<String> {
    fn gen<U: Block>(mut uut: U) -> String {
        uut.connect_all();
        verilog_post::single_assignment(&generate_verilog(&uut))
    }
    Some(match name {
        "card" => card_verilog(),
        "endpoint" => gen(endpoint::TlpEndpoint::default()),
        "config_space" => gen(config_space::ConfigSpace::default()),
        "regfile" => gen(regfile::Bar0RegFile::default()),
        "dma" => gen(dma::DmaEngine::default()),
        "queue_regs" => gen(queue_regs::QueueRegs::default()),
        "byte_buffer" => gen(byte_buffer::ByteBuffer::default()),
        "rx_demux" => gen(tlp_mux::RxDemux::default()),
        "tx_arbiter" => gen(tlp_mux::TxArbiter::default()),
        "tagged_cache" => gen(tagged_cache::TaggedCache::default()),
        "rx_merge" => gen(rx_merge::RxMerge::default()),
        "geneve_decap" => gen(geneve_decap::GeneveDecap::default()),
        "geneve_encap" => gen(geneve_encap::GeneveEncap::default()),
        _ => return None,
    })
}

/// Names accepted by [`block_verilog`].
pub const BLOCKS: &[&str] =
    &["card", "endpoint", "config_space", "regfile", "dma", "queue_regs", "byte_buffer", "rx_demux", "tx_arbiter", "tagged_cache", "geneve_decap", "geneve_encap", "rx_merge"];

/// Blocks the simulator also builds on their own (as `VerilatedBlock`s),
/// for block-level test benches and the Icarus comparison: every block but
/// the card. Their ports must be at most 64 bits wide.
pub const SIM_BLOCKS: &[&str] = &[
    "endpoint",
    "config_space",
    "regfile",
    "dma",
    "queue_regs",
    "byte_buffer",
    "rx_demux",
    "tx_arbiter",
    "tagged_cache",
    "geneve_decap",
    "geneve_encap",
    "rx_merge",
];
