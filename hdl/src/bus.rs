//! The card's two shared interfaces as rust-hdl bundles (`LogicInterface`),
//! each a pair whose halves `join`: a block's port is one half, and the
//! parent connects two blocks with one statement
//! (`TlpSource::join(&mut self.endpoint.tx, &mut self.arb.a)`) instead of
//! one assignment per signal. A parent passes its own port to a child's of
//! the same direction with `link`.
//!
//! In Verilog rust-hdl names a member `bundle$member` (`rx$data`); the block
//! models (`offcard_sim`) and the rust-hdl test harnesses call it
//! `bundle_member` (`rx_data`).

use rust_hdl::prelude::*;

/// A TLP stream out of a block: 64-bit beats, `keep` says which of the two
/// DWs are valid, `sop`/`eop` mark a TLP's first and last beat, a beat moves
/// when `valid` and `ready` are both high (docs/tlp.md).
#[derive(LogicInterface, Default)]
#[join = "TlpSink"]
pub struct TlpSource {
    pub data: Signal<Out, Bits<64>>,
    pub keep: Signal<Out, Bits<2>>,
    pub sop: Signal<Out, Bit>,
    pub eop: Signal<Out, Bit>,
    pub valid: Signal<Out, Bit>,
    pub ready: Signal<In, Bit>,
}

/// A TLP stream into a block (the other half of [`TlpSource`]).
#[derive(LogicInterface, Default)]
#[join = "TlpSource"]
pub struct TlpSink {
    pub data: Signal<In, Bits<64>>,
    pub keep: Signal<In, Bits<2>>,
    pub sop: Signal<In, Bit>,
    pub eop: Signal<In, Bit>,
    pub valid: Signal<In, Bit>,
    pub ready: Signal<Out, Bit>,
}

/// The BAR0 register bus, driven by the endpoint: `addr` is a DW index into
/// BAR0, a write happens in the cycle `wr_en` is high (`wr_mask` selects
/// the bits of `wr_data` that change), and `rd_data` is the addressed
/// register (a block reads 0 outside its range, so the card ORs them). The
/// endpoint holds a read's `addr` for three cycles and samples in the third;
/// the card registers each block's `rd_data` once, so a block may register
/// one stage of its read multiplexer (the tagged cache and the DMA engine
/// do: timing, docs/tlp.md).
#[derive(LogicInterface, Default)]
#[join = "RegBusTarget"]
pub struct RegBusController {
    pub addr: Signal<Out, Bits<14>>,
    pub wr_en: Signal<Out, Bit>,
    pub wr_data: Signal<Out, Bits<32>>,
    pub wr_mask: Signal<Out, Bits<32>>,
    pub rd_data: Signal<In, Bits<32>>,
}

/// A block's registers on the BAR0 bus (the other half of
/// [`RegBusController`]).
#[derive(LogicInterface, Default)]
#[join = "RegBusController"]
pub struct RegBusTarget {
    pub addr: Signal<In, Bits<14>>,
    pub wr_en: Signal<In, Bit>,
    pub wr_data: Signal<In, Bits<32>>,
    pub wr_mask: Signal<In, Bits<32>>,
    pub rd_data: Signal<Out, Bits<32>>,
}

/// The test-facing name of a port of a block model: rust-hdl's bundle
/// member `bundle$member` as `bundle_member` (Verilator spells `$` as
/// `__024` in its C++ names; both are accepted).
pub fn port_name(verilog_name: &str) -> String {
    verilog_name.replace("__024", "_").replace('$', "_")
}
