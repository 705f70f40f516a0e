//! virtio-net: the device ([`Net`]) and its backends behind one trait
//! ([`NetBackend`]: the in-process [`pair`] and [`TapBackend`]).
//!
//! Status: the device is tested by driving its registers and rings the way a guest
//! driver does (tests/virtio_net.rs, tests/raw_guest.rs). Not yet done: announcing it
//! to a Linux guest — the Debian cloud kernel lacks VIRTIO_MMIO_CMDLINE_DEVICES, so it
//! needs an ACPI DSDT entry (LNRO0005) or a virtio-pci transport. See docs/vmm.md.

mod backend;
mod device;
mod tap;

pub use backend::{pair, NetBackend, PairBackend};
pub use device::{Net, NetStats, NET_HDR_LEN};
pub use tap::TapBackend;
