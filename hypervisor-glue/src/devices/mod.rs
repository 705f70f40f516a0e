//! The VM's devices and their two buses. Port I/O: the 16550 serial console
//! ([`serial`]) on 0x3f8, the i8042 reset line, a tiny CMOS and a debug-exit port;
//! everything else is logged once and ignored (reads return all ones) — guest I/O
//! never panics the host. MMIO: virtio devices on the virtio-mmio transport
//! ([`virtio`]) in the 32-bit hole.

pub mod serial;
pub mod virtio;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use vm_superio::serial::{NoEvents, SerialState};
use vm_superio::Serial;
use vmm_sys_util::eventfd::EventFd;

use serial::{Console, ConsoleWriter, IrqTrigger, SerialDev, SERIAL_PORT};
use virtio::mmio::{MmioTransport, VIRTIO_MMIO_SIZE};
use virtio::net::Net;

/// Writing a byte here ends the run with `StopReason::DebugExit(byte)` (like QEMU's isa-debug-exit).
pub const DEBUG_EXIT_PORT: u16 = 0xf4;

/// What a port access asks the run loop to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoAction {
    None,
    /// Guest asked for a reset (i8042 0xFE) — we treat it as power-off.
    Reset,
    DebugExit(u8),
    /// The console output matched the watched pattern.
    ConsoleMatch,
}

/// All devices of one VM, on the port-I/O and MMIO buses.
pub struct Devices {
    pub serial: Mutex<SerialDev>,
    /// virtio-mmio devices: (base address, transport). Net is the only virtio device
    /// so far; a second kind would make this `MmioTransport<Box<dyn VirtioDevice>>`.
    pub mmio: Mutex<Vec<(u64, MmioTransport<Net>)>>,
    pub console: Arc<Console>,
    cmos_index: Mutex<u8>,
    unknown: Mutex<HashSet<u16>>,
    pub log_unknown: bool,
}

impl Devices {
    pub fn new(irq: EventFd, echo: bool) -> Self {
        Self::from_serial_state(irq, echo, &SerialState::default())
    }

    pub fn from_serial_state(irq: EventFd, echo: bool, state: &SerialState) -> Self {
        let console = Arc::new(Console::new(echo));
        let serial = Serial::from_state(state, IrqTrigger(irq), NoEvents, ConsoleWriter(console.clone()))
            .unwrap_or_else(|_| Serial::new(IrqTrigger(EventFd::new(0).unwrap()), ConsoleWriter(console.clone())));
        Devices {
            serial: Mutex::new(serial),
            mmio: Mutex::new(Vec::new()),
            console,
            cmos_index: Mutex::new(0),
            unknown: Mutex::new(HashSet::new()),
            log_unknown: std::env::var_os("OFFCARD_VMM_DEBUG").is_some(),
        }
    }

    pub fn serial_state(&self) -> SerialState {
        self.serial.lock().unwrap().state()
    }

    /// Ports the guest touched that no device answers (for diagnostics).
    pub fn unknown_ports(&self) -> Vec<u16> {
        let mut v: Vec<u16> = self.unknown.lock().unwrap().iter().copied().collect();
        v.sort();
        v
    }

    fn note_unknown(&self, port: u16, what: &str) {
        if self.unknown.lock().unwrap().insert(port) && self.log_unknown {
            eprintln!("offcard-vmm: ignoring guest {what} on unhandled I/O port {port:#x}");
        }
    }

    pub fn io_in(&self, port: u16, data: &mut [u8]) {
        data.fill(0xff);
        match port {
            SERIAL_PORT..=0x3ff if data.len() == 1 => {
                data[0] = self.serial.lock().unwrap().read((port - SERIAL_PORT) as u8);
            }
            0x70 => data[0] = *self.cmos_index.lock().unwrap(),
            0x71 => {
                // Minimal CMOS: all registers read 0 (no update in progress), except
                // register D whose bit 7 says "RTC battery/RAM valid".
                let idx = *self.cmos_index.lock().unwrap() & 0x7f;
                data[0] = if idx == 0x0d { 0x80 } else { 0 };
            }
            0x80 | 0xed => {}
            _ => self.note_unknown(port, "read"),
        }
    }

    pub fn mmio_read(&self, addr: u64, data: &mut [u8]) {
        data.fill(0xff);
        for (base, dev) in self.mmio.lock().unwrap().iter_mut() {
            if (*base..*base + VIRTIO_MMIO_SIZE).contains(&addr) {
                dev.mmio_read(addr - *base, data);
            }
        }
    }

    pub fn mmio_write(&self, addr: u64, data: &[u8]) {
        for (base, dev) in self.mmio.lock().unwrap().iter_mut() {
            if (*base..*base + VIRTIO_MMIO_SIZE).contains(&addr) {
                dev.mmio_write(addr - *base, data);
            }
        }
    }

    /// Let every virtio device do the work its backend has for it (frames waiting to
    /// go into the guests' receive queues).
    pub fn poll_virtio(&self) {
        for (_, dev) in self.mmio.lock().unwrap().iter_mut() {
            dev.poll();
        }
    }

    pub fn io_out(&self, port: u16, data: &[u8]) -> IoAction {
        let v = data.first().copied().unwrap_or(0);
        match port {
            SERIAL_PORT..=0x3ff if data.len() == 1 => {
                let _ = self.serial.lock().unwrap().write((port - SERIAL_PORT) as u8, v);
                if self.console.take_match() {
                    return IoAction::ConsoleMatch;
                }
            }
            0x64 if v == 0xfe => return IoAction::Reset,
            0x70 => *self.cmos_index.lock().unwrap() = v,
            DEBUG_EXIT_PORT => return IoAction::DebugExit(v),
            0x80 | 0xed | 0x71 => {}
            _ => self.note_unknown(port, "write"),
        }
        IoAction::None
    }
}
