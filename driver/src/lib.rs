//! Userspace driver for the Offcard.
//!
//! Shaped like openvmm's `user_driver`: one device-backing trait
//! ([`CardTransport`]) with a VFIO backend for real hardware and an emulated
//! backend (the Verilator model behind the root-complex model); the card API
//! ([`Card`]) is written once against the trait.

pub mod cache;
pub mod card;
pub mod dma;
pub mod net;
pub mod sim;
pub mod transport;
pub mod vfio;

pub use cache::{CacheCtl, Geometry, TagCounters};
pub use card::{Card, Identity};
pub use dma::{Completion, DmaCard, DmaConfig, Descriptor, NetCounters, RxFrame, RxStats, WriteRecord};
pub use net::{MissRecord, NetCtl};
pub use sim::{SimNetwork, SimTransport};
pub use transport::{CardTransport, DmaBuffer, TransportError};
pub use vfio::VfioTransport;
