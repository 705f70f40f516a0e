//! The virtio-mmio transport (version 2, the virtio 1.x register layout): the
//! register file a driver programs — features, queue setup, status, notify,
//! interrupt status/ack — in front of any [`VirtioDevice`]. Register offsets are
//! `virtio-bindings`' `VIRTIO_MMIO_*`.

use virtio_bindings::virtio_config::{VIRTIO_CONFIG_S_DRIVER_OK, VIRTIO_CONFIG_S_NEEDS_RESET};
use virtio_bindings::virtio_mmio::*;
use virtio_queue::{Queue, QueueT};
use vmm_sys_util::eventfd::EventFd;

use super::{DeviceError, Interrupt, VirtioDevice};

/// Bytes of guest-physical address space one device's registers take.
pub const VIRTIO_MMIO_SIZE: u64 = 0x1000;
/// "virt", little endian.
const MMIO_MAGIC: u32 = 0x7472_6976;
/// The modern (virtio 1.x) register layout.
const MMIO_VERSION: u32 = 2;
/// "OFFC", little endian.
const VENDOR_ID: u32 = 0x4f46_4643;

/// A device behind its virtio-mmio registers.
pub struct MmioTransport<D> {
    device: D,
    interrupt: Interrupt,
    /// The device status register (`VIRTIO_CONFIG_S_*` bits) as the driver wrote it,
    /// plus `NEEDS_RESET` when the device gave up.
    status: u32,
    device_features_sel: u32,
    driver_features_sel: u32,
    /// What the driver acknowledged. No device here changes behaviour by feature yet.
    driver_features: u64,
    queue_sel: u32,
}

impl<D: VirtioDevice> MmioTransport<D> {
    /// `irqfd`: the eventfd registered as the device's interrupt (KVM irqfd).
    pub fn new(device: D, irqfd: EventFd) -> Self {
        MmioTransport {
            device,
            interrupt: Interrupt::new(irqfd),
            status: 0,
            device_features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            queue_sel: 0,
        }
    }

    pub fn device(&self) -> &D {
        &self.device
    }

    fn selected_queue(&self) -> Option<&Queue> {
        self.device.queues().get(self.queue_sel as usize)
    }

    fn selected_queue_mut(&mut self) -> Option<&mut Queue> {
        self.device.queues_mut().get_mut(self.queue_sel as usize)
    }

    fn driver_ok(&self) -> bool {
        self.status & VIRTIO_CONFIG_S_DRIVER_OK != 0 && self.status & VIRTIO_CONFIG_S_NEEDS_RESET == 0
    }

    /// The device stopped on a driver error: it does nothing more until the driver
    /// resets it (status 0), and the driver learns of it through a config interrupt.
    fn needs_reset(&mut self, why: DeviceError) {
        self.status |= VIRTIO_CONFIG_S_NEEDS_RESET;
        if std::env::var_os("OFFCARD_VMM_DEBUG").is_some() {
            eprintln!("offcard-vmm: virtio device type {}: {why}; device needs reset", self.device.device_type());
        }
        self.interrupt.signal_config_change();
    }

    fn reset(&mut self) {
        self.status = 0;
        self.driver_features = 0;
        self.device.reset();
        self.interrupt.ack(u32::MAX);
    }

    /// Let the device do the work that does not start with the driver (see
    /// [`VirtioDevice::poll`]); the VM's run loop calls this periodically.
    pub fn poll(&mut self) {
        let driver_ok = self.driver_ok();
        if let Err(e) = self.device.poll(driver_ok, &mut self.interrupt) {
            self.needs_reset(e);
        }
    }

    /// A guest read of `data.len()` bytes at `offset` in the device's MMIO window.
    pub fn mmio_read(&mut self, offset: u64, data: &mut [u8]) {
        if offset >= u64::from(VIRTIO_MMIO_CONFIG) {
            self.device.read_config(offset - u64::from(VIRTIO_MMIO_CONFIG), data);
            return;
        }
        let features = self.device.avail_features();
        let value: u32 = match offset as u32 {
            VIRTIO_MMIO_MAGIC_VALUE => MMIO_MAGIC,
            VIRTIO_MMIO_VERSION => MMIO_VERSION,
            VIRTIO_MMIO_DEVICE_ID => self.device.device_type(),
            VIRTIO_MMIO_VENDOR_ID => VENDOR_ID,
            VIRTIO_MMIO_DEVICE_FEATURES => match self.device_features_sel {
                0 => features as u32,
                1 => (features >> 32) as u32,
                _ => 0,
            },
            VIRTIO_MMIO_QUEUE_NUM_MAX => self.selected_queue().map_or(0, |q| u32::from(q.max_size())),
            VIRTIO_MMIO_QUEUE_READY => self.selected_queue().map_or(0, |q| u32::from(q.ready())),
            VIRTIO_MMIO_INTERRUPT_STATUS => self.interrupt.status(),
            VIRTIO_MMIO_STATUS => self.status,
            // The configuration space never changes under the driver.
            VIRTIO_MMIO_CONFIG_GENERATION => 0,
            _ => 0,
        };
        let bytes = value.to_le_bytes();
        for (i, d) in data.iter_mut().enumerate() {
            *d = bytes.get(i).copied().unwrap_or(0);
        }
    }

    /// A guest write at `offset`. A queue notification runs the device on that queue.
    pub fn mmio_write(&mut self, offset: u64, data: &[u8]) {
        if offset >= u64::from(VIRTIO_MMIO_CONFIG) {
            return; // no device here has a writable configuration space
        }
        let mut bytes = [0u8; 4];
        for (b, x) in bytes.iter_mut().zip(data) {
            *b = *x;
        }
        let v = u32::from_le_bytes(bytes);
        match offset as u32 {
            VIRTIO_MMIO_DEVICE_FEATURES_SEL => self.device_features_sel = v,
            VIRTIO_MMIO_DRIVER_FEATURES => match self.driver_features_sel {
                0 => self.driver_features = (self.driver_features & !0xffff_ffff) | u64::from(v),
                1 => self.driver_features = (self.driver_features & 0xffff_ffff) | (u64::from(v) << 32),
                _ => {}
            },
            VIRTIO_MMIO_DRIVER_FEATURES_SEL => self.driver_features_sel = v,
            VIRTIO_MMIO_QUEUE_SEL => self.queue_sel = v,
            VIRTIO_MMIO_QUEUE_NUM => self.with_selected_queue(|q| q.set_size(v as u16)),
            VIRTIO_MMIO_QUEUE_READY => self.with_selected_queue(|q| q.set_ready(v & 1 == 1)),
            // Before DRIVER_OK (or after the device gave up) a notification is ignored.
            VIRTIO_MMIO_QUEUE_NOTIFY if self.driver_ok() => {
                if let Err(e) = self.device.process_queue(v, &mut self.interrupt) {
                    self.needs_reset(e);
                }
            }
            VIRTIO_MMIO_INTERRUPT_ACK => self.interrupt.ack(v),
            VIRTIO_MMIO_STATUS => {
                if v == 0 {
                    self.reset();
                } else {
                    self.status = v;
                }
            }
            VIRTIO_MMIO_QUEUE_DESC_LOW => self.with_selected_queue(|q| q.set_desc_table_address(Some(v), None)),
            VIRTIO_MMIO_QUEUE_DESC_HIGH => self.with_selected_queue(|q| q.set_desc_table_address(None, Some(v))),
            VIRTIO_MMIO_QUEUE_AVAIL_LOW => self.with_selected_queue(|q| q.set_avail_ring_address(Some(v), None)),
            VIRTIO_MMIO_QUEUE_AVAIL_HIGH => self.with_selected_queue(|q| q.set_avail_ring_address(None, Some(v))),
            VIRTIO_MMIO_QUEUE_USED_LOW => self.with_selected_queue(|q| q.set_used_ring_address(Some(v), None)),
            VIRTIO_MMIO_QUEUE_USED_HIGH => self.with_selected_queue(|q| q.set_used_ring_address(None, Some(v))),
            _ => {}
        }
    }

    /// Apply a queue-setup write to the selected queue; a write to a queue the device
    /// does not have is ignored.
    fn with_selected_queue(&mut self, f: impl FnOnce(&mut Queue)) {
        if let Some(q) = self.selected_queue_mut() {
            f(q);
        }
    }
}
