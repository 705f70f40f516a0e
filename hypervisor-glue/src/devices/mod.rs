//! Legacy PC devices on the port-I/O bus: 16550 serial (vm-superio) on 0x3f8,
//! i8042 reset line, a tiny CMOS, and a debug-exit port. Everything else is
//! logged once and ignored (reads return all ones) — guest I/O never panics the host.

use std::collections::HashSet;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use vm_superio::serial::{NoEvents, SerialState};
use vm_superio::{Serial, Trigger};
use vmm_sys_util::eventfd::EventFd;

pub const SERIAL_PORT: u16 = 0x3f8;
pub const SERIAL_IRQ: u32 = 4;
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

/// The interrupt line of the serial port: an eventfd registered as KVM irqfd on GSI 4.
pub struct IrqTrigger(pub EventFd);
impl Trigger for IrqTrigger {
    type E = std::io::Error;
    fn trigger(&self) -> std::io::Result<()> {
        self.0.write(1)
    }
}

/// Captures the guest's console output; optionally echoes it to stdout and
/// watches for a pattern.
pub struct Console {
    pub buf: Mutex<Vec<u8>>,
    pub echo: AtomicBool,
    watch: Mutex<Option<Vec<u8>>>,
    matched: AtomicBool,
    line: Mutex<Vec<u8>>,
}

impl Console {
    fn new(echo: bool) -> Self {
        Console {
            buf: Mutex::new(Vec::new()),
            echo: AtomicBool::new(echo),
            watch: Mutex::new(None),
            matched: AtomicBool::new(false),
            line: Mutex::new(Vec::new()),
        }
    }
    fn push(&self, b: u8) {
        let mut buf = self.buf.lock().unwrap();
        buf.push(b);
        if let Some(w) = self.watch.lock().unwrap().as_ref() {
            if buf.ends_with(w) {
                self.matched.store(true, Ordering::SeqCst);
            }
        }
        drop(buf);
        if self.echo.load(Ordering::Relaxed) {
            let mut line = self.line.lock().unwrap();
            line.push(b);
            if b == b'\n' || line.len() >= 4096 {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(&line);
                let _ = out.flush();
                line.clear();
            }
        }
    }
    /// Everything the guest wrote to the serial console so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap()).into_owned()
    }
    /// Set (or clear) the byte pattern that stops the VM when it appears in the output.
    pub fn set_watch(&self, pat: Option<&str>) {
        *self.watch.lock().unwrap() = pat.map(|s| s.as_bytes().to_vec());
        self.matched.store(false, Ordering::SeqCst);
    }
    fn take_match(&self) -> bool {
        self.matched.swap(false, Ordering::SeqCst)
    }
}

#[derive(Clone)]
pub struct ConsoleWriter(pub Arc<Console>);
impl Write for ConsoleWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        for &b in data {
            self.0.push(b);
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub type SerialDev = Serial<IrqTrigger, NoEvents, ConsoleWriter>;

/// All port-I/O devices of one VM.
pub struct Devices {
    pub serial: Mutex<SerialDev>,
    /// virtio-mmio devices: (base address, device).
    pub mmio: Mutex<Vec<(u64, crate::net::VirtioNet)>>,
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
            if (*base..*base + crate::net::VIRTIO_MMIO_SIZE).contains(&addr) {
                dev.mmio_read(addr - *base, data);
            }
        }
    }

    pub fn mmio_write(&self, addr: u64, data: &[u8]) {
        for (base, dev) in self.mmio.lock().unwrap().iter_mut() {
            if (*base..*base + crate::net::VIRTIO_MMIO_SIZE).contains(&addr) {
                dev.mmio_write(addr - *base, data);
            }
        }
    }

    /// Move frames waiting in the backends into the guests' receive queues.
    pub fn poll_rx(&self) {
        for (_, dev) in self.mmio.lock().unwrap().iter_mut() {
            dev.process_rx();
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
