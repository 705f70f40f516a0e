//! The virtqueue engine (issue 13, docs/virtio.md): the card processes the
//! virtio split queues of a VM's virtio-net device in guest memory, as a
//! vDPA device's data path does. One block per file:
//!
//! * [`chain_fetch`]: doorbells, `avail.idx`, the available ring and the
//!   descriptor chains, handed on as segments; per-queue error states.
//! * [`used`]: used elements, `used.idx`, interrupts unless suppressed.

pub mod chain_fetch;
pub mod used;
