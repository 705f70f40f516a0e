//! Testbenches of the Offcard: reference models, random stimulus, the
//! rust-hdl-vs-Verilator harness, and the benchmarks `offcard bench` runs.

pub mod bench;
pub mod cache_block;
pub mod cache_model;
pub mod card_process;
pub mod dma_blocks;
pub mod docs;
pub mod driver_suite;
pub mod encap_bench;
pub mod encap_blocks;
pub mod endpoint_model;
pub mod harness;
pub mod icarus;
pub mod hdl_sim;
pub mod lint;
pub mod rusthdl_block;
pub mod tlp_gen;
pub mod transport_bench;
pub mod virtio_guest;
pub mod virtq_blocks;
