//! Where a virtio-net device's frames go and come from: the [`NetBackend`] trait, and
//! the in-process pair (the TAP device is in `tap`; the card becomes another backend).

use std::io;
use std::sync::mpsc;

/// Where the frames of a virtio-net device go and come from.
pub trait NetBackend: Send {
    /// Send one Ethernet frame.
    fn send(&mut self, frame: &[u8]) -> io::Result<()>;
    /// Receive one frame if one is waiting (never blocks).
    fn try_recv(&mut self) -> io::Result<Option<Vec<u8>>>;
}

/// One end of an in-process link: what one end sends, the other receives.
pub struct PairBackend {
    tx: mpsc::Sender<Vec<u8>>,
    rx: mpsc::Receiver<Vec<u8>>,
}

/// Two connected ends (guest A <-> guest B, or guest <-> a test).
pub fn pair() -> (PairBackend, PairBackend) {
    let (a_tx, b_rx) = mpsc::channel();
    let (b_tx, a_rx) = mpsc::channel();
    (PairBackend { tx: a_tx, rx: a_rx }, PairBackend { tx: b_tx, rx: b_rx })
}

impl NetBackend for PairBackend {
    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        self.tx.send(frame.to_vec()).map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "peer gone"))
    }
    fn try_recv(&mut self) -> io::Result<Option<Vec<u8>>> {
        match self.rx.try_recv() {
            Ok(f) => Ok(Some(f)),
            // A peer that went away is a link with nothing more to receive.
            Err(mpsc::TryRecvError::Empty | mpsc::TryRecvError::Disconnected) => Ok(None),
        }
    }
}
