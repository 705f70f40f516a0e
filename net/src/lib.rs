//! Overlay networking for the Offcard, in plain Rust: the reference model
//! the encapsulation pipeline is checked against (Geneve over UDP/IPv4),
//! the path-selection policies and hashes, pcap output, and a model of the
//! ECMP fabric with the load-balance and reordering metrics it is judged by.

pub mod fabric;
pub mod geneve;
pub mod hash;
pub mod metrics;
pub mod path;
pub mod pcap;
pub mod tx;
pub mod workload;
