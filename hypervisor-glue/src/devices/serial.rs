//! The 16550 serial console (vm-superio) on port 0x3f8, IRQ 4: the guest's output
//! captured (and optionally echoed) by [`Console`], which can watch for a pattern.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use vm_superio::serial::NoEvents;
use vm_superio::{Serial, Trigger};
use vmm_sys_util::eventfd::EventFd;

/// First port of the serial port's eight registers (COM1).
pub const SERIAL_PORT: u16 = 0x3f8;
/// The serial port's GSI (COM1's ISA IRQ).
pub const SERIAL_IRQ: u32 = 4;

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
    pub(super) fn new(echo: bool) -> Self {
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
    pub(super) fn take_match(&self) -> bool {
        self.matched.swap(false, Ordering::SeqCst)
    }
}

/// The serial port's output side: every byte goes to the [`Console`].
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

/// The 16550 as vm-superio models it, wired to the irqfd and the console.
pub type SerialDev = Serial<IrqTrigger, NoEvents, ConsoleWriter>;
