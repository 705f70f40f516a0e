//! The driver side of a virtio transmitq, by hand, in a host-memory buffer
//! the simulated card reads as guest memory (virtio 1.x 2.7 split ring):
//! descriptor table, available ring and used ring, then the buffers. For
//! the virtqueue tests (`testbench/tests/virtq_card.rs`) and `offcard bench
//! virtio`.

use offcard_driver::virtq::QueueSetup;
use offcard_driver::DmaBuffer;
use offcard_regs::virtq as vq;
use rand::{rngs::SmallRng, Rng};

pub const DESC_OFF: usize = 0;
pub const AVAIL_OFF: usize = 0x1000;
pub const USED_OFF: usize = 0x3000;
pub const BUF_OFF: usize = 0x6000;
/// Bytes of memory one queue uses (rings and buffers).
pub const QUEUE_SPAN: usize = 0x80000;
/// Largest queue this layout holds (the rings' room above).
pub const MAX_SIZE_LOG2: u32 = 8;
/// The 12-byte `virtio_net_hdr_v1` in front of every frame.
pub const HDR: usize = vq::NET_HDR_BYTES as usize;

pub struct TxQueue {
    pub mem_off: usize,
    pub size: u16,
    pub next_desc: u16,
    pub avail_idx: u16,
    buf_next: usize,
}

impl TxQueue {
    /// A queue of 2^`size_log2` entries at `mem_off` in the buffer.
    pub fn new(mem_off: usize, size_log2: u32) -> Self {
        assert!(size_log2 <= MAX_SIZE_LOG2);
        TxQueue { mem_off, size: 1 << size_log2, next_desc: 0, avail_idx: 0, buf_next: 0 }
    }
    pub fn setup(&self, mem: &DmaBuffer, tenant: u8) -> QueueSetup {
        let base = mem.iova + self.mem_off as u64;
        QueueSetup {
            size_log2: self.size.trailing_zeros(),
            desc: base + DESC_OFF as u64,
            avail: base + AVAIL_OFF as u64,
            used: base + USED_OFF as u64,
            tenant,
        }
    }
    /// Lay a chain out of `parts` (header bytes then frame bytes, cut into
    /// buffers) and make it available (not yet published); its head.
    pub fn add_chain(&mut self, mem: &mut DmaBuffer, parts: &[Vec<u8>]) -> u16 {
        let head = self.next_desc % self.size;
        for (k, p) in parts.iter().enumerate() {
            let d = (self.next_desc % self.size) as usize;
            // Buffers one after another (8 bytes apart), from the start again at the end.
            if self.buf_next + p.len() > QUEUE_SPAN - BUF_OFF {
                self.buf_next = 0;
            }
            let at = self.mem_off + BUF_OFF + self.buf_next;
            mem.write(at, p);
            self.buf_next += p.len() + 8;
            let last = k + 1 == parts.len();
            let next = self.next_desc.wrapping_add(1) % self.size;
            let mut desc = [0u8; 16];
            desc[0..8].copy_from_slice(&(mem.iova + at as u64).to_le_bytes());
            desc[8..12].copy_from_slice(&(p.len() as u32).to_le_bytes());
            desc[12..14].copy_from_slice(&(if last { 0 } else { vq::DESC_F_NEXT }).to_le_bytes());
            desc[14..16].copy_from_slice(&next.to_le_bytes());
            mem.write(self.mem_off + DESC_OFF + 16 * d, &desc);
            self.next_desc = self.next_desc.wrapping_add(1);
        }
        let slot = (self.avail_idx % self.size) as usize;
        mem.write(self.mem_off + AVAIL_OFF + 4 + 2 * slot, &head.to_le_bytes());
        self.avail_idx = self.avail_idx.wrapping_add(1);
        head
    }
    /// Post one device-writable buffer of `len` bytes as a chain (a
    /// receiveq's buffer), filled with `fill` so writes show; its head and
    /// its offset in the memory buffer. Not yet published.
    pub fn add_rx_buffer(&mut self, mem: &mut DmaBuffer, len: usize, fill: u8) -> (u16, usize) {
        let head = self.next_desc % self.size;
        if self.buf_next + len > QUEUE_SPAN - BUF_OFF {
            self.buf_next = 0;
        }
        let at = self.mem_off + BUF_OFF + self.buf_next;
        mem.fill(at, len + 8, fill);
        self.buf_next += len + 8;
        let mut desc = [0u8; 16];
        desc[0..8].copy_from_slice(&(mem.iova + at as u64).to_le_bytes());
        desc[8..12].copy_from_slice(&(len as u32).to_le_bytes());
        desc[12..14].copy_from_slice(&vq::DESC_F_WRITE.to_le_bytes());
        mem.write(self.mem_off + DESC_OFF + 16 * head as usize, &desc);
        self.next_desc = self.next_desc.wrapping_add(1);
        let slot = (self.avail_idx % self.size) as usize;
        mem.write(self.mem_off + AVAIL_OFF + 4 + 2 * slot, &head.to_le_bytes());
        self.avail_idx = self.avail_idx.wrapping_add(1);
        (head, at)
    }
    /// Publish the chains added (`avail.idx`).
    pub fn publish(&self, mem: &mut DmaBuffer) {
        mem.write(self.mem_off + AVAIL_OFF + 2, &self.avail_idx.to_le_bytes());
    }
    pub fn set_no_interrupt(&self, mem: &mut DmaBuffer, on: bool) {
        mem.write(self.mem_off + AVAIL_OFF, &(on as u16 * vq::AVAIL_F_NO_INTERRUPT).to_le_bytes());
    }
    pub fn used_idx(&self, mem: &DmaBuffer) -> u16 {
        u16::from_le_bytes(mem.read_vec(self.mem_off + USED_OFF + 2, 2).try_into().unwrap())
    }
    /// Used element i: (id, len).
    pub fn used_elem(&self, mem: &DmaBuffer, i: u16) -> (u32, u32) {
        let b = mem.read_vec(self.mem_off + USED_OFF + 4 + 8 * (i % self.size) as usize, 8);
        (u32::from_le_bytes(b[0..4].try_into().unwrap()), u32::from_le_bytes(b[4..8].try_into().unwrap()))
    }
    /// The used ring's IOVA.
    pub fn used_iova(&self, mem: &DmaBuffer) -> u64 {
        mem.iova + (self.mem_off + USED_OFF) as u64
    }
}

/// A frame's chain in one of the layouts drivers use: 0 header and frame in
/// one buffer, 1 header alone then the frame, 2 the header split, 3 cut at
/// random points (up to four buffers).
pub fn chain_parts(rng: &mut SmallRng, frame: &[u8], layout: u32) -> Vec<Vec<u8>> {
    let mut all = vec![0u8; HDR];
    rng.fill(&mut all[..]);
    all.extend_from_slice(frame);
    let mut cuts: Vec<usize> = match layout {
        0 => vec![],
        1 => vec![HDR],
        2 => vec![rng.gen_range(1..HDR)],
        _ => (0..rng.gen_range(1..4)).map(|_| rng.gen_range(1..all.len())).collect(),
    };
    cuts.sort();
    cuts.dedup();
    let mut parts = vec![];
    let mut at = 0;
    for c in cuts.into_iter().chain([all.len()]) {
        parts.push(all[at..c].to_vec());
        at = c;
    }
    parts
}
