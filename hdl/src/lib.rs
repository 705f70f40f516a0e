//! Offcard hardware, described in rust-hdl.
//!
//! One block per file; [`regmap`] (the `offcard-regs` crate) is the single
//! definition of the register map and constants that the HDL, the simulator,
//! the driver and the docs use.

pub mod bus;
pub mod byte_buffer;
pub mod card;
pub mod dma;
pub mod tlp_mux;
pub mod tlp_skid;
pub mod virtq;
pub mod config_space;
pub mod endpoint;
pub mod encap;
pub mod geneve_decap;
/// The encapsulation pipeline's top block by the name the card and the
/// test benches use (`geneve_encap::GeneveEncap`); its stages are in [`encap`].
pub use encap as geneve_encap;
pub mod regfile;
/// The register map and shared constants, defined in `offcard-regs` (one
/// source for hardware, host and docs); `regmap` inside the HDL.
pub use offcard_regs as regmap;
pub mod rx_merge;
pub mod tagged_cache;
pub mod verilog_post;

pub use rust_hdl;
use rust_hdl::prelude::*;

/// Name of the card's top-level Verilog module (each block's is
/// [`module_name`]; rust-hdl itself calls every top `top`).
pub const TOP_MODULE: &str = "offcard_card";

/// The Verilog module name of block `block` (unique, so that blocks can be
/// compiled together and beside the card): `offcard_<block>`.
pub fn module_name(block: &str) -> String {
    format!("offcard_{block}")
}

/// The card's Verilog: rust-hdl's output after [`verilog_post`] (single
/// assignment per combinational block, module `offcard_card`).
pub fn card_verilog() -> String {
    let mut uut = card::OffcardTop::default();
    uut.connect_all();
    verilog_post::rename_top(&verilog_post::single_assignment(&generate_verilog(&uut)), TOP_MODULE)
}

/// The card's Verilog exactly as rust-hdl writes it, before
/// [`verilog_post::single_assignment`] (tests show why the pass exists).
pub fn card_verilog_raw() -> String {
    let mut uut = card::OffcardTop::default();
    uut.connect_all();
    generate_verilog(&uut)
}

/// Verilog of one named block, its top module named [`module_name`]
/// (used by the per-block models, the synthesis check and the Icarus tests).
pub fn block_verilog(name: &str) -> Option<String> {
    fn raw<U: Block>(mut uut: U) -> String {
        uut.connect_all();
        generate_verilog(&uut)
    }
    let gen = |v: String| verilog_post::rename_top(&verilog_post::single_assignment(&v), &module_name(name));
    Some(match name {
        "card" => card_verilog(),
        "endpoint" => gen(raw(endpoint::TlpEndpoint::default())),
        "config_space" => gen(raw(config_space::ConfigSpace::default())),
        "regfile" => gen(raw(regfile::Bar0RegFile::default())),
        "dma" => gen(raw(dma::DmaEngine::default())),
        "queue_regs" => gen(raw(dma::queue_regs::QueueRegs::default())),
        "dma_regs" => gen(raw(dma::regs::DmaRegs::default())),
        "dma_desc_fetch" => gen(raw(dma::desc_fetch::DescFetch::default())),
        "dma_read" => gen(raw(dma::read::ReadEngine::default())),
        "dma_cpl_sink" => gen(raw(dma::cpl_sink::CplSink::default())),
        "dma_write" => gen(raw(dma::write::WriteEngine::default())),
        "byte_buffer" => gen(raw(byte_buffer::ByteBuffer::default())),
        "rx_demux" => gen(raw(tlp_mux::RxDemux::default())),
        "tx_arbiter" => gen(raw(tlp_mux::TxArbiter::default())),
        "tlp_skid" => gen(raw(tlp_skid::TlpSkid::default())),
        "virtq_chain_fetch" => gen(raw(virtq::chain_fetch::VirtqChainFetch::default())),
        "virtq_used" => gen(raw(virtq::used::VirtqUsed::default())),
        "virtq_tx_frame" => gen(raw(virtq::tx_frame::VirtqTxFrame::default())),
        "virtq_regs" => gen(raw(virtq::regs::VirtqRegs::default())),
        "virtq_rx" => gen(raw(virtq::rx::VirtqRx::default())),
        "tagged_cache" => gen(raw(tagged_cache::TaggedCache::default())),
        "rx_merge" => gen(raw(rx_merge::RxMerge::default())),
        "geneve_decap" => gen(raw(geneve_decap::GeneveDecap::default())),
        "geneve_encap" => gen(raw(encap::GeneveEncap::default())),
        "encap_writer" => gen(raw(encap::writer::EncapWriter::default())),
        "encap_parser" => gen(raw(encap::parser::EncapParser::default())),
        "encap_hash" => gen(raw(encap::hash::EncapHash::default())),
        "encap_select" => gen(raw(encap::select::EncapSelect::default())),
        "encap_lookup" => gen(raw(encap::lookup::EncapLookup::default())),
        "encap_header" => gen(raw(encap::header::EncapHeader::default())),
        "encap_output" => gen(raw(encap::output::EncapOutput::default())),
        _ => return None,
    })
}

/// Names accepted by [`block_verilog`].
pub const BLOCKS: &[&str] =
    &["card", "endpoint", "config_space", "regfile", "dma", "dma_regs", "dma_desc_fetch", "dma_read", "dma_cpl_sink", "dma_write", "queue_regs", "byte_buffer", "rx_demux", "tx_arbiter", "tlp_skid", "virtq_chain_fetch", "virtq_used", "virtq_tx_frame", "virtq_regs", "virtq_rx", "tagged_cache", "geneve_decap", "geneve_encap", "encap_writer", "encap_parser", "encap_hash", "encap_select", "encap_lookup", "encap_header", "encap_output", "rx_merge"];

/// Blocks the simulator also builds on their own (as `VerilatedBlock`s),
/// for block-level test benches and the Icarus comparison: every block but
/// the card. Their ports must be at most 64 bits wide.
pub const SIM_BLOCKS: &[&str] = &[
    "endpoint",
    "config_space",
    "regfile",
    "dma",
    "dma_regs",
    "dma_desc_fetch",
    "dma_read",
    "dma_cpl_sink",
    "dma_write",
    "queue_regs",
    "byte_buffer",
    "rx_demux",
    "tx_arbiter",
    "tlp_skid",
    "virtq_chain_fetch",
    "virtq_used",
    "virtq_tx_frame",
    "virtq_regs",
    "virtq_rx",
    "tagged_cache",
    "geneve_decap",
    "geneve_encap",
    "encap_writer",
    "encap_parser",
    "encap_hash",
    "encap_select",
    "encap_lookup",
    "encap_header",
    "encap_output",
    "rx_merge",
];

/// A constant for a block's `#[default(..)]` field (used with
/// `SmartDefault`, so each constant is defined beside its field).
pub(crate) fn konst<const N: usize>(value: u64) -> Constant<Bits<N>> {
    Constant::new(value.to_bits())
}

/// The DW index of a byte offset in a register block, as a constant.
pub(crate) fn dw_index<const N: usize>(byte_offset: u32) -> Constant<Bits<N>> {
    konst((byte_offset >> 2) as u64)
}
