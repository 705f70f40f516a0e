//! Userspace driver for the Offcard.
//!
//! Shaped like openvmm's `user_driver`: this crate holds the device-backing
//! trait ([`CardTransport`]) and the card API written once against it
//! ([`Card`], [`DmaCard`], [`NetCtl`], [`CacheCtl`]). Its carriers are kernel
//! VFIO for a real card ([`VfioTransport`], rust-vmm's `vfio-ioctls`) and
//! vfio-user for a card served by another process ([`VfioUserTransport`],
//! rust-vmm's `vfio_user`). The emulated backend (the Verilator model
//! in-process) lives in `offcard-sim`, which depends on this crate. The
//! driver depends on `offcard-regs` and the VFIO crates only: a user with a
//! real card builds it without rust-hdl or Verilator.

pub mod cache;
pub mod card;
pub mod dma;
pub mod net;
pub mod transport;
pub mod vfio;
pub mod vfio_user;
pub mod virtq;

pub use cache::{CacheCtl, Geometry, TagCounters};
pub use card::{Card, Identity};
pub use dma::{Completion, DmaCard, DmaConfig, Descriptor, NetCounters, RxFrame, RxStats, WriteRecord};
pub use net::{MissRecord, NetCtl, TenantContext, TunnelContext};
pub use offcard_regs as regs;
pub use transport::{CardTransport, DmaBuffer, MappingGuard, Result, TransportError};
pub use vfio::VfioTransport;
pub use vfio_user::VfioUserTransport;
