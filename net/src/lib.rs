//! Overlay networking for the Offcard, in plain Rust: the reference model
//! the encapsulation pipeline is checked against (Geneve over UDP/IPv4),
//! the path-selection policies and hashes, and pcap output.

pub mod geneve;
pub mod hash;
pub mod path;
pub mod pcap;
pub mod tx;
