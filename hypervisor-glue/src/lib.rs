//! offcard-vmm: a small KVM virtual-machine monitor (rust-vmm crates) that boots
//! a real Linux guest with guest RAM in a shared file mapping, a 16550 serial
//! console, KVM dirty logging in the card's DMA-logging shape, and snapshot/restore.
//!
//! The `offcard` binary parses `offcard vm ...` and `offcard bench vm` (clap) and
//! calls [`commands`] and [`bench::bench_vm`]; this crate has no command-line
//! parser of its own. See docs/vmm.md.
//!
//! Layers, lowest first; a module imports only modules listed before it:
//! [`hash`], [`memory`] (guest RAM, `PAGE_SIZE`), [`dirty`] (dirty-page bitmaps),
//! [`devices`] (serial, and `virtio::{mmio, net}` on rust-vmm's virtio-queue),
//! [`x86`], [`vm`] (KVM, vCPUs, run loop, KVM's side of the dirty log),
//! [`snapshot`] (`Vm::snapshot` / `Vm::restore`), then [`initramfs`], [`assets`],
//! [`commands`] and [`bench`].

pub mod assets;
pub mod bench;
pub mod commands;
pub mod devices;
pub mod dirty;
pub mod hash;
pub mod initramfs;
pub mod memory;
pub mod snapshot;
pub mod vm;
pub mod x86;

pub use assets::GuestAssets;
pub use dirty::{bitmap_to_pages, DirtyRange, DirtyTracker};
pub use memory::GuestMem;
pub use snapshot::SnapshotInfo;
pub use vm::{default_cmdline, RunOptions, StopReason, Vm, VmConfig, DEFAULT_CMDLINE};

/// `Ok(())` when /dev/kvm can be opened, else the reason (for skipping tests loudly).
/// `OFFCARD_VMM_NO_KVM=1` pretends there is none (to check the skip path).
pub fn kvm_available() -> Result<(), String> {
    if std::env::var_os("OFFCARD_VMM_NO_KVM").is_some() {
        return Err("OFFCARD_VMM_NO_KVM is set".into());
    }
    match std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm") {
        Ok(_) => Ok(()),
        Err(e) => Err(format!("/dev/kvm not usable: {e}")),
    }
}
