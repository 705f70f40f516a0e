//! The virtqueue engine (issue 13, docs/virtio.md): the card processes the
//! virtio split queues of a VM's virtio-net device in guest memory, as a
//! vDPA device's data path does. One block per file:
//!
//! * [`chain_fetch`]: doorbells, `avail.idx`, the available ring and the
//!   descriptor chains, handed on as segments; per-queue error states.
//! * [`tx_frame`]: a transmitq's chain as one frame's read jobs (header
//!   skipped, length and tenant up front); drops counted.
//! * [`rx`]: a receiveq's next buffer, the front end's lookup by tenant,
//!   received frames' chains done in order.
//! * [`used`]: used elements, `used.idx`, interrupts unless suppressed.
//! * [`regs`]: the BAR0 registers and doorbells.
//! * [`engine`]: the four joined, as the DMA engine (`crate::dma`) holds
//!   them: ring reads and frames through its front end, sends and used-ring
//!   writes (with their write records) through its back end.

pub mod chain_fetch;
pub mod engine;
pub mod regs;
pub mod rx;
pub mod tx_frame;
pub mod used;
